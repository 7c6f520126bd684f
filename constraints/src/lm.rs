//! Levenberg–Marquardt in float64 for one expert's problem.
//!
//! **Step.** At `ω` with Gram matrix `JᵀJ` and gradient `g = Jᵀr` (see
//! [`crate::normal_equations`](self) for why normal equations), the step solves
//! `(JᵀJ + μI) Δ = −g` by Cholesky.
//!
//! **Damping** (Nielsen 1999; Madsen, Nielsen & Tingleff, *Methods for non-linear
//! least squares problems*, 2004): `μ₀ = τ·max diag(JᵀJ)` with `τ = 1e-4` by
//! default (Madsen's usual `1e-3` spends about three more iterations letting `μ`
//! decay on the diffusion–sorption experts, whose gain ratios stay near 1; measured
//! at the same final residuals). The gain ratio
//! `ϱ = (f(ω) − f(ω+Δ)) / (½Δᵀ(μΔ − g))` compares the actual decrease of
//! `f = ½‖r‖²` with the one the linear model predicts. If `ϱ > 0` the step is
//! accepted and `μ ← μ·max(⅓, 1 − (2ϱ − 1)³)`, `ν ← 2`; otherwise (also when
//! `f(ω+Δ)` is not finite, or the Cholesky fails) the step is rejected and
//! `μ ← μ·ν`, `ν ← 2ν`. Rejected steps count as iterations.
//!
//! **Stopping** (optimistix's Cauchy criterion, as the reference's
//! `optx.LevenbergMarquardt(rtol, atol)`): after an accepted step `Δ`, stop with
//! [`StopReason::Converged`] when `|f_old − f_new| ≤ atol + rtol·f_new` and a step
//! passes the step test `|Δ_i| ≤ atol + rtol·|ω_i|` for every `i` — either the
//! accepted step itself (the reference's test) or the undamped Gauss–Newton step
//! `−(JᵀJ)⁻¹Jᵀr` from the new `ω` (one extra `N×N` Cholesky). The second way
//! stops a solve whose model is exact as soon as nothing is left to do; the first
//! ends the walk along flat, ridge-held valleys of nonzero-residual problems,
//! where the Gauss–Newton model keeps proposing long steps the true cost does not
//! follow (measured: 65 → 36 iterations on such an expert, no change elsewhere).
//! When a step is rejected at a point whose Gauss–Newton step already passes the
//! step test, the solve also stops as converged: no progress above the tolerance
//! is left (this is how an exactly solved linear problem stops after its single
//! step). It also stops, converged, when the gradient is exactly zero.
//!
//! **Round-off regime.** Each residual is rounded at its own size, so a decrease
//! `f_old − f_new` below about `ε·f` cannot be measured, and near a nonzero-residual
//! minimum the cost test alone stalls at `‖ω − ω*‖ ~ √ε`. When a rejected step's
//! predicted decrease is below `64ε·f`, the undamped Gauss–Newton step is tried
//! instead and accepted if it lowers `‖Jᵀr‖`. If it does not, Newton's step with
//! the exact Hessian `JᵀJ + Σ_p r_p ∇²r_p` (that of [`crate::ift`]) is tried and
//! accepted if it at least halves `‖Jᵀr‖`; if neither does, the solve stops as
//! converged (nothing measurable is left). The Newton step matters on
//! nonzero-residual problems, where `JᵀJ` is not the Hessian: there the
//! Gauss–Newton step can raise `‖Jᵀr‖` while it is far above round-off, and
//! a solve stopped there would hand the backward pass a point that is not
//! stationary. Tight tolerances therefore reach round-off in `ω`, which the
//! implicit-function-theorem backward pass assumes (it differentiates
//! `Jᵀr = 0`) and finite-difference checks of it need.

use crate::dense::{self, SymmetricFactor};
use crate::ift::{HessianMode, Sensitivity};
use crate::normal_equations::Workspace;
use crate::{ConstraintError, ExpertProblem, LmStatus, Pde, StopReason};

/// Below `ROUND_OFF·f` a predicted decrease is lost in the rounding of the cost
/// `f` itself (each residual carries an error of `ε·|r_p|`, so `f_old − f_new` is
/// only known to about `ε·f`).
const ROUND_OFF: f64 = 64.0 * f64::EPSILON;

/// Where the iteration starts.
#[derive(Debug, Clone, PartialEq)]
pub enum InitialGuess {
    /// `ω₀ = 1` (the diffusion–sorption reference).
    Ones,
    /// `ω₀ = 0` (the Navier–Stokes reference).
    Zeros,
    /// A given vector (warm starts); its length must equal `N`.
    Given(Vec<f64>),
}

/// Levenberg–Marquardt settings. `Default` is the reference's
/// `rtol = atol = 1e-4`, 100 iterations and `ω₀ = 1`, with `τ = 1e-4` (see the
/// module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct LevenbergMarquardt {
    rtol: f64,
    atol: f64,
    max_iterations: usize,
    initial: InitialGuess,
    initial_damping: f64,
}

impl Default for LevenbergMarquardt {
    fn default() -> Self {
        Self {
            rtol: 1e-4,
            atol: 1e-4,
            max_iterations: 100,
            initial: InitialGuess::Ones,
            initial_damping: 1e-4,
        }
    }
}

/// The result of one solve.
#[derive(Debug, Clone, PartialEq)]
pub struct LmSolution {
    /// The weights `ω*` (the last accepted iterate).
    pub omega: Vec<f64>,
    /// How the solve went.
    pub status: LmStatus,
}

impl LevenbergMarquardt {
    /// Relative tolerance of the Cauchy stopping test (finite, ≥ 0).
    pub fn with_rtol(mut self, rtol: f64) -> Result<Self, ConstraintError> {
        self.rtol = non_negative("rtol", rtol)?;
        Ok(self)
    }

    /// Absolute tolerance of the Cauchy stopping test (finite, ≥ 0).
    pub fn with_atol(mut self, atol: f64) -> Result<Self, ConstraintError> {
        self.atol = non_negative("atol", atol)?;
        Ok(self)
    }

    /// Maximum number of iterations (≥ 1).
    pub fn with_max_iterations(mut self, max_iterations: usize) -> Result<Self, ConstraintError> {
        if max_iterations == 0 {
            return Err(ConstraintError::InvalidValue {
                what: "max_iterations",
                value: 0.0,
                reason: "must be at least 1",
            });
        }
        self.max_iterations = max_iterations;
        Ok(self)
    }

    /// The initial weights (a [`InitialGuess::Given`] vector must be finite).
    pub fn with_initial(mut self, initial: InitialGuess) -> Result<Self, ConstraintError> {
        if let InitialGuess::Given(w) = &initial
            && let Some(&bad) = w.iter().find(|x| !x.is_finite())
        {
            return Err(ConstraintError::InvalidValue {
                what: "initial ω",
                value: bad,
                reason: "must be finite",
            });
        }
        self.initial = initial;
        Ok(self)
    }

    /// `τ` in `μ₀ = τ·max diag(JᵀJ)` (finite, ≥ 0; 0 makes the first step a pure
    /// Gauss–Newton step).
    pub fn with_initial_damping(mut self, tau: f64) -> Result<Self, ConstraintError> {
        self.initial_damping = non_negative("initial damping τ", tau)?;
        Ok(self)
    }

    /// Relative tolerance.
    pub fn rtol(&self) -> f64 {
        self.rtol
    }

    /// Absolute tolerance.
    pub fn atol(&self) -> f64 {
        self.atol
    }

    /// Iteration limit.
    pub fn max_iterations(&self) -> usize {
        self.max_iterations
    }

    /// Initial guess.
    pub fn initial(&self) -> &InitialGuess {
        &self.initial
    }

    /// Initial damping factor `τ`.
    pub fn initial_damping(&self) -> f64 {
        self.initial_damping
    }

    /// Solves `min ½‖r(ω)‖²` for `problem` with the residual of `pde`.
    ///
    /// Shape errors (a `Given` guess of the wrong length, a PDE with another number
    /// of equations) are `Err`; numerical trouble is the returned status.
    pub fn solve<P: Pde>(
        &self,
        pde: &P,
        problem: &ExpertProblem,
    ) -> Result<LmSolution, ConstraintError> {
        problem.check_pde(pde)?;
        let n = problem.n_basis();
        let mut omega = match &self.initial {
            InitialGuess::Ones => vec![1.0; n],
            InitialGuess::Zeros => vec![0.0; n],
            InitialGuess::Given(w) => {
                problem.check_omega(w)?;
                w.clone()
            }
        };
        let mut status = LmStatus {
            reason: StopReason::NonFinite,
            iterations: 0,
            initial_residual: f64::NAN,
            final_residual: f64::NAN,
            gradient_norm: f64::NAN,
        };
        let mut ws = Workspace::new(problem);
        let mut cost = ws.evaluate_current(pde, problem, &omega);
        status.initial_residual = (2.0 * cost).sqrt();
        status.final_residual = status.initial_residual;
        if !cost.is_finite() {
            return Ok(LmSolution { omega, status });
        }
        if !(ws.current.gram().iter().all(|x| x.is_finite())
            && ws.current.gradient().iter().all(|x| x.is_finite()))
        {
            return Ok(LmSolution { omega, status });
        }
        let max_diag = (0..n)
            .map(|i| ws.current.gram()[i * (n + 1)])
            .fold(0.0, f64::max);
        // The floor used when damping must grow from zero (τ = 0 or a failed
        // Cholesky at μ = 0).
        let mu_floor = f64::EPSILON * max_diag.max(f64::MIN_POSITIVE);
        let mut mu = self.initial_damping * max_diag;
        let mut nu = 2.0;
        let mut reason = StopReason::MaxIterations;
        let mut damped = vec![0.0; n * n];
        let mut trial = vec![0.0; n];
        let mut settled =
            self.gauss_newton_step_is_small(ws.current.gram(), ws.current.gradient(), &omega);
        while status.iterations < self.max_iterations {
            if ws.current.gradient().iter().all(|&g| g == 0.0) {
                reason = StopReason::Converged;
                break;
            }
            status.iterations += 1;
            damped.copy_from_slice(ws.current.gram());
            for i in 0..n {
                damped[i * (n + 1)] += mu;
            }
            let Some(factor) = SymmetricFactor::cholesky(&damped, n) else {
                if !mu.is_finite() || mu > 1e300 {
                    reason = StopReason::Singular;
                    break;
                }
                (mu, nu) = ((mu * nu).max(mu_floor), nu * 2.0);
                continue;
            };
            let minus_g: Vec<f64> = ws.current.gradient().iter().map(|g| -g).collect();
            let step = dense::solve_with(&factor, &minus_g);
            for ((t, w), s) in trial.iter_mut().zip(&omega).zip(&step) {
                *t = w + s;
            }
            let predicted = 0.5
                * step
                    .iter()
                    .zip(ws.current.gradient())
                    .map(|(s, g)| s * (mu * s - g))
                    .sum::<f64>();
            let new_cost = ws.evaluate_trial(pde, problem, &trial);
            let decrease = ws
                .current
                .decrease_to(&ws.trial, problem.ridge(), &omega, &trial);
            let gain = decrease / predicted;
            if new_cost.is_finite() && gain > 0.0 {
                omega.copy_from_slice(&trial);
                cost = new_cost;
                ws.accept();
                mu *= (1.0 - (2.0 * gain - 1.0).powi(3)).max(1.0 / 3.0);
                nu = 2.0;
                settled = self.gauss_newton_step_is_small(
                    ws.current.gram(),
                    ws.current.gradient(),
                    &omega,
                );
                if (settled || self.step_is_small(&step, &omega))
                    && decrease.abs() <= self.atol + self.rtol * new_cost
                {
                    reason = StopReason::Converged;
                    break;
                }
            } else if settled {
                reason = StopReason::Converged;
                break;
            } else if predicted <= ROUND_OFF * cost {
                // The cost cannot resolve steps this small: judge the undamped
                // Gauss–Newton step by the gradient instead, or stop at round-off.
                let Some(factor) = SymmetricFactor::cholesky(ws.current.gram(), n) else {
                    reason = StopReason::Converged;
                    break;
                };
                let step = dense::solve_with(&factor, &minus_g);
                for ((t, w), s) in trial.iter_mut().zip(&omega).zip(&step) {
                    *t = w + s;
                }
                let mut new_cost = ws.evaluate_trial(pde, problem, &trial);
                let norm = |g: &[f64]| dense::dot(g, g);
                if !(new_cost.is_finite()
                    && norm(ws.trial.gradient()) < norm(ws.current.gradient()))
                {
                    // On a nonzero-residual problem JᵀJ is not the Hessian, and
                    // the Gauss–Newton step can raise ‖Jᵀr‖ while it is still far
                    // above its round-off floor: try Newton's step with the exact
                    // Hessian, which must at least halve ‖Jᵀr‖ (it converges
                    // quadratically; at the floor it only shuffles round-off).
                    let newton = Sensitivity::new(pde, problem, &omega, HessianMode::Exact)
                        .and_then(|s| s.adjoint(&minus_g));
                    let Ok(step) = newton else {
                        reason = StopReason::Converged;
                        break;
                    };
                    for ((t, w), s) in trial.iter_mut().zip(&omega).zip(&step) {
                        *t = w + s;
                    }
                    new_cost = ws.evaluate_trial(pde, problem, &trial);
                    if !(new_cost.is_finite()
                        && norm(ws.trial.gradient()) < 0.25 * norm(ws.current.gradient()))
                    {
                        reason = StopReason::Converged;
                        break;
                    }
                }
                ws.accept();
                omega.copy_from_slice(&trial);
                cost = new_cost;
                settled = self.gauss_newton_step_is_small(
                    ws.current.gram(),
                    ws.current.gradient(),
                    &omega,
                );
            } else {
                (mu, nu) = ((mu * nu).max(mu_floor), nu * 2.0);
            }
        }
        status.reason = reason;
        status.final_residual = (2.0 * cost).sqrt();
        status.gradient_norm = dense::dot(ws.current.gradient(), ws.current.gradient()).sqrt();
        Ok(LmSolution { omega, status })
    }

    /// Whether `step` from `omega` passes the step test
    /// `|Δ_i| ≤ atol + rtol·|ω_i|` for every `i`.
    fn step_is_small(&self, step: &[f64], omega: &[f64]) -> bool {
        step.iter()
            .zip(omega)
            .all(|(s, w)| s.abs() <= self.atol + self.rtol * w.abs())
    }

    /// Whether the undamped Gauss–Newton step `−(JᵀJ)⁻¹g` from `omega` passes the
    /// step test: unlike a damped step, it is short only when `ω` has converged
    /// (or `JᵀJ` is not positive definite, then it never passes).
    fn gauss_newton_step_is_small(&self, gram: &[f64], gradient: &[f64], omega: &[f64]) -> bool {
        let Some(factor) = SymmetricFactor::cholesky(gram, omega.len()) else {
            return false;
        };
        self.step_is_small(&dense::solve_with(&factor, gradient), omega)
    }
}

fn non_negative(what: &'static str, value: f64) -> Result<f64, ConstraintError> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(ConstraintError::InvalidValue {
            what,
            value,
            reason: "must be finite and non-negative",
        })
    }
}
