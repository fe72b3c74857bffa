//! Criterion benches of msa's local paths: `tell` and `ask` through a
//! `ServiceRef` against the raw actix equivalent (`do_send`, `send().await`)
//! on one thread, and spawning supervised actors.
//!
//! Each group keeps one actix `System` alive across iterations (criterion
//! has no actix executor), runs a local node on it (`start_local`: the
//! service instance shares the bench thread, like the raw actor), and times
//! batches with `iter_custom`. `msa bench local` measures the same services
//! with interleaved rounds and checks them against the targets; see
//! docs/BENCHMARKS.md.

// A bench that cannot even set up should stop with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../src/cli/bench/services.rs"]
mod services;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, Addr, SystemRunner};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use msa_runtime::{Node, ServiceRef};

use services::{sink_spec, Bump, Count, Hit, RawSink, Sink, Tally, YIELD_EVERY};

/// Actors started per iteration of the spawn bench.
const SPAWN_BATCH: usize = 1_000;

/// A local node with one sink service, and a raw actix sink, on `sys`.
fn setup(sys: &SystemRunner) -> (Node, ServiceRef, Addr<RawSink>) {
    sys.block_on(async {
        let node = Node::builder()
            .name("bench")
            .start_local()
            .expect("local node");
        let svc = node
            .spawn(sink_spec("sink", Sink::default))
            .await
            .expect("sink service");
        (node, svc, RawSink::default().start())
    })
}

/// Runs `timed` as a task on the System's `LocalSet`, where real callers
/// (actors, request handlers) run; as the `block_on` future itself, every
/// hand-off would also poll the runtime's I/O driver, on both sides alike.
fn in_task<F>(sys: &SystemRunner, timed: F) -> Duration
where
    F: std::future::Future<Output = Duration> + 'static,
{
    sys.block_on(async { actix_rt::spawn(timed).await.expect("timed task") })
}

fn teardown(sys: &SystemRunner, node: Node) {
    sys.block_on(node.shutdown(Duration::from_secs(5)))
        .expect("node shutdown");
}

fn tell(c: &mut Criterion) {
    let sys = actix::System::new();
    let (node, svc, raw) = setup(&sys);
    let mut g = c.benchmark_group("tell");
    g.throughput(Throughput::Elements(1));
    g.bench_function("msa ServiceRef::tell", |b| {
        b.iter_custom(|iters| {
            let svc = svc.clone();
            in_task(&sys, async move {
                let before = svc.ask(Count).await.unwrap();
                let start = Instant::now();
                for i in 1..=iters {
                    svc.tell(Hit).unwrap();
                    if i % YIELD_EVERY == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                let after = svc.ask(Count).await.unwrap();
                let took = start.elapsed();
                assert_eq!(after - before, iters, "every tell handled");
                took
            })
        });
    });
    g.bench_function("raw actix Addr::do_send", |b| {
        b.iter_custom(|iters| {
            let raw = raw.clone();
            in_task(&sys, async move {
                let before = raw.send(Count).await.unwrap();
                let start = Instant::now();
                for i in 1..=iters {
                    raw.do_send(Hit);
                    if i % YIELD_EVERY == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                let after = raw.send(Count).await.unwrap();
                let took = start.elapsed();
                assert_eq!(after - before, iters, "every do_send handled");
                took
            })
        });
    });
    g.finish();
    teardown(&sys, node);
}

fn ask(c: &mut Criterion) {
    let sys = actix::System::new();
    let (node, svc, raw) = setup(&sys);
    let mut g = c.benchmark_group("ask");
    g.throughput(Throughput::Elements(1));
    g.bench_function("msa ServiceRef::ask", |b| {
        b.iter_custom(|iters| {
            let svc = svc.clone();
            in_task(&sys, async move {
                let start = Instant::now();
                for _ in 0..iters {
                    std::hint::black_box(svc.ask(Bump).await.unwrap());
                }
                start.elapsed()
            })
        });
    });
    g.bench_function("raw actix Addr::send", |b| {
        b.iter_custom(|iters| {
            let raw = raw.clone();
            in_task(&sys, async move {
                let start = Instant::now();
                for _ in 0..iters {
                    std::hint::black_box(raw.send(Bump).await.unwrap());
                }
                start.elapsed()
            })
        });
    });
    g.finish();
    teardown(&sys, node);
}

/// Starts a local node, spawns `SPAWN_BATCH` instances of one service, sends
/// one message to each and waits until all are handled; returns the time
/// that took (node start and shutdown excluded).
async fn spawn_batch() -> Duration {
    let node = Node::builder()
        .name("bench-spawn")
        .start_local()
        .expect("local node");
    let probe = Arc::new(AtomicU64::new(0));
    let p = probe.clone();
    let start = Instant::now();
    let svc = node
        .spawn(
            sink_spec("sinks", move || Sink(Tally::with_probe(p.clone()))).instances(SPAWN_BATCH),
        )
        .await
        .expect("sink instances");
    for _ in 0..SPAWN_BATCH {
        svc.tell(Hit).unwrap();
    }
    while probe.load(Ordering::Relaxed) < SPAWN_BATCH as u64 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "messages not handled within 30 s"
        );
        tokio::task::yield_now().await;
    }
    let took = start.elapsed();
    node.shutdown(Duration::from_secs(5))
        .await
        .expect("node shutdown");
    took
}

fn spawn(c: &mut Criterion) {
    let sys = actix::System::new();
    let mut g = c.benchmark_group("spawn");
    g.throughput(Throughput::Elements(SPAWN_BATCH as u64));
    g.bench_function("msa 1000 instances + 1 tell each", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| sys.block_on(spawn_batch())).sum());
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = tell, ask, spawn
}
criterion_main!(benches);
