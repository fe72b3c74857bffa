//! The shop's events: `orders` publishes, `notifications` records.

use msa_runtime::TopicItem;

use super::*;

const WAIT: Duration = Duration::from_secs(15);

async fn log(n: &ServiceRef, limit: Option<u32>) -> NotificationLog {
    n.ask(ListNotifications { limit }).await.unwrap()
}

/// Waits until `log` has received `count` events.
async fn received(n: &ServiceRef, count: u64) -> NotificationLog {
    eventually(&format!("{count} notifications"), WAIT, || {
        let n = n.clone();
        async move {
            n.ask(ListNotifications::default())
                .await
                .is_ok_and(|l| l.received >= count)
        }
    })
    .await;
    log(n, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_on_node_a_is_recorded_by_notifications_on_node_b() {
    let a = cluster_node("a", None);
    let b = cluster_node("b", a.remote_addr());
    a.spawn(inventory_spec()).await.unwrap();
    a.spawn(payments_spec()).await.unwrap();
    let orders = a.spawn(orders_spec()).await.unwrap();
    let notes = b.spawn(notifications_spec()).await.unwrap();
    // Wait until a knows b subscribes (the table round trip).
    let placed = a.topic::<OrderPlaced>(ORDER_EVENTS);
    eventually("b subscribes to the shop's topic", WAIT, || {
        let got = placed.remote_subscribers();
        async move { got == ["b"] }
    })
    .await;

    let ok = orders
        .ask(PlaceOrder::new("book", 2))
        .metadata(as_user("alice", &["customer"]))
        .await
        .unwrap();
    assert_eq!(ok.status, OrderStatus::Confirmed, "{ok:?}");
    let bad = orders.ask(PlaceOrder::new("tshirt", 6)).await.unwrap();
    assert_eq!(bad.status, OrderStatus::OutOfStock);

    let got = received(&notes, 2).await;
    assert_eq!(got.received, 2);
    assert_eq!(
        got.notifications,
        [
            Notification::Placed(OrderPlaced {
                id: ok.id,
                customer: "alice".into(),
                sku: "book".into(),
                qty: 2,
                total_cents: 2 * 1299,
                payment: ok.payment.clone().unwrap(),
            }),
            Notification::Failed(OrderFailed {
                id: bad.id,
                customer: ANONYMOUS.into(),
                sku: "tshirt".into(),
                qty: 6,
                status: OrderStatus::OutOfStock,
                reason: "only 5 of `tshirt` in stock".into(),
            }),
        ]
    );
    // One copy crossed to b and was delivered there.
    assert!(b.topic_stats().delivered >= 2, "{:?}", b.topic_stats());
    b.shutdown(GRACE).await.unwrap();
    a.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn every_kind_of_failed_order_gives_order_failed_with_its_status() {
    let (node, orders) = shop().await;
    let notes = node.spawn(notifications_spec()).await.unwrap();
    orders.ask(PlaceOrder::new("unicorn", 1)).await.unwrap();
    orders.ask(PlaceOrder::new("book", 0)).await.unwrap();
    let got = received(&notes, 2).await;
    let statuses: Vec<(u64, OrderStatus)> = got
        .notifications
        .iter()
        .map(|n| match n {
            Notification::Failed(f) => (f.id, f.status),
            Notification::Placed(p) => panic!("not placed: {p:?}"),
        })
        .collect();
    assert_eq!(
        statuses,
        [
            (1, OrderStatus::UnknownSku),
            (2, OrderStatus::InvalidQuantity)
        ]
    );
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn notifications_keep_only_the_last_n_and_list_honours_the_limit() {
    let (node, orders) = shop().await;
    let notes = node.spawn(notifications_spec_keeping(2)).await.unwrap();
    for _ in 0..3 {
        orders.ask(PlaceOrder::new("book", 1)).await.unwrap();
    }
    let got = received(&notes, 3).await;
    let ids: Vec<u64> = got
        .notifications
        .iter()
        .map(|n| match n {
            Notification::Placed(p) => p.id,
            Notification::Failed(f) => f.id,
        })
        .collect();
    assert_eq!((got.received, ids), (3, vec![2, 3]), "the oldest is gone");
    let last = log(&notes, Some(1)).await;
    assert_eq!(last.notifications.len(), 1);
    assert_eq!(last.notifications, got.notifications[1..]);
    assert!(log(&notes, Some(0)).await.notifications.is_empty());
    // JSON callers may leave the limit out.
    let reply = node
        .call_json(
            NOTIFICATIONS,
            "shop.ListNotifications",
            JsonBody::Bytes(b"{}"),
            Metadata::new(),
            None,
        )
        .unwrap()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(v["received"], 3, "{v}");
    assert_eq!(v["notifications"][0]["Placed"]["id"], 2, "{v}");
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn the_events_cannot_be_sent_to_notifications_from_outside() {
    let (node, _) = shop().await;
    node.spawn(notifications_spec()).await.unwrap();
    let body = br#"{"id":9,"customer":"x","sku":"book","qty":1,"total_cents":1,"payment":"p"}"#;
    let sent = match node.call_json(
        NOTIFICATIONS,
        "shop.OrderPlaced",
        JsonBody::Bytes(body),
        Metadata::new(),
        None,
    ) {
        Ok(call) => call.await.map(|_| ()).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let why = sent.expect_err("a forged event was accepted");
    assert!(why.contains("does not handle"), "{why}");
    let notes = node.service(NOTIFICATIONS);
    assert_eq!(log(&notes, None).await.received, 0);
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn a_slow_subscriber_never_blocks_or_fails_an_order() {
    let (node, orders) = shop().await;
    let mut sub = node.topic::<OrderPlaced>(ORDER_EVENTS).subscribe(1);
    for _ in 0..3 {
        let o = orders.ask(PlaceOrder::new("book", 1)).await.unwrap();
        assert_eq!(o.status, OrderStatus::Confirmed);
    }
    match sub.next().await {
        TopicItem::Event(e) => assert_eq!(e.id, 1),
        other => panic!("{other:?}"),
    }
    assert_eq!(sub.next().await, TopicItem::Lagged { missed: 2 });
    node.shutdown(GRACE).await.unwrap();
}
