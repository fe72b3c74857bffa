//! The services and messages of `msa bench remote`.
//!
//! The sink runs in the child process and counts one-way [`Hit`]s; [`Count`]
//! asks for that count and [`Echo`] is the round trip of the ask scenario.
//! All three cross nodes, so they carry explicit wire names. [`Site`] is a
//! local-only helper on the caller's node: its handler answers with the
//! arbiter it runs on, so the timed loops can run on the thread that also
//! runs the node's connection (as a calling service would).

use actix::ArbiterHandle;
use msa_runtime::{Handler, RemoteMessage, Reply, Service, ServiceContext, ServiceSpec};
use serde::{Deserialize, Serialize};

/// The name of the sink service (in the child process).
pub(crate) const SINK: &str = "sink";

/// The name of the helper service on the caller's node.
pub(crate) const SITE: &str = "bench-site";

/// One-way message with a u64 payload: the sink counts it.
#[derive(Debug, Clone, Copy, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "bench.Hit")]
#[rtype(result = "()")]
pub(crate) struct Hit(pub(crate) u64);

/// Asks the sink how many [`Hit`]s it has counted since it started.
#[derive(Debug, Clone, Copy, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "bench.Count")]
#[rtype(result = "u64")]
pub(crate) struct Count;

/// Round trip: the sink answers with the same u64.
#[derive(Debug, Clone, Copy, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "bench.Echo")]
#[rtype(result = "u64")]
pub(crate) struct Echo(pub(crate) u64);

/// The service under test, in the child process.
#[derive(Debug, Default)]
pub(crate) struct RemoteSink {
    count: u64,
}

impl Service for RemoteSink {}

impl Handler<Hit> for RemoteSink {
    #[inline]
    fn handle(&mut self, _: Hit, _: &mut ServiceContext<'_, Self>) -> Reply<Self, ()> {
        self.count += 1;
        Reply::ready(())
    }
}

impl Handler<Count> for RemoteSink {
    fn handle(&mut self, _: Count, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        Reply::ready(self.count)
    }
}

impl Handler<Echo> for RemoteSink {
    #[inline]
    fn handle(&mut self, m: Echo, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        Reply::ready(m.0)
    }
}

/// The spec of the sink service.
pub(crate) fn sink_spec() -> ServiceSpec<RemoteSink> {
    ServiceSpec::new(SINK, RemoteSink::default)
        .handles::<Hit>()
        .handles::<Count>()
        .handles::<Echo>()
}

/// Asks a [`SiteService`] instance for the arbiter it runs on.
#[derive(Debug, Clone, Copy, actix::Message)]
#[rtype(result = "ArbiterHandle")]
pub(crate) struct WhereAreYou;

/// A local helper service: tells the caller which arbiter it runs on.
#[derive(Debug, Default)]
pub(crate) struct SiteService;

impl Service for SiteService {}

impl Handler<WhereAreYou> for SiteService {
    fn handle(
        &mut self,
        _: WhereAreYou,
        _: &mut ServiceContext<'_, Self>,
    ) -> Reply<Self, ArbiterHandle> {
        Reply::ready(actix::Arbiter::current())
    }
}

/// The spec of the helper service.
pub(crate) fn site_spec() -> ServiceSpec<SiteService> {
    ServiceSpec::new(SITE, || SiteService).handles_local::<WhereAreYou>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use msa_runtime::codec;

    #[test]
    fn bench_messages_survive_the_wire_codec() {
        assert_eq!(codec::roundtrip(&Hit(u64::MAX)).unwrap().0, u64::MAX);
        assert_eq!(codec::roundtrip(&Echo(7)).unwrap().0, 7);
        codec::roundtrip(&Count).unwrap();
    }
}
