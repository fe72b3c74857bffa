//! What a peer may claim in a call's metadata: a node that sends frames by
//! hand (here a raw peer that hosts nothing) can name a calling service and
//! roles, and the serving node believes neither.

use super::*;
use crate::access::{Access, Rule};
use crate::remote::frame::WireMeta;

async fn guarded_node() -> (Node, String) {
    let node = Node::builder()
        .name("guarded")
        .arbiters(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .secret(SECRET)
        .start()
        .unwrap();
    node.spawn(
        ServiceSpec::new("doubler", || Doubler)
            .handles::<Double>()
            .access(Access::new().default_rule(Rule::roles(["admin"]).or_services(["orders"]))),
    )
    .await
    .unwrap();
    // `orders` runs here, not on the raw peer.
    node.spawn(ServiceSpec::new("orders", || Doubler).handles::<Double>())
        .await
        .unwrap();
    let addr = node.remote_addr().unwrap();
    (node, addr)
}

async fn ask_as(p: &mut RawPeer, id: u64, meta: WireMeta) -> Frame {
    p.send(Frame::Ask {
        id,
        route: Route::Once {
            service: "doubler".into(),
            message: Double::NAME.into(),
        },
        meta,
        payload: crate::codec::encode(&Double(2)).unwrap(),
    })
    .await;
    p.until(|f| matches!(f, Frame::Reply { .. } | Frame::Error { .. }).then_some(f))
        .await
}

fn refused(f: &Frame) -> bool {
    matches!(
        f,
        Frame::Error {
            error: WireError::PermissionDenied { .. },
            ..
        }
    )
}

#[tokio::test]
async fn a_peer_cannot_claim_roles_or_a_calling_service_it_does_not_host() {
    let (node, addr) = guarded_node().await;
    let mut p = RawPeer::connect(&addr).await;
    let claimed_service = WireMeta {
        service: Some("orders".into()),
        ..WireMeta::default()
    };
    let f = ask_as(&mut p, 1, claimed_service).await;
    assert!(refused(&f), "{f:?}");
    let claimed_admin = WireMeta {
        subject: Some("raw".into()),
        roles: vec!["admin".into()],
        token: Some("anything".into()),
        ..WireMeta::default()
    };
    let f = ask_as(&mut p, 2, claimed_admin).await;
    assert!(refused(&f), "{f:?}");
    let f = ask_as(&mut p, 3, WireMeta::default()).await;
    assert!(refused(&f), "{f:?}");
    // The connection lives on, and the refusals are counted.
    assert_eq!(node.stats("doubler").unwrap().denied, 3);
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}
