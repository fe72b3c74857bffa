//! CORS (`[gateway.cors]`): preflights answered for allowed origins, no
//! CORS headers at all for denied ones, no CORS without the table.

use crate::support::*;
use msa_gateway::{CorsConfig, GatewayConfig};

const APP: &str = "https://shop.example.com";

fn cors(origins: &[&str]) -> GatewayConfig {
    GatewayConfig {
        cors: Some(CorsConfig {
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            ..CorsConfig::default()
        }),
        ..config()
    }
}

async fn preflight(f: &Fixture, origin: &str, method: &str) -> Resp {
    let req = f
        .client
        .request(awc::http::Method::OPTIONS, f.url("/v1/calc/calc.Add"))
        .insert_header(("origin", origin))
        .insert_header(("access-control-request-method", method))
        .insert_header((
            "access-control-request-headers",
            "authorization, content-type",
        ));
    send_req(req, String::new()).await
}

async fn post_from(f: &Fixture, origin: &str) -> Resp {
    let req = f
        .client
        .post(f.url("/v1/calc/calc.Add"))
        .insert_header(("origin", origin))
        .insert_header(("content-type", "application/json"));
    send_req(req, r#"{"a":1,"b":2}"#.into()).await
}

fn cors_headers(r: &Resp) -> Vec<String> {
    r.headers
        .keys()
        .map(|k| k.as_str().to_string())
        .filter(|k| k.starts_with("access-control-"))
        .collect()
}

#[actix_rt::test]
async fn an_allowed_origin_gets_its_preflight_and_cors_headers() {
    let f = Fixture::start(cors(&[APP, "http://localhost:3000"])).await;
    let r = preflight(&f, APP, "POST").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    let methods = r.header("access-control-allow-methods").unwrap();
    assert!(
        methods.contains("POST") && methods.contains("GET"),
        "{methods}"
    );
    let headers = r
        .header("access-control-allow-headers")
        .unwrap()
        .to_lowercase();
    assert!(
        headers.contains("authorization") && headers.contains("content-type"),
        "{headers}"
    );
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    assert!(r.header("vary").unwrap().to_lowercase().contains("origin"));
    // The actual call carries the headers too, and exposes x-request-id.
    let r = post_from(&f, "http://localhost:3000").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json, serde_json::json!(3));
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://localhost:3000")
    );
    assert!(r
        .header("access-control-expose-headers")
        .unwrap()
        .contains("x-request-id"));
    // A method not in the table is refused at the preflight.
    let r = preflight(&f, APP, "TRACE").await;
    assert_eq!(r.status, 400, "{r:?}");
    f.stop().await;
}

#[actix_rt::test]
async fn a_denied_origin_gets_no_cors_headers() {
    let f = Fixture::start(cors(&[APP])).await;
    for origin in [
        "https://evil.example.com",
        "https://shop.example.com.evil.net",
        "null",
    ] {
        let r = preflight(&f, origin, "POST").await;
        assert_eq!(r.status, 400, "{origin}: {r:?}");
        assert!(cors_headers(&r).is_empty(), "{origin}: {r:?}");
        // The call itself is served (CORS is the browser's rule, not
        // authentication), but the page may not read it: no CORS headers.
        let r = post_from(&f, origin).await;
        assert_eq!(r.status, 200);
        assert!(cors_headers(&r).is_empty(), "{origin}: {r:?}");
    }
    let metrics = f.send("GET", "/metrics", None, "").await;
    let text = String::from_utf8_lossy(&metrics.raw).into_owned();
    let denied = text
        .lines()
        .find(|l| l.contains("reason=\"cors_denied\""))
        .unwrap_or_else(|| panic!("{text}"));
    let n: f64 = denied.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 6.0, "{denied}");
    f.stop().await;
}

#[actix_rt::test]
async fn any_origin_with_a_star() {
    let f = Fixture::start(cors(&["*"])).await;
    let r = preflight(&f, "https://anyone.example", "POST").await;
    assert_eq!(r.status, 200);
    assert!(r.header("access-control-allow-origin").is_some());
    f.stop().await;
}

#[actix_rt::test]
async fn without_the_table_there_is_no_cors() {
    let f = Fixture::start(config()).await;
    let r = preflight(&f, APP, "POST").await;
    assert_eq!(r.status, 405, "{r:?}");
    assert!(cors_headers(&r).is_empty());
    let r = post_from(&f, APP).await;
    assert_eq!(r.status, 200);
    assert!(cors_headers(&r).is_empty());
    f.stop().await;
}

#[actix_rt::test]
async fn a_bad_table_does_not_start() {
    let node = msa_runtime::Node::builder().arbiters(1).start().unwrap();
    for origins in [&["shop.example.com"][..], &[], &["https://x.example/path"]] {
        let e = msa_gateway::Gateway::start(node.clone(), cors(origins)).unwrap_err();
        assert!(e.to_string().contains("cors"), "{e}");
    }
    node.shutdown(GRACE).await.unwrap();
}
