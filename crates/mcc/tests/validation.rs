//! Bad input to `mcc create`: exit code 2, a message naming the bad value,
//! and nothing made on the engine.

mod common;

use common::*;

#[test]
fn bad_names_are_refused() {
    require_engine_and_images();
    refused(
        "Bad_Name",
        &create_args("Bad_Name", BUSYBOX, &[]),
        &["Bad_Name"],
    );
    let mut long = format!("it-long-{}-", std::process::id());
    while long.len() < 60 {
        long.push('x');
    }
    refused(&long, &create_args(&long, BUSYBOX, &[]), &[&long, "60"]);
}

#[test]
fn bad_flags_are_refused() {
    let c = Cluster::new("flags");
    let n = c.n();
    let base = |extra: &[&str]| create_args(n, BUSYBOX, extra);
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
        (create_args(n, "ubuntu:", &[]), vec!["ubuntu:"]),
    ];
    for (args, names) in &cases {
        refused(n, args, names);
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
        &create_args(n, BUSYBOX, &["--context-folder", &not_a_folder]),
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
    create(&first, &on_subnet(BUSYBOX, "1", &subnet, &[]));
    let second = Cluster::new("sub2");
    refused(
        second.n(),
        &create_args(second.n(), BUSYBOX, &["--subnet", "10.251.0.0/16"]),
        &["10.251.0.0/16", &subnet],
    );
    // the first cluster is untouched
    let view = inspect(&first);
    assert_eq!(view["status"], "running", "{view:#}");
    assert_eq!(view["subnet"], subnet.as_str());
}
