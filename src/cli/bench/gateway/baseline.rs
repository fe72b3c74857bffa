//! The baseline: a bare actix-web server with one route that does what the
//! gateway's echo call does without msa (no auth, no policy, no metrics, no
//! actor): read the body, decode it into `echo.Ping` with serde_json, and
//! answer with the JSON of `Pong`.
//!
//! It runs like the gateway does: on its own thread with its own actix
//! System, with the same number of workers and `disable_signals()`.

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpResponse, HttpServer};
use anyhow::{anyhow, Context as _};
use msa::actors::echo::{Ping, Pong};

/// How long the server may take to bind and start.
const START_WAIT: Duration = Duration::from_secs(30);

/// A running baseline server.
#[derive(Debug)]
pub(crate) struct Baseline {
    addr: SocketAddr,
    handle: ServerHandle,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

/// The one handler: the same JSON in and out as the gateway's echo call.
async fn ping(body: web::Bytes) -> HttpResponse {
    let reply = serde_json::from_slice::<Ping>(&body).map(|p| serde_json::to_vec(&Pong(p.0)));
    match reply {
        Ok(Ok(json)) => HttpResponse::Ok()
            .content_type("application/json")
            .body(json),
        Ok(Err(_)) => HttpResponse::InternalServerError().finish(),
        Err(e) => HttpResponse::BadRequest().body(e.to_string()),
    }
}

impl Baseline {
    /// Binds 127.0.0.1:0 and starts `workers` workers on a new thread.
    pub(crate) fn start(workers: usize) -> anyhow::Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("bench-baseline".into())
            .spawn(move || {
                actix_rt::System::new().block_on(async move {
                    let server = HttpServer::new(|| {
                        App::new().route("/v1/{service}/{message}", web::post().to(ping))
                    })
                    .workers(workers)
                    .disable_signals()
                    .bind(("127.0.0.1", 0));
                    let server = match server {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return Ok(());
                        }
                    };
                    let addr = server.addrs().first().copied();
                    let running = server.run();
                    let _ = tx.send(Ok((addr, running.handle())));
                    running.await
                })
            })
            .context("starting the baseline server's thread")?;
        let (addr, handle) = rx
            .recv_timeout(START_WAIT)
            .map_err(|e| anyhow!("the baseline server did not start: {e}"))?
            .context("binding the baseline server")?;
        let addr = addr.ok_or_else(|| anyhow!("the baseline server bound no address"))?;
        Ok(Self {
            addr,
            handle,
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server gracefully and joins its thread.
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        self.handle.stop(true).await;
        if let Some(t) = self.thread.take() {
            t.join()
                .map_err(|_| anyhow!("the baseline server's thread panicked"))?
                .context("the baseline server failed")?;
        }
        Ok(())
    }
}
