//! Workers that are Docker hosts (`--docker-workers`, MyCluster's dind
//! workers): what their engine is started with, the addresses of its inner
//! bridges, and the certificates that keep it to the cluster.
//!
//! A worker's engine listens on `tcp://nodeXX:2375` with TLS and client
//! certificates: each cluster has its own authority, every worker its own
//! server certificate, and the nodes of the cluster (and mcc) a client
//! certificate. Without one, nothing reaches it: not a node of another
//! cluster, not a user of the host.
//!
//! Where they are: the authority and the nodes' client certificate in the
//! meta volume (every node mounts it read-only); a worker's server
//! certificate and key in its own engine volume ([`ENGINE_TLS_DIR`]),
//! which no other node mounts.
//!
//! Pure: certificates are made here, written by the cluster logic.

use std::net::Ipv4Addr;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use serde::{Deserialize, Serialize};

use super::cidr::Ipv4Cidr;
use super::names::{ClusterName, NodeId};

/// The port of a worker's engine inside the cluster (the docker CLI's
/// default for `-H node01`).
pub const ENGINE_PORT: u16 = 2375;

/// Where a worker's engine keeps its images and containers: a volume of
/// the node, kept across recreation.
pub const ENGINE_DATA: &str = "/var/lib/docker";

/// Where the certificates every node may read are (the meta volume,
/// read-only): `ca.pem` and `client/{ca,cert,key}.pem` (the key for root
/// only). No worker's server key is there: each is in its own worker's
/// [`ENGINE_TLS_DIR`]. (An older mcc put them under `<worker>/` here,
/// where every node could read them; see [`legacy_files`].)
pub const CERTS_DIR: &str = "/opt/mcc/docker";
/// [`CERTS_DIR`] in the meta volume.
const CERTS_SUBDIR: &str = "docker";

/// Where a worker's engine finds its server certificate and key
/// (`cert.pem`, `key.pem`, 0700 root): in the worker's engine volume
/// ([`ENGINE_DATA`]), which only that worker mounts. mcc writes them
/// through the engine before the worker starts (the engine's archive API
/// reaches the volume of a container made but not started) and never
/// reads them back.
pub const ENGINE_TLS_DIR: &str = "/var/lib/docker/mcc-tls";
/// [`ENGINE_TLS_DIR`] in [`ENGINE_DATA`] (made 0700).
pub const ENGINE_TLS_SUBDIR: &str = "mcc-tls";

/// What a cluster of Docker workers keeps in its record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct DockerWorkers {
    /// The inner `docker0` of every worker (`--bip`): each worker has its
    /// own, in its own network namespace, so they may all be the same.
    pub bridge: Ipv4Cidr,
    /// Where the inner engines take networks the user makes
    /// (`--default-address-pool`, /24 each).
    pub pool: Ipv4Cidr,
    /// The cluster's certificate authority (PEM); its key never enters a
    /// node.
    pub ca_cert: String,
    pub ca_key: String,
}

/// A certificate and its key, PEM.
#[derive(Clone, Debug)]
pub struct Pem {
    pub cert: String,
    pub key: String,
}

fn tls_err(e: rcgen::Error) -> String {
    format!("making the cluster's engine certificates: {e}")
}

fn ca_params(cluster: &ClusterName) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name
        .push(DnType::CommonName, format!("mcc {cluster} engines CA"));
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p
}

impl DockerWorkers {
    /// A new authority for `cluster`, with the inner subnets chosen.
    pub fn new(cluster: &ClusterName, bridge: Ipv4Cidr, pool: Ipv4Cidr) -> Result<Self, String> {
        let key = KeyPair::generate().map_err(tls_err)?;
        let cert = ca_params(cluster).self_signed(&key).map_err(tls_err)?;
        Ok(DockerWorkers {
            bridge,
            pool,
            ca_cert: cert.pem(),
            ca_key: key.serialize_pem(),
        })
    }

    /// A certificate signed by the cluster's authority: for a worker's
    /// engine (`server`, named by `names`) or for a client.
    fn issue(
        &self,
        cluster: &ClusterName,
        cn: &str,
        names: Vec<String>,
        server: bool,
    ) -> Result<Pem, String> {
        let ca_key = KeyPair::from_pem(&self.ca_key).map_err(tls_err)?;
        // the same subject and key as the recorded authority: what it
        // signs verifies against the recorded certificate
        let ca = ca_params(cluster).self_signed(&ca_key).map_err(tls_err)?;
        let mut p = CertificateParams::new(names).map_err(tls_err)?;
        p.distinguished_name.push(DnType::CommonName, cn);
        p.use_authority_key_identifier_extension = true;
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        let key = KeyPair::generate().map_err(tls_err)?;
        let cert = p.signed_by(&key, &ca, &ca_key).map_err(tls_err)?;
        Ok(Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }

    /// The server certificate of a worker's engine: valid for its
    /// hostname (with the domain if any), its container name and address.
    pub fn server_cert(
        &self,
        cluster: &ClusterName,
        node: NodeId,
        domain: Option<&str>,
        ip: Option<Ipv4Addr>,
    ) -> Result<Pem, String> {
        let mut names = vec![node.hostname(), cluster.container(node), "localhost".into()];
        if let Some(d) = domain {
            names.push(format!("{}.{d}", node.hostname()));
        }
        names.push("127.0.0.1".into());
        if let Some(ip) = ip {
            names.push(ip.to_string());
        }
        self.issue(cluster, &node.hostname(), names, true)
    }

    /// A client certificate: the nodes' (`docker -H node01 ps` from any
    /// node) or mcc's own.
    pub fn client_cert(&self, cluster: &ClusterName, who: &str) -> Result<Pem, String> {
        self.issue(cluster, who, Vec::new(), false)
    }
}

/// The files every node reads: the authority and the nodes' client
/// certificate (its key for the node's root only), as meta-volume files.
pub fn cluster_files(
    dw: &DockerWorkers,
    cluster: &ClusterName,
) -> Result<Vec<(String, String, u32)>, String> {
    let client = dw.client_cert(cluster, &format!("{cluster} nodes"))?;
    Ok(vec![
        (format!("{CERTS_SUBDIR}/ca.pem"), dw.ca_cert.clone(), 0o644),
        (
            format!("{CERTS_SUBDIR}/client/ca.pem"),
            dw.ca_cert.clone(),
            0o644,
        ),
        (
            format!("{CERTS_SUBDIR}/client/cert.pem"),
            client.cert,
            0o644,
        ),
        (format!("{CERTS_SUBDIR}/client/key.pem"), client.key, 0o600),
    ])
}

/// A worker's engine certificate and key, as files of its engine volume
/// (paths relative to [`ENGINE_DATA`], in [`ENGINE_TLS_SUBDIR`]).
pub fn worker_files(
    dw: &DockerWorkers,
    cluster: &ClusterName,
    node: NodeId,
    domain: Option<&str>,
    ip: Option<Ipv4Addr>,
) -> Result<Vec<(String, String, u32)>, String> {
    let pem = dw.server_cert(cluster, node, domain, ip)?;
    let dir = ENGINE_TLS_SUBDIR;
    Ok(vec![
        (format!("{dir}/cert.pem"), pem.cert, 0o644),
        (format!("{dir}/key.pem"), pem.key, 0o600),
    ])
}

/// Where an older mcc put `node`'s server key and certificate: in the
/// meta volume, which every node mounts. Emptied once the worker is made
/// anew (its engine then reads [`ENGINE_TLS_DIR`]); workers made by that
/// older mcc still read them there until they are recreated.
pub fn legacy_files(node: NodeId) -> [String; 2] {
    let dir = format!("{CERTS_SUBDIR}/{}", node.hostname());
    [format!("{dir}/key.pem"), format!("{dir}/cert.pem")]
}

/// The environment of every node of such a cluster: the docker CLI finds
/// its client certificate and speaks TLS to `-H nodeXX`.
pub fn node_env() -> Vec<String> {
    vec![
        "DOCKER_TLS_VERIFY=1".into(),
        format!("DOCKER_CERT_PATH={CERTS_DIR}/client"),
    ]
}

/// The environment of a worker: what its start script reads
/// (`MCC_DOCKER_*`), and its own engine as the docker CLI's default (with
/// TLS verification on, the CLI would otherwise look for one on
/// localhost:2376).
pub fn worker_env(dw: &DockerWorkers) -> Vec<String> {
    let gw = dw.bridge.nth(1).unwrap_or(dw.bridge.network());
    vec![
        format!("DOCKER_HOST=tcp://localhost:{ENGINE_PORT}"),
        format!("MCC_DOCKER_BIP={gw}/{}", dw.bridge.prefix()),
        format!("MCC_DOCKER_POOL={}", dw.pool),
    ]
}

/// Prefixed to a worker's first process: makes the node's cgroups
/// writable (the inner engine nests its containers' cgroups under the
/// node's) and starts the inner engine in the background, its log in
/// `/var/log/dockerd.log`. Every value comes from the environment mcc
/// set; nothing of the user's is spliced into the text. The authority
/// comes from the meta volume, the worker's own certificate and key from
/// its engine volume ([`ENGINE_TLS_DIR`]), read at every start of the
/// node (the engine's restarts by the restart policy included).
pub const START_ENGINE: &str = r#"mcc_start_engine() {
  for d in /sys/fs/cgroup/*/; do mount -o remount,bind,rw "$d" 2>/dev/null; done
  c=/opt/mcc/docker
  t=/var/lib/docker/mcc-tls
  mkdir -p /var/log
  dockerd -H unix:///var/run/docker.sock -H "tcp://0.0.0.0:2375" \
    --tlsverify --tlscacert "$c/ca.pem" --tlscert "$t/cert.pem" --tlskey "$t/key.pem" \
    --storage-driver=overlay2 --bip="$MCC_DOCKER_BIP" \
    --default-address-pool "base=$MCC_DOCKER_POOL,size=24" >/var/log/dockerd.log 2>&1 &
}
if command -v dockerd >/dev/null 2>&1; then mcc_start_engine; \
else echo "mcc: no dockerd in this image: this worker is no Docker host" >&2; fi
"#;

/// Run in a worker until it exits 0: its engine answers (over TLS, as any
/// client would reach it). Exit 3: the image has no engine or no CLI.
pub const ENGINE_PROBE: &str =
    "command -v dockerd >/dev/null 2>&1 && command -v docker >/dev/null 2>&1 \
|| exit 3; docker version --format '{{.Server.Version}}'";

/// Picks the inner subnets: two /20 blocks that overlap none of `taken`
/// (the host's networks and routes, the cluster's own subnet), the first
/// /24 of one for the bridges, the other for the pool.
pub fn pick_inner_subnets(taken: &[Ipv4Cidr]) -> Option<(Ipv4Cidr, Ipv4Cidr)> {
    // from the end of the candidates: clusters take theirs from the start
    let all: Vec<Ipv4Cidr> = super::address::subnet_candidates().collect();
    let mut free = all
        .into_iter()
        .rev()
        .filter(|c| !taken.iter().any(|t| t.overlaps(c)));
    let bridge_block = free.next()?;
    let pool = free.next()?;
    Some((bridge_block.subnet(24, 0)?, pool))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> ClusterName {
        "lab".parse().unwrap()
    }

    #[test]
    fn certificates_chain_to_the_recorded_authority() {
        let c: Ipv4Cidr = "10.1.0.0/24".parse().unwrap();
        let p: Ipv4Cidr = "10.2.0.0/20".parse().unwrap();
        let dw = DockerWorkers::new(&cluster(), c, p).unwrap();
        assert!(dw.ca_cert.starts_with("-----BEGIN CERTIFICATE-----"));
        let s = dw
            .server_cert(
                &cluster(),
                NodeId::worker(1),
                Some("hpc.test"),
                Some(Ipv4Addr::new(10, 0, 0, 3)),
            )
            .unwrap();
        assert!(s.key.contains("PRIVATE KEY"));
        let c2 = dw.client_cert(&cluster(), "mcc").unwrap();
        assert_ne!(s.cert, c2.cert);
        // the record round-trips
        let j = serde_json::to_string(&dw).unwrap();
        assert_eq!(serde_json::from_str::<DockerWorkers>(&j).unwrap(), dw);
    }

    #[test]
    fn files_are_where_the_nodes_look() {
        assert_eq!(
            CERTS_DIR,
            format!("{}/{CERTS_SUBDIR}", super::super::META_MOUNT)
        );
        let dw = DockerWorkers::new(
            &cluster(),
            "10.1.0.0/24".parse().unwrap(),
            "10.2.0.0/20".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(ENGINE_TLS_DIR, format!("{ENGINE_DATA}/{ENGINE_TLS_SUBDIR}"));
        // a worker's key: in its own engine volume, where its engine looks
        let f = worker_files(&dw, &cluster(), NodeId::worker(2), None, None).unwrap();
        assert_eq!(ENGINE_TLS_SUBDIR, "mcc-tls");
        assert_eq!(f[1].0, "mcc-tls/key.pem");
        assert_eq!(f[1].2, 0o600);
        assert!(START_ENGINE.contains(&format!("t={ENGINE_TLS_DIR}\n")));
        assert!(START_ENGINE.contains(r#"--tlskey "$t/key.pem""#));
        assert!(!START_ENGINE.contains("$MCC_NODE"));
        // what every node reads holds no server key
        let c = cluster_files(&dw, &cluster()).unwrap();
        let paths: Vec<&str> = c.iter().map(|(p, _, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "docker/ca.pem",
                "docker/client/ca.pem",
                "docker/client/cert.pem",
                "docker/client/key.pem"
            ]
        );
        assert!(c
            .iter()
            .any(|(p, _, m)| p == "docker/client/key.pem" && *m == 0o600));
        assert_eq!(legacy_files(NodeId::worker(2))[0], "docker/node02/key.pem");
    }

    #[test]
    fn inner_subnets_avoid_what_is_taken() {
        let taken: Vec<Ipv4Cidr> = vec![
            "192.168.0.0/16".parse().unwrap(),
            "172.31.240.0/20".parse().unwrap(),
        ];
        let (b, p) = pick_inner_subnets(&taken).unwrap();
        assert_eq!(b.prefix(), 24);
        assert!(!taken.iter().any(|t| t.overlaps(&b) || t.overlaps(&p)));
        assert!(!b.overlaps(&p));
        let env = worker_env(&DockerWorkers {
            bridge: b,
            pool: p,
            ca_cert: String::new(),
            ca_key: String::new(),
        });
        assert!(env[1].ends_with("/24") && env[1].contains(".1/"));
    }
}
