//! Request ids, trace context and the per-request span.
//!
//! For every request the gateway picks the request id (the caller's
//! `x-request-id` when sane, else a fresh one), the trace id (from a W3C
//! `traceparent` header, else fresh) and a span id for the gateway's hop
//! ([`RequestCtx::from_headers`]); [`dispatch`](crate::dispatch) runs the
//! request inside a `tracing` span carrying them ([`request_span`]), sets
//! `x-request-id` on the answer, whatever it is, and records the request in
//! the metrics under its route pattern.
//!
//! This is on the path of every request, so it is kept cheap: fresh ids come
//! from a per-thread generator ([`crate::ids`]), not a syscall each; ids are
//! formatted into stack buffers, and a caller's request id is reused as the
//! header value it came in (no copy); the span is created once the route is
//! known, with all its fields at once, and costs next to nothing when no
//! subscriber wants `info` spans of this crate.

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::http::Method;
use msa_runtime::TraceContext;

use crate::ids;

/// The request id header, read and written.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The W3C trace context header.
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Longest caller-chosen request id kept.
const MAX_REQUEST_ID: usize = 128;

/// What the gateway decided about a request's ids.
#[derive(Debug, Clone)]
pub(crate) struct RequestCtx {
    /// The request id, as the `x-request-id` header value of the answer
    /// (visible ASCII only, so [`request_id`](Self::request_id) is exact).
    pub(crate) request_id: HeaderValue,
    /// The trace id, and the gateway's span id as the callee's parent.
    pub(crate) trace: TraceContext,
    /// The span id of the caller's `traceparent` (0 without one): the
    /// parent of the gateway's own hop span.
    pub(crate) caller_span_id: u64,
}

impl RequestCtx {
    /// The ids of a request with these headers: see the module docs.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
        let request_id = sane_request_id(headers.get(&REQUEST_ID))
            .unwrap_or_else(|| hex_header::<32>(ids::fresh_u128()));
        let (trace_id, caller_span_id) = headers
            .get(&TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_traceparent)
            .unwrap_or_else(|| (ids::fresh_u128(), 0));
        Self {
            request_id,
            trace: TraceContext {
                trace_id,
                parent_span_id: ids::fresh_u64(),
            },
            caller_span_id,
        }
    }

    /// The request id as text.
    pub(crate) fn request_id(&self) -> &str {
        // Only visible ASCII gets in (see `sane_request_id`), so this never
        // falls back.
        self.request_id.to_str().unwrap_or_default()
    }
}

/// The span of one request, with every field set at once.
pub(crate) fn request_span(method: &Method, route: &str, ctx: &RequestCtx) -> tracing::Span {
    tracing::info_span!(
        "request",
        method = %method,
        route = %route,
        request_id = %ctx.request_id(),
        trace_id = %format_args!("{:032x}", ctx.trace.trace_id),
        span_id = %format_args!("{:016x}", ctx.trace.parent_span_id),
    )
}

/// `v` as `N` hex digits in a header value.
fn hex_header<const N: usize>(v: u128) -> HeaderValue {
    let digits = ids::hex::<N>(v);
    // Hex digits are always a valid header value.
    HeaderValue::from_bytes(&digits).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// The caller's request id if it is 1 to 128 visible ASCII characters.
fn sane_request_id(v: Option<&HeaderValue>) -> Option<HeaderValue> {
    let v = v?;
    let b = v.as_bytes();
    let ok = !b.is_empty() && b.len() <= MAX_REQUEST_ID && b.iter().all(|c| c.is_ascii_graphic());
    ok.then(|| v.clone())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_kept_only_when_sane() {
        let v = |s: &str| HeaderValue::from_str(s).unwrap();
        assert_eq!(sane_request_id(Some(&v("abc-123"))), Some(v("abc-123")));
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
    }

    #[test]
    fn ids_come_from_headers_or_fresh() {
        let mut h = HeaderMap::new();
        let a = RequestCtx::from_headers(&h);
        let b = RequestCtx::from_headers(&h);
        assert_eq!(a.request_id().len(), 32);
        assert!(a.request_id().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.request_id(), b.request_id());
        assert_ne!(a.trace.trace_id, b.trace.trace_id);
        assert_ne!(a.trace.parent_span_id, 0);
        h.insert(REQUEST_ID, HeaderValue::from_static("my-id"));
        h.insert(
            TRACEPARENT,
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let c = RequestCtx::from_headers(&h);
        assert_eq!(c.request_id(), "my-id");
        assert_eq!(c.trace.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
        // The gateway's hop gets a span id of its own.
        assert_ne!(c.trace.parent_span_id, 0x00f067aa0ba902b7);
    }
}
