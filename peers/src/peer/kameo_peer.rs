//! kameo: a `#[derive(Actor)]` with one `Message` impl per message, told
//! with `tell(..).await` and asked with `ask(..).await`, spawned with its
//! default (bounded) mailbox, as kameo's README shows.

use kameo::actor::{ActorRef, Spawn};
use kameo::message::{Context, Message};
use kameo::Actor;

use super::{Endpoint, Tally};

/// One-way message.
#[derive(Debug)]
pub(crate) struct Hit;

/// Round trip: answers with the sink's new count.
#[derive(Debug)]
pub(crate) struct Bump;

/// The kameo actor.
#[derive(Debug, Actor)]
pub(crate) struct KameoSink(pub(crate) Tally);

impl Message<Hit> for KameoSink {
    type Reply = ();

    async fn handle(&mut self, _: Hit, _ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
        self.0.hit();
    }
}

impl Message<Bump> for KameoSink {
    type Reply = u64;

    async fn handle(&mut self, _: Bump, _ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
        self.0.hit()
    }
}

/// The kameo endpoint.
#[derive(Debug, Clone)]
pub(crate) struct KameoEndpoint(pub(crate) ActorRef<KameoSink>);

impl Endpoint for KameoEndpoint {
    async fn tell(&self) -> anyhow::Result<()> {
        self.0.tell(Hit).await?;
        Ok(())
    }

    async fn bump(&self) -> anyhow::Result<u64> {
        Ok(self.0.ask(Bump).await?)
    }
}

/// Spawns a sink on the current tokio runtime.
pub(crate) fn spawn(tally: Tally) -> KameoEndpoint {
    KameoEndpoint(KameoSink::spawn(KameoSink(tally)))
}
