//! Pointwise scaling by a weight field: `(S u)(p) = w(p) · u(p)`.

use crate::ops::{
    LinearOperator, check_field_lengths, check_point, check_point_rows, check_weights,
};
use crate::{MeshError, Shape};

/// Multiplication by a per-point weight `w(p)`, the same for every channel — e.g.
/// a mollifier in `t` that makes a basis vanish at the initial time. Diagonal, so
/// it is its own adjoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Scale {
    shape: Shape,
    weights: Vec<f64>,
}

impl Scale {
    /// Scaling by `weights`, one per grid point (row-major, no channels).
    ///
    /// Errors: wrong number of weights, or a weight that is NaN or infinite.
    pub fn new(shape: &Shape, weights: Vec<f64>) -> Result<Self, MeshError> {
        check_weights("scale weights", "scale weight", &weights, shape.len())?;
        Ok(Self {
            shape: shape.clone(),
            weights,
        })
    }

    /// Scaling by a weight that depends on one axis only (`w(p) = profile[i_axis(p)]`),
    /// e.g. a function of `t` broadcast over space.
    ///
    /// Errors: bad axis, `profile` length differs from the axis length, or a
    /// non-finite value.
    pub fn along_axis(shape: &Shape, axis: usize, profile: &[f64]) -> Result<Self, MeshError> {
        if axis >= shape.ndim() {
            return Err(MeshError::AxisOutOfRange {
                axis,
                ndim: shape.ndim(),
            });
        }
        let (outer, n, inner) = shape.around_axis(axis);
        if profile.len() != n {
            return Err(MeshError::ShapeMismatch {
                what: "scale profile along the axis",
                expected: vec![n],
                got: vec![profile.len()],
            });
        }
        let weights = (0..outer)
            .flat_map(|_| profile.iter().flat_map(|&w| std::iter::repeat_n(w, inner)))
            .collect();
        Self::new(shape, weights)
    }

    /// The weights, one per grid point.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }
}

impl LinearOperator for Scale {
    fn shape(&self) -> &Shape {
        &self.shape
    }

    #[track_caller]
    fn apply(&self, input: &[f64], channels: usize, out: &mut [f64]) {
        check_field_lengths(&self.shape, input, channels, out);
        if channels == 0 {
            return;
        }
        let per_point = input
            .chunks_exact(channels)
            .zip(out.chunks_exact_mut(channels));
        for ((src, dst), &w) in per_point.zip(&self.weights) {
            dst.iter_mut().zip(src).for_each(|(d, &s)| *d = w * s);
        }
    }

    #[track_caller]
    fn apply_adjoint(&self, input: &[f64], channels: usize, out: &mut [f64]) {
        self.apply(input, channels, out);
    }

    /// The requested rows times their points' weights.
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
        for (k, &p) in points.iter().enumerate() {
            let w = self.weights[p];
            let src = &input[p * channels..][..channels];
            let dst = &mut out[k * stride..][..channels];
            dst.iter_mut().zip(src).for_each(|(d, &s)| *d = w * s);
        }
    }

    fn is_local(&self) -> bool {
        true
    }

    /// The point itself, with `scale` times its weight.
    #[track_caller]
    fn add_row_at(&self, point: usize, scale: f64, row: &mut Vec<(usize, f64)>) -> bool {
        check_point(&self.shape, point);
        row.push((point, scale * self.weights[point]));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn along_axis_broadcasts_the_profile() {
        let shape = Shape::new(&[2, 3, 2]);
        let s = Scale::along_axis(&shape, 1, &[1.0, 10.0, 100.0]).unwrap();
        for p in 0..shape.len() {
            let expected = [1.0, 10.0, 100.0][shape.unflat(p)[1]];
            assert_eq!(s.weights()[p], expected);
        }
        let field = vec![2.0; shape.len() * 3];
        let out = s.apply_to_vec(&field, 3);
        for (k, v) in out.iter().enumerate() {
            assert_eq!(*v, 2.0 * s.weights()[k / 3]);
        }
    }

    #[test]
    fn bad_input_gives_typed_errors() {
        let shape = Shape::new(&[2, 3]);
        assert!(matches!(
            Scale::new(&shape, vec![1.0; 5]),
            Err(MeshError::ShapeMismatch { .. })
        ));
        assert!(matches!(
            Scale::new(&shape, vec![1.0, 2.0, f64::NAN, 1.0, 1.0, 1.0]),
            Err(MeshError::InvalidValue { .. })
        ));
        assert_eq!(
            Scale::along_axis(&shape, 2, &[1.0]).err(),
            Some(MeshError::AxisOutOfRange { axis: 2, ndim: 2 })
        );
        assert!(matches!(
            Scale::along_axis(&shape, 0, &[1.0]),
            Err(MeshError::ShapeMismatch { .. })
        ));
    }
}
