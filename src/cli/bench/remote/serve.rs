//! The child process of `msa bench remote` (`msa bench remote --serve`): a
//! node with the sink service, and a raw TCP listener for the baseline.
//! With `--tls` (the parent sets the certificates' directory) a second sink
//! node serves over mutual TLS beside the plaintext one, so that the parent
//! measures both in the same run.
//!
//! With `MSA_BENCH_TOPIC` set (by `msa bench streams`), the plaintext
//! sink service also subscribes to that topic of [`Hit`]s.
//!
//! It prints one [`ReadyLine`] on stdout once both listen, and stops when
//! its stdin reaches end of file: the parent holds the other end, so the
//! child never outlives it, even when the parent is killed.

use std::fmt;
use std::io::Write as _;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use msa_runtime::Node;
use tokio::net::TcpListener;

use super::raw;
use super::service::{sink_spec, Hit};
use super::{SINK_ARBITERS, SINK_NODE, SINK_TLS_NODE};

/// How long the sink may drain when the child stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Bound on the child's whole shutdown.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(5);

/// The line the child prints on stdout once it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReadyLine {
    /// The msa node's remoting address.
    pub(crate) addr: String,
    /// The raw TCP baseline's address.
    pub(crate) raw: String,
    /// The TLS sink node's remoting address (with `--tls` only).
    pub(crate) tls: Option<String>,
}

impl ReadyLine {
    pub(crate) const PREFIX: &'static str = "msa-bench-sink ";
}

impl fmt::Display for ReadyLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}addr={} raw={}", Self::PREFIX, self.addr, self.raw)?;
        match &self.tls {
            Some(tls) => write!(f, " tls={tls}"),
            None => Ok(()),
        }
    }
}

impl FromStr for ReadyLine {
    type Err = anyhow::Error;

    fn from_str(line: &str) -> anyhow::Result<Self> {
        let rest = line
            .strip_prefix(Self::PREFIX)
            .ok_or_else(|| anyhow!("not a ready line: {line:?}"))?;
        let optional = |k: &str| {
            rest.split_whitespace()
                .find_map(|f| f.strip_prefix(k)?.strip_prefix('='))
                .map(str::to_string)
        };
        let field =
            |k: &str| optional(k).ok_or_else(|| anyhow!("no `{k}=` in the ready line {line:?}"));
        Ok(Self {
            addr: field("addr")?,
            raw: field("raw")?,
            tls: optional("tls"),
        })
    }
}

/// Runs the child: serves until stdin closes.
pub(crate) fn run() -> anyhow::Result<()> {
    let secret = std::env::var("MSA_SECRET")
        .context("MSA_SECRET must hold the cluster secret (the parent sets it)")?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(serve(secret))
}

/// A sink node (plaintext, or over mutual TLS with the certificates in `tls`).
fn start_sink(secret: &str, tls: Option<&std::path::Path>) -> anyhow::Result<Node> {
    let name = if tls.is_some() {
        SINK_TLS_NODE
    } else {
        SINK_NODE
    };
    let mut builder = Node::builder()
        .name(name)
        .arbiters(SINK_ARBITERS)
        .listen(([127, 0, 0, 1], 0).into())
        .secret(secret.as_bytes().to_vec());
    if let Some(dir) = tls {
        builder = builder.tls(super::tls_config(dir, name)?);
    }
    builder
        .start()
        .with_context(|| format!("starting the {name} node"))
}

/// Stops a sink node (bounded).
async fn stop_sink(node: Node) -> anyhow::Result<()> {
    tokio::time::timeout(SHUTDOWN_BOUND, node.shutdown(SHUTDOWN_GRACE))
        .await
        .map_err(|_| anyhow!("the sink node did not stop within {SHUTDOWN_BOUND:?}"))?
        .context("stopping the sink node")
}

async fn serve(secret: String) -> anyhow::Result<()> {
    let tls_dir = std::env::var_os(super::TLS_DIR_ENV).map(std::path::PathBuf::from);
    let node = start_sink(&secret, None)?;
    let tls_node = match tls_dir.as_deref().map(|d| start_sink(&secret, Some(d))) {
        Some(Ok(n)) => Some(n),
        Some(Err(e)) => {
            let _ = stop_sink(node).await;
            return Err(e);
        }
        None => None,
    };
    let topic = std::env::var(super::TOPIC_ENV).ok();
    let served = async {
        let sink = node
            .spawn(sink_spec())
            .await
            .context("spawning the sink service")?;
        // `msa bench streams`: the sink is also the topic's one subscriber
        // (held until the child stops).
        let _subscription = topic
            .as_deref()
            .map(|t| node.topic::<Hit>(t).subscribe_service(&sink));
        if let Some(t) = &tls_node {
            t.spawn(sink_spec())
                .await
                .context("spawning the sink service on the TLS node")?;
        }
        let raw_listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("binding the raw TCP listener")?;
        let ready = ReadyLine {
            addr: node
                .remote_addr()
                .ok_or_else(|| anyhow!("the sink node does not listen"))?,
            raw: raw_listener.local_addr()?.to_string(),
            tls: match &tls_node {
                Some(t) => Some(
                    t.remote_addr()
                        .ok_or_else(|| anyhow!("the TLS sink node does not listen"))?,
                ),
                None => None,
            },
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{ready}")?;
        out.flush()?;
        drop(out);
        // The raw server runs on this (the child's main) thread.
        let accept = async {
            loop {
                match raw_listener.accept().await {
                    Ok((stream, from)) => {
                        tokio::spawn(async move {
                            if let Err(e) = raw::serve(stream).await {
                                tracing::warn!(%from, error = %e, "raw baseline connection failed");
                            }
                        });
                    }
                    Err(e) => break Err::<(), _>(e),
                }
            }
        };
        tokio::select! {
            () = crate::cli::stdin::stdin_eof() => Ok(()),
            r = accept => r.context("accepting raw TCP connections"),
        }
    };
    let outcome: anyhow::Result<()> = served.await;
    let stopped_tls = match tls_node {
        Some(t) => stop_sink(t).await,
        None => Ok(()),
    };
    let stopped = stop_sink(node).await;
    outcome?;
    stopped_tls?;
    stopped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_round_trips() {
        let mut r = ReadyLine {
            addr: "127.0.0.1:4000".into(),
            raw: "127.0.0.1:4001".into(),
            tls: None,
        };
        assert_eq!(r.to_string().parse::<ReadyLine>().unwrap(), r);
        r.tls = Some("127.0.0.1:4002".into());
        assert_eq!(r.to_string().parse::<ReadyLine>().unwrap(), r);
        assert!("msa-node name=x".parse::<ReadyLine>().is_err());
    }
}
