//! Errors: [`GatewayError`] for starting a gateway, and the JSON error
//! answers of the HTTP API.
//!
//! Every failed request is answered `{"error": kind, "message": text}`
//! with one of a fixed set of kinds (docs/gateway.md has the table). Errors
//! from inside the node that could reveal internals (a handler's panic
//! message, a codec failure) become a generic `internal` answer; the detail
//! is logged with the request id instead.

use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;
use msa_runtime::{BincodeError, CallError, JsonError};

/// Why a gateway could not start (or a token could not be made).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The auth settings are unusable (missing or bad key, ...).
    #[error("invalid auth config: {reason}")]
    Auth {
        /// What is wrong.
        reason: String,
    },
    /// A policy rule is unusable.
    #[error("invalid policy rule #{index}: {reason}")]
    Policy {
        /// The rule's position in `policy` (0-based).
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// A configured route is unusable (bad method, bad path pattern, duplicate).
    #[error("invalid route #{index} ({method} {path}): {reason}")]
    Route {
        /// The route's position in `routes` (0-based).
        index: usize,
        /// Its method as written.
        method: String,
        /// Its path as written.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Another setting is out of range.
    #[error("invalid gateway config: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// The listen address could not be bound.
    #[error("cannot bind {addr}: {reason}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        reason: String,
    },
    /// The server thread could not be started.
    #[error("cannot start the gateway server: {reason}")]
    Start {
        /// Why.
        reason: String,
    },
    /// A token could not be signed ([`hs256_token`](crate::hs256_token)).
    #[error("cannot sign token: {reason}")]
    Token {
        /// Why.
        reason: String,
    },
}

/// A failed request, as answered to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) kind: &'static str,
    pub(crate) message: String,
    /// For 405: the methods the path accepts.
    pub(crate) allow: Option<String>,
    /// For a 503 worth retrying soon: the `Retry-After` header, in seconds.
    pub(crate) retry_after: Option<u32>,
    /// A node the answer is about (the `node` field of the JSON body).
    pub(crate) node: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            allow: None,
            retry_after: None,
            node: None,
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub(crate) fn method_not_allowed(allow: String) -> Self {
        Self {
            allow: Some(allow.clone()),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("method not allowed here; allowed: {allow}"),
            )
        }
    }

    pub(crate) fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body exceeds {limit} bytes"),
        )
    }

    /// 408: the body did not arrive within the gateway's body timeout.
    pub(crate) fn body_timeout(after: std::time::Duration) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the request body did not arrive within {} ms",
                after.as_millis()
            ),
        )
    }

    /// 431: the request's headers are over the gateway's limit.
    pub(crate) fn headers_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!("request headers exceed {limit} bytes"),
        )
    }

    pub(crate) fn too_many_requests() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "too many requests in flight on this route; retry later",
        )
    }

    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    pub(crate) fn timeout(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, "timeout", message)
    }

    /// A generic 500 that names only the request id; the caller logs the detail.
    pub(crate) fn internal(request_id: &str) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("internal error (request id {request_id})"),
        )
    }

    /// Maps a failed JSON decode to its answer.
    pub(crate) fn from_json(e: &JsonError) -> Self {
        match e {
            JsonError::UnknownMessage { message } => {
                Self::not_found(format!("unknown message `{message}`"))
            }
            JsonError::MalformedJson { reason } => {
                Self::bad_request(format!("malformed JSON: {reason}"))
            }
            JsonError::BadBody { path, reason, .. } => {
                Self::bad_request(format!("invalid body at `{path}`: {reason}"))
            }
            other => Self::bad_request(other.to_string()),
        }
    }

    /// Maps a refused bincode payload (gRPC `ENCODING_BINCODE`) to its
    /// answer: 404 for an unknown message, 400 with the decoder's message
    /// for bytes that do not decode.
    pub(crate) fn from_bincode(e: &BincodeError) -> Self {
        match e {
            BincodeError::UnknownMessage { message } => {
                Self::not_found(format!("unknown message `{message}`"))
            }
            BincodeError::Malformed { message, reason } => {
                Self::bad_request(format!("malformed bincode for `{message}`: {reason}"))
            }
            other => Self::bad_request(other.to_string()),
        }
    }

    /// Maps a failed call to its answer, logging what must not be shown.
    pub(crate) fn from_call(e: &CallError, request_id: &str) -> Self {
        match e {
            CallError::UnknownService { service } => {
                Self::not_found(format!("unknown service `{service}`"))
            }
            CallError::UnhandledMessage { service, .. } => {
                Self::not_found(format!("service `{service}` does not handle this message"))
            }
            CallError::NoInstance { service } => {
                Self::unavailable(format!("service `{service}` has no live instance"))
            }
            CallError::NodeDown { .. } => {
                Self::unavailable("the node running the service is unreachable")
            }
            CallError::Overloaded { .. } => Self::unavailable("the service is overloaded"),
            // A partial cut: the node runs the service but this node cannot
            // reach it. Fails fast; the body names the node.
            CallError::Unreachable { node } => Self {
                node: Some(node.clone()),
                ..Self::unavailable(format!(
                    "node `{node}`, which runs the service, is unreachable from this node"
                ))
            },
            // The split-brain resolver downed this node (or the one that
            // hosts the service): 503 at once, naming it.
            CallError::Downed { node } => Self {
                node: Some(node.clone()),
                ..Self::unavailable(format!(
                    "node `{node}` is downed by the split-brain resolver (the losing side of a partition)"
                ))
            },
            // This node (or the one that hosts the service) is still
            // joining the cluster: 503 at once, naming it; retry shortly.
            CallError::Joining { node } => Self {
                node: Some(node.clone()),
                retry_after: Some(1),
                ..Self::unavailable(format!(
                    "node `{node}` is still joining the cluster (not admitted by every member yet)"
                ))
            },
            // The service's own access rule refused the caller (whatever the
            // gateway's policy said): 403, without the rule's details.
            CallError::PermissionDenied { service, .. } => Self::forbidden(format!("`{service}` refused the call: its access rule does not admit this caller")),
            // This node has not heard every member's service table yet (it
            // just joined): the service may exist. Retry shortly.
            CallError::TablesPending { service, nodes } => Self {
                retry_after: Some(1),
                ..Self::unavailable(format!(
                    "service `{service}` is not known yet: waiting for the service tables of {}",
                    nodes.join(", ")
                ))
            },
            // Decoded by the node that hosts the service: the same 400/404
            // as a body decoded here.
            CallError::Json { error, .. } => Self::from_json(error),
            CallError::Bincode { error, .. } => Self::from_bincode(error),
            CallError::ShuttingDown => Self::unavailable("the node is shutting down"),
            CallError::Timeout { service, after } => Self::timeout(format!(
                "service `{service}` did not answer within {} ms",
                after.as_millis()
            )),
            // InstanceDied: the handler may have run partly and the usual cause
            // is a panic in it, so the outcome is unknown: 500, not a 503
            // that invites blind retries. HandlerPanicked, Codec,
            // NotRegistered and anything new: 500 as well.
            _ => {
                tracing::error!(request_id, error = %e, "call failed");
                Self::internal(request_id)
            }
        }
    }

    pub(crate) fn to_response(&self) -> HttpResponse {
        let mut body = serde_json::json!({"error": self.kind, "message": self.message});
        if let Some(node) = &self.node {
            body["node"] = serde_json::Value::from(node.as_str());
        }
        let mut res = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        res.insert_header((header::CONTENT_TYPE, "application/json"));
        if let Some(allow) = &self.allow {
            res.insert_header((header::ALLOW, allow.as_str()));
        }
        if self.status == StatusCode::PAYLOAD_TOO_LARGE
            || self.status == StatusCode::REQUEST_TIMEOUT
        {
            // Do not drain the rest of an oversized or stalled body: close instead.
            res.force_close();
        }
        if self.status == StatusCode::UNAUTHORIZED {
            res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        res.body(body.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn every_call_error_maps_to_a_fixed_kind() {
        let s = || "svc".to_string();
        let cases = [
            (CallError::UnknownService { service: s() }, 404),
            (
                CallError::UnhandledMessage {
                    service: s(),
                    message: "T",
                },
                404,
            ),
            (CallError::NoInstance { service: s() }, 503),
            (CallError::NodeDown { node: "n".into() }, 503),
            (CallError::Overloaded { node: "n".into() }, 503),
            (CallError::ShuttingDown, 503),
            (
                CallError::Timeout {
                    service: s(),
                    after: Duration::from_millis(5),
                },
                504,
            ),
            (CallError::InstanceDied { service: s() }, 500),
            (
                CallError::HandlerPanicked {
                    service: s(),
                    message: "secret detail".into(),
                },
                500,
            ),
            (
                CallError::Codec {
                    service: s(),
                    reason: "secret detail".into(),
                },
                500,
            ),
            (CallError::NotRegistered { message: "T" }, 500),
            (CallError::Unreachable { node: "c".into() }, 503),
            (CallError::Downed { node: "c".into() }, 503),
            (CallError::Joining { node: "c".into() }, 503),
            (
                CallError::PermissionDenied {
                    service: s(),
                    reason: "secret detail".into(),
                },
                403,
            ),
            (
                CallError::TablesPending {
                    service: s(),
                    nodes: vec!["b".into()],
                },
                503,
            ),
        ];
        for (e, code) in cases {
            let a = ApiError::from_call(&e, "rid");
            assert_eq!(a.status.as_u16(), code, "{e:?}");
            assert!(!a.message.contains("secret"), "{a:?}");
        }
    }

    #[test]
    fn an_unreachable_node_is_named_and_pending_tables_ask_for_a_retry() {
        let a = ApiError::from_call(&CallError::Unreachable { node: "c".into() }, "rid");
        let res = a.to_response();
        assert_eq!(res.status().as_u16(), 503);
        assert_eq!(a.node.as_deref(), Some("c"));
        assert!(res.headers().get(header::RETRY_AFTER).is_none());
        let p = ApiError::from_call(
            &CallError::TablesPending {
                service: "kv".into(),
                nodes: vec!["b".into()],
            },
            "rid",
        );
        let res = p.to_response();
        assert_eq!(res.status().as_u16(), 503);
        assert_eq!(
            res.headers().get(header::RETRY_AFTER).map(|v| v.as_bytes()),
            Some(&b"1"[..])
        );
    }
}
