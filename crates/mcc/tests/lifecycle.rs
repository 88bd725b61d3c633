//! Creating and deleting whole clusters: refusals before anything is made,
//! races between creates, Ctrl-C, kept volumes, no engine.

mod common;

use std::time::Duration;

use common::*;

/// A missing image fails the create before anything is made. The image
/// names a registry on a closed loopback port, so the pull mcc tries is
/// refused here and never leaves the machine.
const MISSING_IMAGE: &str = "localhost:1/mcc-test/does-not-exist:1";

#[test]
fn missing_image_fails_before_anything_is_created() {
    let c = Cluster::new("noimage");
    let out = try_create(&c, &image_nodes(MISSING_IMAGE, "1", &[]));
    assert_ne!(out.code(), 0, "{}", out.describe());
    assert!(
        out.stderr.contains(MISSING_IMAGE),
        "the message does not name the image: {}",
        out.describe()
    );
    assert_nothing_labelled(c.n(), "after a create with a missing image");
}

/// An image that is not here and that its registry says it does not have
/// is bad input, as the README promises: exit 2, naming the image and the
/// fix, nothing made. (One whose registry cannot be reached, above, may
/// have a right name: that is not the user's error, and exits 1.)
#[test]
fn an_image_no_registry_has_is_bad_input() {
    let c = Cluster::new("noimage2");
    let image = format!("{}/mcc-test/does-not-exist:1", registry::empty_registry());
    let out = try_create(&c, &image_nodes(&image, "1", &[]));
    assert_eq!(out.code(), 2, "{}", out.describe());
    for says in [image.as_str(), "no such image", "docker load"] {
        assert!(out.stderr.contains(says), "no {says:?}: {}", out.describe());
    }
    assert_nothing_labelled(c.n(), "after a create with an image no registry has");
}

/// Two creates of one name at once: one wins, the other says the name is
/// taken and removes nothing of the winner's.
#[test]
fn two_creates_of_one_name_at_once_make_one_cluster() {
    let c = Cluster::new("race");
    // its own subnet: a subnet race with other tests' creates is not what
    // this test is about
    let subnet = test_subnet(208);
    let args = on_subnet(BUSYBOX, "2", &subnet, &[]);
    let a = create_cmd(&c, &args).spawn();
    let b = create_cmd(&c, &args).spawn();
    let (a, b) = (a.wait(TIMEOUT), b.wait(TIMEOUT));
    let (winner, loser) = match (a.status.success(), b.status.success()) {
        (true, false) => (a, b),
        (false, true) => (b, a),
        _ => panic!(
            "exactly one create must succeed\n{}\n{}",
            a.describe(),
            b.describe()
        ),
    };
    assert!(
        loser.stderr.contains("already exists") || loser.stderr.contains("being created"),
        "the loser does not say the cluster exists or is being created: {}",
        loser.describe()
    );
    assert!(
        winner.stdout.contains(&format!("{}-node02", c.n())),
        "{}",
        winner.describe()
    );

    let view = inspect(&c);
    assert_eq!(view["status"], "running", "{view:#}");
    assert_eq!(view["workers"], 2, "{view:#}");
    assert_eq!(view["running"], 3, "{view:#}");
    let out = mcc(["exec", c.n(), "--", "hostname"]).run().ok();
    assert_each_printed(&out, &["frontend", "node01", "node02"], "", |node| {
        format!("{node}\n")
    });
    sh(&c, "node02", "ping -c1 -W2 frontend && ping -c1 -W2 node01").ok();
    let o = labelled(c.n());
    assert_eq!(o.containers.len(), 4, "{o:?}");
    assert_eq!(o.networks.len(), 1, "{o:?}");
    // the winner's meta volume, its shared volume and its index (the
    // labels that hold state and members); the loser left none
    assert_eq!(
        o.volumes.len(),
        3,
        "one meta, one shared and one index volume expected (the loser must not leave one): \
         {o:?}"
    );
    let meta = o
        .volumes
        .iter()
        .min_by_key(|v| v.len())
        .expect("a meta volume");
    assert!(o.volumes.contains(&format!("{meta}.shared")), "{o:?}");
    assert!(
        o.volumes.iter().any(|v| v
            .strip_prefix(&format!("{meta}.i"))
            .is_some_and(|g| g.parse::<u32>().is_ok())),
        "{o:?}"
    );
}

/// Creates of different clusters at the same time, each letting mcc pick
/// its subnet, all succeed (mcc must not hand them one subnet and fail).
#[test]
fn concurrent_creates_of_different_clusters_all_succeed() {
    let clusters: Vec<Cluster> = (1..=3).map(|i| Cluster::new(&format!("par{i}"))).collect();
    let running: Vec<Running> = clusters
        .iter()
        .map(|c| create_cmd(c, &image_nodes(BUSYBOX, "1", &[])).spawn())
        .collect();
    let outs: Vec<Out> = running.into_iter().map(|r| r.wait(TIMEOUT)).collect();
    let failed: Vec<String> = outs
        .iter()
        .filter(|o| !o.status.success())
        .map(|o| o.describe())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} concurrent creates failed:\n{}",
        failed.len(),
        outs.len(),
        failed.join("\n")
    );
    let mut subnets: Vec<String> = clusters
        .iter()
        .map(|c| inspect(c)["subnet"].as_str().expect("subnet").to_string())
        .collect();
    subnets.sort();
    subnets.dedup();
    assert_eq!(subnets.len(), 3, "{subnets:?}");
}

/// delete removes everything; a nonexistent cluster is fine; kept volumes
/// come back in a new cluster of the same name.
#[test]
fn delete_removes_everything_and_keep_volumes_keeps_data() {
    let c = Cluster::new("del");
    let home = format!("{}-home", c.n());
    let args = image_nodes(BUSYBOX, "1", &["--device", "home"]);
    create(&c, &args);
    sh(&c, "node01", "echo kept-data > /home/keep.txt").ok();

    let out = mcc(["delete", c.n(), "--keep-volumes"]).run().ok();
    assert!(out.stdout.contains(&home), "{}", out.describe());
    let o = labelled(c.n());
    assert!(
        o.containers.is_empty() && o.networks.is_empty(),
        "delete --keep-volumes left containers or networks: {o:?}"
    );
    assert_eq!(
        o.volumes,
        vec![home.clone()],
        "only the home volume must stay"
    );

    let out = try_create(&c, &args).ok();
    assert!(
        out.stderr.contains(&format!("reusing volume {home}")),
        "{}",
        out.describe()
    );
    let out = sh(&c, "frontend,node01", "cat /home/keep.txt").ok();
    assert_each_printed(&out, &["frontend", "node01"], "", |_| "kept-data\n".into());

    let out = mcc(["delete", c.n()]).run().ok();
    assert!(out.stdout.contains("deleted cluster"), "{}", out.describe());
    assert_nothing_labelled(c.n(), "after delete");

    let ghost = format!("it-ghost-{}", std::process::id());
    let out = mcc(["delete", &ghost]).run().ok();
    assert!(
        out.stdout.contains("does not exist") || out.stderr.contains("does not exist"),
        "{}",
        out.describe()
    );
}

/// A create that fails after reusing a kept volume keeps it, data included.
#[test]
fn failed_create_keeps_a_reused_volume() {
    let c = Cluster::new("reuse");
    let home = format!("{}-home", c.n());
    create(&c, &["--image", BUSYBOX, "--device", "home"]);
    sh(&c, "frontend", "echo precious > /home/data.txt").ok();
    mcc(["delete", c.n(), "--keep-volumes"]).run().ok();

    let ctx = context_folder(
        "reuse",
        &[("all/10-fail", "echo failing on purpose\nexit 4\n", 0o644)],
    );
    let out = try_create(
        &c,
        &[
            "--image",
            BUSYBOX,
            "--device",
            "home",
            "--context-folder",
            &ctx.arg(),
        ],
    )
    .code_is(1);
    assert!(out.stderr.contains("exit code 4"), "{}", out.describe());
    let o = labelled(c.n());
    assert_eq!(
        o,
        Objects {
            volumes: vec![home.clone()],
            ..Default::default()
        },
        "a failed create must remove what it made and keep the volume it reused"
    );

    // nor does a failed create that does not even use the kept device
    let out = try_create(&c, &["--image", BUSYBOX, "--context-folder", &ctx.arg()]).code_is(1);
    assert!(out.stderr.contains("exit code 4"), "{}", out.describe());
    assert_eq!(
        labelled(c.n()),
        Objects {
            volumes: vec![home.clone()],
            ..Default::default()
        },
        "a failed create without the device must keep its kept volume"
    );

    create(&c, &["--image", BUSYBOX, "--device", "home"]);
    let out = sh(&c, "frontend", "cat /home/data.txt").ok();
    assert_eq!(
        out.node_lines(),
        vec![("frontend".into(), "precious".into())]
    );
}

/// Ctrl-C during a create removes what was made.
#[test]
fn sigint_during_create_removes_what_was_made() {
    let c = Cluster::new("sigint");
    let subnet = test_subnet(213);
    let (run, _ctx) = spawn_create_until_record(&c, &subnet, "interrupted");
    let out = run.interrupt(Duration::from_secs(120));
    assert!(
        out.status.code().is_some(),
        "SIGINT killed mcc instead of being handled: {}",
        out.describe()
    );
    assert_ne!(out.code(), 0, "{}", out.describe());
    assert!(out.stderr.contains("interrupted"), "{}", out.describe());
    assert_nothing_labelled(c.n(), "after an interrupted create");
}

/// No engine: a clear error that says how to get one.
#[test]
fn no_engine_says_how_to_start_one() {
    // the daemon's engine is not the client's business: local only
    let out = mcc(["list"])
        .local()
        .env("DOCKER_HOST", "unix:///nonexistent.sock")
        .run();
    assert_ne!(out.code(), 0, "{}", out.describe());
    assert!(
        out.stderr.contains("/nonexistent.sock"),
        "{}",
        out.describe()
    );
    assert!(
        out.stderr.contains("start the engine") && out.stderr.contains("DOCKER_HOST"),
        "no hint on starting an engine: {}",
        out.describe()
    );
}
