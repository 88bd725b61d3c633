//! The services' routes: mcc's own under `/api/v1/clusters/{name}/services`,
//! and MyCluster's (`/api/v1/service`, `/api/v1/stats`, `/api/v1/state`,
//! with its JSON keys) for the daemon's default cluster, also under
//! `/api/v1/clusters/{name}/…` for any. Reads are served from the last
//! reconcile pass: no engine call per request.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mcc_api::{
    ClusterState, ClusterStats, ErrorBody, ErrorDetail, ScaleRequest, ServiceDef, ServiceInstances,
    ServiceRequest, ServiceView, WorkerState,
};
use mcc_core::model::image::validate_image_ref;
use mcc_core::model::spec::parse_env;
use mcc_core::model::ClusterName;
use serde_json::Value;

use super::{Services, Snapshot, FAILURES, RELOCATED, REQUESTS};
use crate::app::{ApiError, ApiResult, App, AppState};
use crate::body::body;
use crate::events::About;

/// How long a change waits for the replicas to be started or removed
/// before it answers (they go on converging after).
const CONVERGE_WAIT: Duration = Duration::from_secs(20);
/// Most replicas of one service.
const MAX_REPLICAS: u32 = 1000;

fn conflict(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::CONFLICT, ErrorDetail::new("conflict", message))
}

fn not_found(message: impl Into<String>) -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        ErrorDetail::new("not_found", message),
    )
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError(
        StatusCode::UNPROCESSABLE_ENTITY,
        ErrorDetail::new("invalid", message),
    )
}

/// A service name: a DNS label that starts with a letter.
pub fn validate_service_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "service: '{s}' is not a service name; use 1 to 63 lowercase letters, digits and \
             '-', starting with a letter, e.g. web"
        ))
    }
}

fn check_request(r: &ServiceRequest) -> ApiResult<()> {
    validate_service_name(&r.service).map_err(invalid)?;
    validate_image_ref(&r.image).map_err(|e| invalid(format!("image: {e}")))?;
    check_replicas(r.replicas)?;
    for kv in &r.env {
        parse_env(kv).map_err(|e| invalid(format!("env: {e}")))?;
    }
    for (i, p) in r.ports.iter().enumerate() {
        if *p == 0 {
            return Err(invalid("ports: 0 is not a port; give 1 to 65535"));
        }
        if r.ports[..i].contains(p) {
            return Err(invalid(format!("ports: {p} is given twice")));
        }
    }
    Ok(())
}

fn check_replicas(n: u32) -> ApiResult<()> {
    if n > MAX_REPLICAS {
        return Err(invalid(format!(
            "replicas: {n} is more than {MAX_REPLICAS}; give 0 to {MAX_REPLICAS}"
        )));
    }
    Ok(())
}

fn about(cluster: &str) -> About<'_> {
    About {
        cluster: Some(cluster),
        ..About::default()
    }
}

impl Services {
    /// The cluster `/api/v1/service`, `/stats` and `/state` answer for:
    /// `mcc serve --cluster`, else the only one with services, else the
    /// only cluster of Docker workers.
    async fn default_for(&self) -> ApiResult<String> {
        if let Some(c) = &self.default_cluster {
            return Ok(c.clone());
        }
        let mut with_services: Vec<String> = self
            .store
            .services()
            .map_err(ApiError::from)?
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        with_services.dedup();
        match with_services.len() {
            1 => return Ok(with_services.remove(0)),
            0 => {}
            _ => {
                return Err(conflict(format!(
                    "services run on several clusters ({}): name one, as \
                     /api/v1/clusters/{{name}}/…, or start the daemon with --cluster NAME",
                    with_services.join(", ")
                )))
            }
        }
        let mut docker: Vec<String> = self
            .clusters
            .records()
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .filter(|(_, r)| r.docker.is_some())
            .map(|(n, _)| n.to_string())
            .collect();
        match docker.len() {
            1 => Ok(docker.remove(0)),
            0 => Err(not_found(
                "no cluster of Docker workers: create one with `mcc create … --docker-workers`",
            )),
            _ => Err(conflict(format!(
                "several clusters of Docker workers ({}): name one, as \
                 /api/v1/clusters/{{name}}/…, or start the daemon with --cluster NAME",
                docker.join(", ")
            ))),
        }
    }

    /// Checks that `cluster` exists and its workers are Docker hosts.
    async fn check_cluster(&self, cluster: &str) -> ApiResult<()> {
        let name: ClusterName = cluster.parse().map_err(invalid)?;
        let Some(objects) = self.clusters.objects(&name).await.map_err(ApiError::from)? else {
            return Err(not_found(format!(
                "no cluster '{cluster}'; `mcc list` shows them"
            )));
        };
        let docker = objects.record.is_some_and(|r| r.docker.is_some());
        if !docker {
            return Err(conflict(format!(
                "the workers of cluster '{cluster}' are not Docker hosts: services need a \
                 cluster made with --docker-workers"
            )));
        }
        Ok(())
    }

    fn find(&self, cluster: &str, service: &str) -> ApiResult<ServiceDef> {
        self.defs(cluster)?
            .into_iter()
            .find(|d| d.service == service)
            .ok_or_else(|| {
                not_found(format!(
                    "no service '{service}' on cluster '{cluster}'; `mcc service list --cluster \
                     {cluster}` shows them"
                ))
            })
    }

    fn view(&self, cluster: &str, def: ServiceDef, snap: &Snapshot) -> ServiceView {
        let instances = snap.instances(&def.service);
        ServiceView {
            running: instances.iter().filter(|r| r.state == "running").count() as u32,
            cluster: cluster.to_string(),
            def,
            instances,
        }
    }

    async fn create(
        self: &Arc<Self>,
        cluster: &str,
        req: ServiceRequest,
    ) -> ApiResult<ServiceView> {
        check_request(&req)?;
        self.check_cluster(cluster).await?;
        if self.find(cluster, &req.service).is_ok() {
            return Err(conflict(format!(
                "service '{}' exists on cluster '{cluster}'; scale it, or delete it first",
                req.service
            )));
        }
        let def = ServiceDef {
            service: req.service,
            image: req.image,
            replicas: req.replicas,
            last_updated: crate::now(),
            env: req.env,
            ports: req.ports,
            cmd: req.cmd,
        };
        self.store.put_service(cluster, &def)?;
        self.count(REQUESTS, cluster, 1);
        self.log.record(
            "service",
            about(cluster),
            format!(
                "service {} created: {} replicas of {}",
                def.service, def.replicas, def.image
            ),
        );
        let snap = self.converge(cluster, CONVERGE_WAIT).await;
        Ok(self.view(cluster, def, &snap))
    }

    async fn scale(
        self: &Arc<Self>,
        cluster: &str,
        service: &str,
        n: u32,
    ) -> ApiResult<ServiceView> {
        check_replicas(n)?;
        let mut def = self.find(cluster, service)?;
        let from = def.replicas;
        def.replicas = n;
        def.last_updated = crate::now();
        self.store.put_service(cluster, &def)?;
        self.count(REQUESTS, cluster, 1);
        self.log.record(
            "service",
            about(cluster),
            format!("service {service} scaled from {from} to {n} replicas"),
        );
        let snap = self.converge(cluster, CONVERGE_WAIT).await;
        Ok(self.view(cluster, def, &snap))
    }

    async fn delete(self: &Arc<Self>, cluster: &str, service: &str) -> ApiResult<ServiceDef> {
        let def = self.find(cluster, service)?;
        self.store.remove_service(cluster, service)?;
        self.count(REQUESTS, cluster, 1);
        self.log.record(
            "service",
            about(cluster),
            format!("service {service} deleted"),
        );
        self.converge(cluster, CONVERGE_WAIT).await;
        Ok(def)
    }

    /// The cluster's snapshot; the first time a cluster is asked about,
    /// it is checked on the engine and a reconciler starts watching it.
    /// After that, answers come from memory.
    async fn watched(self: &Arc<Self>, cluster: &str) -> ApiResult<Snapshot> {
        if self.watching(cluster) {
            return Ok(self.snapshot(cluster));
        }
        self.check_cluster(cluster).await?;
        Ok(self.converge(cluster, Duration::from_secs(5)).await)
    }

    /// MyCluster's `/state`.
    async fn state_json(self: &Arc<Self>, cluster: &str) -> ApiResult<Value> {
        let snap = self.watched(cluster).await?;
        let workers = snap
            .workers
            .iter()
            .map(|w| {
                // running containers per service and image, as MyCluster
                let mut per: BTreeMap<(String, String), u32> = BTreeMap::new();
                for (r, service, image) in &w.replicas {
                    let n = per.entry((service.clone(), image.clone())).or_default();
                    if r.state == "running" {
                        *n += 1;
                    }
                }
                WorkerState {
                    worker: w.name.clone(),
                    healthy: w.healthy,
                    service_instances: per
                        .into_iter()
                        .map(|((service, image), n)| ServiceInstances {
                            service,
                            image,
                            num_of_running_containers: n,
                        })
                        .collect(),
                }
            })
            .collect();
        Ok(sorted(ClusterState {
            name: cluster.to_string(),
            num_of_workers: snap.workers.len(),
            workers,
            services_def: self.defs(cluster)?,
        }))
    }

    /// MyCluster's `/stats`.
    async fn stats_json(self: &Arc<Self>, cluster: &str) -> ApiResult<Value> {
        let snap = self.watched(cluster).await?;
        let counters = self.counters(cluster);
        let running = snap
            .workers
            .iter()
            .flat_map(|w| &w.replicas)
            .filter(|(r, _, _)| r.state == "running")
            .count();
        let up = if snap.created == 0 {
            0.0
        } else {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            (now - snap.created as f64).max(0.0)
        };
        Ok(sorted(ClusterStats {
            up_time: uptime(up),
            total_of_requests: counters.get(REQUESTS).copied().unwrap_or(0),
            total_of_containers: running as u64,
            failures: counters.get(FAILURES).copied().unwrap_or(0),
            relocated: counters.get(RELOCATED).copied().unwrap_or(0),
        }))
    }
}

/// MyCluster's answers as they have always been sent: a JSON value, whose
/// objects list their keys in sorted order, nested ones included.
fn sorted(v: impl serde::Serialize) -> Value {
    serde_json::to_value(v).expect("MyCluster's answers serialize")
}

/// A duration as Python prints a `timedelta` (MyCluster's `upTime`):
/// `H:MM:SS.ffffff`, with `N day(s), ` before it past a day.
pub fn uptime(secs: f64) -> String {
    let micros = (secs * 1e6).round() as u64;
    let (days, rest) = (micros / 86_400_000_000, micros % 86_400_000_000);
    let (h, rest) = (rest / 3_600_000_000, rest % 3_600_000_000);
    let (m, rest) = (rest / 60_000_000, rest % 60_000_000);
    let (s, us) = (rest / 1_000_000, rest % 1_000_000);
    let time = format!("{h}:{m:02}:{s:02}.{us:06}");
    match days {
        0 => time,
        1 => format!("1 day, {time}"),
        d => format!("{d} days, {time}"),
    }
}

fn cluster_param(name: &str) -> ApiResult<String> {
    name.parse::<ClusterName>().map_err(invalid)?;
    Ok(name.to_string())
}

// -- mcc's routes -------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/clusters/{name}/services", security(("signature" = ["read"])), tag = "services",
    params(("name" = String, Path, description = "Cluster")),
    responses((status = 200, body = [ServiceView])))]
pub async fn list_services(
    State(app): AppState,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<ServiceView>>> {
    let cluster = cluster_param(&name)?;
    let snap = app.services.snapshot(&cluster);
    Ok(Json(
        app.services
            .defs(&cluster)?
            .into_iter()
            .map(|d| app.services.view(&cluster, d, &snap))
            .collect(),
    ))
}

#[utoipa::path(post, path = "/api/v1/clusters/{name}/services", security(("signature" = ["write"])), tag = "services",
    params(("name" = String, Path, description = "Cluster")), request_body = ServiceRequest,
    responses((status = 201, body = ServiceView), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_service(
    State(app): AppState,
    Path(name): Path<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let cluster = cluster_param(&name)?;
    let req: ServiceRequest = body(&bytes)?;
    let view = app.services.create(&cluster, req).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[utoipa::path(get, path = "/api/v1/clusters/{name}/services/{service}", security(("signature" = ["read"])), tag = "services",
    params(("name" = String, Path), ("service" = String, Path)),
    responses((status = 200, body = ServiceView), (status = 404, body = ErrorBody)))]
pub async fn get_service(
    State(app): AppState,
    Path((name, service)): Path<(String, String)>,
) -> ApiResult<Json<ServiceView>> {
    let cluster = cluster_param(&name)?;
    let def = app.services.find(&cluster, &service)?;
    let snap = app.services.snapshot(&cluster);
    Ok(Json(app.services.view(&cluster, def, &snap)))
}

#[utoipa::path(patch, path = "/api/v1/clusters/{name}/services/{service}", security(("signature" = ["write"])), tag = "services",
    params(("name" = String, Path), ("service" = String, Path)), request_body = ScaleRequest,
    responses((status = 200, body = ServiceView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn scale_service(
    State(app): AppState,
    Path((name, service)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult<Json<ServiceView>> {
    let cluster = cluster_param(&name)?;
    let req: ScaleRequest = body(&bytes)?;
    Ok(Json(
        app.services.scale(&cluster, &service, req.replicas).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/clusters/{name}/services/{service}", security(("signature" = ["write"])), tag = "services",
    params(("name" = String, Path), ("service" = String, Path)),
    responses((status = 200, body = ServiceDef, description = "What was deleted"), (status = 404, body = ErrorBody)))]
pub async fn delete_service(
    State(app): AppState,
    Path((name, service)): Path<(String, String)>,
) -> ApiResult<Json<ServiceDef>> {
    let cluster = cluster_param(&name)?;
    Ok(Json(app.services.delete(&cluster, &service).await?))
}

#[utoipa::path(get, path = "/api/v1/clusters/{name}/stats", security(("signature" = ["read"])), tag = "services",
    params(("name" = String, Path)), responses((status = 200, body = ClusterStats, description = "MyCluster's stats")))]
pub async fn cluster_stats(
    State(app): AppState,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let cluster = cluster_param(&name)?;
    Ok(Json(app.services.stats_json(&cluster).await?))
}

#[utoipa::path(get, path = "/api/v1/clusters/{name}/state", security(("signature" = ["read"])), tag = "services",
    params(("name" = String, Path)), responses((status = 200, body = ClusterState, description = "MyCluster's state")))]
pub async fn cluster_state(
    State(app): AppState,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let cluster = cluster_param(&name)?;
    Ok(Json(app.services.state_json(&cluster).await?))
}

// -- MyCluster's routes, for the default cluster -----------------------------

#[utoipa::path(get, path = "/api/v1/stats", security(("signature" = ["read"])), tag = "services",
    responses((status = 200, body = ClusterStats, description = "MyCluster's stats of the default cluster"),
              (status = 404, body = ErrorBody, description = "No default cluster (mcc serve --cluster)"),
              (status = 409, body = ErrorBody, description = "Its workers are not Docker hosts")))]
pub async fn stats(State(app): AppState) -> ApiResult<Json<Value>> {
    let cluster = app.services.default_for().await?;
    Ok(Json(app.services.stats_json(&cluster).await?))
}

#[utoipa::path(get, path = "/api/v1/state", security(("signature" = ["read"])), tag = "services",
    responses((status = 200, body = ClusterState, description = "MyCluster's state of the default cluster"),
              (status = 404, body = ErrorBody, description = "No default cluster (mcc serve --cluster)"),
              (status = 409, body = ErrorBody, description = "Its workers are not Docker hosts")))]
pub async fn state(State(app): AppState) -> ApiResult<Json<Value>> {
    let cluster = app.services.default_for().await?;
    Ok(Json(app.services.state_json(&cluster).await?))
}

#[utoipa::path(post, path = "/api/v1/service", security(("signature" = ["write"])), tag = "services", request_body = ServiceRequest,
    responses((status = 201, body = ClusterState, description = "MyCluster's state after the change"),
              (status = 404, body = ErrorBody, description = "No default cluster (mcc serve --cluster)"),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn post_service(State(app): AppState, bytes: Bytes) -> ApiResult<Response> {
    let req: ServiceRequest = body(&bytes)?;
    let cluster = app.services.default_for().await?;
    app.services.create(&cluster, req).await?;
    Ok((
        StatusCode::CREATED,
        Json(app.services.state_json(&cluster).await?),
    )
        .into_response())
}

#[utoipa::path(get, path = "/api/v1/service/{service}", security(("signature" = ["read"])), tag = "services",
    params(("service" = String, Path)),
    responses((status = 200, body = ServiceDef), (status = 404, body = ErrorBody)))]
pub async fn get_default_service(
    State(app): AppState,
    Path(service): Path<String>,
) -> ApiResult<Json<ServiceDef>> {
    let cluster = app.services.default_for().await?;
    Ok(Json(app.services.find(&cluster, &service)?))
}

#[utoipa::path(delete, path = "/api/v1/service/{service}", security(("signature" = ["write"])), tag = "services",
    params(("service" = String, Path)),
    responses((status = 200, body = ServiceDef), (status = 404, body = ErrorBody)))]
pub async fn delete_default_service(
    State(app): AppState,
    Path(service): Path<String>,
) -> ApiResult<Json<ServiceDef>> {
    let cluster = app.services.default_for().await?;
    Ok(Json(app.services.delete(&cluster, &service).await?))
}

/// The services' routes (authenticated by the caller's layer).
pub fn routes() -> utoipa_axum::router::OpenApiRouter<Arc<App>> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(list_services, create_service))
        .routes(routes!(get_service, scale_service, delete_service))
        .routes(routes!(cluster_stats))
        .routes(routes!(cluster_state))
        .routes(routes!(stats))
        .routes(routes!(state))
        .routes(routes!(post_service))
        .routes(routes!(get_default_service, delete_default_service))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_reads_like_python() {
        assert_eq!(uptime(225.060206), "0:03:45.060206");
        assert_eq!(uptime(86_400.0 + 3_600.5), "1 day, 1:00:00.500000");
        assert_eq!(uptime(3.0 * 86_400.0), "3 days, 0:00:00.000000");
    }

    /// MyCluster's clients read these keys; typed, they are the same bytes.
    #[test]
    fn mycluster_answers_keep_their_keys() {
        let def = ServiceDef {
            service: "web".into(),
            image: "img".into(),
            replicas: 1,
            last_updated: 7,
            env: vec![],
            ports: vec![80],
            cmd: vec![],
        };
        let state = sorted(ClusterState {
            name: "lab".into(),
            num_of_workers: 1,
            workers: vec![WorkerState {
                worker: "node01".into(),
                healthy: true,
                service_instances: vec![ServiceInstances {
                    service: "web".into(),
                    image: "img".into(),
                    num_of_running_containers: 1,
                }],
            }],
            services_def: vec![def.clone()],
        });
        let before = serde_json::json!({
            "cluster.name": "lab",
            "cluster.numOfWorkers": 1,
            "cluster.workers": [{
                "worker": "node01",
                "healthy": true,
                "serviceInstances": [{"service": "web", "image": "img",
                    "numOfRunningContainers": 1}],
            }],
            "cluster.servicesDef": [def],
        });
        assert_eq!(state.to_string(), before.to_string());
        let stats = sorted(ClusterStats {
            up_time: uptime(3.0),
            total_of_requests: 2,
            total_of_containers: 1,
            failures: 0,
            relocated: 4,
        });
        let before = serde_json::json!({
            "cluster.upTime": "0:00:03.000000",
            "services.totalOfRequests": 2,
            "services.totalOfContainers": 1,
            "workers.failures": 0,
            "containers.relocated": 4,
        });
        assert_eq!(stats.to_string(), before.to_string());
    }

    #[test]
    fn requests_are_checked_field_by_field() {
        let ok = ServiceRequest {
            service: "web".into(),
            image: "mcc-test/busybox:latest".into(),
            replicas: 3,
            ..Default::default()
        };
        assert!(check_request(&ok).is_ok());
        let bad = |f: &dyn Fn(&mut ServiceRequest), field: &str| {
            let mut r = ok.clone();
            f(&mut r);
            let ApiError(status, detail) = check_request(&r).unwrap_err();
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
            assert!(detail.message.starts_with(field), "{}", detail.message);
        };
        bad(&|r| r.service = "Web".into(), "service");
        bad(&|r| r.service = "1web".into(), "service");
        bad(&|r| r.image = "bad image".into(), "image");
        bad(&|r| r.replicas = 5000, "replicas");
        bad(&|r| r.env = vec!["NOEQUALS".into()], "env");
        bad(&|r| r.ports = vec![0], "ports");
        bad(&|r| r.ports = vec![80, 80], "ports");
    }
}
