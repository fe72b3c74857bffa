//! Supervision checked against OTP's `supervisor` semantics (issue 12):
//! each test pins one rule where msa used to differ.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use msa_runtime::prelude::*;
use msa_runtime::test_support::eventually;
use msa_runtime::{RegistryEvent, ServiceState, SpawnError};

fn one_arbiter(name: &str) -> Node {
    Node::builder().name(name).arbiters(1).start().unwrap()
}

#[tokio::test]
async fn a_zero_or_sub_millisecond_restart_period_is_refused_at_spawn() {
    let node = one_arbiter("period");
    for within in [Duration::ZERO, Duration::from_nanos(1)] {
        let err = node
            .spawn(full_spec("p", Counter::new).intensity(1, within))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, SpawnError::InvalidIntensity { owner, .. } if owner == "p"),
            "{err}"
        );
        let err = node
            .spawn_supervisor(
                SupervisorSpec::new("tree", Strategy::OneForOne)
                    .intensity(1, within)
                    .service(full_spec("q", Counter::new)),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, SpawnError::InvalidIntensity { owner, .. } if owner == "tree"),
            "{err}"
        );
        let err = node
            .spawn_supervisor(
                SupervisorSpec::new("outer", Strategy::OneForOne).supervisor(
                    SupervisorSpec::new("inner", Strategy::OneForAll)
                        .service(full_spec("r", Counter::new).intensity(3, within)),
                ),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, SpawnError::InvalidIntensity { owner, .. } if owner == "r"),
            "{err}"
        );
    }
    // Nothing was registered by the refused spawns: the names are free.
    node.spawn(full_spec("p", Counter::new)).await.unwrap();
    node.shutdown(GRACE).await.unwrap();
}
