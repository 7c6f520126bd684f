//! The NCCL communicator (cargo feature `nccl`): one process per GPU, the ranks'
//! data moving between their GPUs over NVIDIA's collective library (NVLink and
//! PCIe inside a node, InfiniBand or sockets between nodes) instead of through
//! MPI's host buffers.
//!
//! MPI starts the processes and shares NCCL's unique id ([`Nccl::new`] takes
//! the MPI world as its control channel); after that every collective runs on
//! NCCL alone. Each one is a point-to-point exchange — `ncclSend`/`ncclRecv`
//! with every rank, itself included, inside one NCCL group — preceded by an
//! exchange of the block lengths. The all-reduce stays the trait's default on
//! top of the all-to-all, so it sums in the same fixed order as every other
//! transport and gives the same bits as MPI for the same world size. The
//! gather and the barrier are all-to-alls in which only some blocks are
//! non-empty (or none); the broadcast sends its length that way, then the
//! message with `ncclBroadcast`. The communicator needs no MPI once started
//! (the feature does not link it), so the control channel that shares the id
//! can be any communicator.
//!
//! NCCL forbids two ranks on one GPU, so a multi-rank world needs a GPU per
//! rank (`device = "cuda"` maps ranks to GPUs by local rank).

use std::sync::Arc;

use cudarc::driver::{CudaSlice, CudaStream, DeviceRepr, ValidAsZeroBits};
use cudarc::nccl::{Comm, Id, NcclType};

use super::{CommError, Communicator};

/// NCCL between one GPU per rank; see the module docs.
pub struct Nccl {
    comm: Comm,
    stream: Arc<CudaStream>,
}

impl std::fmt::Debug for Nccl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nccl")
            .field("rank", &self.comm.rank())
            .field("size", &self.comm.world_size())
            .field("gpu", &self.comm.ordinal())
            .finish()
    }
}

/// The error for a failed NCCL call.
fn nccl(op: &'static str) -> impl Fn(cudarc::nccl::result::NcclError) -> CommError {
    move |e| CommError::Transport {
        op,
        reason: format!("NCCL returned {:?}", e.0),
    }
}

/// The error for a failed CUDA call around an NCCL one.
fn cuda(op: &'static str) -> impl Fn(cudarc::driver::DriverError) -> CommError {
    move |e| CommError::Transport {
        op,
        reason: format!("CUDA driver: {e}"),
    }
}

/// Why NCCL cannot start in this process, if it cannot.
fn missing_library() -> Option<String> {
    if !tessera_constraints::gpu::Gpu::driver_present() {
        return Some("no CUDA driver found (libcuda.so is not on the library path)".into());
    }
    // SAFETY: only probes for the library with `dlopen`; nothing is called.
    if !unsafe { cudarc::nccl::sys::is_culib_present() } {
        return Some(
            "libnccl.so not found: install NCCL (the PyPI wheel nvidia-nccl-cu13 ships only \
             libnccl.so.2; link libnccl.so to it) and put its folder on LD_LIBRARY_PATH"
                .into(),
        );
    }
    None
}

/// The version of the NCCL library this process loads, `(major, minor,
/// patch)`: what a cluster's ranks should agree on.
///
/// Errors: the CUDA driver or NCCL cannot be loaded (why, and how to fix
/// it), or NCCL's own error.
pub fn nccl_version() -> Result<(i32, i32, i32), CommError> {
    let unavailable = |reason| CommError::Transport {
        op: "loading NCCL",
        reason,
    };
    if let Some(reason) = missing_library() {
        return Err(unavailable(reason));
    }
    let code = cudarc::nccl::result::get_nccl_version()
        .map_err(|e| unavailable(format!("ncclGetVersion: {e:?}")))?;
    // Since NCCL 2.9 the code is major·10000 + minor·100 + patch.
    Ok((code / 10000, code / 100 % 100, code % 100))
}

impl Nccl {
    /// Opens NCCL among the ranks of `control` (the MPI world), this rank on
    /// the GPU of `stream`. Collective over `control`: rank 0 creates the
    /// unique id and broadcasts it. Every rank checks first that it can load
    /// the CUDA driver and NCCL, and all ranks learn of any rank that cannot,
    /// so a missing library is an error everywhere instead of a hang.
    pub fn new(control: &dyn Communicator, stream: Arc<CudaStream>) -> Result<Self, CommError> {
        let problem = missing_library();
        let mut failed = [f64::from(u8::from(problem.is_some()))];
        control.all_reduce_sum(&mut failed)?;
        if let Some(reason) = problem {
            return Err(CommError::Transport {
                op: "loading NCCL",
                reason: format!("rank {}: {reason}", control.rank()),
            });
        }
        if failed[0] > 0.0 {
            return Err(CommError::Transport {
                op: "loading NCCL",
                reason: format!("{} rank(s) cannot load CUDA or NCCL", failed[0]),
            });
        }
        // Rank 0's id, or an empty message when it could not make one (then
        // every rank reports that, rather than waiting in the init).
        let made = (control.rank() == 0).then(Id::new);
        let mut id = match &made {
            Some(Ok(made)) => made.internal().iter().map(|&c| c as u8).collect(),
            _ => Vec::new(),
        };
        control.broadcast_bytes(0, &mut id)?;
        if let Some(Err(e)) = made {
            return Err(nccl("ncclGetUniqueId")(e));
        }
        let internal: [std::ffi::c_char; 128] = id
            .iter()
            .map(|&b| b as std::ffi::c_char)
            .collect::<Vec<_>>()
            .try_into()
            .map_err(|_| CommError::Transport {
                op: "ncclGetUniqueId",
                reason: "rank 0 could not create NCCL's unique id".into(),
            })?;
        // ncclCommInitRank takes the calling thread's current device.
        stream
            .context()
            .bind_to_thread()
            .map_err(cuda("binding the GPU"))?;
        let comm = Comm::from_rank(
            Arc::clone(&stream),
            control.rank(),
            control.size(),
            Id::uninit(internal),
        )
        .map_err(|e| CommError::Transport {
            op: "ncclCommInitRank",
            reason: format!(
                "NCCL returned {:?} (NCCL needs a GPU per rank: no two ranks may share one)",
                e.0
            ),
        })?;
        Ok(Self { comm, stream })
    }

    /// Sends `send[r]` to rank `r` and receives from every rank `r` a block of
    /// `recv_lens[r]` elements, all in one NCCL group on this rank's stream.
    /// Empty blocks are not posted (the peer expects nothing either).
    fn exchange<T>(&self, send: &[&[T]], recv_lens: &[usize]) -> Result<Vec<Vec<T>>, CommError>
    where
        T: NcclType + DeviceRepr + ValidAsZeroBits + Clone,
    {
        let on_device = |block: &[T]| -> Result<Option<CudaSlice<T>>, CommError> {
            (!block.is_empty())
                .then(|| self.stream.clone_htod(block))
                .transpose()
                .map_err(cuda("copying a block to the GPU"))
        };
        let outgoing = send
            .iter()
            .map(|b| on_device(b))
            .collect::<Result<Vec<_>, _>>()?;
        let mut incoming = recv_lens
            .iter()
            .map(|&n| {
                (n > 0)
                    .then(|| self.stream.alloc_zeros::<T>(n))
                    .transpose()
                    .map_err(cuda("allocating a receive block"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        cudarc::nccl::group_start().map_err(nccl("ncclGroupStart"))?;
        let posted = self.post(&outgoing, &mut incoming);
        // The group ends whatever happened inside it: NCCL needs every start
        // matched.
        let ended = cudarc::nccl::group_end().map_err(nccl("ncclGroupEnd"));
        posted?;
        ended?;
        incoming
            .iter()
            .map(|block| match block {
                Some(block) => self
                    .stream
                    .clone_dtoh(block)
                    .map_err(cuda("copying a block from the GPU")),
                None => Ok(Vec::new()),
            })
            .collect()
    }

    /// Posts the sends and receives of one exchange (inside its group).
    fn post<T: NcclType>(
        &self,
        outgoing: &[Option<CudaSlice<T>>],
        incoming: &mut [Option<CudaSlice<T>>],
    ) -> Result<(), CommError> {
        for (peer, block) in outgoing.iter().enumerate() {
            if let Some(block) = block {
                self.comm
                    .send(block, peer_index(peer)?)
                    .map_err(nccl("ncclSend"))?;
            }
        }
        for (peer, block) in incoming.iter_mut().enumerate() {
            if let Some(block) = block {
                self.comm
                    .recv(block, peer_index(peer)?)
                    .map_err(nccl("ncclRecv"))?;
            }
        }
        Ok(())
    }

    /// All-to-all of blocks of any length: the lengths first (one `u64` to
    /// every rank), then the blocks.
    fn all_to_all<T>(&self, send: &[&[T]]) -> Result<Vec<Vec<T>>, CommError>
    where
        T: NcclType + DeviceRepr + ValidAsZeroBits + Clone,
    {
        let size = self.size();
        CommError::check_per_rank("all-to-all send buffers", size, send.len())?;
        let lens: Vec<[u64; 1]> = send.iter().map(|b| [b.len() as u64]).collect();
        let lens: Vec<&[u64]> = lens.iter().map(|l| &l[..]).collect();
        let recv_lens = self
            .exchange(&lens, &vec![1; size])?
            .into_iter()
            .map(|l| usize::try_from(l[0]))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| CommError::Transport {
                op: "all-to-all lengths",
                reason: "a block length exceeds this machine's address space".into(),
            })?;
        self.exchange(send, &recv_lens)
    }

    /// `block` for rank `to`, nothing for the others.
    fn only_to<'a, T>(&self, to: usize, block: &'a [T]) -> Result<Vec<&'a [T]>, CommError> {
        CommError::check_rank(to, self.size())?;
        Ok((0..self.size())
            .map(|r| if r == to { block } else { &[] })
            .collect())
    }
}

/// A rank as NCCL's peer argument (a C `int`).
fn peer_index(rank: usize) -> Result<i32, CommError> {
    i32::try_from(rank).map_err(|_| CommError::Transport {
        op: "NCCL peer",
        reason: format!("rank {rank} exceeds a C int"),
    })
}

impl Communicator for Nccl {
    fn rank(&self) -> usize {
        self.comm.rank()
    }

    fn size(&self) -> usize {
        self.comm.world_size()
    }

    fn all_to_all_v(&self, send: &[Vec<f64>]) -> Result<Vec<Vec<f64>>, CommError> {
        let blocks: Vec<&[f64]> = send.iter().map(Vec::as_slice).collect();
        self.all_to_all(&blocks)
    }

    fn broadcast_bytes(&self, root: usize, bytes: &mut Vec<u8>) -> Result<(), CommError> {
        let len = [bytes.len() as u64];
        let mine: &[u64] = if self.rank() == root { &len } else { &[] };
        CommError::check_rank(root, self.size())?;
        let lens = self.all_to_all(&vec![mine; self.size()])?;
        let len = usize::try_from(lens[root][0]).map_err(|_| CommError::Transport {
            op: "broadcast length",
            reason: "the root's message exceeds this machine's address space".into(),
        })?;
        if len == 0 {
            bytes.clear();
            return Ok(());
        }
        bytes.resize(len, 0);
        let mut block = self
            .stream
            .clone_htod(&bytes[..])
            .map_err(cuda("copying the message to the GPU"))?;
        self.comm
            .broadcast_in_place(&mut block, peer_index(root)?)
            .map_err(nccl("ncclBroadcast"))?;
        *bytes = self
            .stream
            .clone_dtoh(&block)
            .map_err(cuda("copying the message from the GPU"))?;
        Ok(())
    }

    fn gather(&self, root: usize, values: &[f64]) -> Result<Option<Vec<Vec<f64>>>, CommError> {
        let received = self.all_to_all(&self.only_to(root, values)?)?;
        Ok((self.rank() == root).then_some(received))
    }

    fn barrier(&self) -> Result<(), CommError> {
        // Every rank waits for a length from every other.
        let nothing: &[u8] = &[];
        self.all_to_all(&vec![nothing; self.size()]).map(drop)
    }

    /// NCCL cannot end other processes: this one exits, and the launcher
    /// ends the job (`mpirun` does when a rank exits with a non-zero code;
    /// `srun` with `--kill-on-bad-exit`). Tessera's world aborts through MPI
    /// instead, which ends every rank itself.
    fn abort(&self, code: i32, reason: &str) -> ! {
        eprintln!("rank {} of {}: {reason}", self.rank(), self.size());
        std::process::exit(code)
    }
}
