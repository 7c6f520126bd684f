//! Finite-difference derivatives along one grid axis, for any number of channels.
//!
//! Three schemes, all 1-D stencils applied along the axis by [`AxisMatrix`]:
//!
//! | scheme | first derivative | second derivative | order |
//! |---|---|---|---|
//! | [`FdScheme::Reference`] | `numpy.gradient(f, h, edge_order=1)`: central inside, one-sided 2-point at the ends | the first derivative applied twice | interior 2, ends 1 (first); interior 2, ends inconsistent (second, see below) |
//! | [`FdScheme::SecondOrder`] | `numpy.gradient(f, h, edge_order=2)`: central inside, one-sided 3-point at the ends | 3-point centre, one-sided 4-point ends | 2 everywhere |
//! | [`FdScheme::Periodic`] | central, wrapping around | direct 3-point `(f₋ − 2f + f₊)/h²`, wrapping | 2 everywhere |
//!
//! The reference scheme is what the paper's code uses for both PDEs — even on the
//! periodic axes of Navier–Stokes, where it does not wrap and takes the spacing
//! `1/n`; hence the `*_with_spacing` constructors, which take the spacing from the
//! caller. Its second derivative is `D·D`: near each end it is *not* consistent
//! (at the first point it tends to `f''/2`, at the second to `3f''/4`), which is
//! faithful to the reference and the reason [`FdScheme::SecondOrder`] exists.

use crate::ops::axis_matrix::AxisMatrix;
use crate::ops::{LinearOperator, check_field_lengths, check_point, check_point_rows};
use crate::{Grid, MeshError, Shape};

/// Which finite-difference stencils to use (see the module table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FdScheme {
    /// `numpy.gradient` with `edge_order=1`, as in the paper's code.
    Reference,
    /// `numpy.gradient` with `edge_order=2`, and a second-order second derivative.
    SecondOrder,
    /// Central differences on a periodic axis.
    Periodic,
}

impl FdScheme {
    /// The fewest points an axis needs for this scheme's derivative of
    /// `order` (1 or 2): the widest stencil row's span, which the
    /// constructors of [`FiniteDifference`] check. Public so that a caller
    /// can refuse a grid before building on it (a scenario's validation),
    /// by the same bound.
    pub fn min_points(self, order: usize) -> usize {
        match (self, order) {
            (Self::Reference, _) => 2,
            (Self::SecondOrder, 2) => 4,
            _ => 3,
        }
    }
}

/// A finite-difference derivative along one axis of a grid: an [`AxisMatrix`]
/// streamed along the axis for every channel, with its exact transpose.
#[derive(Debug, Clone, PartialEq)]
pub struct FiniteDifference {
    shape: Shape,
    axis: usize,
    matrix: AxisMatrix,
    transpose: AxisMatrix,
}

impl FiniteDifference {
    /// The first derivative along `axis` of `grid`, with the axis's own spacing.
    ///
    /// Errors: the axis does not exist, is too short for the scheme, or
    /// [`FdScheme::Periodic`] is asked for on a bounded axis.
    pub fn first(grid: &Grid, axis: usize, scheme: FdScheme) -> Result<Self, MeshError> {
        let h = checked_grid_spacing(grid, axis, scheme)?;
        Self::first_with_spacing(grid.shape(), axis, scheme, h)
    }

    /// The second derivative along `axis` of `grid`, with the axis's own spacing.
    ///
    /// Errors: as [`FiniteDifference::first`].
    pub fn second(grid: &Grid, axis: usize, scheme: FdScheme) -> Result<Self, MeshError> {
        let h = checked_grid_spacing(grid, axis, scheme)?;
        Self::second_with_spacing(grid.shape(), axis, scheme, h)
    }

    /// The first derivative along `axis` with an explicit `spacing` (the reference
    /// takes `1/n` on Navier–Stokes' periodic axes). Periodicity is the caller's
    /// statement here: [`FdScheme::Periodic`] wraps around whatever the axis is.
    ///
    /// Errors: bad axis, a spacing that is not finite and positive, or an axis
    /// shorter than the scheme needs (2 points for the reference scheme, 3 else).
    pub fn first_with_spacing(
        shape: &Shape,
        axis: usize,
        scheme: FdScheme,
        spacing: f64,
    ) -> Result<Self, MeshError> {
        let n = checked_axis_len(shape, axis, spacing, scheme.min_points(1))?;
        Self::from_matrix(shape, axis, first_matrix(n, scheme, spacing))
    }

    /// The second derivative along `axis` with an explicit `spacing`.
    ///
    /// Errors: as [`FiniteDifference::first_with_spacing`]; the second-order scheme
    /// needs 4 points.
    pub fn second_with_spacing(
        shape: &Shape,
        axis: usize,
        scheme: FdScheme,
        spacing: f64,
    ) -> Result<Self, MeshError> {
        let n = checked_axis_len(shape, axis, spacing, scheme.min_points(2))?;
        let matrix = match scheme {
            FdScheme::Reference => {
                let d = first_matrix(n, scheme, spacing);
                d.product(&d)
            }
            FdScheme::SecondOrder => second_order_second(n, spacing),
            FdScheme::Periodic => periodic_second(n, spacing),
        };
        Self::from_matrix(shape, axis, matrix)
    }

    /// Any stencil along `axis`, for callers with their own scheme; the adjoint is
    /// its exact transpose.
    ///
    /// Errors: bad axis, or the matrix size differs from the axis length.
    pub fn from_matrix(shape: &Shape, axis: usize, matrix: AxisMatrix) -> Result<Self, MeshError> {
        check_axis(shape, axis)?;
        if matrix.len() != shape.dims()[axis] {
            return Err(MeshError::ShapeMismatch {
                what: "axis matrix size",
                expected: vec![shape.dims()[axis]],
                got: vec![matrix.len()],
            });
        }
        Ok(Self {
            shape: shape.clone(),
            axis,
            transpose: matrix.transpose(),
            matrix,
        })
    }

    /// The axis this operator differentiates along.
    pub fn axis(&self) -> usize {
        self.axis
    }

    /// The 1-D stencil matrix (for inspection and for building products).
    pub fn matrix(&self) -> &AxisMatrix {
        &self.matrix
    }

    fn run(&self, matrix: &AxisMatrix, input: &[f64], channels: usize, out: &mut [f64]) {
        check_field_lengths(&self.shape, input, channels, out);
        if channels == 0 {
            return;
        }
        let (_, _, inner) = self.shape.around_axis(self.axis);
        matrix.apply_along(input, inner * channels, out);
    }

    /// Where point `p` sits on its line along the axis (`axis_stride` apart): its
    /// axis coordinate `i`, the stencil row it takes, and the flat index of the
    /// line's first point, from which column `j` lies `j · axis_stride` on.
    fn on_line(&self, p: usize, axis_stride: usize) -> (usize, usize) {
        let i = (p / axis_stride) % self.matrix.len();
        (i, p - i * axis_stride)
    }
}

impl LinearOperator for FiniteDifference {
    fn shape(&self) -> &Shape {
        &self.shape
    }

    #[track_caller]
    fn apply(&self, input: &[f64], channels: usize, out: &mut [f64]) {
        self.run(&self.matrix, input, channels, out);
    }

    #[track_caller]
    fn apply_adjoint(&self, input: &[f64], channels: usize, out: &mut [f64]) {
        self.run(&self.transpose, input, channels, out);
    }

    /// Each row is its stencil row: for a point with axis coordinate `i`, the
    /// weights of matrix row `i` times the neighbours at flat offsets
    /// `(col − i) · axis stride` — the same sums as [`FiniteDifference::apply`].
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
        let axis_stride = self.shape.strides()[self.axis];
        for (k, &p) in points.iter().enumerate() {
            let (i, line_start) = self.on_line(p, axis_stride);
            self.matrix.combine_row(
                i,
                |col| &input[(line_start + col * axis_stride) * channels..][..channels],
                &mut out[k * stride..][..channels],
            );
        }
    }

    fn is_local(&self) -> bool {
        true
    }

    /// The stencil row of [`FiniteDifference::apply_at`], its columns mapped to
    /// flat grid indices (in ascending order, as the stencil's).
    #[track_caller]
    fn add_row_at(&self, point: usize, scale: f64, row: &mut Vec<(usize, f64)>) -> bool {
        check_point(&self.shape, point);
        let axis_stride = self.shape.strides()[self.axis];
        let (i, line_start) = self.on_line(point, axis_stride);
        let (cols, weights) = self.matrix.row(i);
        row.extend(
            cols.iter()
                .zip(weights)
                .map(|(&col, &w)| (line_start + col * axis_stride, scale * w)),
        );
        true
    }
}

fn check_axis(shape: &Shape, axis: usize) -> Result<(), MeshError> {
    if axis < shape.ndim() {
        Ok(())
    } else {
        Err(MeshError::AxisOutOfRange {
            axis,
            ndim: shape.ndim(),
        })
    }
}

fn checked_grid_spacing(grid: &Grid, axis: usize, scheme: FdScheme) -> Result<f64, MeshError> {
    check_axis(grid.shape(), axis)?;
    if scheme == FdScheme::Periodic && !grid.axis(axis).is_periodic() {
        return Err(MeshError::Periodicity {
            axis,
            reason: "periodic finite differences need a periodic axis",
        });
    }
    Ok(grid.axis(axis).spacing())
}

/// The smallest spacing whose stencils stay finite: `h⁻⁴ ≤ 1e300`. Public,
/// with [`MAX_SPACING`], so that a grid's settings are checked against the
/// bounds its finite differences are built with before they are built.
pub const MIN_SPACING: f64 = 1e-75;
/// The largest spacing whose stencils do not vanish: `h⁻⁴ ≥ 1e-300`.
pub const MAX_SPACING: f64 = 1e75;

fn checked_axis_len(
    shape: &Shape,
    axis: usize,
    spacing: f64,
    min: usize,
) -> Result<usize, MeshError> {
    check_axis(shape, axis)?;
    if !(spacing.is_finite() && spacing > 0.0) {
        return Err(MeshError::InvalidValue {
            what: "finite-difference spacing",
            value: spacing,
            reason: "must be finite and positive",
        });
    }
    // A fourth derivative's weights go as h⁻⁴ (products of these stencils):
    // they must neither overflow nor vanish.
    if !(MIN_SPACING..=MAX_SPACING).contains(&spacing) {
        return Err(MeshError::InvalidValue {
            what: "finite-difference spacing",
            value: spacing,
            reason: "must lie in [1e-75, 1e75] (the weights of a fourth derivative go as h^-4)",
        });
    }
    let n = shape.dims()[axis];
    if n < min {
        return Err(MeshError::TooSmall {
            what: "axis length for this finite-difference scheme",
            min,
            got: n,
        });
    }
    Ok(n)
}

/// First-derivative stencils; `n` has been checked against [`FdScheme::min_points`].
fn first_matrix(n: usize, scheme: FdScheme, h: f64) -> AxisMatrix {
    let c = 0.5 / h;
    let rows = (0..n).map(|i| match scheme {
        FdScheme::Periodic => vec![((i + n - 1) % n, -c), ((i + 1) % n, c)],
        FdScheme::Reference if i == 0 => vec![(0, -1.0 / h), (1, 1.0 / h)],
        FdScheme::Reference if i == n - 1 => vec![(n - 2, -1.0 / h), (n - 1, 1.0 / h)],
        FdScheme::SecondOrder if i == 0 => vec![(0, -3.0 * c), (1, 4.0 * c), (2, -c)],
        FdScheme::SecondOrder if i == n - 1 => {
            vec![(n - 3, c), (n - 2, -4.0 * c), (n - 1, 3.0 * c)]
        }
        _ => vec![(i - 1, -c), (i + 1, c)],
    });
    AxisMatrix::from_rows(rows.collect())
}

/// `(f₋ − 2f + f₊)/h²` inside, `(2f₀ − 5f₁ + 4f₂ − f₃)/h²` (and its mirror) at the ends.
fn second_order_second(n: usize, h: f64) -> AxisMatrix {
    let c = 1.0 / (h * h);
    let rows = (0..n).map(|i| {
        if i == 0 {
            vec![(0, 2.0 * c), (1, -5.0 * c), (2, 4.0 * c), (3, -c)]
        } else if i == n - 1 {
            vec![
                (n - 4, -c),
                (n - 3, 4.0 * c),
                (n - 2, -5.0 * c),
                (n - 1, 2.0 * c),
            ]
        } else {
            vec![(i - 1, c), (i, -2.0 * c), (i + 1, c)]
        }
    });
    AxisMatrix::from_rows(rows.collect())
}

/// `(f₋ − 2f + f₊)/h²` with wrap-around.
fn periodic_second(n: usize, h: f64) -> AxisMatrix {
    let c = 1.0 / (h * h);
    let rows = (0..n).map(|i| vec![((i + n - 1) % n, c), (i, -2.0 * c), ((i + 1) % n, c)]);
    AxisMatrix::from_rows(rows.collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `numpy.gradient(f, h)` written out from its documented formula, as the oracle
    /// for the reference scheme on one line.
    fn numpy_gradient_edge1(f: &[f64], h: f64) -> Vec<f64> {
        let n = f.len();
        (0..n)
            .map(|i| match i {
                0 => (f[1] - f[0]) / h,
                i if i == n - 1 => (f[n - 1] - f[n - 2]) / h,
                i => (f[i + 1] - f[i - 1]) / (2.0 * h),
            })
            .collect()
    }

    #[test]
    fn reference_first_derivative_is_numpy_gradient_on_each_axis_and_channel() {
        let shape = Shape::new(&[4, 5, 3]);
        let channels = 2;
        let h = [0.7, 0.3, 1.9];
        let field: Vec<f64> = (0..shape.len() * channels)
            .map(|k| ((k * 53 % 97) as f64).sin())
            .collect();
        for (axis, &h) in h.iter().enumerate() {
            let d =
                FiniteDifference::first_with_spacing(&shape, axis, FdScheme::Reference, h).unwrap();
            let out = d.apply_to_vec(&field, channels);
            let stride = shape.strides()[axis] * channels;
            let n = shape.dims()[axis];
            // Every line along the axis: the values whose index has a zero there.
            for start in (0..field.len()).filter(|&k| (k / stride).is_multiple_of(n)) {
                let line: Vec<f64> = (0..n).map(|i| field[start + i * stride]).collect();
                let expected = numpy_gradient_edge1(&line, h);
                for (i, e) in expected.iter().enumerate() {
                    assert!((out[start + i * stride] - e).abs() <= 1e-13 * (1.0 + e.abs()));
                }
            }
        }
    }

    #[test]
    fn reference_second_derivative_is_first_applied_twice() {
        let shape = Shape::new(&[6, 7]);
        let d1 = FiniteDifference::first_with_spacing(&shape, 1, FdScheme::Reference, 0.1).unwrap();
        let d2 =
            FiniteDifference::second_with_spacing(&shape, 1, FdScheme::Reference, 0.1).unwrap();
        let field: Vec<f64> = (0..shape.len() * 3)
            .map(|k| (k as f64 * 0.37).cos())
            .collect();
        let twice = d1.apply_to_vec(&d1.apply_to_vec(&field, 3), 3);
        let fused = d2.apply_to_vec(&field, 3);
        let scale = twice.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        for (a, b) in twice.iter().zip(&fused) {
            assert!((a - b).abs() <= 1e-13 * scale);
        }
    }

    #[test]
    fn periodic_stencils_wrap_around() {
        let shape = Shape::new(&[5]);
        let f = [1.0, 4.0, 9.0, 16.0, 25.0];
        let d1 = FiniteDifference::first_with_spacing(&shape, 0, FdScheme::Periodic, 0.5).unwrap();
        let d2 = FiniteDifference::second_with_spacing(&shape, 0, FdScheme::Periodic, 0.5).unwrap();
        let first = d1.apply_to_vec(&f, 1);
        let second = d2.apply_to_vec(&f, 1);
        assert!((first[0] - (4.0 - 25.0)).abs() < 1e-12);
        assert!((first[4] - (1.0 - 16.0)).abs() < 1e-12);
        assert!((second[0] - 4.0 * (4.0 - 2.0 + 25.0)).abs() < 1e-12);
        assert!((second[4] - 4.0 * (16.0 - 50.0 + 1.0)).abs() < 1e-12);
    }

    #[test]
    fn second_order_scheme_is_exact_on_quadratics_and_cubics() {
        // 3-point one-sided first derivatives and 4-point one-sided second derivatives
        // are exact for polynomials of degree 2 and 3 respectively.
        let n = 6;
        let h = 0.25;
        let shape = Shape::new(&[n]);
        let x: Vec<f64> = (0..n).map(|i| 1.0 + h * i as f64).collect();
        let quad: Vec<f64> = x.iter().map(|x| 3.0 * x * x - x + 2.0).collect();
        let cubic: Vec<f64> = x.iter().map(|x| x * x * x - 2.0 * x * x).collect();
        let d1 = FiniteDifference::first_with_spacing(&shape, 0, FdScheme::SecondOrder, h).unwrap();
        let d2 =
            FiniteDifference::second_with_spacing(&shape, 0, FdScheme::SecondOrder, h).unwrap();
        for (i, (got1, got2)) in d1
            .apply_to_vec(&quad, 1)
            .iter()
            .zip(d2.apply_to_vec(&cubic, 1))
            .enumerate()
        {
            assert!((got1 - (6.0 * x[i] - 1.0)).abs() < 1e-12);
            assert!((got2 - (6.0 * x[i] - 4.0)).abs() < 1e-11);
        }
    }

    #[test]
    fn bad_input_gives_typed_errors() {
        let grid = Grid::uniform_tx(5, 8, 1.0).unwrap();
        assert_eq!(
            FiniteDifference::first(&grid, 2, FdScheme::Reference),
            Err(MeshError::AxisOutOfRange { axis: 2, ndim: 2 })
        );
        assert!(matches!(
            FiniteDifference::first(&grid, 1, FdScheme::Periodic),
            Err(MeshError::Periodicity { axis: 1, .. })
        ));
        let shape = Shape::new(&[3, 3]);
        assert!(matches!(
            FiniteDifference::second_with_spacing(&shape, 0, FdScheme::SecondOrder, 1.0),
            Err(MeshError::TooSmall { min: 4, got: 3, .. })
        ));
        // Spacings whose h⁻⁴ overflows or vanishes too (they once panicked
        // on non-finite weights).
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e-300, 1e-76, 1e76] {
            for scheme in [FdScheme::Reference, FdScheme::Periodic] {
                assert!(matches!(
                    FiniteDifference::first_with_spacing(&shape, 0, scheme, bad),
                    Err(MeshError::InvalidValue { .. })
                ));
            }
            assert!(matches!(
                FiniteDifference::second_with_spacing(
                    &Shape::new(&[4, 3]),
                    0,
                    FdScheme::SecondOrder,
                    bad
                ),
                Err(MeshError::InvalidValue { .. })
            ));
        }
        // The ends of the range build finite fourth derivatives.
        for h in [1e-75, 1e75] {
            let d2 =
                FiniteDifference::second_with_spacing(&shape, 0, FdScheme::Periodic, h).unwrap();
            let d4 = d2.matrix().product(d2.matrix());
            for i in 0..d4.len() {
                let (_, weights) = d4.row(i);
                assert!(weights.iter().all(|w| w.is_finite() && *w != 0.0), "{h}");
            }
        }
        assert!(matches!(
            FiniteDifference::from_matrix(&shape, 1, AxisMatrix::from_rows(vec![vec![]; 4])),
            Err(MeshError::ShapeMismatch { .. })
        ));
    }
}
