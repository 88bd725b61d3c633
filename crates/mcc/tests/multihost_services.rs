//! MyCluster's services on a cluster of Docker workers that spans three
//! engines of this machine (`scripts/hosts`, one swarm): `mcc serve`, on a
//! machine of the hosts' network but outside the cluster's overlay,
//! reaches each worker's engine where its host publishes it (TLS with the
//! cluster's client certificates, nothing without one); replicas spread
//! over the workers of every host; a whole host SIGKILLed, its replicas run
//! again on the workers of the other hosts, each index once.

mod common;

use common::*;

/// The workers the service's running replicas are on, sorted.
fn placed(v: &serde_json::Value) -> Vec<String> {
    let mut on: Vec<String> = v["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["state"] == "running")
        .map(|r| r["worker"].as_str().unwrap().to_string())
        .collect();
    on.sort();
    on
}

/// `/ui/state` as the dashboard's page reads it, signed in.
fn dashboard_state(d: &Daemon) -> serde_json::Value {
    let http = reqwest::blocking::Client::new();
    let login = serde_json::json!({"token": d.token, "secret": d.secret}).to_string();
    let a = http
        .post(format!("{}/ui/login", d.url))
        .header("Origin", &d.url)
        .header("Content-Type", "application/json")
        .body(login)
        .send()
        .unwrap();
    assert_eq!(a.status(), 200, "sign-in");
    let cookie = a
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_string();
    http.get(format!("{}/ui/state", d.url))
        .header("Cookie", cookie)
        .send()
        .unwrap()
        .json()
        .unwrap()
}

#[test]
fn services_move_to_the_workers_of_other_hosts_when_a_host_is_lost() {
    let hosts = Hosts::up("mccsvc", 3, &[DOCKER_IMAGE]);
    hosts.reach();
    let s = Setup::new("svc");
    let c = Cluster::new("spansvc");
    for (name, i, zone) in [("h1", 1, "a"), ("h2", 2, "a"), ("h3", 3, "b")] {
        s.mcc([
            "host",
            "add",
            name,
            "--engine",
            hosts.docker_host(i),
            "--zone",
            zone,
        ])
        .run()
        .ok();
    }
    let shared = format!("file://{}", s.export);
    let subnet = test_subnet(211);
    // frontend on h1; node01 h2, node02 h3, node03 h1, node04 h2
    s.mcc([
        "create",
        "--name",
        c.n(),
        "--image",
        DOCKER_IMAGE,
        "--nodes",
        "4",
        "--subnet",
        &subnet,
        "--docker-workers",
        "--hosts",
        "h1,h2,h3",
        "--shared-from",
        &shared,
    ])
    .run()
    .ok();
    // a worker's engine is published on its host's address, nowhere else
    let ports = hosts.docker_ok(3, &["port", &format!("{}-node02", c.n())]);
    assert!(
        ports.starts_with(&format!("2375/tcp -> {}:", hosts.addr(3))),
        "{ports}"
    );
    // and asks for the cluster's client certificate: a bare TLS client
    // is turned away
    let port = ports.rsplit(':').next().unwrap().trim();
    let out = std::process::Command::new("curl")
        .args(["-sk", "--max-time", "5"])
        .arg(format!("https://{}:{port}/version", hosts.addr(3)))
        .output()
        .expect("curl");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("ApiVersion"),
        "the engine answered a client without a certificate"
    );

    let d = Daemon::start_env("svc", &[], &[("MCC_HOSTS_FILE", &s.file)]);
    d.busybox_service(&c, "web", "4", &["--", "sleep", "3600"]);
    let v = d.converged(&c, "web", 4, &[], "create over three hosts");
    assert_eq!(
        placed(&v),
        ["node01", "node02", "node03", "node04"],
        "one replica per worker: {v:#}"
    );

    // the dashboard's state has each node's host and zone
    let ui = dashboard_state(&d);
    let nodes = ui["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == c.n())
        .map(|v| v["nodes"].clone())
        .unwrap_or_default();
    let node02 = nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "node02")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (node02["host"].as_str(), node02["zone"].as_str()),
        (Some("h3"), Some("b")),
        "{ui:#}"
    );

    // host 3 (node02) lost whole: its replica runs again on another host
    hosts.kill(3);
    let v = d.converged(&c, "web", 4, &["node02"], "after host 3 was killed");
    let on = placed(&v);
    assert!(!on.contains(&"node02".to_string()), "{v:#}");
    let stats = d.request("GET", "/api/v1/stats", "").json();
    assert!(
        stats["containers.relocated"].as_u64().unwrap() >= 1,
        "{stats:#}"
    );
    // the replicas left on the hosts that answer are the four, once each
    let mut running = 0;
    for i in [1, 2] {
        for node in ["node01", "node03", "node04"] {
            let name = format!("{}-{node}", c.n());
            let out = hosts.docker(
                i,
                &[
                    "exec", &name, "sh", "-c",
                    "DOCKER_HOST=unix:///var/run/docker.sock DOCKER_TLS_VERIFY= docker ps -q --filter label=mcc.service=web",
                ],
            );
            if out.status.success() {
                running += String::from_utf8_lossy(&out.stdout).lines().count();
            }
        }
    }
    assert_eq!(running, 4, "replicas running on the hosts left");

    // host 2 goes silent (its engine stopped, its link cut: nothing
    // refuses a connection, as with a machine that lost power): its
    // workers count as down once a listing of it goes unanswered for
    // a few seconds, not after an engine's two-minute timeout
    let pid = std::fs::read_to_string(format!("/run/mcc-hosts/{}/2/docker.pid", hosts.name))
        .expect("host 2's dockerd pid");
    let signal = |sig: &str| {
        let ok = std::process::Command::new("kill")
            .args([sig, pid.trim()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {pid}");
    };
    signal("-STOP");
    hosts.cut(2);
    let t = std::time::Instant::now();
    d.converged(
        &c,
        "web",
        4,
        &["node01", "node02", "node04"],
        "after host 2 went silent",
    );
    eprintln!("replicas back {:?} after host 2 went silent", t.elapsed());
    signal("-CONT");
    hosts.mend(2);
    drop(d);
    // the cluster goes with the hosts (`down`); h3 is not there to ask
}
