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

    // a flag's name where the file has another field: the hint names it
    for (field, value, right) in [
        ("add-host", "['nfs:10.0.0.9']", "add-hosts"),
        ("device", "[home]", "devices"),
    ] {
        let f = dir.write(
            &format!("{field}.yaml"),
            &format!("name: {n}\nimage: {BUSYBOX}\n{field}: {value}\n"),
            0o644,
        );
        let f = f.display().to_string();
        refused(n, &["create", "-f", &f], &[field, &format!("'{right}'")]);
    }

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

/// Loopback, "this network", link-local, multicast and reserved ranges
/// are never a cluster's or a VPC's network (the engine would put
/// 127.0.0.1/24 on a host bridge); a public block needs
/// --allow-public-subnet. All refused before anything is made.
#[test]
fn special_and_public_subnets_are_refused() {
    let c = Cluster::new("special");
    let n = c.n();
    for subnet in [
        "127.0.0.0/24",
        "224.0.0.0/24",
        "169.254.7.0/24",
        "0.0.0.0/0",
        "240.0.0.0/24",
    ] {
        refused(
            n,
            &create_args(n, BUSYBOX, &["--subnet", subnet]),
            &[subnet, "no network of nodes"],
        );
    }
    refused(
        n,
        &create_args(n, BUSYBOX, &["--subnet", "8.8.8.0/24"]),
        &["8.8.8.0/24", "--allow-public-subnet"],
    );
    // the flag does not open the special ranges
    refused(
        n,
        &create_args(
            n,
            BUSYBOX,
            &["--subnet", "127.0.0.0/24", "--allow-public-subnet"],
        ),
        &["127.0.0.0/24"],
    );
    let name = format!("it-special-{}", std::process::id());
    for (cidr, says) in [
        ("127.0.0.0/24", "no network of nodes"),
        ("224.0.0.0/24", "no network of nodes"),
        ("8.8.8.0/24", "--allow-public-cidr"),
    ] {
        let out = mcc(["vpc", "create", "--cidr", cidr, "--name", &name]).run();
        assert_eq!(out.code(), 2, "{}", out.describe());
        assert!(out.stderr.contains(says), "{}", out.describe());
    }
    let list = mcc(["vpc", "list", "--output", "json"]).run().ok();
    assert!(!list.stdout.contains(&name), "{}", list.describe());
}

/// `mcc run` checks its user and its volumes' paths before anything is
/// made: a user of three parts or beyond the largest UID, a volume on
/// the engine's /proc.
#[test]
fn run_refuses_bad_users_and_the_engines_paths() {
    require_engine_and_images();
    let mark = format!("badrun-{}", std::process::id());
    let cmd = ["--", "sh", "-c", &format!("true; : {mark}")];
    for user in [
        "root:root:root",
        "a:b:c",
        "99999999999999999999",
        "4294967295",
    ] {
        let mut args = vec!["run", "--image", BUSYBOX, "--user", user];
        args.extend_from_slice(&cmd);
        let out = mcc(&args).run();
        assert_eq!(out.code(), 2, "{}", out.describe());
        assert!(out.stderr.contains(user), "{}", out.describe());
    }
    let vol = mcc([
        "volume",
        "create",
        "--size",
        "8M",
        "--name",
        &format!("it-badrun-{}", std::process::id()),
    ])
    .run()
    .ok()
    .stdout
    .trim()
    .to_string();
    let _made = Made::volume(&vol);
    for path in ["/proc", "/sys/x", "/dev", "/etc/hosts"] {
        let spec = format!("{vol}:{path}");
        let mut args = vec!["run", "--image", BUSYBOX, "--volume", &spec];
        args.extend_from_slice(&cmd);
        let out = mcc(&args).run();
        assert_eq!(out.code(), 2, "{}", out.describe());
        assert!(out.stderr.contains(path), "{}", out.describe());
    }
    assert_eq!(
        run_containers(&mark),
        Vec::<String>::new(),
        "a container was made"
    );
}
