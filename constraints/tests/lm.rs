//! Levenberg–Marquardt against independent oracles: a direct QR least-squares
//! solve for linear problems, known minimisers for nonlinear ones.

mod common;

use common::pdes::SorptionLike;
use faer::linalg::solvers::SolveLstsq;
use faer::{ColRef, Mat};
use num_dual::DualNum;
use tessera_constraints::{
    ConstraintError, ExpertProblem, InitialGuess, LevenbergMarquardt, LinearRow, Pde, ProblemSize,
    StopReason, Term,
};
use tessera_meshes::Grid;

/// A residual defined only by `residual` (problem-level tests need no grid).
macro_rules! pointwise_pde {
    ($name:ident, $m:expr, |$z:ident, $out:ident| $body:expr) => {
        struct $name;
        impl Pde for $name {
            fn terms(&self, _: &Grid) -> Result<Vec<Term>, ConstraintError> {
                Ok(Vec::new())
            }
            fn n_equations(&self) -> usize {
                $m
            }
            fn residual<T: DualNum<Primitive = f64> + Copy>(
                &self,
                $z: &[T],
                _: &[f64],
                $out: &mut [T],
            ) {
                $body
            }
            fn linear_rows(&self, _: &Grid, _: &[f64]) -> Result<Vec<LinearRow>, ConstraintError> {
                Ok(Vec::new())
            }
        }
    };
}

pointwise_pde!(Linear3, 1, |z, out| out[0] = z[0] + z[1] * 2.0 - z[2]);
pointwise_pde!(Rosenbrock, 1, |z, out| out[0] = (z[1] - z[0] * z[0]) * 10.0);
pointwise_pde!(Product, 2, |z, out| {
    out[0] = z[0] * z[1] - z[2];
    out[1] = z[0] * z[0] - z[1] * 0.5;
});
pointwise_pde!(SquareRoot, 1, |z, out| out[0] = z[0].sqrt());

/// The stacked linear system `[Σ_j c_j A_j; L; ρI] ω ≈ [−Σ c_j b_j; c; 0]` solved
/// by faer's QR: the least-squares oracle for [`Linear3`].
fn qr_solution(parts: &common::Parts) -> Vec<f64> {
    let (n, d) = (parts.size.n_basis, parts.size.n_terms);
    let coeff = [1.0, 2.0, -1.0];
    let p = parts.offsets.len() / d;
    let r = parts.linear_rhs.len();
    let rows = p + r + n;
    let mut a = Mat::<f64>::zeros(rows, n);
    let mut rhs = vec![0.0; rows];
    for i in 0..p {
        for (j, &c) in coeff.iter().enumerate().take(d) {
            for k in 0..n {
                a[(i, k)] += c * parts.term_rows[(i * d + j) * n + k];
            }
            rhs[i] -= c * parts.offsets[i * d + j];
        }
    }
    for i in 0..r {
        for k in 0..n {
            a[(p + i, k)] = parts.linear[i * n + k];
        }
        rhs[p + i] = parts.linear_rhs[i];
    }
    for k in 0..n {
        a[(p + r + k, k)] = parts.ridge;
    }
    let x = a.qr().solve_lstsq(ColRef::from_slice(&rhs));
    (0..n).map(|k| x[k]).collect()
}

fn linear_parts(seed: u64) -> common::Parts {
    let mut parts = common::quadratic_parts(seed, 30, 6, 5);
    parts.size.n_terms = 3;
    parts.term_rows.truncate(30 * 3 * 6);
    parts.offsets.truncate(30 * 3);
    parts
}

#[test]
fn linear_problem_is_solved_exactly_in_one_gauss_newton_step() {
    let parts = linear_parts(1);
    let expected = qr_solution(&parts);
    let lm = LevenbergMarquardt::default()
        .with_initial_damping(0.0)
        .unwrap();
    let one_step = lm.clone().with_max_iterations(1).unwrap();
    let after_one = one_step.solve(&Linear3, &parts.build()).unwrap();
    let full = lm.solve(&Linear3, &parts.build()).unwrap();
    let scale = expected.iter().map(|x| x.abs()).fold(0.0, f64::max);
    for (w, e) in after_one.omega.iter().zip(&expected) {
        assert!((w - e).abs() <= 1e-10 * scale, "{w} vs {e}");
    }
    assert_eq!(full.status.reason, StopReason::Converged);
    assert!(full.status.iterations <= 2, "{:?}", full.status);
    assert!(full.status.gradient_norm <= 1e-8 * full.status.initial_residual);
}

#[test]
fn default_damping_reaches_the_least_squares_solution_to_tolerance() {
    let parts = linear_parts(2);
    let expected = qr_solution(&parts);
    let sol = LevenbergMarquardt::default()
        .solve(&Linear3, &parts.build())
        .unwrap();
    assert!(sol.status.converged(), "{:?}", sol.status);
    let scale = expected.iter().map(|x| x.abs()).fold(0.0, f64::max);
    for (w, e) in sol.omega.iter().zip(&expected) {
        assert!((w - e).abs() <= 1e-3 * scale, "{w} vs {e}");
    }
    let residual = |w: &[f64]| -> f64 {
        let r = parts.build().residual(&Linear3, w).unwrap();
        r.iter().map(|x| x * x).sum::<f64>().sqrt()
    };
    assert_rel(sol.status.final_residual, residual(&sol.omega), 1e-12);
    assert_rel(sol.status.initial_residual, residual(&[1.0; 6]), 1e-12);
}

fn assert_rel(a: f64, b: f64, tol: f64) {
    common::assert_rel(a, b, tol, "residual norm");
}

#[test]
fn rosenbrock_converges_to_its_minimiser() {
    // r = [10(ω₁ − ω₀²), 1 − ω₀]: the PDE row sees z = ω, the linear row is −ω₀ + 1.
    let problem = ExpertProblem::new(
        ProblemSize {
            n_basis: 2,
            n_terms: 2,
            n_equations: 1,
        },
        vec![1.0, 0.0, 0.0, 1.0],
        vec![0.0, 0.0],
        vec![-1.0, 0.0],
        vec![-1.0],
        0.0,
    )
    .unwrap();
    let sol = common::tight_lm(InitialGuess::Given(vec![-1.2, 1.0]))
        .solve(&Rosenbrock, &problem)
        .unwrap();
    assert!(sol.status.converged(), "{:?}", sol.status);
    for w in &sol.omega {
        assert!((w - 1.0).abs() < 1e-10, "{:?}", sol.omega);
    }
    assert!(sol.status.final_residual < 1e-10);
}

#[test]
fn zero_residual_system_recovers_the_planted_weights() {
    // Two equations per point; offsets chosen so that F(z(ω_true)) = 0 everywhere.
    let (n, d, p) = (4, 3, 25);
    let mut r = common::rng(3);
    let truth = [0.7, -0.4, 1.1, 0.3];
    let term_rows = common::uniform(&mut r, p * d * n, 1.0);
    let mut offsets = vec![0.0; p * d];
    for i in 0..p {
        let z = |j: usize| -> f64 {
            (0..n)
                .map(|k| term_rows[(i * d + j) * n + k] * truth[k])
                .sum()
        };
        // z0 free (offset 0), z1 with offset so z0² = z1/2, z2 so z2 = z0·z1.
        let z0 = z(0);
        let z1 = 2.0 * z0 * z0;
        offsets[i * d + 1] = z1 - z(1);
        offsets[i * d + 2] = z0 * z1 - z(2);
    }
    let problem = ExpertProblem::new(
        ProblemSize {
            n_basis: n,
            n_terms: d,
            n_equations: 2,
        },
        term_rows,
        offsets,
        Vec::new(),
        Vec::new(),
        0.0,
    )
    .unwrap();
    let start: Vec<f64> = truth.iter().map(|t| t + 0.2).collect();
    let sol = common::tight_lm(InitialGuess::Given(start))
        .solve(&Product, &problem)
        .unwrap();
    assert!(sol.status.converged(), "{:?}", sol.status);
    for (w, t) in sol.omega.iter().zip(truth) {
        assert!((w - t).abs() < 1e-9, "{:?}", sol.omega);
    }
}

#[test]
fn sorption_problem_converges_and_decreases_the_residual() {
    let parts = common::sorption_parts(4, 200, 8, 10);
    let sol = LevenbergMarquardt::default()
        .solve(&SorptionLike, &parts.build())
        .unwrap();
    assert!(sol.status.converged(), "{:?}", sol.status);
    assert!(sol.status.final_residual < sol.status.initial_residual);
    // At a converged point the gradient is small relative to its scale.
    assert!(sol.status.gradient_norm.is_finite());
}

#[test]
fn non_finite_data_is_a_status_not_a_panic() {
    let parts = common::sorption_parts(5, 20, 4, 3);
    let mut nan_rows = parts.clone();
    nan_rows.term_rows[7] = f64::NAN;
    let mut inf_rhs = parts.clone();
    inf_rhs.linear_rhs[1] = f64::INFINITY;
    for bad in [nan_rows, inf_rhs] {
        let sol = LevenbergMarquardt::default()
            .solve(&SorptionLike, &bad.build())
            .unwrap();
        assert_eq!(sol.status.reason, StopReason::NonFinite);
        assert_eq!(sol.status.iterations, 0);
    }
    // A residual that is NaN at the start (sqrt of a negative term).
    let problem = ExpertProblem::new(
        ProblemSize {
            n_basis: 1,
            n_terms: 1,
            n_equations: 1,
        },
        vec![1.0],
        vec![-5.0],
        Vec::new(),
        Vec::new(),
        0.0,
    )
    .unwrap();
    let sol = LevenbergMarquardt::default()
        .solve(&SquareRoot, &problem)
        .unwrap();
    assert_eq!(sol.status.reason, StopReason::NonFinite);
}

#[test]
fn setters_reject_nonsense_with_typed_errors() {
    let lm = LevenbergMarquardt::default();
    assert!(matches!(
        lm.clone().with_rtol(-1.0),
        Err(ConstraintError::InvalidValue { what: "rtol", .. })
    ));
    assert!(lm.clone().with_atol(f64::NAN).is_err());
    assert!(lm.clone().with_max_iterations(0).is_err());
    assert!(lm.clone().with_initial_damping(f64::INFINITY).is_err());
    assert!(
        lm.clone()
            .with_initial(InitialGuess::Given(vec![1.0, f64::NAN]))
            .is_err()
    );
    let ok = lm.clone().with_rtol(1e-6).unwrap().with_atol(1e-8).unwrap();
    assert_eq!((ok.rtol(), ok.atol()), (1e-6, 1e-8));
    // A given guess of the wrong length is a shape error at solve time.
    let parts = common::sorption_parts(6, 5, 4, 0);
    let wrong = lm.with_initial(InitialGuess::Given(vec![1.0; 3])).unwrap();
    assert!(matches!(
        wrong.solve(&SorptionLike, &parts.build()),
        Err(ConstraintError::ShapeMismatch { .. })
    ));
    // A PDE with a different number of equations.
    assert!(matches!(
        LevenbergMarquardt::default().solve(&Product, &parts.build()),
        Err(ConstraintError::ShapeMismatch { .. })
    ));
}

#[test]
fn problem_shapes_are_validated() {
    let size = ProblemSize {
        n_basis: 2,
        n_terms: 2,
        n_equations: 1,
    };
    let err = |r: Result<ExpertProblem, ConstraintError>| assert!(r.is_err());
    err(ExpertProblem::new(
        size,
        vec![0.0; 7],
        vec![0.0; 2],
        vec![],
        vec![],
        0.0,
    ));
    err(ExpertProblem::new(
        size,
        vec![0.0; 8],
        vec![0.0; 3],
        vec![],
        vec![],
        0.0,
    ));
    err(ExpertProblem::new(
        size,
        vec![0.0; 8],
        vec![0.0; 4],
        vec![0.0; 3],
        vec![0.0],
        0.0,
    ));
    err(ExpertProblem::new(
        size,
        vec![0.0; 8],
        vec![0.0; 4],
        vec![],
        vec![],
        -1.0,
    ));
    let nine = ProblemSize { n_terms: 9, ..size };
    err(ExpertProblem::new(
        nine,
        vec![0.0; 36],
        vec![0.0; 18],
        vec![],
        vec![],
        0.0,
    ));
    let p = ExpertProblem::new(
        size,
        vec![0.0; 8],
        vec![0.0; 4],
        vec![0.0; 2],
        vec![0.0],
        0.0,
    )
    .unwrap();
    assert_eq!((p.n_points(), p.n_linear(), p.n_residuals()), (2, 1, 5));
}
