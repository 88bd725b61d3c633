//! Building, starting and contextualizing node containers; keeping the
//! shared hosts file current. Shared by create and addnode.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::parallel::{first_error, run_all, PARALLELISM};
use super::Clusters;
use crate::context;
use crate::error::{Error, Result};
use crate::model::docker_workers;
use crate::model::hosts::render_hosts;
use crate::model::{labels, ClusterName, ClusterRecord, NodeId, Role, META_MOUNT};
use crate::provider::{exec_collect, ExecSpec, ImageInfo, Labels, Mount, NodeInit, NodeRequest};

/// Keeps a node running when its image would only start a shell and exit.
/// It exits at once on SIGTERM, so `stop` does not wait for the timeout.
const KEEPALIVE: &str = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done";

pub(crate) fn base_labels(name: &ClusterName) -> Labels {
    labels::of(name, None)
}

pub(crate) fn meta_volume_labels(name: &ClusterName) -> Labels {
    labels::of(name, Some(labels::role::META))
}

pub(crate) fn shared_volume_labels(name: &ClusterName) -> Labels {
    labels::of(name, Some(labels::role::SHARED))
}

pub(crate) fn data_volume_labels(name: &ClusterName, device: &str) -> Labels {
    let mut l = base_labels(name);
    l.insert(labels::ROLE.into(), labels::role::DATA.into());
    l.insert(labels::DEVICE.into(), device.into());
    l
}

pub(crate) fn persist_volume_labels(name: &ClusterName, node: NodeId, path: &str) -> Labels {
    let mut l = base_labels(name);
    l.insert(labels::ROLE.into(), labels::role::PERSIST.into());
    l.insert(labels::NODE.into(), node.hostname());
    l.insert(labels::PATH.into(), path.into());
    l
}

/// What nodes are made from: the cluster, its record and the images' defaults.
#[derive(Clone, Copy)]
pub(crate) struct Blueprint<'a> {
    pub name: &'a ClusterName,
    pub record: &'a ClusterRecord,
    pub images: &'a HashMap<String, ImageInfo>,
    /// How long the operation may take (for the creator labels).
    pub timeout: Duration,
    /// Nodes placed on a host other than their round-robin one (`addnode
    /// --host`, `recreate --host`, or where a recreated node runs now).
    pub placements: &'a BTreeMap<NodeId, String>,
}

/// How long systemd may take to boot a node.
const SYSTEMD_TIMEOUT: Duration = Duration::from_secs(120);

/// What one node is made of.
pub(crate) fn node_request(
    name: &ClusterName,
    node: NodeId,
    record: &ClusterRecord,
    image: &ImageInfo,
) -> NodeRequest {
    let plan = record.plan();
    let opts = &record.options;
    let mut l = base_labels(name);
    l.insert(labels::ROLE.into(), node.role.as_str().into());
    l.insert(labels::INDEX.into(), node.index.to_string());
    let mut env: Vec<String> = record.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env.push(format!("MCC_CLUSTER={name}"));
    env.push(format!("MCC_ROLE={}", node.role.as_str()));
    env.push(format!("MCC_NODE={}", node.hostname()));
    // what does not change with membership; MCC_NODES does, and comes from
    // /opt/mcc/nodes (or an exec's own environment)
    env.push(format!("MCC_FRONTEND={}", NodeId::FRONTEND.hostname()));
    env.push(format!("MCC_SHARED={}", context::SHARED_MOUNT));
    env.push(format!("MCC_CONTEXT={META_MOUNT}/context"));
    let mut mounts = vec![
        // mcc's files: read-only, so that no node can change what mcc
        // reads, runs on other nodes, or has the engine bind (hosts)
        Mount::Volume {
            name: record.meta_volume.clone(),
            target: META_MOUNT.into(),
            labels: record.across_hosts(meta_volume_labels(name)),
            read_only: true,
        },
        Mount::Volume {
            name: record.shared_volume.clone(),
            target: context::SHARED_MOUNT.into(),
            labels: record.across_hosts(shared_volume_labels(name)),
            read_only: false,
        },
    ];
    for d in &record.devices {
        mounts.push(Mount::Volume {
            name: name.device_volume(&d.name),
            target: d.path.clone(),
            labels: record.across_hosts(data_volume_labels(name, &d.name)),
            read_only: false,
        });
    }
    let engine_host = node.role == Role::Worker && record.docker.is_some();
    if let Some(dw) = &record.docker {
        env.extend(docker_workers::node_env());
        if engine_host {
            env.extend(docker_workers::worker_env(dw));
        }
    }
    // a Docker worker's images and containers outlive a recreate
    for p in &record.persisted(node.role) {
        mounts.push(Mount::Volume {
            name: name.persist_volume(node, p),
            target: p.clone(),
            labels: persist_volume_labels(name, node, p),
            read_only: false,
        });
    }
    let image_name = match node.role {
        Role::Frontend => &record.frontend_image,
        Role::Worker => &record.worker_image,
    };
    let init = if opts.systemd {
        NodeInit::Systemd
    } else if image.exits_at_once() {
        NodeInit::Shell(KEEPALIVE.into())
    } else {
        NodeInit::Image
    };
    NodeRequest {
        name: name.container(node),
        hostname: node.hostname(),
        domainname: opts.domain.clone(),
        dns: opts.dns.iter().map(|d| d.to_string()).collect(),
        dns_search: opts.dns_search.clone(),
        image: image_name.clone(),
        init,
        env,
        labels: l,
        network: (
            record.network(name),
            plan.ip(node),
            aliases(name, node, record),
        ),
        volumes: mounts,
        // one file for the whole cluster, that no node can write
        hosts_file: Some((record.meta_volume.clone(), "hosts".into())),
        host_modules: opts.mount_modules,
        privileged: record.privileged,
        placement: crate::model::placement::host_of(&record.hosts, node).map(String::from),
        engine_host,
        // over hosts, mcc is outside the overlay: it reaches a worker's
        // engine (TLS, client certificates) where its host publishes it
        publish: match engine_host && !record.hosts.is_empty() {
            true => vec![docker_workers::ENGINE_PORT],
            false => Vec::new(),
        },
        publish_on: None,
    }
}

/// The names a node answers to on its network's DNS. On a VPC, which
/// other clusters and containers share, only its container name: a
/// `frontend` there would be any cluster's. Nodes find each other through
/// their hosts file either way.
fn aliases(name: &ClusterName, node: NodeId, record: &ClusterRecord) -> Vec<String> {
    if record.vpc.is_some() {
        vec![name.container(node)]
    } else {
        vec![node.hostname(), name.container(node)]
    }
}

/// A worker of `--docker-workers` starts its engine before anything else
/// its first process does: mcc's script is prefixed, or the image's own
/// entrypoint and command run after it (as arguments, never as text).
pub(crate) fn with_engine_start(mut spec: NodeRequest, image: &ImageInfo) -> NodeRequest {
    if !spec.engine_host {
        return spec;
    }
    spec.init = match spec.init {
        NodeInit::Shell(script) => {
            NodeInit::Shell(format!("{}{script}", docker_workers::START_ENGINE))
        }
        NodeInit::Image | NodeInit::ShellThen(..) => NodeInit::ShellThen(
            format!("{}exec \"$@\"", docker_workers::START_ENGINE),
            image.entrypoint.iter().chain(&image.cmd).cloned().collect(),
        ),
        // refused when the cluster is specified
        NodeInit::Systemd => NodeInit::Systemd,
    };
    spec
}

/// Whether a node runs its creation phases itself at its first start, rather
/// than through an exec from mcc: when mcc keeps it alive (its command is
/// mcc's) and the cluster has a context.
pub(crate) fn runs_context_at_boot(record: &ClusterRecord, image: &ImageInfo) -> bool {
    record.context && !record.options.systemd && image.exits_at_once()
}

/// Turns a node's spec into one whose first process runs its creation
/// phases: `run` names this bring-up, so that workers made together with
/// the front-end wait for the front-end's scripts of the same run.
pub(crate) fn with_boot_run(mut spec: NodeRequest, run: &str, wait_frontend: bool) -> NodeRequest {
    spec.init = NodeInit::Shell(context::BOOT_AND_KEEPALIVE.into());
    spec.env.push(format!("MCC_RUN={run}"));
    spec.labels.insert(labels::BOOT_RUN.into(), "1".into());
    if wait_frontend {
        spec.env.push("MCC_WAIT_FRONTEND=1".into());
    }
    spec
}

/// The hosts file for a set of nodes of a cluster.
pub(crate) fn hosts_for(
    name: &ClusterName,
    record: &ClusterRecord,
    nodes: &[NodeId],
) -> Result<String> {
    let plan = record.plan();
    let entries: Vec<(NodeId, Ipv4Addr)> = nodes
        .iter()
        .map(|n| {
            plan.ip(*n).map(|ip| (*n, ip)).ok_or_else(|| {
                Error::Failed(format!(
                    "node {n} has no address in subnet {}",
                    record.subnet
                ))
            })
        })
        .collect::<Result<_>>()?;
    Ok(render_hosts(
        name,
        &entries,
        record.options.domain.as_deref(),
        &record.options.add_hosts,
    ))
}

impl Clusters {
    /// The cluster's meta volume, which must exist.
    pub(crate) async fn meta_volume(
        &self,
        name: &ClusterName,
        record: &ClusterRecord,
    ) -> Result<crate::provider::VolumeInfo> {
        self.provider
            .volume(&record.meta_volume)
            .await?
            .ok_or_else(|| {
                Error::Failed(format!(
                    "volume {} of cluster '{name}' is missing; delete the cluster with \
                     `mcc delete {name}`",
                    record.meta_volume
                ))
            })
    }

    /// Waits until systemd in each node reports `running` or `degraded`.
    pub(crate) async fn wait_systemd(
        &self,
        name: &ClusterName,
        nodes: &[NodeId],
        cancel: &CancellationToken,
    ) -> Result<()> {
        self.reporter.begin("Waiting for systemd", nodes.len());
        let results = run_all(nodes.to_vec(), PARALLELISM, cancel, |node| async move {
            self.wait_systemd_on(name, node, cancel).await?;
            self.reporter.advance(&node.hostname());
            Ok(())
        })
        .await;
        let r = first_error(results).map(|_| ());
        self.reporter.end(r.is_ok());
        r
    }

    pub(crate) async fn wait_systemd_on(
        &self,
        name: &ClusterName,
        node: NodeId,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let container = name.container(node);
        let deadline = Instant::now() + SYSTEMD_TIMEOUT;
        let mut state = String::new();
        loop {
            if cancel.is_cancelled() {
                return Err(Error::Interrupted);
            }
            let spec = ExecSpec {
                cmd: vec!["systemctl".into(), "is-system-running".into()],
                user: Some("0".into()),
                ..Default::default()
            };
            match exec_collect(self.provider(), &container, &spec).await {
                Ok((_, out)) => {
                    state = String::from_utf8_lossy(&out).trim().to_string();
                    if state == "running" || state == "degraded" {
                        return Ok(());
                    }
                }
                // the container is not running (any more)
                Err(Error::Conflict(_)) => {
                    return Err(Error::Failed(format!(
                        "node {node} stopped while systemd was starting (is /sbin/init \
                         systemd in image {}?); `mcc logs {name} {node}` shows its output (a \
                         create keeps the node for that with --keep-on-failure)",
                        self.image_of(name, node).await
                    )));
                }
                Err(_) => {} // exec not possible yet: try again
            }
            if Instant::now() > deadline {
                let failed = self.failed_units(&container).await;
                return Err(Error::Failed(format!(
                    "systemd on {node} did not reach running within {}s (state: {}); \
                     failed units: {failed}",
                    SYSTEMD_TIMEOUT.as_secs(),
                    if state.is_empty() { "unknown" } else { &state }
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn failed_units(&self, container: &str) -> String {
        let spec = ExecSpec {
            cmd: [
                "systemctl",
                "--failed",
                "--no-legend",
                "--plain",
                "--no-pager",
            ]
            .map(String::from)
            .to_vec(),
            user: Some("0".into()),
            ..Default::default()
        };
        match exec_collect(self.provider(), container, &spec).await {
            Ok((_, out)) => {
                let units: Vec<String> = String::from_utf8_lossy(&out)
                    .lines()
                    .filter_map(|l| l.split_whitespace().next().map(String::from))
                    .collect();
                if units.is_empty() {
                    "none (jobs still queued: `systemctl list-jobs` on the node)".into()
                } else {
                    units.join(", ")
                }
            }
            Err(e) => format!("(cannot ask systemd: {e})"),
        }
    }

    async fn image_of(&self, name: &ClusterName, node: NodeId) -> String {
        match self.load(name).await {
            Ok(l) => l
                .node(node)
                .map(|n| n.info.image.clone())
                .unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Runs the context's `on-change` scripts on every running member,
    /// with `MCC_NODES` listing the current workers.
    pub(crate) async fn on_change(
        &self,
        name: &ClusterName,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let loaded = self.load(name).await?;
        if !loaded.record()?.on_change {
            return Ok(());
        }
        let workers = loaded.workers();
        let running: Vec<NodeId> = loaded
            .nodes
            .iter()
            .filter(|n| n.running())
            .map(|n| n.node)
            .collect();
        self.reporter
            .begin("Running on-change hooks", running.len());
        let workers = &workers;
        let results = run_all(running, PARALLELISM, cancel, |node| async move {
            let env = context::script_env(name.as_str(), node, workers);
            let container = name.container(node);
            let hooks = context::run_phases(self.provider(), &container, node, env, &["on-change"]);
            tokio::select! {
                r = hooks => r?,
                _ = cancel.cancelled() => return Err(Error::Interrupted),
            }
            self.reporter.advance(&node.hostname());
            Ok(())
        })
        .await;
        let r = first_error(results).map(|_| ());
        self.reporter.end(r.is_ok());
        r
    }

    /// Makes sure each image is present, pulling the missing ones, and
    /// returns what each runs by default.
    pub(crate) async fn ensure_images(
        &self,
        images: &[&str],
        cancel: &CancellationToken,
    ) -> Result<HashMap<String, ImageInfo>> {
        let mut out = HashMap::new();
        for image in images {
            if out.contains_key(*image) {
                continue;
            }
            let info = match self.provider.image(image).await? {
                Some(i) => i,
                None => {
                    self.reporter.begin(&format!("Pulling image {image}"), 0);
                    let reporter = self.reporter.clone();
                    let progress = move |line: String| reporter.advance(&line);
                    let pull = self.provider.pull(image, &progress);
                    // Ctrl-C stops a pull under way (nothing is made yet)
                    let pulled = tokio::select! {
                        r = pull => r,
                        _ = cancel.cancelled() => Err(Error::Interrupted),
                    };
                    self.reporter.end(pulled.is_ok());
                    pulled?;
                    self.provider.image(image).await?.ok_or_else(|| {
                        Error::Failed(format!("image '{image}' is still missing after pulling it"))
                    })?
                }
            };
            out.insert(image.to_string(), info);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Device, Ipv4Cidr};

    fn record() -> ClusterRecord {
        ClusterRecord {
            frontend_image: "fe:1".into(),
            worker_image: "wk:1".into(),
            subnet: "10.5.0.0/24".parse::<Ipv4Cidr>().unwrap(),
            meta_volume: "lab-mcc.1".into(),
            shared_volume: "lab-mcc.1.shared".into(),
            gateway: None,
            fixed_ips: Default::default(),
            vpc: None,
            first_node: None,
            network_driver: Default::default(),
            parent: None,
            options: Default::default(),
            devices: vec![Device {
                name: "home".into(),
                path: "/home".into(),
            }],
            env: vec![("A".into(), "1".into())],
            privileged: false,
            context: true,
            on_change: false,
            on_start: false,
            reused_volumes: vec![],
            created: 0,
            docker: None,
            hosts: Vec::new(),
            shared_from: None,
        }
    }

    #[test]
    fn worker_request() {
        let name: ClusterName = "lab".parse().unwrap();
        let s = node_request(&name, NodeId::worker(2), &record(), &ImageInfo::default());
        assert_eq!(s.name, "lab-node02");
        assert!(
            s.volumes.iter().any(|m| matches!(m, Mount::Volume { name, target, read_only: true, .. } if name == "lab-mcc.1" && target == "/opt/mcc")),
            "mcc's files are read-only on nodes"
        );
        assert!(s.volumes.iter().any(|m| matches!(m, Mount::Volume { name, target, read_only: false, .. } if name == "lab-mcc.1.shared" && target == "/opt/mcc/shared")));
        assert!(
            !s.volumes.iter().any(|m| matches!(m, Mount::Bind { .. })),
            "host paths are the provider's business"
        );
        assert_eq!(s.hosts_file, Some(("lab-mcc.1".into(), "hosts".into())));
        assert_eq!(s.hostname, "node02");
        assert_eq!(s.image, "wk:1");
        assert_eq!(s.labels[labels::CLUSTER], "lab");
        assert_eq!(s.labels[labels::ROLE], "worker");
        assert_eq!(s.labels[labels::INDEX], "2");
        assert_eq!(s.labels[labels::SCHEMA], crate::model::SCHEMA_VERSION);
        let (net, ip, aliases) = s.network.clone();
        assert_eq!(net, "lab-net");
        assert_eq!(ip, Some(Ipv4Addr::new(10, 5, 0, 4)));
        assert_eq!(aliases, vec!["node02", "lab-node02"]);
        // in a VPC: on its network, past the addresses held there, and
        // answering on its DNS only to the container's own name
        let mut r = record();
        r.vpc = Some("vpc-0a1b2c3d".into());
        r.first_node = Some(Ipv4Addr::new(10, 5, 0, 9));
        let v = node_request(&name, NodeId::worker(2), &r, &ImageInfo::default());
        assert_eq!(
            v.network,
            (
                "vpc-0a1b2c3d".to_string(),
                Some(Ipv4Addr::new(10, 5, 0, 11)),
                vec!["lab-node02".to_string()]
            )
        );
        assert!(s.volumes.iter().any(|m| matches!(m, Mount::Volume { name, target, .. } if name == "lab-home" && target == "/home")));
        assert!(s.env.contains(&"A=1".to_string()));
        assert!(s.env.contains(&"MCC_NODE=node02".to_string()));
        assert_eq!(
            s.init,
            NodeInit::Shell(KEEPALIVE.into()),
            "a plain image gets the keep-alive"
        );
        let boot = with_boot_run(s, "r1", true);
        assert_eq!(
            boot.init,
            NodeInit::Shell(context::BOOT_AND_KEEPALIVE.into())
        );
        assert!(boot.labels.contains_key(labels::BOOT_RUN));
        assert!(boot.env.contains(&"MCC_WAIT_FRONTEND=1".to_string()));
    }

    #[test]
    fn docker_workers_run_an_engine_and_every_node_can_reach_it() {
        let name: ClusterName = "lab".parse().unwrap();
        let mut r = record();
        r.docker = Some(
            docker_workers::DockerWorkers::new(
                &name,
                "192.168.255.0/24".parse().unwrap(),
                "192.168.224.0/20".parse().unwrap(),
            )
            .unwrap(),
        );
        let plain = ImageInfo::default();
        let w = node_request(&name, NodeId::worker(1), &r, &plain);
        assert!(w.engine_host);
        assert!(w
            .env
            .contains(&"MCC_DOCKER_BIP=192.168.255.1/24".to_string()));
        assert!(w.env.contains(&"DOCKER_TLS_VERIFY=1".to_string()));
        assert!(w.volumes.iter().any(|m| matches!(m, Mount::Volume { name, target, .. } if name == "lab-node01.var-lib-docker" && target == "/var/lib/docker")), "{:?}", w.volumes);
        let w = with_engine_start(w, &plain);
        let NodeInit::Shell(script) = &w.init else {
            panic!("{:?}", w.init)
        };
        assert!(script.starts_with(docker_workers::START_ENGINE) && script.ends_with(KEEPALIVE));
        // an image with its own first process keeps it, after the engine
        let own = ImageInfo {
            entrypoint: vec!["/entry".into()],
            cmd: vec!["serve".into()],
        };
        let w = with_engine_start(node_request(&name, NodeId::worker(1), &r, &own), &own);
        assert_eq!(
            w.init,
            NodeInit::ShellThen(
                format!("{}exec \"$@\"", docker_workers::START_ENGINE),
                vec!["/entry".into(), "serve".into()]
            )
        );
        // the front-end is a client only
        let f = with_engine_start(node_request(&name, NodeId::FRONTEND, &r, &plain), &plain);
        assert!(!f.engine_host && f.env.contains(&"DOCKER_TLS_VERIFY=1".to_string()));
        assert_eq!(f.init, NodeInit::Shell(KEEPALIVE.into()));
        assert!(!f.env.iter().any(|e| e.starts_with("MCC_DOCKER_BIP")));
    }

    #[test]
    fn systemd_nodes_ask_for_systemd() {
        let name: ClusterName = "lab".parse().unwrap();
        let mut r = record();
        r.options.systemd = true;
        r.options.persist = vec!["/var".into()];
        r.options.mount_modules = true;
        let img = ImageInfo {
            entrypoint: vec![],
            cmd: vec!["/bin/bash".into()],
        };
        let s = node_request(&name, NodeId::FRONTEND, &r, &img);
        assert_eq!(s.init, NodeInit::Systemd);
        assert!(s.host_modules);
        assert!(s.volumes.iter().any(|m| matches!(m, Mount::Volume { name, target, .. } if name == "lab-frontend.var" && target == "/var")));
        let img = ImageInfo {
            entrypoint: vec![],
            cmd: vec!["/usr/bin/myservice".into()],
        };
        r.options.systemd = false;
        assert_eq!(
            node_request(&name, NodeId::FRONTEND, &r, &img).init,
            NodeInit::Image
        );
    }

    #[test]
    fn hosts_follow_membership() {
        let name: ClusterName = "lab".parse().unwrap();
        let h = hosts_for(&name, &record(), &[NodeId::FRONTEND, NodeId::worker(3)]).unwrap();
        assert!(h.contains("10.5.0.2\tfrontend lab-frontend\n"));
        assert!(h.contains("10.5.0.5\tnode03 lab-node03\n"));
        assert!(!h.contains("node01"));
    }
}
