//! Embedding msa in an ordinary program: start a node, spawn a sharded
//! key-value store, a counter and a stateless echo service, call them from
//! the app's own task run on the node (`Node::run`), shut down.
//!
//! The app's task runs on one of the node's arbiters, beside the service
//! instances placed there. The echo service has one instance per arbiter and
//! prefers the instance on the caller's own arbiter (`prefer_local`), so its
//! asks are served on the task's thread: no wake-up of another thread
//! (docs/runtime.md, "Same-thread asks for an embedding app"). An ask made
//! from the app's own runtime instead crosses to an arbiter thread and back.
//!
//! Run with `cargo run --example embed`.

use std::time::Duration;

use msa::actors::{counter, echo, kv};
use msa::{Node, ServiceRef};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let node = Node::builder().name("embed").arbiters(2).start()?;
    let store = node.spawn(kv::kv_spec("kv", 2)).await?;
    let writes = node.spawn(counter::counter_spec("writes")).await?;
    let echo = node
        .spawn(
            echo::echo_spec("echo")
                .instances(node.arbiters())
                .prefer_local(),
        )
        .await?;

    // The app's work, as a task on the node's arbiters.
    node.run(app(store, writes, echo)).await??;

    node.shutdown(Duration::from_secs(5)).await?;
    Ok(())
}

async fn app(store: ServiceRef, writes: ServiceRef, echo: ServiceRef) -> anyhow::Result<()> {
    for (key, value) in [("user/1", "ada"), ("user/2", "grace"), ("motd", "hello")] {
        store.ask(kv::Put::new(key, value)).await?;
        writes.ask(counter::Add(1)).await?;
    }

    let ada = store.ask(kv::Get::new("user/1")).await?;
    println!("user/1 = {:?}", ada.as_deref().map(String::from_utf8_lossy));
    println!("users  = {:?}", kv::list_all(&store, "user/").await?);
    println!("writes = {}", writes.ask(counter::Get).await?);

    // Same-thread asks: served by the echo instance on this task's arbiter
    // (peers/ measures them, release build: docs/BENCHMARKS.md, "Peers").
    let rounds = 10_000u64;
    for i in 0..rounds {
        let pong = echo.ask(echo::Ping(i)).await?;
        anyhow::ensure!(pong == echo::Pong(i), "echo answered {pong:?}");
    }
    println!("echo   = {rounds} asks served by the instance on this task's arbiter");
    Ok(())
}
