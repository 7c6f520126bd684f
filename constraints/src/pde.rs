//! What a PDE must declare to be enforced as a hard constraint.
//!
//! A PDE enters the constraint layer through three things:
//! - its **terms** `z_j = D_j u` (+ an optional affine offset `b_j`), each a
//!   [`LinearOperator`] applied to every basis function on the full grid;
//! - its pointwise **residual** `F(z; params)`, written once generically over
//!   forward-mode dual numbers so that value, gradient and Hessian in `z` all come
//!   from the same definition (never hand-derived per PDE);
//! - its **linear rows** (initial and boundary conditions), each a combination of
//!   terms at one grid point minus a right-hand side.

use std::sync::Arc;

use num_dual::DualNum;
use tessera_meshes::{Grid, LinearOperator};

use crate::{ConstraintError, pointwise};

/// One linear term `z_j = D_j u` of the PDE.
#[derive(Debug, Clone)]
pub struct Term {
    /// A physicist's name for the term (`"u"`, `"u_t"`, `"u_xx"`, `"w_x"`, …).
    pub name: String,
    /// The operator `D_j` on the grid (identity for `u` itself).
    pub operator: Arc<dyn LinearOperator>,
}

/// One linear constraint row `Σ_j c_j · z_j(point) − rhs` (an initial- or
/// boundary-condition residual). With `z_j(p) = A_j[p]·ω + b_j[p]` it is affine in `ω`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearRow {
    /// Flat grid index of the point the row is evaluated at.
    pub point: usize,
    /// `(term index, coefficient)` pairs.
    pub coeffs: Vec<(usize, f64)>,
    /// The right-hand side subtracted from the combination.
    pub rhs: f64,
}

/// The cotangent of one [`LinearRow`] (`∂L/∂` its numbers), what
/// [`Pde::initial_condition_backward`] maps back to the initial condition.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearRowBar {
    /// `∂L/∂c_j` for each of the row's coefficients, in its `coeffs` order.
    pub coeffs: Vec<f64>,
    /// `∂L/∂rhs`.
    pub rhs: f64,
}

/// A PDE as the hard-constraint layer sees it.
///
/// The terms act on the *solution* `u`; [`Pde::solution_map`] says how `u` is made
/// from the basis. Per-sample data (the initial condition) reaches the constraint
/// through [`Pde::linear_rows`] and [`Pde::solution_offset`]; the pointwise residual
/// sees only the terms.
pub trait Pde: Send + Sync {
    /// The terms `D_j` acting on the solution `u` on `grid`, in the order
    /// [`Pde::residual`] receives them. A term that only a linear row uses (e.g.
    /// `u_x` for a Robin boundary) is listed too; the residual may ignore it.
    fn terms(&self, grid: &Grid) -> Result<Vec<Term>, ConstraintError>;

    /// Number of residual equations per point (1 for a scalar PDE; more for systems).
    fn n_equations(&self) -> usize {
        1
    }

    /// How many terms — the first ones, in [`Pde::terms`] order — the pointwise
    /// residual reads; `None` (the default) means all of them. Terms after these
    /// enter only linear rows (diffusion–sorption's `u_x`, used by its Robin
    /// boundary row alone). Declaring them keeps the solver from storing and
    /// streaming them at every sampled point: the term rows are the data each
    /// Levenberg–Marquardt iteration reads, so an unused term costs `1/d` of the
    /// solve.
    fn residual_terms(&self) -> Option<usize> {
        None
    }

    /// Whether the residual reads the coordinates `(t, x, (y))` of its point: a
    /// source term `f(t, x)`, a coefficient that varies in space or time. Only
    /// then does the constraint layer gather and stream them (`[n, ndim]` per
    /// block of points); a residual of the terms alone (the default) gets an
    /// empty slice and pays nothing.
    fn uses_coordinates(&self) -> bool {
        false
    }

    /// The pointwise residual: `z` holds one value per residual term (the first
    /// [`Pde::residual_terms`] terms), `coords` the point's `(t, x, (y))` when
    /// [`Pde::uses_coordinates`] (empty otherwise), and `out` receives
    /// [`Pde::n_equations`] residuals. Generic over the number type so one
    /// definition yields value, gradient and Hessian in `z`; the coordinates
    /// are data, never differentiated.
    fn residual<D: DualNum<Primitive = f64> + Copy>(&self, z: &[D], coords: &[f64], out: &mut [D]);

    /// Residual values at a block of points: `z` is `[n, d]`, `coords`
    /// `[n, ndim]` or empty (as in [`Pde::residual`]), `values` `[n, m]`
    /// (layouts of [`crate::pointwise`], which checks the lengths before
    /// calling). The default runs [`Pde::residual`] point by point, which for a
    /// residual compiled from Rust is as fast as it gets; a PDE whose residual
    /// is interpreted (a [`crate::expr::Tape`]) overrides the three block
    /// methods to run each instruction over the whole block, which pays the
    /// interpreter's dispatch once per block instead of once per point.
    fn residual_values_block(&self, d: usize, z: &[f64], coords: &[f64], values: &mut [f64]) {
        pointwise::values_per_point(self, d, z, coords, values);
    }

    /// Values and gradients `[n, m, d]` at a block of points; as
    /// [`Pde::residual_values_block`], the default runs [`Pde::residual`] on
    /// `DualSVec64<d>` point by point.
    fn residual_gradients_block(
        &self,
        d: usize,
        z: &[f64],
        coords: &[f64],
        values: &mut [f64],
        grads: &mut [f64],
    ) {
        pointwise::gradients_per_point(self, d, z, coords, values, grads);
    }

    /// Values, gradients and Hessians `[n, m, d, d]` at a block of points; as
    /// [`Pde::residual_values_block`], the default runs [`Pde::residual`] on
    /// `Dual2SVec64<d>` point by point.
    fn residual_hessians_block(
        &self,
        d: usize,
        z: &[f64],
        coords: &[f64],
        values: &mut [f64],
        grads: &mut [f64],
        hessians: &mut [f64],
    ) {
        pointwise::hessians_per_point(self, d, z, coords, values, grads, hessians);
    }

    /// Initial/boundary-condition rows for one sample with initial condition `ic`
    /// (values at the first time level, laid out `[x, (y)]`).
    fn linear_rows(&self, grid: &Grid, ic: &[f64]) -> Result<Vec<LinearRow>, ConstraintError>;

    /// How the basis enters the solution: `u = S(Bω) + s₀`. `None` means
    /// `S` is the identity (the usual case). Models that build the initial
    /// condition in (Navier–Stokes: `S` scales by a mollifier in `t` and removes
    /// the spatial mean) return their `S` here. The constraint layer then uses
    /// the terms `A_j = D_j S B` with affine offsets `b_j = D_j s₀`.
    fn solution_map(
        &self,
        grid: &Grid,
    ) -> Result<Option<Arc<dyn LinearOperator>>, ConstraintError> {
        let _ = grid;
        Ok(None)
    }

    /// The affine part `s₀` of the solution for one sample (`[t, x, (y)]`, one
    /// channel), or `None` when `u = S(Bω)` exactly.
    fn solution_offset(
        &self,
        grid: &Grid,
        ic: &[f64],
    ) -> Result<Option<Vec<f64>>, ConstraintError> {
        let _ = (grid, ic);
        Ok(None)
    }

    /// The backward pass of a sample's constraint data in its initial
    /// condition: `∂L/∂ic` (laid out like `ic`) from the cotangents of what
    /// [`Pde::linear_rows`] returned for `ic` (`rows`, one per row, in its
    /// order) and of the offset [`Pde::solution_offset`] returned (`offset`,
    /// `None` when it returned none). The constraint layer calls it to
    /// differentiate in the initial condition (inverse problems, data
    /// assimilation, a learned initial state).
    ///
    /// Why the PDE answers: only it knows how `ic` becomes rows (a row's
    /// right-hand side, a coefficient like diffusion–sorption's `1/u₀`, an
    /// offset repeated over time). The default returns
    /// [`ConstraintError::NoDerivative`]; every PDE of the scenarios
    /// implements it.
    ///
    /// Errors: cotangents that do not fit the rows or offset, and those of
    /// [`Pde::linear_rows`].
    fn initial_condition_backward(
        &self,
        grid: &Grid,
        ic: &[f64],
        rows: &[LinearRowBar],
        offset: Option<&[f64]>,
    ) -> Result<Vec<f64>, ConstraintError> {
        let _ = (grid, ic, rows, offset);
        Err(ConstraintError::NoDerivative {
            what: "the initial condition (the PDE does not implement \
                   Pde::initial_condition_backward)",
        })
    }
}

/// Checks the cotangents an implementation of
/// [`Pde::initial_condition_backward`] receives against what `pde` builds
/// for `ic` on `grid`: one bar per row with one number per coefficient, and
/// an offset cotangent exactly where the PDE has an offset, of its length.
///
/// Errors: those of [`Pde::linear_rows`] and [`Pde::solution_offset`], and
/// [`ConstraintError::ShapeMismatch`] where a cotangent does not fit.
pub fn check_cotangents<P: Pde + ?Sized>(
    pde: &P,
    grid: &Grid,
    ic: &[f64],
    rows: &[LinearRowBar],
    offset: Option<&[f64]>,
) -> Result<(), ConstraintError> {
    let built = pde.linear_rows(grid, ic)?;
    let fits = built.len() == rows.len()
        && built
            .iter()
            .zip(rows)
            .all(|(row, bar)| row.coeffs.len() == bar.coeffs.len());
    if !fits {
        return Err(ConstraintError::ShapeMismatch {
            what: "linear-row cotangents (one per row, one number per coefficient)",
            expected: vec![built.len()],
            got: vec![rows.len()],
        });
    }
    let expected = pde.solution_offset(grid, ic)?.map(|s| s.len());
    let got = offset.map(<[f64]>::len);
    if expected != got {
        return Err(ConstraintError::ShapeMismatch {
            what: "solution-offset cotangent (present exactly where the PDE has an offset)",
            expected: expected.into_iter().collect(),
            got: got.into_iter().collect(),
        });
    }
    Ok(())
}

/// The backward pass of `x.repeat(n)`: `repeated` (`n·len` values)
/// summed over its `n` copies, `len` values. The cotangent of an initial
/// condition that a PDE's [`Pde::solution_offset`] broadcasts over every
/// time level.
pub fn sum_repeats(repeated: &[f64], len: usize) -> Vec<f64> {
    let mut sum = vec![0.0; len];
    for copy in repeated.chunks_exact(len.max(1)) {
        sum.iter_mut().zip(copy).for_each(|(s, x)| *s += x);
    }
    sum
}

/// The number of residual terms `d_r` of `pde` when it declares `n_terms` terms
/// in all: [`Pde::residual_terms`], checked to lie in `1..=n_terms` (all terms
/// when it says `None`).
pub fn residual_term_count<P: Pde + ?Sized>(
    pde: &P,
    n_terms: usize,
) -> Result<usize, ConstraintError> {
    match pde.residual_terms() {
        None => Ok(n_terms),
        Some(d) if (1..=n_terms).contains(&d) => Ok(d),
        Some(d) => Err(ConstraintError::ShapeMismatch {
            what: "residual terms (1..=number of terms)",
            expected: vec![n_terms],
            got: vec![d],
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PDE that declares a given number of residual terms (and nothing else).
    struct Declares(Option<usize>);

    impl Pde for Declares {
        fn terms(&self, _: &Grid) -> Result<Vec<Term>, ConstraintError> {
            Ok(Vec::new())
        }
        fn residual_terms(&self) -> Option<usize> {
            self.0
        }
        fn residual<D: DualNum<Primitive = f64> + Copy>(&self, z: &[D], _: &[f64], out: &mut [D]) {
            out[0] = z[0];
        }
        fn linear_rows(&self, _: &Grid, _: &[f64]) -> Result<Vec<LinearRow>, ConstraintError> {
            Ok(Vec::new())
        }
    }

    #[test]
    fn residual_term_count_defaults_to_all_and_rejects_out_of_range() {
        assert_eq!(residual_term_count(&Declares(None), 4).unwrap(), 4);
        assert_eq!(residual_term_count(&Declares(Some(1)), 4).unwrap(), 1);
        assert_eq!(residual_term_count(&Declares(Some(4)), 4).unwrap(), 4);
        for bad in [0, 5] {
            assert!(matches!(
                residual_term_count(&Declares(Some(bad)), 4),
                Err(ConstraintError::ShapeMismatch { .. })
            ));
        }
    }
}
