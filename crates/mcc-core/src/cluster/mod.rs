//! Cluster operations as steps over a [`Engine`]: create, add and remove
//! nodes, start, stop, delete, garbage-collect, query, run commands.
//!
//! Every operation starts by reading the engine's labelled objects
//! ([`Clusters::load`]): the nodes, the record container whose label is
//! the cluster's record, and the index volume whose labels are its state
//! and members (`state`). Files of the meta volume hold what nodes see
//! (hosts file, scripts, logs); nothing is kept on this host but locks.

mod attach;
mod bringup;
mod create;
mod creator;
mod delete;
mod engines;
mod exec;
#[cfg(test)]
mod faults;
mod gc;
mod lifecycle;
mod membership;
mod nodes;
pub mod parallel;
mod query;
pub mod run;
mod run_io;
mod state;
pub mod volume;
pub mod vpc;

use std::collections::HashMap;
use std::sync::Arc;

pub use attach::{AttachOptions, Control, Session};
pub use create::{CreateOptions, DEFAULT_TIMEOUT};
pub use delete::DeleteReport;
pub use exec::{ExecReport, OutputLine, Target};
pub use gc::{GcAction, GcFailure, GcReport};
pub use membership::Removal;
pub use query::{ClusterStatus, ClusterView, NodeView, PersistView};

use crate::error::{Error, Result};
use crate::lock::LOCK_TIMEOUT;
use crate::model::{labels, ClusterName, ClusterRecord, NodeId, Role};
use crate::provider::store::{ClusterStore, Held};
use crate::provider::{ContainerInfo, ContainerState, Engine, VolumeInfo};

/// Where progress goes: a terminal display, plain lines, or nowhere.
pub trait Reporter: Send + Sync {
    /// A step begins; `total` is how many items it has (0: unknown).
    fn begin(&self, title: &str, total: usize);
    /// One item of the current step is done.
    fn advance(&self, item: &str);
    /// The current step ends.
    fn end(&self, ok: bool);
    /// A message for the user outside any step.
    fn note(&self, message: &str);
}

/// A reporter that reports nothing.
pub struct Silent;

impl Reporter for Silent {
    fn begin(&self, _: &str, _: usize) {}
    fn advance(&self, _: &str) {}
    fn end(&self, _: bool) {}
    fn note(&self, _: &str) {}
}

/// Entry point of every cluster operation.
#[derive(Clone)]
pub struct Clusters {
    provider: Arc<dyn Engine>,
    /// Where each cluster's claim, record and files are kept.
    store: Arc<dyn ClusterStore>,
    reporter: Arc<dyn Reporter>,
}

/// A node container as found on the engine.
#[derive(Clone, Debug)]
pub(crate) struct NodeContainer {
    pub node: NodeId,
    pub info: ContainerInfo,
}

impl NodeContainer {
    pub fn running(&self) -> bool {
        self.info.state == ContainerState::Running
    }
}

/// A cluster's record and nodes, as [`Clusters::objects`] reads them.
#[derive(Clone, Debug)]
pub struct ClusterObjects {
    pub name: ClusterName,
    /// `None` when its record container is missing or unreadable
    /// (`problem` says which).
    pub record: Option<ClusterRecord>,
    pub problem: Option<String>,
    /// Front-end first, then workers by index.
    pub nodes: Vec<(NodeId, ContainerInfo)>,
}

impl ClusterObjects {
    /// The workers' containers, by index.
    pub fn workers(&self) -> impl Iterator<Item = (NodeId, &ContainerInfo)> {
        self.nodes
            .iter()
            .filter(|(n, _)| n.role == Role::Worker)
            .map(|(n, c)| (*n, c))
    }
}

/// What the engine holds of one cluster.
#[derive(Clone, Debug)]
pub(crate) struct Loaded {
    pub name: ClusterName,
    pub meta: Option<ContainerInfo>,
    pub record: Option<ClusterRecord>,
    /// Why the record could not be read, when the record container has one.
    pub problem: Option<String>,
    /// Containers of the cluster whose role or index cannot be read (made
    /// by hand, or by another version): left out, and said.
    pub unreadable: Vec<String>,
    /// Front-end first, then workers by index.
    pub nodes: Vec<NodeContainer>,
    /// The newest index (schema 3): state and members.
    pub index: Option<state::Index>,
    /// Every index volume labelled with the cluster's name: the newest,
    /// those before it, and any an earlier cluster of the name left.
    pub index_volumes: Vec<String>,
}

impl Loaded {
    pub fn workers(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .map(|n| n.node)
            .filter(|n| n.role == Role::Worker)
            .collect()
    }

    pub fn record(&self) -> Result<&ClusterRecord> {
        if let Some(problem) = &self.problem {
            return Err(Error::Failed(format!(
                "cluster '{}' cannot be read: {problem} (on {}: made by hand or by another \
                 version of mcc?)",
                self.name,
                self.name.meta_container()
            )));
        }
        self.record.as_ref().ok_or_else(|| {
            Error::Failed(format!(
                "cluster '{}' is incomplete: its record container {} is missing; \
                 remove what is left with `mcc delete {}` or `mcc gc {}`",
                self.name,
                self.name.meta_container(),
                self.name,
                self.name
            ))
        })
    }

    /// The record, for changing the cluster: clusters made before schema 2
    /// are refused, since their nodes could write mcc's files.
    pub fn record_to_change(&self) -> Result<&ClusterRecord> {
        let record = self.record()?;
        if record.legacy_layout() {
            return Err(Error::Failed(format!(
                "cluster '{}' was made by an older mcc whose nodes could write the cluster's own \
                 files (hosts, members, scripts); mcc no longer changes such a cluster: copy \
                 what you need, then `mcc delete {}` and create it again",
                self.name, self.name
            )));
        }
        Ok(record)
    }

    pub fn node(&self, node: NodeId) -> Option<&NodeContainer> {
        self.nodes.iter().find(|n| n.node == node)
    }
}

impl Clusters {
    /// The clusters on `provider`, kept in the store it brings
    /// ([`Engine::store`]).
    pub fn new(provider: Arc<dyn Engine>, reporter: Arc<dyn Reporter>) -> Self {
        let store = provider.clone().store();
        Self::with_store(provider, store, reporter)
    }

    /// The clusters on `provider`, kept in `store`.
    pub fn with_store(
        provider: Arc<dyn Engine>,
        store: Arc<dyn ClusterStore>,
        reporter: Arc<dyn Reporter>,
    ) -> Self {
        Self {
            provider,
            store,
            reporter,
        }
    }

    pub fn provider(&self) -> &dyn Engine {
        self.provider.as_ref()
    }

    /// Serializes changes of one cluster between mcc processes of this host.
    pub(crate) async fn lock_cluster(&self, name: &ClusterName) -> Result<Held> {
        self.lock_host(
            &format!("cluster-{name}"),
            &format!("changing cluster '{name}'"),
        )
        .await
    }

    /// One of the store's locks (`cluster-NAME`, `networks`, …), waited
    /// for up to [`LOCK_TIMEOUT`], saying what it waits for.
    pub(crate) async fn lock_host(&self, lock: &str, what: &str) -> Result<Held> {
        let reporter = self.reporter.clone();
        self.store
            .lock(lock, what, LOCK_TIMEOUT, &move |m: &str| reporter.note(m))
            .await
    }

    /// Reads one cluster from the engine's labels.
    pub(crate) async fn load(&self, name: &ClusterName) -> Result<Loaded> {
        let (containers, volumes) = tokio::try_join!(
            self.provider
                .containers(labels::CLUSTER, Some(name.as_str())),
            self.provider
                .volumes(Some((labels::CLUSTER, name.as_str()))),
        )?;
        Ok(group(name.clone(), containers, &volumes))
    }

    /// Like [`Clusters::load`], but a cluster with no objects is an error.
    pub(crate) async fn load_existing(&self, name: &ClusterName) -> Result<Loaded> {
        let loaded = self.load(name).await?;
        if loaded.meta.is_none() && loaded.nodes.is_empty() {
            return Err(Error::NotFound(format!(
                "cluster '{name}' does not exist; `mcc list` shows the clusters there are"
            )));
        }
        Ok(loaded)
    }

    /// A cluster's record and nodes as its containers' labels say, from
    /// one listing; `None` when the engine holds no container of it. The
    /// one reader of the label schema, for the daemon too.
    pub async fn objects(&self, name: &ClusterName) -> Result<Option<ClusterObjects>> {
        let containers = self
            .provider
            .containers(labels::CLUSTER, Some(name.as_str()))
            .await?;
        if containers.is_empty() {
            return Ok(None);
        }
        let l = group(name.clone(), containers, &[]);
        Ok(Some(ClusterObjects {
            name: l.name,
            record: l.record,
            problem: l.problem,
            nodes: l.nodes.into_iter().map(|n| (n.node, n.info)).collect(),
        }))
    }

    /// Every cluster whose record can be read, from one listing of the
    /// record containers.
    pub async fn records(&self) -> Result<Vec<(ClusterName, ClusterRecord)>> {
        let metas = self
            .provider
            .containers(labels::ROLE, Some(labels::role::META))
            .await?;
        let mut out: Vec<(ClusterName, ClusterRecord)> = metas
            .into_iter()
            .filter_map(|c| {
                let name: ClusterName = c.labels.get(labels::CLUSTER)?.parse().ok()?;
                let l = group(name, vec![c], &[]);
                Some((l.name, l.record?))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// The names of the clusters on the engine, from one listing (for
    /// completion: no record or state is read).
    pub async fn names(&self) -> Result<Vec<ClusterName>> {
        let mut names: Vec<ClusterName> = self
            .provider
            .containers(labels::CLUSTER, None)
            .await?
            .into_iter()
            .filter_map(|c| c.labels.get(labels::CLUSTER)?.parse().ok())
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Whether the engine holds anything of the cluster (its record or a
    /// node), from one listing.
    pub async fn exists(&self, name: &ClusterName) -> Result<bool> {
        let loaded = self.load(name).await?;
        Ok(loaded.meta.is_some() || !loaded.nodes.is_empty())
    }

    /// The nodes of a cluster that have a container, from one listing
    /// (for completion).
    pub async fn node_names(&self, name: &ClusterName) -> Result<Vec<NodeId>> {
        Ok(self
            .load(name)
            .await?
            .nodes
            .iter()
            .map(|n| n.node)
            .collect())
    }

    /// Every cluster with at least one labelled container, by name. A
    /// label that is not a cluster name was not written by mcc: the
    /// objects carrying it are named in a note and skipped.
    pub(crate) async fn load_all(&self) -> Result<Vec<Loaded>> {
        // two listings, whatever the number of clusters
        let (containers, indexes) = tokio::try_join!(
            self.provider.containers(labels::CLUSTER, None),
            self.provider
                .volumes(Some((labels::ROLE, labels::role::INDEX))),
        )?;
        let mut by_cluster: HashMap<String, Vec<ContainerInfo>> = HashMap::new();
        for c in containers {
            if let Some(n) = c.labels.get(labels::CLUSTER) {
                by_cluster.entry(n.clone()).or_default().push(c);
            }
        }
        let mut out = Vec::new();
        for (n, cs) in by_cluster {
            match n.parse::<ClusterName>() {
                Ok(name) => {
                    let l = group(name, cs, &indexes);
                    if !l.unreadable.is_empty() {
                        self.reporter.note(&format!(
                            "warning: cluster {}: left out container(s) {} whose {} or {} \
                             label cannot be read",
                            l.name,
                            l.unreadable.join(", "),
                            labels::ROLE,
                            labels::INDEX
                        ));
                    }
                    out.push(l)
                }
                Err(e) => {
                    let names: Vec<String> = cs.iter().map(|c| c.name.clone()).collect();
                    self.reporter.note(&format!(
                        "warning: skipping container(s) {} labelled {}={n:?}: {e}",
                        names.join(", "),
                        labels::CLUSTER
                    ));
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// One cluster's objects: its `containers`, and its index among `volumes`
/// (which may hold other objects and other clusters').
fn group(name: ClusterName, containers: Vec<ContainerInfo>, volumes: &[VolumeInfo]) -> Loaded {
    let mut meta = None;
    let mut nodes = Vec::new();
    let mut unreadable = Vec::new();
    for c in containers {
        match c.labels.get(labels::ROLE).map(String::as_str) {
            Some(labels::role::META) => meta = Some(c),
            Some(labels::role::HELPER) => {}
            Some(role) => {
                let Ok(role) = role.parse::<Role>() else {
                    unreadable.push(c.name.clone());
                    continue;
                };
                let index = c
                    .labels
                    .get(labels::INDEX)
                    .and_then(|i| i.parse::<u32>().ok())
                    .unwrap_or(0);
                let node = match role {
                    Role::Frontend => NodeId::FRONTEND,
                    Role::Worker if index >= 1 => NodeId::worker(index),
                    Role::Worker => {
                        unreadable.push(c.name.clone());
                        continue;
                    }
                };
                nodes.push(NodeContainer { node, info: c });
            }
            None => {}
        }
    }
    nodes.sort_by_key(|n| n.node);
    let (record, problem) = match meta.as_ref().map(|m| m.labels.get(labels::RECORD)) {
        None => (None, None),
        Some(None) => (None, Some(format!("it has no {} label", labels::RECORD))),
        Some(Some(text)) => match ClusterRecord::from_label(text) {
            Ok(mut r) => {
                r.fill_defaults(&name);
                (Some(r), None)
            }
            Err(e) => (None, Some(e)),
        },
    };
    let index = record
        .as_ref()
        .and_then(|r| state::Index::newest(volumes, &name, &r.meta_volume));
    let index_volumes = volumes
        .iter()
        .filter(|v| v.labels.get(labels::CLUSTER).map(String::as_str) == Some(name.as_str()))
        .filter(|v| v.labels.get(labels::ROLE).map(String::as_str) == Some(labels::role::INDEX))
        .map(|v| v.name.clone())
        .collect();
    Loaded {
        name,
        meta,
        record,
        problem,
        unreadable,
        nodes,
        index,
        index_volumes,
    }
}
