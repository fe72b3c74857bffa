//! JSON calls forwarded to a node that hosts the service.
//!
//! A node that runs no instance of a service cannot decode a JSON body for
//! it: it may not even link the message's Rust type (a gateway built from
//! another binary). So it does not try: it sends the JSON text as it came to
//! a node whose service table lists the message (`Frame::AskJson`), and that
//! node decodes it with its own registration, makes the call (routing it on
//! by key if the service is keyed), and answers JSON. Decoding errors come
//! back as [`CallError::Json`], so a caller learns the same 400/404 whichever
//! node decoded.

use std::sync::Arc;
use std::time::Duration;

use super::frame::Frame;
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
    let target = entry.pick_remote(message, None)?;
    let service = entry.name().to_string();
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
    // The current connection to that node (a retired duplicate must not
    // carry new calls).
    let peer = remote
        .and_then(|r| r.peer(target.peer.node_name()))
        .filter(|p| !p.is_down())
        .or_else(|| super::peer::Peer::of(&target.peer));
    let Some(peer) = peer else {
        let node = target.peer.node_name().to_string();
        return Some(Ok(Box::pin(
            async move { Err(CallError::NodeDown { node }) },
        )));
    };
    let asked = peer.ask(|id| Frame::AskJson {
        id,
        service: service.clone(),
        message: message.to_string(),
        meta: wire_meta(meta, timeout),
        body,
    });
    let node_name = peer.info.name.clone();
    let message = message.to_string();
    Some(Ok(Box::pin(async move {
        let (id, rx) = asked?;
        // Cancels the pending entry however the wait ends.
        let _forget = Forget { peer: &peer, id };
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Ok(json))) => Ok(json),
            Ok(Ok(Err(wire))) => {
                let site = CallSite {
                    service: &service,
                    message: "(json)",
                    node: &node_name,
                    timeout,
                };
                Err(wire.into_json_call_error(&site, &message))
            }
            Ok(Err(_closed)) => Err(CallError::NodeDown { node: node_name }),
            Err(_elapsed) => Err(CallError::Timeout {
                service,
                after: timeout,
            }),
        }
    })))
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
