//! `ServiceRef`: a location-transparent handle to a service by name.

use std::any::{Any, TypeId};
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use actix::dev::RecipientRequest;
use actix::{MailboxError, Message, Recipient};

use super::actor::Envelope;
use super::reply::HandlerFailure;
use crate::deadline::{Deadlines, Ticket};
use crate::error::CallError;
use crate::metadata::Metadata;
use crate::node::NodeShared;
use crate::registry::{InstanceGuard, ServiceEntry};

/// A handle to a service, by name. Cheap to clone, `Send + Sync`.
///
/// It resolves through the registry, never through a stale address: calls
/// keep working across restarts. Local calls pass the message to the
/// instance's mailbox as is (no serialization).
///
/// # Examples
/// ```
/// # use msa_runtime::prelude::*;
/// # #[derive(actix::Message)] #[rtype(result = "u32")] struct Ping;
/// # #[derive(Default)] struct Pong; impl Service for Pong {}
/// # impl Handler<Ping> for Pong {
/// #     fn handle(&mut self, _: Ping, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u32> { Reply::ready(1) }
/// # }
/// # #[tokio::main] async fn main() {
/// let node = Node::builder().arbiters(1).start().unwrap();
/// node.spawn(ServiceSpec::new("pong", Pong::default).handles_local::<Ping>()).await.unwrap();
/// let pong = node.service("pong");
/// assert_eq!(pong.ask(Ping).await, Ok(1));
/// let quick = pong.ask(Ping).timeout(std::time::Duration::from_millis(50)).await;
/// assert_eq!(quick, Ok(1));
/// node.shutdown(std::time::Duration::from_secs(1)).await.unwrap();
/// # }
/// ```
#[derive(Clone)]
pub struct ServiceRef {
    node: Arc<NodeShared>,
    name: Arc<str>,
    entry: OnceLock<Arc<ServiceEntry>>,
}

impl std::fmt::Debug for ServiceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceRef")
            .field("name", &self.name)
            .finish()
    }
}

/// A picked instance's recipient for `M`, valid while the guard lives.
struct Target {
    guard: InstanceGuard,
    index: usize,
}

impl Target {
    #[inline]
    fn recipient<M>(&self) -> Option<&Recipient<Envelope<M>>>
    where
        M: Message + Send + 'static,
        M::Result: Send,
    {
        self.guard
            .as_ref()
            .and_then(|i| i.recipients.get(self.index))
            .and_then(|r| r.downcast_ref::<Recipient<Envelope<M>>>())
    }
}

impl ServiceRef {
    pub(crate) fn new(node: Arc<NodeShared>, name: &str) -> Self {
        Self {
            node,
            name: Arc::from(name),
            entry: OnceLock::new(),
        }
    }

    pub(crate) fn with_entry(node: Arc<NodeShared>, entry: Arc<ServiceEntry>) -> Self {
        let cell = OnceLock::new();
        let name = entry.name_arc().clone();
        let _ = cell.set(entry);
        Self {
            node,
            name,
            entry: cell,
        }
    }

    /// The service name.
    pub fn name(&self) -> &str {
        &self.name
    }

    #[inline]
    fn entry(&self) -> Result<&Arc<ServiceEntry>, CallError> {
        if let Some(e) = self.entry.get() {
            return Ok(e);
        }
        let e = self
            .node
            .registry
            .get(&self.name)
            .ok_or_else(|| CallError::UnknownService {
                service: self.name.to_string(),
            })?;
        Ok(self.entry.get_or_init(|| e))
    }

    /// Routes a message of type `M`: checks, picks an instance, finds its recipient.
    #[inline]
    fn route<M: Message + Send + 'static>(&self, msg: &M) -> Result<Target, CallError> {
        if self.node.closing.load(Ordering::Relaxed) {
            return Err(CallError::ShuttingDown);
        }
        let entry = self.entry()?;
        let index =
            entry
                .type_index(TypeId::of::<M>())
                .ok_or_else(|| CallError::UnhandledMessage {
                    service: self.name.to_string(),
                    message: std::any::type_name::<M>(),
                })?;
        let guard = match (entry.keyed_routing, entry.types[index].key) {
            (true, Some(key_of)) => entry.pick_keyed(key_of(msg as &dyn Any)),
            _ => entry.pick_round_robin(),
        };
        let guard = guard.ok_or_else(|| CallError::NoInstance {
            service: self.name.to_string(),
        })?;
        Ok(Target { guard, index })
    }

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

    /// Sends `msg` without waiting for a reply or for mailbox room (like
    /// actix `do_send`).
    ///
    /// # Errors
    /// Only when no instance can take it: unknown service, unhandled message,
    /// no live instance, shutdown.
    #[inline]
    pub fn tell<M>(&self, msg: M) -> Result<(), CallError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
    {
        self.tell_with(msg, Metadata::default())
    }

    /// [`tell`](Self::tell) with metadata.
    ///
    /// # Errors
    /// As [`tell`](Self::tell).
    pub fn tell_with<M>(&self, msg: M, meta: Metadata) -> Result<(), CallError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
    {
        let target = self.route(&msg)?;
        let r = target
            .recipient::<M>()
            .ok_or_else(|| self.unhandled::<M>())?;
        if !r.connected() {
            return Err(CallError::NoInstance {
                service: self.name.to_string(),
            });
        }
        r.do_send(Envelope { msg, meta });
        Ok(())
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
        let mut pending = Vec::new();
        for inst in entry.all_live() {
            let Some(r) = inst
                .recipients
                .get(index)
                .and_then(|r| r.downcast_ref::<Recipient<Envelope<M>>>())
            else {
                continue;
            };
            let deadline_ms = self.node.deadlines.clock().after(timeout);
            let mut meta = Metadata::default();
            meta.set_deadline_if_none(self.node.deadlines.clock().instant_at(deadline_ms));
            let req = r.send(Envelope {
                msg: msg.clone(),
                meta,
            });
            pending.push(AskFuture {
                state: State::Sent { req },
                svc: self,
                deadline_ms,
                timeout,
                ticket: TicketGuard {
                    deadlines: &self.node.deadlines,
                    ticket: None,
                },
            });
        }
        let mut out = Vec::with_capacity(pending.len());
        for p in pending {
            out.push(p.await);
        }
        Ok(out)
    }

    fn unhandled<M>(&self) -> CallError {
        CallError::UnhandledMessage {
            service: self.name.to_string(),
            message: std::any::type_name::<M>(),
        }
    }

    fn map_mailbox_error(&self, e: MailboxError) -> CallError {
        match e {
            MailboxError::Closed if self.node.closing.load(Ordering::Relaxed) => {
                CallError::ShuttingDown
            }
            MailboxError::Closed => CallError::InstanceDied {
                service: self.name.to_string(),
            },
            MailboxError::Timeout => CallError::Timeout {
                service: self.name.to_string(),
                after: Duration::ZERO,
            },
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
        let timeout = self.timeout.unwrap_or(svc.node.default_timeout);
        let clock = svc.node.deadlines.clock();
        let mut deadline_ms = clock.after(timeout);
        let ticket = TicketGuard {
            deadlines: &svc.node.deadlines,
            ticket: None,
        };
        let state = match svc.route(&self.msg) {
            Err(e) => State::Failed(Some(e)),
            Ok(target) => match target.recipient::<M>() {
                None => State::Failed(Some(svc.unhandled::<M>())),
                Some(r) => {
                    let mut meta = self.meta.unwrap_or_default();
                    match meta.deadline() {
                        Some(d) if d < clock.instant_at(deadline_ms) => {
                            // An earlier deadline from upstream wins.
                            deadline_ms = clock.now_ms().saturating_add(
                                u64::try_from(d.saturating_duration_since(clock.now()).as_millis())
                                    .unwrap_or(0),
                            );
                        }
                        _ => meta.set_deadline_if_none(clock.instant_at(deadline_ms)),
                    }
                    State::Sent {
                        req: r.send(Envelope {
                            msg: self.msg,
                            meta,
                        }),
                    }
                }
            },
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

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<M>
    where
        M: Message,
        M: Send,
        M: 'static,
        M::Result: Send,
    {
        Failed { err: Option<CallError> },
        Sent { #[pin] req: RecipientRequest<Envelope<M>> },
    }
}

#[allow(non_snake_case)]
impl<M> State<M>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    fn Failed(err: Option<CallError>) -> Self {
        Self::Failed { err }
    }
}

/// Cancels a deadline registration when the ask completes or is dropped.
struct TicketGuard<'a> {
    deadlines: &'a Deadlines,
    ticket: Option<Ticket>,
}

impl Drop for TicketGuard<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.ticket.take() {
            self.deadlines.cancel(t);
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
        state: State<M>,
        svc: &'a ServiceRef,
        deadline_ms: u64,
        timeout: Duration,
        ticket: TicketGuard<'a>,
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
        match this.state.project() {
            StateProj::Failed { err } => {
                Poll::Ready(Err(err.take().unwrap_or(CallError::ShuttingDown)))
            }
            StateProj::Sent { req } => match req.poll(cx) {
                Poll::Ready(r) => {
                    if let Some(t) = this.ticket.ticket.take() {
                        this.ticket.deadlines.cancel(t);
                    }
                    Poll::Ready(match r {
                        Ok(Ok(v)) => Ok(v),
                        Ok(Err(HandlerFailure::Panicked(message))) => {
                            Err(CallError::HandlerPanicked {
                                service: svc.name.to_string(),
                                message,
                            })
                        }
                        Ok(Err(HandlerFailure::Expired)) => Err(CallError::Timeout {
                            service: svc.name.to_string(),
                            after: *this.timeout,
                        }),
                        Err(e) => Err(svc.map_mailbox_error(e)),
                    })
                }
                Poll::Pending => {
                    let deadlines = this.ticket.deadlines;
                    if deadlines.clock().now_ms() >= *this.deadline_ms {
                        if let Some(t) = this.ticket.ticket.take() {
                            deadlines.cancel(t);
                        }
                        return Poll::Ready(Err(CallError::Timeout {
                            service: svc.name.to_string(),
                            after: *this.timeout,
                        }));
                    }
                    match this.ticket.ticket {
                        Some(t) => deadlines.update(t, cx.waker()),
                        None => {
                            this.ticket.ticket =
                                Some(deadlines.register(*this.deadline_ms, cx.waker()))
                        }
                    }
                    Poll::Pending
                }
            },
        }
    }
}
