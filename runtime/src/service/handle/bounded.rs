//! Sends that wait for room: [`ServiceRef::send`], and the tells this node
//! serves for other nodes (whose connection's reader waits with them, so a
//! sending node is held back by TCP instead of filling a mailbox here).

use std::sync::Arc;

use actix::prelude::SendError;
use actix::Message;

use super::route::{Route, Target};
use super::{fns, ServiceRef};
use crate::error::CallError;
use crate::metadata::Metadata;
use crate::registry::{Instance, ServiceEntry};
use crate::service::actor::Envelope;
use crate::service::room::RoomWaiter;
use crate::service::send::TellFn;

/// A tell that found its instance's mailbox at capacity: it goes in once
/// the instance took a message ([`ServiceRef::wait_tell`]).
pub(crate) struct FullTell<M>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    pub(super) entry: Arc<ServiceEntry>,
    pub(super) instance: Arc<Instance>,
    pub(super) tell: TellFn<M>,
    pub(super) env: Envelope<M>,
}

impl ServiceRef {
    /// Sends `msg` without waiting for a reply, once there is room for it:
    /// in the mailbox of the local instance it goes to, or in the queue of
    /// the connection toward the node of a remote one. The bounded
    /// counterpart of [`tell`](Self::tell), as tokio's `Sender::send` is of
    /// `try_send`: `tell` never waits (and toward a remote node fails with
    /// [`CallError::Overloaded`] when the connection's queue is full);
    /// `send` waits, so a producer runs at the pace of the consumer.
    ///
    /// It waits for as long as it takes (wrap it in a timeout to bound it),
    /// and fails when the instance it waits for dies, or the node it waits
    /// for goes down.
    ///
    /// # Examples
    /// ```
    /// # use msa_runtime::prelude::*;
    /// # #[derive(actix::Message)] #[rtype(result = "()")] struct Add(u64);
    /// # #[derive(Default)] struct Sum(u64); impl Service for Sum {}
    /// # impl Handler<Add> for Sum {
    /// #     fn handle(&mut self, m: Add, _: &mut ServiceContext<'_, Self>) -> Reply<Self, ()> { self.0 += m.0; Reply::ready(()) }
    /// # }
    /// # #[tokio::main] async fn main() {
    /// let node = Node::builder().arbiters(1).start().unwrap();
    /// node.spawn(ServiceSpec::new("sum", Sum::default).handles_local::<Add>().mailbox_capacity(16))
    ///     .await
    ///     .unwrap();
    /// let sum = node.service("sum");
    /// for i in 0..1_000 {
    ///     sum.send(Add(i)).await.unwrap(); // never more than about 16 queued
    /// }
    /// node.shutdown(std::time::Duration::from_secs(1)).await.unwrap();
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`tell`](Self::tell), and [`CallError::InstanceDied`] or
    /// [`CallError::NodeDown`] when the instance or node it waits for goes.
    pub async fn send<M>(&self, msg: M) -> Result<(), CallError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
    {
        self.send_with(msg, Metadata::default()).await
    }

    /// [`send`](Self::send) with metadata.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn send_with<M>(&self, msg: M, meta: Metadata) -> Result<(), CallError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
    {
        match self.route(&msg)? {
            Route::Local(target) => match self.tell_bounded(target, Envelope { msg, meta })? {
                None => Ok(()),
                Some(full) => self.wait_tell(full).await,
            },
            Route::Remote(r, codec) => {
                let frame = self.tell_frame(codec, &msg, &meta)?;
                self.live_peer(&r)?.send_waiting(frame).await
            }
        }
    }

    /// Queues a tell on `target` within its mailbox's capacity: `Ok(None)`
    /// when it went in, `Ok(Some(_))` when it must wait for room.
    pub(super) fn tell_bounded<M>(
        &self,
        target: Target,
        env: Envelope<M>,
    ) -> Result<Option<FullTell<M>>, CallError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
    {
        let entry = Arc::clone(&*self.entry()?);
        let f = fns::<M>(&entry, target.index).ok_or_else(|| self.unhandled::<M>())?;
        let instance = target
            .guard
            .as_ref()
            .cloned()
            .ok_or_else(|| self.no_instance())?;
        match (f.try_tell)(&instance, env) {
            Ok(()) => Ok(None),
            Err(SendError::Full(env)) => Ok(Some(FullTell {
                entry,
                instance,
                tell: f.try_tell,
                env,
            })),
            Err(SendError::Closed(_)) => Err(self.map_closed()),
        }
    }

    /// Waits until the instance of `full` has room, then queues its tell;
    /// fails if the instance dies or is replaced meanwhile.
    pub(crate) async fn wait_tell<M>(&self, full: FullTell<M>) -> Result<(), CallError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
    {
        let FullTell {
            entry,
            instance,
            tell,
            mut env,
        } = full;
        let slot = instance.id.slot;
        let mut waiter = RoomWaiter::new(entry, slot).ok_or_else(|| self.map_closed())?;
        loop {
            // Listen first, then try: no room made meanwhile is missed.
            waiter.arm();
            match tell(&instance, env) {
                Ok(()) => return Ok(()),
                Err(SendError::Closed(_)) => return Err(self.map_closed()),
                Err(SendError::Full(e)) => env = e,
            }
            if !waiter.entry().slot_holds(slot, &instance) {
                return Err(self.map_closed());
            }
            std::future::poll_fn(|cx| waiter.poll_signal(cx)).await;
        }
    }
}
