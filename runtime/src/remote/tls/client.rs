//! Operator clients over mutual TLS: a [`Transport`] whose streams are TLS
//! with an operator certificate, for `msa cluster status` and the other
//! operator commands (`cluster_status_via`, `inject_fault_via`,
//! `operate_services_via`).

use std::io;
use std::sync::Arc;

use super::{TlsConfig, TlsIdentity};
use crate::remote::transport::{BoxFuture, BoxStream, Listener, TcpTransport, Transport};

/// Dials nodes over mutual TLS with this side's certificate (an operator's,
/// `msa://operator/NAME`; a node refuses a node certificate on a client
/// connection) and accepts only a node certificate from the cluster CA on
/// the other end. Client side only: [`bind`](Transport::bind) fails.
///
/// # Examples
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use msa_runtime::remote::{cluster_status_via, tls::TlsClientTransport, TlsConfig};
/// let tls = TlsConfig::from_files("ca.pem", "operator.pem", "operator.key")?;
/// let status = cluster_status_via(
///     &TlsClientTransport::new(tls),
///     "127.0.0.1:7001",
///     "msa",
///     b"",
///     std::time::Duration::from_secs(5),
/// )
/// .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TlsClientTransport {
    inner: Arc<dyn Transport>,
    tls: TlsConfig,
}

impl TlsClientTransport {
    /// TLS over TCP.
    pub fn new(tls: TlsConfig) -> Self {
        Self::over(Arc::new(TcpTransport), tls)
    }

    /// TLS over another transport (a memory network in tests).
    pub fn over(inner: Arc<dyn Transport>, tls: TlsConfig) -> Self {
        Self { inner, tls }
    }
}

impl Transport for TlsClientTransport {
    fn connect(&self, addr: String) -> BoxFuture<io::Result<BoxStream>> {
        let inner = self.inner.connect(addr);
        let tls = self.tls.clone();
        Box::pin(async move {
            let (stream, peer) = tls
                .connect(inner.await?)
                .await
                .map_err(|e| io::Error::new(io::ErrorKind::PermissionDenied, e))?;
            match peer {
                TlsIdentity::Node(_) => Ok(stream),
                other => Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("the listener's certificate is for {other}, not a node"),
                )),
            }
        })
    }

    fn bind(&self, _addr: &str) -> io::Result<Box<dyn Listener>> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "a TLS client transport does not listen",
        ))
    }

    fn is_local(&self, addr: &str) -> bool {
        self.inner.is_local(addr)
    }
}
