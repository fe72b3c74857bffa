//! Embedding msa in an ordinary program: start a node, spawn a sharded
//! key-value store and a counter, call them, shut down.
//!
//! Run with `cargo run --example embed`.

use std::time::Duration;

use msa::actors::{counter, kv};
use msa::Node;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let node = Node::builder().name("embed").arbiters(2).start()?;
    let store = node.spawn(kv::kv_spec("kv", 2)).await?;
    let writes = node.spawn(counter::counter_spec("writes")).await?;

    for (key, value) in [("user/1", "ada"), ("user/2", "grace"), ("motd", "hello")] {
        store.ask(kv::Put::new(key, value)).await?;
        writes.ask(counter::Add(1)).await?;
    }

    let ada = store.ask(kv::Get::new("user/1")).await?;
    println!("user/1 = {:?}", ada.as_deref().map(String::from_utf8_lossy));
    println!("users  = {:?}", kv::list_all(&store, "user/").await?);
    println!("writes = {}", writes.ask(counter::Get).await?);

    node.shutdown(Duration::from_secs(5)).await?;
    Ok(())
}
