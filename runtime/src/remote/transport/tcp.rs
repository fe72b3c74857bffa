//! TCP over tokio: the default transport.

use std::io;
use std::net::ToSocketAddrs;

use super::{BoxFuture, BoxStream, Listener, LocalBoxFuture, Transport};

/// TCP over tokio (`TCP_NODELAY` on every stream): the default transport of
/// a node.
///
/// # Examples
/// ```
/// use msa_runtime::remote::transport::{TcpTransport, Transport};
///
/// let listener = TcpTransport.bind("127.0.0.1:0").unwrap();
/// assert!(!listener.local_addr().ends_with(":0"), "the real port");
/// assert!(TcpTransport.is_local(&listener.local_addr()));
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct TcpTransport;

/// Where a TCP listener is in its life.
enum State {
    /// Bound; registers with the runtime on its first accept.
    Bound(std::net::TcpListener),
    Running(tokio::net::TcpListener),
    /// Registering with the runtime failed; every accept fails.
    Lost,
}

struct Tcp {
    state: State,
    local: String,
}

impl Tcp {
    fn running(&mut self) -> io::Result<&tokio::net::TcpListener> {
        self.state = match std::mem::replace(&mut self.state, State::Lost) {
            State::Bound(std) => {
                std.set_nonblocking(true)?;
                State::Running(tokio::net::TcpListener::from_std(std)?)
            }
            other => other,
        };
        match &self.state {
            State::Running(l) => Ok(l),
            _ => Err(io::Error::other("the listener could not join the runtime")),
        }
    }
}

impl Listener for Tcp {
    fn accept(&mut self) -> LocalBoxFuture<'_, io::Result<(BoxStream, String)>> {
        Box::pin(async move {
            let (s, a) = self.running()?.accept().await?;
            s.set_nodelay(true)?;
            Ok((Box::new(s) as BoxStream, a.to_string()))
        })
    }

    fn local_addr(&self) -> String {
        self.local.clone()
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

    fn bind(&self, addr: &str) -> io::Result<Box<dyn Listener>> {
        let std = std::net::TcpListener::bind(addr)?;
        let local = std.local_addr()?.to_string();
        Ok(Box::new(Tcp {
            state: State::Bound(std),
            local,
        }))
    }

    fn is_local(&self, addr: &str) -> bool {
        let Ok(addrs) = addr.to_socket_addrs() else {
            return false;
        };
        let mut any = false;
        for a in addrs {
            if !a.ip().is_loopback() {
                return false;
            }
            any = true;
        }
        any
    }
}
