//! One cluster over three engines of this machine (`scripts/hosts`, one
//! swarm): `mcc create --hosts h1,h2,h3 --shared-from file:///…` puts the
//! front-end on h1 and the workers round-robin after it, on an overlay
//! network with the nodes' static addresses; names resolve and packets go
//! across hosts, the hosts file and the shared folder are the same on
//! every host, an addnode lands on the next host and is in every node's
//! hosts file at once, a killed host's node is unreachable while the others
//! run on and comes back on another host once the lost host is taken out of
//! the swarm (`mcc host remove --lost`), a node moves between hosts, and
//! delete leaves nothing on any engine nor in the shared folder. Bad input (an unknown host, no shared folder) is refused
//! before anything is made.

mod common;

use common::*;

/// The names of the cluster's containers on host `i`.
fn on_host(hosts: &Hosts, i: usize, cluster: &str) -> Vec<String> {
    let mut names: Vec<String> = hosts
        .docker_ok(
            i,
            &[
                "ps",
                "-a",
                "--filter",
                &format!("label=mcc.cluster={cluster}"),
                "--format",
                "{{.Names}}",
            ],
        )
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

#[test]
fn a_cluster_spans_three_hosts_with_its_names_addresses_and_folders() {
    let hosts = Hosts::up("mccspan", 3, &[BUSYBOX]);
    let s = Setup::new("span");
    let c = Cluster::new("span");
    for (name, i, zone) in [("h1", 1, "a"), ("h2", 2, "a"), ("h3", 3, "b")] {
        s.mcc([
            "host",
            "add",
            name,
            "--engine",
            hosts.docker_host(i),
            "--zone",
            zone,
        ])
        .run()
        .ok();
    }
    let shared = format!("file://{}", s.export);
    let subnet = test_subnet(209);

    // bad input first: nothing is made
    let out = s
        .mcc([
            "create",
            "--name",
            c.n(),
            "--image",
            BUSYBOX,
            "--hosts",
            "h1,h9",
            "--shared-from",
            &shared,
        ])
        .run()
        .code_is(2);
    assert!(out.stderr.contains("'h9'"), "{}", out.describe());
    let out = s
        .mcc([
            "create",
            "--name",
            c.n(),
            "--image",
            BUSYBOX,
            "--hosts",
            "h1,h2",
        ])
        .run()
        .code_is(2);
    assert!(out.stderr.contains("--shared-from"), "{}", out.describe());
    assert_nothing_labelled(c.n(), "after the refused creates");
    for i in 1..=3 {
        assert!(on_host(&hosts, i, c.n()).is_empty(), "host {i}");
    }

    // --spread zone: consecutive nodes in different zones (h1 and h2 are
    // in zone a, h3 in b: frontend h1, node01 h3, node02 h2)
    {
        let z = Cluster::new("zones");
        s.mcc([
            "create",
            "--name",
            z.n(),
            "--image",
            BUSYBOX,
            "--nodes",
            "2",
            "--spread",
            "zone",
            "--shared-from",
            &shared,
        ])
        .run()
        .ok();
        let zn = |node: &str| format!("{}-{node}", z.n());
        assert_eq!(on_host(&hosts, 1, z.n()), [zn("frontend")]);
        assert_eq!(on_host(&hosts, 2, z.n()), [zn("node02")]);
        assert_eq!(on_host(&hosts, 3, z.n()), [zn("node01")]);
        let out = s.mcc(["inspect", z.n(), "--output", "json"]).run().ok();
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let zones: Vec<&str> = v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["zone"].as_str().unwrap_or("-"))
            .collect();
        assert_eq!(zones, ["a", "b", "a"], "{}", out.describe());
        let out = s.mcc(["inspect", z.n()]).run().ok();
        assert!(out.stdout.contains("ZONE"), "{}", out.describe());
        s.mcc(["delete", z.n()]).run().ok();
        let out = s
            .mcc([
                "create",
                "--name",
                z.n(),
                "--image",
                BUSYBOX,
                "--spread",
                "rack",
            ])
            .run()
            .code_is(2);
        assert!(out.stderr.contains("rack"), "{}", out.describe());
    }

    // nodes pinned in the file (`per-node: {NODE: {host: H}}`) go there,
    // over the round-robin; kept to the end, where its host is lost
    let p = Cluster::new("spanpin");
    let file = s.dir.join("pinned.yaml");
    std::fs::write(
        &file,
        format!(
            "image: {BUSYBOX}\nnodes: 2\nhosts: [h1, h2]\nshared-from: {shared}\n\
             per-node:\n  frontend: {{host: h2}}\n  node01: {{host: h3}}\n"
        ),
    )
    .unwrap();
    let file = file.to_string_lossy().into_owned();
    s.mcc(["create", "--name", p.n(), "--file", &file])
        .run()
        .ok();
    let pn = |node: &str| format!("{}-{node}", p.n());
    // (node02 is not pinned: round-robin over h1,h2 puts it on h1)
    assert_eq!(on_host(&hosts, 1, p.n()), [pn("node02")]);
    assert_eq!(on_host(&hosts, 2, p.n()), [pn("frontend")]);
    assert_eq!(on_host(&hosts, 3, p.n()), [pn("node01")]);
    // a pin on a host that is not listed: refused, nothing made
    let bad = Cluster::new("spanpin2");
    std::fs::write(
        s.dir.join("bad.yaml"),
        format!("image: {BUSYBOX}\nhosts: [h1]\nshared-from: {shared}\nper-node:\n  frontend: {{host: h9}}\n"),
    )
    .unwrap();
    let bad_file = s.dir.join("bad.yaml").to_string_lossy().into_owned();
    let out = s
        .mcc(["create", "--name", bad.n(), "--file", &bad_file])
        .run()
        .code_is(2);
    assert!(out.stderr.contains("'h9'"), "{}", out.describe());
    assert!(on_host(&hosts, 1, bad.n()).is_empty());

    s.mcc([
        "create",
        "--name",
        c.n(),
        "--image",
        BUSYBOX,
        "--nodes",
        "3",
        "--subnet",
        &subnet,
        "--device",
        "home:/home",
        "--hosts",
        "h1,h2,h3",
        "--shared-from",
        &shared,
    ])
    .run()
    .ok();
    let n = |node: &str| format!("{}-{node}", c.n());
    assert_eq!(on_host(&hosts, 1, c.n()), [n("frontend"), n("node03")]);
    assert_eq!(on_host(&hosts, 2, c.n()), [n("node01")]);
    assert_eq!(on_host(&hosts, 3, c.n()), [n("node02")]);

    // inspect says where each node runs
    let out = s.mcc(["inspect", c.n(), "--output", "json"]).run().ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let placed: Vec<(String, String)> = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap().to_string(),
                n["host"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect();
    let want = [
        ("frontend", "h1"),
        ("node01", "h2"),
        ("node02", "h3"),
        ("node03", "h1"),
    ]
    .map(|(a, b)| (a.to_string(), b.to_string()));
    assert_eq!(placed, want, "{}", out.describe());
    assert_eq!(v["hosts"], serde_json::json!(["h1", "h2", "h3"]));
    let out = s.mcc(["inspect", c.n()]).run().ok();
    assert!(out.stdout.contains("HOST"), "{}", out.describe());

    // names, addresses and packets across hosts
    let sh = |on: &str, script: &str| {
        s.mcc(["exec", c.n(), "--on", on, "--", "sh", "-c", script])
            .run()
    };
    let out = sh("node01", "ping -c 1 -W 5 node02 && ping -c 1 -W 5 frontend").ok();
    assert!(
        out.stdout.contains("1 packets received"),
        "{}",
        out.describe()
    );
    let out = sh("node02", "cat /etc/hosts").ok();
    assert!(
        out.stdout
            .contains(&format!("{}\tnode03", static_ip(&subnet, 3))),
        "{}",
        out.describe()
    );
    let out = sh("node03", "ip -4 -o addr show eth0").ok();
    assert!(
        out.stdout.contains(&format!("{}/", static_ip(&subnet, 3))),
        "{}",
        out.describe()
    );

    // the shared folder is one on every host
    sh("node01", "echo from-h2 > /home/x").ok();
    let out = sh("node02", "cat /home/x").ok();
    assert!(out.stdout.contains("from-h2"), "{}", out.describe());

    // an addnode goes on the next host, and every node sees its name now
    s.mcc(["addnode", c.n()]).run().ok();
    assert_eq!(on_host(&hosts, 2, c.n()), [n("node01"), n("node04")]);
    let out = sh("node02", "ping -c 1 -W 5 node04").ok();
    assert!(
        out.stdout.contains("1 packets received"),
        "{}",
        out.describe()
    );

    let out = s.mcc(["list"]).run().ok();
    assert!(out.stdout.contains(c.n()), "{}", out.describe());

    // a host lost: its node is unreachable (not gone), the others run on
    hosts.kill(3);
    let out = s.mcc(["inspect", c.n(), "--output", "json"]).run().ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let node02 = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "node02")
        .cloned()
        .unwrap_or_default();
    assert_eq!(node02["state"], "unreachable", "{}", out.describe());
    assert_eq!(node02["host"], "h3", "{}", out.describe());
    assert_eq!(v["status"], "degraded", "{}", out.describe());
    // a pinned node of the lost host: unreachable there, as recorded
    let out = s.mcc(["inspect", p.n(), "--output", "json"]).run().ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let pinned = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "node01")
        .cloned()
        .unwrap_or_default();
    assert_eq!(pinned["state"], "unreachable", "{}", out.describe());
    assert_eq!(pinned["host"], "h3", "{}", out.describe());
    // its delete cannot free the overlay while h3 holds a node's address,
    // and says what does
    let out = s.mcc(["delete", p.n()]).run().code_is(1);
    assert!(
        out.stderr.contains("mcc host remove h3 --lost"),
        "{}",
        out.describe()
    );
    let out = sh("node01", "ping -c 1 -W 5 node04").ok();
    assert!(
        out.stdout.contains("1 packets received"),
        "{}",
        out.describe()
    );
    // --host on a host that is not listed: refused, nothing changed
    let out = s.mcc(["addnode", c.n(), "--host", "h9"]).run().code_is(2);
    assert!(out.stderr.contains("h9"), "{}", out.describe());
    // the host is gone for good: out of the swarm, which frees node02's
    // address, and node02 back on h1 with its name, address and /home
    let out = s.mcc(["host", "remove", "h3"]).run();
    assert_ne!(out.code(), 0, "h3 holds nodes: {}", out.describe());
    s.mcc(["host", "remove", "h3", "--lost"]).run().ok();
    s.mcc(["delete", p.n()]).run().ok();
    assert!(on_host(&hosts, 1, p.n()).is_empty());
    assert!(on_host(&hosts, 2, p.n()).is_empty());
    let out = s.mcc(["host", "remove", "h2", "--lost"]).run().code_is(2);
    assert!(out.stderr.contains("not lost"), "{}", out.describe());
    s.mcc(["recreate", c.n(), "node02", "--host", "h1"])
        .run()
        .ok();
    assert!(on_host(&hosts, 1, c.n()).contains(&n("node02")));
    let out = sh("node01", "ping -c 1 -W 5 node02 && cat /home/x").ok();
    assert!(out.stdout.contains("from-h2"), "{}", out.describe());
    let out = sh("node02", "ip -4 -o addr show eth0").ok();
    assert!(
        out.stdout.contains(&format!("{}/", static_ip(&subnet, 2))),
        "{}",
        out.describe()
    );
    // a node moved between hosts that answer: node04 from h2 to h1
    s.mcc(["recreate", c.n(), "node04", "--host", "h1"])
        .run()
        .ok();
    assert_eq!(on_host(&hosts, 2, c.n()), [n("node01")]);
    let out = sh("node01", "ping -c 1 -W 5 node04").ok();
    assert!(
        out.stdout.contains("1 packets received"),
        "{}",
        out.describe()
    );

    s.mcc(["delete", c.n()]).run().ok();
    // (h3 is gone)
    for i in 1..=2 {
        assert!(on_host(&hosts, i, c.n()).is_empty(), "host {i}");
        let vols = hosts.docker_ok(
            i,
            &[
                "volume",
                "ls",
                "-q",
                "--filter",
                &format!("label=mcc.cluster={}", c.n()),
            ],
        );
        assert!(vols.is_empty(), "host {i} keeps volumes: {vols}");
    }
    assert_nothing_labelled(c.n(), "after delete");
    let left: Vec<_> = std::fs::read_dir(format!("{}/mcc-volumes", s.export))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "the shared folder keeps {left:?}");

    two_mcc_on_two_machines_race_for_one_name(&hosts, &s);
}

/// Two mcc that share no lock (as on two machines: each its own lock
/// folder) and are pointed at different engines of the swarm create the
/// same cluster at once: the swarm's claim lets exactly one make it, the
/// other makes nothing; the cluster is seen, and deleted, from the other
/// engine, and its name is free again after.
fn two_mcc_on_two_machines_race_for_one_name(hosts: &Hosts, s: &Setup) {
    let c = Cluster::new("race");
    let shared = format!("file://{}", s.export);
    let locks: Vec<String> = (1..=2)
        .map(|i| {
            let d = s.dir.join(format!("locks-{i}"));
            std::fs::create_dir_all(&d).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
            d.to_string_lossy().into_owned()
        })
        .collect();
    let from = |i: usize, args: &[&str]| {
        mcc(args)
            .env("MCC_HOSTS_FILE", &s.file)
            .env("DOCKER_HOST", hosts.docker_host(i))
            .env("MCC_LOCK_DIR", &locks[i - 1])
            .local()
    };
    let create = [
        "create",
        "--name",
        c.n(),
        "--image",
        BUSYBOX,
        "--nodes",
        "2",
        "--hosts",
        "h1,h2",
        "--shared-from",
        &shared,
    ];
    let runs: Vec<Running> = (1..=2).map(|i| from(i, &create).spawn()).collect();
    let outs: Vec<Out> = runs.into_iter().map(|r| r.wait(TIMEOUT)).collect();
    let won: Vec<usize> = (0..2).filter(|i| outs[*i].code() == 0).collect();
    assert_eq!(
        won.len(),
        1,
        "exactly one create wins:\n{}\n{}",
        outs[0].describe(),
        outs[1].describe()
    );
    let lost = &outs[1 - won[0]];
    assert_eq!(lost.code(), 1, "{}", lost.describe());
    assert!(
        lost.stderr.contains("already exists"),
        "{}",
        lost.describe()
    );
    // one cluster: 1+2 nodes and one record container
    let all: usize = (1..=2).map(|i| on_host(hosts, i, c.n()).len()).sum();
    assert_eq!(all, 4, "the loser made nothing");

    // seen and deleted from the engine of the one that lost
    let other = 2 - won[0];
    let out = from(other, &["inspect", c.n(), "--output", "json"])
        .run()
        .ok();
    assert!(out.stdout.contains("\"running\""), "{}", out.describe());
    from(other, &["delete", c.n()]).run().ok();
    for i in 1..=2 {
        assert!(on_host(hosts, i, c.n()).is_empty(), "host {i}");
    }
    // the name is free again
    from(other, &create).run().ok();
    from(won[0] + 1, &["delete", c.n()]).run().ok();
    for i in 1..=2 {
        assert!(on_host(hosts, i, c.n()).is_empty(), "host {i}");
    }
}

/// The folders of a cluster's volumes on the shared export are made and
/// removed through the engines (a helper container that mounts the
/// export), not by mcc's own file calls: mcc runs where the export is an
/// empty tmpfs of its own, and the nodes on both hosts still share /home,
/// kept in `<export>/mcc-volumes` (0700). A link a node plants in /home is
/// removed, never followed; a link where a volume's folder goes is
/// refused. An NFS export a host cannot mount (this kernel has no NFS
/// client) is refused naming the host and the export, leaving nothing.
#[test]
fn shared_folders_are_made_and_removed_through_the_engines() {
    use std::os::unix::fs::PermissionsExt;
    let hosts = Hosts::up("mccex", 2, &[BUSYBOX]);
    let s = Setup::new("export");
    for (name, i) in [("h1", 1), ("h2", 2)] {
        s.mcc(["host", "add", name, "--engine", hosts.docker_host(i)])
            .run()
            .ok();
    }
    let shared = format!("file://{}", s.export);
    let volumes = std::path::Path::new(&s.export).join("mcc-volumes");
    // what a planted link points to, outside the export
    let outside = s.dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("keep"), "x").unwrap();

    let c = Cluster::new("export");
    let hidden = |args: &[&str]| {
        mcc(args)
            .env("MCC_HOSTS_FILE", &s.file)
            .local()
            .hiding(&s.export)
    };
    let out = hidden(&[
        "create",
        "--name",
        c.n(),
        "--image",
        BUSYBOX,
        "--nodes",
        "1",
        "--device",
        "home:/home",
        "--persist",
        "/var",
        "--hosts",
        "h1,h2",
        "--shared-from",
        &shared,
    ])
    .run()
    .ok();
    // --persist stays on each node's host, and says so
    assert!(
        out.stderr
            .contains("--persist /var: each node's volume stays on its node's host"),
        "{}",
        out.describe()
    );
    let out = hidden(&["inspect", c.n(), "--output", "json"]).run().ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let persisted: Vec<(&str, &str, &str)> = v["persisted"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    (
                        p["node"].as_str().unwrap_or("-"),
                        p["path"].as_str().unwrap_or("-"),
                        p["host"].as_str().unwrap_or("-"),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        persisted,
        [("frontend", "/var", "h1"), ("node01", "/var", "h2")],
        "{}",
        out.describe()
    );
    let out = hidden(&["inspect", c.n()]).run().ok();
    assert!(
        out.stdout
            .contains("--persist volumes, each on its node's host"),
        "{}",
        out.describe()
    );
    let home = volumes.join(format!("{}-home", c.n()));
    let mode = |p: &std::path::Path| std::fs::symlink_metadata(p).unwrap().permissions().mode();
    assert_eq!(mode(&volumes) & 0o7777, 0o700, "{}", volumes.display());
    assert_eq!(mode(&home) & 0o7777, 0o755, "{}", home.display());
    let sh = |on: &str, script: &str| {
        hidden(&["exec", c.n(), "--on", on, "--", "sh", "-c", script]).run()
    };
    sh("node01", "echo from-h2 > /home/x").ok();
    let out = sh("frontend", "cat /home/x && ping -c 1 -W 5 node01").ok();
    assert!(out.stdout.contains("from-h2"), "{}", out.describe());
    assert_eq!(
        std::fs::read_to_string(home.join("x")).unwrap(),
        "from-h2\n"
    );
    // a node plants links to a folder of the host in the shared folder
    let target = outside.to_string_lossy();
    sh(
        "node01",
        &format!("ln -s {target} /home/link && mkdir /home/d && ln -s {target}/keep /home/d/f"),
    )
    .ok();
    hidden(&["delete", c.n()]).run().ok();
    assert!(outside.join("keep").exists(), "a link was followed");
    let left: Vec<_> = std::fs::read_dir(&volumes)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "the shared folder keeps {left:?}");
    for i in 1..=2 {
        assert!(on_host(&hosts, i, c.n()).is_empty(), "host {i}");
        let vols = hosts.docker_ok(
            i,
            &[
                "volume",
                "ls",
                "-q",
                "--filter",
                &format!("label=mcc.cluster={}", c.n()),
            ],
        );
        assert!(vols.is_empty(), "host {i} keeps volumes: {vols}");
    }
    assert_nothing_labelled(c.n(), "after delete");

    // a link where a volume's folder goes: refused, naming it, not followed
    let c2 = Cluster::new("exlink");
    let planted = volumes.join(format!("{}-home", c2.n()));
    std::os::unix::fs::symlink(&outside, &planted).unwrap();
    let out = s
        .mcc([
            "create",
            "--name",
            c2.n(),
            "--image",
            BUSYBOX,
            "--device",
            "home:/home",
            "--hosts",
            "h1,h2",
            "--shared-from",
            &shared,
        ])
        .run();
    assert_eq!(out.code(), 1, "{}", out.describe());
    assert!(
        out.stderr
            .contains(&format!("mcc-volumes/{}-home is not a folder", c2.n())),
        "{}",
        out.describe()
    );
    let inside: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(inside, ["keep"], "something was made through the link");
    assert_nothing_labelled(c2.n(), "after the refused create");
    std::fs::remove_file(&planted).unwrap();

    // an NFS export that the hosts cannot mount (h1 is the engine mcc is
    // pointed at: the cluster's record goes there first)
    let c3 = Cluster::new("exnfs");
    let nfs = "nfs://192.0.2.1/srv/mcc";
    let out = s
        .mcc([
            "create",
            "--name",
            c3.n(),
            "--image",
            BUSYBOX,
            "--hosts",
            "h1,h2",
            "--shared-from",
            nfs,
        ])
        .env("DOCKER_HOST", hosts.docker_host(1))
        .run();
    assert_eq!(out.code(), 1, "{}", out.describe());
    for says in ["on host h1", nfs, "cannot mount"] {
        assert!(out.stderr.contains(says), "{says}: {}", out.describe());
    }
    for i in 1..=2 {
        assert!(on_host(&hosts, i, c3.n()).is_empty(), "host {i}");
        let left = hosts.docker_ok(
            i,
            &[
                "volume",
                "ls",
                "-q",
                "--filter",
                &format!("label=mcc.cluster={}", c3.n()),
            ],
        );
        assert!(left.is_empty(), "host {i} keeps volumes: {left}");
    }
    // and one that is not an export at all: a usage error
    let out = s
        .mcc([
            "create",
            "--name",
            c3.n(),
            "--image",
            BUSYBOX,
            "--hosts",
            "h1,h2",
            "--shared-from",
            "nfs://nas:2049/srv",
        ])
        .run()
        .code_is(2);
    assert!(
        out.stderr.contains("nfs://nas:2049/srv") && out.stderr.contains("?port="),
        "{}",
        out.describe()
    );
}
