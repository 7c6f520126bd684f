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
