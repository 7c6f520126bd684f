//! The backward pass of one expert by the implicit function theorem — the only
//! place that knows it.
//!
//! At the solution, `G(ω*, A) = Jᵀr = 0`. For an upstream gradient `ω̄ = ∂L/∂ω*`
//! solve `H λ = ω̄` with `H = ∂G/∂ω`, then every problem input `θ` gets
//! `θ̄ = −∂/∂θ [λᵀ G(ω*, θ)]` at fixed `ω*, λ`. Written out (`F_j = ∂F/∂z_j`,
//! `F_jl = ∂²F/∂z_j∂z_l`, `y_j = A_j[p]·λ`, sums over equations for systems):
//!
//! ```text
//! H     = Σ_p [∇F ∇Fᵀ + F Σ_jl F_jl A_j A_lᵀ] + LᵀL + ρ²I      (exact)
//! a_j   = F_j Σ_l F_l y_l + F Σ_l F_jl y_l
//! Ā_j[p] = −(a_j ω* + F F_j λ)          b̄_j[p] = −a_j
//! L̄     = −((Lω* − c) λᵀ + (Lλ) ω*ᵀ)    c̄     = +Lλ
//! ```
//!
//! [`HessianMode::GaussNewton`] drops the curvature term (`H = JᵀJ`); that is an
//! approximation of the true derivative (exact only for zero-residual problems),
//! offered because it is cheaper and always positive semi-definite.
//!
//! *Factor once, solve many*: [`Sensitivity::new`] evaluates the pointwise
//! derivatives and factors `H` once at `ω*`; each [`Sensitivity::gradient`] is
//! then one `N×N` triangular solve plus one pass over the rows.

use rayon::prelude::*;

use crate::dense::{self, SymmetricFactor};
use crate::normal_equations::{BLOCK, add_linear_and_ridge_gram, jacobian_rows, sum_blocks};
use crate::pointwise;
use crate::{ConstraintError, ExpertProblem, Pde};

/// Which `H` the adjoint solve uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HessianMode {
    /// `JᵀJ + Σ_p r_p ∇²r_p`: the exact derivative of `Jᵀr` (the default).
    #[default]
    Exact,
    /// `JᵀJ` only: cheaper, positive semi-definite, not the exact derivative.
    GaussNewton,
}

/// Gradients with respect to every input of an [`ExpertProblem`], in its layout.
#[derive(Debug, Clone, PartialEq)]
pub struct ProblemGradient {
    /// `Ā_j[p]`, `[P, d, N]`.
    pub term_rows: Vec<f64>,
    /// `b̄_j[p]`, `[P, d]`.
    pub offsets: Vec<f64>,
    /// `L̄`, `[R, N]`.
    pub linear: Vec<f64>,
    /// `c̄`, `[R]`.
    pub linear_rhs: Vec<f64>,
}

/// One expert's linearisation at `ω*` with `H` factored, ready for any number of
/// adjoint solves.
pub struct Sensitivity {
    omega: Vec<f64>,
    values: Vec<f64>,
    grads: Vec<f64>,
    hessians: Vec<f64>,
    linear_residual: Vec<f64>,
    hessian: Vec<f64>,
    factor: SymmetricFactor,
}

impl Sensitivity {
    /// Evaluates `F, ∇F, ∇²F` at every point of `problem` at `omega` and factors
    /// `H` (Cholesky; full-pivot LU if `H` is not positive definite).
    ///
    /// Errors: shape mismatches, non-finite problem data or `ω`
    /// ([`ConstraintError::NonFinite`]).
    pub fn new<P: Pde>(
        pde: &P,
        problem: &ExpertProblem,
        omega: &[f64],
        mode: HessianMode,
    ) -> Result<Self, ConstraintError> {
        problem.check_pde(pde)?;
        problem.check_omega(omega)?;
        if !omega.iter().all(|w| w.is_finite()) {
            return Err(ConstraintError::NonFinite {
                what: "expert problem or ω* for the backward pass",
            });
        }
        let size = problem.size();
        let (d, m, n) = (size.n_terms, size.n_equations, size.n_basis);
        let p = problem.n_points();
        let (mut values, mut grads) = (vec![0.0; p * m], vec![0.0; p * m * d]);
        let mut hessians = vec![0.0; p * m * d * d];
        // One pass over the rows in blocks, in parallel as the solver's
        // evaluations: the pointwise derivatives of every point are kept for the
        // adjoints, a block's Jacobian and curvature rows only while its part of
        // `H` forms; the parts are summed in block order.
        let mut partials = vec![0.0; p.div_ceil(BLOCK) * n * n];
        let finite = problem
            .term_rows()
            .par_chunks(BLOCK * d * n)
            .zip(problem.offsets().par_chunks(BLOCK * d))
            .zip(values.par_chunks_mut(BLOCK * m))
            .zip(grads.par_chunks_mut(BLOCK * m * d))
            .zip(hessians.par_chunks_mut(BLOCK * m * d * d))
            .zip(partials.par_chunks_mut(n * n))
            .enumerate()
            .map_init(
                || {
                    (
                        vec![0.0; BLOCK * d],
                        vec![0.0; BLOCK * m * n],
                        vec![0.0; BLOCK * d * n],
                    )
                },
                |(z, jac, curvature),
                 (block, (((((rows, offsets), values), grads), hessians), part))| {
                    let points = offsets.len() / d;
                    let coords = problem.coordinates(block * BLOCK, points);
                    let z = &mut z[..points * d];
                    dense::rows_dot(z, rows, omega, offsets, 1.0);
                    // As in the solver: a non-finite entry of the problem shows
                    // in its `z`.
                    if !z.iter().all(|x| x.is_finite()) {
                        return false;
                    }
                    pointwise::hessians(pde, d, z, coords, values, grads, hessians);
                    let jac = &mut jac[..points * m * n];
                    jacobian_rows(jac, rows, grads, d, m, n);
                    dense::gram(part, jac, jac, n, false);
                    if mode == HessianMode::Exact {
                        let curvature = &mut curvature[..points * d * n];
                        curvature_rows(curvature, rows, values, hessians, d, m, n);
                        dense::gram(part, rows, curvature, n, true);
                    }
                    true
                },
            )
            .reduce(|| true, |a, b| a && b);
        if !finite {
            return Err(ConstraintError::NonFinite {
                what: "expert problem for the backward pass",
            });
        }
        let mut hessian = vec![0.0; n * n];
        sum_blocks(&partials, &mut hessian);
        add_linear_and_ridge_gram(problem, &mut hessian);
        let mut linear_residual = vec![0.0; problem.n_linear()];
        problem.linear_residual(omega, &mut linear_residual);
        if mode == HessianMode::Exact {
            symmetrise(&mut hessian, n);
        }
        if !hessian.iter().all(|h| h.is_finite()) {
            return Err(ConstraintError::NonFinite {
                what: "Hessian at ω*",
            });
        }
        let factor = SymmetricFactor::factor(&hessian, n);
        Ok(Self {
            omega: omega.to_vec(),
            values,
            grads,
            hessians,
            linear_residual,
            hessian,
            factor,
        })
    }

    /// `H` as used (row-major `N×N`).
    pub fn hessian(&self) -> &[f64] {
        &self.hessian
    }

    /// `λ = H⁻¹ ω̄`.
    ///
    /// Errors: wrong length, non-finite `ω̄`, or a non-finite `λ`
    /// ([`ConstraintError::Singular`]: `H` is singular in floating point).
    pub fn adjoint(&self, omega_bar: &[f64]) -> Result<Vec<f64>, ConstraintError> {
        if omega_bar.len() != self.omega.len() {
            return Err(ConstraintError::ShapeMismatch {
                what: "upstream gradient ω̄",
                expected: vec![self.omega.len()],
                got: vec![omega_bar.len()],
            });
        }
        if !omega_bar.iter().all(|x| x.is_finite()) {
            return Err(ConstraintError::NonFinite {
                what: "upstream gradient ω̄",
            });
        }
        let lambda = self.factor.solve(omega_bar);
        if !lambda.iter().all(|x| x.is_finite()) {
            return Err(ConstraintError::Singular {
                what: "IFT Hessian",
            });
        }
        Ok(lambda)
    }

    /// The gradients of `L` with respect to every input of `problem` (the same
    /// problem this sensitivity was built from), given `ω̄ = ∂L/∂ω*`, in the
    /// problem's layout ([`RowGradient::to_dense`] of [`Sensitivity::row_gradient`]).
    pub fn gradient(
        &self,
        problem: &ExpertProblem,
        omega_bar: &[f64],
    ) -> Result<ProblemGradient, ConstraintError> {
        Ok(self.row_gradient(problem, omega_bar)?.to_dense())
    }

    /// The same gradients in compact form: every row's gradient is a combination
    /// of `ω*` and `λ`, so two numbers per row carry it (see [`RowGradient`]).
    pub fn row_gradient(
        &self,
        problem: &ExpertProblem,
        omega_bar: &[f64],
    ) -> Result<RowGradient, ConstraintError> {
        let lambda = self.adjoint(omega_bar)?;
        let size = problem.size();
        let (d, m, n) = (size.n_terms, size.n_equations, size.n_basis);
        let mut term_omega = vec![0.0; problem.offsets().len()];
        let mut term_lambda = vec![0.0; problem.offsets().len()];
        // Blocks in parallel (as the forward): every point writes only its own
        // coefficients.
        problem
            .term_rows()
            .par_chunks(BLOCK * d * n)
            .zip(term_omega.par_chunks_mut(BLOCK * d))
            .zip(term_lambda.par_chunks_mut(BLOCK * d))
            .zip(self.values.par_chunks(BLOCK * m))
            .zip(self.grads.par_chunks(BLOCK * m * d))
            .zip(self.hessians.par_chunks(BLOCK * m * d * d))
            .for_each(|(((((rows, a), c), values), grads), hessians)| {
                let mut y = [0.0; pointwise::MAX_TERMS];
                for (p, ((rows, a), c)) in rows
                    .chunks_exact(d * n)
                    .zip(a.chunks_exact_mut(d))
                    .zip(c.chunks_exact_mut(d))
                    .enumerate()
                {
                    for (yj, row) in y.iter_mut().zip(rows.chunks_exact(n)) {
                        *yj = dense::dot(row, &lambda);
                    }
                    // a_j = Σ_e F_j Σ_l F_l y_l + F Σ_l F_jl y_l, c_j = Σ_e F F_j;
                    // Ā_j = −(a_j ω* + c_j λ).
                    for e in 0..m {
                        let q = p * m + e;
                        let f = values[q];
                        let g = &grads[q * d..(q + 1) * d];
                        let h = &hessians[q * d * d..(q + 1) * d * d];
                        let s = dense::dot(g, &y[..d]);
                        for j in 0..d {
                            let t = dense::dot(&h[j * d..(j + 1) * d], &y[..d]);
                            a[j] -= g[j] * s + f * t;
                            c[j] -= f * g[j];
                        }
                    }
                }
            });
        // L̄_i = −(r_i λ + (Lλ)_i ω*).
        let mut linear_omega = vec![0.0; problem.n_linear()];
        let mut linear_lambda = vec![0.0; problem.n_linear()];
        for (((row, &r), lo), ll) in problem
            .linear()
            .chunks_exact(n)
            .zip(&self.linear_residual)
            .zip(&mut linear_omega)
            .zip(&mut linear_lambda)
        {
            *lo = -dense::dot(row, &lambda);
            *ll = -r;
        }
        Ok(RowGradient {
            omega: self.omega.clone(),
            lambda,
            term_omega,
            term_lambda,
            linear_omega,
            linear_lambda,
        })
    }
}

/// [`ProblemGradient`] in compact form. At fixed `ω*` and `λ = H⁻¹ω̄`, the
/// gradient of every term row and every linear row is a combination of the same
/// two vectors:
///
/// ```text
/// Ā_j[p] = term_omega[p, j]·ω* + term_lambda[p, j]·λ     b̄_j[p] = term_omega[p, j]
/// L̄_i    = linear_omega[i]·ω*  + linear_lambda[i]·λ      c̄_i    = −linear_omega[i]
/// ```
///
/// Why it matters: the constraint layer maps row gradients back to the basis
/// through the term operators, which act on every basis channel alike. In this
/// form it pulls back two scalar fields per expert instead of `N` channels, and
/// never materialises the `[P, d, N]` gradient.
#[derive(Debug, Clone, PartialEq)]
pub struct RowGradient {
    /// `ω*`, `[N]`.
    pub omega: Vec<f64>,
    /// `λ = H⁻¹ω̄`, `[N]`.
    pub lambda: Vec<f64>,
    /// Coefficients of `ω*` in the term-row gradients, `[P, d]`.
    pub term_omega: Vec<f64>,
    /// Coefficients of `λ` in the term-row gradients, `[P, d]`.
    pub term_lambda: Vec<f64>,
    /// Coefficients of `ω*` in the linear-row gradients, `[R]`.
    pub linear_omega: Vec<f64>,
    /// Coefficients of `λ` in the linear-row gradients, `[R]`.
    pub linear_lambda: Vec<f64>,
}

impl RowGradient {
    /// The gradient in the problem's own layout.
    pub fn to_dense(&self) -> ProblemGradient {
        let expand = |c_omega: &[f64], c_lambda: &[f64]| -> Vec<f64> {
            c_omega
                .iter()
                .zip(c_lambda)
                .flat_map(|(&a, &c)| {
                    self.omega
                        .iter()
                        .zip(&self.lambda)
                        .map(move |(w, l)| a * w + c * l)
                })
                .collect()
        };
        ProblemGradient {
            term_rows: expand(&self.term_omega, &self.term_lambda),
            offsets: self.term_omega.clone(),
            linear: expand(&self.linear_omega, &self.linear_lambda),
            linear_rhs: self.linear_omega.iter().map(|x| -x).collect(),
        }
    }
}

/// `W[p, j] = Σ_e F_e Σ_l F_e,jl A_l[p]`, `[P, d, N]` for the term rows `[P, d, N]`
/// of some points, so that their curvature part of `H` is `Σ_p Σ_j A_j[p] W[p, j]ᵀ`
/// (one Gram product of two `(P·d)×N` blocks).
fn curvature_rows(
    w: &mut [f64],
    term_rows: &[f64],
    values: &[f64],
    hessians: &[f64],
    d: usize,
    m: usize,
    n: usize,
) {
    for (p, (rows, out)) in term_rows
        .chunks_exact(d * n)
        .zip(w.chunks_exact_mut(d * n))
        .enumerate()
    {
        out.fill(0.0);
        for e in 0..m {
            let q = p * m + e;
            let f = values[q];
            let h = &hessians[q * d * d..(q + 1) * d * d];
            for (j, out_j) in out.chunks_exact_mut(n).enumerate() {
                for (l, row) in rows.chunks_exact(n).enumerate() {
                    let coeff = f * h[j * d + l];
                    if coeff != 0.0 {
                        dense::axpy(out_j, coeff, row);
                    }
                }
            }
        }
    }
}

/// Averages `h` with its transpose (the Gram product of two different factors is
/// symmetric only up to rounding).
fn symmetrise(h: &mut [f64], n: usize) {
    for i in 0..n {
        for j in 0..i {
            let s = 0.5 * (h[i * n + j] + h[j * n + i]);
            h[i * n + j] = s;
            h[j * n + i] = s;
        }
    }
}
