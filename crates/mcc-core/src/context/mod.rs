//! Contextualization: shipping a context folder into a cluster and running
//! its scripts on the nodes.
//!
//! What mcc writes lives on the cluster's meta volume, mounted read-only at
//! `/opt/mcc` on every node: `hosts` (bound onto `/etc/hosts`), `nodes`
//! (the workers' names for the scripts), `bin/run-context` (the runner)
//! and `context/` (the user's folder); clusters of schema 2 also have
//! `members` and `state/` there (the index volume's labels since). No node can change any of it: a node's
//! root is the user's test subject, and what mcc reads as truth, runs on
//! other nodes or has the engine bind from the host must not be in its
//! reach. What nodes write goes to a second volume, mounted writable at
//! `/opt/mcc/shared` (`MCC_SHARED`): the user's shared files, and under
//! `.mcc/` the scripts' logs and the runs' outcomes, which mcc only shows.

use std::path::Path;

use crate::error::{Error, Result};
use crate::model::{NodeId, Role, META_MOUNT};
use crate::provider::{exec_collect, Engine, ExecSpec};

mod pack;
mod upload;
pub use pack::{check_folder, Folder};
pub use upload::{pack_folder, unpack_folder, MAX_UPLOAD};

const RUNNER: &str = include_str!("runner.sh");

pub use crate::model::paths::SHARED_MOUNT;
/// The scripts' log, on each node itself (no other node can write it).
pub const NODE_LOG: &str = "/var/log/mcc/context.log";
/// The output so far of the script a node is running (`runner.sh` adds it
/// to [`NODE_LOG`] when the script ends).
pub const NODE_RUNNING_OUTPUT: &str = "/var/log/mcc/current";
/// Where clusters made before schema 2 kept their logs.
pub const LEGACY_LOGS_DIR: &str = "/opt/mcc/logs";
const FAILED_MARKER: &str = "mcc-context-failed\t";
const END_MARKER: &str = "mcc-context-end";
const OK_MARKER: &str = "mcc-context-ok";
const SKIPPED_MARKER: &str = "mcc-context-skipped";

/// The command of a node that mcc keeps alive and that runs its creation
/// phases itself, at its first start: no exec per node, which costs the
/// engine as much as starting a container. Fixed text: nothing from the
/// user is in it.
pub const BOOT_AND_KEEPALIVE: &str = "trap 'exit 0' TERM INT; \
     if [ -e /.mcc-context-done ]; then sh /opt/mcc/bin/run-context --restart; \
     else sh /opt/mcc/bin/run-context --boot; fi; \
     while :; do sleep 3600 & wait $!; done";

/// Where a node that runs its context at boot reports how its `on-start`
/// scripts went at a later start: `runs/<node>.start` on the shared volume,
/// `<n> ok` or `<n> failed\t<script>\t<code>`, where `n` counts the
/// starts. mcc never writes there (a node may have made any path of that
/// volume a link): it reads the count before a start and waits for a
/// higher one.
pub const RUNS_DIR: &str = "/opt/mcc/shared/.mcc/runs";

/// What a boot run printed so far: finished (well or not), or not yet.
fn boot_outcome(node: &str, text: &str) -> Option<Result<()>> {
    if text.contains(OK_MARKER) {
        Some(Ok(()))
    } else if text.contains(SKIPPED_MARKER) {
        // the front-end's scripts failed; that failure is reported
        Some(Err(Error::Interrupted))
    } else if text.contains(FAILED_MARKER) && text.contains(END_MARKER) {
        Some(Err(parse_failure(node, 1, text)))
    } else {
        None
    }
}

/// Waits for the creation phases that a node runs at its first start
/// (see [`BOOT_AND_KEEPALIVE`]) by following its output.
pub async fn await_boot_run(provider: &dyn Engine, container: &str, node: NodeId) -> Result<()> {
    use futures_util::StreamExt;
    let host = node.hostname();
    let mut stream = provider.follow_logs(container);
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        match chunk? {
            crate::provider::Chunk::Stdout(b) | crate::provider::Chunk::Stderr(b) => {
                text.push_str(&String::from_utf8_lossy(&b))
            }
        }
        if let Some(outcome) = boot_outcome(&host, &text) {
            return outcome;
        }
    }
    Err(Error::Failed(format!(
        "node {host} ({container}) stopped while running its context scripts; \
         `mcc logs CLUSTER {host}` shows its output (a create keeps the node for that with \
         --keep-on-failure)"
    )))
}

/// The tar archive that seeds a cluster's meta volume: the hosts file,
/// the workers' names (`nodes`, read by the runner at boot),
/// the runner, the mount point of the shared volume, and the context
/// folder, and `extra` files (path, content, mode). Reads the folder: call
/// it off the async runtime.
pub fn meta_archive(
    hosts: &str,
    workers: &[NodeId],
    context: Option<&Path>,
    extra: &[MetaFile],
) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    b.mode(tar::HeaderMode::Deterministic);
    let io = |e: std::io::Error| Error::Failed(format!("packing the cluster's files: {e}"));
    append_file(&mut b, "hosts", hosts.as_bytes(), 0o644).map_err(io)?;
    append_file(&mut b, "nodes", nodes_file(workers).as_bytes(), 0o644).map_err(io)?;
    append_file(&mut b, "bin/run-context", RUNNER.as_bytes(), 0o755).map_err(io)?;
    // `shared` is where the shared volume is mounted (in the record
    // container too, so this sets its root's mode: writable by all, as /tmp)
    append_dir(&mut b, "shared", 0o1777).map_err(io)?;
    append_dir(&mut b, "context", 0o755).map_err(io)?;
    if let Some(ctx) = context {
        pack::append_context(&mut b, ctx, "context")?;
    }
    append_meta_files(&mut b, extra).map_err(io)?;
    b.into_inner().map_err(io)
}

/// A file mcc puts in the meta volume: its path there, content and mode.
pub type MetaFile = (String, String, u32);

/// A tar archive of meta files, their folders made first (0755).
pub fn meta_files_archive(files: &[MetaFile]) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let io = |e: std::io::Error| Error::Failed(format!("packing the cluster's files: {e}"));
    append_meta_files(&mut b, files).map_err(io)?;
    b.into_inner().map_err(io)
}

fn append_meta_files(b: &mut tar::Builder<Vec<u8>>, files: &[MetaFile]) -> std::io::Result<()> {
    let mut dirs: Vec<&str> = Vec::new();
    for (path, content, mode) in files {
        let mut at = 0;
        while let Some(i) = path[at..].find('/') {
            let dir = &path[..at + i];
            if !dirs.contains(&dir) {
                append_dir(b, dir, 0o755)?;
                dirs.push(dir);
            }
            at += i + 1;
        }
        append_file(b, path, content.as_bytes(), *mode)?;
    }
    Ok(())
}

/// The first content of the shared volume: mcc's folders for the scripts'
/// logs and the runs' outcomes.
pub fn shared_archive() -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let io = |e: std::io::Error| Error::Failed(format!("packing the shared folder: {e}"));
    for dir in [".mcc", ".mcc/runs"] {
        append_dir(&mut b, dir, 0o1777).map_err(io)?;
    }
    b.into_inner().map_err(io)
}

/// File of a schema 2 cluster's meta volume listing its members.
pub const MEMBERS_FILE: &str = "members";

/// File of the meta volume of a cluster over hosts: the host each node
/// was placed on (JSON, node name -> host), so that a node whose host no
/// longer answers is still known to be there.
pub const PLACEMENTS_FILE: &str = "placements";

/// A tar archive holding one file.
pub fn file_archive(name: &str, content: &str) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let io = |e: std::io::Error| Error::Failed(format!("packing {name}: {e}"));
    append_file(&mut b, name, content.as_bytes(), 0o644).map_err(io)?;
    b.into_inner().map_err(io)
}

pub(crate) fn append_file(
    b: &mut tar::Builder<Vec<u8>>,
    path: &str,
    data: &[u8],
    mode: u32,
) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mtime(now());
    h.set_cksum();
    b.append_data(&mut h, path, data)
}

pub(crate) fn append_dir(
    b: &mut tar::Builder<Vec<u8>>,
    path: &str,
    mode: u32,
) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_mode(mode);
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mtime(now());
    h.set_cksum();
    b.append_data(&mut h, path, std::io::empty())
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The `nodes` file: the workers' hostnames, space-separated (MCC_NODES).
pub fn nodes_file(workers: &[NodeId]) -> String {
    let names: Vec<String> = workers.iter().map(NodeId::hostname).collect();
    format!("{}\n", names.join(" "))
}

/// The environment context scripts get.
pub fn script_env(cluster: &str, node: NodeId, workers: &[NodeId]) -> Vec<String> {
    let nodes: Vec<String> = workers.iter().map(NodeId::hostname).collect();
    vec![
        format!("MCC_CLUSTER={cluster}"),
        format!("MCC_ROLE={}", node.role.as_str()),
        format!("MCC_NODE={}", node.hostname()),
        format!("MCC_NODES={}", nodes.join(" ")),
        format!("MCC_FRONTEND={}", NodeId::FRONTEND.hostname()),
        format!("MCC_SHARED={SHARED_MOUNT}"),
        format!("MCC_CONTEXT={META_MOUNT}/context"),
    ]
}

/// The phases a node runs when it is created: `all`, then its role's,
/// then what runs at every start.
pub fn creation_phases(role: Role) -> Vec<&'static str> {
    vec!["all", role.context_dir(), ON_START]
}

/// The phase that runs at every start of a node (services a context
/// started, which a restart stops).
pub const ON_START: &str = "on-start";

/// The start number of a node's `.start` report (0 when there is none).
pub fn start_number(text: &str) -> u64 {
    text.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// How a node's `on-start` went, from its `.start` file, if the report is
/// of a start after the one numbered `before`.
pub fn start_outcome(node: &str, text: &str, before: u64) -> Option<Result<()>> {
    if start_number(text) <= before {
        return None;
    }
    let text = text.trim();
    let (_, outcome) = text.split_once(' ')?;
    if outcome == "ok" {
        return Some(Ok(()));
    }
    let rest = outcome.strip_prefix("failed")?;
    let mut f = rest.trim_start_matches('\t').splitn(2, '\t');
    let script = f.next().unwrap_or("").to_string();
    let code = f.next().and_then(|c| c.trim().parse().ok()).unwrap_or(1);
    Some(Err(Error::ScriptFailed {
        node: node.to_string(),
        script,
        code,
        tail: format!("(its output: `mcc logs CLUSTER {node}`)"),
    }))
}

/// Runs the given phases of the context on one node; a failing script
/// becomes [`Error::ScriptFailed`] with its name, exit code and last lines.
pub async fn run_phases(
    provider: &dyn Engine,
    container: &str,
    node: NodeId,
    env: Vec<String>,
    phases: &[&str],
) -> Result<()> {
    let mut cmd = vec![
        "/bin/sh".to_string(),
        format!("{META_MOUNT}/bin/run-context"),
    ];
    cmd.extend(phases.iter().map(|p| p.to_string()));
    let spec = ExecSpec {
        cmd,
        env,
        user: Some("0".into()),
        ..Default::default()
    };
    let (code, out) = exec_collect(provider, container, &spec)
        .await
        .map_err(|e| {
            Error::Failed(format!(
                "cannot run the context on {}: {e} (the image needs /bin/sh)",
                node.hostname()
            ))
        })?;
    if code == 0 {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out);
    Err(parse_failure(&node.hostname(), code, &text))
}

fn parse_failure(node: &str, code: i64, text: &str) -> Error {
    match text.find(FAILED_MARKER) {
        Some(at) => {
            let rest = &text[at + FAILED_MARKER.len()..];
            let (first, tail) = rest.split_once('\n').unwrap_or((rest, ""));
            let tail = tail.split(END_MARKER).next().unwrap_or(tail);
            let (script, code_text) = first.split_once('\t').unwrap_or((first, ""));
            Error::ScriptFailed {
                node: node.to_string(),
                script: script.to_string(),
                code: code_text.trim().parse().unwrap_or(code),
                tail: tail.trim_end().to_string(),
            }
        }
        None => Error::ScriptFailed {
            node: node.to_string(),
            script: "(runner)".to_string(),
            code,
            tail: text.trim_end().to_string(),
        },
    }
}

/// The text of the one file in a tar archive (empty unless it is a
/// regular file).
pub fn single_file_text(tar_bytes: &[u8]) -> Result<String> {
    let mut archive = tar::Archive::new(tar_bytes);
    let bad = |e: std::io::Error| Error::Failed(format!("reading a file of the meta volume: {e}"));
    let mut entries = archive.entries().map_err(bad)?;
    let mut text = String::new();
    if let Some(entry) = entries.next() {
        let mut entry = entry.map_err(bad)?;
        if entry.header().entry_type().is_file() {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).map_err(bad)?;
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    Ok(text)
}

/// Splits a tar of `/opt/mcc/logs` into `(node, text)` pairs, by node name.
pub fn logs_from_archive(tar_bytes: &[u8]) -> Result<Vec<(String, String)>> {
    logs_from_archive_with(tar_bytes, ".log")
}

/// Splits a tar of per-node files named `<node><suffix>` into
/// `(node, text)` pairs, by node name. Only regular files are read.
pub fn logs_from_archive_with(tar_bytes: &[u8], suffix: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(tar_bytes);
    let entries = archive
        .entries()
        .map_err(|e| Error::Failed(format!("reading logs: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::Failed(format!("reading logs: {e}")))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map(|p| p.into_owned()).unwrap_or_default();
        let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        let Some(node) = file.strip_suffix(suffix) else {
            continue;
        };
        if node.starts_with('.') {
            continue;
        }
        let mut text = String::new();
        std::io::Read::read_to_string(&mut entry, &mut text)
            .map_err(|e| Error::Failed(format!("reading log of {node}: {e}")))?;
        out.push((node.to_string(), text));
    }
    out.sort_by_key(|(n, _)| NodeId::parse_hostname(n));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_report_is_parsed() {
        let out = "noise\nmcc-context-failed\tworkers/20-slurm\t3\nline a\nline b\n";
        match parse_failure("node02", 3, out) {
            Error::ScriptFailed {
                node,
                script,
                code,
                tail,
            } => {
                assert_eq!(node, "node02");
                assert_eq!(script, "workers/20-slurm");
                assert_eq!(code, 3);
                assert_eq!(tail, "line a\nline b");
            }
            other => panic!("{other:?}"),
        }
        let e = parse_failure("frontend", 127, "sh: not found\n");
        assert!(e.to_string().contains("exit code 127"), "{e}");
        assert!(e.to_string().contains("sh: not found"), "{e}");
    }

    #[test]
    fn boot_runs_are_read_from_the_output() {
        assert!(boot_outcome("node01", "").is_none());
        assert!(matches!(
            boot_outcome("node01", "mcc-context-ok\n"),
            Some(Ok(()))
        ));
        assert!(matches!(
            boot_outcome("node01", "mcc-context-skipped\n"),
            Some(Err(Error::Interrupted))
        ));
        let partial = "mcc-context-failed\tall/10-x\t4\nlast words\n";
        assert!(
            boot_outcome("node01", partial).is_none(),
            "wait for the end marker"
        );
        let done = format!("{partial}mcc-context-end\n");
        match boot_outcome("node01", &done) {
            Some(Err(Error::ScriptFailed {
                script, code, tail, ..
            })) => {
                assert_eq!(
                    (script.as_str(), code, tail.as_str()),
                    ("all/10-x", 4, "last words")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn start_reports_count_starts() {
        assert_eq!(start_number(""), 0);
        assert_eq!(start_number("3 ok\n"), 3);
        assert!(
            start_outcome("node01", "3 ok\n", 3).is_none(),
            "an old report"
        );
        assert!(matches!(start_outcome("node01", "4 ok\n", 3), Some(Ok(()))));
        match start_outcome("node01", "4 failed\ton-start/10-x\t5\n", 3) {
            Some(Err(Error::ScriptFailed { script, code, .. })) => {
                assert_eq!((script.as_str(), code), ("on-start/10-x", 5))
            }
            other => panic!("{other:?}"),
        }
        assert!(start_outcome("node01", "garbage", 0).is_none());
    }

    #[test]
    fn env_names_the_cluster() {
        let env = script_env(
            "lab",
            NodeId::worker(2),
            &[NodeId::worker(1), NodeId::worker(2)],
        );
        assert!(env.contains(&"MCC_ROLE=worker".to_string()));
        assert!(env.contains(&"MCC_NODE=node02".to_string()));
        assert!(env.contains(&"MCC_NODES=node01 node02".to_string()));
        assert!(env.contains(&"MCC_FRONTEND=frontend".to_string()));
    }

    #[test]
    fn archive_holds_hosts_runner_and_context() {
        let dir = std::env::temp_dir().join(format!("mcc-ctx-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("all")).unwrap();
        std::fs::write(dir.join("all/10-x"), "echo hi\n").unwrap();
        let bytes = meta_archive(
            "127.0.0.1 localhost\n",
            &[NodeId::worker(1)],
            Some(&dir),
            &[("docker/client/key.pem".into(), "k".into(), 0o600)],
        )
        .unwrap();
        let mut names: Vec<String> = tar::Archive::new(bytes.as_slice())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for want in [
            "hosts",
            "nodes",
            "bin/run-context",
            "context/all/10-x",
            "shared",
        ] {
            assert!(
                names.iter().any(|n| n.trim_end_matches('/') == want),
                "{want} in {names:?}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
