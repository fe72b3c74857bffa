//! Mapping call failures to [`CallError`]: no instance, an unhandled
//! message type, a timeout, a handler's failure, a closed mailbox.

use std::sync::atomic::Ordering;
use std::time::Duration;

use actix::{MailboxError, Message};

use super::ServiceRef;
use crate::error::CallError;
use crate::service::reply::HandlerFailure;

impl ServiceRef {
    /// No instance to call. When the service's only instances run on
    /// members this node cannot reach, `Unreachable { node }` says so;
    /// while a connected member's table is being fetched again, the
    /// retryable `TablesPending` (its instances may be in it: just after
    /// this node is admitted, or after a member was unreachable for a
    /// moment; a CI run of 2026-12-06 saw a joining node's call get
    /// `NoInstance` in that window).
    #[cold]
    pub(super) fn no_instance(&self) -> CallError {
        if let Some(e) = self
            .node
            .remote
            .as_ref()
            .and_then(|r| r.why_no_instance(&self.name))
        {
            return e;
        }
        CallError::NoInstance {
            service: self.name.to_string(),
        }
    }

    /// No service of this name is known here: `Unreachable` when it ran on a
    /// member this node cannot reach, `TablesPending` while some members'
    /// tables have not arrived, else `UnknownService`.
    #[cold]
    pub(super) fn unknown_service(&self) -> CallError {
        if let Some(e) = self
            .node
            .remote
            .as_ref()
            .and_then(|r| r.why_missing(&self.name, true))
        {
            return e;
        }
        CallError::UnknownService {
            service: self.name.to_string(),
        }
    }

    pub(super) fn unhandled<M>(&self) -> CallError {
        CallError::UnhandledMessage {
            service: self.name.to_string(),
            message: std::any::type_name::<M>(),
        }
    }

    #[cold]
    pub(super) fn timed_out(&self, timeout: Duration) -> CallError {
        CallError::Timeout {
            service: self.name.to_string(),
            after: timeout,
        }
    }

    /// The caller's view of a handler's reply.
    #[inline(always)]
    pub(super) fn map_reply<M: Message>(
        &self,
        r: Result<M::Result, HandlerFailure>,
        timeout: Duration,
    ) -> Result<M::Result, CallError> {
        match r {
            Ok(v) => Ok(v),
            Err(f) => Err(self.map_failure(f, timeout)),
        }
    }

    #[cold]
    fn map_failure(&self, f: HandlerFailure, timeout: Duration) -> CallError {
        match f {
            HandlerFailure::Panicked(message) => CallError::HandlerPanicked {
                service: self.name.to_string(),
                message,
            },
            HandlerFailure::Expired => CallError::Timeout {
                service: self.name.to_string(),
                after: timeout,
            },
            HandlerFailure::Denied(reason) => CallError::PermissionDenied {
                service: self.name.to_string(),
                reason,
            },
        }
    }

    /// The instance's mailbox closed under the call.
    pub(super) fn map_closed(&self) -> CallError {
        if self.node.closing.load(Ordering::Relaxed) {
            CallError::ShuttingDown
        } else {
            CallError::InstanceDied {
                service: self.name.to_string(),
            }
        }
    }

    /// An actix request's failure; `timeout` is the one that applied to the call.
    pub(super) fn map_mailbox_error(&self, e: MailboxError, timeout: Duration) -> CallError {
        match e {
            MailboxError::Closed => self.map_closed(),
            MailboxError::Timeout => self.timed_out(timeout),
        }
    }
}
