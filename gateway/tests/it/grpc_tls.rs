//! TLS at the gRPC ingress (`[grpc.tls]`, docs/grpc.md): tonic's client
//! trusting the test CA, a plaintext client refused, and client
//! certificates when `client_ca` is set. Certificates come from rcgen.

use std::time::Duration;

use msa_gateway::grpc::proto::gateway_client::GatewayClient;
use msa_gateway::grpc::proto::{CallRequest, Encoding};
use msa_gateway::{Gateway, GatewayConfig, GatewayHandle, GrpcConfig, TlsConfig};
use msa_runtime::Node;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::https::{dir, write, Ca};
use crate::support::{calc_spec_with, GRACE};

/// A node running `calc` and the gateway, gRPC over TLS with `ca`'s leaf,
/// requiring client certificates of `clients` if given.
async fn start(ca: &Ca, clients: Option<&Ca>) -> (Node, GatewayHandle) {
    let node = Node::builder().arbiters(1).start().unwrap();
    node.spawn(calc_spec_with(Default::default()))
        .await
        .unwrap();
    let d = dir();
    let (cert, key) = ca.leaf(true);
    let tls = TlsConfig {
        cert: write(&d, "grpc.crt", &cert),
        key: write(&d, "grpc.key", &key),
        client_ca: clients.map(|c| write(&d, "clients.crt", &c.pem())),
    };
    let config = GatewayConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        grpc: Some(GrpcConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            tls: Some(tls),
            ..GrpcConfig::default()
        }),
        ..GatewayConfig::default()
    };
    let gateway = Gateway::start(node.clone(), config).unwrap();
    (node, gateway)
}

fn add() -> CallRequest {
    CallRequest {
        service: "calc".into(),
        message: "calc.Add".into(),
        payload: br#"{"a":20,"b":22}"#.to_vec(),
        encoding: Encoding::Json as i32,
    }
}

/// Calls `calc.Add` over a channel to `url` with `tls` (if any): the
/// reply's payload, or the error's text (connecting or calling).
async fn call(url: String, tls: Option<ClientTlsConfig>) -> Result<Vec<u8>, String> {
    let attempt = async move {
        let mut endpoint = Channel::from_shared(url).map_err(|e| e.to_string())?;
        if let Some(tls) = tls {
            endpoint = endpoint.tls_config(tls).map_err(|e| e.to_string())?;
        }
        let channel = endpoint.connect().await.map_err(|e| format!("{e:?}"))?;
        GatewayClient::new(channel)
            .call(add())
            .await
            .map(|r| r.into_inner().payload)
            .map_err(|s| format!("{s:?}"))
    };
    tokio::time::timeout(Duration::from_secs(20), attempt)
        .await
        .unwrap_or_else(|_| Err("no answer within 20 s".into()))
}

fn trusting(ca: &Ca) -> ClientTlsConfig {
    ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca.pem()))
        .domain_name("localhost")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_over_tls_serves_a_client_that_trusts_the_ca_and_refuses_plaintext() {
    let ca = Ca::new("grpc-test-ca");
    let (node, gateway) = start(&ca, None).await;
    let addr = gateway.grpc_addr().unwrap();

    let reply = call(format!("https://{addr}"), Some(trusting(&ca))).await;
    assert_eq!(reply.as_deref(), Ok(&b"42"[..]));
    // h2c against the TLS listener: no answer.
    let plain = call(format!("http://{addr}"), None).await;
    assert!(plain.is_err(), "{plain:?}");
    // A client that trusts another CA refuses the server.
    let other = Ca::new("other-ca");
    let wrong = call(format!("https://{addr}"), Some(trusting(&other))).await;
    assert!(wrong.is_err(), "{wrong:?}");
    // The listener still serves after those failed handshakes.
    let again = call(format!("https://{addr}"), Some(trusting(&ca))).await;
    assert_eq!(again.as_deref(), Ok(&b"42"[..]));

    gateway.stop().await;
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_with_a_client_ca_requires_a_client_certificate_it_issued() {
    let ca = Ca::new("grpc-test-ca");
    let clients = Ca::new("grpc-clients-ca");
    let (node, gateway) = start(&ca, Some(&clients)).await;
    let url = format!("https://{}", gateway.grpc_addr().unwrap());

    let none = call(url.clone(), Some(trusting(&ca))).await;
    assert!(none.is_err(), "{none:?}");
    let (cert, key) = ca.leaf(false); // issued by the server's CA, not the clients'
    let stranger = call(
        url.clone(),
        Some(trusting(&ca).identity(Identity::from_pem(cert, key))),
    )
    .await;
    assert!(stranger.is_err(), "{stranger:?}");
    let (cert, key) = clients.leaf(false);
    let admitted = call(
        url,
        Some(trusting(&ca).identity(Identity::from_pem(cert, key))),
    )
    .await;
    assert_eq!(admitted.as_deref(), Ok(&b"42"[..]));

    gateway.stop().await;
    node.shutdown(GRACE).await.unwrap();
}
