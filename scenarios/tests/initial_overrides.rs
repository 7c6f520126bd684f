//! A scenario's `pde.initial`: new numbers for its definition's `[initial]`
//! family. A Gaussian random field's amplitude and mean move each sample as
//! `u = mean + amplitude · w` says (the same draw `w`), a random parameter's
//! new range moves its own draws and no other's, the overrides travel with
//! the run's config, and keys the family does not have are typed errors.

use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tessera_scenarios::Scenario;
use tessera_scenarios::config::PdeConfig;
use tessera_scenarios::custom::{InitialCondition, RandomSpec};
use tessera_scenarios::mol::{Discretisation, InitialFamily, MolDomain, SpatialAxis};

fn shipped(file: &str) -> Scenario {
    Scenario::from_file(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap()
}

fn family(scenario: &Scenario) -> InitialCondition {
    let PdeConfig::Custom(params) = &scenario.pde else {
        panic!("expected a custom PDE");
    };
    let pde = params.pde("test").unwrap();
    pde.initial_family().unwrap().clone()
}

/// One sample of `scenario`'s family on the periodic 16² unit square, from
/// the rng seeded with `seed`.
fn sample_2d(scenario: &Scenario, seed: u64) -> Vec<f64> {
    let PdeConfig::Custom(params) = &scenario.pde else {
        panic!("expected a custom PDE");
    };
    let pde = params.pde("test").unwrap();
    let view = pde.mol().unwrap();
    let axis = SpatialAxis {
        lo: 0.0,
        hi: 1.0,
        points: 16,
    };
    let domain = MolDomain::new(vec![axis, axis], 1).unwrap();
    let disc = Discretisation::new(&view, &domain).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    pde.initial_family()
        .unwrap()
        .sample(&mut rng, disc.solver_coordinates(), 2)
}

#[test]
fn a_grf_override_scales_and_shifts_the_same_draws() {
    let base = shipped("allen-cahn-2d-small.toml");
    // The shipped definition: amplitude 0.5, no mean (0).
    let InitialCondition::Grf(grf) = family(&base) else {
        panic!("allen-cahn-2d draws a grf");
    };
    assert_eq!((grf.amplitude(), grf.mean()), (0.5, 0.0));
    let mut over = base.clone();
    over.set_all(&["pde.initial.amplitude=0.25", "pde.initial.mean=0.3"])
        .unwrap();
    let InitialCondition::Grf(changed) = family(&over) else {
        panic!("still a grf");
    };
    assert_eq!(changed.length_scale(), grf.length_scale(), "not overridden");
    for seed in [1, 2] {
        let (u, v) = (sample_2d(&base, seed), sample_2d(&over, seed));
        let worst = u
            .iter()
            .zip(&v)
            .map(|(u, v)| (v - (0.3 + 0.25 * (u / 0.5))).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-15, "seed {seed}: {worst:e}");
        assert!(u.iter().any(|u| u.abs() > 0.1), "a field, not zeros");
    }
}

#[test]
fn a_random_parameter_override_moves_its_own_draws_only() {
    // Kuramoto–Sivashinsky draws a1, a2, a3, p1, p2, p3 in that order; a2 is
    // uniform on [0, 1] in the file, so on [2, 3] each draw is 2 + the old
    // one. Had the override moved a2's place in the order, a1 would take
    // another number of the stream.
    let base = shipped("kuramoto-sivashinsky-small.toml");
    let mut over = base.clone();
    over.set("pde.initial.random.a2={uniform=[2.0, 3.0]}")
        .unwrap();
    let (InitialCondition::Expression(f), InitialCondition::Expression(g)) =
        (family(&base), family(&over))
    else {
        panic!("Kuramoto–Sivashinsky draws an expression family");
    };
    let names = |f: &tessera_scenarios::custom::ExpressionFamily| {
        (f.random().iter())
            .map(|p| p.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&f), ["a1", "a2", "a3", "p1", "p2", "p3"]);
    assert_eq!(names(&g), names(&f));
    let (mut r, mut s) = (ChaCha8Rng::seed_from_u64(4), ChaCha8Rng::seed_from_u64(4));
    for _ in 0..5 {
        let (old, new) = (f.draw(&mut r), g.draw(&mut s));
        for (i, (a, b)) in old.iter().zip(&new).enumerate() {
            if i == 1 {
                assert!((b - (2.0 + a)).abs() < 1e-15, "{a} → {b}");
            } else {
                assert_eq!(a.to_bits(), b.to_bits(), "draw {i} moved");
            }
        }
    }
}

#[test]
fn overrides_travel_with_the_run_config_and_read_as_written_in_the_scenario() {
    let mut by_flag = shipped("allen-cahn-2d-small.toml");
    by_flag.set("pde.initial.amplitude=0.25").unwrap();
    let back = Scenario::from_str(&by_flag.to_toml_string(), "run/config.toml").unwrap();
    assert_eq!(back, by_flag);
    let PdeConfig::Custom(params) = &back.pde else {
        panic!("custom");
    };
    assert_eq!(params.initial.amplitude, Some(0.25));
    // A random parameter's distribution too.
    let mut random = shipped("kuramoto-sivashinsky-small.toml");
    random
        .set("pde.initial.random.a2={normal=[1.0, 0.5]}")
        .unwrap();
    let text = random.to_toml_string();
    assert_eq!(
        Scenario::from_str(&text, "run/config.toml").unwrap(),
        random
    );
    // The same key in the scenario's own [pde] table.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("allen-cahn-2d-small.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("[pde]\n", "[pde]\ninitial = { amplitude = 0.25 }\n");
    let mut written = Scenario::from_str(&text, "written.toml").unwrap();
    // Read from a string, the file path is resolved from the working
    // directory; the text is what matters.
    if let (PdeConfig::Custom(w), PdeConfig::Custom(f)) = (&mut written.pde, &by_flag.pde) {
        w.file = f.file.clone();
        w.definition = f.definition.clone();
    }
    assert_eq!(written.pde, by_flag.pde);
    assert_eq!(sample_2d(&written, 3), sample_2d(&by_flag, 3));
    // No override writes no key: existing run configs and data-cache names
    // stay as they were.
    assert!(
        !shipped("allen-cahn-2d-small.toml")
            .to_toml_string()
            .contains("initial ="),
    );
}

#[test]
fn keys_the_family_does_not_have_are_typed_errors_and_change_nothing() {
    let mut grf = shipped("allen-cahn-2d-small.toml");
    let before = grf.clone();
    for (set, expect) in [
        ("pde.initial.amplitude=-1", "amplitude` = -1 must be"),
        ("pde.initial.length_scale=0", "length_scale` = 0 must be"),
        (
            "pde.initial.random.a={uniform=[0.0, 1.0]}",
            "the grf family has no random parameters",
        ),
        ("pde.initial.colour=3", "unknown field `colour`"),
        ("pde.initial.u0=\"sin(x)\"", "unknown field `u0`"),
    ] {
        let err = grf.set(set).unwrap_err().to_string();
        assert!(err.contains(expect), "{set}: {err}");
        assert_eq!(grf, before, "{set} changed the scenario");
    }
    let mut expression = shipped("kuramoto-sivashinsky-small.toml");
    for (set, expect) in [
        (
            "pde.initial.amplitude=2",
            "`amplitude` is a key of the grf family",
        ),
        (
            "pde.initial.random.b1={normal=[0.0, 1.0]}",
            "the definition's random parameters are [\"a1\", \"a2\", \"a3\", \"p1\", \"p2\", \"p3\"]",
        ),
        (
            "pde.initial.random.a1={uniform=[2.0, 1.0]}",
            "uniform range [2, 1] has lo > hi",
        ),
    ] {
        let err = expression.set(set).unwrap_err().to_string();
        assert!(err.contains(expect), "{set}: {err}");
    }
    // A definition without [initial] has nothing to override.
    let mut burgers = shipped("burgers-small.toml");
    let heat = Path::new(env!("CARGO_MANIFEST_DIR")).join("pdes/heat.toml");
    burgers
        .set_all(&[
            format!("pde.file={:?}", heat.display().to_string()),
            "pde.parameters={}".to_owned(),
        ])
        .unwrap();
    let err = burgers
        .set("pde.initial.random.a={uniform=[0.0, 1.0]}")
        .unwrap_err()
        .to_string();
    assert!(err.contains("the definition has none"), "{err}");
    // The distribution's type reads as the definition's.
    let spec: RandomSpec =
        toml::from_str::<toml::Table>("d = { normal = [0.0, 2.0] }").unwrap()["d"]
            .clone()
            .try_into()
            .unwrap();
    assert_eq!(spec, RandomSpec::Normal([0.0, 2.0]));
}
