//! The cluster list, kept serialized in memory: `GET /api/v1/clusters` is
//! the most frequent request and costs no engine call while nothing
//! changed. Any engine event about mcc's objects, and the end of any
//! operation, invalidates it; while the engine's event stream is down
//! nothing is cached, and an entry is never older than [`MAX_AGE`]. Reading
//! a container's files (as `list` does) is an event too, but not a change.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use mcc_core::cluster::{ClusterView, Clusters};

/// Entries older than this are read again, events or not (a safety net:
/// every change of a cluster comes with an engine event).
const MAX_AGE: Duration = Duration::from_secs(60);

#[derive(Clone)]
struct Entry {
    generation: u64,
    at: Instant,
    json: Bytes,
    views: std::sync::Arc<Vec<ClusterView>>,
}

pub struct ListCache {
    generation: AtomicU64,
    watching: AtomicBool,
    entry: RwLock<Option<Entry>>,
    /// One engine read at a time refills it; the others wait for it.
    fill: tokio::sync::Mutex<()>,
}

impl Default for ListCache {
    fn default() -> Self {
        ListCache {
            generation: AtomicU64::new(0),
            watching: AtomicBool::new(false),
            entry: RwLock::new(None),
            fill: tokio::sync::Mutex::new(()),
        }
    }
}

impl ListCache {
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether the engine's events are being watched (else: no caching).
    pub fn set_watching(&self, on: bool) {
        self.watching.store(on, Ordering::SeqCst);
        self.invalidate();
    }

    fn fresh(&self) -> Option<Entry> {
        if !self.watching.load(Ordering::SeqCst) {
            return None;
        }
        let e = self
            .entry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        (e.generation == self.generation.load(Ordering::SeqCst) && e.at.elapsed() < MAX_AGE)
            .then_some(e)
    }

    async fn get(&self, clusters: &Clusters) -> mcc_core::Result<Entry> {
        if let Some(e) = self.fresh() {
            return Ok(e);
        }
        let _one = self.fill.lock().await;
        if let Some(e) = self.fresh() {
            return Ok(e);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let views = clusters.list().await?;
        let e = Entry {
            generation,
            at: Instant::now(),
            json: Bytes::from(serde_json::to_vec(&views).expect("serializable")),
            views: std::sync::Arc::new(views),
        };
        // A change seen while reading makes this read stale already.
        if self.generation.load(Ordering::SeqCst) == generation {
            *self.entry.write().unwrap_or_else(|p| p.into_inner()) = Some(e.clone());
        }
        Ok(e)
    }

    /// The list as JSON.
    pub async fn json(&self, clusters: &Clusters) -> mcc_core::Result<Bytes> {
        Ok(self.get(clusters).await?.json)
    }

    pub async fn views(
        &self,
        clusters: &Clusters,
    ) -> mcc_core::Result<std::sync::Arc<Vec<ClusterView>>> {
        Ok(self.get(clusters).await?.views)
    }
}
