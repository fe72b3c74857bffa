//! The wire form of a call's metadata, and the types the serving side's
//! futures share. A message type's codec functions are `message::WireCodec`;
//! how a local instance serves a type is the service layer's
//! (`service/serve.rs`).

use std::time::Duration;

use super::frame::WireError;
use crate::metadata::Metadata;

pub(crate) use super::transport::BoxFuture;

/// An encoded reply, or the remote failure.
pub(crate) type WireReply = Result<Vec<u8>, WireError>;

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
