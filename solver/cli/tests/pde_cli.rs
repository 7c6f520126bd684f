//! `tessera pde check|emit`: the CLI reads a definition directly or through a
//! scenario's custom `[pde]`, emits exactly the library's CUDA C, and reports
//! bad definitions with their file, line and column.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tessera_scenarios::custom::CustomPde;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tessera(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("the tessera binary runs")
}

/// A fresh directory under the system's temp dir, unique to this process.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tessera-pde-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn emit_prints_the_definitions_cuda_source() {
    let path = "scenarios/pdes/diffusion-sorption.toml";
    let expected = CustomPde::from_file(repo().join(path)).unwrap().emit_cuda();
    let printed = stdout(&tessera(&["pde", "emit", "--target", "cuda", path]));
    assert_eq!(printed, expected);
    assert!(printed.contains("__device__"), "{printed}");
}

#[test]
fn a_scenario_with_a_custom_pde_emits_its_definition() {
    let dir = scratch("scenario");
    let definition = repo().join("scenarios/pdes/diffusion-sorption.toml");
    let scenario = dir.join("scenario.toml");
    std::fs::write(
        &scenario,
        format!(
            "name = \"ds-custom\"\n[pde]\nkind = \"custom\"\nfile = {:?}\ndomain = [[0.0, 1.0]]\n\
             [grid]\nnt = 5\nnx = 8\nt_max = 1.0\n[data]\ntrain_samples = 2\ntest_samples = 1\n\
             [model]\nmodes = [2, 2]\n[constraint]\nexperts = [1, 2]\npoints = 10\n\
             [training]\nbatch_size = 1\nvalidate_samples = 1\n[eval]\nplots = 1\n",
            definition.display().to_string()
        ),
    )
    .unwrap();
    let via_scenario = stdout(&tessera(&["pde", "emit", scenario.to_str().unwrap()]));
    let direct = CustomPde::from_file(&definition).unwrap().emit_cuda();
    assert_eq!(via_scenario, direct);
    let check = stdout(&tessera(&["pde", "check", scenario.to_str().unwrap()]));
    assert!(check.contains("ok") && check.contains("u_t"), "{check}");
}

#[test]
fn a_bad_definition_names_file_line_and_column() {
    let dir = scratch("bad");
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        "name = \"bad\"\nspace = [\"x\"]\nresidual = \"u_t - nu * u_xxx\"\n[parameters]\nnu = 0.1\n\
         [terms]\nu_t = \"dt\"\nu_xx = \"dxx\"\n",
    )
    .unwrap();
    let output = tessera(&["pde", "check", path.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad.toml:3:"), "{stderr}");
    assert!(stderr.contains("u_xxx"), "{stderr}");
}

/// The terms that count against the model's limit are those the residual
/// and the conditions read: declared terms that nothing reads are dropped.
/// A definition that reads too many still makes ground truth, so `pde
/// check` notes it, and a training is refused before any data are
/// generated, at the definition's `[terms]` table.
#[test]
fn only_the_terms_read_count_and_too_many_are_refused_by_a_model() {
    let dir = scratch("nine");
    let write = |name: &str, residual: &str, extra: &str| {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!(
                "name = \"nine\"\nspace = [\"x\"]\nresidual = \"{residual}\"\n[parameters]\n\
                 nu = 0.1\n[terms]\nu = \"u\"\nu_t = \"dt\"\nu_xx = \"dxx\"\n{extra}\
                 [[conditions]]\nat = \"initial\"\nrow = \"u\"\nrhs = \"u0\"\n\
                 [[conditions]]\nat = \"x-min\"\nkind = \"dirichlet\"\nrow = \"u\"\n\
                 [[conditions]]\nat = \"x-max\"\nkind = \"dirichlet\"\nrow = \"u\"\n"
            ),
        )
        .unwrap();
        path
    };
    let extra: String = (0..7).map(|i| format!("v{i} = \"dx\"\n")).collect();
    // Seven terms that nothing reads: three remain.
    let unused = write("unused.toml", "u_t - nu * u_xx", &extra);
    let check = stdout(&tessera(&["pde", "check", unused.to_str().unwrap()]));
    assert!(check.contains("u_t = Dt"), "{check}");
    assert!(!check.contains("v0") && !check.contains("note"), "{check}");
    // The residual reads nine, the conditions one more.
    let sum: Vec<String> = (0..7).map(|i| format!("v{i}")).collect();
    let residual = format!("u_t - nu * u_xx + 0 * ({})", sum.join(" + "));
    let nine = write("nine.toml", &residual, &extra);
    let check = stdout(&tessera(&["pde", "check", nine.to_str().unwrap()]));
    assert!(
        check.contains("note") && check.contains("10 terms are read, 9 by the residual"),
        "{check}"
    );
    let scenario = dir.join("scenario.toml");
    std::fs::write(
        &scenario,
        format!(
            "name = \"nine\"\n[pde]\nkind = \"custom\"\nfile = {:?}\ndomain = [[0.0, 1.0]]\n\
             [grid]\nnt = 6\nnx = 8\nt_max = 0.1\n\
             [data]\ntrain_samples = 2\ntest_samples = 1\ncache_dir = {:?}\n\
             [model]\nwidths = [4, 4]\nmodes = [2, 2]\nfc_dim = 8\nn_basis = 4\n\
             [constraint]\nexperts = [1, 2]\npoints = 10\n\
             [training]\nsteps = 1\nbatch_size = 1\nvalidate_samples = 1\n\
             [eval]\nplots = 1\n",
            nine,
            dir.join("cache"),
        ),
    )
    .unwrap();
    let output = tessera(&[
        "train",
        scenario.to_str().unwrap(),
        "--quiet",
        "--out",
        dir.join("run").to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nine.toml:6:"), "{stderr}");
    assert!(
        stderr.contains("10 terms are read, 9 by the residual")
            && stderr.contains("only by the conditions (u)"),
        "{stderr}"
    );
    assert!(!dir.join("cache").exists(), "data were generated first");
}

#[test]
fn a_built_in_scenario_is_not_a_definition() {
    let output = tessera(&["pde", "emit", "scenarios/quickstart.toml"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("built-in"), "{stderr}");
}

#[test]
fn a_residual_over_the_coordinates_passes_the_whole_model_gradcheck() {
    // The forced heat equation reads `t` and `x` in its residual: the soft,
    // hard and moe models' gradients (backbone, layer with the coordinates
    // gathered per expert, loss) match finite differences.
    let dir = scratch("forced");
    let definition = repo().join("scenarios/tests/fixtures/forced-heat.toml");
    let scenario = dir.join("scenario.toml");
    std::fs::write(
        &scenario,
        format!(
            "name = \"forced\"\n[pde]\nkind = \"custom\"\nfile = {:?}\ndomain = [[0.0, 1.0]]\n\
             [grid]\nnt = 11\nnx = 16\nt_max = 0.5\n\
             [data]\ntrain_samples = 4\ntest_samples = 2\ncache_dir = {:?}\n\
             [model]\nwidths = [8, 8, 8]\nmodes = [4, 4]\nfc_dim = 16\nn_basis = 8\n\
             [constraint]\nexperts = [1, 2]\npoints = 40\n\
             [training]\nbatch_size = 2\nvalidate_samples = 2\n[eval]\nsamples = 2\nplots = 0\n",
            definition.display().to_string(),
            dir.join("cache").display().to_string()
        ),
    )
    .unwrap();
    let check = stdout(&tessera(&["pde", "check", definition.to_str().unwrap()]));
    assert!(check.contains("reads the coordinates"), "{check}");
    let report = stdout(&tessera(&[
        "gradcheck",
        "--scenario",
        scenario.to_str().unwrap(),
        "--json",
    ]));
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let worst = report["max_rel_err"].as_f64().unwrap();
    assert!(worst <= 1e-6, "{report}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A scenario of the periodic heat equation (spectral) on `[0, 1)` whose
/// `[initial]` family is `u0`.
fn heat_scenario(dir: &Path, u0: &str) -> PathBuf {
    let definition = dir.join("heat.toml");
    std::fs::write(
        &definition,
        format!(
            "name = \"heat\"\nspace = [\"x\"]\nperiodic = [true]\nstencil = \"spectral\"\n\
             residual = \"u_t - 0.01 * u_xx\"\n[terms]\nu = \"u\"\n\
             u_t = {{ op = \"dt\", stencil = \"second-order\" }}\nu_xx = \"dxx\"\n\
             [solution]\nscale = \"t / t_end\"\noffset = \"initial\"\n\
             [initial]\nu0 = \"{u0}\"\n[initial.random]\nc = {{ uniform = [0.4, 0.6] }}\n"
        ),
    )
    .unwrap();
    let scenario = dir.join("scenario.toml");
    std::fs::write(
        &scenario,
        "name = \"seams\"\n[pde]\nkind = \"custom\"\nfile = \"heat.toml\"\ndomain = [[0.0, 1.0]]\n\
         [grid]\nnt = 5\nnx = 16\nt_max = 0.1\n[data]\ntrain_samples = 1\ntest_samples = 1\n\
         [model]\nmodes = [2, 2]\n[constraint]\nexperts = [1, 2]\npoints = 10\n\
         [training]\nbatch_size = 1\nvalidate_samples = 1\n[eval]\nplots = 1\n",
    )
    .unwrap();
    scenario
}

/// A scenario is told from a definition by its `[pde]` table alone: one
/// holding a number that is no TOML value (a seed past `i64::MAX`) is read as
/// a scenario and refused by the scenario's validation, which gives the
/// seed's range; it was read as a definition and reported with unknown keys.
#[test]
fn a_scenario_with_a_seed_past_toml_integers_is_refused_as_a_scenario() {
    let dir = scratch("seed");
    let scenario = heat_scenario(&dir, "sin(2 * pi * x)");
    let path = scenario.to_str().unwrap();
    let text = std::fs::read_to_string(&scenario).unwrap();
    std::fs::write(&scenario, format!("seed = {}\n{text}", i64::MAX)).unwrap();
    assert!(stdout(&tessera(&["pde", "check", path])).contains("heat: ok"));
    std::fs::write(&scenario, format!("seed = {}\n{text}", u64::MAX)).unwrap();
    for command in ["check", "emit"] {
        let output = tessera(&["pde", command, path]);
        assert!(!output.status.success(), "pde {command}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let refusal = format!(
            "invalid `seed` = {}: must be an integer in 0..={}",
            u64::MAX,
            i64::MAX
        );
        assert!(stderr.contains(&refusal), "pde {command}: {stderr}");
        assert!(!stderr.contains("unknown field"), "pde {command}: {stderr}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_family_that_does_not_close_where_the_axis_wraps_is_named() {
    // A Gaussian bump at c ∈ [0.4, 0.6] on [0, 1) is exp(−c²/0.05) ≥ 7e-4
    // at x = 0 and exp(−(1 − c)²/0.05) at x = 1: a jump of 7e-4 or more
    // (against a largest value of 1) unless c = 1/2; sin(2π(x − c)) closes.
    let dir = scratch("seams");
    let out = dir.join("data.safetensors");
    let run = |u0: &str| {
        let scenario = heat_scenario(&dir, u0);
        let path = scenario.to_str().unwrap();
        let check = stdout(&tessera(&["pde", "check", path]));
        let generate = tessera(&[
            "generate",
            path,
            "--split",
            "test",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(generate.status.success(), "{generate:?}");
        (
            check,
            String::from_utf8_lossy(&generate.stderr).into_owned(),
        )
    };
    let (check, stderr) = run("exp(-(x - c)^2 / 0.05)");
    assert!(
        check.contains("initial   x: NOT continuous where it wraps"),
        "{check}"
    );
    assert!(
        stderr.contains("warning: seams: the initial family's draws jump by up to"),
        "{stderr}"
    );
    let (check, stderr) = run("sin(2 * pi * (x - c))");
    assert!(check.contains("initial   x: periodic"), "{check}");
    assert!(!stderr.contains("warning"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn check_prints_the_initial_family_after_the_scenarios_overrides() {
    let scenario = "scenarios/allen-cahn-2d-small.toml";
    let shipped = stdout(&tessera(&["pde", "check", scenario]));
    assert!(
        shipped.contains("family    grf (length scale 0.3, amplitude 0.5, mean 0)"),
        "{shipped}"
    );
    let set = [
        "--set",
        "pde.initial.amplitude=0.25",
        "--set",
        "pde.initial.mean=1",
    ];
    let changed = stdout(&tessera(&[&["pde", "check", scenario][..], &set].concat()));
    assert!(
        changed.contains("family    grf (length scale 0.3, amplitude 0.25, mean 1)"),
        "{changed}"
    );
    let burgers = stdout(&tessera(&["pde", "check", "scenarios/pdes/burgers.toml"]));
    assert!(
        burgers.contains(
            "family    expression; drawn in order: a uniform [0.5, 1.5], b normal (mean 0, std 0.1)"
        ),
        "{burgers}"
    );
    // A definition file has no settings to override.
    let refused = tessera(
        &[
            &["pde", "check", "scenarios/pdes/allen-cahn-2d.toml"][..],
            &set,
        ]
        .concat(),
    );
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("--set changes a scenario's settings"), "{err}");
}
