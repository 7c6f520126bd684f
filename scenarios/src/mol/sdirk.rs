//! Adaptive implicit time stepping for stiff semi-discrete systems.
//!
//! **Method.** The L-stable, stiffly accurate 5-stage SDIRK method of order 4
//! with an embedded order-3 solution (Hairer & Wanner, *Solving Ordinary
//! Differential Equations II*, 2nd ed., §IV.6, Table 6.5, γ = 1/4). Why this
//! one: L-stability damps the stiff diffusion modes of a fine grid in one step
//! (no step-size limit from `h ≲ dx²`), every stage solves a system with the
//! same matrix `I − hγJ`, so one sparse LU per step serves all five stages and
//! the error estimate, and it is a one-step method, so output times are hit
//! exactly and rejected steps cost nothing to restart (unlike BDF's history).
//!
//! **Per step.** `J ≈ ∂f/∂u` as the system's operator where it offers one
//! ([`MolSystem::jacobian_operator`]: a 2-D spectral discretisation or a
//! long 1-D line), else assembled by the system where it can
//! ([`MolSystem::jacobian`]: a short 1-D spectral line) and otherwise by
//! coloured finite differences (`jacobian.rs`), once per accepted state; a rejected step reuses it
//! (`linearisation.rs`). An operator, or a Jacobian whose pattern has more
//! than `JACOBIAN_CHEAP_COLOURS` = 10 colours (`linearisation.rs`) (a spectral operator couples a
//! whole line: by differences one evaluation per point, assembled one
//! pointwise solve per term at every point, which still made the KdV test
//! data twice as slow when recomputed at every step), is also kept for the next step when the
//! accepted step's Newton iterations contracted by `JACOBIAN_KEEP_RATE` = 1e-5 or
//! better (Hairer–Wanner's rule in RADAU5, §IV.8, with a stricter rate: at
//! 1e-3 the Fisher–KPP test lost its tolerance proportionality below 1e-7),
//! and a Newton failure with a kept Jacobian recomputes it before cutting
//! the step. `I − hγJ` factorised
//! (`stage_matrix.rs`: sparse LU with the symbolic analysis done once, or a
//! dense LU for a mostly full pattern) or, for an operator, solved by
//! preconditioned GMRES (`gmres.rs`), each stage solved
//! by simplified Newton with
//! Hairer–Wanner's convergence-rate test, the stage derivatives recovered as
//! `k_i = (Z_i − base_i)/(hγ)` (no extra evaluations, no amplified round-off).
//!
//! **Error control.** `err = (I − hγJ)⁻¹ h Σ (b_i − b̂_i) k_i` (the filtered
//! estimate Hairer–Wanner recommend for stiff problems, §IV.8), measured in the
//! RMS norm weighted by `atol + rtol·max(|u₀|, |u₁|)`; accept when ≤ 1, and
//! the next step is `h · clamp(0.9 err^{−1/4}, 0.2, 5)`. A Newton failure cuts
//! the step by 4. Typed failures: [`MolError::BlowUp`] (non-finite or above
//! [`MolOptions::max_norm`]), [`MolError::StepSizeUnderflow`],
//! [`MolError::NewtonFailure`], [`MolError::TooManySteps`].
//!
//! With [`MolOptions::fixed_step`] the error test is skipped (for measuring
//! the order in time); Newton still iterates to the tolerance.

use faer::Mat;

use crate::mol::integrator::State;
use crate::mol::linearisation::Linearisation;
use crate::mol::step_control::{StepSize, checked, weighted_norm};
use crate::mol::{MolError, MolOptions, MolStats, MolSystem};

/// The order of the embedded error estimate (the step scales with its
/// `−1/(q+1)` power).
const ERROR_ORDER: u32 = 3;
/// γ, the diagonal of the tableau.
const GAMMA: f64 = 0.25;
/// The strictly lower part of `A` (row `i` has `i` entries).
const A: [&[f64]; 5] = [
    &[],
    &[0.5],
    &[17.0 / 50.0, -1.0 / 25.0],
    &[371.0 / 1360.0, -137.0 / 2720.0, 15.0 / 544.0],
    &[25.0 / 24.0, -49.0 / 48.0, 125.0 / 16.0, -85.0 / 12.0],
];
/// Stage times `c_i = Σ_j a_ij + γ`.
const C: [f64; 5] = [0.25, 0.75, 11.0 / 20.0, 0.5, 1.0];
/// `b − b̂`: the order-4 weights (last row of `A`, then γ) minus the embedded
/// order-3 weights `(59/48, −17/96, 225/32, −85/12, 0)`.
const ERROR_WEIGHTS: [f64; 5] = [
    25.0 / 24.0 - 59.0 / 48.0,
    -49.0 / 48.0 + 17.0 / 96.0,
    125.0 / 16.0 - 225.0 / 32.0,
    0.0,
    GAMMA,
];
/// Newton stops when the estimated remaining error is below this fraction of
/// the tolerance (Hairer–Wanner's κ).
const NEWTON_KAPPA: f64 = 0.03;
/// Newton iterations per stage before the step is cut.
const NEWTON_MAX_ITERS: usize = 10;
/// Consecutive Newton failures before giving up.
const NEWTON_MAX_FAILURES: usize = 20;
/// The next step keeps an expensive Jacobian when the accepted step's Newton
/// iterations contracted at least this fast (the largest rate of its stages).
const JACOBIAN_KEEP_RATE: f64 = 1e-5;

/// The implicit integrator's state between steps.
pub(crate) struct Sdirk<'s, S: MolSystem + ?Sized> {
    system: &'s S,
    options: MolOptions,
    /// `J`, kept between steps or not, and how `I − hγJ` is solved.
    linear: Linearisation<'s>,
    /// `(t, u, f(t, u))`; `f` is kept from the last stage of the previous
    /// step (stiffly accurate).
    pub state: State,
    /// Whether the Jacobian `linear` holds was taken at the current `(t, u)`
    /// (a rejected step retries with it, and a step after a fast-converging
    /// one keeps it).
    jacobian_current: bool,
    step: StepSize,
    pub stats: MolStats,
}

/// Why one step attempt did not produce a new state.
enum StepOutcome {
    Accepted {
        error: f64,
        u: Vec<f64>,
        f: Vec<f64>,
        /// The largest contraction rate of the stages' Newton iterations.
        rate: f64,
    },
    Rejected {
        error: f64,
    },
    NewtonFailed,
}

impl<'s, S: MolSystem + ?Sized> Sdirk<'s, S> {
    /// Starts from `state` with the step `h`, adding to `stats` (an
    /// integration that began with the explicit method carries its own).
    pub fn new(
        system: &'s S,
        options: &MolOptions,
        state: State,
        h: f64,
        mut stats: MolStats,
    ) -> Result<Self, MolError> {
        let linear = Linearisation::new(system, state.t, &state.u, &mut stats)?;
        Ok(Self {
            system,
            options: *options,
            jacobian_current: linear.has_jacobian(),
            linear,
            state,
            step: StepSize::new(h, ERROR_ORDER, options.fixed_step.is_some()),
            stats,
        })
    }

    /// Steps until the state is at `target`.
    pub fn advance_to(&mut self, target: f64) -> Result<(), MolError> {
        let mut newton_failures = 0;
        while self.state.t < target {
            let trial = self
                .step
                .propose(self.state.t, target, self.stats.steps, &self.options)?;
            let h = trial.h;
            match self.attempt(h)? {
                StepOutcome::Accepted { error, u, f, rate } => {
                    self.state.t = if trial.lands {
                        target
                    } else {
                        self.state.t + h
                    };
                    self.state.u = u;
                    self.state.f = f;
                    if rate > JACOBIAN_KEEP_RATE || !self.linear.is_expensive() {
                        self.linear.forget();
                    }
                    self.jacobian_current = false;
                    self.stats.steps += 1;
                    checked(self.state.t, &self.state.u, self.options.max_norm)?;
                    newton_failures = 0;
                    self.step.accept(trial, error);
                }
                StepOutcome::Rejected { error } => {
                    self.stats.rejected += 1;
                    self.step.reject(h, error);
                }
                StepOutcome::NewtonFailed
                    if self.linear.has_jacobian() && !self.jacobian_current =>
                {
                    // A kept Jacobian may be what failed: retry with a fresh one.
                    self.stats.newton_failures += 1;
                    self.linear.forget();
                }
                StepOutcome::NewtonFailed => {
                    self.stats.newton_failures += 1;
                    newton_failures += 1;
                    if newton_failures > NEWTON_MAX_FAILURES || self.options.fixed_step.is_some() {
                        return Err(MolError::NewtonFailure {
                            t: self.state.t,
                            h,
                            failures: newton_failures,
                        });
                    }
                    self.step.cut(h);
                }
            }
        }
        Ok(())
    }

    /// One SDIRK step of size `h` from `(t, u)`.
    fn attempt(&mut self, h: f64) -> Result<StepOutcome, MolError> {
        let n = self.state.u.len();
        let hg = h * GAMMA;
        let (lu, fresh) = self.linear.stage_matrix(
            self.system,
            (self.state.t, &self.state.u, &self.state.f),
            hg,
            &mut self.stats,
        )?;
        self.jacobian_current |= fresh;
        let mut k: Vec<Vec<f64>> = Vec::with_capacity(5);
        let mut z = self.state.u.clone();
        let mut f = vec![0.0; n];
        let mut delta = Mat::<f64>::zeros(n, 1);
        let mut max_rate = 0.0_f64;
        for (i, row) in A.iter().enumerate() {
            let mut base = self.state.u.clone();
            for (a, kj) in row.iter().zip(&k) {
                for (b, v) in base.iter_mut().zip(kj) {
                    *b += h * a * v;
                }
            }
            // Predictor: the previous stage's slope.
            let slope = k.last().unwrap_or(&self.state.f);
            for ((zi, b), s) in z.iter_mut().zip(&base).zip(slope) {
                *zi = b + hg * s;
            }
            let t_stage = self.state.t + C[i] * h;
            let mut previous = f64::INFINITY;
            let mut converged = false;
            for iteration in 0..NEWTON_MAX_ITERS {
                self.system.rhs(t_stage, &z, &mut f)?;
                self.stats.rhs_evaluations += 1;
                self.stats.newton_iterations += 1;
                for r in 0..n {
                    delta[(r, 0)] = -(z[r] - base[r] - hg * f[r]);
                }
                self.stats.linear_iterations += lu.solve_in_place(delta.as_mut());
                let update: Vec<f64> = (0..n).map(|r| delta[(r, 0)]).collect();
                let norm = weighted_norm(&update, &z, &self.options);
                if !norm.is_finite() {
                    return Ok(StepOutcome::NewtonFailed);
                }
                for (zi, d) in z.iter_mut().zip(&update) {
                    *zi += d;
                }
                let rate = norm / previous;
                if iteration > 0 && rate >= 1.0 {
                    return Ok(StepOutcome::NewtonFailed);
                }
                if iteration > 0 {
                    max_rate = max_rate.max(rate);
                }
                let remaining = if iteration == 0 {
                    norm
                } else {
                    rate / (1.0 - rate) * norm
                };
                if remaining <= NEWTON_KAPPA || norm <= 1e-12 {
                    converged = true;
                    break;
                }
                previous = norm;
            }
            if !converged {
                return Ok(StepOutcome::NewtonFailed);
            }
            k.push(z.iter().zip(&base).map(|(zi, b)| (zi - b) / hg).collect());
        }
        // Stiffly accurate: the new state is the last stage.
        let u_new = z;
        if u_new.iter().any(|v| !v.is_finite()) {
            return Ok(StepOutcome::NewtonFailed);
        }
        self.system.rhs(self.state.t + h, &u_new, &mut f)?;
        self.stats.rhs_evaluations += 1;
        if self.options.fixed_step.is_some() {
            return Ok(StepOutcome::Accepted {
                error: 0.0,
                u: u_new,
                f,
                rate: max_rate,
            });
        }
        let mut err = Mat::<f64>::zeros(n, 1);
        for (w, ki) in ERROR_WEIGHTS.iter().zip(&k) {
            for (r, v) in ki.iter().enumerate() {
                err[(r, 0)] += h * w * v;
            }
        }
        self.stats.linear_iterations += lu.solve_in_place(err.as_mut());
        let scale: Vec<f64> = self
            .state
            .u
            .iter()
            .zip(&u_new)
            .map(|(a, b)| a.abs().max(b.abs()))
            .collect();
        let e: Vec<f64> = (0..n).map(|r| err[(r, 0)]).collect();
        let error = weighted_norm(&e, &scale, &self.options).max(1e-10);
        if !error.is_finite() {
            return Ok(StepOutcome::NewtonFailed);
        }
        Ok(if error <= 1.0 {
            StepOutcome::Accepted {
                error,
                u: u_new,
                f,
                rate: max_rate,
            }
        } else {
            StepOutcome::Rejected { error }
        })
    }
}
