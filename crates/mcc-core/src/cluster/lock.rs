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

impl HostLock {
    /// Waits for the lock named `name`. Returns `None` when no lock file can
    /// be made (read-only /tmp…): the caller goes on unserialized.
    pub async fn acquire(name: &str) -> Option<HostLock> {
        let dir = lock_dir();
        if std::fs::create_dir_all(&dir).is_ok() {
            // every user of the engine on this host must share the locks
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777));
        }
        let path = dir.join(format!("{name}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .ok()?;
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = file.set_permissions(std::fs::Permissions::from_mode(0o666));
        }
        loop {
            match file.try_lock() {
                Ok(()) => return Some(HostLock { _file: file }),
                Err(TryLockError::WouldBlock) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(TryLockError::Error(_)) => return None,
            }
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
                    let _g = HostLock::acquire(&name).await.expect("lock file");
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
