//! `addnode` and `delnode`: the hosts file every node shares follows the
//! cluster's membership, new nodes run the context, the front-end stays.

mod common;

use std::collections::BTreeSet;

use common::*;

/// The node names every running node's /etc/hosts lists, checked to be the
/// same file everywhere and to match inspect's addresses and container names.
#[track_caller]
fn assert_hosts_list_exactly(c: &Cluster, nodes: &[&str]) {
    let want: BTreeSet<String> = nodes.iter().map(|s| s.to_string()).collect();
    let view = inspect(c);
    let table = node_table(&view);
    assert_eq!(
        table.keys().cloned().collect::<BTreeSet<_>>(),
        want,
        "inspect: {view:#}"
    );
    let out = mcc(["exec", c.n(), "--", "cat", "/etc/hosts"]).run().ok();
    let per = per_node(&out);
    assert_eq!(
        per.keys().cloned().collect::<BTreeSet<_>>(),
        want,
        "exec ran on other nodes than expected: {}",
        out.describe()
    );
    for (node, text) in &per {
        let entries = hosts_entries(text);
        assert_eq!(
            entries.keys().cloned().collect::<BTreeSet<_>>(),
            want,
            "/etc/hosts of {node} lists other nodes than {want:?}:\n{text}"
        );
        for (host, (ip, names)) in &entries {
            assert_eq!(ip, &table[host].0, "address of {host} in {node}'s hosts");
            assert_eq!(
                names,
                &vec![host.clone(), format!("{}-{host}", c.n())],
                "names of {host} in {node}'s hosts"
            );
        }
    }
}

#[test]
fn addnode_and_delnode_keep_every_hosts_file_current() {
    let c = Cluster::new("members");
    let ctx = context_folder(
        "members",
        &[(
            "all/10-mark",
            "#!/bin/sh\necho \"$MCC_NODE $MCC_ROLE\" > /etc/mcc-context-ran\necho \"context on $MCC_NODE\"\n",
            0o755,
        )],
    );
    create(
        &c,
        &image_nodes(BUSYBOX, "2", &["--context-folder", &ctx.arg()]),
    );
    assert_hosts_list_exactly(&c, &["frontend", "node01", "node02"]);

    let out = mcc(["addnode", c.n(), "--count", "2"]).run().ok();
    assert!(
        out.stdout.contains("node03") && out.stdout.contains("node04"),
        "{}",
        out.describe()
    );
    assert_hosts_list_exactly(&c, &["frontend", "node01", "node02", "node03", "node04"]);
    let ran = sh(&c, "node03,node04", "cat /etc/mcc-context-ran").ok();
    assert_each_printed(
        &ran,
        &["node03", "node04"],
        "the new node did not run the context: ",
        |node| format!("{node} worker\n"),
    );
    let logs = mcc(["logs", c.n(), "node04"]).run().ok();
    assert!(
        logs.stdout.contains("context on node04"),
        "{}",
        logs.describe()
    );
    // the new nodes reach the old ones by name, and the other way round
    sh(&c, "node04", "ping -c1 -W2 node01 && ping -c1 -W2 frontend").ok();
    sh(&c, "node01", "ping -c1 -W2 node04").ok();

    // one old and one new node
    mcc(["delnode", c.n(), "node01", "node04"]).run().ok();
    assert_hosts_list_exactly(&c, &["frontend", "node02", "node03"]);
    let names = labelled(c.n()).containers;
    for gone in ["node01", "node04"] {
        assert!(
            !names.contains(&format!("{}-{gone}", c.n())),
            "{gone} still has a container: {names:?}"
        );
    }

    // --count removes the highest-numbered
    let out = mcc(["delnode", c.n(), "--count", "1"]).run().ok();
    assert!(out.stdout.contains("1 worker"), "{}", out.describe());
    assert_hosts_list_exactly(&c, &["frontend", "node02"]);

    // the front-end cannot go
    let out = mcc(["delnode", c.n(), "frontend"]).run().code_is(2);
    assert!(out.stderr.contains("front-end"), "{}", out.describe());
    assert_hosts_list_exactly(&c, &["frontend", "node02"]);
    let view = inspect(&c);
    assert_eq!(view["status"], "running", "{view:#}");
}

/// Two `addnode` at once both succeed (the cluster's lock serializes
/// them), with different nodes; every node reported exists afterwards and
/// every hosts file lists exactly the cluster's nodes.
#[test]
fn concurrent_addnodes_keep_every_reported_node() {
    let c = Cluster::new("addrace");
    create(&c, &image_nodes(BUSYBOX, "1", &[]));
    let a = mcc(["addnode", c.n(), "--output", "json"]).spawn();
    let b = mcc(["addnode", c.n(), "--output", "json"]).spawn();
    let outs = [a.wait(TIMEOUT), b.wait(TIMEOUT)];
    assert!(
        outs.iter().all(|o| o.status.success()),
        "both addnodes must succeed:\n{}\n{}",
        outs[0].describe(),
        outs[1].describe()
    );

    let view = inspect(&c);
    let table = node_table(&view);
    for out in outs.iter().filter(|o| o.status.success()) {
        let added: serde_json::Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("addnode JSON: {e}: {}", out.describe()));
        for n in added.as_array().expect("a list of nodes") {
            let name = n["name"].as_str().expect("a node name");
            assert!(
                table.contains_key(name),
                "{name} was reported added but is not in the cluster \
                 (removed by the other addnode's rollback?)\n{}\n{}\ninspect: {view:#}",
                outs[0].describe(),
                outs[1].describe()
            );
        }
    }
    let nodes: Vec<&str> = table.keys().map(String::as_str).collect();
    assert_eq!(
        nodes.len(),
        4,
        "front-end, node01 and one node per addnode: {view:#}"
    );
    assert_hosts_list_exactly(&c, &nodes);
    let states: Vec<&String> = table.values().map(|(_, s)| s).collect();
    assert!(states.iter().all(|s| *s == "running"), "{view:#}");
}
