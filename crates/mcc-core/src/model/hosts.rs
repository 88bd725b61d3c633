//! The `/etc/hosts` every node of a cluster shares.

use std::net::Ipv4Addr;

use super::names::{ClusterName, NodeId};

/// Renders the hosts file for a cluster's nodes: each node under its fully
/// qualified name (with a domain), its hostname and its container name,
/// front-end first, workers in order; then the user's extra entries.
pub fn render_hosts(
    cluster: &ClusterName,
    nodes: &[(NodeId, Ipv4Addr)],
    domain: Option<&str>,
    extra: &[(String, Ipv4Addr)],
) -> String {
    let mut nodes = nodes.to_vec();
    nodes.sort();
    let mut out = String::new();
    out.push_str(&format!(
        "# Written by mcc for cluster {cluster}; rewritten whenever its nodes change.\n"
    ));
    out.push_str("127.0.0.1\tlocalhost\n");
    out.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
    for (node, ip) in nodes {
        let fqdn = domain
            .map(|d| format!("{}.{d} ", node.hostname()))
            .unwrap_or_default();
        out.push_str(&format!(
            "{ip}\t{fqdn}{} {}\n",
            node.hostname(),
            cluster.container(node)
        ));
    }
    for (name, ip) in extra {
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_node_in_order() {
        let c: ClusterName = "lab".parse().unwrap();
        let hosts = render_hosts(
            &c,
            &[
                (NodeId::worker(2), Ipv4Addr::new(10, 0, 0, 4)),
                (NodeId::FRONTEND, Ipv4Addr::new(10, 0, 0, 2)),
                (NodeId::worker(1), Ipv4Addr::new(10, 0, 0, 3)),
            ],
            None,
            &[],
        );
        let lines: Vec<&str> = hosts.lines().collect();
        assert!(lines[0].starts_with("# Written by mcc for cluster lab"));
        assert_eq!(lines[1], "127.0.0.1\tlocalhost");
        assert_eq!(lines[3], "10.0.0.2\tfrontend lab-frontend");
        assert_eq!(lines[4], "10.0.0.3\tnode01 lab-node01");
        assert_eq!(lines[5], "10.0.0.4\tnode02 lab-node02");
        assert_eq!(lines.len(), 6);
        assert!(hosts.ends_with('\n'));
    }

    #[test]
    fn domain_and_extra_hosts() {
        let c: ClusterName = "lab".parse().unwrap();
        let hosts = render_hosts(
            &c,
            &[(NodeId::FRONTEND, Ipv4Addr::new(10, 0, 0, 2))],
            Some("hpc.test"),
            &[("nfs".into(), Ipv4Addr::new(10, 0, 0, 200))],
        );
        assert!(
            hosts.contains("10.0.0.2\tfrontend.hpc.test frontend lab-frontend\n"),
            "{hosts}"
        );
        assert!(hosts.ends_with("10.0.0.200\tnfs\n"), "{hosts}");
    }
}
