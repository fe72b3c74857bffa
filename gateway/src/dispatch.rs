//! The one actix-web handler: picks the request's ids, matches the route,
//! runs its target inside the request's span, then stamps `x-request-id` on
//! the answer and records the request in the metrics.
//!
//! This used to be an actix-web middleware around the handler; the gateway
//! has a single handler, so doing it here saves the middleware's boxed
//! future, request extensions and service plumbing on every request while
//! covering exactly the same requests (every request reaches this handler:
//! its extractors cannot fail).

use std::time::{Duration, Instant};

use actix_web::http::header::{ACCESS_CONTROL_EXPOSE_HEADERS, CONTENT_LENGTH, ORIGIN};
use actix_web::http::{StatusCode, Version};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt as _;
use tracing::Instrument;

use crate::body::HoldPayload;
use crate::call::{self, CallTarget};
use crate::error::ApiError;
use crate::ops;
use crate::routes::{Match, Target};
use crate::server::State;
use crate::trace::{self, RequestCtx, REQUEST_ID};

/// Label of requests that matched no route.
const UNMATCHED: &str = "unmatched";

/// Most of a request body the gateway reads and discards before an early
/// refusal over HTTP/2 (see [`drain_small_body`]).
const DRAIN_MAX_BYTES: usize = 64 * 1024;
/// Longest it waits for that body (or `body_timeout_ms`, if shorter).
const DRAIN_MAX_TIME: Duration = Duration::from_secs(2);

/// Answers every request (actix-web's default service).
pub(crate) async fn dispatch(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<State>,
) -> HttpResponse {
    let start = Instant::now();
    let ctx = RequestCtx::from_headers(req.headers());
    let found = state.router.find(req.method(), req.path());
    let route = match &found {
        Match::Found { route, .. } => &route.label,
        _ => UNMATCHED,
    };
    let hop = call_names(&found);
    let started_at = std::time::SystemTime::now();
    let span = trace::request_span(req.method(), route, &ctx);
    let result = match check_head(&state, &req) {
        Ok(()) => {
            serve(&state, &req, &mut payload, &ctx, found)
                .instrument(span.clone())
                .await
        }
        Err(e) => Err(e),
    };
    let mut res = result.unwrap_or_else(|e| e.to_response());
    if req.version() == Version::HTTP_2 && refused_before_the_body(res.status()) {
        drain_small_body(req.headers(), &mut payload, state.body_timeout()).await;
    }
    res.headers_mut().insert(REQUEST_ID, ctx.request_id.clone());
    if let Some(expose) = state
        .cors
        .as_ref()
        .and_then(|c| c.expose_headers(req.headers().get(ORIGIN)))
    {
        res.headers_mut()
            .insert(ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
    }
    let status = res.status().as_u16();
    let elapsed = start.elapsed();
    if let Some((service, message)) = hop {
        record_hop(&state, &ctx, service, message, started_at, elapsed, status);
    }
    state
        .metrics
        .observe_request(route, req.method().as_str(), status, elapsed);
    tracing::debug!(
        parent: &span,
        status,
        elapsed_us = elapsed.as_micros() as u64,
        "request done"
    );
    // See `body`: an unfinished body closes the connection instead of being drained.
    HoldPayload::wrap(res, payload)
}

/// The service and message a route calls (`None` for the gateway's own
/// endpoints).
fn call_names(found: &Match<'_, '_>) -> Option<(String, String)> {
    let Match::Found { route, params } = found else {
        return None;
    };
    match &route.target {
        Target::Generic => match params.as_slice() {
            [(_, s), (_, m)] => Some((s.to_string(), m.to_string())),
            _ => None,
        },
        Target::Configured { service, message } => Some((service.to_string(), message.to_string())),
        _ => None,
    }
}

/// Records the gateway's hop in the node's span ring (docs/live-view.md):
/// its span id is the one the call carried as its parent, its parent the
/// caller's `traceparent` span (if any), its outcome from the status.
fn record_hop(
    state: &State,
    ctx: &RequestCtx,
    service: String,
    message: String,
    started_at: std::time::SystemTime,
    elapsed: std::time::Duration,
    status: u16,
) {
    use msa_runtime::live::{unix_us, SpanKind, SpanRecord};
    let span = SpanRecord::new(
        SpanKind::Gateway,
        ctx.trace.trace_id,
        ctx.caller_span_id,
        service,
        message,
    )
    .with_span_id(ctx.trace.parent_span_id)
    .with_start_unix_us(unix_us(started_at))
    .with_duration_us(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX))
    .with_outcome(SpanRecord::outcome_for_http_status(status));
    state.node.record_span(span);
}

/// Refuses a request whose headers add up to more than `max_header_bytes`
/// (431), counted and logged; actix-http has already refused heads over its
/// own fixed bounds (128 KiB, 96 headers).
fn check_head(state: &State, req: &HttpRequest) -> Result<(), ApiError> {
    let limit = state.config.max_header_bytes;
    let size = header_bytes(req.headers());
    if size > limit {
        state.metrics.count_refused("headers_too_large");
        tracing::info!(size, limit, "request headers too large");
        return Err(ApiError::headers_too_large(limit));
    }
    Ok(())
}

/// The size of `headers` as sent: `name: value\r\n` for each.
fn header_bytes(headers: &actix_web::http::header::HeaderMap) -> usize {
    headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum()
}

/// Runs the matched route's target.
async fn serve(
    state: &State,
    req: &HttpRequest,
    payload: &mut web::Payload,
    ctx: &RequestCtx,
    found: Match<'_, '_>,
) -> Result<HttpResponse, ApiError> {
    match found {
        Match::NotFound => Err(ApiError::not_found("no such route")),
        Match::MethodNotAllowed { allow } => Err(ApiError::method_not_allowed(allow)),
        Match::Found { route, params } => match &route.target {
            Target::Healthz => Ok(ops::healthz()),
            Target::Readyz => Ok(ops::readyz(&state.node, draining(state))),
            Target::Metrics => ops::metrics(state, req).await,
            Target::Cluster => ops::cluster(state, req).await,
            Target::OpenApi => crate::openapi::openapi(state, req).await,
            Target::Ui(asset) => Ok(asset.response()),
            Target::LiveSnapshot => {
                crate::live::snapshot(&state.live, state.auth.as_ref(), req).await
            }
            Target::LiveStream => {
                crate::live::stream(
                    &state.live,
                    Some(state.drain.clone()),
                    state.auth.as_ref(),
                    req,
                )
                .await
            }
            Target::Topic => {
                let topic = match params.as_slice() {
                    [(_, t)] => &**t,
                    _ => "",
                };
                crate::sse::subscribe(state, req, topic).await
            }
            Target::Generic => {
                let Some(_call) = state.drain.enter() else {
                    return Err(ApiError::unavailable(ops::SHUTTING_DOWN));
                };
                let (service, message) = match params.as_slice() {
                    [(_, s), (_, m)] => (&**s, &**m),
                    _ => ("", ""),
                };
                let target = CallTarget {
                    service,
                    message,
                    params: None,
                };
                call::call(state, req, payload, ctx, route, target).await
            }
            Target::Configured { service, message } => {
                let Some(_call) = state.drain.enter() else {
                    return Err(ApiError::unavailable(ops::SHUTTING_DOWN));
                };
                let target = CallTarget {
                    service,
                    message,
                    params: Some(&params),
                };
                call::call(state, req, payload, ctx, route, target).await
            }
        },
    }
}

/// `/readyz`'s extra reason while the gateway drains.
fn draining(state: &State) -> &'static [&'static str] {
    if state.drain.is_draining() {
        &[ops::SHUTTING_DOWN]
    } else {
        &[]
    }
}

/// Answers given before the request's body was read: the token, the
/// policy, the route or the method refused it.
fn refused_before_the_body(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::UNAUTHORIZED
            | StatusCode::FORBIDDEN
            | StatusCode::NOT_FOUND
            | StatusCode::METHOD_NOT_ALLOWED
    )
}

/// Reads and discards what is left of a small request body, at most
/// [`DRAIN_MAX_BYTES`] within [`DRAIN_MAX_TIME`] (or `body_timeout`).
///
/// Over HTTP/2 a stream whose body is left unread when the answer is
/// complete is reset with `NO_ERROR` (h2, as RFC 9113 section 8.1 allows).
/// curl 7.88 fails on that reset while it is still sending its body (exit
/// 52 or 92, the answer never shown), which is what a client whose body
/// comes a moment after its headers meets when the refusal is quicker
/// (docs/security.md, "Known issues"). Reading a small body first lets the
/// stream end cleanly. A body declared larger, or not done within the
/// bound, is left as before (the stream is reset): an unauthenticated
/// caller can make a stream wait at most this long for its refusal, and
/// it holds no concurrency permit meanwhile.
async fn drain_small_body(
    headers: &actix_web::http::header::HeaderMap,
    payload: &mut web::Payload,
    body_timeout: Duration,
) {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_MAX_BYTES as u64) {
        return;
    }
    let drain = async {
        let mut seen = 0usize;
        while let Some(Ok(chunk)) = payload.next().await {
            seen = seen.saturating_add(chunk.len());
            if seen > DRAIN_MAX_BYTES {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_MAX_TIME.min(body_timeout), drain).await;
}
