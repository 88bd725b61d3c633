//! Fault injection: each step of create, addnode, recreate, delete and gc
//! made to fail in turn on the in-memory engine, with what the rollback
//! and gc decide asserted. No engine needed; these run in well under a
//! second each.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Clusters, CreateOptions, GcAction, Silent};
use crate::error::Error;
use crate::model::flags::CreateFlags;
use crate::model::{labels, ClusterName, NodeId, SpecInput};
use crate::provider::fake::{FakeProvider, Fault, Op};

/// A plain image: nodes run their scripts from mcc's first process.
const PLAIN: &str = "fake/plain:1";
/// A service image: nodes get their scripts through an exec.
const SERVICE: &str = "fake/service:1";

fn engine() -> Arc<FakeProvider> {
    let p = Arc::new(FakeProvider::new());
    p.add_image(PLAIN, false);
    p.add_image(SERVICE, true);
    p
}

fn clusters(p: &Arc<FakeProvider>) -> Clusters {
    Clusters::new(p.clone(), Arc::new(Silent))
}

/// A unique cluster name (host locks are real files, shared by tests).
fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "ft-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A context folder with one script for every node.
fn context() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("mcc-faults-ctx-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("all")).unwrap();
    std::fs::write(dir.join("all/10-hello"), "echo hello\n").unwrap();
    dir
}

fn spec(name: &str, image: &str, nodes: u32, with_context: bool) -> crate::model::ClusterSpec {
    CreateFlags {
        name: Some(name.into()),
        image: Some(image.into()),
        nodes: Some(nodes),
        subnet: Some("10.77.0.0/24".into()),
        context_folder: with_context.then(context),
        devices: vec!["home".into()],
        ..Default::default()
    }
    .resolve(SpecInput::default())
    .expect("a valid spec")
}

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn opts() -> CreateOptions {
    CreateOptions {
        keep_on_failure: false,
        timeout: Duration::from_secs(30),
    }
}

fn never() -> CancellationToken {
    CancellationToken::new()
}

#[track_caller]
fn assert_nothing_left(p: &FakeProvider, name: &str, why: &str) {
    let (c, n, v) = p.objects_of(name);
    assert!(
        c.is_empty() && n.is_empty() && v.is_empty(),
        "{why}: left containers {c:?}, networks {n:?}, volumes {v:?}"
    );
}

/// The cluster's meta volume's name.
fn meta_volume(p: &FakeProvider, name: &str) -> String {
    let (_, _, v) = p.objects_of(name);
    v.into_iter()
        .find(|v| {
            v.starts_with(&format!("{name}-mcc.")) && !v.ends_with(".shared") && !v.contains(".i")
        })
        .expect("a meta volume")
}

/// The cluster's newest index, as the engine's labels say.
fn index(p: &Arc<FakeProvider>, name: &str) -> Option<super::state::Index> {
    let n: ClusterName = name.parse().unwrap();
    run(clusters(p).load(&n)).unwrap().index
}

/// Makes the cluster's state what it is while it is made (no marker).
fn unmark(p: &Arc<FakeProvider>, name: &str) {
    let c = clusters(p);
    let l = run(c.load(&name.parse().unwrap())).unwrap();
    let members = l.index.clone().unwrap().members.unwrap();
    run(c.write_index(&l, None, &members)).unwrap();
}

#[test]
fn a_create_failing_at_any_step_leaves_nothing() {
    let steps: Vec<(&str, Fault, &str)> = vec![
        (
            "network",
            Fault {
                op: Op::CreateNetwork,
                nth: None,
                name: None,
            },
            PLAIN,
        ),
        (
            "volume",
            Fault {
                op: Op::CreateVolume,
                nth: None,
                name: None,
            },
            PLAIN,
        ),
        (
            "upload",
            Fault {
                op: Op::Upload,
                nth: Some(1),
                name: None,
            },
            PLAIN,
        ),
        (
            "1st node",
            Fault {
                op: Op::CreateNode,
                nth: Some(1),
                name: None,
            },
            PLAIN,
        ),
        (
            "3rd node",
            Fault {
                op: Op::CreateNode,
                nth: Some(3),
                name: None,
            },
            PLAIN,
        ),
        (
            "start node02",
            Fault {
                op: Op::Start,
                nth: None,
                name: Some("node02".into()),
            },
            PLAIN,
        ),
        (
            "exec",
            Fault {
                op: Op::Exec,
                nth: Some(2),
                name: None,
            },
            SERVICE,
        ),
        (
            "the first index",
            Fault {
                op: Op::CreateVolume,
                nth: None,
                name: Some(".i1".into()),
            },
            PLAIN,
        ),
        (
            "marking ready",
            Fault {
                op: Op::CreateVolume,
                nth: None,
                name: Some(".i2".into()),
            },
            PLAIN,
        ),
    ];
    for (what, fault, image) in steps {
        let p = engine();
        let name = unique("create");
        p.inject(fault);
        let r = run(clusters(&p).create(&spec(&name, image, 3, true), &opts(), &never()));
        assert!(r.is_err(), "{what}: the create succeeded");
        assert!(
            !matches!(r, Err(Error::CleanupFailed { .. })),
            "{what}: the cleanup failed: {r:?}"
        );
        assert_nothing_left(&p, &name, what);
    }
}

#[test]
fn a_failed_create_kept_on_request_is_marked_failed() {
    let p = engine();
    let name = unique("keep");
    p.inject(Fault {
        op: Op::Start,
        nth: None,
        name: Some("node01".into()),
    });
    let o = CreateOptions {
        keep_on_failure: true,
        ..opts()
    };
    let r = run(clusters(&p).create(&spec(&name, PLAIN, 2, false), &o, &never()));
    assert!(r.is_err());
    let (containers, networks, _) = p.objects_of(&name);
    assert!(
        containers.contains(&format!("{name}-frontend")),
        "{containers:?}"
    );
    assert_eq!(networks.len(), 1);
    let ix = index(&p, &name).expect("an index");
    assert_eq!(ix.marker.as_deref(), Some("failed"));
    // the members it was to have: gc knows what to look for
    assert_eq!(ix.members.unwrap().len(), 3);
    // and gc leaves it alone
    let n: ClusterName = name.parse().unwrap();
    let report = run(clusters(&p).gc(std::slice::from_ref(&n), false)).unwrap();
    assert!(report.actions.is_empty(), "{report:?}");
    assert!(!p.objects_of(&name).0.is_empty());
}

#[test]
fn keep_on_failure_says_when_it_cannot_mark_the_cluster() {
    let p = engine();
    let name = unique("keepmark");
    p.inject(Fault {
        op: Op::Start,
        nth: None,
        name: Some("node01".into()),
    });
    // the index after the first: the failed marker
    p.inject(Fault {
        op: Op::CreateVolume,
        nth: None,
        name: Some(".i2".into()),
    });
    let o = CreateOptions {
        keep_on_failure: true,
        ..opts()
    };
    let e = run(clusters(&p).create(&spec(&name, PLAIN, 2, false), &o, &never())).unwrap_err();
    assert!(e.to_string().contains("could not be marked as kept"), "{e}");
}

#[test]
fn creation_stops_at_the_first_failing_script() {
    let p = engine();
    let name = unique("stop");
    p.fail_script("node01", "all/10-hello", 3);
    let e =
        run(clusters(&p).create(&spec(&name, SERVICE, 40, true), &opts(), &never())).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("node01") && text.contains("exit code 3"),
        "{text}"
    );
    // the nodes in flight when node01 failed (16 at once) and no more
    // than the next batch; all 41 before
    let made = p.count(Op::CreateNode);
    assert!(
        made <= 32,
        "{made} of 41 nodes were made after node01's script failed"
    );
    let calls = p.calls();
    let failed_at = calls
        .iter()
        .position(|(op, n)| *op == Op::Exec && n.ends_with("-node01"))
        .expect("node01's scripts ran");
    let after = calls[failed_at..]
        .iter()
        .filter(|(op, _)| *op == Op::CreateNode)
        .count();
    assert!(
        after <= 1,
        "{after} nodes were begun after node01's script failed"
    );
    assert_nothing_left(&p, &name, "after the failed create");
}

/// A ready cluster of `workers` workers on a fresh engine.
fn ready(tag: &str, workers: u32) -> (Arc<FakeProvider>, String, ClusterName) {
    let p = engine();
    let name = unique(tag);
    run(clusters(&p).create(&spec(&name, PLAIN, workers, true), &opts(), &never()))
        .expect("the create");
    let n = name.parse().unwrap();
    (p, name, n)
}

#[test]
fn a_failed_addnode_removes_only_its_nodes() {
    for (what, fault) in [
        (
            "create",
            Fault {
                op: Op::CreateNode,
                nth: None,
                name: Some("node03".into()),
            },
        ),
        (
            "start",
            Fault {
                op: Op::Start,
                nth: None,
                name: Some("node03".into()),
            },
        ),
        (
            "hosts",
            Fault {
                op: Op::Rewrite,
                nth: Some(1),
                name: None,
            },
        ),
    ] {
        let (p, name, n) = ready("add", 1);
        let meta = meta_volume(&p, &name);
        let members = index(&p, &name).unwrap().members;
        let hosts = p.file(&meta, "hosts");
        p.inject(fault);
        let r = run(clusters(&p).add_nodes(&n, 2, Duration::from_secs(30), &never()));
        assert!(r.is_err(), "{what}: addnode succeeded");
        let (containers, _, _) = p.objects_of(&name);
        let nodes: Vec<&String> = containers
            .iter()
            .filter(|c| c.contains("-node") || c.ends_with("-frontend"))
            .collect();
        assert_eq!(nodes.len(), 2, "{what}: {containers:?}");
        assert_eq!(
            index(&p, &name).unwrap().members,
            members,
            "{what}: members changed"
        );
        assert_eq!(
            p.file(&meta, "hosts").map(|h| entries(&h)),
            hosts.map(|h| entries(&h)),
            "{what}: the hosts file was not put back"
        );
    }
}

/// A hosts file's lines but the padding an in-place rewrite adds.
fn entries(hosts: &str) -> Vec<String> {
    hosts
        .lines()
        .filter(|l| !(l.starts_with('#') && l[1..].trim().is_empty()))
        .map(str::to_string)
        .collect()
}

#[test]
fn recreate_with_a_missing_image_removes_nothing() {
    let (p, name, n) = ready("recreate", 1);
    p.remove_image(PLAIN);
    let removed_before = p.count(Op::RemoveContainer);
    let e = run(clusters(&p).recreate(&n, &[NodeId::worker(1)], Duration::from_secs(30), &never()))
        .unwrap_err();
    assert!(e.to_string().contains(PLAIN), "{e}");
    assert_eq!(p.count(Op::RemoveContainer), removed_before);
    assert!(p.objects_of(&name).0.contains(&format!("{name}-node01")));
}

#[test]
fn delete_that_cannot_remove_the_network_keeps_the_record_for_gc() {
    let (p, name, n) = ready("del", 2);
    p.inject(Fault {
        op: Op::RemoveNetwork,
        nth: None,
        name: None,
    });
    let e = run(clusters(&p).delete(&n, false)).unwrap_err().to_string();
    assert!(
        e.contains(&format!("{name}-net")),
        "the error names the network: {e}"
    );
    assert!(e.contains(&format!("mcc gc {name}")), "and the cure: {e}");
    let (containers, networks, _) = p.objects_of(&name);
    assert_eq!(containers, [format!("{name}-mcc")], "only the record stays");
    assert_eq!(networks.len(), 1);
    p.clear_faults();
    let report = run(clusters(&p).gc(std::slice::from_ref(&n), false)).unwrap();
    assert!(report.failures.is_empty(), "{report:?}");
    assert_nothing_left(&p, &name, "after gc finished the delete");
}

/// A create killed half-way: no state marker, and a creator that is gone.
fn cut_short(p: &Arc<FakeProvider>, name: &str) {
    unmark(p, name);
    p.set_label(&format!("{name}-mcc"), labels::CREATOR, "c2/gone/0/1/1/0");
}

#[test]
fn gc_goes_on_past_a_cluster_it_cannot_collect() {
    let p = engine();
    let c = clusters(&p);
    let names: Vec<String> = (0..3).map(|_| unique("gc")).collect();
    for (i, name) in names.iter().enumerate() {
        let mut s = spec(name, PLAIN, 1, false);
        s.subnet = Some(format!("10.78.{i}.0/24").parse().unwrap());
        run(c.create(&s, &opts(), &never())).unwrap();
    }
    let (healthy, stuck, leftover) = (&names[0], &names[1], &names[2]);
    cut_short(&p, stuck);
    cut_short(&p, leftover);
    p.inject(Fault {
        op: Op::RemoveNetwork,
        nth: None,
        name: Some(stuck.clone()),
    });
    let all: Vec<ClusterName> = names.iter().map(|n| n.parse().unwrap()).collect();
    let report = run(c.gc(&all, false)).unwrap();
    assert_eq!(report.failures.len(), 1, "{report:?}");
    assert_eq!(&report.failures[0].name, stuck);
    assert!(
        report.failures[0].error.contains(&format!("{stuck}-net")),
        "{report:?}"
    );
    assert_nothing_left(&p, leftover, "the cluster after the failing one");
    assert!(
        p.objects_of(healthy).0.len() == 3,
        "the healthy cluster was touched"
    );
    assert!(
        !p.objects_of(stuck).0.is_empty(),
        "the stuck one keeps its record"
    );
}

#[test]
fn gc_removes_nodes_a_killed_addnode_left() {
    let (p, name, n) = ready("stray", 1);
    let mut l = crate::provider::Labels::new();
    l.insert(labels::CLUSTER.into(), name.clone());
    l.insert(labels::ROLE.into(), "worker".into());
    l.insert(labels::INDEX.into(), "2".into());
    l.insert(labels::CREATOR.into(), "c2/gone/0/1/1/0".into());
    p.add_container(&format!("{name}-node02"), PLAIN, l);
    let report = run(clusters(&p).gc(std::slice::from_ref(&n), false)).unwrap();
    assert!(
        report
            .actions
            .iter()
            .any(|a| matches!(a, GcAction::RemovedNodes { nodes, .. } if nodes == &["node02"])),
        "{report:?}"
    );
    assert!(!p.objects_of(&name).0.contains(&format!("{name}-node02")));
    assert!(p.objects_of(&name).0.contains(&format!("{name}-node01")));
}

#[test]
fn gc_leaves_ready_and_in_progress_clusters_alone() {
    let (p, name, n) = ready("alive", 1);
    let report = run(clusters(&p).gc(std::slice::from_ref(&n), false)).unwrap();
    assert!(
        report.actions.is_empty() && report.failures.is_empty(),
        "{report:?}"
    );
    // no marker, but its creator (this process) still runs
    unmark(&p, &name);
    p.set_label(
        &format!("{name}-mcc"),
        labels::CREATOR,
        &super::creator::current_for(60),
    );
    let report = run(clusters(&p).gc(std::slice::from_ref(&n), false)).unwrap();
    assert!(
        matches!(report.actions.as_slice(), [GcAction::InProgress { .. }]),
        "{report:?}"
    );
    assert_eq!(p.objects_of(&name).0.len(), 3);
}

#[test]
fn each_change_leaves_one_index_the_newest() {
    let (p, name, n) = ready("oneindex", 1);
    let indexes = |p: &FakeProvider| -> Vec<String> {
        let (_, _, v) = p.objects_of(&name);
        v.into_iter().filter(|v| v.contains(".i")).collect()
    };
    let after_create = indexes(&p);
    assert_eq!(after_create.len(), 1, "{after_create:?}");
    assert!(after_create[0].ends_with(".i2"), "{after_create:?}");
    run(clusters(&p).add_nodes(&n, 1, Duration::from_secs(30), &never())).unwrap();
    let after_add = indexes(&p);
    assert_eq!(after_add.len(), 1, "{after_add:?}");
    assert!(after_add[0].ends_with(".i3"), "{after_add:?}");
    assert_eq!(index(&p, &name).unwrap().members.unwrap().len(), 3);
}
