//! `mcc host add/list/remove` on three engines of this machine
//! (`scripts/hosts`): the swarm made and joined by mcc, zones as swarm node
//! labels, an engine already in the swarm adopted, bad input refused with
//! nothing changed, a host with nodes kept, a lost host shown as such.

mod common;

use common::*;

/// The hosts file of this test, private to it.
fn hosts_file(tag: &str) -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("mcc-hosts-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let file = dir.join("mcc").join("hosts.json");
    (dir, file.to_string_lossy().into_owned())
}

fn list_json(file: &str) -> (i32, serde_json::Value) {
    let out = mcc(["host", "list", "--output", "json"])
        .env("MCC_HOSTS_FILE", file)
        .run();
    let v = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", out.describe()));
    (out.code(), v)
}

#[test]
fn hosts_join_one_swarm_with_zones_and_refuse_what_would_break_it() {
    let hosts = Hosts::up("mcchost", 3, &[BUSYBOX]);
    let (dir, file) = hosts_file("join");
    // mcc makes the swarm itself here: the harness's is left first
    for i in [3, 2, 1] {
        hosts.docker_ok(i, &["swarm", "leave", "--force"]);
    }
    let add = |name: &str, i: usize, zone: &str| {
        mcc([
            "host",
            "add",
            name,
            "--engine",
            hosts.docker_host(i),
            "--zone",
            zone,
            "--advertise-addr",
            hosts.addr(i),
        ])
        .env("MCC_HOSTS_FILE", &file)
        .run()
    };
    let out = add("h1", 1, "a").ok();
    assert!(out.stdout.contains("host h1 added"), "{}", out.describe());
    add("h2", 2, "b").ok();

    // Bad input: refused, naming the value, and the list is unchanged.
    for (args, code, says) in [
        (
            vec!["h1", "--engine", hosts.docker_host(3)],
            1,
            "listed already",
        ),
        (
            vec!["h9", "--engine", hosts.docker_host(2)],
            1,
            "is host 'h2'",
        ),
        (vec!["H3", "--engine", hosts.docker_host(3)], 2, "'H3'"),
        (
            vec!["h3", "--engine", "unix:///nonexistent.sock"],
            2,
            "nonexistent.sock",
        ),
        (
            vec!["h3", "--engine", hosts.docker_host(3), "--zone", "Zone_C"],
            2,
            "Zone_C",
        ),
        (vec!["h3", "--engine", "tcp://127.0.0.1:2376"], 2, "TLS"),
    ] {
        let mut all = vec!["host", "add"];
        all.extend(args);
        let out = mcc(&all).env("MCC_HOSTS_FILE", &file).run().code_is(code);
        assert!(out.stderr.contains(says), "{}", out.describe());
    }
    let (_, before) = list_json(&file);
    assert_eq!(before.as_array().unwrap().len(), 2, "{before:#}");
    let swarm3 = hosts.docker_ok(3, &["info", "--format", "{{.Swarm.LocalNodeState}}"]);
    assert_eq!(swarm3, "inactive", "a refused add changed host 3");

    add("h3", 3, "a").ok();
    let (code, list) = list_json(&file);
    assert_eq!(code, 0, "{list:#}");
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{list:#}");
    for (row, zone) in rows.iter().zip(["a", "b", "a"]) {
        assert_eq!(row["reachable"], true, "{row:#}");
        assert_eq!(row["zone"], zone, "{row:#}");
        assert!(
            row["swarm"] == "leader" || row["swarm"] == "manager",
            "every host is a manager: {row:#}"
        );
    }
    assert_eq!(
        rows.iter().filter(|r| r["swarm"] == "leader").count(),
        1,
        "{list:#}"
    );
    // one swarm, three managers, zones as node labels
    let nodes = hosts.docker_ok(1, &["node", "ls", "--format", "{{.ManagerStatus}}"]);
    assert_eq!(nodes.lines().count(), 3, "{nodes}");
    let labels = hosts.docker_ok(
        2,
        &[
            "node",
            "inspect",
            "self",
            "--format",
            "{{index .Spec.Labels \"mcc.zone\"}}",
        ],
    );
    assert_eq!(labels, "b");

    // A host that runs a cluster's node is not removed.
    hosts.docker_ok(
        2,
        &[
            "run",
            "-d",
            "--name",
            "lab-node01",
            "--label",
            "mcc.cluster=lab",
            BUSYBOX,
            "sleep",
            "600",
        ],
    );
    let (_, list) = list_json(&file);
    assert_eq!(list[1]["clusters"]["lab"], 1, "{list:#}");
    let out = mcc(["host", "remove", "h2"])
        .env("MCC_HOSTS_FILE", &file)
        .run()
        .code_is(1);
    assert!(out.stderr.contains("lab-node01"), "{}", out.describe());
    hosts.docker_ok(2, &["rm", "-f", "lab-node01"]);
    mcc(["host", "remove", "h2"])
        .env("MCC_HOSTS_FILE", &file)
        .run()
        .ok();
    let swarm2 = hosts.docker_ok(2, &["info", "--format", "{{.Swarm.LocalNodeState}}"]);
    assert_eq!(
        swarm2, "inactive",
        "mcc joined h2, so its remove takes it out"
    );
    let nodes = hosts.docker_ok(1, &["node", "ls", "--format", "{{.Hostname}}"]);
    assert_eq!(nodes.lines().count(), 2, "the swarm forgets h2: {nodes}");

    // A lost host: listed as unreachable, and list exits 1.
    hosts.kill(3);
    let (code, list) = list_json(&file);
    assert_eq!(code, 1, "{list:#}");
    let h3 = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "h3")
        .unwrap();
    assert_eq!(h3["reachable"], false, "{list:#}");
    assert!(h3["problem"].is_string(), "{list:#}");
    drop(hosts);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_engine_in_the_swarm_already_is_adopted_and_left_in_it() {
    let hosts = Hosts::up("mcchadopt", 2, &[BUSYBOX]);
    let (dir, file) = hosts_file("adopt");
    for (name, i) in [("h1", 1), ("h2", 2)] {
        mcc(["host", "add", name, "--engine", hosts.docker_host(i)])
            .env("MCC_HOSTS_FILE", &file)
            .run()
            .ok();
    }
    let (_, list) = list_json(&file);
    assert_eq!(list.as_array().unwrap().len(), 2, "{list:#}");
    mcc(["host", "remove", "h2"])
        .env("MCC_HOSTS_FILE", &file)
        .run()
        .ok();
    let swarm2 = hosts.docker_ok(2, &["info", "--format", "{{.Swarm.LocalNodeState}}"]);
    assert_eq!(swarm2, "active", "a swarm mcc did not make stays as it was");
    drop(hosts);
    let _ = std::fs::remove_dir_all(dir);
}

/// Claims in the swarm's store hold across managers: two mcc processes on
/// two hosts racing for one cluster name, each through its own manager,
/// never both win; only the holder gives a claim up.
#[test]
fn a_swarm_claim_has_one_winner_whichever_manager_is_asked() {
    use mcc_core::provider::DockerProvider;
    let hosts = Hosts::up("mcchclaim", 2, &[BUSYBOX]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let connect = |i: usize| DockerProvider::connect_url(hosts.docker_host(i), None, 10);
        let (one, two) = (connect(1).await.unwrap(), connect(2).await.unwrap());
        let labels =
            std::collections::HashMap::from([("mcc.cluster".to_string(), "race".to_string())]);
        for round in 0..10 {
            let key = format!("claim.race{round}");
            let (a, b) = tokio::join!(
                one.swarm_claim(&key, "one", &labels),
                two.swarm_claim(&key, "two", &labels)
            );
            let (a, b) = (a.unwrap(), b.unwrap());
            let winner = match (&a, &b) {
                (None, Some(h)) => {
                    assert_eq!(h, "one", "round {round}: the loser names the winner");
                    "one"
                }
                (Some(h), None) => {
                    assert_eq!(h, "two", "round {round}: the loser names the winner");
                    "two"
                }
                other => panic!("round {round}: not exactly one winner: {other:?}"),
            };
            let loser = if winner == "one" { "two" } else { "one" };
            // each manager sees the same holder
            assert_eq!(
                one.swarm_claim_holder(&key).await.unwrap().as_deref(),
                Some(winner)
            );
            assert_eq!(
                two.swarm_claim_holder(&key).await.unwrap().as_deref(),
                Some(winner)
            );
            assert!(
                !one.swarm_release(&key, loser).await.unwrap(),
                "a loser releases nothing"
            );
            assert!(two.swarm_release(&key, winner).await.unwrap());
            assert_eq!(one.swarm_claim_holder(&key).await.unwrap(), None);
        }
        let left = hosts.docker_ok(1, &["config", "ls", "--format", "{{.Name}}"]);
        assert_eq!(left, "", "every claim was given up");
    });
    drop(hosts);
}
