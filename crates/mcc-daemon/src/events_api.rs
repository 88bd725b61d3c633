//! `GET /api/v1/events`: the event log, then live, as JSON lines or
//! server-sent events (the dashboard's page reads the same stream).

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use mcc_api::{ErrorBody, Event};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::app::{ndjson, ApiQuery, App, AppState};
use crate::auth::Caller;
use crate::scope::{Grants, Scope};

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only events after this sequence number (default: the last 100).
    pub(crate) since: Option<u64>,
    /// Keep the stream open for new events (default true).
    pub(crate) follow: Option<bool>,
}

#[utoipa::path(get, path = "/api/v1/events", security(("signature" = ["read"])), tag = "events", params(EventsQuery),
    responses((status = 200, description = "Events as JSON lines, or as server-sent events \
        when the request accepts text/event-stream; with follow (the default) the stream stays \
        open for new ones", content((Event = "application/x-ndjson"), (String = "text/event-stream"))),
        (status = 422, body = ErrorBody)))]
pub async fn events(
    State(app): AppState,
    axum::Extension(caller): axum::Extension<Caller>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Response {
    let sse = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"));
    event_stream(&app, caller.grants(), q, sse)
}

/// The event log from `q.since`, then live unless `q.follow` is false, as
/// JSON lines or server-sent events. Events about tokens (which name
/// them) only for a caller who may see tokens.
pub(crate) fn event_stream(app: &App, grants: Grants, q: EventsQuery, sse: bool) -> Response {
    let since = q
        .since
        .unwrap_or_else(|| app.log.last().saturating_sub(100));
    let follow = q.follow.unwrap_or(true);
    let shown = move |e: &Event| grants.allows(Scope::Tokens) || e.kind != "token";
    let (past, mut live) = app.log.replay_and_subscribe(since, 10_000);
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(256);
    tokio::spawn(async move {
        let mut last = since;
        for e in past {
            last = e.seq;
            if shown(&e) && tx.send(e).await.is_err() {
                return;
            }
        }
        if !follow {
            return;
        }
        loop {
            match live.recv().await {
                Ok(e) if e.seq > last => {
                    last = e.seq;
                    if shown(&e) && tx.send(e).await.is_err() {
                        return;
                    }
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            }
        }
    });
    if !sse {
        return ndjson(rx);
    }
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let e = rx.recv().await?;
        let data = serde_json::to_string(&e).expect("serializable");
        let frame = format!("id: {}\nevent: {}\ndata: {data}\n\n", e.seq, e.kind);
        Some((Ok::<_, std::convert::Infallible>(Bytes::from(frame)), rx))
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}
