//! `--live-view`: one live-view stream (`GET /v1/live/stream`, as the page
//! at `/ui` reads it) held open by a browser-like reader while the gateway
//! is measured, so that the cost of the live view (span recording is always
//! on; the stream adds the cluster-wide gather and a snapshot's JSON up to
//! four times a second) shows as the ratio of the same run's gateway
//! throughput with and without it (docs/live-view.md, target ≥ 0.9×).
//!
//! The reader runs on a thread of its own with its own actix System, like
//! the load's client, so it takes no time from the client's thread; it
//! counts the snapshots it reads, and a round whose reader saw none fails:
//! a stream that never delivered measured nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use awc::http::header::AUTHORIZATION;
use futures_util::StreamExt as _;

/// How long the reader waits for the stream's answer head.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence of the stream before the round is failed.
const STALL: Duration = Duration::from_secs(5);

/// A live-view stream being read; [`finish`](Self::finish) ends it.
#[derive(Debug)]
pub(crate) struct LiveViewReader {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<anyhow::Result<u64>>,
}

impl LiveViewReader {
    /// Opens `GET {base}/v1/live/stream` with an admin token and reads it on
    /// a thread of its own until [`finish`](Self::finish). Returns once the
    /// stream answered 200 and its first snapshot arrived, so the measured
    /// round runs with the stream live.
    pub(crate) fn open(base: &str, admin_token: &str) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<anyhow::Result<()>>();
        let url = format!("{base}/v1/live/stream");
        let bearer = format!("Bearer {admin_token}");
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("bench-live-view".into())
            .spawn(move || actix_rt::System::new().block_on(read(url, bearer, stop2, ready_tx)))
            .context("starting the live-view reader's thread")?;
        match ready_rx.recv_timeout(CONNECT_TIMEOUT * 2) {
            Ok(Ok(())) => Ok(Self { stop, thread }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                stop.store(true, Ordering::Relaxed);
                bail!("the live-view stream sent no snapshot within {CONNECT_TIMEOUT:?}")
            }
        }
    }

    /// Stops reading and returns how many snapshots were read (at least 1).
    pub(crate) fn finish(self) -> anyhow::Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| anyhow!("the live-view reader panicked"))?
    }
}

/// The reader: counts newline-terminated snapshots until told to stop (it
/// looks between chunks; the stream sends one every 250 ms).
async fn read(
    url: String,
    bearer: String,
    stop: Arc<AtomicBool>,
    ready: std::sync::mpsc::Sender<anyhow::Result<()>>,
) -> anyhow::Result<u64> {
    // The stream is long-lived: awc's timeout would also bound the body, so
    // it is off and the answer's head is bounded here instead.
    let client = awc::Client::builder().disable_timeout().finish();
    let resp = actix_rt::time::timeout(
        CONNECT_TIMEOUT,
        client
            .get(&url)
            .insert_header((AUTHORIZATION, bearer))
            .send(),
    )
    .await;
    let mut resp = match resp {
        Ok(Ok(r)) if r.status().is_success() => r,
        Ok(Ok(r)) => {
            let e = anyhow!("GET {url} answered {}", r.status());
            let _ = ready.send(Err(anyhow!("{e}")));
            return Err(e);
        }
        Ok(Err(e)) => {
            let e = anyhow!("GET {url}: {e}");
            let _ = ready.send(Err(anyhow!("{e}")));
            return Err(e);
        }
        Err(_) => {
            let e = anyhow!("GET {url}: no answer within {CONNECT_TIMEOUT:?}");
            let _ = ready.send(Err(anyhow!("{e}")));
            return Err(e);
        }
    };
    let mut snapshots = 0u64;
    while !stop.load(Ordering::Relaxed) {
        // A snapshot comes every 250 ms: a chunk-less second is a stall.
        let next = match actix_rt::time::timeout(STALL, resp.next()).await {
            Ok(next) => next,
            Err(_) => bail!("the live-view stream sent nothing for {STALL:?}"),
        };
        match next {
            Some(Ok(chunk)) => {
                let before = snapshots;
                snapshots += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
                if before == 0 && snapshots > 0 {
                    let _ = ready.send(Ok(()));
                }
            }
            Some(Err(e)) => {
                let e = anyhow!("reading the live-view stream: {e}");
                if snapshots == 0 {
                    let _ = ready.send(Err(anyhow!("{e}")));
                }
                return Err(e);
            }
            None => {
                if snapshots == 0 {
                    let _ = ready.send(Err(anyhow!("the live-view stream ended at once")));
                }
                bail!("the live-view stream ended while the round ran");
            }
        }
    }
    Ok(snapshots)
}
