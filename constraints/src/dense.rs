//! The small dense linear algebra the solver needs, on row-major slices: Gram
//! products `AᵀB` of tall `rows × n` blocks and the factorisation of `n × n`
//! symmetric systems (faer underneath).

use faer::linalg::solvers::{FullPivLu, Llt, Solve};
use faer::{Accum, ColRef, Mat, MatMut, MatRef, Par, Side};

/// `dst (+)= aᵀ b` for row-major `a`, `b` of shape `rows × n` and row-major
/// `dst` of shape `n × n` (`accumulate` adds to `dst`, otherwise overwrites).
///
/// # Panics
/// If the lengths disagree with `n`.
#[track_caller]
pub(crate) fn gram(dst: &mut [f64], a: &[f64], b: &[f64], n: usize, accumulate: bool) {
    assert_eq!(a.len(), b.len(), "Gram factors differ in length");
    assert_eq!(a.len() % n, 0, "Gram factor is not a whole number of rows");
    assert_eq!(dst.len(), n * n, "Gram destination has the wrong length");
    let rows = a.len() / n;
    let a = MatRef::from_row_major_slice(a, rows, n);
    let b = MatRef::from_row_major_slice(b, rows, n);
    let dst = MatMut::from_row_major_slice_mut(dst, n, n);
    let beta = if accumulate {
        Accum::Add
    } else {
        Accum::Replace
    };
    faer::linalg::matmul::matmul(dst, beta, a.transpose(), b, 1.0, Par::Seq);
}

/// `out = aᵀ v` for row-major `a` of shape `rows × n`, added to `out` when
/// `accumulate`. Summed row by row in index order, so the result never depends
/// on threading.
///
/// # Panics
/// If the lengths disagree.
#[track_caller]
pub(crate) fn transpose_times(out: &mut [f64], a: &[f64], v: &[f64], accumulate: bool) {
    let n = out.len();
    assert_eq!(a.len(), v.len() * n, "matrix and vector lengths disagree");
    if !accumulate {
        out.fill(0.0);
    }
    for (row, &vi) in a.chunks_exact(n).zip(v) {
        for (o, &x) in out.iter_mut().zip(row) {
            *o += x * vi;
        }
    }
}

/// `Σ_i a_i b_i`.
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A factorised `n × n` symmetric matrix: Cholesky when it is positive definite in
/// floating point, otherwise full-pivot LU (for the exact IFT Hessian, which can
/// be indefinite away from a strict minimum).
pub(crate) enum SymmetricFactor {
    /// `H = L Lᵀ`.
    Cholesky(Llt<f64>),
    /// `P H Q = L U`.
    Lu(FullPivLu<f64>),
}

impl SymmetricFactor {
    /// Cholesky only; `None` when the matrix is not numerically positive definite
    /// (the caller decides what to do: increase damping, or fall back).
    pub(crate) fn cholesky(h: &[f64], n: usize) -> Option<Llt<f64>> {
        to_mat(h, n).llt(Side::Lower).ok()
    }

    /// Cholesky, falling back to full-pivot LU when it fails.
    pub(crate) fn factor(h: &[f64], n: usize) -> Self {
        let m = to_mat(h, n);
        match m.llt(Side::Lower) {
            Ok(llt) => Self::Cholesky(llt),
            Err(_) => Self::Lu(m.full_piv_lu()),
        }
    }

    /// `H⁻¹ rhs`.
    pub(crate) fn solve(&self, rhs: &[f64]) -> Vec<f64> {
        match self {
            Self::Cholesky(f) => solve_with(f, rhs),
            Self::Lu(f) => solve_with(f, rhs),
        }
    }
}

/// `f⁻¹ rhs` for any faer factorisation.
pub(crate) fn solve_with(f: &impl Solve<f64>, rhs: &[f64]) -> Vec<f64> {
    let x = f.solve(ColRef::from_slice(rhs));
    (0..rhs.len()).map(|i| x[i]).collect()
}

fn to_mat(h: &[f64], n: usize) -> Mat<f64> {
    Mat::from_fn(n, n, |i, j| h[i * n + j])
}
