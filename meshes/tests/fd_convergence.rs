//! Observed convergence orders of the finite-difference operators on smooth
//! functions, against their analytic derivatives (within 0.2 of the theory).
//!
//! Each run differentiates `u(t, x, c) = (1 + c) · g(s)` along one axis `s` of a
//! 2-D grid with 2 channels (along `t` and along `x`, so both the slow and the fast
//! memory layout are checked), with the grid spacing halved between runs.

use std::f64::consts::PI;

use tessera_meshes::{Axis, FdScheme, FiniteDifference, Grid, LinearOperator};

const CHANNELS: usize = 2;
const OTHER_LEN: usize = 3;

/// A smooth test function and its first two derivatives.
struct Smooth {
    g: fn(f64) -> f64,
    dg: fn(f64) -> f64,
    d2g: fn(f64) -> f64,
}

/// Non-periodic on `[0, 1]`, with non-zero derivatives of every order at the ends.
const BOUNDED: Smooth = Smooth {
    g: |x| (2.0 * x + 0.3).sin() + 0.5 * (3.0 * x).cos(),
    dg: |x| 2.0 * (2.0 * x + 0.3).cos() - 1.5 * (3.0 * x).sin(),
    d2g: |x| -4.0 * (2.0 * x + 0.3).sin() - 4.5 * (3.0 * x).cos(),
};

/// 1-periodic and not band-limited.
const PERIODIC: Smooth = Smooth {
    g: |x| (2.0 * PI * x).sin().exp(),
    dg: |x| 2.0 * PI * (2.0 * PI * x).cos() * (2.0 * PI * x).sin().exp(),
    d2g: |x| {
        let (s, c) = (2.0 * PI * x).sin_cos();
        4.0 * PI * PI * (c * c - s) * s.exp()
    },
};

/// The derivative error at every point of the differentiated axis (max over the other
/// axis and the channels).
fn pointwise_errors(
    axis_values: Axis,
    along: usize,
    scheme: FdScheme,
    order: usize,
    target: fn(f64) -> f64,
    f: &Smooth,
) -> Vec<f64> {
    let other = Axis::linspace("o", 0.0, 1.0, OTHER_LEN).unwrap();
    let n = axis_values.len();
    let coords = axis_values.coords().to_vec();
    let axes = if along == 0 {
        vec![axis_values, other]
    } else {
        vec![other, axis_values]
    };
    let grid = Grid::new(axes).unwrap();
    let op = if order == 1 {
        FiniteDifference::first(&grid, along, scheme)
    } else {
        FiniteDifference::second(&grid, along, scheme)
    }
    .unwrap();
    let index_along = |p: usize| grid.shape().unflat(p)[along];
    let field: Vec<f64> = (0..grid.len() * CHANNELS)
        .map(|k| (1.0 + (k % CHANNELS) as f64) * (f.g)(coords[index_along(k / CHANNELS)]))
        .collect();
    let out = op.apply_to_vec(&field, CHANNELS);
    let mut errors = vec![0.0_f64; n];
    for (k, v) in out.iter().enumerate() {
        let i = index_along(k / CHANNELS);
        let exact = (1.0 + (k % CHANNELS) as f64) * target(coords[i]);
        errors[i] = errors[i].max((v - exact).abs());
    }
    errors
}

fn max_over(errors: &[f64], points: impl Iterator<Item = usize>) -> f64 {
    points.map(|i| errors[i]).fold(0.0, f64::max)
}

/// Observed order from the errors of successive runs whose spacing halves.
fn orders(errors: &[f64]) -> Vec<f64> {
    errors.windows(2).map(|e| (e[0] / e[1]).log2()).collect()
}

fn assert_order(label: &str, errors: &[f64], expected: f64) {
    let observed = orders(errors);
    // The last two refinements are in the asymptotic range for these smooth functions.
    for &p in &observed[observed.len() - 2..] {
        assert!(
            (p - expected).abs() <= 0.2,
            "{label}: observed orders {observed:?} (errors {errors:?}), expected {expected}"
        );
    }
}

/// Bounded axes of `2^j + 1` points on `[0, 1]`: the spacing halves exactly.
fn bounded_axes() -> impl Iterator<Item = Axis> {
    (4..=8).map(|j| Axis::linspace("s", 0.0, 1.0, (1 << j) + 1).unwrap())
}

/// Interior and end errors of a scheme on bounded axes, along axis `along`.
fn interior_and_end_errors(
    along: usize,
    scheme: FdScheme,
    order: usize,
    target: fn(f64) -> f64,
    interior_margin: usize,
) -> (Vec<f64>, Vec<f64>) {
    bounded_axes()
        .map(|axis| {
            let e = pointwise_errors(axis, along, scheme, order, target, &BOUNDED);
            let n = e.len();
            let interior = max_over(&e, interior_margin..n - interior_margin);
            let ends = max_over(&e, [0, n - 1].into_iter());
            (interior, ends)
        })
        .unzip()
}

#[test]
fn reference_first_derivative_is_second_order_inside_and_first_order_at_the_ends() {
    for along in [0, 1] {
        let (interior, ends) =
            interior_and_end_errors(along, FdScheme::Reference, 1, BOUNDED.dg, 1);
        assert_order("reference d/ds interior", &interior, 2.0);
        assert_order("reference d/ds ends", &ends, 1.0);
    }
}

#[test]
fn reference_second_derivative_is_second_order_inside() {
    for along in [0, 1] {
        // D·D uses central differences only from the third point in.
        let (interior, _) = interior_and_end_errors(along, FdScheme::Reference, 2, BOUNDED.d2g, 2);
        assert_order("reference d²/ds² interior", &interior, 2.0);
    }
}

/// Faithful to the reference: `D·D` is inconsistent at the two points next to each
/// end, where it converges (at order 1) to `f''/2` and `3f''/4` instead of `f''`.
#[test]
fn reference_second_derivative_ends_converge_to_a_fraction_of_f_second() {
    let (first, second): (Vec<f64>, Vec<f64>) = bounded_axes()
        .map(|axis| {
            let grid = Grid::new(vec![axis.clone()]).unwrap();
            let x = axis.coords();
            let n = x.len();
            let op = FiniteDifference::second(&grid, 0, FdScheme::Reference).unwrap();
            let field: Vec<f64> = x.iter().map(|&x| (BOUNDED.g)(x)).collect();
            let out = op.apply_to_vec(&field, 1);
            let row0 = (out[0] - 0.5 * (BOUNDED.d2g)(x[0]))
                .abs()
                .max((out[n - 1] - 0.5 * (BOUNDED.d2g)(x[n - 1])).abs());
            let row1 = (out[1] - 0.75 * (BOUNDED.d2g)(x[1]))
                .abs()
                .max((out[n - 2] - 0.75 * (BOUNDED.d2g)(x[n - 2])).abs());
            (row0, row1)
        })
        .unzip();
    assert_order("reference d²/ds² first point → f''/2", &first, 1.0);
    assert_order("reference d²/ds² second point → 3f''/4", &second, 1.0);
}

#[test]
fn second_order_scheme_is_second_order_everywhere() {
    for along in [0, 1] {
        for (order, target) in [(1, BOUNDED.dg), (2, BOUNDED.d2g)] {
            let (interior, ends) =
                interior_and_end_errors(along, FdScheme::SecondOrder, order, target, 1);
            assert_order("second-order scheme interior", &interior, 2.0);
            assert_order("second-order scheme ends", &ends, 2.0);
        }
    }
}

#[test]
fn periodic_central_differences_are_second_order() {
    for along in [0, 1] {
        for (order, target) in [(1, PERIODIC.dg), (2, PERIODIC.d2g)] {
            let errors: Vec<f64> = (5..=9)
                .map(|j| {
                    let axis = Axis::periodic("s", 0.0, 1.0, 1 << j).unwrap();
                    let e =
                        pointwise_errors(axis, along, FdScheme::Periodic, order, target, &PERIODIC);
                    max_over(&e, 0..e.len())
                })
                .collect();
            assert_order("periodic central", &errors, 2.0);
        }
    }
}

/// The reference scheme on a periodic axis does not wrap (as in the paper's code):
/// it is first order at the seam, where a wrapping scheme is second order.
#[test]
fn reference_scheme_on_a_periodic_axis_does_not_wrap() {
    let errors: Vec<f64> = (5..=9)
        .map(|j| {
            let axis = Axis::periodic("s", 0.0, 1.0, 1 << j).unwrap();
            let e = pointwise_errors(axis, 1, FdScheme::Reference, 1, PERIODIC.dg, &PERIODIC);
            e[0]
        })
        .collect();
    assert_order("reference at the periodic seam", &errors, 1.0);
}
