//! The context's `on-change/` hooks: they run on every running node after
//! the create and after every addnode, delnode and recreate, with
//! MCC_NODES listing the workers as they are then.

mod common;

use std::collections::BTreeMap;

use common::*;

/// Appends `MCC_NODE:MCC_NODES` to a log every node shares, and keeps on
/// the node itself a numbered file per run holding MCC_NODES.
const HOOK: &str = "#!/bin/sh\nset -e\n\
    echo \"$MCC_NODE:$MCC_NODES\" >> \"$MCC_SHARED/on-change.log\"\n\
    n=$(cat /tmp/on-change-count 2>/dev/null || echo 0)\n\
    n=$((n + 1))\n\
    echo \"$MCC_NODES\" > /tmp/on-change-$n\n\
    echo $n > /tmp/on-change-count\n\
    echo \"on-change $n on $MCC_NODE\"\n";

/// Reads the shared log's lines past the first `seen`, sorted.
fn new_log_lines(c: &Cluster, seen: &mut usize) -> Vec<String> {
    let out = sh(c, "frontend", "cat /opt/mcc/shared/on-change.log").ok();
    let text = per_node(&out).remove("frontend").unwrap_or_default();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    assert!(lines.len() >= *seen, "the log shrank: {}", out.describe());
    let mut new = lines[*seen..].to_vec();
    *seen = lines.len();
    new.sort();
    new
}

/// Checks one round of hooks: the shared log got exactly one line per
/// node of `nodes`, each with `workers`; on each node the latest run is
/// number `runs[node]` and saw `workers`.
#[track_caller]
fn assert_round(
    c: &Cluster,
    seen: &mut usize,
    nodes: &[&str],
    workers: &str,
    runs: &BTreeMap<&str, u32>,
    when: &str,
) {
    let mut want: Vec<String> = nodes.iter().map(|n| format!("{n}:{workers}")).collect();
    want.sort();
    assert_eq!(
        new_log_lines(c, seen),
        want,
        "{when}: the hooks that ran (node:MCC_NODES)"
    );
    let out = sh(
        c,
        "all",
        "n=$(cat /tmp/on-change-count); echo \"$n $(cat /tmp/on-change-$n)\"",
    )
    .ok();
    let per = per_node(&out);
    assert_eq!(per.len(), nodes.len(), "{when}: {}", out.describe());
    for node in nodes {
        assert_eq!(
            per.get(*node).map(String::as_str),
            Some(format!("{} {workers}\n", runs[node]).as_str()),
            "{when}: runs of the hook on {node} and its MCC_NODES: {}",
            out.describe()
        );
    }
}

/// Every node in `runs` ran the hook once more.
fn one_more_run(runs: &mut BTreeMap<&str, u32>) {
    for n in runs.values_mut() {
        *n += 1;
    }
}

#[test]
fn on_change_hooks_run_on_every_node_with_the_current_workers() {
    let c = Cluster::new("hooks");
    let ctx = context_folder("hooks", &[("on-change/10-record", HOOK, 0o755)]);
    let subnet = test_subnet(232);
    create(
        &c,
        &on_subnet(BUSYBOX, "2", &subnet, &["--context-folder", &ctx.arg()]),
    );
    let mut seen = 0;
    let mut runs = BTreeMap::from([("frontend", 1), ("node01", 1), ("node02", 1)]);
    assert_round(
        &c,
        &mut seen,
        &["frontend", "node01", "node02"],
        "node01 node02",
        &runs,
        "after create",
    );

    mcc(["addnode", c.n()]).run().ok();
    one_more_run(&mut runs);
    runs.insert("node03", 1);
    assert_round(
        &c,
        &mut seen,
        &["frontend", "node01", "node02", "node03"],
        "node01 node02 node03",
        &runs,
        "after addnode",
    );

    mcc(["delnode", c.n(), "node01"]).run().ok();
    runs.remove("node01");
    one_more_run(&mut runs);
    assert_round(
        &c,
        &mut seen,
        &["frontend", "node02", "node03"],
        "node02 node03",
        &runs,
        "after delnode",
    );

    // a recreated node starts afresh; the others run once more
    mcc(["recreate", c.n(), "node02"]).run().ok();
    one_more_run(&mut runs);
    runs.insert("node02", 1);
    assert_round(
        &c,
        &mut seen,
        &["frontend", "node02", "node03"],
        "node02 node03",
        &runs,
        "after recreate",
    );

    // the hook's output is in each node's context log
    let logs = mcc(["logs", c.n(), "node03"]).run().ok();
    assert!(
        logs.stdout.contains("on-change 3 on node03"),
        "{}",
        logs.describe()
    );
}
