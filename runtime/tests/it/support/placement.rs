//! A service that answers which node served it, by name (`Where`) or by key
//! (`Owner`): what the join and split-brain tests ask to see who serves
//! and who owns a key.

use std::future::IntoFuture;
use std::time::Duration;

use msa_runtime::prelude::*;
use serde::{Deserialize, Serialize};

/// Answers the name of the node that served it.
#[derive(Debug, Clone, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[rtype(result = "String")]
#[msa(name = "it.Where")]
pub struct Where;

/// A keyed ask: the key picks the owner; answers the node that served it.
#[derive(Debug, Clone, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[rtype(result = "String")]
#[msa(name = "it.Owner", keyed)]
pub struct Owner(pub String);

impl KeyedMessage for Owner {
    fn routing_key(&self) -> u64 {
        msa_runtime::key_hash(self.0.as_bytes())
    }
}

/// The service: holds its node's name.
pub struct Here(pub String);

impl Service for Here {}

impl Handler<Where> for Here {
    fn handle(&mut self, _: Where, _: &mut ServiceContext<'_, Self>) -> Reply<Self, String> {
        Reply::ready(self.0.clone())
    }
}

impl Handler<Owner> for Here {
    fn handle(&mut self, _: Owner, _: &mut ServiceContext<'_, Self>) -> Reply<Self, String> {
        Reply::ready(self.0.clone())
    }
}

/// The timeout of each ask below.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);
/// An ask that has not returned after this has hung (its own timeout did
/// not end it): the test fails.
const HUNG: Duration = Duration::from_secs(40);

/// Spawns on `n` the service `where-NAME` (NAME: `n`'s name) and the keyed
/// `shard`, both answering with `n`'s name.
pub async fn spawn_placement(n: &Node) {
    let me = n.name().to_string();
    let m = me.clone();
    n.spawn(ServiceSpec::new(format!("where-{me}"), move || Here(m.clone())).handles::<Where>())
        .await
        .unwrap();
    n.spawn(
        ServiceSpec::new("shard", move || Here(me.clone()))
            .handles_keyed::<Owner>()
            .routing(Routing::Keyed),
    )
    .await
    .unwrap();
}

/// Asks `where-{to}` from `from`: the name of the node that served it.
pub async fn ask_where(from: &Node, to: &str) -> Result<String, CallError> {
    let svc = from.service(&format!("where-{to}"));
    let ask = svc.ask(Where).timeout(ASK_TIMEOUT).into_future();
    tokio::time::timeout(HUNG, ask)
        .await
        .unwrap_or_else(|_| panic!("the ask to where-{to} hung"))
}

/// Asks `shard` from `from` for `key`: the node that owns it.
pub async fn owner(from: &Node, key: &str) -> Result<String, CallError> {
    let svc = from.service("shard");
    let ask = svc
        .ask(Owner(key.into()))
        .timeout(ASK_TIMEOUT)
        .into_future();
    tokio::time::timeout(HUNG, ask)
        .await
        .unwrap_or_else(|_| panic!("the keyed ask hung"))
}

/// A member's `(status, state)` in `n`'s view, `("absent", "absent")` when
/// it lists no such member.
pub fn status_of(n: &Node, member: &str) -> (String, String) {
    n.cluster_status()
        .members
        .into_iter()
        .find(|m| m.name == member)
        .map(|m| (m.status, m.state))
        .unwrap_or_else(|| ("absent".into(), "absent".into()))
}
