//! The dashboard's sign-in sessions: what a session cookie stands for.
//! Apart from the routes, so that the daemon's state can hold them
//! without the routes' module (which reads that state).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::http::{header, HeaderMap, HeaderValue};
use tokio_util::sync::CancellationToken;

pub(super) const COOKIE: &str = "mcc_session";

pub(super) struct Session {
    pub(super) token: String,
    pub(super) expires: Instant,
    /// Cancelled at sign-out, and when the token is revoked: the page's
    /// event stream ends.
    pub(super) ended: CancellationToken,
}

pub struct Dashboard {
    sessions: Mutex<HashMap<String, Session>>,
    /// Served over TLS: cookies are Secure.
    secure: bool,
}

impl Dashboard {
    pub fn new(secure: bool) -> Arc<Dashboard> {
        Arc::new(Dashboard {
            sessions: Mutex::new(HashMap::new()),
            secure,
        })
    }

    pub(super) fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn cookie(&self, value: &str, max_age: u64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
        ))
        .expect("a valid cookie")
    }
}

/// The session id a request's cookies carry.
pub(super) fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}
