//! tracing: restarts and escalations are logged with their reason.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "support/log_capture.rs"]
mod log_capture;

mod common;

use std::time::Duration;

use log_capture::LogCapture;

use common::*;
use msa_runtime::Node;

#[test]
fn restart_and_escalation_are_traced_with_their_reason() {
    // A global default: this test binary runs only this test.
    let logs = LogCapture::install(tracing::Level::DEBUG);
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
    let out = logs.text();
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
