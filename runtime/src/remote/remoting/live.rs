//! The live view's frames: answering a peer's `LiveRequest`, and asking a
//! peer for its report (docs/live-view.md, "Spans and live reports").

use std::sync::Arc;
use std::time::Duration;

use super::Remoting;
use crate::remote::frame::Frame;
use crate::remote::handshake::LIVE_PROTOCOL;
use crate::remote::peer::Peer;

/// Room kept in a `LiveReply` frame for its other fields and encoding.
const FRAME_OVERHEAD: usize = 1024;

/// Why a peer's live report is missing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LiveFetchError {
    /// No open connection to it.
    #[error("not connected")]
    NotConnected,
    /// Its connection speaks a protocol without live reports.
    #[error("speaks protocol {0}, without live reports")]
    OldProtocol(u32),
    /// It did not answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The connection failed while waiting.
    #[error("connection lost")]
    ConnectionLost,
    /// The request could not be queued.
    #[error("request not sent: {0}")]
    NotSent(String),
}

impl Remoting {
    /// Answers a peer's `LiveRequest` with this node's report.
    pub(super) fn on_live_request(&self, peer: &Arc<Peer>, id: u64, query: &[u8]) {
        let max = self.cfg.max_frame_bytes.saturating_sub(FRAME_OVERHEAD);
        let report = match self.live_source.get() {
            Some(source) => source.live_json(query, max),
            None => Vec::new(),
        };
        let _ = peer.send(Frame::LiveReply { id, report });
    }

    /// Asks the connected member `name` for its live report (`query` in
    /// JSON), waiting at most `timeout`: the report's JSON bytes.
    pub(crate) async fn live_from(
        &self,
        name: &str,
        query: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, LiveFetchError> {
        let peer = self
            .peer(name)
            .filter(|p| !p.is_down())
            .ok_or(LiveFetchError::NotConnected)?;
        if peer.protocol < LIVE_PROTOCOL {
            return Err(LiveFetchError::OldProtocol(peer.protocol));
        }
        let (id, rx) = peer
            .ask(|id| Frame::LiveRequest { id, query })
            .map_err(|e| LiveFetchError::NotSent(e.to_string()))?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Ok(bytes))) => Ok(bytes),
            Ok(Ok(Err(_))) | Ok(Err(_)) => Err(LiveFetchError::ConnectionLost),
            Err(_) => {
                peer.cancel(id);
                Err(LiveFetchError::Timeout(timeout))
            }
        }
    }
}
