//! `enter`: an interactive shell (or a command) on one node. With a
//! terminal on both ends the exec gets a TTY, the local terminal goes raw
//! and window resizes are passed on; otherwise stdin and stdout are piped.

use std::io::{IsTerminal, Write};

use futures_util::StreamExt;
use mcc_core::cluster::Clusters;
use mcc_core::model::{ClusterName, NodeId};
use mcc_core::provider::{Chunk, ExecSpec};
use mcc_core::{Error, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The shell mcc opens: bash when the image has it, sh otherwise.
const SHELL: &str = "if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi";

/// Restores the terminal when dropped, even on error paths.
struct RawMode;

impl RawMode {
    fn enable() -> Result<RawMode> {
        crossterm::terminal::enable_raw_mode()
            .map_err(|e| Error::Failed(format!("cannot put the terminal in raw mode: {e}")))?;
        Ok(RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

pub async fn enter(
    clusters: &Clusters,
    name: &ClusterName,
    node: NodeId,
    command: Vec<String>,
) -> Result<u8> {
    let container = clusters.running_container(name, node).await?;
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let cmd = if command.is_empty() {
        vec!["/bin/sh".into(), "-c".into(), SHELL.into()]
    } else {
        command
    };
    let mut env = Vec::new();
    if tty {
        env.push(format!(
            "TERM={}",
            std::env::var("TERM").unwrap_or_else(|_| "xterm".into())
        ));
    }
    let spec = ExecSpec {
        user: None,
        cmd,
        env,
        workdir: None,
        tty,
        stdin: true,
    };
    let provider = clusters.provider();
    let attached = provider.exec_attach(&container, &spec).await?;
    let exec_id = attached.id.clone();
    let _raw = if tty { Some(RawMode::enable()?) } else { None };
    if tty {
        if let Ok((cols, rows)) = crossterm::terminal::size() {
            let _ = provider.exec_resize(&exec_id, rows, cols).await;
        }
    }

    let mut input = attached.input;
    let stdin_task = tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 4096];
        loop {
            match stdin.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if input.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    let _ = input.flush().await;
                }
            }
        }
        let _ = input.shutdown().await;
    });

    let mut output = attached.output;
    let mut winch = if tty {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok()
    } else {
        None
    };
    loop {
        tokio::select! {
            chunk = output.next() => {
                let Some(chunk) = chunk else { break };
                match chunk? {
                    Chunk::Stdout(b) => {
                        let mut out = std::io::stdout().lock();
                        let _ = out.write_all(&b);
                        let _ = out.flush();
                    }
                    Chunk::Stderr(b) => {
                        let mut err = std::io::stderr().lock();
                        let _ = err.write_all(&b);
                        let _ = err.flush();
                    }
                }
            }
            // Without a terminal, Ctrl-C reaches mcc rather than the node
            // (with one, it is a keystroke for the node's shell).
            _ = tokio::signal::ctrl_c(), if !tty => {
                stdin_task.abort();
                return Ok(130);
            }
            Some(()) = async { match winch.as_mut() { Some(w) => w.recv().await, None => std::future::pending().await } } => {
                if let Ok((cols, rows)) = crossterm::terminal::size() {
                    let _ = provider.exec_resize(&exec_id, rows, cols).await;
                }
            }
        }
    }
    stdin_task.abort();
    drop(_raw);
    let code = provider.exec_exit_code(&exec_id).await?;
    Ok(u8::try_from(code).unwrap_or(1))
}
