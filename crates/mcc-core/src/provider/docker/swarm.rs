//! This engine's part in a Docker swarm, for `mcc host` (the hosts of a
//! multi-host cluster are the swarm's nodes): reaching an engine by URL,
//! its version, its membership, joining, labelling, leaving.

use super::*;
#[allow(unused_imports)]
use std::net::Ipv4Addr;

use bollard::models::{NodeSpec, NodeSpecRoleEnum, SwarmInitRequest, SwarmJoinRequest};
use bollard::query_parameters::{DeleteNodeOptions, LeaveSwarmOptions, UpdateNodeOptionsBuilder};

/// The swarm node label that holds a host's availability zone.
pub const ZONE_LABEL: &str = "mcc.zone";

pub use crate::hosts::file::TlsFiles;

/// An engine's membership of a swarm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SwarmState {
    /// In no swarm.
    None,
    /// A node of swarm `cluster_id`.
    Member(SwarmMember),
    /// Joining, locked or failed: the engine's own word for it.
    Other(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwarmMember {
    pub node_id: String,
    pub cluster_id: String,
    pub manager: bool,
    /// The manager that leads the Raft group (managers only know).
    pub leader: bool,
    /// Where the other nodes reach it (`IP:2377` for a manager).
    pub addr: String,
    /// Its `mcc.zone` label (managers only can read it).
    pub zone: Option<String>,
}

impl DockerProvider {
    /// The engine at `url`: `unix:///path/to/docker.sock`, or
    /// `tcp://HOST:PORT` with a client certificate; every request bounded
    /// by `timeout_secs`.
    pub async fn connect_url(
        url: &str,
        tls: Option<&TlsFiles>,
        timeout_secs: u64,
    ) -> Result<DockerProvider> {
        let fail = |reason: String| Error::NoEngine {
            host: url.to_string(),
            reason,
            hint: "check that the engine runs there and that the URL is right".to_string(),
        };
        let docker = match (url.strip_prefix("unix://"), tls) {
            (Some(path), None) => {
                Docker::connect_with_socket(path, timeout_secs, bollard::API_DEFAULT_VERSION)
            }
            (None, Some(t)) => Docker::connect_with_ssl(
                url,
                &t.key,
                &t.cert,
                &t.ca,
                timeout_secs,
                bollard::API_DEFAULT_VERSION,
            ),
            _ => {
                return Err(Error::Invalid(format!(
                    "--engine {url}: give unix:///PATH, or tcp://HOST:PORT with --tls-ca, \
                     --tls-cert and --tls-key"
                )))
            }
        }
        .map_err(|e| fail(e.to_string()))?;
        Self::answering(docker, url.to_string(), fail).await
    }

    /// The engine's version and API version, e.g. `("20.10.24", "1.41")`.
    pub async fn engine_version(&self) -> Result<(String, String)> {
        let v = self
            .docker
            .version()
            .await
            .map_err(map_err("reading the engine's version"))?;
        Ok((
            v.version.unwrap_or_default(),
            v.api_version.unwrap_or_default(),
        ))
    }

    /// Whether and how the engine is in a swarm.
    pub async fn swarm(&self) -> Result<SwarmState> {
        let info = self
            .docker
            .info()
            .await
            .map_err(map_err("reading engine info"))?;
        let Some(s) = info.swarm else {
            return Ok(SwarmState::None);
        };
        use bollard::models::LocalNodeState;
        match s.local_node_state {
            None | Some(LocalNodeState::INACTIVE) | Some(LocalNodeState::EMPTY) => {
                return Ok(SwarmState::None)
            }
            Some(LocalNodeState::ACTIVE) => {}
            Some(other) => {
                let why = s.error.filter(|e| !e.is_empty());
                return Ok(SwarmState::Other(match why {
                    Some(e) => format!("{other} ({e})"),
                    None => other.to_string(),
                }));
            }
        }
        let node_id = s.node_id.unwrap_or_default();
        let mut manager = s.control_available.unwrap_or(false);
        let (mut leader, mut zone, mut addr) = (false, None, s.node_addr.unwrap_or_default());
        let node = match manager {
            false => None,
            true => match self.docker.inspect_node(&node_id).await {
                Ok(n) => Some(n),
                // demoted between the two calls: a worker now
                Err(BollardError::DockerResponseServerError {
                    status_code: 503, ..
                }) => {
                    manager = false;
                    None
                }
                Err(e) => return Err(map_err(format!("inspecting swarm node {node_id}"))(e)),
            },
        };
        if let Some(node) = node {
            if let Some(m) = node.manager_status {
                leader = m.leader.unwrap_or(false);
                if let Some(a) = m.addr {
                    addr = a;
                }
            }
            zone = node
                .spec
                .and_then(|s| s.labels)
                .and_then(|mut l| l.remove(ZONE_LABEL));
        }
        Ok(SwarmState::Member(SwarmMember {
            node_id,
            cluster_id: s.cluster.and_then(|c| c.id).unwrap_or_default(),
            manager,
            leader,
            addr,
            zone,
        }))
    }

    /// The address the swarm reaches this engine's host at (its
    /// `NodeAddr`): where its nodes' published ports are for a machine on
    /// the hosts' network; `None` outside a swarm.
    pub async fn swarm_address(&self) -> Result<Option<Ipv4Addr>> {
        let info = self
            .docker
            .info()
            .await
            .map_err(map_err("reading engine info"))?;
        Ok(info
            .swarm
            .and_then(|s| s.node_addr)
            .and_then(|a| a.parse().ok()))
    }

    /// Makes the engine the first manager of a new swarm, reached by the
    /// others at `advertise` (an address or interface; the engine picks
    /// when there is one).
    pub async fn swarm_init(&self, advertise: Option<&str>) -> Result<()> {
        self.docker
            .init_swarm(SwarmInitRequest {
                listen_addr: Some("0.0.0.0:2377".into()),
                advertise_addr: advertise.map(str::to_string),
                ..Default::default()
            })
            .await
            .map(|_| ())
            .map_err(map_err(format!("making a swarm on {}", self.host)))
    }

    /// The token that makes a joining engine a manager (a manager only).
    pub async fn swarm_manager_token(&self) -> Result<String> {
        let s = self
            .docker
            .inspect_swarm()
            .await
            .map_err(map_err("reading the swarm's join tokens"))?;
        s.join_tokens
            .and_then(|t| t.manager)
            .ok_or_else(|| Error::Failed(format!("{} gave no manager join token", self.host)))
    }

    /// Joins the swarm that the managers at `remote` (`IP:2377`) lead, as
    /// a manager (so that losing one host leaves a quorum).
    pub async fn swarm_join(
        &self,
        token: &str,
        remote: &[String],
        advertise: Option<&str>,
    ) -> Result<()> {
        self.docker
            .join_swarm(SwarmJoinRequest {
                listen_addr: Some("0.0.0.0:2377".into()),
                advertise_addr: advertise.map(str::to_string),
                remote_addrs: Some(remote.to_vec()),
                join_token: Some(token.to_string()),
                ..Default::default()
            })
            .await
            .map_err(map_err(format!("joining {} to the swarm", self.host)))
    }

    /// Sets (or with `None` removes) the zone label of swarm node `node_id`
    /// (on a manager).
    pub async fn swarm_set_zone(&self, node_id: &str, zone: Option<&str>) -> Result<()> {
        self.update_swarm_node(node_id, |spec| {
            let labels = spec.labels.get_or_insert_with(HashMap::new);
            match zone {
                Some(z) => labels.insert(ZONE_LABEL.into(), z.into()),
                None => labels.remove(ZONE_LABEL),
            };
        })
        .await
    }

    /// Makes swarm node `node_id` a worker (on a manager), so that it can
    /// leave without the managers counting it in their quorum.
    pub async fn swarm_demote(&self, node_id: &str) -> Result<()> {
        self.update_swarm_node(node_id, |spec| spec.role = Some(NodeSpecRoleEnum::WORKER))
            .await
    }

    async fn update_swarm_node(
        &self,
        node_id: &str,
        change: impl FnOnce(&mut NodeSpec),
    ) -> Result<()> {
        let op = format!("changing swarm node {node_id}");
        let node = self
            .docker
            .inspect_node(node_id)
            .await
            .map_err(map_err(op.clone()))?;
        let version = node.version.and_then(|v| v.index).unwrap_or(0) as i64;
        let mut spec = node.spec.unwrap_or_default();
        change(&mut spec);
        self.docker
            .update_node(
                node_id,
                spec,
                UpdateNodeOptionsBuilder::new().version(version).build(),
            )
            .await
            .map_err(map_err(op))
    }

    /// Leaves the swarm (a manager's last word: `force`).
    pub async fn swarm_leave(&self, force: bool) -> Result<()> {
        self.docker
            .leave_swarm(Some(LeaveSwarmOptions { force }))
            .await
            .map_err(map_err(format!("leaving the swarm from {}", self.host)))
    }

    /// Removes swarm node `node_id` (one that left or is lost) from the
    /// swarm's list, on a manager.
    pub async fn swarm_remove_node(&self, node_id: &str) -> Result<()> {
        match self
            .docker
            .delete_node(node_id, Some(DeleteNodeOptions { force: true }))
            .await
        {
            Ok(()) => Ok(()),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(map_err(format!("removing swarm node {node_id}"))(e)),
        }
    }
}

/// A swarm node as the swarm's managers see it (`docker node ls`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwarmNodeSeen {
    pub node_id: String,
    /// `ready`, `down`, `unknown` or `disconnected`.
    pub state: String,
    /// A manager's `reachable`, `unreachable` or `unknown`.
    pub manager: Option<String>,
}

impl SwarmNodeSeen {
    /// Whether the managers have lost it (its link cut, its engine or
    /// machine gone): not ready, or a manager they cannot reach.
    pub fn lost(&self) -> bool {
        self.state != "ready" || self.manager.as_deref() == Some("unreachable")
    }
}

impl DockerProvider {
    /// The swarm's nodes as its managers see them: answered by a manager
    /// whose side of the swarm has a leader (one cut off from the others
    /// answers that it has none, an error).
    pub async fn swarm_nodes(&self) -> Result<Vec<SwarmNodeSeen>> {
        let nodes = self
            .docker
            .list_nodes(None)
            .await
            .map_err(map_err("listing the swarm's nodes"))?;
        Ok(nodes
            .into_iter()
            .map(|n| SwarmNodeSeen {
                node_id: n.id.unwrap_or_default(),
                state: n
                    .status
                    .and_then(|s| s.state)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "unknown".into()),
                manager: n
                    .manager_status
                    .and_then(|m| m.reachability)
                    .map(|r| r.to_string()),
            })
            .collect())
    }
}

/// The label of a swarm claim that names who holds it.
pub const HOLDER_LABEL: &str = "mcc.holder";

/// A claim's name in the swarm: `mcc-KEY`, within the 64 characters and
/// the `[a-zA-Z0-9._-]` a config name may have.
fn claim_name(key: &str) -> Result<String> {
    let name = format!("mcc-{key}");
    let ok = name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(name)
    } else {
        Err(Error::Invalid(format!(
            "'{key}' cannot name a swarm claim (at most 60 of a-z, 0-9, '.', '_', '-')"
        )))
    }
}

impl DockerProvider {
    /// Takes claim `key` in the swarm's own consistent store (a swarm
    /// config named after it, which the managers' Raft log lets exactly
    /// one creator make), for `holder`, carrying `with` too (a cluster's
    /// claim: its `mcc.cluster`, so that gc finds it). `Ok(None)`: taken;
    /// `Ok(Some(h))`: someone holds it already, `h` says who.
    pub async fn swarm_claim(
        &self,
        key: &str,
        holder: &str,
        with: &Labels,
    ) -> Result<Option<String>> {
        let name = claim_name(key)?;
        let mut l = with.clone();
        l.insert(HOLDER_LABEL.to_string(), holder.to_string());
        l.insert(
            labels::SCHEMA.to_string(),
            crate::model::SCHEMA_VERSION.to_string(),
        );
        let spec = bollard::models::ConfigSpec {
            name: Some(name.clone()),
            labels: Some(l),
            // a config holds 1 byte at least: the holder, base64 as the API wants
            data: Some({
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.encode(holder)
            }),
            ..Default::default()
        };
        match self.docker.create_config(spec).await {
            Ok(_) => Ok(None),
            Err(BollardError::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(Some(
                self.swarm_claim_holder(key).await?.unwrap_or_default(),
            )),
            Err(e) => Err(map_err(format!("claiming {name} in the swarm"))(e)),
        }
    }

    /// Who holds claim `key`; `None` when no one does.
    pub async fn swarm_claim_holder(&self, key: &str) -> Result<Option<String>> {
        let name = claim_name(key)?;
        match self.docker.inspect_config(&name).await {
            Ok(c) => Ok(Some(
                c.spec
                    .and_then(|s| s.labels)
                    .and_then(|mut l| l.remove(HOLDER_LABEL))
                    .unwrap_or_default(),
            )),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(map_err(format!("reading swarm claim {name}"))(e)),
        }
    }

    /// Removes claim `key` whoever holds it (the cluster it names is gone);
    /// `Ok(false)` when there was none.
    pub async fn swarm_drop(&self, key: &str) -> Result<bool> {
        let name = claim_name(key)?;
        match self.docker.delete_config(&name).await {
            Ok(()) => Ok(true),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(e) => Err(map_err(format!("removing swarm claim {name}"))(e)),
        }
    }

    /// Gives claim `key` up if `holder` holds it: `Ok(false)` when someone
    /// else does (or no one), and then nothing is changed. The claim is
    /// removed by its ID, so a claim made again meanwhile is not touched.
    pub async fn swarm_release(&self, key: &str, holder: &str) -> Result<bool> {
        let name = claim_name(key)?;
        let c = match self.docker.inspect_config(&name).await {
            Ok(c) => c,
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(false),
            Err(e) => return Err(map_err(format!("reading swarm claim {name}"))(e)),
        };
        let held_by = c
            .spec
            .and_then(|s| s.labels)
            .and_then(|mut l| l.remove(HOLDER_LABEL));
        let Some(id) = c.id.filter(|_| held_by.as_deref() == Some(holder)) else {
            return Ok(false);
        };
        match self.docker.delete_config(&id).await {
            Ok(()) => Ok(true),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(e) => Err(map_err(format!("releasing swarm claim {name}"))(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_names_are_what_a_swarm_config_may_be_called() {
        assert_eq!(claim_name("claim.lab").unwrap(), "mcc-claim.lab");
        assert!(claim_name(&"x".repeat(60)).is_ok());
        assert!(claim_name(&"x".repeat(61)).is_err());
        assert!(claim_name("a/b").is_err());
        assert!(claim_name("a b").is_err());
    }
}
