//! One optimiser update of a model on a batch: loss, backward pass (through the
//! constraint layer's implicit-function-theorem op), global-norm clipping and
//! an Adam step. Shared by the trainer and the `bench train-step` benchmark so
//! the benchmark times exactly what training does. With the backbone on a GPU
//! the clipping and Adam run there too (`update/device.rs`, feature `cuda`).

use std::collections::BTreeMap;

use candle_core::{DType, Tensor, Var};

use super::adam::Adam;
use super::clip::{clip_scale, global_norm};
use super::metrics::StepRecord;
use crate::SolverError;
use crate::backbone::host_slot::ArmedHostSlot;
use crate::parallel::DataShard;
use crate::phases::{Phase, PhaseClock};
use crate::trainable::{Batch, SampleGradients, StepLoss, Trainable};

#[cfg(feature = "cuda")]
mod device;

/// A model's gradient slot armed for one step (feature `cuda`).
#[cfg(feature = "cuda")]
type Armed = crate::device::ArmedSlot;
/// Without the `cuda` feature nothing is ever armed.
#[cfg(not(feature = "cuda"))]
type Armed = std::convert::Infallible;

/// The model's variables by name, as the optimiser sees them (cheap handles
/// sharing storage with the model's): all but the [frozen](Trainable::frozen)
/// groups, which keep their values, get no optimiser state and do not count in
/// the gradient norm.
///
/// Errors: a frozen group that names no variable (the message lists the
/// groups there are), or one that freezes every variable.
pub fn named_vars<M: Trainable + ?Sized>(model: &M) -> Result<BTreeMap<String, Var>, SolverError> {
    let vars = model
        .vars()
        .data()
        .lock()
        .map_err(|_| SolverError::InvalidConfig {
            key: "model variables",
            value: "poisoned lock".into(),
            reason: "an earlier panic left the variable map unusable".into(),
        })?;
    let in_group = |name: &str, group: &str| {
        name.strip_prefix(group)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    };
    let frozen = model.frozen();
    let invalid = |value: String, reason: String| SolverError::InvalidConfig {
        key: "training.freeze",
        value,
        reason,
    };
    if let Some(group) = frozen
        .iter()
        .find(|g| !vars.keys().any(|name| in_group(name, g)))
    {
        let mut groups: Vec<&str> = vars
            .keys()
            .map(|name| {
                name.rsplit_once('.')
                    .map_or(name.as_str(), |(head, _)| head)
            })
            .collect();
        groups.sort_unstable();
        groups.dedup();
        return Err(invalid(
            group.clone(),
            format!("names no variable; the groups are {}", groups.join(", ")),
        ));
    }
    let trained: BTreeMap<String, Var> = vars
        .iter()
        .filter(|(name, _)| !frozen.iter().any(|g| in_group(name, g)))
        .map(|(name, var)| (name.clone(), var.clone()))
        .collect();
    if trained.is_empty() && !vars.is_empty() {
        return Err(invalid(
            format!("{frozen:?}"),
            "freezes every variable: nothing would train".into(),
        ));
    }
    Ok(trained)
}

/// Applies one update with learning rate `lr` and clip limit `clip_norm` and
/// returns its record (`step`, `seconds` and `validation` left for the caller).
/// A non-finite loss is an error before any variable changes.
pub fn update<M: Trainable + ?Sized>(
    model: &mut M,
    batch: &Batch,
    vars: &BTreeMap<String, Var>,
    adam: &mut Adam,
    lr: f64,
    clip_norm: f64,
) -> Result<StepRecord, SolverError> {
    update_shard(model, batch, vars, adam, lr, clip_norm, &DataShard::whole())
}

/// [`update`] of the global `batch` of which this rank computes `shard`: the
/// gradients are summed over the data ranks before clipping, so every rank
/// applies the same Adam update to the same variables.
pub fn update_shard<M: Trainable + ?Sized>(
    model: &mut M,
    batch: &Batch,
    vars: &BTreeMap<String, Var>,
    adam: &mut Adam,
    lr: f64,
    clip_norm: f64,
    shard: &DataShard<'_>,
) -> Result<StepRecord, SolverError> {
    #[cfg(feature = "cuda")]
    let armed = device::arm(&*model, vars);
    #[cfg(not(feature = "cuda"))]
    let armed = None;
    let host = arm_host(&*model, vars);
    let loss = model.loss_shard(batch, shard)?;
    let total = loss.total.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    if !total.is_finite() {
        return Err(SolverError::NonFinite {
            what: "training loss",
            count: 1,
        });
    }
    let clock = model.phases();
    let grad_norm = match &loss.gradients {
        None => backward_step(
            &*model,
            &loss,
            (armed, host),
            vars,
            adam,
            (lr, clip_norm),
            shard,
        )?,
        Some(per_sample) => {
            let mut grads = timed(clock, || summed_per_sample(per_sample, vars, shard))?;
            timed(clock, || {
                clip_and_step(&mut grads, vars, adam, (lr, clip_norm))
            })?
        }
    };
    Ok(StepRecord {
        step: 0,
        lr,
        loss: total,
        pde: loss.pde,
        ic: loss.ic,
        bc: loss.bc,
        data: loss.data,
        grad_norm,
        lm_iterations_mean: loss.lm_iterations_mean,
        failed_solves: loss.failed_solves,
        solves: loss.solves,
        seconds: 0.0,
        validation: None,
        stopped: None,
    })
}

/// `model`'s host gradient slot armed for one backward pass, if its
/// backbone runs on the CPU and every trained variable is one of that
/// network's.
fn arm_host<M: Trainable + ?Sized>(
    model: &M,
    vars: &BTreeMap<String, Var>,
) -> Option<ArmedHostSlot> {
    let slot = model.host_gradient_slot()?;
    all_packed(vars, |id| slot.range_of(id)).then(|| slot.arm())
}

/// Whether every one of `vars` has a place (`range_of` its tensor's id) in
/// a slot's packed vector: a slot is armed only then.
fn all_packed(
    vars: &BTreeMap<String, Var>,
    range_of: impl Fn(candle_core::TensorId) -> Option<std::ops::Range<usize>>,
) -> bool {
    vars.values()
        .all(|var| range_of(var.as_tensor().id()).is_some())
}

/// Back-propagates `loss`, sums the gradients over the data ranks, clips them
/// and applies Adam; returns the gradient norm before clipping. With the
/// backbone on a GPU and its slot `armed` for this step, the gradient stays
/// there for the optimiser ([`device::step`]); with the backbone on the CPU
/// and its slot armed (`host`), the gradients are views of the one it left.
#[cfg_attr(not(feature = "cuda"), allow(unused_variables))]
fn backward_step<M: Trainable + ?Sized>(
    model: &M,
    loss: &StepLoss,
    (armed, host): (Option<Armed>, Option<ArmedHostSlot>),
    vars: &BTreeMap<String, Var>,
    adam: &mut Adam,
    rates: (f64, f64),
    shard: &DataShard<'_>,
) -> Result<f64, SolverError> {
    let clock = model.phases();
    let store = loss.total.backward()?;
    #[cfg(feature = "cuda")]
    if let Some(armed) = &armed
        && let Some(gradient) = armed.take()
    {
        return timed(clock, || {
            device::step(armed.slot(), gradient, vars, adam, rates, shard)
        });
    }
    let packed = host.as_ref().and_then(ArmedHostSlot::take);
    let mut grads: BTreeMap<String, Tensor> = match (&host, &packed) {
        (Some(host), Some(packed)) => host.slot().gradients(packed, vars)?,
        _ => vars
            .iter()
            .filter_map(|(name, var)| {
                store
                    .get(var.as_tensor())
                    .map(|g| (name.clone(), g.clone()))
            })
            .collect(),
    };
    timed(clock, || shard.sum_gradients(&mut grads))?;
    let norm = timed(clock, || clip_and_step(&mut grads, vars, adam, rates))?;
    drop(grads);
    if let (Some(host), Some(packed)) = (host, packed) {
        host.slot().recycle(packed);
    }
    Ok(norm)
}

/// Clips `grads` to global norm `clip_norm` and applies Adam with learning
/// rate `lr`; returns the norm before clipping.
fn clip_and_step(
    grads: &mut BTreeMap<String, Tensor>,
    vars: &BTreeMap<String, Var>,
    adam: &mut Adam,
    (lr, clip_norm): (f64, f64),
) -> Result<f64, SolverError> {
    let norm = global_norm(grads)?;
    adam.step_clipped(vars, grads, lr, clip_scale(norm, clip_norm, grads.len())?)?;
    Ok(norm)
}

/// Runs `f` as part of the [`Phase::Optimiser`] on `clock`, if any.
fn timed<T>(clock: Option<&PhaseClock>, f: impl FnOnce() -> T) -> T {
    match clock {
        Some(clock) => clock.time(Phase::Optimiser, f),
        None => f(),
    }
}

/// The per-sample gradients summed over the data ranks in global sample
/// order, as one tensor per variable.
fn summed_per_sample(
    per_sample: &SampleGradients,
    vars: &BTreeMap<String, Var>,
    shard: &DataShard<'_>,
) -> Result<BTreeMap<String, Tensor>, SolverError> {
    let flat = shard.sum_in_sample_order(&per_sample.samples)?;
    let expected: usize = per_sample.layout.iter().map(|(_, s)| s.elem_count()).sum();
    if flat.len() != expected {
        return Err(SolverError::ShapeMismatch {
            what: "per-sample gradients (the variables' layout)",
            expected: vec![expected],
            got: vec![flat.len()],
        });
    }
    let mut grads = BTreeMap::new();
    let mut offset = 0;
    for (name, shape) in &per_sample.layout {
        let len = shape.elem_count();
        let var = vars.get(name).ok_or_else(|| SolverError::ShapeMismatch {
            what: "per-sample gradient layout (a variable the optimiser does not know)",
            expected: vec![vars.len()],
            got: vec![per_sample.layout.len()],
        })?;
        let summed = Tensor::from_slice(&flat[offset..offset + len], shape, var.device())?;
        grads.insert(name.clone(), summed.to_dtype(var.dtype())?);
        offset += len;
    }
    Ok(grads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Model;
    use crate::tests::model_common;
    use crate::tests::model_methods::batch;
    use crate::train::AdamConfig;

    /// Armed, the backbone's backward pass leaves the gradient in the slot
    /// and the graph carries none to the variables; disarmed, the graph
    /// does.
    #[test]
    fn an_armed_pass_leaves_its_gradient_in_the_slot() {
        let s = model_common::diffusion_sorption("moe", "");
        let mut model = Model::new(&s).unwrap();
        let vars = named_vars(&model).unwrap();
        let b = batch(&s, 1);
        let host = arm_host(&model, &vars).expect("a CPU backbone has a slot");
        let store = model.loss(&b).unwrap().total.backward().unwrap();
        assert!(vars.values().all(|v| store.get(v.as_tensor()).is_none()));
        let packed = host.take().expect("the gradient is in the slot");
        let grads = host.slot().gradients(&packed, &vars).unwrap();
        assert_eq!(grads.len(), vars.len());
        drop(host);
        let store = model.loss(&b).unwrap().total.backward().unwrap();
        for (name, var) in &vars {
            let graph = store.get(var.as_tensor()).expect("disarmed: the graph's");
            let diff = (graph - &grads[name]).unwrap().abs().unwrap();
            let diff = diff.flatten_all().unwrap().max(0).unwrap();
            assert_eq!(diff.to_scalar::<f64>().unwrap(), 0.0, "{name}");
        }
    }

    /// Steps through the host slot update the variables and Adam's moments
    /// to the bits of steps through candle's graph: for each method and a
    /// float32 backbone, over three steps (the later ones writing into the
    /// buffer the earlier handed back), with a clip limit that some steps
    /// exceed.
    #[test]
    fn steps_through_the_slot_are_the_graphs() {
        let cases = [
            ("soft", None),
            ("hard", None),
            ("moe", None),
            ("moe", Some("model.dtype=\"f32\"")),
        ];
        for (method, setting) in cases {
            let mut s = model_common::diffusion_sorption(method, "");
            if let Some(setting) = setting {
                s.set(setting).unwrap();
            }
            let run = |armed: bool| -> (Vec<u64>, Vec<u64>) {
                let mut model = Model::new(&s).unwrap();
                let vars = named_vars(&model).unwrap();
                let mut adam = Adam::new(AdamConfig::default());
                let mut norms = Vec::new();
                for step in 0..3 {
                    let host = armed.then(|| arm_host(&model, &vars).expect("a slot"));
                    let shard = DataShard::whole();
                    let loss = model.loss_shard(&batch(&s, step), &shard).unwrap();
                    let rates = (1e-2, 0.05);
                    let norm =
                        backward_step(&model, &loss, (None, host), &vars, &mut adam, rates, &shard)
                            .unwrap();
                    norms.push(norm.to_bits());
                }
                let state = adam.state().unwrap();
                let tensors = vars
                    .values()
                    .map(|v| v.as_tensor())
                    .chain(state.iter().map(|(_, t)| t));
                let bits = tensors
                    .flat_map(|t| {
                        let t = t.to_dtype(DType::F64).unwrap().flatten_all().unwrap();
                        t.to_vec1::<f64>().unwrap()
                    })
                    .map(f64::to_bits)
                    .collect();
                (bits, norms)
            };
            let (slot, graph) = (run(true), run(false));
            assert!(
                graph.1.iter().any(|&n| f64::from_bits(n) > 0.05),
                "{method}: some step clips"
            );
            assert_eq!(slot, graph, "{method} {setting:?}");
        }
    }
}
