//! Training with a PDE defined in TOML equals training with the built-in Rust
//! PDE it restates: the loss curves of the same model, data and optimiser agree
//! to 1e-9 relative at every step — for the shipped files, and for the
//! definition a built-in configuration with other constants maps to
//! (`AnyPde::definition`, what a GPU model solves).

mod model_common;

use std::sync::Arc;

use tessera_scenarios::AnyPde;
use tessera_scenarios::Scenario;
use tessera_scenarios::custom::CustomPde;
use tessera_solver::{Adam, AdamConfig, Batch, Model, named_vars, sample_ics, update};

/// The loss at each of `steps` Adam updates (learning rate 1e-3, clip 1) on
/// batches of two initial conditions drawn from the step number.
fn loss_curve(mut model: Model, scenario: &Scenario, steps: usize) -> Vec<f64> {
    let vars = named_vars(&model).unwrap();
    let mut adam = Adam::new(AdamConfig::default());
    (0..steps as u64)
        .map(|k| {
            let batch = Batch {
                ics: sample_ics(scenario, 2, 100 + k).unwrap(),
                targets: None,
                seed: k,
            };
            update(&mut model, &batch, &vars, &mut adam, 1e-3, 1.0)
                .unwrap()
                .loss
        })
        .collect()
}

fn shipped(name: &str) -> AnyPde {
    let path = format!(
        "{}/../scenarios/pdes/{name}.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    AnyPde::Custom(Arc::new(CustomPde::from_file(path).unwrap()))
}

fn assert_same_curve(scenario: &Scenario, toml: &str, steps: usize) {
    assert_trains_like_the_builtin(scenario, shipped(toml), steps);
}

/// The built-in PDE of `scenario` as its restating definition.
fn restated(scenario: &Scenario) -> AnyPde {
    let builtin = AnyPde::from_config(&scenario.pde, scenario.constraint.fd).unwrap();
    AnyPde::Custom(builtin.definition().unwrap())
}

fn assert_trains_like_the_builtin(scenario: &Scenario, pde: AnyPde, steps: usize) {
    let toml = pde.definition().unwrap().name().to_owned();
    let builtin = loss_curve(Model::new(scenario).unwrap(), scenario, steps);
    let custom = loss_curve(Model::with_pde(scenario, pde).unwrap(), scenario, steps);
    let worst = builtin
        .iter()
        .zip(&custom)
        .map(|(b, c)| (b - c).abs() / b.abs())
        .fold(0.0, f64::max);
    println!("{toml}: {steps} steps, largest relative loss difference {worst:e}");
    assert!(worst <= 1e-9, "{builtin:?}\nvs\n{custom:?}");
    // The curve moved: the comparison is over a real training run.
    assert_ne!(builtin[0], builtin[steps - 1]);
}

#[test]
fn diffusion_sorption_from_toml_trains_like_the_builtin() {
    assert_same_curve(
        &model_common::diffusion_sorption("moe", ""),
        "diffusion-sorption",
        15,
    );
}

#[test]
fn navier_stokes_from_toml_trains_like_the_builtin() {
    assert_same_curve(&model_common::navier_stokes("moe"), "navier-stokes", 10);
}

/// Constants other than the shipped files' reach every part of the
/// definition: the residual and the Robin row (which reads `D`); for
/// Navier–Stokes with either derivative option.
#[test]
fn a_restated_builtin_with_other_constants_trains_like_the_builtin() {
    let mut ds = model_common::diffusion_sorption("moe", "");
    for set in [
        "pde.D=2e-3",
        "pde.phi=0.4",
        "pde.rho_s=2500.0",
        "pde.k_f=5e-4",
        "pde.n_f=0.9",
    ] {
        ds.set(set).unwrap();
    }
    assert_trains_like_the_builtin(&ds, restated(&ds), 6);
    let mut ns = model_common::navier_stokes("moe");
    ns.set("pde.nu=1e-2").unwrap();
    assert_trains_like_the_builtin(&ns, restated(&ns), 4);
    // The spectral derivatives, navier-stokes-spectral.toml.
    ns.set("constraint.fd=second-order").unwrap();
    assert_trains_like_the_builtin(&ns, restated(&ns), 4);
}

/// The heat equation (either stencils) and advection, the test problems,
/// with constants other than their files', train like their built-ins.
#[test]
fn the_test_problems_restated_train_like_the_builtins() {
    for (kind, constant, fd) in [
        ("heat", "pde.kappa=0.05", "reference"),
        ("heat", "pde.kappa=0.05", "second-order"),
        ("advection", "pde.speed=-0.7", "reference"),
    ] {
        let constraint = format!("fd = \"{fd}\"");
        let mut scenario =
            model_common::tiny_1d(&format!("tiny-{kind}"), 4, kind, 1.0, "moe", &constraint);
        scenario.set(constant).unwrap();
        assert_trains_like_the_builtin(&scenario, restated(&scenario), 6);
    }
}

/// The paper's code's boundary rows (`pde.boundary = "cell-centres"`, their
/// own file) and then second-order stencils on top (the file read with
/// another default stencil) train like the built-in too.
#[test]
fn the_cell_centre_rows_and_second_order_stencils_train_like_the_builtin() {
    let mut ds = model_common::diffusion_sorption("moe", "");
    for set in ["pde.boundary=cell-centres", "constraint.fd=second-order"] {
        ds.set(set).unwrap();
        assert_trains_like_the_builtin(&ds, restated(&ds), 6);
    }
}

/// The check above can fail: the shipped file's constants are not these.
#[test]
fn the_shipped_constants_train_differently_from_other_ones() {
    let mut ds = model_common::diffusion_sorption("moe", "");
    ds.set("pde.D=2e-3").unwrap();
    let builtin = loss_curve(Model::new(&ds).unwrap(), &ds, 2);
    let file = loss_curve(
        Model::with_pde(&ds, shipped("diffusion-sorption")).unwrap(),
        &ds,
        2,
    );
    assert!(
        (builtin[1] - file[1]).abs() > 1e-6 * builtin[1].abs(),
        "{builtin:?} vs {file:?}"
    );
}

/// The quickstart scenario for 100 steps (slow: run by hand with
/// `cargo test --release -p tessera-solver --test custom_pde_training -- --ignored --nocapture`).
#[test]
#[ignore]
fn quickstart_100_steps_from_toml_trains_like_the_builtin() {
    let path = format!(
        "{}/../scenarios/quickstart.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let scenario = Scenario::from_file(path).unwrap();
    assert_same_curve(&scenario, "diffusion-sorption", 100);
}
