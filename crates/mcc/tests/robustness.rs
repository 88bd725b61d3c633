//! mcc copes with what it did not make or did not finish: hand-made
//! containers with unparseable labels, kept volumes, images gone from the
//! engine, leftovers gc cannot collect, killed addnodes, failing and
//! slow context scripts, images whose user is not root.
//!
//! Every gc here is scoped to the test's own clusters (`mcc gc NAME`).

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs()
}

#[test]
fn unparseable_labels_do_not_panic() {
    let c = Cluster::new("rb-labels");
    let record = format!("{}-mcc", c.n());
    docker_ok(&[
        "create",
        "--name",
        &record,
        "--label",
        &format!("mcc.cluster={}", c.n()),
        "--label",
        "mcc.role=meta",
        "--label",
        "mcc.record=garbage",
        BUSYBOX,
    ]);
    let odd = ContainerGuard(format!("it-rb-odd-{}", std::process::id()));
    docker_ok(&[
        "create",
        "--name",
        &odd.0,
        "--label",
        "mcc.cluster=Not_A_Name!",
        "--label",
        "mcc.role=meta",
        BUSYBOX,
    ]);

    for args in [vec!["list"], vec!["list", "-o", "json"]] {
        let out = mcc(&args).run();
        assert!(
            out.status.success() && !out.stderr.contains("panicked"),
            "{}",
            out.describe()
        );
        assert!(
            out.stderr.contains("warning") && out.stderr.contains(&odd.0),
            "mcc list does not warn of the unparseable container: {}",
            out.describe()
        );
        if args.len() == 3 {
            serde_json::from_str::<serde_json::Value>(&out.stdout)
                .unwrap_or_else(|e| panic!("list JSON: {e}: {}", out.describe()));
        }
    }
    let out = mcc(["inspect", c.n()]).run();
    assert!(
        (out.stdout.contains("problem:") || out.stderr.contains("problem:"))
            && !out.stderr.contains("panicked"),
        "{}",
        out.describe()
    );
    let out = mcc(["gc", c.n()]).run();
    assert!(
        out.stdout
            .contains(&format!("left cluster {} alone", c.n()))
            && !out.stderr.contains("panicked"),
        "{}",
        out.describe()
    );
    assert_eq!(labelled(c.n()).containers, vec![record.clone()]);
    mcc(["delete", c.n()]).run().ok();
    assert_nothing_labelled(c.n(), "after delete");
}

#[test]
fn kept_volume_not_used_survives_delete() {
    let c = Cluster::new("rb-kept");
    create(
        &c,
        &image_nodes(
            BUSYBOX,
            "1",
            &["--device", "home", "--device", "scratch:/scratch"],
        ),
    );
    sh(&c, "frontend", "echo kept-data > /scratch/file").ok();
    mcc(["delete", c.n(), "--keep-volumes"]).run().ok();
    create(&c, &image_nodes(BUSYBOX, "1", &["--device", "home"]));
    mcc(["delete", c.n()]).run().ok();
    let scratch = format!("{}-scratch", c.n());
    assert!(
        labelled(c.n()).volumes.contains(&scratch),
        "delete removed {scratch}, which the cluster did not use: {:?}",
        labelled(c.n())
    );
    let content = docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{scratch}:/v"),
        BUSYBOX,
        "cat",
        "/v/file",
    ]);
    assert_eq!(content, "kept-data\n");
    mcc(["gc", "--volumes", c.n()]).run().ok();
    assert_nothing_labelled(c.n(), "after gc --volumes");
}

#[test]
fn recreate_with_missing_image_keeps_the_node() {
    let image = ImageGuard(format!("localhost:1/mcc-sec-{}:x", std::process::id()));
    docker_ok(&["tag", BUSYBOX, &image.0]);
    let c = Cluster::new("rb-noimage");
    create(&c, &image_nodes(&image.0, "1", &[]));
    docker_ok(&["rmi", &image.0]);
    let out = mcc(["recreate", c.n(), "node01"]).run();
    assert!(!out.status.success(), "{}", out.describe());
    assert!(out.stderr.contains(&image.0), "{}", out.describe());
    let node = format!("{}-node01", c.n());
    assert_eq!(
        container_states(c.n()).get(&node).map(String::as_str),
        Some("running"),
        "{node} did not survive the failed recreate"
    );

    // addnode fails before making anything; stop and start need no image
    let out = mcc(["addnode", c.n()]).run();
    assert!(!out.status.success(), "{}", out.describe());
    assert!(out.stderr.contains(&image.0), "{}", out.describe());
    assert!(
        !container_states(c.n()).contains_key(&format!("{}-node02", c.n())),
        "the failed addnode left node02"
    );
    mcc(["stop", c.n()]).run().ok();
    mcc(["start", c.n()]).run().ok();
    let view = inspect(&c);
    assert_eq!(view["status"], "running", "{view:#}");
    assert_eq!(view["workers"], 1, "{view:#}");
}

#[test]
fn gc_goes_on_past_a_cluster_it_cannot_collect() {
    let a = Cluster::new("rb-gca");
    let b = Cluster::new("rb-gcb");
    create(&a, &image_nodes(BUSYBOX, "0", &[]));
    create(&b, &image_nodes(BUSYBOX, "0", &[]));
    docker_ok(&["rm", "-f", &format!("{}-mcc", a.n())]);
    docker_ok(&["rm", "-f", &format!("{}-mcc", b.n())]);
    let blocker = ContainerGuard(format!("{}-blocker", a.n()));
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &blocker.0,
        "--network",
        &format!("{}-net", a.n()),
        BUSYBOX,
        "sleep",
        "600",
    ]);

    let out = mcc(["gc", a.n(), b.n()]).run().code_is(1);
    println!("gc of A and B: {}", out.describe());
    assert!(
        out.stderr.contains(&format!("gc of cluster {}", a.n()))
            && out.stderr.contains(&format!("{}-net", a.n())),
        "gc does not name A's failure and its network: {}",
        out.describe()
    );
    assert!(
        !out.stderr.contains(&format!("gc of cluster {}", b.n())),
        "gc reports a failure for B: {}",
        out.describe()
    );
    assert_nothing_labelled(b.n(), "after gc of A and B");

    drop(blocker);
    mcc(["gc", a.n()]).run().ok();
    assert_nothing_labelled(a.n(), "after gc of A without its blocker");
}

#[test]
fn killed_addnode_leaves_nothing_after_gc() {
    let c = Cluster::new("rb-killadd");
    let gate = format!("gate-{}", c.n());
    let ctx = context_folder(
        "rb-killadd",
        &[(
            "workers/10-hold",
            &format!(
                "#!/bin/sh\nwhile [ \"$MCC_NODE\" = node02 ] && [ ! -e \"$MCC_SHARED/{gate}\" ]; \
                 do sleep 0.1; done\necho \"passed on $MCC_NODE\"\n"
            ),
            0o755,
        )],
    );
    create(
        &c,
        &image_nodes(BUSYBOX, "1", &["--context-folder", &ctx.arg()]),
    );
    let mut run = mcc(["addnode", c.n()]).spawn();
    let node02 = format!("{}-node02", c.n());
    wait_until(Duration::from_secs(60), "node02 to run", || {
        assert!(run.is_running(), "the addnode ended early");
        container_states(c.n()).get(&node02).map(String::as_str) == Some("running")
    });
    run.child.kill().expect("SIGKILL to mcc addnode");
    let _ = run.wait(Duration::from_secs(30));

    let out = mcc(["gc", c.n()]).run().ok();
    assert!(
        out.stdout.contains(&format!(
            "removed nodes of cluster {} that a killed addnode or delnode left behind: node02",
            c.n()
        )),
        "{}",
        out.describe()
    );
    assert!(
        !container_states(c.n()).contains_key(&node02),
        "{node02} remains after gc"
    );
    let view = inspect(&c);
    assert_eq!(view["status"], "running", "{view:#}");
    assert_eq!(view["workers"], 1, "{view:#}");
    let hosts = sh(&c, "frontend", "cat /etc/hosts").ok();
    assert!(
        !hosts.stdout.contains("node02"),
        "the front-end's /etc/hosts still has node02: {}",
        hosts.describe()
    );
}

#[test]
fn create_stops_at_first_failure() {
    let c = Cluster::new("rb-first");
    let ctx = context_folder(
        "rb-first",
        &[(
            "workers/10-fail",
            "#!/bin/sh\n[ \"$MCC_NODE\" = node01 ] && exit 3\nsleep 1\n",
            0o755,
        )],
    );
    // the engine keeps only its last 256 events: subscribe before the
    // create rather than ask for past events afterwards
    let t0 = unix_now();
    let mut events = std::process::Command::new("docker")
        .args([
            "events",
            "--since",
            &t0.to_string(),
            "--filter",
            &format!("label=mcc.cluster={}", c.n()),
            "--format",
            "{{.TimeNano}} {{.Action}} {{.Actor.Attributes.name}}",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("docker events");
    std::thread::sleep(Duration::from_millis(500));
    let out = try_create(
        &c,
        &image_nodes(BUSYBOX, "20", &["--context-folder", &ctx.arg()]),
    );
    std::thread::sleep(Duration::from_secs(1));
    let _ = events.kill();
    let mut events_out = String::new();
    std::io::Read::read_to_string(
        events.stdout.as_mut().expect("piped stdout"),
        &mut events_out,
    )
    .expect("reading docker events");
    let _ = events.wait();
    assert!(!out.status.success(), "{}", out.describe());
    assert!(
        out.stderr.contains("node01") && out.stderr.contains('3'),
        "the failure names neither node01 nor its exit code 3: {}",
        out.describe()
    );
    // (time, action, node) of the node containers' events
    let prefix = format!("{}-", c.n());
    let node_events: Vec<(u128, &str, &str)> = events_out
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let t: u128 = f.next()?.parse().ok()?;
            let action = f.next()?;
            let node = f.last()?.strip_prefix(&prefix)?;
            (node == "frontend" || node.starts_with("node")).then_some((t, action, node))
        })
        .collect();
    let made: BTreeSet<&str> = node_events
        .iter()
        .filter(|(_, a, _)| *a == "create")
        .map(|(_, _, n)| *n)
        .collect();
    let time_of = |action: &str, node: Option<&str>| {
        node_events
            .iter()
            .filter(|(_, a, n)| *a == action && node.is_none_or(|x| x == *n))
            .map(|(t, _, _)| *t)
            .min()
    };
    let last_create = node_events
        .iter()
        .filter(|(_, a, _)| *a == "create")
        .map(|(t, _, _)| *t)
        .max()
        .expect("the create made nodes");
    let rollback = time_of("kill", None)
        .into_iter()
        .chain(time_of("destroy", None))
        .min()
        .expect("the failed create removed its nodes");
    let ms = |t: Option<u128>| t.map(|t| (t as i128 - last_create as i128) / 1_000_000);
    let node01_start = time_of("start", Some("node01"));
    println!(
        "the failed create made {} node containers: {made:?}; relative to the last one made \
         (ms): front-end started {:?}, node01 started {:?}, rollback began {:?}",
        made.len(),
        ms(time_of("start", Some("frontend"))),
        ms(node01_start),
        ms(Some(rollback)),
    );
    // The count is printed, not judged: node01's script fails only after
    // node01 and the front-end's scripts ran, and on this engine (16 nodes
    // made at once) every node or nearly is made by then, more so under
    // load; the engine reports no event for the failure itself. What must
    // hold is that no node is made once the failure has been seen.
    assert!(
        last_create < rollback,
        "a node was made after the rollback began: {node_events:?}"
    );
    assert_nothing_labelled(c.n(), "after the failed create");
}

#[test]
fn timeout_rolls_back() {
    let c = Cluster::new("rb-timeout");
    let ctx = context_folder(
        "rb-timeout",
        &[(
            "all/10-sleep",
            "#!/bin/sh\necho \"waiting for godot on $MCC_NODE\"\nsleep 600\n",
            0o755,
        )],
    );
    let started = Instant::now();
    let out = create_cmd(
        &c,
        &image_nodes(
            BUSYBOX,
            "1",
            &["--context-folder", &ctx.arg(), "--timeout", "3s"],
        ),
    )
    .spawn()
    .wait(Duration::from_secs(60));
    println!("the create gave up after {:?}", started.elapsed());
    assert!(!out.status.success(), "{}", out.describe());
    assert!(out.stderr.contains("timed out"), "{}", out.describe());
    // the cluster is gone, so the error itself says what the scripts
    // printed, and points to the flag that keeps the nodes, not to logs
    // of a cluster that no longer exists
    assert!(
        out.stderr
            .contains("frontend | waiting for godot on frontend"),
        "the scripts' last lines are not in the error: {}",
        out.describe()
    );
    assert!(
        out.stderr.contains("--keep-on-failure"),
        "{}",
        out.describe()
    );
    assert_nothing_labelled(c.n(), "after the timed-out create");
}

#[test]
fn image_with_user_nobody() {
    let tag = format!("mcc-test/nobody-{}:latest", std::process::id());
    let dir = TempDir::new("rb-nobody-image");
    dir.write(
        "Dockerfile",
        &format!("FROM {BUSYBOX}\nUSER nobody\n"),
        0o644,
    );
    let image = ImageGuard(tag.clone());
    docker_ok(&["build", "--network", "none", "-q", "-t", &tag, &dir.arg()]);
    let c = Cluster::new("rb-nobody");
    let ctx = context_folder(
        "rb-nobody",
        &[("all/10-id", "#!/bin/sh\necho \"uid=$(id -u)\"\n", 0o755)],
    );
    create(
        &c,
        &image_nodes(&image.0, "1", &["--context-folder", &ctx.arg()]),
    );
    let logs = mcc(["logs", c.n()]).run().ok();
    assert!(logs.stdout.contains("uid=0"), "{}", logs.describe());

    let check = |want: &[&str], when: &str| {
        let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
        for (node, text) in hosts_files(&c, want.len(), when) {
            let listed: BTreeSet<String> = hosts_entries(&text).keys().cloned().collect();
            assert_eq!(listed, want, "{when}: /etc/hosts of {node}:\n{text}");
        }
    };
    mcc(["addnode", c.n()]).run().ok();
    check(&["frontend", "node01", "node02"], "after addnode");
    mcc(["delnode", c.n(), "node02"]).run().ok();
    check(&["frontend", "node01"], "after delnode");
}

/// Workers' script that hangs while `$MCC_SHARED/hang` exists, or for
/// every worker but node01.
fn hanging_context(tag: &str) -> TempDir {
    context_folder(
        tag,
        &[(
            "workers/10-hang",
            "#!/bin/sh\nif [ -e \"$MCC_SHARED/hang\" ] || [ \"$MCC_NODE\" != node01 ]; then \
             sleep 600; fi\necho \"ready on $MCC_NODE\"\n",
            0o755,
        )],
    )
}

/// Every node's /etc/hosts lists exactly `want`.
#[track_caller]
fn assert_hosts_exactly(c: &Cluster, want: &[&str], when: &str) {
    let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
    for (node, text) in hosts_files(c, want.len(), when) {
        let listed: BTreeSet<String> = hosts_entries(&text).keys().cloned().collect();
        assert_eq!(listed, want, "{when}: /etc/hosts of {node}:\n{text}");
    }
}

#[test]
fn addnode_timeout_rolls_back() {
    let c = Cluster::new("rb-addto");
    let ctx = hanging_context("rb-addto");
    create(
        &c,
        &image_nodes(BUSYBOX, "1", &["--context-folder", &ctx.arg()]),
    );
    let started = Instant::now();
    let out = mcc(["addnode", c.n(), "--timeout", "3s"])
        .spawn()
        .wait(Duration::from_secs(60));
    println!("the addnode gave up after {:?}", started.elapsed());
    assert!(!out.status.success(), "{}", out.describe());
    assert!(out.stderr.contains("timed out"), "{}", out.describe());
    assert!(
        !container_states(c.n()).contains_key(&format!("{}-node02", c.n())),
        "node02 remains after the timed-out addnode"
    );
    let view = inspect(&c);
    assert_eq!(view["status"], "running", "{view:#}");
    assert_eq!(view["workers"], 1, "{view:#}");
    assert_hosts_exactly(&c, &["frontend", "node01"], "after the timed-out addnode");
}

#[test]
fn recreate_timeout_gives_up_and_can_be_redone() {
    let c = Cluster::new("rb-recto");
    let ctx = hanging_context("rb-recto");
    create(
        &c,
        &image_nodes(BUSYBOX, "1", &["--context-folder", &ctx.arg()]),
    );
    sh(&c, "frontend", "touch \"$MCC_SHARED/hang\"").ok();
    let started = Instant::now();
    let out = mcc(["recreate", c.n(), "node01", "--timeout", "3s"])
        .spawn()
        .wait(Duration::from_secs(60));
    println!("the recreate gave up after {:?}", started.elapsed());
    assert!(!out.status.success(), "{}", out.describe());
    assert!(out.stderr.contains("timed out"), "{}", out.describe());
    let view = inspect(&c);
    println!(
        "after the timed-out recreate: status {}, node01 {:?}",
        view["status"],
        node_table(&view).get("node01")
    );

    sh(&c, "frontend", "rm \"$MCC_SHARED/hang\"").ok();
    mcc(["recreate", c.n(), "node01"]).run().ok();
    let view = inspect(&c);
    assert_eq!(view["status"], "running", "{view:#}");
    assert_hosts_exactly(&c, &["frontend", "node01"], "after the second recreate");
}

/// gc run while an addnode is held at the new node's script leaves the new
/// node alone; the addnode then finishes.
#[test]
fn gc_leaves_an_addnode_in_progress_alone() {
    let c = Cluster::new("rb-liveadd");
    let gate = format!("gate-{}", c.n());
    let ctx = context_folder(
        "rb-liveadd",
        &[(
            "workers/10-hold",
            &format!(
                "#!/bin/sh\ni=0\nwhile [ \"$MCC_NODE\" = node02 ] && [ ! -e \"$MCC_SHARED/{gate}\" ] \
                 && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done\necho \"passed on $MCC_NODE\"\n"
            ),
            0o755,
        )],
    );
    create(
        &c,
        &image_nodes(BUSYBOX, "1", &["--context-folder", &ctx.arg()]),
    );
    let mut run = mcc(["addnode", c.n()]).spawn();
    let node02 = format!("{}-node02", c.n());
    wait_until(Duration::from_secs(60), "node02 to run", || {
        assert!(run.is_running(), "the addnode ended early");
        container_states(c.n()).get(&node02).map(String::as_str) == Some("running")
    });

    let out = mcc(["gc", c.n()]).run().ok();
    assert!(run.is_running(), "the addnode died while gc ran");
    assert_eq!(
        container_states(c.n()).get(&node02).map(String::as_str),
        Some("running"),
        "gc removed the node of an addnode in progress: {}",
        out.describe()
    );

    sh(&c, "frontend", &format!("touch \"$MCC_SHARED/{gate}\"")).ok();
    let out = run.wait(TIMEOUT).ok();
    assert!(out.stdout.contains("node02"), "{}", out.describe());
    let view = inspect(&c);
    assert_eq!(view["status"], "running", "{view:#}");
    assert_eq!(view["workers"], 2, "{view:#}");
    assert_hosts_exactly(&c, &["frontend", "node01", "node02"], "after the addnode");
    let logs = mcc(["logs", c.n(), "node02"]).run().ok();
    assert!(
        logs.stdout.contains("passed on node02"),
        "{}",
        logs.describe()
    );
}

/// A container labelled as a worker of a healthy cluster, with an index
/// that does not parse: list warns of it, inspect shows a problem, delete
/// removes it.
#[test]
fn unparseable_node_label_is_reported() {
    let c = Cluster::new("rb-nodelabel");
    create(&c, &image_nodes(BUSYBOX, "1", &[]));
    let bogus = format!("{}-bogus", c.n());
    docker_ok(&[
        "create",
        "--name",
        &bogus,
        "--label",
        &format!("mcc.cluster={}", c.n()),
        "--label",
        "mcc.role=worker",
        "--label",
        "mcc.index=garbage",
        "--label",
        "mcc.schema=2",
        BUSYBOX,
    ]);
    // whatever the verdict, delete removes every container of the cluster
    let out = mcc(["list"]).run().ok();
    let warned = out.stderr.contains(&bogus);
    let view = mcc(["inspect", c.n()]).run();
    let problem = view.stdout.contains("problem:") || view.stderr.contains("problem:");
    mcc(["delete", c.n()]).run().ok();
    assert_nothing_labelled(c.n(), "after delete");
    assert!(
        warned,
        "mcc list does not warn of {bogus}: {}",
        out.describe()
    );
    assert!(problem, "mcc inspect shows no problem: {}", view.describe());
}

/// A container the user attached to a leftover cluster's network keeps gc
/// from removing it: gc must say which container holds the network, not
/// blame the engine and advise restarting it or deleting its network store.
#[test]
fn gc_names_the_container_that_holds_the_network() {
    let c = Cluster::new("rb-gcnet");
    create(&c, &image_nodes(BUSYBOX, "0", &[]));
    docker_ok(&["rm", "-f", &format!("{}-mcc", c.n())]);
    let blocker = ContainerGuard(format!("{}-blocker", c.n()));
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &blocker.0,
        "--network",
        &format!("{}-net", c.n()),
        BUSYBOX,
        "sleep",
        "600",
    ]);
    let out = mcc(["gc", c.n()]).run().code_is(1);
    drop(blocker);
    mcc(["gc", c.n()]).run().ok();
    assert!(
        out.stderr.contains(&format!("{}-blocker", c.n())),
        "gc does not name the container attached to the network: {}",
        out.describe()
    );
    assert!(
        !out.stderr.contains("no container is attached") && !out.stderr.contains("local-kv.db"),
        "gc blames the engine for a container that is attached: {}",
        out.describe()
    );
}
