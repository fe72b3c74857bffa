//! The operations server: `/healthz`, `/readyz` and `/metrics` of one node
//! on an address of their own (`ops.bind`), gateway or not, for an
//! orchestrator's probes and a Prometheus scraper.
//!
//! Its probes and `/metrics` ask for no token: bind it to an address only
//! the orchestrator and the scraper reach (a pod IP, a private network,
//! loopback). It also serves the live view (`/ui`, docs/live-view.md),
//! whose data needs an admin role when it is given an [`AuthConfig`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix_web::{web, HttpResponse};
use msa_runtime::Node;

use crate::auth::Authenticator;
use crate::config::AuthConfig;
use crate::error::{ApiError, GatewayError};
use crate::live::{Asset, LiveHub};
use crate::metrics::Metrics;
use crate::server::{spawn_server, Listen, Server};

/// What `/readyz` says before [`OpsHandle::set_started`].
const STARTING: &str = "the node's services are still starting";

/// Two workers: probes and scrapes are few and cheap.
const WORKERS: usize = 2;

/// What the operations handlers share.
#[derive(Debug)]
struct OpsState {
    node: Node,
    metrics: Metrics,
    started: AtomicBool,
    draining: AtomicBool,
    /// Checks the live view's tokens, when auth is configured.
    auth: Option<Authenticator>,
    live: Arc<LiveHub>,
    /// Ends the live view's streams when the server stops.
    streams: Arc<crate::drain::Drain>,
}

impl OpsState {
    fn extra_reasons(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.draining.load(Ordering::SeqCst) {
            v.push(super::SHUTTING_DOWN);
        } else if !self.started.load(Ordering::SeqCst) {
            v.push(STARTING);
        }
        v
    }
}

/// Serves a node's operations endpoints on an address of their own.
///
/// * `GET /healthz`: 200 `{"status":"ok"}` while the process serves.
/// * `GET /readyz`: 200 `{"status":"ready"}`, or 503
///   `{"status":"not_ready","reasons":[…]}` until the node's services have
///   started ([`OpsHandle::set_started`]), it has joined its cluster and it
///   holds the service table of every live member it knows; 503 again once
///   it drains ([`OpsHandle::set_draining`]).
/// * `GET /metrics`: the node's own services and connections in the
///   Prometheus text format, every series labelled `node="<name>"`.
/// * `GET /ui` (and `/ui/app.js`, `/ui/app.css`): the live view;
///   `GET /v1/live/snapshot` and `/v1/live/stream`: its data, for an admin
///   token when started with [`start_with_auth`](Self::start_with_auth)
///   and an auth config, open otherwise (like `/metrics`).
///
/// # Examples
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let node = msa_runtime::Node::builder().name("n1").arbiters(1).start()?;
/// let ops = msa_gateway::OpsServer::start(node.clone(), "127.0.0.1:0".parse()?)?;
/// ops.set_started();
/// println!("probes on http://{}/readyz", ops.local_addr());
/// ops.stop().await;
/// node.shutdown(std::time::Duration::from_secs(5)).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct OpsServer;

impl OpsServer {
    /// Binds `bind` (port 0 picks a free port) and serves `node`'s
    /// operations endpoints on a thread of its own. Returns once it listens.
    ///
    /// # Errors
    /// [`GatewayError::Bind`] when the address cannot be bound (a taken port
    /// is an error, never a move to another port), [`GatewayError::Start`]
    /// when no thread can be started.
    pub fn start(node: Node, bind: SocketAddr) -> Result<OpsHandle, GatewayError> {
        Self::start_with_auth(node, bind, None)
    }

    /// [`start`](Self::start), with the live view's data behind `auth`'s
    /// admin roles (401 without a valid token, 403 without the role) when
    /// `auth` is given; the probes and `/metrics` stay open.
    ///
    /// # Errors
    /// As [`start`](Self::start), and [`GatewayError`] for an unusable key
    /// in `auth`.
    pub fn start_with_auth(
        node: Node,
        bind: SocketAddr,
        auth: Option<&AuthConfig>,
    ) -> Result<OpsHandle, GatewayError> {
        let auth = auth.map(Authenticator::new).transpose()?;
        let state = web::Data::new(OpsState {
            metrics: Metrics::for_node(node.clone()),
            live: Arc::new(LiveHub::new(node.clone())),
            node,
            started: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            auth,
            streams: Arc::default(),
        });
        let app_state = state.clone();
        let server = spawn_server(
            "msa-ops",
            bind,
            Listen::plain(WORKERS),
            Arc::new(move |cfg: &mut web::ServiceConfig| {
                cfg.app_data(app_state.clone())
                    .route("/healthz", web::get().to(|| async { super::healthz() }))
                    .route("/readyz", web::get().to(readyz))
                    .route("/metrics", web::get().to(metrics))
                    .route("/v1/live/snapshot", web::get().to(live_snapshot))
                    .route("/v1/live/stream", web::get().to(live_stream));
                for asset in Asset::ALL {
                    cfg.route(
                        asset.path(),
                        web::get().to(move || async move { asset.response() }),
                    );
                }
                cfg.default_service(web::to(|| async {
                    ApiError::not_found(
                        "no such route: /healthz, /readyz, /metrics and the live view \
                         (/ui, /v1/live/snapshot, /v1/live/stream) are served here",
                    )
                    .to_response()
                }));
            }),
        )?;
        tracing::info!(addr = %server.addr, "operations endpoints listening");
        Ok(OpsHandle { server, state })
    }
}

async fn readyz(state: web::Data<OpsState>) -> HttpResponse {
    super::readyz(&state.node, &state.extra_reasons())
}

async fn metrics(state: web::Data<OpsState>) -> HttpResponse {
    super::metrics_response(&state.metrics)
}

async fn live_snapshot(state: web::Data<OpsState>, req: actix_web::HttpRequest) -> HttpResponse {
    crate::live::snapshot(&state.live, state.auth.as_ref(), &req)
        .await
        .unwrap_or_else(|e| e.to_response())
}

async fn live_stream(state: web::Data<OpsState>, req: actix_web::HttpRequest) -> HttpResponse {
    crate::live::stream(
        &state.live,
        Some(state.streams.clone()),
        state.auth.as_ref(),
        &req,
    )
    .await
    .unwrap_or_else(|e| e.to_response())
}

/// Control of a running [`OpsServer`]. Dropping it stops the server in the
/// background without waiting.
#[derive(Debug)]
pub struct OpsHandle {
    server: Server,
    state: web::Data<OpsState>,
}

impl OpsHandle {
    /// The address it listens on (the real port when bound to 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// Says the node's services have started: until then `/readyz` answers
    /// 503 with the reason "the node's services are still starting".
    pub fn set_started(&self) {
        self.state.started.store(true, Ordering::SeqCst);
    }

    /// Says the node is on its way out: `/readyz` answers 503 "the node is
    /// shutting down" from now on, so that load balancers stop sending it
    /// work; `/healthz` and `/metrics` keep answering.
    pub fn set_draining(&self) {
        self.state.draining.store(true, Ordering::SeqCst);
    }

    /// Live-view streams open now.
    pub fn live_streams(&self) -> usize {
        self.state.live.open_streams()
    }

    /// Stops the server and joins its thread; again: returns at once.
    pub async fn stop(&self) {
        // Ends the live view's streams, which would hold the stop.
        self.state.streams.start();
        if self.server.stop().await {
            tracing::info!(addr = %self.server.addr, "operations endpoints stopped");
        }
    }

    /// [`stop`](Self::stop) for plain threads; not from inside an async runtime.
    pub fn stop_blocking(&self) {
        self.state.streams.start();
        if self.server.stop_blocking() {
            tracing::info!(addr = %self.server.addr, "operations endpoints stopped");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use super::*;

    async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        let mut res = awc::Client::new()
            .get(format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap();
        let body = res.body().await.unwrap();
        (
            res.status().as_u16(),
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    #[actix_rt::test]
    async fn readyz_follows_start_and_drain_and_metrics_carry_the_node_label() {
        let node = Node::builder()
            .name("ops-unit")
            .arbiters(1)
            .start()
            .unwrap();
        node.spawn(msa_actors::echo::echo_spec("echo"))
            .await
            .unwrap();
        let ops = OpsServer::start(node.clone(), "127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = ops.local_addr();

        assert_eq!(get(addr, "/healthz").await.0, 200);
        let (status, body) = get(addr, "/readyz").await;
        assert!(status == 503 && body.contains(STARTING), "{status} {body}");
        ops.set_started();
        assert_eq!(
            get(addr, "/readyz").await,
            (200, r#"{"status":"ready"}"#.into())
        );
        let (status, metrics) = get(addr, "/metrics").await;
        assert_eq!(status, 200);
        assert!(
            metrics.contains(r#"msa_service_messages_total{node="ops-unit",service="echo"} 0"#),
            "{metrics}"
        );
        assert!(!metrics.contains("msa_gateway_requests"), "{metrics}");
        assert_eq!(get(addr, "/v1/echo/echo.Echo").await.0, 404);
        ops.set_draining();
        let (status, body) = get(addr, "/readyz").await;
        assert!(
            status == 503 && body.contains(super::super::SHUTTING_DOWN),
            "{body}"
        );
        assert_eq!(get(addr, "/healthz").await.0, 200);

        // A taken address is an error, not a move to another port.
        let e = OpsServer::start(node.clone(), addr).unwrap_err();
        assert!(matches!(e, GatewayError::Bind { .. }), "{e:?}");
        ops.stop().await;
        ops.stop().await;
        node.shutdown(Duration::from_secs(5)).await.unwrap();
    }
}
