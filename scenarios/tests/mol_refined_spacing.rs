//! The method of lines' solver grid, refined `data.reference.refinement`-fold,
//! is measured against the finite differences' range `[MIN_SPACING,
//! MAX_SPACING]` when a scenario is read, not first by the solver once data
//! generation has started: a `pde.domain` whose output grid is in range but
//! whose refined grid is not is refused, naming `data.reference.refinement`.
//!
//! The oracle is the solver itself: the scenario's domain is handed to
//! [`Discretisation::new`], which builds the difference stencils on the
//! refined grid (with its ghost points) and refuses a spacing out of range.
//! Around each bound, validation must accept exactly the domains the solver
//! builds.

use std::path::{Path, PathBuf};

use tessera_constraints::Pde;
use tessera_meshes::ops::fd::{MAX_SPACING, MIN_SPACING};
use tessera_scenarios::config::PdeConfig;
use tessera_scenarios::mol::{Discretisation, MolDomain, SpatialAxis};
use tessera_scenarios::{AnyPde, Scenario, ScenarioError};

fn scenario_path(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(file)
}

/// A small scenario of the forced heat equation of
/// `tests/fixtures/forced-heat.toml`: Dirichlet ends, so the solver's axis
/// is bounded and carries a ghost point beyond each end; `nx` output points.
fn forced_heat(nx: usize, refinement: usize) -> Scenario {
    let definition = scenario_path("tests/fixtures/forced-heat.toml");
    let text = format!(
        "name = \"h\"\n[pde]\nkind = \"custom\"\nfile = {:?}\ndomain = [[0.0, 1.0]]\n\
         [grid]\nnt = 6\nnx = {nx}\nt_max = 0.2\n[data]\ntrain_samples = 2\ntest_samples = 2\n\
         [data.reference]\nrefinement = {refinement}\n[model]\nmodes = [2, 4]\n\
         [constraint]\nexperts = [1, 2]\npoints = 20\n[training]\nbatch_size = 1\n\
         validate_samples = 1\n[eval]\nplots = 1\n",
        definition.display().to_string()
    );
    Scenario::from_str(&text, "forced-heat-scenario").unwrap()
}

/// `s` with its axis `axis` (0 = x) of `pde.domain` set to `[0, hi]`.
fn with_domain(s: &Scenario, axis: usize, hi: f64) -> Scenario {
    let mut s = s.clone();
    let PdeConfig::Custom(p) = &mut s.pde else {
        panic!("not a PDE defined in TOML");
    };
    p.domain[axis] = [0.0, hi];
    s
}

/// Whether the method of lines builds its stencils on the scenario's
/// refined grid; `Err` is the solver's message.
fn solver_builds(s: &Scenario) -> Result<(), String> {
    let PdeConfig::Custom(p) = &s.pde else {
        panic!("not a PDE defined in TOML");
    };
    let pde = p.pde("test").unwrap();
    let mol = pde.mol().unwrap();
    let axes = (p.domain.iter().zip(&s.dims()[1..]))
        .map(|(&[lo, hi], &points)| SpatialAxis { lo, hi, points })
        .collect();
    let domain = MolDomain::new(axes, s.data.reference.refinement()).map_err(|e| e.to_string())?;
    Discretisation::new(&mol, &domain)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Whether the model's difference stencils build on the output grid.
fn model_builds(s: &Scenario) -> bool {
    let pde = AnyPde::from_config(&s.pde, s.constraint.fd).unwrap();
    pde.terms(&s.grid().unwrap()).is_ok()
}

fn invalid_keys(err: &ScenarioError) -> Vec<String> {
    match err {
        ScenarioError::ConfigInvalid { key, .. } => vec![key.clone()],
        ScenarioError::ConfigInvalidSeveral { settings, .. } => {
            settings.iter().map(|s| s.key.clone()).collect()
        }
        other => panic!("expected invalid settings, got {other:?}"),
    }
}

/// `count` floats either side of `centre`, in order.
fn floats_around(centre: f64, count: usize) -> Vec<f64> {
    let mut lo = centre;
    for _ in 0..count {
        lo = lo.next_down();
    }
    std::iter::successors(Some(lo), |x| Some(x.next_up()))
        .take(2 * count + 1)
        .collect()
}

/// Validation accepts `hi` exactly when the solver (and the model, whose
/// output-grid check is the older one) builds, over a window of floats
/// around the bound; both outcomes occur in the window, so it holds the
/// bound. Returns how many were refused.
fn agrees_around(what: &str, base: &Scenario, axis: usize, centre: f64) -> usize {
    let mut refused = 0;
    for hi in floats_around(centre, 24) {
        let s = with_domain(base, axis, hi);
        let builds = solver_builds(&s);
        let valid = s.validate();
        assert_eq!(
            valid.is_ok(),
            builds.is_ok() && model_builds(&s),
            "{what}, hi = {hi:e}: validation {valid:?}, solver {builds:?}"
        );
        if let Err(e) = builds {
            assert!(e.contains("spacing"), "{what}, hi = {hi:e}: {e}");
            refused += 1;
        }
    }
    assert!(
        refused > 0 && refused < 49,
        "{what}: the window misses the bound"
    );
    refused
}

/// Burgers on its periodic axis, 64 points refined 4-fold: a refined
/// spacing of exactly `MIN_SPACING` (`hi = 256·MIN_SPACING`, exact in binary)
/// is valid and builds; one float below it (`256·MIN_SPACING.next_down()`)
/// is refused, naming `data.reference.refinement` and the spacing, though
/// the output grid's spacing, four times the refined one, is in range; the
/// same domain unrefined is valid.
#[test]
fn a_refined_spacing_one_float_below_the_bound_is_refused() {
    let base = Scenario::from_file(scenario_path("burgers-small.toml")).unwrap();
    assert_eq!((base.grid.nx, base.data.reference.refinement()), (64, 4));
    let at = with_domain(&base, 0, 256.0 * MIN_SPACING);
    at.validate().unwrap();
    solver_builds(&at).unwrap();

    let beyond = MIN_SPACING.next_down();
    let out = with_domain(&base, 0, 256.0 * beyond);
    assert_eq!(out.grid().unwrap().axis(1).spacing(), 4.0 * beyond);
    assert!(model_builds(&out), "the output grid is in range");
    let err = solver_builds(&out).unwrap_err();
    assert!(err.contains(&format!("{beyond:e}")), "{err}");
    let err = out.validate().unwrap_err();
    let shown = err.to_string();
    println!("{shown}");
    assert_eq!(invalid_keys(&err), ["data.reference.refinement"], "{shown}");
    for part in [
        format!("spacing of {beyond:e}"),
        "x axis of pde.domain".to_owned(),
        "4-fold".to_owned(),
        "lower data.reference.refinement or widen pde.domain".to_owned(),
    ] {
        assert!(shown.contains(&part), "`{part}` not in: {shown}");
    }

    let mut unrefined = out.clone();
    unrefined.set("data.reference.refinement=1").unwrap();
    unrefined.validate().unwrap();
    solver_builds(&unrefined).unwrap();
}

/// The same bound through `--set` overrides, as `tessera pde check` and
/// `generate` take them: the issue's `pde.domain = [[0, 6.4e-74]]` (output
/// spacing 1e-75, refined 2.5e-76) is refused.
#[test]
fn the_reported_domain_is_refused_through_overrides() {
    let mut s = Scenario::from_file(scenario_path("burgers-small.toml")).unwrap();
    let err = s.set("pde.domain=[[0, 6.4e-74]]").unwrap_err();
    assert_eq!(invalid_keys(&err), ["data.reference.refinement"], "{err}");
    assert!(err.to_string().contains("spacing of 2.5e-76"), "{err}");
}

/// Periodic Burgers around the lower bound: validation and the solver agree
/// float for float.
#[test]
fn validation_agrees_with_the_solver_on_a_periodic_axis() {
    let base = Scenario::from_file(scenario_path("burgers-small.toml")).unwrap();
    agrees_around("Burgers", &base, 0, 256.0 * MIN_SPACING);
}

/// A bounded axis, whose solver grid adds a ghost point beyond each end and
/// so rounds its spacing otherwise than `(hi − lo)/(n − 1)`: validation and
/// the solver agree float for float at the lower bound (9 points refined
/// 4-fold: 33 solver points) and at the upper one unrefined (10 points),
/// where the output grid's own check is at its bound too. At both sizes one
/// float of the window has `(hi − lo)/(n − 1)` in range and the ghosted
/// axis's spacing out of it or the reverse (found by a search over sizes of
/// that arithmetic), so a validation that skipped the ghost points would
/// fail here.
#[test]
fn validation_agrees_with_the_solver_on_a_bounded_axis() {
    let refined = forced_heat(9, 4);
    agrees_around("forced heat, 4-fold", &refined, 0, 32.0 * MIN_SPACING);
    let unrefined = forced_heat(10, 1);
    agrees_around("forced heat, unrefined", &unrefined, 0, 9.0 * MAX_SPACING);
}

/// A 2-D domain's y axis is measured too, and named.
#[test]
fn the_y_axis_of_a_two_dimensional_domain_is_measured() {
    let base = Scenario::from_file(scenario_path("anisotropic-diffusion-small.toml")).unwrap();
    assert_eq!(
        (base.grid.ny, base.data.reference.refinement()),
        (Some(32), 2)
    );
    agrees_around("anisotropic diffusion, y", &base, 1, 64.0 * MIN_SPACING);
    let out = with_domain(&base, 1, 64.0 * MIN_SPACING.next_down());
    let err = out.validate().unwrap_err();
    assert_eq!(invalid_keys(&err), ["data.reference.refinement"], "{err}");
    assert!(err.to_string().contains("y axis of pde.domain"), "{err}");
}

/// Ground truth read from files needs no solver grid: with both splits'
/// files given, the refined spacing is not measured.
#[test]
fn no_solver_grid_is_measured_when_both_splits_come_from_files() {
    let base = Scenario::from_file(scenario_path("burgers-small.toml")).unwrap();
    let mut out = with_domain(&base, 0, 256.0 * MIN_SPACING.next_down());
    assert!(out.validate().is_err());
    out.data.train_file = Some("train.safetensors".into());
    out.data.test_file = Some("test.safetensors".into());
    out.validate().unwrap();
}
