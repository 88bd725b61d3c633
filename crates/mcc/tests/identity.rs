//! Nodes that keep their identity: `--persist` volumes, `mcc recreate`
//! (also of a node removed behind mcc's back), `delnode --keep-state`
//! then `addnode`, and systemd nodes.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;

/// `container name -> id` of the cluster's containers.
fn container_ids(name: &str) -> BTreeMap<String, String> {
    containers_by_name(name, |c| c.id.clone())
}

/// The expected `--persist` volumes of these nodes and paths.
fn expected_persist(
    c: &Cluster,
    nodes: &[&str],
    paths: &[&str],
) -> BTreeMap<String, (String, String)> {
    let mut m = BTreeMap::new();
    for node in nodes {
        for path in paths {
            let slug = path.trim_matches('/').replace('/', "-");
            m.insert(
                format!("{}-{node}.{slug}", c.n()),
                (node.to_string(), path.to_string()),
            );
        }
    }
    m
}

/// What a node holds: `node -> text` for a script that prints the probe
/// files (or "missing <file>").
const SHOW_PROBES: &str = "for f in /data/kept /var/lib/state/kept /root/outside; do \
     if [ -f \"$f\" ]; then echo \"$f=$(cat \"$f\")\"; else echo \"missing $f\"; fi; done; \
     echo \"ip=$(hostname -i)\"";

fn probes(node: &str, ip: &str, kept: bool, outside: bool) -> String {
    let mut s = String::new();
    for f in ["/data/kept", "/var/lib/state/kept"] {
        if kept {
            s.push_str(&format!("{f}={f} of {node}\n"));
        } else {
            s.push_str(&format!("missing {f}\n"));
        }
    }
    if outside {
        s.push_str(&format!("/root/outside=outside of {node}\n"));
    } else {
        s.push_str("missing /root/outside\n");
    }
    s.push_str(&format!("ip={ip}\n"));
    s
}

/// 1+2 busybox with two persisted paths: one volume per node and path,
/// labelled; `mcc recreate` makes a new container with the same name and
/// address that keeps what was under the persisted paths and loses the
/// rest, also for a node whose container was removed behind mcc's back;
/// `mcc delete` removes the volumes.
#[test]
fn persisted_data_survives_recreate_and_the_rest_does_not() {
    let c = Cluster::new("persist");
    let subnet = test_subnet(228);
    create(
        &c,
        &on_subnet(
            BUSYBOX,
            "2",
            &subnet,
            &["--persist", "/data", "--persist", "/var/lib/state/"],
        ),
    );
    let nodes = ["frontend", "node01", "node02"];
    let paths = ["/data", "/var/lib/state"];
    let volumes = expected_persist(&c, &nodes, &paths);
    assert_eq!(persist_volumes(c.n()), volumes, "the persist volumes");
    let ip = |i: u32| static_ip(&subnet, i).to_string();

    sh(
        &c,
        "all",
        "set -e; for f in /data/kept /var/lib/state/kept; do echo \"$f of $(hostname)\" > $f; done; \
         mkdir -p /root; echo \"outside of $(hostname)\" > /root/outside",
    )
    .ok();
    let out = sh(&c, "all", SHOW_PROBES).ok();
    let per = per_node(&out);
    for (i, node) in nodes.iter().enumerate() {
        assert_eq!(
            per.get(*node),
            Some(&probes(node, &ip(i as u32), true, true)),
            "{}",
            out.describe()
        );
    }

    // recreate node01: a new container, same address, only persisted data
    let ids = container_ids(c.n());
    let out = mcc(["recreate", c.n(), "node01"]).run().ok();
    assert!(out.stdout.contains(&ip(1)), "{}", out.describe());
    let after = container_ids(c.n());
    let key = |n: &str| format!("{}-{n}", c.n());
    assert_ne!(
        after[&key("node01")],
        ids[&key("node01")],
        "node01 was not made again"
    );
    assert_eq!(
        after[&key("node02")],
        ids[&key("node02")],
        "node02 was touched"
    );
    assert_eq!(after[&key("frontend")], ids[&key("frontend")]);
    let out = sh(&c, "all", SHOW_PROBES).ok();
    let per = per_node(&out);
    assert_eq!(
        per.get("node01"),
        Some(&probes("node01", &ip(1), true, false)),
        "after recreate: {}",
        out.describe()
    );
    assert_eq!(
        per.get("node02"),
        Some(&probes("node02", &ip(2), true, true)),
        "{}",
        out.describe()
    );
    assert_eq!(persist_volumes(c.n()), volumes, "after recreate");

    // node02 removed behind mcc's back
    remove_behind_mccs_back(&key("node02"));
    let view = inspect(&c);
    assert_eq!(
        node_table(&view).get("node02"),
        Some(&(ip(2), "missing".to_string())),
        "node02 must be shown missing, at its address: {view:#}"
    );
    assert_eq!(view["status"], "degraded", "{view:#}");
    assert_eq!(
        view["workers"], 2,
        "a missing worker is still a worker: {view:#}"
    );
    // one status, computed once: list says what inspect says
    let out = mcc(["list", "--output", "json"]).run().ok();
    let list: serde_json::Value = serde_json::from_str(&out.stdout).expect("list JSON");
    let me = list
        .as_array()
        .and_then(|l| l.iter().find(|v| v["name"] == c.n()))
        .unwrap_or_else(|| panic!("{} not listed: {}", c.n(), out.describe()));
    assert_eq!(me["status"], "degraded", "{me:#}");
    assert_eq!(me["workers"], 2, "{me:#}");
    assert_eq!(me["running"], 2, "{me:#}");
    let out = mcc(["list"]).run().ok();
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with(c.n()))
        .unwrap_or_else(|| panic!("{}", out.describe()));
    assert!(line.contains("degraded"), "{line}");
    let out = mcc(["recreate", c.n(), "node02"]).run().ok();
    assert!(out.stderr.contains("node02"), "{}", out.describe());
    let view = inspect(&c);
    assert_eq!(view["status"], "running", "{view:#}");
    assert_eq!(
        node_table(&view)
            .into_iter()
            .map(|(n, (ip, _))| (n, ip))
            .collect::<BTreeMap<_, _>>(),
        BTreeMap::from([
            ("frontend".to_string(), ip(0)),
            ("node01".to_string(), ip(1)),
            ("node02".to_string(), ip(2)),
        ]),
        "{view:#}"
    );
    let out = sh(&c, "node02", SHOW_PROBES).ok();
    assert_eq!(
        per_node(&out).get("node02"),
        Some(&probes("node02", &ip(2), true, false)),
        "after recreate of a removed node: {}",
        out.describe()
    );
    sh(&c, "frontend,node01", "ping -c1 -W2 node02").ok();
    assert_eq!(
        persist_volumes(c.n()),
        volumes,
        "after recreate of a removed node"
    );

    let out = mcc(["delete", c.n()]).run().ok();
    assert_nothing_labelled(c.n(), &format!("after {}", out.cmdline));
}

/// 1+3 busybox with /data persisted: `delnode --keep-state` keeps the
/// node's volume and the next `addnode` (the lowest free number) gets the
/// data back; `delnode` alone removes the volumes; `delete --keep-volumes`
/// keeps them and a new cluster of the name gets them back.
#[test]
fn delnode_keep_state_then_addnode_gets_the_data_back() {
    let c = Cluster::new("keepst");
    let subnet = test_subnet(229);
    let args = on_subnet(BUSYBOX, "3", &subnet, &["--persist", "/data"]);
    create(&c, &args);
    sh(&c, "all", "hostname > /data/who").ok();
    let all = ["frontend", "node01", "node02", "node03"];
    assert_eq!(
        persist_volumes(c.n()),
        expected_persist(&c, &all, &["/data"])
    );

    mcc(["delnode", c.n(), "node02", "--keep-state"]).run().ok();
    assert_eq!(
        persist_volumes(c.n()),
        expected_persist(&c, &all, &["/data"]),
        "delnode --keep-state removed node02's volume"
    );
    assert!(!container_states(c.n()).contains_key(&format!("{}-node02", c.n())));

    mcc(["delnode", c.n(), "node03"]).run().ok();
    assert_eq!(
        persist_volumes(c.n()),
        expected_persist(&c, &["frontend", "node01", "node02"], &["/data"]),
        "delnode without --keep-state kept node03's volume (or removed node02's)"
    );

    let out = mcc(["addnode", c.n()]).run().ok();
    assert!(out.stdout.contains("node02"), "{}", out.describe());
    let out = sh(&c, "node02", "cat /data/who; hostname -i").ok();
    assert_eq!(
        per_node(&out).get("node02").map(String::as_str),
        Some(format!("node02\n{}\n", static_ip(&subnet, 2)).as_str()),
        "node02 did not get its data back: {}",
        out.describe()
    );

    let out = mcc(["addnode", c.n()]).run().ok();
    assert!(out.stdout.contains("node03"), "{}", out.describe());
    let out = sh(&c, "node03", "ls -A /data").ok();
    assert_eq!(
        per_node(&out).get("node03"),
        None,
        "node03's removed volume came back: {}",
        out.describe()
    );

    // delnode --count --keep-state, then the whole cluster with --keep-volumes
    mcc(["delnode", c.n(), "--count", "1", "--keep-state"])
        .run()
        .ok();
    let kept = expected_persist(&c, &all, &["/data"]);
    assert_eq!(persist_volumes(c.n()), kept);
    let out = mcc(["delete", c.n(), "--keep-volumes"]).run().ok();
    let o = labelled(c.n());
    assert!(
        o.containers.is_empty() && o.networks.is_empty(),
        "{o:?}: {}",
        out.describe()
    );
    assert_eq!(persist_volumes(c.n()), kept, "{}", out.describe());

    // a new cluster of the same name gets every node's data back
    create(&c, &args);
    let out = sh(&c, "all", "cat /data/who 2>/dev/null || echo none").ok();
    assert_each_printed(&out, &["frontend", "node01", "node02"], "", |node| {
        format!("{node}\n")
    });
    let per = per_node(&out);
    assert_eq!(per.get("node03").map(String::as_str), Some("none\n"));

    mcc(["delete", c.n()]).run().ok();
    assert_nothing_labelled(c.n(), "after mcc delete");
}

/// Which state systemd reports on each node.
fn systemd_states(c: &Cluster) -> BTreeMap<String, String> {
    let out = sh(
        c,
        "all",
        "echo \"$(cat /proc/1/comm) $(systemctl is-system-running)\"",
    );
    // is-system-running exits non-zero when degraded: read the lines anyway
    per_node(&out)
}

#[track_caller]
fn assert_systemd_up(c: &Cluster, nodes: &[&str], when: &str) {
    let states = systemd_states(c);
    assert_eq!(
        states.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        nodes.iter().copied().collect::<BTreeSet<_>>(),
        "{when}: {states:?}"
    );
    for (node, s) in &states {
        assert!(
            s == "systemd running\n" || s == "systemd degraded\n",
            "{when}: {node}: PID 1 and system state are {s:?}, not systemd running or degraded"
        );
    }
}

/// 1+2 Debian nodes with `--systemd --mount-modules --persist /var
/// --domain`: `hostname -f` gives the full name;
/// systemd is PID 1 and running on every node as soon as create returns,
/// and again as soon as `mcc start` and `mcc recreate` return; /lib/modules
/// is read-only; `mcc stop` lets systemd shut down well within the stop
/// timeout; /var survives the recreate.
#[test]
fn systemd_runs_in_every_node_across_stop_start_and_recreate() {
    let c = Cluster::new("sysd");
    let subnet = test_subnet(230);
    create(
        &c,
        &on_subnet(
            DEBIAN,
            "2",
            &subnet,
            &[
                "--systemd",
                "--mount-modules",
                "--persist",
                "/var",
                "--domain",
                "sysd.test",
            ],
        ),
    );
    let nodes = ["frontend", "node01", "node02"];
    assert_systemd_up(&c, &nodes, "right after create");

    // glibc's `hostname -f` finds the node's full name in the shared hosts file
    let out = sh(&c, "all", "echo \"$(hostname) $(hostname -f)\"").ok();
    assert_each_printed(&out, &nodes, "", |node| {
        format!("{node} {node}.sysd.test\n")
    });

    // /lib is a link to /usr/lib in Debian: the mount shows at the link's target
    let out = sh(
        &c,
        "all",
        "p=$(readlink -f /lib/modules); \
         awk -v p=\"$p\" '$2 == p { split($4, o, \",\"); print o[1] }' /proc/mounts; \
         touch /lib/modules/.mcc-probe 2>/dev/null && echo writable || echo read-only; \
         ls -A /lib/modules",
    )
    .ok();
    let mut host_modules: Vec<String> = std::fs::read_dir("/lib/modules")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    host_modules.sort();
    let mut want = "ro\nread-only\n".to_string();
    for m in &host_modules {
        want.push_str(m);
        want.push('\n');
    }
    let per = per_node(&out);
    assert_eq!(per.len(), 3, "{}", out.describe());
    for (node, text) in per {
        assert_eq!(text, want, "{node}: /lib/modules: {}", out.describe());
    }
    sh(
        &c,
        "all",
        "echo \"var of $(hostname)\" > /var/mcc-probe; echo gone > /root/outside",
    )
    .ok();

    let started = std::time::Instant::now();
    mcc(["stop", c.n()]).run().ok();
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(9),
        "mcc stop of systemd nodes took {took:?}: systemd was killed at the timeout \
         instead of shutting down"
    );
    let states = container_states(c.n());
    for node in nodes {
        assert_ne!(
            states.get(&format!("{}-{node}", c.n())).map(String::as_str),
            Some("running"),
            "{states:?}"
        );
    }
    mcc(["start", c.n()]).run().ok();
    assert_systemd_up(&c, &nodes, "right after stop and start");

    mcc(["recreate", c.n(), "node02"]).run().ok();
    assert_systemd_up(&c, &nodes, "right after recreate of node02");
    let out = sh(&c, "node02", "cat /var/mcc-probe; ls /root; hostname -i").ok();
    assert_eq!(
        per_node(&out).get("node02"),
        Some(&format!("var of node02\n{}\n", static_ip(&subnet, 2))),
        "{}",
        out.describe()
    );
}

/// `recreate` brings back nodes the cluster has (or had): asked for a
/// node it never had, it must refuse (exit 2) and make nothing, not add
/// a worker.
#[test]
fn recreate_refuses_a_node_the_cluster_never_had() {
    let c = Cluster::new("recnew");
    let subnet = test_subnet(231);
    create(&c, &on_subnet(BUSYBOX, "1", &subnet, &[]));
    let before = labelled(c.n());
    let out = mcc(["recreate", c.n(), "node07"]).run();
    let after = labelled(c.n());
    assert_eq!(
        out.status.code(),
        Some(2),
        "recreate of a node the cluster never had: {}\nobjects now: {after:?}",
        out.describe()
    );
    assert!(out.stderr.contains("node07"), "{}", out.describe());
    assert_eq!(after, before, "recreate of node07 changed the cluster");
    let out = mcc(["exec", c.n(), "--on", "frontend", "--", "cat", "/etc/hosts"])
        .run()
        .ok();
    assert!(!out.stdout.contains("node07"), "{}", out.describe());
}

/// A node named twice in one `recreate` (`node01 node01`, or `node1
/// node01`) is recreated once, or the command is refused before anything
/// is touched: either way node01 exists afterwards, on its address, with
/// its data. (Today both copies are made at once, one fails on the name,
/// and the rollback removes node01 from the cluster.)
#[test]
fn recreate_of_a_node_named_twice_keeps_the_node() {
    let c = Cluster::new("recdup");
    let subnet = test_subnet(233);
    create(
        &c,
        &on_subnet(BUSYBOX, "1", &subnet, &["--persist", "/data"]),
    );
    sh(&c, "node01", "hostname > /data/who").ok();
    for twice in [["node01", "node01"], ["node1", "node01"]] {
        let out = mcc(["recreate", c.n(), twice[0], twice[1]]).run();
        let view = inspect(&c);
        let table = node_table(&view);
        assert_eq!(
            table.get("node01"),
            Some(&(static_ip(&subnet, 1).to_string(), "running".to_string())),
            "node01 is gone after `{}`: {}\ninspect: {view:#}",
            out.cmdline,
            out.describe()
        );
        let got = sh(&c, "node01", "cat /data/who").ok();
        assert_eq!(
            per_node(&got).get("node01").map(String::as_str),
            Some("node01\n"),
            "{}",
            got.describe()
        );
        let hosts = sh(&c, "frontend", "cat /etc/hosts").ok();
        let text = per_node(&hosts).remove("frontend").unwrap_or_default();
        assert!(
            hosts_entries(&text).contains_key("node01"),
            "the hosts file lost node01: {}",
            hosts.describe()
        );
        assert!(
            matches!(out.status.code(), Some(0) | Some(2)),
            "{}",
            out.describe()
        );
    }
}

/// A recreate whose scripts fail leaves the node missing, not forgotten:
/// every hosts file still lists it and a later recreate brings it back.
#[test]
fn failed_recreate_keeps_the_node_a_member() {
    let c = Cluster::new("refail");
    // fails on its second run only, while the flag file is there
    let ctx = context_folder(
        "refail",
        &[(
            "workers/10-once",
            "if [ -e \"$MCC_SHARED/fail-$MCC_NODE\" ]; then echo second run; exit 3; fi\n",
            0o644,
        )],
    );
    create(
        &c,
        &image_nodes(BUSYBOX, "2", &["--context-folder", &ctx.arg()]),
    );
    sh(&c, "frontend", "touch \"$MCC_SHARED/fail-node01\"").ok();
    let out = mcc(["recreate", c.n(), "node01"]).run().code_is(1);
    assert!(out.stderr.contains("exit code 3"), "{}", out.describe());
    let view = inspect(&c);
    assert_eq!(
        node_table(&view)
            .get("node01")
            .map(|(_, state)| state.as_str()),
        Some("missing"),
        "{view:#}"
    );
    let out = sh(&c, "node02", "grep -c node01 /etc/hosts").ok();
    assert_eq!(
        out.node_lines(),
        vec![("node02".into(), "1".into())],
        "node01 must stay in the hosts files"
    );
    sh(&c, "frontend", "rm \"$MCC_SHARED/fail-node01\"").ok();
    mcc(["recreate", c.n(), "node01"]).run().ok();
    assert_eq!(inspect(&c)["status"], "running");
}
