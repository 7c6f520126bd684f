//! The implicit-function-theorem backward pass against central finite
//! differences of tightly solved problems.

mod common;

use common::pdes::{QuadraticTransport, SorptionLike};
use common::{Parts, central_difference, dot, relative_direction, rng, solve};
use tessera_constraints::{HessianMode, Pde, Sensitivity};

/// Checks `⟨θ̄, δ⟩` against the directional derivative of `L(θ) = v·ω*(θ)` for
/// a relative perturbation `δ` of each input group separately.
fn check_against_fd<P: Pde>(pde: &P, parts: &Parts, seed: u64, tol: f64) {
    let n = parts.size.n_basis;
    let start = vec![1.0; n];
    let omega = solve(pde, parts, &start);
    let mut r = rng(seed);
    let v = common::uniform(&mut r, n, 1.0);
    let problem = parts.build();
    let sens = Sensitivity::new(pde, &problem, &omega, HessianMode::Exact).unwrap();
    let grad = sens.gradient(&problem, &v).unwrap();
    let analytic_flat = [
        &grad.term_rows[..],
        &grad.offsets,
        &grad.linear,
        &grad.linear_rhs,
    ]
    .concat();
    let x = parts.flat();
    let lengths = [
        parts.term_rows.len(),
        parts.offsets.len(),
        parts.linear.len(),
        parts.linear_rhs.len(),
    ];
    let names = ["term rows", "offsets", "linear rows", "linear rhs"];
    let mut begin = 0;
    for (len, name) in lengths.into_iter().zip(names) {
        if len == 0 {
            continue;
        }
        let full = relative_direction(&mut r, &x);
        let delta: Vec<f64> = (0..x.len())
            .map(|i| {
                if (begin..begin + len).contains(&i) {
                    full[i]
                } else {
                    0.0
                }
            })
            .collect();
        let loss = |y: &[f64]| dot(&v, &solve(pde, &parts.with_flat(y), &omega));
        let fd = central_difference(loss, &x, &delta, 1e-5);
        // Relative to the larger of the two values and of the Cauchy–Schwarz
        // scale of this input group (a group whose directional derivative
        // happens to be tiny is judged against its gradient's size).
        let group = begin..begin + len;
        let scale = (dot(&analytic_flat[group.clone()], &analytic_flat[group.clone()])
            * dot(&delta[group.clone()], &delta[group]))
        .sqrt();
        common::assert_close(dot(&analytic_flat, &delta), fd, tol, 1e-2 * scale, name);
        begin += len;
    }
}

#[test]
fn sorption_gradients_match_finite_differences() {
    for seed in 0..3 {
        let parts = common::sorption_parts(10 + seed, 40, 5, 6);
        check_against_fd(&SorptionLike, &parts, seed, 1e-6);
    }
}

#[test]
fn quadratic_gradients_match_finite_differences() {
    let pde = QuadraticTransport {
        nu: 0.1,
        with_solution_map: false,
    };
    for seed in 0..3 {
        let parts = common::quadratic_parts(20 + seed, 30, 4, 5);
        check_against_fd(&pde, &parts, seed, 1e-6);
    }
}

#[test]
fn single_entries_match_finite_differences() {
    // Entry-wise (not only directional) for a handful of term-row entries.
    let parts = common::sorption_parts(30, 25, 4, 4);
    let omega = solve(&SorptionLike, &parts, &[1.0; 4]);
    let v = [0.3, -1.0, 0.5, 2.0];
    let problem = parts.build();
    let grad = Sensitivity::new(&SorptionLike, &problem, &omega, HessianMode::Exact)
        .unwrap()
        .gradient(&problem, &v)
        .unwrap();
    let x = parts.flat();
    let largest = grad.term_rows.iter().map(|g| g.abs()).fold(0.0, f64::max);
    for i in [0, 5, 17, 33, 70, 111, 250, 399] {
        let mut delta = vec![0.0; x.len()];
        delta[i] = x[i].abs() + 1e-3;
        let loss = |y: &[f64]| dot(&v, &solve(&SorptionLike, &parts.with_flat(y), &omega));
        // A single entry moves the loss little: a larger step keeps round-off
        // small, and the Richardson step keeps truncation at O(h⁴).
        let fd = central_difference(loss, &x, &delta, 1e-3);
        let analytic = grad.term_rows[i] * delta[i];
        common::assert_close(analytic, fd, 1e-6, 1e-2 * largest * delta[i], "entry");
    }
}

/// The Jacobian of the full residual vector by central differences.
fn fd_jacobian<P: Pde>(pde: &P, parts: &Parts, omega: &[f64]) -> Vec<Vec<f64>> {
    let problem = parts.build();
    (0..omega.len())
        .map(|k| {
            let h = 1e-6;
            let mut plus = omega.to_vec();
            let mut minus = omega.to_vec();
            plus[k] += h;
            minus[k] -= h;
            let rp = problem.residual(pde, &plus).unwrap();
            let rm = problem.residual(pde, &minus).unwrap();
            rp.iter()
                .zip(&rm)
                .map(|(a, b)| (a - b) / (2.0 * h))
                .collect()
        })
        .collect()
}

#[test]
fn gauss_newton_hessian_is_jtj_and_differs_from_the_exact_one() {
    let parts = common::sorption_parts(40, 30, 4, 3);
    let omega = solve(&SorptionLike, &parts, &[1.0; 4]);
    let problem = parts.build();
    let gn = Sensitivity::new(&SorptionLike, &problem, &omega, HessianMode::GaussNewton).unwrap();
    let exact = Sensitivity::new(&SorptionLike, &problem, &omega, HessianMode::Exact).unwrap();
    let columns = fd_jacobian(&SorptionLike, &parts, &omega);
    let n = omega.len();
    let scale = gn.hessian().iter().map(|x| x.abs()).fold(0.0, f64::max);
    for i in 0..n {
        for j in 0..n {
            let jtj = dot(&columns[i], &columns[j]);
            assert!(
                (gn.hessian()[i * n + j] - jtj).abs() <= 1e-6 * scale,
                "JᵀJ[{i},{j}]: {} vs {jtj}",
                gn.hessian()[i * n + j]
            );
        }
    }
    let diff: f64 = gn
        .hessian()
        .iter()
        .zip(exact.hessian())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        diff > 1e-8 * scale,
        "a nonzero-residual problem has curvature"
    );
    // The exact Hessian is the derivative of the gradient Jᵀr (by differences).
    let grad_at = |w: &[f64]| -> Vec<f64> {
        let cols = fd_jacobian(&SorptionLike, &parts, w);
        let r = problem.residual(&SorptionLike, w).unwrap();
        cols.iter().map(|c| dot(c, &r)).collect()
    };
    for k in 0..n {
        let h = 1e-4;
        let mut plus = omega.clone();
        let mut minus = omega.clone();
        plus[k] += h;
        minus[k] -= h;
        let (gp, gm) = (grad_at(&plus), grad_at(&minus));
        for i in 0..n {
            let fd = (gp[i] - gm[i]) / (2.0 * h);
            assert!(
                (exact.hessian()[i * n + k] - fd).abs() <= 1e-4 * scale,
                "H[{i},{k}]: {} vs {fd}",
                exact.hessian()[i * n + k]
            );
        }
    }
    // And its adjoint solve is a solve with JᵀJ.
    let v = [1.0, -2.0, 0.5, 0.25];
    let lambda = gn.adjoint(&v).unwrap();
    for (i, &vi) in v.iter().enumerate().take(n) {
        let hl: f64 = (0..n).map(|j| gn.hessian()[i * n + j] * lambda[j]).sum();
        assert!((hl - vi).abs() <= 1e-9 * (1.0 + vi.abs()));
    }
}

#[test]
fn gauss_newton_equals_exact_for_a_zero_residual_problem() {
    // Linear rows only with a consistent right-hand side and no ridge: r(ω*) = 0.
    let mut parts = common::quadratic_parts(50, 0, 3, 6);
    let truth = [0.5, -1.0, 2.0];
    parts.linear_rhs = parts
        .linear
        .chunks_exact(3)
        .map(|row| dot(row, &truth))
        .collect();
    parts.ridge = 0.0;
    let pde = QuadraticTransport {
        nu: 0.1,
        with_solution_map: false,
    };
    let problem = parts.build();
    let omega = solve(&pde, &parts, &[0.0; 3]);
    let v = [1.0, 2.0, 3.0];
    let gn = Sensitivity::new(&pde, &problem, &omega, HessianMode::GaussNewton).unwrap();
    let ex = Sensitivity::new(&pde, &problem, &omega, HessianMode::Exact).unwrap();
    let (a, b) = (
        gn.gradient(&problem, &v).unwrap(),
        ex.gradient(&problem, &v).unwrap(),
    );
    for (x, y) in a.linear.iter().zip(&b.linear) {
        assert!((x - y).abs() <= 1e-12 * (1.0 + y.abs()));
    }
}

#[test]
fn bad_upstream_gradients_are_typed_errors() {
    let parts = common::sorption_parts(60, 10, 3, 2);
    let problem = parts.build();
    let omega = solve(&SorptionLike, &parts, &[1.0; 3]);
    let sens = Sensitivity::new(&SorptionLike, &problem, &omega, HessianMode::Exact).unwrap();
    assert!(sens.adjoint(&[1.0, 2.0]).is_err());
    assert!(sens.adjoint(&[1.0, f64::NAN, 0.0]).is_err());
    assert!(Sensitivity::new(&SorptionLike, &problem, &[f64::NAN; 3], HessianMode::Exact).is_err());
}
