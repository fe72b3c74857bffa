//! Service calls over HTTP: authenticate, authorize, limit, read the body,
//! call the node, map the answer.
//!
//! The checks run in this order, so that a caller learns nothing about a
//! service it may not use: 401 (token), 403 (policy), 413/400/408 (body),
//! 429 (in-flight limit), then whatever the call itself yields.
//!
//! The body is read whole, under the size limit and within the body
//! timeout, *before* the call takes one of its route's concurrency
//! permits: a client that declares a body and trickles it (or never sends
//! it) holds a connection until the timeout, never a permit, so slow
//! senders cannot make everyone else's calls 429.

use std::borrow::Cow;
use std::panic::AssertUnwindSafe;

use std::time::Duration;

use actix_web::http::header::{HeaderMap, CONTENT_TYPE};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::FutureExt as _;
use msa_runtime::{CallError, Identity, JsonBody, JsonError, Metadata};
use serde_json::{Map, Value};

use crate::body;
use crate::error::ApiError;
use crate::routes::Route;
use crate::server::State;
use crate::trace::RequestCtx;

/// What a request calls.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallTarget<'a> {
    pub(crate) service: &'a str,
    pub(crate) message: &'a str,
    /// Path parameters to merge into the body (configured routes only).
    pub(crate) params: Option<&'a [(&'a str, Cow<'a, str>)]>,
}

/// Why this node serves no call through its gateway: downed by the
/// split-brain resolver, or still joining its cluster (`None`: a member).
pub(crate) fn not_member(node: &msa_runtime::Node) -> Option<CallError> {
    let node_name = || node.name().to_string();
    if node.is_self_downed() {
        Some(CallError::Downed { node: node_name() })
    } else if node.is_joining() {
        Some(CallError::Joining { node: node_name() })
    } else {
        None
    }
}

/// Serves one call.
pub(crate) async fn call(
    state: &State,
    req: &HttpRequest,
    payload: &mut web::Payload,
    ctx: &RequestCtx,
    route: &Route,
    target: CallTarget<'_>,
) -> Result<HttpResponse, ApiError> {
    // Downed by the split-brain resolver, or still joining the cluster:
    // 503 at once, before anything (the node serves nothing for the
    // cluster until it is up).
    if let Some(e) = not_member(&state.node) {
        return Err(ApiError::from_call(&e, ctx.request_id()));
    }
    let identity = admit(state, req.headers(), target.service, target.message).await?;
    let body_timeout = state.body_timeout();
    let read = body::read(req.headers(), payload, state.config.max_body_bytes);
    let body = match tokio::time::timeout(body_timeout, read).await {
        Ok(body) => body?,
        Err(_) => {
            state.metrics.count_refused("body_timeout");
            tracing::info!(
                request_id = ctx.request_id(),
                after_ms = body_timeout.as_millis() as u64,
                "request body timed out"
            );
            return Err(ApiError::body_timeout(body_timeout));
        }
    };
    let _permit = route
        .limiter
        .try_acquire()
        .map_err(|_| ApiError::too_many_requests())?;
    let meta = call_metadata(ctx, identity, req.headers());
    let timeout = state.call_timeout();
    let result = match target.params {
        None => {
            // An empty body is JSON's "nothing": it fits a unit message like `Get`.
            let bytes: &[u8] = if body.is_empty() { b"null" } else { &body };
            run(state, target, JsonBody::Bytes(bytes), meta, timeout, ctx).await
        }
        Some(params) => {
            let object = body_object(&body)?;
            let (value, typed) = merge(object.clone(), params, true);
            match run(
                state,
                target,
                JsonBody::Value(value),
                meta.clone(),
                timeout,
                ctx,
            )
            .await
            {
                // A parameter that looked like a number or bool where the
                // message wants a string: retry once with every parameter a
                // string. The body was refused before any handler ran,
                // whether it was decoded here or by the node that hosts the
                // service.
                Err(Failed::Json(JsonError::BadBody { path, .. }))
                    if typed.contains(&path.as_str()) =>
                {
                    let (value, _) = merge(object, params, false);
                    run(state, target, JsonBody::Value(value), meta, timeout, ctx).await
                }
                other => other,
            }
        }
    }
    .map_err(Failed::into_api)?;
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/json"))
        .body(result))
}

/// Who the caller is, for a call of `message` on `service` with these
/// request headers: `None` with auth off; 401 without a valid bearer token,
/// 403 when no policy rule grants one of its roles ([`authorize`], which the
/// gRPC ingress shares).
pub(crate) async fn admit(
    state: &State,
    headers: &HeaderMap,
    service: &str,
    message: &str,
) -> Result<Option<Identity>, ApiError> {
    let Some(auth) = &state.auth else {
        return Ok(None);
    };
    let id = auth.authenticate_async(headers).await?;
    authorize(state, &id, service, message)?;
    Ok(Some(id))
}

/// 403 unless a policy rule lets `id` send `message` to `service`.
pub(crate) fn authorize(
    state: &State,
    id: &Identity,
    service: &str,
    message: &str,
) -> Result<(), ApiError> {
    if state.policy.allows(id, service, message) {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "not allowed to send `{message}` to `{service}`"
    )))
}

/// The metadata a call carries: the trace, the caller's identity and its
/// token, and the request that the service check its own access rules
/// (with the token for a node that serves it elsewhere to verify).
pub(crate) fn call_metadata(
    ctx: &RequestCtx,
    identity: Option<Identity>,
    headers: &HeaderMap,
) -> Metadata {
    let mut meta = Metadata::new().with_trace(ctx.trace).with_access_check();
    if let Some(id) = identity {
        meta = meta.with_identity(id);
        if let Some(token) = crate::verifier::bearer_token(headers) {
            meta = meta.with_token(token);
        }
    }
    meta
}

/// Why a call produced no result.
pub(crate) enum Failed {
    /// The body was refused (by this node or the one that decoded it).
    Json(JsonError),
    /// Anything else, already mapped to its answer.
    Api(ApiError),
}

impl Failed {
    /// The answer to give.
    pub(crate) fn into_api(self) -> ApiError {
        match self {
            Failed::Json(e) => ApiError::from_json(&e),
            Failed::Api(e) => e,
        }
    }
}

/// Starts the call and awaits it. Awaited in the handler: an ask that meets
/// a full mailbox waits for room without waking the connection, so no task
/// of its own is needed (one was, while such an ask spun: every retry polled
/// the connection's whole dispatcher). A panic while decoding the reply is a
/// 500, never a dead worker. `timeout`: the call's (`None`: the node's
/// default).
pub(crate) async fn run(
    state: &State,
    target: CallTarget<'_>,
    body: JsonBody<'_>,
    meta: Metadata,
    timeout: Option<Duration>,
    ctx: &RequestCtx,
) -> Result<Vec<u8>, Failed> {
    let reply = state
        .node
        .call_json(target.service, target.message, body, meta, timeout)
        .map_err(Failed::Json)?;
    match AssertUnwindSafe(reply).catch_unwind().await {
        Ok(Ok(result)) => Ok(result),
        Ok(Err(CallError::Json { error, .. })) => Err(Failed::Json(error)),
        Ok(Err(e)) => Err(Failed::Api(ApiError::from_call(&e, ctx.request_id()))),
        Err(_) => {
            tracing::error!(request_id = ctx.request_id(), "the call panicked");
            Err(Failed::Api(ApiError::internal(ctx.request_id())))
        }
    }
}

/// [`run`] for a bincode payload (gRPC `ENCODING_BINCODE`): the message's
/// bincode bytes by wire name, the reply's bincode bytes back.
pub(crate) async fn run_bincode(
    state: &State,
    target: CallTarget<'_>,
    body: &[u8],
    meta: Metadata,
    timeout: Option<Duration>,
    ctx: &RequestCtx,
) -> Result<Vec<u8>, Failed> {
    let reply = state
        .node
        .call_bincode(target.service, target.message, body, meta, timeout)
        .map_err(|e| Failed::Api(ApiError::from_bincode(&e)))?;
    match AssertUnwindSafe(reply).catch_unwind().await {
        Ok(Ok(result)) => Ok(result),
        Ok(Err(e)) => Err(Failed::Api(ApiError::from_call(&e, ctx.request_id()))),
        Err(_) => {
            tracing::error!(request_id = ctx.request_id(), "the call panicked");
            Err(Failed::Api(ApiError::internal(ctx.request_id())))
        }
    }
}

/// The body of a configured route: a JSON object, or nothing (`{}`).
fn body_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::bad_request(
            "invalid body at `.`: expected a JSON object",
        )),
        Err(e) => Err(ApiError::bad_request(format!("malformed JSON: {e}"))),
    }
}

/// Merges path parameters into `object` (they win over body fields of the
/// same name). With `typed`, a value that parses as a JSON number or bool is
/// inserted as one; returns the names inserted that way.
fn merge<'n>(
    mut object: Map<String, Value>,
    params: &[(&'n str, Cow<'_, str>)],
    typed: bool,
) -> (Value, Vec<&'n str>) {
    let mut as_typed = Vec::new();
    for &(name, ref raw) in params {
        let value = match serde_json::from_str::<Value>(raw) {
            Ok(v @ (Value::Number(_) | Value::Bool(_))) if typed => {
                as_typed.push(name);
                v
            }
            _ => Value::String(raw.to_string()),
        };
        object.insert(name.to_string(), value);
    }
    (Value::Object(object), as_typed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_merge_typed_then_as_strings() {
        let params = [
            ("id", Cow::Borrowed("42")),
            ("flag", Cow::Borrowed("true")),
            ("name", Cow::Owned("bob".to_string())),
            ("n", Cow::Borrowed("1e999")),
        ];
        let body = body_object(br#"{"id": "body loses", "qty": 2}"#).unwrap();
        let (v, typed) = merge(body.clone(), &params, true);
        assert_eq!(
            v,
            serde_json::json!({"id": 42, "flag": true, "name": "bob", "n": "1e999", "qty": 2})
        );
        assert_eq!(typed, ["id", "flag"]);
        let (v, typed) = merge(body, &params, false);
        assert_eq!(v["id"], "42");
        assert!(typed.is_empty());
    }

    #[test]
    fn configured_bodies_must_be_objects() {
        assert!(body_object(b"").unwrap().is_empty());
        assert!(body_object(b" \n").unwrap().is_empty());
        for bad in [&b"[1]"[..], b"3", b"{", b"null"] {
            assert_eq!(body_object(bad).unwrap_err().status, 400);
        }
    }
}
