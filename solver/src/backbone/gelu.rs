//! GELU as a candle op with an exact backward pass (candle's built-in GELU
//! backward uses six-digit constants, which a 1e-5 gradient check would notice).

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Shape, Tensor};

use super::Real;
use super::activation::{gelu_vec, times_slope};
use super::storage::{slice, with_data};

/// `gelu` applied elementwise (tanh form, see [`super::real`]).
pub(crate) struct GeluOp;

fn map<T: Real>(s: &CpuStorage, l: &Layout) -> candle_core::Result<CpuStorage> {
    Ok(T::to_cpu_storage_owned(gelu_vec(slice::<T>(s, l)?)))
}

fn slope_times<T: Real>(arg: &Tensor, grad: &Tensor) -> candle_core::Result<Tensor> {
    let mut out: Vec<T> = with_data::<T, _>(grad, |g| g.to_vec())?;
    with_data::<T, _>(arg, |a| times_slope(a, &mut out))?;
    Tensor::from_vec(out, arg.shape(), arg.device())
}

impl CustomOp1 for GeluOp {
    fn name(&self) -> &'static str {
        "gelu-exact"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let out = match s.dtype() {
            DType::F64 => map::<f64>(s, l)?,
            DType::F32 => map::<f32>(s, l)?,
            other => candle_core::bail!("gelu: unsupported dtype {other:?}"),
        };
        Ok((out, l.shape().clone()))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let g = match arg.dtype() {
            DType::F64 => slope_times::<f64>(arg, grad)?,
            DType::F32 => slope_times::<f32>(arg, grad)?,
            other => candle_core::bail!("gelu: unsupported dtype {other:?}"),
        };
        Ok(Some(g))
    }
}
