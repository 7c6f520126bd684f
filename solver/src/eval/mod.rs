//! Evaluation: relative L2 error `‖u_pred − u_true‖₂ / ‖u_true‖₂` of each test
//! trajectory over the whole grid (the paper's metric), its mean and population
//! standard deviation over the samples (as `jnp.mean`/`jnp.std` in the reference
//! code), and the run summary written to `summary.json`.
//!
//! Plots of the evaluation are the `tessera` tool's business: [`report`]
//! returns the predictions it drew them from.
//!
//! A temporal-extrapolation run (`training.horizon`) also reports the error of
//! each window apart ([`WindowErrors`]): the time levels the model trained on
//! and those past the horizon, each its own relative L2 per sample.
//!
//! The headline error is on the model's grid. With `eval.resolutions` (the
//! Navier–Stokes test split is stored at the largest) the model is also
//! evaluated at each resolution on its own grid ([`ResolutionErrors`]): the
//! same variables, the constraint layer rebuilt for that grid.
//!
//! Every summary also holds the training's physics losses of the predictions
//! and of the ground truth ([`PhysicsCheck`]), and the error of the
//! persistence baseline `u(t) = u₀` on the same samples ([`Persistence`]). Apart from any model,
//! [`physics_floor`] measures how close a minimiser of the training loss lies
//! to the ground truth: the accuracy the scenario's discretisation allows
//! physics-only training.

mod floor;
mod lbfgs;
mod persistence;
mod physics;
mod progress;
mod report;
mod resolutions;

pub use floor::{FloorOptions, PhysicsFloor, physics_floor};
pub use lbfgs::LbfgsStop;
pub use persistence::Persistence;
pub use physics::{PhysicsCheck, PhysicsLosses, physics_check};
pub use progress::{EvalObserver, EvalProgress};
pub use report::{Report, ReportTarget, method_name, report, report_at_resolutions};
pub use resolutions::{ResolutionErrors, evaluate_resolutions};

use serde::{Deserialize, Serialize};

use crate::SolverError;
use crate::data::Samples;
use crate::trainable::Trainable;

/// Errors of every evaluated sample and what they add up to.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Relative L2 error per sample.
    pub rel_l2: Vec<f64>,
    /// Their mean and population standard deviation.
    pub mean: f64,
    pub std: f64,
    /// Prediction solves whose status is not `converged`.
    pub failed_solves: usize,
    /// The predicted trajectories, `[T, X, (Y)]` row-major each.
    pub predictions: Vec<Vec<f64>>,
}

/// Predicts the first `count` samples of `test`, `chunk` initial conditions at a
/// time (bounding memory like a training batch), with the sampled points fixed
/// by `seed`, and compares them with the truth.
pub fn evaluate<M: Trainable + ?Sized>(
    model: &mut M,
    test: &Samples,
    count: usize,
    chunk: usize,
    seed: u64,
) -> Result<Evaluation, SolverError> {
    evaluate_observed(model, test, count, chunk, seed, &mut |_| {})
}

/// [`evaluate`], telling `observe` where it stands after each chunk.
pub fn evaluate_observed<M: Trainable + ?Sized>(
    model: &mut M,
    test: &Samples,
    count: usize,
    chunk: usize,
    seed: u64,
    observe: EvalObserver,
) -> Result<Evaluation, SolverError> {
    if count == 0 || count > test.len() || chunk == 0 {
        return Err(SolverError::InvalidConfig {
            key: "evaluated samples",
            value: format!("{count} (chunks of {chunk})"),
            reason: format!("need 1 to {} samples and a positive chunk", test.len()),
        });
    }
    let truth = test.trajectories()?;
    let mut predictions = Vec::with_capacity(count);
    let mut rel_l2 = Vec::with_capacity(count);
    let mut failed_solves = 0;
    let indices: Vec<usize> = (0..count).collect();
    for part in indices.chunks(chunk) {
        let prediction = model.predict(&test.initial_conditions(part), seed)?;
        if prediction.fields.len() != part.len() {
            return Err(SolverError::ShapeMismatch {
                what: "predicted trajectories",
                expected: vec![part.len()],
                got: vec![prediction.fields.len()],
            });
        }
        failed_solves += prediction.failed_solves;
        for (p, &i) in prediction.fields.iter().zip(part) {
            rel_l2.push(relative_l2(p, &truth[i])?);
        }
        predictions.extend(prediction.fields);
        observe(&EvalProgress::new(
            &test.dims()[1..],
            &rel_l2,
            count,
            failed_solves,
        ));
    }
    let (mean, std) = mean_std(&rel_l2);
    Ok(Evaluation {
        rel_l2,
        mean,
        std,
        failed_solves,
        predictions,
    })
}

/// `‖prediction − truth‖₂ / ‖truth‖₂`. Lengths must agree, the truth must be
/// non-zero and the prediction finite: a NaN prediction is an error, never a
/// silently averaged number.
pub fn relative_l2(prediction: &[f64], truth: &[f64]) -> Result<f64, SolverError> {
    if prediction.len() != truth.len() {
        return Err(SolverError::ShapeMismatch {
            what: "prediction vs truth",
            expected: vec![truth.len()],
            got: vec![prediction.len()],
        });
    }
    let count = prediction.iter().filter(|v| !v.is_finite()).count();
    if count > 0 {
        return Err(SolverError::NonFinite {
            what: "prediction",
            count,
        });
    }
    let diff: f64 = prediction
        .iter()
        .zip(truth)
        .map(|(p, t)| (p - t).powi(2))
        .sum();
    let norm: f64 = truth.iter().map(|t| t * t).sum();
    if norm == 0.0 {
        return Err(SolverError::InvalidConfig {
            key: "test trajectory",
            value: "all zeros".into(),
            reason: "the relative L2 error needs a non-zero truth".into(),
        });
    }
    Ok((diff / norm).sqrt())
}

/// Relative L2 errors of a set of samples over one time window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowError {
    /// Mean and population standard deviation over the samples.
    pub mean: f64,
    pub std: f64,
    /// Per sample.
    pub rel_l2: Vec<f64>,
}

impl WindowError {
    fn new(rel_l2: Vec<f64>) -> Self {
        let (mean, std) = mean_std(&rel_l2);
        Self { mean, std, rel_l2 }
    }
}

/// The errors of a temporal-extrapolation run split at the training horizon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowErrors {
    /// `training.horizon`, and the time levels `t ≤ horizon` trained on.
    pub horizon: f64,
    pub levels: usize,
    /// Over the trained levels (the initial condition included, as in the
    /// whole-grid error).
    pub in_window: WindowError,
    /// Over the levels past the horizon.
    pub extrapolated: WindowError,
}

/// Splits each prediction/truth pair of `[T, …]` trajectories after its first
/// `levels` time levels of `frame` points each, and takes the relative L2 error
/// of either part (see [`relative_l2`]). `levels` must leave both parts
/// non-empty.
pub fn window_errors(
    predictions: &[Vec<f64>],
    truths: &[Vec<f64>],
    frame: usize,
    levels: usize,
    horizon: f64,
) -> Result<WindowErrors, SolverError> {
    let split = frame * levels;
    let mut inside = Vec::with_capacity(predictions.len());
    let mut past = Vec::with_capacity(predictions.len());
    for (p, t) in predictions.iter().zip(truths) {
        if split == 0 || split >= t.len() || p.len() != t.len() {
            return Err(SolverError::ShapeMismatch {
                what: "trajectory split at the horizon (both windows non-empty)",
                expected: vec![t.len()],
                got: vec![p.len(), split],
            });
        }
        inside.push(relative_l2(&p[..split], &t[..split])?);
        past.push(relative_l2(&p[split..], &t[split..])?);
    }
    Ok(WindowErrors {
        horizon,
        levels,
        in_window: WindowError::new(inside),
        extrapolated: WindowError::new(past),
    })
}

/// Mean and population standard deviation (0, 0 for no values).
pub(crate) fn mean_std(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// `summary.json`: the run's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Scenario name.
    pub scenario: String,
    /// `soft`, `hard` or `moe`.
    pub method: String,
    /// Test relative L2 error: mean, population std, and per sample.
    pub rel_l2_mean: f64,
    pub rel_l2_std: f64,
    pub rel_l2: Vec<f64>,
    /// The root mean square of each evaluated sample's initial condition, in
    /// the order of `rel_l2` (for diffusion–sorption its constant `u0`), so
    /// that errors can be read against the initial amplitude (absent in
    /// summaries written before it existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub initial_rms: Vec<f64>,
    /// Grid `[nt, nx, (ny)]` of the evaluation.
    pub grid: Vec<usize>,
    /// Training updates done and training seconds (across resumes).
    pub steps: usize,
    pub seconds: f64,
    /// Training solves whose status was not `converged`, and all training solves.
    pub failed_solves: usize,
    pub solves: usize,
    /// Evaluation solves whose status was not `converged`.
    pub eval_failed_solves: usize,
    /// Seconds the evaluation took.
    pub eval_seconds: f64,
    /// With `training.horizon`: the errors of the trained and the extrapolated
    /// time windows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<WindowErrors>,
    /// With `eval.resolutions`: the errors at each, on its own grid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolutions: Vec<ResolutionErrors>,
    /// The physics losses of the evaluated predictions and of their ground
    /// truth (absent in summaries written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub physics: Option<PhysicsCheck>,
    /// The persistence baseline's errors on the evaluated samples (absent
    /// in summaries written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence: Option<Persistence>,
    /// What a `tessera eval` changed from the run's own evaluation: another
    /// test file, settings overridden (absent for the evaluation the run
    /// ended with, and for a re-evaluation that changed nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluated_with: Option<EvaluatedWith>,
}

/// How an evaluation differs from the run's own: so that a summary of a
/// model tested on other data or other initial conditions cannot be read
/// as the run's result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvaluatedWith {
    /// The test file given instead of the scenario's test data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// The `--set` overrides, as given (`pde.initial.amplitude=1.0`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<String>,
}

impl EvaluatedWith {
    /// `None` when nothing differs from the run's own evaluation.
    pub fn of(data: Option<String>, overrides: Vec<String>) -> Option<Self> {
        (data.is_some() || !overrides.is_empty()).then_some(Self { data, overrides })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn population_statistics() {
        // Mean 2.5, population variance (2.25 + 0.25 + 0.25 + 2.25)/4 = 1.25.
        let (mean, std) = super::mean_std(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(mean, 2.5);
        assert!((std - 1.25f64.sqrt()).abs() < 1e-15);
        assert_eq!(super::mean_std(&[]), (0.0, 0.0));
    }

    #[test]
    fn window_errors_split_after_the_trained_levels() {
        // Three time levels of two points; the first two levels are trained.
        // Sample 1: in-window difference (0, 0, 1, 0) against truth (1, 1, 1, 1):
        // √(1/4) = 0.5; past the horizon difference (3, 4) against (0, 5): √(25/25) = 1.
        // Sample 2: exact in the window (0), difference (1, 0) against (2, 0): 0.5.
        let truths = vec![
            vec![1.0, 1.0, 1.0, 1.0, 0.0, 5.0],
            vec![1.0, 2.0, 3.0, 4.0, 2.0, 0.0],
        ];
        let predictions = vec![
            vec![1.0, 1.0, 2.0, 1.0, 3.0, 9.0],
            vec![1.0, 2.0, 3.0, 4.0, 3.0, 0.0],
        ];
        let w = super::window_errors(&predictions, &truths, 2, 2, 1.5).unwrap();
        assert_eq!(w.in_window.rel_l2, vec![0.5, 0.0]);
        assert_eq!(w.extrapolated.rel_l2, vec![1.0, 0.5]);
        assert_eq!((w.in_window.mean, w.in_window.std), (0.25, 0.25));
        assert_eq!((w.extrapolated.mean, w.extrapolated.std), (0.75, 0.25));
        assert_eq!((w.horizon, w.levels), (1.5, 2));
        // A split that leaves a window empty is an error, not a NaN.
        assert!(super::window_errors(&predictions, &truths, 2, 3, 1.5).is_err());
        assert!(super::window_errors(&predictions, &truths, 2, 0, 1.5).is_err());
    }
}
