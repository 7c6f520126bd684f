//! Clipping by global norm (optax's `clip_by_global_norm`, as in the reference
//! code): if the Euclidean norm of all gradients together exceeds the limit,
//! every gradient is scaled by `limit / norm`, which keeps the update's
//! direction and bounds its size.

use std::collections::BTreeMap;

use candle_core::{DType, Tensor, WithDType};
use rayon::prelude::*;

use crate::SolverError;
use crate::backbone::storage::guarded;

/// The global norm `√(Σ_var Σ g²)` of `grads`, in f64: each variable's
/// squares summed in order (as candle's `sqr().sum_all()` of the widened
/// tensor, bit for bit, without building either), in parallel over the
/// variables, and the variables' sums added in name order.
pub fn global_norm(grads: &BTreeMap<String, Tensor>) -> Result<f64, SolverError> {
    let grads: Vec<Tensor> = grads
        .values()
        .map(|g| match g.dtype() {
            DType::F32 | DType::F64 => g.contiguous(),
            _ => g.to_dtype(DType::F64),
        })
        .collect::<candle_core::Result<_>>()?;
    let sums = grads
        .par_iter()
        .map(squares)
        .collect::<Result<Vec<f64>, SolverError>>()?;
    Ok(sums.iter().fold(0.0, |total, s| total + s).sqrt())
}

/// `Σ g²` of one contiguous f32 or f64 gradient, summed in order in f64.
fn squares(g: &Tensor) -> Result<f64, SolverError> {
    fn sum<T: WithDType>(g: &[T]) -> f64 {
        g.iter().fold(0.0, |acc, &x| {
            let x = x.to_f64();
            acc + x * x
        })
    }
    let held = g.storage_and_layout();
    Ok(match g.dtype() {
        DType::F32 => sum(guarded::<f32>(&held)?),
        _ => sum(guarded::<f64>(&held)?),
    })
}

/// The factor that brings gradients of global norm `norm` down to `limit`:
/// `Some(limit / norm)` above it, `None` at or below it or for `limit` 0 (no
/// clipping). A non-finite norm (of `count` gradients) is an error: clipping
/// would turn it into NaN updates. The trainer folds the factor into Adam
/// ([`super::adam::Adam::step_clipped`]) rather than scaling the gradients.
pub fn clip_scale(norm: f64, limit: f64, count: usize) -> Result<Option<f64>, SolverError> {
    if !norm.is_finite() {
        return Err(SolverError::NonFinite {
            what: "gradients",
            count,
        });
    }
    Ok((limit > 0.0 && norm > limit).then(|| limit / norm))
}
