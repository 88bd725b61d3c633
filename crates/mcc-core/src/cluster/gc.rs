//! `gc`: remove what interrupted operations left behind, found by label.
//!
//! A cluster whose create ended (its record container holds a `state`
//! file: ready, or failed and kept on request) is never touched, nor one
//! whose creating mcc process still runs. A delete marks the state first,
//! so one killed half-way is recognized too. Any other cluster is a leftover:
//! a create or delete killed half-way, or objects whose record container is
//! gone. Data volumes of clusters that are gone entirely were kept on
//! purpose (`delete --keep-volumes`): gc only lists them, unless asked to
//! remove them too.

use std::collections::BTreeSet;

use serde::Serialize;

use super::delete::DeleteReport;
use super::nodes::CreateState;
use super::Clusters;
use crate::error::Result;
use crate::model::{labels, ClusterName};

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
        for n in self.provider.networks(None).await? {
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
            // read now, not with the list above: a create may have moved on
            let loaded = self.load(&name).await?;
            let r = match &loaded.meta {
                Some(_) => match self.create_state(&loaded).await? {
                    CreateState::Ready | CreateState::Failed => continue,
                    CreateState::InProgress => {
                        report.actions.push(GcAction::InProgress {
                            name: name.to_string(),
                        });
                        continue;
                    }
                    CreateState::CutShort => {
                        let keep = loaded
                            .record
                            .as_ref()
                            .map(|r| r.reused_volumes.clone())
                            .unwrap_or_default();
                        self.remove_objects(&name, &keep, false).await?
                    }
                    CreateState::Deleting { keep_volumes } => {
                        self.remove_objects(&name, &[], keep_volumes).await?
                    }
                },
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
