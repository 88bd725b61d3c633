//! `enter`: an interactive shell (or a command) on one node. With a
//! terminal on both ends the process gets a TTY, the local terminal goes
//! raw and window resizes are passed on; otherwise stdin and stdout are
//! piped. The same terminal side drives a local session (the engine's
//! exec) or a remote one (the daemon's WebSocket).

use std::io::{IsTerminal, Write};
use std::pin::Pin;
use std::sync::Arc;

use futures_util::stream::SplitStream;
use futures_util::{SinkExt, Stream, StreamExt};
use mcc_api::{AttachControl, STREAM_STDERR, STREAM_STDOUT};
use mcc_core::cluster::{AttachOptions, Clusters, Session};
use mcc_core::model::{ClusterName, NodeId};
use mcc_core::provider::{Chunk, OutputStream};
use mcc_core::{Error, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::remote::{Client, WebSocket};

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

/// What the terminal side sends to the process.
enum In {
    Data(Vec<u8>),
    Eof,
    Resize(u16, u16),
}

/// What the process sends back.
enum Out {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Exit(i64),
}

type OutStream = Pin<Box<dyn Stream<Item = Result<Out>> + Send>>;

fn wants_tty() -> bool {
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

fn term() -> String {
    std::env::var("TERM").unwrap_or_else(|_| "xterm".into())
}

/// A session on the local engine.
pub async fn enter(
    clusters: &Clusters,
    name: &ClusterName,
    node: NodeId,
    command: Vec<String>,
) -> Result<u8> {
    let tty = wants_tty();
    let env = if tty {
        vec![format!("TERM={}", term())]
    } else {
        Vec::new()
    };
    let Session {
        control,
        output,
        mut input,
    } = clusters
        .attach(name, node, AttachOptions { command, tty, env })
        .await?;
    let control = Arc::new(control);
    let (tx, mut rx) = mpsc::channel::<In>(64);
    let c2 = control.clone();
    tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            match msg {
                In::Data(b) => {
                    if input.write_all(&b).await.is_err() {
                        break;
                    }
                    let _ = input.flush().await;
                }
                In::Eof => {
                    let _ = input.shutdown().await;
                }
                In::Resize(rows, cols) => {
                    let _ = c2.resize(rows, cols).await;
                }
            }
        }
    });
    let out = local_output(output, async move { control.exit_code().await });
    drive(tty, Some(tx), out).await
}

/// A process's output, then (after it ends) its exit code.
fn local_output(
    output: OutputStream,
    exit: impl std::future::Future<Output = Result<i64>> + Send + 'static,
) -> OutStream {
    let chunks = output.map(|c| {
        c.map(|c| match c {
            Chunk::Stdout(b) => Out::Stdout(b.to_vec()),
            Chunk::Stderr(b) => Out::Stderr(b.to_vec()),
        })
    });
    Box::pin(chunks.chain(futures_util::stream::once(async move {
        exit.await.map(Out::Exit)
    })))
}

/// The output frames and exit code a daemon's WebSocket carries.
fn remote_output(stream: SplitStream<WebSocket>, url: String) -> OutStream {
    Box::pin(stream.filter_map(move |m| {
        let url = url.clone();
        async move {
            match m {
                Ok(Message::Binary(b)) if !b.is_empty() => match b[0] {
                    STREAM_STDOUT => Some(Ok(Out::Stdout(b[1..].to_vec()))),
                    STREAM_STDERR => Some(Ok(Out::Stderr(b[1..].to_vec()))),
                    _ => None,
                },
                Ok(Message::Text(t)) => match serde_json::from_str::<AttachControl>(&t) {
                    Ok(AttachControl::Exit { code }) => Some(Ok(Out::Exit(code))),
                    Ok(AttachControl::Error { error }) => Some(Err(error.into_error())),
                    _ => None,
                },
                Ok(_) => None,
                Err(e) => Some(Err(Error::Failed(format!(
                    "the connection to the daemon at {url} broke: {e}"
                )))),
            }
        }
    }))
}

/// `mcc run --attach`, locally: the container's output from its start,
/// and its exit code as ours. Stdin is not passed.
pub async fn follow_run(clusters: &Clusters, id: &str) -> Result<u8> {
    let output = clusters.run_output(id).await?;
    let c = clusters.clone();
    let id2 = id.to_string();
    let out = local_output(output, async move { c.run_exit_code(&id2).await });
    follow(id, out).await
}

/// `mcc run --attach` through the daemon: the same over its WebSocket.
pub async fn follow_run_remote(client: &Client, id: &str) -> Result<u8> {
    let socket = client
        .websocket(&format!("/api/v1/containers/{id}/attach"))
        .await?;
    let (_sink, stream) = socket.split();
    follow(id, remote_output(stream, client.endpoint.url.clone())).await
}

/// Prints a container's output until it exits; Ctrl-C detaches and leaves
/// it running.
async fn follow(id: &str, output: OutStream) -> Result<u8> {
    let code = drive(false, None, output).await?;
    if code == 130 {
        eprintln!("mcc: detached; container {id} goes on (`mcc status {id}`, `mcc rm {id}`)");
    }
    Ok(code)
}

/// A session through the daemon, over its WebSocket.
pub async fn enter_remote(
    client: &Client,
    name: &str,
    node: NodeId,
    command: Vec<String>,
) -> Result<u8> {
    let tty = wants_tty();
    let mut path = format!(
        "/api/v1/clusters/{name}/nodes/{}/attach?tty={tty}",
        node.hostname()
    );
    if !command.is_empty() {
        let json = serde_json::to_string(&command).expect("serializable");
        path.push_str(&format!("&command={}", query_escape(&json)));
    }
    if tty {
        path.push_str(&format!("&term={}", query_escape(&term())));
    }
    let socket = client.websocket(&path).await?;
    let (mut sink, stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<In>(64);
    tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            let m = match msg {
                In::Data(b) => Message::Binary(b.into()),
                In::Eof => Message::Text(
                    serde_json::to_string(&AttachControl::Eof)
                        .expect("serializable")
                        .into(),
                ),
                In::Resize(rows, cols) => Message::Text(
                    serde_json::to_string(&AttachControl::Resize { rows, cols })
                        .expect("serializable")
                        .into(),
                ),
            };
            if sink.send(m).await.is_err() {
                break;
            }
        }
    });
    drive(
        tty,
        Some(tx),
        remote_output(stream, client.endpoint.url.clone()),
    )
    .await
}

/// Percent-encodes a query value.
fn query_escape(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// The terminal side: stdin to the process, its output to stdout and
/// stderr, resizes; the process's exit code as ours.
async fn drive(tty: bool, tx: Option<mpsc::Sender<In>>, mut output: OutStream) -> Result<u8> {
    let _raw = if tty { Some(RawMode::enable()?) } else { None };
    let resize = |tx: &Option<mpsc::Sender<In>>| {
        let tx = tx.clone();
        async move {
            if let (Some(tx), Ok((cols, rows))) = (tx, crossterm::terminal::size()) {
                let _ = tx.send(In::Resize(rows, cols)).await;
            }
        }
    };
    if tty {
        resize(&tx).await;
    }
    // No sender: the process takes no input, and stdin is left unread.
    let stdin_task = tx.clone().map(|input| {
        tokio::spawn(async move {
            let mut stdin = tokio::io::stdin();
            let mut buf = [0u8; 4096];
            loop {
                match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if input.send(In::Data(buf[..n].to_vec())).await.is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = input.send(In::Eof).await;
        })
    });
    let stop_stdin = || {
        if let Some(t) = &stdin_task {
            t.abort();
        }
    };
    let mut winch = if tty {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok()
    } else {
        None
    };
    // without a terminal: one Ctrl-C listener for the whole session (see
    // `progress::interrupts`)
    let mut interrupt = if tty {
        None
    } else {
        crate::progress::interrupts().ok()
    };
    let mut code = None;
    loop {
        tokio::select! {
            item = output.next() => {
                let Some(item) = item else { break };
                match item? {
                    Out::Stdout(b) => {
                        let mut out = std::io::stdout().lock();
                        let _ = out.write_all(&b);
                        let _ = out.flush();
                    }
                    Out::Stderr(b) => {
                        let mut err = std::io::stderr().lock();
                        let _ = err.write_all(&b);
                        let _ = err.flush();
                    }
                    Out::Exit(c) => {
                        code = Some(c);
                        break;
                    }
                }
            }
            // Without a terminal, Ctrl-C reaches mcc rather than the node
            // (with one, it is a keystroke for the node's shell).
            Some(()) = async { match interrupt.as_mut() { Some(i) => i.recv().await, None => std::future::pending().await } } => {
                stop_stdin();
                return Ok(130);
            }
            Some(()) = async { match winch.as_mut() { Some(w) => w.recv().await, None => std::future::pending().await } } => {
                resize(&tx).await;
            }
        }
    }
    stop_stdin();
    let code = code.ok_or_else(|| {
        Error::Failed("the session ended without an exit code (the connection dropped?)".into())
    })?;
    Ok(u8::try_from(code).unwrap_or(1))
}
