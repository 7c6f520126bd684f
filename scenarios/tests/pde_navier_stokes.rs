//! Navier–Stokes: the residual against a hand evaluation, its derivatives against
//! finite differences, every term on a smooth periodic manufactured field against
//! its exact value (spectral terms to round-off, reference stencils at their
//! observed orders, non-wrapping at the edges as the reference's `jnp.gradient`),
//! the model form (mollifier and initial condition) and typed errors.

mod pde_support;

use std::f64::consts::PI;

use pde_support::{
    assert_order, check_derivatives_against_fd, max_error, residual_at, residual_field, term_fields,
};
use tessera_constraints::{ConstraintError, Pde};
use tessera_meshes::Grid;
use tessera_scenarios::ScenarioError;
use tessera_scenarios::config::NavierStokesParams;
use tessera_scenarios::navier_stokes::pde::{Derivatives, MOLLIFIER_SCALE, NavierStokes};

#[test]
fn residual_is_the_vorticity_equation() {
    let ns = NavierStokes::default();
    let z = [0.3, -1.5, 2.0, 0.7, -0.2, 40.0];
    let expected = 0.3 + (-1.5 * 0.7) + 2.0 * -0.2 - 1e-4 * 40.0;
    assert!((residual_at(&ns, &z) - expected).abs() < 1e-15);
}

#[test]
fn residual_derivatives_match_finite_differences() {
    check_derivatives_against_fd(&NavierStokes::default(), &[0.3, -1.5, 2.0, 0.7, -0.2, 40.0]);
}

/// `w = e^{−t}·(sin 2πx cos 2πy + ½ cos 2π(x + 2y))`: band-limited, with its
/// exact terms `[w_t, v_x, v_y, w_x, w_y, Δw]`, the velocity from `−Δψ = w`,
/// `v = (∂_y ψ, −∂_x ψ)`, mode by mode (`ψ = w_k/|k|²`).
fn manufactured(t: f64, x: f64, y: f64) -> [f64; 7] {
    let e = (-t).exp();
    let (a, b) = (2.0 * PI * x, 2.0 * PI * y);
    let (k1, k2) = (8.0 * PI * PI, 20.0 * PI * PI); // |k|² of the two modes
    let w1 = a.sin() * b.cos();
    let w2 = 0.5 * (a + 2.0 * b).cos();
    let (w1_x, w1_y) = (2.0 * PI * a.cos() * b.cos(), -2.0 * PI * a.sin() * b.sin());
    let (w2_x, w2_y) = (-PI * (a + 2.0 * b).sin(), -2.0 * PI * (a + 2.0 * b).sin());
    [
        e * (w1 + w2),
        -e * (w1 + w2),
        e * (w1_y / k1 + w2_y / k2),
        -e * (w1_x / k1 + w2_x / k2),
        e * (w1_x + w2_x),
        e * (w1_y + w2_y),
        -e * (k1 * w1 + k2 * w2),
    ]
}

/// The manufactured field (index 0) or its exact term `j` (index `j + 1`) on `grid`.
fn field(grid: &Grid, index: usize) -> Vec<f64> {
    let [t, x, y] = [0, 1, 2].map(|a| grid.axis(a).coords());
    let mut out = Vec::with_capacity(grid.len());
    for &t in t {
        for &x in x {
            for &y in y {
                out.push(manufactured(t, x, y)[index]);
            }
        }
    }
    out
}

/// Max error of each term (and of the residual, last) over the points `keep`
/// accepts (`keep(t, x, y, n)`), on `n × n × n` grids with `t ∈ [0, 1]`.
fn term_errors(
    derivatives: Derivatives,
    keep: impl Fn(usize, usize, usize, usize) -> bool,
) -> Vec<[f64; 7]> {
    let params = NavierStokesParams { nu: 0.01 };
    let ns = NavierStokes::new(params, derivatives).unwrap();
    [12, 24, 48]
        .iter()
        .map(|&n| {
            let grid = Grid::uniform_txy(n, n, n, 1.0).unwrap();
            let terms = term_fields(&ns, &grid, &field(&grid, 0));
            let exact: Vec<Vec<f64>> = (1..7).map(|j| field(&grid, j)).collect();
            let keep = |p: usize| keep(p / (n * n), p / n % n, p % n, n);
            let mut errors = [0.0; 7];
            for j in 0..6 {
                errors[j] = max_error(&terms[j], &exact[j], keep);
            }
            let f = residual_field(&ns, &terms);
            errors[6] = max_error(&f, &residual_field(&ns, &exact), keep);
            errors
        })
        .collect()
}

fn column(errors: &[[f64; 7]], j: usize) -> Vec<f64> {
    errors.iter().map(|e| e[j]).collect()
}

#[test]
fn spectral_terms_are_exact_in_space_and_second_order_in_time() {
    let errors = term_errors(Derivatives::Spectral, |_, _, _, _| true);
    // Columns 1..=5 (v_x, v_y, w_x, w_y, Δw): round-off relative to the size
    // of the term.
    let scales = [0.2, 0.2, 10.0, 20.0, 300.0];
    for (j, scale) in (1..).zip(scales) {
        for e in column(&errors, j) {
            assert!(e < 1e-12 * scale, "term {j}: {errors:?}");
        }
    }
    assert_order("w_t", &column(&errors, 0), 1.8);
    assert_order("residual", &column(&errors, 6), 1.8);
}

#[test]
fn reference_terms_converge_at_order_two_away_from_the_edges() {
    let inside = |t: usize, x: usize, y: usize, n: usize| {
        let away = |i: usize| i >= 2 && i + 2 < n;
        t >= 1 && t + 1 < n && away(x) && away(y)
    };
    let errors = term_errors(Derivatives::Reference, inside);
    for (j, name) in ["w_t", "w_x", "w_y", "Δw", "residual"]
        .iter()
        .zip([0, 3, 4, 5, 6])
        .map(|(name, j)| (j, name))
    {
        // The wide (2h) stencils approach order 2 from below on these grids.
        assert_order(name, &column(&errors, j), 1.75);
    }
    // The velocity is spectral in both modes.
    for j in [1, 2] {
        assert!(column(&errors, j).iter().all(|&e| e < 1e-12));
    }
}

#[test]
fn reference_spatial_differences_do_not_wrap_around() {
    // At the first and last x the reference's jnp.gradient is one-sided with
    // spacing 1/n, although the axis is periodic.
    let n = 8;
    let grid = Grid::uniform_txy(3, n, n, 1.0).unwrap();
    let w: Vec<f64> = (0..grid.len()).map(|p| (p as f64 * 0.37).sin()).collect();
    let terms = term_fields(&NavierStokes::default(), &grid, &w);
    let at = |t: usize, x: usize, y: usize| w[(t * n + x) * n + y];
    let h = 1.0 / n as f64;
    for (t, y) in [(0, 0), (1, 3), (2, 7)] {
        let first = (t * n) * n + y;
        let last = (t * n + n - 1) * n + y;
        let w_x = terms[NavierStokes::W_X].as_slice();
        assert!((w_x[first] - (at(t, 1, y) - at(t, 0, y)) / h).abs() < 1e-12);
        assert!((w_x[last] - (at(t, n - 1, y) - at(t, n - 2, y)) / h).abs() < 1e-12);
    }
    // And w_t is the one-sided difference in t at both ends, spacing dt = 0.5.
    let w_t = terms[NavierStokes::W_T].as_slice();
    let p = 3 * n + 5;
    assert!((w_t[p] - (w[n * n + p] - w[p]) / 0.5).abs() < 1e-12);
}

#[test]
fn solution_map_is_the_reference_mollifier_and_self_adjoint_pair() {
    let (nt, nx, ny, channels) = (4, 6, 4, 3);
    let grid = Grid::uniform_txy(nt, nx, ny, 5.0).unwrap();
    let map = NavierStokes::default()
        .solution_map(&grid)
        .unwrap()
        .unwrap();
    let b: Vec<f64> = (0..grid.len() * channels)
        .map(|k| (k as f64 * 0.91).cos())
        .collect();
    let sb = map.apply_to_vec(&b, channels);
    let plane = nx * ny;
    for t in 0..nt {
        let factor = MOLLIFIER_SCALE * t as f64 / (nt - 1) as f64;
        for c in 0..channels {
            let at = |p: usize| (t * plane + p) * channels + c;
            let mean = (0..plane).map(|p| b[at(p)]).sum::<f64>() / plane as f64;
            for p in 0..plane {
                let expected = factor * (b[at(p)] - mean);
                assert!((sb[at(p)] - expected).abs() < 1e-15, "t {t} c {c} p {p}");
            }
        }
    }
    let other: Vec<f64> = (0..b.len()).map(|k| (k as f64 * 0.13).sin()).collect();
    let lhs: f64 = sb.iter().zip(&other).map(|(a, b)| a * b).sum();
    let adjoint = map.apply_adjoint_to_vec(&other, channels);
    let rhs: f64 = b.iter().zip(&adjoint).map(|(a, b)| a * b).sum();
    assert!((lhs - rhs).abs() < 1e-13 * lhs.abs().max(1.0));
}

#[test]
fn initial_condition_holds_exactly_for_any_weights() {
    let (nt, n) = (3, 4);
    let grid = Grid::uniform_txy(nt, n, n, 5.0).unwrap();
    let ns = NavierStokes::default();
    let ic: Vec<f64> = (0..n * n).map(|p| (p as f64).sin()).collect();
    let offset = ns.solution_offset(&grid, &ic).unwrap().unwrap();
    let basis: Vec<f64> = (0..grid.len())
        .map(|p| (p as f64 * 1.7).cos() * 9.0)
        .collect();
    let map = ns.solution_map(&grid).unwrap().unwrap();
    let u: Vec<f64> = map
        .apply_to_vec(&basis, 1)
        .iter()
        .zip(&offset)
        .map(|(a, b)| a + b)
        .collect();
    assert_eq!(&u[..n * n], ic.as_slice());
    for t in 0..nt {
        assert_eq!(&offset[t * n * n..(t + 1) * n * n], ic.as_slice());
    }
    assert!(ns.linear_rows(&grid, &ic).unwrap().is_empty());
}

#[test]
fn bad_input_is_a_typed_error() {
    for nu in [-1.0, f64::NAN] {
        assert!(matches!(
            NavierStokes::new(NavierStokesParams { nu }, Derivatives::Reference),
            Err(ScenarioError::InvalidValue { .. })
        ));
    }
    let ns = NavierStokes::default();
    let grid = Grid::uniform_txy(3, 4, 4, 1.0).unwrap();
    assert!(matches!(
        ns.linear_rows(&grid, &[0.0; 15]),
        Err(ConstraintError::ShapeMismatch { .. })
    ));
    let mut ic = vec![0.0; 16];
    ic[3] = f64::NAN;
    assert!(matches!(
        ns.solution_offset(&grid, &ic),
        Err(ConstraintError::NonFinite { .. })
    ));
    let line = Grid::uniform_tx(3, 4, 1.0).unwrap();
    assert!(matches!(
        ns.terms(&line),
        Err(ConstraintError::ShapeMismatch { .. })
    ));
}
