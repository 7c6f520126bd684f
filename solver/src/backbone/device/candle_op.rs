//! The FNO on a device as one candle op, in place of the CPU's fused op: the
//! graph stays on the host, the network's passes run on the device
//! ([`NetworkOnDevice`](super::NetworkOnDevice)). A float32 backbone's
//! tensors cross as f64 and are rounded back; the device computes in
//! float32. The parameters are uploaded only when they differ from those
//! the device keeps (the last ones uploaded or the last update's:
//! [`super::resident`]). While the trainer has armed the backbone's
//! [`GradientSlot`], the op is tied to the slot's anchor and its backward
//! pass leaves the parameter gradient in the slot, on the device, instead
//! of in the graph.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, StorageRef, Tensor};

use super::backbone::DevicePass;
use super::optimiser::GradientSlot;
use super::resident::HostParams;
use crate::backbone::FnoConfig;
use crate::backbone::storage::slice;

/// One forward pass of the network on a device (it keeps that pass for the
/// backward pass).
pub(crate) struct DeviceNetworkOp {
    config: FnoConfig,
    grid: Vec<usize>,
    /// The backbone's slot: its network, the parameters it keeps on the
    /// device, and (armed) where the gradient goes.
    slot: Arc<GradientSlot>,
    /// The tensors holding the parameters of a forward pass tied to the
    /// slot's anchor (the op's second argument) instead of to them.
    held: Option<Vec<Tensor>>,
    pass: Mutex<Option<DevicePass>>,
}

impl DeviceNetworkOp {
    /// The op for `config` on a grid of point shape `grid`, on `slot`'s
    /// network; its second argument is the packed parameters.
    pub(crate) fn new(slot: Arc<GradientSlot>, config: FnoConfig, grid: Vec<usize>) -> Self {
        Self {
            config,
            grid,
            slot,
            held: None,
            pass: Mutex::new(None),
        }
    }

    /// The op with its parameters the values of `params` (one after the
    /// other, in packing order) and its second argument the slot's anchor:
    /// its backward pass leaves the parameter gradient in the slot.
    pub(crate) fn leaving_gradient_in(mut self, params: Vec<Tensor>) -> Self {
        self.held = Some(params);
        self
    }
}

/// The contiguous values of `storage` as f64 (a float32 tensor's widened).
fn widened<'a>(storage: &'a CpuStorage, layout: &Layout) -> candle_core::Result<Cow<'a, [f64]>> {
    Ok(match storage {
        CpuStorage::F32(_) => slice::<f32>(storage, layout)?
            .iter()
            .map(|&v| f64::from(v))
            .collect(),
        _ => slice::<f64>(storage, layout)?.into(),
    })
}

/// [`widened`] for the values behind a tensor's storage guard (from
/// `Tensor::storage_and_layout`): borrowed, not copied, as the tensors the
/// op reads this way are tens of MiB.
pub(super) fn widened_held<'a>(
    (storage, layout): &'a (StorageRef<'_>, &Layout),
) -> candle_core::Result<Cow<'a, [f64]>> {
    match &**storage {
        candle_core::Storage::Cpu(storage) => widened(storage, layout),
        _ => candle_core::bail!("fno: a tensor off the CPU"),
    }
}

impl CustomOp2 for DeviceNetworkOp {
    fn name(&self) -> &'static str {
        "fno-on-device"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let packed;
        let host = match &self.held {
            Some(tensors) => HostParams::Tensors(tensors),
            None => {
                packed = widened(s2, l2)?;
                HostParams::Packed(&packed)
            }
        };
        let features = widened(s1, l1)?;
        let network = self.slot.network();
        let (out, pass) = self.slot.params().with(&**network, host, |params| {
            network.forward(&self.config, &self.grid, &features, params)
        })?;
        match self.pass.lock() {
            Ok(mut guard) => *guard = Some(pass),
            Err(_) => candle_core::bail!("fno: device pass store poisoned"),
        }
        let mut shape = l1.dims().to_vec();
        *shape.last_mut().expect("rank ≥ 1") = self.config.out_dim;
        let out = match s2 {
            CpuStorage::F32(_) => CpuStorage::F32(out.into_iter().map(|v| v as f32).collect()),
            _ => CpuStorage::F64(out),
        };
        Ok((out, Shape::from(shape)))
    }

    /// The features' gradient when they are tracked (a prediction
    /// differentiated in its initial condition), and the parameters'. Tied
    /// to a slot's anchor, the anchor gets zero and the parameters' gradient
    /// stays on the device, in the slot; detached parameters get none.
    fn bwd(
        &self,
        arg1: &Tensor,
        arg2: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let pass = match self.pass.lock() {
            Ok(mut guard) => guard.take(),
            Err(_) => candle_core::bail!("fno: device pass store poisoned"),
        };
        let Some(pass) = pass else {
            candle_core::bail!(
                "fno: backward needs a fresh forward pass (run backward once per loss)"
            )
        };
        let grad_res = grad_res.contiguous()?;
        let held = grad_res.storage_and_layout();
        let g = widened_held(&held)?;
        let network = self.slot.network();
        let (gradient, features_grad) = if arg1.track_op() {
            let (gradient, gx) = network
                .backward_with_features(pass, &g)
                .map_err(candle_core::Error::wrap)?;
            let gx = Tensor::from_vec(gx, arg1.shape(), arg1.device())?.to_dtype(arg1.dtype())?;
            (gradient, Some(gx))
        } else {
            let gradient = network
                .backward_on_device(pass, &g)
                .map_err(candle_core::Error::wrap)?;
            (gradient, None)
        };
        if self.held.is_some() {
            self.slot.fill(gradient).map_err(candle_core::Error::wrap)?;
            return Ok((features_grad, Some(arg2.zeros_like()?)));
        }
        if !arg2.track_op() {
            return Ok((features_grad, None));
        }
        let gp = network
            .gradient_values(&gradient)
            .map_err(candle_core::Error::wrap)?;
        let gp = Tensor::from_vec(gp, arg2.shape(), arg2.device())?.to_dtype(arg2.dtype())?;
        Ok((features_grad, Some(gp)))
    }
}
