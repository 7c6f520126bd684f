//! A stiff case: Allen–Cahn `u_t = ν u_xx + κ(u − u³)` with a thin interface.
//! Its steady state is `tanh(x/δ)`, `δ = √(2ν/κ)` (`ν u'' = −κ u(1 − u²)` for
//! `u = tanh(x/δ)`, since `u'' = −2u(1 − u²)/δ²`). On a grid that resolves
//! the interface the diffusion eigenvalues reach `4ν/h²`, so an explicit
//! method's stability limit dictates tens of thousands of steps; the implicit
//! solver needs a few dozen, and the automatic choice finds the system stiff
//! and switches to it.

mod mol_support;

use mol_support::max_error;
use num_dual::DualNum;
use tessera_scenarios::mol::{
    Boundary, Derivative, Discretisation, MolDomain, MolMethod, MolOptions, MolPde, MolStats,
    MolTerm, PointValues, Side,
};

const NU: f64 = 0.01;
const KAPPA: f64 = 100.0;

fn delta() -> f64 {
    (2.0 * NU / KAPPA).sqrt()
}

struct AllenCahn;

impl MolPde for AllenCahn {
    fn terms(&self) -> Vec<MolTerm> {
        vec![
            MolTerm::new(0, Derivative::Value),
            MolTerm::new(0, Derivative::Dxx),
        ]
    }
    fn residual<D: DualNum<Primitive = f64> + Copy>(&self, at: &PointValues<'_, D>, out: &mut [D]) {
        out[0] = at.u_t[0] - at.z[1] * NU - (at.z[0] - at.z[0].powi(3)) * KAPPA;
    }
    fn boundary(&self, _: Side, _: usize) -> Boundary {
        Boundary::dirichlet()
    }
    fn boundary_value(&self, _: Side, _: usize, _: f64, x: &[f64]) -> f64 {
        (x[0] / delta()).tanh()
    }
}

/// The relaxation of a front twice too wide to the steady interface by
/// `method`: the max error against `tanh(x/δ)` at t = 10, what it cost, and
/// the steps the classical RK4 would need for stability alone.
fn relax(method: MolMethod) -> (f64, MolStats, usize) {
    let refinement = 20;
    let domain = MolDomain::interval(-1.0, 1.0, 41, refinement).unwrap();
    let disc = Discretisation::new(&AllenCahn, &domain).unwrap();
    let h = 2.0 / (disc.solver_dims()[0] - 1) as f64;
    let u0 = disc
        .sample(|x| vec![(x[0] / (2.0 * delta())).tanh()])
        .unwrap();
    let t_end = 10.0;
    let options = MolOptions {
        rtol: 1e-6,
        atol: 1e-8,
        method,
        ..MolOptions::default()
    };
    let ts = [0.0, t_end];
    let sol = disc.solve(&u0, &ts, &options).unwrap();
    let error = max_error(&disc, &sol.frames, &ts, 0, |_, x| (x[0] / delta()).tanh());
    // Spectral radius bound of the Jacobian (Gershgorin): 4ν/h² + 2κ; the
    // classical RK4 is stable for h·ρ ≤ 2.785 on the negative real axis.
    let rho = 4.0 * NU / (h * h) + 2.0 * KAPPA;
    let explicit_steps = (t_end * rho / 2.785).ceil() as usize;
    println!(
        "Allen–Cahn, {method:?}: error {error:e}, {:?}, explicit RK4 would need ≥ {explicit_steps} steps",
        sol.stats
    );
    (error, sol.stats, explicit_steps)
}

#[test]
fn implicit_steps_beat_the_explicit_stability_limit_on_allen_cahn() {
    let (error, stats, explicit_steps) = relax(MolMethod::Implicit);
    // Second order at h/δ ≈ 0.18: the interface error is a few 1e-3.
    assert!(error < 5e-3, "{error}");
    assert!(
        stats.steps * 100 < explicit_steps,
        "{} steps vs {explicit_steps}",
        stats.steps
    );
}

#[test]
fn auto_finds_allen_cahn_stiff_and_goes_on_implicitly() {
    let (error, stats, explicit_steps) = relax(MolMethod::Auto);
    assert!(error < 5e-3, "{error}");
    // The stiffness test fires within its first few dozen steps (fifteen
    // held by stability), long before the front has relaxed.
    let switched = stats.switched_at.expect("auto switched");
    assert!(switched < 0.1, "{stats:?}");
    assert!((15..100).contains(&stats.explicit_steps), "{stats:?}");
    assert!(stats.steps * 50 < explicit_steps, "{stats:?}");
}
