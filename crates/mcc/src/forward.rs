//! `mcc local-remote serve` (the CC seed's): forwards TCP connections from
//! a local address to a port of a container made by `mcc run`, many at
//! once, each direction closed on its own (half-close passes through), and
//! stops on Ctrl-C. Locally it connects to the container's address (the
//! host reaches bridges and VPCs); through the daemon each connection is a
//! signed WebSocket that the daemon splices to the container's port
//! (`mcc_api::tunnel`), so the engine may be on another machine.

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use mcc_api::tunnel::{self, Frame, BUFFER};
use mcc_api::ForwardQuery;
use mcc_core::{Error, Result};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use crate::backend::Backend;
use crate::progress::interrupts;
use crate::remote::Client;

/// Where each accepted connection goes.
#[derive(Clone)]
enum Target {
    /// Straight to the container's address.
    Direct(SocketAddr),
    /// Through the daemon, to this WebSocket path.
    Daemon(Client, String),
}

impl Target {
    /// Where connections to port `port` of container `id` go; the
    /// address is looked up either way, so a container that is not there
    /// (or not running) is refused before anything listens.
    async fn new(id: &str, port: u16, b: &Backend) -> Result<Target> {
        let address = b.run_address(id, port).await?;
        Ok(match b.daemon() {
            None => Target::Direct(address),
            Some(c) => Target::Daemon(c.clone(), ForwardQuery { port }.path(id)),
        })
    }

    fn describe(&self) -> String {
        match self {
            Target::Direct(a) => a.to_string(),
            Target::Daemon(c, _) => format!("the daemon at {}", c.endpoint.url),
        }
    }

    /// Carries one accepted connection until both sides are done.
    async fn carry(self, mut inbound: TcpStream) {
        match self {
            Target::Direct(to) => match TcpStream::connect(to).await {
                Ok(mut out) => {
                    let _ = inbound.set_nodelay(true);
                    let _ = out.set_nodelay(true);
                    // each side's EOF is passed on as a shutdown of the
                    // other's write side
                    let _ = tokio::io::copy_bidirectional_with_sizes(
                        &mut inbound,
                        &mut out,
                        BUFFER,
                        BUFFER,
                    )
                    .await;
                }
                Err(e) => eprintln!("mcc: connecting to {to}: {e}"),
            },
            Target::Daemon(c, path) => match c.websocket(&path).await {
                Ok(socket) => {
                    let (sink, stream) = socket.split();
                    let sink = sink.with(|f: Frame| {
                        std::future::ready(Ok::<_, tokio_tungstenite::tungstenite::Error>(
                            Message::Binary(f.into_binary()),
                        ))
                    });
                    let stream = stream
                        .take_while(|m| std::future::ready(matches!(m, Ok(m) if !m.is_close())))
                        .filter_map(|m| {
                            std::future::ready(match m {
                                Ok(Message::Binary(b)) => Some(Frame::from_binary(b)),
                                _ => None,
                            })
                        });
                    tunnel::splice(inbound, Box::pin(sink), Box::pin(stream)).await;
                }
                Err(e) => eprintln!("mcc: {e}"),
            },
        }
    }
}

async fn bind(addr: &str) -> Result<TcpListener> {
    let mut last = None;
    let addrs = tokio::net::lookup_host(addr).await.map_err(|e| {
        Error::Invalid(format!(
            "--bind '{addr}': {e}; give ADDR:PORT, e.g. 127.0.0.1:8080"
        ))
    })?;
    for a in addrs {
        match TcpListener::bind(a).await {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(Error::Failed(format!(
        "--bind {addr}: {}",
        last.map(|e| e.to_string())
            .unwrap_or_else(|| "no address".into())
    )))
}

pub async fn serve(id: &str, port: u16, bind_addr: &str, b: &Backend) -> Result<u8> {
    let to = Target::new(id, port, b).await?;
    let listener = bind(bind_addr).await?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::Failed(e.to_string()))?;
    eprintln!(
        "forwarding {local} to port {port} of container {id} via {}; Ctrl-C stops",
        to.describe()
    );
    let mut conns = JoinSet::new();
    // One listener for the whole loop: a `ctrl_c()` made afresh in each
    // turn misses a Ctrl-C that lands while another branch is being
    // handled (tokio drops a signal that finds no listener).
    let mut interrupt = interrupts()?;
    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            r = listener.accept() => {
                match r {
                    Ok((inbound, _)) => {
                        conns.spawn(to.clone().carry(inbound));
                    }
                    Err(e) => eprintln!("mcc: accept: {e}"),
                }
            }
        }
    }
    drop(listener);
    let open = conns.len();
    conns.shutdown().await;
    eprintln!("stopped; {open} open connection(s) closed");
    Ok(0)
}
