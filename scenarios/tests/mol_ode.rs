//! The time integrator alone, on ODE systems with known solutions: the
//! Prothero–Robinson problem (stiff, with a smooth exact solution) and the
//! linear test equation, whose one-step map is the method's stability function.

use tessera_scenarios::mol::{MolError, MolOptions, MolSystem, integrate};

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
