//! The end-to-end hard-constraint layer: basis in, constrained solution out, and
//! the exact backward pass — what the trainer's custom op calls.
//!
//! Per sample `b` with basis `B_b` (`[grid points, N]`) and initial condition `ic_b`:
//!
//! 1. `SB = S(B_b)` (`S` from [`Pde::solution_map`], identity if `None`), offset
//!    `s₀` from [`Pde::solution_offset`];
//! 2. term fields `A_j = D_j SB`, `b_j = D_j s₀` on the full grid;
//! 3. for every expert `k`: gather its rows at its sampled points plus its linear
//!    rows ([`crate::router`]), solve with Levenberg–Marquardt;
//! 4. `u = Σ_k 1_{Ω_k} ⊙ (SB ω_k*) + s₀`.
//!
//! The backward pass takes `ū = ∂L/∂u` and returns `B̄ = ∂L/∂B` through both paths:
//! the direct one (`u` is linear in `SB` at fixed `ω*`) and the implicit one through
//! `ω_k*` (each expert's [`Sensitivity`], its term-row gradients scattered back to
//! the grid, then `Σ_j D_jᵀ` and `Sᵀ`).
//!
//! The sampled points are the same for every sample of a call and depend only on
//! the configured seed, the expert and `stream` (pass the training step to
//! resample each step). Parallelism: all `(sample, expert)` solves are spread over
//! the caller's rayon pool (`pool.install(|| layer.forward(…))`); the result is
//! bit-identical for any number of threads.

use std::sync::Arc;

use rayon::prelude::*;
use tessera_constraints::{
    DEFAULT_RIDGE, ExpertProblem, HessianMode, LevenbergMarquardt, LinearRow, LmSolution, LmStatus,
    Pde, StopReason, Term, pointwise,
};
use tessera_meshes::{Grid, LinearOperator};

use crate::router::{self, Router, RowScope};
use crate::runner::{self, BackwardJob};
use crate::{ExpertsError, TermFields};

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
    solution_map: Option<Arc<dyn LinearOperator>>,
    router: Router,
    config: LayerConfig,
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
}

/// One sample before its solves: `S B`, the offset `s₀`, the linear rows, and per
/// expert the indices of its rows and its gathered problem.
type PreparedSample = (
    Vec<f64>,
    Vec<f64>,
    Vec<LinearRow>,
    Vec<(Vec<usize>, ExpertProblem)>,
);

/// One sample's forward state kept for the backward pass.
struct SavedSample {
    /// `S B`, `[grid points, N]`.
    solution: Vec<f64>,
    /// The sample's linear rows.
    rows: Vec<LinearRow>,
    /// Per expert: indices into `rows`, the problem and its solution.
    experts: Vec<SavedExpert>,
}

struct SavedExpert {
    points: Arc<Vec<usize>>,
    rows: Vec<usize>,
    problem: ExpertProblem,
    solution: LmSolution,
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

    /// Expert `k`'s problem for sample `b` (for inspection and tests).
    ///
    /// # Panics
    /// If `b` or `k` is out of range.
    #[track_caller]
    pub fn problem(&self, b: usize, k: usize) -> &ExpertProblem {
        &self.samples[b].experts[k].problem
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
        Ok(Self {
            pde,
            grid,
            terms,
            solution_map,
            router,
            config,
        })
    }

    /// The grid.
    pub fn grid(&self) -> &Grid {
        &self.grid
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
        let (g, batch, k_experts) = (self.grid.len(), ics.len(), self.n_experts());
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
        let points: Vec<Arc<Vec<usize>>> = (0..k_experts)
            .map(|k| self.router.sample(k, stream).map(Arc::new))
            .collect::<Result<_, _>>()?;
        // Per sample: rows, offset, S B and the experts' gathered problems.
        let prepared: Vec<PreparedSample> = (0..batch)
            .into_par_iter()
            .with_max_len(1)
            .map(|b| {
                self.prepare_sample(
                    &basis[b * g * n_basis..(b + 1) * g * n_basis],
                    n_basis,
                    ics[b],
                    &points,
                )
            })
            .collect::<Result<_, _>>()?;
        let problems: Vec<&ExpertProblem> = prepared
            .iter()
            .flat_map(|s| s.3.iter().map(|(_, p)| p))
            .collect();
        let solutions = runner::solve_experts(self.pde.as_ref(), &problems, &self.config.lm)?;
        let mut solutions = solutions.into_iter();
        let mut samples = Vec::with_capacity(batch);
        let mut offsets = Vec::with_capacity(batch);
        for (solution, offset, rows, experts) in prepared {
            let experts = experts
                .into_iter()
                .zip(&points)
                .map(|((row_ids, problem), pts)| SavedExpert {
                    points: Arc::clone(pts),
                    rows: row_ids,
                    problem,
                    solution: solutions.next().expect("one solution per problem"),
                })
                .collect();
            samples.push(SavedSample {
                solution,
                rows,
                experts,
            });
            offsets.push(offset);
        }
        let u_parts: Vec<Vec<f64>> = samples
            .par_iter()
            .zip(&offsets)
            .with_max_len(1)
            .map(|(s, offset)| self.assemble(s, offset, n_basis))
            .collect();
        let weights = samples
            .iter()
            .flat_map(|s| {
                s.experts
                    .iter()
                    .flat_map(|e| e.solution.omega.iter().copied())
            })
            .collect();
        let statuses = samples
            .iter()
            .flat_map(|s| s.experts.iter().map(|e| e.solution.status))
            .collect();
        Ok(Forward {
            u: u_parts.concat(),
            weights,
            statuses,
            batch,
            n_basis,
            samples,
        })
    }

    /// The backward pass: `B̄ = ∂L/∂B`, `[batch, grid points, N]`, for
    /// `u_bar = ∂L/∂u`, `[batch, grid points]`.
    ///
    /// Errors: a wrong `u_bar` length, NaN/Inf in `u_bar`, or an expert whose
    /// forward solve stopped with [`StopReason::NonFinite`] or
    /// [`StopReason::Singular`] ([`ExpertsError::ExpertFailed`]). Experts that hit
    /// the iteration limit are differentiated at their last iterate (as the
    /// reference, which runs with `throw=False`).
    pub fn backward(&self, forward: &Forward, u_bar: &[f64]) -> Result<Vec<f64>, ExpertsError> {
        let (g, n) = (self.grid.len(), forward.n_basis);
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
                    sample: i / self.n_experts(),
                    expert: i % self.n_experts(),
                    reason: status.reason,
                });
            }
        }
        // ω̄_k = Σ_{p ∈ Ω_k} ū[p] SB[p], per (sample, expert).
        let omega_bars: Vec<Vec<f64>> = (0..forward.samples.len() * self.n_experts())
            .into_par_iter()
            .with_max_len(1)
            .map(|i| {
                let (b, k) = (i / self.n_experts(), i % self.n_experts());
                let sb = &forward.samples[b].solution;
                let ub = &u_bar[b * g..(b + 1) * g];
                let mut w = vec![0.0; n];
                for &p in self.router.tiling().tile_points(k) {
                    for (o, x) in w.iter_mut().zip(&sb[p * n..(p + 1) * n]) {
                        *o += ub[p] * x;
                    }
                }
                w
            })
            .collect();
        let jobs: Vec<BackwardJob<'_>> = forward
            .samples
            .iter()
            .flat_map(|s| s.experts.iter())
            .zip(&omega_bars)
            .map(|(e, w)| BackwardJob {
                problem: &e.problem,
                omega: &e.solution.omega,
                omega_bar: w,
            })
            .collect();
        let gradients =
            runner::differentiate_experts(self.pde.as_ref(), &jobs, self.config.hessian)?;
        let per_sample: Vec<Vec<f64>> = forward
            .samples
            .par_iter()
            .zip(gradients.par_chunks(self.n_experts()))
            .zip(u_bar.par_chunks(g))
            .with_max_len(1)
            .map(|((sample, grads), ub)| {
                let mut fields = TermFields::zeros(self.terms.len(), g, n);
                for (expert, grad) in sample.experts.iter().zip(grads) {
                    let rows: Vec<&LinearRow> =
                        expert.rows.iter().map(|&i| &sample.rows[i]).collect();
                    router::scatter(grad, &expert.points, &rows, &mut fields);
                }
                let mut sb_bar = fields.pull_back(&self.terms);
                for (k, expert) in sample.experts.iter().enumerate() {
                    for &p in self.router.tiling().tile_points(k) {
                        for (o, w) in sb_bar[p * n..(p + 1) * n]
                            .iter_mut()
                            .zip(&expert.solution.omega)
                        {
                            *o += ub[p] * w;
                        }
                    }
                }
                match &self.solution_map {
                    None => sb_bar,
                    Some(s) => {
                        let mut out = vec![0.0; sb_bar.len()];
                        s.apply_adjoint(&sb_bar, n, &mut out);
                        out
                    }
                }
            })
            .collect();
        Ok(per_sample.concat())
    }

    /// Rows, offset `s₀`, `S B` and every expert's gathered problem for one sample.
    fn prepare_sample(
        &self,
        basis: &[f64],
        n_basis: usize,
        ic: &[f64],
        points: &[Arc<Vec<usize>>],
    ) -> Result<PreparedSample, ExpertsError> {
        let g = self.grid.len();
        let rows = self.pde.linear_rows(&self.grid, ic)?;
        router::check_rows(&rows, g, self.terms.len())?;
        let offset = match self.pde.solution_offset(&self.grid, ic)? {
            Some(s0) if s0.len() != g => {
                return Err(ExpertsError::ShapeMismatch {
                    what: "solution offset [grid points]",
                    expected: vec![g],
                    got: vec![s0.len()],
                });
            }
            Some(s0) => s0,
            None => vec![0.0; g],
        };
        let solution = match &self.solution_map {
            None => basis.to_vec(),
            Some(s) => {
                let mut out = vec![0.0; basis.len()];
                s.apply(basis, n_basis, &mut out);
                out
            }
        };
        let fields = TermFields::from_solution(&self.terms, &solution, n_basis, Some(&offset));
        let experts = points
            .par_iter()
            .enumerate()
            .with_max_len(1)
            .map(|(k, pts)| {
                let row_ids = self.router.rows_for(k, &rows);
                let chosen: Vec<&LinearRow> = row_ids.iter().map(|&i| &rows[i]).collect();
                let problem = router::gather(
                    &fields,
                    pts,
                    &chosen,
                    self.pde.n_equations(),
                    self.config.ridge,
                )?;
                Ok((row_ids, problem))
            })
            .collect::<Result<_, ExpertsError>>()?;
        Ok((solution, offset, rows, experts))
    }

    /// `u = Σ_k 1_{Ω_k} ⊙ (SB ω_k) + s₀` for one sample.
    fn assemble(&self, sample: &SavedSample, offset: &[f64], n: usize) -> Vec<f64> {
        let mut u = offset.to_vec();
        for (k, expert) in sample.experts.iter().enumerate() {
            for &p in self.router.tiling().tile_points(k) {
                u[p] += sample.solution[p * n..(p + 1) * n]
                    .iter()
                    .zip(&expert.solution.omega)
                    .map(|(a, w)| a * w)
                    .sum::<f64>();
            }
        }
        u
    }
}
