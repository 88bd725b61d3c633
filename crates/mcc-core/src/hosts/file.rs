//! The user's list of hosts as a file: what it holds and how it is read
//! and written (a private file of the user's, no link, 0600, replaced
//! whole by a rename). Data only: it names no engine, so that the
//! provider can read the list to reach the hosts.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::lock::{private_dir, HostLock};

/// PEM files of a client certificate for an engine over TCP with TLS.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TlsFiles {
    pub ca: std::path::PathBuf,
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// One host as the list keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostEntry {
    pub name: String,
    /// `unix:///path` or `tcp://HOST:PORT` (with `tls`).
    pub engine: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFiles>,
    /// Its node in the swarm.
    #[serde(default)]
    pub node_id: String,
    /// mcc made the swarm on it or joined it: `remove` then takes it out
    /// again. An engine that was in the swarm already is left in it.
    #[serde(default)]
    pub joined_by_mcc: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct HostsDoc {
    #[serde(default)]
    hosts: Vec<HostEntry>,
}

/// The user's list of hosts.
pub struct HostsFile {
    path: PathBuf,
}

pub(super) fn invalid(s: impl Into<String>) -> Error {
    Error::Invalid(s.into())
}

impl HostsFile {
    /// The file `MCC_HOSTS_FILE` names, or the user's default one.
    pub fn default_path() -> Result<PathBuf> {
        if let Some(p) = std::env::var_os("MCC_HOSTS_FILE") {
            return Ok(PathBuf::from(p));
        }
        let base = match std::env::var_os("XDG_CONFIG_HOME") {
            Some(x) => PathBuf::from(x),
            None => {
                let home = std::env::var_os("HOME").ok_or_else(|| {
                    invalid("no HOME: set MCC_HOSTS_FILE to the file that lists your hosts")
                })?;
                PathBuf::from(home).join(".config")
            }
        };
        Ok(base.join("mcc").join("hosts.json"))
    }

    pub fn at(path: PathBuf) -> HostsFile {
        HostsFile { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder of the file: the folders missing on the way to it are
    /// made private (0700, no link), below the nearest one that exists.
    fn dir(&self) -> Result<PathBuf> {
        let parent = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut base = parent;
        let mut below: Vec<String> = Vec::new();
        while !base.exists() {
            let (Some(up), Some(name)) = (base.parent(), base.file_name()) else {
                break;
            };
            below.push(name.to_string_lossy().into_owned());
            base = if up.as_os_str().is_empty() {
                Path::new(".")
            } else {
                up
            };
        }
        below.reverse();
        let below: Vec<&str> = below.iter().map(String::as_str).collect();
        private_dir(base, &below)
    }

    /// The hosts listed; none when there is no file yet.
    pub fn load(&self) -> Result<Vec<HostEntry>> {
        let unsafe_file = |why: String| {
            invalid(format!(
                "{}: {why}; not trusted (it must be this user's own file, mode 0600, and no \
                 link)",
                self.path.display()
            ))
        };
        let Some(text) = crate::lock::read_private_file(&self.path).map_err(unsafe_file)? else {
            return Ok(Vec::new());
        };
        let doc: HostsDoc = serde_json::from_str(&text).map_err(|e| {
            invalid(format!(
                "{}: not a hosts list mcc can read ({e}); fix it or remove it",
                self.path.display()
            ))
        })?;
        Ok(doc.hosts)
    }

    /// Writes the list whole: a new private file renamed over the old one.
    pub(super) fn save(&self, hosts: &[HostEntry]) -> Result<()> {
        let dir = self.dir()?;
        let name = self
            .path
            .file_name()
            .ok_or_else(|| invalid(format!("{}: not a file name", self.path.display())))?;
        let tmp = dir.join(format!(
            ".{}.{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let fail =
            |e: std::io::Error| Error::Failed(format!("writing {}: {e}", self.path.display()));
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&tmp)
            .map_err(fail)?;
        let text = serde_json::to_string_pretty(&HostsDoc {
            hosts: hosts.to_vec(),
        })
        .map_err(|e| Error::Failed(e.to_string()))?;
        f.write_all(text.as_bytes()).map_err(fail)?;
        f.sync_all().map_err(fail)?;
        std::fs::rename(&tmp, dir.join(name)).map_err(fail)
    }

    /// Serializes changes of the list between mcc processes of this host.
    pub(super) async fn lock(&self) -> Result<HostLock> {
        HostLock::acquire(
            "hosts",
            "changing the hosts list",
            Duration::from_secs(60),
            &|_| {},
        )
        .await
    }
}
