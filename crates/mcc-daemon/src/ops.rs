//! Long operations (create, addnode, delete, …): each runs in its own task,
//! reports its progress as [`OperationEvent`]s that are kept (memory and
//! store) and broadcast to followers, and can be cancelled. After a crash,
//! the operations the dead daemon left running are reported failed and
//! what they left behind is collected.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use mcc_api::{ErrorDetail, Operation, OperationEvent, OperationState};
use mcc_core::cluster::{Clusters, Reporter};
use mcc_core::model::ClusterName;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::events::{About, EventLog};
use crate::store::Store;

pub type OpFuture = Pin<Box<dyn Future<Output = mcc_core::Result<serde_json::Value>> + Send>>;

struct Running {
    op: Mutex<Operation>,
    /// Every event so far; pushed to under this lock, so that a follower
    /// that copies it and subscribes under the same lock misses nothing.
    events: Mutex<Vec<OperationEvent>>,
    tx: broadcast::Sender<OperationEvent>,
    cancel: CancellationToken,
}

impl Running {
    fn push(&self, store: &Store, e: OperationEvent) {
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        let id = self.op.lock().unwrap_or_else(|p| p.into_inner()).id.clone();
        if let Err(err) = store.add_operation_event(&id, events.len() as u64, &e) {
            tracing::warn!(error = %err, operation = %id, "cannot store an operation's progress");
        }
        events.push(e.clone());
        let _ = self.tx.send(e);
    }
}

/// A [`Reporter`] that turns progress into an operation's events.
struct OpReporter {
    run: Arc<Running>,
    store: Arc<Store>,
}

impl Reporter for OpReporter {
    fn begin(&self, title: &str, total: usize) {
        self.run.push(
            &self.store,
            OperationEvent::Begin {
                title: title.to_string(),
                total,
            },
        );
    }
    fn advance(&self, item: &str) {
        self.run.push(
            &self.store,
            OperationEvent::Advance {
                item: item.to_string(),
            },
        );
    }
    fn end(&self, ok: bool) {
        self.run.push(&self.store, OperationEvent::End { ok });
    }
    fn note(&self, message: &str) {
        self.run.push(
            &self.store,
            OperationEvent::Note {
                message: message.to_string(),
            },
        );
    }
}

pub struct Ops {
    store: Arc<Store>,
    log: Arc<EventLog>,
    running: Mutex<HashMap<String, Arc<Running>>>,
    tasks: TaskTracker,
    /// Called when an operation ends (the cluster list changed).
    on_done: Box<dyn Fn() + Send + Sync>,
}

/// What a follower gets: the events so far, then (while it runs) the live ones.
pub enum Follow {
    Running(Vec<OperationEvent>, broadcast::Receiver<OperationEvent>),
    Finished(Vec<OperationEvent>, Operation),
}

fn new_id() -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the system has a random source");
    format!("op-{}", hex::encode(b))
}

impl Ops {
    pub fn new(
        store: Arc<Store>,
        log: Arc<EventLog>,
        on_done: impl Fn() + Send + Sync + 'static,
    ) -> Ops {
        Ops {
            store,
            log,
            running: Mutex::new(HashMap::new()),
            tasks: TaskTracker::new(),
            on_done: Box::new(on_done),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Running>>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts an operation: `work` gets the reporter for its progress and
    /// the token that cancels it.
    pub fn start(
        self: &Arc<Self>,
        kind: &str,
        cluster: Option<&ClusterName>,
        work: impl FnOnce(Arc<dyn Reporter>, CancellationToken) -> OpFuture,
    ) -> crate::Result<Operation> {
        let op = Operation {
            id: new_id(),
            kind: kind.to_string(),
            cluster: cluster.map(|c| c.to_string()),
            state: OperationState::Running,
            created: crate::now(),
            finished: None,
            result: None,
            error: None,
        };
        self.store.add_operation(&op)?;
        let (tx, _) = broadcast::channel(1024);
        let run = Arc::new(Running {
            op: Mutex::new(op.clone()),
            events: Mutex::new(Vec::new()),
            tx,
            cancel: CancellationToken::new(),
        });
        self.running().insert(op.id.clone(), run.clone());
        self.log.record(
            "operation",
            About {
                cluster: op.cluster.as_deref(),
                operation: Some(&op.id),
                ..About::default()
            },
            format!("{kind} started"),
        );
        let reporter: Arc<dyn Reporter> = Arc::new(OpReporter {
            run: run.clone(),
            store: self.store.clone(),
        });
        let fut = work(reporter, run.cancel.clone());
        let me = self.clone();
        self.tasks.spawn(async move {
            // A panic in the work is a failed operation, not a stuck one.
            let outcome = tokio::spawn(fut).await.unwrap_or_else(|e| {
                Err(mcc_core::Error::Failed(format!(
                    "the operation stopped unexpectedly: {e}"
                )))
            });
            me.finish(&run, outcome);
        });
        Ok(op)
    }

    fn finish(&self, run: &Arc<Running>, outcome: mcc_core::Result<serde_json::Value>) {
        let op = {
            let mut op = run.op.lock().unwrap_or_else(|p| p.into_inner());
            op.finished = Some(crate::now());
            match outcome {
                Ok(v) => {
                    op.state = OperationState::Succeeded;
                    op.result = Some(v);
                }
                Err(e) => {
                    op.state = if matches!(e, mcc_core::Error::Interrupted) {
                        OperationState::Cancelled
                    } else {
                        OperationState::Failed
                    };
                    op.error = Some(ErrorDetail::from_error(&e).1);
                }
            }
            op.clone()
        };
        if let Err(e) = self.store.finish_operation(&op) {
            tracing::error!(error = %e, operation = %op.id, "cannot store an operation's end");
        }
        let _ = self
            .store
            .bump(&format!("operations.{}.{}", op.kind, op.state.as_str()), 1);
        (self.on_done)();
        let message = match &op.error {
            Some(e) => format!("{} {}: {}", op.kind, op.state.as_str(), e.message),
            None => format!("{} {}", op.kind, op.state.as_str()),
        };
        self.log.record(
            "operation",
            About {
                cluster: op.cluster.as_deref(),
                operation: Some(&op.id),
                ..About::default()
            },
            message,
        );
        run.push(
            &self.store,
            OperationEvent::Done {
                operation: op.clone(),
            },
        );
        self.running().remove(&op.id);
    }

    pub fn get(&self, id: &str) -> crate::Result<Option<Operation>> {
        if let Some(run) = self.running().get(id) {
            return Ok(Some(
                run.op.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            ));
        }
        self.store.operation(id)
    }

    pub fn list(&self, limit: u32) -> crate::Result<Vec<Operation>> {
        self.store.operations(limit)
    }

    pub fn follow(&self, id: &str) -> crate::Result<Option<Follow>> {
        if let Some(run) = self.running().get(id).cloned() {
            let events = run.events.lock().unwrap_or_else(|p| p.into_inner());
            return Ok(Some(Follow::Running(events.clone(), run.tx.subscribe())));
        }
        let Some(op) = self.store.operation(id)? else {
            return Ok(None);
        };
        let events = self.store.operation_events(id)?;
        Ok(Some(Follow::Finished(events, op)))
    }

    /// Asks a running operation to stop; whether it was running.
    pub fn cancel(&self, id: &str) -> bool {
        match self.running().get(id) {
            Some(run) => {
                run.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// How many operations run now.
    pub fn active(&self) -> usize {
        self.running().len()
    }

    /// On SIGTERM: cancels what runs and waits (up to `grace`) for each to
    /// clean up and record its end.
    pub async fn shutdown(&self, grace: std::time::Duration) {
        let runs: Vec<Arc<Running>> = self.running().values().cloned().collect();
        for r in &runs {
            r.cancel.cancel();
        }
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.active(),
                "operations still running after the grace period; `mcc gc` removes what they left"
            );
        }
    }

    /// After a start: the operations a previous daemon left running (it
    /// was killed) are ended. What they made half-way is collected; a
    /// create that had in fact finished is reported as succeeded.
    pub async fn recover(&self, clusters: &Clusters) -> crate::Result<()> {
        for (mut op, pid) in self.store.running_operations()? {
            let name = op
                .cluster
                .as_deref()
                .and_then(|c| c.parse::<ClusterName>().ok());
            let mut note = String::new();
            if let Some(name) = &name {
                match clusters.gc(std::slice::from_ref(name), false).await {
                    Ok(r) if !r.actions.is_empty() => {
                        note = format!("; what it had made of cluster {name} was removed")
                    }
                    Ok(_) => {}
                    Err(e) => note = format!("; collecting cluster {name} failed: {e}"),
                }
            }
            op.finished = Some(crate::now());
            let finished_create = match (&name, op.kind.as_str()) {
                (Some(name), "create") => clusters
                    .inspect(name)
                    .await
                    .ok()
                    .filter(|v| v.status == mcc_core::cluster::ClusterStatus::Running),
                _ => None,
            };
            if let Some(view) = finished_create {
                op.state = OperationState::Succeeded;
                op.result = serde_json::to_value(view).ok();
            } else {
                op.state = OperationState::Failed;
                op.error = Some(ErrorDetail::new(
                    "failed",
                    format!(
                        "the daemon (pid {pid}) stopped during this {} before it ended{note}",
                        op.kind
                    ),
                ));
            }
            self.store.finish_operation(&op)?;
            let _ = self.store.add_operation_event(
                &op.id,
                self.store.operation_events(&op.id)?.len() as u64,
                &OperationEvent::Done {
                    operation: op.clone(),
                },
            );
            self.log.record(
                "operation",
                About {
                    cluster: op.cluster.as_deref(),
                    operation: Some(&op.id),
                    ..About::default()
                },
                format!(
                    "{} {} after a daemon restart{note}",
                    op.kind,
                    op.state.as_str()
                ),
            );
        }
        Ok(())
    }
}
