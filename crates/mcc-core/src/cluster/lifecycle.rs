//! `start` and `stop`: every node of a cluster at once.

use std::future::Future;

use tokio_util::sync::CancellationToken;

use super::parallel::{first_error, run_all, PARALLELISM};
use super::query::ClusterView;
use super::Clusters;
use crate::error::Result;
use crate::model::ClusterName;

/// Seconds a node gets to stop before the engine kills it.
pub const STOP_TIMEOUT_SECS: i64 = 10;

impl Clusters {
    /// Starts every stopped node; with systemd nodes, returns once systemd
    /// runs in each.
    pub async fn start(&self, name: &ClusterName) -> Result<ClusterView> {
        let _serialized = self.lock_cluster(name).await?;
        let loaded = self.load_existing(name).await?;
        let systemd = loaded.record()?.options.systemd;
        let view = self
            .each_node(name, "Starting nodes", false, |c| async move {
                self.provider.start_container(&c).await
            })
            .await?;
        if systemd {
            let nodes: Vec<_> = loaded.nodes.iter().map(|n| n.node).collect();
            self.wait_systemd(name, &nodes, &CancellationToken::new())
                .await?;
        }
        Ok(view)
    }

    pub async fn stop(&self, name: &ClusterName) -> Result<ClusterView> {
        let _serialized = self.lock_cluster(name).await?;
        self.each_node(name, "Stopping nodes", true, |c| async move {
            self.provider.stop_container(&c, STOP_TIMEOUT_SECS).await
        })
        .await
    }

    /// Applies `action` to every node container whose running state is
    /// `running`, in parallel, then shows the cluster.
    async fn each_node<F, Fut>(
        &self,
        name: &ClusterName,
        title: &str,
        running: bool,
        action: F,
    ) -> Result<ClusterView>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        let loaded = self.load_existing(name).await?;
        let todo: Vec<String> = loaded
            .nodes
            .iter()
            .filter(|n| n.running() == running)
            .map(|n| n.info.name.clone())
            .collect();
        self.reporter.begin(title, todo.len());
        let action = &action;
        let r = first_error(
            run_all(
                todo,
                PARALLELISM,
                &CancellationToken::new(),
                |c| async move {
                    action(c.clone()).await?;
                    self.reporter.advance(&c);
                    Ok(())
                },
            )
            .await,
        );
        self.reporter.end(r.is_ok());
        r?;
        self.inspect(name).await
    }
}
