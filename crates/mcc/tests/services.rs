//! Services on Docker workers, through `mcc serve`: replicas spread over
//! the workers, moved when a worker is killed, stopped, removed or its
//! engine dies, restarted when they crash, adopted (never duplicated) by a
//! restarted daemon; MyCluster's API shapes; bad requests refused.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;

/// `(service, replica) -> [(node, container id, state)]`.
type Replicas = BTreeMap<(String, u32), Vec<(String, String, String)>>;

/// `docker -H unix socket` inside a worker, as its root would.
fn in_worker(cluster: &str, node: &str, args: &[&str]) -> String {
    let container = format!("{cluster}-{node}");
    let mut a = vec![
        "exec",
        "-e",
        "DOCKER_HOST=unix:///var/run/docker.sock",
        "-e",
        "DOCKER_TLS_VERIFY=",
        container.as_str(),
        "docker",
    ];
    a.extend_from_slice(args);
    String::from_utf8_lossy(&docker(&a).stdout).into_owned()
}

/// `(service, replica) -> [(node, container id, state)]` over the
/// workers' engines that answer.
fn replicas(cluster: &str, workers: &[&str]) -> Replicas {
    let mut m = Replicas::new();
    for w in workers {
        let out = in_worker(
            cluster,
            w,
            &[
                "ps",
                "-a",
                "--filter",
                "label=mcc.service",
                "--format",
                "{{.Label \"mcc.service\"}} {{.Label \"mcc.replica\"}} {{.ID}} {{.State}}",
            ],
        );
        for line in out.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if let [s, i, id, state] = f[..] {
                m.entry((s.to_string(), i.parse().unwrap()))
                    .or_default()
                    .push((w.to_string(), id.to_string(), state.to_string()));
            }
        }
    }
    m
}

#[test]
fn replicas_spread_move_off_failed_workers_and_survive_a_daemon_restart() {
    let c = docker_workers_cluster("svc", "4", 237);
    let mut d = Daemon::start("svc");
    let workers = ["node01", "node02", "node03", "node04"];

    // create: fewest-first over the four workers, image loaded from the host
    d.busybox_service(
        &c,
        "web",
        "4",
        &["--port", "8080", "--", "httpd", "-f", "-p", "8080"],
    );
    let v = d.converged(&c, "web", 4, &[], "create");
    let mut on: Vec<&str> = v["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["worker"].as_str().unwrap())
        .collect();
    on.sort();
    assert_eq!(on, workers, "one replica per worker: {v:#}");
    // the replicas are the workers' containers, labelled, published
    let seen = replicas(c.n(), &workers);
    assert_eq!(seen.len(), 4, "{seen:?}");
    let endpoint = v["instances"][0]["endpoints"][0]
        .as_str()
        .unwrap()
        .to_string();
    let (host, port) = endpoint.split_once(':').unwrap();
    let out = mcc([
        "exec", c.n(), "--on", "frontend", "--", "bash", "-c",
        &format!("exec 3<>/dev/tcp/{host}/{port} && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && head -n1 <&3"),
    ])
    .run();
    assert!(out.stdout.contains("HTTP/1."), "{}", out.describe());

    // a worker killed, one stopped, one removed, one whose engine dies:
    // each time the replicas run elsewhere, each index once
    let fail: [(&str, &[&str]); 3] = [
        ("node01", &["kill"]),
        ("node02", &["stop", "-t", "1"]),
        ("node03", &["rm", "-f"]),
    ];
    for (node, how) in fail {
        let container = format!("{}-{node}", c.n());
        let mut args: Vec<&str> = how.to_vec();
        args.push(&container);
        docker_ok(&args);
        d.converged(
            &c,
            "web",
            4,
            &[node],
            &format!("after docker {how:?} {node}"),
        );
        // bring it back for the next round (a removed one is recreated)
        if how[0] == "rm" {
            mcc(["recreate", c.n(), node]).run().ok();
        } else {
            docker_ok(&["start", &container]);
        }
    }
    docker_ok(&[
        "exec",
        &format!("{}-node04", c.n()),
        "pkill",
        "-9",
        "dockerd",
    ]);
    d.converged(
        &c,
        "web",
        4,
        &["node04"],
        "after node04's engine was killed",
    );
    let stats = d.request("GET", "/api/v1/stats", "").json();
    assert!(
        stats["workers.failures"].as_u64().unwrap() >= 4,
        "{stats:#}"
    );
    assert!(
        stats["containers.relocated"].as_u64().unwrap() >= 4,
        "{stats:#}"
    );
    assert_eq!(stats["services.totalOfContainers"], 4, "{stats:#}");
    assert!(
        stats["cluster.upTime"].as_str().unwrap().contains(':'),
        "{stats:#}"
    );
    // bring node04's engine back (a restart of the node restarts it)
    docker_ok(&["restart", "-t", "1", &format!("{}-node04", c.n())]);

    // a crashed replica is restarted where it is
    let before = replicas(c.n(), &workers[..3]);
    let ((_, idx), copies) = before.iter().next().unwrap();
    let (node, id, _) = &copies[0];
    in_worker(c.n(), node, &["kill", id]);
    let start = Instant::now();
    loop {
        let now = replicas(c.n(), &workers[..3]);
        if now
            .get(&("web".to_string(), *idx))
            .is_some_and(|v| v.len() == 1 && v[0].1 == *id && v[0].2 == "running")
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "replica {idx} not restarted: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // SIGKILL the daemon and start another: it adopts what runs
    let before = replicas(c.n(), &workers);
    d.kill();
    d.spawn();
    d.converged(&c, "web", 4, &[], "after a daemon restart");
    std::thread::sleep(Duration::from_secs(1));
    let after = replicas(c.n(), &workers);
    let running = |m: &Replicas| -> Vec<String> {
        let mut ids: Vec<String> = m
            .values()
            .flatten()
            .filter(|r| r.2 == "running")
            .map(|r| r.1.clone())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(
        running(&before),
        running(&after),
        "a restarted daemon replaced replicas"
    );

    // MyCluster's API, for the default cluster (the only one with services)
    let a = d.request(
        "POST",
        "/api/v1/service",
        &format!(
            r#"{{"service":"hello","image":"{BUSYBOX}","replicas":2,"cmd":["sleep","3600"]}}"#
        ),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    let state = a.json();
    assert_eq!(state["cluster.name"], c.n());
    assert_eq!(state["cluster.numOfWorkers"], 4);
    assert!(
        state["cluster.workers"][0]["worker"].is_string(),
        "{state:#}"
    );
    assert!(
        state["cluster.workers"][0]["serviceInstances"].is_array(),
        "{state:#}"
    );
    let defs = state["cluster.servicesDef"].as_array().unwrap();
    assert!(defs
        .iter()
        .any(|s| s["service"] == "hello" && s["replicas"] == 2 && s["last_updated"].is_u64()));
    let one = d.request("GET", "/api/v1/service/hello", "").json();
    assert_eq!(
        (
            one["service"].as_str(),
            one["image"].as_str(),
            one["replicas"].as_u64()
        ),
        (Some("hello"), Some(BUSYBOX), Some(2))
    );
    d.converged(&c, "hello", 2, &[], "MyCluster's POST");
    let state = d.request("GET", "/api/v1/state", "").json();
    let counted: u64 = state["cluster.workers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["serviceInstances"].as_array().unwrap())
        .map(|i| i["numOfRunningContainers"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 6, "{state:#}");

    // scale down, delete: what goes is removed from the engines
    d.mcc([
        "service",
        "scale",
        "web",
        "--replicas",
        "2",
        "--cluster",
        c.n(),
    ])
    .run()
    .ok();
    d.converged(&c, "web", 2, &[], "scale to 2");
    d.mcc(["service", "delete", "web", "hello", "--cluster", c.n()])
        .run()
        .ok();
    let start = Instant::now();
    while !replicas(c.n(), &workers).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "replicas left after delete"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let list = d
        .mcc(["service", "list", "--cluster", c.n(), "--output", "json"])
        .run()
        .ok();
    assert_eq!(list.stdout.trim(), "[]", "{}", list.describe());
}

#[test]
fn bad_service_requests_are_refused_naming_what_is_wrong() {
    let plain = Cluster::new("svc-plain");
    create(&plain, &image_nodes(BUSYBOX, "1", &[]));
    let d = Daemon::start("svc-bad");
    let path = format!("/api/v1/clusters/{}/services", plain.n());
    // a cluster whose workers are not Docker hosts
    let a = d.request(
        "POST",
        &path,
        &format!(r#"{{"service":"web","image":"{BUSYBOX}","replicas":1}}"#),
    );
    assert_eq!(a.status, 409, "{}", a.body);
    assert!(a.body.contains("--docker-workers"), "{}", a.body);
    // each bad field named
    for (body, field) in [
        (
            r#"{"service":"Web","image":"x","replicas":1}"#.to_string(),
            "service",
        ),
        (
            format!(r#"{{"service":"web","image":"{BUSYBOX}","replicas":-1}}"#),
            "replicas",
        ),
        (
            format!(r#"{{"service":"web","image":"{BUSYBOX}","replicas":1,"ports":[0]}}"#),
            "ports",
        ),
        (
            format!(r#"{{"service":"web","image":"{BUSYBOX}","replicas":1,"env":["X"]}}"#),
            "env",
        ),
        (
            format!(r#"{{"service":"web","image":"{BUSYBOX}","replicas":1,"bogus":1}}"#),
            "bogus",
        ),
        (
            r#"{"service":"web","image":"a b","replicas":1}"#.to_string(),
            "image",
        ),
    ] {
        let a = d.request("POST", &path, &body);
        assert!(
            a.status == 422 || a.status == 400,
            "{body}: {} {}",
            a.status,
            a.body
        );
        assert!(a.body.contains(field), "{body}: {}", a.body);
    }
    let a = d.request("POST", &path, "not json");
    assert_eq!(a.status, 400, "{}", a.body);
    // missing things are 404
    let a = d.request("GET", &format!("{path}/nope"), "");
    assert_eq!(a.status, 404, "{}", a.body);
    let a = d.request(
        "POST",
        "/api/v1/clusters/no-such-cluster-x/services",
        &format!(r#"{{"service":"web","image":"{BUSYBOX}","replicas":1}}"#),
    );
    assert_eq!(a.status, 404, "{}", a.body);
    // stats and state of clusters that are not there or not of Docker workers
    let a = d.request("GET", &format!("/api/v1/clusters/{}/state", plain.n()), "");
    assert_eq!(a.status, 409, "{}", a.body);
    let a = d.request("GET", "/api/v1/clusters/no-such-cluster-x/stats", "");
    assert_eq!(a.status, 404, "{}", a.body);
    // the CLI says so with a non-zero exit, and a usage error is 2
    let out = d
        .mcc([
            "service",
            "create",
            "web",
            "--cluster",
            plain.n(),
            "--image",
            BUSYBOX,
        ])
        .run();
    assert_ne!(out.code(), 0, "{}", out.describe());
    assert!(
        out.stderr.contains("--docker-workers"),
        "{}",
        out.describe()
    );
    let out = d.mcc(["service", "list", "--cluster", "Bad_Name"]).run();
    assert_eq!(out.code(), 2, "{}", out.describe());
}

/// 20 services × 3 replicas on 4 workers; two workers die at once and the
/// daemon is SIGKILLed while it moves their replicas; a new daemon
/// finishes the job: every replica runs once, none is lost or doubled.
#[test]
fn many_services_converge_after_two_workers_die_and_the_daemon_is_killed_mid_relocation() {
    let c = docker_workers_cluster("svc-many", "4", 238);
    let mut d = Daemon::start("svc-many");
    let services: Vec<String> = (1..=20).map(|i| format!("s{i:02}")).collect();
    for s in &services {
        d.busybox_service(&c, s, "3", &["--detach", "--", "sleep", "86400"]);
    }
    for s in &services {
        d.converged(&c, s, 3, &[], "20 x 3 created");
    }
    // two workers die at once; the daemon dies while it relocates
    docker_ok(&[
        "kill",
        &format!("{}-node01", c.n()),
        &format!("{}-node03", c.n()),
    ]);
    let start = Instant::now();
    while !d.log().contains("is down: relocating") {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no relocation began: {}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    d.kill();
    let half = replicas(c.n(), &["node02", "node04"]);
    let moved_before_kill = half.values().flatten().count();
    assert!(
        moved_before_kill < 60,
        "the daemon was killed after it had finished"
    );
    d.spawn();
    for s in &services {
        d.converged(
            &c,
            s,
            3,
            &["node01", "node03"],
            "after two workers died and a daemon restart",
        );
    }
    let all = replicas(c.n(), &["node02", "node04"]);
    assert_eq!(all.len(), 60, "{all:?}");
    for ((s, i), copies) in &all {
        assert_eq!(
            copies.len(),
            1,
            "{s}.{i} has {} copies: {copies:?}",
            copies.len()
        );
        assert_eq!(copies[0].2, "running", "{s}.{i}: {copies:?}");
    }
}
