//! `enter`: an interactive shell (or a command) on one node. With a
//! terminal on both ends the exec gets a TTY, the local terminal goes raw
//! and window resizes are passed on; otherwise stdin and stdout are piped.

use std::io::{IsTerminal, Write};

use futures_util::StreamExt;
use mcc_core::cluster::{AttachOptions, Clusters, Session};
use mcc_core::model::{ClusterName, NodeId};
use mcc_core::provider::Chunk;
use mcc_core::{Error, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let mut env = Vec::new();
    if tty {
        env.push(format!(
            "TERM={}",
            std::env::var("TERM").unwrap_or_else(|_| "xterm".into())
        ));
    }
    let session = clusters
        .attach(name, node, AttachOptions { command, tty, env })
        .await?;
    let Session {
        control,
        mut output,
        mut input,
    } = session;
    let _raw = if tty { Some(RawMode::enable()?) } else { None };
    if tty {
        if let Ok((cols, rows)) = crossterm::terminal::size() {
            let _ = control.resize(rows, cols).await;
        }
    }

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
                    let _ = control.resize(rows, cols).await;
                }
            }
        }
    }
    stdin_task.abort();
    drop(_raw);
    let code = control.exit_code().await?;
    Ok(u8::try_from(code).unwrap_or(1))
}
