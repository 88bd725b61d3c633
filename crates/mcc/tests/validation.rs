//! Bad input to `mcc create`: exit code 2, a message naming the bad value,
//! and nothing made on the engine.

mod common;

use common::*;

/// Runs a create that must be refused as a usage error.
#[track_caller]
fn refused(cluster: &str, args: &[&str], names: &[&str]) {
    let out = mcc(args).run();
    assert_eq!(
        out.status.code(),
        Some(2),
        "expected a usage error (exit 2): {}",
        out.describe()
    );
    for n in names {
        assert!(
            out.stderr.contains(n),
            "the message does not name {n:?}: {}",
            out.describe()
        );
    }
    assert_nothing_labelled(cluster, &format!("after `{}`", out.cmdline));
}

#[test]
fn bad_names_are_refused() {
    require_engine_and_images();
    refused(
        "Bad_Name",
        &["create", "--name", "Bad_Name", "--image", BUSYBOX],
        &["Bad_Name"],
    );
    let mut long = format!("it-long-{}-", std::process::id());
    while long.len() < 60 {
        long.push('x');
    }
    refused(
        &long,
        &["create", "--name", &long, "--image", BUSYBOX],
        &[&long, "60"],
    );
}

#[test]
fn bad_flags_are_refused() {
    let c = Cluster::new("flags");
    let n = c.n();
    let base = |extra: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = ["create", "--name", n, "--image", BUSYBOX]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (base(&["--nodes", "abc"]), vec!["abc"]),
        (
            base(&["--nodes", "20", "--subnet", "10.250.0.0/28"]),
            vec!["10.250.0.0/28", "20"],
        ),
        (base(&["--subnet", "10.250.0.0/33"]), vec!["10.250.0.0/33"]),
        (base(&["--subnet", "10.250.0.1/24"]), vec!["10.250.0.1/24"]),
        (base(&["--env", "FOO"]), vec!["FOO"]),
        (base(&["--device", "data:relative"]), vec!["data:relative"]),
        (
            vec![
                "create".into(),
                "--name".into(),
                n.into(),
                "--image".into(),
                "ubuntu:".into(),
            ],
            vec!["ubuntu:"],
        ),
    ];
    for (args, names) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(n, &args, names);
    }
}

#[test]
fn bad_files_and_folders_are_refused() {
    let c = Cluster::new("files");
    let n = c.n();
    let dir = TempDir::new("files");
    let not_a_folder = dir.write("script.sh", "echo hi\n", 0o644);
    let not_a_folder = not_a_folder.display().to_string();
    refused(
        n,
        &[
            "create",
            "--name",
            n,
            "--image",
            BUSYBOX,
            "--context-folder",
            &not_a_folder,
        ],
        &[&not_a_folder],
    );

    let unknown = dir.write(
        "unknown.yaml",
        &format!("name: {n}\nimage: {BUSYBOX}\nnode: 3\n"),
        0o644,
    );
    let unknown = unknown.display().to_string();
    refused(n, &["create", "-f", &unknown], &["node", "unknown field"]);

    let wrong = dir.write(
        "wrong.yaml",
        &format!("name: {n}\nimage: {BUSYBOX}\nnodes: three\n"),
        0o644,
    );
    let wrong = wrong.display().to_string();
    refused(n, &["create", "-f", &wrong], &["three", "nodes"]);

    let missing = dir.path().join("missing.yaml").display().to_string();
    refused(
        n,
        &["create", "-f", &missing, "--name", n, "--image", BUSYBOX],
        &[&missing],
    );
}

/// A subnet overlapping another network's is refused before anything is made.
#[test]
fn overlapping_subnet_is_refused() {
    let first = Cluster::new("sub1");
    let subnet = test_subnet(251);
    create(
        &first,
        &["--image", BUSYBOX, "--nodes", "1", "--subnet", &subnet],
    );
    let second = Cluster::new("sub2");
    refused(
        second.n(),
        &[
            "create",
            "--name",
            second.n(),
            "--image",
            BUSYBOX,
            "--subnet",
            "10.251.0.0/16",
        ],
        &["10.251.0.0/16", &subnet],
    );
    // the first cluster is untouched
    let view = inspect(&first);
    assert_eq!(view["status"], "running", "{view:#}");
    assert_eq!(view["subnet"], subnet.as_str());
}
