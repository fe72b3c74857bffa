//! ractor: an `Actor` whose messages are one enum, told with `cast` and
//! asked with `call!` (an `RpcReplyPort`), as ractor's README shows.

use ractor::{call, Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::{Endpoint, Tally};

/// The sink's messages.
#[derive(Debug)]
pub(crate) enum SinkMsg {
    Hit,
    Bump(RpcReplyPort<u64>),
}

/// The ractor actor (its state is the [`Tally`]).
#[derive(Debug)]
pub(crate) struct RactorSink;

impl Actor for RactorSink {
    type Msg = SinkMsg;
    type State = Tally;
    type Arguments = Tally;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: Tally,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SinkMsg::Hit => {
                state.hit();
            }
            SinkMsg::Bump(reply) => {
                // The caller may have gone: nothing to do about it here.
                let _ = reply.send(state.hit());
            }
        }
        Ok(())
    }
}

/// The ractor endpoint.
#[derive(Debug, Clone)]
pub(crate) struct RactorEndpoint(pub(crate) ActorRef<SinkMsg>);

impl Endpoint for RactorEndpoint {
    async fn tell(&self) -> anyhow::Result<()> {
        self.0.cast(SinkMsg::Hit)?;
        Ok(())
    }

    async fn bump(&self) -> anyhow::Result<u64> {
        Ok(call!(self.0, SinkMsg::Bump)?)
    }
}

/// Spawns a sink (unnamed, as ractor's examples do).
pub(crate) async fn spawn(tally: Tally) -> anyhow::Result<RactorEndpoint> {
    let (actor, _join) = Actor::spawn(None, RactorSink, tally).await?;
    Ok(RactorEndpoint(actor))
}
