//! `mcc host` through the daemon: the hosts a cluster may span, kept in
//! the daemon's hosts file (`hosts.json` in its state directory, or
//! `MCC_HOSTS_FILE`), listed, added and removed as mcc-core's `hosts`
//! does it for the user's file. Bodies are `mcc_api::hosts`'.
//!
//! The daemon's engine follows the file (`MultiHost::following`): a host
//! added here is placed on by the next create, one removed is forgotten.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mcc_api::{ErrorBody, HostRequest, HostView};
use mcc_core::hosts::{self, AddHost, HostsFile, TlsFiles};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::app::{ApiError, ApiQuery, ApiResult, App, AppState};
use crate::body::body;
use crate::events::About;

impl App {
    fn hosts_file(&self) -> HostsFile {
        HostsFile::at(self.hosts.clone())
    }
}

/// A path of the daemon's machine, as `tls` takes it.
fn tls_path(field: &str, p: &str) -> ApiResult<std::path::PathBuf> {
    if !p.starts_with('/') {
        return Err(ApiError::invalid(format!(
            "tls.{field}: '{p}' is not an absolute path; give the PEM file's path on the \
             daemon's machine"
        )));
    }
    Ok(p.into())
}

#[utoipa::path(get, path = "/api/v1/hosts", security(("signature" = ["read"])), tag = "hosts",
    responses((status = 200, body = [HostView], description = "As `mcc host list --output json`")))]
pub async fn list_hosts(State(app): AppState) -> ApiResult<Json<Vec<HostView>>> {
    Ok(Json(hosts::list(&app.hosts_file()).await?))
}

#[utoipa::path(post, path = "/api/v1/hosts", security(("signature" = ["write"])), tag = "hosts", request_body = HostRequest,
    responses((status = 201, body = HostView), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody, description = "A value is wrong (the message names it): nothing is changed")))]
pub async fn add_host(State(app): AppState, bytes: Bytes) -> ApiResult<Response> {
    let req: HostRequest = body(&bytes)?;
    let tls = match &req.tls {
        None => None,
        Some(t) => Some(TlsFiles {
            ca: tls_path("ca", &t.ca)?,
            cert: tls_path("cert", &t.cert)?,
            key: tls_path("key", &t.key)?,
        }),
    };
    let view = hosts::add(
        &app.hosts_file(),
        &AddHost {
            name: req.name,
            engine: req.engine,
            zone: req.zone,
            tls,
            advertise: req.advertise_addr,
        },
    )
    .await?;
    app.log.record(
        "host",
        About::default(),
        format!("host {} added ({})", view.name, view.engine),
    );
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RemoveHostQuery {
    /// The host is gone for good (`mcc host remove --lost`): taken out of
    /// the swarm through another host; refused while its engine answers.
    #[serde(default)]
    lost: bool,
}

#[utoipa::path(delete, path = "/api/v1/hosts/{name}", security(("signature" = ["write"])), tag = "hosts",
    params(("name" = String, Path, description = "Host name"), RemoveHostQuery),
    responses((status = 204, description = "Removed"),
              (status = 409, body = ErrorBody, description = "It holds nodes (the message names them)")))]
pub async fn remove_host(
    State(app): AppState,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<RemoveHostQuery>,
) -> ApiResult<StatusCode> {
    hosts::validate_name("host", &name)?;
    let file = app.hosts_file();
    let h = match q.lost {
        true => hosts::remove_lost(&file, &name).await?,
        false => hosts::remove(&file, &name).await?,
    };
    app.log.record(
        "host",
        About::default(),
        format!(
            "host {} removed{}",
            h.name,
            if q.lost { " (lost)" } else { "" }
        ),
    );
    Ok(StatusCode::NO_CONTENT)
}

pub fn routes() -> utoipa_axum::router::OpenApiRouter<Arc<App>> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(list_hosts, add_host))
        .routes(routes!(remove_host))
}
