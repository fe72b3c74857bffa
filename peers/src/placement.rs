//! Where the sink and its caller run.
//!
//! - `same-thread`: one thread. msa and raw actix in an actix `System`
//!   (msa with `start_local`, actix with `Actor::start`), ractor and kameo on
//!   a tokio current-thread runtime; the caller is a task on that thread.
//! - `embedded`: an application on a tokio multi-thread runtime (one
//!   worker per CPU, `#[tokio::main]`'s default). msa is placed as
//!   `examples/embed.rs` places it: a node started with
//!   `Node::builder().arbiters(2).start()` from that runtime, the sink
//!   spawned with one instance per arbiter and `prefer_local()`, and the
//!   application's calls made from a task it runs on the node
//!   (`Node::run`), so each ask goes to the instance on the task's own
//!   arbiter. The raw actix actor runs on an actix `System` thread of its
//!   own (actix cannot run on a multi-thread runtime), the caller on the
//!   runtime; ractor's and kameo's actors are tasks of that same runtime,
//!   as their docs spawn them, and so is their caller.
//! - `embedded-outside`: as `embedded`, but msa's caller is a task of the
//!   application's runtime and its sink has one instance (no
//!   `prefer_local`): each ask crosses to an arbiter thread and back (the
//!   `embedded` placement before 2026-12-06). The other peers are placed as
//!   in `embedded`.

use std::future::Future;
use std::time::Duration;

use actix::Actor;
use anyhow::Context as _;
use msa_runtime::Node;

use crate::peer::actix_raw::{ActixSink, RawSink};
use crate::peer::msa::{spec, MsaSink, Sink};
use crate::peer::{kameo_peer, ractor_peer, Peer, Tally};
use crate::scenario::{Measurement, Scenario};

/// How long an msa node may take to drain after a measurement.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A placement of sink and caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    SameThread,
    Embedded,
    EmbeddedOutside,
}

impl Placement {
    pub(crate) const ALL: [Placement; 3] =
        [Self::SameThread, Self::Embedded, Self::EmbeddedOutside];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::SameThread => "same-thread",
            Self::Embedded => "embedded",
            Self::EmbeddedOutside => "embedded-outside",
        }
    }
}

/// Runs `scenario` for `peer` in `placement` on fresh threads and runtimes.
pub(crate) fn measure(
    peer: Peer,
    placement: Placement,
    scenario: Scenario,
) -> anyhow::Result<Measurement> {
    match (placement, peer) {
        (Placement::SameThread, Peer::Msa) => on_actix_thread(move || async move {
            let node = Node::builder()
                .name("peers")
                .start_local()
                .context("starting a local msa node")?;
            let svc = node.spawn(spec("sink", Sink::default)).await?;
            let out = in_task(scenario.run(MsaSink(svc))).await;
            node.shutdown(SHUTDOWN_GRACE).await?;
            out
        }),
        (Placement::SameThread, Peer::Actix) => on_actix_thread(move || async move {
            in_task(scenario.run(ActixSink(RawSink::default().start()))).await
        }),
        (Placement::SameThread, Peer::Ractor) => current_thread()?.block_on(async move {
            let sink = ractor_peer::spawn(Tally::default()).await?;
            in_task(scenario.run(sink)).await
        }),
        (Placement::SameThread, Peer::Kameo) => current_thread()?.block_on(async move {
            in_task(scenario.run(kameo_peer::spawn(Tally::default()))).await
        }),
        (Placement::Embedded, Peer::Msa) => multi_thread()?.block_on(async move {
            // As examples/embed.rs: a node with two arbiters, started from
            // the application's runtime; one instance per arbiter, preferred
            // by the callers beside it; the calls made from a node task.
            let node = Node::builder()
                .name("peers")
                .arbiters(2)
                .start()
                .context("starting an msa node")?;
            let sink = spec("sink", Sink::default)
                .instances(node.arbiters())
                .prefer_local();
            let svc = node.spawn(sink).await?;
            let out = node
                .run(scenario.run(MsaSink(svc)))
                .await
                .context("the measuring task on the node")?;
            node.shutdown(SHUTDOWN_GRACE).await?;
            out
        }),
        (Placement::EmbeddedOutside, Peer::Msa) => multi_thread()?.block_on(async move {
            // The caller is the application's own task; the service runs on
            // a node arbiter.
            let node = Node::builder()
                .name("peers")
                .arbiters(2)
                .start()
                .context("starting an msa node")?;
            let svc = node.spawn(spec("sink", Sink::default)).await?;
            let out = in_task(scenario.run(MsaSink(svc))).await;
            node.shutdown(SHUTDOWN_GRACE).await?;
            out
        }),
        (Placement::Embedded | Placement::EmbeddedOutside, Peer::Actix) => {
            let (tx, rx) = std::sync::mpsc::channel();
            let system = std::thread::Builder::new()
                .name("peers-actix".into())
                .spawn(move || {
                    let runner = actix::System::new();
                    runner.block_on(async move {
                        let addr = RawSink::default().start();
                        // The receiver waits for this; a failure shows there.
                        let _ = tx.send((addr, actix::System::current()));
                    });
                    // Serves the actor until `System::stop`.
                    runner.run()
                })
                .context("starting the actix thread")?;
            let (addr, sys) = rx.recv().context("the actix thread did not start")?;
            let out = multi_thread()?.block_on(in_task(scenario.run(ActixSink(addr))));
            sys.stop();
            // Nothing more to learn from how the actix thread ended.
            let _ = system.join();
            out
        }
        (Placement::Embedded | Placement::EmbeddedOutside, Peer::Ractor) => multi_thread()?
            .block_on(async move {
                let sink = ractor_peer::spawn(Tally::default()).await?;
                in_task(scenario.run(sink)).await
            }),
        (Placement::Embedded | Placement::EmbeddedOutside, Peer::Kameo) => multi_thread()?
            .block_on(
                async move { in_task(scenario.run(kameo_peer::spawn(Tally::default()))).await },
            ),
    }
}

/// Runs the timed future as a task, where a real caller (a request handler,
/// another actor) runs, rather than as the `block_on` future.
async fn in_task<F>(f: F) -> anyhow::Result<Measurement>
where
    F: Future<Output = anyhow::Result<Measurement>> + Send + 'static,
{
    tokio::spawn(f)
        .await
        .context("the measuring task panicked")?
}

/// A tokio current-thread runtime (ractor's and kameo's single thread).
pub(crate) fn current_thread() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building a current-thread runtime")
}

/// A tokio multi-thread runtime as `#[tokio::main]` builds it.
fn multi_thread() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building a multi-thread runtime")
}

/// Runs `f()` to completion in a new actix System on a new thread.
pub(crate) fn on_actix_thread<F, Fut, T>(f: F) -> anyhow::Result<T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<T>> + 'static,
    T: Send + 'static,
{
    std::thread::Builder::new()
        .name("peers-system".into())
        .spawn(move || actix::System::new().block_on(f()))
        .context("starting a benchmark thread")?
        .join()
        .map_err(|_| anyhow::anyhow!("the benchmark thread panicked"))?
}
