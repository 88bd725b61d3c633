//! An engine restarted under a running daemon with services: the daemon's
//! event stream reconnects (resuming with `since`), the nodes come back,
//! and the replicas run again, each once. The engine is a private one
//! (`scripts/private-engine`: its own dockerd in its own network namespace,
//! removed at the end, pass or fail), so that restarting it stops no one
//! else's containers; this whole test binary, the daemon and every mcc and
//! docker command it runs use it through `DOCKER_HOST`.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn after_an_engine_restart_the_daemon_reconnects_and_converges() {
    // Declared first, so dropped last: the cluster and the daemon go first.
    // (`require_engine_and_images` wants the Debian image there too.)
    let engine = PrivateEngine::start("engrestart", &[DOCKER_IMAGE, BUSYBOX, DEBIAN]);
    engine.use_for_this_process();
    let c = docker_workers_cluster("engrestart", "2", 243);
    let d = Daemon::start("engrestart");
    d.busybox_service(&c, "web", "3", &["--", "sleep", "86400"]);

    engine.restart();

    let path = format!("/api/v1/clusters/{}/services/web", c.n());
    let start = Instant::now();
    loop {
        let a = d.request("GET", &path, "");
        if a.status == 200 {
            let v = a.json();
            let inst = v["instances"].as_array().unwrap();
            let mut idx: Vec<u64> = inst
                .iter()
                .filter(|r| r["state"] == "running")
                .map(|r| r["replica"].as_u64().unwrap())
                .collect();
            idx.sort();
            if idx == [1, 2, 3] && inst.len() == 3 {
                break;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no convergence after the engine restart: {}\n{}",
            a.body,
            d.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // the event log saw the nodes come back: the stream reconnected
    let events = d.mcc(["events", "--since", "0", "--no-follow"]).run().ok();
    assert!(
        events
            .stdout
            .contains(&format!("container {}-node01 start", c.n())),
        "{}",
        events.describe()
    );
}
