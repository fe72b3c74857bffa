//! `msa.v1.Gateway`: `Call` through the HTTP gateway's own call path, and
//! `Subscribe`, a topic's events as the server-sent events of
//! `GET /v1/topics/{topic}` carry them, under the same checks.

use std::pin::Pin;
use std::sync::Arc;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::web;
use futures_util::Stream;
use msa_runtime::{Identity, JsonBody, JsonSubscription, TopicItem};
use tokio::sync::{oneshot, Semaphore};
use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Response, Status};

use super::proto::gateway_server::Gateway;
use super::proto::{CallReply, CallRequest, Encoding, Event, SubscribeRequest};
use super::{deadline, status};
use crate::call::{self, CallTarget};
use crate::error::ApiError;
use crate::ops;
use crate::server::State;
use crate::sse;
use crate::trace::RequestCtx;

/// Request metadata the call path reads, copied into an HTTP header map.
const FORWARDED: [&str; 3] = ["authorization", "traceparent", "x-request-id"];

/// The `Gateway` service over a gateway's shared state.
#[derive(Debug)]
pub(crate) struct GatewayService {
    pub(crate) state: web::Data<State>,
    /// The HTTP server's actix arbiter: a JWKS fetch runs there.
    pub(crate) arbiter: actix_rt::ArbiterHandle,
    /// `Call`s in flight (`[grpc] max_concurrency`).
    pub(crate) limiter: Arc<Semaphore>,
}

impl GatewayService {
    /// The caller's identity (`None` with auth off), checked as the HTTP
    /// gateway checks it. With a JWKS the check may fetch keys on actix's
    /// HTTP client, so it runs on the HTTP server's arbiter.
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Identity>, ApiError> {
        let Some(auth) = &self.state.auth else {
            return Ok(None);
        };
        if !auth.uses_jwks() {
            return auth.authenticate(headers).map(Some);
        }
        let (tx, rx) = oneshot::channel();
        let (state, headers) = (self.state.clone(), headers.clone());
        let sent = self.arbiter.spawn_fn(move || {
            actix_rt::spawn(async move {
                if let Some(auth) = &state.auth {
                    let _ = tx.send(auth.authenticate_async(&headers).await);
                }
            });
        });
        let gone = || ApiError::unavailable(ops::SHUTTING_DOWN);
        if !sent {
            return Err(gone());
        }
        rx.await.map_err(|_| gone())?.map(Some)
    }

    async fn serve_call(&self, req: Request<CallRequest>) -> Result<CallReply, Status> {
        let state = &self.state;
        let headers = headers_of(req.metadata());
        let ctx = RequestCtx::from_headers(&headers);
        let client_timeout = req
            .metadata()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(deadline::parse);
        let msg = req.into_inner();
        if let Some(e) = crate::call::not_member(&state.node) {
            let e = ApiError::from_call(&e, ctx.request_id());
            return Err(status::from_api(&e));
        }
        let Some(_call) = state.drain.enter() else {
            return Err(Status::unavailable(ops::SHUTTING_DOWN));
        };
        let identity = self
            .authenticate(&headers)
            .await
            .and_then(|id| {
                if let Some(id) = &id {
                    call::authorize(state, id, &msg.service, &msg.message)?;
                }
                Ok(id)
            })
            .map_err(|e| status::from_api(&e))?;
        let encoding = match Encoding::try_from(msg.encoding) {
            Ok(e) => e,
            Err(_) => {
                tracing::info!(
                    request_id = ctx.request_id(),
                    encoding = msg.encoding,
                    "gRPC call with an unknown encoding"
                );
                return Err(Status::invalid_argument(format!(
                    "unknown encoding {}",
                    msg.encoding
                )));
            }
        };
        let _permit = self
            .limiter
            .try_acquire()
            .map_err(|_| status::from_api(&ApiError::too_many_requests()))?;
        let timeout = deadline::call_timeout(client_timeout, state.call_timeout());
        if timeout.is_some_and(|t| t.is_zero()) {
            return Err(Status::deadline_exceeded(
                "the call's deadline had passed when it arrived",
            ));
        }
        let meta = call::call_metadata(&ctx, identity, &headers);
        let target = CallTarget {
            service: &msg.service,
            message: &msg.message,
            params: None,
        };
        let reply = match encoding {
            Encoding::Json => {
                // An empty payload is JSON's "nothing", as an empty HTTP body.
                let bytes: &[u8] = if msg.payload.is_empty() {
                    b"null"
                } else {
                    &msg.payload
                };
                call::run(state, target, JsonBody::Bytes(bytes), meta, timeout, &ctx).await
            }
            // The bytes as they came, decoded only by a node that runs the
            // service (this one, or the one they are forwarded to).
            Encoding::Bincode => {
                call::run_bincode(state, target, &msg.payload, meta, timeout, &ctx).await
            }
        }
        .map_err(|f| status::from_api(&f.into_api()))?;
        Ok(CallReply {
            payload: reply,
            encoding: encoding as i32,
        })
    }
}

#[tonic::async_trait]
impl Gateway for GatewayService {
    async fn call(&self, req: Request<CallRequest>) -> Result<Response<CallReply>, Status> {
        let result = self.serve_call(req).await;
        let code = result.as_ref().map_or_else(Status::code, |_| Code::Ok);
        self.state
            .metrics
            .observe_grpc("Call", status::code_name(code));
        result.map(Response::new)
    }

    type SubscribeStream = Pin<Box<dyn Stream<Item = Result<Event, Status>> + Send + 'static>>;

    async fn subscribe(
        &self,
        req: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let result = self.serve_subscribe(req).await;
        let code = result.as_ref().map_or_else(Status::code, |_| Code::Ok);
        self.state
            .metrics
            .observe_grpc("Subscribe", status::code_name(code));
        result.map(Response::new)
    }
}

impl GatewayService {
    /// A subscription on this gateway's node, bounded by the gateway's
    /// `sse_buffer`, after the checks `GET /v1/topics/{topic}` makes (the
    /// name, the token, the `@topics` rules).
    async fn serve_subscribe(
        &self,
        req: Request<SubscribeRequest>,
    ) -> Result<<Self as Gateway>::SubscribeStream, Status> {
        let state = &self.state;
        if state.drain.is_draining() {
            return Err(Status::unavailable(ops::SHUTTING_DOWN));
        }
        let headers = headers_of(req.metadata());
        let topic = req.into_inner().topic;
        sse::check_name(state, &topic).map_err(|e| status::from_api(&e))?;
        let identity = self
            .authenticate(&headers)
            .await
            .map_err(|e| status::from_api(&e))?;
        if let Some(id) = &identity {
            sse::check_policy(state, id, &topic).map_err(|e| status::from_api(&e))?;
        }
        let sub = state
            .node
            .subscribe_json(&topic, state.config.sse_buffer.max(1));
        tracing::debug!(topic, "gRPC topic subscriber connected");
        Ok(Box::pin(events(sub, topic, state.drain.clone())))
    }
}

/// A subscription's events as `Event`s: a `lagged` notice becomes the
/// `missed` count of the next event. The stream ends when the gateway
/// drains; when the client goes away tonic drops it, and with it the
/// subscription.
fn events(
    sub: JsonSubscription,
    topic: String,
    drain: Arc<crate::drain::Drain>,
) -> impl Stream<Item = Result<Event, Status>> + Send + 'static {
    futures_util::stream::unfold(
        (sub, topic, drain, 0u64),
        |(mut sub, topic, drain, mut missed)| async move {
            loop {
                let item = tokio::select! {
                    item = sub.next() => item,
                    () = drain.stopping() => return None,
                };
                match item {
                    TopicItem::Event(e) => {
                        let event = serde_json::to_vec(&e.body).map(|payload| Event {
                            topic: topic.clone(),
                            payload,
                            missed: std::mem::take(&mut missed),
                            message: e.message,
                        });
                        let Ok(event) = event else {
                            // A JSON value always serialises; counted as
                            // missed if it ever did not.
                            missed += 1;
                            continue;
                        };
                        return Some((Ok(event), (sub, topic, drain, missed)));
                    }
                    TopicItem::Lagged { missed: n } => missed += n,
                    _ => {}
                }
            }
        },
    )
}

/// The metadata the call path reads (token, trace, request id), as the
/// HTTP header map it takes. Binary (`-bin`) and non-ASCII values are left
/// out, as an HTTP client could not send them either.
fn headers_of(md: &MetadataMap) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for name in FORWARDED {
        let Some(value) = md.get(name).and_then(|v| v.to_str().ok()) else {
            continue;
        };
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_call_paths_metadata_is_forwarded() {
        let mut md = MetadataMap::new();
        md.insert("authorization", "Bearer abc".parse().unwrap());
        md.insert("traceparent", "00-1-2-01".parse().unwrap());
        md.insert("x-other", "zzz".parse().unwrap());
        let h = headers_of(&md);
        assert_eq!(h.get("authorization").unwrap(), "Bearer abc");
        assert_eq!(h.get("traceparent").unwrap(), "00-1-2-01");
        assert!(h.get("x-other").is_none());
        assert_eq!(crate::verifier::bearer_token(&h), Some("abc"));
    }
}
