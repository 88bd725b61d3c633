//! `create`: validate, plan, claim the name, provision, contextualize; on
//! any failure or interruption, remove everything made (unless asked not to).

use std::collections::HashMap;

use tokio_util::sync::CancellationToken;

use super::lock::{HostLock, LOCK_TIMEOUT};
use super::nodes::{base_labels, data_volume_labels, meta_volume_labels, Blueprint};
use super::parallel::{first_error, run_all};
use super::query::ClusterView;
use super::{creator, Clusters};
use crate::context;
use crate::error::{Error, Result};
use crate::model::address::pick_subnet;
use crate::model::{
    labels, ClusterRecord, ClusterSpec, Ipv4Cidr, NetworkDriver, NodeId, META_MOUNT,
};
use crate::provider::{ContainerSpec, Mount, NetworkSpec};

#[derive(Clone, Debug, Default)]
pub struct CreateOptions {
    /// Leave what was made in place when the create fails, for debugging.
    pub keep_on_failure: bool,
}

impl Clusters {
    pub async fn create(
        &self,
        spec: &ClusterSpec,
        opts: &CreateOptions,
        cancel: &CancellationToken,
    ) -> Result<ClusterView> {
        let name = &spec.name;

        // Everything that can be refused is checked before anything is made.
        let existing = self.load(name).await?;
        if existing.meta.is_some() || !existing.nodes.is_empty() {
            return Err(Error::Conflict(format!(
                "cluster '{name}' already exists; delete it with `mcc delete {name}` or choose \
                 another --name"
            )));
        }
        // Whether the engine runs on this host, whose interfaces and routes
        // mcc can then read.
        let local = self.provider.endpoint().starts_with("unix://");
        if let Some(parent) = &spec.parent {
            // Elsewhere the engine says so (if cryptically: "invalid
            // subinterface vlan name").
            let net = std::path::Path::new("/sys/class/net");
            if local && net.is_dir() && !net.join(parent).exists() {
                return Err(Error::Invalid(format!(
                    "--parent {parent}: this host has no network interface of that name; \
                     `ip link` lists them"
                )));
            }
        }
        let images = self
            .ensure_images(&[&spec.frontend_image, &spec.worker_image])
            .await?;
        // Held from listing the networks until ours exists, so that creates
        // running at once on this host do not pick the same free subnet.
        let networks_lock = Some(
            HostLock::acquire("networks", "picking a subnet", LOCK_TIMEOUT, &|m| {
                self.reporter.note(m)
            })
            .await?,
        );
        let networks = self.provider.networks(None).await?;
        if let Some(n) = networks.iter().find(|n| n.name == name.network()) {
            if n.labels.get(labels::CLUSTER).map(String::as_str) != Some(name.as_str()) {
                return Err(Error::Invalid(format!(
                    "a network named '{}' exists and is not mcc's; remove it or choose another --name",
                    n.name
                )));
            }
        }
        // A bridge network must not shadow the host's own routes (when the
        // engine runs here, where they can be read); a macvlan network is
        // meant to be on a host segment, so its routes are no conflict.
        let routes = if local && spec.network_driver == NetworkDriver::Bridge {
            host_routes()
        } else {
            Vec::new()
        };
        let taken: Vec<(String, Ipv4Cidr)> = networks
            .iter()
            .filter(|n| n.name != name.network())
            .flat_map(|n| n.subnets.iter().map(move |s| (n.name.clone(), *s)))
            .chain(
                routes
                    .into_iter()
                    .map(|s| ("(a route of this host)".to_string(), s)),
            )
            .collect();
        let subnet = match spec.subnet {
            Some(s) => {
                if let Some((net, other)) = taken.iter().find(|(_, t)| t.overlaps(&s)) {
                    return Err(Error::Invalid(format!(
                        "subnet {s} overlaps {other} of network '{net}'; choose another --subnet \
                         or leave it out and mcc picks a free one"
                    )));
                }
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
        let mut reused = Vec::new();
        for d in &spec.devices {
            let vol = name.device_volume(&d.name);
            if let Some(v) = self.provider.volume(&vol).await? {
                if v.labels.get(labels::CLUSTER).map(String::as_str) != Some(name.as_str()) {
                    return Err(Error::Invalid(format!(
                        "volume '{vol}' exists and does not belong to cluster '{name}'; remove it \
                         or rename the device"
                    )));
                }
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
            .filter(|v| v.labels.get(labels::ROLE).map(String::as_str) != Some("meta"))
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
        let record = ClusterRecord::new(spec, subnet, name.new_meta_volume(), reused);

        // The claim: container names are unique on the engine, so of two
        // creates of one name exactly one gets past this line. The loser
        // has made nothing and removes nothing.
        self.claim(spec, &record).await?;

        let made = self
            .provision(spec, &record, &images, networks_lock, cancel)
            .await;
        match made {
            Ok(()) => self.inspect(name).await,
            Err(e) if opts.keep_on_failure => {
                // marked, so that gc does not take it for a killed create
                let _ = self.mark_state(name, "failed").await;
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
                    .remove_objects(name, &record.reused_volumes, false)
                    .await;
                self.reporter.end(cleanup.is_ok());
                Err(e.with_cleanup(cleanup.err()))
            }
        }
    }

    async fn claim(&self, spec: &ClusterSpec, record: &ClusterRecord) -> Result<()> {
        let name = &spec.name;
        let mut l = base_labels(name);
        l.insert(labels::ROLE.into(), "meta".into());
        l.insert(labels::RECORD.into(), record.to_label());
        l.insert(labels::CREATOR.into(), creator::current());
        let meta = ContainerSpec {
            name: name.meta_container(),
            image: spec.frontend_image.clone(),
            // never started: it holds the record and gives access to the
            // meta volume while every node is stopped
            cmd: Some(vec!["true".into()]),
            labels: l,
            mounts: vec![Mount::Volume {
                name: record.meta_volume.clone(),
                target: META_MOUNT.into(),
                labels: meta_volume_labels(name),
            }],
            ..Default::default()
        };
        match self.provider.create_container(&meta).await {
            Ok(_) => Ok(()),
            Err(Error::Conflict(_)) => Err(Error::Conflict(format!(
                "cluster '{name}' already exists or is being created by another mcc \
                 (container {} is taken); choose another --name",
                name.meta_container()
            ))),
            Err(e) => Err(e),
        }
    }

    async fn provision(
        &self,
        spec: &ClusterSpec,
        record: &ClusterRecord,
        images: &HashMap<String, crate::provider::ImageInfo>,
        networks_lock: Option<HostLock>,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let name = &spec.name;
        let plan = record.plan();
        self.reporter
            .begin("Creating network and volumes", 1 + spec.devices.len());
        let net = NetworkSpec {
            name: name.network(),
            driver: record.network_driver.as_str().to_string(),
            parent: record.parent.clone(),
            subnet: plan.subnet,
            gateway: plan.gateway,
            ip_range: plan.ip_range,
            labels: base_labels(name),
        };
        // the network and the volumes at once
        let mut jobs: Vec<Option<&crate::model::Device>> = vec![None];
        jobs.extend(
            spec.devices
                .iter()
                .filter(|d| !record.reused_volumes.contains(&name.device_volume(&d.name)))
                .map(Some),
        );
        let made = run_all(jobs, 8, cancel, |job| {
            let net = &net;
            async move {
                match job {
                    None => self.provider.create_network(net).await?,
                    Some(d) => {
                        self.provider
                            .create_volume(
                                &name.device_volume(&d.name),
                                &data_volume_labels(name, &d.name),
                            )
                            .await?;
                    }
                }
                self.reporter
                    .advance(job.map_or("network", |d| d.name.as_str()));
                Ok(())
            }
        })
        .await;
        drop(networks_lock);
        let made = first_error(made);
        self.reporter.end(made.is_ok());
        made.map_err(|e| match e {
            Error::Engine { message, .. } if message.contains("overlap") => Error::Failed(format!(
                "subnet {} was taken by another network meanwhile ({message}); try again, or \
                 give a free --subnet",
                plan.subnet
            )),
            e => e,
        })?;

        let meta_volume = self.meta_volume(name, record).await?;
        let all: Vec<NodeId> = std::iter::once(NodeId::FRONTEND)
            .chain((1..=spec.nodes).map(NodeId::worker))
            .collect();
        let workers: Vec<NodeId> = all[1..].to_vec();
        let hosts = super::nodes::hosts_for(name, record, &all)?;
        let archive = context::meta_archive(&hosts, &workers, spec.context.as_deref())?;
        self.provider
            .upload(&name.meta_container(), META_MOUNT, archive)
            .await?;
        if cancel.is_cancelled() {
            return Err(Error::Interrupted);
        }

        let blueprint = Blueprint {
            name,
            record,
            images,
            meta_mountpoint: &meta_volume.mountpoint,
        };
        self.bring_up(&blueprint, &all, &workers, cancel).await?;
        self.on_change(name, cancel).await?;
        if cancel.is_cancelled() {
            return Err(Error::Interrupted);
        }
        self.mark_state(name, "ready").await
    }
}

/// IPv4 routes of this machine (when the engine is local, its networks must
/// not shadow them). Empty when they cannot be read.
fn host_routes() -> Vec<Ipv4Cidr> {
    let Ok(text) = std::fs::read_to_string("/proc/net/route") else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (iface, dest, mask) = (f.first()?, f.get(1)?, f.get(7)?);
            // the engine's own bridges are covered by its network list
            if iface.starts_with("docker") || iface.starts_with("br-") {
                return None;
            }
            let dest = u32::from_str_radix(dest, 16).ok()?.swap_bytes();
            let mask = u32::from_str_radix(mask, 16).ok()?.swap_bytes();
            if mask == 0 {
                return None; // the default route covers everything
            }
            Ipv4Cidr::new(dest.into(), mask.count_ones() as u8).ok()
        })
        .collect()
}
