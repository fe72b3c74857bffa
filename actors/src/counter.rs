//! A counter service: a running total to add to, read and reset, and an
//! optional probe that benchmarks read from outside the node.
//!
//! A counter's total lives in its instance: with several instances each has
//! its own total, so spawn it with one (the default of [`counter_spec`])
//! unless per-instance totals are what you want.
//!
//! # Examples
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::sync::Arc;
//! use msa_actors::counter::{self, Add, Get, Tick};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let node = msa_runtime::Node::builder().arbiters(1).start()?;
//! let probe = Arc::new(AtomicU64::new(0));
//! let c = node.spawn(counter::counter_spec_with_probe("hits", probe.clone())).await?;
//! assert_eq!(c.ask(Add(5)).await?, 5);
//! c.tell(Tick)?;
//! assert_eq!(c.ask(Get).await?, 6);
//! assert_eq!(probe.load(Ordering::Relaxed), 3, "every handled message counts");
//! node.shutdown(std::time::Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use msa_runtime::{Handler, RemoteMessage, Reply, Service, ServiceContext, ServiceSpec};
use serde::{Deserialize, Serialize};

/// A running total (saturating at `u64::MAX`), with an optional probe.
#[derive(Debug, Default, Clone)]
pub struct Counter {
    total: u64,
    probe: Option<Arc<AtomicU64>>,
}

impl Counter {
    /// A counter at zero, without a probe.
    pub fn new() -> Self {
        Self::default()
    }

    /// A counter at zero that also adds one to `probe` for every message it
    /// handles (of any type, after handling it), so that a benchmark can
    /// count processed messages without asking the service. The probe
    /// outlives restarts: every instance made from one factory shares it.
    pub fn with_probe(probe: Arc<AtomicU64>) -> Self {
        Self {
            total: 0,
            probe: Some(probe),
        }
    }

    fn handled(&self) {
        if let Some(probe) = &self.probe {
            probe.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Service for Counter {}

/// Adds to the total; answers the new total.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, actix::Message, RemoteMessage,
)]
#[msa(name = "counter.Add")]
#[rtype(result = "u64")]
pub struct Add(pub u64);

/// Reads the total.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, actix::Message, RemoteMessage,
)]
#[msa(name = "counter.Get")]
#[rtype(result = "u64")]
pub struct Get;

/// Sets the total to zero; answers the total before.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, actix::Message, RemoteMessage,
)]
#[msa(name = "counter.Reset")]
#[rtype(result = "u64")]
pub struct Reset;

/// Adds one to the total and answers nothing: the cheapest message, meant
/// for `tell` in benchmarks (pair it with [`Counter::with_probe`]).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, actix::Message, RemoteMessage,
)]
#[msa(name = "counter.Tick")]
#[rtype(result = "()")]
pub struct Tick;

impl Handler<Add> for Counter {
    fn handle(&mut self, msg: Add, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        self.total = self.total.saturating_add(msg.0);
        self.handled();
        Reply::ready(self.total)
    }
}

impl Handler<Get> for Counter {
    fn handle(&mut self, _: Get, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        self.handled();
        Reply::ready(self.total)
    }
}

impl Handler<Reset> for Counter {
    fn handle(&mut self, _: Reset, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        self.handled();
        Reply::ready(std::mem::take(&mut self.total))
    }
}

impl Handler<Tick> for Counter {
    fn handle(&mut self, _: Tick, _: &mut ServiceContext<'_, Self>) -> Reply<Self, ()> {
        self.total = self.total.saturating_add(1);
        self.handled();
        Reply::ready(())
    }
}

/// Registers every counter message on `spec`.
fn with_messages(spec: ServiceSpec<Counter>) -> ServiceSpec<Counter> {
    spec.handles::<Add>()
        .handles::<Get>()
        .handles::<Reset>()
        .handles::<Tick>()
}

/// The spec of a counter named `name`: one instance handling [`Add`],
/// [`Get`], [`Reset`] and [`Tick`].
pub fn counter_spec(name: &str) -> ServiceSpec<Counter> {
    with_messages(ServiceSpec::new(name, Counter::new))
}

/// As [`counter_spec`], with every instance built by
/// [`Counter::with_probe`] on the same `probe`.
pub fn counter_spec_with_probe(name: &str, probe: Arc<AtomicU64>) -> ServiceSpec<Counter> {
    with_messages(ServiceSpec::new(name, move || {
        Counter::with_probe(probe.clone())
    }))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use msa_runtime::{codec, Node};

    use super::*;

    const GRACE: Duration = Duration::from_secs(5);

    fn node() -> Node {
        Node::builder()
            .name("counter-test")
            .arbiters(1)
            .start()
            .unwrap()
    }

    #[tokio::test]
    async fn add_get_and_reset_keep_the_total() {
        let node = node();
        let c = node.spawn(counter_spec("c")).await.unwrap();
        assert_eq!(c.ask(Get).await.unwrap(), 0);
        assert_eq!(c.ask(Add(3)).await.unwrap(), 3);
        assert_eq!(c.ask(Add(4)).await.unwrap(), 7);
        assert_eq!(c.ask(Get).await.unwrap(), 7);
        assert_eq!(c.ask(Reset).await.unwrap(), 7);
        assert_eq!(c.ask(Get).await.unwrap(), 0);
        assert_eq!(c.ask(Reset).await.unwrap(), 0);
        node.shutdown(GRACE).await.unwrap();
    }

    #[tokio::test]
    async fn add_saturates_instead_of_failing_the_instance() {
        let node = node();
        let c = node.spawn(counter_spec("c")).await.unwrap();
        c.ask(Add(u64::MAX - 1)).await.unwrap();
        assert_eq!(c.ask(Add(5)).await.unwrap(), u64::MAX);
        c.ask(Tick).await.unwrap();
        assert_eq!(c.ask(Get).await.unwrap(), u64::MAX);
        assert_eq!(node.stats("c").unwrap().failures, 0);
        node.shutdown(GRACE).await.unwrap();
    }

    #[tokio::test]
    async fn ticks_count_in_the_total_and_the_probe() {
        let node = node();
        let probe = Arc::new(AtomicU64::new(0));
        let c = node
            .spawn(counter_spec_with_probe("c", probe.clone()))
            .await
            .unwrap();
        for _ in 0..1000 {
            c.tell(Tick).unwrap();
        }
        c.ask(Tick).await.unwrap();
        // Tells from one sender arrive before its later ask.
        assert_eq!(c.ask(Get).await.unwrap(), 1001);
        assert_eq!(probe.load(Ordering::Relaxed), 1002);
        c.ask(Add(1)).await.unwrap();
        c.ask(Reset).await.unwrap();
        assert_eq!(probe.load(Ordering::Relaxed), 1004);
        node.shutdown(GRACE).await.unwrap();
    }

    #[tokio::test]
    async fn a_counter_without_probe_still_ticks() {
        let node = node();
        let c = node.spawn(counter_spec("c")).await.unwrap();
        c.tell(Tick).unwrap();
        c.tell(Tick).unwrap();
        assert_eq!(c.ask(Get).await.unwrap(), 2);
        node.shutdown(GRACE).await.unwrap();
    }

    #[test]
    fn spec_registers_the_wire_names() {
        let names: Vec<&str> = counter_spec("c")
            .wire_names()
            .into_iter()
            .map(|(w, _)| w)
            .collect();
        assert_eq!(
            names,
            [
                "counter.Add",
                "counter.Get",
                "counter.Reset",
                "counter.Tick"
            ]
        );
    }

    #[test]
    fn messages_and_results_survive_the_codec() {
        assert_eq!(codec::roundtrip(&Add(u64::MAX)).unwrap(), Add(u64::MAX));
        assert_eq!(codec::roundtrip(&Get).unwrap(), Get);
        assert_eq!(codec::roundtrip(&Reset).unwrap(), Reset);
        assert_eq!(codec::roundtrip(&Tick).unwrap(), Tick);
        assert_eq!(codec::roundtrip(&12_345_u64).unwrap(), 12_345);
        codec::roundtrip(&()).unwrap();
    }
}
