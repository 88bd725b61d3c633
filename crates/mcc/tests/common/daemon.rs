//! `mcc serve` for a test: started on its own state directory and port,
//! with signed requests and its log on failure.

#[allow(unused_imports)]
use super::*;

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
    /// More environment for the process (`start_env`).
    envs: Vec<(String, String)>,
    http: reqwest::blocking::Client,
}

impl Daemon {
    pub fn start(tag: &str) -> Daemon {
        Daemon::start_with(tag, &[])
    }

    pub fn start_with(tag: &str, extra: &[&str]) -> Daemon {
        Daemon::start_env(tag, extra, &[])
    }

    /// `start_with`, the process getting `envs` too (say `MCC_HOSTS_FILE`).
    pub fn start_env(tag: &str, extra: &[&str], envs: &[(&str, &str)]) -> Daemon {
        require_engine_and_images();
        let mut d = Daemon {
            child: None,
            root: TempDir::new(&format!("serve-{tag}")),
            port: free_port(),
            url: String::new(),
            token: String::new(),
            secret: String::new(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            envs: envs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
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
        cmd.envs(self.envs.iter().map(|(k, v)| (k, v)));
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

    /// The service as the daemon shows it.
    pub fn show(&self, c: &Cluster, service: &str) -> serde_json::Value {
        let a = self.request(
            "GET",
            &format!("/api/v1/clusters/{}/services/{service}", c.n()),
            "",
        );
        assert_eq!(a.status, 200, "{}", a.body);
        a.json()
    }

    /// Waits until `service` has `n` replicas running, none on `not_on`, each
    /// index once; the view.
    #[track_caller]
    pub fn converged(
        &self,
        c: &Cluster,
        service: &str,
        n: u32,
        not_on: &[&str],
        why: &str,
    ) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let v = self.show(c, service);
            let inst = v["instances"].as_array().unwrap();
            let running: Vec<&serde_json::Value> =
                inst.iter().filter(|r| r["state"] == "running").collect();
            let mut idx: Vec<u64> = running
                .iter()
                .map(|r| r["replica"].as_u64().unwrap())
                .collect();
            idx.sort();
            idx.dedup();
            let placed_ok = running
                .iter()
                .all(|r| !not_on.contains(&r["worker"].as_str().unwrap()));
            if running.len() == n as usize
                && idx.len() == n as usize
                && placed_ok
                && inst.len() == n as usize
            {
                return v;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{why}: {service} did not converge to {n} running replicas off {not_on:?}: {v:#}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
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
