//! Names of clusters, nodes and the engine objects that carry them.
//!
//! Every name mcc gives an engine object is a pure function of the cluster
//! name and the node's role and index, so that a plan can be computed (and
//! tested) before anything exists, and objects can be found again by name
//! as well as by label.

use std::fmt;
use std::str::FromStr;

/// Label keys carried by every object mcc creates.
pub mod labels {
    /// The cluster an object belongs to.
    pub const CLUSTER: &str = "mcc.cluster";
    /// `frontend`, `worker`, `meta` on containers; `meta`, `data` on volumes.
    pub const ROLE: &str = "mcc.role";
    /// A worker's index (1 for node01); 0 for the front-end.
    pub const INDEX: &str = "mcc.index";
    /// Version of this label schema, so later versions can read old clusters.
    pub const SCHEMA: &str = "mcc.schema";
    /// On the meta container: the cluster record as JSON.
    pub const RECORD: &str = "mcc.record";
    /// On the meta container and nodes: which mcc process made them, and
    /// until when it may run (see `cluster::creator`).
    pub const CREATOR: &str = "mcc.creator";
    /// On data volumes: the device name.
    pub const DEVICE: &str = "mcc.device";
    /// On persisted volumes: the node's hostname.
    pub const NODE: &str = "mcc.node";
    /// On persisted volumes: the path kept.
    pub const PATH: &str = "mcc.path";
    /// On nodes whose first process runs their scripts (creation phases at
    /// the first start, `on-start` at every later one).
    pub const BOOT_RUN: &str = "mcc.boot-run";
    /// On a cluster's index volume (role `index`, schema 3): its number in
    /// the sequence of indexes, the highest being the cluster's now.
    pub const GENERATION: &str = "mcc.generation";
    /// On the index: how the cluster's life goes (`ready`, `failed`,
    /// `deleting`, `deleting-keep-volumes`; empty while it is made).
    pub const STATE: &str = "mcc.state";
    /// On the index: the cluster's members (`model::members`).
    pub const MEMBERS: &str = "mcc.members";

    /// On a sized volume: its ID (`vol-…`).
    pub const VOLUME: &str = "mcc.volume";
    /// On a sized volume: its size in bytes.
    pub const SIZE: &str = "mcc.size";
    /// On a sized volume: kept when the containers using it are gone.
    pub const PERSISTENT: &str = "mcc.persistent";
    /// On a `run` container: the volumes it mounts, by ID.
    pub const VOLUMES: &str = "mcc.volumes";
    /// On a VPC's network (and what is in it): the VPC's ID.
    pub const VPC: &str = "mcc.vpc";
    /// On a VPC's network: the name the user gave.
    pub const NAME: &str = "mcc.name";
    /// On a replica of `mcc serve`'s services: its service.
    pub const SERVICE: &str = "mcc.service";
    /// On a replica: its index, 1..=replicas.
    pub const REPLICA: &str = "mcc.replica";
    /// On a volume of a cluster that spans hosts (`--shared-from`): the
    /// export its data lives in (`model::export::Export::label`).
    pub const EXPORT: &str = "mcc.export";
    /// Beside [`EXPORT`]: the image (with `/bin/sh`) of the helper that
    /// makes and removes the volume's folder there.
    pub const EXPORT_HELPER: &str = "mcc.export-helper";

    /// The labels every object of cluster `name` carries (its name and
    /// this schema), with its `role` when given.
    pub fn of(
        name: &super::ClusterName,
        role: Option<&str>,
    ) -> std::collections::HashMap<String, String> {
        let mut l = std::collections::HashMap::from([
            (CLUSTER.to_string(), name.to_string()),
            (SCHEMA.to_string(), super::SCHEMA_VERSION.to_string()),
        ]);
        if let Some(r) = role {
            l.insert(ROLE.to_string(), r.to_string());
        }
        l
    }

    /// The values of [`ROLE`].
    pub mod role {
        pub const FRONTEND: &str = "frontend";
        pub const WORKER: &str = "worker";
        /// The record container, and the meta volume it holds.
        pub const META: &str = "meta";
        /// The volume every node shares (`$MCC_SHARED`).
        pub const SHARED: &str = "shared";
        /// The cluster's index volume: state and members in its labels.
        pub const INDEX: &str = "index";
        /// A short-lived container of mcc's own (rewrites a file in place).
        pub const HELPER: &str = "helper";
        /// A container made by `mcc run`.
        pub const RUN: &str = "run";
        /// A sized volume of `mcc volume create`.
        pub const VOLUME: &str = "volume";
        /// A VPC's network.
        pub const VPC: &str = "vpc";
        /// A device's volume (`--device home`).
        pub const DATA: &str = "data";
        /// A node's path kept across recreation (`--persist`).
        pub const PERSIST: &str = "persist";
    }
}

/// The label schema written by this version. 3: a cluster's state and
/// members are the labels of its index volume (2: files on the meta
/// volume, still read for clusters made by it).
pub const SCHEMA_VERSION: &str = "3";

/// The first schema whose clusters have an index volume.
pub const INDEX_SCHEMA: u32 = 3;

/// Longest cluster name: the longest container name, `<cluster>-frontend`
/// or `<cluster>-node1234`, must still be a DNS label (63 bytes), because
/// container names resolve as hosts on the cluster network.
pub const MAX_CLUSTER_NAME: usize = 63 - "-frontend".len();

/// Checks an ID of mcc's (a VPC's, a volume's): `<prefix>-` and 8
/// lowercase hex digits; the error names the ID and the command that lists
/// the real ones.
pub fn check_id(id: &str, prefix: &str, what: &str, lister: &str) -> Result<(), String> {
    let ok = id
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(|h| {
            h.len() == 8
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{id}' is not a {what} ID; they look like {prefix}-1a2b3c4d (`{lister}` shows them)"
        ))
    }
}

/// A validated cluster name: a DNS label short enough for node suffixes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterName(String);

impl ClusterName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Name of the cluster's network.
    pub fn network(&self) -> String {
        format!("{}-net", self.0)
    }

    /// Name of the container that claims the name and holds the cluster's
    /// record; it is created first and never started.
    pub fn meta_container(&self) -> String {
        format!("{}-mcc", self.0)
    }

    /// A fresh name for the volume holding hosts file, context, logs and
    /// shared files. Each create gets its own (the record names it), so a
    /// leftover of a killed create never leaks stale files into a new
    /// cluster and needs no removal racing a concurrent create. The '.'
    /// cannot occur in cluster or device names, so it collides with neither.
    pub fn new_meta_volume(&self) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        format!(
            "{}-mcc.{:08x}",
            self.0,
            nanos ^ std::process::id().rotate_left(16)
        )
    }

    /// Name of the shared volume of a device (`home` → `<cluster>-home`).
    pub fn device_volume(&self, device: &str) -> String {
        format!("{}-{device}", self.0)
    }

    /// Name of the volume keeping `path` of a node across recreation:
    /// `lab-node01.var-lib`. The '.' keeps it apart from device volumes.
    pub fn persist_volume(&self, node: NodeId, path: &str) -> String {
        format!(
            "{}-{}.{}",
            self.0,
            node.hostname(),
            super::paths::path_slug(path)
        )
    }

    pub fn container(&self, node: NodeId) -> String {
        format!("{}-{}", self.0, node.hostname())
    }

    /// A fresh name for a user who gave none.
    pub fn generate() -> ClusterName {
        use std::time::{SystemTime, UNIX_EPOCH};
        const WORDS: [&str; 12] = [
            "amber", "birch", "cedar", "delta", "ember", "fjord", "gale", "heron", "iris",
            "juniper", "kestrel", "lumen",
        ];
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let seed = nanos ^ (u128::from(std::process::id()) << 32);
        let word = WORDS[(seed % WORDS.len() as u128) as usize];
        ClusterName(format!("{word}-{:04x}", (seed >> 8) & 0xffff))
    }
}

impl FromStr for ClusterName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hint = "use lower-case letters, digits and '-', starting with a letter and ending \
                    with a letter or digit, e.g. 'lab' or 'slurm-1'";
        if s.is_empty() {
            return Err(format!("cluster name is empty; {hint}"));
        }
        if s.len() > MAX_CLUSTER_NAME {
            return Err(format!(
                "cluster name '{s}' is {} characters long; at most {MAX_CLUSTER_NAME} fit, \
                 because '{s}-frontend' must be a valid hostname (63 characters)",
                s.len()
            ));
        }
        let ok_chars = s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let first_ok = s.as_bytes()[0].is_ascii_lowercase();
        let last_ok = s.as_bytes()[s.len() - 1] != b'-';
        if !(ok_chars && first_ok && last_ok) {
            return Err(format!("cluster name '{s}' is not a DNS label; {hint}"));
        }
        Ok(ClusterName(s.to_string()))
    }
}

impl fmt::Display for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The part a node plays in its cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Frontend,
    Worker,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Frontend => labels::role::FRONTEND,
            Role::Worker => labels::role::WORKER,
        }
    }

    /// The context folder directory holding this role's scripts.
    pub fn context_dir(&self) -> &'static str {
        match self {
            Role::Frontend => "frontend",
            Role::Worker => "workers",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            labels::role::FRONTEND => Ok(Role::Frontend),
            labels::role::WORKER => Ok(Role::Worker),
            other => Err(format!("unknown role '{other}'")),
        }
    }
}

/// A node of a cluster: the front-end (index 0) or worker `index` (1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub role: Role,
    pub index: u32,
}

impl NodeId {
    pub const FRONTEND: NodeId = NodeId {
        role: Role::Frontend,
        index: 0,
    };

    pub fn worker(index: u32) -> NodeId {
        debug_assert!(index >= 1, "workers are numbered from 1");
        NodeId {
            role: Role::Worker,
            index,
        }
    }

    /// `frontend`, `node01`, `node02`, …, `node100`.
    pub fn hostname(&self) -> String {
        match self.role {
            Role::Frontend => "frontend".to_string(),
            Role::Worker => format!("node{:02}", self.index),
        }
    }

    /// Parses a hostname as printed by [`NodeId::hostname`]; `node1` and
    /// `node001` are accepted for `node01`.
    pub fn parse_hostname(s: &str) -> Option<NodeId> {
        if s == "frontend" {
            return Some(NodeId::FRONTEND);
        }
        let digits = s.strip_prefix("node")?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let index: u32 = digits.parse().ok()?;
        (index >= 1).then(|| NodeId::worker(index))
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hostname())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names() {
        let c: ClusterName = "lab".parse().unwrap();
        assert_eq!(c.container(NodeId::FRONTEND), "lab-frontend");
        assert_eq!(c.container(NodeId::worker(3)), "lab-node03");
        assert_eq!(c.container(NodeId::worker(120)), "lab-node120");
        assert_eq!(c.network(), "lab-net");
        assert_eq!(c.meta_container(), "lab-mcc");
        assert!(c.new_meta_volume().starts_with("lab-mcc."));
        assert_eq!(c.device_volume("home"), "lab-home");
        assert_eq!(
            c.persist_volume(NodeId::worker(1), "/var/lib"),
            "lab-node01.var-lib"
        );
    }

    #[test]
    fn cluster_name_rules() {
        for good in ["a", "lab", "slurm-1", "x9", &"a".repeat(MAX_CLUSTER_NAME)] {
            assert!(good.parse::<ClusterName>().is_ok(), "{good}");
        }
        for bad in [
            "",
            "Lab",
            "1lab",
            "lab-",
            "-lab",
            "la_b",
            "la.b",
            "lab cluster",
            "ünï",
        ] {
            let err = bad.parse::<ClusterName>().unwrap_err();
            assert!(err.contains("cluster name"), "{err}");
        }
        let long = "a".repeat(MAX_CLUSTER_NAME + 1);
        let err = long.parse::<ClusterName>().unwrap_err();
        assert!(err.contains("at most 54"), "{err}");
    }

    #[test]
    fn generated_names_are_valid() {
        for _ in 0..20 {
            let n = ClusterName::generate();
            assert!(n.as_str().parse::<ClusterName>().is_ok(), "{n}");
        }
    }

    #[test]
    fn hostnames_round_trip() {
        for n in [
            NodeId::FRONTEND,
            NodeId::worker(1),
            NodeId::worker(42),
            NodeId::worker(1234),
        ] {
            assert_eq!(NodeId::parse_hostname(&n.hostname()), Some(n));
        }
        assert_eq!(NodeId::parse_hostname("node1"), Some(NodeId::worker(1)));
        assert_eq!(NodeId::parse_hostname("node0"), None);
        assert_eq!(NodeId::parse_hostname("node"), None);
        assert_eq!(NodeId::parse_hostname("nodex"), None);
        assert_eq!(NodeId::parse_hostname("worker1"), None);
    }
}
