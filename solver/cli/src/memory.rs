//! The machine's memory as a run sees it: how much this process may use, its
//! peak so far, and the check that refuses a training run whose estimated
//! peak ([`Footprint`]) would not fit, before any data are generated.
//!
//! Why refuse rather than try: past the limit the kernel kills the process
//! (or the job's cgroup) without a word, after the data generation and the
//! steps before the peak have spent their time; the estimate takes
//! milliseconds and names the setting to change. It is an estimate (the
//! module docs of [`Footprint`] say what it counts), so `--skip-memory-check`
//! runs the scenario anyway.

use std::path::Path;

use anyhow::{Context, bail};
use tessera_scenarios::Scenario;
use tessera_solver::{EvalFootprint, Footprint, Layout, World, human_bytes};

/// The most memory this process may use, and where that bound comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    /// Bytes.
    pub bytes: u64,
    /// What set it: the cgroup's `memory.max`, or the machine's `MemTotal`.
    pub source: String,
}

/// The lowest of the machine's memory (`MemTotal`), the limits of the
/// cgroups this process runs in (v2 `memory.max` from its own group up to
/// the root, v1 `memory.limit_in_bytes`: a batch job's or a container's
/// bound, not the node's) and the user's own bound `TESSERA_MEMORY_LIMIT`
/// (on a machine shared with other work). `None` where none can be read
/// (not Linux, no variable).
///
/// Errors: a `TESSERA_MEMORY_LIMIT` that is not a size.
pub fn limit() -> anyhow::Result<Option<Limit>> {
    let user = match std::env::var(LIMIT_VARIABLE) {
        Ok(value) => Some(Limit {
            bytes: parse_size(&value).with_context(|| {
                format!(
                    "{LIMIT_VARIABLE} = {value:?} is not a size (bytes, or a number with \
                     K, M, G or T, e.g. 8G)"
                )
            })?,
            source: LIMIT_VARIABLE.into(),
        }),
        Err(_) => None,
    };
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| meminfo_kib(&text, "MemTotal"))
        .map(|kib| Limit {
            bytes: kib * 1024,
            source: "the machine's MemTotal".into(),
        });
    let groups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    Ok(cgroup_limits(&groups, Path::new("/sys/fs/cgroup"))
        .into_iter()
        .chain(total)
        .chain(user)
        .min_by_key(|limit| limit.bytes))
}

/// The environment variable that bounds the memory a run may plan for.
const LIMIT_VARIABLE: &str = "TESSERA_MEMORY_LIMIT";

/// `8G`, `512M`, `1.5G`, `4096`: bytes, or a number with a binary unit
/// (K, M, G, T; an optional `i`/`iB`/`B` after it).
fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let unit_at = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(unit_at);
    let shift = match unit.trim_end_matches("iB").trim_end_matches(['B', 'i']) {
        "" => 0,
        "K" | "k" => 10,
        "M" | "m" => 20,
        "G" | "g" => 30,
        "T" | "t" => 40,
        _ => return None,
    };
    let value = number.trim().parse::<f64>().ok()? * (1u64 << shift) as f64;
    (value.is_finite() && value >= 1.0 && value < u64::MAX as f64).then_some(value as u64)
}

/// The bytes the kernel could hand out now without swapping
/// (`MemAvailable`), where it says.
pub fn available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    meminfo_kib(&text, "MemAvailable").map(|kib| kib * 1024)
}

/// The `name:` line of `/proc/meminfo`'s `text`, in KiB.
fn meminfo_kib(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The limits of the cgroups listed in `groups` (`/proc/self/cgroup`),
/// read under `root`: for cgroup v2 (`0::/path`) every `memory.max` from
/// the group up to the root; for v1 the memory controller's
/// `memory.limit_in_bytes`. "max" and v1's page-rounded "unlimited" are no
/// limit.
fn cgroup_limits(groups: &str, root: &Path) -> Vec<Limit> {
    let mut limits = Vec::new();
    for line in groups.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let relative = path.trim_start_matches('/');
        let (base, file) = if controllers.is_empty() {
            (root.to_path_buf(), "memory.max")
        } else if controllers.split(',').any(|c| c == "memory") {
            (root.join("memory"), "memory.limit_in_bytes")
        } else {
            continue;
        };
        let mut dir = base.join(relative);
        loop {
            let value = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
            // v1 says "no limit" as the largest page multiple of i64.
            if let Ok(bytes) = value.trim().parse::<u64>()
                && bytes < (i64::MAX as u64) / 2
            {
                limits.push(Limit {
                    bytes,
                    source: format!("the cgroup's {}", dir.join(file).display()),
                });
            }
            if dir == base || !dir.pop() {
                break;
            }
        }
    }
    limits
}

/// Processes of this job on this machine, from the launcher (`Open MPI`'s
/// `OMPI_COMM_WORLD_LOCAL_SIZE`, MPICH's and Intel MPI's
/// `MPI_LOCALNRANKS`); 1 without one.
fn local_ranks(var: impl Fn(&str) -> Option<String>) -> u64 {
    ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"]
        .into_iter()
        .find_map(|name| var(name)?.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1)
}

/// The process's peak resident set so far (`VmHWM` of `/proc/self/status`),
/// in bytes.
pub fn peak_resident() -> anyhow::Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    meminfo_kib(&status, "VmHWM")
        .map(|kib| kib * 1024)
        .context("no VmHWM in /proc/self/status")
}

/// `--skip-memory-check`, shared by `train`, `run` and `eval`.
#[derive(Debug, clap::Args)]
pub struct MemoryCheck {
    /// Run even when the estimated peak memory exceeds what this process
    /// may use (the estimate can be wrong; see "Memory" in the README).
    #[arg(long = "skip-memory-check")]
    skip: bool,
}

/// What `tessera run` is estimated to need: its training's peak and its
/// evaluation's, one after the other.
pub struct RunEstimate {
    pub training: Footprint,
    pub evaluation: EvalFootprint,
}

impl MemoryCheck {
    /// `tessera train`: refuses, on every rank, a training whose estimated
    /// peak exceeds on any rank its share of the memory it may use (the
    /// limit over the job's processes on its machine); warns on rank 0 when
    /// it exceeds what is free now. Returns the estimate. A model on a GPU
    /// is neither estimated nor checked (`None`): its activations live in
    /// the device's memory, which `tessera devices` reports.
    pub fn training(
        &self,
        scenario: &Scenario,
        world: &World,
    ) -> anyhow::Result<Option<Footprint>> {
        if !scenario.device.is_cpu() {
            return Ok(None);
        }
        let footprint = training_footprint(scenario, world)?;
        let need = Need {
            bytes: footprint.total(),
            what: format!("this run's training needs {footprint}"),
            advice: TRAINING_ADVICE,
        };
        self.check(&need, Some(world))?;
        Ok(Some(footprint))
    }

    /// `tessera run`: as [`MemoryCheck::training`], for the larger of the
    /// training's peak and the evaluation's after it (rank 0's, which
    /// evaluates alone).
    pub fn run(&self, scenario: &Scenario, world: &World) -> anyhow::Result<Option<RunEstimate>> {
        if !scenario.device.is_cpu() {
            return Ok(None);
        }
        let training = training_footprint(scenario, world)?;
        let evaluation = evaluation_footprint(scenario)?;
        let need = if world.is_root() && evaluation.total() > training.total() {
            Need {
                bytes: evaluation.total(),
                what: format!(
                    "this run's evaluation needs {evaluation} (its training {})",
                    human_bytes(training.total())
                ),
                advice: "train it with `tessera train` and evaluate the checkpoint with \
                         `tessera eval` where it fits, or lower eval.samples or leave the \
                         finest of eval.resolutions out",
            }
        } else {
            Need {
                bytes: training.total(),
                what: format!("this run's training needs {training}"),
                advice: TRAINING_ADVICE,
            }
        };
        self.check(&need, Some(world))?;
        Ok(Some(RunEstimate {
            training,
            evaluation,
        }))
    }

    /// `tessera eval` (one process): as [`MemoryCheck::training`], for the
    /// evaluation's estimated peak.
    pub fn evaluation(&self, scenario: &Scenario) -> anyhow::Result<Option<EvalFootprint>> {
        if !scenario.device.is_cpu() {
            return Ok(None);
        }
        let evaluation = evaluation_footprint(scenario)?;
        let need = Need {
            bytes: evaluation.total(),
            what: format!("this evaluation needs {evaluation}"),
            advice: "lower eval.samples or leave the finest of eval.resolutions out \
                     (--set eval.resolutions=[…])",
        };
        self.check(&need, None)?;
        Ok(Some(evaluation))
    }

    /// Refuses `need` (on every rank of `world`, if given) when it exceeds,
    /// on any, the process's share of the memory it may use; warns (on rank
    /// 0) when it exceeds what is free now.
    fn check(&self, need: &Need, world: Option<&World>) -> anyhow::Result<()> {
        let checked = !self.skip;
        let share = limit()?.map(|limit| {
            let ranks = local_ranks(|name| std::env::var(name).ok());
            (limit.bytes / ranks, limit, ranks)
        });
        let refusal = match &share {
            Some((bytes, limit, ranks)) if checked && need.bytes > *bytes => {
                let shared = if *ranks > 1 {
                    format!(", shared by {ranks} processes of this job on this machine")
                } else {
                    String::new()
                };
                Some(format!(
                    "{}; that is more than the {} each process may use ({}{shared}); {} \
                     (--skip-memory-check runs anyway)",
                    need.what,
                    human_bytes(*bytes),
                    limit.source,
                    need.advice,
                ))
            }
            _ => None,
        };
        let mut votes = [f64::from(u8::from(refusal.is_some()))];
        if let Some(world) = world {
            world.comm().all_reduce_sum(&mut votes)?;
        }
        match refusal {
            Some(reason) => bail!(reason),
            None if votes[0] > 0.0 => bail!(
                "another rank's machine cannot hold this run ({} per process)",
                human_bytes(need.bytes)
            ),
            None => {}
        }
        if checked
            && world.is_none_or(World::is_root)
            && let Some(free) = available()
            && need.bytes > free
        {
            eprintln!(
                "warning: {}, more than the {} free now",
                need.what,
                human_bytes(free)
            );
        }
        Ok(())
    }
}

/// An estimated peak, what it is of, and what would lower it.
struct Need {
    bytes: u64,
    what: String,
    advice: &'static str,
}

const TRAINING_ADVICE: &str = "lower training.batch_size, split the batch over more data \
                               ranks, use model.dtype = \"f32\" or fewer or narrower layers";

/// The training's estimate in this process (its share of the batch).
fn training_footprint(scenario: &Scenario, world: &World) -> anyhow::Result<Footprint> {
    let layout = Layout::resolve(scenario, world.size())?;
    Footprint::of_training(scenario, scenario.training.batch_size / layout.data)
        .context("estimating the run's memory")
}

fn evaluation_footprint(scenario: &Scenario) -> anyhow::Result<EvalFootprint> {
    EvalFootprint::of_evaluation(scenario).context("estimating the evaluation's memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_with_binary_units() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("8G"), Some(8 << 30));
        assert_eq!(parse_size(" 512 MiB "), Some(512 << 20));
        assert_eq!(parse_size("1.5g"), Some(3 << 29));
        assert_eq!(parse_size("2TB"), Some(2 << 40));
        assert_eq!(parse_size("1k"), Some(1024));
        for bad in ["", "G", "-1G", "0", "8X", "1e30T", "nan"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn meminfo_lines_are_read_in_kib() {
        let text = "MemTotal:       24590124 kB\nMemFree:  1 kB\nMemAvailable:   20000000 kB\n";
        assert_eq!(meminfo_kib(text, "MemTotal"), Some(24_590_124));
        assert_eq!(meminfo_kib(text, "MemAvailable"), Some(20_000_000));
        assert_eq!(meminfo_kib(text, "Mem"), None);
        assert_eq!(meminfo_kib("VmHWM:\t  812 kB\n", "VmHWM"), Some(812));
    }

    /// The v2 group's own limit and its parent's are both found, "max" is
    /// none; a v1 memory controller's limit is read, its "unlimited" is none.
    #[test]
    fn cgroup_limits_are_read_up_to_the_root() {
        let root = std::env::temp_dir().join(format!("tessera-cgroup-{}", std::process::id()));
        let job = root.join("slurm/job_7");
        std::fs::create_dir_all(&job).unwrap();
        std::fs::write(root.join("memory.max"), "max\n").unwrap();
        std::fs::write(root.join("slurm/memory.max"), "8589934592\n").unwrap();
        std::fs::write(job.join("memory.max"), "4294967296\n").unwrap();
        let limits = cgroup_limits("0::/slurm/job_7\n", &root);
        let bytes: Vec<u64> = limits.iter().map(|l| l.bytes).collect();
        assert_eq!(bytes, [4 << 30, 8 << 30]);
        assert!(limits[0].source.contains("job_7"), "{}", limits[0].source);

        let v1 = root.join("memory/docker/abc");
        std::fs::create_dir_all(&v1).unwrap();
        std::fs::write(v1.join("memory.limit_in_bytes"), "2147483648\n").unwrap();
        std::fs::write(
            root.join("memory/memory.limit_in_bytes"),
            "9223372036854771712\n",
        )
        .unwrap();
        let limits = cgroup_limits("4:cpu,cpuacct:/docker/abc\n3:memory:/docker/abc\n", &root);
        assert_eq!(
            limits.iter().map(|l| l.bytes).collect::<Vec<_>>(),
            [2 << 30]
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_launcher_says_how_many_processes_share_the_machine() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(local_ranks(env(&[])), 1);
        assert_eq!(local_ranks(env(&[("OMPI_COMM_WORLD_LOCAL_SIZE", "4")])), 4);
        assert_eq!(local_ranks(env(&[("MPI_LOCALNRANKS", "2")])), 2);
        assert_eq!(local_ranks(env(&[("MPI_LOCALNRANKS", "x")])), 1);
    }
}
