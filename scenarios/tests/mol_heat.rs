//! The method-of-lines solver on the heat equation `u_t = ν Δu` against
//! separable closed forms `sin(kπx + φ)·e^{−k²π²νt}` (and their 2-D products):
//! Dirichlet, Neumann and Robin data, periodic and spectral axes, a coupled
//! two-component system, and the observed order in space.

mod mol_support;

use mol_support::{max_error, orders, times};
use num_dual::DualNum;
use std::f64::consts::PI;
use tessera_scenarios::mol::{
    Boundary, Derivative, Discretisation, MolDomain, MolOptions, MolPde, MolTerm, PointValues,
    Side, SpatialAxis, Stencil,
};

/// `sin(kπx + φ)·e^{−k²π²νt}` and its x derivative.
#[derive(Debug, Clone, Copy)]
struct Mode {
    nu: f64,
    k: f64,
    phase: f64,
}

impl Mode {
    fn value(&self, t: f64, x: f64) -> f64 {
        let w = self.k * PI;
        (w * x + self.phase).sin() * (-w * w * self.nu * t).exp()
    }
    fn dx(&self, t: f64, x: f64) -> f64 {
        let w = self.k * PI;
        w * (w * x + self.phase).cos() * (-w * w * self.nu * t).exp()
    }
}

/// `u_t − ν u_xx = 0` on `[0, 1]` with the given conditions, whose data come
/// from `mode`.
struct Heat1d {
    mode: Mode,
    low: Boundary,
    high: Boundary,
}

impl MolPde for Heat1d {
    fn terms(&self) -> Vec<MolTerm> {
        vec![MolTerm::new(0, Derivative::Dxx)]
    }
    fn residual<D: DualNum<Primitive = f64> + Copy>(&self, at: &PointValues<'_, D>, out: &mut [D]) {
        out[0] = at.u_t[0] - at.z[0] * self.mode.nu;
    }
    fn boundary(&self, side: Side, _: usize) -> Boundary {
        if side == Side::XLow {
            self.low
        } else {
            self.high
        }
    }
    fn boundary_value(&self, side: Side, _: usize, t: f64, x: &[f64]) -> f64 {
        let b = self.boundary(side, 0);
        let Boundary::Robin { alpha, beta } = b else {
            return 0.0;
        };
        // Outward normal: −∂x on the left, +∂x on the right.
        let normal = if side == Side::XLow { -1.0 } else { 1.0 };
        alpha * self.mode.value(t, x[0]) + beta * normal * self.mode.dx(t, x[0])
    }
}

fn tight() -> MolOptions {
    MolOptions {
        rtol: 1e-11,
        atol: 1e-13,
        ..MolOptions::default()
    }
}

/// Max error at `t ∈ (0, 0.1]` on 11 output points for each refinement.
fn errors_1d(pde: &Heat1d, refinements: &[usize]) -> Vec<f64> {
    let ts = times(0.1, 4);
    refinements
        .iter()
        .map(|&r| {
            let domain = MolDomain::interval(0.0, 1.0, 11, r).unwrap();
            let disc = Discretisation::new(pde, &domain).unwrap();
            let u0 = disc.sample(|x| vec![pde.mode.value(0.0, x[0])]).unwrap();
            let sol = disc.solve(&u0, &ts, &tight()).unwrap();
            max_error(&disc, &sol.frames, &ts, 0, |t, x| pde.mode.value(t, x[0]))
        })
        .collect()
}

#[test]
fn dirichlet_heat_converges_with_order_two_in_space() {
    let pde = Heat1d {
        mode: Mode {
            nu: 1.0,
            k: 1.0,
            phase: 0.0,
        },
        low: Boundary::dirichlet(),
        high: Boundary::dirichlet(),
    };
    let errors = errors_1d(&pde, &[1, 2, 4, 8]);
    let p = orders(&errors, 2.0);
    println!("Dirichlet heat: errors {errors:?}, orders {p:?}");
    assert!(errors[3] < 1e-4, "{errors:?}");
    for order in p {
        assert!((order - 2.0).abs() < 0.1, "order {order}");
    }
}

#[test]
fn neumann_and_robin_heat_converge_with_order_two_in_space() {
    let pde = Heat1d {
        mode: Mode {
            nu: 0.5,
            k: 1.5,
            phase: 0.3,
        },
        low: Boundary::neumann(),
        high: Boundary::Robin {
            alpha: 1.0,
            beta: 0.5,
        },
    };
    let errors = errors_1d(&pde, &[1, 2, 4, 8]);
    let p = orders(&errors, 2.0);
    println!("Neumann/Robin heat: errors {errors:?}, orders {p:?}");
    assert!(errors[3] < 1e-3, "{errors:?}");
    for order in p {
        assert!((order - 2.0).abs() < 0.15, "order {order}");
    }
}

/// `u_t − ν Δu = 0` on `[0, 1] × [0, 1)`: Dirichlet in x, periodic in y, or
/// periodic (spectral) in both.
struct Heat2d {
    nu: f64,
    x_periodic: bool,
    stencil: Stencil,
}

impl MolPde for Heat2d {
    fn terms(&self) -> Vec<MolTerm> {
        vec![MolTerm::new(0, Derivative::Laplacian)]
    }
    fn stencil(&self) -> Stencil {
        self.stencil
    }
    fn residual<D: DualNum<Primitive = f64> + Copy>(&self, at: &PointValues<'_, D>, out: &mut [D]) {
        out[0] = at.u_t[0] - at.z[0] * self.nu;
    }
    fn boundary(&self, side: Side, _: usize) -> Boundary {
        match side {
            Side::XLow | Side::XHigh if !self.x_periodic => Boundary::dirichlet(),
            _ => Boundary::Periodic,
        }
    }
}

#[test]
fn heat_2d_with_dirichlet_and_periodic_axes_converges_with_order_two() {
    let pde = Heat2d {
        nu: 0.1,
        x_periodic: false,
        stencil: Stencil::FiniteDifference,
    };
    let exact = |t: f64, x: &[f64]| {
        (PI * x[0]).sin() * (2.0 * PI * x[1]).cos() * (-5.0 * PI * PI * 0.1 * t).exp()
    };
    let ts = times(0.2, 2);
    let errors: Vec<f64> = [1, 2, 4]
        .iter()
        .map(|&r| {
            let axes = vec![
                SpatialAxis {
                    lo: 0.0,
                    hi: 1.0,
                    points: 9,
                },
                SpatialAxis {
                    lo: 0.0,
                    hi: 1.0,
                    points: 8,
                },
            ];
            let domain = MolDomain::new(axes, r).unwrap();
            let disc = Discretisation::new(&pde, &domain).unwrap();
            let u0 = disc.sample(|x| vec![exact(0.0, x)]).unwrap();
            let sol = disc.solve(&u0, &ts, &tight()).unwrap();
            max_error(&disc, &sol.frames, &ts, 0, exact)
        })
        .collect();
    let p = orders(&errors, 2.0);
    println!("2-D heat: errors {errors:?}, orders {p:?}");
    for order in p {
        assert!((order - 2.0).abs() < 0.15, "order {order}");
    }
}

#[test]
fn spectral_heat_on_a_periodic_square_is_exact_up_to_the_time_tolerance() {
    let pde = Heat2d {
        nu: 0.1,
        x_periodic: true,
        stencil: Stencil::Spectral,
    };
    let exact = |t: f64, x: &[f64]| x[0].sin() * (2.0 * x[1]).cos() * (-5.0 * 0.1 * t).exp();
    let axis = SpatialAxis {
        lo: 0.0,
        hi: 2.0 * PI,
        points: 8,
    };
    let domain = MolDomain::new(vec![axis, axis], 1).unwrap();
    let disc = Discretisation::new(&pde, &domain).unwrap();
    let ts = times(1.0, 2);
    let u0 = disc.sample(|x| vec![exact(0.0, x)]).unwrap();
    let sol = disc.solve(&u0, &ts, &tight()).unwrap();
    let error = max_error(&disc, &sol.frames, &ts, 0, exact);
    println!("spectral heat: error {error:e}, {:?}", sol.stats);
    assert!(error < 1e-8, "{error}");
}

/// Two components coupled through `∂F/∂u_t`: with `p = u + v`, `q = u − v`,
/// `p_t = ν₁ p_xx` and `q_t = ν₂ q_xx`, written as rows in `u, v`.
struct CoupledHeat {
    nu: [f64; 2],
}

impl MolPde for CoupledHeat {
    fn components(&self) -> usize {
        2
    }
    fn terms(&self) -> Vec<MolTerm> {
        vec![
            MolTerm::new(0, Derivative::Dxx),
            MolTerm::new(1, Derivative::Dxx),
        ]
    }
    fn residual<D: DualNum<Primitive = f64> + Copy>(&self, at: &PointValues<'_, D>, out: &mut [D]) {
        out[0] = (at.u_t[0] + at.u_t[1]) - (at.z[0] + at.z[1]) * self.nu[0];
        out[1] = (at.u_t[0] - at.u_t[1]) - (at.z[0] - at.z[1]) * self.nu[1];
    }
    fn boundary(&self, _: Side, _: usize) -> Boundary {
        Boundary::dirichlet()
    }
}

#[test]
fn a_system_coupled_through_the_time_derivative_matches_its_closed_form() {
    let pde = CoupledHeat { nu: [1.0, 0.25] };
    let p = |t: f64, x: f64| (PI * x).sin() * (-PI * PI * t).exp();
    let q = |t: f64, x: f64| (2.0 * PI * x).sin() * (-4.0 * PI * PI * 0.25 * t).exp();
    let domain = MolDomain::interval(0.0, 1.0, 11, 8).unwrap();
    let disc = Discretisation::new(&pde, &domain).unwrap();
    let ts = times(0.1, 2);
    let u0 = disc
        .sample(|x| {
            let (p, q) = (p(0.0, x[0]), q(0.0, x[0]));
            vec![0.5 * (p + q), 0.5 * (p - q)]
        })
        .unwrap();
    let sol = disc.solve(&u0, &ts, &tight()).unwrap();
    let eu = max_error(&disc, &sol.frames, &ts, 0, |t, x| {
        0.5 * (p(t, x[0]) + q(t, x[0]))
    });
    let ev = max_error(&disc, &sol.frames, &ts, 1, |t, x| {
        0.5 * (p(t, x[0]) - q(t, x[0]))
    });
    println!("coupled system: errors u {eu:e}, v {ev:e}");
    // Second-order error at h = 1/80 (each mode's error is ~ t·ν·k⁴π⁴h²/12).
    assert!(eu < 2e-4 && ev < 2e-4, "{eu} {ev}");
}
