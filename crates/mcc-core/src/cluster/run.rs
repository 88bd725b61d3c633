//! `mcc run`, `mcc status`, `mcc rm` (the CC seed's `cc run`/`cc status`):
//! single containers with limits, on a VPC, with sized volumes. Labelled
//! `mcc.role=run` so that status, rm and the daemon's metrics find them;
//! every input is checked before anything is made.

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::volume::validate_volume_id;
use super::vpc::{validate_vpc_id, VPC_LABEL};
use super::Clusters;
use crate::error::{Error, Result};
use crate::model::image::validate_image_ref;
use crate::model::options::{is_engine_path, normalize_mount_path, validate_user};
use crate::model::size::parse_size;
use crate::model::spec::parse_env;
use crate::model::{labels, SCHEMA_VERSION};
use crate::provider::{ContainerSpec, ContainerStatus, Labels, Mount};

/// Label of a `run` container: the volumes it mounts, by ID.
pub const VOLUMES_LABEL: &str = "mcc.volumes";

/// What `mcc run` asks for, as typed.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RunSpec {
    pub image: String,
    pub vpc: Option<String>,
    /// `ID:PATH`.
    pub volumes: Vec<String>,
    /// Bytes, or with K/M/G.
    pub memory: Option<String>,
    /// CPU shares.
    pub cpu: Option<i64>,
    /// Bytes, or with K/M/G: the container's own disk.
    pub disk: Option<String>,
    pub user: Option<String>,
    /// `NAME=VALUE`.
    pub env: Vec<String>,
    pub dir: Option<String>,
    pub cmd: Vec<String>,
}

/// A container's resource use, from two samples of its stats stream.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ContainerMetrics {
    pub id: String,
    pub state: String,
    /// Of one CPU: 100 is one CPU busy.
    pub cpu_percent: f64,
    pub memory_bytes: u64,
    /// The limit (the host's memory when none was set).
    pub memory_limit_bytes: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub blk_read_bytes: u64,
    pub blk_write_bytes: u64,
}

/// What `mcc rm` did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RmReport {
    pub removed: Vec<String>,
    pub missing: Vec<String>,
    /// Ephemeral volumes that went with their last container.
    pub volumes_removed: Vec<String>,
}

/// The volume IDs a `run` container's labels name (what else is there is
/// not an ID mcc wrote, and is left out).
pub fn volumes_of(labels: &Labels) -> Vec<String> {
    labels
        .get(VOLUMES_LABEL)
        .map(|v| {
            v.split(',')
                .filter(|id| validate_volume_id(id).is_ok())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn invalid(s: impl Into<String>) -> Error {
    Error::Invalid(s.into())
}

/// A container ID as the user may give it: 12 to 64 hex digits.
fn validate_container_id(id: &str) -> Result<()> {
    if (12..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(invalid(format!(
            "'{id}' is not a container ID; `mcc run` printed it (12 or more hex digits)"
        )))
    }
}

impl Clusters {
    /// Checks a run's input and makes its container spec; nothing is made.
    async fn run_container(&self, spec: &RunSpec) -> Result<ContainerSpec> {
        validate_image_ref(&spec.image).map_err(|e| invalid(format!("--image: {e}")))?;
        if spec.cmd.is_empty() {
            return Err(invalid(
                "no command: give it after the flags, e.g. mcc run --image busybox -- echo hi",
            ));
        }
        let mut l: Labels = Labels::new();
        l.insert(labels::ROLE.into(), "run".into());
        l.insert(labels::SCHEMA.into(), SCHEMA_VERSION.into());
        let mut c = ContainerSpec {
            image: spec.image.clone(),
            entrypoint: None,
            cmd: Some(spec.cmd.clone()),
            ..Default::default()
        };
        if let Some(v) = &spec.vpc {
            validate_vpc_id(v)?;
            if !self.vpcs().await?.iter().any(|x| &x.id == v) {
                return Err(invalid(format!("--vpc {v}: no such VPC (`mcc vpc list`)")));
            }
            l.insert(VPC_LABEL.into(), v.clone());
            c.network = Some((v.clone(), None, Vec::new()));
        }
        let known = if spec.volumes.is_empty() {
            Vec::new()
        } else {
            self.volume_list().await?
        };
        let mut ids = Vec::new();
        for v in &spec.volumes {
            let (id, path) = v.split_once(':').ok_or_else(|| {
                invalid(format!(
                    "--volume '{v}' has no ':'; write --volume ID:PATH, e.g. vol-1a2b3c4d:/data"
                ))
            })?;
            validate_volume_id(id)?;
            let path = normalize_mount_path(path).ok_or_else(|| {
                invalid(format!(
                    "--volume '{v}': '{path}' is not an absolute path below /, e.g. /data"
                ))
            })?;
            if is_engine_path(&path) {
                return Err(invalid(format!(
                    "--volume '{v}': {path} is the engine's own (/proc, /sys, /dev, /etc/hosts, \
                     /etc/hostname, /etc/resolv.conf); mount the volume elsewhere, e.g. /data"
                )));
            }
            if !known.iter().any(|k| k.id == id) {
                return Err(invalid(format!(
                    "--volume {id}: no such volume (`mcc volume list`)"
                )));
            }
            if c.mounts
                .iter()
                .any(|m| matches!(m, Mount::Volume { target, .. } if *target == path))
            {
                return Err(invalid(format!("--volume '{v}': {path} is given twice")));
            }
            ids.push(id.to_string());
            c.mounts.push(Mount::Volume {
                name: id.to_string(),
                target: path,
                labels: Labels::new(),
                read_only: false,
            });
        }
        if !ids.is_empty() {
            l.insert(VOLUMES_LABEL.into(), ids.join(","));
        }
        if let Some(m) = &spec.memory {
            let b = parse_size("--memory", m).map_err(Error::Invalid)?;
            if b < 6 << 20 {
                return Err(invalid(format!(
                    "--memory {m}: the engine needs at least 6M"
                )));
            }
            c.memory =
                Some(i64::try_from(b).map_err(|_| invalid(format!("--memory {m} is too large")))?);
        }
        if let Some(s) = spec.cpu {
            if !(2..=262_144).contains(&s) {
                return Err(invalid(format!(
                    "--cpu {s}: shares go from 2 to 262144 (1024 is one CPU's worth)"
                )));
            }
            c.cpu_shares = Some(s);
        }
        if let Some(d) = &spec.disk {
            c.disk = Some(parse_size("--disk", d).map_err(Error::Invalid)?);
        }
        if let Some(u) = &spec.user {
            validate_user(u).map_err(Error::Invalid)?;
            c.user = Some(u.clone());
        }
        for kv in &spec.env {
            parse_env(kv).map_err(|e| invalid(format!("--env: {e}")))?;
        }
        c.env = spec.env.clone();
        if let Some(d) = &spec.dir {
            c.workdir = Some(
                normalize_mount_path(d)
                    .filter(|_| d.starts_with('/'))
                    .ok_or_else(|| {
                        invalid(format!("--dir '{d}' is not an absolute path, e.g. /tmp"))
                    })?,
            );
        }
        c.labels = l;
        Ok(c)
    }

    /// Makes and starts a container; its ID. A limit the engine cannot
    /// enforce here is an error, and nothing is left.
    pub async fn run(&self, spec: &RunSpec) -> Result<String> {
        let mut c = self.run_container(spec).await?;
        self.ensure_images(&[&spec.image], &CancellationToken::new())
            .await?;
        c.name = format!("mcc-run-{}", &super::vpc::new_id("r")[2..]);
        let volumes = volumes_of(&c.labels);
        // Held until the container runs and its volumes are marked used:
        // no reaper may judge them in between.
        let _serialized = self.volumes_lock(&volumes, "mounting volumes").await?;
        for v in &volumes {
            self.provider.prepare_sized_volume(v).await?;
        }
        let id = self.provider.create_container(&c).await.map_err(|e| {
            let m = e.to_string();
            if c.disk.is_some()
                && (m.contains("storage-opt") || m.contains("storage opt") || m.contains("quota"))
            {
                invalid(format!(
                    "--disk: this engine cannot limit a container's disk here ({m}); leave --disk \
                     out, and give the data a sized volume instead (mcc volume create --size)"
                ))
            } else {
                e
            }
        })?;
        if let Err(e) = self.provider.start_container(&id).await {
            let _ = self.provider.remove_container(&id).await;
            return Err(e);
        }
        // After the start: a run that failed leaves a volume as it was.
        for v in &volumes {
            self.provider.mark_sized_volume_used(v).await?;
        }
        Ok(id)
    }

    /// The host's volumes lock, when there are `volumes` to guard.
    async fn volumes_lock(
        &self,
        volumes: &[String],
        why: &str,
    ) -> Result<Option<super::lock::HostLock>> {
        if volumes.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.lock_host("volumes", why).await?))
    }

    /// A `run` container's status; an error if the ID names another kind.
    pub async fn run_status(&self, id: &str) -> Result<Option<ContainerStatus>> {
        validate_container_id(id)?;
        match self.provider.container_status(id).await? {
            Some(s) if s.labels.get(labels::ROLE).map(String::as_str) == Some("run") => Ok(Some(s)),
            Some(_) => Err(invalid(format!(
                "{id} is not a container made by `mcc run`; mcc leaves it alone"
            ))),
            None => Ok(None),
        }
    }

    /// A `run` container's resource use now (`None`: no such container).
    /// CPU is measured between two samples of the engine's stream, about a
    /// second apart.
    pub async fn run_metrics(&self, id: &str) -> Result<Option<ContainerMetrics>> {
        use futures_util::StreamExt;
        let Some(st) = self.run_status(id).await? else {
            return Ok(None);
        };
        let mut m = ContainerMetrics {
            id: st.id[..12].to_string(),
            state: st.state.clone(),
            ..Default::default()
        };
        if st.state != "running" {
            return Ok(Some(m));
        }
        let mut stream = self.provider.stats(&st.id);
        let first =
            match tokio::time::timeout(std::time::Duration::from_secs(5), stream.next()).await {
                Ok(Some(Ok(s))) => s,
                _ => return Ok(Some(m)),
            };
        let second =
            match tokio::time::timeout(std::time::Duration::from_secs(5), stream.next()).await {
                Ok(Some(Ok(s))) => s,
                _ => first.clone(),
            };
        let dc = second.cpu_ns.saturating_sub(first.cpu_ns) as f64;
        let ds = second.system_cpu_ns.saturating_sub(first.system_cpu_ns) as f64;
        if ds > 0.0 {
            m.cpu_percent = dc / ds * f64::from(second.online_cpus.max(1)) * 100.0;
        }
        m.memory_bytes = second.memory_bytes;
        m.memory_limit_bytes = second.memory_limit_bytes;
        m.rx_bytes = second.rx_bytes;
        m.tx_bytes = second.tx_bytes;
        m.blk_read_bytes = second.blk_read_bytes;
        m.blk_write_bytes = second.blk_write_bytes;
        Ok(Some(m))
    }

    /// Removes `run` containers (running or not), and the ephemeral
    /// volumes whose last user they were. IDs that name nothing are
    /// reported.
    pub async fn rm(&self, ids: &[String]) -> Result<RmReport> {
        let mut found = Vec::new();
        let mut report = RmReport::default();
        for id in ids {
            match self.run_status(id).await? {
                Some(s) => found.push(s),
                None => report.missing.push(id.clone()),
            }
        }
        let mut volumes: Vec<String> = found.iter().flat_map(|s| volumes_of(&s.labels)).collect();
        volumes.sort();
        volumes.dedup();
        // taken first, so that this rm (not a daemon watching) reports
        // the volumes that go with these containers
        let _serialized = self
            .volumes_lock(&volumes, "removing ephemeral volumes")
            .await?;
        for s in &found {
            self.provider.remove_container(&s.id).await?;
            report.removed.push(s.id[..12].to_string());
        }
        if !volumes.is_empty() {
            let r = self.reap_unused(Some(&volumes)).await?;
            report.volumes_removed = r.removed;
            if let Some((id, e)) = r.failed.first() {
                return Err(Error::Failed(format!(
                    "removed {}, but not ephemeral volume {id}, which they were the last to use: \
                     {e}; delete it with `mcc volume delete {id}`",
                    report.removed.join(", ")
                )));
            }
        }
        Ok(report)
    }
}
