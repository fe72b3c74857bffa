//! The service's own access rules behind the gateway: a caller the
//! gateway's policy lets through still gets 403 when the service's rule
//! does not admit it, on the gateway's node or another one, and a node
//! believes roles only from a token it verifies itself.

use std::time::Duration;

use crate::support::*;
use msa_gateway::{hs256_token, AuthConfig, Gateway, GatewayConfig, JwtVerifier, PolicyRule};
use msa_runtime::access::{Access, Rule};
use msa_runtime::test_support::remote_added;
use msa_runtime::Node;
use serde_json::json;

const SECRET: &str = "access-test-secret";
const CLUSTER_SECRET: &[u8] = b"gateway-access";
const ADD: &str = r#"{"a": 1, "b": 2}"#;

/// A gateway policy that lets every authenticated caller through.
fn permissive() -> GatewayConfig {
    GatewayConfig {
        auth: Some(AuthConfig::hs256(SECRET)),
        policy: vec![PolicyRule {
            service: "*".into(),
            message: "*".into(),
            roles: vec!["*".into()],
        }],
        ..config()
    }
}

fn admins_only() -> Access {
    Access::new().allow_named("calc.Add", Rule::roles(["admin"]))
}

fn token(subject: &str, roles: &[&str]) -> String {
    hs256_token(SECRET, subject, roles, Duration::from_secs(60)).unwrap()
}

#[actix_rt::test]
async fn the_service_refuses_with_403_what_a_permissive_gateway_lets_through() {
    let node = Node::builder().arbiters(1).start().unwrap();
    node.spawn(calc_spec().access(admins_only())).await.unwrap();
    let f = Fixture::on(node, permissive());
    // The policy admits any authenticated caller; the service wants admin.
    let r = f
        .send(
            "POST",
            "/v1/calc/calc.Add",
            Some(&token("c", &["customer"])),
            ADD,
        )
        .await;
    assert!(r.error(403, "forbidden").contains("refused the call"));
    let r = f
        .send("POST", "/v1/calc/calc.Add", Some(&token("c", &[])), ADD)
        .await;
    r.error(403, "forbidden");
    let r = f
        .send(
            "POST",
            "/v1/calc/calc.Add",
            Some(&token("root", &["admin"])),
            ADD,
        )
        .await;
    assert_eq!((r.status, r.json.clone()), (200, json!(3)));
    // Messages without a rule stay open.
    let r = f
        .send("POST", "/v1/calc/calc.WhoAmI", Some(&token("c", &[])), "")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(f.node.stats("calc").unwrap().denied, 2);
    let metrics = f
        .send("GET", "/metrics", Some(&token("root", &["admin"])), "")
        .await;
    let text = String::from_utf8_lossy(&metrics.raw);
    let line = text
        .lines()
        .find(|l| l.starts_with("msa_service_denied_total") && l.contains("calc"))
        .unwrap_or_else(|| panic!("no denied counter in:\n{text}"));
    assert!(line.ends_with(" 2"), "{line}");
    f.stop().await;
}

#[actix_rt::test]
async fn with_auth_off_the_gateways_anonymous_callers_are_refused_by_a_rule() {
    let node = Node::builder().arbiters(1).start().unwrap();
    node.spawn(calc_spec().access(admins_only())).await.unwrap();
    let f = Fixture::on(node, config());
    f.post("/v1/calc/calc.Add", ADD)
        .await
        .error(403, "forbidden");
    assert_eq!(f.post("/v1/calc/calc.WhoAmI", "").await.status, 200);
    f.stop().await;
}

fn clustered(name: &str, seed: Option<String>, verify: bool) -> Node {
    let mut b = Node::builder()
        .name(name)
        .arbiters(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .secret(CLUSTER_SECRET);
    if let Some(s) = seed {
        b = b.seed(s);
    }
    if verify {
        b = b.identity_verifier(JwtVerifier::new(&AuthConfig::hs256(SECRET)).unwrap());
    }
    b.start().unwrap()
}

/// `POST url` with a bearer token from a thread of its own (the nodes run
/// on this test's tokio runtime).
fn post(url: String, token: String, body: &'static str) -> (u16, serde_json::Value) {
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let mut r = awc::Client::new()
                .post(url)
                .insert_header(("authorization", format!("Bearer {token}")))
                .insert_header(("content-type", "application/json"))
                .send_body(body)
                .await
                .unwrap();
            let body = r.body().await.unwrap();
            (
                r.status().as_u16(),
                serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
            )
        })
    })
    .join()
    .unwrap()
}

#[test]
fn a_verified_token_crosses_nodes_and_an_unverified_one_loses_its_roles() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // The gateway on `gw`; `calc` on `verifying` (which checks tokens
        // with the gateway's key) and `calc-nv` on `trusting-nobody` (no
        // verifier: roles from other nodes never count there).
        let gw = clustered("acc-gw", None, false);
        let verifying = clustered("acc-verifying", gw.remote_addr(), true);
        let plain = clustered("acc-plain", gw.remote_addr(), false);
        let mut w = gw.watch();
        verifying
            .spawn(calc_spec().access(admins_only()))
            .await
            .unwrap();
        let nv = msa_runtime::ServiceSpec::new("calc-nv", || Calc {
            sleeping: Default::default(),
        })
        .handles::<Add>()
        .handles::<WhoAmI>()
        .access(admins_only());
        plain.spawn(nv).await.unwrap();
        remote_added(Duration::from_secs(20), &mut w, &["calc", "calc-nv"]).await;
        let handle = Gateway::start(gw.clone(), permissive()).unwrap();
        let base = format!("http://{}", handle.local_addr());

        let admin = token("root", &["admin"]);
        let customer = token("c", &["customer"]);
        let (status, body) = post(format!("{base}/v1/calc/calc.Add"), admin.clone(), ADD);
        assert_eq!((status, body), (200, json!(3)));
        let (status, _) = post(format!("{base}/v1/calc/calc.Add"), customer, ADD);
        assert_eq!(status, 403);
        let (status, body) = post(format!("{base}/v1/calc/calc.WhoAmI"), admin.clone(), "");
        assert_eq!((status, &body["roles"]), (200, &json!(["admin"])), "{body}");
        // Where no verifier checks the token, the subject stays and the
        // roles go: the admin is refused, and WhoAmI sees no roles.
        let (status, _) = post(format!("{base}/v1/calc-nv/calc.Add"), admin.clone(), ADD);
        assert_eq!(status, 403);
        let (status, body) = post(format!("{base}/v1/calc-nv/calc.WhoAmI"), admin, "");
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["subject"], "root");
        assert_eq!(body["roles"], json!([]));
        assert_eq!(verifying.stats("calc").unwrap().denied, 1);
        assert_eq!(plain.stats("calc-nv").unwrap().denied, 1);

        handle.stop().await;
        for n in [plain, verifying, gw] {
            n.shutdown(Duration::from_secs(5)).await.unwrap();
        }
    });
}
