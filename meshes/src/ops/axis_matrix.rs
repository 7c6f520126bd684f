//! A sparse `n × n` matrix applied along one axis of a field — the kernel behind
//! every finite-difference operator.
//!
//! Seen from one axis, a row-major field with `c` channels is an
//! `[outer, n, inner · c]` array (see [`crate::Shape::around_axis`]). Applying a
//! matrix `M` along the axis means `out[o, i, :] = Σ_j M[i, j] · in[o, j, :]`: each
//! output row is a weighted sum of a few contiguous input rows, so one pass streams
//! through memory with no per-point allocation, whichever axis it is. The adjoint is
//! the same pass with `Mᵀ`, built once, entry for entry, from the same weights — so
//! `⟨M a, b⟩ = ⟨a, Mᵀ b⟩` holds up to the rounding of the sums alone.

/// A sparse square matrix in compressed-row form with sorted, distinct columns and
/// no stored zeros (the canonical form, so equal matrices compare equal).
#[derive(Debug, Clone, PartialEq)]
pub struct AxisMatrix {
    row_start: Vec<usize>,
    cols: Vec<usize>,
    weights: Vec<f64>,
}

impl AxisMatrix {
    /// A matrix from its rows of `(column, weight)` pairs. Repeated columns in a row
    /// are summed and zero weights dropped, so stencils can be written the way they
    /// read (a periodic stencil on a short axis may name one column twice).
    ///
    /// # Panics
    /// If a column is not below the number of rows, or a weight is not finite
    /// (stencil weights are built by this crate from validated spacings).
    #[track_caller]
    pub fn from_rows(rows: Vec<Vec<(usize, f64)>>) -> Self {
        let n = rows.len();
        let mut row_start = Vec::with_capacity(n + 1);
        let mut cols = Vec::new();
        let mut weights = Vec::new();
        row_start.push(0);
        for mut row in rows {
            for &(c, w) in &row {
                assert!(c < n, "column {c} out of range for a {n} × {n} matrix");
                assert!(w.is_finite(), "non-finite stencil weight {w}");
            }
            merge_row(&mut row);
            for (c, w) in row {
                cols.push(c);
                weights.push(w);
            }
            row_start.push(cols.len());
        }
        Self {
            row_start,
            cols,
            weights,
        }
    }

    /// The matrix size `n` (the length of the axis it acts along).
    pub fn len(&self) -> usize {
        self.row_start.len() - 1
    }

    /// True only for the `0 × 0` matrix.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of stored (non-zero) entries.
    pub fn nnz(&self) -> usize {
        self.cols.len()
    }

    /// Row `i` as its columns and weights.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    #[track_caller]
    pub fn row(&self, i: usize) -> (&[usize], &[f64]) {
        let range = self.row_start[i]..self.row_start[i + 1];
        (&self.cols[range.clone()], &self.weights[range])
    }

    /// The transpose, holding exactly the same weights.
    pub fn transpose(&self) -> Self {
        let n = self.len();
        let mut rows = vec![Vec::new(); n];
        for i in 0..n {
            let (cols, weights) = self.row(i);
            for (&c, &w) in cols.iter().zip(weights) {
                rows[c].push((i, w));
            }
        }
        Self::from_rows(rows)
    }

    /// The product `self · rhs`: applying it equals applying `rhs` and then `self`,
    /// in one pass instead of two (the reference scheme's second derivative is its
    /// first derivative squared).
    ///
    /// # Panics
    /// If the sizes differ.
    #[track_caller]
    pub fn product(&self, rhs: &Self) -> Self {
        assert_eq!(self.len(), rhs.len(), "matrix sizes differ");
        let rows = (0..self.len())
            .map(|i| {
                let (cols, weights) = self.row(i);
                cols.iter()
                    .zip(weights)
                    .flat_map(|(&k, &a)| {
                        let (rc, rw) = rhs.row(k);
                        rc.iter().zip(rw).map(move |(&j, &b)| (j, a * b))
                    })
                    .collect()
            })
            .collect();
        Self::from_rows(rows)
    }

    /// `out[o, i, :] = Σ_j M[i, j] · input[o, j, :]` for a field seen as
    /// `[outer, n, inner]` (`inner` counts values, channels included).
    ///
    /// # Panics
    /// If `input` or `out` does not hold `n · inner` values per outer block, or
    /// `inner` is zero.
    #[track_caller]
    pub fn apply_along(&self, input: &[f64], inner: usize, out: &mut [f64]) {
        let block = self.len() * inner;
        assert!(
            block > 0 && input.len() == out.len() && input.len().is_multiple_of(block),
            "field of {} values (output {}) is not a whole number of {}-point lines of {inner} values",
            input.len(),
            out.len(),
            self.len(),
        );
        for (src, dst) in input.chunks_exact(block).zip(out.chunks_exact_mut(block)) {
            for (i, dst_row) in dst.chunks_exact_mut(inner).enumerate() {
                self.combine_row(i, |col| &src[col * inner..][..inner], dst_row);
            }
        }
    }

    /// `dst = Σ_j M[i, j] · line(j)`, where `line(j)` is the input line at column
    /// `j` (at least `dst.len()` values): one output row of
    /// [`AxisMatrix::apply_along`], shared with the point-wise evaluation of
    /// finite differences so that both give bit-identical values.
    ///
    /// # Panics
    /// If `i >= self.len()` or a line is shorter than `dst`.
    #[track_caller]
    #[inline]
    pub(crate) fn combine_row<'a>(
        &self,
        i: usize,
        line: impl Fn(usize) -> &'a [f64],
        dst: &mut [f64],
    ) {
        let (cols, weights) = self.row(i);
        let len = dst.len();
        let line = |j: usize| &line(cols[j])[..len];
        match cols.len() {
            0 => dst.fill(0.0),
            1 => {
                let (w0, a) = (weights[0], line(0));
                dst.iter_mut().zip(a).for_each(|(d, &a)| *d = w0 * a);
            }
            2 => {
                let (w0, a, w1, b) = (weights[0], line(0), weights[1], line(1));
                for ((d, &a), &b) in dst.iter_mut().zip(a).zip(b) {
                    *d = w0 * a + w1 * b;
                }
            }
            _ => {
                let (w0, a, w1, b) = (weights[0], line(0), weights[1], line(1));
                let (w2, c) = (weights[2], line(2));
                for (((d, &a), &b), &c) in dst.iter_mut().zip(a).zip(b).zip(c) {
                    *d = w0 * a + w1 * b + w2 * c;
                }
                for (j, &w) in weights.iter().enumerate().skip(3) {
                    let x = line(j);
                    dst.iter_mut().zip(x).for_each(|(d, &x)| *d += w * x);
                }
            }
        }
    }
}

/// Brings a sparse row of `(column, weight)` pairs to canonical form: sorted by
/// column, repeated columns summed in the order given, exact zero sums dropped.
/// Shared by [`AxisMatrix`] and [`crate::ops::sparse_rows::SparseRows`], so
/// both merge stencils the same way and equal rows compare equal.
pub(crate) fn merge_row(row: &mut Vec<(usize, f64)>) {
    // Stable, so repeats keep their order and their sum is reproducible.
    row.sort_by_key(|&(c, _)| c);
    row.dedup_by(|next, kept| {
        let same = next.0 == kept.0;
        if same {
            kept.1 += next.1;
        }
        same
    });
    row.retain(|&(_, w)| w != 0.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense(m: &AxisMatrix) -> Vec<Vec<f64>> {
        let n = m.len();
        (0..n)
            .map(|i| {
                let mut row = vec![0.0; n];
                let (cols, weights) = m.row(i);
                cols.iter().zip(weights).for_each(|(&c, &w)| row[c] = w);
                row
            })
            .collect()
    }

    /// A small matrix with rows of 0 to 5 entries, so every branch of the kernel runs.
    fn sample() -> AxisMatrix {
        AxisMatrix::from_rows(vec![
            vec![],
            vec![(2, 1.5)],
            vec![(0, -1.0), (5, 2.0)],
            vec![(1, 0.25), (3, -3.0), (4, 0.5)],
            vec![(0, 1.0), (1, 2.0), (2, 3.0), (3, 4.0), (5, 5.0)],
            vec![(5, 1.0), (5, 1.0), (4, 0.0)],
        ])
    }

    #[test]
    fn from_rows_merges_repeats_and_drops_zeros() {
        let m = sample();
        assert_eq!(m.row(5), (&[5usize][..], &[2.0][..]));
        assert_eq!(m.row(0).0.len(), 0);
        assert_eq!(m.nnz(), 12);
        let cancel = AxisMatrix::from_rows(vec![vec![(1, 0.5), (1, -0.5)], vec![(0, 1.0)]]);
        assert_eq!(cancel.nnz(), 1);
    }

    #[test]
    fn apply_along_matches_dense_product_on_every_axis_layout() {
        let m = sample();
        let d = dense(&m);
        let (outer, n, inner) = (3, m.len(), 4);
        let input: Vec<f64> = (0..outer * n * inner)
            .map(|k| ((k * 37 % 101) as f64 - 50.0) / 7.0)
            .collect();
        let mut out = vec![f64::NAN; input.len()];
        m.apply_along(&input, inner, &mut out);
        for o in 0..outer {
            for i in 0..n {
                for c in 0..inner {
                    let expected: f64 = (0..n)
                        .map(|j| d[i][j] * input[(o * n + j) * inner + c])
                        .sum();
                    let got = out[(o * n + i) * inner + c];
                    assert!((got - expected).abs() <= 1e-13 * (1.0 + expected.abs()));
                }
            }
        }
    }

    #[test]
    fn transpose_and_product_match_dense_algebra() {
        let m = sample();
        let (d, n) = (dense(&m), m.len());
        let t = dense(&m.transpose());
        let p = dense(&m.product(&m.transpose()));
        for i in 0..n {
            for j in 0..n {
                assert_eq!(t[i][j], d[j][i]);
                let expected: f64 = (0..n).map(|k| d[i][k] * d[j][k]).sum();
                assert!((p[i][j] - expected).abs() <= 1e-13 * (1.0 + expected.abs()));
            }
        }
        assert_eq!(m.transpose().transpose(), m);
    }

    #[test]
    #[should_panic(expected = "column 3 out of range")]
    fn column_out_of_range_panics() {
        AxisMatrix::from_rows(vec![vec![(3, 1.0)], vec![]]);
    }
}
