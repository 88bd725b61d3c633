//! The daemon's state directory: its SQLite file, its key, the admin
//! credentials, and the lock that keeps a second daemon out.
//!
//! The daemon runs as root; the folder is made 0700 and checked (not a
//! link, owned by us, writable by nobody else) before anything in it is
//! opened, and every file in it is opened without following links.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation, OFlags};

use crate::{DaemonError, Result};

/// The default state directory: `/var/lib/mcc` for root, else the
/// user's data directory.
pub fn default_dir() -> PathBuf {
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/mcc");
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("mcc");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
    PathBuf::from(home).join(".local/share/mcc")
}

/// An open, checked and locked state directory.
pub struct StateDir {
    path: PathBuf,
    /// Held for the daemon's life: its flock keeps other daemons out.
    _lock: File,
}

fn err(path: &Path, what: impl std::fmt::Display) -> DaemonError {
    DaemonError::State(format!("state directory '{}': {what}", path.display()))
}

impl StateDir {
    /// Opens (making it if needed) and locks `path`. A second daemon on
    /// the same folder is refused.
    pub fn open(path: &Path) -> Result<StateDir> {
        if !path.is_absolute() {
            return Err(err(path, "give an absolute path to --state-dir"));
        }
        match fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(parent) = path.parent() {
                    fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o755)
                        .create(parent)
                        .map_err(|e| err(path, e))?;
                }
                fs::DirBuilder::new()
                    .mode(0o700)
                    .create(path)
                    .map_err(|e| err(path, e))?;
            }
            Err(e) => return Err(err(path, e)),
            Ok(_) => {}
        }
        let meta = fs::symlink_metadata(path).map_err(|e| err(path, e))?;
        if !meta.file_type().is_dir() {
            return Err(err(
                path,
                "is not a directory (or is a link); give a folder",
            ));
        }
        let me = rustix::process::geteuid().as_raw();
        if meta.uid() != me {
            return Err(err(
                path,
                format!("is owned by uid {}, not by this user ({me})", meta.uid()),
            ));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(err(
                path,
                format!(
                    "others may write to it (mode {:o}); chmod 700 it",
                    meta.mode() & 0o777
                ),
            ));
        }
        let lock_path = path.join("daemon.lock");
        let mut lock = open_private(&lock_path, false).map_err(|e| err(path, e))?;
        if flock(&lock, FlockOperation::NonBlockingLockExclusive).is_err() {
            let mut pid = String::new();
            let _ = lock.read_to_string(&mut pid);
            return Err(DaemonError::State(format!(
                "another mcc serve (pid {}) uses the state directory '{}'; stop it, or give \
                 this one its own --state-dir",
                pid.trim(),
                path.display()
            )));
        }
        lock.set_len(0).map_err(|e| err(path, e))?;
        let _ = write!(lock, "{}", std::process::id());
        Ok(StateDir {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn database(&self) -> PathBuf {
        self.path.join("mcc.db")
    }

    pub fn credentials(&self) -> PathBuf {
        self.path.join("credentials")
    }

    /// The daemon's key, from which every token's secret is derived;
    /// made on first start.
    pub fn key(&self) -> Result<[u8; 32]> {
        let path = self.path.join("daemon.key");
        match read_private(&path) {
            Ok(text) => {
                let bytes = hex::decode(text.trim()).map_err(|e| err(&self.path, e))?;
                bytes
                    .try_into()
                    .map_err(|_| err(&self.path, "daemon.key is not 32 bytes of hex"))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).map_err(|e| err(&self.path, e))?;
                write_new_private(&path, &format!("{}\n", hex::encode(key)))
                    .map_err(|e| err(&self.path, e))?;
                Ok(key)
            }
            Err(e) => Err(err(&self.path, format!("daemon.key: {e}"))),
        }
    }

    /// Writes the admin credentials, mode 0600, unless the file exists.
    pub fn write_credentials(&self, text: &str) -> Result<bool> {
        match write_new_private(&self.credentials(), text) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(err(&self.path, format!("credentials: {e}"))),
        }
    }
}

/// Opens a file of ours: never through a link, mode 0600, checked to be a
/// regular file with one link that we own.
fn open_private(path: &Path, create_new: bool) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.read(true)
        .write(true)
        .mode(0o600)
        .custom_flags((OFlags::NOFOLLOW | OFlags::CLOEXEC).bits() as i32);
    if create_new {
        o.create_new(true);
    } else {
        o.create(true);
    }
    let f = o.open(path)?;
    check_private(&f, path)?;
    Ok(f)
}

fn check_private(f: &File, path: &Path) -> std::io::Result<()> {
    let m = f.metadata()?;
    let me = rustix::process::geteuid().as_raw();
    if !m.is_file() || m.nlink() != 1 || m.uid() != me || m.mode() & 0o077 != 0 {
        return Err(std::io::Error::other(format!(
            "'{}' is not a private regular file of this user (mode {:o}, {} links, uid {}); \
             remove it",
            path.display(),
            m.mode() & 0o777,
            m.nlink(),
            m.uid()
        )));
    }
    Ok(())
}

fn read_private(path: &Path) -> std::io::Result<String> {
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags((OFlags::NOFOLLOW | OFlags::CLOEXEC).bits() as i32)
        .open(path)?;
    check_private(&f, path)?;
    let mut s = String::new();
    f.read_to_string(&mut s)?;
    Ok(s)
}

fn write_new_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = open_private(path, true)?;
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_daemon_is_refused_and_the_folder_is_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        let first = StateDir::open(&dir).unwrap();
        let mode = fs::metadata(&dir).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let second = StateDir::open(&dir).err().expect("refused");
        assert!(second.to_string().contains("another mcc serve"), "{second}");
        let k1 = first.key().unwrap();
        assert_eq!(first.key().unwrap(), k1, "the key is kept");
        let kmode = fs::metadata(dir.join("daemon.key")).unwrap().mode() & 0o777;
        assert_eq!(kmode, 0o600);
        drop(first);
        StateDir::open(&dir).expect("free again once the first is gone");
    }

    #[test]
    fn links_and_open_folders_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        fs::create_dir(&real).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(StateDir::open(&link).is_err());
        fs::set_permissions(&real, fs::Permissions::from_mode(0o777)).unwrap();
        let e = StateDir::open(&real).err().unwrap();
        assert!(e.to_string().contains("chmod 700"), "{e}");
        // a key planted as a link to another file is not read
        let ok = tmp.path().join("ok");
        let d = StateDir::open(&ok).unwrap();
        let secret = tmp.path().join("secret");
        fs::write(&secret, "00".repeat(32)).unwrap();
        std::os::unix::fs::symlink(&secret, ok.join("daemon.key")).unwrap();
        assert!(d.key().is_err());
    }
}
