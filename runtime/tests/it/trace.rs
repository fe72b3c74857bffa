//! A traced call is followed across nodes: the handler on the remote node
//! runs inside a span with the caller's trace id.

use std::time::Duration;

use crate::support::log_capture::LogCapture;
use msa_runtime::prelude::*;
use msa_runtime::test_support::remote_added;
use msa_runtime::TraceContext;
use serde::{Deserialize, Serialize};

#[derive(Debug, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "trace-test.Work")]
#[rtype(result = "()")]
struct Work;
struct Worker;
impl Service for Worker {}
impl Handler<Work> for Worker {
    fn handle(&mut self, _: Work, _: &mut ServiceContext<'_, Self>) -> Reply<Self, ()> {
        tracing::info!("working on it");
        Reply::ready(())
    }
}

const SECRET: &[u8] = b"trace-secret";

#[test]
fn the_remote_handler_logs_inside_the_callers_trace() {
    // The lines logged inside this test's trace (a traced call's span
    // carries its id), whatever other tests log meanwhile.
    let logs = LogCapture::keyed(
        "trace_id",
        "0123456789abcdef0011223344556677",
        tracing::Level::INFO,
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let start = |name: &str, seed: Option<String>| {
            let mut b = Node::builder()
                .name(name)
                .arbiters(1)
                .listen("127.0.0.1:0".parse().unwrap())
                .secret(SECRET);
            if let Some(s) = seed {
                b = b.seed(s);
            }
            b.start().unwrap()
        };
        let a = start("node-a", None);
        let b = start("node-b", a.remote_addr());
        let mut wb = b.watch();
        a.spawn(ServiceSpec::new("worker", || Worker).handles::<Work>())
            .await
            .unwrap();
        remote_added(Duration::from_secs(10), &mut wb, &["worker"]).await;
        let trace = TraceContext {
            trace_id: 0x0123_4567_89ab_cdef_0011_2233_4455_6677,
            parent_span_id: 0x42,
        };
        b.service("worker")
            .ask(Work)
            .metadata(Metadata::new().with_trace(trace))
            .await
            .unwrap();
        b.shutdown(Duration::from_secs(5)).await.unwrap();
        a.shutdown(Duration::from_secs(5)).await.unwrap();
    });
    let out = logs.text();
    let line = out
        .lines()
        .find(|l| l.contains("working on it"))
        .unwrap_or_else(|| panic!("no handler log in:\n{out}"));
    assert!(
        line.contains("trace_id=0123456789abcdef0011223344556677")
            && line.contains("node=node-a")
            && line.contains("parent_span=0000000000000042"),
        "{line}"
    );
}
