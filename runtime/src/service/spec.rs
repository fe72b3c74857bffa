//! `ServiceSpec`: one registration of a service for every way in.

use std::any::TypeId;
use std::fmt;
use std::sync::Arc;

use actix::Message;

use super::actor::{Handler, InstanceShared, Service, ServiceActor};
use super::send::send_fns;
use super::serve::{serve_fns, ServeFns};
use super::NodeShared;
use crate::error::SpawnError;
use crate::lifecycle::{
    launch_with_end, Backoff, ExitNotice, ExitReason, Intensity, KillSwitch, OnExit, Placement,
    Restart, Shutdown, StartError, Strategy,
};
use crate::message::wire_codec::{keyed_wire_codec, wire_codec, WireCodec};
use crate::message::{KeyedMessage, RemoteMessage};
use crate::registry::{Instance, InstanceId, MessageType, ServiceEntry};

/// How a [`ServiceRef`](crate::ServiceRef) picks among a service's instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Routing {
    /// Round-robin over live instances (stateless services; the default).
    #[default]
    RoundRobin,
    /// Messages registered with [`ServiceSpec::handles_keyed`] go to the
    /// instance chosen by rendezvous hashing of their key, so the same key
    /// always reaches the same instance while it lives; other messages go
    /// round-robin.
    Keyed,
}

type Factory<S> = Arc<dyn Fn() -> Result<S, StartError> + Send + Sync>;

struct Route<S: Service> {
    ty: MessageType,
    _service: std::marker::PhantomData<fn() -> S>,
}

/// Describes a service: its name, how to make an instance, which messages it
/// handles, how many instances run, and how they are supervised.
///
/// # Examples
/// ```
/// use msa_runtime::{Handler, Reply, Restart, Service, ServiceContext, ServiceSpec};
///
/// #[derive(actix::Message)]
/// #[rtype(result = "String")]
/// struct Hello;
///
/// #[derive(Default)]
/// struct Greeter;
/// impl Service for Greeter {}
/// impl Handler<Hello> for Greeter {
///     fn handle(&mut self, _: Hello, _: &mut ServiceContext<'_, Self>) -> Reply<Self, String> {
///         Reply::ready("hello".into())
///     }
/// }
///
/// let spec = ServiceSpec::new("greeter", Greeter::default)
///     .handles_local::<Hello>()
///     .instances(4)
///     .restart(Restart::Permanent);
/// # let _ = spec;
/// ```
pub struct ServiceSpec<S: Service> {
    name: String,
    factory: Factory<S>,
    routes: Vec<Route<S>>,
    instances: usize,
    max_instances: usize,
    restart: Restart,
    shutdown: Shutdown,
    routing: Routing,
    prefer_local: bool,
    mailbox_capacity: usize,
    strategy: Strategy,
    intensity: Intensity,
    backoff: Option<Backoff>,
    access: crate::access::Access,
}

impl<S: Service> fmt::Debug for ServiceSpec<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceSpec")
            .field("name", &self.name)
            .field(
                "messages",
                &self
                    .routes
                    .iter()
                    .map(|r| r.ty.type_name)
                    .collect::<Vec<_>>(),
            )
            .field("instances", &self.instances)
            .field("restart", &self.restart)
            .field("routing", &self.routing)
            .finish()
    }
}

impl<S: Service> ServiceSpec<S> {
    /// Actix's default mailbox capacity; an `ask` waits for room beyond it.
    pub const DEFAULT_MAILBOX_CAPACITY: usize = 16;

    /// A service named `name` whose instances come from `factory`. Each
    /// (re)start calls the factory anew, on the thread the instance runs on.
    pub fn new<F>(name: impl Into<String>, factory: F) -> Self
    where
        F: Fn() -> S + Send + Sync + 'static,
    {
        Self::try_new(name, move || Ok(factory()))
    }

    /// A service whose instances come from a fallible `factory`: an
    /// `Err(StartError::Failed { .. })` fails the start as a panic in the
    /// factory would (a first start makes `spawn` return
    /// [`SpawnError::StartFailed`] at once; a failing restart counts against
    /// the restart intensity), and `Err(StartError::Ignore)` leaves the
    /// instance out, not restarted (OTP's `ignore`).
    ///
    /// # Examples
    /// ```
    /// # use msa_runtime::{Service, ServiceSpec, StartError};
    /// # struct Db; impl Service for Db {}
    /// fn connect() -> Result<Db, String> { Err("no database".into()) }
    /// let spec = ServiceSpec::try_new("db", || connect().map_err(StartError::failed));
    /// # let _ = spec;
    /// ```
    pub fn try_new<F>(name: impl Into<String>, factory: F) -> Self
    where
        F: Fn() -> Result<S, StartError> + Send + Sync + 'static,
    {
        Self {
            name: name.into(),
            factory: Arc::new(factory),
            routes: Vec::new(),
            instances: 1,
            max_instances: 0,
            restart: Restart::Permanent,
            shutdown: Shutdown::Infinity,
            routing: Routing::RoundRobin,
            prefer_local: false,
            mailbox_capacity: Self::DEFAULT_MAILBOX_CAPACITY,
            strategy: Strategy::OneForOne,
            intensity: Intensity::default(),
            backoff: None,
            access: crate::access::Access::new(),
        }
    }

    fn route<M>(mut self, wire: Option<(WireCodec, ServeFns)>) -> Self
    where
        S: Handler<M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        let type_id = TypeId::of::<M>();
        let ty = MessageType {
            type_id,
            type_name: std::any::type_name::<M>(),
            wire_name: wire.map(|(w, _)| w.wire_name),
            wire: wire.map(|(w, _)| w),
            key: wire.and_then(|(w, _)| w.key),
            serve: wire.map(|(_, s)| s.erased()),
            send: Some(Arc::new(send_fns::<S, M>())),
            access: None,
        };
        if let Some(r) = self.routes.iter_mut().find(|r| r.ty.type_id == type_id) {
            r.ty = ty;
        } else {
            self.routes.push(Route {
                ty,
                _service: std::marker::PhantomData,
            });
        }
        self
    }

    /// Registers a message that may cross nodes (it has a wire name).
    pub fn handles<M>(self) -> Self
    where
        S: Handler<M>,
        M: RemoteMessage,
    {
        self.route::<M>(Some((wire_codec::<M>(), serve_fns::<M>())))
    }

    /// Registers a message that routes by key on a [`Routing::Keyed`] service.
    pub fn handles_keyed<M>(self) -> Self
    where
        S: Handler<M>,
        M: RemoteMessage + KeyedMessage,
    {
        self.route::<M>(Some((keyed_wire_codec::<M>(), serve_fns::<M>())))
    }

    /// Registers a message that only local callers send (no wire name, no
    /// serialization bounds).
    pub fn handles_local<M>(self) -> Self
    where
        S: Handler<M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        self.route::<M>(None)
    }

    /// Who may send its messages: checked by the instance that serves
    /// each call, against the identity and calling service the call
    /// carries (docs/security.md, "Access rules at each service"). Added to
    /// rules set before (a later rule for the same message wins). A message
    /// without a rule, when there is no default rule, stays open.
    ///
    /// # Examples
    /// ```
    /// # use msa_runtime::{Handler, Reply, Service, ServiceContext, ServiceSpec};
    /// use msa_runtime::access::{Access, Rule};
    /// # #[derive(actix::Message)] #[rtype(result = "()")] struct Refund;
    /// # #[derive(Default)] struct Payments; impl Service for Payments {}
    /// # impl Handler<Refund> for Payments {
    /// #     fn handle(&mut self, _: Refund, _: &mut ServiceContext<'_, Self>) -> Reply<Self, ()> { Reply::ready(()) }
    /// # }
    /// let spec = ServiceSpec::new("payments", Payments::default)
    ///     .handles_local::<Refund>()
    ///     .access(Access::new().allow::<Refund>(Rule::roles(["admin"]).or_services(["orders"])));
    /// # let _ = spec;
    /// ```
    pub fn access(mut self, access: crate::access::Access) -> Self {
        self.access = std::mem::take(&mut self.access).merge(access);
        self
    }

    /// How many instances run (default 1).
    pub fn instances(mut self, n: usize) -> Self {
        self.instances = n;
        self
    }

    /// The most instances [`Node::scale`](crate::Node::scale) may run
    /// (default: [`instances`](Self::instances), so a service scales down
    /// and back up to its start count). Each possible instance costs a slot
    /// in the registry (about 50 bytes) from the start: routing reads the
    /// slots without a lock, so they are allocated once.
    ///
    /// # Examples
    /// ```
    /// # use msa_runtime::{Service, ServiceSpec};
    /// # #[derive(Default)] struct Worker; impl Service for Worker {}
    /// let spec = ServiceSpec::new("worker", Worker::default).instances(2).max_instances(8);
    /// # let _ = spec;
    /// ```
    pub fn max_instances(mut self, n: usize) -> Self {
        self.max_instances = n;
        self
    }

    /// How an instance is stopped (default [`Shutdown::Infinity`]: it
    /// handles what is queued, bounded only by the node's shutdown grace).
    ///
    /// # Examples
    /// ```
    /// # use msa_runtime::{Service, ServiceSpec, Shutdown};
    /// # #[derive(Default)] struct Cache; impl Service for Cache {}
    /// let spec = ServiceSpec::new("cache", Cache::default).shutdown(Shutdown::Brutal);
    /// # let _ = spec;
    /// ```
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// When an instance is restarted (default [`Restart::Permanent`]).
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// How callers pick an instance (default [`Routing::RoundRobin`]).
    pub fn routing(mut self, routing: Routing) -> Self {
        self.routing = routing;
        self
    }

    /// Callers that run on one of the node's arbiters (a task started with
    /// [`Node::spawn_task`](crate::Node::spawn_task) or
    /// [`Node::run`](crate::Node::run), or another service's handler) call
    /// the instances on their own arbiter, round-robin among them, and
    /// round-robin over all only when none runs there: an ask then never
    /// crosses threads (docs/runtime.md, "Same-thread asks"). Applies to
    /// round-robin calls on the local fast path (no keyed routing, no remote
    /// instance); callers on other threads are not affected. Off by
    /// default: it trades spreading the load for locality.
    pub fn prefer_local(mut self) -> Self {
        self.prefer_local = true;
        self
    }

    /// Mailbox capacity per instance; `ask` waits for room beyond it, `tell`
    /// does not (default 16, as actix).
    pub fn mailbox_capacity(mut self, n: usize) -> Self {
        self.mailbox_capacity = n.max(1);
        self
    }

    /// Strategy of the service's own supervisor over its instances
    /// (default [`Strategy::OneForOne`]).
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Restart intensity of the service's supervisor (default 3 in 5 s).
    /// A period under [`Intensity::MIN_PERIOD`](crate::Intensity::MIN_PERIOD)
    /// makes the spawn fail with `SpawnError::InvalidIntensity`.
    pub fn intensity(mut self, max_restarts: u32, within: std::time::Duration) -> Self {
        self.intensity = Intensity {
            max_restarts,
            within,
        };
        self
    }

    /// Backoff between restarts (default none).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// The service name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The wire functions of every remote message, by type.
    pub(crate) fn codecs(&self) -> Vec<(TypeId, WireCodec)> {
        self.routes
            .iter()
            .filter_map(|r| r.ty.wire.map(|w| (r.ty.type_id, w)))
            .collect()
    }

    /// Wire names registered, as `(wire name, Rust type name)`.
    pub fn wire_names(&self) -> Vec<(&'static str, &'static str)> {
        self.routes
            .iter()
            .filter_map(|r| r.ty.wire_name.map(|w| (w, r.ty.type_name)))
            .collect()
    }

    /// Checks the spec on its own (name, instances, keyed routes).
    pub(crate) fn validate(&self) -> Result<(), SpawnError> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 128
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !name_ok {
            return Err(SpawnError::InvalidName {
                service: self.name.clone(),
            });
        }
        self.intensity.validate(&self.name)?;
        if self.instances == 0 {
            return Err(SpawnError::ZeroInstances {
                service: self.name.clone(),
            });
        }
        if self.routing == Routing::Keyed && !self.routes.iter().any(|r| r.ty.key.is_some()) {
            return Err(SpawnError::NoKeyedMessage {
                service: self.name.clone(),
            });
        }
        for r in &self.routes {
            if let Some(w) = r.ty.wire {
                (w.wire_safe)().map_err(|reason| SpawnError::NotWireSafe {
                    message: w.wire_name,
                    type_name: w.type_name,
                    reason,
                })?;
            }
        }
        let mut seen = std::collections::HashMap::new();
        for (wire, ty) in self.wire_names() {
            if let Some(first) = seen.insert(wire, ty) {
                if first != ty {
                    return Err(SpawnError::DuplicateWireName {
                        name: wire,
                        first,
                        second: ty,
                    });
                }
            }
        }
        Ok(())
    }

    /// Turns the spec into a blueprint bound to its registry entry.
    pub(crate) fn into_blueprint(
        self,
        node: &str,
    ) -> (Arc<ServiceEntry>, Arc<dyn ErasedBlueprint>) {
        let types: Box<[MessageType]> = self
            .routes
            .iter()
            .map(|r| {
                let mut ty = r.ty.clone();
                ty.access = self.access.rule_for(ty.type_id, ty.wire_name);
                ty
            })
            .collect();
        let known: Vec<&str> = types.iter().filter_map(|t| t.wire_name).collect();
        for name in self.access.unknown_names(&known) {
            tracing::warn!(service = %self.name, message = name, "an access rule names a message the service does not handle: it guards nothing");
        }
        let entry = Arc::new(ServiceEntry::new(
            Arc::from(self.name.as_str()),
            types,
            self.routing == Routing::Keyed,
            self.instances.max(self.max_instances),
            node,
        ));
        entry.set_active(self.instances);
        entry.set_prefer_local(self.prefer_local);
        let bp = Blueprint {
            entry: entry.clone(),
            spec: self,
        };
        (entry, Arc::new(bp))
    }
}

/// A spec bound to its registry entry.
pub(crate) struct Blueprint<S: Service> {
    spec: ServiceSpec<S>,
    entry: Arc<ServiceEntry>,
}

/// What a supervisor needs to start one instance.
#[derive(Debug)]
pub(crate) struct InstanceLaunch {
    pub(crate) slot: usize,
    pub(crate) node: Arc<NodeShared>,
    pub(crate) placement: Placement,
    /// How the instance tells its supervisor that it is up, and that it
    /// exited.
    pub(crate) notice: ExitNotice,
}

/// A started instance as its supervisor holds it: two words (its stop
/// function is its blueprint's, [`ErasedBlueprint::stop`]).
pub(crate) struct LaunchedInstance {
    pub(crate) instance: Arc<Instance>,
    /// What the instance shares with msa; holds its kill switch.
    shared: Arc<InstanceShared>,
}

impl LaunchedInstance {
    /// Ends the instance at its next poll, whatever it is doing.
    pub(crate) fn kill(&self) {
        self.shared.kill.kill();
    }

    /// What the instance shares with msa (its kill switch among it).
    pub(crate) fn shared(&self) -> Arc<InstanceShared> {
        self.shared.clone()
    }
}

impl fmt::Debug for LaunchedInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaunchedInstance")
            .field("id", &self.instance.id)
            .finish()
    }
}

/// A type-erased [`Blueprint`].
pub(crate) trait ErasedBlueprint: Send + Sync {
    fn entry(&self) -> &Arc<ServiceEntry>;
    fn instances(&self) -> usize;
    fn restart(&self) -> Restart;
    fn strategy(&self) -> Strategy;
    fn intensity(&self) -> Intensity;
    fn backoff(&self) -> Option<Backoff>;
    fn shutdown(&self) -> Shutdown;
    /// Starts one instance; its incarnation comes from the entry.
    fn launch(&self, l: InstanceLaunch) -> LaunchedInstance;
    /// Asks an instance of this service to stop once it has handled what
    /// is queued.
    fn stop(&self, instance: &Instance);
}

impl fmt::Debug for dyn ErasedBlueprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Blueprint")
            .field("service", &self.entry().name())
            .finish()
    }
}

impl<S: Service> ErasedBlueprint for Blueprint<S> {
    fn entry(&self) -> &Arc<ServiceEntry> {
        &self.entry
    }
    fn instances(&self) -> usize {
        self.spec.instances
    }
    fn restart(&self) -> Restart {
        self.spec.restart
    }
    fn strategy(&self) -> Strategy {
        self.spec.strategy
    }
    fn intensity(&self) -> Intensity {
        self.spec.intensity
    }
    fn backoff(&self) -> Option<Backoff> {
        self.spec.backoff
    }
    fn shutdown(&self) -> Shutdown {
        self.spec.shutdown
    }

    fn launch(&self, l: InstanceLaunch) -> LaunchedInstance {
        let (tx, rx) = actix::dev::channel::channel::<ServiceActor<S>>(self.spec.mailbox_capacity);
        let id = InstanceId {
            slot: l.slot,
            incarnation: self.entry.next_incarnation(l.slot),
        };
        let instance = Arc::new(
            Instance::new(
                id,
                Box::new(tx),
                self.entry.handled(l.slot),
                l.node.track_mailbox_depth,
            )
            .on_arbiter(l.placement.arbiter_id())
            .with_capacity(self.spec.mailbox_capacity),
        );
        let shared = Arc::new(InstanceShared {
            id,
            entry: self.entry.clone(),
            node: l.node,
            notice: l.notice,
            kill: KillSwitch::default(),
        });
        let factory = self.spec.factory.clone();
        let kept = shared.clone();
        // The instance leaves its slot on its own thread the moment it
        // ends, before its mailbox closes (`InstanceShared::ended`): a call
        // never finds a dead instance listed while its supervisor has not
        // handled the exit.
        let on_exit: Arc<dyn OnExit> = shared.clone();
        let placed = launch_with_end(
            &l.placement,
            move || {
                factory()
                    .map(|s| ServiceActor::new(s, shared))
                    .map_err(ExitReason::from)
            },
            rx,
            Some(on_exit.clone()),
        );
        if !placed {
            on_exit.exited(crate::lifecycle::ExitReason::StartFailed(
                "the arbiter is gone".into(),
            ));
        }
        LaunchedInstance {
            instance,
            shared: kept,
        }
    }

    fn stop(&self, instance: &Instance) {
        super::send::stop::<S>(&*instance.sender);
    }
}

#[cfg(test)]
mod tests {
    use std::mem::size_of;

    /// A supervisor keeps one `LaunchedInstance` per running instance: the
    /// instance's record and what it shares with msa, nothing more (issue
    /// 12). Three words while it held the kill switch's own `Arc` and the
    /// stop function.
    #[test]
    fn a_launched_instance_is_two_pointers() {
        assert_eq!(size_of::<super::LaunchedInstance>(), 2 * size_of::<usize>());
    }

    /// `InstanceShared` holds the kill switch that was an allocation of its
    /// own (a 64-byte chunk): with its `Arc` counts it must stay a request
    /// of at most 104 bytes (glibc's 112-byte chunk) for that to save bytes.
    #[test]
    fn the_shared_state_holds_the_kill_switch_in_one_chunk() {
        let shared = size_of::<super::InstanceShared>();
        assert!(
            shared + 2 * size_of::<usize>() <= 104,
            "InstanceShared grew to {shared} bytes"
        );
    }
}
