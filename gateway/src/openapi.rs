//! `GET /v1/openapi.json`: an OpenAPI 3.1 document of every route this
//! gateway serves, made from what the node knows when it is asked.
//!
//! Every message of every service the node knows (its own and the other
//! members') gets a path `/v1/{service}/{message}` with the message's
//! request and reply JSON schemas ([`RemoteMessage::json_schema`] and
//! [`RemoteMessage::reply_json_schema`], traced from the types' serde shape
//! unless the type describes itself with schemars); configured routes get
//! their method and path with string path parameters; `/healthz`,
//! `/readyz`, `/metrics`, `/v1/cluster`, the live view's data and this document are described
//! with their bodies; every error answer is the `Error` schema with the
//! statuses docs/gateway.md lists.
//!
//! OpenAPI 3.1 takes JSON Schema 2020-12 as is, so a message's schema is
//! used unchanged except for its `$defs`: they move to
//! `components/schemas` (a `$ref` resolves against the whole document),
//! under their own name when no other message defines that name otherwise,
//! else under `{wire name}.{request|reply}.{name}`.
//!
//! Built by hand with `serde_json::json!` rather than with an OpenAPI crate
//! (utoipa, okapi): those describe handlers known at compile time, while
//! these routes are the services a running cluster has, known only now.
//!
//! [`RemoteMessage::json_schema`]: msa_runtime::RemoteMessage::json_schema
//! [`RemoteMessage::reply_json_schema`]: msa_runtime::RemoteMessage::reply_json_schema

use std::collections::BTreeMap;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::server::State;

/// Every `error` kind an answer may carry (docs/gateway.md, "Errors").
const ERROR_KINDS: [&str; 10] = [
    "bad_request",
    "unauthorized",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "payload_too_large",
    "too_many_requests",
    "internal",
    "unavailable",
    "timeout",
];

/// The error answers a call may get: status, component name, when.
const CALL_ERRORS: [(&str, &str, &str); 8] = [
    (
        "400",
        "BadRequest",
        "malformed JSON, or a body that does not fit the message",
    ),
    ("404", "NotFound", "unknown service or message"),
    ("413", "PayloadTooLarge", "body over `max_body_bytes`"),
    (
        "429",
        "TooManyRequests",
        "the route has `max_concurrency` calls in flight",
    ),
    (
        "500",
        "Internal",
        "the instance died holding the call, or another internal error",
    ),
    (
        "503",
        "Unavailable",
        "no live instance, node down or unreachable, overloaded, shutting down",
    ),
    ("504", "Timeout", "the service did not answer in time"),
    (
        "405",
        "MethodNotAllowed",
        "known path, another method (`Allow` header)",
    ),
];

/// `GET /v1/openapi.json`; with auth on it needs an admin role, as
/// `/v1/cluster` does (it names every service).
pub(crate) async fn openapi(state: &State, req: &HttpRequest) -> Result<HttpResponse, ApiError> {
    crate::ops::require_admin(state, req).await?;
    let doc = document(state);
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/json"))
        .body(doc.to_string()))
}

/// The document.
pub(crate) fn document(state: &State) -> Value {
    let node = &state.node;
    let auth = state.auth.is_some();
    let mut schemas = Map::new();
    schemas.insert("Error".into(), error_schema());
    let mut paths = Map::new();
    builtin_paths(&mut paths, auth);

    let mut services: Vec<String> = node
        .cluster_status()
        .services
        .into_iter()
        .map(|s| s.name)
        .chain(node.local_services())
        .collect();
    services.sort();
    services.dedup();
    for service in &services {
        for wire in node.service_messages(service) {
            let info = node.message_info(&wire);
            let (request, reply) = match &info {
                Some(i) => (i.schema.clone(), i.reply_schema.clone()),
                None => (None, None),
            };
            let request = request.map(|s| hoist(s, &format!("{wire}.request"), &mut schemas));
            let reply = reply.map(|s| hoist(s, &format!("{wire}.reply"), &mut schemas));
            let mut op = call_operation(
                &format!("{service} {wire}"),
                &format!("Calls `{wire}` on `{service}`."),
                request,
                reply,
                auth,
            );
            if let (Some(i), Some(o)) = (&info, op.as_object_mut()) {
                o.insert("x-msa-contract-version".into(), i.version.into());
            }
            paths.insert(format!("/v1/{service}/{wire}"), json!({"post": op}));
        }
    }

    for r in &state.config.routes {
        let info = node.message_info(&r.message);
        let reply = info
            .as_ref()
            .and_then(|i| i.reply_schema.clone())
            .map(|s| hoist(s, &format!("{}.reply", r.message), &mut schemas));
        let params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
            })
            .collect();
        let method = r.method.to_ascii_lowercase();
        // Without path parameters the body is the whole message; with them,
        // any object (the parameters fill in fields).
        let body = match (&info, params.is_empty()) {
            (Some(i), true) => i
                .schema
                .clone()
                .map(|s| hoist(s, &format!("{}.request", r.message), &mut schemas)),
            _ => None,
        };
        let mut op = call_operation(
            &format!("{method} {}", r.path),
            &format!(
                "Calls `{}` on `{}`: the body (a JSON object, or nothing) with the path \
                 parameters merged into it.",
                r.message, r.service
            ),
            Some(body.unwrap_or_else(|| json!({"type": "object"}))),
            reply,
            auth,
        );
        if let Some(o) = op.as_object_mut() {
            o.insert("parameters".into(), Value::Array(params));
            if let Some(body) = o.get_mut("requestBody").and_then(Value::as_object_mut) {
                body.insert("required".into(), false.into());
            }
        }
        let entry = paths.entry(r.path.clone()).or_insert_with(|| json!({}));
        if let Some(e) = entry.as_object_mut() {
            e.insert(method, op);
        }
    }

    let mut responses = Map::new();
    for (_, name, when) in CALL_ERRORS.iter().chain(&[
        ("401", "Unauthorized", "no valid token"),
        ("403", "Forbidden", "not allowed"),
    ]) {
        responses.insert((*name).into(), error_response(when));
    }
    let mut components = json!({"schemas": schemas, "responses": responses});
    if auth {
        components["securitySchemes"] =
            json!({"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}});
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": format!("msa gateway of node `{}`", node.name()),
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every service message this node knows, with its request and reply \
                            JSON schemas. Errors are `{\"error\": kind, \"message\": text}`.",
        },
        "paths": paths,
        "components": components,
    })
}

fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string", "enum": ERROR_KINDS},
            "message": {"type": "string"},
            "node": {"type": "string", "description": "the node the answer is about"},
        },
    })
}

fn error_response(when: &str) -> Value {
    json!({
        "description": when,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    })
}

fn response_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/responses/{name}")})
}

/// `security` of an operation that needs a token when auth is on.
fn secured(op: &mut Map<String, Value>, auth: bool) {
    if auth {
        op.insert("security".into(), json!([{"bearer": []}]));
        let r = op
            .entry("responses")
            .or_insert_with(|| json!({}))
            .as_object_mut();
        if let Some(r) = r {
            r.insert("401".into(), response_ref("Unauthorized"));
            r.insert("403".into(), response_ref("Forbidden"));
        }
    } else {
        op.insert("security".into(), json!([]));
    }
}

fn call_operation(
    id: &str,
    summary: &str,
    request: Option<Value>,
    reply: Option<Value>,
    auth: bool,
) -> Value {
    let any = json!({});
    let mut responses = Map::new();
    responses.insert(
        "200".into(),
        json!({
            "description": "the message's result",
            "content": {"application/json": {"schema": reply.unwrap_or_else(|| any.clone())}},
        }),
    );
    for (status, name, _) in CALL_ERRORS {
        responses.insert(status.into(), response_ref(name));
    }
    let mut op = Map::new();
    op.insert("operationId".into(), Value::from(id));
    op.insert("summary".into(), Value::from(summary));
    op.insert(
        "requestBody".into(),
        json!({
            "required": true,
            "content": {"application/json": {"schema": request.unwrap_or(any)}},
        }),
    );
    op.insert("responses".into(), Value::Object(responses));
    secured(&mut op, auth);
    Value::Object(op)
}

fn builtin_paths(paths: &mut Map<String, Value>, auth: bool) {
    let status = |s: &str| json!({"type": "object", "required": ["status"], "properties": {"status": {"const": s}}});
    let ok = |schema: Value, what: &str| json!({"description": what, "content": {"application/json": {"schema": schema}}});
    let open = |id: &str, responses: Value| json!({"get": {"operationId": id, "security": [], "responses": responses}});
    paths.insert(
        "/healthz".into(),
        open(
            "healthz",
            json!({"200": ok(status("ok"), "the gateway answers")}),
        ),
    );
    let not_ready = json!({
        "type": "object",
        "required": ["status", "reasons"],
        "properties": {
            "status": {"const": "not_ready"},
            "reasons": {"type": "array", "items": {"type": "string"}},
        },
    });
    paths.insert(
        "/readyz".into(),
        open(
            "readyz",
            json!({
                "200": ok(status("ready"), "ready to serve"),
                "503": ok(not_ready, "not ready, with the reasons"),
            }),
        ),
    );
    let admin = |id: &str, desc: &str, content: Value| {
        let mut op = Map::new();
        op.insert("operationId".into(), Value::from(id));
        op.insert(
            "responses".into(),
            json!({"200": {"description": desc, "content": content}}),
        );
        secured(&mut op, auth);
        json!({"get": op})
    };
    paths.insert(
        "/metrics".into(),
        admin(
            "metrics",
            "Prometheus text format (an admin role when auth is on)",
            json!({"text/plain": {"schema": {"type": "string"}}}),
        ),
    );
    paths.insert(
        "/v1/cluster".into(),
        admin(
            "cluster",
            "members, services, their messages and JSON schemas (an admin role when auth is on)",
            json!({"application/json": {"schema": {
                "type": "object",
                "required": ["members", "services"],
                "properties": {
                    "members": {"type": "array"},
                    "services": {"type": "array"},
                    "unreachable": {"type": "array"},
                },
            }}}),
        ),
    );
    paths.insert(
        "/v1/live/snapshot".into(),
        admin(
            "liveSnapshot",
            "the live view's snapshot of the cluster (docs/live-view.md; an admin role when auth is on)",
            json!({"application/json": {"schema": {
                "type": "object",
                "required": ["version", "seq", "at_ms", "observer", "nodes", "services", "traces"],
            }}}),
        ),
    );
    paths.insert(
        "/v1/live/stream".into(),
        admin(
            "liveStream",
            "live view snapshots, one JSON document per line, at most 4 a second, until the client goes away (an admin role when auth is on)",
            json!({"application/x-ndjson": {"schema": {"type": "string"}}}),
        ),
    );
    paths.insert(
        "/v1/openapi.json".into(),
        admin(
            "openapi",
            "this document (an admin role when auth is on)",
            json!({"application/json": {"schema": {"type": "object", "required": ["openapi", "paths"]}}}),
        ),
    );
}

/// Moves `schema`'s `$defs` into `components` and points its `$ref`s there.
fn hoist(mut schema: Value, prefix: &str, components: &mut Map<String, Value>) -> Value {
    let defs = match schema.as_object_mut() {
        Some(o) => {
            o.remove("$schema");
            match o.remove("$defs") {
                Some(Value::Object(d)) => d,
                _ => Map::new(),
            }
        }
        None => Map::new(),
    };
    // Under their own names when that clashes with nothing, else prefixed.
    let plain: BTreeMap<String, String> = defs
        .keys()
        .map(|k| (k.clone(), component_name(k)))
        .collect();
    let fits = defs.iter().all(|(k, v)| {
        let v = rewrite(v.clone(), &plain);
        components.get(&plain[k]).is_none_or(|have| *have == v)
    });
    let names: BTreeMap<String, String> = if fits {
        plain
    } else {
        defs.keys()
            .map(|k| (k.clone(), component_name(&format!("{prefix}.{k}"))))
            .collect()
    };
    for (k, v) in defs {
        let v = rewrite(v, &names);
        components.insert(names[&k].clone(), v);
    }
    rewrite(schema, &names)
}

/// A name OpenAPI accepts for a component (`^[a-zA-Z0-9._-]+$`).
fn component_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Points every `#/$defs/X` reference at `#/components/schemas/{names[X]}`.
fn rewrite(v: Value, names: &BTreeMap<String, String>) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| {
                    if k == "$ref" {
                        if let Some(target) = v.as_str().and_then(|s| s.strip_prefix("#/$defs/")) {
                            let name = names
                                .get(target)
                                .cloned()
                                .unwrap_or_else(|| component_name(target));
                            return (k, Value::from(format!("#/components/schemas/{name}")));
                        }
                    }
                    (k, rewrite(v, names))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(|v| rewrite(v, names)).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defs_move_to_components_and_clashes_get_prefixed() {
        let mut components = Map::new();
        let a = json!({"$schema": "x", "$ref": "#/$defs/Item",
                       "$defs": {"Item": {"type": "object", "properties": {"n": {"$ref": "#/$defs/N"}}},
                                 "N": {"type": "integer"}}});
        let out = hoist(a, "a.A.request", &mut components);
        assert_eq!(out, json!({"$ref": "#/components/schemas/Item"}));
        assert_eq!(
            components["Item"]["properties"]["n"]["$ref"],
            "#/components/schemas/N"
        );
        // The same definition again: shared.
        let same = json!({"$ref": "#/$defs/N", "$defs": {"N": {"type": "integer"}}});
        assert_eq!(
            hoist(same, "b.B.reply", &mut components),
            json!({"$ref": "#/components/schemas/N"})
        );
        // Another `Item`: prefixed.
        let other = json!({"$ref": "#/$defs/Item", "$defs": {"Item": {"type": "string"}}});
        assert_eq!(
            hoist(other, "c.C.reply", &mut components),
            json!({"$ref": "#/components/schemas/c.C.reply.Item"})
        );
        assert_eq!(components["c.C.reply.Item"], json!({"type": "string"}));
        assert_eq!(components.len(), 3);
    }
}
