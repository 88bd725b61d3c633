//! Running the built `mcc`: one command, a background process, the usual
//! creates and checks of what they made.

#[allow(unused_imports)]
use super::*;

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
    hidden: Option<String>,
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
        hidden: None,
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

    /// Runs in a mount namespace of its own where `path` is an empty
    /// tmpfs: what mcc does there, it cannot do with its own file calls
    /// (the engines, outside, see the real folder).
    pub fn hiding(mut self, path: &str) -> Mcc {
        self.hidden = Some(path.into());
        self
    }

    pub fn stdin(mut self, data: &str) -> Mcc {
        self.stdin = Some(data.as_bytes().to_vec());
        self
    }

    pub fn spawn(self) -> Running {
        let cmdline = format!("mcc {}", self.args.join(" "));
        let mut cmd = match &self.hidden {
            None => Command::new(bin()),
            Some(path) => {
                let mut c = Command::new("unshare");
                c.args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
                    .arg("mount -t tmpfs -o size=1m,mode=0700 mcc-hidden \"$1\" && shift && exec \"$@\"")
                    .args(["mcc-hiding", path.as_str(), bin()]);
                c
            }
        };
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
