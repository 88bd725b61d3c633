//! The container engine as mcc sees it: a narrow trait, and its Docker
//! implementation (which also drives Podman's Docker-compatible socket).
//!
//! This is the only module that talks to an engine. Everything it returns
//! is mcc's own types, so the cluster logic can run against a fake in tests.

mod docker;
/// An in-memory engine for tests of pure logic (planning, naming,
/// scheduling, the API's routes): also for other crates' tests, behind
/// the `fake` feature. It never stands in for the real-engine tests.
#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod store;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::pin::Pin;

use async_trait::async_trait;
use futures_util::Stream;
use tokio::io::AsyncWrite;

pub use docker::swarm;
pub use docker::{DockerProvider, MultiHost};

use crate::error::Result;

/// The engine mcc works on, for every caller (the CLI, `mcc serve`, shell
/// completion): the one place that picks a provider. The Docker engine
/// `DOCKER_HOST` names (or the local socket); with hosts listed (`mcc host
/// add`, the user's hosts file), that engine and the hosts as one
/// ([`MultiHost`]), so that clusters over several hosts are seen and made.
pub async fn connect() -> Result<std::sync::Arc<dyn Engine>> {
    // no HOME and no MCC_HOSTS_FILE (a bare service): no hosts listed
    let file = crate::hosts::file::HostsFile::default_path()
        .ok()
        .map(crate::hosts::file::HostsFile::at);
    connect_with_hosts(file.as_ref()).await
}

/// The engine of `mcc serve`: the home engine and the hosts its `file`
/// lists, followed as the file changes (hosts added or removed through
/// the daemon while it runs), with or without hosts at the start.
pub async fn connect_following(
    file: &crate::hosts::file::HostsFile,
) -> Result<std::sync::Arc<dyn Engine>> {
    let home = DockerProvider::connect().await?;
    Ok(std::sync::Arc::new(MultiHost::following(home, file)?))
}

/// [`connect`], with the hosts `file` lists (none: no hosts), read once.
async fn connect_with_hosts(
    file: Option<&crate::hosts::file::HostsFile>,
) -> Result<std::sync::Arc<dyn Engine>> {
    let home = DockerProvider::connect().await?;
    let hosts = match file {
        Some(f) => f.load()?,
        None => Vec::new(),
    };
    if hosts.is_empty() {
        return Ok(std::sync::Arc::new(home));
    }
    Ok(std::sync::Arc::new(MultiHost::new(home, hosts)))
}

/// The engine of a Docker worker (`--docker-workers`) at `addr`
/// (`tcp://IP:2376`), reached with a client key, certificate and the
/// cluster's authority, answering within `timeout_secs`.
pub async fn connect_worker(
    addr: &str,
    tls: &(std::path::PathBuf, std::path::PathBuf, std::path::PathBuf),
    timeout_secs: u64,
) -> Result<std::sync::Arc<dyn Engine>> {
    Ok(std::sync::Arc::new(
        DockerProvider::connect_tls(addr, &tls.0, &tls.1, &tls.2, timeout_secs).await?,
    ))
}
use crate::model::Ipv4Cidr;

pub type Labels = HashMap<String, String>;

/// What an engine's host is, as far as it changes what mcc makes on it.
/// Each part is `None` where the engine cannot tell from here (an engine
/// on another machine): callers then leave the check to the engine.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostInfo {
    /// Why nodes that run systemd must be privileged on this host, if they
    /// must (Docker on cgroup v2).
    pub systemd_privileged: Option<String>,
    /// The host's IPv4 routes that a bridged network must not shadow.
    pub routes: Option<Vec<Ipv4Cidr>>,
    /// Names of the host's network interfaces (parents of a macvlan).
    pub interfaces: Option<Vec<String>>,
    /// The hosts a node may be placed on (`NodeRequest::placement`);
    /// none for an engine of one host.
    pub hosts: Vec<String>,
    /// The zone of each of those hosts that has one.
    pub zones: std::collections::BTreeMap<String, String>,
}

/// What an image runs when a container gives no command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageInfo {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
}

impl ImageInfo {
    /// Whether the image, run as it is, would exit at once: no entrypoint
    /// and a shell (or nothing) as its command, as base images have. Such
    /// a node needs a first process of mcc's to keep running.
    pub fn exits_at_once(&self) -> bool {
        if !self.entrypoint.is_empty() {
            return false;
        }
        match self.cmd.first() {
            None => true,
            Some(cmd) => {
                let base = cmd.rsplit('/').next().unwrap_or(cmd);
                matches!(
                    base,
                    "sh" | "bash" | "ash" | "dash" | "zsh" | "ksh" | "fish"
                )
            }
        }
    }
}

/// What a node's first process is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeInit {
    /// The image's own entrypoint and command.
    Image,
    /// systemd as PID 1, with whatever the engine's host needs for it.
    Systemd,
    /// A fixed script of mcc's, run by `/bin/sh` as root.
    Shell(String),
    /// A fixed script of mcc's, run by `/bin/sh` as root with these
    /// arguments (`"$@"`: the image's own entrypoint and command).
    ShellThen(String, Vec<String>),
}

/// A node as the cluster logic describes it. The provider decides how its
/// engine makes one (the Docker provider: a container, with the cgroup
/// recipe of its host for systemd and a bind of the hosts file), and says
/// so when it cannot.
#[derive(Clone, Debug)]
pub struct NodeRequest {
    pub name: String,
    pub hostname: String,
    pub domainname: Option<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub image: String,
    pub init: NodeInit,
    pub env: Vec<String>,
    pub labels: Labels,
    /// Network to join, with a static address and DNS aliases.
    pub network: (String, Option<Ipv4Addr>, Vec<String>),
    /// Volumes (only [`Mount::Volume`]: paths of the host are the
    /// provider's business).
    pub volumes: Vec<Mount>,
    /// `(volume, path in it)` of a file that is the node's `/etc/hosts`,
    /// read-only, seen at once when rewritten in place.
    pub hosts_file: Option<(String, String)>,
    /// The host's kernel modules, read-only at `/lib/modules`.
    pub host_modules: bool,
    pub privileged: bool,
    /// The host the node must run on (a host of a provider whose nodes
    /// span hosts); `None`: the provider's choice. A provider of one host
    /// refuses any.
    pub placement: Option<String>,
    /// The node runs a container engine of its own (`--docker-workers`):
    /// it gets what that engine needs (the Docker provider: an init, the
    /// capabilities and system calls of ENGINE-FACTS, a tmpfs /run).
    pub engine_host: bool,
    /// TCP ports of the node published on free ports of its host, for
    /// mcc to reach from outside the cluster's network where that network
    /// is not routed to mcc's machine (an overlay over hosts): see
    /// [`Engine::host_address`] and [`ContainerInfo::ports`].
    pub publish: Vec<u16>,
    /// The host address they are published on; `None`: every address.
    /// The provider of several hosts sets it to the host's own.
    pub publish_on: Option<Ipv4Addr>,
}

#[derive(Clone, Debug)]
pub struct NetworkSpec {
    pub name: String,
    /// `bridge` or `macvlan`.
    pub driver: String,
    /// Host interface of a macvlan network.
    pub parent: Option<String>,
    pub subnet: Ipv4Cidr,
    pub gateway: Ipv4Addr,
    pub ip_range: Option<Ipv4Cidr>,
    pub labels: Labels,
}

#[derive(Clone, Debug)]
pub struct NetworkInfo {
    pub name: String,
    pub subnets: Vec<Ipv4Cidr>,
    pub labels: Labels,
}

#[derive(Clone, Debug)]
pub struct VolumeInfo {
    pub name: String,
    /// Where the volume's data lives on the engine's host (one on a
    /// shared export: where the engine mounts it).
    pub mountpoint: String,
    pub labels: Labels,
    /// The host whose engine has it (an engine of several hosts; the
    /// first that listed it, for one on a shared export).
    pub host: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mount {
    /// A named volume; created with `labels` if it does not exist yet.
    Volume {
        name: String,
        target: String,
        labels: Labels,
        /// Mounted read-only: the container cannot change what is on it.
        read_only: bool,
    },
    /// A path of the engine's host.
    Bind {
        source: String,
        target: String,
        read_only: bool,
    },
}

/// A container that is not a node, as mcc asks for one (`mcc run`, a
/// service's replica, a cluster's record): what it runs, on which network,
/// with which volumes and limits. How the engine makes it is the
/// provider's (the Docker provider adds nothing of its own).
#[derive(Clone, Debug, Default)]
pub struct ContainerRequest {
    pub name: String,
    pub image: String,
    /// Replaces the image's entrypoint; `None` keeps it.
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the image's command; `None` keeps it.
    pub cmd: Option<Vec<String>>,
    /// User of the first process (`0` for root); `None`: the image's `USER`.
    pub user: Option<String>,
    pub env: Vec<String>,
    pub labels: Labels,
    /// Network to join, with a static address and DNS aliases.
    pub network: Option<(String, Option<Ipv4Addr>, Vec<String>)>,
    /// No network at all (not even the engine's default one).
    pub no_network: bool,
    /// Volumes to mount; a sized one is made ready to mount first (after
    /// a host restart, say).
    pub mounts: Vec<Mount>,
    /// TCP ports of the container published on free ports of the host.
    pub publish: Vec<u16>,
    pub limits: Limits,
    /// Working directory of the first process.
    pub workdir: Option<String>,
    /// Restart with the engine unless stopped by the user.
    pub restart_unless_stopped: bool,
}

/// What a container may use. The engine enforces them, and says through
/// [`Engine::refuse_limits`] which it cannot before anything is made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Memory, in bytes.
    pub memory: Option<u64>,
    /// CPU shares: a relative weight, 1024 being one CPU's worth.
    pub cpu_shares: Option<u64>,
    /// Size of the container's own disk (its writable layer), in bytes.
    pub disk: Option<u64>,
}

/// Which of a container's [`Limits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Memory,
    Cpu,
    Disk,
}

/// A container as `mcc status` shows it.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct ContainerStatus {
    pub id: String,
    pub name: String,
    pub state: String,
    pub exit_code: Option<i64>,
    pub image: String,
    pub labels: Labels,
    /// Address on each network.
    pub ips: std::collections::BTreeMap<String, String>,
    /// Bytes; none when unlimited.
    pub memory: Option<i64>,
    pub cpu_shares: Option<i64>,
    /// Writable layer size in bytes, if limited.
    pub disk: Option<String>,
    pub user: String,
    pub workdir: String,
    /// `volume:path` of each volume mounted.
    pub volumes: Vec<String>,
    pub started: Option<String>,
    pub finished: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
    Dead,
    Removing,
    Unknown(String),
}

impl ContainerState {
    pub fn as_str(&self) -> &str {
        match self {
            ContainerState::Created => "created",
            ContainerState::Running => "running",
            ContainerState::Paused => "paused",
            ContainerState::Restarting => "restarting",
            ContainerState::Exited => "exited",
            ContainerState::Dead => "dead",
            ContainerState::Removing => "removing",
            ContainerState::Unknown(s) => s,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub image: String,
    pub state: ContainerState,
    pub labels: Labels,
    /// Address on each network, by network name.
    pub addresses: HashMap<String, Ipv4Addr>,
    /// Published TCP ports: (the container's, the host's).
    pub ports: Vec<(u16, u16)>,
    /// The host it runs on, for an engine of several hosts (`mcc host`);
    /// `None` on the engine mcc is pointed at.
    pub host: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct ExecSpec {
    pub cmd: Vec<String>,
    /// User to run as (`0` for root); `None`: the container's user.
    pub user: Option<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub tty: bool,
    pub stdin: bool,
}

/// A piece of a process's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Chunk {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
}

pub type OutputStream = Pin<Box<dyn Stream<Item = Result<Chunk>> + Send>>;
/// Bytes as they come (an image being saved, say).
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<bytes::Bytes>> + Send>>;
pub type InputSink = Pin<Box<dyn AsyncWrite + Send>>;

/// A process started in a container, with its streams.
pub struct Attached {
    pub id: String,
    pub output: OutputStream,
    pub input: InputSink,
}

/// Something that happened to an object carrying the `mcc.cluster` label,
/// from the engine's event stream.
#[derive(Clone, Debug, Default)]
pub struct EngineEvent {
    pub object: EventObject,
    pub action: EventAction,
    pub id: String,
    /// The object's name (containers: without the leading '/').
    pub name: String,
    pub labels: Labels,
    /// When, in nanoseconds since the Unix epoch; resume after it with
    /// [`Engine::events`]'s `since`.
    pub time_nano: i64,
    /// For [`EventAction::Lost`]: why the engine is no longer heard.
    pub detail: String,
}

impl EngineEvent {
    /// The event that ends a stream whose engine stopped answering.
    pub fn lost(detail: impl Into<String>) -> EngineEvent {
        EngineEvent {
            object: EventObject::Engine,
            action: EventAction::Lost,
            detail: detail.into(),
            ..EngineEvent::default()
        }
    }
}

/// An engine's event stream as mcc reads it: the provider's own items,
/// then, when the engine fails or closes the stream, one
/// [`EventAction::Lost`] event (with the error's text) and the end. A
/// consumer thus sees an engine lost as an event, whatever the engine, and
/// never an error item.
pub fn until_lost<S>(events: S) -> EventStream
where
    S: Stream<Item = Result<EngineEvent>> + Send + 'static,
{
    use futures_util::StreamExt;
    let events: EventStream = Box::pin(events);
    Box::pin(futures_util::stream::unfold(
        Some(events),
        |state| async move {
            let mut events = state?;
            let lost = match events.next().await {
                Some(Ok(e)) => return Some((Ok(e), Some(events))),
                Some(Err(e)) => EngineEvent::lost(e.to_string()),
                None => EngineEvent::lost("the engine closed its event stream"),
            };
            Some((Ok(lost), None))
        },
    ))
}

/// What an engine event is about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EventObject {
    Container,
    Network,
    Volume,
    /// The engine itself (its loss).
    Engine,
    /// Images, plugins, the engine's own configuration…
    #[default]
    Other,
}

impl EventObject {
    pub fn as_str(&self) -> &'static str {
        match self {
            EventObject::Container => "container",
            EventObject::Network => "network",
            EventObject::Volume => "volume",
            EventObject::Engine => "engine",
            EventObject::Other => "other",
        }
    }
}

/// What happened to the object, in a provider's neutral terms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EventAction {
    Created,
    Started,
    Restarted,
    /// Asked to stop (the process then dies).
    Stopped,
    /// Sent a signal to end.
    Killed,
    /// Its process ended, with this exit code when the engine says it.
    Died {
        code: Option<i64>,
    },
    OutOfMemory,
    Removed,
    Paused,
    Unpaused,
    Renamed,
    Updated,
    /// A health check's verdict changed.
    Health,
    /// A container joined or left a network (on the network's event).
    Connected,
    Disconnected,
    /// The engine stopped answering or closed the stream: the last event
    /// of a stream ([`until_lost`]); follow again (with `since`) to resume.
    Lost,
    /// What changes nothing mcc shows: execs, attaches, file reads…
    #[default]
    Other,
}

impl EventAction {
    /// The engine's own word for it, as the event log says it.
    pub fn as_str(&self) -> &'static str {
        match self {
            EventAction::Created => "create",
            EventAction::Started => "start",
            EventAction::Restarted => "restart",
            EventAction::Stopped => "stop",
            EventAction::Killed => "kill",
            EventAction::Died { .. } => "die",
            EventAction::OutOfMemory => "oom",
            EventAction::Removed => "destroy",
            EventAction::Paused => "pause",
            EventAction::Unpaused => "unpause",
            EventAction::Renamed => "rename",
            EventAction::Updated => "update",
            EventAction::Health => "health_status",
            EventAction::Connected => "connect",
            EventAction::Disconnected => "disconnect",
            EventAction::Lost => "lost",
            EventAction::Other => "other",
        }
    }

    /// Whether a container that had it is no longer running (or gone).
    pub fn ends(&self) -> bool {
        matches!(
            self,
            EventAction::Died { .. }
                | EventAction::Stopped
                | EventAction::Killed
                | EventAction::Removed
                | EventAction::OutOfMemory
        )
    }
}

/// One sample of a container's resource use, as counters since it started.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatsSample {
    /// CPU time the container used, in nanoseconds.
    pub cpu_ns: u64,
    /// CPU time the whole host used, in nanoseconds (for a percentage).
    pub system_cpu_ns: u64,
    pub online_cpus: u32,
    pub memory_bytes: u64,
    pub memory_limit_bytes: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Bytes read from and written to block devices.
    pub blk_read_bytes: u64,
    pub blk_write_bytes: u64,
}

pub type EventStream = Pin<Box<dyn Stream<Item = Result<EngineEvent>> + Send>>;
pub type StatsStream = Pin<Box<dyn Stream<Item = Result<StatsSample>> + Send>>;

/// What a provider may use to do work on a cluster's volumes outside any
/// node: an image of the cluster's and labels for what it makes, so that
/// `gc` finds it after a crash.
#[derive(Clone, Debug)]
pub struct Helper {
    pub image: String,
    pub labels: Labels,
}

/// The engine operations mcc needs; deliberately few.
#[async_trait]
pub trait Engine: Send + Sync {
    /// Where the engine is and which version answers, e.g. for errors.
    fn endpoint(&self) -> String;

    /// Where this engine's clusters keep their claims, records, files and
    /// locks (the Docker provider: a [`crate::provider::store::MetaStore`] on the
    /// engine itself, with locks of this host). A provider whose nodes
    /// span hosts brings a store that every host reaches.
    fn store(
        self: std::sync::Arc<Self>,
    ) -> std::sync::Arc<dyn crate::provider::store::ClusterStore>;

    /// What the engine's host is, as far as it changes what mcc makes on
    /// it: read once per engine, cheap to ask again.
    async fn host(&self) -> Result<HostInfo>;

    /// Creates (does not start) a node; a name in use is [`crate::Error::Conflict`].
    async fn create_node(&self, node: &NodeRequest) -> Result<String>;

    /// `None` when the image is not present locally.
    async fn image(&self, image: &str) -> Result<Option<ImageInfo>>;
    /// Pulls an image, reporting progress lines.
    async fn pull(&self, image: &str, progress: &(dyn Fn(String) + Send + Sync)) -> Result<()>;

    /// Creates a network; a subnet another network holds is
    /// [`crate::Error::Conflict`].
    async fn create_network(&self, spec: &NetworkSpec) -> Result<()>;
    /// `Ok(false)` when there was no such network.
    async fn remove_network(&self, name: &str) -> Result<bool>;
    /// Every network, or those carrying `label=value` when given.
    async fn networks(&self, label: Option<(&str, &str)>) -> Result<Vec<NetworkInfo>>;
    /// Every container on a network, mcc's or not, running or not, by
    /// name, with the address it holds there: a running container's, or
    /// the fixed one a stopped container takes back at its start; `None`
    /// when there is no such network.
    async fn network_members(&self, name: &str) -> Result<Option<Vec<(String, Option<Ipv4Addr>)>>>;

    /// Creates a volume; with `size` (bytes) one whose size is enforced:
    /// writes past it fail with "No space left on device" (the Docker
    /// provider: an ext4 image on a loop device of the engine's host).
    /// Refused, saying why, where the engine cannot enforce a size.
    async fn create_volume(
        &self,
        name: &str,
        size: Option<u64>,
        labels: &Labels,
    ) -> Result<VolumeInfo>;
    async fn volume(&self, name: &str) -> Result<Option<VolumeInfo>>;
    /// Removes a volume and whatever holds its data; `Ok(false)` when
    /// there was none.
    async fn remove_volume(&self, name: &str) -> Result<bool>;
    async fn volumes(&self, label: Option<(&str, &str)>) -> Result<Vec<VolumeInfo>>;
    /// Records, where no container can write, that a container has used a
    /// sized volume: ephemeral ones go once used and left by all.
    async fn mark_volume_used(&self, name: &str) -> Result<()>;
    /// Whether [`Engine::mark_volume_used`] was called for it.
    async fn volume_used(&self, name: &str) -> Result<bool>;
    /// Gives the root folder of a sized volume that no container mounts
    /// to `uid:gid` (a fresh volume, first mounted for a `--user`),
    /// following no path a container could have changed.
    async fn own_volume_root(&self, name: &str, uid: u32, gid: u32) -> Result<()>;
    /// Names of the containers (running or not) that mount a volume.
    async fn volume_users(&self, name: &str) -> Result<Vec<String>>;
    /// What the engine says of a container now; `None` if there is none.
    async fn container_status(&self, id: &str) -> Result<Option<ContainerStatus>>;

    /// Which of `limits` this engine cannot enforce, and why (a value out
    /// of its range): asked before anything is made.
    fn refuse_limits(&self, limits: &Limits) -> Option<(Limit, String)>;
    /// Creates (does not start) a container; a name in use is
    /// [`crate::Error::Conflict`], a limit the engine cannot enforce on
    /// this host [`crate::Error::Invalid`].
    async fn create_container(&self, req: &ContainerRequest) -> Result<String>;
    async fn start_container(&self, name: &str) -> Result<()>;
    async fn stop_container(&self, name: &str, timeout_secs: i64) -> Result<()>;
    /// Removes a container, running or not, with its anonymous volumes.
    async fn remove_container(&self, name: &str) -> Result<bool>;
    /// Every container (running or not) carrying `label=value`, or the label at all.
    async fn containers(&self, label: &str, value: Option<&str>) -> Result<Vec<ContainerInfo>>;

    /// Starts a process in a running container with its streams attached;
    /// a container that is not running is [`crate::Error::Conflict`].
    async fn exec_attach(&self, container: &str, spec: &ExecSpec) -> Result<Attached>;
    /// A container's output from its start, following it as it comes.
    fn follow_logs(&self, container: &str) -> OutputStream;
    /// Exit code of a finished exec.
    async fn exec_exit_code(&self, exec_id: &str) -> Result<i64>;
    async fn exec_resize(&self, exec_id: &str, rows: u16, cols: u16) -> Result<()>;

    /// Rewrites `path` (relative) on volume `volume` in place, keeping the
    /// file itself (its inode), so that containers which bind it see the
    /// new content without a restart. The content is written in one piece
    /// over the old one and the file is never truncated: callers pad it to
    /// at least the old length. `helper` says what may run the write (an
    /// image with `/bin/sh`) and how to label anything made for it.
    async fn rewrite_in_place(
        &self,
        volume: &str,
        path: &str,
        content: &[u8],
        helper: &Helper,
    ) -> Result<()>;

    /// Events of objects carrying `label` (any value: `mcc.cluster` for
    /// the clusters', `mcc.volumes` for containers that mount volumes), as
    /// they happen, whoever causes them; with `since` (nanoseconds since
    /// the epoch) those after it first, so a watcher that reconnects misses
    /// none. The stream ends with one [`EventAction::Lost`] event when the
    /// engine fails or closes it ([`until_lost`]), never with an error.
    fn events(&self, label: &str, since_nano: Option<i64>) -> EventStream;
    /// A running container's resource use, a sample about every second,
    /// until it stops (one stream, not a poll per sample).
    fn stats(&self, container: &str) -> StatsStream;
    /// An image as a tar archive (`docker save`), streamed.
    fn export_image(&self, image: &str) -> ByteStream;
    /// Loads an image from a tar archive made by [`Engine::export_image`]
    /// (`docker load`): how a worker's engine gets an image without a
    /// registry.
    async fn load_image(&self, tar: ByteStream) -> Result<()>;

    /// Extracts a tar archive into directory `dir` of a container (running or not).
    async fn upload(&self, container: &str, dir: &str, tar: Vec<u8>) -> Result<()>;

    /// The hosts that did not answer this engine's latest listing (an
    /// engine of several hosts): their nodes are unreachable, not gone.
    fn unreachable_hosts(&self) -> Vec<String> {
        Vec::new()
    }

    /// The address mcc reaches `host` (a [`ContainerInfo::host`]) at,
    /// where a node's published ports are (an engine of several hosts);
    /// `None` for an engine of one host, whose nodes mcc reaches on their
    /// own network.
    async fn host_address(&self, _host: &str) -> Result<Option<Ipv4Addr>> {
        Ok(None)
    }

    /// The hosts the engine's managers have lost now (an engine of several
    /// hosts: a swarm node down or a manager unreachable, its link cut or
    /// its machine gone): no node can be made on them.
    async fn lost_hosts(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
    /// A tar archive of `path` in a container (running or not).
    async fn download(&self, container: &str, path: &str) -> Result<Vec<u8>>;
}

/// Runs a command to completion, collecting stdout and stderr together.
pub async fn exec_collect(
    provider: &dyn Engine,
    container: &str,
    spec: &ExecSpec,
) -> Result<(i64, Vec<u8>)> {
    use futures_util::StreamExt;
    let mut attached = provider.exec_attach(container, spec).await?;
    drop(attached.input);
    let mut out = Vec::new();
    while let Some(chunk) = attached.output.next().await {
        match chunk? {
            Chunk::Stdout(b) | Chunk::Stderr(b) => out.extend_from_slice(&b),
        }
    }
    let code = provider.exec_exit_code(&attached.id).await?;
    Ok((code, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_or_closed_stream_ends_with_one_lost_event() {
        use futures_util::StreamExt;
        let ev = |name: &str| {
            Ok(EngineEvent {
                name: name.into(),
                ..EngineEvent::default()
            })
        };
        let failing = futures_util::stream::iter(vec![
            ev("a"),
            Err(crate::Error::Failed("connection reset".into())),
            ev("never seen"),
        ]);
        let got: Vec<EngineEvent> = until_lost(failing).map(|r| r.unwrap()).collect().await;
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].name, "a");
        assert_eq!(
            (got[1].object, got[1].action),
            (EventObject::Engine, EventAction::Lost)
        );
        assert!(got[1].detail.contains("connection reset"), "{:?}", got[1]);

        let closed = futures_util::stream::iter(vec![ev("a")]);
        let got: Vec<EngineEvent> = until_lost(closed).map(|r| r.unwrap()).collect().await;
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[1].action, EventAction::Lost);
        assert!(got[1].detail.contains("closed"), "{:?}", got[1]);
    }

    #[test]
    fn only_shell_images_exit_at_once() {
        let img = |ep: &[&str], cmd: &[&str]| ImageInfo {
            entrypoint: ep.iter().map(|s| s.to_string()).collect(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
        };
        assert!(img(&[], &[]).exits_at_once());
        assert!(img(&[], &["/bin/sh"]).exits_at_once());
        assert!(img(&[], &["bash"]).exits_at_once());
        assert!(!img(&[], &["/sbin/init"]).exits_at_once());
        assert!(!img(&["dockerd-entrypoint.sh"], &[]).exits_at_once());
    }
}
