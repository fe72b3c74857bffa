//! What a handler sees besides its message.

use std::sync::Arc;

use actix::{ActorContext, Context};

use super::actor::{InstanceShared, Service, ServiceActor};
use super::handle::ServiceRef;
use crate::metadata::{Identity, Metadata};
use crate::registry::InstanceId;

static EMPTY: std::sync::LazyLock<Metadata> = std::sync::LazyLock::new(Metadata::new);

/// The context of one handler call or lifecycle hook: the call's metadata,
/// the instance's identity, the node's services, and the actix context for
/// timers and actor futures.
pub struct ServiceContext<'a, S: Service> {
    ctx: &'a mut Context<ServiceActor<S>>,
    meta: Option<&'a Metadata>,
    shared: &'a Arc<InstanceShared>,
}

impl<S: Service> std::fmt::Debug for ServiceContext<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceContext")
            .field("instance", &self.shared.id)
            .field("meta", &self.meta)
            .finish()
    }
}

impl<'a, S: Service> ServiceContext<'a, S> {
    pub(crate) fn new(
        ctx: &'a mut Context<ServiceActor<S>>,
        meta: Option<&'a Metadata>,
        shared: &'a Arc<InstanceShared>,
    ) -> Self {
        Self { ctx, meta, shared }
    }

    /// The metadata of the call being handled (empty in lifecycle hooks).
    pub fn metadata(&self) -> &Metadata {
        self.meta.unwrap_or(&EMPTY)
    }

    /// The caller's identity, if the call carried one.
    pub fn identity(&self) -> Option<&Identity> {
        self.metadata().identity()
    }

    /// Metadata for a call made from this handler: the caller's identity
    /// (and token), trace and deadline ([`Metadata::propagate`]), and this
    /// service as the calling one, which access rules naming services
    /// check (a node believes it only from a node that hosts this service).
    ///
    /// ```ignore
    /// let reply = ctx.service("payments").ask(Charge { .. }).metadata(ctx.propagate());
    /// ```
    pub fn propagate(&self) -> Metadata {
        self.metadata()
            .propagate()
            .with_caller_service(self.shared.entry.name_arc().clone())
    }

    /// This instance's id.
    pub fn instance(&self) -> InstanceId {
        self.shared.id
    }

    /// This service's name.
    pub fn service_name(&self) -> &str {
        self.shared.entry.name()
    }

    /// A handle to another service on this node (or, later, the cluster).
    /// Pass [`Metadata::propagate`] to calls made from here to keep the
    /// caller's identity, trace and deadline.
    pub fn service(&self, name: &str) -> ServiceRef {
        ServiceRef::new(self.shared.node.clone(), name)
    }

    /// The node this instance runs on (for `ServiceContext::topic`, which
    /// lives in the topic module so that `service` does not import it).
    pub(crate) fn node_shared(&self) -> &Arc<super::NodeShared> {
        &self.shared.node
    }

    /// Stops this instance after the current message (a normal exit: a
    /// `transient` service is not restarted).
    pub fn stop(&mut self) {
        self.ctx.stop();
    }

    /// The underlying actix context, for `run_later`, `run_interval`,
    /// `spawn` and friends.
    pub fn actix(&mut self) -> &mut Context<ServiceActor<S>> {
        self.ctx
    }
}
