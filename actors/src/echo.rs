//! A stateless echo service: the smallest thing to call, for health checks,
//! latency measurements and trying out a node.
//!
//! Each instance is also a member of the process group named after its
//! service, of [`Ping`] (`node.group::<Ping>("echo")` for a service named
//! `echo`; docs/streams.md, "Groups"): a ready-made group member in a real
//! `msa node` process, for trying out and testing `ask_all`/`tell_all`
//! across processes. It leaves the group when the instance ends.
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

use msa_runtime::{
    GroupMembership, Handler, RemoteMessage, Reply, Routing, Service, ServiceContext, ServiceSpec,
};
use serde::{Deserialize, Serialize};

/// The echo service: it keeps no state, so any number of instances answer
/// alike; it only holds its membership of the process group named after
/// its service (of [`Ping`]). (Named `EchoService` because [`Echo`] is its
/// message, whose name matches its wire name `"echo.Echo"`.)
#[derive(Debug, Default)]
pub struct EchoService {
    group: Option<GroupMembership>,
}

impl Service for EchoService {
    fn started(&mut self, ctx: &mut ServiceContext<'_, Self>) {
        let name = ctx.service_name().to_string();
        match ctx.join_group::<Ping>(&name) {
            Ok(m) => self.group = Some(m),
            Err(e) => {
                tracing::warn!(service = %name, error = %e, "echo instance not in its process group");
            }
        }
    }
}

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
    ServiceSpec::new(name, EchoService::default)
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

    #[tokio::test]
    async fn every_instance_is_a_member_of_the_group_named_after_its_service() {
        let node = Node::builder()
            .name("echo-test")
            .arbiters(1)
            .start()
            .unwrap();
        node.spawn(echo_spec("pinger").instances(3)).await.unwrap();
        let group = node.group::<Ping>("pinger").unwrap();
        assert_eq!(group.members().len(), 3);
        let replies = group.ask_all(Ping(5)).await;
        assert_eq!(replies.len(), 3);
        assert!(replies.iter().all(|(_, r)| r.as_ref() == Ok(&Pong(5))));
        assert!(node.group::<Ping>("echo").unwrap().members().is_empty());
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
