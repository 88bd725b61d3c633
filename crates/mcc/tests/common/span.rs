//! A cluster over the engines of `scripts/hosts`, as the multi-host tests
//! drive it: [`Span`] and what they read of the swarm and the cluster.

#[allow(unused_imports)]
use super::*;

use std::time::{SystemTime, UNIX_EPOCH};

/// What a test of a cluster over the hosts of `scripts/hosts` needs: a
/// hosts file listing them all (`h1` … `hK`), a shared folder, and a lock
/// folder per host, so that mcc "on machine i" (its own locks, pointed at
/// engine i) shares no lock file with the others. Removed at the end.
pub struct Span {
    pub dir: PathBuf,
    pub file: String,
    pub export: String,
    pub locks: Vec<String>,
}

impl Span {
    pub fn new(tag: &str, hosts: &Hosts) -> Span {
        // under /var/tmp: a folder every engine of this machine sees
        let dir = PathBuf::from(format!("/var/tmp/mcc-locks-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let export = dir.join("export");
        std::fs::create_dir_all(&export).unwrap();
        let locks = (1..=hosts.count)
            .map(|i| {
                use std::os::unix::fs::PermissionsExt;
                let d = dir.join(format!("locks-{i}"));
                std::fs::create_dir_all(&d).unwrap();
                std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
                d.to_string_lossy().into_owned()
            })
            .collect();
        let s = Span {
            file: dir.join("hosts.json").to_string_lossy().into_owned(),
            export: export.to_string_lossy().into_owned(),
            locks,
            dir,
        };
        for i in 1..=hosts.count {
            let name = format!("h{i}");
            s.from(
                hosts,
                1,
                &["host", "add", &name, "--engine", hosts.docker_host(i)],
            )
            .run()
            .ok();
        }
        s
    }

    /// mcc as on machine `i`: its own lock folder, pointed at engine `i`.
    pub fn from(&self, hosts: &Hosts, i: usize, args: &[&str]) -> Mcc {
        mcc(args)
            .env("MCC_HOSTS_FILE", &self.file)
            .env("DOCKER_HOST", hosts.docker_host(i))
            .env("MCC_LOCK_DIR", &self.locks[i - 1])
            .local()
    }

    pub fn shared(&self) -> String {
        format!("file://{}", self.export)
    }

    /// The cluster's shared folder (`/opt/mcc/shared` in its nodes), as the
    /// hosts see it.
    pub fn shared_folder(&self, cluster: &str) -> PathBuf {
        let vols = PathBuf::from(&self.export).join("mcc-volumes");
        std::fs::read_dir(&vols)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                let n = p.file_name().unwrap().to_string_lossy().into_owned();
                n.starts_with(&format!("{cluster}-")) && n.ends_with(".shared")
            })
            .unwrap_or_else(|| panic!("no shared folder of {cluster} in {}", vols.display()))
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// The swarm configs whose name starts with `prefix`, as host `i` lists them.
pub fn configs(hosts: &Hosts, i: usize, prefix: &str) -> Vec<String> {
    hosts
        .docker_ok(i, &["config", "ls", "--format", "{{.Name}}"])
        .lines()
        .filter(|n| n.starts_with(prefix))
        .map(str::to_string)
        .collect()
}

/// `(name, ip)` of each node of `cluster`, as inspect gives them.
pub fn span_nodes(s: &Span, hosts: &Hosts, cluster: &str) -> Vec<(String, String)> {
    let out = s
        .from(hosts, 1, &["inspect", cluster, "--output", "json"])
        .run()
        .ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap().to_string(),
                n["ip"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect()
}

/// A hosts file and a shared folder of a test (mcc without a daemon, on
/// the engine it is pointed at), removed at the end.
pub struct Setup {
    pub dir: std::path::PathBuf,
    pub file: String,
    pub export: String,
}

impl Setup {
    pub fn new(tag: &str) -> Setup {
        // under /var/tmp: a folder every engine of this machine sees
        let dir =
            std::path::PathBuf::from(format!("/var/tmp/mcc-span-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let export = dir.join("export");
        std::fs::create_dir_all(&export).unwrap();
        Setup {
            file: dir
                .join("mcc")
                .join("hosts.json")
                .to_string_lossy()
                .into_owned(),
            export: export.to_string_lossy().into_owned(),
            dir,
        }
    }

    pub fn mcc<const N: usize>(&self, args: [&str; N]) -> Mcc {
        mcc(args).env("MCC_HOSTS_FILE", &self.file).local()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
