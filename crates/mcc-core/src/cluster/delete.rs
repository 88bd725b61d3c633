//! `delete`: remove a cluster's containers, network and volumes, found by label.

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use super::parallel::{run_all, PARALLELISM};
use super::Clusters;
use crate::error::{Error, Result};
use crate::model::labels::role;
use crate::model::{labels, ClusterName, ClusterRecord};

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct DeleteReport {
    pub name: String,
    /// False when no object of the cluster was found.
    pub existed: bool,
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
    /// Data volumes left in place (`--keep-volumes`, or reused ones).
    pub kept_volumes: Vec<String>,
}

/// Which data volumes (devices, `--persist`) a removal takes.
#[derive(Clone, Debug)]
pub(crate) enum DataVolumes {
    /// None of them.
    KeepAll,
    /// Those the cluster uses (its record's devices and persisted paths),
    /// except the named ones: volumes kept by an earlier cluster of the
    /// same name that this one never used stay.
    Used {
        record: Box<ClusterRecord>,
        except: Vec<String>,
    },
    /// Every volume labelled with the cluster (`gc --volumes`).
    All,
}

impl DataVolumes {
    fn removes(&self, v: &crate::provider::VolumeInfo) -> bool {
        match self {
            DataVolumes::KeepAll => false,
            DataVolumes::All => true,
            DataVolumes::Used { record, except } => {
                if except.contains(&v.name) {
                    return false;
                }
                let label = |k: &str| v.labels.get(k).map(String::as_str);
                match label(labels::ROLE) {
                    Some(role::DATA) => label(labels::DEVICE)
                        .is_some_and(|d| record.devices.iter().any(|x| x.name == d)),
                    Some(role::PERSIST) => {
                        label(labels::PATH).is_some_and(|p| record.is_persisted(p))
                    }
                    _ => false,
                }
            }
        }
    }
}

impl Clusters {
    /// Deletes the cluster's containers, network, its own volumes and the
    /// data volumes it uses (all of those kept with `keep_volumes`). Data
    /// volumes an earlier cluster of the name kept and this one never
    /// used stay. Deleting a cluster that does not exist succeeds with
    /// `existed == false`.
    pub async fn delete(&self, name: &ClusterName, keep_volumes: bool) -> Result<DeleteReport> {
        let _serialized = self.lock_cluster(name).await?;
        let loaded = self.load(name).await?;
        // So that gc finishes the job, as asked, if this process is killed
        // half-way.
        let state = if keep_volumes {
            "deleting-keep-volumes"
        } else {
            "deleting"
        };
        // (a record container whose record cannot be read has no meta
        // volume to mark, as far as this version knows)
        if loaded.meta.is_some() && loaded.record.is_some() {
            self.mark_state(name, state).await?;
        }
        let data = match (&loaded.record, keep_volumes) {
            (Some(record), false) => DataVolumes::Used {
                record: Box::new(record.clone()),
                except: Vec::new(),
            },
            // without a record nothing tells which volumes it used
            _ => DataVolumes::KeepAll,
        };
        self.remove_objects(name, &data).await
    }

    /// Removes these containers at once, each with how it went.
    async fn remove_batch(
        &self,
        batch: Vec<crate::provider::ContainerInfo>,
    ) -> Vec<(String, Result<bool>)> {
        let names: Vec<String> = batch.into_iter().map(|c| c.name).collect();
        let never = CancellationToken::new();
        let results = run_all(names.clone(), PARALLELISM, &never, |n| async move {
            self.provider.remove_container(&n).await
        })
        .await;
        names.into_iter().zip(results).collect()
    }

    /// Removes the cluster's objects: nodes, the network, the meta container
    /// and volume, and the data volumes `data` says. Every removal is
    /// tried; what could not be removed is named, with the cure.
    pub(crate) async fn remove_objects(
        &self,
        name: &ClusterName,
        data: &DataVolumes,
    ) -> Result<DeleteReport> {
        let mut report = DeleteReport {
            name: name.to_string(),
            ..Default::default()
        };
        let mut errors: Vec<String> = Vec::new();
        let label = Some((labels::CLUSTER, name.as_str()));

        // Order matters when this is cut short: the record container goes
        // last but for its own volume, so that until everything else is
        // gone gc sees a cluster being deleted (or a create cut short) and
        // finishes the job; data volumes never look "kept" by mistake.
        let containers = self
            .provider
            .containers(labels::CLUSTER, Some(name.as_str()))
            .await?;
        let (meta, nodes): (Vec<_>, Vec<_>) = containers
            .into_iter()
            .partition(|c| c.labels.get(labels::ROLE).map(String::as_str) == Some(role::META));
        tally(
            self.remove_batch(nodes).await,
            &mut report.containers,
            &mut errors,
        );
        for net in self.provider.networks(label).await? {
            let r = self.provider.remove_network(&net.name).await;
            tally(vec![(net.name, r)], &mut report.networks, &mut errors);
        }
        let (meta_volumes, data_volumes): (Vec<_>, Vec<_>) = self
            .provider
            .volumes(label)
            .await?
            .into_iter()
            .partition(|v| {
                // mcc's own volumes go with the cluster, kept data or not
                matches!(
                    v.labels.get(labels::ROLE).map(String::as_str),
                    Some(role::META | role::SHARED | role::INDEX)
                )
            });
        // at once: one on a shared export is removed by a helper container
        let (doomed, kept): (Vec<_>, Vec<_>) =
            data_volumes.into_iter().partition(|v| data.removes(v));
        report.kept_volumes.extend(kept.into_iter().map(|v| v.name));
        tally(
            self.remove_volumes(doomed.into_iter().map(|v| v.name))
                .await,
            &mut report.volumes,
            &mut errors,
        );
        // The record stays while anything else does: a later `gc` then
        // still knows what the cluster used and how it was being removed.
        if errors.is_empty() {
            tally(
                self.remove_batch(meta).await,
                &mut report.containers,
                &mut errors,
            );
            let index: Vec<String> = meta_volumes
                .iter()
                .filter(|v| v.labels.get(labels::ROLE).map(String::as_str) == Some(role::INDEX))
                .map(|v| v.name.clone())
                .collect();
            let removed = self
                .remove_volumes(meta_volumes.into_iter().map(|v| v.name))
                .await;
            // the index is mcc's bookkeeping, not a volume the user
            // counts; one that is not removed is still said
            let said = removed
                .into_iter()
                .filter(|(n, r)| !(index.contains(n) && r.is_ok()))
                .collect();
            tally(said, &mut report.volumes, &mut errors);
        }
        if errors.is_empty() {
            if let Err(e) = self.store.release(name).await {
                errors.push(format!("the claim on its name: {e}"));
            }
        }
        report.existed = !(report.containers.is_empty()
            && report.networks.is_empty()
            && report.volumes.is_empty()
            && report.kept_volumes.is_empty());
        if errors.is_empty() {
            return Ok(report);
        }
        // a node of a lost host holds its overlay address (a swarm task)
        // until the host leaves the swarm
        let hint = match self.provider.unreachable_hosts().as_slice() {
            [] => String::new(),
            hosts => format!(
                "host {} does not answer: its nodes hold the cluster's network until `mcc \
                 host remove {} --lost` takes it out of the swarm; then ",
                hosts.join(", "),
                hosts[0]
            ),
        };
        Err(Error::Failed(format!(
            "could not remove all of cluster '{name}':\n    {}\n  {hint}`mcc gc {name}` tries \
             again",
            errors.join("\n    ")
        )))
    }
}

/// Adds the objects whose removal went well to `into`, the others with
/// why to `errors`.
impl Clusters {
    /// Removes `volumes`, a few at once; each with how it went, in their
    /// order.
    async fn remove_volumes(
        &self,
        volumes: impl Iterator<Item = String>,
    ) -> Vec<(String, Result<bool>)> {
        use futures_util::StreamExt;
        futures_util::stream::iter(volumes.map(|v| async move {
            let r = self.provider.remove_volume(&v).await;
            (v, r)
        }))
        .buffered(PARALLELISM)
        .collect()
        .await
    }
}

fn tally(done: Vec<(String, Result<bool>)>, into: &mut Vec<String>, errors: &mut Vec<String>) {
    for (n, r) in done {
        match r {
            Ok(_) => into.push(n),
            Err(e) => errors.push(format!("{n}: {e}")),
        }
    }
}
