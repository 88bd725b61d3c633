//! Request authentication: every `/api` request names a token and is
//! signed with its secret (see `mcc_api::sign`). Whatever is wrong, the
//! answer is the same 401 "unauthorized": which part failed is logged at
//! debug level, never told to the caller. Then the token's rate limit
//! (429) and, for read-only tokens, the method (403).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mcc_api::sign;
use mcc_api::{ErrorBody, ErrorDetail, TokenInfo};

use crate::store::{token_secret, Store};

/// The largest request body: a context folder of 64 MiB, base64.
pub const MAX_BODY: usize = 96 << 20;

/// Who made a request, for the handlers.
#[derive(Clone, Debug)]
pub struct Caller {
    pub token: String,
    pub read_only: bool,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

struct Entry {
    info: TokenInfo,
    secret: String,
    bucket: Mutex<Bucket>,
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
    /// Requests per second per token (and the burst).
    rate: f64,
}

/// Why a request was refused, for the log (the caller sees only 401).
#[derive(Debug)]
enum Refused {
    NoToken,
    UnknownToken,
    BadTimestamp,
    BadNonce,
    BadSignature,
    Replayed,
    BodyTooLarge,
}

pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = ErrorBody {
        error: ErrorDetail::new(code, message),
    };
    (status, axum::Json(body)).into_response()
}

fn unauthorized() -> Response {
    let mut r = error_response(StatusCode::UNAUTHORIZED, "unauthorized", "unauthorized");
    r.headers_mut().insert(
        "www-authenticate",
        axum::http::HeaderValue::from_static(sign::SCHEME),
    );
    r
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
            nonces: Mutex::new(Nonces {
                current: HashSet::new(),
                previous: HashSet::new(),
                rotated: Instant::now(),
                hasher: Default::default(),
            }),
            rate: f64::from(rate.max(1)),
        };
        for t in auth.store.tokens()? {
            auth.cache(t);
        }
        Ok(auth)
    }

    fn cache(&self, info: TokenInfo) {
        let entry = Entry {
            secret: token_secret(&self.key, &info.token),
            bucket: Mutex::new(Bucket {
                tokens: self.rate,
                at: Instant::now(),
            }),
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

    pub fn revoke(&self, token: &str) -> crate::Result<bool> {
        let existed = self.store.remove_token(token)?;
        self.tokens
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(token);
        Ok(existed)
    }

    /// Who a known token is (`None` once revoked).
    pub fn caller(&self, token: &str) -> Option<Caller> {
        self.lookup(token).map(|e| Caller {
            token: e.info.token.clone(),
            read_only: e.info.read_only,
        })
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
        self.caller(token)
    }

    fn lookup(&self, token: &str) -> Option<Arc<Entry>> {
        self.tokens
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .cloned()
    }

    /// Whether the token may make one more request now.
    fn admit(&self, e: &Entry) -> bool {
        let mut b = e.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * self.rate).min(self.rate);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    async fn check(&self, req: Request) -> Result<(Request, Arc<Entry>), Refused> {
        // what is checked is borrowed from the request's parts: nothing is
        // copied for a request that passes
        let (parts, body) = req.into_parts();
        let h = &parts.headers;
        let token = header(h, sign::HEADER_TOKEN).ok_or(Refused::NoToken)?;
        let entry = self.lookup(token).ok_or(Refused::UnknownToken)?;
        let ts_text = header(h, sign::HEADER_TIMESTAMP).ok_or(Refused::BadTimestamp)?;
        let ts = ts_text.parse::<u64>().map_err(|_| Refused::BadTimestamp)?;
        if crate::now().abs_diff(ts) > sign::MAX_SKEW_SECS {
            return Err(Refused::BadTimestamp);
        }
        let nonce = header(h, sign::HEADER_NONCE)
            .filter(|n| sign::nonce_ok(n))
            .ok_or(Refused::BadNonce)?;
        let given = header(h, sign::HEADER_SIGNATURE).ok_or(Refused::BadSignature)?;
        let target = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or_else(|| parts.uri.path());
        let bytes = axum::body::to_bytes(body, MAX_BODY)
            .await
            .map_err(|_| Refused::BodyTooLarge)?;
        let body_hash = if bytes.is_empty() {
            std::borrow::Cow::Borrowed(EMPTY_BODY_SHA256)
        } else {
            std::borrow::Cow::Owned(sign::body_hash(&bytes))
        };
        let canonical = sign::canonical(parts.method.as_str(), target, ts_text, nonce, &body_hash);
        if !sign::verify(&entry.secret, &canonical, given) {
            return Err(Refused::BadSignature);
        }
        // Only a signed request may use up a nonce.
        if !self
            .nonces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .fresh(&entry.info.token, nonce)
        {
            return Err(Refused::Replayed);
        }
        Ok((Request::from_parts(parts, Body::from(bytes)), entry))
    }
}

/// SHA-256 of an empty body, which most requests have.
const EMPTY_BODY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The middleware in front of every `/api` route.
pub async fn authenticate(State(auth): State<Arc<Auth>>, req: Request, next: Next) -> Response {
    let uri = req.uri().clone();
    let (mut req, entry) = match auth.check(req).await {
        Ok(ok) => ok,
        Err(why) => {
            tracing::debug!(?why, path = uri.path(), "request refused");
            return unauthorized();
        }
    };
    if !auth.admit(&entry) {
        let mut r = error_response(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests for this token; slow down (see `mcc serve --rate-limit`)",
        );
        r.headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from_static("1"));
        return r;
    }
    if entry.info.read_only && !matches!(*req.method(), Method::GET | Method::HEAD) {
        return error_response(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this token is read-only: it may only GET",
        );
    }
    req.extensions_mut().insert(Caller {
        token: entry.info.token.clone(),
        read_only: entry.info.read_only,
    });
    next.run(req).await
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
        let mut n = Nonces {
            current: HashSet::new(),
            previous: HashSet::new(),
            rotated: Instant::now(),
            hasher: Default::default(),
        };
        assert!(n.fresh("a", "0123456789abcdef"));
        assert!(!n.fresh("a", "0123456789abcdef"));
        assert!(n.fresh("b", "0123456789abcdef"));
        // after one rotation the nonce is still remembered
        n.previous = std::mem::take(&mut n.current);
        assert!(!n.fresh("a", "0123456789abcdef"));
    }
}
