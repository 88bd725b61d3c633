//! A node's root cannot turn the cluster's meta volume against the host or
//! the other nodes: /opt/mcc is read-only on every node, membership comes
//! from `members` (not from parsing hosts), links planted in the shared
//! volume are never followed by mcc on the host, and context folders
//! cannot smuggle host files in through links.
//!
//! Every gc here is scoped to the test's own clusters (`mcc gc NAME`).

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;

/// Content no other run of any test can have.
fn unique_secret(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_nanos();
    format!("mcc-secret-{tag}-{}-{nanos}", std::process::id())
}

/// The file still has mode 0600 and exactly `content`.
#[track_caller]
fn assert_host_file_intact(path: &Path, content: &str, when: &str) {
    let md = std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{when}: {}: {e}", path.display()));
    assert!(
        md.is_file(),
        "{when}: {} is no longer a file",
        path.display()
    );
    assert_eq!(
        md.permissions().mode() & 0o7777,
        0o600,
        "{when}: mode of {}",
        path.display()
    );
    assert_eq!(
        std::fs::read_to_string(path).expect("reading the host file"),
        content,
        "{when}: content of {}",
        path.display()
    );
}

/// The cluster runs with every node; every node's /etc/hosts is mcc's,
/// lists every member and never the secret; `mcc logs` never prints it;
/// the host file is untouched. Returns the members.
#[track_caller]
fn assert_sound(c: &Cluster, secret_file: &Path, secret: &str, when: &str) -> BTreeSet<String> {
    let view = inspect(c);
    assert_eq!(view["status"], "running", "{when}: {view:#}");
    let table = node_table(&view);
    for (node, (_, state)) in &table {
        assert_eq!(state, "running", "{when}: {node} does not run: {view:#}");
    }
    let members: BTreeSet<String> = table.keys().cloned().collect();
    let hosts = hosts_files(c, members.len(), when);
    for (node, text) in &hosts {
        assert!(
            text.starts_with("# Written by mcc for cluster"),
            "{when}: /etc/hosts of {node} is not mcc's:\n{text}"
        );
        assert!(
            !text.contains(secret),
            "{when}: /etc/hosts of {node} holds the host's secret:\n{text}"
        );
        let listed: BTreeSet<String> = hosts_entries(text).keys().cloned().collect();
        assert!(
            members.is_subset(&listed),
            "{when}: /etc/hosts of {node} lacks members {members:?}:\n{text}"
        );
    }
    let logs = mcc(["logs", c.n()]).run();
    assert!(
        !logs.stdout.contains(secret) && !logs.stderr.contains(secret),
        "{when}: mcc logs printed the host's secret: {}",
        logs.describe()
    );
    assert_host_file_intact(secret_file, secret, when);
    // only the nodes and the record remain: no helper left behind, and
    // the record, which holds the meta volume writable, never ran
    let record = format!("{}-mcc", c.n());
    let mut want: Vec<String> = members.iter().map(|m| format!("{}-{m}", c.n())).collect();
    want.push(record.clone());
    want.sort();
    assert_eq!(labelled(c.n()).containers, want, "{when}");
    let started = docker_ok(&["inspect", "-f", "{{.State.StartedAt}}", &record]);
    assert!(
        started.starts_with("0001-01-01"),
        "{when}: the record container was started at {started}"
    );
    members
}

#[test]
fn node_root_cannot_reach_host_files() {
    let c = Cluster::new("sec-root");
    let secret = unique_secret("root");
    let dir = TempDir::new("sec-root-secret");
    let secret_file = dir.write("secret", &secret, 0o600);
    let sf = secret_file.display().to_string();
    let ctx = context_folder(
        "sec-root-ctx",
        &[(
            "all/10-hello",
            "#!/bin/sh\necho \"hello from $MCC_NODE\"\n",
            0o755,
        )],
    );
    create(
        &c,
        &image_nodes(BUSYBOX, "1", &["--context-folder", &ctx.arg()]),
    );
    assert_sound(&c, &secret_file, &secret, "after create");

    // every write to /opt/mcc (and /etc/hosts) from the front-end's root fails
    let attempts = [
        format!("ln -sf {sf} /opt/mcc/hosts"),
        "rm -f /opt/mcc/hosts".to_string(),
        // (a cluster's state and members are its index volume's labels,
        // out of a node's reach; here a node tries to plant the files a
        // schema 2 cluster kept them in)
        "mkdir /opt/mcc/state".to_string(),
        "echo x > /opt/mcc/state/ready".to_string(),
        "echo '[\"evil\"]' > /opt/mcc/members".to_string(),
        "rm -f /opt/mcc/nodes".to_string(),
        "echo evil > /opt/mcc/nodes".to_string(),
        "touch /opt/mcc/context/evil".to_string(),
        "rm -rf /opt/mcc/context/*".to_string(),
        "echo evil >> /opt/mcc/bin/run-context".to_string(),
        "chmod 777 /opt/mcc/bin/run-context".to_string(),
        "mv /opt/mcc/bin/run-context /opt/mcc/bin/x".to_string(),
        "echo evil >> /etc/hosts".to_string(),
        "mount -o remount,rw /opt/mcc".to_string(),
    ];
    for attempt in &attempts {
        let out = sh(
            &c,
            "frontend",
            &format!("if {attempt} 2>/dev/null; then echo WROTE; else echo REFUSED; fi"),
        );
        assert_eq!(
            per_node(&out).get("frontend").map(String::as_str),
            Some("REFUSED\n"),
            "the front-end's root could run `{attempt}`: {}",
            out.describe()
        );
    }
    // the shared volume is the nodes' own: links planted there must never
    // lead mcc (root on the host) to the host's files
    let out = sh(
        &c,
        "frontend",
        &format!(
            "mkdir -p \"$MCC_SHARED/.mcc/logs\" && cd \"$MCC_SHARED/.mcc/logs\" && ln -sfn {sf} node01.log && ln -sfn {sf} node02.log \
             && ln -sfn / frontend.log && echo PLANTED"
        ),
    )
    .ok();
    assert!(out.stdout.contains("PLANTED"), "{}", out.describe());
    assert_sound(&c, &secret_file, &secret, "after the attempts");

    mcc(["stop", c.n()]).run().ok();
    mcc(["start", c.n()]).run().ok();
    assert_sound(&c, &secret_file, &secret, "after stop and start");

    mcc(["recreate", c.n(), "node01"]).run().ok();
    assert_sound(&c, &secret_file, &secret, "after recreate of node01");

    let out = mcc(["addnode", c.n()]).run().ok();
    assert!(out.stdout.contains("node02"), "{}", out.describe());
    let members = assert_sound(&c, &secret_file, &secret, "after addnode");
    assert_eq!(
        members,
        ["frontend", "node01", "node02"]
            .map(String::from)
            .into_iter()
            .collect::<BTreeSet<_>>()
    );

    mcc(["gc", c.n()]).run().ok();
    let members = assert_sound(&c, &secret_file, &secret, "after gc");
    assert_eq!(members.len(), 3, "{members:?}");
}

#[test]
fn add_host_makes_no_phantom_member() {
    let c = Cluster::new("sec-addhost");
    let phantom = format!("{}-node05:192.0.2.55", c.n());
    create(
        &c,
        &image_nodes(
            BUSYBOX,
            "1",
            &[
                "--add-host",
                &phantom,
                "--add-host",
                "nfs:192.0.2.56",
                // the name of the node addnode will make: the node wins
                "--add-host",
                "node02:192.0.2.57",
            ],
        ),
    );
    let members = |when: &str| -> Vec<String> {
        let view = inspect(&c);
        assert_eq!(view["status"], "running", "{when}: {view:#}");
        node_table(&view).keys().cloned().collect()
    };
    assert_eq!(members("after create"), ["frontend", "node01"]);

    let out = mcc(["addnode", c.n()]).run().ok();
    assert!(out.stdout.contains("node02"), "{}", out.describe());
    assert_eq!(members("after addnode"), ["frontend", "node01", "node02"]);
    for (node, text) in hosts_files(&c, 3, "after addnode") {
        let has = |ip: &str, name: &str| {
            text.lines()
                .any(|l| l.split_whitespace().next() == Some(ip) && l.contains(name))
        };
        assert!(
            has("192.0.2.55", &format!("{}-node05", c.n())) && has("192.0.2.56", "nfs"),
            "/etc/hosts of {node} lost the extra entries:\n{text}"
        );
        assert!(
            hosts_entries(&text).contains_key("node02"),
            "/etc/hosts of {node} lacks node02:\n{text}"
        );
    }
    let ip = node_table(&inspect(&c))["node02"].0.clone();
    let out = sh(&c, "frontend", "ping -c1 -W2 node02 | head -n 1").ok();
    assert!(
        out.stdout.contains(&format!("({ip})")),
        "node02 does not resolve to its node's address {ip}: {}",
        out.describe()
    );
}

#[test]
fn hosts_rewrite_is_never_seen_empty() {
    let c = Cluster::new("sec-reader");
    create(&c, &image_nodes(BUSYBOX, "1", &[]));
    let reader = |node: &str| {
        format!(
            "n=0; while [ ! -e /opt/mcc/shared/stop ]; do \
               h=$(cat /etc/hosts); \
               case \"$h\" in \"# Written by mcc for cluster\"*) ;; \
                 *) echo \"[$h]\" >> /opt/mcc/shared/bad-{node};; esac; \
               if [ \"$h\" != \"$prev\" ]; then \
                 printf '%s\\n=====\\n' \"$h\" >> /opt/mcc/shared/seen-{node}; prev=$h; fi; \
               n=$((n+1)); echo $n > /opt/mcc/shared/count-{node}; \
             done; echo done > /opt/mcc/shared/done-{node}"
        )
    };
    for node in ["frontend", "node01"] {
        docker_ok(&[
            "exec",
            "-d",
            &format!("{}-{node}", c.n()),
            "sh",
            "-c",
            &reader(node),
        ]);
    }
    for round in 0..4 {
        let out = mcc(["addnode", c.n()]).run().ok();
        assert!(
            out.stdout.contains("node02"),
            "round {round}: {}",
            out.describe()
        );
        mcc(["delnode", c.n(), "node02"]).run().ok();
    }
    sh(&c, "frontend", "touch /opt/mcc/shared/stop").ok();
    wait_until(Duration::from_secs(30), "the readers to stop", || {
        sh(
            &c,
            "frontend",
            "[ -e /opt/mcc/shared/done-frontend ] && [ -e /opt/mcc/shared/done-node01 ] && echo both",
        )
        .stdout
        .contains("both")
    });
    for node in ["frontend", "node01"] {
        let out = sh(
            &c,
            "frontend",
            &format!(
                "echo count $(cat /opt/mcc/shared/count-{node}); \
                 cat /opt/mcc/shared/bad-{node} 2>/dev/null | head -c 2000"
            ),
        )
        .ok();
        let text = per_node(&out).remove("frontend").unwrap_or_default();
        let mut lines = text.lines();
        let count: u64 = lines
            .next()
            .and_then(|l| l.strip_prefix("count "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no count of {node}: {}", out.describe()));
        let bad: Vec<&str> = lines.collect();
        println!("{node}: {count} reads of /etc/hosts, {} bad", bad.len());
        assert!(
            bad.is_empty(),
            "{node} read /etc/hosts empty or without its header: {bad:?}"
        );
        assert!(count > 100, "{node} read /etc/hosts only {count} times");

        // every version a reader saw is a whole file of a real membership
        let out = mcc([
            "exec",
            c.n(),
            "--on",
            "frontend",
            "--",
            "cat",
            &format!("/opt/mcc/shared/seen-{node}"),
        ])
        .run()
        .ok();
        let seen = per_node(&out).remove("frontend").unwrap_or_default();
        let versions: Vec<&str> = seen
            .split("=====\n")
            .filter(|v| !v.trim().is_empty())
            .collect();
        println!("{node} saw {} versions of /etc/hosts", versions.len());
        for v in &versions {
            let names: Vec<String> = hosts_entries(v).keys().cloned().collect();
            assert!(
                names == ["frontend", "node01"] || names == ["frontend", "node01", "node02"],
                "{node} read a torn or foreign /etc/hosts:\n{v}"
            );
            for l in v.lines() {
                let l = l.trim_end();
                let ok = l.is_empty()
                    || l.starts_with('#')
                    || l.split_once('\t').is_some_and(|(ip, rest)| {
                        ip.parse::<std::net::IpAddr>().is_ok() && !rest.trim().is_empty()
                    });
                assert!(ok, "{node} read a torn line {l:?} in:\n{v}");
            }
        }
    }
}

#[test]
fn context_link_outside_is_refused() {
    let c = Cluster::new("sec-link");
    let outside = TempDir::new("sec-link-outside");
    let secret = unique_secret("link");
    let target = outside.write("evil.sh", &format!("#!/bin/sh\necho {secret}\n"), 0o755);
    let ctx = TempDir::new("sec-link-ctx");
    std::fs::create_dir_all(ctx.path().join("all")).expect("mkdir all");
    std::os::unix::fs::symlink(&target, ctx.path().join("all/10-x")).expect("a link");
    let args = create_args(
        c.n(),
        BUSYBOX,
        &["--nodes", "1", "--context-folder", &ctx.arg()],
    );
    let out = mcc(&args).run();
    assert_eq!(out.status.code(), Some(2), "{}", out.describe());
    assert!(
        out.stderr.contains("10-x") && out.stderr.contains("points outside the folder"),
        "{}",
        out.describe()
    );
    assert!(!out.stdout.contains(&secret) && !out.stderr.contains(&secret));
    assert_nothing_labelled(c.n(), "after the refused create");

    // a link inside the folder is packed as its target
    let ctx2 = context_folder(
        "sec-link-ctx2",
        &[(
            "lib/y.sh",
            "#!/bin/sh\necho \"y ran on $MCC_NODE\"\n",
            0o755,
        )],
    );
    std::fs::create_dir_all(ctx2.path().join("all")).expect("mkdir all");
    std::os::unix::fs::symlink("../lib/y.sh", ctx2.path().join("all/10-y")).expect("a link");
    create(
        &c,
        &image_nodes(BUSYBOX, "1", &["--context-folder", &ctx2.arg()]),
    );
    let logs = mcc(["logs", c.n()]).run().ok();
    for node in ["frontend", "node01"] {
        assert!(
            logs.stdout.contains(&format!("y ran on {node}")),
            "{}",
            logs.describe()
        );
    }
}

/// Every way a context folder could reach outside itself, or make mcc read
/// without end, is refused before anything is made.
#[test]
fn context_folder_tricks_are_refused() {
    let c = Cluster::new("sec-tricks");
    let outside = TempDir::new("sec-tricks-outside");
    let secret = unique_secret("tricks");
    let script = outside.write("sub/10-e", &format!("#!/bin/sh\necho {secret}\n"), 0o755);
    let sub = outside.path().join("sub");
    let link = |ctx: &TempDir, target: &Path, rel: &str| {
        let at = ctx.path().join(rel);
        std::fs::create_dir_all(at.parent().expect("a parent")).expect("mkdir");
        std::os::unix::fs::symlink(target, at).expect("a link");
    };
    let run = |ctx: &TempDir, name: &str| {
        let args = create_args(
            c.n(),
            BUSYBOX,
            &["--nodes", "0", "--context-folder", &ctx.arg()],
        );
        let out = mcc(&args).run();
        assert_eq!(out.status.code(), Some(2), "{name}: {}", out.describe());
        assert!(
            !out.stdout.contains(&secret) && !out.stderr.contains(&secret),
            "{name}: {}",
            out.describe()
        );
        assert_nothing_labelled(c.n(), name);
        out
    };
    let outside_msg = "points outside the folder";

    // the all/ folder itself links outside
    let ctx = TempDir::new("sec-tricks-1");
    link(&ctx, &sub, "all");
    let out = run(&ctx, "a folder link outside");
    assert!(
        out.stderr.contains("all") && out.stderr.contains(outside_msg),
        "{}",
        out.describe()
    );

    // a relative link climbing out
    let ctx = TempDir::new("sec-tricks-2");
    // from all/: up to the context folder, to the temp dir, to / (and no further)
    let rel = Path::new("../../../../..").join(script.strip_prefix("/").expect("absolute"));
    link(&ctx, &rel, "all/10-z");
    let out = run(&ctx, "a relative link out");
    assert!(
        out.stderr.contains("10-z") && out.stderr.contains(outside_msg),
        "{}",
        out.describe()
    );

    // a link inside whose way goes through a folder link outside
    let ctx = TempDir::new("sec-tricks-3");
    link(&ctx, &sub, "lib/ext");
    link(&ctx, Path::new("../lib/ext/10-e"), "all/10-e");
    let out = run(&ctx, "a link through a folder link outside");
    assert!(out.stderr.contains(outside_msg), "{}", out.describe());

    // a hidden link, and a link in a folder mcc does not run
    for (i, rel) in ["all/.hidden", "extra/x"].iter().enumerate() {
        let ctx = TempDir::new(&format!("sec-tricks-4{i}"));
        ctx.write("all/10-ok", "#!/bin/sh\necho ok\n", 0o755);
        link(&ctx, &script, rel);
        let out = run(&ctx, rel);
        assert!(out.stderr.contains(outside_msg), "{}", out.describe());
    }

    // links that lead nowhere
    let ctx = TempDir::new("sec-tricks-5");
    link(&ctx, Path::new("10-b"), "all/10-a");
    link(&ctx, Path::new("10-a"), "all/10-b");
    run(&ctx, "a loop of links");
    let ctx = TempDir::new("sec-tricks-6");
    link(&ctx, Path::new("missing"), "all/10-d");
    run(&ctx, "a dangling link");

    // a pipe and a device would be read without end
    let ctx = TempDir::new("sec-tricks-7");
    std::fs::create_dir_all(ctx.path().join("all")).expect("mkdir");
    let fifo = ctx.path().join("all/10-fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo")
        .success());
    let out = run(&ctx, "a pipe");
    assert!(out.stderr.contains("10-fifo"), "{}", out.describe());
    let ctx = TempDir::new("sec-tricks-8");
    std::fs::create_dir_all(ctx.path().join("all")).expect("mkdir");
    let zero = ctx.path().join("all/zero");
    assert!(std::process::Command::new("mknod")
        .arg(&zero)
        .args(["c", "1", "5"])
        .status()
        .expect("mknod")
        .success());
    let out = run(&ctx, "a device");
    assert!(out.stderr.contains("zero"), "{}", out.describe());

    // a link that leaves and comes back in is inside
    let ctx = TempDir::new("sec-tricks-9");
    ctx.write("lib/y", "#!/bin/sh\necho \"back in on $MCC_NODE\"\n", 0o755);
    let name = ctx
        .path()
        .file_name()
        .expect("a name")
        .to_string_lossy()
        .into_owned();
    link(
        &ctx,
        &Path::new("../..").join(&name).join("lib/y"),
        "all/10-y",
    );
    create(
        &c,
        &image_nodes(BUSYBOX, "0", &["--context-folder", &ctx.arg()]),
    );
    let logs = mcc(["logs", c.n()]).run().ok();
    assert!(
        logs.stdout.contains("back in on frontend"),
        "{}",
        logs.describe()
    );
}

/// What a bounded run of mcc measured: exit status, bytes on stdout, peak
/// memory (VmHWM, KiB) and time taken.
struct Measured {
    ok: bool,
    stdout_bytes: u64,
    peak_kib: u64,
    took: Duration,
}

/// Runs mcc with `args`, counting its stdout without keeping it and
/// watching its peak memory; killed after `limit`.
fn measure(args: &[&str], limit: Duration) -> Measured {
    use std::io::Read;
    let started = std::time::Instant::now();
    let mut child = std::process::Command::new(bin())
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("running mcc");
    let mut out = child.stdout.take().expect("piped stdout");
    let counter = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut n = 0u64;
        while let Ok(k) = out.read(&mut buf) {
            if k == 0 {
                break;
            }
            n += k as u64;
        }
        n
    });
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    let status = loop {
        if let Ok(s) = std::fs::read_to_string(&status_file) {
            if let Some(kib) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            {
                peak = peak.max(kib);
            }
        }
        if let Some(s) = child.try_wait().expect("waiting for mcc") {
            break s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            break child.wait().expect("waiting for killed mcc");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Measured {
        ok: status.success(),
        stdout_bytes: counter.join().unwrap_or(0),
        peak_kib: peak,
        took: started.elapsed(),
    }
}

/// A node's root writes a huge sparse file (no disk used) where mcc reads
/// node-written files: `mcc logs` and `mcc start` must not read it whole
/// into the memory of the host's root process.
#[test]
fn node_root_cannot_make_mcc_read_without_end() {
    let c = Cluster::new("sec-huge");
    let ctx = context_folder(
        "sec-huge",
        &[
            (
                "all/10-hi",
                "#!/bin/sh\necho \"hi from $MCC_NODE\"\n",
                0o755,
            ),
            ("on-start/10-s", "#!/bin/sh\necho started\n", 0o755),
        ],
    );
    create(
        &c,
        &image_nodes(BUSYBOX, "0", &["--context-folder", &ctx.arg()]),
    );
    sh(
        &c,
        "frontend",
        "mkdir -p \"$MCC_SHARED/.mcc/logs\" && truncate -s 1G \"$MCC_SHARED/.mcc/logs/frontend.log\" \
         && truncate -s 1G \"$MCC_SHARED/.mcc/runs/zz.start\"",
    )
    .ok();
    let limit_kib = 512 * 1024;

    let logs = measure(&["logs", c.n()], Duration::from_secs(120));
    println!(
        "mcc logs: ok {}, {} bytes out, peak {} KiB, {:?}",
        logs.ok, logs.stdout_bytes, logs.peak_kib, logs.took
    );
    mcc(["stop", c.n()]).run().ok();
    let start = measure(&["start", c.n()], Duration::from_secs(120));
    println!(
        "mcc start: ok {}, peak {} KiB, {:?}",
        start.ok, start.peak_kib, start.took
    );
    assert!(
        logs.stdout_bytes < 16 << 20 && logs.peak_kib < limit_kib,
        "mcc logs read a node's 1 GiB file: {} bytes out, peak {} KiB",
        logs.stdout_bytes,
        logs.peak_kib
    );
    assert!(
        start.peak_kib < limit_kib,
        "mcc start read a node's 1 GiB file: peak {} KiB",
        start.peak_kib
    );
    assert!(start.ok, "mcc start failed");
}

/// The shared volume is writable by every node's root: links planted there
/// by one node must not make the context runner of another (here a node
/// that addnode makes later) write outside the shared volume.
#[test]
fn planted_links_do_not_steer_another_nodes_runner() {
    let c = Cluster::new("sec-steer");
    let ctx = context_folder(
        "sec-steer",
        &[(
            "all/10-hi",
            "#!/bin/sh\necho \"hi from $MCC_NODE\"\n",
            0o755,
        )],
    );
    create(
        &c,
        &image_nodes(BUSYBOX, "1", &["--context-folder", &ctx.arg()]),
    );
    sh(
        &c,
        "frontend",
        "mkdir -p \"$MCC_SHARED/.mcc/logs\" && cd \"$MCC_SHARED/.mcc/logs\" && ln -s /etc/planted-log node02.log \
         && ln -s /etc/planted-out .node02.current && echo PLANTED",
    )
    .ok();
    // node02 is made and runs its script: without it the check below
    // would pass on a node that never existed
    let out = mcc(["addnode", c.n()]).run().ok();
    assert!(out.stdout.contains("node02"), "{}", out.describe());
    let nodes = node_table(&inspect(&c));
    assert_eq!(
        nodes.get("node02").map(|(_, state)| state.as_str()),
        Some("running"),
        "node02 after addnode: {nodes:?}"
    );
    let logs = mcc(["logs", c.n(), "node02"]).run().ok();
    assert!(
        logs.stdout.contains("hi from node02"),
        "node02's script did not run or its log was lost: {}",
        logs.describe()
    );
    let check = sh(
        &c,
        "node02",
        "for f in /etc/planted-log /etc/planted-out; do [ -e $f ] && echo \"WRITTEN $f\"; done; echo CHECKED",
    )
    .ok();
    assert!(
        check.stdout.contains("CHECKED") && !check.stdout.contains("WRITTEN"),
        "another node's links steered node02's runner: {}",
        check.describe()
    );
    // the links resolve on the host too, if mcc ever follows them there
    for f in ["/etc/planted-log", "/etc/planted-out"] {
        assert!(
            !Path::new(f).exists(),
            "another node's link made mcc write the host's {f}"
        );
    }
}

/// The folder's owner swaps a script for a link to a host file while mcc
/// packs the folder: the check and the read must see the same file, so no
/// host file is ever shipped to the nodes.
#[test]
fn context_swapped_while_packed_ships_no_host_file() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let c = Cluster::new("sec-race");
    let secret = unique_secret("race");
    let outside = TempDir::new("sec-race-outside");
    let secret_file = outside.write("secret", &secret, 0o600);
    let script = "#!/bin/sh\necho benign\n";
    let ctx = TempDir::new("sec-race-ctx");
    let target = ctx.write("all/10-x", script, 0o755);

    let stop = Arc::new(AtomicBool::new(false));
    let racer = {
        let stop = stop.clone();
        let (link_tmp, file_tmp) = (outside.path().join(".l"), outside.path().join(".f"));
        let (secret_file, target) = (secret_file.clone(), target.clone());
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let _ = std::fs::remove_file(&link_tmp);
                let _ = std::os::unix::fs::symlink(&secret_file, &link_tmp);
                let _ = std::fs::rename(&link_tmp, &target);
                let _ = std::fs::write(&file_tmp, script);
                let _ = std::fs::set_permissions(&file_tmp, std::fs::Permissions::from_mode(0o755));
                let _ = std::fs::rename(&file_tmp, &target);
                swaps += 1;
            }
            swaps
        })
    };

    let (mut refused, mut made, mut leaked) = (0, 0, Vec::new());
    for _ in 0..60 {
        let out = create_cmd(
            &c,
            &image_nodes(BUSYBOX, "0", &["--context-folder", &ctx.arg()]),
        )
        .run();
        if !out.status.success() {
            refused += 1;
            assert_nothing_labelled(c.n(), "after a refused create");
            continue;
        }
        made += 1;
        let shipped = sh(&c, "frontend", "cat /opt/mcc/context/all/10-x").ok();
        if shipped.stdout.contains(&secret) {
            leaked.push(shipped.stdout.clone());
        }
        mcc(["delete", c.n()]).run().ok();
        if made >= 5 || !leaked.is_empty() {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = racer.join().expect("the racer");
    println!("{swaps} swaps; {refused} creates refused, {made} made");
    assert!(
        leaked.is_empty(),
        "a host file was shipped to the nodes: {leaked:?}"
    );
    assert_host_file_intact(&secret_file, &secret, "after the race");
}
