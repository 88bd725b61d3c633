//! `gc`: remove what interrupted operations left behind, found by label.
//!
//! A cluster is healthy when its record container, its front-end and its
//! network all exist and its create finished (it wrote its ready marker);
//! gc never touches one. Any other cluster is a leftover (a create or
//! delete killed half-way), unless the mcc process creating it still runs. Data volumes of clusters that are
//! gone entirely were kept on purpose (`delete --keep-volumes`): gc only
//! lists them, unless asked to remove them too.

use std::collections::BTreeSet;

use serde::Serialize;

use super::delete::DeleteReport;
use super::{creator, Clusters};
use crate::error::Result;
use crate::model::{labels, ClusterName, Role};

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum GcAction {
    /// A leftover cluster was removed.
    Removed(DeleteReport),
    /// Left alone: an mcc process is still creating it.
    InProgress { name: String },
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct GcReport {
    pub actions: Vec<GcAction>,
    /// Data volumes of deleted clusters, left in place.
    pub kept_volumes: Vec<String>,
}

impl Clusters {
    pub async fn gc(&self, remove_kept_volumes: bool) -> Result<GcReport> {
        let mut names = BTreeSet::new();
        for c in self.provider.containers(labels::CLUSTER, None).await? {
            names.extend(c.labels.get(labels::CLUSTER).cloned());
        }
        let networks = self.provider.networks(None).await?;
        for n in &networks {
            names.extend(n.labels.get(labels::CLUSTER).cloned());
        }
        for v in self.provider.volumes(None).await? {
            names.extend(v.labels.get(labels::CLUSTER).cloned());
        }

        let mut report = GcReport::default();
        for raw in names {
            // a label that is not a cluster name was not written by mcc
            let Ok(name) = raw.parse::<ClusterName>() else {
                continue;
            };
            let loaded = self.load(&name).await?;
            let has_frontend = loaded.nodes.iter().any(|n| n.node.role == Role::Frontend);
            let has_network = networks.iter().any(|n| {
                n.name == name.network()
                    && n.labels.get(labels::CLUSTER).map(String::as_str) == Some(name.as_str())
            });
            let creating = loaded
                .meta
                .as_ref()
                .and_then(|m| m.labels.get(labels::CREATOR))
                .is_some_and(|c| creator::alive(c));
            if loaded.meta.is_some() && has_frontend && has_network {
                // complete in structure; healthy unless its create was cut
                // short after making everything (killed before the end)
                if creating || self.is_ready(&name).await? {
                    continue;
                }
            }
            let r = match &loaded.meta {
                Some(_) => {
                    if creating {
                        report.actions.push(GcAction::InProgress {
                            name: name.to_string(),
                        });
                        continue;
                    }
                    let keep = loaded
                        .record
                        .as_ref()
                        .map(|r| r.reused_volumes.clone())
                        .unwrap_or_default();
                    self.remove_objects(&name, &keep, false).await?
                }
                None => {
                    self.remove_objects(&name, &[], !remove_kept_volumes)
                        .await?
                }
            };
            report.kept_volumes.extend(r.kept_volumes.iter().cloned());
            if !(r.containers.is_empty() && r.networks.is_empty() && r.volumes.is_empty()) {
                report.actions.push(GcAction::Removed(r));
            }
        }
        Ok(report)
    }
}
