//! What every handler of the API shares: the daemon's state ([`App`]),
//! the API's error answer, its query extractor, and the answers that
//! stream (JSON lines, a process's output over a WebSocket, a WebSocket
//! that ends with its token). The routes live in `api`, `cloud_api`,
//! `services::api`, `events_api`, `hosts_api` and `dashboard`, and only import from here.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::{SinkExt, StreamExt};
use mcc_api::{AttachControl, ErrorBody, ErrorDetail, STREAM_STDERR, STREAM_STDOUT};
use mcc_core::cluster::Clusters;
use mcc_core::provider::{Chunk, Engine};
use serde::de::DeserializeOwned;

use crate::auth::{Auth, Caller};
use crate::cache::ListCache;
use crate::events::EventLog;
use crate::metrics::Metrics;
use crate::ops::Ops;

/// Everything a handler can reach.
pub struct App {
    pub provider: Arc<dyn Engine>,
    pub clusters: Clusters,
    pub ops: Arc<Ops>,
    pub log: Arc<EventLog>,
    pub auth: Arc<Auth>,
    pub cache: Arc<ListCache>,
    pub metrics: Arc<Metrics>,
    pub store: Arc<crate::store::Store>,
    /// Where uploaded context folders are unpacked.
    pub uploads: PathBuf,
    /// The hosts file (`hosts_api`).
    pub hosts: PathBuf,
    pub services: Arc<crate::services::Services>,
    pub dashboard: Arc<crate::dashboard::sessions::Dashboard>,
    pub openapi: Bytes,
}

pub(crate) type AppState = State<Arc<App>>;

/// An error as the API answers it: a status and `{"error":{code,message}}`.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub ErrorDetail);

impl ApiError {
    pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
        ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorDetail::new("invalid", message),
        )
    }
    pub(crate) fn not_found(message: impl Into<String>) -> ApiError {
        ApiError(
            StatusCode::NOT_FOUND,
            ErrorDetail::new("not_found", message),
        )
    }
}

impl From<mcc_core::Error> for ApiError {
    fn from(e: mcc_core::Error) -> Self {
        let (status, detail) = ErrorDetail::from_error(&e);
        ApiError(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            detail,
        )
    }
}

impl From<crate::DaemonError> for ApiError {
    fn from(e: crate::DaemonError) -> Self {
        tracing::error!(error = %e, "daemon failure");
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorDetail::new("failed", e.to_string()),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: self.1 })).into_response()
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// Query parameters, refused with the API's error shape (422 naming the
/// parameter) rather than axum's plain text.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(q)| ApiQuery(q))
            .map_err(|e| ApiError::invalid(format!("query: {}", e.body_text())))
    }
}

/// A stream of JSON lines, from a channel.
pub(crate) fn ndjson<T: serde::Serialize + Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<T>,
) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        let mut line = serde_json::to_vec(&item).expect("serializable");
        line.push(b'\n');
        Some((Ok::<_, std::convert::Infallible>(Bytes::from(line)), rx))
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Runs a WebSocket's work until it ends or the caller's token is
/// revoked; then the socket is dropped, which closes it.
pub(crate) async fn until_revoked(caller: Caller, work: impl std::future::Future<Output = ()>) {
    tokio::select! {
        _ = work => {}
        _ = caller.revoked.cancelled() => {
            tracing::info!(token = %caller.token, "the token was revoked: closing its WebSocket");
        }
    }
}

/// A WebSocket route's upgrade, or the error that says it is one.
pub(crate) fn upgrade(ws: Result<WebSocketUpgrade, WsRejection>) -> ApiResult<WebSocketUpgrade> {
    ws.map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            ErrorDetail::new(
                "bad_request",
                format!("this route is a WebSocket; connect with an upgrade request ({e})"),
            ),
        )
    })
}

/// What axum says of a request that is not a WebSocket upgrade.
pub(crate) type WsRejection = axum::extract::ws::rejection::WebSocketUpgradeRejection;

/// Sends a process's output over a WebSocket as binary frames (first byte
/// [`STREAM_STDOUT`] or [`STREAM_STDERR`]), then, once it ends, a text
/// frame with its exit code (or the error that ended it), and closes.
pub(crate) async fn send_output(
    tx: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    mut output: mcc_core::provider::OutputStream,
    exit: impl std::future::Future<Output = mcc_core::Result<i64>>,
) {
    let mut failed = None;
    while let Some(chunk) = output.next().await {
        let (stream, bytes) = match chunk {
            Ok(Chunk::Stdout(b)) => (STREAM_STDOUT, b),
            Ok(Chunk::Stderr(b)) => (STREAM_STDERR, b),
            Err(e) => {
                failed = Some(e);
                break;
            }
        };
        let mut frame = Vec::with_capacity(bytes.len() + 1);
        frame.push(stream);
        frame.extend_from_slice(&bytes);
        if tx.send(Message::Binary(frame.into())).await.is_err() {
            return;
        }
    }
    let last = match failed {
        Some(e) => AttachControl::Error {
            error: ErrorDetail::from_error(&e).1,
        },
        None => match exit.await {
            Ok(code) => AttachControl::Exit { code },
            Err(e) => AttachControl::Error {
                error: ErrorDetail::from_error(&e).1,
            },
        },
    };
    let text = serde_json::to_string(&last).expect("serializable");
    let _ = tx.send(Message::Text(text.into())).await;
    let _ = tx.send(Message::Close(None)).await;
}
