//! Request signing: every `/api` request carries an access token and an
//! HMAC-SHA256 of its parts made with the token's secret key.
//!
//! Headers:
//!
//! | header               | value                                            |
//! |----------------------|--------------------------------------------------|
//! | `X-MCC-Access-Token` | the token (`mcc_…`)                              |
//! | `X-MCC-Timestamp`    | seconds since the Unix epoch, as decimal         |
//! | `X-MCC-Nonce`        | 16 to 64 characters of `[A-Za-z0-9_-]`, new each time |
//! | `X-MCC-Signature`    | lowercase hex of HMAC-SHA256(secret, canonical)  |
//!
//! The canonical string is seven lines joined by `\n` (no newline at the end):
//!
//! ```text
//! MCC-HMAC-SHA256
//! GET                      the method, upper case
//! /api/v1/clusters         the path, exactly as sent (still percent-encoded)
//! output=json              the query after '?', exactly as sent ("" if none)
//! 1764600000               the timestamp header
//! 3f6c0a9e1b2d4c5e         the nonce header
//! e3b0c442…b855            lowercase hex SHA-256 of the body ("" hashes to e3b0…)
//! ```
//!
//! The daemon answers 401 when the token is unknown or revoked, the
//! signature does not match, the timestamp is more than [`MAX_SKEW_SECS`]
//! away from its clock, or the nonce was seen before within that window.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const SCHEME: &str = "MCC-HMAC-SHA256";
pub const HEADER_TOKEN: &str = "x-mcc-access-token";
pub const HEADER_TIMESTAMP: &str = "x-mcc-timestamp";
pub const HEADER_NONCE: &str = "x-mcc-nonce";
pub const HEADER_SIGNATURE: &str = "x-mcc-signature";
/// How far a request's timestamp may be from the daemon's clock.
pub const MAX_SKEW_SECS: u64 = 300;

type HmacSha256 = Hmac<Sha256>;

/// Lowercase hex SHA-256 of `body`.
pub fn body_hash(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// The string that is signed. `path_and_query` is the request target as
/// sent, e.g. `/api/v1/clusters?output=json`.
pub fn canonical(
    method: &str,
    path_and_query: &str,
    timestamp: &str,
    nonce: &str,
    body_sha256: &str,
) -> String {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    format!(
        "{SCHEME}\n{}\n{path}\n{query}\n{timestamp}\n{nonce}\n{body_sha256}",
        method.to_ascii_uppercase()
    )
}

fn mac(secret: &str) -> HmacSha256 {
    HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length")
}

/// Lowercase hex HMAC-SHA256 of `canonical` under `secret`.
pub fn signature(secret: &str, canonical: &str) -> String {
    let mut m = mac(secret);
    m.update(canonical.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// Whether `given` (hex) is the signature of `canonical`, compared in
/// constant time.
pub fn verify(secret: &str, canonical: &str, given: &str) -> bool {
    let Ok(bytes) = hex::decode(given) else {
        return false;
    };
    let mut m = mac(secret);
    m.update(canonical.as_bytes());
    m.verify_slice(&bytes).is_ok()
}

/// Whether a nonce has the allowed form.
pub fn nonce_ok(nonce: &str) -> bool {
    (16..=64).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A fresh random nonce: 32 hex characters.
pub fn new_nonce() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the system has a random source");
    hex::encode(b)
}

/// The headers that sign one request, made now with a fresh nonce.
pub fn sign(
    method: &str,
    path_and_query: &str,
    body: &[u8],
    token: &str,
    secret: &str,
) -> Vec<(&'static str, String)> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    sign_at(
        method,
        path_and_query,
        body,
        token,
        secret,
        now,
        &new_nonce(),
    )
}

/// [`sign`] with a given time and nonce (for tests and tools).
pub fn sign_at(
    method: &str,
    path_and_query: &str,
    body: &[u8],
    token: &str,
    secret: &str,
    timestamp: u64,
    nonce: &str,
) -> Vec<(&'static str, String)> {
    let ts = timestamp.to_string();
    let c = canonical(method, path_and_query, &ts, nonce, &body_hash(body));
    vec![
        (HEADER_TOKEN, token.to_string()),
        (HEADER_TIMESTAMP, ts),
        (HEADER_NONCE, nonce.to_string()),
        (HEADER_SIGNATURE, signature(secret, &c)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector `examples/api/mcc_client.py --self-test` checks too.
    #[test]
    fn known_vector() {
        let h = sign_at(
            "post",
            "/api/v1/clusters?x=1",
            b"{}",
            "mcc_test",
            "s3cret",
            1_700_000_000,
            "0123456789abcdef",
        );
        let c = canonical(
            "POST",
            "/api/v1/clusters?x=1",
            "1700000000",
            "0123456789abcdef",
            &body_hash(b"{}"),
        );
        assert_eq!(
            c,
            "MCC-HMAC-SHA256\nPOST\n/api/v1/clusters\nx=1\n1700000000\n0123456789abcdef\n\
             44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        let sig = &h[3].1;
        assert!(verify("s3cret", &c, sig));
        assert!(!verify("other", &c, sig));
        assert!(!verify("s3cret", &c.replace("x=1", "x=2"), sig));
        assert!(!verify("s3cret", &c, "zz"));
        assert_eq!(sig, &signature("s3cret", &c));
        println!("{sig}");
    }

    #[test]
    fn nonces() {
        assert!(nonce_ok(&new_nonce()));
        assert!(!nonce_ok("short"));
        assert!(!nonce_ok("0123456789abcdef\n"));
        assert!(!nonce_ok(&"a".repeat(65)));
        assert_ne!(new_nonce(), new_nonce());
    }
}
