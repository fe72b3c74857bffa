//! The route table: built-in endpoints, configured routes, and the generic
//! `POST /v1/{service}/{message}`, matched in that order.
//!
//! The gateway routes by itself instead of through actix-web's router so
//! that it can tell "no such path" (404) from "no such method on this
//! path" (405 with `Allow`), and label every request with its route
//! pattern (bounded metric cardinality).

use std::borrow::Cow;
use std::sync::Arc;

use actix_web::http::Method;
use tokio::sync::Semaphore;

use crate::config::RouteConfig;
use crate::error::GatewayError;

/// What a route does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Healthz,
    Readyz,
    Metrics,
    Cluster,
    /// `GET /v1/openapi.json` (`openapi.rs`).
    OpenApi,
    /// `POST /v1/{service}/{message}`.
    Generic,
    /// `GET /v1/topics/{topic}`: server-sent events (`sse.rs`).
    Topic,
    /// `GET /ui`, `/ui/app.js`, `/ui/app.css`: the live page (`live.rs`).
    Ui(crate::live::Asset),
    /// `GET /v1/live/snapshot`.
    LiveSnapshot,
    /// `GET /v1/live/stream`.
    LiveStream,
    /// A configured route calling `message` on `service`.
    Configured {
        service: String,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

/// One route.
#[derive(Debug)]
pub(crate) struct Route {
    pub(crate) method: Method,
    /// The pattern as written: the route's label in logs and metrics.
    pub(crate) label: Arc<str>,
    pub(crate) target: Target,
    /// In-flight limit of calls on this route.
    pub(crate) limiter: Arc<Semaphore>,
    segments: Vec<Segment>,
}

/// Path parameters, percent-decoded, in pattern order: each parameter's
/// name (borrowed from the route) and value (borrowed from the path unless
/// it had to be decoded).
pub(crate) type Params<'r, 'p> = Vec<(&'r str, Cow<'p, str>)>;

/// The outcome of matching a request.
#[derive(Debug)]
pub(crate) enum Match<'r, 'p> {
    Found {
        route: &'r Route,
        params: Params<'r, 'p>,
    },
    /// The path exists with other methods (comma-separated for `Allow`).
    MethodNotAllowed {
        allow: String,
    },
    NotFound,
}

/// The gateway's routes, in matching order.
#[derive(Debug)]
pub(crate) struct Router {
    routes: Vec<Route>,
}

/// Methods a configured route may use.
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

impl Router {
    /// Builds the table; `max_concurrency` bounds each route's calls in flight.
    pub(crate) fn new(
        configured: &[RouteConfig],
        max_concurrency: usize,
    ) -> Result<Self, GatewayError> {
        let mut routes = Vec::new();
        let mut add = |method: Method, path: &str, target: Target| -> Result<(), String> {
            let segments = parse_pattern(path)?;
            if routes
                .iter()
                .any(|r: &Route| r.method == method && r.segments == segments)
            {
                return Err("the same method and path are already routed".into());
            }
            routes.push(Route {
                method,
                label: Arc::from(path),
                target,
                limiter: Arc::new(Semaphore::new(max_concurrency)),
                segments,
            });
            Ok(())
        };
        let builtin = [
            ("/healthz", Target::Healthz),
            ("/readyz", Target::Readyz),
            ("/metrics", Target::Metrics),
            ("/v1/cluster", Target::Cluster),
            ("/v1/openapi.json", Target::OpenApi),
            ("/v1/topics/{topic}", Target::Topic),
            ("/v1/live/snapshot", Target::LiveSnapshot),
            ("/v1/live/stream", Target::LiveStream),
        ];
        let assets = crate::live::Asset::ALL.map(|a| (a.path(), Target::Ui(a)));
        for (path, target) in builtin.into_iter().chain(assets) {
            add(Method::GET, path, target).map_err(|reason| GatewayError::Config { reason })?;
        }
        for (index, r) in configured.iter().enumerate() {
            let bad = |reason: String| GatewayError::Route {
                index,
                method: r.method.clone(),
                path: r.path.clone(),
                reason,
            };
            let upper = r.method.to_ascii_uppercase();
            if !METHODS.contains(&upper.as_str()) {
                return Err(bad(format!("method must be one of {}", METHODS.join(", "))));
            }
            let method = Method::from_bytes(upper.as_bytes()).map_err(|e| bad(e.to_string()))?;
            if r.service.is_empty() || r.message.is_empty() {
                return Err(bad("`service` and `message` must not be empty".into()));
            }
            let target = Target::Configured {
                service: r.service.clone(),
                message: r.message.clone(),
            };
            add(method, &r.path, target).map_err(bad)?;
        }
        add(Method::POST, "/v1/{service}/{message}", Target::Generic)
            .map_err(|reason| GatewayError::Config { reason })?;
        Ok(Self { routes })
    }

    /// Matches `method path` (the raw, percent-encoded path).
    pub(crate) fn find<'r, 'p>(&'r self, method: &Method, path: &'p str) -> Match<'r, 'p> {
        let parts: Vec<Cow<'p, str>> = split(path).map(decode).collect();
        let mut allow: Vec<&str> = Vec::new();
        for route in &self.routes {
            let Some(params) = route.capture(&parts) else {
                continue;
            };
            if route.method == method {
                return Match::Found { route, params };
            }
            if !allow.contains(&route.method.as_str()) {
                allow.push(route.method.as_str());
            }
        }
        if allow.is_empty() {
            Match::NotFound
        } else {
            Match::MethodNotAllowed {
                allow: allow.join(", "),
            }
        }
    }
}

impl Route {
    fn capture<'p>(&self, parts: &[Cow<'p, str>]) -> Option<Params<'_, 'p>> {
        if parts.len() != self.segments.len() {
            return None;
        }
        let matches = self
            .segments
            .iter()
            .zip(parts)
            .all(|(seg, part)| match seg {
                Segment::Literal(l) => l == part,
                // A parameter captures one non-empty segment.
                Segment::Param(_) => !part.is_empty(),
            });
        if !matches {
            return None;
        }
        let params = self
            .segments
            .iter()
            .zip(parts)
            .filter_map(|(seg, part)| match seg {
                Segment::Param(name) => Some((name.as_str(), part.clone())),
                Segment::Literal(_) => None,
            })
            .collect();
        Some(params)
    }
}

fn split(path: &str) -> impl Iterator<Item = &str> {
    path.strip_prefix('/').unwrap_or(path).split('/')
}

/// Percent-decodes one segment; one that does not decode to UTF-8 is kept as is.
fn decode(segment: &str) -> Cow<'_, str> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .unwrap_or(Cow::Borrowed(segment))
}

/// Parses `/a/{b}/c`.
fn parse_pattern(path: &str) -> Result<Vec<Segment>, String> {
    if !path.starts_with('/') {
        return Err("the path must start with `/`".into());
    }
    let mut names: Vec<&str> = Vec::new();
    split(path)
        .map(|seg| {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                let ok = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if !ok {
                    return Err(format!(
                        "bad parameter `{seg}`: use {{name}} with [A-Za-z0-9_-]"
                    ));
                }
                if names.contains(&name) {
                    return Err(format!("parameter `{name}` appears twice"));
                }
                names.push(name);
                Ok(Segment::Param(name.to_string()))
            } else if seg.contains(['{', '}']) {
                Err(format!(
                    "bad segment `{seg}`: a parameter must be a whole segment"
                ))
            } else {
                Ok(Segment::Literal(seg.to_string()))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, path: &str) -> RouteConfig {
        RouteConfig {
            method: method.into(),
            path: path.into(),
            service: "s".into(),
            message: "m".into(),
        }
    }

    #[test]
    fn paths_match_with_params_and_methods() {
        let r = Router::new(
            &[
                route("get", "/orders/{id}"),
                route("DELETE", "/orders/{id}"),
            ],
            4,
        )
        .unwrap();
        match r.find(&Method::GET, "/orders/a%20b") {
            Match::Found { route, params } => {
                assert_eq!(&*route.label, "/orders/{id}");
                assert_eq!(params, [("id", Cow::Borrowed("a b"))]);
            }
            m => panic!("{m:?}"),
        }
        match r.find(&Method::PUT, "/orders/1") {
            Match::MethodNotAllowed { allow } => assert_eq!(allow, "GET, DELETE"),
            m => panic!("{m:?}"),
        }
        assert!(matches!(r.find(&Method::GET, "/orders/"), Match::NotFound));
        assert!(matches!(
            r.find(&Method::GET, "/orders/1/x"),
            Match::NotFound
        ));
        assert!(matches!(r.find(&Method::GET, "/%ff"), Match::NotFound));
        match r.find(&Method::POST, "/v1/echo/echo.Ping") {
            Match::Found { route, params } => {
                assert_eq!(route.target, Target::Generic);
                assert_eq!(params.len(), 2);
            }
            m => panic!("{m:?}"),
        }
        assert!(matches!(
            r.find(&Method::GET, "/v1/cluster"),
            Match::Found { route, .. } if route.target == Target::Cluster
        ));
    }

    #[test]
    fn bad_routes_are_rejected() {
        for (m, p) in [
            ("FETCH", "/a"),
            ("GET", "a"),
            ("GET", "/a/{}"),
            ("GET", "/a/{x}{y}"),
            ("GET", "/a/x{y}"),
            ("GET", "/{x}/{x}"),
            ("GET", "/healthz"),
            ("GET", "/a b/{x y}"),
        ] {
            assert!(Router::new(&[route(m, p)], 1).is_err(), "{m} {p}");
        }
        assert!(Router::new(&[route("GET", "/a"), route("GET", "/a")], 1).is_err());
    }
}
