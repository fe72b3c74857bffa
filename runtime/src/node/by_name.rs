//! What a call by a message's wire name shares whatever the encoding of its
//! payload ([`Node::call_json`], [`Node::call_bincode`]): finding the
//! service, and why nobody served the call when neither an instance here
//! nor a forward to another node did.

use std::sync::Arc;

use super::Node;
use crate::error::CallError;
use crate::json::JsonReply;
use crate::registry::ServiceEntry;

impl Node {
    /// Why `service` cannot be called from here, when reachability or
    /// missing tables explain it (see `Remoting::why_missing`).
    fn why_missing(&self, service: &str, pending: bool) -> Option<CallError> {
        self.shared()
            .remote
            .as_ref()
            .and_then(|r| r.why_missing(service, pending))
    }

    /// The entry of `service`, or the error its call fails with: not
    /// routable because its nodes are unreachable from here or some
    /// members' tables have not arrived yet, else unknown.
    pub(super) fn entry_by_name(&self, service: &str) -> Result<Arc<ServiceEntry>, CallError> {
        self.shared().registry.get(service).ok_or_else(|| {
            self.why_missing(service, true)
                .unwrap_or_else(|| CallError::UnknownService {
                    service: service.to_string(),
                })
        })
    }

    /// Why a call of `message` to `service` (its `entry`) was served
    /// neither here nor by a forward: reachability or missing tables when
    /// no instance is left here, else a message this node knows by name is
    /// simply not handled by the service. `None`: the name is unknown.
    pub(super) fn unserved(
        &self,
        service: &str,
        message: &str,
        entry: &ServiceEntry,
    ) -> Option<CallError> {
        if entry.live_instances().is_empty() {
            if let Some(err) = self.why_missing(service, entry.remote_instances().is_empty()) {
                return Some(err);
            }
        }
        let known = self
            .shared()
            .registry
            .codec_by_name(message)
            .or_else(|| crate::message::declared::by_name(message))?;
        Some(CallError::UnhandledMessage {
            service: service.to_string(),
            message: known.type_name,
        })
    }
}

/// A reply that fails with `err` when awaited: how a call by name reports
/// a [`CallError`] (its own errors are for the payload).
pub(super) fn failed(err: CallError) -> JsonReply {
    Box::pin(async move { Err(err) })
}
