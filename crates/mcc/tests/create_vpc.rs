//! `mcc create --vpc` (issue 9): a cluster made into an existing VPC. Its
//! nodes join the VPC's network at addresses no container there holds,
//! resolve each other by name and are reached by the VPC's other
//! containers; addnode and recreate keep to the VPC; delete, gc and a
//! failed create leave the VPC and its other containers alone, and `vpc
//! delete` refuses while the cluster is on it. Bad input makes nothing.

mod common;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use common::*;

fn vpc_create(made: &mut Made, cidr: &str, name: &str) -> String {
    let id = mcc(["vpc", "create", "--cidr", cidr, "--name", name])
        .run()
        .ok()
        .stdout
        .trim()
        .to_string();
    made.vpcs.push(id.clone());
    id
}

/// `mcc run --vpc` of an idle busybox: its ID.
fn run_on(made: &mut Made, vpc: &str) -> String {
    let id = mcc([
        "run", "--image", BUSYBOX, "--vpc", vpc, "--", "sleep", "600",
    ])
    .run()
    .ok()
    .stdout
    .trim()
    .to_string();
    made.containers.push(id.clone());
    id
}

/// A container of the engine's on the VPC at a fixed address, as a user
/// may attach one by hand: its name.
fn fixed_on(made: &mut Made, vpc: &str, ip: Ipv4Addr, tag: &str) -> String {
    let name = format!("it-cvpc-{tag}-{}", std::process::id());
    made.containers.push(name.clone());
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        vpc,
        "--ip",
        &ip.to_string(),
        BUSYBOX,
        "sleep",
        "600",
    ]);
    name
}

fn nth(subnet: &str, n: u32) -> Ipv4Addr {
    let net: Ipv4Addr = subnet.split_once('/').unwrap().0.parse().unwrap();
    Ipv4Addr::from(u32::from(net) + n)
}

/// A container's address on a network, as the engine has it.
fn address_on(container: &str, network: &str) -> Ipv4Addr {
    let tmpl = format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}");
    let ip = docker_ok(&["inspect", "-f", &tmpl, container]);
    ip.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{container} on {network}: '{ip}': {e}"))
}

fn vpc_listed(id: &str) -> bool {
    let out = mcc(["vpc", "list", "--output", "json"]).run().ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    v.as_array().unwrap().iter().any(|x| x["id"] == id)
}

fn running(container: &str) -> bool {
    docker_ok(&["inspect", "-f", "{{.State.Running}}", container]).trim() == "true"
}

#[test]
fn a_cluster_in_a_vpc_shares_it_with_its_containers_and_leaves_it_alone() {
    require_engine_and_images();
    let pid = std::process::id();
    let mut made = Made::default();
    let cidr = test_subnet(245);
    let vpc = vpc_create(&mut made, &cidr, &format!("it-cvpc-{pid}"));
    // the engine hands out the last quarter (mcc run's containers)…
    let range = docker_ok(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.IPRange}}{{end}}",
        &vpc,
    ]);
    assert_eq!(range.trim(), format!("{}/26", nth(&cidr, 192)));
    let run = run_on(&mut made, &vpc);
    let run_ip = address_on(&run, &vpc);
    assert!(run_ip >= nth(&cidr, 192), "{run_ip}");
    // …and containers attached by hand may hold low addresses (.2, .3)
    let fixed = [
        fixed_on(&mut made, &vpc, nth(&cidr, 2), "a"),
        fixed_on(&mut made, &vpc, nth(&cidr, 3), "b"),
    ];
    let held = [nth(&cidr, 2), nth(&cidr, 3), run_ip];

    let c = Cluster::new("cvpc");
    create(&c, &image_nodes(BUSYBOX, "2", &["--vpc", &vpc]));
    let view = inspect(&c);
    assert_eq!(view["network"], vpc.as_str(), "{view}");
    assert_eq!(view["vpc"], vpc.as_str(), "{view}");
    assert_eq!(view["subnet"], cidr.as_str(), "{view}");
    let text = mcc(["inspect", c.n()]).run().ok();
    assert!(
        text.stdout.contains(&format!("network {vpc} (VPC) {cidr}")),
        "{}",
        text.describe()
    );
    let list = mcc(["list"]).run().ok();
    assert!(
        list.stdout.contains(&format!("{cidr} ({vpc})")),
        "{}",
        list.describe()
    );
    assert!(
        labelled(c.n()).networks.is_empty(),
        "the cluster made a network of its own"
    );
    // the nodes: on the VPC, past the addresses held, one per index
    let nodes = node_table(&view);
    let ip_of = |n: &str| -> Ipv4Addr { nodes[n].0.parse().unwrap() };
    let front = ip_of("frontend");
    for (i, n) in ["frontend", "node01", "node02"].iter().enumerate() {
        let ip = ip_of(n);
        assert_eq!(u32::from(ip), u32::from(front) + i as u32, "{n}: {nodes:?}");
        assert!(!held.contains(&ip), "{n} got {ip}, held by a run container");
        assert_eq!(address_on(&format!("{}-{n}", c.n()), &vpc), ip);
    }
    assert_eq!(front, nth(&cidr, 4), "{nodes:?}");

    // names resolve between nodes; a run container reaches a node by address
    let names: BTreeMap<String, Ipv4Addr> = ["frontend", "node01", "node02"]
        .iter()
        .map(|n| (n.to_string(), ip_of(n)))
        .collect();
    assert_reach(
        &c,
        "all",
        &["frontend", "node01", "node02"],
        &names,
        "in a VPC",
    );
    for to in [ip_of("node02").to_string(), format!("{}-node02", c.n())] {
        let ping = docker(&["exec", &run, "ping", "-c1", "-W3", &to]);
        assert!(
            ping.status.success(),
            "a run container on the VPC cannot reach {to}: {}",
            String::from_utf8_lossy(&ping.stderr)
        );
    }

    // addnode: a number whose address another container holds (node03's)
    // is skipped; the new node is on the VPC at its own address
    let later_ip = nth(&cidr, 7);
    let later = fixed_on(&mut made, &vpc, later_ip, "c");
    mcc(["addnode", c.n()]).run().ok();
    let nodes = node_table(&inspect(&c));
    let added: Vec<(&String, Ipv4Addr)> = nodes
        .iter()
        .filter(|(n, _)| !["frontend", "node01", "node02"].contains(&n.as_str()))
        .map(|(n, (ip, _))| (n, ip.parse().unwrap()))
        .collect();
    assert_eq!(added.len(), 1, "{nodes:?}");
    let (name, ip) = added[0];
    let index: u32 = name.trim_start_matches("node").parse().unwrap();
    assert_eq!(u32::from(ip), u32::from(front) + index, "{nodes:?}");
    assert_eq!(name, "node04", "node03's address is held: {nodes:?}");
    assert_eq!(address_on(&format!("{}-{name}", c.n()), &vpc), ip);

    // recreate: same address, same network
    mcc(["recreate", c.n(), "node01"]).run().ok();
    assert_eq!(
        address_on(&format!("{}-node01", c.n()), &vpc),
        ip_of("node01")
    );

    // stopped, its addresses stay its own: a container started on the VPC
    // meanwhile takes none of them, and the cluster starts again
    mcc(["stop", c.n()]).run().ok();
    let meanwhile = run_on(&mut made, &vpc);
    assert!(address_on(&meanwhile, &vpc) >= nth(&cidr, 192));
    mcc(["start", c.n()]).run().ok();
    assert_eq!(address_on(&format!("{}-frontend", c.n()), &vpc), front);

    // the VPC cannot go while the cluster is on it
    let out = mcc(["vpc", "delete", &vpc]).run();
    assert_ne!(out.code(), 0, "{}", out.describe());
    assert!(
        out.stderr.contains(&format!("{}-frontend", c.n())),
        "{}",
        out.describe()
    );
    assert!(vpc_listed(&vpc));

    // a create that fails after its claim (a script exits 1), from a
    // cluster file: removes what it made and leaves the VPC and others
    let failing = Cluster::new("cvpc-fail");
    let ctx = context_folder("cvpc-fail", &[("all/10-fail", "exit 1\n", 0o755)]);
    let file = TempDir::new("cvpc-file");
    let path = file.write(
        "cluster.yaml",
        &format!(
            "image: {BUSYBOX}\nnodes: 1\nvpc: {vpc}\ncontext-folder: {}\n",
            ctx.arg()
        ),
        0o644,
    );
    let out = mcc([
        "create",
        "--name",
        failing.n(),
        "-f",
        path.to_str().unwrap(),
    ])
    .run();
    assert_ne!(out.code(), 0, "{}", out.describe());
    assert_nothing_labelled(failing.n(), "after a failed create into a VPC");
    assert!(vpc_listed(&vpc), "a failed create removed the VPC");
    assert!(running(&run) && running(&later));
    assert_eq!(
        node_table(&inspect(&c)).len(),
        4,
        "a failed create touched another cluster"
    );

    // delete and gc: the cluster goes, the VPC and its containers stay
    mcc(["delete", c.n()]).run().ok();
    assert_nothing_labelled(c.n(), "after delete");
    mcc(["gc", c.n()]).run().ok();
    assert!(vpc_listed(&vpc), "delete or gc removed the VPC");
    let others: Vec<&String> = fixed.iter().chain([&run, &later, &meanwhile]).collect();
    for r in &others {
        assert!(running(r), "delete stopped container {r} on the VPC");
    }
    // …and once they are gone too, the VPC can be deleted
    for r in &others {
        docker_ok(&["rm", "-f", r]);
    }
    let out = mcc(["vpc", "delete", &vpc]).run().ok();
    assert!(
        out.stdout.contains(&format!("deleted {vpc}")),
        "{}",
        out.describe()
    );
    assert!(!vpc_listed(&vpc));
}

#[test]
fn create_into_a_vpc_refuses_bad_input_and_makes_nothing() {
    require_engine_and_images();
    let pid = std::process::id();
    let mut made = Made::default();
    let cidr = test_subnet(246);
    let vpc = vpc_create(&mut made, &cidr, &format!("it-cvpc-bad-{pid}"));
    let c = Cluster::new("cvpc-bad");
    let cases: Vec<(Vec<&str>, Vec<String>)> = vec![
        (
            vec!["--vpc", &vpc, "--subnet", "10.246.250.0/24"],
            vec![format!("--vpc {vpc}"), "--subnet 10.246.250.0/24".into()],
        ),
        (
            vec![
                "--vpc",
                &vpc,
                "--network-driver",
                "macvlan",
                "--parent",
                "lo",
            ],
            vec![format!("--vpc {vpc}"), "--network-driver macvlan".into()],
        ),
        (
            vec!["--vpc", &vpc, "--ip", "node01=10.246.0.9"],
            vec![format!("--vpc {vpc}"), "--ip node01=10.246.0.9".into()],
        ),
        (
            vec!["--vpc", "vpc-0badc0de"],
            vec![
                "vpc-0badc0de".into(),
                "no such VPC".into(),
                "mcc vpc list".into(),
            ],
        ),
        (
            vec!["--vpc", "my-vpc"],
            vec!["'my-vpc' is not a VPC ID".into()],
        ),
        (
            vec!["--vpc", &vpc, "--nodes", "250"],
            vec![format!("--vpc {vpc}"), "--nodes".into()],
        ),
    ];
    for (extra, names) in cases {
        refused(c.n(), &create_args(c.n(), BUSYBOX, &extra), &names);
    }
    // a network that is not a VPC is not one for --vpc either
    let plain = format!("vpc-{:08x}", pid ^ 0x5a5a_0000);
    made.vpcs.push(plain.clone());
    docker_ok(&["network", "create", &plain]);
    refused(
        c.n(),
        &create_args(c.n(), BUSYBOX, &["--vpc", &plain]),
        &[format!("--vpc {plain}: no such VPC")],
    );
    docker_ok(&["network", "rm", &plain]);
    let out = mcc(["vpc", "list", "--output", "json"]).run().ok();
    let list: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let ours = list
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == vpc.as_str());
    assert_eq!(
        ours.map(|v| v["containers"].clone()),
        Some(serde_json::json!([])),
        "a refused create left something on the VPC: {}",
        out.stdout
    );
}
