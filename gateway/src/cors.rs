//! CORS: which web origins may call the gateway from a browser
//! (`[gateway.cors]`).
//!
//! Built on actix-cors (actix-web's own CORS middleware, MIT OR Apache-2.0):
//! it answers preflights (`OPTIONS` with `Access-Control-Request-Method`)
//! itself, checks the requested method and headers, and adds the response
//! headers to actual requests; the Fetch standard's corner cases (`Vary:
//! Origin`, echoing the origin rather than `*` when credentials are on) are
//! its job, not ours. The gateway decides only *which* origins pass, with
//! its own exact-match check, so that each refused origin is logged and
//! counted (`msa_gateway_refused_total{reason="cors_denied"}`).
//!
//! A denied origin gets no CORS headers at all: a preflight from it is 400
//! (so the browser never sends the call), an actual request from it is
//! served as if CORS were off (no `Access-Control-Allow-Origin`, so the
//! browser does not let the page read the answer). Without a
//! `[gateway.cors]` table there is no CORS at all, and a preflight is 405.

use std::collections::HashSet;
use std::sync::Arc;

use actix_cors::Cors;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::{Method, Uri};

use crate::config::CorsConfig;
use crate::error::GatewayError;

/// A checked `[gateway.cors]` table, ready to build the middleware of
/// each worker.
#[derive(Debug, Clone)]
pub(crate) struct CorsPolicy {
    /// Exact origins allowed; `None`: any origin.
    origins: Option<Arc<HashSet<String>>>,
    methods: Vec<Method>,
    headers: Vec<HeaderName>,
    /// `Access-Control-Expose-Headers` for allowed origins, if any.
    expose: Option<HeaderValue>,
    max_age: Option<usize>,
    credentials: bool,
}

impl CorsPolicy {
    /// Checks `cfg`: origins are `scheme://host[:port]` (or one `"*"`),
    /// methods and header names are valid, and `"*"` is not combined with
    /// credentials.
    pub(crate) fn new(cfg: &CorsConfig) -> Result<Self, GatewayError> {
        let bad = |reason: String| GatewayError::Config {
            reason: format!("[gateway.cors]: {reason}"),
        };
        if cfg.allowed_origins.is_empty() {
            return Err(bad("`allowed_origins` is empty".into()));
        }
        let any = cfg.allowed_origins.iter().any(|o| o == "*");
        let origins = if any {
            if cfg.allowed_origins.len() > 1 {
                return Err(bad("`*` must be the only entry of `allowed_origins`".into()));
            }
            if cfg.allow_credentials {
                return Err(bad(
                    "`allow_credentials` cannot be combined with any origin (`*`)".into(),
                ));
            }
            None
        } else {
            let mut set = HashSet::new();
            for o in &cfg.allowed_origins {
                check_origin(o).map_err(|why| bad(format!("origin `{o}`: {why}")))?;
                set.insert(o.clone());
            }
            Some(Arc::new(set))
        };
        let methods = cfg
            .allowed_methods
            .iter()
            .map(|m| Method::from_bytes(m.as_bytes()).map_err(|_| bad(format!("bad method `{m}`"))))
            .collect::<Result<Vec<_>, _>>()?;
        let header = |h: &String| {
            HeaderName::from_bytes(h.as_bytes()).map_err(|_| bad(format!("bad header `{h}`")))
        };
        let headers = cfg
            .allowed_headers
            .iter()
            .map(header)
            .collect::<Result<Vec<_>, _>>()?;
        let expose = cfg
            .expose_headers
            .iter()
            .map(header)
            .collect::<Result<Vec<_>, _>>()?;
        let expose = (!expose.is_empty())
            .then(|| {
                let list: Vec<&str> = expose.iter().map(HeaderName::as_str).collect();
                HeaderValue::from_str(&list.join(", "))
            })
            .transpose()
            .map_err(|_| bad("bad `expose_headers`".into()))?;
        Ok(Self {
            origins,
            methods,
            headers,
            expose,
            max_age: cfg.max_age_secs,
            credentials: cfg.allow_credentials,
        })
    }

    /// Whether `origin` (an `Origin` header) is allowed.
    fn allows(&self, origin: &HeaderValue) -> bool {
        match &self.origins {
            None => true,
            Some(set) => origin.to_str().is_ok_and(|o| set.contains(o)),
        }
    }

    /// The `Access-Control-Expose-Headers` value for a request from
    /// `origin`: only for allowed origins.
    pub(crate) fn expose_headers(&self, origin: Option<&HeaderValue>) -> Option<&HeaderValue> {
        let origin = origin?;
        self.expose.as_ref().filter(|_| self.allows(origin))
    }

    /// The middleware of one worker; denied origins are counted in `metrics`.
    pub(crate) fn middleware(&self, metrics: Arc<dyn Fn() + Send + Sync>) -> Cors {
        let mut cors = match &self.origins {
            None => Cors::default().allow_any_origin(),
            Some(_) => {
                let policy = self.clone();
                Cors::default().allowed_origin_fn(move |origin: &HeaderValue, _| {
                    let ok = policy.allows(origin);
                    if !ok {
                        metrics();
                        tracing::info!(origin = ?origin, "CORS: origin not allowed");
                    }
                    ok
                })
            }
        };
        cors = cors
            .allowed_methods(self.methods.iter().cloned())
            .max_age(self.max_age);
        if !self.headers.is_empty() {
            cors = cors.allowed_headers(self.headers.iter().cloned());
        }
        // `expose` is added by the handler (`expose_headers`): actix-cors
        // would add it to denied origins' answers too.
        if self.credentials {
            cors = cors.supports_credentials();
        }
        cors
    }
}

/// What each worker needs to build its CORS middleware: the policy and
/// what to do on a denied origin (count it).
#[derive(Clone)]
pub(crate) struct CorsLayer {
    pub(crate) policy: CorsPolicy,
    pub(crate) on_denied: Arc<dyn Fn() + Send + Sync>,
}

impl std::fmt::Debug for CorsLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CorsLayer")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl CorsLayer {
    /// The middleware of one worker.
    pub(crate) fn middleware(&self) -> Cors {
        self.policy.middleware(self.on_denied.clone())
    }
}

/// An origin is `scheme://host[:port]`, nothing more.
fn check_origin(origin: &str) -> Result<(), &'static str> {
    let uri: Uri = origin.parse().map_err(|_| "not a URL")?;
    if uri.scheme().is_none() || uri.host().is_none() {
        return Err("expected scheme://host[:port]");
    }
    if origin.ends_with('/') || uri.path() != "/" || uri.query().is_some() {
        return Err("an origin has no path (drop the trailing `/`)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(origins: &[&str]) -> CorsConfig {
        CorsConfig {
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            ..CorsConfig::default()
        }
    }

    #[test]
    fn bad_tables_are_refused() {
        assert!(
            CorsPolicy::new(&cfg(&["https://app.example.com", "http://localhost:3000"])).is_ok()
        );
        assert!(CorsPolicy::new(&cfg(&["*"])).is_ok());
        for bad in [
            &[][..],
            &["app.example.com"],
            &["https://app.example.com/"],
            &["https://app.example.com/x"],
            &["*", "https://a.example"],
            &["not a url"],
        ] {
            assert!(CorsPolicy::new(&cfg(bad)).is_err(), "{bad:?}");
        }
        let mut c = cfg(&["*"]);
        c.allow_credentials = true;
        assert!(CorsPolicy::new(&c).is_err());
        let mut c = cfg(&["https://a.example"]);
        c.allowed_methods = vec!["GE T".into()];
        assert!(CorsPolicy::new(&c).is_err());
        let mut c = cfg(&["https://a.example"]);
        c.allowed_headers = vec!["bad header".into()];
        assert!(CorsPolicy::new(&c).is_err());
    }
}
