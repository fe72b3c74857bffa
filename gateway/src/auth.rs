//! JWT authentication: `Authorization: Bearer <token>` to an [`Identity`].
//!
//! jsonwebtoken 11 with only its `rust_crypto` backend (pure Rust, no C
//! toolchain; the crate panics at first use unless exactly one backend is
//! on). Each key verifies exactly one algorithm (the fixed key's `alg`, or
//! what a JWK names or implies), so `alg: none` and algorithm-confusion
//! tokens fail; `exp` is required and `nbf` checked, with the configured
//! leeway; `aud` and `iss` are required and checked when configured.
//!
//! Keys: a fixed one from the config, and/or a JWKS document ([`jwks`]) whose
//! keys are picked by the token's `kid`. A token naming a `kid` the JWKS
//! lacks makes [`Authenticator::authenticate_async`] reload the document
//! (rate-limited) and try once more.
//!
//! Verified tokens are remembered in a bounded [`TokenCache`] keyed by the
//! whole token string (see [`token_cache`]): a token seen before skips the
//! signature check and the claim parsing, but its `exp` and `nbf` are still
//! checked against the clock, with the same leeway, on every request.

mod jwks;
mod keys;
mod token_cache;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::http::header::{HeaderMap, AUTHORIZATION};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use jwks::Jwks;
use keys::Key;
use msa_runtime::Identity;
use serde_json::{Map, Value};

use crate::config::{AuthConfig, JwtAlg};
use crate::error::{ApiError, GatewayError};
use token_cache::{TokenCache, VerifiedClaims};

/// Verified tokens remembered per gateway (about 1 KB each for a typical
/// token, so a full cache is a few MB at most).
pub(crate) const TOKEN_CACHE_ENTRIES: usize = 4096;

/// Verifies bearer tokens against the configured keys.
pub(crate) struct Authenticator {
    /// The fixed key (`secret` / `public_key_pem`), if any.
    fixed: Option<Key>,
    /// The JWKS source, if any.
    jwks: Option<Jwks>,
    /// One validation per algorithm accepted (same claims checks).
    validations: Vec<(Algorithm, Validation)>,
    leeway: u64,
    roles_claim: String,
    admin_roles: Vec<String>,
    cache: TokenCache,
    /// Counts refusals by reason (`msa_gateway_refused_total`).
    on_refused: Option<std::sync::Arc<dyn Fn(&'static str) + Send + Sync>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keys stay out of logs.
        f.debug_struct("Authenticator")
            .field("fixed", &self.fixed)
            .field("jwks", &self.jwks.is_some())
            .field("roles_claim", &self.roles_claim)
            .finish_non_exhaustive()
    }
}

/// Why a token was refused.
enum Refused {
    /// Its `kid` names no key held (a JWKS reload may find it).
    UnknownKid,
    /// Anything else: the answer.
    Api(ApiError),
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Self {
        Refused::Api(e)
    }
}

impl Authenticator {
    /// Checks the settings and loads the keys (a JWKS URL is fetched at the
    /// first token).
    pub(crate) fn new(cfg: &AuthConfig) -> Result<Self, GatewayError> {
        let bad = |reason: String| GatewayError::Auth { reason };
        let fixed = fixed_key(cfg)?;
        let jwks = match cfg.jwks.as_deref() {
            None => None,
            Some("") => return Err(bad("`jwks` is empty".into())),
            Some(source) => Some(Jwks::new(source, cfg).map_err(bad)?),
        };
        if fixed.is_none() && jwks.is_none() {
            return Err(bad(
                "no key: set `secret` (HS256), `public_key_pem` (RS256/ES256) or `jwks`".into(),
            ));
        }
        if cfg.roles_claim.is_empty() {
            return Err(bad("`roles_claim` is empty".into()));
        }
        if cfg.audience.iter().chain(&cfg.issuer).any(String::is_empty) {
            return Err(bad(
                "`audience` and `issuer` entries must not be empty".into()
            ));
        }
        if cfg.jwks_min_refresh_secs > cfg.jwks_refresh_secs || cfg.jwks_timeout_ms == 0 {
            return Err(bad(
                "need jwks_min_refresh_secs <= jwks_refresh_secs and jwks_timeout_ms >= 1".into(),
            ));
        }
        let validations = [Algorithm::HS256, Algorithm::RS256, Algorithm::ES256]
            .into_iter()
            .map(|alg| {
                let mut v = Validation::new(alg);
                v.leeway = cfg.leeway_secs;
                v.validate_exp = true;
                v.validate_nbf = true;
                let mut required = vec!["exp"];
                if cfg.audience.is_empty() {
                    v.validate_aud = false;
                } else {
                    v.set_audience(&cfg.audience);
                    required.push("aud");
                }
                if !cfg.issuer.is_empty() {
                    v.set_issuer(&cfg.issuer);
                    required.push("iss");
                }
                v.set_required_spec_claims(&required);
                (alg, v)
            })
            .collect();
        Ok(Self {
            fixed,
            jwks,
            validations,
            leeway: cfg.leeway_secs,
            roles_claim: cfg.roles_claim.clone(),
            admin_roles: cfg.admin_roles.clone(),
            cache: TokenCache::new(TOKEN_CACHE_ENTRIES),
            on_refused: None,
        })
    }

    /// Counts each refused token with `count(reason)`.
    pub(crate) fn count_refusals_with(
        mut self,
        count: std::sync::Arc<dyn Fn(&'static str) + Send + Sync>,
    ) -> Self {
        self.on_refused = Some(count);
        self
    }

    /// Whether keys come from a JWKS document, which
    /// [`authenticate_async`](Self::authenticate_async) may fetch (on
    /// actix's HTTP client: only on an actix thread).
    pub(crate) fn uses_jwks(&self) -> bool {
        self.jwks.is_some()
    }

    /// The caller's identity from the request's bearer token, or 401, with
    /// the keys held now (no JWKS fetch: see
    /// [`authenticate_async`](Self::authenticate_async)).
    pub(crate) fn authenticate(&self, headers: &HeaderMap) -> Result<Identity, ApiError> {
        self.authenticate_at(headers, unix_now())
    }

    /// [`authenticate`](Self::authenticate) at `now` (see
    /// [`try_authenticate_at`](Self::try_authenticate_at)).
    fn authenticate_at(&self, headers: &HeaderMap, now: u64) -> Result<Identity, ApiError> {
        match self.try_authenticate_at(headers, now) {
            Ok(id) => Ok(id),
            Err(Refused::UnknownKid) => Err(self.unknown_kid()),
            Err(Refused::Api(e)) => Err(self.refused(e)),
        }
    }

    /// [`authenticate`](Self::authenticate), fetching a JWKS URL first when
    /// its keys are stale, and again (rate-limited) when the token names a
    /// `kid` not held.
    pub(crate) async fn authenticate_async(
        &self,
        headers: &HeaderMap,
    ) -> Result<Identity, ApiError> {
        if let Some(jwks) = &self.jwks {
            if jwks.is_stale() {
                jwks.refresh("stale", || self.cache.clear()).await;
            }
        }
        match self.try_authenticate_at(headers, unix_now()) {
            Ok(id) => return Ok(id),
            Err(Refused::Api(e)) => return Err(self.refused(e)),
            Err(Refused::UnknownKid) => {}
        }
        let Some(jwks) = &self.jwks else {
            return Err(self.unknown_kid());
        };
        if !jwks.refresh("unknown kid", || self.cache.clear()).await {
            return Err(self.unknown_kid());
        }
        self.authenticate_at(headers, unix_now())
    }

    fn unknown_kid(&self) -> ApiError {
        if let Some(count) = &self.on_refused {
            count("jwks_unknown_kid");
        }
        tracing::info!("token refused: its kid names no known key");
        ApiError::unauthorized("token signed by an unknown key")
    }

    fn refused(&self, e: ApiError) -> ApiError {
        // A request without a token is not a bad token.
        if e.message != MISSING_TOKEN {
            if let Some(count) = &self.on_refused {
                count("bad_token");
            }
        }
        e
    }

    /// [`authenticate`](Self::authenticate) with a cached token's `exp` and
    /// `nbf` checked against `now` (seconds since the Unix epoch). A token
    /// not in the cache is verified in full by jsonwebtoken, against the
    /// system clock, and cached if it passes.
    fn try_authenticate_at(&self, headers: &HeaderMap, now: u64) -> Result<Identity, Refused> {
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
        let leeway = self.leeway;
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

    /// The key a token names: by `kid` in the JWKS; without a `kid` (or
    /// without a JWKS), the fixed key, else the JWKS's only key.
    fn key_for(&self, token: &str) -> Result<Key, Refused> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| {
            tracing::debug!(error = %e, "token rejected");
            ApiError::unauthorized("invalid token")
        })?;
        let Some(jwks) = &self.jwks else {
            return self
                .fixed
                .clone()
                .ok_or_else(|| ApiError::unauthorized("invalid token").into());
        };
        let keys = jwks.keys();
        match header.kid.as_deref() {
            Some(kid) => keys.get(kid).cloned().ok_or(Refused::UnknownKid),
            None => self
                .fixed
                .clone()
                .or_else(|| keys.only().cloned())
                .ok_or_else(|| ApiError::unauthorized("token names no key (`kid`)").into()),
        }
    }

    /// Full verification: key, signature, algorithm, `exp`, `nbf`, `aud`,
    /// `iss`, then the claims.
    fn verify(&self, token: &str) -> Result<VerifiedClaims, Refused> {
        let key = self.key_for(token)?;
        let validation = self
            .validations
            .iter()
            .find(|(alg, _)| *alg == key.alg)
            .map(|(_, v)| v)
            .ok_or_else(|| ApiError::unauthorized("token algorithm not accepted"))?;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                let why = match e.kind() {
                    ErrorKind::ExpiredSignature => "token expired",
                    ErrorKind::ImmatureSignature => "token not valid yet",
                    ErrorKind::InvalidSignature => "bad token signature",
                    ErrorKind::InvalidAlgorithm => "token algorithm not accepted",
                    ErrorKind::InvalidAudience => "token audience not accepted",
                    ErrorKind::InvalidIssuer => "token issuer not accepted",
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

/// The 401 message of a request without a token.
const MISSING_TOKEN: &str = "missing bearer token";

/// The fixed key of `cfg` (`secret` / `public_key_pem` with `alg`), if any.
fn fixed_key(cfg: &AuthConfig) -> Result<Option<Key>, GatewayError> {
    let bad = |reason: String| GatewayError::Auth { reason };
    let Some(alg) = cfg.alg else {
        if cfg.secret.is_some() || cfg.public_key_pem.is_some() {
            return Err(bad(
                "`secret` / `public_key_pem` need `alg` (HS256, RS256 or ES256)".into(),
            ));
        }
        return Ok(None);
    };
    let key = match alg {
        JwtAlg::HS256 => {
            if cfg.public_key_pem.is_some() {
                return Err(bad("HS256 uses `secret`, not `public_key_pem`".into()));
            }
            let secret = cfg.secret.as_deref().unwrap_or_default();
            if secret.is_empty() {
                return Err(bad("HS256 needs a non-empty `secret`".into()));
            }
            Key {
                alg: Algorithm::HS256,
                key: DecodingKey::from_secret(secret.as_bytes()),
            }
        }
        JwtAlg::RS256 | JwtAlg::ES256 => {
            if cfg.secret.is_some() {
                return Err(bad(format!("{alg:?} uses `public_key_pem`, not `secret`")));
            }
            let pem = cfg
                .public_key_pem
                .as_deref()
                .ok_or_else(|| bad(format!("{alg:?} needs `public_key_pem`")))?;
            if alg == JwtAlg::RS256 {
                let key = DecodingKey::from_rsa_pem(pem.as_bytes())
                    .map_err(|e| bad(format!("`public_key_pem` is not an RSA key: {e}")))?;
                Key {
                    alg: Algorithm::RS256,
                    key,
                }
            } else {
                let key = DecodingKey::from_ec_pem(pem.as_bytes())
                    .map_err(|e| bad(format!("`public_key_pem` is not an EC key: {e}")))?;
                Key {
                    alg: Algorithm::ES256,
                    key,
                }
            }
        }
    };
    Ok(Some(key))
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
        .ok_or_else(|| ApiError::unauthorized(MISSING_TOKEN))?;
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
