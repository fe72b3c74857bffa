//! Accepting and dialing: the accept loop, the seed dialer, and the
//! handshake of either side of a fresh stream.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
                    let Some(pending) = self.pending_handshake() else {
                        drop(stream);
                        self.over_cap(&from);
                        continue;
                    };
                    let me = self.clone();
                    actix_rt::spawn(async move { me.inbound(stream, from, pending).await });
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
                Ok(Ok(stream)) => {
                    self.seed_dial(&addr, false);
                    match self.clone().outbound(stream, &addr).await {
                        Ok(()) => {
                            backoff = Duration::from_millis(50);
                            failures = 0;
                            None
                        }
                        Err(e) => {
                            tracing::warn!(%addr, error = %e, "connection to seed failed");
                            None
                        }
                    }
                }
                Ok(Err(e)) => {
                    // Answered (refused): not a hang.
                    self.seed_dial(&addr, false);
                    Some(e.to_string())
                }
                Err(_) => {
                    // Unanswered: a cut network (keeps a joining node joining).
                    self.seed_dial(&addr, true);
                    Some(format!(
                        "no connection within {:?} (connect_timeout)",
                        self.cfg.connect_timeout
                    ))
                }
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

    /// A slot for one more inbound connection in its handshake, if fewer
    /// than `max_pending_handshakes` hold one.
    fn pending_handshake(self: &Arc<Self>) -> Option<PendingHandshake> {
        let cap = self.cfg.max_pending_handshakes as u64;
        self.stats
            .pending_handshakes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            })
            .ok()?;
        Some(PendingHandshake(self.clone()))
    }

    /// Counts a connection closed at accept because the handshake cap was
    /// reached; logs at most once a second, with how many since the last line.
    fn over_cap(&self, from: &str) {
        self.stats
            .handshakes_over_cap
            .fetch_add(1, Ordering::Relaxed);
        let mut log = self.over_cap_log.lock();
        log.1 += 1;
        let now = Instant::now();
        if log
            .0
            .is_none_or(|at| now.duration_since(at) >= OVER_CAP_LOG_EVERY)
        {
            tracing::warn!(
                %from,
                closed = log.1,
                cap = self.cfg.max_pending_handshakes,
                "too many connections in their handshake: closed new ones at accept"
            );
            *log = (Some(now), 0);
        }
    }

    pub(super) async fn inbound(
        self: Arc<Self>,
        stream: BoxStream,
        from: String,
        pending: PendingHandshake,
    ) {
        let Some((stream, cert)) = self.tls_accept(stream, &from).await else {
            return;
        };
        let (mut rd, mut wr) = tokio::io::split(stream);
        let mut dec = FrameDecoder::new(self.cfg.max_handshake_frame_bytes);
        let mut buf = vec![0u8; HANDSHAKE_READ_BYTES];
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
                        return Ok((out.peer, out.protocol));
                    }
                    Err(e) => {
                        let _ = self.write_frame(&mut wr, &HsListener::refusal(&e)).await;
                        return Err(ConnectionError::Handshake(e));
                    }
                }
            }
        };
        let outcome = tokio::time::timeout(self.cfg.handshake_timeout, handshake).await;
        drop(buf);
        drop(pending);
        if outcome.as_ref().is_ok_and(Result::is_ok) {
            authenticated(&mut dec, self.cfg.max_frame_bytes);
        }
        match outcome {
            Ok(Ok((peer, _))) if hs.kind() == ConnKind::Membership => {
                self.lane_inbound(peer, rd, wr, dec).await;
            }
            Ok(Ok((peer, _))) if peer.addr.is_empty() => self.serve_client(peer, rd, wr, dec).await,
            Ok(Ok((peer, protocol))) => {
                let dialer = peer.name.clone();
                self.established(peer, protocol, dialer, rd, wr, dec).await;
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
                tracing::warn!(%from, timeout = ?self.cfg.handshake_timeout, "inbound handshake timed out");
            }
        }
    }

    pub(super) async fn outbound(
        self: Arc<Self>,
        stream: BoxStream,
        addr: &str,
    ) -> Result<(), ConnectionError> {
        let (peer, protocol, rd, wr, dec) =
            self.dial_handshake(stream, ConnKind::Data, addr).await?;
        let dialer = self.local.name.clone();
        self.established(peer, protocol, dialer, rd, wr, dec).await;
        Ok(())
    }

    /// The dialing side of the handshake on a fresh stream (bounded by
    /// `connect_timeout`; failures are counted): the authenticated peer and
    /// the protocol version chosen and the stream, ready for frames.
    pub(super) async fn dial_handshake(
        &self,
        stream: BoxStream,
        kind: ConnKind,
        addr: &str,
    ) -> Result<
        (
            NodeInfo,
            u32,
            ReadHalf<BoxStream>,
            WriteHalf<BoxStream>,
            FrameDecoder,
        ),
        ConnectionError,
    > {
        let (stream, cert) = self.tls_connect(stream, addr).await?;
        let (mut rd, mut wr) = tokio::io::split(stream);
        let mut dec = FrameDecoder::new(self.cfg.max_handshake_frame_bytes);
        let mut buf = vec![0u8; HANDSHAKE_READ_BYTES];
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
                        return Ok((out.peer, out.protocol));
                    }
                    Err(e @ HandshakeError::BadProof) => {
                        let _ = self.write_frame(&mut wr, &HsListener::refusal(&e)).await;
                        return Err(ConnectionError::Handshake(e));
                    }
                    Err(e) => return Err(ConnectionError::Handshake(e)),
                }
            }
        };
        let (peer, protocol) = match tokio::time::timeout(self.cfg.connect_timeout, handshake).await
        {
            Ok(Ok(done)) => done,
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
        authenticated(&mut dec, self.cfg.max_frame_bytes);
        Ok((peer, protocol, rd, wr, dec))
    }
}

/// Read buffer of a connection in its handshake (frames are at most
/// `max_handshake_frame_bytes` then; the established connection reads with
/// its own, larger buffer).
const HANDSHAKE_READ_BYTES: usize = 4 * 1024;

/// How often a flood of connections over the handshake cap is logged.
const OVER_CAP_LOG_EVERY: Duration = Duration::from_secs(1);

/// The peer is authenticated: accept frames up to `max` and return what
/// the handshake's buffer held beyond the bytes not yet decoded.
pub(super) fn authenticated(dec: &mut FrameDecoder, max: usize) {
    dec.set_max(max);
    dec.shrink();
}

/// One inbound connection's slot among `max_pending_handshakes`, released
/// when dropped (handshake done, refused or timed out).
pub(super) struct PendingHandshake(Arc<Remoting>);

impl Drop for PendingHandshake {
    fn drop(&mut self) {
        self.0
            .stats
            .pending_handshakes
            .fetch_sub(1, Ordering::AcqRel);
    }
}
