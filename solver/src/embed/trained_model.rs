//! A trained model loaded from its run directory, for prediction only.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use tessera_constraints::LmStatus;
use tessera_scenarios::{Dataset, Device, Scenario};

use super::{WorkerPool, batch_of};
use crate::SolverError;
use crate::model::{Inference, KeptInference, Model};
use crate::train::{Checkpoint, RunDir, batches};

/// A trained model, read-only: [`TrainedModel::predict`] takes `&self`, so
/// several threads may predict with one model at once.
///
/// Predictions equal what `tessera eval` computes for the same initial
/// condition: the same variables and warm-start weights from the checkpoint and
/// the same sampled points (the evaluation stream of the scenario's seed).
pub struct TrainedModel {
    model: Model,
    stream: u64,
    /// Which loaded model this is, so a kept prediction is differentiated
    /// by the model that made it ([`TrainedModel::backward`]).
    id: u64,
}

/// Tells loaded models apart (never reused within a process).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A prediction kept for its gradient in the initial conditions
/// ([`TrainedModel::forward`], [`TrainedModel::backward`]).
pub struct ModelForward {
    predictions: Predictions,
    kept: KeptInference,
    model: u64,
}

impl ModelForward {
    /// The fields and statuses predicted, as [`TrainedModel::predict`] gives
    /// them.
    pub fn predictions(&self) -> &Predictions {
        &self.predictions
    }
}

/// The fields predicted for a batch of initial conditions and how every
/// constraint solve went.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    /// The constrained fields, `[batch, T, X, (Y)]` row-major.
    pub fields: Vec<f64>,
    /// The Levenberg–Marquardt status of every solve, `[batch, K]` row-major
    /// (`K` experts; empty for the soft method, which solves nothing).
    pub statuses: Vec<LmStatus>,
    batch: usize,
}

impl From<Inference> for Predictions {
    /// The model's per-sample fields laid end to end.
    fn from(inference: Inference) -> Self {
        Self {
            batch: inference.fields.len(),
            fields: inference.fields.concat(),
            statuses: inference.statuses,
        }
    }
}

impl Predictions {
    /// Number of initial conditions predicted.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The field of sample `b`, `[T, X, (Y)]`.
    ///
    /// # Panics
    /// If `b >= self.batch()`.
    #[track_caller]
    pub fn field(&self, b: usize) -> &[f64] {
        assert!(b < self.batch, "sample {b} of {}", self.batch);
        let g = self.fields.len() / self.batch;
        &self.fields[b * g..(b + 1) * g]
    }

    /// The statuses of sample `b`'s experts, `[K]`.
    ///
    /// # Panics
    /// If `b >= self.batch()`.
    #[track_caller]
    pub fn statuses_of(&self, b: usize) -> &[LmStatus] {
        assert!(b < self.batch, "sample {b} of {}", self.batch);
        let k = self.statuses.len() / self.batch;
        &self.statuses[b * k..(b + 1) * k]
    }
}

impl TrainedModel {
    /// Loads the run directory written by `tessera run` or `tessera train`: the
    /// scenario from `config.toml`, variables and warm-start weights from
    /// `checkpoint.safetensors`. Nothing else (data, scenario files) is read.
    ///
    /// Errors: a missing or invalid `config.toml`, a missing, corrupt or
    /// mismatched checkpoint.
    pub fn load(run_dir: impl AsRef<Path>) -> Result<Self, SolverError> {
        Self::load_on(run_dir, Device::Cpu)
    }

    /// [`TrainedModel::load`] with the model on `device` (a run directory
    /// records the experiment, not the machine): on a GPU the backbone and
    /// the experts' solves run there (README, "GPUs").
    ///
    /// Errors: as [`TrainedModel::load`]; a GPU that cannot be used (a build
    /// without the `cuda` feature, no driver, no such GPU).
    pub fn load_on(run_dir: impl AsRef<Path>, device: Device) -> Result<Self, SolverError> {
        let run = RunDir::new(run_dir.as_ref());
        let mut scenario = run.read_config()?;
        scenario.device = device;
        let mut model = Model::for_checkpoint(&scenario)?;
        let path = run.checkpoint();
        Checkpoint::load_model(&path)?.restore_model(&mut model, &path)?;
        Ok(Self {
            stream: batches::eval_seed(scenario.seed),
            model,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// The scenario the model was trained on.
    pub fn scenario(&self) -> &Scenario {
        self.model.scenario()
    }

    /// The grid `[nt, nx, (ny)]` of every predicted field.
    pub fn dims(&self) -> Vec<usize> {
        self.scenario().dims()
    }

    /// Where the values of a predicted field lie along `axis` (0: its `T`
    /// time levels, 1: its `X` points, 2: its `Y` points), those of an
    /// initial condition along axes 1 and 2: the scenario's grid, as
    /// `tessera generate` writes it into a dataset (`grid/t`, `grid/x`,
    /// `grid/y`).
    ///
    /// Errors: an axis the grid does not have.
    pub fn coordinates(&self, axis: usize) -> Result<Vec<f64>, SolverError> {
        let grid = self.scenario().grid()?;
        if axis >= grid.ndim() {
            return Err(SolverError::ShapeMismatch {
                what: "grid axis (0: t, 1: x, 2: y), at most",
                expected: vec![grid.ndim() - 1],
                got: vec![axis],
            });
        }
        Ok(grid.axis(axis).coords().to_vec())
    }

    /// Values per initial condition (`nx`, or `nx·ny`).
    pub fn ic_len(&self) -> usize {
        self.dims()[1..].iter().product()
    }

    /// Values per predicted field (`nt·nx(·ny)`).
    pub fn field_len(&self) -> usize {
        self.dims().iter().product()
    }

    /// Number of experts `K` (solves per sample): 1 for `hard`, the tiles of
    /// the split for `moe`, 0 for `soft`.
    pub fn n_experts(&self) -> usize {
        self.model.constraint().map_or(0, |c| c.layer().n_experts())
    }

    /// Predicted `fields` (`[batch, T, X, (Y)]`, as [`Predictions::fields`],
    /// possibly of several calls) as a dataset on the model's grid, in the
    /// layout `tessera generate` writes (float32, PDEBench's precision: a
    /// model's error is far above its rounding), with the scenario's TOML as
    /// each sample's config; [`Dataset::write`] saves it.
    ///
    /// Errors: a length that is not a positive multiple of
    /// [`Self::field_len`], NaN or infinite values.
    pub fn dataset(&self, fields: &[f64]) -> Result<Dataset, SolverError> {
        batch_of(fields, &self.dims(), "predicted fields [batch, t, x, (y)]")?;
        let y = (self.dims().len() == 3)
            .then(|| self.coordinates(2))
            .transpose()?;
        let samples = fields
            .chunks(self.field_len())
            .map(|field| field.iter().map(|&v| v as f32).collect())
            .collect();
        Ok(Dataset::new(
            self.coordinates(0)?,
            self.coordinates(1)?,
            y,
            self.scenario().to_toml_string(),
            samples,
        )?)
    }

    /// Predicts the fields for `ics`, `[batch, X, (Y)]` row-major (a batch of
    /// one is one initial condition), on a pool of `threads` threads (`0`:
    /// rayon's default). The result does not depend on `threads` or on how the
    /// initial conditions are batched.
    ///
    /// Errors: a length that is not a positive multiple of [`Self::ic_len`],
    /// NaN or infinite values, a solve without usable weights.
    pub fn predict(&self, ics: &[f64], threads: usize) -> Result<Predictions, SolverError> {
        self.predict_in(ics, &WorkerPool::new(threads)?)
    }

    /// [`TrainedModel::predict`] on a pool the caller keeps (no threads are
    /// started per call).
    pub fn predict_in(&self, ics: &[f64], pool: &WorkerPool) -> Result<Predictions, SolverError> {
        let ics = self.initial_conditions(ics)?;
        let inference = pool.install(|| self.model.infer(&ics, self.stream))?;
        Ok(inference.into())
    }

    /// `ics` (`[batch, X, (Y)]` row-major) one initial condition each.
    ///
    /// Errors: a length that is not a positive multiple of [`Self::ic_len`].
    fn initial_conditions(&self, ics: &[f64]) -> Result<Vec<Vec<f64>>, SolverError> {
        batch_of(ics, &self.dims()[1..], "initial conditions [batch, x, (y)]")?;
        Ok(ics.chunks(self.ic_len()).map(<[f64]>::to_vec).collect())
    }

    /// [`TrainedModel::predict`] (the same fields and statuses, bit for
    /// bit), kept for [`TrainedModel::backward`]: the prediction as a
    /// differentiable function of its initial conditions, for data
    /// assimilation and inverse problems. The kept pass holds each sample's
    /// basis and solved problems (what a training step keeps, without the
    /// backbone's activations, which the backward pass recomputes).
    ///
    /// Errors: as [`TrainedModel::predict`].
    pub fn forward(&self, ics: &[f64], threads: usize) -> Result<ModelForward, SolverError> {
        self.forward_in(ics, &WorkerPool::new(threads)?)
    }

    /// [`TrainedModel::forward`] on a pool the caller keeps.
    pub fn forward_in(&self, ics: &[f64], pool: &WorkerPool) -> Result<ModelForward, SolverError> {
        let ics = self.initial_conditions(ics)?;
        let (inference, kept) = pool.install(|| self.model.infer_kept(&ics, self.stream))?;
        Ok(ModelForward {
            predictions: inference.into(),
            kept,
            model: self.id,
        })
    }

    /// The gradient in the initial conditions (`[batch, X, (Y)]`, laid out
    /// as [`TrainedModel::forward`]'s `ics`) of a loss whose gradient in the
    /// predicted fields is `fields_bar` (`[batch, T, X, (Y)]`), on a pool of
    /// `threads` threads: through the constraint layer's solves (whose rows
    /// read the initial condition) and through the backbone (whose features
    /// hold it). A kept pass may be differentiated any number of times, from
    /// any thread. The result does not depend on `threads`.
    ///
    /// Errors: `forward` kept by another model; `fields_bar` of another
    /// length, NaN or infinite values.
    pub fn backward(
        &self,
        forward: &ModelForward,
        fields_bar: &[f64],
        threads: usize,
    ) -> Result<Vec<f64>, SolverError> {
        self.backward_in(forward, fields_bar, &WorkerPool::new(threads)?)
    }

    /// [`TrainedModel::backward`] on a pool the caller keeps.
    pub fn backward_in(
        &self,
        forward: &ModelForward,
        fields_bar: &[f64],
        pool: &WorkerPool,
    ) -> Result<Vec<f64>, SolverError> {
        if forward.model != self.id {
            return Err(SolverError::ForeignForward);
        }
        pool.install(|| self.model.infer_backward(&forward.kept, fields_bar))
    }
}
