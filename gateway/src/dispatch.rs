//! The one actix-web handler: matches the route and runs its target.

use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};

use crate::body::HoldPayload;
use crate::call::{self, CallTarget};
use crate::error::ApiError;
use crate::ops;
use crate::routes::{Match, Target};
use crate::server::State;
use crate::trace::{RequestCtx, RouteLabel};

/// Answers every request (actix-web's default service).
pub(crate) async fn dispatch(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<State>,
) -> HttpResponse {
    let ctx = req
        .extensions()
        .get::<RequestCtx>()
        .cloned()
        .unwrap_or_else(RequestCtx::fresh);
    let result = match state.router.find(req.method(), req.path()) {
        Match::NotFound => Err(ApiError::not_found("no such route")),
        Match::MethodNotAllowed { allow } => Err(ApiError::method_not_allowed(allow)),
        Match::Found { route, params } => {
            req.extensions_mut().insert(RouteLabel(route.label.clone()));
            match &route.target {
                Target::Healthz => Ok(ops::healthz()),
                Target::Readyz => Ok(ops::readyz(&state)),
                Target::Metrics => ops::metrics(&state, &req),
                Target::Cluster => ops::cluster(&state, &req),
                Target::Generic => {
                    let mut it = params.into_iter().map(|(_, v)| v);
                    let service = it.next().unwrap_or_default();
                    let message = it.next().unwrap_or_default();
                    let target = CallTarget {
                        service: &service,
                        message: &message,
                        params: None,
                    };
                    call::call(&state, &req, &mut payload, &ctx, route, target).await
                }
                Target::Configured { service, message } => {
                    let target = CallTarget {
                        service,
                        message,
                        params: Some(&params),
                    };
                    call::call(&state, &req, &mut payload, &ctx, route, target).await
                }
            }
        }
    };
    let res = result.unwrap_or_else(|e| e.to_response());
    // See `body`: an unfinished body closes the connection instead of being drained.
    HoldPayload::wrap(res, payload)
}
