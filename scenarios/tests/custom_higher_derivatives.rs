//! Third and fourth derivatives in TOML definitions (`dxxx`, `dxxxx`,
//! `dyyy`, `dyyyy` and the mixed `dxxy` … `dxyyy`, spectral): the constraint
//! layer's terms against the derivatives of a Fourier mode, the method of
//! lines against the closed forms of dispersive, hyperdiffusive modes and of
//! a KdV soliton, the shipped KdV, Kuramoto–Sivashinsky, Zakharov–Kuznetsov
//! and Cahn–Hilliard definitions, and
//! the typed errors of stencils and axes they do not take.

mod mol_support;

use std::f64::consts::TAU;

use mol_support::{max_error, times};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tessera_constraints::Pde;
use tessera_meshes::{Axis, Grid};
use tessera_scenarios::custom::{CustomMol, CustomPde, CustomPdeError};
use tessera_scenarios::mol::{
    Discretisation, InitialFamily, MolDomain, MolMethod, MolOptions, MolPde, MolStats, MolSystem,
    SpatialAxis,
};

/// Dispersion and hyperdiffusion coefficients of the linear test equation
/// `u_t + c u_xxx + a u_xxxx = 0`.
const C: f64 = 1e-3;
const A: f64 = 1e-4;
const K: f64 = TAU;

/// Its solution from `sin kx`: each mode travels at `c k²` and decays at
/// `a k⁴` (`u_t = −a k⁴ u + c k³ e cos`, `u_xxx = −k³ e cos`).
fn mode(t: f64, x: f64) -> f64 {
    (-A * K.powi(4) * t).exp() * (K * x + C * K.powi(3) * t).sin()
}

/// A definition on periodic `space` axes, every space term spectral, with
/// the residual `residual`, the `[parameters]` and `[terms]` lines given, an
/// initial row `u = u0` and the initial family `u0`.
fn definition(space: &str, residual: &str, parameters: &str, terms: &str, u0: &str) -> String {
    let axes = space.split(", ").count();
    let periodic = vec!["true"; axes].join(", ");
    format!(
        "name = \"test\"\nspace = [{space}]\nperiodic = [{periodic}]\nstencil = \"spectral\"\n\
         residual = \"{residual}\"\n[parameters]\n{parameters}\n[terms]\nu = \"u\"\n{terms}\n\
         [[conditions]]\nat = \"initial\"\nrow = \"u\"\nrhs = \"u0\"\n\
         [initial]\nu0 = \'\'\'\n{u0}\n\'\'\'\n"
    )
}

fn linear_toml() -> String {
    definition(
        "\"x\"",
        "u_t + c * u_xxx + a * u_xxxx",
        &format!("c = {C:?}\na = {A:?}"),
        "u_t = \"dt\"\nu_xxx = \"dxxx\"\nu_xxxx = \"dxxxx\"",
        "sin(2 * pi * x)",
    )
}

/// Solves `pde` on `domain` at the times `ts` from a draw of its `[initial]`
/// family: the frames, the solver's statistics and the max error against
/// `exact(t, x)`.
fn solve_from_family(
    pde: &CustomPde,
    domain: &MolDomain,
    ts: &[f64],
    options: &MolOptions,
    exact: impl Fn(f64, &[f64]) -> f64,
) -> (Vec<f64>, MolStats, f64) {
    let view = pde.mol().unwrap();
    let disc = Discretisation::new(&view, domain).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let dims = domain.axes().len();
    let u0 = pde
        .initial_family()
        .unwrap()
        .sample(&mut rng, disc.solver_coordinates(), dims);
    let solution = disc.solve(&u0, ts, options).unwrap();
    let error = max_error(&disc, &solution.frames, ts, 0, exact);
    (solution.frames, solution.stats, error)
}

fn tight() -> MolOptions {
    MolOptions {
        rtol: 1e-11,
        atol: 1e-13,
        ..MolOptions::default()
    }
}

#[test]
fn spectral_terms_are_the_derivatives_of_a_mode() {
    // On a periodic [0, 1) with 16 points the mode sin(2πx + φ) is resolved
    // exactly: ∂³ = −k³ cos, ∂⁴ = k⁴ sin, to round-off (k⁴ ≈ 1.6e3).
    let pde = CustomPde::from_str(&linear_toml(), "linear.toml").unwrap();
    let grid = Grid::new(vec![
        Axis::linspace("t", 0.0, 1.0, 3).unwrap(),
        Axis::periodic("x", 0.0, 1.0, 16).unwrap(),
    ])
    .unwrap();
    let terms = pde.terms(&grid).unwrap();
    let names: Vec<&str> = terms.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names[..3], ["u_t", "u_xxx", "u_xxxx"]);
    const PHASE: f64 = 0.3;
    let points: Vec<f64> = grid.coordinates().chunks_exact(2).map(|p| p[1]).collect();
    let u: Vec<f64> = points.iter().map(|x| (K * x + PHASE).sin()).collect();
    // ∂³ sin(kx + φ) = −k³ cos(kx + φ), ∂⁴ sin(kx + φ) = k⁴ sin(kx + φ).
    let exact = |order: i32, x: f64| {
        let phase = K * x + PHASE;
        K.powi(order)
            * if order == 3 {
                -phase.cos()
            } else {
                phase.sin()
            }
    };
    for (j, order) in [(1, 3), (2, 4)] {
        let term = &terms[j];
        let got = term.operator.apply_to_vec(&u, 1);
        let error = got
            .iter()
            .zip(&points)
            .map(|(g, &x)| (g - exact(order, x)).abs())
            .fold(0.0, f64::max);
        assert!(error < 1e-9 * K.powi(4), "{}: {error}", term.name);
    }
}

#[test]
fn a_dispersive_hyperdiffusive_mode_travels_and_decays_as_its_closed_form() {
    let pde = CustomPde::from_str(&linear_toml(), "linear.toml").unwrap();
    let domain = MolDomain::interval(0.0, 1.0, 16, 1).unwrap();
    let ts = times(2.0, 4);
    let (_, _, error) = solve_from_family(&pde, &domain, &ts, &tight(), |t, x| mode(t, x[0]));
    // Spectral in space: only the time integration's error is left. By
    // t = 2 the mode has moved by c k³ t / k = 0.08 of a period and decayed
    // to e^{−0.31}; a wrong sign or power in either term is O(0.1).
    println!("linear dispersive/hyperdiffusive mode: max error {error:e}");
    assert!(error < 1e-7, "{error}");
}

#[test]
fn the_y_operators_act_along_y() {
    // u_t + c u_yyy + a (u_xxxx + u_yyyy) = 0 from sin kx + sin ky: the x mode
    // only decays, the y mode also travels.
    let text = definition(
        "\"x\", \"y\"",
        "u_t + c * u_yyy + a * (u_xxxx + u_yyyy)",
        &format!("c = {C:?}\na = {A:?}"),
        "u_t = \"dt\"\nu_yyy = \"dyyy\"\nu_xxxx = \"dxxxx\"\nu_yyyy = \"dyyyy\"",
        "sin(2 * pi * x) + sin(2 * pi * y)",
    );
    let pde = CustomPde::from_str(&text, "dispersive-2d.toml").unwrap();
    let axis = SpatialAxis {
        lo: 0.0,
        hi: 1.0,
        points: 8,
    };
    let domain = MolDomain::new(vec![axis, axis], 1).unwrap();
    let exact = |t: f64, p: &[f64]| (-A * K.powi(4) * t).exp() * (K * p[0]).sin() + mode(t, p[1]);
    let (_, stats, error) = solve_from_family(&pde, &domain, &times(2.0, 2), &tight(), exact);
    println!("2-D y operators: max error {error:e}, {stats:?}");
    assert!(error < 1e-7, "{error}");
    // Linear with constant coefficients: the preconditioner is the stage
    // matrix's inverse up to the factors' forward-difference error (√ε
    // relative, point to point), so each GMRES solve to 1e-10 (one per
    // Newton iteration and one per error estimate) takes one iteration, or
    // two; a preconditioner missing a term would take many.
    let solves = stats.newton_iterations + stats.steps + stats.rejected;
    assert!(
        stats.linear_iterations > 0 && stats.linear_iterations <= 2 * solves,
        "{stats:?}"
    );
}

/// The mixed derivatives of order three and four, as `(name, p, q)` for
/// `∂x^p ∂y^q`.
const MIXED: [(&str, i32, i32); 5] = [
    ("u_xxy", 2, 1),
    ("u_xyy", 1, 2),
    ("u_xxxy", 3, 1),
    ("u_xxyy", 2, 2),
    ("u_xyyy", 1, 3),
];

/// Wavenumbers of the 2-D mode `sin(k₁x + k₂y)` on the periodic unit
/// square: different, so that a derivative with its axes' orders swapped
/// differs from the right one.
const K1: f64 = TAU;
const K2: f64 = 2.0 * TAU;

/// `[terms]` lines naming every mixed derivative of [`MIXED`].
fn mixed_terms() -> String {
    MIXED
        .iter()
        .map(|(name, p, q)| {
            format!(
                "{name} = \"d{}{}\"",
                "x".repeat(*p as usize),
                "y".repeat(*q as usize)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Coefficients of the mixed terms in the linear test equation
/// `u_t + a Δ²u − b₁ u_xxxy − b₂ u_xyyy + c₁ u_xxy + c₂ u_xyy = 0`, whose
/// Fourier symbol is worked out by hand in [`mixed_rate`].
const MIXED_A: f64 = 1e-5;
const MIXED_B: [f64; 2] = [1e-5, 0.4e-5];
const MIXED_C: [f64; 2] = [1e-4, -0.3e-4];

/// The growth rate `λ` of `e^{i(k₁x + k₂y)}` under that equation, from
/// `∂x^p ∂y^q → (ik₁)^p (ik₂)^q`: `Δ² → |k|⁴`, `∂x³∂y → k₁³k₂`,
/// `∂x∂y³ → k₁k₂³`, `∂x²∂y → −i k₁²k₂`, `∂x∂y² → −i k₁k₂²`; so
/// `λ = −a|k|⁴ + b₁k₁³k₂ + b₂k₁k₂³ + i(c₁k₁²k₂ + c₂k₁k₂²)`, as (re, im).
fn mixed_rate() -> (f64, f64) {
    let k2 = K1 * K1 + K2 * K2;
    let re = -MIXED_A * k2 * k2 + MIXED_B[0] * K1.powi(3) * K2 + MIXED_B[1] * K1 * K2.powi(3);
    let im = MIXED_C[0] * K1 * K1 * K2 + MIXED_C[1] * K1 * K2 * K2;
    (re, im)
}

/// The equation above in TOML, from `sin(2πx + 4πy)`.
fn mixed_toml() -> String {
    definition(
        "\"x\", \"y\"",
        "u_t + a * (u_xxxx + 2 * u_xxyy + u_yyyy) - b1 * u_xxxy - b2 * u_xyyy + c1 * u_xxy + c2 * u_xyy",
        &format!(
            "a = {MIXED_A:?}\nb1 = {:?}\nb2 = {:?}\nc1 = {:?}\nc2 = {:?}",
            MIXED_B[0], MIXED_B[1], MIXED_C[0], MIXED_C[1]
        ),
        &format!(
            "u_t = \"dt\"\nu_xxxx = \"dxxxx\"\nu_yyyy = \"dyyyy\"\n{}",
            mixed_terms()
        ),
        "sin(2 * pi * x + 4 * pi * y)",
    )
}

#[test]
fn spectral_mixed_terms_are_the_derivatives_of_a_mode() {
    // 10 × 12 points resolve sin(k₁x + k₂y + φ) (modes 1 and 2, Nyquist 5
    // and 6): ∂x^p ∂y^q of it is k₁^p k₂^q sin(θ + (p + q)π/2), to round-off
    // of the largest, k₁k₂³ ≈ 1.3e4.
    let text = definition(
        "\"x\", \"y\"",
        "u_t + u_xxy + u_xyy + u_xxxy + u_xxyy + u_xyyy",
        "",
        &format!("u_t = \"dt\"\n{}", mixed_terms()),
        "0",
    );
    let pde = CustomPde::from_str(&text, "mixed.toml").unwrap();
    let grid = Grid::new(vec![
        Axis::linspace("t", 0.0, 1.0, 2).unwrap(),
        Axis::periodic("x", 0.0, 1.0, 10).unwrap(),
        Axis::periodic("y", 0.0, 1.0, 12).unwrap(),
    ])
    .unwrap();
    let terms = pde.terms(&grid).unwrap();
    const PHASE: f64 = 0.3;
    let points: Vec<[f64; 2]> = grid
        .coordinates()
        .chunks_exact(3)
        .map(|p| [p[1], p[2]])
        .collect();
    let theta = |p: &[f64; 2]| K1 * p[0] + K2 * p[1] + PHASE;
    let u: Vec<f64> = points.iter().map(|p| theta(p).sin()).collect();
    let scale = K1 * K2.powi(3);
    for (name, p, q) in MIXED {
        let term = terms.iter().find(|t| t.name == name).unwrap();
        let got = term.operator.apply_to_vec(&u, 1);
        let error = got
            .iter()
            .zip(&points)
            .map(|(g, x)| {
                let exact = K1.powi(p)
                    * K2.powi(q)
                    * (theta(x) + f64::from(p + q) * std::f64::consts::FRAC_PI_2).sin();
                (g - exact).abs()
            })
            .fold(0.0, f64::max);
        println!("{name}: max error {error:e}");
        assert!(error < 1e-12 * scale, "{name}: {error}");
    }
}

#[test]
fn mixed_modes_travel_and_decay_as_their_closed_form() {
    // From sin θ, θ = k₁x + k₂y: u = e^{Re λ t} sin(θ + Im λ t). By t = 2
    // the mode has decayed to e^{−0.62} and turned by 0.04 (the dispersive
    // terms nearly cancel): each term's share of λt is 0.06 or more, so a
    // wrong sign or a missing term leaves an error of that order; swapping
    // p and q in every mixed operator left 0.096.
    let pde = CustomPde::from_str(&mixed_toml(), "mixed.toml").unwrap();
    let axis = SpatialAxis {
        lo: 0.0,
        hi: 1.0,
        points: 8,
    };
    let domain = MolDomain::new(vec![axis, axis], 1).unwrap();
    let (re, im) = mixed_rate();
    let exact = |t: f64, p: &[f64]| (re * t).exp() * (K1 * p[0] + K2 * p[1] + im * t).sin();
    let (_, stats, error) = solve_from_family(&pde, &domain, &times(2.0, 2), &tight(), exact);
    println!("mixed modes (λ = {re} + {im}i): max error {error:e}, {stats:?}");
    assert!(error < 1e-7, "{error}");
}

/// KdV `u_t + 6 u u_x + u_xxx = 0` on the periodic `[0, L)`: the soliton
/// `u = (c/2) sech²(√c/2 · (x − c t − x₀))` (Korteweg & de Vries 1895),
/// from x₀ = 13 to 17 by t = 2: its tails at the period's ends (4e^{−√2·13}
/// ≈ 4e-8 at the least distance) make the periodic extension smooth to below
/// the test's tolerance.
const L: f64 = 30.0;
const SPEED: f64 = 2.0;
const X0: f64 = 13.0;

fn soliton(t: f64, x: f64) -> f64 {
    let s = SPEED.sqrt() / 2.0 * (x - SPEED * t - X0);
    SPEED / 2.0 / s.cosh().powi(2)
}

/// The soliton solved on `points` points of `[0, L)` to t = 2: the solver's
/// statistics and the largest error against the closed form.
fn kdv_soliton(points: usize) -> (MolStats, f64) {
    let text = definition(
        "\"x\"",
        "u_t + 6 * u * u_x + u_xxx",
        &format!("c = {SPEED:?}\nx0 = {X0:?}"),
        "u_t = \"dt\"\nu_x = \"dx\"\nu_xxx = \"dxxx\"",
        "let s = sqrt(c) / 2 * (x - x0)\n2 * c / (exp(s) + exp(-s))^2",
    );
    let pde = CustomPde::from_str(&text, "kdv.toml").unwrap();
    let domain = MolDomain::interval(0.0, L, points, 1).unwrap();
    let options = MolOptions {
        rtol: 1e-8,
        atol: 1e-10,
        ..MolOptions::default()
    };
    let ts = times(2.0, 4);
    let (_, stats, error) =
        solve_from_family(&pde, &domain, &ts, &options, |t, x| soliton(t, x[0]));
    println!("KdV soliton on {points} points: max error {error:e}, {stats:?}");
    (stats, error)
}

#[test]
fn a_kdv_soliton_travels_at_its_speed_unchanged() {
    // 96 points resolve the soliton (width 1.4) spectrally to below the time
    // error. A line this short is factorised densely: no GMRES.
    let (stats, error) = kdv_soliton(96);
    assert_eq!(stats.linear_iterations, 0, "{stats:?}");
    // A spectral Jacobian costs an evaluation per point: the integrator keeps
    // it over steps whose Newton iterations converge fast with it.
    assert!(2 * stats.jacobians < stats.steps, "{stats:?}");
    // By t = 2 the peak (1.0) has moved 4 units, 13 grid spacings: a
    // soliton left behind, too fast, too slow or dispersed is off by O(0.1).
    assert!(error < 1e-6, "{error}");
}

#[test]
fn a_kdv_soliton_on_a_long_line_goes_through_gmres_to_the_same_accuracy() {
    // 256 points: the stage systems are solved by GMRES on the applied
    // Jacobian with the circulant preconditioner, not by a dense LU. The
    // closed form holds to the same tolerance; an operator or preconditioner
    // that is wrong leaves Newton failing or the soliton off by O(0.1).
    let (stats, error) = kdv_soliton(256);
    assert!(stats.linear_iterations > 0, "{stats:?}");
    assert!(error < 1e-6, "{error}");
}

/// `linear_toml` with `old` replaced by `new`.
fn edited(old: &str, new: &str) -> String {
    let text = linear_toml();
    assert!(text.contains(old), "`{old}` not in the definition");
    text.replacen(old, new, 1)
}

#[test]
fn stencils_and_axes_they_do_not_take_are_typed_errors() {
    let invalid = |text: String, expected: &str| {
        let err = CustomPde::from_str(&text, "bad.toml").unwrap_err();
        assert!(matches!(err, CustomPdeError::Invalid { .. }), "{err}");
        assert!(err.to_string().contains(expected), "{err}");
    };
    // A difference stencil of third or fourth order.
    for stencil in ["periodic", "second-order", "reference"] {
        invalid(
            edited(
                "u_xxx = \"dxxx\"",
                &format!("u_xxx = {{ op = \"dxxx\", stencil = \"{stencil}\" }}"),
            ),
            "only the `spectral` stencil",
        );
    }
    // A bounded axis.
    invalid(edited("periodic = [true]", "periodic = [false]"), "bounded");
    // A y operator in 1-D.
    invalid(edited("\"dxxxx\"", "\"dyyyy\""), "unknown operator `dyyyy`");
    // Mixed derivatives: none in 1-D; in 2-D, x before y, at most order four,
    // and no difference stencil beyond `dxy`.
    invalid(edited("\"dxxxx\"", "\"dxxy\""), "unknown operator `dxxy`");
    let two_d = mixed_toml();
    for name in ["dyxx", "dxxyyy", "dxxxxy", "dxyx", "dxz"] {
        invalid(
            two_d.replacen("\"dxxy\"", &format!("\"{name}\""), 1),
            &format!("unknown operator `{name}`"),
        );
    }
    invalid(
        two_d.replacen("\"dxxy\"", "{ op = \"dxxy\", stencil = \"periodic\" }", 1),
        "only the `spectral` stencil",
    );
    // Spectral third derivatives with a difference stencil elsewhere train,
    // but the method of lines takes one kind of stencil.
    let mixed = edited(
        "[terms]",
        "[terms]\nu_x = { op = \"dx\", stencil = \"periodic\" }",
    )
    .replace("residual = \"u_t +", "residual = \"u_t + 0.1 * u_x +");
    let pde = CustomPde::from_str(&mixed, "mixed.toml").unwrap();
    let err = pde.mol().unwrap_err();
    assert!(matches!(err, CustomPdeError::Unsupported { .. }), "{err}");
}

#[test]
fn the_shipped_kdv_definition_solves_and_conserves_mass() {
    let path = format!("{}/pdes/kdv.toml", env!("CARGO_MANIFEST_DIR"));
    let pde = CustomPde::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
    let domain = MolDomain::interval(0.0, 30.0, 64, 1).unwrap();
    let options = MolOptions {
        rtol: 1e-7,
        atol: 1e-9,
        ..MolOptions::default()
    };
    let (frames, _, _) = solve_from_family(&pde, &domain, &times(1.0, 2), &options, |_, _| 0.0);
    let u0 = &frames[..64];
    // The mean of u is a linear invariant of KdV and of its spectral
    // semi-discretisation (u·Du sums to 0 for the antisymmetric D), which
    // Runge–Kutta methods keep to round-off.
    let peak = |u: &[f64]| u.iter().copied().fold(f64::MIN, f64::max);
    let mass0: f64 = u0.iter().sum();
    for frame in frames.chunks(64).skip(1) {
        let drift = (frame.iter().sum::<f64>() - mass0).abs() / mass0;
        assert!(drift < 1e-10, "mass drift {drift}");
        // The solitons travel without growing.
        assert!(
            peak(frame) < 1.01 * peak(u0),
            "{} vs {}",
            peak(frame),
            peak(u0)
        );
    }
}

#[test]
fn the_shipped_kdv_family_is_periodic_in_value_and_slope() {
    // A spectral solver sees the initial condition's periodic extension: a
    // kink at the period's ends is radiated as short dispersive waves. Each
    // draw at x = 0 and x = 30 (the same point of the circle) and the
    // central slopes there, for draws across the parameters' ranges (the
    // lone solitons the family once drew were up to 2e-3 apart).
    let path = format!("{}/pdes/kdv.toml", env!("CARGO_MANIFEST_DIR"));
    let pde = CustomPde::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
    let family = pde.initial_family().unwrap();
    const H: f64 = 1e-3;
    let points = [-H, 0.0, H, 30.0 - H, 30.0, 30.0 + H];
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for draw in 0..32 {
        let u = family.sample(&mut rng, &points, 1);
        let (slope0, slope30) = ((u[2] - u[0]) / (2.0 * H), (u[5] - u[3]) / (2.0 * H));
        assert!(
            (u[1] - u[4]).abs() < 1e-9,
            "draw {draw}: {} vs {}",
            u[1],
            u[4]
        );
        assert!(
            (slope0 - slope30).abs() < 1e-8,
            "draw {draw}: {slope0} vs {slope30}"
        );
    }
}

#[test]
fn the_shipped_zakharov_kuznetsov_definition_keeps_its_mean_and_energy() {
    // u_t + u u_x + δ²(u_xxx + u_xyy) = 0 keeps ∫u (every term is an x
    // derivative) and ∫u² (u·u u_x = (u³/3)_x, u u_xxx = (u u_xx − u_x²/2)_x,
    // u u_xyy = (u u_xy)_y − (u_y²/2)_x: summed over the periodic square,
    // each vanishes). The mean is a linear invariant of the spectral
    // semi-discretisation, kept to round-off; the energy only up to the
    // collocated product's aliasing and the time error, which on the
    // scenario's 33² grid leave 3e-11 (on 16², where the family's steepened
    // waves are not resolved, 1.9e-4).
    let path = format!(
        "{}/pdes/zakharov-kuznetsov.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let pde = CustomPde::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
    let axis = SpatialAxis {
        lo: 0.0,
        hi: 1.0,
        points: 33,
    };
    let domain = MolDomain::new(vec![axis, axis], 1).unwrap();
    let options = MolOptions {
        rtol: 1e-9,
        atol: 1e-11,
        // Not stiff on this grid (as the scenario's `auto` finds).
        method: MolMethod::Explicit,
        ..MolOptions::default()
    };
    let (frames, stats, _) = solve_from_family(&pde, &domain, &times(0.5, 4), &options, |_, _| 0.0);
    let n = 33 * 33;
    let mean = |u: &[f64]| u.iter().sum::<f64>() / n as f64;
    let energy = |u: &[f64]| u.iter().map(|v| v * v).sum::<f64>() / n as f64;
    let (mean0, energy0) = (mean(&frames[..n]), energy(&frames[..n]));
    let mut change = 0.0_f64;
    for frame in frames.chunks(n).skip(1) {
        let mean_drift = (mean(frame) - mean0).abs();
        let energy_drift = (energy(frame) / energy0 - 1.0).abs();
        println!("Zakharov–Kuznetsov: mean drift {mean_drift:e}, energy drift {energy_drift:e}");
        assert!(mean_drift < 1e-12 * energy0.sqrt(), "{mean_drift:e}");
        assert!(energy_drift < 1e-8, "{energy_drift:e}");
        let moved: f64 = frame
            .iter()
            .zip(&frames[..n])
            .map(|(a, b)| (a - b).powi(2))
            .sum();
        change = change.max((moved / n as f64 / energy0).sqrt());
    }
    // The field does change: the invariants are not kept by standing still.
    println!("largest relative change {change}, {stats:?}");
    assert!(change > 0.3, "{change}");
}

/// The Kuramoto–Sivashinsky definition shipped in `pdes/`, and its period.
fn shipped_kuramoto_sivashinsky() -> (CustomPde, f64) {
    let path = format!(
        "{}/pdes/kuramoto-sivashinsky.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let pde = CustomPde::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
    (pde, 32.0 * std::f64::consts::PI)
}

/// `check` on the shipped Kuramoto–Sivashinsky definition discretised at 64
/// points over its period.
fn on_kuramoto_sivashinsky_grid(check: impl FnOnce(&Discretisation<'_, CustomMol<'_>>)) {
    let (pde, period) = shipped_kuramoto_sivashinsky();
    let view = pde.mol().unwrap();
    let domain = MolDomain::interval(0.0, period, 64, 1).unwrap();
    check(&Discretisation::new(&view, &domain).unwrap());
}

#[test]
fn the_shipped_kuramoto_sivashinsky_slope_is_the_closed_form() {
    // Kassam & Trefethen's u = cos y (1 + sin y) = cos y + ½ sin 2y, y = x/16:
    // every derivative by hand, u_t = −(u u_x + u_xx + u_xxxx). A wrong sign
    // or coefficient of any term is O(k²) = O(4e-3) here or larger.
    on_kuramoto_sivashinsky_grid(|disc| {
        let worst = slope_error(disc, 1.0 / 16.0, |[u, u_x, u_xx, u_xxxx]| {
            -(u * u_x + u_xx + u_xxxx)
        });
        println!("Kuramoto–Sivashinsky slope: max error {worst:e}");
        assert!(worst < 1e-12, "{worst}");
    });
}

/// The largest difference between the discretisation's slope at the wave
/// `u = cos kx + ½ sin 2kx` and `u_t([u, u_x, u_xx, u_xxxx])` of its
/// derivatives by hand.
fn slope_error<P: MolPde>(
    disc: &Discretisation<'_, P>,
    k: f64,
    u_t: impl Fn([f64; 4]) -> f64,
) -> f64 {
    let u0 = disc
        .sample(|x| {
            let y = k * x[0];
            vec![y.cos() + 0.5 * (2.0 * y).sin()]
        })
        .unwrap();
    let unknowns = disc.unknowns_of(&u0).unwrap();
    let mut slope = vec![0.0; unknowns.len()];
    disc.rhs(0.0, &unknowns, &mut slope).unwrap();
    disc.solver_coordinates()
        .iter()
        .zip(&slope)
        .map(|(&x, &got)| {
            let y = k * x;
            let u = y.cos() + 0.5 * (2.0 * y).sin();
            let u_x = -k * y.sin() + k * (2.0 * y).cos();
            let u_xx = -k.powi(2) * y.cos() - 2.0 * k.powi(2) * (2.0 * y).sin();
            let u_xxxx = k.powi(4) * y.cos() + 8.0 * k.powi(4) * (2.0 * y).sin();
            (got - u_t([u, u_x, u_xx, u_xxxx])).abs()
        })
        .fold(0.0, f64::max)
}

#[test]
fn small_kuramoto_sivashinsky_waves_grow_and_decay_at_k2_minus_k4() {
    // Linearised, a wave sin kx grows at k² − k⁴: k = 1/2 grows (3/16), k =
    // 5/4 decays (−0.88). At amplitude 1e-6 the quadratic term's share by
    // t = 4 is about 1e-6 of the waves.
    on_kuramoto_sivashinsky_grid(|disc| {
        let error = linear_waves(disc, 0.0, [0.5, 1.25], |k| k * k - k.powi(4), 4.0);
        println!("Kuramoto–Sivashinsky linear waves: max error {error:e} of the amplitude");
    });
}

/// Solves from `mean + ε Σ sin kx` over the `waves` (ε = 1e-6) to `t_end`
/// and returns the largest error, relative to ε, against the linearised
/// closed form `mean + ε Σ e^{rate(k) t} sin kx`, which it asserts under
/// 1e-4 (the neglected nonlinear terms are about ε of the waves).
fn linear_waves<P: MolPde>(
    disc: &Discretisation<'_, P>,
    mean: f64,
    waves: [f64; 2],
    rate: impl Fn(f64) -> f64,
    t_end: f64,
) -> f64 {
    const EPS: f64 = 1e-6;
    let exact = |t: f64, x: f64| {
        mean + waves
            .iter()
            .map(|&k| EPS * (rate(k) * t).exp() * (k * x).sin())
            .sum::<f64>()
    };
    let u0 = disc.sample(|x| vec![exact(0.0, x[0])]).unwrap();
    let options = MolOptions {
        rtol: 1e-10,
        atol: 1e-18,
        ..MolOptions::default()
    };
    let ts = times(t_end, 4);
    let solution = disc.solve(&u0, &ts, &options).unwrap();
    let error = max_error(disc, &solution.frames, &ts, 0, |t, x| exact(t, x[0])) / EPS;
    assert!(error < 1e-4, "{error:e} of the amplitude");
    error
}

#[test]
fn the_shipped_kuramoto_sivashinsky_family_stays_bounded_and_keeps_its_mean() {
    // From a draw of the family to t = 20: the mean of u is invariant (every
    // term is a derivative, u u_x = (u²/2)_x), and the long waves' growth is
    // saturated by the fourth derivative: the solution stays O(1).
    let (pde, period) = shipped_kuramoto_sivashinsky();
    let domain = MolDomain::interval(0.0, period, 64, 1).unwrap();
    let options = MolOptions {
        rtol: 1e-7,
        atol: 1e-9,
        ..MolOptions::default()
    };
    let (frames, _, _) = solve_from_family(&pde, &domain, &times(20.0, 4), &options, |_, _| 0.0);
    let mean = |u: &[f64]| u.iter().sum::<f64>() / u.len() as f64;
    let mean0 = mean(&frames[..64]);
    let peak0 = frames[..64].iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    let mut grew = false;
    for frame in frames.chunks(64).skip(1) {
        let drift = (mean(frame) - mean0).abs();
        assert!(drift < 1e-10, "mean drift {drift}");
        let peak = frame.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        assert!(peak < 5.0, "peak {peak}");
        grew |= peak > 1.2 * peak0;
    }
    // The unstable long waves do grow: a sign error in u_xx would damp them.
    assert!(grew, "the solution never grew from its peak {peak0}");
}

/// The Cahn–Hilliard definition shipped in `pdes/`, discretised at 64 points
/// over its period 2π.
fn on_cahn_hilliard_grid(check: impl FnOnce(&CustomPde, &Discretisation<'_, CustomMol<'_>>)) {
    let path = format!("{}/pdes/cahn-hilliard.toml", env!("CARGO_MANIFEST_DIR"));
    let pde = CustomPde::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
    let view = pde.mol().unwrap();
    let domain = MolDomain::interval(0.0, TAU, 64, 1).unwrap();
    check(&pde, &Discretisation::new(&view, &domain).unwrap());
}

/// The shipped definition's γ.
const GAMMA: f64 = 0.1;

#[test]
fn the_shipped_cahn_hilliard_slope_is_the_closed_form() {
    // u = cos x + ½ sin 2x, every derivative by hand, and
    // u_t = (u³ − u − γ u_xx)_xx = (3u² − 1) u_xx + 6 u u_x² − γ u_xxxx.
    // The products reach wavenumber 6, well inside the grid's 32: the
    // spectral slope is exact to round-off, which the fourth derivative
    // scales by up to 32⁴ ≈ 1e6 (a wrong sign or coefficient is O(1)).
    on_cahn_hilliard_grid(|_, disc| {
        let worst = slope_error(disc, 1.0, |[u, u_x, u_xx, u_xxxx]| {
            (3.0 * u * u - 1.0) * u_xx + 6.0 * u * u_x * u_x - GAMMA * u_xxxx
        });
        println!("Cahn–Hilliard slope: max error {worst:e}");
        assert!(worst < 1e-9, "{worst}");
    });
}

#[test]
fn small_cahn_hilliard_waves_grow_and_decay_about_the_mean() {
    // About a uniform mixture m, a wave sin kx grows at (1 − 3m²) k² − γ k⁴:
    // with m = 0.1, k = 2 grows (2.28) and k = 5 decays (−38.25). At
    // amplitude 1e-6 the neglected terms are about 1e-6 of the waves.
    on_cahn_hilliard_grid(|_, disc| {
        const M: f64 = 0.1;
        let rate = |k: f64| (1.0 - 3.0 * M * M) * k * k - GAMMA * k.powi(4);
        let error = linear_waves(disc, M, [2.0, 5.0], rate, 1.0);
        println!("Cahn–Hilliard linear waves: max error {error:e} of the amplitude");
    });
}

#[test]
fn the_shipped_cahn_hilliard_family_keeps_its_mass_and_lowers_its_free_energy() {
    // From a draw of the family to t = 2: the mean of u is invariant (the
    // right-hand side is a second derivative), the free energy
    // ∫ (u² − 1)²/4 + γ u_x²/2 never rises, and the mixture separates
    // towards the phases u = ±1 (a sign error in the u_xx term would damp
    // the long waves instead).
    on_cahn_hilliard_grid(|pde, disc| {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let u0 = pde
            .initial_family()
            .unwrap()
            .sample(&mut rng, disc.solver_coordinates(), 1);
        let options = MolOptions {
            rtol: 1e-8,
            atol: 1e-10,
            ..MolOptions::default()
        };
        let frames = disc.solve(&u0, &times(2.0, 8), &options).unwrap().frames;
        let n = 64;
        let dx = TAU / n as f64;
        let energy = |u: &[f64]| {
            (0..n)
                .map(|i| {
                    // The slope by the centred difference: enough to see
                    // the energy fall by far more than its error.
                    let u_x = (u[(i + 1) % n] - u[(i + n - 1) % n]) / (2.0 * dx);
                    0.25 * (u[i] * u[i] - 1.0).powi(2) + 0.5 * GAMMA * u_x * u_x
                })
                .sum::<f64>()
                * dx
        };
        let mean = |u: &[f64]| u.iter().sum::<f64>() / n as f64;
        let first = &frames[..n];
        let (mean0, mut last_energy) = (mean(first), energy(first));
        let energy0 = last_energy;
        for frame in frames.chunks(n).skip(1) {
            let drift = (mean(frame) - mean0).abs();
            assert!(drift < 1e-10, "mean drift {drift}");
            let e = energy(frame);
            assert!(
                e < last_energy + 1e-9,
                "the free energy rose from {last_energy} to {e}"
            );
            last_energy = e;
        }
        let peak = frames[frames.len() - n..]
            .iter()
            .fold(0.0_f64, |m, v| m.max(v.abs()));
        println!("Cahn–Hilliard: energy {energy0} -> {last_energy}, final peak {peak}");
        assert!(peak > 0.8, "no separation: the final peak is {peak}");
        assert!(last_energy < 0.9 * energy0, "{energy0} -> {last_energy}");
    });
}
