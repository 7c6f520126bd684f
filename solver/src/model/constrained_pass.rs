//! The backbone's pass and the constraint layer's as one node of the graph:
//! features and parameters in, the constrained solution `u` out.
//!
//! Why: as two nodes, the basis between them (`[batch, grid points, N]`,
//! 79 MB at the paper's diffusion–sorption batch of 6) is a tensor of the
//! graph, and candle's backward pass adds every node's gradient into a
//! zeroed tensor of its size: for the basis twice, at the layer's input and
//! at the backbone's output it is reshaped from, each a 79 MB allocation
//! and a sum over it on one thread (30 ms each on the 2-core VM of
//! benches/README.md, a tenth of a paper-scale step on a GPU). Here the
//! backbone's forward pass and the solves run eagerly, as [`ExternalOp`]
//! did for the layer alone, and the node's backward pass hands the layer's
//! `B̄` to the backbone's backward pass directly: the graph holds only `u`.
//!
//! [`ExternalOp`]: super::external_op::ExternalOp

use candle_core::{CpuStorage, CustomOp2, DType, Device, Layout, Shape, Storage, Tensor};

use crate::SolverError;
use crate::backbone::NetworkOpBox;
use crate::backbone::storage::guarded;

/// The backbone's output, computed outside the graph, and the basis the
/// layer reads from it.
pub(super) struct BasisPass {
    /// The network's op and its two arguments: its backward pass runs from
    /// the layer's `B̄`.
    op: NetworkOpBox,
    features: Tensor,
    params: Tensor,
    /// The backbone's output `[batch, grid…, N]`, in its dtype.
    output: Tensor,
    /// Points per sample of the backbone's grid and of the solution's (its
    /// leading time levels), and `N`.
    points: usize,
    grid_points: usize,
    n_basis: usize,
    /// The basis `[batch, grid points, N]` as f64 where it is not the
    /// output itself (a float32 backbone, or a longer backbone grid).
    widened: Option<Vec<f64>>,
}

impl BasisPass {
    /// Runs `op` (with its second argument `params`) on `features`, outside
    /// the graph, for a solution grid of `grid_points` points per sample.
    ///
    /// Errors: the network's, or an output with fewer points per sample than
    /// the solution's grid.
    pub(super) fn run(
        op: NetworkOpBox,
        features: Tensor,
        params: Tensor,
        grid_points: usize,
    ) -> Result<Self, SolverError> {
        let (storage, shape) = {
            let (xs, xl) = features.storage_and_layout();
            let (ps, pl) = params.storage_and_layout();
            match (&*xs, &*ps) {
                (Storage::Cpu(xs), Storage::Cpu(ps)) => op.cpu_fwd(xs, xl, ps, pl)?,
                _ => Err(candle_core::Error::Msg(
                    "the backbone's pass reads host tensors only".into(),
                ))?,
            }
        };
        let output = match storage {
            CpuStorage::F64(v) => Tensor::from_vec(v, shape, &Device::Cpu)?,
            CpuStorage::F32(v) => Tensor::from_vec(v, shape, &Device::Cpu)?,
            _ => Err(candle_core::Error::Msg(
                "the backbone computes in f64 or f32".into(),
            ))?,
        };
        let dims = output.dims();
        let (batch, n_basis) = (dims[0], dims[dims.len() - 1]);
        let points = output.elem_count() / (batch * n_basis).max(1);
        if points < grid_points {
            return Err(SolverError::ShapeMismatch {
                what: "backbone output points per sample",
                expected: vec![grid_points],
                got: vec![points],
            });
        }
        let widened = if output.dtype() == DType::F64 && points == grid_points {
            None
        } else {
            // Each sample's leading `grid_points` points, as f64, read in
            // place.
            let held = output.storage_and_layout();
            let (stride, keep) = (points * n_basis, grid_points * n_basis);
            let leading = || (0..batch).map(|b| b * stride..b * stride + keep);
            Some(match output.dtype() {
                DType::F64 => {
                    let all = guarded::<f64>(&held)?;
                    leading().flat_map(|r| &all[r]).copied().collect()
                }
                _ => {
                    let all = guarded::<f32>(&held)?;
                    leading()
                        .flat_map(|r| &all[r])
                        .map(|&v| f64::from(v))
                        .collect()
                }
            })
        };
        Ok(Self {
            op,
            features,
            params,
            output,
            points,
            grid_points,
            n_basis,
            widened,
        })
    }

    /// `f` of the basis `[batch, grid points, N]` (f64).
    pub(super) fn with_basis<R>(
        &self,
        f: impl FnOnce(&[f64]) -> Result<R, SolverError>,
    ) -> Result<R, SolverError> {
        match &self.widened {
            Some(values) => f(values),
            None => {
                let held = self.output.storage_and_layout();
                f(guarded::<f64>(&held)?)
            }
        }
    }

    /// The parameters' gradient (the gradient of the op's second argument)
    /// for the basis gradient `basis_bar` (`[batch, grid points, N]`).
    fn backward(&self, basis_bar: Vec<f64>) -> Result<Tensor, SolverError> {
        let (_, params_bar) = self.pass_back(basis_bar)?;
        params_bar.ok_or_else(|| {
            candle_core::Error::Msg("the backbone gave no parameter gradient".into()).into()
        })
    }

    /// The features' gradient, `[batch, backbone points, features]` f64, for
    /// the basis gradient `basis_bar` (`[batch, grid points, N]`), where the
    /// pass ran on tracked features (a variable: [`Model::infer_kept`] makes
    /// them one).
    ///
    /// [`Model::infer_kept`]: super::Model::infer_kept
    pub(super) fn features_gradient(&self, basis_bar: Vec<f64>) -> Result<Vec<f64>, SolverError> {
        let (features_bar, _) = self.pass_back(basis_bar)?;
        let features_bar = features_bar.ok_or_else(|| {
            candle_core::Error::Msg("the backbone gave no features gradient".into())
        })?;
        Ok(features_bar
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?)
    }

    /// The backbone's backward pass for the basis gradient `basis_bar`
    /// (`[batch, grid points, N]`; zero for the points past the solution's):
    /// the gradients of the op's two arguments.
    fn pass_back(
        &self,
        basis_bar: Vec<f64>,
    ) -> Result<(Option<Tensor>, Option<Tensor>), SolverError> {
        let batch = self.output.dims()[0];
        if basis_bar.len() != batch * self.grid_points * self.n_basis {
            return Err(SolverError::ShapeMismatch {
                what: "basis gradient [batch, grid points, N]",
                expected: vec![batch, self.grid_points, self.n_basis],
                got: vec![basis_bar.len()],
            });
        }
        let full = if self.points == self.grid_points {
            basis_bar
        } else {
            let (g, p, n) = (self.grid_points, self.points, self.n_basis);
            let mut full = vec![0.0; basis_bar.len() / g * p];
            for (to, from) in full.chunks_mut(p * n).zip(basis_bar.chunks(g * n)) {
                to[..g * n].copy_from_slice(from);
            }
            full
        };
        let grad = Tensor::from_vec(full, self.output.shape(), &Device::Cpu)?
            .to_dtype(self.output.dtype())?;
        Ok(self
            .op
            .bwd(&self.features, &self.params, &self.output, &grad)?)
    }

    /// `u` (shaped `shape`, f64), computed from this pass by the layer, as a
    /// node of the graph on the features and the parameters whose backward
    /// pass is `basis_bar` (the layer's, from `u`'s gradient) followed by
    /// the backbone's.
    pub(super) fn into_node(
        self,
        u: Vec<f64>,
        shape: impl Into<Shape>,
        basis_bar: impl Fn(&BasisPass, &[f64]) -> Result<Vec<f64>, SolverError> + Send + Sync + 'static,
    ) -> Result<Tensor, SolverError> {
        let shape = shape.into();
        if u.len() != shape.elem_count() {
            return Err(SolverError::ShapeMismatch {
                what: "constrained solution",
                expected: shape.dims().to_vec(),
                got: vec![u.len()],
            });
        }
        let (features, params) = (self.features.clone(), self.params.clone());
        let node = ConstrainedPass {
            u,
            shape,
            pass: self,
            basis_bar: Box::new(basis_bar),
        };
        Ok(features.apply_op2(&params, node)?)
    }
}

/// The layer's vector–Jacobian product from `u` to the basis.
type BasisBar = dyn Fn(&BasisPass, &[f64]) -> Result<Vec<f64>, SolverError> + Send + Sync;

/// The node: its forward pass hands back the `u` already computed, its
/// backward pass runs the layer's and then the backbone's.
struct ConstrainedPass {
    u: Vec<f64>,
    shape: Shape,
    pass: BasisPass,
    basis_bar: Box<BasisBar>,
}

impl CustomOp2 for ConstrainedPass {
    fn name(&self) -> &'static str {
        "backbone-and-constraint"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        Ok((CpuStorage::F64(self.u.clone()), self.shape.clone()))
    }

    /// Gradients for the parameters only: the features are data.
    fn bwd(
        &self,
        _: &Tensor,
        _: &Tensor,
        _: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let upstream = grad_res.flatten_all()?.to_vec1::<f64>()?;
        let basis_bar =
            (self.basis_bar)(&self.pass, &upstream).map_err(candle_core::Error::wrap)?;
        let params_bar = self
            .pass
            .backward(basis_bar)
            .map_err(candle_core::Error::wrap)?;
        Ok((None, Some(params_bar)))
    }
}
