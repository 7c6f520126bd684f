//! The method-of-lines solver on viscous Burgers `u_t + u u_x = ν u_xx`
//! against the Cole–Hopf solution (Hopf 1950, Cole 1951): if `θ_t = ν θ_xx`
//! and `θ > 0` then `u = −2ν θ_x/θ` solves Burgers. With
//! `θ = 2 + e^{−νπ²t} cos πx + ½ e^{−4νπ²t} sin 2πx` the boundary data at
//! `x = 0, 1` are non-zero and time-dependent.

mod mol_support;

use mol_support::{max_error, orders, times};
use num_dual::DualNum;
use std::f64::consts::PI;
use tessera_scenarios::mol::{
    Boundary, Derivative, Discretisation, MolDomain, MolOptions, MolPde, MolTerm, PointValues, Side,
};

const NU: f64 = 0.1;

/// The Cole–Hopf solution.
fn exact(t: f64, x: f64) -> f64 {
    let (e1, e2) = ((-NU * PI * PI * t).exp(), (-4.0 * NU * PI * PI * t).exp());
    let theta = 2.0 + e1 * (PI * x).cos() + 0.5 * e2 * (2.0 * PI * x).sin();
    let theta_x = -PI * e1 * (PI * x).sin() + PI * e2 * (2.0 * PI * x).cos();
    -2.0 * NU * theta_x / theta
}

struct Burgers;

impl MolPde for Burgers {
    fn terms(&self) -> Vec<MolTerm> {
        vec![
            MolTerm::new(0, Derivative::Value),
            MolTerm::new(0, Derivative::Dx),
            MolTerm::new(0, Derivative::Dxx),
        ]
    }
    fn residual<D: DualNum<Primitive = f64> + Copy>(&self, at: &PointValues<'_, D>, out: &mut [D]) {
        out[0] = at.u_t[0] + at.z[0] * at.z[1] - at.z[2] * NU;
    }
    fn boundary(&self, _: Side, _: usize) -> Boundary {
        Boundary::dirichlet()
    }
    fn boundary_value(&self, _: Side, _: usize, t: f64, x: &[f64]) -> f64 {
        exact(t, x[0])
    }
}

#[test]
fn burgers_matches_cole_hopf_with_order_two_in_space() {
    let options = MolOptions {
        rtol: 1e-11,
        atol: 1e-13,
        ..MolOptions::default()
    };
    let ts = times(0.5, 5);
    let errors: Vec<f64> = [1, 2, 4, 8]
        .iter()
        .map(|&r| {
            let domain = MolDomain::interval(0.0, 1.0, 11, r).unwrap();
            let disc = Discretisation::new(&Burgers, &domain).unwrap();
            let u0 = disc.sample(|x| vec![exact(0.0, x[0])]).unwrap();
            let sol = disc.solve(&u0, &ts, &options).unwrap();
            max_error(&disc, &sol.frames, &ts, 0, |t, x| exact(t, x[0]))
        })
        .collect();
    let p = orders(&errors, 2.0);
    println!("Burgers (Cole–Hopf): errors {errors:?}, orders {p:?}");
    assert!(errors[3] < 1e-3, "{errors:?}");
    for order in p {
        assert!((order - 2.0).abs() < 0.15, "order {order}");
    }
}
