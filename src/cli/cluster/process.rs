//! One `msa node` child process of `msa cluster up`: started from this same
//! executable, its output streamed with a `[name]` prefix, its exit reported
//! on a channel, signalled on request.

use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, oneshot};

use super::plan::NodePlan;
use crate::cli::node::ReadyLine;

/// The `MSA_*` variables `msa node` reads; cleared in children so that the
/// caller's environment cannot change what `cluster up` planned.
const NODE_ENV: [&str; 13] = [
    "MSA_CONFIG",
    "MSA_NAME",
    "MSA_LISTEN",
    "MSA_SEEDS",
    "MSA_CLUSTER",
    "MSA_SECRET",
    "MSA_ARBITERS",
    "MSA_SERVICES",
    "MSA_GATEWAY",
    "MSA_JWT_SECRET",
    "MSA_TLS_CA",
    "MSA_TLS_CERT",
    "MSA_TLS_KEY",
];

/// A child process has exited.
#[derive(Debug)]
pub(super) struct Exited {
    /// The node's name.
    pub(super) name: String,
    /// How it ended (an error if it could not be waited for).
    pub(super) status: std::io::Result<ExitStatus>,
}

/// What the cluster needs to start one node.
#[derive(Debug, Clone, Copy)]
pub(super) struct Launch<'a> {
    /// Cluster name.
    pub(super) cluster: &'a str,
    /// Cluster secret (passed in the environment, not on the command line).
    pub(super) secret: &'a str,
    /// The seed to join through (none for the first node).
    pub(super) seed: Option<&'a str>,
    /// The gateway this node runs, if any (node1 only).
    pub(super) gateway: Option<GatewayLaunch<'a>>,
    /// Mutual TLS with the certificates `msa cert dev` made in this
    /// directory (`ca.pem`, `NAME.pem`, `NAME.key`).
    pub(super) tls_dir: Option<&'a std::path::Path>,
}

/// The gateway a node runs: the shop demo's policy and routes, bound to
/// `bind`.
#[derive(Debug, Clone, Copy)]
pub(super) struct GatewayLaunch<'a> {
    /// Where it listens.
    pub(super) bind: SocketAddr,
    /// Where its gRPC ingress listens.
    pub(super) grpc: SocketAddr,
    /// HS256 secret that turns auth on (passed in the environment).
    pub(super) jwt_secret: Option<&'a str>,
}

/// A running `msa node` child.
#[derive(Debug)]
pub(super) struct NodeProcess {
    /// The node's name.
    pub(super) name: String,
    /// Its process id.
    pub(super) pid: u32,
    signals: mpsc::UnboundedSender<Signal>,
    /// Kept open: the child stops gracefully when it closes, so nodes never
    /// outlive this process, even if it is killed with SIGKILL.
    _stdin: ChildStdin,
}

impl NodeProcess {
    /// Starts the node of `plan`. Its ready line arrives on the returned
    /// receiver (which fails if the node exits before printing it); its exit
    /// on `exits`.
    ///
    /// # Errors
    /// When the executable cannot be found or started.
    pub(super) fn spawn(
        plan: &NodePlan,
        launch: Launch<'_>,
        exits: mpsc::UnboundedSender<Exited>,
    ) -> anyhow::Result<(Self, oneshot::Receiver<ReadyLine>)> {
        let exe = std::env::current_exe().context("cannot find the msa executable")?;
        let mut cmd = Command::new(exe);
        cmd.arg("node")
            .args(["--name", &plan.name])
            .args(["--listen", &plan.listen.to_string()])
            .args(["--cluster", launch.cluster])
            .arg("--stop-on-stdin-eof");
        for s in &plan.services {
            cmd.args(["--service", &s.to_string()]);
        }
        if let Some(seed) = launch.seed {
            cmd.args(["--seed", seed]);
        }
        if let Some(d) = launch.tls_dir {
            cmd.arg("--tls-ca")
                .arg(d.join("ca.pem"))
                .arg("--tls-cert")
                .arg(d.join(format!("{}.pem", plan.name)))
                .arg("--tls-key")
                .arg(d.join(format!("{}.key", plan.name)));
        }
        for var in NODE_ENV {
            cmd.env_remove(var);
        }
        if let Some(g) = launch.gateway {
            cmd.args(["--gateway", &g.bind.to_string(), "--demo-policy"]);
            cmd.args(["--grpc", &g.grpc.to_string()]);
            if let Some(s) = g.jwt_secret {
                cmd.env("MSA_JWT_SECRET", s);
            }
        }
        cmd.env("MSA_SECRET", launch.secret)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Own process group: a terminal's Ctrl-C reaches only `cluster
            // up`, which then stops the nodes in order.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", plan.name))?;
        let pid = child.id().unwrap_or_default();
        let (stdin, stdout, stderr) =
            match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
                (Some(i), Some(o), Some(e)) => (i, o, e),
                _ => anyhow::bail!("{}: no pipes to the child", plan.name),
            };
        let (ready_tx, ready_rx) = oneshot::channel();
        tokio::spawn(stream(plan.name.clone(), stdout, Some(ready_tx)));
        tokio::spawn(stream(plan.name.clone(), stderr, None));
        let (sig_tx, sig_rx) = mpsc::unbounded_channel();
        tokio::spawn(own(plan.name.clone(), child, sig_rx, exits));
        Ok((
            Self {
                name: plan.name.clone(),
                pid,
                signals: sig_tx,
                _stdin: stdin,
            },
            ready_rx,
        ))
    }

    /// Sends `sig` to the node, unless it has already exited.
    pub(super) fn signal(&self, sig: Signal) {
        let _ = self.signals.send(sig);
    }
}

/// Owns the child: waits for its exit and signals it on request. Signalling
/// here, where the child is reaped, never hits a recycled pid.
async fn own(
    name: String,
    mut child: Child,
    mut signals: mpsc::UnboundedReceiver<Signal>,
    exits: mpsc::UnboundedSender<Exited>,
) {
    loop {
        tokio::select! {
            status = child.wait() => {
                let _ = exits.send(Exited { name, status });
                return;
            }
            Some(sig) = signals.recv() => {
                let pid = child.id().and_then(|p| i32::try_from(p).ok());
                if let Some(pid) = pid {
                    if let Err(e) = kill(Pid::from_raw(pid), sig) {
                        tracing::warn!(node = %name, %sig, error = %e, "cannot signal node");
                    }
                }
            }
        }
    }
}

/// Copies the child's output to our stderr, each line prefixed `[name]`;
/// on stdout, the first ready line goes to `ready` instead.
async fn stream(
    name: String,
    out: impl AsyncRead + Unpin,
    mut ready: Option<oneshot::Sender<ReadyLine>>,
) {
    let mut lines = BufReader::new(out).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if ready.is_some() {
            if let Ok(r) = line.parse::<ReadyLine>() {
                if let Some(tx) = ready.take() {
                    let _ = tx.send(r);
                }
                continue;
            }
        }
        eprintln!("[{name}] {line}");
    }
}
