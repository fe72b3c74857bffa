//! TLS for the gRPC ingress (`[grpc.tls]`): the gateway's rustls server
//! config (same PEM files, same optional client-certificate check as
//! `[gateway.tls]`), offering only HTTP/2 by ALPN, in front of tonic.
//!
//! Each accepted TCP connection does its handshake in a task of its own,
//! bounded by [`HANDSHAKE_BOUND`], so a client that connects and sends
//! nothing holds only its own connection; finished handshakes are handed to
//! tonic as a stream of connections.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{Stream, StreamExt as _};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tonic::transport::server::{Connected, TcpConnectInfo, TcpIncoming};

use crate::config::TlsConfig;
use crate::error::GatewayError;

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_BOUND: Duration = Duration::from_secs(10);

/// Handshakes finished but not yet taken by tonic.
const READY_BOUND: usize = 64;

/// The acceptor of `cfg`: the gateway's rustls config, ALPN `h2` only.
pub(crate) fn acceptor(cfg: &TlsConfig) -> Result<TlsAcceptor, GatewayError> {
    let mut config = crate::tls::server_config_of(cfg, "[grpc.tls]")?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A TLS connection as tonic takes it.
#[derive(Debug)]
pub(crate) struct TlsConn(TlsStream<TcpStream>);

impl Connected for TlsConn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.0.get_ref().0.connect_info()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

/// The connections of `tcp` once their TLS handshake is done (a failed or
/// too slow handshake is logged and dropped). Runs on the current tokio
/// runtime; ends when the returned stream is dropped and the next
/// connection arrives.
pub(crate) fn incoming(
    mut tcp: TcpIncoming,
    acceptor: TlsAcceptor,
) -> impl Stream<Item = Result<TlsConn, io::Error>> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<TlsConn>(READY_BOUND);
    tokio::spawn(async move {
        while let Some(conn) = tcp.next().await {
            if tx.is_closed() {
                break;
            }
            let stream = match conn {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(error = %e, "gRPC accept failed");
                    continue;
                }
            };
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                let peer = stream.peer_addr().ok();
                match tokio::time::timeout(HANDSHAKE_BOUND, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(TlsConn(tls)).await;
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(?peer, error = %e, "gRPC TLS handshake failed");
                    }
                    Err(_) => tracing::debug!(?peer, "gRPC TLS handshake timed out"),
                }
            });
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|conn| (Ok(conn), rx))
    })
}
