//! What a user asks for (flags and the YAML cluster file) and its validation.
//!
//! [`SpecInput`] is the raw request, as parsed from a file or from flags;
//! [`SpecInput::validate`] turns it into a [`ClusterSpec`] or an error that
//! names the bad value and how to fix it. Nothing here touches the engine.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::address::AddressPlan;
use super::cidr::Ipv4Cidr;
use super::image::validate_image_ref;
use super::names::{ClusterName, NodeId};
use super::options::{
    is_reserved_path, normalize_mount_path, parse_add_host, parse_ipv4, validate_dns_name,
    validate_persist_path, NetworkDriver, NodeOptions,
};
use super::paths::path_slug;

pub use super::paths::META_MOUNT;

/// A request for a cluster, from a YAML file or flags. Field names are the
/// flags' names, so `--front-end-image` is `front-end-image:` in the file.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SpecInput {
    pub name: Option<String>,
    pub image: Option<String>,
    pub front_end_image: Option<String>,
    pub working_node_image: Option<String>,
    pub nodes: Option<u32>,
    #[schema(value_type = Option<String>)]
    pub context_folder: Option<PathBuf>,
    pub devices: Option<Vec<String>>,
    pub subnet: Option<String>,
    /// Take a subnet that is not a private block (its route hides those
    /// internet addresses from the host): the user means it.
    pub allow_public_subnet: Option<bool>,
    /// Create the cluster into this VPC (`mcc vpc create`), on its network
    /// and subnet, instead of a network of its own.
    pub vpc: Option<String>,
    pub privileged: Option<bool>,
    pub env: Option<EnvInput>,
    pub gateway: Option<String>,
    pub domain: Option<String>,
    pub dns: Option<Vec<String>>,
    pub dns_search: Option<Vec<String>>,
    pub add_hosts: Option<Vec<String>>,
    pub network_driver: Option<String>,
    pub parent: Option<String>,
    pub systemd: Option<bool>,
    pub mount_modules: Option<bool>,
    pub persist: Option<Vec<String>>,
    /// Every worker runs its own Docker engine (`docker -H node01 ps`).
    pub docker_workers: Option<bool>,
    /// Per-node settings, by hostname: `per-node: {node01: {ip: 10.0.0.11}}`.
    pub per_node: Option<BTreeMap<String, NodeInput>>,
    /// The hosts the nodes run on (`mcc host list`): the front-end on the
    /// first, workers round-robin after it.
    pub hosts: Option<Vec<String>>,
    /// With `hosts`: `file:///PATH`, a folder every host has at that path,
    /// holding the cluster's files and shared folders.
    pub shared_from: Option<String>,
    /// `zone`: the nodes go round-robin over the zones of the hosts (of
    /// `hosts`, or every listed host), not over the hosts.
    pub spread: Option<String>,
}

/// Settings of one node in a cluster file.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeInput {
    pub ip: Option<String>,
    /// The host it runs on (a cluster over hosts), over the round-robin.
    pub host: Option<String>,
}

/// Environment in a cluster file: a map (`FOO: bar`) or a list (`- FOO=bar`).
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum EnvInput {
    Map(BTreeMap<String, Scalar>),
    List(Vec<String>),
}

/// A YAML scalar taken as text, so `PORT: 8080` means "8080".
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Scalar {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    /// The value as text. A YAML float has lost its text by now (`3.10`
    /// reads as 3.1, `1e3` as 1000), so it is refused rather than altered.
    fn into_text(self, key: &str) -> Result<String, String> {
        match self {
            Scalar::Text(s) => Ok(s),
            Scalar::Int(i) => Ok(i.to_string()),
            Scalar::Float(f) => Err(format!(
                "env {key}: {f} is a YAML number, whose exact text is lost (3.10 reads as \
                 3.1); quote it, e.g. {key}: '3.10'"
            )),
            Scalar::Bool(b) => Ok(b.to_string()),
        }
    }
}

/// A shared folder: one volume, mounted at `path` on every node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub name: String,
    pub path: String,
}

/// A validated request for a cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterSpec {
    pub name: ClusterName,
    /// True when the user gave no name and one was generated.
    pub name_generated: bool,
    pub frontend_image: String,
    pub worker_image: String,
    pub nodes: u32,
    pub context: Option<PathBuf>,
    pub devices: Vec<Device>,
    pub subnet: Option<Ipv4Cidr>,
    /// The VPC the cluster goes into (its ID, checked for form only: the
    /// VPC itself is looked up by create).
    pub vpc: Option<String>,
    pub gateway: Option<Ipv4Addr>,
    /// Addresses chosen for some nodes.
    pub fixed_ips: BTreeMap<NodeId, Ipv4Addr>,
    pub network_driver: NetworkDriver,
    pub parent: Option<String>,
    pub privileged: bool,
    pub env: Vec<(String, String)>,
    pub options: NodeOptions,
    /// The hosts the nodes run on (`model::placement`); empty: one engine.
    pub hosts: Vec<String>,
    /// `--shared-from` (with `hosts`) as `Export::label` keeps it.
    pub shared_from: Option<String>,
    /// `--spread zone`: `hosts` (every listed one when empty) are put in
    /// zone order by create, which knows their zones.
    pub spread_zones: bool,
    /// Nodes pinned to a host (`per-node: {node03: {host: h2}}`), over the
    /// round-robin.
    pub node_hosts: BTreeMap<NodeId, String>,
}

/// What to write instead of an unknown field of a cluster file: most
/// fields are the create flags without '--', but a repeatable flag's field
/// is plural (`--device` is `devices:`), `--ip` goes under `per-node:`, and
/// some flags are about one run of the command, not the cluster.
fn unknown_field_hint(field: &str) -> String {
    let plural = match field {
        "device" => Some("devices"),
        "add-host" => Some("add-hosts"),
        _ => None,
    };
    if let Some(right) = plural {
        return format!(
            "--{field} is the field '{right}' in a file, a list: {right}: [...]; fields are the \
             create flags without '--', repeatable ones in the plural"
        );
    }
    match field {
        "ip" | "ips" => "--ip NODE=IP is written per node in a file: per-node: {node01: {ip: \
             10.42.0.11}}"
            .into(),
        "file" | "timeout" | "keep-on-failure" | "enter-cluster" | "output" => format!(
            "--{field} is about one run of `mcc create`, not the cluster: give it as a flag \
             beside -f"
        ),
        _ => "fields are the create flags without '--', repeatable ones in the plural \
              (devices, add-hosts), e.g. 'working-node-image'"
            .into(),
    }
}

impl SpecInput {
    pub fn from_yaml(text: &str) -> Result<SpecInput, String> {
        if text.trim().is_empty() {
            return Ok(SpecInput::default());
        }
        serde_yaml_ng::from_str(text).map_err(|e| {
            let msg = e.to_string();
            if msg.contains("unknown field") {
                let field = msg
                    .split_once("unknown field `")
                    .and_then(|(_, rest)| rest.split_once('`'))
                    .map(|(f, _)| f)
                    .unwrap_or("");
                format!("{msg} ({})", unknown_field_hint(field))
            } else if msg.contains("did not match any variant of untagged enum EnvInput") {
                format!("{msg}: env must be a map (FOO: bar) or a list of 'FOO=bar' strings")
            } else {
                msg
            }
        })
    }

    /// `self` with every field that `flags` sets taken from `flags`;
    /// environment variables are merged, the flags' values winning.
    pub fn overridden_by(self, flags: SpecInput) -> Result<SpecInput, String> {
        let env = match (self.env, flags.env) {
            (Some(base), Some(over)) => {
                let mut merged = env_pairs(base)?;
                for (k, v) in env_pairs(over)? {
                    merged.retain(|(bk, _)| *bk != k);
                    merged.push((k, v));
                }
                Some(EnvInput::List(
                    merged
                        .into_iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect(),
                ))
            }
            (base, over) => over.or(base),
        };
        let per_node = match (self.per_node, flags.per_node) {
            (Some(mut base), Some(over)) => {
                // a flag's address of a node keeps the file's host of it
                for (node, o) in over {
                    let b = base.entry(node).or_default();
                    b.ip = o.ip.or(b.ip.take());
                    b.host = o.host.or(b.host.take());
                }
                Some(base)
            }
            (base, over) => over.or(base),
        };
        Ok(SpecInput {
            gateway: flags.gateway.or(self.gateway),
            domain: flags.domain.or(self.domain),
            dns: flags.dns.or(self.dns),
            dns_search: flags.dns_search.or(self.dns_search),
            add_hosts: flags.add_hosts.or(self.add_hosts),
            network_driver: flags.network_driver.or(self.network_driver),
            parent: flags.parent.or(self.parent),
            systemd: flags.systemd.or(self.systemd),
            mount_modules: flags.mount_modules.or(self.mount_modules),
            persist: flags.persist.or(self.persist),
            docker_workers: flags.docker_workers.or(self.docker_workers),
            hosts: flags.hosts.or(self.hosts),
            shared_from: flags.shared_from.or(self.shared_from),
            spread: flags.spread.or(self.spread),
            per_node,
            name: flags.name.or(self.name),
            image: flags.image.or(self.image),
            front_end_image: flags.front_end_image.or(self.front_end_image),
            working_node_image: flags.working_node_image.or(self.working_node_image),
            nodes: flags.nodes.or(self.nodes),
            context_folder: flags.context_folder.or(self.context_folder),
            devices: flags.devices.or(self.devices),
            subnet: flags.subnet.or(self.subnet),
            allow_public_subnet: flags.allow_public_subnet.or(self.allow_public_subnet),
            vpc: flags.vpc.or(self.vpc),
            privileged: flags.privileged.or(self.privileged),
            env,
        })
    }

    /// The cluster's network driver and the hosts it spans: an overlay
    /// over hosts ([`spanning`]), or the driver asked on one engine.
    #[allow(clippy::type_complexity)]
    fn network_and_hosts(
        &self,
    ) -> Result<(NetworkDriver, (Vec<String>, Option<String>, bool)), String> {
        let spans = spanning(
            self.hosts.clone().unwrap_or_default(),
            self.spread.as_deref(),
            self.shared_from.as_deref(),
            &[
                ("--vpc", self.vpc.clone()),
                ("--network-driver", self.network_driver.clone()),
                ("--parent", self.parent.clone()),
            ],
        )?;
        let driver = if spans.0.is_empty() && !spans.2 {
            network(self.network_driver.as_deref(), self.parent.as_deref())?
        } else {
            NetworkDriver::Overlay
        };
        Ok((driver, spans))
    }

    /// The cluster these settings describe, each concern checked by its
    /// own validator; the first problem found is the error.
    pub fn validate(self) -> Result<ClusterSpec, String> {
        let (network_driver, (hosts, shared_from, spread_zones)) = self.network_and_hosts()?;
        let (name, name_generated) = match &self.name {
            Some(n) => (n.parse::<ClusterName>()?, false),
            None => (ClusterName::generate(), true),
        };
        let (frontend_image, worker_image) =
            images(self.image, self.front_end_image, self.working_node_image)?;
        let nodes = self.nodes.unwrap_or(0);
        // checked (and read) where it is packed: the model does no I/O
        let context = self.context_folder;
        if let Some(v) = &self.vpc {
            in_vpc(
                v,
                &[
                    ("--subnet", self.subnet.clone()),
                    ("--gateway", self.gateway.clone()),
                    (
                        "--ip",
                        self.per_node
                            .iter()
                            .flatten()
                            .find_map(|(n, i)| i.ip.as_ref().map(|ip| format!("{n}={ip}"))),
                    ),
                    (
                        "--network-driver",
                        self.network_driver.clone().filter(|d| d != "bridge"),
                    ),
                    ("--parent", self.parent.clone()),
                ],
            )?;
        }
        let devices = devices(self.devices.unwrap_or_default())?;
        let node_hosts = node_hosts(
            self.per_node.as_ref(),
            nodes,
            !hosts.is_empty() || spread_zones,
        )?;
        let (subnet, gateway, fixed_ips) = addressing(
            self.subnet.as_deref(),
            self.allow_public_subnet.unwrap_or(false),
            self.gateway.as_deref(),
            self.per_node.unwrap_or_default(),
            nodes,
        )?;
        let env = match self.env {
            None => Vec::new(),
            Some(e) => env_pairs(e)?,
        };
        let names = NameOptions::check(
            self.domain,
            self.dns.unwrap_or_default(),
            self.dns_search.unwrap_or_default(),
            self.add_hosts.unwrap_or_default(),
        )?;
        let persist = persisted(self.persist.unwrap_or_default(), &devices)?;
        let options = NodeOptions {
            domain: names.domain,
            dns: names.dns,
            dns_search: names.dns_search,
            add_hosts: names.add_hosts,
            systemd: self.systemd.unwrap_or(false),
            mount_modules: self.mount_modules.unwrap_or(false),
            persist,
            docker_workers: self.docker_workers.unwrap_or(false),
        };
        if options.docker_workers && options.systemd {
            return Err(
                "--docker-workers cannot be combined with --systemd yet: mcc starts \
                        each worker's engine from the node's first process; leave out one \
                        of them"
                    .into(),
            );
        }
        Ok(ClusterSpec {
            name,
            name_generated,
            frontend_image,
            worker_image,
            nodes,
            context,
            devices,
            subnet,
            vpc: self.vpc,
            gateway,
            fixed_ips,
            network_driver,
            parent: self.parent,
            privileged: self.privileged.unwrap_or(false),
            env,
            options,
            hosts,
            shared_from,
            spread_zones,
            node_hosts,
        })
    }
}

/// The nodes pinned to a host by `per-node: {NODE: {host: H}}`: each a node
/// of the cluster, on a cluster that spans hosts (`--hosts` or `--spread`).
fn node_hosts(
    per_node: Option<&BTreeMap<String, NodeInput>>,
    nodes: u32,
    spans: bool,
) -> Result<BTreeMap<NodeId, String>, String> {
    let mut pinned = BTreeMap::new();
    for (node, n) in per_node.into_iter().flatten() {
        let Some(host) = &n.host else { continue };
        super::placement::check_name("host", host)?;
        let id = NodeId::parse_hostname(node)
            .filter(|id| id.role == super::Role::Frontend || id.index <= nodes)
            .ok_or_else(|| {
                format!(
                    "per-node: '{node}' is given host {host} but is not a node of this cluster \
                     (frontend, node01 … node{nodes:02})"
                )
            })?;
        if !spans {
            return Err(format!(
                "per-node: {node} is given host {host}, but the cluster runs on one engine; \
                 give --hosts h1,h2,… (and --shared-from), or leave the host out"
            ));
        }
        pinned.insert(id, host.clone());
    }
    Ok(pinned)
}

/// The hosts a cluster spans and the folder they share, checked: the
/// folder is needed with hosts and means nothing without them, and the
/// settings `excluded` (a VPC, a driver) cannot be combined
/// with hosts yet.
fn spanning(
    hosts: Vec<String>,
    spread: Option<&str>,
    shared_from: Option<&str>,
    excluded: &[(&str, Option<String>)],
) -> Result<(Vec<String>, Option<String>, bool), String> {
    let spread_zones = match spread {
        None => false,
        Some("zone") => true,
        Some(other) => {
            return Err(format!(
                "--spread {other}: the nodes spread over hosts by `zone` only (`--spread \
                 zone`); without it they go round-robin over the hosts"
            ))
        }
    };
    if hosts.is_empty() && !spread_zones {
        if let Some(s) = shared_from {
            return Err(format!(
                "--shared-from {s} is the folder the hosts of --hosts share; give --hosts h1,h2,… too, or leave it out"
            ));
        }
        return Ok((hosts, None, false));
    }
    super::placement::check_hosts(&hosts)?;
    let over = if hosts.is_empty() {
        "--spread zone".to_string()
    } else {
        format!("--hosts {}", hosts.join(","))
    };
    if let Some((flag, value)) = excluded
        .iter()
        .find_map(|(flag, v)| Some((flag, v.as_ref()?)))
    {
        return Err(format!(
            "{over} and {flag} {value} cannot be combined: a cluster over several hosts has an overlay network of its own; leave out {flag}"
        ));
    }
    let Some(url) = shared_from else {
        return Err(format!(
            "{over} needs --shared-from nfs://SERVER/PATH (an NFS export every host's engine mounts) or file:///PATH (a folder every host has at that path): the cluster's files and shared folders live there so that nodes on every host see them"
        ));
    };
    let export = super::export::Export::parse(url)?;
    Ok((hosts, Some(export.label()), spread_zones))
}

/// Each role's image: `--image` sets both, `--front-end-image` and
/// `--working-node-image` one each, over `--image`. A role left without
/// one is an error naming what to add.
fn images(
    both: Option<String>,
    frontend: Option<String>,
    workers: Option<String>,
) -> Result<(String, String), String> {
    let fe = frontend.or_else(|| both.clone());
    let wk = workers.or(both);
    let (fe, wk) = match (fe, wk) {
        (Some(f), Some(w)) => (f, w),
        (None, None) => {
            return Err("no image given: use --image IMG for every node, or \
                        --front-end-image IMG and --working-node-image IMG"
                .into())
        }
        (Some(_), None) => {
            return Err(
                "no image for the workers: add --working-node-image IMG (or give \
                        --image IMG for every node)"
                    .into(),
            )
        }
        (None, Some(_)) => {
            return Err(
                "no image for the front-end: add --front-end-image IMG (or give \
                        --image IMG for every node)"
                    .into(),
            )
        }
    };
    validate_image_ref(&fe)?;
    validate_image_ref(&wk)?;
    Ok((fe, wk))
}

/// Shared folders: each with its own name and path.
fn devices(given: Vec<String>) -> Result<Vec<Device>, String> {
    let mut devices: Vec<Device> = Vec::new();
    for d in given {
        let dev = parse_device(&d)?;
        if let Some(other) = devices
            .iter()
            .find(|o| o.name == dev.name || o.path == dev.path)
        {
            return Err(format!(
                "device '{d}' clashes with '{}:{}': each device needs its own name and path",
                other.name, other.path
            ));
        }
        devices.push(dev);
    }
    Ok(devices)
}

/// A VPC's ID, and none of the settings that would make a network of the
/// cluster's own: the VPC has its subnet, gateway and driver already, and
/// mcc picks node addresses free in it.
fn in_vpc(vpc: &str, given: &[(&str, Option<String>)]) -> Result<(), String> {
    super::names::check_id(vpc, "vpc", "VPC", "mcc vpc list").map_err(|e| format!("--vpc: {e}"))?;
    match given.iter().find_map(|(flag, v)| Some((flag, v.as_ref()?))) {
        Some((flag, value)) => Err(format!(
            "--vpc {vpc} and {flag} {value} cannot be combined: a cluster in a VPC is on the \
             VPC's network, with its subnet; leave out {flag} (or --vpc, for a network of \
             the cluster's own)"
        )),
        None => Ok(()),
    }
}

type Addressing = (
    Option<Ipv4Cidr>,
    Option<Ipv4Addr>,
    BTreeMap<NodeId, Ipv4Addr>,
);

/// The subnet, gateway and per-node addresses, checked against each other
/// and against the number of nodes.
fn addressing(
    subnet: Option<&str>,
    allow_public: bool,
    gateway: Option<&str>,
    per_node: BTreeMap<String, NodeInput>,
    nodes: u32,
) -> Result<Addressing, String> {
    let gateway = gateway.map(|g| parse_ipv4("--gateway", g)).transpose()?;
    let mut fixed_ips = BTreeMap::new();
    for (host, n) in per_node {
        let node = NodeId::parse_hostname(&host).ok_or_else(|| {
            format!(
                "'{host}' (given an address with --ip or per-node:) is not a node name; \
                 nodes are frontend, node01, node02, …"
            )
        })?;
        if let Some(ip) = n.ip {
            let ip = parse_ipv4(&format!("address of {host}"), &ip)?;
            if let Some(other) = fixed_ips.insert(node, ip) {
                return Err(format!(
                    "node {node} is given two addresses, {other} and {ip}; give it one"
                ));
            }
        }
    }
    let Some(s) = subnet else {
        if gateway.is_some() || !fixed_ips.is_empty() {
            return Err(
                "a gateway or per-node addresses need the subnet they are in: \
                        add --subnet CIDR"
                    .to_string(),
            );
        }
        if nodes > 3000 {
            return Err(format!(
                "--nodes {nodes} is more than the 3000 workers of the subnet mcc picks; \
                 give a larger --subnet"
            ));
        }
        return Ok((None, None, fixed_ips));
    };
    let cidr: Ipv4Cidr = s.parse().map_err(|e| format!("--subnet: {e}"))?;
    cidr.check_usable("--subnet", allow_public, "--allow-public-subnet")?;
    let plan = AddressPlan::with_choices(cidr, gateway, &fixed_ips)?;
    if nodes > plan.max_workers() {
        return Err(format!(
            "subnet {cidr} holds at most {} workers besides the front-end, not {nodes}; \
             use a larger subnet (e.g. a /{}) or fewer nodes",
            plan.max_workers(),
            cidr.prefix().saturating_sub(2).max(8)
        ));
    }
    // an address is for a node this create makes: one for a later node
    // would be a promise addnode cannot see through (and a typo, mostly)
    if let Some(later) = fixed_ips.keys().find(|n| n.index > nodes) {
        return Err(format!(
            "--ip {later}=…: the cluster has {} (--nodes {nodes}); give addresses to the \
             nodes this create makes, or raise --nodes",
            match nodes {
                0 => "only the front-end".to_string(),
                1 => "one worker, node01".to_string(),
                n => format!("{n} workers, node01 to {}", NodeId::worker(n)),
            }
        ));
    }
    let planned: Vec<NodeId> = std::iter::once(NodeId::FRONTEND)
        .chain((1..=nodes).map(NodeId::worker))
        .collect();
    plan.check_unique(&planned)?;
    Ok((Some(cidr), gateway, fixed_ips))
}

/// The network driver, and the host interface a macvlan network needs.
fn network(driver: Option<&str>, parent: Option<&str>) -> Result<NetworkDriver, String> {
    let driver = match driver {
        Some(d) => d.parse::<NetworkDriver>()?,
        None => NetworkDriver::Bridge,
    };
    if driver == NetworkDriver::Macvlan && parent.is_none() {
        return Err(
            "--network-driver macvlan needs --parent IFACE, the host interface \
                    whose segment the nodes join (`ip link` lists them)"
                .to_string(),
        );
    }
    if let Some(p) = parent {
        if driver != NetworkDriver::Macvlan {
            return Err(format!(
                "--parent {p} only applies to --network-driver macvlan"
            ));
        }
        let ok = !p.is_empty()
            && p.len() <= 15
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !ok {
            return Err(format!("--parent '{p}' is not a network interface name"));
        }
    }
    Ok(driver)
}

/// How nodes name and find hosts: domain, DNS servers and search domains,
/// extra hosts-file entries.
struct NameOptions {
    domain: Option<String>,
    dns: Vec<Ipv4Addr>,
    dns_search: Vec<String>,
    add_hosts: Vec<(String, Ipv4Addr)>,
}

impl NameOptions {
    fn check(
        domain: Option<String>,
        dns: Vec<String>,
        dns_search: Vec<String>,
        add_hosts: Vec<String>,
    ) -> Result<NameOptions, String> {
        if let Some(d) = &domain {
            validate_dns_name("--domain", d)?;
        }
        let dns = dns
            .iter()
            .map(|d| parse_ipv4("--dns", d))
            .collect::<Result<Vec<_>, _>>()?;
        for d in &dns_search {
            validate_dns_name("--dns-search", d)?;
        }
        let add_hosts = add_hosts
            .iter()
            .map(|h| parse_add_host(h))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NameOptions {
            domain,
            dns,
            dns_search,
            add_hosts,
        })
    }
}

/// Paths kept per node: not a device's path, not given twice, and not
/// two that would share one volume.
fn persisted(given: Vec<String>, devices: &[Device]) -> Result<Vec<String>, String> {
    let mut persist: Vec<String> = Vec::new();
    for p in given {
        let p = validate_persist_path(&p)?;
        if let Some(d) = devices.iter().find(|d| d.path == p) {
            return Err(format!(
                "--persist {p} is also the path of device '{}'; a path is either shared or \
                 kept per node",
                d.name
            ));
        }
        if persist.contains(&p) {
            return Err(format!("--persist {p} is given twice"));
        }
        // one volume per node and path, named after the path
        if let Some(other) = persist.iter().find(|o| path_slug(o) == path_slug(&p)) {
            return Err(format!(
                "--persist {p} and {other} would share one volume (both are '{}'); keep one \
                 of them, or a common parent",
                path_slug(&p)
            ));
        }
        persist.push(p);
    }
    Ok(persist)
}

fn env_pairs(env: EnvInput) -> Result<Vec<(String, String)>, String> {
    let pairs: Vec<(String, String)> = match env {
        EnvInput::Map(m) => m
            .into_iter()
            .map(|(k, v)| v.into_text(&k).map(|t| (k, t)))
            .collect::<Result<_, _>>()?,
        EnvInput::List(list) => list
            .into_iter()
            .map(|kv| parse_env(&kv))
            .collect::<Result<_, _>>()?,
    };
    for (k, _) in &pairs {
        validate_env_key(k)?;
    }
    Ok(pairs)
}

/// Parses `K=V` from `--env`.
pub fn parse_env(kv: &str) -> Result<(String, String), String> {
    let (k, v) = kv
        .split_once('=')
        .ok_or_else(|| format!("--env '{kv}' has no '='; write --env {kv}=VALUE"))?;
    validate_env_key(k)?;
    Ok((k.to_string(), v.to_string()))
}

fn validate_env_key(k: &str) -> Result<(), String> {
    let ok = !k.is_empty()
        && !k.as_bytes()[0].is_ascii_digit()
        && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !ok {
        return Err(format!(
            "environment variable name '{k}' is not valid: use letters, digits and '_', \
             not starting with a digit"
        ));
    }
    if k.starts_with("MCC_") {
        return Err(format!(
            "environment variable '{k}': names starting with MCC_ are set by mcc itself"
        ));
    }
    Ok(())
}

/// Parses `NAME[:PATH]`; `home` alone means `/home`, any NAME alone `/NAME`.
pub fn parse_device(s: &str) -> Result<Device, String> {
    let (name, path) = match s.split_once(':') {
        Some((n, p)) => (n, p.to_string()),
        None => (s, format!("/{s}")),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 20
        && name.as_bytes()[0].is_ascii_lowercase()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !name_ok {
        return Err(format!(
            "device '{s}': the name '{name}' must be 1-20 lower-case letters and digits, \
             starting with a letter, e.g. --device home or --device scratch:/scratch"
        ));
    }
    if name == "mcc" {
        return Err(format!(
            "device '{s}': the name 'mcc' is reserved for mcc's own volume"
        ));
    }
    if !path.starts_with('/') {
        return Err(format!(
            "device '{s}': the path '{path}' is not absolute; write e.g. --device {name}:/{path}"
        ));
    }
    let path = match normalize_mount_path(&path) {
        Some(p) if !is_reserved_path(&p) => p,
        _ => {
            return Err(format!(
                "device '{s}': '{path}' cannot hold a shared folder; pick a path such as /home \
                 or /data"
            ))
        }
    };
    Ok(Device {
        name: name.to_string(),
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_needs_an_image_and_the_error_says_which() {
        let s = |x: &str| Some(x.to_string());
        assert_eq!(
            images(s("a:1"), None, None).unwrap(),
            ("a:1".into(), "a:1".into())
        );
        assert_eq!(
            images(s("a:1"), s("fe:1"), None).unwrap(),
            ("fe:1".into(), "a:1".into())
        );
        assert_eq!(
            images(None, s("fe:1"), s("wk:1")).unwrap(),
            ("fe:1".into(), "wk:1".into())
        );
        let e = images(None, s("fe:1"), None).unwrap_err();
        assert!(
            e.contains("no image for the workers") && e.contains("--working-node-image"),
            "{e}"
        );
        let e = images(None, None, s("wk:1")).unwrap_err();
        assert!(e.contains("--front-end-image"), "{e}");
        assert!(images(None, None, None)
            .unwrap_err()
            .contains("no image given"));
    }

    fn base() -> SpecInput {
        SpecInput {
            name: Some("lab".into()),
            image: Some("debian:bookworm".into()),
            ..Default::default()
        }
    }

    #[test]
    fn minimal_spec() {
        let s = base().validate().unwrap();
        assert_eq!(s.name.as_str(), "lab");
        assert_eq!(s.frontend_image, "debian:bookworm");
        assert_eq!(s.worker_image, "debian:bookworm");
        assert_eq!(s.nodes, 0);
        assert!(!s.name_generated);
    }

    #[test]
    fn generated_name_and_image_roles() {
        let s = SpecInput {
            front_end_image: Some("fe:1".into()),
            working_node_image: Some("wk:1".into()),
            nodes: Some(2),
            ..Default::default()
        }
        .validate()
        .unwrap();
        assert!(s.name_generated);
        assert_eq!(
            (s.frontend_image.as_str(), s.worker_image.as_str()),
            ("fe:1", "wk:1")
        );
        let err = SpecInput::default().validate().unwrap_err();
        assert!(err.contains("--image"), "{err}");
    }

    #[test]
    fn devices() {
        assert_eq!(
            parse_device("home").unwrap(),
            Device {
                name: "home".into(),
                path: "/home".into()
            }
        );
        assert_eq!(
            parse_device("data:/srv/data/").unwrap(),
            Device {
                name: "data".into(),
                path: "/srv/data".into()
            }
        );
        for bad in [
            "data:srv",
            "Home",
            "a-b",
            "mcc",
            "x:/",
            "x://",
            "x:/etc/hosts/",
            "x:/run",
            "x:/opt/mcc/y",
            "x:/a/../b",
            "x:/proc",
            "",
        ] {
            let err = parse_device(bad).unwrap_err();
            assert!(err.contains(&format!("'{bad}'")), "{bad}: {err}");
        }
        let err = SpecInput {
            devices: Some(vec!["home".into(), "h2:/home".into()]),
            ..base()
        }
        .validate()
        .unwrap_err();
        assert!(err.contains("clashes"), "{err}");
    }

    #[test]
    fn env() {
        assert_eq!(parse_env("A=b=c").unwrap(), ("A".into(), "b=c".into()));
        assert_eq!(parse_env("A=").unwrap(), ("A".into(), "".into()));
        assert!(parse_env("A").unwrap_err().contains("has no '='"));
        assert!(parse_env("1A=x").unwrap_err().contains("not valid"));
        assert!(parse_env("MCC_ROLE=x").unwrap_err().contains("set by mcc"));
    }

    #[test]
    fn subnet_capacity() {
        let err = SpecInput {
            subnet: Some("10.0.0.0/28".into()),
            nodes: Some(10),
            ..base()
        }
        .validate()
        .unwrap_err();
        assert!(err.contains("at most 9 workers"), "{err}");
        assert!(SpecInput {
            subnet: Some("10.0.0.0/28".into()),
            nodes: Some(9),
            ..base()
        }
        .validate()
        .is_ok());
        let err = SpecInput {
            subnet: Some("10.0.0.0/33".into()),
            ..base()
        }
        .validate()
        .unwrap_err();
        assert!(err.contains("--subnet"), "{err}");
    }

    #[test]
    fn yaml_file_fields_and_types() {
        let y =
            "name: lab\nimage: debian:bookworm\nnodes: 3\ndevices: [home, 'scratch:/scratch']\n\
                 env:\n  PORT: 8080\n  MODE: fast\nprivileged: false\nsubnet: 10.9.0.0/24\n";
        let s = SpecInput::from_yaml(y).unwrap().validate().unwrap();
        assert_eq!(s.nodes, 3);
        assert_eq!(s.devices.len(), 2);
        assert_eq!(
            s.env,
            vec![
                ("MODE".into(), "fast".into()),
                ("PORT".into(), "8080".into())
            ]
        );
        assert_eq!(s.subnet.unwrap().to_string(), "10.9.0.0/24");

        let err = SpecInput::from_yaml("name: lab\nnode: 3\n").unwrap_err();
        assert!(err.contains("unknown field `node`"), "{err}");
        // a flag's name used as a field: the hint names the field it is
        for (yaml, says) in [
            ("add-host: ['nfs:10.0.0.9']\n", "'add-hosts'"),
            ("device: [home]\n", "'devices'"),
            ("ip: node01=10.0.0.9\n", "per-node:"),
            ("keep-on-failure: true\n", "as a flag"),
        ] {
            let err = SpecInput::from_yaml(yaml).unwrap_err();
            assert!(err.contains(says), "{yaml}: {err}");
        }
        // and the fields it names are fields
        SpecInput::from_yaml("image: x\nadd-hosts: ['nfs:10.0.0.9']\ndevices: [home]\n")
            .unwrap()
            .validate()
            .unwrap();
        let err = SpecInput::from_yaml("nodes: three\n").unwrap_err();
        assert!(err.contains("nodes"), "{err}");
        let err = SpecInput::from_yaml("nodes: [1\n").unwrap_err();
        assert!(!err.is_empty());
        let err = SpecInput::from_yaml("image: x\nenv: {PY: 3.10}\n")
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(err.contains("quote it"), "{err}");
        let err = SpecInput {
            persist: Some(vec!["/srv/a".into(), "/srv-a".into()]),
            ..base()
        }
        .validate()
        .unwrap_err();
        assert!(err.contains("share one volume"), "{err}");
        let err = SpecInput::from_yaml("env: 5\n").unwrap_err();
        assert!(err.contains("env must be"), "{err}");
    }

    #[test]
    fn addressing_and_node_options() {
        let y = "name: lab\nimage: x\nnodes: 2\nsubnet: 10.3.0.0/24\ngateway: 10.3.0.100\n\
                 per-node:\n  node02: {ip: 10.3.0.50}\ndomain: hpc.test\ndns: [10.3.0.100]\n\
                 dns-search: [hpc.test]\nadd-hosts: ['nfs:10.3.0.200']\nsystemd: true\n\
                 persist: [/var, /root/]\n";
        let s = SpecInput::from_yaml(y).unwrap().validate().unwrap();
        assert_eq!(s.gateway, Some(Ipv4Addr::new(10, 3, 0, 100)));
        assert_eq!(s.fixed_ips[&NodeId::worker(2)], Ipv4Addr::new(10, 3, 0, 50));
        assert_eq!(s.options.domain.as_deref(), Some("hpc.test"));
        assert_eq!(s.options.persist, vec!["/var", "/root"]);
        assert!(s.options.systemd);

        let err = SpecInput::from_yaml("image: x\nper-node:\n  node1: {ip: 10.0.0.9}\n")
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(err.contains("add --subnet"), "{err}");
        let err = SpecInput::from_yaml(
            "image: x\nsubnet: 10.0.0.0/24\nper-node:\n  node01: {ip: 10.1.0.9}\n",
        )
        .unwrap()
        .validate()
        .unwrap_err();
        assert!(err.contains("outside the subnet"), "{err}");
        let err = SpecInput::from_yaml(
            "image: x\nnodes: 3\nsubnet: 10.0.0.0/24\nper-node:\n  node01: {ip: 10.0.0.4}\n",
        )
        .unwrap()
        .validate()
        .unwrap_err();
        assert!(err.contains("node01 and node02"), "{err}");
        let err = SpecInput::from_yaml("image: x\nper-node:\n  node01: {address: 10.0.0.4}\n")
            .unwrap_err();
        assert!(err.contains("unknown field `address`"), "{err}");
        let err = SpecInput {
            parent: Some("eth0".into()),
            ..base()
        }
        .validate()
        .unwrap_err();
        assert!(err.contains("macvlan"), "{err}");
        let err = SpecInput {
            devices: Some(vec!["home".into()]),
            persist: Some(vec!["/home".into()]),
            ..base()
        }
        .validate()
        .unwrap_err();
        assert!(err.contains("either shared or"), "{err}");
    }

    #[test]
    fn fixed_addresses_of_later_nodes_and_macvlan() {
        // node03 is not made by this create
        let err = SpecInput::from_yaml(
            "image: x\nnodes: 1\nsubnet: 10.0.0.0/24\nper-node:\n  node03: {ip: 10.0.0.3}\n",
        )
        .unwrap()
        .validate()
        .unwrap_err();
        assert!(
            err.contains("--ip node03=") && err.contains("one worker, node01"),
            "{err}"
        );
        // node03 fixed on node01's default address
        let err = SpecInput::from_yaml(
            "image: x\nnodes: 3\nsubnet: 10.0.0.0/24\nper-node:\n  node03: {ip: 10.0.0.3}\n",
        )
        .unwrap()
        .validate()
        .unwrap_err();
        assert!(err.contains("node01 and node03"), "{err}");
        let err = SpecInput::from_yaml(
            "image: x\nsubnet: 10.0.0.0/24\nper-node:\n  node1: {ip: 10.0.0.7}\n  node01: {ip: 10.0.0.8}\n",
        )
        .unwrap()
        .validate()
        .unwrap_err();
        assert!(err.contains("two addresses"), "{err}");
        let err = SpecInput {
            network_driver: Some("macvlan".into()),
            ..base()
        }
        .validate()
        .unwrap_err();
        assert!(err.contains("needs --parent"), "{err}");
    }

    #[test]
    fn flags_override_file() {
        let file = SpecInput::from_yaml("name: a\nimage: x\nnodes: 2\nenv: [A=1, B=2]\n").unwrap();
        let flags = SpecInput {
            nodes: Some(5),
            env: Some(EnvInput::List(vec!["B=3".into()])),
            ..Default::default()
        };
        let s = file.overridden_by(flags).unwrap().validate().unwrap();
        assert_eq!(s.name.as_str(), "a");
        assert_eq!(s.nodes, 5);
        assert_eq!(
            s.env,
            vec![("A".into(), "1".into()), ("B".into(), "3".into())]
        );
    }

    /// `--hosts` needs `--shared-from` (and the other way round), takes
    /// neither a VPC nor a driver, and gives an overlay.
    #[test]
    fn hosts_need_a_shared_folder_and_make_an_overlay() {
        let hosts = || Some(vec!["h1".to_string(), "h2".to_string()]);
        let base = SpecInput {
            name: Some("a".into()),
            image: Some("x".into()),
            ..Default::default()
        };
        let ok = SpecInput {
            hosts: hosts(),
            shared_from: Some("file:///srv/mcc".into()),
            ..base.clone()
        }
        .validate()
        .unwrap();
        assert_eq!(ok.hosts, ["h1", "h2"]);
        assert_eq!(ok.shared_from.as_deref(), Some("/srv/mcc"));
        let nfs = SpecInput {
            hosts: hosts(),
            shared_from: Some("nfs://NAS/srv/mcc".into()),
            ..base.clone()
        }
        .validate()
        .unwrap();
        assert_eq!(nfs.shared_from.as_deref(), Some("nfs://nas/srv/mcc"));
        assert_eq!(ok.network_driver, NetworkDriver::Overlay);
        for (bad, says) in [
            (
                SpecInput {
                    hosts: hosts(),
                    ..base.clone()
                },
                "needs --shared-from",
            ),
            (
                SpecInput {
                    shared_from: Some("file:///srv/mcc".into()),
                    ..base.clone()
                },
                "give --hosts",
            ),
            (
                SpecInput {
                    hosts: hosts(),
                    shared_from: Some("file:///srv/mcc".into()),
                    vpc: Some("vpc-0a1b2c3d".into()),
                    ..base.clone()
                },
                "--vpc",
            ),
            (
                SpecInput {
                    hosts: Some(vec!["h1".into(), "h1".into()]),
                    shared_from: Some("file:///srv/mcc".into()),
                    ..base.clone()
                },
                "named twice",
            ),
        ] {
            let e = bad.validate().unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }

    /// `per-node: {NODE: {host: H}}` pins a node of a cluster over hosts;
    /// a node that is not one, or a cluster on one engine, is refused; a
    /// flag's `--ip` of the node keeps the file's host.
    #[test]
    fn a_node_is_pinned_to_a_host_in_the_file() {
        let file = "image: x\nnodes: 3\nhosts: [h1, h2]\nshared-from: file:///srv/mcc\n\
                    per-node:\n  node03: {host: h1}\n  frontend: {host: h2}\n";
        let spec = SpecInput::from_yaml(file).unwrap();
        let flags = SpecInput {
            per_node: Some(BTreeMap::from([(
                "node03".to_string(),
                NodeInput {
                    ip: Some("10.9.0.40".into()),
                    host: None,
                },
            )])),
            subnet: Some("10.9.0.0/24".into()),
            ..Default::default()
        };
        let ok = spec
            .clone()
            .overridden_by(flags)
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(ok.node_hosts[&NodeId::worker(3)], "h1");
        assert_eq!(ok.node_hosts[&NodeId::FRONTEND], "h2");
        assert_eq!(ok.fixed_ips[&NodeId::worker(3)].to_string(), "10.9.0.40");
        for (text, says) in [
            (
                file.replace("node03: {host", "node04: {host"),
                "node04' is given host h1 but is not a node",
            ),
            (file.replace("{host: h1}", "{host: H1}"), "host 'H1'"),
            (
                "image: x\nnodes: 1\nper-node:\n  node01: {host: h1}\n".to_string(),
                "runs on one engine",
            ),
        ] {
            let e = SpecInput::from_yaml(&text).unwrap().validate().unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    /// A VPC brings its own subnet, gateway and driver: naming any of them
    /// beside it is an error naming both; a file's `vpc:` is a flag's.
    #[test]
    fn a_vpc_excludes_settings_of_a_network_of_its_own() {
        let vpc = || Some("vpc-0a1b2c3d".to_string());
        let s = SpecInput::from_yaml("name: a\nimage: x\nvpc: vpc-0a1b2c3d\n")
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(s.vpc, vpc());
        assert_eq!(s.subnet, None);
        let ok = SpecInput {
            vpc: vpc(),
            network_driver: Some("bridge".into()),
            ..base()
        };
        assert_eq!(ok.validate().unwrap().vpc, vpc());
        let node = BTreeMap::from([(
            "node01".to_string(),
            NodeInput {
                ip: Some("10.1.0.9".into()),
                host: None,
            },
        )]);
        for (bad, flag) in [
            (
                SpecInput {
                    subnet: Some("10.1.0.0/24".into()),
                    ..base()
                },
                "--subnet 10.1.0.0/24",
            ),
            (
                SpecInput {
                    gateway: Some("10.1.0.1".into()),
                    ..base()
                },
                "--gateway 10.1.0.1",
            ),
            (
                SpecInput {
                    per_node: Some(node),
                    ..base()
                },
                "--ip node01=10.1.0.9",
            ),
            (
                SpecInput {
                    network_driver: Some("macvlan".into()),
                    parent: Some("eth0".into()),
                    ..base()
                },
                "--network-driver macvlan",
            ),
        ] {
            let err = SpecInput { vpc: vpc(), ..bad }.validate().unwrap_err();
            assert!(
                err.contains("--vpc vpc-0a1b2c3d") && err.contains(flag),
                "{flag}: {err}"
            );
        }
        for id in ["vpc-XYZ", "net-0a1b2c3d", "vpc-0a1b2c3d0"] {
            let err = SpecInput {
                vpc: Some(id.into()),
                ..base()
            }
            .validate()
            .unwrap_err();
            assert!(err.contains(&format!("'{id}' is not a VPC ID")), "{err}");
        }
    }
}
