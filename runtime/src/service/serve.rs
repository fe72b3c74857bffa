//! The serving half of a message type's wire functions: how a local
//! instance serves a call that came from another node (a bincode frame) or
//! from a JSON caller. Recorded by `ServiceSpec::handles::<M>()` next to
//! the type's codec functions (`message::WireCodec`), which are all a
//! caller needs.
//!
//! Also what remoting gets instead of the node: [`NodeShared`] implements
//! [`LocalNode`], and a resolved (service, message) pair is a
//! [`ServedRoute`], remoting's [`InboundCall`].

use std::any::Any;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::{NodeShared, ServiceRef};
use crate::error::{BincodeError, CallError, JsonError};
use crate::json::{decode as decode_json, JsonBody, JsonReply};
use crate::message::{codec, RemoteMessage};
use crate::metadata::Metadata;
use crate::registry::{MessageType, Registry, ServiceEntry};
use crate::remote::frame::WireError;
use crate::remote::inbound::{Inbound, InboundCall, LocalNode, ServeDeadline, TellRun};
use crate::remote::wire::{BoxFuture, WireReply};
use crate::remote::wire_error::{WireBincodeError, WireJsonError};

/// Serves an inbound ask on a resolved route: the future yields the
/// encoded reply.
type ServeAsk = fn(
    &Arc<ServedRoute>,
    &[u8],
    Metadata,
    ServeDeadline,
) -> Result<BoxFuture<WireReply>, WireError>;

/// Serves an inbound tell on a resolved route: `Ok(None)` once queued,
/// `Ok(Some(_))` when it waits for mailbox room (the future queues it).
type ServeTell = fn(
    &Arc<ServedRoute>,
    &[u8],
    Metadata,
) -> Result<Option<BoxFuture<Result<(), CallError>>>, WireError>;

/// Serves a run of inbound tells on a resolved route (see
/// [`InboundCall::tell_run`]).
type ServeTellRun = fn(
    &Arc<ServedRoute>,
    &mut dyn TellRun,
) -> Result<Option<BoxFuture<Result<(), CallError>>>, WireError>;

/// Serves one JSON call of one message type.
pub(crate) type ServeJson =
    fn(ServiceRef, JsonBody<'_>, Metadata, Option<Duration>) -> Result<JsonReply, JsonError>;

/// Serves one bincode call of one message type (its bincode bytes, named
/// by wire name): the reply future yields the reply's bincode bytes.
pub(crate) type ServeBincode =
    fn(ServiceRef, &[u8], Metadata, Option<Duration>) -> Result<JsonReply, BincodeError>;

/// How a local instance serves one message type for outside callers
/// (stored type-erased in the registry's [`MessageType::serve`]).
#[derive(Clone, Copy)]
pub(crate) struct ServeFns {
    ask: ServeAsk,
    tell: ServeTell,
    tell_run: ServeTellRun,
    json: ServeJson,
    bincode: ServeBincode,
}

/// The serve functions of `M`.
pub(crate) fn serve_fns<M: RemoteMessage>() -> ServeFns {
    ServeFns {
        ask: serve_ask::<M>,
        tell: serve_tell::<M>,
        tell_run: serve_tell_run::<M>,
        json: serve_json::<M>,
        bincode: serve_bincode::<M>,
    }
}

impl ServeFns {
    /// Type-erased, for the registry (which sits below the serving layer).
    pub(crate) fn erased(self) -> Arc<dyn Any + Send + Sync> {
        Arc::new(self)
    }

    /// The serve functions a message type recorded, if it crosses nodes.
    fn of(t: &MessageType) -> Option<Self> {
        t.serve
            .as_deref()
            .and_then(|f| f.downcast_ref::<ServeFns>())
            .copied()
    }
}

fn decode<M: RemoteMessage>(bytes: &[u8]) -> Result<M, WireError> {
    codec::decode(bytes).map_err(|e| WireError::Codec {
        reason: e.to_string(),
    })
}

fn serve_ask<M: RemoteMessage>(
    inbound: &Arc<ServedRoute>,
    bytes: &[u8],
    meta: Metadata,
    deadline: ServeDeadline,
) -> Result<BoxFuture<Result<Vec<u8>, WireError>>, WireError> {
    let msg: M = decode(bytes)?;
    let started = std::time::Instant::now();
    // Queued now, before the connection spawns what awaits the reply
    // (`ServiceRef::queue_inbound_ask`).
    let queued = inbound.svc.queue_inbound_ask(
        inbound.index,
        msg,
        meta,
        deadline.deadline_ms,
        deadline.timeout,
    );
    let inbound = inbound.clone();
    Ok(Box::pin(async move {
        let svc = &inbound.svc;
        let r = svc.await_inbound(queued).await;
        svc.record_ask_latency(started.elapsed());
        match r {
            Ok(v) => codec::encode(&v).map_err(|e| WireError::Codec {
                reason: e.to_string(),
            }),
            Err(e) => Err(WireError::from_call(&e)),
        }
    }))
}

fn serve_tell<M: RemoteMessage>(
    inbound: &Arc<ServedRoute>,
    bytes: &[u8],
    meta: Metadata,
) -> Result<Option<BoxFuture<Result<(), CallError>>>, WireError> {
    let msg: M = decode(bytes)?;
    match inbound.svc.tell_inbound(inbound.index, msg, meta) {
        Ok(None) => Ok(None),
        Ok(Some(full)) => {
            let inbound = inbound.clone();
            Ok(Some(Box::pin(
                async move { inbound.svc.wait_tell(full).await },
            )))
        }
        Err(e) => Err(WireError::from_call(&e)),
    }
}

fn serve_tell_run<M: RemoteMessage>(
    inbound: &Arc<ServedRoute>,
    run: &mut dyn TellRun,
) -> Result<Option<BoxFuture<Result<(), CallError>>>, WireError> {
    let Some(first) = run.next_payload() else {
        return Ok(None);
    };
    let first: M = decode(first)?;
    let mut more = || loop {
        match decode::<M>(run.next_payload()?) {
            Ok(m) => return Some(m),
            Err(e) => {
                tracing::debug!(service = %inbound.svc.name(), message = M::NAME, error = ?e, "remote tell not delivered");
            }
        }
    };
    match inbound
        .svc
        .tell_inbound_run(inbound.index, first, &mut more)
    {
        Ok(None) => Ok(None),
        Ok(Some(wait)) => {
            let inbound = inbound.clone();
            Ok(Some(Box::pin(
                async move { inbound.svc.wait_run(wait).await },
            )))
        }
        Err(e) => Err(WireError::from_call(&e)),
    }
}

fn serve_json<M: RemoteMessage>(
    svc: ServiceRef,
    body: JsonBody<'_>,
    meta: Metadata,
    timeout: Option<Duration>,
) -> Result<JsonReply, JsonError> {
    let msg: M = decode_json(M::NAME, body)?;
    Ok(ask_encoded(svc, msg, meta, timeout, |v| {
        serde_json::to_vec(v).map_err(|e| format!("result of `{}` is not JSON: {e}", M::NAME))
    }))
}

fn serve_bincode<M: RemoteMessage>(
    svc: ServiceRef,
    body: &[u8],
    meta: Metadata,
    timeout: Option<Duration>,
) -> Result<JsonReply, BincodeError> {
    let msg: M = codec::decode(body).map_err(|e| BincodeError::Malformed {
        message: M::NAME.to_string(),
        reason: e.to_string(),
    })?;
    Ok(ask_encoded(svc, msg, meta, timeout, |v| {
        codec::encode(v).map_err(|e| format!("result of `{}` does not encode: {e}", M::NAME))
    }))
}

/// The reply of a JSON or bincode call of a decoded `msg`: asks `svc` (with
/// `meta`, and `timeout` when given), records the ask's latency, and
/// encodes the result with `encode` (whose error is the reason of a
/// [`CallError::Codec`]).
fn ask_encoded<M: RemoteMessage>(
    svc: ServiceRef,
    msg: M,
    meta: Metadata,
    timeout: Option<Duration>,
    encode: fn(&M::Result) -> Result<Vec<u8>, String>,
) -> JsonReply {
    Box::pin(async move {
        let mut ask = svc.ask(msg).metadata(meta);
        if let Some(t) = timeout {
            ask = ask.timeout(t);
        }
        let started = std::time::Instant::now();
        let v = ask.await;
        svc.record_ask_latency(started.elapsed());
        encode(&v?).map_err(|reason| CallError::Codec {
            service: svc.name().to_string(),
            reason,
        })
    })
}

/// The serve functions of the message type of `entry` whose wire name is
/// `message`; `None` when the service has none of that name.
fn served(entry: &ServiceEntry, message: &str) -> Option<ServeFns> {
    entry
        .types
        .iter()
        .filter(|t| t.wire_name == Some(message))
        .find_map(ServeFns::of)
}

/// How a local instance of `entry` serves a bincode call of the message
/// named `message`; `None` when no message type of the service has that
/// wire name.
pub(crate) fn bincode_server(entry: &ServiceEntry, message: &str) -> Option<ServeBincode> {
    served(entry, message).map(|f| f.bincode)
}

/// How a local instance of `entry` serves a JSON call of the message
/// named `message` (decoded by this node's own registration); `None` when
/// no message type of the service has that wire name.
pub(crate) fn json_server(entry: &ServiceEntry, message: &str) -> Option<ServeJson> {
    served(entry, message).map(|f| f.json)
}

/// A (service, message) pair resolved for calls from other nodes: the
/// service (reaching local instances only), the message type's index in
/// its entry, and its serve functions.
#[derive(Debug)]
pub(crate) struct ServedRoute {
    /// The node, for its refusal of remote calls.
    node: Arc<NodeShared>,
    svc: ServiceRef,
    index: usize,
    fns: ServeFns,
}

impl std::fmt::Debug for ServeFns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServeFns")
    }
}

/// An anonymous call from another node (nothing travels with it, so the
/// instance would treat it as a local one): refused here when the message
/// has an access rule, counted and logged.
fn refuse_anonymous(entry: &ServiceEntry, index: usize) -> Result<(), WireError> {
    match entry.rule(index) {
        None => Ok(()),
        Some(rule) => {
            let ty = &entry.types[index];
            let message = ty.wire_name.unwrap_or(ty.type_name);
            let meta = Metadata::new();
            crate::access::check(rule, &meta, entry.name(), message).map_err(|d| {
                crate::stats::ServiceStats::inc(&entry.stats.denied);
                WireError::PermissionDenied { reason: d.reason }
            })
        }
    }
}

impl ServedRoute {
    /// [`refuse_anonymous`] for this route's message.
    fn check_anonymous(&self, meta: &Metadata) -> Result<(), WireError> {
        if meta.has_extra() {
            // Checked by the instance, against what travels with it.
            return Ok(());
        }
        match self.svc.cached_entry() {
            Some(entry) => refuse_anonymous(entry, self.index),
            None => Ok(()),
        }
    }

    fn resolve(node: Arc<NodeShared>, service: &str, message: &str) -> Result<Self, WireError> {
        let entry = node
            .registry
            .get(service)
            .ok_or(WireError::UnknownService)?;
        let (index, fns) = entry
            .types
            .iter()
            .enumerate()
            .filter(|(_, t)| t.wire_name == Some(message))
            .find_map(|(i, t)| ServeFns::of(t).map(|f| (i, f)))
            .ok_or_else(|| WireError::UnhandledMessage {
                message: message.to_string(),
            })?;
        Ok(Self {
            node: node.clone(),
            svc: ServiceRef::local_only(node, entry),
            index,
            fns,
        })
    }
}

impl InboundCall for ServedRoute {
    fn is_current(&self) -> bool {
        self.svc.cached_entry().is_some_and(|e| !e.is_replaced())
    }

    fn ask(
        self: Arc<Self>,
        payload: &[u8],
        meta: Metadata,
        deadline: ServeDeadline,
    ) -> Result<BoxFuture<WireReply>, WireError> {
        if self.node.refusing_remote.load(Ordering::Acquire) {
            return Err(WireError::ShuttingDown);
        }
        self.check_anonymous(&meta)?;
        (self.fns.ask)(&self, payload, meta, deadline)
    }

    fn tell(
        self: Arc<Self>,
        payload: &[u8],
        meta: Metadata,
    ) -> Result<Option<BoxFuture<Result<(), CallError>>>, WireError> {
        if self.node.refusing_remote.load(Ordering::Acquire) {
            return Err(WireError::ShuttingDown);
        }
        self.check_anonymous(&meta)?;
        (self.fns.tell)(&self, payload, meta)
    }

    fn tell_run(
        self: Arc<Self>,
        run: &mut dyn TellRun,
    ) -> Result<Option<BoxFuture<Result<(), CallError>>>, WireError> {
        if self.node.refusing_remote.load(Ordering::Acquire) {
            return Err(WireError::ShuttingDown);
        }
        // Plain tells carry nothing: refused here if the message has an
        // access rule, as one anonymous tell is.
        self.check_anonymous(&Metadata::default())?;
        (self.fns.tell_run)(&self, run)
    }
}

impl LocalNode for NodeShared {
    fn registry(&self) -> &Registry {
        &self.registry
    }

    fn default_timeout(&self) -> Duration {
        self.default_timeout
    }

    fn deadline_after(&self, d: Duration) -> u64 {
        self.deadlines.clock().after(d)
    }

    fn identity_verifier(&self) -> Option<&dyn crate::access::IdentityVerifier> {
        self.verifier.as_deref()
    }

    fn resolve(self: Arc<Self>, service: &str, message: &str) -> Result<Arc<Inbound>, WireError> {
        Ok(Arc::new(ServedRoute::resolve(self, service, message)?))
    }

    fn serve_json(
        self: Arc<Self>,
        service: &str,
        message: &str,
        meta: Metadata,
        body: &[u8],
        timeout: Duration,
    ) -> Result<JsonReply, WireError> {
        let unknown = WireError::Json(WireJsonError::UnknownMessage);
        let fns = forwarded_route(&self, service, message, &meta, unknown)?;
        (fns.json)(
            ServiceRef::new(self, service),
            JsonBody::Bytes(body),
            meta,
            Some(timeout),
        )
        .map_err(|e| WireError::Json(WireJsonError::from_json_error(&e)))
    }

    fn serve_bincode(
        self: Arc<Self>,
        service: &str,
        message: &str,
        meta: Metadata,
        body: &[u8],
        timeout: Duration,
    ) -> Result<JsonReply, WireError> {
        let unknown = WireError::Bincode(WireBincodeError::UnknownMessage);
        let fns = forwarded_route(&self, service, message, &meta, unknown)?;
        (fns.bincode)(ServiceRef::new(self, service), body, meta, Some(timeout))
            .map_err(|e| WireError::Bincode(WireBincodeError::from_bincode_error(&e)))
    }
}

/// The checks a forwarded call (JSON or bincode from a gateway) passes
/// before its payload is decoded here, by the service's own registration,
/// and called as any ask is (a keyed service routes it on to the instance
/// that owns its key, wherever that is): the node is not refusing remote
/// calls, the service handles the message (`unknown` when it does not) and
/// an anonymous caller may call it. Returns the message's serving functions.
fn forwarded_route(
    node: &Arc<NodeShared>,
    service: &str,
    message: &str,
    meta: &Metadata,
    unknown: WireError,
) -> Result<ServeFns, WireError> {
    if node.refusing_remote.load(Ordering::Acquire) {
        return Err(WireError::ShuttingDown);
    }
    let route = ServedRoute::resolve(node.clone(), service, message).map_err(|e| match e {
        WireError::UnhandledMessage { .. } => unknown,
        other => other,
    })?;
    route.check_anonymous(meta)?;
    Ok(route.fns)
}
