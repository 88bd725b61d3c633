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
        // So that gc finishes the job if this process is killed half-way.
        let _ = self.mark_state(name, "deleting").await;
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

        // Nodes first (they hold the volumes), the meta container last of
        // the containers: while it exists, gc sees an incomplete cluster.
        let containers = self
            .provider
            .containers(labels::CLUSTER, Some(name.as_str()))
            .await?;
        let (meta, nodes): (Vec<_>, Vec<_>) = containers
            .into_iter()
            .partition(|c| c.labels.get(labels::ROLE).map(String::as_str) == Some("meta"));
        for batch in [nodes, meta] {
            let names: Vec<String> = batch.into_iter().map(|c| c.name).collect();
            let results = run_all(names.clone(), PARALLELISM, &never, |n| async move {
                self.provider.remove_container(&n).await
            })
            .await;
            for (n, r) in names.into_iter().zip(results) {
                match r {
                    Ok(_) => report.containers.push(n),
                    Err(e) => errors.push(e.to_string()),
                }
            }
        }
        for net in self.provider.networks(label).await? {
            match self.provider.remove_network(&net.name).await {
                Ok(_) => report.networks.push(net.name),
                Err(e) => errors.push(e.to_string()),
            }
        }
        let mut volumes = self.provider.volumes(label).await?;
        // the meta volume first: data volumes are the last thing to go
        volumes.sort_by_key(|v| v.labels.get(labels::ROLE).map(String::as_str) != Some("meta"));
        for v in volumes {
            let is_data = v.labels.get(labels::ROLE).map(String::as_str) != Some("meta");
            if is_data && (keep_all_data || keep.contains(&v.name)) {
                report.kept_volumes.push(v.name);
                continue;
            }
            match self.provider.remove_volume(&v.name).await {
                Ok(_) => report.volumes.push(v.name),
                Err(e) => errors.push(e.to_string()),
            }
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
