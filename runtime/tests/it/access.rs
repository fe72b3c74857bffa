//! Access rules are checked by the instance that serves a call
//! (docs/security.md, "Access rules at each service"): calls from other
//! nodes (an identity's roles count only with a token the serving node
//! verifies; a calling service only if the sending node hosts it), and
//! local calls that carry an identity. Real nodes on loopback.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use msa_runtime::access::{Access, IdentityVerifier, Rule, VerifyError};
use msa_runtime::prelude::*;
use msa_runtime::test_support::remote_added;
use msa_runtime::Identity;
use serde::{Deserialize, Serialize};

const SECRET: &[u8] = b"access-secret";

/// Guarded: admins only, or the `orders` service.
#[derive(Debug, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "access-test.Reveal")]
#[rtype(result = "String")]
struct Reveal;

/// No rule: open to anyone.
#[derive(Debug, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "access-test.Peek")]
#[rtype(result = "u32")]
struct Peek;

/// A tell to a guarded message.
#[derive(Debug, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "access-test.Poke")]
#[rtype(result = "()")]
struct Poke;

/// Asks the vault to reveal, from a handler (with the handler's context).
#[derive(Debug, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "access-test.Relay")]
#[rtype(result = "Result<String, String>")]
struct Relay;

struct Vault {
    pokes: Arc<AtomicUsize>,
}
impl Service for Vault {}
impl Handler<Reveal> for Vault {
    fn handle(&mut self, _: Reveal, ctx: &mut ServiceContext<'_, Self>) -> Reply<Self, String> {
        let who = ctx
            .identity()
            .map_or("-".to_string(), |i| i.subject.clone());
        let via = ctx.metadata().caller_service().unwrap_or("-").to_string();
        Reply::ready(format!("secret for {who} via {via}"))
    }
}
impl Handler<Peek> for Vault {
    fn handle(&mut self, _: Peek, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u32> {
        Reply::ready(7)
    }
}
impl Handler<Poke> for Vault {
    fn handle(&mut self, _: Poke, _: &mut ServiceContext<'_, Self>) -> Reply<Self, ()> {
        self.pokes.fetch_add(1, Ordering::SeqCst);
        Reply::ready(())
    }
}

fn vault_spec(pokes: &Arc<AtomicUsize>) -> ServiceSpec<Vault> {
    let pokes = pokes.clone();
    ServiceSpec::new("vault", move || Vault {
        pokes: pokes.clone(),
    })
    .handles::<Reveal>()
    .handles::<Peek>()
    .handles::<Poke>()
    .access(
        Access::new()
            .allow::<Reveal>(Rule::roles(["admin"]).or_services(["orders"]))
            .allow_named("access-test.Poke", Rule::roles(["admin"])),
    )
}

/// Calls the vault from its handler, passing the caller on.
struct Relayer;
impl Service for Relayer {}
impl Handler<Relay> for Relayer {
    fn handle(
        &mut self,
        _: Relay,
        ctx: &mut ServiceContext<'_, Self>,
    ) -> Reply<Self, Result<String, String>> {
        let vault = ctx.service("vault");
        let meta = ctx.propagate();
        Reply::future(async move {
            vault
                .ask(Reveal)
                .metadata(meta)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

fn relayer(name: &str) -> ServiceSpec<Relayer> {
    ServiceSpec::new(name, || Relayer).handles::<Relay>()
}

/// A test verifier: a token is `signed:<subject>:<role>,<role>`.
#[derive(Debug)]
struct TestVerifier;
impl IdentityVerifier for TestVerifier {
    fn verify(&self, token: &str) -> Result<Identity, VerifyError> {
        let rest = token
            .strip_prefix("signed:")
            .ok_or_else(|| VerifyError::new("bad signature"))?;
        let (subject, roles) = rest.split_once(':').unwrap_or((rest, ""));
        Ok(Identity::new(
            subject,
            roles.split(',').filter(|r| !r.is_empty()),
        ))
    }
}

fn start(name: &str, seed: Option<String>, verifier: bool) -> Node {
    let mut b = Node::builder()
        .name(name)
        .arbiters(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .secret(SECRET);
    if let Some(s) = seed {
        b = b.seed(s);
    }
    if verifier {
        b = b.identity_verifier(TestVerifier);
    }
    b.start().unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn denied(r: &Result<impl std::fmt::Debug, CallError>) -> bool {
    matches!(r, Err(CallError::PermissionDenied { service, .. }) if service == "vault")
}

fn as_caller(subject: &str, roles: &[&str]) -> Metadata {
    Metadata::new().with_identity(Identity::new(subject, roles.iter().copied()))
}

#[test]
fn a_claimed_admin_from_another_node_needs_a_token_the_serving_node_verifies() {
    runtime().block_on(async {
        let pokes = Arc::new(AtomicUsize::new(0));
        let a = start("acc-a", None, true);
        let b = start("acc-b", a.remote_addr(), false);
        let mut wb = b.watch();
        a.spawn(vault_spec(&pokes)).await.unwrap();
        remote_added(Duration::from_secs(10), &mut wb, &["vault"]).await;
        let vault = b.service("vault");

        // Claimed `admin`, no token: the vault's node keeps the subject,
        // drops the roles, and refuses.
        let r = vault
            .ask(Reveal)
            .metadata(as_caller("mallory", &["admin"]))
            .await;
        assert!(denied(&r), "{r:?}");
        // A token that does not verify: the same.
        let r = vault
            .ask(Reveal)
            .metadata(as_caller("mallory", &["admin"]).with_token("forged:mallory:admin"))
            .await;
        assert!(denied(&r), "{r:?}");
        // No identity at all: an anonymous call from another node is checked.
        let r = vault.ask(Reveal).await;
        assert!(denied(&r), "{r:?}");
        // A valid token: its roles count, whatever the claim said.
        let r = vault
            .ask(Reveal)
            .metadata(as_caller("alice", &[]).with_token("signed:alice:admin"))
            .await;
        assert_eq!(r.unwrap(), "secret for alice via -");
        // A valid token without the role: refused, even when the claim says admin.
        let r = vault
            .ask(Reveal)
            .metadata(as_caller("carol", &["admin"]).with_token("signed:carol:customer"))
            .await;
        assert!(denied(&r), "{r:?}");
        // A message without a rule stays open.
        assert_eq!(vault.ask(Peek).await.unwrap(), 7);
        assert!(r.unwrap_err().to_string().contains("admits roles [admin]"));

        // Tells are checked too: a refused one never reaches the handler.
        vault
            .tell_with(Poke, as_caller("mallory", &["admin"]))
            .unwrap();
        vault.tell(Poke).unwrap();
        vault
            .tell_with(Poke, Metadata::new().with_token("signed:root:admin"))
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while pokes.load(Ordering::SeqCst) < 1 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Tells on one connection keep their order: the admitted one was last.
        assert_eq!(pokes.load(Ordering::SeqCst), 1);
        // 4 refused asks, 2 refused tells: counted on the serving node.
        let stats = a.stats("vault").unwrap();
        assert_eq!(stats.denied, 6, "{stats:?}");

        b.shutdown(Duration::from_secs(5)).await.unwrap();
        a.shutdown(Duration::from_secs(5)).await.unwrap();
    });
}

#[test]
fn a_rule_naming_a_calling_service_admits_that_services_handler_on_another_node() {
    runtime().block_on(async {
        let pokes = Arc::new(AtomicUsize::new(0));
        let a = start("svc-a", None, false);
        let b = start("svc-b", a.remote_addr(), false);
        let mut wa = a.watch();
        let mut wb = b.watch();
        a.spawn(vault_spec(&pokes)).await.unwrap();
        b.spawn(relayer("orders")).await.unwrap();
        b.spawn(relayer("reports")).await.unwrap();
        remote_added(Duration::from_secs(10), &mut wb, &["vault"]).await;
        remote_added(Duration::from_secs(10), &mut wa, &["orders", "reports"]).await;

        // From the `orders` handler on node B: admitted by name.
        let r = b
            .service("orders")
            .ask(Relay)
            .metadata(as_caller("bob", &["customer"]))
            .await
            .unwrap();
        assert_eq!(r.unwrap(), "secret for bob via orders");
        // The same call from another service's handler: refused.
        let r = b.service("reports").ask(Relay).await.unwrap();
        let err = r.unwrap_err();
        assert!(err.contains("refused the call"), "{err}");
        // And from a plain task that passes an identity on: refused.
        let r = b
            .service("vault")
            .ask(Reveal)
            .metadata(as_caller("bob", &["customer"]))
            .await;
        assert!(denied(&r), "{r:?}");
        // The same relay reached from node A (where `orders` does not run):
        // the handler on B still names itself, and B hosts it.
        let r = a.service("orders").ask(Relay).await.unwrap();
        assert_eq!(r.unwrap(), "secret for - via orders");
        assert_eq!(a.stats("vault").unwrap().denied, 2);

        b.shutdown(Duration::from_secs(5)).await.unwrap();
        a.shutdown(Duration::from_secs(5)).await.unwrap();
    });
}

#[actix_rt::test]
async fn local_calls_with_an_identity_are_checked_and_counted() {
    let pokes = Arc::new(AtomicUsize::new(0));
    let node = Node::builder()
        .name("acc-local")
        .arbiters(1)
        .start()
        .unwrap();
    node.spawn(vault_spec(&pokes)).await.unwrap();
    node.spawn(relayer("orders")).await.unwrap();
    node.spawn(relayer("reports")).await.unwrap();
    let vault = node.service("vault");

    let r = vault
        .ask(Reveal)
        .metadata(as_caller("c", &["customer"]))
        .await;
    assert!(denied(&r), "{r:?}");
    assert!(r.unwrap_err().is_retryable());
    // Marked as an outside call (as the gateway marks its calls): anonymous
    // is refused too.
    let r = vault
        .ask(Reveal)
        .metadata(Metadata::new().with_access_check())
        .await;
    assert!(denied(&r), "{r:?}");
    // An admin passes; so does a local call without any identity (this
    // process's own code).
    let r = vault
        .ask(Reveal)
        .metadata(as_caller("root", &["admin"]))
        .await;
    assert_eq!(r.unwrap(), "secret for root via -");
    assert_eq!(vault.ask(Reveal).await.unwrap(), "secret for - via -");
    // Calling services: named by the handler's context, on this node too.
    let r = node.service("orders").ask(Relay).await.unwrap();
    assert_eq!(r.unwrap(), "secret for - via orders");
    let r = node
        .service("reports")
        .ask(Relay)
        .metadata(as_caller("c", &["customer"]))
        .await
        .unwrap();
    assert!(r.unwrap_err().contains("refused the call"));
    // A refused tell is dropped before the handler.
    vault
        .tell_with(Poke, as_caller("c", &["customer"]))
        .unwrap();
    vault
        .tell_with(Poke, as_caller("root", &["admin"]))
        .unwrap();
    assert_eq!(vault.ask(Peek).await.unwrap(), 7);
    assert_eq!(pokes.load(Ordering::SeqCst), 1);

    let stats = node.stats("vault").unwrap();
    assert_eq!(stats.denied, 4, "{stats:?}");
    // Refused calls are not counted as handled messages: 2 Reveal by an
    // admin/anonymous local caller, 1 by orders, 1 Poke, 1 Peek.
    assert_eq!(stats.messages, 5, "{stats:?}");
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}
