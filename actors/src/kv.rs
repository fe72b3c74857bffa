//! An in-memory key-value store, sharded by key over its instances.
//!
//! Each instance of [`KvStore`] owns the keys that [keyed
//! routing](msa_runtime::Routing::Keyed) sends to it: [`Get`], [`Put`] and
//! [`Delete`] carry their key's [`key_hash`], so every caller reaches the same
//! instance for the same key and the store needs no locks. [`List`] has no
//! key; it is answered by whichever instance it reaches, which knows only
//! its own shard, so on a store with more than one instance use [`list_all`],
//! which asks every instance and merges the answers.
//!
//! The store keeps nothing on disk. An instance that fails is restarted
//! empty: the keys it owned are gone. While it restarts, keyed routing sends
//! its keys to another live instance; writes made then stay on that
//! instance after the owner is back (they show up in [`list_all`], but
//! [`Get`] asks the owner again).
//!
//! # Examples
//! ```
//! use msa_actors::kv;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let node = msa_runtime::Node::builder().arbiters(1).start()?;
//! let store = node.spawn(kv::kv_spec("kv", 4)).await?;
//! store.ask(kv::Put::new("a/1", "one")).await?;
//! store.ask(kv::Put { key: "a/2".into(), value: b"two".to_vec() }).await?;
//! assert_eq!(store.ask(kv::Get::new("a/1")).await?, Some(b"one".to_vec()));
//! assert_eq!(kv::list_all(&store, "a/").await?, ["a/1", "a/2"]);
//! node.shutdown(std::time::Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::ops::Bound;

use msa_runtime::{
    key_hash, CallError, Handler, KeyedMessage, RemoteMessage, Reply, Routing, Service,
    ServiceContext, ServiceRef, ServiceSpec,
};
use serde::{Deserialize, Serialize};

/// One shard of the key-value store: keys to byte values, in key order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KvStore {
    entries: BTreeMap<String, Vec<u8>>,
}

impl KvStore {
    /// An empty shard.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Service for KvStore {}

/// Reads the value of `key`; `None` when it is absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, actix::Message, RemoteMessage)]
#[msa(name = "kv.Get", keyed)]
#[rtype(result = "Option<Vec<u8>>")]
pub struct Get {
    /// The key to read.
    pub key: String,
}

/// Sets `key` to `value`; answers the previous value, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, actix::Message, RemoteMessage)]
#[msa(name = "kv.Put", keyed)]
#[rtype(result = "Option<Vec<u8>>")]
pub struct Put {
    /// The key to write.
    pub key: String,
    /// The new value.
    pub value: Vec<u8>,
}

/// Removes `key`; answers the removed value, `None` when it was absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, actix::Message, RemoteMessage)]
#[msa(name = "kv.Delete", keyed)]
#[rtype(result = "Option<Vec<u8>>")]
pub struct Delete {
    /// The key to remove.
    pub key: String,
}

/// Lists the keys that start with `prefix`, sorted, held by the instance
/// that receives it. Use [`list_all`] to list a store with several instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, actix::Message, RemoteMessage)]
#[msa(name = "kv.List")]
#[rtype(result = "Vec<String>")]
pub struct List {
    /// Only keys starting with this are listed; `""` lists every key.
    pub prefix: String,
}

impl Get {
    /// A `Get` of `key`.
    pub fn new(key: impl Into<String>) -> Self {
        Self { key: key.into() }
    }
}

impl Put {
    /// A `Put` of `value` under `key`.
    pub fn new(key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}

impl Delete {
    /// A `Delete` of `key`.
    pub fn new(key: impl Into<String>) -> Self {
        Self { key: key.into() }
    }
}

impl List {
    /// A `List` of the keys starting with `prefix`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }
}

impl KeyedMessage for Get {
    fn routing_key(&self) -> u64 {
        key_hash(self.key.as_bytes())
    }
}
impl KeyedMessage for Put {
    fn routing_key(&self) -> u64 {
        key_hash(self.key.as_bytes())
    }
}
impl KeyedMessage for Delete {
    fn routing_key(&self) -> u64 {
        key_hash(self.key.as_bytes())
    }
}

impl Handler<Get> for KvStore {
    fn handle(
        &mut self,
        msg: Get,
        _: &mut ServiceContext<'_, Self>,
    ) -> Reply<Self, Option<Vec<u8>>> {
        Reply::ready(self.entries.get(&msg.key).cloned())
    }
}

impl Handler<Put> for KvStore {
    fn handle(
        &mut self,
        msg: Put,
        _: &mut ServiceContext<'_, Self>,
    ) -> Reply<Self, Option<Vec<u8>>> {
        Reply::ready(self.entries.insert(msg.key, msg.value))
    }
}

impl Handler<Delete> for KvStore {
    fn handle(
        &mut self,
        msg: Delete,
        _: &mut ServiceContext<'_, Self>,
    ) -> Reply<Self, Option<Vec<u8>>> {
        Reply::ready(self.entries.remove(&msg.key))
    }
}

impl Handler<List> for KvStore {
    fn handle(&mut self, msg: List, _: &mut ServiceContext<'_, Self>) -> Reply<Self, Vec<String>> {
        let keys = self
            .entries
            .range::<str, _>((Bound::Included(msg.prefix.as_str()), Bound::Unbounded))
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(&msg.prefix))
            .cloned()
            .collect();
        Reply::ready(keys)
    }
}

/// The spec of a key-value store named `name` with `instances` shards:
/// [`Routing::Keyed`], with [`Get`], [`Put`] and [`Delete`] routed by key and
/// [`List`] round-robin (so ask it of every instance: see [`list_all`]).
///
/// Adjust the returned spec further as any other (restart policy, mailbox
/// capacity); spawning it with `instances == 0` fails with
/// [`SpawnError::ZeroInstances`](msa_runtime::SpawnError::ZeroInstances).
pub fn kv_spec(name: &str, instances: usize) -> ServiceSpec<KvStore> {
    ServiceSpec::new(name, KvStore::new)
        .handles_keyed::<Get>()
        .handles_keyed::<Put>()
        .handles_keyed::<Delete>()
        .handles::<List>()
        .instances(instances)
        .routing(Routing::Keyed)
}

/// Lists the keys starting with `prefix` across every live instance of the
/// store `svc`: asks each one [`List`] with
/// [`ServiceRef::ask_all`], then merges, sorts and deduplicates.
///
/// # Errors
/// The [`CallError`] of the call as a whole (unknown service, unhandled
/// message, shutdown), else the first instance's error: a listing that
/// misses a reachable shard is an error, not a shorter list. With no live
/// instance at all, [`CallError::NoInstance`].
pub async fn list_all(svc: &ServiceRef, prefix: &str) -> Result<Vec<String>, CallError> {
    let answers = svc.ask_all(List::new(prefix)).await?;
    if answers.is_empty() {
        return Err(CallError::NoInstance {
            service: svc.name().to_owned(),
        });
    }
    let mut keys = Vec::new();
    for answer in answers {
        keys.extend(answer?);
    }
    keys.sort_unstable();
    keys.dedup();
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use msa_runtime::{codec, Node};

    use super::*;

    const GRACE: Duration = Duration::from_secs(5);

    fn node() -> Node {
        Node::builder().name("kv-test").arbiters(1).start().unwrap()
    }

    fn put(key: &str, value: &[u8]) -> Put {
        Put {
            key: key.into(),
            value: value.to_vec(),
        }
    }

    fn get(key: &str) -> Get {
        Get { key: key.into() }
    }

    #[tokio::test]
    async fn put_get_and_overwrite_answer_previous_values() {
        let node = node();
        let kv = node.spawn(kv_spec("kv", 1)).await.unwrap();
        assert_eq!(kv.ask(get("a")).await.unwrap(), None);
        assert_eq!(kv.ask(put("a", b"1")).await.unwrap(), None);
        assert_eq!(kv.ask(get("a")).await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(kv.ask(put("a", b"2")).await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(kv.ask(get("a")).await.unwrap(), Some(b"2".to_vec()));
        assert_eq!(kv.ask(put("empty", b"")).await.unwrap(), None);
        assert_eq!(kv.ask(get("empty")).await.unwrap(), Some(Vec::new()));
        node.shutdown(GRACE).await.unwrap();
    }

    #[tokio::test]
    async fn delete_answers_the_removed_value_and_none_when_missing() {
        let node = node();
        let kv = node.spawn(kv_spec("kv", 2)).await.unwrap();
        assert_eq!(
            kv.ask(Delete {
                key: "missing".into()
            })
            .await
            .unwrap(),
            None
        );
        kv.ask(put("k", b"v")).await.unwrap();
        assert_eq!(
            kv.ask(Delete { key: "k".into() }).await.unwrap(),
            Some(b"v".to_vec())
        );
        assert_eq!(kv.ask(get("k")).await.unwrap(), None);
        assert_eq!(kv.ask(Delete { key: "k".into() }).await.unwrap(), None);
        node.shutdown(GRACE).await.unwrap();
    }

    #[tokio::test]
    async fn list_on_one_instance_filters_by_prefix_in_order() {
        let node = node();
        let kv = node.spawn(kv_spec("kv", 1)).await.unwrap();
        for key in ["b/2", "a/1", "b/1", "b", "c", "b/10"] {
            kv.ask(put(key, b"x")).await.unwrap();
        }
        let list = |p: &str| List { prefix: p.into() };
        assert_eq!(kv.ask(list("b/")).await.unwrap(), ["b/1", "b/10", "b/2"]);
        assert_eq!(
            kv.ask(list("b")).await.unwrap(),
            ["b", "b/1", "b/10", "b/2"]
        );
        assert_eq!(kv.ask(list("")).await.unwrap().len(), 6);
        assert!(kv.ask(list("z")).await.unwrap().is_empty());
        node.shutdown(GRACE).await.unwrap();
    }

    #[tokio::test]
    async fn keyed_routing_sends_each_key_to_one_instance() {
        let node = node();
        let kv = node.spawn(kv_spec("kv", 4)).await.unwrap();
        let keys: Vec<String> = (0..200).map(|i| format!("key-{i}")).collect();
        // Every round overwrites every key and reads it back: if a key ever
        // reached another instance, the read or the previous value would differ.
        for round in 0u8..5 {
            for key in &keys {
                let previous = kv.ask(put(key, &[round])).await.unwrap();
                assert_eq!(previous, round.checked_sub(1).map(|r| vec![r]), "{key}");
                assert_eq!(kv.ask(get(key)).await.unwrap(), Some(vec![round]), "{key}");
            }
        }
        // Each key lives on exactly one instance, and the keys are spread out.
        let shards: Vec<Vec<String>> = kv
            .ask_all(List {
                prefix: "key-".into(),
            })
            .await
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(shards.len(), 4);
        assert_eq!(shards.iter().map(Vec::len).sum::<usize>(), keys.len());
        assert!(
            shards.iter().all(|s| !s.is_empty()),
            "200 keys over 4 instances leave none empty: {:?}",
            shards.iter().map(Vec::len).collect::<Vec<_>>()
        );
        node.shutdown(GRACE).await.unwrap();
    }

    #[tokio::test]
    async fn list_all_merges_every_instance_sorted() {
        let node = node();
        let kv = node.spawn(kv_spec("kv", 4)).await.unwrap();
        let mut expected: Vec<String> = (0..50).map(|i| format!("user/{i}")).collect();
        for key in &expected {
            kv.ask(put(key, b"u")).await.unwrap();
        }
        kv.ask(put("other", b"o")).await.unwrap();
        expected.sort();
        assert_eq!(list_all(&kv, "user/").await.unwrap(), expected);
        assert_eq!(list_all(&kv, "").await.unwrap().len(), 51);
        assert!(list_all(&kv, "nobody").await.unwrap().is_empty());
        // A plain `List` sees one shard only.
        let one = kv
            .ask(List {
                prefix: "user/".into(),
            })
            .await
            .unwrap();
        assert!(one.len() < expected.len(), "one shard holds {}", one.len());
        node.shutdown(GRACE).await.unwrap();
    }

    #[tokio::test]
    async fn list_all_of_an_unknown_service_fails() {
        let node = node();
        let r = list_all(&node.service("nope"), "").await;
        assert!(matches!(r, Err(CallError::UnknownService { .. })), "{r:?}");
        node.shutdown(GRACE).await.unwrap();
    }

    #[test]
    fn spec_registers_the_wire_names() {
        let spec = kv_spec("kv", 3);
        let names: Vec<&str> = spec.wire_names().into_iter().map(|(w, _)| w).collect();
        assert_eq!(names, ["kv.Get", "kv.Put", "kv.Delete", "kv.List"]);
    }

    #[test]
    fn messages_and_results_survive_the_codec() {
        let g = get("key");
        assert_eq!(codec::roundtrip(&g).unwrap(), g);
        let p = put("key", &[0, 1, 255]);
        assert_eq!(codec::roundtrip(&p).unwrap(), p);
        let d = Delete {
            key: "ключ".into()
        };
        assert_eq!(codec::roundtrip(&d).unwrap(), d);
        let l = List {
            prefix: "p/".into(),
        };
        assert_eq!(codec::roundtrip(&l).unwrap(), l);
        let value: Option<Vec<u8>> = Some(vec![9; 300]);
        assert_eq!(codec::roundtrip(&value).unwrap(), value);
        assert_eq!(codec::roundtrip(&None::<Vec<u8>>).unwrap(), None);
        let keys = vec![String::from("a"), String::from("b")];
        assert_eq!(codec::roundtrip(&keys).unwrap(), keys);
    }

    #[test]
    fn constructors_fill_the_fields() {
        assert_eq!(Get::new("k"), get("k"));
        assert_eq!(Put::new("k", "v"), put("k", b"v"));
        assert_eq!(Put::new(String::from("k"), vec![1u8]), put("k", &[1]));
        assert_eq!(Delete::new("k"), Delete { key: "k".into() });
        assert_eq!(List::new("p"), List { prefix: "p".into() });
    }

    #[test]
    fn routing_key_is_the_key_hash() {
        assert_eq!(get("k").routing_key(), key_hash(b"k"));
        assert_eq!(put("k", b"v").routing_key(), key_hash(b"k"));
        assert_eq!(Delete { key: "k".into() }.routing_key(), key_hash(b"k"));
    }
}
