//! Accepting and dialing: the accept loop, the seed dialer, and the
//! handshake of either side of a fresh stream.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{ReadHalf, WriteHalf};
use tokio::sync::watch;

use super::{nonce, ConnectionError, Remoting};
use crate::remote::frame::{ConnKind, FrameDecoder, NodeInfo};
use crate::remote::handshake::{Dialer, HandshakeError, Listener as HsListener, Step};
use crate::remote::transport::{BoxStream, Listener};

impl Remoting {
    /// Accepts connections until the node closes.
    pub(crate) async fn accept_loop(self: Arc<Self>, mut listener: Box<dyn Listener>) {
        let mut closed = self.closed.subscribe();
        while !self.is_closing() {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = closed.changed() => break,
            };
            match accepted {
                Ok((stream, from)) => {
                    let me = self.clone();
                    actix_rt::spawn(async move { me.inbound(stream, from).await });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// Dials `addr` until connected, and again whenever the connection drops,
    /// with exponential backoff, until the node closes or `stop`'s sender is
    /// dropped (the seed is no longer discovered). A seed that cannot be
    /// reached is logged at warn at the 1st, 2nd, 4th, 8th, … failure in a
    /// row (at debug in between), so a dead seed says why without flooding
    /// the log.
    pub(crate) async fn dial_loop(self: Arc<Self>, addr: String, mut stop: watch::Receiver<()>) {
        let mut backoff = Duration::from_millis(50);
        let mut failures: u32 = 0;
        let mut closing = self.closed.subscribe();
        while !self.is_closing() && stop.has_changed().is_ok() {
            // Connected to that node already (whoever dialed): a second
            // connection would only be retired by the duplicate tie-break,
            // and dialed again, and retired, for as long as the first one
            // lives. Wait for it to go instead.
            if let Some(p) = self.live_peer_at(&addr) {
                tokio::select! {
                    _ = p.gone() => {}
                    _ = closing.changed() => break,
                    _ = stop.changed() => break,
                }
                backoff = Duration::from_millis(50);
                failures = 0;
                continue;
            }
            let failed = match tokio::time::timeout(
                self.cfg.connect_timeout,
                self.transport.connect(addr.clone()),
            )
            .await
            {
                Ok(Ok(stream)) => match self.clone().outbound(stream, &addr).await {
                    Ok(()) => {
                        backoff = Duration::from_millis(50);
                        failures = 0;
                        None
                    }
                    Err(e) => {
                        tracing::warn!(%addr, error = %e, "connection to seed failed");
                        None
                    }
                },
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some(format!(
                    "no connection within {:?} (connect_timeout)",
                    self.cfg.connect_timeout
                )),
            };
            if let Some(error) = failed {
                failures = failures.saturating_add(1);
                if failures.is_power_of_two() {
                    tracing::warn!(%addr, %error, attempts = failures, retry_in = ?backoff, "seed unreachable");
                } else {
                    tracing::debug!(%addr, %error, attempts = failures, retry_in = ?backoff, "seed unreachable");
                }
            }
            if self.is_closing() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = closing.changed() => break,
                _ = stop.changed() => break,
            }
            backoff = (backoff * 2).min(self.cfg.reconnect_max);
        }
    }

    /// The live (neither down nor retired) connection to the node that
    /// listens at `addr`, if any.
    fn live_peer_at(&self, addr: &str) -> Option<Arc<crate::remote::peer::Peer>> {
        self.peers
            .read()
            .values()
            .find(|p| p.info.addr == addr && !p.is_down() && !p.is_retired())
            .cloned()
    }

    pub(super) async fn inbound(self: Arc<Self>, stream: BoxStream, from: String) {
        let Some((stream, cert)) = self.tls_accept(stream, &from).await else {
            return;
        };
        let (mut rd, mut wr) = tokio::io::split(stream);
        let mut dec = FrameDecoder::new(self.cfg.max_frame_bytes);
        let mut buf = vec![0u8; 64 * 1024];
        let mut hs = HsListener::new(self.hs_config(), nonce());
        let handshake = async {
            loop {
                let frame = self.read_frame(&mut rd, &mut dec, &mut buf).await?;
                match hs.on_frame(frame) {
                    Ok(Step::Send(f)) => self.write_frame(&mut wr, &f).await?,
                    Ok(Step::Done(f, out)) => {
                        self.check_tls_peer(cert.as_ref(), &out.peer)?;
                        if let Some(f) = f {
                            self.write_frame(&mut wr, &f).await?;
                        }
                        tracing::debug!(%from, peer = %out.peer.name, protocol = out.protocol, "inbound handshake done");
                        return Ok(out.peer);
                    }
                    Err(e) => {
                        let _ = self.write_frame(&mut wr, &HsListener::refusal(&e)).await;
                        return Err(ConnectionError::Handshake(e));
                    }
                }
            }
        };
        let outcome = tokio::time::timeout(self.cfg.connect_timeout, handshake).await;
        match outcome {
            Ok(Ok(peer)) if hs.kind() == ConnKind::Membership => {
                self.lane_inbound(peer, rd, wr, dec).await;
            }
            Ok(Ok(peer)) if peer.addr.is_empty() => self.serve_client(peer, rd, wr, dec).await,
            Ok(Ok(peer)) => {
                let dialer = peer.name.clone();
                self.established(peer, dialer, rd, wr, dec).await;
            }
            Ok(Err(reason)) => {
                self.stats
                    .handshake_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%from, %reason, "refused an inbound connection");
            }
            Err(_) => {
                self.stats
                    .handshake_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%from, "inbound handshake timed out");
            }
        }
    }

    pub(super) async fn outbound(
        self: Arc<Self>,
        stream: BoxStream,
        addr: &str,
    ) -> Result<(), ConnectionError> {
        let (peer, rd, wr, dec) = self.dial_handshake(stream, ConnKind::Data, addr).await?;
        let dialer = self.local.name.clone();
        self.established(peer, dialer, rd, wr, dec).await;
        Ok(())
    }

    /// The dialing side of the handshake on a fresh stream (bounded by
    /// `connect_timeout`; failures are counted): the authenticated peer and
    /// the stream, ready for frames.
    pub(super) async fn dial_handshake(
        &self,
        stream: BoxStream,
        kind: ConnKind,
        addr: &str,
    ) -> Result<
        (
            NodeInfo,
            ReadHalf<BoxStream>,
            WriteHalf<BoxStream>,
            FrameDecoder,
        ),
        ConnectionError,
    > {
        let (stream, cert) = self.tls_connect(stream, addr).await?;
        let (mut rd, mut wr) = tokio::io::split(stream);
        let mut dec = FrameDecoder::new(self.cfg.max_frame_bytes);
        let mut buf = vec![0u8; 64 * 1024];
        let (mut hs, hello) = Dialer::start(self.hs_config(), kind, nonce());
        let handshake = async {
            self.write_frame(&mut wr, &hello).await?;
            loop {
                let frame = self.read_frame(&mut rd, &mut dec, &mut buf).await?;
                match hs.on_frame(frame) {
                    Ok(Step::Send(f)) => self.write_frame(&mut wr, &f).await?,
                    Ok(Step::Done(_, out)) => {
                        self.check_tls_peer(cert.as_ref(), &out.peer)?;
                        tracing::debug!(%addr, peer = %out.peer.name, protocol = out.protocol, "outbound handshake done");
                        return Ok(out.peer);
                    }
                    Err(e @ HandshakeError::BadProof) => {
                        let _ = self.write_frame(&mut wr, &HsListener::refusal(&e)).await;
                        return Err(ConnectionError::Handshake(e));
                    }
                    Err(e) => return Err(ConnectionError::Handshake(e)),
                }
            }
        };
        let peer = match tokio::time::timeout(self.cfg.connect_timeout, handshake).await {
            Ok(Ok(peer)) => peer,
            Ok(Err(reason)) => {
                self.stats
                    .handshake_failures
                    .fetch_add(1, Ordering::Relaxed);
                return Err(ConnectionError::HandshakeFailed {
                    addr: addr.to_string(),
                    source: Box::new(reason),
                });
            }
            Err(_) => {
                self.stats
                    .handshake_failures
                    .fetch_add(1, Ordering::Relaxed);
                return Err(ConnectionError::HandshakeTimedOut {
                    addr: addr.to_string(),
                });
            }
        };
        Ok((peer, rd, wr, dec))
    }
}
