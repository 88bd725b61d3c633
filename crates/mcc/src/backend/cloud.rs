//! The container-cloud verbs (the CC seed's: VPCs, volumes, and the
//! containers of `mcc run`) as [`Backend`] methods: each returns the same
//! type on the engine and through the daemon, so `cloud` prints it once.

use std::sync::Arc;

use std::net::SocketAddr;

use mcc_api::{
    AddressRequest, AddressView, ContainerMetrics, ContainerStatus, IdDeleteReport, RmReport,
    RunSpec, VolumeRequest, VolumeView, VpcDeleteRequest, VpcRequest, VpcView,
};
use mcc_core::cluster::Clusters;
use mcc_core::{Error, Result};
use reqwest::Method;
use tokio::sync::OnceCell;

use super::Backend;
use crate::local::Notes;
use crate::remote::body;

/// The body of the routes that take a list of IDs.
fn ids_body(ids: &[String]) -> serde_json::Value {
    body(&VpcDeleteRequest { ids: ids.to_vec() })
}

/// What a look-up of several containers found: those that exist, and the
/// IDs it could tell were missing (the daemon answers with those that
/// exist only, so through it none are named).
pub(crate) struct Found<T> {
    pub(crate) found: Vec<T>,
    pub(crate) missing: Vec<String>,
}

impl Backend {
    /// The clusters of the engine for a cloud verb: its output is its
    /// result, so only notes (warnings) are shown.
    async fn cloud(engine: &OnceCell<Arc<dyn mcc_core::provider::Engine>>) -> Result<Clusters> {
        Self::local(engine, Arc::new(Notes)).await
    }

    /// Makes a VPC; its ID.
    pub(crate) async fn vpc_create(&self, req: &VpcRequest) -> Result<String> {
        match self {
            Backend::Daemon(c) => {
                let v: VpcView = c
                    .call(Method::POST, "/api/v1/vpcs", Some(&body(req)))
                    .await?;
                Ok(v.id)
            }
            Backend::Local(e) => {
                Self::cloud(e)
                    .await?
                    .vpc_create(&req.name, &req.cidr, req.allow_public_cidr)
                    .await
            }
        }
    }

    pub(crate) async fn vpcs(&self) -> Result<Vec<VpcView>> {
        match self {
            Backend::Daemon(c) => c.call(Method::GET, "/api/v1/vpcs", None).await,
            Backend::Local(e) => Self::cloud(e).await?.vpcs().await,
        }
    }

    /// Deletes the VPCs `ids`, all or none.
    pub(crate) async fn vpc_delete(&self, ids: &[String]) -> Result<IdDeleteReport> {
        match self {
            Backend::Daemon(c) => {
                c.call(Method::POST, "/api/v1/vpcs/delete", Some(&ids_body(ids)))
                    .await
            }
            Backend::Local(e) => Self::cloud(e).await?.vpc_delete(ids).await,
        }
    }

    /// Makes a volume; its ID.
    pub(crate) async fn volume_create(&self, req: &VolumeRequest) -> Result<String> {
        match self {
            Backend::Daemon(c) => {
                let v: VolumeView = c
                    .call(Method::POST, "/api/v1/volumes", Some(&body(req)))
                    .await?;
                Ok(v.id)
            }
            Backend::Local(e) => {
                Self::cloud(e)
                    .await?
                    .volume_create(&req.name, &req.size, req.persistent)
                    .await
            }
        }
    }

    pub(crate) async fn volumes(&self) -> Result<Vec<VolumeView>> {
        match self {
            Backend::Daemon(c) => c.call(Method::GET, "/api/v1/volumes", None).await,
            Backend::Local(e) => Self::cloud(e).await?.volume_list().await,
        }
    }

    /// Deletes the volumes `ids`, all or none.
    pub(crate) async fn volume_delete(&self, ids: &[String]) -> Result<IdDeleteReport> {
        match self {
            Backend::Daemon(c) => {
                c.call(Method::POST, "/api/v1/volumes/delete", Some(&ids_body(ids)))
                    .await
            }
            Backend::Local(e) => Self::cloud(e).await?.volume_delete(ids).await,
        }
    }

    /// Starts a container; its ID.
    pub(crate) async fn run(&self, spec: &RunSpec) -> Result<String> {
        match self {
            Backend::Daemon(c) => {
                let s: ContainerStatus = c
                    .call(Method::POST, "/api/v1/containers", Some(&body(spec)))
                    .await?;
                Ok(s.id)
            }
            Backend::Local(e) => Self::cloud(e).await?.run(spec).await,
        }
    }

    /// Prints a container's output from its start until it exits; its
    /// exit code (130 when Ctrl-C detached).
    pub(crate) async fn follow_run(&self, id: &str) -> Result<u8> {
        match self {
            Backend::Daemon(c) => crate::enter::follow_run_remote(c, id).await,
            Backend::Local(e) => crate::enter::follow_run(&Self::cloud(e).await?, id).await,
        }
    }

    /// Removes the containers `ids` (and the ephemeral volumes that go
    /// with them).
    pub(crate) async fn rm(&self, ids: &[String]) -> Result<RmReport> {
        match self {
            Backend::Daemon(c) => {
                c.call(
                    Method::POST,
                    "/api/v1/containers/delete",
                    Some(&ids_body(ids)),
                )
                .await
            }
            Backend::Local(e) => Self::cloud(e).await?.rm(ids).await,
        }
    }

    /// Where port `port` of container `id` is, as the backend's host
    /// reaches it.
    pub(crate) async fn run_address(&self, id: &str, port: u16) -> Result<SocketAddr> {
        match self {
            Backend::Daemon(c) => {
                let req = AddressRequest {
                    id: id.to_string(),
                    port,
                };
                let a: AddressView = c
                    .call(
                        Method::POST,
                        "/api/v1/containers/address",
                        Some(&body(&req)),
                    )
                    .await?;
                a.address.parse().map_err(|e| {
                    Error::Failed(format!(
                        "the daemon gave '{}' as the container's address: {e}",
                        a.address
                    ))
                })
            }
            Backend::Local(e) => Self::cloud(e).await?.run_address(id, port).await,
        }
    }

    /// Every container made by `run`.
    pub(crate) async fn statuses(&self) -> Result<Vec<ContainerStatus>> {
        match self {
            Backend::Daemon(c) => c.call(Method::GET, "/api/v1/containers", None).await,
            Backend::Local(e) => Self::cloud(e).await?.run_statuses().await,
        }
    }

    /// One container made by `run`, if it exists.
    pub(crate) async fn status(&self, id: &str) -> Result<Option<ContainerStatus>> {
        match self {
            Backend::Daemon(c) => {
                let all: Vec<ContainerStatus> = c
                    .call(
                        Method::POST,
                        "/api/v1/containers/status",
                        Some(&ids_body(&[id.to_string()])),
                    )
                    .await?;
                Ok(all.into_iter().next())
            }
            Backend::Local(e) => Self::cloud(e).await?.run_status(id).await,
        }
    }

    /// The resource use of the containers `ids`, read at once.
    pub(crate) async fn metrics(&self, ids: &[String]) -> Result<Found<ContainerMetrics>> {
        match self {
            Backend::Daemon(c) => {
                let found = c
                    .call(
                        Method::POST,
                        "/api/v1/containers/metrics",
                        Some(&ids_body(ids)),
                    )
                    .await?;
                Ok(Found {
                    found,
                    missing: Vec::new(),
                })
            }
            Backend::Local(e) => {
                let clusters = Self::cloud(e).await?;
                let all =
                    futures_util::future::join_all(ids.iter().map(|id| clusters.run_metrics(id)))
                        .await;
                let mut out = Found {
                    found: Vec::new(),
                    missing: Vec::new(),
                };
                for (id, m) in ids.iter().zip(all) {
                    match m? {
                        Some(m) => out.found.push(m),
                        None => out.missing.push(id.clone()),
                    }
                }
                Ok(out)
            }
        }
    }
}
