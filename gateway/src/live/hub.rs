//! One gather per tick for every open stream: [`LiveHub`] keeps the last
//! snapshot, serialized, and gathers a new one only when the held one
//! started more than [`FRESH`] ago; every stream and `GET
//! /v1/live/snapshot` takes the one held. So the cluster-wide work is at
//! most one gather per [`FRESH`] (5 a second), however many pages are
//! open, and none while no page is; a stream sends each snapshot once, at
//! most one per [`PERIOD`] (4 a second).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use msa_runtime::Node;

use crate::drain::Drain;

use super::traces::TraceWindow;
use msa_runtime::LiveQuery;

/// Spans asked of each node per gather (the newest).
const MAX_SPANS_PER_NODE: usize = 500;

/// How long a gather waits for each other node: a dead node costs a tick
/// this much, never more.
const PEER_TIMEOUT_MS: u64 = 400;

/// The shortest time between two snapshots on one stream (at most 4 per
/// second).
pub(crate) const PERIOD: Duration = Duration::from_millis(250);

/// A held snapshot whose gather started less than this ago is reused.
/// Shorter than [`PERIOD`] so that a stream's next tick, [`PERIOD`] after
/// the gather it triggered started (less the scheduling jitter), finds it
/// stale and gets a new one.
pub(crate) const FRESH: Duration = Duration::from_millis(200);

/// The last snapshot gathered.
#[derive(Debug)]
struct Held {
    at: Instant,
    seq: u64,
    /// The view's JSON and a newline.
    line: Bytes,
}

/// What the hub keeps between gathers.
#[derive(Debug, Default)]
struct HubState {
    held: Option<Held>,
    traces: TraceWindow,
}

/// The shared snapshot of one server (gateway or operations endpoint).
#[derive(Debug)]
pub(crate) struct LiveHub {
    node: Node,
    state: tokio::sync::Mutex<HubState>,
    gathers: AtomicU64,
    streams: Arc<AtomicUsize>,
}

impl LiveHub {
    pub(crate) fn new(node: Node) -> Self {
        Self {
            node,
            state: tokio::sync::Mutex::new(HubState::default()),
            gathers: AtomicU64::new(0),
            streams: Arc::default(),
        }
    }

    /// The latest snapshot as `(seq, JSON line)`: the one held when it is
    /// younger than [`FRESH`], else a new one. Concurrent callers wait for
    /// the one gather in progress and share it.
    pub(crate) async fn latest(&self) -> (u64, Bytes) {
        let mut state = self.state.lock().await;
        if let Some(h) = state.held.as_ref().filter(|h| h.at.elapsed() < FRESH) {
            return (h.seq, h.line.clone());
        }
        let seq = self.gathers.fetch_add(1, Ordering::Relaxed) + 1;
        let started = Instant::now();
        let now_us = msa_runtime::live::unix_us(std::time::SystemTime::now());
        let query = LiveQuery::new()
            .since_unix_us(state.traces.since(now_us))
            .max_spans(MAX_SPANS_PER_NODE)
            .peer_timeout_ms(PEER_TIMEOUT_MS);
        let cluster = self.node.cluster_live_report(query).await;
        state.traces.merge(cluster.spans(), now_us);
        let view = super::view::build(&cluster, state.traces.views(), seq);
        let mut json = match serde_json::to_vec(&view) {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(error = %e, "the live view is not JSON");
                b"{}".to_vec()
            }
        };
        json.push(b'\n');
        let line = Bytes::from(json);
        state.held = Some(Held {
            at: started,
            seq,
            line: line.clone(),
        });
        (seq, line)
    }

    /// Snapshots gathered so far.
    pub(crate) fn gathers(&self) -> u64 {
        self.gathers.load(Ordering::Relaxed)
    }

    /// Streams open now.
    pub(crate) fn open_streams(&self) -> usize {
        self.streams.load(Ordering::SeqCst)
    }
}

/// Counts one open stream while it lives.
#[derive(Debug)]
struct StreamGuard(Arc<AtomicUsize>);

impl StreamGuard {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count.clone())
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
        tracing::debug!("live view stream closed");
    }
}

/// The stream of one client: a snapshot at once, then each new one, at
/// most one per [`PERIOD`], until the client goes away (actix drops the
/// stream, and with it its guard) or the server drains (it ends).
pub(crate) fn stream(
    hub: Arc<LiveHub>,
    drain: Option<Arc<Drain>>,
) -> impl futures_util::Stream<Item = Result<Bytes, actix_web::Error>> {
    let guard = StreamGuard::new(&hub.streams);
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    futures_util::stream::unfold(
        (hub, drain, tick, 0u64, guard),
        |(hub, drain, mut tick, last, guard)| async move {
            loop {
                let stopping = async {
                    match &drain {
                        Some(d) => d.stopping().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = tick.tick() => {}
                    () = stopping => return None,
                }
                let (seq, line) = hub.latest().await;
                if seq != last {
                    return Some((Ok(line), (hub, drain, tick, seq, guard)));
                }
            }
        },
    )
}
