//! tracing: restarts and escalations are logged with their reason.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use msa_runtime::Node;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);
impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn restart_and_escalation_are_traced_with_their_reason() {
    let buf = Buf::default();
    let b2 = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || b2.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    // A global default: this test binary runs only this test.
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let node = Node::builder().name("traced").arbiters(1).start().unwrap();
        let mut w = node.watch();
        let c = node
            .spawn(full_spec("c", Counter::new).intensity(1, Duration::from_secs(30)))
            .await
            .unwrap();
        let _ = c.ask(Boom).await;
        restarted(&mut w, "c").await;
        let _ = c.ask(Boom).await;
        wait_event(&mut w, |e| {
            matches!(e, msa_runtime::RegistryEvent::Failed { .. })
        })
        .await;
        node.shutdown(GRACE).await.unwrap();
    });
    let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(
        out.lines()
            .any(|l| l.contains("spawn{") && l.contains("instance launched")),
        "spawn span:\n{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("restart") && l.contains("panicked: boom in handler")),
        "restart with its reason:\n{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("escalate") && l.contains("restart intensity exceeded")),
        "escalation:\n{out}"
    );
}
