//! Making nodes and running their context, pipelined: a node's scripts
//! start as soon as it is up (a worker's once the front-end's have
//! finished) while other nodes are still being made. Bounded, cancellable,
//! every task started is joined, and the first failure stops the making
//! of nodes that would only be removed again.

use futures_util::StreamExt;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio_util::sync::CancellationToken;

use super::nodes::{node_request, runs_context_at_boot, with_boot_run, Blueprint};
use super::parallel::{first_error, run_all, PARALLELISM};
use super::Clusters;
use crate::context;
use crate::error::{Error, Result};
use crate::model::{labels, NodeId, Role};
use crate::provider::{ImageInfo, NodeRequest};

/// One bring-up of some nodes of a cluster.
pub(crate) struct BringUp<'a> {
    clusters: &'a Clusters,
    bp: Blueprint<'a>,
    nodes: &'a [NodeId],
    /// Every worker of the cluster once these nodes are up (MCC_NODES).
    all_workers: &'a [NodeId],
    cancel: &'a CancellationToken,
    /// Cancelled at the first failure (or with `cancel`): no node is
    /// made after it.
    making: CancellationToken,
    /// This process, as written on the nodes it makes.
    creator: String,
    /// Names this bring-up, so that workers made with the front-end wait
    /// for the front-end's scripts of the same run.
    run_id: String,
}

impl<'a> BringUp<'a> {
    pub(crate) fn new(
        clusters: &'a Clusters,
        bp: Blueprint<'a>,
        nodes: &'a [NodeId],
        all_workers: &'a [NodeId],
        cancel: &'a CancellationToken,
    ) -> Self {
        BringUp {
            clusters,
            bp,
            nodes,
            all_workers,
            cancel,
            making: cancel.child_token(),
            creator: super::creator::current_for(super::creator::creator_budget(bp.timeout)),
            run_id: format!("{:x}", context::now() ^ u64::from(std::process::id()) << 20),
        }
    }

    pub(crate) async fn run(self) -> Result<()> {
        let reporter = &self.clusters.reporter;
        let title = if self.bp.record.context {
            "Creating nodes and running their context"
        } else {
            "Creating and starting nodes"
        };
        if !self.bp.record.hosts.is_empty() {
            // where each goes, recorded first: a node whose host is lost
            // is known to be there even if it never answered
            let placed: Vec<(NodeId, String)> = self
                .nodes
                .iter()
                .filter_map(|n| Some((*n, self.request(*n).placement?)))
                .collect();
            self.clusters
                .record_placements(self.bp.name, &placed)
                .await?;
        }
        reporter.begin(title, self.nodes.len());
        let (up_tx, up_rx) = unbounded_channel::<NodeId>();
        let (made, contextualized) =
            tokio::join!(self.make_all(up_tx), self.contextualize_all(up_rx));
        // a failure to make a node explains more than what it cut short
        let r = match (made, contextualized) {
            (Err(e), _) if !matches!(e, Error::Interrupted) => Err(e),
            (_, Err(e)) => Err(e),
            (made, Ok(())) => made,
        };
        reporter.end(r.is_ok());
        r
    }

    /// Stops the making of nodes and passes the failure on.
    fn stop<T>(&self, e: Error) -> Result<T> {
        self.making.cancel();
        Err(e)
    }

    fn image_of(&self, node: NodeId) -> ImageInfo {
        let record = self.bp.record;
        let image = match node.role {
            Role::Frontend => &record.frontend_image,
            Role::Worker => &record.worker_image,
        };
        self.bp.images.get(image).cloned().unwrap_or_default()
    }

    /// Whether the node runs its scripts from its first process.
    fn boots(&self, node: NodeId) -> bool {
        runs_context_at_boot(self.bp.record, &self.image_of(node))
    }

    fn request(&self, node: NodeId) -> NodeRequest {
        let record = self.bp.record;
        let mut spec = node_request(self.bp.name, node, record, &self.image_of(node));
        if let Some(host) = self.bp.placements.get(&node) {
            spec.placement = Some(host.clone());
        }
        if record.context {
            // the run's id also reaches the exec'd runner (container env)
            spec = if self.boots(node) {
                let wait = self.nodes.contains(&NodeId::FRONTEND) && node.role == Role::Worker;
                with_boot_run(spec, &self.run_id, wait)
            } else {
                spec.env.push(format!("MCC_RUN={}", self.run_id));
                spec
            };
        }
        let mut spec = super::nodes::with_engine_start(spec, &self.image_of(node));
        // who made it: a failed addnode removes only its own nodes, and gc
        // leaves a node alone while its maker may still run
        spec.labels
            .insert(labels::CREATOR.into(), self.creator.clone());
        spec
    }

    /// Makes one node: created, started, systemd up when it runs it.
    async fn make(&self, node: NodeId) -> Result<()> {
        let c = self.clusters;
        let spec = self.request(node);
        c.provider.create_node(&spec).await?;
        if spec.engine_host {
            // into its own volume, which exists from now on and which no
            // other node mounts; before its first process reads it
            c.write_engine_cert(self.bp.name, self.bp.record, node)
                .await?;
            c.drop_legacy_cert(self.bp.name, node).await?;
        }
        c.provider.start_container(&spec.name).await?;
        if self.bp.record.options.systemd {
            c.wait_systemd_on(self.bp.name, node, &self.making).await?;
        }
        if spec.engine_host {
            c.wait_engine_on(self.bp.name, node, &spec.image, &self.making)
                .await?;
        }
        Ok(())
    }

    /// Makes every node, telling `up` of each one up.
    async fn make_all(&self, up: UnboundedSender<NodeId>) -> Result<()> {
        let results = run_all(self.nodes.to_vec(), PARALLELISM, &self.making, |node| {
            let up = up.clone();
            async move {
                if let Err(e) = self.make(node).await {
                    return self.stop(e);
                }
                if self.bp.record.context {
                    let _ = up.send(node);
                } else {
                    self.clusters.reporter.advance(&node.hostname());
                }
                Ok(())
            }
        })
        .await;
        drop(up);
        first_error(results).map(|_| ())
    }

    /// Runs a node's creation phases (or waits for its first process to).
    async fn contextualize(&self, node: NodeId) -> Result<()> {
        if self.cancel.is_cancelled() {
            return Err(Error::Interrupted);
        }
        let c = self.clusters;
        let name = self.bp.name;
        let container = name.container(node);
        let scripts = async {
            if self.boots(node) {
                context::await_boot_run(c.provider(), &container, node).await
            } else {
                let env = context::script_env(name.as_str(), node, self.all_workers);
                let phases = context::creation_phases(node.role);
                context::run_phases(c.provider(), &container, node, env, &phases).await
            }
        };
        // a script that hangs must not hold up an interrupted create: its
        // node is about to be removed anyway
        let r = tokio::select! {
            r = scripts => r,
            _ = self.cancel.cancelled() => Err(Error::Interrupted),
        };
        if let Err(e) = r {
            // stop making nodes at the first failure, not after every
            // node made so far has run its scripts
            return self.stop(e);
        }
        c.reporter.advance(&node.hostname());
        Ok(())
    }

    /// Contextualizes nodes as they come up, the front-end first.
    async fn contextualize_all(&self, mut up: UnboundedReceiver<NodeId>) -> Result<()> {
        if !self.bp.record.context {
            return Ok(());
        }
        // Workers that are up before the front-end's scripts are done wait.
        let mut early = Vec::new();
        if self.nodes.contains(&NodeId::FRONTEND) {
            loop {
                match up.recv().await {
                    Some(NodeId::FRONTEND) => break,
                    Some(worker) => early.push(worker),
                    None => return Ok(()), // the front-end was not made
                }
            }
            self.contextualize(NodeId::FRONTEND).await?;
        }
        let arriving =
            futures_util::stream::unfold(
                up,
                |mut rx| async move { rx.recv().await.map(|n| (n, rx)) },
            );
        let results: Vec<Result<()>> = futures_util::stream::iter(early)
            .chain(arriving)
            .map(|n| self.contextualize(n))
            .buffer_unordered(PARALLELISM)
            .collect()
            .await;
        first_error(results).map(|_| ())
    }
}

impl Clusters {
    /// Creates and starts nodes and contextualizes them: see [`BringUp`].
    pub(crate) async fn bring_up(
        &self,
        blueprint: &Blueprint<'_>,
        nodes: &[NodeId],
        all_workers: &[NodeId],
        cancel: &CancellationToken,
    ) -> Result<()> {
        BringUp::new(self, *blueprint, nodes, all_workers, cancel)
            .run()
            .await
    }
}
