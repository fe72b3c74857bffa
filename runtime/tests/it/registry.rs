//! Registry: watch events, keyed routing, lookups.

use crate::support::*;
use msa_runtime::prelude::*;
use msa_runtime::{InstanceId, RegistryEvent};
use serde::{Deserialize, Serialize};

#[tokio::test]
async fn watch_sees_added_removed_and_restarted() {
    let node = crate::support::node("watch");
    let mut w = node.watch();
    let svc = node
        .spawn(full_spec("c", Counter::new).instances(2))
        .await
        .unwrap();
    let mut added = Vec::new();
    for _ in 0..2 {
        match wait_event(&mut w, |e| matches!(e, RegistryEvent::Added { .. })).await {
            RegistryEvent::Added { service, instance } => {
                assert_eq!(service, "c");
                added.push(instance);
            }
            _ => unreachable!(),
        }
    }
    added.sort();
    assert_eq!(
        added,
        [
            InstanceId {
                slot: 0,
                incarnation: 0
            },
            InstanceId {
                slot: 1,
                incarnation: 0
            }
        ]
    );
    assert_eq!(node.instances("c").len(), 2);
    let _ = svc.ask(Boom).await;
    let reason = removed(&mut w, "c").await;
    assert!(reason.starts_with("panicked"), "{reason}");
    match wait_event(&mut w, |e| matches!(e, RegistryEvent::Restarted { .. })).await {
        RegistryEvent::Restarted { instance, .. } => assert_eq!(instance.incarnation, 1),
        _ => unreachable!(),
    }
    assert_eq!(node.services(), ["c"]);
    node.shutdown(GRACE).await.unwrap();
}

/// A keyed message: the key picks the instance.
#[derive(Debug, Clone, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "test.WhereIs", keyed)]
#[rtype(result = "usize")]
struct WhereIs(String);
impl KeyedMessage for WhereIs {
    fn routing_key(&self) -> u64 {
        msa_runtime::key_hash(self.0.as_bytes())
    }
}

#[derive(Debug, Clone, actix::Message)]
#[rtype(result = "()")]
struct Crash;

#[derive(Default)]
struct Shard;
impl Service for Shard {}
impl Handler<WhereIs> for Shard {
    fn handle(&mut self, _: WhereIs, ctx: &mut ServiceContext<'_, Self>) -> Reply<Self, usize> {
        Reply::ready(ctx.instance().slot)
    }
}
impl Handler<Crash> for Shard {
    fn handle(&mut self, _: Crash, _: &mut ServiceContext<'_, Self>) -> Reply<Self, ()> {
        panic!("crash");
    }
}

#[tokio::test]
async fn keyed_routing_sends_a_key_to_the_same_instance_across_restarts() {
    let node = crate::support::node("keyed");
    let mut w = node.watch();
    let svc = node
        .spawn(
            ServiceSpec::new("shard", Shard::default)
                .handles_keyed::<WhereIs>()
                .handles_local::<Crash>()
                .routing(Routing::Keyed)
                .instances(4),
        )
        .await
        .unwrap();
    let keys: Vec<String> = (0..64).map(|i| format!("user-{i}")).collect();
    let mut first = Vec::new();
    for k in &keys {
        first.push(svc.ask(WhereIs(k.clone())).await.unwrap());
    }
    for (k, slot) in keys.iter().zip(&first) {
        assert_eq!(
            svc.ask(WhereIs(k.clone())).await.unwrap(),
            *slot,
            "key {k} is sticky"
        );
    }
    let mut used = first.clone();
    used.sort();
    used.dedup();
    assert_eq!(used, [0, 1, 2, 3], "keys spread over every instance");
    // A second handle (another caller) agrees.
    let other = node.service("shard");
    for (k, slot) in keys.iter().zip(&first) {
        assert_eq!(other.ask(WhereIs(k.clone())).await.unwrap(), *slot);
    }
    // Crash some instance (round-robin message); after the restart, the same keys land on the same slots.
    let _ = svc.ask(Crash).await;
    restarted(&mut w, "shard").await;
    for (k, slot) in keys.iter().zip(&first) {
        assert_eq!(svc.ask(WhereIs(k.clone())).await.unwrap(), *slot);
    }
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn keyed_routing_without_a_keyed_message_is_refused() {
    let node = crate::support::node("nokey");
    let r = node
        .spawn(full_spec("c", Counter::new).routing(Routing::Keyed))
        .await;
    assert!(matches!(
        r,
        Err(msa_runtime::SpawnError::NoKeyedMessage { .. })
    ));
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn a_ref_made_before_the_service_exists_resolves_later() {
    let node = crate::support::node("late");
    let early = node.service("c");
    assert!(matches!(
        early.ask(Get).await,
        Err(CallError::UnknownService { .. })
    ));
    node.spawn(full_spec("c", Counter::new)).await.unwrap();
    assert_eq!(early.ask(Incr).await.unwrap(), 1);
    node.shutdown(GRACE).await.unwrap();
}
