//! Calls from other nodes, served here: what a connection resolves a
//! (service, message) pair to, once, and the one place the deadline of a
//! served call is computed.
//!
//! A connection's reader keeps an [`Inbound`] per route id
//! ([`InboundRoutes`](super::routes::InboundRoutes)): the service's entry
//! and the message type's wire functions, found by name the first time the
//! pair is used. Later calls decode the payload with those functions and
//! push the message into a local instance picked at that moment (by key
//! for a keyed service), so a restarted instance is found in its slot like
//! any local caller finds it. The resolution holds while the entry does:
//! an entry is replaced only when a service first known from other nodes
//! is spawned here, and then the pair is resolved again.

use std::sync::Arc;
use std::time::Duration;

use super::frame::WireError;
use super::wire::{BoxFuture, WireCodec, WireReply};
use crate::error::CallError;
use crate::metadata::Metadata;
use crate::node::NodeShared;
use crate::service::ServiceRef;

/// How much longer than the caller's timeout a served call may run, so
/// that a result that comes after it reaches the caller as a late
/// (counted) reply rather than racing the caller's own timeout.
pub(crate) const SERVE_SLACK: Duration = Duration::from_millis(250);

/// The deadline of a call served here.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServeDeadline {
    /// In coarse milliseconds since the process epoch (see `deadline.rs`).
    pub(crate) deadline_ms: u64,
    /// The time it stands for (what a timeout error reports).
    pub(crate) timeout: Duration,
}

impl ServeDeadline {
    /// The deadline of a call whose caller had `left_ms` milliseconds left
    /// when it sent it (the node's default timeout when it did not say):
    /// now, plus that, plus [`SERVE_SLACK`]. Computed once per call.
    pub(crate) fn new(node: &NodeShared, left_ms: Option<u64>) -> Self {
        let left = left_ms.map_or(node.default_timeout, Duration::from_millis);
        let timeout = left.saturating_add(SERVE_SLACK);
        Self {
            deadline_ms: node.deadlines.clock().after(timeout),
            timeout,
        }
    }
}

/// Serves an inbound ask on a resolved route: the future yields the
/// encoded reply.
pub(crate) type ServeAsk =
    fn(&Arc<Inbound>, &[u8], Metadata, ServeDeadline) -> Result<BoxFuture<WireReply>, WireError>;

/// Serves an inbound tell on a resolved route: `Ok(None)` once queued,
/// `Ok(Some(_))` when it waits for mailbox room (the future queues it).
pub(crate) type ServeTell = fn(
    &Arc<Inbound>,
    &[u8],
    Metadata,
) -> Result<Option<BoxFuture<Result<(), CallError>>>, WireError>;

/// A (service, message) pair resolved for calls from other nodes.
#[derive(Debug)]
pub(crate) struct Inbound {
    svc: ServiceRef,
    index: usize,
    codec: WireCodec,
}

impl Inbound {
    /// Finds the local service `service` and its message type `message`:
    /// never a remote instance (an inbound call is served here or refused).
    ///
    /// # Errors
    /// [`WireError::UnknownService`] or [`WireError::UnhandledMessage`].
    pub(crate) fn resolve(
        node: &Arc<NodeShared>,
        service: &str,
        message: &str,
    ) -> Result<Arc<Self>, WireError> {
        let entry = node
            .registry
            .get(service)
            .ok_or(WireError::UnknownService)?;
        let (index, codec) = entry
            .types
            .iter()
            .enumerate()
            .find_map(|(i, t)| t.wire.filter(|w| w.wire_name == message).map(|w| (i, w)))
            .ok_or_else(|| WireError::UnhandledMessage {
                message: message.to_string(),
            })?;
        Ok(Arc::new(Self {
            svc: ServiceRef::local_only(node.clone(), entry),
            index,
            codec,
        }))
    }

    /// Whether the resolution still holds (its entry was not replaced).
    pub(crate) fn is_current(&self) -> bool {
        self.svc.cached_entry().is_some_and(|e| !e.is_replaced())
    }

    /// The service, reaching local instances only.
    pub(crate) fn service(&self) -> &ServiceRef {
        &self.svc
    }

    /// The index of the message type in the service's entry.
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    /// The message type's wire functions.
    pub(crate) fn codec(&self) -> WireCodec {
        self.codec
    }

    /// Serves an ask: decodes `payload` and queues it on a local instance.
    ///
    /// # Errors
    /// [`WireError::Codec`] when the payload does not decode.
    pub(crate) fn serve_ask(
        self: &Arc<Self>,
        payload: &[u8],
        meta: Metadata,
        deadline: ServeDeadline,
    ) -> Result<BoxFuture<WireReply>, WireError> {
        (self.codec.serve_ask)(self, payload, meta, deadline)
    }

    /// Serves a tell: decodes `payload` and queues it on a local instance,
    /// or gives back the wait for room.
    ///
    /// # Errors
    /// [`WireError::Codec`] when the payload does not decode, or why no
    /// instance could take it.
    pub(crate) fn serve_tell(
        self: &Arc<Self>,
        payload: &[u8],
        meta: Metadata,
    ) -> Result<Option<BoxFuture<Result<(), CallError>>>, WireError> {
        (self.codec.serve_tell)(self, payload, meta)
    }
}

/// The resolution a route holds, made again when missing or stale.
///
/// # Errors
/// As [`Inbound::resolve`].
pub(crate) fn resolved<'a>(
    node: &Arc<NodeShared>,
    route: &'a mut super::routes::InboundRoute<Arc<Inbound>>,
) -> Result<&'a Arc<Inbound>, WireError> {
    let stale = route.resolved.as_ref().is_none_or(|i| !i.is_current());
    if stale {
        route.resolved = Some(Inbound::resolve(node, &route.service, &route.message)?);
    }
    route.resolved.as_ref().ok_or(WireError::UnknownService)
}
