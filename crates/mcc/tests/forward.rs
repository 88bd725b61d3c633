//! `mcc local-remote serve` (the CC seed's): 100 connections at once
//! through the forward to an echo server in a container, byte-exact, each
//! closing its sending side first (half-close passed through); Ctrl-C
//! stops it cleanly. Through a daemon (scripts/test-remote) each
//! connection is a WebSocket tunnel.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use common::*;

/// A forking echo server on port 7000 that shuts its sending side when
/// the client's side ends (busybox's nc serves one connection at a time).
const ECHO_SERVER: &str = r#"
use IO::Socket::INET;
$SIG{CHLD} = 'IGNORE';
my $l = IO::Socket::INET->new(LocalPort => 7000, Listen => 512, ReuseAddr => 1) or die "$!";
while (1) {
    my $c = $l->accept or next;
    my $pid = fork;
    if (!defined $pid) { warn "fork: $!"; close $c; next }
    if ($pid == 0) {
        close $l;
        my $b;
        while (1) {
            my $n = sysread($c, $b, 65536);
            if (!defined $n) { next if $!{EINTR}; warn "read: $!"; last }
            last if $n == 0;
            my $off = 0;
            while ($off < $n) {
                my $w = syswrite($c, $b, $n - $off, $off);
                if (!defined $w) { next if $!{EINTR}; warn "write: $!"; exit 1 }
                $off += $w;
            }
        }
        shutdown($c, 1);
        exit 0;
    }
    close $c;
}
"#;

#[test]
fn a_forward_carries_100_concurrent_connections_byte_exact_and_stops_on_ctrl_c() {
    require_engine_and_images();
    let id = mcc(["run", "--image", DEBIAN, "--", "perl", "-e", ECHO_SERVER])
        .run()
        .ok()
        .stdout
        .trim()
        .to_string();
    let _c = ContainerGuard(id.clone());
    // forwarded by the name the listings show (through a daemon, the
    // route's {id} is that name)
    let status = mcc(["status", &id, "--output", "json"]).run().ok();
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let name = status[0]["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("mcc-run-"), "{status:#}");
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut fwd = mcc([
        "local-remote",
        "serve",
        "--container-id",
        &name,
        "--container-port",
        "7000",
        "--bind",
        &bind,
    ])
    .spawn();
    fwd.connect_when_listening(&bind);
    // the echo server in the container may take a moment to listen
    std::thread::sleep(Duration::from_millis(300));

    let threads: Vec<_> = (0..100u32)
        .map(|i| {
            let bind = bind.clone();
            std::thread::spawn(move || {
                let payload: Vec<u8> = (0..65_536u32)
                    .map(|k| (k.wrapping_mul(2_654_435_761).wrapping_add(i * 7919) >> 13) as u8)
                    .collect();
                let mut s = TcpStream::connect(&bind).expect("connect through the forward");
                s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                let mut w = s.try_clone().unwrap();
                let data = payload.clone();
                let writer = std::thread::spawn(move || {
                    w.write_all(&data).unwrap();
                    // half-close: the echo still comes back after this
                    w.shutdown(Shutdown::Write).unwrap();
                });
                let mut got = Vec::new();
                let read = s.read_to_end(&mut got).map_err(|e| e.to_string());
                let _ = writer.join();
                (
                    i,
                    got == payload,
                    format!("{} bytes back of 65536 ({read:?})", got.len()),
                )
            })
        })
        .collect();
    let failed: Vec<String> = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|(_, same, _)| !same)
        .map(|(i, _, what)| format!("connection {i}: {what}"))
        .collect();
    if !failed.is_empty() {
        let out = fwd.interrupt(Duration::from_secs(10));
        panic!(
            "{} of 100 failed: {}\n{}",
            failed.len(),
            failed.join("; "),
            out.describe()
        );
    }

    // Ctrl-C: stops, exit 0, and the port is closed
    let out = fwd.interrupt(Duration::from_secs(10));
    assert_eq!(out.code(), 0, "{}", out.describe());
    assert!(out.stderr.contains("stopped"), "{}", out.describe());
    assert!(
        TcpStream::connect(&bind).is_err(),
        "still listening after Ctrl-C"
    );
    mcc(["rm", &id]).run().ok();
}
