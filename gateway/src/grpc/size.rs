//! A request message over `[grpc] max_message_bytes` is `RESOURCE_EXHAUSTED`.
//!
//! tonic refuses such a message before decoding it, but with `OUT_OF_RANGE`;
//! gRPC's own servers (C++, Go, Java) answer `RESOURCE_EXHAUSTED`, which is
//! what clients retry-classify as "too big". This wrapper around the
//! `Gateway` service rewrites that one status (the service itself never
//! answers `OUT_OF_RANGE`), counts it (`msa_gateway_refused_total{reason=
//! "grpc_too_large"}`) and logs it.

use std::convert::Infallible;
use std::task::{Context, Poll};

use actix_web::web;
use tonic::body::Body;
use tonic::codegen::http::{HeaderValue, Request, Response};
use tonic::codegen::{BoxFuture, Service};
use tonic::server::NamedService;

use crate::server::State;

/// `grpc-status` of `OUT_OF_RANGE` and `RESOURCE_EXHAUSTED`.
const OUT_OF_RANGE: &str = "11";
const RESOURCE_EXHAUSTED: &str = "8";

/// Wraps a service: see the module docs.
#[derive(Debug, Clone)]
pub(crate) struct TooLarge<S> {
    pub(crate) inner: S,
    pub(crate) state: web::Data<State>,
}

impl<S: NamedService> NamedService for TooLarge<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<Request<B>> for TooLarge<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let path = req.uri().path().to_string();
        let answer = self.inner.call(req);
        let state = self.state.clone();
        Box::pin(async move {
            let mut res = answer.await?;
            if res.headers().get("grpc-status").map(HeaderValue::as_bytes)
                == Some(OUT_OF_RANGE.as_bytes())
            {
                res.headers_mut()
                    .insert("grpc-status", HeaderValue::from_static(RESOURCE_EXHAUSTED));
                state.metrics.count_refused("grpc_too_large");
                tracing::info!(%path, "gRPC request message over max_message_bytes");
            }
            Ok(res)
        })
    }
}
