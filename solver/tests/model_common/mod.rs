//! Tiny scenarios shared by the model tests (small enough that every test runs
//! in well under a second in release).

use tessera_scenarios::Scenario;

/// Diffusion–sorption on an 8 × 16 grid with a 2-layer FNO, `method`, and any
/// extra TOML lines appended to the `[constraint]` table.
pub fn diffusion_sorption(method: &str, constraint: &str) -> Scenario {
    tiny_1d(
        "tiny-ds",
        5,
        "diffusion-sorption",
        500.0,
        method,
        constraint,
    )
}

/// A 1-D PDE of `kind` on an 8 × 16 grid up to `t_max`, `method`, extra
/// `[constraint]` lines `constraint`, the same small model for every kind.
pub fn tiny_1d(
    name: &str,
    seed: u64,
    kind: &str,
    t_max: f64,
    method: &str,
    constraint: &str,
) -> Scenario {
    let text = format!(
        r#"
name = "{name}"
seed = {seed}
[pde]
kind = "{kind}"
[grid]
nt = 8
nx = 16
t_max = {t_max:?}
[data]
train_samples = 4
test_samples = 2
[model]
widths = [4, 6, 6]
modes = [2, 3]
fc_dim = 8
n_basis = 6
[constraint]
method = "{method}"
experts = [1, 2]
points = 24
{constraint}
[training]
batch_size = 2
validate_samples = 1
[eval]
plots = 1
"#
    );
    Scenario::from_str(&text, "<test>").expect("valid test scenario")
}

/// Navier–Stokes on a 4 × 8 × 8 grid, `method`.
pub fn navier_stokes(method: &str) -> Scenario {
    let text = format!(
        r#"
name = "tiny-ns"
seed = 2
[pde]
kind = "navier-stokes"
[grid]
nt = 4
nx = 8
ny = 8
t_max = 1.0
[data]
train_samples = 2
test_samples = 1
[model]
widths = [4, 5]
modes = [1, 2, 2]
fc_dim = 6
n_basis = 5
[constraint]
method = "{method}"
experts = [1, 2, 2]
points = 10
init = "zeros"
[training]
batch_size = 2
validate_samples = 1
[eval]
plots = 1
"#
    );
    Scenario::from_str(&text, "<test>").expect("valid test scenario")
}
