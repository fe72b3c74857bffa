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

/// An ask from another node, already queued on a local instance (or
/// failed), that nothing waits for yet.
pub(crate) struct QueuedAsk<M>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    state: State<M>,
    deadline_ms: u64,
    timeout: Duration,
}

impl ServiceRef {
    /// The entry an inbound call is served from (a handle made by
    /// `local_only` always holds one).
    pub(crate) fn cached_entry(&self) -> Option<&Arc<ServiceEntry>> {
        self.entry.get()
    }

    /// A local instance for message type `index`.
    pub(super) fn pick_inbound<M: 'static>(
        &self,
        index: usize,
        msg: &M,
    ) -> Result<Target, CallError> {
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
    /// at once (before anything waits for it), with `deadline_ms` in its
    /// metadata; [`await_inbound`](Self::await_inbound) then waits for the
    /// reply until that deadline (`timeout` is what the error reports).
    ///
    /// Queueing before the connection spawns the task that awaits the reply
    /// lets the instance run first on a shared thread: that task's first
    /// poll then usually finds the reply there, instead of waiting once
    /// (and registering with the deadline sweeper) and being woken again.
    pub(crate) fn queue_inbound_ask<M>(
        &self,
        index: usize,
        msg: M,
        mut meta: Metadata,
        deadline_ms: u64,
        timeout: Duration,
    ) -> QueuedAsk<M>
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
                    Err(SendError::Full(env)) => match to.instance() {
                        Some(inst) => Ok(Err((env, inst.clone()))),
                        None => Err(env),
                    },
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
        QueuedAsk {
            state,
            deadline_ms,
            timeout,
        }
    }

    /// Waits for the reply of an ask queued by
    /// [`queue_inbound_ask`](Self::queue_inbound_ask) (on this handle).
    pub(crate) fn await_inbound<M>(&self, queued: QueuedAsk<M>) -> AskFuture<'_, M>
    where
        M: Message + Send + 'static,
        M::Result: Send,
    {
        AskFuture {
            state: queued.state,
            svc: self,
            deadline_ms: queued.deadline_ms,
            timeout: queued.timeout,
            ticket: TicketGuard::new(&self.node.deadlines),
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
