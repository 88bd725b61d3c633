//! `list` and `inspect`: views of clusters built from the engine's labels.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::state::CreateState;
use super::{Clusters, Loaded};
use crate::error::Result;
use crate::model::{ClusterName, NodeId, Role};
use crate::provider::ContainerState;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ClusterStatus {
    /// Every node is running.
    Running,
    /// No node is running.
    Stopped,
    /// Some nodes are running.
    Degraded,
    /// The record or the front-end is missing, or a create was cut short.
    Incomplete,
    /// An mcc process is creating it.
    Creating,
    /// Its create failed and it was kept (`--keep-on-failure`).
    Failed,
    /// Being deleted (or a delete was cut short: `mcc gc` finishes it).
    Deleting,
}

impl ClusterStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            ClusterStatus::Running => "running",
            ClusterStatus::Stopped => "stopped",
            ClusterStatus::Degraded => "degraded",
            ClusterStatus::Incomplete => "incomplete",
            ClusterStatus::Creating => "creating",
            ClusterStatus::Failed => "failed",
            ClusterStatus::Deleting => "deleting",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct NodeView {
    /// The node's hostname: `frontend`, `node01`, …
    pub name: String,
    pub role: String,
    pub index: u32,
    pub container: String,
    pub hostname: String,
    #[schema(value_type = Option<String>, example = "10.42.0.2")]
    pub ip: Option<Ipv4Addr>,
    pub state: String,
    pub image: String,
    /// The host it runs on (a cluster over several hosts, `--hosts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// That host's availability zone, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ClusterView {
    pub name: String,
    pub status: ClusterStatus,
    /// The network the nodes are on: the cluster's own, or its VPC's.
    pub network: String,
    /// The VPC the cluster was created into (`create --vpc`), whose
    /// network it uses and does not own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc: Option<String>,
    pub subnet: Option<String>,
    pub frontend_image: Option<String>,
    pub worker_image: Option<String>,
    /// Number of workers.
    pub workers: usize,
    pub running: usize,
    pub devices: Vec<String>,
    pub created: Option<u64>,
    /// Whether the nodes run privileged, and why when the user did not
    /// ask for it (systemd on a cgroup v2 host needs it).
    pub privileged: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privileged_reason: Option<String>,
    /// The hosts its nodes run on (`--hosts`); none on one engine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// What is wrong with the cluster's record, when it cannot be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    pub nodes: Vec<NodeView>,
    /// The nodes' `--persist` volumes of a cluster over several hosts
    /// (`inspect` only), each on its node's host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub persisted: Vec<PersistView>,
}

/// A node's `--persist` volume and where it is: on its node's host (a
/// cluster over several hosts), where a node recreated elsewhere does not
/// find it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct PersistView {
    /// The node's hostname.
    pub node: String,
    pub path: String,
    pub volume: String,
    /// The host whose engine has it (`None`: no host answered for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// A member without a container: `missing`, or `unreachable` when its
/// host is among `unreachable` (a cluster over several hosts).
fn missing_view(l: &Loaded, m: NodeId, hostname: String, hosts: &HostInfo) -> NodeView {
    let host = hosts.placed.get(&m).cloned().or_else(|| {
        l.record
            .as_ref()
            .and_then(|r| crate::model::placement::host_of(&r.hosts, m).map(String::from))
    });
    let state = match &host {
        Some(h) if hosts.unreachable.contains(h) => "unreachable",
        _ => "missing",
    };
    NodeView {
        name: m.hostname(),
        role: m.role.as_str().to_string(),
        index: m.index,
        container: l.name.container(m),
        hostname,
        ip: l.record.as_ref().and_then(|r| r.plan().ip(m)),
        state: state.to_string(),
        host,
        zone: None,
        image: l
            .record
            .as_ref()
            .map(|r| match m.role {
                Role::Frontend => r.frontend_image.clone(),
                Role::Worker => r.worker_image.clone(),
            })
            .unwrap_or_default(),
    }
}

/// What a view says of the hosts of a cluster that spans them.
#[derive(Default)]
struct HostInfo {
    unreachable: Vec<String>,
    zones: std::collections::BTreeMap<String, String>,
    /// Where each node was placed (read when a member has no container).
    placed: std::collections::BTreeMap<NodeId, String>,
}

impl ClusterView {
    /// `missing`: members without a container (removed behind mcc's back),
    /// shown with state `missing` so the user knows to recreate them, or
    /// `unreachable` when they are on a host in `unreachable` (a cluster
    /// over several hosts: their host did not answer).
    fn new(l: &Loaded, state: Option<CreateState>, missing: &[NodeId], hosts: &HostInfo) -> Self {
        let plan = l.record.as_ref().map(|r| r.plan());
        let network = match &l.record {
            Some(r) => r.network(&l.name),
            None => l.name.network(),
        };
        let hostname = |n: NodeId| match l.record.as_ref().and_then(|r| r.options.domain.as_ref()) {
            Some(d) => format!("{}.{d}", n.hostname()),
            None => n.hostname(),
        };
        let mut nodes: Vec<NodeView> = l
            .nodes
            .iter()
            .map(|n| NodeView {
                name: n.node.hostname(),
                role: n.node.role.as_str().to_string(),
                index: n.node.index,
                container: n.info.name.clone(),
                hostname: hostname(n.node),
                ip: n
                    .info
                    .addresses
                    .get(&network)
                    .copied()
                    .or_else(|| plan.as_ref().and_then(|p| p.ip(n.node))),
                state: n.info.state.as_str().to_string(),
                image: n.info.image.clone(),
                host: n.info.host.clone(),
                zone: None,
            })
            .collect();
        nodes.extend(
            missing
                .iter()
                .map(|m| missing_view(l, *m, hostname(*m), hosts)),
        );
        for n in nodes.iter_mut() {
            n.zone = n.host.as_ref().and_then(|h| hosts.zones.get(h).cloned());
        }
        nodes.sort_by_key(|n| (n.role != "frontend", n.index));
        let running = l
            .nodes
            .iter()
            .filter(|n| n.info.state == ContainerState::Running)
            .count();
        let status = status_of(l, state, running, missing);
        ClusterView {
            name: l.name.to_string(),
            status,
            vpc: l.record.as_ref().and_then(|r| r.vpc.clone()),
            network,
            subnet: l.record.as_ref().map(|r| r.subnet.to_string()),
            frontend_image: l.record.as_ref().map(|r| r.frontend_image.clone()),
            worker_image: l.record.as_ref().map(|r| r.worker_image.clone()),
            workers: nodes
                .iter()
                .filter(|n| n.role == Role::Worker.as_str())
                .count(),
            running,
            devices: l
                .record
                .as_ref()
                .map(|r| {
                    r.devices
                        .iter()
                        .map(|d| format!("{}:{}", d.name, d.path))
                        .collect()
                })
                .unwrap_or_default(),
            created: l.record.as_ref().map(|r| r.created),
            privileged: l.record.as_ref().is_some_and(|r| r.privileged),
            privileged_reason: None,
            hosts: l
                .record
                .as_ref()
                .map(|r| r.hosts.clone())
                .unwrap_or_default(),
            problem: l.problem.clone().or_else(|| {
                (!l.unreadable.is_empty()).then(|| {
                    format!(
                        "container(s) {} carry this cluster's label but a role or index mcc \
                         cannot read; they are left out (made by hand or by another version?)",
                        l.unreadable.join(", ")
                    )
                })
            }),
            nodes,
            persisted: Vec::new(),
        }
    }
}

/// A cluster's status from how its create went (`state`), its record, and
/// how many of its nodes run (`missing`: members without a container).
fn status_of(
    l: &Loaded,
    state: Option<CreateState>,
    running: usize,
    missing: &[NodeId],
) -> ClusterStatus {
    let has_frontend = l.nodes.iter().any(|n| n.node.role == Role::Frontend);
    if let Some(s) = state.filter(|s| *s != CreateState::Ready) {
        match s {
            CreateState::InProgress => ClusterStatus::Creating,
            CreateState::Failed => ClusterStatus::Failed,
            CreateState::Deleting { .. } => ClusterStatus::Deleting,
            _ => ClusterStatus::Incomplete,
        }
    } else if l.record.is_none() || !has_frontend {
        ClusterStatus::Incomplete
    } else if running == l.nodes.len() && missing.is_empty() {
        ClusterStatus::Running
    } else if running == 0 {
        ClusterStatus::Stopped
    } else {
        ClusterStatus::Degraded
    }
}

impl Clusters {
    /// Every cluster. One that cannot be read is still listed (status
    /// `incomplete`, with its problem) rather than failing the list.
    pub async fn list(&self) -> Result<Vec<ClusterView>> {
        let loaded = self.load_all().await?;
        let views = super::parallel::run_all(
            loaded,
            super::parallel::PARALLELISM,
            &tokio_util::sync::CancellationToken::new(),
            |l| async move {
                Ok(match self.view(&l).await {
                    Ok(v) => v,
                    Err(e) => {
                        let mut v = ClusterView::new(
                            &l,
                            Some(CreateState::CutShort),
                            &[],
                            &HostInfo::default(),
                        );
                        v.problem = Some(e.to_string());
                        v
                    }
                })
            },
        )
        .await;
        views.into_iter().collect()
    }

    pub async fn inspect(&self, name: &ClusterName) -> Result<ClusterView> {
        let l = self.load_existing(name).await?;
        let mut view = self.view(&l).await?;
        view.persisted = self.persisted(&l).await?;
        if let Some(r) = &l.record {
            if r.options.systemd && !r.privileged {
                if let Some(why) = self.provider.host().await?.systemd_privileged {
                    view.privileged = true;
                    view.privileged_reason = Some(why);
                }
            }
        }
        Ok(view)
    }

    /// The `--persist` volumes of a cluster over several hosts, with the
    /// host each is on; none for a cluster on one engine.
    async fn persisted(&self, l: &Loaded) -> Result<Vec<PersistView>> {
        use crate::model::labels;
        if !l
            .record
            .as_ref()
            .is_some_and(|r| !r.hosts.is_empty() && !r.options.persist.is_empty())
        {
            return Ok(Vec::new());
        }
        let name = l.name.to_string();
        let mut out: Vec<PersistView> = self
            .provider
            .volumes(Some((labels::CLUSTER, &name)))
            .await?
            .into_iter()
            .filter(|v| {
                v.labels.get(labels::ROLE).map(String::as_str) == Some(labels::role::PERSIST)
            })
            .map(|v| PersistView {
                node: v.labels.get(labels::NODE).cloned().unwrap_or_default(),
                path: v.labels.get(labels::PATH).cloned().unwrap_or_default(),
                volume: v.name,
                host: v.host,
            })
            .collect();
        out.sort_by(|a, b| (&a.node, &a.path).cmp(&(&b.node, &b.path)));
        Ok(out)
    }

    /// The view of one cluster, with its status computed once, the same
    /// for `list` and `inspect`: members whose container is gone count.
    async fn view(&self, l: &Loaded) -> Result<ClusterView> {
        let state = match l.meta {
            Some(_) => Some(self.create_state(l).await?),
            None => None,
        };
        let settled = matches!(state, Some(CreateState::Ready | CreateState::Failed));
        let missing: Vec<NodeId> = if settled && l.record.is_some() {
            self.recorded_members(l)
                .await?
                .into_iter()
                .filter(|m| l.node(*m).is_none())
                .collect()
        } else {
            Vec::new()
        };
        // where a cluster spans hosts: which answer, and their zones
        let mut hosts = HostInfo::default();
        if l.record.as_ref().is_some_and(|r| !r.hosts.is_empty()) {
            hosts.zones = self.provider.host().await?.zones;
            hosts.unreachable = self.provider.unreachable_hosts();
            if !missing.is_empty() {
                hosts.placed = self.placements(&l.name).await?;
            }
        }
        Ok(ClusterView::new(l, state, &missing, &hosts))
    }
}
