//! The hosts a cluster may span (`mcc host`): engines that are the nodes
//! of one Docker swarm, each with a name and an optional availability zone.
//!
//! Without a daemon the list is a file of the user's (`MCC_HOSTS_FILE`, or
//! `$XDG_CONFIG_HOME/mcc/hosts.json`, or `~/.config/mcc/hosts.json`); with
//! `mcc serve`, `hosts.json` in its state directory (or `MCC_HOSTS_FILE`),
//! changed through its API. Either way the file is read
//! only when it is a private file of this user (no link, mode 0600),
//! written whole by a rename in a folder made private (0700), changes
//! serialized by a host lock. The swarm itself holds the zones (node label
//! `mcc.zone`), so every manager sees the same ones.
//!
//! `add` checks everything before it changes anything: the name, the URL,
//! that the engine answers and is recent enough, and which swarm it is in.
//! Only then does it make the swarm (first host), join the engine to it as
//! a manager, or adopt the swarm the engine is already in.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::labels;

pub mod file;
use crate::provider::swarm::{SwarmMember, SwarmState};
use crate::provider::{DockerProvider, Engine};
pub use file::{HostEntry, HostsFile, TlsFiles};

/// The oldest engine API a host may have: Docker 20.10, the one the
/// multi-host tests run on (attachable overlays with static addresses).
pub const MIN_API: (u32, u32) = (1, 41);
/// How long `add` waits for a new host's engine; `list` and `remove` wait
/// less (a lost host must not hold them up).
const ADD_TIMEOUT: u64 = 10;
const LIST_TIMEOUT: u64 = 3;
/// How long a swarm change (init, join, leave, demote) may take once its
/// engines have answered: it waits for the managers' log, which a busy
/// machine slows down (a leave took over 3 s in CI).
const ACT_TIMEOUT: u64 = 60;

/// A host as `mcc host list` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HostView {
    pub name: String,
    pub engine: String,
    pub zone: Option<String>,
    pub reachable: bool,
    /// The engine's version, when it answers.
    pub version: Option<String>,
    /// `manager`, `leader` (the manager leading the swarm), `worker`, or
    /// the engine's word when it is in no swarm or a broken one.
    pub swarm: String,
    /// The clusters with nodes on it, each with how many.
    pub clusters: BTreeMap<String, usize>,
    /// Why it does not answer, or what is wrong with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

use file::invalid;

/// A host's or zone's name: 1 to 63 of `a-z`, `0-9` and `-`, starting with
/// a letter or digit (a DNS label, as swarm node names are).
pub fn validate_name(what: &str, name: &str) -> Result<()> {
    crate::model::placement::check_name(what, name).map_err(invalid)
}

/// An engine URL mcc can reach: `unix:///absolute/path`, or
/// `tcp://HOST:PORT` with all three TLS files.
pub fn validate_engine(url: &str, tls: Option<&TlsFiles>) -> Result<()> {
    if let Some(path) = url.strip_prefix("unix://") {
        if !path.starts_with('/') || tls.is_some() {
            return Err(invalid(format!(
                "--engine {url}: a socket is unix:///absolute/path, with no TLS files"
            )));
        }
        return Ok(());
    }
    if let Some(rest) = url.strip_prefix("tcp://") {
        let port_ok = rest
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !port_ok {
            return Err(invalid(format!(
                "--engine {url}: write tcp://HOST:PORT, e.g. tcp://10.0.0.2:2376"
            )));
        }
        if tls.is_none() {
            return Err(invalid(format!(
                "--engine {url}: an engine over TCP is reached with TLS only (anyone who \
                 reaches a plain one is root there): give --tls-ca, --tls-cert and --tls-key"
            )));
        }
        return Ok(());
    }
    if url.starts_with("ssh://") {
        return Err(invalid(format!(
            "--engine {url}: ssh is not taken directly; forward the engine's socket (ssh -nNT \
             -L /run/mcc-h2.sock:/var/run/docker.sock HOST) and give unix:///run/mcc-h2.sock"
        )));
    }
    Err(invalid(format!(
        "--engine {url}: give unix:///path/to/docker.sock or tcp://HOST:PORT"
    )))
}

/// `(major, minor)` of an API version such as `1.41`.
fn api_of(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// A manager of the swarm among `hosts` that answers, with its membership.
async fn a_manager(hosts: &[HostEntry]) -> Option<(DockerProvider, SwarmMember)> {
    for h in hosts {
        let Ok(e) = DockerProvider::connect_url(&h.engine, h.tls.as_ref(), LIST_TIMEOUT).await
        else {
            continue;
        };
        if let Ok(SwarmState::Member(m)) = e.swarm().await {
            if m.manager {
                // it answers: from here on, wait for what it is asked
                return Some((e.with_timeout(ACT_TIMEOUT), m));
            }
        }
    }
    None
}

/// What `add` is asked.
#[derive(Clone, Debug, Default)]
pub struct AddHost {
    pub name: String,
    pub engine: String,
    pub zone: Option<String>,
    pub tls: Option<TlsFiles>,
    /// The address the other hosts reach this one at, for the swarm
    /// (the engine's choice when it has one interface).
    pub advertise: Option<String>,
}

/// Adds a host: see the module's text. Refused, naming the value and the
/// fix, before anything is changed.
pub async fn add(file: &HostsFile, req: &AddHost) -> Result<HostView> {
    validate_name("host", &req.name)?;
    if let Some(z) = &req.zone {
        validate_name("zone", z)?;
    }
    validate_engine(&req.engine, req.tls.as_ref())?;
    let _lock = file.lock().await?;
    let mut hosts = file.load()?;
    if let Some(h) = hosts.iter().find(|h| h.name == req.name) {
        return Err(Error::Conflict(format!(
            "host '{}' is listed already (engine {}); `mcc host remove {}` first, or choose \
             another name",
            h.name, h.engine, h.name
        )));
    }
    if let Some(h) = hosts.iter().find(|h| h.engine == req.engine) {
        return Err(Error::Conflict(format!(
            "engine {} is host '{}' already",
            req.engine, h.name
        )));
    }
    let engine = DockerProvider::connect_url(&req.engine, req.tls.as_ref(), ADD_TIMEOUT)
        .await
        .map_err(|e| invalid(format!("host '{}': {e}", req.name)))?
        // it answers: its swarm changes may take longer than that
        .with_timeout(ACT_TIMEOUT);
    let (version, api) = engine.engine_version().await?;
    if api_of(&api).is_none_or(|v| v < MIN_API) {
        return Err(invalid(format!(
            "host '{}': the engine at {} is Docker {version} (API {api}); a host of a \
             multi-host cluster needs Docker 20.10 (API {}.{}) or newer: upgrade it",
            req.name, req.engine, MIN_API.0, MIN_API.1
        )));
    }
    let state = engine.swarm().await?;
    let manager = a_manager(&hosts).await;
    if !hosts.is_empty() && manager.is_none() {
        return Err(Error::Failed(format!(
            "no listed host's engine answers as a swarm manager ({}), so '{}' cannot join \
             their swarm; `mcc host list` shows what is wrong",
            hosts
                .iter()
                .map(|h| h.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            req.name
        )));
    }
    let joined_by_mcc = enter_swarm(&engine, &state, manager.as_ref(), req).await?;
    let member = match engine.swarm().await? {
        SwarmState::Member(m) => m,
        other => {
            return Err(Error::Failed(format!(
                "host '{}' joined the swarm, but its engine now says {other:?}",
                req.name
            )))
        }
    };
    if let Some(z) = &req.zone {
        // through a manager that was one before: a node that has just
        // joined may not act as a manager yet
        let by = manager.as_ref().map(|(e, _)| e).unwrap_or(&engine);
        by.swarm_set_zone(&member.node_id, Some(z)).await?;
    }
    hosts.push(HostEntry {
        name: req.name.clone(),
        engine: req.engine.clone(),
        zone: req.zone.clone(),
        tls: req.tls.clone(),
        node_id: member.node_id.clone(),
        joined_by_mcc,
    });
    file.save(&hosts)?;
    let entry = hosts.last().expect("just pushed");
    Ok(view_of(entry, Ok(engine), Some(version)).await)
}

/// Puts a new host's engine in the listed hosts' swarm (`manager`: one of
/// their managers; none for the first host): adopted as it is when it is a
/// manager of it already, else made the swarm's first manager or joined to
/// it as a manager. Whether mcc made the change (remove undoes only that).
async fn enter_swarm(
    engine: &DockerProvider,
    state: &SwarmState,
    manager: Option<&(DockerProvider, SwarmMember)>,
    req: &AddHost,
) -> Result<bool> {
    match (state, manager) {
        (SwarmState::Other(word), _) => Err(invalid(format!(
            "host '{}': its engine's swarm state is {word}; mend it there (`docker swarm \
             leave --force`) and add it again",
            req.name
        ))),
        (SwarmState::Member(m), Some((_, lead))) if m.cluster_id != lead.cluster_id => {
            Err(invalid(format!(
                "host '{}': its engine is in another swarm ({}) than the listed hosts' ({}); \
             `docker swarm leave` there first",
                req.name, m.cluster_id, lead.cluster_id
            )))
        }
        (SwarmState::Member(m), _) if !m.manager => Err(invalid(format!(
            "host '{}': its engine is a worker of its swarm; make it a manager (`docker \
             node promote`) so that mcc can act on the swarm from it",
            req.name
        ))),
        (SwarmState::Member(_), _) => Ok(false),
        (SwarmState::None, None) => {
            engine.swarm_init(req.advertise.as_deref()).await?;
            Ok(true)
        }
        (SwarmState::None, Some((lead_engine, lead))) => {
            let token = lead_engine.swarm_manager_token().await?;
            engine
                .swarm_join(
                    &token,
                    std::slice::from_ref(&lead.addr),
                    req.advertise.as_deref(),
                )
                .await?;
            Ok(true)
        }
    }
}

/// How a host is now, from its engine (when it answers).
async fn view_of(
    h: &HostEntry,
    engine: Result<DockerProvider>,
    version: Option<String>,
) -> HostView {
    let mut v = HostView {
        name: h.name.clone(),
        engine: h.engine.clone(),
        zone: h.zone.clone(),
        swarm: "-".into(),
        ..Default::default()
    };
    let engine = match engine {
        Ok(e) => e,
        Err(e) => {
            v.problem = Some(e.to_string());
            return v;
        }
    };
    v.reachable = true;
    v.version = match version {
        Some(x) => Some(x),
        None => engine.engine_version().await.ok().map(|(x, _)| x),
    };
    match engine.swarm().await {
        Ok(SwarmState::Member(m)) => {
            v.swarm = match (m.manager, m.leader) {
                (_, true) => "leader",
                (true, false) => "manager",
                (false, _) => "worker",
            }
            .into();
            if m.zone.is_some() {
                v.zone = m.zone;
            }
            if !h.node_id.is_empty() && m.node_id != h.node_id {
                v.problem = Some(format!(
                    "its engine is swarm node {} now, not {} as listed (it left and joined \
                     again?); `mcc host remove {}` and add it again",
                    m.node_id, h.node_id, h.name
                ));
            }
        }
        Ok(SwarmState::None) => {
            v.swarm = "none".into();
            v.problem = Some("its engine has left the swarm".into());
        }
        Ok(SwarmState::Other(word)) => v.swarm = word,
        Err(e) => v.problem = Some(e.to_string()),
    }
    match engine.containers(labels::CLUSTER, None).await {
        Ok(list) => {
            for c in list {
                if let Some(cluster) = c.labels.get(labels::CLUSTER) {
                    *v.clusters.entry(cluster.clone()).or_default() += 1;
                }
            }
        }
        Err(e) => v.problem = v.problem.or(Some(e.to_string())),
    }
    v
}

/// Every listed host, each asked at once (a lost one takes its timeout,
/// not the others'), and as the swarm's managers see it: a host they have
/// lost (its link cut, its machine gone) is `down` even when its own
/// engine answers mcc.
pub async fn list(file: &HostsFile) -> Result<Vec<HostView>> {
    let hosts = file.load()?;
    let views = futures_util::future::join_all(hosts.iter().map(|h| async move {
        let e = DockerProvider::connect_url(&h.engine, h.tls.as_ref(), LIST_TIMEOUT).await;
        view_of(h, e, None).await
    }));
    let (mut views, seen) = tokio::join!(views, seen_by_the_swarm(&hosts));
    for (v, h) in views.iter_mut().zip(&hosts) {
        let Some(n) = seen.iter().find(|n| n.node_id == h.node_id) else {
            continue;
        };
        if n.lost() {
            let manager = n
                .manager
                .as_ref()
                .map(|m| format!(", manager {m}"))
                .unwrap_or_default();
            let own = v
                .problem
                .take()
                .map(|p| format!("; its engine: {p}"))
                .unwrap_or_default();
            v.swarm = "down".into();
            v.problem = Some(format!(
                "the swarm's managers have lost it (node {}{manager}): its link is cut or its \
                 machine is down, and the other hosts' nodes cannot reach the nodes on it{own}",
                n.state
            ));
        }
    }
    Ok(views)
}

/// The swarm's nodes as the first host whose side of the swarm has a
/// leader says (hosts asked at once); none when no host can say.
async fn seen_by_the_swarm(hosts: &[HostEntry]) -> Vec<crate::provider::swarm::SwarmNodeSeen> {
    let asked = futures_util::future::join_all(hosts.iter().map(|h| async move {
        let e = DockerProvider::connect_url(&h.engine, h.tls.as_ref(), LIST_TIMEOUT).await?;
        e.swarm_nodes().await
    }))
    .await;
    asked.into_iter().find_map(|a| a.ok()).unwrap_or_default()
}

/// Waits until `engine` itself knows it is a worker now: a demotion goes
/// through the managers' log, and a manager that leaves before it has is
/// refused (or, forced, costs the swarm a manager's vote).
async fn wait_demoted(engine: &DockerProvider, name: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        // while it is demoted, its engine may fail a question about the
        // swarm (its manager's connection closing: "Canceled … the client
        // connection is closing"): asked again, until the deadline
        let why = match engine.swarm().await {
            Ok(SwarmState::Member(m)) if m.manager => "its engine still acts as a manager".into(),
            Ok(_) => return Ok(()),
            Err(e) => format!("its engine answers: {e}"),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Failed(format!(
                "host '{name}' was demoted, but after 30 s {why}; `mcc host remove {name}` \
                 again"
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Removes a host from the list (and from the swarm, when mcc put it
/// there). Refused while its engine runs nodes of a cluster, naming them.
pub async fn remove(file: &HostsFile, name: &str) -> Result<HostEntry> {
    let _lock = file.lock().await?;
    let mut hosts = file.load()?;
    let h = take(&mut hosts, name)?;
    let engine = DockerProvider::connect_url(&h.engine, h.tls.as_ref(), LIST_TIMEOUT)
        .await
        .ok()
        // it answers: its swarm changes may take longer than that
        .map(|e| e.with_timeout(ACT_TIMEOUT));
    if engine.is_none() {
        // whether it runs nodes cannot be told: the user says what it is
        return Err(Error::Failed(format!(
            "host '{name}' does not answer at {}, so mcc cannot tell whether it runs nodes; \
             start its engine, or if it is gone for good, `mcc host remove {name} --lost`",
            h.engine
        )));
    }
    if let Some(e) = &engine {
        let nodes: Vec<String> = e
            .containers(labels::CLUSTER, None)
            .await?
            .into_iter()
            .map(|c| c.name)
            .collect();
        if !nodes.is_empty() {
            return Err(Error::Conflict(format!(
                "host '{name}' holds nodes of clusters: {}; delete those clusters (or move \
                 the nodes) first",
                nodes.join(", ")
            )));
        }
    }
    if h.joined_by_mcc && !h.node_id.is_empty() {
        let other = a_manager(&hosts).await;
        if let (Some((m, _)), Some(e)) = (&other, &engine) {
            // a manager that leaves first stops counting in the quorum
            m.swarm_demote(&h.node_id).await?;
            wait_demoted(e, name).await?;
        }
        if let Some(e) = &engine {
            e.swarm_leave(other.is_none()).await?;
        }
        if let Some((m, _)) = &other {
            m.swarm_remove_node(&h.node_id).await?;
        }
    }
    file.save(&hosts)?;
    Ok(h)
}

/// Host `name` taken out of `hosts`; not found when it is not listed.
fn take(hosts: &mut Vec<HostEntry>, name: &str) -> Result<HostEntry> {
    let at = hosts.iter().position(|h| h.name == name).ok_or_else(|| {
        Error::NotFound(format!(
            "no host '{name}' (`mcc host list` shows the hosts)"
        ))
    })?;
    Ok(hosts.remove(at))
}

/// Removes a host that is gone for good: refused while its engine
/// answers (then it is not lost: [`remove`] it). Through another host, a
/// manager, it is demoted and taken out of the swarm whoever put it there,
/// which frees what the swarm held for it (its nodes' overlay addresses),
/// so that those nodes can be made again elsewhere (`recreate --host`).
pub async fn remove_lost(file: &HostsFile, name: &str) -> Result<HostEntry> {
    let _lock = file.lock().await?;
    let mut hosts = file.load()?;
    let h = take(&mut hosts, name)?;
    if DockerProvider::connect_url(&h.engine, h.tls.as_ref(), LIST_TIMEOUT)
        .await
        .is_ok()
    {
        return Err(invalid(format!(
            "host '{name}' answers at {}: it is not lost; `mcc host remove {name}` without \
             --lost",
            h.engine
        )));
    }
    if !h.node_id.is_empty() {
        let Some((m, _)) = a_manager(&hosts).await else {
            return Err(Error::Failed(format!(
                "host '{name}': no other host of the swarm answers, and one must take it out"
            )));
        };
        let m = m.with_timeout(ACT_TIMEOUT);
        m.swarm_demote(&h.node_id).await?;
        m.swarm_remove_node(&h.node_id).await?;
    }
    file.save(&hosts)?;
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn names_and_urls_are_checked_with_their_fix() {
        assert!(validate_name("host", "h1").is_ok());
        assert!(validate_name("zone", "zone-a").is_ok());
        for bad in ["", "-a", "A", "a_b", "a.b", &"x".repeat(64)] {
            assert!(validate_name("host", bad).is_err(), "{bad}");
        }
        let tls = TlsFiles {
            ca: "ca.pem".into(),
            cert: "cert.pem".into(),
            key: "key.pem".into(),
        };
        assert!(validate_engine("unix:///run/h1.sock", None).is_ok());
        assert!(validate_engine("tcp://10.0.0.2:2376", Some(&tls)).is_ok());
        for (url, says) in [
            ("unix://relative.sock", "absolute"),
            ("tcp://10.0.0.2:2376", "TLS only"),
            ("tcp://10.0.0.2", "HOST:PORT"),
            ("ssh://root@h2", "forward"),
            ("http://h2", "unix:///"),
        ] {
            let e = validate_engine(url, None).unwrap_err().to_string();
            assert!(e.contains(says) && e.contains(url), "{url}: {e}");
        }
    }

    #[test]
    fn api_versions_compare_as_numbers() {
        assert!(api_of("1.41").unwrap() >= MIN_API);
        assert!(api_of("1.100").unwrap() >= MIN_API);
        assert!(api_of("1.40").unwrap() < MIN_API);
        assert!(api_of("x").is_none());
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mcc-hosts-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn the_list_round_trips_through_a_private_file() {
        let d = temp_dir("rt");
        let f = HostsFile::at(d.join("mcc").join("hosts.json"));
        assert_eq!(f.load().unwrap(), Vec::new());
        let h = HostEntry {
            name: "h1".into(),
            engine: "unix:///run/h1.sock".into(),
            zone: Some("a".into()),
            tls: None,
            node_id: "n1".into(),
            joined_by_mcc: true,
        };
        f.save(std::slice::from_ref(&h)).unwrap();
        assert_eq!(f.load().unwrap(), vec![h]);
        let mode =
            std::os::unix::fs::MetadataExt::mode(&std::fs::metadata(f.path()).unwrap()) & 0o777;
        assert_eq!(mode, 0o600);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_link_or_a_file_others_can_write_is_not_trusted() {
        let d = temp_dir("trust");
        let real = d.join("real.json");
        std::fs::write(&real, r#"{"hosts":[]}"#).unwrap();
        std::fs::set_permissions(&real, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let link = d.join("hosts.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let e = HostsFile::at(link).load().unwrap_err().to_string();
        assert!(e.contains("not trusted"), "{e}");
        std::fs::set_permissions(&real, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .unwrap();
        let e = HostsFile::at(real).load().unwrap_err().to_string();
        assert!(e.contains("mode 666"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
