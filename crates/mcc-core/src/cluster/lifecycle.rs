//! `start` and `stop`: every node of a cluster at once.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::create::DEFAULT_TIMEOUT;
use super::parallel::{first_error, run_all, PARALLELISM};
use super::query::ClusterView;
use super::Clusters;
use crate::context;
use crate::error::{Error, Result};
use crate::model::{labels, ClusterName, NodeId, Role};

/// Seconds a node gets to stop before the engine kills it.
pub const STOP_TIMEOUT_SECS: i64 = 10;

impl Clusters {
    /// Starts every stopped node; with systemd nodes, returns once systemd
    /// runs in each; with Docker workers, once their engines answer (each
    /// started with a fresh certificate); then once the context's
    /// `on-start` scripts ran on every node started.
    pub async fn start(&self, name: &ClusterName) -> Result<ClusterView> {
        let _serialized = self.lock_cluster(name).await?;
        let loaded = self.load_existing(name).await?;
        let record = loaded.record()?.clone();
        let stopped: Vec<NodeId> = loaded
            .nodes
            .iter()
            .filter(|n| !n.running())
            .map(|n| n.node)
            .collect();
        let on_start = record.on_start && !record.legacy_layout();
        // Nodes whose first process runs `on-start` itself (at an engine
        // restart too); the others get it through an exec.
        let (boots, execs): (Vec<NodeId>, Vec<NodeId>) = stopped.iter().partition(|n| {
            loaded
                .node(**n)
                .is_some_and(|c| c.info.labels.contains_key(labels::BOOT_RUN))
        });
        // the reports of the last starts, to tell this start's from them
        let before = if on_start && !boots.is_empty() {
            self.start_reports(name, &boots).await?
        } else {
            Vec::new()
        };
        // Docker workers: the nodes' client certificate renewed when it
        // nears its end, and each worker started with a fresh server
        // certificate of its own
        self.renew_nodes_cert(name, &record).await?;
        let engines: HashMap<String, NodeId> = match record.docker {
            Some(_) => stopped
                .iter()
                .filter(|n| n.role == Role::Worker)
                .map(|n| (name.container(*n), *n))
                .collect(),
            None => HashMap::new(),
        };
        let (engines, record_ref) = (&engines, &record);
        let view = self
            .each_node(name, "Starting nodes", false, move |c| async move {
                if let Some(node) = engines.get(&c) {
                    self.write_engine_cert(name, record_ref, *node).await?;
                }
                self.provider.start_container(&c).await
            })
            .await?;
        let never = CancellationToken::new();
        if record.options.systemd {
            self.wait_systemd(name, &stopped, &never).await?;
        }
        let mut started: Vec<NodeId> = engines.values().copied().collect();
        started.sort();
        self.wait_engines(name, &started, &record.worker_image, &never)
            .await?;
        if !on_start || stopped.is_empty() {
            return Ok(view);
        }
        self.reporter
            .begin("Running on-start scripts", stopped.len());
        let workers = loaded.workers();
        let workers = &workers;
        let exec_runs = run_all(execs, PARALLELISM, &never, |node| async move {
            let env = context::script_env(name.as_str(), node, workers);
            context::run_phases(
                self.provider(),
                &name.container(node),
                node,
                env,
                &[context::ON_START],
            )
            .await?;
            self.reporter.advance(&node.hostname());
            Ok(())
        });
        let (exec_runs, boot_runs) =
            tokio::join!(exec_runs, self.await_starts(name, &boots, &before));
        let r = first_error(exec_runs).map(|_| ()).and(boot_runs);
        self.reporter.end(r.is_ok());
        r?;
        self.inspect(name).await
    }

    /// The nodes' reports of their last `on-start` runs, by hostname.
    async fn start_reports(
        &self,
        name: &ClusterName,
        nodes: &[NodeId],
    ) -> Result<Vec<(String, String)>> {
        // One file per node: another file of that node-written folder
        // (made huge, say) must not stop the others from being read.
        let reads = run_all(
            nodes.to_vec(),
            PARALLELISM,
            &CancellationToken::new(),
            |n| async move {
                let path = format!("{}/{}.start", context::RUNS_DIR, n.hostname());
                match self.store.read(name, &path).await? {
                    Some(tar) => Ok(Some((n.hostname(), context::single_file_text(&tar)?))),
                    None => Ok(None),
                }
            },
        )
        .await;
        Ok(first_error(reads)?.into_iter().flatten().collect())
    }

    /// Waits until each node that runs `on-start` itself has reported how
    /// this start went, reading the reports of all of them at once.
    async fn await_starts(
        &self,
        name: &ClusterName,
        nodes: &[NodeId],
        before: &[(String, String)],
    ) -> Result<()> {
        let number = |reports: &[(String, String)], host: &str| {
            reports
                .iter()
                .find(|(n, _)| n == host)
                .map_or(0, |(_, t)| context::start_number(t))
        };
        let deadline = Instant::now() + DEFAULT_TIMEOUT;
        let mut waiting: Vec<NodeId> = nodes.to_vec();
        let mut failure = None;
        while !waiting.is_empty() {
            let reports = self.start_reports(name, &waiting).await?;
            let mut still = Vec::new();
            for node in waiting {
                let host = node.hostname();
                let text = reports
                    .iter()
                    .find(|(n, _)| *n == host)
                    .map(|(_, t)| t.as_str())
                    .unwrap_or("");
                match context::start_outcome(&host, text, number(before, &host)) {
                    Some(Ok(())) => self.reporter.advance(&host),
                    Some(Err(e)) => {
                        failure.get_or_insert(e);
                    }
                    None => still.push(node),
                }
            }
            waiting = still;
            if waiting.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                let names: Vec<String> = waiting.iter().map(NodeId::hostname).collect();
                return Err(Error::Failed(format!(
                    "the on-start scripts of {} did not finish within {}s; see `mcc logs {name}`",
                    names.join(", "),
                    DEFAULT_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        failure.map_or(Ok(()), Err)
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
