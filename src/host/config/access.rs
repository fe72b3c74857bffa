//! The `[[access]]` tables: access rules the node's own instances check
//! for the services the config names (docs/security.md, "Access rules at
//! each service").
//!
//! ```toml
//! [[access]]
//! service = "payments"           # a service the config names
//! message = "shop.Charge"        # a wire name, or "*": the service's default rule
//! roles = ["admin"]              # callers holding one of these roles...
//! services = ["orders"]          # ...or calls made by these services' handlers
//! ```

use anyhow::bail;
use serde::Deserialize;

use crate::access::{Access, Rule};

/// One access rule as a config file (or `msa node --demo-policy`) gives it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRuleConfig {
    /// The service the rule guards.
    pub service: String,
    /// The message's wire name, or `"*"` for every message without a rule
    /// of its own.
    pub message: String,
    /// Roles that may send it.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Calling services that may send it.
    #[serde(default)]
    pub services: Vec<String>,
}

impl AccessRuleConfig {
    /// A rule for `message` (`"*"`: the default) of `service`.
    pub fn new(service: &str, message: &str, roles: &[&str], services: &[&str]) -> Self {
        Self {
            service: service.into(),
            message: message.into(),
            roles: roles.iter().map(|r| (*r).to_string()).collect(),
            services: services.iter().map(|s| (*s).to_string()).collect(),
        }
    }

    /// Refuses empty names and a rule that admits nobody.
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        if self.service.is_empty() || self.message.is_empty() {
            bail!("an [[access]] rule needs a `service` and a `message` (\"*\" for its default)");
        }
        let empty = |v: &[String]| v.iter().any(String::is_empty);
        if empty(&self.roles) || empty(&self.services) {
            bail!(
                "[[access]] rule for {}/{}: empty role or service name",
                self.service,
                self.message
            );
        }
        if self.roles.is_empty() && self.services.is_empty() {
            bail!(
                "[[access]] rule for {}/{} admits nobody: give `roles` or `services`",
                self.service,
                self.message
            );
        }
        Ok(())
    }
}

/// The rules of `rules` that guard `service`, as its spec takes them.
pub(crate) fn access_for(rules: &[AccessRuleConfig], service: &str) -> Access {
    rules
        .iter()
        .filter(|r| r.service == service)
        .fold(Access::new(), |access, r| {
            let rule = Rule::roles(r.roles.iter().cloned()).or_services(r.services.iter().cloned());
            if r.message == "*" {
                access.default_rule(rule)
            } else {
                access.allow_named(r.message.clone(), rule)
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Identity, Metadata};

    #[test]
    fn rules_are_checked_and_gathered_per_service() {
        assert!(AccessRuleConfig::new("p", "m", &[], &[]).check().is_err());
        assert!(AccessRuleConfig::new("", "m", &["a"], &[]).check().is_err());
        assert!(AccessRuleConfig::new("p", "m", &[""], &[]).check().is_err());
        assert!(AccessRuleConfig::new("p", "*", &[], &["orders"])
            .check()
            .is_ok());
        let rules = [
            AccessRuleConfig::new("payments", "*", &["admin"], &["orders"]),
            AccessRuleConfig::new("other", "*", &["x"], &[]),
        ];
        let access = access_for(&rules, "payments");
        assert!(!access.is_empty());
        assert!(access_for(&rules, "kv").is_empty());
        let _ = Metadata::new().with_identity(Identity::new("a", ["admin"]));
    }
}
