//! An engine in memory, for tests of the cluster logic without Docker:
//! containers, networks and volumes (each a tree of files, so that the
//! meta volume's hosts, members and state can be read back), the few
//! commands mcc runs in nodes, and faults injected at any step. It records
//! every call, so a test can say what was made, in which order, and what
//! a rollback removed.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{
    Attached, Chunk, ContainerInfo, ContainerRequest, ContainerState, Engine, ExecSpec, Helper,
    ImageInfo, Labels, Mount, NetworkInfo, NetworkSpec, NodeRequest, OutputStream, VolumeInfo,
};
use crate::error::{Error, Result};
use crate::model::{labels, Ipv4Cidr};

/// How long making or starting a container takes here.
const MAKE_DELAY: std::time::Duration = std::time::Duration::from_millis(10);

/// An engine operation, as faults and the call record name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    CreateNetwork,
    RemoveNetwork,
    CreateVolume,
    RemoveVolume,
    CreateContainer,
    CreateNode,
    Start,
    Stop,
    RemoveContainer,
    Exec,
    Upload,
    Download,
    Rewrite,
}

/// Makes calls of `op` fail: the `nth` one (1-based) or every one, and
/// only those whose object's name contains `name` when given.
#[derive(Clone, Debug)]
pub struct Fault {
    pub op: Op,
    pub nth: Option<usize>,
    pub name: Option<String>,
}

#[derive(Clone, Debug, Default)]
struct Container {
    id: String,
    image: String,
    labels: Labels,
    running: bool,
    /// `(volume, mount point)`.
    mounts: Vec<(String, String)>,
    network: Option<(String, Option<Ipv4Addr>)>,
}

#[derive(Clone, Debug, Default)]
struct Volume {
    labels: Labels,
    /// Files by path inside the volume.
    files: BTreeMap<String, Vec<u8>>,
}

#[derive(Default)]
struct State {
    images: HashMap<String, ImageInfo>,
    containers: BTreeMap<String, Container>,
    networks: BTreeMap<String, (Ipv4Cidr, Labels)>,
    volumes: BTreeMap<String, Volume>,
    faults: Vec<Fault>,
    counts: HashMap<Op, usize>,
    calls: Vec<(Op, String)>,
    /// Context runs that fail, by hostname: `(script, exit code)`.
    script_failures: HashMap<String, (String, i64)>,
    exec_codes: HashMap<String, i64>,
    next_id: u64,
    /// Sized volumes a container has used.
    used_volumes: std::collections::BTreeSet<String>,
    /// Sized volumes whose root was given away: (volume, uid, gid).
    owned_volumes: Vec<(String, u32, u32)>,
}

/// The engine in memory.
#[derive(Default)]
pub struct FakeProvider {
    state: Mutex<State>,
}

fn filtered(l: &Labels, label: Option<(&str, &str)>) -> bool {
    match label {
        None => true,
        Some((k, v)) => l.get(k).map(String::as_str) == Some(v),
    }
}

impl FakeProvider {
    /// The sized volumes whose root folder was given away, in order.
    pub fn owned_volumes(&self) -> Vec<(String, u32, u32)> {
        self.lock().owned_volumes.clone()
    }

    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An image the engine has; `entrypoint` makes it a service image
    /// (nodes run the image's own process and get their scripts by exec).
    pub fn add_image(&self, name: &str, entrypoint: bool) {
        let info = ImageInfo {
            entrypoint: if entrypoint {
                vec!["/usr/bin/service".into()]
            } else {
                vec![]
            },
            cmd: vec!["/bin/sh".into()],
        };
        self.lock().images.insert(name.into(), info);
    }

    pub fn remove_image(&self, name: &str) {
        self.lock().images.remove(name);
    }

    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// The context's scripts fail on this node with this exit code.
    pub fn fail_script(&self, hostname: &str, script: &str, code: i64) {
        self.lock()
            .script_failures
            .insert(hostname.into(), (script.into(), code));
    }

    /// How many calls of `op` were made (failed ones included).
    pub fn count(&self, op: Op) -> usize {
        self.lock().calls.iter().filter(|(o, _)| *o == op).count()
    }

    pub fn calls(&self) -> Vec<(Op, String)> {
        self.lock().calls.clone()
    }

    /// Names of every object labelled with the cluster: containers,
    /// networks, volumes.
    pub fn objects_of(&self, cluster: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
        let s = self.lock();
        let of = |l: &Labels| l.get(labels::CLUSTER).map(String::as_str) == Some(cluster);
        (
            s.containers
                .iter()
                .filter(|(_, c)| of(&c.labels))
                .map(|(n, _)| n.clone())
                .collect(),
            s.networks
                .iter()
                .filter(|(_, (_, l))| of(l))
                .map(|(n, _)| n.clone())
                .collect(),
            s.volumes
                .iter()
                .filter(|(_, v)| of(&v.labels))
                .map(|(n, _)| n.clone())
                .collect(),
        )
    }

    /// A file of a volume, as text.
    pub fn file(&self, volume: &str, path: &str) -> Option<String> {
        let s = self.lock();
        let v = s.volumes.get(volume)?;
        v.files
            .get(path)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }

    /// Sets a label on a container (labels are fixed on a real engine; a
    /// test uses this to stand for what another process made).
    pub fn set_label(&self, container: &str, key: &str, value: &str) {
        if let Some(c) = self.lock().containers.get_mut(container) {
            c.labels.insert(key.into(), value.into());
        }
    }

    /// A container made behind mcc's back, running, with these labels.
    pub fn add_container(&self, name: &str, image: &str, labels: Labels) {
        let mut s = self.lock();
        s.next_id += 1;
        let id = format!("{:064x}", s.next_id);
        s.containers.insert(
            name.into(),
            Container {
                id,
                image: image.into(),
                labels,
                running: true,
                ..Default::default()
            },
        );
    }

    /// Records the call and fails it if a fault says so.
    fn call(&self, op: Op, name: &str) -> Result<()> {
        let mut s = self.lock();
        s.calls.push((op, name.to_string()));
        let n = {
            let c = s.counts.entry(op).or_default();
            *c += 1;
            *c
        };
        let hit = s.faults.iter().any(|f| {
            f.op == op
                && f.nth.is_none_or(|k| k == n)
                && f.name.as_deref().is_none_or(|x| name.contains(x))
        });
        if hit {
            return Err(Error::Engine {
                op: format!("{op:?} {name}"),
                status: Some(500),
                message: "injected fault".into(),
            });
        }
        Ok(())
    }

    fn insert_container(
        &self,
        name: &str,
        image: &str,
        labels: &Labels,
        mounts: &[Mount],
        network: Option<(String, Option<Ipv4Addr>)>,
    ) -> Result<String> {
        let mut s = self.lock();
        if s.containers.contains_key(name) {
            return Err(Error::Conflict(format!("container name {name} is in use")));
        }
        if !s.images.contains_key(image) {
            return Err(Error::NotFound(format!("no such image: {image}")));
        }
        let mut vols = Vec::new();
        for m in mounts {
            if let Mount::Volume {
                name: v,
                target,
                labels,
                ..
            } = m
            {
                s.volumes.entry(v.clone()).or_insert_with(|| Volume {
                    labels: labels.clone(),
                    files: BTreeMap::new(),
                });
                vols.push((v.clone(), target.clone()));
            }
        }
        s.next_id += 1;
        let id = format!("{:064x}", s.next_id);
        s.containers.insert(
            name.into(),
            Container {
                id: id.clone(),
                image: image.into(),
                labels: labels.clone(),
                running: false,
                mounts: vols,
                network,
            },
        );
        Ok(id)
    }

    /// A container's name, given its name or ID (as the engine takes
    /// either).
    fn named(s: &State, name_or_id: &str) -> String {
        s.containers
            .iter()
            .find(|(_, c)| c.id == name_or_id)
            .map_or(name_or_id, |(n, _)| n)
            .to_string()
    }

    /// The volume and the path in it that a container's `path` is on.
    fn resolve(s: &State, container: &str, path: &str) -> Result<(String, String)> {
        let c = s
            .containers
            .get(container)
            .ok_or_else(|| Error::NotFound(format!("no such container: {container}")))?;
        c.mounts
            .iter()
            .filter(|(_, target)| path == target || path.starts_with(&format!("{target}/")))
            .max_by_key(|(_, target)| target.len())
            .map(|(v, target)| {
                let rel = path[target.len()..].trim_start_matches('/').to_string();
                (v.clone(), rel)
            })
            .ok_or_else(|| {
                Error::Failed(format!(
                    "fake engine: {container}:{path} is on no volume (not kept)"
                ))
            })
    }

    fn exec_output(&self, container: &str, spec: &ExecSpec) -> Result<(i64, Vec<u8>)> {
        let s = self.lock();
        let c = s
            .containers
            .get(container)
            .ok_or_else(|| Error::NotFound(format!("no such container: {container}")))?;
        if !c.running {
            return Err(Error::Conflict(format!(
                "container {container} is not running"
            )));
        }
        let host = host_of(&c.labels);
        let cmd = spec.cmd.join(" ");
        if cmd.contains("run-context") {
            let creation = spec.cmd.iter().any(|a| a == "all");
            if let (true, Some((script, code))) = (creation, s.script_failures.get(&host)) {
                let out = format!(
                    "mcc-context-failed\t{script}\t{code}\nfake failure\nmcc-context-end\n"
                );
                return Ok((*code, out.into_bytes()));
            }
            return Ok((0, b"mcc-context-ok\n".to_vec()));
        }
        if cmd.contains("is-system-running") {
            return Ok((0, b"running\n".to_vec()));
        }
        Ok((0, Vec::new()))
    }
}

/// A node's hostname from its labels.
fn host_of(l: &Labels) -> String {
    match (
        l.get(labels::ROLE).map(String::as_str),
        l.get(labels::INDEX).and_then(|i| i.parse::<u32>().ok()),
    ) {
        (Some("worker"), Some(i)) => format!("node{i:02}"),
        _ => "frontend".into(),
    }
}

fn one_shot(chunks: Vec<Chunk>) -> OutputStream {
    Box::pin(futures_util::stream::iter(chunks.into_iter().map(Ok)))
}

#[async_trait]
impl Engine for FakeProvider {
    fn endpoint(&self) -> String {
        "fake://".into()
    }

    fn store(
        self: std::sync::Arc<Self>,
    ) -> std::sync::Arc<dyn crate::provider::store::ClusterStore> {
        std::sync::Arc::new(crate::provider::store::MetaStore::new(self))
    }

    async fn host(&self) -> Result<super::HostInfo> {
        Ok(super::HostInfo::default())
    }

    async fn create_node(&self, node: &NodeRequest) -> Result<String> {
        self.call(Op::CreateNode, &node.name)?;
        // an engine takes time to make a container; work that overlaps
        // it (scripts of nodes already up) shows only if it does here too
        tokio::time::sleep(MAKE_DELAY).await;
        let mut mounts = node.volumes.clone();
        if let Some((volume, _)) = &node.hosts_file {
            if !self.lock().volumes.contains_key(volume) {
                return Err(Error::NotFound(format!("no such volume: {volume}")));
            }
            mounts.retain(|m| !matches!(m, Mount::Bind { .. }));
        }
        self.insert_container(
            &node.name,
            &node.image,
            &node.labels,
            &mounts,
            Some((node.network.0.clone(), node.network.1)),
        )
    }

    async fn image(&self, image: &str) -> Result<Option<ImageInfo>> {
        Ok(self.lock().images.get(image).cloned())
    }

    async fn pull(&self, image: &str, _progress: &(dyn Fn(String) + Send + Sync)) -> Result<()> {
        Err(Error::Failed(format!(
            "image '{image}' is not present and cannot be pulled (fake engine)"
        )))
    }

    async fn create_network(&self, spec: &NetworkSpec) -> Result<()> {
        self.call(Op::CreateNetwork, &spec.name)?;
        let mut s = self.lock();
        if s.networks.contains_key(&spec.name) {
            return Err(Error::Conflict(format!("network {} exists", spec.name)));
        }
        if s.networks.values().any(|(n, _)| n.overlaps(&spec.subnet)) {
            return Err(Error::Conflict(format!(
                "subnet {} is taken by another network",
                spec.subnet
            )));
        }
        s.networks
            .insert(spec.name.clone(), (spec.subnet, spec.labels.clone()));
        Ok(())
    }

    async fn remove_network(&self, name: &str) -> Result<bool> {
        self.call(Op::RemoveNetwork, name)?;
        let mut s = self.lock();
        let attached = s
            .containers
            .values()
            .any(|c| c.network.as_ref().is_some_and(|(n, _)| n == name));
        if attached {
            return Err(Error::Engine {
                op: format!("removing network {name}"),
                status: Some(403),
                message: "network has active endpoints".into(),
            });
        }
        Ok(s.networks.remove(name).is_some())
    }

    async fn networks(&self, label: Option<(&str, &str)>) -> Result<Vec<NetworkInfo>> {
        Ok(self
            .lock()
            .networks
            .iter()
            .filter(|(_, (_, l))| filtered(l, label))
            .map(|(n, (subnet, l))| NetworkInfo {
                name: n.clone(),
                subnets: vec![*subnet],
                labels: l.clone(),
            })
            .collect())
    }

    async fn mark_volume_used(&self, name: &str) -> Result<()> {
        self.lock().used_volumes.insert(name.to_string());
        Ok(())
    }

    async fn volume_used(&self, name: &str) -> Result<bool> {
        Ok(self.lock().used_volumes.contains(name))
    }

    async fn own_volume_root(&self, name: &str, uid: u32, gid: u32) -> Result<()> {
        self.lock().owned_volumes.push((name.to_string(), uid, gid));
        Ok(())
    }

    async fn volume_users(&self, name: &str) -> Result<Vec<String>> {
        Ok(self
            .lock()
            .containers
            .iter()
            .filter(|(_, c)| c.mounts.iter().any(|(v, _)| v == name))
            .map(|(n, _)| n.clone())
            .collect())
    }

    async fn container_status(&self, id: &str) -> Result<Option<super::ContainerStatus>> {
        let s = self.lock();
        Ok(s.containers
            .iter()
            .find(|(n, c)| *n == id || c.id == id)
            .map(|(n, c)| super::ContainerStatus {
                id: c.id.clone(),
                name: n.clone(),
                state: if c.running { "running" } else { "exited" }.into(),
                image: c.image.clone(),
                labels: c.labels.clone(),
                ..Default::default()
            }))
    }

    async fn network_members(&self, name: &str) -> Result<Option<Vec<(String, Option<Ipv4Addr>)>>> {
        let s = self.lock();
        if !s.networks.contains_key(name) {
            return Ok(None);
        }
        Ok(Some(
            s.containers
                .iter()
                .filter_map(|(n, c)| match &c.network {
                    Some((net, ip)) if net == name => Some((n.clone(), *ip)),
                    _ => None,
                })
                .collect(),
        ))
    }

    async fn create_volume(
        &self,
        name: &str,
        _size: Option<u64>,
        labels: &Labels,
    ) -> Result<VolumeInfo> {
        self.call(Op::CreateVolume, name)?;
        let mut s = self.lock();
        let v = s.volumes.entry(name.into()).or_insert_with(|| Volume {
            labels: labels.clone(),
            files: BTreeMap::new(),
        });
        Ok(VolumeInfo {
            name: name.into(),
            mountpoint: format!("/fake/volumes/{name}"),
            labels: v.labels.clone(),
            host: None,
        })
    }

    async fn volume(&self, name: &str) -> Result<Option<VolumeInfo>> {
        Ok(self.lock().volumes.get(name).map(|v| VolumeInfo {
            name: name.into(),
            mountpoint: format!("/fake/volumes/{name}"),
            labels: v.labels.clone(),
            host: None,
        }))
    }

    async fn remove_volume(&self, name: &str) -> Result<bool> {
        self.call(Op::RemoveVolume, name)?;
        let mut s = self.lock();
        if s.containers
            .values()
            .any(|c| c.mounts.iter().any(|(v, _)| v == name))
        {
            return Err(Error::Conflict(format!("volume {name} is in use")));
        }
        s.used_volumes.remove(name);
        Ok(s.volumes.remove(name).is_some())
    }

    async fn volumes(&self, label: Option<(&str, &str)>) -> Result<Vec<VolumeInfo>> {
        Ok(self
            .lock()
            .volumes
            .iter()
            .filter(|(_, v)| filtered(&v.labels, label))
            .map(|(n, v)| VolumeInfo {
                name: n.clone(),
                mountpoint: format!("/fake/volumes/{n}"),
                labels: v.labels.clone(),
                host: None,
            })
            .collect())
    }

    fn refuse_limits(&self, _limits: &super::Limits) -> Option<(super::Limit, String)> {
        None
    }

    async fn create_container(&self, spec: &ContainerRequest) -> Result<String> {
        self.call(Op::CreateContainer, &spec.name)?;
        self.insert_container(
            &spec.name,
            &spec.image,
            &spec.labels,
            &spec.mounts,
            spec.network.as_ref().map(|(n, ip, _)| (n.clone(), *ip)),
        )
    }

    async fn start_container(&self, name: &str) -> Result<()> {
        self.call(Op::Start, name)?;
        tokio::time::sleep(MAKE_DELAY).await;
        let mut s = self.lock();
        let name = Self::named(&s, name);
        match s.containers.get_mut(&name) {
            Some(c) => {
                c.running = true;
                Ok(())
            }
            None => Err(Error::NotFound(format!("no such container: {name}"))),
        }
    }

    async fn stop_container(&self, name: &str, _timeout_secs: i64) -> Result<()> {
        self.call(Op::Stop, name)?;
        if let Some(c) = self.lock().containers.get_mut(name) {
            c.running = false;
        }
        Ok(())
    }

    async fn remove_container(&self, name: &str) -> Result<bool> {
        self.call(Op::RemoveContainer, name)?;
        let mut s = self.lock();
        let name = Self::named(&s, name);
        Ok(s.containers.remove(&name).is_some())
    }

    async fn containers(&self, label: &str, value: Option<&str>) -> Result<Vec<ContainerInfo>> {
        Ok(self
            .lock()
            .containers
            .iter()
            .filter(|(_, c)| match value {
                Some(v) => c.labels.get(label).map(String::as_str) == Some(v),
                None => c.labels.contains_key(label),
            })
            .map(|(n, c)| ContainerInfo {
                id: c.id.clone(),
                name: n.clone(),
                image: c.image.clone(),
                state: if c.running {
                    ContainerState::Running
                } else {
                    ContainerState::Exited
                },
                labels: c.labels.clone(),
                addresses: c
                    .network
                    .iter()
                    .filter_map(|(n, ip)| Some((n.clone(), (*ip)?)))
                    .collect(),
                ports: Vec::new(),
                host: None,
            })
            .collect())
    }

    async fn exec_attach(&self, container: &str, spec: &ExecSpec) -> Result<Attached> {
        self.call(Op::Exec, container)?;
        let (code, out) = self.exec_output(container, spec)?;
        let id = {
            let mut s = self.lock();
            s.next_id += 1;
            let id = format!("exec-{}", s.next_id);
            s.exec_codes.insert(id.clone(), code);
            id
        };
        Ok(Attached {
            id,
            output: one_shot(vec![Chunk::Stdout(out)]),
            input: Box::pin(tokio::io::sink()),
        })
    }

    fn events(&self, _label: &str, _since_nano: Option<i64>) -> super::EventStream {
        Box::pin(futures_util::stream::pending())
    }

    fn stats(&self, _container: &str) -> super::StatsStream {
        Box::pin(futures_util::stream::empty())
    }

    async fn load_image(&self, tar: super::ByteStream) -> Result<()> {
        // what export_image gives is an error: pass it on
        let mut tar = tar;
        while let Some(chunk) = futures_util::StreamExt::next(&mut tar).await {
            chunk?;
        }
        Ok(())
    }

    fn export_image(&self, image: &str) -> super::ByteStream {
        let e = Error::Failed(format!("the fake engine cannot save image {image}"));
        Box::pin(futures_util::stream::once(async move { Err(e) }))
    }

    fn follow_logs(&self, container: &str) -> OutputStream {
        let s = self.lock();
        let host = s
            .containers
            .get(container)
            .map(|c| host_of(&c.labels))
            .unwrap_or_default();
        let text = match s.script_failures.get(&host) {
            Some((script, code)) => {
                format!("mcc-context-failed\t{script}\t{code}\nfake failure\nmcc-context-end\n")
            }
            None => "mcc-context-ok\n".into(),
        };
        one_shot(vec![Chunk::Stdout(text.into_bytes())])
    }

    async fn exec_exit_code(&self, exec_id: &str) -> Result<i64> {
        self.lock()
            .exec_codes
            .get(exec_id)
            .copied()
            .ok_or_else(|| Error::NotFound(format!("no such exec: {exec_id}")))
    }

    async fn exec_resize(&self, _exec_id: &str, _rows: u16, _cols: u16) -> Result<()> {
        Ok(())
    }

    async fn rewrite_in_place(
        &self,
        volume: &str,
        path: &str,
        content: &[u8],
        helper: &Helper,
    ) -> Result<()> {
        self.call(Op::Rewrite, volume)?;
        let mut s = self.lock();
        if !s.images.contains_key(&helper.image) {
            return Err(Error::NotFound(format!("no such image: {}", helper.image)));
        }
        let v = s
            .volumes
            .get_mut(volume)
            .ok_or_else(|| Error::NotFound(format!("no such volume: {volume}")))?;
        let old = v.files.get(path).map_or(0, Vec::len);
        if content.len() < old {
            return Err(Error::Failed(format!(
                "{path}: an in-place write shorter than the old file leaves its tail"
            )));
        }
        v.files.insert(path.into(), content.to_vec());
        Ok(())
    }

    async fn upload(&self, container: &str, dir: &str, tar: Vec<u8>) -> Result<()> {
        self.call(Op::Upload, container)?;
        let mut s = self.lock();
        Self::resolve(&s, container, dir)?;
        let mut archive = tar::Archive::new(tar.as_slice());
        let bad = |e: std::io::Error| Error::Failed(format!("fake upload: {e}"));
        for entry in archive.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let path = entry.path().map_err(bad)?.to_string_lossy().into_owned();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).map_err(bad)?;
            // each file on the volume its own path is on (nested mounts)
            let target = format!(
                "{}/{}",
                dir.trim_end_matches('/'),
                path.trim_start_matches("./")
            );
            let (vol, rel) = Self::resolve(&s, container, &target)?;
            s.volumes
                .get_mut(&vol)
                .ok_or_else(|| Error::NotFound(format!("no such volume: {vol}")))?
                .files
                .insert(rel, data);
        }
        Ok(())
    }

    async fn download(&self, container: &str, path: &str) -> Result<Vec<u8>> {
        self.call(Op::Download, container)?;
        let s = self.lock();
        let (volume, rel) = Self::resolve(&s, container, path)?;
        let files = &s.volumes[&volume].files;
        let name = path.rsplit('/').next().unwrap_or(path);
        let mut b = tar::Builder::new(Vec::new());
        let io = |e: std::io::Error| Error::Failed(format!("fake download: {e}"));
        let mut found = false;
        for (p, data) in files {
            let inner = if *p == rel {
                Some(name.to_string())
            } else if rel.is_empty() {
                Some(format!("{name}/{p}"))
            } else {
                p.strip_prefix(&format!("{rel}/"))
                    .map(|rest| format!("{name}/{rest}"))
            };
            if let Some(inner) = inner {
                found = true;
                crate::context::append_file(&mut b, &inner, data, 0o644).map_err(io)?;
            }
        }
        if !found {
            return Err(Error::NotFound(format!("no such file: {container}:{path}")));
        }
        b.into_inner().map_err(io)
    }
}
