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
//! which no other node mounts. Every certificate has a bounded validity
//! (see [`NODE_CERT_LIFETIME`] and the others).
//!
//! Pure: certificates are made here, written by the cluster logic.

use std::net::Ipv4Addr;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

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
/// The nodes' client certificate, in the meta volume.
pub const NODES_CERT_FILE: &str = "docker/client/cert.pem";

/// Where a worker's engine finds its server certificate and key
/// (`cert.pem`, `key.pem`, 0700 root): in the worker's engine volume
/// ([`ENGINE_DATA`]), which only that worker mounts. mcc writes them
/// through the engine before the worker starts (the engine's archive API
/// reaches the volume of a container made but not started) and never
/// reads them back.
pub const ENGINE_TLS_DIR: &str = "/var/lib/docker/mcc-tls";
/// [`ENGINE_TLS_DIR`] in [`ENGINE_DATA`] (made 0700).
pub const ENGINE_TLS_SUBDIR: &str = "mcc-tls";

/// How long the cluster's authority lasts. An older mcc's lasts until
/// 4096; it is kept, and what it signs now has the bounded validity below.
pub const CA_LIFETIME: Duration = Duration::days(3650);
/// How long a worker's server certificate and the nodes' client
/// certificate last. A worker gets a fresh one whenever mcc makes or
/// starts it (`create`, `addnode`, `recreate`, `start`); the nodes' is
/// replaced by `start`, `addnode` and `recreate` once less than
/// [`RENEW_BEFORE`] is left. Also what `mcc serve` gets: it writes its
/// client certificate once per cluster and keeps it while it runs.
pub const NODE_CERT_LIFETIME: Duration = Duration::days(365);
/// How long mcc's own client certificate for one command lasts.
pub const SESSION_CERT_LIFETIME: Duration = Duration::days(1);
/// Every certificate is valid from this long before it is made: a node's
/// clock, or the host's, may be a little behind.
pub const BACKDATE: Duration = Duration::hours(1);
/// The nodes' client certificate is replaced once less than this is left.
pub const RENEW_BEFORE: Duration = Duration::days(30);

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

/// Valid from [`BACKDATE`] before `now` for `lifetime`, never past
/// `cap` (the authority's end: what outlives its issuer fails anyway).
fn set_validity(
    p: &mut CertificateParams,
    now: OffsetDateTime,
    lifetime: Duration,
    cap: Option<OffsetDateTime>,
) {
    // X.509 times are whole seconds
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let end = now + lifetime;
    p.not_before = now - BACKDATE;
    p.not_after = cap.map_or(end, |c| end.min(c));
}

/// When a certificate (PEM) is valid: from, until; `None` when it is no
/// certificate mcc can read.
pub fn validity(pem: &str) -> Option<(OffsetDateTime, OffsetDateTime)> {
    use rustls_pki_types::pem::PemObject;
    let der = rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).ok()?;
    validity_of_der(&der).ok()
}

/// The validity field of an X.509 certificate (RFC 5280, 4.1): the fifth
/// field of the TBSCertificate, after the optional version.
fn validity_of_der(der: &[u8]) -> yasna::ASN1Result<(OffsetDateTime, OffsetDateTime)> {
    fn time(r: yasna::BERReader) -> yasna::ASN1Result<OffsetDateTime> {
        if r.lookahead_tag()? == yasna::tags::TAG_UTCTIME {
            Ok(*r.read_utctime()?.datetime())
        } else {
            Ok(*r.read_generalized_time()?.datetime())
        }
    }
    yasna::parse_der(der, |r| {
        r.read_sequence(|cert| {
            let v = cert.next().read_sequence(|tbs| {
                tbs.read_optional(|r| r.read_tagged(yasna::Tag::context(0), |r| r.read_i64()))?;
                // serial number, signature algorithm, issuer
                for _ in 0..3 {
                    tbs.next().read_der()?;
                }
                let v = tbs
                    .next()
                    .read_sequence(|v| Ok((time(v.next())?, time(v.next())?)))?;
                // subject, key, extensions
                while tbs.read_optional(|r| r.read_der())?.is_some() {}
                Ok(v)
            })?;
            cert.next().read_der()?;
            cert.next().read_der()?;
            Ok(v)
        })
    })
}

/// Whether the nodes' client certificate (`current`, read back from the
/// meta volume, which only mcc writes) should be replaced at `now`:
/// missing or unreadable; less than [`RENEW_BEFORE`] left, unless it
/// already lasts as long as the authority `ca_until` (a new one could not
/// last longer); or valid for longer than mcc issues (an older mcc's,
/// until 4096).
pub fn renewal_due(
    current: Option<&str>,
    ca_until: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> bool {
    let Some((_, until)) = current.and_then(validity) else {
        return true;
    };
    let unbounded = until - now > NODE_CERT_LIFETIME + Duration::days(1);
    let ending = until - now < RENEW_BEFORE && ca_until.is_none_or(|ca| until < ca);
    unbounded || ending
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
        Self::new_at(cluster, bridge, pool, OffsetDateTime::now_utc())
    }

    fn new_at(
        cluster: &ClusterName,
        bridge: Ipv4Cidr,
        pool: Ipv4Cidr,
        now: OffsetDateTime,
    ) -> Result<Self, String> {
        let key = KeyPair::generate().map_err(tls_err)?;
        let mut p = ca_params(cluster);
        set_validity(&mut p, now, CA_LIFETIME, None);
        let cert = p.self_signed(&key).map_err(tls_err)?;
        Ok(DockerWorkers {
            bridge,
            pool,
            ca_cert: cert.pem(),
            ca_key: key.serialize_pem(),
        })
    }

    /// When the cluster's authority ends (an older mcc's: 4096).
    pub fn ca_until(&self) -> Option<OffsetDateTime> {
        validity(&self.ca_cert).map(|(_, until)| until)
    }

    /// A certificate signed by the cluster's authority: for a worker's
    /// engine (`server`, named by `names`) or for a client; valid from
    /// just before `now` for `lifetime`.
    fn issue(
        &self,
        cluster: &ClusterName,
        cn: &str,
        names: Vec<String>,
        server: bool,
        lifetime: Duration,
        now: OffsetDateTime,
    ) -> Result<Pem, String> {
        let ca_key = KeyPair::from_pem(&self.ca_key).map_err(tls_err)?;
        // the same subject and key as the recorded authority: what it
        // signs verifies against the recorded certificate (this copy's
        // own validity is not written anywhere)
        let ca = ca_params(cluster).self_signed(&ca_key).map_err(tls_err)?;
        let mut p = CertificateParams::new(names).map_err(tls_err)?;
        p.distinguished_name.push(DnType::CommonName, cn);
        set_validity(&mut p, now, lifetime, self.ca_until());
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
    /// hostname (with the domain if any), its container name and the
    /// addresses it is reached at (on the cluster's network; over hosts,
    /// also its host's, where the engine's port is published).
    pub fn server_cert(
        &self,
        cluster: &ClusterName,
        node: NodeId,
        domain: Option<&str>,
        ips: &[Ipv4Addr],
    ) -> Result<Pem, String> {
        let mut names = vec![node.hostname(), cluster.container(node), "localhost".into()];
        if let Some(d) = domain {
            names.push(format!("{}.{d}", node.hostname()));
        }
        names.push("127.0.0.1".into());
        names.extend(ips.iter().map(Ipv4Addr::to_string));
        let (host, now) = (node.hostname(), OffsetDateTime::now_utc());
        self.issue(cluster, &host, names, true, NODE_CERT_LIFETIME, now)
    }

    /// A client certificate for a holder that keeps it: the nodes'
    /// (`docker -H node01 ps` from any node), or `mcc serve`'s, which it
    /// writes once per cluster. Lasts [`NODE_CERT_LIFETIME`].
    pub fn client_cert(&self, cluster: &ClusterName, who: &str) -> Result<Pem, String> {
        let now = OffsetDateTime::now_utc();
        self.issue(cluster, who, Vec::new(), false, NODE_CERT_LIFETIME, now)
    }

    /// A client certificate made for one connection of mcc's, thrown away
    /// after it: lasts [`SESSION_CERT_LIFETIME`].
    pub fn session_cert(&self, cluster: &ClusterName, who: &str) -> Result<Pem, String> {
        let now = OffsetDateTime::now_utc();
        self.issue(cluster, who, Vec::new(), false, SESSION_CERT_LIFETIME, now)
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
    ips: &[Ipv4Addr],
) -> Result<Vec<(String, String, u32)>, String> {
    let pem = dw.server_cert(cluster, node, domain, ips)?;
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
                &[Ipv4Addr::new(10, 0, 0, 3)],
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
        assert_eq!(ENGINE_TLS_DIR, format!("{ENGINE_DATA}/{ENGINE_TLS_SUBDIR}"));
        let dw = DockerWorkers::new(
            &cluster(),
            "10.1.0.0/24".parse().unwrap(),
            "10.2.0.0/20".parse().unwrap(),
        )
        .unwrap();
        // a worker's key: in its own engine volume, where its engine looks
        let f = worker_files(&dw, &cluster(), NodeId::worker(2), None, &[]).unwrap();
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
                NODES_CERT_FILE,
                "docker/client/key.pem"
            ]
        );
        assert!(c
            .iter()
            .any(|(p, _, m)| p == "docker/client/key.pem" && *m == 0o600));
        assert_eq!(legacy_files(NodeId::worker(2))[0], "docker/node02/key.pem");
    }

    fn now_s() -> OffsetDateTime {
        OffsetDateTime::now_utc().replace_nanosecond(0).unwrap()
    }

    fn subnets() -> (Ipv4Cidr, Ipv4Cidr) {
        (
            "10.1.0.0/24".parse().unwrap(),
            "10.2.0.0/20".parse().unwrap(),
        )
    }

    fn dw_at(now: OffsetDateTime) -> DockerWorkers {
        let (b, p) = subnets();
        DockerWorkers::new_at(&cluster(), b, p, now).unwrap()
    }

    /// What an older mcc recorded: an authority with rcgen's default
    /// validity, 1975 to 4096.
    fn older_dw() -> DockerWorkers {
        let (bridge, pool) = subnets();
        let key = KeyPair::generate().unwrap();
        let cert = ca_params(&cluster()).self_signed(&key).unwrap();
        DockerWorkers {
            bridge,
            pool,
            ca_cert: cert.pem(),
            ca_key: key.serialize_pem(),
        }
    }

    fn server_at(dw: &DockerWorkers, now: OffsetDateTime) -> Pem {
        dw.issue(
            &cluster(),
            "node01",
            vec!["node01".into()],
            true,
            NODE_CERT_LIFETIME,
            now,
        )
        .unwrap()
    }

    fn client_at(dw: &DockerWorkers, lifetime: Duration, now: OffsetDateTime) -> Pem {
        dw.issue(&cluster(), "lab nodes", Vec::new(), false, lifetime, now)
            .unwrap()
    }

    /// Whether `leaf` verifies against the authority `ca` at `at`, as a
    /// server (or a client) certificate: what a docker CLI (an engine)
    /// checks.
    fn verifies(ca: &str, leaf: &str, server: bool, at: OffsetDateTime) -> bool {
        use rustls_pki_types::{pem::PemObject, CertificateDer, UnixTime};
        let ca = CertificateDer::from_pem_slice(ca.as_bytes()).unwrap();
        let anchor = webpki::anchor_from_trusted_cert(&ca).unwrap();
        let leaf = CertificateDer::from_pem_slice(leaf.as_bytes()).unwrap();
        let ee = webpki::EndEntityCert::try_from(&leaf).unwrap();
        let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            at.unix_timestamp().try_into().unwrap(),
        ));
        let usage = if server {
            webpki::KeyUsage::server_auth()
        } else {
            webpki::KeyUsage::client_auth()
        };
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &[anchor],
            &[],
            time,
            usage,
            None,
            None,
        )
        .is_ok()
    }

    #[test]
    fn certificates_last_a_bounded_time() {
        // what is chosen: a day for mcc's own, a year for what the nodes
        // keep, ten for the authority; never rcgen's 4096
        assert_eq!(SESSION_CERT_LIFETIME, Duration::days(1));
        assert_eq!(NODE_CERT_LIFETIME, Duration::days(365));
        assert_eq!(CA_LIFETIME, Duration::days(3650));
        assert_eq!(BACKDATE, Duration::hours(1));

        let before = now_s();
        let (b, p) = subnets();
        let dw = DockerWorkers::new(&cluster(), b, p).unwrap();
        let server = dw
            .server_cert(&cluster(), NodeId::worker(1), Some("hpc.test"), &[])
            .unwrap();
        let files = worker_files(&dw, &cluster(), NodeId::worker(1), None, &[]).unwrap();
        let nodes = cluster_files(&dw, &cluster()).unwrap();
        let nodes = &nodes.iter().find(|f| f.0 == NODES_CERT_FILE).unwrap().1;
        let session = dw.session_cert(&cluster(), "mcc").unwrap();
        let serve = dw.client_cert(&cluster(), "mcc serve").unwrap();
        let after = now_s();
        for (what, pem, lifetime) in [
            ("the authority", &dw.ca_cert, CA_LIFETIME),
            ("a server certificate", &server.cert, NODE_CERT_LIFETIME),
            ("a worker's file", &files[0].1, NODE_CERT_LIFETIME),
            ("the nodes' certificate", nodes, NODE_CERT_LIFETIME),
            ("mcc serve's certificate", &serve.cert, NODE_CERT_LIFETIME),
            (
                "mcc's own certificate",
                &session.cert,
                SESSION_CERT_LIFETIME,
            ),
        ] {
            let (from, until) = validity(pem).expect("a certificate mcc reads");
            assert!(
                before - BACKDATE <= from && from <= after - BACKDATE,
                "{what} is valid from {from}, made between {before} and {after}"
            );
            assert!(
                before + lifetime <= until && until <= after + lifetime,
                "{what} is valid until {until}, made between {before} and {after}"
            );
        }
        assert_eq!(validity("not a certificate"), None);
    }

    #[test]
    fn engines_and_clients_refuse_certificates_outside_their_validity() {
        let now = now_s();
        let dw = dw_at(now);
        let server = server_at(&dw, now);
        let session = client_at(&dw, SESSION_CERT_LIFETIME, now);
        let nodes = client_at(&dw, NODE_CERT_LIFETIME, now);
        let h = Duration::hours;
        let d = Duration::days;
        for (what, pem, server, good, bad) in [
            (
                "server",
                &server.cert,
                true,
                [now, now - h(1) + Duration::minutes(1), now + d(364)],
                [now - h(2), now + d(366)],
            ),
            (
                "nodes'",
                &nodes.cert,
                false,
                [now, now - h(1) + Duration::minutes(1), now + d(364)],
                [now - h(2), now + d(366)],
            ),
            (
                "session",
                &session.cert,
                false,
                [now, now - Duration::minutes(30), now + h(23)],
                [now - h(2), now + h(25)],
            ),
        ] {
            for at in good {
                assert!(
                    verifies(&dw.ca_cert, pem, server, at),
                    "{what} refused at {at}"
                );
            }
            for at in bad {
                assert!(
                    !verifies(&dw.ca_cert, pem, server, at),
                    "{what} accepted at {at}"
                );
            }
        }
        // and each for its own use only
        assert!(!verifies(&dw.ca_cert, &server.cert, false, now));
        assert!(!verifies(&dw.ca_cert, &session.cert, true, now));
        // another cluster's authority signs none of them
        let other = dw_at(now);
        assert!(!verifies(&other.ca_cert, &server.cert, true, now));
    }

    #[test]
    fn an_older_mcc_s_authority_signs_bounded_certificates_that_verify() {
        let now = now_s();
        let older = older_dw();
        let until = older.ca_until().unwrap();
        assert_eq!(until.year(), 4096);
        let server = older
            .server_cert(&cluster(), NodeId::worker(1), None, &[])
            .unwrap();
        assert!(verifies(&older.ca_cert, &server.cert, true, now));
        let (_, s_until) = validity(&server.cert).unwrap();
        assert!(s_until - now <= NODE_CERT_LIFETIME + Duration::minutes(1));
        let session = older.session_cert(&cluster(), "mcc").unwrap();
        assert!(verifies(&older.ca_cert, &session.cert, false, now));
        // the nodes' certificate that mcc made then (until 4096) is
        // replaced at the first chance
        let then = client_at(&older, until - now, now);
        assert_eq!(validity(&then.cert).unwrap().1, until);
        assert!(renewal_due(Some(&then.cert), Some(until), now));
        let fresh = older.client_cert(&cluster(), "lab nodes").unwrap();
        assert!(!renewal_due(Some(&fresh.cert), Some(until), now));
    }

    #[test]
    fn the_nodes_certificate_is_renewed_near_its_end_and_never_outlasts_the_authority() {
        let now = now_s();
        let d = Duration::days;
        let dw = dw_at(now - d(400));
        let ca_until = dw.ca_until();
        let fresh = client_at(&dw, NODE_CERT_LIFETIME, now);
        assert!(!renewal_due(Some(&fresh.cert), ca_until, now));
        let young = client_at(&dw, NODE_CERT_LIFETIME, now - d(300));
        assert!(!renewal_due(Some(&young.cert), ca_until, now));
        let old = client_at(&dw, NODE_CERT_LIFETIME, now - d(340));
        assert!(renewal_due(Some(&old.cert), ca_until, now));
        let expired = client_at(&dw, NODE_CERT_LIFETIME, now - d(380));
        assert!(renewal_due(Some(&expired.cert), ca_until, now));
        assert!(renewal_due(None, ca_until, now));
        assert!(renewal_due(Some("garbage"), ca_until, now));

        // an authority ten days from its end: what it signs ends with it,
        // and is not made again at every start
        let ending = dw_at(now - CA_LIFETIME + d(10));
        let ca_until = ending.ca_until().unwrap();
        assert_eq!(ca_until, now + d(10));
        let last = client_at(&ending, NODE_CERT_LIFETIME, now);
        assert_eq!(validity(&last.cert).unwrap().1, ca_until);
        assert!(!renewal_due(Some(&last.cert), Some(ca_until), now));
        assert!(verifies(&ending.ca_cert, &last.cert, false, now + d(9)));
        assert!(!verifies(&ending.ca_cert, &last.cert, false, now + d(11)));
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
