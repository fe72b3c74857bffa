//! Remoting: the wire between nodes. Length-prefixed bincode frames, an
//! authenticated handshake, one connection per peer with a batching writer,
//! service tables exchanged on connect and on change, and location-
//! transparent calls through [`ServiceRef`](crate::ServiceRef).

pub(crate) mod frame;
pub(crate) mod handshake;
pub(crate) mod membership;
pub(crate) mod peer;
pub(crate) mod remoting;
pub(crate) mod stats;
pub mod transport;
pub(crate) mod wire;

pub use frame::{FrameError, NodeInfo, DEFAULT_MAX_FRAME_BYTES};
pub use handshake::HandshakeError;
pub use remoting::RemoteConfig;
pub use stats::RemoteSnapshot;
