//! Shared helpers of mcc's integration tests: they run the built `mcc`
//! binary against the local Docker engine and check the engine's state
//! through mcc-core's own provider (never the docker CLI).
//!
//! Every test owns a cluster name `it-<tag>-<pid>`; a [`Cluster`] guard
//! removes every object labelled with it before the test starts and when
//! it ends (pass or fail), straight through the engine API so that a bug
//! in `mcc delete` cannot leave litter behind.

#![allow(dead_code)] // each test binary uses a different subset

pub mod registry;

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mcc_core::model::labels;
use mcc_core::provider::{ContainerInfo, DockerProvider, Provider};

pub const BUSYBOX: &str = "mcc-test/busybox:latest";
pub const DEBIAN: &str = "mcc-test/debian:bookworm";
/// Debian with docker.io: the workers of `--docker-workers` clusters.
pub const DOCKER_IMAGE: &str = "mcc-test/docker:bookworm";

/// Longest an mcc command may take before the test gives up on it.
pub const TIMEOUT: Duration = Duration::from_secs(180);

// ---------------------------------------------------------------------------
// the engine

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

// ---------------------------------------------------------------------------
// cluster names and their guard

/// A cluster name owned by one test; its objects are removed before the
/// test and when the guard is dropped.
pub struct Cluster {
    pub name: String,
}

impl Cluster {
    /// `it-<tag>-<pid>`; `tag` must be unique among the tests of a binary.
    pub fn new(tag: &str) -> Cluster {
        Cluster::named(format!("it-{tag}-{}", std::process::id()))
    }

    pub fn named(name: String) -> Cluster {
        require_engine_and_images();
        assert!(
            name.len() <= 54 && name.parse::<mcc_core::model::ClusterName>().is_ok(),
            "test bug: '{name}' is not a valid cluster name"
        );
        purge(&name);
        Cluster { name }
    }

    pub fn n(&self) -> &str {
        &self.name
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        purge(&self.name);
    }
}

/// A subnet of the 10.2xx.0.0/16 block `block` that no other run of this
/// suite uses at the same time (the third byte follows the pid).
pub fn test_subnet(block: u8) -> String {
    assert!((200..=255).contains(&block));
    format!("10.{block}.{}.0/24", std::process::id() % 256)
}

/// The address mcc gives a node: gateway .1, front-end .2, worker i .(2+i).
pub fn static_ip(subnet: &str, index: u32) -> Ipv4Addr {
    let (net, _) = subnet.split_once('/').expect("a CIDR");
    let net: Ipv4Addr = net.parse().expect("an IPv4 network");
    Ipv4Addr::from(u32::from(net) + 2 + index)
}

// ---------------------------------------------------------------------------
// running mcc

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_mcc")
}

/// What an mcc command did.
#[derive(Debug)]
pub struct Out {
    pub cmdline: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// The exit code; panics if the process was killed by a signal.
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("{} was killed: {}", self.cmdline, self.describe()))
    }

    pub fn describe(&self) -> String {
        format!(
            "`{}` exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmdline, self.status, self.stdout, self.stderr
        )
    }

    #[track_caller]
    pub fn ok(self) -> Out {
        assert!(self.status.success(), "{}", self.describe());
        self
    }

    #[track_caller]
    pub fn code_is(self, code: i32) -> Out {
        assert_eq!(self.status.code(), Some(code), "{}", self.describe());
        self
    }

    /// `(node, text)` for each `node | text` line of `mcc exec` on stdout.
    pub fn node_lines(&self) -> Vec<(String, String)> {
        node_lines(&self.stdout)
    }
}

pub fn node_lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let (node, rest) = l.split_once(" | ")?;
            Some((node.trim().to_string(), rest.to_string()))
        })
        .collect()
}

/// An mcc process started in the background; killed if still running when
/// dropped, so that a failing test never leaves one behind.
pub struct Running {
    pub child: Child,
    pub cmdline: String,
    stdout: Option<std::thread::JoinHandle<String>>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the process (killing it after `timeout`) and collects its output.
    pub fn wait(mut self, timeout: Duration) -> Out {
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait().expect("waiting for mcc") {
                Some(s) => break s,
                None if Instant::now() > deadline => {
                    let _ = self.child.kill();
                    let s = self.child.wait().expect("waiting for killed mcc");
                    let out = self.collect(s);
                    panic!("timed out after {timeout:?}: {}", out.describe());
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        self.collect(status)
    }

    /// Ctrl-C (SIGINT), then waits as [`Running::wait`] does.
    pub fn interrupt(self, timeout: Duration) -> Out {
        let kill = Command::new("kill")
            .args(["-INT", &self.pid().to_string()])
            .status()
            .expect("running kill");
        assert!(kill.success(), "kill -INT {}", self.pid());
        self.wait(timeout)
    }

    /// A connection to `addr` once this process (a forward, say) listens
    /// there; fails if it exits first or takes over 30 s.
    pub fn connect_when_listening(&mut self, addr: &str) -> std::net::TcpStream {
        let start = Instant::now();
        loop {
            if let Ok(s) = std::net::TcpStream::connect(addr) {
                return s;
            }
            assert!(self.is_running(), "{} exited", self.cmdline);
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{} never listened on {addr}",
                self.cmdline
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn collect(&mut self, status: ExitStatus) -> Out {
        let stdout = self.stdout.take().map(|h| h.join().unwrap_or_default());
        let stderr = self.stderr.take().map(|h| h.join().unwrap_or_default());
        Out {
            cmdline: self.cmdline.clone(),
            status,
            stdout: stdout.unwrap_or_default(),
            stderr: stderr.unwrap_or_default(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// How to run an mcc command.
pub struct Mcc {
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Option<Vec<u8>>,
    local: bool,
}

/// The variables that send the CLI through a daemon.
pub const REMOTE_VARS: [&str; 6] = [
    "MCC_ENDPOINT_URL",
    "MCC_ACCESS_TOKEN",
    "MCC_SECRET_KEY",
    "CC_ENDPOINT_URL",
    "CC_ACCESS_TOKEN",
    "CC_SECRET_KEY",
];

/// Whether this run sends the CLI through a daemon: `scripts/test` runs
/// the cluster tests a second time that way (`MCC_TEST_REMOTE=1` with the
/// `MCC_*` variables of a daemon it started).
pub fn remote_mode() -> bool {
    std::env::var_os("MCC_TEST_REMOTE").is_some_and(|v| v == "1")
}

pub fn mcc<I, S>(args: I) -> Mcc
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    Mcc {
        args: args.into_iter().map(|s| s.as_ref().to_string()).collect(),
        env: Vec::new(),
        stdin: None,
        local: false,
    }
}

impl Mcc {
    pub fn env(mut self, k: &str, v: &str) -> Mcc {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Runs on the local engine even in remote mode (for what only
    /// makes sense there, e.g. a wrong DOCKER_HOST).
    pub fn local(mut self) -> Mcc {
        self.local = true;
        self
    }

    pub fn stdin(mut self, data: &str) -> Mcc {
        self.stdin = Some(data.as_bytes().to_vec());
        self
    }

    pub fn spawn(self) -> Running {
        let cmdline = format!("mcc {}", self.args.join(" "));
        let mut cmd = Command::new(bin());
        cmd.args(&self.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        if self.local {
            for k in REMOTE_VARS {
                cmd.env_remove(k);
            }
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin()));
        if let Some(data) = self.stdin {
            let mut input = child.stdin.take().expect("piped stdin");
            std::thread::spawn(move || {
                let _ = input.write_all(&data);
            });
        }
        let mut out = child.stdout.take().expect("piped stdout");
        let mut err = child.stderr.take().expect("piped stderr");
        let stdout = std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = out.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        });
        let stderr = std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = err.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        });
        Running {
            child,
            cmdline,
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }

    pub fn run(self) -> Out {
        self.spawn().wait(TIMEOUT)
    }
}

/// `mcc create --name <cluster> ARGS…`, to run or spawn.
pub fn create_cmd(c: &Cluster, args: &[&str]) -> Mcc {
    let mut all = vec!["create", "--name", c.n()];
    all.extend_from_slice(args);
    mcc(&all)
}

/// `mcc create --name <cluster> ARGS…`. No retry: creates running at
/// once must each get a free subnet on their own
/// (`lifecycle::concurrent_creates_of_different_clusters_all_succeed`).
pub fn try_create(c: &Cluster, args: &[&str]) -> Out {
    create_cmd(c, args).run()
}

/// `--image <image> --nodes <nodes> EXTRA…`: the usual arguments of a create.
pub fn image_nodes<'a>(image: &'a str, nodes: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--image", image, "--nodes", nodes];
    v.extend_from_slice(extra);
    v
}

/// `--image <image> --nodes <nodes> --subnet <subnet> EXTRA…`.
pub fn on_subnet<'a>(
    image: &'a str,
    nodes: &'a str,
    subnet: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut v = image_nodes(image, nodes, &["--subnet", subnet]);
    v.extend_from_slice(extra);
    v
}

/// `create --name <name> --image <image> EXTRA…` as owned strings, for
/// creates that must be refused ([`refused`]).
pub fn create_args(name: &str, image: &str, extra: &[&str]) -> Vec<String> {
    ["create", "--name", name, "--image", image]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect()
}

/// Runs a create that must be refused as a usage error (exit 2) with a
/// message naming each of `names`, making nothing labelled `cluster`.
#[track_caller]
pub fn refused<A: AsRef<str>, N: AsRef<str>>(cluster: &str, args: &[A], names: &[N]) {
    let out = mcc(args).run();
    assert_eq!(
        out.status.code(),
        Some(2),
        "expected a usage error (exit 2): {}",
        out.describe()
    );
    for n in names {
        let n = n.as_ref();
        assert!(
            out.stderr.contains(n),
            "the message does not name {n:?}: {}",
            out.describe()
        );
    }
    assert_nothing_labelled(cluster, &format!("after `{}`", out.cmdline));
}

/// Starts `mcc create` of 1+8 busybox nodes on `subnet` in the background,
/// held by a front-end script that waits for a file that never comes, and
/// waits until the front-end runs: a kill or Ctrl-C then always lands
/// half-way, whatever the host's speed (`until` says what is to end it:
/// "killed", "interrupted"). The folder must live until the create ends.
pub fn spawn_create_until_record(c: &Cluster, subnet: &str, until: &str) -> (Running, TempDir) {
    let script = format!(
        "#!/bin/sh\nwhile [ ! -e /opt/mcc/shared/never-{} ]; do sleep 0.1; done\n",
        c.n()
    );
    let ctx = context_folder(until, &[("frontend/10-hold", &script, 0o755)]);
    let mut run = create_cmd(
        c,
        &on_subnet(BUSYBOX, "8", subnet, &["--context-folder", &ctx.arg()]),
    )
    .spawn();
    let fe = format!("{}-frontend", c.n());
    wait_until(Duration::from_secs(60), "the front-end to run", || {
        assert!(run.is_running(), "the create ended before it was {until}");
        container_states(c.n()).get(&fe).map(String::as_str) == Some("running")
    });
    (run, ctx)
}

#[track_caller]
pub fn create(c: &Cluster, args: &[&str]) -> Out {
    try_create(c, args).ok()
}

/// `mcc inspect <cluster> --output json`.
#[track_caller]
pub fn inspect(c: &Cluster) -> serde_json::Value {
    let out = mcc(["inspect", c.n(), "--output", "json"]).run().ok();
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("inspect JSON does not parse: {e}\n{}", out.describe()))
}

/// `node name -> (ip, state)` from inspect JSON.
pub fn node_table(view: &serde_json::Value) -> BTreeMap<String, (String, String)> {
    view["nodes"]
        .as_array()
        .expect("nodes array")
        .iter()
        .map(|n| {
            (
                n["name"].as_str().expect("node name").to_string(),
                (
                    n["ip"].as_str().unwrap_or("-").to_string(),
                    n["state"].as_str().expect("node state").to_string(),
                ),
            )
        })
        .collect()
}

/// `mcc exec <cluster> --on <on> -- sh -c <script>`.
pub fn sh(c: &Cluster, on: &str, script: &str) -> Out {
    mcc(["exec", c.n(), "--on", on, "--", "sh", "-c", script]).run()
}

/// The text each node printed for `mcc exec` (stdout lines joined).
pub fn per_node(out: &Out) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = BTreeMap::new();
    for (node, text) in out.node_lines() {
        let e = m.entry(node).or_default();
        e.push_str(&text);
        e.push('\n');
    }
    m
}

/// Checks that each of `nodes` printed exactly `want(node)` in `out` (of
/// `mcc exec`); the failure message is `msg` followed by the whole output.
#[track_caller]
pub fn assert_each_printed(out: &Out, nodes: &[&str], msg: &str, want: impl Fn(&str) -> String) {
    let per = per_node(out);
    for node in nodes {
        assert_eq!(
            per.get(*node).map(String::as_str),
            Some(want(node).as_str()),
            "{msg}{}",
            out.describe()
        );
    }
}

/// Every node's /etc/hosts (`mcc exec -- cat /etc/hosts`), checked to come
/// from `count` nodes.
#[track_caller]
pub fn hosts_files(c: &Cluster, count: usize, when: &str) -> BTreeMap<String, String> {
    let out = mcc(["exec", c.n(), "--", "cat", "/etc/hosts"]).run().ok();
    let per = per_node(&out);
    assert_eq!(per.len(), count, "{when}: {}", out.describe());
    per
}

/// Every node of `from` (run on as `--on <on>`) pings every name of
/// `ip_of` and reaches it at that address.
#[track_caller]
pub fn assert_reach<V: std::fmt::Display>(
    c: &Cluster,
    on: &str,
    from: &[&str],
    ip_of: &BTreeMap<String, V>,
    when: &str,
) {
    let names: Vec<&str> = ip_of.keys().map(String::as_str).collect();
    let script = format!(
        "for h in {}; do \
           if out=$(ping -c1 -W2 \"$h\" 2>&1); then \
             echo \"ok $h $(echo \"$out\" | sed -n '1s/^PING [^ ]* (\\([0-9.]*\\)).*/\\1/p')\"; \
           else echo \"FAIL $h\"; fi; \
         done",
        names.join(" ")
    );
    let out = sh(c, on, &script).ok();
    let lines = out.node_lines();
    for node in from {
        for (to, ip) in ip_of {
            let want = format!("ok {to} {ip}");
            assert!(
                lines.iter().any(|(n, t)| n == node && *t == want),
                "{when}: {node} cannot reach {to} at {ip}\n{}",
                out.describe()
            );
        }
    }
}

/// The node entries of a hosts file: `first name -> (ip, all names)`,
/// leaving out comments and the localhost lines.
pub fn hosts_entries(text: &str) -> BTreeMap<String, (String, Vec<String>)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let ip = f.next()?.to_string();
            let names: Vec<String> = f.map(str::to_string).collect();
            if ip == "127.0.0.1" || ip == "::1" || names.is_empty() {
                return None;
            }
            Some((names[0].clone(), (ip, names)))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// files

/// A context folder holding `(path, content, mode)` scripts.
pub fn context_folder(tag: &str, scripts: &[(&str, &str, u32)]) -> TempDir {
    let ctx = TempDir::new(tag);
    for (rel, content, mode) in scripts {
        ctx.write(rel, content, *mode);
    }
    ctx
}

/// A temporary directory, removed when dropped.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("mcc-it-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("creating a temp dir");
        TempDir { path }
    }

    /// Writes `rel` (creating its folders) with the given mode.
    pub fn write(&self, rel: &str, content: &str, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = self.path.join(rel);
        std::fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&p, content).expect("writing a test file");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        p
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn arg(&self) -> String {
        self.path.display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The repository's root (for examples/).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// node identity: addresses and volumes as the engine has them

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

// ---------------------------------------------------------------------------
// the docker CLI, for what the tests do behind mcc's back

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

// ---------------------------------------------------------------------------
// the daemon

/// A free TCP port on the loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// An answer of the daemon.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    /// The error code and message of an error answer.
    pub fn error(&self) -> (String, String) {
        let v = self.json();
        (
            v["error"]["code"].as_str().unwrap_or_default().to_string(),
            v["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    }

    /// Each line, as JSON (an NDJSON answer).
    pub fn lines(&self) -> Vec<serde_json::Value> {
        self.body
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("line not JSON ({e}): {l}")))
            .collect()
    }
}

/// The run containers whose command holds `marker`: this test's own, on
/// an engine that may hold others'.
pub fn run_containers(marker: &str) -> Vec<String> {
    let out = docker_ok(&[
        "ps",
        "-a",
        "--no-trunc",
        "--filter",
        "label=mcc.role=run",
        "--format",
        "{{.ID}} {{.Command}}",
    ]);
    let mut v: Vec<String> = out
        .lines()
        .filter(|l| l.contains(marker))
        .filter_map(|l| l.split_whitespace().next())
        .map(|id| id[..12].to_string())
        .collect();
    v.sort();
    v
}

/// An `mcc serve` of a test, on its own state directory and port; stopped
/// (SIGTERM) when dropped.
pub struct Daemon {
    child: Option<Child>,
    pub root: TempDir,
    pub port: u16,
    pub url: String,
    pub token: String,
    pub secret: String,
    extra: Vec<String>,
    http: reqwest::blocking::Client,
}

impl Daemon {
    pub fn start(tag: &str) -> Daemon {
        Daemon::start_with(tag, &[])
    }

    pub fn start_with(tag: &str, extra: &[&str]) -> Daemon {
        require_engine_and_images();
        let mut d = Daemon {
            child: None,
            root: TempDir::new(&format!("serve-{tag}")),
            port: free_port(),
            url: String::new(),
            token: String::new(),
            secret: String::new(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("an HTTP client"),
        };
        d.url = format!("http://127.0.0.1:{}", d.port);
        d.spawn();
        let creds = std::fs::read_to_string(d.state().join("credentials"))
            .expect("the daemon wrote its credentials");
        for line in creds.lines() {
            match line.split_once('=') {
                Some(("MCC_ACCESS_TOKEN", v)) => d.token = v.to_string(),
                Some(("MCC_SECRET_KEY", v)) => d.secret = v.to_string(),
                Some(("MCC_ENDPOINT_URL", v)) => assert_eq!(v, d.url, "credentials: {creds}"),
                _ => {}
            }
        }
        assert!(
            !d.token.is_empty() && !d.secret.is_empty(),
            "credentials: {creds}"
        );
        d
    }

    pub fn state(&self) -> PathBuf {
        self.root.path().join("state")
    }

    pub fn log_path(&self) -> PathBuf {
        self.root.path().join("serve.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// `mcc serve` on this daemon's state directory and port, as a command.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(bin());
        cmd.arg("serve")
            .arg("--state-dir")
            .arg(self.state())
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .args(&self.extra)
            .stdin(Stdio::null());
        for k in REMOTE_VARS {
            cmd.env_remove(k);
        }
        cmd
    }

    /// Starts the process and waits until it answers.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("the daemon's log file");
        let child = self
            .command()
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {} serve: {e}", bin()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("mcc serve exited ({status}) at start:\n{}", self.log());
            }
            let up = self
                .http
                .get(format!("{}/healthz", self.url))
                .send()
                .is_ok_and(|r| r.status().is_success());
            if up {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "mcc serve did not answer:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("a running daemon").id()
    }

    /// SIGKILL: the daemon gets no chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, and its exit status once it has stopped.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let mut c = self.child.take().expect("a running daemon");
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = c.try_wait().expect("waiting for mcc serve") {
                return s;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                panic!(
                    "mcc serve did not stop on SIGTERM within {timeout:?}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A request with the given headers, unsigned.
    pub fn raw(&self, method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> Answer {
        let mut req = self.http.request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("a method"),
            format!("{}{path}", self.url),
        );
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let res = req
            .body(body.to_vec())
            .send()
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", self.log()));
        Answer {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body: res.text().unwrap_or_default(),
        }
    }

    /// A request signed with a given token and secret.
    pub fn request_as(
        &self,
        token: &str,
        secret: &str,
        method: &str,
        path: &str,
        body: &str,
    ) -> Answer {
        let headers = mcc_api::sign::sign(method, path, body.as_bytes(), token, secret);
        let headers: Vec<(&str, String)> = headers.into_iter().collect();
        self.raw(method, path, &headers, body.as_bytes())
    }

    /// A request signed with the admin token.
    pub fn request(&self, method: &str, path: &str, body: &str) -> Answer {
        self.request_as(&self.token, &self.secret, method, path, body)
    }

    /// Follows an operation to its end; its final state.
    pub fn wait_op(&self, id: &str) -> serde_json::Value {
        let a = self.request("GET", &format!("/api/v1/operations/{id}?follow=true"), "");
        assert_eq!(a.status, 200, "{a:?}");
        let lines = a.lines();
        let last = lines.last().expect("at least the done line");
        assert_eq!(last["type"], "done", "{lines:?}");
        last["operation"].clone()
    }

    /// An mcc command through this daemon.
    pub fn mcc<I, S>(&self, args: I) -> Mcc
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        mcc(args)
            .env("MCC_ENDPOINT_URL", &self.url)
            .env("MCC_ACCESS_TOKEN", &self.token)
            .env("MCC_SECRET_KEY", &self.secret)
    }

    /// `mcc service create NAME --cluster C --image busybox --replicas N`
    /// then `rest` (more flags, `--` and the command), through this
    /// daemon; it must succeed.
    pub fn busybox_service(&self, c: &Cluster, name: &str, replicas: &str, rest: &[&str]) -> Out {
        let mut args = vec![
            "service",
            "create",
            name,
            "--cluster",
            c.n(),
            "--image",
            BUSYBOX,
            "--replicas",
            replicas,
        ];
        args.extend_from_slice(rest);
        self.mcc(args).run().ok()
    }
}

/// A cluster of `workers` Docker workers on the test subnet `block`.
pub fn docker_workers_cluster(tag: &str, workers: &str, block: u8) -> Cluster {
    let c = Cluster::new(tag);
    create(
        &c,
        &on_subnet(
            DOCKER_IMAGE,
            workers,
            &test_subnet(block),
            &["--docker-workers"],
        ),
    );
    c
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            if std::thread::panicking() {
                eprintln!("--- mcc serve log ---\n{}", self.log());
            }
            let _ = self.terminate(Duration::from_secs(60));
        }
    }
}

// ---------------------------------------------------------------------------
// a private engine

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

    fn command(&self, verb: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(repo_root().join("scripts/private-engine"));
        cmd.arg(verb)
            .arg(&self.name)
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    #[track_caller]
    fn script(&self, verb: &str, args: &[&str]) -> std::process::Output {
        let out = self
            .command(verb, args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run scripts/private-engine: {e}"));
        assert!(
            out.status.success(),
            "scripts/private-engine {verb} {}: {}\n{}",
            self.name,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        match self.command("stop", &[]).output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "scripts/private-engine stop {}: {}\n{}",
                self.name,
                o.status,
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("cannot run scripts/private-engine stop {}: {e}", self.name),
        }
    }
}
