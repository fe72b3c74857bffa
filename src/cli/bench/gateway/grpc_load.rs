//! The gRPC load of `msa bench gateway --grpc`: the same requests as the
//! HTTP side (`echo.Ping(seq)` with the bearer token, checked to answer
//! `seq`), as `msa.v1.Gateway/Call` over tonic's client, one HTTP/2
//! connection per concurrent caller (as many as the HTTP side's
//! keep-alive connections).

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use msa::gateway::grpc::proto::gateway_client::GatewayClient;
use msa::gateway::grpc::proto::{CallRequest, Encoding};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use super::super::scenario::Measurement;
use super::load::Round;

/// Highest latency the histogram tracks exactly (larger values saturate).
const MAX_TRACKED_NS: u64 = 60_000_000_000;
/// Bound on one call.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// `connections` gRPC clients, each on a connection of its own, kept across
/// rounds.
pub(crate) struct GrpcLoad {
    clients: Vec<GatewayClient<Channel>>,
    bearer: MetadataValue<tonic::metadata::Ascii>,
    service: Rc<str>,
    message: Rc<str>,
}

impl std::fmt::Debug for GrpcLoad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcLoad")
            .field("connections", &self.clients.len())
            .finish_non_exhaustive()
    }
}

struct Share {
    latency_ns: Histogram<u64>,
    failures: u64,
    first_failure: Option<String>,
}

impl GrpcLoad {
    /// Connects `connections` clients to `addr`.
    pub(crate) async fn connect(
        addr: SocketAddr,
        token: &str,
        service: &str,
        message: &str,
        connections: usize,
    ) -> anyhow::Result<Self> {
        let mut clients = Vec::with_capacity(connections);
        for _ in 0..connections {
            let channel = Channel::from_shared(format!("http://{addr}"))
                .context("the gRPC address")?
                .tcp_nodelay(true)
                .timeout(CALL_TIMEOUT)
                .connect()
                .await
                .context("connecting to the gRPC ingress")?;
            clients.push(GatewayClient::new(channel));
        }
        Ok(Self {
            clients,
            bearer: format!("Bearer {token}")
                .parse()
                .context("the token is not a metadata value")?,
            service: service.into(),
            message: message.into(),
        })
    }

    /// Sends `requests` calls from one task per client, each sending its
    /// next call when the last one's reply has arrived, and times the whole.
    pub(crate) async fn round(&self, requests: u64) -> anyhow::Result<Round> {
        let next = Rc::new(Cell::new(0u64));
        let start = Instant::now();
        let tasks: Vec<_> = self
            .clients
            .iter()
            .map(|client| {
                let (client, next) = (client.clone(), Rc::clone(&next));
                let (service, message) = (Rc::clone(&self.service), Rc::clone(&self.message));
                let bearer = self.bearer.clone();
                actix_rt::spawn(async move {
                    let mut out = Share {
                        latency_ns: new_histogram()?,
                        failures: 0,
                        first_failure: None,
                    };
                    let mut client = client;
                    loop {
                        let seq = next.get();
                        if seq >= requests {
                            break;
                        }
                        next.set(seq + 1);
                        let body = seq.to_string();
                        let mut req = tonic::Request::new(CallRequest {
                            service: service.to_string(),
                            message: message.to_string(),
                            payload: body.clone().into_bytes(),
                            encoding: Encoding::Json as i32,
                        });
                        req.metadata_mut().insert("authorization", bearer.clone());
                        let sent = Instant::now();
                        let reply = client.call(req).await;
                        let ns = u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX);
                        out.latency_ns.saturating_record(ns.max(1));
                        let failed = match reply {
                            Ok(r) if r.get_ref().payload == body.as_bytes() => None,
                            Ok(r) => Some(format!(
                                "call {seq}: reply {:?} (expected {body:?})",
                                String::from_utf8_lossy(&r.get_ref().payload)
                            )),
                            Err(s) => Some(format!("call {seq}: {:?} {}", s.code(), s.message())),
                        };
                        if let Some(what) = failed {
                            out.failures += 1;
                            out.first_failure.get_or_insert(what);
                        }
                    }
                    anyhow::Ok(out)
                })
            })
            .collect();
        let mut latency_ns = new_histogram()?;
        let (mut failures, mut first_failure) = (0, None);
        for t in tasks {
            let s = t.await.context("a gRPC client task panicked")??;
            latency_ns
                .add(&s.latency_ns)
                .context("merging latency histograms")?;
            failures += s.failures;
            first_failure = first_failure.or(s.first_failure);
        }
        Ok(Round {
            measurement: Measurement {
                messages: requests,
                elapsed: start.elapsed(),
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
