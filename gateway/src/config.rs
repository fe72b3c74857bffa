//! Gateway settings, read from a TOML `[gateway]` table or built in code.
//!
//! Every field has a default, so an empty table is a working gateway on
//! `127.0.0.1:8080` with auth off and only the generic
//! `POST /v1/{service}/{message}` route.

use std::net::{Ipv4Addr, SocketAddr};

use serde::Deserialize;

/// Gateway settings.
///
/// Deserializes from a TOML `[gateway]` table; every field is optional and
/// unknown fields are rejected (a typo must not silently turn auth off).
///
/// # Examples
/// ```
/// let cfg: msa_gateway::GatewayConfig = serde_json::from_value(serde_json::json!({
///     "bind": "127.0.0.1:0",
///     "routes": [{"method": "GET", "path": "/orders/{id}",
///                 "service": "orders", "message": "shop.GetOrder"}],
/// })).unwrap();
/// assert_eq!(cfg.workers, 2);
/// assert!(cfg.auth.is_none());
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// The HTTP listen address (default `127.0.0.1:8080`; port 0 picks a free one).
    pub bind: SocketAddr,
    /// actix-web worker threads (default 2).
    ///
    /// Deliberately small and not "one per core": the gateway shares the
    /// process with the node's own arbiter threads, which do the real work
    /// (every call is handed to a service instance); a worker only parses
    /// HTTP, checks a token and awaits a reply. Two workers keep one
    /// request's slow parsing from stalling the rest without taking cores
    /// from the services.
    pub workers: usize,
    /// Largest request body accepted, in bytes (default 1 MiB); beyond it the
    /// answer is 413 without reading the rest.
    pub max_body_bytes: usize,
    /// Time a request's body may take to arrive whole, in milliseconds
    /// (default 10,000); past it the answer is 408 and the connection is
    /// closed. The body is read before the call takes a concurrency permit,
    /// so a slow body never holds one.
    pub body_timeout_ms: u64,
    /// Time a connection may take to send a request's head (request line
    /// and headers), in milliseconds (default 5,000): actix-web's
    /// `client_request_timeout`. A client that never finishes its head
    /// (slowloris) gets 408 and is closed.
    pub head_timeout_ms: u64,
    /// Largest total size of a request's headers (names, values and
    /// separators), in bytes (default 16 KiB); beyond it the answer is 431.
    /// actix-http closes any head over 128 KiB or with more than 96 headers
    /// with a 431 before the gateway sees it, whatever this says.
    pub max_header_bytes: usize,
    /// Timeout of each call, in milliseconds (`None`: the node's default ask timeout).
    pub timeout_ms: Option<u64>,
    /// Calls in flight per route before new ones get 429 (default 1024).
    pub max_concurrency: usize,
    /// JWT authentication; `None` turns auth off (everything allowed, no identity).
    pub auth: Option<AuthConfig>,
    /// Who may call what when auth is on (`[[gateway.policy]]`); default deny.
    pub policy: Vec<PolicyRule>,
    /// Extra routes mapping a method and path to a service message (`[[gateway.routes]]`).
    pub routes: Vec<RouteConfig>,
    /// CORS for browser callers (`[gateway.cors]`); `None`: no CORS headers
    /// at all, and a preflight is 405.
    pub cors: Option<CorsConfig>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            workers: 2,
            max_body_bytes: 1024 * 1024,
            body_timeout_ms: 10_000,
            head_timeout_ms: 5_000,
            max_header_bytes: 16 * 1024,
            timeout_ms: None,
            max_concurrency: 1024,
            auth: None,
            policy: Vec::new(),
            routes: Vec::new(),
            cors: None,
        }
    }
}

/// CORS settings (`[gateway.cors]`): which web origins may call the
/// gateway from a browser, with which methods and headers.
///
/// # Examples
/// ```
/// let c: msa_gateway::CorsConfig = serde_json::from_value(serde_json::json!({
///     "allowed_origins": ["https://shop.example.com"],
/// })).unwrap();
/// assert_eq!(c.max_age_secs, Some(600));
/// assert!(c.allowed_headers.contains(&"authorization".to_string()));
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// Origins allowed, exactly as browsers send them
    /// (`https://shop.example.com`, `http://localhost:3000`: scheme, host,
    /// port, no path), or the single entry `"*"` for any origin.
    pub allowed_origins: Vec<String>,
    /// Methods a preflight may ask for (default GET, POST, PUT, PATCH, DELETE).
    pub allowed_methods: Vec<String>,
    /// Request headers a preflight may ask for (default `authorization`,
    /// `content-type`, `x-request-id`, `traceparent`).
    pub allowed_headers: Vec<String>,
    /// Response headers a page may read besides the simple ones (default
    /// `x-request-id`).
    pub expose_headers: Vec<String>,
    /// How long a browser may cache a preflight's answer, in seconds
    /// (default 600; `None` leaves it to the browser).
    pub max_age_secs: Option<usize>,
    /// Whether pages may send cookies or HTTP auth along (default false;
    /// not allowed with `"*"`).
    pub allow_credentials: bool,
}

impl Default for CorsConfig {
    fn default() -> Self {
        let strings = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect();
        Self {
            allowed_origins: Vec::new(),
            allowed_methods: strings(&["GET", "POST", "PUT", "PATCH", "DELETE"]),
            allowed_headers: strings(&[
                "authorization",
                "content-type",
                "x-request-id",
                "traceparent",
            ]),
            expose_headers: strings(&["x-request-id"]),
            max_age_secs: Some(600),
            allow_credentials: false,
        }
    }
}

/// JWT verification settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The one signature algorithm accepted; tokens signed otherwise get 401.
    pub alg: JwtAlg,
    /// HS256: the shared secret (its UTF-8 bytes are the key).
    #[serde(default)]
    pub secret: Option<String>,
    /// RS256 / ES256: the issuer's public key, PEM text.
    #[serde(default)]
    pub public_key_pem: Option<String>,
    /// The claim holding the caller's roles: an array of strings, or one
    /// string for a single role (default `"roles"`).
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds (default 60).
    #[serde(default = "default_leeway_secs")]
    pub leeway_secs: u64,
    /// Roles allowed on `/metrics` and `/v1/cluster` (default `["admin"]`).
    #[serde(default = "default_admin_roles")]
    pub admin_roles: Vec<String>,
}

impl AuthConfig {
    /// HS256 with `secret` and the other fields at their defaults.
    pub fn hs256(secret: impl Into<String>) -> Self {
        Self {
            alg: JwtAlg::HS256,
            secret: Some(secret.into()),
            public_key_pem: None,
            roles_claim: default_roles_claim(),
            leeway_secs: default_leeway_secs(),
            admin_roles: default_admin_roles(),
        }
    }

    /// RS256 or ES256 with a public key in PEM and the other fields at their defaults.
    pub fn public_key(alg: JwtAlg, public_key_pem: impl Into<String>) -> Self {
        Self {
            alg,
            secret: None,
            public_key_pem: Some(public_key_pem.into()),
            roles_claim: default_roles_claim(),
            leeway_secs: default_leeway_secs(),
            admin_roles: default_admin_roles(),
        }
    }
}

fn default_roles_claim() -> String {
    "roles".to_string()
}

fn default_leeway_secs() -> u64 {
    60
}

fn default_admin_roles() -> Vec<String> {
    vec!["admin".to_string()]
}

/// A JWT signature algorithm the gateway can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum JwtAlg {
    /// HMAC with SHA-256 (shared secret).
    HS256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RSA public key).
    RS256,
    /// ECDSA on P-256 with SHA-256 (EC public key).
    ES256,
}

/// One access rule: callers holding any of `roles` may send `message` to `service`.
///
/// `service` and `message` are patterns: `"*"` matches everything,
/// `"shop.*"` everything starting with `"shop."`, anything else itself.
/// A role `"*"` stands for any authenticated caller.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRule {
    /// Service name pattern.
    pub service: String,
    /// Message wire-name pattern.
    pub message: String,
    /// Roles allowed (at least one).
    pub roles: Vec<String>,
}

/// A configured route: `method path` calls `message` on `service`.
///
/// `path` segments written `{name}` capture that part of the URL; captured
/// values are merged into the JSON body object under their names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// HTTP method: GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS.
    pub method: String,
    /// Path pattern, e.g. `/orders/{id}`.
    pub path: String,
    /// The service called.
    pub service: String,
    /// The wire name of the message sent.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_table_gives_the_defaults() {
        let c: GatewayConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c.bind, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(
            (c.workers, c.max_body_bytes, c.max_concurrency),
            (2, 1 << 20, 1024)
        );
        assert!(c.auth.is_none() && c.timeout_ms.is_none());
    }

    #[test]
    fn unknown_fields_and_algorithms_are_rejected() {
        assert!(serde_json::from_str::<GatewayConfig>(r#"{"auht": null}"#).is_err());
        let e = serde_json::from_str::<AuthConfig>(r#"{"alg": "none", "secret": "s"}"#);
        assert!(e.is_err());
        let a: AuthConfig = serde_json::from_str(r#"{"alg": "HS256", "secret": "s"}"#).unwrap();
        assert_eq!(a.alg, JwtAlg::HS256);
        assert_eq!((a.roles_claim.as_str(), a.leeway_secs), ("roles", 60));
        assert_eq!(a.admin_roles, ["admin"]);
    }
}
