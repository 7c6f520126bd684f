//! Step-size control shared by the integrators: the weighted error norm, the
//! blow-up test, the first step, landing on output times, and how the step
//! grows or shrinks after an accepted or rejected step.
//!
//! Why shared: the implicit and explicit methods differ only in how a step
//! is taken and in the order of their error estimates; the rules that turn
//! an error estimate into the next step (Hairer, Nørsett & Wanner, *Solving
//! Ordinary Differential Equations I*, 2nd ed., §II.4) are the same, and a
//! switch from one method to the other carries the step over.

use crate::mol::{MolError, MolOptions};

/// Largest growth of the step after an accepted one (none after a rejection).
const MAX_GROWTH: f64 = 5.0;
/// Smallest factor an error estimate may cut the step by.
const MIN_FACTOR: f64 = 0.2;
/// Safety factor on the optimal step.
const SAFETY: f64 = 0.9;

/// RMS of `v / (atol + rtol·|scale|)`.
pub(crate) fn weighted_norm(v: &[f64], scale: &[f64], options: &MolOptions) -> f64 {
    let (atol, rtol) = (options.atol, options.rtol);
    let sum: f64 = v
        .iter()
        .zip(scale)
        .map(|(x, s)| (x / (atol + rtol * s.abs())).powi(2))
        .sum();
    (sum / v.len().max(1) as f64).sqrt()
}

/// [`MolError::BlowUp`] for a state `u` at `t` that is not finite or exceeds
/// `max_norm`.
pub(crate) fn checked(t: f64, u: &[f64], max_norm: f64) -> Result<(), MolError> {
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

/// The first step: the option's, or `0.01‖u₀‖/‖f(u₀)‖` in the weighted norm
/// (Hairer–Nørsett–Wanner's first guess, §II.4).
pub(crate) fn first_step(options: &MolOptions, u: &[f64], f: &[f64]) -> f64 {
    match (options.fixed_step, options.initial_step) {
        (Some(h), _) | (None, Some(h)) => h,
        (None, None) => {
            let d0 = weighted_norm(u, u, options);
            let d1 = weighted_norm(f, u, options);
            if d0 < 1e-5 || d1 < 1e-5 {
                1e-6
            } else {
                0.01 * d0 / d1
            }
        }
    }
}

/// One step to try: its size and whether it ends on the output time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Trial {
    pub h: f64,
    pub lands: bool,
}

/// The step size between steps, for a method whose error estimate is of
/// order `q` (the step scales with `error^{−1/(q+1)}`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepSize {
    h: f64,
    exponent: f64,
    fixed: bool,
    last_rejected: bool,
}

impl StepSize {
    /// Starts at `h`, for an error estimate of order `q`; `fixed` (the
    /// options' fixed step) never changes it.
    pub fn new(h: f64, q: u32, fixed: bool) -> Self {
        Self {
            h,
            exponent: -1.0 / f64::from(q + 1),
            fixed,
            last_rejected: false,
        }
    }

    /// The next step from `t` towards `target`: landing exactly on it when
    /// the step reaches it, halving the rest rather than leaving a sliver.
    /// Errors: the step budget spent ([`MolError::TooManySteps`]) or a step
    /// below round-off ([`MolError::StepSizeUnderflow`]).
    pub fn propose(
        &self,
        t: f64,
        target: f64,
        steps: usize,
        options: &MolOptions,
    ) -> Result<Trial, MolError> {
        if steps >= options.max_steps {
            return Err(MolError::TooManySteps {
                t,
                steps: options.max_steps,
            });
        }
        let remaining = target - t;
        let (h, lands) = if self.h >= remaining * (1.0 - 1e-10) {
            (remaining, true)
        } else if self.h > 0.5 * remaining && !self.fixed {
            (0.5 * remaining, false)
        } else {
            (self.h, false)
        };
        if h < 16.0 * f64::EPSILON * t.abs().max(remaining) {
            return Err(MolError::StepSizeUnderflow { t, h });
        }
        Ok(Trial { h, lands })
    }

    /// After `trial` was accepted with the weighted error `error` (≤ 1): grow
    /// by the optimal factor, at most 5× (not at all right after a rejection);
    /// a step shortened to land on an output time does not shrink the next.
    pub fn accept(&mut self, trial: Trial, error: f64) {
        if !self.fixed {
            let grow = if self.last_rejected { 1.0 } else { MAX_GROWTH };
            let factor = (SAFETY * error.powf(self.exponent)).clamp(MIN_FACTOR, grow);
            let floor = if trial.lands {
                self.h.min(trial.h * grow)
            } else {
                0.0
            };
            self.h = (trial.h * factor).max(floor);
        }
        self.last_rejected = false;
    }

    /// After a step of `h` failed the error test with `error` (> 1).
    pub fn reject(&mut self, h: f64, error: f64) {
        self.h = h * (SAFETY * error.powf(self.exponent)).clamp(MIN_FACTOR, SAFETY);
        self.last_rejected = true;
    }

    /// After a step of `h` failed outright (Newton did not converge, a stage
    /// was not finite): a quarter of it.
    pub fn cut(&mut self, h: f64) {
        self.h = 0.25 * h;
        self.last_rejected = true;
    }
}
