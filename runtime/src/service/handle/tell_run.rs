//! Runs of plain remote tells served as one batch (`service/batch.rs`):
//! the instance is picked once for the run, the messages go into its
//! mailbox as one [`TellBatch`], within the instance's batch room.

use std::sync::Arc;

use actix::prelude::SendError;
use actix::Message;

use super::bounded::FullTell;
use super::{fns, ServiceRef};
use crate::error::CallError;
use crate::metadata::Metadata;
use crate::registry::{Instance, ServiceEntry};
use crate::service::actor::Envelope;
use crate::service::batch::{BatchGuard, TellBatch};
use crate::service::room::RoomWaiter;

/// Messages one batch holds at most (besides the mailbox capacity).
pub(crate) const MAX_BATCH: usize = 256;

/// What a run that could not be queued at once waits for.
pub(crate) enum RunWait<M>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    /// A single tell, at the mailbox's capacity.
    One(FullTell<M>),
    /// A batch, at the mailbox's capacity (its messages hold their room).
    Batch {
        entry: Arc<ServiceEntry>,
        instance: Arc<Instance>,
        batch: TellBatch<M>,
    },
    /// A tell that found the batches queued to its instance at its
    /// capacity: it goes in once they are handled.
    Room {
        entry: Arc<ServiceEntry>,
        instance: Arc<Instance>,
        index: usize,
        env: Envelope<M>,
    },
}

impl ServiceRef {
    /// Serves a run of tells from another node: `first`, then as many of
    /// `more` as the picked instance has room for, queued as one batch.
    /// `Ok(Some(_))` when the connection must wait
    /// ([`wait_run`](Self::wait_run)) before it reads on. A keyed service
    /// takes its tells one by one (each is routed by its own key).
    pub(crate) fn tell_inbound_run<M>(
        &self,
        index: usize,
        first: M,
        more: &mut dyn FnMut() -> Option<M>,
    ) -> Result<Option<RunWait<M>>, CallError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
    {
        let env = |msg| Envelope {
            msg,
            meta: Metadata::default(),
        };
        let entry = self.entry()?;
        if entry.keyed_routing {
            return Ok(self
                .tell_inbound(index, first, Metadata::default())?
                .map(RunWait::One));
        }
        let target = self.pick_inbound(index, &first)?;
        let instance = target.guard.as_ref().ok_or_else(|| self.no_instance())?;
        let room = instance.batch_room();
        let got = room.reserve(MAX_BATCH, instance.capacity);
        if got == 0 {
            // The batches queued fill the mailbox: wait until they are
            // handled (a single tell would go past the capacity).
            return Ok(Some(RunWait::Room {
                entry: Arc::clone(&entry),
                instance: Arc::clone(instance),
                index,
                env: env(first),
            }));
        }
        let mut envs = Vec::with_capacity(got.min(64));
        envs.push(env(first));
        while envs.len() < got {
            match more() {
                Some(m) => envs.push(env(m)),
                None => break,
            }
        }
        let signal = entry.room(instance.id.slot).cloned();
        let f = fns::<M>(&entry, index);
        // Even a run of one goes as a batch: every plain tell counts in
        // the batch room, so they never hold more than the capacity.
        let (Some(signal), Some(f)) = (signal, f) else {
            room.release(got);
            return Err(self.unhandled::<M>());
        };
        room.release(got - envs.len());
        let guard = BatchGuard::new(room.clone(), signal, envs.len());
        match (f.tell_batch)(instance, TellBatch { envs, guard }) {
            Ok(()) => Ok(None),
            Err(SendError::Full(batch)) => Ok(Some(RunWait::Batch {
                entry: Arc::clone(&entry),
                instance: Arc::clone(instance),
                batch,
            })),
            Err(SendError::Closed(_)) => Err(self.map_closed()),
        }
    }

    /// Queues `msgs`, in order, on one local instance as one [`TellBatch`],
    /// as many as its batch room takes (a topic's service subscriber given
    /// a run of events from another node); never waits. Gives back, in
    /// order, the messages it did not queue, for the caller to tell one by
    /// one after them: all of them unless the service takes the local fast
    /// path (round robin, local instances only, the node running).
    pub(crate) fn tell_batch_now<M>(&self, mut msgs: Vec<M>) -> Vec<M>
    where
        M: Message + Send + 'static,
        M::Result: Send,
    {
        if msgs.is_empty() {
            return msgs;
        }
        let Some(entry) = self.fast_entry() else {
            return msgs;
        };
        let Some(f) = entry
            .type_index(std::any::TypeId::of::<M>())
            .and_then(|index| fns::<M>(entry, index))
        else {
            return msgs;
        };
        let Some(picked) = entry.pick_round_robin() else {
            return msgs;
        };
        let Some(instance) = picked.as_ref() else {
            return msgs;
        };
        let Some(signal) = entry.room(instance.id.slot) else {
            return msgs;
        };
        let room = instance.batch_room();
        let got = room.reserve(msgs.len().min(MAX_BATCH), instance.capacity);
        if got == 0 {
            return msgs;
        }
        let rest = msgs.split_off(got);
        let envs = msgs
            .into_iter()
            .map(|msg| Envelope {
                msg,
                meta: Metadata::default(),
            })
            .collect();
        let guard = BatchGuard::new(room.clone(), signal.clone(), got);
        match (f.tell_batch)(instance, TellBatch { envs, guard }) {
            Ok(()) => rest,
            // The batch's room goes back with its guard.
            Err(SendError::Full(batch) | SendError::Closed(batch)) => {
                let mut back: Vec<M> = batch.envs.into_iter().map(|e| e.msg).collect();
                back.extend(rest);
                back
            }
        }
    }

    /// Waits until what `wait` holds can be queued, then queues it; fails
    /// if the instance dies or is replaced meanwhile.
    pub(crate) async fn wait_run<M>(&self, wait: RunWait<M>) -> Result<(), CallError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
    {
        match wait {
            RunWait::One(full) => self.wait_tell(full).await,
            RunWait::Batch {
                entry,
                instance,
                batch,
            } => self.wait_batch(entry, instance, batch).await,
            RunWait::Room {
                entry,
                instance,
                index,
                env,
            } => {
                let slot = instance.id.slot;
                let mut waiter =
                    RoomWaiter::new(entry.clone(), slot).ok_or_else(|| self.map_closed())?;
                let room = instance.batch_room();
                loop {
                    // Listen first, then look: the end of a batch meanwhile
                    // is not missed.
                    waiter.arm();
                    if room.reserve(1, instance.capacity) == 1 {
                        break;
                    }
                    if !waiter.entry().slot_holds(slot, &instance) {
                        return Err(self.map_closed());
                    }
                    std::future::poll_fn(|cx| waiter.poll_signal(cx)).await;
                }
                drop(waiter);
                let _ = index;
                // A batch of one, holding the room just reserved.
                let Some(signal) = entry.room(slot) else {
                    room.release(1);
                    return Err(self.map_closed());
                };
                let guard = BatchGuard::new(room.clone(), signal.clone(), 1);
                let batch = TellBatch {
                    envs: vec![env],
                    guard,
                };
                self.wait_batch(entry, instance, batch).await
            }
        }
    }

    /// Waits for room in the instance's mailbox, then queues `batch`.
    async fn wait_batch<M>(
        &self,
        entry: Arc<ServiceEntry>,
        instance: Arc<Instance>,
        mut batch: TellBatch<M>,
    ) -> Result<(), CallError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
    {
        let index = entry
            .type_index(std::any::TypeId::of::<M>())
            .ok_or_else(|| self.unhandled::<M>())?;
        let f = fns::<M>(&entry, index).ok_or_else(|| self.unhandled::<M>())?;
        let slot = instance.id.slot;
        let mut waiter = RoomWaiter::new(entry, slot).ok_or_else(|| self.map_closed())?;
        loop {
            waiter.arm();
            match (f.tell_batch)(&instance, batch) {
                Ok(()) => return Ok(()),
                Err(SendError::Closed(_)) => return Err(self.map_closed()),
                Err(SendError::Full(b)) => batch = b,
            }
            if !waiter.entry().slot_holds(slot, &instance) {
                return Err(self.map_closed());
            }
            std::future::poll_fn(|cx| waiter.poll_signal(cx)).await;
        }
    }
}
