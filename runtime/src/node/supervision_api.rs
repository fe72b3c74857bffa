//! The node's part of the live supervision API: start a tree and get a
//! handle to it; scale, stop and kill a service's instances by name.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};

use actix::{Addr, WeakAddr};
use tokio::sync::oneshot;

use super::Node;
use crate::error::SpawnError;
use crate::registry::{InstanceId, ServiceState};
use crate::remote::{ServiceOperator, ServiceReport, ServiceRequest, ServiceRow};
use crate::supervision::{
    KillInstance, RestartService, Scale, StopService, Supervisor, SupervisorError,
    SupervisorHandle, SupervisorSpec,
};

impl Node {
    /// Spawns a supervision subtree under the root, waits until all its
    /// children are up (in order), and returns a handle to the running
    /// tree: list, count, terminate, restart, delete and start its children
    /// (OTP's `supervisor` functions; see [`SupervisorHandle`]).
    ///
    /// # Errors
    /// As [`spawn`](Self::spawn), for any service in the tree.
    pub async fn start_supervisor(
        &self,
        spec: SupervisorSpec,
    ) -> Result<SupervisorHandle, SpawnError> {
        let name = spec.name.clone();
        let (tx, rx) = oneshot::channel();
        self.start_tree(spec, Some(tx)).await?;
        let addr = rx.await.map_err(|_| SpawnError::ShuttingDown)?;
        Ok(SupervisorHandle::new(&name, addr, self.shared().clone()))
    }

    /// The supervisor of the service `name`'s instances.
    fn service_supervisor(&self, name: &str) -> Result<Addr<Supervisor>, SupervisorError> {
        let unknown = || SupervisorError::UnknownService {
            service: name.to_string(),
        };
        let entry = self
            .shared()
            .registry
            .get(name)
            .filter(|e| !e.is_remote_only() && !e.is_replaceable())
            .ok_or_else(unknown)?;
        let control = entry.control().ok_or_else(unknown)?;
        control
            .downcast_ref::<WeakAddr<Supervisor>>()
            .and_then(WeakAddr::upgrade)
            .ok_or_else(|| SupervisorError::NotRunning {
                tree: name.to_string(),
            })
    }

    /// Runs `n` instances of the service `name` from now on, and returns
    /// once the new instances run (scaling up) or the retired ones have
    /// exited (scaling down: the instances of the highest slots stop
    /// gracefully, after handling what they had queued; routing stops
    /// choosing them at once). `n` goes from 1 to the service's
    /// [`max_instances`](crate::ServiceSpec::max_instances).
    ///
    /// # Errors
    /// [`SupervisorError::InvalidScale`], [`SupervisorError::UnknownService`],
    /// [`SupervisorError::NotRunning`] (its supervisor gave up or the node
    /// is shutting down), [`SupervisorError::Spawn`] if a new instance fails
    /// to start.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use msa_runtime::{Node, Service, ServiceSpec};
    /// # #[derive(Default)] struct Worker; impl Service for Worker {}
    /// let node = Node::builder().arbiters(1).start()?;
    /// node.spawn(ServiceSpec::new("worker", Worker::default).max_instances(4)).await?;
    /// node.scale("worker", 3).await?;
    /// assert_eq!(node.instances("worker").len(), 3);
    /// node.scale("worker", 1).await?;
    /// assert_eq!(node.instances("worker").len(), 1);
    /// # node.shutdown(std::time::Duration::from_secs(5)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn scale(&self, name: &str, n: usize) -> Result<(), SupervisorError> {
        let sup = self.service_supervisor(name)?;
        let gone = || SupervisorError::NotRunning {
            tree: name.to_string(),
        };
        let (reply, rx) = oneshot::channel();
        sup.try_send(Scale { n, reply }).map_err(|_| gone())?;
        let waits = rx.await.map_err(|_| gone())??;
        for w in waits {
            w.await.map_err(|_| gone())??;
        }
        Ok(())
    }

    /// Stops the service `name` for good and removes it: its instances stop
    /// gracefully (after handling what they had queued), its supervisor is
    /// deleted from its tree, and the name is free for a new
    /// [`spawn`](Self::spawn). Returns once every instance has exited.
    ///
    /// # Errors
    /// [`SupervisorError::UnknownService`], [`SupervisorError::NotRunning`].
    pub async fn stop_service(&self, name: &str) -> Result<(), SupervisorError> {
        let sup = self.service_supervisor(name)?;
        let gone = || SupervisorError::NotRunning {
            tree: name.to_string(),
        };
        let (reply, rx) = oneshot::channel();
        sup.try_send(StopService { reply }).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    /// Kills the instance `id` of the service `name` now (for tests and
    /// operators): it ends at its next await, and its supervisor treats the
    /// exit as a failure (a permanent or transient instance is restarted,
    /// within the restart intensity). Returns once the kill is issued; watch
    /// the registry for the instance's `Removed`.
    ///
    /// # Errors
    /// [`SupervisorError::NoInstance`] if no running instance has that id,
    /// [`SupervisorError::UnknownService`], [`SupervisorError::NotRunning`].
    pub async fn kill_instance(&self, name: &str, id: InstanceId) -> Result<(), SupervisorError> {
        let sup = self.service_supervisor(name)?;
        let gone = || SupervisorError::NotRunning {
            tree: name.to_string(),
        };
        let (reply, rx) = oneshot::channel();
        sup.try_send(KillInstance { id, reply })
            .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

impl Node {
    /// Stops the service `name` gracefully (as its
    /// [`Shutdown`](crate::Shutdown) says) and starts it again, fresh, in
    /// its place in its tree; returns once it runs again (OTP's
    /// `terminate_child` then `restart_child`).
    ///
    /// # Errors
    /// [`SupervisorError::UnknownService`], [`SupervisorError::NotRunning`],
    /// [`SupervisorError::Spawn`] if it fails to start again (it stays
    /// stopped).
    pub async fn restart_service(&self, name: &str) -> Result<(), SupervisorError> {
        let sup = self.service_supervisor(name)?;
        let gone = || SupervisorError::NotRunning {
            tree: name.to_string(),
        };
        let (reply, rx) = oneshot::channel();
        sup.try_send(RestartService { reply }).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    /// Lets operators reach this node's services over its remoting layer
    /// (`msa service list|scale|restart`).
    pub(super) fn install_service_operator(&self) {
        if let Some(r) = &self.shared().remote {
            let op = NodeOperator {
                node: Arc::downgrade(&self.inner),
            };
            let _ = r.service_operator.set(Arc::new(op));
        }
    }

    /// The services spawned on this node, for operators.
    fn service_rows(&self) -> Vec<ServiceRow> {
        let registry = &self.shared().registry;
        self.local_services()
            .into_iter()
            .filter_map(|name| {
                let e = registry.get(&name)?;
                let state = match e.state() {
                    ServiceState::Starting => "starting",
                    ServiceState::Running => "running",
                    ServiceState::Failed => "failed",
                    _ => "stopped",
                };
                Some(ServiceRow {
                    state: state.to_string(),
                    instances: u32::try_from(e.live_instances().len()).unwrap_or(u32::MAX),
                    max_instances: u32::try_from(e.capacity()).unwrap_or(u32::MAX),
                    name,
                })
            })
            .collect()
    }
}

/// The node's side of operators' service requests; weak, so that the
/// remoting layer holding it does not keep the node alive.
#[derive(Debug)]
struct NodeOperator {
    node: Weak<super::NodeInner>,
}

impl ServiceOperator for NodeOperator {
    fn operate(
        &self,
        request: ServiceRequest,
    ) -> Pin<Box<dyn Future<Output = Result<ServiceReport, String>> + Send>> {
        let node = self.node.upgrade().map(|inner| Node { inner });
        Box::pin(async move {
            let node = node.ok_or_else(|| "the node is stopping".to_string())?;
            let done = match &request {
                ServiceRequest::List => Ok(()),
                ServiceRequest::Scale { service, instances } => {
                    node.scale(service, *instances as usize).await
                }
                ServiceRequest::Restart { service } => node.restart_service(service).await,
            };
            done.map_err(|e| e.to_string())?;
            Ok(ServiceReport {
                node: node.name().to_string(),
                services: node.service_rows(),
            })
        })
    }
}
