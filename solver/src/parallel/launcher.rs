//! Whether this process was started by a parallel launcher, and as one of how
//! many ranks, read from the environment the launchers set:
//!
//! - `OMPI_COMM_WORLD_SIZE`: Open MPI's `mpirun`/`mpiexec`;
//! - `PMI_SIZE`: MPICH's Hydra and Intel MPI;
//! - `SLURM_STEP_NUM_TASKS` (with `SLURM_PROCID`): Slurm's `srun`. The step's
//!   count, not `SLURM_NTASKS`: a batch script itself runs inside an allocation
//!   of many tasks, and a plain `tessera` call there is a single process.

/// The launcher of this process and the number of ranks it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Launcher {
    /// Which launcher (for messages).
    pub name: &'static str,
    /// Number of ranks it declares.
    pub size: usize,
}

use super::ParallelError;

/// The launcher declared by the environment `var` reads (`None`: started
/// without one).
pub fn detect(var: impl Fn(&str) -> Option<String>) -> Result<Option<Launcher>, ParallelError> {
    let candidates: [(&'static str, &'static str, Option<&str>); 3] = [
        ("OMPI_COMM_WORLD_SIZE", "Open MPI (mpirun)", None),
        ("PMI_SIZE", "an MPICH-style launcher (mpiexec)", None),
        ("SLURM_STEP_NUM_TASKS", "Slurm (srun)", Some("SLURM_PROCID")),
    ];
    for (variable, name, companion) in candidates {
        let Some(value) = var(variable) else { continue };
        if companion.is_some_and(|c| var(c).is_none()) {
            continue;
        }
        let size = value
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|&s| s > 0)
            .ok_or_else(|| ParallelError::BadLauncherEnv {
                variable,
                value: value.clone(),
            })?;
        return Ok(Some(Launcher { name, size }));
    }
    Ok(None)
}

/// [`detect`] on this process's environment.
pub fn from_env() -> Result<Option<Launcher>, ParallelError> {
    detect(|name| std::env::var(name).ok())
}

/// This process's rank among those a launcher started on the same node, as
/// the environment `var` reads declares it (`None`: no launcher says so):
/// `OMPI_COMM_WORLD_LOCAL_RANK` (Open MPI), `MPI_LOCALRANKID` (MPICH's Hydra,
/// Intel MPI), `SLURM_LOCALID` (`srun`). A process with `device = "cuda"`
/// takes the GPU of this number ([`tessera_scenarios::Device::gpu`]).
///
/// Errors: a variable that is not a number.
pub fn detect_local_rank(
    var: impl Fn(&str) -> Option<String>,
) -> Result<Option<usize>, ParallelError> {
    for variable in [
        "OMPI_COMM_WORLD_LOCAL_RANK",
        "MPI_LOCALRANKID",
        "SLURM_LOCALID",
    ] {
        if let Some(value) = var(variable) {
            return value
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| ParallelError::BadLauncherEnv { variable, value });
        }
    }
    Ok(None)
}

/// `detect_local_rank` on this process's environment.
pub fn local_rank() -> Result<Option<usize>, ParallelError> {
    detect_local_rank(|name| std::env::var(name).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn each_launcher_says_the_local_rank() {
        assert_eq!(detect_local_rank(env(&[])).unwrap(), None);
        for variable in [
            "OMPI_COMM_WORLD_LOCAL_RANK",
            "MPI_LOCALRANKID",
            "SLURM_LOCALID",
        ] {
            assert_eq!(detect_local_rank(env(&[(variable, "3")])).unwrap(), Some(3));
            let err = detect_local_rank(env(&[(variable, "x")])).unwrap_err();
            assert!(err.to_string().contains(variable), "{err}");
        }
    }

    #[test]
    fn each_launcher_is_recognised() {
        assert_eq!(detect(env(&[])).unwrap(), None);
        let ompi = detect(env(&[("OMPI_COMM_WORLD_SIZE", "4")]))
            .unwrap()
            .unwrap();
        assert_eq!(ompi.size, 4);
        let pmi = detect(env(&[("PMI_SIZE", "3")])).unwrap().unwrap();
        assert_eq!(pmi.size, 3);
        let srun = detect(env(&[("SLURM_STEP_NUM_TASKS", "8"), ("SLURM_PROCID", "5")]))
            .unwrap()
            .unwrap();
        assert_eq!((srun.name, srun.size), ("Slurm (srun)", 8));
    }

    #[test]
    fn a_batch_script_allocation_is_not_a_launch() {
        // Inside `sbatch -n 8` the script sees SLURM_NTASKS=8 and SLURM_PROCID=0.
        let batch = env(&[("SLURM_NTASKS", "8"), ("SLURM_PROCID", "0")]);
        assert_eq!(detect(batch).unwrap(), None);
    }

    #[test]
    fn a_malformed_size_is_an_error() {
        let err = detect(env(&[("PMI_SIZE", "lots")])).unwrap_err();
        assert!(
            matches!(err, ParallelError::BadLauncherEnv { .. }),
            "{err:?}"
        );
        assert!(detect(env(&[("PMI_SIZE", "0")])).is_err());
    }
}
