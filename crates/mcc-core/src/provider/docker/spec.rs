//! What the Docker engine is asked for when mcc makes a container: the
//! engine-neutral requests of the trait ([`NodeRequest`],
//! [`ContainerRequest`]) become one of these, with this engine's own
//! fields (capabilities, seccomp, tmpfs, cgroup namespace, stop signal).

#[allow(unused_imports)]
use super::*;

/// One container as Docker's create call takes it.
#[derive(Clone, Debug, Default)]
pub(super) struct ContainerSpec {
    pub(super) name: String,
    pub(super) hostname: Option<String>,
    pub(super) domainname: Option<String>,
    pub(super) dns: Vec<String>,
    pub(super) dns_search: Vec<String>,
    /// Paths mounted as empty tmpfs.
    pub(super) tmpfs: Vec<String>,
    /// Signal that stops the container (`SIGRTMIN+3` for systemd).
    pub(super) stop_signal: Option<String>,
    /// A cgroup namespace of its own (the engine's default otherwise).
    pub(super) private_cgroupns: bool,
    pub(super) image: String,
    /// Replaces the image's entrypoint; `None` keeps it.
    pub(super) entrypoint: Option<Vec<String>>,
    /// Replaces the image's command; `None` keeps it.
    pub(super) cmd: Option<Vec<String>>,
    /// User of the first process (`0` for root); `None`: the image's `USER`.
    pub(super) user: Option<String>,
    pub(super) env: Vec<String>,
    pub(super) labels: Labels,
    /// Network to join, with a static address and DNS aliases.
    pub(super) network: Option<(String, Option<Ipv4Addr>, Vec<String>)>,
    /// No network at all (not even the engine's default bridge).
    pub(super) no_network: bool,
    pub(super) mounts: Vec<Mount>,
    pub(super) privileged: bool,
    /// A tiny init as PID 1 (the engine's `--init`): reaps and forwards
    /// signals.
    pub(super) init: bool,
    /// Capabilities added to the engine's default set.
    pub(super) cap_add: Vec<String>,
    /// Security options (`seccomp=<profile JSON>`, …).
    pub(super) security_opt: Vec<String>,
    /// TCP ports of the container published on free ports of the host.
    pub(super) publish: Vec<u16>,
    /// The host address they are published on; `None`: every address.
    pub(super) publish_on: Option<Ipv4Addr>,
    /// Memory limit in bytes.
    pub(super) memory: Option<i64>,
    /// CPU shares (relative weight).
    pub(super) cpu_shares: Option<i64>,
    /// Size of the container's writable layer, in bytes (storage drivers
    /// with quotas only: the engine refuses it elsewhere).
    pub(super) disk: Option<u64>,
    /// Working directory of the first process.
    pub(super) workdir: Option<String>,
    /// Restart with the engine unless stopped by the user.
    pub(super) restart_unless_stopped: bool,
}

impl ContainerSpec {
    /// A plain container: the request as it is, nothing of Docker's added.
    pub(super) fn plain(req: &ContainerRequest) -> ContainerSpec {
        ContainerSpec {
            name: req.name.clone(),
            image: req.image.clone(),
            entrypoint: req.entrypoint.clone(),
            cmd: req.cmd.clone(),
            user: req.user.clone(),
            env: req.env.clone(),
            labels: req.labels.clone(),
            network: req.network.clone(),
            no_network: req.no_network,
            mounts: req.mounts.clone(),
            publish: req.publish.clone(),
            // refuse_limits keeps both within i64
            memory: req.limits.memory.map(|m| m as i64),
            cpu_shares: req.limits.cpu_shares.map(|c| c as i64),
            disk: req.limits.disk,
            workdir: req.workdir.clone(),
            restart_unless_stopped: req.restart_unless_stopped,
            ..Default::default()
        }
    }
}

/// The limits the Docker engine refuses: less memory than it needs to
/// start a container, CPU shares outside the kernel's range.
pub(super) fn refused(limits: &Limits) -> Option<(Limit, String)> {
    if let Some(m) = limits.memory {
        if m < 6 << 20 {
            return Some((Limit::Memory, "the engine needs at least 6M".into()));
        }
        if i64::try_from(m).is_err() {
            return Some((Limit::Memory, "that is too large".into()));
        }
    }
    if let Some(c) = limits.cpu_shares {
        if !(2..=262_144).contains(&c) {
            return Some((
                Limit::Cpu,
                "shares go from 2 to 262144 (1024 is one CPU's worth)".into(),
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_out_of_the_engine_s_range_are_refused_by_name() {
        let l = |memory, cpu_shares| Limits {
            memory,
            cpu_shares,
            disk: None,
        };
        assert_eq!(refused(&l(Some(6 << 20), Some(2))), None);
        assert_eq!(
            refused(&l(Some((6 << 20) - 1), None)).unwrap().0,
            Limit::Memory
        );
        assert_eq!(refused(&l(Some(u64::MAX), None)).unwrap().0, Limit::Memory);
        assert_eq!(refused(&l(None, Some(1))).unwrap().0, Limit::Cpu);
        assert_eq!(refused(&l(None, Some(262_145))).unwrap().0, Limit::Cpu);
        assert_eq!(refused(&l(None, None)), None);
    }
}
