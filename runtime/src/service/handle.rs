//! `ServiceRef`: a location-transparent handle to a service by name.

use std::any::{Any, TypeId};
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use actix::dev::RecipientRequest;
use actix::{MailboxError, Message};

use super::actor::Envelope;
use super::room::RoomWaiter;
use super::send::{AskFn, ReplyRx, SendFns};
use super::sender_cache::with_sender;
use crate::registry::Instance;
use actix::prelude::SendError;

use super::reply::HandlerFailure;
use crate::deadline::{Deadlines, Ticket, TicketStatus};
use crate::error::CallError;
use crate::metadata::Metadata;
use crate::node::NodeShared;
use crate::registry::{InstanceGuard, RemoteInstance, ServiceEntry};
use crate::remote::frame::{Frame, Route as WireRoute, StaticName};
use crate::remote::peer::{Peer, RemoteReply};
use crate::remote::wire::{wire_meta, wire_meta_tell, WireCodec};
use crate::remote::wire_error::CallSite;
use tokio::sync::oneshot;

mod bounded;
mod inbound;

pub(crate) use bounded::FullTell;

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
    /// Serves inbound remote calls: never forwards to another node.
    local_only: bool,
}

/// The entry a call uses: the cached one, or a fresh lookup when a local
/// spawn replaced the remote-only entry this handle cached.
enum EntryRef<'a> {
    Cached(&'a Arc<ServiceEntry>),
    Fresh(Arc<ServiceEntry>),
}

impl std::ops::Deref for EntryRef<'_> {
    type Target = Arc<ServiceEntry>;
    #[inline]
    fn deref(&self) -> &Arc<ServiceEntry> {
        match self {
            Self::Cached(e) => e,
            Self::Fresh(e) => e,
        }
    }
}

/// Where a call goes.
enum Route {
    Local(Target),
    Remote(Arc<RemoteInstance>, WireCodec),
}

impl std::fmt::Debug for ServiceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceRef")
            .field("name", &self.name)
            .finish()
    }
}

/// A picked local instance and the index of the message type.
struct Target {
    guard: InstanceGuard,
    index: usize,
}

impl Target {
    /// The picked instance.
    #[inline]
    fn instance(&self) -> Option<&Instance> {
        self.guard.as_deref()
    }
}

/// The send functions of `M` registered on `entry`.
#[inline]
fn fns<M>(entry: &ServiceEntry, index: usize) -> Option<SendFns<M>>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    entry.types[index]
        .send
        .as_deref()
        .and_then(|f| f.downcast_ref::<SendFns<M>>())
        .copied()
}

impl ServiceRef {
    pub(crate) fn new(node: Arc<NodeShared>, name: &str) -> Self {
        Self {
            node,
            name: Arc::from(name),
            entry: OnceLock::new(),
            local_only: false,
        }
    }

    /// A handle that only reaches this node's instances (for serving calls
    /// that came from another node).
    pub(crate) fn local_only(node: Arc<NodeShared>, entry: Arc<ServiceEntry>) -> Self {
        let mut r = Self::with_entry(node, entry);
        r.local_only = true;
        r
    }

    pub(crate) fn with_entry(node: Arc<NodeShared>, entry: Arc<ServiceEntry>) -> Self {
        let cell = OnceLock::new();
        let name = entry.name_arc().clone();
        let _ = cell.set(entry);
        Self {
            node,
            name,
            entry: cell,
            local_only: false,
        }
    }

    /// The service name.
    pub fn name(&self) -> &str {
        &self.name
    }

    #[inline]
    /// Records the latency of an ask served for an outside caller (a JSON
    /// call, a remote node) in the service's histogram.
    pub(crate) fn record_ask_latency(&self, d: Duration) {
        if let Ok(e) = self.entry() {
            e.stats.ask_latency.record(d);
        }
    }

    fn entry(&self) -> Result<EntryRef<'_>, CallError> {
        if let Some(e) = self.entry.get() {
            if !e.is_replaced() {
                return Ok(EntryRef::Cached(e));
            }
        }
        let e = self
            .node
            .registry
            .get(&self.name)
            .ok_or_else(|| CallError::UnknownService {
                service: self.name.to_string(),
            })?;
        if self.entry.get().is_none() {
            return Ok(EntryRef::Cached(self.entry.get_or_init(|| e)));
        }
        Ok(EntryRef::Fresh(e))
    }

    /// The entry for the local fast path: cached, round-robin, no remote
    /// instance, not shutting down. `None` sends the call down the general
    /// path.
    #[inline]
    fn fast_entry(&self) -> Option<&ServiceEntry> {
        // The flag is also set while the node shuts down (`Registry::close`).
        self.entry
            .get()
            .map(|e| &**e)
            .filter(|e| !e.needs_slow_path())
    }

    #[cold]
    fn no_instance(&self) -> CallError {
        CallError::NoInstance {
            service: self.name.to_string(),
        }
    }

    /// Routes a message of type `M`: a live local instance if there is one
    /// (or the rendezvous winner for a keyed message), else a remote one.
    #[inline]
    fn route<M: Message + Send + 'static>(&self, msg: &M) -> Result<Route, CallError> {
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
                (true, Some(key_of)) => entry.pick_keyed(key_of(msg as &dyn Any)),
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
    #[inline]
    pub fn tell_with<M>(&self, msg: M, meta: Metadata) -> Result<(), CallError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
    {
        let Some(entry) = self.fast_entry() else {
            return self.tell_slow(msg, meta);
        };
        match with_sender::<M, _, _>(entry, Envelope { msg, meta }, |to, env| to.tell(env)) {
            Ok(()) => Ok(()),
            // A dead or replaced instance: the general path re-reads the slots.
            Err(Some(e)) => self.tell_slow(e.msg, e.meta),
            Err(None) => Err(self.no_instance()),
        }
    }

    /// Everything but the local fast path: errors, keyed routing, remote
    /// instances, a replaced entry.
    #[cold]
    fn tell_slow<M>(&self, msg: M, meta: Metadata) -> Result<(), CallError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
    {
        match self.route(&msg)? {
            Route::Local(target) => {
                let entry = self.entry()?;
                let f = fns::<M>(&entry, target.index).ok_or_else(|| self.unhandled::<M>())?;
                let sender = target.instance().ok_or_else(|| self.no_instance())?;
                (f.tell)(sender, Envelope { msg, meta }).map_err(|_| self.no_instance())
            }
            Route::Remote(r, codec) => {
                let frame = self.tell_frame(codec, &msg, &meta)?;
                self.live_peer(&r).send(frame)
            }
        }
    }

    /// The frame of a tell to a remote instance.
    fn tell_frame<M: 'static>(
        &self,
        codec: WireCodec,
        msg: &M,
        meta: &Metadata,
    ) -> Result<Frame, CallError> {
        let payload = (codec.encode)(msg as &dyn Any).map_err(|e| CallError::Codec {
            service: self.name.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Frame::Tell {
            route: self.wire_route(codec),
            // A tell has no caller waiting: only an explicit
            // deadline travels (it still drops late work).
            meta: wire_meta_tell(meta),
            payload,
        })
    }

    /// The route of a call to this service with `codec`'s message, as the
    /// connection's writer turns it into its wire form (names or an id).
    fn wire_route(&self, codec: WireCodec) -> WireRoute {
        WireRoute::Local {
            service: self.name.clone(),
            message: StaticName(codec.wire_name),
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

    fn send_remote<M>(
        &self,
        r: &Arc<RemoteInstance>,
        codec: WireCodec,
        msg: &M,
        meta: &Metadata,
        timeout: Duration,
    ) -> State<M>
    where
        M: Message + Send + 'static,
        M::Result: Send,
    {
        let payload = match (codec.encode)(msg as &dyn Any) {
            Ok(p) => p,
            Err(e) => {
                return State::Failed(Some(CallError::Codec {
                    service: self.name.to_string(),
                    reason: e.to_string(),
                }))
            }
        };
        let peer = self.live_peer(r);
        let asked = peer.ask(|id| Frame::Ask {
            id,
            route: self.wire_route(codec),
            meta: wire_meta(meta, timeout),
            payload,
        });
        match asked {
            Ok((id, rx)) => State::Remote {
                call: Box::new(RemoteCall {
                    peer,
                    id,
                    rx,
                    decode: codec.decode_result,
                }),
            },
            Err(e) => State::Failed(Some(e)),
        }
    }

    /// The current connection to the instance's node: a replaced duplicate
    /// connection must not fail calls the new one can carry.
    fn live_peer(&self, r: &RemoteInstance) -> Arc<Peer> {
        self.node
            .remote
            .as_ref()
            .and_then(|rem| rem.peer(&r.peer.info.name))
            .filter(|p| !p.is_down())
            .unwrap_or_else(|| r.peer.clone())
    }

    fn unhandled<M>(&self) -> CallError {
        CallError::UnhandledMessage {
            service: self.name.to_string(),
            message: std::any::type_name::<M>(),
        }
    }

    /// A pending ask: time out if the deadline passed, else make sure the
    /// sweeper will wake it at the deadline.
    #[inline]
    fn pending_or_timeout<T>(
        &self,
        ticket: &mut TicketGuard<'_>,
        deadline_ms: u64,
        timeout: Duration,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, CallError>> {
        // First wait (the common case): register, unless already late.
        if ticket.ticket.is_none() {
            if ticket.deadlines.clock().now_ms() >= deadline_ms {
                return Poll::Ready(Err(self.timed_out(timeout)));
            }
            ticket.ticket = Some(ticket.deadlines.register(deadline_ms, cx.waker()));
            return Poll::Pending;
        }
        self.pending_again(ticket, deadline_ms, timeout, cx)
    }

    /// A later wait: timed out if the sweeper fired the registration or the
    /// deadline passed; else the registration follows the task's waker (a
    /// lost one, after the future moved threads, is made again).
    #[cold]
    fn pending_again<T>(
        &self,
        ticket: &mut TicketGuard<'_>,
        deadline_ms: u64,
        timeout: Duration,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, CallError>> {
        let deadlines = ticket.deadlines;
        let status = ticket.ticket.map(|t| deadlines.status(t));
        if status == Some(TicketStatus::Lost) {
            ticket.ticket = None;
        }
        if status == Some(TicketStatus::Fired) || deadlines.clock().now_ms() >= deadline_ms {
            ticket.cancel();
            return Poll::Ready(Err(self.timed_out(timeout)));
        }
        match ticket.ticket {
            Some(t) => deadlines.update(t, cx.waker()),
            None => ticket.ticket = Some(deadlines.register(deadline_ms, cx.waker())),
        }
        Poll::Pending
    }

    #[cold]
    fn timed_out(&self, timeout: Duration) -> CallError {
        CallError::Timeout {
            service: self.name.to_string(),
            after: timeout,
        }
    }

    /// Puts an ask into a local instance's mailbox.
    #[inline]
    fn send_local<M>(&self, target: Target, env: Envelope<M>) -> State<M>
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

    /// The caller's view of a handler's reply.
    #[inline(always)]
    fn map_reply<M: Message>(
        &self,
        r: Result<M::Result, HandlerFailure>,
        timeout: Duration,
    ) -> Result<M::Result, CallError> {
        match r {
            Ok(v) => Ok(v),
            Err(f) => Err(self.map_failure(f, timeout)),
        }
    }

    #[cold]
    fn map_failure(&self, f: HandlerFailure, timeout: Duration) -> CallError {
        match f {
            HandlerFailure::Panicked(message) => CallError::HandlerPanicked {
                service: self.name.to_string(),
                message,
            },
            HandlerFailure::Expired => CallError::Timeout {
                service: self.name.to_string(),
                after: timeout,
            },
        }
    }

    /// The instance's mailbox closed under the call.
    fn map_closed(&self) -> CallError {
        if self.node.closing.load(Ordering::Relaxed) {
            CallError::ShuttingDown
        } else {
            CallError::InstanceDied {
                service: self.name.to_string(),
            }
        }
    }

    /// An actix request's failure; `timeout` is the one that applied to the call.
    fn map_mailbox_error(&self, e: MailboxError, timeout: Duration) -> CallError {
        match e {
            MailboxError::Closed => self.map_closed(),
            MailboxError::Timeout => self.timed_out(timeout),
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
        let ticket = TicketGuard {
            deadlines: &svc.node.deadlines,
            ticket: None,
        };
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
                    Err(SendError::Full(env)) => Ok(Err((env, to.instance().clone()))),
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
    fn full_state<M>(&self, entry: &ServiceEntry, env: Envelope<M>, inst: Arc<Instance>) -> State<M>
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
    fn slow_state<M>(&self, msg: M, meta: Metadata, timeout: Duration) -> State<M>
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
    enum State<M>
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
    fn Failed(err: Option<CallError>) -> Self {
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

/// A remote ask in flight; dropping it forgets the pending entry.
struct RemoteCall {
    peer: Arc<Peer>,
    id: u64,
    rx: oneshot::Receiver<RemoteReply>,
    decode: fn(&[u8]) -> crate::remote::wire::AnyResult,
}

impl Drop for RemoteCall {
    fn drop(&mut self) {
        self.peer.cancel(self.id);
    }
}

/// Cancels a deadline registration when the ask completes or is dropped.
struct TicketGuard<'a> {
    deadlines: &'a Deadlines,
    ticket: Option<Ticket>,
}

impl TicketGuard<'_> {
    #[inline]
    fn cancel(&mut self) {
        if let Some(t) = self.ticket.take() {
            self.deadlines.cancel(t);
        }
    }
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
                    svc.pending_or_timeout(this.ticket, *this.deadline_ms, *this.timeout, cx)
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
            StateProj::Remote { call } => match Pin::new(&mut call.rx).poll(cx) {
                Poll::Ready(r) => {
                    let node = &call.peer.info.name;
                    Poll::Ready(match r {
                        Ok(Ok(bytes)) => {
                            match (call.decode)(&bytes).map(|b| b.downcast::<M::Result>()) {
                                Ok(Ok(v)) => Ok(*v),
                                Ok(Err(_)) | Err(_) => Err(CallError::Codec {
                                    service: svc.name.to_string(),
                                    reason: "the reply does not decode as the result type".into(),
                                }),
                            }
                        }
                        Ok(Err(e)) => Err(e.into_call_error(&CallSite {
                            service: &svc.name,
                            message: std::any::type_name::<M>(),
                            node,
                            timeout: *this.timeout,
                        })),
                        Err(_) => Err(CallError::NodeDown { node: node.clone() }),
                    })
                }
                Poll::Pending => Poll::Pending,
            },
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
                svc.pending_or_timeout(this.ticket, *this.deadline_ms, *this.timeout, cx)
            }
        }
    }
}
