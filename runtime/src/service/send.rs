//! The local send path: per message type, plain function pointers that put
//! an envelope straight into an instance's actix channel.
//!
//! An instance is held as one type-erased `AddressSender` (one per instance,
//! whatever the number of message types), and each `handles::<M>()` records
//! [`SendFns<M>`], monomorphised for the service type. A call downcasts twice
//! (the functions, the sender: two `TypeId` compares) and pushes into the
//! channel: no `Recipient` box per type, no virtual call, and an ask waits on
//! the bare oneshot receiver rather than actix's larger request future.

use std::any::Any;
use std::sync::Arc;

use actix::dev::channel::AddressSender;
use actix::dev::RecipientRequest;
use actix::prelude::SendError;
use actix::{Addr, Message, Recipient};
use tokio::sync::oneshot;

use super::actor::{Envelope, Handler, ServiceActor, StopInstance, TellEnvelope};
use super::Service;
use crate::registry::{Instance, ServiceEntry};

/// What a local ask waits on.
pub(crate) type ReplyRx<M> = oneshot::Receiver<<Envelope<M> as Message>::Result>;

/// Queues an ask on an erased instance sender.
pub(crate) type AskFn<M> = fn(&Instance, Envelope<M>) -> Result<ReplyRx<M>, SendError<Envelope<M>>>;
/// Queues a tell on an erased instance sender.
pub(crate) type TellFn<M> = fn(&Instance, Envelope<M>) -> Result<(), SendError<Envelope<M>>>;
/// Queues a tell on the round-robin instance of an entry, through the
/// caller's slot cache; gives the envelope back when that cannot be done.
pub(crate) type TellCachedFn<M> = fn(&ServiceEntry, Envelope<M>) -> Result<(), Option<Envelope<M>>>;
/// Queues an ask on the round-robin instance of an entry, through the
/// caller's slot cache: the reply receiver, or (mailbox full) the envelope
/// and the instance to wait on; gives the envelope back when the instance
/// is gone.
pub(crate) type AskCachedFn<M> =
    fn(&ServiceEntry, Envelope<M>) -> Result<Queued<M>, Option<Envelope<M>>>;
/// An ask that went in, or one that waits for room in a full mailbox.
pub(crate) type Queued<M> = Result<ReplyRx<M>, (Envelope<M>, Arc<Instance>)>;
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
    /// actix's own request (waits for room), for `ask_all`.
    pub(crate) request: RequestFn<M>,
    /// `tell` on the round-robin instance (the local fast path).
    pub(crate) tell_cached: TellCachedFn<M>,
    /// `ask` on the round-robin instance (the local fast path).
    pub(crate) ask_cached: AskCachedFn<M>,
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

fn sender<S: Service>(s: &dyn Any) -> Option<&AddressSender<ServiceActor<S>>> {
    s.downcast_ref::<AddressSender<ServiceActor<S>>>()
}

fn ask<S, M>(i: &Instance, env: Envelope<M>) -> Result<ReplyRx<M>, SendError<Envelope<M>>>
where
    S: Handler<M>,
    M: Message + Send + 'static,
    M::Result: Send,
{
    match sender::<S>(i.sender.as_ref()) {
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
    match sender::<S>(i.sender.as_ref()) {
        Some(tx) => {
            tx.do_send(TellEnvelope(env)).map_err(|e| match e {
                SendError::Full(TellEnvelope(env)) => SendError::Full(env),
                SendError::Closed(TellEnvelope(env)) => SendError::Closed(env),
            })?;
            i.count_sent();
            Ok(())
        }
        None => Err(SendError::Closed(env)),
    }
}

fn tell_cached<S, M>(entry: &ServiceEntry, env: Envelope<M>) -> Result<(), Option<Envelope<M>>>
where
    S: Handler<M>,
    M: Message + Send + 'static,
    M::Result: Send,
{
    entry.with_instance(entry.next_slot(), env, |i, env| {
        let Some(tx) = sender::<S>(i.sender.as_ref()) else {
            return Err(env);
        };
        match tx.do_send(TellEnvelope(env)) {
            Ok(()) => {
                i.count_sent();
                Ok(())
            }
            Err(SendError::Full(TellEnvelope(env)) | SendError::Closed(TellEnvelope(env))) => {
                Err(env)
            }
        }
    })
}

fn ask_cached<S, M>(
    entry: &ServiceEntry,
    env: Envelope<M>,
) -> Result<Queued<M>, Option<Envelope<M>>>
where
    S: Handler<M>,
    M: Message + Send + 'static,
    M::Result: Send,
{
    entry.with_instance(entry.next_slot(), env, |i, env| {
        let Some(tx) = sender::<S>(i.sender.as_ref()) else {
            return Err(env);
        };
        match tx.send(env) {
            Ok(rx) => {
                i.count_sent();
                Ok(Ok(rx))
            }
            Err(SendError::Full(env)) => Ok(Err((env, i.clone()))),
            Err(SendError::Closed(env)) => Err(env),
        }
    })
}

fn request<S, M>(i: &Instance, env: Envelope<M>) -> Option<RecipientRequest<Envelope<M>>>
where
    S: Handler<M>,
    M: Message + Send + 'static,
    M::Result: Send,
{
    let tx = sender::<S>(i.sender.as_ref())?.clone();
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
        request: request::<S, M>,
        tell_cached: tell_cached::<S, M>,
        ask_cached: ask_cached::<S, M>,
    }
}

/// Asks the instance behind `s` to stop after what is queued.
pub(crate) fn stop<S: Service>(s: &dyn Any) {
    if let Some(tx) = sender::<S>(s) {
        let _ = tx.do_send(StopInstance);
    }
}
