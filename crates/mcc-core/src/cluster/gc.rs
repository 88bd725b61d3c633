//! `gc`: remove what interrupted operations left behind, found by label.
//!
//! A cluster whose create ended (its meta volume holds a `ready` or a kept
//! `failed` marker) is never removed, nor one whose creating mcc process
//! still runs or that another mcc on this host is changing (its lock is
//! held). In a finished cluster, node containers that are not members were
//! left by a killed `addnode` (or `delnode`): they are removed, and said.
//! A delete marks the state first, so one killed half-way is finished as
//! it was asked. Any other cluster is a leftover: a create killed half-way,
//! or objects whose record container is gone. Data volumes of clusters
//! that are gone entirely were kept on purpose (`delete --keep-volumes`):
//! gc only lists them, unless asked to remove them too.
//!
//! A gc of every cluster also removes the ephemeral volumes whose last
//! container went behind mcc's back (`docker rm`, a crash), as `mcc rm`
//! would have (see [`Clusters::reap_ephemeral_volumes`]).
//!
//! One cluster that cannot be collected never stops the others: each
//! failure is reported with its cure, and the caller exits non-zero.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::delete::{DataVolumes, DeleteReport};
use super::state::CreateState;
use super::{creator, Clusters, Loaded};
use crate::error::{Error, Result};
use crate::model::{labels, ClusterName, NodeId, SCHEMA_VERSION};

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum GcAction {
    /// A leftover cluster was removed.
    Removed(DeleteReport),
    /// Node containers of a finished cluster that are not its members
    /// (left by a killed addnode or delnode) were removed.
    RemovedNodes { name: String, nodes: Vec<String> },
    /// Left alone: an mcc process is still creating it.
    InProgress { name: String },
    /// Left alone: another mcc on this host is changing it now.
    Busy { name: String },
    /// Left alone: its objects were not made by this version of mcc (a
    /// newer schema, or a record this version cannot read).
    Unknown { name: String, reason: String },
}

/// A cluster gc could not collect.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct GcFailure {
    pub name: String,
    pub error: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct GcReport {
    pub actions: Vec<GcAction>,
    /// Data volumes of deleted clusters, left in place.
    pub kept_volumes: Vec<String>,
    /// Clusters that could not be collected; the others were.
    pub failures: Vec<GcFailure>,
    /// Ephemeral volumes removed: containers had used them and none is
    /// left.
    #[serde(default)]
    pub volumes_removed: Vec<String>,
    /// Ephemeral volumes that should have gone but could not (`name` is
    /// the volume's ID).
    #[serde(default)]
    pub volume_failures: Vec<GcFailure>,
}

/// Why a cluster's objects are not this version's to judge, if they are not.
fn unknown(loaded: &Loaded) -> Option<String> {
    let ours: u32 = SCHEMA_VERSION.parse().unwrap_or(0);
    let newer = loaded
        .meta
        .iter()
        .chain(loaded.nodes.iter().map(|n| &n.info))
        .filter_map(|c| c.labels.get(labels::SCHEMA)?.parse::<u32>().ok())
        .find(|v| *v > ours);
    if let Some(v) = newer {
        return Some(format!(
            "made by a newer mcc (label schema {v}, this mcc knows {ours}); use that mcc"
        ));
    }
    loaded.problem.clone()
}

impl Clusters {
    /// Collects every cluster's leftovers, or only those of `only` when it
    /// is not empty. Fails only when the engine cannot be listed; a
    /// cluster that cannot be collected is a [`GcFailure`] in the report.
    pub async fn gc(&self, only: &[ClusterName], remove_kept_volumes: bool) -> Result<GcReport> {
        let mut names = BTreeSet::new();
        if only.is_empty() {
            for c in self.provider.containers(labels::CLUSTER, None).await? {
                names.extend(c.labels.get(labels::CLUSTER).cloned());
            }
            for n in self.provider.networks(None).await? {
                names.extend(n.labels.get(labels::CLUSTER).cloned());
            }
            for v in self.provider.volumes(None).await? {
                names.extend(v.labels.get(labels::CLUSTER).cloned());
            }
        } else {
            names.extend(only.iter().map(ClusterName::to_string));
        }

        let mut report = GcReport::default();
        for raw in names {
            // a label that is not a cluster name was not written by mcc
            let Ok(name) = raw.parse::<ClusterName>() else {
                self.reporter.note(&format!(
                    "warning: skipping objects labelled {}={raw:?}: not a cluster name mcc \
                     writes",
                    labels::CLUSTER
                ));
                continue;
            };
            if let Err(e) = self.gc_one(&name, remove_kept_volumes, &mut report).await {
                report.failures.push(GcFailure {
                    name: name.to_string(),
                    error: e.to_string(),
                });
            }
        }
        // a gc of some clusters leaves the rest of the host alone
        if only.is_empty() {
            let r = self.reap_ephemeral_volumes(None).await?;
            report.volumes_removed = r.removed;
            report.volume_failures = r
                .failed
                .into_iter()
                .map(|(name, error)| GcFailure { name, error })
                .collect();
        }
        Ok(report)
    }

    async fn gc_one(
        &self,
        name: &ClusterName,
        remove_kept_volumes: bool,
        report: &mut GcReport,
    ) -> Result<()> {
        // Another mcc changing it holds its lock (of this host; through
        // the swarm, of any machine): leave it.
        let Some(_serialized) = self
            .store
            .try_lock(&format!("cluster-{name}"), &format!("collecting '{name}'"))
            .await?
        else {
            report.actions.push(GcAction::Busy {
                name: name.to_string(),
            });
            return Ok(());
        };
        // read now, not with the list above: a create may have moved on
        let loaded = self.load(name).await?;
        // What this version cannot read may be a newer mcc's healthy
        // cluster: never remove it.
        if let Some(reason) = unknown(&loaded) {
            report.actions.push(GcAction::Unknown {
                name: name.to_string(),
                reason,
            });
            return Ok(());
        }
        let data = match &loaded.meta {
            Some(_) => match self.create_state(&loaded).await? {
                CreateState::Ready | CreateState::Failed => {
                    return self.collect_stray_nodes(&loaded, report).await;
                }
                CreateState::InProgress => {
                    report.actions.push(GcAction::InProgress {
                        name: name.to_string(),
                    });
                    return Ok(());
                }
                CreateState::CutShort => match &loaded.record {
                    Some(r) => DataVolumes::Used {
                        record: Box::new(r.clone()),
                        except: r.reused_volumes.clone(),
                    },
                    None => DataVolumes::KeepAll,
                },
                CreateState::Deleting { keep_volumes } => match (&loaded.record, keep_volumes) {
                    (Some(r), false) => DataVolumes::Used {
                        record: Box::new(r.clone()),
                        except: Vec::new(),
                    },
                    _ => DataVolumes::KeepAll,
                },
            },
            None if remove_kept_volumes => DataVolumes::All,
            None => DataVolumes::KeepAll,
        };
        let r = self.remove_objects(name, &data).await?;
        report.kept_volumes.extend(r.kept_volumes.iter().cloned());
        if !(r.containers.is_empty() && r.networks.is_empty() && r.volumes.is_empty()) {
            report.actions.push(GcAction::Removed(r));
        }
        Ok(())
    }

    /// Removes node containers of a finished cluster that are not among
    /// its members and whose maker is gone, then puts the hosts file back
    /// to the members.
    async fn collect_stray_nodes(&self, loaded: &Loaded, report: &mut GcReport) -> Result<()> {
        if loaded.record()?.legacy_layout() {
            return Ok(());
        }
        let members = self.recorded_members(loaded).await?;
        let stray: Vec<NodeId> = loaded
            .nodes
            .iter()
            .filter(|n| !members.contains(&n.node))
            .filter(|n| {
                !n.info
                    .labels
                    .get(labels::CREATOR)
                    .is_some_and(|c| creator::alive(c))
            })
            .map(|n| n.node)
            .collect();
        if stray.is_empty() {
            return Ok(());
        }
        let name = &loaded.name;
        self.remove_containers(name, &stray).await?;
        let now = self.load(name).await?;
        self.write_hosts(&now, &members).await.map_err(|e| {
            Error::Failed(format!(
                "removed {} but could not put the hosts file back: {e}",
                stray
                    .iter()
                    .map(NodeId::hostname)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        report.actions.push(GcAction::RemovedNodes {
            name: name.to_string(),
            nodes: stray.iter().map(NodeId::hostname).collect(),
        });
        Ok(())
    }
}
