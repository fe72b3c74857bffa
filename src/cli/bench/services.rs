//! The benchmark's own services: an msa [`Sink`] and a raw actix
//! [`RawSink`] that do exactly the same work per message.
//!
//! This file is also compiled into `benches/local.rs` (through `#[path]`), so
//! the criterion benches and `msa bench local` measure the same code.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix::{Actor, Context};
use msa_runtime::{Handler, Reply, Service, ServiceContext, ServiceSpec};

/// A sender of one-way messages yields to the scheduler after this many, so
/// the sink (on the same thread) drains its mailbox as it goes: a short,
/// cache-warm queue, as with any sender that awaits something now and then,
/// instead of first queueing every message. Both sides use the same loop.
pub(crate) const YIELD_EVERY: u64 = 1024;

/// One-way message: the sink counts it.
#[derive(Debug, Clone, Copy, actix::Message)]
#[rtype(result = "()")]
pub(crate) struct Hit;

/// Round trip: the sink counts it and answers with its new count.
#[derive(Debug, Clone, Copy, actix::Message)]
#[rtype(result = "u64")]
pub(crate) struct Bump;

/// Asks the sink how many messages it has counted.
#[derive(Debug, Clone, Copy, actix::Message)]
#[rtype(result = "u64")]
pub(crate) struct Count;

/// The state both sinks share: a count, and an optional probe that several
/// instances add to (the spawn scenario watches it to learn that every
/// instance has handled its message).
#[derive(Debug, Default)]
pub(crate) struct Tally {
    count: u64,
    probe: Option<Arc<AtomicU64>>,
}

impl Tally {
    /// A tally that also adds every message to `probe`.
    pub(crate) fn with_probe(probe: Arc<AtomicU64>) -> Self {
        Self {
            count: 0,
            probe: Some(probe),
        }
    }

    #[inline]
    fn hit(&mut self) -> u64 {
        self.count += 1;
        if let Some(p) = &self.probe {
            p.fetch_add(1, Ordering::Relaxed);
        }
        self.count
    }
}

/// The msa service under test.
#[derive(Debug, Default)]
pub(crate) struct Sink(pub(crate) Tally);

impl Service for Sink {}

impl Handler<Hit> for Sink {
    #[inline]
    fn handle(&mut self, _: Hit, _: &mut ServiceContext<'_, Self>) -> Reply<Self, ()> {
        self.0.hit();
        Reply::ready(())
    }
}

impl Handler<Bump> for Sink {
    #[inline]
    fn handle(&mut self, _: Bump, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        Reply::ready(self.0.hit())
    }
}

impl Handler<Count> for Sink {
    fn handle(&mut self, _: Count, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        Reply::ready(self.0.count)
    }
}

/// The spec of a sink service named `name` whose instances come from `factory`.
pub(crate) fn sink_spec<F>(name: &str, factory: F) -> ServiceSpec<Sink>
where
    F: Fn() -> Sink + Send + Sync + 'static,
{
    ServiceSpec::new(name, factory)
        .handles_local::<Hit>()
        .handles_local::<Bump>()
        .handles_local::<Count>()
}

/// The raw actix baseline: a plain actor doing the same work as [`Sink`].
#[derive(Debug, Default)]
pub(crate) struct RawSink(pub(crate) Tally);

impl Actor for RawSink {
    type Context = Context<Self>;
}

impl actix::Handler<Hit> for RawSink {
    type Result = ();

    #[inline]
    fn handle(&mut self, _: Hit, _: &mut Context<Self>) {
        self.0.hit();
    }
}

impl actix::Handler<Bump> for RawSink {
    type Result = u64;

    #[inline]
    fn handle(&mut self, _: Bump, _: &mut Context<Self>) -> u64 {
        self.0.hit()
    }
}

impl actix::Handler<Count> for RawSink {
    type Result = u64;

    fn handle(&mut self, _: Count, _: &mut Context<Self>) -> u64 {
        self.0.count
    }
}
