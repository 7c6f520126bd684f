//! The whole model's autograd gradient (backbone → constraint layer → losses)
//! against finite differences, for soft, hard and mixture-of-experts models,
//! and its prediction's gradient in the initial conditions.

mod model_common;

use tessera_scenarios::Scenario;
use tessera_scenarios::config::Method;
use tessera_solver::{GradcheckOptions, gradcheck};

#[test]
fn diffusion_sorption_gradients_match_finite_differences() {
    let s = model_common::diffusion_sorption("moe", "");
    let report = gradcheck(&s, &GradcheckOptions::default()).unwrap();
    assert_eq!(report.methods.len(), 3);
    assert_eq!(report.checks.len(), 3 * 6);
    for m in &report.methods {
        assert_eq!(m.failed_solves, 0, "{}", m.method);
        // Converged solves stop at the round-off floor of ‖Jᵀr‖; the soft
        // method has none.
        assert!(m.stationarity < 1e-9, "{}: {}", m.method, m.stationarity);
        assert_eq!(m.stationarity == 0.0, m.method == "soft", "{}", m.method);
    }
    assert!(report.max_rel_err <= 1e-5, "{report:#?}");
    assert!(report.ic_max_rel_err <= 1e-5, "{report:#?}");
}

#[test]
fn navier_stokes_gradients_match_finite_differences() {
    let s = model_common::navier_stokes("moe");
    let report = gradcheck(&s, &GradcheckOptions::default()).unwrap();
    assert!(report.max_rel_err <= 1e-5, "{report:#?}");
    assert!(report.ic_max_rel_err <= 1e-5, "{report:#?}");
}

#[test]
fn burgers_hard_constraint_gradients_match_finite_differences() {
    // The TOML-defined Burgers scenario: one of its hard-method solves used to
    // stop at ‖Jᵀr‖ ≈ 7e-7 (a nonzero-residual problem on which the
    // Gauss–Newton step stalls), which put the check at 7.8e-6.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/burgers-small.toml"
    );
    let s = Scenario::from_file(path).unwrap();
    let options = GradcheckOptions {
        methods: vec![Method::Hard, Method::Moe],
        ..GradcheckOptions::default()
    };
    let report = gradcheck(&s, &options).unwrap();
    for m in &report.methods {
        assert_eq!(m.failed_solves, 0, "{}", m.method);
        assert!(m.stationarity < 1e-9, "{}: {}", m.method, m.stationarity);
    }
    assert!(report.max_rel_err <= 1e-6, "{report:#?}");
    assert!(report.ic_max_rel_err <= 1e-6, "{report:#?}");
}

/// The shipped 2-D scenario `name` at 6 × 16 × 16 with 200 points per
/// expert, its gradient checked by every method: no failed solves, every
/// solve stationary to round-off, and finite differences to 1e-6.
fn check_small_2d(name: &str) {
    let path = format!("{}/../scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    let mut s = Scenario::from_file(&path).unwrap();
    s.set_all(&[
        "grid.nt=6",
        "grid.nx=16",
        "grid.ny=16",
        "model.modes=[2, 4, 4]",
        "constraint.points=200",
    ])
    .unwrap();
    let report = gradcheck(&s, &GradcheckOptions::default()).unwrap();
    for m in &report.methods {
        assert_eq!(m.failed_solves, 0, "{name} {}", m.method);
        assert!(
            m.stationarity < 1e-9,
            "{name} {}: {}",
            m.method,
            m.stationarity
        );
    }
    assert!(report.max_rel_err <= 1e-6, "{report:#?}");
    assert!(report.ic_max_rel_err <= 1e-6, "{report:#?}");
}

/// A PDE with the mixed derivative `u_xy` (the product of two difference
/// stencils, local: its rows go into the experts' solves as any stencil's).
#[test]
fn anisotropic_diffusion_gradients_match_finite_differences() {
    check_small_2d("anisotropic-diffusion-small");
}

/// A nonlinear PDE with the mixed third derivative `u_xyy` (a Fourier
/// multiplier, not local: the experts see its whole-field values).
#[test]
fn zakharov_kuznetsov_gradients_match_finite_differences() {
    check_small_2d("zakharov-kuznetsov-small");
}

#[test]
fn rejects_no_checks() {
    let s = model_common::diffusion_sorption("moe", "");
    let options = GradcheckOptions {
        checks: 0,
        ..GradcheckOptions::default()
    };
    assert!(gradcheck(&s, &options).is_err());
}
