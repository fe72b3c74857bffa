//! Operations endpoints: liveness, readiness, metrics and the cluster view.
//!
//! The gateway serves them beside its calls; [`OpsServer`] serves the first
//! three on an address of their own, on any node, gateway or not.
//!
//! `/healthz` and `/readyz` never need a token (probes do not carry one);
//! `/metrics` and `/v1/cluster` reveal the deployment, so with auth on they
//! need one of the configured admin roles.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse};
use msa_runtime::{Node, ServiceState};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::server::State;

mod server;

pub use server::{OpsHandle, OpsServer};

fn json_response(mut res: actix_web::HttpResponseBuilder, body: &Value) -> HttpResponse {
    res.insert_header((CONTENT_TYPE, "application/json"))
        .body(body.to_string())
}

/// `GET /healthz`: the gateway answers, so it is alive.
pub(crate) fn healthz() -> HttpResponse {
    json_response(HttpResponse::Ok(), &json!({"status": "ok"}))
}

/// Why the node is not ready to serve, if it is not.
///
/// Ready means: every service of this node is `Running` (a failed,
/// starting or stopped one is a reason), and, when the node is clustered
/// (it has remoting), membership is up: the node appears in its own member
/// list, a node that was given seeds sees at least one other live member
/// (the first node of a cluster has no seeds, so it is ready alone), and
/// it holds the service table of every live member it knows
/// ([`Node::tables_pending`]: known members, peers and members named by a
/// peer's table, and the seeds before any connection). A node downed by
/// the split-brain resolver, or still joining its cluster
/// ([`Node::is_joining`]), is not ready either.
pub(crate) fn not_ready_reasons(node: &Node) -> Vec<String> {
    let mut reasons = Vec::new();
    if node.is_self_downed() {
        // Nothing else matters until it rejoins.
        reasons.push(
            "the node is downed by the split-brain resolver (the losing side of a partition)"
                .to_string(),
        );
        return reasons;
    }
    if node.is_joining() {
        reasons.push(
            "the node is still joining its cluster (not admitted by every member it sees yet)"
                .to_string(),
        );
    }
    for name in node.local_services() {
        match node.service_state(&name) {
            Some(ServiceState::Running) | None => {}
            Some(s) => reasons.push(format!("service `{name}` is {s:?}")),
        }
    }
    if let Some(me) = node.node_info() {
        let status = node.cluster_status();
        let joined = status
            .members
            .iter()
            .any(|m| m.name == me.name && m.status == "alive");
        if !joined {
            reasons.push("the node has not joined its cluster".to_string());
        } else if !node.seeds().is_empty()
            && !status
                .members
                .iter()
                .any(|m| m.name != me.name && m.status == "alive")
        {
            reasons.push("no live member reached through the seeds yet".to_string());
        }
        // A member still joining sends no table until it is up: not a
        // reason for this node (it routes nothing there meanwhile).
        let joining: Vec<&str> = status
            .members
            .iter()
            .filter(|m| m.name != me.name && m.state == "joining")
            .map(|m| m.name.as_str())
            .collect();
        let mut pending = node.tables_pending();
        pending.retain(|n| !joining.contains(&n.as_str()));
        if !pending.is_empty() {
            reasons.push(format!(
                "no service table received yet from: {}",
                pending.join(", ")
            ));
        }
    }
    reasons
}

/// `GET /readyz`: 200 when ready, else 503 with the reasons. `extra` are
/// reasons the caller adds (shutting down, services still starting).
pub(crate) fn readyz(node: &Node, extra: &[&str]) -> HttpResponse {
    let mut reasons: Vec<String> = extra.iter().map(|r| (*r).to_string()).collect();
    reasons.extend(not_ready_reasons(node));
    if reasons.is_empty() {
        json_response(HttpResponse::Ok(), &json!({"status": "ready"}))
    } else {
        json_response(
            HttpResponse::ServiceUnavailable(),
            &json!({"status": "not_ready", "reasons": reasons}),
        )
    }
}

/// The reason `/readyz` gives while the node drains on its way out.
pub(crate) const SHUTTING_DOWN: &str = "the node is shutting down";

/// With auth on: 401 without a valid token, 403 without an admin role.
pub(crate) async fn require_admin(state: &State, req: &HttpRequest) -> Result<(), ApiError> {
    crate::live::require_admin(state.auth.as_ref(), req).await
}

/// `GET /metrics`: Prometheus text format.
pub(crate) async fn metrics(state: &State, req: &HttpRequest) -> Result<HttpResponse, ApiError> {
    require_admin(state, req).await?;
    Ok(metrics_response(&state.metrics))
}

/// `metrics` rendered now, as a Prometheus text response.
pub(crate) fn metrics_response(metrics: &crate::metrics::Metrics) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, crate::metrics::CONTENT_TYPE))
        .body(metrics.render())
}

/// `GET /v1/cluster`: `Node::cluster_status()` with, for each service, the
/// messages it handles and their JSON schemas.
pub(crate) async fn cluster(state: &State, req: &HttpRequest) -> Result<HttpResponse, ApiError> {
    require_admin(state, req).await?;
    let node = &state.node;
    let mut view = serde_json::to_value(node.cluster_status()).map_err(|e| {
        tracing::error!(error = %e, "the cluster status is not JSON");
        ApiError::internal("-")
    })?;
    if let Some(services) = view.get_mut("services").and_then(Value::as_array_mut) {
        for svc in services {
            let name = svc
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let messages: Vec<Value> = node
                .service_messages(&name)
                .into_iter()
                .map(|wire| {
                    let schema = node.message_info(&wire).and_then(|i| i.schema);
                    json!({"name": wire, "schema": schema})
                })
                .collect();
            if let Some(obj) = svc.as_object_mut() {
                obj.insert("messages".into(), Value::Array(messages));
            }
        }
    }
    Ok(json_response(HttpResponse::Ok(), &view))
}
