//! `mcc host` through `mcc serve` (issue 17, item 1), on two engines of
//! this machine (`scripts/hosts`, one swarm): the daemon keeps its hosts
//! in its state directory (`hosts.json`, private) and serves them at
//! `/api/v1/hosts`. Two hosts are added (one through the API, one with
//! the CLI through the daemon), listed as `mcc host list` shows them, a
//! cluster is made over them through the daemon at once (its engine, which
//! started with no host, follows the file), a host that holds nodes is not
//! removed (409, naming them), and goes once the cluster is deleted, after
//! which the daemon places nothing on it. A read-only token changes
//! nothing (403); bad input is refused (422, naming the value) with
//! nothing written.

mod common;

use common::*;

/// A folder under /var/tmp (every engine of this machine sees it) for the
/// cluster's shared volumes, removed at the end.
struct Shared(std::path::PathBuf);

impl Drop for Shared {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn add_body(name: &str, engine: &str, zone: &str) -> String {
    serde_json::json!({"name": name, "engine": engine, "zone": zone}).to_string()
}

#[test]
fn hosts_are_added_listed_and_removed_through_the_daemon() {
    let hosts = Hosts::up("mccha", 2, &[BUSYBOX]);
    let shared = Shared(std::path::PathBuf::from(format!(
        "/var/tmp/mcc-hostapi-{}",
        std::process::id()
    )));
    std::fs::create_dir_all(shared.0.join("export")).unwrap();
    let d = Daemon::start("hostapi");
    let file = d.state().join("hosts.json");

    // a read-only token reads the list, and changes nothing
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
    let t: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let (ro, ro_secret) = (
        t["token"].as_str().unwrap().to_string(),
        t["secret-key"].as_str().unwrap().to_string(),
    );
    let a = d.request_as(&ro, &ro_secret, "GET", "/api/v1/hosts", "");
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.json(), serde_json::json!([]));
    let body = add_body("h1", hosts.docker_host(1), "a");
    let a = d.request_as(&ro, &ro_secret, "POST", "/api/v1/hosts", &body);
    assert_eq!(a.status, 403, "{a:?}");
    let a = d.request_as(&ro, &ro_secret, "DELETE", "/api/v1/hosts/h1", "");
    assert_eq!(a.status, 403, "{a:?}");

    // bad input: refused naming the value, nothing written
    for (body, names) in [
        (add_body("H_1", hosts.docker_host(1), "a"), "H_1"),
        (add_body("h1", "http://10.0.0.9", "a"), "http://10.0.0.9"),
        (add_body("h1", hosts.docker_host(1), "Zone A"), "Zone A"),
        (
            serde_json::json!({"name": "h1", "engine": "tcp://10.0.0.9:2376",
                "tls": {"ca": "ca.pem", "cert": "/c.pem", "key": "/k.pem"}})
            .to_string(),
            "ca.pem",
        ),
        (r#"{"name":"h1"}"#.to_string(), "engine"),
    ] {
        let a = d.request("POST", "/api/v1/hosts", &body);
        assert_eq!(a.status, 422, "{body}: {a:?}");
        assert!(a.error().1.contains(names), "{body}: {a:?}");
    }
    let a = d.request("DELETE", "/api/v1/hosts/H_1", "");
    assert_eq!(a.status, 422, "{a:?}");
    let a = d.request("DELETE", "/api/v1/hosts/h9", "");
    assert_eq!(a.status, 404, "{a:?}");
    assert!(!file.exists(), "a refused add wrote {}", file.display());

    // h1 through the API, h2 with the CLI through the daemon
    let a = d.request(
        "POST",
        "/api/v1/hosts",
        &add_body("h1", hosts.docker_host(1), "a"),
    );
    assert_eq!(a.status, 201, "{a:?}");
    let v = a.json();
    assert_eq!(v["name"], "h1", "{v}");
    assert_eq!(v["reachable"], true, "{v}");
    assert_eq!(v["zone"], "a", "{v}");
    let out = d
        .mcc([
            "host",
            "add",
            "h2",
            "--engine",
            hosts.docker_host(2),
            "--zone",
            "b",
        ])
        .run()
        .ok();
    assert!(out.stdout.contains("host h2 added"), "{}", out.describe());
    // the daemon's file, not the user's: private
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::symlink_metadata(&file)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "{}", file.display());

    // listed as `mcc host list --output json` shows them
    let a = d.request("GET", "/api/v1/hosts", "");
    assert_eq!(a.status, 200, "{a:?}");
    let list = a.json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    for (v, (name, zone)) in list.iter().zip([("h1", "a"), ("h2", "b")]) {
        assert_eq!(v["name"], name, "{v}");
        assert_eq!(v["zone"], zone, "{v}");
        assert_eq!(v["reachable"], true, "{v}");
        assert!(
            ["manager", "leader"].contains(&v["swarm"].as_str().unwrap_or_default()),
            "{v}"
        );
    }
    let out = d.mcc(["host", "list", "--output", "json"]).run().ok();
    let cli: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let names: Vec<&str> = cli
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(names, ["h1", "h2"], "{}", out.describe());

    // the daemon, started with no host, makes a cluster over them at once
    let c = Cluster::new("hostapi");
    let shared_from = format!("file://{}", shared.0.join("export").display());
    let create = |c: &Cluster| {
        d.mcc([
            "create",
            "--name",
            c.n(),
            "--image",
            BUSYBOX,
            "--nodes",
            "1",
            "--hosts",
            "h1,h2",
            "--shared-from",
            &shared_from,
        ])
        .run()
    };
    create(&c).ok();
    let a = d.request("GET", "/api/v1/hosts", "");
    let list = a.json();
    for v in list.as_array().unwrap() {
        assert_eq!(v["clusters"][c.n()], 1, "{v}");
    }
    let nodes = d.mcc(["inspect", c.n(), "--output", "json"]).run().ok();
    let view: serde_json::Value = serde_json::from_str(&nodes.stdout).unwrap();
    let placed: Vec<&str> = view["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["host"].as_str())
        .collect();
    assert_eq!(placed, ["h1", "h2"], "{}", nodes.stdout);
    // a host that holds nodes stays, its nodes named
    let a = d.request("DELETE", "/api/v1/hosts/h2", "");
    assert_eq!(a.status, 409, "{a:?}");
    assert!(a.error().1.contains(c.n()), "{a:?}");
    assert!(
        std::fs::read_to_string(&file).unwrap().contains("\"h2\""),
        "a refused remove changed the list"
    );

    d.mcc(["delete", c.n()]).run().ok();
    let a = d.request("DELETE", "/api/v1/hosts/h2", "");
    assert_eq!(a.status, 204, "{a:?}");
    // the daemon's engine has forgotten h2: nothing is placed on it
    let c2 = Cluster::new("hostapi2");
    let out = create(&c2).code_is(2);
    assert!(out.stderr.contains("'h2'"), "{}", out.describe());
    assert_nothing_labelled(c2.n(), "after the refused create");
    let out = d.mcc(["host", "remove", "h1"]).run().ok();
    assert!(out.stdout.contains("host h1 removed"), "{}", out.describe());
    let a = d.request("GET", "/api/v1/hosts", "");
    assert_eq!(a.json(), serde_json::json!([]), "{a:?}");
    drop(d);
    hosts.down();
}
