//! Calls from a peer, served on the instances live at the moment: a route
//! resolved on a connection keeps reaching the service across restarts of
//! its instance.

use super::*;

#[derive(Debug, actix::Message, Serialize, Deserialize)]
#[rtype(result = "u64")]
struct Incr;
impl RemoteMessage for Incr {
    const NAME: &'static str = "inbound-test.Incr";
}

/// Panics: the instance dies and its supervisor starts a fresh one.
#[derive(Debug, actix::Message, Serialize, Deserialize)]
#[rtype(result = "u64")]
struct Crash;
impl RemoteMessage for Crash {
    const NAME: &'static str = "inbound-test.Crash";
}

#[derive(Default)]
struct Counter(u64);
impl Service for Counter {}
impl Handler<Incr> for Counter {
    fn handle(&mut self, _: Incr, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        self.0 += 1;
        Reply::ready(self.0)
    }
}
impl Handler<Crash> for Counter {
    fn handle(&mut self, _: Crash, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        panic!("crash on purpose");
    }
}

#[tokio::test]
async fn a_route_resolved_on_a_connection_reaches_the_restarted_instance() {
    let node = Node::builder()
        .name("wire")
        .arbiters(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .secret(SECRET)
        .start()
        .unwrap();
    node.spawn(
        ServiceSpec::new("counter", Counter::default)
            .handles::<Incr>()
            .handles::<Crash>(),
    )
    .await
    .unwrap();
    let addr = node.remote_addr().unwrap();
    let mut watch = node.watch();
    let mut p = RawPeer::connect(&addr).await;
    let incr = crate::codec::encode(&Incr).unwrap();
    let count = |f: Frame| match f {
        Frame::Reply { payload, .. } => crate::codec::decode::<u64>(&payload).unwrap(),
        f => panic!("expected a reply, got {f:?}"),
    };
    let named = Route::Named {
        id: 0,
        service: "counter".into(),
        message: Incr::NAME.into(),
    };
    assert_eq!(count(p.ask_by(1, named, incr.clone()).await), 1);
    assert_eq!(count(p.ask_by(2, Route::Id(0), incr.clone()).await), 2);
    let before = node.instances("counter");

    // The instance crashes on a call from the same connection; its
    // supervisor starts a fresh one in the slot.
    let crash = Route::Named {
        id: 1,
        service: "counter".into(),
        message: Crash::NAME.into(),
    };
    let died = p
        .ask_by(3, crash, crate::codec::encode(&Crash).unwrap())
        .await;
    assert!(matches!(died, Frame::Error { id: 3, .. }), "{died:?}");
    loop {
        let e = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("a restart within 10 s")
            .unwrap();
        if matches!(e, crate::RegistryEvent::Restarted { ref service, .. } if service == "counter")
        {
            break;
        }
    }
    assert_ne!(node.instances("counter"), before, "a new incarnation");

    // The same route id, resolved before the crash, reaches the new
    // instance: its count starts again.
    assert_eq!(count(p.ask_by(4, Route::Id(0), incr.clone()).await), 1);
    assert_eq!(count(p.ask_by(5, Route::Id(0), incr).await), 2);
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_served_ask_is_in_the_mailbox_before_its_reply_is_awaited() {
    let node = Node::builder()
        .name("eager")
        .arbiters(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .secret(SECRET)
        .start()
        .unwrap();
    node.spawn(ServiceSpec::new("counter", Counter::default).handles::<Incr>())
        .await
        .unwrap();
    // What a connection's reader holds: the node, and the route resolved.
    let local = node.remoting().unwrap().node.upgrade().unwrap();
    let inbound = local.clone().resolve("counter", Incr::NAME).unwrap();
    let deadline = crate::remote::inbound::ServeDeadline::new(&*local, Some(5_000));
    let served = inbound
        .serve_ask(
            &crate::codec::encode(&Incr).unwrap(),
            Metadata::new(),
            deadline,
        )
        .unwrap();
    // Not polled yet: the served ask is queued already, so a local ask
    // made after it is handled after it, and sees its count.
    let svc = node.service("counter");
    assert_eq!(svc.ask(Incr).await.unwrap(), 2);
    let reply = tokio::time::timeout(Duration::from_secs(10), served)
        .await
        .expect("the served ask's reply within 10 s")
        .unwrap();
    assert_eq!(crate::codec::decode::<u64>(&reply).unwrap(), 1);
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}
