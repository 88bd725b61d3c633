//! `start` and `stop`: every node of a cluster at once.

use tokio_util::sync::CancellationToken;

use super::parallel::{first_error, run_all, PARALLELISM};
use super::query::ClusterView;
use super::Clusters;
use crate::error::Result;
use crate::model::ClusterName;

/// Seconds a node gets to stop before the engine kills it.
pub const STOP_TIMEOUT_SECS: i64 = 10;

impl Clusters {
    pub async fn start(&self, name: &ClusterName) -> Result<ClusterView> {
        let loaded = self.load_existing(name).await?;
        loaded.record()?;
        let todo: Vec<String> = loaded
            .nodes
            .iter()
            .filter(|n| !n.running())
            .map(|n| n.info.name.clone())
            .collect();
        self.reporter.begin("Starting nodes", todo.len());
        let r = first_error(
            run_all(
                todo,
                PARALLELISM,
                &CancellationToken::new(),
                |c| async move {
                    self.provider.start_container(&c).await?;
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

    pub async fn stop(&self, name: &ClusterName) -> Result<ClusterView> {
        let loaded = self.load_existing(name).await?;
        let todo: Vec<String> = loaded
            .nodes
            .iter()
            .filter(|n| n.running())
            .map(|n| n.info.name.clone())
            .collect();
        self.reporter.begin("Stopping nodes", todo.len());
        let r = first_error(
            run_all(
                todo,
                PARALLELISM,
                &CancellationToken::new(),
                |c| async move {
                    self.provider.stop_container(&c, STOP_TIMEOUT_SECS).await?;
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
