//! One constraint solve's record, as C sees it.

use tessera_solver::embed::{LmStatus, StopReason};

/// Why a Levenberg–Marquardt solve stopped.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TesseraStopReason {
    /// Converged within the scenario's tolerances.
    Converged = 0,
    /// The iteration limit was reached first; the weights are the best found.
    MaxIterations = 1,
    /// NaN or infinite values appeared.
    NonFinite = 2,
    /// The damped normal matrix could not be factored.
    Singular = 3,
}

/// The record of one expert's solve for one sample.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TesseraSolveStatus {
    /// Why the solve stopped.
    pub reason: TesseraStopReason,
    /// Iterations (accepted plus rejected steps).
    pub iterations: u64,
    /// `‖r(ω₀)‖₂` at the initial weights.
    pub initial_residual: f64,
    /// `‖r(ω*)‖₂` at the returned weights (PDE rows at the sampled points,
    /// initial/boundary rows and ridge rows together).
    pub final_residual: f64,
    /// `‖Jᵀr‖₂` at the returned weights.
    pub gradient_norm: f64,
}

impl From<&LmStatus> for TesseraSolveStatus {
    fn from(s: &LmStatus) -> Self {
        Self {
            reason: match s.reason {
                StopReason::Converged => TesseraStopReason::Converged,
                StopReason::MaxIterations => TesseraStopReason::MaxIterations,
                StopReason::NonFinite => TesseraStopReason::NonFinite,
                StopReason::Singular => TesseraStopReason::Singular,
            },
            iterations: s.iterations as u64,
            initial_residual: s.initial_residual,
            final_residual: s.final_residual,
            gradient_norm: s.gradient_norm,
        }
    }
}

/// Copies `statuses` into the caller's optional array (checked by the caller).
pub(crate) fn write_statuses(statuses: &[LmStatus], out: Option<&mut [TesseraSolveStatus]>) {
    if let Some(out) = out {
        for (o, s) in out.iter_mut().zip(statuses) {
            *o = s.into();
        }
    }
}
