//! The time integrators alone, on ODE systems with known solutions: the
//! Prothero–Robinson problem (stiff, with a smooth exact solution) and the
//! linear test equation, whose one-step map is the method's stability
//! function; the explicit method's stability bound and the automatic switch
//! to the implicit method on them.

use tessera_scenarios::mol::{MolError, MolMethod, MolOptions, MolStats, MolSystem, integrate};

/// `y_i' = λ_i (y_i − sin t) + cos t`, exact solution `y_i = sin t` from
/// `y_i(0) = 0` (Prothero & Robinson, Math. Comp. 28, 1974).
struct ProtheroRobinson {
    lambda: Vec<f64>,
}

impl MolSystem for ProtheroRobinson {
    fn len(&self) -> usize {
        self.lambda.len()
    }
    fn rhs(&self, t: f64, u: &[f64], du: &mut [f64]) -> Result<(), MolError> {
        for ((d, &y), &l) in du.iter_mut().zip(u).zip(&self.lambda) {
            *d = l * (y - t.sin()) + t.cos();
        }
        Ok(())
    }
    fn sparsity(&self) -> Vec<Vec<usize>> {
        (0..self.len()).map(|i| vec![i]).collect()
    }
}

#[test]
fn stiff_prothero_robinson_is_solved_to_tolerance_in_few_steps() {
    let system = ProtheroRobinson {
        lambda: vec![-1.0, -1e3, -1e6],
    };
    let times: Vec<f64> = (0..=10).map(|i| i as f64).collect();
    let options = MolOptions {
        rtol: 1e-8,
        atol: 1e-10,
        ..MolOptions::default()
    };
    let (frames, stats) = integrate(&system, &[0.0; 3], &times, &options).unwrap();
    let error = frames
        .chunks_exact(3)
        .zip(&times)
        .flat_map(|(y, t)| y.iter().map(move |v| (v - t.sin()).abs()))
        .fold(0.0_f64, f64::max);
    println!("Prothero–Robinson: error {error:e}, {stats:?}");
    assert!(error < 1e-6, "{error}");
    // Classical RK4 is stable for h|λ| ≤ 2.785: it would need |λ|·T/2.785 ≈ 3.6e6
    // steps. (SDIRK's stage order 1 reduces its order on this problem, Hairer–
    // Wanner §IV.15, so the implicit count is well above the non-stiff one.)
    let explicit_steps = (1e6 * 10.0 / 2.785) as usize;
    assert!(stats.steps * 100 < explicit_steps, "{stats:?}");
}

/// `y' = λ y`.
struct Linear(f64);

impl MolSystem for Linear {
    fn len(&self) -> usize {
        1
    }
    fn rhs(&self, _: f64, u: &[f64], du: &mut [f64]) -> Result<(), MolError> {
        du[0] = self.0 * u[0];
        Ok(())
    }
    fn sparsity(&self) -> Vec<Vec<usize>> {
        vec![vec![0]]
    }
}

/// The stability function of SDIRK4 (Hairer–Wanner IV.6, γ = 1/4), from its
/// tableau: `R(z) = 1 + z bᵀ(I − zA)⁻¹ 1`, computed by forward substitution.
fn stability(z: f64) -> f64 {
    let a: [&[f64]; 5] = [
        &[0.25],
        &[0.5, 0.25],
        &[17.0 / 50.0, -1.0 / 25.0, 0.25],
        &[371.0 / 1360.0, -137.0 / 2720.0, 15.0 / 544.0, 0.25],
        &[25.0 / 24.0, -49.0 / 48.0, 125.0 / 16.0, -85.0 / 12.0, 0.25],
    ];
    // Stage values Y_i = 1 + z Σ_j a_ij Y_j; stiffly accurate, so R = Y_5.
    let mut y = [0.0; 5];
    for i in 0..5 {
        let known: f64 = (0..i).map(|j| a[i][j] * y[j]).sum();
        y[i] = (1.0 + z * known) / (1.0 - z * a[i][i]);
    }
    y[4]
}

#[test]
fn one_fixed_step_is_the_stability_function_and_it_is_l_stable() {
    for &(lambda, h) in &[(-1.0, 0.5), (-50.0, 0.1), (-1e8, 1.0), (2.0, 0.1)] {
        let options = MolOptions {
            fixed_step: Some(h),
            rtol: 1e-13,
            atol: 1e-15,
            ..MolOptions::default()
        };
        let (frames, _) = integrate(&Linear(lambda), &[1.0], &[0.0, h], &options).unwrap();
        let r = stability(lambda * h);
        assert!(
            (frames[1] - r).abs() < 1e-12 * (1.0 + r.abs()),
            "{lambda}: {} vs {r}",
            frames[1]
        );
    }
    // L-stability: R(z) → 0 as z → −∞; order 4: R(z) − e^z = O(z⁵).
    assert!(stability(-1e12).abs() < 1e-10);
    let e1 = (stability(-0.1) - (-0.1_f64).exp()).abs();
    let e2 = (stability(-0.05) - (-0.05_f64).exp()).abs();
    let order = (e1 / e2).log2() - 1.0;
    assert!((order - 4.0).abs() < 0.1, "local order {order}");
}

/// The stability polynomial of the Dormand–Prince 5(4) pair's order-5
/// solution, as published (Hairer, Nørsett & Wanner, *Solving Ordinary
/// Differential Equations I*, §IV.2): the Taylor polynomial of `e^z` to
/// degree 5, and `z⁶/600`.
fn dormand_prince_stability(z: f64) -> f64 {
    1.0 + z
        + z * z / 2.0
        + z.powi(3) / 6.0
        + z.powi(4) / 24.0
        + z.powi(5) / 120.0
        + z.powi(6) / 600.0
}

#[test]
fn one_fixed_explicit_step_is_the_dormand_prince_polynomial() {
    for &(lambda, h) in &[(-1.0, 0.5), (-50.0, 0.06), (3.0, 0.2), (-1e3, 3e-3)] {
        let options = MolOptions {
            fixed_step: Some(h),
            method: MolMethod::Explicit,
            ..MolOptions::default()
        };
        let (frames, stats) = integrate(&Linear(lambda), &[1.0], &[0.0, h], &options).unwrap();
        let r = dormand_prince_stability(lambda * h);
        assert!(
            (frames[1] - r).abs() < 1e-14 * (1.0 + r.abs()),
            "{lambda}: {} vs {r}",
            frames[1]
        );
        // Six evaluations per step and one at the start (first same as last).
        assert_eq!(stats.rhs_evaluations, 7, "{stats:?}");
        assert_eq!(
            (stats.steps, stats.explicit_steps, stats.jacobians),
            (1, 1, 0)
        );
    }
    // The bound on the negative real axis (≈ −3.31) that limits its steps.
    assert!(dormand_prince_stability(-3.2).abs() < 1.0);
    assert!(dormand_prince_stability(-3.4).abs() > 1.0);
}

#[test]
fn explicit_steps_are_bounded_by_stability_and_auto_switches() {
    // λ = −1e4 holds the explicit steps near 3.31/1e4 although the solution,
    // sin t, is smooth: 1/3.31e-4 ≈ 3000 steps to t = 1.
    let system = ProtheroRobinson {
        lambda: vec![-1.0, -1e4],
    };
    let times: Vec<f64> = (0..=10).map(|i| i as f64 / 10.0).collect();
    let error = |frames: &[f64]| {
        frames
            .chunks_exact(2)
            .zip(&times)
            .flat_map(|(y, t)| y.iter().map(move |v| (v - t.sin()).abs()))
            .fold(0.0_f64, f64::max)
    };
    let solve = |method| {
        let options = MolOptions {
            rtol: 1e-6,
            atol: 1e-8,
            method,
            ..MolOptions::default()
        };
        integrate(&system, &[0.0; 2], &times, &options).unwrap()
    };
    let (explicit, explicit_stats) = solve(MolMethod::Explicit);
    let (auto, auto_stats) = solve(MolMethod::Auto);
    let (implicit, implicit_stats) = solve(MolMethod::Implicit);
    println!(
        "Prothero–Robinson λ = −1e4: explicit error {:e} {explicit_stats:?}; auto error {:e} {auto_stats:?}",
        error(&explicit),
        error(&auto)
    );
    assert!(error(&explicit) < 1e-6 && error(&auto) < 1e-6);
    let bound = (1e4 / 3.31) as usize;
    assert!(explicit_stats.steps * 10 >= bound * 9, "{explicit_stats:?}");
    assert_eq!(explicit_stats.switched_at, None);
    // The explicit run reports the steps the test finds at the bound (about
    // half: the controller's steps straddle it).
    assert!(
        explicit_stats.held_by_stability * 3 > explicit_stats.steps,
        "{explicit_stats:?}"
    );
    // The stiffness test fires after fifteen steps at the bound, before the
    // first output time, so the implicit method solves again from t = 0:
    // exactly what it computes alone, the explicit steps thrown away.
    assert_eq!(auto_stats.switched_at, Some(0.0), "{auto_stats:?}");
    assert!((15..100).contains(&auto_stats.explicit_steps));
    assert_eq!(auto, implicit);
    assert_eq!(
        auto_stats.steps,
        auto_stats.explicit_steps + implicit_stats.steps
    );
    assert!(
        auto_stats.steps * 10 < explicit_stats.steps,
        "{auto_stats:?}"
    );
}

#[test]
fn auto_stays_explicit_where_accuracy_sets_the_steps() {
    let system = ProtheroRobinson {
        lambda: vec![-1.0, -2.0],
    };
    let times = [0.0, 5.0];
    let options = MolOptions {
        rtol: 1e-10,
        atol: 1e-12,
        method: MolMethod::Auto,
        ..MolOptions::default()
    };
    let (frames, stats) = integrate(&system, &[0.0; 2], &times, &options).unwrap();
    let error = frames[2..]
        .iter()
        .fold(0.0_f64, |m, v| m.max((v - 5.0_f64.sin()).abs()));
    println!("Prothero–Robinson λ = −1, −2, auto: error {error:e}, {stats:?}");
    assert!(error < 1e-8, "{error}");
    assert_eq!(stats.switched_at, None);
    assert_eq!(stats.explicit_steps, stats.steps);
    assert_eq!(stats.held_by_stability, 0);
    assert_eq!((stats.jacobians, stats.newton_iterations), (0, 0));
}

/// The Prothero–Robinson problem with a complex `λ = −δ + iω`, in real form:
/// `z = x + iy`, `z' = λ(z − sin t) + cos t`, so `x' = −δ(x − sin t) − ωy +
/// cos t` and `y' = ω(x − sin t) − δy`; exact solution `x = sin t`, `y = 0`.
/// With `δ = 0` the fast mode is a pure oscillation, the eigenvalues `±iω` on
/// the imaginary axis, as dispersion puts them (KdV's `u_xxx`).
struct RotatingProtheroRobinson {
    omega: f64,
    damping: f64,
}

impl MolSystem for RotatingProtheroRobinson {
    fn len(&self) -> usize {
        2
    }
    fn rhs(&self, t: f64, u: &[f64], du: &mut [f64]) -> Result<(), MolError> {
        let (x, y) = (u[0] - t.sin(), u[1]);
        du[0] = -self.damping * x - self.omega * y + t.cos();
        du[1] = self.omega * x - self.damping * y;
        Ok(())
    }
    fn sparsity(&self) -> Vec<Vec<usize>> {
        vec![vec![0, 1], vec![0, 1]]
    }
}

/// Explicit and `auto` solutions of [`RotatingProtheroRobinson`] to `t = 1`:
/// their largest errors against `(sin t, 0)` and statistics.
fn rotating(omega: f64, damping: f64, method: MolMethod) -> (f64, MolStats) {
    let system = RotatingProtheroRobinson { omega, damping };
    let times: Vec<f64> = (0..=10).map(|i| i as f64 / 10.0).collect();
    let options = MolOptions {
        rtol: 1e-6,
        atol: 1e-8,
        method,
        ..MolOptions::default()
    };
    let (frames, stats) = integrate(&system, &[0.0; 2], &times, &options).unwrap();
    let error = frames
        .chunks_exact(2)
        .zip(&times)
        .map(|(u, t)| (u[0] - t.sin()).abs().max(u[1].abs()))
        .fold(0.0_f64, f64::max);
    (error, stats)
}

#[test]
fn auto_switches_where_oscillations_bound_the_explicit_steps() {
    // |λ| = 1e4 at three angles: on the imaginary axis, where Dormand–Prince's
    // region ends at |hλ| ≈ 0.997 (a pure oscillation, as dispersion gives),
    // at 96° (edge ≈ 2.7) and at 126° (edge ≈ 3.4). Its steps stay at the
    // edge although the solution is smooth, far below the real-axis bound
    // 3.3 with which the modulus alone would be compared below 126°. The
    // implicit method, from t = 0 again, takes `gain` times fewer steps.
    for (angle, gain) in [(std::f64::consts::FRAC_PI_2, 4), (1.67, 4), (2.2, 5)] {
        let (omega, damping) = (1e4 * f64::sin(angle), -1e4 * f64::cos(angle));
        let (explicit_error, explicit) = rotating(omega, damping, MolMethod::Explicit);
        let (auto_error, auto) = rotating(omega, damping, MolMethod::Auto);
        println!("λ = 1e4 e^(±{angle}i): explicit error {explicit_error:e} {explicit:?}");
        println!("auto error {auto_error:e} {auto:?}");
        assert!(explicit_error < 1e-5 && auto_error < 1e-5);
        assert!(
            explicit.held_by_stability * 3 > explicit.steps,
            "{explicit:?}"
        );
        assert_eq!(auto.switched_at, Some(0.0), "{auto:?}");
        assert!(auto.steps * gain < explicit.steps, "{auto:?}");
    }
}

#[test]
fn auto_stays_explicit_on_oscillations_that_accuracy_resolves() {
    // λ = ±20 i: steps that resolve sin t to rtol 1e-6 are far below the
    // stability bound, and fast enough dynamics do not make a system stiff.
    let (error, stats) = rotating(20.0, 0.0, MolMethod::Auto);
    println!("λ = ±20 i, auto: error {error:e}, {stats:?}");
    assert!(error < 1e-5, "{error}");
    assert_eq!(stats.switched_at, None);
    assert_eq!(stats.explicit_steps, stats.steps);
    assert_eq!(stats.held_by_stability, 0);
}
