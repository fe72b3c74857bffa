//! A node downed by its split-brain resolver refuses calls from other nodes
//! at once with `Downed` (asks and forwarded JSON asks), gives its own
//! callers of remote services the same error, and says so in its status.

use super::*;
use crate::remote::split_brain::SplitBrainConfig;

#[tokio::test]
async fn a_downed_node_refuses_inbound_calls_at_once_with_downed() {
    let (node, addr) = node().await;
    let mut p = RawPeer::connect(&addr).await;
    let ok = crate::codec::encode(&Double(21)).unwrap();
    assert!(matches!(
        p.ask(1, "doubler", "wire-test.Double", ok.clone()).await,
        Frame::Reply { id: 1, .. }
    ));
    let remoting = node.remoting().unwrap().clone();
    remoting.down_self(&SplitBrainConfig::default());
    assert!(node.is_self_downed());
    let downed = WireError::Downed {
        node: "wire".into(),
    };
    let t = std::time::Instant::now();
    assert_eq!(
        p.ask(2, "doubler", "wire-test.Double", ok).await,
        Frame::Error {
            id: 2,
            error: downed.clone()
        }
    );
    // A forwarded JSON ask too.
    let json = Frame::AskJson {
        id: 3,
        service: "doubler".into(),
        message: "wire-test.Double".into(),
        meta: super::super::super::frame::WireMeta::default(),
        body: b"21".to_vec(),
    };
    write_raw(&mut p.wr, &json, MAX).await.unwrap();
    loop {
        match p.next().await.unwrap() {
            Frame::Error { id: 3, error } => {
                assert_eq!(error, downed);
                break;
            }
            Frame::Reply { id: 3, .. } => panic!("a downed node served a JSON ask"),
            _ => continue,
        }
    }
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    // Its own callers of services it does not run get it too.
    assert_eq!(
        node.service("elsewhere").ask(Double(1)).await,
        Err(CallError::Downed {
            node: "wire".into()
        })
    );
    assert!(node.remote_stats().downed_calls >= 3);
    assert_eq!(node.remote_stats().self_downs, 1);
    let me = node
        .cluster_status()
        .members
        .into_iter()
        .find(|m| m.name == "wire")
        .unwrap();
    assert_eq!((me.status.as_str(), me.state.as_str()), ("down", "down"));
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}
