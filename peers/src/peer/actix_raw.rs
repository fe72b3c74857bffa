//! Raw actix: an `Actor` with `Handler`s, called through its `Addr`.

use actix::{Actor, Addr, Context};

use super::msa::{Bump, Hit};
use super::{Endpoint, Tally};

/// The raw actix actor, doing the same work as msa's sink.
#[derive(Debug, Default)]
pub(crate) struct RawSink(pub(crate) Tally);

impl Actor for RawSink {
    type Context = Context<Self>;
}

impl actix::Handler<Hit> for RawSink {
    type Result = ();

    fn handle(&mut self, _: Hit, _: &mut Context<Self>) {
        self.0.hit();
    }
}

impl actix::Handler<Bump> for RawSink {
    type Result = u64;

    fn handle(&mut self, _: Bump, _: &mut Context<Self>) -> u64 {
        self.0.hit()
    }
}

/// The raw actix endpoint.
#[derive(Debug, Clone)]
pub(crate) struct ActixSink(pub(crate) Addr<RawSink>);

impl Endpoint for ActixSink {
    async fn tell(&self) -> anyhow::Result<()> {
        self.0.do_send(Hit);
        Ok(())
    }

    async fn bump(&self) -> anyhow::Result<u64> {
        Ok(self.0.send(Bump).await?)
    }
}
