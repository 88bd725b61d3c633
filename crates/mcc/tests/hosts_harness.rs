//! The multi-host test harness itself (`scripts/hosts`, issue 17): three
//! engines on this machine, each in its own network namespace, joined by a
//! bridge and formed into a swarm of managers. Checks what the multi-host
//! tests will rely on: every engine a reachable manager, an attachable
//! overlay with static addresses spanning hosts and names across them, a
//! host SIGKILLed and started again coming back as a manager, a cut link
//! cutting that host off and mending, no way out to the host's addresses,
//! and `down` leaving nothing (namespaces, bridge, dockerds, mounts,
//! folders, cgroups).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const SUBNET: &str = "10.247.0.0/24";
const IP_RANGE: &str = "10.247.0.128/25";
const NET: &str = "hh-net";

#[test]
fn three_hosts_form_a_swarm_span_an_overlay_survive_faults_and_leave_nothing() {
    let before_links = host_links();
    let t0 = Instant::now();
    let hosts = Hosts::up("hh", 3, &[BUSYBOX]);
    let name = hosts.name.clone();
    let mark = |what: &str| eprintln!("[{:>5.1} s] {what}", t0.elapsed().as_secs_f64());
    mark(&format!("scripts/hosts up {name} --count 3"));

    // Every engine answers and is a manager of one swarm of three.
    for i in 1..=3 {
        assert_eq!(
            hosts.docker_ok(
                i,
                &[
                    "info",
                    "--format",
                    "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{.Swarm.Managers}} {{.Swarm.Nodes}}"
                ]
            ),
            "active true 3 3",
            "host {i} of {name}"
        );
    }
    wait_all_managers(&hosts, 1, Duration::from_secs(20));
    mark("three managers");

    // Nothing leaves the set: no default route in any host's namespace, and
    // a container cannot reach the machine's own address.
    for i in 1..=3 {
        let out = Command::new("ip")
            .args(["-n", hosts.netns(i), "route", "show", "default"])
            .output()
            .expect("ip route");
        assert!(out.status.success(), "ip -n {} route", hosts.netns(i));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "",
            "host {i} has a default route"
        );
    }

    // An attachable overlay made on host 1, seen on host 3 once a container
    // there joins it; static addresses on hosts 1 and 3; names across.
    hosts.docker_ok(
        1,
        &[
            "network",
            "create",
            "--driver",
            "overlay",
            "--attachable",
            "--subnet",
            SUBNET,
            "--ip-range",
            IP_RANGE,
            NET,
        ],
    );
    assert_eq!(
        hosts.docker_ok(
            1,
            &[
                "network",
                "inspect",
                "--format",
                "{{.Scope}} {{range .IPAM.Config}}{{.Subnet}} {{.IPRange}}{{end}}",
                NET
            ]
        ),
        format!("swarm {SUBNET} {IP_RANGE}")
    );
    let run = |i: usize, c: &str, ip: &str| {
        hosts.docker_ok(
            i,
            &[
                "run",
                "-d",
                "--name",
                c,
                "--hostname",
                c,
                "--network",
                NET,
                "--ip",
                ip,
                BUSYBOX,
                "sleep",
                "3600",
            ],
        );
    };
    run(1, "hc1", "10.247.0.11");
    run(3, "hc3", "10.247.0.13");
    mark("overlay and two containers");
    ping_ok(&hosts, 1, "hc1", "hc3", "10.247.0.13");
    ping_ok(&hosts, 3, "hc3", "hc1", "10.247.0.11");
    mark("pings across by name");
    let host_ip = machine_address();
    let out = hosts.docker(1, &["exec", "hc1", "ping", "-c", "1", "-W", "1", &host_ip]);
    assert!(
        !out.status.success(),
        "a container on host 1 reached the machine's own address {host_ip}: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Host 2 SIGKILLed (the whole host) and started: a manager again.
    hosts.kill(2);
    assert!(
        !hosts.docker(2, &["version"]).status.success(),
        "host 2 still answers after kill"
    );
    let t = Instant::now();
    hosts.start(2);
    assert_eq!(
        hosts.docker_ok(
            2,
            &[
                "info",
                "--format",
                "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}"
            ]
        ),
        "active true"
    );
    wait_all_managers(&hosts, 1, Duration::from_secs(60));
    eprintln!(
        "host 2 killed, started and a reachable manager again in {:?}",
        t.elapsed()
    );
    assert_eq!(hosts.status()["MCC_HOSTS_2_STATE"], "running");

    mark("host 2 killed and back");

    // Host 3's link cut: host 1 reaches neither its containers nor itself.
    hosts.cut(3);
    assert_eq!(hosts.status()["MCC_HOSTS_3_LINK"], "cut");
    let out = hosts.docker(
        1,
        &["exec", "hc1", "ping", "-c", "2", "-W", "1", "10.247.0.13"],
    );
    assert!(
        !out.status.success(),
        "host 1 reached hc3 on host 3 through a cut link: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !tcp_connects(&hosts, 1, 3),
        "host 1 connected to host 3's swarm port through a cut link"
    );
    mark("host 3 cut off");
    hosts.mend(3);
    assert_eq!(hosts.status()["MCC_HOSTS_3_LINK"], "up");
    // The link is back at once. (The overlay between hosts 1 and 3 is not:
    // once the swarm's gossip has declared host 3 dead, a few seconds
    // into the cut, its containers' addresses and names come back only
    // with the gossip's rejoin, ~60 s after the cut; measured 53 s after
    // a 6 s cut. Not waited for here.)
    assert!(
        tcp_connects(&hosts, 1, 3),
        "host 1 cannot connect to host 3's swarm port after mend"
    );

    mark("host 3 mended");

    // Down leaves nothing of the set, and a second down is a no-op.
    let t = Instant::now();
    hosts.down();
    eprintln!("scripts/hosts down {name}: {:?}", t.elapsed());
    let left = leftovers(&name, &before_links);
    assert!(left.is_empty(), "scripts/hosts down {name} left: {left:#?}");
    let again = Command::new(repo_root().join("scripts/hosts"))
        .args(["down", &name])
        .output()
        .expect("scripts/hosts down");
    assert!(again.status.success(), "a second down failed: {again:?}");
}

/// Waits until host `from` sees three nodes, all Ready and each a
/// reachable manager (one the leader).
fn wait_all_managers(hosts: &Hosts, from: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let out = hosts.docker(
            from,
            &[
                "node",
                "ls",
                "--format",
                "{{.Hostname}} {{.Status}} {{.ManagerStatus}}",
            ],
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort();
        let want: Vec<String> = (1..=3)
            .map(|i| format!("{}-{i} Ready", hosts.name))
            .collect();
        let ok = out.status.success()
            && lines.len() == 3
            && lines.iter().zip(&want).all(|(l, w)| {
                l.starts_with(w.as_str()) && (l.ends_with("Leader") || l.ends_with("Reachable"))
            });
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "after {timeout:?}, host {from} sees the swarm as:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `from` pings `to` by name from host `host` (retrying for a few seconds:
/// names reach other hosts in under one), and the name is `ip`.
fn ping_ok(hosts: &Hosts, host: usize, from: &str, to: &str, ip: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = hosts.docker(host, &["exec", from, "ping", "-c", "1", "-W", "1", to]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            assert!(
                text.contains(&format!("({ip})")),
                "{to} is not {ip} seen from {from}: {text}"
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{from} (host {host}) cannot ping {to}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether a TCP connection from host `from`'s namespace to host `to`'s
/// swarm port (2377) opens within 2 s.
fn tcp_connects(hosts: &Hosts, from: usize, to: usize) -> bool {
    Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", hosts.netns(from)))
        .args(["--", "timeout", "2", "bash", "-c"])
        .arg(format!("exec 3<>/dev/tcp/{}/2377", hosts.addr(to)))
        .stderr(Stdio::null())
        .status()
        .expect("bash in a host's namespace")
        .success()
}

/// The machine's own first global IPv4 address.
fn machine_address() -> String {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .expect("ip addr");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.iter()
                .position(|w| *w == "inet")
                .and_then(|p| f.get(p + 1))
                .map(|a| a.split('/').next().unwrap_or(a).to_string())
        })
        .expect("the machine has a global IPv4 address")
}

/// Names of the links of the machine's own network namespace.
fn host_links() -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip link");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// What is left of set `name`: namespaces, links named as the set's are
/// (br0, eI) in the machine's namespace that were not there before,
/// processes, mounts, folders, cgroups.
fn leftovers(name: &str, before_links: &[String]) -> Vec<String> {
    let mut left = Vec::new();
    let prefix = format!("mcch-{name}.");
    if let Ok(rd) = std::fs::read_dir("/run/netns") {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(&prefix) {
                left.push(format!("netns {n}"));
            }
        }
    }
    for l in host_links() {
        let ours = l == "br0" || (l.starts_with('e') && l[1..].parse::<u32>().is_ok());
        if ours && !before_links.contains(&l) {
            left.push(format!("link {l} in the machine's namespace"));
        }
    }
    let run = format!("/run/mcc-hosts/{name}");
    let data = format!("/var/tmp/mcc-hosts/{name}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    for m in mounts.lines() {
        if let Some(mp) = m.split(' ').nth(4) {
            if mp.starts_with(&run) || mp.starts_with(&data) || mp.contains(&prefix) {
                left.push(format!("mount {mp}"));
            }
        }
    }
    for d in [&run, &data] {
        if Path::new(d).exists() {
            left.push(format!("folder {d}"));
        }
    }
    let cgroup = format!("mcc-hosts-{name}.");
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for ctl in rd.flatten() {
            if let Ok(sub) = std::fs::read_dir(ctl.path()) {
                for e in sub.flatten() {
                    if e.file_name().to_string_lossy().starts_with(&cgroup) {
                        left.push(format!("cgroup {}", e.path().display()));
                    }
                }
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(&format!("{run}/")) || cmdline.contains(&cgroup) {
                left.push(format!(
                    "process {}: {cmdline}",
                    e.file_name().to_string_lossy()
                ));
            }
        }
    }
    left
}
