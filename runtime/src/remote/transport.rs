//! The network seam: remoting reaches the network only through
//! [`Transport`], so a simulated network (turmoil's `turmoil::net`) can
//! stand in for TCP. Streams and listeners are boxed: connections are few
//! and long-lived, so the indirection costs nothing measurable.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};

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
    /// The next inbound stream and its peer address.
    fn accept(&mut self) -> LocalBoxFuture<'_, io::Result<(BoxStream, SocketAddr)>>;
    /// The bound address (with the real port when bound to port 0).
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// Opens streams and listeners.
pub trait Transport: Send + Sync + std::fmt::Debug + 'static {
    /// Connects to `addr` (`host:port`).
    fn connect(&self, addr: String) -> BoxFuture<io::Result<BoxStream>>;
    /// Turns an already bound std listener into a [`Listener`]; must be
    /// called on the thread (runtime) that will accept.
    fn listener(&self, std: std::net::TcpListener) -> io::Result<Box<dyn Listener>>;
}

/// TCP over tokio.
#[derive(Debug, Default, Clone, Copy)]
pub struct TcpTransport;

struct TcpListener(tokio::net::TcpListener);

impl Listener for TcpListener {
    fn accept(&mut self) -> LocalBoxFuture<'_, io::Result<(BoxStream, SocketAddr)>> {
        Box::pin(async move {
            let (s, a) = self.0.accept().await?;
            s.set_nodelay(true)?;
            Ok((Box::new(s) as BoxStream, a))
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl Transport for TcpTransport {
    fn connect(&self, addr: String) -> BoxFuture<io::Result<BoxStream>> {
        Box::pin(async move {
            let s = tokio::net::TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            Ok(Box::new(s) as BoxStream)
        })
    }

    fn listener(&self, std: std::net::TcpListener) -> io::Result<Box<dyn Listener>> {
        std.set_nonblocking(true)?;
        Ok(Box::new(TcpListener(tokio::net::TcpListener::from_std(
            std,
        )?)))
    }
}
