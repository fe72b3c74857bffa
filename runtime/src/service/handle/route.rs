//! Routing: where a call goes, a local instance (round-robin, or the
//! rendezvous winner for a keyed message) or a remote one. A node that is
//! not a member of its cluster (joining, or downed by the split-brain
//! resolver) routes no keyed message: it owns no key, and its callers get
//! `CallError::Joining` / `Downed` at once (docs/cluster.md, "Joining").
//! Its own local services still serve its own callers otherwise.

use std::any::{Any, TypeId};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use actix::Message;

use super::ServiceRef;
use crate::error::CallError;
use crate::message::wire_codec::WireCodec;
use crate::registry::{Instance, InstanceGuard, RemoteInstance, ServiceEntry};

/// Where a call goes.
pub(super) enum Route {
    Local(Target),
    Remote(Arc<RemoteInstance>, WireCodec),
}

/// A picked local instance and the index of the message type.
pub(super) struct Target {
    pub(super) guard: InstanceGuard,
    pub(super) index: usize,
}

impl Target {
    /// The picked instance.
    #[inline]
    pub(super) fn instance(&self) -> Option<&Instance> {
        self.guard.as_deref()
    }
}

impl ServiceRef {
    /// Why this node routes no keyed message: it is not a member of its
    /// cluster (joining, or downed by the split-brain resolver), so it owns
    /// no key (`CallError::Joining` / `Downed`, counted). `None` for a
    /// member and for a node without remoting.
    #[inline]
    fn not_member(&self) -> Option<CallError> {
        self.node.remote.as_ref().and_then(|r| r.refusal())
    }

    /// Routes a message of type `M`: a live local instance if there is one
    /// (or the rendezvous winner for a keyed message), else a remote one.
    #[inline]
    pub(super) fn route<M: Message + Send + 'static>(&self, msg: &M) -> Result<Route, CallError> {
        if self.node.closing.load(Ordering::Relaxed) {
            return Err(CallError::ShuttingDown);
        }
        let entry = self.entry()?;
        let local = entry.type_index(TypeId::of::<M>());
        if self.local_only || !entry.has_remote() {
            // The local path: no codec lookup, no serialization.
            let Some(index) = local else {
                return Err(if entry.is_remote_only() {
                    self.no_instance()
                } else {
                    self.unhandled::<M>()
                });
            };
            let guard = match (entry.keyed_routing, entry.types[index].key) {
                (true, Some(key_of)) => {
                    if let Some(e) = self.not_member() {
                        return Err(e);
                    }
                    entry.pick_keyed(key_of(msg as &dyn Any))
                }
                _ => entry.pick_round_robin(),
            };
            let guard = guard.ok_or_else(|| self.no_instance())?;
            return Ok(Route::Local(Target { guard, index }));
        }
        self.route_cluster(&entry, local, msg)
    }

    fn route_cluster<M: Message + Send + 'static>(
        &self,
        entry: &ServiceEntry,
        local: Option<usize>,
        msg: &M,
    ) -> Result<Route, CallError> {
        let codec = local
            .and_then(|i| entry.types[i].wire)
            .or_else(|| self.node.registry.codec(TypeId::of::<M>()));
        let key = if entry.keyed_routing {
            codec.and_then(|c| c.key).map(|k| k(msg as &dyn Any))
        } else {
            None
        };
        if key.is_some() {
            if let Some(e) = self.not_member() {
                return Err(e);
            }
        }
        let remote = codec.and_then(|c| entry.pick_remote(c.wire_name, key).map(|r| (r, c)));
        match (local, key) {
            (Some(index), Some(k)) => {
                let mine = entry.pick_keyed_scored(k);
                match (mine, remote) {
                    (Some((ls, g)), Some((r, c))) => {
                        if ls >= ServiceEntry::remote_score(k, &r) {
                            Ok(Route::Local(Target { guard: g, index }))
                        } else {
                            Ok(Route::Remote(r, c))
                        }
                    }
                    (Some((_, g)), None) => Ok(Route::Local(Target { guard: g, index })),
                    (None, Some((r, c))) => Ok(Route::Remote(r, c)),
                    (None, None) => Err(self.no_instance()),
                }
            }
            (Some(index), None) => match entry.pick_round_robin() {
                Some(guard) => Ok(Route::Local(Target { guard, index })),
                None => remote
                    .map(|(r, c)| Route::Remote(r, c))
                    .ok_or_else(|| self.no_instance()),
            },
            (None, _) => match (remote, codec) {
                (Some((r, c)), _) => Ok(Route::Remote(r, c)),
                (None, Some(_)) => Err(self.no_instance()),
                (None, None) => Err(CallError::NotRegistered {
                    message: std::any::type_name::<M>(),
                }),
            },
        }
    }
}
