//! The remote leg of a call: the frame sent to an instance on another
//! node, and the decoding of its reply.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix::Message;
use tokio::sync::oneshot;

use super::ask::State;
use super::ServiceRef;
use crate::error::CallError;
use crate::message::wire_codec::{AnyResult, WireCodec};
use crate::metadata::Metadata;
use crate::registry::RemoteInstance;
use crate::remote::call_lane::OutCall;
use crate::remote::frame::{Frame, Route as WireRoute, StaticName};
use crate::remote::peer::{Peer, RemoteReply};
use crate::remote::wire::{wire_meta, wire_meta_tell};
use crate::remote::wire_error::CallSite;

impl ServiceRef {
    /// The frame of a tell to a remote instance.
    pub(super) fn tell_frame<M: 'static>(
        &self,
        codec: WireCodec,
        msg: &M,
        meta: &Metadata,
    ) -> Result<Frame, CallError> {
        let payload = (codec.encode)(msg as &dyn Any).map_err(|e| CallError::Codec {
            service: self.name.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Frame::Tell {
            route: self.wire_route(codec),
            // A tell has no caller waiting: only an explicit
            // deadline travels (it still drops late work).
            meta: wire_meta_tell(meta),
            payload,
        })
    }

    /// The route of a call to this service with `codec`'s message, as the
    /// connection's writer turns it into its wire form (names or an id).
    fn wire_route(&self, codec: WireCodec) -> WireRoute {
        WireRoute::Local {
            service: self.name.clone(),
            message: StaticName(codec.wire_name),
        }
    }

    /// Sends a tell to a remote instance: encoded in place on its
    /// connection's call lane.
    pub(super) fn tell_remote<M: 'static>(
        &self,
        r: &RemoteInstance,
        codec: WireCodec,
        msg: &M,
        meta: &Metadata,
    ) -> Result<(), CallError> {
        // A tell has no caller waiting: only an explicit deadline travels
        // (it still drops late work).
        let meta = wire_meta_tell(meta);
        self.on_live_peer(r, |peer| {
            peer.send_call(
                OutCall {
                    id: None,
                    service: &self.name,
                    message: codec.wire_name,
                    meta: &meta,
                },
                |out| (codec.encode_append)(msg as &dyn Any, out),
            )
        })
        .map(|((), _)| ())
    }

    pub(super) fn send_remote<M>(
        &self,
        r: &Arc<RemoteInstance>,
        codec: WireCodec,
        msg: &M,
        meta: &Metadata,
        timeout: Duration,
    ) -> State<M>
    where
        M: Message + Send + 'static,
        M::Result: Send,
    {
        let meta = wire_meta(meta, timeout);
        let asked = self.on_live_peer(r, |peer| {
            peer.ask_call(
                OutCall {
                    id: None,
                    service: &self.name,
                    message: codec.wire_name,
                    meta: &meta,
                },
                |out| (codec.encode_append)(msg as &dyn Any, out),
            )
        });
        match asked {
            Ok(((id, rx), peer)) => State::Remote {
                call: Box::new(RemoteCall {
                    peer,
                    id,
                    rx,
                    decode: codec.decode_result,
                }),
            },
            Err(e) => State::Failed(Some(e)),
        }
    }

    /// Runs `send` on the current connection to the instance's node, and
    /// once more on its successor if that connection was retired meanwhile
    /// (a retired connection refuses calls once its `CallsDone` is queued).
    fn on_live_peer<T>(
        &self,
        r: &RemoteInstance,
        mut send: impl FnMut(&Peer) -> Result<T, CallError>,
    ) -> Result<(T, Arc<Peer>), CallError> {
        let peer = self.live_peer(r)?;
        match send(&peer) {
            Err(CallError::NodeDown { .. }) if peer.is_retired() => {
                let next = self.live_peer(r)?;
                send(&next).map(|v| (v, next))
            }
            sent => sent.map(|v| (v, peer)),
        }
    }

    /// The current connection to the instance's node: a replaced duplicate
    /// connection must not fail calls the new one can carry.
    pub(super) fn live_peer(&self, r: &RemoteInstance) -> Result<Arc<Peer>, CallError> {
        // A connection neither down nor retired is the node's current one
        // (a new connection retires or downs the one it replaces).
        let own = Peer::of(&r.peer);
        if let Some(p) = own.as_ref().filter(|p| !p.is_down() && !p.is_retired()) {
            return Ok(p.clone());
        }
        self.node
            .remote
            .as_ref()
            .and_then(|rem| rem.peer(r.peer.node_name()))
            .filter(|p| !p.is_down())
            .or(own)
            .ok_or_else(|| CallError::NodeDown {
                node: r.peer.node_name().to_string(),
            })
    }
}

/// A remote ask in flight; dropping it forgets the pending entry.
pub(super) struct RemoteCall {
    peer: Arc<Peer>,
    id: u64,
    rx: oneshot::Receiver<RemoteReply>,
    decode: fn(&[u8]) -> AnyResult,
}

impl Drop for RemoteCall {
    fn drop(&mut self) {
        self.peer.cancel(self.id);
    }
}

impl RemoteCall {
    /// Polls the remote instance's reply, decoded as `M`'s result.
    pub(super) fn poll_reply<M>(
        &mut self,
        svc: &ServiceRef,
        timeout: Duration,
        cx: &mut Context<'_>,
    ) -> Poll<Result<M::Result, CallError>>
    where
        M: Message + Send + 'static,
        M::Result: Send,
    {
        let call = self;
        match Pin::new(&mut call.rx).poll(cx) {
            Poll::Ready(r) => {
                let node = &call.peer.info.name;
                Poll::Ready(match r {
                    Ok(Ok(bytes)) => match (call.decode)(&bytes).map(|b| b.downcast::<M::Result>())
                    {
                        Ok(Ok(v)) => Ok(*v),
                        Ok(Err(_)) | Err(_) => Err(CallError::Codec {
                            service: svc.name.to_string(),
                            reason: "the reply does not decode as the result type".into(),
                        }),
                    },
                    Ok(Err(e)) => Err(e.into_call_error(&CallSite {
                        service: &svc.name,
                        message: std::any::type_name::<M>(),
                        node,
                        timeout,
                    })),
                    Err(_) => Err(CallError::NodeDown { node: node.clone() }),
                })
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
