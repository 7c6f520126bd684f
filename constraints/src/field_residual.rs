//! The PDE residual of a whole field `u` on the full grid — the physics loss of
//! every model (the only loss of the soft-constraint PI-SC model, and the training
//! loss of the hard-constraint models).
//!
//! The loss is the reference's: the L2 norm `‖F‖₂` of the pointwise residual over
//! all grid points and equations (not squared, not averaged). Its gradient flows
//! back to `u` through `F_j = ∂F/∂z_j` and the adjoints of the term operators:
//! `ū = Σ_j D_jᵀ (Σ_e F̄_e F_e,j)`.
//!
//! The pointwise part (values, and gradients with their products with the
//! cotangents) runs over blocks of points in parallel: at batch 1 nothing else
//! spreads it over the cores, and a residual with powers or an interpreted
//! tape makes it most of the loss's time. Every point is evaluated and
//! accumulated as in one sequential pass, so the results do not depend on the
//! blocks or the threads.

use std::sync::Arc;

use rayon::prelude::*;
use tessera_meshes::Grid;

use crate::pointwise;
use crate::{ConstraintError, Pde, Term, residual_term_count};

/// Points per parallel block of the pointwise kernels: enough to amortise a
/// block's set-up (an interpreted residual allocates its registers once per
/// block) and to keep a block's gradients (`[points, m, d]`) in cache.
const BLOCK: usize = 4096;

/// The pointwise PDE residual of fields on one grid.
pub struct FieldResidual<P: Pde> {
    pde: Arc<P>,
    terms: Vec<Term>,
    n_points: usize,
    /// The grid's coordinates `[points, ndim]` if the residual reads them.
    coords: Vec<f64>,
}

impl<P: Pde> FieldResidual<P> {
    /// The residual of `pde` on `grid` (asks the PDE for its terms once).
    pub fn new(pde: Arc<P>, grid: &Grid) -> Result<Self, ConstraintError> {
        let mut terms = pde.terms(grid)?;
        if terms.is_empty() || terms.len() > pointwise::MAX_TERMS {
            return Err(ConstraintError::ShapeMismatch {
                what: "number of PDE terms (1..=8)",
                expected: vec![terms.len().clamp(1, pointwise::MAX_TERMS)],
                got: vec![terms.len()],
            });
        }
        // Terms that only linear rows use do not enter the residual.
        terms.truncate(residual_term_count(pde.as_ref(), terms.len())?);
        let coords = if pde.uses_coordinates() {
            grid.coordinates()
        } else {
            Vec::new()
        };
        Ok(Self {
            pde,
            terms,
            n_points: grid.len(),
            coords,
        })
    }

    /// The terms `z = [D_1 u, …, D_d u]` at every point, `[points, d]`.
    fn terms_of(&self, u: &[f64]) -> Result<Vec<f64>, ConstraintError> {
        if u.len() != self.n_points {
            return Err(ConstraintError::ShapeMismatch {
                what: "field u [grid points]",
                expected: vec![self.n_points],
                got: vec![u.len()],
            });
        }
        if !u.iter().all(|x| x.is_finite()) {
            return Err(ConstraintError::NonFinite { what: "field u" });
        }
        let d = self.terms.len();
        let mut z = vec![0.0; self.n_points * d];
        let mut dz = vec![0.0; self.n_points];
        for (j, term) in self.terms.iter().enumerate() {
            term.operator.apply(u, 1, &mut dz);
            for (zp, &v) in z.chunks_exact_mut(d).zip(&dz) {
                zp[j] = v;
            }
        }
        Ok(z)
    }

    /// `F(z(p))` at every grid point, `[points, m]` with `m = n_equations`.
    pub fn residual(&self, u: &[f64]) -> Result<Vec<f64>, ConstraintError> {
        Ok(self.values_at(&self.terms_of(u)?))
    }

    /// `F` at every grid point from the terms `z` there.
    fn values_at(&self, z: &[f64]) -> Vec<f64> {
        let (d, m) = (self.terms.len(), self.pde.n_equations());
        let mut f = vec![0.0; self.n_points * m];
        f.par_chunks_mut(BLOCK * m)
            .zip(z.par_chunks(BLOCK * d))
            .enumerate()
            .for_each(|(b, (fb, zb))| {
                let coords = self.block_coords(b, zb.len() / d);
                pointwise::values(self.pde.as_ref(), d, zb, coords, fb);
            });
        f
    }

    /// The coordinates of block `b`'s `n` points (empty if the residual does
    /// not read them).
    fn block_coords(&self, b: usize, n: usize) -> &[f64] {
        let ndim = self.coords.len().checked_div(self.n_points).unwrap_or(0);
        &self.coords[b * BLOCK * ndim..(b * BLOCK + n) * ndim]
    }

    /// The loss `‖F‖₂`.
    pub fn norm(&self, u: &[f64]) -> Result<f64, ConstraintError> {
        let f = self.residual(u)?;
        Ok(f.iter().map(|x| x * x).sum::<f64>().sqrt())
    }

    /// The vector–Jacobian product `ū = (∂F/∂u)ᵀ F̄` for `F̄` laid out like
    /// [`FieldResidual::residual`].
    pub fn vjp(&self, u: &[f64], f_bar: &[f64]) -> Result<Vec<f64>, ConstraintError> {
        let m = self.pde.n_equations();
        if f_bar.len() != self.n_points * m {
            return Err(ConstraintError::ShapeMismatch {
                what: "residual cotangent [grid points, equations]",
                expected: vec![self.n_points, m],
                got: vec![f_bar.len()],
            });
        }
        let z = self.terms_of(u)?;
        self.pull_back(&z, |q, _| f_bar[q])
    }

    /// The loss `‖F‖₂` and its gradient with respect to `u`. At `F = 0` the norm
    /// is not differentiable; the gradient returned there is zero (a subgradient).
    pub fn norm_and_gradient(&self, u: &[f64]) -> Result<(f64, Vec<f64>), ConstraintError> {
        let z = self.terms_of(u)?;
        let f = self.values_at(&z);
        let norm = f.iter().map(|x| x * x).sum::<f64>().sqrt();
        if !norm.is_finite() {
            return Err(ConstraintError::NonFinite {
                what: "PDE residual of u",
            });
        }
        let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
        let grad = self.pull_back(&z, |_, value| value * scale)?;
        Ok((norm, grad))
    }

    /// A loss `ℓ(F)` of the residual and its gradient with respect to `u`:
    /// `loss` takes `F` (laid out like [`FieldResidual::residual`]) and returns
    /// `ℓ` and `∂ℓ/∂F`. The terms are computed once for both.
    ///
    /// Errors: a non-finite `ℓ`, or a cotangent of the wrong length.
    pub fn loss_and_gradient(
        &self,
        u: &[f64],
        loss: impl FnOnce(&[f64]) -> (f64, Vec<f64>),
    ) -> Result<(f64, Vec<f64>), ConstraintError> {
        let z = self.terms_of(u)?;
        let (value, f_bar) = loss(&self.values_at(&z));
        if !value.is_finite() {
            return Err(ConstraintError::NonFinite {
                what: "PDE residual of u",
            });
        }
        if f_bar.len() != self.n_points * self.pde.n_equations() {
            return Err(ConstraintError::ShapeMismatch {
                what: "residual cotangent [grid points, equations]",
                expected: vec![self.n_points, self.pde.n_equations()],
                got: vec![f_bar.len()],
            });
        }
        Ok((value, self.pull_back(&z, |q, _| f_bar[q])?))
    }

    /// `Σ_j D_jᵀ (Σ_e cot(q, F_q) F_e,j)` where `cot` gives each residual's
    /// cotangent from its flat index `q = p·m + e` and value.
    fn pull_back(
        &self,
        z: &[f64],
        cot: impl Fn(usize, f64) -> f64 + Sync,
    ) -> Result<Vec<f64>, ConstraintError> {
        let (d, m) = (self.terms.len(), self.pde.n_equations());
        let mut z_bar = vec![0.0; self.n_points * d];
        z_bar
            .par_chunks_mut(BLOCK * d)
            .zip(z.par_chunks(BLOCK * d))
            .enumerate()
            .for_each(|(b, (z_bar, zb))| {
                let n = zb.len() / d;
                let mut values = vec![0.0; n * m];
                let mut grads = vec![0.0; n * m * d];
                let coords = self.block_coords(b, n);
                pointwise::gradients(self.pde.as_ref(), d, zb, coords, &mut values, &mut grads);
                for (q, (&value, g)) in values.iter().zip(grads.chunks_exact(d)).enumerate() {
                    let c = cot(b * BLOCK * m + q, value);
                    let p = q / m;
                    for (zb, gj) in z_bar[p * d..(p + 1) * d].iter_mut().zip(g) {
                        *zb += c * gj;
                    }
                }
            });
        let mut u_bar = vec![0.0; self.n_points];
        let mut column = vec![0.0; self.n_points];
        let mut pulled = vec![0.0; self.n_points];
        for (j, term) in self.terms.iter().enumerate() {
            for (c, zp) in column.iter_mut().zip(z_bar.chunks_exact(d)) {
                *c = zp[j];
            }
            term.operator.apply_adjoint(&column, 1, &mut pulled);
            for (u, v) in u_bar.iter_mut().zip(&pulled) {
                *u += v;
            }
        }
        if !u_bar.iter().all(|x| x.is_finite()) {
            return Err(ConstraintError::NonFinite {
                what: "gradient of the PDE residual",
            });
        }
        Ok(u_bar)
    }
}
