//! A test-only model implementing `Trainable`, with an analytic truth, so the
//! trainer, checkpoints and evaluation are tested without the real model.
//!
//! The model predicts `u[k, x] = w[k] · u0[x]` on an `nt × nx` grid; the truth
//! is `u[k, x] = exp(−k/nt) · u0[x]`. Its loss is the mean squared error to the
//! truth plus a tiny seed-dependent shift, so an exact resume must reproduce
//! the batch seeds too; it counts its calls as extra state, and reports one
//! failed solve on steps with an even seed.
#![allow(dead_code)]

use candle_core::{DType, Device, Tensor};
use candle_nn::{Init, VarMap};
use tessera_scenarios::Scenario;
use tessera_solver::{Batch, Prediction, RunData, Samples, SolverError, StepLoss, Trainable};

pub const NT: usize = 4;
pub const NX: usize = 8;

pub struct Linear {
    vars: VarMap,
    calls: u64,
}

impl Linear {
    pub fn new() -> Self {
        let vars = VarMap::new();
        vars.get(NT, "w", Init::Const(0.3), DType::F64, &Device::Cpu)
            .expect("variable");
        Self { vars, calls: 0 }
    }

    pub fn calls(&self) -> u64 {
        self.calls
    }

    pub fn weights(&self) -> Vec<f64> {
        self.vars.data().lock().unwrap()["w"]
            .as_tensor()
            .to_vec1()
            .unwrap()
    }

    fn forward(&self, ics: &[Vec<f64>]) -> Result<Tensor, SolverError> {
        let b = ics.len();
        let flat: Vec<f64> = ics.concat();
        let u0 = Tensor::from_vec(flat, (b, 1, NX), &Device::Cpu)?;
        let w = self.vars.data().lock().unwrap()["w"].as_tensor().clone();
        Ok(u0.broadcast_mul(&w.reshape((1, NT, 1))?)?)
    }
}

/// The true trajectory of `u0`.
pub fn truth(u0: &[f64]) -> Vec<f64> {
    (0..NT)
        .flat_map(|k| u0.iter().map(move |v| (-(k as f64) / NT as f64).exp() * v))
        .collect()
}

/// A smooth, sample-dependent initial condition.
pub fn initial_condition(i: usize) -> Vec<f64> {
    (0..NX)
        .map(|x| 1.0 + 0.5 * ((i as f64 + 1.0) * (x as f64 + 0.5)).sin())
        .collect()
}

pub fn samples(range: std::ops::Range<usize>) -> Samples {
    let trajectories = range.map(|i| truth(&initial_condition(i))).collect();
    Samples::new(vec![NT, NX], trajectories).expect("valid samples")
}

pub fn run_data() -> RunData {
    RunData {
        train: samples(0..8),
        test: samples(100..104),
        stored_test: None,
    }
}

impl Trainable for Linear {
    fn vars(&self) -> &VarMap {
        &self.vars
    }

    fn loss(&mut self, batch: &Batch) -> Result<StepLoss, SolverError> {
        self.calls += 1;
        let prediction = self.forward(&batch.ics)?;
        let shift = (batch.seed % 1000) as f64 * 1e-6;
        let target: Vec<f64> = batch
            .ics
            .iter()
            .flat_map(|u0| truth(u0).into_iter().map(|v| v + shift))
            .collect();
        let target = Tensor::from_vec(target, prediction.shape(), &Device::Cpu)?;
        let total = (prediction - target)?.sqr()?.mean_all()?;
        let value = total.to_scalar::<f64>()?;
        Ok(StepLoss {
            total,
            pde: value,
            ic: 0.0,
            bc: 0.0,
            data: 0.0,
            lm_iterations_mean: 1.0,
            failed_solves: usize::from(batch.seed.is_multiple_of(2)),
            solves: batch.ics.len(),
            gradients: None,
        })
    }

    fn predict(&mut self, ics: &[Vec<f64>], _seed: u64) -> Result<Prediction, SolverError> {
        let fields = self
            .forward(ics)?
            .to_vec3::<f64>()?
            .into_iter()
            .map(|sample| sample.concat())
            .collect();
        Ok(Prediction {
            fields,
            failed_solves: 0,
        })
    }

    fn extra_state(&self) -> Vec<(String, Vec<f64>)> {
        vec![("calls".into(), vec![self.calls as f64])]
    }

    fn restore_extra_state(&mut self, state: &[(String, Vec<f64>)]) -> Result<(), SolverError> {
        self.calls = state
            .iter()
            .find(|(name, _)| name == "calls")
            .map_or(0, |(_, v)| v[0] as u64);
        Ok(())
    }
}

/// A scenario whose training settings drive the fixture (the PDE and model
/// settings are not used by it).
pub fn scenario(steps: usize, extra_training: &str) -> Scenario {
    let text = format!(
        r#"
name = "fixture"
seed = 11
[pde]
kind = "heat"
[grid]
nt = {NT}
nx = {NX}
t_max = 1.0
[data]
train_samples = 8
test_samples = 4
[model]
modes = [1, 1]
[constraint]
method = "soft"
[training]
steps = {steps}
batch_size = 3
lr = 0.05
schedule = "constant"
checkpoint_every = 5
validate_every = 4
validate_samples = 2
{extra_training}
[eval]
plots = 1
"#
    );
    Scenario::from_str(&text, "<fixture>").expect("valid fixture scenario")
}

/// A fresh temporary directory under the target dir (removed first if present).
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tessera-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Flips one bit in the first variable's bytes of the checkpoint at `path`.
pub fn damage_a_variable(path: &std::path::Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let offset = {
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let (_, view) = (file.iter())
            .find(|(name, _)| name.starts_with("var/"))
            .unwrap();
        view.data().as_ptr() as usize - bytes.as_ptr() as usize
    };
    bytes[offset + 3] ^= 0x10;
    std::fs::write(path, bytes).unwrap();
}
