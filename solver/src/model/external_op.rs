//! A differentiable step computed outside candle, entered into its autograd graph.
//!
//! The physics losses (and, with the backbone, the constraint layer:
//! [`super::constrained_pass`]) work on plain `f64` slices and return typed
//! errors. The model runs them itself, so a failure is a [`crate::SolverError`]
//! rather than a string inside a tensor error, and then records the result as a
//! candle custom op: the op's forward hands back the value already computed,
//! and its backward calls the step's vector–Jacobian product. Autograd thus
//! flows through the step exactly as through a native op.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Shape, Tensor};

/// The vector–Jacobian product of a step: the upstream gradient of its output
/// (row-major, the output's shape) to the gradient of its input.
pub type Vjp = dyn Fn(&[f64]) -> Result<Vec<f64>, crate::SolverError> + Send + Sync;

/// One recorded step: its input's shape, its output and its backward.
pub struct ExternalOp {
    name: &'static str,
    input_shape: Shape,
    output: Vec<f64>,
    output_shape: Shape,
    vjp: Arc<Vjp>,
}

impl ExternalOp {
    /// Records `output` (shaped `output_shape`) as the value of a step applied to
    /// `input` with backward `vjp`, returning the output tensor (f64) linked to
    /// `input` in the graph.
    ///
    /// Errors: `input` is not f64 or `output` does not fill `output_shape`.
    pub fn apply(
        name: &'static str,
        input: &Tensor,
        output: Vec<f64>,
        output_shape: impl Into<Shape>,
        vjp: Arc<Vjp>,
    ) -> candle_core::Result<Tensor> {
        let output_shape = output_shape.into();
        if input.dtype() != DType::F64 || output.len() != output_shape.elem_count() {
            candle_core::bail!(
                "{name}: needs an f64 input and {} output values, got {:?} and {}",
                output_shape.elem_count(),
                input.dtype(),
                output.len()
            );
        }
        let op = Self {
            name,
            input_shape: input.shape().clone(),
            output,
            output_shape,
            vjp,
        };
        input.apply_op1(op)
    }
}

impl CustomOp1 for ExternalOp {
    fn name(&self) -> &'static str {
        self.name
    }

    fn cpu_fwd(&self, _: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        if layout.shape() != &self.input_shape {
            candle_core::bail!(
                "{}: recorded for input {:?}, applied to {:?}",
                self.name,
                self.input_shape,
                layout.shape()
            );
        }
        Ok((
            CpuStorage::F64(self.output.clone()),
            self.output_shape.clone(),
        ))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let upstream = grad_res.flatten_all()?.to_vec1::<f64>()?;
        let grad = (self.vjp)(&upstream).map_err(candle_core::Error::wrap)?;
        Ok(Some(Tensor::from_vec(grad, arg.shape(), arg.device())?))
    }
}
