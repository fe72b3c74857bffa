//! HTTPS at the gateway (`[gateway.tls]`): actix-web over rustls 0.23 with
//! the ring provider (the same rustls the node's mutual TLS uses).
//!
//! The certificate chain and key come from PEM files; with `client_ca` set
//! every client must present a certificate issued by that CA (mutual TLS),
//! checked by rustls's WebPKI client verifier. HTTP/1.1 over TLS 1.2 or
//! 1.3 (rustls's safe defaults); plain HTTP stays available without the
//! table, with a warning when it listens beyond loopback.

use std::path::Path;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsConfig;
use crate::error::GatewayError;

/// The rustls server config of `cfg`, or why not.
pub(crate) fn server_config(cfg: &TlsConfig) -> Result<ServerConfig, GatewayError> {
    server_config_of(cfg, "[gateway.tls]")
}

/// The rustls server config of `cfg`, read from the config table `table`
/// (named in errors), or why not.
pub(crate) fn server_config_of(cfg: &TlsConfig, table: &str) -> Result<ServerConfig, GatewayError> {
    let bad = |reason: String| GatewayError::Config {
        reason: format!("{table}: {reason}"),
    };
    let certs = read_certs(&cfg.cert).map_err(bad)?;
    let key = PrivateKeyDer::from_pem_file(&cfg.key)
        .map_err(|e| bad(format!("key {}: {e}", cfg.key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?;
    let builder = match &cfg.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in read_certs(ca).map_err(bad)? {
                roots
                    .add(c)
                    .map_err(|e| bad(format!("client_ca {}: {e}", ca.display())))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| bad(format!("client_ca {}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    builder
        .with_single_cert(certs, key)
        .map_err(|e| bad(format!("cert {} and key: {e}", cfg.cert.display())))
}

/// Every certificate of a PEM file (at least one).
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", path.display()));
    }
    Ok(certs)
}
