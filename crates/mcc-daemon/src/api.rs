//! The routes of `/api/v1`, with their OpenAPI description generated from
//! the handlers' annotations.
//!
//! Reads answer at once; changes that take time (create, addnode, delete,
//! …) answer `202 Accepted` with an [`Operation`] to poll or follow.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use mcc_api::{
    AddNodesRequest, AttachControl, CreateRequest, ErrorBody, ErrorDetail, Event, ExecEvent,
    ExecRequest, GcRequest, NewToken, NodeLog, NodeResult, Operation, OperationEvent,
    RecreateRequest, RemoveNodesRequest, TokenInfo, TokenRequest,
};
use mcc_core::cluster::{
    AttachOptions, ClusterView, Clusters, CreateOptions, DeleteReport, GcReport, NodeView, Removal,
    Reporter, Target, DEFAULT_TIMEOUT,
};
use mcc_core::model::duration::parse_duration;
use mcc_core::model::flags::CreateFlags;
use mcc_core::model::{ClusterName, NodeId};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use utoipa::{IntoParams, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::{
    ndjson, send_output, until_revoked, upgrade, ApiError, ApiQuery, ApiResult, App, AppState,
    WsRejection,
};
use crate::auth::{error_response, Caller, Guard};
use crate::body::body;
use crate::ops::{Follow, OpFuture};
use crate::scope::{RouteTable, SESSION_SCHEME, SIGNATURE_SCHEME};

fn cluster_name(s: &str) -> ApiResult<ClusterName> {
    s.parse().map_err(|e: String| ApiError::invalid(e))
}

fn node_name(s: &str) -> ApiResult<NodeId> {
    NodeId::parse_hostname(s).ok_or_else(|| {
        ApiError::invalid(format!(
            "'{s}' is not a node name; nodes are frontend, node01, node02, …"
        ))
    })
}

fn timeout(t: &Option<String>) -> ApiResult<Duration> {
    match t {
        None => Ok(DEFAULT_TIMEOUT),
        Some(s) => parse_duration(s).map_err(|e| ApiError::invalid(format!("timeout: {e}"))),
    }
}

fn accepted(op: Operation) -> Response {
    let location = format!("/api/v1/operations/{}", op.id);
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(op),
    )
        .into_response()
}

fn to_value<T: serde::Serialize>(v: T) -> serde_json::Value {
    serde_json::to_value(v).expect("serializable")
}

impl App {
    /// Starts an operation whose work gets a [`Clusters`] that reports to it.
    ///
    /// The work runs on a blocking thread that drives it with the
    /// runtime's handle: the library's futures are not all provably
    /// `Send` (a compiler limit with higher-ranked lifetimes), and an
    /// operation is long and rare enough to have a thread.
    fn start<F>(
        self: &Arc<Self>,
        kind: &str,
        cluster: Option<&ClusterName>,
        work: impl FnOnce(Clusters, tokio_util::sync::CancellationToken) -> F + Send + 'static,
    ) -> ApiResult<Response>
    where
        F: std::future::Future<Output = mcc_core::Result<serde_json::Value>> + 'static,
    {
        let provider = self.provider.clone();
        let op = self.ops.start(
            kind,
            cluster,
            move |reporter: Arc<dyn Reporter>, cancel| -> OpFuture {
                let handle = tokio::runtime::Handle::current();
                let clusters = Clusters::new(provider, reporter);
                Box::pin(async move {
                    tokio::task::spawn_blocking(move || handle.block_on(work(clusters, cancel)))
                        .await
                        .unwrap_or_else(|e| {
                            Err(mcc_core::Error::Failed(format!(
                                "the operation stopped unexpectedly: {e}"
                            )))
                        })
                })
            },
        )?;
        Ok(accepted(op))
    }

    /// 404 now, rather than an operation that fails, for a missing cluster.
    async fn existing(&self, name: &ClusterName) -> ApiResult<()> {
        if self.clusters.exists(name).await? {
            return Ok(());
        }
        Err(ApiError::not_found(format!(
            "cluster '{name}' does not exist; `mcc list` shows the clusters there are"
        )))
    }
}

#[utoipa::path(get, path = "/healthz", security(()), tag = "daemon",
    responses((status = 200, description = "The daemon answers", body = serde_json::Value)))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

#[utoipa::path(get, path = "/api/v1/openapi.json", security(("signature" = ["read"])), tag = "daemon",
    responses((status = 200, description = "This document", body = serde_json::Value)))]
pub async fn openapi(State(app): AppState) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        app.openapi.clone(),
    )
        .into_response()
}

#[utoipa::path(get, path = "/api/v1/clusters", security(("signature" = ["read"])), tag = "clusters",
    responses((status = 200, body = [ClusterView]), (status = 401, body = ErrorBody)))]
pub async fn list_clusters(State(app): AppState) -> ApiResult<Response> {
    let json = app.cache.json(&app.clusters).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

// the body limit is auth::MAX_UPLOAD_BODY (a test checks they agree)
#[utoipa::path(post, path = "/api/v1/clusters", security(("signature" = ["write"])), tag = "clusters", request_body = CreateRequest,
    extensions(("x-mcc-body-limit" = json!(100663296))),
    responses((status = 202, description = "The create runs as an operation", body = Operation),
              (status = 400, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn create_cluster(State(app): AppState, bytes: Bytes) -> ApiResult<Response> {
    let req: CreateRequest = body(&bytes)?;
    if req.spec.context_folder.is_some() {
        return Err(ApiError::invalid(
            "context-folder: names a folder on the client, which the daemon cannot read; send \
             the folder as `context`, a base64 tar archive (`mcc create --context-folder` does)",
        ));
    }
    let mut spec = CreateFlags::default()
        .resolve(req.spec)
        .map_err(ApiError::invalid)?;
    let opts = CreateOptions {
        keep_on_failure: req.keep_on_failure,
        timeout: timeout(&req.timeout)?,
    };
    let name = spec.name.clone();
    // what create would refuse, refused now: a 4xx, and no operation
    app.clusters.check_create(&spec).await?;
    let upload = match req.context {
        None => None,
        Some(b64) => {
            use base64::Engine as _;
            let tar = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| ApiError::invalid(format!("context: not base64: {e}")))?;
            let uploads = app.uploads.clone();
            let dir =
                tokio::task::spawn_blocking(move || -> mcc_core::Result<tempfile::TempDir> {
                    let dir = tempfile::Builder::new()
                        .prefix("context-")
                        .tempdir_in(&uploads)
                        .map_err(|e| {
                            mcc_core::Error::Failed(format!("unpacking the context: {e}"))
                        })?;
                    mcc_core::context::unpack_folder(&tar, dir.path())?;
                    Ok(dir)
                })
                .await
                .map_err(|e| ApiError::from(mcc_core::Error::Failed(e.to_string())))??;
            spec.context = Some(dir.path().to_path_buf());
            Some(dir)
        }
    };
    app.start("create", Some(&name), move |clusters, cancel| async move {
        let view = clusters.create(&spec, &opts, &cancel).await;
        drop(upload);
        Ok(to_value(view?))
    })
}

#[utoipa::path(get, path = "/api/v1/clusters/{name}", security(("signature" = ["read"])), tag = "clusters",
    params(("name" = String, Path, description = "Cluster name")),
    responses((status = 200, body = ClusterView), (status = 404, body = ErrorBody)))]
pub async fn get_cluster(
    State(app): AppState,
    Path(name): Path<String>,
) -> ApiResult<Json<ClusterView>> {
    let name = cluster_name(&name)?;
    Ok(Json(app.clusters.inspect(&name).await?))
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DeleteQuery {
    /// Keep the cluster's data volumes (`mcc gc --volumes` removes them later).
    #[serde(default)]
    keep_volumes: bool,
}

#[utoipa::path(delete, path = "/api/v1/clusters/{name}", security(("signature" = ["write"])), tag = "clusters",
    params(("name" = String, Path, description = "Cluster name"), DeleteQuery),
    responses((status = 202, body = Operation, description = "Result: a DeleteReport")))]
pub async fn delete_cluster(
    State(app): AppState,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> ApiResult<Response> {
    let name = cluster_name(&name)?;
    let n = name.clone();
    app.start("delete", Some(&name), move |clusters, _| async move {
        let r: DeleteReport = clusters.delete(&n, q.keep_volumes).await?;
        Ok(to_value(r))
    })
}

#[utoipa::path(post, path = "/api/v1/clusters/{name}/start", security(("signature" = ["write"])), tag = "clusters",
    params(("name" = String, Path, description = "Cluster name")),
    responses((status = 202, body = Operation, description = "Result: the ClusterView"), (status = 404, body = ErrorBody)))]
pub async fn start_cluster(State(app): AppState, Path(name): Path<String>) -> ApiResult<Response> {
    let name = cluster_name(&name)?;
    app.existing(&name).await?;
    let n = name.clone();
    app.start("start", Some(&name), move |clusters, _| async move {
        Ok(to_value(clusters.start(&n).await?))
    })
}

#[utoipa::path(post, path = "/api/v1/clusters/{name}/stop", security(("signature" = ["write"])), tag = "clusters",
    params(("name" = String, Path, description = "Cluster name")),
    responses((status = 202, body = Operation, description = "Result: the ClusterView"), (status = 404, body = ErrorBody)))]
pub async fn stop_cluster(State(app): AppState, Path(name): Path<String>) -> ApiResult<Response> {
    let name = cluster_name(&name)?;
    app.existing(&name).await?;
    let n = name.clone();
    app.start("stop", Some(&name), move |clusters, _| async move {
        Ok(to_value(clusters.stop(&n).await?))
    })
}

#[utoipa::path(get, path = "/api/v1/clusters/{name}/nodes", security(("signature" = ["read"])), tag = "nodes",
    params(("name" = String, Path, description = "Cluster name")),
    responses((status = 200, body = [NodeView]), (status = 404, body = ErrorBody)))]
pub async fn list_nodes(
    State(app): AppState,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<NodeView>>> {
    let name = cluster_name(&name)?;
    Ok(Json(app.clusters.inspect(&name).await?.nodes))
}

#[utoipa::path(get, path = "/api/v1/clusters/{name}/nodes/{node}", security(("signature" = ["read"])), tag = "nodes",
    params(("name" = String, Path, description = "Cluster name"), ("node" = String, Path, description = "Node: frontend, node01, …")),
    responses((status = 200, body = NodeView), (status = 404, body = ErrorBody)))]
pub async fn get_node(
    State(app): AppState,
    Path((name, node)): Path<(String, String)>,
) -> ApiResult<Json<NodeView>> {
    let name = cluster_name(&name)?;
    let node = node_name(&node)?;
    let view = app.clusters.inspect(&name).await?;
    view.nodes
        .into_iter()
        .find(|n| n.name == node.hostname())
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("cluster '{name}' has no node {node}")))
}

#[utoipa::path(post, path = "/api/v1/clusters/{name}/nodes", security(("signature" = ["write"])), tag = "nodes", request_body = AddNodesRequest,
    params(("name" = String, Path, description = "Cluster name")),
    responses((status = 202, body = Operation, description = "Result: the added NodeViews"), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_nodes(
    State(app): AppState,
    Path(name): Path<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let name = cluster_name(&name)?;
    let req: AddNodesRequest = body(&bytes)?;
    let count = req.count.unwrap_or(1);
    let t = timeout(&req.timeout)?;
    app.clusters.check_add_nodes(&name, count).await?;
    let n = name.clone();
    let host = req.host;
    app.start("addnode", Some(&name), move |clusters, cancel| async move {
        Ok(to_value(
            clusters
                .add_nodes_on(&n, count, host.as_deref(), t, &cancel)
                .await?,
        ))
    })
}

fn removal(req: &RemoveNodesRequest) -> ApiResult<Removal> {
    match (req.count, req.nodes.is_empty()) {
        (Some(0), _) => Err(ApiError::invalid("count: must be at least 1")),
        (Some(k), true) => Ok(Removal::Count(k)),
        (Some(_), false) => Err(ApiError::invalid("give either nodes or count, not both")),
        (None, true) => Err(ApiError::invalid(
            "nodes: name the workers to remove, or give count",
        )),
        (None, false) => Ok(Removal::Nodes(
            req.nodes
                .iter()
                .map(|n| node_name(n))
                .collect::<ApiResult<_>>()?,
        )),
    }
}

fn remove(
    app: &Arc<App>,
    name: ClusterName,
    which: Removal,
    keep_state: bool,
) -> ApiResult<Response> {
    let n = name.clone();
    app.start("delnode", Some(&name), move |clusters, _| async move {
        Ok(to_value(
            clusters.remove_nodes(&n, &which, keep_state).await?,
        ))
    })
}

#[utoipa::path(post, path = "/api/v1/clusters/{name}/delnode", security(("signature" = ["write"])), tag = "nodes", request_body = RemoveNodesRequest,
    params(("name" = String, Path, description = "Cluster name")),
    responses((status = 202, body = Operation, description = "Result: the ClusterView"), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn remove_nodes(
    State(app): AppState,
    Path(name): Path<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let name = cluster_name(&name)?;
    let req: RemoveNodesRequest = body(&bytes)?;
    let which = removal(&req)?;
    app.clusters.check_remove_nodes(&name, &which).await?;
    remove(&app, name, which, req.keep_state)
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RemoveNodeQuery {
    /// Keep the node's volumes for a later addnode of the same number.
    #[serde(default)]
    keep_state: bool,
}

#[utoipa::path(delete, path = "/api/v1/clusters/{name}/nodes/{node}", security(("signature" = ["write"])), tag = "nodes",
    params(("name" = String, Path, description = "Cluster name"), ("node" = String, Path, description = "A worker"), RemoveNodeQuery),
    responses((status = 202, body = Operation), (status = 404, body = ErrorBody)))]
pub async fn remove_node(
    State(app): AppState,
    Path((name, node)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<RemoveNodeQuery>,
) -> ApiResult<Response> {
    let name = cluster_name(&name)?;
    let node = node_name(&node)?;
    let view = app.clusters.inspect(&name).await?;
    if !view.nodes.iter().any(|n| n.name == node.hostname()) {
        return Err(ApiError::not_found(format!(
            "cluster '{name}' has no node {node}"
        )));
    }
    // the front-end, say
    let which = Removal::Nodes(vec![node]);
    app.clusters.check_remove_nodes(&name, &which).await?;
    remove(&app, name, which, q.keep_state)
}

#[utoipa::path(post, path = "/api/v1/clusters/{name}/recreate", security(("signature" = ["write"])), tag = "nodes", request_body = RecreateRequest,
    params(("name" = String, Path, description = "Cluster name")),
    responses((status = 202, body = Operation, description = "Result: the ClusterView"), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn recreate(
    State(app): AppState,
    Path(name): Path<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let name = cluster_name(&name)?;
    let req: RecreateRequest = body(&bytes)?;
    let nodes: Vec<NodeId> = req
        .nodes
        .iter()
        .map(|n| node_name(n))
        .collect::<ApiResult<_>>()?;
    let t = timeout(&req.timeout)?;
    app.existing(&name).await?;
    let n = name.clone();
    let host = req.host;
    app.start(
        "recreate",
        Some(&name),
        move |clusters, cancel| async move {
            Ok(to_value(
                clusters
                    .recreate_on(&n, &nodes, host.as_deref(), t, &cancel)
                    .await?,
            ))
        },
    )
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    /// Only this node's log.
    node: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/clusters/{name}/logs", security(("signature" = ["read"])), tag = "nodes",
    params(("name" = String, Path, description = "Cluster name"), LogsQuery),
    responses((status = 200, body = [NodeLog]), (status = 404, body = ErrorBody)))]
pub async fn logs(
    State(app): AppState,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<LogsQuery>,
) -> ApiResult<Json<Vec<NodeLog>>> {
    let name = cluster_name(&name)?;
    let node = q.node.as_deref().map(node_name).transpose()?;
    let logs = app.clusters.logs(&name, node).await?;
    Ok(Json(
        logs.into_iter()
            .map(|(node, text)| NodeLog { node, text })
            .collect(),
    ))
}

#[utoipa::path(post, path = "/api/v1/clusters/{name}/exec", security(("signature" = ["exec"])), tag = "nodes", request_body = ExecRequest,
    params(("name" = String, Path, description = "Cluster name")),
    responses((status = 200, content_type = "application/x-ndjson", body = ExecEvent,
               description = "One ExecEvent per line: output lines, then `done` with each node's exit code"),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn exec(
    State(app): AppState,
    Path(name): Path<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let name = cluster_name(&name)?;
    let req: ExecRequest = body(&bytes)?;
    if req.command.is_empty() {
        return Err(ApiError::invalid(
            "command: give the command to run, as a list of words",
        ));
    }
    let target: Target = req
        .on
        .as_deref()
        .unwrap_or("all")
        .parse()
        .map_err(|e: String| ApiError::invalid(e))?;
    app.existing(&name).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<ExecEvent>(1024);
    let clusters = app.clusters.clone();
    tokio::spawn(async move {
        let lines = tx.clone();
        let on_line = move |l: mcc_core::cluster::OutputLine<'_>| {
            // Output is dropped, not buffered without end, for a client
            // that stopped reading.
            let _ = lines.try_send(ExecEvent::Line {
                node: l.node.to_string(),
                stderr: l.stderr,
                text: l.text.to_string(),
            });
        };
        let last = match clusters.exec(&name, &target, &req.command, &on_line).await {
            Ok(report) => ExecEvent::Done {
                results: report
                    .results
                    .into_iter()
                    .map(|(node, r)| match r {
                        Ok(code) => NodeResult {
                            node,
                            exit_code: Some(code),
                            error: None,
                        },
                        Err(e) => NodeResult {
                            node,
                            exit_code: None,
                            error: Some(e),
                        },
                    })
                    .collect(),
            },
            Err(e) => ExecEvent::Error {
                error: ErrorDetail::from_error(&e).1,
            },
        };
        let _ = tx.send(last).await;
    });
    Ok(ndjson(rx))
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AttachQuery {
    /// Give the process a terminal.
    #[serde(default)]
    tty: bool,
    /// The command as a JSON array of words; none: a login shell.
    command: Option<String>,
    /// TERM for the process (with tty).
    term: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/clusters/{name}/nodes/{node}/attach", security(("signature" = ["exec"])), tag = "nodes",
    params(("name" = String, Path, description = "Cluster name"), ("node" = String, Path, description = "Node"), AttachQuery),
    responses((status = 101, description = "A WebSocket: binary frames to the server are stdin; from it, binary \
        frames whose first byte is 1 (stdout) or 2 (stderr); text frames carry AttachControl JSON \
        (resize, eof to the server; exit with the code from it)"),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn attach(
    State(app): AppState,
    axum::Extension(caller): axum::Extension<Caller>,
    Path((name, node)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<AttachQuery>,
    ws: Result<WebSocketUpgrade, WsRejection>,
) -> ApiResult<Response> {
    let name = cluster_name(&name)?;
    let node = node_name(&node)?;
    let command: Vec<String> = match &q.command {
        None => Vec::new(),
        Some(c) => serde_json::from_str(c)
            .map_err(|e| ApiError::invalid(format!("command: a JSON array of strings: {e}")))?,
    };
    let mut env = Vec::new();
    if q.tty {
        let term = q.term.unwrap_or_else(|| "xterm".into());
        if term.is_empty()
            || !term
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b))
        {
            return Err(ApiError::invalid(format!(
                "term: '{term}' is not a terminal type"
            )));
        }
        env.push(format!("TERM={term}"));
    }
    let ws = upgrade(ws)?;
    let session = app
        .clusters
        .attach(
            &name,
            node,
            AttachOptions {
                command,
                tty: q.tty,
                env,
            },
        )
        .await?;
    Ok(ws.on_upgrade(move |socket| until_revoked(caller, bridge(socket, session))))
}

/// Carries a session over a WebSocket until the process ends.
async fn bridge(socket: WebSocket, session: mcc_core::cluster::Session) {
    let mcc_core::cluster::Session {
        control,
        output,
        mut input,
    } = session;
    let (mut tx, mut rx) = socket.split();
    let control = Arc::new(control);
    let c2 = control.clone();
    // aborted when dropped: revoking the token drops this future, and the
    // socket closes only once its read half is gone too
    let reader = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
        while let Some(Ok(msg)) = rx.next().await {
            match msg {
                Message::Binary(b) => {
                    if input.write_all(&b).await.is_err() {
                        break;
                    }
                    let _ = input.flush().await;
                }
                Message::Text(t) => match serde_json::from_str::<AttachControl>(&t) {
                    Ok(AttachControl::Resize { rows, cols }) => {
                        let _ = c2.resize(rows, cols).await;
                    }
                    Ok(AttachControl::Eof) => {
                        let _ = input.shutdown().await;
                    }
                    _ => {}
                },
                Message::Close(_) => break,
                _ => {}
            }
        }
    }));
    send_output(&mut tx, output, async move { control.exit_code().await }).await;
    drop(reader);
}

#[utoipa::path(post, path = "/api/v1/gc", security(("signature" = ["write"])), tag = "clusters", request_body = GcRequest,
    responses((status = 202, body = Operation, description = "Result: a GcReport"), (status = 422, body = ErrorBody)))]
pub async fn gc(State(app): AppState, bytes: Bytes) -> ApiResult<Response> {
    let req: GcRequest = body(&bytes)?;
    let only: Vec<ClusterName> = req
        .clusters
        .iter()
        .map(|c| cluster_name(c))
        .collect::<ApiResult<_>>()?;
    app.start("gc", None, move |clusters, _| async move {
        let r: GcReport = clusters.gc(&only, req.volumes).await?;
        Ok(to_value(r))
    })
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OperationsQuery {
    /// At most this many, newest first (default 50).
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/operations", security(("signature" = ["read"])), tag = "operations", params(OperationsQuery),
    responses((status = 200, body = [Operation])))]
pub async fn list_operations(
    State(app): AppState,
    ApiQuery(q): ApiQuery<OperationsQuery>,
) -> ApiResult<Json<Vec<Operation>>> {
    Ok(Json(app.ops.list(q.limit.unwrap_or(50).min(1000))?))
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FollowQuery {
    /// Stream the operation's progress as JSON lines (OperationEvent),
    /// from its start to its `done`.
    #[serde(default)]
    follow: bool,
}

#[utoipa::path(get, path = "/api/v1/operations/{id}", security(("signature" = ["read"])), tag = "operations",
    params(("id" = String, Path, description = "Operation ID"), FollowQuery),
    responses((status = 200, description = "The operation; with follow=true, OperationEvent lines \
        until its end", content((Operation = "application/json"),
        (OperationEvent = "application/x-ndjson"))),
              (status = 404, body = ErrorBody)))]
pub async fn get_operation(
    State(app): AppState,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<FollowQuery>,
) -> ApiResult<Response> {
    let missing = || ApiError::not_found(format!("operation '{id}' does not exist"));
    if !q.follow {
        return Ok(Json(app.ops.get(&id)?.ok_or_else(missing)?).into_response());
    }
    let follow = app.ops.follow(&id)?.ok_or_else(missing)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<OperationEvent>(256);
    let app2 = app.clone();
    tokio::spawn(async move {
        match follow {
            Follow::Finished(events, op) => {
                for e in events
                    .into_iter()
                    .filter(|e| !matches!(e, OperationEvent::Done { .. }))
                {
                    if tx.send(e).await.is_err() {
                        return;
                    }
                }
                let _ = tx.send(OperationEvent::Done { operation: op }).await;
            }
            Follow::Running(past, mut live) => {
                for e in past {
                    if tx.send(e).await.is_err() {
                        return;
                    }
                }
                loop {
                    match live.recv().await {
                        Ok(e) => {
                            let done = matches!(e, OperationEvent::Done { .. });
                            if tx.send(e).await.is_err() || done {
                                return;
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                            // Ended while we lagged: the stored end.
                            if let Ok(Some(op)) = app2.ops.get(&id) {
                                let _ = tx.send(OperationEvent::Done { operation: op }).await;
                            }
                            return;
                        }
                    }
                }
            }
        }
    });
    Ok(ndjson(rx))
}

#[utoipa::path(delete, path = "/api/v1/operations/{id}", security(("signature" = ["write"])), tag = "operations",
    params(("id" = String, Path, description = "Operation ID")),
    responses((status = 202, body = Operation, description = "Cancelling: it cleans up, then ends `cancelled`"),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "It has ended")))]
pub async fn cancel_operation(State(app): AppState, Path(id): Path<String>) -> ApiResult<Response> {
    let op = app
        .ops
        .get(&id)?
        .ok_or_else(|| ApiError::not_found(format!("operation '{id}' does not exist")))?;
    if !app.ops.cancel(&id) {
        return Err(ApiError(
            StatusCode::CONFLICT,
            ErrorDetail::new(
                "conflict",
                format!("operation '{id}' has ended ({})", op.state.as_str()),
            ),
        ));
    }
    Ok((StatusCode::ACCEPTED, Json(op)).into_response())
}

#[utoipa::path(get, path = "/api/v1/tokens", security(("signature" = ["tokens"])), tag = "tokens",
    responses((status = 200, body = [TokenInfo]), (status = 403, body = ErrorBody)))]
pub async fn list_tokens(State(app): AppState) -> ApiResult<Json<Vec<TokenInfo>>> {
    Ok(Json(app.auth.list()?))
}

#[utoipa::path(post, path = "/api/v1/tokens", security(("signature" = ["tokens"])), tag = "tokens", request_body = TokenRequest,
    responses((status = 201, body = NewToken, description = "The secret key is shown this once"),
              (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_token(
    State(app): AppState,
    axum::Extension(caller): axum::Extension<Caller>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let req: TokenRequest = body(&bytes)?;
    let name = req.name.unwrap_or_else(|| "token".into());
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
    {
        return Err(ApiError::invalid(format!(
            "name: '{name}' must be 1 to 64 letters, digits, '-', '_', '.' or '@'"
        )));
    }
    let (info, secret_key) = app.auth.create(&name, req.read_only)?;
    app.log.record(
        "token",
        crate::events::About::default(),
        format!(
            "token {} ({name}{}) created by {}",
            info.token,
            if info.read_only { ", read-only" } else { "" },
            caller.token
        ),
    );
    Ok((StatusCode::CREATED, Json(NewToken { info, secret_key })).into_response())
}

#[utoipa::path(delete, path = "/api/v1/tokens/{token}", security(("signature" = ["tokens"])), tag = "tokens",
    params(("token" = String, Path, description = "The token to revoke")),
    responses((status = 204, description = "Revoked"), (status = 404, body = ErrorBody)))]
pub async fn revoke_token(
    State(app): AppState,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(token): Path<String>,
) -> ApiResult<Response> {
    if !app.auth.revoke(&token)? {
        return Err(ApiError::not_found(format!(
            "token '{token}' does not exist"
        )));
    }
    app.log.record(
        "token",
        crate::events::About::default(),
        format!("token {token} revoked by {}", caller.token),
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(get, path = "/metrics", security(("signature" = ["read"])), tag = "daemon",
    responses((status = 200, content_type = "application/openmetrics-text", body = String,
               description = "OpenMetrics text (Prometheus reads it)")))]
pub async fn metrics(State(app): AppState) -> ApiResult<Response> {
    let views = app.cache.views(&app.clusters).await?;
    let runs = app.clusters.runs().await?;
    let counters = app.store.counters().unwrap_or_default();
    let text = app
        .metrics
        .render(&app.provider, &views, &runs, app.ops.active(), &counters);
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// Answers routes that do not exist with the API's error shape.
pub async fn no_route(uri: axum::http::Uri) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("no such route: {}", uri.path()),
    )
}

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            SIGNATURE_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                mcc_api::sign::HEADER_TOKEN,
                "Every /api request carries x-mcc-access-token, x-mcc-timestamp (Unix seconds), \
                 x-mcc-nonce (16-64 of [A-Za-z0-9_-], never reused) and x-mcc-signature: \
                 lowercase hex HMAC-SHA256, keyed with the secret key, of \
                 \"MCC-HMAC-SHA256\\nMETHOD\\nPATH\\nQUERY\\nTIMESTAMP\\nNONCE\\nhex(SHA-256(body))\". \
                 The scope a route needs (read, write, exec, tokens) is listed with it; a \
                 read-only token holds only read.",
            ))),
        );
        components.add_security_scheme(
            SESSION_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "mcc_session",
                "The dashboard's session, from POST /ui/login.",
            ))),
        );
    }
}

/// Adds to every signed route the answers the guard in front of it can
/// give (see `auth`), so that the document lists every status a client
/// may get.
struct GuardAnswers;

impl utoipa::Modify for GuardAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        const ANSWERS: [(&str, &str); 8] = [
            ("400", "The body is not JSON, or broke off"),
            (
                "401",
                "Unsigned, or the signature, timestamp or nonce is wrong",
            ),
            ("403", "The token lacks the route's scope"),
            ("408", "The body did not arrive in time"),
            ("411", "A body over 1 MiB without Content-Length"),
            ("413", "The body is over the route's limit"),
            (
                "429",
                "Over the token's rate; Retry-After says when to come back",
            ),
            ("503", "Busy (Retry-After), or the engine does not answer"),
        ];
        let error = ResponseBuilder::new()
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        // where a value of the request can be wrong or missing
        let bad_value = (
            "422",
            "A value of the path, query or body is wrong (the message names it)",
        );
        let missing = ("404", "What the path names does not exist");
        let conflict = (
            "409",
            "What the path names is not in a state that allows it",
        );
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
                &mut item.put,
            ]
            .into_iter()
            .flatten()
            {
                let signed = op.security.as_ref().is_some_and(|s| {
                    serde_json::to_value(s).is_ok_and(|v| v.to_string().contains(SIGNATURE_SCHEME))
                });
                if !signed {
                    continue;
                }
                let params = op.parameters.as_deref().unwrap_or_default();
                let in_path = params
                    .iter()
                    .any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Path));
                let mut answers = ANSWERS.to_vec();
                if in_path || !params.is_empty() || op.request_body.is_some() {
                    answers.push(bad_value);
                }
                if in_path {
                    answers.extend([missing, conflict]);
                }
                for (status, description) in answers {
                    let mut r = error.clone();
                    r.description = description.to_string();
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert(r.into());
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "mcc", description = "Clusters of containers, through `mcc serve`."),
    components(schemas(ErrorBody, OperationEvent, AttachControl, ExecEvent, Event, DeleteReport,
        GcReport, mcc_api::ServiceRequest, mcc_api::ScaleRequest, mcc_api::ServiceDef,
        mcc_api::ServiceView, mcc_api::ReplicaView, mcc_api::VpcRequest,
        mcc_api::VpcDeleteRequest, mcc_api::VpcView, mcc_api::IdDeleteReport,
        mcc_api::VolumeRequest, mcc_api::VolumeView, mcc_api::RunSpec, mcc_api::RmReport,
        mcc_api::ContainerStatus, mcc_api::ContainerMetrics)),
    modifiers(&Security),
)]
pub struct ApiDoc;

/// Every route with its OpenAPI entry: declared once, so the document is
/// the router's.
pub(crate) fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(openapi))
        .routes(routes!(list_clusters, create_cluster))
        .routes(routes!(get_cluster, delete_cluster))
        .routes(routes!(start_cluster))
        .routes(routes!(stop_cluster))
        .routes(routes!(list_nodes, add_nodes))
        .routes(routes!(get_node, remove_node))
        .routes(routes!(attach))
        .routes(routes!(remove_nodes))
        .routes(routes!(recreate))
        .routes(routes!(logs))
        .routes(routes!(exec))
        .routes(routes!(gc))
        .routes(routes!(list_operations))
        .routes(routes!(get_operation, cancel_operation))
        .routes(routes!(crate::events_api::events))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(metrics))
        .merge(crate::services::api::routes())
        .merge(crate::cloud_api::routes())
        .merge(crate::hosts_api::routes())
        .merge(crate::dashboard::routes())
}

/// Every route the router serves, as `(method, path template)` sorted,
/// e.g. `("get", "/api/v1/clusters/{name}")`: read from the parts the
/// router is built from (utoipa-axum registers a handler and its entry
/// together), so a test can hold each to the document's rules.
pub fn served_routes() -> Vec<(String, String)> {
    let (_, doc) = routes().split_for_parts();
    let doc = serde_json::to_value(&doc).expect("serializable");
    let mut out: Vec<(String, String)> = doc["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(path, item)| {
            item.as_object()
                .into_iter()
                .flat_map(|ops| ops.keys())
                // a path item also holds its parameters, summary, …
                .filter(|key| {
                    [
                        "get", "put", "post", "delete", "options", "head", "patch", "trace",
                    ]
                    .contains(&key.as_str())
                })
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    out.sort();
    out
}

/// The OpenAPI document of every route, as served.
pub fn document() -> serde_json::Value {
    let mut doc = routes().into_openapi();
    utoipa::Modify::modify(&GuardAnswers, &mut doc);
    let mut json = serde_json::to_value(&doc).expect("serializable");
    requests_take_no_null(&mut json);
    json
}

/// A request's optional field is given or left out, never `null` (see
/// `body`): the schemas of request bodies, and those they refer to, lose
/// the `null` that utoipa gives every `Option`.
fn requests_take_no_null(doc: &mut serde_json::Value) {
    fn refs(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(|r| r.as_str()) {
                    if let Some(name) = r.strip_prefix("#/components/schemas/") {
                        out.push(name.to_string());
                    }
                }
                m.values().for_each(|v| refs(v, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    fn strip_null(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                if m.get("default").is_some_and(|d| d.is_null()) {
                    m.remove("default");
                }
                if let Some(serde_json::Value::Array(types)) = m.get_mut("type") {
                    types.retain(|t| t != "null");
                    if types.len() == 1 {
                        let only = types.remove(0);
                        m.insert("type".into(), only);
                    }
                }
                for key in ["oneOf", "anyOf"] {
                    if let Some(serde_json::Value::Array(alts)) = m.get_mut(key) {
                        alts.retain(|a| a.get("type").is_none_or(|t| t != "null"));
                    }
                }
                m.values_mut().for_each(strip_null);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip_null),
            _ => {}
        }
    }
    let mut todo = Vec::new();
    for item in doc["paths"]
        .as_object()
        .into_iter()
        .flat_map(|p| p.values())
    {
        for op in item.as_object().into_iter().flat_map(|o| o.values()) {
            if let Some(rb) = op.get("requestBody") {
                refs(rb, &mut todo);
            }
        }
    }
    let mut done = std::collections::BTreeSet::new();
    while let Some(name) = todo.pop() {
        if !done.insert(name.clone()) {
            continue;
        }
        if let Some(schema) = doc["components"]["schemas"].get_mut(&name) {
            refs(schema, &mut todo);
            strip_null(schema);
        }
    }
}

/// How long a handler may take to answer (a stream's body is not
/// counted: it is sent after the answer).
const HANDLER_TIMEOUT: Duration = Duration::from_secs(60);
/// Handlers running at once; more wait for their turn (within the timeout).
const MAX_IN_FLIGHT: usize = 256;

/// The routes with the guard in front of every one (see `auth`), and
/// behind it, for signed requests, the handlers' timeout and their
/// concurrency limit; `/metrics` needs no signature with
/// `public_metrics`.
pub fn router(app: Arc<App>, public_metrics: bool) -> crate::Result<axum::Router> {
    guarded(routes(), app, public_metrics)
}

/// `routes` behind the guard and the limits, the guard's table read from
/// their OpenAPI document.
pub(crate) fn guarded(
    routes: OpenApiRouter<Arc<App>>,
    app: Arc<App>,
    public_metrics: bool,
) -> crate::Result<axum::Router> {
    let (router, doc) = routes.split_for_parts();
    let mut table = RouteTable::from_openapi(&doc)
        .map_err(|e| crate::DaemonError::Listen(format!("a route without its scope: {e}")))?;
    if public_metrics {
        table.make_public(&axum::http::Method::GET, "/metrics");
    }
    let guard = Arc::new(Guard::new(app.auth.clone(), table));
    let limits = tower::ServiceBuilder::new()
        .layer(axum::error_handling::HandleErrorLayer::new(
            |_: tower::BoxError| async {
                error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "timeout",
                    "the daemon could not answer in time (the engine is slow or busy); try again",
                )
            },
        ))
        .timeout(HANDLER_TIMEOUT)
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            MAX_IN_FLIGHT,
        ));
    Ok(router
        .fallback(no_route)
        .layer(limits)
        .layer(axum::middleware::from_fn_with_state(
            guard,
            crate::auth::guard,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            app.metrics.clone(),
            crate::metrics::track,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::auth::MAX_UPLOAD_BODY,
        ))
        .with_state(app))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::Scope;
    use axum::http::Method;

    #[test]
    fn every_route_declares_its_scope_and_the_upload_route_its_limit() {
        let (_, doc) = routes().split_for_parts();
        let table = RouteTable::from_openapi(&doc).expect("every route declares its scope");
        assert!(table.routes().len() >= 46, "{:?}", table.routes());
        let rule = |m: Method, p: &str| table.rule(&m, p).unwrap_or_else(|| panic!("{m} {p}"));
        assert_eq!(
            rule(Method::POST, "/api/v1/clusters").body_limit,
            crate::auth::MAX_UPLOAD_BODY
        );
        for (m, p) in [
            (Method::GET, "/api/v1/clusters/{name}/nodes/{node}/attach"),
            (Method::GET, "/api/v1/containers/{id}/forward"),
            (Method::POST, "/api/v1/clusters/{name}/exec"),
            (Method::POST, "/api/v1/containers"),
        ] {
            assert_eq!(rule(m.clone(), p).scope, Scope::Exec, "{m} {p}");
        }
        // a request's optional field takes no null (the body parser
        // refuses one), and the document says so
        let doc = document();
        let spec = &doc["components"]["schemas"]["SpecInput"]["properties"];
        assert_eq!(spec["nodes"]["type"], "integer", "{spec}");
        assert_eq!(spec["subnet"]["type"], "string", "{spec}");
        assert!(!doc["components"]["schemas"]["RunSpec"]
            .to_string()
            .contains("null"));
        for (m, p, r) in table.routes() {
            if r.scope != Scope::Read && m == Method::GET && p.starts_with("/api") {
                assert!(
                    p.ends_with("/attach") || p.ends_with("/forward") || p.contains("tokens"),
                    "GET {p} needs {:?}",
                    r.scope
                );
            }
        }
    }
}
