//! Remoting: the wire between nodes (work in progress toward the cluster
//! layer): frames and their codec, and the authenticated handshake.

// The connection layer that drives these is the next step of the cluster
// issue; until it lands, parts are only reached from tests.
#[allow(dead_code)]
pub(crate) mod frame;
#[allow(dead_code)]
pub(crate) mod handshake;

pub use frame::{FrameError, NodeInfo, DEFAULT_MAX_FRAME_BYTES};
pub use handshake::HandshakeError;
