//! Addressing: static and fixed node addresses, gateway, domain, DNS
//! options, extra hosts entries, the cluster file's equivalents, macvlan
//! networks, and the bad input that must be refused before anything is made.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use common::*;

/// `node -> address` from inspect, every node running.
#[track_caller]
fn inspected_ips(c: &Cluster) -> BTreeMap<String, String> {
    let view = inspect(c);
    node_table(&view)
        .into_iter()
        .map(|(node, (ip, state))| {
            assert_eq!(state, "running", "{node} is not running: {view:#}");
            (node, ip)
        })
        .collect()
}

/// Every node has exactly the address `want` gives it: in inspect, on the
/// engine, and inside the node (`hostname -i`, eth0).
#[track_caller]
fn assert_addresses(c: &Cluster, want: &BTreeMap<&str, Ipv4Addr>, when: &str) {
    let want_text: BTreeMap<String, String> = want
        .iter()
        .map(|(n, ip)| (n.to_string(), ip.to_string()))
        .collect();
    assert_eq!(inspected_ips(c), want_text, "{when}: inspect's addresses");
    let on_engine: BTreeMap<String, Ipv4Addr> = want
        .iter()
        .map(|(n, ip)| (format!("{}-{n}", c.n()), *ip))
        .collect();
    assert_eq!(
        engine_addresses(c.n()),
        on_engine,
        "{when}: the engine's addresses"
    );
    let inside = addresses_inside(c);
    let want_inside: BTreeMap<String, String> = want
        .iter()
        .map(|(n, ip)| (n.to_string(), format!("hostname-i {ip}\naddr {ip}\n")))
        .collect();
    assert_eq!(inside, want_inside, "{when}: addresses inside the nodes");
}

/// Every node in `from` pings every name of `ip_of` and reaches it at that
/// address.
#[track_caller]
fn assert_all_reach(c: &Cluster, from: &[&str], ip_of: &BTreeMap<String, Ipv4Addr>, when: &str) {
    assert_reach(c, &from.join(","), from, ip_of, when);
}

/// The search domains of each node's /etc/resolv.conf.
fn search_domains(c: &Cluster) -> BTreeMap<String, Vec<String>> {
    let out = sh(c, "all", "cat /etc/resolv.conf").ok();
    per_node(&out)
        .into_iter()
        .map(|(node, text)| {
            let search: Vec<String> = text
                .lines()
                .filter_map(|l| l.trim().strip_prefix("search "))
                .flat_map(|l| l.split_whitespace().map(str::to_string))
                .collect();
            (node, search)
        })
        .collect()
}

/// 1+2 busybox, node02 on a fixed address: every address is the same
/// after `mcc stop` + `mcc start`, and after `mcc recreate` of the
/// front-end and node02; the recreated nodes are reachable again.
#[test]
fn static_addresses_survive_stop_start_and_recreate() {
    let c = Cluster::new("ipkeep");
    let subnet = test_subnet(220);
    let fixed = subnet_host(&subnet, 40);
    create(
        &c,
        &on_subnet(BUSYBOX, "2", &subnet, &["--ip", &format!("node02={fixed}")]),
    );
    let want = BTreeMap::from([
        ("frontend", static_ip(&subnet, 0)),
        ("node01", static_ip(&subnet, 1)),
        ("node02", fixed),
    ]);
    assert_addresses(&c, &want, "after create");
    let hosts = |when: &str| hosts_files(&c, 3, when);
    let hosts_before = hosts("after create");

    mcc(["stop", c.n()]).run().ok();
    mcc(["start", c.n()]).run().ok();
    assert_addresses(&c, &want, "after stop and start");

    let out = mcc(["recreate", c.n(), "frontend", "node02"]).run().ok();
    assert!(
        out.stdout.contains(&fixed.to_string()),
        "recreate does not show node02's address: {}",
        out.describe()
    );
    assert_addresses(&c, &want, "after recreate of frontend and node02");
    assert_eq!(hosts("after recreate"), hosts_before, "/etc/hosts changed");
    let ip_of: BTreeMap<String, Ipv4Addr> =
        want.iter().map(|(n, ip)| (n.to_string(), *ip)).collect();
    assert_all_reach(
        &c,
        &["frontend", "node01", "node02"],
        &ip_of,
        "after recreate",
    );
}

/// `--domain`, `--add-host`, `--dns`, `--dns-search`, `--ip` and
/// `--gateway` all take effect, on the nodes made at create and on one
/// added later.
#[test]
fn domain_hosts_dns_fixed_ip_and_gateway_take_effect() {
    let c = Cluster::new("ipopts");
    let subnet = test_subnet(221);
    let gateway = subnet_host(&subnet, 100);
    let node01 = subnet_host(&subnet, 50);
    let nfs = subnet_host(&subnet, 9);
    let dns = subnet_host(&subnet, 53);
    let licence = subnet_host(&subnet, 77);
    let domain = "hpc.test";
    create(
        &c,
        &on_subnet(
            BUSYBOX,
            "2",
            &subnet,
            &[
                "--gateway",
                &gateway.to_string(),
                "--ip",
                &format!("node01={node01}"),
                "--domain",
                domain,
                "--dns",
                &dns.to_string(),
                "--dns-search",
                "search.test",
                "--dns-search",
                "second.test",
                "--add-host",
                &format!("nfs:{nfs}"),
                "--add-host",
                &format!("licence.example.test:{licence}"),
            ],
        ),
    );
    let mut want = BTreeMap::from([
        ("frontend", static_ip(&subnet, 0)),
        ("node01", node01),
        ("node02", static_ip(&subnet, 2)),
    ]);
    assert_addresses(&c, &want, "after create");

    let check = |want: &BTreeMap<&str, Ipv4Addr>, when: &str| {
        // hostname and fully qualified name
        let out = sh(&c, "all", "echo \"$(hostname) $(hostname -f)\"").ok();
        let nodes: Vec<&str> = want.keys().copied().collect();
        assert_each_printed(
            &out,
            &nodes,
            &format!("{when}: hostname and hostname -f: "),
            |node| format!("{node} {node}.{domain}\n"),
        );
        // the shared hosts file: `IP node.D node cluster-node`, then the extras
        let out = mcc(["exec", c.n(), "--", "cat", "/etc/hosts"]).run().ok();
        let per = per_node(&out);
        assert_eq!(
            per.keys().map(String::as_str).collect::<Vec<_>>(),
            want.keys().copied().collect::<Vec<_>>(),
            "{when}: {}",
            out.describe()
        );
        let mut expected: BTreeMap<String, (String, Vec<String>)> = want
            .iter()
            .map(|(node, ip)| {
                let fqdn = format!("{node}.{domain}");
                (
                    fqdn.clone(),
                    (
                        ip.to_string(),
                        vec![fqdn, node.to_string(), format!("{}-{node}", c.n())],
                    ),
                )
            })
            .collect();
        expected.insert("nfs".into(), (nfs.to_string(), vec!["nfs".to_string()]));
        expected.insert(
            "licence.example.test".into(),
            (
                licence.to_string(),
                vec!["licence.example.test".to_string()],
            ),
        );
        for (node, text) in &per {
            assert_eq!(
                hosts_entries(text),
                expected,
                "{when}: /etc/hosts of {node}:\n{text}"
            );
        }
        // search domains
        for (node, search) in search_domains(&c) {
            let given: Vec<&str> = search
                .iter()
                .map(String::as_str)
                .filter(|d| *d == "search.test" || *d == "second.test")
                .collect();
            assert_eq!(
                given,
                vec!["search.test", "second.test"],
                "{when}: search domains of {node}: {search:?}"
            );
        }
        // the default route goes through the chosen gateway
        let out = sh(&c, "all", "ip route | grep '^default '").ok();
        let per = per_node(&out);
        for node in want.keys() {
            let route = per.get(*node).map(String::as_str).unwrap_or("");
            assert!(
                route.starts_with(&format!("default via {gateway} ")),
                "{when}: default route of {node} is not via {gateway}: {}",
                out.describe()
            );
        }
        // the DNS server and domain the engine gave each container
        for node in want.keys() {
            let info = engine_get(&format!("/containers/{}-{node}/json", c.n()));
            assert_eq!(
                info["HostConfig"]["Dns"],
                serde_json::json!([dns.to_string()]),
                "{when}: DNS servers of {node}"
            );
            assert_eq!(
                info["Config"]["Domainname"], domain,
                "{when}: domain of {node}"
            );
        }
        // short and fully qualified names resolve to the fixed address
        let ip_of: BTreeMap<String, Ipv4Addr> = [
            ("node01".to_string(), node01),
            (format!("node01.{domain}"), node01),
        ]
        .into();
        let from: Vec<&str> = want.keys().copied().filter(|n| *n != "node01").collect();
        assert_all_reach(&c, &from, &ip_of, when);
    };
    check(&want, "after create");

    let net = engine_get(&format!("/networks/{}-net", c.n()));
    assert_eq!(
        net["IPAM"]["Config"][0]["Gateway"],
        gateway.to_string(),
        "the network's gateway: {net:#}"
    );
    assert_eq!(net["IPAM"]["Config"][0]["Subnet"], subnet.as_str());

    let out = mcc(["addnode", c.n()]).run().ok();
    assert!(out.stdout.contains("node03"), "{}", out.describe());
    want.insert("node03", static_ip(&subnet, 3));
    assert_addresses(&c, &want, "after addnode");
    check(&want, "after addnode");
}

/// The cluster file's `gateway:`, `per-node:`, `domain:`, `dns:`,
/// `dns-search:` and `add-hosts:` do what the flags do; an `--ip` flag
/// adds to the file's `per-node:`.
#[test]
fn cluster_file_addressing_fields_take_effect() {
    let c = Cluster::new("ipyaml");
    let dir = TempDir::new("ipyaml");
    let subnet = test_subnet(222);
    let gateway = subnet_host(&subnet, 100);
    let node01 = subnet_host(&subnet, 50);
    let node02 = subnet_host(&subnet, 60);
    let nfs = subnet_host(&subnet, 9);
    let dns = subnet_host(&subnet, 53);
    let file = dir.write(
        "cluster.yaml",
        &format!(
            "name: {name}\n\
             image: {BUSYBOX}\n\
             nodes: 2\n\
             subnet: {subnet}\n\
             gateway: {gateway}\n\
             domain: yaml.test\n\
             dns: [{dns}]\n\
             dns-search: [a.test, b.test]\n\
             add-hosts: ['nfs:{nfs}']\n\
             per-node:\n  node02: {{ip: {node02}}}\n",
            name = c.n()
        ),
        0o644,
    );
    let out = mcc([
        "create",
        "-f",
        &file.display().to_string(),
        "--ip",
        &format!("node01={node01}"),
    ])
    .run()
    .ok();
    let want = BTreeMap::from([
        ("frontend", static_ip(&subnet, 0)),
        ("node01", node01),
        ("node02", node02),
    ]);
    assert!(
        out.stdout.contains(&node02.to_string()),
        "{}",
        out.describe()
    );
    assert_addresses(&c, &want, "after create from a file");

    let out = sh(
        &c,
        "all",
        "echo \"fqdn $(hostname -f)\"; ip route | grep '^default '; grep -w nfs /etc/hosts",
    )
    .ok();
    let per = per_node(&out);
    for node in want.keys() {
        let text = per.get(*node).map(String::as_str).unwrap_or("");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{node}: {}", out.describe());
        assert_eq!(
            lines[0],
            format!("fqdn {node}.yaml.test"),
            "{}",
            out.describe()
        );
        assert!(
            lines[1].starts_with(&format!("default via {gateway} ")),
            "{}",
            out.describe()
        );
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>(),
            vec![nfs.to_string().as_str(), "nfs"],
            "{}",
            out.describe()
        );
    }
    for (node, search) in search_domains(&c) {
        let given: Vec<&str> = search
            .iter()
            .map(String::as_str)
            .filter(|d| ["a.test", "b.test"].contains(d))
            .collect();
        assert_eq!(given, vec!["a.test", "b.test"], "{node}: {search:?}");
    }
    let info = engine_get(&format!("/containers/{}-node02/json", c.n()));
    assert_eq!(
        info["HostConfig"]["Dns"],
        serde_json::json!([dns.to_string()])
    );
}

/// Bad addresses, names and options: exit 2, a message naming the bad
/// value, and nothing labelled with the cluster.
#[test]
fn bad_addressing_is_refused_and_makes_nothing() {
    let c = Cluster::new("ipbad");
    let n = c.n();
    let dir = TempDir::new("ipbad");
    let subnet = test_subnet(223);
    let at = |k: u32| subnet_host(&subnet, k).to_string();
    let no_such_iface = format!("nosuch{}", std::process::id() % 100_000);
    assert!(
        !std::path::Path::new("/sys/class/net")
            .join(&no_such_iface)
            .exists(),
        "test bug: interface {no_such_iface} exists"
    );
    let unknown_field = dir.write(
        "unknown.yaml",
        &format!(
            "name: {n}\nimage: {BUSYBOX}\nsubnet: {subnet}\n\
             per-node: {{node01: {{address: {}}}}}\n",
            at(10)
        ),
        0o644,
    );
    let unknown_field = unknown_field.display().to_string();
    let yaml_gateway = dir.write(
        "gateway.yaml",
        &format!("name: {n}\nimage: {BUSYBOX}\nsubnet: {subnet}\ngateway: 10.9.9.1\n"),
        0o644,
    );
    let yaml_gateway = yaml_gateway.display().to_string();

    let base = |extra: &[&str]| create_args(n, BUSYBOX, extra);
    let s = subnet.as_str();
    let strings = |v: &[&str]| -> Vec<String> { v.iter().map(|s| s.to_string()).collect() };
    let cases: Vec<(Vec<String>, Vec<String>)> = vec![
        // an address outside the subnet
        (
            base(&["--subnet", s, "--ip", "node01=10.9.9.9"]),
            strings(&["10.9.9.9", s]),
        ),
        // node01 fixed on node02's default address
        (
            base(&[
                "--subnet",
                s,
                "--nodes",
                "2",
                "--ip",
                &format!("node01={}", at(4)),
            ]),
            strings(&["node01", "node02", &at(4)]),
        ),
        // an address equal to the chosen gateway, and to the default one
        (
            base(&[
                "--subnet",
                s,
                "--nodes",
                "1",
                "--gateway",
                &at(100),
                "--ip",
                &format!("node01={}", at(100)),
            ]),
            strings(&[&at(100), "gateway"]),
        ),
        (
            base(&[
                "--subnet",
                s,
                "--nodes",
                "1",
                "--ip",
                &format!("node01={}", at(1)),
            ]),
            strings(&[&at(1), "gateway"]),
        ),
        // the gateway on the front-end's default address
        (
            base(&["--subnet", s, "--gateway", &at(2)]),
            strings(&["frontend", &at(2)]),
        ),
        // the network's own, the broadcast and the engine's dynamic addresses
        (
            base(&[
                "--subnet",
                s,
                "--nodes",
                "1",
                "--ip",
                &format!("node01={}", at(0)),
            ]),
            strings(&[&at(0)]),
        ),
        (
            base(&[
                "--subnet",
                s,
                "--nodes",
                "1",
                "--ip",
                &format!("node01={}", at(255)),
            ]),
            strings(&[&at(255)]),
        ),
        (
            base(&[
                "--subnet",
                s,
                "--nodes",
                "1",
                "--ip",
                &format!("node01={}", at(200)),
            ]),
            strings(&[&at(200)]),
        ),
        // a gateway outside the subnet
        (
            base(&["--subnet", s, "--gateway", "10.9.9.1"]),
            strings(&["10.9.9.1", s]),
        ),
        // addresses without a subnet
        (
            base(&["--ip", &format!("node01={}", at(10))]),
            strings(&["--subnet"]),
        ),
        (base(&["--gateway", &at(1)]), strings(&["--subnet"])),
        // malformed --ip
        (
            base(&["--subnet", s, "--ip", "node01"]),
            strings(&["node01"]),
        ),
        (
            base(&["--subnet", s, "--ip", &format!("worker1={}", at(10))]),
            strings(&["worker1"]),
        ),
        (
            base(&["--subnet", s, "--ip", "node01=10.0.0.300"]),
            strings(&["10.0.0.300"]),
        ),
        // network drivers and parents
        (
            base(&["--network-driver", "bridge", "--parent", "eth0"]),
            strings(&["--parent", "macvlan"]),
        ),
        (
            base(&["--parent", "eth0"]),
            strings(&["--parent", "macvlan"]),
        ),
        (
            base(&[
                "--network-driver",
                "macvlan",
                "--parent",
                &no_such_iface,
                "--subnet",
                s,
            ]),
            strings(&[&no_such_iface]),
        ),
        (
            base(&["--network-driver", "macvlan", "--parent", "bad/name"]),
            strings(&["bad/name"]),
        ),
        (
            base(&["--network-driver", "overlay"]),
            strings(&["overlay"]),
        ),
        // names and DNS
        (base(&["--add-host", "nfs"]), strings(&["nfs"])),
        (base(&["--add-host", "nfs:10.0.0"]), strings(&["10.0.0"])),
        (
            base(&["--add-host", "bad_name:10.0.0.9"]),
            strings(&["bad_name"]),
        ),
        (
            base(&["--domain", "bad..domain"]),
            strings(&["bad..domain"]),
        ),
        (
            base(&["--dns-search", "bad_search.test"]),
            strings(&["bad_search.test"]),
        ),
        (base(&["--dns", "not-an-ip"]), strings(&["not-an-ip"])),
        // persisted paths
        (
            base(&["--persist", "relative/path"]),
            strings(&["relative/path"]),
        ),
        (base(&["--persist", "/proc"]), strings(&["/proc"])),
        (
            base(&["--persist", "/data", "--persist", "/data/"]),
            strings(&["/data"]),
        ),
        (
            base(&["--persist", "/home", "--device", "home"]),
            strings(&["/home"]),
        ),
        // the cluster file
        (
            strings(&["create", "-f", &unknown_field]),
            strings(&["address", "unknown field"]),
        ),
        (
            strings(&["create", "-f", &yaml_gateway]),
            strings(&["10.9.9.1"]),
        ),
    ];
    for (args, names) in &cases {
        refused(n, args, names);
    }
}

/// A subnet overlapping an existing cluster's network is refused before
/// anything is made, and the existing cluster is untouched.
#[test]
fn overlapping_subnet_is_refused_before_anything_is_made() {
    let first = Cluster::new("ipover1");
    let subnet = test_subnet(224);
    create(&first, &on_subnet(BUSYBOX, "1", &subnet, &[]));
    let second = Cluster::new("ipover2");
    let half = format!("{}/25", subnet_host(&subnet, 128));
    let args = create_args(
        second.n(),
        BUSYBOX,
        &[
            "--nodes",
            "1",
            "--subnet",
            &half,
            "--ip",
            &format!("node01={}", subnet_host(&subnet, 140)),
        ],
    );
    refused(second.n(), &args, &[half.clone(), subnet.clone()]);
    let view = inspect(&first);
    assert_eq!(view["status"], "running", "{view:#}");
    assert_eq!(view["subnet"], subnet.as_str());
    assert_eq!(
        engine_addresses(first.n()),
        BTreeMap::from([
            (format!("{}-frontend", first.n()), static_ip(&subnet, 0)),
            (format!("{}-node01", first.n()), static_ip(&subnet, 1)),
        ])
    );
}

/// A veth pair made for one test, deleted when dropped.
struct Veth {
    name: String,
    peer: String,
}

impl Veth {
    fn new() -> Veth {
        let base = format!("mv{}", std::process::id() % 10_000);
        let v = Veth {
            name: format!("{base}a"),
            peer: format!("{base}b"),
        };
        assert!(v.name.len() <= 15);
        let _ = ip(&["link", "del", &v.name]);
        let ok = ip(&[
            "link", "add", &v.name, "type", "veth", "peer", "name", &v.peer,
        ]) && ip(&["link", "set", &v.name, "up"])
            && ip(&["link", "set", &v.peer, "up"]);
        assert!(ok, "cannot make the veth pair {}/{}", v.name, v.peer);
        v
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        if !ip(&["link", "del", &self.name]) {
            eprintln!("cleanup: could not delete veth {}", self.name);
        }
    }
}

fn ip(args: &[&str]) -> bool {
    match std::process::Command::new("ip").args(args).output() {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            eprintln!(
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&o.stderr).trim()
            );
            false
        }
        Err(e) => {
            eprintln!("cannot run ip {}: {e}", args.join(" "));
            false
        }
    }
}

/// 1+2 busybox on a macvlan network whose parent is one end of a veth
/// pair: the network's driver and parent are what was asked, every node
/// reaches every other by name, also after stop/start and a recreate (on
/// the same addresses), and `mcc delete` removes it all.
#[test]
fn macvlan_nodes_reach_each_other_by_name() {
    let veth = Veth::new();
    let c = Cluster::new("macvlan");
    let subnet = test_subnet(225);
    create(
        &c,
        &[
            "--image",
            BUSYBOX,
            "--nodes",
            "2",
            "--network-driver",
            "macvlan",
            "--parent",
            &veth.name,
            "--subnet",
            &subnet,
        ],
    );
    let net = engine_get(&format!("/networks/{}-net", c.n()));
    assert_eq!(net["Driver"], "macvlan", "{net:#}");
    assert_eq!(net["Options"]["parent"], veth.name.as_str(), "{net:#}");
    assert_eq!(
        net["IPAM"]["Config"][0]["Subnet"],
        subnet.as_str(),
        "{net:#}"
    );

    let want = BTreeMap::from([
        ("frontend", static_ip(&subnet, 0)),
        ("node01", static_ip(&subnet, 1)),
        ("node02", static_ip(&subnet, 2)),
    ]);
    assert_addresses(&c, &want, "macvlan");
    let mut ip_of = BTreeMap::new();
    for (node, ip) in &want {
        ip_of.insert(node.to_string(), *ip);
        ip_of.insert(format!("{}-{node}", c.n()), *ip);
    }
    assert_all_reach(&c, &["frontend", "node01", "node02"], &ip_of, "macvlan");

    mcc(["stop", c.n()]).run().ok();
    mcc(["start", c.n()]).run().ok();
    assert_addresses(&c, &want, "macvlan, after stop and start");
    mcc(["recreate", c.n(), "node01"]).run().ok();
    assert_addresses(&c, &want, "macvlan, after recreate of node01");
    assert_all_reach(
        &c,
        &["frontend", "node01", "node02"],
        &ip_of,
        "macvlan, after stop, start and recreate",
    );

    let out = mcc(["delete", c.n()]).run().ok();
    assert!(out.stdout.contains("1 network,"), "{}", out.describe());
    assert_nothing_labelled(c.n(), "after mcc delete of a macvlan cluster");
}

/// The addresses of a cluster's nodes are distinct, per inspect and per
/// the engine.
#[track_caller]
fn assert_distinct_addresses(c: &Cluster, when: &str) {
    let ips = inspected_ips(c);
    let distinct: BTreeSet<&String> = ips.values().collect();
    assert_eq!(
        distinct.len(),
        ips.len(),
        "{when}: shared addresses: {ips:?}"
    );
    let engine = engine_addresses(c.n());
    assert_eq!(engine.len(), ips.len(), "{when}: {engine:?}");
    let distinct: BTreeSet<&Ipv4Addr> = engine.values().collect();
    assert_eq!(distinct.len(), engine.len(), "{when}: {engine:?}");
}

/// node01 fixed on node02's default address is fine at create with one
/// worker; the cluster must still be able to grow: `addnode` adds a
/// worker on an address of its own (today it refuses forever, telling the
/// user to give one of the nodes another address, which addnode cannot).
#[test]
fn addnode_grows_past_a_fixed_address_on_the_next_default_one() {
    let c = Cluster::new("ipgrow");
    let subnet = test_subnet(226);
    let taken = static_ip(&subnet, 2); // node02's default
    create(
        &c,
        &on_subnet(BUSYBOX, "1", &subnet, &["--ip", &format!("node01={taken}")]),
    );
    assert_eq!(inspected_ips(&c)["node01"], taken.to_string());
    let out = mcc(["addnode", c.n(), "--output", "json"]).run();
    assert!(
        out.status.success(),
        "addnode cannot grow a cluster whose node01 has node02's default address: {}",
        out.describe()
    );
    let added: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("addnode JSON: {e}: {}", out.describe()));
    let added = added[0]["name"]
        .as_str()
        .expect("an added node")
        .to_string();
    let ips = inspected_ips(&c);
    assert_eq!(ips.len(), 3, "{ips:?}");
    assert_distinct_addresses(&c, "after addnode");
    let ip_of: BTreeMap<String, Ipv4Addr> = ips
        .iter()
        .map(|(n, ip)| (n.clone(), ip.parse().expect("an address")))
        .collect();
    assert_all_reach(&c, &["node01", &added], &ip_of, "after addnode");
}

/// An address for a node the create does not make (`--ip node03=…` with
/// one worker) is refused before anything is made: addnode could not keep
/// such a promise, and it is most often a typo.
#[test]
fn a_fixed_address_of_a_node_not_made_is_refused() {
    let c = Cluster::new("ipgrow3");
    let subnet = test_subnet(227);
    let node01 = static_ip(&subnet, 1);
    let args = create_args(
        c.n(),
        BUSYBOX,
        &[
            "--nodes",
            "1",
            "--subnet",
            &subnet,
            "--ip",
            &format!("node03={node01}"),
        ],
    );
    refused(c.n(), &args, &["--ip node03=", "one worker, node01"]);
}
