//! Calls from anywhere: a node that hosts nothing and registers nothing
//! calls services on other nodes with typed messages (their derive declares
//! them), and JSON calls are forwarded to a node that hosts the service,
//! which decodes them.

use msa_runtime::prelude::*;
use msa_runtime::test_support::remote_added;
use msa_runtime::{JsonBody, JsonError};
use serde::{Deserialize, Serialize};

/// Adds to the total; answers the new total.
#[derive(Debug, Clone, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[rtype(result = "u64")]
#[msa(name = "anywhere.Add")]
struct Add {
    n: u64,
}

/// Answers the service's name, so a caller sees which service served it.
#[derive(Debug, Clone, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[rtype(result = "String")]
#[msa(name = "anywhere.Name")]
struct Name;

/// Never declared for the wire: it reaches only instances on its own node.
#[derive(Debug, actix::Message)]
#[rtype(result = "u64")]
struct LocalOnly;

/// Implemented by hand, not derived: only a node whose service handles it
/// knows the type (as with a service built into another binary).
#[derive(Debug, Clone, actix::Message, Serialize, Deserialize)]
#[rtype(result = "String")]
struct Shout {
    text: String,
}
impl msa_runtime::RemoteMessage for Shout {
    const NAME: &'static str = "anywhere.Shout";
}

struct Loud;
impl Service for Loud {}
impl Handler<Shout> for Loud {
    fn handle(&mut self, m: Shout, _: &mut ServiceContext<'_, Self>) -> Reply<Self, String> {
        Reply::ready(m.text.to_uppercase())
    }
}

struct Total {
    name: &'static str,
    total: u64,
}
impl Service for Total {}
impl Handler<Add> for Total {
    fn handle(&mut self, m: Add, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        self.total += m.n;
        Reply::ready(self.total)
    }
}
impl Handler<Name> for Total {
    fn handle(&mut self, _: Name, _: &mut ServiceContext<'_, Self>) -> Reply<Self, String> {
        Reply::ready(self.name.to_string())
    }
}
impl Handler<LocalOnly> for Total {
    fn handle(&mut self, _: LocalOnly, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        Reply::ready(self.total)
    }
}

fn total(name: &'static str) -> ServiceSpec<Total> {
    ServiceSpec::new(name, move || Total { name, total: 0 })
        .handles::<Add>()
        .handles::<Name>()
        .handles_local::<LocalOnly>()
}

const SECRET: &[u8] = b"anywhere-secret";

/// A node that registers nothing.
fn bare_node(name: &str, seed: Option<String>) -> Node {
    let mut b = Node::builder()
        .name(name)
        .arbiters(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .secret(SECRET);
    if let Some(s) = seed {
        b = b.seed(s);
    }
    b.start().unwrap()
}

/// `left` on node a, `right` on node b, and node c hosting nothing; c has
/// seen both services' tables when this returns.
async fn cluster() -> (Node, Node, Node) {
    let a = bare_node("a", None);
    let seed = a.remote_addr().unwrap();
    let b = bare_node("b", Some(seed.clone()));
    let c = bare_node("c", Some(seed));
    let mut wc = c.watch();
    a.spawn(total("left")).await.unwrap();
    b.spawn(total("right")).await.unwrap();
    remote_added(
        std::time::Duration::from_secs(15),
        &mut wc,
        &["left", "right"],
    )
    .await;
    (a, b, c)
}

async fn stop(nodes: [Node; 3]) {
    for n in nodes {
        n.shutdown(std::time::Duration::from_secs(2)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_hosts_nothing_calls_services_on_two_other_nodes_without_registering() {
    let (a, b, c) = cluster().await;
    let left = c.service("left");
    let right = c.service("right");
    assert_eq!(left.ask(Add { n: 2 }).await.unwrap(), 2);
    assert_eq!(right.ask(Add { n: 5 }).await.unwrap(), 5);
    assert_eq!(left.ask(Name).await.unwrap(), "left");
    assert_eq!(right.ask(Name).await.unwrap(), "right");
    // A tell, then an ask from the same sender: they arrive in order.
    left.tell(Add { n: 3 }).unwrap();
    assert_eq!(left.ask(Add { n: 0 }).await.unwrap(), 5);
    // The hosts' own state moved, not a copy on c.
    assert_eq!(a.service("left").ask(Add { n: 0 }).await.unwrap(), 5);
    assert_eq!(b.service("right").ask(Add { n: 0 }).await.unwrap(), 5);
    stop([c, b, a]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_only_message_to_a_remote_instance_is_a_clear_error() {
    let (a, b, c) = cluster().await;
    // On its own node the local-only message is served ...
    assert_eq!(a.service("left").ask(LocalOnly).await.unwrap(), 0);
    // ... from another node it cannot be encoded: a typed error, no hang.
    let e = c.service("left").ask(LocalOnly).await.unwrap_err();
    assert!(matches!(e, CallError::NotRegistered { .. }), "{e:?}");
    assert!(e.to_string().contains("derive `RemoteMessage`"), "{e}");
    let e = c.service("left").tell(LocalOnly).unwrap_err();
    assert!(matches!(e, CallError::NotRegistered { .. }), "{e:?}");
    stop([c, b, a]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_calls_are_forwarded_to_a_hosting_node_and_decoded_there() {
    let (a, b, c) = cluster().await;
    let call = |svc: &str, msg: &str, body: &'static [u8]| {
        c.call_json(svc, msg, JsonBody::Bytes(body), Metadata::new(), None)
    };
    // c has the type too (same binary), but runs no instance: it forwards.
    let reply = call("left", "anywhere.Add", br#"{"n": 4}"#).unwrap().await;
    assert_eq!(reply.unwrap(), b"4");
    let reply = call("right", "anywhere.Name", b"null").unwrap().await;
    assert_eq!(reply.unwrap(), br#""right""#);
    // A body as a parsed value travels too.
    let v = serde_json::json!({"n": 1});
    let reply = c
        .call_json(
            "left",
            "anywhere.Add",
            JsonBody::Value(v),
            Metadata::new(),
            None,
        )
        .unwrap()
        .await;
    assert_eq!(reply.unwrap(), b"5");

    // Bad JSON: decoded (and refused) by the hosting node, with its message.
    let e = call("left", "anywhere.Add", b"{\"n\": ")
        .unwrap()
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            CallError::Json {
                error: JsonError::MalformedJson { .. },
                ..
            }
        ),
        "{e:?}"
    );
    let e = call("left", "anywhere.Add", br#"{"n": "x"}"#)
        .unwrap()
        .await
        .unwrap_err();
    match &e {
        CallError::Json {
            error:
                JsonError::BadBody {
                    message,
                    path,
                    reason,
                },
            ..
        } => {
            assert_eq!(message, "anywhere.Add");
            assert_eq!(path, "n");
            assert!(reason.contains("invalid type"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // A message no node lists for the service: unknown, here.
    let e = call("left", "anywhere.Nope", b"{}").err().expect("refused");
    assert!(matches!(e, JsonError::UnknownMessage { .. }), "{e:?}");
    // An unknown service: the call's own error.
    let e = call("nope", "anywhere.Add", b"{}")
        .unwrap()
        .await
        .unwrap_err();
    assert!(matches!(e, CallError::UnknownService { .. }), "{e:?}");
    // The hosting node served every one of those calls that decoded.
    assert_eq!(a.service("left").ask(Add { n: 0 }).await.unwrap(), 5);
    stop([c, b, a]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_call_reaches_a_message_type_the_calling_node_does_not_know() {
    let a = bare_node("a", None);
    let c = bare_node("c", a.remote_addr());
    let mut wc = c.watch();
    a.spawn(ServiceSpec::new("loud", || Loud).handles::<Shout>())
        .await
        .unwrap();
    remote_added(std::time::Duration::from_secs(15), &mut wc, &["loud"]).await;
    // c has no registration and no declaration of `anywhere.Shout`: it
    // cannot even describe it ...
    assert!(c.message_info("anywhere.Shout").is_none());
    // ... yet its JSON call is forwarded to a, which decodes and answers.
    let reply = c
        .call_json(
            "loud",
            "anywhere.Shout",
            JsonBody::Bytes(br#"{"text":"hi"}"#),
            Metadata::new(),
            None,
        )
        .unwrap()
        .await
        .unwrap();
    assert_eq!(reply, br#""HI""#);
    // A typed ask of the same type from c cannot be encoded there.
    let e = c
        .service("loud")
        .ask(Shout { text: "x".into() })
        .await
        .unwrap_err();
    assert!(matches!(e, CallError::NotRegistered { .. }), "{e:?}");
    c.shutdown(std::time::Duration::from_secs(2)).await.unwrap();
    a.shutdown(std::time::Duration::from_secs(2)).await.unwrap();
}
