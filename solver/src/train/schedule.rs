//! Learning-rate schedules of the reference code (REFERENCE-NOTES §1, §2):
//! diffusion–sorption uses a staircase (×0.5 every 800 steps, floored at 1e-4),
//! Navier–Stokes a smooth exponential decay to a fraction of the initial rate
//! over the run.

use tessera_scenarios::config::{Schedule, TrainingConfig};

/// The learning rate of update number `step` (0-based: the first update uses
/// `step = 0`, as optax's schedules see the count before the update).
pub fn learning_rate(training: &TrainingConfig, step: usize) -> f64 {
    let t = training;
    match t.schedule {
        Schedule::Constant => t.lr,
        Schedule::Staircase => {
            let periods = (step / t.every) as i32;
            (t.lr * t.decay.powi(periods)).max(t.lr_floor)
        }
        Schedule::Exponential => t.lr * t.final_factor.powf(step as f64 / t.steps as f64),
    }
}
