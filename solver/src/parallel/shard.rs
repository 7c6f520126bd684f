//! Data parallelism as the trainer sees it: each data rank runs the backbone
//! (and the constraint layer) on a contiguous block of the global batch, by
//! global sample index, so a sample's computation does not depend on how many
//! ranks share the batch.
//!
//! The losses are not all sums over samples (the IC and data losses take one
//! norm over the whole batch), so the ranks exchange their fields `u` (all-
//! gather) and every rank evaluates the loss of the whole batch, getting the
//! same value and the same `∂L/∂u`; each back-propagates only its own block's
//! part, and the variables' gradients are summed over the ranks
//! ([`DataShard::sum_gradients`]). The result is the single-process gradient up
//! to the order of floating-point additions.
//!
//! With expert parallelism (`experts > 1`), the ranks of one expert group hold
//! the same block and split only its solves ([`DataShard::expert_group`]), so
//! their fields, gradients and statistics are copies: sums over the data ranks
//! count the group leader's copy once ([`Layout::leads_group`]).

use std::collections::BTreeMap;
use std::ops::Range;

use candle_core::{DType, Tensor, Var};
use tessera_experts::comm::{Communicator, Local, bucket_ranges};

use super::{Layout, ParallelError};
use crate::SolverError;

/// This rank's share of every batch, and the collectives over the data ranks.
#[derive(Clone, Copy)]
pub struct DataShard<'c> {
    comm: &'c dyn Communicator,
    layout: Layout,
}

impl DataShard<'static> {
    /// The whole batch on one rank.
    pub fn whole() -> Self {
        Self {
            comm: &Local,
            layout: Layout::SINGLE,
        }
    }
}

impl<'c> DataShard<'c> {
    /// The share of rank `comm.rank()` under `layout`.
    ///
    /// # Panics
    /// If `layout` does not cover the world ([`Layout::resolve`] rules that out).
    #[track_caller]
    pub fn new(comm: &'c dyn Communicator, layout: Layout) -> Self {
        assert_eq!(
            layout.data * layout.experts,
            comm.size(),
            "a layout must cover the whole world"
        );
        Self { comm, layout }
    }

    /// Whether this rank holds whole batches (one data rank).
    pub fn is_whole(&self) -> bool {
        self.layout.data == 1
    }

    /// This rank's global sample indices in a batch of `batch` samples.
    pub fn range(&self, batch: usize) -> Range<usize> {
        bucket_ranges(batch, self.layout.data)[self.layout.data_rank(self.comm.rank())].clone()
    }

    /// The communicator and the world ranks of this rank's expert group, when
    /// the experts are split over more than one rank.
    pub fn expert_group(&self) -> Option<(&'c dyn Communicator, Range<usize>)> {
        (self.layout.experts > 1).then(|| (self.comm, self.layout.group(self.comm.rank())))
    }

    fn leads_group(&self) -> bool {
        self.layout.leads_group(self.comm.rank())
    }

    /// Every data rank's `local` values (the fields of its samples),
    /// concatenated in global sample order, on every rank.
    pub fn gather_fields(&self, local: &[f64]) -> Result<Vec<f64>, ParallelError> {
        if self.is_whole() {
            return Ok(local.to_vec());
        }
        let mine = if self.leads_group() {
            local.to_vec()
        } else {
            Vec::new()
        };
        let send = vec![mine; self.comm.size()];
        Ok(self.comm.all_to_all_v(&send)?.concat())
    }

    /// Element-wise sums over the data ranks, identical on every rank, of
    /// values each expert group holds in copies (the leader's copy counts).
    /// A value only rank 0 sets (a vote) reaches every rank.
    pub fn sum(&self, values: &mut [f64]) -> Result<(), ParallelError> {
        if self.comm.size() == 1 {
            return Ok(());
        }
        if !self.leads_group() {
            values.fill(0.0);
        }
        Ok(self.comm.all_reduce_sum(values)?)
    }

    /// Sums the gradients over the data ranks in one fixed-layout all-reduce
    /// (the variables in name order, each flattened row-major, as f64) and
    /// writes them back in their own dtype. All ranks must hold gradients of
    /// the same variables and shapes.
    pub fn sum_gradients(&self, grads: &mut BTreeMap<String, Tensor>) -> Result<(), SolverError> {
        if self.is_whole() {
            return Ok(());
        }
        let mut flat = Vec::new();
        for g in grads.values() {
            flat.extend(g.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?);
        }
        self.sum(&mut flat)?;
        let mut offset = 0;
        for g in grads.values_mut() {
            let len = g.elem_count();
            let summed = Tensor::from_slice(&flat[offset..offset + len], g.shape(), g.device())?;
            *g = summed.to_dtype(g.dtype())?;
            offset += len;
        }
        Ok(())
    }

    /// The sum of per-sample vectors (`samples`: this rank's, in sample
    /// order) over the whole batch, added in global sample order
    /// `((g₀ + g₁) + g₂) + …`, identical on every rank: the bits of a
    /// single-process left fold, for any number of data ranks. The data ranks
    /// form a chain: each adds its samples to the running sum of the ranks
    /// before it and passes it on (`D − 1` sequential messages), and the last
    /// broadcasts the total.
    ///
    /// Errors: a rank with no samples, vectors of different lengths, or a
    /// transport failure.
    pub fn sum_in_sample_order(&self, samples: &[Vec<f64>]) -> Result<Vec<f64>, SolverError> {
        let fold = |mut sum: Option<Vec<f64>>| -> Result<Vec<f64>, SolverError> {
            for g in samples {
                match &mut sum {
                    None => sum = Some(g.clone()),
                    Some(s) if s.len() == g.len() => s.iter_mut().zip(g).for_each(|(s, g)| *s += g),
                    Some(s) => {
                        return Err(SolverError::ShapeMismatch {
                            what: "per-sample gradients",
                            expected: vec![s.len()],
                            got: vec![g.len()],
                        });
                    }
                }
            }
            sum.ok_or(SolverError::ShapeMismatch {
                what: "samples of a data rank",
                expected: vec![1],
                got: vec![0],
            })
        };
        let Layout { data, experts } = self.layout;
        if data == 1 {
            return fold(None);
        }
        let (rank, size) = (self.comm.rank(), self.comm.size());
        let mine = self.layout.data_rank(rank);
        let mut sum = (mine == 0).then(|| fold(None)).transpose()?;
        for next in 1..data {
            // The leader of data rank `next − 1` hands its running sum to every
            // rank of data rank `next`.
            let mut send = vec![Vec::new(); size];
            if rank == (next - 1) * experts {
                let total = sum.as_ref().expect("the sender has folded its samples");
                send[next * experts..(next + 1) * experts].fill(total.clone());
            }
            let mut received = self.comm.all_to_all_v(&send).map_err(ParallelError::from)?;
            if mine == next {
                sum = Some(fold(Some(std::mem::take(
                    &mut received[(next - 1) * experts],
                )))?);
            }
        }
        let mut total = sum.unwrap_or_default();
        self.comm
            .broadcast(size - experts, &mut total)
            .map_err(ParallelError::from)?;
        Ok(total)
    }

    /// Checks that every rank holds the same variables (one 64-bit hash per
    /// rank exchanged); a difference is [`ParallelError::Diverged`] naming
    /// the ranks that differ from rank 0, on every rank.
    pub fn check_identical(
        &self,
        vars: &BTreeMap<String, Var>,
        step: usize,
    ) -> Result<(), SolverError> {
        if self.comm.size() == 1 {
            return Ok(());
        }
        let hash = parameter_hash(vars)?;
        // Two exact 32-bit halves: any f64 carries them unchanged.
        let mine = vec![(hash >> 32) as f64, (hash & 0xffff_ffff) as f64];
        let all = self
            .comm
            .all_to_all_v(&vec![mine; self.comm.size()])
            .map_err(ParallelError::from)?;
        let ranks: Vec<usize> = (1..all.len()).filter(|&r| all[r] != all[0]).collect();
        if ranks.is_empty() {
            Ok(())
        } else {
            Err(ParallelError::Diverged { step, ranks }.into())
        }
    }
}

/// A 64-bit FNV-1a hash of the variables' names and exact values (as f64
/// bits), cheap enough to compare across ranks every few steps.
fn parameter_hash(vars: &BTreeMap<String, Var>) -> Result<u64, SolverError> {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            hash = (hash ^ u64::from(b)).wrapping_mul(PRIME);
        }
    };
    for (name, var) in vars {
        eat(name.as_bytes());
        let values = var
            .as_tensor()
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        for v in values {
            eat(&v.to_bits().to_le_bytes());
        }
    }
    Ok(hash)
}
