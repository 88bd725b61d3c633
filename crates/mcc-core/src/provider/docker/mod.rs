//! The Docker Engine API through bollard. Podman's Docker-compatible socket
//! (`DOCKER_HOST=unix:///run/podman/podman.sock`) goes through the same code.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use async_trait::async_trait;
use bollard::errors::Error as BollardError;
use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, ContainerSummaryStateEnum, EndpointIpamConfig, EndpointSettings,
    HostConfig, HostConfigCgroupnsModeEnum, Ipam, IpamConfig, Mount as DockerMount, MountType,
    MountVolumeOptions, NetworkCreateRequest, NetworkingConfig, PortBinding, PortSummaryTypeEnum,
    RestartPolicy, RestartPolicyNameEnum, SystemInfoCgroupVersionEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, DownloadFromContainerOptionsBuilder,
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use bollard::{body_full, container::LogOutput, Docker};
use futures_util::{StreamExt, TryStreamExt};

use super::{
    Attached, Chunk, ContainerInfo, ContainerRequest, ContainerState, Engine, EngineEvent,
    EventAction, EventObject, ExecSpec, Helper, ImageInfo, Labels, Limit, Limits, Mount,
    NetworkInfo, NetworkSpec, NodeInit, NodeRequest, StatsSample, VolumeInfo,
};
use crate::error::{Error, Result};
use crate::model::{labels, Ipv4Cidr};

mod containers;
mod events;
mod export;
mod helper;
mod host;
mod lease;
mod loopfs;
mod multi;
mod recipe;
mod sized;
mod spec;
pub mod swarm;

pub use multi::MultiHost;

use host::*;
use recipe::*;
use spec::*;

pub struct DockerProvider {
    docker: Docker,
    host: String,
    facts: tokio::sync::OnceCell<HostFacts>,
}

/// The most mcc reads of a container's files at once.
const MAX_DOWNLOAD: usize = 64 << 20;

impl DockerProvider {
    /// Every container on a network, stopped ones too (they join it again
    /// at start); `None` when there is no such network.
    async fn containers_on_network(
        &self,
        name: &str,
    ) -> Result<Option<Vec<bollard::models::ContainerSummary>>> {
        let id = match self.docker.inspect_network(name, None).await {
            Ok(n) => n.id.unwrap_or_else(|| name.to_string()),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(None),
            Err(e) => return Err(map_err(format!("inspecting network {name}"))(e)),
        };
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&HashMap::from([("network", vec![id.as_str()])]))
            .build();
        self.docker
            .list_containers(Some(opts))
            .await
            .map(Some)
            .map_err(map_err(format!("listing the containers of network {name}")))
    }

    /// Connects to the engine named by `DOCKER_HOST`, or the local socket,
    /// and agrees on an API version both sides speak.
    pub async fn connect() -> Result<DockerProvider> {
        let host = std::env::var("DOCKER_HOST")
            .unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string());
        let no_engine = |reason: String| {
            Error::NoEngine {
            host: host.clone(),
            reason,
            hint: "start the engine (e.g. `sudo systemctl start docker`, or `sudo dockerd &`), \
                   or point DOCKER_HOST at a running one (Podman: \
                   DOCKER_HOST=unix:///run/podman/podman.sock after `systemctl start podman.socket`)"
                .to_string(),
        }
        };
        let docker = Docker::connect_with_defaults().map_err(|e| no_engine(e.to_string()))?;
        Self::answering(docker, host.clone(), no_engine).await
    }

    /// The provider on `docker` once it has agreed on an API version and
    /// answered a ping; `fail` says why not.
    async fn answering(
        docker: Docker,
        host: String,
        fail: impl Fn(String) -> Error,
    ) -> Result<DockerProvider> {
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| fail(e.to_string()))?;
        docker.ping().await.map_err(|e| fail(e.to_string()))?;
        Ok(DockerProvider {
            docker,
            host,
            facts: tokio::sync::OnceCell::new(),
        })
    }

    /// The same connection, its requests bounded by `timeout_secs` from now
    /// on (a host that answered a short probe, given time for slow work).
    pub fn with_timeout(self, timeout_secs: u64) -> DockerProvider {
        DockerProvider {
            docker: self
                .docker
                .with_timeout(std::time::Duration::from_secs(timeout_secs)),
            ..self
        }
    }

    /// Names of the containers the engine lists as attached to a network.
    async fn attached(&self, network: &str) -> Vec<String> {
        match self.docker.inspect_network(network, None).await {
            Ok(n) => n
                .containers
                .unwrap_or_default()
                .into_values()
                .filter_map(|c| c.name)
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Connects to an engine over TCP with TLS and a client certificate
    /// (a worker's engine of `--docker-workers`): `key`, `cert` and `ca`
    /// are PEM files. `timeout_secs` bounds every request.
    pub async fn connect_tls(
        addr: &str,
        key: &std::path::Path,
        cert: &std::path::Path,
        ca: &std::path::Path,
        timeout_secs: u64,
    ) -> Result<DockerProvider> {
        let fail = |e: BollardError| Error::NoEngine {
            host: addr.to_string(),
            reason: e.to_string(),
            hint: "is the node running, and its engine started?".to_string(),
        };
        let docker = Docker::connect_with_ssl(
            addr,
            key,
            cert,
            ca,
            timeout_secs,
            bollard::API_DEFAULT_VERSION,
        )
        .map_err(fail)?;
        docker.ping().await.map_err(fail)?;
        Ok(DockerProvider {
            docker,
            host: addr.to_string(),
            facts: tokio::sync::OnceCell::new(),
        })
    }

    /// Whether the engine answers (within the connection's timeout).
    pub async fn ping(&self) -> bool {
        self.docker.ping().await.is_ok()
    }

    /// Whether the engine runs on this machine, whose files mcc can read.
    fn local(&self) -> bool {
        self.host.starts_with("unix://")
    }

    /// Removes the engine's record of a volume (and, for a plain one, its
    /// data); `Ok(false)` when there was none.
    async fn remove_engine_volume(&self, name: &str) -> Result<bool> {
        match self
            .docker
            .remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>)
            .await
        {
            Ok(()) => Ok(true),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(e) => Err(map_err(format!("removing volume {name}"))(e)),
        }
    }

    /// Removes volume `name` from this engine (a sized one's image file
    /// too), not what it keeps on a shared export; whether it was there,
    /// and its labels.
    async fn remove_volume_here(&self, name: &str) -> Result<(bool, Option<Labels>)> {
        let labels = self.volume(name).await?.map(|v| v.labels);
        let existed = self.remove_engine_volume(name).await?;
        self.release_sized(name).await;
        Ok((existed, labels))
    }

    /// Creates the engine volume `req` describes.
    async fn new_volume(&self, req: VolumeCreateRequest) -> Result<VolumeInfo> {
        let name = req.name.clone().unwrap_or_default();
        let v = self
            .docker
            .create_volume(req)
            .await
            .map_err(map_err(format!("creating volume {name}")))?;
        Ok(VolumeInfo {
            name: v.name,
            mountpoint: v.mountpoint,
            labels: v.labels,
            host: None,
        })
    }
}

/// Maps bollard's errors onto mcc's, keeping the engine's own message.
fn map_err(op: impl Into<String>) -> impl FnOnce(BollardError) -> Error {
    let op = op.into();
    move |e| match e {
        BollardError::DockerResponseServerError {
            status_code,
            message,
        } => match status_code {
            404 => Error::NotFound(format!("{op}: {message}")),
            409 => Error::Conflict(format!("{op}: {message}")),
            _ => Error::Engine {
                op,
                status: Some(status_code),
                message: explain(&message),
            },
        },
        other => Error::engine(op, other),
    }
}

/// The runtime's words when a container's command cannot be run: its
/// `exec: "CMD": …` part (not found, not executable, not a program).
fn command_missing(message: &str) -> Option<String> {
    let at = message.find("exec: \"")?;
    let what = &message[at..];
    let known = [
        "executable file not found",
        "no such file or directory",
        "permission denied",
        "exec format error",
    ];
    known.iter().any(|k| what.contains(k)).then(|| {
        what.trim_end_matches(": unknown")
            .trim_end_matches(['.', ' '])
            .to_string()
    })
}

/// Adds what a user can do about engine messages that are known to puzzle.
fn explain(message: &str) -> String {
    if message.contains("active endpoints") {
        return format!(
            "{message}\n  the engine still counts an endpoint on this network although no \
             container is attached (a fault of Docker 20.10 after parallel removals): \
             `docker network inspect` it; restarting the engine (`systemctl restart docker`) \
             usually frees it, and with the engine stopped, removing \
             /var/lib/docker/network/files/local-kv.db always does (it forgets every network \
             the engine made, which it makes again at start)"
        );
    }
    if message.contains("unable to apply caps") || message.contains("operation not permitted") {
        format!(
            "{message}\n  the engine refused the container's privileges: this host's kernel does \
             not allow them (e.g. --privileged inside a VM or an unprivileged engine); try \
             without --privileged"
        )
    } else {
        message.to_string()
    }
}

fn state_of(s: Option<ContainerSummaryStateEnum>) -> ContainerState {
    match s {
        Some(ContainerSummaryStateEnum::CREATED) => ContainerState::Created,
        Some(ContainerSummaryStateEnum::RUNNING) => ContainerState::Running,
        Some(ContainerSummaryStateEnum::PAUSED) => ContainerState::Paused,
        Some(ContainerSummaryStateEnum::RESTARTING) => ContainerState::Restarting,
        Some(ContainerSummaryStateEnum::EXITED) => ContainerState::Exited,
        Some(ContainerSummaryStateEnum::DEAD) => ContainerState::Dead,
        Some(ContainerSummaryStateEnum::REMOVING) => ContainerState::Removing,
        other => ContainerState::Unknown(format!("{other:?}").to_lowercase()),
    }
}

fn label_filter(label: &str, value: Option<&str>) -> HashMap<String, Vec<String>> {
    let f = match value {
        Some(v) => format!("{label}={v}"),
        None => label.to_string(),
    };
    HashMap::from([("label".to_string(), vec![f])])
}

#[async_trait]
impl Engine for DockerProvider {
    fn endpoint(&self) -> String {
        self.host.clone()
    }

    fn store(
        self: std::sync::Arc<Self>,
    ) -> std::sync::Arc<dyn crate::provider::store::ClusterStore> {
        std::sync::Arc::new(crate::provider::store::MetaStore::new(self))
    }

    async fn host(&self) -> Result<super::HostInfo> {
        let systemd_privileged = self
            .facts()
            .await?
            .cgroup_v2
            .then(|| SYSTEMD_V2_PRIVILEGED.to_string());
        if !self.local() {
            return Ok(super::HostInfo {
                systemd_privileged,
                ..Default::default()
            });
        }
        Ok(super::HostInfo {
            systemd_privileged,
            routes: std::fs::read_to_string("/proc/net/route")
                .ok()
                .map(|t| routes_of(&t)),
            interfaces: interfaces(),
            ..Default::default()
        })
    }

    async fn create_node(&self, node: &NodeRequest) -> Result<String> {
        if let Some(host) = &node.placement {
            return Err(Error::Invalid(format!(
                "node {}: placement on host '{host}': the engine at {} is one host; leave \
                 the placement out",
                node.hostname, self.host
            )));
        }
        let facts = if node.init == NodeInit::Systemd {
            self.facts().await?
        } else {
            HostFacts::default()
        };
        let spec = node_container(node, facts, None);
        // a volume on a shared export is made on this engine (its folder
        // first) before its mountpoint is asked for: the hosts file is
        // bound from there, where the engine mounts the export's folder
        // when the node starts (the node mounts the same volume)
        self.ensure_export_volumes(&spec).await?;
        let hosts_source = match &node.hosts_file {
            None => None,
            Some((volume, path)) => {
                let v = self.volume(volume).await?.ok_or_else(|| {
                    Error::NotFound(format!(
                        "volume {volume} (holding the hosts file of {}) is missing",
                        node.name
                    ))
                })?;
                Some(format!("{}/{path}", v.mountpoint))
            }
        };
        self.create_plain_container(&node_container(node, facts, hosts_source))
            .await
    }

    async fn image(&self, image: &str) -> Result<Option<ImageInfo>> {
        match self.docker.inspect_image(image).await {
            Ok(i) => {
                let cfg = i.config.unwrap_or_default();
                Ok(Some(ImageInfo {
                    entrypoint: cfg.entrypoint.unwrap_or_default(),
                    cmd: cfg.cmd.unwrap_or_default(),
                }))
            }
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(map_err(format!("inspecting image {image}"))(e)),
        }
    }

    async fn pull(&self, image: &str, progress: &(dyn Fn(String) + Send + Sync)) -> Result<()> {
        let opts = CreateImageOptionsBuilder::default()
            .from_image(image)
            .build();
        let mut stream = self.docker.create_image(Some(opts), None, None);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| {
                let (status, message) = match &e {
                    BollardError::DockerResponseServerError {
                        status_code,
                        message,
                    } => (Some(*status_code), message.clone()),
                    BollardError::DockerStreamError { error } => (None, error.clone()),
                    other => (None, other.to_string()),
                };
                if crate::model::image::pull_says_no_such_image(status, &message) {
                    // the user's name for an image that is nowhere: bad
                    // input (exit 2, a 422 through the daemon)
                    Error::Invalid(format!(
                        "image '{image}' is not on this engine, and its registry has no such \
                         image ({message}); check the name and tag (`docker images` lists \
                         those here), or build or load it first (docker build, docker load)"
                    ))
                } else {
                    // the name may be right: the registry could not say
                    Error::NotFound(format!(
                        "image '{image}' is not on this engine and could not be pulled: \
                         {message}; check the network and the registry, or build or load it \
                         here first (docker build, docker load)"
                    ))
                }
            })?;
            let mut line = String::new();
            if let Some(id) = info.id {
                line.push_str(&id);
                line.push_str(": ");
            }
            line.push_str(info.status.as_deref().unwrap_or(""));
            if let Some(d) = info.progress_detail {
                if let (Some(cur), Some(total)) = (d.current, d.total) {
                    if total > 0 {
                        line.push_str(&format!(" {}%", cur * 100 / total));
                    }
                }
            }
            progress(line);
        }
        Ok(())
    }

    async fn create_network(&self, spec: &NetworkSpec) -> Result<()> {
        let req = NetworkCreateRequest {
            name: spec.name.clone(),
            driver: Some(spec.driver.clone()),
            options: spec
                .parent
                .as_ref()
                .map(|p| HashMap::from([("parent".to_string(), p.clone())])),
            attachable: Some(true),
            ipam: Some(Ipam {
                driver: Some("default".into()),
                config: Some(vec![IpamConfig {
                    subnet: Some(spec.subnet.to_string()),
                    gateway: Some(spec.gateway.to_string()),
                    ip_range: spec.ip_range.map(|r| r.to_string()),
                    ..Default::default()
                }]),
                options: None,
            }),
            labels: Some(spec.labels.clone()),
            ..Default::default()
        };
        match self.docker.create_network(req).await {
            Ok(_) => Ok(()),
            // dockerd says so only in words
            Err(BollardError::DockerResponseServerError { message, .. })
                if message.contains("overlap") =>
            {
                Err(Error::Conflict(format!(
                    "subnet {} is taken by another network ({message})",
                    spec.subnet
                )))
            }
            Err(e) => Err(map_err(format!(
                "creating network {} ({})",
                spec.name, spec.subnet
            ))(e)),
        }
    }

    async fn remove_network(&self, name: &str) -> Result<bool> {
        // Just after its containers are removed, the engine may still count
        // their endpoints for a moment ("has active endpoints"): retry
        // briefly before calling it a failure.
        let mut attempts = 0;
        loop {
            match self.docker.remove_network(name).await {
                Ok(()) => return Ok(true),
                Err(BollardError::DockerResponseServerError {
                    status_code: 404, ..
                }) => return Ok(false),
                Err(BollardError::DockerResponseServerError { message, .. })
                    if message.contains("active endpoints") && attempts < 200 =>
                {
                    // A container really attached (not mcc's: its own are
                    // gone by now) is named, not blamed on the engine.
                    let attached = self.attached(name).await;
                    if !attached.is_empty() {
                        return Err(Error::Failed(format!(
                            "removing network {name}: container(s) {} are attached to it; \
                             disconnect them (`docker network disconnect {name} CONTAINER`) \
                             or remove them, then run mcc again",
                            attached.join(", ")
                        )));
                    }
                    attempts += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(e) => return Err(map_err(format!("removing network {name}"))(e)),
            }
        }
    }

    async fn networks(&self, label: Option<(&str, &str)>) -> Result<Vec<NetworkInfo>> {
        let mut b = ListNetworksOptionsBuilder::default();
        if let Some((k, v)) = label {
            b = b.filters(&label_filter(k, Some(v)));
        }
        let list = self
            .docker
            .list_networks(Some(b.build()))
            .await
            .map_err(map_err("listing networks"))?;
        Ok(list
            .into_iter()
            .map(|n| NetworkInfo {
                name: n.name.unwrap_or_default(),
                subnets: n
                    .ipam
                    .and_then(|i| i.config)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|c| c.subnet?.parse::<Ipv4Cidr>().ok())
                    .collect(),
                labels: n.labels.unwrap_or_default(),
            })
            .collect())
    }

    async fn mark_volume_used(&self, name: &str) -> Result<()> {
        self.mark_sized_used_on_loop(name).await
    }

    async fn volume_used(&self, name: &str) -> Result<bool> {
        self.sized_used_on_loop(name).await
    }

    async fn own_volume_root(&self, name: &str, uid: u32, gid: u32) -> Result<()> {
        self.own_sized_root_on_loop(name, uid, gid).await
    }

    async fn volume_users(&self, name: &str) -> Result<Vec<String>> {
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&HashMap::from([("volume", vec![name])]))
            .build();
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(map_err(format!("listing the users of volume {name}")))?;
        Ok(list
            .into_iter()
            .filter_map(|c| c.names.and_then(|n| n.into_iter().next()))
            .map(|n| n.trim_start_matches('/').to_string())
            .collect())
    }

    async fn container_status(&self, id: &str) -> Result<Option<super::ContainerStatus>> {
        let c = match self.docker.inspect_container(id, None).await {
            Ok(c) => c,
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(None),
            Err(e) => return Err(map_err(format!("inspecting container {id}"))(e)),
        };
        let state = c.state.unwrap_or_default();
        let config = c.config.unwrap_or_default();
        let host = c.host_config.unwrap_or_default();
        let running = state.running.unwrap_or(false);
        let stamp = |s: Option<String>| s.filter(|t| !t.starts_with("0001-"));
        Ok(Some(super::ContainerStatus {
            id: c.id.unwrap_or_default(),
            name: c
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            state: state
                .status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "unknown".into()),
            exit_code: (!running).then_some(state.exit_code).flatten(),
            image: config.image.unwrap_or_default(),
            labels: config.labels.unwrap_or_default(),
            ips: c
                .network_settings
                .and_then(|n| n.networks)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(net, ep)| Some((net, ep.ip_address.filter(|s| !s.is_empty())?)))
                .collect(),
            memory: host.memory.filter(|m| *m > 0),
            cpu_shares: host.cpu_shares.filter(|s| *s > 0),
            disk: host.storage_opt.and_then(|o| o.get("size").cloned()),
            user: config.user.unwrap_or_default(),
            workdir: config.working_dir.unwrap_or_default(),
            volumes: c
                .mounts
                .unwrap_or_default()
                .into_iter()
                .filter(|m| m.typ.as_deref() == Some("volume"))
                .filter_map(|m| Some(format!("{}:{}", m.name?, m.destination?)))
                .collect(),
            started: stamp(state.started_at),
            finished: stamp(state.finished_at).filter(|_| !running),
        }))
    }

    async fn network_members(&self, name: &str) -> Result<Option<Vec<(String, Option<Ipv4Addr>)>>> {
        let Some(list) = self.containers_on_network(name).await? else {
            return Ok(None);
        };
        Ok(Some(
            list.into_iter()
                .filter_map(|c| {
                    let who = c.names?.into_iter().next()?;
                    let ep = c
                        .network_settings
                        .and_then(|s| s.networks)
                        .and_then(|mut n| n.remove(name));
                    // a stopped container has no address now, but takes
                    // its fixed one back when it starts
                    let ip = ep.and_then(|ep| {
                        ep.ip_address
                            .filter(|s| !s.is_empty())
                            .or_else(|| ep.ipam_config.and_then(|i| i.ipv4_address))
                    });
                    Some((
                        who.trim_start_matches('/').to_string(),
                        ip.and_then(|ip| ip.parse::<Ipv4Addr>().ok()),
                    ))
                })
                .collect(),
        ))
    }

    async fn create_volume(
        &self,
        name: &str,
        size: Option<u64>,
        labels: &Labels,
    ) -> Result<VolumeInfo> {
        if let Some(size) = size {
            return self.create_sized_on_loop(name, size, labels).await;
        }
        if let Some(e) = export::export_of(labels)? {
            return self.create_export_volume(name, &e, labels).await;
        }
        self.new_volume(VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(labels.clone()),
            ..Default::default()
        })
        .await
    }

    async fn volume(&self, name: &str) -> Result<Option<VolumeInfo>> {
        match self.docker.inspect_volume(name).await {
            Ok(v) => Ok(Some(VolumeInfo {
                mountpoint: v.mountpoint,
                name: v.name,
                labels: v.labels,
                host: None,
            })),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(map_err(format!("inspecting volume {name}"))(e)),
        }
    }

    async fn remove_volume(&self, name: &str) -> Result<bool> {
        let (existed, labels) = self.remove_volume_here(name).await?;
        if let Some(labels) = labels {
            if let Some(e) = export::export_of(&labels)? {
                self.remove_export_data(&e, name, &labels).await?;
            }
        }
        Ok(existed)
    }

    async fn volumes(&self, label: Option<(&str, &str)>) -> Result<Vec<VolumeInfo>> {
        let mut b = ListVolumesOptionsBuilder::default();
        if let Some((k, v)) = label {
            b = b.filters(&label_filter(k, Some(v)));
        }
        let list = self
            .docker
            .list_volumes(Some(b.build()))
            .await
            .map_err(map_err("listing volumes"))?;
        Ok(list
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| VolumeInfo {
                name: v.name,
                mountpoint: v.mountpoint,
                labels: v.labels,
                host: None,
            })
            .collect())
    }

    fn refuse_limits(&self, limits: &Limits) -> Option<(Limit, String)> {
        refused(limits)
    }

    async fn create_container(&self, req: &ContainerRequest) -> Result<String> {
        for m in &req.mounts {
            if let Mount::Volume { name, .. } = m {
                self.prepare_sized_on_loop(name).await?;
            }
        }
        self.create_plain_container(&ContainerSpec::plain(req))
            .await
            .map_err(|e| {
                let m = e.to_string();
                if req.limits.disk.is_some()
                    && (m.contains("storage-opt")
                        || m.contains("storage opt")
                        || m.contains("quota"))
                {
                    Error::Invalid(format!(
                        "--disk: this engine cannot limit a container's disk here ({m}); leave \
                         --disk out, and give the data a sized volume instead (mcc volume create \
                         --size)"
                    ))
                } else {
                    e
                }
            })
    }

    async fn start_container(&self, name: &str) -> Result<()> {
        let op = format!("starting container {name}");
        self.docker.start_container(name, None).await.map_err(|e| {
            // a command the image does not have is bad input, not an
            // engine fault
            if let BollardError::DockerResponseServerError { message, .. } = &e {
                if let Some(what) = command_missing(message) {
                    return Error::Invalid(format!(
                        "{op}: {what}; give a command the image has (an absolute path, or one \
                         on its PATH)"
                    ));
                }
            }
            map_err(op)(e)
        })
    }

    async fn stop_container(&self, name: &str, timeout_secs: i64) -> Result<()> {
        let opts = StopContainerOptionsBuilder::default()
            .t(timeout_secs as i32)
            .build();
        match self.docker.stop_container(name, Some(opts)).await {
            Ok(()) => Ok(()),
            // 304: already stopped
            Err(BollardError::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(map_err(format!("stopping container {name}"))(e)),
        }
    }

    async fn remove_container(&self, name: &str) -> Result<bool> {
        let opts = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(name, Some(opts)).await {
            Ok(()) => Ok(true),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            // 409 "removal already in progress": someone else is removing it
            Err(BollardError::DockerResponseServerError {
                status_code: 409,
                message,
            }) if message.contains("already in progress") => Ok(true),
            Err(e) => Err(map_err(format!("removing container {name}"))(e)),
        }
    }

    async fn containers(&self, label: &str, value: Option<&str>) -> Result<Vec<ContainerInfo>> {
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&label_filter(label, value))
            .build();
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(map_err("listing containers"))?;
        Ok(list
            .into_iter()
            .map(|c| {
                let addresses = c
                    .network_settings
                    .and_then(|n| n.networks)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|(net, ep)| {
                        let ip = ep
                            .ip_address
                            .filter(|s| !s.is_empty())
                            .or_else(|| ep.ipam_config.and_then(|i| i.ipv4_address))?;
                        Some((net, ip.parse::<Ipv4Addr>().ok()?))
                    })
                    .collect();
                ContainerInfo {
                    id: c.id.unwrap_or_default(),
                    name: c
                        .names
                        .and_then(|n| n.into_iter().next())
                        .map(|n| n.trim_start_matches('/').to_string())
                        .unwrap_or_default(),
                    image: c.image.unwrap_or_default(),
                    state: state_of(c.state),
                    labels: c.labels.unwrap_or_default(),
                    addresses,
                    ports: c
                        .ports
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|p| p.typ == Some(PortSummaryTypeEnum::TCP))
                        .filter(|p| p.ip.as_deref().is_none_or(|ip| !ip.contains(':')))
                        .filter_map(|p| Some((p.private_port, p.public_port?)))
                        .collect(),
                    host: None,
                }
            })
            .collect())
    }

    async fn exec_attach(&self, container: &str, spec: &ExecSpec) -> Result<Attached> {
        let op = format!("running {:?} in {container}", spec.cmd);
        let created = self
            .docker
            .create_exec(
                container,
                CreateExecOptions::<String> {
                    attach_stdin: Some(spec.stdin),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    tty: Some(spec.tty),
                    env: Some(spec.env.clone()),
                    cmd: Some(spec.cmd.clone()),
                    user: spec.user.clone(),
                    working_dir: spec.workdir.clone(),
                    ..Default::default()
                },
            )
            .await
            .map_err(map_err(op.clone()))?;
        let started = self
            .docker
            .start_exec(
                &created.id,
                Some(StartExecOptions {
                    detach: false,
                    tty: spec.tty,
                    output_capacity: None,
                }),
            )
            .await
            .map_err(map_err(op.clone()))?;
        match started {
            StartExecResults::Attached { output, input } => Ok(Attached {
                id: created.id,
                output: Box::pin(output.map_err(move |e| map_err(op.clone())(e)).map_ok(
                    |o| match o {
                        LogOutput::StdErr { message } => Chunk::Stderr(message.to_vec()),
                        LogOutput::StdOut { message }
                        | LogOutput::Console { message }
                        | LogOutput::StdIn { message } => Chunk::Stdout(message.to_vec()),
                    },
                )),
                input,
            }),
            StartExecResults::Detached => Err(Error::engine(op, "the engine detached the process")),
        }
    }

    fn follow_logs(&self, container: &str) -> super::OutputStream {
        let opts = LogsOptionsBuilder::default()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .build();
        let op = format!("reading the output of {container}");
        Box::pin(
            self.docker
                .logs(container, Some(opts))
                .map_err(move |e| map_err(op.clone())(e))
                .map_ok(|o| match o {
                    LogOutput::StdErr { message } => Chunk::Stderr(message.to_vec()),
                    LogOutput::StdOut { message }
                    | LogOutput::Console { message }
                    | LogOutput::StdIn { message } => Chunk::Stdout(message.to_vec()),
                }),
        )
    }

    fn events(&self, label: &str, since_nano: Option<i64>) -> super::EventStream {
        let filters = HashMap::from([("label".to_string(), vec![label.to_string()])]);
        self.event_stream(since_nano, filters)
    }

    /// Loads an image archive (`docker load`) as it streams in.
    async fn load_image(&self, tar: super::ByteStream) -> Result<()> {
        let opts = bollard::query_parameters::ImportImageOptionsBuilder::default()
            .quiet(true)
            .build();
        let mut s = self.docker.import_image_stream(opts, tar, None);
        while let Some(r) = s.next().await {
            let info = r.map_err(map_err("loading an image"))?;
            if let Some(e) = info.error_detail.and_then(|d| d.message) {
                return Err(Error::Failed(format!("loading an image: {e}")));
            }
        }
        Ok(())
    }

    /// An image as a tar archive (`docker save`), streamed.
    fn export_image(&self, image: &str) -> super::ByteStream {
        let op = format!("saving image {image}");
        Box::pin(
            self.docker
                .export_image(image)
                .map_err(move |e| map_err(op.clone())(e)),
        )
    }

    fn stats(&self, container: &str) -> super::StatsStream {
        self.stats_stream(container)
    }

    async fn exec_exit_code(&self, exec_id: &str) -> Result<i64> {
        // The output stream can end a moment before the engine records the
        // exit code; wait for it briefly.
        for _ in 0..200 {
            let i = self
                .docker
                .inspect_exec(exec_id)
                .await
                .map_err(map_err("inspecting exec"))?;
            if i.running != Some(true) {
                return Ok(i.exit_code.unwrap_or(-1));
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        Err(Error::engine(
            "inspecting exec",
            "the process did not finish",
        ))
    }

    async fn exec_resize(&self, exec_id: &str, rows: u16, cols: u16) -> Result<()> {
        self.docker
            .resize_exec(
                exec_id,
                ResizeExecOptions {
                    height: rows,
                    width: cols,
                },
            )
            .await
            .map_err(map_err("resizing terminal"))
    }

    async fn rewrite_in_place(
        &self,
        volume: &str,
        path: &str,
        content: &[u8],
        helper: &Helper,
    ) -> Result<()> {
        self.rewrite_with_helper(volume, path, content, helper)
            .await
    }

    async fn upload(&self, container: &str, dir: &str, tar: Vec<u8>) -> Result<()> {
        let opts = UploadToContainerOptionsBuilder::default().path(dir).build();
        self.docker
            .upload_to_container(container, Some(opts), body_full(tar.into()))
            .await
            .map_err(map_err(format!("copying files into {container}:{dir}")))
    }

    async fn download(&self, container: &str, path: &str) -> Result<Vec<u8>> {
        let opts = DownloadFromContainerOptionsBuilder::default()
            .path(path)
            .build();
        let mut stream = self.docker.download_from_container(container, Some(opts));
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(map_err(format!("copying {container}:{path}")))?;
            out.extend_from_slice(&chunk);
            // what mcc reads is small; a node may have made it huge (a
            // sparse file): never take it whole into memory
            if out.len() > MAX_DOWNLOAD {
                return Err(Error::Failed(format!(
                    "{container}:{path} is larger than {} MiB; mcc does not read it",
                    MAX_DOWNLOAD >> 20
                )));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_the_image_lacks_is_told_as_such() {
        let engine = "failed to create shim task: OCI runtime create failed: runc create failed: \
                      unable to start container process: exec: \"nosuch\": executable file \
                      not found in $PATH: unknown";
        assert_eq!(
            command_missing(engine).as_deref(),
            Some("exec: \"nosuch\": executable file not found in $PATH")
        );
        let path = "OCI runtime create failed: unable to start container process: exec: \
                    \"/bin/nope\": stat /bin/nope: no such file or directory: unknown";
        assert!(command_missing(path).unwrap().contains("/bin/nope"));
        // an engine fault that is not about the command stays one
        assert_eq!(
            command_missing("cgroup mountpoint does not exist: unknown"),
            None
        );
        assert_eq!(
            command_missing("unable to find user a: no matching entries in passwd file"),
            None
        );
    }
}
