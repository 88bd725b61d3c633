//! Workers that are Docker hosts (`--docker-workers`): reachable from every
//! node as `tcp://nodeXX:2375` with the cluster's certificates, inner
//! bridges off the host's networks, engines kept across recreate, nodes
//! added later made Docker hosts too; and nobody outside the cluster gets
//! in: not a node of another cluster, not a user of the host. A worker's
//! server key is its own: no other node can read it, and its engine still
//! answers across stop and start, a restart by the engine, recreate and
//! addnode; the certificates last a bounded time.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use mcc_core::model::Ipv4Cidr;
use rustls::AlertDescription;

/// Loads the busybox test image into a worker's engine, as a user would
/// (`docker save | docker load`), talking to the engine's own socket.
fn load_busybox(container: &str) {
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            "docker save \"$1\" | docker exec -i -e DOCKER_HOST=unix:///var/run/docker.sock \
             -e DOCKER_TLS_VERIFY= \"$2\" docker load",
            "sh",
            BUSYBOX,
            container,
        ])
        .output()
        .expect("docker save | docker load");
    assert!(
        out.status.success(),
        "loading {BUSYBOX} into {container}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The node's address as inspect shows it.
fn ip_of(c: &Cluster, node: &str) -> String {
    node_table(&inspect(c))[node].0.clone()
}

/// Every subnet of the engine's networks on this host.
fn host_subnets() -> Vec<Ipv4Cidr> {
    let ids = docker_ok(&["network", "ls", "-q"]);
    let ids: Vec<&str> = ids.split_whitespace().collect();
    let mut args = vec![
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
    ];
    args.extend(ids);
    docker_ok(&args)
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

#[test]
fn workers_are_docker_hosts_reachable_by_name_and_kept_across_recreate() {
    let c = Cluster::new("dockerw");
    let subnet = test_subnet(234);
    create(
        &c,
        &on_subnet(DOCKER_IMAGE, "2", &subnet, &["--docker-workers"]),
    );

    // the seed's `docker -H test_worker_1 ps`, from the front-end
    let out = sh(
        &c,
        "frontend",
        "for n in node01 node02; do docker -H $n info --format \"$n {{.Driver}}\" || exit 1; done",
    )
    .ok();
    assert!(
        out.stdout.contains("node01 overlay2") && out.stdout.contains("node02 overlay2"),
        "{}",
        out.describe()
    );
    // a worker's own CLI talks to its own engine
    sh(&c, "node02", "docker ps -q").ok();
    // the front-end is a client, not a host
    let out = sh(&c, "frontend", "docker -H frontend info");
    assert_ne!(out.code(), 0, "{}", out.describe());

    // an inner container: its bridge clashes with none of the host's
    // networks nor the cluster's subnet; its cgroups nest under the node's
    load_busybox(&format!("{}-node01", c.n()));
    let out = sh(
        &c,
        "frontend",
        &format!(
            "docker -H node01 run --rm {BUSYBOX} sh -c 'ip -4 -o addr show eth0; cat /proc/self/cgroup'"
        ),
    )
    .ok();
    let inner: Ipv4Addr = out
        .stdout
        .split_whitespace()
        .find_map(|w| w.split_once('/').and_then(|(a, _)| a.parse().ok()))
        .unwrap_or_else(|| panic!("no inner address: {}", out.describe()));
    let mut taken = host_subnets();
    taken.push(subnet.parse().unwrap());
    taken.push("172.17.0.0/16".parse().unwrap());
    for t in &taken {
        assert!(
            !t.contains(inner),
            "inner address {inner} is in {t}: {}",
            out.describe()
        );
    }
    let node_id = docker_ok(&["inspect", "-f", "{{.Id}}", &format!("{}-node01", c.n())]);
    assert!(
        out.stdout
            .contains(&format!("/docker/{}/docker/", node_id.trim())),
        "inner cgroups are not under the node's: {}",
        out.describe()
    );

    // a published port of an inner container answers at node01:<port>
    sh(
        &c,
        "frontend",
        &format!("docker -H node01 run -d --name web -p 18080:8080 {BUSYBOX} httpd -f -p 8080"),
    )
    .ok();
    let out = mcc([
        "exec",
        c.n(),
        "--on",
        "frontend",
        "--",
        "bash",
        "-c",
        "for i in $(seq 50); do exec 3<>/dev/tcp/node01/18080 && break; sleep 0.1; done; \
         printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3; head -n1 <&3",
    ])
    .run();
    assert!(
        out.stdout.contains("HTTP/1."),
        "published port did not answer: {}",
        out.describe()
    );

    // a worker added later is a Docker host too
    mcc(["addnode", c.n()]).run().ok();
    sh(
        &c,
        "frontend",
        "docker -H node03 info --format '{{.Driver}}'",
    )
    .ok();

    // recreate keeps the worker's images and containers
    mcc(["recreate", c.n(), "node01"]).run().ok();
    let out = sh(
        &c,
        "frontend",
        "docker -H node01 image ls --format '{{.Repository}}'; docker -H node01 ps -a --format '{{.Names}}'",
    )
    .ok();
    assert!(
        out.stdout.contains("mcc-test/busybox") && out.stdout.contains("web"),
        "{}",
        out.describe()
    );

    // delete takes the engines' volumes with the rest
    mcc(["delete", c.n()]).run().ok();
    assert_nothing_labelled(c.n(), "after delete of a --docker-workers cluster");
}

/// The attacks: a node of another cluster (root there, holding that
/// cluster's own valid certificates) and a user of the host (no
/// certificate at all) try a worker's engine; both are refused, while the
/// cluster's own front-end gets in.
///
/// Another cluster's nodes cannot even reach the port (the engine's bridge
/// isolation drops them), so that alone shows nothing of the TLS check.
/// The host reaches every bridge: from there, TCP connects, and the engine
/// answers a client holding the cluster's certificate and refuses, in the
/// TLS handshake, one holding none or another cluster's.
#[test]
fn nobody_outside_the_cluster_reaches_a_workers_engine() {
    let a = docker_workers_cluster("dockerw-a", "1", 235);
    let b = docker_workers_cluster("dockerw-b", "1", 236);
    let ip = ip_of(&a, "node01");
    let target = format!("tcp://{ip}:2375");
    let addr: SocketAddr = format!("{ip}:2375").parse().unwrap();
    let ca = file_of(&a, "frontend", "/opt/mcc/docker/ca.pem");
    let own = client_cert_of(&a);

    // control, and the wait for the engine to be reachable from here: the
    // cluster's own client certificate is answered
    let answer = engine_get(addr, &ca, Some(&own))
        .unwrap_or_else(|e| panic!("the cluster's own certificate was refused: {e:?}"));
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("OK"),
        "the engine's answer to the cluster's certificate: {answer}"
    );
    // the cluster's own front-end, by address too
    sh(&a, "frontend", &format!("docker -H {target} ps -q")).ok();

    // from the host, which reaches the port: no certificate, then another
    // cluster's valid one; each refused by the TLS layer, after TCP
    // connected (engine_get asserts the connect)
    let refusal = engine_get(addr, &ca, None)
        .expect_err("the engine answered a client without a certificate");
    assert!(
        matches!(
            refusal,
            AlertDescription::CertificateRequired | AlertDescription::BadCertificate
        ),
        "without a certificate: {refusal:?}"
    );
    println!("without a certificate: refused with {refusal:?}");
    let theirs = client_cert_of(&b);
    let refusal = engine_get(addr, &ca, Some(&theirs))
        .expect_err("the engine answered another cluster's certificate");
    assert!(
        matches!(
            refusal,
            AlertDescription::BadCertificate | AlertDescription::UnknownCA
        ),
        "with another cluster's certificate: {refusal:?}"
    );
    println!("with another cluster's certificate: refused with {refusal:?}");

    // the other cluster's nodes: refused (their bridge does not reach ours)
    for node in ["frontend", "node01"] {
        // with the other cluster's certificates
        let out = sh(&b, node, &format!("timeout 10 docker -H {target} ps"));
        assert_ne!(
            out.code(),
            0,
            "{node} of another cluster got in: {}",
            out.describe()
        );
        // without TLS
        let out = sh(
            &b,
            node,
            &format!("DOCKER_TLS_VERIFY= timeout 10 docker -H {target} ps"),
        );
        assert_ne!(
            out.code(),
            0,
            "{node} of another cluster got in: {}",
            out.describe()
        );
    }

    // a user of the host, with no TLS at all: a plain request gets no API
    let mut s = connect_when_reachable(addr);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /containers/json HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        !answer.starts_with("HTTP/1.0 200") && !answer.starts_with("HTTP/1.1 200"),
        "the engine answered a request without a certificate: {answer}"
    );
}

/// A file of a node, read as the host's root reads it.
fn file_of(c: &Cluster, node: &str, path: &str) -> String {
    docker_ok(&["exec", &format!("{}-{node}", c.n()), "cat", path])
}

/// The client certificate and key the nodes of `c` hold.
fn client_cert_of(c: &Cluster) -> (String, String) {
    (
        file_of(c, "frontend", "/opt/mcc/docker/client/cert.pem"),
        file_of(c, "frontend", "/opt/mcc/docker/client/key.pem"),
    )
}

/// Connects to `addr`, waiting out for a bounded time what a node that is
/// not attached at its address yet (or for a moment) answers, and what an
/// engine that does not listen yet answers. Measured from this host to a
/// fresh bridge: with no container answering ARP at the address, connect
/// fails with "No route to host" after ~3 s (three unanswered ARP probes);
/// with the container up but nothing listening, "Connection refused"; with
/// it listening, it connects at once, also while other containers on the
/// engine are being stopped. So the "No route to host" seen once means the
/// worker had no live endpoint at its address at that moment (why, with
/// other clusters stopping, was not reproduced). Any other error, or one
/// that lasts, fails the test: TCP must connect for the TLS checks to mean
/// anything, and a TLS refusal is never retried.
fn connect_when_reachable(addr: SocketAddr) -> TcpStream {
    use std::io::ErrorKind::{ConnectionRefused, HostUnreachable, NetworkUnreachable, TimedOut};
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            Ok(s) => return s,
            Err(e)
                if matches!(
                    e.kind(),
                    HostUnreachable | NetworkUnreachable | ConnectionRefused | TimedOut
                ) && Instant::now() < deadline =>
            {
                eprintln!("connect to {addr}: {e}; trying again");
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => panic!("the engine's port {addr} is not reachable from the host: {e}"),
        }
    }
}

/// `GET /_ping` of a worker's engine over TLS from the host, verifying the
/// engine against the cluster's authority `ca` and presenting `client`
/// (certificate, key) if any. The answer, or the alert the engine refused
/// the handshake with; anything else (no TCP connection, a failure that is
/// not the engine's refusal) fails the test.
///
/// TLS 1.2 only: there the engine's verdict on the client's certificate
/// comes inside the handshake, before the client sends a byte of its own;
/// in 1.3 it comes after the client's last flight and races the request.
fn engine_get(
    addr: SocketAddr,
    ca: &str,
    client: Option<&(String, String)>,
) -> Result<String, AlertDescription> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.as_bytes()).expect("the cluster's authority"))
        .expect("the cluster's authority");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("TLS 1.2")
        .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => config
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).expect("a certificate")],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("a key"),
            )
            .expect("a client certificate and its key"),
        None => config.with_no_client_auth(),
    };
    let name = ServerName::IpAddress(addr.ip().into());
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("a TLS client");
    let tcp = connect_when_reachable(addr);
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let alert = |e: std::io::Error| -> AlertDescription {
        match e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
            Some(rustls::Error::AlertReceived(a)) => *a,
            _ => panic!("TLS to {addr} failed, and not by the engine's refusal: {e}"),
        }
    };
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).map_err(alert)?;
    }
    tls.write_all(b"GET /_ping HTTP/1.1\r\nHost: node01\r\nConnection: close\r\n\r\n")
        .map_err(alert)?;
    let mut answer = Vec::new();
    match tls.read_to_end(&mut answer) {
        Ok(_) => {}
        // the engine closes without close_notify: what came is the answer
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        Err(e) => return Err(alert(e)),
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[test]
fn docker_workers_bad_input_leaves_nothing() {
    let c = Cluster::new("dockerw-bad");
    refused(
        c.n(),
        &create_args(c.n(), DOCKER_IMAGE, &["--docker-workers", "--systemd"]),
        &["--docker-workers", "--systemd"],
    );
    // an image without an engine: named, and the create is undone
    let out = try_create(&c, &image_nodes(BUSYBOX, "1", &["--docker-workers"]));
    assert_ne!(out.code(), 0, "{}", out.describe());
    assert!(
        out.stderr.contains("has no dockerd") && out.stderr.contains(BUSYBOX),
        "{}",
        out.describe()
    );
    assert_nothing_labelled(c.n(), "after a create whose image has no engine");
}

/// Where a worker's engine keeps its certificate, as the host sees it: in
/// the worker's own engine volume.
fn tls_dir_on_host(c: &Cluster, node: &str) -> String {
    let source = docker_ok(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{if eq .Destination \"/var/lib/docker\"}}{{.Source}}{{end}}{{end}}",
        &format!("{}-{node}", c.n()),
    ]);
    format!("{}/mcc-tls", source.trim())
}

/// A worker's server key, read on the host.
fn key_of(c: &Cluster, node: &str) -> String {
    let path = format!("{}/key.pem", tls_dir_on_host(c, node));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A line of a key that is nowhere else: the first of its base64 body.
fn secret_line(key: &str) -> String {
    let line = key.lines().nth(1).expect("a PEM key").to_string();
    assert!(line.len() >= 40, "{key}");
    line
}

/// As root on `from`, tries to read `target`'s server key: at the place
/// an older mcc put it (the meta volume), at the place it is now (the same
/// path on `from` holds `from`'s own key, if any, not `target`'s), and
/// anywhere at all on `from`'s filesystem (a grep for a line of it). Each
/// must fail.
fn try_to_steal(c: &Cluster, from: &str, target: &str, key: &str) {
    let line = secret_line(key);
    let out = sh(
        c,
        from,
        &format!(
            "echo uid=$(id -u); cat /opt/mcc/docker/{target}/key.pem && echo LEAKED-OLD-PATH; \
             ls -la /opt/mcc/docker; \
             cat /var/lib/docker/mcc-tls/key.pem 2>/dev/null | grep -qxF -e '{line}' && echo LEAKED-OWN-PATH; \
             grep -rlsF -D skip --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev -e '{line}' / \
             >/tmp/found; echo grep-exit=$?; sed 's/^/FOUND:/' /tmp/found"
        ),
    );
    assert!(
        out.stdout.contains("uid=0")
            && !out.stdout.contains("LEAKED")
            && !out.stdout.contains("FOUND:"),
        "{from} read {target}'s server key: {}",
        out.describe()
    );
    assert!(
        !out.stdout.contains("grep-exit=0") && out.stdout.contains("grep-exit="),
        "{}",
        out.describe()
    );
    // the old place holds no folder of the target's
    assert!(
        !out.stdout.contains(&format!(" {target}\n")),
        "the meta volume holds {target}'s folder: {}",
        out.describe()
    );
}

/// The same search finds what is there: a worker's own key, on itself
/// (so a search that finds nothing above means something).
fn own_key_is_found(c: &Cluster, node: &str) {
    let line = secret_line(&key_of(c, node));
    let out = sh(
        c,
        node,
        &format!(
            "grep -rlsF -D skip --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev -e '{line}' /; \
             stat -c '%a %U %n' /var/lib/docker/mcc-tls /var/lib/docker/mcc-tls/key.pem"
        ),
    );
    assert!(
        out.stdout.contains("/var/lib/docker/mcc-tls/key.pem")
            && out.stdout.contains("700 root /var/lib/docker/mcc-tls")
            && out
                .stdout
                .contains("600 root /var/lib/docker/mcc-tls/key.pem"),
        "{}",
        out.describe()
    );
}

/// `docker -H <node> info` from the front-end answers over TLS, with the
/// nodes' client certificate.
fn engine_answers(c: &Cluster, node: &str) {
    let out = sh(
        c,
        "frontend",
        &format!("docker -H {node} info --format '{node} {{{{.Driver}}}}'"),
    );
    assert!(
        out.code() == 0 && out.stdout.contains(&format!("{node} overlay2")),
        "{}",
        out.describe()
    );
}

/// Whether `pem` (a certificate) is valid for at least `days` more days,
/// as openssl sees it.
fn valid_for_days(pem: &str, days: u64) -> bool {
    let mut child = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-checkend", &(days * 86400).to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("openssl runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(pem.as_bytes())
        .unwrap();
    child.wait().unwrap().success()
}

/// The certificate node01's engine presents, as any client sees it.
fn presented_cert(ip: &str) -> String {
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            "openssl s_client -connect \"$1:2375\" </dev/null 2>/dev/null | openssl x509",
            "sh",
            ip,
        ])
        .output()
        .expect("openssl runs");
    let pem = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        pem.contains("BEGIN CERTIFICATE"),
        "no certificate from {ip}: {pem}"
    );
    pem
}

/// Bounded validity, seen from outside: a year for a worker's server
/// certificate and for the nodes' client certificate.
fn lasts_about_a_year(what: &str, pem: &str) {
    assert!(
        valid_for_days(pem, 360) && !valid_for_days(pem, 370),
        "{what} does not last a year: {pem}"
    );
}

/// Waits until `node`'s engine answers from the front-end again (after a
/// restart that mcc does not know of).
fn engine_comes_back(c: &Cluster, node: &str) {
    let start = std::time::Instant::now();
    loop {
        let out = sh(
            c,
            "frontend",
            &format!("docker -H {node} info --format '{{{{.Driver}}}}'"),
        );
        if out.code() == 0 {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "{node}'s engine did not come back: {}",
            out.describe()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The attack of issue 15, item 7, performed: root on another worker or on
/// the front-end tries to read node01's server key, at the old place and
/// wherever it is now. The front-end still reaches node01's engine over
/// TLS after create, `stop` and `start`, a restart by the engine's restart
/// policy, `recreate` and (for the new worker) `addnode`. (What a node can
/// make node01's engine do for it is root on node01, by design: every node
/// holds the client certificate. This is about what it can read itself.)
#[test]
fn a_workers_key_is_its_own_and_its_engine_answers_through_every_lifecycle() {
    let c = Cluster::new("dockerw-keys");
    create(
        &c,
        &on_subnet(DOCKER_IMAGE, "2", &test_subnet(247), &["--docker-workers"]),
    );
    let ip1 = ip_of(&c, "node01");

    // after create
    engine_answers(&c, "node01");
    engine_answers(&c, "node02");
    let key1 = key_of(&c, "node01");
    assert_ne!(key1, key_of(&c, "node02"), "two workers share a key");
    own_key_is_found(&c, "node02");
    try_to_steal(&c, "node02", "node01", &key1);
    try_to_steal(&c, "frontend", "node01", &key1);
    lasts_about_a_year("node01's server certificate", &presented_cert(&ip1));
    let nodes_cert = docker_ok(&[
        "exec",
        &format!("{}-frontend", c.n()),
        "cat",
        "/opt/mcc/docker/client/cert.pem",
    ]);
    lasts_about_a_year("the nodes' client certificate", &nodes_cert);

    // stop and start: node01 gets a fresh key, its engine answers
    mcc(["stop", c.n()]).run().ok();
    mcc(["start", c.n()]).run().ok();
    engine_answers(&c, "node01");
    let key2 = key_of(&c, "node01");
    assert_ne!(key1, key2, "start did not issue a fresh certificate");
    try_to_steal(&c, "node02", "node01", &key2);

    // the engine restarts node01 by its restart policy, without mcc: its
    // first process reads the same key from its own volume
    let container1 = format!("{}-node01", c.n());
    let started = docker_ok(&["inspect", "-f", "{{.State.StartedAt}}", &container1]);
    let pid = docker_ok(&["inspect", "-f", "{{.State.Pid}}", &container1]);
    let killed = std::process::Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap();
    assert!(killed.success());
    let t = std::time::Instant::now();
    while docker_ok(&["inspect", "-f", "{{.State.StartedAt}}", &container1]) == started {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "node01 was not restarted"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    engine_comes_back(&c, "node01");
    assert_eq!(key_of(&c, "node01"), key2);

    // an older mcc's copy of the key in the meta volume: emptied when the
    // worker is made anew
    let legacy = std::env::temp_dir().join(format!("mcc-legacy-{}", std::process::id()));
    std::fs::create_dir_all(legacy.join("node01")).unwrap();
    std::fs::write(legacy.join("node01/key.pem"), &key2).unwrap();
    docker_ok(&[
        "cp",
        &format!("{}/node01", legacy.display()),
        &format!("{}-mcc:/opt/mcc/docker/", c.n()),
    ]);
    let _ = std::fs::remove_dir_all(&legacy);
    let out = sh(&c, "frontend", "cat /opt/mcc/docker/node01/key.pem").ok();
    assert!(out.stdout.contains("PRIVATE KEY"), "{}", out.describe());

    // recreate: a new container, a new key, the same engine volume
    mcc(["recreate", c.n(), "node01"]).run().ok();
    engine_answers(&c, "node01");
    let key3 = key_of(&c, "node01");
    assert_ne!(key2, key3);
    let out = sh(
        &c,
        "frontend",
        "f=/opt/mcc/docker/node01/key.pem; test -e $f && echo EXISTS; test -s $f && echo NONEMPTY",
    );
    assert!(
        out.stdout.contains("EXISTS") && !out.stdout.contains("NONEMPTY"),
        "the older copy of node01's key is still there: {}",
        out.describe()
    );
    for from in ["node02", "frontend"] {
        let out = sh(
            &c,
            from,
            "cat /opt/mcc/docker/node01/key.pem | grep -q . && echo LEAKED",
        );
        assert!(!out.stdout.contains("LEAKED"), "{}", out.describe());
    }
    lasts_about_a_year("node01's new server certificate", &presented_cert(&ip1));

    // addnode: the new worker has a key of its own, and its engine answers
    mcc(["addnode", c.n()]).run().ok();
    engine_answers(&c, "node03");
    let key_new = key_of(&c, "node03");
    try_to_steal(&c, "node01", "node03", &key_new);
    try_to_steal(&c, "frontend", "node03", &key_new);
    engine_answers(&c, "node01");

    mcc(["delete", c.n()]).run().ok();
    assert_nothing_labelled(c.n(), "after delete");
}
