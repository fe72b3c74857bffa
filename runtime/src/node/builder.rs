//! `NodeBuilder`: configure and start a node.

use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;
use std::time::Duration;

use actix::{Addr, Arbiter, System};

use super::threads::Threads;
use super::{Exec, Node, NodeShared};
use crate::deadline::Deadlines;
use crate::error::NodeError;
use crate::lifecycle::{home, launch, ExitNotice, Placement};
use crate::registry::Registry;
use crate::remote::address;
use crate::remote::discovery::{Discovery, DnsSeeds, StaticSeeds};
use crate::remote::frame::NodeInfo;
use crate::remote::remoting::Remoting;
use crate::remote::transport::{FaultTransport, Listener, TcpTransport, Transport};
use crate::remote::RemoteConfig;
use crate::supervision::Supervisor;

/// Configures a [`Node`].
#[derive(Debug, Clone)]
pub struct NodeBuilder {
    name: String,
    arbiters: Option<usize>,
    default_timeout: Duration,
    allow_panic_abort: bool,
    track_mailbox_depth: bool,
    listen: Option<String>,
    advertise: Option<String>,
    /// What the node advertises, worked out when it binds.
    advertised: Option<String>,
    /// Set by [`NodeBuilder::discovery`]; else from the seeds.
    discovery: Option<Arc<dyn Discovery>>,
    /// Whether the transport is the default TCP one (seed names are then
    /// resolved through DNS).
    tcp: bool,
    transport: Arc<dyn Transport>,
    remote: RemoteConfig,
    incarnation: Option<u64>,
    verifier: Option<Arc<dyn crate::access::IdentityVerifier>>,
    span_buffer_bytes: usize,
    span_sample_rate: u64,
}

impl Default for NodeBuilder {
    fn default() -> Self {
        Self {
            name: "node".into(),
            arbiters: None,
            default_timeout: Duration::from_secs(5),
            allow_panic_abort: false,
            track_mailbox_depth: false,
            listen: None,
            advertise: None,
            advertised: None,
            discovery: None,
            tcp: true,
            transport: Arc::new(TcpTransport),
            remote: RemoteConfig::default(),
            incarnation: None,
            verifier: None,
            span_buffer_bytes: crate::live::DEFAULT_SPAN_BUFFER_BYTES,
            span_sample_rate: crate::live::DEFAULT_SPAN_SAMPLE_RATE,
        }
    }
}

impl NodeBuilder {
    /// The node's name (logs, and later the cluster).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The bound on this node's span buffer, strings included (default
    /// [`DEFAULT_SPAN_BUFFER_BYTES`](crate::live::DEFAULT_SPAN_BUFFER_BYTES),
    /// 8 MiB; at least 4 KiB).
    pub fn span_buffer_bytes(mut self, bytes: usize) -> Self {
        self.span_buffer_bytes = bytes.max(4096);
        self
    }

    /// Spans a second this node records before it samples traces (default
    /// [`DEFAULT_SPAN_SAMPLE_RATE`](crate::live::DEFAULT_SPAN_SAMPLE_RATE);
    /// docs/live-view.md, "Sampling").
    pub fn span_sample_rate(mut self, per_second: u64) -> Self {
        self.span_sample_rate = per_second.max(1);
        self
    }

    /// Number of arbiter threads (default: one per core).
    pub fn arbiters(mut self, n: usize) -> Self {
        self.arbiters = Some(n);
        self
    }

    /// Timeout of an `ask` that does not set its own (default 5 s).
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }

    /// Accepts a binary built with `panic = "abort"` (where any handler
    /// panic aborts the whole process). Refused by default.
    pub fn allow_panic_abort(mut self, allow: bool) -> Self {
        self.allow_panic_abort = allow;
        self
    }

    /// Listens for other nodes on `addr` (port 0 picks a free port; read it
    /// back with [`Node::remote_addr`]). Without a cluster secret only a
    /// loopback address is accepted. An unspecified address (`0.0.0.0`,
    /// `[::]`) needs an [`advertise`](Self::advertise) address. IPv6 works
    /// (`[::1]:7000`). For a transport other than TCP, see
    /// [`listen_on`](Self::listen_on).
    pub fn listen(mut self, addr: std::net::SocketAddr) -> Self {
        self.listen = Some(addr.to_string());
        self
    }

    /// Listens for other nodes on `addr`, in the form the node's
    /// [`transport`](Self::transport) takes (`host:port` for TCP, `a:0`
    /// on a [`MemoryNetwork`](crate::remote::transport::MemoryNetwork)).
    /// Port 0 picks a free port; read it back with [`Node::remote_addr`].
    /// Without a cluster secret only an address the transport calls local
    /// is accepted ([`Transport::is_local`]).
    pub fn listen_on(mut self, addr: impl Into<String>) -> Self {
        self.listen = Some(addr.into());
        self
    }

    /// The address other nodes dial to reach this one (`host:port`, or
    /// `[v6]:port`), when it differs from the [`listen`](Self::listen)
    /// address: a node bound to `0.0.0.0:7000` in a container advertises
    /// its pod or host address. Port 0 means the port the listener got.
    /// The membership identity, the service tables and
    /// [`Node::remote_addr`] carry this address. Without it a node
    /// advertises its bound address, and refuses to start when that is
    /// unspecified ([`NodeError::UnroutableListen`]).
    ///
    /// # Examples
    /// ```
    /// let node = msa_runtime::Node::builder()
    ///     .arbiters(1)
    ///     .listen("127.0.0.1:0".parse().unwrap())
    ///     .advertise("localhost:0")
    ///     .start()
    ///     .unwrap();
    /// let addr = node.remote_addr().unwrap();
    /// assert!(addr.starts_with("localhost:") && !addr.ends_with(":0"));
    /// node.shutdown_blocking(std::time::Duration::from_secs(1)).unwrap();
    /// ```
    pub fn advertise(mut self, addr: impl Into<String>) -> Self {
        self.advertise = Some(addr.into());
        self
    }

    /// Where the node finds its seeds, instead of the [`seed`](Self::seed)
    /// list: any [`Discovery`] (Consul, etcd, a cloud API). It is asked
    /// again every [`discovery_interval`](Self::discovery_interval).
    pub fn discovery(mut self, discovery: impl Discovery) -> Self {
        self.discovery = Some(Arc::new(discovery));
        self
    }

    /// How often seeds are discovered again (default 10 s): a seed name is
    /// re-resolved, a [`Discovery`] asked again.
    pub fn discovery_interval(mut self, every: Duration) -> Self {
        self.remote.discovery_interval = every.max(Duration::from_millis(10));
        self
    }

    /// The DNS server (`ip:port`) that resolves seed names, instead of the
    /// system's resolver configuration (a test's own server, say).
    pub fn dns_server(mut self, server: std::net::SocketAddr) -> Self {
        self.remote.dns_server = Some(server);
        self
    }

    /// The network the node listens and dials on (default: TCP,
    /// [`TcpTransport`]). Give each node its own transport value: a
    /// [`MemoryNetwork`](crate::remote::transport::MemoryNetwork) clone per
    /// node, for instance.
    ///
    /// # Examples
    /// ```
    /// use msa_runtime::remote::transport::MemoryNetwork;
    /// use msa_runtime::Node;
    ///
    /// let net = MemoryNetwork::new();
    /// let a = Node::builder()
    ///     .name("a")
    ///     .arbiters(1)
    ///     .transport(net.clone())
    ///     .listen_on("a:0")
    ///     .start()
    ///     .unwrap();
    /// assert_eq!(a.remote_addr().as_deref(), Some("a:1"));
    /// a.shutdown_blocking(std::time::Duration::from_secs(1)).unwrap();
    /// ```
    pub fn transport(mut self, transport: impl Transport) -> Self {
        self.tcp = std::any::Any::type_id(&transport) == std::any::TypeId::of::<TcpTransport>();
        self.transport = Arc::new(transport);
        self
    }

    /// Adds a seed node address (`host:port`, `[v6]:port`) to dial at
    /// start. On TCP the host may be a DNS name standing for several nodes
    /// (a Kubernetes headless Service): it is resolved to all its addresses,
    /// and again every [`discovery_interval`](Self::discovery_interval).
    pub fn seed(mut self, addr: impl Into<String>) -> Self {
        self.remote.seeds.push(addr.into());
        self
    }

    /// The cluster name (default `msa`); nodes of other clusters are refused.
    pub fn cluster(mut self, name: impl Into<String>) -> Self {
        self.remote.cluster = name.into();
        self
    }

    /// The shared cluster secret every connection must prove.
    pub fn secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.remote.secret = Some(secret.into());
        self
    }

    /// Mutual TLS on every connection of this node (its certificate must be
    /// a node certificate for this node's [`name`](Self::name)); with it the
    /// cluster secret is optional. See
    /// [`TlsConfig`](crate::remote::TlsConfig) and docs/security.md.
    pub fn tls(mut self, tls: crate::remote::TlsConfig) -> Self {
        self.remote.tls = Some(tls);
        self
    }

    /// Largest frame accepted or sent (default 8 MiB).
    pub fn max_frame_bytes(mut self, n: usize) -> Self {
        self.remote.max_frame_bytes = n;
        self
    }

    /// Largest frame accepted from a peer before it is authenticated
    /// (default 4 KiB): a larger length prefix closes that connection
    /// before its body is read.
    pub fn max_handshake_frame_bytes(mut self, n: usize) -> Self {
        self.remote.max_handshake_frame_bytes = n;
        self
    }

    /// Close an inbound connection that has not completed its handshake
    /// within `timeout` (default 5 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.remote.handshake_timeout = timeout;
        self
    }

    /// Inbound connections allowed in their handshake at once (default
    /// 256); more are closed as soon as they are accepted, and counted in
    /// [`RemoteSnapshot::handshakes_over_cap`](crate::remote::RemoteSnapshot::handshakes_over_cap).
    pub fn max_pending_handshakes(mut self, n: usize) -> Self {
        self.remote.max_pending_handshakes = n;
        self
    }

    /// Bytes one connection's control lane (replies, errors, tables,
    /// pings) may hold (default 16 MiB). A control frame that does not fit
    /// means the peer stopped reading: the connection is closed as stalled.
    pub fn max_control_queue_bytes(mut self, n: usize) -> Self {
        self.remote.max_control_queue_bytes = n;
        self
    }

    /// Bytes one connection's data lane (tells and asks to the
    /// peer) may hold (default 64 MiB); past it a call fails with
    /// `CallError::Overloaded`.
    pub fn max_data_queue_bytes(mut self, n: usize) -> Self {
        self.remote.max_data_queue_bytes = n;
        self
    }

    /// Close a connection whose peer takes no bytes for `timeout` while some
    /// wait to be written (default 10 s): a peer that stopped reading its
    /// socket. Its pending asks fail with `CallError::NodeDown`.
    pub fn peer_stall_timeout(mut self, timeout: Duration) -> Self {
        self.remote.peer_stall_timeout = timeout;
        self
    }

    /// Asks from one connection served at once (default 8,192); at the
    /// bound the node reads no more from that peer until one is answered.
    pub fn max_inbound_asks(mut self, n: usize) -> Self {
        self.remote.max_inbound_asks = n;
        self
    }

    /// Count what is queued to each instance, for
    /// [`StatsSnapshot::mailbox_depth`](crate::StatsSnapshot::mailbox_depth)
    /// and the gateway's `msa_service_mailbox_depth` (default off). It costs
    /// one atomic read-modify-write per message sent (about 5–8 % of local
    /// `tell` throughput on the benchmark machine), so a node pays it only
    /// when something reads it: `msa node` turns it on with a gateway.
    pub fn track_mailbox_depth(mut self, on: bool) -> Self {
        self.track_mailbox_depth = on;
        self
    }

    /// Declare a crashed or partitioned member down within about `bound`
    /// (default 5 s): sets the membership probe and suspicion timing and the
    /// silence after which a connection is dropped (0.6 × bound, heartbeats
    /// every bound/10).
    pub fn failure_detection(mut self, bound: Duration) -> Self {
        let bound = bound.max(Duration::from_millis(200));
        self.remote.failure_detection = bound;
        self.remote.dead_after = bound * 3 / 5;
        self.remote.heartbeat = bound / 10;
        self
    }

    /// The split-brain policy (default keep-majority, acting after the
    /// partition was stable for 5 s; see docs/cluster.md, "Split-brain
    /// resolver"). An invalid policy is refused by [`start`](Self::start)
    /// with [`NodeError::BadSplitBrain`].
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use msa_runtime::remote::split_brain::{SplitBrainConfig, SplitBrainStrategy};
    /// let policy = SplitBrainConfig::new(SplitBrainStrategy::KeepOldest, Duration::from_secs(3))?;
    /// let builder = msa_runtime::Node::builder().split_brain(policy);
    /// # drop(builder);
    /// # Ok::<(), msa_runtime::remote::split_brain::SplitBrainConfigError>(())
    /// ```
    pub fn split_brain(mut self, policy: crate::remote::split_brain::SplitBrainConfig) -> Self {
        self.remote.split_brain = policy;
        self
    }

    /// All remoting settings at once.
    pub fn remote_config(mut self, cfg: RemoteConfig) -> Self {
        self.remote = cfg;
        self
    }

    /// What verifies the signed tokens that identities from other nodes
    /// carry (docs/security.md, "Access rules at each service"). Without
    /// one, an identity that arrives from another node keeps its subject
    /// but none of its roles, so only rules naming calling services (or no
    /// rule) let it through.
    pub fn identity_verifier(mut self, verifier: impl crate::access::IdentityVerifier) -> Self {
        self.verifier = Some(Arc::new(verifier));
        self
    }

    /// The node's incarnation (default: the start time in nanoseconds).
    pub fn incarnation(mut self, n: u64) -> Self {
        self.incarnation = Some(n);
        self
    }

    fn check_panic_strategy(&self) -> Result<(), NodeError> {
        if cfg!(panic = "abort") && !self.allow_panic_abort {
            return Err(NodeError::PanicAbort);
        }
        Ok(())
    }

    /// Wraps the transport in this node's own fault layer, then binds the
    /// remoting listener, if any (before any thread starts, so errors come
    /// back from `start`).
    fn bind(&mut self) -> Result<Option<Box<dyn Listener>>, NodeError> {
        self.transport = Arc::new(FaultTransport::new(self.transport.clone()));
        if let Some(tls) = &self.remote.tls {
            if tls.identity() != crate::remote::TlsIdentity::Node(self.name.clone()) {
                return Err(NodeError::TlsIdentity {
                    node: self.name.clone(),
                    cert: tls.identity().to_string(),
                });
            }
        }
        let Some(addr) = &self.listen else {
            if let Some(adv) = &self.advertise {
                return Err(NodeError::BadAdvertise {
                    addr: adv.clone(),
                    reason: "a node that does not listen has nothing to advertise".into(),
                });
            }
            return Ok(None);
        };
        let local = self.transport.is_local(addr);
        match (&self.remote.tls, &self.remote.secret) {
            (Some(_), _) => {}
            (None, None) if !local => {
                return Err(NodeError::InsecureListen { addr: addr.clone() });
            }
            (None, Some(_)) if !local => {
                tracing::warn!(
                    node = %self.name,
                    %addr,
                    "listening beyond loopback with only the cluster secret (HMAC): \
                     connections are authenticated but not encrypted; use mutual TLS \
                     ([tls] / --tls-*) in production"
                );
            }
            (None, _) => {}
        }
        address::check_listen(addr, self.advertise.as_deref())?;
        let listener = self.transport.bind(addr).map_err(|e| NodeError::Bind {
            addr: addr.clone(),
            reason: e.to_string(),
        })?;
        self.advertised = Some(address::advertised(
            &listener.local_addr(),
            self.advertise.as_deref(),
        )?);
        Ok(Some(listener))
    }

    /// Where the node's seeds come from: the discovery given, else the
    /// seeds (names resolved through DNS on TCP); `None` without either.
    fn seed_discovery(&self) -> Option<Arc<dyn Discovery>> {
        if let Some(d) = &self.discovery {
            return Some(d.clone());
        }
        if self.remote.seeds.is_empty() {
            return None;
        }
        let seeds = self.remote.seeds.clone();
        Some(if self.tcp {
            Arc::new(DnsSeeds::new(seeds, self.remote.dns_server))
        } else {
            Arc::new(StaticSeeds::new(seeds))
        })
    }

    fn shared(
        &self,
        exec: Exec,
        shards: usize,
        listener: Option<&dyn Listener>,
    ) -> Result<Arc<NodeShared>, NodeError> {
        let local_addr = listener.and(self.advertised.clone());
        let wants_remote =
            local_addr.is_some() || !self.remote.seeds.is_empty() || self.discovery.is_some();
        let incarnation = self.incarnation.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
        Ok(Arc::new_cyclic(|weak: &std::sync::Weak<NodeShared>| {
            NodeShared {
                name: self.name.clone(),
                registry: Registry::new(&self.name),
                deadlines: Deadlines::new(shards),
                closing: AtomicBool::new(false),
                refusing_remote: AtomicBool::new(false),
                track_mailbox_depth: self.track_mailbox_depth,
                default_timeout: self.default_timeout,
                default_timeout_ms: u64::try_from(self.default_timeout.as_millis())
                    .unwrap_or(u64::MAX / 4)
                    .saturating_add(u64::from(
                        !self
                            .default_timeout
                            .subsec_nanos()
                            .is_multiple_of(1_000_000),
                    )),
                exec,
                verifier: self.verifier.clone(),
                live: crate::live::NodeLive::new(
                    &self.name,
                    self.span_buffer_bytes,
                    self.span_sample_rate,
                ),
                remote: wants_remote.then(|| {
                    let addr = local_addr.unwrap_or_default();
                    // Seeds other than itself (a shared seed list names
                    // every node), or a discovery: it joins through them.
                    let has_seeds =
                        self.discovery.is_some() || self.remote.seeds.iter().any(|s| *s != addr);
                    Arc::new(Remoting::new(
                        self.remote.clone(),
                        NodeInfo {
                            name: self.name.clone(),
                            addr,
                            incarnation,
                        },
                        weak.clone(),
                        self.transport.clone(),
                        has_seeds,
                    ))
                }),
            }
        }))
    }

    /// Starts the node on its own actix System thread and arbiter pool. Works
    /// from plain `fn main` and from inside any async runtime.
    ///
    /// # Errors
    /// [`NodeError::PanicAbort`], [`NodeError::ZeroArbiters`], or
    /// [`NodeError::Threads`] when a thread cannot be started.
    ///
    /// # Examples
    /// ```
    /// let node = msa_runtime::Node::builder().arbiters(1).start().unwrap();
    /// node.shutdown_blocking(std::time::Duration::from_secs(1)).unwrap();
    /// ```
    pub fn start(mut self) -> Result<Node, NodeError> {
        self.check_panic_strategy()?;
        self.remote
            .split_brain
            .validate()
            .map_err(|e| NodeError::BadSplitBrain {
                reason: e.to_string(),
            })?;
        let listener = self.bind()?;
        let n = match self.arbiters {
            Some(0) => return Err(NodeError::ZeroArbiters),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let system_thread = std::thread::Builder::new()
            .name(format!("msa-{}-system", self.name))
            .spawn(move || {
                let runner = System::new();
                let arbiters: Vec<Arbiter> = (0..n).map(|_| Arbiter::new()).collect();
                let sys_home = home::new_arbiter_id();
                home::set_current(sys_home);
                let sys = (System::current().arbiter().clone(), sys_home);
                let _ = tx.send((
                    System::current(),
                    arbiters,
                    std::thread::current().id(),
                    sys,
                ));
                if let Err(e) = runner.run() {
                    tracing::error!(error = %e, "actix system ended with an error");
                }
            })
            .map_err(|e| NodeError::Threads(e.to_string()))?;
        let (system, arbiters, sys_id, sys_arbiter) = rx
            .recv()
            .map_err(|e| NodeError::Threads(format!("system thread died: {e}")))?;
        let handles: Vec<_> = arbiters.iter().map(Arbiter::handle).collect();
        // Learn the arbiters' thread ids, so shutdown can refuse to join
        // itself, and give each its arbiter id (locality-aware routing).
        let homes: Vec<u32> = (0..n).map(|_| home::new_arbiter_id()).collect();
        let (id_tx, id_rx) = std::sync::mpsc::channel();
        for (h, &home_id) in handles.iter().zip(&homes) {
            let id_tx = id_tx.clone();
            h.spawn_fn(move || {
                home::set_current(home_id);
                let _ = id_tx.send(std::thread::current().id());
            });
        }
        drop(id_tx);
        let mut ids: Vec<_> = id_rx.iter().take(n).collect();
        // Each arbiter sweeps its own deadline wheel, so an ask polled there
        // registers its deadline without a lock.
        for h in &handles {
            h.spawn(crate::deadline::run_local_sweeper(None));
        }
        ids.push(sys_id);

        let shared = self.shared(
            Exec::Arbiters {
                handles: handles.clone(),
                ids: homes.clone(),
                next: AtomicUsize::new(0),
                supervisors: sys_arbiter.clone(),
            },
            n + 2,
            listener.as_deref(),
        )?;
        if let Some(r) = &shared.remote {
            let tasks = remoting_tasks(r, &shared, listener, self.seed_discovery());
            handles[0].spawn(tasks);
        }
        let sweeper_stop = Arc::new(AtomicBool::new(false));
        let sweeper = {
            let shared = shared.clone();
            let stop = sweeper_stop.clone();
            std::thread::Builder::new()
                .name(format!("msa-{}-deadlines", self.name))
                .spawn(move || shared.deadlines.run_sweeper_thread(&stop))
                .map_err(|e| NodeError::Threads(e.to_string()))?
        };
        let threads = Threads {
            arbiters,
            system: Some((system, system_thread)),
            sweeper_stop,
            sweeper: Some(sweeper),
            ids,
        };
        let root = start_root(&shared, Placement::Arbiter(sys_arbiter.0, sys_arbiter.1));
        tracing::info!(node = %self.name, arbiters = n, "node started");
        Ok(Node::from_parts(shared, root, Some(threads)))
    }

    /// Starts the node on the calling thread's tokio `LocalSet` (an actix
    /// System, `LocalSet::run_until`, or a turmoil host): every actor runs on
    /// this one thread. For tests and deterministic simulation.
    ///
    /// # Errors
    /// [`NodeError::PanicAbort`], or [`NodeError::NoLocalSet`] when not
    /// called from inside a `LocalSet`.
    pub fn start_local(mut self) -> Result<Node, NodeError> {
        self.check_panic_strategy()?;
        let in_local_set = std::panic::catch_unwind(|| {
            drop(tokio::task::spawn_local(async {}));
        })
        .is_ok();
        if !in_local_set {
            return Err(NodeError::NoLocalSet);
        }
        let listener = self.bind()?;
        let shared = self.shared(Exec::Local, 1, listener.as_deref())?;
        let sweeper_stop = Arc::new(AtomicBool::new(false));
        actix_rt::spawn(crate::deadline::run_local_sweeper(Some(
            sweeper_stop.clone(),
        )));
        if let Some(r) = &shared.remote {
            actix_rt::spawn(remoting_tasks(r, &shared, listener, self.seed_discovery()));
        }
        {
            let shared = shared.clone();
            let stop = sweeper_stop.clone();
            actix_rt::spawn(async move { shared.deadlines.run_sweeper_task(&stop).await });
        }
        let threads = Threads {
            arbiters: Vec::new(),
            system: None,
            sweeper_stop,
            sweeper: None,
            ids: Vec::new(),
        };
        let root = start_root(&shared, Placement::Local);
        Ok(Node::from_parts(shared, root, Some(threads)))
    }
}

fn start_root(shared: &Arc<NodeShared>, placement: Placement) -> Addr<Supervisor> {
    let (tx, rx) = actix::dev::channel::channel::<Supervisor>(1024);
    let addr = Addr::new(tx);
    let s = shared.clone();
    launch(
        &placement,
        move || Supervisor::new(crate::supervision::Kind::Root, s, None, None),
        rx,
        None::<ExitNotice>,
    );
    addr
}

/// The remoting tasks of a node: accept, discover and dial seeds, re-advertise the service
/// table after every local registry change.
fn remoting_tasks(
    r: &Arc<Remoting>,
    shared: &Arc<NodeShared>,
    listener: Option<Box<dyn Listener>>,
    discovery: Option<Arc<dyn Discovery>>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let r = r.clone();
    let mut watch = shared.registry.watch();
    // A topic gaining its first local subscriber or losing its last one
    // changes what this node advertises beside its service table.
    let weak = Arc::downgrade(&r);
    shared.registry.topics.set_on_change(Box::new(move || {
        if let Some(r) = weak.upgrade() {
            r.publish_table();
        }
    }));
    async move {
        actix_rt::spawn(r.clone().membership_loop());
        if let Some(l) = listener {
            actix_rt::spawn(r.clone().accept_loop(l));
        }
        if let Some(d) = discovery {
            actix_rt::spawn(r.clone().seed_loop(d));
        }
        while let Some(ev) = watch.next().await {
            use crate::registry::RegistryEvent as E;
            if matches!(
                ev,
                E::Added { .. }
                    | E::Removed { .. }
                    | E::Restarted { .. }
                    | E::Failed { .. }
                    | E::Lagged { .. }
            ) {
                r.publish_table();
            }
        }
    }
}
