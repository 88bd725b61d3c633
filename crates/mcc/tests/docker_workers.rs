//! Workers that are Docker hosts (`--docker-workers`): reachable from every
//! node as `tcp://nodeXX:2375` with the cluster's certificates, inner
//! bridges off the host's networks, engines kept across recreate, nodes
//! added later made Docker hosts too; and nobody outside the cluster gets
//! in: not a node of another cluster, not a user of the host.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

use common::*;
use mcc_core::model::Ipv4Cidr;

/// Loads the busybox test image into a worker's engine, as a user would
/// (`docker save | docker load`), talking to the engine's own socket.
fn load_busybox(container: &str) {
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            "docker save \"$1\" | docker exec -i -e DOCKER_HOST=unix:///var/run/docker.sock \
             -e DOCKER_TLS_VERIFY= \"$2\" docker load",
            "sh",
            BUSYBOX,
            container,
        ])
        .output()
        .expect("docker save | docker load");
    assert!(
        out.status.success(),
        "loading {BUSYBOX} into {container}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The node's address as inspect shows it.
fn ip_of(c: &Cluster, node: &str) -> String {
    node_table(&inspect(c))[node].0.clone()
}

/// Every subnet of the engine's networks on this host.
fn host_subnets() -> Vec<Ipv4Cidr> {
    let ids = docker_ok(&["network", "ls", "-q"]);
    let ids: Vec<&str> = ids.split_whitespace().collect();
    let mut args = vec![
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
    ];
    args.extend(ids);
    docker_ok(&args)
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

#[test]
fn workers_are_docker_hosts_reachable_by_name_and_kept_across_recreate() {
    let c = Cluster::new("dockerw");
    let subnet = test_subnet(234);
    create(
        &c,
        &on_subnet(DOCKER_IMAGE, "2", &subnet, &["--docker-workers"]),
    );

    // the seed's `docker -H test_worker_1 ps`, from the front-end
    let out = sh(
        &c,
        "frontend",
        "for n in node01 node02; do docker -H $n info --format \"$n {{.Driver}}\" || exit 1; done",
    )
    .ok();
    assert!(
        out.stdout.contains("node01 overlay2") && out.stdout.contains("node02 overlay2"),
        "{}",
        out.describe()
    );
    // a worker's own CLI talks to its own engine
    sh(&c, "node02", "docker ps -q").ok();
    // the front-end is a client, not a host
    let out = sh(&c, "frontend", "docker -H frontend info");
    assert_ne!(out.code(), 0, "{}", out.describe());

    // an inner container: its bridge clashes with none of the host's
    // networks nor the cluster's subnet; its cgroups nest under the node's
    load_busybox(&format!("{}-node01", c.n()));
    let out = sh(
        &c,
        "frontend",
        &format!(
            "docker -H node01 run --rm {BUSYBOX} sh -c 'ip -4 -o addr show eth0; cat /proc/self/cgroup'"
        ),
    )
    .ok();
    let inner: Ipv4Addr = out
        .stdout
        .split_whitespace()
        .find_map(|w| w.split_once('/').and_then(|(a, _)| a.parse().ok()))
        .unwrap_or_else(|| panic!("no inner address: {}", out.describe()));
    let mut taken = host_subnets();
    taken.push(subnet.parse().unwrap());
    taken.push("172.17.0.0/16".parse().unwrap());
    for t in &taken {
        assert!(
            !t.contains(inner),
            "inner address {inner} is in {t}: {}",
            out.describe()
        );
    }
    let node_id = docker_ok(&["inspect", "-f", "{{.Id}}", &format!("{}-node01", c.n())]);
    assert!(
        out.stdout
            .contains(&format!("/docker/{}/docker/", node_id.trim())),
        "inner cgroups are not under the node's: {}",
        out.describe()
    );

    // a published port of an inner container answers at node01:<port>
    sh(
        &c,
        "frontend",
        &format!("docker -H node01 run -d --name web -p 18080:8080 {BUSYBOX} httpd -f -p 8080"),
    )
    .ok();
    let out = mcc([
        "exec",
        c.n(),
        "--on",
        "frontend",
        "--",
        "bash",
        "-c",
        "for i in $(seq 50); do exec 3<>/dev/tcp/node01/18080 && break; sleep 0.1; done; \
         printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3; head -n1 <&3",
    ])
    .run();
    assert!(
        out.stdout.contains("HTTP/1."),
        "published port did not answer: {}",
        out.describe()
    );

    // a worker added later is a Docker host too
    mcc(["addnode", c.n()]).run().ok();
    sh(
        &c,
        "frontend",
        "docker -H node03 info --format '{{.Driver}}'",
    )
    .ok();

    // recreate keeps the worker's images and containers
    mcc(["recreate", c.n(), "node01"]).run().ok();
    let out = sh(
        &c,
        "frontend",
        "docker -H node01 image ls --format '{{.Repository}}'; docker -H node01 ps -a --format '{{.Names}}'",
    )
    .ok();
    assert!(
        out.stdout.contains("mcc-test/busybox") && out.stdout.contains("web"),
        "{}",
        out.describe()
    );

    // delete takes the engines' volumes with the rest
    mcc(["delete", c.n()]).run().ok();
    assert_nothing_labelled(c.n(), "after delete of a --docker-workers cluster");
}

/// The attacks: a node of another cluster (root there, holding that
/// cluster's own valid certificates) and a user of the host (no
/// certificate at all) try a worker's engine; both are refused, while the
/// cluster's own front-end gets in.
#[test]
fn nobody_outside_the_cluster_reaches_a_workers_engine() {
    let a = docker_workers_cluster("dockerw-a", "1", 235);
    let b = docker_workers_cluster("dockerw-b", "1", 236);
    let target = format!("tcp://{}:2375", ip_of(&a, "node01"));

    // control: the cluster's own front-end, by address too
    sh(&a, "frontend", &format!("docker -H {target} ps -q")).ok();

    for node in ["frontend", "node01"] {
        // with the other cluster's certificates
        let out = sh(&b, node, &format!("timeout 10 docker -H {target} ps"));
        assert_ne!(
            out.code(),
            0,
            "{node} of another cluster got in: {}",
            out.describe()
        );
        // without TLS
        let out = sh(
            &b,
            node,
            &format!("DOCKER_TLS_VERIFY= timeout 10 docker -H {target} ps"),
        );
        assert_ne!(
            out.code(),
            0,
            "{node} of another cluster got in: {}",
            out.describe()
        );
    }

    // a user of the host, with no certificate: a plain request gets no API
    let addr = format!("{}:2375", ip_of(&a, "node01"));
    let mut s = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(5))
        .expect("the engine's port is reachable from the host");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /containers/json HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        !answer.starts_with("HTTP/1.0 200") && !answer.starts_with("HTTP/1.1 200"),
        "the engine answered a request without a certificate: {answer}"
    );
}

#[test]
fn docker_workers_bad_input_leaves_nothing() {
    let c = Cluster::new("dockerw-bad");
    refused(
        c.n(),
        &create_args(c.n(), DOCKER_IMAGE, &["--docker-workers", "--systemd"]),
        &["--docker-workers", "--systemd"],
    );
    // an image without an engine: named, and the create is undone
    let out = try_create(&c, &image_nodes(BUSYBOX, "1", &["--docker-workers"]));
    assert_ne!(out.code(), 0, "{}", out.describe());
    assert!(
        out.stderr.contains("has no dockerd") && out.stderr.contains(BUSYBOX),
        "{}",
        out.describe()
    );
    assert_nothing_labelled(c.n(), "after a create whose image has no engine");
}
