//! The small dense linear algebra the solver needs, on row-major slices: Gram
//! products `AᵀB` of tall `rows × n` blocks and the factorisation of `n × n`
//! symmetric systems (faer underneath).
//!
//! **Vectorisation.** The workspace compiles for baseline x86-64 (SSE2), so the
//! hot streaming loops are defined with `vectorized_fn!`, which compiles them
//! again for AVX2/FMA and for AVX-512 and picks the widest build the CPU runs at
//! run time (as faer does for its own kernels). [`dot`] keeps [`LANES`] independent partial sums so
//! that it is not one long chain of dependent additions; its summation order is
//! fixed, so results never depend on threading.

/// Defines a function whose body is compiled three times — for baseline x86-64,
/// for AVX2 + FMA and for AVX-512 — and picks the widest build the CPU runs.
/// The body and every helper it calls must inline (`#[inline(always)]`), so
/// that the vector instructions reach the loops themselves.
macro_rules! vectorized_fn {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                fn avx512($($arg: $ty),*) {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) {
                    body($($arg),*)
                }
                let has_avx2 = std::is_x86_feature_detected!("avx2")
                    && std::is_x86_feature_detected!("fma");
                if has_avx2 && std::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has the features `avx512` is compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if has_avx2 {
                    // SAFETY: the CPU has the features `avx2` is compiled for.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use vectorized_fn;

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

vectorized_fn! {
    /// `out (+)= aᵀ v` for row-major `a` of shape `rows × out.len()`: added to
    /// `out` when `accumulate`. Summed row by row in index order, so the result
    /// never depends on threading. Extra rows or entries of `v` are ignored.
    pub(crate) fn transpose_times(out: &mut [f64], a: &[f64], v: &[f64], accumulate: bool) {
        if !accumulate {
            out.fill(0.0);
        }
        let n = out.len();
        for (row, &vi) in a.chunks_exact(n).zip(v) {
            axpy(out, vi, row);
        }
    }
}

vectorized_fn! {
    /// `out_i = a_i·v + sign·shift_i` for the rows `a_i` (length `v.len()`) of
    /// row-major `a`: the terms `Aω + b` and the linear residuals `Lω − c`.
    pub(crate) fn rows_dot(out: &mut [f64], a: &[f64], v: &[f64], shift: &[f64], sign: f64) {
        for ((o, row), &b) in out.iter_mut().zip(a.chunks_exact(v.len())).zip(shift) {
            *o = dot(row, v) + sign * b;
        }
    }
}

/// Independent partial sums of [`dot`] (one AVX-512 register, two AVX2 ones).
const LANES: usize = 8;

/// `Σ_i a_i b_i` over the common length, summed in [`LANES`] interleaved partial
/// sums and then pairwise, always in the same order.
#[inline(always)]
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    let len = a.len().min(b.len());
    let (a_chunks, a_tail) = a[..len].as_chunks::<LANES>();
    let (b_chunks, b_tail) = b[..len].as_chunks::<LANES>();
    let mut acc = [0.0; LANES];
    for (x, y) in a_chunks.iter().zip(b_chunks) {
        for k in 0..LANES {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f64 = a_tail.iter().zip(b_tail).map(|(x, y)| x * y).sum();
    let quads = [
        acc[0] + acc[4],
        acc[1] + acc[5],
        acc[2] + acc[6],
        acc[3] + acc[7],
    ];
    ((quads[0] + quads[2]) + (quads[1] + quads[3])) + tail
}

/// `out += s · x` (element-wise over the common length).
#[inline(always)]
pub(crate) fn axpy(out: &mut [f64], s: f64, x: &[f64]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o += s * v;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic test values with no special structure.
    fn values(len: usize, seed: f64) -> Vec<f64> {
        (0..len).map(|i| (seed + 0.37 * i as f64).sin()).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-14 * (1.0 + a.abs().max(b.abs()))
    }

    #[test]
    fn kernels_match_plain_loops_for_every_length() {
        // Lengths around the lane count exercise the chunked part and the tail.
        for n in 1..=2 * LANES + 3 {
            let (a, b) = (values(n, 0.1), values(n, 1.7));
            let plain: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!(close(dot(&a, &b), plain), "dot, n = {n}");

            let rows = 5;
            let m = values(rows * n, 2.3);
            let shift = values(rows, 3.1);
            let mut out = vec![0.0; rows];
            rows_dot(&mut out, &m, &b, &shift, -1.0);
            for (i, o) in out.iter().enumerate() {
                let row = &m[i * n..(i + 1) * n];
                let plain: f64 = row.iter().zip(&b).map(|(x, y)| x * y).sum::<f64>() - shift[i];
                assert!(close(*o, plain), "rows_dot, n = {n}, row {i}");
            }

            let v = values(rows, 4.3);
            let mut t = vec![1.0; n];
            transpose_times(&mut t, &m, &v, true);
            for (j, tj) in t.iter().enumerate() {
                let plain = 1.0 + (0..rows).map(|i| m[i * n + j] * v[i]).sum::<f64>();
                assert!(close(*tj, plain), "transpose_times, n = {n}, column {j}");
            }
        }
    }
}
