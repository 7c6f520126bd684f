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
//! ([`MolSystem::jacobian_operator`]: a 2-D spectral discretisation), else
//! assembled by the system where it can ([`MolSystem::jacobian`]: a 1-D
//! spectral one) and otherwise by coloured finite differences
//! (`jacobian.rs`), once per accepted state; a rejected step reuses it
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

use crate::mol::linearisation::Linearisation;
use crate::mol::{MolError, MolSystem};

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

/// Settings of the time integrator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MolOptions {
    /// Relative tolerance of the local error.
    pub rtol: f64,
    /// Absolute tolerance of the local error.
    pub atol: f64,
    /// Step budget over the whole solve.
    pub max_steps: usize,
    /// First step; `None` estimates it from `‖u₀‖/‖f(u₀)‖`.
    pub initial_step: Option<f64>,
    /// A state whose max norm exceeds this is a blow-up.
    pub max_norm: f64,
    /// Constant steps without error control (order measurements); `None` for
    /// adaptive stepping.
    pub fixed_step: Option<f64>,
}

impl Default for MolOptions {
    fn default() -> Self {
        Self {
            rtol: 1e-6,
            atol: 1e-8,
            max_steps: 100_000,
            initial_step: None,
            max_norm: 1e10,
            fixed_step: None,
        }
    }
}

impl MolOptions {
    fn validate(&self) -> Result<(), MolError> {
        let positive = |what, value: f64| {
            if value.is_finite() && value > 0.0 {
                Ok(())
            } else {
                Err(MolError::InvalidValue {
                    what,
                    value,
                    reason: "must be finite and positive",
                })
            }
        };
        positive("rtol", self.rtol)?;
        positive("atol", self.atol)?;
        positive("max_norm", self.max_norm)?;
        if let Some(h) = self.initial_step {
            positive("initial_step", h)?;
        }
        if let Some(h) = self.fixed_step {
            positive("fixed_step", h)?;
        }
        if self.max_steps == 0 {
            return Err(MolError::InvalidValue {
                what: "max_steps",
                value: 0.0,
                reason: "must be at least 1",
            });
        }
        Ok(())
    }
}

/// What an integration cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MolStats {
    /// Accepted steps.
    pub steps: usize,
    /// Steps rejected by the error test.
    pub rejected: usize,
    /// Steps cut because Newton did not converge.
    pub newton_failures: usize,
    /// Newton iterations over all stages.
    pub newton_iterations: usize,
    /// Right-hand-side evaluations (those of coloured-difference Jacobians
    /// included).
    pub rhs_evaluations: usize,
    /// Jacobian evaluations.
    pub jacobians: usize,
    /// GMRES iterations over all stage solves (a system with a Jacobian
    /// operator, [`MolSystem::jacobian_operator`]; 0 where `I − hγJ` is
    /// factorised).
    pub linear_iterations: usize,
}

/// Integrates `du/dt = f(t, u)` from `u0` at `times[0]` and returns the state
/// at every time (row-major `[times.len(), system.len()]`, `u0` first).
///
/// Errors: invalid options, `u0` of the wrong length, times not finite and
/// strictly increasing, and the typed failures of the module docs.
pub fn integrate<S: MolSystem + ?Sized>(
    system: &S,
    u0: &[f64],
    times: &[f64],
    options: &MolOptions,
) -> Result<(Vec<f64>, MolStats), MolError> {
    options.validate()?;
    let n = system.len();
    if u0.len() != n {
        return Err(MolError::ShapeMismatch {
            what: "initial state",
            expected: vec![n],
            got: vec![u0.len()],
        });
    }
    if times.is_empty() || times.iter().any(|t| !t.is_finite()) {
        return Err(MolError::InvalidValue {
            what: "number of finite output times",
            value: times.len() as f64,
            reason: "need at least one, all finite",
        });
    }
    if let Some(w) = times.windows(2).find(|w| w[1] <= w[0]) {
        return Err(MolError::InvalidValue {
            what: "output time",
            value: w[1],
            reason: "output times must increase strictly",
        });
    }
    let mut stepper = Stepper::new(system, options, u0, times[0])?;
    let mut frames = Vec::with_capacity(times.len() * n);
    frames.extend_from_slice(u0);
    for &target in &times[1..] {
        stepper.advance_to(target)?;
        frames.extend_from_slice(&stepper.u);
    }
    Ok((frames, stepper.stats))
}

/// The integrator's state between steps.
struct Stepper<'s, S: MolSystem + ?Sized> {
    system: &'s S,
    options: MolOptions,
    /// `J`, kept between steps or not, and how `I − hγJ` is solved.
    linear: Linearisation<'s>,
    t: f64,
    u: Vec<f64>,
    /// `f(t, u)`, kept from the last stage of the previous step (stiffly accurate).
    f: Vec<f64>,
    /// Whether the Jacobian `linear` holds was taken at the current `(t, u)`
    /// (a rejected step retries with it, and a step after a fast-converging
    /// one keeps it).
    jacobian_current: bool,
    h: f64,
    stats: MolStats,
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

impl<'s, S: MolSystem + ?Sized> Stepper<'s, S> {
    fn new(system: &'s S, options: &MolOptions, u0: &[f64], t0: f64) -> Result<Self, MolError> {
        let mut f = vec![0.0; u0.len()];
        system.rhs(t0, u0, &mut f)?;
        let mut stats = MolStats {
            rhs_evaluations: 1,
            ..MolStats::default()
        };
        let state = Self::checked(t0, u0, options.max_norm);
        if state.is_ok() && f.iter().any(|v| !v.is_finite()) {
            return Err(MolError::BlowUp {
                t: t0,
                norm: f64::NAN,
            });
        }
        state?;
        let linear = Linearisation::new(system, t0, u0, &mut stats)?;
        let mut stepper = Self {
            system,
            options: *options,
            jacobian_current: linear.has_jacobian(),
            linear,
            t: t0,
            u: u0.to_vec(),
            f,
            h: 0.0,
            stats,
        };
        stepper.h = match (options.fixed_step, options.initial_step) {
            (Some(h), _) | (None, Some(h)) => h,
            (None, None) => {
                let d0 = stepper.weighted_norm(&stepper.u, &stepper.u);
                let d1 = stepper.weighted_norm(&stepper.f, &stepper.u);
                if d0 < 1e-5 || d1 < 1e-5 {
                    1e-6
                } else {
                    0.01 * d0 / d1
                }
            }
        };
        Ok(stepper)
    }

    fn check_state(&self) -> Result<(), MolError> {
        Self::checked(self.t, &self.u, self.options.max_norm)
    }

    /// [`MolError::BlowUp`] for a state `u` at `t` that is not finite or
    /// exceeds `max_norm`.
    fn checked(t: f64, u: &[f64], max_norm: f64) -> Result<(), MolError> {
        let norm = u.iter().fold(0.0_f64, |m, v| {
            if v.is_finite() {
                m.max(v.abs())
            } else {
                f64::NAN
            }
        });
        if norm.is_finite() && norm <= max_norm {
            Ok(())
        } else {
            Err(MolError::BlowUp { t, norm })
        }
    }

    /// RMS of `v / (atol + rtol·|scale|)`.
    fn weighted_norm(&self, v: &[f64], scale: &[f64]) -> f64 {
        let (atol, rtol) = (self.options.atol, self.options.rtol);
        let sum: f64 = v
            .iter()
            .zip(scale)
            .map(|(x, s)| (x / (atol + rtol * s.abs())).powi(2))
            .sum();
        (sum / v.len().max(1) as f64).sqrt()
    }

    fn advance_to(&mut self, target: f64) -> Result<(), MolError> {
        let mut newton_failures = 0;
        let mut last_rejected = false;
        while self.t < target {
            if self.stats.steps >= self.options.max_steps {
                return Err(MolError::TooManySteps {
                    t: self.t,
                    steps: self.options.max_steps,
                });
            }
            let remaining = target - self.t;
            // Land exactly on the target, avoiding a sliver of a last step.
            let h = if self.h >= remaining * (1.0 - 1e-10) {
                remaining
            } else if self.h > 0.5 * remaining && self.options.fixed_step.is_none() {
                0.5 * remaining
            } else {
                self.h
            };
            let h_min = 16.0 * f64::EPSILON * self.t.abs().max(remaining);
            if h < h_min {
                return Err(MolError::StepSizeUnderflow { t: self.t, h });
            }
            match self.attempt(h)? {
                StepOutcome::Accepted { error, u, f, rate } => {
                    self.t = if h == remaining { target } else { self.t + h };
                    self.u = u;
                    self.f = f;
                    if rate > JACOBIAN_KEEP_RATE || !self.linear.is_expensive() {
                        self.linear.forget();
                    }
                    self.jacobian_current = false;
                    self.stats.steps += 1;
                    self.check_state()?;
                    newton_failures = 0;
                    if self.options.fixed_step.is_none() {
                        let grow = if last_rejected { 1.0 } else { 5.0 };
                        let factor = (0.9 * error.powf(-0.25)).clamp(0.2, grow);
                        // A step shortened to land on the target does not shrink the next one.
                        self.h = (h * factor).max(if h == remaining {
                            self.h.min(h * grow)
                        } else {
                            0.0
                        });
                    }
                    last_rejected = false;
                }
                StepOutcome::Rejected { error } => {
                    self.stats.rejected += 1;
                    self.h = h * (0.9 * error.powf(-0.25)).clamp(0.2, 0.9);
                    last_rejected = true;
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
                            t: self.t,
                            h,
                            failures: newton_failures,
                        });
                    }
                    self.h = 0.25 * h;
                    last_rejected = true;
                }
            }
        }
        Ok(())
    }

    /// One SDIRK step of size `h` from `(t, u)`.
    fn attempt(&mut self, h: f64) -> Result<StepOutcome, MolError> {
        let n = self.u.len();
        let hg = h * GAMMA;
        let (lu, fresh) = self.linear.stage_matrix(
            self.system,
            (self.t, &self.u, &self.f),
            hg,
            &mut self.stats,
        )?;
        self.jacobian_current |= fresh;
        let mut k: Vec<Vec<f64>> = Vec::with_capacity(5);
        let mut z = self.u.clone();
        let mut f = vec![0.0; n];
        let mut delta = Mat::<f64>::zeros(n, 1);
        let mut max_rate = 0.0_f64;
        for (i, row) in A.iter().enumerate() {
            let mut base = self.u.clone();
            for (a, kj) in row.iter().zip(&k) {
                for (b, v) in base.iter_mut().zip(kj) {
                    *b += h * a * v;
                }
            }
            // Predictor: the previous stage's slope.
            let slope = k.last().unwrap_or(&self.f);
            for ((zi, b), s) in z.iter_mut().zip(&base).zip(slope) {
                *zi = b + hg * s;
            }
            let t_stage = self.t + C[i] * h;
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
                let norm = self.weighted_norm(&update, &z);
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
        self.system.rhs(self.t + h, &u_new, &mut f)?;
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
            .u
            .iter()
            .zip(&u_new)
            .map(|(a, b)| a.abs().max(b.abs()))
            .collect();
        let e: Vec<f64> = (0..n).map(|r| err[(r, 0)]).collect();
        let error = self.weighted_norm(&e, &scale).max(1e-10);
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
