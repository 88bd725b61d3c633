//! Docker engines of one swarm as one [`Engine`]: the engine mcc is
//! pointed at (`DOCKER_HOST`, the "home" engine, as for a cluster on one
//! host) and the hosts of `mcc host list`. A node with a placement is made
//! on that host's engine; everything else that mcc makes (a cluster's
//! record container, its index, `mcc run` containers, helpers) on the home
//! engine. Listings are the union of every engine's; a container is acted
//! on where it is. The swarm gives the attachable overlay a cluster over
//! several hosts joins (made through a host's engine, a manager), and
//! volumes whose data every host must reach live in a folder they share
//! (`export.rs`).
//!
//! A cluster on the home engine alone behaves as on a plain
//! [`DockerProvider`]: the hosts are asked only to list.
//!
//! `mcc serve`'s engine follows its hosts file ([`MultiHost::following`]):
//! a stat of the file per call, and when it changed the list is read
//! again; the hosts that did not change keep their connections, removed
//! ones stay as dead slots (so that an engine's index never names another
//! host, even to a call under way), and the caches of where a container,
//! an exec or a host's address is are forgotten.

use std::sync::{Arc, Mutex};

#[allow(unused_imports)]
use super::*;

use crate::hosts::file::{HostEntry, HostsFile};
use crate::provider::{ByteStream, ContainerStatus, EventStream, OutputStream, StatsStream};

/// How long a host's engine may take to answer the first request of a
/// command (a lost host must not hold a listing up for long), and each
/// later one.
const PROBE_SECS: u64 = 3;
const WORK_SECS: u64 = 120;
/// How long a host may take to answer a question of a listing (what runs,
/// which networks and volumes) before it counts as not answering for that
/// listing: a host that went silent (no power, no link: nothing refuses a
/// connection) must not hold every listing up for `WORK_SECS`. A busy
/// engine lists a cluster in well under a second.
const LIST_SECS: u64 = 3;
/// A host that did not answer is not asked again for this long: each of
/// a command's listings would otherwise wait for it anew.
const QUIET_SECS: u64 = 5;

/// How long a manager may take to answer one request of the swarm's store
/// before the next host is asked.
const MANAGER_SECS: u64 = 5;

/// One host: its entry in the list and, once reached, its engine.
struct Host {
    entry: HostEntry,
    engine: tokio::sync::Mutex<Option<Arc<DockerProvider>>>,
    /// No longer listed (a followed file changed): skipped by every walk
    /// of the hosts, its slot kept so that the indices after it hold.
    gone: bool,
}

impl Host {
    fn new(entry: HostEntry) -> Arc<Host> {
        Arc::new(Host {
            entry,
            engine: tokio::sync::Mutex::new(None),
            gone: false,
        })
    }
}

/// A file's identity and size as of its last read: a rename over it (how
/// the hosts file is written) changes the inode, a write its time.
type Stamp = Option<(std::time::SystemTime, u64, u64)>;

fn stamp_of(path: &std::path::Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

/// The hosts now: engine `i` (1-based) is `hosts[i - 1]`.
type Slots = Arc<Vec<Arc<Host>>>;

/// The home engine and the hosts; see the module's text.
pub struct MultiHost {
    home: Arc<DockerProvider>,
    hosts: std::sync::RwLock<Slots>,
    /// The hosts file followed, and its stamp when last read.
    file: Option<(std::path::PathBuf, Mutex<Stamp>)>,
    /// Container name (or ID) -> engine (0: home, i: host i-1), as found.
    placed: Mutex<HashMap<String, usize>>,
    /// Exec ID -> engine.
    execs: Mutex<HashMap<String, usize>>,
    /// The hosts the latest listing could not reach.
    unreached: Mutex<std::collections::BTreeSet<String>>,
    /// When each host last failed to answer a listing (`QUIET_SECS`).
    failed_at: Mutex<HashMap<usize, std::time::Instant>>,
    /// Each host's address in the swarm, once read (`host_address`).
    addresses: Mutex<HashMap<usize, std::net::Ipv4Addr>>,
    /// The host whose manager answered last (0: none yet).
    manager: std::sync::atomic::AtomicUsize,
}

impl MultiHost {
    /// The home engine with the listed hosts; a host that is the home
    /// engine itself (the same URL) is reached as the home engine, never
    /// twice.
    pub fn new(home: DockerProvider, hosts: Vec<HostEntry>) -> MultiHost {
        MultiHost {
            home: Arc::new(home),
            hosts: std::sync::RwLock::new(Arc::new(hosts.into_iter().map(Host::new).collect())),
            file: None,
            placed: Mutex::new(HashMap::new()),
            execs: Mutex::new(HashMap::new()),
            unreached: Mutex::new(Default::default()),
            failed_at: Mutex::new(HashMap::new()),
            addresses: Mutex::new(HashMap::new()),
            manager: Default::default(),
        }
    }

    /// The home engine with the hosts `file` lists, read again whenever
    /// it changes (none while there is no file).
    pub fn following(home: DockerProvider, file: &HostsFile) -> Result<MultiHost> {
        let stamp = stamp_of(file.path());
        let mut m = MultiHost::new(home, file.load()?);
        m.file = Some((file.path().to_path_buf(), Mutex::new(stamp)));
        Ok(m)
    }

    /// The hosts now, the followed file read again first if it changed.
    fn hosts(&self) -> Slots {
        self.follow();
        self.slots()
    }

    /// The hosts as last read.
    fn slots(&self) -> Slots {
        self.hosts.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The engine indices of the listed hosts (1-based), in order.
    fn live(hosts: &[Arc<Host>]) -> Vec<usize> {
        (1..=hosts.len()).filter(|at| !hosts[at - 1].gone).collect()
    }

    /// Whether any host is listed.
    pub(super) fn spans(&self) -> bool {
        self.hosts().iter().any(|h| !h.gone)
    }

    /// Reads the followed file again if its stamp changed: see the
    /// module's text. A file that cannot be read (half-made, untrusted)
    /// leaves the list as it was.
    fn follow(&self) {
        let Some((path, seen)) = &self.file else {
            return;
        };
        let stamp = stamp_of(path);
        let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
        if *seen == stamp {
            return;
        }
        let Ok(entries) = HostsFile::at(path.clone()).load() else {
            return;
        };
        *seen = stamp;
        let old = self.slots();
        let mut slots: Vec<Arc<Host>> = old
            .iter()
            .map(|h| match h.gone || entries.contains(&h.entry) {
                true => h.clone(),
                false => Arc::new(Host {
                    entry: h.entry.clone(),
                    engine: tokio::sync::Mutex::new(None),
                    gone: true,
                }),
            })
            .collect();
        for e in entries {
            if !old.iter().any(|h| !h.gone && h.entry == e) {
                slots.push(Host::new(e));
            }
        }
        *self.hosts.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(slots);
        for map in [&self.placed, &self.execs] {
            map.lock().unwrap_or_else(|p| p.into_inner()).clear();
        }
        self.addresses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.unreached
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.manager.store(0, std::sync::atomic::Ordering::Relaxed);
    }

    fn remember(map: &Mutex<HashMap<String, usize>>, key: &str, at: usize) {
        map.lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string(), at);
    }

    fn recall(map: &Mutex<HashMap<String, usize>>, key: &str) -> Option<usize> {
        map.lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .copied()
    }

    /// Whether engine `at` is a host that is the home engine itself.
    fn aliases_home(&self, at: usize) -> bool {
        at > 0
            && self
                .slots()
                .get(at - 1)
                .is_some_and(|h| h.entry.engine == self.home.host)
    }

    /// Engine `at` (0: home), reached now if it was not yet.
    async fn engine(&self, at: usize) -> Result<Arc<DockerProvider>> {
        if self.aliases_home(at) {
            return Ok(self.home.clone());
        }
        let slots = self.slots();
        let Some(host) = at.checked_sub(1).and_then(|i| slots.get(i)) else {
            return Ok(self.home.clone());
        };
        if host.gone {
            return Err(Error::NoEngine {
                host: format!("host {} ({})", host.entry.name, host.entry.engine),
                reason: "it was removed from the hosts list".into(),
                hint: "`mcc host list` shows the hosts".into(),
            });
        }
        let mut slot = host.engine.lock().await;
        if let Some(e) = slot.as_ref() {
            return Ok(e.clone());
        }
        let e =
            DockerProvider::connect_url(&host.entry.engine, host.entry.tls.as_ref(), PROBE_SECS)
                .await
                .map_err(|e| Error::NoEngine {
                    host: format!("host {} ({})", host.entry.name, host.entry.engine),
                    reason: e.to_string(),
                    hint: "`mcc host list` says which hosts answer; the nodes on this one are \
                           unreachable until it does"
                        .into(),
                })?
                .with_timeout(WORK_SECS);
        let e = Arc::new(e);
        *slot = Some(e.clone());
        Ok(e)
    }

    /// The engine of host `name`.
    fn host_index(&self, name: &str) -> Result<usize> {
        let hosts = self.hosts();
        Self::live(&hosts)
            .into_iter()
            .find(|at| hosts[at - 1].entry.name == name)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "host '{name}' is not listed; `mcc host list` shows the hosts, `mcc host \
                     add {name} --engine URL` adds one"
                ))
            })
    }

    /// Every engine (0: home), each that answers with what `f` gives; a
    /// host that cannot be reached is left out (it has no answer, and its
    /// loss is not an error of the others').
    async fn each<T, F, Fut>(&self, f: F) -> Result<Vec<(usize, T)>>
    where
        F: Fn(Arc<DockerProvider>) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        self.each_within(Some(std::time::Duration::from_secs(LIST_SECS)), f)
            .await
    }

    /// [`Self::each`], each host given `limit` (none: its engine's own
    /// timeout) to answer before it counts as not answering.
    async fn each_within<T, F, Fut>(
        &self,
        limit: Option<std::time::Duration>,
        f: F,
    ) -> Result<Vec<(usize, T)>>
    where
        F: Fn(Arc<DockerProvider>) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let hosts = self.hosts();
        let engines = std::iter::once(0)
            .chain(Self::live(&hosts))
            .filter(|at| !self.aliases_home(*at));
        let calls = engines.map(|at| {
            let (f, hosts) = (&f, &hosts);
            async move {
                let asked = async {
                    match self.engine(at).await {
                        Ok(e) => f(e).await,
                        Err(e) => Err(e),
                    }
                };
                if at == 0 {
                    return Some(asked.await.map(|t| (at, t)));
                }
                if self.failed_lately(at) {
                    return None;
                }
                let answer = match limit {
                    None => asked.await,
                    Some(l) => tokio::time::timeout(l, asked)
                        .await
                        .unwrap_or_else(|_| Err(self.silent(at, l))),
                };
                let host = &hosts[at - 1];
                let name = host.entry.name.clone();
                let lost = answer.as_ref().is_err_and(|e| e.engine_unreachable());
                {
                    let mut u = self.unreached.lock().unwrap_or_else(|p| p.into_inner());
                    if lost {
                        u.insert(name);
                    } else {
                        u.remove(&name);
                    }
                }
                {
                    let mut f = self.failed_at.lock().unwrap_or_else(|p| p.into_inner());
                    match lost {
                        true => f.insert(at, std::time::Instant::now()),
                        false => f.remove(&at),
                    };
                }
                if lost {
                    // reached anew when asked again: it may be back
                    *host.engine.lock().await = None;
                    return None;
                }
                Some(answer.map(|t| (at, t)))
            }
        });
        futures_util::future::join_all(calls)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// Whether host `at` failed to answer less than `QUIET_SECS` ago (it
    /// stays among the unreached, unasked).
    fn failed_lately(&self, at: usize) -> bool {
        self.failed_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&at)
            .is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(QUIET_SECS))
    }

    /// Host `at` did not answer within `limit`.
    fn silent(&self, at: usize, limit: std::time::Duration) -> Error {
        let hosts = self.hosts();
        let entry = &hosts[at - 1].entry;
        Error::NoEngine {
            host: format!("host {} ({})", entry.name, entry.engine),
            reason: format!("no answer in {} s", limit.as_secs()),
            hint: "`mcc host list` says which hosts answer; the nodes on this one are \
                   unreachable until it does"
                .into(),
        }
    }

    /// The engine that has container `name` (home when none has it, so
    /// that its answer says so).
    async fn locate(&self, name: &str) -> usize {
        if let Some(at) = Self::recall(&self.placed, name) {
            return at;
        }
        if !self.spans() {
            return 0;
        }
        let found = self
            .each(|e| async move { e.container_status(name).await })
            .await
            .unwrap_or_default()
            .into_iter()
            .find_map(|(at, s)| s.map(|_| at))
            .unwrap_or(0);
        Self::remember(&self.placed, name, found);
        found
    }

    async fn at_container(&self, name: &str) -> Result<Arc<DockerProvider>> {
        let at = self.locate(name).await;
        self.engine(at).await
    }

    /// The host name of engine `at` (for home: the host that is it, if
    /// one is).
    fn host_name(&self, at: usize) -> Option<String> {
        let hosts = self.slots();
        let at = match at {
            0 => Self::live(&hosts)
                .into_iter()
                .find(|a| self.aliases_home(*a))?,
            a => a,
        };
        Some(hosts.get(at - 1)?.entry.name.clone())
    }

    /// The swarm address of engine `at`, read once.
    async fn address_of(
        &self,
        at: usize,
        engine: &DockerProvider,
    ) -> Result<Option<std::net::Ipv4Addr>> {
        let known = self
            .addresses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&at)
            .copied();
        if let Some(a) = known {
            return Ok(Some(a));
        }
        let a = engine.swarm_address().await?;
        if let Some(a) = a {
            self.addresses
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(at, a);
        }
        Ok(a)
    }

    /// `e`, a failure on engine `at`, naming that engine's host (if it is
    /// one): a host that cannot mount the shared export, say.
    fn failed_on(&self, at: usize, e: Error) -> Error {
        match (e, self.host_name(at)) {
            (Error::Failed(m), Some(h)) => Error::Failed(format!("on host {h}: {m}")),
            (e, _) => e,
        }
    }

    /// Runs `f` on the first host that answers (every host is a manager of
    /// the swarm); `None` when no host is listed or none answers.
    async fn through_a_manager<T, F, Fut>(&self, f: F) -> Option<Result<T>>
    where
        F: Fn(Arc<DockerProvider>) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        for at in Self::live(&self.hosts()) {
            if let Ok(e) = self.engine(at).await {
                return Some(f(e).await);
            }
        }
        None
    }

    /// Runs `f` on the hosts' engines (every host is a manager of the
    /// swarm) until one answers within [`MANAGER_SECS`], the one that
    /// answered last first; an error naming every host and why when none
    /// does. For the swarm's consistent store, which any manager serves.
    pub(super) async fn on_managers<T, F, Fut>(&self, doing: &str, f: F) -> Result<T>
    where
        F: Fn(Arc<DockerProvider>) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        use std::sync::atomic::Ordering;
        let hosts = self.hosts();
        let live = Self::live(&hosts);
        let n = live.len();
        let last = self.manager.load(Ordering::Relaxed);
        let first = live.iter().position(|at| *at == last).unwrap_or(0);
        let mut why = Vec::new();
        for at in (0..n).map(|i| live[(first + i) % n]) {
            let entry = &hosts[at - 1].entry;
            let answer = match self.engine(at).await {
                Ok(e) => {
                    let limit = std::time::Duration::from_secs(MANAGER_SECS);
                    tokio::time::timeout(limit, f(e)).await.unwrap_or_else(|_| {
                        Err(Error::Failed(format!("no answer in {MANAGER_SECS} s")))
                    })
                }
                Err(e) => Err(e),
            };
            match answer {
                Ok(t) => {
                    self.manager.store(at, Ordering::Relaxed);
                    return Ok(t);
                }
                Err(Error::NoEngine { reason, .. }) => {
                    why.push(format!("{} ({}): {reason}", entry.name, entry.engine))
                }
                Err(e) => why.push(format!("{} ({}): {e}", entry.name, entry.engine)),
            }
        }
        Err(Error::Failed(format!(
            "{doing}: no manager of the swarm answers; {}\n  hint: `mcc host list` says which \
             hosts answer; the swarm's store needs most of its managers up and linked",
            match why.is_empty() {
                true => "no host is listed".to_string(),
                false => why.join("; "),
            }
        )))
    }
}

#[async_trait]
impl Engine for MultiHost {
    fn endpoint(&self) -> String {
        self.home.endpoint()
    }

    fn store(self: Arc<Self>) -> Arc<dyn crate::provider::store::ClusterStore> {
        Arc::new(SwarmStore {
            meta: crate::provider::store::MetaStore::new(self.clone()),
            multi: self,
        })
    }

    async fn host(&self) -> Result<crate::provider::HostInfo> {
        let mut info = self.home.host().await?;
        let hosts = self.hosts();
        let listed = || hosts.iter().filter(|h| !h.gone);
        info.hosts = listed().map(|h| h.entry.name.clone()).collect();
        info.zones = listed()
            .filter_map(|h| Some((h.entry.name.clone(), h.entry.zone.clone()?)))
            .collect();
        Ok(info)
    }

    async fn host_address(&self, host: &str) -> Result<Option<std::net::Ipv4Addr>> {
        let at = self.host_index(host)?;
        let engine = self.engine(at).await?;
        self.address_of(at, &engine).await
    }

    async fn create_node(&self, node: &NodeRequest) -> Result<String> {
        let Some(host) = &node.placement else {
            return self.home.create_node(node).await;
        };
        let at = self.host_index(host)?;
        let engine = self.engine(at).await?;
        if engine.image(&node.image).await?.is_none() {
            engine.pull(&node.image, &|_| {}).await?;
        }
        let mut here = node.clone();
        here.placement = None;
        if !here.publish.is_empty() {
            // on the host's own address: the one mcc reaches it at
            here.publish_on = self.address_of(at, &engine).await?;
        }
        let id = engine
            .create_node(&here)
            .await
            .map_err(|e| self.failed_on(at, e))?;
        Self::remember(&self.placed, &node.name, at);
        Ok(id)
    }

    async fn image(&self, image: &str) -> Result<Option<ImageInfo>> {
        self.home.image(image).await
    }

    async fn pull(&self, image: &str, progress: &(dyn Fn(String) + Send + Sync)) -> Result<()> {
        self.home.pull(image, progress).await
    }

    async fn create_network(&self, spec: &NetworkSpec) -> Result<()> {
        if spec.driver != "overlay" {
            return self.home.create_network(spec).await;
        }
        self.through_a_manager(|e| async move { e.create_network(spec).await })
            .await
            .unwrap_or_else(|| {
                Err(Error::Failed(format!(
                    "network {}: an overlay is made through a host of the swarm, and none answers (`mcc host list`)",
                    spec.name
                )))
            })
    }

    async fn remove_network(&self, name: &str) -> Result<bool> {
        if self.home.remove_network(name).await? {
            return Ok(true);
        }
        // an overlay is one object of the swarm: removed through the first
        // host that has it, it is gone from the others (which would then
        // answer that it is not found)
        for at in Self::live(&self.hosts()) {
            if let Ok(e) = self.engine(at).await {
                if e.remove_network(name).await? {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    async fn networks(&self, label: Option<(&str, &str)>) -> Result<Vec<NetworkInfo>> {
        // an overlay is listed by every host it is on
        let listed = self
            .each(|e| async move { e.networks(label).await })
            .await?;
        Ok(once_by_name(listed, |n| &n.name))
    }

    async fn network_members(&self, name: &str) -> Result<Option<Vec<(String, Option<Ipv4Addr>)>>> {
        let mut all: Option<Vec<(String, Option<Ipv4Addr>)>> = None;
        for (_, m) in self
            .each(|e| async move { e.network_members(name).await })
            .await?
        {
            if let Some(m) = m {
                all.get_or_insert_with(Vec::new).extend(m);
            }
        }
        if let Some(a) = all.as_mut() {
            a.sort();
            a.dedup();
        }
        Ok(all)
    }

    async fn create_volume(
        &self,
        name: &str,
        size: Option<u64>,
        labels: &Labels,
    ) -> Result<VolumeInfo> {
        self.home
            .create_volume(name, size, labels)
            .await
            .map_err(|e| self.failed_on(0, e))
    }

    async fn volume(&self, name: &str) -> Result<Option<VolumeInfo>> {
        // every engine at once, the home engine's answer first
        Ok(self
            .each(|e| async move { e.volume(name).await })
            .await?
            .into_iter()
            .find_map(|(_, v)| v))
    }

    async fn remove_volume(&self, name: &str) -> Result<bool> {
        // off every engine, then its data off the export once, through the
        // home engine (which has the cluster's front-end image: its
        // record container's)
        let removed = self
            .each_within(None, |e| async move { e.remove_volume_here(name).await })
            .await?;
        let existed = removed.iter().any(|(_, (r, _))| *r);
        let Some(labels) = removed.into_iter().find_map(|(_, (_, l))| l) else {
            return Ok(existed);
        };
        if let Some(e) = export::export_of(&labels)? {
            self.home.remove_export_data(&e, name, &labels).await?;
        }
        Ok(existed)
    }

    async fn volumes(&self, label: Option<(&str, &str)>) -> Result<Vec<VolumeInfo>> {
        // a shared folder's volume is on every host that mounts it
        let mut listed = self.each(|e| async move { e.volumes(label).await }).await?;
        for (at, vs) in listed.iter_mut() {
            let host = self.host_name(*at);
            for v in vs.iter_mut() {
                v.host = host.clone();
            }
        }
        Ok(once_by_name(listed, |v| &v.name))
    }

    async fn mark_volume_used(&self, name: &str) -> Result<()> {
        self.home.mark_volume_used(name).await
    }

    async fn volume_used(&self, name: &str) -> Result<bool> {
        self.home.volume_used(name).await
    }

    async fn own_volume_root(&self, name: &str, uid: u32, gid: u32) -> Result<()> {
        self.home.own_volume_root(name, uid, gid).await
    }

    async fn volume_users(&self, name: &str) -> Result<Vec<String>> {
        let mut users: Vec<String> = self
            .each(|e| async move { e.volume_users(name).await })
            .await?
            .into_iter()
            .flat_map(|(_, u)| u)
            .collect();
        users.sort();
        users.dedup();
        Ok(users)
    }

    async fn container_status(&self, id: &str) -> Result<Option<ContainerStatus>> {
        self.at_container(id).await?.container_status(id).await
    }

    fn refuse_limits(&self, limits: &Limits) -> Option<(Limit, String)> {
        self.home.refuse_limits(limits)
    }

    async fn create_container(&self, req: &ContainerRequest) -> Result<String> {
        self.home
            .create_container(req)
            .await
            .map_err(|e| self.failed_on(0, e))
    }

    async fn start_container(&self, name: &str) -> Result<()> {
        self.at_container(name).await?.start_container(name).await
    }

    async fn stop_container(&self, name: &str, timeout_secs: i64) -> Result<()> {
        self.at_container(name)
            .await?
            .stop_container(name, timeout_secs)
            .await
    }

    async fn remove_container(&self, name: &str) -> Result<bool> {
        let removed = self.at_container(name).await?.remove_container(name).await;
        self.placed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        removed
    }

    async fn containers(&self, label: &str, value: Option<&str>) -> Result<Vec<ContainerInfo>> {
        let listed = self
            .each(|e| async move { e.containers(label, value).await })
            .await?;
        let mut all = Vec::new();
        for (at, cs) in listed {
            for mut c in cs {
                Self::remember(&self.placed, &c.name, at);
                Self::remember(&self.placed, &c.id, at);
                c.host = self.host_name(at);
                all.push(c);
            }
        }
        Ok(all)
    }

    async fn exec_attach(&self, container: &str, spec: &ExecSpec) -> Result<Attached> {
        let at = self.locate(container).await;
        let a = self.engine(at).await?.exec_attach(container, spec).await?;
        Self::remember(&self.execs, &a.id, at);
        Ok(a)
    }

    fn follow_logs(&self, container: &str) -> OutputStream {
        let container = container.to_string();
        // a host that is the home engine itself is reached as it
        let at = Self::recall(&self.placed, &container)
            .filter(|at| !self.aliases_home(*at))
            .unwrap_or(0);
        let hosts = self.slots();
        match at.checked_sub(1).and_then(|i| hosts.get(i)) {
            None => self.home.follow_logs(&container),
            Some(h) => match h.engine.try_lock().ok().and_then(|g| g.clone()) {
                Some(e) => e.follow_logs(&container),
                None => Box::pin(futures_util::stream::once(async move {
                    Err(Error::Failed(format!(
                        "the logs of {container}: its host is not reached yet"
                    )))
                })),
            },
        }
    }

    async fn exec_exit_code(&self, exec_id: &str) -> Result<i64> {
        let at = Self::recall(&self.execs, exec_id).unwrap_or(0);
        self.engine(at).await?.exec_exit_code(exec_id).await
    }

    async fn exec_resize(&self, exec_id: &str, rows: u16, cols: u16) -> Result<()> {
        let at = Self::recall(&self.execs, exec_id).unwrap_or(0);
        self.engine(at)
            .await?
            .exec_resize(exec_id, rows, cols)
            .await
    }

    async fn rewrite_in_place(
        &self,
        volume: &str,
        path: &str,
        content: &[u8],
        helper: &Helper,
    ) -> Result<()> {
        // a cluster's files are on the home engine, or in the folder every
        // host shares, which the home engine reaches too
        self.home
            .rewrite_in_place(volume, path, content, helper)
            .await
    }

    fn events(&self, label: &str, since_nano: Option<i64>) -> EventStream {
        // the hosts reached so far; one that is lost ends the stream (a
        // watcher follows again, reaching the others anew)
        let mut streams = vec![self.home.events(label, since_nano)];
        for h in self.hosts().iter().filter(|h| !h.gone) {
            if let Some(e) = h.engine.try_lock().ok().and_then(|g| g.clone()) {
                streams.push(e.events(label, since_nano));
            }
        }
        crate::provider::until_lost(futures_util::stream::select_all(streams).map(
            |item| match item {
                Ok(e) if e.action == EventAction::Lost => Err(Error::Failed(e.detail)),
                other => other,
            },
        ))
    }

    fn stats(&self, container: &str) -> StatsStream {
        let at = Self::recall(&self.placed, container).unwrap_or(0);
        match at.checked_sub(1).and_then(|i| {
            let h = self.slots().get(i)?.clone();
            let e = h.engine.try_lock().ok().and_then(|g| g.clone());
            e
        }) {
            Some(e) => e.stats(container),
            None => self.home.stats(container),
        }
    }

    fn export_image(&self, image: &str) -> ByteStream {
        self.home.export_image(image)
    }

    async fn load_image(&self, tar: ByteStream) -> Result<()> {
        self.home.load_image(tar).await
    }

    async fn upload(&self, container: &str, dir: &str, tar: Vec<u8>) -> Result<()> {
        self.at_container(container)
            .await?
            .upload(container, dir, tar)
            .await
    }

    fn unreachable_hosts(&self) -> Vec<String> {
        self.unreached
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    async fn lost_hosts(&self) -> Result<Vec<String>> {
        if !self.spans() {
            return Ok(Vec::new());
        }
        let seen = self
            .on_managers("reading which hosts the swarm has lost", |e| async move {
                e.swarm_nodes().await
            })
            .await?;
        Ok(self
            .hosts()
            .iter()
            .filter(|h| !h.gone)
            .filter(|h| {
                seen.iter()
                    .any(|n| n.node_id == h.entry.node_id && n.lost())
            })
            .map(|h| h.entry.name.clone())
            .collect())
    }

    async fn download(&self, container: &str, path: &str) -> Result<Vec<u8>> {
        self.at_container(container)
            .await?
            .download(container, path)
            .await
    }
}

/// What every engine listed, each name once (the first engine's).
fn once_by_name<T>(listed: Vec<(usize, Vec<T>)>, name: impl Fn(&T) -> &String) -> Vec<T> {
    let mut seen = std::collections::HashSet::new();
    listed
        .into_iter()
        .flat_map(|(_, items)| items)
        .filter(|t| seen.insert(name(t).clone()))
        .collect()
}

/// The store of [`MultiHost`]: the record container and its volumes as on
/// one engine ([`MetaStore`](crate::provider::store::MetaStore), on the
/// home engine), and for a cluster over several hosts a claim on its name
/// in the swarm's own consistent store too (a swarm config `mcc-c-NAME`,
/// which the managers' Raft log lets exactly one creator make): two mcc
/// pointed at different engines of the swarm cannot both make it. The
/// claim is dropped when the cluster's objects are gone. Its locks are
/// this machine's files and, while they are held, swarm configs
/// `mcc-l-KEY` with a lease (`lease.rs`).
struct SwarmStore {
    meta: crate::provider::store::MetaStore,
    multi: Arc<MultiHost>,
}

/// A lock of a [`SwarmStore`]: the swarm's (`lease.rs`), and this
/// machine's file (`crate::lock`), released in that order.
struct BothLocks {
    _swarm: super::lease::SwarmLock,
    _file: crate::provider::store::Held,
}

/// The swarm claim of cluster `name`.
fn cluster_claim(name: &crate::model::ClusterName) -> String {
    format!("c-{name}")
}

#[async_trait]
impl crate::provider::store::ClusterStore for SwarmStore {
    async fn claim(
        &self,
        name: &crate::model::ClusterName,
        record: &crate::model::ClusterRecord,
        image: &str,
        creator: &str,
    ) -> Result<()> {
        if record.hosts.is_empty() {
            return self.meta.claim(name, record, image, creator).await;
        }
        let key = cluster_claim(name);
        let with = labels::of(name, None);
        let claimed = self
            .multi
            .through_a_manager(|e| {
                let (key, with) = (&key, &with);
                async move { e.swarm_claim(key, creator, with).await }
            })
            .await
            .unwrap_or_else(|| {
                Err(Error::Failed(format!(
                    "cluster '{name}': no host of the swarm answers, and its name is claimed there (`mcc host list`)"
                )))
            })?;
        if let Some(holder) = claimed {
            return Err(Error::Conflict(format!(
                "cluster '{name}' already exists on the swarm or is being created by another mcc (its name is claimed by {holder}); choose another --name"
            )));
        }
        let made = self.meta.claim(name, record, image, creator).await;
        if made.is_err() {
            let _ = self
                .multi
                .through_a_manager(|e| {
                    let key = &key;
                    async move { e.swarm_release(key, creator).await }
                })
                .await;
        }
        made
    }

    async fn release(&self, name: &crate::model::ClusterName) -> Result<()> {
        if !self.multi.spans() {
            return Ok(());
        }
        let key = cluster_claim(name);
        // no host answering: the claim stays, and a create of the name
        // says who holds it
        match self
            .multi
            .through_a_manager(|e| {
                let key = &key;
                async move { e.swarm_drop(key).await }
            })
            .await
        {
            Some(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }

    async fn read(&self, name: &crate::model::ClusterName, path: &str) -> Result<Option<Vec<u8>>> {
        self.meta.read(name, path).await
    }

    async fn write(&self, name: &crate::model::ClusterName, dir: &str, tar: Vec<u8>) -> Result<()> {
        self.meta.write(name, dir, tar).await
    }

    async fn lock(
        &self,
        key: &str,
        what: &str,
        timeout: std::time::Duration,
        on_wait: &(dyn for<'m> Fn(&'m str) + Send + Sync),
    ) -> Result<crate::provider::store::Held> {
        // this machine's processes exclude each other through the file
        // first, so that only one of them at a time asks the swarm
        let started = std::time::Instant::now();
        let file = self.meta.lock(key, what, timeout, on_wait).await?;
        if !self.multi.spans() {
            // no swarm: this machine's lock is all there is, as on one engine
            return Ok(file);
        }
        let left = timeout.saturating_sub(started.elapsed());
        let swarm = self.multi.lock_swarm(key, what, left, on_wait).await?;
        Ok(Box::new(BothLocks {
            _swarm: swarm,
            _file: file,
        }))
    }

    async fn try_lock(
        &self,
        key: &str,
        what: &str,
    ) -> Result<Option<crate::provider::store::Held>> {
        let Some(file) = self.meta.try_lock(key, what).await? else {
            return Ok(None);
        };
        if !self.multi.spans() {
            return Ok(Some(file));
        }
        Ok(self.multi.try_lock_swarm(key, what).await?.map(
            |swarm| -> crate::provider::store::Held {
                Box::new(BothLocks {
                    _swarm: swarm,
                    _file: file,
                })
            },
        ))
    }

    async fn rewrite_live(
        &self,
        name: &crate::model::ClusterName,
        record: &crate::model::ClusterRecord,
        file: &str,
        content: &[u8],
    ) -> Result<()> {
        self.meta.rewrite_live(name, record, file, content).await
    }
}
