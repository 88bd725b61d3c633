//! Where a cluster's own things live, apart from its nodes: the claim on
//! its name with its record, and its files as the nodes see them under
//! `/opt/mcc` (the hosts file, the workers' names, the runner, the
//! context, certificates: read-only to nodes) and `/opt/mcc/shared` (what
//! nodes write). `cluster/` asks a [`ClusterStore`] for these and never
//! says how they are kept.
//!
//! [`MetaStore`] keeps them on the engine itself, which works for any
//! [`Engine`]: a never-started record container `<name>-mcc` whose name
//! is the claim and whose label is the record, mounting the meta volume
//! (writable only there) and the shared volume; a file that running nodes
//! bind is rewritten in place by a helper container. A provider whose
//! nodes span hosts brings a store that they all reach.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::lock::HostLock;
use crate::model::paths::SHARED_MOUNT;
use crate::model::{labels, ClusterName, ClusterRecord, META_MOUNT};
use crate::provider::{ContainerRequest, Engine, Helper, Mount};

#[async_trait]
pub trait ClusterStore: Send + Sync {
    /// Claims `name` for a cluster of `record`, made by `creator` (the
    /// `mcc.creator` label): of two claims of one name exactly one
    /// succeeds, the other is a [`Error::Conflict`] and has made nothing.
    /// `image` is one the engine has (the front-end's).
    async fn claim(
        &self,
        name: &ClusterName,
        record: &ClusterRecord,
        image: &str,
        creator: &str,
    ) -> Result<()>;

    /// A file or folder of the cluster, by the path nodes see it at (under
    /// `/opt/mcc`), as a tar archive; `None` when there is none.
    async fn read(&self, name: &ClusterName, path: &str) -> Result<Option<Vec<u8>>>;

    /// Extracts `tar` into the folder `dir` of the cluster (a path as
    /// nodes see it: `/opt/mcc`, `/opt/mcc/shared`, …).
    async fn write(&self, name: &ClusterName, dir: &str, tar: Vec<u8>) -> Result<()>;

    /// Takes lock `key` (`cluster-NAME`, `addresses-VPC`, `networks`,
    /// `volumes`): of all mcc processes this store serves, one holds it at
    /// a time, until the returned value is dropped. Waits up to `timeout`,
    /// telling `on_wait` what it waits for.
    async fn lock(
        &self,
        key: &str,
        what: &str,
        timeout: Duration,
        on_wait: &(dyn for<'m> Fn(&'m str) + Send + Sync),
    ) -> Result<Held>;

    /// Like [`ClusterStore::lock`], but `None` at once when it is held.
    async fn try_lock(&self, key: &str, what: &str) -> Result<Option<Held>>;

    /// Replaces `file` (relative to `/opt/mcc`) in place, in one write, so
    /// that running nodes that bind it see the new content at once.
    async fn rewrite_live(
        &self,
        name: &ClusterName,
        record: &ClusterRecord,
        file: &str,
        content: &[u8],
    ) -> Result<()>;

    /// Gives up the claim on `name` once the cluster's objects are gone
    /// (delete, gc), so that the name can be claimed again. A store whose
    /// claim is one of those objects (the record container) has nothing
    /// more to do.
    async fn release(&self, _name: &ClusterName) -> Result<()> {
        Ok(())
    }
}

/// A lock of a store, held until dropped.
pub type Held = Box<dyn std::any::Any + Send + Sync>;

/// A cluster's store on its engine: see the module's text. Its locks are
/// files of this host (`crate::lock`): mcc processes of one host exclude
/// each other; a store for engines on several hosts needs locks they all
/// see (the swarm's, `SwarmStore`).
pub struct MetaStore {
    provider: Arc<dyn Engine>,
}

impl MetaStore {
    pub fn new(provider: Arc<dyn Engine>) -> MetaStore {
        MetaStore { provider }
    }
}

#[async_trait]
impl ClusterStore for MetaStore {
    async fn claim(
        &self,
        name: &ClusterName,
        record: &ClusterRecord,
        image: &str,
        creator: &str,
    ) -> Result<()> {
        let mut l = labels::of(name, Some(labels::role::META));
        l.insert(labels::RECORD.into(), record.to_label());
        l.insert(labels::CREATOR.into(), creator.to_string());
        let meta = ContainerRequest {
            name: name.meta_container(),
            image: image.to_string(),
            // never started: it holds the record and gives access to the
            // meta volume while every node is stopped
            cmd: Some(vec!["true".into()]),
            labels: l,
            no_network: true,
            // the only container that mounts the meta volume writable
            mounts: vec![
                Mount::Volume {
                    name: record.meta_volume.clone(),
                    target: META_MOUNT.into(),
                    labels: record.across_hosts(labels::of(name, Some(labels::role::META))),
                    read_only: false,
                },
                Mount::Volume {
                    name: record.shared_volume.clone(),
                    target: SHARED_MOUNT.into(),
                    labels: record.across_hosts(labels::of(name, Some(labels::role::SHARED))),
                    read_only: false,
                },
            ],
            ..Default::default()
        };
        match self.provider.create_container(&meta).await {
            Ok(_) => Ok(()),
            Err(Error::Conflict(_)) => Err(Error::Conflict(format!(
                "cluster '{name}' already exists or is being created by another mcc \
                 (container {} is taken); choose another --name",
                name.meta_container()
            ))),
            Err(e) => Err(e),
        }
    }

    async fn read(&self, name: &ClusterName, path: &str) -> Result<Option<Vec<u8>>> {
        // A file being replaced by the engine's copy is briefly absent;
        // writers hold the cluster's lock, readers look twice.
        for attempt in 0..2 {
            match self.provider.download(&name.meta_container(), path).await {
                Ok(tar) => return Ok(Some(tar)),
                Err(e) if e.is_not_found() && attempt == 0 => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) if e.is_not_found() => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    async fn write(&self, name: &ClusterName, dir: &str, tar: Vec<u8>) -> Result<()> {
        self.provider.upload(&name.meta_container(), dir, tar).await
    }

    async fn lock(
        &self,
        key: &str,
        what: &str,
        timeout: Duration,
        on_wait: &(dyn for<'m> Fn(&'m str) + Send + Sync),
    ) -> Result<Held> {
        Ok(Box::new(
            HostLock::acquire(key, what, timeout, on_wait).await?,
        ))
    }

    async fn try_lock(&self, key: &str, what: &str) -> Result<Option<Held>> {
        Ok(HostLock::try_acquire(key, what)?.map(|l| Box::new(l) as Held))
    }

    async fn rewrite_live(
        &self,
        name: &ClusterName,
        record: &ClusterRecord,
        file: &str,
        content: &[u8],
    ) -> Result<()> {
        let helper = Helper {
            image: record.frontend_image.clone(),
            labels: labels::of(name, Some(labels::role::HELPER)),
        };
        self.provider
            .rewrite_in_place(&record.meta_volume, file, content, &helper)
            .await
    }
}
