//! A create's settings as given on a command line (or in a request to the
//! daemon): each flag as the user typed it. Turned here into the same
//! [`SpecInput`] a cluster file gives, so every way in checks the same.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::spec::{parse_env, ClusterSpec, EnvInput, NodeInput, SpecInput};

/// The flags of `mcc create`, unparsed. Empty lists and `false` mean "not
/// given": a cluster file's value then stands.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct CreateFlags {
    pub name: Option<String>,
    pub image: Option<String>,
    pub front_end_image: Option<String>,
    pub working_node_image: Option<String>,
    pub nodes: Option<u32>,
    pub context_folder: Option<PathBuf>,
    pub devices: Vec<String>,
    pub subnet: Option<String>,
    /// A VPC's ID (`vpc-1a2b3c4d`).
    pub vpc: Option<String>,
    pub allow_public_subnet: bool,
    pub gateway: Option<String>,
    /// `NODE=IP`, one per node.
    pub ips: Vec<String>,
    pub domain: Option<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub add_hosts: Vec<String>,
    pub network_driver: Option<String>,
    pub parent: Option<String>,
    pub systemd: bool,
    pub mount_modules: bool,
    pub persist: Vec<String>,
    pub docker_workers: bool,
    pub privileged: bool,
    /// `K=V`.
    pub env: Vec<String>,
    /// Host names (`--hosts h1,h2`).
    pub hosts: Vec<String>,
    /// `file:///PATH`.
    pub shared_from: Option<String>,
    /// `zone`.
    pub spread: Option<String>,
}

impl CreateFlags {
    /// The flags as a cluster file would say them; a malformed `--ip` or
    /// `--env`, or one node given two addresses, is refused here.
    pub fn into_input(self) -> Result<SpecInput, String> {
        let env = if self.env.is_empty() {
            None
        } else {
            for kv in &self.env {
                parse_env(kv)?;
            }
            Some(EnvInput::List(self.env))
        };
        let mut per_node = BTreeMap::new();
        for kv in &self.ips {
            let (n, ip) = kv
                .split_once('=')
                .ok_or_else(|| format!("--ip '{kv}' has no '='; write --ip node01=10.42.0.11"))?;
            let given = NodeInput {
                host: None,
                ip: Some(ip.to_string()),
            };
            if let Some(first) = per_node.insert(n.to_string(), given) {
                return Err(format!(
                    "--ip {n}= is given twice ({} and {ip}); give each node one address",
                    first.ip.unwrap_or_default()
                ));
            }
        }
        let list = |v: Vec<String>| (!v.is_empty()).then_some(v);
        Ok(SpecInput {
            name: self.name,
            image: self.image,
            front_end_image: self.front_end_image,
            working_node_image: self.working_node_image,
            nodes: self.nodes,
            context_folder: self.context_folder,
            devices: list(self.devices),
            subnet: self.subnet,
            allow_public_subnet: self.allow_public_subnet.then_some(true),
            vpc: self.vpc,
            privileged: self.privileged.then_some(true),
            env,
            gateway: self.gateway,
            domain: self.domain,
            dns: list(self.dns),
            dns_search: list(self.dns_search),
            add_hosts: list(self.add_hosts),
            network_driver: self.network_driver,
            parent: self.parent,
            systemd: self.systemd.then_some(true),
            mount_modules: self.mount_modules.then_some(true),
            persist: list(self.persist),
            docker_workers: self.docker_workers.then_some(true),
            per_node: (!per_node.is_empty()).then_some(per_node),
            hosts: list(self.hosts),
            shared_from: self.shared_from,
            spread: self.spread,
        })
    }

    /// The cluster these flags ask for, over what a cluster file (already
    /// read) says: flags win.
    pub fn resolve(self, file: SpecInput) -> Result<ClusterSpec, String> {
        file.overridden_by(self.into_input()?)?.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_flags_are_checked() {
        let f = |ips: &[&str]| CreateFlags {
            ips: ips.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let input = f(&["node01=10.0.0.11"]).into_input().unwrap();
        assert_eq!(
            input.per_node.unwrap()["node01"].ip.as_deref(),
            Some("10.0.0.11")
        );
        assert!(f(&["node01"])
            .into_input()
            .unwrap_err()
            .contains("has no '='"));
        let twice = f(&["node01=10.0.0.11", "node01=10.0.0.12"])
            .into_input()
            .unwrap_err();
        assert!(twice.contains("given twice"), "{twice}");
    }

    #[test]
    fn env_flags_are_checked_and_empty_means_not_given() {
        let bad = CreateFlags {
            env: vec!["NOEQUALS".into()],
            ..Default::default()
        };
        assert!(bad.into_input().is_err());
        let none = CreateFlags::default().into_input().unwrap();
        assert!(none.env.is_none() && none.devices.is_none() && none.systemd.is_none());
    }
}
