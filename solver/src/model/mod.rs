//! PLACEHOLDER (replaced by the model helper): the hard-constrained model.
//! Interface the trainer/CLI rely on is below; bodies are unimplemented here.

use candle_nn::VarMap;
use tessera_scenarios::Scenario;

use crate::SolverError;
use crate::trainable::{Batch, Prediction, StepLoss, Trainable};

/// Backbone → basis → experts → solution, for one scenario.
pub struct Model {
    vars: VarMap,
}

impl Model {
    /// Builds the model a scenario describes, with fresh variables initialised
    /// from `scenario.seed` (a checkpoint can overwrite them afterwards).
    pub fn new(scenario: &Scenario) -> Result<Self, SolverError> {
        let _ = scenario;
        unimplemented!("placeholder")
    }
}

impl Trainable for Model {
    fn vars(&self) -> &VarMap {
        &self.vars
    }
    fn loss(&mut self, _batch: &Batch) -> Result<StepLoss, SolverError> {
        unimplemented!("placeholder")
    }
    fn predict(&mut self, _ics: &[Vec<f64>], _seed: u64) -> Result<Prediction, SolverError> {
        unimplemented!("placeholder")
    }
}
