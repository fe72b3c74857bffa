//! Reading a request body under the size limit.
//!
//! A declared `Content-Length` over the limit is refused before a byte of
//! the body is read; a body without one (chunked) is read chunk by chunk
//! and refused as soon as it passes the limit, so a 100 MB upload costs at
//! most the limit plus one chunk of memory.
//!
//! actix-http drains a dropped, unfinished chunked body to keep the
//! connection alive, which would read all 100 MB; so the handler keeps the
//! payload alive inside its response body ([`HoldPayload`]): actix-http
//! then sees an unfinished request body when the answer is done and closes
//! the connection (after its 1 s linger) instead of reading on.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::http::header::{HeaderMap, CONTENT_LENGTH};
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::HttpResponse;
use futures_util::StreamExt;

use crate::error::ApiError;

/// A response body that also holds the request's payload until the
/// response is written (see the module docs).
pub(crate) struct HoldPayload {
    body: BoxBody,
    _payload: web::Payload,
}

impl HoldPayload {
    /// Wraps `res` so that `payload` lives as long as its body.
    pub(crate) fn wrap(res: HttpResponse, payload: web::Payload) -> HttpResponse {
        res.map_body(|_, body| HoldPayload {
            body,
            _payload: payload,
        })
        .map_into_boxed_body()
    }
}

impl MessageBody for HoldPayload {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

/// Refuses a request whose declared length is over `limit` (413) or not a number (400).
pub(crate) fn check_declared_length(headers: &HeaderMap, limit: usize) -> Result<(), ApiError> {
    let Some(v) = headers.get(CONTENT_LENGTH) else {
        return Ok(());
    };
    let len = v
        .to_str()
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .ok_or_else(|| ApiError::bad_request("invalid Content-Length"))?;
    if len > limit as u64 {
        return Err(ApiError::payload_too_large(limit));
    }
    Ok(())
}

/// Reads the whole body, at most `limit` bytes.
pub(crate) async fn read(
    headers: &HeaderMap,
    payload: &mut web::Payload,
    limit: usize,
) -> Result<Bytes, ApiError> {
    check_declared_length(headers, limit)?;
    let read_err = |e| ApiError::bad_request(format!("could not read the body: {e}"));
    // Most bodies come in one chunk: keep it as is, without a copy.
    let first = match payload.next().await {
        None => return Ok(Bytes::new()),
        Some(chunk) => chunk.map_err(read_err)?,
    };
    if first.len() > limit {
        return Err(ApiError::payload_too_large(limit));
    }
    let Some(second) = payload.next().await else {
        return Ok(first);
    };
    let mut buf = BytesMut::from(&first[..]);
    let mut next = Some(second);
    while let Some(chunk) = next {
        let chunk = chunk.map_err(read_err)?;
        if buf.len().saturating_add(chunk.len()) > limit {
            return Err(ApiError::payload_too_large(limit));
        }
        buf.extend_from_slice(&chunk);
        next = payload.next().await;
    }
    Ok(buf.freeze())
}
