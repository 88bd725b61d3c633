//! Running commands on nodes: `exec` on many at once, `enter` on one, and
//! reading the context logs.

use std::str::FromStr;

use futures_util::StreamExt;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::parallel::{run_all, PARALLELISM};
use super::Clusters;
use crate::context;
use crate::error::{Error, Result};
use crate::model::{ClusterName, NodeId, Role};
use crate::provider::{Chunk, ExecSpec};

/// Which nodes a command runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    All,
    Frontend,
    Workers,
    Nodes(Vec<NodeId>),
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "all" => Ok(Target::All),
            "frontend" => Ok(Target::Frontend),
            "workers" => Ok(Target::Workers),
            list => list
                .split(',')
                .map(|n| {
                    NodeId::parse_hostname(n.trim()).ok_or_else(|| {
                        format!(
                            "--on '{s}': '{n}' is not a node; use all, frontend, workers, or \
                             node names such as node01,node03"
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Target::Nodes),
        }
    }
}

/// One line a command printed on a node.
#[derive(Clone, Debug)]
pub struct OutputLine<'a> {
    pub node: &'a str,
    pub stderr: bool,
    pub text: &'a str,
}

#[derive(Clone, Debug, Serialize)]
pub struct ExecReport {
    /// Per node: its exit code, or why the command could not run.
    pub results: Vec<(String, std::result::Result<i64, String>)>,
}

impl ExecReport {
    pub fn failed(&self) -> Vec<&(String, std::result::Result<i64, String>)> {
        self.results.iter().filter(|(_, r)| *r != Ok(0)).collect()
    }
}

impl Clusters {
    /// Runs `cmd` on the target nodes in parallel, streaming their output
    /// line by line to `on_line`.
    pub async fn exec(
        &self,
        name: &ClusterName,
        target: &Target,
        cmd: &[String],
        on_line: &(dyn Fn(OutputLine<'_>) + Send + Sync),
    ) -> Result<ExecReport> {
        let loaded = self.load_existing(name).await?;
        let chosen: Vec<&super::NodeContainer> = match target {
            Target::All => loaded.nodes.iter().collect(),
            Target::Frontend => loaded
                .nodes
                .iter()
                .filter(|n| n.node.role == Role::Frontend)
                .collect(),
            Target::Workers => loaded
                .nodes
                .iter()
                .filter(|n| n.node.role == Role::Worker)
                .collect(),
            Target::Nodes(list) => {
                let mut v = Vec::new();
                for n in list {
                    v.push(loaded.node(*n).ok_or_else(|| {
                        Error::Invalid(format!("cluster '{name}' has no node {n}"))
                    })?);
                }
                v
            }
        };
        if chosen.is_empty() {
            return Err(Error::Invalid(format!(
                "cluster '{name}' has no node to run on"
            )));
        }
        let never = CancellationToken::new();
        let results = run_all(chosen, PARALLELISM, &never, |n| async move {
            let host = n.node.hostname();
            if !n.running() {
                return Ok((host, Err(format!("node is {}", n.info.state.as_str()))));
            }
            let spec = ExecSpec {
                cmd: cmd.to_vec(),
                ..Default::default()
            };
            let r = self
                .run_streaming(&n.info.name, &host, &spec, on_line)
                .await;
            Ok((host, r.map_err(|e| e.to_string())))
        })
        .await;
        Ok(ExecReport {
            results: results.into_iter().collect::<Result<_>>()?,
        })
    }

    async fn run_streaming(
        &self,
        container: &str,
        node: &str,
        spec: &ExecSpec,
        on_line: &(dyn Fn(OutputLine<'_>) + Send + Sync),
    ) -> Result<i64> {
        let mut attached = self.provider.exec_attach(container, spec).await?;
        drop(attached.input);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let emit = |buf: &mut Vec<u8>, stderr: bool, all: bool| {
            while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=pos).collect();
                let text = String::from_utf8_lossy(&line[..line.len() - 1]);
                on_line(OutputLine {
                    node,
                    stderr,
                    text: text.trim_end_matches('\r'),
                });
            }
            if all && !buf.is_empty() {
                let text = String::from_utf8_lossy(buf).into_owned();
                on_line(OutputLine {
                    node,
                    stderr,
                    text: &text,
                });
                buf.clear();
            }
        };
        while let Some(chunk) = attached.output.next().await {
            match chunk? {
                Chunk::Stdout(b) => {
                    out.extend_from_slice(&b);
                    emit(&mut out, false, false);
                }
                Chunk::Stderr(b) => {
                    err.extend_from_slice(&b);
                    emit(&mut err, true, false);
                }
            }
        }
        emit(&mut out, false, true);
        emit(&mut err, true, true);
        self.provider.exec_exit_code(&attached.id).await
    }

    /// The container of a node, checked to be running, for `enter`.
    pub(crate) async fn running_container(
        &self,
        name: &ClusterName,
        node: NodeId,
    ) -> Result<String> {
        let loaded = self.load_existing(name).await?;
        let n = loaded.node(node).ok_or_else(|| {
            let have: Vec<String> = loaded.nodes.iter().map(|n| n.node.hostname()).collect();
            Error::Invalid(format!(
                "cluster '{name}' has no node {node}; its nodes are: {}",
                have.join(", ")
            ))
        })?;
        if !n.running() {
            return Err(Error::Failed(format!(
                "node {node} of '{name}' is {}; start it with `mcc start {name}`",
                n.info.state.as_str()
            )));
        }
        Ok(n.info.name.clone())
    }

    /// What the context scripts printed, per node, read from the meta
    /// volume (so it works while nodes are stopped).
    pub async fn logs(
        &self,
        name: &ClusterName,
        node: Option<NodeId>,
    ) -> Result<Vec<(String, String)>> {
        let loaded = self.load_existing(name).await?;
        let legacy = loaded.record()?.legacy_layout();
        if let Some(n) = node {
            if loaded.node(n).is_none() {
                return Err(Error::Invalid(format!("cluster '{name}' has no node {n}")));
            }
        }
        if legacy {
            let Some(tar) = self.store.read(name, context::LEGACY_LOGS_DIR).await? else {
                return Ok(Vec::new());
            };
            let mut logs = context::logs_from_archive(&tar)?;
            if let Some(n) = node {
                logs.retain(|(h, _)| *h == n.hostname());
            }
            return Ok(logs);
        }
        // Each node keeps its own log (no other node can write it); read
        // from its container, running or not. The node's root may have
        // made it anything: only a regular file is read, as text to show.
        let mut logs = Vec::new();
        for n in loaded
            .nodes
            .iter()
            .filter(|n| node.is_none_or(|x| x == n.node))
        {
            match self
                .provider
                .download(&n.info.name, context::NODE_LOG)
                .await
            {
                Ok(tar) => logs.push((n.node.hostname(), context::single_file_text(&tar)?)),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(logs)
    }

    /// The last lines each node's scripts printed (of `nodes`, or all),
    /// prefixed by the node, for an error that outlives the nodes; what
    /// cannot be read is left out.
    pub(crate) async fn script_tails(
        &self,
        name: &ClusterName,
        nodes: Option<&[NodeId]>,
    ) -> String {
        const LINES: usize = 5;
        let Ok(logs) = self.logs(name, None).await else {
            return String::new();
        };
        let mut out = String::new();
        for (host, mut text) in logs {
            if nodes.is_some_and(|ns| !ns.iter().any(|n| n.hostname() == host)) {
                continue;
            }
            // what the script that hangs has printed is not in the log yet
            // (the container is named as `ClusterName::container` names it)
            let container = format!("{name}-{host}");
            if let Ok(tar) = self
                .provider
                .download(&container, context::NODE_RUNNING_OUTPUT)
                .await
            {
                text.push_str(&context::single_file_text(&tar).unwrap_or_default());
            }
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            for l in &lines[lines.len().saturating_sub(LINES)..] {
                out.push_str(&format!("    {host} | {l}\n"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!("all".parse::<Target>().unwrap(), Target::All);
        assert_eq!("workers".parse::<Target>().unwrap(), Target::Workers);
        assert_eq!(
            "node01,node03".parse::<Target>().unwrap(),
            Target::Nodes(vec![NodeId::worker(1), NodeId::worker(3)])
        );
        assert_eq!(
            "frontend,node2".parse::<Target>().unwrap(),
            Target::Nodes(vec![NodeId::FRONTEND, NodeId::worker(2)])
        );
        let err = "node01,bogus".parse::<Target>().unwrap_err();
        assert!(err.contains("'bogus'"), "{err}");
    }
}
