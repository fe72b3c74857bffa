//! Access rules hold across separately built binaries: an `msa node`
//! process guards `kv.Put` with an `[[access]]` rule, and a node built into
//! this test binary (not the `msa` binary) joins it and calls kv directly,
//! bypassing the gateway. Claimed roles count for nothing; only a token the
//! serving node verifies with its own JWT settings does (docs/security.md,
//! "Access rules at each service"). Refusals are typed, counted in the
//! serving node's `/metrics` and logged, and the node keeps serving.

use std::time::Duration;

use crate::cli_gateway::token;
use crate::support::{
    block_on_runtime, eventually, msa, tester_node, Proc, Ready, TempFile, READY_WAIT,
};
use msa::actors::kv;
use msa::{CallError, Identity, Metadata};

const SECRET: &str = "access-across-binaries";
use crate::cli_gateway::JWT_SECRET;

fn denied<T: std::fmt::Debug>(r: &Result<T, CallError>) -> bool {
    matches!(r, Err(CallError::PermissionDenied { service, .. }) if service == "kv")
}

fn claimed(subject: &str, roles: &[&str]) -> Metadata {
    Metadata::new().with_identity(Identity::new(subject, roles.iter().copied()))
}

/// `msa_service_denied` (`_total` in OpenMetrics) for kv in the node's Prometheus text.
fn denied_metric(ops: &str) -> Option<f64> {
    let (status, body) = crate::support::http(ops, "GET", "/metrics", "");
    if status != 200 {
        return None;
    }
    body.lines()
        .find(|l| l.starts_with("msa_service_denied") && l.contains("service=\"kv\""))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn a_service_in_an_msa_process_refuses_a_claimed_role_from_a_node_built_elsewhere() {
    let cfg = TempFile::new(
        "access-across",
        r#"
[[services]]
kind = "kv"

[[access]]
service = "kv"
message = "kv.Put"
roles = ["writer"]

[ops]
bind = "127.0.0.1:0"
"#,
    );
    let mut cmd = msa();
    cmd.args([
        "node",
        "--name",
        "guarded",
        "--config",
        cfg.path(),
        "--listen",
        "127.0.0.1:0",
        "--arbiters",
        "1",
        "--gateway",
        "127.0.0.1:0",
    ])
    .env("MSA_SECRET", SECRET)
    .env("MSA_JWT_SECRET", JWT_SECRET);
    let proc = Proc::spawn("guarded", cmd);
    let line = proc
        .line_where(READY_WAIT, |l| l.starts_with("msa-node "))
        .expect("the node printed no ready line");
    let ready = Ready::parse(&line).expect("a ready line");
    let ops = ready.ops.clone().expect("the node serves /metrics");

    let rt = block_on_runtime();
    let tester = tester_node("elsewhere", &ready.addr, SECRET);
    assert!(
        eventually(Duration::from_secs(20), || !tester
            .remote_instances("kv")
            .is_empty()),
        "the test node never learned kv: {:?}",
        tester.cluster_status()
    );
    let writer = token("wanda", &["writer"]);
    let reader = token("rita", &["reader"]);
    rt.block_on(async {
        let store = tester.service("kv");
        // A claimed role without a token: refused by the serving process.
        let r = store
            .ask(kv::Put::new("k", "claimed"))
            .metadata(claimed("mallory", &["writer"]))
            .await;
        assert!(denied(&r), "{r:?}");
        // A token signed with another key: refused the same way.
        let forged = {
            let mut parts: Vec<&str> = writer.split('.').collect();
            parts[2] = "AAAA";
            parts.join(".")
        };
        let r = store
            .ask(kv::Put::new("k", "forged"))
            .metadata(claimed("mallory", &["writer"]).with_token(forged))
            .await;
        assert!(denied(&r), "{r:?}");
        // Anonymous: a guarded message from another node is refused.
        let r = store.ask(kv::Put::new("k", "anonymous")).await;
        assert!(denied(&r), "{r:?}");
        // A valid token without the role, whatever the claim says.
        let r = store
            .ask(kv::Put::new("k", "reader"))
            .metadata(claimed("rita", &["writer"]).with_token(reader.clone()))
            .await;
        assert!(denied(&r), "{r:?}");
        // A tell is checked too (counted below, never stored).
        store
            .tell_with(kv::Put::new("k", "told"), claimed("mallory", &["writer"]))
            .unwrap();
        // Nothing refused was stored; a message without a rule stays open.
        assert_eq!(store.ask(kv::Get::new("k")).await.unwrap(), None);
        // The token the node verifies, with the role: admitted.
        let r = store
            .ask(kv::Put::new("k", "written"))
            .metadata(Metadata::new().with_token(writer.clone()))
            .await;
        assert_eq!(r.unwrap(), None);
        assert_eq!(
            store.ask(kv::Get::new("k")).await.unwrap(),
            Some(b"written".to_vec())
        );
    });
    // Four refused asks and one refused tell, counted where they were refused.
    let mut seen = None;
    assert!(
        eventually(Duration::from_secs(10), || {
            seen = denied_metric(&ops);
            seen == Some(5.0)
        }),
        "msa_service_denied for kv: {seen:?}"
    );
    assert!(
        proc.stderr_lines()
            .iter()
            .any(|l| l.contains("refused by the service's access rule") && l.contains("kv")),
        "the refusals are logged"
    );
    rt.block_on(tester.shutdown(Duration::from_secs(5)))
        .unwrap();
}
