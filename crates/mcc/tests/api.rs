//! The daemon's API as a contract: every route's shape, every way a
//! request can fail authentication, bad bodies answered 4xx with a
//! message that names the field, and the daemon's own life (credentials,
//! a second daemon, SIGTERM and SIGKILL in the middle of a create).

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// The one answer every authentication failure gets.
fn assert_unauthorized(a: &Answer, what: &str) {
    assert_eq!(a.status, 401, "{what}: {a:?}");
    assert_eq!(
        a.body, r#"{"error":{"code":"unauthorized","message":"unauthorized"}}"#,
        "{what}: the body must not say which part was wrong"
    );
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn headers_at(
    d: &Daemon,
    method: &str,
    path: &str,
    body: &str,
    ts: u64,
    nonce: &str,
) -> Vec<(&'static str, String)> {
    mcc_api::sign::sign_at(
        method,
        path,
        body.as_bytes(),
        &d.token,
        &d.secret,
        ts,
        nonce,
    )
}

#[test]
fn every_authentication_failure_is_the_same_401() {
    let d = Daemon::start("auth");
    let path = "/api/v1/clusters";
    // healthz needs nothing
    let a = d.raw("GET", "/healthz", &[], b"");
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.json()["status"], "ok");

    assert_unauthorized(&d.raw("GET", path, &[], b""), "no headers");
    let good = |nonce: &str| headers_at(&d, "GET", path, "", now(), nonce);

    let mut h = good("nonce-unknown-token-1");
    h[0].1 = "mcc_000000000000000000000000".into();
    assert_unauthorized(&d.raw("GET", path, &h, b""), "unknown token");

    let mut h = good("nonce-bad-signature-1");
    let sig = h
        .iter_mut()
        .find(|(k, _)| *k == mcc_api::sign::HEADER_SIGNATURE)
        .unwrap();
    sig.1 = "00".repeat(32);
    assert_unauthorized(&d.raw("GET", path, &h, b""), "bad signature");

    // 310, not 301: both sides count whole seconds, and 301 can meet the
    // daemon's clock one second later as 300, inside the window
    let h = headers_at(&d, "GET", path, "", now() - 310, "nonce-too-old-000001");
    assert_unauthorized(
        &d.raw("GET", path, &h, b""),
        "timestamp 310 s old (the window is 300 s)",
    );
    let h = headers_at(&d, "GET", path, "", now() + 310, "nonce-too-new-000001");
    assert_unauthorized(&d.raw("GET", path, &h, b""), "timestamp 310 s ahead");

    let h = headers_at(&d, "GET", path, "", now(), "short");
    assert_unauthorized(&d.raw("GET", path, &h, b""), "nonce too short");

    // signed for another path, query or body
    let h = headers_at(
        &d,
        "GET",
        "/api/v1/operations",
        "",
        now(),
        "nonce-other-path-0001",
    );
    assert_unauthorized(&d.raw("GET", path, &h, b""), "signature of another path");
    let h = headers_at(
        &d,
        "GET",
        "/api/v1/operations?limit=1",
        "",
        now(),
        "nonce-other-query-001",
    );
    assert_unauthorized(
        &d.raw("GET", "/api/v1/operations?limit=2", &h, b""),
        "signature of another query",
    );
    let h = headers_at(
        &d,
        "POST",
        "/api/v1/gc",
        "{}",
        now(),
        "nonce-other-body-0001",
    );
    assert_unauthorized(
        &d.raw("POST", "/api/v1/gc", &h, br#"{"volumes":true}"#),
        "a changed body",
    );
    let h = headers_at(&d, "DELETE", path, "", now(), "nonce-other-method-01");
    assert_unauthorized(&d.raw("GET", path, &h, b""), "signature of another method");

    // a replayed request: the first passes, the same again does not
    let h = good("nonce-replayed-000001");
    assert_eq!(d.raw("GET", path, &h, b"").status, 200);
    assert_unauthorized(&d.raw("GET", path, &h, b""), "replayed nonce");

    // a refused request does not use up its nonce
    let mut h = good("nonce-retried-0000001");
    let right = h[3].1.clone();
    h[3].1 = "11".repeat(32);
    assert_unauthorized(&d.raw("GET", path, &h, b""), "bad signature first");
    h[3].1 = right;
    assert_eq!(
        d.raw("GET", path, &h, b"").status,
        200,
        "the same nonce, now signed"
    );

    // the metrics need a token too (unless --public-metrics)
    assert_unauthorized(
        &d.raw("GET", "/metrics", &[], b""),
        "metrics without a token",
    );
    assert_eq!(d.request("GET", "/metrics", "").status, 200);

    // the secret key is never logged
    assert!(!d.log().contains(&d.secret), "the log shows the secret key");
}

#[test]
fn tokens_read_only_revoked_and_rate_limited() {
    let d = Daemon::start_with("tokens", &["--rate-limit", "20"]);
    // the credentials file: private, sourceable
    let creds = d.state().join("credentials");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "credentials mode");
    let text = std::fs::read_to_string(&creds).unwrap();
    assert!(
        text.starts_with("MCC_ENDPOINT_URL=http://127.0.0.1:"),
        "{text}"
    );
    let st = std::process::Command::new("sh")
        .args([
            "-c",
            ". \"$1\" && test -n \"$MCC_ACCESS_TOKEN\" && test -n \"$MCC_SECRET_KEY\"",
            "sh",
        ])
        .arg(&creds)
        .status()
        .unwrap();
    assert!(st.success(), "a shell cannot source the credentials");
    // the database never holds a secret
    let db = std::fs::read(d.state().join("mcc.db")).unwrap_or_default();
    let wal = std::fs::read(d.state().join("mcc.db-wal")).unwrap_or_default();
    let hay = [db, wal].concat();
    assert!(
        !hay.windows(d.secret.len())
            .any(|w| w == d.secret.as_bytes()),
        "the admin's secret key is in the database"
    );

    // a read-only token made with the CLI
    let out = d
        .mcc([
            "token",
            "create",
            "--name",
            "viewer",
            "--read-only",
            "--output",
            "json",
        ])
        .run()
        .ok();
    let t: Value = serde_json::from_str(&out.stdout).unwrap();
    let (ro, ro_secret) = (
        t["token"].as_str().unwrap().to_string(),
        t["secret-key"].as_str().unwrap().to_string(),
    );
    assert_eq!(t["read-only"], true);
    assert_eq!(
        d.request_as(&ro, &ro_secret, "GET", "/api/v1/clusters", "")
            .status,
        200
    );
    let a = d.request_as(&ro, &ro_secret, "POST", "/api/v1/gc", "{}");
    assert_eq!(a.status, 403, "{a:?}");
    assert_eq!(a.error().0, "forbidden");
    let a = d.request_as(&ro, &ro_secret, "DELETE", "/api/v1/clusters/whatever", "");
    assert_eq!(a.status, 403, "{a:?}");
    let a = d.request_as(&ro, &ro_secret, "GET", "/api/v1/tokens", "");
    assert_eq!(a.status, 403, "a read-only token lists tokens: {a:?}");
    // and through the CLI, with the seed's CC_* names
    let out = mcc(["delete", "whatever"])
        .local()
        .env("CC_ENDPOINT_URL", &d.url)
        .env("CC_ACCESS_TOKEN", &ro)
        .env("CC_SECRET_KEY", &ro_secret)
        .run();
    assert_eq!(out.code(), 1, "{}", out.describe());
    assert!(out.stderr.contains("read-only"), "{}", out.describe());

    let list = d.mcc(["token", "list"]).run().ok();
    assert!(
        list.stdout.contains("viewer") && list.stdout.contains("read-only"),
        "{}",
        list.describe()
    );
    assert!(
        !list.stdout.contains(&ro_secret),
        "token list shows a secret"
    );

    // revoked: refused from then on
    d.mcc(["token", "revoke", &ro]).run().ok();
    assert_unauthorized(
        &d.request_as(&ro, &ro_secret, "GET", "/api/v1/clusters", ""),
        "revoked token",
    );
    let a = d.request("DELETE", &format!("/api/v1/tokens/{ro}"), "");
    assert_eq!(a.status, 404, "{a:?}");

    // the rate limit, 20 a second per token: one client going as fast as
    // it can is slowed to the rate (its requests wait their turn), never
    // refused
    let start = std::time::Instant::now();
    let codes: Vec<u16> = (0..40)
        .map(|_| d.request("GET", "/api/v1/operations", "").status)
        .collect();
    assert!(codes.iter().all(|c| *c == 200), "{codes:?}");
    // 20 at once (the burst), then 20 more at 20 a second
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "40 requests at 20/s took {:?}",
        start.elapsed()
    );
    // many at once: those that would wait more than 2 s get 429 with
    // Retry-After
    std::thread::sleep(Duration::from_millis(2100));
    let answers: Vec<Answer> = std::thread::scope(|s| {
        let d = &d;
        let handles: Vec<_> = (0..90)
            .map(|_| s.spawn(move || d.request("GET", "/api/v1/operations", "")))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let limited: Vec<&Answer> = answers.iter().filter(|a| a.status == 429).collect();
    assert!(
        !limited.is_empty() && limited.len() < 90,
        "90 at once at 20/s: {:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    assert!(answers.iter().all(|a| a.status == 200 || a.status == 429));
    for a in limited {
        assert_eq!(a.error().0, "rate_limited", "{a:?}");
        let after: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=3).contains(&after), "{a:?}");
    }
    std::thread::sleep(Duration::from_millis(2100));
    let a = d.request("GET", "/api/v1/operations", "");
    assert_eq!(a.status, 200, "after a second the token may go on: {a:?}");
}

#[test]
fn bad_requests_are_4xx_naming_what_is_wrong() {
    let d = Daemon::start("bad");
    let c = Cluster::new("api-bad");
    let cases: Vec<(&str, String, &str, u16, &str)> = vec![
        (
            "POST",
            "/api/v1/clusters".into(),
            "{not json",
            400,
            "not valid JSON",
        ),
        (
            "POST",
            "/api/v1/clusters".into(),
            r#"{"nodes":"x","image":"a"}"#,
            422,
            "nodes",
        ),
        (
            "POST",
            "/api/v1/clusters".into(),
            r#"{"nodez":2,"image":"a"}"#,
            422,
            "nodez",
        ),
        (
            "POST",
            "/api/v1/clusters".into(),
            r#"{"name":"Bad_Name!","image":"a"}"#,
            422,
            "Bad_Name!",
        ),
        (
            "POST",
            "/api/v1/clusters".into(),
            r#"{"name":"x1","image":"a","context-folder":"/etc"}"#,
            422,
            "context-folder",
        ),
        (
            "POST",
            "/api/v1/clusters".into(),
            r#"{"name":"x1","image":"a","context":"%%%"}"#,
            422,
            "base64",
        ),
        (
            "POST",
            "/api/v1/clusters".into(),
            r#"{"name":"x1","image":"a","timeout":"soon"}"#,
            422,
            "timeout",
        ),
        (
            "POST",
            "/api/v1/clusters".into(),
            r#"{"name":"x1","image":"a","subnet":"10.0.0.0/99"}"#,
            422,
            "10.0.0.0/99",
        ),
        (
            "GET",
            format!("/api/v1/clusters/{}", c.n()),
            "",
            404,
            "does not exist",
        ),
        (
            "GET",
            "/api/v1/clusters/NOT_A_NAME".into(),
            "",
            422,
            "NOT_A_NAME",
        ),
        (
            "POST",
            format!("/api/v1/clusters/{}/nodes", c.n()),
            r#"{"count":0}"#,
            422,
            "count",
        ),
        (
            "POST",
            format!("/api/v1/clusters/{}/nodes", c.n()),
            r#"{"count":1}"#,
            404,
            "does not exist",
        ),
        (
            "POST",
            format!("/api/v1/clusters/{}/delnode", c.n()),
            r#"{}"#,
            422,
            "nodes",
        ),
        (
            "POST",
            format!("/api/v1/clusters/{}/delnode", c.n()),
            r#"{"nodes":["frontend!"]}"#,
            422,
            "frontend!",
        ),
        (
            "POST",
            format!("/api/v1/clusters/{}/recreate", c.n()),
            r#"{"nodes":["node01"],"timeout":-1}"#,
            422,
            "timeout",
        ),
        (
            "POST",
            format!("/api/v1/clusters/{}/exec", c.n()),
            r#"{"command":[]}"#,
            422,
            "command",
        ),
        (
            "POST",
            format!("/api/v1/clusters/{}/exec", c.n()),
            r#"{"command":["true"],"on":"nodes;rm"}"#,
            422,
            "nodes;rm",
        ),
        (
            "POST",
            format!("/api/v1/clusters/{}/start", c.n()),
            "",
            404,
            "does not exist",
        ),
        (
            "GET",
            format!("/api/v1/clusters/{}/logs?node=x;y", c.n()),
            "",
            422,
            "x;y",
        ),
        (
            "GET",
            format!(
                "/api/v1/clusters/{}/nodes/frontend/attach?command=notjson",
                c.n()
            ),
            "",
            422,
            "command",
        ),
        (
            "POST",
            "/api/v1/gc".into(),
            r#"{"clusters":["BAD!"]}"#,
            422,
            "BAD!",
        ),
        (
            "POST",
            "/api/v1/gc".into(),
            r#"{"clusters":"all"}"#,
            422,
            "clusters",
        ),
        (
            "POST",
            "/api/v1/tokens".into(),
            r#"{"name":"a b"}"#,
            422,
            "name",
        ),
        (
            "GET",
            "/api/v1/operations/op-missing".into(),
            "",
            404,
            "op-missing",
        ),
        (
            "DELETE",
            "/api/v1/operations/op-missing".into(),
            "",
            404,
            "op-missing",
        ),
        (
            "GET",
            "/api/v1/nothing-here".into(),
            "",
            404,
            "no such route",
        ),
        // the CC verbs' routes
        (
            "POST",
            "/api/v1/vpcs".into(),
            r#"{"name":"n","cidr":"10.1.2.3/33"}"#,
            422,
            "10.1.2.3/33",
        ),
        (
            "POST",
            "/api/v1/volumes".into(),
            r#"{"name":"n","size":"lots"}"#,
            422,
            "lots",
        ),
        (
            "POST",
            "/api/v1/containers".into(),
            r#"{"image":"busybox","cmd":["true"],"volumes":["vol-0badc0de"]}"#,
            422,
            "ID:PATH",
        ),
        (
            "POST",
            "/api/v1/containers/address".into(),
            r#"{"id":"0123456789ab","port":0}"#,
            422,
            "port",
        ),
        (
            "POST",
            "/api/v1/containers/address".into(),
            r#"{"id":"not an id!","port":80}"#,
            422,
            "not an id!",
        ),
        (
            // a name of the right form that no container of mcc's has
            "POST",
            "/api/v1/containers/address".into(),
            r#"{"id":"not-an-id","port":80}"#,
            404,
            "not-an-id",
        ),
        (
            "POST",
            "/api/v1/containers/address".into(),
            r#"{"id":"0123456789ab","port":80}"#,
            404,
            "no such container",
        ),
        (
            "GET",
            "/api/v1/containers/0123456789ab/forward?port=80".into(),
            "",
            400,
            "WebSocket",
        ),
        (
            "GET",
            "/api/v1/containers/0123456789ab/attach".into(),
            "",
            400,
            "WebSocket",
        ),
    ];
    for (method, path, body, status, names) in cases {
        let a = d.request(method, &path, body);
        assert_eq!(a.status, status, "{method} {path} {body}: {a:?}");
        let (code, message) = a.error();
        assert!(!code.is_empty(), "{method} {path}: no error code: {a:?}");
        assert!(
            message.contains(names),
            "{method} {path} {body}: the message should name '{names}': {message}"
        );
    }
    assert_nothing_labelled(c.n(), "after refused requests");
    assert_nothing_labelled("x1", "after refused creates");
}

/// Routes anyone may call: no signature, no session.
const PUBLIC_ROUTES: [(&str, &str); 6] = [
    ("get", "/healthz"),
    ("get", "/"),
    ("get", "/ui/app.js"),
    ("get", "/ui/app.css"),
    ("post", "/ui/login"),
    ("post", "/ui/logout"),
];

/// What is wrong with one operation of the document, if anything: it
/// has an operationId and a tag; it says who may call it (a signature
/// with one scope, the dashboard's session, or nobody, which only the
/// routes in [`PUBLIC_ROUTES`] may); each 2xx answer but 101 and 204 has
/// a content type with a schema; a request body has a schema.
fn operation_faults(method: &str, path: &str, op: &Value) -> Vec<String> {
    let mut faults = Vec::new();
    if op["operationId"].as_str().is_none_or(str::is_empty) {
        faults.push("no operationId".to_string());
    }
    if op["tags"].as_array().is_none_or(|t| t.is_empty()) {
        faults.push("no tag".to_string());
    }
    let public = PUBLIC_ROUTES.contains(&(method, path));
    match op["security"].as_array().map(Vec::as_slice) {
        Some([req]) => match req.as_object().map(|o| o.iter().collect::<Vec<_>>()) {
            Some(r) if r.is_empty() => {
                if !public {
                    faults.push("callable without credentials, and not a public route".into());
                }
            }
            Some(r) => match r.as_slice() {
                [(scheme, scopes)] if scheme.as_str() == "signature" => {
                    let scopes: Vec<&str> = scopes
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    if !matches!(scopes.as_slice(), ["read" | "write" | "exec" | "tokens"]) {
                        faults.push(format!("signed with scopes {scopes:?}, not exactly one"));
                    }
                }
                [(scheme, _)] if scheme.as_str() == "session" => {
                    if !path.starts_with("/ui/") {
                        faults.push("a session route outside /ui/".into());
                    }
                }
                _ => faults.push(format!("an unknown security requirement {req}")),
            },
            None => faults.push(format!(
                "a security requirement that is not an object: {req}"
            )),
        },
        _ => faults.push(format!(
            "not exactly one security requirement: {}",
            op["security"]
        )),
    }
    if public && op["security"] != json!([{}]) {
        faults.push("a public route that asks for credentials".into());
    }
    let responses = op["responses"].as_object();
    if !responses.is_some_and(|r| r.keys().any(|s| s.starts_with('2') || s == "101")) {
        faults.push("no 2xx or 101 answer".into());
    }
    for (status, r) in responses.into_iter().flatten() {
        if !status.starts_with('2') || status == "204" {
            continue;
        }
        match r["content"].as_object() {
            Some(c) if !c.is_empty() => {
                for (ty, media) in c {
                    if !media["schema"].is_object() {
                        faults.push(format!("the {status} answer as {ty} has no schema"));
                    }
                }
            }
            _ => faults.push(format!("the {status} answer has no content type")),
        }
    }
    if let Some(rb) = op.get("requestBody") {
        let ok = rb["content"]
            .as_object()
            .is_some_and(|c| !c.is_empty() && c.values().all(|m| m["schema"].is_object()));
        if !ok {
            faults.push("a request body without a schema".into());
        }
    }
    faults
}

/// Every route the router serves (as utoipa-axum registered it, so the
/// served document is the router's) is in the document, with who may
/// call it and the shape of what it takes and answers.
#[test]
fn openapi_describes_every_route_the_router_serves() {
    let d = Daemon::start("openapi");
    let a = d.request("GET", "/api/v1/openapi.json", "");
    assert_eq!(a.status, 200, "{a:?}");
    let doc = a.json();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    let served = mcc_daemon::served_routes();
    assert!(served.len() >= 46, "{served:?}");
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    documented.sort();
    assert_eq!(
        documented, served,
        "the served document lists other routes than the router serves"
    );
    let mut faults = Vec::new();
    for (method, path) in &served {
        let op = &doc["paths"][path][method];
        for f in operation_faults(method, path, op) {
            faults.push(format!("{} {path}: {f}", method.to_uppercase()));
        }
    }
    assert!(faults.is_empty(), "openapi.json:\n{}", faults.join("\n"));
    // the public routes are routes
    for (method, path) in PUBLIC_ROUTES {
        assert!(
            served.contains(&(method.to_string(), path.to_string())),
            "{method} {path} is not served"
        );
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for s in [
        "ClusterView",
        "NodeView",
        "Operation",
        "OperationEvent",
        "ErrorBody",
        "CreateRequest",
        "Event",
    ] {
        assert!(schemas.contains_key(s), "openapi.json lacks the schema {s}");
    }
}

/// Every route on a real cluster, with the shapes clients read.
#[test]
fn every_route_on_a_real_cluster() {
    let d = Daemon::start("routes");
    let c = Cluster::new("api-routes");
    let ctx = context_folder(
        "api-routes",
        &[(
            "all/10-hello",
            "#!/bin/sh\necho hello from $(hostname)\n",
            0o755,
        )],
    );
    // the context folder goes as a base64 tar; the CLI makes it
    let tar = mcc_core::context::pack_folder(ctx.path()).unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(tar);
    let body = json!({"name": c.n(), "image": BUSYBOX, "nodes": 2, "context": b64}).to_string();
    let a = d.request("POST", "/api/v1/clusters", &body);
    assert_eq!(a.status, 202, "{a:?}");
    let op = a.json();
    assert_eq!(op["kind"], "create");
    assert_eq!(op["state"], "running");
    let id = op["id"].as_str().unwrap().to_string();
    assert_eq!(
        a.headers.get("location").unwrap().to_str().unwrap(),
        format!("/api/v1/operations/{id}")
    );
    // followed: progress, then the end with the cluster's view
    let follow = d.request("GET", &format!("/api/v1/operations/{id}?follow=true"), "");
    let lines = follow.lines();
    assert!(lines.iter().any(|l| l["type"] == "begin"), "{lines:?}");
    let done = lines.last().unwrap();
    assert_eq!(done["type"], "done", "{lines:?}");
    assert_eq!(done["operation"]["state"], "succeeded", "{done}");
    assert_eq!(done["operation"]["result"]["name"], c.n());
    // a second create of the name: 409 at once
    let a = d.request(
        "POST",
        "/api/v1/clusters",
        &json!({"name": c.n(), "image": BUSYBOX}).to_string(),
    );
    assert_eq!(a.status, 409, "{a:?}");
    // polled: the same end
    let polled = d
        .request("GET", &format!("/api/v1/operations/{id}"), "")
        .json();
    assert_eq!(polled["state"], "succeeded");
    assert!(polled["finished"].as_u64().unwrap() >= polled["created"].as_u64().unwrap());
    // an ended operation cannot be cancelled
    assert_eq!(
        d.request("DELETE", &format!("/api/v1/operations/{id}"), "")
            .status,
        409
    );
    let ops = d.request("GET", "/api/v1/operations?limit=5", "").json();
    assert!(ops
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["id"] == id.as_str()));

    let list = d.request("GET", "/api/v1/clusters", "").json();
    let mine = list
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == c.n())
        .expect("listed");
    assert_eq!(mine["status"], "running");
    assert_eq!(mine["workers"], 2);
    let view = d
        .request("GET", &format!("/api/v1/clusters/{}", c.n()), "")
        .json();
    assert_eq!(view["nodes"].as_array().unwrap().len(), 3);
    let nodes = d
        .request("GET", &format!("/api/v1/clusters/{}/nodes", c.n()), "")
        .json();
    assert_eq!(nodes.as_array().unwrap().len(), 3);
    let n1 = d
        .request(
            "GET",
            &format!("/api/v1/clusters/{}/nodes/node01", c.n()),
            "",
        )
        .json();
    assert_eq!(n1["role"], "worker");
    assert_eq!(n1["state"], "running");
    let a = d.request(
        "GET",
        &format!("/api/v1/clusters/{}/nodes/node07", c.n()),
        "",
    );
    assert_eq!(a.status, 404, "{a:?}");

    let logs = d
        .request(
            "GET",
            &format!("/api/v1/clusters/{}/logs?node=node02", c.n()),
            "",
        )
        .json();
    assert_eq!(logs[0]["node"], "node02");
    assert!(
        logs[0]["text"]
            .as_str()
            .unwrap()
            .contains("hello from node02"),
        "{logs}"
    );

    let ex = d.request(
        "POST",
        &format!("/api/v1/clusters/{}/exec", c.n()),
        r#"{"on":"workers","command":["sh","-c","hostname; echo err >&2; exit 3"]}"#,
    );
    assert_eq!(ex.status, 200, "{ex:?}");
    assert_eq!(
        ex.headers.get("content-type").unwrap(),
        "application/x-ndjson"
    );
    let lines = ex.lines();
    assert!(
        lines.iter().any(|l| l["type"] == "line"
            && l["node"] == "node01"
            && l["text"] == "node01"
            && l["stderr"] == false),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l["type"] == "line"
            && l["node"] == "node02"
            && l["text"] == "err"
            && l["stderr"] == true),
        "{lines:?}"
    );
    let done = lines.last().unwrap();
    assert_eq!(done["type"], "done");
    assert_eq!(done["results"].as_array().unwrap().len(), 2);
    assert!(
        done["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["exit_code"] == 3),
        "{done}"
    );

    // addnode, delnode (both forms), recreate, stop, start: operations
    let run = |method: &str, path: String, body: &str| -> Value {
        let a = d.request(method, &path, body);
        assert_eq!(a.status, 202, "{method} {path}: {a:?}");
        let end = d.wait_op(a.json()["id"].as_str().unwrap());
        assert_eq!(end["state"], "succeeded", "{method} {path}: {end}");
        end["result"].clone()
    };
    let added = run(
        "POST",
        format!("/api/v1/clusters/{}/nodes", c.n()),
        r#"{"count":2}"#,
    );
    assert_eq!(added.as_array().unwrap().len(), 2, "{added}");
    let v = run(
        "DELETE",
        format!("/api/v1/clusters/{}/nodes/node04", c.n()),
        "",
    );
    assert_eq!(v["workers"], 3, "{v}");
    let v = run(
        "POST",
        format!("/api/v1/clusters/{}/delnode", c.n()),
        r#"{"count":1}"#,
    );
    assert_eq!(v["workers"], 2, "{v}");
    let v = run(
        "POST",
        format!("/api/v1/clusters/{}/recreate", c.n()),
        r#"{"nodes":["node01"]}"#,
    );
    assert_eq!(v["status"], "running", "{v}");
    let v = run("POST", format!("/api/v1/clusters/{}/stop", c.n()), "");
    assert_eq!(v["status"], "stopped", "{v}");
    // the list follows the engine at once (its cache is invalidated)
    let list = d.request("GET", "/api/v1/clusters", "").json();
    let mine = list
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == c.n())
        .unwrap()
        .clone();
    assert_eq!(mine["status"], "stopped", "{mine}");
    let v = run("POST", format!("/api/v1/clusters/{}/start", c.n()), "");
    assert_eq!(v["status"], "running", "{v}");

    // metrics: the cluster's nodes with their resource use (streams,
    // opened at the first scrape: the samples come within seconds)
    let wants = [
        format!("mcc_node_up{{cluster=\"{}\",node=\"frontend\",role=\"frontend\",state=\"running\"}} 1", c.n()),
        format!("mcc_cluster_info{{cluster=\"{}\",status=\"running\"}} 1", c.n()),
        format!("mcc_node_memory_bytes{{cluster=\"{}\",node=\"node01\"}}", c.n()),
        format!("mcc_node_cpu_seconds_total{{cluster=\"{}\",node=\"node02\"}}", c.n()),
        format!("mcc_node_network_receive_bytes_total{{cluster=\"{}\",node=\"frontend\"}}", c.n()),
        "mcc_http_requests_total{method=\"POST\",route=\"/api/v1/clusters\",status=\"202\"}".to_string(),
        // prometheus-client writes `le` first (a label set has no order)
        "mcc_http_request_duration_seconds_bucket{le=\"+Inf\",method=\"GET\",route=\"/api/v1/clusters\",status=\"200\"}".to_string(),
        "mcc_operations_total{kind=\"create\",state=\"succeeded\"}".to_string(),
    ];
    let mut m = String::new();
    let complete = |m: &str| wants.iter().all(|w| m.contains(w.as_str()));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !complete(&m) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        m = d.request("GET", "/metrics", "").body;
    }
    for want in &wants {
        assert!(m.contains(want.as_str()), "/metrics lacks {want}:\n{m}");
    }

    // events: what happened, as JSON lines and as server-sent events
    let ev = d.request("GET", "/api/v1/events?since=0&follow=false", "");
    let evs = ev.lines();
    assert!(
        evs.iter().any(|e| e["kind"] == "operation"
            && e["cluster"] == c.n()
            && e["message"].as_str().unwrap().contains("create succeeded")),
        "{evs:?}"
    );
    assert!(
        evs.iter().any(|e| e["kind"] == "engine"
            && e["cluster"] == c.n()
            && e["message"].as_str().unwrap().contains("start")),
        "{evs:?}"
    );
    let seqs: Vec<u64> = evs.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "events out of order: {seqs:?}"
    );
    let headers = {
        let mut h: Vec<(&str, String)> = mcc_api::sign::sign(
            "GET",
            "/api/v1/events?since=0&follow=false",
            b"",
            &d.token,
            &d.secret,
        )
        .into_iter()
        .collect();
        h.push(("accept", "text/event-stream".into()));
        h
    };
    let sse = d.raw("GET", "/api/v1/events?since=0&follow=false", &headers, b"");
    assert_eq!(
        sse.headers.get("content-type").unwrap(),
        "text/event-stream"
    );
    assert!(
        sse.body.contains("\nevent: operation\ndata: {"),
        "{}",
        sse.body
    );
    let out = d.mcc(["events", "--since", "0", "--no-follow"]).run().ok();
    assert!(
        out.stdout
            .contains(&format!("operation {}: create succeeded", c.n())),
        "{}",
        out.describe()
    );

    let a = d.request("DELETE", &format!("/api/v1/clusters/{}", c.n()), "");
    assert_eq!(a.status, 202);
    let end = d.wait_op(a.json()["id"].as_str().unwrap());
    assert_eq!(end["result"]["existed"], true, "{end}");
    assert_nothing_labelled(c.n(), "after DELETE");
    let a = d.request("POST", "/api/v1/gc", r#"{"clusters":[]}"#);
    let end = d.wait_op(a.json()["id"].as_str().unwrap());
    assert_eq!(end["state"], "succeeded", "{end}");
}

/// A create that is cut short: the daemon SIGKILLed in the middle, then
/// started again on the same state directory.
#[test]
fn daemon_killed_mid_create_reports_failed_and_leaves_nothing() {
    let mut d = Daemon::start("kill");
    let c = Cluster::new("api-kill");
    let ctx = context_folder(
        "api-kill",
        &[("all/10-slow", "#!/bin/sh\nsleep 60\n", 0o755)],
    );
    let out = d
        .mcc([
            "create",
            "--name",
            c.n(),
            "--image",
            BUSYBOX,
            "--nodes",
            "2",
            "--context-folder",
            &ctx.arg(),
        ])
        .spawn();
    // Killed while its scripts run: every node made and the front-end
    // running (its script sleeps), so no request to make a container is
    // still on its way to the engine when the daemon dies. (Killed earlier,
    // a container the engine finished making after the restart's collection
    // stayed behind with the volumes it mounts.)
    let frontend = format!("{}-frontend", c.n());
    wait_until(Duration::from_secs(60), "the nodes of the create", || {
        let states = container_states(c.n());
        states.len() >= 4 && states.get(&frontend).map(String::as_str) == Some("running")
    });
    let ops = d.request("GET", "/api/v1/operations?limit=1", "").json();
    let id = ops[0]["id"].as_str().unwrap().to_string();
    assert_eq!(ops[0]["state"], "running");
    d.kill();
    let out = out.wait(Duration::from_secs(30));
    assert_ne!(out.code(), 0, "the CLI lost its daemon: {}", out.describe());

    d.spawn();
    let op = d
        .request("GET", &format!("/api/v1/operations/{id}"), "")
        .json();
    assert_eq!(op["state"], "failed", "{op}");
    let msg = op["error"]["message"].as_str().unwrap();
    assert!(msg.contains("daemon") && msg.contains("stopped"), "{msg}");
    assert_nothing_labelled(
        c.n(),
        "after the restarted daemon collected the killed create",
    );
    // and nothing is made again behind the user's back
    std::thread::sleep(Duration::from_secs(2));
    assert_nothing_labelled(c.n(), "two seconds after the restart");
    let list = d.request("GET", "/api/v1/clusters", "").json();
    assert!(
        !list.as_array().unwrap().iter().any(|v| v["name"] == c.n()),
        "{list}"
    );
    // the follow stream of the dead operation ends too
    let end = d.wait_op(&id);
    assert_eq!(end["state"], "failed");
}

#[test]
fn sigterm_cancels_a_create_cleanly_and_a_second_daemon_is_refused() {
    let mut d = Daemon::start("term");
    // a second daemon on the same state directory: refused, naming the first
    let out = d
        .command()
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", free_port()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("pid {}", d.pid())), "{err}");

    let c = Cluster::new("api-term");
    let ctx = context_folder(
        "api-term",
        &[("all/10-slow", "#!/bin/sh\nsleep 60\n", 0o755)],
    );
    let tar = mcc_core::context::pack_folder(ctx.path()).unwrap();
    use base64::Engine as _;
    let body = json!({"name": c.n(), "image": BUSYBOX, "nodes": 1,
                      "context": base64::engine::general_purpose::STANDARD.encode(tar)});
    let a = d.request("POST", "/api/v1/clusters", &body.to_string());
    assert_eq!(a.status, 202, "{a:?}");
    let id = a.json()["id"].as_str().unwrap().to_string();
    wait_until(Duration::from_secs(60), "the nodes of the create", || {
        labelled(c.n()).containers.len() >= 2
    });
    let status = d.terminate(Duration::from_secs(90));
    assert!(
        status.success(),
        "mcc serve exited {status} on SIGTERM:\n{}",
        d.log()
    );
    assert_nothing_labelled(c.n(), "after SIGTERM cancelled the create");
    d.spawn();
    let op = d
        .request("GET", &format!("/api/v1/operations/{id}"), "")
        .json();
    assert_eq!(op["state"], "cancelled", "{op}");
}

#[test]
fn the_python_reference_client_signs_like_the_daemon() {
    let d = Daemon::start("python");
    let script = repo_root().join("examples/api/mcc_client.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg("--self-test")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "self-test: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = |args: &[&str]| {
        std::process::Command::new("python3")
            .arg(&script)
            .args(args)
            .env("MCC_ENDPOINT_URL", &d.url)
            .env("MCC_ACCESS_TOKEN", &d.token)
            .env("MCC_SECRET_KEY", &d.secret)
            .output()
            .unwrap()
    };
    let out = run(&["GET", "/api/v1/clusters"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v.is_array(), "{v}");
    let out = run(&["POST", "/api/v1/tokens", r#"{"name":"from-python"}"#]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["name"], "from-python");
    let out = run(&["GET", "/api/v1/clusters/not-there-at-all"]);
    assert_eq!(out.status.code(), Some(1), "a 404 exits 1");
}
