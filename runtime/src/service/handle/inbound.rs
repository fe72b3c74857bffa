//! Calls from other nodes, served on a local instance. The caller routed
//! them here already, so they skip [`ServiceRef::ask`]'s routing: the
//! instance is picked among the local ones (by key for a keyed service) and
//! the message goes straight into its mailbox, with the deadline the
//! connection computed for it.

use std::any::Any;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::SendError;
use actix::Message;

use super::ask::{AskFuture, State};
use super::route::Target;
use super::timeout::TicketGuard;
use super::{FullTell, ServiceRef};
use crate::error::CallError;
use crate::metadata::Metadata;
use crate::registry::ServiceEntry;
use crate::service::actor::Envelope;
use crate::service::sender_cache::with_sender;

impl ServiceRef {
    /// The entry an inbound call is served from (a handle made by
    /// `local_only` always holds one).
    pub(crate) fn cached_entry(&self) -> Option<&Arc<ServiceEntry>> {
        self.entry.get()
    }

    /// A local instance for message type `index`.
    fn pick_inbound<M: 'static>(&self, index: usize, msg: &M) -> Result<Target, CallError> {
        if self.node.closing.load(Ordering::Relaxed) {
            return Err(CallError::ShuttingDown);
        }
        let entry = self.entry()?;
        let t = entry
            .types
            .get(index)
            .ok_or_else(|| self.unhandled::<M>())?;
        let guard = match (entry.keyed_routing, t.key) {
            (true, Some(key_of)) => entry.pick_keyed(key_of(msg as &dyn Any)),
            _ => entry.pick_round_robin(),
        };
        let guard = guard.ok_or_else(|| self.no_instance())?;
        Ok(Target { guard, index })
    }

    /// Serves an ask from another node: queues `msg` on a local instance
    /// and waits for its reply until `deadline_ms` (`timeout` is what the
    /// error reports).
    pub(crate) fn ask_inbound<M>(
        &self,
        index: usize,
        msg: M,
        mut meta: Metadata,
        deadline_ms: u64,
        timeout: Duration,
    ) -> AskFuture<'_, M>
    where
        M: Message + Send + 'static,
        M::Result: Send,
    {
        meta.set_deadline_ms(deadline_ms);
        let env = Envelope { msg, meta };
        let state = match self.cached_entry() {
            // Round robin: the calling thread's cached sender, as a local ask.
            Some(entry) if !entry.keyed_routing && !self.node.closing.load(Ordering::Relaxed) => {
                let sent = with_sender::<M, _, _>(entry, env, |to, env| match to.ask(env) {
                    Ok(rx) => Ok(Ok(rx)),
                    Err(SendError::Full(env)) => Ok(Err((env, to.instance().clone()))),
                    Err(SendError::Closed(env)) => Err(env),
                });
                match sent {
                    Ok(Ok(rx)) => State::Sent { rx },
                    Ok(Err((env, inst))) => self.full_state(entry, env, inst),
                    // An empty slot or a dead instance: pick a live one.
                    Err(Some(env)) => self.ask_picked(index, env),
                    Err(None) => State::Failed(Some(self.no_instance())),
                }
            }
            _ => self.ask_picked(index, env),
        };
        AskFuture {
            state,
            svc: self,
            deadline_ms,
            timeout,
            ticket: TicketGuard {
                deadlines: &self.node.deadlines,
                ticket: None,
            },
        }
    }

    fn ask_picked<M>(&self, index: usize, env: Envelope<M>) -> State<M>
    where
        M: Message + Send + 'static,
        M::Result: Send,
    {
        match self.pick_inbound(index, &env.msg) {
            Ok(target) => self.send_local(target, env),
            Err(e) => State::Failed(Some(e)),
        }
    }

    /// Serves a tell from another node within the picked instance's mailbox
    /// capacity: `Ok(Some(_))` when the connection must wait for room
    /// ([`wait_tell`](Self::wait_tell)) before it reads on.
    pub(crate) fn tell_inbound<M>(
        &self,
        index: usize,
        msg: M,
        meta: Metadata,
    ) -> Result<Option<FullTell<M>>, CallError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
    {
        // Through the picked instance's own sender, not the thread's sender
        // cache: each cached clone of an actix sender may put one message
        // past the capacity when it parks, which let the mailbox overshoot
        // its bound (299 held against 256 + 16 in flow_control's test).
        let env = Envelope { msg, meta };
        let target = self.pick_inbound(index, &env.msg)?;
        self.tell_bounded(target, env)
    }
}
