//! How a node is made on a Docker engine: the container of a node (the
//! cgroup recipe for systemd, the bind of its hosts file, the kernel
//! modules), and what a node that runs its own engine gets (capabilities,
//! a seccomp denylist, an init) instead of `--privileged`.

#[allow(unused_imports)]
use super::*;

/// Signal that makes systemd shut down cleanly (SIGTERM only re-executes it).
pub(super) const SYSTEMD_STOP_SIGNAL: &str = "SIGRTMIN+3";

/// Why systemd nodes are privileged on a cgroup v2 host.
pub(super) const SYSTEMD_V2_PRIVILEGED: &str =
    "--systemd on a cgroup v2 host: the engine mounts the \
     cgroup tree read-only unless the container is privileged, and systemd must write it";

/// The container of a node, for a host with `facts`, whose hosts file is
/// the host path `hosts_source`.
pub(super) fn node_container(
    node: &NodeRequest,
    facts: HostFacts,
    hosts_source: Option<String>,
) -> ContainerSpec {
    let mut mounts = node.volumes.clone();
    if let Some(source) = hosts_source {
        // a bind (not a copy): rewritten in place, the file is seen by
        // every node at once, and it survives restarts (the engine would
        // regenerate its own /etc/hosts)
        mounts.push(Mount::Bind {
            source,
            target: "/etc/hosts".into(),
            read_only: true,
        });
    }
    if node.host_modules {
        mounts.push(Mount::Bind {
            source: "/lib/modules".into(),
            target: "/lib/modules".into(),
            read_only: true,
        });
    }
    let mut spec = ContainerSpec {
        name: node.name.clone(),
        hostname: Some(node.hostname.clone()),
        domainname: node.domainname.clone(),
        dns: node.dns.clone(),
        dns_search: node.dns_search.clone(),
        image: node.image.clone(),
        env: node.env.clone(),
        labels: node.labels.clone(),
        network: Some(node.network.clone()),
        mounts,
        privileged: node.privileged,
        publish: node.publish.clone(),
        publish_on: node.publish_on,
        // Nodes come back with the engine, as machines come back after a
        // power cut; a node the user stopped stays stopped.
        restart_unless_stopped: true,
        ..Default::default()
    };
    match &node.init {
        NodeInit::Image => {}
        NodeInit::Shell(script) => {
            // mcc's own first process runs as root, whatever USER the
            // image names: it runs the context and is the node's init
            spec.cmd = Some(vec!["/bin/sh".into(), "-c".into(), script.clone()]);
            spec.user = Some("0".into());
        }
        NodeInit::ShellThen(script, args) => {
            spec.entrypoint = Some(vec![
                "/bin/sh".into(),
                "-c".into(),
                script.clone(),
                "mcc-init".into(),
            ]);
            spec.cmd = Some(args.clone());
            spec.user = Some("0".into());
        }
        NodeInit::Systemd => {
            spec.cmd = Some(vec!["/sbin/init".into()]);
            spec.user = Some("0".into());
            spec.env.push("container=docker".into());
            spec.tmpfs = vec!["/run".into(), "/run/lock".into()];
            spec.stop_signal = Some(SYSTEMD_STOP_SIGNAL.into());
            if facts.cgroup_v2 {
                // The engine mounts a private cgroup2 tree read-only unless
                // the container is privileged (moby#42040, #46763), and
                // systemd must write it; a private namespace keeps the
                // host's tree out of reach, as kind does.
                spec.private_cgroupns = true;
                spec.privileged = true;
            } else {
                // cgroup v1: the host's hierarchy read-only, in the host's
                // cgroup namespace. A private namespace with a writable
                // mount would let systemd take the host's cgroup root.
                spec.mounts.push(Mount::Bind {
                    source: "/sys/fs/cgroup".into(),
                    target: "/sys/fs/cgroup".into(),
                    read_only: true,
                });
            }
        }
    }
    if node.engine_host {
        engine_host(&mut spec);
    }
    spec
}

/// System calls a node that runs its own engine may not make: what the
/// engine's default profile refuses, less what an inner engine needs
/// (`mount`, `unshare`, `setns`, `pivot_root`, `keyctl`, `clone`…). The
/// capabilities it holds (SYS_ADMIN, NET_ADMIN) gate the rest.
pub(super) const ENGINE_HOST_DENIED: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "delete_module",
    "fanotify_init",
    "finit_module",
    "init_module",
    "ioperm",
    "iopl",
    "kexec_file_load",
    "kexec_load",
    "lookup_dcookie",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "perf_event_open",
    "quotactl",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "syslog",
    "uselib",
    "userfaultfd",
    "vm86",
    "vm86old",
];

/// The seccomp profile of a node that runs its own engine: everything
/// allowed but [`ENGINE_HOST_DENIED`], on every ABI of the machine (a
/// denial on one ABI only could be bypassed through another).
pub(super) fn engine_host_seccomp() -> String {
    serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32",
                          "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        "syscalls": [{
            "names": ENGINE_HOST_DENIED,
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": 1,
        }],
    })
    .to_string()
}

/// What a node needs to run a Docker engine without `--privileged`
/// (ENGINE-FACTS, "Nodes that are Docker hosts"): an init that reaps, the
/// capabilities to mount image layers (SYS_ADMIN) and make the engine's
/// NAT chains (NET_ADMIN), a seccomp profile that lets it make containers,
/// and a tmpfs `/run` for its sockets.
pub(super) fn engine_host(spec: &mut ContainerSpec) {
    spec.init = true;
    spec.cap_add = vec!["SYS_ADMIN".into(), "NET_ADMIN".into()];
    spec.security_opt = vec![format!("seccomp={}", engine_host_seccomp())];
    if !spec.tmpfs.iter().any(|t| t == "/run") {
        spec.tmpfs.push("/run".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(init: NodeInit) -> NodeRequest {
        NodeRequest {
            name: "lab-frontend".into(),
            hostname: "frontend".into(),
            domainname: None,
            dns: vec![],
            dns_search: vec![],
            image: "img".into(),
            init,
            env: vec!["A=1".into()],
            labels: Labels::new(),
            network: ("lab-net".into(), None, vec![]),
            volumes: vec![],
            hosts_file: Some(("lab-mcc.1".into(), "hosts".into())),
            host_modules: true,
            privileged: false,
            placement: None,
            engine_host: false,
            publish: Vec::new(),
            publish_on: None,
        }
    }

    #[test]
    fn an_engine_host_gets_what_its_engine_needs_and_no_more() {
        let mut r = request(NodeInit::ShellThen("exec \"$@\"".into(), vec!["/x".into()]));
        r.engine_host = true;
        let c = node_container(&r, HostFacts::default(), None);
        assert!(c.init && !c.privileged);
        assert_eq!(c.cap_add, vec!["SYS_ADMIN", "NET_ADMIN"]);
        assert!(c.tmpfs.contains(&"/run".to_string()));
        assert_eq!(c.entrypoint.as_ref().unwrap()[..2], ["/bin/sh", "-c"]);
        assert_eq!(c.cmd, Some(vec!["/x".to_string()]));
        let profile: serde_json::Value =
            serde_json::from_str(c.security_opt[0].strip_prefix("seccomp=").unwrap()).unwrap();
        let denied = profile["syscalls"][0]["names"].as_array().unwrap();
        for s in ["open_by_handle_at", "kexec_load", "init_module", "bpf"] {
            assert!(denied.iter().any(|d| d == s), "{s}");
        }
        for s in ["mount", "pivot_root", "keyctl", "unshare", "setns"] {
            assert!(!denied.iter().any(|d| d == s), "{s}");
        }
        let plain = node_container(&request(NodeInit::Image), HostFacts::default(), None);
        assert!(plain.cap_add.is_empty() && plain.security_opt.is_empty() && !plain.init);
    }

    #[test]
    fn hosts_file_and_modules_are_read_only_binds() {
        let c = node_container(
            &request(NodeInit::Image),
            HostFacts::default(),
            Some("/v/lab-mcc.1/_data/hosts".into()),
        );
        assert!(c.mounts.contains(&Mount::Bind {
            source: "/v/lab-mcc.1/_data/hosts".into(),
            target: "/etc/hosts".into(),
            read_only: true
        }));
        assert!(c.mounts.iter().any(
            |m| matches!(m, Mount::Bind { target, read_only: true, .. } if target == "/lib/modules")
        ));
        assert_eq!(c.cmd, None, "the image's own command");
        assert_eq!(c.user, None);
        assert!(c.restart_unless_stopped);
    }

    #[test]
    fn shell_init_runs_as_root() {
        let c = node_container(
            &request(NodeInit::Shell("x".into())),
            HostFacts::default(),
            None,
        );
        assert_eq!(c.cmd, Some(vec!["/bin/sh".into(), "-c".into(), "x".into()]));
        assert_eq!(c.user.as_deref(), Some("0"));
    }

    #[test]
    fn systemd_recipe_per_cgroup_version() {
        let v1 = node_container(
            &request(NodeInit::Systemd),
            HostFacts { cgroup_v2: false },
            None,
        );
        assert_eq!(v1.cmd, Some(vec!["/sbin/init".to_string()]));
        assert_eq!(v1.stop_signal.as_deref(), Some("SIGRTMIN+3"));
        assert_eq!(v1.tmpfs, vec!["/run", "/run/lock"]);
        assert!(v1.env.contains(&"container=docker".to_string()));
        assert!(!v1.private_cgroupns && !v1.privileged);
        assert!(v1.mounts.contains(&Mount::Bind {
            source: "/sys/fs/cgroup".into(),
            target: "/sys/fs/cgroup".into(),
            read_only: true
        }));
        let v2 = node_container(
            &request(NodeInit::Systemd),
            HostFacts { cgroup_v2: true },
            None,
        );
        assert!(v2.private_cgroupns && v2.privileged);
        assert!(!v2
            .mounts
            .iter()
            .any(|m| matches!(m, Mount::Bind { target, .. } if target == "/sys/fs/cgroup")));
    }
}
