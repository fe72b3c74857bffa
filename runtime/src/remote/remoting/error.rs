//! Why a connection (data connection, membership lane, or handshake) ended
//! or could not be opened.

use std::time::Duration;

use crate::remote::frame::FrameError;
use crate::remote::handshake::HandshakeError;
use crate::remote::peer::StallReason;
use crate::remote::routes::RouteError;

use super::writer::WriteError;

/// Why a connection ended or could not be opened. Its text is what the
/// logs and `ClusterEvent::Down` carry.
#[derive(Debug, thiserror::Error)]
pub(super) enum ConnectionError {
    /// Reading from or writing to the socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A frame could not be decoded or encoded.
    #[error("{0}")]
    Frame(#[from] FrameError),
    /// The handshake was refused or broken.
    #[error("{0}")]
    Handshake(#[from] HandshakeError),
    /// TLS failed, or the peer's certificate does not fit what it announced.
    #[error("{0}")]
    Tls(#[from] crate::remote::TlsError),
    /// The peer closed the stream.
    #[error("connection closed")]
    Closed,
    /// The peer stopped reading.
    #[error("stalled: {0}")]
    Stalled(StallReason),
    /// A membership lane's write failed or stalled.
    #[error("{0}")]
    Write(#[from] WriteError),
    /// A frame that has no place where it came.
    #[error("protocol violation: `{kind}` {place}")]
    ProtocolViolation {
        /// The frame's kind.
        kind: &'static str,
        /// Where it came ("after the handshake", "on the membership lane").
        place: &'static str,
    },
    /// A call frame broke the route id rules.
    #[error("protocol violation: {0}")]
    Route(#[from] RouteError),
    /// The local node is gone.
    #[error("node gone")]
    NodeGone,
    /// This node is leaving.
    #[error("this node left")]
    NodeLeft,
    /// Nothing came from the peer for this long.
    #[error("silent for {0:?}")]
    Silent(Duration),
    /// Nothing came on a membership lane for this long.
    #[error("lane silent for {0:?}")]
    LaneSilent(Duration),
    /// The peer's connection was replaced or closed.
    #[error("replaced or closed")]
    Replaced,
    /// A membership lane was replaced by another, or its peer is gone.
    #[error("replaced")]
    LaneReplaced,
    /// A retired duplicate connection went idle.
    #[error("retired duplicate connection, idle")]
    RetiredIdle,
    /// A membership lane's data connection is gone.
    #[error("its data connection is gone")]
    DataConnectionGone,
    /// The handshake with `addr` failed.
    #[error("handshake with {addr} failed: {source}")]
    HandshakeFailed {
        /// The address dialed.
        addr: String,
        /// Why.
        source: Box<ConnectionError>,
    },
    /// The handshake with `addr` took longer than `connect_timeout`.
    #[error("handshake with {addr} timed out")]
    HandshakeTimedOut {
        /// The address dialed.
        addr: String,
    },
    /// Dialing `addr` took longer than `connect_timeout`.
    #[error("dialing {addr} timed out")]
    DialTimedOut {
        /// The address dialed.
        addr: String,
    },
    /// Dialing `addr` failed.
    #[error("dialing {addr}: {source}")]
    Dial {
        /// The address dialed.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The address of a lane's peer answers as another node or incarnation.
    #[error("{addr} now answers as {name} (incarnation {incarnation})")]
    PeerChanged {
        /// The address dialed.
        addr: String,
        /// The node that answered.
        name: String,
        /// Its incarnation.
        incarnation: u64,
    },
}

impl ConnectionError {
    /// Whether the peer just closed the stream (not a malformed frame).
    pub(super) fn is_closed(&self) -> bool {
        matches!(self, Self::Closed)
    }
}
