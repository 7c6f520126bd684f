//! The end-to-end hard-constraint layer: basis in, constrained solution out, and
//! the exact backward pass — what the trainer's custom op calls.
//!
//! Per sample `b` with basis `B_b` (`[grid points, N]`) and initial condition `ic_b`:
//!
//! 1. `SB = S(B_b)` (`S` from [`Pde::solution_map`]; without one, `B_b` itself is
//!    used, never copied), offset `s₀` from [`Pde::solution_offset`];
//! 2. for every expert `k`: its problem built directly at its sampled points and
//!    linear rows ([`crate::terms`]: `A_j = D_j SB`, `b_j = D_j s₀` evaluated there
//!    only), solved with Levenberg–Marquardt;
//! 3. `u = Σ_k 1_{Ω_k} ⊙ (SB ω_k*) + s₀`.
//!
//! The backward pass takes `ū = ∂L/∂u` and the same basis, and returns
//! `B̄ = ∂L/∂B` through both paths: the direct one (`u` is linear in `SB` at fixed
//! `ω*`) and the implicit one through `ω_k*` (each expert's [`Sensitivity`] in
//! compact form, pulled back to the basis by the `pullback` module).
//!
//! The sampled points are the same for every sample of a call and depend only on
//! the configured seed, the expert and `stream` (pass the training step to
//! resample each step). Parallelism: all `(sample, expert)` solves are spread over
//! the caller's rayon pool (`pool.install(|| layer.forward(…))`), and inside a
//! sample the experts' problems and the full-grid passes are parallel too, so a
//! batch of one uses every thread; the result is bit-identical for any number of
//! threads. Across processes, [`ConstraintLayer::forward_sharded`] splits the
//! solves over the ranks of an expert-parallel group ([`ExpertShard`]), with the
//! same result bit for bit.
//!
//! [`Sensitivity`]: tessera_constraints::Sensitivity

use std::sync::Arc;

use rayon::prelude::*;
use tessera_constraints::{
    DEFAULT_RIDGE, ExpertProblem, HessianMode, LevenbergMarquardt, LinearRow, LmSolution, LmStatus,
    Pde, RowGradient, StopReason, Term, pointwise, residual_term_count,
};
use tessera_meshes::{BufferPool, Grid, LinearOperator};

use crate::pullback::{ExpertRows, PullBack};
use crate::router::{Router, RowScope};
use crate::row_cotangents::row_cotangents;
use crate::runner::{self, BackwardJob};
use crate::shard::ExpertShard;
use crate::terms::{Field, SampleTerms};
use crate::{ExpertsError, POINTS_PER_TASK};

#[cfg(feature = "cuda")]
use tessera_constraints::gpu::SolvedBatch;

/// Without the `cuda` feature no solve leaves a batch on a device: a type
/// with no values, so `Option<SolvedBatch>` is always `None`.
#[cfg(not(feature = "cuda"))]
enum SolvedBatch {}

/// Settings of a [`ConstraintLayer`]; [`LayerConfig::new`] fills the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerConfig {
    /// Tile split `[s_t, s_x, (s_y)]` (the paper's `num_experts`, e.g. `[1, 4]`).
    pub split: Vec<usize>,
    /// Points `P` sampled per expert.
    pub points_per_expert: usize,
    /// Which linear rows each expert gets (default: all, as the reference).
    pub row_scope: RowScope,
    /// Levenberg–Marquardt settings (default: the reference's).
    pub lm: LevenbergMarquardt,
    /// The backward pass's Hessian (default: exact).
    pub hessian: HessianMode,
    /// Ridge weight `ρ` (default `1e-4`).
    pub ridge: f64,
    /// Seed of the point sampling.
    pub seed: u64,
}

impl LayerConfig {
    /// The given split and points per expert, everything else at its default
    /// (global rows, reference LM, exact Hessian, `ρ = 1e-4`, seed 0).
    pub fn new(split: &[usize], points_per_expert: usize) -> Self {
        Self {
            split: split.to_vec(),
            points_per_expert,
            row_scope: RowScope::default(),
            lm: LevenbergMarquardt::default(),
            hessian: HessianMode::default(),
            ridge: DEFAULT_RIDGE,
            seed: 0,
        }
    }
}

/// A mixture of hard-constraint experts for one PDE on one grid.
pub struct ConstraintLayer<P: Pde> {
    pde: Arc<P>,
    grid: Grid,
    terms: Vec<Term>,
    /// How many of `terms` (the first ones) enter the residual: `d_r`.
    n_residual: usize,
    solution_map: Option<Arc<dyn LinearOperator>>,
    router: Router,
    config: LayerConfig,
    /// The grid's coordinates `[points, ndim]` when the PDE's residual reads
    /// them (gathered at each expert's sampled points), else empty.
    coordinates: Vec<f64>,
    /// The large buffers of a forward pass (`S B` on the full grid, the
    /// non-local terms at the sampled points), kept for the next
    /// ([`tessera_meshes::buffer_pool`]).
    fields: Arc<BufferPool<f64>>,
    /// The GPU solver that runs the forward solves, when one is attached
    /// ([`ConstraintLayer::with_gpu`]).
    #[cfg(feature = "cuda")]
    gpu: Option<Arc<tessera_constraints::gpu::GpuLm>>,
    /// Whether an attached GPU builds the term rows from the basis where it
    /// can (the default), or receives them built on the host.
    #[cfg(feature = "cuda")]
    gpu_gathers_rows: bool,
    /// Whether, on the gathered path, the assembly of `u`, the experts' `ω̄`
    /// and the pull-back run on the GPU (the default), or on the host.
    #[cfg(feature = "cuda")]
    gpu_grid_passes: bool,
    /// The tiles and the residual's terms at every grid point (with their
    /// adjoint) on the attached GPU, for the gather of the experts' term
    /// rows and the passes over the whole grid there; `None` inside where a
    /// residual term is not local. Built at the first forward pass on the
    /// GPU.
    #[cfg(feature = "cuda")]
    gpu_tiles: std::sync::OnceLock<Option<tessera_constraints::gpu::DeviceTiles>>,
}

/// The result of [`ConstraintLayer::forward`], plus what the backward pass needs.
pub struct Forward {
    /// The constrained solution `u`, `[batch, grid points]`.
    pub u: Vec<f64>,
    /// The experts' weights `ω_k*`, `[batch, K, N]`.
    pub weights: Vec<f64>,
    /// The experts' solver statuses, `[batch, K]`.
    pub statuses: Vec<LmStatus>,
    batch: usize,
    n_basis: usize,
    samples: Vec<SavedSample>,
    /// The solved problems left on the GPU that solved them, when every
    /// problem of the call was solved there: the backward pass then uploads
    /// only the upstream gradients. (Always `None` without the `cuda`
    /// feature, where nothing reads it.)
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    on_gpu: Option<SolvedBatch>,
}

/// The result of [`ConstraintLayer::backward_with_ic`].
#[derive(Debug, Clone, PartialEq)]
pub struct LayerGradient {
    /// `∂L/∂B`, `[batch, grid points, N]`.
    pub basis: Vec<f64>,
    /// `∂L/∂ic`, the samples' initial conditions one after the other.
    pub ic: Vec<f64>,
}

/// One sample before its solves; `Q` is the experts' problem type (an
/// [`ExpertProblem`], or one whose term rows a GPU gathers).
struct PreparedSample<'a, Q> {
    /// `S B`, `[grid points, N]`: the basis itself when there is no solution map.
    solution: Field<'a>,
    /// `s₀`, `[grid points]`, if the PDE has one.
    offset: Option<Vec<f64>>,
    /// The sample's initial condition.
    ic: Vec<f64>,
    /// The sample's linear rows.
    rows: Vec<LinearRow>,
    /// Per expert: indices into `rows` and its problem.
    experts: Vec<(Vec<usize>, Q)>,
}

/// What a forward pass's solves returned: the solutions (sample-major), the
/// batch a GPU kept, and `u` where the GPU assembled it.
struct Solved {
    solutions: Vec<LmSolution>,
    on_gpu: Option<SolvedBatch>,
    u: Option<Vec<f64>>,
}

/// One sample's forward state kept for the backward pass.
struct SavedSample {
    /// The sample's initial condition (what the rows and offset were built from).
    ic: Vec<f64>,
    /// The sample's linear rows.
    rows: Vec<LinearRow>,
    /// Per expert: indices into `rows`, the problem and its solution.
    experts: Vec<SavedExpert>,
}

struct SavedExpert {
    points: Arc<Vec<usize>>,
    rows: Vec<usize>,
    problem: SavedProblem,
    solution: LmSolution,
}

/// An expert's problem as the forward pass left it.
enum SavedProblem {
    /// Built on the host.
    Host(ExpertProblem),
    /// Built on the GPU from the basis: its term rows exist only in the
    /// batch the GPU kept ([`Forward::on_gpu`]).
    #[cfg(feature = "cuda")]
    OnGpu,
}

impl SavedExpert {
    /// The problem as built on the host.
    ///
    /// Errors: a problem built on the GPU, whose rows the host never had
    /// (its backward pass runs on the batch the GPU kept).
    fn host_problem(&self) -> Result<&ExpertProblem, ExpertsError> {
        match &self.problem {
            SavedProblem::Host(problem) => Ok(problem),
            #[cfg(feature = "cuda")]
            SavedProblem::OnGpu => Err(tessera_constraints::gpu::GpuError::Unsupported(
                "differentiating a problem built on the GPU without the batch it kept".into(),
            )
            .into()),
        }
    }
}

impl Forward {
    /// Batch size.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Number of basis functions `N`.
    pub fn n_basis(&self) -> usize {
        self.n_basis
    }

    /// Expert `k`'s problem for sample `b` (for inspection and tests); `None`
    /// where the GPU built it from the basis, so the host never held its
    /// term rows.
    ///
    /// # Panics
    /// If `b` or `k` is out of range.
    #[track_caller]
    pub fn problem(&self, b: usize, k: usize) -> Option<&ExpertProblem> {
        self.samples[b].experts[k].host_problem().ok()
    }

    /// Expert `k`'s sampled points (flat grid indices, sorted).
    ///
    /// # Panics
    /// If `k` is out of range or the batch is empty.
    #[track_caller]
    pub fn points(&self, k: usize) -> &[usize] {
        &self.samples[0].experts[k].points
    }

    /// Whether every expert of every sample converged.
    pub fn all_converged(&self) -> bool {
        self.statuses.iter().all(LmStatus::converged)
    }
}

impl<P: Pde> ConstraintLayer<P> {
    /// A layer for `pde` on `grid` with `config`.
    ///
    /// Errors: the PDE's terms or solution map fail or do not fit the grid, a bad
    /// split or too many points per expert, an invalid ridge.
    pub fn new(pde: Arc<P>, grid: Grid, config: LayerConfig) -> Result<Self, ExpertsError> {
        let terms = pde.terms(&grid)?;
        if terms.is_empty() || terms.len() > pointwise::MAX_TERMS {
            return Err(ExpertsError::ShapeMismatch {
                what: "number of PDE terms (1..=8)",
                expected: vec![terms.len().clamp(1, pointwise::MAX_TERMS)],
                got: vec![terms.len()],
            });
        }
        let n_residual = residual_term_count(pde.as_ref(), terms.len())?;
        let solution_map = pde.solution_map(&grid)?;
        let shapes = terms
            .iter()
            .map(|t| t.operator.shape())
            .chain(solution_map.iter().map(|s| s.shape()));
        for shape in shapes {
            if shape != grid.shape() {
                return Err(ExpertsError::ShapeMismatch {
                    what: "operator shape vs grid",
                    expected: grid.shape().dims().to_vec(),
                    got: shape.dims().to_vec(),
                });
            }
        }
        if !(config.ridge.is_finite() && config.ridge >= 0.0) {
            return Err(tessera_constraints::ConstraintError::InvalidValue {
                what: "ridge",
                value: config.ridge,
                reason: "must be finite and non-negative",
            }
            .into());
        }
        let router = Router::new(
            grid.shape(),
            &config.split,
            config.points_per_expert,
            config.seed,
            config.row_scope,
        )?;
        let coordinates = if pde.uses_coordinates() {
            grid.coordinates()
        } else {
            Vec::new()
        };
        Ok(Self {
            pde,
            grid,
            terms,
            n_residual,
            solution_map,
            router,
            config,
            coordinates,
            fields: Arc::default(),
            #[cfg(feature = "cuda")]
            gpu: None,
            #[cfg(feature = "cuda")]
            gpu_gathers_rows: true,
            #[cfg(feature = "cuda")]
            gpu_grid_passes: true,
            #[cfg(feature = "cuda")]
            gpu_tiles: std::sync::OnceLock::new(),
        })
    }

    /// Solves `problems` in this process: on the attached GPU, which keeps
    /// the batch for the backward pass, else on the CPU's threads.
    fn solve_here(
        &self,
        problems: &[&ExpertProblem],
    ) -> Result<(Vec<LmSolution>, Option<SolvedBatch>), ExpertsError> {
        #[cfg(feature = "cuda")]
        if let Some(gpu) = &self.gpu {
            let (solutions, kept) = gpu.solve_kept(&self.config.lm, problems)?;
            return Ok((solutions, Some(kept)));
        }
        let solutions = runner::solve_experts(self.pde.as_ref(), problems, &self.config.lm)?;
        Ok((solutions, None))
    }

    /// The backward passes of the `forward` pass's experts in this process,
    /// for the upstream gradients `omega_bars` (per sample, `[K, N]`): on the
    /// attached GPU (on the batch it kept, when it solved every problem), else
    /// on the CPU's threads.
    fn differentiate_here(
        &self,
        forward: &Forward,
        omega_bars: &[Vec<f64>],
    ) -> Result<Vec<RowGradient>, ExpertsError> {
        let n = forward.n_basis;
        let experts = || forward.samples.iter().flat_map(|s| &s.experts);
        let bars: Vec<&[f64]> = omega_bars.iter().flat_map(|b| b.chunks_exact(n)).collect();
        #[cfg(feature = "cuda")]
        if let Some(gpu) = &self.gpu {
            let gradients = match &forward.on_gpu {
                Some(solved) if solved.len() == bars.len() => {
                    gpu.differentiate_solved(self.config.hessian, solved, &bars)?
                }
                _ => {
                    let problems = experts()
                        .map(SavedExpert::host_problem)
                        .collect::<Result<Vec<_>, _>>()?;
                    let omegas: Vec<&[f64]> =
                        experts().map(|e| e.solution.omega.as_slice()).collect();
                    gpu.differentiate(self.config.hessian, &problems, &omegas, &bars)?
                }
            };
            return gradients.into_iter().map(|g| Ok(g?)).collect();
        }
        let jobs = experts()
            .zip(bars)
            .map(|(e, omega_bar)| {
                Ok(BackwardJob {
                    problem: e.host_problem()?,
                    omega: &e.solution.omega,
                    omega_bar,
                })
            })
            .collect::<Result<Vec<_>, ExpertsError>>()?;
        runner::differentiate_experts(self.pde.as_ref(), &jobs, self.config.hessian)
    }

    /// The layer with its solves on a GPU: every `(sample, expert)` problem of
    /// a batch in one launch of `solver` forward, and one backward on the
    /// problems the forward pass left on the device (only `ω̄` goes up), which
    /// must be compiled for this layer's PDE (its emitted residual) and basis
    /// size. Where every residual term is local (stencils), the problems'
    /// term rows are built on the device from the basis (`S B`) and the
    /// terms' stencil rows at every grid point (`terms::residual_rows`,
    /// uploaded at the first call), so the host builds and sends only the
    /// experts' points and their problems' offsets and linear rows;
    /// otherwise the host builds whole problems. On that gathered path the
    /// assembly of `u`, the experts' `ω̄` and the pull-back to the basis
    /// run on the GPU too, from the fields the forward pass left there
    /// (where a linear row reads a term that is not local, the pull-back
    /// runs on the CPU). An expert-parallel shard solves its experts on the
    /// CPU.
    #[cfg(feature = "cuda")]
    pub fn with_gpu(mut self, solver: Arc<tessera_constraints::gpu::GpuLm>) -> Self {
        self.gpu = Some(solver);
        self.gpu_tiles = std::sync::OnceLock::new();
        self
    }

    /// The layer with its GPU receiving every problem built on the host, term
    /// rows included, instead of building the rows from the basis: the path
    /// of non-local terms, for benchmarks that compare the two on the same
    /// problems.
    #[cfg(feature = "cuda")]
    pub fn with_term_rows_from_host(mut self) -> Self {
        self.gpu_gathers_rows = false;
        self
    }

    /// The layer with the assembly of `u`, the experts' `ω̄` and the
    /// pull-back to the basis on the host even where its GPU gathers the
    /// term rows: for benchmarks that measure what running them on the
    /// device gains (the bus against the host's passes over the basis).
    #[cfg(feature = "cuda")]
    pub fn with_grid_passes_on_host(mut self) -> Self {
        self.gpu_grid_passes = false;
        self
    }

    /// The GPU solver attached with [`ConstraintLayer::with_gpu`], if any: for
    /// reports of where its calls spend their time
    /// ([`tessera_constraints::gpu::GpuLm::take_times`]).
    #[cfg(feature = "cuda")]
    pub fn gpu_solver(&self) -> Option<&Arc<tessera_constraints::gpu::GpuLm>> {
        self.gpu.as_ref()
    }

    /// Whether this layer's solves run on a GPU (`ConstraintLayer::with_gpu`, feature `cuda`),
    /// for reports that say where the time went.
    pub fn solves_on_gpu(&self) -> bool {
        #[cfg(feature = "cuda")]
        return self.gpu.is_some();
        #[cfg(not(feature = "cuda"))]
        false
    }

    /// The grid.
    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    /// Frees the full-grid fields kept for the next forward pass (a later
    /// pass allocates them afresh): for a layer whose passes are over.
    pub fn release_kept_buffers(&self) {
        self.fields.release();
    }

    /// The router (tiles and sampling).
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Number of experts `K`.
    pub fn n_experts(&self) -> usize {
        self.router.n_experts()
    }

    /// The configuration.
    pub fn config(&self) -> &LayerConfig {
        &self.config
    }

    /// The PDE's terms on this grid.
    pub fn terms(&self) -> &[Term] {
        &self.terms
    }

    /// How many terms (the first ones) enter the residual and the problems' term
    /// rows (`d_r`, from [`Pde::residual_terms`]).
    pub fn n_residual(&self) -> usize {
        self.n_residual
    }

    /// The forward pass for a batch.
    ///
    /// - `basis`: `[batch, grid points, n_basis]` row-major (float64);
    /// - `ics`: one initial condition per sample (`[x, (y)]`, what
    ///   [`Pde::linear_rows`] expects); the batch size is `ics.len()`;
    /// - `stream`: the sampling stream (e.g. the training step).
    ///
    /// Errors are shape problems and PDE-definition failures; NaN or Inf in the
    /// data is reported per expert as [`StopReason::NonFinite`] in
    /// [`Forward::statuses`] (that expert's part of `u` is then not usable).
    pub fn forward(
        &self,
        basis: &[f64],
        n_basis: usize,
        ics: &[&[f64]],
        stream: u64,
    ) -> Result<Forward, ExpertsError> {
        self.forward_points(basis, n_basis, ics, self.sample(stream)?, None)
    }

    /// [`ConstraintLayer::forward`] with the solves split over the ranks of an
    /// expert-parallel group (every rank of the group calls it with the same
    /// batch and gets the same [`Forward`], bit for bit that of
    /// [`ConstraintLayer::forward`]). Call it from the thread that owns the
    /// communicator, not from inside a rayon task.
    ///
    /// Errors: those of [`ConstraintLayer::forward`], a shard for another number
    /// of experts, and the exchange's transport errors.
    pub fn forward_sharded(
        &self,
        basis: &[f64],
        n_basis: usize,
        ics: &[&[f64]],
        stream: u64,
        shard: &ExpertShard<'_>,
    ) -> Result<Forward, ExpertsError> {
        if shard.n_experts() != self.n_experts() {
            return Err(ExpertsError::ShapeMismatch {
                what: "expert shard (one owner per expert)",
                expected: vec![self.n_experts()],
                got: vec![shard.n_experts()],
            });
        }
        self.forward_points(basis, n_basis, ics, self.sample(stream)?, Some(shard))
    }

    /// Every expert's sampled points for `stream`.
    fn sample(&self, stream: u64) -> Result<Vec<Vec<usize>>, ExpertsError> {
        (0..self.n_experts())
            .into_par_iter()
            .map(|k| self.router.sample(k, stream))
            .collect()
    }

    /// The forward pass at given sampled points instead of the router's:
    /// `points[k]` are expert `k`'s flat grid indices, all inside its tile (for
    /// problems whose points come from elsewhere, e.g. a problem file). The
    /// other arguments are those of [`ConstraintLayer::forward`].
    ///
    /// Errors: as [`ConstraintLayer::forward`], plus not one list of points per
    /// expert, a point outside the grid or outside its expert's tile.
    pub fn forward_at(
        &self,
        basis: &[f64],
        n_basis: usize,
        ics: &[&[f64]],
        points: Vec<Vec<usize>>,
    ) -> Result<Forward, ExpertsError> {
        self.forward_points(basis, n_basis, ics, points, None)
    }

    /// The forward pass at `points`, the solves split by `shard` if given.
    fn forward_points(
        &self,
        basis: &[f64],
        n_basis: usize,
        ics: &[&[f64]],
        points: Vec<Vec<usize>>,
        shard: Option<&ExpertShard<'_>>,
    ) -> Result<Forward, ExpertsError> {
        let (g, batch) = (self.grid.len(), ics.len());
        if n_basis == 0 {
            return Err(ExpertsError::TooSmall {
                what: "number of basis functions",
                min: 1,
                got: 0,
            });
        }
        if basis.len() != batch * g * n_basis {
            return Err(ExpertsError::ShapeMismatch {
                what: "basis [batch, grid points, N]",
                expected: vec![batch, g, n_basis],
                got: vec![basis.len()],
            });
        }
        self.check_points(&points)?;
        let points: Vec<Arc<Vec<usize>>> = points.into_iter().map(Arc::new).collect();
        #[cfg(feature = "cuda")]
        if shard.is_none()
            && self.gpu_gathers_rows
            && let Some(gpu) = &self.gpu
            && let Some(tiles) = self.device_tiles(gpu)?
        {
            return self.forward_gathered(gpu, tiles, basis, n_basis, ics, &points);
        }
        let prepared = self.prepare(basis, n_basis, ics, &points, |sample, k, row_ids| {
            let (n_equations, ridge) = (self.pde.n_equations(), self.config.ridge);
            let problem = sample.problem(k, row_ids, n_equations, ridge)?;
            let coordinates = self.point_coordinates(&points[k]);
            if coordinates.is_empty() {
                Ok(problem)
            } else {
                Ok(problem.with_coordinates(coordinates)?)
            }
        })?;
        let problems: Vec<&ExpertProblem> = prepared
            .iter()
            .flat_map(|s| s.experts.iter().map(|(_, p)| p))
            .collect();
        let (solutions, on_gpu) = match shard {
            None => self.solve_here(&problems)?,
            Some(shard) => (
                shard.solve(self.pde.as_ref(), &problems, &self.config.lm)?,
                None,
            ),
        };
        let solved = Solved {
            solutions,
            on_gpu,
            u: None,
        };
        Ok(self.finish(prepared, &points, n_basis, solved, SavedProblem::Host))
    }

    /// The forward pass on the attached GPU with the problems' term rows
    /// gathered there from the basis at `points` by `tiles`' terms: the
    /// host builds only their offsets and linear rows.
    #[cfg(feature = "cuda")]
    fn forward_gathered(
        &self,
        gpu: &tessera_constraints::gpu::GpuLm,
        tiles: &tessera_constraints::gpu::DeviceTiles,
        basis: &[f64],
        n_basis: usize,
        ics: &[&[f64]],
        points: &[Arc<Vec<usize>>],
    ) -> Result<Forward, ExpertsError> {
        use tessera_constraints::gpu::{GatheredProblem, RowGather};
        let prepared = self.prepare(basis, n_basis, ics, points, |sample, k, row_ids| {
            let (n_equations, ridge) = (self.pde.n_equations(), self.config.ridge);
            let coordinates = self.point_coordinates(&points[k]);
            sample.gathered_problem(k, row_ids, n_equations, ridge, coordinates)
        })?;
        let problems: Vec<&GatheredProblem> = prepared
            .iter()
            .flat_map(|s| s.experts.iter().map(|(_, p)| p))
            .collect();
        // The rows read `S B`: the basis itself without a solution map.
        let mapped: Vec<f64>;
        let fields = if self.solution_map.is_none() {
            basis
        } else {
            mapped = prepared
                .iter()
                .flat_map(|s| s.solution.iter())
                .copied()
                .collect();
            &mapped
        };
        let g = self.grid.len();
        let flat: Vec<usize> = points.iter().flat_map(|p| p.iter().copied()).collect();
        let gather = RowGather::new(&flat, fields, g, n_basis)?;
        let (solutions, kept) =
            gpu.solve_kept_gathered(&self.config.lm, &problems, tiles, &gather)?;
        let u = if self.gpu_grid_passes {
            // s₀, zero for a sample without one (as the host's assembly).
            let offsets: Option<Vec<f64>> =
                prepared.iter().any(|s| s.offset.is_some()).then(|| {
                    prepared
                        .iter()
                        .flat_map(|s| s.offset.clone().unwrap_or_else(|| vec![0.0; g]))
                        .collect()
                });
            Some(gpu.assemble(&kept, tiles, offsets.as_deref())?)
        } else {
            None
        };
        let solved = Solved {
            solutions,
            on_gpu: Some(kept),
            u,
        };
        Ok(self.finish(prepared, points, n_basis, solved, |_| SavedProblem::OnGpu))
    }

    /// The attached GPU's copy of the tiles and of the residual's terms at
    /// every grid point ([`tessera_constraints::gpu::GpuLm::tiles`]), made
    /// at the first call; `None` where a residual term is not local.
    #[cfg(feature = "cuda")]
    fn device_tiles(
        &self,
        gpu: &tessera_constraints::gpu::GpuLm,
    ) -> Result<Option<&tessera_constraints::gpu::DeviceTiles>, ExpertsError> {
        if let Some(tiles) = self.gpu_tiles.get() {
            return Ok(tiles.as_ref());
        }
        let terms = &self.terms[..self.n_residual];
        let tiles = match crate::terms::residual_rows(terms, self.grid.len())? {
            Some(rows) => Some(gpu.tiles(self.router.owners(), self.n_experts(), &rows)?),
            None => None,
        };
        Ok(self.gpu_tiles.get_or_init(|| tiles).as_ref())
    }

    /// Every sample's rows, offset, `S B` and experts' problems (built by
    /// `build` from the sample's terms at `points`, the expert's index and its
    /// linear rows), the samples and the experts in parallel.
    fn prepare<'a, Q: Send + Sync>(
        &'a self,
        basis: &'a [f64],
        n_basis: usize,
        ics: &[&[f64]],
        points: &[Arc<Vec<usize>>],
        build: impl Fn(&SampleTerms<'_>, usize, &[usize]) -> Result<Q, ExpertsError> + Sync,
    ) -> Result<Vec<PreparedSample<'a, Q>>, ExpertsError> {
        let g = self.grid.len();
        (0..ics.len())
            .into_par_iter()
            .with_max_len(1)
            .map(|b| {
                let basis = &basis[b * g * n_basis..(b + 1) * g * n_basis];
                self.prepare_sample(basis, n_basis, ics[b], points, &build)
            })
            .collect()
    }

    /// The forward pass's result from the prepared samples and what their
    /// solves returned (`u` is assembled here unless the GPU did it);
    /// `saved` turns each problem into what the backward pass keeps of it.
    fn finish<Q: Sync>(
        &self,
        prepared: Vec<PreparedSample<'_, Q>>,
        points: &[Arc<Vec<usize>>],
        n_basis: usize,
        solved: Solved,
        saved: impl Fn(Q) -> SavedProblem,
    ) -> Forward {
        let Solved {
            solutions,
            on_gpu,
            u,
        } = solved;
        let (g, batch, k_experts) = (self.grid.len(), prepared.len(), self.n_experts());
        let u = u.unwrap_or_else(|| {
            let mut u = vec![0.0; batch * g];
            u.par_chunks_mut(g)
                .zip(&prepared)
                .zip(solutions.par_chunks(k_experts))
                .with_max_len(1)
                .for_each(|((u, sample), solutions)| {
                    self.assemble(sample, solutions, n_basis, u);
                });
            u
        });
        let weights = solutions
            .iter()
            .flat_map(|s| s.omega.iter().copied())
            .collect();
        let statuses = solutions.iter().map(|s| s.status).collect();
        let mut solutions = solutions.into_iter();
        let samples = prepared
            .into_iter()
            .map(|sample| SavedSample {
                ic: sample.ic,
                rows: sample.rows,
                experts: sample
                    .experts
                    .into_iter()
                    .zip(points)
                    .map(|((row_ids, problem), pts)| SavedExpert {
                        points: Arc::clone(pts),
                        rows: row_ids,
                        problem: saved(problem),
                        solution: solutions.next().expect("one solution per problem"),
                    })
                    .collect(),
            })
            .collect();
        Forward {
            u,
            weights,
            statuses,
            batch,
            n_basis,
            samples,
            on_gpu,
        }
    }

    /// The backward pass: `B̄ = ∂L/∂B`, `[batch, grid points, N]`, for
    /// `u_bar = ∂L/∂u`, `[batch, grid points]`. `basis` must be the basis
    /// `forward` was computed from (`[batch, grid points, N]`): the forward pass
    /// keeps no copy of it (on a GPU that gathered the problems' rows, the
    /// pass runs there from the fields the forward pass left on the device,
    /// and `basis` is only checked for its length: `ConstraintLayer::with_gpu`).
    ///
    /// Errors: a wrong `basis` or `u_bar` length, NaN/Inf in `u_bar`, or an expert
    /// whose forward solve stopped with [`StopReason::NonFinite`] or
    /// [`StopReason::Singular`] ([`ExpertsError::ExpertFailed`]). Experts that hit
    /// the iteration limit are differentiated at their last iterate (as the
    /// reference, which runs with `throw=False`).
    pub fn backward(
        &self,
        forward: &Forward,
        basis: &[f64],
        u_bar: &[f64],
    ) -> Result<Vec<f64>, ExpertsError> {
        self.check_backward(forward, basis, u_bar)?;
        #[cfg(feature = "cuda")]
        if let Some(basis_bar) = self.backward_on_gpu(forward, u_bar)? {
            return Ok(basis_bar);
        }
        Ok(self.backward_here(forward, basis, u_bar, false)?.basis)
    }

    /// [`ConstraintLayer::backward`] that also differentiates in the initial
    /// conditions the forward pass was given: [`LayerGradient::ic`] is
    /// `∂L/∂ic`, every sample's after the other, laid out like the `ics` of
    /// [`ConstraintLayer::forward`]. An initial condition reaches the solution
    /// through its linear rows (their right-hand sides and any coefficient
    /// built from it), the term offsets and `u` itself (the offset `s₀`);
    /// the rows' and the offset's cotangents come from the same compact row
    /// gradients as `B̄`, and the PDE maps them back to the initial condition
    /// ([`Pde::initial_condition_backward`]). For inverse problems, data
    /// assimilation, or a learned initial state.
    ///
    /// It runs on the host (the experts' adjoint solves stay on an attached
    /// GPU), so `basis` must be the basis `forward` was computed from on
    /// every path; [`LayerGradient::basis`] is `backward`'s bit for bit on
    /// the CPU, and to round-off where `backward` pulls back on a GPU.
    ///
    /// Errors: those of [`ConstraintLayer::backward`], and a PDE that does
    /// not provide the derivative ([`ConstraintError::NoDerivative`]).
    ///
    /// [`ConstraintError::NoDerivative`]: tessera_constraints::ConstraintError::NoDerivative
    pub fn backward_with_ic(
        &self,
        forward: &Forward,
        basis: &[f64],
        u_bar: &[f64],
    ) -> Result<LayerGradient, ExpertsError> {
        self.check_backward(forward, basis, u_bar)?;
        self.backward_here(forward, basis, u_bar, true)
    }

    /// Checks the arguments of a backward pass and that every expert left
    /// weights to differentiate at.
    fn check_backward(
        &self,
        forward: &Forward,
        basis: &[f64],
        u_bar: &[f64],
    ) -> Result<(), ExpertsError> {
        let (g, n, k_experts) = (self.grid.len(), forward.n_basis, self.n_experts());
        if basis.len() != forward.batch * g * n {
            return Err(ExpertsError::ShapeMismatch {
                what: "basis [batch, grid points, N]",
                expected: vec![forward.batch, g, n],
                got: vec![basis.len()],
            });
        }
        if u_bar.len() != forward.batch * g {
            return Err(ExpertsError::ShapeMismatch {
                what: "u_bar [batch, grid points]",
                expected: vec![forward.batch, g],
                got: vec![u_bar.len()],
            });
        }
        if !u_bar.iter().all(|x| x.is_finite()) {
            return Err(tessera_constraints::ConstraintError::NonFinite { what: "u_bar" }.into());
        }
        for (i, status) in forward.statuses.iter().enumerate() {
            if matches!(status.reason, StopReason::NonFinite | StopReason::Singular) {
                return Err(ExpertsError::ExpertFailed {
                    sample: i / k_experts,
                    expert: i % k_experts,
                    reason: status.reason,
                });
            }
        }
        Ok(())
    }

    /// The backward pass on the host (the adjoint solves on an attached
    /// GPU), with the initial conditions' cotangents where `with_ic`.
    fn backward_here(
        &self,
        forward: &Forward,
        basis: &[f64],
        u_bar: &[f64],
        with_ic: bool,
    ) -> Result<LayerGradient, ExpertsError> {
        let (g, n, k_experts) = (self.grid.len(), forward.n_basis, self.n_experts());
        let pull_back = PullBack {
            terms: &self.terms,
            n_residual: self.n_residual,
            owners: self.router.owners(),
            n_experts: k_experts,
            solution_map: self.solution_map.as_deref(),
        };
        // ω̄_k per sample, [K, N] each.
        let omega_bars: Vec<Vec<f64>> = basis
            .par_chunks(g * n)
            .zip(u_bar.par_chunks(g))
            .with_max_len(1)
            .map(|(b, ub)| pull_back.omega_bars(b, n, ub))
            .collect();
        let gradients = self.differentiate_here(forward, &omega_bars)?;
        let mut basis_bar = vec![0.0; basis.len()];
        let ic_bars = basis_bar
            .par_chunks_mut(g * n)
            .zip(basis.par_chunks(g * n))
            .zip(&forward.samples)
            .zip(gradients.par_chunks(k_experts))
            .zip(u_bar.par_chunks(g))
            .with_max_len(1)
            .map(|((((out, basis), sample), grads), ub)| {
                let experts: Vec<ExpertRows<'_>> = sample
                    .experts
                    .iter()
                    .zip(grads)
                    .map(|(e, gradient)| ExpertRows {
                        points: &e.points,
                        row_ids: &e.rows,
                        gradient,
                    })
                    .collect();
                if !with_ic {
                    pull_back.basis_gradient(&sample.rows, &experts, ub, out, None);
                    return Ok(Vec::new());
                }
                self.ic_gradient(&pull_back, sample, &experts, basis, ub, out)
            })
            .collect::<Result<Vec<Vec<f64>>, ExpertsError>>()?;
        Ok(LayerGradient {
            basis: basis_bar,
            ic: ic_bars.concat(),
        })
    }

    /// One sample's `B̄` into `basis_bar` and its `∂L/∂ic`: the offset's and
    /// the rows' cotangents, mapped back by the PDE.
    fn ic_gradient(
        &self,
        pull_back: &PullBack<'_>,
        sample: &SavedSample,
        experts: &[ExpertRows<'_>],
        basis: &[f64],
        u_bar: &[f64],
        basis_bar: &mut [f64],
    ) -> Result<Vec<f64>, ExpertsError> {
        let n = basis.len() / u_bar.len();
        let offset = self.pde.solution_offset(&self.grid, &sample.ic)?;
        let mut offset_bar = offset.as_ref().map(|_| vec![0.0; u_bar.len()]);
        pull_back.basis_gradient(
            &sample.rows,
            experts,
            u_bar,
            basis_bar,
            offset_bar.as_deref_mut(),
        );
        // The rows' coefficients read `S B` at their points: a sample without
        // rows (Navier–Stokes) skips building it.
        let rows = if sample.rows.is_empty() {
            Vec::new()
        } else {
            let mapped;
            let solution = match &self.solution_map {
                None => basis,
                Some(s) => {
                    mapped = s.apply_to_vec(basis, n);
                    &mapped
                }
            };
            row_cotangents(
                &self.terms,
                &sample.rows,
                experts,
                solution,
                n,
                offset.as_deref(),
            )
        };
        Ok(self.pde.initial_condition_backward(
            &self.grid,
            &sample.ic,
            &rows,
            offset_bar.as_deref(),
        )?)
    }

    /// The backward pass on the attached GPU, from the fields and the
    /// problems the forward pass left there ([`GpuLm::pull_back`]), or
    /// `None` where it does not run there: no batch kept with its fields, a
    /// residual or linear-row term that is not local, samples whose linear
    /// rows differ in their points or terms (the device reads one sample's
    /// layout for all), or the passes over the grid kept on the host
    /// ([`ConstraintLayer::with_grid_passes_on_host`]).
    ///
    /// [`GpuLm::pull_back`]: tessera_constraints::gpu::GpuLm::pull_back
    #[cfg(feature = "cuda")]
    fn backward_on_gpu(
        &self,
        forward: &Forward,
        u_bar: &[f64],
    ) -> Result<Option<Vec<f64>>, ExpertsError> {
        let (Some(gpu), Some(solved)) = (&self.gpu, &forward.on_gpu) else {
            return Ok(None);
        };
        if !solved.kept_fields() || !self.gpu_grid_passes {
            return Ok(None);
        }
        let Some(tiles) = self.device_tiles(gpu)? else {
            return Ok(None);
        };
        let Some(rows) = self.device_pull_back_rows(forward)? else {
            return Ok(None);
        };
        let mut basis_bar = gpu.pull_back(self.config.hessian, solved, tiles, &rows, u_bar)??;
        if let Some(s) = &self.solution_map {
            let field = self.grid.len() * forward.n_basis;
            basis_bar
                .par_chunks_mut(field)
                .for_each(|f| f.copy_from_slice(&s.apply_adjoint_to_vec(f, forward.n_basis)));
        }
        Ok(Some(basis_bar))
    }

    /// Where `forward`'s row gradients sit on the grid, as the GPU's
    /// pull-back reads them: every expert's sampled points and its linear
    /// rows expanded over the grid (`Σ_j c_j` × row `point` of `D_j`);
    /// `None` where a linear row reads a term that is not local or the
    /// samples' linear rows differ in their points, terms or experts. Public
    /// for tests and tools that run the kernels themselves.
    ///
    /// Errors: more points or rows than the kernels' 32-bit indices reach.
    #[cfg(feature = "cuda")]
    pub fn device_pull_back_rows(
        &self,
        forward: &Forward,
    ) -> Result<Option<tessera_constraints::gpu::PullBackRows>, ExpertsError> {
        let Some((first, rest)) = forward.samples.split_first() else {
            return Ok(None);
        };
        let same_layout = |s: &SavedSample| {
            let rows = s.rows.iter().map(|r| (r.point, &r.coeffs));
            let experts = s.experts.iter().map(|e| &e.rows);
            rows.eq(first.rows.iter().map(|r| (r.point, &r.coeffs)))
                && experts.eq(first.experts.iter().map(|e| &e.rows))
        };
        if !rest.iter().all(same_layout) {
            return Ok(None);
        }
        let g = self.grid.len();
        let mut linear = Vec::with_capacity(first.experts.len());
        for expert in &first.experts {
            let mut rows = tessera_meshes::SparseRows::new(g);
            for &r in &expert.rows {
                let row = &first.rows[r];
                let parts: Vec<(&dyn tessera_meshes::LinearOperator, f64)> = row
                    .coeffs
                    .iter()
                    .map(|&(j, c)| (self.terms[j].operator.as_ref(), c))
                    .collect();
                if rows.push_sum(&parts, row.point).is_err() {
                    return Ok(None);
                }
            }
            linear.push(rows);
        }
        let points: Vec<&[usize]> = first.experts.iter().map(|e| e.points.as_slice()).collect();
        Ok(Some(tessera_constraints::gpu::PullBackRows::new(
            &points, &linear,
        )?))
    }

    /// Checks that `points` holds one list per expert, each inside its tile.
    fn check_points(&self, points: &[Vec<usize>]) -> Result<(), ExpertsError> {
        let owners = self.router.owners();
        if points.len() != self.n_experts() {
            return Err(ExpertsError::ShapeMismatch {
                what: "sampled points (one list per expert)",
                expected: vec![self.n_experts()],
                got: vec![points.len()],
            });
        }
        for (expert, pts) in points.iter().enumerate() {
            for &point in pts {
                match owners.get(point) {
                    Some(&tile) if tile == expert => {}
                    tile => {
                        return Err(ExpertsError::PointOutsideTile {
                            expert,
                            point,
                            tile: tile.copied(),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// `S B`, offset `s₀`, rows and every expert's problem (by `build`) for
    /// one sample, the experts in parallel.
    fn prepare_sample<'a, Q: Send + Sync>(
        &'a self,
        basis: &'a [f64],
        n_basis: usize,
        ic: &[f64],
        points: &[Arc<Vec<usize>>],
        build: &(impl Fn(&SampleTerms<'_>, usize, &[usize]) -> Result<Q, ExpertsError> + Sync),
    ) -> Result<PreparedSample<'a, Q>, ExpertsError> {
        let rows = self.pde.linear_rows(&self.grid, ic)?;
        let offset = self.pde.solution_offset(&self.grid, ic)?;
        let solution = match &self.solution_map {
            None => Field::Borrowed(basis),
            Some(s) => {
                let mut mapped = self.fields.zeros(basis.len());
                s.apply(basis, n_basis, &mut mapped);
                Field::Pooled(mapped)
            }
        };
        let sets: Vec<&[usize]> = points.iter().map(|p| p.as_slice()).collect();
        let sample = SampleTerms::with_pool(
            &self.terms,
            self.n_residual,
            &solution,
            n_basis,
            offset.as_deref(),
            &rows,
            &sets,
            Some(&self.fields),
        )?;
        let experts = (0..points.len())
            .into_par_iter()
            .with_max_len(1)
            .map(|k| {
                let row_ids = self.router.rows_for(k, &rows);
                let problem = build(&sample, k, &row_ids)?;
                Ok((row_ids, problem))
            })
            .collect::<Result<_, ExpertsError>>()?;
        // Hands the terms' fields back to the pool for the next sample.
        drop(sample);
        Ok(PreparedSample {
            solution,
            offset,
            ic: ic.to_vec(),
            rows,
            experts,
        })
    }

    /// The coordinates of `points`, `[P, ndim]`, where the PDE's residual
    /// reads them; empty otherwise.
    fn point_coordinates(&self, points: &[usize]) -> Vec<f64> {
        let nd = self.grid.ndim();
        if self.coordinates.is_empty() {
            return Vec::new();
        }
        points
            .iter()
            .flat_map(|&p| &self.coordinates[p * nd..(p + 1) * nd])
            .copied()
            .collect()
    }

    /// `u = Σ_k 1_{Ω_k} ⊙ (SB ω_k) + s₀` for one sample into `u`, in parallel over
    /// chunks of points.
    fn assemble<Q: Sync>(
        &self,
        sample: &PreparedSample<'_, Q>,
        solutions: &[LmSolution],
        n: usize,
        u: &mut [f64],
    ) {
        let owners = self.router.owners();
        u.par_chunks_mut(POINTS_PER_TASK)
            .zip(sample.solution.par_chunks(POINTS_PER_TASK * n))
            .zip(owners.par_chunks(POINTS_PER_TASK))
            .enumerate()
            .for_each(|(chunk, ((u, sb), owners))| {
                let start = chunk * POINTS_PER_TASK;
                for (q, ((uq, sbq), &owner)) in
                    u.iter_mut().zip(sb.chunks_exact(n)).zip(owners).enumerate()
                {
                    let s0 = sample.offset.as_ref().map_or(0.0, |s0| s0[start + q]);
                    let omega = &solutions[owner].omega;
                    *uq = s0 + sbq.iter().zip(omega).map(|(a, w)| a * w).sum::<f64>();
                }
            });
    }
}
