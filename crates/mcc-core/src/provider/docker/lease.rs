//! Locks between mcc processes on different machines, in the swarm's own
//! consistent store: the lock `KEY` (`cluster-NAME`, `addresses-VPC`,
//! `networks`, `volumes`) is a swarm config `mcc-l-KEY`, which the
//! managers' Raft log lets exactly one creator make. Its labels say who
//! holds it (`mcc.holder`: the process and its machine; `mcc.lock.what`:
//! what it does) and until when (`mcc.lock.until`, the lease's end); the
//! holder renews the lease while it holds the lock and removes the config
//! when done.
//!
//! A holder that dies (SIGKILL, a lost machine) stops renewing: once the
//! lease has ended a waiter breaks the lock and competes to make it again.
//! Breaking is a compare-and-set: the waiter marks the config broken at the
//! version it read (`mcc.lock.broken-by`), which fails if the holder renewed
//! meanwhile, then removes it by its ID, which a config made again since
//! does not share: two waiters breaking one stale lease cannot remove a
//! fresh one. The lease's end is read against the waiter's clock, so the
//! machines' clocks must agree to within the lease's slack (a swarm needs
//! that for its certificates anyway).
//!
//! A holder that loses its lock (stalled past its lease, then broken) is
//! not stopped: its renewal notices and stops, and its release removes
//! nothing of the new holder's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[allow(unused_imports)]
use super::*;

use bollard::models::ConfigSpec;
use bollard::query_parameters::UpdateConfigOptionsBuilder;

/// How long a lock is held without a renewal.
pub const LEASE: Duration = Duration::from_secs(15);
/// How often its holder renews it: a renewal may fail twice and come in time.
const RENEW: Duration = Duration::from_secs(5);
/// How often a waiter looks again.
const POLL: Duration = Duration::from_millis(200);
/// Waiting longer than this is told.
const WAIT_NOTICE: Duration = Duration::from_secs(1);

/// The labels of a lock config.
pub const LOCK_LABEL: &str = "mcc.lock";
const WHAT_LABEL: &str = "mcc.lock.what";
const UNTIL_LABEL: &str = "mcc.lock.until";
const TOKEN_LABEL: &str = "mcc.lock.token";
const BROKEN_LABEL: &str = "mcc.lock.broken-by";

/// The swarm config of lock `key`: `mcc-l-KEY`, or for a key that does not
/// fit a config's 64 characters of `[a-zA-Z0-9._-]`, its head and a hash
/// (two keys sharing a name would only wait for each other).
pub fn lock_config_name(key: &str) -> String {
    let fits = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    };
    let name = format!("mcc-l-{key}");
    if name.len() <= 64 && fits(key) {
        return name;
    }
    let head: String = key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .take(64 - "mcc-l-".len() - 17)
        .collect();
    // FNV-1a: stable across versions and machines, unlike std's hasher
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("mcc-l-{head}-{hash:016x}")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// This process, as a lock's labels name it.
fn this_process() -> String {
    let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "an unnamed machine".into());
    format!("mcc pid {} on {machine}", std::process::id())
}

/// Who asks for a lock: its words for the labels, and a token no other
/// attempt shares (a create whose answer was lost is recognised by it).
#[derive(Clone)]
struct Claimant {
    key: String,
    name: String,
    holder: String,
    what: String,
    token: String,
}

impl Claimant {
    fn new(key: &str, what: &str) -> Claimant {
        static N: AtomicU64 = AtomicU64::new(0);
        let holder = this_process();
        let token = format!(
            "{}-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
            N.fetch_add(1, Ordering::Relaxed)
        );
        Claimant {
            key: key.to_string(),
            name: lock_config_name(key),
            holder,
            what: what.to_string(),
            token,
        }
    }

    fn labels(&self, until_ms: u64) -> Labels {
        Labels::from([
            (LOCK_LABEL.to_string(), self.key.clone()),
            (swarm::HOLDER_LABEL.to_string(), self.holder.clone()),
            (WHAT_LABEL.to_string(), self.what.clone()),
            (UNTIL_LABEL.to_string(), until_ms.to_string()),
            (TOKEN_LABEL.to_string(), self.token.clone()),
            (
                labels::SCHEMA.to_string(),
                crate::model::SCHEMA_VERSION.to_string(),
            ),
        ])
    }
}

/// A lock config as read.
#[derive(Clone, Debug)]
pub struct LockConfig {
    pub id: String,
    version: i64,
    spec: ConfigSpec,
    pub holder: String,
    pub what: String,
    /// The lease's end, in ms since the epoch (0: none given).
    pub until_ms: u64,
    token: String,
    broken: bool,
}

impl LockConfig {
    fn from(c: bollard::models::Config) -> LockConfig {
        let spec = c.spec.unwrap_or_default();
        let l = spec.labels.clone().unwrap_or_default();
        let get = |k: &str| l.get(k).cloned().unwrap_or_default();
        LockConfig {
            id: c.id.unwrap_or_default(),
            version: c.version.and_then(|v| v.index).unwrap_or(0) as i64,
            holder: l
                .get(swarm::HOLDER_LABEL)
                .cloned()
                .unwrap_or_else(|| "an unknown holder".into()),
            what: get(WHAT_LABEL),
            until_ms: get(UNTIL_LABEL).parse().unwrap_or(0),
            token: get(TOKEN_LABEL),
            broken: l.contains_key(BROKEN_LABEL),
            spec,
        }
    }

    /// Whether no holder has it any more: broken, or its lease over at `now_ms`.
    fn dead(&self, now_ms: u64) -> bool {
        self.broken || now_ms > self.until_ms
    }
}

/// A create's answer: made (its ID), or someone's config is there.
pub enum Created {
    Made(String),
    Taken,
}

/// An update's answer: done, or the config changed or went since it was read.
pub enum Updated {
    Done,
    Stale,
}

fn is_status(e: &BollardError, status: u16) -> bool {
    matches!(e, BollardError::DockerResponseServerError { status_code, .. } if *status_code == status)
}

/// The swarm's answer to an update at an old version.
fn out_of_sequence(e: &BollardError) -> bool {
    matches!(e, BollardError::DockerResponseServerError { message, .. } if message.contains("out of sequence"))
}

impl DockerProvider {
    async fn lock_create(&self, c: &Claimant) -> Result<Created> {
        use base64::Engine as _;
        let spec = ConfigSpec {
            name: Some(c.name.clone()),
            labels: Some(c.labels(now_ms() + LEASE.as_millis() as u64)),
            // a config holds 1 byte at least: the holder, base64 as the API wants
            data: Some(base64::engine::general_purpose::STANDARD.encode(&c.holder)),
            ..Default::default()
        };
        match self.docker.create_config(spec).await {
            Ok(r) => Ok(Created::Made(r.id)),
            Err(e) if is_status(&e, 409) => Ok(Created::Taken),
            Err(e) => Err(map_err(format!("making swarm lock {}", c.name))(e)),
        }
    }

    /// Lock config `name_or_id`; `None` when there is none.
    pub async fn lock_read(&self, name_or_id: &str) -> Result<Option<LockConfig>> {
        match self.docker.inspect_config(name_or_id).await {
            Ok(c) => Ok(Some(LockConfig::from(c))),
            Err(e) if is_status(&e, 404) => Ok(None),
            Err(e) => Err(map_err(format!("reading swarm lock {name_or_id}"))(e)),
        }
    }

    /// Sets `labels` on `c` at the version it was read at.
    async fn lock_update(&self, c: &LockConfig, labels: Labels) -> Result<Updated> {
        let mut spec = c.spec.clone();
        spec.labels = Some(labels);
        let opts = UpdateConfigOptionsBuilder::new().version(c.version).build();
        match self.docker.update_config(&c.id, spec, opts).await {
            Ok(()) => Ok(Updated::Done),
            Err(e) if is_status(&e, 404) || out_of_sequence(&e) => Ok(Updated::Stale),
            Err(e) => Err(map_err(format!("updating swarm lock {}", c.id))(e)),
        }
    }

    /// Removes lock config `id` (by ID: a config made again under its
    /// name is another); `false` when it is gone already.
    async fn lock_remove(&self, id: &str) -> Result<bool> {
        match self.docker.delete_config(id).await {
            Ok(()) => Ok(true),
            Err(e) if is_status(&e, 404) => Ok(false),
            Err(e) => Err(map_err(format!("removing swarm lock {id}"))(e)),
        }
    }
}

/// Swarm lock `key`, held until dropped: its lease is renewed meanwhile,
/// its config removed at the drop.
pub struct SwarmLock {
    multi: Arc<MultiHost>,
    id: String,
    renewal: tokio::task::JoinHandle<()>,
}

/// What one attempt at a lock found.
enum Attempt {
    Held(String),
    Busy(Box<LockConfig>),
    /// Gone between the create and the read: try again at once.
    Again,
}

impl MultiHost {
    async fn attempt(&self, c: &Claimant) -> Result<Attempt> {
        let doing = format!("taking swarm lock {} (for {})", c.name, c.what);
        let made = self
            .on_managers(&doing, |e| async move { e.lock_create(c).await })
            .await?;
        if let Created::Made(id) = made {
            return Ok(Attempt::Held(id));
        }
        let found = self
            .on_managers(&doing, |e| async move { e.lock_read(&c.name).await })
            .await?;
        Ok(match found {
            None => Attempt::Again,
            // ours: a create whose answer was lost, then tried again
            Some(l) if l.token == c.token => Attempt::Held(l.id),
            Some(l) => Attempt::Busy(Box::new(l)),
        })
    }

    /// Breaks `l`, whose lease is over: marks it broken at the version
    /// read (so that a renewal meanwhile wins), then removes it by its ID.
    async fn break_lease(&self, c: &Claimant, l: &LockConfig) -> Result<()> {
        let doing = format!("breaking swarm lock {} of {}", c.name, l.holder);
        if !l.broken {
            let mut labels = l.spec.labels.clone().unwrap_or_default();
            labels.insert(BROKEN_LABEL.into(), c.holder.clone());
            let marked = self
                .on_managers(&doing, |e| {
                    let labels = labels.clone();
                    async move { e.lock_update(l, labels).await }
                })
                .await?;
            if let Updated::Stale = marked {
                return Ok(());
            }
        }
        self.on_managers(&doing, |e| async move { e.lock_remove(&l.id).await })
            .await
            .map(|_| ())
    }

    /// Takes swarm lock `key` for `what`, waiting up to `timeout` and
    /// telling `on_wait` whom it waits for; breaks a lease that is over.
    pub async fn lock_swarm(
        self: &Arc<Self>,
        key: &str,
        what: &str,
        timeout: Duration,
        on_wait: &(dyn for<'m> Fn(&'m str) + Send + Sync),
    ) -> Result<SwarmLock> {
        let c = Claimant::new(key, what);
        let started = Instant::now();
        let mut told: Option<String> = None;
        loop {
            let l = match self.attempt(&c).await {
                Ok(Attempt::Held(id)) => return Ok(self.held(&c, id)),
                Ok(Attempt::Again) => continue,
                Ok(Attempt::Busy(l)) => l,
                Err(e) => return Err(self.abandon(&c, e).await),
            };
            if l.dead(now_ms()) {
                on_wait(&broke_text(&c, &l));
                self.break_lease(&c, &l).await?;
                continue;
            }
            let waited = started.elapsed();
            if waited >= timeout {
                return Err(gave_up(&c, &l, timeout));
            }
            if waited >= WAIT_NOTICE && told.as_deref() != Some(l.id.as_str()) {
                on_wait(&waiting_text(&c, &l));
                told = Some(l.id.clone());
            }
            tokio::time::sleep(POLL.min(timeout - waited)).await;
        }
    }

    /// Like [`MultiHost::lock_swarm`], but `None` at once when another
    /// holds it (a lease that is over is broken first).
    pub async fn try_lock_swarm(
        self: &Arc<Self>,
        key: &str,
        what: &str,
    ) -> Result<Option<SwarmLock>> {
        let c = Claimant::new(key, what);
        let mut broke = false;
        loop {
            match self.attempt(&c).await {
                Ok(Attempt::Held(id)) => return Ok(Some(self.held(&c, id))),
                Ok(Attempt::Again) => continue,
                Ok(Attempt::Busy(l)) if !broke && l.dead(now_ms()) => {
                    self.break_lease(&c, &l).await?;
                    broke = true;
                }
                Ok(Attempt::Busy(_)) => return Ok(None),
                Err(e) => return Err(self.abandon(&c, e).await),
            }
        }
    }

    /// `e`, after removing the lock if a create whose answer was lost made
    /// it for `c` after all (else its lease ends it).
    async fn abandon(&self, c: &Claimant, e: Error) -> Error {
        let doing = format!("removing swarm lock {}", c.name);
        if let Ok(Some(l)) = self
            .on_managers(&doing, |e| async move { e.lock_read(&c.name).await })
            .await
        {
            if l.token == c.token {
                let _ = self
                    .on_managers(&doing, |e| {
                        let id = l.id.clone();
                        async move { e.lock_remove(&id).await }
                    })
                    .await;
            }
        }
        e
    }

    fn held(self: &Arc<Self>, c: &Claimant, id: String) -> SwarmLock {
        let renewal = tokio::spawn(renew(self.clone(), c.clone(), id.clone()));
        SwarmLock {
            multi: self.clone(),
            id,
            renewal,
        }
    }
}

/// Renews lock `id` of `c` every [`RENEW`] until it is found taken from
/// it (broken or gone), or the task is aborted (the lock dropped).
async fn renew(multi: Arc<MultiHost>, c: Claimant, id: String) {
    let doing = format!("renewing swarm lock {}", c.name);
    loop {
        tokio::time::sleep(RENEW).await;
        let read = multi
            .on_managers(&doing, |e| {
                let id = &id;
                async move { e.lock_read(id).await }
            })
            .await;
        let l = match read {
            Ok(Some(l)) if !l.broken && l.token == c.token => l,
            // taken from us: nothing more to renew
            Ok(_) => return,
            // no manager answers now: try again at the next turn, while
            // the lease lasts
            Err(_) => continue,
        };
        let labels = c.labels(now_ms() + LEASE.as_millis() as u64);
        // a stale answer: changed meanwhile (broken?): read again next turn
        let _ = multi
            .on_managers(&doing, |e| {
                let (l, labels) = (&l, labels.clone());
                async move { e.lock_update(l, labels).await }
            })
            .await;
    }
}

impl Drop for SwarmLock {
    fn drop(&mut self) {
        self.renewal.abort();
        let (multi, id) = (self.multi.clone(), std::mem::take(&mut self.id));
        let release = async move {
            let doing = format!("releasing swarm lock {id}");
            let _ = multi
                .on_managers(&doing, |e| {
                    let id = &id;
                    async move { e.lock_remove(id).await }
                })
                .await;
        };
        // Removed before the drop returns, as a file lock is released: the
        // next command must find it free. Without a runtime that can wait
        // here, the lease ends it.
        use tokio::runtime::{Handle, RuntimeFlavor};
        match Handle::try_current() {
            Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| h.block_on(release))
            }
            Ok(h) => drop(h.spawn(release)),
            Err(_) => {}
        }
    }
}

fn in_secs(until_ms: u64) -> String {
    let now = now_ms();
    match until_ms.checked_sub(now) {
        Some(ms) => format!("in {:.0} s", (ms as f64 / 1000.0).ceil()),
        None => format!("{:.1} s ago", (now - until_ms) as f64 / 1000.0),
    }
}

fn waiting_text(c: &Claimant, l: &LockConfig) -> String {
    format!(
        "waiting for {} to finish {} (swarm lock {}; its lease ends {} unless renewed)",
        l.holder,
        l.what,
        c.name,
        in_secs(l.until_ms)
    )
}

fn broke_text(c: &Claimant, l: &LockConfig) -> String {
    format!(
        "{} stopped renewing swarm lock {} (it was {}): its lease ended {}; taking the lock over",
        l.holder,
        c.name,
        l.what,
        in_secs(l.until_ms)
    )
}

fn gave_up(c: &Claimant, l: &LockConfig, timeout: Duration) -> Error {
    Error::Failed(format!(
        "gave up after {} s waiting for {} to finish {} (swarm lock {}, wanted for {}); if that \
         mcc is stuck, ending it frees the lock within {} s, or `docker config rm {}` on a \
         manager at once",
        timeout.as_secs(),
        l.holder,
        l.what,
        c.name,
        c.what,
        LEASE.as_secs(),
        c.name
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_names_fit_a_swarm_config() {
        assert_eq!(lock_config_name("cluster-lab"), "mcc-l-cluster-lab");
        for key in [
            format!("cluster-{}", "a".repeat(54)),
            "addresses-a b/c".to_string(),
            "x".repeat(200),
        ] {
            let n = lock_config_name(&key);
            assert!(n.len() <= 64, "{n}");
            assert!(n
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)));
        }
        // distinct long keys, distinct names
        let a = lock_config_name(&format!("cluster-{}1", "a".repeat(60)));
        let b = lock_config_name(&format!("cluster-{}2", "a".repeat(60)));
        assert_ne!(a, b);
    }

    #[test]
    fn a_lease_is_dead_when_over_or_broken() {
        let mut l = LockConfig {
            id: "x".into(),
            version: 1,
            spec: ConfigSpec::default(),
            holder: "h".into(),
            what: "w".into(),
            until_ms: 1000,
            token: "t".into(),
            broken: false,
        };
        assert!(!l.dead(1000));
        assert!(l.dead(1001));
        l.broken = true;
        assert!(l.dead(0));
    }
}
