//! Access rules enforced by the instance that serves a call, and the
//! verifier a node checks callers' tokens with.
//!
//! A service declares, per message type or as a default for all of them,
//! which roles or which calling services may send it ([`Access`],
//! [`Rule`]). A message without a rule (and no default) stays open. The
//! instance that serves a call checks the rule against the call's
//! [`Metadata`](crate::Metadata): its caller's [`Identity`] (roles) and the
//! name of the calling service. Which calls are checked, and what a node
//! believes of an identity that arrives from another node, is described in
//! docs/security.md ("Access rules at each service").
//!
//! Hand-written rather than a policy engine (casbin, cedar): a rule is two
//! short lists compared against two short lists on the call path, and a
//! general engine would cost more per call than the call itself.

use std::any::TypeId;
use std::fmt;
use std::sync::Arc;

use crate::metadata::{Identity, Metadata};

/// Who may send a message: callers holding one of `roles`, or calls made by
/// one of `services` (from a handler of that service). Either list may be
/// empty; a rule with both empty admits nobody.
///
/// # Examples
/// ```
/// use msa_runtime::{access::Rule, Identity, Metadata};
/// let rule = Rule::roles(["admin"]).or_services(["orders"]);
/// let admin = Metadata::new().with_identity(Identity::new("root", ["admin"]));
/// let customer = Metadata::new().with_identity(Identity::new("c", ["customer"]));
/// assert!(rule.admits(&admin));
/// assert!(!rule.admits(&customer));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    roles: Vec<String>,
    services: Vec<String>,
}

impl Rule {
    /// Callers holding any of `roles`.
    pub fn roles<I, R>(roles: I) -> Self
    where
        I: IntoIterator<Item = R>,
        R: Into<String>,
    {
        Self::default().or_roles(roles)
    }

    /// Calls made by any of `services` (from one of their handlers).
    pub fn services<I, R>(services: I) -> Self
    where
        I: IntoIterator<Item = R>,
        R: Into<String>,
    {
        Self::default().or_services(services)
    }

    /// Nobody (a message only local callers without an identity reach).
    pub fn nobody() -> Self {
        Self::default()
    }

    /// Also callers holding any of `roles`.
    pub fn or_roles<I, R>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = R>,
        R: Into<String>,
    {
        self.roles.extend(roles.into_iter().map(Into::into));
        self
    }

    /// Also calls made by any of `services`.
    pub fn or_services<I, R>(mut self, services: I) -> Self
    where
        I: IntoIterator<Item = R>,
        R: Into<String>,
    {
        self.services.extend(services.into_iter().map(Into::into));
        self
    }

    /// The roles the rule admits.
    pub fn role_names(&self) -> &[String] {
        &self.roles
    }

    /// The calling services the rule admits.
    pub fn service_names(&self) -> &[String] {
        &self.services
    }

    /// Whether a call with this metadata may pass: its identity holds one of
    /// the rule's roles, or its calling service is one of the rule's.
    pub fn admits(&self, meta: &Metadata) -> bool {
        let by_role = meta
            .identity()
            .is_some_and(|id| self.roles.iter().any(|r| id.has_role(r)));
        by_role
            || meta
                .caller_service()
                .is_some_and(|s| self.services.iter().any(|x| x == s))
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.roles.is_empty(), self.services.is_empty()) {
            (true, true) => f.write_str("nobody"),
            (false, true) => write!(f, "roles [{}]", self.roles.join(", ")),
            (true, false) => write!(f, "services [{}]", self.services.join(", ")),
            (false, false) => write!(
                f,
                "roles [{}] or services [{}]",
                self.roles.join(", "),
                self.services.join(", ")
            ),
        }
    }
}

/// A service's access rules: one per message type (by type or by wire
/// name) and an optional default for the messages without one.
///
/// # Examples
/// ```
/// use msa_runtime::access::{Access, Rule};
/// # #[derive(actix::Message)] #[rtype(result = "()")] struct Refund;
/// let access = Access::new()
///     .allow::<Refund>(Rule::roles(["admin"]).or_services(["orders"]))
///     .allow_named("shop.Charge", Rule::services(["orders"]))
///     .default_rule(Rule::roles(["customer", "admin"]));
/// # let _ = access;
/// ```
#[derive(Debug, Clone, Default)]
pub struct Access {
    by_type: Vec<(TypeId, Arc<Rule>)>,
    by_name: Vec<(String, Arc<Rule>)>,
    default: Option<Arc<Rule>>,
}

impl Access {
    /// No rules: every message open.
    pub fn new() -> Self {
        Self::default()
    }

    /// The rule of message type `M` (replacing an earlier one for it).
    pub fn allow<M: 'static>(mut self, rule: Rule) -> Self {
        let t = TypeId::of::<M>();
        self.by_type.retain(|(x, _)| *x != t);
        self.by_type.push((t, Arc::new(rule)));
        self
    }

    /// The rule of the message whose wire name is `wire_name` (how a
    /// config file names messages); a type's own rule ([`allow`](Self::allow))
    /// wins over it.
    pub fn allow_named(mut self, wire_name: impl Into<String>, rule: Rule) -> Self {
        let name = wire_name.into();
        self.by_name.retain(|(x, _)| *x != name);
        self.by_name.push((name, Arc::new(rule)));
        self
    }

    /// The rule of every message that has none of its own.
    pub fn default_rule(mut self, rule: Rule) -> Self {
        self.default = Some(Arc::new(rule));
        self
    }

    /// Adds `other`'s rules; its rules win where both name a message, and
    /// its default wins if it has one.
    pub fn merge(mut self, other: Access) -> Self {
        for (t, r) in other.by_type {
            self.by_type.retain(|(x, _)| *x != t);
            self.by_type.push((t, r));
        }
        for (n, r) in other.by_name {
            self.by_name.retain(|(x, _)| *x != n);
            self.by_name.push((n, r));
        }
        if other.default.is_some() {
            self.default = other.default;
        }
        self
    }

    /// Whether no rule is set.
    pub fn is_empty(&self) -> bool {
        self.by_type.is_empty() && self.by_name.is_empty() && self.default.is_none()
    }

    /// The rule of one message type: its own, by type, then by wire name,
    /// then the default; `None` when the message is open.
    pub(crate) fn rule_for(&self, t: TypeId, wire_name: Option<&str>) -> Option<Arc<Rule>> {
        let by_type = self.by_type.iter().find(|(x, _)| *x == t).map(|(_, r)| r);
        let by_name = || {
            wire_name
                .and_then(|w| self.by_name.iter().find(|(n, _)| n == w))
                .map(|(_, r)| r)
        };
        by_type.or_else(by_name).or(self.default.as_ref()).cloned()
    }

    /// Wire names named by [`allow_named`](Self::allow_named) that none of
    /// `known` is (a config typo: such a rule would guard nothing).
    pub(crate) fn unknown_names<'a>(&'a self, known: &[&str]) -> Vec<&'a str> {
        self.by_name
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| !known.contains(n))
            .collect()
    }
}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("token not accepted: {reason}")]
pub struct VerifyError {
    /// What was wrong (for logs; never sent to the caller).
    pub reason: String,
}

impl VerifyError {
    /// An error with this reason.
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

/// Verifies the signed token a call carries ([`Metadata::with_token`])
/// and says whose it is. A node given one ([`NodeBuilder::identity_verifier`](crate::NodeBuilder::identity_verifier))
/// believes the roles of an identity that arrives from another node only
/// when its token verifies; without one (or with a token that fails) the
/// identity keeps its subject and loses its roles.
///
/// `msa::host` implements it with the gateway's JWT settings
/// (`msa_gateway::JwtVerifier`); any embedder may implement its own.
pub trait IdentityVerifier: Send + Sync + fmt::Debug + 'static {
    /// The identity `token` proves, or why it proves none.
    ///
    /// # Errors
    /// [`VerifyError`] for a token that is malformed, badly signed,
    /// expired or otherwise not accepted.
    fn verify(&self, token: &str) -> Result<Identity, VerifyError>;
}

/// A refused call, as the serving node logs it and tells its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Denied {
    pub(crate) reason: String,
}

/// Checks `meta` against `rule` for a call of `message` to `service`; on a
/// refusal, logs both identities and says why.
pub(crate) fn check(
    rule: &Rule,
    meta: &Metadata,
    service: &str,
    message: &str,
) -> Result<(), Denied> {
    if rule.admits(meta) {
        return Ok(());
    }
    Err(denied(rule, meta, service, message))
}

#[cold]
fn denied(rule: &Rule, meta: &Metadata, service: &str, message: &str) -> Denied {
    let subject = meta.identity().map_or("-", |i| i.subject.as_str());
    let roles = meta
        .identity()
        .map(|i| i.roles.join(","))
        .unwrap_or_default();
    let caller_service = meta.caller_service().unwrap_or("-");
    tracing::warn!(
        service,
        message,
        subject,
        roles = %roles,
        caller_service,
        rule = %rule,
        "call refused by the service's access rule"
    );
    Denied {
        reason: format!(
            "`{message}` of `{service}` admits {rule}; the caller (subject `{subject}`, roles [{roles}], calling service `{caller_service}`) matches none"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct A;
    struct B;

    #[test]
    fn rules_admit_by_role_or_by_calling_service() {
        let rule = Rule::roles(["admin"]).or_services(["orders"]);
        let with = |id: Option<Identity>, svc: Option<&str>| {
            let mut m = Metadata::new();
            if let Some(id) = id {
                m = m.with_identity(id);
            }
            if let Some(s) = svc {
                m = m.with_caller_service(s);
            }
            m
        };
        assert!(rule.admits(&with(Some(Identity::new("a", ["admin"])), None)));
        assert!(rule.admits(&with(None, Some("orders"))));
        assert!(rule.admits(&with(
            Some(Identity::new("c", ["customer"])),
            Some("orders")
        )));
        assert!(!rule.admits(&with(Some(Identity::new("c", ["customer"])), None)));
        assert!(!rule.admits(&with(None, Some("payments"))));
        assert!(!rule.admits(&Metadata::new()));
        assert!(!Rule::nobody().admits(&with(Some(Identity::new("a", ["admin"])), Some("orders"))));
        let d = check(&rule, &with(None, Some("x")), "pay", "shop.Charge").unwrap_err();
        assert!(d.reason.contains("calling service `x`"), "{}", d.reason);
    }

    #[test]
    fn a_types_rule_wins_over_its_name_and_the_default() {
        let access = Access::new()
            .allow::<A>(Rule::roles(["a"]))
            .allow_named("m.A", Rule::roles(["named"]))
            .allow_named("m.C", Rule::roles(["c"]))
            .default_rule(Rule::roles(["d"]));
        let of = |t, n| access.rule_for(t, n).map(|r| r.role_names().to_vec());
        assert_eq!(of(TypeId::of::<A>(), Some("m.A")), Some(vec!["a".into()]));
        assert_eq!(of(TypeId::of::<B>(), Some("m.C")), Some(vec!["c".into()]));
        assert_eq!(of(TypeId::of::<B>(), None), Some(vec!["d".into()]));
        assert_eq!(Access::new().rule_for(TypeId::of::<A>(), None), None);
        assert_eq!(access.unknown_names(&["m.A"]), ["m.C"]);
        let merged = access.merge(Access::new().allow_named("m.C", Rule::roles(["z"])));
        assert_eq!(
            merged
                .rule_for(TypeId::of::<B>(), Some("m.C"))
                .map(|r| r.role_names().to_vec()),
            Some(vec!["z".to_string()])
        );
    }
}
