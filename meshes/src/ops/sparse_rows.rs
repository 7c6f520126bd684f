//! Rows of local operators at chosen points, exported as a compressed-sparse-row
//! matrix.
//!
//! A GPU evaluating the experts' terms `D_j B` at their sampled points cannot run
//! this crate's operators, but a local operator's row at a point is a handful of
//! weights on neighbouring grid points. Collected for every (point, term) pair into
//! one CSR matrix, they turn the whole evaluation into one sparse-times-dense
//! product, `out = R · field`, which a kernel computes from the three CSR arrays
//! alone. [`SparseRows::apply`] is that product on the CPU: the reference the
//! kernel is checked against.

use crate::MeshError;
use crate::ops::LinearOperator;
use crate::ops::axis_matrix::merge_row;

/// Rows of local operators at chosen points, as a CSR matrix over the flat grid
/// indices of fields of `n_columns` points.
///
/// Row `r` holds the weights of one pushed row (`scale` × row `point` of an
/// operator), so `out[r] = Σ_e weights[e] · field[columns[e]]` is that operator's
/// value at that point. Within a row, columns are ascending and distinct, with no
/// stored zeros: the canonical form, so equal matrices compare equal.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseRows {
    /// Where each row starts in `columns` and `weights`; `len() + 1` entries, the
    /// first 0 and the last `nnz()`.
    row_start: Vec<usize>,
    columns: Vec<usize>,
    weights: Vec<f64>,
    n_columns: usize,
}

impl Default for SparseRows {
    /// No rows over no grid points (keeps `row_start` a valid CSR offset array).
    fn default() -> Self {
        Self::new(0)
    }
}

impl SparseRows {
    /// No rows yet, for fields of `n_columns` grid points.
    pub fn new(n_columns: usize) -> Self {
        Self {
            row_start: vec![0],
            columns: Vec::new(),
            weights: Vec::new(),
            n_columns,
        }
    }

    /// Appends one row: `scale` × row `point` of `operator`; repeated columns are
    /// summed (in column order, ascending) and exact zero sums dropped, so a
    /// combination such as `D − D` leaves an empty row.
    ///
    /// Errors, leaving the matrix as it was: the operator's grid does not have
    /// `n_columns` points ([`MeshError::ShapeMismatch`]), `point` is not below
    /// `n_columns` ([`MeshError::PointOutOfRange`]), `scale` is NaN or infinite
    /// ([`MeshError::InvalidValue`]), or the operator is not local
    /// ([`MeshError::NotLocal`]; see [`LinearOperator::is_local`]).
    pub fn push_row(
        &mut self,
        operator: &dyn LinearOperator,
        point: usize,
        scale: f64,
    ) -> Result<(), MeshError> {
        self.push_sum(&[(operator, scale)], point)
    }

    /// Appends one row: `Σ_i scale_i` × row `point` of `operator_i` over
    /// `parts`, merged as [`SparseRows::push_row`] merges one operator's row.
    /// Why: a linear row of a PDE (a boundary condition on `u` and `u_x`,
    /// say) is such a combination at one point, and its adjoint is then one
    /// sparse row rather than one per term.
    ///
    /// Errors, leaving the matrix as it was: those of
    /// [`SparseRows::push_row`] for any part.
    pub fn push_sum(
        &mut self,
        parts: &[(&dyn LinearOperator, f64)],
        point: usize,
    ) -> Result<(), MeshError> {
        let mut row = Vec::new();
        for &(operator, scale) in parts {
            let n_points = operator.shape().len();
            if n_points != self.n_columns {
                return Err(MeshError::ShapeMismatch {
                    what: "number of grid points of a sparse row's operator",
                    expected: vec![self.n_columns],
                    got: vec![n_points],
                });
            }
            if point >= n_points {
                return Err(MeshError::PointOutOfRange { point, n_points });
            }
            if !scale.is_finite() {
                return Err(MeshError::InvalidValue {
                    what: "sparse row scale",
                    value: scale,
                    reason: "must be finite",
                });
            }
            if !operator.add_row_at(point, scale, &mut row) {
                return Err(MeshError::NotLocal {
                    what: "operator of a sparse row",
                });
            }
        }
        merge_row(&mut row);
        self.columns.extend(row.iter().map(|&(c, _)| c));
        self.weights.extend(row.iter().map(|&(_, w)| w));
        self.row_start.push(self.columns.len());
        Ok(())
    }

    /// Appends `other`'s rows after this matrix's: how rows built in parallel
    /// (one matrix per chunk of points) become one matrix in a fixed order.
    ///
    /// Errors: `other` is over another number of grid points
    /// ([`MeshError::ShapeMismatch`]), leaving the matrix as it was.
    pub fn append(&mut self, other: &SparseRows) -> Result<(), MeshError> {
        if other.n_columns != self.n_columns {
            return Err(MeshError::ShapeMismatch {
                what: "number of grid points of appended sparse rows",
                expected: vec![self.n_columns],
                got: vec![other.n_columns],
            });
        }
        let base = self.columns.len();
        self.columns.extend_from_slice(&other.columns);
        self.weights.extend_from_slice(&other.weights);
        self.row_start
            .extend(other.row_start[1..].iter().map(|&s| base + s));
        Ok(())
    }

    /// Appends a row of zeros: keeps the row numbering of a fixed layout (say
    /// `[points, terms]`) when the caller leaves a term out at some point.
    pub fn push_empty_row(&mut self) {
        self.row_start.push(self.columns.len());
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.row_start.len() - 1
    }

    /// True when no row has been pushed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of stored (non-zero) entries.
    pub fn nnz(&self) -> usize {
        self.columns.len()
    }

    /// The number of grid points of the fields the rows act on.
    pub fn n_columns(&self) -> usize {
        self.n_columns
    }

    /// Row `i` as its columns (ascending) and weights.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    #[track_caller]
    pub fn row(&self, i: usize) -> (&[usize], &[f64]) {
        assert!(
            i < self.len(),
            "row {i} out of range for {} rows",
            self.len()
        );
        let range = self.row_start[i]..self.row_start[i + 1];
        (&self.columns[range.clone()], &self.weights[range])
    }

    /// The CSR row offsets: `len() + 1` entries, from 0 to `nnz()`.
    pub fn row_start(&self) -> &[usize] {
        &self.row_start
    }

    /// The CSR column indices (flat grid indices), row after row.
    pub fn columns(&self) -> &[usize] {
        &self.columns
    }

    /// The CSR weights, one per column index.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// The transpose: one row per grid point, over this matrix's rows as its
    /// columns, so that [`SparseRows::apply`] of the transpose is the adjoint
    /// `Rᵀ y` (as a gather, each output summing its own entries, which a GPU
    /// computes without atomics and in a fixed order). Each transposed row
    /// lists its entries by ascending original row: the canonical form, so
    /// transposing twice gives back an equal matrix.
    pub fn transpose(&self) -> SparseRows {
        let mut row_start = vec![0; self.n_columns + 1];
        for &c in &self.columns {
            row_start[c + 1] += 1;
        }
        for c in 0..self.n_columns {
            row_start[c + 1] += row_start[c];
        }
        let mut next = row_start[..self.n_columns].to_vec();
        let mut columns = vec![0; self.nnz()];
        let mut weights = vec![0.0; self.nnz()];
        for r in 0..self.len() {
            let (cols, ws) = self.row(r);
            for (&c, &w) in cols.iter().zip(ws) {
                columns[next[c]] = r;
                weights[next[c]] = w;
                next[c] += 1;
            }
        }
        SparseRows {
            row_start,
            columns,
            weights,
            n_columns: self.len(),
        }
    }

    /// `out[r * channels + c] = Σ_e weights[e] · field[columns[e] * channels + c]`
    /// over the entries `e` of row `r`, summed in stored order from zero: the CPU
    /// reference a GPU kernel applying these rows is checked against.
    ///
    /// # Panics
    /// If `field` does not hold `n_columns() * channels` values or `out` does not
    /// hold `len() * channels`.
    #[track_caller]
    pub fn apply(&self, field: &[f64], channels: usize, out: &mut [f64]) {
        assert!(
            field.len() == self.n_columns * channels,
            "field of {} values does not match {} grid points with {channels} channels ({} values)",
            field.len(),
            self.n_columns,
            self.n_columns * channels,
        );
        assert!(
            out.len() == self.len() * channels,
            "output of {} values does not match {} rows with {channels} channels ({} values)",
            out.len(),
            self.len(),
            self.len() * channels,
        );
        if channels == 0 {
            return;
        }
        for (r, dst) in out.chunks_exact_mut(channels).enumerate() {
            dst.fill(0.0);
            let (columns, weights) = self.row(r);
            for (&col, &w) in columns.iter().zip(weights) {
                let src = &field[col * channels..][..channels];
                dst.iter_mut().zip(src).for_each(|(d, &s)| *d += w * s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::ops::combination::LinearCombination;
    use crate::ops::compose::Compose;
    use crate::ops::fd::{FdScheme, FiniteDifference};
    use crate::ops::identity::Identity;
    use crate::ops::scale::Scale;
    use crate::ops::spectral::FourierMultiplier;
    use crate::{Axis, Grid, Shape};

    const CHANNELS: usize = 3;
    const TOLERANCE: f64 = 1e-13;

    fn random_field(len: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
        (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    /// About 30 points of a grid of `len` points, with repeats, always holding the
    /// first and the last point.
    fn random_points(len: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
        let mut points: Vec<usize> = (0..26).map(|_| rng.random_range(0..len)).collect();
        let repeated = points[3];
        points.extend([0, len - 1, repeated, 0]);
        points
    }

    /// `add_row_at` answers as `is_local`, and a declining operator adds nothing.
    fn check_add_row_matches_locality(name: &str, op: &dyn LinearOperator) {
        let mut row = vec![(0, 1.5)];
        let added = op.add_row_at(op.shape().len() - 1, 2.0, &mut row);
        assert_eq!(added, op.is_local(), "{name}");
        if !added {
            assert_eq!(
                row,
                [(0, 1.5)],
                "{name}: a declining operator added entries"
            );
        }
    }

    /// Rows of `op` at random points, each with its own scale, applied to a random
    /// 3-channel field, against the scaled rows of `op.apply_at`.
    fn check_against_apply_at(name: &str, op: &dyn LinearOperator, seed: u64) {
        check_add_row_matches_locality(name, op);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let len = op.shape().len();
        let points = random_points(len, &mut rng);
        let scales: Vec<f64> = points.iter().map(|_| rng.random_range(-2.0..2.0)).collect();
        let field = random_field(len * CHANNELS, &mut rng);

        let mut rows = SparseRows::new(len);
        for (&p, &s) in points.iter().zip(&scales) {
            rows.push_row(op, p, s).unwrap();
        }
        assert_eq!(rows.len(), points.len(), "{name}");
        assert_eq!(rows.row_start().first(), Some(&0), "{name}");
        assert_eq!(rows.row_start().last(), Some(&rows.nnz()), "{name}");
        let mut got = vec![f64::NAN; points.len() * CHANNELS];
        rows.apply(&field, CHANNELS, &mut got);

        let mut expected = vec![f64::NAN; points.len() * CHANNELS];
        op.apply_at(&field, CHANNELS, &points, &mut expected, CHANNELS);
        for (row, s) in expected.chunks_exact_mut(CHANNELS).zip(&scales) {
            row.iter_mut().for_each(|v| *v *= s);
        }
        let size = expected.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        for (k, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert!(
                (g - e).abs() <= TOLERANCE * size,
                "{name}: point {} channel {}: {g:e} vs {e:e}",
                points[k / CHANNELS],
                k % CHANNELS,
            );
        }
    }

    fn fd_operators(shape: &Shape) -> Vec<(String, Arc<dyn LinearOperator>)> {
        let mut ops: Vec<(String, Arc<dyn LinearOperator>)> = Vec::new();
        for axis in 0..shape.ndim() {
            let h = 0.1 + 0.05 * axis as f64;
            for scheme in [
                FdScheme::Reference,
                FdScheme::SecondOrder,
                FdScheme::Periodic,
            ] {
                ops.push((
                    format!("{:?} first {scheme:?} axis {axis}", shape.dims()),
                    Arc::new(FiniteDifference::first_with_spacing(shape, axis, scheme, h).unwrap()),
                ));
                ops.push((
                    format!("{:?} second {scheme:?} axis {axis}", shape.dims()),
                    Arc::new(
                        FiniteDifference::second_with_spacing(shape, axis, scheme, h).unwrap(),
                    ),
                ));
            }
        }
        ops
    }

    #[test]
    fn finite_differences_match_apply_at_on_every_axis_of_2d_and_3d_grids() {
        for shape in [Shape::new(&[5, 7]), Shape::new(&[4, 5, 6])] {
            for (i, (name, op)) in fd_operators(&shape).iter().enumerate() {
                check_against_apply_at(name, op.as_ref(), i as u64);
            }
        }
    }

    #[test]
    fn identity_scale_and_combinations_match_apply_at() {
        let shape = Shape::new(&[4, 5, 6]);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let identity = Identity::new(&shape);
        let scale: Arc<dyn LinearOperator> =
            Arc::new(Scale::new(&shape, random_field(shape.len(), &mut rng)).unwrap());
        let dt: Arc<dyn LinearOperator> = Arc::new(
            FiniteDifference::first_with_spacing(&shape, 0, FdScheme::Reference, 0.2).unwrap(),
        );
        let dyy: Arc<dyn LinearOperator> = Arc::new(
            FiniteDifference::second_with_spacing(&shape, 2, FdScheme::Periodic, 0.3).unwrap(),
        );
        let dx: Arc<dyn LinearOperator> = Arc::new(
            FiniteDifference::first_with_spacing(&shape, 1, FdScheme::Reference, 0.25).unwrap(),
        );
        let combination = LinearCombination::new(vec![
            (0.7, dt.clone()),
            (-1.3, dyy.clone()),
            (2.5, scale.clone()),
        ])
        .unwrap();
        // A mixed derivative, and a product whose factors share an axis.
        let mixed = Compose::new(vec![dx, dyy.clone()]).unwrap();
        let product = Compose::new(vec![dt.clone(), scale.clone(), dt, dyy]).unwrap();
        check_against_apply_at("identity", &identity, 2);
        check_against_apply_at("scale", scale.as_ref(), 3);
        check_against_apply_at("combination", &combination, 4);
        check_against_apply_at("mixed derivative", &mixed, 5);
        check_against_apply_at("composition", &product, 6);
    }

    #[test]
    fn non_local_operators_decline_and_leave_the_matrix_unchanged() {
        let grid = Grid::uniform_txy(3, 8, 6, 1.0).unwrap();
        let shape = grid.shape();
        let spectral: Arc<dyn LinearOperator> =
            Arc::new(FourierMultiplier::derivative(&grid, 1, 1).unwrap());
        let spectral_dy: Arc<dyn LinearOperator> =
            Arc::new(FourierMultiplier::derivative(&grid, 2, 1).unwrap());
        let dx: Arc<dyn LinearOperator> =
            Arc::new(FiniteDifference::first(&grid, 1, FdScheme::Periodic).unwrap());
        let identity: Arc<dyn LinearOperator> = Arc::new(Identity::new(shape));
        let non_local: [(&str, Arc<dyn LinearOperator>); 3] = [
            ("spectral", spectral.clone()),
            (
                "combination with a spectral part",
                Arc::new(LinearCombination::new(vec![(1.0, dx.clone()), (2.0, spectral)]).unwrap()),
            ),
            (
                "composition with a spectral factor",
                Arc::new(Compose::new(vec![dx, spectral_dy, identity.clone()]).unwrap()),
            ),
        ];
        let mut rows = SparseRows::new(shape.len());
        rows.push_row(identity.as_ref(), 5, 1.0).unwrap();
        let before = rows.clone();
        for (name, op) in &non_local {
            check_add_row_matches_locality(name, op.as_ref());
            assert_eq!(
                rows.push_row(op.as_ref(), 5, 1.0),
                Err(MeshError::NotLocal {
                    what: "operator of a sparse row"
                }),
                "{name}"
            );
            assert_eq!(rows, before, "{name}");
        }
    }

    #[test]
    fn bad_rows_give_typed_errors_and_leave_the_matrix_unchanged() {
        let shape = Shape::new(&[4, 5]);
        let op = FiniteDifference::first_with_spacing(&shape, 1, FdScheme::Reference, 0.5).unwrap();
        let mut rows = SparseRows::new(shape.len());
        rows.push_row(&op, 7, 1.0).unwrap();
        let before = rows.clone();

        let other = Identity::new(&Shape::new(&[4, 6]));
        assert_eq!(
            rows.push_row(&other, 7, 1.0),
            Err(MeshError::ShapeMismatch {
                what: "number of grid points of a sparse row's operator",
                expected: vec![20],
                got: vec![24],
            })
        );
        assert_eq!(
            rows.push_row(&op, 20, 1.0),
            Err(MeshError::PointOutOfRange {
                point: 20,
                n_points: 20
            })
        );
        for bad in [f64::NAN, f64::INFINITY] {
            assert!(matches!(
                rows.push_row(&op, 7, bad),
                Err(MeshError::InvalidValue { .. })
            ));
        }
        assert_eq!(rows, before);
    }

    #[test]
    fn a_sum_row_applies_the_scaled_sum_of_its_parts() {
        let shape = Shape::new(&[4, 6]);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let identity = Identity::new(&shape);
        let dx =
            FiniteDifference::first_with_spacing(&shape, 1, FdScheme::SecondOrder, 0.2).unwrap();
        let dxx =
            FiniteDifference::second_with_spacing(&shape, 1, FdScheme::Reference, 0.2).unwrap();
        let parts: [(&dyn LinearOperator, f64); 3] = [(&identity, 0.5), (&dx, -1.5), (&dxx, 2.0)];
        let field = random_field(shape.len() * CHANNELS, &mut rng);
        // Corners and an interior point: one-sided and central stencils.
        for point in [0, 5, 9, shape.len() - 1] {
            let mut rows = SparseRows::new(shape.len());
            rows.push_sum(&parts, point).unwrap();
            let mut got = vec![f64::NAN; CHANNELS];
            rows.apply(&field, CHANNELS, &mut got);
            let mut expected = vec![0.0; CHANNELS];
            for &(op, scale) in &parts {
                let mut value = vec![f64::NAN; CHANNELS];
                op.apply_at(&field, CHANNELS, &[point], &mut value, CHANNELS);
                expected
                    .iter_mut()
                    .zip(&value)
                    .for_each(|(e, v)| *e += scale * v);
            }
            for (g, e) in got.iter().zip(&expected) {
                assert!(
                    (g - e).abs() <= TOLERANCE * 100.0,
                    "point {point}: {g:e} vs {e:e}"
                );
            }
            let (columns, _) = rows.row(0);
            assert!(
                columns.windows(2).all(|w| w[0] < w[1]),
                "one entry per column"
            );
        }
        // A bad part leaves the matrix as it was, whichever part it is.
        let mut rows = SparseRows::new(shape.len());
        rows.push_sum(&parts, 3).unwrap();
        let before = rows.clone();
        let periodic = Grid::new(vec![
            Axis::linspace("t", 0.0, 1.0, 4).unwrap(),
            Axis::periodic("x", 0.0, 1.0, 6).unwrap(),
        ])
        .unwrap();
        let spectral = FourierMultiplier::derivative(&periodic, 1, 1).unwrap();
        let bad: [(&dyn LinearOperator, f64); 2] = [(&dx, 1.0), (&spectral, 1.0)];
        assert!(matches!(
            rows.push_sum(&bad, 3),
            Err(MeshError::NotLocal { .. })
        ));
        let bad: [(&dyn LinearOperator, f64); 2] = [(&dx, 1.0), (&identity, f64::NAN)];
        assert!(matches!(
            rows.push_sum(&bad, 3),
            Err(MeshError::InvalidValue { .. })
        ));
        assert_eq!(rows, before);
    }

    #[test]
    fn repeated_columns_merge_and_cancelling_ones_vanish() {
        let shape = Shape::new(&[5, 7]);
        let d: Arc<dyn LinearOperator> = Arc::new(
            FiniteDifference::second_with_spacing(&shape, 1, FdScheme::SecondOrder, 0.25).unwrap(),
        );
        let twice = LinearCombination::sum(vec![d.clone(), d.clone()]).unwrap();
        let nothing = LinearCombination::new(vec![(1.0, d.clone()), (-1.0, d.clone())]).unwrap();
        // A boundary point (a 4-point one-sided stencil) and an interior one.
        for point in [shape.flat(&[2, 0]), shape.flat(&[3, 4])] {
            let mut rows = SparseRows::new(shape.len());
            rows.push_row(d.as_ref(), point, 1.0).unwrap();
            rows.push_row(&twice, point, 1.0).unwrap();
            rows.push_row(&nothing, point, 1.0).unwrap();
            let (cols, weights) = rows.row(0);
            let (twice_cols, twice_weights) = rows.row(1);
            assert!(cols.windows(2).all(|w| w[0] < w[1]), "{cols:?}");
            assert_eq!(twice_cols, cols);
            let doubled: Vec<f64> = weights.iter().map(|w| 2.0 * w).collect();
            assert_eq!(twice_weights, doubled);
            assert_eq!(rows.row(2), (&[][..], &[][..]));
            assert_eq!(rows.nnz(), 2 * cols.len());
        }
    }

    #[test]
    fn empty_rows_are_zeros_and_default_is_empty() {
        let shape = Shape::new(&[3, 4]);
        let mut rows = SparseRows::default();
        assert!(rows.is_empty());
        assert_eq!(rows.row_start(), [0]);
        rows = SparseRows::new(shape.len());
        rows.push_row(&Identity::new(&shape), 6, -2.0).unwrap();
        rows.push_empty_row();
        assert_eq!((rows.len(), rows.nnz(), rows.n_columns()), (2, 1, 12));
        assert_eq!(rows.row_start(), [0, 1, 1]);
        assert_eq!((rows.columns(), rows.weights()), (&[6][..], &[-2.0][..]));
        let field: Vec<f64> = (0..24).map(f64::from).collect();
        let mut out = vec![f64::NAN; 4];
        rows.apply(&field, 2, &mut out);
        assert_eq!(out, [-24.0, -26.0, 0.0, 0.0]);
    }

    #[test]
    fn appended_parts_are_the_rows_pushed_in_one_go() {
        let shape = Shape::new(&[4, 5]);
        let op =
            FiniteDifference::second_with_spacing(&shape, 1, FdScheme::Reference, 0.2).unwrap();
        let points = [0, 7, 19, 3, 12];
        let mut whole = SparseRows::new(shape.len());
        let mut parts = [SparseRows::new(shape.len()), SparseRows::new(shape.len())];
        for (i, &p) in points.iter().enumerate() {
            whole.push_row(&op, p, 1.5).unwrap();
            parts[usize::from(i >= 2)].push_row(&op, p, 1.5).unwrap();
        }
        let mut joined = SparseRows::new(shape.len());
        for part in &parts {
            joined.append(part).unwrap();
        }
        assert_eq!(joined, whole);
        let before = joined.clone();
        assert!(matches!(
            joined.append(&SparseRows::new(7)),
            Err(MeshError::ShapeMismatch { .. })
        ));
        assert_eq!(joined, before, "a refused append changes nothing");
    }

    #[test]
    fn the_transpose_applies_the_adjoint_and_transposes_back() {
        let shape = Shape::new(&[5, 6]);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let dx = FiniteDifference::first_with_spacing(&shape, 1, FdScheme::Reference, 0.3).unwrap();
        let dtt =
            FiniteDifference::second_with_spacing(&shape, 0, FdScheme::SecondOrder, 0.2).unwrap();
        let mut rows = SparseRows::new(shape.len());
        for p in random_points(shape.len(), &mut rng) {
            rows.push_row(&dx, p, rng.random_range(-2.0..2.0)).unwrap();
            rows.push_empty_row();
            rows.push_row(&dtt, p, 1.0).unwrap();
        }
        let transposed = rows.transpose();
        assert_eq!(
            (transposed.len(), transposed.n_columns(), transposed.nnz()),
            (rows.n_columns(), rows.len(), rows.nnz())
        );
        assert_eq!(transposed.transpose(), rows);
        // <R x, y> = <x, Rᵀ y> for random x and y, with two channels.
        let x = random_field(rows.n_columns() * 2, &mut rng);
        let y = random_field(rows.len() * 2, &mut rng);
        let (mut rx, mut rty) = (vec![0.0; y.len()], vec![0.0; x.len()]);
        rows.apply(&x, 2, &mut rx);
        transposed.apply(&y, 2, &mut rty);
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(a, b)| a * b).sum::<f64>();
        let (left, right) = (dot(&rx, &y), dot(&x, &rty));
        assert!(
            (left - right).abs() <= TOLERANCE * left.abs().max(1.0),
            "{left} vs {right}"
        );
        let none = SparseRows::new(4).transpose();
        assert_eq!((none.len(), none.nnz(), none.n_columns()), (4, 0, 0));
    }

    #[test]
    #[should_panic(expected = "field of 11 values does not match 12 grid points")]
    fn wrong_field_length_panics() {
        SparseRows::new(12).apply(&[0.0; 11], 1, &mut []);
    }

    #[test]
    #[should_panic(expected = "output of 3 values does not match 1 rows")]
    fn wrong_output_length_panics() {
        let mut rows = SparseRows::new(12);
        rows.push_empty_row();
        rows.apply(&[0.0; 24], 2, &mut [0.0; 3]);
    }
}
