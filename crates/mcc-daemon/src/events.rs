//! The event log: what happened, in order, kept in the store and
//! broadcast to `GET /api/v1/events` followers. Operations and the engine
//! watcher write to it.

use std::sync::Arc;

use futures_util::StreamExt;
use mcc_api::Event;
use mcc_core::model::labels;
use mcc_core::provider::{Engine, EngineEvent, EventAction, EventObject};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::store::Store;

pub struct EventLog {
    store: Arc<Store>,
    tx: broadcast::Sender<Event>,
    /// Serializes append-and-broadcast, so followers see events in
    /// sequence order.
    order: std::sync::Mutex<()>,
}

/// What an event is about.
#[derive(Default)]
pub struct About<'a> {
    pub cluster: Option<&'a str>,
    pub node: Option<&'a str>,
    pub operation: Option<&'a str>,
}

impl EventLog {
    pub fn new(store: Arc<Store>) -> EventLog {
        let (tx, _) = broadcast::channel(4096);
        EventLog {
            store,
            tx,
            order: std::sync::Mutex::new(()),
        }
    }

    pub fn record(&self, kind: &str, about: About<'_>, message: impl Into<String>) {
        let mut e = Event {
            seq: 0,
            time: crate::now(),
            kind: kind.to_string(),
            cluster: about.cluster.map(str::to_string),
            node: about.node.map(str::to_string),
            operation: about.operation.map(str::to_string),
            message: message.into(),
        };
        let _order = self.order.lock().unwrap_or_else(|p| p.into_inner());
        match self.store.add_event(&e) {
            Ok(seq) => e.seq = seq,
            Err(err) => tracing::warn!(error = %err, "cannot store an event"),
        }
        tracing::info!(
            kind = %e.kind,
            cluster = e.cluster.as_deref(),
            node = e.node.as_deref(),
            operation = e.operation.as_deref(),
            "{}",
            e.message
        );
        let _ = self.tx.send(e);
    }

    /// The stored events after `since` and a receiver for the live ones,
    /// taken together so that none falls between them.
    pub fn replay_and_subscribe(
        &self,
        since: u64,
        limit: u32,
    ) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let _order = self.order.lock().unwrap_or_else(|p| p.into_inner());
        let rx = self.tx.subscribe();
        let past = self.store.events_since(since, limit).unwrap_or_default();
        (past, rx)
    }

    pub fn last(&self) -> u64 {
        self.store.last_event().unwrap_or(0)
    }
}

/// What the engine watcher tells the caches.
pub enum Change<'a> {
    /// A stream is (re)opened: from now on, events will be seen.
    Up,
    /// Something happened to one of mcc's objects.
    Event(&'a EngineEvent),
    /// The stream dropped: until it is back, changes go unseen.
    Down,
}

/// Watches the engine's events for mcc's objects: logs them and tells
/// `changed` (which invalidates caches). Reconnects after a drop with
/// `since`, so no event is missed.
pub async fn watch_engine(
    provider: Arc<dyn Engine>,
    log: Arc<EventLog>,
    changed: impl Fn(Change<'_>) + Send + Sync,
    stop: CancellationToken,
) {
    let mut since: Option<i64> = None;
    let mut last: Option<(i64, String, EventAction)> = None;
    let mut backoff = std::time::Duration::from_millis(100);
    loop {
        let mut stream = provider.events(labels::CLUSTER, since);
        changed(Change::Up);
        let mut connected = false;
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => return,
                n = stream.next() => n,
            };
            match next {
                Some(Ok(e)) if e.action == EventAction::Lost => {
                    tracing::warn!(error = %e.detail, "the engine's event stream was lost; reconnecting");
                    break;
                }
                Some(Ok(e)) => {
                    // A resumed stream starts at `since` itself: skip
                    // what was seen already.
                    if Some(e.time_nano) < since
                        || last.as_ref() == Some(&(e.time_nano, e.id.clone(), e.action))
                    {
                        continue;
                    }
                    last = Some((e.time_nano, e.id.clone(), e.action));
                    if !connected {
                        connected = true;
                        backoff = std::time::Duration::from_millis(100);
                    }
                    since = Some(e.time_nano);
                    changed(Change::Event(&e));
                    if let Some(msg) = describe(&e) {
                        let cluster = e.labels.get(labels::CLUSTER).map(String::as_str);
                        log.record(
                            "engine",
                            About {
                                cluster,
                                ..About::default()
                            },
                            msg,
                        );
                    }
                }
                Some(Err(err)) => {
                    tracing::warn!(error = %err, "engine event stream failed; reconnecting");
                    break;
                }
                None => break,
            }
        }
        changed(Change::Down);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
    }
}

/// Whether an engine event changes what a cluster view shows: reading a
/// container's files (`archive-path`), execs and attaches do not, and
/// `list` itself causes the former.
pub fn changes_state(e: &EngineEvent) -> bool {
    use EventAction as A;
    match e.object {
        EventObject::Container => e.action != A::Other,
        EventObject::Network => matches!(
            e.action,
            A::Created | A::Removed | A::Connected | A::Disconnected
        ),
        EventObject::Volume => matches!(e.action, A::Created | A::Removed),
        EventObject::Engine | EventObject::Other => false,
    }
}

/// A line for the event log, for the engine events worth one.
fn describe(e: &EngineEvent) -> Option<String> {
    use EventAction as A;
    let node = matches!(
        e.labels.get(labels::ROLE).map(String::as_str),
        Some(labels::role::FRONTEND | labels::role::WORKER)
    );
    let worth = match e.object {
        // node containers only: not mcc's short-lived helpers
        EventObject::Container => {
            node && matches!(
                e.action,
                A::Created
                    | A::Started
                    | A::Died { .. }
                    | A::Stopped
                    | A::Killed
                    | A::Removed
                    | A::OutOfMemory
                    | A::Paused
                    | A::Unpaused
                    | A::Restarted
            )
        }
        EventObject::Network | EventObject::Volume => matches!(e.action, A::Created | A::Removed),
        EventObject::Engine | EventObject::Other => false,
    };
    worth.then(|| format!("{} {} {}", e.object.as_str(), e.name, e.action.as_str()))
}
