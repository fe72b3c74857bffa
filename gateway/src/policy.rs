//! Role-based access: which roles may send which messages to which services.
//!
//! With auth on, the default is deny: a call passes only if some rule
//! matches both its service and its message and the caller holds one of
//! that rule's roles (or the rule lists `"*"`, any authenticated caller).

use msa_runtime::Identity;

use crate::config::PolicyRule;
use crate::error::GatewayError;

/// A name pattern: `*`, `prefix.*`, or an exact name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Any,
    Prefix(String),
    Exact(String),
}

impl Pattern {
    fn parse(s: &str) -> Result<Self, String> {
        if s == "*" {
            return Ok(Self::Any);
        }
        if s.is_empty() {
            return Err("empty pattern".into());
        }
        match s.strip_suffix('*') {
            Some(prefix) if !prefix.contains('*') => Ok(Self::Prefix(prefix.to_string())),
            _ if s.contains('*') => Err(format!(
                "`{s}`: `*` is only allowed alone or at the end (\"shop.*\")"
            )),
            _ => Ok(Self::Exact(s.to_string())),
        }
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Prefix(p) => name.starts_with(p.as_str()),
            Self::Exact(e) => name == e,
        }
    }
}

#[derive(Debug, Clone)]
struct Rule {
    service: Pattern,
    message: Pattern,
    roles: Vec<String>,
}

/// The compiled policy.
#[derive(Debug, Clone, Default)]
pub(crate) struct Policy {
    rules: Vec<Rule>,
}

impl Policy {
    /// Compiles the rules, rejecting bad patterns and rules without roles.
    pub(crate) fn new(rules: &[PolicyRule]) -> Result<Self, GatewayError> {
        let rules = rules
            .iter()
            .enumerate()
            .map(|(index, r)| {
                let bad = |reason: String| GatewayError::Policy { index, reason };
                if r.roles.is_empty() || r.roles.iter().any(|x| x.is_empty()) {
                    return Err(bad(
                        "`roles` must list at least one non-empty role (\"*\" = any caller)".into(),
                    ));
                }
                Ok(Rule {
                    service: Pattern::parse(&r.service).map_err(&bad)?,
                    message: Pattern::parse(&r.message).map_err(&bad)?,
                    roles: r.roles.clone(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { rules })
    }

    /// Whether `identity` may send `message` to `service`.
    pub(crate) fn allows(&self, identity: &Identity, service: &str, message: &str) -> bool {
        self.rules.iter().any(|r| {
            r.service.matches(service)
                && r.message.matches(message)
                && r.roles
                    .iter()
                    .any(|role| role == "*" || identity.has_role(role))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(service: &str, message: &str, roles: &[&str]) -> PolicyRule {
        PolicyRule {
            service: service.into(),
            message: message.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn rules_match_by_pattern_and_role() {
        let p = Policy::new(&[
            rule("orders", "shop.*", &["customer"]),
            rule("*", "*", &["admin"]),
            rule("echo", "echo.Ping", &["*"]),
        ])
        .unwrap();
        let customer = Identity::new("c", ["customer"]);
        let nobody = Identity::new("n", Vec::<String>::new());
        assert!(p.allows(&customer, "orders", "shop.GetOrder"));
        assert!(!p.allows(&customer, "orders", "admin.Wipe"));
        assert!(!p.allows(&customer, "orders2", "shop.GetOrder"));
        assert!(p.allows(&Identity::new("a", ["admin"]), "x", "y"));
        assert!(p.allows(&nobody, "echo", "echo.Ping"));
        assert!(!p.allows(&nobody, "echo", "echo.Echo"));
        assert!(!Policy::default().allows(&customer, "orders", "shop.GetOrder"));
    }

    #[test]
    fn bad_rules_are_rejected() {
        for r in [
            rule("", "*", &["a"]),
            rule("a*b", "*", &["a"]),
            rule("*", "**", &["a"]),
            rule("*", "*", &[]),
            rule("*", "*", &[""]),
        ] {
            assert!(Policy::new(std::slice::from_ref(&r)).is_err(), "{r:?}");
        }
    }
}
