//! Adam on the device: what a training step of a model whose backbone runs
//! on a GPU keeps there between the backward pass and the next forward pass.
//! The parameter gradient stays where the backward pass made it
//! ([`DeviceGradient`], with the parameters of that pass), Adam's moments live
//! there ([`DeviceMoments`]), and the update runs as one kernel per trained
//! variable; only the norm's partial sums and the updated parameters come
//! back to the host, which sets its variables from them while the device
//! keeps them for the next pass ([`super::resident`]). Before this, every
//! step moved the gradient to the host, split it per variable, and ran
//! clipping and Adam on the host's cores: at the paper's 4.75 M parameters a
//! sixth of a two-core CPU step, time a GPU step spends idle.
//!
//! [`GradientSlot`] is how the trainer asks for this: it arms the slot of a
//! model's backbone for one step ([`GradientSlot::arm`]); a forward pass on
//! an armed slot ties its output to the slot's one-element anchor variable
//! instead of the parameters, so the graph's backward pass does not carry
//! the gradient through the host's variables; the backbone's device op leaves
//! it in the slot, and the trainer takes it from the [`ArmedSlot`]. An
//! unarmed slot changes nothing, so gradient checks and the per-sample
//! (`parallel.reproducible`) path get their gradients as before.

use std::any::Any;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, TensorId, Var};
use tessera_constraints::gpu::GpuError;

use super::backbone::NetworkOnDevice;
use super::executor::{DeviceArray, Executor};
use super::ops::Ops;
use super::resident::ResidentParams;

/// One Adam update's scalars, in the form and order of the host optimiser's
/// arithmetic (`crate::Adam`): the clip scale, then the decay rates, the bias
/// corrections `1 / (1 − βᵗ)`, `ε` and the learning rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamScalars {
    /// Multiplies the gradient first (global-norm clipping); 1 leaves it.
    pub scale: f64,
    /// `β₁`.
    pub beta1: f64,
    /// `1 − β₁`.
    pub one_minus_beta1: f64,
    /// `β₂`.
    pub beta2: f64,
    /// `1 − β₂`.
    pub one_minus_beta2: f64,
    /// `1 / (1 − β₁ᵗ)`.
    pub unbias1: f64,
    /// `1 / (1 − β₂ᵗ)`.
    pub unbias2: f64,
    /// Added to `√v̂`.
    pub eps: f64,
    /// The learning rate.
    pub lr: f64,
}

/// A packed parameter gradient on the device, with the packed parameters of
/// the forward pass it is the gradient at (which Adam then updates).
pub struct DeviceGradient {
    len: usize,
    kept: Box<dyn Any + Send>,
}

impl std::fmt::Debug for DeviceGradient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceGradient({} values)", self.len)
    }
}

impl DeviceGradient {
    /// Number of packed parameters.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the network has no parameters.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Adam's first and second moments of every packed parameter, on the device.
pub struct DeviceMoments {
    len: usize,
    kept: Box<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for DeviceMoments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceMoments({} values)", self.len)
    }
}

impl DeviceMoments {
    /// Number of packed parameters.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the moments are empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Elements per block of the squared-norm kernel: enough work per block to
/// hide its reduction, few enough blocks that their sums are a small download.
const SQUARES_PER_BLOCK: usize = 1 << 14;

/// The device side of [`NetworkOnDevice`]'s optimiser methods, for one
/// executor.
pub(super) struct OnExecutor<'e, E: Executor>(pub(super) &'e E);

struct Kept<B> {
    params: B,
    grad: B,
}

fn foreign() -> GpuError {
    GpuError::Unsupported("optimiser state of another device".into())
}

impl<E> OnExecutor<'_, E>
where
    E: Executor,
    E::Buffer: Send + Sync + 'static,
{
    pub(super) fn gradient(&self, params: E::Buffer, grad: E::Buffer) -> DeviceGradient {
        DeviceGradient {
            len: grad.len(),
            kept: Box::new(Kept { params, grad }),
        }
    }

    fn kept<'g>(&self, gradient: &'g DeviceGradient) -> Result<&'g Kept<E::Buffer>, GpuError> {
        gradient.kept.downcast_ref().ok_or_else(foreign)
    }

    pub(super) fn gradient_values(&self, gradient: &DeviceGradient) -> Result<Vec<f64>, GpuError> {
        self.0.download(&self.kept(gradient)?.grad)
    }

    pub(super) fn set_gradient_values(
        &self,
        gradient: &mut DeviceGradient,
        values: &[f64],
    ) -> Result<(), GpuError> {
        check_len("gradient values", values.len(), gradient.len)?;
        let kept: &mut Kept<E::Buffer> = gradient.kept.downcast_mut().ok_or_else(foreign)?;
        kept.grad = self.0.upload(values)?;
        Ok(())
    }

    pub(super) fn squared_norms(
        &self,
        gradient: &DeviceGradient,
        segments: &[Range<usize>],
    ) -> Result<Vec<f64>, GpuError> {
        let grad = &self.kept(gradient)?.grad;
        let blocks: Vec<usize> = segments
            .iter()
            .map(|s| s.len().div_ceil(SQUARES_PER_BLOCK))
            .collect();
        let mut sums = self.0.zeros(blocks.iter().sum::<usize>().max(1))?;
        let ops = Ops::new(self.0);
        let mut at = 0;
        for segment in segments {
            at += ops.squares((grad, segment.clone()), SQUARES_PER_BLOCK, (&mut sums, at))?;
        }
        let sums = self.0.download(&sums)?;
        let mut at = 0;
        Ok(blocks
            .iter()
            .map(|&n| {
                at += n;
                sums[at - n..at].iter().sum()
            })
            .collect())
    }

    pub(super) fn upload_moments(&self, m: &[f64], v: &[f64]) -> Result<DeviceMoments, GpuError> {
        check_len("second moment", v.len(), m.len())?;
        Ok(DeviceMoments {
            len: m.len(),
            kept: Box::new([self.0.upload(m)?, self.0.upload(v)?]),
        })
    }

    pub(super) fn moment_values(&self, moments: &DeviceMoments) -> Result<[Vec<f64>; 2], GpuError> {
        let [m, v]: &[E::Buffer; 2] = moments.kept.downcast_ref().ok_or_else(foreign)?;
        Ok([self.0.download(m)?, self.0.download(v)?])
    }

    pub(super) fn adam(
        &self,
        gradient: DeviceGradient,
        moments: &mut DeviceMoments,
        segments: &[Range<usize>],
        scalars: &AdamScalars,
    ) -> Result<E::Buffer, GpuError> {
        check_len("Adam moments", moments.len, gradient.len)?;
        let kept: Box<Kept<E::Buffer>> = gradient.kept.downcast().map_err(|_| foreign())?;
        let Kept { mut params, grad } = *kept;
        let [m, v]: &mut [E::Buffer; 2] = moments.kept.downcast_mut().ok_or_else(foreign)?;
        let ops = Ops::new(self.0);
        for segment in segments {
            ops.adam(segment.clone(), &mut params, &grad, (m, v), scalars)?;
        }
        Ok(params)
    }
}

fn check_len(what: &str, got: usize, expected: usize) -> Result<(), GpuError> {
    if got == expected {
        Ok(())
    } else {
        Err(GpuError::Unsupported(format!(
            "{what}: {got} values for {expected} parameters"
        )))
    }
}

/// Where a backbone's device op leaves its parameter gradient while the
/// trainer has armed it (see the module doc), with what the trainer needs to
/// use it: the network, where each variable sits in the packed vector, and
/// the packed parameters the device keeps between steps (the update's
/// result, which the next pass reads unless a variable changed on the host).
#[derive(Debug)]
pub struct GradientSlot {
    network: Arc<dyn NetworkOnDevice>,
    ranges: Vec<(TensorId, Range<usize>)>,
    anchor: Var,
    state: Mutex<Slot>,
    /// The parameters the passes read on the device: the last ones
    /// uploaded or the last update's.
    params: ResidentParams,
}

#[derive(Debug)]
enum Slot {
    Idle,
    Armed,
    Filled(DeviceGradient),
}

impl GradientSlot {
    /// An idle slot for the network on `network` whose variables (by their
    /// tensors' ids) sit at `ranges` of the packed vector, in `dtype`.
    ///
    /// Errors: a dtype candle cannot hold.
    pub fn new(
        network: Arc<dyn NetworkOnDevice>,
        ranges: Vec<(TensorId, Range<usize>)>,
        dtype: DType,
    ) -> candle_core::Result<Self> {
        Ok(Self {
            network,
            ranges,
            anchor: Var::zeros(1, dtype, &Device::Cpu)?,
            state: Mutex::new(Slot::Idle),
            params: ResidentParams::default(),
        })
    }

    /// The packed parameters the backbone keeps on the device between its
    /// passes and updates.
    pub(crate) fn params(&self) -> &ResidentParams {
        &self.params
    }

    /// What an armed forward pass ties its output to in place of the
    /// parameters: a variable of one element, the backbone's dtype.
    pub(crate) fn anchor(&self) -> &Var {
        &self.anchor
    }

    /// The device the gradient is on.
    pub fn network(&self) -> &Arc<dyn NetworkOnDevice> {
        &self.network
    }

    /// Where the variable whose tensor has id `id` sits in the packed vector.
    pub fn range_of(&self, id: TensorId) -> Option<Range<usize>> {
        crate::backbone::host_slot::range_in(&self.ranges, id)
    }

    /// Keeps the next backward pass's gradient here until the returned guard
    /// is dropped.
    pub fn arm(self: &Arc<Self>) -> ArmedSlot {
        *self.lock() = Slot::Armed;
        ArmedSlot(Arc::clone(self))
    }

    /// Whether a backward pass should leave its gradient here.
    pub(crate) fn is_armed(&self) -> bool {
        matches!(*self.lock(), Slot::Armed)
    }

    /// Leaves `gradient` here.
    ///
    /// Errors: a gradient is here already (two backward passes in one armed
    /// step, whose sum this slot does not form), or the slot is not armed.
    pub(crate) fn fill(&self, gradient: DeviceGradient) -> Result<(), GpuError> {
        let mut state = self.lock();
        match *state {
            Slot::Armed => {
                *state = Slot::Filled(gradient);
                Ok(())
            }
            Slot::Filled(_) => Err(GpuError::Unsupported(
                "a second backward pass through the backbone in one optimiser step".into(),
            )),
            Slot::Idle => Err(GpuError::Unsupported(
                "a backward pass of an armed forward pass after its step".into(),
            )),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        // The state is a plain value: a panic elsewhere cannot break it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An armed [`GradientSlot`]; dropping it disarms the slot (and drops a
/// gradient not taken).
#[derive(Debug)]
pub struct ArmedSlot(Arc<GradientSlot>);

impl ArmedSlot {
    /// The gradient a backward pass left, if one did.
    pub fn take(&self) -> Option<DeviceGradient> {
        let mut state = self.0.lock();
        match std::mem::replace(&mut *state, Slot::Armed) {
            Slot::Filled(gradient) => Some(gradient),
            other => {
                *state = other;
                None
            }
        }
    }

    /// The slot.
    pub fn slot(&self) -> &GradientSlot {
        &self.0
    }
}

impl Drop for ArmedSlot {
    fn drop(&mut self) {
        *self.0.lock() = Slot::Idle;
    }
}
