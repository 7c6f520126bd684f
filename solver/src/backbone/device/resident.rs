//! The packed parameters a backbone keeps on its device between passes
//! ([`ResidentParams`]), with the host values they were made from.
//!
//! Without them every forward pass on the device packed the variables (a
//! copy of every parameter on the host) and uploaded the pack, although the
//! Adam update on the device had just left those very values there and
//! brought them down to set the variables: at the Navier–Stokes paper scale
//! (134 M parameters) a gigabyte packed and a gigabyte uploaded per step
//! for nothing. Now the update's result stays on the device, and a pass
//! uploads only when the host's values differ from the ones kept beside it.
//! The check is exact (bit for bit, value by value) rather than a version
//! counter because anything may set a variable — a restored checkpoint, a
//! host optimiser step, a caller's own `Var::set` — and candle says nothing
//! when it does: a changed variable costs an upload, never a stale pass.

use std::any::Any;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Tensor};
use rayon::prelude::*;
use tessera_constraints::gpu::{GpuError, GpuTimes, Stopwatch};

use super::backbone::NetworkOnDevice;
use super::candle_op::widened_held;
use super::times::BackboneTimes;
use crate::backbone::storage::guarded;

/// Packed parameters on a device.
pub struct DeviceParams {
    len: usize,
    kept: Box<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for DeviceParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceParams({} values)", self.len)
    }
}

impl DeviceParams {
    /// `kept`, an executor's array of `len` values.
    pub(super) fn new<B: Any + Send + Sync>(kept: B, len: usize) -> Self {
        Self {
            len,
            kept: Box::new(kept),
        }
    }

    /// The executor's array, if these were made by an executor with arrays
    /// of type `B`.
    pub(super) fn array<B: Any>(&self) -> Option<&B> {
        self.kept.downcast_ref()
    }

    /// Number of packed parameters.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The parameters as the host holds them: one packed vector, or tensors
/// whose values, one after the other, are the packed vector (the
/// variables in packing order, so that a pass whose parameters match what
/// the device keeps never packs them).
#[derive(Debug, Clone, Copy)]
pub(crate) enum HostParams<'a> {
    /// The packed values.
    Packed(&'a [f64]),
    /// Contiguous f64 or f32 tensors in packing order.
    Tensors(&'a [Tensor]),
}

impl HostParams<'_> {
    /// Whether these are, bit for bit, `kept`.
    fn equal(&self, kept: &[f64]) -> candle_core::Result<bool> {
        match *self {
            HostParams::Packed(values) => Ok(same_bits(values, kept, |v| v)),
            HostParams::Tensors(tensors) => {
                let mut at = 0;
                for tensor in tensors {
                    let len = tensor.elem_count();
                    let Some(kept) = kept.get(at..at + len) else {
                        return Ok(false);
                    };
                    let held = tensor.storage_and_layout();
                    let same = match tensor.dtype() {
                        DType::F64 => same_bits(guarded::<f64>(&held)?, kept, |v| v),
                        DType::F32 => same_bits(guarded::<f32>(&held)?, kept, f64::from),
                        other => candle_core::bail!("fno: parameters in {other:?}"),
                    };
                    if !same {
                        return Ok(false);
                    }
                    at += len;
                }
                Ok(at == kept.len())
            }
        }
    }

    /// The packed values, widened to f64.
    fn packed(&self) -> candle_core::Result<Vec<f64>> {
        match *self {
            HostParams::Packed(values) => Ok(values.to_vec()),
            HostParams::Tensors(tensors) => {
                let mut packed = Vec::with_capacity(tensors.iter().map(Tensor::elem_count).sum());
                for tensor in tensors {
                    packed.extend_from_slice(&widened_held(&tensor.storage_and_layout())?);
                }
                Ok(packed)
            }
        }
    }
}

/// Elements compared per task: large enough to amortise rayon's
/// scheduling, small enough to spread a few large variables over the cores.
const COMPARED_PER_TASK: usize = 1 << 16;

/// Whether `host`, widened by `widen`, has `kept`'s bits (lengths included).
fn same_bits<T: Copy + Sync>(host: &[T], kept: &[f64], widen: impl Fn(T) -> f64 + Sync) -> bool {
    host.len() == kept.len()
        && host
            .par_chunks(COMPARED_PER_TASK)
            .zip(kept.par_chunks(COMPARED_PER_TASK))
            .all(|(h, k)| {
                h.iter()
                    .zip(k)
                    .all(|(&h, k)| widen(h).to_bits() == k.to_bits())
            })
}

/// The packed parameters kept on a device for one backbone, with the host
/// values they hold.
#[derive(Debug, Default)]
pub(crate) struct ResidentParams(Mutex<Option<Kept>>);

/// A kept pair: both halves shared, so that the lock is held only to read
/// or replace them, never across the check (a parallel comparison: a rayon
/// worker waiting on the lock could be handed another pass of this
/// backbone) nor across device work. No kernel writes kept parameters: an
/// update writes its pass's copy, which then replaces them.
#[derive(Debug, Clone)]
struct Kept {
    host: Arc<Vec<f64>>,
    device: Arc<DeviceParams>,
}

impl ResidentParams {
    /// `pass` with the parameters on `network`'s device: the kept ones if
    /// they equal `host`, else `host` uploaded (and kept from then on).
    ///
    /// Errors: a tensor off the CPU or in another dtype, the device's, or
    /// `pass`'s.
    pub(crate) fn with<T>(
        &self,
        network: &dyn NetworkOnDevice,
        host: HostParams<'_>,
        pass: impl FnOnce(&DeviceParams) -> Result<T, GpuError>,
    ) -> candle_core::Result<T> {
        let mut watch = Stopwatch::start();
        let device = match self.kept() {
            Some(k) if host.equal(&k.host)? => k.device,
            _ => {
                let values = host.packed()?;
                let device = network
                    .upload_params(&values)
                    .map_err(candle_core::Error::wrap)?;
                self.store(values, device)
            }
        };
        network.record(BackboneTimes {
            forward: GpuTimes {
                pack_s: watch.lap(),
                ..GpuTimes::default()
            },
            ..BackboneTimes::default()
        });
        pass(&device).map_err(candle_core::Error::wrap)
    }

    fn kept(&self) -> Option<Kept> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Kept>> {
        // The state is a plain value: a panic elsewhere cannot break it.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `device`, which holds `host`'s values, for the next pass.
    pub(crate) fn keep(&self, host: Vec<f64>, device: DeviceParams) {
        self.store(host, device);
    }

    /// [`ResidentParams::keep`], returning what it keeps for a pass to read.
    fn store(&self, host: Vec<f64>, device: DeviceParams) -> Arc<DeviceParams> {
        let device = Arc::new(device);
        *self.lock() = Some(Kept {
            host: Arc::new(host),
            device: Arc::clone(&device),
        });
        device
    }
}
