//! What the orders service tells the world: [`OrderPlaced`] and
//! [`OrderFailed`], published to the topic [`ORDER_EVENTS`] once an order
//! is settled (docs/streams.md).

use msa_runtime::{KeyedMessage, RemoteMessage, Service, ServiceContext, Topic};
use serde::{Deserialize, Serialize};

use super::orders::{Order, OrderStatus};

/// The topic the orders service publishes its events to.
pub const ORDER_EVENTS: &str = "shop.orders";

/// An order was placed: reserved, paid for, done. Routing key: the order id.
///
/// JSON: `{"id": 1, "customer": "alice", "sku": "book", "qty": 2,
/// "total_cents": 2598, "payment": "pay-1"}`.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    actix::Message,
    msa_runtime::schemars::JsonSchema,
    RemoteMessage,
)]
#[msa(name = "shop.OrderPlaced", schema)]
#[schemars(crate = "msa_runtime::schemars")]
#[rtype(result = "()")]
pub struct OrderPlaced {
    /// The order's id.
    pub id: u64,
    /// Who placed it.
    pub customer: String,
    /// What was ordered.
    pub sku: String,
    /// How many.
    pub qty: u32,
    /// What it cost, in cents.
    pub total_cents: u64,
    /// The payment's id.
    pub payment: String,
}

/// An order could not be placed. Routing key: the order id.
///
/// JSON: `{"id": 2, "customer": "alice", "sku": "book", "qty": 999,
/// "status": "OutOfStock", "reason": "only 10 of `book` in stock"}`.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    actix::Message,
    msa_runtime::schemars::JsonSchema,
    RemoteMessage,
)]
#[msa(name = "shop.OrderFailed", schema)]
#[schemars(crate = "msa_runtime::schemars")]
#[rtype(result = "()")]
pub struct OrderFailed {
    /// The order's id.
    pub id: u64,
    /// Who placed it.
    pub customer: String,
    /// What was ordered.
    pub sku: String,
    /// How many.
    pub qty: u32,
    /// Why it failed (never `Confirmed` or `Pending`).
    pub status: OrderStatus,
    /// Why it failed, for humans.
    pub reason: String,
}

impl KeyedMessage for OrderPlaced {
    fn routing_key(&self) -> u64 {
        self.id
    }
}

impl KeyedMessage for OrderFailed {
    fn routing_key(&self) -> u64 {
        self.id
    }
}

/// The event an order gives, once settled (`None` while pending).
pub(super) fn event_of(order: &Order) -> Option<Result<OrderPlaced, OrderFailed>> {
    match order.status {
        OrderStatus::Pending => None,
        OrderStatus::Confirmed => Some(Ok(OrderPlaced {
            id: order.id,
            customer: order.customer.clone(),
            sku: order.sku.clone(),
            qty: order.qty,
            total_cents: order.total_cents,
            payment: order.payment.clone().unwrap_or_default(),
        })),
        status => Some(Err(OrderFailed {
            id: order.id,
            customer: order.customer.clone(),
            sku: order.sku.clone(),
            qty: order.qty,
            status,
            reason: order.reason.clone().unwrap_or_default(),
        })),
    }
}

/// The orders service's two typed handles on [`ORDER_EVENTS`].
#[derive(Debug, Clone)]
pub(super) struct OrderEvents {
    placed: Topic<OrderPlaced>,
    failed: Topic<OrderFailed>,
}

impl OrderEvents {
    /// The handles, on the node `ctx`'s service runs on.
    pub(super) fn new<S: Service>(ctx: &ServiceContext<'_, S>) -> Self {
        Self {
            placed: ctx.topic(ORDER_EVENTS),
            failed: ctx.topic(ORDER_EVENTS),
        }
    }

    /// Publishes what became of `order` (nothing while it is pending).
    /// Never waits and never fails: a subscriber that is behind, or a node
    /// that cannot take it, misses it (docs/streams.md).
    pub(super) fn publish(&self, order: &Order) {
        match event_of(order) {
            Some(Ok(e)) => self.placed.publish_keyed(e),
            Some(Err(e)) => self.failed.publish_keyed(e),
            None => {}
        }
    }
}
