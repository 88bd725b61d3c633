//! A node's root is the user's test subject, not a trusted party. These
//! tests play it: from inside a node, as root, they try to make mcc (or the
//! engine, on mcc's behalf) read a host file, forge the cluster's state so
//! that `gc` deletes it, forge its members, and change the scripts other
//! nodes run. After every step that could pick such a change up (restart,
//! recreate, addnode, gc, logs) the cluster must be intact and no host file
//! visible.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;

/// What every attempt to change mcc's files from a node prints; each must
/// fail, and the script says which did not.
const ATTACKS: &str = r#"
set -u
try() { if "$@" 2>/dev/null; then echo "WROTE: $*"; fi; }
try ln -sf "$SECRET" /opt/mcc/hosts
try rm -f /opt/mcc/hosts
try sh -c 'echo ready > /opt/mcc/state/ready'
try sh -c 'echo deleting > /opt/mcc/state/deleting'
try sh -c 'echo "[\"frontend\",\"node01\",\"node07\"]" > /opt/mcc/members'
try sh -c 'echo "cat $SECRET" > /opt/mcc/context/all/10-hello'
try sh -c 'echo "cat $SECRET" > /opt/mcc/context/all/05-evil'
try sh -c 'echo "cat $SECRET" > /opt/mcc/bin/run-context'
try mv /opt/mcc/shared /opt/mcc/elsewhere
# the writable volume: links mcc must never follow
ln -sf "$SECRET" "$MCC_SHARED/.mcc/logs/node01.log"
ln -sf / "$MCC_SHARED/.mcc/logs/root.log"
rm -rf "$MCC_SHARED/.mcc/runs" && ln -s /opt/mcc/state "$MCC_SHARED/.mcc/runs"
echo attacks-done
"#;

#[test]
fn node_root_cannot_reach_host_files_nor_forge_mccs_records() {
    // a root-only file of the host, with content no node could guess
    let dir = TempDir::new("attack-secret");
    let secret_text = format!("TOP-SECRET-{}-{}", std::process::id(), line!());
    let secret = dir.path().join("secret");
    std::fs::write(&secret, format!("{secret_text}\n")).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();

    let c = Cluster::new("attack");
    let ctx = context_folder(
        "attack",
        &[
            ("all/10-hello", "echo hello from $MCC_NODE\n", 0o755),
            ("on-start/10-up", "echo up on $MCC_NODE\n", 0o755),
        ],
    );
    create(
        &c,
        &image_nodes(BUSYBOX, "1", &["--context-folder", &ctx.arg()]),
    );

    let attack = format!("SECRET={}\n{ATTACKS}", secret.display());
    let out = sh(&c, "frontend", &attack).ok();
    assert!(
        out.stdout.contains("attacks-done"),
        "the attack script did not run: {}",
        out.describe()
    );
    assert!(
        !out.stdout.contains("WROTE"),
        "a node changed mcc's files: {}",
        out.describe()
    );

    let intact = |when: &str| {
        let view = inspect(&c);
        assert_eq!(view["status"], "running", "{when}: {view:#}");
        let nodes: Vec<String> = node_table(&view).into_keys().collect();
        let count = nodes.len();
        for (node, hosts) in hosts_files(&c, count, when) {
            assert!(
                hosts.starts_with("# Written by mcc for cluster"),
                "{when}: {node}'s /etc/hosts is not mcc's:\n{hosts}"
            );
            assert!(
                !hosts.contains(&secret_text),
                "{when}: {node} sees the host's secret"
            );
            for n in &nodes {
                assert!(
                    hosts.contains(&format!(" {n} ")) || hosts.contains(&format!("\t{n} ")),
                    "{when}: {node}'s hosts lacks member {n}:\n{hosts}"
                );
            }
            assert!(
                !hosts.contains("node07"),
                "{when}: a forged member: {hosts}"
            );
        }
        let logs = mcc(["logs", c.n()]).run().ok();
        assert!(
            !logs.stdout.contains(&secret_text) && !logs.stderr.contains(&secret_text),
            "{when}: mcc logs showed the host's secret: {}",
            logs.describe()
        );
        let md = std::fs::metadata(&secret).unwrap();
        assert_eq!(md.permissions().mode() & 0o777, 0o600, "{when}");
        assert_eq!(
            std::fs::read_to_string(&secret).unwrap(),
            format!("{secret_text}\n"),
            "{when}"
        );
        nodes
    };

    intact("after the attack");
    mcc(["stop", c.n()]).run().ok();
    mcc(["start", c.n()]).run().ok();
    intact("after stop and start");
    mcc(["recreate", c.n(), "node01"]).run().ok();
    intact("after recreate");
    mcc(["addnode", c.n()]).run().ok();
    let nodes = intact("after addnode");
    assert_eq!(
        nodes,
        ["frontend", "node01", "node02"],
        "addnode took node02"
    );
    let out = mcc(["gc", c.n()]).run().ok();
    assert!(
        !out.stdout.contains("removed"),
        "gc removed something of a healthy cluster: {}",
        out.describe()
    );
    intact("after gc");
    // nothing of the attack ran as a script anywhere: the context is mcc's
    let logs = mcc(["logs", c.n(), "node02"]).run().ok();
    assert!(
        logs.stdout.contains("hello from node02"),
        "{}",
        logs.describe()
    );
}

/// `--add-host` entries never become members, however they are named.
#[test]
fn add_host_makes_no_phantom_member() {
    let c = Cluster::new("phantom");
    let fake = format!("{}-node05:10.99.0.5", c.n());
    create(
        &c,
        &image_nodes(
            BUSYBOX,
            "1",
            &["--add-host", &fake, "--add-host", "nfs:10.99.0.100"],
        ),
    );
    let names =
        |view: &serde_json::Value| -> Vec<String> { node_table(view).into_keys().collect() };
    assert_eq!(names(&inspect(&c)), ["frontend", "node01"]);
    let out = mcc(["addnode", c.n()]).run().ok();
    assert!(out.stdout.contains("node02"), "{}", out.describe());
    assert_eq!(names(&inspect(&c)), ["frontend", "node01", "node02"]);
    for (node, hosts) in hosts_files(&c, 3, "after addnode") {
        assert!(hosts.contains("10.99.0.100\tnfs"), "{node}: {hosts}");
        assert!(
            hosts.contains(&format!("{}-node05", c.n())),
            "{node}: {hosts}"
        );
    }
    mcc(["delnode", c.n(), "node02"]).run().ok();
    assert_eq!(names(&inspect(&c)), ["frontend", "node01"]);
}

/// Readers of /etc/hosts see the old file or the new one while mcc
/// rewrites it, never an empty or a cut one.
#[test]
fn hosts_rewrites_are_never_seen_half_done() {
    let c = Cluster::new("hostsread");
    create(&c, &image_nodes(BUSYBOX, "1", &[]));
    // a reader on node01 for as long as the test changes members
    let reader = "n=0; while [ ! -e $MCC_SHARED/stop ]; do \
                    h=$(cat /etc/hosts); n=$((n+1)); \
                    case \"$h\" in \
                      '# Written by mcc'*frontend*node01*) ;; \
                      *) printf '%s\\n----\\n' \"$h\" >> $MCC_SHARED/bad ;; \
                    esac; \
                  done; echo $n > $MCC_SHARED/reads";
    let run = mcc(["exec", c.n(), "--on", "node01", "--", "sh", "-c", reader]).spawn();
    for _ in 0..4 {
        mcc(["addnode", c.n(), "--count", "2"]).run().ok();
        mcc(["delnode", c.n(), "--count", "2"]).run().ok();
    }
    sh(&c, "frontend", "touch $MCC_SHARED/stop").ok();
    let out = run.wait(TIMEOUT);
    assert!(run_ok(&out), "{}", out.describe());
    let result = sh(
        &c,
        "frontend",
        "cat $MCC_SHARED/reads; cat $MCC_SHARED/bad 2>/dev/null; true",
    )
    .ok();
    let text = per_node(&result).remove("frontend").unwrap_or_default();
    let mut lines = text.lines();
    let reads: u64 = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    let bad: Vec<&str> = lines.collect();
    assert!(reads > 100, "the reader read only {reads} times");
    assert!(
        bad.is_empty(),
        "{} reads saw a half-written hosts file:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

fn run_ok(out: &Out) -> bool {
    out.status.success()
}
