//! Remoting: the wire between nodes (work in progress toward the cluster
//! layer): frames and their codec, and the authenticated handshake.

pub(crate) mod frame;
pub(crate) mod handshake;

pub use frame::{FrameError, NodeInfo, DEFAULT_MAX_FRAME_BYTES};
pub use handshake::HandshakeError;
