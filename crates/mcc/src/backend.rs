//! Where a cluster verb runs: the library on this machine's engine, or a
//! daemon through its typed API. Each verb is one method here, returning
//! the same type either way, so `commands` prints it once and the two
//! ways cannot drift apart. The container-cloud verbs' methods are in
//! [`cloud`], `mcc host`'s in [`hosts`].

use std::sync::Arc;
use std::time::Duration;

use mcc_api::{
    AddNodesRequest, CreateRequest, ExecEvent, ExecRequest, GcRequest, NodeLog, RecreateRequest,
    RemoveNodesRequest,
};
use mcc_core::cluster::{
    ClusterView, Clusters, CreateOptions, DeleteReport, ExecReport, GcReport, NodeView, OutputLine,
    Removal, Reporter, Silent, Target,
};
use mcc_core::model::{ClusterName, ClusterSpec, NodeId, SpecInput};
use mcc_core::provider::Engine;
use mcc_core::{Error, Result};
use reqwest::Method;

use crate::local::Notes;
use crate::progress::{interrupt_token, Progress};
use crate::remote::{self, body, Client};

mod cloud;
mod hosts;

/// What `exec` passes each line a node prints to.
pub(crate) type OnLine<'a> = &'a (dyn Fn(OutputLine<'_>) + Send + Sync);

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
async fn follow<T: serde::de::DeserializeOwned>(
    client: &Client,
    method: Method,
    path: &str,
    req: Option<serde_json::Value>,
) -> Result<T> {
    follow_in(client, method, path, req, Arc::new(Progress::new())).await
}

/// [`follow`], in the progress display `progress`.
async fn follow_in<T: serde::de::DeserializeOwned>(
    client: &Client,
    method: Method,
    path: &str,
    req: Option<serde_json::Value>,
    progress: Arc<Progress>,
) -> Result<T> {
    let cancel = interrupt_token(progress.clone());
    let v = client
        .operation(method, path, req.as_ref(), progress.as_ref(), &cancel)
        .await;
    progress.clear();
    remote::result(v?)
}

/// `--timeout` as the API takes it.
fn secs(d: Duration) -> Option<String> {
    Some(format!("{}s", d.as_secs()))
}

/// The daemon's create request: the cluster's input with its name fixed
/// (a generated one too) and the context folder packed into it, as the
/// daemon cannot read the client's paths.
async fn create_request(
    spec: &ClusterSpec,
    mut input: SpecInput,
    opts: &CreateOptions,
) -> Result<CreateRequest> {
    let context = match &spec.context {
        None => None,
        Some(dir) => {
            let dir = dir.clone();
            let tar = tokio::task::spawn_blocking(move || mcc_core::context::pack_folder(&dir))
                .await
                .map_err(|e| Error::Failed(format!("packing the context folder: {e}")))??;
            use base64::Engine as _;
            Some(base64::engine::general_purpose::STANDARD.encode(tar))
        }
    };
    input.name = Some(spec.name.to_string());
    input.context_folder = None;
    Ok(CreateRequest {
        spec: input,
        context,
        keep_on_failure: opts.keep_on_failure,
        timeout: secs(opts.timeout),
    })
}

/// An exec through the daemon: the lines of its NDJSON answer as they
/// come, then each node's outcome.
async fn exec_remote(
    client: &Client,
    name: &ClusterName,
    on: &str,
    command: &[String],
    on_line: OnLine<'_>,
) -> Result<ExecReport> {
    let req = ExecRequest {
        on: Some(on.to_string()),
        command: command.to_vec(),
    };
    let mut results = None;
    let mut failure = None;
    client
        .lines::<ExecEvent>(
            Method::POST,
            &format!("/api/v1/clusters/{name}/exec"),
            Some(&body(&req)),
            |e| {
                match e {
                    ExecEvent::Line { node, stderr, text } => on_line(OutputLine {
                        node: &node,
                        stderr,
                        text: &text,
                    }),
                    ExecEvent::Done { results: r } => results = Some(r),
                    ExecEvent::Error { error } => failure = Some(error.into_error()),
                }
                Ok(())
            },
        )
        .await?;
    if let Some(e) = failure {
        return Err(e);
    }
    let results = results
        .ok_or_else(|| Error::Failed("the daemon's answer ended before the command did".into()))?
        .into_iter()
        .map(|r| {
            let outcome = match (r.exit_code, r.error) {
                (Some(code), _) => Ok(code),
                (None, e) => Err(e.unwrap_or_else(|| "no exit code".into())),
            };
            (r.node, outcome)
        })
        .collect();
    Ok(ExecReport { results })
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

    /// Makes the cluster `spec` (validated from `input`, which is what a
    /// daemon is sent), in the progress display `progress`. `starting` is
    /// called as the making begins (the engine reached, or the context
    /// folder packed) with the daemon's URL when it goes through one.
    pub(crate) async fn create(
        &self,
        spec: &ClusterSpec,
        input: SpecInput,
        opts: &CreateOptions,
        progress: Arc<Progress>,
        starting: impl FnOnce(Option<&str>),
    ) -> Result<ClusterView> {
        match self {
            Backend::Daemon(c) => {
                let req = create_request(spec, input, opts).await?;
                starting(Some(&c.endpoint.url));
                let req = Some(body(&req));
                follow_in(c, Method::POST, "/api/v1/clusters", req, progress).await
            }
            Backend::Local(e) => {
                let clusters = Self::local(e, progress.clone()).await?;
                starting(None);
                clusters
                    .create(spec, opts, &interrupt_token(progress))
                    .await
            }
        }
    }

    /// A shell (or `command`) on `node`, on this terminal; its exit code.
    pub(crate) async fn enter(
        &self,
        name: &ClusterName,
        node: NodeId,
        command: Vec<String>,
    ) -> Result<u8> {
        match self {
            Backend::Daemon(c) => crate::enter::enter_remote(c, name.as_str(), node, command).await,
            Backend::Local(e) => {
                let clusters = Self::local(e, Arc::new(Silent)).await?;
                crate::enter::enter(&clusters, name, node, command).await
            }
        }
    }

    /// Runs `command` on the nodes `on` names (`target`, parsed from it),
    /// passing each line they print to `on_line`.
    pub(crate) async fn exec(
        &self,
        name: &ClusterName,
        on: &str,
        target: &Target,
        command: &[String],
        on_line: OnLine<'_>,
    ) -> Result<ExecReport> {
        match self {
            Backend::Daemon(c) => exec_remote(c, name, on, command, on_line).await,
            Backend::Local(e) => {
                Self::local(e, Arc::new(Silent))
                    .await?
                    .exec(name, target, command, on_line)
                    .await
            }
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
        host: Option<&str>,
        timeout: Duration,
    ) -> Result<Vec<NodeView>> {
        match self {
            Backend::Daemon(c) => {
                let req = AddNodesRequest {
                    count: Some(count),
                    timeout: secs(timeout),
                    host: host.map(String::from),
                };
                let path = format!("/api/v1/clusters/{name}/nodes");
                follow(c, Method::POST, &path, Some(body(&req))).await
            }
            Backend::Local(e) => {
                let progress = Arc::new(Progress::new());
                let clusters = Self::local(e, progress.clone()).await?;
                clusters
                    .add_nodes_on(name, count, host, timeout, &interrupt_token(progress))
                    .await
            }
        }
    }

    pub(crate) async fn recreate(
        &self,
        name: &ClusterName,
        nodes: &[NodeId],
        host: Option<&str>,
        timeout: Duration,
    ) -> Result<ClusterView> {
        match self {
            Backend::Daemon(c) => {
                let req = RecreateRequest {
                    nodes: nodes.iter().map(|n| n.hostname()).collect(),
                    timeout: secs(timeout),
                    host: host.map(String::from),
                };
                let path = format!("/api/v1/clusters/{name}/recreate");
                follow(c, Method::POST, &path, Some(body(&req))).await
            }
            Backend::Local(e) => {
                let progress = Arc::new(Progress::new());
                let clusters = Self::local(e, progress.clone()).await?;
                clusters
                    .recreate_on(name, nodes, host, timeout, &interrupt_token(progress))
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
