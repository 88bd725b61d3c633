//! Nodes of a running cluster: names and addresses, shared folders,
//! `exec` and `enter`.

mod common;

use common::*;

/// 1+3 busybox: every node pings every other by hostname and container
/// name, at the static addresses inspect shows; addresses and /etc/hosts
/// are the same after `mcc stop` + `mcc start`.
#[test]
fn nodes_know_each_other_by_name_across_stop_and_start() {
    let c = Cluster::new("names");
    create(&c, &image_nodes(BUSYBOX, "3", &[]));

    let view = inspect(&c);
    assert_eq!(view["name"], c.n());
    assert_eq!(view["status"], "running", "{view:#}");
    assert_eq!(view["workers"], 3, "{view:#}");
    assert_eq!(view["running"], 4, "{view:#}");
    assert_eq!(view["network"], format!("{}-net", c.n()));
    let subnet = view["subnet"].as_str().expect("subnet").to_string();
    let nodes = view["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 4, "{view:#}");
    let mut ip_of = std::collections::BTreeMap::new();
    for (i, n) in nodes.iter().enumerate() {
        let host = if i == 0 {
            "frontend".to_string()
        } else {
            format!("node{i:02}")
        };
        assert_eq!(n["name"], host.as_str(), "{view:#}");
        assert_eq!(n["hostname"], host.as_str(), "{view:#}");
        assert_eq!(n["index"], i, "{view:#}");
        assert_eq!(n["role"], if i == 0 { "frontend" } else { "worker" });
        assert_eq!(n["container"], format!("{}-{host}", c.n()));
        assert_eq!(n["state"], "running");
        assert_eq!(n["image"], BUSYBOX);
        let ip = static_ip(&subnet, i as u32).to_string();
        assert_eq!(n["ip"], ip.as_str(), "static address of {host}: {view:#}");
        ip_of.insert(host.clone(), ip.clone());
        ip_of.insert(format!("{}-{host}", c.n()), ip);
    }

    // Every node pings every name, and the name resolves to the node's address.
    let check_pings = |when: &str| {
        let from = ["frontend", "node01", "node02", "node03"];
        assert_reach(&c, "all", &from, &ip_of, when);
    };
    check_pings("after create");

    let hosts_of = |when: &str| hosts_files(&c, 4, when);
    let before = hosts_of("before stop");
    let first = before.values().next().expect("a hosts file").clone();
    for (node, text) in &before {
        assert_eq!(text, &first, "{node}'s /etc/hosts differs from the others'");
    }
    let entries = hosts_entries(&first);
    assert_eq!(entries.len(), 4, "{first}");
    for (host, (ip, names)) in &entries {
        assert_eq!(Some(ip), ip_of.get(host), "{first}");
        assert_eq!(names, &vec![host.clone(), format!("{}-{host}", c.n())]);
    }

    mcc(["stop", c.n()]).run().ok();
    let stopped = inspect(&c);
    assert_eq!(stopped["status"], "stopped", "{stopped:#}");
    assert_eq!(stopped["running"], 0, "{stopped:#}");
    for (node, (_, state)) in node_table(&stopped) {
        assert_ne!(state, "running", "{node} still runs after stop");
    }

    mcc(["start", c.n()]).run().ok();
    let started = inspect(&c);
    assert_eq!(started["status"], "running", "{started:#}");
    assert_eq!(started["running"], 4, "{started:#}");
    assert_eq!(
        node_table(&started),
        node_table(&view),
        "addresses changed across stop/start"
    );
    assert_eq!(hosts_of("after start"), before, "/etc/hosts changed");
    check_pings("after stop and start");
}

/// `--device home`: one volume on every node.
#[test]
fn device_home_is_shared_by_every_node() {
    let c = Cluster::new("home");
    create(&c, &image_nodes(BUSYBOX, "3", &["--device", "home"]));
    let token = format!("written on node01 of {}", c.n());
    sh(&c, "node01", &format!("echo '{token}' > /home/probe.txt")).ok();
    let out = sh(&c, "node03,frontend", "cat /home/probe.txt").ok();
    assert_each_printed(&out, &["node03", "frontend"], "", |_| format!("{token}\n"));
    let vols = labelled(c.n()).volumes;
    assert!(
        vols.contains(&format!("{}-home", c.n())),
        "no volume {}-home: {vols:?}",
        c.n()
    );
}

/// `exec` prefixes lines by node and fails (exit 1) naming the failed nodes.
#[test]
fn exec_prefixes_lines_and_reports_failed_nodes() {
    let c = Cluster::new("exec");
    create(&c, &image_nodes(BUSYBOX, "2", &[]));

    let out = sh(&c, "all", "echo \"hi from $(hostname)\"; echo second line").ok();
    let lines = out.node_lines();
    assert_eq!(lines.len(), 6, "{}", out.describe());
    for node in ["frontend", "node01", "node02"] {
        assert!(
            lines
                .iter()
                .any(|(n, t)| n == node && *t == format!("hi from {node}")),
            "{}",
            out.describe()
        );
        assert!(
            lines.iter().any(|(n, t)| n == node && t == "second line"),
            "{}",
            out.describe()
        );
    }
    for l in out.stdout.lines() {
        assert!(l.contains(" | "), "line without a node prefix: {l:?}");
    }

    let out = sh(&c, "node01,node02", "exit 3").code_is(1);
    for node in ["node01", "node02"] {
        assert!(out.stderr.contains(node), "{}", out.describe());
    }
    assert!(out.stderr.contains("exit 3"), "{}", out.describe());
    assert!(!out.stderr.contains("frontend"), "{}", out.describe());

    // one node of three failing: only it is named
    let out = sh(&c, "all", "test \"$(hostname)\" != node02").code_is(1);
    assert!(out.stderr.contains("node02"), "{}", out.describe());
    assert!(
        !out.stderr.contains("node01") && !out.stderr.contains("frontend"),
        "{}",
        out.describe()
    );

    let out = sh(&c, "workers", "hostname").ok();
    let per = per_node(&out);
    assert_eq!(
        per.keys().cloned().collect::<Vec<_>>(),
        vec!["node01", "node02"],
        "{}",
        out.describe()
    );
}

/// `enter` runs a command on one node and exits with its code; without a
/// terminal, stdin is passed through.
#[test]
fn enter_runs_a_command_and_returns_its_exit_code() {
    let c = Cluster::new("enter");
    create(&c, &image_nodes(BUSYBOX, "1", &[]));

    let out = mcc([
        "enter",
        c.n(),
        "node01",
        "--",
        "sh",
        "-c",
        "hostname; exit 5",
    ])
    .run()
    .code_is(5);
    assert_eq!(out.stdout.trim(), "node01", "{}", out.describe());

    let out = mcc(["enter", c.n(), "--", "hostname"]).run().ok();
    assert_eq!(out.stdout.trim(), "frontend", "{}", out.describe());

    let out = mcc(["enter", c.n(), "node01", "--", "cat"])
        .stdin("through stdin\n")
        .run()
        .ok();
    assert_eq!(out.stdout, "through stdin\n", "{}", out.describe());

    let out = mcc(["enter", c.n(), "node07", "--", "true"]).run();
    assert_ne!(out.code(), 0, "{}", out.describe());
    assert!(out.stderr.contains("node07"), "{}", out.describe());
}
