//! Remoting settings of a node and their defaults.

use std::time::Duration;

/// The default failure-detection bound.
pub(crate) const DEFAULT_DETECTION: Duration = Duration::from_secs(5);

/// The default bound of a connection's data lane (64 MiB).
pub const DEFAULT_MAX_DATA_QUEUE_BYTES: usize = 64 * 1024 * 1024;

/// The default bound of a connection's control lane (16 MiB).
pub const DEFAULT_MAX_CONTROL_QUEUE_BYTES: usize = 16 * 1024 * 1024;

/// The default time after which a peer that stopped reading is closed (10 s).
pub const DEFAULT_PEER_STALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The default time between two rounds of seed discovery (10 s).
pub const DEFAULT_DISCOVERY_INTERVAL: Duration = Duration::from_secs(10);

/// The default bound on asks from one connection served at once (8,192).
pub const DEFAULT_MAX_INBOUND_ASKS: usize = 8_192;

/// The default bound on a handshake (5 s): an inbound connection that has
/// not authenticated by then is closed.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The default bound on inbound connections still in their handshake (256).
pub const DEFAULT_MAX_PENDING_HANDSHAKES: usize = 256;

/// Remoting settings of a node.
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    /// Cluster name; nodes of another cluster are refused.
    pub cluster: String,
    /// Shared cluster secret (HMAC key). Without one (and without
    /// [`tls`](Self::tls)), only loopback is allowed.
    pub secret: Option<Vec<u8>>,
    /// Mutual TLS on every connection (nodes, membership lanes, operator
    /// clients); with it the secret is optional. See
    /// [`TlsConfig`](crate::remote::TlsConfig).
    pub tls: Option<crate::remote::TlsConfig>,
    /// Largest frame accepted or sent.
    pub max_frame_bytes: usize,
    /// Largest frame accepted before the peer is authenticated (default
    /// 4 KiB, [`DEFAULT_MAX_HANDSHAKE_FRAME_BYTES`](crate::remote::DEFAULT_MAX_HANDSHAKE_FRAME_BYTES)):
    /// a larger length prefix closes the connection before its body is
    /// read. Raised to `max_frame_bytes` once the handshake is done.
    pub max_handshake_frame_bytes: usize,
    /// An inbound connection that has not completed its handshake within
    /// this long is closed and counted in `handshake_failures` (default
    /// 5 s). Dialing sides keep `connect_timeout` for their handshakes.
    pub handshake_timeout: Duration,
    /// Inbound connections allowed in their handshake at once (default
    /// 256). Past it a new connection is closed as soon as it is accepted,
    /// logged (at most once a second) and counted (`handshakes_over_cap`);
    /// authenticated connections do not count.
    pub max_pending_handshakes: usize,
    /// Frames queued per connection before `tell` fails with `Overloaded`
    /// (each topic event counts as one, also when events share a frame).
    pub outbound_queue: usize,
    /// Bytes the data lane of a connection (tells and asks to the peer) may
    /// hold, each frame counting an upper bound on its encoded size plus its
    /// slot in the queue (about 200 bytes); past it a call fails with `Overloaded`, as past
    /// `outbound_queue` frames. Default 64 MiB.
    pub max_data_queue_bytes: usize,
    /// Bytes the control lane of a connection (replies, errors,
    /// tables, pings, membership until the lane is up) may hold, counted as
    /// for `max_data_queue_bytes`. A control
    /// frame that does not fit means the peer is not reading: it is counted
    /// (`control_overflows`) and the connection is closed as stalled.
    /// Default 16 MiB.
    pub max_control_queue_bytes: usize,
    /// A peer whose connection takes no bytes for this long while some are
    /// waiting (it stopped reading its socket) is closed as stalled
    /// (`stalled_connections`). Default 10 s.
    pub peer_stall_timeout: Duration,
    /// Asks from one connection served at once. At the bound the
    /// connection's reader waits until one is answered, so a peer that
    /// sends asks faster than they are served (or never reads the replies)
    /// is held back by TCP instead of piling up work here. Default 8,192.
    pub max_inbound_asks: usize,
    /// Addresses to dial at start (and to re-dial while they are
    /// unreachable). On TCP a seed whose host is a name is resolved to all
    /// its addresses, again every `discovery_interval`
    /// ([`DnsSeeds`](crate::remote::discovery::DnsSeeds)).
    pub seeds: Vec<String>,
    /// How often the node asks its discovery for seeds again (default 10 s).
    pub discovery_interval: Duration,
    /// The DNS server (`ip:port`) that resolves seed names; `None` (the
    /// default) uses the system's resolver configuration.
    pub dns_server: Option<std::net::SocketAddr>,
    /// Idle connections send a ping this often.
    pub heartbeat: Duration,
    /// A connection silent for this long is closed and its node declared down.
    pub dead_after: Duration,
    /// Upper bound of the re-dial backoff.
    pub reconnect_max: Duration,
    /// Bound on connecting and on the handshake.
    pub connect_timeout: Duration,
    /// A crashed or partitioned member is declared down within about this
    /// long (drives foca's probe and suspicion timing).
    pub failure_detection: Duration,
    /// The split-brain policy (default keep-majority after 5 s stable; see
    /// [`split_brain`](crate::remote::split_brain)).
    pub split_brain: crate::remote::split_brain::SplitBrainConfig,
}

impl RemoteConfig {
    /// A member from which nothing arrived on this node's own connections
    /// for this long is unreachable from here, and its services leave this
    /// node's routing: half of `dead_after` (1.5 s by default, 0.3 × the
    /// failure-detection bound, three heartbeats), at least two heartbeats.
    pub fn unreachable_after(&self) -> Duration {
        (self.dead_after / 2).max(self.heartbeat * 2)
    }
}

impl Default for RemoteConfig {
    fn default() -> Self {
        Self {
            cluster: "msa".into(),
            secret: None,
            tls: None,
            max_frame_bytes: crate::remote::frame::DEFAULT_MAX_FRAME_BYTES,
            max_handshake_frame_bytes: crate::remote::frame::DEFAULT_MAX_HANDSHAKE_FRAME_BYTES,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_pending_handshakes: DEFAULT_MAX_PENDING_HANDSHAKES,
            outbound_queue: 65_536,
            max_data_queue_bytes: DEFAULT_MAX_DATA_QUEUE_BYTES,
            max_control_queue_bytes: DEFAULT_MAX_CONTROL_QUEUE_BYTES,
            peer_stall_timeout: DEFAULT_PEER_STALL_TIMEOUT,
            max_inbound_asks: DEFAULT_MAX_INBOUND_ASKS,
            seeds: Vec::new(),
            discovery_interval: DEFAULT_DISCOVERY_INTERVAL,
            dns_server: None,
            heartbeat: Duration::from_millis(500),
            dead_after: Duration::from_secs(3),
            reconnect_max: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(3),
            failure_detection: DEFAULT_DETECTION,
            split_brain: crate::remote::split_brain::SplitBrainConfig::default(),
        }
    }
}
