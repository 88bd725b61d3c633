//! The locks of a cluster over several hosts hold between mcc on different
//! machines (issue 17, item 3): two mcc that share no lock file (each its
//! own `MCC_LOCK_DIR`, as on two machines), pointed at different engines of
//! one swarm (`scripts/hosts`), serialize through the swarm lock
//! `mcc-l-cluster-NAME` (a swarm config with a lease): two addnodes at once
//! both succeed with distinct nodes and addresses that every node's hosts
//! file lists; an mcc SIGKILLed while holding the lock blocks the others
//! until its lease ends, not longer and not less, and they say whom they
//! wait for; with no manager of the swarm answering, a lock is an error
//! that names every host.

mod common;

use common::*;

/// Every node's hosts file lists every node of `want` at its address.
#[track_caller]
fn every_hosts_file_lists(s: &Span, hosts: &Hosts, cluster: &str, want: &[(String, String)]) {
    let out = s
        .from(hosts, 2, &["exec", cluster, "--", "cat", "/etc/hosts"])
        .run()
        .ok();
    for (node, _) in want {
        let file: Vec<String> = out
            .node_lines()
            .into_iter()
            .filter(|(n, _)| n == node)
            .map(|(_, l)| l)
            .collect();
        for (name, ip) in want {
            assert!(
                file.iter()
                    .any(|l| l.starts_with(&format!("{ip}\t{name} "))),
                "{node}'s hosts file lacks {ip} {name}: {}",
                out.describe()
            );
        }
    }
}

fn create(s: &Span, hosts: &Hosts, c: &Cluster, subnet: &str, extra: &[&str]) {
    let shared = s.shared();
    let mut args = vec![
        "create",
        "--name",
        c.n(),
        "--image",
        BUSYBOX,
        "--nodes",
        "1",
        "--subnet",
        subnet,
        "--hosts",
        "h1,h2",
        "--shared-from",
        &shared,
    ];
    args.extend_from_slice(extra);
    s.from(hosts, 1, &args).run().ok();
}

/// Deletes `c` and checks that no engine keeps a container of it and the
/// swarm keeps neither its claim nor its lock.
fn delete(s: &Span, hosts: &Hosts, c: &Cluster) {
    s.from(hosts, 2, &["delete", c.n()]).run().ok();
    for i in 1..=hosts.count {
        let left = hosts.docker_ok(
            i,
            &[
                "ps",
                "-aq",
                "--filter",
                &format!("label=mcc.cluster={}", c.n()),
            ],
        );
        assert!(left.is_empty(), "host {i} keeps containers of {}", c.n());
    }
    assert_eq!(
        configs(hosts, 1, &format!("mcc-c-{}", c.n())),
        [] as [String; 0]
    );
    assert_eq!(
        configs(hosts, 1, &format!("mcc-l-cluster-{}", c.n())),
        [] as [String; 0]
    );
}

#[test]
fn two_mcc_on_two_machines_add_nodes_to_one_cluster_at_once() {
    let hosts = Hosts::up("mcclk", 2, &[BUSYBOX]);
    let s = Span::new("race", &hosts);
    let c = Cluster::new("lkrace");
    let subnet = test_subnet(217);
    create(&s, &hosts, &c, &subnet, &[]);

    let runs: Vec<Running> = (1..=2)
        .map(|i| s.from(&hosts, i, &["addnode", c.n()]).spawn())
        .collect();
    let outs: Vec<Out> = runs.into_iter().map(|r| r.wait(TIMEOUT)).collect();
    for o in &outs {
        assert_eq!(o.code(), 0, "both addnodes succeed:\n{}", o.describe());
    }
    let all = span_nodes(&s, &hosts, c.n());
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["frontend", "node01", "node02", "node03"], "{all:?}");
    let mut ips: Vec<&str> = all.iter().map(|(_, ip)| ip.as_str()).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 4, "distinct addresses: {all:?}");
    every_hosts_file_lists(&s, &hosts, c.n(), &all);
    // the lock is gone with its holders
    assert_eq!(configs(&hosts, 2, "mcc-l-"), [] as [String; 0]);

    delete(&s, &hosts, &c);
    drop(s);
    hosts.down();
}

/// On the first on-change run that finds `$MCC_SHARED/hold`, one node
/// makes `$MCC_SHARED/holding` and sleeps: the addnode that runs the hook
/// holds the cluster's lock meanwhile.
const HOLD_HOOK: &str = "#!/bin/sh\n\
    if [ -e \"$MCC_SHARED/hold\" ] && mkdir \"$MCC_SHARED/holding\" 2>/dev/null; then\n\
    \x20 sleep 600\n\
    fi\n";

#[test]
fn a_lock_holder_sigkilled_blocks_the_others_until_its_lease_ends() {
    let hosts = Hosts::up("mcclk2", 2, &[BUSYBOX]);
    let s = Span::new("kill", &hosts);
    let c = Cluster::new("lkkill");
    let ctx = context_folder("lkkill", &[("on-change/10-hold", HOLD_HOOK, 0o755)]);
    let subnet = test_subnet(218);
    create(&s, &hosts, &c, &subnet, &["--context-folder", &ctx.arg()]);
    let shared = s.shared_folder(c.n());
    std::fs::write(shared.join("hold"), "").unwrap();

    // an addnode from machine 1 stops in the hook, holding the lock
    let mut a = s.from(&hosts, 1, &["addnode", c.n()]).spawn();
    wait_until(TIMEOUT, "the hook to hold the cluster's lock", || {
        assert!(a.is_running(), "the addnode ended before its hook held");
        shared.join("holding").is_dir()
    });
    let lock = format!("mcc-l-cluster-{}", c.n());
    let label = |key: &str| {
        hosts.docker_ok(
            2,
            &[
                "config",
                "inspect",
                &lock,
                "--format",
                &format!("{{{{index .Spec.Labels \"{key}\"}}}}"),
            ],
        )
    };
    let holder = label("mcc.holder");
    assert!(
        holder.starts_with(&format!("mcc pid {} on ", a.pid())),
        "holder {holder}"
    );
    assert_eq!(
        label("mcc.lock.what"),
        format!("changing cluster '{}'", c.n())
    );

    a.child.kill().unwrap();
    a.child.wait().unwrap();
    std::fs::remove_file(shared.join("hold")).unwrap();
    // dead, it renews no more: this is the lease's end
    let until: u128 = label("mcc.lock.until").parse().unwrap();

    // gc from machine 2 while the lease lasts: the cluster is busy, left alone
    let gc = s.from(&hosts, 2, &["gc", c.n()]).run().ok();
    if now_ms() < until {
        assert!(
            gc.stdout.contains("another mcc is changing it now"),
            "{}",
            gc.describe()
        );
    }

    // from machine 2: waits for the dead holder, says so, then goes on
    let b = s.from(&hosts, 2, &["addnode", c.n()]).run();
    let ended = now_ms();
    let b = b.ok();
    let said = format!("{}{}", b.stdout, b.stderr);
    assert!(
        said.contains(&format!(
            "waiting for {holder} to finish changing cluster '{}'",
            c.n()
        )),
        "{}",
        b.describe()
    );
    assert!(said.contains("taking the lock over"), "{}", b.describe());
    assert!(
        ended > until,
        "the lock was taken before the lease's end ({until}, now {ended}): {}",
        b.describe()
    );
    let names: Vec<String> = span_nodes(&s, &hosts, c.n())
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["frontend", "node01", "node02", "node03"]);
    assert_eq!(configs(&hosts, 1, "mcc-l-"), [] as [String; 0]);

    delete(&s, &hosts, &c);

    // no quorum (host 2's link cut: one manager of two is no majority):
    // a lock is an error naming each host and why, and nothing is made
    create(&s, &hosts, &c, &subnet, &[]);
    hosts.cut(2);
    let out = s.from(&hosts, 1, &["addnode", c.n()]).run().code_is(1);
    for h in ["h1 (", "h2 ("] {
        assert!(
            out.stderr.contains("no manager of the swarm answers") && out.stderr.contains(h),
            "{}",
            out.describe()
        );
    }
    let made: usize = (1..=2)
        .map(|i| {
            hosts
                .docker_ok(
                    i,
                    &[
                        "ps",
                        "-aq",
                        "--filter",
                        &format!("label=mcc.cluster={}", c.n()),
                    ],
                )
                .lines()
                .count()
        })
        .sum();
    assert_eq!(made, 3, "front-end, node01 and the record, nothing more");
    drop(s);
    // (the engines go with their containers)
    hosts.down();
}
