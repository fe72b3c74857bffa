//! The gRPC ingress (docs/grpc.md) with tonic's own client: calls to a
//! service on another node than the gateway's, the error codes, the client's
//! deadline, the bounds, health and reflection.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use msa_gateway::grpc::proto::gateway_client::GatewayClient;
use msa_gateway::grpc::proto::{CallRequest, Encoding, SubscribeRequest};
use msa_gateway::{AuthConfig, Gateway, GatewayConfig, GatewayHandle, GrpcConfig, PolicyRule};
use msa_runtime::test_support::{eventually, remote_added};
use msa_runtime::Node;
use tonic::transport::Channel;
use tonic::Code;

use crate::support::{calc_spec_with, GRACE};

const SECRET: &[u8] = b"grpc-tests";
const JWT: &str = "grpc-jwt-secret";

/// Two nodes: `calc` runs on `svc`, the gateway (HTTP and gRPC) on `gw`.
struct Cluster {
    gw: Node,
    svc: Node,
    gateway: GatewayHandle,
    sleeping: Arc<AtomicUsize>,
}

impl Cluster {
    async fn start(grpc: GrpcConfig) -> Self {
        Self::start_with(grpc, Vec::new()).await
    }

    /// As [`start`](Self::start), with `rules` added to the policy.
    async fn start_with(grpc: GrpcConfig, rules: Vec<PolicyRule>) -> Self {
        let node = |name: &str, seed: Option<String>| {
            let mut b = Node::builder()
                .name(name)
                .arbiters(1)
                .listen("127.0.0.1:0".parse().unwrap())
                .secret(SECRET);
            if let Some(s) = seed {
                b = b.seed(s);
            }
            b.start().unwrap()
        };
        let gw = node("grpc-gw", None);
        let svc = node("grpc-svc", gw.remote_addr());
        let mut watch = gw.watch();
        let sleeping = Arc::new(AtomicUsize::new(0));
        svc.spawn(calc_spec_with(sleeping.clone())).await.unwrap();
        remote_added(Duration::from_secs(20), &mut watch, &["calc"]).await;
        let config = GatewayConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            auth: Some(AuthConfig::hs256(JWT)),
            policy: [PolicyRule {
                service: "calc".into(),
                message: "*".into(),
                roles: vec!["user".into()],
            }]
            .into_iter()
            .chain(rules)
            .collect(),
            grpc: Some(GrpcConfig {
                bind: "127.0.0.1:0".parse().unwrap(),
                ..grpc
            }),
            ..GatewayConfig::default()
        };
        let gateway = Gateway::start(gw.clone(), config).unwrap();
        Self {
            gw,
            svc,
            gateway,
            sleeping,
        }
    }

    async fn client(&self) -> GatewayClient<Channel> {
        let addr = self.gateway.grpc_addr().expect("gRPC is configured");
        GatewayClient::connect(format!("http://{addr}"))
            .await
            .unwrap()
    }

    fn channel_url(&self) -> String {
        format!("http://{}", self.gateway.grpc_addr().unwrap())
    }

    async fn stop(self) {
        self.gateway.stop().await;
        self.svc.shutdown(GRACE).await.unwrap();
        self.gw.shutdown(GRACE).await.unwrap();
    }
}

fn token(roles: &[&str]) -> String {
    msa_gateway::hs256_token(JWT, "alice", roles, Duration::from_secs(300)).unwrap()
}

fn call(
    service: &str,
    message: &str,
    payload: &str,
    token: Option<&str>,
) -> tonic::Request<CallRequest> {
    let mut req = tonic::Request::new(CallRequest {
        service: service.into(),
        message: message.into(),
        payload: payload.as_bytes().to_vec(),
        encoding: Encoding::Json as i32,
    });
    if let Some(t) = token {
        req.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_reach_a_service_on_another_node_and_errors_have_their_codes() {
    let c = Cluster::start(GrpcConfig::default()).await;
    let mut client = c.client().await;
    let user = token(&["user"]);

    let reply = client
        .call(call("calc", "calc.Add", r#"{"a":2,"b":3}"#, Some(&user)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.payload, b"5");
    assert_eq!(reply.encoding, Encoding::Json as i32);

    // The caller's identity and trace travel to the node that serves it.
    let mut who = call("calc", "calc.WhoAmI", "", Some(&user));
    who.metadata_mut().insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap(),
    );
    let seen: serde_json::Value =
        serde_json::from_slice(&client.call(who).await.unwrap().into_inner().payload).unwrap();
    assert_eq!(seen["subject"], "alice");
    // (Its roles are believed only by a node that verifies the token
    // itself: docs/security.md; this one has no verifier.)
    assert_eq!(seen["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");

    let code = |r: Result<tonic::Response<_>, tonic::Status>| r.map(|_| ()).unwrap_err();
    let s = code(
        client
            .call(call("calc", "calc.Add", r#"{"a":"#, Some(&user)))
            .await,
    );
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(s.message().contains("malformed JSON"), "{s:?}");
    let s = code(
        client
            .call(call("calc", "calc.Add", r#"{"a":1}"#, Some(&user)))
            .await,
    );
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    let s = code(
        client
            .call(call("calc", "calc.Nope", "{}", Some(&user)))
            .await,
    );
    assert_eq!(s.code(), Code::NotFound, "{s:?}");
    let s = code(
        client
            .call(call("calc", "calc.Add", "[]", Some(&user)))
            .await,
    );
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");

    let s = code(client.call(call("calc", "calc.Add", "{}", None)).await);
    assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
    let s = code(
        client
            .call(call("calc", "calc.Add", "{}", Some("not.a.token")))
            .await,
    );
    assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
    let s = code(
        client
            .call(call("calc", "calc.Add", "{}", Some(&token(&["guest"]))))
            .await,
    );
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    // The policy admits `calc` only: another service is refused before it
    // is looked up, as over HTTP.
    let s = code(client.call(call("kv", "kv.Get", "{}", Some(&user))).await);
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");

    let mut unknown = call("calc", "calc.Add", "{}", Some(&user));
    unknown.get_mut().encoding = 7;
    let s = code(client.call(unknown).await);
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(s.message().contains("unknown encoding 7"), "{s:?}");
    let mut sub = tonic::Request::new(SubscribeRequest {
        topic: "orders.events".into(),
    });
    sub.metadata_mut()
        .insert("authorization", format!("Bearer {user}").parse().unwrap());
    // No `@topics` rule admits the topic: refused as over SSE.
    let s = client.subscribe(sub).await.map(|_| ()).unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    c.stop().await;
}

fn bincode_call(message: &str, payload: Vec<u8>, token: &str) -> tonic::Request<CallRequest> {
    let mut req = call("calc", message, "", Some(token));
    req.get_mut().payload = payload;
    req.get_mut().encoding = Encoding::Bincode as i32;
    req
}

/// `ENCODING_BINCODE`: the message's bincode bytes by wire name, forwarded
/// undecoded from the gateway's node (which runs no `calc`) to the node
/// that runs it, which decodes them and answers the reply's bincode bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bincode_calls_are_decoded_by_the_node_that_runs_the_service() {
    use crate::support::{Add, Seen};
    use msa_runtime::codec;
    let c = Cluster::start(GrpcConfig::default()).await;
    let mut client = c.client().await;
    let user = token(&["user"]);

    // bincode 2, standard configuration: a struct is its fields in order,
    // an i64 a zigzag varint (2 -> 4, -7 -> 13), as docs/grpc.md says.
    let payload = codec::encode(&Add { a: 2, b: -7 }).unwrap();
    assert_eq!(payload, [4, 13]);
    let reply = client
        .call(bincode_call("calc.Add", payload, &user))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.encoding, Encoding::Bincode as i32);
    assert_eq!(reply.payload, [9]); // -5
    assert_eq!(codec::decode::<i64>(&reply.payload).unwrap(), -5);

    // A unit message is no bytes at all; the caller's identity travels.
    let reply = client
        .call(bincode_call("calc.WhoAmI", Vec::new(), &user))
        .await
        .unwrap()
        .into_inner();
    let seen: Seen = codec::decode(&reply.payload).unwrap();
    assert_eq!(seen.subject.as_deref(), Some("alice"));

    let code = |r: Result<tonic::Response<_>, tonic::Status>| r.map(|_| ()).unwrap_err();
    // Too short: the decoder's message, decoded on the service's node.
    let s = code(client.call(bincode_call("calc.Add", vec![4], &user)).await);
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(
        s.message().contains("malformed bincode for `calc.Add`"),
        "{s:?}"
    );
    // Bytes left over are refused too.
    let s = code(
        client
            .call(bincode_call("calc.Add", vec![4, 13, 0], &user))
            .await,
    );
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    let s = code(client.call(bincode_call("calc.Nope", vec![1], &user)).await);
    assert_eq!(s.code(), Code::NotFound, "{s:?}");
    c.stop().await;
}

#[derive(
    Debug,
    Clone,
    PartialEq,
    actix::Message,
    serde::Serialize,
    serde::Deserialize,
    msa_runtime::RemoteMessage,
)]
#[msa(name = "grpc.TestPlaced")]
#[rtype(result = "()")]
struct Placed {
    id: u64,
}

fn subscribe(topic: &str, token: Option<&str>) -> tonic::Request<SubscribeRequest> {
    let mut req = tonic::Request::new(SubscribeRequest {
        topic: topic.into(),
    });
    if let Some(t) = token {
        req.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_streams_a_topic_published_on_another_node_under_the_topic_rules() {
    let c = Cluster::start_with(
        GrpcConfig::default(),
        vec![PolicyRule {
            service: "@topics".into(),
            message: "orders.*".into(),
            roles: vec!["user".into()],
        }],
    )
    .await;
    let mut client = c.client().await;
    let user = token(&["user"]);
    let code = |r: Result<tonic::Response<tonic::Streaming<_>>, tonic::Status>| {
        r.map(|_| ()).unwrap_err().code()
    };
    assert_eq!(
        code(client.subscribe(subscribe("orders.events", None)).await),
        Code::Unauthenticated
    );
    assert_eq!(
        code(client.subscribe(subscribe("audit.log", Some(&user))).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(client.subscribe(subscribe("no spaces", Some(&user))).await),
        Code::InvalidArgument
    );

    let mut stream = client
        .subscribe(subscribe("orders.events", Some(&user)))
        .await
        .unwrap()
        .into_inner();
    // The subscription is on the gateway's node; the publisher is on the
    // other node, which learns of it with the gateway node's next table.
    let topic = c.svc.topic::<Placed>("orders.events");
    eventually(
        "the publisher's node sees the subscriber",
        Duration::from_secs(20),
        || {
            let seen = topic.remote_subscribers().iter().any(|n| n == "grpc-gw");
            async move { seen }
        },
    )
    .await;
    for id in 1..=3 {
        topic.publish(Placed { id });
    }
    for id in 1..=3u64 {
        let event = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("an event within 10 s")
            .expect("stream open")
            .expect("an event");
        assert_eq!(event.topic, "orders.events");
        assert_eq!(event.missed, 0);
        // The event's wire name (proto field 4), as SSE's `event:` line.
        assert_eq!(event.message, "grpc.TestPlaced");
        let body: serde_json::Value = serde_json::from_slice(&event.payload).unwrap();
        assert_eq!(body, serde_json::json!({ "id": id }));
    }
    // The client goes away: the gateway's node drops the subscription.
    drop(stream);
    drop(client);
    eventually("the subscription ends", Duration::from_secs(20), || {
        let gone = topic.remote_subscribers().is_empty();
        async move { gone }
    })
    .await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_services_are_not_found_when_the_policy_admits_them() {
    let c = Cluster::start(GrpcConfig::default()).await;
    let mut client = c.client().await;
    // Admitted by the policy, but no such message.
    let admitted = call("calc", "calc.Nope", "{}", Some(&token(&["user"])));
    let s = client.call(admitted).await.map(|_| ()).unwrap_err();
    assert_eq!(s.code(), Code::NotFound, "{s:?}");
    c.stop().await;

    // Auth off: the lookup alone decides.
    let node = Node::builder().arbiters(1).start().unwrap();
    let gateway = Gateway::start(
        node.clone(),
        GatewayConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            grpc: Some(GrpcConfig {
                bind: "127.0.0.1:0".parse().unwrap(),
                ..GrpcConfig::default()
            }),
            ..GatewayConfig::default()
        },
    )
    .unwrap();
    let addr = gateway.grpc_addr().unwrap();
    let mut client = GatewayClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let s = client
        .call(call("nosuch", "calc.Add", "{}", None))
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(s.code(), Code::NotFound, "{s:?}");
    assert!(s.message().contains("nosuch"), "{s:?}");
    gateway.stop().await;
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clients_deadline_travels_with_the_call() {
    let c = Cluster::start(GrpcConfig::default()).await;
    let mut client = c.client().await;
    let mut req = call(
        "calc",
        "calc.Sleep",
        r#"{"ms":10000}"#,
        Some(&token(&["user"])),
    );
    req.set_timeout(Duration::from_millis(400));
    let t0 = Instant::now();
    let s = client.call(req).await.map(|_| ()).unwrap_err();
    let took = t0.elapsed();
    assert_eq!(s.code(), Code::DeadlineExceeded, "{s:?}");
    // Ended by the client's 400 ms, not the node's default ask timeout.
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    // Within its deadline a call succeeds.
    let mut req = call(
        "calc",
        "calc.Sleep",
        r#"{"ms":10}"#,
        Some(&token(&["user"])),
    );
    req.set_timeout(Duration::from_secs(10));
    assert_eq!(client.call(req).await.unwrap().into_inner().payload, b"10");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_and_calls_over_the_limit_are_resource_exhausted() {
    let c = Cluster::start(GrpcConfig {
        max_message_bytes: 1024,
        max_concurrency: 1,
        ..GrpcConfig::default()
    })
    .await;
    let mut client = c.client().await;
    let user = token(&["user"]);
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(4096));
    let s = client
        .call(call("calc", "calc.Greet", &big, Some(&user)))
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
    // Under the limit it is served.
    let reply = client
        .call(call("calc", "calc.Greet", r#"{"name":"bob"}"#, Some(&user)))
        .await
        .unwrap();
    assert_eq!(reply.into_inner().payload, br#""hello bob""#);

    // One call in flight holds the only permit: the next is refused.
    let mut slow_client = client.clone();
    let slow_req = call("calc", "calc.Sleep", r#"{"ms":60000}"#, Some(&user));
    let slow = tokio::spawn(async move { slow_client.call(slow_req).await.map(|_| ()) });
    let sleeping = c.sleeping.clone();
    eventually(
        "the slow call is in its handler",
        Duration::from_secs(10),
        || {
            let n = sleeping.load(Ordering::SeqCst);
            async move { n == 1 }
        },
    )
    .await;
    let s = client
        .call(call("calc", "calc.Add", r#"{"a":1,"b":1}"#, Some(&user)))
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
    slow.abort();

    // Both refusals are counted.
    let metrics_url = format!("http://{}/metrics", c.gateway.local_addr());
    let admin = token(&["admin"]);
    let text = std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let mut r = awc::Client::new()
                .get(metrics_url)
                .insert_header(("authorization", format!("Bearer {admin}")))
                .send()
                .await
                .unwrap();
            String::from_utf8(r.body().await.unwrap().to_vec()).unwrap()
        })
    })
    .join()
    .unwrap();
    assert!(
        text.contains(r#"msa_gateway_refused_total{node="grpc-gw",reason="grpc_too_large"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"code="ResourceExhausted""#) && text.contains(r#"method="Call""#),
        "{text}"
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_serving_until_a_drain_and_reflection_lists_the_gateway() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let c = Cluster::start(GrpcConfig::default()).await;
    let channel = Channel::from_shared(c.channel_url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel.clone());
    for service in ["", "msa.v1.Gateway"] {
        let r = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status, ServingStatus::Serving as i32, "{service:?}");
    }

    let mut reflection = ServerReflectionClient::new(channel.clone());
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = reflection
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .unwrap()
        .into_inner();
    let answer = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("{answer:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in ["msa.v1.Gateway", "grpc.health.v1.Health"] {
        assert!(names.iter().any(|n| n == want), "{names:?}");
    }

    // A drain: health says NOT_SERVING and new calls are UNAVAILABLE.
    assert!(c.gateway.drain(Duration::from_secs(5)).await);
    let h = health.clone();
    eventually(
        "health reports NOT_SERVING",
        Duration::from_secs(10),
        || {
            let mut h = h.clone();
            async move {
                h.check(HealthCheckRequest {
                    service: "msa.v1.Gateway".into(),
                })
                .await
                .map(|r| r.into_inner().status == ServingStatus::NotServing as i32)
                .unwrap_or(false)
            }
        },
    )
    .await;
    let mut client = GatewayClient::new(channel);
    let s = client
        .call(call("calc", "calc.Add", "{}", Some(&token(&["user"]))))
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(s.code(), Code::Unavailable, "{s:?}");
    c.stop().await;
}
