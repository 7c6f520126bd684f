//! Zero-copy access to the CPU data behind candle tensors, for the fused op's
//! hand-written kernels and the optimiser's one-pass update.

use candle_core::{CpuStorage, Layout, WithDType};

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
