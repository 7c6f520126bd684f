//! The `grf` family of `[initial]`: the Navier–Stokes scenario's periodic
//! Gaussian random field for TOML definitions. Loads, is deterministic per
//! seed, has the spectrum and variance its parameters imply, and bad
//! parameters are typed errors at their line and column.
//!
//! **The oracle.** The kernel is `k(d) = exp(−2 Σ_a sin²(π d_a)/(4ℓ²))` with `d`
//! in periods, so per axis `k = exp(−β(1 − cos 2πd))` with `β = 1/(4ℓ²)`, and
//! `exp(β cos θ) = Σ_m I_m(β) e^{imθ}` (modified Bessel functions) gives its
//! Fourier coefficients in closed form: `c_m = e^{−β} I_m(β)` per axis, a
//! product over axes. A field with covariance `a²·k`, mean removed, then has
//! `E|û_k|²/N² = a² Π_a c_{k_a}` for every mode but the constant one (`û` the
//! unnormalised DFT of the `N` grid values; aliasing adds `c_{m±n}`, below
//! `1e-20` on these grids), pointwise variance `a²(1 − Π_a c_0)` and spatial
//! mean exactly `mean`. None of this calls the sampler's code.

use std::f64::consts::PI;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tessera_constraints::expr::Position;
use tessera_scenarios::custom::{CustomPde, CustomPdeError, GrfFamily, InitialCondition};
use tessera_scenarios::mol::InitialFamily;

/// A periodic heat equation in `dims` space dimensions with `initial` as its
/// `[initial]` table body.
fn definition(dims: usize, initial: &str) -> String {
    let (space, periodic, lap) = match dims {
        1 => (r#"["x"]"#, "[true]", "dxx"),
        _ => (r#"["x", "y"]"#, "[true, true]", "laplacian"),
    };
    format!(
        r#"name = "heat-periodic"
space = {space}
periodic = {periodic}
residual = "u_t - kappa * lap_u"

[parameters]
kappa = 0.1

[terms]
u = "u"
u_t = "dt"
lap_u = "{lap}"

[[conditions]]
at = "initial"
row = "u"
rhs = "u0"

[initial]
{initial}
"#
    )
}

/// The grf family of the definition `text`.
fn grf(text: &str) -> GrfFamily {
    let pde = CustomPde::from_str(text, "grf.toml").unwrap_or_else(|e| panic!("{e}"));
    match pde.initial_family() {
        Some(InitialCondition::Grf(family)) => *family,
        other => panic!("not a grf family: {other:?}"),
    }
}

/// Row-major coordinates (`y` fastest) of the periodic grid `lo + i·L/n` per
/// axis, `(lo, L, n)` per axis.
fn grid(axes: &[(f64, f64, usize)]) -> Vec<f64> {
    let coords: Vec<Vec<f64>> = axes
        .iter()
        .map(|&(lo, len, n)| (0..n).map(|i| lo + len * i as f64 / n as f64).collect())
        .collect();
    match coords.as_slice() {
        [x] => x.clone(),
        [x, y] => x
            .iter()
            .flat_map(|&x| y.iter().flat_map(move |&y| [x, y]))
            .collect(),
        _ => unreachable!("1-D or 2-D"),
    }
}

/// `I_m(β)` by its power series `Σ_j (β/2)^{2j+m} / (j! (j+m)!)`.
fn bessel_i(m: usize, beta: f64) -> f64 {
    let half = beta / 2.0;
    let mut term = (1..=m).fold(1.0, |t, k| t * half / k as f64);
    let mut sum = 0.0;
    for j in 1..60 {
        sum += term;
        term *= half * half / (j as f64 * (j + m) as f64);
    }
    sum
}

/// The kernel's Fourier coefficient of one axis (see the module docs).
fn coefficient(m: usize, length_scale: f64) -> f64 {
    let beta = 1.0 / (4.0 * length_scale * length_scale);
    (-beta).exp() * bessel_i(m, beta)
}

/// `|û_k|²/N²` of the field `u` on an `nx × ny` grid.
fn power(u: &[f64], nx: usize, ny: usize, k: (usize, usize)) -> f64 {
    let (mut re, mut im) = (0.0, 0.0);
    for (p, &v) in u.iter().enumerate() {
        let phase =
            -2.0 * PI * ((k.0 * (p / ny)) as f64 / nx as f64 + (k.1 * (p % ny)) as f64 / ny as f64);
        re += v * phase.cos();
        im += v * phase.sin();
    }
    (re * re + im * im) / (u.len() * u.len()) as f64
}

/// Mean and standard error of `values`.
fn mean_and_error(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

/// Checks that `samples` draws of `family` on the `nx × ny` grid `coords`
/// (`dims` columns) have the spectrum at `modes` and the pointwise variance of
/// the module docs, each within five standard errors, and the mean exactly.
fn check_statistics(
    family: &GrfFamily,
    coords: &[f64],
    dims: usize,
    (nx, ny): (usize, usize),
    modes: &[(usize, usize)],
    samples: u64,
) {
    let a2 = family.amplitude().powi(2);
    let c = |m| coefficient(m, family.length_scale());
    let spectrum: Vec<_> = modes
        .iter()
        .map(|&k| (k, a2 * c(k.0) * if dims == 2 { c(k.1) } else { 1.0 }))
        .collect();
    let c0 = if dims == 2 { c(0) * c(0) } else { c(0) };
    let expected = Moments {
        spectrum: &spectrum,
        variance: a2 * (1.0 - c0),
    };
    check_moments(family, coords, dims, (nx, ny), &expected, samples);
}

/// What draws of a family should have: `E|û_k|²/N²` at some modes `k`, and
/// the pointwise variance.
struct Moments<'a> {
    spectrum: &'a [((usize, usize), f64)],
    variance: f64,
}

/// Checks that `samples` draws of `family` on the `nx × ny` grid `coords`
/// (`dims` columns) have the `expected` moments, each within five standard
/// errors, and the family's mean exactly.
fn check_moments(
    family: &GrfFamily,
    coords: &[f64],
    dims: usize,
    (nx, ny): (usize, usize),
    expected: &Moments,
    samples: u64,
) {
    let draws: Vec<Vec<f64>> = (0..samples)
        .map(|s| {
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            rng.set_stream(s);
            family.sample(&mut rng, coords, dims)
        })
        .collect();
    for u in &draws {
        assert_eq!(u.len(), nx * ny);
        let mean = u.iter().sum::<f64>() / u.len() as f64;
        assert!((mean - family.mean()).abs() < 1e-12, "mean {mean}");
    }
    let mut quantities: Vec<(String, f64, Vec<f64>)> = (expected.spectrum.iter())
        .map(|&(k, expected)| {
            let values = draws.iter().map(|u| power(u, nx, ny, k)).collect();
            (format!("|û{k:?}|²/N²"), expected, values)
        })
        .collect();
    quantities.push((
        "pointwise variance".into(),
        expected.variance,
        draws
            .iter()
            .map(|u| u.iter().map(|v| (v - family.mean()).powi(2)).sum::<f64>() / u.len() as f64)
            .collect(),
    ));
    for (what, expected, values) in quantities {
        let (mean, error) = mean_and_error(&values);
        println!("{what}: {mean:.5e} ± {error:.1e}, expected {expected:.5e}");
        // The test must be able to tell: its standard error is a few percent.
        assert!(
            error < 0.05 * expected,
            "{what}: error {error} vs {expected}"
        );
        assert!(
            (mean - expected).abs() < 5.0 * error,
            "{what}: {mean} vs {expected} ± {error}"
        );
    }
}

#[test]
fn a_grf_definition_loads_with_its_parameters_and_the_defaults() {
    let family = grf(&definition(
        1,
        "family = \"grf\"\nlength_scale = 0.5\namplitude = 2.0\nmean = 0.3",
    ));
    assert_eq!(
        (family.length_scale(), family.amplitude(), family.mean()),
        (0.5, 2.0, 0.3)
    );
    // Defaults: the Navier–Stokes scenario's ℓ, unit amplitude, zero mean.
    let family = grf(&definition(2, "family = \"grf\""));
    assert_eq!(
        (family.length_scale(), family.amplitude(), family.mean()),
        (0.8, 1.0, 0.0)
    );
    // The shipped Navier–Stokes definition declares the scenario's field.
    let path = format!("{}/pdes/navier-stokes.toml", env!("CARGO_MANIFEST_DIR"));
    let ns = CustomPde::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
    let Some(InitialCondition::Grf(family)) = ns.initial_family() else {
        panic!("navier-stokes.toml declares a grf family");
    };
    assert_eq!(
        (family.length_scale(), family.amplitude(), family.mean()),
        (0.8, 1.0, 0.0)
    );
}

#[test]
fn samples_are_deterministic_per_seed_and_differ_across_seeds() {
    for (dims, coords) in [
        (1, grid(&[(0.0, 1.0, 32)])),
        (2, grid(&[(0.0, 1.0, 8), (0.0, 2.0, 4)])),
    ] {
        let family = grf(&definition(dims, "family = \"grf\""));
        let draw = |seed| family.sample(&mut ChaCha8Rng::seed_from_u64(seed), &coords, dims);
        assert_eq!(draw(3).len(), coords.len() / dims);
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }
}

#[test]
fn one_d_spectrum_and_variance_match_the_kernel_in_periods() {
    // Period 2π: ℓ is in periods, so the spectrum is the same as on [0, 1).
    let family = grf(&definition(
        1,
        "family = \"grf\"\nlength_scale = 0.5\namplitude = 1.5\nmean = -0.25",
    ));
    let n = 32;
    let coords = grid(&[(-PI, 2.0 * PI, n)]);
    check_statistics(&family, &coords, 1, (n, 1), &[(1, 0), (2, 0), (3, 0)], 4000);
}

#[test]
fn two_d_spectrum_and_variance_match_the_product_kernel() {
    let family = grf(&definition(2, "family = \"grf\"\namplitude = 0.5"));
    let (nx, ny) = (16, 8);
    let coords = grid(&[(0.0, 1.0, nx), (0.0, 3.0, ny)]);
    let modes = [(1, 0), (0, 1), (1, 1), (2, 1)];
    check_statistics(&family, &coords, 2, (nx, ny), &modes, 3000);
}

/// A length scale far below the grid spacing makes the kernel the identity
/// on the grid (`exp(−2s/ℓ²)` is 0 at every other grid point), so the draws
/// are white noise: `E|û_k|²/N² = a²/N` for every mode but the constant one,
/// pointwise variance `a²(1 − 1/N)` once the mean is removed. Down to the
/// smallest positive `f64`, whose square underflows to 0 (below `ℓ ≈
/// 1.6e-162` every draw used to be an all-zero field).
#[test]
fn a_length_scale_far_below_the_grid_spacing_gives_white_noise() {
    let (nx, ny) = (8, 4);
    let coords = grid(&[(0.0, 1.0, nx), (0.0, 2.0, ny)]);
    let points = (nx * ny) as f64;
    // The first's square is a float, the others' underflow.
    assert!(1e-100_f64.powi(2) > 0.0 && 1e-300_f64.powi(2) == 0.0);
    for length_scale in [1e-100, 1e-300, f64::from_bits(1)] {
        let family = grf(&definition(
            2,
            &format!("family = \"grf\"\nlength_scale = {length_scale:e}\namplitude = 0.5"),
        ));
        assert_eq!(family.length_scale(), length_scale);
        let a2 = family.amplitude().powi(2);
        let spectrum = [(1, 0), (0, 1), (3, 2), (4, 2)].map(|k| (k, a2 / points));
        let expected = Moments {
            spectrum: &spectrum,
            variance: a2 * (1.0 - 1.0 / points),
        };
        check_moments(&family, &coords, 2, (nx, ny), &expected, 3000);
    }
}

#[test]
fn coordinates_that_are_not_a_uniform_periodic_grid_get_no_values() {
    let family = grf(&definition(1, "family = \"grf\""));
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let uneven = [0.0, 0.1, 0.3, 0.4];
    assert!(family.sample(&mut rng, &uneven, 1).is_empty());
    // 2-D points read as 1-D, and a 2-D scatter that is not a tensor grid.
    let square = grid(&[(0.0, 1.0, 4), (0.0, 1.0, 4)]);
    assert!(family.sample(&mut rng, &square, 2).is_empty());
    let family = grf(&definition(2, "family = \"grf\""));
    let mut scatter = square.clone();
    scatter[3] = 0.6;
    assert!(family.sample(&mut rng, &scatter, 2).is_empty());
}

/// The 1-based line and column of the first occurrence of `needle` in `text`.
fn position_of(text: &str, needle: &str) -> Option<Position> {
    let offset = text.find(needle)?;
    let before = &text[..offset];
    Some(Position {
        line: before.matches('\n').count() + 1,
        column: before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1,
    })
}

#[test]
fn bad_grf_tables_are_typed_errors_at_their_line_and_column() {
    // (dims, [initial] body, what the error points at, what it says)
    let cases = [
        (
            1,
            "family = \"grf\"\nlength_scale = 0.0",
            "0.0",
            "length_scale",
        ),
        (
            1,
            "family = \"grf\"\nlength_scale = -1.0",
            "-1.0",
            "length_scale",
        ),
        (
            2,
            "family = \"grf\"\nlength_scale = nan",
            "nan",
            "length_scale",
        ),
        (1, "family = \"grf\"\namplitude = -0.5", "-0.5", "amplitude"),
        (1, "family = \"grf\"\namplitude = inf", "inf", "amplitude"),
        (1, "family = \"grf\"\nmean = -inf", "-inf", "mean"),
        (
            1,
            "family = \"gauss\"",
            "\"gauss\"",
            "unknown initial family",
        ),
        (1, "family = \"grf\"\nu0 = \"x\"", "\"x\"", "`u0`"),
        (
            1,
            "family = \"grf\"\n[initial.random]\na = { uniform = [0.0, 1.0] }",
            "{ uniform",
            "`random`",
        ),
        (
            1,
            "u0 = \"sin(2 * pi * x)\"\nlength_scale = 0.5",
            "0.5",
            "`length_scale`",
        ),
        (1, "family = \"expression\"\nmean = 1.0", "1.0", "`mean`"),
    ];
    for (dims, body, place, says) in cases {
        let text = definition(dims, body);
        let e = CustomPde::from_str(&text, "bad.toml").unwrap_err();
        println!("{e}");
        assert!(matches!(e, CustomPdeError::Invalid { .. }), "{e}");
        assert!(e.to_string().contains(says), "{e}");
        assert!(e.to_string().starts_with("bad.toml:"), "{e}");
        // The value's place in the [initial] table (after the header).
        let table = text.find("[initial]").unwrap();
        let expected = position_of(&text[table..], place).map(|p| Position {
            line: p.line + text[..table].matches('\n').count(),
            ..p
        });
        assert_eq!(e.position(), expected, "{e}");
    }
    // A bounded axis: the family is the place.
    let text = definition(2, "family = \"grf\"").replace("[true, true]", "[true, false]");
    let text = text.replace(
        "rhs = \"u0\"",
        "rhs = \"u0\"\n\n[[conditions]]\nat = \"y-min\"\nrow = \"u\"\n\n[[conditions]]\nat = \"y-max\"\nrow = \"u\"",
    );
    let e = CustomPde::from_str(&text, "bad.toml").unwrap_err();
    println!("{e}");
    assert!(e.to_string().contains("`y` is bounded"), "{e}");
    assert_eq!(e.position(), position_of(&text, "\"grf\""), "{e}");
    // No family and no u0.
    let e = CustomPde::from_str(&definition(1, ""), "bad.toml").unwrap_err();
    assert!(
        matches!(e, CustomPdeError::Invalid { .. }) && e.to_string().contains("needs `u0`"),
        "{e}"
    );
}
