//! Per-call metadata: who calls, as part of which trace, and until when.
//!
//! msa owns the actix `Actor` around every service (see
//! [`ServiceActor`](crate::ServiceActor)), so the metadata travels inside the
//! envelope that carries the message and reaches the handler through
//! [`ServiceContext::metadata`](crate::ServiceContext::metadata). Nothing is
//! stored in thread-locals, so it survives hops across threads and, later,
//! across nodes. docs/metadata.md explains the choice.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// Who is calling: the authenticated subject and its roles.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    /// The subject (for a JWT, its `sub` claim).
    pub subject: String,
    /// The roles the caller holds.
    pub roles: Vec<String>,
}

impl Identity {
    /// Builds an identity from a subject and roles.
    ///
    /// # Examples
    /// ```
    /// let id = msa_runtime::Identity::new("alice", ["customer"]);
    /// assert!(id.has_role("customer"));
    /// ```
    pub fn new<I, R>(subject: impl Into<String>, roles: I) -> Self
    where
        I: IntoIterator<Item = R>,
        R: Into<String>,
    {
        Self {
            subject: subject.into(),
            roles: roles.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether the identity holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// W3C-style trace context: a 128-bit trace id and the caller's 64-bit span id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    /// The trace this call belongs to.
    pub trace_id: u128,
    /// The span of the caller.
    pub parent_span_id: u64,
}

/// Metadata that travels with one message to its handler.
///
/// Kept small (24 bytes) because it rides in every envelope: identity and
/// trace live behind one shared pointer that is absent for plain calls.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    extra: Option<Arc<Extra>>,
    /// Milliseconds since the process epoch (see `deadline.rs`); 0 = none.
    /// A plain `u64` keeps the metadata at 16 bytes in every envelope.
    deadline_ms: u64,
}

#[derive(Debug, Clone, Default)]
struct Extra {
    identity: Option<Identity>,
    trace: Option<TraceContext>,
    /// The caller's signed token (a JWT the gateway verified), so that a
    /// node serving the call can verify the identity itself.
    token: Option<Arc<str>>,
    /// The service whose handler made the call.
    caller_service: Option<Arc<str>>,
    /// Access rules apply even without an identity (an outside caller).
    checked: bool,
}

impl Metadata {
    /// Empty metadata: anonymous, untraced, no deadline.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only a deadline (the common case of a plain ask).
    #[inline]
    pub(crate) fn with_deadline_ms(deadline_ms: u64) -> Self {
        Self {
            extra: None,
            deadline_ms: deadline_ms.max(1),
        }
    }

    /// The deadline in coarse milliseconds since the process epoch.
    #[inline]
    pub(crate) fn deadline_ms(&self) -> Option<u64> {
        (self.deadline_ms != 0).then_some(self.deadline_ms)
    }

    /// Whether an identity or a trace travels with the call.
    #[inline]
    pub(crate) fn has_extra(&self) -> bool {
        self.extra.is_some()
    }

    #[inline]
    pub(crate) fn set_deadline_ms(&mut self, ms: u64) {
        self.deadline_ms = ms.max(1);
    }

    fn extra_mut(&mut self) -> &mut Extra {
        Arc::make_mut(self.extra.get_or_insert_with(Default::default))
    }

    /// Sets the caller's identity.
    pub fn with_identity(mut self, identity: Identity) -> Self {
        self.extra_mut().identity = Some(identity);
        self
    }

    /// Sets the caller's signed token (the bearer token the gateway
    /// verified). It travels with the call to other nodes, whose
    /// [`IdentityVerifier`](crate::access::IdentityVerifier) checks it: an
    /// identity that arrives without a token that verifies keeps its
    /// subject but none of its roles.
    pub fn with_token(mut self, token: impl Into<Arc<str>>) -> Self {
        self.extra_mut().token = Some(token.into());
        self
    }

    /// The caller's signed token, if any.
    pub fn token(&self) -> Option<&str> {
        self.extra.as_ref().and_then(|e| e.token.as_deref())
    }

    /// The service whose handler made this call (set by
    /// [`ServiceContext::propagate`](crate::ServiceContext::propagate); for
    /// a call from another node, only if that node hosts the service).
    pub fn caller_service(&self) -> Option<&str> {
        self.extra
            .as_ref()
            .and_then(|e| e.caller_service.as_deref())
    }

    /// Names the calling service (the runtime's to set: a handler's context,
    /// or remoting once it checked that the peer hosts it).
    pub(crate) fn with_caller_service(mut self, service: impl Into<Arc<str>>) -> Self {
        self.extra_mut().caller_service = Some(service.into());
        self
    }

    /// Marks the call as one from outside the process: the serving
    /// instance applies its access rules to it even when it carries no
    /// identity (an anonymous caller then reaches only open messages). The
    /// gateway marks every call it makes; calls from other nodes are always
    /// checked. A local call without an identity, a calling service or this
    /// mark is trusted (it is this process's own code).
    pub fn with_access_check(mut self) -> Self {
        self.extra_mut().checked = true;
        self
    }

    /// Whether the serving instance checks its access rules against this
    /// call: it carries an identity or a calling service, or was marked
    /// with [`with_access_check`](Self::with_access_check).
    #[inline]
    pub(crate) fn needs_access_check(&self) -> bool {
        self.extra
            .as_ref()
            .is_some_and(|e| e.checked || e.identity.is_some() || e.caller_service.is_some())
    }

    /// Sets the trace context.
    pub fn with_trace(mut self, trace: TraceContext) -> Self {
        self.extra_mut().trace = Some(trace);
        self
    }

    /// Sets an absolute deadline.
    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline_ms = crate::deadline::ms_since_epoch_ceil(deadline).max(1);
        self
    }

    /// The caller's identity, if any.
    pub fn identity(&self) -> Option<&Identity> {
        self.extra.as_ref().and_then(|e| e.identity.as_ref())
    }

    /// The trace context, if any.
    pub fn trace(&self) -> Option<TraceContext> {
        self.extra.as_ref().and_then(|e| e.trace)
    }

    /// The deadline by which the caller stops waiting, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline_ms()
            .map(|ms| crate::deadline::epoch() + Duration::from_millis(ms))
    }

    /// Time left before the deadline (`None` without a deadline, zero once passed).
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline()
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Metadata for a call made while handling this one: same identity
    /// (and token), trace and deadline, but not this call's calling service
    /// (it is not the caller of the next call). Inside a handler prefer
    /// [`ServiceContext::propagate`](crate::ServiceContext::propagate), which
    /// also names the handler's service as the calling one.
    pub fn propagate(&self) -> Self {
        let mut m = self.clone();
        if self.caller_service().is_some() {
            m.extra_mut().caller_service = None;
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_stays_small_and_keeps_what_it_is_given() {
        assert!(std::mem::size_of::<Metadata>() <= 16);
        let m = Metadata::new()
            .with_identity(Identity::new("bob", ["staff"]))
            .with_trace(TraceContext {
                trace_id: 1,
                parent_span_id: 2,
            });
        assert_eq!(m.identity().map(|i| i.subject.as_str()), Some("bob"));
        assert_eq!(m.trace().map(|t| t.parent_span_id), Some(2));
        assert!(m.deadline().is_none() && m.remaining().is_none());
    }
}
