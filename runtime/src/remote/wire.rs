//! The wire form of a call's metadata, and the types the serving side's
//! futures share. A message type's codec functions are `message::WireCodec`;
//! how a local instance serves a type is the service layer's
//! (`service/serve.rs`).

use std::time::Duration;

use super::frame::WireError;
use super::inbound::LocalNode;
use crate::metadata::Metadata;

pub(crate) use super::transport::BoxFuture;

/// An encoded reply, or the remote failure.
pub(crate) type WireReply = Result<Vec<u8>, WireError>;

/// Conversions between [`Metadata`] and its wire form.
pub(crate) trait WireMetaExt {
    /// The metadata a call from node `peer` is served with: the identity's
    /// roles only from a token `node`'s verifier accepts (else the subject
    /// alone), the calling service only if `peer` hosts it, and the access
    /// check on whenever anything travels with the call (an anonymous call
    /// is checked by the route that serves it, without allocating). The
    /// deadline is the serving side's to set ([`ServeDeadline`]), from
    /// `timeout_ms`.
    fn verified_metadata(self, node: &dyn LocalNode, peer: &str) -> Metadata;
}

impl WireMetaExt for super::frame::WireMeta {
    fn verified_metadata(self, node: &dyn LocalNode, peer: &str) -> Metadata {
        let mut m = Metadata::new();
        if let Some((trace_id, parent_span_id)) = self.trace {
            m = m.with_trace(crate::TraceContext {
                trace_id,
                parent_span_id,
            });
        }
        if self.subject.is_some() || self.token.is_some() {
            m = with_verified_identity(m, self.subject, self.roles, self.token, node, peer);
        }
        if let Some(service) = self.service {
            let hosted = node
                .registry()
                .get(&service)
                .is_some_and(|e| e.hosted_by(peer));
            if hosted {
                m = m.with_caller_service(service);
            } else {
                tracing::debug!(
                    peer,
                    service = %service,
                    "calling service not hosted by the sending node: dropped"
                );
            }
        }
        if m.has_extra() {
            m = m.with_access_check();
        }
        m
    }
}

/// `m` with the identity a call from `peer` may claim: the token's, if the
/// node's verifier accepts it (the token is kept for the next hop); else
/// the claimed subject with no roles.
#[cold]
fn with_verified_identity(
    m: Metadata,
    subject: Option<String>,
    roles: Vec<String>,
    token: Option<String>,
    node: &dyn LocalNode,
    peer: &str,
) -> Metadata {
    let verified = match (token, node.identity_verifier()) {
        (Some(token), Some(v)) => match v.verify(&token) {
            Ok(id) => Some((id, token)),
            Err(e) => {
                tracing::debug!(peer, error = %e, "token of a call from another node not accepted: roles dropped");
                None
            }
        },
        _ => None,
    };
    match verified {
        Some((id, token)) => m.with_identity(id).with_token(token),
        None => {
            if !roles.is_empty() {
                tracing::debug!(
                    peer,
                    subject = subject.as_deref().unwrap_or(""),
                    "identity from another node without a verifiable token: its roles are dropped"
                );
            }
            match subject {
                Some(subject) => m.with_identity(crate::Identity {
                    subject,
                    roles: Vec::new(),
                }),
                None => m,
            }
        }
    }
}

/// The wire form of `meta`, with the time left before `timeout` runs out.
pub(crate) fn wire_meta(meta: &Metadata, timeout: Duration) -> super::frame::WireMeta {
    let left = meta.remaining().map_or(timeout, |r| r.min(timeout));
    super::frame::WireMeta {
        subject: meta.identity().map(|i| i.subject.clone()),
        roles: meta.identity().map(|i| i.roles.clone()).unwrap_or_default(),
        trace: meta.trace().map(|t| (t.trace_id, t.parent_span_id)),
        timeout_ms: Some(u64::try_from(left.as_millis()).unwrap_or(u64::MAX)),
        token: meta.token().map(str::to_string),
        service: meta.caller_service().map(str::to_string),
    }
}

/// The wire form of a tell's metadata: the deadline only if one was set.
pub(crate) fn wire_meta_tell(meta: &Metadata) -> super::frame::WireMeta {
    super::frame::WireMeta {
        subject: meta.identity().map(|i| i.subject.clone()),
        roles: meta.identity().map(|i| i.roles.clone()).unwrap_or_default(),
        trace: meta.trace().map(|t| (t.trace_id, t.parent_span_id)),
        timeout_ms: meta
            .remaining()
            .map(|r| u64::try_from(r.as_millis()).unwrap_or(u64::MAX)),
        token: meta.token().map(str::to_string),
        service: meta.caller_service().map(str::to_string),
    }
}
