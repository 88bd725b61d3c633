//! Dynamic shell completion: cluster and node names, read from the engine
//! when the shell asks (`source <(COMPLETE=bash mcc)`). Never an error and
//! never a long wait: with no answer within three seconds, nothing is offered.

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::Duration;

use clap_complete::engine::CompletionCandidate;
use mcc_core::cluster::{Clusters, Silent};
use mcc_core::model::ClusterName;

/// Runs `f` against the engine, giving up after three seconds.
fn ask<T>(f: impl AsyncFnOnce(Clusters) -> Option<T>) -> Option<T> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(3), async {
            let p = mcc_core::provider::connect().await.ok()?;
            f(Clusters::new(p, Arc::new(Silent))).await
        })
        .await
        .ok()
        .flatten()
    })
}

fn matching(current: &OsStr, names: impl IntoIterator<Item = String>) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy();
    names
        .into_iter()
        .filter(|n| n.starts_with(prefix.as_ref()))
        .map(CompletionCandidate::new)
        .collect()
}

/// The clusters on the engine.
pub fn clusters(current: &OsStr) -> Vec<CompletionCandidate> {
    let names = ask(async |c| c.names().await.ok()).unwrap_or_default();
    matching(current, names.into_iter().map(|n| n.to_string()))
}

/// The cluster named on the command line being completed: the first word
/// after the subcommand that is not an option.
fn cluster_on_line() -> Option<ClusterName> {
    let args: Vec<String> = std::env::args().collect();
    let verbs = ["enter", "exec", "delnode", "recreate", "logs"];
    let at = args.iter().position(|a| verbs.contains(&a.as_str()))?;
    let mut rest = args[at + 1..].iter();
    while let Some(a) = rest.next() {
        if a == "--on" {
            rest.next();
        } else if !a.starts_with('-') {
            return a.parse().ok();
        }
    }
    None
}

/// The nodes of the cluster on the command line.
pub fn nodes(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(name) = cluster_on_line() else {
        return Vec::new();
    };
    let nodes = ask(async |c| c.node_names(&name).await.ok()).unwrap_or_default();
    matching(current, nodes.iter().map(|n| n.hostname()))
}

/// What `exec --on` takes: the groups, then the nodes.
pub fn targets(current: &OsStr) -> Vec<CompletionCandidate> {
    let mut out = matching(current, ["all", "frontend", "workers"].map(String::from));
    out.extend(
        nodes(current)
            .into_iter()
            .filter(|c| c.get_value() != "frontend"),
    );
    out
}
