//! `GET /v1/topics/{topic}`: a topic's events as server-sent events
//! (docs/gateway.md, "Topics over server-sent events").
//!
//! Each client gets its own [`JsonSubscription`] on the gateway's node,
//! bounded by `sse_buffer` events: a client that reads too slowly misses
//! events and gets a `lagged` event with the count. A comment line is sent
//! every `sse_heartbeat_ms` so that proxies keep the connection open and a
//! client that went away is noticed; when the client goes away actix drops
//! the stream, and with it the subscription.

use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use msa_runtime::{JsonSubscription, TopicItem};

use crate::error::ApiError;
use crate::server::State;

/// The `service` a policy rule names to govern topics: a rule with
/// `service = "@topics"` and `message = "<topic pattern>"` lets its roles
/// subscribe to the matching topics.
pub(crate) const TOPICS_SERVICE: &str = "@topics";

/// The longest topic name accepted.
const MAX_TOPIC_LEN: usize = 255;

/// Why a topic name is refused, if it is.
fn bad_topic(topic: &str) -> Option<String> {
    if topic.is_empty() || topic.len() > MAX_TOPIC_LEN {
        return Some(format!("a topic name has 1 to {MAX_TOPIC_LEN} characters"));
    }
    if !topic
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Some("a topic name has only letters, digits, `.`, `_` and `-`".into());
    }
    None
}

/// Refuses a topic name that is not well formed (400), counted and logged.
pub(crate) fn check_name(state: &State, topic: &str) -> Result<(), ApiError> {
    match bad_topic(topic) {
        None => Ok(()),
        Some(reason) => {
            state.metrics.count_refused("bad_topic");
            tracing::info!(topic, reason, "topic subscription refused");
            Err(ApiError::bad_request(reason))
        }
    }
}

/// Refuses a subscription the policy does not allow `id` (403), counted
/// and logged: the rules with `service = "@topics"`.
pub(crate) fn check_policy(
    state: &State,
    id: &msa_runtime::Identity,
    topic: &str,
) -> Result<(), ApiError> {
    if state.policy.allows(id, TOPICS_SERVICE, topic) {
        return Ok(());
    }
    state.metrics.count_refused("topic_forbidden");
    tracing::info!(topic, subject = %id.subject, "topic subscription forbidden");
    Err(ApiError::forbidden(format!(
        "not allowed to subscribe to `{topic}`"
    )))
}

/// Serves `GET /v1/topics/{topic}`.
pub(crate) async fn subscribe(
    state: &State,
    req: &HttpRequest,
    topic: &str,
) -> Result<HttpResponse, ApiError> {
    if state.drain.is_draining() {
        return Err(ApiError::unavailable(crate::ops::SHUTTING_DOWN));
    }
    check_name(state, topic)?;
    if let Some(auth) = &state.auth {
        let id = auth.authenticate_async(req.headers()).await?;
        check_policy(state, &id, topic)?;
    }
    let sub = state
        .node
        .subscribe_json(topic, state.config.sse_buffer.max(1));
    let heartbeat = Duration::from_millis(state.config.sse_heartbeat_ms.max(1));
    tracing::debug!(topic, "topic subscriber connected");
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(events(sub, heartbeat, state.drain.clone())))
}

/// The event stream: events, `lagged` notices and heartbeats, until the
/// client goes away (actix drops it) or the gateway drains (it ends).
fn events(
    sub: JsonSubscription,
    heartbeat: Duration,
    drain: std::sync::Arc<crate::drain::Drain>,
) -> impl futures_util::Stream<Item = Result<Bytes, actix_web::Error>> {
    let mut tick = tokio::time::interval(heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first line tells the client the subscription is in place.
    let first = Some(Bytes::from_static(b": subscribed\n\n"));
    futures_util::stream::unfold(
        (sub, tick, first, drain),
        |(mut sub, mut tick, first, drain)| async move {
            if let Some(b) = first {
                tick.reset();
                return Some((Ok(b), (sub, tick, None, drain)));
            }
            let chunk = tokio::select! {
                item = sub.next() => frame(item),
                _ = tick.tick() => Bytes::from_static(b": heartbeat\n\n"),
                () = drain.stopping() => return None,
            };
            Some((Ok(chunk), (sub, tick, None, drain)))
        },
    )
}

/// One server-sent event.
fn frame(item: TopicItem<msa_runtime::JsonEvent>) -> Bytes {
    match item {
        TopicItem::Event(e) => Bytes::from(format!("event: {}\ndata: {}\n\n", e.message, e.body)),
        TopicItem::Lagged { missed } => {
            Bytes::from(format!("event: lagged\ndata: {{\"missed\":{missed}}}\n\n"))
        }
        _ => Bytes::from_static(b": unknown item\n\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_are_checked() {
        for ok in ["orders.events", "a", "x_y-z.1"] {
            assert_eq!(bad_topic(ok), None, "{ok}");
        }
        for bad in ["", "a b", "a/b", "ä", &"x".repeat(256)] {
            assert!(bad_topic(bad).is_some(), "{bad}");
        }
    }
}
