//! Services on workers that are Docker hosts (MyCluster on mcc): the
//! desired state (each service's image and replica count) lives in the
//! store; what runs is read from the workers' own engines. A reconciler
//! per cluster makes the two agree ([`plan`]); it runs when the host's
//! engine reports a worker stopping, when a worker's engine reports a
//! replica stopping or stops answering, when a service changes, and every
//! few seconds as a safety net.
//!
//! Replicas are containers in the workers' engines, labelled
//! `mcc.service=<name>` and `mcc.replica=<n>` (and `mcc.cluster`), so a
//! restarted daemon adopts them and never starts an index twice.

pub mod api;
pub mod plan;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use mcc_api::{ReplicaView, ServiceDef};
use mcc_core::model::docker_workers::ENGINE_PORT;
use mcc_core::model::{labels, ClusterName, ClusterRecord, SCHEMA_VERSION};
use mcc_core::provider::{
    ContainerRequest, ContainerState, Engine, EngineEvent, EventAction, EventObject,
};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::events::{About, EventLog};
use crate::store::Store;
use plan::{Action, Replica, WorkerState};

pub use mcc_core::model::labels::{REPLICA as REPLICA_LABEL, SERVICE as SERVICE_LABEL};

/// The safety net: a full pass at least this often.
const RECONCILE_EVERY: Duration = Duration::from_secs(5);
/// How long a worker's engine may take to answer a pass's question before
/// the worker counts as down.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(2);
/// Replicas started, restarted or removed at once.
const PARALLEL_ACTIONS: usize = 8;
/// A replica that crashes is restarted after 0.2 s, 0.4 s, … up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A replica running this long since its last restart is well again.
const HEALTHY_AFTER: Duration = Duration::from_secs(10);

/// Counter names, per cluster (`<name>:<cluster>`).
pub const FAILURES: &str = "workers.failures";
pub const RELOCATED: &str = "containers.relocated";
pub const REQUESTS: &str = "services.requests";

/// What a cluster's services look like now, as the last pass saw them:
/// what `/state`, `/stats` and `service show` answer from.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Seconds since the epoch when the cluster was made.
    pub created: u64,
    pub workers: Vec<WorkerView>,
    /// Passes done (0: not seen yet).
    pub passes: u64,
}

#[derive(Clone, Debug)]
pub struct WorkerView {
    pub name: String,
    pub healthy: bool,
    /// Replicas, with their service's image.
    pub replicas: Vec<(ReplicaView, String, String)>,
}

impl Snapshot {
    /// The replicas of `service`, by index.
    pub fn instances(&self, service: &str) -> Vec<ReplicaView> {
        let mut v: Vec<ReplicaView> = self
            .workers
            .iter()
            .flat_map(|w| w.replicas.iter())
            .filter(|(_, s, _)| s == service)
            .map(|(r, _, _)| r.clone())
            .collect();
        v.sort_by(|a, b| a.replica.cmp(&b.replica).then(a.worker.cmp(&b.worker)));
        v
    }
}

/// A connection to one worker's engine, and the task following its events.
struct WorkerEngine {
    addr: String,
    docker: Arc<dyn Engine>,
    watching: CancellationToken,
}

impl Drop for WorkerEngine {
    fn drop(&mut self) {
        self.watching.cancel();
    }
}

/// mcc serve's client certificate for a cluster's engines, on disk.
struct Tls {
    /// key, cert and CA files.
    files: (PathBuf, PathBuf, PathBuf),
    /// The authority it was issued under: a cluster deleted and made
    /// again under its name has another.
    ca: String,
    issued: Instant,
}

/// How long the daemon uses one client certificate (it lasts a day: see
/// `DockerWorkers::session_cert`) before it makes the next.
const TLS_RENEW: Duration = Duration::from_secs(12 * 3600);

struct Backoff {
    attempts: u32,
    last: Instant,
}

/// What a pass keeps from one to the next.
#[derive(Default)]
struct Memory {
    engines: HashMap<String, WorkerEngine>,
    /// The client certificate files, once written.
    tls: Option<Tls>,
    healthy: HashMap<String, bool>,
    /// Where each replica was last seen or started.
    placements: HashMap<(String, u32), String>,
    backoff: HashMap<(String, u32), Backoff>,
    /// Images known to be on a worker.
    images: HashSet<(String, String)>,
}

impl Memory {
    /// The replicas a worker's engine lists; where each running one is
    /// is remembered, and one well again ends its backoff.
    fn replicas_seen(
        &mut self,
        worker: &str,
        list: &[mcc_core::provider::ContainerInfo],
    ) -> Vec<Replica> {
        let mut replicas = Vec::new();
        for c in list {
            let (Some(service), Some(index)) = (
                c.labels.get(SERVICE_LABEL),
                c.labels.get(REPLICA_LABEL).and_then(|i| i.parse().ok()),
            ) else {
                continue;
            };
            let running = c.state == ContainerState::Running;
            let key = (service.clone(), index);
            if running {
                self.placements.insert(key.clone(), worker.to_string());
                if self
                    .backoff
                    .get(&key)
                    .is_some_and(|b| b.last.elapsed() > HEALTHY_AFTER)
                {
                    self.backoff.remove(&key);
                }
            }
            replicas.push(Replica {
                service: service.clone(),
                index,
                id: c.id.clone(),
                running,
            });
        }
        replicas
    }

    /// A worker whose engine did not answer: it is reached anew when it
    /// does, and what images it had is not counted on.
    fn forget(&mut self, worker: &str) {
        self.engines.remove(worker);
        self.images.retain(|(iw, _)| iw != worker);
    }

    /// One more restart of replica `index` of `service`: how many in a
    /// row now, which its backoff grows with.
    fn restarted(&mut self, service: &str, index: u32) -> u32 {
        let b = self
            .backoff
            .entry((service.to_string(), index))
            .or_insert(Backoff {
                attempts: 0,
                last: Instant::now(),
            });
        b.attempts += 1;
        b.last = Instant::now();
        b.attempts
    }
}

struct Runtime {
    cluster: String,
    wake: Notify,
    passes: watch::Sender<u64>,
    snapshot: RwLock<Snapshot>,
    memory: tokio::sync::Mutex<Memory>,
}

pub struct Services {
    provider: Arc<dyn Engine>,
    /// The clusters on `provider`: how their labels are read.
    clusters: mcc_core::cluster::Clusters,
    store: Arc<Store>,
    log: Arc<EventLog>,
    /// `<state-dir>/engines`: the client certificates, per cluster.
    dir: PathBuf,
    runtimes: std::sync::Mutex<HashMap<String, Arc<Runtime>>>,
    stop: CancellationToken,
    /// `mcc serve --cluster`: what `/api/v1/service`, `/stats` and
    /// `/state` answer for.
    pub default_cluster: Option<String>,
}

fn counter(name: &str, cluster: &str) -> String {
    format!("{name}:{cluster}")
}

impl Services {
    pub fn new(
        provider: Arc<dyn Engine>,
        store: Arc<Store>,
        log: Arc<EventLog>,
        dir: PathBuf,
        default_cluster: Option<String>,
        stop: CancellationToken,
    ) -> Arc<Services> {
        Arc::new(Services {
            clusters: mcc_core::cluster::Clusters::new(
                provider.clone(),
                Arc::new(mcc_core::cluster::Silent),
            ),
            provider,
            store,
            log,
            dir,
            runtimes: Default::default(),
            stop,
            default_cluster,
        })
    }

    /// Starts the reconcilers of every cluster that has services.
    pub fn start(self: &Arc<Self>) {
        let clusters: HashSet<String> = self
            .store
            .services()
            .unwrap_or_default()
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        for c in clusters {
            self.runtime(&c);
        }
    }

    /// The reconciler of `cluster`, started on first use.
    fn runtime(self: &Arc<Self>, cluster: &str) -> Arc<Runtime> {
        let mut map = self.runtimes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rt) = map.get(cluster) {
            return rt.clone();
        }
        let rt = Arc::new(Runtime {
            cluster: cluster.to_string(),
            wake: Notify::new(),
            passes: watch::channel(0).0,
            snapshot: RwLock::new(Snapshot::default()),
            memory: Default::default(),
        });
        map.insert(cluster.to_string(), rt.clone());
        let (me, rt2) = (self.clone(), rt.clone());
        tokio::spawn(async move { me.reconcile_loop(rt2).await });
        rt
    }

    /// The services defined on `cluster`.
    pub fn defs(&self, cluster: &str) -> crate::Result<Vec<ServiceDef>> {
        Ok(self
            .store
            .services()?
            .into_iter()
            .filter(|(c, _)| c == cluster)
            .map(|(_, d)| d)
            .collect())
    }

    /// What the last pass saw of `cluster`; empty when no reconciler
    /// watches it (asking never starts one: see [`Self::converge`]).
    pub fn snapshot(&self, cluster: &str) -> Snapshot {
        let map = self.runtimes.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(cluster) {
            Some(rt) => rt
                .snapshot
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            None => Snapshot::default(),
        }
    }

    /// Whether a reconciler watches `cluster`.
    pub fn watching(&self, cluster: &str) -> bool {
        self.runtimes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(cluster)
    }

    /// Wakes the reconciler of `cluster` and waits for a pass that began
    /// after now (bounded: the caller answers anyway).
    pub async fn converge(self: &Arc<Self>, cluster: &str, limit: Duration) -> Snapshot {
        let rt = self.runtime(cluster);
        let mut rx = rt.passes.subscribe();
        let seen = *rx.borrow_and_update();
        rt.wake.notify_one();
        // a pass running now began before the change: wait for the next
        let _ = tokio::time::timeout(limit, async {
            while *rx.borrow_and_update() < seen + 2 {
                if rx.changed().await.is_err() {
                    return;
                }
                if *rx.borrow() > seen {
                    rt.wake.notify_one();
                }
            }
        })
        .await;
        self.snapshot(cluster)
    }

    pub fn wake(self: &Arc<Self>, cluster: &str) {
        self.runtime(cluster).wake.notify_one();
    }

    /// Bumps a counter of `cluster`.
    pub fn count(&self, name: &str, cluster: &str, by: u64) {
        if let Err(e) = self.store.bump(&counter(name, cluster), by) {
            tracing::warn!(error = %e, "cannot count {name}");
        }
    }

    /// The counters of `cluster`.
    pub fn counters(&self, cluster: &str) -> HashMap<String, u64> {
        let suffix = format!(":{cluster}");
        self.store
            .counters()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| Some((k.strip_suffix(&suffix)?.to_string(), v)))
            .collect()
    }

    /// What the host engine's watcher saw: a worker stopping or coming
    /// back wakes its cluster's reconciler at once.
    pub fn host_event(self: &Arc<Self>, e: &EngineEvent) {
        if e.object != EventObject::Container
            || e.labels.get(labels::ROLE).map(String::as_str) != Some(labels::role::WORKER)
        {
            return;
        }
        let Some(cluster) = e.labels.get(labels::CLUSTER) else {
            return;
        };
        let map = self.runtimes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rt) = map.get(cluster) {
            rt.wake.notify_one();
        }
    }

    /// The host's event stream came back after a drop: what it missed may
    /// matter to every cluster.
    pub fn wake_all(&self) {
        let map = self.runtimes.lock().unwrap_or_else(|p| p.into_inner());
        for rt in map.values() {
            rt.wake.notify_one();
        }
    }

    async fn reconcile_loop(self: Arc<Self>, rt: Arc<Runtime>) {
        loop {
            let started = Instant::now();
            let next = self.pass(&rt).await;
            rt.passes.send_modify(|n| *n += 1);
            // a cluster that is gone (or not of Docker workers) and has no
            // services needs no reconciler
            let gone = rt
                .snapshot
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .created
                == 0;
            if gone && self.defs(&rt.cluster).is_ok_and(|d| d.is_empty()) {
                let mut map = self.runtimes.lock().unwrap_or_else(|p| p.into_inner());
                if map.get(&rt.cluster).is_some_and(|r| Arc::ptr_eq(r, &rt)) {
                    map.remove(&rt.cluster);
                }
                return;
            }
            let wait = next.unwrap_or(RECONCILE_EVERY).min(RECONCILE_EVERY);
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = rt.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
            // a burst of events makes one pass, not one each
            if started.elapsed() < Duration::from_millis(20) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }

    /// One pass: observe, plan, act, publish. Returns when the next pass
    /// is due sooner than usual (a backoff ending).
    async fn pass(self: &Arc<Self>, rt: &Runtime) -> Option<Duration> {
        let mut mem = rt.memory.lock().await;
        match self.pass_locked(rt, &mut mem).await {
            Ok(next) => next,
            Err(e) => {
                tracing::warn!(cluster = %rt.cluster, error = %e, "service reconcile pass failed");
                Some(Duration::from_secs(1))
            }
        }
    }

    async fn pass_locked(
        self: &Arc<Self>,
        rt: &Runtime,
        mem: &mut Memory,
    ) -> Result<Option<Duration>, String> {
        let cluster = &rt.cluster;
        let defs = self.defs(cluster).map_err(|e| e.to_string())?;
        let name: ClusterName = cluster.parse().map_err(|e: String| e)?;
        let Some((record, mut workers)) = self.docker_workers(&name).await? else {
            // no such cluster (any more), or not one of Docker workers
            publish(rt, Snapshot::default());
            mem.engines.clear();
            return Ok(None);
        };
        self.keep_unreached(&mut workers, mem);
        let tls = self.renew_tls(&name, &record, mem)?;
        // observe every worker's engine at once
        let observed = observe(&workers, mem, &tls, cluster).await;
        let (states, listed) = self.take_in(rt, mem, observed);

        let (todo, mut next) = due(plan::plan(&defs, &states), mem);
        if !todo.is_empty() {
            let acting = Acting::new(cluster, &name, &defs, &states, mem);
            let done = self.act(&acting, mem, &todo).await;
            // what the actions did is seen by the next pass, which comes
            // at once (the published state is then what runs); after
            // failures only, a little later
            let again = if done > 0 {
                Duration::ZERO
            } else {
                Duration::from_secs(1)
            };
            next = Some(next.map_or(again, |n| n.min(again)));
        }

        // publish what was observed
        publish(
            rt,
            Snapshot {
                created: record.created,
                workers: views_of(&defs, &states, &listed),
                ..Snapshot::default()
            },
        );
        Ok(next)
    }

    /// The cluster's record and its workers by name, each with its
    /// engine's address while its container runs; `None` when the
    /// provider holds no such cluster or it is not one of Docker workers.
    async fn docker_workers(
        &self,
        name: &ClusterName,
    ) -> Result<Option<(ClusterRecord, Vec<(String, Option<String>)>)>, String> {
        let objects = self
            .clusters
            .objects(name)
            .await
            .map_err(|e| e.to_string())?;
        let Some((objects, record)) = objects
            .and_then(|o| o.record.clone().map(|r| (o, r)))
            .filter(|(_, r)| r.docker.is_some())
        else {
            return Ok(None);
        };
        let network = record.network(name);
        let mut workers = Vec::new();
        for (node, c) in objects.workers() {
            let addr = match c.state == ContainerState::Running {
                true => self.engine_address(&record, &network, c).await,
                false => None,
            };
            workers.push((node.hostname(), addr));
        }
        workers.sort();
        Ok(Some((record, workers)))
    }

    /// Where a running worker's engine is reached: on the cluster's
    /// network, or (a cluster over hosts, whose overlay is not routed to
    /// this machine) where its host publishes the engine's port. `None`
    /// while that cannot be told (its host does not answer).
    async fn engine_address(
        &self,
        record: &ClusterRecord,
        network: &str,
        c: &mcc_core::provider::ContainerInfo,
    ) -> Option<String> {
        let host = c.host.as_deref().filter(|_| !record.hosts.is_empty());
        let Some(host) = host else {
            let ip = c.addresses.get(network)?;
            return Some(format!("tcp://{ip}:{ENGINE_PORT}"));
        };
        let port = c.ports.iter().find(|(inner, _)| *inner == ENGINE_PORT)?.1;
        match self.provider.host_address(host).await {
            Ok(Some(ip)) => Some(format!("tcp://{ip}:{port}")),
            _ => None,
        }
    }

    /// A worker seen before that no engine lists now while a host does
    /// not answer is on that host as far as can be told: kept, down (its
    /// replicas are relocated and counted so), not dropped as if removed.
    fn keep_unreached(&self, workers: &mut Vec<(String, Option<String>)>, mem: &Memory) {
        if self.provider.unreachable_hosts().is_empty() {
            return;
        }
        let mut gone: Vec<String> = mem
            .healthy
            .keys()
            .filter(|w| !workers.iter().any(|(l, _)| l == *w))
            .cloned()
            .collect();
        gone.sort();
        workers.extend(gone.into_iter().map(|w| (w, None)));
        workers.sort();
    }

    /// What a pass observed, as the planner takes it (each worker, its
    /// health and replicas) and as the pass publishes it (what each
    /// engine listed); the memory follows it.
    fn take_in(
        self: &Arc<Self>,
        rt: &Runtime,
        mem: &mut Memory,
        observed: Vec<(String, Option<Observed>)>,
    ) -> (Vec<WorkerState>, Listings) {
        let mut states: Vec<WorkerState> = Vec::new();
        let mut listed: Listings = HashMap::new();
        for (w, seen) in observed {
            let healthy = seen.is_some();
            self.note_health(&rt.cluster, mem, &w, healthy);
            let replicas = match seen {
                Some((addr, docker, list)) => {
                    self.keep_engine(rt, mem, &w, addr, docker);
                    let replicas = mem.replicas_seen(&w, &list);
                    listed.insert(w.clone(), list);
                    replicas
                }
                None => {
                    mem.forget(&w);
                    Vec::new()
                }
            };
            states.push(WorkerState {
                name: w,
                healthy,
                replicas,
            });
        }
        (states, listed)
    }

    /// Remembers whether worker `w` answered: a worker going down counts
    /// as a failure, and the log says why its replicas move.
    fn note_health(&self, cluster: &str, mem: &mut Memory, w: &str, healthy: bool) {
        let was = mem.healthy.insert(w.to_string(), healthy);
        if was == Some(true) && !healthy {
            self.count(FAILURES, cluster, 1);
            self.log.record(
                "service",
                node_about(cluster, w),
                format!("worker {w} is down: relocating its replicas"),
            );
        } else if was == Some(false) && healthy {
            self.log.record(
                "service",
                node_about(cluster, w),
                format!("worker {w} is back"),
            );
        }
    }

    /// Keeps the connection a pass reached worker `w`'s engine by; one at
    /// another address than before is followed from now on (the old
    /// one's watch ends as it is dropped).
    fn keep_engine(
        self: &Arc<Self>,
        rt: &Runtime,
        mem: &mut Memory,
        w: &str,
        addr: String,
        docker: Arc<dyn Engine>,
    ) {
        if mem.engines.get(w).map(|e| e.addr.as_str()) != Some(addr.as_str()) {
            let watching = self.watch_worker(rt, w, docker.clone());
            mem.engines.insert(
                w.to_string(),
                WorkerEngine {
                    addr,
                    docker,
                    watching,
                },
            );
        }
    }

    /// The client certificate for the cluster's engines, made anew when
    /// there is none, the cluster's authority changed, or it is old; the
    /// engines are then reached again with it.
    fn renew_tls(
        &self,
        name: &ClusterName,
        record: &ClusterRecord,
        mem: &mut Memory,
    ) -> Result<(PathBuf, PathBuf, PathBuf), String> {
        let ca = record.docker.as_ref().map(|d| d.ca_cert.as_str());
        let stale = mem
            .tls
            .as_ref()
            .is_none_or(|t| Some(t.ca.as_str()) != ca || t.issued.elapsed() > TLS_RENEW);
        if stale {
            let files = self.write_tls(name, record).map_err(|e| e.to_string())?;
            mem.tls = Some(Tls {
                files,
                ca: ca.unwrap_or_default().to_string(),
                issued: Instant::now(),
            });
            // the engines are reached again, with the new certificate
            mem.engines.clear();
        }
        Ok(mem.tls.as_ref().expect("written above").files.clone())
    }

    /// Carries out a pass's actions, a few at once; how many succeeded.
    async fn act(&self, acting: &Acting<'_>, mem: &mut Memory, actions: &[Action]) -> usize {
        // images first, once per worker and image
        let unloadable = self.load_images(acting, mem, actions).await;
        let results = self.run(acting, acting.jobs(actions, &unloadable)).await;
        let done = results.iter().filter(|(_, r)| r.is_ok()).count();
        for (a, r) in results {
            self.record_outcome(acting, mem, &a, r);
        }
        done
    }

    /// Gets the images the starts need onto their workers, all at once;
    /// the (worker, image) pairs that could not be had, whose starts wait
    /// for a later pass.
    async fn load_images(
        &self,
        acting: &Acting<'_>,
        mem: &mut Memory,
        actions: &[Action],
    ) -> HashSet<(String, String)> {
        let cluster = acting.cluster;
        let needed = acting.images_needed(actions, mem);
        let loads = futures_util::future::join_all(needed.iter().map(|(w, image)| {
            let docker = acting.engine(w);
            async move {
                let Some(docker) = docker else {
                    return (w.clone(), image.clone(), Err("no engine".to_string()));
                };
                let r = self.ensure_image(cluster, w, docker.as_ref(), image).await;
                (w.clone(), image.clone(), r)
            }
        }))
        .await;
        let mut unloadable: HashSet<(String, String)> = HashSet::new();
        for (w, image, r) in loads {
            match r {
                Ok(()) => {
                    mem.images.insert((w, image));
                }
                Err(e) => {
                    self.log.record(
                        "service",
                        node_about(cluster, &w),
                        format!("cannot get image {image} onto {w}: {e}"),
                    );
                    unloadable.insert((w, image));
                }
            }
        }
        unloadable
    }

    /// Applies the jobs, [`PARALLEL_ACTIONS`] at once: each action, with
    /// what became of it.
    async fn run(&self, acting: &Acting<'_>, jobs: Vec<Job>) -> Vec<(Action, Result<(), String>)> {
        let name = acting.name;
        // the futures made first, then run a few at once: a closure inside
        // the stream trips the compiler's Send check over the engines'
        // trait objects
        let work: Vec<futures_util::future::BoxFuture<'_, (Action, Result<(), String>)>> = jobs
            .into_iter()
            .map(|(a, docker, def): Job| {
                futures_util::FutureExt::boxed(async move {
                    let r = self.apply(&a, docker.as_ref(), def.as_ref(), name).await;
                    (a, r)
                })
            })
            .collect();
        futures_util::stream::iter(work)
            .buffer_unordered(PARALLEL_ACTIONS)
            .collect()
            .await
    }

    /// Says what an action did, and remembers what later passes need of
    /// it: where a replica runs now, how often it was restarted.
    fn record_outcome(
        &self,
        acting: &Acting<'_>,
        mem: &mut Memory,
        a: &Action,
        r: Result<(), String>,
    ) {
        let cluster = acting.cluster;
        let about = |w| node_about(cluster, w);
        match (a, r) {
            (
                Action::Start {
                    service,
                    index,
                    worker,
                },
                Ok(()),
            ) => {
                let key = (service.clone(), *index);
                let from = mem.placements.insert(key, worker.clone());
                let msg = match from.filter(|f| f != worker && acting.down.contains(f.as_str())) {
                    Some(f) => {
                        self.count(RELOCATED, cluster, 1);
                        format!("replica {service}.{index} relocated from {f} to {worker}")
                    }
                    None => format!("replica {service}.{index} started on {worker}"),
                };
                self.log.record("service", about(worker), msg);
            }
            (
                Action::Restart {
                    service,
                    index,
                    worker,
                    ..
                },
                Ok(()),
            ) => {
                let attempts = mem.restarted(service, *index);
                self.log.record(
                    "service",
                    about(worker),
                    format!(
                        "replica {service}.{index} stopped; restarted on {worker} (attempt {attempts})"
                    ),
                );
            }
            (
                Action::Remove {
                    service,
                    index,
                    worker,
                    ..
                },
                Ok(()),
            ) => {
                self.log.record(
                    "service",
                    about(worker),
                    format!("replica {service}.{index} removed from {worker}"),
                );
            }
            (a, Err(e)) => {
                tracing::warn!(cluster, action = ?a, error = %e, "service action failed");
            }
        }
    }

    async fn apply(
        &self,
        a: &Action,
        docker: &dyn Engine,
        def: Option<&ServiceDef>,
        name: &ClusterName,
    ) -> Result<(), String> {
        match a {
            Action::Start { index, .. } => {
                let def = def.ok_or("the service is gone")?;
                let spec = replica_spec(name, def, *index);
                docker
                    .create_container(&spec)
                    .await
                    .map_err(|e| e.to_string())?;
                if let Err(e) = docker.start_container(&spec.name).await {
                    let _ = docker.remove_container(&spec.name).await;
                    return Err(e.to_string());
                }
                Ok(())
            }
            Action::Restart { id, .. } => {
                docker.start_container(id).await.map_err(|e| e.to_string())
            }
            Action::Remove { id, .. } => docker
                .remove_container(id)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }
    }

    /// Puts `image` into a worker's engine: from the host's engine (no
    /// registry needed), else pulled by the worker.
    async fn ensure_image(
        &self,
        cluster: &str,
        worker: &str,
        docker: &dyn Engine,
        image: &str,
    ) -> Result<(), String> {
        if docker
            .image(image)
            .await
            .map_err(|e| e.to_string())?
            .is_some()
        {
            return Ok(());
        }
        if self
            .provider
            .image(image)
            .await
            .map_err(|e| e.to_string())?
            .is_some()
        {
            self.log.record(
                "service",
                node_about(cluster, worker),
                format!("loading image {image} from the host into {worker}"),
            );
            let t = Instant::now();
            // progress: an event every 64 MiB, and one at the end
            let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let (log, counted) = (self.log.clone(), sent.clone());
            let (c2, w2, i2) = (cluster.to_string(), worker.to_string(), image.to_string());
            let tar = self.provider.export_image(image).inspect(move |chunk| {
                if let Ok(b) = chunk {
                    use std::sync::atomic::Ordering;
                    let before = counted.fetch_add(b.len() as u64, Ordering::Relaxed);
                    let after = before + b.len() as u64;
                    if after >> 26 > before >> 26 {
                        log.record(
                            "service",
                            node_about(&c2, &w2),
                            format!("loading image {i2} into {w2}: {} MiB", after >> 20),
                        );
                    }
                }
            });
            docker
                .load_image(Box::pin(tar))
                .await
                .map_err(|e| e.to_string())?;
            self.log.record(
                "service",
                node_about(cluster, worker),
                format!(
                    "image {image} loaded into {worker}: {:.1} MiB in {:.2} s",
                    sent.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1048576.0,
                    t.elapsed().as_secs_f64()
                ),
            );
            return Ok(());
        }
        self.log.record(
            "service",
            node_about(cluster, worker),
            format!("pulling image {image} on {worker}"),
        );
        docker.pull(image, &|_| {}).await.map_err(|e| e.to_string())
    }

    /// Follows a worker's engine events: a replica stopping, or the engine
    /// going away, wakes the reconciler.
    fn watch_worker(
        self: &Arc<Self>,
        rt: &Runtime,
        worker: &str,
        docker: Arc<dyn Engine>,
    ) -> CancellationToken {
        let token = self.stop.child_token();
        let (t2, cluster, worker) = (token.clone(), rt.cluster.clone(), worker.to_string());
        let me = self.clone();
        tokio::spawn(async move {
            let mut events = docker.events(labels::CLUSTER, None);
            loop {
                let next = tokio::select! {
                    _ = t2.cancelled() => return,
                    n = events.next() => n,
                };
                match next {
                    Some(Ok(e)) if e.action == EventAction::Lost => {
                        tracing::info!(cluster, worker, reason = %e.detail, "a worker's engine was lost");
                        me.wake(&cluster);
                        return;
                    }
                    Some(Ok(e)) if e.labels.contains_key(SERVICE_LABEL) => {
                        if e.action.ends() {
                            me.wake(&cluster);
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => {
                        tracing::info!(cluster, worker, "a worker's engine event stream ended");
                        me.wake(&cluster);
                        return;
                    }
                }
            }
        });
        token
    }

    /// Writes a client certificate of mcc serve's for a cluster's engines
    /// (one that lasts a day), 0600 in a 0700 folder of the state
    /// directory.
    fn write_tls(
        &self,
        name: &ClusterName,
        record: &ClusterRecord,
    ) -> std::io::Result<(PathBuf, PathBuf, PathBuf)> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let dw = record
            .docker
            .as_ref()
            .ok_or_else(|| std::io::Error::other("not a cluster of Docker workers"))?;
        let pem = dw
            .session_cert(name, "mcc serve")
            .map_err(std::io::Error::other)?;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(&self.dir)?;
        let dir = self.dir.join(name.as_str());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let write = |file: &str, text: &str| -> std::io::Result<PathBuf> {
            let path = dir.join(file);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            f.write_all(text.as_bytes())?;
            Ok(path)
        };
        Ok((
            write("key.pem", &pem.key)?,
            write("cert.pem", &pem.cert)?,
            write("ca.pem", &dw.ca_cert)?,
        ))
    }
}

fn node_about<'a>(cluster: &'a str, node: &'a str) -> About<'a> {
    About {
        cluster: Some(cluster),
        node: Some(node),
        ..About::default()
    }
}

/// The container of replica `index` of a service.
pub fn replica_spec(cluster: &ClusterName, def: &ServiceDef, index: u32) -> ContainerRequest {
    let mut l: mcc_core::provider::Labels = HashMap::new();
    l.insert(labels::CLUSTER.into(), cluster.to_string());
    l.insert(labels::SCHEMA.into(), SCHEMA_VERSION.into());
    l.insert(SERVICE_LABEL.into(), def.service.clone());
    l.insert(REPLICA_LABEL.into(), index.to_string());
    let mut suffix = [0u8; 3];
    let _ = getrandom::fill(&mut suffix);
    ContainerRequest {
        name: format!("{}.{index}.{}", def.service, hex::encode(suffix)),
        image: def.image.clone(),
        cmd: (!def.cmd.is_empty()).then(|| def.cmd.clone()),
        env: def.env.clone(),
        labels: l,
        publish: def.ports.clone(),
        ..Default::default()
    }
}

/// Each worker's engine (reached again only when its address changed) and
/// what it runs of the cluster; `None` for a worker without an address or
/// whose engine does not answer in time.
async fn observe(
    workers: &[(String, Option<String>)],
    mem: &Memory,
    tls: &(PathBuf, PathBuf, PathBuf),
    cluster: &str,
) -> Vec<(String, Option<Observed>)> {
    futures_util::future::join_all(workers.iter().map(|(w, addr)| {
        let existing = mem
            .engines
            .get(w)
            .map(|e| (e.addr.clone(), e.docker.clone()));
        let tls = tls.clone();
        let cluster = cluster.to_string();
        async move {
            let Some(addr) = addr.clone() else {
                return (w.clone(), None);
            };
            let docker = match existing.filter(|(a, _)| *a == addr) {
                Some((_, d)) => d,
                None => match tokio::time::timeout(
                    ENGINE_TIMEOUT,
                    mcc_core::provider::connect_worker(&addr, &tls, 10),
                )
                .await
                {
                    Ok(Ok(d)) => d,
                    _ => return (w.clone(), None),
                },
            };
            let listed = tokio::time::timeout(
                ENGINE_TIMEOUT,
                docker.containers(labels::CLUSTER, Some(&cluster)),
            )
            .await;
            match listed {
                Ok(Ok(list)) => (w.clone(), Some((addr, docker, list))),
                _ => (w.clone(), None),
            }
        }
    }))
    .await
}

/// An action to carry out, on its worker's engine, with its service.
type Job = (Action, Arc<dyn Engine>, Option<ServiceDef>);

/// A worker's engine, its address and what it lists of the cluster.
type Observed = (
    String,
    Arc<dyn Engine>,
    Vec<mcc_core::provider::ContainerInfo>,
);

/// What each worker's engine lists of the cluster, by worker.
type Listings = HashMap<String, Vec<mcc_core::provider::ContainerInfo>>;

/// What a pass's actions are carried out with: the engines it reached (a
/// copy, so that the memory is free for what the actions did), the
/// services, and the workers it found down (a replica started elsewhere
/// was relocated from one).
struct Acting<'a> {
    cluster: &'a str,
    name: &'a ClusterName,
    defs: &'a [ServiceDef],
    engines: HashMap<String, Arc<dyn Engine>>,
    down: HashSet<&'a str>,
}

impl<'a> Acting<'a> {
    fn new(
        cluster: &'a str,
        name: &'a ClusterName,
        defs: &'a [ServiceDef],
        states: &'a [WorkerState],
        mem: &Memory,
    ) -> Acting<'a> {
        Acting {
            cluster,
            name,
            defs,
            engines: mem
                .engines
                .iter()
                .map(|(w, e)| (w.clone(), e.docker.clone()))
                .collect(),
            down: states
                .iter()
                .filter(|w| !w.healthy)
                .map(|w| w.name.as_str())
                .collect(),
        }
    }

    fn engine(&self, worker: &str) -> Option<Arc<dyn Engine>> {
        self.engines.get(worker).cloned()
    }

    /// The images the starts need on their workers, as (worker, image),
    /// once each, leaving out those known to be there.
    fn images_needed(&self, actions: &[Action], mem: &Memory) -> Vec<(String, String)> {
        let mut needed: Vec<(String, String)> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Start {
                    service, worker, ..
                } => self
                    .defs
                    .iter()
                    .find(|d| &d.service == service)
                    .map(|d| (worker.clone(), d.image.clone())),
                _ => None,
            })
            .filter(|k| !mem.images.contains(k))
            .collect();
        needed.sort();
        needed.dedup();
        needed
    }

    /// Each action with its worker's engine and its service; one on a
    /// worker whose engine the pass did not reach, or a start whose image
    /// could not be had, waits for a later pass.
    fn jobs(&self, actions: &[Action], unloadable: &HashSet<(String, String)>) -> Vec<Job> {
        actions
            .iter()
            .filter_map(|a| {
                let (worker, service) = match a {
                    Action::Start {
                        worker, service, ..
                    }
                    | Action::Restart {
                        worker, service, ..
                    }
                    | Action::Remove {
                        worker, service, ..
                    } => (worker, service),
                };
                let docker = self.engine(worker)?;
                let def = self.defs.iter().find(|d| &d.service == service).cloned();
                if let (Action::Start { .. }, Some(d)) = (a, &def) {
                    if unloadable.contains(&(worker.clone(), d.image.clone())) {
                        return None;
                    }
                }
                Some((a.clone(), docker, def))
            })
            .collect()
    }
}

/// The actions to take now: restarts still in their backoff wait, and
/// when the next pass is due for them.
fn due(actions: Vec<Action>, mem: &Memory) -> (Vec<Action>, Option<Duration>) {
    let mut next: Option<Duration> = None;
    let mut todo: Vec<Action> = Vec::new();
    for a in actions {
        if let Action::Restart { service, index, .. } = &a {
            let key = (service.clone(), *index);
            if let Some(b) = mem.backoff.get(&key) {
                let wait = Duration::from_millis(200)
                    .saturating_mul(1u32 << b.attempts.min(10))
                    .min(MAX_BACKOFF);
                let left = wait.saturating_sub(b.last.elapsed());
                if !left.is_zero() {
                    next = Some(next.map_or(left, |n| n.min(left)));
                    continue;
                }
            }
        }
        todo.push(a);
    }
    (todo, next)
}

/// Makes `seen` what the cluster's routes answer from, counted as one
/// more pass (what [`Services::converge`] waits on).
fn publish(rt: &Runtime, seen: Snapshot) {
    let mut s = rt.snapshot.write().unwrap_or_else(|p| p.into_inner());
    *s = Snapshot {
        passes: s.passes + 1,
        ..seen
    };
}

/// What a pass publishes of each worker: its health and its replicas.
fn views_of(
    defs: &[ServiceDef],
    states: &[WorkerState],
    listed: &HashMap<String, Vec<mcc_core::provider::ContainerInfo>>,
) -> Vec<WorkerView> {
    let by_service: HashMap<&str, &ServiceDef> =
        defs.iter().map(|d| (d.service.as_str(), d)).collect();
    states
        .iter()
        .map(|w| WorkerView {
            name: w.name.clone(),
            healthy: w.healthy,
            replicas: listed
                .get(&w.name)
                .into_iter()
                .flatten()
                .filter_map(|c| {
                    let service = c.labels.get(SERVICE_LABEL)?;
                    let index = c.labels.get(REPLICA_LABEL)?.parse().ok()?;
                    let image = by_service
                        .get(service.as_str())
                        .map(|d| d.image.clone())
                        .unwrap_or_else(|| c.image.clone());
                    Some((
                        ReplicaView {
                            replica: index,
                            worker: w.name.clone(),
                            state: c.state.as_str().to_string(),
                            container: c.name.clone(),
                            endpoints: c
                                .ports
                                .iter()
                                .map(|(_, host)| format!("{}:{host}", w.name))
                                .collect(),
                        },
                        service.clone(),
                        image,
                    ))
                })
                .collect(),
        })
        .collect()
}
