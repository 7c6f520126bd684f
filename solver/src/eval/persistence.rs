//! The persistence baseline: each test trajectory's initial condition held
//! at every time level, `u(t) = u₀`, scored like a model.
//!
//! Why in every summary: a relative L2 error means little alone. A model
//! that has learned no dynamics scores about the persistence error, and on
//! a slow PDE that is already small (diffusion–sorption changes little over
//! its horizon), so the baseline says how much of an error the model's own.

use serde::{Deserialize, Serialize};

use super::{mean_std, relative_l2};
use crate::SolverError;

/// The persistence baseline's relative L2 errors on the evaluated samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Persistence {
    /// Mean and population standard deviation over the samples.
    pub mean: f64,
    pub std: f64,
    /// Per sample, in the order of the summary's `rel_l2`.
    pub rel_l2: Vec<f64>,
}

impl Persistence {
    /// The baseline on `truths` (each `[nt, frame]` row-major, its first
    /// `frame` values the initial condition).
    ///
    /// Errors: a truth whose length is not a whole number of frames, and
    /// those of [`relative_l2`] (a zero truth).
    pub fn of(truths: &[Vec<f64>], frame: usize) -> Result<Self, SolverError> {
        let rel_l2 = truths
            .iter()
            .map(|truth| {
                if frame == 0 || truth.len() % frame != 0 {
                    return Err(SolverError::ShapeMismatch {
                        what: "trajectory (whole frames)",
                        expected: vec![frame],
                        got: vec![truth.len()],
                    });
                }
                let held: Vec<f64> = truth[..frame]
                    .iter()
                    .copied()
                    .cycle()
                    .take(truth.len())
                    .collect();
                relative_l2(&held, truth)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (mean, std) = mean_std(&rel_l2);
        Ok(Self { mean, std, rel_l2 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_held_initial_condition_is_scored_against_each_level() {
        // Frames of two points. Sample 1 doubles then triples its frame
        // (1, 1): differences 0, (1, 1), (2, 2) against a norm² 2 + 8 + 18,
        // so √(10/28). Sample 2 does not change: 0.
        let truths = vec![
            vec![1.0, 1.0, 2.0, 2.0, 3.0, 3.0],
            vec![0.5, -0.5, 0.5, -0.5, 0.5, -0.5],
        ];
        let p = Persistence::of(&truths, 2).unwrap();
        let first = (10.0_f64 / 28.0).sqrt();
        assert!((p.rel_l2[0] - first).abs() < 1e-15, "{p:?}");
        assert_eq!(p.rel_l2[1], 0.0);
        assert!((p.mean - first / 2.0).abs() < 1e-15);
        assert!((p.std - first / 2.0).abs() < 1e-15);
    }

    #[test]
    fn a_partial_frame_is_a_shape_error() {
        let err = Persistence::of(&[vec![1.0, 2.0, 3.0]], 2).unwrap_err();
        assert!(matches!(err, SolverError::ShapeMismatch { .. }), "{err}");
    }
}
