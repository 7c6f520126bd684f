//! One expert's least-squares problem: its PDE rows at the sampled points, its
//! linear (initial/boundary-condition) rows and the ridge.
//!
//! With weights `ω ∈ R^N` the residual vector is
//!
//! ```text
//! r(ω) = [ F(z(p))            for p = 0..P, m equations each   (PDE rows)
//!          L ω − c                                              (linear rows)
//!          ρ ω ]                                                (ridge rows)
//! z_j(p) = A_j[p]·ω + b_j[p]
//! ```
//!
//! Layout (chosen so one point's data is one contiguous block, which is what every
//! kernel streams through): `term_rows` is `[P, d, N]` row-major (point slowest,
//! basis index fastest), `offsets` is `[P, d]`, `linear` is `[R, N]` and
//! `linear_rhs` is `[R]` for `R` linear rows. A PDE whose residual reads its
//! point's coordinates ([`Pde::uses_coordinates`]) also needs `coordinates`,
//! `[P, ndim]` ([`ExpertProblem::with_coordinates`]).

use crate::dense;
use crate::pointwise::{self, MAX_TERMS};
use crate::{ConstraintError, Pde};

/// The paper's ridge weight `ρ` (the reference appends `1e-4·ω` to every residual).
pub const DEFAULT_RIDGE: f64 = 1e-4;

/// The sizes that fix a problem's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemSize {
    /// Number of basis functions `N` (length of `ω`).
    pub n_basis: usize,
    /// Number of PDE terms `d` (at most [`MAX_TERMS`]).
    pub n_terms: usize,
    /// Residual equations per point `m` (`Pde::n_equations`).
    pub n_equations: usize,
}

/// One expert's rows, ready for [`crate::LevenbergMarquardt`] and [`crate::Sensitivity`].
#[derive(Debug, Clone, PartialEq)]
pub struct ExpertProblem {
    size: ProblemSize,
    n_points: usize,
    term_rows: Vec<f64>,
    offsets: Vec<f64>,
    linear: Vec<f64>,
    linear_rhs: Vec<f64>,
    linear_gram: Vec<f64>,
    ridge: f64,
    /// `[P, ndim]`, or empty when the PDE does not read coordinates.
    coordinates: Vec<f64>,
}

impl ExpertProblem {
    /// A problem from its rows in the layout of the module docs; the number of
    /// points `P` follows from `term_rows.len() / (d·N)`.
    ///
    /// Shapes are checked here (typed errors); finiteness is not, so that a NaN in
    /// one sample is reported by the solver's [`crate::StopReason::NonFinite`]
    /// status instead of failing a whole batch.
    pub fn new(
        size: ProblemSize,
        term_rows: Vec<f64>,
        offsets: Vec<f64>,
        linear: Vec<f64>,
        linear_rhs: Vec<f64>,
        ridge: f64,
    ) -> Result<Self, ConstraintError> {
        let (d, n) = (size.n_terms, size.n_basis);
        check_size(size)?;
        if !term_rows.len().is_multiple_of(d * n) {
            return Err(ConstraintError::ShapeMismatch {
                what: "term rows [P, d, N]",
                expected: vec![term_rows.len() / (d * n), d, n],
                got: vec![term_rows.len()],
            });
        }
        let n_points = term_rows.len() / (d * n);
        check_parts(size, n_points, &offsets, &linear, &linear_rhs, ridge)?;
        let mut linear_gram = vec![0.0; n * n];
        dense::gram(&mut linear_gram, &linear, &linear, n, false);
        Ok(Self {
            size,
            n_points,
            term_rows,
            offsets,
            linear,
            linear_rhs,
            linear_gram,
            ridge,
            coordinates: Vec::new(),
        })
    }

    /// The problem with its points' coordinates `(t, x, (y))`, `[P, ndim]`,
    /// which a PDE that [reads them](Pde::uses_coordinates) needs.
    ///
    /// Errors: a length that is not `P·ndim` for some `ndim ≥ 1`, or
    /// non-finite coordinates.
    pub fn with_coordinates(mut self, coordinates: Vec<f64>) -> Result<Self, ConstraintError> {
        check_coordinates(self.n_points, &coordinates)?;
        self.coordinates = coordinates;
        Ok(self)
    }

    /// The layout sizes.
    pub fn size(&self) -> ProblemSize {
        self.size
    }

    /// Number of basis functions `N`.
    pub fn n_basis(&self) -> usize {
        self.size.n_basis
    }

    /// Number of terms `d`.
    pub fn n_terms(&self) -> usize {
        self.size.n_terms
    }

    /// Number of sampled points `P`.
    pub fn n_points(&self) -> usize {
        self.n_points
    }

    /// Number of linear rows `R`.
    pub fn n_linear(&self) -> usize {
        self.linear_rhs.len()
    }

    /// Length of the residual vector: `P·m + R + N`.
    pub fn n_residuals(&self) -> usize {
        self.n_points * self.size.n_equations + self.n_linear() + self.size.n_basis
    }

    /// Term rows `A_j[p]`, `[P, d, N]`.
    pub fn term_rows(&self) -> &[f64] {
        &self.term_rows
    }

    /// Offsets `b_j[p]`, `[P, d]`.
    pub fn offsets(&self) -> &[f64] {
        &self.offsets
    }

    /// Linear rows `L`, `[R, N]`.
    pub fn linear(&self) -> &[f64] {
        &self.linear
    }

    /// Right-hand sides `c` of the linear rows `L ω − c`.
    pub fn linear_rhs(&self) -> &[f64] {
        &self.linear_rhs
    }

    /// `LᵀL`, `[N, N]`: constant in `ω`, so the solver adds it once per iteration
    /// instead of re-streaming the linear rows.
    pub(crate) fn linear_gram(&self) -> &[f64] {
        &self.linear_gram
    }

    /// The ridge weight `ρ`.
    pub fn ridge(&self) -> f64 {
        self.ridge
    }

    /// The coordinates of points `first..first + len`, `[len, ndim]`; empty
    /// when the problem has none.
    ///
    /// # Panics
    /// If the range is out of bounds.
    #[track_caller]
    pub fn coordinates(&self, first: usize, len: usize) -> &[f64] {
        let width = self.coordinates.len() / self.n_points.max(1);
        &self.coordinates[first * width..(first + len) * width]
    }

    /// `z = A ω + b` at every point, `[P, d]`.
    ///
    /// # Panics
    /// If `omega` or `z` has the wrong length.
    #[track_caller]
    pub fn terms_at(&self, omega: &[f64], z: &mut [f64]) {
        let n = self.size.n_basis;
        assert_eq!(omega.len(), n, "ω has the wrong length");
        assert_eq!(z.len(), self.offsets.len(), "z buffer has the wrong length");
        dense::rows_dot(z, &self.term_rows, omega, &self.offsets, 1.0);
    }

    /// `L ω − c`, `[R]`.
    ///
    /// # Panics
    /// If `omega` or `out` has the wrong length.
    #[track_caller]
    pub fn linear_residual(&self, omega: &[f64], out: &mut [f64]) {
        let n = self.size.n_basis;
        assert_eq!(omega.len(), n, "ω has the wrong length");
        assert_eq!(out.len(), self.n_linear(), "output has the wrong length");
        dense::rows_dot(out, &self.linear, omega, &self.linear_rhs, -1.0);
    }

    /// The full residual vector `r(ω)` in the order of the module docs (used by
    /// tests and finite-difference checks; the solver never materialises it).
    pub fn residual<P: Pde>(&self, pde: &P, omega: &[f64]) -> Result<Vec<f64>, ConstraintError> {
        self.check_pde(pde)?;
        self.check_omega(omega)?;
        let (d, m) = (self.size.n_terms, self.size.n_equations);
        let mut z = vec![0.0; self.n_points * d];
        self.terms_at(omega, &mut z);
        let mut r = vec![0.0; self.n_residuals()];
        let (pde_rows, rest) = r.split_at_mut(self.n_points * m);
        pointwise::values(pde, d, &z, self.coordinates(0, self.n_points), pde_rows);
        let (lin_rows, ridge_rows) = rest.split_at_mut(self.n_linear());
        self.linear_residual(omega, lin_rows);
        for (o, w) in ridge_rows.iter_mut().zip(omega) {
            *o = self.ridge * w;
        }
        Ok(r)
    }

    /// The gradient `Jᵀr` of `½‖r(ω)‖²` (diagnostics, and Newton polishing in
    /// tests: with [`crate::Sensitivity::adjoint`] it gives the Newton step).
    pub fn gradient<P: Pde>(&self, pde: &P, omega: &[f64]) -> Result<Vec<f64>, ConstraintError> {
        self.check_pde(pde)?;
        self.check_omega(omega)?;
        let mut ws = crate::normal_equations::Workspace::new(self);
        ws.evaluate_current(pde, self, omega);
        Ok(ws.current.gradient().to_vec())
    }

    /// Checks that `pde` declares as many equations as this problem was built
    /// for, and has the coordinates it reads.
    pub(crate) fn check_pde<P: Pde>(&self, pde: &P) -> Result<(), ConstraintError> {
        if pde.n_equations() != self.size.n_equations {
            return Err(ConstraintError::ShapeMismatch {
                what: "equations per point",
                expected: vec![self.size.n_equations],
                got: vec![pde.n_equations()],
            });
        }
        if pde.uses_coordinates() && self.coordinates.is_empty() && self.n_points > 0 {
            return Err(ConstraintError::ShapeMismatch {
                what: "point coordinates [P, ndim] (the PDE's residual reads them)",
                expected: vec![self.n_points],
                got: vec![0],
            });
        }
        Ok(())
    }

    /// Checks a weight vector's length.
    pub(crate) fn check_omega(&self, omega: &[f64]) -> Result<(), ConstraintError> {
        if omega.len() != self.size.n_basis {
            return Err(ConstraintError::ShapeMismatch {
                what: "weights ω",
                expected: vec![self.size.n_basis],
                got: vec![omega.len()],
            });
        }
        Ok(())
    }
}

/// Checks the sizes every problem layout needs: `N ≥ 1`, `1 ≤ d ≤ 8`, `m ≥ 1`.
pub(crate) fn check_size(size: ProblemSize) -> Result<(), ConstraintError> {
    let ProblemSize {
        n_basis: n,
        n_terms: d,
        n_equations: m,
    } = size;
    if n == 0 || m == 0 || d == 0 || d > MAX_TERMS {
        return Err(ConstraintError::ShapeMismatch {
            what: "problem size [n_basis ≥ 1, 1 ≤ n_terms ≤ 8, n_equations ≥ 1]",
            expected: vec![n.max(1), d.clamp(1, MAX_TERMS), m.max(1)],
            got: vec![n, d, m],
        });
    }
    Ok(())
}

/// Checks a problem's parts besides its term rows against its `size` and
/// `n_points`: offsets `[P, d]`, linear rows `[R, N]` with `R` right-hand
/// sides, and a finite, non-negative ridge. Shared by every problem type, so
/// one built for the GPU is refused for what the CPU's would be.
pub(crate) fn check_parts(
    size: ProblemSize,
    n_points: usize,
    offsets: &[f64],
    linear: &[f64],
    linear_rhs: &[f64],
    ridge: f64,
) -> Result<(), ConstraintError> {
    let (d, n) = (size.n_terms, size.n_basis);
    if offsets.len() != n_points * d {
        return Err(ConstraintError::ShapeMismatch {
            what: "offsets [P, d]",
            expected: vec![n_points, d],
            got: vec![offsets.len()],
        });
    }
    if linear.len() != linear_rhs.len() * n {
        return Err(ConstraintError::ShapeMismatch {
            what: "linear rows [R, N]",
            expected: vec![linear_rhs.len(), n],
            got: vec![linear.len()],
        });
    }
    if !(ridge.is_finite() && ridge >= 0.0) {
        return Err(ConstraintError::InvalidValue {
            what: "ridge",
            value: ridge,
            reason: "must be finite and non-negative",
        });
    }
    Ok(())
}

/// Checks point coordinates `[P, ndim]` for `n_points` points: a whole
/// number of `ndim ≥ 1` per point (none without points), all finite.
pub(crate) fn check_coordinates(
    n_points: usize,
    coordinates: &[f64],
) -> Result<(), ConstraintError> {
    let p = n_points;
    if (p == 0) != coordinates.is_empty() || !coordinates.len().is_multiple_of(p.max(1)) {
        return Err(ConstraintError::ShapeMismatch {
            what: "point coordinates [P, ndim]",
            expected: vec![p],
            got: vec![coordinates.len()],
        });
    }
    if !coordinates.iter().all(|c| c.is_finite()) {
        return Err(ConstraintError::NonFinite {
            what: "point coordinates",
        });
    }
    Ok(())
}
