//! Zero-copy access to the CPU data behind candle tensors, for the fused ops'
//! hand-written kernels.

use candle_core::{CpuStorage, Layout, Storage, Tensor, WithDType};

/// The contiguous slice a `(storage, layout)` pair describes.
pub(crate) fn slice<'a, T: WithDType>(
    storage: &'a CpuStorage,
    layout: &Layout,
) -> candle_core::Result<&'a [T]> {
    let data = T::cpu_storage_as_slice(storage)?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("fused backbone op needs a contiguous input"),
    }
}

/// Runs `f` on the (contiguous) data of a CPU tensor without copying it when it
/// is already contiguous.
pub(crate) fn with_data<T: WithDType, R>(
    tensor: &Tensor,
    f: impl FnOnce(&[T]) -> R,
) -> candle_core::Result<R> {
    let tensor = tensor.contiguous()?;
    let (storage, layout) = tensor.storage_and_layout();
    match &*storage {
        Storage::Cpu(cpu) => Ok(f(slice(cpu, layout)?)),
        _ => candle_core::bail!("the fused backbone ops run on the CPU only"),
    }
}
