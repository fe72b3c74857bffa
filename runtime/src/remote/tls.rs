//! Mutual TLS between nodes (and between an operator and a node).
//!
//! Every connection is wrapped in TLS 1.3 (rustls, ring provider) before
//! the msa handshake runs inside it. Both sides present a certificate
//! issued by the cluster CA; neither side checks a DNS name at the TLS
//! layer, because a node dials seeds by address and learns a peer's name
//! only from the msa handshake. Instead each certificate carries its msa
//! name as a SAN URI:
//!
//! * `msa://node/<name>`: a node; it may listen and dial. The msa
//!   handshake then checks that the node name the peer announces is this
//!   name ([`TlsIdentity::check_node`]).
//! * `msa://operator/<name>`: an operator (`msa cluster status` and the
//!   other operator commands); it may only connect as a client, never join
//!   as a node, and a node certificate cannot act as an operator.
//!
//! [`TlsConfig`] reads the CA, certificate and key from PEM files and can
//! [`reload`](TlsConfig::reload) them: connections made afterwards use the
//! new ones, established connections keep theirs. Why these crates:
//! rustls is the TLS stack of the Rust ecosystem (audited, no C); the ring
//! provider builds without cmake; x509-parser reads the SAN URI and the
//! expiry, which rustls does not expose. See docs/security.md, "Between
//! nodes: mutual TLS".

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use super::transport::BoxStream;

mod client;
pub use client::TlsClientTransport;

/// The SAN URI prefix of a node certificate.
pub const NODE_URI_PREFIX: &str = "msa://node/";
/// The SAN URI prefix of an operator certificate.
pub const OPERATOR_URI_PREFIX: &str = "msa://operator/";

/// Why TLS could not be set up, or a peer was refused at the TLS layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("cannot read {what} from {path}: {reason}")]
    File {
        /// `CA`, `certificate` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// rustls refused the CA, certificate or key.
    #[error("bad TLS setup: {0}")]
    Setup(String),
    /// A certificate carries no `msa://node/` or `msa://operator/` SAN URI
    /// (or more than one).
    #[error("certificate has no single msa identity (a SAN URI msa://node/NAME or msa://operator/NAME): {0}")]
    NoIdentity(String),
    /// The TLS handshake failed (no certificate, another CA, expired, …).
    #[error("TLS handshake failed: {0}")]
    Handshake(String),
    /// The peer went away or stayed silent before the TLS handshake was
    /// done (closed, reset, timed out): not a refusal of its credentials.
    #[error("TLS handshake not completed: {0}")]
    Closed(String),
    /// The peer's certificate names another node than the one it announced.
    #[error("peer announced node `{announced}` but its certificate is for {cert}")]
    NameMismatch {
        /// The name in the msa handshake.
        announced: String,
        /// What the certificate says.
        cert: TlsIdentity,
    },
    /// A reloaded certificate is for another identity than this side's.
    #[error("the certificate is for {cert}, expected {expected}")]
    NotExpected {
        /// Who this side is.
        expected: TlsIdentity,
        /// Who the certificate is for.
        cert: TlsIdentity,
    },
    /// A certificate's role does not fit the connection (an operator
    /// certificate joining as a node, a node certificate acting as an
    /// operator).
    #[error("a {cert} certificate cannot {action}")]
    WrongRole {
        /// What the certificate says.
        cert: TlsIdentity,
        /// What the peer tried.
        action: &'static str,
    },
}

/// Who a certificate says its holder is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsIdentity {
    /// A node (`msa://node/<name>`).
    Node(String),
    /// An operator (`msa://operator/<name>`).
    Operator(String),
}

impl fmt::Display for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Node(n) => write!(f, "node `{n}`"),
            Self::Operator(n) => write!(f, "operator `{n}`"),
        }
    }
}

impl TlsIdentity {
    /// The SAN URI that carries this identity.
    pub fn uri(&self) -> String {
        match self {
            Self::Node(n) => format!("{NODE_URI_PREFIX}{n}"),
            Self::Operator(n) => format!("{OPERATOR_URI_PREFIX}{n}"),
        }
    }

    /// Checks a peer that announced itself as node `announced` (`client`:
    /// it connected as an operator client, without a listen address).
    ///
    /// # Errors
    /// [`TlsError::NameMismatch`] or [`TlsError::WrongRole`].
    pub fn check_peer(&self, announced: &str, client: bool) -> Result<(), TlsError> {
        match (self, client) {
            (Self::Node(n), false) if n == announced => Ok(()),
            (Self::Node(_), false) => Err(TlsError::NameMismatch {
                announced: announced.to_string(),
                cert: self.clone(),
            }),
            (Self::Node(_), true) => Err(TlsError::WrongRole {
                cert: self.clone(),
                action: "act as an operator",
            }),
            (Self::Operator(_), true) => Ok(()),
            (Self::Operator(_), false) => Err(TlsError::WrongRole {
                cert: self.clone(),
                action: "join as a node",
            }),
        }
    }

    /// Reads the msa identity and the expiry (unix seconds) from a DER
    /// certificate.
    ///
    /// # Errors
    /// [`TlsError::NoIdentity`] when the certificate cannot be parsed or
    /// carries no single msa SAN URI.
    pub fn from_der(der: &[u8]) -> Result<(Self, i64), TlsError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| TlsError::NoIdentity(format!("unparsable certificate: {e}")))?;
        let expiry = cert.validity().not_after.timestamp();
        let san = cert
            .subject_alternative_name()
            .map_err(|e| TlsError::NoIdentity(e.to_string()))?;
        let mut found = Vec::new();
        for name in san.iter().flat_map(|s| s.value.general_names.iter()) {
            if let x509_parser::extensions::GeneralName::URI(uri) = name {
                if let Some(n) = uri.strip_prefix(NODE_URI_PREFIX) {
                    found.push(Self::Node(n.to_string()));
                } else if let Some(n) = uri.strip_prefix(OPERATOR_URI_PREFIX) {
                    found.push(Self::Operator(n.to_string()));
                }
            }
        }
        match found.as_slice() {
            [one] if !matches!(one, Self::Node(n) | Self::Operator(n) if n.is_empty()) => {
                Ok((one.clone(), expiry))
            }
            [] => Err(TlsError::NoIdentity("none found".into())),
            _ => Err(TlsError::NoIdentity(format!("{} found", found.len()))),
        }
    }
}

/// What one load of the files gave.
#[derive(Debug)]
struct Loaded {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    identity: TlsIdentity,
    expiry: i64,
}

/// The TLS settings of a node or an operator client: the cluster CA, this
/// side's certificate (chain) and key, as PEM files. Cheap to clone (all
/// clones share one state, so a [`reload`](Self::reload) reaches them all).
///
/// # Examples
/// ```no_run
/// let tls = msa_runtime::remote::TlsConfig::from_files("ca.pem", "node1.pem", "node1.key")?;
/// let node = msa_runtime::Node::builder().name("node1").tls(tls);
/// # Ok::<(), msa_runtime::remote::TlsError>(())
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    loaded: Arc<ArcSwap<Loaded>>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca", &self.ca)
            .field("cert", &self.cert)
            .field("key", &self.key)
            .field("identity", &self.loaded.load().identity)
            .finish()
    }
}

impl TlsConfig {
    /// Reads the CA, certificate and key (PEM) now.
    ///
    /// # Errors
    /// [`TlsError::File`] for a missing or empty file, [`TlsError::Setup`]
    /// for a key that does not match, [`TlsError::NoIdentity`] for a
    /// certificate without an msa SAN URI.
    pub fn from_files(
        ca: impl Into<PathBuf>,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Result<Self, TlsError> {
        let (ca, cert, key) = (ca.into(), cert.into(), key.into());
        let loaded = load(&ca, &cert, &key)?;
        Ok(Self {
            ca,
            cert,
            key,
            loaded: Arc::new(ArcSwap::from_pointee(loaded)),
        })
    }

    /// Reads the files again; connections made from now on use what they
    /// hold. On an error the previous certificate stays in use.
    ///
    /// # Errors
    /// As [`from_files`](Self::from_files).
    pub fn reload(&self) -> Result<(), TlsError> {
        let loaded = load(&self.ca, &self.cert, &self.key)?;
        self.loaded.store(Arc::new(loaded));
        Ok(())
    }

    /// As [`reload`](Self::reload), but keeps the previous files in use
    /// unless the new certificate names `expected`.
    ///
    /// # Errors
    /// As [`reload`](Self::reload), and [`TlsError::NotExpected`] for a
    /// certificate of another identity.
    pub fn reload_as(&self, expected: &TlsIdentity) -> Result<(), TlsError> {
        let loaded = load(&self.ca, &self.cert, &self.key)?;
        if &loaded.identity != expected {
            return Err(TlsError::NotExpected {
                expected: expected.clone(),
                cert: loaded.identity,
            });
        }
        self.loaded.store(Arc::new(loaded));
        Ok(())
    }

    /// Who this side's certificate says it is.
    pub fn identity(&self) -> TlsIdentity {
        self.loaded.load().identity.clone()
    }

    /// When this side's certificate expires (unix seconds).
    pub fn cert_expiry(&self) -> i64 {
        self.loaded.load().expiry
    }

    /// The files: CA, certificate, key.
    pub fn paths(&self) -> (&Path, &Path, &Path) {
        (&self.ca, &self.cert, &self.key)
    }

    /// The listening side of TLS on a fresh stream: the encrypted stream
    /// and who the peer's certificate says it is.
    pub(crate) async fn accept(
        &self,
        stream: BoxStream,
    ) -> Result<(BoxStream, TlsIdentity), TlsError> {
        let cfg = self.loaded.load().server.clone();
        let tls = tokio_rustls::TlsAcceptor::from(cfg)
            .accept(read_ahead(stream))
            .await
            .map_err(handshake_error)?;
        let id = peer_identity(tls.get_ref().1.peer_certificates())?;
        Ok((Box::new(tls) as BoxStream, id))
    }

    /// The dialing side of TLS on a fresh stream.
    pub(crate) async fn connect(
        &self,
        stream: BoxStream,
    ) -> Result<(BoxStream, TlsIdentity), TlsError> {
        let cfg = self.loaded.load().client.clone();
        // The name is not checked at the TLS layer (see the module docs);
        // it is only sent as SNI.
        let name = ServerName::try_from("msa-node").map_err(|e| TlsError::Setup(e.to_string()))?;
        let tls = tokio_rustls::TlsConnector::from(cfg)
            .connect(name, read_ahead(stream))
            .await
            .map_err(handshake_error)?;
        let id = peer_identity(tls.get_ref().1.peer_certificates())?;
        Ok((Box::new(tls) as BoxStream, id))
    }
}

/// Bytes read from the socket at once under TLS.
///
/// rustls asks its stream for at most 4 KiB at a time (its deframer grows
/// by `READ_SIZE` = 4,096 bytes per read), so a 16 KiB record took four or
/// five reads through the fault layer and the socket, where a plaintext
/// connection's reader takes 64 KiB per read. A buffer under TLS lets one
/// read take several records.
const TLS_READ_AHEAD_BYTES: usize = 64 * 1024;

/// `stream` behind a read buffer of [`TLS_READ_AHEAD_BYTES`] (writes pass
/// straight through).
fn read_ahead(stream: BoxStream) -> tokio::io::BufReader<BoxStream> {
    tokio::io::BufReader::with_capacity(TLS_READ_AHEAD_BYTES, stream)
}

/// A closed or reset stream is the peer going away (a dialer that lost a
/// duplicate-connection race, a port scan); anything else is a refusal.
fn handshake_error(e: std::io::Error) -> TlsError {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::UnexpectedEof | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => {
            TlsError::Closed(e.to_string())
        }
        _ => TlsError::Handshake(e.to_string()),
    }
}

fn peer_identity(certs: Option<&[CertificateDer<'_>]>) -> Result<TlsIdentity, TlsError> {
    match certs.and_then(|c| c.first()) {
        Some(c) => Ok(TlsIdentity::from_der(c)?.0),
        None => Err(TlsError::Handshake("the peer sent no certificate".into())),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load(ca: &Path, cert: &Path, key: &Path) -> Result<Loaded, TlsError> {
    let file_err = |what, path: &Path| {
        let path = path.to_path_buf();
        move |e: rustls::pki_types::pem::Error| TlsError::File {
            what,
            path: path.clone(),
            reason: e.to_string(),
        }
    };
    let empty = |what, path: &Path| TlsError::File {
        what,
        path: path.to_path_buf(),
        reason: "no PEM item of that kind in the file".into(),
    };
    let mut roots = RootCertStore::empty();
    let cas = CertificateDer::pem_file_iter(ca)
        .map_err(file_err("CA", ca))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(file_err("CA", ca))?;
    if cas.is_empty() {
        return Err(empty("CA", ca));
    }
    for c in cas {
        roots
            .add(c)
            .map_err(|e| TlsError::Setup(format!("CA {}: {e}", ca.display())))?;
    }
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(file_err("certificate", cert))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(file_err("certificate", cert))?;
    let Some(first) = chain.first() else {
        return Err(empty("certificate", cert));
    };
    let (identity, expiry) = TlsIdentity::from_der(first)?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(file_err("key", key))?;
    let roots = Arc::new(roots);
    let provider = provider();
    let tls13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
    let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .build()
        .map_err(|e| TlsError::Setup(e.to_string()))?;
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(tls13)
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain.clone(), key_der.clone_key())
        .map_err(|e| TlsError::Setup(format!("certificate and key: {e}")))?;
    let client = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(tls13)
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ClusterCaVerifier { roots, provider }))
        .with_client_auth_cert(chain, key_der)
        .map_err(|e| TlsError::Setup(format!("certificate and key: {e}")))?;
    Ok(Loaded {
        server: Arc::new(server),
        client: Arc::new(client),
        identity,
        expiry,
    })
}

/// Checks a listener's certificate against the cluster CA (chain, validity,
/// the server-auth usage) but not a DNS name: the msa name in it is checked
/// against the name the listener announces in the msa handshake.
#[derive(Debug)]
struct ClusterCaVerifier {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ClusterCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_going_away_is_not_a_refusal() {
        use std::io::{Error, ErrorKind as K};
        for k in [K::UnexpectedEof, K::ConnectionReset, K::BrokenPipe] {
            assert!(
                matches!(handshake_error(Error::from(k)), TlsError::Closed(_)),
                "{k:?}"
            );
        }
        let refused = Error::new(K::InvalidData, "peer sent no certificates");
        assert!(matches!(handshake_error(refused), TlsError::Handshake(_)));
    }

    #[test]
    fn roles_and_names_are_checked() {
        let node = TlsIdentity::Node("a".into());
        assert!(node.check_peer("a", false).is_ok());
        assert!(matches!(
            node.check_peer("b", false),
            Err(TlsError::NameMismatch { .. })
        ));
        assert!(matches!(
            node.check_peer("a", true),
            Err(TlsError::WrongRole { .. })
        ));
        let op = TlsIdentity::Operator("ops".into());
        assert!(op.check_peer("msa-client-1", true).is_ok());
        assert!(matches!(
            op.check_peer("ops", false),
            Err(TlsError::WrongRole { .. })
        ));
        assert_eq!(node.uri(), "msa://node/a");
        assert_eq!(op.uri(), "msa://operator/ops");
    }

    #[test]
    fn garbage_is_no_identity() {
        assert!(matches!(
            TlsIdentity::from_der(b"not a certificate"),
            Err(TlsError::NoIdentity(_))
        ));
    }
}
