//! Adaptive explicit time stepping for semi-discrete systems that are not
//! stiff.
//!
//! **Method.** The Dormand–Prince 5(4) pair (J. R. Dormand & P. J. Prince,
//! "A family of embedded Runge–Kutta formulae", J. Comput. Appl. Math. 6,
//! 1980): seven stages, the last evaluated at the new state, so it is the
//! next step's first ("first same as last": six evaluations per step); the
//! step advances with the order-5 solution and the difference to the
//! embedded order-4 one is the error estimate. Why this one: no Jacobian and
//! no linear solve, and for a transport-dominated flow (nearly inviscid
//! Navier–Stokes) the steps that accuracy asks for are within its stability
//! region, so each costs six evaluations where the implicit method pays a
//! Jacobian and Newton iterations with linear solves.
//!
//! **Error control.** `err = h Σ (b_i − b̂_i) k_i` in the RMS norm weighted by
//! `atol + rtol·max(|u₀|, |u₁|)`, accept when ≤ 1, next step
//! `h · clamp(0.9 err^{−1/5}, 0.2, 5)` (`step_control.rs`). A stage that is
//! not finite rejects the step and cuts it by 4.
//!
//! **Stiffness test** (for [`crate::mol::MolMethod::Auto`]). The last two
//! stages are evaluated at the same time, so with `Δy = u₁ − U₆` (`U₆` is
//! stage 6's argument) and `Δf = k₇ − k₆`, `ρ = ‖Δf‖ / ‖Δy‖` estimates the
//! modulus of the dominant eigenvalue `λ` of `∂f/∂u` along the step and
//! `Δy·Δf / ‖Δy‖²` its real part (Hairer, Nørsett & Wanner, *Solving
//! Ordinary Differential Equations I*, 2nd ed., §IV.2, take the modulus
//! only). A step is bounded by stability where that `hλ` sits at the edge
//! of the stability region: the method's amplification `|R(hλ)| ≥ 0.9`
//! there (it no longer damps the mode), with `hρ ≥ 0.98`. Why the
//! direction: the region reaches −3.3 on the negative real axis but only
//! ±0.997i on the imaginary one, so dispersive modes (KdV's `u_xxx`) hold
//! the steps at `hρ ≈ 1`, which the modulus alone, compared with Hairer's
//! real-axis threshold of 3.25, never flags. On the real axis the test is
//! Hairer's (`|R(−3.25)| = 0.90`); the floor `hρ ≥ 0.98` (the imaginary-axis
//! bound with Hairer's margin, 3.25/3.3) keeps out small steps, where
//! `|R| ≈ |e^{hλ}|` is near 1 because accuracy, not stability, sets them.
//! Fifteen such accepted steps, not interrupted by six others, make the
//! system stiff (the counts of Hairer's DOPRI5). The test runs on every
//! accepted step, whatever the method asked for: [`MolStats::held_by_stability`]
//! counts the steps it finds bounded, so that a user who chose the explicit
//! method learns that stability, not accuracy, set most of its steps.
//!
//! With [`crate::mol::MolOptions::fixed_step`] the error test is skipped
//! (for measuring the order in time) and a stage that is not finite is a
//! [`MolError::BlowUp`].

use rustfft::num_complex::Complex64;

use crate::mol::integrator::State;
use crate::mol::step_control::{StepSize, checked, weighted_norm};
use crate::mol::{MolError, MolOptions, MolStats, MolSystem};

/// The order of the embedded error estimate.
const ERROR_ORDER: u32 = 4;
/// Stages.
const STAGES: usize = 7;
/// Stage times.
const C: [f64; STAGES] = [0.0, 0.2, 0.3, 0.8, 8.0 / 9.0, 1.0, 1.0];
/// The strictly lower part of the tableau (row `i` has `i` entries); the last
/// row is also the order-5 weights `b` (with `b₇ = 0`).
const A: [&[f64]; STAGES] = [
    &[],
    &[0.2],
    &[3.0 / 40.0, 9.0 / 40.0],
    &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
    &[
        19372.0 / 6561.0,
        -25360.0 / 2187.0,
        64448.0 / 6561.0,
        -212.0 / 729.0,
    ],
    &[
        9017.0 / 3168.0,
        -355.0 / 33.0,
        46732.0 / 5247.0,
        49.0 / 176.0,
        -5103.0 / 18656.0,
    ],
    &[
        35.0 / 384.0,
        0.0,
        500.0 / 1113.0,
        125.0 / 192.0,
        -2187.0 / 6784.0,
        11.0 / 84.0,
    ],
];
/// `b − b̂`: the order-5 weights minus the embedded order-4 weights
/// `(5179/57600, 0, 7571/16695, 393/640, −92097/339200, 187/2100, 1/40)`.
const ERROR_WEIGHTS: [f64; STAGES] = [
    71.0 / 57600.0,
    0.0,
    -71.0 / 16695.0,
    71.0 / 1920.0,
    -17253.0 / 339200.0,
    22.0 / 525.0,
    -1.0 / 40.0,
];
/// `|R(hλ)|` at or above this: `hλ` is at the stability region's edge.
const EDGE_AMPLIFICATION: f64 = 0.9;
/// `hρ` below this is never bounded by stability (module docs).
const MIN_H_RHO: f64 = 0.98;
/// Accepted steps bounded by stability that make the system stiff.
const STIFF_STEPS: usize = 15;
/// Steps not bounded by stability that clear the count.
const NON_STIFF_STEPS: usize = 6;

/// Where [`DormandPrince::advance_to`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reached {
    /// At the target.
    Target,
    /// Before it: the stiffness test fired (only when asked to test).
    Stiff,
}

/// The explicit integrator's state between steps.
pub(crate) struct DormandPrince<'s, S: MolSystem + ?Sized> {
    system: &'s S,
    options: MolOptions,
    pub state: State,
    step: StepSize,
    pub stats: MolStats,
    /// Whether to stop when the stiffness test fires.
    stop_when_stiff: bool,
    stiff_steps: usize,
    non_stiff_steps: usize,
    /// Stage derivatives `k₂ … k₇` (`k₁` is `state.f`).
    k: Vec<Vec<f64>>,
    /// Stage 6's argument, then the new state.
    stage6: Vec<f64>,
    next: Vec<f64>,
}

impl<'s, S: MolSystem + ?Sized> DormandPrince<'s, S> {
    /// Starts from `state` with the step `h`, adding to `stats`;
    /// `stop_when_stiff` makes [`Self::advance_to`] stop when the stiffness
    /// test fires.
    pub fn new(
        system: &'s S,
        options: &MolOptions,
        state: State,
        h: f64,
        stats: MolStats,
        stop_when_stiff: bool,
    ) -> Self {
        let n = state.u.len();
        Self {
            system,
            options: *options,
            state,
            step: StepSize::new(h, ERROR_ORDER, options.fixed_step.is_some()),
            stats,
            stop_when_stiff,
            stiff_steps: 0,
            non_stiff_steps: 0,
            k: vec![vec![0.0; n]; STAGES - 1],
            stage6: vec![0.0; n],
            next: vec![0.0; n],
        }
    }

    /// Steps until the state is at `target`, or until the stiffness test
    /// fires.
    pub fn advance_to(&mut self, target: f64) -> Result<Reached, MolError> {
        while self.state.t < target {
            let trial = self
                .step
                .propose(self.state.t, target, self.stats.steps, &self.options)?;
            let h = trial.h;
            let error = self.attempt(h)?;
            let fixed = self.options.fixed_step.is_some();
            if !error.is_finite() {
                if fixed {
                    return Err(MolError::BlowUp {
                        t: self.state.t + h,
                        norm: f64::NAN,
                    });
                }
                self.stats.rejected += 1;
                self.step.cut(h);
            } else if error > 1.0 && !fixed {
                self.stats.rejected += 1;
                self.step.reject(h, error);
            } else {
                let stiff = self.counts_as_stiff(h) && self.stop_when_stiff;
                self.state.t = if trial.lands {
                    target
                } else {
                    self.state.t + h
                };
                std::mem::swap(&mut self.state.u, &mut self.next);
                // First same as last: k₇ is f at the new state.
                std::mem::swap(&mut self.state.f, &mut self.k[STAGES - 2]);
                self.stats.steps += 1;
                self.stats.explicit_steps += 1;
                checked(self.state.t, &self.state.u, self.options.max_norm)?;
                self.step.accept(trial, error);
                if stiff {
                    return Ok(Reached::Stiff);
                }
            }
        }
        Ok(Reached::Target)
    }

    /// One step of size `h` from the state: the new state in `self.next`,
    /// the stages in `self.k`, and the weighted error estimate (∞ when a
    /// stage is not finite).
    fn attempt(&mut self, h: f64) -> Result<f64, MolError> {
        let State { t, u, f } = &self.state;
        for (i, row) in A.iter().enumerate().skip(1) {
            // Stage i's argument: u + h Σ_j a_ij k_j, k₁ = f.
            let argument = if i == STAGES - 2 {
                &mut self.stage6
            } else {
                &mut self.next
            };
            argument.copy_from_slice(u);
            for (j, a) in row.iter().enumerate() {
                if *a == 0.0 {
                    continue;
                }
                let kj = if j == 0 { f } else { &self.k[j - 1] };
                for (x, v) in argument.iter_mut().zip(kj) {
                    *x += h * a * v;
                }
            }
            let slope = &mut self.k[i - 1];
            self.system.rhs(*t + C[i] * h, argument, slope)?;
            self.stats.rhs_evaluations += 1;
            if slope.iter().any(|v| !v.is_finite()) {
                return Ok(f64::INFINITY);
            }
        }
        let mut error = vec![0.0; u.len()];
        for (j, w) in ERROR_WEIGHTS.iter().enumerate() {
            let kj = if j == 0 { f } else { &self.k[j - 1] };
            for (e, v) in error.iter_mut().zip(kj) {
                *e += h * w * v;
            }
        }
        let scale: Vec<f64> = u
            .iter()
            .zip(&self.next)
            .map(|(a, b)| a.abs().max(b.abs()))
            .collect();
        Ok(weighted_norm(&error, &scale, &self.options))
    }

    /// The stiffness test after an accepted step of size `h` (module docs):
    /// counts it, and says whether the system is now found stiff.
    fn counts_as_stiff(&mut self, h: f64) -> bool {
        let bounded = self.bounded_by_stability(h);
        if bounded {
            self.stats.held_by_stability += 1;
            self.non_stiff_steps = 0;
            self.stiff_steps += 1;
        } else {
            self.non_stiff_steps += 1;
            if self.non_stiff_steps >= NON_STIFF_STEPS {
                self.stiff_steps = 0;
            }
        }
        self.stiff_steps >= STIFF_STEPS
    }

    /// Whether the step of size `h` just accepted was bounded by stability:
    /// `hλ`, estimated from the last two stages, at the edge of the region.
    fn bounded_by_stability(&self, h: f64) -> bool {
        let (mut dy2, mut df2, mut cross) = (0.0, 0.0, 0.0);
        let slopes = self.k[STAGES - 2].iter().zip(&self.k[STAGES - 3]);
        let states = self.next.iter().zip(&self.stage6);
        for ((f1, f0), (y1, y0)) in slopes.zip(states) {
            let (df, dy) = (f1 - f0, y1 - y0);
            dy2 += dy * dy;
            df2 += df * df;
            cross += df * dy;
        }
        dy2 > 0.0 && {
            let rho = (df2 / dy2).sqrt();
            // A growing estimate (Re λ > 0) counts as on the imaginary axis.
            let re = (cross / dy2).clamp(-rho, 0.0);
            let h_lambda = Complex64::new(h * re, h * (rho * rho - re * re).sqrt());
            h * rho >= MIN_H_RHO && amplification(h_lambda) >= EDGE_AMPLIFICATION
        }
    }
}

/// `|R(z)|`, the order-5 solution's stability function: one step of
/// `u' = λu` from `u = 1` with `z = hλ`, through the tableau itself (stage
/// `K_i = 1 + z Σ_j a_ij K_j`; the last stage's argument is the new state).
fn amplification(z: Complex64) -> f64 {
    let mut stages = [Complex64::new(0.0, 0.0); STAGES];
    for (i, row) in A.iter().enumerate() {
        let sum: Complex64 = row.iter().zip(&stages).map(|(a, k)| k * *a).sum();
        stages[i] = 1.0 + z * sum;
    }
    stages[STAGES - 1].norm()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published stability polynomial of the pair's order-5 solution
    /// (Hairer, Nørsett & Wanner, §IV.2): `e^z`'s Taylor polynomial to degree
    /// 5, and `z⁶/600`.
    fn published(z: Complex64) -> f64 {
        let mut term = Complex64::new(1.0, 0.0);
        let mut sum = term;
        for k in 1..=5 {
            term = term * z / k as f64;
            sum += term;
        }
        (sum + z.powi(6) / 600.0).norm()
    }

    #[test]
    fn the_amplification_is_the_published_polynomial() {
        for (x, y) in [
            (-3.25, 0.0),
            (0.0, 1.0),
            (-1.7, 2.2),
            (0.4, -0.3),
            (-12.0, 7.0),
        ] {
            let z = Complex64::new(x, y);
            let (ours, theirs) = (amplification(z), published(z));
            assert!(
                (ours - theirs).abs() < 1e-13 * theirs,
                "{z}: {ours} vs {theirs}"
            );
        }
    }

    #[test]
    fn the_edge_is_hairers_on_the_real_axis_and_near_one_on_the_imaginary() {
        // Hairer's threshold 3.25 on the negative real axis is where
        // |R| = 0.9; the region ends at −3.31.
        let real = |x: f64| amplification(Complex64::new(x, 0.0));
        assert!(real(-3.24) < EDGE_AMPLIFICATION && real(-3.26) > EDGE_AMPLIFICATION);
        assert!(real(-3.30) < 1.0 && real(-3.32) > 1.0);
        // From the floor to the edge the method damps: |R| < 0.9 (near the
        // origin |R| ≈ e^x is above 0.9 again: the floor keeps that out).
        assert!((10..=32).all(|i| real(-0.1 * i as f64) < EDGE_AMPLIFICATION));
        assert!(real(-0.1) > EDGE_AMPLIFICATION);
        // On the imaginary axis |R| stays within 1e-4 of 1 to |z| = 1 and
        // exceeds 1 from 0.997 on: the floor `MIN_H_RHO` decides there.
        let imaginary = |y: f64| amplification(Complex64::new(0.0, y));
        assert!((1..=10).all(|i| (imaginary(0.1 * i as f64) - 1.0).abs() < 1e-4));
        assert!(imaginary(0.99) <= 1.0 && imaginary(1.01) > 1.0);
        // The floor keeps Hairer's margin to that edge: 3.25 to −3.31.
        let edge = |amplification: &dyn Fn(f64) -> f64| {
            let (mut inside, mut outside) = (0.5, 4.0);
            for _ in 0..60 {
                let middle = 0.5 * (inside + outside);
                if amplification(middle) <= 1.0 {
                    inside = middle;
                } else {
                    outside = middle;
                }
            }
            inside
        };
        let (on_imaginary, on_real) = (edge(&imaginary), edge(&|x| real(-x)));
        assert!((on_imaginary - 0.997).abs() < 1e-3 && (on_real - 3.307).abs() < 1e-3);
        let margin = MIN_H_RHO / on_imaginary - 3.25 / on_real;
        assert!(margin.abs() < 0.005, "{on_imaginary} {on_real}");
    }
}
