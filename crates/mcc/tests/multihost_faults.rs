//! A host's link cut during a cluster's life (issue 17, item 6;
//! `scripts/hosts cut`, then `mend`), on three engines of one swarm. While
//! it is cut, the nodes on it cannot be reached from the others; the swarm's
//! managers (the two that keep a quorum) lose it, and `mcc host list` says
//! so (`down`, exit 1); a node that would go on it is refused at once,
//! naming the hosts it can go on, and one added elsewhere is reached from
//! the other hosts. Once the link is mended and the managers have the host
//! back, the overlay heals: the cut host's node reaches by name the nodes
//! that were there and the one added during the cut, and a node can be
//! added on it again.

mod common;

use std::collections::BTreeMap;

use common::*;

/// `mcc host list --output json` as machine 1 sees it: each host's swarm
/// word, and the exit code.
fn swarm_words(s: &Span, hosts: &Hosts) -> (BTreeMap<String, String>, i32) {
    let out = s
        .from(hosts, 1, &["host", "list", "--output", "json"])
        .run();
    let v: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.describe()));
    let words = v
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap().to_string(),
                h["swarm"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (words, out.code())
}

/// `ping -c 1` from `on` to each of `to` (by name): whether all answered.
fn pings(s: &Span, hosts: &Hosts, c: &Cluster, on: &str, to: &[&str]) -> Out {
    let script: Vec<String> = to.iter().map(|t| format!("ping -c 1 -W 2 {t}")).collect();
    s.from(
        hosts,
        1,
        &[
            "exec",
            c.n(),
            "--on",
            on,
            "--",
            "sh",
            "-c",
            &script.join(" && "),
        ],
    )
    .run()
}

#[test]
fn a_cut_host_is_down_for_the_others_then_heals() {
    let hosts = Hosts::up("mcclk", 3, &[BUSYBOX]);
    let s = Span::new("cut", &hosts);
    let c = Cluster::new("lkcut");
    let subnet = test_subnet(219);
    let shared = s.shared();
    // front-end on h1, node01 on h2, node02 on h3
    s.from(
        &hosts,
        1,
        &[
            "create",
            "--name",
            c.n(),
            "--image",
            BUSYBOX,
            "--nodes",
            "2",
            "--subnet",
            &subnet,
            "--hosts",
            "h1,h2,h3",
            "--shared-from",
            &shared,
        ],
    )
    .run()
    .ok();
    pings(&s, &hosts, &c, "node01", &["node02", "frontend"]).ok();

    hosts.cut(3);
    // the link is down: node02 cannot be reached from the other hosts
    let out = pings(&s, &hosts, &c, "node01", &["node02"]).code_is(1);
    assert!(
        out.stdout.contains("0 packets received"),
        "{}",
        out.describe()
    );
    // the managers that keep the quorum lose h3 within their heartbeat
    wait_until(TIMEOUT, "the swarm to see h3 down", || {
        swarm_words(&s, &hosts).0["h3"] == "down"
    });
    let (words, code) = swarm_words(&s, &hosts);
    assert_eq!(code, 1, "host list says all is not well");
    assert!(words["h1"] != "down" && words["h2"] != "down", "{words:?}");
    let out = s.from(&hosts, 1, &["host", "list"]).run();
    assert!(
        out.stderr.contains("h3: the swarm's managers have lost it"),
        "{}",
        out.describe()
    );

    // a node for h3 is refused at once, naming where it can go; nothing made
    let out = s
        .from(&hosts, 1, &["addnode", c.n(), "--host", "h3"])
        .run()
        .code_is(1);
    assert!(
        out.stderr.contains("host h3, which the swarm has lost") && out.stderr.contains("(h1, h2)"),
        "{}",
        out.describe()
    );
    // round-robin puts node03 on h1: made, and reached from h2's node
    s.from(&hosts, 1, &["addnode", c.n()]).run().ok();
    let placed: Vec<(String, String)> = span_nodes(&s, &hosts, c.n());
    assert_eq!(placed.len(), 4, "{placed:?}");
    assert_eq!(
        hosts
            .docker_ok(
                1,
                &["ps", "--filter", &format!("name={}-node03", c.n()), "-q"]
            )
            .lines()
            .count(),
        1
    );
    pings(&s, &hosts, &c, "node01", &["node03"]).ok();

    hosts.mend(3);
    wait_until(TIMEOUT, "the swarm to have h3 back", || {
        matches!(
            swarm_words(&s, &hosts).0["h3"].as_str(),
            "manager" | "leader"
        )
    });
    // The overlay's peers learn node03's place by gossip once the link is
    // back: wait for that, then every name and path across must work.
    wait_until(TIMEOUT, "node02 to reach node03", || {
        pings(&s, &hosts, &c, "node02", &["node03"]).code() == 0
    });
    pings(&s, &hosts, &c, "node02", &["node03", "node01", "frontend"]).ok();
    pings(&s, &hosts, &c, "node01", &["node02"]).ok();
    let out = s
        .from(
            &hosts,
            1,
            &["exec", c.n(), "--on", "node02", "--", "cat", "/etc/hosts"],
        )
        .run()
        .ok();
    let ip3 = static_ip(&subnet, 3);
    assert!(
        out.stdout.contains(&format!("{ip3}\tnode03")),
        "{}",
        out.describe()
    );
    // and h3 takes a node again: node04 there, reached from h1's node03
    s.from(&hosts, 1, &["addnode", c.n(), "--host", "h3"])
        .run()
        .ok();
    assert_eq!(
        hosts
            .docker_ok(
                3,
                &["ps", "--filter", &format!("name={}-node04", c.n()), "-q"]
            )
            .lines()
            .count(),
        1
    );
    pings(&s, &hosts, &c, "node03", &["node04"]).ok();

    s.from(&hosts, 2, &["delete", c.n()]).run().ok();
    for i in 1..=3 {
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
    assert_eq!(configs(&hosts, 1, "mcc-"), [] as [String; 0]);
    drop(s);
    hosts.down();
}
