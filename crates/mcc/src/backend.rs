//! Where a cluster verb runs: the library on this machine's engine, or a
//! daemon through its typed API. Each verb is one method here, returning
//! the same type either way, so `commands` prints it once and the two
//! ways cannot drift apart.

use std::sync::Arc;
use std::time::Duration;

use mcc_api::{AddNodesRequest, GcRequest, NodeLog, RecreateRequest, RemoveNodesRequest};
use mcc_core::cluster::{
    ClusterView, Clusters, DeleteReport, GcReport, NodeView, Removal, Reporter, Silent,
};
use mcc_core::model::{ClusterName, NodeId};
use mcc_core::provider::Engine;
use mcc_core::Result;
use reqwest::Method;

use crate::local::Notes;
use crate::progress::{interrupt_token, Progress};
use crate::remote::{self, body, Client};

mod cloud;

pub(crate) enum Backend {
    /// The library, on the engine `DOCKER_HOST` names (or the local one),
    /// connected to at the first verb that needs it and once only (a
    /// `delete` of several clusters is one connection).
    Local(tokio::sync::OnceCell<Arc<dyn Engine>>),
    /// `mcc serve`, through its API.
    Daemon(Client),
}

/// An operation of the daemon followed to its end in the progress display
/// (Ctrl-C cancels it), and its result.
pub(crate) async fn follow<T: serde::de::DeserializeOwned>(
    client: &Client,
    method: Method,
    path: &str,
    req: Option<serde_json::Value>,
) -> Result<T> {
    let progress = Arc::new(Progress::new());
    let cancel = interrupt_token(progress.clone());
    let v = client
        .operation(method, path, req.as_ref(), progress.as_ref(), &cancel)
        .await;
    progress.clear();
    remote::result(v?)
}

/// `--timeout` as the API takes it.
pub(crate) fn secs(d: Duration) -> Option<String> {
    Some(format!("{}s", d.as_secs()))
}

impl Backend {
    pub(crate) fn new(remote: Option<Client>) -> Backend {
        match remote {
            Some(c) => Backend::Daemon(c),
            None => Backend::Local(tokio::sync::OnceCell::new()),
        }
    }

    /// The clusters of the engine, reporting to `reporter`.
    async fn local(
        engine: &tokio::sync::OnceCell<Arc<dyn Engine>>,
        reporter: Arc<dyn Reporter>,
    ) -> Result<Clusters> {
        let provider = engine.get_or_try_init(mcc_core::provider::connect).await?;
        Ok(Clusters::new(provider.clone(), reporter))
    }

    /// The daemon, when the verb goes through one.
    pub(crate) fn daemon(&self) -> Option<&Client> {
        match self {
            Backend::Daemon(c) => Some(c),
            Backend::Local(_) => None,
        }
    }

    pub(crate) async fn list(&self) -> Result<Vec<ClusterView>> {
        match self {
            Backend::Daemon(c) => c.call(Method::GET, "/api/v1/clusters", None).await,
            Backend::Local(e) => Self::local(e, Arc::new(Notes)).await?.list().await,
        }
    }

    pub(crate) async fn inspect(&self, name: &ClusterName) -> Result<ClusterView> {
        match self {
            Backend::Daemon(c) => {
                c.call(Method::GET, &format!("/api/v1/clusters/{name}"), None)
                    .await
            }
            Backend::Local(e) => Self::local(e, Arc::new(Silent)).await?.inspect(name).await,
        }
    }

    pub(crate) async fn add_nodes(
        &self,
        name: &ClusterName,
        count: u32,
        timeout: Duration,
    ) -> Result<Vec<NodeView>> {
        match self {
            Backend::Daemon(c) => {
                let req = AddNodesRequest {
                    count: Some(count),
                    timeout: secs(timeout),
                };
                let path = format!("/api/v1/clusters/{name}/nodes");
                follow(c, Method::POST, &path, Some(body(&req))).await
            }
            Backend::Local(e) => {
                let progress = Arc::new(Progress::new());
                let clusters = Self::local(e, progress.clone()).await?;
                clusters
                    .add_nodes(name, count, timeout, &interrupt_token(progress))
                    .await
            }
        }
    }

    pub(crate) async fn recreate(
        &self,
        name: &ClusterName,
        nodes: &[NodeId],
        timeout: Duration,
    ) -> Result<ClusterView> {
        match self {
            Backend::Daemon(c) => {
                let req = RecreateRequest {
                    nodes: nodes.iter().map(|n| n.hostname()).collect(),
                    timeout: secs(timeout),
                };
                let path = format!("/api/v1/clusters/{name}/recreate");
                follow(c, Method::POST, &path, Some(body(&req))).await
            }
            Backend::Local(e) => {
                let progress = Arc::new(Progress::new());
                let clusters = Self::local(e, progress.clone()).await?;
                clusters
                    .recreate(name, nodes, timeout, &interrupt_token(progress))
                    .await
            }
        }
    }

    pub(crate) async fn remove_nodes(
        &self,
        name: &ClusterName,
        removal: &Removal,
        keep_state: bool,
    ) -> Result<ClusterView> {
        match self {
            Backend::Daemon(c) => {
                let req = RemoveNodesRequest {
                    nodes: match removal {
                        Removal::Nodes(n) => n.iter().map(|n| n.hostname()).collect(),
                        Removal::Count(_) => Vec::new(),
                    },
                    count: match removal {
                        Removal::Count(k) => Some(*k),
                        Removal::Nodes(_) => None,
                    },
                    keep_state,
                };
                let path = format!("/api/v1/clusters/{name}/delnode");
                follow(c, Method::POST, &path, Some(body(&req))).await
            }
            Backend::Local(e) => {
                Self::local(e, Arc::new(Progress::new()))
                    .await?
                    .remove_nodes(name, removal, keep_state)
                    .await
            }
        }
    }

    pub(crate) async fn delete(
        &self,
        name: &ClusterName,
        keep_volumes: bool,
    ) -> Result<DeleteReport> {
        match self {
            Backend::Daemon(c) => {
                let query = if keep_volumes {
                    "?keep-volumes=true"
                } else {
                    ""
                };
                let path = format!("/api/v1/clusters/{name}{query}");
                follow(c, Method::DELETE, &path, None).await
            }
            Backend::Local(e) => {
                Self::local(e, Arc::new(Silent))
                    .await?
                    .delete(name, keep_volumes)
                    .await
            }
        }
    }

    pub(crate) async fn start(&self, name: &ClusterName) -> Result<ClusterView> {
        match self {
            Backend::Daemon(c) => {
                let path = format!("/api/v1/clusters/{name}/start");
                follow(c, Method::POST, &path, None).await
            }
            Backend::Local(e) => {
                Self::local(e, Arc::new(Progress::new()))
                    .await?
                    .start(name)
                    .await
            }
        }
    }

    pub(crate) async fn stop(&self, name: &ClusterName) -> Result<ClusterView> {
        match self {
            Backend::Daemon(c) => {
                let path = format!("/api/v1/clusters/{name}/stop");
                follow(c, Method::POST, &path, None).await
            }
            Backend::Local(e) => {
                Self::local(e, Arc::new(Progress::new()))
                    .await?
                    .stop(name)
                    .await
            }
        }
    }

    /// Each node's context log: `(hostname, text)`.
    pub(crate) async fn logs(
        &self,
        name: &ClusterName,
        node: Option<NodeId>,
    ) -> Result<Vec<(String, String)>> {
        match self {
            Backend::Daemon(c) => {
                let path = match node {
                    Some(n) => format!("/api/v1/clusters/{name}/logs?node={}", n.hostname()),
                    None => format!("/api/v1/clusters/{name}/logs"),
                };
                let logs: Vec<NodeLog> = c.call(Method::GET, &path, None).await?;
                Ok(logs.into_iter().map(|l| (l.node, l.text)).collect())
            }
            Backend::Local(e) => {
                Self::local(e, Arc::new(Silent))
                    .await?
                    .logs(name, node)
                    .await
            }
        }
    }

    pub(crate) async fn gc(&self, only: &[ClusterName], volumes: bool) -> Result<GcReport> {
        match self {
            Backend::Daemon(c) => {
                let req = GcRequest {
                    clusters: only.iter().map(|c| c.to_string()).collect(),
                    volumes,
                };
                follow(c, Method::POST, "/api/v1/gc", Some(body(&req))).await
            }
            Backend::Local(e) => {
                Self::local(e, Arc::new(Notes))
                    .await?
                    .gc(only, volumes)
                    .await
            }
        }
    }
}
