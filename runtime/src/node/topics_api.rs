//! The node's topic API (docs/streams.md).

use super::Node;
use crate::message::RemoteMessage;
use crate::topic::{Group, GroupError, JsonSubscription, Topic, TopicStats};

impl Node {
    /// The topic `name` of events of type `E` on this node; its events
    /// reach subscribers on every node of the cluster.
    pub fn topic<E: RemoteMessage + Clone + Sync>(&self, name: &str) -> Topic<E> {
        Topic::new(self.shared().clone(), name)
    }

    /// Subscribes to `topic`'s events as JSON, whatever their type (the
    /// type must be known on this node: declared with
    /// `#[derive(RemoteMessage)]` or used with [`Node::topic`]), holding up
    /// to `bound` of them. For ingresses (the gateway's server-sent events).
    pub fn subscribe_json(&self, topic: &str, bound: usize) -> JsonSubscription {
        JsonSubscription::new(self.shared(), topic, bound)
    }

    /// The counters of this node's topics.
    pub fn topic_stats(&self) -> TopicStats {
        use std::sync::atomic::Ordering::Relaxed;
        let c = &self.shared().registry.topics.counters;
        TopicStats {
            published: c.published_total(),
            delivered: c.delivered_total(),
            lagged: c.lagged.load(Relaxed),
            remote_dropped: c.remote_dropped.load(Relaxed),
            undecodable: c.undecodable.load(Relaxed),
            refused_ads: c.refused_ads.load(Relaxed),
        }
    }

    /// The process group `name` for messages of type `M` (OTP's `pg`):
    /// join it, list its members cluster-wide, send to all or one of them
    /// (docs/streams.md, "Groups").
    ///
    /// # Errors
    /// [`GroupError::InvalidName`]: the name is empty, longer than 255
    /// bytes or holds a control character.
    pub fn group<M: RemoteMessage + Clone + Sync>(
        &self,
        name: &str,
    ) -> Result<Group<M>, GroupError> {
        Group::new(self.shared().clone(), name)
    }
}
