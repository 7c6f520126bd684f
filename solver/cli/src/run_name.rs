//! Default run directories: `runs/<scenario>-<method>-<YYYYMMDD-HHMMSS>`, the
//! time in UTC so that names sort by start time on any machine, with `-2`,
//! `-3`, … appended when a name is taken (two runs in the same second): a run
//! never writes into another run's directory.

use std::io;
use std::path::{Path, PathBuf};

use anyhow::Context;
use tessera_scenarios::Scenario;
use tessera_solver::{RunDir, World, method_name};

use crate::utc;

/// The run directory of a new run: `out` if given, else on rank 0 a fresh
/// default one. The other ranks of a multi-rank run never touch the run
/// directory (rank 0 writes config, metrics and checkpoints), so without `out`
/// they get an empty path instead of claiming directories of their own.
///
/// Errors: the default directory cannot be created.
pub fn fresh_run_dir(
    out: Option<PathBuf>,
    scenario: &Scenario,
    world: &World,
) -> anyhow::Result<RunDir> {
    Ok(match out {
        Some(dir) => RunDir::new(dir),
        None if world.is_root() => {
            default_run_dir(scenario).context("creating the run directory")?
        }
        None => RunDir::new(PathBuf::new()),
    })
}

/// Claims a fresh default run directory for `scenario` under `runs/` (creates
/// it, so that a concurrent run cannot take the same name).
///
/// Errors: `runs/` cannot be created or written.
fn default_run_dir(scenario: &Scenario) -> io::Result<RunDir> {
    let base = format!(
        "{}-{}-{}",
        scenario.name,
        method_name(scenario),
        utc::stamp(utc::now())
    );
    claim(Path::new("runs"), &base).map(RunDir::new)
}

/// Creates `parent/base`, or the first free `parent/base-2`, `-3`, …
fn claim(parent: &Path, base: &str) -> io::Result<PathBuf> {
    std::fs::create_dir_all(parent)?;
    for n in 1.. {
        let path = match n {
            1 => parent.join(base),
            _ => parent.join(format!("{base}-{n}")),
        };
        match std::fs::create_dir(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    unreachable!("an unbounded range of names")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taken_names_get_a_suffix() {
        let parent = std::env::temp_dir().join(format!("tessera-run-name-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&parent);
        let first = claim(&parent, "a").unwrap();
        let second = claim(&parent, "a").unwrap();
        let third = claim(&parent, "a").unwrap();
        assert_eq!(first, parent.join("a"));
        assert_eq!(second, parent.join("a-2"));
        assert_eq!(third, parent.join("a-3"));
        std::fs::remove_dir_all(&parent).unwrap();
    }
}
