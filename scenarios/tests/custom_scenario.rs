//! Scenarios whose `[pde]` is a TOML definition (`kind = "custom"`): the
//! shipped scenarios load with initial families that close where their axes
//! wrap, carry their definition into
//! the run's config, take parameter and definition-file overrides, generate
//! ground truth with the method of lines (Zakharov–Kuznetsov's without
//! energy piling up at its odd grid's scale), and bad tables are typed
//! errors.

use std::path::{Path, PathBuf};

use tessera_scenarios::config::PdeConfig;
use tessera_scenarios::dataset::grid_scale::grid_scale_pile_up;
use tessera_scenarios::dataset::{Generation, Split, generate, validate_solver};
use tessera_scenarios::mol::{MolPde, Stencil};
use tessera_scenarios::{Scenario, ScenarioError};

fn scenario_path(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(file)
}

fn custom(scenario: &Scenario) -> &tessera_scenarios::config::CustomParams {
    match &scenario.pde {
        PdeConfig::Custom(params) => params,
        other => panic!("expected a custom PDE, got {}", other.kind()),
    }
}

/// A small Burgers scenario text pointing at the shipped definition.
fn burgers_text(extra_pde: &str) -> String {
    let definition = scenario_path("pdes/burgers.toml");
    format!(
        "name = \"b\"\n[pde]\nkind = \"custom\"\nfile = {:?}\ndomain = [[0.0, 1.0]]\n{extra_pde}\n\
         [grid]\nnt = 6\nnx = 16\nt_max = 0.2\n[data]\ntrain_samples = 2\ntest_samples = 2\n\
         [data.reference]\nrtol = 1e-8\nrefinement = 2\n[model]\nmodes = [2, 4]\n\
         [constraint]\nexperts = [1, 2]\npoints = 20\n[training]\nbatch_size = 1\n\
         validate_samples = 1\n[eval]\nplots = 1\n",
        definition.display().to_string()
    )
}

#[test]
fn shipped_custom_scenarios_load_with_their_domain_and_periodic_grid() {
    for (file, lo, hi) in [
        ("burgers-small.toml", 0.0, 1.0),
        ("allen-cahn-small.toml", -1.0, 1.0),
        ("kdv-small.toml", 0.0, 30.0),
        (
            "kuramoto-sivashinsky-small.toml",
            0.0,
            32.0 * std::f64::consts::PI,
        ),
        ("allen-cahn-2d-small.toml", 0.0, 1.0),
        ("navier-stokes-toml-small.toml", 0.0, 1.0),
        ("anisotropic-diffusion-small.toml", 0.0, 1.0),
        ("zakharov-kuznetsov-small.toml", 0.0, 1.0),
        ("cahn-hilliard-small.toml", 0.0, std::f64::consts::TAU),
    ] {
        let scenario = Scenario::from_file(scenario_path(file)).unwrap();
        let params = custom(&scenario);
        assert!(params.definition.is_some(), "{file}: definition read");
        // Each family closes where its axis wraps, as its stencil needs
        // (Allen–Cahn's benchmark x² cos πx is kinked there, which its
        // difference stencil takes).
        let pde = params.pde(file).unwrap();
        let spectral = pde.mol().unwrap().stencil() == Stencil::Spectral;
        for seam in pde.seams(&params.domain) {
            assert_eq!(seam.warning(spectral), None, "{file}: {seam:?}");
        }
        let grid = scenario.grid().unwrap();
        let x = grid.axis(1);
        assert!(x.is_periodic(), "{file}");
        assert_eq!(x.coords().len(), scenario.grid.nx);
        assert_eq!(x.coords()[0], lo, "{file}");
        // Periodic: the last point is one spacing short of `hi`.
        let h = (hi - lo) / scenario.grid.nx as f64;
        assert!(
            (x.coords()[scenario.grid.nx - 1] - (hi - h)).abs() < 1e-12,
            "{file}"
        );
    }
}

#[test]
fn the_run_config_carries_the_definition_and_reads_back_without_the_file() {
    let scenario = Scenario::from_file(scenario_path("burgers-small.toml")).unwrap();
    let text = scenario.to_toml_string();
    // Written elsewhere, the `file` path no longer resolves; the text is used.
    let back = Scenario::from_str(&text, "run/config.toml").unwrap();
    assert_eq!(back, scenario);
    let mut moved = back.clone();
    if let PdeConfig::Custom(p) = &mut moved.pde {
        p.file = Some(PathBuf::from("no/such/definition.toml"));
    }
    let reread = Scenario::from_str(&moved.to_toml_string(), "moved").unwrap();
    assert_eq!(custom(&reread).definition, custom(&scenario).definition);
}

#[test]
fn parameter_overrides_reach_the_pde_and_unknown_ones_are_errors() {
    let mut scenario = Scenario::from_str(&burgers_text(""), "b.toml").unwrap();
    scenario.set("pde.parameters.nu=0.25").unwrap();
    assert_eq!(custom(&scenario).parameters["nu"], 0.25);
    let err = scenario.set("pde.parameters.viscosity=0.1").unwrap_err();
    assert!(err.to_string().contains("viscosity"), "{err}");
    assert_eq!(
        custom(&scenario).parameters["nu"],
        0.25,
        "unchanged on error"
    );
    let err = Scenario::from_str(&burgers_text("parameters = { nu = nan }"), "b.toml").unwrap_err();
    assert!(err.to_string().contains("not finite"), "{err}");
}

#[test]
fn an_override_of_the_definition_file_reads_that_file() {
    let mut scenario = Scenario::from_str(&burgers_text(""), "b.toml").unwrap();
    let heat = scenario_path("pdes/heat.toml");
    let heat_text = std::fs::read_to_string(&heat).unwrap();
    scenario
        .set(&format!("pde.file={:?}", heat.display().to_string()))
        .unwrap();
    assert_eq!(custom(&scenario).definition.as_deref(), Some(&*heat_text));
    assert_eq!(custom(&scenario).pde("b").unwrap().name(), "heat");
    // A file that is not there is a typed error, and nothing changes.
    let err = scenario
        .set("pde.file=\"no/such/definition.toml\"")
        .unwrap_err();
    assert!(matches!(err, ScenarioError::Io { .. }), "{err:?}");
    assert_eq!(custom(&scenario).pde("b").unwrap().name(), "heat");
    // Text given with the file takes precedence over reading it.
    let burgers = scenario_path("pdes/burgers.toml");
    scenario
        .set_all(&[
            format!("pde.file={:?}", burgers.display().to_string()),
            format!("pde.definition={heat_text:?}"),
        ])
        .unwrap();
    assert_eq!(custom(&scenario).pde("b").unwrap().name(), "heat");
    // Another key's override keeps the text read before.
    scenario.set("grid.nt=7").unwrap();
    assert_eq!(custom(&scenario).definition.as_deref(), Some(&*heat_text));
}

#[test]
fn bad_custom_tables_are_typed_errors() {
    let wrong_axes =
        burgers_text("").replace("domain = [[0.0, 1.0]]", "domain = [[0.0, 1.0], [0.0, 1.0]]");
    match Scenario::from_str(&wrong_axes, "b.toml") {
        Err(ScenarioError::ConfigInvalid { key, .. }) => assert_eq!(key, "pde.domain"),
        other => panic!("expected pde.domain, got {other:?}"),
    }
    // Such a domain leaves the grid's dimension unknown: `grid.ny` is not
    // asked for (above), the other grid sizes still are.
    match Scenario::from_str(&wrong_axes.replace("nt = 6", "nt = 1"), "b.toml") {
        Err(ScenarioError::ConfigInvalidSeveral { settings, .. }) => {
            let keys: Vec<&str> = settings.iter().map(|s| s.key.as_str()).collect();
            assert_eq!(keys, ["pde.domain", "grid.nt"]);
        }
        other => panic!("expected pde.domain and grid.nt, got {other:?}"),
    }
    let empty = burgers_text("").replace("domain = [[0.0, 1.0]]", "domain = [[1.0, 1.0]]");
    assert!(matches!(
        Scenario::from_str(&empty, "b.toml"),
        Err(ScenarioError::ConfigInvalid { .. })
    ));
    let missing = burgers_text("").replace("pdes/burgers.toml", "pdes/no-such.toml");
    let err = Scenario::from_str(&missing, "b.toml").unwrap_err();
    assert!(matches!(err, ScenarioError::Io { .. }), "{err}");
    assert!(err.to_string().contains("no-such.toml"), "{err}");
    let broken = "name = \"bad\"\nspace = [\"x\"]\nresidual = \"u_t - k * u\"\n[terms]\nu = \"u\"\nu_t = \"dt\"\n";
    let file_line = format!(
        "file = {:?}\n",
        scenario_path("pdes/burgers.toml").display().to_string()
    );
    let text = burgers_text(&format!("definition = {broken:?}")).replace(&file_line, "");
    let err = Scenario::from_str(&text, "s.toml").unwrap_err();
    assert!(matches!(err, ScenarioError::CustomPde(_)), "{err}");
    // `k` is undefined: the error points into the definition text, line 3.
    assert!(err.to_string().contains(":3:"), "{err}");
}

#[test]
fn ground_truth_from_the_definition_agrees_with_an_independent_coarse_solve() {
    // ν = 0.1 keeps the fronts resolved on this 16-point grid.
    let scenario =
        Scenario::from_str(&burgers_text("parameters = { nu = 0.1 }"), "b.toml").unwrap();
    let options = Generation {
        quiet: true,
        ..Generation::for_split(&scenario, Split::Test)
    };
    let data = generate(&scenario, &options).unwrap();
    assert_eq!(data.dims(), vec![6, 16]);
    let grid = scenario.grid().unwrap();
    assert_eq!(data.x(), grid.axis(1).coords());
    // The data were solved on a 2× finer grid; validate-solver re-solves on
    // the data's own grid. They differ by the O(h²) discretisation error only.
    let check = validate_solver(&scenario, &data, true).unwrap();
    assert!(check.rel_l2_mean < 2e-2, "{check:?}");
    assert!(
        check.rel_l2_mean > 0.0,
        "two different grids cannot agree exactly"
    );
}

#[test]
fn the_integrator_setting_reaches_the_ground_truth() {
    let with = |integrator: &str| {
        burgers_text("parameters = { nu = 0.1 }").replace(
            "refinement = 2\n",
            &format!("refinement = 2\nintegrator = {integrator:?}\n"),
        )
    };
    let implicit =
        Scenario::from_str(&burgers_text("parameters = { nu = 0.1 }"), "b.toml").unwrap();
    let explicit = Scenario::from_str(&with("explicit"), "b.toml").unwrap();
    // The default is not written (run configs and data caches of scenarios
    // that do not choose stay as they were); a choice is, and reads back.
    assert!(!implicit.to_toml_string().contains("integrator"));
    let written = explicit.to_toml_string();
    assert!(written.contains("integrator = \"explicit\""), "{written}");
    assert_eq!(Scenario::from_str(&written, "b.toml").unwrap(), explicit);
    let data = |scenario: &Scenario| {
        let options = Generation {
            quiet: true,
            ..Generation::for_split(scenario, Split::Test)
        };
        generate(scenario, &options).unwrap()
    };
    let (a, b) = (data(&implicit), data(&explicit));
    let difference = a
        .trajectories()
        .iter()
        .flatten()
        .zip(b.trajectories().iter().flatten())
        .fold(0.0_f32, |m, (x, y)| m.max((x - y).abs()));
    // Both to rtol 1e-8 on the same grid: equal to the stored float32
    // precision, but computed differently.
    assert!(difference < 1e-5, "{difference}");
    assert!(
        a.trajectories() != b.trajectories(),
        "the integrator setting did not reach generation"
    );
    let err = Scenario::from_str(&with("rk4"), "b.toml").unwrap_err();
    assert!(err.to_string().contains("integrator"), "{err}");
}

#[test]
fn the_toml_navier_stokes_scenario_reproduces_the_built_in_data() {
    // The same physics through two paths: the TOML definition solved by the
    // method of lines (explicit) against the built-in pseudo-spectral
    // generator, from the same draws of the same random field. A short
    // horizon keeps the test fast; the built-in's 2/3-rule dealiasing and
    // second-order steps are what separates them.
    let load = |file: &str| {
        let mut scenario = Scenario::from_file(scenario_path(file)).unwrap();
        scenario.grid.t_max /= 50.0;
        scenario
    };
    let (toml, built_in) = (
        load("navier-stokes-toml-small.toml"),
        load("navier-stokes-small.toml"),
    );
    let data = |scenario: &Scenario| {
        let options = Generation {
            samples: 2,
            quiet: true,
            ..Generation::for_split(scenario, Split::Train)
        };
        generate(scenario, &options).unwrap()
    };
    let (a, b) = (data(&toml), data(&built_in));
    assert_eq!(a.dims(), b.dims());
    for i in 0..2 {
        assert_eq!(a.initial_condition(i), b.initial_condition(i), "sample {i}");
        let (u, v) = (a.trajectory(i), b.trajectory(i));
        let size = v.iter().fold(0.0_f32, |m, x| m.max(x.abs()));
        let difference = u
            .iter()
            .zip(v)
            .fold(0.0_f32, |m, (x, y)| m.max((x - y).abs()));
        let n = v.len() / a.dims()[0];
        let change = v[v.len() - n..]
            .iter()
            .zip(&v[..n])
            .fold(0.0_f32, |m, (x, y)| m.max((x - y).abs()));
        println!("sample {i}: difference {difference:e} of {size}, the field changed by {change}");
        assert!(
            difference < 1e-3 * change,
            "sample {i}: {difference} (change {change})"
        );
    }
}

#[test]
fn the_zakharov_kuznetsov_grid_is_odd_so_that_no_energy_piles_up_at_its_scale() {
    // The shipped scenario on its 33² grid and on 32²: on the even grid the
    // product u u_x aliases into the Nyquist modes, which no odd derivative
    // acts on, and the spectrum rises at its end; the odd grid has no
    // Nyquist mode and its spectrum falls to the last shell. The 2/3 rule
    // (`data.reference.dealias`) removes the aliasing on the even grid too.
    let spectrum_end = |n: usize, dealias: &str| {
        let mut scenario =
            Scenario::from_file(scenario_path("zakharov-kuznetsov-small.toml")).unwrap();
        scenario
            .set_all(&[
                &format!("grid.nx={n}"),
                &format!("grid.ny={n}"),
                &format!("data.reference.dealias={dealias}"),
            ])
            .unwrap();
        let options = Generation {
            samples: 2,
            quiet: true,
            ..Generation::for_split(&scenario, Split::Train)
        };
        let reference = &scenario.data.reference;
        let (rule, refinement) = (reference.dealias, reference.refinement());
        grid_scale_pile_up(&generate(&scenario, &options).unwrap(), rule, refinement)
    };
    let even = spectrum_end(32, "none").expect("the even grid's Nyquist modes gain energy");
    println!("32²: {even}");
    assert!(even.rise > 10.0, "{even:?}");
    assert_eq!(spectrum_end(33, "none"), None);
    assert_eq!(spectrum_end(32, "2/3"), None);
}

#[test]
fn the_dealias_setting_is_written_when_chosen_and_refused_where_it_cannot_apply() {
    let mut spectral = Scenario::from_file(scenario_path("zakharov-kuznetsov-small.toml")).unwrap();
    // The default is not written (data caches of scenarios that do not
    // choose keep their names); a rule is, and reads back.
    // (The text carries the definition, whose comments name the setting.)
    let written_rule = |scenario: &Scenario| {
        let table: toml::Table = scenario.to_toml_string().parse().unwrap();
        table["data"]["reference"]
            .get("dealias")
            .map(|v| v.as_str().unwrap().to_owned())
    };
    spectral.set("data.reference.dealias=none").unwrap();
    assert_eq!(written_rule(&spectral), None);
    spectral.set("data.reference.dealias=1/2").unwrap();
    assert_eq!(written_rule(&spectral).as_deref(), Some("1/2"));
    let written = spectral.to_toml_string();
    assert_eq!(
        Scenario::from_str(&written, "zk.toml")
            .unwrap()
            .data
            .reference
            .dealias,
        tessera_scenarios::mol::Dealias::Half
    );
    let refused = |text: String| match Scenario::from_str(&text, "s.toml") {
        Err(ScenarioError::ConfigInvalid { key, reason, .. }) => {
            assert_eq!(key, "data.reference.dealias");
            reason
        }
        other => panic!("expected data.reference.dealias, got {other:?}"),
    };
    // Burgers' definition uses difference stencils.
    let burgers =
        burgers_text("").replace("refinement = 2\n", "refinement = 2\ndealias = \"2/3\"\n");
    let reason = refused(burgers);
    assert!(reason.contains("spectral stencil"), "{reason}");
    // A built-in PDE has its own reference solver.
    let built_in = std::fs::read_to_string(scenario_path("navier-stokes-small.toml"))
        .unwrap()
        .replace(
            "[data.reference]\n",
            "[data.reference]\ndealias = \"2/3\"\n",
        );
    assert!(
        built_in.contains("dealias"),
        "the scenario has a [data.reference] table"
    );
    let reason = refused(built_in);
    assert!(reason.contains("kind = \"custom\""), "{reason}");
    let err = spectral.set("data.reference.dealias=3/4").unwrap_err();
    assert!(err.to_string().contains("dealias"), "{err}");
}

/// A condition whose value is not finite at a point of the scenario's grid
/// is refused when the scenario is read, naming the definition's file, the
/// condition and the point: the method of lines reported it as a blow-up.
#[test]
fn a_condition_not_finite_on_the_grid_is_refused_when_the_scenario_is_read() {
    let dir = std::env::temp_dir().join(format!("tessera-nan-row-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let definition = dir.join("nan-row.toml");
    std::fs::write(
        &definition,
        "name = \"h\"\nspace = [\"x\"]\nresidual = \"u_t - kappa * u_xx\"\n[parameters]\n\
         kappa = 0.1\n[terms]\nu = \"u\"\nu_t = \"dt\"\nu_xx = \"dxx\"\n[initial]\n\
         u0 = \"sin(pi * x)\"\n[[conditions]]\nat = \"initial\"\nrow = \"u\"\nrhs = \"u0\"\n\
         [[conditions]]\nat = \"x-min\"\nrow = \"u\"\nrhs = \"log(x - 1)\"\n\
         [[conditions]]\nat = \"x-max\"\nrow = \"u\"\n",
    )
    .unwrap();
    let burgers = format!(
        "{:?}",
        scenario_path("pdes/burgers.toml").display().to_string()
    );
    let text =
        burgers_text("").replace(&burgers, &format!("{:?}", definition.display().to_string()));
    let err = Scenario::from_str(&text, "s.toml").unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, ScenarioError::CustomPde(_)), "{message}");
    assert!(message.contains("nan-row.toml:17:6"), "{message}");
    assert!(
        message.contains("`x-min`") && message.contains("x = 0"),
        "{message}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
