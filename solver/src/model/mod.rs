//! The physics-informed model of a scenario: features → FNO backbone → basis →
//! (for `hard`/`moe`) the hard-constraint layer → solution `u` → losses.
//!
//! - `soft` (PI-SC): the backbone's single output is `u`; the PDE residual is
//!   only a loss term.
//! - `hard` (PI-HC): one global constrained least-squares problem per sample.
//! - `moe` (PI-HC-MoE): one problem per tile of `constraint.experts`.
//!
//! The backbone runs in the scenario's dtype; the constraint solves and the
//! losses always run in f64 (the backbone's output is widened for them, and
//! the basis gradient rounded back for the backbone's backward pass).

mod constrained_pass;
mod external_op;
mod features;
pub mod gradcheck;
mod hard_constraint;
mod kept_inference;
pub mod loss;
mod per_sample;
pub(crate) mod placement;
mod resolution;
pub mod setup;

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use tessera_constraints::LmStatus;
use tessera_scenarios::config::Method;
use tessera_scenarios::{Scenario, ScenarioError};

use self::constrained_pass::BasisPass;
pub use self::external_op::ExternalOp;
pub use self::features::Features;
use self::hard_constraint::WARM_KEY;
pub use self::hard_constraint::{HardConstraint, SolveStats};
use self::kept_inference::KeptChunk;
pub use self::kept_inference::KeptInference;
use self::loss::{LossParts, N_PARTS, PhysicsLoss};
pub(crate) use self::resolution::scenario_at_resolution;
use crate::SolverError;
use crate::backbone::{Fno, SeededVars};
use crate::memory::release_free_memory;
use crate::parallel::DataShard;
use crate::phases::{Phase, PhaseClock};
use crate::trainable::{Batch, Prediction, SampleGradients, StepLoss, Trainable};
use tessera_scenarios::AnyPde;

/// Backbone → basis → experts → solution, for one scenario.
pub struct Model {
    vars: VarMap,
    scenario: Scenario,
    /// The PDE (its own, or the one [`Model::with_pde`] was given), kept so
    /// that [`Model::at_resolution`] builds the same problem on another grid.
    pde: Arc<AnyPde>,
    fno: Fno,
    features: Features,
    loss: PhysicsLoss,
    /// `None` for the soft method.
    constraint: Option<HardConstraint>,
    /// Where the steps' phases go (shared with the backbone's and the
    /// constraint layer's backward passes).
    phases: Arc<PhaseClock>,
}

/// How a model makes the variables it is not given.
#[derive(Debug, Clone, Copy)]
enum NewVars {
    /// From the scenario's seed (a new model).
    Drawn,
    /// As zeros (a model a checkpoint will set).
    Zeros,
}

/// What [`Model::infer`] computed.
#[derive(Debug, Clone)]
pub struct Inference {
    /// One trajectory `[T, X, (Y)]` row-major per initial condition.
    pub fields: Vec<Vec<f64>>,
    /// Every solve's status, `[batch, K]` row-major (empty for the soft method).
    pub statuses: Vec<LmStatus>,
}

impl Model {
    /// Builds the model a scenario describes, with fresh variables initialised
    /// from `scenario.seed` (a checkpoint can overwrite them afterwards).
    ///
    /// Errors: an invalid scenario, a PDE or constraint setting its library
    /// rejects, or modes that do not fit the grid.
    pub fn new(scenario: &Scenario) -> Result<Self, SolverError> {
        scenario.validate()?;
        Self::with_pde(scenario, setup::pde_of(scenario)?)
    }

    /// The model of `scenario` with `pde` in place of the scenario's own (e.g.
    /// the same PDE defined in TOML); everything else as [`Model::new`].
    pub fn with_pde(scenario: &Scenario, pde: AnyPde) -> Result<Self, SolverError> {
        scenario.validate()?;
        Self::assemble(scenario, scenario, pde, VarMap::new(), NewVars::Drawn)
    }

    /// [`Model::new`] with every variable zero, for a checkpoint to set
    /// ([`crate::train::Checkpoint::restore_model`], which refuses one that
    /// does not set them all): nothing is drawn that the checkpoint would
    /// overwrite (3 s and 1.07 GB of written pages at the Navier–Stokes
    /// paper scale).
    pub fn for_checkpoint(scenario: &Scenario) -> Result<Self, SolverError> {
        scenario.validate()?;
        let pde = setup::pde_of(scenario)?;
        Self::assemble(scenario, scenario, pde, VarMap::new(), NewVars::Zeros)
    }

    /// The model that trains `scenario`: [`Model::new`] without a
    /// `training.horizon`. With one, the constraint layer, the losses and the
    /// solution cover the trained window `t ≤ horizon` only
    /// ([`Scenario::training_scenario`]), while the backbone still runs on the
    /// whole grid and its outputs past the horizon are dropped. The FNO's
    /// spectral layers transform the whole time axis, so a backbone trained on
    /// a shorter grid computes a different function on the longer one (a mode
    /// means another frequency, the periodic wrap joins other ends): measured
    /// on the quickstart, that tripled the error inside the trained window.
    /// Keeping the backbone's grid fixed makes the evaluation model
    /// ([`Model::new`], same variables) the trained one on the window.
    pub fn for_training(scenario: &Scenario) -> Result<Self, SolverError> {
        Self::training(scenario, NewVars::Drawn)
    }

    /// [`Model::for_training`] with every variable zero, for the checkpoint
    /// of a resumed run to set, as [`Model::for_checkpoint`] is for one to
    /// evaluate.
    pub fn for_resume(scenario: &Scenario) -> Result<Self, SolverError> {
        Self::training(scenario, NewVars::Zeros)
    }

    fn training(scenario: &Scenario, new_vars: NewVars) -> Result<Self, SolverError> {
        scenario.validate()?;
        Self::assemble(
            &scenario.training_scenario(),
            scenario,
            setup::pde_of(scenario)?,
            VarMap::new(),
            new_vars,
        )
    }

    /// A model whose solution lives on `scenario`'s grid and whose backbone runs
    /// on `backbone`'s (equal, or longer in time with the same leading levels),
    /// its variables those of `vars` where it has them (shared, not copied)
    /// and made as `new_vars` says where not.
    fn assemble(
        scenario: &Scenario,
        backbone: &Scenario,
        pde: AnyPde,
        vars: VarMap,
        new_vars: NewVars,
    ) -> Result<Self, SolverError> {
        if let AnyPde::Custom(definition) = &pde {
            definition
                .check_term_limit()
                .map_err(|e| ScenarioError::CustomPde(Box::new(e)))?;
        }
        let grid = scenario.grid()?;
        let backbone_grid = backbone.grid()?;
        // On a GPU, the definition whose kernels run there, where one
        // restates the PDE.
        let pde = match scenario.constraint.method {
            Method::Soft => Arc::new(placement::soft_pde(scenario.device, &grid, pde)?),
            Method::Hard | Method::Moe => Arc::new(placement::solved_pde(scenario.device, pde)),
        };
        let fno_config = setup::fno_config(backbone);
        fno_config.check_grid(backbone_grid.shape().dims())?;
        let dtype = setup::dtype_of(scenario);
        let builder = match new_vars {
            NewVars::Drawn => SeededVars::builder(&vars, scenario.seed, dtype),
            NewVars::Zeros => SeededVars::placeholders(&vars, dtype),
        };
        let phases = Arc::new(PhaseClock::default());
        let mut fno = Fno::new(fno_config, builder)?;
        fno.time_backward(Arc::clone(&phases));
        #[cfg(feature = "cuda")]
        fno.run_on(placement::backbone_device(backbone)?)?;
        #[cfg(not(feature = "cuda"))]
        placement::backbone_device(backbone)?;
        let constraint = match scenario.constraint.method {
            Method::Soft => None,
            Method::Hard | Method::Moe => Some(HardConstraint::new(
                scenario,
                Arc::clone(&pde),
                grid.clone(),
                Arc::clone(&phases),
            )?),
        };
        let loss =
            PhysicsLoss::new(Arc::clone(&pde), grid)?.with_pde_norm(scenario.training.pde_norm);
        // The PDE loss runs where the solves do, or on the model's GPU for
        // the soft method.
        #[cfg(feature = "cuda")]
        let loss = match &constraint {
            Some(c) => loss.on_gpu(c.layer().gpu_solver().map(Arc::as_ref))?,
            None => loss.on_gpu(placement::SolveDevice::for_loss(scenario, &pde)?.gpu_solver())?,
        };
        Ok(Self {
            vars,
            scenario: scenario.clone(),
            pde: Arc::clone(&pde),
            fno,
            features: Features::new(
                &backbone_grid,
                backbone.time_feature_scale(),
                backbone.model.ic_features,
            ),
            loss,
            constraint,
            phases,
        })
    }

    /// Runs the backbone's forward and backward passes on `device` (a GPU:
    /// [`crate::device::cuda_backbone`]); the variables and the graph stay on
    /// the host, and the optimiser's update runs on the device once the
    /// trainer arms it. `None` goes back to the CPU. Models derived from this
    /// one ([`Model::at_resolution`]) run there too.
    ///
    /// Errors: a device network in another precision than the backbone's
    /// `model.dtype`.
    #[cfg(feature = "cuda")]
    pub fn run_backbone_on(
        &mut self,
        device: Option<Arc<dyn crate::device::NetworkOnDevice>>,
    ) -> Result<(), SolverError> {
        self.fno.run_on(device)
    }

    /// The device the backbone's passes run on ([`Model::run_backbone_on`]),
    /// if not the CPU.
    #[cfg(feature = "cuda")]
    pub fn backbone_device(&self) -> Option<Arc<dyn crate::device::NetworkOnDevice>> {
        self.fno.device()
    }

    /// The scenario the model was built from.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Whether the PDE loss and its gradient run on a GPU (where the solves
    /// do and every residual term is a stencil), for reports.
    pub fn pde_loss_on_gpu(&self) -> bool {
        self.loss.pde_on_gpu()
    }

    /// The hard-constraint layer (`None` for the soft method).
    pub fn constraint(&self) -> Option<&HardConstraint> {
        self.constraint.as_ref()
    }

    /// Frees the large buffers the backbone and the constraint layer keep
    /// from one training step to the next (at the Navier–Stokes paper scale,
    /// batch 4, 3.6 GB): for a model whose training is over, before an
    /// evaluation that builds models of its own at other resolutions. Later
    /// passes work as before, allocating them afresh.
    pub fn release_kept_buffers(&self) {
        self.fno.release_kept_buffers();
        if let Some(c) = &self.constraint {
            c.release_kept_buffers();
        }
    }

    /// The backbone's outputs for `ics` as f64, `[batch, grid points, outputs]`:
    /// those of the solution's grid, the leading time levels of the backbone's
    /// (see [`Model::for_training`]).
    pub fn backbone(&self, ics: &[Vec<f64>]) -> Result<Tensor, SolverError> {
        self.backbone_by(ics, |fno, x| Ok(fno.forward(x)?.to_dtype(DType::F64)?))
    }

    /// [`Model::backbone`] in the backbone's own dtype, without a gradient
    /// and keeping nothing for a backward pass ([`Fno::infer`]): what
    /// predictions run. A float32 basis is converted as it is appended to
    /// the chunk's values ([`append_values`]), not copied to a float64
    /// tensor first (one basis more at the evaluation's peak).
    fn inferred_backbone(&self, ics: &[Vec<f64>]) -> Result<Tensor, SolverError> {
        self.backbone_by(ics, Fno::infer)
    }

    /// The backbone's outputs for `ics` by `pass` (see [`Model::backbone`]).
    fn backbone_by(
        &self,
        ics: &[Vec<f64>],
        pass: impl Fn(&Fno, &Tensor) -> Result<Tensor, SolverError>,
    ) -> Result<Tensor, SolverError> {
        self.phases.time(Phase::BackboneForward, || {
            let x = self.features.tensor(ics, self.fno.dtype())?;
            let out = pass(&self.fno, &x)?;
            let out =
                out.reshape((ics.len(), self.features.points(), self.fno.config().out_dim))?;
            Ok(out.narrow(1, 0, self.grid_points())?)
        })
    }

    fn grid_points(&self) -> usize {
        self.scenario.dims().iter().product()
    }

    /// The solution `u`, `[batch, grid points]` f64, differentiable in the
    /// variables, and what the solves did (`None` for the soft method).
    pub fn solution(
        &mut self,
        ics: &[Vec<f64>],
        stream: u64,
    ) -> Result<(Tensor, Option<SolveStats>), SolverError> {
        self.solution_shard(ics, stream, &DataShard::whole())
    }

    /// [`Model::solution`] of this rank's samples `ics` of a batch split by
    /// `shard` (statistics and warm starts of the whole batch).
    fn solution_shard(
        &mut self,
        ics: &[Vec<f64>],
        stream: u64,
        shard: &DataShard<'_>,
    ) -> Result<(Tensor, Option<SolveStats>), SolverError> {
        let grid_points = self.grid_points();
        let Some(c) = &mut self.constraint else {
            return Ok((self.backbone(ics)?.squeeze(2)?, None));
        };
        let (fno, phases) = (&self.fno, &self.phases);
        let pass = phases.time(Phase::BackboneForward, || {
            let x = self.features.tensor(ics, fno.dtype())?.contiguous()?;
            let (op, params) = fno.network_op(&x, None)?;
            BasisPass::run(op, x, params, grid_points)
        })?;
        let (u, stats) = phases.time(Phase::Solves, || c.apply(pass, ics, stream, shard))?;
        Ok((u, Some(stats)))
    }

    /// Predictions for `ics` without gradients, with every solve's status; `stream`
    /// fixes the sampled points. Runs in chunks of `training.batch_size` initial
    /// conditions (the memory a training step was sized for) and reads the model
    /// only (`&self`: warm-start state is used, never updated), so several threads
    /// may predict with one model at once. Each sample's result depends on its
    /// own initial condition only, bit for bit, not on the chunk it was
    /// computed in: the backbone runs one sample at a time, because its matrix
    /// products block by the number of rows (`batch × points`), which changes
    /// the last bits of a sample's basis; the constraint solves are
    /// independent per sample already.
    ///
    /// Errors: no initial conditions, a wrong length or non-finite values in
    /// one, or a solve that stopped without usable weights (non-finite or
    /// singular).
    pub fn infer(&self, ics: &[Vec<f64>], stream: u64) -> Result<Inference, SolverError> {
        self.infer_keeping(ics, stream, None)
    }

    /// [`Model::infer`], keeping in `kept` (if given) each chunk's basis and
    /// solves for [`Model::infer_backward`].
    fn infer_keeping(
        &self,
        ics: &[Vec<f64>],
        stream: u64,
        mut kept: Option<&mut Vec<KeptChunk>>,
    ) -> Result<Inference, SolverError> {
        self.features.check_ics(ics)?;
        let mut fields = Vec::with_capacity(ics.len());
        let mut statuses = Vec::new();
        let g = self.grid_points();
        let n_basis = self.fno.config().out_dim;
        let narrow = self.fno.config().widest() * self.fno.dtype().size_in_bytes() < n_basis * 8;
        let release_fields =
            narrow && self.fno.inference_bytes(self.features.points()) >= RELEASE_PASS_FROM;
        for chunk in ics.chunks(self.scenario.training.batch_size) {
            let mut values = Vec::new();
            for ic in chunk {
                let basis = self.inferred_backbone(std::slice::from_ref(ic))?;
                // The pass's freed fields go back to the kernel when they are
                // large and narrower than a float64 basis (a float32
                // backbone's, or `widths` below `N`): the heap could hand
                // them neither to the bases nor to the solve's buffers, and
                // would hold them through both (at the Navier–Stokes test
                // resolution of 256² in float32, 2.2 GB). Fields as wide as
                // a basis are taken over by those buffers.
                if release_fields {
                    release_free_memory();
                }
                // Reserved once the first pass has freed its layers' fields,
                // whose heap blocks the values can then take over (the
                // allocator keeps freed blocks below 1 GiB, `malloc.rs` of
                // the CLI): reserved before it, they were a basis more at
                // the peak of a one-sample chunk.
                if values.capacity() == 0 {
                    values.reserve_exact(chunk.len() * g * n_basis);
                }
                append_values(&mut values, &basis)?;
            }
            let u = match &self.constraint {
                None => values,
                Some(c) => {
                    let (forward, _) = c.solve(&values, chunk, stream)?;
                    statuses.extend_from_slice(&forward.statuses);
                    match kept.as_deref_mut() {
                        None => forward.u,
                        Some(kept) => {
                            let u = forward.u.clone();
                            kept.push(KeptChunk {
                                basis: values,
                                forward,
                            });
                            u
                        }
                    }
                }
            };
            fields.extend(u.chunks(g).map(<[f64]>::to_vec));
        }
        Ok(Inference { fields, statuses })
    }

    /// The step's record of a loss `total` with unweighted `parts` and the
    /// solves' statistics (`None` for the soft method).
    fn step_loss(
        total: Tensor,
        parts: &[f64; N_PARTS],
        stats: Option<SolveStats>,
        gradients: Option<SampleGradients>,
    ) -> StepLoss {
        let stats = stats.unwrap_or(SolveStats {
            solves: 0,
            failed: 0,
            iterations_mean: 0.0,
        });
        StepLoss {
            total,
            pde: parts[loss::PDE],
            ic: parts[loss::IC],
            bc: parts[loss::BC],
            data: parts[loss::DATA],
            lm_iterations_mean: stats.iterations_mean,
            failed_solves: stats.failed,
            solves: stats.solves,
            gradients,
        }
    }

    /// The loss parts of the whole batch's `fields`, timed.
    fn losses(&self, fields: &[f64], batch: &Batch) -> Result<LossParts, SolverError> {
        self.phases.time(Phase::Losses, || {
            self.loss
                .evaluate(fields, &batch.ics, batch.targets.as_deref())
        })
    }

    fn loss_weights(&self) -> [f64; N_PARTS] {
        let w = &self.scenario.training.loss;
        [w.pde, w.ic, w.bc, w.data]
    }
}

impl Trainable for Model {
    fn vars(&self) -> &VarMap {
        &self.vars
    }

    fn loss(&mut self, batch: &Batch) -> Result<StepLoss, SolverError> {
        self.loss_shard(batch, &DataShard::whole())
    }

    /// The backbone and the constraint layer run on this rank's samples only;
    /// the fields are gathered so the loss is that of the whole batch.
    fn loss_shard(
        &mut self,
        batch: &Batch,
        shard: &DataShard<'_>,
    ) -> Result<StepLoss, SolverError> {
        let weights = self.loss_weights();
        if weights[loss::DATA] > 0.0 && batch.targets.is_none() {
            return Err(SolverError::InvalidConfig {
                key: "training.loss.data",
                value: weights[loss::DATA].to_string(),
                reason: "an interior data loss needs the batch's target trajectories".into(),
            });
        }
        if self.scenario.parallel.reproducible {
            return self.loss_per_sample(batch, shard, weights);
        }
        let range = shard.range(batch.ics.len());
        let (u, stats) = self.solution_shard(&batch.ics[range.clone()], batch.seed, shard)?;
        let values = shard.gather_fields(&u.flatten_all()?.to_vec1::<f64>()?)?;
        let parts = self.losses(&values, batch)?;
        let vjp_parts = parts.clone();
        let g = self.grid_points();
        let mine = range.start * g..range.end * g;
        let vjp = move |upstream: &[f64]| -> Result<Vec<f64>, SolverError> {
            Ok(vjp_parts.combine(upstream)[mine.clone()].to_vec())
        };
        let part_tensor = ExternalOp::apply(
            "physics-loss",
            &u,
            parts.values.to_vec(),
            N_PARTS,
            Arc::new(vjp),
        )?;
        let w = Tensor::from_vec(weights.to_vec(), N_PARTS, &Device::Cpu)?;
        let total = (part_tensor * w)?.sum_all()?;
        Ok(Self::step_loss(total, &parts.values, stats, None))
    }

    /// See [`Model::infer`]; warm-start state is left unchanged.
    fn predict(&mut self, ics: &[Vec<f64>], seed: u64) -> Result<Prediction, SolverError> {
        let inference = self.infer(ics, seed)?;
        Ok(Prediction {
            failed_solves: inference.statuses.iter().filter(|s| !s.converged()).count(),
            fields: inference.fields,
        })
    }

    fn frozen(&self) -> &[String] {
        &self.scenario.training.freeze
    }

    fn extra_state(&self) -> Vec<(String, Vec<f64>)> {
        self.constraint
            .as_ref()
            .and_then(HardConstraint::warm)
            .map(|w| vec![(WARM_KEY.to_owned(), w.to_vec())])
            .unwrap_or_default()
    }

    fn restore_extra_state(&mut self, state: &[(String, Vec<f64>)]) -> Result<(), SolverError> {
        for (key, values) in state {
            match (&mut self.constraint, key.as_str()) {
                (Some(c), WARM_KEY) => c.set_warm(values.clone())?,
                _ => {
                    return Err(SolverError::InvalidConfig {
                        key: "extra state",
                        value: key.clone(),
                        reason: "not state of this model".into(),
                    });
                }
            }
        }
        Ok(())
    }

    fn phases(&self) -> Option<&PhaseClock> {
        Some(&self.phases)
    }

    /// None for the per-sample step (`parallel.reproducible`): it needs each
    /// sample's gradient through the graph, to add them in sample order.
    fn host_gradient_slot(&self) -> Option<Arc<crate::backbone::host_slot::HostGradientSlot>> {
        if self.scenario.parallel.reproducible {
            return None;
        }
        self.fno.host_gradient_slot()
    }

    /// None for the per-sample step (`parallel.reproducible`): it needs each
    /// sample's gradient on the host, to add them in sample order.
    #[cfg(feature = "cuda")]
    fn gradient_slot(&self) -> Option<Arc<crate::device::GradientSlot>> {
        if self.scenario.parallel.reproducible {
            return None;
        }
        self.fno.gradient_slot()
    }
}

/// The size of a backbone pass's fields from which a prediction gives them
/// back to the kernel once freed (when they are narrower than a basis):
/// below it the walk of the heap and the pages faulted in again by the next
/// pass cost more than the memory is worth (one sample's pass holds 2 MB at
/// the quickstart's grid, 280 MB at the Navier–Stokes paper's 64³ in
/// float64).
const RELEASE_PASS_FROM: usize = 64 << 20;

/// Appends the values of `tensor` (f64 or f32) to `values` as f64, copied
/// once from where they lie on the host (`to_vec1` would copy them into a
/// vector of their own first: for one Navier–Stokes basis at 256², 2.1 GB
/// more at the evaluation's peak); from a device, through `to_vec1`.
fn append_values(values: &mut Vec<f64>, tensor: &Tensor) -> Result<(), SolverError> {
    let tensor = tensor.contiguous()?;
    if !tensor.device().is_cpu() {
        let tensor = tensor.to_dtype(DType::F64)?;
        values.extend(tensor.flatten_all()?.to_vec1::<f64>()?);
        return Ok(());
    }
    let held = tensor.storage_and_layout();
    if tensor.dtype() == DType::F32 {
        let lent = crate::backbone::storage::guarded::<f32>(&held)?;
        values.extend(lent.iter().map(|&v| f64::from(v)));
    } else {
        values.extend_from_slice(crate::backbone::storage::guarded::<f64>(&held)?);
    }
    Ok(())
}
