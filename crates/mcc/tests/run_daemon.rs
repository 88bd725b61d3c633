//! `mcc run` containers through `mcc serve`, where the daemon adds
//! something of its own: `--attach` over a WebSocket (stdout and stderr
//! apart, the exit code passed), the daemon's `/metrics` and `mcc status`
//! with no ID finding them, and the port forward's tunnel refusing what it
//! cannot reach. (`tests/run.rs` and `tests/forward.rs` run through a
//! daemon too, from scripts/test-remote.)

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;

#[test]
fn attach_status_metrics_and_forward_through_the_daemon() {
    let d = Daemon::start("run");
    let mut made = Made::default();

    // --attach over the WebSocket: output as it comes, stderr apart, the
    // command's exit code as mcc's
    let mark = format!("attach-{}", std::process::id());
    let out = d
        .mcc([
            "run",
            "--image",
            BUSYBOX,
            "--attach",
            "--",
            "sh",
            "-c",
            &format!("echo out-1; echo err-1 >&2; sleep 1; echo out-2; exit 5; : {mark}"),
        ])
        .run();
    made.containers.extend(run_containers(&mark));
    assert_eq!(out.code(), 5, "{}", out.describe());
    assert_eq!(out.stdout, "out-1\nout-2\n", "{}", out.describe());
    assert!(out.stderr.contains("err-1"), "{}", out.describe());
    assert!(!out.stdout.contains("err-1"), "{}", out.describe());

    // a long-running one, seen by status (no ID: all of them) and /metrics
    let id = d
        .mcc([
            "run",
            "--image",
            BUSYBOX,
            "--memory",
            "48M",
            "--",
            "sh",
            "-c",
            "while :; do :; done",
        ])
        .run()
        .ok()
        .stdout
        .trim()
        .to_string();
    made.containers.push(id.clone());
    let id = id[..12].to_string();
    let all = d.mcc(["status", "--output", "json"]).run().ok();
    let v: serde_json::Value = serde_json::from_str(&all.stdout).unwrap();
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"].as_str().unwrap().starts_with(&id) && s["state"] == "running"),
        "status with no ID lacks {id}: {v:#}"
    );
    let wants = [
        format!("mcc_container_up{{id=\"{id}\",image=\"{BUSYBOX}\",vpc=\"\",state=\"running\"}} 1"),
        format!(
            "mcc_container_memory_limit_bytes{{id=\"{id}\"}} {}",
            48u64 << 20
        ),
        format!("mcc_container_cpu_seconds_total{{id=\"{id}\"}}"),
        format!("mcc_container_block_write_bytes_total{{id=\"{id}\"}}"),
    ];
    let mut m = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !wants.iter().all(|w| m.contains(w.as_str())) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        m = d.request("GET", "/metrics", "").body;
    }
    for w in &wants {
        assert!(m.contains(w.as_str()), "/metrics lacks {w}:\n{m}");
    }
    // the CPU counter moves
    let cpu = |m: &str| -> f64 {
        let key = format!("mcc_container_cpu_seconds_total{{id=\"{id}\"}} ");
        m.lines()
            .find_map(|l| l.strip_prefix(key.as_str()))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no CPU counter for {id}:\n{m}"))
    };
    let before = cpu(&m);
    std::thread::sleep(Duration::from_secs(2));
    let after = cpu(&d.request("GET", "/metrics", "").body);
    assert!(
        after > before,
        "CPU seconds did not move: {before} then {after}"
    );
    d.mcc(["rm", &id]).run().ok();
    let m = d.request("GET", "/metrics", "").body;
    assert!(
        !m.contains(&format!("id=\"{id}\"")),
        "{id} still in /metrics:\n{m}"
    );

    // the forward: a missing container is refused before anything listens
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let missing = "0123456789ab";
    let out = d
        .mcc([
            "local-remote",
            "serve",
            "--container-id",
            missing,
            "--container-port",
            "80",
            "--bind",
            &bind,
        ])
        .run();
    assert_eq!(out.code(), 1, "{}", out.describe());
    assert!(
        out.stderr.contains(missing) && out.stderr.contains("no such container"),
        "{}",
        out.describe()
    );

    // a port nothing listens on: the connection is closed and the reason told
    let quiet = d
        .mcc(["run", "--image", BUSYBOX, "--", "sleep", "600"])
        .run()
        .ok()
        .stdout
        .trim()
        .to_string();
    made.containers.push(quiet.clone());
    let mut fwd = d
        .mcc([
            "local-remote",
            "serve",
            "--container-id",
            &quiet,
            "--container-port",
            "9",
            "--bind",
            &bind,
        ])
        .spawn();
    let mut s = fwd.connect_when_listening(&bind);
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.write_all(b"hello");
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert!(got.is_empty(), "bytes from a closed port: {got:?}");
    let out = fwd.interrupt(Duration::from_secs(10));
    assert_eq!(out.code(), 0, "{}", out.describe());
    assert!(
        out.stderr.contains("cannot be reached"),
        "the reason is not told: {}",
        out.describe()
    );

    // the tunnel is an authenticated route like any other
    let a = d.raw(
        "GET",
        &format!("/api/v1/containers/{quiet}/forward?port=9"),
        &[],
        b"",
    );
    assert_eq!(a.status, 401, "{a:?}");
    d.mcc(["rm", &quiet]).run().ok();
}
