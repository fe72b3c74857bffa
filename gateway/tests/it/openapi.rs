//! `GET /v1/openapi.json`: an OpenAPI 3.1 document naming every message of
//! the running node with its request and reply schemas.

use std::time::Duration;

use msa_gateway::{hs256_token, AuthConfig, GatewayConfig, RouteConfig};
use serde_json::Value;

use crate::support::{config, Fixture};

/// Every `$ref` in `v`, resolved against `doc`: none may dangle.
fn check_refs(doc: &Value, v: &Value) {
    match v {
        Value::Object(o) => {
            if let Some(r) = o.get("$ref").and_then(Value::as_str) {
                let path = r.strip_prefix("#/").unwrap_or_else(|| panic!("{r}"));
                let target = path
                    .split('/')
                    .try_fold(doc, |at, seg| at.get(seg))
                    .unwrap_or_else(|| panic!("dangling {r}"));
                assert!(target.is_object(), "{r}");
            }
            o.values().for_each(|x| check_refs(doc, x));
        }
        Value::Array(a) => a.iter().for_each(|x| check_refs(doc, x)),
        _ => {}
    }
}

/// The schema `s` points to (one `$ref` followed).
fn deref<'a>(doc: &'a Value, s: &'a Value) -> &'a Value {
    match s["$ref"].as_str() {
        Some(r) => r
            .trim_start_matches("#/")
            .split('/')
            .fold(doc, |at, seg| &at[seg]),
        None => s,
    }
}

#[actix_rt::test]
async fn openapi_names_every_message_with_its_schemas() {
    let mut cfg = config();
    cfg.routes = vec![
        RouteConfig {
            method: "GET".into(),
            path: "/orders/{id}".into(),
            service: "calc".into(),
            message: "shop.GetOrder".into(),
        },
        RouteConfig {
            method: "POST".into(),
            path: "/add".into(),
            service: "calc".into(),
            message: "calc.Add".into(),
        },
    ];
    let f = Fixture::start(cfg).await;
    let r = f.send("GET", "/v1/openapi.json", None, "").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    let doc = &r.json;
    assert_eq!(doc["openapi"], "3.1.0");
    check_refs(doc, doc);
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/cluster",
        "/v1/openapi.json",
    ] {
        assert!(paths[p]["get"]["responses"]["200"].is_object(), "{p}");
    }
    assert!(paths["/readyz"]["get"]["responses"]["503"].is_object());
    let messages = f.node.service_messages("calc");
    assert!(messages.len() >= 7, "{messages:?}");
    for wire in &messages {
        let op = &paths[&format!("/v1/calc/{wire}")]["post"];
        let req = &op["requestBody"]["content"]["application/json"]["schema"];
        let rep = &op["responses"]["200"]["content"]["application/json"]["schema"];
        assert!(
            req.is_object() && req != &serde_json::json!({}),
            "{wire}: {op}"
        );
        assert!(
            rep.is_object() && rep != &serde_json::json!({}),
            "{wire}: {op}"
        );
        for status in ["400", "404", "413", "429", "500", "503", "504"] {
            assert!(
                op["responses"][status]["$ref"].is_string(),
                "{wire} {status}"
            );
        }
        assert_eq!(op["x-msa-contract-version"], 1, "{wire}");
    }
    // calc.Add describes itself with schemars; shop.GetOrder is traced.
    let add = &paths["/v1/calc/calc.Add"]["post"];
    let add_req = &add["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(add_req["properties"]["a"]["type"], "integer", "{add_req}");
    let add_rep = &add["responses"]["200"]["content"]["application/json"]["schema"];
    assert_eq!(add_rep["type"], "integer", "{add_rep}");
    let get = &paths["/v1/calc/shop.GetOrder"]["post"];
    let get_req = deref(
        doc,
        &get["requestBody"]["content"]["application/json"]["schema"],
    );
    assert_eq!(get_req["properties"]["id"]["type"], "integer", "{get_req}");
    assert_eq!(get_req["required"], serde_json::json!(["id", "detail"]));
    // The configured route, with its path parameter.
    let by_id = &paths["/orders/{id}"]["get"];
    assert_eq!(by_id["parameters"][0]["name"], "id");
    assert_eq!(by_id["parameters"][0]["in"], "path");
    let rep = &by_id["responses"]["200"]["content"]["application/json"]["schema"];
    assert_eq!(rep["type"], "string", "{by_id}");
    // Without path parameters, the body is the message itself.
    let add_route = &paths["/add"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(
        add_route["properties"]["b"]["type"], "integer",
        "{add_route}"
    );
    // Errors have one documented shape.
    let error = &doc["components"]["schemas"]["Error"];
    assert_eq!(error["required"], serde_json::json!(["error", "message"]));
    // And a real answer fits what the document says.
    let r = f.post("/v1/calc/calc.Add", r#"{"a": 2, "b": 3}"#).await;
    assert_eq!((r.status, r.json.clone()), (200, serde_json::json!(5)));
    f.stop().await;
}

#[actix_rt::test]
async fn openapi_needs_an_admin_token_when_auth_is_on() {
    const SECRET: &str = "openapi-secret";
    let f = Fixture::start(GatewayConfig {
        auth: Some(AuthConfig::hs256(SECRET)),
        ..config()
    })
    .await;
    let customer = hs256_token(SECRET, "c", &["customer"], Duration::from_secs(60)).unwrap();
    let admin = hs256_token(SECRET, "a", &["admin"], Duration::from_secs(60)).unwrap();
    let r = f.send("GET", "/v1/openapi.json", None, "").await;
    assert_eq!(r.status, 401, "{r:?}");
    let r = f.send("GET", "/v1/openapi.json", Some(&customer), "").await;
    assert_eq!(r.status, 403, "{r:?}");
    let r = f.send("GET", "/v1/openapi.json", Some(&admin), "").await;
    assert_eq!(r.status, 200, "{r:?}");
    let doc = &r.json;
    check_refs(doc, doc);
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let op = &doc["paths"]["/v1/calc/calc.Add"]["post"];
    assert_eq!(op["security"], serde_json::json!([{"bearer": []}]));
    assert!(op["responses"]["401"]["$ref"].is_string());
    assert_eq!(
        doc["paths"]["/healthz"]["get"]["security"],
        serde_json::json!([])
    );
    f.stop().await;
}
