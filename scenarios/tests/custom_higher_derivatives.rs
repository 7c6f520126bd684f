//! Third and fourth derivatives in TOML definitions (`dxxx`, `dxxxx`,
//! `dyyy`, `dyyyy`, spectral): the constraint layer's terms against the
//! derivatives of a Fourier mode, the method of lines against the closed
//! forms of a dispersive, hyperdiffusive mode and of a KdV soliton, the
//! shipped KdV and Kuramoto–Sivashinsky definitions, and the typed errors of
//! stencils and axes they do not take.

mod mol_support;

use std::f64::consts::TAU;

use mol_support::{max_error, times};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tessera_constraints::Pde;
use tessera_meshes::{Axis, Grid};
use tessera_scenarios::custom::{CustomMol, CustomPde, CustomPdeError};
use tessera_scenarios::mol::{
    Discretisation, InitialFamily, MolDomain, MolOptions, MolStats, MolSystem, SpatialAxis,
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
        let k = 1.0 / 16.0;
        let u0 = disc
            .sample(|x| {
                let y = k * x[0];
                vec![y.cos() + 0.5 * (2.0 * y).sin()]
            })
            .unwrap();
        let unknowns = disc.unknowns_of(&u0).unwrap();
        let mut slope = vec![0.0; unknowns.len()];
        disc.rhs(0.0, &unknowns, &mut slope).unwrap();
        let worst = disc
            .solver_coordinates()
            .iter()
            .zip(&slope)
            .map(|(&x, &got)| {
                let y = k * x;
                let u = y.cos() + 0.5 * (2.0 * y).sin();
                let u_x = -k * y.sin() + k * (2.0 * y).cos();
                let u_xx = -k.powi(2) * y.cos() - 2.0 * k.powi(2) * (2.0 * y).sin();
                let u_xxxx = k.powi(4) * y.cos() + 8.0 * k.powi(4) * (2.0 * y).sin();
                (got + u * u_x + u_xx + u_xxxx).abs()
            })
            .fold(0.0, f64::max);
        println!("Kuramoto–Sivashinsky slope: max error {worst:e}");
        assert!(worst < 1e-12, "{worst}");
    });
}

#[test]
fn small_kuramoto_sivashinsky_waves_grow_and_decay_at_k2_minus_k4() {
    // Linearised, a wave sin kx grows at k² − k⁴: k = 1/2 grows (3/16), k =
    // 5/4 decays (−0.88). At amplitude 1e-6 the quadratic term's share by
    // t = 4 is about 1e-6 of the waves.
    on_kuramoto_sivashinsky_grid(|disc| {
        const EPS: f64 = 1e-6;
        let waves = [0.5, 1.25];
        let exact = |t: f64, x: f64| {
            waves
                .iter()
                .map(|&k: &f64| EPS * ((k * k - k.powi(4)) * t).exp() * (k * x).sin())
                .sum::<f64>()
        };
        let u0 = disc.sample(|x| vec![exact(0.0, x[0])]).unwrap();
        let options = MolOptions {
            rtol: 1e-10,
            atol: 1e-18,
            ..MolOptions::default()
        };
        let ts = times(4.0, 4);
        let solution = disc.solve(&u0, &ts, &options).unwrap();
        let error = max_error(disc, &solution.frames, &ts, 0, |t, x| exact(t, x[0]));
        println!(
            "Kuramoto–Sivashinsky linear waves: max error {:e} of the amplitude",
            error / EPS
        );
        assert!(error < 1e-4 * EPS, "{error:e}");
    });
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
