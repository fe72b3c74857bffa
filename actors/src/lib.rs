//! # msa-actors
//!
//! Ready-made msa services, each a module with its service type, its
//! messages (every one a [`RemoteMessage`](msa_runtime::RemoteMessage) with
//! a wire name `"<module>.<Type>"`) and a function that returns its
//! [`ServiceSpec`](msa_runtime::ServiceSpec), ready to spawn or to adjust:
//!
//! | module | service | messages | spec |
//! |---|---|---|---|
//! | [`kv`] | [`KvStore`], sharded by key | `Get`, `Put`, `Delete`, `List` | [`kv_spec`] (+ [`list_all`]) |
//! | [`echo`] | [`EchoService`], stateless (a member of the process group named after its service) | `Ping`, `Echo` | [`echo_spec`] |
//! | [`counter`] | [`Counter`], with an optional probe | `Add`, `Get`, `Reset`, `Tick` | [`counter_spec`], [`counter_spec_with_probe`] |
//! | [`shop`] | [`Orders`](shop::Orders), [`Inventory`](shop::Inventory), [`Payments`](shop::Payments), calling each other | `shop.PlaceOrder`, `shop.GetOrder`, `shop.GetStock`, `shop.Restock`, ... | [`shop::orders_spec`], [`shop::inventory_spec`], [`shop::payments_spec`] |
//!
//! They double as examples of how to write a service, and as the services
//! the `msa` binary, its benchmarks and its tests run.
//!
//! # Examples
//! ```
//! use msa_actors::{counter, echo, kv};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let node = msa_runtime::Node::builder().arbiters(1).start()?;
//! let store = node.spawn(kv::kv_spec("kv", 2)).await?;
//! let hits = node.spawn(counter::counter_spec("hits")).await?;
//! let echo = node.spawn(echo::echo_spec("echo")).await?;
//!
//! store.ask(kv::Put::new("k", "v")).await?;
//! assert_eq!(store.ask(kv::Get::new("k")).await?, Some(b"v".to_vec()));
//! assert_eq!(hits.ask(counter::Add(2)).await?, 2);
//! assert_eq!(echo.ask(echo::Ping(1)).await?, echo::Pong(1));
//! node.shutdown(std::time::Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```

pub mod counter;
pub mod echo;
pub mod kv;
pub mod shop;

pub use counter::{counter_spec, counter_spec_with_probe, Counter};
pub use echo::{echo_spec, EchoService};
pub use kv::{kv_spec, list_all, KvStore};

#[cfg(test)]
mod contract_tests {
    //! Every message of every service here publishes its contract: a wire
    //! shape and the JSON schemas of its request and reply.

    use msa_runtime::contract;

    #[test]
    fn every_message_has_a_wire_schema_and_json_schemas() {
        // Link every module's declarations.
        let node = msa_runtime::Node::builder()
            .name("contracts")
            .arbiters(1)
            .start()
            .unwrap();
        let all = contract::declared();
        let names: Vec<String> = all
            .iter()
            .map(|c| match c {
                Ok(c) => c.name.clone(),
                Err(e) => panic!("{e}"),
            })
            .collect();
        for prefix in ["echo.", "counter.", "kv.", "shop."] {
            assert!(names.iter().any(|n| n.starts_with(prefix)), "{names:?}");
        }
        for name in &names {
            let info = node.message_info(name).unwrap();
            assert!(info.schema.is_some(), "{name}: request schema");
            assert!(info.reply_schema.is_some(), "{name}: reply schema");
        }
        node.shutdown_blocking(std::time::Duration::from_secs(5))
            .unwrap();
    }
}
