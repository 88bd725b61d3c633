//! `enter`'s way in: a process on one node with its streams, as a session
//! the caller drives (a terminal, or later a WebSocket of the daemon). The
//! caller never holds the engine's names for it.

use std::sync::Arc;

use super::Clusters;
use crate::error::Result;
use crate::model::{ClusterName, NodeId};
use crate::provider::{Engine, ExecSpec, InputSink, OutputStream};

/// What to run on the node.
#[derive(Clone, Debug, Default)]
pub struct AttachOptions {
    /// The command; empty: a login shell (bash when the image has it).
    pub command: Vec<String>,
    /// Give the process a terminal.
    pub tty: bool,
    pub env: Vec<String>,
}

/// The shell a session opens: bash when the image has it, sh otherwise.
const SHELL: &str = "if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi";

/// A process running on a node: its streams, and [`Control`] over it.
pub struct Session {
    pub control: Control,
    /// What the process prints.
    pub output: OutputStream,
    /// Its standard input.
    pub input: InputSink,
}

/// What can be done to a running session besides its streams.
pub struct Control {
    provider: Arc<dyn Engine>,
    id: String,
}

impl Control {
    /// Passes a terminal's new size on.
    pub async fn resize(&self, rows: u16, cols: u16) -> Result<()> {
        self.provider.exec_resize(&self.id, rows, cols).await
    }

    /// The exit code, once the output has ended.
    pub async fn exit_code(&self) -> Result<i64> {
        self.provider.exec_exit_code(&self.id).await
    }
}

impl Clusters {
    /// Starts a process on a running node of a cluster.
    pub async fn attach(
        &self,
        name: &ClusterName,
        node: NodeId,
        opts: AttachOptions,
    ) -> Result<Session> {
        let container = self.running_container(name, node).await?;
        let cmd = if opts.command.is_empty() {
            vec!["/bin/sh".into(), "-c".into(), SHELL.into()]
        } else {
            opts.command
        };
        let spec = ExecSpec {
            cmd,
            user: None,
            env: opts.env,
            workdir: None,
            tty: opts.tty,
            stdin: true,
        };
        let attached = self.provider.exec_attach(&container, &spec).await?;
        Ok(Session {
            control: Control {
                provider: self.provider.clone(),
                id: attached.id,
            },
            output: attached.output,
            input: attached.input,
        })
    }
}
