//! Advisory locks between mcc processes on one host.
//!
//! The engine has no transaction spanning "list the networks, pick a free
//! subnet, create the network", nor "read the members, add node07, write
//! the hosts file". Two mcc processes doing either at once would pick the
//! same subnet or the same node number. A lock file per purpose, shared by
//! every user of this host, serializes them; it is released when the guard
//! drops or the process dies (the kernel drops the file lock). Processes on
//! other hosts sharing a remote engine are not covered: for them the
//! engine's own refusals (overlapping pool, name conflict) remain, and
//! rollbacks only touch what their own process made.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::PathBuf;
use std::time::Duration;

/// Holds a lock until dropped.
pub struct HostLock {
    _file: File,
}

fn lock_dir() -> PathBuf {
    std::env::temp_dir().join("mcc-locks")
}

pub const LOCK_TIMEOUT: Duration = Duration::from_secs(600);

impl HostLock {
    /// Waits for the lock named `name` (interim; being rewritten).
    pub async fn acquire(
        name: &str,
        _what: &str,
        _timeout: Duration,
        _on_wait: &(dyn Fn(&str) + Send + Sync),
    ) -> crate::Result<HostLock> {
        let dir = lock_dir();
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(format!("{name}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| crate::Error::Failed(format!("lock {}: {e}", path.display())))?;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(HostLock { _file: file }),
                Err(TryLockError::WouldBlock) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(TryLockError::Error(e)) => {
                    return Err(crate::Error::Failed(format!(
                        "lock {}: {e}",
                        path.display()
                    )))
                }
            }
        }
    }

    /// `Ok(None)` when another process holds it.
    pub fn try_acquire(name: &str, _what: &str) -> crate::Result<Option<HostLock>> {
        let dir = lock_dir();
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(format!("{name}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| crate::Error::Failed(format!("lock {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(HostLock { _file: file })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(crate::Error::Failed(format!(
                "lock {}: {e}",
                path.display()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn one_holder_at_a_time() {
        let name = format!("test-{}", std::process::id());
        let inside = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (name, inside, peak) = (name.clone(), inside.clone(), peak.clone());
                tokio::spawn(async move {
                    let _g = HostLock::acquire(&name, "test", LOCK_TIMEOUT, &|_| {})
                        .await
                        .expect("lock file");
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 1);
        let _ = std::fs::remove_file(lock_dir().join(format!("{name}.lock")));
    }
}
