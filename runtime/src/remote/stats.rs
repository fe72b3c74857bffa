//! Counters of the remoting layer.

use std::sync::atomic::{AtomicU64, Ordering};

/// Remoting counters of one node.
#[derive(Debug, Default)]
pub(crate) struct RemoteStats {
    pub(crate) frames_in: AtomicU64,
    pub(crate) frames_out: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) handshake_failures: AtomicU64,
    pub(crate) handshakes_over_cap: AtomicU64,
    /// A gauge: inbound connections in their handshake now.
    pub(crate) pending_handshakes: AtomicU64,
    pub(crate) tls_refusals: AtomicU64,
    pub(crate) malformed_frames: AtomicU64,
    pub(crate) late_replies: AtomicU64,
    pub(crate) overloaded: AtomicU64,
    pub(crate) stalled_connections: AtomicU64,
    pub(crate) control_overflows: AtomicU64,
    pub(crate) route_errors: AtomicU64,
    pub(crate) unreachable_marks: AtomicU64,
    pub(crate) unreachable_calls: AtomicU64,
    pub(crate) split_brain_downs: AtomicU64,
    pub(crate) self_downs: AtomicU64,
    pub(crate) downed_calls: AtomicU64,
}

/// A copy of the remoting counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RemoteSnapshot {
    /// Frames received.
    pub frames_in: u64,
    /// Frames sent.
    pub frames_out: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Inbound or outbound handshakes that failed (wrong secret, cluster, protocol, garbage).
    pub handshake_failures: u64,
    /// Inbound connections closed as soon as they were accepted because
    /// `max_pending_handshakes` connections were in their handshake already.
    pub handshakes_over_cap: u64,
    /// Inbound connections in their handshake at the time of the snapshot
    /// (a gauge, at most `max_pending_handshakes`).
    pub pending_handshakes: u64,
    /// Connections refused at the TLS layer or by the certificate checks:
    /// no certificate, another CA, a name that is not the one announced, a
    /// certificate of the wrong role (also counted in `handshake_failures`).
    pub tls_refusals: u64,
    /// Connections closed because of a malformed or oversized frame.
    pub malformed_frames: u64,
    /// Replies that arrived after their ask timed out or was dropped.
    pub late_replies: u64,
    /// Messages refused because an outbound queue was full.
    pub overloaded: u64,
    /// Connections closed because their peer stopped reading: a write made
    /// no progress for `peer_stall_timeout`, or the control lane was full.
    pub stalled_connections: u64,
    /// Control frames (replies, errors, tables, pings) refused because the
    /// connection's control lane held `max_control_queue_bytes` already;
    /// each one closes its connection as stalled.
    pub control_overflows: u64,
    /// Connections closed because a call named a route id beyond the
    /// limit, twice, or never (see `routes.rs` and docs/cluster.md).
    pub route_errors: u64,
    /// Times a member was found unreachable from this node (its services
    /// left routing; see docs/cluster.md, "Reachability").
    pub unreachable_marks: u64,
    /// Calls refused with `CallError::Unreachable` or
    /// `CallError::TablesPending`.
    pub unreachable_calls: u64,
    /// Members this node's split-brain resolver downed (its side won).
    pub split_brain_downs: u64,
    /// Times this node's split-brain resolver downed the node itself (its
    /// side lost).
    pub self_downs: u64,
    /// Calls refused with `CallError::Downed` while this node was downed,
    /// or with `CallError::Joining` while it was joining (inbound, and
    /// local callers of remote services and of keyed ones).
    pub downed_calls: u64,
}

impl RemoteStats {
    pub(crate) fn snapshot(&self) -> RemoteSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RemoteSnapshot {
            frames_in: l(&self.frames_in),
            frames_out: l(&self.frames_out),
            bytes_in: l(&self.bytes_in),
            bytes_out: l(&self.bytes_out),
            handshake_failures: l(&self.handshake_failures),
            handshakes_over_cap: l(&self.handshakes_over_cap),
            pending_handshakes: l(&self.pending_handshakes),
            tls_refusals: l(&self.tls_refusals),
            malformed_frames: l(&self.malformed_frames),
            late_replies: l(&self.late_replies),
            overloaded: l(&self.overloaded),
            stalled_connections: l(&self.stalled_connections),
            control_overflows: l(&self.control_overflows),
            route_errors: l(&self.route_errors),
            unreachable_marks: l(&self.unreachable_marks),
            unreachable_calls: l(&self.unreachable_calls),
            split_brain_downs: l(&self.split_brain_downs),
            self_downs: l(&self.self_downs),
            downed_calls: l(&self.downed_calls),
        }
    }
}

/// Counters of one connection (one peer).
#[derive(Debug, Default)]
pub(crate) struct ConnStats {
    pub(crate) frames_in: AtomicU64,
    pub(crate) frames_out: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    /// Bytes waiting in the control lane (`peer::queued_bytes` per frame).
    pub(crate) control_queued_bytes: AtomicU64,
    /// Bytes waiting in the data lane (`peer::queued_bytes` per frame).
    pub(crate) data_queued_bytes: AtomicU64,
}

/// A copy of one connection's counters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ConnectionSnapshot {
    /// The peer's node name.
    pub peer: String,
    /// Frames received on this connection.
    pub frames_in: u64,
    /// Frames sent on this connection.
    pub frames_out: u64,
    /// Bytes received on this connection (after the handshake).
    pub bytes_in: u64,
    /// Bytes sent on this connection (after the handshake).
    pub bytes_out: u64,
    /// Bytes waiting in the control lane (replies, errors, tables, pings)
    /// for the connection's writer: a gauge, at most
    /// `max_control_queue_bytes`. Each frame counts an upper bound on its
    /// encoded size plus its slot in the queue (about 200 bytes), so the
    /// gauge bounds the memory the queue holds.
    pub control_queued_bytes: u64,
    /// Bytes waiting in the data lane (tells and asks to the peer): a
    /// gauge, at most `max_data_queue_bytes`.
    pub data_queued_bytes: u64,
}

impl ConnStats {
    pub(crate) fn snapshot(&self, peer: &str) -> ConnectionSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ConnectionSnapshot {
            peer: peer.to_string(),
            frames_in: l(&self.frames_in),
            frames_out: l(&self.frames_out),
            bytes_in: l(&self.bytes_in),
            bytes_out: l(&self.bytes_out),
            control_queued_bytes: l(&self.control_queued_bytes),
            data_queued_bytes: l(&self.data_queued_bytes),
        }
    }
}
