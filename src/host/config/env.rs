//! The environment layer: one rule names the variable of every config key.
//!
//! A key's variable is `MSA_` followed by the key's path upper-cased, with
//! each dot (a nested table) and dash written as an underscore
//! ([`var_name`]): `name` → `MSA_NAME`, `ops.bind` → `MSA_OPS_BIND`,
//! `gateway.bind` → `MSA_GATEWAY_BIND`, `shutdown.drain` →
//! `MSA_SHUTDOWN_DRAIN`. [`overlay`] applies the rule to every key of
//! [`KEYS`] and lays the variables that are set over the file's table,
//! before the table is checked: a bad value reads like a bad file entry,
//! naming the variable.
//!
//! Lists are comma-separated (`MSA_SEEDS=a:7000,b:7000`); a service is
//! `kind[:name[:instances[:max_instances]]]` (`MSA_SERVICES=kv:store:2,echo`).

use anyhow::{bail, Context};
use toml::{Table, Value};

use super::ServiceConfig;

/// What a variable's text becomes in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A string, as is.
    Text,
    /// An unsigned integer.
    Number,
    /// A comma-separated list of strings.
    List,
    /// A comma-separated list of `kind[:name[:instances[:max_instances]]]` services.
    Services,
}

/// Every key the environment can set, with the kind of its value. A key
/// added to the file format is added here; the test below checks that each
/// one reaches the config.
pub(crate) const KEYS: &[(&str, Kind)] = &[
    ("name", Kind::Text),
    ("listen", Kind::Text),
    ("seeds", Kind::List),
    ("advertise", Kind::Text),
    ("discovery.interval", Kind::Text),
    ("discovery.dns_server", Kind::Text),
    ("cluster", Kind::Text),
    ("secret", Kind::Text),
    ("secret_file", Kind::Text),
    ("tls.ca", Kind::Text),
    ("tls.cert", Kind::Text),
    ("tls.key", Kind::Text),
    ("arbiters", Kind::Number),
    ("failure_detection_ms", Kind::Number),
    ("handshake_timeout_ms", Kind::Number),
    ("max_pending_handshakes", Kind::Number),
    ("split_brain.strategy", Kind::Text),
    ("split_brain.stable_after", Kind::Text),
    ("split_brain.quorum_size", Kind::Number),
    ("log_format", Kind::Text),
    ("services", Kind::Services),
    ("ops.bind", Kind::Text),
    ("shutdown.drain", Kind::Text),
    ("gateway.bind", Kind::Text),
    ("gateway.workers", Kind::Number),
    ("gateway.max_body_bytes", Kind::Number),
    ("gateway.timeout_ms", Kind::Number),
    ("gateway.max_concurrency", Kind::Number),
    ("grpc.bind", Kind::Text),
    ("grpc.workers", Kind::Number),
    ("grpc.max_message_bytes", Kind::Number),
    ("grpc.max_concurrency", Kind::Number),
];

/// The environment variable of config key `key`: `MSA_`, then the key
/// upper-cased with dots and dashes as underscores.
///
/// ```text
/// ops.bind → MSA_OPS_BIND    gateway.max_body_bytes → MSA_GATEWAY_MAX_BODY_BYTES
/// ```
pub(crate) fn var_name(key: &str) -> String {
    let mut v = String::with_capacity(key.len() + 4);
    v.push_str("MSA_");
    for c in key.chars() {
        match c {
            '.' | '-' => v.push('_'),
            c => v.push(c.to_ascii_uppercase()),
        }
    }
    v
}

/// Lays every variable of [`KEYS`] that `lookup` finds (an empty one
/// counts as unset) over `table`, creating nested tables on the way.
///
/// # Errors
/// A value of the wrong kind (`MSA_ARBITERS=two`, a bad service), or a key
/// whose parent in the file is not a table.
pub(crate) fn overlay(
    table: &mut Table,
    lookup: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<()> {
    for &(key, kind) in KEYS {
        let var = var_name(key);
        let Some(text) = lookup(&var).filter(|t| !t.is_empty()) else {
            continue;
        };
        let value = to_value(kind, &text).with_context(|| format!("invalid {var}"))?;
        set(table, key, value).with_context(|| format!("cannot apply {var}"))?;
    }
    Ok(())
}

fn to_value(kind: Kind, text: &str) -> anyhow::Result<Value> {
    let items = || text.split(',').map(str::trim).filter(|s| !s.is_empty());
    Ok(match kind {
        Kind::Text => Value::String(text.to_string()),
        Kind::Number => {
            let n: i64 = text
                .trim()
                .parse()
                .ok()
                .filter(|n| *n >= 0)
                .with_context(|| format!("`{text}` is not a whole number"))?;
            Value::Integer(n)
        }
        Kind::List => Value::Array(items().map(|s| Value::String(s.into())).collect()),
        Kind::Services => Value::Array(
            items()
                .map(|s| {
                    let svc: ServiceConfig = s.parse().map_err(anyhow::Error::msg)?;
                    Ok(Value::Table(svc.to_table()))
                })
                .collect::<anyhow::Result<_>>()?,
        ),
    })
}

/// Sets the dotted `key` in `table`.
fn set(table: &mut Table, key: &str, value: Value) -> anyhow::Result<()> {
    let mut parts: Vec<&str> = key.split('.').collect();
    let Some(leaf) = parts.pop() else {
        bail!("empty key");
    };
    let mut t = table;
    for p in parts {
        let entry = t
            .entry(p.to_string())
            .or_insert_with(|| Value::Table(Table::new()));
        t = match entry {
            Value::Table(inner) => inner,
            _ => bail!("`{p}` is not a table"),
        };
    }
    t.insert(leaf.to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_maps_to_its_variable_by_one_rule() {
        assert_eq!(var_name("ops.bind"), "MSA_OPS_BIND");
        assert_eq!(var_name("gateway.bind"), "MSA_GATEWAY_BIND");
        assert_eq!(var_name("name"), "MSA_NAME");
        assert_eq!(var_name("failure_detection_ms"), "MSA_FAILURE_DETECTION_MS");
        assert_eq!(var_name("shutdown.drain"), "MSA_SHUTDOWN_DRAIN");
        let mut names: Vec<String> = KEYS.iter().map(|(k, _)| var_name(k)).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), KEYS.len(), "two keys share a variable");
    }

    #[test]
    fn variables_nest_and_keep_the_file_around_them() {
        let mut t: Table = toml::from_str("[gateway]\nworkers = 3\n").unwrap();
        let env = |v: &str| match v {
            "MSA_GATEWAY_BIND" => Some("127.0.0.1:0".to_string()),
            "MSA_OPS_BIND" => Some("127.0.0.1:9".to_string()),
            "MSA_SEEDS" => Some("a:1, b:2".to_string()),
            "MSA_SERVICES" => Some("kv:store:2,echo".to_string()),
            "MSA_NAME" => Some(String::new()),
            _ => None,
        };
        overlay(&mut t, env).unwrap();
        assert_eq!(t["gateway"]["workers"].as_integer(), Some(3));
        assert_eq!(t["gateway"]["bind"].as_str(), Some("127.0.0.1:0"));
        assert_eq!(t["ops"]["bind"].as_str(), Some("127.0.0.1:9"));
        assert_eq!(t["seeds"].as_array().unwrap().len(), 2);
        assert_eq!(t["services"][0]["name"].as_str(), Some("store"));
        assert_eq!(t["services"][1]["kind"].as_str(), Some("echo"));
        assert!(!t.contains_key("name"), "an empty variable counts as unset");
    }

    #[test]
    fn bad_values_name_their_variable() {
        let mut t = Table::new();
        let e = overlay(&mut t, |v| (v == "MSA_ARBITERS").then(|| "two".into())).unwrap_err();
        assert!(format!("{e:#}").contains("invalid MSA_ARBITERS"), "{e:#}");
        let e = overlay(&mut t, |v| (v == "MSA_SERVICES").then(|| "redis".into())).unwrap_err();
        assert!(format!("{e:#}").contains("unknown service kind"), "{e:#}");
        let mut t: Table = toml::from_str("ops = 1\n").unwrap();
        let e = overlay(&mut t, |v| (v == "MSA_OPS_BIND").then(|| "x".into())).unwrap_err();
        assert!(format!("{e:#}").contains("not a table"), "{e:#}");
    }
}
