//! Node and network options beyond the basics: DNS, domain, extra hosts,
//! systemd, persisted paths, the network driver. Each is validated here.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// How every node of a cluster is run; kept in the cluster record so that
/// nodes added or recreated later are made the same way.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct NodeOptions {
    /// DNS domain: hostnames become `node01.<domain>`; short names resolve too.
    pub domain: Option<String>,
    pub dns: Vec<Ipv4Addr>,
    pub dns_search: Vec<String>,
    /// Extra `/etc/hosts` entries of every node.
    pub add_hosts: Vec<(String, Ipv4Addr)>,
    /// Run systemd as PID 1.
    pub systemd: bool,
    /// Mount the host's /lib/modules read-only.
    pub mount_modules: bool,
    /// Paths kept in one volume per node, across recreation.
    pub persist: Vec<String>,
    /// Every worker runs its own Docker engine (`--docker-workers`).
    pub docker_workers: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkDriver {
    #[default]
    Bridge,
    /// Nodes on a host interface's segment (`--parent IFACE`).
    Macvlan,
    /// Nodes on several hosts of a swarm (`--hosts`): an attachable overlay.
    Overlay,
}

impl NetworkDriver {
    pub fn as_str(&self) -> &'static str {
        match self {
            NetworkDriver::Bridge => "bridge",
            NetworkDriver::Macvlan => "macvlan",
            NetworkDriver::Overlay => "overlay",
        }
    }
}

impl std::str::FromStr for NetworkDriver {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bridge" => Ok(NetworkDriver::Bridge),
            "macvlan" => Ok(NetworkDriver::Macvlan),
            other => Err(format!(
                "--network-driver '{other}' is not supported; use bridge (default) or macvlan (a cluster over several hosts, --hosts, gets an overlay)"
            )),
        }
    }
}

/// A DNS name: dot-separated labels of letters, digits and '-'.
pub fn validate_dns_name(what: &str, s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} '{s}' is not a DNS name; use labels of letters, digits and '-' separated by \
             dots, e.g. cluster.example"
        ))
    }
}

/// Parses `NAME:IP` from `--add-host`.
pub fn parse_add_host(s: &str) -> Result<(String, Ipv4Addr), String> {
    let (name, ip) = s.rsplit_once(':').ok_or_else(|| {
        format!("--add-host '{s}' has no ':'; write --add-host NAME:IP, e.g. nfs:10.0.0.5")
    })?;
    validate_dns_name("--add-host name", name)?;
    let ip = ip
        .parse::<Ipv4Addr>()
        .map_err(|_| format!("--add-host '{s}': '{ip}' is not an IPv4 address"))?;
    Ok((name.to_string(), ip))
}

/// Parses an IPv4 address given to a flag.
pub fn parse_ipv4(flag: &str, s: &str) -> Result<Ipv4Addr, String> {
    s.parse::<Ipv4Addr>()
        .map_err(|_| format!("{flag} '{s}' is not an IPv4 address, e.g. 10.0.0.1"))
}

/// An absolute path with empty components dropped (`//a/b/` → `/a/b`);
/// `None` for the root, a relative path, or one with `.` or `..`.
pub fn normalize_mount_path(s: &str) -> Option<String> {
    if !s.starts_with('/') {
        return None;
    }
    let parts: Vec<&str> = s.split('/').filter(|c| !c.is_empty()).collect();
    if parts.is_empty() || parts.iter().any(|c| *c == "." || *c == "..") {
        return None;
    }
    Some(format!("/{}", parts.join("/")))
}

/// Paths the engine mounts itself in every container.
const ENGINE_PATHS: [&str; 6] = [
    "/proc",
    "/sys",
    "/dev",
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
];

fn is_at_or_below(p: &str, roots: &[&str]) -> bool {
    roots
        .iter()
        .any(|r| p == *r || p.starts_with(&format!("{r}/")))
}

/// Paths the engine mounts in every container (`mcc run --volume` may not
/// take them).
pub fn is_engine_path(p: &str) -> bool {
    is_at_or_below(p, &ENGINE_PATHS)
}

/// Paths the engine or mcc mount themselves in nodes (`/run` is systemd's
/// tmpfs).
pub fn is_reserved_path(p: &str) -> bool {
    is_engine_path(p) || is_at_or_below(p, &["/run", super::paths::META_MOUNT])
}

/// The largest UID or GID (2^32 - 2: -1 means none to the kernel).
const MAX_ID: u64 = 4_294_967_294;

/// Checks `--user`: `USER` or `USER:GROUP`, each a name (a letter or `_`,
/// then up to 31 letters, digits, `_`, `.` or `-`) or a number up to
/// 4294967294.
pub fn validate_user(u: &str) -> Result<(), String> {
    let part_ok = |p: &str| {
        if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
            return p.len() <= 10 && p.parse::<u64>().is_ok_and(|n| n <= MAX_ID);
        }
        p.len() <= 32
            && p.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    };
    let parts: Vec<&str> = u.split(':').collect();
    if parts.len() <= 2 && parts.iter().all(|p| part_ok(p)) {
        return Ok(());
    }
    Err(format!(
        "--user '{u}': give USER or USER:GROUP, each a name or a number up to {MAX_ID}, e.g. \
         nobody or 1000:1000"
    ))
}

/// Checks a `--persist` path: absolute, normalized, not a system mount.
pub fn validate_persist_path(s: &str) -> Result<String, String> {
    let bad = |why: &str| {
        Err(format!(
            "--persist '{s}': {why}; give a path such as /var or /root"
        ))
    };
    if !s.starts_with('/') {
        return bad("the path is not absolute");
    }
    let Some(p) = normalize_mount_path(s) else {
        return bad("the path is the root or has '.' or '..'");
    };
    if is_reserved_path(&p) {
        return bad("the path is managed by the engine or by mcc");
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_names_or_ids_and_at_most_one_group() {
        for ok in [
            "nobody",
            "root",
            "1000",
            "1000:1000",
            "nobody:nogroup",
            "_apt",
            "4294967294",
        ] {
            assert_eq!(validate_user(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            ":",
            "root:",
            ":root",
            "a:b:c",
            "root:root:root",
            "99999999999999999999",
            "4294967295",
            "1000:4294967295",
            "-root",
            "1abc",
            "ro ot",
            "root;id",
            &"a".repeat(33),
        ] {
            let e = validate_user(bad).unwrap_err();
            assert!(e.contains("--user"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_engines_own_paths_are_reserved() {
        for p in [
            "/proc",
            "/proc/1",
            "/sys",
            "/dev/shm",
            "/etc/hosts",
            "/etc/resolv.conf",
        ] {
            assert!(is_engine_path(p) && is_reserved_path(p), "{p}");
        }
        assert!(!is_engine_path("/run") && is_reserved_path("/run/lock"));
        assert!(!is_engine_path("/data") && !is_engine_path("/procfs"));
    }

    #[test]
    fn names_and_hosts() {
        assert!(validate_dns_name("--domain", "cluster.example").is_ok());
        assert!(validate_dns_name("--domain", "a..b").is_err());
        assert!(validate_dns_name("--domain", "-a.b").is_err());
        assert_eq!(
            parse_add_host("nfs:10.0.0.5").unwrap(),
            ("nfs".to_string(), Ipv4Addr::new(10, 0, 0, 5))
        );
        assert!(parse_add_host("nfs").unwrap_err().contains("no ':'"));
        assert!(parse_add_host("nfs:10.0.0")
            .unwrap_err()
            .contains("not an IPv4"));
        assert!(parse_add_host("n_s:10.0.0.1")
            .unwrap_err()
            .contains("not a DNS name"));
    }

    #[test]
    fn persist_paths() {
        assert_eq!(validate_persist_path("/var/").unwrap(), "/var");
        for bad in ["var", "/", "/proc", "/run/x", "/opt/mcc", "/a/../b"] {
            assert!(validate_persist_path(bad).is_err(), "{bad}");
        }
        assert_eq!(validate_persist_path("//srv//data/").unwrap(), "/srv/data");
        assert_eq!(normalize_mount_path("//"), None);
        assert!(is_reserved_path("/run/lock") && !is_reserved_path("/running"));
    }

    #[test]
    fn drivers() {
        assert_eq!(
            "macvlan".parse::<NetworkDriver>().unwrap(),
            NetworkDriver::Macvlan
        );
        assert!("overlay"
            .parse::<NetworkDriver>()
            .unwrap_err()
            .contains("bridge"));
    }
}
