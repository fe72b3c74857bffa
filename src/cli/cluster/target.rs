//! Which cluster an operator command acts on: `--seed`, `--secret` and
//! `--cluster` as for `msa cluster status`, or the state file of `msa
//! cluster up`; and the members found there.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use msa::remote::{cluster_status_via, inject_fault_via, FaultError, FaultReport, FaultRequest};

use super::state;

/// How to reach the cluster (shared by the fault commands).
#[derive(Debug, Args)]
pub(crate) struct TargetArgs {
    /// Address of a running node [default: node1 of the cluster in the
    /// state file of `msa cluster up`]
    #[arg(long, env = "MSA_SEED", value_name = "HOST:PORT")]
    seed: Option<String>,
    /// Cluster secret [default: the state file's without --seed, else none]
    #[arg(long, env = "MSA_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Cluster name [default: the state file's without --seed, else msa]
    #[arg(long, env = "MSA_CLUSTER")]
    cluster: Option<String>,
    /// The state file `msa cluster up` wrote [default:
    /// $XDG_RUNTIME_DIR/msa/cluster.json, else <tmp>/msa-<uid>/cluster.json]
    #[arg(long, env = "MSA_STATE", value_name = "FILE")]
    state: Option<PathBuf>,
    /// Give up on a node after this many seconds
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    timeout: f64,
    #[command(flatten)]
    tls: crate::cli::operator_tls::OperatorTls,
}

/// A member an operator command may address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    pub(crate) name: String,
    pub(crate) addr: String,
    /// Its status as the seed sees it (`None` when known only from the
    /// state file).
    pub(crate) status: Option<String>,
}

/// A resolved cluster: credentials and members.
#[derive(Debug)]
pub(crate) struct Target {
    cluster: String,
    secret: String,
    timeout: Duration,
    transport: std::sync::Arc<dyn msa::remote::transport::Transport>,
    pub(crate) members: Vec<Member>,
}

impl TargetArgs {
    /// Reads the state file if needed and asks the seed for its members.
    pub(crate) async fn resolve(&self) -> anyhow::Result<Target> {
        let timeout = Duration::try_from_secs_f64(self.timeout)
            .ok()
            .filter(|t| !t.is_zero())
            .context("--timeout must be a positive number of seconds")?;
        let mut tls = self.tls.clone();
        let (seed, cluster, secret, mut members) = match &self.seed {
            Some(seed) => (
                seed.clone(),
                self.cluster.clone().unwrap_or_else(|| "msa".into()),
                self.secret.clone().unwrap_or_default(),
                Vec::new(),
            ),
            None => {
                let path = self.state.clone().unwrap_or_else(state::default_path);
                let st = state::read(&path)?;
                if let (Some(d), false) = (&st.tls_dir, tls.is_set()) {
                    tls.tls_ca = Some(d.join("ca.pem"));
                    tls.tls_cert = Some(d.join("operator.pem"));
                    tls.tls_key = Some(d.join("operator.key"));
                }
                let members = st
                    .nodes
                    .into_iter()
                    .map(|n| Member {
                        name: n.name,
                        addr: n.addr,
                        status: None,
                    })
                    .collect();
                (
                    st.seed,
                    self.cluster.clone().unwrap_or(st.cluster),
                    self.secret.clone().unwrap_or(st.secret),
                    members,
                )
            }
        };
        let transport = tls.transport()?;
        match cluster_status_via(transport.as_ref(), &seed, &cluster, secret.as_bytes(), timeout)
            .await
        {
            Ok(status) => {
                for m in status.members {
                    match members.iter_mut().find(|k| k.name == m.name) {
                        Some(k) => {
                            k.addr = m.addr;
                            k.status = Some(m.status);
                        }
                        None => members.push(Member {
                            name: m.name,
                            addr: m.addr,
                            status: Some(m.status),
                        }),
                    }
                }
            }
            Err(e) if members.is_empty() => {
                return Err(e).with_context(|| {
                    format!(
                        "cannot get the members from {seed} (check --seed, --secret or MSA_SECRET, and --cluster)"
                    )
                })
            }
            Err(e) => {
                eprintln!("msa cluster: cannot ask {seed} for the members ({e}); using the state file");
            }
        }
        members.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Target {
            cluster,
            secret,
            timeout,
            transport,
            members,
        })
    }
}

impl Target {
    /// The member named `name`.
    ///
    /// # Errors
    /// When the cluster has no such member.
    pub(crate) fn member(&self, name: &str) -> anyhow::Result<&Member> {
        match self.members.iter().find(|m| m.name == name) {
            Some(m) => Ok(m),
            None => bail!(
                "unknown node {name:?} (members: {})",
                self.members
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// Sends `request` to `m`.
    pub(crate) async fn send(
        &self,
        m: &Member,
        request: FaultRequest,
    ) -> Result<FaultReport, FaultError> {
        inject_fault_via(
            self.transport.as_ref(),
            &m.addr,
            &self.cluster,
            self.secret.as_bytes(),
            request,
            self.timeout,
        )
        .await
    }
}

/// Runs `f` on a fresh single-threaded runtime.
pub(crate) fn block_on<T>(f: impl std::future::Future<Output = T>) -> anyhow::Result<T> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(f))
}
