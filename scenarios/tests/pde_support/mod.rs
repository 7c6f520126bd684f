//! Helpers shared by the PDE tests: evaluate terms and residuals on a field,
//! compare dual-number derivatives of a residual with finite differences, and
//! measure convergence orders.
#![allow(dead_code)] // each test file uses a subset

use num_dual::{Dual64, HyperDual64};
use tessera_constraints::{LinearRow, Pde};
use tessera_meshes::Grid;

/// Every term `D_j u` of `pde` on `grid`, one full field per term.
pub fn term_fields<P: Pde>(pde: &P, grid: &Grid, u: &[f64]) -> Vec<Vec<f64>> {
    pde.terms(grid)
        .unwrap()
        .iter()
        .map(|term| term.operator.apply_to_vec(u, 1))
        .collect()
}

/// The residual `F(z(p))` at every point, evaluated on plain `f64`.
pub fn residual_field<P: Pde>(pde: &P, terms: &[Vec<f64>]) -> Vec<f64> {
    let mut out = [0.0];
    (0..terms[0].len())
        .map(|p| {
            let z: Vec<f64> = terms.iter().map(|t| t[p]).collect();
            pde.residual::<f64>(&z, &[], &mut out);
            out[0]
        })
        .collect()
}

/// `Σ_j c_j z_j(point) − rhs` of a linear row.
pub fn row_value(row: &LinearRow, terms: &[Vec<f64>]) -> f64 {
    row.coeffs
        .iter()
        .map(|&(j, c)| c * terms[j][row.point])
        .sum::<f64>()
        - row.rhs
}

/// The residual at one point on plain `f64`.
pub fn residual_at<P: Pde>(pde: &P, z: &[f64]) -> f64 {
    let mut out = [0.0];
    pde.residual::<f64>(z, &[], &mut out);
    out[0]
}

/// Checks the gradient (dual numbers) and Hessian (hyper-dual numbers) of the
/// residual at `z` against central finite differences of the `f64` residual, with
/// step `h_j = 1e-4·(1 + |z_j|)` (gradient error `O(h²)`) and a tolerance scaled by
/// the size of the derivatives.
pub fn check_derivatives_against_fd<P: Pde>(pde: &P, z: &[f64]) {
    let d = z.len();
    let step = |j: usize| 1e-4 * (1.0 + z[j].abs());
    let shifted = |j: usize, s: f64| {
        let mut zz = z.to_vec();
        zz[j] += s;
        zz
    };
    let fd_grad = |z: &[f64], j: usize| {
        let h = 1e-4 * (1.0 + z[j].abs());
        let (mut up, mut down) = (z.to_vec(), z.to_vec());
        up[j] += h;
        down[j] -= h;
        (residual_at(pde, &up) - residual_at(pde, &down)) / (2.0 * h)
    };
    for j in 0..d {
        let dual: Vec<Dual64> = (0..d)
            .map(|l| Dual64::new(z[l], if l == j { 1.0 } else { 0.0 }))
            .collect();
        let mut out = [Dual64::from(0.0)];
        pde.residual(&dual, &[], &mut out);
        let exact = out[0].eps;
        let fd = fd_grad(z, j);
        assert!(
            (exact - fd).abs() <= 1e-6 * (1.0 + fd.abs()),
            "dF/dz_{j}: dual {exact} vs finite differences {fd}"
        );
        assert_eq!(
            out[0].re,
            residual_at(pde, z),
            "dual value differs from f64 value"
        );
        for l in 0..d {
            let hyper: Vec<HyperDual64> = (0..d)
                .map(|m| {
                    let e1 = if m == j { 1.0 } else { 0.0 };
                    let e2 = if m == l { 1.0 } else { 0.0 };
                    HyperDual64::new(z[m], e1, e2, 0.0)
                })
                .collect();
            let mut out = [HyperDual64::from(0.0)];
            pde.residual(&hyper, &[], &mut out);
            let exact = out[0].eps1eps2;
            let h = step(l);
            let fd = (fd_grad(&shifted(l, h), j) - fd_grad(&shifted(l, -h), j)) / (2.0 * h);
            assert!(
                (exact - fd).abs() <= 1e-5 * (1.0 + fd.abs()),
                "d²F/dz_{j}dz_{l}: hyper-dual {exact} vs finite differences {fd}"
            );
        }
    }
}

/// Observed orders `log(e_{k}/e_{k+1}) / log 2` of errors on grids refined by 2.
pub fn observed_orders(errors: &[f64]) -> Vec<f64> {
    errors.windows(2).map(|w| (w[0] / w[1]).log2()).collect()
}

/// Largest `|a_p − b_p|` over the points `p` that `keep` accepts.
pub fn max_error(a: &[f64], b: &[f64], keep: impl Fn(usize) -> bool) -> f64 {
    a.iter()
        .zip(b)
        .enumerate()
        .filter(|&(p, _)| keep(p))
        .map(|(_, (x, y))| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Asserts that every observed order is at least `min_order`.
#[track_caller]
pub fn assert_order(what: &str, errors: &[f64], min_order: f64) {
    let orders = observed_orders(errors);
    assert!(
        orders.iter().all(|&o| o >= min_order),
        "{what}: errors {errors:?} give orders {orders:?}, expected ≥ {min_order}"
    );
}
