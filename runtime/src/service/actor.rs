//! The `Service`/`Handler` traits and the actix actor around them.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use actix::{Actor, Context, Message};

use super::context::ServiceContext;
use super::reply::{HandlerFailure, Reply, ReplyResponse};
use super::NodeShared;
use crate::lifecycle::{ExitNotice, ExitReason, KillSwitch, OnExit};
use crate::metadata::Metadata;
use crate::registry::{InstanceId, ServiceEntry};
use crate::stats::ServiceStats;

/// A service: plain state plus lifecycle hooks. msa wraps it in
/// [`ServiceActor`], an actix actor it owns, so that it can detect failures,
/// count messages and hand every handler the call's [`Metadata`].
///
/// A panic in any hook (or handler) fails this instance only; its supervisor
/// replaces it with a fresh value from the factory.
pub trait Service: Sized + Unpin + 'static {
    /// Called once the instance runs, before its first message.
    fn started(&mut self, ctx: &mut ServiceContext<'_, Self>) {
        let _ = ctx;
    }

    /// Called when the instance is asked to stop.
    fn stopping(&mut self, ctx: &mut ServiceContext<'_, Self>) {
        let _ = ctx;
    }

    /// Called after the instance stopped; its mailbox is closed.
    fn stopped(&mut self, ctx: &mut ServiceContext<'_, Self>) {
        let _ = ctx;
    }
}

/// Handles messages of type `M`.
///
/// # Examples
/// ```
/// use msa_runtime::{Handler, Reply, Service, ServiceContext};
///
/// #[derive(actix::Message)]
/// #[rtype(result = "u64")]
/// struct Incr;
///
/// #[derive(Default)]
/// struct Counter(u64);
/// impl Service for Counter {}
/// impl Handler<Incr> for Counter {
///     fn handle(&mut self, _: Incr, _ctx: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
///         self.0 += 1;
///         Reply::ready(self.0)
///     }
/// }
/// ```
pub trait Handler<M: Message>: Service {
    /// Handles one message. `ctx` gives the call's metadata (caller identity,
    /// trace, deadline) and the actix context.
    fn handle(&mut self, msg: M, ctx: &mut ServiceContext<'_, Self>) -> Reply<Self, M::Result>;
}

/// A message together with the metadata of its call. msa sends these; a
/// service never sees one (its handler gets the message and a context).
#[derive(Debug)]
pub struct Envelope<M> {
    pub(crate) msg: M,
    pub(crate) meta: Metadata,
}

impl<M: Message> Message for Envelope<M> {
    type Result = Result<M::Result, HandlerFailure>;
}

/// Asks an instance to stop once it has handled what is already queued.
#[derive(Debug)]
pub(crate) struct StopInstance;

impl Message for StopInstance {
    type Result = ();
}

/// The actix actor msa runs for every service instance. It dereferences to
/// the service, so actor futures (`Reply::act`) can reach the state.
pub struct ServiceActor<S> {
    service: S,
    pub(crate) shared: Arc<InstanceShared>,
    /// The instance's entry and slot (also in `shared`), kept in the actor
    /// so that a plain message reads nothing behind `shared`: round-robin
    /// over 10,000 instances found each one's `InstanceShared` out of cache,
    /// a miss per message (issue 12).
    entry: Arc<ServiceEntry>,
    slot: usize,
}

impl<S> std::fmt::Debug for ServiceActor<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceActor")
            .field("service", &self.shared.entry.name())
            .field("instance", &self.shared.id)
            .finish()
    }
}

/// What an instance shares with msa: its identity, its service's entry and
/// counters, the node, and whom to tell once it runs and once it ended
/// (it is also what its task reports its end to: one allocation for both).
#[derive(Debug)]
pub(crate) struct InstanceShared {
    pub(crate) id: InstanceId,
    pub(crate) entry: Arc<ServiceEntry>,
    pub(crate) node: Arc<NodeShared>,
    pub(crate) notice: ExitNotice,
    /// Kills the instance (its task and its supervisor reach it here).
    pub(crate) kill: KillSwitch,
}

impl OnExit for InstanceShared {
    /// Leaves the registry slot, on the instance's own thread, before its
    /// mailbox closes.
    fn ended(&self) {
        self.entry.clear_slot_if(self.id.slot, self.id);
    }

    fn exited(&self, reason: ExitReason) {
        self.notice.send(reason);
    }

    fn kill_switch(&self) -> &KillSwitch {
        &self.kill
    }
}

impl<S> ServiceActor<S> {
    pub(crate) fn new(service: S, shared: Arc<InstanceShared>) -> Self {
        Self {
            service,
            entry: shared.entry.clone(),
            slot: shared.id.slot,
            shared,
        }
    }
}

impl<S> Deref for ServiceActor<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.service
    }
}

impl<S> DerefMut for ServiceActor<S> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.service
    }
}

impl<S: Service> Actor for ServiceActor<S> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let shared = self.shared.clone();
        let mut sctx = ServiceContext::new(ctx, None, &shared);
        self.service.started(&mut sctx);
        shared.notice.ready();
    }

    fn stopping(&mut self, ctx: &mut Context<Self>) -> actix::Running {
        let shared = self.shared.clone();
        let mut sctx = ServiceContext::new(ctx, None, &shared);
        self.service.stopping(&mut sctx);
        actix::Running::Stop
    }

    fn stopped(&mut self, ctx: &mut Context<Self>) {
        let shared = self.shared.clone();
        let mut sctx = ServiceContext::new(ctx, None, &shared);
        self.service.stopped(&mut sctx);
    }
}

impl<S, M> actix::Handler<Envelope<M>> for ServiceActor<S>
where
    S: Handler<M>,
    M: Message + 'static,
    M::Result: Send,
{
    type Result = ReplyResponse<S, M::Result>;

    #[inline]
    fn handle(&mut self, env: Envelope<M>, ctx: &mut Context<Self>) -> Self::Result {
        if env.meta.has_extra() {
            if let Err(reason) = self.check_access::<M>(&env.meta) {
                super::span::refused::<M>(&self.shared, &env.meta, "denied");
                return ReplyResponse::denied(reason);
            }
        }
        match self.call(env, ctx) {
            Some(reply) => ReplyResponse::new(reply, &self.shared),
            None => ReplyResponse::expired(),
        }
    }
}

impl<S: Service> ServiceActor<S> {
    /// Checks the service's access rule for `M` against a call that carries
    /// an identity, a calling service or the outside mark
    /// (docs/security.md, "Access rules at each service"); a refused call is
    /// taken from the mailbox (counted as such, and as denied), logged with
    /// both identities, and never reaches the handler.
    #[inline(never)]
    pub(super) fn check_access<M: 'static>(&self, meta: &Metadata) -> Result<(), String> {
        let entry = &self.shared.entry;
        if !meta.needs_access_check() {
            return Ok(());
        }
        let Some(i) = entry.type_index(std::any::TypeId::of::<M>()) else {
            return Ok(());
        };
        let Some(rule) = entry.rule(i) else {
            return Ok(());
        };
        let ty = &entry.types[i];
        let message = ty.wire_name.unwrap_or(ty.type_name);
        crate::access::check(rule, meta, entry.name(), message).map_err(|d| {
            entry.count_message(self.shared.id.slot);
            ServiceStats::inc(&entry.stats.denied);
            ServiceStats::inc(&entry.stats.denied_taken);
            d.reason
        })
    }

    /// Counts a message taken from the mailbox and runs its handler; `None`
    /// when the message's deadline had passed (counted as expired, not
    /// handled).
    #[inline(always)]
    pub(super) fn call<M>(
        &mut self,
        env: Envelope<M>,
        ctx: &mut Context<Self>,
    ) -> Option<Reply<S, M::Result>>
    where
        S: Handler<M>,
        M: Message + 'static,
    {
        self.entry.count_message(self.slot);
        if let Some(deadline) = env.meta.deadline_ms() {
            let shared = &self.shared;
            if deadline <= shared.node.deadlines.clock().now_ms() {
                ServiceStats::inc(&shared.entry.stats.expired);
                if env.meta.has_extra() {
                    super::span::refused::<M>(shared, &env.meta, "timeout");
                }
                return None;
            }
        }
        if env.meta.has_extra() {
            return Some(self.call_traced(env, ctx));
        }
        let Envelope { msg, meta } = env;
        let mut sctx = ServiceContext::new(ctx, Some(&meta), &self.shared);
        Some(self.service.handle(msg, &mut sctx))
    }

    /// [`Self::call`] for a message with an identity or a trace: a traced
    /// call (e.g. from the gateway, maybe on another node) runs its handler
    /// inside a span carrying the trace id, so one request can be followed
    /// across nodes in the logs, and gets a span of its own in the node's
    /// span ring (a new span id, the caller's as its parent; the calls the
    /// handler makes with [`ServiceContext::propagate`] carry the new one),
    /// recorded when its reply is produced. Kept out of line: plain calls
    /// skip it.
    #[inline(never)]
    fn call_traced<M>(&mut self, env: Envelope<M>, ctx: &mut Context<Self>) -> Reply<S, M::Result>
    where
        S: Handler<M>,
        M: Message + 'static,
    {
        let Envelope { msg, meta } = env;
        let shared = self.shared.clone();
        let Some(t) = meta.trace() else {
            let mut sctx = ServiceContext::new(ctx, Some(&meta), &shared);
            return self.service.handle(msg, &mut sctx);
        };
        let _span = call_span(t, &shared).entered();
        let message = super::span::message_name::<M>(&shared);
        let (served, meta) = super::span::ServedSpan::start(&shared, meta, t, message);
        let mut sctx = ServiceContext::new(ctx, Some(&meta), &shared);
        // A panic in the handler drops `served`, which records it as such.
        let reply = self.service.handle(msg, &mut sctx);
        match served {
            Some(served) => reply.recording(served),
            None => reply,
        }
    }
}

/// The span of a traced call: its trace id (32 hex digits, as the gateway
/// logs it), the caller's span id, and where it runs.
#[cold]
fn call_span(t: crate::TraceContext, shared: &InstanceShared) -> tracing::Span {
    tracing::info_span!(
        "call",
        trace_id = %format_args!("{:032x}", t.trace_id),
        parent_span = %format_args!("{:016x}", t.parent_span_id),
        node = %shared.node.name,
        service = %shared.entry.name(),
        instance = shared.id.slot,
    )
}

/// A message sent with `tell`: nobody waits, so the handler's reply is
/// dropped (or its future run to completion) right in the handler, with no
/// response plumbing.
#[derive(Debug)]
pub struct TellEnvelope<M>(pub(crate) Envelope<M>);

impl<M: Message> Message for TellEnvelope<M> {
    type Result = ();
}

impl<S, M> actix::Handler<TellEnvelope<M>> for ServiceActor<S>
where
    S: Handler<M>,
    M: Message + 'static,
    M::Result: Send,
{
    type Result = ();

    #[inline]
    fn handle(&mut self, TellEnvelope(env): TellEnvelope<M>, ctx: &mut Context<Self>) {
        if env.meta.has_extra() && self.check_access::<M>(&env.meta).is_err() {
            // Nobody waits for a tell: refused, logged and counted.
            return;
        }
        if let Some(reply) = self.call(env, ctx) {
            reply.run_unobserved(ctx, &self.shared);
        }
    }
}

impl<S: Service> actix::Handler<StopInstance> for ServiceActor<S> {
    type Result = ();

    fn handle(&mut self, _: StopInstance, ctx: &mut Context<Self>) {
        use actix::ActorContext;
        ctx.stop();
    }
}
