//! What a handler returns, and how msa delivers it.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use actix::dev::{MessageResponse, OneshotSender};
use actix::fut::{ActorFuture, ActorFutureExt};
use actix::{AsyncContext, Context, Message};
use futures_util::FutureExt;

use super::actor::{Envelope, InstanceShared, ServiceActor};
use crate::lifecycle::panic_message;
use crate::stats::ServiceStats;

/// Why a handler produced no value, as seen by msa's call path.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandlerFailure {
    /// The detached future of [`Reply::future`] panicked.
    Panicked(String),
    /// The message's deadline had passed when it reached the front of the mailbox.
    Expired,
    /// The service's access rule refused the caller (why, for the caller).
    Denied(String),
}

type BoxFut<R> = Pin<Box<dyn Future<Output = R>>>;
type BoxActFut<S, R> = Pin<Box<dyn ActorFuture<ServiceActor<S>, Output = R>>>;

enum Kind<S, R> {
    Ready(R),
    Future(BoxFut<R>),
    Act(BoxActFut<S, R>),
    Atomic(BoxActFut<S, R>),
}

/// A handler's answer: a value now, or a future.
///
/// | constructor | runs | a panic in it |
/// |---|---|---|
/// | [`ready`](Reply::ready) | — | (the handler itself panicked) fails the instance |
/// | [`future`](Reply::future) | detached from the actor, concurrently with later messages | fails that request only: the caller gets `CallError::HandlerPanicked` |
/// | [`act`](Reply::act) | inside the actor (may touch its state), concurrently | fails the instance |
/// | [`atomic`](Reply::atomic) | inside the actor, blocking later messages until done | fails the instance |
pub struct Reply<S, R> {
    kind: Kind<S, R>,
}

impl<S, R> std::fmt::Debug for Reply<S, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let k = match self.kind {
            Kind::Ready(_) => "ready",
            Kind::Future(_) => "future",
            Kind::Act(_) => "act",
            Kind::Atomic(_) => "atomic",
        };
        f.debug_struct("Reply").field("kind", &k).finish()
    }
}

impl<S: crate::Service, R: 'static> Reply<S, R> {
    /// The value, now.
    #[inline]
    pub fn ready(value: R) -> Self {
        Self {
            kind: Kind::Ready(value),
        }
    }

    /// A future run apart from the actor (it cannot touch the actor's state).
    pub fn future<F>(fut: F) -> Self
    where
        F: Future<Output = R> + 'static,
    {
        Self {
            kind: Kind::Future(Box::pin(fut)),
        }
    }

    /// An actor future that may read and change the service's state while it
    /// runs (actix's `ResponseActFuture`); other messages are handled meanwhile.
    pub fn act<F>(fut: F) -> Self
    where
        F: ActorFuture<ServiceActor<S>, Output = R> + 'static,
    {
        Self {
            kind: Kind::Act(Box::pin(fut)),
        }
    }

    /// An actor future that holds the actor until it completes (actix's
    /// `AtomicResponse`): no other message is handled meanwhile.
    pub fn atomic<F>(fut: F) -> Self
    where
        F: ActorFuture<ServiceActor<S>, Output = R> + 'static,
    {
        Self {
            kind: Kind::Atomic(Box::pin(fut)),
        }
    }
}

impl<S: crate::Service, R: 'static> Reply<S, R> {
    /// The future of an atomic reply (so that a batch can chain the rest of
    /// its tells behind it, `service/batch.rs`); any other reply back.
    pub(crate) fn into_atomic(self) -> Result<BoxActFut<S, R>, Self> {
        match self.kind {
            Kind::Atomic(fut) => Ok(fut),
            kind => Err(Self { kind }),
        }
    }

    /// Completes a reply nobody waits for (a tell): a value is dropped, a
    /// future still runs (a detached one under `catch_unwind`, counted if it
    /// panics), an actor future still runs in the actor.
    ///
    /// A value is dropped right here, in the handler of the tell: only a
    /// future takes the call to [`Self::run_future_unobserved`] (issue 12:
    /// out of line, the call and the move of the reply cost every tell
    /// about 20 instructions).
    #[inline(always)]
    pub(crate) fn run_unobserved(
        self,
        ctx: &mut Context<ServiceActor<S>>,
        shared: &Arc<InstanceShared>,
    ) {
        // Moved out by value: the value's own drop, inline (a `Ready(())`
        // drops nothing), not a call to drop the whole reply.
        match self.kind {
            Kind::Ready(value) => drop(value),
            kind => Self { kind }.run_future_unobserved(ctx, shared),
        }
    }

    /// [`Self::run_unobserved`] for a future (a value is dropped).
    #[inline(never)]
    fn run_future_unobserved(
        self,
        ctx: &mut Context<ServiceActor<S>>,
        shared: &Arc<InstanceShared>,
    ) {
        match self.kind {
            Kind::Ready(_) => {}
            Kind::Future(fut) => {
                let shared = shared.clone();
                actix_rt::spawn(async move {
                    if let Err(payload) = AssertUnwindSafe(fut).catch_unwind().await {
                        count_detached_panic(&shared, &panic_message(&*payload));
                    }
                });
            }
            Kind::Act(fut) => {
                ctx.spawn(fut.map(|_, _, _| ()));
            }
            Kind::Atomic(fut) => {
                ctx.wait(fut.map(|_, _, _| ()));
            }
        }
    }
}

impl<S: crate::Service, R: 'static> Reply<S, R> {
    /// The same reply, recording `span` when it produces its value (now
    /// for a ready value, when the future completes otherwise; a future
    /// that panics or is dropped records it as such).
    pub(crate) fn recording(self, span: super::span::ServedSpan) -> Self {
        let kind = match self.kind {
            Kind::Ready(v) => {
                span.finish("ok");
                Kind::Ready(v)
            }
            Kind::Future(fut) => Kind::Future(Box::pin(async move {
                let v = fut.await;
                span.finish("ok");
                v
            })),
            Kind::Act(fut) => Kind::Act(Box::pin(fut.map(move |v, _, _| {
                span.finish("ok");
                v
            }))),
            Kind::Atomic(fut) => Kind::Atomic(Box::pin(fut.map(move |v, _, _| {
                span.finish("ok");
                v
            }))),
        };
        Self { kind }
    }
}

/// Counts and logs a panic in a detached handler future.
fn count_detached_panic(shared: &InstanceShared, message: &str) {
    ServiceStats::inc(&shared.entry.stats.panicked_requests);
    tracing::warn!(
        service = shared.entry.name(),
        instance = %shared.id,
        panic = %message,
        "detached handler future panicked; the instance lives on"
    );
}

/// The actix response type msa's handler wrapper returns.
pub struct ReplyResponse<S, R> {
    inner: Inner<S, R>,
}

/// Flat on purpose: the common `Ready` case is one match arm, no nesting.
enum Inner<S, R> {
    Ready(R),
    Future(BoxFut<R>, Arc<InstanceShared>),
    Act(BoxActFut<S, R>),
    Atomic(BoxActFut<S, R>),
    Expired,
    Denied(String),
}

impl<S, R> std::fmt::Debug for ReplyResponse<S, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplyResponse")
    }
}

impl<S, R> ReplyResponse<S, R> {
    #[inline]
    pub(crate) fn new(reply: Reply<S, R>, shared: &Arc<InstanceShared>) -> Self {
        let inner = match reply.kind {
            Kind::Ready(v) => Inner::Ready(v),
            // Only a detached future needs the counters later.
            Kind::Future(f) => Inner::Future(f, shared.clone()),
            Kind::Act(f) => Inner::Act(f),
            Kind::Atomic(f) => Inner::Atomic(f),
        };
        Self { inner }
    }

    pub(crate) fn expired() -> Self {
        Self {
            inner: Inner::Expired,
        }
    }

    pub(crate) fn denied(reason: String) -> Self {
        Self {
            inner: Inner::Denied(reason),
        }
    }
}

impl<S, M> MessageResponse<ServiceActor<S>, Envelope<M>> for ReplyResponse<S, M::Result>
where
    S: crate::Service,
    M: Message + 'static,
    M::Result: Send,
{
    fn handle(
        self,
        ctx: &mut Context<ServiceActor<S>>,
        tx: Option<OneshotSender<Result<M::Result, HandlerFailure>>>,
    ) {
        let send = move |tx: Option<OneshotSender<_>>, v| {
            if let Some(tx) = tx {
                // The caller may have given up; that is not an error here.
                let _ = tx.send(v);
            }
        };
        match self.inner {
            Inner::Ready(v) => {
                if let Some(tx) = tx {
                    let _ = tx.send(Ok(v));
                }
            }
            Inner::Expired => send(tx, Err(HandlerFailure::Expired)),
            Inner::Denied(reason) => send(tx, Err(HandlerFailure::Denied(reason))),
            Inner::Future(fut, shared) => {
                actix_rt::spawn(async move {
                    match AssertUnwindSafe(fut).catch_unwind().await {
                        Ok(v) => send(tx, Ok(v)),
                        Err(payload) => {
                            let message = panic_message(&*payload);
                            count_detached_panic(&shared, &message);
                            send(tx, Err(HandlerFailure::Panicked(message)));
                        }
                    }
                });
            }
            Inner::Act(fut) => {
                ctx.spawn(fut.map(move |v, _, _| send(tx, Ok(v))));
            }
            Inner::Atomic(fut) => {
                ctx.wait(fut.map(move |v, _, _| send(tx, Ok(v))));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use actix::fut::ActorFutureExt;

    use super::Reply;
    use crate::service::actor::ServiceActor;
    use crate::{Handler, Service, ServiceContext, ServiceSpec};

    /// Counts what its told replies did, in the actor and apart from it.
    struct Kinds {
        detached: Arc<AtomicU64>,
        in_actor: u64,
    }
    impl Service for Kinds {}

    #[derive(actix::Message)]
    #[rtype(result = "u64")]
    struct Now;
    #[derive(actix::Message)]
    #[rtype(result = "u64")]
    struct Later;
    #[derive(actix::Message)]
    #[rtype(result = "u64")]
    struct InActor;
    #[derive(actix::Message)]
    #[rtype(result = "u64")]
    struct Held;
    #[derive(actix::Message)]
    #[rtype(result = "u64")]
    struct Count;

    impl Handler<Now> for Kinds {
        fn handle(&mut self, _: Now, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
            self.in_actor += 1;
            Reply::ready(self.in_actor)
        }
    }
    impl Handler<Later> for Kinds {
        fn handle(&mut self, _: Later, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
            let detached = self.detached.clone();
            Reply::future(async move { detached.fetch_add(1, Ordering::SeqCst) + 1 })
        }
    }
    impl Handler<InActor> for Kinds {
        fn handle(&mut self, _: InActor, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
            Reply::act(
                actix::fut::ready(()).map(|(), act: &mut ServiceActor<Kinds>, _| {
                    act.in_actor += 10;
                    act.in_actor
                }),
            )
        }
    }
    impl Handler<Held> for Kinds {
        fn handle(&mut self, _: Held, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
            Reply::atomic(
                actix::fut::ready(()).map(|(), act: &mut ServiceActor<Kinds>, _| {
                    act.in_actor += 100;
                    act.in_actor
                }),
            )
        }
    }
    impl Handler<Count> for Kinds {
        fn handle(&mut self, _: Count, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
            Reply::ready(self.in_actor)
        }
    }

    /// A tell drops a ready reply where its handler returns it, and still
    /// runs every other kind to its end: a detached future, an actor
    /// future, an atomic one (`run_unobserved` returns early only for a
    /// value).
    #[test]
    fn a_told_reply_runs_whatever_its_kind() {
        actix_rt::System::new().block_on(async {
            let detached = Arc::new(AtomicU64::new(0));
            let node = crate::Node::builder()
                .name("kinds")
                .start_local()
                .expect("a local node");
            let factory = {
                let detached = detached.clone();
                move || Kinds {
                    detached: detached.clone(),
                    in_actor: 0,
                }
            };
            let svc = node
                .spawn(
                    ServiceSpec::new("kinds", factory)
                        .handles_local::<Now>()
                        .handles_local::<Later>()
                        .handles_local::<InActor>()
                        .handles_local::<Held>()
                        .handles_local::<Count>(),
                )
                .await
                .expect("spawned");
            for _ in 0..3 {
                svc.tell(Now).expect("told");
                svc.tell(Later).expect("told");
                svc.tell(InActor).expect("told");
                svc.tell(Held).expect("told");
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let in_actor = svc.ask(Count).await.expect("counted");
                let later = detached.load(Ordering::SeqCst);
                if in_actor == 3 * 111 && later == 3 {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "in the actor {in_actor} (want 333), detached {later} (want 3)"
                );
                actix_rt::time::sleep(Duration::from_millis(5)).await;
            }
            node.shutdown(Duration::from_secs(5))
                .await
                .expect("shut down");
        });
    }
}
