//! Runs of remote tells handed to an instance as one mailbox message.
//!
//! A connection's reader that finds several plain tells (no identity, no
//! trace, no deadline) to one round-robin service back to back in its read
//! buffer decodes them all and queues them on the picked instance as one
//! [`TellBatch`]: one actix envelope, one queue node and one wake-up for the
//! run instead of one per message. The instance handles them one by one,
//! exactly as it handles tells (`TellEnvelope`): each is counted, checked
//! and handled in order, and a handler that makes the instance wait
//! (`Reply::atomic`, or a stop) holds back the rest of the batch as it
//! would hold back the rest of the mailbox.
//!
//! Bound: the messages of the batches queued to one instance and not yet
//! handled are counted ([`BatchRoom`]) and never exceed its mailbox
//! capacity; a reader that finds no room waits on the slot's room signal,
//! which the end of each batch gives. So a remote sender still fills at
//! most `mailbox_capacity` messages of an instance (plus, for tells with
//! metadata, which still go one by one, actix's one message per sender).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use actix::fut::ActorFutureExt;
use actix::{ActorFuture, AsyncContext, Context, Message};
use tokio::sync::Notify;

use super::actor::{Envelope, Handler, ServiceActor};
use crate::registry::BatchRoom;

/// Holds a batch's messages in its instance's [`BatchRoom`] until the
/// batch is handled or dropped (the instance died with it queued): then
/// gives the room back and wakes one reader waiting for it.
pub(crate) struct BatchGuard {
    room: Arc<BatchRoom>,
    signal: Arc<Notify>,
    n: usize,
}

impl BatchGuard {
    /// A guard over `n` messages already reserved in `room`; `signal` is
    /// the slot's room signal.
    pub(crate) fn new(room: Arc<BatchRoom>, signal: Arc<Notify>, n: usize) -> Self {
        Self { room, signal, n }
    }
}

impl Drop for BatchGuard {
    fn drop(&mut self) {
        self.room.release(self.n);
        self.signal.notify_one();
    }
}

impl std::fmt::Debug for BatchGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchGuard").field("n", &self.n).finish()
    }
}

/// Tells of one message type for one instance, handled in order as one
/// mailbox message.
#[derive(Debug)]
pub struct TellBatch<M> {
    pub(crate) envs: Vec<Envelope<M>>,
    pub(crate) guard: BatchGuard,
}

impl<M: Message> Message for TellBatch<M> {
    type Result = ();
}

impl<S, M> actix::Handler<TellBatch<M>> for ServiceActor<S>
where
    S: Handler<M>,
    M: Message + 'static,
    M::Result: Send,
{
    type Result = ();

    fn handle(&mut self, batch: TellBatch<M>, ctx: &mut Context<Self>) {
        let TellBatch { envs, guard } = batch;
        self.tell_each(envs.into_iter(), guard, ctx);
    }
}

impl<S: super::Service> ServiceActor<S> {
    /// Handles `envs` as tells, in order; when a handler makes the instance
    /// wait (or stop), the rest waits behind it as the mailbox would.
    fn tell_each<M>(
        &mut self,
        mut envs: std::vec::IntoIter<Envelope<M>>,
        guard: BatchGuard,
        ctx: &mut Context<Self>,
    ) where
        S: Handler<M>,
        M: Message + 'static,
        M::Result: Send,
    {
        while let Some(env) = envs.next() {
            // As a single tell is handled (`TellEnvelope`).
            if env.meta.has_extra() && self.check_access::<M>(&env.meta).is_err() {
                continue;
            }
            let Some(reply) = self.call(env, ctx) else {
                continue;
            };
            if envs.len() == 0 {
                reply.run_unobserved(ctx, &self.shared);
                break;
            }
            match reply.into_atomic() {
                // It holds the instance: the rest of the batch runs behind
                // it, in the same wait (actix polls the newest wait first,
                // so a wait of its own would run ahead of it).
                Ok(atomic) => {
                    let rest = RestOfBatch {
                        envs: Some((envs, guard)),
                    };
                    ctx.wait(atomic.then(move |_, _, _| rest));
                    return;
                }
                Err(reply) => reply.run_unobserved(ctx, &self.shared),
            }
            if ctx.waiting() {
                // Stopping (the rest is dropped with the instance), or a
                // wait the handler made through `ServiceContext::actix`.
                ctx.wait(RestOfBatch {
                    envs: Some((envs, guard)),
                });
                return;
            }
        }
        drop(guard);
    }
}

/// The rest of a batch, behind a handler's wait: handled when the context
/// polls it (after the wait), dropped with the instance if it stops.
struct RestOfBatch<M> {
    envs: Option<(std::vec::IntoIter<Envelope<M>>, BatchGuard)>,
}

impl<M> Unpin for RestOfBatch<M> {}

impl<S, M> ActorFuture<ServiceActor<S>> for RestOfBatch<M>
where
    S: Handler<M>,
    M: Message + 'static,
    M::Result: Send,
{
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        act: &mut ServiceActor<S>,
        ctx: &mut Context<ServiceActor<S>>,
        _: &mut TaskContext<'_>,
    ) -> Poll<()> {
        if let Some((envs, guard)) = self.get_mut().envs.take() {
            act.tell_each(envs, guard, ctx);
        }
        Poll::Ready(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_reserved_within_the_capacity_and_given_back() {
        let room = Arc::new(BatchRoom::default());
        assert_eq!(room.reserve(10, 16), 10);
        assert_eq!(room.reserve(10, 16), 6);
        assert_eq!(room.reserve(1, 16), 0);
        let signal = Arc::new(Notify::new());
        let g = BatchGuard::new(room.clone(), signal.clone(), 16);
        drop(g);
        assert_eq!(room.queued(), 0);
        // The end of a batch is signalled (a permit is stored for the next
        // waiter).
        let mut n = std::pin::pin!(signal.notified());
        assert!(n.as_mut().enable());
    }
}
