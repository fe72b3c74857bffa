//! Two nodes in one process over loopback: a key-value store runs on one,
//! the other calls it through the same `ServiceRef` API as a local service.
//!
//! Run with `cargo run --example cluster`. (Across processes, the same
//! happens with `msa cluster up`.)

use std::time::Duration;

use msa::actors::kv;
use msa::Node;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let secret = b"example-secret".to_vec();
    let store = Node::builder()
        .name("store")
        .listen("127.0.0.1:0".parse()?)
        .secret(secret.clone())
        .start()?;
    store.spawn(kv::kv_spec("kv", 2)).await?;

    let app = Node::builder()
        .name("app")
        .listen("127.0.0.1:0".parse()?)
        .secret(secret)
        .seed(store.remote_addr().unwrap_or_default())
        .start()?;
    // `app` runs no kv itself and registers nothing: kv's messages derive
    // `RemoteMessage`, so `app` encodes them from their own types.

    // Wait (bounded) until the store's service table reached `app`.
    let mut events = app.watch();
    while app.remote_instances("kv").is_empty() {
        tokio::time::timeout(Duration::from_secs(10), events.next()).await?;
    }

    let kv_ref = app.service("kv");
    kv_ref
        .ask(kv::Put::new("greeting", "hello from another node"))
        .await?;
    let got = kv_ref.ask(kv::Get::new("greeting")).await?;
    println!(
        "app read: {:?}",
        got.as_deref().map(String::from_utf8_lossy)
    );
    println!("cluster as app sees it: {:?}", app.cluster_status().members);

    app.shutdown(Duration::from_secs(5)).await?;
    store.shutdown(Duration::from_secs(5)).await?;
    Ok(())
}
