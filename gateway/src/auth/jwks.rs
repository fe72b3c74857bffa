//! A JWKS document as a key source: read from a file or fetched from a URL,
//! kept, and refreshed when it is stale or a token names a `kid` it lacks.
//!
//! The fetch uses awc (actix's HTTP client: verification runs on the
//! gateway's actix-web workers, so it needs no runtime of its own) over
//! rustls with the system's CA roots (rustls-native-certs) plus an optional
//! `jwks_ca` file. Fetches are serialized (one at a time; callers that
//! waited for one use its result) and those caused by unknown `kid`s are
//! spaced by at least `jwks_min_refresh_secs`, so made-up `kid`s cannot make
//! the gateway hammer the identity provider. A failed fetch keeps the keys
//! held so far.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::Uri;
use parking_lot::{Mutex, RwLock};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::CertificateDer;

use super::keys::KeySet;
use crate::config::AuthConfig;

/// Largest JWKS document read (bytes).
const MAX_JWKS_BYTES: usize = 1 << 20;

/// Where the document comes from.
#[derive(Debug)]
enum Source {
    File(PathBuf),
    Url {
        uri: Uri,
        /// For `https://` URLs.
        tls: Option<Arc<rustls::ClientConfig>>,
    },
}

/// A JWKS key source; see the module docs.
#[derive(Debug)]
pub(crate) struct Jwks {
    source: Source,
    keys: RwLock<Arc<KeySet>>,
    /// When the keys were last loaded (`None`: never).
    loaded: Mutex<Option<Instant>>,
    /// Bumped at every successful load.
    generation: AtomicU64,
    /// Serializes fetches; holds the time of the last attempt.
    attempt: tokio::sync::Mutex<Option<Instant>>,
    refresh_every: Duration,
    min_gap: Duration,
    timeout: Duration,
}

impl Jwks {
    /// The source `cfg.jwks` names. A file is read now (an unreadable or
    /// keyless file is an error); a URL is fetched when first needed.
    pub(crate) fn new(source: &str, cfg: &AuthConfig) -> Result<Self, String> {
        let (source, keys, loaded) =
            if source.starts_with("https://") || source.starts_with("http://") {
                let uri: Uri = source.parse().map_err(|e| format!("bad JWKS URL: {e}"))?;
                let host = uri.host().unwrap_or_default();
                let tls = if uri.scheme_str() == Some("https") {
                    Some(Arc::new(client_tls(cfg.jwks_ca.as_ref())?))
                } else if is_loopback(host) {
                    None
                } else {
                    return Err("a JWKS URL must be https:// (http:// only on loopback)".into());
                };
                (Source::Url { uri, tls }, KeySet::default(), None)
            } else {
                let path = PathBuf::from(source);
                let keys = read_file(&path)?;
                (Source::File(path), keys, Some(Instant::now()))
            };
        Ok(Self {
            source,
            keys: RwLock::new(Arc::new(keys)),
            loaded: Mutex::new(loaded),
            generation: AtomicU64::new(0),
            attempt: tokio::sync::Mutex::new(None),
            refresh_every: Duration::from_secs(cfg.jwks_refresh_secs),
            min_gap: Duration::from_secs(cfg.jwks_min_refresh_secs),
            timeout: Duration::from_millis(cfg.jwks_timeout_ms),
        })
    }

    /// The keys held now.
    pub(crate) fn keys(&self) -> Arc<KeySet> {
        self.keys.read().clone()
    }

    /// Whether a URL's keys were never fetched or are older than
    /// `jwks_refresh_secs` (a file is re-read only for unknown `kid`s).
    pub(crate) fn is_stale(&self) -> bool {
        match self.source {
            Source::File(_) => false,
            Source::Url { .. } => self
                .loaded
                .lock()
                .is_none_or(|at| at.elapsed() >= self.refresh_every),
        }
    }

    /// Loads the document again, unless another caller did while this one
    /// waited (then: true) or the last attempt was less than
    /// `jwks_min_refresh_secs` ago (then: false). Returns whether the keys
    /// may have changed. When the key ids changed, `on_change` runs.
    pub(crate) async fn refresh(&self, why: &'static str, on_change: impl FnOnce()) -> bool {
        let before = self.generation.load(Ordering::Acquire);
        let mut attempt = self.attempt.lock().await;
        if self.generation.load(Ordering::Acquire) != before {
            return true;
        }
        if attempt.is_some_and(|at| at.elapsed() < self.min_gap) {
            tracing::debug!(why, "JWKS refresh skipped: the last one was too recent");
            return false;
        }
        *attempt = Some(Instant::now());
        let loaded = match &self.source {
            Source::File(path) => read_file(path),
            Source::Url { uri, tls } => self.fetch(uri, tls.clone()).await,
        };
        match loaded {
            Ok(keys) => {
                let changed = !self.keys.read().same_kids(&keys);
                tracing::info!(why, keys = keys.len(), changed, "JWKS loaded");
                *self.keys.write() = Arc::new(keys);
                *self.loaded.lock() = Some(Instant::now());
                self.generation.fetch_add(1, Ordering::AcqRel);
                if changed {
                    on_change();
                }
                true
            }
            Err(e) => {
                tracing::warn!(why, error = %e, "JWKS refresh failed; keeping the keys held");
                false
            }
        }
    }

    async fn fetch(
        &self,
        uri: &Uri,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<KeySet, String> {
        let mut connector = awc::Connector::new().timeout(self.timeout);
        if let Some(tls) = tls {
            connector = connector.rustls_0_23(tls);
        }
        let client = awc::Client::builder()
            .timeout(self.timeout)
            .connector(connector)
            .finish();
        let mut res = client
            .get(uri.clone())
            .insert_header(("accept", "application/json"))
            .send()
            .await
            .map_err(|e| format!("fetching {uri}: {e}"))?;
        if !res.status().is_success() {
            return Err(format!("fetching {uri}: status {}", res.status()));
        }
        let body = res
            .body()
            .limit(MAX_JWKS_BYTES)
            .await
            .map_err(|e| format!("reading {uri}: {e}"))?;
        KeySet::parse(&body).map_err(|e| format!("{uri}: {e}"))
    }
}

fn read_file(path: &PathBuf) -> Result<KeySet, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    KeySet::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A TLS client config trusting the system's roots and `extra_ca`.
fn client_tls(extra_ca: Option<&PathBuf>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(native.certs);
    if let Some(path) = extra_ca {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("reading `jwks_ca` {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("`jwks_ca` {}: no certificate", path.display()));
        }
        for c in certs {
            roots
                .add(c)
                .map_err(|e| format!("`jwks_ca` {}: {e}", path.display()))?;
        }
    } else if added == 0 {
        tracing::warn!(
            "no system CA roots found: an https:// JWKS URL cannot be verified (set `jwks_ca`)"
        );
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback() {
        let cfg = AuthConfig::jwks("x");
        for ok in [
            "http://127.0.0.1:9/k",
            "http://localhost/k",
            "http://[::1]:8/k",
        ] {
            assert!(Jwks::new(ok, &cfg).is_ok(), "{ok}");
        }
        assert!(Jwks::new("http://idp.example.com/k", &cfg).is_err());
        assert!(Jwks::new("/no/such/file.json", &cfg).is_err());
    }
}
