//! `Node`: the runtime in one process: an arbiter pool (or the caller's
//! `LocalSet`), a registry, a supervision tree, and a deadline sweeper.

mod bincode_api;
mod builder;
mod by_name;
mod live_api;
mod supervision_api;
mod tasks_api;
mod threads;
mod topics_api;

pub use builder::NodeBuilder;
pub use tasks_api::TaskHandle;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use tokio::sync::oneshot;

use crate::error::{NodeError, SpawnError};
use crate::registry::{InstanceId, MonitorReason, RegistryEvent, RegistryWatch, ServiceState};
pub(crate) use crate::service::{Exec, NodeShared};
use crate::service::{Service, ServiceRef, ServiceSpec};
use crate::stats::StatsSnapshot;
use crate::supervision::{AddChild, ChildSpec, KillTree, StopTree, Supervisor, SupervisorSpec};
use threads::Threads;

/// A running node. Cheap to clone, `Send + Sync`; every clone is a handle to
/// the same node. Dropping the last handle without [`shutdown`](Node::shutdown)
/// stops the node without waiting.
///
/// # Examples
/// ```
/// use msa_runtime::Node;
/// let node = Node::builder().name("doc").arbiters(2).start().unwrap();
/// assert_eq!(node.arbiters(), 2);
/// node.shutdown_blocking(std::time::Duration::from_secs(1)).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct Node {
    inner: Arc<NodeInner>,
}

#[derive(Debug)]
struct NodeInner {
    shared: Arc<NodeShared>,
    root: Addr<Supervisor>,
    threads: parking_lot::Mutex<Option<Threads>>,
    shut: AtomicBool,
    /// The arbiter the next `spawn_task` goes to (round-robin).
    task_next: std::sync::atomic::AtomicUsize,
}

impl Drop for NodeInner {
    fn drop(&mut self) {
        if !self.shut.swap(true, Ordering::AcqRel) {
            self.shared.closing.store(true, Ordering::Release);
            self.shared.registry.close();
            if let Some(r) = &self.shared.remote {
                r.close();
            }
            self.root.do_send(KillTree { fail: false });
            if let Some(t) = self.threads.lock().take() {
                t.stop_detached();
            }
        }
    }
}

impl Node {
    /// A builder with defaults: one arbiter per core, 5 s default ask timeout.
    pub fn builder() -> NodeBuilder {
        NodeBuilder::default()
    }

    pub(crate) fn from_parts(
        shared: Arc<NodeShared>,
        root: Addr<Supervisor>,
        threads: Option<Threads>,
    ) -> Self {
        let node = Self {
            inner: Arc::new(NodeInner {
                shared,
                root,
                threads: parking_lot::Mutex::new(threads),
                shut: AtomicBool::new(false),
                task_next: std::sync::atomic::AtomicUsize::new(0),
            }),
        };
        node.install_service_operator();
        node.install_live_source();
        node
    }

    /// The node's remoting layer, for tests that look inside a connection.
    #[cfg(test)]
    pub(crate) fn remoting(&self) -> Option<&Arc<crate::remote::remoting::Remoting>> {
        self.shared().remote.as_ref()
    }

    fn shared(&self) -> &Arc<NodeShared> {
        &self.inner.shared
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.shared().name
    }

    /// Number of arbiters (0 in `LocalSet` mode).
    pub fn arbiters(&self) -> usize {
        match &self.shared().exec {
            Exec::Arbiters { handles, .. } => handles.len(),
            Exec::Local => 0,
        }
    }

    /// Spawns a service under the node's root supervisor and waits until
    /// every instance has run `started`.
    ///
    /// # Errors
    /// [`SpawnError`]: invalid name, zero instances, a duplicate service name
    /// or wire name, a service that fails to start (its supervisor gave up),
    /// or a node that is shutting down.
    pub async fn spawn<S: Service>(&self, spec: ServiceSpec<S>) -> Result<ServiceRef, SpawnError> {
        let shared = self.shared();
        let (entry, bp) = crate::supervision::prepare_service(shared, spec, None)?;
        if let Err(e) = self.add_child(ChildSpec::Service(bp), None).await {
            // Its supervisor gave up and is gone: the name is free again
            // (OTP: a child whose start fails is not kept).
            entry.vacate();
            return Err(e);
        }
        Ok(ServiceRef::with_entry(shared.clone(), entry))
    }

    /// Spawns a supervision subtree under the root and waits until all its
    /// children are up (in order). [`start_supervisor`](Self::start_supervisor)
    /// does the same and returns a handle to the running tree.
    ///
    /// # Errors
    /// As [`spawn`](Self::spawn), for any service in the tree.
    pub async fn spawn_supervisor(&self, spec: SupervisorSpec) -> Result<(), SpawnError> {
        self.start_tree(spec, None).await
    }

    /// Spawns the tree, sending its supervisor's address to `tree` as soon
    /// as it is launched.
    pub(crate) async fn start_tree(
        &self,
        spec: SupervisorSpec,
        tree: Option<oneshot::Sender<Addr<Supervisor>>>,
    ) -> Result<(), SpawnError> {
        let shared = self.shared();
        if shared.closing.load(Ordering::Acquire) {
            return Err(SpawnError::ShuttingDown);
        }
        let mut names = Vec::new();
        spec.validate(&mut names)?;
        for n in &names {
            if let Some(e) = shared.registry.get(n).filter(|e| !e.is_replaceable()) {
                return Err(SpawnError::DuplicateService {
                    service: n.clone(),
                    owner: e.owner().to_string(),
                });
            }
        }
        let mut wires = Vec::new();
        spec.wire_names(&mut wires);
        shared.registry.claim_wire_names(&wires)?;
        let mut codecs = Vec::new();
        spec.codecs(&mut codecs);
        shared.registry.register_codecs(codecs);
        let mut entries = Vec::new();
        let resolved = spec.bind(&shared.name, &mut entries);
        for (i, e) in entries.iter().enumerate() {
            if let Err(err) = shared.registry.insert(e.clone()) {
                // Free the names this tree took before the clash.
                entries[..i].iter().for_each(|e| e.vacate());
                return Err(err);
            }
        }
        let started = self.add_child(ChildSpec::Supervisor(resolved), tree).await;
        if started.is_err() {
            // The tree gave up and is gone: its names are free again.
            for e in &entries {
                e.vacate();
            }
        }
        started
    }

    async fn add_child(
        &self,
        spec: ChildSpec,
        tree: Option<oneshot::Sender<Addr<Supervisor>>>,
    ) -> Result<(), SpawnError> {
        let (tx, rx) = oneshot::channel();
        self.inner.root.do_send(AddChild {
            spec,
            reply: tx,
            tree,
        });
        rx.await.unwrap_or(Err(SpawnError::ShuttingDown))
    }

    /// A handle to the service `name` (which may not exist yet: calls then
    /// fail with `UnknownService` until it does).
    pub fn service(&self, name: &str) -> ServiceRef {
        match self.shared().registry.get(name) {
            Some(e) => ServiceRef::with_entry(self.shared().clone(), e),
            None => ServiceRef::new(self.shared().clone(), name),
        }
    }

    /// A stream of registry changes from now on.
    pub fn watch(&self) -> RegistryWatch {
        self.shared().registry.watch()
    }

    /// A stream of registry changes that starts with the registry as it is:
    /// an `Added` for every running local instance, a `RemoteAdded` for
    /// every instance on another node and a `Failed` for every failed
    /// service (services by name), then the changes from then on
    /// ([`RegistryWatch::snapshot_left`] says how many snapshot events are
    /// still to come). Nothing is missed between the two; a change made
    /// while the snapshot is read may be reported twice.
    pub fn watch_with_snapshot(&self) -> RegistryWatch {
        self.shared().registry.watch_with_snapshot()
    }

    /// Counters of the service `name`.
    pub fn stats(&self, name: &str) -> Option<StatsSnapshot> {
        self.shared().registry.get(name).map(|e| e.stats_snapshot())
    }

    /// Lifecycle state of the service `name`.
    pub fn service_state(&self, name: &str) -> Option<ServiceState> {
        self.shared().registry.get(name).map(|e| e.state())
    }

    /// Live instances of the service `name`.
    pub fn instances(&self, name: &str) -> Vec<InstanceId> {
        self.shared()
            .registry
            .get(name)
            .map(|e| e.live_instances())
            .unwrap_or_default()
    }

    /// Names of every service on this node, sorted.
    pub fn services(&self) -> Vec<String> {
        self.shared().registry.names()
    }

    /// From now on, calls from other nodes to this node's services are
    /// refused: their callers get [`CallError::NodeDown`](crate::CallError)
    /// (the node is going away) and may try another instance. Calls made on
    /// this node go on, those its services make while finishing work in
    /// flight included. The first step of a graceful stop, before the calls
    /// in flight are waited for and [`shutdown`](Self::shutdown) leaves the
    /// cluster; it cannot be undone.
    pub fn refuse_remote_calls(&self) {
        self.shared().refusing_remote.store(true, Ordering::Release);
    }

    /// Tells the other nodes this node is leaving, before it stops taking
    /// their calls: they take its services out of their routing at once
    /// (calls already on their way here are still served, and their replies
    /// still travel), so that a graceful stop that then waits a moment
    /// before [`refuse_remote_calls`](Self::refuse_remote_calls) fails no
    /// caller. The host's SIGTERM does so; it cannot be undone.
    pub fn announce_leaving(&self) {
        if let Some(r) = &self.shared().remote {
            r.announce_leaving();
        }
    }

    /// Names of the services spawned on this node, sorted:
    /// [`services`](Self::services) without those known only because they
    /// run on other nodes (what a node's own metrics and readiness cover).
    pub fn local_services(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .shared()
            .registry
            .entries()
            .into_iter()
            .filter(|e| !e.is_remote_only())
            .map(|e| e.name().to_string())
            .collect();
        v.sort();
        v
    }

    /// The remoting address other nodes dial (the real port when bound to 0).
    pub fn remote_addr(&self) -> Option<String> {
        self.shared()
            .remote
            .as_ref()
            .map(|r| r.local.addr.clone())
            .filter(|a| !a.is_empty())
    }

    /// Who this node is on the wire.
    pub fn node_info(&self) -> Option<crate::remote::NodeInfo> {
        self.shared().remote.as_ref().map(|r| r.local.clone())
    }

    /// Nodes this node is connected to, by name.
    pub fn peers(&self) -> Vec<crate::remote::NodeInfo> {
        self.shared()
            .remote
            .as_ref()
            .map(|r| r.peers())
            .unwrap_or_default()
    }

    /// What this node knows of the cluster: members (itself included) and
    /// where services run.
    pub fn cluster_status(&self) -> crate::remote::ClusterStatus {
        match &self.shared().remote {
            Some(r) => r.status(),
            None => {
                let services = self
                    .services()
                    .into_iter()
                    .filter(|s| !self.instances(s).is_empty())
                    .map(|name| crate::remote::ServiceView {
                        name,
                        nodes: vec![self.name().to_string()],
                    })
                    .collect();
                crate::remote::ClusterStatus {
                    members: Vec::new(),
                    services,
                    unreachable: Vec::new(),
                }
            }
        }
    }

    /// The members this node knows (alive or suspect, and reachable from
    /// here) whose service tables it has not received yet, sorted; empty for
    /// a node without remoting. While it is not empty, a call to a service
    /// this node does not know fails with the retryable
    /// [`CallError::TablesPending`](crate::CallError) (503 at the gateway)
    /// rather than `UnknownService`: a node that just joined a running
    /// cluster hears the tables within about a second. A readiness check
    /// can wait for it to be empty.
    pub fn tables_pending(&self) -> Vec<String> {
        self.shared()
            .remote
            .as_ref()
            .map(|r| r.tables_pending())
            .unwrap_or_default()
    }

    /// Whether this node's split-brain resolver has downed it: it was on the
    /// losing side of a partition, refuses calls from other nodes and calls
    /// none (`CallError::Downed`), until it rejoins after the heal. Always
    /// `false` for a node without remoting. The gateway answers 503 while it
    /// is set, and `/readyz` 503.
    pub fn is_self_downed(&self) -> bool {
        self.shared()
            .remote
            .as_ref()
            .is_some_and(|r| r.is_self_downed())
    }

    /// Whether this node is still joining its cluster (Akka's `Joining`):
    /// started with seeds (or back after the split-brain resolver downed
    /// it) and not yet admitted by every member it sees. While it is, it
    /// serves no calls from other nodes, its own callers' calls to services
    /// on other nodes and keyed calls fail at once with
    /// [`CallError::Joining`](crate::CallError), calls to its own local
    /// services are served, and `cluster_status` shows it `joining`. A node
    /// with no seeds founds the cluster and is never joining; on a healthy
    /// cluster a node is admitted within about a second. Always `false` for
    /// a node without remoting (docs/cluster.md, "Joining").
    pub fn is_joining(&self) -> bool {
        self.shared()
            .remote
            .as_ref()
            .is_some_and(|r| r.is_joining())
    }

    /// Membership changes from now on (`None` for a node without remoting).
    pub fn cluster_events(
        &self,
    ) -> Option<tokio::sync::broadcast::Receiver<crate::remote::ClusterEvent>> {
        self.shared().remote.as_ref().map(|r| r.subscribe())
    }

    /// Reads the node's TLS CA, certificate and key files again
    /// (`msa node` does it on SIGHUP): connections made from now on use
    /// them. Nothing happens without TLS.
    ///
    /// # Errors
    /// [`TlsError`](crate::remote::TlsError) when a file cannot be read or
    /// the certificate is not a node certificate for this node; the
    /// previous certificate then stays in use.
    pub fn reload_tls(&self) -> Result<(), crate::remote::TlsError> {
        let Some(tls) = self
            .shared()
            .remote
            .as_ref()
            .and_then(|r| r.cfg.tls.clone())
        else {
            return Ok(());
        };
        tls.reload_as(&crate::remote::TlsIdentity::Node(self.name().to_string()))?;
        tracing::info!(expiry = tls.cert_expiry(), "TLS certificate reloaded");
        Ok(())
    }

    /// When this node's TLS certificate expires (unix seconds; `None`
    /// without TLS): exported as `msa_tls_cert_expiry_seconds`.
    pub fn tls_cert_expiry(&self) -> Option<i64> {
        self.shared()
            .remote
            .as_ref()
            .and_then(|r| r.cfg.tls.as_ref().map(|t| t.cert_expiry()))
    }

    /// Remoting counters (zero when the node does not listen or dial).
    pub fn remote_stats(&self) -> crate::remote::RemoteSnapshot {
        self.shared()
            .remote
            .as_ref()
            .map(|r| r.stats.snapshot())
            .unwrap_or_default()
    }

    /// Whether this node counts mailbox depth
    /// ([`NodeBuilder::track_mailbox_depth`]).
    pub fn tracks_mailbox_depth(&self) -> bool {
        self.shared().track_mailbox_depth
    }

    /// The seed addresses this node joins through (empty for the first node
    /// of a cluster, or a node without remoting).
    pub fn seeds(&self) -> Vec<String> {
        self.shared()
            .remote
            .as_ref()
            .map(|r| r.cfg.seeds.clone())
            .unwrap_or_default()
    }

    /// Counters of each open connection to another node, sorted by peer
    /// (empty when the node does not listen or dial).
    pub fn connection_stats(&self) -> Vec<crate::remote::ConnectionSnapshot> {
        self.shared()
            .remote
            .as_ref()
            .map(|r| r.connection_stats())
            .unwrap_or_default()
    }

    /// Instances of `name` on other nodes, as `(node, slot)`.
    pub fn remote_instances(&self, name: &str) -> Vec<(String, usize)> {
        self.shared()
            .registry
            .get(name)
            .map(|e| e.remote_instances())
            .unwrap_or_default()
    }

    /// Watches one instance of `service` on node `node` (this node's own name
    /// for a local one) and resolves, with the reason, once it is gone: it
    /// stopped or crashed ([`MonitorReason::Exited`] here,
    /// [`MonitorReason::LeftTable`] elsewhere), its node left or was
    /// declared down ([`MonitorReason::NodeDown`]). Resolves at once with
    /// [`MonitorReason::NotRunning`] if the instance is not there now.
    ///
    /// Spawn it (or `select!` on it) from an actor or supervisor that must
    /// react to the death.
    pub fn monitor(
        &self,
        service: &str,
        node: &str,
        slot: usize,
    ) -> impl std::future::Future<Output = MonitorReason> + Send + 'static {
        let shared = self.shared().clone();
        let mut watch = shared.registry.watch();
        let local = node == shared.name;
        let present = shared.registry.get(service).is_some_and(|e| {
            if local {
                e.live_instances().iter().any(|i| i.slot == slot)
            } else {
                e.remote_instances()
                    .iter()
                    .any(|(n, s)| n == node && *s == slot)
            }
        });
        let (service, node) = (service.to_string(), node.to_string());
        async move {
            if !present {
                return MonitorReason::NotRunning;
            }
            while let Some(ev) = watch.next().await {
                match ev {
                    RegistryEvent::Removed {
                        service: s,
                        instance,
                        exit,
                        ..
                    } if local && s == service && instance.slot == slot => {
                        return MonitorReason::Exited(exit)
                    }
                    RegistryEvent::RemoteRemoved {
                        service: s,
                        node: n,
                        slot: sl,
                        reason,
                    } if !local && s == service && n == node && sl == slot => {
                        return MonitorReason::remote(&reason)
                    }
                    _ => {}
                }
            }
            MonitorReason::NodeStopped
        }
    }

    /// Asks to remote nodes still waiting for their reply.
    pub fn pending_remote_asks(&self) -> usize {
        self.shared().remote.as_ref().map_or(0, |r| r.pending())
    }

    /// Teaches the node how to send a hand-written `RemoteMessage` `M` to
    /// services it does not run itself. Nothing needs it any more: a type
    /// with `#[derive(RemoteMessage)]` is known to every node of the binary,
    /// so for such a type this changes nothing.
    ///
    /// A type the wire codec cannot carry (see
    /// [`SpawnError::NotWireSafe`](crate::SpawnError::NotWireSafe)) is still
    /// registered, with a warning in the log.
    #[deprecated(
        since = "0.2.0",
        note = "derive `RemoteMessage` instead: declared messages need no registration"
    )]
    pub fn register_message<M: crate::RemoteMessage>(&self) {
        if let Err(reason) = (crate::message::wire_codec::wire_codec::<M>().wire_safe)() {
            tracing::warn!(message = M::NAME, %reason, "message cannot cross nodes");
        }
        self.shared().registry.register_codecs([(
            std::any::TypeId::of::<M>(),
            crate::message::wire_codec::wire_codec::<M>(),
        )]);
    }

    /// Like [`register_message`](Self::register_message), for a keyed message.
    #[deprecated(
        since = "0.2.0",
        note = "derive `RemoteMessage` with `#[msa(keyed)]` instead: declared messages need no registration"
    )]
    pub fn register_keyed_message<M: crate::RemoteMessage + crate::KeyedMessage>(&self) {
        let c = crate::message::wire_codec::keyed_wire_codec::<M>();
        self.shared()
            .registry
            .register_codecs([(std::any::TypeId::of::<M>(), c)]);
    }

    /// Latencies of the asks `service` served for JSON callers (the gateway)
    /// and other nodes; `None` for an unknown service.
    pub fn ask_latency(&self, service: &str) -> Option<crate::LatencySnapshot> {
        let e = self.shared().registry.get(service)?;
        Some(e.stats.ask_latency.snapshot())
    }

    /// The message type known under `wire_name` here: handled by a service
    /// of this node, or declared with `#[derive(RemoteMessage)]` in this
    /// binary. `None` for a message only other binaries know.
    pub fn message_info(&self, wire_name: &str) -> Option<crate::json::MessageInfo> {
        let c = self
            .shared()
            .registry
            .codec_by_name(wire_name)
            .or_else(|| crate::message::declared::by_name(wire_name))?;
        Some(crate::json::MessageInfo {
            name: c.wire_name,
            type_name: c.type_name,
            schema: (c.schema)(),
            reply_schema: (c.reply_schema)(),
            version: c.version,
        })
    }

    /// Wire names of the messages `service` handles, on this node or any
    /// other (empty for an unknown service), sorted.
    pub fn service_messages(&self, service: &str) -> Vec<String> {
        self.shared().registry.service_messages(service)
    }

    /// Asks `service` with the message whose wire name is `message`, decoded
    /// from a JSON body; the reply is the JSON-encoded result. The call then
    /// goes wherever an ask of that type would (local or remote instance),
    /// with `meta` (identity, trace) and `timeout` (default: the node's).
    ///
    /// # Errors
    /// [`JsonError::UnknownMessage`](crate::JsonError::UnknownMessage) when no
    /// type has that wire name here, `MalformedJson`/`BadBody` when the body
    /// does not decode (naming the field). The returned future yields the
    /// call's own [`CallError`](crate::CallError)s (unknown service, unhandled
    /// message, no instance, timeout, ...).
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use msa_runtime::{JsonBody, Metadata, Node};
    /// let node = Node::builder().arbiters(1).start()?;
    /// node.spawn(msa_runtime::ServiceSpec::new("echo", || Echo).handles::<Say>()).await?;
    /// let reply = node
    ///     .call_json("echo", "doc.Say", JsonBody::Bytes(br#"{"text":"hi"}"#), Metadata::new(), None)?
    ///     .await?;
    /// assert_eq!(reply, br#""hi""#);
    /// # node.shutdown(std::time::Duration::from_secs(1)).await?;
    /// # Ok(()) }
    /// # use msa_runtime::prelude::*;
    /// # #[derive(actix::Message, serde::Serialize, serde::Deserialize, RemoteMessage)]
    /// # #[rtype(result = "String")]
    /// # #[msa(name = "doc.Say")]
    /// # struct Say { text: String }
    /// # struct Echo;
    /// # impl Service for Echo {}
    /// # impl Handler<Say> for Echo {
    /// #     fn handle(&mut self, m: Say, _: &mut ServiceContext<'_, Self>) -> Reply<Self, String> { Reply::ready(m.text) }
    /// # }
    /// ```
    pub fn call_json(
        &self,
        service: &str,
        message: &str,
        body: crate::json::JsonBody<'_>,
        meta: crate::Metadata,
        timeout: Option<Duration>,
    ) -> Result<crate::json::JsonReply, crate::json::JsonError> {
        let shared = self.shared();
        let entry = match self.entry_by_name(service) {
            Ok(entry) => entry,
            Err(err) => return Ok(by_name::failed(err)),
        };
        // Decoded here when an instance on this node handles the message
        // (its own registration knows the type) ...
        if let Some(serve) = crate::service::json_server(&entry, message) {
            let svc = crate::service::ServiceRef::with_entry(shared.clone(), entry.clone());
            return serve(svc, body, meta, timeout);
        }
        // ... else forwarded, undecoded, to a node that hosts it.
        let timeout = timeout.unwrap_or(shared.default_timeout);
        if let Some(forwarded) = crate::remote::json_forward::forward(
            shared.remote.as_ref(),
            &entry,
            message,
            body,
            &meta,
            timeout,
        ) {
            return forwarded;
        }
        match self.unserved(service, message, &entry) {
            Some(err) => Ok(by_name::failed(err)),
            None => Err(crate::json::JsonError::UnknownMessage {
                message: message.to_string(),
            }),
        }
    }

    /// Asks currently waiting for a reply with a registered deadline.
    pub fn pending_asks(&self) -> usize {
        self.shared().deadlines.waiting()
    }

    /// Stops the node: new calls are refused at once; services are stopped
    /// in reverse start order, each after handling what was already queued;
    /// whatever is still queued or running after `grace` is killed and its
    /// callers get [`CallError::ShuttingDown`](crate::CallError). Then the
    /// node's threads are joined.
    ///
    /// # Errors
    /// [`NodeError::AlreadyShutDown`], or [`NodeError::ShutdownFromNodeThread`]
    /// when called from one of the node's own arbiters (it would join itself).
    pub async fn shutdown(&self, grace: Duration) -> Result<(), NodeError> {
        if let Some(t) = self.inner.threads.lock().as_ref() {
            if t.is_node_thread() {
                return Err(NodeError::ShutdownFromNodeThread);
            }
        }
        if self.inner.shut.swap(true, Ordering::AcqRel) {
            return Err(NodeError::AlreadyShutDown);
        }
        let shared = self.shared().clone();
        shared.closing.store(true, Ordering::Release);
        shared.registry.close();
        let _span = tracing::info_span!("shutdown", node = %shared.name).entered();
        let (stopped_tx, stopped_rx) = oneshot::channel();
        self.inner.root.do_send(StopTree {
            reply: Some(stopped_tx),
        });
        let root = self.inner.root.clone();
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let watchdog = async move {
            if tokio::time::timeout(grace, stopped_rx).await.is_err() {
                tracing::warn!(
                    ?grace,
                    "shutdown grace period over; killing what is still running"
                );
                root.do_send(KillTree { fail: false });
            }
            let _ = done_tx.send(());
        };
        match &shared.exec {
            Exec::Local => {
                actix_rt::spawn(watchdog);
            }
            Exec::Arbiters { handles, .. } => {
                if let Some(h) = handles.first() {
                    h.spawn(watchdog);
                }
            }
        }
        let _ = done_rx.await;
        // Leave the cluster: peers drop this node's instances at once.
        if let Some(r) = &shared.remote {
            r.close();
            if let Exec::Arbiters { handles, .. } = &shared.exec {
                // Connections run on the arbiters: let them flush before the
                // arbiters stop.
                if let Some(h) = handles.first() {
                    let (tx, rx) = oneshot::channel::<()>();
                    let r = r.clone();
                    h.spawn(async move {
                        r.wait_closed(Duration::from_secs(1)).await;
                        let _ = tx.send(());
                    });
                    let _ = rx.await;
                }
            } else {
                r.wait_closed(Duration::from_secs(1)).await;
            }
        }
        let threads = self.inner.threads.lock().take();
        if let Some(t) = threads {
            t.stop_and_join().await;
        }
        tracing::info!("node stopped");
        Ok(())
    }

    /// [`shutdown`](Self::shutdown) for plain `fn main` (no async runtime).
    /// Do not call it from inside an async runtime.
    ///
    /// # Errors
    /// As [`shutdown`](Self::shutdown), and [`NodeError::Threads`] if no
    /// helper runtime could be built.
    pub fn shutdown_blocking(&self, grace: Duration) -> Result<(), NodeError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| NodeError::Threads(e.to_string()))?;
        rt.block_on(self.shutdown(grace))
    }
}
