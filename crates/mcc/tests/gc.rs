//! `mcc gc`: removes what a killed create left, never a healthy cluster nor
//! a create still in progress. Every gc here is scoped to the test's own
//! clusters (`mcc gc NAME…`): the engine may hold other people's clusters.

mod common;

use std::time::Duration;

use common::*;

/// A context whose front-end script waits for `gate` (a file under
/// /opt/mcc/shared) to exist, for at most a minute.
fn gated_context(tag: &str, gate: &str) -> TempDir {
    let script = format!(
        "#!/bin/sh\ni=0\nwhile [ ! -e {gate} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\n\
         echo released\n"
    );
    context_folder(tag, &[("frontend/10-wait", &script, 0o755)])
}

/// Starts `mcc create` of 1+`nodes` busybox nodes on `subnet` with the
/// context folder `ctx`, in the background.
fn spawn_with_context(c: &Cluster, nodes: &str, subnet: &str, ctx: &TempDir) -> Running {
    create_cmd(
        c,
        &on_subnet(BUSYBOX, nodes, subnet, &["--context-folder", &ctx.arg()]),
    )
    .spawn()
}

/// `mcc gc` of the cluster (and of `others`, which must be left alone)
/// says it removed the leftovers of the cluster, and nothing labelled with
/// it is left of what a killed create `left`.
#[track_caller]
fn assert_gc_collects(c: &Cluster, left: &Objects, others: &[&str]) {
    let mut args = vec!["gc", c.n()];
    args.extend(others);
    let out = mcc(args).run().ok();
    assert!(
        out.stdout
            .contains(&format!("removed leftovers of cluster {}", c.n())),
        "{}",
        out.describe()
    );
    assert_nothing_labelled(c.n(), &format!("after gc (left by the kill: {left:?})"));
}

/// Waits until at least `count` containers of the cluster run. At least:
/// workers are made while the front-end's scripts run, so a poll can miss
/// the moment when exactly the front-end runs.
fn wait_running(c: &Cluster, run: &mut Running, count: usize) {
    wait_until(Duration::from_secs(60), "the nodes to run", || {
        assert!(run.is_running(), "the create ended early");
        container_states(c.n())
            .values()
            .filter(|s| s.as_str() == "running")
            .count()
            >= count
    });
}

#[track_caller]
fn assert_healthy(c: &Cluster, nodes: usize) {
    let out = mcc(["list", "--output", "json"]).run().ok();
    let list: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("list JSON: {e}: {}", out.describe()));
    let me = list
        .as_array()
        .expect("a list")
        .iter()
        .find(|v| v["name"] == c.n())
        .unwrap_or_else(|| panic!("{} is no longer listed: {}", c.n(), out.describe()));
    assert_eq!(me["status"], "running", "{me:#}");
    assert_eq!(me["running"], nodes, "{me:#}");
    assert_eq!(me["nodes"].as_array().map(Vec::len), Some(nodes), "{me:#}");
    let o = labelled(c.n());
    assert_eq!(o.containers.len(), nodes + 1, "{o:?}");
    assert_eq!(o.networks.len(), 1, "{o:?}");
}

/// A create killed with SIGKILL leaves objects; gc removes all of them and
/// leaves a healthy cluster alone.
#[test]
fn gc_removes_what_a_killed_create_left() {
    let healthy = Cluster::new("healthy");
    create(&healthy, &image_nodes(BUSYBOX, "2", &[]));

    // the create is held at its front-end's script, so the kill always
    // lands half-way: record, network and front-end made, the workers'
    // scripts not run (the workers themselves may or may not be made)
    let c = Cluster::new("killed");
    let gate = format!("/opt/mcc/shared/never-{}", c.n());
    let ctx = gated_context("killed", &gate);
    let subnet = test_subnet(212);
    let mut run = spawn_with_context(&c, "2", &subnet, &ctx);
    wait_running(&c, &mut run, 1);
    run.child.kill().expect("SIGKILL to mcc create");
    let out = run.wait(Duration::from_secs(30));
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(9), "{}", out.describe());
    }
    let left = labelled(c.n());
    assert!(
        !left.is_empty(),
        "the killed create left nothing to collect (killed too late or too early?)"
    );

    // the healthy cluster is named too: gc must leave it alone
    assert_gc_collects(&c, &left, &[healthy.n()]);
    assert_healthy(&healthy, 3);
    // and a second gc has nothing of ours to do
    let out = mcc(["gc", c.n(), healthy.n()]).run().ok();
    assert!(!out.stdout.contains(c.n()), "{}", out.describe());
    assert!(!out.stdout.contains(healthy.n()), "{}", out.describe());
    assert_healthy(&healthy, 3);
}

/// gc leaves a create in progress alone; that create then finishes.
#[test]
fn gc_leaves_a_create_in_progress_alone() {
    let c = Cluster::new("slow");
    let gate = format!("/opt/mcc/shared/go-{}", c.n());
    let ctx = gated_context("slow", &gate);
    let subnet = test_subnet(214);
    let mut run = spawn_with_context(&c, "1", &subnet, &ctx);
    // wait until the create runs the context: every node made and running
    let fe = format!("{}-frontend", c.n());
    wait_running(&c, &mut run, 2);
    let before = labelled(c.n());

    let out = mcc(["gc", c.n()]).run().ok();
    assert!(
        out.stdout.contains(&format!(
            "left cluster {} alone: an mcc process is still creating it",
            c.n()
        )) || out
            .stdout
            .contains(&format!("left cluster {} alone: another mcc", c.n())),
        "gc did not leave a create in progress alone: {}",
        out.describe()
    );
    assert!(run.is_running(), "the create died while gc ran");
    let during = labelled(c.n());
    assert!(
        before
            .containers
            .iter()
            .all(|x| during.containers.contains(x)),
        "gc removed objects of a create in progress: before {before:?}, after {during:?}"
    );

    // release the front-end script; the create must finish well
    mcc(["enter", c.n(), "--", "touch", &gate]).run().ok();
    let out = run.wait(TIMEOUT).ok();
    assert!(out.stdout.contains(&fe), "{}", out.describe());
    let view = inspect(&c);
    assert_eq!(view["status"], "running", "{view:#}");
    let logs = mcc(["logs", c.n(), "frontend"]).run().ok();
    assert!(logs.stdout.contains("released"), "{}", logs.describe());

    // finished now: still not gc's business
    mcc(["gc", c.n()]).run().ok();
    assert_healthy(&c, 2);
}

/// A create killed after every node runs (while the context runs) looks
/// complete; gc must still see that it never finished and remove it.
#[test]
fn gc_removes_a_create_killed_after_its_last_node() {
    let c = Cluster::new("late");
    let gate = format!("/opt/mcc/shared/never-{}", c.n());
    let ctx = gated_context("late", &gate);
    let subnet = test_subnet(215);
    let mut run = spawn_with_context(&c, "2", &subnet, &ctx);
    wait_running(&c, &mut run, 3);
    run.child.kill().expect("SIGKILL to mcc create");
    let _ = run.wait(Duration::from_secs(30));
    let left = labelled(c.n());
    assert_eq!(left.containers.len(), 4, "{left:?}");

    assert_gc_collects(&c, &left, &[]);
}

/// Volumes kept by `delete --keep-volumes` survive gc, unless `--volumes`.
#[test]
fn gc_keeps_kept_volumes_unless_asked() {
    let c = Cluster::new("kept");
    create(&c, &["--image", BUSYBOX, "--device", "home"]);
    mcc(["delete", c.n(), "--keep-volumes"]).run().ok();
    let home = format!("{}-home", c.n());
    assert_eq!(labelled(c.n()).volumes, vec![home.clone()]);

    let out = mcc(["gc", c.n()]).run().ok();
    assert!(out.stdout.contains(&home), "{}", out.describe());
    assert_eq!(
        labelled(c.n()).volumes,
        vec![home.clone()],
        "gc without --volumes removed a kept volume"
    );

    mcc(["gc", "--volumes", c.n()]).run().ok();
    assert_nothing_labelled(c.n(), "after gc --volumes");
}
