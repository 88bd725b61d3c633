//! Request and response bodies of the API. The cluster views themselves
//! are mcc-core's ([`ClusterView`], [`DeleteReport`], [`GcReport`]): the
//! daemon sends what the library returns, and the CLI prints it the same
//! way whether it came from the library or over HTTP.

use mcc_core::model::SpecInput;
use mcc_core::Error;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use mcc_core::cluster::{ClusterView, DeleteReport, GcAction, GcFailure, GcReport, NodeView};

/// Every error the API returns has this shape.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// One of: bad_request, invalid, unauthorized, forbidden, not_found,
    /// conflict, rate_limited, no_engine, engine, interrupted, failed.
    pub code: String,
    /// What went wrong and how to fix it, for a person.
    pub message: String,
}

impl ErrorDetail {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }

    /// The code and HTTP status of a library error.
    pub fn from_error(e: &Error) -> (u16, ErrorDetail) {
        let (status, code) = match e {
            Error::Invalid(_) => (422, "invalid"),
            Error::NotFound(_) => (404, "not_found"),
            Error::Conflict(_) => (409, "conflict"),
            Error::NoEngine { .. } | Error::NoDaemon { .. } => (503, "no_engine"),
            Error::Engine { .. } => (502, "engine"),
            Error::Interrupted => (499, "interrupted"),
            Error::CleanupFailed { error, .. } => {
                let (s, d) = ErrorDetail::from_error(error);
                return (s, ErrorDetail::new(&d.code, e.to_string()));
            }
            Error::ScriptFailed { .. } | Error::Failed(_) => (500, "failed"),
        };
        (status, ErrorDetail::new(code, e.to_string()))
    }

    /// The library error a client shows for this one: same message, and
    /// the same exit code as the command run locally.
    pub fn into_error(self) -> Error {
        match self.code.as_str() {
            "invalid" | "bad_request" => Error::Invalid(self.message),
            "not_found" => Error::NotFound(self.message),
            "conflict" => Error::Conflict(self.message),
            "interrupted" => Error::Interrupted,
            _ => Error::Failed(self.message),
        }
    }
}

/// `POST /api/v1/clusters`: the fields of a cluster file (the create
/// flags without `--`), plus the context folder as an archive.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct CreateRequest {
    #[serde(flatten)]
    pub spec: SpecInput,
    /// The context folder as a base64 tar archive, entries relative to
    /// the folder (`all/10-setup`, `frontend/…`). `context-folder` names a
    /// path on the client and is not accepted here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Leave what was made in place when the create fails.
    #[serde(default)]
    pub keep_on_failure: bool,
    /// Give up after this long, e.g. `90s`, `10m` (default 10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

impl<'de> Deserialize<'de> for CreateRequest {
    /// By hand: serde's `flatten` cannot refuse unknown fields, and a
    /// misspelt field must be an error that names it, as in a cluster file.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let context = match map.remove("context") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s),
            Some(_) => return Err(D::Error::custom("context: expected a base64 string")),
        };
        let keep_on_failure = match map.remove("keep-on-failure") {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::Bool(b)) => b,
            Some(_) => return Err(D::Error::custom("keep-on-failure: expected true or false")),
        };
        let timeout = match map.remove("timeout") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s),
            Some(_) => {
                return Err(D::Error::custom(
                    "timeout: expected a duration such as \"10m\"",
                ))
            }
        };
        // The path of a wrong field is named, e.g. "nodes: invalid type".
        let spec: SpecInput = serde_path_to_error::deserialize(serde_json::Value::Object(map))
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                if path == "." {
                    D::Error::custom(inner)
                } else {
                    D::Error::custom(format!("{path}: {inner}"))
                }
            })?;
        Ok(CreateRequest {
            spec,
            context,
            keep_on_failure,
            timeout,
        })
    }
}

/// `POST /api/v1/clusters/{name}/nodes`: add workers.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AddNodesRequest {
    /// How many workers to add (default 1).
    #[serde(default)]
    pub count: Option<u32>,
    #[serde(default)]
    pub timeout: Option<String>,
    /// The host the new workers run on (a cluster over several hosts);
    /// default: the next hosts round-robin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// `POST /api/v1/clusters/{name}/delnode`: remove workers, by name or
/// the `count` highest-numbered.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RemoveNodesRequest {
    #[serde(default)]
    pub nodes: Vec<String>,
    #[serde(default)]
    pub count: Option<u32>,
    /// Keep the nodes' persisted volumes.
    #[serde(default)]
    pub keep_state: bool,
}

/// `POST /api/v1/clusters/{name}/recreate`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RecreateRequest {
    pub nodes: Vec<String>,
    #[serde(default)]
    pub timeout: Option<String>,
    /// The host the nodes are made on (a cluster over several hosts: one
    /// whose host was lost comes back there); default: where each runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// `POST /api/v1/gc`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct GcRequest {
    /// Only these clusters (default: every one).
    #[serde(default)]
    pub clusters: Vec<String>,
    /// Also remove the kept data volumes of deleted clusters.
    #[serde(default)]
    pub volumes: bool,
}

/// `POST /api/v1/clusters/{name}/exec`: run a command on several nodes.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecRequest {
    /// all (default), frontend, workers, or node names separated by commas.
    #[serde(default)]
    pub on: Option<String>,
    pub command: Vec<String>,
}

/// One line of the NDJSON stream an exec answers with.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExecEvent {
    /// A line a node printed.
    Line {
        node: String,
        stderr: bool,
        text: String,
    },
    /// The end: each node's exit code, or why the command could not run.
    Done { results: Vec<NodeResult> },
    /// The exec failed as a whole after the stream began.
    Error { error: ErrorDetail },
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct NodeResult {
    pub node: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `GET /api/v1/clusters/{name}/logs`: what the context scripts printed.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct NodeLog {
    pub node: String,
    pub text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperationState {
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl OperationState {
    pub fn as_str(&self) -> &'static str {
        match self {
            OperationState::Running => "running",
            OperationState::Succeeded => "succeeded",
            OperationState::Failed => "failed",
            OperationState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => OperationState::Running,
            "succeeded" => OperationState::Succeeded,
            "failed" => OperationState::Failed,
            "cancelled" => OperationState::Cancelled,
            _ => return None,
        })
    }
}

/// A long operation (create, addnode, delete, …): poll
/// `GET /api/v1/operations/{id}` or follow it with `?follow=true`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Operation {
    pub id: String,
    /// create, addnode, delnode, recreate, start, stop, delete, gc.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    pub state: OperationState,
    /// Unix time in seconds.
    pub created: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished: Option<u64>,
    /// The operation's result once it succeeded: a cluster view, a delete
    /// or gc report, a list of added nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// What an operation says as it runs; `GET /api/v1/operations/{id}?follow=true`
/// streams these as NDJSON, from the first, ending with `done`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OperationEvent {
    /// A step begins; `total` items (0: unknown).
    Begin { title: String, total: usize },
    /// One item of the current step is done.
    Advance { item: String },
    /// The current step ends.
    End { ok: bool },
    /// A message outside any step.
    Note { message: String },
    /// The operation ended.
    Done { operation: Operation },
}

/// One entry of `GET /api/v1/events`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// Increasing; `?since=SEQ` resumes after it.
    pub seq: u64,
    /// Unix time in seconds.
    pub time: u64,
    /// e.g. operation.started, operation.succeeded, node.start, node.die,
    /// token.created.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    pub message: String,
}

/// `POST /api/v1/tokens`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TokenRequest {
    /// A name to tell tokens apart.
    #[serde(default)]
    pub name: Option<String>,
    /// Only GET requests.
    #[serde(default)]
    pub read_only: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct TokenInfo {
    pub token: String,
    pub name: String,
    pub read_only: bool,
    /// Unix time in seconds.
    pub created: u64,
}

/// The answer to `POST /api/v1/tokens`: the only time the secret is shown.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct NewToken {
    #[serde(flatten)]
    pub info: TokenInfo,
    pub secret_key: String,
}

/// Messages of the attach WebSocket
/// (`GET /api/v1/clusters/{name}/nodes/{node}/attach`) sent as text.
/// Standard input and output go as binary messages; output messages start
/// with one byte: 1 for stdout, 2 for stderr.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttachControl {
    /// Client → daemon: the terminal's size changed.
    Resize { rows: u16, cols: u16 },
    /// Client → daemon: standard input ended.
    Eof,
    /// Daemon → client: the process ended with this code.
    Exit { code: i64 },
    /// Daemon → client: the session failed.
    Error { error: ErrorDetail },
}

pub const STREAM_STDOUT: u8 = 1;
pub const STREAM_STDERR: u8 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_request_is_the_cluster_file_with_extras() {
        let r: CreateRequest = serde_json::from_str(
            r#"{"name":"lab","nodes":2,"image":"x","keep-on-failure":true,"timeout":"90s"}"#,
        )
        .unwrap();
        assert_eq!(r.spec.name.as_deref(), Some("lab"));
        assert!(r.keep_on_failure);
        let bad = serde_json::from_str::<CreateRequest>(r#"{"name":"lab","nodez":2}"#)
            .unwrap_err()
            .to_string();
        assert!(bad.contains("nodez"), "{bad}");
    }

    #[test]
    fn errors_keep_their_exit_codes_across_the_wire() {
        for e in [
            Error::Invalid("bad".into()),
            Error::NotFound("gone".into()),
            Error::Interrupted,
            Error::Failed("x".into()),
        ] {
            let code = e.exit_code();
            let (_, d) = ErrorDetail::from_error(&e);
            let back = d.into_error();
            assert_eq!(back.exit_code(), code);
            assert_eq!(back.to_string(), e.to_string());
        }
    }
}

/// `POST /api/v1/service` (MyCluster's body, for the daemon's default
/// cluster) and `POST /api/v1/clusters/{name}/services`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceRequest {
    /// The service's name: letters, digits and '-', starting with a letter.
    pub service: String,
    /// An image of the host's engine (loaded into the workers that lack
    /// it) or of a registry the workers reach.
    pub image: String,
    /// How many replicas run, spread over the healthy workers.
    pub replicas: u32,
    /// `K=V` environment of every replica.
    #[serde(default)]
    pub env: Vec<String>,
    /// TCP ports of each replica, published on free ports of its worker.
    #[serde(default)]
    pub ports: Vec<u16>,
    /// The replicas' command, instead of the image's.
    #[serde(default)]
    pub cmd: Vec<String>,
}

/// `PATCH /api/v1/clusters/{name}/services/{service}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleRequest {
    pub replicas: u32,
}

/// A service as defined (MyCluster's `servicesDef` entry, with mcc's
/// additions).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ServiceDef {
    pub service: String,
    pub image: String,
    pub replicas: u32,
    /// Unix seconds of the last change.
    pub last_updated: u64,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub ports: Vec<u16>,
    #[serde(default)]
    pub cmd: Vec<String>,
}

/// One replica as the workers' engines show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReplicaView {
    pub replica: u32,
    pub worker: String,
    /// The engine's state: running, exited, created…
    pub state: String,
    pub container: String,
    /// Published ports: `worker:port` for each of the service's ports.
    #[serde(default)]
    pub endpoints: Vec<String>,
}

/// A service with where its replicas run.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ServiceView {
    #[serde(flatten)]
    pub def: ServiceDef,
    pub cluster: String,
    /// Replicas running.
    pub running: u32,
    pub instances: Vec<ReplicaView>,
}

/// MyCluster's `GET /api/v1/stats` (and `/api/v1/clusters/{name}/stats`),
/// with its JSON keys.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ClusterStats {
    /// How long the cluster has run, as Python prints a `timedelta`:
    /// `H:MM:SS.ffffff`, with `N day(s), ` before it past a day.
    #[serde(rename = "cluster.upTime")]
    pub up_time: String,
    /// Replicas moved off a failed worker.
    #[serde(rename = "containers.relocated")]
    pub relocated: u64,
    /// Replicas running.
    #[serde(rename = "services.totalOfContainers")]
    pub total_of_containers: u64,
    /// Changes of services asked for (create, scale, delete).
    #[serde(rename = "services.totalOfRequests")]
    pub total_of_requests: u64,
    /// Workers seen failing.
    #[serde(rename = "workers.failures")]
    pub failures: u64,
}

/// MyCluster's `GET /api/v1/state` (and `/api/v1/clusters/{name}/state`),
/// with its JSON keys.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ClusterState {
    #[serde(rename = "cluster.name")]
    pub name: String,
    #[serde(rename = "cluster.numOfWorkers")]
    pub num_of_workers: usize,
    #[serde(rename = "cluster.servicesDef")]
    pub services_def: Vec<ServiceDef>,
    #[serde(rename = "cluster.workers")]
    pub workers: Vec<WorkerState>,
}

/// A worker in MyCluster's state.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerState {
    pub healthy: bool,
    /// Running containers per service and image.
    pub service_instances: Vec<ServiceInstances>,
    pub worker: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceInstances {
    pub image: String,
    pub num_of_running_containers: u32,
    pub service: String,
}
