//! `addnode` and `delnode`: change a cluster's workers and keep every
//! node's hosts file current, without restarting any node.

use tokio_util::sync::CancellationToken;

use super::parallel::{run_all, PARALLELISM};
use super::query::NodeView;
use super::{ClusterView, Clusters};
use crate::error::{Error, Result};
use crate::model::{ClusterName, NodeId, Role};

/// Which workers `delnode` removes.
#[derive(Clone, Debug)]
pub enum Removal {
    Nodes(Vec<NodeId>),
    /// The `k` highest-numbered workers.
    Count(u32),
}

impl Clusters {
    /// Adds `count` workers, taking the lowest free numbers, and runs the
    /// cluster's context on them. On failure the new nodes are removed
    /// and the hosts file is put back.
    pub async fn add_nodes(
        &self,
        name: &ClusterName,
        count: u32,
        cancel: &CancellationToken,
    ) -> Result<Vec<NodeView>> {
        if count == 0 {
            return Err(Error::Invalid("--count must be at least 1".into()));
        }
        let loaded = self.load_existing(name).await?;
        let record = loaded.record()?.clone();
        let plan = record.plan();
        let existing: Vec<NodeId> = loaded.nodes.iter().map(|n| n.node).collect();
        let mut new = Vec::new();
        let mut i = 1;
        while new.len() < count as usize {
            let n = NodeId::worker(i);
            if !existing.contains(&n) {
                if plan.ip(n).is_none() {
                    return Err(Error::Invalid(format!(
                        "subnet {} of cluster '{name}' has room for {} workers; {} more do not fit",
                        record.subnet,
                        plan.max_workers(),
                        count
                    )));
                }
                new.push(n);
            }
            i += 1;
        }
        let images = self.ensure_images(&[&record.worker_image]).await?;
        let meta_volume = self.meta_volume(name, &record).await?;
        let mut after = existing.clone();
        after.extend(&new);
        after.sort();
        let all_workers: Vec<NodeId> = after
            .iter()
            .copied()
            .filter(|n| n.role == Role::Worker)
            .collect();

        // Names first, so the new nodes resolve everywhere from their start.
        self.write_hosts(&loaded, &after).await?;
        let made: Result<()> = async {
            self.create_nodes(
                name,
                &record,
                &images,
                &meta_volume.mountpoint,
                &new,
                cancel,
            )
            .await?;
            if record.context {
                self.contextualize(name, &new, &all_workers, cancel).await?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = made {
            self.reporter.begin("Removing the new nodes", new.len());
            let cleanup = self
                .undo_add(name, &new)
                .await
                .and(self.write_hosts(&loaded, &existing).await);
            self.reporter.end(cleanup.is_ok());
            return Err(e.with_cleanup(cleanup.err()));
        }
        let view = self.inspect(name).await?;
        Ok(view
            .nodes
            .into_iter()
            .filter(|n| new.iter().any(|x| x.hostname() == n.name))
            .collect())
    }

    async fn undo_add(&self, name: &ClusterName, new: &[NodeId]) -> Result<()> {
        let names: Vec<String> = new.iter().map(|n| name.container(*n)).collect();
        let results = run_all(
            names,
            PARALLELISM,
            &CancellationToken::new(),
            |c| async move { self.provider.remove_container(&c).await },
        )
        .await;
        super::parallel::first_error(results).map(|_| ())
    }

    /// Removes workers and rewrites the hosts file of the nodes that stay.
    pub async fn remove_nodes(&self, name: &ClusterName, which: &Removal) -> Result<ClusterView> {
        let loaded = self.load_existing(name).await?;
        loaded.record()?;
        let workers = loaded.workers();
        let gone: Vec<NodeId> = match which {
            Removal::Nodes(list) => {
                for n in list {
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
                list.clone()
            }
            Removal::Count(k) => {
                if *k as usize > workers.len() {
                    return Err(Error::Invalid(format!(
                        "--count {k}: cluster '{name}' has only {} workers",
                        workers.len()
                    )));
                }
                workers.iter().rev().take(*k as usize).copied().collect()
            }
        };
        self.reporter.begin("Removing nodes", gone.len());
        let names: Vec<String> = gone.iter().map(|n| name.container(*n)).collect();
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
        let removed = super::parallel::first_error(results);
        self.reporter.end(removed.is_ok());
        removed?;
        let remaining: Vec<NodeId> = loaded
            .nodes
            .iter()
            .map(|n| n.node)
            .filter(|n| !gone.contains(n))
            .collect();
        let after = self.load_existing(name).await?;
        self.write_hosts(&after, &remaining).await?;
        self.inspect(name).await
    }
}
