#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use msa_runtime::test_support::{eventually, remote_added};
use msa_runtime::{
    codec, Handler, Identity, JsonBody, Metadata, Node, Reply, Service, ServiceContext, ServiceRef,
    ServiceSpec,
};
use tokio::sync::Semaphore;

use super::*;

mod streams;

const GRACE: Duration = Duration::from_secs(5);

fn node() -> Node {
    Node::builder()
        .name("shop-test")
        .arbiters(1)
        .start()
        .unwrap()
}

/// A node running the three shop services; answers the node and `orders`.
async fn shop() -> (Node, ServiceRef) {
    let node = node();
    node.spawn(inventory_spec()).await.unwrap();
    node.spawn(payments_spec()).await.unwrap();
    let orders = node.spawn(orders_spec()).await.unwrap();
    (node, orders)
}

fn as_user(subject: &str, roles: &[&str]) -> Metadata {
    Metadata::new().with_identity(Identity::new(subject, roles.iter().copied()))
}

async fn stock(node: &Node, sku: &str) -> Stock {
    node.service(INVENTORY)
        .ask(GetStock { sku: sku.into() })
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn an_order_is_reserved_charged_committed_and_read_back() {
    let (node, orders) = shop().await;
    let order = orders.ask(PlaceOrder::new("book", 2)).await.unwrap();
    assert_eq!(order.status, OrderStatus::Confirmed, "{order:?}");
    assert_eq!((order.id, order.qty, order.total_cents), (1, 2, 2 * 1299));
    assert_eq!(order.customer, ANONYMOUS);
    assert_eq!(order.reason, None);
    let pay = order.payment.clone().expect("a payment id");

    assert_eq!(orders.ask(GetOrder { id: 1 }).await.unwrap(), Some(order));
    assert_eq!(orders.ask(GetOrder { id: 99 }).await.unwrap(), None);
    let s = stock(&node, "book").await;
    assert_eq!((s.available, s.reserved), (8, 0), "sold and committed");
    let p = node
        .service(PAYMENTS)
        .ask(GetPayment { id: pay.clone() })
        .await
        .unwrap()
        .unwrap();
    assert_eq!((p.id, p.order, p.amount_cents), (pay, 1, 2598));

    let second = orders.ask(PlaceOrder::new("mug", 1)).await.unwrap();
    assert_eq!((second.id, second.status), (2, OrderStatus::Confirmed));
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn out_of_stock_unknown_sku_and_zero_qty_are_statuses_that_charge_nothing() {
    let (node, orders) = shop().await;
    let o = orders.ask(PlaceOrder::new("tshirt", 6)).await.unwrap();
    assert_eq!(o.status, OrderStatus::OutOfStock);
    assert_eq!(o.reason.as_deref(), Some("only 5 of `tshirt` in stock"));
    assert_eq!(o.payment, None);
    let s = stock(&node, "tshirt").await;
    assert_eq!((s.available, s.reserved), (5, 0));

    let o = orders.ask(PlaceOrder::new("unicorn", 1)).await.unwrap();
    assert_eq!(o.status, OrderStatus::UnknownSku);
    let o = orders.ask(PlaceOrder::new("book", 0)).await.unwrap();
    assert_eq!(o.status, OrderStatus::InvalidQuantity);
    // Rejected orders are kept and readable too.
    assert_eq!(
        orders
            .ask(GetOrder { id: 1 })
            .await
            .unwrap()
            .map(|o| o.status),
        Some(OrderStatus::OutOfStock)
    );
    let none = node
        .service(PAYMENTS)
        .ask(GetPayment { id: "pay-1".into() })
        .await
        .unwrap();
    assert_eq!(none, None, "nothing was charged");
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn a_declined_payment_releases_the_reservation() {
    let (node, orders) = shop().await;
    let o = orders.ask(PlaceOrder::new("laptop", 1)).await.unwrap();
    assert_eq!(o.status, OrderStatus::PaymentDeclined, "{o:?}");
    assert_eq!(o.total_cents, 129_900);
    assert!(
        o.reason.as_deref().unwrap().contains("over the limit"),
        "{o:?}"
    );
    assert_eq!(o.payment, None);
    let s = stock(&node, "laptop").await;
    assert_eq!((s.available, s.reserved), (3, 0), "the units came back");
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn a_failed_downstream_call_fails_the_order_and_releases_the_stock() {
    let node = node();
    node.spawn(inventory_spec()).await.unwrap();
    let orders = node.spawn(orders_spec()).await.unwrap();
    // No payments service at all.
    let o = orders.ask(PlaceOrder::new("book", 1)).await.unwrap();
    assert_eq!(o.status, OrderStatus::Failed);
    assert!(
        o.reason.as_deref().unwrap().starts_with("payments:"),
        "{o:?}"
    );
    let s = stock(&node, "book").await;
    assert_eq!((s.available, s.reserved), (10, 0));
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn the_callers_identity_reaches_orders_and_payments_and_guards_reads() {
    let (node, orders) = shop().await;
    let o = orders
        .ask(PlaceOrder::new("mug", 3))
        .metadata(as_user("alice", &["customer"]))
        .await
        .unwrap();
    assert_eq!(o.customer, "alice");
    // Payments saw alice too: the metadata went downstream.
    let p = node
        .service(PAYMENTS)
        .ask(GetPayment {
            id: o.payment.clone().unwrap(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.customer, "alice");

    let read = |meta: Metadata| {
        let orders = orders.clone();
        async move {
            orders
                .ask(GetOrder { id: o.id })
                .metadata(meta)
                .await
                .unwrap()
        }
    };
    assert!(read(as_user("alice", &["customer"])).await.is_some());
    assert_eq!(read(as_user("bob", &["customer"])).await, None);
    assert_eq!(read(Metadata::new()).await, None, "anonymous is not alice");
    assert!(read(as_user("carol", &["staff"])).await.is_some());
    assert!(read(as_user("root", &["admin"])).await.is_some());
    node.shutdown(GRACE).await.unwrap();
}

/// A payments stand-in that approves each charge only once the test gives
/// it a permit.
struct GatedPayments(Arc<Semaphore>);
impl Service for GatedPayments {}
impl Handler<Charge> for GatedPayments {
    fn handle(
        &mut self,
        _: Charge,
        _: &mut ServiceContext<'_, Self>,
    ) -> Reply<Self, ChargeOutcome> {
        let gate = self.0.clone();
        Reply::future(async move {
            let _permit = gate.acquire().await;
            ChargeOutcome::Approved {
                payment: "pay-gated".into(),
            }
        })
    }
}

#[tokio::test]
async fn orders_keep_serving_while_an_order_waits_for_payments() {
    let node = node();
    let gate = Arc::new(Semaphore::new(0));
    let g = gate.clone();
    node.spawn(ServiceSpec::new(PAYMENTS, move || GatedPayments(g.clone())).handles::<Charge>())
        .await
        .unwrap();
    node.spawn(inventory_spec()).await.unwrap();
    let orders = node.spawn(orders_spec()).await.unwrap();
    let placing = tokio::spawn({
        let orders = orders.clone();
        async move { orders.ask(PlaceOrder::new("book", 1)).await }
    });
    // The orders instance answers reads while the charge hangs.
    eventually(
        "the order shows as pending",
        Duration::from_secs(10),
        || {
            let orders = orders.clone();
            async move {
                orders
                    .ask(GetOrder { id: 1 })
                    .await
                    .unwrap()
                    .map(|o| o.status)
                    == Some(OrderStatus::Pending)
            }
        },
    )
    .await;
    let other = orders.ask(PlaceOrder::new("unicorn", 1)).await.unwrap();
    assert_eq!((other.id, other.status), (2, OrderStatus::UnknownSku));
    gate.add_permits(1);
    let done = placing.await.unwrap().unwrap();
    assert_eq!(done.status, OrderStatus::Confirmed);
    assert_eq!(done.payment.as_deref(), Some("pay-gated"));
    assert_eq!(orders.ask(GetOrder { id: 1 }).await.unwrap(), Some(done));
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn restock_adds_units_and_unknown_skus_answer_none() {
    let node = node();
    let inv = node
        .spawn(inventory_spec_with(Catalog::new().item("pen", 150, 1)))
        .await
        .unwrap();
    let s = inv
        .ask(Restock {
            sku: "pen".into(),
            qty: 4,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!((s.price_cents, s.available), (150, 5));
    let none = inv
        .ask(Restock {
            sku: "book".into(),
            qty: 4,
        })
        .await
        .unwrap();
    assert_eq!(none, None);
    assert_eq!(inv.ask(GetStock { sku: "x".into() }).await.unwrap(), None);
    // A reservation is settled once: commit then release does nothing.
    let ReserveOutcome::Reserved { reservation, .. } = inv
        .ask(Reserve {
            sku: "pen".into(),
            qty: 2,
        })
        .await
        .unwrap()
    else {
        panic!("not reserved")
    };
    assert!(inv.ask(Commit { reservation }).await.unwrap());
    assert!(!inv.ask(Release { reservation }).await.unwrap());
    let s = inv
        .ask(GetStock { sku: "pen".into() })
        .await
        .unwrap()
        .unwrap();
    assert_eq!((s.available, s.reserved), (3, 0));
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn json_calls_give_friendly_orders() {
    let (node, _) = shop().await;
    let meta = as_user("alice", &["customer"]);
    let body = JsonBody::Bytes(br#"{"sku":"book","qty":1}"#);
    let reply = node
        .call_json(ORDERS, "shop.PlaceOrder", body, meta.clone(), None)
        .unwrap()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(v["status"], "Confirmed", "{v}");
    assert_eq!(v["customer"], "alice");
    assert_eq!(v["total_cents"], 1299);
    assert_eq!(v["reason"], serde_json::Value::Null);
    let body = JsonBody::Bytes(br#"{"id":42}"#);
    let reply = node
        .call_json(ORDERS, "shop.GetOrder", body, meta, None)
        .unwrap()
        .await
        .unwrap();
    assert_eq!(reply, b"null");
    node.shutdown(GRACE).await.unwrap();
}

#[test]
fn every_shop_message_is_known_with_a_schema_without_registering() {
    let node = node();
    for name in WIRE_NAMES {
        let info = node.message_info(name).unwrap_or_else(|| panic!("{name}"));
        assert!(info.schema.is_some(), "{name} has a schema");
    }
    let schema = node
        .message_info("shop.PlaceOrder")
        .unwrap()
        .schema
        .unwrap();
    assert_eq!(schema["properties"]["qty"]["type"], "integer");
    node.shutdown_blocking(GRACE).unwrap();
}

#[test]
fn specs_register_the_wire_names() {
    let names = |w: Vec<(&'static str, &'static str)>| -> Vec<&'static str> {
        w.into_iter().map(|(n, _)| n).collect()
    };
    let mut all = names(orders_spec().wire_names());
    all.extend(names(inventory_spec().wire_names()));
    all.extend(names(payments_spec().wire_names()));
    all.extend(names(notifications_spec().wire_names()));
    // The events are published, not handled from other nodes.
    all.extend(["shop.OrderPlaced", "shop.OrderFailed"]);
    assert_eq!(all, WIRE_NAMES);
}

#[test]
fn every_message_and_result_survives_the_codec() {
    fn rt<T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(v: T) {
        assert_eq!(codec::roundtrip(&v).unwrap(), v);
    }
    rt(PlaceOrder::new("book", 2));
    rt(GetOrder { id: u64::MAX });
    rt(GetStock {
        sku: "ключ".into()
    });
    rt(Restock {
        sku: "mug".into(),
        qty: u32::MAX,
    });
    rt(Reserve {
        sku: "mug".into(),
        qty: 3,
    });
    rt(Commit { reservation: 7 });
    rt(Release { reservation: 8 });
    rt(Charge {
        order: 1,
        amount_cents: 2598,
    });
    rt(GetPayment { id: "pay-1".into() });
    let order = Order {
        id: 1,
        customer: "alice".into(),
        sku: "book".into(),
        qty: 2,
        total_cents: 2598,
        status: OrderStatus::Confirmed,
        payment: Some("pay-1".into()),
        reason: None,
    };
    rt(Some(order.clone()));
    rt(None::<Order>);
    for status in [
        OrderStatus::Pending,
        OrderStatus::OutOfStock,
        OrderStatus::UnknownSku,
        OrderStatus::InvalidQuantity,
        OrderStatus::PaymentDeclined,
        OrderStatus::Failed,
    ] {
        rt(Order {
            status,
            payment: None,
            reason: Some("why".into()),
            ..order.clone()
        });
    }
    rt(Some(Stock {
        sku: "book".into(),
        price_cents: 1299,
        available: 10,
        reserved: 2,
    }));
    rt(ReserveOutcome::Reserved {
        reservation: 1,
        unit_price_cents: 1299,
        total_cents: 2598,
    });
    rt(ReserveOutcome::OutOfStock { available: 1 });
    rt(ReserveOutcome::UnknownSku);
    rt(ChargeOutcome::Approved {
        payment: "pay-1".into(),
    });
    rt(ChargeOutcome::Declined {
        reason: "no".into(),
    });
    rt(Some(Payment {
        id: "pay-1".into(),
        order: 1,
        customer: "alice".into(),
        amount_cents: 1,
    }));
    rt(true);
}

#[test]
fn results_read_well_as_json() {
    let o = Order {
        id: 3,
        customer: "alice".into(),
        sku: "laptop".into(),
        qty: 1,
        total_cents: 129_900,
        status: OrderStatus::PaymentDeclined,
        payment: None,
        reason: Some("over".into()),
    };
    let v = serde_json::to_value(&o).unwrap();
    assert_eq!(v["status"], "PaymentDeclined");
    assert_eq!(v["payment"], serde_json::Value::Null);
    let v = serde_json::to_value(ReserveOutcome::OutOfStock { available: 1 }).unwrap();
    assert_eq!(v, serde_json::json!({"OutOfStock": {"available": 1}}));
}

fn cluster_node(name: &str, seed: Option<String>) -> Node {
    let mut b = Node::builder()
        .name(name)
        .arbiters(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .secret(b"shop-test".to_vec());
    if let Some(s) = seed {
        b = b.seed(s);
    }
    b.start().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_on_one_node_reserves_and_charges_on_another() {
    let a = cluster_node("a", None);
    let b = cluster_node("b", a.remote_addr());
    let mut wb = b.watch();
    a.spawn(inventory_spec()).await.unwrap();
    a.spawn(payments_spec()).await.unwrap();
    let orders = b.spawn(orders_spec()).await.unwrap();
    remote_added(Duration::from_secs(10), &mut wb, &[INVENTORY, PAYMENTS]).await;

    let o = orders
        .ask(PlaceOrder::new("book", 3))
        .metadata(as_user("alice", &["customer"]))
        .await
        .unwrap();
    assert_eq!(o.status, OrderStatus::Confirmed, "{o:?}");
    // The identity crossed to node a with the charge.
    let p = b
        .service(PAYMENTS)
        .ask(GetPayment {
            id: o.payment.clone().unwrap(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!((p.customer.as_str(), p.amount_cents), ("alice", 3 * 1299));
    // b decodes a message for a service it does not run (as a gateway would).
    let reply = b
        .call_json(
            INVENTORY,
            "shop.Restock",
            JsonBody::Bytes(br#"{"sku":"book","qty":5}"#),
            Metadata::new(),
            None,
        )
        .unwrap()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(v["available"], 10 - 3 + 5, "{v}");
    b.shutdown(GRACE).await.unwrap();
    a.shutdown(GRACE).await.unwrap();
}
