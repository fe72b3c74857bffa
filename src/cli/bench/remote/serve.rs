//! The child process of `msa bench remote` (`msa bench remote --serve`): a
//! node with the sink service, and a raw TCP listener for the baseline.
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
use super::service::sink_spec;
use super::{SINK_ARBITERS, SINK_NODE};

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
}

impl ReadyLine {
    pub(crate) const PREFIX: &'static str = "msa-bench-sink ";
}

impl fmt::Display for ReadyLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}addr={} raw={}", Self::PREFIX, self.addr, self.raw)
    }
}

impl FromStr for ReadyLine {
    type Err = anyhow::Error;

    fn from_str(line: &str) -> anyhow::Result<Self> {
        let rest = line
            .strip_prefix(Self::PREFIX)
            .ok_or_else(|| anyhow!("not a ready line: {line:?}"))?;
        let field = |k: &str| {
            rest.split_whitespace()
                .find_map(|f| f.strip_prefix(k)?.strip_prefix('='))
                .map(str::to_string)
                .ok_or_else(|| anyhow!("no `{k}=` in the ready line {line:?}"))
        };
        Ok(Self {
            addr: field("addr")?,
            raw: field("raw")?,
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

async fn serve(secret: String) -> anyhow::Result<()> {
    let mut builder = Node::builder()
        .name(SINK_NODE)
        .arbiters(SINK_ARBITERS)
        .listen(([127, 0, 0, 1], 0).into())
        .secret(secret.into_bytes());
    if let Some(dir) = std::env::var_os(super::TLS_DIR_ENV) {
        builder = builder.tls(super::tls_config(std::path::Path::new(&dir), SINK_NODE)?);
    }
    let node = builder.start().context("starting the sink node")?;
    let served = async {
        node.spawn(sink_spec())
            .await
            .context("spawning the sink service")?;
        let raw_listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("binding the raw TCP listener")?;
        let ready = ReadyLine {
            addr: node
                .remote_addr()
                .ok_or_else(|| anyhow!("the sink node does not listen"))?,
            raw: raw_listener.local_addr()?.to_string(),
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
    let stopped = tokio::time::timeout(SHUTDOWN_BOUND, node.shutdown(SHUTDOWN_GRACE)).await;
    outcome?;
    stopped
        .map_err(|_| anyhow!("the sink node did not stop within {SHUTDOWN_BOUND:?}"))?
        .context("stopping the sink node")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_round_trips() {
        let r = ReadyLine {
            addr: "127.0.0.1:4000".into(),
            raw: "127.0.0.1:4001".into(),
        };
        assert_eq!(r.to_string().parse::<ReadyLine>().unwrap(), r);
        assert!("msa-node name=x".parse::<ReadyLine>().is_err());
    }
}
