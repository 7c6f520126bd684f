//! Linear combinations of operators: `D = Σ c_i D_i`.

use std::sync::Arc;

use crate::ops::{LinearOperator, check_field_lengths, check_point_rows, check_same_shape};
use crate::{MeshError, Shape};

/// `D = Σ c_i D_i` for operators on one grid — e.g. `Δ = ∂xx + ∂yy`, or `u − D·u_x`
/// as `[(1, I), (−D, ∂x)]`. Its adjoint `Σ c_i D_iᵀ` is exact because each term's is.
#[derive(Debug, Clone)]
pub struct LinearCombination {
    shape: Shape,
    terms: Vec<(f64, Arc<dyn LinearOperator>)>,
}

impl LinearCombination {
    /// The combination of `(coefficient, operator)` terms.
    ///
    /// Errors: no terms, operators acting on different shapes, or a coefficient
    /// that is NaN or infinite.
    pub fn new(terms: Vec<(f64, Arc<dyn LinearOperator>)>) -> Result<Self, MeshError> {
        let Some((_, first)) = terms.first() else {
            return Err(MeshError::TooSmall {
                what: "number of combined operators",
                min: 1,
                got: 0,
            });
        };
        let shape = first.shape().clone();
        for (c, op) in &terms {
            check_same_shape("combined operator", &shape, op.shape())?;
            if !c.is_finite() {
                return Err(MeshError::InvalidValue {
                    what: "linear-combination coefficient",
                    value: *c,
                    reason: "must be finite",
                });
            }
        }
        Ok(Self { shape, terms })
    }

    /// The plain sum `Σ D_i` (all coefficients one).
    ///
    /// Errors: as [`LinearCombination::new`].
    pub fn sum(operators: Vec<Arc<dyn LinearOperator>>) -> Result<Self, MeshError> {
        Self::new(operators.into_iter().map(|op| (1.0, op)).collect())
    }

    /// The `(coefficient, operator)` terms.
    pub fn terms(&self) -> &[(f64, Arc<dyn LinearOperator>)] {
        &self.terms
    }

    #[track_caller]
    fn run(
        &self,
        input: &[f64],
        channels: usize,
        out: &mut [f64],
        step: impl Fn(&dyn LinearOperator, &[f64], usize, &mut [f64]),
    ) {
        check_field_lengths(&self.shape, input, channels, out);
        let (c0, op0) = &self.terms[0];
        step(op0.as_ref(), input, channels, out);
        out.iter_mut().for_each(|v| *v *= c0);
        let mut scratch = Vec::new();
        for (c, op) in &self.terms[1..] {
            scratch.resize(input.len(), 0.0);
            step(op.as_ref(), input, channels, &mut scratch);
            out.iter_mut().zip(&scratch).for_each(|(o, s)| *o += c * s);
        }
    }
}

impl LinearOperator for LinearCombination {
    fn shape(&self) -> &Shape {
        &self.shape
    }

    #[track_caller]
    fn apply(&self, input: &[f64], channels: usize, out: &mut [f64]) {
        self.run(input, channels, out, |d, i, c, o| d.apply(i, c, o));
    }

    #[track_caller]
    fn apply_adjoint(&self, input: &[f64], channels: usize, out: &mut [f64]) {
        self.run(input, channels, out, |d, i, c, o| d.apply_adjoint(i, c, o));
    }

    /// The parts' rows combined in the order [`LinearCombination::apply`] uses
    /// (first part scaled, then each further part added through a scratch row
    /// block), so both give the same values.
    #[track_caller]
    fn apply_at(
        &self,
        input: &[f64],
        channels: usize,
        points: &[usize],
        out: &mut [f64],
        stride: usize,
    ) {
        check_point_rows(&self.shape, input, channels, points, out, stride);
        if channels == 0 {
            return;
        }
        // The `channels` values of each output row.
        fn rows(
            out: &mut [f64],
            n_rows: usize,
            stride: usize,
            channels: usize,
        ) -> impl Iterator<Item = &mut [f64]> {
            out.chunks_mut(stride)
                .take(n_rows)
                .map(move |row| &mut row[..channels])
        }
        let (c0, op0) = &self.terms[0];
        op0.apply_at(input, channels, points, out, stride);
        for row in rows(out, points.len(), stride, channels) {
            row.iter_mut().for_each(|v| *v *= c0);
        }
        let mut scratch = vec![0.0; points.len() * channels];
        for (c, op) in &self.terms[1..] {
            op.apply_at(input, channels, points, &mut scratch, channels);
            for (row, s) in
                rows(out, points.len(), stride, channels).zip(scratch.chunks_exact(channels))
            {
                row.iter_mut().zip(s).for_each(|(o, s)| *o += c * s);
            }
        }
    }

    /// Local when every part is.
    fn is_local(&self) -> bool {
        self.terms.iter().all(|(_, op)| op.is_local())
    }

    /// Each part's row scaled by its coefficient, one after the other (repeated
    /// columns left to the caller). Locality is checked for all parts first, so
    /// a non-local part leaves `row` as it was.
    #[track_caller]
    fn add_row_at(&self, point: usize, scale: f64, row: &mut Vec<(usize, f64)>) -> bool {
        if !self.is_local() {
            return false;
        }
        for (c, op) in &self.terms {
            op.add_row_at(point, scale * c, row);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::identity::Identity;
    use crate::ops::scale::Scale;

    #[test]
    fn combines_with_coefficients() {
        let shape = Shape::new(&[3, 2]);
        let id: Arc<dyn LinearOperator> = Arc::new(Identity::new(&shape));
        let weights: Vec<f64> = (0..6).map(f64::from).collect();
        let s: Arc<dyn LinearOperator> = Arc::new(Scale::new(&shape, weights.clone()).unwrap());
        let combo = LinearCombination::new(vec![(2.0, id.clone()), (-0.5, s.clone())]).unwrap();
        let field: Vec<f64> = (0..18).map(|k| f64::from(k) * 0.25 + 1.0).collect();
        for (k, v) in combo.apply_to_vec(&field, 3).iter().enumerate() {
            assert_eq!(*v, 2.0 * field[k] - 0.5 * weights[k / 3] * field[k]);
        }
        let sum = LinearCombination::sum(vec![id, s]).unwrap();
        for (k, v) in sum.apply_adjoint_to_vec(&field, 3).iter().enumerate() {
            assert_eq!(*v, field[k] + weights[k / 3] * field[k]);
        }
    }

    #[test]
    fn bad_input_gives_typed_errors() {
        assert!(matches!(
            LinearCombination::new(vec![]),
            Err(MeshError::TooSmall { .. })
        ));
        let a: Arc<dyn LinearOperator> = Arc::new(Identity::new(&Shape::new(&[2])));
        let b: Arc<dyn LinearOperator> = Arc::new(Identity::new(&Shape::new(&[3])));
        assert!(matches!(
            LinearCombination::sum(vec![a.clone(), b]),
            Err(MeshError::ShapeMismatch { .. })
        ));
        assert!(matches!(
            LinearCombination::new(vec![(f64::INFINITY, a)]),
            Err(MeshError::InvalidValue { .. })
        ));
    }
}
