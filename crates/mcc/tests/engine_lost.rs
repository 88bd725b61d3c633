//! An engine killed under a follower of its events: the provider's typed
//! stream says so with one `Lost` event (the engine's own error kept as
//! its detail) and ends, instead of an error item or a silent end; a new
//! stream after the engine is back resumes with `since` and sees what
//! happened meanwhile. The engine is a private one (`scripts/private-engine`),
//! so that killing it stops no one else's containers.

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use mcc_core::provider::{Engine, EventAction, EventObject};

#[test]
fn a_killed_engine_ends_its_event_stream_with_a_lost_event() {
    let private = PrivateEngine::start("englost", &[BUSYBOX]);
    private.use_for_this_process();
    let name = format!("it-englost-{}", std::process::id());
    let label = format!("mcc.cluster={name}");

    // the follower reads from a second before the container is made, so it
    // sees it whenever its stream is opened
    let from = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
        - 1_000_000_000;
    let (tx, rx) = std::sync::mpsc::channel();
    let follower = std::thread::spawn(move || follow(from, tx));
    docker_ok(&[
        "create", "--name", &name, "--label", &label, BUSYBOX, "true",
    ]);
    let first = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the event of the labelled container");
    assert_eq!(
        (first.object, first.action),
        (EventObject::Container, EventAction::Created),
        "{first:?}"
    );
    let since = first.time_nano;

    private.kill_restart();

    let mut after = Vec::new();
    while let Ok(e) = rx.recv_timeout(Duration::from_secs(60)) {
        after.push(e);
    }
    follower.join().expect("the follower thread");
    let lost: Vec<_> = after
        .iter()
        .filter(|e| e.action == EventAction::Lost)
        .collect();
    assert_eq!(lost.len(), 1, "one Lost event, then the end: {after:?}");
    assert_eq!(
        after.last().map(|e| (e.object, e.action)),
        Some((EventObject::Engine, EventAction::Lost)),
        "the Lost event is the stream's last: {after:?}"
    );
    assert!(!lost[0].detail.is_empty(), "{:?}", lost[0]);

    // back: a stream from `since` sees the container's removal now
    docker_ok(&["rm", &name]);
    let seen: Vec<(EventObject, EventAction)> = engine(|p| async move {
        let mut s = p.events("mcc.cluster", Some(since));
        let mut seen = Vec::new();
        while let Ok(Some(Ok(e))) = tokio::time::timeout(Duration::from_secs(5), s.next()).await {
            seen.push((e.object, e.action));
            if e.action == EventAction::Removed {
                break;
            }
        }
        seen
    });
    assert!(
        seen.contains(&(EventObject::Container, EventAction::Removed)),
        "{seen:?}"
    );
}

/// Follows the engine's `mcc.cluster` events from `from` and sends each, until the
/// stream ends (or 120 s, so that a stream that never ends fails the test
/// rather than hanging it).
fn follow(from: i64, tx: std::sync::mpsc::Sender<mcc_core::provider::EngineEvent>) {
    engine(|p| async move {
        let mut s = p.events("mcc.cluster", Some(from));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while let Ok(Some(item)) = tokio::time::timeout_at(deadline, s.next()).await {
            let e = item.expect("the stream carries events, never errors");
            if tx.send(e).is_err() {
                return;
            }
        }
    })
}
