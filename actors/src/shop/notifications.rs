//! The notifications service: subscribes to the orders service's events
//! ([`ORDER_EVENTS`]) and keeps the last ones it received, for
//! [`ListNotifications`] to read.

use std::collections::VecDeque;

use msa_runtime::{
    Handler, RemoteMessage, Reply, Service, ServiceContext, ServiceSpec, ServiceSubscription,
};
use serde::{Deserialize, Serialize};

use super::events::{OrderFailed, OrderPlaced, ORDER_EVENTS};
use super::NOTIFICATIONS;

/// How many notifications the service keeps unless told otherwise.
pub const DEFAULT_NOTIFICATIONS_KEPT: usize = 1000;

/// Reads what [`Notifications`] received: the last `limit` it keeps
/// (all it keeps without one), oldest first.
///
/// JSON: `{"limit": 10}` or `{}`.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    actix::Message,
    msa_runtime::schemars::JsonSchema,
    RemoteMessage,
)]
#[msa(
    name = "shop.ListNotifications",
    schema,
    enums(Notification, super::OrderStatus)
)]
#[schemars(crate = "msa_runtime::schemars")]
#[rtype(result = "NotificationLog")]
pub struct ListNotifications {
    /// At most this many, the newest (default: every kept one).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// One event the service received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Notification {
    /// An order was placed.
    Placed(OrderPlaced),
    /// An order failed.
    Failed(OrderFailed),
}

/// What [`ListNotifications`] answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationLog {
    /// Every event received since the instance started (kept or not).
    pub received: u64,
    /// The newest ones kept, oldest first.
    pub notifications: Vec<Notification>,
}

/// The notifications service: the last `capacity` order events it
/// received (older ones are forgotten, so memory stays bounded), and a
/// count of all of them. It subscribes when its instance starts and
/// unsubscribes when it stops (the subscription lives in its state).
#[derive(Debug)]
pub struct Notifications {
    capacity: usize,
    kept: VecDeque<Notification>,
    received: u64,
    subscriptions: Vec<ServiceSubscription>,
}

impl Notifications {
    /// Keeps the last `capacity` notifications (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            kept: VecDeque::new(),
            received: 0,
            subscriptions: Vec::new(),
        }
    }

    fn record(&mut self, n: Notification) {
        self.received += 1;
        if self.kept.len() == self.capacity {
            self.kept.pop_front();
        }
        self.kept.push_back(n);
    }
}

impl Service for Notifications {
    fn started(&mut self, ctx: &mut ServiceContext<'_, Self>) {
        let me = ctx.service(ctx.service_name());
        self.subscriptions = vec![
            ctx.topic::<OrderPlaced>(ORDER_EVENTS)
                .subscribe_service(&me),
            ctx.topic::<OrderFailed>(ORDER_EVENTS)
                .subscribe_service(&me),
        ];
    }

    fn stopping(&mut self, _: &mut ServiceContext<'_, Self>) {
        self.subscriptions.clear();
    }
}

impl Handler<OrderPlaced> for Notifications {
    fn handle(&mut self, e: OrderPlaced, _: &mut ServiceContext<'_, Self>) -> Reply<Self, ()> {
        self.record(Notification::Placed(e));
        Reply::ready(())
    }
}

impl Handler<OrderFailed> for Notifications {
    fn handle(&mut self, e: OrderFailed, _: &mut ServiceContext<'_, Self>) -> Reply<Self, ()> {
        self.record(Notification::Failed(e));
        Reply::ready(())
    }
}

impl Handler<ListNotifications> for Notifications {
    fn handle(
        &mut self,
        msg: ListNotifications,
        _: &mut ServiceContext<'_, Self>,
    ) -> Reply<Self, NotificationLog> {
        let n = msg
            .limit
            .map_or(self.kept.len(), |l| (l as usize).min(self.kept.len()));
        Reply::ready(NotificationLog {
            received: self.received,
            notifications: self
                .kept
                .iter()
                .skip(self.kept.len() - n)
                .cloned()
                .collect(),
        })
    }
}

/// The spec of the notifications service, named [`NOTIFICATIONS`], keeping
/// the last [`DEFAULT_NOTIFICATIONS_KEPT`] notifications.
pub fn notifications_spec() -> ServiceSpec<Notifications> {
    notifications_spec_keeping(DEFAULT_NOTIFICATIONS_KEPT)
}

/// [`notifications_spec`], keeping the last `capacity`. One instance (it
/// holds the log). The events arrive as local messages from its node's
/// topic (`handles_local`): no caller can send it fake ones; only
/// [`ListNotifications`] is callable from other nodes and the gateway.
pub fn notifications_spec_keeping(capacity: usize) -> ServiceSpec<Notifications> {
    ServiceSpec::new(NOTIFICATIONS, move || Notifications::new(capacity))
        .handles_local::<OrderPlaced>()
        .handles_local::<OrderFailed>()
        .handles::<ListNotifications>()
}
