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
    /// Open connections each worker serves at once (default 25,000,
    /// actix-web's); beyond it new connections wait in the listen backlog
    /// until one closes. Bounds the file descriptors and buffers idle or
    /// slow clients can hold.
    pub max_connections: usize,
    /// Timeout of each call, in milliseconds (`None`: the node's default ask timeout).
    pub timeout_ms: Option<u64>,
    /// Calls in flight per route before new ones get 429 (default 1024).
    pub max_concurrency: usize,
    /// JWT authentication; `None` turns auth off (everything allowed, no identity).
    pub auth: Option<AuthConfig>,
    /// Who may call what when auth is on (`[[gateway.policy]]`); default deny.
    /// A rule with `service = "@topics"` governs `GET /v1/topics/{topic}`
    /// (its `message` pattern matches topic names).
    pub policy: Vec<PolicyRule>,
    /// Events held per server-sent-events client (default 256); a client
    /// further behind misses events and gets a `lagged` event.
    pub sse_buffer: usize,
    /// Time between heartbeat comments on a server-sent-events stream, in
    /// milliseconds (default 15,000).
    pub sse_heartbeat_ms: u64,
    /// Extra routes mapping a method and path to a service message (`[[gateway.routes]]`).
    pub routes: Vec<RouteConfig>,
    /// CORS for browser callers (`[gateway.cors]`); `None`: no CORS headers
    /// at all, and a preflight is 405.
    pub cors: Option<CorsConfig>,
    /// HTTPS (`[gateway.tls]`); `None`: plain HTTP (with a warning at start
    /// when `bind` is not a loopback address).
    pub tls: Option<TlsConfig>,
    /// gRPC ingress beside the HTTP server (a node's top-level `[grpc]`
    /// table, docs/grpc.md); `None`: no gRPC. Same auth, policy, timeout and
    /// drain as the HTTP calls.
    #[serde(skip)]
    pub grpc: Option<crate::grpc::GrpcConfig>,
}

/// HTTPS settings (`[gateway.tls]`): PEM files.
///
/// # Examples
/// ```
/// let t: msa_gateway::TlsConfig = serde_json::from_value(serde_json::json!({
///     "cert": "/etc/msa/gateway.crt", "key": "/etc/msa/gateway.key",
/// })).unwrap();
/// assert!(t.client_ca.is_none());
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The server's certificate chain (leaf first), PEM.
    pub cert: std::path::PathBuf,
    /// The server's private key (PKCS#8, PKCS#1 or SEC1), PEM.
    pub key: std::path::PathBuf,
    /// When set, clients must present a certificate issued by this CA
    /// (PEM; mutual TLS); without one the handshake fails.
    #[serde(default)]
    pub client_ca: Option<std::path::PathBuf>,
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
            max_connections: 25_000,
            timeout_ms: None,
            max_concurrency: 1024,
            auth: None,
            policy: Vec::new(),
            sse_buffer: 256,
            sse_heartbeat_ms: 15_000,
            routes: Vec::new(),
            cors: None,
            tls: None,
            grpc: None,
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

/// JWT verification settings (`[gateway.auth]`).
///
/// Keys come from one fixed key (`secret` for HS256, `public_key_pem` for
/// RS256 / ES256, with `alg`), from a JWKS document (`jwks`: a file or a
/// URL, as identity providers publish them; several keys, picked by the
/// token's `kid`), or both (a token without a `kid` then uses the fixed
/// key). `audience` and `issuer` are checked whenever they are set.
///
/// # Examples
/// ```
/// let a: msa_gateway::AuthConfig = serde_json::from_value(serde_json::json!({
///     "jwks": "https://idp.example.com/.well-known/jwks.json",
///     "audience": "shop-api",
///     "issuer": ["https://idp.example.com/"],
/// })).unwrap();
/// assert_eq!(a.audience, ["shop-api"]);
/// assert!(a.alg.is_none());
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The algorithm of the fixed key (`secret` / `public_key_pem`); tokens
    /// signed otherwise get 401. Not needed with `jwks` alone (each JWK
    /// names or implies its own algorithm).
    #[serde(default)]
    pub alg: Option<JwtAlg>,
    /// HS256: the shared secret (its UTF-8 bytes are the key).
    #[serde(default)]
    pub secret: Option<String>,
    /// RS256 / ES256: the issuer's public key, PEM text.
    #[serde(default)]
    pub public_key_pem: Option<String>,
    /// A JWKS document (RFC 7517): a file path, or an `https://` URL
    /// fetched when first needed, again every `jwks_refresh_secs`, and at
    /// once when a token names an unknown `kid` (at most once every
    /// `jwks_min_refresh_secs`). `http://` is accepted only for a loopback
    /// host. Keys RS256, ES256 (P-256) and HS256 (`oct`) are used; others
    /// are skipped with a warning.
    #[serde(default)]
    pub jwks: Option<String>,
    /// Extra CA certificates (PEM file) trusted for an `https://` JWKS URL,
    /// besides the system's roots (for a private identity provider).
    #[serde(default)]
    pub jwks_ca: Option<std::path::PathBuf>,
    /// Seconds a fetched JWKS is used before it is fetched again (default 300).
    #[serde(default = "default_jwks_refresh_secs")]
    pub jwks_refresh_secs: u64,
    /// Least seconds between two fetches caused by unknown `kid`s (default
    /// 10): a stream of tokens naming made-up keys cannot make the gateway
    /// hammer the identity provider.
    #[serde(default = "default_jwks_min_refresh_secs")]
    pub jwks_min_refresh_secs: u64,
    /// Timeout of one JWKS fetch, in milliseconds (default 5,000).
    #[serde(default = "default_jwks_timeout_ms")]
    pub jwks_timeout_ms: u64,
    /// Audiences accepted (one string or a list): when set, a token's `aud`
    /// must name one of them, or it gets 401.
    #[serde(default, deserialize_with = "one_or_many")]
    pub audience: Vec<String>,
    /// Issuers accepted (one string or a list): when set, a token's `iss`
    /// must be one of them, or it gets 401.
    #[serde(default, deserialize_with = "one_or_many")]
    pub issuer: Vec<String>,
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
    /// No key at all and every other field at its default: the base of the
    /// constructors below.
    fn empty() -> Self {
        Self {
            alg: None,
            secret: None,
            public_key_pem: None,
            jwks: None,
            jwks_ca: None,
            jwks_refresh_secs: default_jwks_refresh_secs(),
            jwks_min_refresh_secs: default_jwks_min_refresh_secs(),
            jwks_timeout_ms: default_jwks_timeout_ms(),
            audience: Vec::new(),
            issuer: Vec::new(),
            roles_claim: default_roles_claim(),
            leeway_secs: default_leeway_secs(),
            admin_roles: default_admin_roles(),
        }
    }

    /// HS256 with `secret` and the other fields at their defaults.
    pub fn hs256(secret: impl Into<String>) -> Self {
        Self {
            alg: Some(JwtAlg::HS256),
            secret: Some(secret.into()),
            ..Self::empty()
        }
    }

    /// RS256 or ES256 with a public key in PEM and the other fields at their defaults.
    pub fn public_key(alg: JwtAlg, public_key_pem: impl Into<String>) -> Self {
        Self {
            alg: Some(alg),
            public_key_pem: Some(public_key_pem.into()),
            ..Self::empty()
        }
    }

    /// Keys from a JWKS document (a file path or a URL) and the other
    /// fields at their defaults.
    pub fn jwks(source: impl Into<String>) -> Self {
        Self {
            jwks: Some(source.into()),
            ..Self::empty()
        }
    }
}

/// One string or a list of strings.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

fn default_jwks_refresh_secs() -> u64 {
    300
}

fn default_jwks_min_refresh_secs() -> u64 {
    10
}

fn default_jwks_timeout_ms() -> u64 {
    5_000
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
        assert_eq!(a.alg, Some(JwtAlg::HS256));
        let a: AuthConfig =
            serde_json::from_str(r#"{"jwks": "k.json", "audience": ["a", "b"], "issuer": "i"}"#)
                .unwrap();
        assert_eq!(
            (a.audience.len(), a.issuer.as_slice()),
            (2, &["i".to_string()][..])
        );
        assert!(
            serde_json::from_str::<AuthConfig>(r#"{"jwks": "k.json", "audience": 3}"#).is_err()
        );
        assert_eq!((a.roles_claim.as_str(), a.leeway_secs), ("roles", 60));
        assert_eq!(a.admin_roles, ["admin"]);
    }
}
