//! tracing: restarts and escalations are logged with their reason.

use std::time::Duration;

use crate::support::log_capture::LogCapture;

use crate::support::*;
use msa_runtime::Node;

#[test]
fn restart_and_escalation_are_traced_with_their_reason() {
    // The lines that name this test's service (the supervisor's spans carry
    // it), whatever other tests log meanwhile.
    let logs = LogCapture::keyed("supervisor", "observed", tracing::Level::DEBUG);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let node = Node::builder().name("traced").arbiters(1).start().unwrap();
        let mut w = node.watch();
        let c = node
            .spawn(full_spec("observed", Counter::new).intensity(1, Duration::from_secs(30)))
            .await
            .unwrap();
        let _ = c.ask(Boom).await;
        restarted(&mut w, "observed").await;
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
