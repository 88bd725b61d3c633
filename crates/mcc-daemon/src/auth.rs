//! Tokens, and the guard in front of every route.
//!
//! Every request meets [`guard`]. A route's rule (its scope and body
//! limit, from [`crate::scope`]) decides what it needs; a path or method
//! no route serves needs a signature like any `/api` route, so an
//! unsigned request cannot tell real routes from others (both 401).
//!
//! A signed request is checked in this order, so that nothing costly is
//! done for a request that cannot be good:
//! 1. the headers: a known token, a timestamp within the skew, a nonce
//!    of the right form, a signature of the right form; else 401;
//! 2. the declared length against the route's limit (413 at once, before
//!    a byte of the body is read), or against [`SMALL_BODY`] when the
//!    token lacks the route's scope (it is refused below anyway);
//! 3. the body, streamed into the hash with the limit and a deadline
//!    (413, 408); each takes its length from a budget of bodies held
//!    before their signature is known (128 MiB in all; 503 with
//!    Retry-After when none frees within 10 s), so unsigned bodies cannot
//!    fill the memory however many come;
//! 4. the signature over the body's hash, then the nonce (401);
//! 5. the token's rate (a wait for its turn, or 429 with Retry-After);
//! 6. the route's scope (403).
//!
//! A route that needs no signature takes a body of at most
//! [`PUBLIC_BODY`]. A refused request closes its connection.
//!
//! Whatever is wrong in 1 and 4 the answer is the same 401
//! "unauthorized": which part failed is logged at debug level, never told.
//! Each token has a revocation signal: revoking it ends what it opened
//! (response streams here, WebSockets and dashboard sessions where they
//! are served).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::{BuildHasher, Hash, Hasher};
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use mcc_api::sign;
use mcc_api::{ErrorBody, ErrorDetail, TokenInfo};
use sha2::Digest;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::listen::Conn;
use crate::rate::{self, Limiter, Turn};
use crate::scope::{Grants, RouteTable, Rule, Scope, SMALL_BODY};
use crate::store::{token_secret, Store};

/// The largest body of any route: a context folder of 64 MiB, base64,
/// in its JSON.
pub const MAX_UPLOAD_BODY: usize = 96 << 20;
/// How much of request bodies, in KiB, may be held at once before their
/// signature is known: a create's upload and 32 MiB of others. A body
/// takes its declared length (or, without one, the most it may be) from
/// it before it is read.
const UNSIGNED_BODIES_KIB: u32 = 128 << 10;
/// How long a request waits for its share of that.
const PERMIT_WAIT: Duration = Duration::from_secs(10);
/// The largest body of a route that needs no signature (the dashboard's
/// sign-in): taken before anyone is known, it is kept tiny.
pub const PUBLIC_BODY: usize = 8 << 10;
/// A body must arrive within this, plus a second per MiB.
const BODY_DEADLINE: Duration = Duration::from_secs(10);

/// Who made a request, for the handlers.
#[derive(Clone, Debug)]
pub struct Caller {
    pub token: String,
    pub read_only: bool,
    /// Cancelled when the token is revoked: what the request opened ends.
    pub revoked: CancellationToken,
}

impl Caller {
    pub fn grants(&self) -> Grants {
        Grants {
            read_only: self.read_only,
        }
    }
}

struct Entry {
    info: TokenInfo,
    secret: String,
    limiter: Limiter,
    revoked: CancellationToken,
}

impl Entry {
    fn caller(&self) -> Caller {
        Caller {
            token: self.info.token.clone(),
            read_only: self.info.read_only,
            revoked: self.revoked.clone(),
        }
    }
}

/// Nonces seen in the last two windows. A request is accepted only while
/// its timestamp is within MAX_SKEW of now, so a nonce needs remembering
/// for 2 × MAX_SKEW at most; two generations of that length cover it.
/// Nonces are kept as 64-bit keyed hashes, so memory stays small.
struct Nonces {
    current: HashSet<u64>,
    previous: HashSet<u64>,
    rotated: Instant,
    hasher: std::collections::hash_map::RandomState,
}

impl Nonces {
    fn new() -> Nonces {
        Nonces {
            current: HashSet::new(),
            previous: HashSet::new(),
            rotated: Instant::now(),
            hasher: Default::default(),
        }
    }

    /// Records a nonce; false if it was seen already.
    fn fresh(&mut self, token: &str, nonce: &str) -> bool {
        if self.rotated.elapsed().as_secs() >= 2 * sign::MAX_SKEW_SECS {
            self.previous = std::mem::take(&mut self.current);
            self.rotated = Instant::now();
        }
        let mut h = self.hasher.build_hasher();
        token.hash(&mut h);
        nonce.hash(&mut h);
        let h = h.finish();
        !self.previous.contains(&h) && self.current.insert(h)
    }
}

pub struct Auth {
    key: [u8; 32],
    store: Arc<Store>,
    tokens: RwLock<HashMap<String, Arc<Entry>>>,
    nonces: Mutex<Nonces>,
    /// Requests per second per token.
    rate: u32,
}

/// Why a request was refused.
#[derive(Debug)]
enum Refused {
    NoToken,
    UnknownToken,
    BadTimestamp,
    BadNonce,
    BadSignature,
    Replayed,
    /// The body is over the route's limit (the limit).
    TooLarge(usize),
    /// A body over [`SMALL_BODY`] without a declared length.
    LengthRequired,
    /// The body did not arrive in time.
    SlowBody,
    /// The body broke off.
    BrokenBody,
    /// No large-body permit came free in time.
    Busy,
}

pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = ErrorBody {
        error: ErrorDetail::new(code, message),
    };
    (status, axum::Json(body)).into_response()
}

fn with_retry_after(mut r: Response, secs: u64) -> Response {
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

impl Refused {
    fn response(&self) -> Response {
        match self {
            Refused::TooLarge(limit) => error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                &format!(
                    "the request body is over this route's limit of {}",
                    mcc_core::model::size::human(*limit as u64)
                ),
            ),
            Refused::LengthRequired => error_response(
                StatusCode::LENGTH_REQUIRED,
                "length_required",
                &format!(
                    "a body over {} must give its Content-Length",
                    mcc_core::model::size::human(SMALL_BODY as u64)
                ),
            ),
            Refused::SlowBody => error_response(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                "the request body did not arrive in time",
            ),
            Refused::BrokenBody => error_response(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "the request body broke off",
            ),
            Refused::Busy => with_retry_after(
                error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    "other requests' bodies are being read; try again shortly",
                ),
                1,
            ),
            _ => {
                let mut r =
                    error_response(StatusCode::UNAUTHORIZED, "unauthorized", "unauthorized");
                r.headers_mut()
                    .insert("www-authenticate", HeaderValue::from_static(sign::SCHEME));
                r
            }
        }
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

impl Auth {
    pub fn new(key: [u8; 32], store: Arc<Store>, rate: u32) -> crate::Result<Auth> {
        let auth = Auth {
            key,
            store,
            tokens: RwLock::new(HashMap::new()),
            nonces: Mutex::new(Nonces::new()),
            rate: rate.max(1),
        };
        for t in auth.store.tokens()? {
            auth.cache(t);
        }
        Ok(auth)
    }

    fn cache(&self, info: TokenInfo) {
        let entry = Entry {
            secret: token_secret(&self.key, &info.token),
            limiter: Limiter::new(self.rate),
            revoked: CancellationToken::new(),
            info,
        };
        self.tokens
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(entry.info.token.clone(), Arc::new(entry));
    }

    pub fn is_empty(&self) -> bool {
        self.tokens
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// Makes a token; its secret (shown once).
    pub fn create(&self, name: &str, read_only: bool) -> crate::Result<(TokenInfo, String)> {
        let mut b = [0u8; 12];
        getrandom::fill(&mut b).map_err(|e| crate::DaemonError::State(e.to_string()))?;
        let info = TokenInfo {
            token: format!("mcc_{}", hex::encode(b)),
            name: name.to_string(),
            read_only,
            created: crate::now(),
        };
        self.store.add_token(&info)?;
        let secret = token_secret(&self.key, &info.token);
        self.cache(info.clone());
        Ok((info, secret))
    }

    pub fn list(&self) -> crate::Result<Vec<TokenInfo>> {
        self.store.tokens()
    }

    /// Removes a token and ends everything it opened: its response
    /// streams, WebSockets and dashboard sessions.
    pub fn revoke(&self, token: &str) -> crate::Result<bool> {
        let existed = self.store.remove_token(token)?;
        let entry = self
            .tokens
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(token);
        if let Some(e) = entry {
            e.revoked.cancel();
        }
        Ok(existed)
    }

    /// Who a known token is (`None` once revoked).
    pub fn caller(&self, token: &str) -> Option<Caller> {
        self.lookup(token).map(|e| e.caller())
    }

    /// Checks a token and secret key given by hand (the dashboard's
    /// sign-in), in constant time: a MAC made with the given secret must
    /// equal the one made with the token's.
    pub fn sign_in(&self, token: &str, secret: &str) -> Option<Caller> {
        let e = self.lookup(token)?;
        const PROBE: &str = "mcc dashboard sign-in";
        if !sign::verify(secret, PROBE, &sign::signature(&e.secret, PROBE)) {
            return None;
        }
        Some(e.caller())
    }

    fn lookup(&self, token: &str) -> Option<Arc<Entry>> {
        self.tokens
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .cloned()
    }
}

/// What the guard needs: the tokens and the routes' rules.
pub struct Guard {
    pub auth: Arc<Auth>,
    pub routes: RouteTable,
    unsigned_bodies: tokio::sync::Semaphore,
}

impl Guard {
    pub fn new(auth: Arc<Auth>, routes: RouteTable) -> Guard {
        Guard {
            auth,
            routes,
            unsigned_bodies: tokio::sync::Semaphore::new(UNSIGNED_BODIES_KIB as usize),
        }
    }

    /// Steps 1 to 4: the request with its body read back in, and its
    /// token.
    async fn check(&self, req: Request, rule: Rule) -> Result<(Request, Arc<Entry>), Refused> {
        let (parts, body) = req.into_parts();
        let h = &parts.headers;
        let token = header(h, sign::HEADER_TOKEN).ok_or(Refused::NoToken)?;
        let entry = self.auth.lookup(token).ok_or(Refused::UnknownToken)?;
        let ts_text = header(h, sign::HEADER_TIMESTAMP).ok_or(Refused::BadTimestamp)?;
        let ts = ts_text.parse::<u64>().map_err(|_| Refused::BadTimestamp)?;
        if crate::now().abs_diff(ts) > sign::MAX_SKEW_SECS {
            return Err(Refused::BadTimestamp);
        }
        let nonce = header(h, sign::HEADER_NONCE)
            .filter(|n| sign::nonce_ok(n))
            .ok_or(Refused::BadNonce)?;
        let given = header(h, sign::HEADER_SIGNATURE)
            .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or(Refused::BadSignature)?;
        let limit = if Grants::from(&entry.info).allows(rule.scope) {
            rule.body_limit
        } else {
            SMALL_BODY.min(rule.body_limit)
        };
        let declared = match h.get(header::CONTENT_LENGTH) {
            None => None,
            Some(v) => Some(
                v.to_str()
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or(Refused::BrokenBody)?,
            ),
        };
        let (bytes, body_hash) = self.read_body(body, limit, declared).await?;
        let target = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or_else(|| parts.uri.path());
        let canonical = sign::canonical(parts.method.as_str(), target, ts_text, nonce, &body_hash);
        if !sign::verify(&entry.secret, &canonical, given) {
            return Err(Refused::BadSignature);
        }
        // only a signed request may use up a nonce
        if !self
            .auth
            .nonces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .fresh(&entry.info.token, nonce)
        {
            return Err(Refused::Replayed);
        }
        Ok((Request::from_parts(parts, Body::from(bytes)), entry))
    }

    /// Reads a body of at most `limit` bytes, hashing it as it comes.
    async fn read_body(
        &self,
        mut body: Body,
        limit: usize,
        declared: Option<u64>,
    ) -> Result<(Bytes, String), Refused> {
        if declared == Some(0) || (declared.is_none() && http_body::Body::is_end_stream(&body)) {
            return Ok((Bytes::new(), EMPTY_BODY_SHA256.to_string()));
        }
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(Refused::TooLarge(limit));
        }
        // without a declared length, only a small body
        let cap = match declared {
            None => limit.min(SMALL_BODY),
            Some(n) => n as usize,
        };
        let kib = u32::try_from(cap.div_ceil(1024)).unwrap_or(u32::MAX);
        let _share =
            match tokio::time::timeout(PERMIT_WAIT, self.unsigned_bodies.acquire_many(kib)).await {
                Ok(Ok(p)) => p,
                _ => return Err(Refused::Busy),
            };
        let expected = declared.unwrap_or(0) as usize;
        let deadline = BODY_DEADLINE + Duration::from_secs((expected >> 20) as u64);
        let read = async {
            let mut buf = Vec::with_capacity(expected.min(cap));
            let mut hash = sha2::Sha256::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|_| Refused::BrokenBody)?;
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                if buf.len() + data.len() > cap {
                    return Err(match declared {
                        // more than it said
                        Some(_) => Refused::BrokenBody,
                        None if cap < limit => Refused::LengthRequired,
                        None => Refused::TooLarge(limit),
                    });
                }
                hash.update(&data);
                buf.extend_from_slice(&data);
            }
            Ok((Bytes::from(buf), hex::encode(hash.finalize())))
        };
        tokio::time::timeout(deadline, read)
            .await
            .map_err(|_| Refused::SlowBody)?
    }
}

impl From<&TokenInfo> for Grants {
    fn from(t: &TokenInfo) -> Grants {
        Grants {
            read_only: t.read_only,
        }
    }
}

/// SHA-256 of an empty body, which most requests have.
const EMPTY_BODY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The middleware in front of every route (see the module's text).
pub async fn guard(State(g): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    // a path or method no route serves needs a signature, as /api does
    let unserved = Rule {
        scope: Scope::Read,
        body_limit: SMALL_BODY,
    };
    let rule = match req.extensions().get::<MatchedPath>() {
        None => unserved,
        Some(p) => match g.routes.rule(req.method(), p.as_str()) {
            Some(rule) => rule,
            // another method of a declared route: axum answers 405
            None if g.routes.knows_path(p.as_str()) => unserved,
            // a route added without its OpenAPI entry says no scope: it
            // is never served (rather than served as "read")
            None => {
                tracing::error!(path = p.as_str(), "a served route without a scope: refused");
                return error_response(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "this route declares no scope, so no token may use it",
                );
            }
        },
    };
    if !rule.scope.is_signed() {
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > PUBLIC_BODY as u64) {
            return closing(Refused::TooLarge(PUBLIC_BODY).response());
        }
        let req = req.map(|b| Body::new(http_body_util::Limited::new(b, PUBLIC_BODY)));
        return next.run(req).await;
    }
    let path = req.uri().path().to_string();
    let (mut req, entry) = match g.check(req, rule).await {
        Ok(ok) => ok,
        Err(why) => {
            tracing::debug!(?why, %path, "request refused");
            // a client that is refused gets no more turns on its connection
            return closing(why.response());
        }
    };
    match entry.limiter.turn() {
        Turn::Wait(d) if d.is_zero() => {}
        Turn::Wait(d) => tokio::time::sleep(d).await,
        Turn::Refused(d) => {
            return with_retry_after(
                error_response(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "too many requests for this token; slow down (see `mcc serve --rate-limit`)",
                ),
                rate::retry_after_secs(d),
            );
        }
    }
    let caller = entry.caller();
    if !caller.grants().allows(rule.scope) {
        return error_response(
            StatusCode::FORBIDDEN,
            "forbidden",
            &format!(
                "this token is read-only: it may not use a route of scope '{}'",
                rule.scope.as_str()
            ),
        );
    }
    if let Some(conn) = req.extensions().get::<Arc<Conn>>() {
        conn.vouch(&caller.revoked);
    }
    let revoked = caller.revoked.clone();
    req.extensions_mut().insert(caller);
    next.run(req).await.map(|b| until_revoked(b, revoked))
}

/// A refusal that also closes the connection it came on.
fn closing(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// A response body that breaks off (an error, not a clean end, so the
/// client knows it was cut) once its token is revoked.
pub fn until_revoked(body: Body, revoked: CancellationToken) -> Body {
    Body::new(UntilRevoked {
        inner: body,
        revoked: Box::pin(revoked.cancelled_owned()),
    })
}

struct UntilRevoked {
    inner: Body,
    revoked: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl http_body::Body for UntilRevoked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        if self.revoked.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(axum::Error::new("the token was revoked"))));
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_empty_body_hash_is_sha256_of_nothing() {
        assert_eq!(EMPTY_BODY_SHA256, sign::body_hash(b""));
    }

    #[test]
    fn nonces_are_single_use_per_token() {
        let mut n = Nonces::new();
        assert!(n.fresh("a", "0123456789abcdef"));
        assert!(!n.fresh("a", "0123456789abcdef"));
        assert!(n.fresh("b", "0123456789abcdef"));
        // after one rotation the nonce is still remembered
        n.previous = std::mem::take(&mut n.current);
        assert!(!n.fresh("a", "0123456789abcdef"));
    }
}
