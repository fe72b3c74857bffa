//! Helpers for the tests that run the real `msa` binary: start processes
//! that are always killed (even when a test fails), read their ready lines
//! with bounded waits, and poll conditions under a deadline.
#![allow(
    dead_code,
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a node may take to print its ready line (debug build, busy CI).
pub const READY_WAIT: Duration = Duration::from_secs(30);

/// The `msa` binary under test.
pub fn msa() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_msa"));
    // Every config key has an MSA_* variable: none leaks in from the
    // environment the tests run in.
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("MSA_") {
            c.env_remove(var);
        }
    }
    c
}

/// Runs `msa args..` to completion (bounded by `--timeout`-style flags of
/// the command itself) and returns its output.
pub fn run(args: &[&str]) -> Output {
    msa().args(args).stdin(Stdio::null()).output().unwrap()
}

/// What `msa node` prints once it listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    pub name: String,
    pub addr: String,
    pub incarnation: u64,
    pub services: Vec<String>,
    /// `gateway=`, when the node runs one.
    pub gateway: Option<String>,
    /// `ops=`, when the node serves the operations endpoints.
    pub ops: Option<String>,
}

impl Ready {
    pub fn parse(line: &str) -> Option<Ready> {
        let rest = line.strip_prefix("msa-node ")?;
        let field = |k: &str| {
            rest.split_whitespace()
                .find_map(|f| f.strip_prefix(k)?.strip_prefix('='))
                .map(str::to_string)
        };
        Some(Ready {
            name: field("name")?,
            addr: field("addr")?,
            incarnation: field("incarnation")?.parse().ok()?,
            services: field("services")?
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            gateway: field("gateway"),
            ops: field("ops"),
        })
    }
}

/// A child process that is killed (SIGKILL) and reaped when dropped. Its
/// stdout lines arrive on `lines`; its stderr is copied to the test's
/// output, prefixed with `label`, so it shows when a test fails.
#[derive(Debug)]
pub struct Proc {
    pub label: String,
    pub child: Child,
    lines: mpsc::Receiver<String>,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Proc {
    /// Starts `cmd` with piped stdout and stderr.
    pub fn spawn(label: &str, mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let err = child.stderr.take().unwrap();
        let prefix = label.to_string();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = stderr.clone();
        std::thread::spawn(move || copy_prefixed(&prefix, err, &kept));
        Proc {
            label: label.to_string(),
            child,
            lines,
            stderr,
        }
    }

    /// The stderr lines (log lines) the process wrote so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// The next stdout line, waiting at most `timeout`.
    pub fn line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Reads stdout lines until one satisfies `f`, for at most `timeout`.
    pub fn line_where(&self, timeout: Duration, f: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let line = self.line(left)?;
            if f(&line) {
                return Some(line);
            }
        }
    }

    /// Waits for the process to exit, for at most `timeout`.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
    }

    /// Sends `sig`.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, sig).unwrap();
    }

    /// `SIGSTOP`, then waits until the kernel shows the process stopped
    /// (`kill` only queues the signal; the process may run a little longer).
    pub fn freeze(&self) {
        self.signal(nix::sys::signal::Signal::SIGSTOP);
        let stat = format!("/proc/{}/stat", self.child.id());
        let stopped = eventually(Duration::from_secs(5), || {
            // The state follows the command name, which is in parentheses.
            std::fs::read_to_string(&stat).is_ok_and(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('T'))
            })
        });
        assert!(stopped, "the process did not stop after SIGSTOP");
    }

    /// `kill -9`, and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn copy_prefixed(prefix: &str, from: impl Read, kept: &std::sync::Mutex<Vec<String>>) {
    for line in BufReader::new(from).lines() {
        let Ok(line) = line else { break };
        eprintln!("[{prefix}] {line}");
        if let Ok(mut k) = kept.lock() {
            k.push(line);
        }
    }
}

/// A running `msa node`, killed when dropped.
#[derive(Debug)]
pub struct NodeProc {
    pub proc: Proc,
    pub ready: Ready,
}

impl NodeProc {
    /// Starts `msa node --name name` on a free loopback port, with the
    /// secret in `MSA_SECRET`, seeding `seed`, running `services`, and waits
    /// for its ready line.
    pub fn start(name: &str, secret: &str, seed: Option<&str>, services: &[&str]) -> NodeProc {
        let mut cmd = msa();
        cmd.args([
            "node",
            "--name",
            name,
            "--listen",
            "127.0.0.1:0",
            "--arbiters",
            "1",
        ])
        .env("MSA_SECRET", secret);
        if let Some(s) = seed {
            cmd.args(["--seed", s]);
        }
        for s in services {
            cmd.args(["--service", s]);
        }
        let proc = Proc::spawn(name, cmd);
        let line = proc
            .line_where(READY_WAIT, |l| l.starts_with("msa-node "))
            .unwrap_or_else(|| panic!("{name} printed no ready line within {READY_WAIT:?}"));
        let ready = Ready::parse(&line).unwrap_or_else(|| panic!("bad ready line: {line}"));
        assert_eq!(ready.name, name);
        NodeProc { proc, ready }
    }

    pub fn addr(&self) -> &str {
        &self.ready.addr
    }
}

/// `msa cluster status --json` against `addr`, parsed; `None` if it failed.
pub fn status_json(addr: &str, secret: &str) -> Option<serde_json::Value> {
    let out = msa()
        .args([
            "cluster",
            "status",
            "--json",
            "--timeout",
            "3",
            "--seed",
            addr,
        ])
        .env("MSA_SECRET", secret)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// Names of the nodes that run `service`, in a status JSON object.
pub fn service_nodes(status: &serde_json::Value, service: &str) -> Vec<String> {
    status["services"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["name"] == service)
        .flat_map(|s| s["nodes"].as_array().cloned().unwrap_or_default())
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect()
}

/// Polls `cond` every 50 ms until it holds; false if `timeout` passes first.
pub fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A config file in the temp dir, removed when dropped.
#[derive(Debug)]
pub struct TempFile(pub std::path::PathBuf);

impl TempFile {
    pub fn new(tag: &str, text: &str) -> TempFile {
        let path =
            std::env::temp_dir().join(format!("msa-cli-test-{}-{tag}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`);
/// answers the status and the body as text.
pub fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {text:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, rest.to_string())
}

/// A current-thread tokio runtime, for a blocking test that awaits calls of
/// its in-process node with `block_on`.
pub fn block_on_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// An in-process node `name` on loopback (a free port) that joins the
/// cluster of `msa node` processes through `seed`, proving `secret`: how a
/// test sees and calls what those processes run.
pub fn tester_node(name: &str, seed: &str, secret: &str) -> msa::Node {
    msa::Node::builder()
        .name(name)
        .arbiters(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .seed(seed)
        .secret(secret.as_bytes())
        .start()
        .unwrap()
}
