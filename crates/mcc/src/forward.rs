//! `mcc local-remote serve` (the CC seed's): forwards TCP connections from
//! a local address to a port of a container made by `mcc run`, many at
//! once, each direction closed on its own (half-close passes through), and
//! stops on Ctrl-C. Locally it connects to the container's address; it
//! needs the host to reach the container's network (bridges and VPCs do).

use std::net::SocketAddr;
use std::sync::Arc;

use mcc_core::{Error, Result};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::commands::{connect, Notes};

/// Bytes read at once in each direction (tokio's default of 8 KiB costs
/// two thirds of the throughput; bench/forward).
const BUFFER: usize = 256 << 10;

/// The container's address to connect to.
async fn target(id: &str, port: u16) -> Result<SocketAddr> {
    let clusters = connect(Arc::new(Notes)).await?;
    let s = clusters.run_status(id).await?.ok_or_else(|| {
        Error::Invalid(format!(
            "--container-id {id}: no such container (`mcc status`)"
        ))
    })?;
    if s.state != "running" {
        return Err(Error::Invalid(format!(
            "--container-id {id}: the container is {}, not running",
            s.state
        )));
    }
    let ip = s
        .ips
        .values()
        .find_map(|ip| ip.parse::<std::net::IpAddr>().ok())
        .ok_or_else(|| {
            Error::Invalid(format!("--container-id {id}: the container has no address"))
        })?;
    Ok(SocketAddr::new(ip, port))
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

pub async fn serve(id: &str, port: u16, bind_addr: &str) -> Result<u8> {
    if port == 0 {
        return Err(Error::Invalid("--container-port 0 is not a port".into()));
    }
    let to = target(id, port).await?;
    let listener = bind(bind_addr).await?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::Failed(e.to_string()))?;
    eprintln!("forwarding {local} to {to} (container {id} port {port}); Ctrl-C stops");
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            r = listener.accept() => {
                let (mut inbound, _) = match r {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("mcc: accept: {e}");
                        continue;
                    }
                };
                conns.spawn(async move {
                    match TcpStream::connect(to).await {
                        Ok(mut out) => {
                            let _ = inbound.set_nodelay(true);
                            let _ = out.set_nodelay(true);
                            // each side's EOF is passed on as a shutdown of
                            // the other's write side
                            let _ = tokio::io::copy_bidirectional_with_sizes(
                                &mut inbound,
                                &mut out,
                                BUFFER,
                                BUFFER,
                            )
                            .await;
                        }
                        Err(e) => eprintln!("mcc: connecting to {to}: {e}"),
                    }
                });
            }
        }
    }
    drop(listener);
    let open = conns.len();
    conns.shutdown().await;
    eprintln!("stopped; {open} open connection(s) closed");
    Ok(0)
}
