//! The orders service: places orders by calling inventory and payments, and
//! keeps every order it was asked to place.

use std::collections::BTreeMap;

use actix::fut::{wrap_future, ActorFutureExt};
use msa_runtime::{
    Handler, Metadata, RemoteMessage, Reply, Service, ServiceActor, ServiceContext, ServiceRef,
    ServiceSpec,
};
use serde::{Deserialize, Serialize};

use super::events::OrderEvents;
use super::inventory::{Commit, Release, Reserve, ReserveOutcome};
use super::payments::{Charge, ChargeOutcome};
use super::{customer_of, keep, INVENTORY, ORDERS, PAYMENTS};

/// Roles that may read anybody's order with [`GetOrder`].
const READ_ANY_ROLES: [&str; 2] = ["staff", "admin"];

/// Places an order of `qty` units of `sku` for the caller (the call's
/// identity, `"anonymous"` without one). Answers the [`Order`], whatever
/// became of it: see its [`status`](Order::status).
///
/// JSON: `{"sku": "book", "qty": 2}`.
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
#[msa(name = "shop.PlaceOrder", schema)]
#[schemars(crate = "msa_runtime::schemars")]
#[rtype(result = "Order")]
pub struct PlaceOrder {
    /// What to buy (a catalog sku, e.g. `"book"`).
    pub sku: String,
    /// How many; at least 1.
    pub qty: u32,
}

impl PlaceOrder {
    /// An order of `qty` units of `sku`.
    pub fn new(sku: impl Into<String>, qty: u32) -> Self {
        Self {
            sku: sku.into(),
            qty,
        }
    }
}

/// Reads an order. Answers `None` (JSON `null`) when there is no order with
/// that id *visible to the caller*: customers see their own orders, callers
/// with the `staff` or `admin` role see every order.
///
/// JSON: `{"id": 1}`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    actix::Message,
    msa_runtime::schemars::JsonSchema,
    RemoteMessage,
)]
#[msa(name = "shop.GetOrder", schema)]
#[schemars(crate = "msa_runtime::schemars")]
#[rtype(result = "Option<Order>")]
pub struct GetOrder {
    /// The order's id, as [`PlaceOrder`] answered it.
    pub id: u64,
}

/// What became of an order. Serialized as its name (`"Confirmed"`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    msa_runtime::schemars::JsonSchema,
)]
#[schemars(crate = "msa_runtime::schemars")]
pub enum OrderStatus {
    /// Being placed: inventory or payments have not answered yet.
    Pending,
    /// Reserved, paid for, done.
    Confirmed,
    /// Fewer units in stock than ordered; nothing was charged.
    OutOfStock,
    /// The sku is not in the catalog.
    UnknownSku,
    /// The quantity was 0.
    InvalidQuantity,
    /// Payments declined the charge; the reservation was released.
    PaymentDeclined,
    /// A call to inventory or payments failed (unreachable, timed out);
    /// `reason` says which.
    Failed,
}

/// An order, as [`PlaceOrder`] and [`GetOrder`] answer it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Its id, unique within this orders instance (from 1).
    pub id: u64,
    /// Who placed it: the caller's subject, or `"anonymous"`.
    pub customer: String,
    /// What was ordered.
    pub sku: String,
    /// How many.
    pub qty: u32,
    /// The price of the whole order in cents, once inventory priced it (0 before).
    pub total_cents: u64,
    /// What became of it.
    pub status: OrderStatus,
    /// The payment's id, once charged.
    pub payment: Option<String>,
    /// Why it is not confirmed, for humans (`None` when confirmed or pending).
    pub reason: Option<String>,
}

impl Order {
    fn pending(id: u64, customer: String, msg: PlaceOrder) -> Self {
        Self {
            id,
            customer,
            sku: msg.sku,
            qty: msg.qty,
            total_cents: 0,
            status: OrderStatus::Pending,
            payment: None,
            reason: None,
        }
    }

    fn fail(mut self, status: OrderStatus, reason: String) -> Self {
        self.status = status;
        self.reason = Some(reason);
        self
    }
}

/// The orders service: every order it was asked to place, by id (up to
/// [`MAX_KEPT`](super::MAX_KEPT), oldest forgotten first). Once an order is
/// settled it publishes [`OrderPlaced`](super::OrderPlaced) or
/// [`OrderFailed`](super::OrderFailed) to the topic
/// [`ORDER_EVENTS`](super::ORDER_EVENTS), which never waits and never fails
/// the order.
#[derive(Debug, Default)]
pub struct Orders {
    orders: BTreeMap<u64, Order>,
    last_id: u64,
    /// Set when the instance starts.
    events: Option<OrderEvents>,
}

impl Orders {
    /// No orders yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn store(&mut self, order: Order) {
        keep(&mut self.orders, order.id, order);
    }

    /// Stores a settled order and publishes what became of it.
    fn settle(&mut self, order: Order) {
        if let Some(events) = &self.events {
            events.publish(&order);
        }
        self.store(order);
    }
}

impl Service for Orders {
    fn started(&mut self, ctx: &mut ServiceContext<'_, Self>) {
        self.events = Some(OrderEvents::new(ctx));
    }
}

impl Handler<PlaceOrder> for Orders {
    fn handle(
        &mut self,
        msg: PlaceOrder,
        ctx: &mut ServiceContext<'_, Self>,
    ) -> Reply<Self, Order> {
        self.last_id += 1;
        let order = Order::pending(self.last_id, customer_of(ctx.metadata()), msg);
        if order.qty == 0 {
            let order = order.fail(
                OrderStatus::InvalidQuantity,
                "qty must be at least 1".into(),
            );
            self.settle(order.clone());
            return Reply::ready(order);
        }
        self.store(order.clone());
        let downstream = Downstream {
            inventory: ctx.service(INVENTORY),
            payments: ctx.service(PAYMENTS),
            meta: ctx.propagate(),
        };
        // Runs inside the actor (so it can store the outcome) without
        // holding it: other orders are taken while this one waits.
        Reply::act(
            wrap_future::<_, ServiceActor<Self>>(downstream.place(order)).map(|order, this, _| {
                this.settle(order.clone());
                order
            }),
        )
    }
}

impl Handler<GetOrder> for Orders {
    fn handle(
        &mut self,
        msg: GetOrder,
        ctx: &mut ServiceContext<'_, Self>,
    ) -> Reply<Self, Option<Order>> {
        let caller = customer_of(ctx.metadata());
        let any = ctx
            .identity()
            .is_some_and(|i| READ_ANY_ROLES.iter().any(|r| i.has_role(r)));
        let order = self
            .orders
            .get(&msg.id)
            .filter(|o| any || o.customer == caller)
            .cloned();
        Reply::ready(order)
    }
}

/// The services an order is placed with, and the metadata to call them with.
struct Downstream {
    inventory: ServiceRef,
    payments: ServiceRef,
    meta: Metadata,
}

impl Downstream {
    /// Reserve, charge, then commit the reservation, or release it when
    /// the charge did not go through.
    async fn place(self, mut order: Order) -> Order {
        let reserve = Reserve {
            sku: order.sku.clone(),
            qty: order.qty,
        };
        let reserved = self
            .inventory
            .ask(reserve)
            .metadata(self.meta.clone())
            .await;
        let reservation = match reserved {
            Ok(ReserveOutcome::Reserved {
                reservation,
                total_cents,
                ..
            }) => {
                order.total_cents = total_cents;
                reservation
            }
            Ok(ReserveOutcome::OutOfStock { available }) => {
                let why = format!("only {available} of `{}` in stock", order.sku);
                return order.fail(OrderStatus::OutOfStock, why);
            }
            Ok(ReserveOutcome::UnknownSku) => {
                let why = format!("`{}` is not in the catalog", order.sku);
                return order.fail(OrderStatus::UnknownSku, why);
            }
            Err(e) => return order.fail(OrderStatus::Failed, format!("{INVENTORY}: {e}")),
        };
        let charge = Charge {
            order: order.id,
            amount_cents: order.total_cents,
        };
        let charged = self.payments.ask(charge).metadata(self.meta.clone()).await;
        let (status, why) = match charged {
            Ok(ChargeOutcome::Approved { payment }) => {
                // The goods are sold: the reservation can no longer be
                // released. If this call fails the stock stays reserved,
                // which errs on the side of not selling twice.
                let _ = self
                    .inventory
                    .ask(Commit { reservation })
                    .metadata(self.meta.clone())
                    .await;
                order.status = OrderStatus::Confirmed;
                order.payment = Some(payment);
                return order;
            }
            Ok(ChargeOutcome::Declined { reason }) => (OrderStatus::PaymentDeclined, reason),
            Err(e) => (OrderStatus::Failed, format!("{PAYMENTS}: {e}")),
        };
        let released = self
            .inventory
            .ask(Release { reservation })
            .metadata(self.meta)
            .await;
        let why = match released {
            Ok(_) => why,
            Err(e) => format!("{why} (and releasing the reservation failed: {e})"),
        };
        order.fail(status, why)
    }
}

/// The spec of the orders service, named [`ORDERS`]: one instance (it holds
/// the orders) handling [`PlaceOrder`] and [`GetOrder`]. It calls the
/// services named [`INVENTORY`] and [`PAYMENTS`], wherever they run (the
/// messages are declared with `#[derive(RemoteMessage)]`, so nothing needs
/// registering).
pub fn orders_spec() -> ServiceSpec<Orders> {
    ServiceSpec::new(ORDERS, Orders::new)
        .handles::<PlaceOrder>()
        .handles::<GetOrder>()
}
