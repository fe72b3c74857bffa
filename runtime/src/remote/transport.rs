//! The network seam: remoting reaches the network only through
//! [`Transport`], so another network can stand in for TCP. Two
//! implementations ship: [`TcpTransport`] (the default) and
//! [`MemoryNetwork`], an in-process network whose links a test can cut,
//! heal, slow down and reset. One test suite (`transport/suite.rs`) runs
//! against both. A node wraps whichever it is given in a
//! [`FaultTransport`], whose [`Faults`] an operator sets at run time
//! (`msa cluster partition`, `slow`, `heal`).
//!
//! Addresses are strings: `host:port` for TCP, any name (`a:1`, `mem:a`)
//! for the memory network. Streams and listeners are boxed: connections
//! are few and long-lived, so the indirection costs nothing measurable.

use std::io;

use tokio::io::{AsyncRead, AsyncWrite};

mod faults;
pub(crate) mod memory;
#[cfg(test)]
mod suite;
mod tcp;

pub use faults::{FaultRules, FaultTransport, Faults};
pub use memory::MemoryNetwork;
pub use tcp::TcpTransport;

/// A boxed, sendable future.
pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'static>>;

/// A boxed future borrowing its receiver.
pub type LocalBoxFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// A bidirectional byte stream.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// A boxed stream.
pub type BoxStream = Box<dyn Stream>;

/// Accepts inbound streams.
pub trait Listener: Send + 'static {
    /// The next inbound stream and the address of its dialer.
    fn accept(&mut self) -> LocalBoxFuture<'_, io::Result<(BoxStream, String)>>;

    /// The bound address, as other nodes dial it (with the real port when
    /// bound to port 0).
    fn local_addr(&self) -> String;
}

/// Opens streams and listeners: the only way remoting reaches the network.
///
/// A node holds one transport for its whole life (see
/// [`NodeBuilder::transport`](crate::NodeBuilder::transport)).
pub trait Transport: Send + Sync + std::fmt::Debug + 'static {
    /// Opens a stream to the listener at `addr`.
    ///
    /// # Errors
    /// Whatever the network reports: `ConnectionRefused` when nothing
    /// listens there, for instance. Callers bound the wait themselves.
    fn connect(&self, addr: String) -> BoxFuture<io::Result<BoxStream>>;

    /// Binds a listener at `addr` (port 0 picks a free one; read it back
    /// with [`Listener::local_addr`]).
    ///
    /// A node binds before its runtime starts, so that a bind error comes
    /// back from `NodeBuilder::start`: this must not need a running async
    /// runtime. A listener that needs one to accept registers with it on
    /// its first [`Listener::accept`], which runs on the node's runtime.
    ///
    /// # Errors
    /// `AddrInUse`, `InvalidInput` for an address this transport cannot
    /// parse, or whatever the network reports.
    fn bind(&self, addr: &str) -> io::Result<Box<dyn Listener>>;

    /// Whether a listener at `addr` is reachable from this host only
    /// (loopback for TCP; always for an in-process network). A node without
    /// a cluster secret listens only on such addresses.
    fn is_local(&self, addr: &str) -> bool;

    /// The fault rules this transport's streams obey, if it has any (a
    /// [`FaultTransport`] does; every node wraps its transport in one).
    fn faults(&self) -> Option<std::sync::Arc<Faults>> {
        None
    }
}
