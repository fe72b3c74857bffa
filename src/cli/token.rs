//! `msa token`: print an HS256 JWT for the gateway, for demos and scripts.
//!
//! ```text
//! $ msa token --secret demo-secret --sub alice --role customer --ttl 1h
//! eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSIs…
//! ```
//!
//! The token carries `sub`, `roles`, `iat` and `exp` (now + `--ttl`), signed
//! with the UTF-8 bytes of the secret: what a gateway started with
//! `--jwt-secret` (or `[gateway.auth] alg = "HS256"`) accepts.

use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;

/// Options of `msa token`.
#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// The gateway's HS256 secret (prefer MSA_JWT_SECRET: flags show up in `ps`)
    #[arg(long, env = "MSA_JWT_SECRET", hide_env_values = true)]
    secret: String,
    /// The subject (`sub` claim): who calls, e.g. alice
    #[arg(long)]
    sub: String,
    /// A role the caller holds (repeatable), e.g. customer, staff, admin
    #[arg(long = "role", value_name = "ROLE")]
    roles: Vec<String>,
    /// How long the token is valid: a number with a unit s, m, h or d
    /// (a bare number is seconds)
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    ttl: Duration,
}

/// Runs `msa token`.
pub(crate) fn run(args: TokenArgs) -> anyhow::Result<()> {
    if args.secret.is_empty() {
        bail!("the secret must not be empty");
    }
    let roles: Vec<&str> = args.roles.iter().map(String::as_str).collect();
    let token = msa::gateway::hs256_token(&args.secret, &args.sub, &roles, args.ttl)
        .context("cannot make the token")?;
    println!("{token}");
    Ok(())
}

/// `90`, `90s`, `15m`, `1h`, `2d`: a positive duration.
fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 90s, 15m, 1h or 2d"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit `{unit}` in `{s}` (use s, m, h or d)")),
    };
    match n.checked_mul(scale) {
        Some(0) => Err("the ttl must be positive".into()),
        Some(secs) => Ok(Duration::from_secs(secs)),
        None => Err(format!("`{s}` is too long")),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_ttl;
    use std::time::Duration;

    #[test]
    fn ttls_take_a_unit() {
        assert_eq!(parse_ttl("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("2d"), Ok(Duration::from_secs(172_800)));
        for bad in ["", "h", "0", "1w", "-1h", "1.5h", "99999999999999999999d"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }
}
