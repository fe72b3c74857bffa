//! Request ids, trace context and the per-request span.
//!
//! The middleware here wraps every request: it picks the request id (the
//! caller's `x-request-id` when sane, else a fresh one), the trace id (from a
//! W3C `traceparent` header, else fresh) and a span id for the gateway's
//! hop, runs the request inside a `tracing` span carrying them, then sets
//! `x-request-id` on the answer, whatever it is, and records the request in
//! the metrics under its route pattern.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};
use msa_runtime::TraceContext;
use tracing::Instrument;

use crate::error::ApiError;
use crate::server::State;

/// The request id header, read and written.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest caller-chosen request id kept.
const MAX_REQUEST_ID: usize = 128;

/// What the middleware decided about a request, for the handlers.
#[derive(Debug, Clone)]
pub(crate) struct RequestCtx {
    pub(crate) request_id: String,
    pub(crate) trace: TraceContext,
}

impl RequestCtx {
    /// A fresh id and trace (when the middleware did not run).
    pub(crate) fn fresh() -> Self {
        Self {
            request_id: format!("{:032x}", fresh_u128()),
            trace: TraceContext {
                trace_id: fresh_u128(),
                parent_span_id: fresh_u64(),
            },
        }
    }
}

/// The route pattern a handler matched, for the span and the metrics.
#[derive(Debug, Clone)]
pub(crate) struct RouteLabel(pub(crate) std::sync::Arc<str>);

/// Label of requests that matched no route.
const UNMATCHED: &str = "unmatched";

/// The caller's request id if it is 1 to 128 visible ASCII characters.
fn sane_request_id(v: Option<&HeaderValue>) -> Option<String> {
    let b = v?.as_bytes();
    let ok = !b.is_empty() && b.len() <= MAX_REQUEST_ID && b.iter().all(|c| c.is_ascii_graphic());
    ok.then(|| String::from_utf8_lossy(b).into_owned())
}

/// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`; all-zero ids are invalid.
pub(crate) fn parse_traceparent(v: &str) -> Option<(u128, u64)> {
    let mut it = v.trim().split('-');
    let (version, trace, parent, flags) = (it.next()?, it.next()?, it.next()?, it.next()?);
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|c| c.is_ascii_hexdigit());
    if !hex(version, 2) || version == "ff" || !hex(trace, 32) || !hex(parent, 16) || !hex(flags, 2)
    {
        return None;
    }
    // Version 00 has exactly four fields; later versions may append more.
    if version == "00" && it.next().is_some() {
        return None;
    }
    let trace_id = u128::from_str_radix(trace, 16).ok()?;
    let parent_id = u64::from_str_radix(parent, 16).ok()?;
    (trace_id != 0 && parent_id != 0).then_some((trace_id, parent_id))
}

/// Random bytes from the OS, or a time-and-counter mix if it fails.
fn random<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    if getrandom::fill(&mut buf).is_err() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(1);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut x = nanos ^ COUNTER.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
        for b in buf.iter_mut() {
            x = msa_runtime::key_hash(&x.to_le_bytes());
            *b = x as u8;
        }
    }
    buf
}

fn fresh_u128() -> u128 {
    u128::from_le_bytes(random::<16>()).max(1)
}

fn fresh_u64() -> u64 {
    u64::from_le_bytes(random::<8>()).max(1)
}

/// The middleware; see the module docs.
pub(crate) async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let start = Instant::now();
    let request_id = sane_request_id(req.headers().get(&REQUEST_ID))
        .unwrap_or_else(|| format!("{:032x}", fresh_u128()));
    let trace_id = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_traceparent)
        .map_or_else(fresh_u128, |(t, _)| t);
    let span_id = fresh_u64();
    let method = req.method().clone();
    let span = tracing::info_span!(
        "request",
        method = %method,
        route = tracing::field::Empty,
        request_id = %request_id,
        trace_id = %format_args!("{trace_id:032x}"),
        span_id = %format_args!("{span_id:016x}"),
        status = tracing::field::Empty,
    );
    req.extensions_mut().insert(RequestCtx {
        request_id: request_id.clone(),
        trace: TraceContext {
            trace_id,
            parent_span_id: span_id,
        },
    });
    let state = req.app_data::<web::Data<State>>().cloned();
    let http_req = req.request().clone();
    let mut res = match next.call(req).instrument(span.clone()).await {
        Ok(res) => res.map_into_boxed_body(),
        Err(e) => {
            // Handlers answer every error themselves; this is a safety net.
            tracing::error!(parent: &span, error = %e, "unhandled error");
            ServiceResponse::new(http_req, ApiError::internal(&request_id).to_response())
        }
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    let status = res.status().as_u16();
    let route = res
        .request()
        .extensions()
        .get::<RouteLabel>()
        .map(|l| l.0.clone());
    let route = route.as_deref().unwrap_or(UNMATCHED);
    span.record("route", route);
    span.record("status", status);
    let elapsed = start.elapsed();
    if let Some(state) = state {
        state
            .metrics
            .observe_request(route, method.as_str(), status, elapsed);
    }
    tracing::debug!(parent: &span, elapsed_us = elapsed.as_micros() as u64, "request done");
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_kept_only_when_sane() {
        let v = |s: &str| HeaderValue::from_str(s).unwrap();
        assert_eq!(
            sane_request_id(Some(&v("abc-123"))).as_deref(),
            Some("abc-123")
        );
        assert_eq!(
            sane_request_id(Some(&v(&"x".repeat(128)))).map(|s| s.len()),
            Some(128)
        );
        assert!(sane_request_id(Some(&v(&"x".repeat(129)))).is_none());
        assert!(sane_request_id(Some(&v("a b"))).is_none());
        assert!(sane_request_id(Some(&v(""))).is_none());
        assert!(sane_request_id(Some(&HeaderValue::from_bytes(b"\xffab").unwrap())).is_none());
        assert!(sane_request_id(None).is_none());
    }

    #[test]
    fn traceparent_parses_only_when_valid() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            parse_traceparent(ok),
            Some((0x4bf92f3577b34da6a3ce929d0e0e4736, 0x00f067aa0ba902b7))
        );
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
        assert_ne!(fresh_u128(), fresh_u128());
    }
}
