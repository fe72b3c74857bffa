//! Starting and stopping the HTTP server.
//!
//! The server runs on a thread of its own with its own actix `System`, so
//! a gateway can be started from any runtime (or none) and from outside
//! the node's threads; actix-web's signal handling is off, because the
//! process (the `msa` binary, a test) owns the signals.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use actix_cors::Cors;
use actix_web::dev::ServerHandle;
use actix_web::middleware::Condition;
use actix_web::{web, App, HttpServer};
use msa_runtime::Node;
use parking_lot::Mutex;
use tokio::sync::{oneshot, Semaphore};

use crate::auth::Authenticator;
use crate::config::GatewayConfig;
use crate::cors::{CorsLayer, CorsPolicy};
use crate::dispatch;
use crate::drain::Drain;
use crate::error::GatewayError;
use crate::metrics::Metrics;
use crate::policy::Policy;
use crate::routes::Router;

/// Seconds a graceful stop waits for requests in flight.
const SHUTDOWN_TIMEOUT_SECS: u64 = 10;

/// Pending connections the listen socket queues (std's default of 128 drops
/// SYNs under a burst of new clients).
const BACKLOG: u32 = 2048;

/// What every request handler shares.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) node: Node,
    pub(crate) config: GatewayConfig,
    pub(crate) auth: Option<Authenticator>,
    pub(crate) policy: Policy,
    pub(crate) router: Router,
    /// CORS, if configured (the handler adds the exposed headers).
    pub(crate) cors: Option<CorsPolicy>,
    pub(crate) metrics: Metrics,
    /// Calls in flight, and whether new ones are refused.
    pub(crate) drain: Arc<Drain>,
    /// The live view's shared snapshot (`live.rs`).
    pub(crate) live: Arc<crate::live::LiveHub>,
}

impl State {
    /// The timeout of each call (`None`: the node's default).
    pub(crate) fn call_timeout(&self) -> Option<Duration> {
        self.config.timeout_ms.map(Duration::from_millis)
    }

    /// The time a request's body may take to arrive.
    pub(crate) fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.config.body_timeout_ms)
    }
}

/// The HTTP gateway of a node.
#[derive(Debug)]
pub struct Gateway;

impl Gateway {
    /// Checks `config`, binds its address and starts serving requests for
    /// `node` on a thread of its own (its own actix `System`, signals off,
    /// `config.workers` workers). Returns once the server listens.
    ///
    /// # Errors
    /// [`GatewayError`]: an unusable auth key, policy rule, route, worker
    /// count or concurrency limit, or an address that cannot be bound.
    ///
    /// # Examples
    /// See the [crate docs](crate).
    pub fn start(node: Node, config: GatewayConfig) -> Result<GatewayHandle, GatewayError> {
        let config_err = |reason: &str| GatewayError::Config {
            reason: reason.to_string(),
        };
        if config.workers == 0 || config.workers > 1024 {
            return Err(config_err("`workers` must be between 1 and 1024"));
        }
        if config.max_concurrency == 0 || config.max_concurrency > Semaphore::MAX_PERMITS {
            return Err(config_err(
                "`max_concurrency` must be between 1 and 2^61 - 1",
            ));
        }
        if config.timeout_ms == Some(0) {
            return Err(config_err("`timeout_ms` must be at least 1"));
        }
        if config.body_timeout_ms == 0 || config.head_timeout_ms == 0 {
            return Err(config_err(
                "`body_timeout_ms` and `head_timeout_ms` must be at least 1",
            ));
        }
        if config.max_header_bytes == 0 {
            return Err(config_err("`max_header_bytes` must be at least 1"));
        }
        if config.max_connections == 0 {
            return Err(config_err("`max_connections` must be at least 1"));
        }
        let mut metrics = Metrics::new(node.clone());
        let auth = match config.auth.as_ref().map(Authenticator::new).transpose()? {
            Some(auth) => {
                let refused = metrics.refused_counter();
                Some(auth.count_refusals_with(Arc::new(move |reason| refused.inc(reason))))
            }
            None => None,
        };
        let policy = Policy::new(&config.policy)?;
        if auth.is_none() && !config.policy.is_empty() {
            tracing::warn!("gateway auth is off: the policy rules are not applied");
        }
        let router = Router::new(&config.routes, config.max_concurrency)?;
        let cors = config.cors.as_ref().map(CorsPolicy::new).transpose()?;
        let tls = config
            .tls
            .as_ref()
            .map(crate::tls::server_config)
            .transpose()?;
        if tls.is_none() && !config.bind.ip().is_loopback() {
            tracing::warn!(
                addr = %config.bind,
                "the gateway serves plain HTTP beyond loopback: tokens and bodies travel \
                 unencrypted; add a [gateway.tls] table"
            );
        }
        let (bind, workers) = (config.bind, config.workers);
        let drain = Arc::new(Drain::default());
        metrics.count_calls_in_flight(drain.clone());
        let state = web::Data::new(State {
            metrics,
            live: Arc::new(crate::live::LiveHub::new(node.clone())),
            node,
            config,
            auth,
            policy,
            router,
            cors: cors.clone(),
            drain,
        });
        let app_state = state.clone();
        let cors = cors.map(|policy| {
            let state = state.clone();
            CorsLayer {
                policy,
                on_denied: Arc::new(move || state.metrics.count_refused("cors_denied")),
            }
        });
        let listen = Listen {
            workers,
            head_timeout: Duration::from_millis(state.config.head_timeout_ms),
            max_connections: state.config.max_connections,
            cors,
            tls,
        };
        let server = spawn_server(
            "msa-gateway",
            bind,
            listen,
            Arc::new(move |cfg: &mut web::ServiceConfig| {
                cfg.app_data(app_state.clone())
                    .default_service(web::to(dispatch::dispatch));
            }),
        )?;
        let scheme = if state.config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        tracing::info!(addr = %server.addr, workers, scheme, "gateway listening");
        let grpc = match state.config.grpc.as_ref() {
            Some(cfg) => match crate::grpc::start(state.clone(), server.arbiter.clone(), cfg) {
                Ok(g) => Some(g),
                Err(e) => {
                    server.stop_blocking();
                    return Err(e);
                }
            },
            None => None,
        };
        Ok(GatewayHandle {
            server,
            state,
            grpc,
        })
    }
}

/// What an actix-web app serves: its data and routes.
pub(crate) type Configure = Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

/// How a server listens: workers and connection bounds.
#[derive(Debug, Clone)]
pub(crate) struct Listen {
    /// actix-web workers.
    pub(crate) workers: usize,
    /// Time a connection may take to send a request's head
    /// (`client_request_timeout`).
    pub(crate) head_timeout: Duration,
    /// Connections each worker serves at once.
    pub(crate) max_connections: usize,
    /// CORS middleware around every route, if configured.
    pub(crate) cors: Option<CorsLayer>,
    /// HTTPS, if configured.
    pub(crate) tls: Option<rustls::ServerConfig>,
}

impl Listen {
    /// Plain HTTP with `workers` workers and the default head timeout.
    pub(crate) fn plain(workers: usize) -> Self {
        Self {
            workers,
            head_timeout: Duration::from_secs(5),
            max_connections: 25_000,
            cors: None,
            tls: None,
        }
    }
}

/// Binds `bind` and serves `configure`'s app on a thread of its own named
/// `thread` (its own actix `System`, signals off, `listen.workers` workers).
/// Returns once the server listens.
pub(crate) fn spawn_server(
    thread: &str,
    bind: SocketAddr,
    listen: Listen,
    configure: Configure,
) -> Result<Server, GatewayError> {
    type Started = (ServerHandle, SocketAddr, actix_rt::ArbiterHandle);
    let (started_tx, started_rx) = std::sync::mpsc::channel::<Result<Started, GatewayError>>();
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let join = std::thread::Builder::new()
        .name(thread.into())
        .spawn(move || {
            let system = actix_rt::System::new();
            system.block_on(async move {
                let cors = listen.cors.clone();
                let server = HttpServer::new(move || {
                    let configure = configure.clone();
                    let cors = cors.as_ref();
                    App::new()
                        .wrap(Condition::new(
                            cors.is_some(),
                            cors.map_or_else(Cors::default, CorsLayer::middleware),
                        ))
                        .configure(move |cfg| configure(cfg))
                })
                .workers(listen.workers)
                .client_request_timeout(listen.head_timeout)
                .max_connections(listen.max_connections)
                .backlog(BACKLOG)
                .disable_signals()
                .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS);
                let server = match listen.tls {
                    Some(tls) => server.bind_rustls_0_23(bind, tls),
                    None => server.bind(bind),
                };
                let server = match server {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = started_tx.send(Err(GatewayError::Bind {
                            addr: bind,
                            reason: e.to_string(),
                        }));
                        return;
                    }
                };
                let Some(addr) = server.addrs().first().copied() else {
                    let _ = started_tx.send(Err(GatewayError::Bind {
                        addr: bind,
                        reason: "no address bound".into(),
                    }));
                    return;
                };
                let server = server.run();
                let arbiter = actix_rt::Arbiter::current();
                let _ = started_tx.send(Ok((server.handle(), addr, arbiter)));
                if let Err(e) = server.await {
                    tracing::error!(error = %e, "HTTP server failed");
                }
            });
            let _ = done_tx.send(());
        })
        .map_err(|e| GatewayError::Start {
            reason: e.to_string(),
        })?;
    let (server, addr, arbiter) = match started_rx.recv() {
        Ok(Ok(started)) => started,
        Ok(Err(e)) => {
            let _ = join.join();
            return Err(e);
        }
        Err(_) => {
            let _ = join.join();
            return Err(GatewayError::Start {
                reason: "the server thread exited while starting".into(),
            });
        }
    };
    Ok(Server {
        addr,
        arbiter,
        server,
        running: Mutex::new(Some(Running {
            thread: join,
            done: done_rx,
        })),
    })
}

/// A running HTTP server: its address, and stopping it.
#[derive(Debug)]
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    /// The server's actix arbiter, for work that must run on an actix
    /// thread (the gRPC ingress's JWKS fetches).
    pub(crate) arbiter: actix_rt::ArbiterHandle,
    server: ServerHandle,
    running: Mutex<Option<Running>>,
}

impl Server {
    /// Stops accepting connections, lets requests in flight finish (up to
    /// 10 s), and joins the server thread; again: returns at once.
    pub(crate) async fn stop(&self) -> bool {
        let running = self.running.lock().take();
        let Some(running) = running else {
            return false;
        };
        drop(self.server.stop(true));
        let _ = running.done.await;
        let _ = running.thread.join();
        true
    }

    /// [`stop`](Self::stop) for plain threads.
    pub(crate) fn stop_blocking(&self) -> bool {
        let running = self.running.lock().take();
        let Some(running) = running else {
            return false;
        };
        drop(self.server.stop(true));
        let _ = running.thread.join();
        true
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.running.lock().is_some() {
            drop(self.server.stop(false));
        }
    }
}

#[derive(Debug)]
struct Running {
    thread: JoinHandle<()>,
    done: oneshot::Receiver<()>,
}

/// Control of a running gateway: its address, draining, and stopping it.
///
/// Dropping the handle without stopping stops the server in the background
/// without waiting.
#[derive(Debug)]
pub struct GatewayHandle {
    server: Server,
    state: web::Data<State>,
    /// The gRPC ingress, when `config.grpc` is set.
    grpc: Option<crate::grpc::GrpcServer>,
}

impl GatewayHandle {
    /// The address the gateway listens on (the real port when bound to 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// The address the gRPC ingress listens on, when
    /// [`GatewayConfig::grpc`] is set (the real port when bound to 0).
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc.as_ref().map(|g| g.addr)
    }

    /// Starts a graceful stop's first step: from now on calls are answered
    /// 503 `unavailable` ("the node is shutting down") and `/readyz` 503,
    /// while the calls in flight go on; waits until none is in flight, at
    /// most `bound`. Returns whether they all finished. The probes and
    /// `/metrics` keep answering until [`stop`](Self::stop).
    pub async fn drain(&self, bound: Duration) -> bool {
        if let Some(g) = &self.grpc {
            g.not_serving();
        }
        self.state.drain.wait_idle(bound).await
    }

    /// Calls (requests to a service) in flight now.
    pub fn calls_in_flight(&self) -> usize {
        self.state.drain.in_flight()
    }

    /// Live-view streams (`GET /v1/live/stream`) open now: one ends when
    /// its client goes away or the gateway stops.
    pub fn live_streams(&self) -> usize {
        self.state.live.open_streams()
    }

    /// Live-view snapshots gathered so far: at most one per 250 ms, shared
    /// by every open stream and snapshot request.
    pub fn live_gathers(&self) -> u64 {
        self.state.live.gathers()
    }

    /// Stops accepting connections, lets requests in flight finish (up to
    /// 10 s), and joins the server thread. Works from any async runtime;
    /// calling it again returns at once.
    pub async fn stop(&self) {
        if let Some(g) = &self.grpc {
            g.stop().await;
        }
        // Ends the server-sent-events streams, which would hold the
        // graceful stop until its timeout.
        self.state.drain.start();
        if self.server.stop().await {
            tracing::info!(addr = %self.server.addr, "gateway stopped");
        }
    }

    /// [`stop`](Self::stop) for plain threads: blocks until the server thread
    /// has exited. Do not call it from inside an async runtime.
    pub fn stop_blocking(&self) {
        if let Some(g) = &self.grpc {
            g.stop_blocking();
        }
        self.state.drain.start();
        if self.server.stop_blocking() {
            tracing::info!(addr = %self.server.addr, "gateway stopped");
        }
    }
}
