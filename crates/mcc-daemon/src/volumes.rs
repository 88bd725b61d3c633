//! Ephemeral volumes go with their last container however it went: `mcc
//! rm` removes them itself, and this watcher catches the rest (`docker rm`,
//! a cluster's gc, a crash of `mcc rm` half-way). It follows the removals
//! of containers labelled with volumes (`mcc.volumes`) and asks
//! [`Clusters::reap_ephemeral_volumes`] about theirs; whenever it starts
//! watching (the daemon starting, the stream coming back) and every few
//! minutes, it asks about all, for what went while nobody watched.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use mcc_core::cluster::run::{volumes_of, VOLUMES_LABEL};
use mcc_core::cluster::Clusters;
use mcc_core::provider::{Engine, EventAction, EventObject};
use tokio_util::sync::CancellationToken;

use crate::events::{About, EventLog};

/// How often every ephemeral volume is looked at, removals seen or not.
const SWEEP: Duration = Duration::from_secs(600);

/// Starts the watcher; it ends with `stop`.
pub fn spawn_reaper(
    provider: Arc<dyn Engine>,
    clusters: Clusters,
    log: Arc<EventLog>,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut stream = provider.events(VOLUMES_LABEL, None);
            reap(&clusters, &log, None).await;
            let mut sweep = tokio::time::interval_at(tokio::time::Instant::now() + SWEEP, SWEEP);
            loop {
                let next = tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = sweep.tick() => {
                        reap(&clusters, &log, None).await;
                        continue;
                    }
                    n = stream.next() => n,
                };
                match next {
                    Some(Ok(e)) if e.action == EventAction::Lost => {
                        tracing::warn!(error = %e.detail, "container removals: the stream was lost; reconnecting");
                        break;
                    }
                    Some(Ok(e)) => {
                        backoff = Duration::from_millis(100);
                        if e.object != EventObject::Container || e.action != EventAction::Removed {
                            continue;
                        }
                        let ids = volumes_of(&e.labels);
                        if !ids.is_empty() {
                            reap(&clusters, &log, Some(&ids)).await;
                        }
                    }
                    Some(Err(err)) => {
                        tracing::warn!(error = %err, "container removals: the stream failed; reconnecting");
                        break;
                    }
                    None => break,
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    });
}

async fn reap(clusters: &Clusters, log: &EventLog, ids: Option<&[String]>) {
    match clusters.reap_ephemeral_volumes(ids).await {
        Ok(r) => {
            for id in r.removed {
                log.record(
                    "volume",
                    About::default(),
                    format!("volume {id} removed: it was ephemeral and its last container is gone"),
                );
            }
            for (id, e) in r.failed {
                log.record(
                    "volume",
                    About::default(),
                    format!(
                        "ephemeral volume {id} has no container left but could not be removed: {e}"
                    ),
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot look for ephemeral volumes to remove"),
    }
}
