//! The Gauss–Newton quantities of one problem at one `ω`: the cost `½‖r‖²`, the
//! Jacobian rows of the PDE part, the Gram matrix `JᵀJ` and the gradient `Jᵀr`.
//!
//! Why normal equations (and not a QR of `J`): `J` is `P×N` with `P ≈ 20 000` and
//! `N ≈ 16`; forming `JᵀJ` costs `P·N²` flops once per accepted step, a QR `2·P·N²`
//! and it would have to store all of `J` per step anyway, while every later solve
//! is an `N×N` Cholesky. The price is conditioning: `κ(JᵀJ) = κ(J)²`. It is
//! contained by (i) the ridge, which adds `ρ²I` and bounds the smallest eigenvalue
//! away from zero, (ii) the Levenberg–Marquardt damping `μI` in every step, and
//! (iii) the solver's guard: a Cholesky failure is treated as a rejected step
//! (more damping), and reported as [`crate::StopReason::Singular`] if damping
//! cannot rescue it.

use crate::dense;
use crate::pointwise;
use crate::{ExpertProblem, Pde};

/// The residuals of one `ω`: terms, PDE values and linear rows.
pub(crate) struct Residuals {
    /// `z = Aω + b`, `[P, d]`.
    pub(crate) z: Vec<f64>,
    /// `F(z)`, `[P, m]`.
    pub(crate) values: Vec<f64>,
    /// `Lω − c`, `[R]`.
    pub(crate) linear: Vec<f64>,
}

impl Residuals {
    fn new(problem: &ExpertProblem) -> Self {
        let size = problem.size();
        let p = problem.n_points();
        Self {
            z: vec![0.0; p * size.n_terms],
            values: vec![0.0; p * size.n_equations],
            linear: vec![0.0; problem.n_linear()],
        }
    }

    /// Evaluates every residual at `omega` and returns `½‖r(ω)‖²` (non-finite when
    /// any residual is).
    pub(crate) fn evaluate<P: Pde>(
        &mut self,
        pde: &P,
        problem: &ExpertProblem,
        omega: &[f64],
    ) -> f64 {
        problem.terms_at(omega, &mut self.z);
        pointwise::values(pde, problem.n_terms(), &self.z, &mut self.values);
        problem.linear_residual(omega, &mut self.linear);
        let ridge = problem.ridge();
        0.5 * (dense::dot(&self.values, &self.values)
            + dense::dot(&self.linear, &self.linear)
            + ridge * ridge * dense::dot(omega, omega))
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

/// Reusable buffers for evaluating one problem (allocated once per solve).
pub(crate) struct Workspace {
    /// Residuals at the current iterate.
    pub(crate) current: Residuals,
    /// Residuals at the trial point of a step.
    pub(crate) trial: Residuals,
    /// `∂F/∂z` at the current iterate, `[P, m, d]`.
    pub(crate) grads: Vec<f64>,
    /// Jacobian rows `Σ_j F_j A_j[p]`, `[P·m, N]`.
    pub(crate) jac: Vec<f64>,
}

impl Workspace {
    /// Buffers sized for `problem`.
    pub(crate) fn new(problem: &ExpertProblem) -> Self {
        let (p, size) = (problem.n_points(), problem.size());
        let (d, m, n) = (size.n_terms, size.n_equations, size.n_basis);
        Self {
            current: Residuals::new(problem),
            trial: Residuals::new(problem),
            grads: vec![0.0; p * m * d],
            jac: vec![0.0; p * m * n],
        }
    }

    /// Makes the trial point the current one.
    pub(crate) fn accept(&mut self) {
        std::mem::swap(&mut self.current, &mut self.trial);
    }

    /// Gradients of `F` at the current iterate and the Jacobian rows built from them.
    pub(crate) fn jacobian<P: Pde>(&mut self, pde: &P, problem: &ExpertProblem) {
        let current = &mut self.current;
        pointwise::gradients(
            pde,
            problem.n_terms(),
            &current.z,
            &mut current.values,
            &mut self.grads,
        );
        self.build_jacobian_rows(problem);
    }

    /// `jac[p·m + e] = Σ_j grads[p, e, j] · A_j[p]`, skipping exactly-zero `F_j`
    /// (terms that only linear rows use).
    pub(crate) fn build_jacobian_rows(&mut self, problem: &ExpertProblem) {
        let size = problem.size();
        jacobian_rows(
            &mut self.jac,
            problem.term_rows(),
            &self.grads,
            size.n_terms,
            size.n_equations,
            size.n_basis,
        );
    }

    /// `gram = JᵀJ` (PDE, linear and ridge rows) and `gradient = Jᵀr` at `omega`,
    /// from the current residuals and the last [`Workspace::jacobian`].
    pub(crate) fn normal_equations(
        &self,
        problem: &ExpertProblem,
        omega: &[f64],
        gram: &mut [f64],
        gradient: &mut [f64],
    ) {
        let n = problem.n_basis();
        dense::gram(gram, &self.jac, &self.jac, n, false);
        let ridge2 = problem.ridge() * problem.ridge();
        for (i, (g, &lg)) in gram.iter_mut().zip(problem.linear_gram()).enumerate() {
            *g += lg;
            if i % (n + 1) == 0 {
                *g += ridge2;
            }
        }
        dense::transpose_times(gradient, &self.jac, &self.current.values, false);
        dense::transpose_times(gradient, problem.linear(), &self.current.linear, true);
        for (g, &w) in gradient.iter_mut().zip(omega) {
            *g += ridge2 * w;
        }
    }
}

dense::vectorized_fn! {
    /// `jac[p·m + e] = Σ_j grads[p, e, j] · A_j[p]` for term rows `[P, d, N]` and
    /// gradients `[P, m, d]`, skipping exactly-zero `F_j`.
    fn jacobian_rows(jac: &mut [f64], term_rows: &[f64], grads: &[f64], d: usize, m: usize, n: usize) {
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
