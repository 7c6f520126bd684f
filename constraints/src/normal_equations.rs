//! The Gauss–Newton quantities of one problem at one `ω`: the cost `½‖r‖²`, the
//! Jacobian rows of the PDE part, the Gram matrix `JᵀJ` and the gradient `Jᵀr`.
//!
//! Why normal equations (and not a QR of `J`): `J` is `P×N` with `P ≈ 20 000` and
//! `N ≈ 16`; forming `JᵀJ` costs `P·N²` flops per evaluated point, block by block
//! with `J` never stored whole, where a QR would cost `2·P·N²` and need all of `J`, while every later solve
//! is an `N×N` Cholesky. The price is conditioning: `κ(JᵀJ) = κ(J)²`. It is
//! contained by (i) the ridge, which adds `ρ²I` and bounds the smallest eigenvalue
//! away from zero, (ii) the Levenberg–Marquardt damping `μI` in every step, and
//! (iii) the solver's guard: a Cholesky failure is treated as a rejected step
//! (more damping), and reported as [`crate::StopReason::Singular`] if damping
//! cannot rescue it.

use rayon::prelude::*;

use crate::dense;
use crate::pointwise;
use crate::{ExpertProblem, Pde};

/// Points per block of the fused pass. A block's term rows (`B·d·N` values:
/// 96 KiB at `d = 3`, `N = 16`) stay in the core's L2 cache while its residuals,
/// Jacobian rows and their Gram product are formed, so one evaluation streams
/// the term rows from memory exactly once — they are the only large data of a
/// solve, and that stream is what an iteration costs. Blocks are also the unit
/// of parallel work inside one evaluation (in the caller's rayon pool): with a
/// batch of one, four experts with unequal iteration counts cannot keep two
/// cores busy by themselves. Their partial products are summed in block order,
/// so results never depend on the number of threads.
pub(crate) const BLOCK: usize = 256;

/// Everything the solver needs at one `ω`, from one pass over the rows: the
/// residuals, the cost `½‖r‖²`, the Gram matrix `JᵀJ` and the gradient `Jᵀr`
/// (PDE, linear and ridge rows).
///
/// The normal equations are formed at every trial point, accepted or not:
/// forming them costs arithmetic on data already in cache, while forming them
/// only after acceptance would stream the term rows a second time.
pub(crate) struct Evaluation {
    /// `F(z)`, `[P, m]`.
    pub(crate) values: Vec<f64>,
    /// `Lω − c`, `[R]`.
    pub(crate) linear: Vec<f64>,
    /// `JᵀJ` (row-major `N×N`) followed by `Jᵀr` (`N`): the layout of one block's
    /// partial products, so that the blocks sum straight into it.
    normal: Vec<f64>,
    /// Each block's `JᵀJ` and `Jᵀr`, `[blocks, N·N + N]`, summed in block order.
    partials: Vec<f64>,
}

/// One worker's buffers for the blocks it evaluates.
pub(crate) struct Scratch {
    /// `z` of one block, `[B, d]`.
    z: Vec<f64>,
    /// `∂F/∂z` of one block, `[B, m, d]`.
    grads: Vec<f64>,
    /// Jacobian rows of one block, `[B·m, N]`.
    jac: Vec<f64>,
}

impl Scratch {
    /// Buffers for blocks of `problem`.
    pub(crate) fn new(problem: &ExpertProblem) -> Self {
        let size = problem.size();
        let (d, m, n) = (size.n_terms, size.n_equations, size.n_basis);
        Self {
            z: vec![0.0; BLOCK * d],
            grads: vec![0.0; BLOCK * m * d],
            jac: vec![0.0; BLOCK * m * n],
        }
    }
}

impl Evaluation {
    /// Buffers sized for `problem`.
    pub(crate) fn new(problem: &ExpertProblem) -> Self {
        let (p, size) = (problem.n_points(), problem.size());
        let n = size.n_basis;
        Self {
            values: vec![0.0; p * size.n_equations],
            linear: vec![0.0; problem.n_linear()],
            normal: vec![0.0; n * n + n],
            partials: vec![0.0; p.div_ceil(BLOCK) * (n * n + n)],
        }
    }

    /// Evaluates residuals, `JᵀJ` and `Jᵀr` at `omega` in one pass and returns
    /// `½‖r(ω)‖²`: NaN when any term `z` is not finite, infinite or NaN when any
    /// residual is not. The check on `z` is the solver's test of its input: a
    /// non-finite entry of the term rows or offsets makes its `z` non-finite at
    /// any finite `ω` (`0·∞` is NaN), and `z` is in cache here, while a separate
    /// pass over the rows would cost as much as an iteration.
    pub(crate) fn compute<P: Pde>(
        &mut self,
        pde: &P,
        problem: &ExpertProblem,
        omega: &[f64],
    ) -> f64 {
        let size = problem.size();
        let (d, m, n) = (size.n_terms, size.n_equations, size.n_basis);
        let finite = problem
            .term_rows()
            .par_chunks(BLOCK * d * n)
            .zip(problem.offsets().par_chunks(BLOCK * d))
            .zip(self.values.par_chunks_mut(BLOCK * m))
            .zip(self.partials.par_chunks_mut(n * n + n))
            .enumerate()
            .map_init(
                || Scratch::new(problem),
                |scratch, (block, (((rows, offsets), values), partial))| {
                    let points = offsets.len() / d;
                    let coords = problem.coordinates(block * BLOCK, points);
                    let (z, grads, jac) = (
                        &mut scratch.z[..points * d],
                        &mut scratch.grads[..points * m * d],
                        &mut scratch.jac[..points * m * n],
                    );
                    dense::rows_dot(z, rows, omega, offsets, 1.0);
                    let finite = z.iter().all(|x| x.is_finite());
                    pointwise::gradients(pde, d, z, coords, values, grads);
                    jacobian_rows(jac, rows, grads, d, m, n);
                    let (gram, gradient) = partial.split_at_mut(n * n);
                    dense::gram(gram, jac, jac, n, false);
                    dense::transpose_times(gradient, jac, values, false);
                    finite
                },
            )
            .reduce(|| true, |a, b| a && b);
        sum_blocks(&self.partials, &mut self.normal);
        problem.linear_residual(omega, &mut self.linear);
        let (gram, gradient) = self.normal.split_at_mut(n * n);
        add_linear_and_ridge_gram(problem, gram);
        // `Lᵀ(Lω − c) + ρ²ω`.
        dense::transpose_times(gradient, problem.linear(), &self.linear, true);
        let ridge2 = problem.ridge() * problem.ridge();
        dense::axpy(gradient, ridge2, omega);
        if !finite {
            return f64::NAN;
        }
        let ridge = problem.ridge();
        0.5 * (dense::dot(&self.values, &self.values)
            + dense::dot(&self.linear, &self.linear)
            + ridge * ridge * dense::dot(omega, omega))
    }

    /// `JᵀJ` (PDE, linear and ridge rows), row-major `N×N`.
    pub(crate) fn gram(&self) -> &[f64] {
        let n = self.n_basis();
        &self.normal[..n * n]
    }

    /// `Jᵀr` (PDE, linear and ridge rows), `[N]`.
    pub(crate) fn gradient(&self) -> &[f64] {
        &self.normal[self.normal.len() - self.n_basis()..]
    }

    /// `N`, from `normal.len() = N² + N`.
    fn n_basis(&self) -> usize {
        self.normal.len().isqrt()
    }

    /// `½‖r(ω)‖² − ½‖r(ω_new)‖²` with `self` at `omega` and `new` at `omega_new`,
    /// summed as `−½ Σ (r_new − r)(r_new + r)`: accurate to round-off relative
    /// to the *decrease*, not to the cost, so that the gain ratio stays
    /// meaningful down to steps of `ε·‖r‖/‖J‖` (subtracting the two costs would
    /// drown every step below `√ε` in noise).
    pub(crate) fn decrease_to(
        &self,
        new: &Self,
        ridge: f64,
        omega: &[f64],
        omega_new: &[f64],
    ) -> f64 {
        let part =
            |a: &[f64], b: &[f64]| -> f64 { a.iter().zip(b).map(|(x, y)| (y - x) * (y + x)).sum() };
        -0.5 * (part(&self.values, &new.values)
            + part(&self.linear, &new.linear)
            + ridge * ridge * part(omega, omega_new))
    }
}

/// `total = Σ_b partial_b` over blocks' partial products laid out
/// `[blocks, total.len()]`, in block order: blocks run on any thread, the sum is
/// always the same.
pub(crate) fn sum_blocks(partials: &[f64], total: &mut [f64]) {
    total.fill(0.0);
    for partial in partials.chunks_exact(total.len()) {
        dense::axpy(total, 1.0, partial);
    }
}

/// Adds the linear and ridge rows' `LᵀL + ρ²I` to the PDE rows' `JᵀJ`.
pub(crate) fn add_linear_and_ridge_gram(problem: &ExpertProblem, gram: &mut [f64]) {
    let n = problem.n_basis();
    let ridge2 = problem.ridge() * problem.ridge();
    for (i, (g, &lg)) in gram.iter_mut().zip(problem.linear_gram()).enumerate() {
        *g += lg;
        if i % (n + 1) == 0 {
            *g += ridge2;
        }
    }
}

/// The current and trial evaluations of a solve.
pub(crate) struct Workspace {
    /// At the current iterate.
    pub(crate) current: Evaluation,
    /// At the trial point of a step.
    pub(crate) trial: Evaluation,
}

impl Workspace {
    /// Buffers sized for `problem`.
    pub(crate) fn new(problem: &ExpertProblem) -> Self {
        Self {
            current: Evaluation::new(problem),
            trial: Evaluation::new(problem),
        }
    }

    /// Evaluates the current point (the start of a solve).
    pub(crate) fn evaluate_current<P: Pde>(
        &mut self,
        pde: &P,
        problem: &ExpertProblem,
        omega: &[f64],
    ) -> f64 {
        self.current.compute(pde, problem, omega)
    }

    /// Evaluates a trial point.
    pub(crate) fn evaluate_trial<P: Pde>(
        &mut self,
        pde: &P,
        problem: &ExpertProblem,
        omega: &[f64],
    ) -> f64 {
        self.trial.compute(pde, problem, omega)
    }

    /// Makes the trial point the current one.
    pub(crate) fn accept(&mut self) {
        std::mem::swap(&mut self.current, &mut self.trial);
    }
}

dense::vectorized_fn! {
    /// `jac[p·m + e] = Σ_j grads[p, e, j] · A_j[p]` for term rows `[P, d, N]` and
    /// gradients `[P, m, d]`, skipping exactly-zero `F_j`.
    pub(crate) fn jacobian_rows(jac: &mut [f64], term_rows: &[f64], grads: &[f64], d: usize, m: usize, n: usize) {
        for ((rows, grads), jac) in term_rows
            .chunks_exact(d * n)
            .zip(grads.chunks_exact(m * d))
            .zip(jac.chunks_exact_mut(m * n))
        {
            for (g, out) in grads.chunks_exact(d).zip(jac.chunks_exact_mut(n)) {
                out.fill(0.0);
                for (&gj, row) in g.iter().zip(rows.chunks_exact(n)) {
                    if gj != 0.0 {
                        dense::axpy(out, gj, row);
                    }
                }
            }
        }
    }
}
