//! A run directory's `provenance.jsonl`: one line per command that wrote
//! into it (`run`, `train`, each `train --resume`, `eval`), saying which
//! build ran (version, git commit, features), where (host, CPU, threads,
//! ranks, device), from which command line, and when it started (UTC).
//!
//! Why: a number in `summary.json` is only as trustworthy as what is known
//! about how it was made, and a run that was resumed on another machine, or
//! evaluated by a later build, is otherwise indistinguishable from one made
//! in one go. The line is written when the command starts, so a run stopped
//! by a time limit or killed keeps it; lines are only ever appended.

use std::io::Write;

use anyhow::Context;
use serde::Serialize;
use tessera_solver::{RunDir, host_name};

use crate::utc;

/// One command's line (see the module doc).
#[derive(Debug, Serialize)]
pub struct Record {
    /// The command line, program first.
    pub command: Vec<String>,
    /// When the command started (RFC 3339, UTC).
    pub started: String,
    /// This tessera's version.
    pub version: &'static str,
    /// The git commit it was built from, if built in a git checkout.
    pub commit: Option<&'static str>,
    /// The optional cargo features built in.
    pub features: Vec<&'static str>,
    /// The machine (rank 0's, for a run over several).
    pub host: String,
    /// The CPU model, where the system says (Linux: `/proc/cpuinfo`).
    pub cpu: Option<String>,
    /// Threads the CPU work runs on (per rank).
    pub threads: usize,
    /// Ranks the command runs over.
    pub ranks: usize,
    /// Where the model runs (`cpu`, `cuda`, `cuda:N`).
    pub device: String,
}

impl Record {
    /// This process's record, started now, over `ranks` ranks with the model
    /// on `device`.
    pub fn now(ranks: usize, device: String) -> Self {
        Self {
            command: std::env::args().collect(),
            started: utc::rfc3339(utc::now()),
            version: env!("CARGO_PKG_VERSION"),
            commit: option_env!("TESSERA_COMMIT"),
            features: features(),
            host: host_name(),
            cpu: cpu_model(),
            threads: rayon::current_num_threads(),
            ranks,
            device,
        }
    }

    /// Appends the record as one line to `run`'s `provenance.jsonl`
    /// (creating the directory and the file if needed).
    ///
    /// Errors: the file cannot be created or written.
    pub fn append_to(&self, run: &RunDir) -> anyhow::Result<()> {
        let path = run.provenance();
        let mut line = serde_json::to_string(self).context("serialising the provenance record")?;
        line.push('\n');
        std::fs::create_dir_all(run.root())
            .and_then(|()| {
                let mut file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)?;
                // One write of the whole line: concurrent appends do not interleave.
                file.write_all(line.as_bytes())
            })
            .with_context(|| format!("writing {}", path.display()))
    }
}

/// The first `model name` of `/proc/cpuinfo`, if there is one.
fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, name)| name.trim().to_owned())
        .filter(|name| !name.is_empty())
}

/// The optional cargo features this binary was built with.
pub fn features() -> Vec<&'static str> {
    [
        ("cuda", cfg!(feature = "cuda")),
        ("nccl", cfg!(feature = "nccl")),
        ("mpi", cfg!(feature = "mpi")),
        ("hdf5", cfg!(feature = "hdf5")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect()
}
