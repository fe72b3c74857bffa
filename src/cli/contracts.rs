//! `msa contracts check` / `msa contracts update`: the wire contracts of
//! every message this binary declares, against a committed file.
//!
//! ```text
//! $ msa contracts update            # writes contracts/messages.json
//! $ msa contracts check             # CI: fails on a wire change without a new name or version
//! msa: error: contracts: `shop.PlaceOrder` (version 1) changed its wire shape without a new wire name or version:
//!   request: `PlaceOrder.qty` changed type: u32 -> u64
//! ```
//!
//! Each message's wire name, [`VERSION`](msa::RemoteMessage::VERSION) and
//! the wire shapes of its request and reply ([`msa::contract`], traced from
//! the types' serde implementations) are recorded; `check` compares them
//! with what the binary declares now. A shape that changed under the same
//! name and version is a breaking change (nodes of the old and the new
//! build would misread each other's bincode frames): `check` names the
//! message, the field and the change, and `update` refuses to record it
//! unless `--allow-breaking` is given. Any other difference (a new or
//! removed message, a bumped version) only means the file is out of date:
//! `check` fails asking for `msa contracts update`. docs/contracts.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use msa::contract::{self, MessageContract};
use serde::{Deserialize, Serialize};

/// Where the contracts file is, relative to the working directory.
const DEFAULT_FILE: &str = "contracts/messages.json";

/// `msa contracts ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ContractsCommand {
    /// Compare the wire shapes of every declared message with the contracts
    /// file; fail on a shape changed without a new wire name or version
    Check(FileArgs),
    /// Write the contracts file from the messages this binary declares
    /// (refuses a breaking change unless --allow-breaking)
    Update(UpdateArgs),
}

/// The file to compare with.
#[derive(Debug, Args)]
pub(crate) struct FileArgs {
    /// The contracts file
    #[arg(long, default_value = DEFAULT_FILE)]
    file: PathBuf,
}

/// Options of `update`.
#[derive(Debug, Args)]
pub(crate) struct UpdateArgs {
    #[command(flatten)]
    file: FileArgs,
    /// Record a changed wire shape under the same name and version (only
    /// for a message no running cluster uses yet)
    #[arg(long)]
    allow_breaking: bool,
}

/// The file's layout.
#[derive(Debug, Serialize, Deserialize)]
struct ContractsFile {
    /// How the file is made (a reminder for whoever opens it).
    #[serde(default)]
    about: String,
    /// Every message, sorted by wire name.
    messages: Vec<MessageContract>,
}

const ABOUT: &str = "Wire contracts of every #[derive(RemoteMessage)] type in the msa binary. \
                     Made by `msa contracts update`; checked in CI by `msa contracts check`. \
                     See docs/contracts.md.";

/// Runs `msa contracts ...`.
pub(crate) fn run(cmd: ContractsCommand) -> anyhow::Result<()> {
    let current = declared()?;
    match cmd {
        ContractsCommand::Check(args) => {
            let recorded = read(&args.file)?;
            let report = compare(&recorded, &current);
            if !report.breaking.is_empty() || !report.stale.is_empty() {
                bail!("{}", report.render(&args.file));
            }
            println!(
                "contracts: {} messages match {}",
                current.len(),
                args.file.display()
            );
            Ok(())
        }
        ContractsCommand::Update(args) => {
            let path = &args.file.file;
            if path.exists() {
                let recorded = read(path)?;
                let report = compare(&recorded, &current);
                if !report.breaking.is_empty() && !args.allow_breaking {
                    bail!(
                        "not updating {}:\n{}\nGive the message a new wire name or \
                         `#[msa(version = N)]`, or pass --allow-breaking if no running \
                         cluster uses it yet",
                        path.display(),
                        report.breaking.join("\n")
                    );
                }
            }
            write(path, &current)?;
            println!(
                "contracts: wrote {} messages to {}",
                current.len(),
                path.display()
            );
            Ok(())
        }
    }
}

/// Every declared message's contract; an untraceable one is an error.
fn declared() -> anyhow::Result<BTreeMap<String, MessageContract>> {
    let mut out = BTreeMap::new();
    let mut errors = Vec::new();
    for c in contract::declared() {
        match c {
            Ok(c) => {
                out.insert(c.name.clone(), c);
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        bail!("contracts: {}", errors.join("; "));
    }
    Ok(out)
}

fn read(path: &Path) -> anyhow::Result<BTreeMap<String, MessageContract>> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the contracts file {} (make it with `msa contracts update`)",
            path.display()
        )
    })?;
    let file: ContractsFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a contracts file", path.display()))?;
    Ok(file
        .messages
        .into_iter()
        .map(|m| (m.name.clone(), m))
        .collect())
}

fn write(path: &Path, current: &BTreeMap<String, MessageContract>) -> anyhow::Result<()> {
    let file = ContractsFile {
        about: ABOUT.into(),
        messages: current.values().cloned().collect(),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut text = serde_json::to_string_pretty(&file)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// What `check` found.
#[derive(Debug, Default)]
struct Report {
    /// One paragraph per message whose shape changed under the same name and version.
    breaking: Vec<String>,
    /// One line per other difference (the file is out of date).
    stale: Vec<String>,
}

impl Report {
    fn render(&self, file: &Path) -> String {
        let mut text = String::from("contracts check failed");
        for b in &self.breaking {
            let _ = write!(text, "\n{b}");
        }
        if !self.stale.is_empty() {
            let _ = write!(
                text,
                "\n{} is out of date (run `msa contracts update` and commit it):",
                file.display()
            );
            for s in &self.stale {
                let _ = write!(text, "\n  {s}");
            }
        }
        text
    }
}

fn compare(
    recorded: &BTreeMap<String, MessageContract>,
    current: &BTreeMap<String, MessageContract>,
) -> Report {
    let mut report = Report::default();
    for (name, now) in current {
        let Some(then) = recorded.get(name) else {
            report.stale.push(format!(
                "`{name}` (version {}) is new: not in the file",
                now.version
            ));
            continue;
        };
        let changes = contract::diff(then, now);
        if then.version == now.version {
            if !changes.is_empty() {
                let mut text = format!(
                    "`{name}` (version {}) changed its wire shape without a new wire name or version:",
                    now.version
                );
                for c in &changes {
                    let _ = write!(text, "\n  {c}");
                }
                report.breaking.push(text);
            }
        } else {
            report.stale.push(format!(
                "`{name}`: version {} in the file, {} declared ({})",
                then.version,
                now.version,
                if changes.is_empty() {
                    "same wire shape".to_string()
                } else {
                    format!("{} wire change(s)", changes.len())
                }
            ));
        }
    }
    for name in recorded.keys().filter(|n| !current.contains_key(*n)) {
        report.stale.push(format!(
            "`{name}` is in the file but no longer declared (removed or renamed)"
        ));
    }
    report
}
