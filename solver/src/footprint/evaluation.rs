//! The evaluation's estimated peak: the trained model predicting the test
//! split on its own grid, then at each of `eval.resolutions` on that grid.
//! Where the training holds every layer's activations for a batch, a
//! prediction holds one sample's backbone pass at a time, but on a grid that
//! may be 16 times the training's (the Navier–Stokes paper model trains at
//! 64² and is tested at 256²), so either can be the larger.
//!
//! A prediction of a chunk of samples (`training.batch_size` of them on the
//! model's grid, fewer on a finer one: `scenario_at_resolution`) peaks at
//! the largest of three moments, each counted over the grid's `R` points:
//!
//! - the backbone's pass of the chunk's last sample: its input features and
//!   the two fields the layers' inputs and outputs take turns in (the head's
//!   input and output at its end), next to the bases of the samples before
//!   it, `N` values per point in float64;
//! - the last basis appended: the chunk's bases and the backbone's output;
//! - the constraint layer's solve: the chunk's bases, the mapped basis of a
//!   PDE with a solution map, the solution and its offset on the grid, and
//!   at the experts' sampled points the residual's rows and Jacobian (as in
//!   training); PI-SC solves nothing, its basis is the solution.
//!
//! The moments count the buffers live at once: a pass's fields, once
//! freed, are taken over by the buffers that follow or, when large, given
//! back to the kernel (`Model::infer`), so the heap holds no more.
//!
//! Around the chunk: the variables once (no gradient, no optimiser), the
//! model built for the grid (its features' coordinates), the test split on
//! the model's grid in float64, the predictions kept for the summary and
//! plots, with `eval.resolutions` the test split as stored (float32, at the
//! largest resolution) and the chunk's truth restricted to the finer grid,
//! and the program. Left out: the rest of the model built for a finer grid
//! (the experts' tiles, the PDE's operators) and small buffers. A test holds
//! the estimate to the measured peak of `tessera eval` (benches/README.md,
//! "Memory estimate").

use std::fmt;

use tessera_scenarios::Scenario;
use tessera_scenarios::config::Method;

use super::{ConstraintParts, PROGRAM_BYTES, bytes, human_bytes, product, real_size};
use crate::SolverError;
use crate::model::scenario_at_resolution;
use crate::model::setup::fno_config;

/// The parts of an evaluation's estimated peak memory, in bytes, at the grid
/// where it peaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalFootprint {
    /// Points per spatial axis of the grid where the evaluation peaks: the
    /// model's, or one of `eval.resolutions`.
    pub grid: Vec<usize>,
    /// Samples predicted at once there.
    pub chunk: usize,
    /// One chunk's prediction (see the module docs).
    pub prediction: u64,
    /// The model built for that grid (its features' coordinates).
    pub model: u64,
    /// The backbone's variables.
    pub parameters: u64,
    /// The test data and the predictions held.
    pub data: u64,
    /// The program itself ([`PROGRAM_BYTES`]).
    pub program: u64,
}

impl EvalFootprint {
    /// The estimate for evaluating a model trained on `scenario` as its
    /// `eval` settings say: the largest over its own grid and each of
    /// `eval.resolutions`.
    ///
    /// Errors: a PDE that cannot be built on one of the grids, a resolution
    /// the scenario cannot be evaluated at.
    pub fn of_evaluation(scenario: &Scenario) -> Result<Self, SolverError> {
        let dims = scenario.dims();
        let trajectory = product(&dims);
        let count = scenario.eval_samples().min(scenario.data.test_samples);
        // Held all along: the test split on the grid and its predictions.
        let mut held = (scenario.data.test_samples + count) * trajectory;
        if let Some(&finest) = scenario.eval.resolutions.iter().max() {
            let stored = scenario.data.test_samples * dims[0] * finest.pow(dims.len() as u32 - 1);
            held += stored / 2; // float32
        }
        let mut peak = Self::at(scenario, scenario.training.batch_size.min(count), held)?;
        for &resolution in &scenario.eval.resolutions {
            let refined = scenario_at_resolution(scenario, resolution)?;
            let chunk = refined.training.batch_size.min(count);
            // The chunk's truth, restricted to the finer grid.
            let truth = chunk * product(&refined.dims());
            let at = Self::at(&refined, chunk, held + truth)?;
            if at.total() > peak.total() {
                peak = at;
            }
        }
        Ok(peak)
    }

    /// The estimate of predicting chunks of `chunk` samples on `scenario`'s
    /// grid with `held` float64 values of data around them.
    fn at(scenario: &Scenario, chunk: usize, held: usize) -> Result<Self, SolverError> {
        let fno = fno_config(scenario);
        let real = real_size(scenario);
        let dims = scenario.dims();
        let points = product(&dims);
        let n = fno.out_dim;
        let pass = bytes(fno.inference_values(points), real);
        let bases = |samples: usize| bytes(samples * points * n, 8);
        let solve = match scenario.constraint.method {
            Method::Soft => 0,
            Method::Hard | Method::Moe => {
                let parts = ConstraintParts::of(scenario, &scenario.grid()?)?;
                bytes(chunk * (points * (n * parts.mapped + 3) + parts.sampled), 8)
            }
        };
        let prediction = (bases(chunk.saturating_sub(1)) + pass)
            .max(bases(chunk) + bytes(points * n, real))
            .max(bases(chunk) + solve);
        Ok(Self {
            grid: dims[1..].to_vec(),
            chunk,
            prediction,
            // The model built for the grid: its features' coordinates.
            model: bytes(points * dims.len(), 8),
            parameters: bytes(fno.parameter_count(), real),
            data: bytes(held, 8),
            program: PROGRAM_BYTES,
        })
    }

    /// The whole estimate, in bytes.
    pub fn total(&self) -> u64 {
        self.program + self.parameters + self.model + self.data + self.prediction
    }
}

impl fmt::Display for EvalFootprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let grid: Vec<String> = self.grid.iter().map(usize::to_string).collect();
        write!(
            f,
            "about {}: at {} points, {} sample(s) at a time {}, variables {}, the model's \
             grid {}, test data and predictions {}, program {}",
            human_bytes(self.total()),
            grid.join(" × "),
            self.chunk,
            human_bytes(self.prediction),
            human_bytes(self.parameters),
            human_bytes(self.model),
            human_bytes(self.data),
            human_bytes(self.program),
        )
    }
}
