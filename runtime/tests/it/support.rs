//! Test services and helpers shared by the runtime's integration tests.
#![allow(
    dead_code,
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used
)]

pub mod log_capture;
pub mod placement;
pub mod resolver;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use msa_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "test.Incr")]
#[rtype(result = "u64")]
pub struct Incr;

#[derive(Debug, Clone, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "test.Get")]
#[rtype(result = "u64")]
pub struct Get;

/// Panics in the handler body.
#[derive(Debug, Clone, actix::Message)]
#[rtype(result = "()")]
pub struct Boom;

/// Panics inside a detached future.
#[derive(Debug, Clone, actix::Message)]
#[rtype(result = "u64")]
pub struct BoomAsync;

/// Panics inside an actor future.
#[derive(Debug, Clone, actix::Message)]
#[rtype(result = "u64")]
pub struct BoomAct;

/// Sleeps (without blocking the thread) before answering.
#[derive(Debug, Clone, actix::Message)]
#[rtype(result = "u64")]
pub struct Slow(pub Duration);

/// Holds the actor (atomic) for a while.
#[derive(Debug, Clone, actix::Message)]
#[rtype(result = "u64")]
pub struct SlowAtomic(pub Duration);

/// Returns the caller's subject.
#[derive(Debug, Clone, actix::Message)]
#[rtype(result = "Option<String>")]
pub struct WhoAmI;

/// Records lifecycle hooks into a shared log.
#[derive(Debug, Clone, Default)]
pub struct Log(pub Arc<parking_lot::Mutex<Vec<String>>>);
impl Log {
    pub fn push(&self, s: impl Into<String>) {
        self.0.lock().push(s.into());
    }
    pub fn entries(&self) -> Vec<String> {
        self.0.lock().clone()
    }
}

#[derive(Debug, Default)]
pub struct Counter {
    pub n: u64,
    pub label: String,
    pub log: Option<Log>,
}

impl Counter {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn logged(label: &str, log: &Log) -> Self {
        Self {
            n: 0,
            label: label.to_string(),
            log: Some(log.clone()),
        }
    }
}

impl Service for Counter {
    fn started(&mut self, _: &mut ServiceContext<'_, Self>) {
        if let Some(l) = &self.log {
            l.push(format!("started {}", self.label));
        }
    }
    fn stopped(&mut self, _: &mut ServiceContext<'_, Self>) {
        if let Some(l) = &self.log {
            l.push(format!("stopped {}", self.label));
        }
    }
}

impl Handler<Incr> for Counter {
    fn handle(&mut self, _: Incr, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        self.n += 1;
        Reply::ready(self.n)
    }
}
impl Handler<Get> for Counter {
    fn handle(&mut self, _: Get, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        Reply::ready(self.n)
    }
}
impl Handler<Boom> for Counter {
    fn handle(&mut self, _: Boom, _: &mut ServiceContext<'_, Self>) -> Reply<Self, ()> {
        panic!("boom in handler");
    }
}
impl Handler<BoomAsync> for Counter {
    fn handle(&mut self, _: BoomAsync, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        Reply::future(async {
            tokio::task::yield_now().await;
            panic!("boom in detached future");
        })
    }
}
impl Handler<BoomAct> for Counter {
    fn handle(&mut self, _: BoomAct, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        use actix::fut::ActorFutureExt;
        Reply::act(actix::fut::wrap_future(tokio::task::yield_now()).map(
            |_, _act: &mut ServiceActor<Counter>, _| -> u64 { panic!("boom in actor future") },
        ))
    }
}
impl Handler<Slow> for Counter {
    fn handle(&mut self, m: Slow, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        let n = self.n;
        Reply::future(async move {
            tokio::time::sleep(m.0).await;
            n
        })
    }
}
impl Handler<SlowAtomic> for Counter {
    fn handle(&mut self, m: SlowAtomic, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        use actix::fut::ActorFutureExt;
        Reply::atomic(
            actix::fut::wrap_future(tokio::time::sleep(m.0))
                .map(|_, act: &mut ServiceActor<Counter>, _| act.n),
        )
    }
}
impl Handler<WhoAmI> for Counter {
    fn handle(
        &mut self,
        _: WhoAmI,
        ctx: &mut ServiceContext<'_, Self>,
    ) -> Reply<Self, Option<String>> {
        Reply::ready(ctx.identity().map(|i| i.subject.clone()))
    }
}

pub fn counter_spec(name: &str) -> ServiceSpec<Counter> {
    ServiceSpec::new(name, Counter::new)
        .handles::<Incr>()
        .handles::<Get>()
        .handles_local::<Boom>()
        .handles_local::<BoomAsync>()
        .handles_local::<BoomAct>()
        .handles_local::<Slow>()
        .handles_local::<SlowAtomic>()
        .handles_local::<WhoAmI>()
}

/// Counts factory calls.
pub fn counting_factory(calls: &Arc<AtomicUsize>) -> impl Fn() -> Counter + Send + Sync + 'static {
    let calls = calls.clone();
    move || {
        calls.fetch_add(1, Ordering::SeqCst);
        Counter::new()
    }
}

pub fn node(name: &str) -> Node {
    Node::builder()
        .name(name)
        .arbiters(2)
        .start()
        .expect("node starts")
}

pub const GRACE: Duration = Duration::from_secs(5);

/// How long a test waits for a state that changes on other threads.
pub const WAIT: Duration = Duration::from_secs(10);

pub use msa_runtime::test_support::eventually;

/// Waits (bounded) for the next registry event matching `pred`.
pub async fn wait_event(
    w: &mut msa_runtime::RegistryWatch,
    pred: impl Fn(&msa_runtime::RegistryEvent) -> bool,
) -> msa_runtime::RegistryEvent {
    msa_runtime::test_support::next_event("a registry event", WAIT, w, pred).await
}

/// Stops the instance normally.
#[derive(Debug, Clone, actix::Message)]
#[rtype(result = "()")]
pub struct StopMe;

/// Panics inside an atomic actor future.
#[derive(Debug, Clone, actix::Message)]
#[rtype(result = "u64")]
pub struct BoomAtomic;

impl Handler<StopMe> for Counter {
    fn handle(&mut self, _: StopMe, ctx: &mut ServiceContext<'_, Self>) -> Reply<Self, ()> {
        ctx.stop();
        Reply::ready(())
    }
}
impl Handler<BoomAtomic> for Counter {
    fn handle(&mut self, _: BoomAtomic, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        use actix::fut::ActorFutureExt;
        Reply::atomic(actix::fut::wrap_future(tokio::task::yield_now()).map(
            |_, _act: &mut ServiceActor<Counter>, _| -> u64 { panic!("boom in atomic future") },
        ))
    }
}

/// The full counter spec with the stop/atomic messages too.
pub fn full_spec(
    name: &str,
    make: impl Fn() -> Counter + Send + Sync + 'static,
) -> ServiceSpec<Counter> {
    ServiceSpec::new(name, make)
        .handles::<Incr>()
        .handles::<Get>()
        .handles_local::<Boom>()
        .handles_local::<BoomAsync>()
        .handles_local::<BoomAct>()
        .handles_local::<BoomAtomic>()
        .handles_local::<Slow>()
        .handles_local::<SlowAtomic>()
        .handles_local::<WhoAmI>()
        .handles_local::<StopMe>()
}

/// Waits for the next `Restarted` of `service`.
pub async fn restarted(w: &mut msa_runtime::RegistryWatch, service: &str) {
    let s = service.to_string();
    wait_event(w, move |e| {
        matches!(e, msa_runtime::RegistryEvent::Restarted { service, .. } if *service == s)
    })
    .await;
}

/// Waits until each of `services` has been restarted once (in any order).
pub async fn restarted_all(w: &mut msa_runtime::RegistryWatch, services: &[&str]) {
    let mut left: Vec<String> = services.iter().map(|s| s.to_string()).collect();
    while !left.is_empty() {
        let ev = wait_event(w, |e| {
            matches!(e, msa_runtime::RegistryEvent::Restarted { .. })
        })
        .await;
        if let msa_runtime::RegistryEvent::Restarted { service, .. } = ev {
            left.retain(|s| *s != service);
        }
    }
}

/// Waits for the next `Removed` of `service`.
pub async fn removed(w: &mut msa_runtime::RegistryWatch, service: &str) -> String {
    let s = service.to_string();
    match wait_event(
        w,
        move |e| matches!(e, msa_runtime::RegistryEvent::Removed { service, .. } if *service == s),
    )
    .await
    {
        msa_runtime::RegistryEvent::Removed { reason, .. } => reason,
        _ => unreachable!(),
    }
}

/// A node on the memory network `net` at `name:0`, joined through `seed`,
/// proving `secret`, with `detection` as its failure-detection bound (the
/// default when `None`).
pub fn memory_node(
    net: &msa_runtime::remote::transport::MemoryNetwork,
    name: &str,
    seed: Option<&Node>,
    secret: &[u8],
    detection: Option<Duration>,
) -> Node {
    let mut b = memory_builder(net, name, seed, secret);
    if let Some(d) = detection {
        b = b.failure_detection(d);
    }
    b.start().unwrap()
}

/// The builder of [`memory_node`], for tests that set more before starting.
pub fn memory_builder(
    net: &msa_runtime::remote::transport::MemoryNetwork,
    name: &str,
    seed: Option<&Node>,
    secret: &[u8],
) -> msa_runtime::NodeBuilder {
    let b = Node::builder()
        .name(name)
        .arbiters(1)
        .transport(net.clone())
        .listen_on(format!("{name}:0"))
        .secret(secret);
    match seed {
        Some(s) => b.seed(s.remote_addr().unwrap()),
        None => b,
    }
}
