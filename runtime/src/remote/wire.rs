//! Per-message-type wire functions: how a `RemoteMessage` is encoded for a
//! remote instance, how its result comes back, and how an inbound frame is
//! served by a local instance. Registered by `ServiceSpec::handles::<M>()`
//! (and `Node::register_message::<M>()` for types a node only sends).

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use super::frame::WireError;
use super::inbound::{Inbound, ServeAsk, ServeDeadline, ServeTell};
use crate::error::CallError;
use crate::message::{codec, CodecError, RemoteMessage};
use crate::metadata::Metadata;

pub(crate) use super::transport::BoxFuture;

/// A decoded result, type-erased.
pub(crate) type AnyResult = Result<Box<dyn Any + Send>, CodecError>;
/// An encoded reply, or the remote failure.
pub(crate) type WireReply = Result<Vec<u8>, WireError>;

/// The wire functions of one message type (plain function pointers, so the
/// table is `Copy` and costs nothing on the local path).
#[derive(Clone, Copy)]
pub(crate) struct WireCodec {
    pub(crate) wire_name: &'static str,
    pub(crate) type_name: &'static str,
    /// Encodes a `&M` (given as `&dyn Any`).
    pub(crate) encode: fn(&dyn Any) -> Result<Vec<u8>, CodecError>,
    /// Decodes an `M::Result`, boxed.
    pub(crate) decode_result: fn(&[u8]) -> AnyResult,
    /// Serves an inbound ask on a local instance; the future yields the encoded result.
    pub(crate) serve_ask: ServeAsk,
    /// Serves an inbound tell on a local instance, within its mailbox's capacity.
    pub(crate) serve_tell: ServeTell,
    /// The routing key of a keyed message.
    pub(crate) key: Option<fn(&dyn Any) -> u64>,
    /// Serves a JSON call (the gateway's way in).
    pub(crate) serve_json: crate::json::ServeJson,
    /// The JSON shape of a request, if the type describes itself.
    pub(crate) schema: fn() -> Option<serde_json::Value>,
    /// Whether the message and its result survive bincode (checked at spawn).
    pub(crate) wire_safe: fn() -> Result<(), String>,
}

impl std::fmt::Debug for WireCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireCodec")
            .field("wire_name", &self.wire_name)
            .field("type_name", &self.type_name)
            .finish()
    }
}

fn encode<M: RemoteMessage>(m: &dyn Any) -> Result<Vec<u8>, CodecError> {
    let m = m
        .downcast_ref::<M>()
        .ok_or_else(|| CodecError::Encode(format!("not a {}", std::any::type_name::<M>())))?;
    codec::encode(m)
}

fn decode_result<M: RemoteMessage>(b: &[u8]) -> Result<Box<dyn Any + Send>, CodecError> {
    Ok(Box::new(codec::decode::<M::Result>(b)?))
}

fn decode<M: RemoteMessage>(bytes: &[u8]) -> Result<M, WireError> {
    codec::decode(bytes).map_err(|e| WireError::Codec {
        reason: e.to_string(),
    })
}

fn serve_ask<M: RemoteMessage>(
    inbound: &Arc<Inbound>,
    bytes: &[u8],
    meta: Metadata,
    deadline: ServeDeadline,
) -> Result<BoxFuture<Result<Vec<u8>, WireError>>, WireError> {
    let msg: M = decode(bytes)?;
    let inbound = inbound.clone();
    Ok(Box::pin(async move {
        let started = std::time::Instant::now();
        let svc = inbound.service();
        let r = svc
            .ask_inbound(
                inbound.index(),
                msg,
                meta,
                deadline.deadline_ms,
                deadline.timeout,
            )
            .await;
        svc.record_ask_latency(started.elapsed());
        match r {
            Ok(v) => codec::encode(&v).map_err(|e| WireError::Codec {
                reason: e.to_string(),
            }),
            Err(e) => Err(WireError::from_call(&e)),
        }
    }))
}

fn serve_tell<M: RemoteMessage>(
    inbound: &Arc<Inbound>,
    bytes: &[u8],
    meta: Metadata,
) -> Result<Option<BoxFuture<Result<(), CallError>>>, WireError> {
    let msg: M = decode(bytes)?;
    match inbound.service().tell_inbound(inbound.index(), msg, meta) {
        Ok(None) => Ok(None),
        Ok(Some(full)) => {
            let inbound = inbound.clone();
            Ok(Some(Box::pin(async move {
                inbound.service().wait_tell(full).await
            })))
        }
        Err(e) => Err(WireError::from_call(&e)),
    }
}

fn wire_safe<M: RemoteMessage>() -> Result<(), String> {
    use crate::message::wire_safe::check;
    check::<M>().map_err(|e| format!("the message: {e}"))?;
    check::<M::Result>().map_err(|e| format!("its result: {e}"))
}

/// The wire functions of `M`.
pub(crate) fn wire_codec<M: RemoteMessage>() -> WireCodec {
    WireCodec {
        wire_name: M::NAME,
        type_name: std::any::type_name::<M>(),
        encode: encode::<M>,
        decode_result: decode_result::<M>,
        serve_ask: serve_ask::<M>,
        serve_tell: serve_tell::<M>,
        key: None,
        serve_json: crate::json::serve_json::<M>,
        schema: M::json_schema,
        wire_safe: wire_safe::<M>,
    }
}

/// Conversions between [`Metadata`] and its wire form.
pub(crate) trait WireMetaExt {
    /// The identity and trace; the deadline is the serving side's to set
    /// ([`ServeDeadline`]), from `timeout_ms`.
    fn into_metadata(self) -> Metadata;
}

impl WireMetaExt for super::frame::WireMeta {
    fn into_metadata(self) -> Metadata {
        let mut m = Metadata::new();
        if let Some(subject) = self.subject {
            m = m.with_identity(crate::Identity {
                subject,
                roles: self.roles,
            });
        }
        if let Some((trace_id, parent_span_id)) = self.trace {
            m = m.with_trace(crate::TraceContext {
                trace_id,
                parent_span_id,
            });
        }
        m
    }
}

/// The wire form of `meta`, with the time left before `timeout` runs out.
pub(crate) fn wire_meta(meta: &Metadata, timeout: Duration) -> super::frame::WireMeta {
    let left = meta.remaining().map_or(timeout, |r| r.min(timeout));
    super::frame::WireMeta {
        subject: meta.identity().map(|i| i.subject.clone()),
        roles: meta.identity().map(|i| i.roles.clone()).unwrap_or_default(),
        trace: meta.trace().map(|t| (t.trace_id, t.parent_span_id)),
        timeout_ms: Some(u64::try_from(left.as_millis()).unwrap_or(u64::MAX)),
    }
}

/// The wire form of a tell's metadata: the deadline only if one was set.
pub(crate) fn wire_meta_tell(meta: &Metadata) -> super::frame::WireMeta {
    super::frame::WireMeta {
        subject: meta.identity().map(|i| i.subject.clone()),
        roles: meta.identity().map(|i| i.roles.clone()).unwrap_or_default(),
        trace: meta.trace().map(|t| (t.trace_id, t.parent_span_id)),
        timeout_ms: meta
            .remaining()
            .map(|r| u64::try_from(r.as_millis()).unwrap_or(u64::MAX)),
    }
}
