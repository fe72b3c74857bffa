//! The typed subscribers behind the hub's type-erased sinks: a stream's
//! queue and a service's mailbox.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::queue::Queue;
use crate::error::CallError;
use crate::message::{codec, RemoteMessage};
use crate::registry::{TopicEvent, TopicSink};
use crate::service::{NodeShared, ServiceRef};

/// The event as a typed subscriber takes it: the publisher's value cloned,
/// or the copy from another node decoded (`None`: another type, counted).
pub(super) fn typed<E: RemoteMessage + Clone>(
    node: &NodeShared,
    wire: &str,
    event: TopicEvent<'_>,
) -> Option<E> {
    let e = match event {
        TopicEvent::Local(any) => any.downcast_ref::<E>().cloned(),
        TopicEvent::Wire(bytes) if wire == E::NAME => codec::decode::<E>(bytes).ok(),
        TopicEvent::Wire(_) => None,
    };
    if e.is_none() {
        node.registry
            .topics
            .counters
            .undecodable
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            message = wire,
            expected = E::NAME,
            "topic event of another type dropped"
        );
    }
    e
}

/// A stream subscriber's queue.
pub(super) struct QueueSink<E> {
    queue: Arc<Queue<E>>,
    node: Arc<NodeShared>,
}

impl<E> QueueSink<E> {
    pub(super) fn new(queue: Arc<Queue<E>>, node: Arc<NodeShared>) -> Self {
        Self { queue, node }
    }
}

impl<E> std::fmt::Debug for QueueSink<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QueueSink")
    }
}

impl<E> QueueSink<E> {
    /// Queues one event; `true` when it was queued (for the caller to
    /// count as delivered), `false` when the queue was full (counted as
    /// lagged here).
    #[inline]
    pub(super) fn push(&self, e: E) -> bool {
        let queued = self.queue.push(e);
        if !queued {
            let c = &self.node.registry.topics.counters;
            c.lagged.fetch_add(1, Ordering::Relaxed);
        }
        queued
    }
}

impl<E: RemoteMessage + Clone + Sync> TopicSink for QueueSink<E> {
    fn deliver(&self, wire: &str, event: TopicEvent<'_>) {
        let Some(e) = typed::<E>(&self.node, wire, event) else {
            return;
        };
        if self.push(e) {
            self.node.registry.topics.counters.delivered(1);
        }
    }

    fn as_any(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        Some(self)
    }
}

/// A service subscriber: each event is told to the service.
pub(super) struct ServiceSink<E> {
    service: ServiceRef,
    node: Arc<NodeShared>,
    gone: AtomicBool,
    _event: PhantomData<fn(E)>,
}

impl<E> ServiceSink<E> {
    pub(super) fn new(service: ServiceRef, node: Arc<NodeShared>) -> Self {
        Self {
            service,
            node,
            gone: AtomicBool::new(false),
            _event: PhantomData,
        }
    }
}

impl<E> ServiceSink<E> {
    /// The service told.
    pub(super) fn service(&self) -> &ServiceRef {
        &self.service
    }
}

impl<E> ServiceSink<E>
where
    E: RemoteMessage + Clone + Sync,
    <E as actix::Message>::Result: Send,
{
    /// Tells one event to the service (nothing once it is gone); `true`
    /// when it was told (for the caller to count as delivered), `false`
    /// when it was not (counted as lagged here when the mailbox was full).
    #[inline]
    pub(super) fn tell_one(&self, e: E) -> bool {
        if self.gone.load(Ordering::Relaxed) {
            return false;
        }
        match self.service.tell(e) {
            Ok(()) => true,
            Err(e) => {
                self.not_told(e);
                false
            }
        }
    }

    /// Why a tell failed: the service gone (no more tells), or behind.
    #[cold]
    #[inline(never)]
    fn not_told(&self, e: CallError) {
        match e {
            err @ (CallError::UnknownService { .. }
            | CallError::UnhandledMessage { .. }
            | CallError::ShuttingDown) => {
                self.gone.store(true, Ordering::Relaxed);
                tracing::info!(service = %self.service.name(), error = %err, "topic subscriber gone: no more events to it");
            }
            err => {
                let c = &self.node.registry.topics.counters;
                c.lagged.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(service = %self.service.name(), error = %err, "topic event not taken");
            }
        }
    }
}

impl<E> std::fmt::Debug for ServiceSink<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceSink")
            .field("service", &self.service.name())
            .finish()
    }
}

impl<E> TopicSink for ServiceSink<E>
where
    E: RemoteMessage + Clone + Sync,
    <E as actix::Message>::Result: Send,
{
    fn deliver(&self, wire: &str, event: TopicEvent<'_>) {
        if self.gone.load(Ordering::Relaxed) {
            return;
        }
        if let Some(e) = typed::<E>(&self.node, wire, event) {
            if self.tell_one(e) {
                self.node.registry.topics.counters.delivered(1);
            }
        }
    }

    /// A run from another node: decoded, then queued on one instance as
    /// one batch where its mailbox has room (`ServiceRef::tell_batch_now`),
    /// the rest told one by one after it, as single events are.
    fn deliver_run(&self, wire: &str, payloads: &mut dyn Iterator<Item = &[u8]>) {
        if self.gone.load(Ordering::Relaxed) {
            return;
        }
        let events: Vec<E> = payloads
            .filter_map(|p| typed::<E>(&self.node, wire, TopicEvent::Wire(p)))
            .collect();
        let n = events.len();
        let rest = self.service.tell_batch_now(events);
        let batched = n - rest.len();
        let told = rest
            .into_iter()
            .fold(0, |told, e| told + u64::from(self.tell_one(e)));
        let delivered = batched as u64 + told;
        if delivered > 0 {
            self.node.registry.topics.counters.delivered(delivered);
        }
    }

    fn as_any(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        Some(self)
    }

    fn ends_with_service(&self) -> Option<&str> {
        Some(self.service.name())
    }

    fn ask_wire(
        &self,
        wire: &str,
        payload: &[u8],
        timeout: std::time::Duration,
    ) -> Result<crate::registry::WireAsk, CallError> {
        let msg = super::group::decode_for::<E>(&self.node, self.service.name(), wire, payload)?;
        let svc = self.service.clone();
        Ok(Box::pin(async move {
            let v = svc.ask(msg).timeout(timeout).await?;
            super::group::encode_result::<E>(svc.name(), &v)
        }))
    }
}
