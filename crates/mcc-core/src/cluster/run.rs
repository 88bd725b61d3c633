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
use crate::provider::{ContainerInfo, ContainerRequest, ContainerStatus, Labels, Limit, Mount};

pub use crate::model::labels::VOLUMES as VOLUMES_LABEL;

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

/// A container as the user may give it, checked for form only: what the
/// listings show (a name such as `mcc-run-e3591b33`, a full ID), or the
/// start of an ID, as the engine's own names go.
fn validate_container_ref(given: &str) -> Result<()> {
    let ok = (1..=128).contains(&given.len())
        && given.as_bytes()[0].is_ascii_alphanumeric()
        && given
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "'{given}' is not a container: give its name (e.g. mcc-run-e3591b33), its ID, or the \
             start of its ID, as `mcc status` lists them"
        )))
    }
}

/// The uid and gid `--user` USER[:GROUP] runs as, with the image's
/// `passwd` and `group` files, as the engine resolves them: a name is
/// looked up, a number is itself; without a group, the user's own in
/// `passwd` (0 for a number it does not list). `None`: a name the files
/// do not have.
fn owner_of(user: &str, passwd: &str, group: &str) -> Option<(u32, u32)> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let entries = |text: &str| -> Vec<Vec<String>> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split(':').map(str::to_string).collect::<Vec<_>>())
            .filter(|f| f.len() >= 3)
            .collect()
    };
    let users = entries(passwd);
    let numeric = |s: &str| -> Option<u32> {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let entry = match numeric(u) {
        Some(n) => users.iter().find(|f| numeric(&f[2]) == Some(n)),
        None => users.iter().find(|f| f[0] == u),
    };
    let uid = match numeric(u) {
        Some(n) => n,
        None => numeric(&entry?[2])?,
    };
    let gid = match g {
        Some(g) => match numeric(g) {
            Some(n) => n,
            None => numeric(&entries(group).iter().find(|f| f[0] == g)?[2])?,
        },
        None => entry
            .and_then(|f| f.get(3))
            .and_then(|g| numeric(g))
            .unwrap_or(0),
    };
    Some((uid, gid))
}

/// The one container of `runs` that `given` names: by its name or full
/// ID, else by a unique start of its ID (as docker does). `Ok(None)`: none;
/// an ambiguous start is bad input listing who it could be.
fn pick_run<'a>(given: &str, runs: &'a [ContainerInfo]) -> Result<Option<&'a ContainerInfo>> {
    if let Some(c) = runs.iter().find(|c| c.id == given || c.name == given) {
        return Ok(Some(c));
    }
    if !given.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let start = given.to_ascii_lowercase();
    let mut hits: Vec<&ContainerInfo> = runs.iter().filter(|c| c.id.starts_with(&start)).collect();
    match hits.len() {
        0 => Ok(None),
        1 => Ok(hits.pop()),
        _ => {
            hits.sort_by(|a, b| a.id.cmp(&b.id));
            let who: Vec<String> = hits
                .iter()
                .map(|c| format!("{} ({})", &c.id[..12.min(c.id.len())], c.name))
                .collect();
            Err(invalid(format!(
                "'{given}' starts the IDs of {} containers of `mcc run`: {}; give more of the \
                 ID, or the name",
                hits.len(),
                who.join(", ")
            )))
        }
    }
}

impl Clusters {
    /// Checks a run's input and makes its container spec; nothing is made.
    async fn run_container(&self, spec: &RunSpec) -> Result<ContainerRequest> {
        validate_image_ref(&spec.image).map_err(|e| invalid(format!("--image: {e}")))?;
        if spec.cmd.is_empty() {
            return Err(invalid(
                "no command: give it after the flags, e.g. mcc run --image busybox -- echo hi",
            ));
        }
        let mut l: Labels = Labels::new();
        l.insert(labels::ROLE.into(), labels::role::RUN.into());
        l.insert(labels::SCHEMA.into(), SCHEMA_VERSION.into());
        let mut c = ContainerRequest {
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
        let (mounts, ids) = self.run_mounts(&spec.volumes).await?;
        c.mounts = mounts;
        if !ids.is_empty() {
            l.insert(VOLUMES_LABEL.into(), ids.join(","));
        }
        if let Some(m) = &spec.memory {
            c.limits.memory = Some(parse_size("--memory", m).map_err(Error::Invalid)?);
        }
        if let Some(s) = spec.cpu {
            c.limits.cpu_shares = Some(u64::try_from(s).unwrap_or(0));
        }
        if let Some(d) = &spec.disk {
            c.limits.disk = Some(parse_size("--disk", d).map_err(Error::Invalid)?);
        }
        if let Some((limit, why)) = self.provider.refuse_limits(&c.limits) {
            return Err(invalid(match limit {
                Limit::Memory => {
                    format!("--memory {}: {why}", spec.memory.as_deref().unwrap_or(""))
                }
                Limit::Cpu => format!("--cpu {}: {why}", spec.cpu.unwrap_or_default()),
                Limit::Disk => format!("--disk {}: {why}", spec.disk.as_deref().unwrap_or("")),
            }));
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

    /// The `--volume ID:PATH`s of a run as mounts, each checked (a volume
    /// mcc made, an absolute path that is not the engine's, no path twice),
    /// and the volumes' IDs.
    async fn run_mounts(&self, volumes: &[String]) -> Result<(Vec<Mount>, Vec<String>)> {
        let known = if volumes.is_empty() {
            Vec::new()
        } else {
            self.volume_list().await?
        };
        let mut ids = Vec::new();
        let mut mounts: Vec<Mount> = Vec::new();
        for v in volumes {
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
            if mounts
                .iter()
                .any(|m| matches!(m, Mount::Volume { target, .. } if *target == path))
            {
                return Err(invalid(format!("--volume '{v}': {path} is given twice")));
            }
            ids.push(id.to_string());
            mounts.push(Mount::Volume {
                name: id.to_string(),
                target: path,
                labels: Labels::new(),
                read_only: false,
            });
        }
        Ok((mounts, ids))
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
        let mut fresh = Vec::new();
        for v in &volumes {
            // fresh: never mounted by mcc for a container, and mounted by
            // none now (the lock keeps another run out meanwhile)
            if !self.provider.volume_used(v).await?
                && self.provider.volume_users(v).await?.is_empty()
            {
                fresh.push(v.clone());
            }
        }
        let id = self.provider.create_container(&c).await?;
        let started = async {
            if let (Some(user), false) = (&spec.user, fresh.is_empty()) {
                self.give_fresh_volumes(&id, user, &fresh).await?;
            }
            self.provider.start_container(&id).await
        };
        if let Err(e) = started.await {
            let _ = self.provider.remove_container(&id).await;
            return Err(e);
        }
        // After the start: a run that failed leaves a volume as it was.
        for v in &volumes {
            self.provider.mark_volume_used(v).await?;
        }
        Ok(id)
    }

    /// A fresh volume mounted for a `--user` belongs to that user, as a
    /// folder the user made would: its root folder is given to the uid and
    /// gid the user is in container `id`'s image (read from the image's
    /// `/etc/passwd` and `/etc/group` before it ever runs). A name the
    /// image does not know is left to the engine, which refuses it at the
    /// start.
    async fn give_fresh_volumes(&self, id: &str, user: &str, fresh: &[String]) -> Result<()> {
        let read = |path: &'static str| async move {
            match self.provider.download(id, path).await {
                Ok(tar) => crate::context::single_file_text(&tar).unwrap_or_default(),
                Err(_) => String::new(),
            }
        };
        let (passwd, group) = (read("/etc/passwd").await, read("/etc/group").await);
        let Some((uid, gid)) = owner_of(user, &passwd, &group) else {
            return Ok(());
        };
        for v in fresh {
            self.provider.own_volume_root(v, uid, gid).await?;
        }
        Ok(())
    }

    /// The host's volumes lock, when there are `volumes` to guard.
    async fn volumes_lock(
        &self,
        volumes: &[String],
        why: &str,
    ) -> Result<Option<crate::provider::store::Held>> {
        if volumes.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.lock_host("volumes", why).await?))
    }

    /// The full ID of the `run` container that `given` names (its name,
    /// its ID, or a unique start of its ID), found among the containers
    /// mcc labelled as `run`'s only: never another container of the
    /// engine. `None`: no such container; a node of a cluster is named as
    /// such, with the command that removes it.
    pub async fn resolve_run(&self, given: &str) -> Result<Option<String>> {
        validate_container_ref(given)?;
        let runs = self.runs().await?;
        if let Some(c) = pick_run(given, &runs)? {
            return Ok(Some(c.id.clone()));
        }
        let nodes = self.provider.containers(labels::CLUSTER, None).await?;
        if let Some(n) = nodes.iter().find(|n| n.name == given || n.id == given) {
            let cluster = n.labels.get(labels::CLUSTER).cloned().unwrap_or_default();
            return Err(invalid(format!(
                "{given} is a container of cluster '{cluster}', not one of `mcc run`: `mcc delete \
                 {cluster}` removes the cluster (`mcc delnode {cluster} NODE` one node)"
            )));
        }
        Ok(None)
    }

    /// A `run` container's status, by what [`Clusters::resolve_run`]
    /// takes; `None`: no such container.
    pub async fn run_status(&self, given: &str) -> Result<Option<ContainerStatus>> {
        let Some(id) = self.resolve_run(given).await? else {
            return Ok(None);
        };
        match self.provider.container_status(&id).await? {
            // the labels again: the ID is a full one, and the engine's
            Some(s)
                if s.labels.get(labels::ROLE).map(String::as_str) == Some(labels::role::RUN) =>
            {
                Ok(Some(s))
            }
            _ => Ok(None),
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
                // named twice (by its name and its ID, say): removed once
                Some(s) if found.iter().any(|f: &ContainerStatus| f.id == s.id) => {}
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::ContainerState;

    fn run(id: &str, name: &str) -> ContainerInfo {
        ContainerInfo {
            id: id.into(),
            name: name.into(),
            image: "busybox".into(),
            state: ContainerState::Running,
            labels: Labels::new(),
            addresses: Default::default(),
            ports: Vec::new(),
            host: None,
        }
    }

    #[test]
    fn a_container_is_named_as_the_listings_show_it() {
        let runs = [
            run(&format!("3f2a9c{}", "0".repeat(58)), "mcc-run-e3591b33"),
            run(&format!("3f2b11{}", "1".repeat(58)), "mcc-run-0badc0de"),
        ];
        let id = |given: &str| pick_run(given, &runs).map(|c| c.map(|c| c.name.clone()));
        let first = Some("mcc-run-e3591b33".to_string());
        assert_eq!(id("mcc-run-e3591b33").unwrap(), first);
        assert_eq!(id(&runs[0].id).unwrap(), first);
        assert_eq!(id("3f2a").unwrap(), first);
        assert_eq!(id("3F2A9C").unwrap(), first);
        assert_eq!(id("3f2c").unwrap(), None);
        assert_eq!(id("mcc-run-ffffffff").unwrap(), None);
        // ambiguous: bad input naming who it could be
        let e = id("3f2").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let m = e.to_string();
        assert!(
            m.contains("mcc-run-e3591b33") && m.contains("mcc-run-0badc0de") && m.contains("'3f2'"),
            "{m}"
        );
        for bad in ["", "a b", "../x", "-x", &"a".repeat(129)] {
            let e = validate_container_ref(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
        }
    }

    #[test]
    fn a_user_is_the_uid_and_gid_the_image_says() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n\
                      app:x:1000:1001::/home/app:/bin/sh\n";
        let group = "root:x:0:\nnogroup:x:65534:\nstaff:x:50:\n";
        for (user, want) in [
            ("nobody", Some((65534, 65534))),
            ("app", Some((1000, 1001))),
            ("1000", Some((1000, 1001))),
            ("4242", Some((4242, 0))),
            ("4242:7", Some((4242, 7))),
            ("nobody:staff", Some((65534, 50))),
            ("ghost", None),
            ("nobody:ghosts", None),
        ] {
            assert_eq!(owner_of(user, passwd, group), want, "{user}");
        }
    }

    #[tokio::test]
    async fn a_fresh_volume_run_for_a_user_is_given_to_that_user_once() {
        use crate::provider::fake::FakeProvider;
        let p = std::sync::Arc::new(FakeProvider::default());
        p.add_image("busybox", false);
        let c = Clusters::new(p.clone(), std::sync::Arc::new(crate::cluster::Silent));
        let v = c.volume_create("data", "8M", true).await.unwrap();
        let spec = RunSpec {
            image: "busybox".into(),
            volumes: vec![format!("{v}:/data")],
            user: Some("4242:7".into()),
            cmd: vec!["true".into()],
            ..Default::default()
        };
        c.run(&spec).await.unwrap();
        assert_eq!(p.owned_volumes(), vec![(v.clone(), 4242, 7)]);
        // used since: its owner is whoever the data's owner made it
        c.run(&RunSpec {
            user: Some("99".into()),
            ..spec.clone()
        })
        .await
        .unwrap();
        assert_eq!(p.owned_volumes().len(), 1);
    }

    #[tokio::test]
    async fn only_containers_of_run_are_resolved() {
        use crate::provider::fake::FakeProvider;
        use crate::provider::Engine;
        let p = std::sync::Arc::new(FakeProvider::default());
        p.add_image("busybox", false);
        let c = Clusters::new(p.clone(), std::sync::Arc::new(crate::cluster::Silent));
        let mut labels = Labels::new();
        labels.insert(labels::CLUSTER.into(), "web".into());
        let node = p
            .create_container(&ContainerRequest {
                name: "web-node01".into(),
                image: "busybox".into(),
                labels,
                ..Default::default()
            })
            .await
            .unwrap();
        let foreign = p
            .create_container(&ContainerRequest {
                name: "someone-elses".into(),
                image: "busybox".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let id = c
            .run(&RunSpec {
                image: "busybox".into(),
                cmd: vec!["true".into()],
                ..Default::default()
            })
            .await
            .unwrap();
        let name = p.container_status(&id).await.unwrap().unwrap().name;
        assert_eq!(c.resolve_run(&name).await.unwrap(), Some(id.clone()));
        assert_eq!(c.resolve_run(&id[..4]).await.unwrap(), Some(id.clone()));
        assert_eq!(c.resolve_run("someone-elses").await.unwrap(), None);
        assert_eq!(c.resolve_run(&foreign).await.unwrap(), None);
        let e = c.resolve_run("web-node01").await.unwrap_err().to_string();
        assert!(e.contains("mcc delete web"), "{e}");
        assert!(c.resolve_run(&node).await.is_err());
        let r = c.rm(&[name.clone(), id.clone()]).await.unwrap();
        assert_eq!(r.removed, vec![id[..12].to_string()]);
    }
}
