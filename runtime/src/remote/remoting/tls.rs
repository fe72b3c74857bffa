//! TLS on a node's connections: the TLS handshake on a fresh stream
//! (inside `handshake_timeout` when accepting, `connect_timeout` when
//! dialing), and the check, once the msa handshake has
//! named the peer, that its certificate names the same node (or an
//! operator, for a client). Refusals are logged and counted
//! (`handshake_failures`, `tls_refusals`); a peer that closes or stays
//! silent before TLS is done counts only as a handshake failure.
//!
//! The node's fault layer ([`Faults`](crate::remote::transport::Faults))
//! names a stream's peer from its first frame; under TLS it sees only
//! ciphertext, so the decrypted stream is put under the same rules again.

use std::sync::atomic::Ordering;

use super::{ConnectionError, Remoting};
use crate::remote::frame::NodeInfo;
use crate::remote::tls::{TlsError, TlsIdentity};
use crate::remote::transport::BoxStream;

impl Remoting {
    fn tls_refused(&self) {
        self.stats.tls_refusals.fetch_add(1, Ordering::Relaxed);
    }

    /// The listening side: TLS on an accepted stream (unchanged without
    /// TLS). `None` when it failed (logged and counted).
    pub(super) async fn tls_accept(
        &self,
        stream: BoxStream,
        from: &str,
    ) -> Option<(BoxStream, Option<TlsIdentity>)> {
        let Some(tls) = &self.cfg.tls else {
            return Some((stream, None));
        };
        // Inside the same bound as the msa handshake that follows: a
        // stranger holds its handshake slot no longer than that.
        let bound = self.cfg.handshake_timeout;
        let res = match tokio::time::timeout(bound, tls.accept(stream)).await {
            Ok(r) => r,
            Err(_) => Err(TlsError::Closed(format!(
                "no TLS handshake within {bound:?}"
            ))),
        };
        match res {
            Ok((s, id)) => {
                // Fault injection sees frames, not ciphertext.
                let s = match self.transport.faults() {
                    Some(f) => f.wrap_accepted(s),
                    None => s,
                };
                Some((s, Some(id)))
            }
            Err(e) => {
                self.stats
                    .handshake_failures
                    .fetch_add(1, Ordering::Relaxed);
                if matches!(e, TlsError::Closed(_)) {
                    tracing::info!(%from, reason = %e, "an inbound connection closed during TLS");
                } else {
                    self.tls_refused();
                    tracing::warn!(%from, reason = %e, "refused an inbound connection at TLS");
                }
                None
            }
        }
    }

    /// The dialing side: TLS on a dialed stream (unchanged without TLS).
    pub(super) async fn tls_connect(
        &self,
        stream: BoxStream,
        addr: &str,
    ) -> Result<(BoxStream, Option<TlsIdentity>), ConnectionError> {
        let Some(tls) = &self.cfg.tls else {
            return Ok((stream, None));
        };
        let res = match tokio::time::timeout(self.cfg.connect_timeout, tls.connect(stream)).await {
            Ok(r) => r,
            Err(_) => Err(TlsError::Closed(format!(
                "no TLS handshake within {:?}",
                self.cfg.connect_timeout
            ))),
        };
        res.map(|(s, id)| {
            // Fault injection sees frames, not ciphertext.
            let s = match self.transport.faults() {
                Some(f) => f.wrap_dialed(s, addr),
                None => s,
            };
            (s, Some(id))
        })
        .map_err(|e| {
            if !matches!(e, TlsError::Closed(_)) {
                self.tls_refused();
            }
            self.stats
                .handshake_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%addr, reason = %e, "TLS to a peer failed");
            ConnectionError::Tls(e)
        })
    }

    /// Whether the peer the msa handshake named is the one its
    /// certificate names (no-op without TLS); counted when not.
    pub(super) fn check_tls_peer(
        &self,
        cert: Option<&TlsIdentity>,
        peer: &NodeInfo,
    ) -> Result<(), ConnectionError> {
        let Some(cert) = cert else {
            return Ok(());
        };
        cert.check_peer(&peer.name, peer.addr.is_empty())
            .map_err(|e| {
                self.tls_refused();
                ConnectionError::Tls(e)
            })
    }
}
