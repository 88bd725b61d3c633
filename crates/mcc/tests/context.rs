//! Context folders: scripts run at create, their environment, order and
//! logs; a failing script; the ssh example.

mod common;

use common::*;

/// all/ runs everywhere with MCC_* set, frontend/ runs before workers/,
/// and `mcc logs` shows each node's output.
#[test]
fn context_scripts_run_in_order_with_their_environment() {
    let c = Cluster::new("ctx");
    let ctx = context_folder(
        "ctx",
        &[
            // executable: run directly
            (
                "all/10-identity",
                "#!/bin/sh\nset -e\n\
                 printf 'node=%s role=%s nodes=%s cluster=%s frontend=%s\\n' \
                   \"$MCC_NODE\" \"$MCC_ROLE\" \"$MCC_NODES\" \"$MCC_CLUSTER\" \"$MCC_FRONTEND\" \
                   > /etc/mcc-identity\n\
                 echo \"identity of $MCC_NODE written\"\n",
                0o755,
            ),
            // not executable: run with sh. It waits a little before writing so
            // that a worker started too early would find nothing.
            (
                "frontend/20-seed",
                "set -e\nsleep 1\necho \"seed-from-$MCC_NODE\" > \"$MCC_SHARED/seed\"\n\
                 echo \"$MCC_NODE planted the seed in $MCC_SHARED\"\n",
                0o644,
            ),
            (
                "workers/20-read-seed",
                "#!/bin/sh\nif [ ! -s \"$MCC_SHARED/seed\" ]; then echo \"no seed on $MCC_NODE\"; exit 9; fi\n\
                 cp \"$MCC_SHARED/seed\" /etc/mcc-seed\n\
                 echo \"$MCC_NODE read $(cat \"$MCC_SHARED/seed\")\"\n",
                0o755,
            ),
        ],
    );
    create(
        &c,
        &image_nodes(BUSYBOX, "2", &["--context-folder", &ctx.arg()]),
    );

    let out = sh(&c, "all", "cat /etc/mcc-identity").ok();
    let per = per_node(&out);
    for (node, role) in [
        ("frontend", "frontend"),
        ("node01", "worker"),
        ("node02", "worker"),
    ] {
        let want = format!(
            "node={node} role={role} nodes=node01 node02 cluster={} frontend=frontend\n",
            c.n()
        );
        assert_eq!(
            per.get(node).map(String::as_str),
            Some(want.as_str()),
            "{}",
            out.describe()
        );
    }

    let out = sh(&c, "workers", "cat /etc/mcc-seed").ok();
    assert_each_printed(&out, &["node01", "node02"], "", |_| {
        "seed-from-frontend\n".into()
    });

    let logs = mcc(["logs", c.n()]).run().ok();
    let sections: Vec<&str> = logs.stdout.split("===== ").skip(1).collect();
    assert_eq!(sections.len(), 3, "{}", logs.describe());
    for (section, node) in sections.iter().zip(["frontend", "node01", "node02"]) {
        assert!(
            section.starts_with(&format!("{node} =====")),
            "{}",
            logs.describe()
        );
        assert!(
            section.contains(&format!("identity of {node} written")),
            "{}",
            logs.describe()
        );
    }
    assert!(
        sections[0].contains("frontend planted the seed in /opt/mcc/shared"),
        "{}",
        logs.describe()
    );
    for (i, node) in [(1, "node01"), (2, "node02")] {
        assert!(
            sections[i].contains(&format!("{node} read seed-from-frontend")),
            "{}",
            logs.describe()
        );
    }

    let one = mcc(["logs", c.n(), "node02"]).run().ok();
    assert!(
        one.stdout.contains("node02 read seed-from-frontend"),
        "{}",
        one.describe()
    );
    assert!(
        !one.stdout.contains("node01") && !one.stdout.contains("planted"),
        "logs of node02 show other nodes' output: {}",
        one.describe()
    );
}

/// A script exiting 7 fails the create (exit 1) with a message naming the
/// node, the script, the exit code and its last line, and removes every
/// object; with --keep-on-failure they stay until `mcc delete`.
#[test]
fn failing_context_script_fails_the_create_and_cleans_up() {
    let ctx = context_folder(
        "fail",
        &[(
            "workers/10-break",
            "#!/bin/sh\necho \"first line on $MCC_NODE\"\necho \"last words of $MCC_NODE\"\nexit 7\n",
            0o755,
        )],
    );

    let c = Cluster::new("fail");
    let folder = ctx.arg();
    let args = image_nodes(BUSYBOX, "2", &["--context-folder", &folder]);
    let out = try_create(&c, &args).code_is(1);
    let err = &out.stderr;
    let node = ["node01", "node02"]
        .into_iter()
        .find(|n| err.contains(&format!("failed on {n}")))
        .unwrap_or_else(|| panic!("the failed node is not named: {}", out.describe()));
    assert!(err.contains("workers/10-break"), "{}", out.describe());
    assert!(err.contains("exit code 7"), "{}", out.describe());
    assert!(
        err.contains(&format!("last words of {node}")),
        "{}",
        out.describe()
    );
    assert_nothing_labelled(c.n(), "after a failed create");

    let k = Cluster::new("keep");
    let out = try_create(&k, &[&args[..], &["--keep-on-failure"]].concat()).code_is(1);
    assert!(out.stderr.contains("exit code 7"), "{}", out.describe());
    let kept = labelled(k.n());
    for suffix in ["mcc", "frontend", "node01", "node02"] {
        assert!(
            kept.containers.contains(&format!("{}-{suffix}", k.n())),
            "--keep-on-failure did not keep {}-{suffix}: {kept:?}",
            k.n()
        );
    }
    assert_eq!(kept.networks, vec![format!("{}-net", k.n())], "{kept:?}");
    assert!(!kept.volumes.is_empty(), "{kept:?}");
    let logs = mcc(["logs", k.n(), node]).run().ok();
    assert!(
        logs.stdout.contains(&format!("last words of {node}")),
        "{}",
        logs.describe()
    );

    mcc(["delete", k.n()]).run().ok();
    assert_nothing_labelled(k.n(), "after deleting a kept cluster");
}

/// The ssh example: passwordless ssh from the front-end and between workers,
/// also after the cluster was stopped and started again (its `on-start`
/// script starts sshd at every start, as a machine's init would).
#[test]
fn ssh_example_connects_every_node() {
    let c = Cluster::new("ssh");
    let ctx = repo_root().join("examples/ssh/context");
    create(
        &c,
        &image_nodes(
            DEBIAN,
            "2",
            &["--context-folder", &ctx.display().to_string()],
        ),
    );
    let ssh_works = |when: &str| {
        for from in ["frontend", "node01"] {
            let out = mcc([
                "exec",
                c.n(),
                "--on",
                from,
                "--",
                "ssh",
                "node02",
                "hostname",
            ])
            .run();
            assert_eq!(
                out.node_lines(),
                vec![(from.to_string(), "node02".to_string())],
                "ssh from {from} {when}: {}",
                out.describe()
            );
        }
    };
    ssh_works("after create");
    mcc(["stop", c.n()]).run().ok();
    let started = mcc(["start", c.n()]).run().ok();
    assert!(
        started.stderr.contains("on-start"),
        "start runs the on-start scripts: {}",
        started.describe()
    );
    ssh_works("after stop and start");
}

/// `on-start` scripts run at creation and at every start, as soon as the
/// start returns, on nodes mcc keeps alive; one that fails fails the start
/// with its node, script and code.
#[test]
fn on_start_runs_at_every_start() {
    let c = Cluster::new("onstart");
    let ctx = context_folder(
        "onstart",
        &[(
            "on-start/10-count",
            "echo started >> \"$MCC_SHARED/starts-$MCC_NODE\"\n\
             [ ! -e \"$MCC_SHARED/fail-$MCC_NODE\" ] || exit 4\n",
            0o755,
        )],
    );
    create(
        &c,
        &image_nodes(BUSYBOX, "1", &["--context-folder", &ctx.arg()]),
    );
    let count = |node: &str| -> usize {
        sh(&c, "frontend", &format!("cat $MCC_SHARED/starts-{node}"))
            .ok()
            .stdout
            .matches("started")
            .count()
    };
    assert_eq!((count("frontend"), count("node01")), (1, 1));
    mcc(["stop", c.n()]).run().ok();
    mcc(["start", c.n()]).run().ok();
    assert_eq!(
        (count("frontend"), count("node01")),
        (2, 2),
        "each node ran on-start again, before `mcc start` returned"
    );
    sh(&c, "frontend", "touch $MCC_SHARED/fail-node01").ok();
    mcc(["stop", c.n()]).run().ok();
    let out = mcc(["start", c.n()]).run().code_is(1);
    assert!(
        out.stderr.contains("node01") && out.stderr.contains("on-start/10-count"),
        "{}",
        out.describe()
    );
    assert!(out.stderr.contains("exit code 4"), "{}", out.describe());
}
