//! The Navier–Stokes reference solver against the exact Taylor–Green vortex,
//! an exact nonlinear tendency, and its convergence in `dt` and resolution.

use std::f64::consts::PI;

use tessera_scenarios::navier_stokes::{PeriodicGrf, ReferenceSolver};

fn field(n: usize, f: impl Fn(f64, f64) -> f64) -> Vec<f64> {
    (0..n * n)
        .map(|p| f((p / n) as f64 / n as f64, (p % n) as f64 / n as f64))
        .collect()
}

fn rel_l2(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    (num / den).sqrt()
}

/// A random initial vorticity scaled to root-mean-square 2 (so advection
/// matters over the short test horizons).
fn random_ic(n: usize, seed: u64) -> Vec<f64> {
    let w = PeriodicGrf::new(n, 0.8).unwrap().sample(seed, 0);
    let rms = (w.iter().map(|v| v * v).sum::<f64>() / w.len() as f64).sqrt();
    w.iter().map(|v| 2.0 * v / rms).collect()
}

fn last_frame(solution: &[f64], n: usize) -> &[f64] {
    &solution[solution.len() - n * n..]
}

#[test]
fn taylor_green_vortex_decays_exactly() {
    // w = sin(2πx)·sin(2πy)·exp(−8π²νt) solves the full equation: the advection
    // term vanishes because w is proportional to the stream function.
    let (n, nu, t_end) = (32, 1e-2, 1.0);
    let w0 = field(n, |x, y| (2.0 * PI * x).sin() * (2.0 * PI * y).sin());
    let times = [0.0, 0.5, t_end];
    let decay = (-8.0 * PI * PI * nu * t_end).exp();
    let exact: Vec<f64> = w0.iter().map(|w| w * decay).collect();
    let mut errs = vec![];
    for dt in [0.02, 0.01] {
        let solution = ReferenceSolver::new(nu, n, dt)
            .unwrap()
            .solve(&w0, &times)
            .unwrap();
        let err = rel_l2(last_frame(&solution, n), &exact);
        // The only error is Crank–Nicolson's amplification factor
        // (1 − a/2)/(1 + a/2) in place of exp(−a), a = 8π²ν·dt, per step.
        let a = 8.0 * PI * PI * nu * dt;
        let steps = (t_end / dt).round() as i32;
        let predicted = (((1.0 - a / 2.0) / (1.0 + a / 2.0)).powi(steps) / decay - 1.0).abs();
        assert!(
            (err - predicted).abs() < 1e-3 * predicted,
            "{err} vs {predicted}"
        );
        errs.push(err);
    }
    println!("Taylor-Green rel L2 at dt = 0.02, 0.01: {errs:?}");
    let order = (errs[0] / errs[1]).log2();
    assert!((1.9..2.1).contains(&order), "observed order {order}");
}

#[test]
fn nonlinear_tendency_matches_the_analytic_one() {
    // w = sin(2πx) + sin(4πy): ψ = sin(2πx)/(4π²) + sin(4πy)/(16π²), so
    // u = ψ_y = cos(4πy)/(4π), v = −ψ_x = −cos(2πx)/(2π) and
    // u·w_x + v·w_y = −(3/2)·cos(2πx)·cos(4πy); with ν = 0, w_t = (3/2)·cos(2πx)·cos(4πy).
    let n = 16;
    let w0 = field(n, |x, y| (2.0 * PI * x).sin() + (4.0 * PI * y).sin());
    let tendency = field(n, |x, y| 1.5 * (2.0 * PI * x).cos() * (4.0 * PI * y).cos());
    let mut errs = vec![];
    for h in [1e-3, 5e-4] {
        let solution = ReferenceSolver::new(0.0, n, h)
            .unwrap()
            .solve(&w0, &[0.0, h])
            .unwrap();
        let finite_difference: Vec<f64> = last_frame(&solution, n)
            .iter()
            .zip(&w0)
            .map(|(w1, w0)| (w1 - w0) / h)
            .collect();
        errs.push(rel_l2(&finite_difference, &tendency));
    }
    println!("one-step tendency rel error at h = 1e-3, 5e-4: {errs:?}");
    // The one-step difference quotient is first-order accurate in h.
    assert!(errs[0] < 1e-2, "{errs:?}");
    assert!((errs[0] / errs[1] - 2.0).abs() < 0.2, "{errs:?}");
}

#[test]
fn time_stepping_is_second_order() {
    let (n, nu) = (32, 1e-3);
    let w0 = random_ic(n, 7);
    let times = [0.0, 0.5];
    let solve = |dt| {
        ReferenceSolver::new(nu, n, dt)
            .unwrap()
            .solve(&w0, &times)
            .unwrap()
    };
    let fine = solve(0.02 / 64.0);
    let errs: Vec<f64> = [0.02, 0.01, 0.005]
        .iter()
        .map(|&dt| rel_l2(last_frame(&solve(dt), n), last_frame(&fine, n)))
        .collect();
    let orders: Vec<f64> = errs.windows(2).map(|e| (e[0] / e[1]).log2()).collect();
    println!("dt errors {errs:?}, observed orders {orders:?}");
    assert!(orders.iter().all(|o| (1.8..2.3).contains(o)), "{orders:?}");
}

#[test]
fn resolution_convergence_is_spectral() {
    let nu = 1e-3;
    let base = 8;
    let w0 = random_ic(base, 11);
    let times = [0.0, 0.5, 1.0];
    let solve = |n| {
        ReferenceSolver::new(nu, n, 0.005)
            .unwrap()
            .solve_on_grid(&w0, base, base, &times)
            .unwrap()
    };
    let reference = solve(128);
    let errs: Vec<f64> = [16, 32, 64]
        .iter()
        .map(|&n| rel_l2(&solve(n), &reference))
        .collect();
    println!("resolution errors at 16, 32, 64 vs 128: {errs:?}");
    // Faster than any fixed order: each doubling gains far more than 2⁴.
    assert!(errs.windows(2).all(|e| e[0] > 16.0 * e[1]), "{errs:?}");
    assert!(errs[2] < 1e-6, "{errs:?}");
}

#[test]
fn bad_input_is_a_typed_error() {
    use tessera_scenarios::ScenarioError;
    let solver = ReferenceSolver::new(1e-3, 8, 0.01).unwrap();
    let mut w0 = vec![0.0; 64];
    w0[5] = f64::INFINITY;
    assert!(matches!(
        solver.solve(&w0, &[0.0, 1.0]),
        Err(ScenarioError::NonFinite { index: 5, .. })
    ));
    assert!(matches!(
        solver.solve(&[0.0; 63], &[0.0, 1.0]),
        Err(ScenarioError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        solver.solve_on_grid(&[0.0; 9], 3, 3, &[0.0, 1.0]),
        Err(ScenarioError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        ReferenceSolver::new(1e-3, 8, -0.1),
        Err(ScenarioError::InvalidValue { .. })
    ));
    assert!(matches!(
        ReferenceSolver::new(f64::NAN, 8, 0.1),
        Err(ScenarioError::InvalidValue { .. })
    ));
    // 2 × 10⁹ steps are refused before the first one (this would run for
    // hours at 8²); the count is the sum over the output intervals.
    let tiny = ReferenceSolver::new(1e-3, 8, 1e-9).unwrap();
    match tiny.solve(&[0.0; 64], &[0.0, 1.0, 2.0]) {
        Err(ScenarioError::SolverFailed { reason, .. }) => {
            assert!(reason.contains("2e9 steps"), "{reason}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(matches!(
        PeriodicGrf::new(8, 0.0),
        Err(ScenarioError::InvalidValue { .. })
    ));
}
