//! The update of a model whose backbone runs on a GPU (feature `cuda`): the
//! parameter gradient stays where the backward pass made it, the global norm
//! is summed there, and Adam runs there ([`crate::device::GradientSlot`]);
//! the variables on the host receive the updated values (in parallel: at
//! the Navier–Stokes paper scale they are a gigabyte), and the device keeps
//! them for the next forward pass. Over several ranks
//! the gradient visits the host for the sum, in the host path's per-variable
//! layout, so both paths sum alike.

use std::collections::BTreeMap;

use candle_core::{DType, Tensor, Var};
use rayon::prelude::*;

use crate::SolverError;
use crate::train::clip::clip_scale;
use tessera_constraints::gpu::{GpuTimes, Stopwatch};

use crate::device::{ArmedSlot, BackboneTimes, DeviceGradient, GradientSlot};
use crate::parallel::DataShard;
use crate::train::adam::Adam;
use crate::train::adam::device::PackedVar;
use crate::trainable::Trainable;

/// `model`'s gradient slot armed for one backward pass, if its backbone runs
/// on a device and every trained variable is one of that network's.
pub(super) fn arm<M: Trainable + ?Sized>(
    model: &M,
    vars: &BTreeMap<String, Var>,
) -> Option<ArmedSlot> {
    let slot = model.gradient_slot()?;
    super::all_packed(vars, |id| slot.range_of(id)).then(|| slot.arm())
}

/// Sums the kept `gradient` over the data ranks, clips it to global norm
/// `clip_norm` and applies Adam with learning rate `lr` to `vars`, all but
/// the sum on the device; returns the norm before clipping.
///
/// Errors: a non-finite gradient (before any variable changes), or the
/// device's.
pub(super) fn step(
    slot: &GradientSlot,
    mut gradient: DeviceGradient,
    vars: &BTreeMap<String, Var>,
    adam: &mut Adam,
    (lr, clip_norm): (f64, f64),
    shard: &DataShard<'_>,
) -> Result<f64, SolverError> {
    let network = slot.network();
    let packed = vars
        .iter()
        .map(|(name, var)| {
            let range =
                slot.range_of(var.as_tensor().id())
                    .ok_or_else(|| SolverError::ShapeMismatch {
                        what: "trained variables outside the device network",
                        expected: vec![gradient.len()],
                        got: vec![var.elem_count()],
                    })?;
            Ok(PackedVar {
                name: name.clone(),
                range,
                shape: var.shape().clone(),
                dtype: var.dtype(),
            })
        })
        .collect::<Result<Vec<_>, SolverError>>()?;
    if !shard.is_whole() {
        let mut values = network.gradient_values(&gradient)?;
        let mut grads = BTreeMap::new();
        for var in &packed {
            let g = Tensor::from_slice(
                &values[var.range.clone()],
                var.shape.clone(),
                &candle_core::Device::Cpu,
            )?;
            grads.insert(var.name.clone(), g.to_dtype(var.dtype)?);
        }
        shard.sum_gradients(&mut grads)?;
        for var in &packed {
            let summed = grads[&var.name].to_dtype(DType::F64)?.flatten_all()?;
            values[var.range.clone()].copy_from_slice(&summed.to_vec1::<f64>()?);
        }
        network.set_gradient_values(&mut gradient, &values)?;
    }
    let segments: Vec<_> = packed.iter().map(|v| v.range.clone()).collect();
    let norm = network
        .squared_norms(&gradient, &segments)?
        .iter()
        .sum::<f64>()
        .sqrt();
    let scale = clip_scale(norm, clip_norm, vars.len())?.unwrap_or(1.0);
    let (params, on_device) = adam.step_on_device(network, gradient, &packed, lr, scale)?;
    let mut watch = Stopwatch::start();
    let set: Vec<(&Var, &PackedVar)> = vars.values().zip(&packed).collect();
    set.par_iter()
        .try_for_each(|(var, at)| -> candle_core::Result<()> {
            let values =
                Tensor::from_slice(&params[at.range.clone()], at.shape.clone(), var.device())?;
            var.set(&values.to_dtype(at.dtype)?)
        })?;
    slot.params().keep(params, on_device);
    network.record(BackboneTimes {
        update: GpuTimes {
            pack_s: watch.lap(),
            ..GpuTimes::default()
        },
        ..BackboneTimes::default()
    });
    Ok(norm)
}
