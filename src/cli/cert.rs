//! `msa cert`: certificates for mutual TLS between nodes, made with rcgen
//! (pure Rust, the same crate the runtime's tests use; no openssl needed).
//!
//! ```text
//! $ msa cert dev --nodes node1,node2 --out certs
//! $ msa node --name node1 --tls-ca certs/ca.pem --tls-cert certs/node1.pem --tls-key certs/node1.key
//! $ msa cluster status --seed 127.0.0.1:7001 \
//!       --tls-ca certs/ca.pem --tls-cert certs/operator.pem --tls-key certs/operator.key
//! ```
//!
//! Files in `--out`: `ca.pem` and `ca.key` (the CA: keep `ca.key` away from
//! the nodes), and `NAME.pem` with `NAME.key` per node or operator. A node
//! certificate carries the SAN URI `msa://node/NAME` (plus DNS names
//! `NAME` and `localhost`, and any `--host`), usable to serve and to dial;
//! an operator certificate carries `msa://operator/NAME` and client-auth
//! use only. Keys are ECDSA P-256, PKCS#8, written with mode 0600. This is
//! a development CA: production issues the same shapes from its own PKI
//! (docs/security.md).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// `msa cert` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum CertCommand {
    /// Make a CA: OUT/ca.pem and OUT/ca.key (refuses to replace one without --force)
    Ca(CaArgs),
    /// Make a node certificate signed by the CA in --ca-dir (default --out):
    /// OUT/NAME.pem, OUT/NAME.key, SAN URI msa://node/NAME
    Node(LeafArgs),
    /// Make an operator certificate (for msa cluster status and the other
    /// operator commands): OUT/NAME.pem, OUT/NAME.key, SAN URI msa://operator/NAME
    Operator(LeafArgs),
    /// Make a CA (unless OUT holds one), the nodes' certificates and an
    /// operator's, in one go
    Dev(DevArgs),
}

/// Options of `msa cert ca`.
#[derive(Debug, Args)]
pub(crate) struct CaArgs {
    /// Directory to write into (created if missing)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Days the CA is valid
    #[arg(long, default_value_t = 3650)]
    days: i64,
    /// Replace an existing CA (every certificate it signed stops being trusted)
    #[arg(long)]
    force: bool,
}

/// Options of `msa cert node` and `msa cert operator`.
#[derive(Debug, Args)]
pub(crate) struct LeafArgs {
    /// The node's name (as `msa node --name`), or the operator's
    name: String,
    /// Directory to write into (created if missing)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Directory holding ca.pem and ca.key [default: --out]
    #[arg(long, value_name = "DIR")]
    ca_dir: Option<PathBuf>,
    /// Days the certificate is valid
    #[arg(long, default_value_t = 365)]
    days: i64,
    /// Extra DNS name or IP address for the certificate (repeatable; nodes
    /// only; informative: nodes check the msa:// URI, not host names)
    #[arg(long = "host", value_name = "NAME|IP")]
    hosts: Vec<String>,
}

/// Options of `msa cert dev`.
#[derive(Debug, Args)]
pub(crate) struct DevArgs {
    /// Node names (comma-separated or repeated)
    #[arg(long, value_delimiter = ',', required = true, value_name = "NAME")]
    nodes: Vec<String>,
    /// The operator's name
    #[arg(long, default_value = "operator")]
    operator: String,
    /// Directory to write into (created if missing)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Days the certificates are valid
    #[arg(long, default_value_t = 365)]
    days: i64,
}

/// Runs `msa cert`.
pub(crate) fn run(cmd: CertCommand) -> anyhow::Result<()> {
    match cmd {
        CertCommand::Ca(a) => {
            make_ca(&a.out, a.days, a.force)?;
            println!("{}", a.out.join("ca.pem").display());
        }
        CertCommand::Node(a) => leaf_cmd(&a, Role::Node)?,
        CertCommand::Operator(a) => leaf_cmd(&a, Role::Operator)?,
        CertCommand::Dev(a) => {
            dev(&a.out, &a.nodes, &a.operator, a.days)?;
            println!("{}", a.out.display());
        }
    }
    Ok(())
}

/// Makes a CA unless `out` has one, a certificate per node and one for
/// `operator` (what `msa cluster up --tls` uses).
pub(crate) fn dev(out: &Path, nodes: &[String], operator: &str, days: i64) -> anyhow::Result<()> {
    if !out.join("ca.pem").exists() {
        make_ca(out, days.max(1), false)?;
    }
    for n in nodes {
        make_leaf(out, out, n, Role::Node, days, &[])?;
    }
    make_leaf(out, out, operator, Role::Operator, days, &[])
}

fn leaf_cmd(a: &LeafArgs, role: Role) -> anyhow::Result<()> {
    if role == Role::Operator && !a.hosts.is_empty() {
        bail!("--host is for node certificates");
    }
    let ca_dir = a.ca_dir.as_deref().unwrap_or(&a.out);
    make_leaf(ca_dir, &a.out, &a.name, role, a.days, &a.hosts)?;
    println!("{}", a.out.join(format!("{}.pem", a.name)).display());
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Node,
    Operator,
}

fn validity(p: &mut CertificateParams, days: i64) -> anyhow::Result<()> {
    if days < 1 {
        bail!("--days must be at least 1");
    }
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::minutes(5);
    p.not_after = now + time::Duration::days(days);
    Ok(())
}

fn make_ca(out: &Path, days: i64, force: bool) -> anyhow::Result<()> {
    let pem = out.join("ca.pem");
    if pem.exists() && !force {
        bail!(
            "{} exists; pass --force to replace the CA (certificates it signed stop being trusted)",
            pem.display()
        );
    }
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(DnType::CommonName, "msa development CA");
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut p, days)?;
    let key = KeyPair::generate()?;
    let cert = p.self_signed(&key)?;
    write_pair(out, "ca", &cert.pem(), &key.serialize_pem())
}

fn make_leaf(
    ca_dir: &Path,
    out: &Path,
    name: &str,
    role: Role,
    days: i64,
    hosts: &[String],
) -> anyhow::Result<()> {
    if name.is_empty() || name.contains(['/', '\\']) || name == "ca" {
        bail!("`{name}` cannot name a certificate (empty, a path, or `ca`)");
    }
    let read = |f: &str| {
        let p = ca_dir.join(f);
        std::fs::read_to_string(&p).with_context(|| {
            format!(
                "cannot read {} (make a CA first: msa cert ca --out {})",
                p.display(),
                ca_dir.display()
            )
        })
    };
    let (ca_pem, ca_key) = (read("ca.pem")?, read("ca.key")?);
    let ca_key = KeyPair::from_pem(&ca_key).context("ca.key is not a PEM private key")?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).context("ca.pem is not a CA")?;
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    let (uri, usages) = match role {
        Role::Node => {
            for h in [name, "localhost"]
                .into_iter()
                .chain(hosts.iter().map(String::as_str))
            {
                p.subject_alt_names
                    .push(match h.parse::<std::net::IpAddr>() {
                        Ok(ip) => SanType::IpAddress(ip),
                        Err(_) => SanType::DnsName(
                            h.try_into()
                                .with_context(|| format!("`{h}` is not a DNS name"))?,
                        ),
                    });
            }
            (
                format!("{}{name}", msa::remote::tls::NODE_URI_PREFIX),
                vec![
                    ExtendedKeyUsagePurpose::ServerAuth,
                    ExtendedKeyUsagePurpose::ClientAuth,
                ],
            )
        }
        Role::Operator => (
            format!("{}{name}", msa::remote::tls::OPERATOR_URI_PREFIX),
            vec![ExtendedKeyUsagePurpose::ClientAuth],
        ),
    };
    p.subject_alt_names.push(SanType::URI(
        uri.as_str()
            .try_into()
            .with_context(|| format!("`{uri}` is not a URI"))?,
    ));
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = usages;
    validity(&mut p, days)?;
    let key = KeyPair::generate()?;
    let cert = p.signed_by(&key, &issuer)?;
    write_pair(out, name, &cert.pem(), &key.serialize_pem())
}

/// Writes `NAME.pem` and `NAME.key` (the key readable by its owner only).
fn write_pair(out: &Path, name: &str, cert: &str, key: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let pem = out.join(format!("{name}.pem"));
    std::fs::write(&pem, cert).with_context(|| format!("cannot write {}", pem.display()))?;
    let kp = out.join(format!("{name}.key"));
    // Replace, never reuse, a key file (its mode might be wider).
    let _ = std::fs::remove_file(&kp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&kp)
        .with_context(|| format!("cannot write {}", kp.display()))?;
    f.write_all(key.as_bytes())
        .with_context(|| format!("cannot write {}", kp.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use msa::remote::{TlsConfig, TlsIdentity};

    #[test]
    fn dev_makes_a_ca_nodes_and_an_operator_that_the_runtime_reads() {
        let out = std::env::temp_dir().join(format!("msa-cert-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        dev(&out, &["n1".into(), "n2".into()], "ops", 30).unwrap();
        let tls = |n: &str| {
            TlsConfig::from_files(
                out.join("ca.pem"),
                out.join(format!("{n}.pem")),
                out.join(format!("{n}.key")),
            )
            .unwrap()
        };
        assert_eq!(tls("n1").identity(), TlsIdentity::Node("n1".into()));
        assert_eq!(tls("ops").identity(), TlsIdentity::Operator("ops".into()));
        let expiry = tls("n2").cert_expiry();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!((expiry - now - 30 * 86_400).abs() < 60, "{expiry} vs {now}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join("n1.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // The CA is kept on a second run, and not replaced without --force.
        let ca = std::fs::read(out.join("ca.pem")).unwrap();
        dev(&out, &["n3".into()], "ops", 30).unwrap();
        assert_eq!(std::fs::read(out.join("ca.pem")).unwrap(), ca);
        assert!(make_ca(&out, 10, false).is_err());
        assert!(make_leaf(&out, &out, "../x", Role::Node, 1, &[]).is_err());
        std::fs::remove_dir_all(&out).unwrap();
    }
}
