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
//!   one with a request in flight is never evicted, nor one whose request
//!   head is already waiting in the socket (its task has not read it yet:
//!   under a flood of connections, accepting can outrun reading). So a
//!   flood of half-open sockets only ever pushes out its own oldest
//!   sockets, and a client that sends its request at once gets through.
//!
//! Each connection's requests carry its [`Conn`] (an extension), through
//! which the request guard vouches for it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
            per_peer: 1024,
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
    /// A request came on it already.
    served: std::sync::atomic::AtomicBool,
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
    /// The socket, to look at what waits in it (`None` in unit tests).
    socket: Option<Arc<tokio::net::TcpStream>>,
    tls: bool,
}

impl Entry {
    /// Whether a request waits in the socket, unread: a whole request
    /// head (or, under TLS, a record's worth of bytes). Looked at without
    /// taking the bytes (MSG_PEEK) nor touching what the connection's
    /// task waits for.
    fn request_waiting(&self) -> bool {
        use rustix::net::RecvFlags;
        let Some(socket) = &self.socket else {
            return false;
        };
        let mut buf = [0u8; 4096];
        match rustix::net::recv(
            &**socket,
            &mut buf[..],
            RecvFlags::PEEK | RecvFlags::DONTWAIT,
        ) {
            Ok((_, n)) if self.tls => n >= 64,
            Ok((_, n)) => buf[..n].windows(4).any(|w| w == b"\r\n\r\n"),
            Err(_) => false,
        }
    }

    /// Idle and unvouched, and not a fresh connection whose first request
    /// waits to be read: a connection served already gets no such grace
    /// (pipelined requests its client never reads the answers of would
    /// otherwise keep it forever).
    fn evictable(&self) -> bool {
        self.conn.evictable()
            && (self.conn.served.load(Ordering::Acquire) || !self.request_waiting())
    }
}

/// The open connections, oldest first.
pub struct Table {
    limits: Limits,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    /// By age, oldest first.
    live: BTreeMap<u64, Entry>,
    /// Each address's connections, oldest first.
    by_peer: HashMap<IpAddr, BTreeSet<u64>>,
}

impl Inner {
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let e = self.live.remove(&id)?;
        if let Some(ids) = self.by_peer.get_mut(&e.peer) {
            ids.remove(&id);
            if ids.is_empty() {
                self.by_peer.remove(&e.peer);
            }
        }
        Some(e)
    }

    /// Closes the oldest evictable connection of `ids` (in age order);
    /// whether there was one.
    fn evict_oldest(&mut self, ids: impl IntoIterator<Item = u64>) -> bool {
        let Some(id) = ids
            .into_iter()
            .find(|id| self.live.get(id).is_some_and(Entry::evictable))
        else {
            return false;
        };
        if let Some(e) = self.remove(id) {
            e.evict.cancel();
        }
        true
    }
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
        self.table.lock().remove(self.id);
    }
}

impl Table {
    pub fn new(limits: Limits) -> Arc<Table> {
        Arc::new(Table {
            limits,
            inner: Mutex::new(Inner::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes room for a connection from `peer` and records it; `None`
    /// when no connection can give way (all are busy or vouched for).
    fn admit(
        self: &Arc<Self>,
        peer: IpAddr,
        socket: Option<Arc<tokio::net::TcpStream>>,
        tls: bool,
    ) -> Option<Admitted> {
        let mut inner = self.lock();
        // an address at its bound gives up its oldest idle unvouched
        // connection; connections vouched for count, but are never
        // closed, and when only they fill the bound the new one is let in
        let of_peer: Vec<u64> = inner
            .by_peer
            .get(&peer)
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default();
        if of_peer.len() >= self.limits.per_peer && !inner.evict_oldest(of_peer.iter().copied()) {
            let unvouched = of_peer
                .iter()
                .filter(|id| inner.live.get(id).is_some_and(|e| !e.conn.vouched()))
                .count();
            if unvouched >= self.limits.per_peer {
                return None;
            }
        }
        if inner.live.len() >= self.limits.max {
            let all: Vec<u64> = inner.live.keys().copied().collect();
            if !inner.evict_oldest(all) {
                return None;
            }
        }
        inner.next += 1;
        let id = inner.next;
        let conn = Arc::new(Conn::default());
        let evict = CancellationToken::new();
        inner.by_peer.entry(peer).or_default().insert(id);
        inner.live.insert(
            id,
            Entry {
                peer,
                conn: conn.clone(),
                evict: evict.clone(),
                socket,
                tls,
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
        self.lock().live.len()
    }
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
        let _ = stream.set_nodelay(true);
        let stream = Arc::new(stream);
        let Some(admitted) = table.admit(peer.ip(), Some(stream.clone()), tls.is_some()) else {
            continue;
        };
        let stream = Shared(stream);
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

/// A socket that the table can look into while the connection reads
/// and writes it (tokio's `&TcpStream` calls).
struct Shared(Arc<tokio::net::TcpStream>);

impl AsyncRead for Shared {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        loop {
            std::task::ready!(self.0.poll_read_ready(cx))?;
            match self.0.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return std::task::Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return std::task::Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Shared {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        loop {
            std::task::ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                r => return std::task::Poll::Ready(r),
            }
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let r = rustix::net::shutdown(&*self.0, rustix::net::Shutdown::Write);
        std::task::Poll::Ready(r.map_err(std::io::Error::from))
    }
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
        conn.served.store(true, Ordering::Release);
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
        let first: Vec<Admitted> = (0..3).map(|_| t.admit(a, None, false).unwrap()).collect();
        let other = t.admit(b, None, false).unwrap();
        // a fourth from `a`: its oldest gives way
        let fourth = t.admit(a, None, false).unwrap();
        assert!(first[0].evict.is_cancelled());
        assert!(!first[1].evict.is_cancelled() && !other.evict.is_cancelled());
        assert_eq!(t.len(), 4);
        // a socket with a request in flight, or vouched for, is kept
        first[1].conn.busy.fetch_add(1, Ordering::AcqRel);
        let revoked = CancellationToken::new();
        first[2].conn.vouch(&revoked);
        let fifth = t.admit(a, None, false).unwrap();
        assert!(!first[1].evict.is_cancelled() && !first[2].evict.is_cancelled());
        assert!(fourth.evict.is_cancelled());
        // when only vouched-for and busy sockets fill the bound, the new
        // one is let in (it is the vouched ones that fill it)
        fifth.conn.busy.fetch_add(1, Ordering::AcqRel);
        let sixth = t
            .admit(a, None, false)
            .expect("let in past vouched sockets");
        assert_eq!(t.len(), 5);
        // but not past a bound of unvouched busy ones
        sixth.conn.busy.fetch_add(1, Ordering::AcqRel);
        let t2 = Table::new(limits(10, 2));
        let x = t2.admit(a, None, false).unwrap();
        let y = t2.admit(a, None, false).unwrap();
        x.conn.busy.fetch_add(1, Ordering::AcqRel);
        y.conn.busy.fetch_add(1, Ordering::AcqRel);
        assert!(t2.admit(a, None, false).is_none());
        // until its token is revoked
        revoked.cancel();
        assert!(first[2].conn.evictable());
        drop(first);
        drop(other);
    }

    #[tokio::test]
    async fn a_request_head_waiting_in_its_socket_keeps_the_socket() {
        use tokio::io::AsyncWriteExt;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let entry = |s: tokio::net::TcpStream| Entry {
            peer: addr.ip(),
            conn: Arc::new(Conn::default()),
            evict: CancellationToken::new(),
            socket: Some(Arc::new(s)),
            tls: false,
        };
        let mut whole = tokio::net::TcpStream::connect(addr).await.unwrap();
        whole
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET /heal").await.unwrap();
        let a = entry(l.accept().await.unwrap().0);
        let b = entry(l.accept().await.unwrap().0);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (whole_entry, slow_entry) = if a.request_waiting() { (a, b) } else { (b, a) };
        assert!(whole_entry.request_waiting() && !whole_entry.evictable());
        assert!(!slow_entry.request_waiting() && slow_entry.evictable());
        // looking did not take the bytes
        assert!(whole_entry.request_waiting());
        // a connection served already gets no such grace: requests
        // pipelined behind answers its client never reads keep nothing
        whole_entry.conn.served.store(true, Ordering::Release);
        assert!(whole_entry.request_waiting() && whole_entry.evictable());
    }

    #[test]
    fn at_the_cap_the_oldest_idle_unvouched_socket_gives_way_or_the_new_one_is_refused() {
        let t = Table::new(limits(2, 10));
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let one = t.admit(a, None, false).unwrap();
        let two = t.admit(a, None, false).unwrap();
        let revoked = CancellationToken::new();
        two.conn.vouch(&revoked);
        let three = t.admit(a, None, false).unwrap();
        assert!(one.evict.is_cancelled() && !two.evict.is_cancelled());
        three.conn.busy.fetch_add(1, Ordering::AcqRel);
        assert!(t.admit(a, None, false).is_none(), "no socket can give way");
        drop(one);
        assert_eq!(t.len(), 2, "an evicted entry was already gone");
        drop(three);
        assert_eq!(t.len(), 1);
        drop(two);
        assert_eq!(t.len(), 0);
    }
}
