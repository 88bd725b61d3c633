//! Starting and stopping the daemon: state directory, store, tokens,
//! recovery after a crash, listeners (plain or TLS), signals.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use mcc_core::cluster::{Clusters, Silent};
use mcc_core::provider::Engine;
use tokio_util::sync::CancellationToken;

use crate::api;
use crate::app::App;
use crate::auth::Auth;
use crate::cache::ListCache;
use crate::events::{self, About, Change, EventLog};
use crate::metrics::Metrics;
use crate::ops::Ops;
use crate::state_dir::StateDir;
use crate::store::Store;
use crate::{DaemonError, Result};

/// How `mcc serve` was asked to run.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Addresses to listen on (default 127.0.0.1:5000).
    pub listen: Vec<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub state_dir: PathBuf,
    /// Requests per second allowed per token.
    pub rate_limit: u32,
    /// Serve /metrics without authentication.
    pub public_metrics: bool,
    /// `text` or `json`.
    pub log_format: String,
    /// How long operations get to clean up on SIGTERM.
    pub grace: Duration,
    /// The cluster MyCluster's routes answer for.
    pub cluster: Option<String>,
    /// Bounds on connections.
    pub limits: crate::listen::Limits,
}

fn init_logging(format: &str) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MCC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let r = match format {
        "text" => builder.try_init(),
        "json" => builder.json().flatten_event(true).try_init(),
        other => {
            return Err(DaemonError::Listen(format!(
                "--log-format '{other}': use text or json"
            )))
        }
    };
    // Already set (a test that runs two daemons in one process): keep it.
    let _ = r;
    Ok(())
}

fn endpoint_url(addr: &SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else if addr.is_ipv6() {
        format!("[{}]", addr.ip())
    } else {
        addr.ip().to_string()
    };
    format!("{scheme}://{host}:{}", addr.port())
}

/// What [`build`] made: the router over the daemon's state, and the
/// handles that stop it.
pub(crate) struct Built {
    pub router: axum::Router,
    /// The state behind the router: its operations and event log, and
    /// what tests put other routes in front of.
    pub app: Arc<App>,
    /// Stops the services, the engine watch and the reaper.
    pub stop: CancellationToken,
}

/// The daemon on `provider`, its state in `dir`, reachable at `endpoint`
/// (`secure`: over TLS): store, tokens (the first one's credentials
/// written), operations recovered, services, the engine watch, the
/// router. Listening is the caller's.
pub(crate) async fn build(
    dir: &StateDir,
    provider: Arc<dyn Engine>,
    opts: &ServeOptions,
    endpoint: &str,
    secure: bool,
) -> Result<Built> {
    let store = Arc::new(Store::open(&dir.database())?);
    let auth = open_tokens(dir, store.clone(), opts.rate_limit, endpoint)?;
    let uploads = empty_uploads(dir)?;

    let clusters = Clusters::new(provider.clone(), Arc::new(Silent));
    let log = Arc::new(EventLog::new(store.clone()));
    let cache = Arc::new(ListCache::default());
    let c2 = cache.clone();
    let ops = Arc::new(Ops::new(store.clone(), log.clone(), move || {
        c2.invalidate()
    }));
    ops.recover(&clusters).await?;

    let stop = CancellationToken::new();
    let services = crate::services::Services::new(
        provider.clone(),
        store.clone(),
        log.clone(),
        dir.path().join("engines"),
        opts.cluster.clone(),
        stop.clone(),
    );
    services.start();
    spawn_engine_watch(
        provider.clone(),
        log.clone(),
        cache.clone(),
        services.clone(),
        stop.clone(),
    );

    crate::volumes::spawn_reaper(
        provider.clone(),
        clusters.clone(),
        log.clone(),
        stop.clone(),
    );

    let app = Arc::new(App {
        provider,
        clusters,
        ops: ops.clone(),
        log: log.clone(),
        auth,
        cache,
        metrics: Arc::new(Metrics::default()),
        store,
        uploads,
        hosts: hosts_file(dir),
        services,
        dashboard: crate::dashboard::Dashboard::new(secure),
        openapi: Bytes::from(serde_json::to_vec_pretty(&api::document()).expect("serializable")),
    });
    let router = api::router(app.clone(), opts.public_metrics)?;
    Ok(Built { router, app, stop })
}

/// The daemon's list of hosts (`mcc host` through it): `hosts.json` in
/// its state directory, private as the folder is, or the file
/// `MCC_HOSTS_FILE` names.
fn hosts_file(dir: &StateDir) -> PathBuf {
    match std::env::var_os("MCC_HOSTS_FILE") {
        Some(p) => PathBuf::from(p),
        None => dir.path().join("hosts.json"),
    }
}

/// The tokens, in `store`; a store without any gets the admin token, its
/// credentials written where the first client reads them.
fn open_tokens(
    dir: &StateDir,
    store: Arc<Store>,
    rate_limit: u32,
    endpoint: &str,
) -> Result<Arc<Auth>> {
    let key = dir.key()?;
    let auth = Arc::new(Auth::new(key, store, rate_limit)?);
    if auth.is_empty() {
        let (info, secret) = auth.create("admin", false)?;
        // A credentials file of an earlier store names a token that is
        // gone: replace it (removing a link removes the link only).
        let _ = std::fs::remove_file(dir.credentials());
        dir.write_credentials(&format!(
            "MCC_ENDPOINT_URL={endpoint}\nMCC_ACCESS_TOKEN={}\nMCC_SECRET_KEY={secret}\n",
            info.token
        ))?;
        tracing::info!(
            credentials = %dir.credentials().display(),
            token = %info.token,
            "created the admin token; its secret is in the credentials file"
        );
    }
    Ok(auth)
}

/// Where uploaded context folders are unpacked, emptied first: what an
/// earlier daemon left there belongs to no operation now.
fn empty_uploads(dir: &StateDir) -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let uploads = dir.path().join("uploads");
    let _ = std::fs::remove_dir_all(&uploads);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&uploads)
        .map_err(|e| DaemonError::State(format!("{}: {e}", uploads.display())))?;
    Ok(uploads)
}

/// Follows the host engine's events: the cluster list is cached only
/// while they are seen, and a worker stopping, or the stream coming back
/// after a drop, wakes the services' reconcilers.
fn spawn_engine_watch(
    provider: Arc<dyn Engine>,
    log: Arc<EventLog>,
    cache: Arc<ListCache>,
    services: Arc<crate::services::Services>,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        events::watch_engine(
            provider,
            log,
            move |c| match c {
                Change::Up => {
                    cache.set_watching(true);
                    services.wake_all();
                }
                Change::Down => cache.set_watching(false),
                Change::Event(e) if events::changes_state(e) => {
                    cache.invalidate();
                    services.host_event(e);
                }
                Change::Event(_) => {}
            },
            stop,
        )
        .await
    });
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn serve(opts: ServeOptions) -> Result<()> {
    init_logging(&opts.log_format)?;
    let tls = tls_of(&opts)?;
    // The state directory first: a second daemon is told so, whatever
    // its addresses.
    let dir = StateDir::open(&opts.state_dir)?;
    // Bound before anything else starts, so a taken port is said at once.
    let listeners = bind_all(&opts.listen)?;
    let bound: Vec<SocketAddr> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .collect();
    let limits = connection_limits(opts.limits);

    let endpoint = endpoint_url(&bound[0], tls.is_some());
    let hosts = mcc_core::hosts::HostsFile::at(hosts_file(&dir));
    let provider: Arc<dyn Engine> = mcc_core::provider::connect_following(&hosts).await?;
    let Built { router, app, stop } =
        build(&dir, provider, &opts, &endpoint, tls.is_some()).await?;
    let (ops, log) = (&app.ops, &app.log);
    let mut listening = Listening::start(listeners, &tls, &router, limits);
    log.record(
        "daemon",
        About::default(),
        format!(
            "mcc serve {} listening on {} (pid {})",
            env!("CARGO_PKG_VERSION"),
            bound
                .iter()
                .map(|a| endpoint_url(a, tls.is_some()))
                .collect::<Vec<_>>()
                .join(", "),
            std::process::id()
        ),
    );

    listening.until_signal().await?;
    let running = ops.active();
    tracing::info!(
        operations = running,
        "stopping: cancelling running operations"
    );
    ops.shutdown(opts.grace).await;
    stop.cancel();
    log.record("daemon", About::default(), "mcc serve stopped");
    listening.stop().await;
    drop(dir);
    Ok(())
}

/// The TLS acceptor `--tls-cert` and `--tls-key` make, if given.
fn tls_of(opts: &ServeOptions) -> Result<Option<tokio_rustls::TlsAcceptor>> {
    match (&opts.tls_cert, &opts.tls_key) {
        (None, None) => Ok(None),
        (Some(c), Some(k)) => Ok(Some(crate::listen::tls_config(c, k)?)),
        _ => Err(DaemonError::Listen(
            "give both --tls-cert and --tls-key, or neither".into(),
        )),
    }
}

/// A listener on each `--listen` address.
fn bind_all(addrs: &[SocketAddr]) -> Result<Vec<tokio::net::TcpListener>> {
    if addrs.is_empty() {
        return Err(DaemonError::Listen(
            "give at least one --listen address".into(),
        ));
    }
    let mut listeners = Vec::new();
    for addr in addrs {
        let l = crate::listen::bind(*addr).map_err(|e| {
            DaemonError::Listen(format!(
                "cannot listen on {addr}: {e}; choose another --listen address"
            ))
        })?;
        listeners.push(l);
    }
    Ok(listeners)
}

/// `wanted`, with no more connections than the open-file limit has room
/// for (said when that is fewer than asked).
fn connection_limits(wanted: crate::listen::Limits) -> crate::listen::Limits {
    let limits = crate::listen::Limits {
        max: crate::listen::connection_room(wanted.max),
        ..wanted
    };
    if limits.max < wanted.max {
        tracing::warn!(
            wanted = wanted.max,
            max = limits.max,
            "the open-file limit leaves room for fewer connections than --max-connections"
        );
    }
    limits
}

/// The listeners serving, and what stops them.
struct Listening {
    servers: tokio::task::JoinSet<()>,
    stop: CancellationToken,
}

impl Listening {
    fn start(
        listeners: Vec<tokio::net::TcpListener>,
        tls: &Option<tokio_rustls::TlsAcceptor>,
        router: &axum::Router,
        limits: crate::listen::Limits,
    ) -> Listening {
        let table = crate::listen::Table::new(limits);
        let stop = CancellationToken::new();
        let mut servers = tokio::task::JoinSet::new();
        for l in listeners {
            servers.spawn(crate::listen::serve(
                l,
                tls.clone(),
                router.clone(),
                table.clone(),
                stop.clone(),
                Duration::from_secs(2),
            ));
        }
        Listening { servers, stop }
    }

    /// Until SIGTERM or SIGINT; a listener that stops first is an error.
    async fn until_signal(&mut self) -> Result<()> {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| DaemonError::Listen(format!("SIGTERM handler: {e}")))?;
        let failed = tokio::select! {
            _ = term.recv() => None,
            _ = tokio::signal::ctrl_c() => None,
            r = self.servers.join_next() => Some(format!("{r:?}")),
        };
        match failed {
            Some(why) => Err(DaemonError::Listen(format!("a listener stopped: {why}"))),
            None => Ok(()),
        }
    }

    /// Stops accepting, and returns once each listener's open connections
    /// finished or had their grace.
    async fn stop(mut self) {
        self.stop.cancel();
        while self.servers.join_next().await.is_some() {}
    }
}

/// The daemon's routes on the in-memory engine: signed requests through
/// the whole router (guard, scopes, operations), no engine needed. The
/// real-engine tests (`crates/mcc/tests/api.rs` and others) stay.
#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{Request, StatusCode};
    use mcc_core::provider::fake::FakeProvider;
    use tower::ServiceExt;

    struct Daemon {
        router: axum::Router,
        app: Arc<App>,
        token: String,
        secret: String,
        _dir: StateDir,
        _tmp: tempfile::TempDir,
    }

    impl Daemon {
        async fn on(provider: Arc<dyn Engine>) -> Daemon {
            let tmp = tempfile::tempdir().unwrap();
            let state = tmp.path().join("state");
            let dir = StateDir::open(&state).unwrap();
            let opts = ServeOptions {
                listen: vec![],
                tls_cert: None,
                tls_key: None,
                state_dir: state,
                rate_limit: 1000,
                public_metrics: false,
                log_format: "text".into(),
                grace: Duration::from_secs(1),
                cluster: None,
                limits: crate::listen::Limits::default(),
            };
            let built = build(&dir, provider, &opts, "http://127.0.0.1:9", false)
                .await
                .unwrap();
            let creds = std::fs::read_to_string(dir.credentials()).unwrap();
            let var = |k: &str| {
                creds
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{k}=")))
                    .unwrap()
                    .to_string()
            };
            Daemon {
                router: built.router,
                app: built.app,
                token: var("MCC_ACCESS_TOKEN"),
                secret: var("MCC_SECRET_KEY"),
                _dir: dir,
                _tmp: tmp,
            }
        }

        /// A signed request; the status and the body as JSON (null if none).
        async fn call(
            &self,
            method: &str,
            path: &str,
            body: &str,
        ) -> (StatusCode, serde_json::Value) {
            let mut req = Request::builder().method(method).uri(path);
            for (k, v) in
                mcc_api::sign::sign(method, path, body.as_bytes(), &self.token, &self.secret)
            {
                req = req.header(k, v);
            }
            if !body.is_empty() {
                req = req.header("content-type", "application/json");
            }
            let resp = self
                .router
                .clone()
                .oneshot(req.body(axum::body::Body::from(body.to_string())).unwrap())
                .await
                .unwrap();
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            (
                status,
                serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
            )
        }

        /// Polls an operation until it ends; its last state.
        async fn finish(&self, op: &serde_json::Value) -> serde_json::Value {
            let id = op["id"].as_str().expect("an operation id").to_string();
            for _ in 0..500 {
                let (status, now) = self
                    .call("GET", &format!("/api/v1/operations/{id}"), "")
                    .await;
                assert_eq!(status, StatusCode::OK, "{now}");
                if now["state"] != "running" {
                    return now;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("operation {id} did not end");
        }
    }

    #[tokio::test]
    async fn a_cluster_made_listed_and_deleted_through_the_routes_on_the_fake_engine() {
        let p = Arc::new(FakeProvider::new());
        p.add_image("busybox", false);
        let d = Daemon::on(p.clone()).await;

        let (status, list) = d.call("GET", "/api/v1/clusters", "").await;
        assert_eq!((status, list), (StatusCode::OK, serde_json::json!([])));

        let (status, op) = d
            .call(
                "POST",
                "/api/v1/clusters",
                r#"{"name":"fk","image":"busybox","nodes":2}"#,
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{op}");
        let done = d.finish(&op).await;
        assert_eq!(done["state"], "succeeded", "{done}");

        let (status, view) = d.call("GET", "/api/v1/clusters/fk", "").await;
        assert_eq!(status, StatusCode::OK, "{view}");
        assert_eq!(view["status"], "running", "{view}");
        assert_eq!(view["workers"], 2, "{view}");
        let (_, list) = d.call("GET", "/api/v1/clusters", "").await;
        assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");

        // bad input is refused before any operation starts
        let (status, err) = d
            .call(
                "POST",
                "/api/v1/clusters",
                r#"{"name":"fk2","image":"busybox","subnet":"127.0.0.0/24"}"#,
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
        let (status, _) = d
            .call("DELETE", "/api/v1/clusters/fk/nodes/frontend", "")
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

        let (status, op) = d.call("DELETE", "/api/v1/clusters/fk", "").await;
        assert_eq!(status, StatusCode::ACCEPTED, "{op}");
        assert_eq!(d.finish(&op).await["state"], "succeeded");
        let (status, _) = d.call("GET", "/api/v1/clusters/fk", "").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(p.objects_of("fk").0.is_empty(), "{:?}", p.objects_of("fk"));
    }

    #[tokio::test]
    async fn an_unsigned_or_wrongly_signed_request_is_refused_on_the_fake_engine() {
        let d = Daemon::on(Arc::new(FakeProvider::new())).await;
        let resp = d
            .router
            .clone()
            .oneshot(
                Request::get("/api/v1/clusters")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let wrong = Daemon {
            secret: "not-the-secret".into(),
            ..d
        };
        let (status, _) = wrong.call("GET", "/api/v1/clusters", "").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn a_route_served_without_its_openapi_entry_is_refused_even_signed() {
        let d = Daemon::on(Arc::new(FakeProvider::new())).await;
        // as a route added with plain axum would be: served, not documented
        let routes = api::routes().route(
            "/api/v1/undeclared",
            axum::routing::post(|| async { "ran" }),
        );
        let d = Daemon {
            router: api::guarded(routes, d.app.clone(), false).unwrap(),
            ..d
        };
        let (status, err) = d.call("POST", "/api/v1/undeclared", "").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
        assert!(err.to_string().contains("declares no scope"), "{err}");
        // declared routes still answer, and another method of one is 405
        let (status, _) = d.call("GET", "/api/v1/clusters", "").await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = d.call("PUT", "/api/v1/clusters", "").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    }
}
