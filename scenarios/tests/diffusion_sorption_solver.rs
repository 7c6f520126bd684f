//! The diffusion–sorption reference solver against an independent integration
//! of PDEBench's scheme, its time-tolerance convergence and its spatial order.

use tessera_scenarios::ScenarioError;
use tessera_scenarios::config::DiffusionSorptionParams;
use tessera_scenarios::diffusion_sorption::ReferenceSolver;

const T_MAX: f64 = 500.0;

fn times(nt: usize) -> Vec<f64> {
    (0..nt)
        .map(|i| T_MAX * i as f64 / (nt - 1) as f64)
        .collect()
}

fn rel_l2(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    (num / den).sqrt()
}

/// PDEBench's right-hand side written out independently from its Python source
/// (`sim_diff_sorp.py`: Laplacian matrix + boundary vector), in the
/// matrix-vector form rather than the solver's ghost-value form.
fn pdebench_rhs(p: &DiffusionSorptionParams, c: &[f64], out: &mut [f64]) {
    let n = c.len();
    let dx = 1.0 / n as f64;
    for i in 0..n {
        let mut lap = -2.0 * c[i];
        if i > 0 {
            lap += c[i - 1];
        }
        if i + 1 < n {
            lap += c[i + 1];
        }
        let retardation =
            1.0 + (1.0 - p.phi) / p.phi * p.rho_s * p.k_f * p.n_f * (c[i] + 1e-6).powf(p.n_f - 1.0);
        let mut boundary = 0.0;
        if i == 0 {
            boundary = 1.0;
        }
        if i == n - 1 {
            boundary = (c[n - 2] - c[n - 1]) / dx * p.d;
        }
        out[i] = p.d / retardation * (lap + boundary) / (dx * dx);
    }
}

/// Classical fixed-step RK4 of the PDEBench system, recording at `times`.
fn rk4(p: &DiffusionSorptionParams, u0: &[f64], times: &[f64], dt: f64) -> Vec<f64> {
    let n = u0.len();
    let mut u = u0.to_vec();
    let mut out = u0.to_vec();
    let mut k = vec![vec![0.0; n]; 4];
    let mut stage = vec![0.0; n];
    for w in times.windows(2) {
        let steps = ((w[1] - w[0]) / dt).round() as usize;
        let h = (w[1] - w[0]) / steps as f64;
        for _ in 0..steps {
            pdebench_rhs(p, &u, &mut k[0]);
            for (s, c) in [(1, 0.5), (2, 0.5), (3, 1.0)] {
                for i in 0..n {
                    stage[i] = u[i] + c * h * k[s - 1][i];
                }
                pdebench_rhs(p, &stage, &mut k[s]);
            }
            for i in 0..n {
                u[i] += h / 6.0 * (k[0][i] + 2.0 * k[1][i] + 2.0 * k[2][i] + k[3][i]);
            }
        }
        out.extend_from_slice(&u);
    }
    out
}

#[test]
fn agrees_with_an_independent_rk4_integration() {
    let p = DiffusionSorptionParams::default();
    let cells = 128;
    let t = times(51);
    let solver = ReferenceSolver::new(&p, cells, 1e-8).unwrap();
    let mut worst: f64 = 0.0;
    for u0 in [0.02, 0.11, 0.19] {
        let ic = vec![u0; cells];
        let ours = solver.solve(&ic, &t).unwrap();
        // Stable: dt·λ_max ≈ 0.02·4·D·n²/R(1) ≈ 0.2 ≪ 2.78.
        let reference = rk4(&p, &ic, &t, 0.02);
        let err = rel_l2(&ours, &reference);
        println!("u0 = {u0}: rel L2 vs RK4 = {err:e}");
        worst = worst.max(err);
    }
    println!("max rel L2 vs RK4: {worst:e}");
    // The issue asks for ≤ 1e-3; both integrations are far tighter than that
    // (RK4's error at dt = 0.02 is ~1e-8 here).
    assert!(worst < 1e-6, "{worst}");
}

#[test]
fn time_error_shrinks_with_the_tolerance() {
    let p = DiffusionSorptionParams::default();
    let cells = 128;
    let t = times(11);
    let ic = vec![0.1; cells];
    let truth = ReferenceSolver::new(&p, cells, 1e-12)
        .unwrap()
        .solve(&ic, &t)
        .unwrap();
    let errs: Vec<f64> = [1e-4, 1e-6, 1e-8]
        .iter()
        .map(|&rtol| {
            let u = ReferenceSolver::new(&p, cells, rtol)
                .unwrap()
                .solve(&ic, &t)
                .unwrap();
            rel_l2(&u, &truth)
        })
        .collect();
    println!("rel L2 at rtol 1e-4, 1e-6, 1e-8: {errs:?}");
    // The global error follows the local tolerance: below it, and shrinking by
    // at least 10× per 100× tighter tolerance.
    for (err, rtol) in errs.iter().zip([1e-4, 1e-6, 1e-8]) {
        assert!(*err < rtol, "{err} at rtol {rtol}");
    }
    assert!(errs.windows(2).all(|e| e[0] > 10.0 * e[1]), "{errs:?}");
}

#[test]
fn spatial_self_convergence_is_first_order() {
    let p = DiffusionSorptionParams::default();
    let t = times(6);
    let coarse = 32;
    let solutions: Vec<Vec<f64>> = [32, 64, 128, 256]
        .iter()
        .map(|&cells| {
            let solver = ReferenceSolver::new(&p, cells, 1e-10).unwrap();
            solver.solve_on_grid(&vec![0.1; coarse], &t).unwrap()
        })
        .collect();
    let diffs: Vec<f64> = solutions.windows(2).map(|w| rel_l2(&w[0], &w[1])).collect();
    let orders: Vec<f64> = diffs.windows(2).map(|d| (d[0] / d[1]).log2()).collect();
    println!("successive differences {diffs:?}, observed orders {orders:?}");
    // First order, because the left Dirichlet value sits at the ghost centre
    // x = −dx/2 (see the solver's docs), not second.
    assert!(orders.iter().all(|o| (0.9..1.1).contains(o)), "{orders:?}");
}

#[test]
fn bad_input_is_a_typed_error() {
    let p = DiffusionSorptionParams::default();
    let solver = ReferenceSolver::new(&p, 16, 1e-6).unwrap();
    let t = times(3);
    let mut ic = vec![0.1; 16];
    ic[3] = f64::NAN;
    assert!(matches!(
        solver.solve(&ic, &t),
        Err(ScenarioError::NonFinite { index: 3, .. })
    ));
    assert!(matches!(
        solver.solve(&[0.1; 15], &t),
        Err(ScenarioError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        solver.solve(&[0.1; 16], &[0.0, 2.0, 1.0]),
        Err(ScenarioError::InvalidValue { .. })
    ));
    assert!(matches!(
        solver.solve_on_grid(&[0.1; 5], &t),
        Err(ScenarioError::ShapeMismatch { .. })
    ));
    let bad_phi = DiffusionSorptionParams { phi: 1.5, ..p };
    assert!(matches!(
        ReferenceSolver::new(&bad_phi, 16, 1e-6),
        Err(ScenarioError::InvalidValue { .. })
    ));
    assert!(matches!(
        ReferenceSolver::new(&p, 16, f64::NAN),
        Err(ScenarioError::InvalidValue { .. })
    ));
}
