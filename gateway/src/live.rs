//! The live view (docs/live-view.md): the page at `/ui` with its script
//! and style, and its data, `GET /v1/live/snapshot` (one JSON snapshot)
//! and `GET /v1/live/stream` (newline-delimited JSON snapshots, at most 4
//! per second), on the gateway and on a node's operations endpoint.
//!
//! The page holds no data and is public; the data needs an admin role
//! when auth is on (401 without a valid token, 403 without the role).

use std::sync::Arc;

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse};

use crate::auth::Authenticator;
use crate::drain::Drain;
use crate::error::ApiError;

mod assets;
mod hub;
mod traces;
mod view;

pub(crate) use assets::Asset;
pub(crate) use hub::LiveHub;

/// The content type of the stream: one JSON document per line.
const NDJSON: &str = "application/x-ndjson";

/// With auth on: 401 without a valid token, 403 without an admin role.
pub(crate) async fn require_admin(
    auth: Option<&Authenticator>,
    req: &HttpRequest,
) -> Result<(), ApiError> {
    if let Some(auth) = auth {
        let id = auth.authenticate_async(req.headers()).await?;
        if !auth.is_admin(&id) {
            return Err(ApiError::forbidden("an admin role is required"));
        }
    }
    Ok(())
}

/// `GET /v1/live/snapshot`: the latest snapshot (shared with the streams).
pub(crate) async fn snapshot(
    hub: &LiveHub,
    auth: Option<&Authenticator>,
    req: &HttpRequest,
) -> Result<HttpResponse, ApiError> {
    require_admin(auth, req).await?;
    let (_, line) = hub.latest().await;
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/json"))
        .insert_header((CACHE_CONTROL, "no-store"))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(line))
}

/// `GET /v1/live/stream`: snapshots as newline-delimited JSON until the
/// client goes away or the server drains.
pub(crate) async fn stream(
    hub: &Arc<LiveHub>,
    drain: Option<Arc<Drain>>,
    auth: Option<&Authenticator>,
    req: &HttpRequest,
) -> Result<HttpResponse, ApiError> {
    if drain.as_ref().is_some_and(|d| d.is_draining()) {
        return Err(ApiError::unavailable(crate::ops::SHUTTING_DOWN));
    }
    require_admin(auth, req).await?;
    tracing::debug!("live view stream opened");
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, NDJSON))
        .insert_header((CACHE_CONTROL, "no-store"))
        .insert_header(("x-content-type-options", "nosniff"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(hub::stream(hub.clone(), drain)))
}
