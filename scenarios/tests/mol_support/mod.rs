//! Helpers shared by the method-of-lines tests: errors against closed forms on
//! the output grid, and observed orders.
#![allow(dead_code)] // each test file uses a subset

use tessera_scenarios::mol::{Discretisation, MolDomain, MolPde, SpatialAxis};

/// The output-grid points' coordinates, row-major (x slowest), as the frames
/// lay them out.
pub fn output_points<P: MolPde>(disc: &Discretisation<'_, P>) -> Vec<Vec<f64>> {
    let axes = disc.output_axes();
    match axes.as_slice() {
        [x] => x.iter().map(|&x| vec![x]).collect(),
        [x, y] => x
            .iter()
            .flat_map(|&x| y.iter().map(move |&y| vec![x, y]))
            .collect(),
        _ => unreachable!("1-D or 2-D domains only"),
    }
}

/// Max over frames `1..` and points of `|frame − exact(t, x)|` for component
/// `component` of `components`.
pub fn max_error<P: MolPde>(
    disc: &Discretisation<'_, P>,
    frames: &[f64],
    times: &[f64],
    component: usize,
    exact: impl Fn(f64, &[f64]) -> f64,
) -> f64 {
    let points = output_points(disc);
    let m = disc.components();
    let frame = points.len() * m;
    assert_eq!(frames.len(), frame * times.len());
    let mut worst = 0.0_f64;
    for (k, &t) in times.iter().enumerate().skip(1) {
        for (i, x) in points.iter().enumerate() {
            let got = frames[k * frame + i * m + component];
            worst = worst.max((got - exact(t, x)).abs());
        }
    }
    worst
}

/// Observed orders `log(e_i / e_{i+1}) / log(ratio)` of successive errors.
pub fn orders(errors: &[f64], ratio: f64) -> Vec<f64> {
    errors
        .windows(2)
        .map(|w| (w[0] / w[1]).ln() / ratio.ln())
        .collect()
}

/// `n + 1` equally spaced times on `[0, t_end]`.
pub fn times(t_end: f64, n: usize) -> Vec<f64> {
    (0..=n).map(|i| t_end * i as f64 / n as f64).collect()
}

/// Asserts that successive errors of grids refined by 2 fall with an observed
/// order in `range`.
pub fn assert_orders(what: &str, errors: &[f64], range: std::ops::Range<f64>) {
    let p = orders(errors, 2.0);
    println!("{what}: errors {errors:?}, orders {p:?}");
    for order in p {
        assert!(range.contains(&order), "{what}: order {order}");
    }
}

/// The rectangle `[x.0, x.1] × [y.0, y.1]` with `x.2 × y.2` output points and
/// the solver grid refined `refinement` times.
pub fn rectangle(x: (f64, f64, usize), y: (f64, f64, usize), refinement: usize) -> MolDomain {
    let axis = |(lo, hi, points)| SpatialAxis { lo, hi, points };
    MolDomain::new(vec![axis(x), axis(y)], refinement).unwrap()
}
