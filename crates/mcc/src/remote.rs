//! The CLI as a client of `mcc serve`: signed requests, operations
//! followed with their progress fed to the same reporter as local work,
//! errors turned back into the library's (so exit codes match).

use std::path::Path;

use futures_util::StreamExt;
use mcc_api::{sign, ErrorBody, Operation, OperationEvent, OperationState};
use mcc_core::cluster::Reporter;
use mcc_core::{Error, Result};
use reqwest::Method;
use serde::de::DeserializeOwned;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;

/// A WebSocket to the daemon.
pub type WebSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Where a daemon is and who we are to it.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub url: String,
    pub token: String,
    pub secret: String,
}

/// How long a command waits, in all, for its turn at the daemon's rate
/// limit before it gives up.
pub const RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(120);

#[derive(Clone)]
pub struct Client {
    pub endpoint: Endpoint,
    http: reqwest::Client,
}

/// Reads `MCC_ENDPOINT_URL`, `MCC_ACCESS_TOKEN` and `MCC_SECRET_KEY` from a
/// credentials file written by `mcc serve`. The file must be ours and
/// writable by no one else: a file another user could write is not
/// trusted with where requests go.
pub fn read_credentials(path: &Path) -> Result<Endpoint> {
    let fail = |why: String| {
        Error::Invalid(format!(
            "no daemon given (--endpoint-url or MCC_ENDPOINT_URL) and {}: {why}",
            path.display()
        ))
    };
    let text = mcc_core::lock::read_private_file(path)
        .map_err(fail)?
        .ok_or_else(|| fail("there is no such file; start one with `mcc serve`".into()))?;
    let mut url = None;
    let mut token = None;
    let mut secret = None;
    for line in text.lines() {
        match line.split_once('=') {
            Some(("MCC_ENDPOINT_URL", v)) => url = Some(v.trim().to_string()),
            Some(("MCC_ACCESS_TOKEN", v)) => token = Some(v.trim().to_string()),
            Some(("MCC_SECRET_KEY", v)) => secret = Some(v.trim().to_string()),
            _ => {}
        }
    }
    match (url, token, secret) {
        (Some(url), Some(token), Some(secret)) => Ok(Endpoint { url, token, secret }),
        _ => Err(fail(
            "it lacks MCC_ENDPOINT_URL, MCC_ACCESS_TOKEN or MCC_SECRET_KEY".into(),
        )),
    }
}

/// Turns an error answer into the library's error, so that the exit code
/// is the one the same failure has locally.
pub fn answer_error(url: &str, status: u16, body: &[u8]) -> Error {
    if status == 401 {
        return Error::Failed(format!(
            "the daemon at {url} refused the request (unauthorized): check the access token and \
             secret key (MCC_ACCESS_TOKEN, MCC_SECRET_KEY) and that this machine's clock is right"
        ));
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) => {
            let mut e = b.error;
            if status == 400 {
                e.code = "invalid".into();
            }
            e.into_error()
        }
        Err(_) => Error::Failed(format!(
            "the daemon at {url} answered {status}: {}",
            String::from_utf8_lossy(body).trim()
        )),
    }
}

impl Client {
    pub fn new(endpoint: Endpoint) -> Result<Client> {
        let url = endpoint.url.trim_end_matches('/').to_string();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::Invalid(format!(
                "--endpoint-url '{url}': give an http:// or https:// URL, e.g. http://127.0.0.1:5000"
            )));
        }
        if endpoint.token.is_empty() || endpoint.secret.is_empty() {
            return Err(Error::Invalid(format!(
                "--endpoint-url {url} needs --access-token and --secret-key (or MCC_ACCESS_TOKEN \
                 and MCC_SECRET_KEY; `mcc serve` wrote the admin's in its state directory's \
                 credentials file)"
            )));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("mcc/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Failed(format!("HTTP client: {e}")))?;
        Ok(Client {
            endpoint: Endpoint { url, ..endpoint },
            http,
        })
    }

    fn unreachable(&self, e: reqwest::Error) -> Error {
        // the error of the request, not of the connection's underlying
        // causes only: "error sending request" tells a refused
        // connection from one the daemon closed while the body was sent
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            reason.push_str(&format!(": {s}"));
            source = s.source();
        }
        Error::NoDaemon {
            url: self.endpoint.url.clone(),
            reason,
            hint: "start the daemon (`mcc serve`), or check --endpoint-url / MCC_ENDPOINT_URL"
                .into(),
        }
    }

    /// The headers that sign a request.
    pub fn signed(&self, method: &str, path: &str, body: &[u8]) -> Vec<(&'static str, String)> {
        sign::sign(
            method,
            path,
            body,
            &self.endpoint.token,
            &self.endpoint.secret,
        )
    }

    /// Sends one signed request; the response, whatever its status. A
    /// 429 (over the token's rate, so nothing was done) is sent again,
    /// freshly signed, after the `Retry-After` the daemon gave, for up to
    /// [`RETRY_FOR`] in all, saying so on stderr.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<reqwest::Response> {
        let mut waited = std::time::Duration::ZERO;
        loop {
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.endpoint.url));
            for (k, v) in self.signed(method.as_str(), path, &body) {
                req = req.header(k, v);
            }
            if !body.is_empty() {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            let res = req.send().await.map_err(|e| self.unreachable(e))?;
            if res.status() != reqwest::StatusCode::TOO_MANY_REQUESTS {
                return Ok(res);
            }
            match self.wait_turn(res.headers(), &mut waited) {
                Some(d) => tokio::time::sleep(d).await,
                None => return Ok(res),
            }
        }
    }

    /// After a 429: how long to wait before trying again (the answer's
    /// `Retry-After`, 1 s if it gives none), said on stderr; `None` once
    /// [`RETRY_FOR`] has been spent waiting.
    fn wait_turn(
        &self,
        headers: &reqwest::header::HeaderMap,
        waited: &mut std::time::Duration,
    ) -> Option<std::time::Duration> {
        let secs = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(1)
            .clamp(1, 30);
        let d = std::time::Duration::from_secs(secs);
        if *waited + d > RETRY_FOR {
            return None;
        }
        *waited += d;
        eprintln!(
            "mcc: the daemon at {} is at this token's rate limit (429); trying again in {secs}s",
            self.endpoint.url
        );
        Some(d)
    }

    /// Opens a signed WebSocket to `path` (with its query). An error
    /// answer instead of the upgrade is turned into the library's error.
    pub async fn websocket(&self, path: &str) -> Result<WebSocket> {
        let ws_url = format!(
            "{}{path}",
            self.endpoint
                .url
                .replacen("http://", "ws://", 1)
                .replacen("https://", "wss://", 1)
        );
        let mut waited = std::time::Duration::ZERO;
        loop {
            let mut req = ws_url
                .as_str()
                .into_client_request()
                .map_err(|e| Error::Invalid(format!("--endpoint-url: {e}")))?;
            for (k, v) in self.signed("GET", path, b"") {
                req.headers_mut().insert(
                    k,
                    v.parse()
                        .map_err(|_| Error::Failed("a signature header is not ASCII".into()))?,
                );
            }
            match tokio_tungstenite::connect_async(req).await {
                Ok((socket, _)) => return Ok(socket),
                Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
                    let status = res.status().as_u16();
                    if status == 429 {
                        if let Some(d) = self.wait_turn(res.headers(), &mut waited) {
                            tokio::time::sleep(d).await;
                            continue;
                        }
                    }
                    let body = res.body().clone().unwrap_or_default();
                    return Err(answer_error(&self.endpoint.url, status, &body));
                }
                Err(e) => {
                    return Err(Error::NoDaemon {
                        url: self.endpoint.url.clone(),
                        reason: e.to_string(),
                        hint: "start the daemon (`mcc serve`), or check --endpoint-url".into(),
                    })
                }
            }
        }
    }

    /// A request whose success is JSON of type `T`.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T> {
        let body = encode(body);
        let res = self.send(method, path, body).await?;
        let status = res.status().as_u16();
        let bytes = res.bytes().await.map_err(|e| self.unreachable(e))?;
        if status >= 400 {
            return Err(answer_error(&self.endpoint.url, status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::Failed(format!(
                "the daemon at {} answered what this mcc cannot read ({e}); are both the same version?",
                self.endpoint.url
            ))
        })
    }

    /// A request answered by JSON lines: each line as it comes.
    pub async fn lines<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        mut each: impl FnMut(T) -> Result<()>,
    ) -> Result<()> {
        let body = encode(body);
        let res = self.send(method, path, body).await?;
        let status = res.status().as_u16();
        if status >= 400 {
            let bytes = res.bytes().await.unwrap_or_default();
            return Err(answer_error(&self.endpoint.url, status, &bytes));
        }
        let mut stream = res.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.unreachable(e))?;
            buf.extend_from_slice(&chunk);
            while let Some(at) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=at).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let item = serde_json::from_slice(&line).map_err(|e| {
                    Error::Failed(format!("the daemon sent a line this mcc cannot read: {e}"))
                })?;
                each(item)?;
            }
        }
        Ok(())
    }

    /// Starts an operation (a request answered 202 with it) and follows
    /// it to its end, feeding its progress to `reporter`. Cancelling
    /// `cancel` asks the daemon to cancel it; the wait goes on until it
    /// has cleaned up. Its result, or its error.
    pub async fn operation(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        reporter: &dyn Reporter,
        cancel: &CancellationToken,
    ) -> Result<serde_json::Value> {
        let op: Operation = self.call(method, path, body).await?;
        let follow = format!("/api/v1/operations/{}?follow=true", op.id);
        let mut done: Option<Operation> = None;
        // Ctrl-C asks the daemon to cancel; following goes on until the
        // operation has cleaned up and ended.
        let canceller = {
            let me = self.clone();
            let cancel = cancel.clone();
            let path = format!("/api/v1/operations/{}", op.id);
            tokio::spawn(async move {
                cancel.cancelled().await;
                let _ = me.send(Method::DELETE, &path, Vec::new()).await;
            })
        };
        let followed = self
            .lines::<OperationEvent>(Method::GET, &follow, None, |e| {
                match e {
                    OperationEvent::Begin { title, total } => reporter.begin(&title, total),
                    OperationEvent::Advance { item } => reporter.advance(&item),
                    OperationEvent::End { ok } => reporter.end(ok),
                    OperationEvent::Note { message } => reporter.note(&message),
                    OperationEvent::Done { operation } => done = Some(operation),
                }
                Ok(())
            })
            .await;
        canceller.abort();
        followed?;
        let op = match done {
            Some(op) => op,
            None => {
                self.call::<Operation>(Method::GET, &format!("/api/v1/operations/{}", op.id), None)
                    .await?
            }
        };
        match op.state {
            OperationState::Succeeded => Ok(op.result.unwrap_or(serde_json::Value::Null)),
            OperationState::Cancelled => Err(Error::Interrupted),
            OperationState::Running => Err(Error::Failed(format!(
                "lost track of operation {} while it ran; `mcc api GET /api/v1/operations/{}` \
                 shows how it ends",
                op.id, op.id
            ))),
            OperationState::Failed => Err(op
                .error
                .map(|e| e.into_error())
                .unwrap_or_else(|| Error::Failed(format!("operation {} failed", op.id)))),
        }
    }
}

/// A request body as sent: JSON, with the fields whose value is `null`
/// left out (the daemon refuses a `null`: a field is given or absent; the
/// request types serialize an unset option as `null`).
fn encode(body: Option<&serde_json::Value>) -> Vec<u8> {
    fn strip(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => m
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip(v)))
                .collect(),
            serde_json::Value::Array(a) => a.iter().map(strip).collect(),
            other => other.clone(),
        }
    }
    body.map(|b| strip(b).to_string().into_bytes())
        .unwrap_or_default()
}

/// A typed request body (one of `mcc_api`'s) as [`Client::call`] takes it.
pub fn body<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).expect("a request type serializes")
}

/// Reads an operation's result as `T`.
pub fn result<T: DeserializeOwned>(v: serde_json::Value) -> Result<T> {
    serde_json::from_value(v)
        .map_err(|e| Error::Failed(format!("the daemon's result cannot be read: {e}")))
}
