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
    Attached, Chunk, ContainerInfo, ContainerSpec, ContainerState, EngineEvent, ExecSpec, Helper,
    ImageInfo, Labels, Mount, NetworkInfo, NetworkSpec, NodeInit, NodeRequest, Provider,
    StatsSample, VolumeInfo,
};
use crate::error::{Error, Result};
use crate::model::{labels, Ipv4Cidr};

pub struct DockerProvider {
    docker: Docker,
    host: String,
    facts: tokio::sync::OnceCell<HostFacts>,
}

/// Facts about the engine's host that change how nodes are made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct HostFacts {
    /// The host uses the unified cgroup hierarchy (cgroup v2).
    cgroup_v2: bool,
}

/// The most mcc reads of a container's files at once.
const MAX_DOWNLOAD: usize = 64 << 20;

/// Signal that makes systemd shut down cleanly (SIGTERM only re-executes it).
const SYSTEMD_STOP_SIGNAL: &str = "SIGRTMIN+3";

/// Why systemd nodes are privileged on a cgroup v2 host.
const SYSTEMD_V2_PRIVILEGED: &str = "--systemd on a cgroup v2 host: the engine mounts the \
     cgroup tree read-only unless the container is privileged, and systemd must write it";

/// The container of a node, for a host with `facts`, whose hosts file is
/// the host path `hosts_source`.
fn node_container(
    node: &NodeRequest,
    facts: HostFacts,
    hosts_source: Option<String>,
) -> ContainerSpec {
    let mut mounts = node.volumes.clone();
    if let Some(source) = hosts_source {
        // a bind (not a copy): rewritten in place, the file is seen by
        // every node at once, and it survives restarts (the engine would
        // regenerate its own /etc/hosts)
        mounts.push(Mount::Bind {
            source,
            target: "/etc/hosts".into(),
            read_only: true,
        });
    }
    if node.host_modules {
        mounts.push(Mount::Bind {
            source: "/lib/modules".into(),
            target: "/lib/modules".into(),
            read_only: true,
        });
    }
    let mut spec = ContainerSpec {
        name: node.name.clone(),
        hostname: Some(node.hostname.clone()),
        domainname: node.domainname.clone(),
        dns: node.dns.clone(),
        dns_search: node.dns_search.clone(),
        image: node.image.clone(),
        env: node.env.clone(),
        labels: node.labels.clone(),
        network: Some(node.network.clone()),
        mounts,
        privileged: node.privileged,
        // Nodes come back with the engine, as machines come back after a
        // power cut; a node the user stopped stays stopped.
        restart_unless_stopped: true,
        ..Default::default()
    };
    match &node.init {
        NodeInit::Image => {}
        NodeInit::Shell(script) => {
            // mcc's own first process runs as root, whatever USER the
            // image names: it runs the context and is the node's init
            spec.cmd = Some(vec!["/bin/sh".into(), "-c".into(), script.clone()]);
            spec.user = Some("0".into());
        }
        NodeInit::ShellThen(script, args) => {
            spec.entrypoint = Some(vec![
                "/bin/sh".into(),
                "-c".into(),
                script.clone(),
                "mcc-init".into(),
            ]);
            spec.cmd = Some(args.clone());
            spec.user = Some("0".into());
        }
        NodeInit::Systemd => {
            spec.cmd = Some(vec!["/sbin/init".into()]);
            spec.user = Some("0".into());
            spec.env.push("container=docker".into());
            spec.tmpfs = vec!["/run".into(), "/run/lock".into()];
            spec.stop_signal = Some(SYSTEMD_STOP_SIGNAL.into());
            if facts.cgroup_v2 {
                // The engine mounts a private cgroup2 tree read-only unless
                // the container is privileged (moby#42040, #46763), and
                // systemd must write it; a private namespace keeps the
                // host's tree out of reach, as kind does.
                spec.private_cgroupns = true;
                spec.privileged = true;
            } else {
                // cgroup v1: the host's hierarchy read-only, in the host's
                // cgroup namespace. A private namespace with a writable
                // mount would let systemd take the host's cgroup root.
                spec.mounts.push(Mount::Bind {
                    source: "/sys/fs/cgroup".into(),
                    target: "/sys/fs/cgroup".into(),
                    read_only: true,
                });
            }
        }
    }
    if node.engine_host {
        engine_host(&mut spec);
    }
    spec
}

/// System calls a node that runs its own engine may not make: what the
/// engine's default profile refuses, less what an inner engine needs
/// (`mount`, `unshare`, `setns`, `pivot_root`, `keyctl`, `clone`…). The
/// capabilities it holds (SYS_ADMIN, NET_ADMIN) gate the rest.
const ENGINE_HOST_DENIED: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "delete_module",
    "fanotify_init",
    "finit_module",
    "init_module",
    "ioperm",
    "iopl",
    "kexec_file_load",
    "kexec_load",
    "lookup_dcookie",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "perf_event_open",
    "quotactl",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "syslog",
    "uselib",
    "userfaultfd",
    "vm86",
    "vm86old",
];

/// The seccomp profile of a node that runs its own engine: everything
/// allowed but [`ENGINE_HOST_DENIED`], on every ABI of the machine (a
/// denial on one ABI only could be bypassed through another).
fn engine_host_seccomp() -> String {
    serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32",
                          "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        "syscalls": [{
            "names": ENGINE_HOST_DENIED,
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": 1,
        }],
    })
    .to_string()
}

/// What a node needs to run a Docker engine without `--privileged`
/// (ENGINE-FACTS, "Nodes that are Docker hosts"): an init that reaps, the
/// capabilities to mount image layers (SYS_ADMIN) and make the engine's
/// NAT chains (NET_ADMIN), a seccomp profile that lets it make containers,
/// and a tmpfs `/run` for its sockets.
fn engine_host(spec: &mut ContainerSpec) {
    spec.init = true;
    spec.cap_add = vec!["SYS_ADMIN".into(), "NET_ADMIN".into()];
    spec.security_opt = vec![format!("seccomp={}", engine_host_seccomp())];
    if !spec.tmpfs.iter().any(|t| t == "/run") {
        spec.tmpfs.push("/run".into());
    }
}

/// IPv4 routes of this machine, from `/proc/net/route`; the engine's own
/// bridges are left out (its network list covers them), and so is the
/// default route (it covers everything).
fn routes_of(table: &str) -> Vec<Ipv4Cidr> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (iface, dest, mask) = (f.first()?, f.get(1)?, f.get(7)?);
            if iface.starts_with("docker") || iface.starts_with("br-") {
                return None;
            }
            let dest = u32::from_str_radix(dest, 16).ok()?.swap_bytes();
            let mask = u32::from_str_radix(mask, 16).ok()?.swap_bytes();
            if mask == 0 {
                return None;
            }
            Ipv4Cidr::new(dest.into(), mask.count_ones() as u8).ok()
        })
        .collect()
}

impl DockerProvider {
    /// Every container on a network, stopped ones too (they join it again
    /// at start); `None` when there is no such network. `what` names the
    /// lookup in an error.
    async fn containers_on_network(
        &self,
        name: &str,
        what: &str,
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
            .map_err(map_err(format!("listing the {what} of network {name}")))
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
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| no_engine(e.to_string()))?;
        docker.ping().await.map_err(|e| no_engine(e.to_string()))?;
        Ok(DockerProvider {
            docker,
            host,
            facts: tokio::sync::OnceCell::new(),
        })
    }

    async fn facts(&self) -> Result<HostFacts> {
        self.facts
            .get_or_try_init(|| async {
                let info = self
                    .docker
                    .info()
                    .await
                    .map_err(map_err("reading engine info"))?;
                Ok(HostFacts {
                    cgroup_v2: info.cgroup_version == Some(SystemInfoCgroupVersionEnum::_2),
                })
            })
            .await
            .copied()
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

    /// Loads an image archive (`docker load`) as it streams in.
    pub async fn load_image(&self, tar: super::ByteStream) -> Result<()> {
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

    /// Starts a container that exists (created or exited).
    pub async fn start(&self, id: &str) -> Result<()> {
        self.start_container(id).await
    }

    /// Whether the engine runs on this machine, whose files mcc can read.
    fn local(&self) -> bool {
        self.host.starts_with("unix://")
    }

    /// The engine's record of a sized volume: an ext4 file system on
    /// `device`, mounted by the `local` driver.
    async fn loop_volume(&self, name: &str, device: String, labels: &Labels) -> Result<VolumeInfo> {
        self.new_volume(VolumeCreateRequest {
            name: Some(name.to_string()),
            driver: Some("local".into()),
            driver_opts: Some(HashMap::from([
                ("type".to_string(), "ext4".to_string()),
                ("device".to_string(), device),
            ])),
            labels: Some(labels.clone()),
            ..Default::default()
        })
        .await
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
        })
    }

    /// The engine's events that pass `filters`, from `since_nano` on.
    fn event_stream(
        &self,
        since_nano: Option<i64>,
        filters: HashMap<String, Vec<String>>,
    ) -> super::EventStream {
        let opts = bollard::query_parameters::EventsOptions {
            since: since_nano.map(|n| format!("{}.{:09}", n / 1_000_000_000, n % 1_000_000_000)),
            until: None,
            filters: Some(filters),
        };
        Box::pin(
            self.docker
                .events(Some(opts))
                .map_err(|e| map_err("reading the engine's events")(e))
                .map_ok(|m| {
                    let actor = m.actor.unwrap_or_default();
                    let labels: Labels = actor.attributes.unwrap_or_default();
                    EngineEvent {
                        kind: m.typ.map(|t| t.to_string()).unwrap_or_default(),
                        action: m.action.unwrap_or_default(),
                        id: actor.id.unwrap_or_default(),
                        name: labels.get("name").cloned().unwrap_or_default(),
                        labels,
                        time_nano: m.time_nano.unwrap_or(0),
                    }
                }),
        )
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
impl Provider for DockerProvider {
    fn endpoint(&self) -> String {
        self.host.clone()
    }

    async fn systemd_privileged(&self) -> Result<Option<String>> {
        Ok(self
            .facts()
            .await?
            .cgroup_v2
            .then(|| SYSTEMD_V2_PRIVILEGED.to_string()))
    }

    async fn host_routes(&self) -> Result<Option<Vec<Ipv4Cidr>>> {
        if !self.local() {
            return Ok(None);
        }
        Ok(std::fs::read_to_string("/proc/net/route")
            .ok()
            .map(|t| routes_of(&t)))
    }

    async fn has_interface(&self, name: &str) -> Result<Option<bool>> {
        let net = std::path::Path::new("/sys/class/net");
        if !self.local() || !net.is_dir() {
            return Ok(None);
        }
        // a name with a slash would reach outside /sys/class/net
        if name.contains('/') || name == "." || name == ".." {
            return Ok(Some(false));
        }
        Ok(Some(net.join(name).exists()))
    }

    async fn create_node(&self, node: &NodeRequest) -> Result<String> {
        let facts = if node.init == NodeInit::Systemd {
            self.facts().await?
        } else {
            HostFacts::default()
        };
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
        self.create_container(&node_container(node, facts, hosts_source))
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

    async fn create_sized_volume(
        &self,
        name: &str,
        size: u64,
        labels: &Labels,
    ) -> Result<VolumeInfo> {
        if !self.local() {
            return Err(Error::Invalid(format!(
                "sized volumes are ext4 file systems on the engine's machine, and the engine is \
                 at {}: run mcc there",
                self.host
            )));
        }
        let n = name.to_string();
        let device = tokio::task::spawn_blocking(move || super::loopfs::make(&n, size))
            .await
            .map_err(|e| Error::Failed(format!("making volume {name}: {e}")))??;
        match self.loop_volume(name, device, labels).await {
            Ok(v) => Ok(v),
            Err(e) => {
                let n = name.to_string();
                let _ = tokio::task::spawn_blocking(move || super::loopfs::release(&n)).await;
                Err(e)
            }
        }
    }

    async fn prepare_sized_volume(&self, name: &str) -> Result<()> {
        if !self.local() {
            return Ok(());
        }
        let v = match self.docker.inspect_volume(name).await {
            Ok(v) => v,
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                return Err(Error::NotFound(format!(
                    "volume {name} is gone from the engine (`mcc volume list`)"
                )))
            }
            Err(e) => return Err(map_err(format!("inspecting volume {name}"))(e)),
        };
        // only what mcc made: an ext4 file system on a loop device
        if v.driver != "local"
            || v.options.get("type").map(String::as_str) != Some("ext4")
            || v.labels.get(labels::ROLE).map(String::as_str) != Some("volume")
        {
            return Ok(());
        }
        let old = v.options.get("device").cloned();
        let (n, o) = (name.to_string(), old.clone());
        let Some(device) =
            tokio::task::spawn_blocking(move || super::loopfs::reattach(&n, o.as_deref()))
                .await
                .map_err(|e| Error::Failed(format!("attaching volume {name}: {e}")))??
        else {
            return Ok(());
        };
        // The engine's record names a device that no longer holds this
        // volume (the host restarted): point it at the one that does.
        let old = old.unwrap_or_else(|| "none".into());
        let users = self.volume_users(name).await?;
        if !users.is_empty() {
            return Err(Error::Conflict(format!(
                "volume {name}: its engine record names {old}, which no longer holds its data \
                 (the host restarted?), and containers still name it: {}; remove them (mcc rm, \
                 or docker rm) and mcc will attach it again",
                users.join(", ")
            )));
        }
        self.remove_volume(name).await?;
        self.loop_volume(name, device.clone(), &v.labels)
            .await
            .map_err(|e| {
                Error::Failed(format!(
                    "volume {name}: its data is on {device} now, but the engine's record could \
                     not be made again ({e}); run again to retry"
                ))
            })?;
        Ok(())
    }

    async fn mark_sized_volume_used(&self, name: &str) -> Result<()> {
        if !self.local() {
            return Ok(());
        }
        let n = name.to_string();
        tokio::task::spawn_blocking(move || super::loopfs::mark_used(&n))
            .await
            .map_err(|e| Error::Failed(format!("marking volume {name} used: {e}")))?
    }

    async fn sized_volume_used(&self, name: &str) -> Result<bool> {
        if !self.local() {
            return Ok(false);
        }
        let n = name.to_string();
        tokio::task::spawn_blocking(move || super::loopfs::was_used(&n))
            .await
            .map_err(|e| Error::Failed(format!("reading whether volume {name} was used: {e}")))?
    }

    async fn own_sized_volume_root(&self, name: &str, uid: u32, gid: u32) -> Result<()> {
        if !self.local() {
            return Ok(());
        }
        let v = self
            .docker
            .inspect_volume(name)
            .await
            .map_err(map_err(format!("inspecting volume {name}")))?;
        let device = match v.options.get("device") {
            Some(d) if v.options.get("type").map(String::as_str) == Some("ext4") => d.clone(),
            _ => return Ok(()),
        };
        let n = name.to_string();
        tokio::task::spawn_blocking(move || super::loopfs::own_root(&n, &device, uid, gid))
            .await
            .map_err(|e| Error::Failed(format!("giving volume {name} to {uid}:{gid}: {e}")))?
    }

    async fn remove_sized_volume(&self, name: &str) -> Result<bool> {
        let existed = self.remove_volume(name).await?;
        if self.local() {
            let n = name.to_string();
            let _ = tokio::task::spawn_blocking(move || super::loopfs::release(&n)).await;
        }
        Ok(existed)
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

    async fn network_users(&self, name: &str) -> Result<Option<Vec<String>>> {
        let Some(list) = self.containers_on_network(name, "users").await? else {
            return Ok(None);
        };
        Ok(Some(
            list.into_iter()
                .filter_map(|c| c.names.and_then(|n| n.into_iter().next()))
                .map(|n| n.trim_start_matches('/').to_string())
                .collect(),
        ))
    }

    async fn network_addresses(&self, name: &str) -> Result<Option<Vec<(String, Ipv4Addr)>>> {
        let Some(list) = self.containers_on_network(name, "addresses").await? else {
            return Ok(None);
        };
        Ok(Some(
            list.into_iter()
                .filter_map(|c| {
                    let who = c.names?.into_iter().next()?;
                    let ep = c.network_settings?.networks?.remove(name)?;
                    // a stopped container has no address now, but takes
                    // its fixed one back when it starts
                    let ip = ep
                        .ip_address
                        .filter(|s| !s.is_empty())
                        .or_else(|| ep.ipam_config.and_then(|i| i.ipv4_address))?;
                    Some((
                        who.trim_start_matches('/').to_string(),
                        ip.parse::<Ipv4Addr>().ok()?,
                    ))
                })
                .collect(),
        ))
    }

    async fn create_volume(&self, name: &str, labels: &Labels) -> Result<VolumeInfo> {
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
                name: v.name,
                mountpoint: v.mountpoint,
                labels: v.labels,
            })),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(map_err(format!("inspecting volume {name}"))(e)),
        }
    }

    async fn remove_volume(&self, name: &str) -> Result<bool> {
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
            })
            .collect())
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        let mut binds = Vec::new();
        let mut mounts = Vec::new();
        for m in &spec.mounts {
            match m {
                // A bind through `Binds` rather than `Mounts`: the engine
                // then accepts a file as source (our /etc/hosts).
                Mount::Bind {
                    source,
                    target,
                    read_only,
                } => binds.push(format!(
                    "{source}:{target}{}",
                    if *read_only { ":ro" } else { "" }
                )),
                Mount::Volume {
                    name,
                    target,
                    labels,
                    read_only,
                } => mounts.push(DockerMount {
                    typ: Some(MountType::VOLUME),
                    source: Some(name.clone()),
                    target: Some(target.clone()),
                    read_only: Some(*read_only),
                    volume_options: Some(MountVolumeOptions {
                        labels: Some(labels.clone()),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            }
        }
        let (network_mode, networking_config) = match &spec.network {
            None if spec.no_network => (Some("none".to_string()), None),
            None => (None, None),
            Some((net, ip, aliases)) => (
                Some(net.clone()),
                Some(NetworkingConfig {
                    endpoints_config: Some(HashMap::from([(
                        net.clone(),
                        EndpointSettings {
                            ipam_config: ip.map(|ip| EndpointIpamConfig {
                                ipv4_address: Some(ip.to_string()),
                                ..Default::default()
                            }),
                            aliases: Some(aliases.clone()),
                            ..Default::default()
                        },
                    )])),
                }),
            ),
        };
        let host_config = HostConfig {
            binds: (!binds.is_empty()).then_some(binds),
            mounts: (!mounts.is_empty()).then_some(mounts),
            network_mode,
            privileged: Some(spec.privileged),
            dns: (!spec.dns.is_empty()).then(|| spec.dns.clone()),
            dns_search: (!spec.dns_search.is_empty()).then(|| spec.dns_search.clone()),
            tmpfs: (!spec.tmpfs.is_empty()).then(|| {
                spec.tmpfs
                    .iter()
                    .map(|p| (p.clone(), String::new()))
                    .collect()
            }),
            cgroupns_mode: spec
                .private_cgroupns
                .then_some(HostConfigCgroupnsModeEnum::PRIVATE),
            restart_policy: spec.restart_unless_stopped.then_some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                maximum_retry_count: None,
            }),
            init: spec.init.then_some(true),
            memory: spec.memory,
            cpu_shares: spec.cpu_shares,
            storage_opt: spec
                .disk
                .map(|d| HashMap::from([("size".to_string(), d.to_string())])),
            port_bindings: (!spec.publish.is_empty()).then(|| {
                spec.publish
                    .iter()
                    .map(|p| {
                        (
                            format!("{p}/tcp"),
                            Some(vec![PortBinding {
                                host_ip: None,
                                host_port: None,
                            }]),
                        )
                    })
                    .collect()
            }),
            cap_add: (!spec.cap_add.is_empty()).then(|| spec.cap_add.clone()),
            security_opt: (!spec.security_opt.is_empty()).then(|| spec.security_opt.clone()),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            hostname: spec.hostname.clone(),
            domainname: spec.domainname.clone(),
            stop_signal: spec.stop_signal.clone(),
            image: Some(spec.image.clone()),
            entrypoint: spec.entrypoint.clone(),
            cmd: spec.cmd.clone(),
            user: spec.user.clone(),
            working_dir: spec.workdir.clone(),
            env: Some(spec.env.clone()),
            labels: Some(spec.labels.clone()),
            exposed_ports: (!spec.publish.is_empty())
                .then(|| spec.publish.iter().map(|p| format!("{p}/tcp")).collect()),
            host_config: Some(host_config),
            networking_config,
            ..Default::default()
        };
        let opts = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        let r = self
            .docker
            .create_container(Some(opts), body)
            .await
            .map_err(map_err(format!("creating container {}", spec.name)))?;
        Ok(r.id)
    }

    async fn start_container(&self, name: &str) -> Result<()> {
        self.docker
            .start_container(name, None)
            .await
            .map_err(map_err(format!("starting container {name}")))
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

    fn events(&self, since_nano: Option<i64>) -> super::EventStream {
        let mut filters = HashMap::new();
        filters.insert("label".to_string(), vec![labels::CLUSTER.to_string()]);
        self.event_stream(since_nano, filters)
    }

    fn destroyed_containers(&self, label: &str) -> super::EventStream {
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            ("event".to_string(), vec!["destroy".to_string()]),
            ("label".to_string(), vec![label.to_string()]),
        ]);
        self.event_stream(None, filters)
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
        let opts = bollard::query_parameters::StatsOptions {
            stream: true,
            one_shot: false,
        };
        let op = format!("reading the resource use of {container}");
        Box::pin(
            self.docker
                .stats(container, Some(opts))
                .map_err(move |e| map_err(op.clone())(e))
                .map_ok(|s| {
                    let cpu = s.cpu_stats.unwrap_or_default();
                    let mem = s.memory_stats.unwrap_or_default();
                    let (rx, tx) = s
                        .networks
                        .unwrap_or_default()
                        .values()
                        .fold((0, 0), |(r, t), n| {
                            (r + n.rx_bytes.unwrap_or(0), t + n.tx_bytes.unwrap_or(0))
                        });
                    let (blk_read, blk_write) = s
                        .blkio_stats
                        .and_then(|b| b.io_service_bytes_recursive)
                        .unwrap_or_default()
                        .iter()
                        .fold((0, 0), |(r, w), e| {
                            let v = e.value.unwrap_or(0);
                            match e.op.as_deref().map(str::to_ascii_lowercase).as_deref() {
                                Some("read") => (r + v, w),
                                Some("write") => (r, w + v),
                                _ => (r, w),
                            }
                        });
                    StatsSample {
                        blk_read_bytes: blk_read,
                        blk_write_bytes: blk_write,
                        cpu_ns: cpu.cpu_usage.and_then(|u| u.total_usage).unwrap_or(0),
                        system_cpu_ns: cpu.system_cpu_usage.unwrap_or(0),
                        online_cpus: cpu.online_cpus.unwrap_or(0),
                        memory_bytes: mem.usage.unwrap_or(0),
                        memory_limit_bytes: mem.limit.unwrap_or(0),
                        rx_bytes: rx,
                        tx_bytes: tx,
                    }
                }),
        )
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
        // The engine's copy API replaces a file by a new one (a new inode),
        // which containers binding the old file never see; and a node must
        // not be asked to do it (its root may have changed its shell, and
        // the volume is read-only there). So a short-lived container of
        // mcc's own, with no network, does the one write.
        const MOUNT: &str = "/mcc-volume";
        let text = String::from_utf8(content.to_vec())
            .map_err(|_| Error::Failed(format!("{path}: content to write is not UTF-8")))?;
        if text.contains('\0') {
            return Err(Error::Failed(format!("{path}: content holds a NUL byte")));
        }
        if path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(Error::Failed(format!("{path}: not a plain relative path")));
        }
        let name = format!(
            "{volume}.write.{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or_default()
                ^ u64::from(std::process::id())
        );
        let mut labels = helper.labels.clone();
        labels.insert(
            crate::model::labels::ROLE.into(),
            crate::model::labels::role::HELPER.into(),
        );
        let spec = ContainerSpec {
            name: name.clone(),
            image: helper.image.clone(),
            entrypoint: Some(vec!["/bin/sh".into()]),
            // Fixed script; the content and the path are its arguments.
            // `1<>` opens the file for writing without truncating it.
            cmd: Some(vec![
                "-c".into(),
                "printf '%s' \"$1\" 1<>\"$2\"".into(),
                "mcc-rewrite".into(),
                text,
                format!("{MOUNT}/{path}"),
            ]),
            user: Some("0".into()),
            labels,
            no_network: true,
            mounts: vec![Mount::Volume {
                name: volume.into(),
                target: MOUNT.into(),
                labels: Labels::new(),
                read_only: false,
            }],
            ..Default::default()
        };
        self.create_container(&spec).await?;
        let ran = async {
            self.docker
                .start_container(&name, None)
                .await
                .map_err(map_err(format!(
                    "starting {name} to rewrite {volume}:{path}"
                )))?;
            let mut wait = self.docker.wait_container(&name, None);
            let code = match wait.next().await {
                Some(Ok(r)) => r.status_code,
                // a non-zero exit comes as an error carrying the code
                Some(Err(BollardError::DockerContainerWaitError { code, .. })) => code,
                Some(Err(e)) => return Err(map_err(format!("waiting for {name}"))(e)),
                None => -1,
            };
            if code != 0 {
                let mut logs = self.follow_logs(&name);
                let mut out = String::new();
                while let Some(Ok(Chunk::Stdout(b) | Chunk::Stderr(b))) = logs.next().await {
                    out.push_str(&String::from_utf8_lossy(&b));
                }
                return Err(Error::Failed(format!(
                    "rewriting {path} on volume {volume} failed (exit {code}): {}",
                    out.trim()
                )));
            }
            Ok(())
        }
        .await;
        let removed = self.remove_container(&name).await;
        ran?;
        removed.map(|_| ())
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

    fn request(init: NodeInit) -> NodeRequest {
        NodeRequest {
            name: "lab-frontend".into(),
            hostname: "frontend".into(),
            domainname: None,
            dns: vec![],
            dns_search: vec![],
            image: "img".into(),
            init,
            env: vec!["A=1".into()],
            labels: Labels::new(),
            network: ("lab-net".into(), None, vec![]),
            volumes: vec![],
            hosts_file: Some(("lab-mcc.1".into(), "hosts".into())),
            host_modules: true,
            privileged: false,
            engine_host: false,
        }
    }

    #[test]
    fn an_engine_host_gets_what_its_engine_needs_and_no_more() {
        let mut r = request(NodeInit::ShellThen("exec \"$@\"".into(), vec!["/x".into()]));
        r.engine_host = true;
        let c = node_container(&r, HostFacts::default(), None);
        assert!(c.init && !c.privileged);
        assert_eq!(c.cap_add, vec!["SYS_ADMIN", "NET_ADMIN"]);
        assert!(c.tmpfs.contains(&"/run".to_string()));
        assert_eq!(c.entrypoint.as_ref().unwrap()[..2], ["/bin/sh", "-c"]);
        assert_eq!(c.cmd, Some(vec!["/x".to_string()]));
        let profile: serde_json::Value =
            serde_json::from_str(c.security_opt[0].strip_prefix("seccomp=").unwrap()).unwrap();
        let denied = profile["syscalls"][0]["names"].as_array().unwrap();
        for s in ["open_by_handle_at", "kexec_load", "init_module", "bpf"] {
            assert!(denied.iter().any(|d| d == s), "{s}");
        }
        for s in ["mount", "pivot_root", "keyctl", "unshare", "setns"] {
            assert!(!denied.iter().any(|d| d == s), "{s}");
        }
        let plain = node_container(&request(NodeInit::Image), HostFacts::default(), None);
        assert!(plain.cap_add.is_empty() && plain.security_opt.is_empty() && !plain.init);
    }

    #[test]
    fn hosts_file_and_modules_are_read_only_binds() {
        let c = node_container(
            &request(NodeInit::Image),
            HostFacts::default(),
            Some("/v/lab-mcc.1/_data/hosts".into()),
        );
        assert!(c.mounts.contains(&Mount::Bind {
            source: "/v/lab-mcc.1/_data/hosts".into(),
            target: "/etc/hosts".into(),
            read_only: true
        }));
        assert!(c.mounts.iter().any(
            |m| matches!(m, Mount::Bind { target, read_only: true, .. } if target == "/lib/modules")
        ));
        assert_eq!(c.cmd, None, "the image's own command");
        assert_eq!(c.user, None);
        assert!(c.restart_unless_stopped);
    }

    #[test]
    fn shell_init_runs_as_root() {
        let c = node_container(
            &request(NodeInit::Shell("x".into())),
            HostFacts::default(),
            None,
        );
        assert_eq!(c.cmd, Some(vec!["/bin/sh".into(), "-c".into(), "x".into()]));
        assert_eq!(c.user.as_deref(), Some("0"));
    }

    #[test]
    fn systemd_recipe_per_cgroup_version() {
        let v1 = node_container(
            &request(NodeInit::Systemd),
            HostFacts { cgroup_v2: false },
            None,
        );
        assert_eq!(v1.cmd, Some(vec!["/sbin/init".to_string()]));
        assert_eq!(v1.stop_signal.as_deref(), Some("SIGRTMIN+3"));
        assert_eq!(v1.tmpfs, vec!["/run", "/run/lock"]);
        assert!(v1.env.contains(&"container=docker".to_string()));
        assert!(!v1.private_cgroupns && !v1.privileged);
        assert!(v1.mounts.contains(&Mount::Bind {
            source: "/sys/fs/cgroup".into(),
            target: "/sys/fs/cgroup".into(),
            read_only: true
        }));
        let v2 = node_container(
            &request(NodeInit::Systemd),
            HostFacts { cgroup_v2: true },
            None,
        );
        assert!(v2.private_cgroupns && v2.privileged);
        assert!(!v2
            .mounts
            .iter()
            .any(|m| matches!(m, Mount::Bind { target, .. } if target == "/sys/fs/cgroup")));
    }

    #[test]
    fn routes_skip_default_and_engine_bridges() {
        let table =
            "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n\
            eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
            eth0\t0000000A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
            docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        let routes = routes_of(table);
        assert_eq!(routes, vec!["10.0.0.0/16".parse::<Ipv4Cidr>().unwrap()]);
    }
}
