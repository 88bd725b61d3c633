//! Accepting connections: plain or TLS, HTTP/1.1 through hyper, with
//! bounds that a local user without a token cannot get around.
//!
//! - hyper's header-read timeout ([`Limits::header_timeout`]) closes a
//!   connection whose request head has not arrived in time; hyper starts
//!   it whenever the connection waits for a request, so it is also the
//!   idle timeout of a kept-alive connection. A TLS handshake has its own.
//! - At most [`Limits::max`] connections in all, and at most
//!   [`Limits::per_peer`] from one address that no signed request has yet
//!   vouched for. Room for signed requests is kept by eviction: when a
//!   bound is reached, the oldest connection that is idle and unvouched
//!   (a slow-loris socket, typically) is closed to make room for the new
//!   one. A connection is vouched for once a signed request (or a
//!   dashboard session) went through on it, until its token is revoked;
//!   one with a request in flight is never evicted. So a flood of
//!   half-open sockets only ever pushes out its own oldest sockets, and a
//!   client that sends its request at once gets through.
//!
//! Each connection's requests carry its [`Conn`] (an extension), through
//! which the request guard vouches for it.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::DaemonError;

/// The bounds on connections (`mcc serve --max-connections`, …).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections open at once, in all.
    pub max: usize,
    /// Connections from one address not yet vouched for by a signed request.
    pub per_peer: usize,
    /// How long a request's head may take to arrive, and how long a
    /// kept-alive connection may wait idle for the next one.
    pub header_timeout: Duration,
    /// How long a TLS handshake may take.
    pub handshake_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max: 4096,
            per_peer: 256,
            header_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// The largest request head hyper buffers for one connection.
const MAX_HEAD: usize = 64 << 10;
/// Kept back from the process's file limit for the engine's sockets,
/// the store, the stats streams.
const FD_RESERVE: u64 = 512;

/// One connection, as requests on it see it.
#[derive(Default)]
pub struct Conn {
    /// The revocation of the token that vouched for it.
    vouched: Mutex<Option<CancellationToken>>,
    /// Requests in flight.
    busy: AtomicUsize,
}

impl Conn {
    /// A signed request (or a session) of this token went through: the
    /// connection is kept when room is needed, until the token is revoked.
    pub fn vouch(&self, revoked: &CancellationToken) {
        *self.vouched.lock().unwrap_or_else(|p| p.into_inner()) = Some(revoked.clone());
    }

    fn vouched(&self) -> bool {
        self.vouched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|t| !t.is_cancelled())
    }

    fn evictable(&self) -> bool {
        self.busy.load(Ordering::Acquire) == 0 && !self.vouched()
    }
}

struct Entry {
    peer: IpAddr,
    conn: Arc<Conn>,
    evict: CancellationToken,
}

/// The open connections, oldest first.
pub struct Table {
    limits: Limits,
    inner: Mutex<(u64, BTreeMap<u64, Entry>)>,
}

/// An admitted connection: its place in the table, until dropped.
struct Admitted {
    table: Arc<Table>,
    id: u64,
    conn: Arc<Conn>,
    evict: CancellationToken,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.table.lock().1.remove(&self.id);
    }
}

impl Table {
    pub fn new(limits: Limits) -> Arc<Table> {
        Arc::new(Table {
            limits,
            inner: Mutex::new((0, BTreeMap::new())),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, BTreeMap<u64, Entry>)> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes room for a connection from `peer` and records it; `None`
    /// when no connection can give way (all are busy or vouched for).
    fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<Admitted> {
        let mut guard = self.lock();
        let (next, live) = &mut *guard;
        let unvouched_of_peer = live
            .values()
            .filter(|e| e.peer == peer && !e.conn.vouched())
            .count();
        if unvouched_of_peer >= self.limits.per_peer && !evict_oldest(live, |e| e.peer == peer) {
            return None;
        }
        if live.len() >= self.limits.max && !evict_oldest(live, |_| true) {
            return None;
        }
        *next += 1;
        let id = *next;
        let conn = Arc::new(Conn::default());
        let evict = CancellationToken::new();
        live.insert(
            id,
            Entry {
                peer,
                conn: conn.clone(),
                evict: evict.clone(),
            },
        );
        Some(Admitted {
            table: self.clone(),
            id,
            conn,
            evict,
        })
    }

    /// Open connections.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().1.len()
    }
}

/// Closes the oldest evictable connection that `which` picks; whether
/// there was one.
fn evict_oldest(live: &mut BTreeMap<u64, Entry>, which: impl Fn(&Entry) -> bool) -> bool {
    let Some(id) = live
        .iter()
        .find(|(_, e)| which(e) && e.conn.evictable())
        .map(|(id, _)| *id)
    else {
        return false;
    };
    if let Some(e) = live.remove(&id) {
        e.evict.cancel();
    }
    true
}

/// Raises the process's open-file limit to its hard limit and returns
/// how many connections fit under it with [`FD_RESERVE`] kept back.
pub fn connection_room(wanted: usize) -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let l = getrlimit(Resource::Nofile);
    if l.current != l.maximum {
        let raised = Rlimit {
            current: l.maximum,
            maximum: l.maximum,
        };
        let _ = setrlimit(Resource::Nofile, raised);
    }
    let l = getrlimit(Resource::Nofile);
    let room = l
        .current
        .map_or(u64::MAX, |n| n.saturating_sub(FD_RESERVE).max(16));
    wanted.min(usize::try_from(room).unwrap_or(usize::MAX))
}

/// Binds a listening socket with a backlog long enough for bursts of
/// connections (std's is 128).
pub fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// A TLS configuration from PEM files: HTTP/1.1 only.
pub fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, DaemonError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let fail = |e: String| {
        DaemonError::Listen(format!(
            "--tls-cert {} / --tls-key {}: {e}",
            cert.display(),
            key.display()
        ))
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| fail(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| fail(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| fail(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

/// Serves `router` on `listener` until `stop`; then lets open
/// connections finish their requests for up to `grace`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: axum::Router,
    table: Arc<Table>,
    stop: CancellationToken,
    grace: Duration,
) {
    let tracker = TaskTracker::new();
    let mut warned = std::time::Instant::now() - Duration::from_secs(60);
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            r = listener.accept() => match r {
                Ok(ok) => ok,
                Err(e) => {
                    // out of file descriptors, typically: wait for some to close
                    if warned.elapsed() > Duration::from_secs(10) {
                        tracing::warn!(error = %e, "cannot accept a connection");
                        warned = std::time::Instant::now();
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let Some(admitted) = table.admit(peer.ip()) else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (tls, router, stop, limits) = (tls.clone(), router.clone(), stop.clone(), table.limits);
        tracker.spawn(async move {
            match tls {
                None => connection(stream, admitted, router, limits, stop).await,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(limits.handshake_timeout, acceptor.accept(stream));
                    let tls = tokio::select! {
                        _ = admitted.evict.cancelled() => return,
                        r = handshake => match r {
                            Ok(Ok(s)) => s,
                            _ => return,
                        },
                    };
                    connection(tls, admitted, router, limits, stop).await
                }
            }
        });
    }
    tracker.close();
    let _ = tokio::time::timeout(grace, tracker.wait()).await;
}

/// Decrements a connection's requests in flight when dropped.
struct Busy(Arc<Conn>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn connection<S>(
    io: S,
    admitted: Admitted,
    router: axum::Router,
    limits: Limits,
    stop: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = admitted.conn.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        conn.busy.fetch_add(1, Ordering::AcqRel);
        let busy = Busy(conn.clone());
        req.extensions_mut().insert(conn.clone());
        let router = router.clone();
        async move {
            let res = router.oneshot(req.map(Body::new)).await;
            drop(busy);
            res
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEAD)
        .keep_alive(true);
    let served = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(served);
    tokio::select! {
        _ = served.as_mut() => {}
        // closed to make room: dropping it closes the socket
        _ = admitted.evict.cancelled() => {}
        _ = stop.cancelled() => {
            served.as_mut().graceful_shutdown();
            let _ = served.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize, per_peer: usize) -> Limits {
        Limits {
            max,
            per_peer,
            ..Limits::default()
        }
    }

    #[test]
    fn a_flood_from_one_address_pushes_out_only_its_own_oldest_idle_sockets() {
        let t = Table::new(limits(10, 3));
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first: Vec<Admitted> = (0..3).map(|_| t.admit(a).unwrap()).collect();
        let other = t.admit(b).unwrap();
        // a fourth from `a`: its oldest gives way
        let fourth = t.admit(a).unwrap();
        assert!(first[0].evict.is_cancelled());
        assert!(!first[1].evict.is_cancelled() && !other.evict.is_cancelled());
        assert_eq!(t.len(), 4);
        // a socket with a request in flight, or vouched for, is kept
        first[1].conn.busy.fetch_add(1, Ordering::AcqRel);
        let revoked = CancellationToken::new();
        first[2].conn.vouch(&revoked);
        // (a vouched socket no longer counts against its address)
        let fifth = t.admit(a).unwrap();
        assert!(!fourth.evict.is_cancelled());
        let _sixth = t.admit(a).unwrap();
        assert!(!first[1].evict.is_cancelled() && !first[2].evict.is_cancelled());
        assert!(fourth.evict.is_cancelled() && !fifth.evict.is_cancelled());
        // until its token is revoked
        revoked.cancel();
        assert!(first[2].conn.evictable());
        drop(first);
        drop(other);
    }

    #[test]
    fn at_the_cap_the_oldest_idle_unvouched_socket_gives_way_or_the_new_one_is_refused() {
        let t = Table::new(limits(2, 10));
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let one = t.admit(a).unwrap();
        let two = t.admit(a).unwrap();
        let revoked = CancellationToken::new();
        two.conn.vouch(&revoked);
        let three = t.admit(a).unwrap();
        assert!(one.evict.is_cancelled() && !two.evict.is_cancelled());
        three.conn.busy.fetch_add(1, Ordering::AcqRel);
        assert!(t.admit(a).is_none(), "no socket can give way");
        drop(one);
        assert_eq!(t.len(), 2, "an evicted entry was already gone");
        drop(three);
        assert_eq!(t.len(), 1);
        drop(two);
        assert_eq!(t.len(), 0);
    }
}
