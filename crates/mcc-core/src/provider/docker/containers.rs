//! Docker's create call from a `ContainerSpec` (nodes, `mcc run`, the
//! record container, helpers): mounts, network, limits, ports, restart
//! policy.

#[allow(unused_imports)]
use super::*;

impl DockerProvider {
    pub(super) async fn create_plain_container(&self, spec: &ContainerSpec) -> Result<String> {
        self.ensure_export_volumes(spec).await?;
        self.create_container_as_is(spec).await
    }

    /// Docker's create call alone: no volume of a shared export is made
    /// first (a helper's, which mounts none).
    pub(super) async fn create_container_as_is(&self, spec: &ContainerSpec) -> Result<String> {
        let body = ContainerCreateBody {
            hostname: spec.hostname.clone(),
            domainname: spec.domainname.clone(),
            stop_signal: spec.stop_signal.clone(),
            image: Some(spec.image.clone()),
            entrypoint: spec.entrypoint.clone(),
            cmd: spec.cmd.clone(),
            user: spec.user.clone(),
            working_dir: spec.workdir.clone(),
            env: Some(spec.env.clone()),
            labels: Some(spec.labels.clone()),
            exposed_ports: (!spec.publish.is_empty())
                .then(|| spec.publish.iter().map(|p| format!("{p}/tcp")).collect()),
            host_config: Some(host_config(spec)),
            networking_config: networking_config(spec),
            ..Default::default()
        };
        let opts = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        let r = self
            .docker
            .create_container(Some(opts), body)
            .await
            .map_err(map_err(format!("creating container {}", spec.name)))?;
        Ok(r.id)
    }
}

/// The engine's binds (paths of its host) and mounts (volumes) of a spec.
fn mounts_of(spec: &ContainerSpec) -> (Vec<String>, Vec<DockerMount>) {
    let mut binds = Vec::new();
    let mut mounts = Vec::new();
    for m in &spec.mounts {
        match m {
            // A bind through `Binds` rather than `Mounts`: the engine
            // then accepts a file as source (our /etc/hosts).
            Mount::Bind {
                source,
                target,
                read_only,
            } => binds.push(format!(
                "{source}:{target}{}",
                if *read_only { ":ro" } else { "" }
            )),
            Mount::Volume {
                name,
                target,
                labels,
                read_only,
            } => mounts.push(DockerMount {
                typ: Some(MountType::VOLUME),
                source: Some(name.clone()),
                target: Some(target.clone()),
                read_only: Some(*read_only),
                volume_options: Some(MountVolumeOptions {
                    labels: Some(labels.clone()),
                    // made by `ensure_export_volumes`; should it be gone
                    // again, made mounting the export's folder, never as
                    // a volume of this host's disk
                    driver_config: export::export_of(labels).ok().flatten().map(|e| {
                        bollard::models::MountVolumeOptionsDriverConfig {
                            name: Some("local".into()),
                            options: Some(e.volume_options(name)),
                        }
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }
    }
    (binds, mounts)
}

/// The network a spec joins, with its static address and aliases; `none`
/// for no network at all, the engine's default bridge when neither.
fn network_mode(spec: &ContainerSpec) -> Option<String> {
    match &spec.network {
        None if spec.no_network => Some("none".to_string()),
        None => None,
        Some((net, _, _)) => Some(net.clone()),
    }
}

fn networking_config(spec: &ContainerSpec) -> Option<NetworkingConfig> {
    let (net, ip, aliases) = spec.network.as_ref()?;
    Some(NetworkingConfig {
        endpoints_config: Some(HashMap::from([(
            net.clone(),
            EndpointSettings {
                ipam_config: ip.map(|ip| EndpointIpamConfig {
                    ipv4_address: Some(ip.to_string()),
                    ..Default::default()
                }),
                aliases: Some(aliases.clone()),
                ..Default::default()
            },
        )])),
    })
}

/// What the engine's host gives the container: mounts, network, limits,
/// ports, privileges and restart policy.
fn host_config(spec: &ContainerSpec) -> HostConfig {
    let (binds, mounts) = mounts_of(spec);
    HostConfig {
        binds: (!binds.is_empty()).then_some(binds),
        mounts: (!mounts.is_empty()).then_some(mounts),
        network_mode: network_mode(spec),
        privileged: Some(spec.privileged),
        dns: (!spec.dns.is_empty()).then(|| spec.dns.clone()),
        dns_search: (!spec.dns_search.is_empty()).then(|| spec.dns_search.clone()),
        tmpfs: (!spec.tmpfs.is_empty()).then(|| {
            spec.tmpfs
                .iter()
                .map(|p| (p.clone(), String::new()))
                .collect()
        }),
        cgroupns_mode: spec
            .private_cgroupns
            .then_some(HostConfigCgroupnsModeEnum::PRIVATE),
        restart_policy: spec.restart_unless_stopped.then_some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
            maximum_retry_count: None,
        }),
        init: spec.init.then_some(true),
        memory: spec.memory,
        cpu_shares: spec.cpu_shares,
        storage_opt: spec
            .disk
            .map(|d| HashMap::from([("size".to_string(), d.to_string())])),
        port_bindings: (!spec.publish.is_empty()).then(|| {
            spec.publish
                .iter()
                .map(|p| {
                    (
                        format!("{p}/tcp"),
                        Some(vec![PortBinding {
                            host_ip: spec.publish_on.map(|a| a.to_string()),
                            host_port: None,
                        }]),
                    )
                })
                .collect()
        }),
        cap_add: (!spec.cap_add.is_empty()).then(|| spec.cap_add.clone()),
        security_opt: (!spec.security_opt.is_empty()).then(|| spec.security_opt.clone()),
        ..Default::default()
    }
}
