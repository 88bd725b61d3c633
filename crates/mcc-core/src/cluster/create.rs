//! `create`: validate, plan, claim the name, provision, contextualize; on
//! any failure or interruption, remove everything made (unless asked not to).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::delete::DataVolumes;
use super::nodes::{base_labels, data_volume_labels, Blueprint};
use super::parallel::{first_error, run_all};
use super::query::ClusterView;
use super::vpc::vpc_subnet;
use super::{creator, Clusters};
use crate::context;
use crate::error::{Error, Result};
use crate::model::address::pick_subnet;
use crate::model::docker_workers::{self, pick_inner_subnets, DockerWorkers};
use crate::model::{
    labels, ClusterRecord, ClusterSpec, Ipv4Cidr, NetworkDriver, NodeId, META_MOUNT,
};
use crate::provider::NetworkSpec;

#[derive(Clone, Debug)]
pub struct CreateOptions {
    /// Leave what was made in place when the create fails, for debugging.
    pub keep_on_failure: bool,
    /// How long making the nodes and running their scripts may take.
    pub timeout: Duration,
}

impl Default for CreateOptions {
    fn default() -> Self {
        Self {
            keep_on_failure: false,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// How long create, addnode and recreate may take by default (`--timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

impl Clusters {
    pub async fn create(
        &self,
        spec: &ClusterSpec,
        opts: &CreateOptions,
        cancel: &CancellationToken,
    ) -> Result<ClusterView> {
        let spread;
        let spec = if spec.spread_zones {
            spread = self.spread_over_zones(spec).await?;
            &spread
        } else {
            spec
        };
        let name = &spec.name;
        // Held until the create has ended: a delete or addnode of the same
        // name waits for it.
        let _serialized = self.lock_cluster(name).await?;

        // Everything that can be refused is checked before anything is made.
        let folder = match spec.context.clone() {
            None => None,
            Some(dir) => Some(
                tokio::task::spawn_blocking(move || context::check_folder(&dir))
                    .await
                    .map_err(|e| Error::Failed(format!("reading the context folder: {e}")))??,
            ),
        };
        self.check_create(spec).await?;
        if (!spec.hosts.is_empty() || spec.spread_zones) && !spec.options.persist.is_empty() {
            let paths = spec.options.persist.join(", ");
            self.reporter.note(&format!(
                "note: --persist {paths}: each node's volume stays on its node's host, not on \
                 the shared export; a node recreated on another host (`mcc recreate --host`) \
                 starts with them empty there (`mcc inspect` shows each volume's host)"
            ));
        }
        let images = self
            .ensure_images(&[&spec.frontend_image, &spec.worker_image], cancel)
            .await?;
        if spec.options.systemd && !spec.privileged {
            if let Some(why) = self.provider.host().await?.systemd_privileged {
                self.reporter
                    .note(&format!("note: the nodes will run privileged ({why})"));
            }
        }
        // In a VPC: held until this create has ended, so that creates and
        // addnodes into it at once on this host do not pick the same free
        // addresses (the engine sees a node's only once it is made).
        let _addresses = match &spec.vpc {
            Some(v) => Some(self.lock_vpc_addresses(v).await?),
            None => None,
        };
        // Held from listing the networks until ours exists, so that creates
        // running at once on this host do not pick the same free subnet.
        let networks_lock = self.lock_host("networks", "picking a subnet").await?;
        let networks = self.provider.networks(None).await?;
        let (subnet, taken) = self.subnet_for(spec, &networks).await?;
        let reused = self.reused_volumes(spec).await?;
        let record = self
            .record_for(spec, subnet, &taken, reused, folder.as_ref())
            .await?;
        // Packed before anything is made: a folder that cannot be shipped
        // (a link out of it, say) is bad input.
        let archive = self
            .pack_meta(spec, &record, folder.map(|f| f.path))
            .await?;

        // The claim: container names are unique on the engine, so of two
        // creates of one name exactly one gets past this line. The loser
        // has made nothing and removes nothing.
        self.claim(spec, &record, opts.timeout).await?;

        let deadline = Deadline::start(opts.timeout, cancel);
        let made = self
            .provision(
                spec,
                &record,
                Prepared {
                    images,
                    networks_lock,
                    archive,
                },
                opts.timeout,
                deadline.token(),
            )
            .await;
        if made.is_err() && deadline.timed_out() {
            deadline.keep_tails(self.script_tails(name, None).await);
        }
        let after = if opts.keep_on_failure {
            format!("the nodes are kept (--keep-on-failure): `mcc logs {name}` shows all")
        } else {
            "the cluster is removed (--keep-on-failure keeps it, to look with `mcc logs`)".into()
        };
        let made = deadline.finish(made, &format!("creating cluster '{name}'"), &after);
        self.conclude(name, &record, opts, made).await
    }

    /// `spec` with `--spread zone` resolved: its hosts (every listed one
    /// when it names none) in the order that alternates their zones.
    async fn spread_over_zones(&self, spec: &ClusterSpec) -> Result<ClusterSpec> {
        let info = self.provider.host().await?;
        let named = if spec.hosts.is_empty() {
            info.hosts.clone()
        } else {
            spec.hosts.clone()
        };
        let with_zones: Vec<(String, Option<String>)> = named
            .into_iter()
            .map(|h| {
                let z = info.zones.get(&h).cloned();
                (h, z)
            })
            .collect();
        let mut spread = spec.clone();
        spread.hosts =
            crate::model::placement::spread_by_zone(&with_zones).map_err(Error::Invalid)?;
        spread.spread_zones = false;
        Ok(spread)
    }

    /// Each of `hosts` (given with `flag`) is a host of the engine's
    /// (`mcc host list`); the first that is not is bad input.
    pub(crate) async fn check_listed(&self, flag: &str, hosts: &[String]) -> Result<()> {
        let known = self.provider.host().await?.hosts;
        match hosts.iter().find(|h| !known.contains(h)) {
            None => Ok(()),
            Some(h) => Err(Error::Invalid(format!(
                "{flag}: '{h}' is not a listed host (it knows {}); add it with `mcc host add \
                 {h} --engine URL`, or name one `mcc host list` shows",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))),
        }
    }

    /// The subnet of a new cluster: its VPC's, the one asked (if free), or
    /// a free one picked; and the subnets others hold. The caller holds
    /// the host's networks lock.
    async fn subnet_for(
        &self,
        spec: &ClusterSpec,
        networks: &[crate::provider::NetworkInfo],
    ) -> Result<(Ipv4Cidr, Vec<(String, Ipv4Cidr)>)> {
        let vpc_subnet = match &spec.vpc {
            Some(v) => Some(vpc_subnet(v, networks)?),
            None => None,
        };
        // checked again now that no other create of this host can take it
        let taken = self.taken_by_others(spec).await?;
        let subnet = match spec.subnet.or(vpc_subnet) {
            Some(s) if spec.vpc.is_some() => s,
            Some(s) => {
                subnet_free(s, &taken)?;
                s
            }
            None => {
                let cidrs: Vec<Ipv4Cidr> = taken.iter().map(|(_, s)| *s).collect();
                pick_subnet(&cidrs).ok_or_else(|| {
                    Error::Failed(
                        "no free private subnet left for the cluster network; give one \
                                   with --subnet"
                            .to_string(),
                    )
                })?
            }
        };
        Ok((subnet, taken))
    }

    /// Volumes an earlier cluster of the name kept (`delete --keep-volumes`)
    /// that this one takes back: its devices' and its nodes' (`--persist`).
    /// None of them, used or not, is removed if this create fails.
    async fn reused_volumes(&self, spec: &ClusterSpec) -> Result<Vec<String>> {
        let name = &spec.name;
        let mut reused = Vec::new();
        for d in &spec.devices {
            let vol = name.device_volume(&d.name);
            // (whose it is was checked with the rest)
            if self.provider.volume(&vol).await?.is_some() {
                self.reporter.note(&format!(
                    "reusing volume {vol} (kept from an earlier cluster '{name}')"
                ));
                reused.push(vol);
            }
        }
        // Volumes kept by an earlier cluster of this name (delete
        // --keep-volumes): those of its devices and nodes (--persist) come
        // back; none of them, used or not, is removed if this create fails.
        let kept: Vec<String> = self
            .provider
            .volumes(Some((labels::CLUSTER, name.as_str())))
            .await?
            .into_iter()
            // (an index an earlier cluster of the name left is not kept
            // for this one: the first change of this one removes it)
            .filter(|v| {
                !matches!(
                    v.labels.get(labels::ROLE).map(String::as_str),
                    Some(labels::role::META | labels::role::INDEX)
                )
            })
            .map(|v| v.name)
            .collect();
        let planned_persist: Vec<String> = std::iter::once(NodeId::FRONTEND)
            .chain((1..=spec.nodes).map(NodeId::worker))
            .flat_map(|n| {
                spec.options
                    .persist
                    .iter()
                    .map(move |p| name.persist_volume(n, p))
            })
            .filter(|v| kept.contains(v))
            .collect();
        if !planned_persist.is_empty() {
            self.reporter.note(&format!(
                "reusing {} kept node volumes of an earlier cluster '{name}'",
                planned_persist.len()
            ));
        }
        reused.extend(kept);
        reused.sort();
        reused.dedup();
        Ok(reused)
    }

    /// The record of a new cluster on `subnet`.
    async fn record_for(
        &self,
        spec: &ClusterSpec,
        subnet: Ipv4Cidr,
        taken: &[(String, Ipv4Cidr)],
        reused: Vec<String>,
        folder: Option<&context::Folder>,
    ) -> Result<ClusterRecord> {
        let name = &spec.name;
        let mut record = ClusterRecord::new(spec, subnet, name.new_meta_volume(), reused);
        if let Some(v) = &spec.vpc {
            record.first_node = Some(self.first_free(v, &record, spec.nodes).await?);
        }
        if let Some(f) = folder {
            record.on_change = f.on_change;
            record.on_start = f.on_start;
        }
        if spec.options.docker_workers {
            // the inner bridges must not hide the host's networks, nor the
            // cluster's own, from the containers in the workers
            let mut inner_taken: Vec<Ipv4Cidr> = taken.iter().map(|(_, s)| *s).collect();
            inner_taken.push(subnet);
            let (bridge, pool) = pick_inner_subnets(&inner_taken).ok_or_else(|| {
                Error::Failed(
                    "no free private subnet left for the workers' inner bridges".to_string(),
                )
            })?;
            record.docker = Some(DockerWorkers::new(name, bridge, pool).map_err(Error::Failed)?);
        }
        Ok(record)
    }

    /// How a create ends: the cluster's view, or the error after the
    /// cluster was kept (and marked `failed`) or removed.
    async fn conclude(
        &self,
        name: &crate::model::ClusterName,
        record: &ClusterRecord,
        opts: &CreateOptions,
        made: Result<()>,
    ) -> Result<ClusterView> {
        match made {
            Ok(()) => self.inspect(name).await,
            Err(e) if opts.keep_on_failure => {
                // marked, so that gc does not take it for a killed create
                if let Err(m) = self.mark_state(name, "failed").await {
                    return Err(Error::Failed(format!(
                        "{e}\n  and the cluster could not be marked as kept ({m}): `mcc gc` \
                         would remove it; inspect it now, then `mcc delete {name}`"
                    )));
                }
                self.reporter.note(&format!(
                    "keeping what was made of cluster '{name}' (--keep-on-failure); remove it \
                     with `mcc delete {name}`"
                ));
                Err(e)
            }
            Err(e) => {
                self.reporter
                    .begin(&format!("Removing what was made of '{name}'"), 0);
                let cleanup = self
                    .remove_objects(
                        name,
                        &DataVolumes::Used {
                            record: Box::new(record.clone()),
                            except: record.reused_volumes.clone(),
                        },
                    )
                    .await;
                self.reporter.end(cleanup.is_ok());
                Err(e.with_cleanup(cleanup.err()))
            }
        }
    }

    /// Everything about a create that can be refused, checked against the
    /// engine without making anything: the name is free, the host has the
    /// macvlan parent, the VPC exists, no foreign network has the
    /// cluster's name, the subnet overlaps nothing, the devices' volumes
    /// are the cluster's. `create` starts with it; the daemon calls it
    /// before it accepts a create, so a bad one is a 4xx and no operation.
    pub async fn check_create(&self, spec: &ClusterSpec) -> Result<()> {
        let name = &spec.name;
        let existing = self.load(name).await?;
        if existing.meta.is_some() || !existing.nodes.is_empty() {
            return Err(Error::Conflict(format!(
                "cluster '{name}' already exists; delete it with `mcc delete {name}` or choose \
                 another --name"
            )));
        }
        if !spec.hosts.is_empty() {
            self.check_listed("--hosts", &spec.hosts).await?;
        }
        let pinned: Vec<String> = spec.node_hosts.values().cloned().collect();
        self.check_listed("per-node host", &pinned).await?;
        if let Some(parent) = &spec.parent {
            // Elsewhere the engine says so (if cryptically: "invalid
            // subinterface vlan name").
            let known = self.provider.host().await?.interfaces;
            if known.is_some_and(|names| !names.iter().any(|n| n == parent)) {
                return Err(Error::Invalid(format!(
                    "--parent {parent}: this host has no network interface of that name; \
                     `ip link` lists them"
                )));
            }
        }
        let networks = self.provider.networks(None).await?;
        if let Some(v) = &spec.vpc {
            vpc_subnet(v, &networks)?;
        }
        if let Some(n) = networks.iter().find(|n| n.name == name.network()) {
            if spec.vpc.is_none()
                && n.labels.get(labels::CLUSTER).map(String::as_str) != Some(name.as_str())
            {
                return Err(Error::Invalid(format!(
                    "a network named '{}' exists and is not mcc's; remove it or choose another --name",
                    n.name
                )));
            }
        }
        if let (Some(s), None) = (spec.subnet, &spec.vpc) {
            subnet_free(s, &self.taken_by_others(spec).await?)?;
        }
        for d in &spec.devices {
            let vol = name.device_volume(&d.name);
            if let Some(v) = self.provider.volume(&vol).await? {
                if v.labels.get(labels::CLUSTER).map(String::as_str) != Some(name.as_str()) {
                    return Err(Error::Invalid(format!(
                        "volume '{vol}' exists and does not belong to cluster '{name}'; remove it \
                         or rename the device"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The subnets the cluster's network may not overlap: the engine's
    /// other networks and, for a bridge network, the host's own routes
    /// (when the engine runs here, where they can be read); a macvlan
    /// network is meant to be on a host segment, so its routes are no
    /// conflict.
    async fn taken_by_others(&self, spec: &ClusterSpec) -> Result<Vec<(String, Ipv4Cidr)>> {
        let own_network = spec.vpc.clone().unwrap_or_else(|| spec.name.network());
        self.taken_subnets(&own_network, spec.network_driver == NetworkDriver::Bridge)
            .await
    }

    /// Where the nodes of a new cluster in VPC `vpc` start: the first of
    /// `nodes + 1` addresses in a row that no container there holds.
    async fn first_free(&self, vpc: &str, record: &ClusterRecord, nodes: u32) -> Result<Ipv4Addr> {
        let held: Vec<Ipv4Addr> = self
            .vpc_addresses(vpc)
            .await?
            .into_iter()
            .map(|(_, ip)| ip)
            .collect();
        let plan = record.plan();
        let count = nodes.saturating_add(1);
        plan.free_run(count, &held).ok_or_else(|| {
            Error::Invalid(format!(
                "--vpc {vpc}: its subnet {} has no {count} free addresses in a row for the \
                 front-end and {nodes} workers ({} held by other containers, up to {} for \
                 nodes); give fewer --nodes, or a larger VPC (`mcc vpc create --cidr`)",
                record.subnet,
                held.len(),
                plan.max_workers() + 1,
            ))
        })
    }

    /// The meta volume's first content: hosts, workers' names, runner, context.
    async fn pack_meta(
        &self,
        spec: &ClusterSpec,
        record: &ClusterRecord,
        folder: Option<std::path::PathBuf>,
    ) -> Result<Vec<u8>> {
        let all: Vec<NodeId> = std::iter::once(NodeId::FRONTEND)
            .chain((1..=spec.nodes).map(NodeId::worker))
            .collect();
        let hosts = super::nodes::hosts_for(&spec.name, record, &all)?;
        let extra = match &record.docker {
            Some(dw) => docker_workers::cluster_files(dw, &spec.name).map_err(Error::Failed)?,
            None => Vec::new(),
        };
        // reading the user's folder is blocking file work
        tokio::task::spawn_blocking(move || {
            context::meta_archive(&hosts, &all[1..], folder.as_deref(), &extra)
        })
        .await
        .map_err(|e| Error::Failed(format!("packing the context folder: {e}")))?
    }

    /// The claim on the name, with the record and the creator.
    async fn claim(
        &self,
        spec: &ClusterSpec,
        record: &ClusterRecord,
        timeout: Duration,
    ) -> Result<()> {
        let creator = creator::current_for(creator::creator_budget(timeout));
        self.store
            .claim(&spec.name, record, &spec.frontend_image, &creator)
            .await
    }

    /// The cluster's network (unless it joins a VPC), its devices'
    /// volumes and its first index, made at once; `networks_lock` is
    /// released as soon as they are made (or failed).
    async fn make_network_and_volumes(
        &self,
        spec: &ClusterSpec,
        record: &ClusterRecord,
        members: &[NodeId],
        networks_lock: crate::provider::store::Held,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let name = &spec.name;
        let plan = record.plan();
        // a VPC's network is there already, and not the cluster's
        let own_network = record.vpc.is_none();
        self.reporter.begin(
            if own_network {
                "Creating network and volumes"
            } else {
                "Creating volumes"
            },
            usize::from(own_network) + spec.devices.len(),
        );
        let net = NetworkSpec {
            name: name.network(),
            driver: record.network_driver.as_str().to_string(),
            parent: record.parent.clone(),
            subnet: plan.subnet,
            gateway: plan.gateway,
            ip_range: plan.ip_range,
            labels: base_labels(name),
        };
        // the network, the volumes and the first index at once
        enum Job<'a> {
            Network,
            Index,
            Device(&'a crate::model::Device),
        }
        let mut jobs: Vec<Job> = vec![Job::Index];
        if own_network {
            jobs.push(Job::Network);
        }
        jobs.extend(
            spec.devices
                .iter()
                .filter(|d| !record.reused_volumes.contains(&name.device_volume(&d.name)))
                .map(Job::Device),
        );
        let made = run_all(jobs, 8, cancel, |job| {
            let net = &net;
            async move {
                match job {
                    Job::Network => self.provider.create_network(net).await?,
                    Job::Index => {
                        // its members from the start: a create cut short
                        // leaves nodes that gc knows
                        self.create_index(name, &record.meta_volume, 1, None, members)
                            .await?;
                        return Ok(());
                    }
                    Job::Device(d) => {
                        self.provider
                            .create_volume(
                                &name.device_volume(&d.name),
                                None,
                                &record.across_hosts(data_volume_labels(name, &d.name)),
                            )
                            .await?;
                    }
                }
                self.reporter.advance(match job {
                    Job::Device(d) => d.name.as_str(),
                    _ => "network",
                });
                Ok(())
            }
        })
        .await;
        drop(networks_lock);
        let made = first_error(made);
        self.reporter.end(made.is_ok());
        made.map(|_| ()).map_err(|e| match e {
            Error::Conflict(message) => Error::Failed(format!(
                "{message}: another network took it meanwhile; try again, or give a free \
                 --subnet"
            )),
            e => e,
        })
    }

    async fn provision(
        &self,
        spec: &ClusterSpec,
        record: &ClusterRecord,
        prepared: Prepared,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let Prepared {
            images,
            networks_lock,
            archive,
        } = prepared;
        let name = &spec.name;
        let all: Vec<NodeId> = std::iter::once(NodeId::FRONTEND)
            .chain((1..=spec.nodes).map(NodeId::worker))
            .collect();
        self.make_network_and_volumes(spec, record, &all, networks_lock, cancel)
            .await?;
        self.meta_volume(name, record).await?;
        let workers: Vec<NodeId> = all[1..].to_vec();
        self.store.write(name, META_MOUNT, archive).await?;
        self.store
            .write(name, context::SHARED_MOUNT, context::shared_archive()?)
            .await?;
        if cancel.is_cancelled() {
            return Err(Error::Interrupted);
        }

        let blueprint = Blueprint {
            name,
            record,
            images: &images,
            timeout,
            placements: &spec.node_hosts,
        };
        self.bring_up(&blueprint, &all, &workers, cancel).await?;
        self.on_change(name, cancel).await?;
        if cancel.is_cancelled() {
            return Err(Error::Interrupted);
        }
        self.mark_state(name, "ready").await
    }
}

/// What a create has checked and made ready before its claim.
struct Prepared {
    images: HashMap<String, crate::provider::ImageInfo>,
    /// Held until the network exists.
    networks_lock: crate::provider::store::Held,
    /// The meta volume's first content.
    archive: Vec<u8>,
}

/// How long after its start a create's or addnode's process is taken as
/// gone by an mcc that cannot check it (another host or container): its
/// timeout, and time to pull images and roll back.
/// Refuses a subnet that overlaps one of `taken`, naming it.
fn subnet_free(s: Ipv4Cidr, taken: &[(String, Ipv4Cidr)]) -> Result<()> {
    match taken.iter().find(|(_, t)| t.overlaps(&s)) {
        Some((net, other)) => Err(Error::Invalid(format!(
            "subnet {s} overlaps {other} of {net}; choose another --subnet or leave it out and \
             mcc picks a free one"
        ))),
        None => Ok(()),
    }
}

/// A cancellation token that also fires after a timeout; a timeout then
/// reads as such, not as an interruption.
pub(crate) struct Deadline {
    token: CancellationToken,
    parent: CancellationToken,
    timeout: Duration,
    timer: tokio::task::JoinHandle<()>,
    /// What the nodes' scripts printed last, read when the time ran out
    /// and before the rollback removed the nodes that hold it.
    tails: std::sync::Mutex<Option<String>>,
}

impl Deadline {
    pub(crate) fn start(timeout: Duration, cancel: &CancellationToken) -> Deadline {
        let token = cancel.child_token();
        let timer = {
            let token = token.clone();
            tokio::spawn(async move {
                tokio::time::sleep(timeout).await;
                token.cancel();
            })
        };
        Deadline {
            token,
            parent: cancel.clone(),
            timeout,
            timer,
            tails: std::sync::Mutex::new(None),
        }
    }

    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Whether the time ran out (not Ctrl-C).
    pub(crate) fn timed_out(&self) -> bool {
        self.token.is_cancelled() && !self.parent.is_cancelled()
    }

    /// Keeps the scripts' last lines for the timeout's error; call it
    /// before the nodes are removed.
    pub(crate) fn keep_tails(&self, tails: String) {
        if let Ok(mut t) = self.tails.lock() {
            *t = Some(tails);
        }
    }

    /// The outcome of the work done under this deadline.
    /// `after` says what became of the nodes, and where their output can
    /// still be read (the nodes a rollback removed have none left).
    pub(crate) fn finish<T>(self, r: Result<T>, what: &str, after: &str) -> Result<T> {
        self.timer.abort();
        let timed_out = self.timed_out();
        match r {
            Err(Error::Interrupted) if timed_out => {
                let tails = self.tails.lock().ok().and_then(|mut t| t.take());
                let tails = match tails {
                    Some(t) if !t.trim().is_empty() => {
                        format!("; what the scripts printed last:\n{}", t.trim_end())
                    }
                    _ => "; the scripts printed nothing".into(),
                };
                Err(Error::Failed(format!(
                    "{what} timed out after {} (--timeout); a context script may hang; \
                     {after}{tails}",
                    human_duration(self.timeout)
                )))
            }
            r => r,
        }
    }
}

pub(crate) fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 60, s % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}
