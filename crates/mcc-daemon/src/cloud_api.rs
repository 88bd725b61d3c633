//! The CC seed's container-cloud verbs as routes: VPCs, volumes and the
//! containers of `mcc run`. Their bodies are `mcc_api::cloud`'s.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::{SinkExt, StreamExt};
use mcc_api::tunnel::{self, Frame};
use mcc_api::{
    AddressRequest, AddressView, ContainerMetrics, ContainerStatus, ErrorBody, ForwardQuery,
    IdDeleteReport, RmReport, RunSpec, VolumeRequest, VolumeView, VpcDeleteRequest, VpcRequest,
    VpcView,
};

use crate::app::{
    send_output, until_revoked, upgrade, ApiQuery, ApiResult, App, AppState, WsRejection,
};
use crate::auth::Caller;
use crate::body::body;
use crate::events::About;

#[utoipa::path(get, path = "/api/v1/vpcs", security(("signature" = ["read"])), tag = "vpcs",
    responses((status = 200, body = [VpcView])))]
pub async fn list_vpcs(State(app): AppState) -> ApiResult<Json<Vec<VpcView>>> {
    Ok(Json(app.clusters.vpcs().await?))
}

#[utoipa::path(post, path = "/api/v1/vpcs", security(("signature" = ["write"])), tag = "vpcs", request_body = VpcRequest,
    responses((status = 201, body = VpcView), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn create_vpc(State(app): AppState, bytes: Bytes) -> ApiResult<Response> {
    let req: VpcRequest = body(&bytes)?;
    let id = app
        .clusters
        .vpc_create(&req.name, &req.cidr, req.allow_public_cidr)
        .await?;
    app.log.record(
        "vpc",
        About::default(),
        format!("vpc {id} ({}) created, {}", req.name, req.cidr),
    );
    let view = app
        .clusters
        .vpcs()
        .await?
        .into_iter()
        .find(|v| v.id == id)
        .unwrap_or(VpcView {
            id,
            name: req.name,
            cidr: req.cidr,
            containers: Vec::new(),
        });
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[utoipa::path(post, path = "/api/v1/vpcs/delete", security(("signature" = ["write"])), tag = "vpcs", request_body = VpcDeleteRequest,
    responses((status = 200, body = IdDeleteReport),
              (status = 409, body = ErrorBody, description = "Some are in use: none deleted")))]
pub async fn delete_vpcs(State(app): AppState, bytes: Bytes) -> ApiResult<Json<IdDeleteReport>> {
    let req: VpcDeleteRequest = body(&bytes)?;
    let r = app.clusters.vpc_delete(&req.ids).await?;
    for id in &r.deleted {
        app.log
            .record("vpc", About::default(), format!("vpc {id} deleted"));
    }
    Ok(Json(r))
}

#[utoipa::path(get, path = "/api/v1/volumes", security(("signature" = ["read"])), tag = "volumes",
    responses((status = 200, body = [VolumeView])))]
pub async fn list_volumes(State(app): AppState) -> ApiResult<Json<Vec<VolumeView>>> {
    Ok(Json(app.clusters.volume_list().await?))
}

#[utoipa::path(post, path = "/api/v1/volumes", security(("signature" = ["write"])), tag = "volumes", request_body = VolumeRequest,
    responses((status = 201, body = VolumeView), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn create_volume(State(app): AppState, bytes: Bytes) -> ApiResult<Response> {
    let req: VolumeRequest = body(&bytes)?;
    let id = app
        .clusters
        .volume_create(&req.name, &req.size, req.persistent)
        .await?;
    app.log.record(
        "volume",
        About::default(),
        format!("volume {id} ({}, {}) created", req.name, req.size),
    );
    let view = app
        .clusters
        .volume_list()
        .await?
        .into_iter()
        .find(|v| v.id == id)
        .ok_or_else(|| mcc_core::Error::Failed(format!("volume {id} vanished")))?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[utoipa::path(post, path = "/api/v1/volumes/delete", security(("signature" = ["write"])), tag = "volumes", request_body = VpcDeleteRequest,
    responses((status = 200, body = IdDeleteReport),
              (status = 409, body = ErrorBody, description = "Some are in use: none deleted")))]
pub async fn delete_volumes(State(app): AppState, bytes: Bytes) -> ApiResult<Json<IdDeleteReport>> {
    let req: VpcDeleteRequest = body(&bytes)?;
    let r = app.clusters.volume_delete(&req.ids).await?;
    for id in &r.deleted {
        app.log
            .record("volume", About::default(), format!("volume {id} deleted"));
    }
    Ok(Json(r))
}

#[utoipa::path(post, path = "/api/v1/containers", security(("signature" = ["exec"])), tag = "containers", request_body = RunSpec,
    responses((status = 201, body = ContainerStatus), (status = 422, body = ErrorBody)))]
pub async fn run_container(State(app): AppState, bytes: Bytes) -> ApiResult<Response> {
    let spec: RunSpec = body(&bytes)?;
    let id = app.clusters.run(&spec).await?;
    app.log.record(
        "container",
        About::default(),
        format!("container {} of {} started", &id[..12], spec.image),
    );
    let s = app
        .clusters
        .run_status(&id)
        .await?
        .ok_or_else(|| mcc_core::Error::Failed(format!("container {id} vanished")))?;
    Ok((StatusCode::CREATED, Json(s)).into_response())
}

#[utoipa::path(get, path = "/api/v1/containers", security(("signature" = ["read"])), tag = "containers",
    responses((status = 200, body = [ContainerStatus], description = "Every container made by run")))]
pub async fn list_containers(State(app): AppState) -> ApiResult<Json<Vec<ContainerStatus>>> {
    Ok(Json(app.clusters.run_statuses().await?))
}

#[utoipa::path(post, path = "/api/v1/containers/status", security(("signature" = ["read"])), tag = "containers",
    request_body = VpcDeleteRequest,
    responses((status = 200, body = [ContainerStatus], description = "Those that exist")))]
pub async fn containers_status(
    State(app): AppState,
    bytes: Bytes,
) -> ApiResult<Json<Vec<ContainerStatus>>> {
    let req: VpcDeleteRequest = body(&bytes)?;
    let mut out = Vec::new();
    for id in &req.ids {
        if let Some(s) = app.clusters.run_status(id).await? {
            out.push(s);
        }
    }
    Ok(Json(out))
}

#[utoipa::path(post, path = "/api/v1/containers/delete", security(("signature" = ["write"])), tag = "containers",
    request_body = VpcDeleteRequest, responses((status = 200, body = RmReport)))]
pub async fn remove_containers(State(app): AppState, bytes: Bytes) -> ApiResult<Json<RmReport>> {
    let req: VpcDeleteRequest = body(&bytes)?;
    let r = app.clusters.rm(&req.ids).await?;
    for id in &r.removed {
        app.log.record(
            "container",
            About::default(),
            format!("container {id} removed"),
        );
    }
    Ok(Json(r))
}

#[utoipa::path(post, path = "/api/v1/containers/metrics", security(("signature" = ["read"])), tag = "containers",
    request_body = VpcDeleteRequest,
    responses((status = 200, body = [ContainerMetrics], description = "Those that exist")))]
pub async fn containers_metrics(
    State(app): AppState,
    bytes: Bytes,
) -> ApiResult<Json<Vec<ContainerMetrics>>> {
    let req: VpcDeleteRequest = body(&bytes)?;
    let all =
        futures_util::future::join_all(req.ids.iter().map(|id| app.clusters.run_metrics(id))).await;
    let mut out = Vec::new();
    for m in all {
        if let Some(m) = m? {
            out.push(m);
        }
    }
    Ok(Json(out))
}

// exec: only a forward asks, and a read-only token is told at once that
// it cannot forward, not at its first connection
#[utoipa::path(post, path = "/api/v1/containers/address", security(("signature" = ["exec"])), tag = "containers",
    request_body = AddressRequest,
    responses((status = 200, body = AddressView), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "Not running, or no address")))]
pub async fn container_address(State(app): AppState, bytes: Bytes) -> ApiResult<Json<AddressView>> {
    let req: AddressRequest = body(&bytes)?;
    let a = app.clusters.run_address(&req.id, req.port).await?;
    Ok(Json(AddressView {
        address: a.to_string(),
    }))
}

#[utoipa::path(get, path = "/api/v1/containers/{id}/attach", security(("signature" = ["read"])), tag = "containers",
    params(("id" = String, Path, description = "Container ID")),
    responses((status = 101, description = "A WebSocket carrying the container's output from its \
        start: binary frames whose first byte is 1 (stdout) or 2 (stderr), then a text frame \
        {\"exit\":{\"code\":N}} once it stops (AttachControl)"),
              (status = 404, body = ErrorBody)))]
pub async fn container_attach(
    State(app): AppState,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
    ws: Result<WebSocketUpgrade, WsRejection>,
) -> ApiResult<Response> {
    let ws = upgrade(ws)?;
    let output = app.clusters.run_output(&id).await?;
    let clusters = app.clusters.clone();
    Ok(ws.on_upgrade(move |socket| async move {
        let (mut tx, _rx) = socket.split();
        let exit = async move { clusters.run_exit_code(&id).await };
        until_revoked(caller, send_output(&mut tx, output, exit)).await;
    }))
}

#[utoipa::path(get, path = "/api/v1/containers/{id}/forward", security(("signature" = ["exec"])), tag = "containers",
    params(("id" = String, Path, description = "Container ID"), ForwardQuery),
    responses((status = 101, description = "A WebSocket spliced to one TCP connection to the \
        container's port: binary frames carry bytes each way; an empty binary frame ends its \
        sender's direction (TCP half-close); a close frame ends the connection"),
              (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "Not running, or nothing listens")))]
pub async fn container_forward(
    State(app): AppState,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ForwardQuery>,
    ws: Result<WebSocketUpgrade, WsRejection>,
) -> ApiResult<Response> {
    let ws = upgrade(ws)?;
    let to = app.clusters.run_address(&id, q.port).await?;
    // connected before the upgrade, so that a refusal is an answer
    let tcp = tokio::net::TcpStream::connect(to).await.map_err(|e| {
        mcc_core::Error::Conflict(format!(
            "port {} of container {id} ({to}) cannot be reached: {e}",
            q.port
        ))
    })?;
    Ok(ws
        .max_message_size(2 * tunnel::BUFFER)
        .on_upgrade(move |socket| async move {
            let (sink, stream) = socket.split();
            let sink = sink.with(|f: Frame| {
                std::future::ready(Ok::<_, axum::Error>(Message::Binary(f.into_binary())))
            });
            let stream = stream
                .take_while(|m| {
                    std::future::ready(matches!(m, Ok(m) if !matches!(m, Message::Close(_))))
                })
                .filter_map(|m| {
                    std::future::ready(match m {
                        Ok(Message::Binary(b)) => Some(Frame::from_binary(b)),
                        _ => None,
                    })
                });
            until_revoked(
                caller,
                tunnel::splice(tcp, Box::pin(sink), Box::pin(stream)),
            )
            .await;
        }))
}

pub fn routes() -> utoipa_axum::router::OpenApiRouter<Arc<App>> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(list_vpcs, create_vpc))
        .routes(routes!(delete_vpcs))
        .routes(routes!(list_volumes, create_volume))
        .routes(routes!(delete_volumes))
        .routes(routes!(list_containers, run_container))
        .routes(routes!(containers_status))
        .routes(routes!(remove_containers))
        .routes(routes!(containers_metrics))
        .routes(routes!(container_address))
        .routes(routes!(container_attach))
        .routes(routes!(container_forward))
}
