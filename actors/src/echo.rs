//! A stateless echo service: the smallest thing to call, for health checks,
//! latency measurements and trying out a node.
//!
//! # Examples
//! ```
//! use msa_actors::echo::{self, Ping, Pong};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let node = msa_runtime::Node::builder().arbiters(1).start()?;
//! let svc = node.spawn(echo::echo_spec("echo").instances(2)).await?;
//! assert_eq!(svc.ask(Ping(7)).await?, Pong(7));
//! assert_eq!(svc.ask(echo::Echo("hi".into())).await?, "hi");
//! node.shutdown(std::time::Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```

use msa_runtime::{Handler, RemoteMessage, Reply, Routing, Service, ServiceContext, ServiceSpec};
use serde::{Deserialize, Serialize};

/// The echo service: it keeps no state, so any number of instances answer
/// alike. (Named `EchoService` because [`Echo`] is its message, whose name
/// matches its wire name `"echo.Echo"`.)
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EchoService;

impl Service for EchoService {}

/// Asks for a [`Pong`] carrying the same sequence number (to match replies
/// to requests when measuring).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, actix::Message, RemoteMessage,
)]
#[msa(name = "echo.Ping")]
#[rtype(result = "Pong")]
pub struct Ping(pub u64);

/// The answer to [`Ping`]: its sequence number, echoed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong(pub u64);

/// Asks for the same text back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, actix::Message, RemoteMessage)]
#[msa(name = "echo.Echo")]
#[rtype(result = "String")]
pub struct Echo(pub String);

impl Handler<Ping> for EchoService {
    fn handle(&mut self, msg: Ping, _: &mut ServiceContext<'_, Self>) -> Reply<Self, Pong> {
        Reply::ready(Pong(msg.0))
    }
}

impl Handler<Echo> for EchoService {
    fn handle(&mut self, msg: Echo, _: &mut ServiceContext<'_, Self>) -> Reply<Self, String> {
        Reply::ready(msg.0)
    }
}

/// The spec of an echo service named `name`: one instance, round-robin
/// routing, handling [`Ping`] and [`Echo`]. Chain
/// [`instances`](ServiceSpec::instances) on it for more.
pub fn echo_spec(name: &str) -> ServiceSpec<EchoService> {
    ServiceSpec::new(name, || EchoService)
        .handles::<Ping>()
        .handles::<Echo>()
        .routing(Routing::RoundRobin)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use msa_runtime::{codec, Node};

    use super::*;

    const GRACE: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn ping_answers_its_sequence_number() {
        let node = Node::builder()
            .name("echo-test")
            .arbiters(1)
            .start()
            .unwrap();
        let svc = node.spawn(echo_spec("echo")).await.unwrap();
        for seq in [0, 1, 42, u64::MAX] {
            assert_eq!(svc.ask(Ping(seq)).await.unwrap(), Pong(seq));
        }
        node.shutdown(GRACE).await.unwrap();
    }

    #[tokio::test]
    async fn echo_answers_the_same_text_from_every_instance() {
        let node = Node::builder()
            .name("echo-test")
            .arbiters(1)
            .start()
            .unwrap();
        let svc = node.spawn(echo_spec("echo").instances(3)).await.unwrap();
        for text in ["", "hello", "ünïcødé", &"x".repeat(10_000)] {
            assert_eq!(svc.ask(Echo(text.to_owned())).await.unwrap(), text);
        }
        let all = svc.ask_all(Echo("all".into())).await.unwrap();
        assert_eq!(all.len(), 3);
        assert!(all.into_iter().all(|r| r.as_deref() == Ok("all")));
        assert_eq!(node.stats("echo").unwrap().messages, 7);
        node.shutdown(GRACE).await.unwrap();
    }

    #[test]
    fn spec_registers_the_wire_names() {
        let names: Vec<&str> = echo_spec("e")
            .wire_names()
            .into_iter()
            .map(|(w, _)| w)
            .collect();
        assert_eq!(names, ["echo.Ping", "echo.Echo"]);
    }

    #[test]
    fn messages_and_results_survive_the_codec() {
        assert_eq!(codec::roundtrip(&Ping(u64::MAX)).unwrap(), Ping(u64::MAX));
        assert_eq!(codec::roundtrip(&Pong(3)).unwrap(), Pong(3));
        let e = Echo("text".into());
        assert_eq!(codec::roundtrip(&e).unwrap(), e);
        assert_eq!(codec::roundtrip(&String::from("r")).unwrap(), "r");
    }
}
