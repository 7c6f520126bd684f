//! The FNO backbone on a GPU (cargo feature `cuda`): the CPU backbone's
//! layers as a chain of device kernels, in float64 or, for a float32
//! backbone, float32 ([`Precision`]), and the optimiser that trains it there
//! (clipping and Adam on the gradient the backward pass leaves on the
//! device: [`GradientSlot`]).
//!
//! Every layer of the FNO is a sequence of matrix products — the truncated
//! DFTs are products with small cosine/sine matrices, the channel mixings one
//! product per kept mode, the pointwise layers one product over all grid
//! points — plus an activation and a bias. So the device needs one strided,
//! batched product kernel and four pointwise ones ([`SOURCE`], with the
//! optimiser's two), and the
//! network ([`DeviceFno`]) is the CPU's sequence of products with device
//! arrays. The product is ours rather than cuBLAS's so that its arithmetic
//! runs on the host too: the tests compile [`SOURCE`] with
//! `tessera_constraints::gpu::HOST_SHIM` behind their own [`Executor`] and
//! compare the whole forward and backward pass with the CPU backbone on
//! machines without a GPU.

mod backbone;
pub(crate) mod candle_op;
mod cuda;
mod executor;
mod network;
mod ops;
mod optimiser;
mod resident;
mod spectral;
mod times;

pub use backbone::{DeviceBackbone, DevicePass, NetworkOnDevice};
pub use cuda::{CudaBuffer, CudaExecutor};
pub use executor::{Arg, DeviceArray, Executor, Kernel, Precision, SOURCE};
pub use network::{DeviceFno, ForwardPass};
pub use ops::{Ops, View};
pub use optimiser::{AdamScalars, ArmedSlot, DeviceGradient, DeviceMoments, GradientSlot};
pub use resident::DeviceParams;
pub use times::BackboneTimes;

/// The backbone on GPU number `ordinal` in `precision`: the device
/// [`crate::Model`] and [`crate::Fno`] run their network on
/// (`run_backbone_on`). One per GPU, precision and process: later calls share
/// the first one's compiled kernels.
///
/// Errors: no CUDA driver ("no CUDA driver found; built with --features cuda
/// but running on a machine without a GPU"), no NVRTC, or the driver's own
/// error.
pub fn cuda_backbone(
    ordinal: usize,
    precision: Precision,
) -> Result<std::sync::Arc<dyn NetworkOnDevice>, tessera_constraints::gpu::GpuError> {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};
    type Opened = BTreeMap<(usize, Precision), Arc<DeviceBackbone<CudaExecutor>>>;
    static OPENED: Mutex<Opened> = Mutex::new(BTreeMap::new());
    let mut opened = OPENED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(backbone) = opened.get(&(ordinal, precision)) {
        return Ok(Arc::clone(backbone) as Arc<dyn NetworkOnDevice>);
    }
    let gpu = tessera_constraints::gpu::Gpu::open(ordinal)?;
    let backbone = Arc::new(DeviceBackbone::new(CudaExecutor::new(&gpu, precision)?));
    opened.insert((ordinal, precision), Arc::clone(&backbone));
    Ok(backbone)
}
