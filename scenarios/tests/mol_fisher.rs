//! The method-of-lines solver on Fisher–KPP `u_t = u_xx + u(1 − u)` against
//! the Ablowitz–Zeppetella travelling wave (M. J. Ablowitz and A. Zeppetella,
//! "Explicit solutions of Fisher's equation for a special wave speed",
//! Bull. Math. Biol. 41 (1979) 835–840):
//!
//! `u(x, t) = (1 + C e^{(x − ct)/√6})^{−2}`, `c = 5/√6`.
//!
//! Derivation (checked here rather than trusted): with `E = C e^{ξ/√6}`,
//! `ξ = x − ct`, `U = (1 + E)^{−2}` has `U' = −2E(1+E)^{−3}/√6` and
//! `U'' = (4E² − 2E)(1+E)^{−4}/6`, while `U(1 − U) = (2E + E²)(1+E)^{−4}`; so
//! `U'' + U(1 − U) = (10/6)·E(1+E)^{−3}`, which equals `−cU' = (2c/√6)·E(1+E)^{−3}`
//! exactly when `c = 5/√6`.
//!
//! Also the order in time: fixed steps of the SDIRK and Dormand–Prince
//! methods against a tightly integrated solution of the same semi-discrete
//! system, and each method's tolerance proportionality.

mod mol_support;

use mol_support::{max_error, orders, times};
use num_dual::DualNum;
use tessera_scenarios::mol::{
    Boundary, Derivative, Discretisation, MolDomain, MolMethod, MolOptions, MolPde, MolTerm,
    PointValues, Side,
};

const C: f64 = 1.0;

fn exact(t: f64, x: f64) -> f64 {
    let s6 = 6.0_f64.sqrt();
    let c = 5.0 / s6;
    (1.0 + C * ((x - c * t) / s6).exp()).powi(-2)
}

struct Fisher;

impl MolPde for Fisher {
    fn terms(&self) -> Vec<MolTerm> {
        vec![
            MolTerm::new(0, Derivative::Value),
            MolTerm::new(0, Derivative::Dxx),
        ]
    }
    fn residual<D: DualNum<Primitive = f64> + Copy>(&self, at: &PointValues<'_, D>, out: &mut [D]) {
        out[0] = at.u_t[0] - at.z[1] - at.z[0] * (-at.z[0] + 1.0);
    }
    fn boundary(&self, _: Side, _: usize) -> Boundary {
        Boundary::dirichlet()
    }
    fn boundary_value(&self, _: Side, _: usize, t: f64, x: &[f64]) -> f64 {
        exact(t, x[0])
    }
}

#[test]
fn the_exact_wave_solves_fisher_kpp() {
    // The closed form itself, by central differences (independent of the solver).
    let h = 1e-3;
    for &(t, x) in &[(0.0, -3.0), (0.7, 0.5), (1.9, 4.0)] {
        let u = exact(t, x);
        let u_t = (exact(t + h, x) - exact(t - h, x)) / (2.0 * h);
        let u_xx = (exact(t, x + h) - 2.0 * u + exact(t, x - h)) / (h * h);
        assert!((u_t - u_xx - u * (1.0 - u)).abs() < 1e-6);
    }
}

#[test]
fn fisher_wave_converges_with_order_two_in_space() {
    let options = MolOptions {
        rtol: 1e-11,
        atol: 1e-13,
        ..MolOptions::default()
    };
    let ts = times(2.0, 4);
    let errors: Vec<f64> = [1, 2, 4]
        .iter()
        .map(|&r| {
            let domain = MolDomain::interval(-10.0, 20.0, 61, r).unwrap();
            let disc = Discretisation::new(&Fisher, &domain).unwrap();
            let u0 = disc.sample(|x| vec![exact(0.0, x[0])]).unwrap();
            let sol = disc.solve(&u0, &ts, &options).unwrap();
            max_error(&disc, &sol.frames, &ts, 0, |t, x| exact(t, x[0]))
        })
        .collect();
    let p = orders(&errors, 2.0);
    println!("Fisher–KPP wave: errors {errors:?}, orders {p:?}");
    assert!(errors[2] < 1e-3, "{errors:?}");
    for order in p {
        assert!((order - 2.0).abs() < 0.15, "order {order}");
    }
}

/// The largest difference at t = 2 between fixed steps `dts` of `method` and
/// a tight implicit solve of the same semi-discrete system, and the orders
/// those differences show.
fn fixed_step_orders(method: MolMethod, dts: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let domain = MolDomain::interval(-10.0, 20.0, 61, 1).unwrap();
    let disc = Discretisation::new(&Fisher, &domain).unwrap();
    let u0 = disc.sample(|x| vec![exact(0.0, x[0])]).unwrap();
    let ts = [0.0, 2.0];
    let reference = disc
        .solve(
            &u0,
            &ts,
            &MolOptions {
                rtol: 1e-13,
                atol: 1e-15,
                ..MolOptions::default()
            },
        )
        .unwrap();
    let last = |frames: &[f64]| frames[frames.len() / 2..].to_vec();
    let target = last(&reference.frames);
    let errors: Vec<f64> = dts
        .iter()
        .map(|&dt| {
            let options = MolOptions {
                fixed_step: Some(dt),
                rtol: 1e-12,
                atol: 1e-14,
                method,
                ..MolOptions::default()
            };
            let sol = disc.solve(&u0, &ts, &options).unwrap();
            assert_eq!(sol.stats.steps, (2.0 / dt).round() as usize);
            last(&sol.frames)
                .iter()
                .zip(&target)
                .fold(0.0_f64, |m, (a, b)| m.max((a - b).abs()))
        })
        .collect();
    let p = orders(&errors, 2.0);
    println!("Fisher–KPP fixed {method:?} steps: errors {errors:?}, orders {p:?}");
    (errors, p)
}

#[test]
fn fixed_sdirk_steps_converge_with_order_four_in_time() {
    let (_, p) = fixed_step_orders(MolMethod::Implicit, &[0.25, 0.125, 0.0625, 0.03125]);
    for order in &p[1..] {
        assert!((order - 4.0).abs() < 0.4, "order {order}");
    }
}

#[test]
fn fixed_dormand_prince_steps_converge_with_order_five_in_time() {
    // Steps within its stability bound (h·4/Δx² ≤ 3.3 for Δx = 0.5).
    let (errors, p) = fixed_step_orders(MolMethod::Explicit, &[0.125, 0.0625, 0.03125, 0.015625]);
    assert!(errors[3] < 1e-11, "{errors:?}");
    // The orders approach 5 from above (5.9, 5.5, 5.3): order 4 or 6 would
    // stay near 4 or 6.
    for order in &p[1..] {
        assert!((order - 5.0).abs() < 0.6, "order {order}");
    }
}

#[test]
fn the_global_error_is_proportional_to_the_tolerance() {
    let domain = MolDomain::interval(-10.0, 20.0, 61, 1).unwrap();
    let disc = Discretisation::new(&Fisher, &domain).unwrap();
    let u0 = disc.sample(|x| vec![exact(0.0, x[0])]).unwrap();
    let ts = [0.0, 2.0];
    let solve = |rtol: f64, method| {
        let options = MolOptions {
            rtol,
            atol: rtol,
            method,
            ..MolOptions::default()
        };
        disc.solve(&u0, &ts, &options).unwrap()
    };
    let reference = solve(1e-13, MolMethod::Implicit);
    // At 1e-5 the explicit steps are held by stability (h ≤ 3.3Δx²/4), not
    // by the tolerance, so its error is smaller than asked and the first
    // decade would not show the proportionality.
    for (method, tolerances) in [
        (MolMethod::Implicit, [1e-5, 1e-7, 1e-9]),
        (MolMethod::Explicit, [1e-7, 1e-9, 1e-11]),
    ] {
        let errors: Vec<f64> = tolerances
            .iter()
            .map(|&tol| {
                let sol = solve(tol, method);
                sol.frames
                    .iter()
                    .zip(&reference.frames)
                    .fold(0.0_f64, |m, (a, b)| m.max((a - b).abs()))
            })
            .collect();
        // Per decade of tolerance the error of a method whose local error is
        // held at `tol` drops by about a decade (Hairer–Nørsett–Wanner,
        // Solving ODEs I, §II.4: tolerance proportionality).
        let slopes: Vec<f64> = errors
            .windows(2)
            .map(|w| (w[0] / w[1]).log10() / 2.0)
            .collect();
        println!(
            "Fisher–KPP tolerance proportionality, {method:?}: errors {errors:?}, slopes {slopes:?}"
        );
        for s in slopes {
            assert!((0.6..=1.3).contains(&s), "{method:?}: slope {s}");
        }
    }
}
