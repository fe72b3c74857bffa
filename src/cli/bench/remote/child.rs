//! The parent's handle on the child process: started with a fresh secret,
//! its ready line read with a bounded wait, stopped by closing its stdin,
//! and killed if it does not stop (or if the bench fails).

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};

use super::serve::ReadyLine;

/// How long the child may take to print its ready line.
const READY_WAIT: Duration = Duration::from_secs(30);
/// How long the child may take to exit once its stdin is closed.
const EXIT_WAIT: Duration = Duration::from_secs(10);

/// A running child (`msa bench remote --serve`); killed when dropped.
#[derive(Debug)]
pub(crate) struct SinkProcess {
    child: Child,
    /// Closing it tells the child to stop.
    stdin: Option<ChildStdin>,
    /// Where the child serves.
    pub(crate) ready: ReadyLine,
}

/// 32 random bytes from the OS, hex-encoded.
pub(crate) fn generate_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow!("no random bytes from the OS: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl SinkProcess {
    /// Starts this executable as the child, with `secret` in `MSA_SECRET`,
    /// and waits (bounded) for its ready line. The child's stderr is ours;
    /// unless `RUST_LOG` is set, it logs errors only (a peer leaving at the
    /// end is logged as a warning and would be noise here).
    ///
    /// With `topic`, the child's sink service also subscribes to that topic
    /// of [`Hit`](super::service::Hit)s (`msa bench streams`).
    pub(crate) fn start(
        secret: &str,
        tls: Option<&std::path::Path>,
        topic: Option<&str>,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding the msa executable")?;
        let mut cmd = Command::new(exe);
        if let Some(d) = tls {
            cmd.env(super::TLS_DIR_ENV, d);
        }
        if let Some(t) = topic {
            cmd.env(super::TOPIC_ENV, t);
        }
        cmd.args(["bench", "remote", "--serve"])
            .env("MSA_SECRET", secret)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "error");
        }
        let mut child = cmd.spawn().context("starting the sink process")?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let mut me = Self {
            child,
            stdin,
            ready: ReadyLine {
                addr: String::new(),
                raw: String::new(),
                tls: None,
            },
        };
        let stdout = stdout.ok_or_else(|| anyhow!("the sink process has no stdout"))?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("msa-bench-child-out".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if line.starts_with(ReadyLine::PREFIX) {
                        let _ = tx.send(line);
                        return;
                    }
                }
            })
            .context("starting a thread to read the sink process")?;
        let line = match rx.recv_timeout(READY_WAIT) {
            Ok(line) => line,
            Err(_) => match me.child.try_wait() {
                Ok(Some(status)) => bail!("the sink process exited ({status}) before it was ready"),
                _ => bail!("the sink process printed no ready line within {READY_WAIT:?}"),
            },
        };
        me.ready = line.parse()?;
        Ok(me)
    }

    /// Closes the child's stdin and waits (bounded) for it to exit; kills it
    /// if it does not.
    pub(crate) fn stop(mut self) -> anyhow::Result<ExitStatus> {
        drop(self.stdin.take());
        let deadline = Instant::now() + EXIT_WAIT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("the sink process did not exit within {EXIT_WAIT:?} of its stdin closing; killed it");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for SinkProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
