//! VPCs (the CC seed's `cc vpc`): private networks of the host with a CIDR
//! of the user's, for containers made by `mcc run` and others. Each is an
//! engine network named by its ID and labelled `mcc.vpc`, so `mcc vpc
//! list` finds it after any crash.

use serde::{Deserialize, Serialize};

use std::net::Ipv4Addr;

use super::Clusters;
use crate::error::{Error, Result};
use crate::model::options::validate_dns_name;
use crate::model::{labels, AddressPlan, Ipv4Cidr, SCHEMA_VERSION};
use crate::provider::{Labels, NetworkInfo, NetworkSpec};

pub use crate::model::labels::{NAME as NAME_LABEL, VPC as VPC_LABEL};

/// A VPC as `mcc vpc list` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VpcView {
    pub id: String,
    pub name: String,
    pub cidr: String,
    /// Containers attached to it now.
    pub containers: Vec<String>,
}

/// What an all-or-nothing delete of IDs did (`mcc vpc delete`,
/// `mcc volume delete`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IdDeleteReport {
    pub deleted: Vec<String>,
    /// IDs that named nothing (never made, or deleted already).
    pub missing: Vec<String>,
}

/// Sorts the IDs of an all-or-nothing delete against what exists, given as
/// (ID, name, users): what to delete (once each, in order) and the report
/// with the IDs that name nothing; an error naming every one in use, with
/// `fix`, when any is.
pub(crate) fn plan_delete(
    ids: &[String],
    existing: &[(&str, &str, &[String])],
    fix: &str,
) -> Result<(Vec<String>, IdDeleteReport)> {
    let mut report = IdDeleteReport::default();
    let mut doomed = Vec::new();
    let mut busy = Vec::new();
    for id in ids {
        match existing.iter().find(|(e, _, _)| e == id) {
            None => report.missing.push(id.clone()),
            Some((_, name, users)) if !users.is_empty() => {
                busy.push(format!("{id} ({name}) is used by {}", users.join(", ")))
            }
            Some((e, _, _)) => doomed.push(e.to_string()),
        }
    }
    if !busy.is_empty() {
        return Err(Error::Conflict(format!(
            "nothing deleted: {}; {fix}",
            busy.join("; ")
        )));
    }
    doomed.sort();
    doomed.dedup();
    Ok((doomed, report))
}

/// A VPC ID: `vpc-` and 8 lowercase hex digits.
pub fn validate_vpc_id(id: &str) -> Result<()> {
    validate_id(id, "vpc", "VPC", "mcc vpc list")
}

/// An ID of mcc's: `<prefix>-` and 8 lowercase hex digits.
pub(crate) fn validate_id(id: &str, prefix: &str, what: &str, lister: &str) -> Result<()> {
    crate::model::names::check_id(id, prefix, what, lister).map_err(Error::Invalid)
}

/// The subnet of the VPC `id`, found among the engine's `networks`: a
/// network of that name that mcc made as that VPC. Anything else is bad
/// input (`create --vpc`), naming the ID and where the real ones are.
pub(crate) fn vpc_subnet(id: &str, networks: &[NetworkInfo]) -> Result<Ipv4Cidr> {
    validate_vpc_id(id)?;
    let net = networks.iter().find(|n| {
        n.name == id
            && n.labels.get(VPC_LABEL).map(String::as_str) == Some(id)
            && n.labels.get(labels::ROLE).map(String::as_str) == Some("vpc")
    });
    let Some(net) = net else {
        return Err(Error::Invalid(format!(
            "--vpc {id}: no such VPC; `mcc vpc list` shows them, `mcc vpc create` makes one"
        )));
    };
    net.subnets.first().copied().ok_or_else(|| {
        Error::Invalid(format!(
            "--vpc {id}: the VPC's network has no IPv4 subnet; recreate it with `mcc vpc create`"
        ))
    })
}

/// A fresh ID: `<prefix>-` and 8 hex digits.
pub(crate) fn new_id(prefix: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // nanoseconds and the pid: unique enough among the VPCs of one host,
    // and checked against them before use
    let mixed = (t as u64) ^ (u64::from(std::process::id()) << 32) ^ (t >> 64) as u64;
    format!("{prefix}-{:08x}", (mixed ^ (mixed >> 29)) as u32)
}

impl Clusters {
    /// Subnets a new network must not overlap, each with what holds it:
    /// every network of the engine but `except`, and (for a bridge) the
    /// host's routes when the engine runs here.
    pub(crate) async fn taken_subnets(
        &self,
        except: &str,
        with_routes: bool,
    ) -> Result<Vec<(String, Ipv4Cidr)>> {
        let routes = if with_routes {
            self.provider.host().await?.routes.unwrap_or_default()
        } else {
            Vec::new()
        };
        Ok(self
            .provider
            .networks(None)
            .await?
            .into_iter()
            .filter(|n| n.name != except)
            .flat_map(|n| {
                n.subnets
                    .into_iter()
                    .map(move |s| (format!("network '{}'", n.name), s))
            })
            .chain(
                routes
                    .into_iter()
                    .map(|s| ("a route of this host".to_string(), s)),
            )
            .collect())
    }

    /// Makes a VPC; its ID. A CIDR that overlaps any network of the engine
    /// or a route of the host is refused, naming what it overlaps.
    pub async fn vpc_create(&self, name: &str, cidr: &str, allow_public: bool) -> Result<String> {
        validate_dns_name("--name", name).map_err(Error::Invalid)?;
        if name.len() > 63 {
            return Err(Error::Invalid(format!(
                "--name '{name}' is longer than 63 characters"
            )));
        }
        let subnet: Ipv4Cidr = cidr.parse().map_err(|e: String| {
            Error::Invalid(format!(
                "--cidr: {e}; give a private block such as 10.10.0.0/24"
            ))
        })?;
        subnet
            .check_usable("--cidr", allow_public, "--allow-public-cidr")
            .map_err(Error::Invalid)?;
        if subnet.prefix() > 29 {
            return Err(Error::Invalid(format!(
                "--cidr {cidr} holds too few addresses; give a /29 or larger, e.g. 10.10.0.0/24"
            )));
        }
        let _serialized = self.lock_host("networks", "picking a subnet").await?;
        let existing = self.vpcs().await?;
        if existing.iter().any(|v| v.name == name) {
            return Err(Error::Conflict(format!(
                "a VPC named '{name}' exists; choose another --name (`mcc vpc list`)"
            )));
        }
        if let Some((what, s)) = self
            .taken_subnets("", true)
            .await?
            .into_iter()
            .find(|(_, s)| s.overlaps(&subnet))
        {
            return Err(Error::Invalid(format!(
                "--cidr {subnet} overlaps {s} of {what}; choose another block"
            )));
        }
        let mut id = new_id("vpc");
        while existing.iter().any(|v| v.id == id) {
            id = new_id("vpc");
        }
        let gateway = subnet
            .nth(1)
            .ok_or_else(|| Error::Invalid(format!("--cidr {subnet} has no host address")))?;
        let mut l: Labels = Labels::new();
        l.insert(VPC_LABEL.into(), id.clone());
        l.insert(NAME_LABEL.into(), name.into());
        l.insert(labels::ROLE.into(), labels::role::VPC.into());
        l.insert(labels::SCHEMA.into(), SCHEMA_VERSION.into());
        self.provider
            .create_network(&NetworkSpec {
                name: id.clone(),
                driver: "bridge".into(),
                parent: None,
                subnet,
                gateway,
                // the engine's dynamic addresses (`mcc run`) come from the
                // last quarter, as on a cluster's own network: the rest is
                // for the static ones of clusters made into the VPC, which
                // a container started while a cluster is stopped would
                // otherwise take
                ip_range: AddressPlan::new(subnet).ok().and_then(|p| p.ip_range),
                labels: l,
            })
            .await?;
        Ok(id)
    }

    /// Serializes the picking of node addresses in one VPC (create,
    /// addnode) between mcc processes of this host; held until the nodes
    /// that got them exist, since only then does the engine see them.
    pub(crate) async fn lock_vpc_addresses(
        &self,
        id: &str,
    ) -> Result<crate::provider::store::Held> {
        self.lock_host(
            &format!("addresses-{id}"),
            &format!("picking node addresses in VPC {id}"),
        )
        .await
    }

    /// The addresses held in a VPC now, by container name (a stopped
    /// container's fixed one too); an error when the VPC is gone.
    pub(crate) async fn vpc_addresses(&self, id: &str) -> Result<Vec<(String, Ipv4Addr)>> {
        let members = self.provider.network_members(id).await?.ok_or_else(|| {
            Error::NotFound(format!(
                "VPC {id} does not exist (any more); `mcc vpc list` shows the VPCs there are"
            ))
        })?;
        Ok(members
            .into_iter()
            .filter_map(|(who, ip)| Some((who, ip?)))
            .collect())
    }

    /// Every VPC, with what uses it.
    pub async fn vpcs(&self) -> Result<Vec<VpcView>> {
        let nets = self.provider.networks(Some((labels::ROLE, "vpc"))).await?;
        let mut out = Vec::new();
        for n in nets {
            let Some(id) = n.labels.get(VPC_LABEL).cloned() else {
                continue;
            };
            let containers = self
                .provider
                .network_members(&n.name)
                .await?
                .unwrap_or_default()
                .into_iter()
                .map(|(who, _)| who)
                .collect();
            out.push(VpcView {
                name: n.labels.get(NAME_LABEL).cloned().unwrap_or_default(),
                cidr: n.subnets.first().map(|s| s.to_string()).unwrap_or_default(),
                id,
                containers,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Deletes VPCs: none if any is in use (naming who uses them); IDs
    /// that name no VPC are reported, not an error.
    pub async fn vpc_delete(&self, ids: &[String]) -> Result<IdDeleteReport> {
        for id in ids {
            validate_vpc_id(id)?;
        }
        let _serialized = self.lock_host("networks", "deleting VPCs").await?;
        let all = self.vpcs().await?;
        let existing: Vec<(&str, &str, &[String])> = all
            .iter()
            .map(|v| (v.id.as_str(), v.name.as_str(), v.containers.as_slice()))
            .collect();
        let users: Vec<&String> = all
            .iter()
            .filter(|v| ids.contains(&v.id))
            .flat_map(|v| &v.containers)
            .collect();
        let fix = if users.is_empty() {
            String::new()
        } else {
            self.freeing_commands(&users).await?
        };
        let (doomed, mut report) = plan_delete(ids, &existing, &fix)?;
        for id in doomed {
            self.provider.remove_network(&id).await?;
            report.deleted.push(id);
        }
        Ok(report)
    }

    /// The commands that remove the containers named `users` (by name),
    /// to be copied from a refusal: `mcc rm` for those of `mcc run`, `mcc
    /// delete` for clusters' nodes, `docker rm -f` for others.
    async fn freeing_commands(&self, users: &[&String]) -> Result<String> {
        let runs = self.runs().await?;
        let nodes = self.provider.containers(labels::CLUSTER, None).await?;
        let (mut rm, mut clusters, mut others) = (Vec::new(), Vec::new(), Vec::new());
        for u in users {
            if runs.iter().any(|r| &&r.name == u) {
                rm.push(u.to_string());
            } else if let Some(c) = nodes
                .iter()
                .find(|n| &&n.name == u)
                .and_then(|n| n.labels.get(labels::CLUSTER))
            {
                clusters.push(c.clone());
            } else {
                others.push(u.to_string());
            }
        }
        for v in [&mut rm, &mut clusters, &mut others] {
            v.sort();
            v.dedup();
        }
        let mut cmds = Vec::new();
        if !rm.is_empty() {
            cmds.push(format!("mcc rm {}", rm.join(" ")));
        }
        for c in &clusters {
            cmds.push(format!("mcc delete {c}"));
        }
        if !others.is_empty() {
            cmds.push(format!("docker rm -f {}   # not mcc's", others.join(" ")));
        }
        Ok(format!(
            "remove those containers first: {}",
            cmds.join(" && ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::fake::FakeProvider;
    use std::sync::Arc;

    fn clusters() -> (Arc<FakeProvider>, Clusters) {
        let p = Arc::new(FakeProvider::default());
        let c = Clusters::new(p.clone(), Arc::new(crate::cluster::Silent));
        (p, c)
    }

    #[tokio::test]
    async fn vpcs_are_made_listed_and_deleted_with_the_seeds_semantics() {
        let (_p, c) = clusters();
        let id = c.vpc_create("blue", "10.77.0.0/24", false).await.unwrap();
        validate_vpc_id(&id).unwrap();
        let err = c
            .vpc_create("green", "10.77.0.128/25", false)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("overlaps 10.77.0.0/24"), "{err}");
        let err = c
            .vpc_create("blue", "10.78.0.0/24", false)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("exists"), "{err}");
        for (name, cidr, what) in [
            ("x", "10.0.0.0/33", "--cidr"),
            ("x", "banana", "--cidr"),
            ("x", "10.9.0.0/30", "too few"),
            ("bad_name", "10.9.0.0/24", "--name"),
        ] {
            let e = c.vpc_create(name, cidr, false).await.unwrap_err();
            assert!(e.to_string().contains(what), "{name} {cidr}: {e}");
        }
        let list = c.vpcs().await.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(
            (list[0].name.as_str(), list[0].cidr.as_str()),
            ("blue", "10.77.0.0/24")
        );
        // missing IDs are fine, and so is deleting twice
        let r = c
            .vpc_delete(&[id.clone(), "vpc-00000000".into()])
            .await
            .unwrap();
        assert_eq!(r.deleted, vec![id.clone()]);
        assert_eq!(r.missing, vec!["vpc-00000000".to_string()]);
        let r = c.vpc_delete(std::slice::from_ref(&id)).await.unwrap();
        assert_eq!(r.missing, vec![id]);
        assert!(c.vpc_delete(&["nope".into()]).await.is_err());
    }
}
