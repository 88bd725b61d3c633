//! `addnode`, `delnode` and `recreate`: change a cluster's nodes and keep
//! every node's hosts file current, without restarting any node; then run
//! the context's on-change hooks everywhere.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::create::Deadline;
use super::creator;
use super::nodes::Blueprint;
use super::parallel::{first_error, run_all, PARALLELISM};
use super::query::NodeView;
use super::{ClusterView, Clusters};
use crate::error::{Error, Result};
use crate::model::{labels, ClusterName, ClusterRecord, NodeId, Role};
use crate::provider::ImageInfo;

/// Which workers `delnode` removes.
#[derive(Clone, Debug)]
pub enum Removal {
    Nodes(Vec<NodeId>),
    /// The `k` highest-numbered workers.
    Count(u32),
}

fn check_count(count: u32) -> Result<()> {
    if count == 0 {
        return Err(Error::Invalid("--count must be at least 1".into()));
    }
    Ok(())
}

/// The workers an addnode makes, and why numbers were skipped.
struct NewWorkers {
    nodes: Vec<NodeId>,
    notes: Vec<String>,
}

/// The `count` lowest worker numbers after `existing` whose address is
/// free: not the gateway's, not fixed for another node, not held by
/// another container of the VPC (`held`); refused when the subnet has no
/// room for them.
fn pick_new_workers(
    name: &ClusterName,
    record: &crate::model::ClusterRecord,
    existing: &[NodeId],
    held: &[(String, Ipv4Addr)],
    count: u32,
) -> Result<NewWorkers> {
    let plan = record.plan();
    // Addresses already held: the members', and those fixed for nodes to come.
    let mut taken: Vec<(Ipv4Addr, NodeId)> = existing
        .iter()
        .filter_map(|n| Some((plan.ip(*n)?, *n)))
        .chain(plan.fixed.iter().map(|(n, ip)| (*ip, *n)))
        .collect();
    let mut new = NewWorkers {
        nodes: Vec::new(),
        notes: Vec::new(),
    };
    let mut i = 1;
    while new.nodes.len() < count as usize {
        let n = NodeId::worker(i);
        i += 1;
        if existing.contains(&n) {
            continue;
        }
        let Some(ip) = plan.ip(n) else {
            return Err(Error::Invalid(format!(
                "--count {count}: subnet {} of cluster '{name}' has room for {} workers; {count} \
                 more do not fit",
                record.subnet,
                plan.max_workers(),
            )));
        };
        if ip == plan.gateway {
            new.notes
                .push(format!("skipping {n}: its address {ip} is the gateway's"));
            continue;
        }
        if let Some((_, owner)) = taken.iter().find(|(t, owner)| *t == ip && *owner != n) {
            new.notes.push(format!(
                "skipping {n}: its address {ip} is {owner}'s (fixed with --ip)"
            ));
            continue;
        }
        if let Some((who, _)) = held.iter().find(|(_, t)| *t == ip) {
            new.notes.push(format!(
                "skipping {n}: its address {ip} is held by container {who} in VPC {}",
                record.vpc.as_deref().unwrap_or_default()
            ));
            continue;
        }
        taken.push((ip, n));
        new.nodes.push(n);
    }
    let mut after = existing.to_vec();
    after.extend(&new.nodes);
    after.sort();
    plan.check_unique(&after).map_err(Error::Invalid)?;
    Ok(new)
}

/// The workers a delnode removes, of the cluster's `members`; refused
/// when it names the front-end, a node that is no worker, or more workers
/// than there are.
fn workers_to_remove(
    name: &ClusterName,
    members: &[NodeId],
    which: &Removal,
) -> Result<Vec<NodeId>> {
    let workers: Vec<NodeId> = members
        .iter()
        .copied()
        .filter(|n| n.role == Role::Worker)
        .collect();
    match which {
        Removal::Count(k) => {
            check_count(*k)?;
            if *k as usize > workers.len() {
                return Err(Error::Invalid(format!(
                    "--count {k}: cluster '{name}' has only {} workers",
                    workers.len()
                )));
            }
            Ok(workers.iter().rev().take(*k as usize).copied().collect())
        }
        Removal::Nodes(list) => {
            let mut list = list.clone();
            list.sort();
            list.dedup();
            for n in &list {
                if n.role == Role::Frontend {
                    return Err(Error::Invalid(format!(
                        "the front-end of '{name}' cannot be removed; delete the cluster with \
                         `mcc delete {name}`"
                    )));
                }
                if !workers.contains(n) {
                    let have: Vec<String> = workers.iter().map(NodeId::hostname).collect();
                    return Err(Error::Invalid(format!(
                        "cluster '{name}' has no node {n}; its workers are: {}",
                        if have.is_empty() {
                            "(none)".to_string()
                        } else {
                            have.join(", ")
                        }
                    )));
                }
            }
            Ok(list)
        }
    }
}

impl Clusters {
    /// Whether a delnode can go ahead, checked without removing anything
    /// (the daemon asks before it accepts one).
    pub async fn check_remove_nodes(&self, name: &ClusterName, which: &Removal) -> Result<()> {
        let loaded = self.load_existing(name).await?;
        loaded.record_to_change()?;
        let members = self.recorded_members(&loaded).await?;
        workers_to_remove(name, &members, which).map(|_| ())
    }

    /// Adds `count` workers, taking the lowest free numbers, and runs the
    /// cluster's context on them. On failure the new nodes are removed
    /// and the hosts file is put back.
    pub async fn add_nodes(
        &self,
        name: &ClusterName,
        count: u32,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<Vec<NodeView>> {
        self.add_nodes_on(name, count, None, timeout, cancel).await
    }

    /// [`Clusters::add_nodes`], the new workers on `host` (a cluster over
    /// several hosts) instead of round-robin.
    pub async fn add_nodes_on(
        &self,
        name: &ClusterName,
        count: u32,
        host: Option<&str>,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<Vec<NodeView>> {
        check_count(count)?;
        let _serialized = self.lock_cluster(name).await?;
        let loaded = self.load_existing(name).await?;
        let record = loaded.record_to_change()?.clone();
        if let Some(h) = host {
            self.check_host(name, &record, h).await?;
        }
        // In a VPC, held until the new nodes exist, as in create.
        let _addresses = match &record.vpc {
            Some(v) => Some(self.lock_vpc_addresses(v).await?),
            None => None,
        };
        let (existing, new) = self.new_workers(name, &loaded, count).await?;
        for note in &new.notes {
            self.reporter.note(note);
        }
        let new = new.nodes;
        let placements: BTreeMap<NodeId, String> = match host {
            Some(h) => new.iter().map(|n| (*n, h.to_string())).collect(),
            None => BTreeMap::new(),
        };
        self.refuse_lost_hosts(name, &record, &new, &placements)
            .await?;

        let images = self
            .ensure_images(&[&record.frontend_image, &record.worker_image], cancel)
            .await?;
        let deadline = Deadline::start(timeout, cancel);
        let grown = self
            .grow(
                name,
                &loaded,
                &existing,
                &new,
                &images,
                &placements,
                timeout,
                &deadline,
            )
            .await;
        deadline.finish(
            grown,
            &format!("adding nodes to '{name}'"),
            "the new nodes are removed",
        )?;
        let view = self.inspect(name).await?;
        Ok(view
            .nodes
            .into_iter()
            .filter(|n| new.iter().any(|x| x.hostname() == n.name))
            .collect())
    }

    /// Whether an addnode of `count` can go ahead, checked without making
    /// anything (the daemon asks before it accepts one).
    pub async fn check_add_nodes(&self, name: &ClusterName, count: u32) -> Result<()> {
        check_count(count)?;
        let loaded = self.load_existing(name).await?;
        loaded.record_to_change()?;
        self.new_workers(name, &loaded, count).await.map(|_| ())
    }

    /// The cluster's recorded members and the workers an addnode of
    /// `count` makes: the lowest free numbers whose address is free.
    async fn new_workers(
        &self,
        name: &ClusterName,
        loaded: &super::Loaded,
        count: u32,
    ) -> Result<(Vec<NodeId>, NewWorkers)> {
        let record = loaded.record_to_change()?;
        // members, also those whose container is missing: their numbers
        // and addresses are theirs until they are removed with delnode
        let existing = self.recorded_members(loaded).await?;
        // In a VPC, other containers hold addresses too: a number whose
        // address one of them holds is skipped, as one fixed for another
        // node is.
        let held: Vec<(String, Ipv4Addr)> = match &record.vpc {
            Some(v) => self
                .vpc_addresses(v)
                .await?
                .into_iter()
                .filter(|(c, _)| !loaded.nodes.iter().any(|n| n.info.name == *c))
                .collect(),
            None => Vec::new(),
        };
        let new = pick_new_workers(name, record, &existing, &held, count)?;
        Ok((existing, new))
    }

    /// Makes `nodes` (absent now) and contextualizes them; on failure
    /// removes them, with the node volumes they made, and restores the
    /// hosts file. `members` are the cluster's recorded members (whether
    /// their container exists or not), as the caller has read them.
    #[allow(clippy::too_many_arguments)]
    async fn grow(
        &self,
        name: &ClusterName,
        loaded: &super::Loaded,
        members: &[NodeId],
        nodes: &[NodeId],
        images: &HashMap<String, ImageInfo>,
        placements: &BTreeMap<NodeId, String>,
        timeout: Duration,
        deadline: &Deadline,
    ) -> Result<()> {
        let cancel = deadline.token();
        let record = loaded.record_to_change()?.clone();
        let before = members.to_vec();
        let mut after = before.clone();
        after.extend(nodes);
        after.sort();
        after.dedup();
        let all_workers: Vec<NodeId> = after
            .iter()
            .copied()
            .filter(|n| n.role == Role::Worker)
            .collect();
        self.meta_volume(name, &record).await?;
        self.renew_nodes_cert(name, &record).await?;
        let kept_volumes = self.node_volumes(name, nodes).await?;

        // Names first, so the new nodes resolve everywhere from their
        // start; they become members only once made (until then `gc`
        // takes them for the leftovers of a killed addnode).
        self.write_hosts(loaded, &after).await?;
        let made = self
            .bring_up(
                &Blueprint {
                    name,
                    record: &record,
                    images,
                    timeout,
                    placements,
                },
                nodes,
                &all_workers,
                cancel,
            )
            .await;
        if let Err(e) = made {
            if deadline.timed_out() {
                deadline.keep_tails(self.script_tails(name, Some(nodes)).await);
            }
            self.reporter
                .begin("Removing the nodes just made", nodes.len());
            let cleanup = self.undo_grow(name, nodes, &before, &kept_volumes).await;
            self.reporter.end(cleanup.is_ok());
            return Err(e.with_cleanup(cleanup.err()));
        }
        if after != before {
            self.write_members(name, &after).await?;
        }
        // The nodes are made and working; a failing hook is the hook's
        // problem, said as such rather than as a failed addnode.
        self.on_change(name, cancel).await.map_err(|e| {
            let made: Vec<String> = nodes.iter().map(NodeId::hostname).collect();
            Error::Failed(format!(
                "{} made and running, but an on-change hook failed afterwards: {e}",
                made.join(", ")
            ))
        })
    }

    /// Removes what a failed addnode made of `nodes`: the nodes this
    /// process made and their new volumes (not `kept_volumes`, there
    /// before), and the hosts file without the nodes it failed to add.
    async fn undo_grow(
        &self,
        name: &ClusterName,
        nodes: &[NodeId],
        before: &[NodeId],
        kept_volumes: &[String],
    ) -> Result<()> {
        // Only the nodes this process made: with a concurrent mcc
        // elsewhere, a name conflict may mean the node is theirs.
        let me = creator::current_for(0);
        let now = self.load_existing(name).await?;
        let mine: Vec<NodeId> = now
            .nodes
            .iter()
            .filter(|n| nodes.contains(&n.node))
            .filter(|n| {
                n.info
                    .labels
                    .get(labels::CREATOR)
                    .is_some_and(|c| creator::same_process(c, &me))
            })
            .map(|n| n.node)
            .collect();
        self.remove_containers(name, &mine).await?;
        let made_volumes: Vec<String> = self
            .node_volumes(name, &mine)
            .await?
            .into_iter()
            .filter(|v| !kept_volumes.contains(v))
            .collect();
        for v in made_volumes {
            self.provider.remove_volume(&v).await?;
        }
        // The members as recorded now (a concurrent change included),
        // less the new nodes this run failed to add; nodes being
        // recreated stay members, to be recreated again.
        let now = self.load_existing(name).await?;
        let members: Vec<NodeId> = self
            .recorded_members(&now)
            .await?
            .into_iter()
            .filter(|m| before.contains(m) || !nodes.contains(m))
            .collect();
        self.write_hosts(&now, &members).await
    }

    /// Names of the per-node volumes (`--persist`) of these nodes.
    async fn node_volumes(&self, name: &ClusterName, nodes: &[NodeId]) -> Result<Vec<String>> {
        let hosts: Vec<String> = nodes.iter().map(NodeId::hostname).collect();
        Ok(self
            .provider
            .volumes(Some((labels::CLUSTER, name.as_str())))
            .await?
            .into_iter()
            .filter(|v| {
                v.labels.get(labels::ROLE).map(String::as_str) == Some("persist")
                    && v.labels
                        .get(labels::NODE)
                        .is_some_and(|n| hosts.contains(n))
            })
            .map(|v| v.name)
            .collect())
    }

    pub(crate) async fn remove_containers(
        &self,
        name: &ClusterName,
        nodes: &[NodeId],
    ) -> Result<()> {
        let names: Vec<String> = nodes.iter().map(|n| name.container(*n)).collect();
        let results = run_all(
            names,
            PARALLELISM,
            &CancellationToken::new(),
            |c| async move {
                let r = self.provider.remove_container(&c).await;
                self.reporter.advance(&c);
                r
            },
        )
        .await;
        first_error(results).map(|_| ())
    }

    /// Removes workers and rewrites the hosts file of the nodes that stay.
    /// Their per-node volumes go too, unless `keep_state`: then a later
    /// `addnode` that gives the same number finds them again.
    pub async fn remove_nodes(
        &self,
        name: &ClusterName,
        which: &Removal,
        keep_state: bool,
    ) -> Result<ClusterView> {
        let _serialized = self.lock_cluster(name).await?;
        let loaded = self.load_existing(name).await?;
        let record = loaded.record_to_change()?;
        // mcc's helper rewrites the hosts file from the front-end's image:
        // make sure it is there before anything is removed
        self.ensure_images(&[&record.frontend_image], &CancellationToken::new())
            .await?;
        // members, also those whose container is missing: they can go too
        let members = self.recorded_members(&loaded).await?;
        let gone = workers_to_remove(name, &members, which)?;
        let remaining: Vec<NodeId> = members
            .iter()
            .copied()
            .filter(|n| !gone.contains(n))
            .collect();
        // Members first: if this is cut short, `gc` removes the containers
        // of nodes that are no longer members.
        self.write_members(name, &remaining).await?;
        self.reporter.begin("Removing nodes", gone.len());
        let removed = self.remove_containers(name, &gone).await;
        self.reporter.end(removed.is_ok());
        removed?;
        if !keep_state {
            for v in self.node_volumes(name, &gone).await? {
                self.provider.remove_volume(&v).await?;
            }
        }
        let after = self.load_existing(name).await?;
        self.write_hosts(&after, &remaining).await?;
        self.on_change(name, &CancellationToken::new()).await?;
        self.inspect(name).await
    }

    /// Brings nodes back as new containers with the same name, address and
    /// per-node volumes: after a node was broken, or removed behind mcc's
    /// back. Their context runs again, then the on-change hooks everywhere.
    pub async fn recreate(
        &self,
        name: &ClusterName,
        nodes: &[NodeId],
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<ClusterView> {
        self.recreate_on(name, nodes, None, timeout, cancel).await
    }

    /// [`Clusters::recreate`], the nodes made on `host` (a cluster over
    /// several hosts: a node whose host was lost comes back elsewhere with
    /// its name, address and shared folders); without one each node stays
    /// on the host it runs on.
    pub async fn recreate_on(
        &self,
        name: &ClusterName,
        nodes: &[NodeId],
        host: Option<&str>,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<ClusterView> {
        let mut nodes = nodes.to_vec();
        nodes.sort();
        nodes.dedup();
        let nodes = &nodes[..];
        let _serialized = self.lock_cluster(name).await?;
        let loaded = self.load_existing(name).await?;
        let record = loaded.record_to_change()?.clone();
        let members = self.recorded_members(&loaded).await?;
        for n in nodes {
            if !members.contains(n) {
                return Err(Error::Invalid(format!(
                    "{n} is not a node of cluster '{name}' (its nodes: {}); add workers with \
                     `mcc addnode {name}`",
                    members
                        .iter()
                        .map(NodeId::hostname)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            if loaded.node(*n).is_none() {
                self.reporter.note(&format!(
                    "{n} has no container (removed behind mcc's back?): making it again"
                ));
            }
        }
        if let Some(h) = host {
            self.check_host(name, &record, h).await?;
        }
        let placements: BTreeMap<NodeId, String> = nodes
            .iter()
            .filter_map(|n| {
                let here = loaded.node(*n).and_then(|c| c.info.host.clone());
                Some((*n, host.map(String::from).or(here)?))
            })
            .collect();
        self.refuse_lost_hosts(name, &record, nodes, &placements)
            .await?;
        // Everything a new container needs is checked before the old one
        // goes: a missing image must not turn a broken node into no node.
        let images = self
            .ensure_images(&[&record.frontend_image, &record.worker_image], cancel)
            .await?;
        self.meta_volume(name, &record).await?;
        self.reporter
            .begin("Removing the old containers", nodes.len());
        let removed = self.remove_containers(name, nodes).await;
        self.reporter.end(removed.is_ok());
        removed?;
        // removing containers leaves the recorded members as they were
        let now = self.load_existing(name).await?;
        let deadline = Deadline::start(timeout, cancel);
        let grown = self
            .grow(
                name,
                &now,
                &members,
                nodes,
                &images,
                &placements,
                timeout,
                &deadline,
            )
            .await;
        deadline.finish(
            grown,
            &format!("recreating nodes of '{name}'"),
            &format!("they are members still, to recreate again (`mcc recreate {name} …`)"),
        )?;
        self.inspect(name).await
    }
}

impl Clusters {
    /// Refuses to make `nodes` (on their `placements`, else their
    /// round-robin hosts) when one would go on a host the swarm has lost:
    /// its engine could not attach it to the overlay (it waits 20 s for
    /// the managers, then fails).
    async fn refuse_lost_hosts(
        &self,
        name: &ClusterName,
        record: &ClusterRecord,
        nodes: &[NodeId],
        placements: &BTreeMap<NodeId, String>,
    ) -> Result<()> {
        if record.hosts.is_empty() {
            return Ok(());
        }
        let lost = self.provider.lost_hosts().await?;
        for n in nodes {
            let on = placements
                .get(n)
                .map(String::as_str)
                .or_else(|| crate::model::placement::host_of(&record.hosts, *n));
            if let Some(h) = on.filter(|h| lost.iter().any(|l| l == h)) {
                let others: Vec<&str> = record
                    .hosts
                    .iter()
                    .map(String::as_str)
                    .filter(|o| !lost.iter().any(|l| l == o))
                    .collect();
                return Err(Error::Failed(format!(
                    "{n} of cluster '{name}' goes on host {h}, which the swarm has lost (its link \
                     cut or its machine down: `mcc host list`); put it on another with --host \
                     ({}), or try again once {h} is back",
                    match others.is_empty() {
                        true => "none answers now".to_string(),
                        false => others.join(", "),
                    }
                )));
            }
        }
        Ok(())
    }

    /// `--host h` of addnode or recreate: a host of this engine's, for a
    /// cluster that spans hosts.
    async fn check_host(
        &self,
        name: &ClusterName,
        record: &ClusterRecord,
        host: &str,
    ) -> Result<()> {
        if record.hosts.is_empty() {
            return Err(Error::Invalid(format!(
                "--host {host}: cluster '{name}' is on one engine (made without --hosts); \
                 leave --host out"
            )));
        }
        self.check_listed("--host", &[host.to_string()]).await
    }
}
