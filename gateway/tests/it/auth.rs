//! JWT authentication and role-based access over real HTTP.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use msa_gateway::{
    hs256_token, AuthConfig, Gateway, GatewayConfig, GatewayError, JwtAlg, PolicyRule,
};
use serde_json::{json, Value};

const SECRET: &str = "test-secret";
const RSA_PRIVATE: &str = include_str!("../fixtures/rsa_private.pem");
const RSA_PUBLIC: &str = include_str!("../fixtures/rsa_public.pem");
const EC_PRIVATE: &str = include_str!("../fixtures/ec_private.pem");
const EC_PUBLIC: &str = include_str!("../fixtures/ec_public.pem");

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn rule(service: &str, message: &str, roles: &[&str]) -> PolicyRule {
    PolicyRule {
        service: service.into(),
        message: message.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
    }
}

fn secured(auth: AuthConfig) -> GatewayConfig {
    GatewayConfig {
        auth: Some(auth),
        policy: vec![
            rule("calc", "calc.Add", &["customer"]),
            rule("calc", "calc.WhoAmI", &["customer", "staff"]),
            rule("*", "*", &["admin"]),
        ],
        ..config()
    }
}

fn sign(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, key).unwrap()
}

fn hs(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        claims,
    )
}

fn b64(s: &str) -> String {
    // base64url without padding, enough for a hand-made token.
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..=c.len() {
            out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

const ADD: &str = r#"{"a": 1, "b": 2}"#;

#[test]
fn jsonwebtoken_encodes_and_decodes_with_one_backend() {
    // jsonwebtoken 11 panics here unless exactly one crypto backend is on.
    let t = hs(&json!({"sub": "x", "exp": now() + 60}));
    let v = jsonwebtoken::Validation::new(Algorithm::HS256);
    let d = jsonwebtoken::decode::<Value>(
        &t,
        &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()),
        &v,
    )
    .unwrap();
    assert_eq!(d.claims["sub"], "x");
}

#[actix_rt::test]
async fn a_valid_token_with_a_granted_role_passes_and_the_service_sees_the_identity() {
    let f = Fixture::start(secured(AuthConfig::hs256(SECRET))).await;
    let t = hs256_token(SECRET, "alice", &["customer"], Duration::from_secs(60)).unwrap();
    let r = f.send("POST", "/v1/calc/calc.Add", Some(&t), ADD).await;
    assert_eq!((r.status, r.json.clone()), (200, json!(3)));
    let r = f.send("POST", "/v1/calc/calc.WhoAmI", Some(&t), "").await;
    assert_eq!(r.json["subject"], "alice");
    assert_eq!(r.json["roles"], json!(["customer"]));
    f.stop().await;
}

#[actix_rt::test]
async fn missing_and_malformed_tokens_are_401() {
    let f = Fixture::start(secured(AuthConfig::hs256(SECRET))).await;
    let r = f.post("/v1/calc/calc.Add", ADD).await;
    assert!(r.error(401, "unauthorized").contains("missing"));
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    for t in ["", "garbage", "a.b.c", "....", "e30.e30.e30"] {
        let r = f.send("POST", "/v1/calc/calc.Add", Some(t), ADD).await;
        r.error(401, "unauthorized");
    }
    let req = f
        .client
        .post(f.url("/v1/calc/calc.Add"))
        .insert_header(("authorization", "Basic dXNlcjpwYXNz"));
    send_req(req, ADD.into()).await.error(401, "unauthorized");
    f.stop().await;
}

#[actix_rt::test]
async fn a_token_signed_with_another_key_is_401() {
    let f = Fixture::start(secured(AuthConfig::hs256(SECRET))).await;
    let t = hs256_token("another-secret", "eve", &["admin"], Duration::from_secs(60)).unwrap();
    let r = f.send("POST", "/v1/calc/calc.Add", Some(&t), ADD).await;
    assert!(r.error(401, "unauthorized").contains("signature"));
    f.stop().await;
}

#[actix_rt::test]
async fn expired_and_not_yet_valid_tokens_are_401() {
    let f = Fixture::start(secured(AuthConfig::hs256(SECRET))).await;
    let t = hs(&json!({"sub": "a", "roles": ["customer"], "exp": now() - 3600}));
    let r = f.send("POST", "/v1/calc/calc.Add", Some(&t), ADD).await;
    assert!(r.error(401, "unauthorized").contains("expired"));
    // Within the 60 s leeway an expired token still passes.
    let t = hs(&json!({"sub": "a", "roles": ["customer"], "exp": now() - 5}));
    let r = f.send("POST", "/v1/calc/calc.Add", Some(&t), ADD).await;
    assert_eq!(r.status, 200, "{r:?}");
    let t =
        hs(&json!({"sub": "a", "roles": ["customer"], "exp": now() + 7200, "nbf": now() + 3600}));
    let r = f.send("POST", "/v1/calc/calc.Add", Some(&t), ADD).await;
    assert!(r.error(401, "unauthorized").contains("not valid yet"));
    // exp is required.
    let t = hs(&json!({"sub": "a", "roles": ["customer"]}));
    let r = f.send("POST", "/v1/calc/calc.Add", Some(&t), ADD).await;
    r.error(401, "unauthorized");
    f.stop().await;
}

#[actix_rt::test]
async fn alg_none_and_other_algorithms_are_401() {
    let f = Fixture::start(secured(AuthConfig::hs256(SECRET))).await;
    let claims = json!({"sub": "eve", "roles": ["admin"], "exp": now() + 60}).to_string();
    let none = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(&claims));
    let r = f.send("POST", "/v1/calc/calc.Add", Some(&none), ADD).await;
    r.error(401, "unauthorized");
    // Same secret, another HMAC algorithm: still refused.
    let hs384 = sign(
        Algorithm::HS384,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        &serde_json::from_str(&claims).unwrap(),
    );
    let r = f.send("POST", "/v1/calc/calc.Add", Some(&hs384), ADD).await;
    r.error(401, "unauthorized");
    f.stop().await;
}

#[actix_rt::test]
async fn roles_come_from_the_configured_claim() {
    let f = Fixture::start(secured(AuthConfig::hs256(SECRET))).await;
    // No roles claim: authenticated, but no rule grants anything.
    let t = hs(&json!({"sub": "a", "exp": now() + 60}));
    let r = f.send("POST", "/v1/calc/calc.Add", Some(&t), ADD).await;
    r.error(403, "forbidden");
    // A string is one role.
    let t = hs(&json!({"sub": "a", "roles": "customer", "exp": now() + 60}));
    let r = f.send("POST", "/v1/calc/calc.Add", Some(&t), ADD).await;
    assert_eq!(r.status, 200, "{r:?}");
    // Non-string entries and other shapes carry no role.
    for roles in [json!([1, {"x": 1}]), json!(7), json!({"customer": true})] {
        let t = hs(&json!({"sub": "a", "roles": roles, "exp": now() + 60}));
        let r = f.send("POST", "/v1/calc/calc.Add", Some(&t), ADD).await;
        r.error(403, "forbidden");
    }
    // Another claim name.
    let mut auth = AuthConfig::hs256(SECRET);
    auth.roles_claim = "groups".into();
    let g = Fixture::start(secured(auth)).await;
    let t = hs(&json!({"sub": "a", "groups": ["customer"], "roles": ["x"], "exp": now() + 60}));
    let r = g.send("POST", "/v1/calc/calc.Add", Some(&t), ADD).await;
    assert_eq!(r.status, 200, "{r:?}");
    g.stop().await;
    f.stop().await;
}

#[actix_rt::test]
async fn policy_is_default_deny_and_checks_run_401_then_403_then_404() {
    let f = Fixture::start(secured(AuthConfig::hs256(SECRET))).await;
    let customer = hs256_token(SECRET, "c", &["customer"], Duration::from_secs(60)).unwrap();
    let staff = hs256_token(SECRET, "s", &["staff"], Duration::from_secs(60)).unwrap();
    let admin = hs256_token(SECRET, "a", &["admin"], Duration::from_secs(60)).unwrap();
    // staff may WhoAmI but not Add.
    let r = f.send("POST", "/v1/calc/calc.Add", Some(&staff), ADD).await;
    r.error(403, "forbidden");
    let r = f
        .send("POST", "/v1/calc/calc.WhoAmI", Some(&staff), "")
        .await;
    assert_eq!(r.status, 200);
    // An unknown service: 401 without a token, 403 without a rule, 404 with one.
    let r = f.post("/v1/ghost/calc.Add", ADD).await;
    r.error(401, "unauthorized");
    let r = f
        .send("POST", "/v1/ghost/calc.Add", Some(&customer), ADD)
        .await;
    r.error(403, "forbidden");
    let r = f
        .send("POST", "/v1/ghost/calc.Add", Some(&admin), ADD)
        .await;
    r.error(404, "not_found");
    // Bad bodies too: 403 before 400.
    let r = f.send("POST", "/v1/calc/calc.Add", Some(&staff), "{").await;
    r.error(403, "forbidden");
    let r = f
        .send("POST", "/v1/calc/calc.Add", Some(&customer), "{")
        .await;
    r.error(400, "bad_request");
    f.stop().await;
}

#[actix_rt::test]
async fn admin_endpoints_need_an_admin_role_and_probes_need_nothing() {
    let mut auth = AuthConfig::hs256(SECRET);
    auth.admin_roles = vec!["ops".into(), "admin".into()];
    let f = Fixture::start(secured(auth)).await;
    let customer = hs256_token(SECRET, "c", &["customer"], Duration::from_secs(60)).unwrap();
    let ops = hs256_token(SECRET, "o", &["ops"], Duration::from_secs(60)).unwrap();
    for path in ["/metrics", "/v1/cluster"] {
        f.send("GET", path, None, "")
            .await
            .error(401, "unauthorized");
        f.send("GET", path, Some(&customer), "")
            .await
            .error(403, "forbidden");
        let r = f.send("GET", path, Some(&ops), "").await;
        assert_eq!(r.status, 200, "{path}: {r:?}");
    }
    for path in ["/healthz", "/readyz"] {
        assert_eq!(f.send("GET", path, None, "").await.status, 200, "{path}");
    }
    f.stop().await;
}

#[actix_rt::test]
async fn rs256_tokens_verify_with_the_public_key() {
    let f = Fixture::start(secured(AuthConfig::public_key(JwtAlg::RS256, RSA_PUBLIC))).await;
    let claims = json!({"sub": "r", "roles": ["customer"], "exp": now() + 60});
    let key = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
    let t = sign(Algorithm::RS256, &key, &claims);
    let r = f.send("POST", "/v1/calc/calc.Add", Some(&t), ADD).await;
    assert_eq!((r.status, r.json.clone()), (200, json!(3)));
    // HS256 signed with the public key's text (algorithm confusion): 401.
    let t = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
        &claims,
    );
    let r = f.send("POST", "/v1/calc/calc.Add", Some(&t), ADD).await;
    r.error(401, "unauthorized");
    // An ES256 token to an RS256 gateway: 401.
    let ec = EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap();
    let r = f
        .send(
            "POST",
            "/v1/calc/calc.Add",
            Some(&sign(Algorithm::ES256, &ec, &claims)),
            ADD,
        )
        .await;
    r.error(401, "unauthorized");
    f.stop().await;
}

#[actix_rt::test]
async fn es256_tokens_verify_with_the_public_key() {
    let f = Fixture::start(secured(AuthConfig::public_key(JwtAlg::ES256, EC_PUBLIC))).await;
    let claims = json!({"sub": "e", "roles": ["customer"], "exp": now() + 60});
    let key = EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap();
    let t = sign(Algorithm::ES256, &key, &claims);
    let r = f.send("POST", "/v1/calc/calc.WhoAmI", Some(&t), "").await;
    assert_eq!(r.json["subject"], "e", "{r:?}");
    // A tampered payload breaks the signature.
    let mut parts: Vec<String> = t.split('.').map(str::to_string).collect();
    parts[1] = b64(&json!({"sub": "e", "roles": ["admin"], "exp": now() + 60}).to_string());
    let r = f
        .send("POST", "/v1/calc/calc.WhoAmI", Some(&parts.join(".")), "")
        .await;
    r.error(401, "unauthorized");
    f.stop().await;
}

#[actix_rt::test]
async fn unusable_auth_settings_do_not_start() {
    let node = msa_runtime::Node::builder().arbiters(1).start().unwrap();
    let bad = [
        AuthConfig::hs256(""),
        AuthConfig::public_key(JwtAlg::RS256, "not a pem"),
        AuthConfig::public_key(
            JwtAlg::ES256,
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        ),
        AuthConfig::public_key(JwtAlg::RS256, EC_PUBLIC),
        AuthConfig {
            public_key_pem: None,
            ..AuthConfig::public_key(JwtAlg::ES256, EC_PUBLIC)
        },
    ];
    for auth in bad {
        let e = Gateway::start(node.clone(), secured(auth.clone())).unwrap_err();
        assert!(matches!(e, GatewayError::Auth { .. }), "{auth:?}: {e}");
    }
    let e = Gateway::start(
        node.clone(),
        GatewayConfig {
            policy: vec![rule("a*b", "*", &["x"])],
            ..secured(AuthConfig::hs256(SECRET))
        },
    )
    .unwrap_err();
    assert!(matches!(e, GatewayError::Policy { index: 0, .. }), "{e}");
    node.shutdown(GRACE).await.unwrap();
}

#[actix_rt::test]
async fn a_token_that_passed_before_is_refused_once_it_expires() {
    // Leeway 0 and an `exp` 2 s ahead: the first request verifies the token
    // and caches it; later requests are served from the cache until `exp`
    // passes, and then refused although the token is still cached.
    let mut auth = AuthConfig::hs256(SECRET);
    auth.leeway_secs = 0;
    let f = Fixture::start(secured(auth)).await;
    let exp = now() + 2;
    let t = hs(&json!({"sub": "a", "roles": ["customer"], "exp": exp}));
    let r = f.send("POST", "/v1/calc/calc.Add", Some(&t), ADD).await;
    assert_eq!(r.status, 200, "{r:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let refused = loop {
        let r = f.send("POST", "/v1/calc/calc.Add", Some(&t), ADD).await;
        if r.status == 401 {
            break r;
        }
        assert_eq!(r.status, 200, "{r:?}");
        // Still accepted: it must not be expired yet.
        assert!(now() <= exp + 1, "accepted at {} with exp {exp}", now());
        assert!(std::time::Instant::now() < deadline, "never refused");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(refused.error(401, "unauthorized").contains("expired"));
    assert!(now() > exp, "refused at {} with exp {exp}", now());
    f.stop().await;
}

#[actix_rt::test]
async fn a_cached_token_with_another_signature_is_401() {
    let f = Fixture::start(secured(AuthConfig::hs256(SECRET))).await;
    let t = hs256_token(SECRET, "alice", &["customer"], Duration::from_secs(60)).unwrap();
    let r = f.send("POST", "/v1/calc/calc.Add", Some(&t), ADD).await;
    assert_eq!(r.status, 200, "{r:?}");
    // The same header and claims with one signature byte changed.
    let (signed, sig) = t.rsplit_once('.').unwrap();
    let mut sig = sig.as_bytes().to_vec();
    let i = sig.len() / 2;
    sig[i] = if sig[i] == b'x' { b'y' } else { b'x' };
    let forged = format!("{signed}.{}", String::from_utf8(sig).unwrap());
    let r = f
        .send("POST", "/v1/calc/calc.Add", Some(&forged), ADD)
        .await;
    assert!(r.error(401, "unauthorized").contains("signature"));
    // The genuine token still passes.
    let r = f.send("POST", "/v1/calc/calc.Add", Some(&t), ADD).await;
    assert_eq!(r.status, 200, "{r:?}");
    f.stop().await;
}
