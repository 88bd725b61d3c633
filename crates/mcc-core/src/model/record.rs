//! The cluster record: what a cluster was made with, kept as a JSON label on
//! its meta container so that `addnode` months later builds identical nodes
//! without any file outside the engine.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::address::AddressPlan;
use super::cidr::Ipv4Cidr;
use super::docker_workers::DockerWorkers;
use super::names::NodeId;
use super::options::{NetworkDriver, NodeOptions};
use super::spec::{ClusterSpec, Device};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ClusterRecord {
    pub frontend_image: String,
    pub worker_image: String,
    pub subnet: Ipv4Cidr,
    /// The gateway when the user chose it (else the subnet's first host).
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    /// Addresses the user chose, by hostname.
    #[serde(default)]
    pub fixed_ips: BTreeMap<String, Ipv4Addr>,
    /// The VPC the cluster was made into (`--vpc`): its nodes are on that
    /// network, which the cluster uses and does not own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc: Option<String>,
    /// The front-end's address when it is not the subnet's second one (in
    /// a VPC, past the addresses held when the cluster was made); worker
    /// `i` has the `i`-th address after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_node: Option<Ipv4Addr>,
    #[serde(default)]
    pub network_driver: NetworkDriver,
    #[serde(default)]
    pub parent: Option<String>,
    #[serde(default)]
    pub options: NodeOptions,
    /// The volume mounted at /opt/mcc on every node. Records written
    /// before it was named per create lack it: see [`Self::fill_defaults`].
    #[serde(default)]
    pub meta_volume: String,
    /// The volume every node writes, mounted at `/opt/mcc/shared`
    /// (`MCC_SHARED`, the context's logs). Empty in records of clusters
    /// made before schema 2, whose nodes could write the meta volume.
    #[serde(default)]
    pub shared_volume: String,
    pub devices: Vec<Device>,
    #[serde(default)]
    pub env: Vec<(String, String)>,
    #[serde(default)]
    pub privileged: bool,
    /// Whether a context folder was shipped to `/opt/mcc/context`.
    #[serde(default)]
    pub context: bool,
    /// Whether the context has `on-change/` hooks.
    #[serde(default)]
    pub on_change: bool,
    /// Whether the context has `on-start/` scripts (run at every start).
    #[serde(default)]
    pub on_start: bool,
    /// Data volumes that existed before the cluster (kept from an earlier
    /// one); a failed create or `gc` leaves them alone.
    #[serde(default)]
    pub reused_volumes: Vec<String>,
    /// Seconds since the epoch when the cluster was created.
    pub created: u64,
    /// The inner engines of `--docker-workers`: their subnets and the
    /// cluster's certificate authority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerWorkers>,
    /// The hosts its nodes run on (`--hosts`, `model::placement`); empty
    /// for a cluster on one engine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// The folder every one of those hosts shares, which holds the
    /// cluster's files and shared folders (`--shared-from`, as
    /// `model::export::Export::label` keeps it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_from: Option<String>,
}

impl ClusterRecord {
    /// `labels` of a volume whose data every host of the cluster must
    /// reach (its files, shared folders), with the export those hosts
    /// share when the cluster spans hosts (`labels::EXPORT`, which the
    /// provider reads) and the image whose shell makes and removes the
    /// volume's folder there (the front-end's, which mcc's helpers use).
    pub fn across_hosts(
        &self,
        mut labels: std::collections::HashMap<String, String>,
    ) -> std::collections::HashMap<String, String> {
        if let Some(export) = &self.shared_from {
            labels.insert(super::labels::EXPORT.into(), export.clone());
            labels.insert(
                super::labels::EXPORT_HELPER.into(),
                self.frontend_image.clone(),
            );
        }
        labels
    }

    pub fn new(
        spec: &ClusterSpec,
        subnet: Ipv4Cidr,
        meta_volume: String,
        reused_volumes: Vec<String>,
    ) -> Self {
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let shared_volume = format!("{meta_volume}.shared");
        Self {
            shared_volume,
            frontend_image: spec.frontend_image.clone(),
            worker_image: spec.worker_image.clone(),
            subnet,
            gateway: spec.gateway,
            fixed_ips: spec
                .fixed_ips
                .iter()
                .map(|(n, ip)| (n.hostname(), *ip))
                .collect(),
            vpc: spec.vpc.clone(),
            // chosen by create, which sees who else is on the VPC
            first_node: None,
            network_driver: spec.network_driver,
            parent: spec.parent.clone(),
            options: spec.options.clone(),
            meta_volume,
            devices: spec.devices.clone(),
            env: spec.env.clone(),
            privileged: spec.privileged,
            context: spec.context.is_some(),
            // what the folder holds is filled in by whoever read it
            on_change: false,
            on_start: false,
            reused_volumes,
            created,
            // chosen by create, which knows the host's networks
            docker: None,
            hosts: spec.hosts.clone(),
            shared_from: spec.shared_from.clone(),
        }
    }

    pub fn plan(&self) -> AddressPlan {
        let fixed: BTreeMap<NodeId, Ipv4Addr> = self
            .fixed_ips
            .iter()
            .filter_map(|(h, ip)| Some((NodeId::parse_hostname(h)?, *ip)))
            .collect();
        plan_of(self.subnet, self.gateway, &fixed, self.first_node)
            .expect("recorded addresses were validated when recorded")
    }

    /// The network the nodes are on: the VPC's, or the cluster's own.
    pub fn network(&self, cluster: &super::names::ClusterName) -> String {
        self.vpc.clone().unwrap_or_else(|| cluster.network())
    }

    /// Fills what older records did not hold with what those versions used.
    pub fn fill_defaults(&mut self, cluster: &super::names::ClusterName) {
        if self.meta_volume.is_empty() {
            self.meta_volume = format!("{cluster}-mcc");
        }
    }

    /// Whether the cluster was made before schema 2, when every node
    /// mounted the meta volume writable: mcc no longer changes such a
    /// cluster (its hosts file, members and scripts may have been forged).
    pub fn legacy_layout(&self) -> bool {
        self.shared_volume.is_empty()
    }

    /// Paths kept in a volume of each node of `role`, across recreation:
    /// `--persist`, and a Docker worker's engine data.
    pub fn persisted(&self, role: super::names::Role) -> Vec<String> {
        let mut paths = self.options.persist.clone();
        let engine = super::docker_workers::ENGINE_DATA;
        if role == super::names::Role::Worker
            && self.docker.is_some()
            && !paths.iter().any(|p| p == engine)
        {
            paths.push(engine.into());
        }
        paths
    }

    /// Whether some node keeps `path` in a volume of its own.
    pub fn is_persisted(&self, path: &str) -> bool {
        self.persisted(super::names::Role::Worker)
            .iter()
            .any(|p| p == path)
    }

    pub fn to_label(&self) -> String {
        serde_json::to_string(self).expect("a record serializes")
    }

    /// Reads a record label; one whose addresses do not make a plan (a
    /// hand-made label, a later schema) is refused here, so that
    /// [`Self::plan`] never fails on a record that loaded.
    pub fn from_label(s: &str) -> Result<Self, String> {
        let r: Self =
            serde_json::from_str(s).map_err(|e| format!("unreadable cluster record: {e}"))?;
        let fixed: BTreeMap<NodeId, Ipv4Addr> = r
            .fixed_ips
            .iter()
            .map(|(h, ip)| {
                NodeId::parse_hostname(h)
                    .map(|n| (n, *ip))
                    .ok_or_else(|| format!("cluster record names '{h}', which is not a node"))
            })
            .collect::<Result<_, String>>()?;
        plan_of(r.subnet, r.gateway, &fixed, r.first_node)
            .map_err(|e| format!("cluster record holds addresses that do not fit: {e}"))?;
        Ok(r)
    }
}

fn plan_of(
    subnet: Ipv4Cidr,
    gateway: Option<Ipv4Addr>,
    fixed: &BTreeMap<NodeId, Ipv4Addr>,
    first_node: Option<Ipv4Addr>,
) -> Result<AddressPlan, String> {
    let plan = AddressPlan::with_choices(subnet, gateway, fixed)?;
    match first_node {
        Some(ip) => plan.starting_at(ip),
        None => Ok(plan),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record written by schema 1 must still load: this text is what
    /// version 0.1 put in the `mcc.record` label.
    /// The first records had no meta volume name: it was `<cluster>-mcc`.
    #[test]
    fn record_without_meta_volume_loads() {
        let old = r#"{"frontend-image":"debian:bookworm","worker-image":"debian:bookworm","subnet":"172.16.0.0/20","devices":[],"env":[],"privileged":false,"context":false,"reused-volumes":[],"created":1795300000}"#;
        let mut r = ClusterRecord::from_label(old).unwrap();
        r.fill_defaults(&"lab".parse().unwrap());
        assert_eq!(r.meta_volume, "lab-mcc");
        assert_eq!(r.options, NodeOptions::default());
        assert_eq!(r.network_driver, NetworkDriver::Bridge);
    }

    #[test]
    fn schema_1_record_still_loads() {
        let old = r#"{"frontend-image":"debian:bookworm","worker-image":"debian:bookworm","subnet":"172.16.0.0/20","meta-volume":"lab-mcc.0000abcd","devices":[{"name":"home","path":"/home"}],"env":[["A","1"]],"privileged":false,"context":true,"reused-volumes":[],"created":1795300000}"#;
        let r = ClusterRecord::from_label(old).unwrap();
        assert_eq!(r.subnet.to_string(), "172.16.0.0/20");
        assert_eq!(r.network(&"lab".parse().unwrap()), "lab-net");
        assert_eq!(r.devices[0].path, "/home");
        assert_eq!(ClusterRecord::from_label(&r.to_label()).unwrap(), r);
    }

    #[test]
    fn records_that_cannot_plan_are_refused() {
        let bad = r#"{"frontend-image":"x","worker-image":"x","subnet":"10.0.0.0/30","fixed-ips":{"node01":"192.168.1.1"},"devices":[],"created":1}"#;
        assert!(ClusterRecord::from_label(bad).is_err());
        let outside = r#"{"frontend-image":"x","worker-image":"x","subnet":"10.0.0.0/24","vpc":"vpc-0000abcd","first-node":"10.0.1.5","devices":[],"created":1}"#;
        assert!(ClusterRecord::from_label(outside).is_err());
        assert!(ClusterRecord::from_label("{}").is_err());
        let in_vpc = r#"{"frontend-image":"x","worker-image":"x","subnet":"10.0.0.0/24","vpc":"vpc-0000abcd","first-node":"10.0.0.5","devices":[],"created":1}"#;
        let r = ClusterRecord::from_label(in_vpc).unwrap();
        assert_eq!(r.network(&"lab".parse().unwrap()), "vpc-0000abcd");
        assert_eq!(
            r.plan().ip(NodeId::worker(1)),
            Some("10.0.0.6".parse().unwrap())
        );
        assert_eq!(ClusterRecord::from_label(&r.to_label()).unwrap(), r);
        assert!(ClusterRecord::from_label("not json").is_err());
    }
}
