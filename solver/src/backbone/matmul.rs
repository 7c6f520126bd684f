//! Thin row-major views over faer's matrix multiply, so the kernels read like
//! the algebra they implement (`C += αAB` on slices).

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

use super::Real;

/// A row-major `rows × cols` view of `data` whose rows start `stride` apart.
pub(crate) fn view<T: Real>(data: &[T], rows: usize, cols: usize, stride: usize) -> MatRef<'_, T> {
    MatRef::from_row_major_slice_with_stride(data, rows, cols, stride)
}

/// A contiguous row-major `rows × cols` view of `data`.
pub(crate) fn dense<T: Real>(data: &[T], rows: usize, cols: usize) -> MatRef<'_, T> {
    MatRef::from_row_major_slice(&data[..rows * cols], rows, cols)
}

/// A contiguous row-major mutable `rows × cols` view of `data`.
pub(crate) fn dense_mut<T: Real>(data: &mut [T], rows: usize, cols: usize) -> MatMut<'_, T> {
    MatMut::from_row_major_slice_mut(&mut data[..rows * cols], rows, cols)
}

/// A row-major mutable `rows × cols` view whose rows start `stride` apart.
///
/// Built as the transpose of a column-major view: faer 0.24.4's
/// `from_row_major_slice_with_stride_mut` swaps the two strides (it yields a
/// column-major matrix), which `strided_views_match_naive_products` catches.
pub(crate) fn view_mut<T: Real>(
    data: &mut [T],
    rows: usize,
    cols: usize,
    stride: usize,
) -> MatMut<'_, T> {
    MatMut::from_column_major_slice_with_stride_mut(data, cols, rows, stride).transpose_mut()
}

/// `dst = α·lhs·rhs` (`accumulate == false`) or `dst += α·lhs·rhs`.
pub(crate) fn gemm<T: Real>(
    dst: MatMut<'_, T>,
    accumulate: bool,
    lhs: MatRef<'_, T>,
    rhs: MatRef<'_, T>,
    alpha: T,
    par: Par,
) {
    let accum = if accumulate {
        Accum::Add
    } else {
        Accum::Replace
    };
    matmul(dst, accum, lhs, rhs, alpha, par);
}

/// `out[c] = Σ_r data[r, c]` for a contiguous `[rows, cols]` array, summed in a
/// fixed chunk order so the result does not depend on thread scheduling
/// (training resumes bit for bit).
pub(crate) fn column_sums<T: Real>(data: &[T], cols: usize) -> Vec<T> {
    use rayon::prelude::*;
    let rows = data.len() / cols;
    let chunk_rows = rows.div_ceil(CHUNKS).max(1);
    let partials: Vec<Vec<T>> = data
        .par_chunks(chunk_rows * cols)
        .map(|chunk| {
            let mut acc = vec![T::zero(); cols];
            for row in chunk.chunks_exact(cols) {
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a += v;
                }
            }
            acc
        })
        .collect();
    sum_in_order(partials, cols)
}

/// `lhsᵀ · rhs` for two contiguous arrays `[rows, p]` and `[rows, q]` with many
/// rows: the weight gradient of a pointwise layer. Rows are split into a fixed
/// number of chunks whose partial products are summed in order, so the result
/// is deterministic and both cores stay busy.
pub(crate) fn gram<T: Real>(lhs: &[T], p: usize, rhs: &[T], q: usize) -> Vec<T> {
    use rayon::prelude::*;
    let rows = lhs.len() / p;
    debug_assert_eq!(rhs.len(), rows * q);
    let chunk_rows = rows.div_ceil(CHUNKS).max(1);
    let partials: Vec<Vec<T>> = lhs
        .par_chunks(chunk_rows * p)
        .zip(rhs.par_chunks(chunk_rows * q))
        .map(|(l, r)| {
            let n = l.len() / p;
            let mut acc = vec![T::zero(); p * q];
            gemm(
                dense_mut(&mut acc, p, q),
                false,
                dense(l, n, p).transpose(),
                dense(r, n, q),
                T::one(),
                Par::Seq,
            );
            acc
        })
        .collect();
    sum_in_order(partials, p * q)
}

/// `out = lhs · rhs` for a contiguous `[rows, k]` array with many rows and a small
/// `[k, n]` matrix (`rhs_transposed` reads `rhs` as `[n, k]` and uses its
/// transpose), split over rows in parallel. `accumulate` adds into `out`.
pub(crate) fn rows_times<T: Real>(
    out: &mut [T],
    accumulate: bool,
    lhs: &[T],
    k: usize,
    rhs: MatRef<'_, T>,
) {
    use rayon::prelude::*;
    let n = rhs.ncols();
    let rows = lhs.len() / k;
    let chunk_rows = rows.div_ceil(4 * CHUNKS).max(1);
    out.par_chunks_mut(chunk_rows * n)
        .zip(lhs.par_chunks(chunk_rows * k))
        .for_each(|(o, l)| {
            let m = l.len() / k;
            gemm(
                dense_mut(o, m, n),
                accumulate,
                dense(l, m, k),
                rhs,
                T::one(),
                Par::Seq,
            );
        });
}

/// Number of row chunks the reductions above split into: fixed, so sums are
/// reproducible on any number of threads.
const CHUNKS: usize = 16;

fn sum_in_order<T: Real>(partials: Vec<Vec<T>>, len: usize) -> Vec<T> {
    let mut out = vec![T::zero(); len];
    for part in partials {
        for (o, v) in out.iter_mut().zip(part) {
            *o += v;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|l| a[i * k + l] * b[l * n + j]).sum();
            }
        }
        c
    }

    fn data(n: usize, s: f64) -> Vec<f64> {
        (0..n).map(|i| ((i as f64 + 1.0) * s).sin()).collect()
    }

    #[test]
    fn helpers_match_naive_products() {
        for &(m, k, n) in &[(3, 5, 4), (16, 101, 40), (1, 7, 2), (70, 9, 33)] {
            let (a, b) = (data(m * k, 0.3), data(k * n, 0.7));
            let expected = naive(&a, &b, m, k, n);
            let mut c = vec![1.0; m * n];
            gemm(
                dense_mut(&mut c, m, n),
                false,
                dense(&a, m, k),
                dense(&b, k, n),
                1.0,
                Par::Seq,
            );
            for (x, y) in c.iter().zip(&expected) {
                assert!((x - y).abs() < 1e-12 * k as f64, "{m}x{k}x{n}: {x} vs {y}");
            }
            let mut out = vec![0.0; m * n];
            rows_times(&mut out, false, &a, k, dense(&b, k, n));
            assert_eq!(out.len(), expected.len());
            for (x, y) in out.iter().zip(&expected) {
                assert!((x - y).abs() < 1e-12 * k as f64);
            }
            // aᵀ·c for a [m, k] and c [m, n] is the naive product of the transpose.
            let at: Vec<f64> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
            let g = gram(&a, k, &expected, n);
            let expected_g = naive(&at, &expected, k, m, n);
            for (x, y) in g.iter().zip(&expected_g) {
                assert!((x - y).abs() < 1e-10 * (m * k) as f64);
            }
        }
    }

    /// Products into strided row-major destinations (the spectral mixing writes
    /// one mode of a `[batch, K, c]` array at a time) hit exactly the right
    /// entries and nothing past them.
    #[test]
    fn strided_views_match_naive_products() {
        for &(m, k, n, s) in &[
            (2usize, 3usize, 2usize, 7usize),
            (1, 3, 2, 5),
            (2, 3, 4, 9),
            (5, 4, 3, 4),
        ] {
            let a: Vec<f64> = (0..m * k).map(|i| i as f64 + 1.0).collect();
            let b: Vec<f64> = (0..k * n).map(|i| (i as f64) * 0.5 - 1.0).collect();
            let mut big = vec![0.0; (m - 1) * s + n + 3];
            let sentinel = big.len() - 3;
            big[sentinel..].fill(99.0);
            gemm(
                view_mut(&mut big[..(m - 1) * s + n], m, n, s),
                false,
                dense(&a, m, k),
                dense(&b, k, n),
                1.0,
                Par::Seq,
            );
            assert!(
                big[sentinel..].iter().all(|&v| v == 99.0),
                "overwrite {m} {k} {n} {s}"
            );
            for i in 0..m {
                for j in 0..n {
                    let e: f64 = (0..k).map(|l| a[i * k + l] * b[l * n + j]).sum();
                    assert_eq!(big[i * s + j], e, "{m} {k} {n} {s} at {i},{j}");
                }
            }
        }
    }

    /// A product that replaces never reads its output: the backbone's
    /// buffers come from a pool holding whatever their last user left (NaN
    /// included), and the product overwrites it.
    #[test]
    fn replacing_products_never_read_the_output() {
        let (rows, k, n) = (37, 3, 4);
        let lhs: Vec<f64> = (0..rows * k).map(|i| (i as f64 * 0.3).sin()).collect();
        let rhs: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.7).cos()).collect();
        let mut zeroed = vec![0.0; rows * n];
        rows_times(&mut zeroed, false, &lhs, k, dense(&rhs, k, n));
        let mut dirty = vec![f64::NAN; rows * n];
        rows_times(&mut dirty, false, &lhs, k, dense(&rhs, k, n));
        assert!(zeroed.iter().all(|v| v.is_finite() && *v != 0.0));
        assert_eq!(dirty, zeroed);
        let mut dirty = vec![f64::INFINITY; rows * n];
        gemm(
            dense_mut(&mut dirty, rows, n),
            false,
            dense(&lhs, rows, k),
            dense(&rhs, k, n),
            1.0,
            Par::Seq,
        );
        assert_eq!(dirty, zeroed);
    }
}
