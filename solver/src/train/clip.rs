//! Clipping by global norm (optax's `clip_by_global_norm`, as in the reference
//! code): if the Euclidean norm of all gradients together exceeds the limit,
//! every gradient is scaled by `limit / norm`, which keeps the update's
//! direction and bounds its size.

use std::collections::BTreeMap;

use candle_core::{DType, Tensor};

use crate::SolverError;

/// The global norm `√(Σ_var Σ g²)` of `grads`, in f64.
pub fn global_norm(grads: &BTreeMap<String, Tensor>) -> Result<f64, SolverError> {
    let mut sum = 0.0;
    for g in grads.values() {
        sum += g
            .to_dtype(DType::F64)?
            .sqr()?
            .sum_all()?
            .to_scalar::<f64>()?;
    }
    Ok(sum.sqrt())
}

/// Scales `grads` to global norm `limit` when their norm exceeds it (`limit` 0:
/// no clipping) and returns the norm before clipping. A non-finite norm is an
/// error: clipping would turn it into NaN updates.
pub fn clip_global_norm(
    grads: &mut BTreeMap<String, Tensor>,
    limit: f64,
) -> Result<f64, SolverError> {
    let norm = global_norm(grads)?;
    if !norm.is_finite() {
        return Err(SolverError::NonFinite {
            what: "gradients",
            count: grads.len(),
        });
    }
    if limit > 0.0 && norm > limit {
        let scale = limit / norm;
        for g in grads.values_mut() {
            *g = g.affine(scale, 0.0)?;
        }
    }
    Ok(norm)
}
