//! The state file `msa cluster up` writes, so that the operator commands
//! (`status`-like fault commands: `partition`, `heal`, `slow`, `kill`,
//! `pause`, `resume`) find a local cluster without `--seed` and `--secret`.
//!
//! Path: `--state FILE` or `MSA_STATE`, else `$XDG_RUNTIME_DIR/msa/cluster.json`,
//! else `<temp dir>/msa-<uid>/cluster.json`. Format (JSON, mode 0600 since it
//! holds the secret):
//! `{"cluster": "msa", "secret": "…", "seed": "127.0.0.1:PORT",
//!   "nodes": [{"name": "node1", "addr": "127.0.0.1:PORT", "pid": 1234}, …]}`.
//! `cluster up` removes it when it stops.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// A cluster started by `msa cluster up`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ClusterState {
    /// Cluster name.
    pub(crate) cluster: String,
    /// Cluster secret.
    pub(crate) secret: String,
    /// node1's remoting address.
    pub(crate) seed: String,
    /// Every node as started.
    pub(crate) nodes: Vec<NodeState>,
    /// Where `msa cluster up --tls` put the certificates (the operator's is
    /// `operator.pem` there); absent without TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tls_dir: Option<std::path::PathBuf>,
}

/// One node of [`ClusterState`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NodeState {
    /// Node name.
    pub(crate) name: String,
    /// Remoting address.
    pub(crate) addr: String,
    /// Process id.
    pub(crate) pid: u32,
}

/// Where the state file is unless `--state` says otherwise.
pub(crate) fn default_path() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("msa").join("cluster.json"),
        None => {
            use std::os::unix::fs::MetadataExt;
            // This process's uid, without libc: the owner of /proc/self.
            let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
            std::env::temp_dir()
                .join(format!("msa-{uid}"))
                .join("cluster.json")
        }
    }
}

/// Writes `state` to `path` (creating its directory), readable by the
/// owner only.
pub(crate) fn write(path: &Path, state: &ClusterState) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(serde_json::to_string_pretty(state)?.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Reads the state file at `path`.
pub(crate) fn read(path: &Path) -> anyhow::Result<ClusterState> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "no --seed given and no cluster state at {} (start one with `msa cluster up`, or pass --seed and --secret)",
            path.display()
        )
    })?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a cluster state file", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_file_round_trips_and_only_its_owner_reads_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("msa-state-test-{}", std::process::id()));
        let path = dir.join("cluster.json");
        let s = ClusterState {
            cluster: "msa".into(),
            secret: "s3".into(),
            seed: "127.0.0.1:1".into(),
            nodes: vec![NodeState {
                name: "node1".into(),
                addr: "127.0.0.1:1".into(),
                pid: 42,
            }],
            tls_dir: None,
        };
        write(&path, &s).unwrap();
        assert_eq!(read(&path).unwrap(), s);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains("msa cluster up"), "{e}");
    }
}
