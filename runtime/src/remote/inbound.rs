//! Calls from other nodes, served here: what a connection resolves a
//! (service, message) pair to, once, and the one place the deadline of a
//! served call is computed.
//!
//! Remoting does not know services: the node hands it a [`LocalNode`] (its
//! registry, its default timeout and clock, and the resolution of inbound
//! calls), and a resolved pair comes back as an [`InboundCall`] trait
//! object, implemented by the service layer.
//!
//! A connection's reader keeps an [`Inbound`] per route id
//! ([`InboundRoutes`](super::routes::InboundRoutes)): the service's entry
//! and the message type's serve functions, found by name the first time the
//! pair is used. Later calls decode the payload with those functions and
//! push the message into a local instance picked at that moment (by key
//! for a keyed service), so a restarted instance is found in its slot like
//! any local caller finds it. The resolution holds while the entry does:
//! an entry is replaced only when a service first known from other nodes
//! is spawned here, and then the pair is resolved again.

use std::sync::Arc;
use std::time::Duration;

use super::frame::WireError;
use super::wire::{BoxFuture, WireReply};
use crate::error::CallError;
use crate::json::JsonReply;
use crate::metadata::Metadata;
use crate::registry::Registry;

/// How much longer than the caller's timeout a served call may run, so
/// that a result that comes after it reaches the caller as a late
/// (counted) reply rather than racing the caller's own timeout.
pub(crate) const SERVE_SLACK: Duration = Duration::from_millis(250);

/// What remoting needs of the node it runs in (instead of the node itself).
pub(crate) trait LocalNode: Send + Sync + std::fmt::Debug {
    /// The node's registry.
    fn registry(&self) -> &Registry;
    /// The timeout of a call whose caller did not say.
    fn default_timeout(&self) -> Duration;
    /// The node's coarse deadline `d` from now, in milliseconds since the
    /// process epoch (see `deadline.rs`).
    fn deadline_after(&self, d: Duration) -> u64;
    /// What checks the tokens of identities that arrive from other nodes
    /// (`None`: no token verifies, so such identities carry no roles).
    fn identity_verifier(&self) -> Option<&dyn crate::access::IdentityVerifier>;
    /// Finds the local service `service` and its message type `message`:
    /// never a remote instance (an inbound call is served here or refused).
    ///
    /// # Errors
    /// [`WireError::UnknownService`] or [`WireError::UnhandledMessage`].
    fn resolve(self: Arc<Self>, service: &str, message: &str) -> Result<Arc<Inbound>, WireError>;
    /// Serves a forwarded JSON ask: decoded here, by the service's own
    /// registration, then called as any ask is.
    ///
    /// # Errors
    /// A [`WireError`] for the caller when the call cannot be made.
    fn serve_json(
        self: Arc<Self>,
        service: &str,
        message: &str,
        meta: Metadata,
        body: &[u8],
        timeout: Duration,
    ) -> Result<JsonReply, WireError>;
    /// Serves a forwarded bincode ask (the message's bincode bytes named by
    /// wire name): decoded here, called as any ask is, the reply encoded
    /// with bincode.
    ///
    /// # Errors
    /// A [`WireError`] for the caller when the call cannot be made.
    fn serve_bincode(
        self: Arc<Self>,
        service: &str,
        message: &str,
        meta: Metadata,
        body: &[u8],
        timeout: Duration,
    ) -> Result<JsonReply, WireError>;
}

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
    pub(crate) fn new(node: &dyn LocalNode, left_ms: Option<u64>) -> Self {
        let left = left_ms.map_or(node.default_timeout(), Duration::from_millis);
        let timeout = left.saturating_add(SERVE_SLACK);
        Self {
            deadline_ms: node.deadline_after(timeout),
            timeout,
        }
    }
}

/// A (service, message) pair resolved for calls from other nodes.
pub(crate) trait InboundCall: Send + Sync + std::fmt::Debug {
    /// Whether the resolution still holds (its entry was not replaced).
    fn is_current(&self) -> bool;
    /// Serves an ask: decodes `payload` and queues it on a local instance;
    /// the future yields the encoded reply.
    ///
    /// # Errors
    /// [`WireError::Codec`] when the payload does not decode.
    fn ask(
        self: Arc<Self>,
        payload: &[u8],
        meta: Metadata,
        deadline: ServeDeadline,
    ) -> Result<BoxFuture<WireReply>, WireError>;
    /// Serves a tell: decodes `payload` and queues it on a local instance
    /// (`Ok(None)`), or gives back the wait for mailbox room (`Ok(Some(_))`).
    ///
    /// # Errors
    /// [`WireError::Codec`] when the payload does not decode, or why no
    /// instance could take it.
    fn tell(
        self: Arc<Self>,
        payload: &[u8],
        meta: Metadata,
    ) -> Result<Option<BoxFuture<Result<(), CallError>>>, WireError>;
    /// Serves a run of plain tells: takes at least its first tell, and as
    /// many more as one local instance has room for, queued as one batch
    /// (`Ok(None)`), or gives back the wait for room (`Ok(Some(_))`).
    ///
    /// # Errors
    /// As [`InboundCall::tell`], for the first tell (a later one that does
    /// not decode is dropped and logged).
    fn tell_run(
        self: Arc<Self>,
        run: &mut dyn TellRun,
    ) -> Result<Option<BoxFuture<Result<(), CallError>>>, WireError>;
}

/// A run of plain tells (no identity, trace or deadline) to one route, as
/// a connection's reader finds them back to back in its read buffer.
pub(crate) trait TellRun {
    /// The payload of the run's next tell (taken from the buffer), or
    /// `None` at the run's end.
    fn next_payload(&mut self) -> Option<&[u8]>;
}

/// A resolved pair as a connection holds it.
pub(crate) type Inbound = dyn InboundCall;

impl dyn InboundCall {
    /// [`InboundCall::ask`] on a shared resolution.
    ///
    /// # Errors
    /// As [`InboundCall::ask`].
    pub(crate) fn serve_ask(
        self: &Arc<Self>,
        payload: &[u8],
        meta: Metadata,
        deadline: ServeDeadline,
    ) -> Result<BoxFuture<WireReply>, WireError> {
        self.clone().ask(payload, meta, deadline)
    }

    /// [`InboundCall::tell`] on a shared resolution.
    ///
    /// # Errors
    /// As [`InboundCall::tell`].
    pub(crate) fn serve_tell(
        self: &Arc<Self>,
        payload: &[u8],
        meta: Metadata,
    ) -> Result<Option<BoxFuture<Result<(), CallError>>>, WireError> {
        self.clone().tell(payload, meta)
    }
}

/// The resolution a route holds, made again when missing or stale.
///
/// # Errors
/// As [`LocalNode::resolve`].
pub(crate) fn resolved<'a>(
    node: &Arc<dyn LocalNode>,
    route: &'a mut super::routes::InboundRoute<Arc<Inbound>>,
) -> Result<&'a Arc<Inbound>, WireError> {
    let stale = route.resolved.as_ref().is_none_or(|i| !i.is_current());
    if stale {
        route.resolved = Some(node.clone().resolve(&route.service, &route.message)?);
    }
    route.resolved.as_ref().ok_or(WireError::UnknownService)
}
