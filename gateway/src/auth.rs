//! JWT authentication: `Authorization: Bearer <token>` to an [`Identity`].
//!
//! jsonwebtoken 11 with only its `rust_crypto` backend (pure Rust, no C
//! toolchain; the crate panics at first use unless exactly one backend is
//! on). Exactly one algorithm is accepted, the configured one, so
//! `alg: none` and algorithm-confusion tokens fail; `exp` is required and
//! `nbf` checked, with the configured leeway.
//!
//! Verified tokens are remembered in a bounded [`TokenCache`] keyed by the
//! whole token string (see [`token_cache`]): a token seen before skips the
//! signature check and the claim parsing, but its `exp` and `nbf` are still
//! checked against the clock, with the same leeway, on every request.

mod token_cache;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::http::header::{HeaderMap, AUTHORIZATION};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use msa_runtime::Identity;
use serde_json::{Map, Value};

use crate::config::{AuthConfig, JwtAlg};
use crate::error::{ApiError, GatewayError};
use token_cache::{TokenCache, VerifiedClaims};

/// Verified tokens remembered per gateway (about 1 KB each for a typical
/// token, so a full cache is a few MB at most).
pub(crate) const TOKEN_CACHE_ENTRIES: usize = 4096;

/// Verifies bearer tokens against one key and algorithm.
pub(crate) struct Authenticator {
    key: DecodingKey,
    validation: Validation,
    roles_claim: String,
    admin_roles: Vec<String>,
    cache: TokenCache,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of logs.
        f.debug_struct("Authenticator")
            .field("algorithms", &self.validation.algorithms)
            .field("roles_claim", &self.roles_claim)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Checks the settings and loads the key.
    pub(crate) fn new(cfg: &AuthConfig) -> Result<Self, GatewayError> {
        let bad = |reason: String| GatewayError::Auth { reason };
        let (alg, key) = match cfg.alg {
            JwtAlg::HS256 => {
                if cfg.public_key_pem.is_some() {
                    return Err(bad("HS256 uses `secret`, not `public_key_pem`".into()));
                }
                let secret = cfg.secret.as_deref().unwrap_or_default();
                if secret.is_empty() {
                    return Err(bad("HS256 needs a non-empty `secret`".into()));
                }
                (
                    Algorithm::HS256,
                    DecodingKey::from_secret(secret.as_bytes()),
                )
            }
            JwtAlg::RS256 | JwtAlg::ES256 => {
                if cfg.secret.is_some() {
                    return Err(bad(format!(
                        "{:?} uses `public_key_pem`, not `secret`",
                        cfg.alg
                    )));
                }
                let pem = cfg
                    .public_key_pem
                    .as_deref()
                    .ok_or_else(|| bad(format!("{:?} needs `public_key_pem`", cfg.alg)))?;
                if cfg.alg == JwtAlg::RS256 {
                    let key = DecodingKey::from_rsa_pem(pem.as_bytes())
                        .map_err(|e| bad(format!("`public_key_pem` is not an RSA key: {e}")))?;
                    (Algorithm::RS256, key)
                } else {
                    let key = DecodingKey::from_ec_pem(pem.as_bytes())
                        .map_err(|e| bad(format!("`public_key_pem` is not an EC key: {e}")))?;
                    (Algorithm::ES256, key)
                }
            }
        };
        if cfg.roles_claim.is_empty() {
            return Err(bad("`roles_claim` is empty".into()));
        }
        let mut validation = Validation::new(alg);
        validation.leeway = cfg.leeway_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // No audience is configured, so none is checked.
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp"]);
        Ok(Self {
            key,
            validation,
            roles_claim: cfg.roles_claim.clone(),
            admin_roles: cfg.admin_roles.clone(),
            cache: TokenCache::new(TOKEN_CACHE_ENTRIES),
        })
    }

    /// The caller's identity from the request's bearer token, or 401.
    pub(crate) fn authenticate(&self, headers: &HeaderMap) -> Result<Identity, ApiError> {
        self.authenticate_at(headers, unix_now())
    }

    /// [`authenticate`](Self::authenticate) with a cached token's `exp` and
    /// `nbf` checked against `now` (seconds since the Unix epoch). A token
    /// not in the cache is verified in full by jsonwebtoken, against the
    /// system clock, and cached if it passes.
    fn authenticate_at(&self, headers: &HeaderMap, now: u64) -> Result<Identity, ApiError> {
        let token = bearer(headers)?;
        if let Some(claims) = self.cache.get(token) {
            self.check_times(&claims, now)?;
            return Ok(claims.identity);
        }
        let claims = self.verify(token)?;
        let identity = claims.identity.clone();
        self.cache.insert(token, claims);
        Ok(identity)
    }

    /// The time checks jsonwebtoken makes, for a token verified earlier:
    /// expired when `exp < now - leeway`, not valid yet when `nbf > now + leeway`.
    fn check_times(&self, claims: &VerifiedClaims, now: u64) -> Result<(), ApiError> {
        let leeway = self.validation.leeway;
        if claims.exp < now.saturating_sub(leeway) {
            return Err(ApiError::unauthorized("token expired"));
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(leeway))
        {
            return Err(ApiError::unauthorized("token not valid yet"));
        }
        Ok(())
    }

    /// Full verification: signature, algorithm, `exp`, `nbf`, then the claims.
    fn verify(&self, token: &str) -> Result<VerifiedClaims, ApiError> {
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &self.key, &self.validation)
            .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            let why = match e.kind() {
                ErrorKind::ExpiredSignature => "token expired",
                ErrorKind::ImmatureSignature => "token not valid yet",
                ErrorKind::InvalidSignature => "bad token signature",
                ErrorKind::InvalidAlgorithm => "token algorithm not accepted",
                ErrorKind::MissingRequiredClaim(_) => "token lacks a required claim",
                _ => "invalid token",
            };
            tracing::debug!(error = %e, "token rejected");
            ApiError::unauthorized(why)
        })?;
        let claims = data.claims;
        let subject = match claims.get("sub") {
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        let roles = match claims.get(&self.roles_claim) {
            Some(Value::String(s)) => vec![s.clone()],
            // Non-string entries carry no role.
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        // jsonwebtoken checked both (and requires `exp`), reading them this way.
        let exp = claims.get("exp").and_then(numeric_date);
        let nbf = claims.get("nbf").and_then(numeric_date);
        let exp = exp.ok_or_else(|| ApiError::unauthorized("token lacks a required claim"))?;
        Ok(VerifiedClaims {
            identity: Identity { subject, roles },
            exp,
            nbf,
        })
    }

    /// Whether `identity` may use the admin endpoints.
    pub(crate) fn is_admin(&self, identity: &Identity) -> bool {
        self.admin_roles.iter().any(|r| identity.has_role(r))
    }
}

/// A JWT NumericDate as jsonwebtoken reads it: a `u64`, or a finite
/// non-negative float rounded.
fn numeric_date(v: &Value) -> Option<u64> {
    if let Some(u) = v.as_u64() {
        return Some(u);
    }
    let f = v.as_f64()?;
    (f.is_finite() && f >= 0.0 && f < u64::MAX as f64).then(|| f.round() as u64)
}

/// Seconds since the Unix epoch (0 if the clock is before it).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// The token of an `Authorization: Bearer ...` header, or 401.
fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
    let (scheme, token) = value
        .trim()
        .split_once(' ')
        .ok_or_else(|| ApiError::unauthorized("malformed Authorization header"))?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::unauthorized("expected a bearer token"));
    }
    Ok(token)
}

/// Signs an HS256 token for `subject` with `roles` (in the `roles` claim),
/// valid for `ttl` from now: a convenience for demos, tests and benchmarks.
/// Real deployments get their tokens from an identity provider.
///
/// # Errors
/// [`GatewayError::Token`] if the secret is empty or signing fails.
///
/// # Examples
/// ```
/// let t = msa_gateway::hs256_token("s3cret", "alice", &["customer"], std::time::Duration::from_secs(60)).unwrap();
/// assert_eq!(t.split('.').count(), 3);
/// ```
pub fn hs256_token(
    secret: &str,
    subject: &str,
    roles: &[&str],
    ttl: Duration,
) -> Result<String, GatewayError> {
    if secret.is_empty() {
        return Err(GatewayError::Token {
            reason: "empty secret".into(),
        });
    }
    let now = unix_now();
    let claims = serde_json::json!({
        "sub": subject,
        "roles": roles,
        "iat": now,
        "exp": now.saturating_add(ttl.as_secs()),
    });
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| GatewayError::Token {
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn a_signed_token_round_trips_to_an_identity() {
        let auth = Authenticator::new(&AuthConfig::hs256("k")).unwrap();
        let t = hs256_token("k", "alice", &["a", "b"], Duration::from_secs(60)).unwrap();
        let id = auth.authenticate(&headers(&format!("Bearer {t}"))).unwrap();
        assert_eq!(id, Identity::new("alice", ["a", "b"]));
        let id = auth
            .authenticate(&headers(&format!("bearer  {t} ")))
            .unwrap();
        assert_eq!(id.subject, "alice");
    }

    #[test]
    fn malformed_headers_are_401() {
        let auth = Authenticator::new(&AuthConfig::hs256("k")).unwrap();
        for h in [
            "",
            "Bearer",
            "Bearer ",
            "Basic abc",
            "Bearer a.b.c",
            "Bearer .....",
        ] {
            let e = auth.authenticate(&headers(h)).unwrap_err();
            assert_eq!(e.status.as_u16(), 401, "{h:?}");
        }
        assert_eq!(
            auth.authenticate(&HeaderMap::new()).unwrap_err().status,
            401
        );
    }

    fn hs256_with_leeway(secret: &str, leeway_secs: u64) -> Authenticator {
        let mut c = AuthConfig::hs256(secret);
        c.leeway_secs = leeway_secs;
        Authenticator::new(&c).unwrap()
    }

    fn sign(secret: &str, claims: &Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn a_cached_token_is_refused_once_it_expires() {
        for leeway in [0, 60] {
            let auth = hs256_with_leeway("k", leeway);
            let now = unix_now();
            let t = hs256_token("k", "alice", &["a"], Duration::from_secs(100)).unwrap();
            let h = headers(&format!("Bearer {t}"));
            // Verified in full, then cached.
            assert_eq!(auth.authenticate(&h).unwrap().subject, "alice");
            assert_eq!(auth.cache.len(), 1);
            // Served from the cache while valid, with the leeway...
            let exp = auth.cache.get(&t).unwrap().exp;
            assert!(exp >= now + 100, "{exp} {now}");
            assert_eq!(auth.authenticate_at(&h, exp).unwrap().subject, "alice");
            assert!(auth.authenticate_at(&h, exp + leeway).is_ok());
            // ...and refused once past it, though still cached.
            let e = auth.authenticate_at(&h, exp + leeway + 1).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.message.as_str()),
                (401, "token expired")
            );
            assert_eq!(auth.cache.len(), 1);
            assert!(auth.authenticate_at(&h, exp + 1_000_000).is_err());
        }
    }

    #[test]
    fn a_cached_token_is_checked_against_nbf_too() {
        let auth = hs256_with_leeway("k", 0);
        let now = unix_now();
        let t = sign(
            "k",
            &serde_json::json!({"sub": "n", "exp": now + 600, "nbf": now - 10}),
        );
        let h = headers(&format!("Bearer {t}"));
        assert!(auth.authenticate(&h).is_ok());
        assert_eq!(auth.cache.get(&t).unwrap().nbf, Some(now - 10));
        // The clock stepped back before nbf: not valid (yet), cached or not.
        let e = auth.authenticate_at(&h, now - 20).unwrap_err();
        assert_eq!(e.message, "token not valid yet");
        assert!(auth.authenticate_at(&h, now - 10).is_ok());
    }

    #[test]
    fn a_token_differing_in_its_signature_is_not_served_from_the_cache() {
        let auth = hs256_with_leeway("k", 60);
        let t = hs256_token("k", "alice", &["admin"], Duration::from_secs(600)).unwrap();
        assert!(auth.authenticate(&headers(&format!("Bearer {t}"))).is_ok());
        // Same header and claims: another byte in the middle of the signature...
        let (signed, sig) = t.rsplit_once('.').unwrap();
        let mut bytes = sig.as_bytes().to_vec();
        let i = bytes.len() / 2;
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let forged = format!("{signed}.{}", String::from_utf8(bytes).unwrap());
        let e = auth
            .authenticate(&headers(&format!("Bearer {forged}")))
            .unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.message.as_str()),
            (401, "bad token signature")
        );
        // ...or a valid signature by another key, or none at all.
        let other = hs256_token("other", "alice", &["admin"], Duration::from_secs(600)).unwrap();
        assert!(auth
            .authenticate(&headers(&format!("Bearer {other}")))
            .is_err());
        let bare = format!("{signed}.");
        assert!(auth
            .authenticate(&headers(&format!("Bearer {bare}")))
            .is_err());
        // Only the genuine token was cached, and it still passes.
        assert_eq!(auth.cache.len(), 1);
        assert!(auth.authenticate(&headers(&format!("Bearer {t}"))).is_ok());
    }

    #[test]
    fn the_cache_stays_bounded_under_many_tokens() {
        let auth = hs256_with_leeway("k", 60);
        let cap = auth.cache.capacity();
        assert_eq!(cap, TOKEN_CACHE_ENTRIES);
        for n in 0..cap + cap / 2 {
            let t = hs256_token("k", &format!("u{n}"), &["r"], Duration::from_secs(600)).unwrap();
            let id = auth.authenticate(&headers(&format!("Bearer {t}"))).unwrap();
            assert_eq!(id.subject, format!("u{n}"));
        }
        let len = auth.cache.len();
        assert!(len <= cap && len > 0, "{len} > {cap}");
    }

    #[test]
    fn bad_key_settings_are_rejected() {
        let mut c = AuthConfig::hs256("");
        assert!(Authenticator::new(&c).is_err());
        c.secret = Some("x".into());
        c.public_key_pem = Some("pem".into());
        assert!(Authenticator::new(&c).is_err());
        for alg in [JwtAlg::RS256, JwtAlg::ES256] {
            assert!(Authenticator::new(&AuthConfig::public_key(alg, "not a pem")).is_err());
        }
        assert!(hs256_token("", "a", &[], Duration::from_secs(1)).is_err());
    }
}
