//! A trained model's prediction differentiated in its initial conditions:
//! what data assimilation and inverse problems ask of a surrogate (which
//! initial state explains these later observations?).
//!
//! An initial condition `u₀` reaches the predicted field twice: through the
//! backbone, whose features hold `u₀` at every time level (and `ln u₀` with
//! `model.ic_features = "value-and-log"`), and, for the hard-constrained
//! methods, through the constraint layer, whose rows and offset read `u₀`
//! directly ([`tessera_experts::ConstraintLayer::backward_with_ic`]). For a
//! field's gradient `ū` the layer's backward pass gives the basis gradient
//! `B̄` and the direct part of `ū₀`; the backbone's backward pass takes `B̄`
//! to the features, and [`Features::ic_gradient`](super::Features::ic_gradient)
//! adds their part.
//!
//! The forward pass keeps each chunk's basis and solved problems, as a
//! training step does, but not the backbone's activations (for one
//! paper-scale diffusion–sorption sample about 0.3 GB, for Navier–Stokes
//! several): the backward pass runs the backbone's forward pass again, one
//! sample at a time, and then its backward pass. Keeping little makes the
//! kept pass cheap to hold and to differentiate any number of times (one
//! backward pass per observation operator, or per column of a Jacobian).
//! For a model on a GPU both passes run there, the backward pass's
//! features' gradient one more product than training's.

use std::slice;

use candle_core::Var;
use tessera_experts::Forward;

use super::Model;
use super::constrained_pass::BasisPass;
use crate::SolverError;

/// One chunk of a kept prediction: the basis the backbone gave its samples
/// (`[chunk, grid points, N]`) and the solves of the constraint layer.
pub(super) struct KeptChunk {
    pub(super) basis: Vec<f64>,
    pub(super) forward: Forward,
}

/// What [`Model::infer_kept`] keeps for [`Model::infer_backward`].
pub struct KeptInference {
    ics: Vec<Vec<f64>>,
    /// Per chunk of `training.batch_size` samples, in order (empty for the
    /// soft method, which solves nothing).
    chunks: Vec<KeptChunk>,
}

impl KeptInference {
    /// Number of initial conditions predicted.
    pub fn batch(&self) -> usize {
        self.ics.len()
    }
}

impl Model {
    /// [`Model::infer`] (the same fields and statuses, bit for bit), keeping
    /// what [`Model::infer_backward`] reads: each chunk's basis and solved
    /// problems, and the initial conditions.
    ///
    /// Errors: as [`Model::infer`].
    pub fn infer_kept(
        &self,
        ics: &[Vec<f64>],
        stream: u64,
    ) -> Result<(super::Inference, KeptInference), SolverError> {
        let mut chunks = Vec::new();
        let inference = self.infer_keeping(ics, stream, Some(&mut chunks))?;
        let kept = KeptInference {
            ics: ics.to_vec(),
            chunks,
        };
        Ok((inference, kept))
    }

    /// The gradient in the initial conditions, `[batch, X, (Y)]` row-major,
    /// of a loss whose gradient in the fields [`Model::infer_kept`] predicted
    /// is `fields_bar` (`[batch, T, X, (Y)]`): through the constraint layer
    /// and through the backbone (see the module doc). `kept` may be
    /// differentiated any number of times.
    ///
    /// Errors: `fields_bar` of another length or not finite; `kept` from a
    /// model of another grid or method; a PDE without the derivative in its
    /// initial condition.
    pub fn infer_backward(
        &self,
        kept: &KeptInference,
        fields_bar: &[f64],
    ) -> Result<Vec<f64>, SolverError> {
        let (g, s, n) = (
            self.grid_points(),
            self.features.n_space(),
            self.fno.config().out_dim,
        );
        let batch = kept.batch();
        if fields_bar.len() != batch * g {
            return Err(SolverError::ShapeMismatch {
                what: "fields gradient [batch, t, x, (y)]",
                expected: vec![batch, g],
                got: vec![fields_bar.len()],
            });
        }
        let count = fields_bar.iter().filter(|v| !v.is_finite()).count();
        if count > 0 {
            return Err(SolverError::NonFinite {
                what: "fields gradient",
                count,
            });
        }
        let (basis_bar, mut ic_bar) = match &self.constraint {
            None => (fields_bar.to_vec(), vec![0.0; batch * s]),
            Some(c) => {
                let chunk = self.scenario.training.batch_size;
                if kept.chunks.len() != batch.div_ceil(chunk) {
                    return Err(SolverError::ShapeMismatch {
                        what: "kept chunks of a prediction (from another model?)",
                        expected: vec![batch.div_ceil(chunk)],
                        got: vec![kept.chunks.len()],
                    });
                }
                let (mut basis_bar, mut ic_bar) = (Vec::new(), Vec::new());
                for (part, u_bar) in kept.chunks.iter().zip(fields_bar.chunks(chunk * g)) {
                    let gradient = c
                        .layer()
                        .backward_with_ic(&part.forward, &part.basis, u_bar)?;
                    basis_bar.extend(gradient.basis);
                    ic_bar.extend(gradient.ic);
                }
                (basis_bar, ic_bar)
            }
        };
        // Detached: the network's backward pass then forms the features'
        // gradient only, not the parameters'.
        let params = self.fno.packed_parameters()?.detach();
        let samples = kept.ics.iter().zip(basis_bar.chunks(g * n));
        for ((ic, b_bar), ic_bar) in samples.zip(ic_bar.chunks_mut(s)) {
            let x = self
                .features
                .tensor(slice::from_ref(ic), self.fno.dtype())?;
            let x = Var::from_tensor(&x.contiguous()?)?.as_tensor().clone();
            let (op, params) = self.fno.network_op(&x, Some(&params))?;
            let pass = BasisPass::run(op, x, params, g)?;
            let x_bar = pass.features_gradient(b_bar.to_vec())?;
            let through_features = self.features.ic_gradient(&x_bar, ic)?;
            ic_bar
                .iter_mut()
                .zip(through_features)
                .for_each(|(total, v)| *total += v);
        }
        Ok(ic_bar)
    }
}
