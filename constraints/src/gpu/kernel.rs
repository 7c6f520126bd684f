//! The batched solver's CUDA source and the arrays it reads.
//!
//! The source is three parts: the problem sizes as `#define`s (the kernel's
//! per-point arrays and its shared weights are sized at compile time, so the
//! compiler keeps them in registers), the PDE's residual as
//! [`crate::expr::cuda::emit`] writes it, and the solver, `lm.cu` and
//! `lm_step.cu` (followed by `gather.cu`, which builds term rows on the
//! device, `field.cu`, the PDE loss of whole fields, and `tiles.cu`, the
//! mixture's passes over the whole grid). A batch's problems are concatenated
//! into flat arrays with start offsets ([`Batch`]), so problems with different
//! numbers of points or linear rows share one launch.

use rayon::prelude::*;

use crate::{
    ExpertProblem, InitialGuess, LevenbergMarquardt, LmSolution, LmStatus, ProblemSize, StopReason,
};

use super::GpuError;

/// The batched Levenberg–Marquardt solver's sums over points (CUDA C++).
pub const LM_SOURCE: &str = include_str!("lm.cu");

/// The solver's per-problem decisions, after [`LM_SOURCE`].
pub const LM_STEP_SOURCE: &str = include_str!("lm_step.cu");

/// The solver's entry points: the partial sums of one chunk of points
/// (both passes), a round's decisions of the solve and of the backward pass,
/// and the backward pass's per-point outputs.
pub const LM_FUNCTIONS: [&str; 4] = [
    "tessera_lm_accumulate",
    "tessera_lm_step",
    "tessera_ift_step",
    "tessera_ift_rows",
];

/// The kernel that builds term rows on the device from the fields they read
/// ([`super::RowGather`]); part of every solver's source.
pub const GATHER_SOURCE: &str = include_str!("gather.cu");

/// The gather's entry point in [`GATHER_SOURCE`].
pub const GATHER_FUNCTION: &str = "tessera_gather_rows";

/// The gather of one value per grid point in [`GATHER_SOURCE`]: the terms of
/// a field and their adjoint, for the PDE loss ([`super::GpuFieldResidual`]).
pub const GATHER_VALUES_FUNCTION: &str = "tessera_gather_values";

/// The PDE loss's pointwise kernels and reduction ([`super::GpuFieldResidual`]);
/// part of every solver's source.
pub const FIELD_SOURCE: &str = include_str!("field.cu");

/// The entry points of [`FIELD_SOURCE`]: the residual and its gradient at
/// every point, the squared norms of segments, the cotangent in the terms.
pub const FIELD_FUNCTIONS: [&str; 3] = [
    "tessera_field_residual",
    "tessera_segment_squares",
    "tessera_field_cotangent",
];

/// A mixture's passes over the whole grid for a batch whose term rows were
/// gathered on the device (the assembly of `u`, the experts' `ω̄`, the
/// pull-back to the fields); part of every solver's source.
pub const TILES_SOURCE: &str = include_str!("tiles.cu");

/// The entry points of [`TILES_SOURCE`]: `u`, the partial sums of `ω̄` and
/// their total, the pull-back.
pub const TILES_FUNCTIONS: [&str; 4] = [
    "tessera_assemble",
    "tessera_omega_bar_parts",
    "tessera_omega_bar_sum",
    "tessera_pull_back",
];

/// The largest basis the kernel takes: its weight vectors live in static shared
/// memory, and the Newton fallback factors on one thread (the paper's largest
/// basis, Navier–Stokes, is 64).
pub const MAX_BASIS: usize = 64;

/// Threads per block: a launch's block size, and the size of the kernel's
/// reduction buffer.
pub const THREADS: usize = 256;

/// Points (and linear rows) of a problem per block of the solver's sums.
///
/// Why 256: one point per thread of a block while it evaluates the
/// residual, and at the paper's diffusion–sorption scale (20 000 points per
/// expert) some 80 blocks per problem, enough to fill a GPU from a single
/// sample's four experts.
pub const CHUNK_POINTS: usize = 256;

/// Doubles of a problem's solver state between launches before its three
/// weight vectors (`State` in `lm.cu`, which checks this number).
pub const STATE_SCALARS: usize = 14;

/// Status numbers per problem the kernel writes: reason, iterations, initial
/// and final residual norms, gradient norm.
pub const STATUS_LEN: usize = 5;

/// The sizes a kernel is compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KernelShape {
    /// Basis functions `N` (1..=[`MAX_BASIS`]).
    pub n_basis: usize,
    /// Terms the residual reads, `d`: the emitted function's variables.
    pub n_terms: usize,
    /// Residual equations per point, `m`.
    pub n_equations: usize,
    /// Coordinates per point the residual reads (0 when it reads none).
    pub n_coordinates: usize,
}

impl KernelShape {
    /// Doubles of per-point scratch: the Jacobian rows (`m·N`), or for the
    /// exact Hessian a flag per term and the curvature weights times the
    /// term rows (`d + d·N`, `lm.cu`'s `SCRATCH`).
    pub fn scratch_per_point(&self) -> usize {
        let d = self.n_terms;
        (self.n_equations * self.n_basis).max(d + d * self.n_basis)
    }

    fn check(&self) -> Result<(), GpuError> {
        if self.n_basis == 0 || self.n_basis > MAX_BASIS {
            return Err(GpuError::Unsupported(format!(
                "{} basis functions (the kernel takes 1 to {MAX_BASIS})",
                self.n_basis
            )));
        }
        if self.n_terms == 0 || self.n_equations == 0 {
            return Err(GpuError::Unsupported(
                "a residual with no terms or no equations".into(),
            ));
        }
        Ok(())
    }
}

/// The complete source of the batched solver for the residual `residual` (the
/// text [`crate::expr::cuda::emit`] returned for the definition `name`), sized
/// for `shape`.
pub fn lm_source(residual: &str, name: &str, shape: KernelShape) -> Result<String, GpuError> {
    shape.check()?;
    let function = format!("tessera_{}_hessian", crate::expr::cuda::identifier(name));
    if !residual.contains(&format!("void {function}(")) {
        return Err(GpuError::Unsupported(format!(
            "the residual source does not define `{function}`"
        )));
    }
    Ok(format!(
        "#define TESSERA_N {}\n#define TESSERA_D {}\n#define TESSERA_M {}\n#define TESSERA_C {}\n\
         #define TESSERA_THREADS {THREADS}\n#define TESSERA_STATE_SCALARS {STATE_SCALARS}\n{residual}\n\
         #define TESSERA_RESIDUAL {function}\n{LM_SOURCE}\n{LM_STEP_SOURCE}\n{GATHER_SOURCE}\n\
         {FIELD_SOURCE}\n{TILES_SOURCE}",
        shape.n_basis, shape.n_terms, shape.n_equations, shape.n_coordinates,
    ))
}

/// What a [`Batch`] reads of one problem: an [`ExpertProblem`]'s arrays, or
/// those of a [`super::GatheredProblem`], whose term rows the GPU builds itself.
pub trait BatchProblem: Sync {
    /// Whether the problems carry their term rows (else the batch has none).
    const HAS_TERM_ROWS: bool;
    /// The layout sizes.
    fn size(&self) -> ProblemSize;
    /// Sampled points `P`.
    fn n_points(&self) -> usize;
    /// Linear rows `R`.
    fn n_linear(&self) -> usize;
    /// `[P, d, N]`, or empty without term rows.
    fn term_rows(&self) -> &[f64];
    /// `[P, d]`.
    fn offsets(&self) -> &[f64];
    /// `[P, C]`, empty when the residual reads no coordinates.
    fn point_coordinates(&self) -> &[f64];
    /// `[R, N]`.
    fn linear(&self) -> &[f64];
    /// `[R]`.
    fn linear_rhs(&self) -> &[f64];
    /// The ridge weight `ρ`.
    fn ridge(&self) -> f64;
}

impl BatchProblem for ExpertProblem {
    const HAS_TERM_ROWS: bool = true;
    fn size(&self) -> ProblemSize {
        self.size()
    }
    fn n_points(&self) -> usize {
        self.n_points()
    }
    fn n_linear(&self) -> usize {
        self.n_linear()
    }
    fn term_rows(&self) -> &[f64] {
        self.term_rows()
    }
    fn offsets(&self) -> &[f64] {
        self.offsets()
    }
    fn point_coordinates(&self) -> &[f64] {
        self.coordinates(0, self.n_points())
    }
    fn linear(&self) -> &[f64] {
        self.linear()
    }
    fn linear_rhs(&self) -> &[f64] {
        self.linear_rhs()
    }
    fn ridge(&self) -> f64 {
        self.ridge()
    }
}

/// A batch of problems in the kernel's layout: the [`ExpertProblem`] arrays
/// concatenated, with each problem's first point and first linear row.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The sizes every problem shares.
    pub shape: KernelShape,
    /// `[K + 1]`: problem `k`'s points are `point_start[k]..point_start[k + 1]`.
    pub point_start: Vec<i64>,
    /// `[K + 1]`: problem `k`'s linear rows, likewise.
    pub linear_start: Vec<i64>,
    /// `[ΣP, d, N]`; empty for problems whose term rows the GPU gathers.
    pub term_rows: Vec<f64>,
    /// `[ΣP, d]`.
    pub offsets: Vec<f64>,
    /// `[ΣP, C]` (empty when `C = 0`).
    pub coordinates: Vec<f64>,
    /// `[ΣR, N]`.
    pub linear: Vec<f64>,
    /// `[ΣR]`.
    pub linear_rhs: Vec<f64>,
    /// `[K]`.
    pub ridge: Vec<f64>,
    /// `[K, N]`: the initial weights (the kernel overwrites them with ω*).
    pub omega: Vec<f64>,
}

impl Batch {
    /// Packs `problems`, each starting from `lm`'s initial guess (a
    /// [`InitialGuess::Given`] vector for all of them). Problems without term
    /// rows ([`super::GatheredProblem`]) leave [`Batch::term_rows`] empty: the GPU
    /// builds them.
    ///
    /// Errors: no problems, problems of different sizes, a basis the kernel
    /// does not take, a given guess of the wrong length.
    pub fn pack<P: BatchProblem>(
        lm: &LevenbergMarquardt,
        problems: &[&P],
    ) -> Result<Self, GpuError> {
        let first = problems
            .first()
            .ok_or_else(|| GpuError::Unsupported("an empty batch".into()))?;
        let size = first.size();
        let n_coordinates = first.point_coordinates().len() / first.n_points().max(1);
        let shape = KernelShape {
            n_basis: size.n_basis,
            n_terms: size.n_terms,
            n_equations: size.n_equations,
            n_coordinates,
        };
        shape.check()?;
        let n = shape.n_basis;
        let initial = match lm.initial() {
            InitialGuess::Ones => vec![1.0; n],
            InitialGuess::Zeros => vec![0.0; n],
            InitialGuess::Given(w) if w.len() == n => w.clone(),
            InitialGuess::Given(w) => {
                return Err(GpuError::Unsupported(format!(
                    "an initial guess of length {} for {n} basis functions",
                    w.len()
                )));
            }
        };
        let mut point_start = vec![0i64];
        let mut linear_start = vec![0i64];
        for (k, problem) in problems.iter().enumerate() {
            let p = problem.n_points();
            let coordinates = problem.point_coordinates();
            if problem.size() != size || coordinates.len() != p * n_coordinates {
                return Err(GpuError::Unsupported(format!(
                    "problem {k} has other sizes than problem 0 ({:?}, {} coordinates per point)",
                    problem.size(),
                    coordinates.len() / p.max(1)
                )));
            }
            point_start.push(point_start[k] + p as i64);
            linear_start.push(linear_start[k] + problem.n_linear() as i64);
        }
        let total_points = point_start[problems.len()] as usize;
        let total_rows = linear_start[problems.len()] as usize;
        let d = shape.n_terms;
        let mut batch = Self {
            shape,
            point_start,
            linear_start,
            term_rows: vec![
                0.0;
                if P::HAS_TERM_ROWS {
                    total_points * d * n
                } else {
                    0
                }
            ],
            offsets: vec![0.0; total_points * d],
            coordinates: vec![0.0; total_points * n_coordinates],
            linear: vec![0.0; total_rows * n],
            linear_rhs: vec![0.0; total_rows],
            ridge: problems.iter().map(|p| p.ridge()).collect(),
            omega: initial.repeat(problems.len()),
        };
        // Each problem's arrays into its own ranges, the problems in parallel:
        // at the paper's scale the term rows alone are some 180 MB.
        let points: Vec<usize> = problems.iter().map(|p| p.n_points()).collect();
        let rows: Vec<usize> = problems.iter().map(|p| p.n_linear()).collect();
        let row_width = if P::HAS_TERM_ROWS { d * n } else { 0 };
        let term_rows = split_by(&mut batch.term_rows, &points, row_width);
        let offsets = split_by(&mut batch.offsets, &points, d);
        let coordinates = split_by(&mut batch.coordinates, &points, n_coordinates);
        let linear = split_by(&mut batch.linear, &rows, n);
        let linear_rhs = split_by(&mut batch.linear_rhs, &rows, 1);
        problems
            .par_iter()
            .zip(term_rows)
            .zip(offsets)
            .zip(coordinates)
            .zip(linear)
            .zip(linear_rhs)
            .with_max_len(1)
            .for_each(|(((((problem, t), o), c), l), r)| {
                t.copy_from_slice(problem.term_rows());
                o.copy_from_slice(problem.offsets());
                c.copy_from_slice(problem.point_coordinates());
                l.copy_from_slice(problem.linear());
                r.copy_from_slice(problem.linear_rhs());
            });
        Ok(batch)
    }

    /// Number of problems `K`.
    pub fn len(&self) -> usize {
        self.ridge.len()
    }

    /// Whether the batch holds no problem (never, for a packed one).
    pub fn is_empty(&self) -> bool {
        self.ridge.is_empty()
    }

    /// Total points `ΣP`.
    pub fn total_points(&self) -> usize {
        *self.point_start.last().unwrap_or(&0) as usize
    }

    /// Total linear rows `ΣR`.
    pub fn total_linear_rows(&self) -> usize {
        *self.linear_start.last().unwrap_or(&0) as usize
    }

    /// `[K + 1]`: problem `k`'s chunks of `chunk_points` points and linear
    /// rows are `chunk_start[k]..chunk_start[k + 1]`, at least one per
    /// problem (one block each in the solver's sums, see `lm.cu`).
    ///
    /// # Panics
    /// If `chunk_points` is 0.
    pub fn chunk_start(&self, chunk_points: usize) -> Vec<i64> {
        let mut start = vec![0i64];
        for k in 0..self.len() {
            let points = self.point_start[k + 1] - self.point_start[k];
            let rows = self.linear_start[k + 1] - self.linear_start[k];
            let chunks = (points.max(rows) as usize).div_ceil(chunk_points).max(1);
            start.push(start[k] + chunks as i64);
        }
        start
    }

    /// Lengths of the solver's scratch arrays with chunks of `chunk_points`:
    /// residual values, linear residuals, per-point scratch, per-problem
    /// matrices, per-chunk partial sums and per-problem states (see `lm.cu`).
    pub fn scratch_lengths(&self, chunk_points: usize) -> [usize; 6] {
        let s = self.shape;
        let n = s.n_basis;
        let chunks = *self.chunk_start(chunk_points).last().unwrap_or(&0) as usize;
        [
            2 * self.total_points() * s.n_equations,
            2 * self.total_linear_rows(),
            self.total_points() * s.scratch_per_point(),
            self.len() * (4 * n * n + 2 * n),
            chunks * (n * n + n + 3),
            self.len() * (STATE_SCALARS + 3 * n),
        ]
    }
}

/// `values` cut into consecutive pieces of `count × width` values, one per
/// entry of `counts`.
///
/// # Panics
/// If `values` is shorter than the pieces together.
fn split_by<'a>(values: &'a mut [f64], counts: &[usize], width: usize) -> Vec<&'a mut [f64]> {
    let mut rest = values;
    counts
        .iter()
        .map(|&count| {
            let (piece, tail) = std::mem::take(&mut rest).split_at_mut(count * width);
            rest = tail;
            piece
        })
        .collect()
}

/// The solutions from the kernel's outputs: `omega` `[K, N]` and `status`
/// `[K, 5]` as `lm.cu` writes them.
pub fn solutions(
    omega: &[f64],
    status: &[f64],
    n_basis: usize,
) -> Result<Vec<LmSolution>, GpuError> {
    omega
        .chunks_exact(n_basis)
        .zip(status.chunks_exact(STATUS_LEN))
        .map(|(w, s)| {
            let reason = match s[0] as i64 {
                0 => StopReason::Converged,
                1 => StopReason::MaxIterations,
                2 => StopReason::NonFinite,
                3 => StopReason::Singular,
                _ => {
                    return Err(GpuError::Driver {
                        what: "reading the solver's status",
                        message: format!("stop reason {} is not one of 0..=3", s[0]),
                    });
                }
            };
            Ok(LmSolution {
                omega: w.to_vec(),
                status: LmStatus {
                    reason,
                    iterations: s[1] as usize,
                    initial_residual: s[2],
                    final_residual: s[3],
                    gradient_norm: s[4],
                },
            })
        })
        .collect()
}
