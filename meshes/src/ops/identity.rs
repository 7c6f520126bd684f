//! The identity operator: the term `u` itself.

use crate::Shape;
use crate::ops::{LinearOperator, check_field_lengths, check_point, check_point_rows, gather_rows};

/// `D = I` on fields of one shape — the PDE term `u`, and the neutral element for
/// building sums such as `u − D·u_x`.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    shape: Shape,
}

impl Identity {
    /// The identity on fields of `shape`.
    pub fn new(shape: &Shape) -> Self {
        Self {
            shape: shape.clone(),
        }
    }
}

impl LinearOperator for Identity {
    fn shape(&self) -> &Shape {
        &self.shape
    }

    #[track_caller]
    fn apply(&self, input: &[f64], channels: usize, out: &mut [f64]) {
        check_field_lengths(&self.shape, input, channels, out);
        out.copy_from_slice(input);
    }

    #[track_caller]
    fn apply_adjoint(&self, input: &[f64], channels: usize, out: &mut [f64]) {
        self.apply(input, channels, out);
    }

    /// A copy of the requested rows.
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
        gather_rows(input, channels, points, out, stride);
    }

    fn is_local(&self) -> bool {
        true
    }

    /// The point itself, with weight `scale`.
    #[track_caller]
    fn add_row_at(&self, point: usize, scale: f64, row: &mut Vec<(usize, f64)>) -> bool {
        check_point(&self.shape, point);
        row.push((point, scale));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_its_input() {
        let id = Identity::new(&Shape::new(&[2, 3]));
        let field: Vec<f64> = (0..12).map(f64::from).collect();
        assert_eq!(id.apply_to_vec(&field, 2), field);
        assert_eq!(id.apply_adjoint_to_vec(&field, 2), field);
    }

    #[test]
    #[should_panic(expected = "do not match shape")]
    fn wrong_field_length_panics() {
        Identity::new(&Shape::new(&[2, 3])).apply_to_vec(&[1.0; 5], 1);
    }
}
