//! The training's estimated peak. It counts the buffers that grow with the
//! problem, each from the code that allocates it:
//!
//! - the parameters four times over: the variables, the gradient buffer
//!   the backbone writes, Adam's two moments;
//! - per sample of a step, the backbone's pass over its `R` grid points:
//!   its input features, the input of every Fourier layer and of the head,
//!   the head's hidden pre-activation and the output (twice with a final
//!   activation), kept for the backward pass, then during that pass the
//!   output's gradient and two layer-wide gradients in turn;
//! - per sample, the constraint layer: the basis gradient (and, for a float32
//!   backbone, the basis as float64), the mapped basis of a PDE with a
//!   solution map, the solution, its gradient and offset on the grid, and at
//!   each of the `P` sampled points per expert the residual's term rows, the
//!   Jacobian and the pulled-back rows; for PI-SC the PDE's terms of the
//!   solution on the whole grid;
//! - the data held through training (the training split's initial
//!   conditions, or trajectories with a data loss, and the test split);
//! - the program itself ([`PROGRAM_BYTES`]).
//!
//! What it leaves out: small buffers (kept spectra, normal equations, chunked
//! scratch), the data generation before training (one trajectory at a time
//! per thread), the evaluation after it ([`super::EvalFootprint`]),
//! and the allocator's fragmentation. `tessera bench train-step` prints the
//! estimate next to the measured peak, and a test holds the two together on
//! scenarios of every kind.

use std::fmt;

use tessera_scenarios::Scenario;
use tessera_scenarios::config::Method;

use super::{ConstraintParts, PROGRAM_BYTES, bytes, human_bytes, product, real_size};
use crate::SolverError;
use crate::model::setup::fno_config;

/// The parts of a training run's estimated peak memory, in bytes (see the
/// module docs for what each counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// Samples per step in this process (the batch over the data ranks).
    pub batch: usize,
    /// The backbone's parameters, their gradient and Adam's two moments.
    pub parameters: u64,
    /// The backbone's activations and gradients of one sample.
    pub backbone_per_sample: u64,
    /// The constraint layer's (or PI-SC's residual's) buffers of one sample.
    pub constraint_per_sample: u64,
    /// The training and test data held through training.
    pub data: u64,
    /// The program itself ([`PROGRAM_BYTES`]).
    pub program: u64,
}

impl Footprint {
    /// The estimate for training `scenario` at `batch` samples per step in
    /// this process (its `training.batch_size` over the data ranks).
    ///
    /// Errors: a PDE that cannot be built on the scenario's grid.
    pub fn of_training(scenario: &Scenario, batch: usize) -> Result<Self, SolverError> {
        let fno = fno_config(scenario);
        let real = real_size(scenario);
        let rows = product(&scenario.dims());
        let channels = fno.in_features
            + fno.widths.iter().sum::<usize>()
            + fno.fc_dim
            + fno.out_dim * (2 + usize::from(fno.activate_last_layer))
            + 2 * fno.widest();
        let training = scenario.training_scenario();
        let grid_points = product(&training.dims());
        let n = scenario.model.n_basis;
        let grid = training.grid()?;
        let parts = ConstraintParts::of(scenario, &grid)?;
        let constraint_words = match scenario.constraint.method {
            Method::Soft => grid_points * (parts.terms + 2),
            Method::Hard | Method::Moe => {
                // The basis gradient, the f64 copy of an f32 basis, the
                // mapped basis; then u, ū and the offset.
                let f64_copy = usize::from(real == 4);
                let grid_fields = n * (1 + f64_copy + parts.mapped) + 3;
                grid_points * grid_fields + parts.sampled
            }
        };
        Ok(Self {
            batch,
            parameters: 4 * bytes(fno.parameter_count(), real),
            backbone_per_sample: bytes(rows * channels, real),
            constraint_per_sample: bytes(constraint_words, 8),
            data: bytes(held_data(scenario), 8),
            program: PROGRAM_BYTES,
        })
    }

    /// The estimate of one training step alone (no data held): what
    /// `tessera bench train-step` measures.
    pub fn without_data(self) -> Self {
        Self { data: 0, ..self }
    }

    /// The whole estimate, in bytes.
    pub fn total(&self) -> u64 {
        self.program
            + self.parameters
            + self.data
            + self.batch as u64 * (self.backbone_per_sample + self.constraint_per_sample)
    }
}

/// Values of the data held through training: the training split's initial
/// conditions (whole trajectories with a data loss) and the test split's
/// trajectories.
fn held_data(scenario: &Scenario) -> usize {
    let dims = scenario.dims();
    let trajectory = product(&dims);
    let initial = product(&dims[1..]);
    let d = &scenario.data;
    let train = if scenario.training.loss.data > 0.0 {
        trajectory
    } else {
        initial
    };
    d.train_samples * train + d.test_samples * trajectory
}

impl fmt::Display for Footprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "about {}: {} sample(s) per step × {} (backbone {}, constraint {}), \
             parameters and optimiser {}, data {}, program {}",
            human_bytes(self.total()),
            self.batch,
            human_bytes(self.backbone_per_sample + self.constraint_per_sample),
            human_bytes(self.backbone_per_sample),
            human_bytes(self.constraint_per_sample),
            human_bytes(self.parameters),
            human_bytes(self.data),
            human_bytes(self.program),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RunData;
    use crate::data::tests::tiny;
    use crate::tests::train_support::temp_dir;

    /// Values the loaded data hold, counted from the samples themselves.
    fn held_values(data: &RunData) -> usize {
        [&data.train, &data.test]
            .iter()
            .map(|samples| match samples.trajectories() {
                Ok(all) => all.iter().map(Vec::len).sum::<usize>(),
                Err(_) => {
                    let all: Vec<usize> = (0..samples.len()).collect();
                    samples.initial_conditions(&all).iter().map(Vec::len).sum()
                }
            })
            .sum()
    }

    /// The data part is what `RunData::load` holds, with and without the
    /// data loss that makes it keep the training trajectories.
    #[test]
    fn the_data_part_is_what_the_loaded_data_hold() {
        let dir = temp_dir("footprint-data");
        let mut scenario = tiny(&dir);
        for loss in ["0", "1"] {
            scenario.set(&format!("training.loss.data={loss}")).unwrap();
            let data = RunData::load(&scenario, true).unwrap();
            let footprint = Footprint::of_training(&scenario, 1).unwrap();
            assert_eq!(
                footprint.data,
                8 * held_values(&data) as u64,
                "data loss {loss}"
            );
        }
    }
}
