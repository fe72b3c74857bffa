//! Starting and stopping the gRPC server: tonic on a thread of its own with
//! its own multi-thread tokio runtime (`[grpc] workers` threads).

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::web;
use parking_lot::Mutex;
use tokio::sync::{oneshot, Semaphore};
use tonic::transport::server::TcpIncoming;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

use super::config::GrpcConfig;
use super::proto::gateway_server::GatewayServer;
use super::service::GatewayService;
use super::size::TooLarge;
use crate::error::GatewayError;
use crate::server::State;

/// The name health checks use for the `Gateway` service.
const GATEWAY_SERVICE: &str = "msa.v1.Gateway";

/// How long a stop waits for calls in flight (as the HTTP server's).
const STOP_BOUND: Duration = Duration::from_secs(10);

/// A running gRPC server.
#[derive(Debug)]
pub(crate) struct GrpcServer {
    pub(crate) addr: SocketAddr,
    health: HealthReporter,
    /// Stops the server gracefully when sent (or dropped).
    stop: Mutex<Option<oneshot::Sender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Sent when the server thread is done (after its runtime shut down).
    done: Mutex<Option<oneshot::Receiver<()>>>,
    /// The server's runtime, to report health on.
    handle: tokio::runtime::Handle,
}

/// Checks `config`, binds its address and serves the gRPC ingress over the
/// gateway's `state` on a thread of its own. Returns once it listens.
pub(crate) fn start(
    state: web::Data<State>,
    arbiter: actix_rt::ArbiterHandle,
    config: &GrpcConfig,
) -> Result<GrpcServer, GatewayError> {
    let bad = |reason: &str| GatewayError::Config {
        reason: format!("[grpc] {reason}"),
    };
    if config.workers == 0 || config.workers > 1024 {
        return Err(bad("`workers` must be between 1 and 1024"));
    }
    if config.max_concurrency == 0 || config.max_concurrency > Semaphore::MAX_PERMITS {
        return Err(bad("`max_concurrency` must be between 1 and 2^61 - 1"));
    }
    if config.max_message_bytes == 0 {
        return Err(bad("`max_message_bytes` must be at least 1"));
    }
    let tls = config.tls.as_ref().map(super::tls::acceptor).transpose()?;
    if tls.is_none() && !config.bind.ip().is_loopback() {
        tracing::warn!(
            addr = %config.bind,
            "the gRPC ingress serves plaintext HTTP/2 beyond loopback: tokens and payloads \
             travel unencrypted (add a [grpc.tls] table)"
        );
    }
    let (health, health_service) = tonic_health::server::health_reporter();
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(super::proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflect_err = |e: tonic_reflection::server::Error| GatewayError::Start {
        reason: format!("gRPC reflection: {e}"),
    };
    let reflection_v1 = reflection().build_v1().map_err(reflect_err)?;
    let reflection_v1alpha = reflection().build_v1alpha().map_err(reflect_err)?;
    let gateway = GatewayServer::new(GatewayService {
        state: state.clone(),
        arbiter,
        limiter: Arc::new(Semaphore::new(config.max_concurrency)),
    })
    .max_decoding_message_size(config.max_message_bytes);
    let gateway = TooLarge {
        inner: gateway,
        state: state.clone(),
    };
    let header_limit = u32::try_from(state.config.max_header_bytes).unwrap_or(u32::MAX);
    let router = tonic::transport::Server::builder()
        .http2_max_header_list_size(header_limit)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(gateway);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let (started_tx, started_rx) =
        std::sync::mpsc::channel::<Result<(SocketAddr, tokio::runtime::Handle), GatewayError>>();
    let (bind, workers) = (config.bind, config.workers);
    let reporter = health.clone();
    // Built, bound and run on the server's own thread: `start` may be
    // called from inside another runtime, where blocking on this one panics.
    let thread = std::thread::Builder::new()
        .name("msa-grpc".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .thread_name("msa-grpc")
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = started_tx.send(Err(GatewayError::Start {
                        reason: format!("gRPC runtime: {e}"),
                    }));
                    return;
                }
            };
            let handle = runtime.handle().clone();
            runtime.block_on(async move {
                let bound = TcpIncoming::bind(bind).and_then(|i| {
                    let addr = i.local_addr()?;
                    Ok((i.with_nodelay(Some(true)), addr))
                });
                let (incoming, addr) = match bound {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = started_tx.send(Err(GatewayError::Bind {
                            addr: bind,
                            reason: e.to_string(),
                        }));
                        return;
                    }
                };
                reporter
                    .set_service_status("", ServingStatus::Serving)
                    .await;
                reporter
                    .set_service_status(GATEWAY_SERVICE, ServingStatus::Serving)
                    .await;
                let _ = started_tx.send(Ok((addr, handle)));
                let stop = async {
                    let _ = stop_rx.await;
                };
                let served = match tls {
                    Some(acceptor) => {
                        let incoming = super::tls::incoming(incoming, acceptor);
                        router.serve_with_incoming_shutdown(incoming, stop).await
                    }
                    None => router.serve_with_incoming_shutdown(incoming, stop).await,
                };
                if let Err(e) = served {
                    tracing::error!(error = %e, "gRPC server failed");
                }
            });
            runtime.shutdown_timeout(STOP_BOUND);
            let _ = done_tx.send(());
        })
        .map_err(|e| GatewayError::Start {
            reason: e.to_string(),
        })?;
    let (addr, handle) = match started_rx.recv() {
        Ok(Ok(started)) => started,
        Ok(Err(e)) => {
            let _ = thread.join();
            return Err(e);
        }
        Err(_) => {
            let _ = thread.join();
            return Err(GatewayError::Start {
                reason: "the gRPC server thread exited while starting".into(),
            });
        }
    };
    let scheme = if config.tls.is_some() { "TLS" } else { "h2c" };
    tracing::info!(%addr, workers, scheme, "gRPC ingress listening");
    Ok(GrpcServer {
        addr,
        health,
        stop: Mutex::new(Some(stop_tx)),
        thread: Mutex::new(Some(thread)),
        done: Mutex::new(Some(done_rx)),
        handle,
    })
}

impl GrpcServer {
    /// Health checks answer `NOT_SERVING` from now on (a drain started).
    pub(crate) fn not_serving(&self) {
        let health = self.health.clone();
        self.handle.spawn(async move {
            health
                .set_service_status("", ServingStatus::NotServing)
                .await;
            health
                .set_service_status(GATEWAY_SERVICE, ServingStatus::NotServing)
                .await;
        });
    }

    /// Stops accepting connections, lets calls in flight finish (at most
    /// 10 s), and joins the server thread; from any async runtime. Again:
    /// returns at once.
    pub(crate) async fn stop(&self) {
        let Some(stop) = self.stop.lock().take() else {
            return;
        };
        let _ = stop.send(());
        let done = self.done.lock().take();
        if let Some(done) = done {
            let _ = done.await;
        }
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
        }
    }

    /// [`stop`](Self::stop) for plain threads (blocks).
    pub(crate) fn stop_blocking(&self) {
        let Some(stop) = self.stop.lock().take() else {
            return;
        };
        let _ = stop.send(());
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
        }
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        // Stops it in the background without waiting.
        if let Some(stop) = self.stop.lock().take() {
            let _ = stop.send(());
        }
    }
}
