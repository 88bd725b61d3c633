//! The workers' own engines (`--docker-workers`): their certificates, and
//! how mcc reaches them.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::parallel::{first_error, run_all, PARALLELISM};
use super::Clusters;
use crate::context;
use crate::error::{Error, Result};
use crate::model::docker_workers::{self, Pem};
use crate::model::{ClusterName, ClusterRecord, NodeId, META_MOUNT};
use crate::provider::{exec_collect, ExecSpec};

/// How long a worker's engine may take to answer after the node started
/// (it takes ~2 s here).
const ENGINE_TIMEOUT: Duration = Duration::from_secs(90);

impl Clusters {
    /// Writes a fresh engine certificate and key into a worker's own
    /// engine volume, where its first process reads them: after its
    /// container is made and before it starts (`create`, `addnode`,
    /// `recreate`), and before each `start` of a stopped worker. The
    /// engine's archive API reaches the volume of a container that is not
    /// running; no other node mounts that volume, and mcc never reads it
    /// back (the worker's root may have changed it: only its own engine
    /// would suffer).
    pub(crate) async fn write_engine_cert(
        &self,
        name: &ClusterName,
        record: &ClusterRecord,
        node: NodeId,
    ) -> Result<()> {
        let Some(dw) = &record.docker else {
            return Ok(());
        };
        let mut ips: Vec<_> = record.plan().ip(node).into_iter().collect();
        if !record.hosts.is_empty() {
            ips.extend(self.host_address_of(name, node).await?);
        }
        let files =
            docker_workers::worker_files(dw, name, node, record.options.domain.as_deref(), &ips)
                .map_err(Error::Failed)?;
        let mut b = tar::Builder::new(Vec::new());
        let io = |e: std::io::Error| Error::Failed(format!("packing {node}'s certificate: {e}"));
        context::append_dir(&mut b, docker_workers::ENGINE_TLS_SUBDIR, 0o700).map_err(io)?;
        for (path, content, mode) in &files {
            context::append_file(&mut b, path, content.as_bytes(), *mode).map_err(io)?;
        }
        let tar = b.into_inner().map_err(io)?;
        self.provider
            .upload(&name.container(node), docker_workers::ENGINE_DATA, tar)
            .await
    }

    /// The address of the host a node runs on, where its published ports
    /// are (a cluster over hosts); `None` on an engine of one host.
    async fn host_address_of(
        &self,
        name: &ClusterName,
        node: NodeId,
    ) -> Result<Option<std::net::Ipv4Addr>> {
        let container = name.container(node);
        let listed = self
            .provider
            .containers(crate::model::labels::CLUSTER, Some(name.as_str()))
            .await?;
        let host = listed
            .into_iter()
            .find(|c| c.name == container)
            .and_then(|c| c.host);
        match host {
            Some(h) => self.provider.host_address(&h).await,
            None => Ok(None),
        }
    }

    /// Empties the copy of a worker's key that an older mcc kept in the
    /// meta volume, which every node mounts: once the worker was made anew
    /// its engine reads its own volume, and nothing needs that copy.
    /// (Anyone who read it before may still hold it: it is valid until
    /// 4096, and only a new cluster, with a new authority, is rid of it.)
    pub(crate) async fn drop_legacy_cert(&self, name: &ClusterName, node: NodeId) -> Result<()> {
        let [key, cert] = docker_workers::legacy_files(node);
        match self
            .store
            .read(name, &format!("{META_MOUNT}/{key}"))
            .await?
        {
            Some(tar) if !context::single_file_text(&tar)?.is_empty() => {}
            _ => return Ok(()),
        }
        let emptied = [(key, String::new(), 0o600), (cert, String::new(), 0o644)];
        self.store
            .write(name, META_MOUNT, context::meta_files_archive(&emptied)?)
            .await
    }

    /// Replaces the nodes' client certificate in the meta volume when it
    /// nears its end, or when it is an older mcc's (valid until 4096):
    /// at `start`, `addnode` and `recreate`. The docker CLI reads it at
    /// every command, so running nodes need no restart. (A command that
    /// runs in the instant of the write may find the new certificate with
    /// the old key, and fail once.) What mcc reads back is from the meta
    /// volume, which no node can write.
    pub(crate) async fn renew_nodes_cert(
        &self,
        name: &ClusterName,
        record: &ClusterRecord,
    ) -> Result<()> {
        let Some(dw) = &record.docker else {
            return Ok(());
        };
        let path = format!("{META_MOUNT}/{}", docker_workers::NODES_CERT_FILE);
        let current = match self.store.read(name, &path).await? {
            Some(tar) => Some(context::single_file_text(&tar)?),
            None => None,
        };
        let now = time::OffsetDateTime::now_utc();
        let ca_until = dw.ca_until();
        if let Some(until) = ca_until.filter(|u| *u - now < docker_workers::RENEW_BEFORE) {
            self.reporter.note(&format!(
                "the certificate authority of cluster '{name}' ends on {}: after that no \
                 engine of its workers accepts a client; make the cluster again before then",
                until.date()
            ));
        }
        if !docker_workers::renewal_due(current.as_deref(), ca_until, now) {
            return Ok(());
        }
        let files = docker_workers::cluster_files(dw, name).map_err(Error::Failed)?;
        self.store
            .write(name, META_MOUNT, context::meta_files_archive(&files)?)
            .await
    }

    /// Waits until the engines of `workers` answer.
    pub(crate) async fn wait_engines(
        &self,
        name: &ClusterName,
        workers: &[NodeId],
        image: &str,
        cancel: &CancellationToken,
    ) -> Result<()> {
        if workers.is_empty() {
            return Ok(());
        }
        self.reporter
            .begin("Waiting for the workers' engines", workers.len());
        let results = run_all(workers.to_vec(), PARALLELISM, cancel, |node| async move {
            self.wait_engine_on(name, node, image, cancel).await?;
            self.reporter.advance(&node.hostname());
            Ok(())
        })
        .await;
        let r = first_error(results).map(|_| ());
        self.reporter.end(r.is_ok());
        r
    }

    /// Waits until a worker's engine answers; an image without one is
    /// named, with what to use instead.
    pub(crate) async fn wait_engine_on(
        &self,
        name: &ClusterName,
        node: NodeId,
        image: &str,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let container = name.container(node);
        let deadline = Instant::now() + ENGINE_TIMEOUT;
        let probe = ExecSpec {
            cmd: vec![
                "/bin/sh".into(),
                "-c".into(),
                docker_workers::ENGINE_PROBE.into(),
            ],
            user: Some("0".into()),
            ..Default::default()
        };
        let mut last = String::new();
        loop {
            if cancel.is_cancelled() {
                return Err(Error::Interrupted);
            }
            match exec_collect(self.provider(), &container, &probe).await {
                Ok((0, _)) => return Ok(()),
                Ok((3, _)) => {
                    return Err(Error::Failed(format!(
                        "image {image} has no dockerd or docker CLI, and the workers of \
                         --docker-workers run a Docker engine: use an image with Debian's \
                         docker.io (scripts/build-test-images docker builds \
                         mcc-test/docker:bookworm)"
                    )))
                }
                Ok((_, out)) => last = String::from_utf8_lossy(&out).trim().to_string(),
                Err(Error::Conflict(_)) => {
                    return Err(Error::Failed(format!(
                        "node {node} stopped while its engine was starting; `mcc logs {name} \
                         {node}` shows its output (a create keeps the node for that with \
                         --keep-on-failure)"
                    )))
                }
                Err(_) => {} // not possible yet: try again
            }
            if Instant::now() > deadline {
                let log = self.engine_log_tail(&container).await;
                return Err(Error::Failed(format!(
                    "the Docker engine of {node} did not answer within {}s ({last}); the end \
                     of its /var/log/dockerd.log:\n{log}",
                    ENGINE_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    async fn engine_log_tail(&self, container: &str) -> String {
        let spec = ExecSpec {
            cmd: ["tail", "-n", "15", "/var/log/dockerd.log"]
                .map(String::from)
                .to_vec(),
            user: Some("0".into()),
            ..Default::default()
        };
        match exec_collect(self.provider(), container, &spec).await {
            Ok((_, out)) => String::from_utf8_lossy(&out).into_owned(),
            Err(e) => format!("(unreadable: {e})"),
        }
    }

    /// A client certificate for the workers' engines of `name` (with the
    /// authority to check them by), for mcc's own use in one command: it
    /// lasts a day; `None` when its workers are not Docker hosts.
    pub async fn engine_client(&self, name: &ClusterName) -> Result<Option<(Pem, String)>> {
        let loaded = self.load_existing(name).await?;
        let record = loaded.record()?;
        let Some(dw) = &record.docker else {
            return Ok(None);
        };
        let pem = dw.session_cert(name, "mcc").map_err(Error::Failed)?;
        Ok(Some((pem, dw.ca_cert.clone())))
    }
}
