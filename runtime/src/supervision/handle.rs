//! `SupervisorHandle`: a running tree, as OTP's `supervisor` module reaches
//! one: list and count its children, terminate, restart, delete and start
//! one at run time.

use std::sync::Arc;

use actix::Addr;
use tokio::sync::oneshot;

use super::live::{ChildCount, ChildInfo, ChildKind, ChildState, SupervisorError};
use super::messages::{AddChild, ChildOp, Op, Target, WhichChildren};
use super::spec::ChildSpec;
use super::supervisor::Supervisor;
use crate::error::SpawnError;
use crate::registry::ServiceEntry;
use crate::service::{ErasedBlueprint, NodeShared, Service, ServiceRef, ServiceSpec};

/// A handle to a running supervision tree, from
/// [`Node::start_supervisor`](crate::Node::start_supervisor). Cheap to
/// clone; every clone reaches the same tree. Each call is one message to
/// the tree's supervisor actor and its reply.
///
/// | OTP `supervisor` | here |
/// |---|---|
/// | `which_children/1` | [`which_children`](Self::which_children) |
/// | `count_children/1` | [`count_children`](Self::count_children) |
/// | `terminate_child/2` | [`terminate_child`](Self::terminate_child) |
/// | `restart_child/2` | [`restart_child`](Self::restart_child) |
/// | `delete_child/2` | [`delete_child`](Self::delete_child) |
/// | `start_child/2` | [`start_child`](Self::start_child) |
///
/// # Examples
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use msa_runtime::supervision::ChildState;
/// use msa_runtime::{Node, Service, ServiceSpec, Strategy, SupervisorSpec};
/// # #[derive(Default)] struct Orders; impl Service for Orders {}
/// let node = Node::builder().arbiters(1).start()?;
/// let shop = node
///     .start_supervisor(
///         SupervisorSpec::new("shop", Strategy::OneForOne)
///             .service(ServiceSpec::new("orders", Orders::default)),
///     )
///     .await?;
/// shop.terminate_child("orders").await?;
/// assert_eq!(shop.which_children().await?[0].state, ChildState::Terminated);
/// shop.restart_child("orders").await?;
/// assert_eq!(shop.count_children().await?.active, 1);
/// # node.shutdown(std::time::Duration::from_secs(5)).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SupervisorHandle {
    name: Arc<str>,
    addr: Addr<Supervisor>,
    node: Arc<NodeShared>,
}

impl SupervisorHandle {
    pub(crate) fn new(name: &str, addr: Addr<Supervisor>, node: Arc<NodeShared>) -> Self {
        Self {
            name: Arc::from(name),
            addr,
            node,
        }
    }

    /// The tree's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn gone(&self) -> SupervisorError {
        SupervisorError::NotRunning {
            tree: self.name.to_string(),
        }
    }

    /// The tree's children in start order, with their state (deleted
    /// children left out).
    ///
    /// # Errors
    /// [`SupervisorError::NotRunning`] once the tree has stopped.
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, SupervisorError> {
        let (reply, rx) = oneshot::channel();
        self.addr
            .try_send(WhichChildren { reply })
            .map_err(|_| self.gone())?;
        rx.await.map_err(|_| self.gone())
    }

    /// How many children the tree has, running, and of each kind.
    ///
    /// # Errors
    /// As [`which_children`](Self::which_children).
    pub async fn count_children(&self) -> Result<ChildCount, SupervisorError> {
        let list = self.which_children().await?;
        let mut n = ChildCount {
            specs: list.len(),
            ..ChildCount::default()
        };
        for c in &list {
            if matches!(c.state, ChildState::Running | ChildState::Starting) {
                n.active += 1;
            }
            match c.kind {
                ChildKind::Service => n.workers += 1,
                ChildKind::Supervisor => n.supervisors += 1,
            }
        }
        Ok(n)
    }

    async fn op(&self, child: &str, op: Op) -> Result<(), SupervisorError> {
        let (reply, rx) = oneshot::channel();
        self.addr
            .try_send(ChildOp {
                target: Target::Name(child.to_string()),
                op,
                reply,
            })
            .map_err(|_| self.gone())?;
        rx.await.map_err(|_| self.gone())?
    }

    /// Stops the child `name` gracefully (its instances handle what is
    /// queued, a nested tree stops in reverse order) and keeps it down: the
    /// tree does not restart it, also not in a group restart. Returns once
    /// it has exited; a child already down is left so.
    ///
    /// # Errors
    /// [`SupervisorError::NoChild`], [`SupervisorError::NotRunning`].
    pub async fn terminate_child(&self, name: &str) -> Result<(), SupervisorError> {
        self.op(name, Op::Terminate { delete: false }).await
    }

    /// Starts the terminated child `name` again and returns once it is up.
    ///
    /// # Errors
    /// [`SupervisorError::Running`] if it is not terminated,
    /// [`SupervisorError::Spawn`] if its start fails (it stays terminated),
    /// [`SupervisorError::NoChild`], [`SupervisorError::NotRunning`].
    pub async fn restart_child(&self, name: &str) -> Result<(), SupervisorError> {
        self.op(name, Op::Restart).await
    }

    /// Removes the terminated child `name` from the tree; the names of its
    /// services are free for a new spawn.
    ///
    /// # Errors
    /// [`SupervisorError::Running`] if it is not terminated (OTP deletes
    /// only a terminated child), [`SupervisorError::NoChild`],
    /// [`SupervisorError::NotRunning`].
    pub async fn delete_child(&self, name: &str) -> Result<(), SupervisorError> {
        self.op(name, Op::Delete).await
    }

    /// Adds the service as the tree's last child, starts it, and returns
    /// once every instance runs. A service whose first start fails is not
    /// kept (OTP's `start_child`): its name is free again.
    ///
    /// # Errors
    /// [`SupervisorError::Spawn`] with the [`SpawnError`] a
    /// [`Node::spawn`](crate::Node::spawn) would return,
    /// [`SupervisorError::NotRunning`].
    pub async fn start_child<S: Service>(
        &self,
        spec: ServiceSpec<S>,
    ) -> Result<ServiceRef, SupervisorError> {
        let (entry, bp) = prepare_service(&self.node, spec, Some(&self.name))?;
        let (reply, rx) = oneshot::channel();
        let sent = self.addr.try_send(AddChild {
            spec: ChildSpec::Service(bp),
            reply,
            tree: None,
        });
        let started = match sent {
            Ok(()) => rx.await.unwrap_or(Err(SpawnError::ShuttingDown)),
            Err(_) => Err(SpawnError::ShuttingDown),
        };
        if let Err(e) = started {
            entry.vacate();
            return Err(match e {
                SpawnError::ShuttingDown => self.gone(),
                e => e.into(),
            });
        }
        Ok(ServiceRef::with_entry(self.node.clone(), entry))
    }
}

/// What every spawn of one service does before its supervisor starts it:
/// checks the spec, claims its name and wire names, binds it to its
/// registry entry (recording `owner`, its tree, for duplicate errors).
pub(crate) fn prepare_service<S: Service>(
    shared: &Arc<NodeShared>,
    spec: ServiceSpec<S>,
    owner: Option<&str>,
) -> Result<(Arc<ServiceEntry>, Arc<dyn ErasedBlueprint>), SpawnError> {
    if shared.closing.load(std::sync::atomic::Ordering::Acquire) {
        return Err(SpawnError::ShuttingDown);
    }
    spec.validate()?;
    if let Some(e) = shared
        .registry
        .get(spec.name())
        .filter(|e| !e.is_replaceable())
    {
        return Err(SpawnError::DuplicateService {
            service: spec.name().to_string(),
            owner: e.owner().to_string(),
        });
    }
    shared.registry.claim_wire_names(&spec.wire_names())?;
    shared.registry.register_codecs(spec.codecs());
    let (entry, bp) = spec.into_blueprint(&shared.name);
    if let Some(tree) = owner {
        entry.set_owner(tree);
    }
    shared.registry.insert(entry.clone())?;
    Ok((entry, bp))
}
