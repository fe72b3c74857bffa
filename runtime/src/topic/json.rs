//! A type-erased subscription: a topic's events as JSON, for ingresses
//! that do not know the event types (the gateway's server-sent events;
//! a gRPC `Subscribe` can use the same). Made by
//! [`Node::subscribe_json`](crate::Node::subscribe_json).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::queue::{Queue, TopicItem};
use super::Unsubscribe;
use crate::registry::{TopicEvent, TopicSink};
use crate::service::NodeShared;

/// One event as JSON.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JsonEvent {
    /// The event type's wire name.
    pub message: String,
    /// The event, as its type serializes to JSON.
    pub body: serde_json::Value,
}

/// JSON subscriber of one topic; dropping it unsubscribes.
#[derive(Debug)]
pub struct JsonSubscription {
    queue: Arc<Queue<JsonEvent>>,
    _guard: Unsubscribe,
}

impl JsonSubscription {
    pub(crate) fn new(node: &Arc<NodeShared>, topic: &str, bound: usize) -> Self {
        let queue = Arc::new(Queue::new(bound));
        let sink = Arc::new(JsonSink {
            queue: queue.clone(),
            node: node.clone(),
        });
        let id = node.registry.topics.subscribe(topic, None, sink);
        Self {
            queue,
            _guard: Unsubscribe {
                node: node.clone(),
                topic: Arc::from(topic),
                id,
            },
        }
    }

    /// The next event (or the count of those missed), waiting for one.
    pub async fn next(&mut self) -> TopicItem<JsonEvent> {
        self.queue.pop().await
    }

    /// The next event if one is queued.
    pub fn try_next(&mut self) -> Option<TopicItem<JsonEvent>> {
        self.queue.try_pop()
    }
}

struct JsonSink {
    queue: Arc<Queue<JsonEvent>>,
    node: Arc<NodeShared>,
}

impl std::fmt::Debug for JsonSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JsonSink")
    }
}

impl TopicSink for JsonSink {
    fn deliver(&self, wire: &str, event: TopicEvent<'_>) {
        let c = &self.node.registry.topics.counters;
        let codec = self
            .node
            .registry
            .codec_by_name(wire)
            .or_else(|| crate::message::declared::by_name(wire));
        let body = codec.ok_or(()).and_then(|codec| {
            match event {
                TopicEvent::Local(any) => (codec.to_json)(any),
                TopicEvent::Wire(bytes) => (codec.wire_to_json)(bytes),
            }
            .map_err(|e| tracing::debug!(message = wire, error = %e, "topic event not convertible to JSON"))
        });
        let Ok(body) = body else {
            c.undecodable.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let ev = JsonEvent {
            message: wire.to_string(),
            body,
        };
        if self.queue.push(ev) {
            c.delivered(1);
        } else {
            c.lagged.fetch_add(1, Ordering::Relaxed);
        }
    }
}
