//! The crate's error enums.

use std::time::Duration;

/// Why a call through a [`ServiceRef`](crate::ServiceRef) failed.
///
/// Every variant names the service so that a log line alone says what broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// No service of that name was ever spawned on this node.
    #[error("unknown service `{service}`")]
    UnknownService {
        /// The name asked for.
        service: String,
    },
    /// The service exists but did not register this message type with `handles::<M>()`.
    #[error("service `{service}` does not handle message `{message}`")]
    UnhandledMessage {
        /// The service.
        service: String,
        /// The Rust type name of the message.
        message: &'static str,
    },
    /// The service exists but has no live instance right now (restarting, or failed).
    #[error("service `{service}` has no live instance")]
    NoInstance {
        /// The service.
        service: String,
    },
    /// The instance that held the call died (crashed or was stopped) before it replied.
    #[error("the instance of `{service}` handling the call died before replying")]
    InstanceDied {
        /// The service.
        service: String,
    },
    /// The call did not complete before its deadline.
    #[error("call to `{service}` timed out after {after:?}")]
    Timeout {
        /// The service.
        service: String,
        /// The timeout that applied to the call.
        after: Duration,
    },
    /// The handler's detached future panicked; the instance itself is unharmed.
    #[error("handler of `{service}` panicked: {message}")]
    HandlerPanicked {
        /// The service.
        service: String,
        /// The panic message.
        message: String,
    },
    /// The node holding the instance left or was declared down, or the
    /// connection to it broke, before the call completed.
    #[error("node `{node}` is down")]
    NodeDown {
        /// The remote node.
        node: String,
    },
    /// The outbound queue to the remote node is full; the message was not sent.
    #[error("outbound queue to node `{node}` is full")]
    Overloaded {
        /// The remote node.
        node: String,
    },
    /// The message (or its result) could not be encoded or decoded for the wire.
    #[error("codec failure calling `{service}`: {reason}")]
    Codec {
        /// The service.
        service: String,
        /// What failed.
        reason: String,
    },
    /// The chosen instance runs on another node and the message cannot be
    /// encoded for it: the type is local-only (not a `RemoteMessage`), or a
    /// `RemoteMessage` implemented by hand rather than with
    /// `#[derive(RemoteMessage)]` and not handled by a service on this node.
    #[error("message `{message}` cannot be sent to another node: derive `RemoteMessage` for it (a local-only message reaches only instances on its own node)")]
    NotRegistered {
        /// The Rust type name of the message.
        message: &'static str,
    },
    /// The node is shutting down: new calls are refused, and calls still queued
    /// or running at the shutdown deadline fail with this error.
    #[error("node is shutting down")]
    ShuttingDown,
    /// A JSON call's body (see `Node::call_json`) was refused by the node
    /// that decoded it: not JSON, not the message's shape, or a message the
    /// service does not handle there.
    #[error("JSON call to `{service}` refused: {error}")]
    Json {
        /// The service.
        service: String,
        /// What was wrong with the body.
        error: JsonError,
    },
    /// A bincode call's payload (see `Node::call_bincode`) was refused by
    /// the node that decoded it: not the message's bincode encoding, or a
    /// message the service does not handle there.
    #[error("bincode call to `{service}` refused: {error}")]
    Bincode {
        /// The service.
        service: String,
        /// What was wrong with the payload.
        error: BincodeError,
    },
    /// Every instance of the service runs on nodes this node cannot reach
    /// itself (a partial cut: the member is alive for the cluster, but the
    /// connection from here is silent or refused). The call fails at once;
    /// it is never relayed through a third node (docs/cluster.md,
    /// "Reachability").
    #[error("node `{node}` is unreachable from this node")]
    Unreachable {
        /// The unreachable node that runs the service.
        node: String,
    },
    /// The service is not known here yet, and the service tables of some
    /// members this node knows have not arrived: it may run there. Retry
    /// shortly (a node that just joined hears the tables within about a
    /// second); see `Node::tables_pending`.
    #[error("service `{service}` is not known yet: the service tables of {} have not arrived", nodes.join(", "))]
    TablesPending {
        /// The service.
        service: String,
        /// The members whose tables are still missing, sorted.
        nodes: Vec<String>,
    },
    /// The node named was downed by the split-brain resolver: it was on the
    /// losing side of a partition and serves no calls from other nodes (and
    /// reaches none) until it rejoins after the heal. Reported at once, both
    /// by the downed node to its local callers of remote services and to
    /// callers from other nodes (docs/cluster.md, "Split-brain resolver").
    #[error(
        "node `{node}` is downed by the split-brain resolver (the losing side of a partition)"
    )]
    Downed {
        /// The downed node.
        node: String,
    },
    /// The node named is still joining the cluster (Akka's `Joining`): it
    /// was started (or came back after the split-brain resolver downed it)
    /// and the members it sees have not all admitted it yet. Until it is
    /// `up` it serves no calls from other nodes, reaches none and owns no
    /// key of a keyed service; its own callers get this at once, as do
    /// callers from other nodes. A node restarted into a partition stays
    /// joining until the heal (docs/cluster.md, "Joining").
    #[error(
        "node `{node}` is still joining the cluster (not admitted by every member it sees yet)"
    )]
    Joining {
        /// The joining node.
        node: String,
    },
    /// The service's access rule for this message does not admit the call's
    /// caller (its identity's roles, or its calling service): refused by the
    /// instance that would serve it, before any handler ran (docs/security.md,
    /// "Access rules at each service"). The gateway answers 403.
    #[error("`{service}` refused the call: {reason}")]
    PermissionDenied {
        /// The service.
        service: String,
        /// Which rule the caller did not meet, and who the caller was.
        reason: String,
    },
    /// The remote node reported a failure this node's version does not know
    /// (a newer peer added it): its wire code and its text, as sent.
    #[error("calling `{service}`, the remote node reported an unrecognised failure (wire code {code}): {text}")]
    Unrecognized {
        /// The service.
        service: String,
        /// The failure's wire code (see `docs/cluster.md`).
        code: u16,
        /// The remote node's description of the failure.
        text: String,
    },
}

impl CallError {
    /// Whether the call can be retried without risk of running a handler
    /// twice: `true` only where the message certainly did **not** reach a
    /// handler. It does not promise that a retry will succeed (an unknown
    /// service stays unknown); it says that retrying cannot duplicate work.
    ///
    /// | variant | retryable | why |
    /// |---|---|---|
    /// | `UnknownService` | yes | refused before any instance was chosen (locally or by the remote node) |
    /// | `UnhandledMessage` | yes | refused before any instance was chosen |
    /// | `NoInstance` | yes | no instance to deliver to |
    /// | `Overloaded` | yes | the outbound queue was full: the frame was never sent |
    /// | `NotRegistered` | yes | the message could not be encoded: nothing was sent |
    /// | `Json` | yes | the body was refused before any handler ran (a retry with the same body fails the same way) |
    /// | `Bincode` | yes | the payload was refused before any handler ran |
    /// | `Unreachable` | yes | refused before anything was sent: no reachable node runs the service |
    /// | `TablesPending` | yes | refused before anything was sent: the service is not known here yet |
    /// | `Downed` | yes | refused before any handler: the node is downed by the split-brain resolver |
    /// | `Joining` | yes | refused before any handler: the node is still joining the cluster |
    /// | `PermissionDenied` | yes | refused before any handler by the service's access rule (a retry with the same caller fails the same way) |
    /// | `InstanceDied` | no | the instance may have died while handling it |
    /// | `Timeout` | no | the handler may be running, or may have run |
    /// | `HandlerPanicked` | no | the handler ran (its future panicked) |
    /// | `Codec` | no | may be the reply that failed to encode or decode, after the handler ran |
    /// | `NodeDown` | no | cannot tell a frame never sent from one sent before the connection broke (a remote `ShuttingDown` also arrives as `NodeDown`) |
    /// | `ShuttingDown` | no | also reported for calls queued or running at the shutdown deadline |
    /// | `Unrecognized` | no | nothing is known about it |
    ///
    /// # Examples
    /// ```
    /// use msa_runtime::CallError;
    /// let full = CallError::Overloaded { node: "b".into() };
    /// assert!(full.is_retryable());
    /// let died = CallError::InstanceDied { service: "kv".into() };
    /// assert!(!died.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        // No `_` arm: a new variant must decide here.
        match self {
            Self::UnknownService { .. }
            | Self::UnhandledMessage { .. }
            | Self::NoInstance { .. }
            | Self::Overloaded { .. }
            | Self::NotRegistered { .. }
            | Self::Json { .. }
            | Self::Bincode { .. }
            | Self::Unreachable { .. }
            | Self::TablesPending { .. }
            | Self::Downed { .. }
            | Self::Joining { .. }
            | Self::PermissionDenied { .. } => true,
            Self::InstanceDied { .. }
            | Self::Timeout { .. }
            | Self::HandlerPanicked { .. }
            | Self::Codec { .. }
            | Self::NodeDown { .. }
            | Self::ShuttingDown
            | Self::Unrecognized { .. } => false,
        }
    }
}

/// Why a JSON call could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// No message type with this wire name is registered on this node.
    #[error("unknown message `{message}`")]
    UnknownMessage {
        /// The wire name asked for.
        message: String,
    },
    /// The body is not JSON.
    #[error("malformed JSON: {reason}")]
    MalformedJson {
        /// serde_json's description, with line and column.
        reason: String,
    },
    /// The body is JSON but does not fit the message type.
    #[error("body does not fit `{message}` at `{path}`: {reason}")]
    BadBody {
        /// The wire name of the message.
        message: String,
        /// Where in the body (`.` for the whole body, `items[0].qty` for a field).
        path: String,
        /// What is wrong there (a missing field, a wrong type, ...).
        reason: String,
    },
}

/// Why a bincode call could not be made (see `Node::call_bincode`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BincodeError {
    /// No message type with this wire name is handled by the service (on
    /// this node, or on the node the call was forwarded to).
    #[error("unknown message `{message}`")]
    UnknownMessage {
        /// The wire name asked for.
        message: String,
    },
    /// The payload is not the message's bincode encoding (bincode 2,
    /// standard configuration).
    #[error("malformed bincode for `{message}`: {reason}")]
    Malformed {
        /// The wire name of the message.
        message: String,
        /// The decoder's description.
        reason: String,
    },
}

/// Why a service or supervisor could not be spawned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// A service with this name already runs on this node.
    #[error(
        "a service named `{service}` already exists on this node (under supervisor `{owner}`)"
    )]
    DuplicateService {
        /// The name.
        service: String,
        /// Who runs the service that has the name: the name of its
        /// supervision tree, or `root` for a service spawned with
        /// `Node::spawn`.
        owner: String,
    },
    /// Two different message types claim the same wire name.
    #[error("wire name `{name}` is claimed by both `{first}` and `{second}`")]
    DuplicateWireName {
        /// The wire name (`RemoteMessage::NAME`).
        name: &'static str,
        /// The type that registered it first.
        first: &'static str,
        /// The type that tried to register it again.
        second: &'static str,
    },
    /// A message registered with `handles` (so it may cross nodes) has a
    /// type the wire codec cannot carry.
    #[error("message `{message}` ({type_name}) cannot cross nodes: {reason}; use `handles_local` if it never leaves the node")]
    NotWireSafe {
        /// The wire name.
        message: &'static str,
        /// The Rust type.
        type_name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// `instances(0)` was requested.
    #[error("service `{service}` asks for zero instances; at least one is needed")]
    ZeroInstances {
        /// The service.
        service: String,
    },
    /// The service name is empty or contains characters outside `[A-Za-z0-9._-]`.
    #[error("invalid service name `{service}`: use 1-128 characters from [A-Za-z0-9._-]")]
    InvalidName {
        /// The rejected name.
        service: String,
    },
    /// Keyed routing was chosen but no message was registered with `handles_keyed`.
    #[error("service `{service}` uses keyed routing but registers no keyed message")]
    NoKeyedMessage {
        /// The service.
        service: String,
    },
    /// A restart intensity that cannot bound restarts: a period under
    /// [`Intensity::MIN_PERIOD`](crate::Intensity::MIN_PERIOD) (OTP refuses
    /// a period of 0).
    #[error("invalid restart intensity for `{owner}`: {reason}")]
    InvalidIntensity {
        /// The service or supervisor whose intensity is invalid.
        owner: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The supervisor gave up before the child became ready.
    #[error("`{child}` failed to start: {reason}")]
    StartFailed {
        /// The child that failed.
        child: String,
        /// Why.
        reason: String,
    },
    /// The node is shutting down and accepts no new services.
    #[error("node is shutting down")]
    ShuttingDown,
}

/// Why a task run on the node's arbiters ([`Node::spawn_task`](crate::Node::spawn_task),
/// [`Node::run`](crate::Node::run)) gave no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// The node was shutting down when the task was to start: it never ran.
    #[error("node is shutting down")]
    ShuttingDown,
    /// The node stopped (its arbiter ended) before the task finished; the
    /// task was dropped at an await point.
    #[error("the node stopped before the task finished")]
    Stopped,
    /// The task panicked (the arbiter goes on).
    #[error("the task panicked: {0}")]
    Panicked(String),
    /// No arbiter with that index (the node has `arbiters` of them).
    #[error("no arbiter {index}: the node has {arbiters}")]
    NoSuchArbiter {
        /// The index asked for.
        index: usize,
        /// How many arbiters the node has.
        arbiters: usize,
    },
    /// A local node (`start_local`) runs tasks on its own thread's
    /// `LocalSet`, and the caller is not on it.
    #[error("a local node's tasks must be spawned from the node's own thread")]
    NotOnNodeThread,
}

/// Why a node could not start or shut down.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The binary was built with `panic = "abort"`, which turns every handler
    /// panic into a process abort and so defeats fault containment.
    #[error(
        "msa needs panic = \"unwind\": this binary was built with panic = \"abort\", \
         so a panicking handler would kill the whole process; \
         set NodeBuilder::allow_panic_abort(true) to accept that"
    )]
    PanicAbort,
    /// Zero arbiters were requested.
    #[error("a node needs at least one arbiter")]
    ZeroArbiters,
    /// The actix system or an arbiter thread could not be started.
    #[error("could not start the node's threads: {0}")]
    Threads(String),
    /// `start_local` was called outside a tokio `LocalSet`.
    #[error("Node::start_local must run inside a tokio LocalSet (or an actix System)")]
    NoLocalSet,
    /// `shutdown` was called from one of the node's own arbiter threads, which
    /// it would then have to join.
    #[error("shutdown was called from one of the node's own threads")]
    ShutdownFromNodeThread,
    /// Listening on a non-loopback address needs a cluster secret or TLS.
    #[error("refusing to listen on {addr} without a cluster secret or TLS (only loopback is allowed without one)")]
    InsecureListen {
        /// The address asked for.
        addr: String,
    },
    /// The node's TLS certificate is not a node certificate for this
    /// node's name.
    #[error("TLS certificate does not fit node `{node}`: it is for {cert}")]
    TlsIdentity {
        /// This node's name.
        node: String,
        /// Who the certificate is for, as `remote::TlsIdentity` displays it
        /// (text, so that `error` does not import `remote`).
        cert: String,
    },
    /// The remoting listener could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        reason: String,
    },
    /// The node was already shut down.
    #[error("the node is already shut down")]
    AlreadyShutDown,
    /// The node would listen on an unspecified address (`0.0.0.0`, `::`)
    /// and advertise it, though no other node can dial it.
    #[error(
        "listening on {addr} needs an advertise address: other nodes cannot dial an \
         unspecified address (set NodeBuilder::advertise, `advertise` in the config or --advertise)"
    )]
    UnroutableListen {
        /// The listen address.
        addr: String,
    },
    /// The advertise address is not one other nodes can dial.
    #[error("cannot advertise {addr}: {reason}")]
    BadAdvertise {
        /// The address given.
        addr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The split-brain policy is invalid (a zero `stable_after`, a static
    /// quorum of size 0).
    #[error("invalid split-brain policy: {reason}")]
    BadSplitBrain {
        /// What is wrong with it.
        reason: String,
    },
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// How many variants `CallError` has; [`position`] must number them all.
    const VARIANTS: usize = 19;

    /// The variant's position: no `_` arm, so a new variant fails to compile
    /// here until it is numbered (and [`VARIANTS`] grows, and
    /// [`every_variant`] gets an example, or its test fails).
    fn position(e: &CallError) -> usize {
        match e {
            CallError::UnknownService { .. } => 0,
            CallError::UnhandledMessage { .. } => 1,
            CallError::NoInstance { .. } => 2,
            CallError::InstanceDied { .. } => 3,
            CallError::Timeout { .. } => 4,
            CallError::HandlerPanicked { .. } => 5,
            CallError::NodeDown { .. } => 6,
            CallError::Overloaded { .. } => 7,
            CallError::Codec { .. } => 8,
            CallError::NotRegistered { .. } => 9,
            CallError::ShuttingDown => 10,
            CallError::Unrecognized { .. } => 11,
            CallError::Json { .. } => 12,
            CallError::Unreachable { .. } => 13,
            CallError::TablesPending { .. } => 14,
            CallError::Downed { .. } => 15,
            CallError::PermissionDenied { .. } => 16,
            CallError::Joining { .. } => 17,
            CallError::Bincode { .. } => 18,
        }
    }

    /// One example of every variant, as a call of `service` with message
    /// type `message` and timeout `after` would report it.
    pub(crate) fn every_variant(
        service: &str,
        message: &'static str,
        after: Duration,
    ) -> Vec<CallError> {
        let s = || service.to_string();
        let all = vec![
            CallError::UnknownService { service: s() },
            CallError::UnhandledMessage {
                service: s(),
                message,
            },
            CallError::NoInstance { service: s() },
            CallError::InstanceDied { service: s() },
            CallError::Timeout {
                service: s(),
                after,
            },
            CallError::HandlerPanicked {
                service: s(),
                message: "boom in detached future".into(),
            },
            CallError::NodeDown {
                node: "far-away".into(),
            },
            CallError::Overloaded {
                node: "busy".into(),
            },
            CallError::Codec {
                service: s(),
                reason: "the reply does not decode".into(),
            },
            CallError::NotRegistered { message },
            CallError::ShuttingDown,
            CallError::Json {
                service: s(),
                error: JsonError::BadBody {
                    message: message.to_string(),
                    path: "items[0].qty".into(),
                    reason: "invalid type".into(),
                },
            },
            CallError::Json {
                service: s(),
                error: JsonError::MalformedJson {
                    reason: "EOF".into(),
                },
            },
            CallError::Json {
                service: s(),
                error: JsonError::UnknownMessage {
                    message: message.to_string(),
                },
            },
            CallError::Bincode {
                service: s(),
                error: BincodeError::Malformed {
                    message: message.to_string(),
                    reason: "unexpected end".into(),
                },
            },
            CallError::Bincode {
                service: s(),
                error: BincodeError::UnknownMessage {
                    message: message.to_string(),
                },
            },
            CallError::Unreachable { node: "c".into() },
            CallError::TablesPending {
                service: s(),
                nodes: vec!["b".into(), "c".into()],
            },
            CallError::Downed { node: "c".into() },
            CallError::PermissionDenied {
                service: s(),
                reason: "needs role admin".into(),
            },
            CallError::Joining { node: "c".into() },
            CallError::Unrecognized {
                service: s(),
                code: 999,
                text: "a failure from the future".into(),
            },
        ];
        let mut seen: Vec<usize> = all.iter().map(position).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, (0..VARIANTS).collect::<Vec<_>>(), "every variant");
        all
    }

    #[test]
    fn only_errors_raised_before_delivery_are_retryable() {
        let mut retryable: Vec<usize> = every_variant("kv", "M", Duration::from_secs(1))
            .iter()
            .filter(|e| e.is_retryable())
            .map(position)
            .collect();
        retryable.sort_unstable();
        retryable.dedup();
        // UnknownService, UnhandledMessage, NoInstance, Overloaded,
        // NotRegistered, Json (a refused body), Bincode (a refused payload),
        // Unreachable, TablesPending, Downed, PermissionDenied, Joining.
        assert_eq!(retryable, [0, 1, 2, 7, 9, 12, 13, 14, 15, 16, 17, 18]);
    }
}
