//! Zero-copy access to the CPU data behind candle tensors, for the fused op's
//! hand-written kernels and the optimiser's one-pass update.

use std::sync::Mutex;

use candle_core::{CpuStorage, InplaceOp1, Layout, Storage, StorageRef, Tensor, WithDType};

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

/// A dtype whose values a CPU storage can lend for writing.
pub(crate) trait Writable: WithDType {
    /// The values of `storage`, if it holds this dtype.
    fn values_mut(storage: &mut CpuStorage) -> Option<&mut [Self]>;
}

impl Writable for f32 {
    fn values_mut(storage: &mut CpuStorage) -> Option<&mut [Self]> {
        match storage {
            CpuStorage::F32(v) => Some(v),
            _ => None,
        }
    }
}

impl Writable for f64 {
    fn values_mut(storage: &mut CpuStorage) -> Option<&mut [Self]> {
        match storage {
            CpuStorage::F64(v) => Some(v),
            _ => None,
        }
    }
}

/// Runs `f` on the values of the contiguous CPU tensor `tensor`, writable
/// where they lie: candle's in-place op holds the tensor's storage for
/// writing meanwhile. Why: the optimiser updates the parameters and moments
/// (a gigabyte each at the Navier–Stokes scale) in place rather than building
/// new ones, whose fresh pages cost more than the update.
///
/// Errors: a tensor off the CPU, of another dtype, or not contiguous.
pub(crate) fn with_values_mut<T: Writable, R>(
    tensor: &Tensor,
    f: impl FnOnce(&mut [T]) -> R,
) -> candle_core::Result<R> {
    let op = InPlace {
        f: Mutex::new(Some(f)),
        out: Mutex::new(None),
        dtype: std::marker::PhantomData::<T>,
    };
    tensor.inplace_op1(&op)?;
    match op.out.into_inner() {
        Ok(Some(out)) => Ok(out),
        _ => candle_core::bail!("in-place update: the tensor's values were not reached"),
    }
}

/// The op behind [`with_values_mut`]: `f` once, its result kept.
struct InPlace<T, F, R> {
    f: Mutex<Option<F>>,
    out: Mutex<Option<R>>,
    dtype: std::marker::PhantomData<T>,
}

impl<T: Writable, F: FnOnce(&mut [T]) -> R, R> InplaceOp1 for InPlace<T, F, R> {
    fn name(&self) -> &'static str {
        "in-place update"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("in-place update: the tensor is not contiguous")
        };
        let Some(values) = T::values_mut(storage) else {
            candle_core::bail!("in-place update: the tensor is not {:?}", T::DTYPE)
        };
        let f = self.f.lock().ok().and_then(|mut f| f.take());
        let (Some(f), Ok(mut out)) = (f, self.out.lock()) else {
            candle_core::bail!("in-place update: run twice")
        };
        *out = Some(f(&mut values[start..end]));
        Ok(())
    }
}
