//! The training step of `parallel.reproducible`: the backbone runs and
//! back-propagates one sample at a time, so each sample's basis and gradient
//! have the same bits whichever rank computes it and whatever else is in its
//! block; the trainer then adds the per-sample gradients in global sample
//! order ([`crate::DataShard::sum_in_sample_order`]).
//!
//! The backward pass is taken apart: the loss of the whole batch gives `∂L/∂u`
//! (every rank holds the same), the constraint layer's backward gives
//! `∂L/∂B` of this rank's samples, and one backward pass per sample through
//! its backbone, of `⟨B_b, ∂L/∂B_b⟩`, gives that sample's gradient.

use candle_core::{DType, Device, Tensor};

use super::{Model, loss};
use crate::SolverError;
use crate::parallel::DataShard;
use crate::phases::Phase;
use crate::train::named_vars;
use crate::trainable::{Batch, SampleGradients, StepLoss};

impl Model {
    /// [`crate::Trainable::loss_shard`] with per-sample gradients; `weights`
    /// are the loss weights.
    pub(super) fn loss_per_sample(
        &mut self,
        batch: &Batch,
        shard: &DataShard<'_>,
        weights: [f64; loss::N_PARTS],
    ) -> Result<StepLoss, SolverError> {
        let range = shard.range(batch.ics.len());
        let ics = &batch.ics[range.clone()];
        let bases = ics
            .iter()
            .map(|ic| self.backbone(std::slice::from_ref(ic)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut values = Vec::new();
        for basis in &bases {
            values.extend(basis.flatten_all()?.to_vec1::<f64>()?);
        }
        let (u, forward, stats) = match &mut self.constraint {
            None => (values.clone(), None, None),
            Some(c) => {
                let (forward, stats) = self.phases.time(Phase::Solves, || {
                    c.solve_shard(&values, ics, batch.seed, shard)
                })?;
                (forward.u.clone(), Some(forward), Some(stats))
            }
        };
        let fields = shard.gather_fields(&u)?;
        let parts = self.losses(&fields, batch)?;
        let g = self.grid_points();
        let u_bar = parts.combine(&weights)[range.start * g..range.end * g].to_vec();
        let basis_bar = match (&self.constraint, &forward) {
            (Some(c), Some(f)) => self.phases.time(Phase::ConstraintBackward, || {
                c.layer().backward(f, &values, &u_bar)
            })?,
            _ => u_bar,
        };
        let vars = named_vars(self)?;
        let per_sample = basis_bar.len() / bases.len().max(1);
        let mut samples = Vec::with_capacity(bases.len());
        for (basis, bar) in bases.iter().zip(basis_bar.chunks(per_sample)) {
            let bar = Tensor::from_slice(bar, basis.shape(), basis.device())?;
            let store = (basis * bar)?.sum_all()?.backward()?;
            let mut flat = Vec::new();
            for var in vars.values() {
                match store.get(var.as_tensor()) {
                    Some(grad) => {
                        flat.extend(grad.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?);
                    }
                    None => flat.extend(std::iter::repeat_n(0.0, var.elem_count())),
                }
            }
            samples.push(flat);
        }
        let layout = vars
            .into_iter()
            .map(|(name, var)| (name, var.shape().clone()))
            .collect();
        let total: f64 = parts.values.iter().zip(&weights).map(|(p, w)| p * w).sum();
        Ok(Self::step_loss(
            Tensor::new(total, &Device::Cpu)?,
            &parts.values,
            stats,
            Some(SampleGradients { layout, samples }),
        ))
    }
}
