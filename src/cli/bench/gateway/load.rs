//! The HTTP load: C keep-alive connections from one awc client, sharing N
//! requests, every response checked and every latency recorded.
//!
//! The same code drives both sides; only the URL differs. Each request
//! POSTs `seq` (the JSON body of `echo.Ping(seq)`) with the bearer token, and
//! counts as a success only with status 200 and the body `seq` (the JSON of
//! `Pong(seq)`).

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use awc::http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use awc::{Client, Connector};
use hdrhistogram::Histogram;

use super::super::scenario::Measurement;

/// Highest latency the histogram tracks exactly (larger values saturate).
const MAX_TRACKED_NS: u64 = 60_000_000_000;
/// Bound on one request (send, response head and body).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP client for one side: its own pool of `connections` keep-alive
/// connections, kept across rounds.
pub(crate) struct Load {
    client: Client,
    url: Rc<str>,
    bearer: HeaderValue,
    connections: usize,
}

impl std::fmt::Debug for Load {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Load")
            .field("url", &self.url)
            .field("connections", &self.connections)
            .finish_non_exhaustive()
    }
}

/// What one round of requests yields.
#[derive(Debug, Clone)]
pub(crate) struct Round {
    /// Requests, wall time and the latency of every answered request.
    pub(crate) measurement: Measurement,
    /// Requests that got no response, a status other than 200, or a body
    /// other than the expected one.
    pub(crate) failures: u64,
    /// What went wrong first, if anything did.
    pub(crate) first_failure: Option<String>,
}

/// The outcome of one connection's share of a round.
struct Share {
    latency_ns: Histogram<u64>,
    failures: u64,
    first_failure: Option<String>,
}

impl Load {
    /// A client posting to `url` with `Authorization: Bearer <token>`, over
    /// at most `connections` connections. Call from an actix System thread.
    pub(crate) fn new(url: &str, token: &str, connections: usize) -> anyhow::Result<Self> {
        let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
            .context("the token is not a valid header value")?;
        let client = Client::builder()
            .connector(Connector::new().limit(connections))
            .timeout(REQUEST_TIMEOUT)
            .finish();
        Ok(Self {
            client,
            url: url.into(),
            bearer,
            connections,
        })
    }

    /// Sends `requests` requests from `connections` concurrent tasks on this
    /// thread, each sending its next request when the last one's response
    /// has been read, and times the whole.
    pub(crate) async fn round(&self, requests: u64) -> anyhow::Result<Round> {
        let next = Rc::new(Cell::new(0u64));
        let start = Instant::now();
        let tasks: Vec<_> = (0..self.connections)
            .map(|_| {
                let client = self.client.clone();
                let url = Rc::clone(&self.url);
                let bearer = self.bearer.clone();
                let next = Rc::clone(&next);
                actix_rt::spawn(share(client, url, bearer, next, requests))
            })
            .collect();
        let mut shares = Vec::with_capacity(tasks.len());
        for t in tasks {
            shares.push(t.await.context("a client task panicked")??);
        }
        let elapsed = start.elapsed();
        let mut latency_ns = new_histogram()?;
        let mut failures = 0;
        let mut first_failure = None;
        for s in shares {
            latency_ns
                .add(&s.latency_ns)
                .context("merging latency histograms")?;
            failures += s.failures;
            first_failure = first_failure.or(s.first_failure);
        }
        Ok(Round {
            measurement: Measurement {
                messages: requests,
                elapsed,
                latency_ns: Some(latency_ns),
            },
            failures,
            first_failure,
        })
    }
}

fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_TRACKED_NS, 3).context("creating a latency histogram")
}

impl Share {
    fn fail(&mut self, what: String) {
        self.failures += 1;
        if self.first_failure.is_none() {
            self.first_failure = Some(what);
        }
    }
}

/// One connection's loop: takes sequence numbers from `next` until
/// `requests` have been taken.
async fn share(
    client: Client,
    url: Rc<str>,
    bearer: HeaderValue,
    next: Rc<Cell<u64>>,
    requests: u64,
) -> anyhow::Result<Share> {
    let json = HeaderValue::from_static("application/json");
    let mut out = Share {
        latency_ns: new_histogram()?,
        failures: 0,
        first_failure: None,
    };
    loop {
        let seq = next.get();
        if seq >= requests {
            break;
        }
        next.set(seq + 1);
        let body = seq.to_string();
        let sent = Instant::now();
        let response = client
            .post(&*url)
            .insert_header((AUTHORIZATION, bearer.clone()))
            .insert_header((CONTENT_TYPE, json.clone()))
            .send_body(body.clone())
            .await;
        let mut response = match response {
            Ok(r) => r,
            Err(e) => {
                out.fail(format!("request {seq}: {e}"));
                continue;
            }
        };
        let status = response.status();
        let read = response.body().await;
        let ns = u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX);
        out.latency_ns.saturating_record(ns.max(1));
        match read {
            Ok(b) if status == 200 && b == body.as_bytes() => {}
            Ok(b) => out.fail(format!(
                "request {seq}: status {status}, body {:?} (expected 200 and {body:?})",
                String::from_utf8_lossy(&b[..b.len().min(200)])
            )),
            Err(e) => out.fail(format!(
                "request {seq}: status {status}, reading the body: {e}"
            )),
        }
    }
    Ok(out)
}
