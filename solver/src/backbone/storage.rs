//! Zero-copy access to the CPU data behind candle tensors, for the fused op's
//! hand-written kernels and the optimiser's one-pass update.

use candle_core::{CpuStorage, Layout, Storage, StorageRef, WithDType};

/// The contiguous slice a `(storage, layout)` pair describes.
pub(crate) fn slice<'a, T: WithDType>(
    storage: &'a CpuStorage,
    layout: &Layout,
) -> candle_core::Result<&'a [T]> {
    let data = T::cpu_storage_as_slice(storage)?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("a hand-written kernel needs a contiguous tensor"),
    }
}

/// The contiguous CPU values behind a tensor's storage guard (from
/// `Tensor::storage_and_layout`); an error for a tensor on another device.
pub(crate) fn guarded<'a, T: WithDType>(
    (storage, layout): &'a (StorageRef<'_>, &Layout),
) -> candle_core::Result<&'a [T]> {
    match &**storage {
        Storage::Cpu(cpu) => slice(cpu, layout),
        _ => candle_core::bail!("a hand-written kernel runs on host memory only"),
    }
}
