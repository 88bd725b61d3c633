//! The engine as the tests see it: a connection, the objects labelled
//! with a cluster and their removal, the nodes' addresses and volumes as
//! the engine has them, the docker CLI for what tests do behind mcc's
//! back, and a private engine for tests that restart or kill one.

#[allow(unused_imports)]
use super::*;

/// Runs `f` with a fresh connection to the engine, on a runtime of its own
/// (the tests are synchronous; a connection is bound to its runtime).
pub fn engine<T, F, Fut>(f: F) -> T
where
    F: FnOnce(DockerProvider) -> Fut,
    Fut: Future<Output = T>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime for the engine helpers");
    rt.block_on(async move {
        let p = DockerProvider::connect().await.unwrap_or_else(|e| {
            panic!(
                "no container engine answers, and these tests need one (they never skip): {e}\n\
                 start Docker (e.g. `sudo systemctl start docker`) or set DOCKER_HOST"
            )
        });
        f(p).await
    })
}

/// Checks once per test binary that an engine answers and the test images
/// exist; fails loudly otherwise.
pub fn require_engine_and_images() {
    if remote_mode() {
        assert!(
            std::env::var_os("MCC_ENDPOINT_URL").is_some(),
            "MCC_TEST_REMOTE=1 without MCC_ENDPOINT_URL: the tests would not reach a daemon \
             (run them through scripts/test-remote)"
        );
    }
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let r = READY.get_or_init(|| {
        engine(|p| async move {
            let mut missing = Vec::new();
            for image in [BUSYBOX, DEBIAN, DOCKER_IMAGE] {
                match p.image(image).await {
                    Ok(Some(_)) => {}
                    Ok(None) => missing.push(image),
                    Err(e) => return Err(format!("cannot inspect image {image}: {e}")),
                }
            }
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "test image(s) {} missing: run scripts/build-test-images first \
                     (it builds them offline)",
                    missing.join(", ")
                ))
            }
        })
    });
    if let Err(e) = r {
        panic!("{e}");
    }
}

/// The engine objects labelled `mcc.cluster=<name>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Objects {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
}

impl Objects {
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.networks.is_empty() && self.volumes.is_empty()
    }
}

pub fn labelled(name: &str) -> Objects {
    let name = name.to_string();
    engine(|p| async move {
        let label = Some((labels::CLUSTER, name.as_str()));
        let mut o = Objects {
            containers: p
                .containers(labels::CLUSTER, Some(&name))
                .await
                .expect("listing containers")
                .into_iter()
                .map(|c| c.name)
                .collect(),
            networks: p
                .networks(label)
                .await
                .expect("listing networks")
                .into_iter()
                .map(|n| n.name)
                .collect(),
            volumes: p
                .volumes(label)
                .await
                .expect("listing volumes")
                .into_iter()
                .map(|v| v.name)
                .collect(),
        };
        o.containers.sort();
        o.networks.sort();
        o.volumes.sort();
        o
    })
}

/// `container name -> field(container)` of the containers labelled with
/// the cluster.
pub fn containers_by_name(
    name: &str,
    field: fn(&ContainerInfo) -> String,
) -> BTreeMap<String, String> {
    let name = name.to_string();
    engine(|p| async move {
        p.containers(labels::CLUSTER, Some(&name))
            .await
            .expect("listing containers")
            .into_iter()
            .map(|c| (c.name.clone(), field(&c)))
            .collect()
    })
}

/// `container name -> state` of the containers labelled with the cluster.
pub fn container_states(name: &str) -> BTreeMap<String, String> {
    containers_by_name(name, |c| c.state.as_str().to_string())
}

#[track_caller]
pub fn assert_nothing_labelled(name: &str, context: &str) {
    let o = labelled(name);
    assert!(
        o.is_empty(),
        "{context}: objects labelled mcc.cluster={name} remain: {o:?}"
    );
}

/// Removes every object labelled with the cluster, through the engine API.
/// Never panics (it runs in `Drop`, maybe while a test unwinds).
pub fn purge(name: &str) {
    let name = name.to_string();
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        eprintln!("cleanup of {name}: no tokio runtime");
        return;
    };
    rt.block_on(async move {
        let p = match DockerProvider::connect().await {
            Ok(p) => p,
            Err(e) => {
                eprintln!("cleanup of {name}: no engine: {e}");
                return;
            }
        };
        for _attempt in 0..3 {
            let label = Some((labels::CLUSTER, name.as_str()));
            let containers = p
                .containers(labels::CLUSTER, Some(&name))
                .await
                .unwrap_or_default();
            for c in &containers {
                if let Err(e) = p.remove_container(&c.name).await {
                    eprintln!("cleanup of {name}: removing container {}: {e}", c.name);
                }
            }
            for n in p.networks(label).await.unwrap_or_default() {
                if let Err(e) = p.remove_network(&n.name).await {
                    eprintln!("cleanup of {name}: removing network {}: {e}", n.name);
                }
            }
            for v in p.volumes(label).await.unwrap_or_default() {
                if let Err(e) = p.remove_volume(&v.name).await {
                    eprintln!("cleanup of {name}: removing volume {}: {e}", v.name);
                }
            }
            let left = p
                .containers(labels::CLUSTER, Some(&name))
                .await
                .map(|c| c.len())
                .unwrap_or(0)
                + p.networks(label).await.map(|n| n.len()).unwrap_or(0)
                + p.volumes(label).await.map(|v| v.len()).unwrap_or(0);
            if left == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        eprintln!("cleanup of {name}: some objects could not be removed");
    })
}

/// `container name -> address on the cluster network`, as the engine
/// reports it (running containers only have one).
pub fn engine_addresses(name: &str) -> BTreeMap<String, Ipv4Addr> {
    let name = name.to_string();
    engine(|p| async move {
        let net = format!("{name}-net");
        p.containers(labels::CLUSTER, Some(&name))
            .await
            .expect("listing containers")
            .into_iter()
            .filter_map(|c| c.addresses.get(&net).map(|ip| (c.name.clone(), *ip)))
            .collect()
    })
}

/// The cluster's `--persist` volumes: `volume name -> (mcc.node, mcc.path)`.
pub fn persist_volumes(name: &str) -> BTreeMap<String, (String, String)> {
    let name = name.to_string();
    engine(|p| async move {
        p.volumes(Some((labels::CLUSTER, name.as_str())))
            .await
            .expect("listing volumes")
            .into_iter()
            .filter(|v| v.labels.get(labels::ROLE).map(String::as_str) == Some("persist"))
            .map(|v| {
                let node = v.labels.get(labels::NODE).cloned().unwrap_or_default();
                let path = v.labels.get(labels::PATH).cloned().unwrap_or_default();
                (v.name, (node, path))
            })
            .collect()
    })
}

/// Removes a container straight through the engine, as `docker rm -f`
/// would behind mcc's back.
pub fn remove_behind_mccs_back(container: &str) {
    let container = container.to_string();
    let removed = engine(|p| async move { p.remove_container(&container).await })
        .unwrap_or_else(|e| panic!("removing a container behind mcc's back: {e}"));
    assert!(removed, "there was no container to remove");
}

/// `GET <path>` of the engine's API on its local socket, as JSON: for what
/// the provider does not report (a network's driver, a container's DNS
/// servers). Needs a local engine (`DOCKER_HOST` unset or `unix://`).
pub fn engine_get(path: &str) -> serde_json::Value {
    use std::os::unix::net::UnixStream;
    let host =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let socket = host
        .strip_prefix("unix://")
        .unwrap_or_else(|| panic!("these checks need a local engine socket, not {host}"));
    let mut s = UnixStream::connect(socket)
        .unwrap_or_else(|e| panic!("cannot connect to the engine at {socket}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("a read timeout");
    // HTTP/1.0: the engine answers with the whole body and closes
    write!(s, "GET /v1.41{path} HTTP/1.0\r\nHost: engine\r\n\r\n").expect("a request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("the engine's answer");
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP answer: {raw}"));
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "GET {path}: {head}\n{body}"
    );
    serde_json::from_str(body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

/// The `n`-th address of a subnet (0 is the network address).
pub fn subnet_host(subnet: &str, n: u32) -> Ipv4Addr {
    let (net, _) = subnet.split_once('/').expect("a CIDR");
    let net: Ipv4Addr = net.parse().expect("an IPv4 network");
    Ipv4Addr::from(u32::from(net) + n)
}

/// What each node says its addresses are: `hostname -i` and eth0's IPv4
/// address, as `node -> "hostname-i IP\naddr IP\n"`.
pub fn addresses_inside(c: &Cluster) -> BTreeMap<String, String> {
    let out = sh(
        c,
        "all",
        "echo \"hostname-i $(hostname -i)\"; \
         ip -4 -o addr show dev eth0 | sed -n 's/.* inet \\([0-9.]*\\)\\/.*/addr \\1/p'",
    )
    .ok();
    per_node(&out)
}

/// `docker ARGS…`: its output, whatever its exit status.
pub fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run docker {args:?}: {e}"))
}

/// `docker ARGS…`, which must succeed; its stdout.
#[track_caller]
pub fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A container the test made itself (unlabelled): `docker rm -f` on drop.
pub struct ContainerGuard(pub String);

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.0]);
    }
}

/// What a test made outside clusters (`run` containers, sized volumes,
/// VPCs), removed however it ends: the containers first, so that what they
/// used is free to go.
#[derive(Default)]
pub struct Made {
    pub containers: Vec<String>,
    pub volumes: Vec<String>,
    pub vpcs: Vec<String>,
}

impl Made {
    pub fn volume(id: &str) -> Made {
        let mut m = Made::default();
        m.volumes.push(id.to_string());
        m
    }

    pub fn vpc(id: &str) -> Made {
        let mut m = Made::default();
        m.vpcs.push(id.to_string());
        m
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = docker(&["rm", "-f", c]);
        }
        for v in &self.volumes {
            let _ = mcc(["volume", "delete", v]).local().run();
        }
        for v in &self.vpcs {
            let _ = docker(&["network", "rm", v]);
        }
    }
}

/// The IDs `mcc KIND list` shows (`vpc`, `volume`).
pub fn listed_ids(kind: &str) -> Vec<String> {
    let out = mcc([kind, "list", "--output", "json"]).run().ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect()
}

/// An image tag the test made itself: `docker rmi` on drop.
pub struct ImageGuard(pub String);

impl Drop for ImageGuard {
    fn drop(&mut self) {
        let _ = docker(&["rmi", "-f", &self.0]);
    }
}

/// A Docker engine of the test's own (`scripts/private-engine`: its own
/// dockerd in its own network namespace, its containers routed from the
/// host), for tests that restart or kill an engine and must not do it
/// under everyone's containers on the host's. Removed (`stop`: dockerd,
/// containers, mounts, data, namespace, routes) when dropped, pass or fail.
pub struct PrivateEngine {
    pub name: String,
    /// `unix:///run/mcc-private/<name>/docker.sock`
    pub docker_host: String,
}

impl PrivateEngine {
    /// `scripts/private-engine start <tag>-<pid> --images …`, the images
    /// copied from the engine this process reaches now (DOCKER_HOST or the
    /// local socket). `tag` must be unique among the tests of a binary.
    pub fn start(tag: &str, images: &[&str]) -> PrivateEngine {
        let name = format!("{tag}-{}", std::process::id());
        assert!(
            name.len() <= 20,
            "test bug: private engine name '{name}' is over 20 characters"
        );
        let mut engine = PrivateEngine {
            name,
            docker_host: String::new(),
        };
        // From here on, Drop stops whatever the start made, even half-way.
        let out = engine.script("start", &["--images", &images.join(",")]);
        engine.docker_host = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("DOCKER_HOST="))
            .unwrap_or_else(|| {
                panic!(
                    "scripts/private-engine start printed no DOCKER_HOST: {}",
                    String::from_utf8_lossy(&out.stdout)
                )
            })
            .to_string();
        engine
    }

    /// Points this process at the engine: `DOCKER_HOST` for the engine
    /// helpers, the docker CLI, mcc and the daemons it starts. For a test
    /// binary of one test (the environment is the whole process's).
    pub fn use_for_this_process(&self) {
        std::env::set_var("DOCKER_HOST", &self.docker_host);
    }

    /// dockerd stopped with SIGTERM and started again the same way.
    pub fn restart(&self) {
        self.script("restart", &[]);
    }

    /// dockerd SIGKILLed and started again the same way.
    pub fn kill_restart(&self) {
        self.script("kill-restart", &[]);
    }

    #[track_caller]
    fn script(&self, verb: &str, args: &[&str]) -> std::process::Output {
        script_ok("private-engine", verb, &self.name, args)
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        script_quietly("private-engine", "stop", &self.name);
    }
}

/// `scripts/SCRIPT VERB NAME ARGS…` (private-engine, hosts: scripts that
/// act on a set of things they made under NAME).
pub fn script_command(script: &str, verb: &str, name: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(repo_root().join("scripts").join(script));
    cmd.arg(verb).arg(name).args(args).stdin(Stdio::null());
    cmd
}

/// [`script_command`] run, which must succeed; its output.
#[track_caller]
pub fn script_ok(script: &str, verb: &str, name: &str, args: &[&str]) -> std::process::Output {
    let out = script_command(script, verb, name, args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/{script}: {e}"));
    assert!(
        out.status.success(),
        "scripts/{script} {verb} {name} {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// [`script_command`] on a test's way out (a Drop): a failure is printed,
/// never a panic.
pub fn script_quietly(script: &str, verb: &str, name: &str) {
    match script_command(script, verb, name, &[]).output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => eprintln!(
            "scripts/{script} {verb} {name}: {}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => eprintln!("cannot run scripts/{script} {verb} {name}: {e}"),
    }
}
