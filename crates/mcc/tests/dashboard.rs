//! The dashboard, driven in headless Chromium over WebDriver (Debian's
//! `chromium` and `chromium-driver`): sign in, see the cluster's workers
//! and replicas, kill a worker, and see the page follow without a reload.
//! And the session's locks: the cookie's attributes, sign-in from another
//! origin refused, the cookie never opening `/api`.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::*;
use serde_json::{json, Value};

/// A chromedriver of this test's own, and one browser session in it.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::blocking::Client,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    fn start() -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run chromedriver ({e}): install Debian's chromium and \
                     chromium-driver (scripts/install-deps does)"
                )
            });
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        while http.get(format!("{base}/status")).send().is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut b = Browser {
            driver,
            base,
            session: String::new(),
            http,
        };
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000"
            ]}
        }}});
        let v = b.call("POST", "/session", Some(caps));
        b.session = v["sessionId"].as_str().expect("a session").to_string();
        b
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = if path == "/session" {
            format!("{}{path}", self.base)
        } else {
            format!("{}/session/{}{path}", self.base, self.session)
        };
        let req = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self.http.post(&url).json(&body.unwrap_or(json!({}))),
        };
        let res = req.send().expect("chromedriver answers");
        let status = res.status();
        let v: Value = res.json().expect("WebDriver JSON");
        assert!(
            status.is_success(),
            "WebDriver {method} {path}: {status} {v}"
        );
        v["value"].clone()
    }

    fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    fn find(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT].as_str().expect("an element").to_string()
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.call(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        );
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.call("POST", &format!("/element/{e}/click"), None);
    }

    fn js(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Waits until `script` returns true; the page's text in the failure.
    #[track_caller]
    fn until(&self, script: &str, what: &str) {
        let start = Instant::now();
        loop {
            if self.js(script) == json!(true) {
                return;
            }
            if start.elapsed() > Duration::from_secs(60) {
                let text = self.js("return document.body.innerText");
                panic!(
                    "the dashboard never showed {what}:\n{}",
                    text.as_str().unwrap_or("")
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn screenshot(&self) -> Vec<u8> {
        let v = self.call("GET", "/screenshot", None);
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64"))
            .expect("a PNG")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self
                .http
                .delete(format!("{}/session/{}", self.base, self.session))
                .send();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[test]
fn the_dashboard_signs_in_and_follows_a_worker_failure_live() {
    let c = docker_workers_cluster("dash", "2", 239);
    let d = Daemon::start("dash");
    d.busybox_service(&c, "web", "2", &["--", "sleep", "86400"]);

    let b = Browser::start();
    b.goto(&format!("{}/", d.url));
    b.until(
        "return !document.getElementById('login').hidden",
        "the sign-in form",
    );
    b.type_into("#token", &d.token);
    b.type_into("#secret", "not-the-secret");
    b.click("#signin");
    b.until(
        "return document.getElementById('login-error').textContent.includes('Unauthorized')",
        "a refused sign-in",
    );
    b.type_into("#secret", &d.secret);
    b.click("#signin");
    let sel = |w: &str| format!("[data-cluster='{}'] [data-worker='{w}']", c.n());
    let healthy = |w: &str| {
        format!(
            "const e = document.querySelector(\"{}\"); return !!e && !e.classList.contains('down')",
            sel(w)
        )
    };
    b.until(&healthy("node01"), "node01 healthy");
    b.until(&healthy("node02"), "node02 healthy");
    b.until(
        &format!(
            "return document.querySelectorAll(\"[data-cluster='{}'] .chip.running\").length === 2",
            c.n()
        ),
        "two running replicas",
    );
    b.until(
        "return document.getElementById('live').textContent === 'live'",
        "the live event stream",
    );

    // the session cookie: HttpOnly, SameSite=Strict
    let cookies = b.call("GET", "/cookie", None);
    let session = cookies
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "mcc_session")
        .unwrap_or_else(|| panic!("no session cookie: {cookies}"))
        .clone();
    assert_eq!(session["httpOnly"], true, "{session}");
    assert_eq!(session["sameSite"], "Strict", "{session}");
    assert_eq!(
        b.js("return document.cookie.includes('mcc_session')"),
        json!(false),
        "scripts can read the session"
    );

    // a worker dies: the page shows it down and both replicas on node01
    docker_ok(&["kill", &format!("{}-node02", c.n())]);
    b.until(
        &format!(
            "const e = document.querySelector(\"{}\"); return !!e && e.classList.contains('down')",
            sel("node02")
        ),
        "node02 down",
    );
    b.until(
        &format!(
            "return document.querySelectorAll(\"{} .chip.running\").length === 2",
            sel("node01")
        ),
        "both replicas on node01",
    );
    b.until(
        "return document.getElementById('events').textContent.includes('relocated from node02')",
        "the relocation in the event list",
    );
    let png = b.screenshot();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::write(&out, &png).unwrap();
    eprintln!("dashboard screenshot: {}", out.display());

    // the session's locks, without the browser
    let cookie = format!("mcc_session={}", session["value"].as_str().unwrap());
    let http = reqwest::blocking::Client::new();
    let a = http
        .get(format!("{}/api/v1/clusters", d.url))
        .header("Cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(a.status(), 401, "the cookie opened /api");
    let a = http
        .get(format!("{}/ui/state", d.url))
        .header("Cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(a.status(), 200);
    let a = http.get(format!("{}/ui/state", d.url)).send().unwrap();
    assert_eq!(a.status(), 401, "state without a session");
    let login = json!({"token": d.token, "secret": d.secret}).to_string();
    let a = http
        .post(format!("{}/ui/login", d.url))
        .header("Origin", "http://evil.example")
        .header("Content-Type", "application/json")
        .body(login.clone())
        .send()
        .unwrap();
    assert_eq!(a.status(), 403, "sign-in from another origin");
    let a = http
        .post(format!("{}/ui/login", d.url))
        .header("Content-Type", "application/json")
        .body(login)
        .send()
        .unwrap();
    assert_eq!(a.status(), 403, "sign-in without an origin");
    let csp = http
        .get(format!("{}/", d.url))
        .send()
        .unwrap()
        .headers()
        .get("content-security-policy")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    // signing out ends the session
    b.click("#logout");
    b.until(
        "return !document.getElementById('login').hidden",
        "the sign-in form again",
    );
    let a = http
        .get(format!("{}/ui/state", d.url))
        .header("Cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(a.status(), 401, "the session outlived sign-out");
}
