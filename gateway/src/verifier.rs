//! The gateway's JWT check as a node's
//! [`IdentityVerifier`]: a node that serves calls from other nodes verifies
//! the bearer token each call carries with the same settings the gateway
//! checks requests with ([`AuthConfig`]), so it believes a caller's roles
//! only from a token it verified itself (docs/security.md, "Access rules at
//! each service").
//!
//! A thin adapter over the gateway's own authenticator (same algorithms,
//! keys, claims, leeway and token cache), so both checks stay one.

use actix_web::http::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use msa_runtime::access::{IdentityVerifier, VerifyError};
use msa_runtime::Identity;

use crate::auth::Authenticator;
use crate::config::AuthConfig;
use crate::error::GatewayError;

/// Verifies the JWTs calls carry with the gateway's auth settings.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use msa_gateway::{AuthConfig, JwtVerifier};
/// use msa_runtime::access::IdentityVerifier;
///
/// let cfg = AuthConfig::hs256("s3cret");
/// let v = JwtVerifier::new(&cfg).unwrap();
/// let token = msa_gateway::hs256_token("s3cret", "alice", &["admin"], Duration::from_secs(60)).unwrap();
/// assert!(v.verify(&token).unwrap().has_role("admin"));
/// assert!(v.verify("not.a.token").is_err());
/// ```
#[derive(Debug)]
pub struct JwtVerifier {
    auth: Authenticator,
}

impl JwtVerifier {
    /// A verifier with these settings.
    ///
    /// # Errors
    /// [`GatewayError::Auth`] for unusable settings (as the gateway's).
    pub fn new(cfg: &AuthConfig) -> Result<Self, GatewayError> {
        Ok(Self {
            auth: Authenticator::new(cfg)?,
        })
    }
}

impl IdentityVerifier for JwtVerifier {
    fn verify(&self, token: &str) -> Result<Identity, VerifyError> {
        let value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| VerifyError::new("the token is not a header value"))?;
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value);
        self.auth
            .authenticate(&headers)
            .map_err(|e| VerifyError::new(e.message))
    }
}

/// The token of a request's `Authorization: Bearer` header (already
/// verified by the gateway when this is called), to travel with the call.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
