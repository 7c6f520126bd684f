//! Scenario config: the shipped files parse, round-trip through
//! `to_toml_string`, defaults are the paper's, and bad input is a typed error
//! naming the file and the key.

use std::path::Path;

use tessera_constraints::Pde;
use tessera_meshes::ops::fd::{FdScheme, MAX_SPACING, MIN_SPACING};
use tessera_scenarios::config::{
    BoundaryPlacement, InitWeights, MAX_SEED, Method, PdeConfig, Schedule,
};
use tessera_scenarios::diffusion_sorption::reference_solver::MIN_CELLS;
use tessera_scenarios::mol::domain::MIN_POINTS;
use tessera_scenarios::mol::{MolDomain, SpatialAxis};
use tessera_scenarios::navier_stokes::reference_solver::MIN_RESOLUTION;
use tessera_scenarios::{AnyPde, Scenario, ScenarioError, diffusion_sorption, navier_stokes};

const MINIMAL: &str = r#"
name = "minimal"
[pde]
kind = "diffusion-sorption"
[grid]
nt = 11
nx = 64
t_max = 500.0
[data]
train_samples = 8
test_samples = 4
[model]
modes = [4, 8]
[constraint]
experts = [1, 4]
points = 100
[training]
batch_size = 2
validate_samples = 2
[eval]
plots = 1
"#;

fn scenario_path(file: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(file)
}

fn expect_invalid(result: Result<Scenario, ScenarioError>, want_key: &str) {
    match result {
        Err(ScenarioError::ConfigInvalid { key, .. }) => assert_eq!(key, want_key),
        other => panic!("expected an invalid `{want_key}`, got {other:?}"),
    }
}

fn edited(from: &str, to: &str) -> String {
    assert!(MINIMAL.contains(from), "test edit `{from}` not in MINIMAL");
    MINIMAL.replacen(from, to, 1)
}

#[test]
fn shipped_scenarios_load_and_round_trip() {
    for file in [
        "diffusion-sorption.toml",
        "diffusion-sorption-small.toml",
        "diffusion-sorption-medium.toml",
        "navier-stokes.toml",
        "navier-stokes-small.toml",
        "navier-stokes-medium.toml",
    ] {
        let scenario = Scenario::from_file(scenario_path(file)).unwrap();
        let text = scenario.to_toml_string();
        let back = Scenario::from_str(&text, "round trip").unwrap();
        assert_eq!(back, scenario, "{file} does not round-trip:\n{text}");
        let grid = scenario.grid().unwrap();
        assert_eq!(grid.shape().dims(), scenario.dims().as_slice());
    }
}

#[test]
fn paper_scenarios_carry_the_paper_setup() {
    // Issue 4 / REFERENCE-NOTES §1, §2: sizes, horizons, sample counts.
    let ds = Scenario::from_file(scenario_path("diffusion-sorption.toml")).unwrap();
    assert_eq!(ds.dims(), [101, 1024]);
    assert_eq!(ds.grid.t_max, 500.0);
    assert_eq!(ds.reference_nx(), 1024);
    assert_eq!((ds.data.train_samples, ds.data.test_samples), (8000, 1000));
    assert_eq!(ds.constraint.experts, [1, 4]);
    let PdeConfig::DiffusionSorption(p) = ds.pde else {
        panic!("wrong kind")
    };
    assert_eq!(
        (p.d, p.phi, p.rho_s, p.k_f, p.n_f),
        (5e-4, 0.29, 2880.0, 3.5e-4, 0.874)
    );
    let ns = Scenario::from_file(scenario_path("navier-stokes.toml")).unwrap();
    assert_eq!(ns.dims(), [64, 64, 64]);
    assert_eq!(ns.grid.t_max, 5.0);
    assert_eq!((ns.data.train_samples, ns.data.test_samples), (4000, 100));
    assert_eq!(ns.eval.resolutions, [64, 128, 256]);
    assert_eq!(ns.reference_resolution(), 256);
    assert_eq!(ns.constraint.init, InitWeights::Zeros);
    assert!(matches!(ns.pde, PdeConfig::NavierStokes(p) if p.nu == 1e-4));
}

#[test]
fn omitted_settings_take_the_paper_values() {
    let s = Scenario::from_str(MINIMAL, "minimal").unwrap();
    // REFERENCE-NOTES §1.
    let PdeConfig::DiffusionSorption(p) = s.pde else {
        panic!("wrong kind")
    };
    assert_eq!(
        (p.d, p.phi, p.rho_s, p.k_f, p.n_f),
        (5e-4, 0.29, 2880.0, 3.5e-4, 0.874)
    );
    assert_eq!(s.seed, 3);
    assert_eq!(s.model.widths, [32, 64, 64, 64, 64, 64]);
    assert_eq!((s.model.fc_dim, s.model.n_basis), (128, 16));
    assert_eq!(s.constraint.method, Method::Moe);
    assert_eq!(
        (
            s.constraint.ridge,
            s.constraint.rtol,
            s.constraint.max_iters
        ),
        (1e-4, 1e-4, 100)
    );
    assert_eq!(s.training.schedule, Schedule::Staircase);
    assert_eq!(
        (s.training.steps, s.training.every, s.training.decay),
        (4000, 800, 0.5)
    );
    assert_eq!(s.data.reference.rtol(), 1e-8);
    assert_eq!(s.reference_nx(), 64);
    assert_eq!(s.eval_samples(), 4);
}

#[test]
fn unknown_keys_are_rejected_naming_file_and_key() {
    for (text, key) in [
        (
            edited("name = \"minimal\"", "name = \"minimal\"\nsede = 1"),
            "sede",
        ),
        (edited("points = 100", "point = 100"), "point"),
        (
            edited(
                "kind = \"diffusion-sorption\"",
                "kind = \"diffusion-sorption\"\nnu = 1.0",
            ),
            "nu",
        ),
        (edited("t_max", "tmax"), "tmax"),
    ] {
        match Scenario::from_str(&text, "bad.toml") {
            Err(ScenarioError::ConfigParse { origin, message }) => {
                assert_eq!(origin, "bad.toml");
                assert!(message.contains(key), "{message} does not name {key}");
            }
            other => panic!("expected a parse error for {key}, got {other:?}"),
        }
    }
}

/// Several typos are named in one report, each with its line (the line
/// found here by searching the text), in the file's order, the one inside
/// the `[pde]` table (which serde reads through the PDE's kind) included.
#[test]
fn every_unknown_key_is_named_at_once() {
    let text = edited("name = \"minimal\"", "name = \"minimal\"\nsede = 1")
        .replace("points = 100", "point = 100")
        .replace(
            "kind = \"diffusion-sorption\"",
            "kind = \"diffusion-sorption\"\nnu = 1.0",
        )
        .replace("batch_size = 2", "batch_sise = 2");
    let line_of = |key: &str| {
        let index = text.lines().position(|l| l.starts_with(key)).unwrap();
        format!("line {}, column 1: unknown field `{key}`", index + 1)
    };
    let message = match Scenario::from_str(&text, "bad.toml") {
        Err(ScenarioError::ConfigParse { message, .. }) => message,
        other => panic!("expected a parse error, got {other:?}"),
    };
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(lines[0], "4 problems:", "{message}");
    let keys = ["sede", "nu", "point", "batch_sise"];
    assert_eq!(lines.len(), 1 + keys.len(), "{message}");
    for (line, key) in lines[1..].iter().zip(keys) {
        assert!(
            line.starts_with(&format!("  {}", line_of(key))),
            "{message}"
        );
    }
}

#[test]
fn unknown_pde_kind_is_rejected() {
    let text = edited("kind = \"diffusion-sorption\"", "kind = \"burgers\"");
    let err = Scenario::from_str(&text, "bad.toml").unwrap_err();
    assert!(
        matches!(&err, ScenarioError::ConfigParse { message, .. } if message.contains("burgers")),
        "{err}"
    );
}

/// `[pde] boundary`: faces by default, the reference's cell centres on request
/// (file or `--set`), recorded in the run's config text, and a typed parse
/// error naming the bad value otherwise.
#[test]
fn boundary_placement_defaults_to_faces_and_round_trips() {
    let placement = |s: &Scenario| match s.pde {
        PdeConfig::DiffusionSorption(p) => p.boundary,
        _ => panic!("not diffusion-sorption"),
    };
    let mut s = Scenario::from_str(MINIMAL, "minimal").unwrap();
    assert_eq!(placement(&s), BoundaryPlacement::Faces);
    s.set("pde.boundary=cell-centres").unwrap();
    assert_eq!(placement(&s), BoundaryPlacement::CellCentres);
    let recorded = s.to_toml_string();
    assert!(
        recorded.contains("boundary = \"cell-centres\""),
        "{recorded}"
    );
    let reread = Scenario::from_str(&recorded, "config.toml").unwrap();
    assert_eq!(placement(&reread), BoundaryPlacement::CellCentres);
    let text = edited(
        "kind = \"diffusion-sorption\"",
        "kind = \"diffusion-sorption\"\nboundary = \"edges\"",
    );
    let err = Scenario::from_str(&text, "bad.toml").unwrap_err();
    assert!(
        matches!(&err, ScenarioError::ConfigParse { message, .. }
            if message.contains("edges") && message.contains("cell-centres")),
        "{err}"
    );
    assert!(matches!(
        s.set("pde.boundary=edges"),
        Err(ScenarioError::Override { .. })
    ));
}

/// A run saved before `[pde] boundary` existed trained with the cell-centre
/// rows, so its `config.toml` reads back with them; a run that recorded the
/// key, and any scenario file read as such, keep the default.
#[test]
fn old_run_configs_keep_the_boundary_rows_they_trained_with() {
    let placement = |s: &Scenario| match s.pde {
        PdeConfig::DiffusionSorption(p) => p.boundary,
        _ => panic!("not diffusion-sorption"),
    };
    let dir = std::env::temp_dir().join(format!("tessera-run-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let old = dir.join("old.toml");
    std::fs::write(&old, MINIMAL).unwrap();
    assert_eq!(
        placement(&Scenario::from_run_config(&old).unwrap()),
        BoundaryPlacement::CellCentres
    );
    assert_eq!(
        placement(&Scenario::from_file(&old).unwrap()),
        BoundaryPlacement::Faces
    );
    let recorded = dir.join("new.toml");
    std::fs::write(
        &recorded,
        Scenario::from_str(MINIMAL, "m").unwrap().to_toml_string(),
    )
    .unwrap();
    assert_eq!(
        placement(&Scenario::from_run_config(&recorded).unwrap()),
        BoundaryPlacement::Faces
    );
    // Errors still point into the file as written.
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, edited("[grid]", "[grid]\nnt = \"many\"")).unwrap();
    let err = Scenario::from_run_config(&bad).unwrap_err();
    assert!(matches!(err, ScenarioError::ConfigParse { .. }), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A run saved before `data.reference` keys its PDE's kind does not read
/// were refused wrote every default (diffusion–sorption's config held `dt`
/// and `refinement`): its `config.toml` reads back as the scenario it
/// trained, while a scenario file with those keys is refused.
#[test]
fn old_run_configs_with_every_reference_default_read_back() {
    let scenario = Scenario::from_str(MINIMAL, "m").unwrap();
    let saved = scenario.to_toml_string();
    assert!(saved.contains("[data.reference]\n"), "{saved}");
    let old = saved.replace(
        "[data.reference]\n",
        "[data.reference]\ndt = 0.001\nrefinement = 4\n",
    );
    let dir = std::env::temp_dir().join(format!("tessera-run-reference-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.toml");
    std::fs::write(&path, old).unwrap();
    assert_eq!(Scenario::from_run_config(&path).unwrap(), scenario);
    let err = Scenario::from_file(&path).unwrap_err().to_string();
    assert!(
        err.contains("data.reference.dt") && err.contains("data.reference.refinement"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn malformed_and_missing_files_are_errors() {
    let err = Scenario::from_str("name = ", "broken.toml").unwrap_err();
    assert!(err.to_string().starts_with("broken.toml"), "{err}");
    let err = Scenario::from_str(&edited("nt = 11", "nt = \"eleven\""), "types.toml").unwrap_err();
    assert!(matches!(err, ScenarioError::ConfigParse { .. }), "{err}");
    let err = Scenario::from_file("/nonexistent/scenario.toml").unwrap_err();
    assert!(
        matches!(&err, ScenarioError::Io { path, .. } if path.ends_with("scenario.toml")),
        "{err}"
    );
}

#[test]
fn cross_field_checks() {
    let o = "o";
    expect_invalid(
        Scenario::from_str(&edited("experts = [1, 4]", "experts = [4]"), o),
        "constraint.experts",
    );
    expect_invalid(
        Scenario::from_str(&edited("experts = [1, 4]", "experts = [1, 65]"), o),
        "constraint.experts",
    );
    // The smallest tile of an 11 × 64 grid split [1, 4] has 11·16 = 176 points.
    expect_invalid(
        Scenario::from_str(&edited("points = 100", "points = 177"), o),
        "constraint.points",
    );
    assert!(Scenario::from_str(&edited("points = 100", "points = 176"), o).is_ok());
    expect_invalid(
        Scenario::from_str(&edited("nx = 64", "nx = 64\nny = 8"), o),
        "grid.ny",
    );
    expect_invalid(
        Scenario::from_str(&edited("nt = 11", "nt = 1"), o),
        "grid.nt",
    );
    expect_invalid(
        Scenario::from_str(&edited("t_max = 500.0", "t_max = -1.0"), o),
        "grid.t_max",
    );
    expect_invalid(
        Scenario::from_str(&edited("t_max = 500.0", "t_max = nan"), o),
        "grid.t_max",
    );
    expect_invalid(
        Scenario::from_str(&edited("modes = [4, 8]", "modes = [4]"), o),
        "model.modes",
    );
    expect_invalid(
        Scenario::from_str(&edited("modes = [4, 8]", "modes = [6, 8]"), o),
        "model.modes",
    );
    expect_invalid(
        Scenario::from_str(&edited("train_samples = 8", "train_samples = 1"), o),
        "training.batch_size",
    );
    expect_invalid(
        Scenario::from_str(&edited("test_samples = 4", "test_samples = 0"), o),
        "data.test_samples",
    );
    expect_invalid(
        Scenario::from_str(
            &edited("t_max = 500.0", "t_max = 500.0\n[data.reference]\nnx = 100"),
            o,
        ),
        "data.reference.nx",
    );
    // The built-in PDEs have their own reference solvers.
    expect_invalid(
        Scenario::from_str(
            &edited(
                "t_max = 500.0",
                "t_max = 500.0\n[data.reference]\nintegrator = \"explicit\"",
            ),
            o,
        ),
        "data.reference.integrator",
    );
}

/// Sizes no machine could hold are refused when the scenario is read: they
/// once overflowed a product (a capacity-overflow panic, or a refined grid
/// that wrapped to zero points) or aborted on a failed allocation. So is a
/// name that would put the run directory or the cached data outside their
/// folders. The bounds themselves are taken.
#[test]
fn sizes_past_any_machine_and_names_that_are_paths_are_refused() {
    let base = Scenario::from_str(MINIMAL, "minimal").unwrap();
    let refused = [
        ("grid.nt=100000000000", "grid.nt"),
        ("grid.nx=16777217", "grid.nx"),
        (
            "data.train_samples=9223372036854775807",
            "data.train_samples",
        ),
        ("data.test_samples=16777217", "data.test_samples"),
        ("model.fc_dim=9223372036854775807", "model.fc_dim"),
        ("model.n_basis=65537", "model.n_basis"),
        ("model.widths=[9223372036854775807, 4]", "model.widths"),
        (
            "data.reference.refinement=4611686018427387904",
            "data.reference.refinement",
        ),
        ("data.reference.nx=9223372036854775792", "data.reference.nx"),
        ("name=\"../../escape\"", "name"),
        ("name=\"/tmp/absolute\"", "name"),
        ("name=\"\"", "name"),
        ("name=\".hidden\"", "name"),
        ("name=\"a\\nb\"", "name"),
    ];
    for (setting, key) in refused {
        let mut s = base.clone();
        expect_invalid(s.set(setting).map(|()| s.clone()), key);
    }
    // 2²⁴ time levels × 128 points is 2³¹: the largest grid.
    let mut s = base.clone();
    s.set_all(&["grid.nt=16777216", "grid.nx=128"]).unwrap();
    expect_invalid(s.set("grid.nx=130").map(|()| s.clone()), "grid");
    let mut s = base.clone();
    for taken in ["model.n_basis=65536", "name=\"ds_v2.1-final\""] {
        s.set(taken).unwrap();
    }
}

/// Evaluation resolutions are checked when the scenario is read, not after
/// training: only Navier–Stokes is evaluated at other resolutions, and each
/// grid must suit the model (the small scenario's modes [4, 6, 6] need 12
/// points per axis, so not 8²; at 16² a tile holds 16 × 8 × 8 = 1 024
/// points, fewer than its 2 000).
#[test]
fn evaluation_resolutions_are_checked_before_training() {
    let mut ds = Scenario::from_str(MINIMAL, "minimal").unwrap();
    expect_invalid(
        ds.set("eval.resolutions=[32]").map(|()| ds.clone()),
        "eval.resolutions",
    );
    let ns = Scenario::from_file(scenario_path("navier-stokes-small.toml")).unwrap();
    for bad in ["[8]", "[16, 64]"] {
        let mut s = ns.clone();
        let set = format!("eval.resolutions={bad}");
        expect_invalid(s.set(&set).map(|()| s.clone()), "eval.resolutions");
    }
    let mut s = ns.clone();
    s.set("eval.resolutions=[64]").unwrap();
}

/// A Navier–Stokes `dt` that asks the reference solver for more than
/// `MAX_STEPS` steps is refused when the scenario is read, not found out by
/// a generation that never ends. The small scenario has 15 intervals of 1/3:
/// `dt = 5e-7` takes 666 667 steps in each, 10 000 005 in all (over the cap),
/// `dt = 1e-6` 5 000 010.
#[test]
fn a_navier_stokes_dt_beyond_the_step_cap_is_refused() {
    use tessera_scenarios::navier_stokes::reference_solver::MAX_STEPS;
    assert_eq!(MAX_STEPS, 10_000_000);
    let base = Scenario::from_file(scenario_path("navier-stokes-small.toml")).unwrap();
    let mut over = base.clone();
    let err = over.set_all(&["data.reference.dt=5e-7"]).unwrap_err();
    // Small and large values are shown in exponent form.
    let shown = err.to_string();
    assert!(shown.contains("`data.reference.dt` = 5e-7"), "{shown}");
    assert!(shown.contains("10000005 steps"), "{shown}");
    assert_eq!(invalid_keys(Err(err)), ["data.reference.dt"]);
    let mut under = base.clone();
    under.set_all(&["data.reference.dt=1e-6"]).unwrap();
    assert_eq!(under.data.reference.dt(), 1e-6);
}

/// The keys of an error that names one or several invalid settings.
fn invalid_keys(result: Result<Scenario, ScenarioError>) -> Vec<String> {
    match result {
        Err(ScenarioError::ConfigInvalid { key, .. }) => vec![key],
        Err(ScenarioError::ConfigInvalidSeveral { settings, .. }) => {
            settings.into_iter().map(|s| s.key).collect()
        }
        other => panic!("expected invalid settings, got {other:?}"),
    }
}

/// One validation names every setting that is wrong on its own, each once
/// and in the file's order, and its message lists them one per line; a
/// setting measured against a wrong one is not named as well.
#[test]
fn every_invalid_setting_is_named_at_once() {
    let text = edited("nt = 11", "nt = 1")
        .replace("test_samples = 4", "test_samples = 0")
        .replace(
            "batch_size = 2",
            "batch_size = 2\nlr = -1.0\nclip_norm = nan",
        );
    let result = Scenario::from_str(&text, "several.toml");
    let shown = result.as_ref().unwrap_err().to_string();
    assert_eq!(
        invalid_keys(result),
        [
            "grid.nt",
            "data.test_samples",
            "training.lr",
            "training.clip_norm"
        ]
    );
    let expected = "several.toml: 4 invalid settings:\n  \
                    `grid.nt` = 1: must be at least 2\n  \
                    `data.test_samples` = 0: must be at least 1\n  \
                    `training.lr` = -1: must be finite and positive\n  \
                    `training.clip_norm` = NaN: must be finite and non-negative";
    assert_eq!(shown, expected);

    // Settings measured against a wrong one wait for it: with `nt = 1` the
    // modes (4 of an axis of 1) and the experts' points (100 of a tile of
    // 16) go unnamed, with no test samples the validation and evaluation
    // counts (2, and 1 plot) too; each is named once its measure is mended.
    let text = edited("nt = 11", "nt = 1").replace("points = 100", "points = 177");
    assert_eq!(invalid_keys(Scenario::from_str(&text, "o")), ["grid.nt"]);
    let text = edited("nt = 11", "nt = 11\nnx = 1").replace("nx = 64\n", "");
    assert_eq!(invalid_keys(Scenario::from_str(&text, "o")), ["grid.nx"]);
    let text = edited("test_samples = 4", "test_samples = 0");
    assert_eq!(
        invalid_keys(Scenario::from_str(&text, "o")),
        ["data.test_samples"]
    );
    let text =
        edited("test_samples = 4", "test_samples = 1").replace("points = 100", "points = 177");
    assert_eq!(
        invalid_keys(Scenario::from_str(&text, "o")),
        ["constraint.points", "training.validate_samples"]
    );
}

#[test]
fn hard_method_forces_one_expert() {
    let mut s = Scenario::from_str(MINIMAL, "minimal").unwrap();
    assert_eq!(s.expert_split(), [1, 4]);
    s.set("constraint.method=hard").unwrap();
    assert_eq!(s.expert_split(), [1, 1]);
    // One global tile of 11 × 64 = 704 points now bounds `points`.
    s.set("constraint.points=704").unwrap();
    assert!(s.set("constraint.points=705").is_err());
}

/// Overrides that bound each other apply together, in either order, where
/// one at a time the first is refused; a bad value names its own override, a
/// failed validation all of them, and a failure leaves the scenario as it
/// was.
#[test]
fn dependent_overrides_apply_together() {
    let mut s = Scenario::from_str(MINIMAL, "minimal").unwrap();
    s.set("eval.samples=4").unwrap();
    s.set("eval.plots=4").unwrap();
    // Alone, fewer samples than plots is refused.
    assert!(s.set("eval.samples=1").is_err());
    let before = s.clone();
    s.set_all(&["eval.samples=1", "eval.plots=1"]).unwrap();
    assert_eq!((s.eval.samples, s.eval.plots), (Some(1), 1));
    let mut t = before.clone();
    t.set_all(&["eval.plots=1", "eval.samples=1"]).unwrap();
    assert_eq!(t, s);

    let mut u = before.clone();
    let err = u
        .set_all(&["eval.samples=1", "training.lr=fast"])
        .unwrap_err();
    assert!(
        matches!(err, ScenarioError::Override { ref text, .. } if text == "training.lr=fast"),
        "{err}"
    );
    let err = u
        .set_all(&["eval.samples=1", "training.lr=2e-3"])
        .unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.contains("--set eval.samples=1 --set training.lr=2e-3"),
        "{shown}"
    );
    // Several malformed overrides are all named, each with its reason.
    let err = u
        .set_all(&[
            "training.lr=fast",
            "eval.samples=1",
            "constraint.methd=soft",
        ])
        .unwrap_err();
    match &err {
        ScenarioError::OverridesRejected { errors } => {
            let texts: Vec<&str> = (errors.iter())
                .map(|e| match e {
                    ScenarioError::Override { text, .. } => text.as_str(),
                    other => panic!("expected an override error, got {other:?}"),
                })
                .collect();
            assert_eq!(texts, ["training.lr=fast", "constraint.methd=soft"]);
        }
        other => panic!("expected both overrides rejected, got {other:?}"),
    }
    let shown = err.to_string();
    assert!(
        shown.starts_with("2 overrides rejected:\n  override `training.lr=fast`: "),
        "{shown}"
    );
    assert!(
        shown.contains("\n  override `constraint.methd=soft`: "),
        "{shown}"
    );
    // Several overrides that are each wrong are all named, once.
    let err = u.set_all(&["grid.nt=1", "training.lr=-1"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "--set grid.nt=1 --set training.lr=-1: 2 invalid settings:\n  \
         `grid.nt` = 1: must be at least 2\n  \
         `training.lr` = -1: must be finite and positive"
    );
    assert_eq!(u, before);
}

#[test]
fn set_applies_values_like_the_file() {
    let mut s = Scenario::from_str(MINIMAL, "minimal").unwrap();
    s.set("constraint.method=soft").unwrap();
    assert_eq!(s.constraint.method, Method::Soft);
    assert_eq!(s.backbone_outputs(), 1);
    s.set("constraint.method = \"moe\"").unwrap();
    assert_eq!(s.backbone_outputs(), 16);
    s.set("training.lr=2e-3").unwrap();
    assert_eq!(s.training.lr, 2e-3);
    s.set("training.loss.data=0.5").unwrap();
    assert_eq!(s.training.loss.data, 0.5);
    s.set("data.train_file=/tmp/train.h5").unwrap();
    assert_eq!(
        s.data.train_file.as_deref(),
        Some(Path::new("/tmp/train.h5"))
    );
    s.set("pde.D=1e-3").unwrap();
    assert!(matches!(s.pde, PdeConfig::DiffusionSorption(p) if p.d == 1e-3));
    s.set("model.modes=[2, 2]").unwrap();
    assert_eq!(s.model.modes, [2, 2]);
}

#[test]
fn set_rejects_bad_overrides_and_leaves_the_scenario_unchanged() {
    let original = Scenario::from_str(MINIMAL, "minimal").unwrap();
    let mut s = original.clone();
    for (text, needle) in [
        ("constraint.methd=soft", "methd"),
        ("training.nonsense.x=1", "nonsense"),
        ("constraint.method=squishy", "squishy"),
        ("training.lr=fast", "lr"),
        ("grid.nt.x=3", "grid.nt"),
        ("no equals sign", "key"),
        ("grid..nt=3", "grid..nt"),
    ] {
        match s.set(text) {
            Err(ScenarioError::Override { reason, .. }) => {
                assert!(
                    reason.contains(needle),
                    "`{text}`: {reason} does not name {needle}"
                );
            }
            other => panic!("`{text}`: expected an override error, got {other:?}"),
        }
    }
    expect_invalid(
        s.set("constraint.points=0").map(|()| s.clone()),
        "constraint.points",
    );
    assert_eq!(s, original);
}

#[test]
fn training_horizon_cuts_the_grid_and_rejects_bad_values() {
    // MINIMAL's time levels are linspace(0, 500, 11): 50 apart.
    let with = |h: &str| {
        Scenario::from_str(
            &edited("batch_size = 2", &format!("batch_size = 2\nhorizon = {h}")),
            "o",
        )
    };
    let s = with("400.0").unwrap();
    assert_eq!(s.training.horizon, Some(400.0));
    // t = 0, 50, …, 400: nine levels; the grid's 10 intervals over the window's 8.
    assert_eq!(s.training_levels(), 9);
    let window = s.training_scenario();
    assert_eq!((window.grid.nt, window.grid.t_max), (9, 400.0));
    assert_eq!(window.training.horizon, None);
    assert_eq!(s.time_feature_scale(), 10.0 / 8.0);
    // Between levels the earlier one ends the window.
    assert_eq!(with("420.0").unwrap().training_scenario(), window);
    // Saved and read back (the run's config.toml) with the horizon.
    let back = Scenario::from_str(&s.to_toml_string(), "round trip").unwrap();
    assert_eq!(back, s);
    // Without a horizon nothing changes.
    let plain = Scenario::from_str(MINIMAL, "o").unwrap();
    assert_eq!(plain.training_levels(), 11);
    assert_eq!(plain.training_scenario(), plain);
    assert_eq!(plain.time_feature_scale(), 1.0);
    for bad in ["0.0", "-100.0", "nan", "inf", "500.0", "600.0", "30.0"] {
        expect_invalid(with(bad), "training.horizon");
    }
    // t ≤ 300 keeps 7 levels: too few for 4 time modes; the error says the
    // training window is at fault.
    match with("300.0") {
        Err(ScenarioError::ConfigInvalid { origin, key, .. }) => {
            assert_eq!(key, "model.modes");
            assert!(origin.contains("training window"), "{origin}");
        }
        other => panic!("expected the window's modes to be rejected, got {other:?}"),
    }
    let mut set = Scenario::from_str(MINIMAL, "o").unwrap();
    set.set("training.horizon=400").unwrap();
    assert_eq!(set, s);
    assert!(set.set("training.horizon=501").is_err());
    assert_eq!(set, s, "a rejected override leaves the scenario unchanged");
}

/// `s` with the size at `key` set to `n` directly, not validated.
fn resized(s: &Scenario, key: &str, n: usize) -> Scenario {
    let mut s = s.clone();
    match key {
        "grid.nt" => s.grid.nt = n,
        "grid.nx" => s.grid.nx = n,
        "grid.ny" => s.grid.ny = Some(n),
        other => unreachable!("no size `{other}` here"),
    }
    s
}

/// Whether the model's PDE terms build on the scenario's grid, as the model
/// builds them.
fn terms_build(s: &Scenario) -> bool {
    let pde = AnyPde::from_config(&s.pde, s.constraint.fd).unwrap();
    pde.terms(&s.grid().unwrap()).is_ok()
}

/// Whether the method of lines takes the scenario's grid (a custom PDE's).
fn mol_domain_builds(s: &Scenario) -> bool {
    let PdeConfig::Custom(p) = &s.pde else {
        panic!("not a PDE defined in TOML");
    };
    let axes = (p.domain.iter().zip(&s.dims()[1..]))
        .map(|(&[lo, hi], &points)| SpatialAxis { lo, hi, points })
        .collect();
    MolDomain::new(axes, s.data.reference.refinement()).is_ok()
}

/// Whether the diffusion–sorption reference solver takes the scenario's cells.
fn ds_solver_builds(s: &Scenario) -> bool {
    let PdeConfig::DiffusionSorption(p) = &s.pde else {
        panic!("not diffusion–sorption");
    };
    diffusion_sorption::ReferenceSolver::new(p, s.reference_nx(), s.data.reference.rtol()).is_ok()
}

/// Whether the Navier–Stokes reference solver takes the scenario's resolution.
fn ns_solver_builds(s: &Scenario) -> bool {
    let PdeConfig::NavierStokes(p) = &s.pde else {
        panic!("not Navier–Stokes");
    };
    let dt = s.data.reference.dt();
    navier_stokes::ReferenceSolver::new(p.nu, s.reference_resolution(), dt).is_ok()
}

/// A grid axis shorter than what is built on it — the PDE's difference
/// stencils (the model's terms), or the reference solver's grid — is
/// refused when the scenario is read, naming the key, not when the model
/// or the data are built. Each bound is the builder's own constant; at it
/// the scenario is valid and the builder takes the grid, one point below
/// the builder refuses it and so does the validation.
#[test]
fn axes_too_short_for_the_stencils_or_the_reference_solver_are_refused() {
    let load = |file: &str, settings: &[&str]| {
        let mut s = Scenario::from_file(scenario_path(file)).unwrap();
        s.set_all(settings).unwrap();
        s
    };
    let ds = |settings: &[&str]| {
        let mut s = Scenario::from_str(MINIMAL, "minimal").unwrap();
        s.set_all(settings).unwrap();
        s
    };
    let mut ns = load(
        "navier-stokes-small.toml",
        &["model.modes=[4,1,6]", "constraint.points=10"],
    );
    (ns.data.reference.resolution, ns.eval.resolutions) = (None, Vec::new());
    let second_order = "constraint.fd=second-order";
    let files = [
        "data.train_file=train.safetensors",
        "data.test_file=test.safetensors",
    ];
    type Builds = fn(&Scenario) -> bool;
    // (what, scenario, key, bound, the builder that has the bound)
    let cases: [(&str, Scenario, &str, usize, Builds); 8] = [
        (
            "diffusion–sorption, second-order u_xx",
            ds(&[second_order, "model.modes=[4,1]", "constraint.points=10"]),
            "grid.nx",
            FdScheme::SecondOrder.min_points(2),
            terms_build,
        ),
        (
            "diffusion–sorption, second-order u_t",
            ds(&[second_order, "model.modes=[1,8]", "constraint.points=10"]),
            "grid.nt",
            FdScheme::SecondOrder.min_points(1),
            terms_build,
        ),
        (
            "diffusion–sorption, reference solver cells",
            ds(&[
                "model.modes=[4,1]",
                "constraint.experts=[1,1]",
                "constraint.points=10",
            ]),
            "grid.nx",
            MIN_CELLS,
            ds_solver_builds,
        ),
        (
            "Kuramoto–Sivashinsky, spectral x: the method of lines",
            load(
                "kuramoto-sivashinsky-small.toml",
                &["model.modes=[8,1]", "constraint.points=10"],
            ),
            "grid.nx",
            MIN_POINTS,
            mol_domain_builds,
        ),
        (
            "Kuramoto–Sivashinsky, second-order u_t",
            load(
                "kuramoto-sivashinsky-small.toml",
                &["model.modes=[1,16]", "constraint.points=10"],
            ),
            "grid.nt",
            FdScheme::SecondOrder.min_points(1),
            terms_build,
        ),
        (
            "anisotropic diffusion from files, periodic stencils along y",
            load(
                "anisotropic-diffusion-small.toml",
                &[&files[..], &["model.modes=[4,6,1]", "constraint.points=10"]].concat(),
            ),
            "grid.ny",
            FdScheme::Periodic.min_points(2),
            terms_build,
        ),
        (
            "Navier–Stokes, reference solver resolution (grid.nx)",
            ns.clone(),
            "grid.nx",
            MIN_RESOLUTION,
            ns_solver_builds,
        ),
        (
            "Navier–Stokes, spectral: second-order w_t",
            {
                let mut s = ns.clone();
                s.set_all(&[second_order, "model.modes=[1,6,6]"]).unwrap();
                s
            },
            "grid.nt",
            FdScheme::SecondOrder.min_points(1),
            terms_build,
        ),
    ];
    for (what, base, key, bound, builds) in cases {
        let at = resized(&base, key, bound);
        at.validate().unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(builds(&at), "{what}: the builder refuses {key} = {bound}");
        let below = resized(&base, key, bound - 1);
        assert!(
            !builds(&below),
            "{what}: the builder takes {key} = {bound} − 1"
        );
        let err = below.validate().unwrap_err();
        let shown = err.to_string();
        println!("{what}: {shown}");
        assert!(
            shown.contains(&format!("at least {bound}")),
            "{what}: {shown}"
        );
        assert_eq!(invalid_keys(Err(err)), [key], "{what}");
    }
    // A spectral x takes 2 points; only the method of lines needs 3, and it
    // does not run when both splits come from files.
    let ks = load(
        "kuramoto-sivashinsky-small.toml",
        &[&files[..], &["model.modes=[8,1]", "constraint.points=10"]].concat(),
    );
    let two = resized(&ks, "grid.nx", MIN_POINTS - 1);
    two.validate().unwrap();
    assert!(terms_build(&two));
}

/// Seeds are TOML integers, which are 64-bit signed: `0..=MAX_SEED` is
/// taken, from a file and from `--set`, and round-trips; more, or a
/// negative one, is an error that says the range (not "u64", nor "invalid
/// type: string" for a number too large for TOML that `--set` once took as
/// text); a larger seed set in code is refused by the validation.
#[test]
fn seeds_beyond_toml_integers_and_negative_seeds_are_refused_with_the_range() {
    let range = format!("0..={MAX_SEED}");
    assert_eq!(MAX_SEED, i64::MAX as u64);
    let with_seed = |seed: &str| Scenario::from_str(&format!("seed = {seed}\n{MINIMAL}"), "o");
    let s = with_seed(&MAX_SEED.to_string()).unwrap();
    assert_eq!(s.seed, MAX_SEED);
    assert_eq!(Scenario::from_str(&s.to_toml_string(), "again").unwrap(), s);
    let mut set = s.clone();
    set.set("training.lr=2e-3").unwrap();
    for beyond in [MAX_SEED + 1, u64::MAX] {
        let err = with_seed(&beyond.to_string()).unwrap_err();
        assert!(err.to_string().contains(&range), "{err}");
        expect_invalid(Err(err), "seed");
        let mut s = s.clone();
        s.seed = beyond;
        expect_invalid(s.validate().map(|()| s.clone()), "seed");
    }
    for (seed, says) in [("-1", "`-1`"), ("\"5\"", "string"), ("1.5", "1.5")] {
        match with_seed(seed) {
            Err(ScenarioError::ConfigParse { message, .. }) => {
                assert!(
                    message.contains(&range) && message.contains(says),
                    "{message}"
                );
            }
            other => panic!("seed = {seed}: expected a parse error, got {other:?}"),
        }
    }
    let mut s = Scenario::from_str(MINIMAL, "o").unwrap();
    s.set(&format!("seed={MAX_SEED}")).unwrap();
    assert_eq!(s.seed, MAX_SEED);
    let beyond_toml = format!("{}", i128::from(i64::MAX) + 1);
    for (seed, says) in [
        (beyond_toml.as_str(), format!("..={}", i64::MAX)),
        ("18446744073709551615", format!("..={}", i64::MAX)),
        ("-1", range.clone()),
    ] {
        match s.clone().set(&format!("seed={seed}")) {
            Err(ScenarioError::Override { reason, .. }) => {
                assert!(
                    reason.contains("`seed`") && reason.contains(&says),
                    "{reason}"
                );
                assert!(!reason.contains("string"), "{reason}");
            }
            other => panic!("seed={seed}: expected an override error, got {other:?}"),
        }
    }
}

/// `s` with the spacing that `key` sets made `h` directly, not validated:
/// the time spacing `t_max / (nt − 1)` (the reference solver's step moved
/// inside the new `t_max`), or a custom PDE's x spacing (one axis, periodic:
/// `(hi − lo) / nx`). Exactly `h` when the divisor is a power of two.
fn spaced(s: &Scenario, key: &str, h: f64) -> Scenario {
    let mut s = s.clone();
    match (key, &mut s.pde) {
        ("grid.t_max", _) => {
            s.grid.t_max = h * (s.grid.nt - 1) as f64;
        }
        ("pde.domain", PdeConfig::Custom(p)) => p.domain = vec![[0.0, h * s.grid.nx as f64]],
        (other, _) => unreachable!("no spacing set by `{other}` here"),
    }
    s
}

/// A grid axis whose spacing lies outside the finite differences' range
/// `[MIN_SPACING, MAX_SPACING]` is refused when the scenario is read, naming
/// the key that sets it (`grid.t_max` for time, `pde.domain` for a custom
/// PDE's space), not when the model's stencils are built. At each bound the
/// scenario is valid and the model's terms build; one float beyond it, the
/// build refuses the grid and so does the validation.
#[test]
fn spacings_beyond_the_finite_differences_range_are_refused() {
    // 32 time intervals and 64 periodic x points: spacings exactly as set.
    let mut ds = Scenario::from_str(MINIMAL, "minimal").unwrap();
    ds.set("grid.nt=33").unwrap();
    let mut burgers = Scenario::from_file(scenario_path("burgers-small.toml")).unwrap();
    burgers.set("grid.nt=33").unwrap();
    // Unrefined, so that the method of lines' solver grid is the output
    // grid; its refined spacing has its own check (tests/mol_refined_spacing.rs).
    burgers.set("data.reference.refinement=1").unwrap();
    assert_eq!(burgers.grid.nx, 64);
    // (what, scenario, key, axis)
    let cases = [
        ("diffusion–sorption, t", ds, "grid.t_max", 0),
        ("Burgers, t", burgers.clone(), "grid.t_max", 0),
        ("Burgers, periodic x", burgers, "pde.domain", 1),
    ];
    let bounds = [
        (MIN_SPACING, MIN_SPACING.next_down()),
        (MAX_SPACING, MAX_SPACING.next_up()),
    ];
    for (what, base, key, axis) in cases {
        for (bound, beyond) in bounds {
            let at = spaced(&base, key, bound);
            assert_eq!(at.grid().unwrap().axis(axis).spacing(), bound, "{what}");
            at.validate()
                .unwrap_or_else(|e| panic!("{what}, spacing {bound:e}: {e}"));
            assert!(terms_build(&at), "{what}: the stencils refuse {bound:e}");
            let out = spaced(&base, key, beyond);
            assert!(!terms_build(&out), "{what}: the stencils take {beyond:e}");
            let err = out.validate().unwrap_err();
            let shown = err.to_string();
            println!("{what}: {shown}");
            assert!(
                shown.contains(&format!("spacing of {beyond:e}")) && shown.contains("h^-4"),
                "{what}: {shown}"
            );
            assert_eq!(invalid_keys(Err(err)), [key], "{what}");
        }
    }
}

/// `--set pde.kind=…` switches the PDE: the old kind's constants, filled in
/// when the file was read, are dropped and the new kind's defaults apply;
/// the new kind's constants may be set beside it, in either order.
#[test]
fn an_override_of_the_pde_kind_takes_the_new_kinds_defaults() {
    let mut s = Scenario::from_str(MINIMAL, "minimal").unwrap();
    s.set("pde.kind=heat").unwrap();
    assert!(matches!(s.pde, PdeConfig::Heat(p) if p == Default::default()));
    for overrides in [
        ["pde.kind=advection", "pde.speed=0.5"],
        ["pde.speed=0.5", "pde.kind=advection"],
    ] {
        let mut s = Scenario::from_str(MINIMAL, "minimal").unwrap();
        s.set_all(&overrides).unwrap();
        assert!(
            matches!(s.pde, PdeConfig::Advection(p) if p.speed == 0.5),
            "{overrides:?}"
        );
    }
    // The same kind keeps its constants.
    let mut s = Scenario::from_str(MINIMAL, "minimal").unwrap();
    s.set_all(&["pde.phi=0.5", "pde.kind=diffusion-sorption"])
        .unwrap();
    assert!(matches!(s.pde, PdeConfig::DiffusionSorption(p) if p.phi == 0.5));
}

/// A `data.reference` key is refused where the PDE kind's reference solver
/// does not read it (it changed nothing, silently), and checked only where
/// it is read: the default Navier–Stokes `dt` is no error of another kind's
/// short `t_max`. The defaults themselves are never refused.
#[test]
fn reference_keys_a_kind_does_not_read_are_refused_and_unread_defaults_unchecked() {
    let ds = Scenario::from_str(MINIMAL, "minimal").unwrap();
    let mut short = ds.clone();
    short.set("grid.t_max=0.0005").unwrap();
    let burgers = Scenario::from_file(scenario_path("burgers-small.toml")).unwrap();
    let mut short = burgers.clone();
    short.set("grid.t_max=0.0005").unwrap();
    let ns = Scenario::from_file(scenario_path("navier-stokes-small.toml")).unwrap();
    let refused = [
        (
            &ds,
            "data.reference.refinement=7",
            "data.reference.refinement",
        ),
        (
            &ds,
            "data.reference.resolution=64",
            "data.reference.resolution",
        ),
        (&ds, "data.reference.dt=0.5", "data.reference.dt"),
        (&burgers, "data.reference.nx=64", "data.reference.nx"),
        (
            &burgers,
            "data.reference.resolution=64",
            "data.reference.resolution",
        ),
        (&burgers, "data.reference.dt=0.001", "data.reference.dt"),
        (&ns, "data.reference.rtol=1e-7", "data.reference.rtol"),
        (
            &ns,
            "data.reference.refinement=2",
            "data.reference.refinement",
        ),
    ];
    for (base, setting, key) in refused {
        let mut s = base.clone();
        let err = s.set(setting).unwrap_err();
        assert!(err.to_string().contains("applies to kind = "), "{err}");
        expect_invalid(Err(err), key);
    }
    // Each kind takes what it reads.
    for (base, setting) in [
        (&ds, "data.reference.nx=128"),
        (&ds, "data.reference.rtol=1e-6"),
        (&burgers, "data.reference.refinement=2"),
        (&ns, "data.reference.dt=0.002"),
    ] {
        base.clone().set(setting).unwrap();
    }
}
