//! The mixed derivative `dxy` in TOML definitions: the constraint layer's
//! term against `∂x∂y` of a plane wave (spectral to round-off, differences
//! with order two, local rows for the GPU), the method of lines on
//! anisotropic diffusion with Neumann rows against the wave's closed form,
//! and the typed errors of the grids it does not take.

mod mol_support;

use std::f64::consts::PI;

use mol_support::{assert_orders, max_error, rectangle, times};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tessera_constraints::Pde;
use tessera_meshes::{Axis, Grid};
use tessera_scenarios::custom::{CustomPde, CustomPdeError};
use tessera_scenarios::mol::{Discretisation, InitialFamily, MolOptions};

/// Anisotropic diffusion `u_t = a u_xx + 2b u_xy + c u_yy` (`ac > b²`).
const A: f64 = 1.0;
const B: f64 = 0.6;
const C: f64 = 0.8;
/// The plane wave `e^{−λt} sin(k₁x + k₂y + φ)` solves it with
/// `λ = a k₁² + 2b k₁k₂ + c k₂²`.
const K1: f64 = 2.0 * PI;
const K2: f64 = -2.0 * PI / 0.8;
const PHASE: f64 = 0.4;

fn rate() -> f64 {
    A * K1 * K1 + 2.0 * B * K1 * K2 + C * K2 * K2
}

fn wave(t: f64, x: &[f64]) -> f64 {
    (K1 * x[0] + K2 * x[1] + PHASE).sin() * (-rate() * t).exp()
}

/// The definition on `[0, 1] × [0, 0.8]`: periodic with `stencil` (no rows),
/// or bounded with Neumann rows from the wave on every side.
fn definition(periodic: bool, stencil: &str) -> String {
    with_rows(periodic, stencil, &NEUMANN)
}

/// A side's row: where, the row, and the wave's derivative it equals (the
/// factor of `cos(k1 x + k2 y + φ) e^{−λt}`).
type Row = (&'static str, &'static str, &'static str);

const NEUMANN: [Row; 4] = [
    ("x-min", "u_x", "k1"),
    ("x-max", "u_x", "k1"),
    ("y-min", "u_y", "k2"),
    ("y-max", "u_y", "k2"),
];

/// The conormal flux `K∇u` across each side (`K = [[a, b], [b, c]]`), the
/// no-flux condition of anisotropic diffusion when zero: an oblique row.
const CONORMAL: [Row; 4] = [
    ("x-min", "a * u_x + b * u_y", "(a * k1 + b * k2)"),
    ("x-max", "a * u_x + b * u_y", "(a * k1 + b * k2)"),
    ("y-min", "b * u_x + c * u_y", "(b * k1 + c * k2)"),
    ("y-max", "b * u_x + c * u_y", "(b * k1 + c * k2)"),
];

/// As [`definition`], the bounded sides taking `rows`.
fn with_rows(periodic: bool, stencil: &str, rows: &[Row; 4]) -> String {
    let mut text = format!(
        r#"name = "anisotropic"
space = ["x", "y"]
periodic = [{periodic}, {periodic}]
stencil = "{stencil}"
residual = "u_t - a * u_xx - 2 * b * u_xy - c * u_yy"

[parameters]
a = {A:?}
b = {B:?}
c = {C:?}
k1 = {K1:?}
k2 = {K2:?}
phase = {PHASE:?}
rate = {rate:?}

[terms]
u = "u"
u_t = {{ op = "dt", stencil = "second-order" }}
u_x = "dx"
u_y = "dy"
u_xx = "dxx"
u_xy = "dxy"
u_yy = "dyy"

[[conditions]]
at = "initial"
row = "u"
rhs = "u0"
"#,
        rate = rate()
    );
    if !periodic {
        for (place, row, k) in rows {
            text += &format!(
                "\n[[conditions]]\nat = \"{place}\"\nkind = \"neumann\"\nrow = \"{row}\"\n\
                 rhs = \"{k} * cos(k1 * x + k2 * y + phase) * exp(-rate * t)\"\n"
            );
        }
    }
    text + "\n[initial]\nu0 = \"sin(k1 * x + k2 * y + phase)\"\n"
}

fn grid(periodic: bool, nx: usize, ny: usize) -> Grid {
    let axis = |name, hi, n| {
        if periodic {
            Axis::periodic(name, 0.0, hi, n)
        } else {
            Axis::linspace(name, 0.0, hi, n)
        }
    };
    Grid::new(vec![
        Axis::linspace("t", 0.0, 0.1, 3).unwrap(),
        axis("x", 1.0, nx).unwrap(),
        axis("y", 0.8, ny).unwrap(),
    ])
    .unwrap()
}

/// The term `u_xy` applied to the wave on `grid`: its max error against
/// `∂x∂y` of the wave, and whether the operator is local.
fn mixed_term_error(pde: &CustomPde, grid: &Grid) -> (f64, bool) {
    let terms = pde.terms(grid).unwrap();
    let term = terms.iter().find(|t| t.name == "u_xy").unwrap();
    let coordinates = grid.coordinates();
    let points: Vec<&[f64]> = coordinates.chunks_exact(3).collect();
    let u: Vec<f64> = points.iter().map(|p| wave(p[0], &p[1..])).collect();
    let got = term.operator.apply_to_vec(&u, 1);
    let error = got
        .iter()
        .zip(&points)
        .map(|(g, p)| (g + K1 * K2 * wave(p[0], &p[1..])).abs())
        .fold(0.0, f64::max);
    (error, term.operator.is_local())
}

#[test]
fn the_spectral_term_is_the_mixed_derivative_of_the_wave() {
    let pde = CustomPde::from_str(&definition(true, "spectral"), "spectral.toml").unwrap();
    let (error, local) = mixed_term_error(&pde, &grid(true, 12, 10));
    println!(
        "spectral u_xy: max error {error:e} (|k1 k2| = {:.0})",
        K1 * K2.abs()
    );
    assert!(error < 1e-10 * K1 * K2.abs(), "{error}");
    assert!(!local);
}

/// Differences converge with order two, periodic and bounded (the second-order
/// scheme's one-sided rows at the ends included, pre-asymptotic on the
/// coarsest grid: order 2.36 from 16 × 13 points), and are local.
#[test]
fn the_difference_terms_converge_with_order_two_and_are_local() {
    for (periodic, stencil) in [(true, "periodic"), (false, "second-order")] {
        let pde = CustomPde::from_str(&definition(periodic, stencil), "fd.toml").unwrap();
        let results: Vec<(f64, bool)> = [2, 4, 8]
            .iter()
            .map(|&r| {
                let n = |points: usize| {
                    if periodic {
                        points * r
                    } else {
                        (points - 1) * r + 1
                    }
                };
                mixed_term_error(&pde, &grid(periodic, n(16), n(13)))
            })
            .collect();
        let errors: Vec<f64> = results.iter().map(|&(e, _)| e).collect();
        assert_orders(&format!("{stencil} u_xy"), &errors, 1.8..2.2);
        assert!(results.iter().all(|&(_, local)| local), "{stencil}");
    }
}

/// The method of lines from the definition, Neumann rows on all four sides
/// (so every corner reads the diagonal ghost beyond it), then the conormal
/// rows `n·K∇u = g` (oblique: each side's ghost reads the derivative along it).
#[test]
fn the_method_of_lines_solves_anisotropic_diffusion_with_neumann_and_conormal_rows() {
    // The conormal rows' orders are 2.42 and 2.37, above two as in
    // `mol_mixed.rs`.
    for (name, rows, range) in [
        ("Neumann", &NEUMANN, 1.85..2.15),
        ("conormal", &CONORMAL, 1.85..2.5),
    ] {
        let text = with_rows(false, "second-order", rows);
        let pde = CustomPde::from_str(&text, "bounded.toml").unwrap();
        let view = pde.mol().unwrap();
        let family = pde.initial_family().unwrap();
        let ts = times(0.02, 2);
        // The time error far below the space error (2e-3 on the finest grid).
        let options = MolOptions {
            rtol: 1e-8,
            atol: 1e-10,
            ..MolOptions::default()
        };
        // From 21 points per wavelength along y: on 11 × 9 output points the
        // order is still 1.82.
        let errors: Vec<f64> = [2, 4, 8]
            .iter()
            .map(|&r| {
                let domain = rectangle((0.0, 1.0, 11), (0.0, 0.8, 9), r);
                let disc = Discretisation::new(&view, &domain).unwrap();
                let mut rng = ChaCha8Rng::seed_from_u64(0);
                let u0 = family.sample(&mut rng, disc.solver_coordinates(), 2);
                let frames = disc.solve(&u0, &ts, &options).unwrap().frames;
                max_error(&disc, &frames, &ts, 0, wave)
            })
            .collect();
        assert_orders(
            &format!("TOML anisotropic diffusion, {name} rows"),
            &errors,
            range,
        );
    }
}

#[test]
fn grids_the_mixed_derivative_does_not_take_are_typed_errors() {
    let invalid = |text: String, expected: &str| {
        let err = CustomPde::from_str(&text, "bad.toml").unwrap_err();
        assert!(matches!(err, CustomPdeError::Invalid { .. }), "{err}");
        assert!(err.to_string().contains(expected), "{err}");
    };
    // Spectral on bounded axes.
    invalid(definition(false, "spectral"), "bounded");
    // One space axis: there is no y.
    let one_d = definition(true, "periodic")
        .replace("space = [\"x\", \"y\"]", "space = [\"x\"]")
        .replace("u_y = \"dy\"\n", "")
        .replace("u_yy = \"dyy\"\n", "")
        .replace("periodic = [true, true]", "periodic = [true]");
    invalid(one_d, "unknown operator `dxy`");
    // A side's row with the derivative along it but not across it has no
    // ghost to fill: the method of lines refuses it (the constraint layer
    // takes it).
    let mut rows = CONORMAL;
    rows[0] = ("x-min", "u_y", "k2");
    let pde =
        CustomPde::from_str(&with_rows(false, "second-order", &rows), "tangent.toml").unwrap();
    let err = pde.mol().unwrap_err();
    assert!(matches!(err, CustomPdeError::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("not across it"), "{err}");
    // The listing of known operators names it in 2-D.
    let unknown = definition(true, "periodic").replace("\"dxy\"", "\"dyx\"");
    invalid(unknown, "dxy, dxxy, dxyy");
}
