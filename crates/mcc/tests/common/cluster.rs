//! A test's own cluster name and its guard, test subnets, and files
//! (context folders, temporary directories).

#[allow(unused_imports)]
use super::*;

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
