//! The local send path: per message type, plain function pointers that put
//! an envelope straight into an instance's actix channel.
//!
//! An instance is held as one type-erased `AddressSender` (one per instance,
//! whatever the number of message types), and each `handles::<M>()` records
//! [`SendFns<M>`], monomorphised for the service type: the general path
//! downcasts twice (the functions, the sender) and pushes into the channel.
//! The local fast path goes through the calling thread's sender cache
//! (`sender_cache.rs`), whose rows the message type's [`SendFns`] make,
//! typed by the service: a tell is one downcast and one virtual call on the
//! row (through a sender the row holds by value, from a thread's second call
//! to an instance on), an ask a [`SendTo<M>`] on the instance's own sender.
//! An ask waits on the bare oneshot receiver rather than actix's larger
//! request future.

use std::any::Any;
use std::sync::Arc;

use actix::dev::channel::AddressSender;
use actix::dev::RecipientRequest;
use actix::prelude::SendError;
use actix::{Addr, Message, Recipient};
use tokio::sync::oneshot;

use super::actor::{Envelope, Handler, ServiceActor, StopInstance, TellEnvelope};
use super::batch::TellBatch;
use super::sender_cache::{typed_row, CachedRow};
use super::Service;
use crate::registry::Instance;

/// What a local ask waits on.
pub(crate) type ReplyRx<M> = oneshot::Receiver<<Envelope<M> as Message>::Result>;

/// Queues an ask on an erased instance sender.
pub(crate) type AskFn<M> = fn(&Instance, Envelope<M>) -> Result<ReplyRx<M>, SendError<Envelope<M>>>;
/// Makes the sender cache's row of one message type for one service type
/// (`sender_cache.rs`).
pub(crate) type RowFn<M> = fn() -> Box<dyn CachedRow<M>>;
/// Queues a tell on an erased instance sender.
pub(crate) type TellFn<M> = fn(&Instance, Envelope<M>) -> Result<(), SendError<Envelope<M>>>;
/// Queues a batch of tells on an erased instance sender, within capacity.
pub(crate) type TellBatchFn<M> = fn(&Instance, TellBatch<M>) -> Result<(), SendError<TellBatch<M>>>;
/// Builds actix's own request on an erased instance sender.
pub(crate) type RequestFn<M> = fn(&Instance, Envelope<M>) -> Option<RecipientRequest<Envelope<M>>>;

/// The send functions of message type `M` for one service type.
pub(crate) struct SendFns<M>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    /// Queues an ask; `Full` when the mailbox is at capacity.
    pub(crate) ask: AskFn<M>,
    /// Queues a tell regardless of capacity; `Closed` when the instance is gone.
    pub(crate) tell: TellFn<M>,
    /// A new row of the calling thread's sender cache, typed by the
    /// service: it holds the senders it calls by value.
    pub(crate) row: RowFn<M>,
    /// Queues a tell within the mailbox's capacity; `Full` when it is at
    /// capacity (the message is given back), `Closed` when the instance is gone.
    pub(crate) try_tell: TellFn<M>,
    /// actix's own request (waits for room), for `ask_all`.
    pub(crate) request: RequestFn<M>,
    /// Queues a batch of tells (from another node) as one mailbox message,
    /// within the mailbox's capacity as `try_tell` does.
    pub(crate) tell_batch: TellBatchFn<M>,
}

impl<M> Clone for SendFns<M>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    fn clone(&self) -> Self {
        *self
    }
}
impl<M> Copy for SendFns<M>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
}

/// The instance's actix sender behind its erased one, if it runs an `S`.
pub(crate) fn sender<S: Service>(s: &dyn Any) -> Option<&AddressSender<ServiceActor<S>>> {
    s.downcast_ref::<AddressSender<ServiceActor<S>>>()
}

/// Queues an ask on `i` (an `S`), counting it once queued.
pub(crate) fn ask<S, M>(
    i: &Instance,
    env: Envelope<M>,
) -> Result<ReplyRx<M>, SendError<Envelope<M>>>
where
    S: Handler<M>,
    M: Message + Send + 'static,
    M::Result: Send,
{
    match sender::<S>(&*i.sender) {
        Some(tx) => {
            let rx = tx.send(env)?;
            i.count_sent();
            Ok(rx)
        }
        None => Err(SendError::Closed(env)),
    }
}

fn tell<S, M>(i: &Instance, env: Envelope<M>) -> Result<(), SendError<Envelope<M>>>
where
    S: Handler<M>,
    M: Message + Send + 'static,
    M::Result: Send,
{
    sent_to::<S, _>(i, env, 1, |tx, env| {
        tx.do_send(TellEnvelope(env)).map_err(untell)
    })
}

fn try_tell<S, M>(i: &Instance, env: Envelope<M>) -> Result<(), SendError<Envelope<M>>>
where
    S: Handler<M>,
    M: Message + Send + 'static,
    M::Result: Send,
{
    // As an ask does: the message that reaches the capacity goes in and
    // parks the sender; later ones are `Full` until the instance takes one
    // (see `room.rs`).
    sent_to::<S, _>(i, env, 1, |tx, env| {
        tx.try_send(TellEnvelope(env), true).map_err(untell)
    })
}

fn tell_batch<S, M>(i: &Instance, batch: TellBatch<M>) -> Result<(), SendError<TellBatch<M>>>
where
    S: Handler<M>,
    M: Message + Send + 'static,
    M::Result: Send,
{
    let n = batch.envs.len() as u64;
    sent_to::<S, _>(i, batch, n, |tx, batch| tx.try_send(batch, true))
}

/// A tell's envelope back out of a refused send.
pub(crate) fn untell<M>(e: SendError<TellEnvelope<M>>) -> SendError<Envelope<M>>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    match e {
        SendError::Full(TellEnvelope(env)) => SendError::Full(env),
        SendError::Closed(TellEnvelope(env)) => SendError::Closed(env),
    }
}

/// Queues `msg` (`n` messages) on `i`'s sender with `send`, counting them
/// once queued; `Closed` with `msg` back when `i` is not an `S`.
fn sent_to<S: Service, T>(
    i: &Instance,
    msg: T,
    n: u64,
    send: impl FnOnce(&AddressSender<ServiceActor<S>>, T) -> Result<(), SendError<T>>,
) -> Result<(), SendError<T>> {
    let tx = match sender::<S>(&*i.sender) {
        Some(tx) => tx,
        None => return Err(SendError::Closed(msg)),
    };
    send(tx, msg)?;
    i.count_sent_n(n);
    Ok(())
}

/// One instance's actix sender, usable knowing the message type only.
pub(crate) trait SendTo<M>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    /// Queues an ask; `Full` when the mailbox is at capacity.
    fn ask(&self, env: Envelope<M>) -> Result<ReplyRx<M>, SendError<Envelope<M>>>;
    /// The instance (to wait for room in its mailbox).
    fn instance(&self) -> Option<&Arc<Instance>>;
}

fn request<S, M>(i: &Instance, env: Envelope<M>) -> Option<RecipientRequest<Envelope<M>>>
where
    S: Handler<M>,
    M: Message + Send + 'static,
    M::Result: Send,
{
    let tx = sender::<S>(&*i.sender)?.clone();
    // Counted as queued even if it then waits for room: it is on its way.
    i.count_sent();
    Some(Recipient::<Envelope<M>>::from(Addr::new(tx)).send(env))
}

/// The send functions of `M` on service `S`.
pub(crate) fn send_fns<S, M>() -> SendFns<M>
where
    S: Handler<M>,
    M: Message + Send + 'static,
    M::Result: Send,
{
    SendFns {
        ask: ask::<S, M>,
        tell: tell::<S, M>,
        row: typed_row::<S, M>,
        try_tell: try_tell::<S, M>,
        request: request::<S, M>,
        tell_batch: tell_batch::<S, M>,
    }
}

/// Asks the instance behind `s` to stop after what is queued.
pub(crate) fn stop<S: Service>(s: &dyn Any) {
    if let Some(tx) = sender::<S>(s) {
        let _ = tx.do_send(StopInstance);
    }
}
