//! When an instance is listed in its registry slot: from the moment it
//! runs (its supervisor hears it is ready, after `started`) until it ends
//! (it leaves the slot itself, on its own thread, before its mailbox closes;
//! see `service/spec.rs`). So `Node::instances` and routing never offer an
//! instance that has not started or has already died.

use std::sync::Arc;

use super::super::child::{Child, Run};
use super::super::spec::ChildSpec;
use crate::lifecycle::ExitReason;
use crate::registry::RegistryEvent;
use crate::service::NodeShared;

/// The instance of `c` is up: it enters its slot, and watchers hear
/// `Added` (first start) or `Restarted`.
pub(super) fn list(node: &NodeShared, c: &Child) {
    let (Some(Run::Instance(l)), ChildSpec::Instance { blueprint, slot }) = (&c.run, &c.spec)
    else {
        return;
    };
    let entry = blueprint.entry();
    let id = l.instance.id;
    entry.set_slot(*slot, Some(Arc::clone(&l.instance)));
    node.registry.publish_with(|| {
        let service = entry.name().to_string();
        if id.incarnation == 0 {
            RegistryEvent::Added {
                service,
                instance: id,
            }
        } else {
            RegistryEvent::Restarted {
                service,
                instance: id,
            }
        }
    });
}

/// The instance of `c` ended (or is being killed): it leaves its slot if
/// it has not already, and, if it had been listed, watchers hear `Removed`.
pub(super) fn unlist(node: &NodeShared, c: &Child, reason: &ExitReason, listed: bool) {
    let (Some(Run::Instance(l)), ChildSpec::Instance { blueprint, slot }) = (&c.run, &c.spec)
    else {
        return;
    };
    let entry = blueprint.entry();
    entry.clear_slot_if(*slot, l.instance.id);
    if listed {
        node.registry.publish_with(|| RegistryEvent::Removed {
            service: entry.name().to_string(),
            instance: l.instance.id,
            reason: reason.to_string(),
            exit: reason.clone(),
        });
    }
}
