//! The CC seed's container-cloud verbs as routes: VPCs and volumes.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mcc_api::ErrorBody;
use mcc_core::cluster::run::{ContainerMetrics, RmReport, RunSpec};
use mcc_core::cluster::volume::VolumeView;
use mcc_core::cluster::vpc::{IdDeleteReport, VpcView};
use mcc_core::provider::ContainerStatus;
use serde::Deserialize;

use crate::api::{body, ApiResult, App, AppState};
use crate::events::About;

/// `POST /api/v1/vpcs`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VpcRequest {
    pub name: String,
    pub cidr: String,
}

/// `POST /api/v1/vpcs/delete` and `/api/v1/volumes/delete`: all or
/// nothing.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VpcDeleteRequest {
    pub ids: Vec<String>,
}

#[utoipa::path(get, path = "/api/v1/vpcs", tag = "vpcs",
    responses((status = 200, body = [VpcView])))]
pub async fn list_vpcs(State(app): AppState) -> ApiResult<Json<Vec<VpcView>>> {
    Ok(Json(app.clusters.vpcs().await?))
}

#[utoipa::path(post, path = "/api/v1/vpcs", tag = "vpcs", request_body = VpcRequest,
    responses((status = 201, body = VpcView), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn create_vpc(State(app): AppState, bytes: Bytes) -> ApiResult<Response> {
    let req: VpcRequest = body(&bytes)?;
    let id = app.clusters.vpc_create(&req.name, &req.cidr).await?;
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

#[utoipa::path(post, path = "/api/v1/vpcs/delete", tag = "vpcs", request_body = VpcDeleteRequest,
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

/// `POST /api/v1/volumes`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeRequest {
    pub name: String,
    /// Bytes, or with K/M/G/T: "64M", "1G".
    pub size: String,
    #[serde(default)]
    pub persistent: bool,
}

#[utoipa::path(get, path = "/api/v1/volumes", tag = "volumes",
    responses((status = 200, body = [VolumeView])))]
pub async fn list_volumes(State(app): AppState) -> ApiResult<Json<Vec<VolumeView>>> {
    Ok(Json(app.clusters.volume_list().await?))
}

#[utoipa::path(post, path = "/api/v1/volumes", tag = "volumes", request_body = VolumeRequest,
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

#[utoipa::path(post, path = "/api/v1/volumes/delete", tag = "volumes", request_body = VpcDeleteRequest,
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

#[utoipa::path(post, path = "/api/v1/containers", tag = "containers", request_body = RunSpec,
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

#[utoipa::path(post, path = "/api/v1/containers/status", tag = "containers",
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

#[utoipa::path(post, path = "/api/v1/containers/delete", tag = "containers",
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

#[utoipa::path(post, path = "/api/v1/containers/metrics", tag = "containers",
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

pub fn routes() -> axum::Router<Arc<App>> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/api/v1/vpcs", get(list_vpcs).post(create_vpc))
        .route("/api/v1/vpcs/delete", post(delete_vpcs))
        .route("/api/v1/volumes", get(list_volumes).post(create_volume))
        .route("/api/v1/volumes/delete", post(delete_volumes))
        .route("/api/v1/containers", post(run_container))
        .route("/api/v1/containers/status", post(containers_status))
        .route("/api/v1/containers/delete", post(remove_containers))
        .route("/api/v1/containers/metrics", post(containers_metrics))
}
