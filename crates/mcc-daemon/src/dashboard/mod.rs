//! The dashboard at `/`: clusters, nodes, services and replicas, updated
//! live from the event stream. Static files, no build step.
//!
//! Sign-in takes a token and its secret key once and answers a session
//! cookie (HttpOnly, SameSite=Strict, Secure under TLS). The cookie opens
//! only the dashboard's own read routes under `/ui`, never `/api`, which
//! stays for signed requests; sign-in and sign-out must come from the
//! daemon's own origin. The page takes no script, style or frame from
//! anywhere else (Content-Security-Policy) and puts data in as text only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::app::{App, AppState};
use crate::auth::{error_response, until_revoked, Caller};
use crate::events::About;
use crate::events_api::EventsQuery;
use crate::listen::Conn;
use mcc_api::ErrorBody;
pub use sessions::Dashboard;
use sessions::{session_id, Session};

/// How long a session lasts without signing in again.
pub(crate) mod sessions;

const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

const INDEX: &str = include_str!("index.html");
const APP_JS: &str = include_str!("app.js");
const APP_CSS: &str = include_str!("app.css");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Who the session is and its end, while it lasts and its token is not
/// revoked; the connection it came on is vouched for.
fn signed_in(
    app: &App,
    headers: &HeaderMap,
    conn: Option<&Arc<Conn>>,
) -> Option<(Caller, CancellationToken)> {
    let id = session_id(headers)?;
    let mut sessions = app.dashboard.sessions();
    let s = sessions.get(&id)?;
    if s.expires < Instant::now() || s.ended.is_cancelled() {
        sessions.remove(&id);
        return None;
    }
    let (token, ended) = (s.token.clone(), s.ended.clone());
    drop(sessions);
    let Some(caller) = app.auth.caller(&token) else {
        app.dashboard.sessions().remove(&id);
        return None;
    };
    if let Some(conn) = conn {
        conn.vouch(&ended);
    }
    Some((caller, ended))
}

/// A state-changing request must come from the daemon's own page: its
/// Origin names the host the request was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    match (host, origin) {
        (Some(h), Some(o)) => o
            .split_once("://")
            .is_some_and(|(scheme, rest)| (scheme == "http" || scheme == "https") && rest == h),
        _ => false,
    }
}

fn unauthorized() -> Response {
    error_response(StatusCode::UNAUTHORIZED, "unauthorized", "unauthorized")
}

fn page(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

#[utoipa::path(get, path = "/", security(()), tag = "dashboard",
    responses((status = 200, content_type = "text/html", body = String, description = "The dashboard's page")))]
pub async fn index() -> Response {
    page("text/html; charset=utf-8", INDEX)
}

#[utoipa::path(get, path = "/ui/app.js", security(()), tag = "dashboard",
    responses((status = 200, content_type = "text/javascript", body = String)))]
pub async fn app_js() -> Response {
    page("text/javascript; charset=utf-8", APP_JS)
}

#[utoipa::path(get, path = "/ui/app.css", security(()), tag = "dashboard",
    responses((status = 200, content_type = "text/css", body = String)))]
pub async fn app_css() -> Response {
    page("text/css; charset=utf-8", APP_CSS)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    token: String,
    secret: String,
}

#[utoipa::path(post, path = "/ui/login", security(()), tag = "dashboard", request_body = Login,
    responses((status = 200, body = serde_json::Value, description = "Signed in: the session cookie is set"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody, description = "Not from the daemon's own page")))]
pub async fn login(State(app): AppState, headers: HeaderMap, bytes: Bytes) -> Response {
    if !same_origin(&headers) {
        return error_response(
            StatusCode::FORBIDDEN,
            "forbidden",
            "sign in from the dashboard's own page",
        );
    }
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let Some(form) = json_body
        .then(|| serde_json::from_slice::<Login>(&bytes).ok())
        .flatten()
    else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "send {\"token\": …, \"secret\": …} as application/json",
        );
    };
    let Some(caller) = app.auth.sign_in(&form.token, &form.secret) else {
        return unauthorized();
    };
    let mut id = [0u8; 32];
    if getrandom::fill(&mut id).is_err() {
        return error_response(StatusCode::INTERNAL_SERVER_ERROR, "failed", "no randomness");
    }
    let id = hex::encode(id);
    {
        let mut sessions = app.dashboard.sessions();
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        sessions.insert(
            id.clone(),
            Session {
                token: caller.token.clone(),
                expires: now + SESSION_TTL,
                ended: caller.revoked.child_token(),
            },
        );
    }
    app.log.record(
        "token",
        About::default(),
        format!("dashboard sign-in with token {}", caller.token),
    );
    let mut res =
        Json(json!({"token": caller.token, "read_only": caller.read_only})).into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        app.dashboard.cookie(&id, SESSION_TTL.as_secs()),
    );
    res
}

#[utoipa::path(post, path = "/ui/logout", security(()), tag = "dashboard",
    responses((status = 204, description = "Signed out"), (status = 403, body = ErrorBody)))]
pub async fn logout(State(app): AppState, headers: HeaderMap) -> Response {
    if !same_origin(&headers) {
        return error_response(
            StatusCode::FORBIDDEN,
            "forbidden",
            "sign out from the dashboard's own page",
        );
    }
    if let Some(s) = session_id(&headers).and_then(|id| app.dashboard.sessions().remove(&id)) {
        s.ended.cancel();
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, app.dashboard.cookie("", 0));
    res
}

/// Everything the page shows, in one answer: the clusters (from the list
/// cache) and, per cluster, its workers and services as the last
/// reconcile pass saw them.
#[utoipa::path(get, path = "/ui/state", security(("session" = [])), tag = "dashboard",
    responses((status = 200, body = serde_json::Value, description = "What the page shows"),
              (status = 401, body = ErrorBody)))]
pub async fn state(
    State(app): AppState,
    conn: Option<Extension<Arc<Conn>>>,
    headers: HeaderMap,
) -> Response {
    let Some((caller, _)) = signed_in(&app, &headers, conn.as_deref()) else {
        return unauthorized();
    };
    let views = match app.cache.views(&app.clusters).await {
        Ok(v) => v,
        Err(e) => return crate::app::ApiError::from(e).into_response(),
    };
    let mut services = serde_json::Map::new();
    for c in views.iter() {
        let defs = app.services.defs(&c.name).unwrap_or_default();
        let snap = app.services.snapshot(&c.name);
        if defs.is_empty() && snap.workers.is_empty() {
            continue;
        }
        let workers: Vec<_> = snap
            .workers
            .iter()
            .map(|w| {
                json!({
                    "name": w.name,
                    "healthy": w.healthy,
                    "replicas": w.replicas.iter().map(|(r, service, _)| json!({
                        "service": service,
                        "replica": r.replica,
                        "state": r.state,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let list: Vec<_> = defs
            .into_iter()
            .map(|d| {
                let instances = snap.instances(&d.service);
                json!({
                    "service": d.service,
                    "image": d.image,
                    "replicas": d.replicas,
                    "running": instances.iter().filter(|r| r.state == "running").count(),
                    "instances": instances,
                })
            })
            .collect();
        services.insert(
            c.name.clone(),
            json!({"workers": workers, "services": list}),
        );
    }
    Json(json!({
        "token": caller.token,
        "clusters": *views,
        "services": services,
    }))
    .into_response()
}

/// The event stream, as server-sent events, for a signed-in page.
#[utoipa::path(get, path = "/ui/events", security(("session" = [])), tag = "dashboard",
    responses((status = 200, content_type = "text/event-stream", body = String, description = "The event log as server-sent events"),
              (status = 401, body = ErrorBody)))]
pub async fn events(
    State(app): AppState,
    conn: Option<Extension<Arc<Conn>>>,
    headers: HeaderMap,
) -> Response {
    let Some((caller, ended)) = signed_in(&app, &headers, conn.as_deref()) else {
        return unauthorized();
    };
    crate::events_api::event_stream(&app, caller.grants(), EventsQuery::default(), true)
        .map(|body| until_revoked(body, ended))
}

pub fn routes() -> utoipa_axum::router::OpenApiRouter<Arc<App>> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(index))
        .routes(routes!(app_js))
        .routes(routes!(app_css))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(state))
        .routes(routes!(events))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_must_be_the_daemon_itself() {
        let h = |host: &str, origin: Option<&str>| {
            let mut m = HeaderMap::new();
            m.insert(header::HOST, host.parse().unwrap());
            if let Some(o) = origin {
                m.insert(header::ORIGIN, o.parse().unwrap());
            }
            m
        };
        assert!(same_origin(&h(
            "127.0.0.1:5000",
            Some("http://127.0.0.1:5000")
        )));
        assert!(same_origin(&h(
            "mcc.lab:5443",
            Some("https://mcc.lab:5443")
        )));
        assert!(!same_origin(&h(
            "127.0.0.1:5000",
            Some("http://evil.example")
        )));
        assert!(!same_origin(&h("127.0.0.1:5000", Some("null"))));
        assert!(!same_origin(&h("127.0.0.1:5000", None)));
    }

    #[test]
    fn the_session_cookie_is_locked_down() {
        let c = Dashboard::new(false).cookie("abc", 60);
        let c = c.to_str().unwrap();
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && !c.contains("Secure"));
        let c = Dashboard::new(true).cookie("abc", 60);
        assert!(c.to_str().unwrap().contains("; Secure"));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; mcc_session=xyz; b=2".parse().unwrap());
        assert_eq!(session_id(&h).as_deref(), Some("xyz"));
    }
}
