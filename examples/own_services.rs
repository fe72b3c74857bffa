//! A binary of your own built on `msa::host`: two services of its own
//! (`tally` counts words, `greeter` greets and asks `tally` how often it
//! greeted that name), with everything `msa node` does: config file,
//! `MSA_*` variables and flags, the gateway, the operations endpoints, the
//! ready line, a graceful SIGTERM.
//!
//! Which of the two a process runs comes from `OWN_SERVICES` (comma-separated,
//! default both), so that one binary can be spread over several nodes:
//!
//! ```sh
//! OWN_SERVICES=tally   cargo run --example own_services -- --name n1 --listen 127.0.0.1:7101
//! OWN_SERVICES=greeter cargo run --example own_services -- --name n2 --seed 127.0.0.1:7101
//! OWN_SERVICES=        cargo run --example own_services -- --name gw --seed 127.0.0.1:7101 --gateway 127.0.0.1:8088
//! curl -X POST localhost:8088/v1/greeter/greeter.Greet -d '{"name":"ada"}'   # "hello ada (1)"
//! curl localhost:8088/greet/ada                                               # "hello ada (2)"
//! ```

use std::collections::HashMap;

use msa::gateway::RouteConfig;
use msa::host::{Host, HostError};
use msa::{Handler, RemoteMessage, Reply, Service, ServiceContext, ServiceSpec};
use serde::{Deserialize, Serialize};

/// Counts how often each word was seen.
#[derive(Debug, Default)]
struct Tally(HashMap<String, u64>);

impl Service for Tally {}

/// Counts `word` once more; answers the new count.
#[derive(Debug, Clone, Serialize, Deserialize, actix::Message, RemoteMessage)]
#[msa(name = "tally.Count")]
#[rtype(result = "u64")]
struct Count {
    word: String,
}

impl Handler<Count> for Tally {
    fn handle(&mut self, m: Count, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        let n = self.0.entry(m.word).or_default();
        *n += 1;
        Reply::ready(*n)
    }
}

/// Greets; keeps no state of its own (the count lives in `tally`, on
/// whichever node runs it).
#[derive(Debug, Default)]
struct Greeter;

impl Service for Greeter {}

/// Asks for a greeting for `name`.
#[derive(Debug, Clone, Serialize, Deserialize, actix::Message, RemoteMessage)]
#[msa(name = "greeter.Greet")]
#[rtype(result = "String")]
struct Greet {
    name: String,
}

impl Handler<Greet> for Greeter {
    fn handle(&mut self, m: Greet, ctx: &mut ServiceContext<'_, Self>) -> Reply<Self, String> {
        let tally = ctx.service("tally");
        Reply::future(async move {
            match tally
                .ask(Count {
                    word: m.name.clone(),
                })
                .await
            {
                Ok(n) => format!("hello {} ({n})", m.name),
                Err(e) => format!("hello {} (tally unavailable: {e})", m.name),
            }
        })
    }
}

fn main() -> Result<(), HostError> {
    let wanted = std::env::var("OWN_SERVICES").unwrap_or_else(|_| "tally,greeter".into());
    let runs = |name: &str| wanted.split(',').any(|s| s.trim() == name);
    let mut host = Host::from_args()?;
    if runs("tally") {
        host = host.service(ServiceSpec::new("tally", Tally::default).handles::<Count>());
    }
    if runs("greeter") {
        host = host.service(
            ServiceSpec::new("greeter", || Greeter)
                .handles::<Greet>()
                .instances(2),
        );
    }
    host.gateway_routes([RouteConfig {
        method: "GET".into(),
        path: "/greet/{name}".into(),
        service: "greeter".into(),
        message: "greeter.Greet".into(),
    }])
    .run()
}
