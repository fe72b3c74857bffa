//! A small shop split into three services that call each other, so that a
//! cluster feels like microservices: [`Orders`] takes orders, asks
//! [`Inventory`] to reserve the goods and [`Payments`] to charge for them,
//! and gives the reservation back when the charge fails.
//!
//! ```text
//!            PlaceOrder                Reserve / Commit / Release
//! caller ───────────────▶ orders ──────────────────────────────────▶ inventory
//!                           │
//!                           └──────── Charge ─────────────────────▶ payments
//! ```
//!
//! | service | spec | messages (wire names) |
//! |---|---|---|
//! | `orders` | [`orders_spec`] | `shop.PlaceOrder`, `shop.GetOrder` |
//! | `inventory` | [`inventory_spec`], [`inventory_spec_with`] | `shop.GetStock`, `shop.Restock`, `shop.Reserve`, `shop.Commit`, `shop.Release` |
//! | `payments` | [`payments_spec`], [`payments_spec_with_limit`] | `shop.Charge`, `shop.GetPayment` |
//! | `notifications` | [`notifications_spec`], [`notifications_spec_keeping`] | `shop.ListNotifications` (and the events, from the topic) |
//!
//! Once an order is settled, `orders` publishes [`OrderPlaced`] or
//! [`OrderFailed`] (routing key: the order id) to the topic
//! [`ORDER_EVENTS`] (`shop.orders`); publishing never waits and never
//! fails the order. `notifications` subscribes to both, wherever it runs,
//! and keeps the last ones it received.
//!
//! The three find each other by their fixed names ([`ORDERS`],
//! [`INVENTORY`], [`PAYMENTS`]), wherever in the cluster they run. Every
//! downstream call carries the caller's metadata
//! ([`ServiceContext::propagate`](msa_runtime::ServiceContext::propagate)):
//! the caller's identity (an order's `customer` is the caller's subject,
//! `"anonymous"` without one; a payment records it too), trace and
//! deadline, with `orders` as the calling service, so that inventory and
//! payments can admit stock moves and charges from `orders` only
//! (docs/security.md).
//!
//! Domain outcomes are values, not errors: an order that could not be
//! placed comes back with a [`OrderStatus`] saying why (`OutOfStock`,
//! `UnknownSku`, `PaymentDeclined`, ...) and a human-readable `reason`, and
//! is kept like any other order. Only a failed call itself (unknown
//! service, timeout) is a [`CallError`](msa_runtime::CallError). Every
//! message and result is plain serde data with externally tagged enums, so
//! it crosses nodes (bincode) and HTTP (JSON) alike.
//!
//! State lives in memory, one instance per service (the specs spawn one):
//! an instance that restarts starts over (no orders, the catalog's initial
//! stock, no payments).
//!
//! # Examples
//! ```
//! use msa_actors::shop::{self, GetOrder, OrderStatus, PlaceOrder};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let node = msa_runtime::Node::builder().arbiters(1).start()?;
//! node.spawn(shop::inventory_spec()).await?;
//! node.spawn(shop::payments_spec()).await?;
//! let orders = node.spawn(shop::orders_spec()).await?;
//!
//! let order = orders.ask(PlaceOrder::new("book", 2)).await?;
//! assert_eq!(order.status, OrderStatus::Confirmed);
//! assert_eq!(order.total_cents, 2 * 1299);
//! assert_eq!(order.customer, "anonymous");
//! let again = orders.ask(GetOrder { id: order.id }).await?;
//! assert_eq!(again, Some(order));
//! node.shutdown(std::time::Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```

mod events;
mod inventory;
mod notifications;
mod orders;
mod payments;

pub use events::{OrderFailed, OrderPlaced, ORDER_EVENTS};
pub use inventory::{
    inventory_spec, inventory_spec_with, Catalog, Commit, GetStock, Inventory, Release, Reserve,
    ReserveOutcome, Restock, Stock,
};
pub use notifications::{
    notifications_spec, notifications_spec_keeping, ListNotifications, Notification,
    NotificationLog, Notifications, DEFAULT_NOTIFICATIONS_KEPT,
};
pub use orders::{orders_spec, GetOrder, Order, OrderStatus, Orders, PlaceOrder};
pub use payments::{
    payments_spec, payments_spec_with_limit, Charge, ChargeOutcome, GetPayment, Payment, Payments,
    DEFAULT_PAYMENT_LIMIT_CENTS,
};

use msa_runtime::{Metadata, Node};

/// The name of the orders service, which the other shop services call it by.
pub const ORDERS: &str = "orders";
/// The name of the notifications service.
pub const NOTIFICATIONS: &str = "notifications";
/// The name of the inventory service.
pub const INVENTORY: &str = "inventory";
/// The name of the payments service.
pub const PAYMENTS: &str = "payments";

/// The customer of a call that carries no identity (or an empty subject).
pub const ANONYMOUS: &str = "anonymous";

/// How many orders (and payments) a service keeps; beyond it the oldest are
/// forgotten, so a long-running demo cannot grow without bound.
pub const MAX_KEPT: usize = 100_000;

/// Did what nothing needs any more: every shop message is declared with
/// `#[derive(RemoteMessage)]`, so any node calls the shop services with
/// nothing registered, and a gateway forwards JSON to the node that hosts
/// them.
#[deprecated(since = "0.2.0", note = "shop messages need no registration")]
pub fn register_messages(_node: &Node) {}

/// The wire names of every shop message.
pub const WIRE_NAMES: [&str; 12] = [
    "shop.PlaceOrder",
    "shop.GetOrder",
    "shop.GetStock",
    "shop.Restock",
    "shop.Reserve",
    "shop.Commit",
    "shop.Release",
    "shop.Charge",
    "shop.GetPayment",
    "shop.ListNotifications",
    "shop.OrderPlaced",
    "shop.OrderFailed",
];

/// The customer a call is made for: its identity's subject, or
/// [`ANONYMOUS`].
fn customer_of(meta: &Metadata) -> String {
    meta.identity()
        .map(|i| i.subject.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or(ANONYMOUS)
        .to_string()
}

/// Inserts `value` under `key`, forgetting the smallest keys beyond
/// [`MAX_KEPT`] (ids grow, so these are the oldest).
fn keep<K: Ord, V>(map: &mut std::collections::BTreeMap<K, V>, key: K, value: V) {
    map.insert(key, value);
    while map.len() > MAX_KEPT {
        map.pop_first();
    }
}

#[cfg(test)]
mod tests;
