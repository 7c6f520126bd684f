//! Diffusion–sorption: the residual against a hand evaluation of the reference's
//! formula, its derivatives against finite differences, the derivative terms on a
//! smooth manufactured field against their exact values (observed orders), the
//! IC/BC rows against hand-written stencils, and typed errors.

mod pde_support;

use pde_support::{
    assert_order, check_derivatives_against_fd, max_error, residual_at, residual_field, row_value,
    term_fields,
};
use tessera_constraints::{ConstraintError, Pde};
use tessera_meshes::Grid;
use tessera_meshes::ops::fd::FdScheme;
use tessera_scenarios::ScenarioError;
use tessera_scenarios::config::{BoundaryPlacement, DiffusionSorptionParams};
use tessera_scenarios::diffusion_sorption::pde::DiffusionSorption;

/// The reference's `compute_pde_residual`, written out on plain numbers with its
/// hard-coded constants (neptune/pdes/diffusion_sorption.py).
fn hand_residual(u: f64, u_t: f64, u_xx: f64) -> f64 {
    let (d, por, rho_s, k_f, n_f) = (5e-4, 0.29, 2880.0, 3.5e-4, 0.874);
    let power: f64 = if u > 0.0 {
        (u + 1e-6_f64).powf(n_f - 1.0)
    } else {
        1e-6_f64.powf(n_f - 1.0)
    };
    let retardation = 1.0 + ((1.0 - por) / por) * rho_s * k_f * n_f * power;
    u_t - d / retardation * u_xx
}

#[test]
fn residual_is_the_reference_formula() {
    let ds = DiffusionSorption::default();
    for z in [
        [0.5, 1e-3, 2.0, 0.0],
        [1.0, -3e-4, -7.5, 1.0],
        [1e-9, 0.2, 0.1, 0.0],
        [0.0, 0.2, 0.1, 0.0],
        [-0.3, 0.01, 4.0, -2.0],
    ] {
        let expected = hand_residual(z[0], z[1], z[2]);
        let got = residual_at(&ds, &z);
        assert!(
            (got - expected).abs() <= 1e-15 * (1.0 + expected.abs()),
            "z = {z:?}: {got} vs {expected}"
        );
    }
}

#[test]
fn residual_derivatives_match_finite_differences() {
    let ds = DiffusionSorption::default();
    // u > 0 (the power law is active) and u < 0 (constant retardation).
    check_derivatives_against_fd(&ds, &[0.4, 1e-3, 2.0, 0.5]);
    check_derivatives_against_fd(&ds, &[-0.4, 1e-3, 2.0, 0.5]);
}

/// A smooth positive field on the reference's time span, with its exact derivatives.
struct Manufactured;

impl Manufactured {
    const TAU: f64 = 400.0;
    fn envelope(t: f64) -> f64 {
        0.2 * (-t / Self::TAU).exp()
    }
    fn u(t: f64, x: f64) -> f64 {
        0.4 + Self::envelope(t) * (3.0 * x + 1.0).sin()
    }
    fn u_t(t: f64, x: f64) -> f64 {
        -Self::envelope(t) / Self::TAU * (3.0 * x + 1.0).sin()
    }
    fn u_x(t: f64, x: f64) -> f64 {
        3.0 * Self::envelope(t) * (3.0 * x + 1.0).cos()
    }
    fn u_xx(t: f64, x: f64) -> f64 {
        -9.0 * Self::envelope(t) * (3.0 * x + 1.0).sin()
    }
    fn field(grid: &Grid, f: fn(f64, f64) -> f64) -> Vec<f64> {
        let (t, x) = (grid.axis(0).coords(), grid.axis(1).coords());
        t.iter()
            .flat_map(|&t| x.iter().map(move |&x| f(t, x)))
            .collect()
    }
}

/// Per refinement: max error of `[u_t, u_xx, u_x, F]` over the points `keep` accepts
/// (`keep(t, x, nt, nx)`), on the PDEBench layout (cell centres, t ∈ [0, 500]).
fn term_errors(
    scheme: FdScheme,
    keep: impl Fn(usize, usize, usize, usize) -> bool,
) -> Vec<[f64; 4]> {
    let ds = DiffusionSorption::new(DiffusionSorptionParams::default(), scheme).unwrap();
    [(11, 32), (21, 64), (41, 128)]
        .iter()
        .map(|&(nt, nx)| {
            let grid = Grid::uniform_tx(nt, nx, 500.0).unwrap();
            let terms = term_fields(&ds, &grid, &Manufactured::field(&grid, Manufactured::u));
            let exact = [Manufactured::u_t, Manufactured::u_xx, Manufactured::u_x]
                .map(|f| Manufactured::field(&grid, f));
            let exact_terms = vec![
                Manufactured::field(&grid, Manufactured::u),
                exact[0].clone(),
                exact[1].clone(),
                exact[2].clone(),
            ];
            let keep = |p: usize| keep(p / nx, p % nx, nt, nx);
            let f = residual_field(&ds, &terms);
            let f_exact = residual_field(&ds, &exact_terms);
            [
                max_error(&terms[DiffusionSorption::U_T], &exact[0], keep),
                max_error(&terms[DiffusionSorption::U_XX], &exact[1], keep),
                max_error(&terms[DiffusionSorption::U_X], &exact[2], keep),
                max_error(&f, &f_exact, keep),
            ]
        })
        .collect()
}

fn column(errors: &[[f64; 4]], j: usize) -> Vec<f64> {
    errors.iter().map(|e| e[j]).collect()
}

#[test]
fn second_order_terms_and_residual_converge_at_order_two_everywhere() {
    let errors = term_errors(FdScheme::SecondOrder, |_, _, _, _| true);
    for (j, name) in ["u_t", "u_xx", "u_x", "residual"].iter().enumerate() {
        assert_order(name, &column(&errors, j), 1.8);
    }
}

#[test]
fn reference_terms_converge_at_order_two_inside_and_one_at_the_boundary_rows() {
    let inside =
        |t: usize, x: usize, nt: usize, nx: usize| t >= 1 && t + 1 < nt && x >= 2 && x + 2 < nx;
    let errors = term_errors(FdScheme::Reference, inside);
    for (j, name) in ["u_t", "u_xx", "u_x", "residual"].iter().enumerate() {
        assert_order(name, &column(&errors, j), 1.8);
    }
    // The right boundary row uses u_x at the last point: a backward difference,
    // first order.
    let right = |_: usize, x: usize, _: usize, nx: usize| x + 1 == nx;
    let errors = term_errors(FdScheme::Reference, right);
    let orders = pde_support::observed_orders(&column(&errors, 2));
    assert!(
        orders.iter().all(|o| (0.9..1.2).contains(o)),
        "u_x at the right boundary: orders {orders:?}, expected ≈ 1"
    );
}

/// Checks `ds`'s rows on a 4 × 6 grid against hand-written stencils: the
/// reference's IC rows, and `left(u_0, u_1)` and `right(u_{n−1}, u_{n−2}, h)` for
/// the boundary rows at every `t > 0`, on an arbitrary field.
fn assert_rows(
    ds: &DiffusionSorption,
    left: impl Fn(f64, f64) -> f64,
    right: impl Fn(f64, f64, f64) -> f64,
) {
    let (nt, nx) = (4, 6);
    let grid = Grid::uniform_tx(nt, nx, 500.0).unwrap();
    let ic: Vec<f64> = (0..nx).map(|i| 0.05 + 0.01 * i as f64).collect();
    let rows = ds.linear_rows(&grid, &ic).unwrap();
    assert_eq!(rows.len(), nx + 2 * (nt - 1));
    let u: Vec<f64> = (0..nt * nx).map(|p| 0.3 + (p as f64 * 0.7).sin()).collect();
    let terms = term_fields(ds, &grid, &u);
    let h = 1.0 / nx as f64;
    let mut expected: Vec<(usize, f64)> = (0..nx).map(|i| (i, (u[i] - ic[i]) / ic[i])).collect();
    expected.extend((1..nt).map(|t| (t * nx, left(u[t * nx], u[t * nx + 1]))));
    expected.extend((1..nt).map(|t| {
        let last = t * nx + nx - 1;
        (last, right(u[last], u[last - 1], h))
    }));
    for (row, (point, value)) in rows.iter().zip(expected) {
        assert_eq!(row.point, point);
        let got = row_value(row, &terms);
        assert!(
            (got - value).abs() < 1e-12 * (1.0 + value.abs()),
            "{got} vs {value}"
        );
    }
}

#[test]
fn cell_centre_rows_are_the_reference_ic_and_boundary_conditions() {
    let params = DiffusionSorptionParams {
        boundary: BoundaryPlacement::CellCentres,
        ..DiffusionSorptionParams::default()
    };
    let ds = DiffusionSorption::new(params, FdScheme::Reference).unwrap();
    // neptune/pdes/diffusion_sorption.py: u(x_0) − 1 and u − D·u_x (backward).
    assert_rows(
        &ds,
        |u0, _| u0 - 1.0,
        |last, before, h| last - 5e-4 * (last - before) / h,
    );
}

#[test]
fn face_rows_are_the_finite_volume_conditions_at_the_faces() {
    // By hand: the centres sit at h/2 and 1 − h/2; the linear extrapolation to
    // x = 0 of (h/2, u_0), (3h/2, u_1) is (3u_0 − u_1)/2, to x = 1 likewise
    // (3u_{n−1} − u_{n−2})/2; the finite-volume ghost u_n = D·(u_{n−2} − u_{n−1})/h
    // is the condition u + D·u_x = 0 with the backward difference.
    for fd in [FdScheme::Reference, FdScheme::SecondOrder] {
        let ds = DiffusionSorption::new(DiffusionSorptionParams::default(), fd).unwrap();
        assert_eq!(ds.boundary(), BoundaryPlacement::Faces);
        if fd == FdScheme::Reference {
            assert_rows(
                &ds,
                |u0, u1| (3.0 * u0 - u1) / 2.0 - 1.0,
                |last, before, h| (3.0 * last - before) / 2.0 + 5e-4 * (last - before) / h,
            );
        }
        // Either stencil: a row is exact on a linear field u = a + b·x whose face
        // values meet the conditions (u(0) = 1; u(1) = −D·b).
        let (slope, d) = (-0.8, ds.params().d);
        let (nt, nx) = (3, 7);
        let grid = Grid::uniform_tx(nt, nx, 500.0).unwrap();
        let x = grid.axis(1).coords().to_vec();
        let ic = vec![0.1; nx];
        let rows = ds.linear_rows(&grid, &ic).unwrap();
        for (offset, side) in [(1.0, 0), (-slope * (1.0 + d), nx - 1)] {
            let u: Vec<f64> = (0..nt * nx).map(|p| offset + slope * x[p % nx]).collect();
            let terms = term_fields(&ds, &grid, &u);
            for row in rows
                .iter()
                .filter(|r| r.point % nx == side && r.point >= nx)
            {
                let value = row_value(row, &terms);
                assert!(value.abs() < 1e-12, "{fd:?}, side {side}: {value:e}");
            }
        }
    }
}

#[test]
fn bad_initial_conditions_are_typed_errors() {
    let ds = DiffusionSorption::default();
    let grid = Grid::uniform_tx(3, 4, 500.0).unwrap();
    for bad in [0.0, f64::NAN, f64::INFINITY] {
        let result = ds.linear_rows(&grid, &[0.1, bad, 0.1, 0.1]);
        assert!(
            matches!(result, Err(ConstraintError::InvalidValue { .. })),
            "{bad}: {result:?}"
        );
    }
    assert!(matches!(
        ds.linear_rows(&grid, &[0.1; 5]),
        Err(ConstraintError::ShapeMismatch { .. })
    ));
    let periodic = Grid::uniform_txy(3, 4, 4, 1.0).unwrap();
    assert!(matches!(
        ds.terms(&periodic),
        Err(ConstraintError::ShapeMismatch { .. })
    ));
}

#[test]
fn bad_constants_are_typed_errors() {
    let base = DiffusionSorptionParams::default();
    for params in [
        DiffusionSorptionParams { d: 0.0, ..base },
        DiffusionSorptionParams { phi: 0.0, ..base },
        DiffusionSorptionParams { phi: 1.5, ..base },
        DiffusionSorptionParams {
            rho_s: -1.0,
            ..base
        },
        DiffusionSorptionParams {
            k_f: f64::NAN,
            ..base
        },
        DiffusionSorptionParams {
            n_f: f64::INFINITY,
            ..base
        },
    ] {
        assert!(matches!(
            DiffusionSorption::new(params, FdScheme::Reference),
            Err(ScenarioError::InvalidValue { .. })
        ));
    }
    assert!(matches!(
        DiffusionSorption::new(base, FdScheme::Periodic),
        Err(ScenarioError::Unsupported { .. })
    ));
}
