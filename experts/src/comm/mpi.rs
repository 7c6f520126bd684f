//! The MPI communicator (cargo feature `mpi`): Open MPI or MPICH through the
//! `mpi` crate, on `MPI_COMM_WORLD`. MPI is initialised with the default
//! threading level, so every call must come from the thread that created the
//! [`Mpi`] (it is neither `Send` nor `Sync`, which the compiler enforces).

use mpi::Count;
use mpi::datatype::{Partition, PartitionMut};
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator as _, CommunicatorCollectives, Root};

use std::sync::atomic::{AtomicBool, Ordering};

use super::{CommError, Communicator};

/// Whether MPI is initialised and not yet finalised (the panic hook may only
/// call `MPI_Abort` then).
static LIVE: AtomicBool = AtomicBool::new(false);

/// `MPI_COMM_WORLD` of a process started by `mpirun`, `mpiexec` or `srun`.
/// Dropping it finalises MPI.
pub struct Mpi {
    world: SimpleCommunicator,
    // Declared after `world`: fields drop in order, and finalisation comes last.
    _universe: Universe,
}

impl Mpi {
    /// Initialises MPI. Errors if MPI was already initialised in this process.
    pub fn init() -> Result<Self, CommError> {
        let universe = mpi::initialize().ok_or(CommError::Transport {
            op: "MPI_Init",
            reason: "MPI is already initialised in this process".into(),
        })?;
        LIVE.store(true, Ordering::SeqCst);
        Ok(Self {
            world: universe.world(),
            _universe: universe,
        })
    }

    /// Makes a panic on any thread of this rank end the whole job: the previous
    /// hook prints the message, then this rank names itself and aborts the
    /// world, since a rank that just exited would leave the others blocked in
    /// their next collective. Rayon workers panic on their own threads, so the
    /// hook uses the C `MPI_Abort`, which Open MPI and MPICH allow from any
    /// thread when ending the job.
    pub fn install_panic_hook(&self) {
        let (rank, size) = (self.rank(), self.size());
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            if LIVE.load(Ordering::SeqCst) {
                eprintln!("rank {rank} of {size} panicked; aborting all ranks");
                // SAFETY: MPI is initialised and not finalised (LIVE), and
                // MPI_Abort does not return.
                unsafe {
                    mpi::ffi::MPI_Abort(mpi::ffi::RSMPI_COMM_WORLD, 101);
                }
            }
        }));
    }

    fn root(&self, root: usize) -> Result<mpi::topology::Process<'_>, CommError> {
        CommError::check_rank(root, self.size())?;
        Ok(self.world.process_at_rank(count(root, "root rank")?))
    }
}

/// `n` as an MPI count (a C `int`).
fn count(n: usize, what: &'static str) -> Result<Count, CommError> {
    Count::try_from(n).map_err(|_| CommError::Transport {
        op: what,
        reason: format!("{n} exceeds the largest MPI count {}", Count::MAX),
    })
}

impl Drop for Mpi {
    fn drop(&mut self) {
        // The fields drop after this, and with them MPI is finalised.
        LIVE.store(false, Ordering::SeqCst);
    }
}

/// Exclusive prefix sums: the displacements of consecutive blocks.
fn displacements(counts: &[Count]) -> Vec<Count> {
    counts
        .iter()
        .scan(0, |offset, &c| {
            let start = *offset;
            *offset += c;
            Some(start)
        })
        .collect()
}

impl Communicator for Mpi {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn all_to_all_v(&self, send: &[Vec<f64>]) -> Result<Vec<Vec<f64>>, CommError> {
        let size = self.size();
        CommError::check_per_rank("all-to-all send buffers", size, send.len())?;
        let send_counts = send
            .iter()
            .map(|s| count(s.len(), "all-to-all block"))
            .collect::<Result<Vec<_>, _>>()?;
        let mut recv_counts = vec![0 as Count; size];
        self.world
            .all_to_all_into(&send_counts[..], &mut recv_counts[..]);
        let flat: Vec<f64> = send.concat();
        let total: usize = recv_counts.iter().map(|&c| c as usize).sum();
        let mut recv = vec![0.0; total];
        let send_displs = displacements(&send_counts);
        let recv_displs = displacements(&recv_counts);
        {
            let partition = Partition::new(&flat[..], &send_counts[..], &send_displs[..]);
            let mut into = PartitionMut::new(&mut recv[..], &recv_counts[..], &recv_displs[..]);
            self.world.all_to_all_varcount_into(&partition, &mut into);
        }
        Ok(recv_displs
            .iter()
            .zip(&recv_counts)
            .map(|(&d, &c)| recv[d as usize..(d + c) as usize].to_vec())
            .collect())
    }

    fn broadcast_bytes(&self, root: usize, bytes: &mut Vec<u8>) -> Result<(), CommError> {
        let process = self.root(root)?;
        let mut len = bytes.len() as u64;
        process.broadcast_into(&mut len);
        bytes.resize(len as usize, 0);
        count(bytes.len(), "broadcast length")?;
        process.broadcast_into(&mut bytes[..]);
        Ok(())
    }

    fn gather(&self, root: usize, values: &[f64]) -> Result<Option<Vec<Vec<f64>>>, CommError> {
        let process = self.root(root)?;
        let mine = count(values.len(), "gather block")?;
        if self.rank() != root {
            process.gather_into(&mine);
            process.gather_varcount_into(values);
            return Ok(None);
        }
        let mut counts = vec![0 as Count; self.size()];
        process.gather_into_root(&mine, &mut counts[..]);
        let displs = displacements(&counts);
        let total: usize = counts.iter().map(|&c| c as usize).sum();
        let mut all = vec![0.0; total];
        {
            let mut into = PartitionMut::new(&mut all[..], &counts[..], &displs[..]);
            process.gather_varcount_into_root(values, &mut into);
        }
        Ok(Some(
            displs
                .iter()
                .zip(&counts)
                .map(|(&d, &c)| all[d as usize..(d + c) as usize].to_vec())
                .collect(),
        ))
    }

    fn barrier(&self) -> Result<(), CommError> {
        self.world.barrier();
        Ok(())
    }

    fn abort(&self, code: i32, reason: &str) -> ! {
        eprintln!("rank {} of {}: {reason}", self.rank(), self.size());
        self.world.abort(code)
    }
}
