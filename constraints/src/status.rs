//! What one Levenberg–Marquardt solve reports: why it stopped and how far it got.
//!
//! Stopping is a *reason*, not an error: a solve that hits the iteration limit still
//! returns its best weights (the reference runs with `throw=False`), and a non-finite
//! problem is reported here rather than by a panic, so one bad sample never aborts
//! the other experts of a batch.

/// Why a Levenberg–Marquardt solve stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// The Cauchy test passed: both the last step and the last change of the
    /// objective were within `atol + rtol·scale` (see
    /// [`crate::LevenbergMarquardt`]), or the gradient vanished exactly.
    Converged,
    /// The iteration limit was reached first; the weights are the best found.
    MaxIterations,
    /// The problem data, the initial weights or a residual evaluation was NaN or
    /// infinite; the weights are the last finite iterate.
    NonFinite,
    /// The damped normal matrix could not be factored even with large damping
    /// (it is not positive definite in floating point).
    Singular,
}

/// The record of one solve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LmStatus {
    /// Why the solve stopped.
    pub reason: StopReason,
    /// Number of iterations (accepted plus rejected steps).
    pub iterations: usize,
    /// `‖r(ω₀)‖₂` at the initial weights.
    pub initial_residual: f64,
    /// `‖r(ω*)‖₂` at the returned weights.
    pub final_residual: f64,
    /// `‖Jᵀr‖₂` at the returned weights (zero at an exact stationary point).
    pub gradient_norm: f64,
}

impl LmStatus {
    /// Whether the solve converged (the only reason after which the implicit
    /// function theorem's stationarity assumption strictly holds).
    pub fn converged(&self) -> bool {
        self.reason == StopReason::Converged
    }
}
