//! Asks: the [`Ask`] builder, and the [`AskFuture`] state machine that
//! waits for the reply (local, behind a full mailbox, or remote).

use std::any::TypeId;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix::dev::RecipientRequest;
use actix::prelude::SendError;
use actix::Message;

use super::remote_leg::RemoteCall;
use super::route::{Route, Target};
use super::timeout::TicketGuard;
use super::{fns, ServiceRef};
use crate::error::CallError;
use crate::metadata::Metadata;
use crate::registry::{Instance, ServiceEntry};
use crate::service::actor::Envelope;
use crate::service::room::RoomWaiter;
use crate::service::send::{AskFn, ReplyRx};
use crate::service::sender_cache::with_sender;

impl ServiceRef {
    /// Sends `msg` and waits for the reply. Waits for mailbox room (so it
    /// applies backpressure), within the node's default timeout unless
    /// [`Ask::timeout`] overrides it.
    ///
    /// # Errors
    /// [`CallError`]: unknown service, unhandled message type, no live
    /// instance, the instance died, timeout, handler panic, shutdown. None of
    /// them hangs.
    pub fn ask<M>(&self, msg: M) -> Ask<'_, M>
    where
        M: Message + Send + 'static,
        M::Result: Send,
    {
        Ask {
            svc: self,
            msg,
            timeout: None,
            meta: None,
        }
    }

    /// Asks every live instance (for scatter-gather, e.g. listing a sharded
    /// store); one result per instance.
    ///
    /// # Errors
    /// The outer error when the service cannot be called at all.
    pub async fn ask_all<M>(&self, msg: M) -> Result<Vec<Result<M::Result, CallError>>, CallError>
    where
        M: Message + Clone + Send + 'static,
        M::Result: Send,
    {
        if self.node.closing.load(Ordering::Relaxed) {
            return Err(CallError::ShuttingDown);
        }
        let entry = self.entry()?.clone();
        let index = entry
            .type_index(TypeId::of::<M>())
            .ok_or_else(|| self.unhandled::<M>())?;
        let timeout = self.node.default_timeout;
        // Send to every instance first, then collect: the calls run concurrently.
        let f = fns::<M>(&entry, index).ok_or_else(|| self.unhandled::<M>())?;
        let mut pending = Vec::new();
        for inst in entry.all_live() {
            let deadline_ms = self.node.deadlines.clock().after(timeout);
            let meta = Metadata::with_deadline_ms(deadline_ms);
            let env = Envelope {
                msg: msg.clone(),
                meta,
            };
            let Some(req) = (f.request)(&inst, env) else {
                continue;
            };
            pending.push(AskFuture {
                state: State::Queued { req: Box::pin(req) },
                svc: self,
                deadline_ms,
                timeout,
                ticket: TicketGuard::new(&self.node.deadlines),
            });
        }
        let mut out = Vec::with_capacity(pending.len());
        for p in pending {
            out.push(p.await);
        }
        Ok(out)
    }

    /// Puts an ask into a local instance's mailbox.
    #[inline]
    pub(super) fn send_local<M>(&self, target: Target, env: Envelope<M>) -> State<M>
    where
        M: Message + Send + 'static,
        M::Result: Send,
    {
        let f = match self.entry() {
            Ok(entry) => fns::<M>(&entry, target.index),
            Err(e) => return State::Failed(Some(e)),
        };
        let (Some(f), Some(sender)) = (f, target.instance()) else {
            return State::Failed(Some(self.unhandled::<M>()));
        };
        match State::queued(
            (f.ask)(sender, env),
            || target.guard.as_ref().cloned(),
            f.ask,
        ) {
            Ok(state) => state,
            Err(_closed) => State::Failed(Some(self.map_closed())),
        }
    }
}

/// A pending `ask`, to configure before awaiting.
#[derive(Debug)]
#[must_use = "an ask does nothing until awaited"]
pub struct Ask<'a, M> {
    svc: &'a ServiceRef,
    msg: M,
    timeout: Option<Duration>,
    meta: Option<Metadata>,
}

impl<M> Ask<'_, M> {
    /// Overrides the node's default timeout for this call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Attaches metadata (identity, trace, an earlier deadline).
    pub fn metadata(mut self, meta: Metadata) -> Self {
        self.meta = Some(meta);
        self
    }
}

impl<'a, M> IntoFuture for Ask<'a, M>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    type Output = Result<M::Result, CallError>;
    type IntoFuture = AskFuture<'a, M>;

    #[inline]
    fn into_future(self) -> AskFuture<'a, M> {
        let svc = self.svc;
        let clock = svc.node.deadlines.clock();
        let (timeout, mut deadline_ms) = match self.timeout {
            None => (
                svc.node.default_timeout,
                clock
                    .now_ms()
                    .saturating_add(svc.node.default_timeout_ms)
                    .saturating_add(1),
            ),
            Some(t) => (t, clock.after(t)),
        };
        let ticket = TicketGuard::new(&svc.node.deadlines);
        let meta = match self.meta {
            None => Metadata::with_deadline_ms(deadline_ms),
            Some(mut m) => {
                // An earlier deadline from upstream wins.
                deadline_ms = m.deadline_ms().map_or(deadline_ms, |d| d.min(deadline_ms));
                m.set_deadline_ms(deadline_ms);
                m
            }
        };
        let env = Envelope {
            msg: self.msg,
            meta,
        };
        let state = match svc.fast_entry() {
            Some(entry) => {
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
                    Ok(Err((env, inst))) => svc.full_state(entry, env, inst),
                    // A dead or replaced instance: the general path re-reads the slots.
                    Err(Some(e)) => svc.slow_state(e.msg, e.meta, timeout),
                    Err(None) => State::Failed(Some(svc.no_instance())),
                }
            }
            None => svc.slow_state(env.msg, env.meta, timeout),
        };
        AskFuture {
            state,
            svc,
            deadline_ms,
            timeout,
            ticket,
        }
    }
}

impl ServiceRef {
    /// An ask that found the mailbox full: it waits for room (`room.rs`).
    #[cold]
    pub(super) fn full_state<M>(
        &self,
        entry: &ServiceEntry,
        env: Envelope<M>,
        inst: Arc<Instance>,
    ) -> State<M>
    where
        M: Message + Send + 'static,
        M::Result: Send,
    {
        match entry
            .type_index(TypeId::of::<M>())
            .and_then(|index| fns::<M>(entry, index))
        {
            Some(f) => State::full(env, Some(inst), f.ask),
            None => State::Failed(Some(self.unhandled::<M>())),
        }
    }

    /// An ask down the general path.
    #[cold]
    pub(super) fn slow_state<M>(&self, msg: M, meta: Metadata, timeout: Duration) -> State<M>
    where
        M: Message + Send + 'static,
        M::Result: Send,
    {
        let svc = self;
        match svc.route(&msg) {
            Err(e) => State::Failed(Some(e)),
            Ok(Route::Local(target)) => svc.send_local(target, Envelope { msg, meta }),
            Ok(Route::Remote(r, codec)) => svc.send_remote(&r, codec, &msg, &meta, timeout),
        }
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    pub(super) enum State<M>
    where
        M: Message,
        M: Send,
        M: 'static,
        M::Result: Send,
    {
        // Rare variants are boxed: the future stays small on the hot path.
        Failed { err: Option<Box<CallError>> },
        // In the mailbox; waiting for the reply.
        Sent { rx: ReplyRx<M> },
        // The mailbox was full: wait for room (see `room.rs`), then retry.
        Full { full: Box<FullSend<M>> },
        // actix's own request (ask_all).
        Queued { req: Pin<Box<RecipientRequest<Envelope<M>>>> },
        Remote { call: Box<RemoteCall> },
    }
}

#[allow(non_snake_case)]
impl<M> State<M>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    pub(super) fn Failed(err: Option<CallError>) -> Self {
        Self::Failed {
            err: err.map(Box::new),
        }
    }

    /// The state after an attempt to queue an ask: waiting for the reply,
    /// or for mailbox room; `Err` gives the envelope back when the instance
    /// is gone.
    #[inline]
    fn queued(
        sent: Result<ReplyRx<M>, SendError<Envelope<M>>>,
        instance: impl FnOnce() -> Option<Arc<Instance>>,
        ask: AskFn<M>,
    ) -> Result<Self, Envelope<M>> {
        match sent {
            Ok(rx) => Ok(Self::Sent { rx }),
            Err(SendError::Full(env)) => Ok(Self::full(env, instance(), ask)),
            Err(SendError::Closed(env)) => Err(env),
        }
    }

    fn full(env: Envelope<M>, instance: Option<Arc<Instance>>, ask: AskFn<M>) -> Self {
        Self::Full {
            full: Box::new(FullSend {
                env: Some(env),
                instance,
                ask,
                waiter: None,
            }),
        }
    }
}

/// An ask waiting for mailbox room.
struct FullSend<M>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    env: Option<Envelope<M>>,
    instance: Option<Arc<Instance>>,
    ask: AskFn<M>,
    /// Registered with the slot's room signal after the first retry failed.
    waiter: Option<RoomWaiter>,
}

impl<M> FullSend<M>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    /// Retries the send whenever the instance took a message, until it goes
    /// in; fails at once if the instance is gone or was replaced.
    fn poll_send(
        &mut self,
        svc: &ServiceRef,
        cx: &mut Context<'_>,
    ) -> Poll<Result<ReplyRx<M>, CallError>> {
        let Some(inst) = self.instance.clone() else {
            return Poll::Ready(Err(svc.map_closed()));
        };
        loop {
            let Some(env) = self.env.take() else {
                return Poll::Ready(Err(svc.map_closed()));
            };
            match (self.ask)(&inst, env) {
                Ok(rx) => return Poll::Ready(Ok(rx)),
                Err(SendError::Closed(_)) => return Poll::Ready(Err(svc.map_closed())),
                Err(SendError::Full(e)) => self.env = Some(e),
            }
            let waiter = match self.waiter.as_mut() {
                Some(w) => w,
                None => {
                    let entry = match svc.entry() {
                        Ok(e) => Arc::clone(&e),
                        Err(e) => return Poll::Ready(Err(e)),
                    };
                    match RoomWaiter::new(entry, inst.id.slot) {
                        Some(w) => self.waiter.insert(w),
                        None => return Poll::Ready(Err(svc.map_closed())),
                    }
                }
            };
            if !waiter.is_armed() {
                // Listen first, then try once more: no room made meanwhile is missed.
                waiter.arm();
                continue;
            }
            if !waiter.entry().slot_holds(inst.id.slot, &inst) {
                // Replaced or stopped while its mailbox was full.
                return Poll::Ready(Err(svc.map_closed()));
            }
            if waiter.poll_signal(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of an [`Ask`]. Its timeout costs no tokio timer: see the
    /// `deadline` notes in docs/runtime.md.
    #[must_use = "futures do nothing unless polled"]
    pub struct AskFuture<'a, M>
    where
        M: Message,
        M: Send,
        M: 'static,
        M::Result: Send,
    {
        #[pin]
        pub(super) state: State<M>,
        pub(super) svc: &'a ServiceRef,
        pub(super) deadline_ms: u64,
        pub(super) timeout: Duration,
        pub(super) ticket: TicketGuard<'a>,
    }
}

impl<M> std::fmt::Debug for AskFuture<'_, M>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AskFuture")
            .field("service", &self.svc.name)
            .finish()
    }
}

/// Polls the reply of a local ask.
#[inline(always)]
fn poll_reply<M>(
    svc: &ServiceRef,
    rx: &mut ReplyRx<M>,
    timeout: Duration,
    cx: &mut Context<'_>,
) -> Poll<Result<M::Result, CallError>>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    match Pin::new(rx).poll(cx) {
        Poll::Ready(Ok(r)) => Poll::Ready(svc.map_reply::<M>(r, timeout)),
        Poll::Ready(Err(_)) => Poll::Ready(Err(svc.map_closed())),
        Poll::Pending => Poll::Pending,
    }
}

impl<M> Future for AskFuture<'_, M>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    type Output = Result<M::Result, CallError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let svc = *this.svc;
        let mut state = this.state;
        // The common case first, without the bookkeeping of the others: a
        // local ask in the mailbox.
        if let StateProj::Sent { rx } = state.as_mut().project() {
            return match poll_reply::<M>(svc, rx, *this.timeout, cx) {
                Poll::Ready(out) => {
                    this.ticket.cancel();
                    Poll::Ready(out)
                }
                Poll::Pending => {
                    svc.pending_or_timeout(this.ticket, this.deadline_ms, *this.timeout, cx)
                }
            };
        }
        let mut sent = None;
        let out = match state.as_mut().project() {
            StateProj::Failed { err } => {
                Poll::Ready(Err(err.take().map_or(CallError::ShuttingDown, |e| *e)))
            }
            StateProj::Sent { rx } => poll_reply::<M>(svc, rx, *this.timeout, cx),
            StateProj::Queued { req } => match req.as_mut().poll(cx) {
                Poll::Ready(Ok(r)) => Poll::Ready(svc.map_reply::<M>(r, *this.timeout)),
                Poll::Ready(Err(e)) => Poll::Ready(Err(svc.map_mailbox_error(e, *this.timeout))),
                Poll::Pending => Poll::Pending,
            },
            StateProj::Full { full } => match full.poll_send(svc, cx) {
                Poll::Ready(Ok(rx)) => {
                    sent = Some(rx);
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
            StateProj::Remote { call } => call.poll_reply::<M>(svc, *this.timeout, cx),
        };
        if let Some(rx) = sent {
            state.set(State::Sent { rx });
        }
        match out {
            Poll::Ready(r) => {
                this.ticket.cancel();
                Poll::Ready(r)
            }
            Poll::Pending => {
                svc.pending_or_timeout(this.ticket, this.deadline_ms, *this.timeout, cx)
            }
        }
    }
}
