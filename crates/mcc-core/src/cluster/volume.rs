//! Sized volumes (the CC seed's `cc volume`): ext4 file systems of a given
//! size, labelled `mcc.volume` so `mcc volume list` finds them after any
//! crash. Writing past the size fails with "No space left on device".

use serde::{Deserialize, Serialize};

use super::vpc::{new_id, validate_id};
use super::Clusters;
use crate::error::{Error, Result};
use crate::model::options::validate_dns_name;
use crate::model::size::parse_size;
use crate::model::{labels, SCHEMA_VERSION};
use crate::provider::Labels;

pub use crate::model::labels::{
    PERSISTENT as PERSISTENT_LABEL, SIZE as SIZE_LABEL, VOLUME as VOLUME_LABEL,
};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VolumeView {
    pub id: String,
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// Survives the loss of every container; else it goes with the last
    /// container that used it.
    pub persistent: bool,
    /// Containers (running or not) that mount it.
    pub containers: Vec<String>,
}

use super::vpc::IdDeleteReport;

/// What [`Clusters::reap_ephemeral_volumes`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reaped {
    /// Volumes removed.
    pub removed: Vec<String>,
    /// Volumes that should have gone but could not: `(ID, why)`.
    pub failed: Vec<(String, String)>,
}

pub fn validate_volume_id(id: &str) -> Result<()> {
    validate_id(id, "vol", "volume", "mcc volume list")
}

impl Clusters {
    /// Makes a volume of `size` (bytes, or with K/M/G/T); its ID.
    pub async fn volume_create(&self, name: &str, size: &str, persistent: bool) -> Result<String> {
        validate_dns_name("--name", name).map_err(Error::Invalid)?;
        if name.len() > 63 {
            return Err(Error::Invalid(format!(
                "--name '{name}' is longer than 63 characters"
            )));
        }
        let bytes = parse_size("--size", size).map_err(Error::Invalid)?;
        let _serialized = self.lock_host("volumes", "making a volume").await?;
        let existing = self.volume_list().await?;
        if existing.iter().any(|v| v.name == name) {
            return Err(Error::Conflict(format!(
                "a volume named '{name}' exists; choose another --name (`mcc volume list`)"
            )));
        }
        let mut id = new_id("vol");
        while existing.iter().any(|v| v.id == id) {
            id = new_id("vol");
        }
        let mut l = Labels::new();
        l.insert(VOLUME_LABEL.into(), id.clone());
        l.insert(super::vpc::NAME_LABEL.into(), name.into());
        l.insert(SIZE_LABEL.into(), bytes.to_string());
        l.insert(PERSISTENT_LABEL.into(), persistent.to_string());
        l.insert(labels::ROLE.into(), labels::role::VOLUME.into());
        l.insert(labels::SCHEMA.into(), SCHEMA_VERSION.into());
        self.provider.create_volume(&id, Some(bytes), &l).await?;
        Ok(id)
    }

    /// Every volume made by `volume create`, with its users.
    pub async fn volume_list(&self) -> Result<Vec<VolumeView>> {
        let mut out = Vec::new();
        for v in self
            .provider
            .volumes(Some((labels::ROLE, "volume")))
            .await?
        {
            let Some(id) = v.labels.get(VOLUME_LABEL).cloned() else {
                continue;
            };
            out.push(VolumeView {
                containers: self.provider.volume_users(&v.name).await?,
                name: v
                    .labels
                    .get(super::vpc::NAME_LABEL)
                    .cloned()
                    .unwrap_or_default(),
                size: v
                    .labels
                    .get(SIZE_LABEL)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
                persistent: v.labels.get(PERSISTENT_LABEL).map(String::as_str) == Some("true"),
                id,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Deletes volumes: none if any is in use (naming who uses them); IDs
    /// that name no volume are reported, not an error.
    pub async fn volume_delete(&self, ids: &[String]) -> Result<IdDeleteReport> {
        for id in ids {
            validate_volume_id(id)?;
        }
        let _serialized = self.lock_host("volumes", "deleting volumes").await?;
        let all = self.volume_list().await?;
        let existing: Vec<(&str, &str, &[String])> = all
            .iter()
            .map(|v| (v.id.as_str(), v.name.as_str(), v.containers.as_slice()))
            .collect();
        let (doomed, mut report) =
            super::vpc::plan_delete(ids, &existing, "remove those containers first")?;
        for id in doomed {
            self.provider.remove_volume(&id).await?;
            report.deleted.push(id);
        }
        Ok(report)
    }
}

impl Clusters {
    /// Removes the ephemeral volumes that a container has used and that
    /// none uses now (whoever removed the containers: `mcc rm`, `docker rm`,
    /// a cluster's gc): of `candidates`, or every one when `None`. A volume
    /// no container has used yet stays. `mcc rm`, `mcc gc` and the daemon's
    /// watcher all decide through here; serialized with `run` by the
    /// host's volumes lock.
    pub async fn reap_ephemeral_volumes(&self, candidates: Option<&[String]>) -> Result<Reaped> {
        let _serialized = self
            .lock_host("volumes", "removing ephemeral volumes")
            .await?;
        self.reap_unused(candidates).await
    }

    /// [`Clusters::reap_ephemeral_volumes`] for a caller that holds the
    /// volumes lock.
    pub(super) async fn reap_unused(&self, candidates: Option<&[String]>) -> Result<Reaped> {
        let mut r = Reaped::default();
        for v in self
            .provider
            .volumes(Some((labels::ROLE, "volume")))
            .await?
        {
            let Some(id) = v.labels.get(VOLUME_LABEL) else {
                continue;
            };
            // ephemeral only when it says so; a volume is named by its ID
            if v.labels.get(PERSISTENT_LABEL).map(String::as_str) != Some("false")
                || v.name != *id
                || candidates.is_some_and(|c| !c.contains(id))
            {
                continue;
            }
            let unused = async {
                Ok::<_, Error>(
                    self.provider.volume_used(id).await?
                        && self.provider.volume_users(id).await?.is_empty(),
                )
            };
            match unused.await {
                Ok(false) => {}
                Ok(true) => match self.provider.remove_volume(id).await {
                    Ok(_) => r.removed.push(id.clone()),
                    Err(e) => r.failed.push((id.clone(), e.to_string())),
                },
                Err(e) => r.failed.push((id.clone(), e.to_string())),
            }
        }
        r.removed.sort();
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::fake::FakeProvider;
    use crate::provider::Engine;
    use std::sync::Arc;

    #[tokio::test]
    async fn volumes_are_made_listed_and_deleted_with_the_seeds_semantics() {
        let p = Arc::new(FakeProvider::default());
        let c = Clusters::new(p, Arc::new(crate::cluster::Silent));
        let id = c.volume_create("data", "64M", true).await.unwrap();
        validate_volume_id(&id).unwrap();
        let list = c.volume_list().await.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!((list[0].size, list[0].persistent), (64 << 20, true));
        for (name, size, says) in [
            ("x", "0", "--size"),
            ("x", "12Q", "--size"),
            ("data", "1M", "exists"),
            ("Bad_Name", "1M", "--name"),
        ] {
            let e = c.volume_create(name, size, false).await.unwrap_err();
            assert!(e.to_string().contains(says), "{name} {size}: {e}");
        }
        let r = c
            .volume_delete(&[id.clone(), "vol-00000000".into()])
            .await
            .unwrap();
        assert_eq!(
            (r.deleted, r.missing),
            (vec![id.clone()], vec!["vol-00000000".to_string()])
        );
        assert!(c.volume_delete(&[id]).await.unwrap().deleted.is_empty());
        assert!(c.volume_delete(&["vpc-00000000".into()]).await.is_err());
    }

    #[tokio::test]
    async fn only_ephemeral_volumes_used_and_then_left_by_all_are_reaped() {
        let p = Arc::new(FakeProvider::default());
        p.add_image("busybox", false);
        let c = Clusters::new(p.clone(), Arc::new(crate::cluster::Silent));
        let eph = c.volume_create("eph", "8M", false).await.unwrap();
        let fresh = c.volume_create("fresh", "8M", false).await.unwrap();
        let keep = c.volume_create("keep", "8M", true).await.unwrap();
        let spec = crate::cluster::run::RunSpec {
            image: "busybox".into(),
            volumes: vec![format!("{eph}:/e"), format!("{keep}:/k")],
            cmd: vec!["true".into()],
            ..Default::default()
        };
        c.run(&spec).await.unwrap();
        let users = p.volume_users(&eph).await.unwrap();
        assert_eq!(users.len(), 1);
        // in use: nothing goes; never used: stays
        let r = c.reap_ephemeral_volumes(None).await.unwrap();
        assert_eq!(r, Reaped::default());
        // gone behind mcc's back: gc removes the ephemeral one it used
        p.remove_container(&users[0]).await.unwrap();
        let all = [eph.clone(), fresh.clone(), keep.clone()];
        let r = c.reap_ephemeral_volumes(Some(&all[1..])).await.unwrap();
        assert!(r.removed.is_empty(), "not a candidate: {r:?}");
        let g = c.gc(&[], false).await.unwrap();
        assert_eq!(g.volumes_removed, vec![eph.clone()]);
        let left: Vec<String> = c
            .volume_list()
            .await
            .unwrap()
            .into_iter()
            .map(|v| v.id)
            .collect();
        assert_eq!(left.len(), 2);
        assert!(left.contains(&fresh) && left.contains(&keep), "{left:?}");
        // a gc of named clusters leaves the volumes alone
        c.run(&crate::cluster::run::RunSpec {
            volumes: vec![format!("{fresh}:/f")],
            ..spec
        })
        .await
        .unwrap();
        for u in p.volume_users(&fresh).await.unwrap() {
            p.remove_container(&u).await.unwrap();
        }
        let g = c
            .gc(&["somecluster".parse().unwrap()], false)
            .await
            .unwrap();
        assert!(g.volumes_removed.is_empty(), "{g:?}");
        let r = c.reap_ephemeral_volumes(None).await.unwrap();
        assert_eq!(r.removed, vec![fresh]);
    }
}
