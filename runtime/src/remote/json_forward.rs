//! JSON and bincode calls forwarded to a node that hosts the service.
//!
//! A node that runs no instance of a service cannot decode a JSON body (or
//! a message's bincode bytes named by wire name) for it: it may not even
//! link the message's Rust type (a gateway built from another binary). So
//! it does not try: it sends the payload as it came to a node whose service
//! table lists the message (`Frame::AskJson`, `Frame::AskBincode`), and
//! that node decodes it with its own registration, makes the call (routing
//! it on by key if the service is keyed), and answers in the same encoding.
//! Decoding errors come back as [`CallError::Json`] or
//! [`CallError::Bincode`], so a caller learns the same 400/404 whichever
//! node decoded.

use std::sync::Arc;
use std::time::Duration;

use super::frame::{Frame, WireError, WireMeta};
use super::remoting::Remoting;
use super::wire::wire_meta;
use super::wire_error::CallSite;
use crate::error::{CallError, JsonError};
use crate::json::{JsonBody, JsonReply};
use crate::metadata::Metadata;
use crate::registry::ServiceEntry;

/// Sends a JSON call to a remote instance of `entry` that handles
/// `message`; `None` when no remote instance lists it.
pub(crate) fn forward(
    remote: Option<&Arc<Remoting>>,
    entry: &ServiceEntry,
    message: &str,
    body: JsonBody<'_>,
    meta: &Metadata,
    timeout: Duration,
) -> Option<Result<JsonReply, JsonError>> {
    let body = match body {
        JsonBody::Bytes(b) => b.to_vec(),
        JsonBody::Value(v) => match serde_json::to_vec(&v) {
            Ok(b) => b,
            Err(e) => {
                return Some(Err(JsonError::MalformedJson {
                    reason: e.to_string(),
                }))
            }
        },
    };
    let call = Forwarded {
        message,
        meta,
        timeout,
        errors: WireError::into_json_call_error,
    };
    call.send(remote, entry, |id, service, message, meta| Frame::AskJson {
        id,
        service,
        message,
        meta,
        body,
    })
    .map(Ok)
}

/// Sends a bincode call (the message's bincode bytes, named by its wire
/// name) to a remote instance of `entry` that handles `message`; `None`
/// when no remote instance lists it. The future yields the reply's bincode
/// bytes.
pub(crate) fn forward_bincode(
    remote: Option<&Arc<Remoting>>,
    entry: &ServiceEntry,
    message: &str,
    body: &[u8],
    meta: &Metadata,
    timeout: Duration,
) -> Option<JsonReply> {
    let call = Forwarded {
        message,
        meta,
        timeout,
        errors: WireError::into_bincode_call_error,
    };
    call.send(remote, entry, |id, service, message, meta| {
        Frame::AskBincode {
            id,
            service,
            message,
            meta,
            body: body.to_vec(),
        }
    })
}

/// One forwarded call: what it asks, and how a failure that comes back
/// becomes the caller's error.
struct Forwarded<'a> {
    message: &'a str,
    meta: &'a Metadata,
    timeout: Duration,
    errors: fn(WireError, &CallSite<'_>, &str) -> CallError,
}

impl Forwarded<'_> {
    /// Sends the frame `make` builds (from the ask's id, the service, the
    /// message and the metadata) to a node that lists the message, and
    /// awaits its answer.
    fn send(
        self,
        remote: Option<&Arc<Remoting>>,
        entry: &ServiceEntry,
        make: impl FnOnce(u64, String, String, WireMeta) -> Frame,
    ) -> Option<JsonReply> {
        let Self {
            message,
            meta,
            timeout,
            errors,
        } = self;
        let target = entry.pick_remote(message, None)?;
        let service = entry.name().to_string();
        // The current connection to that node (a retired duplicate must not
        // carry new calls).
        let peer = remote
            .and_then(|r| r.peer(target.peer.node_name()))
            .filter(|p| !p.is_down())
            .or_else(|| super::peer::Peer::of(&target.peer));
        let Some(peer) = peer else {
            let node = target.peer.node_name().to_string();
            return Some(Box::pin(async move { Err(CallError::NodeDown { node }) }));
        };
        let asked = peer.ask(|id| {
            make(
                id,
                service.clone(),
                message.to_string(),
                wire_meta(meta, timeout),
            )
        });
        let node_name = peer.info.name.clone();
        let message = message.to_string();
        Some(Box::pin(async move {
            let (id, rx) = asked?;
            // Cancels the pending entry however the wait ends.
            let _forget = Forget { peer: &peer, id };
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(Ok(reply))) => Ok(reply),
                Ok(Ok(Err(wire))) => {
                    let site = CallSite {
                        service: &service,
                        message: "(forwarded)",
                        node: &node_name,
                        timeout,
                    };
                    Err(errors(wire, &site, &message))
                }
                Ok(Err(_closed)) => Err(CallError::NodeDown { node: node_name }),
                Err(_elapsed) => Err(CallError::Timeout {
                    service,
                    after: timeout,
                }),
            }
        }))
    }
}

/// Forgets a pending remote ask when its waiter goes away.
struct Forget<'a> {
    peer: &'a super::peer::Peer,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.peer.cancel(self.id);
    }
}
