//! `delete`: remove a cluster's containers, network and volumes, found by label.

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::parallel::{run_all, PARALLELISM};
use super::Clusters;
use crate::error::{Error, Result};
use crate::model::{labels, ClusterName};

#[derive(Clone, Debug, Default, Serialize)]
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

impl Clusters {
    /// Deletes every object labelled with the cluster. Deleting a cluster
    /// that does not exist succeeds with `existed == false`.
    pub async fn delete(&self, name: &ClusterName, keep_volumes: bool) -> Result<DeleteReport> {
        // So that gc finishes the job, as asked, if this process is killed
        // half-way.
        let state = if keep_volumes {
            "deleting-keep-volumes"
        } else {
            "deleting"
        };
        let _ = self.mark_state(name, state).await;
        self.remove_objects(name, &[], keep_volumes).await
    }

    /// Removes the cluster's objects: nodes, the network, the meta container
    /// and volume, and the data volumes except `keep` (or all of them with
    /// `keep_all_data`). Every removal is tried; errors are joined.
    pub(crate) async fn remove_objects(
        &self,
        name: &ClusterName,
        keep: &[String],
        keep_all_data: bool,
    ) -> Result<DeleteReport> {
        let mut report = DeleteReport {
            name: name.to_string(),
            ..Default::default()
        };
        let mut errors: Vec<String> = Vec::new();
        let label = Some((labels::CLUSTER, name.as_str()));
        let never = CancellationToken::new();

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
            .partition(|c| c.labels.get(labels::ROLE).map(String::as_str) == Some("meta"));
        let remove_containers = |batch: Vec<crate::provider::ContainerInfo>| async {
            let names: Vec<String> = batch.into_iter().map(|c| c.name).collect();
            let results = run_all(names.clone(), PARALLELISM, &never, |n| async move {
                self.provider.remove_container(&n).await
            })
            .await;
            names.into_iter().zip(results).collect::<Vec<_>>()
        };
        let mut tally = |done: Vec<(String, Result<bool>)>, into: &mut Vec<String>| {
            for (n, r) in done {
                match r {
                    Ok(_) => into.push(n),
                    Err(e) => errors.push(e.to_string()),
                }
            }
        };
        tally(remove_containers(nodes).await, &mut report.containers);
        for net in self.provider.networks(label).await? {
            let r = self.provider.remove_network(&net.name).await;
            tally(vec![(net.name, r)], &mut report.networks);
        }
        let (meta_volumes, data_volumes): (Vec<_>, Vec<_>) = self
            .provider
            .volumes(label)
            .await?
            .into_iter()
            .partition(|v| v.labels.get(labels::ROLE).map(String::as_str) == Some("meta"));
        for v in data_volumes {
            if keep_all_data || keep.contains(&v.name) {
                report.kept_volumes.push(v.name);
            } else {
                let r = self.provider.remove_volume(&v.name).await;
                tally(vec![(v.name, r)], &mut report.volumes);
            }
        }
        tally(remove_containers(meta).await, &mut report.containers);
        for v in meta_volumes {
            let r = self.provider.remove_volume(&v.name).await;
            tally(vec![(v.name, r)], &mut report.volumes);
        }
        report.existed = !(report.containers.is_empty()
            && report.networks.is_empty()
            && report.volumes.is_empty()
            && report.kept_volumes.is_empty());
        if errors.is_empty() {
            Ok(report)
        } else {
            Err(Error::Failed(format!(
                "could not remove all of cluster '{name}': {}",
                errors.join("; ")
            )))
        }
    }
}
