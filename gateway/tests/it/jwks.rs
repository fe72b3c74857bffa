//! JWT as identity providers issue it: keys from a JWKS document (a file,
//! or a URL refreshed when a token names an unknown `kid`), several keys
//! at once, `aud` and `iss` checked when configured.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::*;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use msa_gateway::{hs256_token, AuthConfig, GatewayConfig, JwtAlg, PolicyRule};
use serde_json::{json, Value};

const RSA_PRIVATE: &str = include_str!("../fixtures/rsa_private.pem");
const EC_PRIVATE: &str = include_str!("../fixtures/ec_private.pem");
const OCT: &[u8] = b"an HS256 key shared with the IdP";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The test's identity provider: three signing keys.
pub(crate) struct Idp;

impl Idp {
    fn key(alg: Algorithm) -> EncodingKey {
        match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
            Algorithm::ES256 => EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap(),
            _ => EncodingKey::from_secret(OCT),
        }
    }

    /// The public JWK of `alg`'s key, named `kid`.
    fn jwk(alg: Algorithm, kid: &str) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(&Self::key(alg), alg).unwrap();
        jwk.common.key_id = Some(kid.into());
        jwk
    }

    pub(crate) fn jwks(keys: &[(Algorithm, &str)]) -> String {
        let set = JwkSet {
            keys: keys.iter().map(|(a, k)| Self::jwk(*a, k)).collect(),
        };
        serde_json::to_string(&set).unwrap()
    }

    /// A token signed with `alg`'s key, naming `kid`.
    pub(crate) fn token(alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&header, claims, &Self::key(alg)).unwrap()
    }
}

pub(crate) fn claims(extra: Value) -> Value {
    let mut c = json!({"sub": "alice", "roles": ["customer"], "exp": now() + 600});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

pub(crate) fn secured(auth: AuthConfig) -> GatewayConfig {
    GatewayConfig {
        auth: Some(auth),
        policy: vec![PolicyRule {
            service: "calc".into(),
            message: "calc.WhoAmI".into(),
            roles: vec!["customer".into()],
        }],
        ..config()
    }
}

fn write_temp(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("msa-gw-jwks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

async fn who(f: &Fixture, token: &str) -> Resp {
    f.send("POST", "/v1/calc/calc.WhoAmI", Some(token), "")
        .await
}

fn refused(text: &str, reason: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with("msa_gateway_refused_total{") && l.contains(reason))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0.0, |n| n.parse().unwrap())
}

#[actix_rt::test]
async fn a_jwks_file_with_several_keys_verifies_each_by_kid() {
    let path = write_temp(
        "several.json",
        &Idp::jwks(&[
            (Algorithm::RS256, "r1"),
            (Algorithm::ES256, "e1"),
            (Algorithm::HS256, "h1"),
        ]),
    );
    let f = Fixture::start(secured(AuthConfig::jwks(path.to_str().unwrap()))).await;
    for (alg, kid) in [
        (Algorithm::RS256, "r1"),
        (Algorithm::ES256, "e1"),
        (Algorithm::HS256, "h1"),
    ] {
        let r = who(&f, &Idp::token(alg, Some(kid), &claims(json!({})))).await;
        assert_eq!(r.status, 200, "{alg:?}: {r:?}");
        assert_eq!(r.json["subject"], "alice");
    }
    // A kid the document lacks, a key under another key's kid, no kid
    // among several keys: 401.
    let ghost = Idp::token(Algorithm::RS256, Some("ghost"), &claims(json!({})));
    assert!(who(&f, &ghost)
        .await
        .error(401, "unauthorized")
        .contains("unknown key"));
    let swapped = Idp::token(Algorithm::RS256, Some("e1"), &claims(json!({})));
    who(&f, &swapped).await.error(401, "unauthorized");
    let bare = Idp::token(Algorithm::RS256, None, &claims(json!({})));
    assert!(who(&f, &bare)
        .await
        .error(401, "unauthorized")
        .contains("kid"));
    // An HS256 token signed with the RSA key's public JWK bytes (algorithm
    // confusion) is refused too.
    let confused = Idp::token(Algorithm::HS256, Some("r1"), &claims(json!({})));
    who(&f, &confused).await.error(401, "unauthorized");
    f.stop().await;
}

#[actix_rt::test]
async fn audience_and_issuer_are_checked_when_configured() {
    let path = write_temp("aud.json", &Idp::jwks(&[(Algorithm::RS256, "r1")]));
    let mut auth = AuthConfig::jwks(path.to_str().unwrap());
    auth.audience = vec!["shop-api".into(), "other-api".into()];
    auth.issuer = vec!["https://idp.test/".into()];
    let f = Fixture::start(secured(auth)).await;
    let tok = |extra: Value| Idp::token(Algorithm::RS256, Some("r1"), &claims(extra));
    let good = tok(json!({"aud": "shop-api", "iss": "https://idp.test/"}));
    assert_eq!(who(&f, &good).await.status, 200);
    let listed = tok(json!({"aud": ["x", "other-api"], "iss": "https://idp.test/"}));
    assert_eq!(who(&f, &listed).await.status, 200);
    for (bad, why) in [
        (
            json!({"aud": "billing", "iss": "https://idp.test/"}),
            "audience",
        ),
        (
            json!({"aud": "shop-api", "iss": "https://evil.test/"}),
            "issuer",
        ),
        (json!({"iss": "https://idp.test/"}), "claim"),
        (json!({"aud": "shop-api"}), "claim"),
    ] {
        let r = who(&f, &tok(bad.clone())).await;
        assert!(r.error(401, "unauthorized").contains(why), "{bad}: {r:?}");
    }
    f.stop().await;
}

#[actix_rt::test]
async fn a_fixed_secret_and_a_jwks_work_side_by_side() {
    let path = write_temp("side.json", &Idp::jwks(&[(Algorithm::ES256, "e1")]));
    let mut auth = AuthConfig::hs256("msa-token-secret");
    auth.jwks = Some(path.to_str().unwrap().into());
    let f = Fixture::start(secured(auth)).await;
    // `msa token`'s tokens (HS256, no kid) use the fixed secret...
    let t = hs256_token(
        "msa-token-secret",
        "bob",
        &["customer"],
        Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(who(&f, &t).await.json["subject"], "bob");
    // ...and the IdP's tokens their kid.
    let t = Idp::token(Algorithm::ES256, Some("e1"), &claims(json!({})));
    assert_eq!(who(&f, &t).await.status, 200);
    f.stop().await;
}

#[actix_rt::test]
async fn bad_jwks_settings_do_not_start() {
    let node = msa_runtime::Node::builder().arbiters(1).start().unwrap();
    let empty = write_temp("empty.json", r#"{"keys": []}"#);
    for auth in [
        AuthConfig::jwks("/no/such/jwks.json"),
        AuthConfig::jwks(empty.to_str().unwrap()),
        AuthConfig::jwks("http://idp.example.com/jwks.json"),
        AuthConfig {
            alg: None,
            ..AuthConfig::hs256("s")
        },
        AuthConfig {
            alg: Some(JwtAlg::RS256),
            secret: None,
            ..AuthConfig::jwks("")
        },
    ] {
        assert!(
            msa_gateway::Gateway::start(node.clone(), secured(auth.clone())).is_err(),
            "{auth:?}"
        );
    }
    node.shutdown(GRACE).await.unwrap();
}

/// A JWKS server on loopback: serves `doc`, counts fetches.
struct JwksServer {
    doc: Arc<parking_lot::Mutex<String>>,
    hits: Arc<AtomicUsize>,
    url: String,
    handle: actix_web::dev::ServerHandle,
}

impl JwksServer {
    fn start(doc: String) -> Self {
        let doc = Arc::new(parking_lot::Mutex::new(doc));
        let hits = Arc::new(AtomicUsize::new(0));
        let (d, h) = (doc.clone(), hits.clone());
        let server = actix_web::HttpServer::new(move || {
            let (d, h) = (d.clone(), h.clone());
            actix_web::App::new().route(
                "/.well-known/jwks.json",
                actix_web::web::get().to(move || {
                    let (d, h) = (d.clone(), h.clone());
                    async move {
                        h.fetch_add(1, Ordering::SeqCst);
                        actix_web::HttpResponse::Ok()
                            .content_type("application/json")
                            .body(d.lock().clone())
                    }
                }),
            )
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .unwrap();
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Self {
            doc,
            hits,
            url: format!("http://{addr}/.well-known/jwks.json"),
            handle,
        }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

#[actix_rt::test]
async fn a_jwks_url_is_fetched_cached_and_refreshed_for_an_unknown_kid() {
    let idp = JwksServer::start(Idp::jwks(&[(Algorithm::RS256, "r1")]));
    let mut auth = AuthConfig::jwks(idp.url.clone());
    auth.jwks_min_refresh_secs = 1;
    let f = Fixture::start(secured(auth)).await;
    assert_eq!(idp.hits(), 0, "fetched before any token needed it");
    // The first token fetches the document; later ones use the cache.
    for _ in 0..5 {
        let t = Idp::token(Algorithm::RS256, Some("r1"), &claims(json!({"jti": now()})));
        assert_eq!(who(&f, &t).await.status, 200);
    }
    assert_eq!(idp.hits(), 1);
    // The IdP rotates in a new key: a token naming it makes the gateway
    // fetch again (once the rate limit allows) and then passes.
    *idp.doc.lock() = Idp::jwks(&[(Algorithm::RS256, "r1"), (Algorithm::ES256, "e2")]);
    let t = Idp::token(Algorithm::ES256, Some("e2"), &claims(json!({})));
    let f = std::rc::Rc::new(f);
    eventually(
        "the rotated key to be fetched",
        Duration::from_secs(10),
        || {
            let (f, t) = (f.clone(), t.clone());
            async move { who(&f, &t).await.status == 200 }
        },
    )
    .await;
    let after_rotation = idp.hits();
    assert!((2..=3).contains(&after_rotation), "{after_rotation}");
    // Made-up kids: 401, and at most one fetch per `jwks_min_refresh_secs`
    // (1 s) of the burst.
    let burst = std::time::Instant::now();
    for n in 0..30 {
        let t = Idp::token(
            Algorithm::RS256,
            Some(&format!("ghost{n}")),
            &claims(json!({})),
        );
        assert!(who(&f, &t)
            .await
            .error(401, "unauthorized")
            .contains("unknown key"));
    }
    let most = after_rotation + 1 + burst.elapsed().as_secs() as usize;
    assert!(
        idp.hits() <= most,
        "{} fetches in {:?}",
        idp.hits(),
        burst.elapsed()
    );
    let admin = Idp::token(
        Algorithm::RS256,
        Some("r1"),
        &claims(json!({"roles": ["admin"]})),
    );
    let metrics = f.send("GET", "/metrics", Some(&admin), "").await;
    let text = String::from_utf8_lossy(&metrics.raw).into_owned();
    assert!(refused(&text, "jwks_unknown_kid") >= 30.0, "{text}");
    // The IdP is down: the keys held keep working.
    idp.handle.stop(false).await;
    let t = Idp::token(Algorithm::RS256, Some("r1"), &claims(json!({"n": 2})));
    assert_eq!(who(&f, &t).await.status, 200);
    match std::rc::Rc::try_unwrap(f) {
        Ok(f) => f.stop().await,
        Err(_) => panic!("fixture still shared"),
    }
}
