//! msa: a service with `Handler`s, called through a `ServiceRef`.

use msa_runtime::{Handler, Reply, Service, ServiceContext, ServiceRef, ServiceSpec};

use super::{Endpoint, Tally};

/// One-way message.
#[derive(Debug, Clone, Copy, actix::Message)]
#[rtype(result = "()")]
pub(crate) struct Hit;

/// Round trip: answers with the sink's new count.
#[derive(Debug, Clone, Copy, actix::Message)]
#[rtype(result = "u64")]
pub(crate) struct Bump;

/// The msa service.
#[derive(Debug, Default)]
pub(crate) struct Sink(pub(crate) Tally);

impl Service for Sink {}

impl Handler<Hit> for Sink {
    fn handle(&mut self, _: Hit, _: &mut ServiceContext<'_, Self>) -> Reply<Self, ()> {
        self.0.hit();
        Reply::ready(())
    }
}

impl Handler<Bump> for Sink {
    fn handle(&mut self, _: Bump, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        Reply::ready(self.0.hit())
    }
}

/// The spec of a sink service whose instances come from `factory`.
pub(crate) fn spec<F>(name: &str, factory: F) -> ServiceSpec<Sink>
where
    F: Fn() -> Sink + Send + Sync + 'static,
{
    ServiceSpec::new(name, factory)
        .handles_local::<Hit>()
        .handles_local::<Bump>()
}

/// The msa endpoint.
#[derive(Debug, Clone)]
pub(crate) struct MsaSink(pub(crate) ServiceRef);

impl Endpoint for MsaSink {
    async fn tell(&self) -> anyhow::Result<()> {
        Ok(self.0.tell(Hit)?)
    }

    async fn bump(&self) -> anyhow::Result<u64> {
        Ok(self.0.ask(Bump).await?)
    }
}
