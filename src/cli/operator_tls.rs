//! `--tls-ca/--tls-cert/--tls-key` of the operator commands (`msa cluster
//! status`, the fault commands, `msa service`): connect to a node over
//! mutual TLS with an operator certificate (`msa cert operator NAME`).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Args;
use msa::remote::tls::TlsClientTransport;
use msa::remote::transport::{TcpTransport, Transport};
use msa::remote::{TlsConfig, TlsIdentity};

/// The operator's TLS files; none given: plain TCP (a node without TLS).
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct OperatorTls {
    /// Mutual TLS: the cluster CA (PEM), for nodes that run with TLS
    #[arg(long, value_name = "FILE")]
    pub(crate) tls_ca: Option<PathBuf>,
    /// Mutual TLS: an operator certificate (SAN URI msa://operator/NAME;
    /// `msa cert operator NAME` makes one); nodes refuse a node's here
    #[arg(long, value_name = "FILE")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// Mutual TLS: the operator certificate's key
    #[arg(long, value_name = "FILE")]
    pub(crate) tls_key: Option<PathBuf>,
}

impl OperatorTls {
    /// Whether any TLS file was given.
    pub(crate) fn is_set(&self) -> bool {
        self.tls_ca.is_some() || self.tls_cert.is_some() || self.tls_key.is_some()
    }

    /// The transport to reach nodes with: TLS with these files, else TCP.
    ///
    /// # Errors
    /// Only some of the three files given, or files that cannot be read.
    pub(crate) fn transport(&self) -> anyhow::Result<Arc<dyn Transport>> {
        match (&self.tls_ca, &self.tls_cert, &self.tls_key) {
            (None, None, None) => Ok(Arc::new(TcpTransport)),
            (Some(ca), Some(cert), Some(key)) => {
                let tls = TlsConfig::from_files(ca, cert, key)
                    .context("cannot read the operator's TLS files")?;
                if let TlsIdentity::Node(n) = tls.identity() {
                    eprintln!(
                        "msa: warning: {} is node {n}'s certificate; nodes accept only an \
                         operator certificate (msa cert operator NAME) from operator commands",
                        cert.display()
                    );
                }
                Ok(Arc::new(TlsClientTransport::new(tls)))
            }
            _ => bail!("--tls-ca, --tls-cert and --tls-key go together"),
        }
    }
}
