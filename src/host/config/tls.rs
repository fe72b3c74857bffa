//! The `[tls]` table: mutual TLS between nodes (docs/security.md,
//! "Between nodes: mutual TLS").
//!
//! ```toml
//! [tls]                          # MSA_TLS_CA, MSA_TLS_CERT, MSA_TLS_KEY; --tls-ca, --tls-cert, --tls-key
//! ca = "certs/ca.pem"            # the cluster CA (PEM)
//! cert = "certs/node1.pem"       # this node's certificate (SAN URI msa://node/<name>)
//! key = "certs/node1.key"        # its private key (PEM, PKCS#8)
//! ```
//!
//! All three or none. Relative paths are relative to the working directory.
//! SIGHUP re-reads the three files.

use std::path::PathBuf;

use anyhow::bail;
use serde::Deserialize;

/// The `[tls]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsFile {
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

/// The three files of a node's TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsPaths {
    /// The cluster CA.
    pub(crate) ca: PathBuf,
    /// This node's certificate.
    pub(crate) cert: PathBuf,
    /// Its key.
    pub(crate) key: PathBuf,
}

impl TlsFile {
    /// The flags (`--tls-ca`, …) over the table, key by key; `None` when
    /// none of the three is set.
    ///
    /// # Errors
    /// When only some of the three are set.
    pub(super) fn resolve(
        self,
        ca: Option<PathBuf>,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
    ) -> anyhow::Result<Option<TlsPaths>> {
        let empty = |p: &PathBuf| p.as_os_str().is_empty();
        let pick =
            |flag: Option<PathBuf>, file: Option<PathBuf>| flag.or(file).filter(|p| !empty(p));
        match (
            pick(ca, self.ca),
            pick(cert, self.cert),
            pick(key, self.key),
        ) {
            (None, None, None) => Ok(None),
            (Some(ca), Some(cert), Some(key)) => Ok(Some(TlsPaths { ca, cert, key })),
            (ca, cert, key) => bail!(
                "TLS needs all three of tls.ca, tls.cert and tls.key (--tls-ca, --tls-cert, \
                 --tls-key, MSA_TLS_*); missing: {}",
                [
                    ("ca", ca.is_none()),
                    ("cert", cert.is_none()),
                    ("key", key.is_none())
                ]
                .iter()
                .filter(|(_, m)| *m)
                .map(|(k, _)| *k)
                .collect::<Vec<_>>()
                .join(", ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_three_or_none_and_flags_win() {
        let f = TlsFile::default();
        assert_eq!(f.resolve(None, None, None).unwrap(), None);
        let f = TlsFile {
            ca: Some("file-ca".into()),
            cert: Some("c".into()),
            key: Some("k".into()),
        };
        let got = f
            .resolve(Some("flag-ca".into()), None, None)
            .unwrap()
            .unwrap();
        assert_eq!(got.ca, PathBuf::from("flag-ca"));
        assert_eq!(got.cert, PathBuf::from("c"));
        let f = TlsFile {
            ca: Some("ca".into()),
            ..TlsFile::default()
        };
        let e = f.resolve(None, None, None).unwrap_err().to_string();
        assert!(e.contains("missing: cert, key"), "{e}");
    }
}
