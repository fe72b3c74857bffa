//! Test services, a node + gateway fixture and HTTP helpers shared by the
//! gateway's integration tests.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

/// The runtime's per-test log capture.
#[path = "../../../runtime/tests/it/support/log_capture.rs"]
pub mod log_capture;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use msa_gateway::{Gateway, GatewayConfig, GatewayHandle};
use msa_runtime::prelude::*;
use msa_runtime::Node;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const GRACE: Duration = Duration::from_secs(5);

/// Adds two numbers; describes itself with a JSON schema.
#[derive(
    Debug, actix::Message, Serialize, Deserialize, msa_runtime::schemars::JsonSchema, RemoteMessage,
)]
#[msa(name = "calc.Add", schema)]
#[schemars(crate = "msa_runtime::schemars")]
#[rtype(result = "i64")]
pub struct Add {
    pub a: i64,
    pub b: i64,
}

/// Reads an order: `GET /orders/{id}`.
#[derive(Debug, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "shop.GetOrder")]
#[rtype(result = "String")]
pub struct GetOrder {
    pub id: u64,
    #[serde(default)]
    pub detail: bool,
}

/// Greets by name: `GET /greet/{name}` (a name may look like a number).
#[derive(Debug, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "calc.Greet")]
#[rtype(result = "String")]
pub struct Greet {
    pub name: String,
}

/// Tells the caller what the service saw of it.
#[derive(Debug, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "calc.WhoAmI")]
#[rtype(result = "Seen")]
pub struct WhoAmI;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    pub subject: Option<String>,
    pub roles: Vec<String>,
    pub trace_id: Option<String>,
}

/// Answers after `ms` milliseconds.
#[derive(Debug, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "calc.Sleep")]
#[rtype(result = "u64")]
pub struct Sleep {
    pub ms: u64,
}

/// Its reply future panics with a "secret" message.
#[derive(Debug, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "calc.PanicLater")]
#[rtype(result = "u64")]
pub struct PanicLater;

/// Its result cannot be JSON (non-string map keys).
#[derive(Debug, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "calc.BadResult")]
#[rtype(result = "HashMap<(u8, u8), u8>")]
pub struct BadResult;

/// Panics in the handler itself (killing the instance) when `crash` is set.
#[derive(Debug, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "crash.Crash")]
#[rtype(result = "u64")]
pub struct Crash {
    pub crash: bool,
    pub n: u64,
}

/// `sleeping` counts the `Sleep` calls in progress, for tests to wait on.
#[derive(Debug, Default)]
pub struct Calc {
    pub sleeping: Arc<AtomicUsize>,
}
impl Service for Calc {}

impl Handler<Add> for Calc {
    fn handle(&mut self, m: Add, _: &mut ServiceContext<'_, Self>) -> Reply<Self, i64> {
        Reply::ready(m.a.wrapping_add(m.b))
    }
}
impl Handler<GetOrder> for Calc {
    fn handle(&mut self, m: GetOrder, _: &mut ServiceContext<'_, Self>) -> Reply<Self, String> {
        Reply::ready(format!("order {} detail={}", m.id, m.detail))
    }
}
impl Handler<Greet> for Calc {
    fn handle(&mut self, m: Greet, _: &mut ServiceContext<'_, Self>) -> Reply<Self, String> {
        Reply::ready(format!("hello {}", m.name))
    }
}
impl Handler<WhoAmI> for Calc {
    fn handle(&mut self, _: WhoAmI, ctx: &mut ServiceContext<'_, Self>) -> Reply<Self, Seen> {
        let id = ctx.identity();
        Reply::ready(Seen {
            subject: id.map(|i| i.subject.clone()),
            roles: id.map(|i| i.roles.clone()).unwrap_or_default(),
            trace_id: ctx
                .metadata()
                .trace()
                .map(|t| format!("{:032x}", t.trace_id)),
        })
    }
}
impl Handler<Sleep> for Calc {
    fn handle(&mut self, m: Sleep, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        let sleeping = self.sleeping.clone();
        sleeping.fetch_add(1, Ordering::SeqCst);
        Reply::future(async move {
            tokio::time::sleep(Duration::from_millis(m.ms)).await;
            sleeping.fetch_sub(1, Ordering::SeqCst);
            m.ms
        })
    }
}
impl Handler<PanicLater> for Calc {
    fn handle(&mut self, _: PanicLater, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        Reply::future(async { panic!("secret detail from the handler") })
    }
}
impl Handler<BadResult> for Calc {
    fn handle(
        &mut self,
        _: BadResult,
        _: &mut ServiceContext<'_, Self>,
    ) -> Reply<Self, HashMap<(u8, u8), u8>> {
        Reply::ready(HashMap::from([((1, 2), 3)]))
    }
}

pub fn calc_spec() -> ServiceSpec<Calc> {
    calc_spec_with(Arc::default())
}

pub fn calc_spec_with(sleeping: Arc<AtomicUsize>) -> ServiceSpec<Calc> {
    ServiceSpec::new("calc", move || Calc {
        sleeping: sleeping.clone(),
    })
    .handles::<Add>()
    .handles::<GetOrder>()
    .handles::<Greet>()
    .handles::<WhoAmI>()
    .handles::<Sleep>()
    .handles::<PanicLater>()
    .handles::<BadResult>()
    .instances(2)
}

#[derive(Debug, Default)]
pub struct Crashy;
impl Service for Crashy {}
impl Handler<Crash> for Crashy {
    fn handle(&mut self, m: Crash, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        if m.crash {
            panic!("crash requested");
        }
        Reply::ready(m.n)
    }
}

/// Several instances, restarted after every crash.
pub fn crashy_spec(instances: usize, max_restarts: u32) -> ServiceSpec<Crashy> {
    ServiceSpec::new("crashy", || Crashy)
        .handles::<Crash>()
        .instances(instances)
        .restart(Restart::Permanent)
        .intensity(max_restarts, Duration::from_secs(60))
}

/// Config on a free loopback port.
pub fn config() -> GatewayConfig {
    GatewayConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        ..GatewayConfig::default()
    }
}

/// A node running `calc` and its gateway.
pub struct Fixture {
    pub node: Node,
    pub gateway: GatewayHandle,
    pub base: String,
    pub client: awc::Client,
}

impl Fixture {
    pub async fn start(config: GatewayConfig) -> Self {
        Self::start_with(config, Arc::default()).await
    }

    /// As `start`, with a counter of `Sleep` calls in progress.
    pub async fn start_with(config: GatewayConfig, sleeping: Arc<AtomicUsize>) -> Self {
        let node = Node::builder().arbiters(1).start().unwrap();
        node.spawn(calc_spec_with(sleeping)).await.unwrap();
        Self::on(node, config)
    }

    pub fn on(node: Node, config: GatewayConfig) -> Self {
        let gateway = Gateway::start(node.clone(), config).unwrap();
        let base = format!("http://{}", gateway.local_addr());
        Self {
            node,
            gateway,
            base,
            client: client(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends `method path` with `body` and optional bearer token; returns
    /// status, headers and the body parsed as JSON (`Value::Null` if not JSON).
    pub async fn send(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> Resp {
        let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.insert_header(("authorization", format!("Bearer {t}")));
        }
        send_req(req, body.to_string()).await
    }

    pub async fn post(&self, path: &str, body: &str) -> Resp {
        self.send("POST", path, None, body).await
    }

    pub async fn stop(self) {
        self.gateway.stop().await;
        self.node.shutdown(GRACE).await.unwrap();
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: awc::http::header::HeaderMap,
    pub raw: Vec<u8>,
    pub json: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a JSON error answer of `status` and `kind`; returns its message.
    #[track_caller]
    pub fn error(&self, status: u16, kind: &str) -> String {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.header("content-type"), Some("application/json"));
        assert_eq!(self.json["error"], kind, "{self:?}");
        self.json["message"].as_str().unwrap().to_string()
    }
}

pub async fn send_req(req: awc::ClientRequest, body: String) -> Resp {
    let mut res = req.send_body(body).await.unwrap();
    let raw = res.body().limit(16 << 20).await.unwrap().to_vec();
    Resp {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        json: serde_json::from_slice(&raw).unwrap_or(Value::Null),
        raw,
    }
}

pub fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .connector(awc::Connector::new().limit(2048))
        .finish()
}

pub use msa_runtime::test_support::eventually;

/// `GET /v1/cluster` through `f`.
pub async fn cluster_view(f: &Fixture) -> Value {
    let r = f.send("GET", "/v1/cluster", None, "").await;
    assert_eq!(r.status, 200, "{r:?}");
    r.json
}

/// `(status, state, reachability)` of `member` in a `/v1/cluster` view; a
/// missing field reads as `-`.
pub fn member(view: &Value, name: &str) -> (String, String, String) {
    let m = view["members"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["name"] == name))
        .cloned()
        .unwrap_or(Value::Null);
    let field = |k: &str| m[k].as_str().unwrap_or("-").to_string();
    (field("status"), field("state"), field("reachability"))
}

/// The `unreachable` pairs of a `/v1/cluster` view, sorted.
pub fn pairs(view: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = view["unreachable"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| Some((p[0].as_str()?.to_string(), p[1].as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Keeps the intended `crash requested` panics out of the test output.
pub fn quiet_intended_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info.payload().downcast_ref::<&str>().copied().unwrap_or("");
            if msg != "crash requested" {
                default(info);
            }
        }));
    });
}
