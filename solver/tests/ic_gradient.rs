//! The constraint projection differentiated in its initial conditions, for
//! every way a scenario's PDE builds them in: right-hand sides of initial
//! rows (heat, advection), a coefficient `1/u0` (diffusion–sorption, built in
//! and as its TOML definition, whose derivative comes from dual numbers
//! through the condition's tapes), and an offset repeated over time under a
//! solution map (Navier–Stokes, Burgers defined in TOML). The oracle is
//! central differences of the projected field; a batch gives each sample's
//! gradient, and the basis gradient is `backward`'s.
//!
//! A whole model's prediction, differentiated in its initial conditions
//! through the backbone's features and the layer ([`Model::infer_backward`]),
//! against central differences of [`Model::infer`], for each method.

use tessera_scenarios::Scenario;
use tessera_solver::Model;
use tessera_solver::embed::{ConstraintProjection, WorkerPool};

/// A scenario with its solves driven to round-off and `settings` applied.
fn tight_scenario(text: &str, settings: &[&str]) -> Scenario {
    let mut scenario = Scenario::from_str(text, "ic_gradient.rs").unwrap();
    let tight = [
        "constraint.rtol=1e-14",
        "constraint.atol=1e-15",
        "constraint.max_iters=500",
    ];
    for setting in tight.iter().chain(settings) {
        scenario.set(setting).unwrap();
    }
    scenario
}

/// The layer of a scenario with its solves driven to round-off.
fn tight(text: &str) -> ConstraintProjection {
    ConstraintProjection::from_scenario(&tight_scenario(text, &[])).unwrap()
}

fn wave(i: usize, a: f64) -> f64 {
    ((i as f64) * a).sin()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Checks `⟨ic̄, δic⟩` against central differences of `⟨ū, u(ic)⟩` for a
/// batch of `ics`, returns the initial conditions' gradient.
fn check(layer: &ConstraintProjection, n: usize, ics: &[f64], eps: f64) -> Vec<f64> {
    let pool = WorkerPool::new(2).unwrap();
    let batch = ics.len() / layer.ic_len();
    let g = layer.field_len();
    let basis: Vec<f64> = (0..batch * g * n)
        .map(|i| 0.5 + 0.3 * wave(i, 0.37))
        .collect();
    let u_bar: Vec<f64> = (0..batch * g).map(|i| wave(i, 1.3)).collect();
    let forward = layer.solve(&basis, n, ics, &pool).unwrap();
    assert!(forward.all_converged(), "{:?}", forward.statuses);
    let gradient = layer
        .backward_with_ic(&forward, &basis, &u_bar, &pool)
        .unwrap();
    let basis_bar = layer.backward(&forward, &basis, &u_bar, &pool).unwrap();
    assert_eq!(gradient.basis, basis_bar);
    assert_eq!(gradient.ic.len(), ics.len());
    let direction: Vec<f64> = (0..ics.len()).map(|i| wave(i, 0.71)).collect();
    let loss = |sign: f64| {
        let moved: Vec<f64> = ics
            .iter()
            .zip(&direction)
            .map(|(x, d)| x + sign * eps * d)
            .collect();
        dot(&layer.solve(&basis, n, &moved, &pool).unwrap().u, &u_bar)
    };
    let numeric = (loss(1.0) - loss(-1.0)) / (2.0 * eps);
    let analytic = dot(&gradient.ic, &direction);
    let scale = analytic.abs().max(numeric.abs());
    assert!(
        (analytic - numeric).abs() <= 1e-6 * scale,
        "analytic {analytic:e}, finite differences {numeric:e}"
    );
    assert!(analytic.abs() > 1e-6, "a vanishing gradient tests nothing");
    gradient.ic
}

/// A scenario of `[pde]` and `[grid]` tables, two experts per space axis of
/// `points` points each (the rest only has to be valid).
fn scenario(pde: &str, grid: &str, points: usize) -> String {
    let (experts, modes) = if grid.contains("ny") {
        ("[1, 2, 2]", "[2, 2, 2]")
    } else {
        ("[1, 2]", "[2, 2]")
    };
    format!(
        "name = \"ic-gradient\"\n[pde]\n{pde}\n[grid]\n{grid}\n\
         [data]\ntrain_samples = 2\ntest_samples = 1\n[model]\nmodes = {modes}\n\
         [training]\nbatch_size = 1\nvalidate_samples = 1\n[eval]\nplots = 0\n\
         [constraint]\nmethod = \"moe\"\nexperts = {experts}\npoints = {points}\n"
    )
}

const LINE: &str = "nt = 8\nnx = 16\nt_max = 1.0";

#[test]
fn heat_and_advection_through_their_initial_rows() {
    for kind in ["heat", "advection"] {
        let layer = tight(&scenario(&format!("kind = \"{kind}\""), LINE, 12));
        let one: Vec<f64> = (0..16).map(|i| 0.5 + 0.2 * wave(i, 0.4)).collect();
        let two: Vec<f64> = one.iter().map(|x| 1.0 - x).collect();
        let both = check(&layer, 24, &[one.clone(), two.clone()].concat(), 1e-5);
        // Each sample's gradient is its own (the second sample's basis and
        // cotangent differ, so compare the first alone).
        let alone = check(&layer, 24, &one, 1e-5);
        assert_eq!(both[..16], alone[..]);
    }
}

#[test]
fn diffusion_sorption_through_its_coefficient_built_in_and_defined() {
    let grid = "nt = 8\nnx = 16\nt_max = 500.0";
    let ic: Vec<f64> = (0..16).map(|i| 0.6 + 0.3 * wave(i, 0.3)).collect();
    let built_in = tight(&scenario("kind = \"diffusion-sorption\"", grid, 24));
    check(&built_in, 5, &ic, 1e-7);
    // Its definition: the derivative of the row `u / u0` from dual numbers.
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/pdes/diffusion-sorption.toml"
    );
    let defined = tight(&scenario(
        &format!("kind = \"custom\"\nfile = \"{file}\"\ndomain = [[0.0, 1.0]]"),
        grid,
        24,
    ));
    check(&defined, 5, &ic, 1e-7);
}

#[test]
fn navier_stokes_and_burgers_through_their_offsets() {
    let ns = tight(&scenario(
        "kind = \"navier-stokes\"",
        "nt = 6\nnx = 8\nny = 8\nt_max = 1.0",
        40,
    ));
    let ic: Vec<f64> = (0..64).map(|i| 0.3 * wave(i, 0.5)).collect();
    check(&ns, 8, &ic, 1e-5);
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/pdes/burgers.toml"
    );
    let burgers = tight(&scenario(
        &format!(
            "kind = \"custom\"\nfile = \"{file}\"\ndomain = [[0.0, 1.0]]\nparameters = {{ nu = 0.05 }}"
        ),
        "nt = 8\nnx = 16\nt_max = 0.5",
        24,
    ));
    let ic: Vec<f64> = (0..16).map(|i| 0.4 * wave(i, 0.39) + 0.1).collect();
    check(&burgers, 8, &ic, 1e-5);
}

/// Checks a model's `infer_backward` against central differences of
/// `⟨ū, infer(ics)⟩` along one direction, with the model's drawn variables:
/// the kept prediction equals `infer`'s bit for bit, and a second backward
/// pass gives the same bits.
fn check_model(scenario: &Scenario, ics: &[Vec<f64>], eps: f64) -> Vec<f64> {
    let model = Model::new(scenario).unwrap();
    let stream = 11;
    let fields = |ics: &[Vec<f64>]| model.infer(ics, stream).unwrap().fields.concat();
    let (inference, kept) = model.infer_kept(ics, stream).unwrap();
    assert_eq!(inference.fields.concat(), fields(ics));
    assert!(inference.statuses.iter().all(|s| s.converged()));
    let fields_bar: Vec<f64> = (0..inference.fields.concat().len())
        .map(|i| wave(i, 1.3))
        .collect();
    let ic_bar = model.infer_backward(&kept, &fields_bar).unwrap();
    assert_eq!(ic_bar, model.infer_backward(&kept, &fields_bar).unwrap());
    let s = ics[0].len();
    assert_eq!(ic_bar.len(), ics.len() * s);
    let direction: Vec<f64> = (0..ic_bar.len()).map(|i| wave(i, 0.71)).collect();
    let loss = |sign: f64| {
        let moved: Vec<Vec<f64>> = ics
            .iter()
            .zip(direction.chunks(s))
            .map(|(ic, d)| ic.iter().zip(d).map(|(x, d)| x + sign * eps * d).collect())
            .collect();
        dot(&fields(&moved), &fields_bar)
    };
    let numeric = (loss(1.0) - loss(-1.0)) / (2.0 * eps);
    let analytic = dot(&ic_bar, &direction);
    let scale = analytic.abs().max(numeric.abs());
    assert!(
        (analytic - numeric).abs() <= 1e-6 * scale,
        "{:?}: analytic {analytic:e}, finite differences {numeric:e}",
        scenario.constraint.method
    );
    assert!(analytic.abs() > 1e-6, "a vanishing gradient tests nothing");
    ic_bar
}

/// A small network for the model checks.
const SMALL: [&str; 4] = [
    "model.widths=[4, 6, 6]",
    "model.fc_dim=8",
    "model.n_basis=8",
    "training.batch_size=2",
];

#[test]
fn a_models_prediction_through_its_backbone_and_layer_for_every_method() {
    let text = scenario("kind = \"heat\"", LINE, 12);
    let one: Vec<f64> = (0..16).map(|i| 0.5 + 0.2 * wave(i, 0.4)).collect();
    let two: Vec<f64> = one.iter().map(|x| 1.0 - x).collect();
    let three: Vec<f64> = one.iter().map(|x| x * x).collect();
    for method in ["soft", "hard", "moe"] {
        let setting = format!("constraint.method=\"{method}\"");
        let mut settings = SMALL.to_vec();
        settings.push(&setting);
        let scenario = tight_scenario(&text, &settings);
        // Three samples in chunks of two: each sample's gradient is its own
        // (the others' cotangents differ, so compare the first alone).
        let all = check_model(&scenario, &[one.clone(), two.clone(), three.clone()], 1e-5);
        let alone = check_model(&scenario, std::slice::from_ref(&one), 1e-5);
        assert_eq!(all[..16], alone[..], "{method}");
    }
}

#[test]
fn a_models_prediction_with_log_features_and_an_offset() {
    let grid = "nt = 8\nnx = 16\nt_max = 500.0";
    let text = scenario("kind = \"diffusion-sorption\"", grid, 24);
    let mut settings = SMALL.to_vec();
    settings.push("model.ic_features=\"value-and-log\"");
    let ic: Vec<f64> = (0..16).map(|i| 0.6 + 0.3 * wave(i, 0.3)).collect();
    check_model(&tight_scenario(&text, &settings), &[ic], 1e-7);
    let ns = scenario(
        "kind = \"navier-stokes\"",
        "nt = 6\nnx = 8\nny = 8\nt_max = 1.0",
        40,
    );
    let ic: Vec<f64> = (0..64).map(|i| 0.3 * wave(i, 0.5)).collect();
    check_model(&tight_scenario(&ns, &SMALL), &[ic], 1e-5);
}

/// A float32 backbone (its features and their gradient in single precision,
/// the solves in double) gives the float64 model's gradient to single
/// precision: the same seed draws the same variables, rounded.
#[test]
fn a_float32_backbone_gives_the_float64_gradient_to_single_precision() {
    let text = scenario("kind = \"heat\"", LINE, 12);
    let ic: Vec<f64> = (0..16).map(|i| 0.5 + 0.2 * wave(i, 0.4)).collect();
    let gradient = |dtype: &str| {
        let setting = format!("model.dtype=\"{dtype}\"");
        let mut settings = SMALL.to_vec();
        settings.push(&setting);
        let model = Model::new(&tight_scenario(&text, &settings)).unwrap();
        let ics = std::slice::from_ref(&ic);
        let (inference, kept) = model.infer_kept(ics, 11).unwrap();
        let fields_bar: Vec<f64> = (0..inference.fields[0].len())
            .map(|i| wave(i, 1.3))
            .collect();
        let ic_bar = model.infer_backward(&kept, &fields_bar).unwrap();
        (inference.fields.concat(), ic_bar)
    };
    let ((u32, single), (u64, double)) = (gradient("f32"), gradient("f64"));
    let norm = |v: &[f64]| dot(v, v).sqrt();
    let apart = |a: &[f64], b: &[f64]| {
        let diff: Vec<f64> = a.iter().zip(b).map(|(p, q)| p - q).collect();
        norm(&diff) / norm(b)
    };
    assert!(norm(&double) > 1e-6, "a vanishing gradient tests nothing");
    // The solves amplify the basis's rounding alike in the fields and in
    // their gradient.
    let (fields, gradients) = (apart(&u32, &u64), apart(&single, &double));
    assert!(
        gradients <= 1e-3 && gradients <= 10.0 * fields.max(1e-7),
        "fields {fields:e} apart, gradients {gradients:e}"
    );
}
