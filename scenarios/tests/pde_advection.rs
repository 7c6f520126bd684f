//! Linear advection: the closed-form solution makes the discrete residual vanish at
//! second order, wraps around the period, and bad input is a typed error.

mod pde_support;

use std::f64::consts::PI;

use pde_support::{
    assert_order, check_derivatives_against_fd, max_error, residual_field, row_value, term_fields,
};
use tessera_constraints::{ConstraintError, Pde};
use tessera_scenarios::ScenarioError;
use tessera_scenarios::advection::Advection;

const SPEED: f64 = 0.7;

fn u0(x: f64) -> f64 {
    (2.0 * PI * x).sin() + 0.5 * (4.0 * PI * x + 0.3).cos()
}

#[test]
fn residual_of_the_exact_solution_converges_at_order_two() {
    let advection = Advection::new(SPEED).unwrap();
    let errors: Vec<f64> = [16, 32, 64]
        .iter()
        .map(|&n| {
            let grid = Advection::grid(n + 1, n, 0.5).unwrap();
            let u = advection.exact_field(&grid, u0).unwrap();
            let f = residual_field(&advection, &term_fields(&advection, &grid, &u));
            max_error(&f, &vec![0.0; f.len()], |_| true)
        })
        .collect();
    assert_order("advection", &errors, 1.9);
}

#[test]
fn exact_solution_is_the_shifted_initial_condition_wrapped_into_one_period() {
    let advection = Advection::new(-2.5).unwrap();
    let (nt, nx) = (5, 8);
    let grid = Advection::grid(nt, nx, 1.0).unwrap();
    // A sawtooth reveals whether arguments are wrapped into [0, 1).
    let u = advection.exact_field(&grid, |x| x).unwrap();
    for t in 0..nt {
        for i in 0..nx {
            let (tc, xc) = (t as f64 / (nt - 1) as f64, i as f64 / nx as f64);
            let foot = xc + 2.5 * tc;
            let expected = foot - foot.floor();
            assert!((u[t * nx + i] - expected).abs() < 1e-12);
        }
    }
}

#[test]
fn initial_rows_hold_on_the_exact_solution() {
    let advection = Advection::new(SPEED).unwrap();
    let grid = Advection::grid(6, 10, 1.0).unwrap();
    let u = advection.exact_field(&grid, u0).unwrap();
    let ic: Vec<f64> = grid.axis(1).coords().iter().map(|&x| u0(x)).collect();
    let rows = advection.linear_rows(&grid, &ic).unwrap();
    assert_eq!(rows.len(), 10);
    let terms = term_fields(&advection, &grid, &u);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.point, i);
        assert!(row_value(row, &terms).abs() < 1e-15);
    }
}

#[test]
fn residual_derivatives_match_finite_differences() {
    let advection = Advection::new(SPEED).unwrap();
    check_derivatives_against_fd(&advection, &[0.3, -1.2, 2.5]);
}

#[test]
fn bad_input_is_a_typed_error() {
    assert!(matches!(
        Advection::new(f64::NAN),
        Err(ScenarioError::InvalidValue { .. })
    ));
    let advection = Advection::new(SPEED).unwrap();
    let grid = Advection::grid(4, 5, 1.0).unwrap();
    assert!(matches!(
        advection.linear_rows(&grid, &[0.0; 6]),
        Err(ConstraintError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        advection.linear_rows(&grid, &[0.0, f64::INFINITY, 0.0, 0.0, 0.0]),
        Err(ConstraintError::NonFinite { .. })
    ));
    let bounded = tessera_meshes::Grid::uniform_tx(4, 5, 1.0).unwrap();
    assert!(matches!(
        advection.terms(&bounded),
        Err(ConstraintError::ShapeMismatch { .. })
    ));
}
