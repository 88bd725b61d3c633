//! What each route needs, declared once with the route's OpenAPI entry and
//! read back from the document the router was built with.
//!
//! Every operation of the document says who may call it: `security(())`
//! for anyone (`/healthz`, the dashboard's page), `security(("session" =
//! []))` for the dashboard's signed-in page, or `security(("signature" =
//! ["read"]))` (or `write`, `exec`, `tokens`) for a signed request whose
//! token holds that scope. A route may also set `x-mcc-body-limit`, the
//! largest body it takes (a context folder's upload); the others take
//! [`SMALL_BODY`]. The table is built when the router is, and a route
//! without a declared scope stops the daemon from starting (and fails the
//! unit test that builds the router): no route is reachable by default.

use std::collections::HashMap;

use axum::http::Method;

/// The largest body of a route that does not say otherwise.
pub const SMALL_BODY: usize = 1 << 20;

/// The name of the OpenAPI extension giving a route's body limit.
pub const BODY_LIMIT_EXTENSION: &str = "x-mcc-body-limit";

/// The security scheme of signed requests, and of the dashboard's session.
pub const SIGNATURE_SCHEME: &str = "signature";
pub const SESSION_SCHEME: &str = "session";

/// What a route needs of its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// No credentials: `/healthz`, the dashboard's static files, sign-in.
    Public,
    /// The dashboard's session cookie, checked by the dashboard's routes.
    Session,
    /// A signed request that only reads.
    Read,
    /// A signed request that changes something: creates, deletes, stops.
    Write,
    /// A signed request that runs a command in a node or container or
    /// sends bytes into one (exec, attach, forward).
    Exec,
    /// A signed request that sees or manages tokens.
    Tokens,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Public => "public",
            Scope::Session => "session",
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Exec => "exec",
            Scope::Tokens => "tokens",
        }
    }

    fn signed(name: &str) -> Option<Scope> {
        Some(match name {
            "read" => Scope::Read,
            "write" => Scope::Write,
            "exec" => Scope::Exec,
            "tokens" => Scope::Tokens,
            _ => return None,
        })
    }

    /// Whether it needs a signed request.
    pub fn is_signed(self) -> bool {
        !matches!(self, Scope::Public | Scope::Session)
    }
}

/// The scopes a token holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grants {
    pub read_only: bool,
}

impl Grants {
    pub fn allows(self, scope: Scope) -> bool {
        match scope {
            Scope::Public | Scope::Session | Scope::Read => true,
            Scope::Write | Scope::Exec | Scope::Tokens => !self.read_only,
        }
    }
}

/// What one route needs and takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub scope: Scope,
    pub body_limit: usize,
}

/// A route's rule by method and path template (`/api/v1/clusters/{name}`).
#[derive(Debug, Default)]
pub struct RouteTable {
    rules: HashMap<(Method, String), Rule>,
}

const METHODS: [(&str, Method); 8] = [
    ("get", Method::GET),
    ("put", Method::PUT),
    ("post", Method::POST),
    ("delete", Method::DELETE),
    ("options", Method::OPTIONS),
    ("head", Method::HEAD),
    ("patch", Method::PATCH),
    ("trace", Method::TRACE),
];

impl RouteTable {
    /// Reads every operation's scope and body limit from the document;
    /// an operation that declares none, or one this daemon does not
    /// know, is an error naming it.
    pub fn from_openapi(doc: &utoipa::openapi::OpenApi) -> Result<RouteTable, String> {
        let doc = serde_json::to_value(doc).map_err(|e| e.to_string())?;
        let paths = doc["paths"]
            .as_object()
            .ok_or("the OpenAPI document has no paths")?;
        let mut rules = HashMap::new();
        for (path, item) in paths {
            for (key, method) in &METHODS {
                let Some(op) = item.get(*key) else { continue };
                let what = format!("{} {path}", method.as_str());
                let rule = rule_of(op).map_err(|e| format!("{what}: {e}"))?;
                rules.insert((method.clone(), path.clone()), rule);
            }
        }
        Ok(RouteTable { rules })
    }

    /// The rule of a matched route; `None` for a path or method that
    /// no route serves.
    pub fn rule(&self, method: &Method, path: &str) -> Option<Rule> {
        // HEAD is served by a GET route
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        self.rules.get(&(method.clone(), path.to_string())).copied()
    }

    /// Whether any method of `path` (a route's pattern) has a rule: a
    /// served path that has none was added without its OpenAPI entry.
    pub fn knows_path(&self, path: &str) -> bool {
        self.rules.keys().any(|(_, p)| p == path)
    }

    /// Lets anyone call a route (`mcc serve --public-metrics`).
    pub fn make_public(&mut self, method: &Method, path: &str) {
        if let Some(r) = self.rules.get_mut(&(method.clone(), path.to_string())) {
            r.scope = Scope::Public;
        }
    }

    /// Every route with its rule, sorted.
    #[cfg(test)]
    pub fn routes(&self) -> Vec<(Method, String, Rule)> {
        let mut v: Vec<_> = self
            .rules
            .iter()
            .map(|((m, p), r)| (m.clone(), p.clone(), *r))
            .collect();
        v.sort_by(|a, b| (&a.1, a.0.as_str()).cmp(&(&b.1, b.0.as_str())));
        v
    }
}

fn rule_of(op: &serde_json::Value) -> Result<Rule, String> {
    let requirements = op["security"]
        .as_array()
        .ok_or("declares no security: say which scope it needs")?;
    let [requirement] = requirements.as_slice() else {
        return Err(format!(
            "declares {} security requirements; give exactly one",
            requirements.len()
        ));
    };
    let requirement = requirement
        .as_object()
        .ok_or("a security requirement is not an object")?;
    let scope = match requirement.iter().collect::<Vec<_>>().as_slice() {
        [] => Scope::Public,
        [(scheme, scopes)] if scheme.as_str() == SESSION_SCHEME => {
            if scopes.as_array().is_some_and(|s| !s.is_empty()) {
                return Err("the session scheme takes no scopes".into());
            }
            Scope::Session
        }
        [(scheme, scopes)] if scheme.as_str() == SIGNATURE_SCHEME => {
            let names: Vec<&str> = scopes
                .as_array()
                .map(|a| a.iter().filter_map(|s| s.as_str()).collect())
                .unwrap_or_default();
            match names.as_slice() {
                [one] => Scope::signed(one)
                    .ok_or_else(|| format!("'{one}' is not a scope: read, write, exec, tokens"))?,
                _ => return Err("a signed route names exactly one scope".into()),
            }
        }
        _ => return Err(format!("unknown security requirement {requirement:?}")),
    };
    let body_limit = match op.get(BODY_LIMIT_EXTENSION) {
        None => SMALL_BODY,
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| format!("{BODY_LIMIT_EXTENSION}: {v} is not a size in bytes"))?,
    };
    Ok(Rule { scope, body_limit })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(ops: serde_json::Value) -> utoipa::openapi::OpenApi {
        serde_json::from_value(json!({
            "openapi": "3.1.0",
            "info": {"title": "t", "version": "1"},
            "paths": ops,
        }))
        .unwrap()
    }

    #[test]
    fn every_operation_must_say_what_it_needs() {
        let ok = doc(json!({
            "/healthz": {"get": {"security": [{}], "responses": {}}},
            "/ui/state": {"get": {"security": [{"session": []}], "responses": {}}},
            "/api/x": {
                "get": {"security": [{"signature": ["read"]}], "responses": {}},
                "post": {"security": [{"signature": ["exec"]}], "x-mcc-body-limit": 5,
                         "responses": {}},
            },
        }));
        let t = RouteTable::from_openapi(&ok).unwrap();
        assert_eq!(
            t.rule(&Method::GET, "/healthz").unwrap().scope,
            Scope::Public
        );
        assert_eq!(
            t.rule(&Method::HEAD, "/healthz").unwrap().scope,
            Scope::Public
        );
        assert_eq!(
            t.rule(&Method::GET, "/ui/state").unwrap().scope,
            Scope::Session
        );
        assert_eq!(
            t.rule(&Method::POST, "/api/x").unwrap(),
            Rule {
                scope: Scope::Exec,
                body_limit: 5
            }
        );
        assert_eq!(
            t.rule(&Method::GET, "/api/x").unwrap().body_limit,
            SMALL_BODY
        );
        assert_eq!(t.rule(&Method::DELETE, "/api/x"), None);

        for bad in [
            json!({"/a": {"get": {"responses": {}}}}),
            json!({"/a": {"get": {"security": [], "responses": {}}}}),
            json!({"/a": {"get": {"security": [{"signature": []}], "responses": {}}}}),
            json!({"/a": {"get": {"security": [{"signature": ["root"]}], "responses": {}}}}),
            json!({"/a": {"get": {"security": [{"signature": ["read"]}, {}], "responses": {}}}}),
            json!({"/a": {"get": {"security": [{"other": []}], "responses": {}}}}),
        ] {
            let e = RouteTable::from_openapi(&doc(bad.clone())).unwrap_err();
            assert!(e.starts_with("GET /a: "), "{bad}: {e}");
        }
    }

    #[test]
    fn a_read_only_token_holds_only_read() {
        let ro = Grants { read_only: true };
        let rw = Grants { read_only: false };
        for s in [Scope::Write, Scope::Exec, Scope::Tokens] {
            assert!(!ro.allows(s) && rw.allows(s), "{s:?}");
        }
        assert!(ro.allows(Scope::Read) && rw.allows(Scope::Read));
    }
}
