//! Ground truth for PDEs defined in TOML: the method-of-lines view of a
//! [`CustomPde`] against closed forms (viscous Burgers by Cole–Hopf, the heat
//! equation with Dirichlet, Neumann and Robin rows), against a hand-written
//! [`MolPde`], the `[initial]` family's draws, the shipped definitions, and the
//! typed errors of what the method of lines cannot take.

mod mol_support;

use mol_support::{max_error, orders, times};
use num_dual::DualNum;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::f64::consts::PI;
use tessera_constraints::expr::Position;
use tessera_scenarios::custom::{CustomPde, CustomPdeError, Distribution, InitialCondition};
use tessera_scenarios::dataset::{Generation, Split};
use tessera_scenarios::mol::{
    self, Boundary, Derivative, Discretisation, InitialFamily, MolDomain, MolOptions, MolPde,
    MolTerm, PointValues, Side, SpatialAxis,
};

/// Tight tolerances: the time error is far below the space error.
fn tight() -> MolOptions {
    MolOptions {
        rtol: 1e-11,
        atol: 1e-13,
        ..MolOptions::default()
    }
}

fn shipped(name: &str) -> CustomPde {
    let path = format!("{}/pdes/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    CustomPde::from_file(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// The 1-based line and column of the first occurrence of `needle` in `text`.
fn position_of(text: &str, needle: &str) -> Position {
    let offset = text
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in the text"));
    position_at(text, offset)
}

/// The 1-based line and column of byte `offset` of `text`.
fn position_at(text: &str, offset: usize) -> Position {
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Position {
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
    }
}

// ---------------------------------------------------------------------------
// Viscous Burgers against Cole–Hopf.

const BURGERS_NU: f64 = 0.1;

/// The Cole–Hopf solution `u = −2ν θ_x/θ` of `θ_t = ν θ_xx` with
/// `θ = 2 + e^{−νπ²t} cos πx + ½ e^{−4νπ²t} sin 2πx`.
fn cole_hopf(t: f64, x: f64) -> f64 {
    let nu = BURGERS_NU;
    let (e1, e2) = ((-nu * PI * PI * t).exp(), (-4.0 * nu * PI * PI * t).exp());
    let theta = 2.0 + e1 * (PI * x).cos() + 0.5 * e2 * (2.0 * PI * x).sin();
    let theta_x = -PI * e1 * (PI * x).sin() + PI * e2 * (2.0 * PI * x).cos();
    -2.0 * nu * theta_x / theta
}

/// The same closed form in the definition language (over `t`, `x`).
const COLE_HOPF: &str = "
let e1 = exp(-nu * pi^2 * t)
let e2 = exp(-4 * nu * pi^2 * t)
let theta = 2 + e1 * cos(pi * x) + 0.5 * e2 * sin(2 * pi * x)
let theta_x = -pi * e1 * sin(pi * x) + pi * e2 * cos(2 * pi * x)
-2 * nu * theta_x / theta";

/// Burgers on `[0, 1]` with the Cole–Hopf values as Dirichlet data and, at
/// `t = 0`, as the (non-random) initial family.
fn burgers_toml() -> String {
    format!(
        r#"name = "burgers-cole-hopf"
space = ["x"]
residual = "u_t + u * u_x - nu * u_xx"

[parameters]
nu = {BURGERS_NU:?}
pi = {PI:?}

[terms]
u = "u"
u_t = "dt"
u_x = "dx"
u_xx = "dxx"

[[conditions]]
at = "initial"
row = "u"
rhs = "u0"

[[conditions]]
at = "x-min"
kind = "dirichlet"
row = "u"
rhs = '''{COLE_HOPF}'''

[[conditions]]
at = "x-max"
kind = "dirichlet"
row = "u"
rhs = '''{COLE_HOPF}'''

[initial]
u0 = '''
let t = 0{COLE_HOPF}'''
"#
    )
}

/// The hand-written Burgers: the same PDE and data as [`burgers_toml`].
struct RustBurgers;

impl MolPde for RustBurgers {
    fn terms(&self) -> Vec<MolTerm> {
        [Derivative::Value, Derivative::Dx, Derivative::Dxx]
            .map(|d| MolTerm::new(0, d))
            .to_vec()
    }
    fn residual<D: DualNum<Primitive = f64> + Copy>(&self, at: &PointValues<'_, D>, out: &mut [D]) {
        out[0] = at.u_t[0] + at.z[0] * at.z[1] - at.z[2] * BURGERS_NU;
    }
    fn boundary(&self, _: Side, _: usize) -> Boundary {
        Boundary::dirichlet()
    }
    fn boundary_value(&self, _: Side, _: usize, t: f64, x: &[f64]) -> f64 {
        cole_hopf(t, x[0])
    }
}

/// Solves `pde` from the definition's initial family on `[0, 1]`.
fn solve_from_family<P: MolPde>(
    pde: &P,
    family: &dyn InitialFamily,
    points: usize,
    refinement: usize,
    ts: &[f64],
) -> (Vec<f64>, f64, Vec<f64>) {
    let domain = MolDomain::interval(0.0, 1.0, points, refinement).unwrap();
    let disc = Discretisation::new(pde, &domain).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let u0 = family.sample(&mut rng, disc.solver_coordinates(), 1);
    let frames = disc.solve(&u0, ts, &tight()).unwrap().frames;
    let error = max_error(&disc, &frames, ts, 0, |t, x| cole_hopf(t, x[0]));
    (frames, error, u0)
}

#[test]
fn toml_burgers_matches_cole_hopf_and_the_rust_definition() {
    let pde = CustomPde::from_str(&burgers_toml(), "burgers-cole-hopf.toml").unwrap();
    let view = pde.mol().unwrap();
    let family = pde.initial_family().unwrap();
    let ts = times(0.5, 5);
    let mut errors = Vec::new();
    let mut disagreement = 0.0_f64;
    for r in [1, 2, 4, 8] {
        let (frames, error, u0) = solve_from_family(&view, family, 11, r, &ts);
        errors.push(error);
        // The same solve through the Rust definition, from the same field.
        let domain = MolDomain::interval(0.0, 1.0, 11, r).unwrap();
        let disc = Discretisation::new(&RustBurgers, &domain).unwrap();
        let exact_u0 = disc.sample(|x| vec![cole_hopf(0.0, x[0])]).unwrap();
        let ic_error = u0
            .iter()
            .zip(&exact_u0)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(ic_error < 1e-14, "initial family vs Cole–Hopf: {ic_error}");
        let rust = disc.solve(&exact_u0, &ts, &tight()).unwrap().frames;
        let diff = frames
            .iter()
            .zip(&rust)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        disagreement = disagreement.max(diff);
    }
    let p = orders(&errors, 2.0);
    println!(
        "TOML Burgers (Cole–Hopf): errors {errors:?}, orders {p:?}; max |TOML − Rust| = {disagreement:e}"
    );
    assert!(errors[3] < 1e-3, "{errors:?}");
    for order in p {
        assert!((order - 2.0).abs() < 0.15, "order {order}");
    }
    // Both solve the same semi-discrete system; they may differ only by the
    // time error the tolerances allow, far below the space error.
    assert!(disagreement < 1e-8, "TOML vs Rust: {disagreement}");
}

// ---------------------------------------------------------------------------
// Heat with Dirichlet, Neumann and Robin rows against a separable mode.

const HEAT_NU: f64 = 0.05;
/// `w = kπ` with `k = 1.5` and a phase, so no datum is zero.
const HEAT_W: f64 = 1.5 * PI;
const HEAT_PHASE: f64 = 0.3;

/// `sin(wx + φ)·e^{−w²νt}`, which solves `u_t = ν u_xx`.
fn heat_mode(t: f64, x: f64) -> f64 {
    (HEAT_W * x + HEAT_PHASE).sin() * (-HEAT_W * HEAT_W * HEAT_NU * t).exp()
}

/// A row `a u + b u_x = a·mode + b·mode_x` of the given kind.
fn heat_row(place: &str, kind: &str) -> String {
    let (a, b, row) = match kind {
        "dirichlet" => (2.0, 0.0, "2 * u"),
        "neumann" => (0.0, 1.0, "u_x"),
        // The derivative's sign makes the outward-normal β positive at both ends.
        _ if place == "x-min" => (1.0, -0.5, "u - 0.5 * u_x"),
        _ => (1.0, 0.5, "u + 0.5 * u_x"),
    };
    format!(
        r#"
[[conditions]]
at = "{place}"
kind = "{kind}"
row = "{row}"
rhs = '''
let decay = exp(-w^2 * nu * t)
{a:?} * sin(w * x + phase) * decay + {b:?} * w * cos(w * x + phase) * decay'''
"#
    )
}

fn heat_toml(low: &str, high: &str) -> String {
    format!(
        r#"name = "heat"
space = ["x"]
stencil = "second-order"
residual = "u_t - nu * u_xx"

[parameters]
nu = {HEAT_NU:?}
w = {HEAT_W:?}
phase = {HEAT_PHASE:?}

[terms]
u = "u"
u_t = "dt"
u_x = "dx"
u_xx = "dxx"

[[conditions]]
at = "initial"
row = "u"
rhs = "u0"
{}{}
[initial]
u0 = "sin(w * x + phase)"
"#,
        heat_row("x-min", low),
        heat_row("x-max", high)
    )
}

/// Max errors against `exact(t, x)` at the times `ts` of a 1-D definition on
/// `[0, 1]` solved from its `[initial]` family, on 11 output points with the
/// solver grid refined 1, 2 and 4 times.
fn errors_under_refinement(pde: &CustomPde, ts: &[f64], exact: fn(f64, f64) -> f64) -> Vec<f64> {
    let view = pde.mol().unwrap();
    let family = pde.initial_family().unwrap();
    [1, 2, 4]
        .iter()
        .map(|&r| {
            let domain = MolDomain::interval(0.0, 1.0, 11, r).unwrap();
            let disc = Discretisation::new(&view, &domain).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            let u0 = family.sample(&mut rng, disc.solver_coordinates(), 1);
            let frames = disc.solve(&u0, ts, &tight()).unwrap().frames;
            max_error(&disc, &frames, ts, 0, |t, x| exact(t, x[0]))
        })
        .collect()
}

#[test]
fn toml_heat_with_dirichlet_neumann_robin_rows_matches_the_separable_mode() {
    let ts = times(0.5, 5);
    for (low, high) in [
        ("dirichlet", "robin"),
        ("neumann", "dirichlet"),
        ("robin", "neumann"),
    ] {
        let pde = CustomPde::from_str(&heat_toml(low, high), "heat.toml").unwrap();
        let errors = errors_under_refinement(&pde, &ts, heat_mode);
        let p = orders(&errors, 2.0);
        println!("heat, {low} / {high}: errors {errors:?}, orders {p:?}");
        assert!(errors[2] < 1e-3, "{errors:?}");
        for order in p {
            assert!((order - 2.0).abs() < 0.15, "{low}/{high}: order {order}");
        }
    }
}

/// The manufactured solution `u = e^{−t} sin πx + t·x` of the forced,
/// variable-coefficient heat equation of `fixtures/forced-heat.toml`.
fn forced_solution(t: f64, x: f64) -> f64 {
    (-t).exp() * (PI * x).sin() + t * x
}

#[test]
fn a_residual_over_the_coordinates_converges_to_its_manufactured_solution() {
    // A coordinate handed over wrongly (t for x, the solver's time for the
    // frame's, a stale point) leaves an O(1) error that does not shrink with h.
    let text = include_str!("fixtures/forced-heat.toml");
    let pde = CustomPde::from_str(text, "forced-heat.toml").unwrap();
    let errors = errors_under_refinement(&pde, &times(0.5, 5), forced_solution);
    let p = orders(&errors, 2.0);
    println!("forced heat: errors {errors:?}, orders {p:?}");
    assert!(errors[2] < 1e-3, "{errors:?}");
    for order in p {
        assert!((order - 2.0).abs() < 0.15, "order {order}");
    }
}

/// `u_t = ν Δu` on `[0, 1] × [0, 1)`, Dirichlet in x and periodic in y, from
/// the mode `sin πx cos 2πy`, which decays as `e^{−5π²νt}`.
fn heat_2d_toml() -> String {
    format!(
        r#"name = "heat-2d"
space = ["x", "y"]
periodic = [false, true]
stencil = "second-order"
residual = "u_t - nu * lap"

[parameters]
nu = {HEAT_NU:?}

[terms]
u = "u"
u_t = "dt"
lap = "laplacian"

[[conditions]]
at = "initial"
row = "u"
rhs = "u0"

[[conditions]]
at = "x-min"
kind = "dirichlet"
row = "u"

[[conditions]]
at = "x-max"
kind = "dirichlet"
row = "u"

[initial]
u0 = "sin(pi * x) * cos(2 * pi * y)"
"#
    )
}

#[test]
fn toml_heat_2d_dirichlet_by_periodic_matches_the_separable_mode() {
    let pde = CustomPde::from_str(&heat_2d_toml(), "heat-2d.toml").unwrap();
    let view = pde.mol().unwrap();
    let family = pde.initial_family().unwrap();
    let ts = times(0.25, 2);
    let exact = |t: f64, p: &[f64]| {
        (PI * p[0]).sin() * (2.0 * PI * p[1]).cos() * (-5.0 * PI * PI * HEAT_NU * t).exp()
    };
    let errors: Vec<f64> = [1, 2]
        .iter()
        .map(|&r| {
            let axes = vec![
                SpatialAxis {
                    lo: 0.0,
                    hi: 1.0,
                    points: 9,
                },
                SpatialAxis {
                    lo: 0.0,
                    hi: 1.0,
                    points: 8,
                },
            ];
            let domain = MolDomain::new(axes, r).unwrap();
            let disc = Discretisation::new(&view, &domain).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            let u0 = family.sample(&mut rng, disc.solver_coordinates(), 2);
            let frames = disc.solve(&u0, &ts, &tight()).unwrap().frames;
            max_error(&disc, &frames, &ts, 0, exact)
        })
        .collect();
    let p = orders(&errors, 2.0);
    println!("heat 2-D, Dirichlet × periodic: errors {errors:?}, orders {p:?}");
    assert!((p[0] - 2.0).abs() < 0.15, "order {p:?}");
}

// ---------------------------------------------------------------------------
// The initial-condition family.

#[test]
fn initial_family_is_deterministic_in_range_and_has_the_declared_moments() {
    let pde = shipped("burgers");
    let Some(InitialCondition::Expression(family)) = pde.initial_family() else {
        panic!("burgers has an expression family");
    };
    let names: Vec<&str> = family.random().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    let Distribution::Uniform { lo, hi } = family.random()[0].distribution else {
        panic!("a is uniform: {:?}", family.random()[0]);
    };
    let Distribution::Normal { mean, std } = family.random()[1].distribution else {
        panic!("b is normal: {:?}", family.random()[1]);
    };

    // Same seed, same field; another seed, another field.
    let coords: Vec<f64> = (0..64).map(|i| f64::from(i) / 64.0).collect();
    let draw = |seed| family.sample(&mut ChaCha8Rng::seed_from_u64(seed), &coords, 1);
    assert_eq!(draw(3), draw(3));
    assert_ne!(draw(3), draw(4));

    // The field is the expression at the drawn parameters.
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let params = family.draw(&mut rng.clone());
    let field = family.sample(&mut rng, &coords, 1);
    for (&x, &u) in coords.iter().zip(&field) {
        let expected = params[0] * (2.0 * PI * x).sin() + params[1];
        assert!((u - expected).abs() < 1e-14, "x = {x}: {u} vs {expected}");
    }

    // Many draws: the uniform stays in its range, the normal has its moments
    // within four standard errors (σ/√n for the mean, σ/√(2n) for the std).
    let n = 20_000;
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let draws: Vec<Vec<f64>> = (0..n).map(|_| family.draw(&mut rng)).collect();
    assert!(draws.iter().all(|d| (lo..=hi).contains(&d[0])));
    let b: Vec<f64> = draws.iter().map(|d| d[1]).collect();
    let sample_mean = b.iter().sum::<f64>() / n as f64;
    let sample_std =
        (b.iter().map(|v| (v - sample_mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    let n = n as f64;
    println!(
        "normal b: mean {sample_mean:.5} (declared {mean}), std {sample_std:.5} (declared {std})"
    );
    assert!(
        (sample_mean - mean).abs() < 4.0 * std / n.sqrt(),
        "{sample_mean}"
    );
    assert!(
        (sample_std - std).abs() < 4.0 * std / (2.0 * n).sqrt(),
        "{sample_std}"
    );
}

// ---------------------------------------------------------------------------
// The shipped definitions solve, and obey their maximum principles.

/// Solves `samples` draws of the shipped definition `name` on the periodic
/// interval `[lo, hi)` and returns the trajectories.
fn generate_shipped(name: &str, lo: f64, hi: f64, points: usize, t_end: f64) -> Vec<Vec<f32>> {
    let pde = shipped(name);
    let domain = MolDomain::interval(lo, hi, points, 2).unwrap();
    let generation = Generation {
        samples: 2,
        seed: 1,
        split: Split::Train,
        quiet: true,
    };
    let data = mol::generate(
        &pde.mol().unwrap(),
        &domain,
        &times(t_end, 4),
        pde.initial_family().unwrap(),
        &MolOptions::default(),
        &generation,
        String::new(),
    )
    .unwrap()
    .0;
    data.trajectories().to_vec()
}

/// `(min, max)` of each frame of `points` values.
fn frame_ranges(trajectory: &[f32], points: usize) -> Vec<(f32, f32)> {
    trajectory
        .chunks_exact(points)
        .map(|f| {
            f.iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                })
        })
        .collect()
}

#[test]
fn shipped_burgers_solves_and_keeps_its_maximum_principle() {
    // Viscous Burgers: max u never grows and min u never falls (up to the
    // solver's tolerance), before the shock forms at t ≈ 1/(2π a) ≥ 0.1.
    let points = 64;
    for trajectory in generate_shipped("burgers", 0.0, 1.0, points, 0.05) {
        let ranges = frame_ranges(&trajectory, points);
        for w in ranges.windows(2) {
            assert!(
                w[1].1 <= w[0].1 + 1e-4 && w[1].0 >= w[0].0 - 1e-4,
                "{ranges:?}"
            );
        }
    }
}

#[test]
fn shipped_allen_cahn_solves_and_stays_within_the_wells() {
    // |u0| ≤ 1 and u = ±1 are stable states, so |u| ≤ 1 for all t.
    let points = 128;
    for trajectory in generate_shipped("allen-cahn", -1.0, 1.0, points, 0.5) {
        let ranges = frame_ranges(&trajectory, points);
        assert!(
            ranges
                .iter()
                .all(|&(lo, hi)| lo >= -1.0 - 1e-4 && hi <= 1.0 + 1e-4),
            "{ranges:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Typed errors at the line and column.

#[test]
fn differences_beside_the_spectral_velocity_are_unsupported_at_their_line_and_column() {
    // navier-stokes.toml differentiates by the reference's differences, and
    // its velocity is spectral: the method of lines takes one stencil.
    let path = format!("{}/pdes/navier-stokes.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let pde = CustomPde::from_str(&text, "navier-stokes.toml").unwrap();
    let e = pde.mol().unwrap_err();
    println!("{e}");
    assert!(matches!(e, CustomPdeError::Unsupported { .. }), "{e}");
    assert!(e.to_string().contains("one stencil"), "{e}");
    assert_eq!(e.position(), Some(position_of(&text, "\"dx\"")));
}

/// `burgers_toml()` with `old` replaced by `new` (which must occur once).
fn edited(old: &str, new: &str) -> String {
    let text = burgers_toml();
    assert_eq!(text.matches(old).count(), 1, "`{old}`");
    text.replace(old, new)
}

#[test]
fn bad_random_parameters_are_typed_errors_at_their_line_and_column() {
    let cases = [
        "a = { uniform = [2.0, 1.0] }",
        "a = { normal = [0.0, -0.1] }",
        "a = { uniform = [0.0, nan] }",
        "nu = { uniform = [0.0, 1.0] }",
    ];
    for case in cases {
        let text = edited(
            "[initial]\nu0 = '''\nlet t = 0",
            &format!("[initial.random]\n{case}\n\n[initial]\nu0 = '''\nlet t = 0"),
        );
        let e = CustomPde::from_str(&text, "bad.toml").unwrap_err();
        println!("{e}");
        assert!(matches!(e, CustomPdeError::Invalid { .. }), "{e}");
        assert_eq!(e.position(), Some(position_of(&text, "{ ")), "{e}");
    }
    // An unknown distribution is a schema error; an unknown name in u0 an
    // expression error.
    let text = edited(
        "[initial]",
        "[initial.random]\na = { gamma = [1.0, 2.0] }\n\n[initial]",
    );
    let e = CustomPde::from_str(&text, "bad.toml").unwrap_err();
    assert!(matches!(e, CustomPdeError::Toml { .. }), "{e}");
    assert_eq!(
        e.position().map(|p| p.line),
        Some(position_of(&text, "a = {").line)
    );
    let text = edited("let t = 0", "let t = 0 * q");
    let e = CustomPde::from_str(&text, "bad.toml").unwrap_err();
    assert!(matches!(e, CustomPdeError::Expr { .. }), "{e}");
    assert_eq!(e.position(), Some(position_of(&text, "q\n")));
}

#[test]
fn boundary_rows_without_a_method_of_lines_form_are_unsupported() {
    let rhs = format!("rhs = '''{COLE_HOPF}'''");
    let cases = [
        // Reads the initial value.
        (
            "at = \"x-max\"\nkind = \"dirichlet\"\nrow = \"u\"",
            "at = \"x-max\"\nkind = \"dirichlet\"\nrow = \"u0 * u\"",
            "\"u0 * u\"",
        ),
        // A coefficient that varies in time.
        (
            "at = \"x-max\"\nkind = \"dirichlet\"\nrow = \"u\"",
            "at = \"x-max\"\nkind = \"dirichlet\"\nrow = \"(1 + t) * u\"",
            "\"(1 + t) * u\"",
        ),
        // A second derivative in a boundary row.
        (
            "at = \"x-max\"\nkind = \"dirichlet\"\nrow = \"u\"",
            "at = \"x-max\"\nkind = \"robin\"\nrow = \"u + u_xx\"",
            "\"u + u_xx\"",
        ),
    ];
    for (old, new, marker) in cases {
        let text = edited(old, new);
        let pde = CustomPde::from_str(&text, "bad.toml").unwrap();
        let e = pde.mol().unwrap_err();
        println!("{e}");
        assert!(matches!(e, CustomPdeError::Unsupported { .. }), "{e}");
        assert_eq!(e.position(), Some(position_of(&text, marker)), "{e}");
    }
    // Two rows on one side: the second is reported.
    let extra = format!("\n[[conditions]]\nat = \"x-min\"\nrow = \"u\"\n{rhs}\n\n[initial]");
    let text = edited("[initial]", &extra);
    let e = CustomPde::from_str(&text, "bad.toml")
        .unwrap()
        .mol()
        .unwrap_err();
    let second = text.rfind("at = \"x-min\"").unwrap();
    assert_eq!(
        e.position(),
        Some(position_at(&text, second + "at = ".len())),
        "{e}"
    );
}
