//! Restarted GMRES with right preconditioning (Saad & Schultz, "GMRES: a
//! generalized minimal residual algorithm for solving nonsymmetric linear
//! systems", SIAM J. Sci. Stat. Comput. 7, 1986; Saad, *Iterative Methods
//! for Sparse Linear Systems*, 2nd ed., Alg. 9.5).
//!
//! Why right preconditioning: the residual GMRES minimises is then the true
//! residual `b − Ax`, so the stopping test means what it says whatever the
//! preconditioner. The preconditioned directions `M⁻¹v_j` are kept (the
//! flexible variant's storage), which spends one vector per iteration to save
//! one preconditioner application per restart.

/// When to stop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GmresSettings {
    /// Stop when `‖b − Ax‖ ≤ tolerance · ‖b‖`.
    pub tolerance: f64,
    /// Krylov vectors per cycle.
    pub restart: usize,
    /// Iterations (matrix products) over all cycles.
    pub max_iterations: usize,
}

/// How a solve ended: iterations spent and the final relative residual.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct GmresOutcome {
    pub iterations: usize,
    pub relative_residual: f64,
}

/// Solves `A x = b` from `x = 0`, with `apply(v, out)` writing `A v` and
/// `precondition(v)` overwriting `v` with `M⁻¹ v`.
///
/// Returns when the tolerance is met, when a whole cycle reduces the
/// residual by less than a tenth of itself (round-off has taken over), or after
/// `max_iterations`; the outcome says which residual was reached. A
/// non-finite `b` leaves `x` non-finite with an infinite residual.
pub(crate) fn gmres(
    apply: impl Fn(&[f64], &mut [f64]),
    precondition: impl Fn(&mut [f64]),
    b: &[f64],
    x: &mut [f64],
    settings: &GmresSettings,
) -> GmresOutcome {
    let n = b.len();
    x.fill(0.0);
    let b_norm = norm(b);
    if !b_norm.is_finite() {
        x.fill(f64::NAN);
        return GmresOutcome {
            iterations: 0,
            relative_residual: f64::INFINITY,
        };
    }
    if b_norm == 0.0 {
        return GmresOutcome {
            iterations: 0,
            relative_residual: 0.0,
        };
    }
    let target = settings.tolerance * b_norm;
    let restart = settings.restart.clamp(1, n.max(1));
    let mut residual = b.to_vec();
    let mut beta = b_norm;
    let mut iterations = 0;
    let mut basis: Vec<Vec<f64>> = Vec::with_capacity(restart + 1);
    let mut directions: Vec<Vec<f64>> = Vec::with_capacity(restart);
    let mut product = vec![0.0; n];
    while beta > target && iterations < settings.max_iterations {
        basis.clear();
        directions.clear();
        basis.push(residual.iter().map(|r| r / beta).collect());
        // The Hessenberg columns after the Givens rotations (upper triangle),
        // the rotations, and the rotated right-hand side `β e₁`.
        let mut r: Vec<Vec<f64>> = Vec::with_capacity(restart);
        let mut rotations: Vec<(f64, f64)> = Vec::with_capacity(restart);
        let mut g = vec![beta];
        let cycle_start = beta;
        for _ in 0..restart {
            let mut z = basis[basis.len() - 1].clone();
            precondition(&mut z);
            apply(&z, &mut product);
            directions.push(z);
            iterations += 1;
            let mut column = Vec::with_capacity(basis.len() + 1);
            for v in &basis {
                let h = dot(&product, v);
                for (w, vi) in product.iter_mut().zip(v) {
                    *w -= h * vi;
                }
                column.push(h);
            }
            let next = norm(&product);
            column.push(next);
            for (i, &(c, s)) in rotations.iter().enumerate() {
                let (a, b) = (column[i], column[i + 1]);
                column[i] = c * a + s * b;
                column[i + 1] = -s * a + c * b;
            }
            let j = column.len() - 2;
            let (a, b) = (column[j], column[j + 1]);
            let radius = a.hypot(b);
            let (c, s) = if radius == 0.0 {
                (1.0, 0.0)
            } else {
                (a / radius, b / radius)
            };
            column[j] = radius;
            column.pop();
            rotations.push((c, s));
            g.push(-s * g[j]);
            g[j] *= c;
            r.push(column);
            let estimate = g[j + 1].abs();
            if estimate <= target
                || next == 0.0
                || !estimate.is_finite()
                || iterations >= settings.max_iterations
            {
                break;
            }
            basis.push(product.iter().map(|w| w / next).collect());
        }
        // Back substitution on the triangle, then x += Σ y_j M⁻¹v_j.
        let k = r.len();
        let mut y = vec![0.0; k];
        for i in (0..k).rev() {
            let sum: f64 = (i + 1..k).map(|j| r[j][i] * y[j]).sum();
            y[i] = if r[i][i] == 0.0 {
                0.0
            } else {
                (g[i] - sum) / r[i][i]
            };
        }
        for (yj, z) in y.iter().zip(&directions) {
            for (xi, zi) in x.iter_mut().zip(z) {
                *xi += yj * zi;
            }
        }
        // The true residual: the recurrence's drifts from it in round-off.
        apply(x, &mut product);
        for ((ri, bi), ai) in residual.iter_mut().zip(b).zip(&product) {
            *ri = bi - ai;
        }
        beta = norm(&residual);
        if !beta.is_finite() || beta > 0.9 * cycle_start {
            break;
        }
    }
    GmresOutcome {
        iterations,
        relative_residual: beta / b_norm,
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(v: &[f64]) -> f64 {
    dot(v, v).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A nonsymmetric `n × n` matrix, row-major: a ring of convection and
    /// diffusion with a varying diagonal, far from normal.
    fn matrix(n: usize) -> Vec<f64> {
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            a[i * n + i] = 3.0 + (i as f64 * 0.7).sin();
            a[i * n + (i + 1) % n] = -1.4;
            a[i * n + (i + n - 1) % n] = -0.3;
            a[i * n + (i + 5) % n] += 0.2 * (i as f64).cos();
        }
        a
    }

    fn multiply(a: &[f64], v: &[f64], out: &mut [f64]) {
        let n = v.len();
        for (i, o) in out.iter_mut().enumerate() {
            *o = (0..n).map(|j| a[i * n + j] * v[j]).sum();
        }
    }

    fn settings(restart: usize) -> GmresSettings {
        GmresSettings {
            tolerance: 1e-12,
            restart,
            max_iterations: 500,
        }
    }

    /// The residual `‖b − Ax‖/‖b‖`, formed here, not from the solver.
    fn relative_residual(a: &[f64], x: &[f64], b: &[f64]) -> f64 {
        let mut ax = vec![0.0; b.len()];
        multiply(a, x, &mut ax);
        let r: Vec<f64> = b.iter().zip(&ax).map(|(b, a)| b - a).collect();
        norm(&r) / norm(b)
    }

    #[test]
    fn solves_a_nonsymmetric_system_with_and_without_restarts() {
        let n = 60;
        let a = matrix(n);
        let b: Vec<f64> = (0..n).map(|i| (i as f64 * 0.31).cos() + 0.1).collect();
        for restart in [n, 10, 3] {
            let mut x = vec![0.0; n];
            let outcome = gmres(
                |v, o| multiply(&a, v, o),
                |_| {},
                &b,
                &mut x,
                &settings(restart),
            );
            let residual = relative_residual(&a, &x, &b);
            assert!(
                residual < 1e-11,
                "restart {restart}: {residual} {outcome:?}"
            );
            assert!((outcome.relative_residual - residual).abs() < 1e-13);
        }
    }

    #[test]
    fn the_exact_inverse_as_preconditioner_converges_in_one_iteration() {
        // M = A: A M⁻¹ = I. M⁻¹ by Gaussian elimination on a copy of A.
        let n = 12;
        let a = matrix(n);
        let inverse = |v: &mut [f64]| {
            let mut m = a.clone();
            for col in 0..n {
                for row in col + 1..n {
                    let f = m[row * n + col] / m[col * n + col];
                    for k in col..n {
                        m[row * n + k] -= f * m[col * n + k];
                    }
                    v[row] -= f * v[col];
                }
            }
            for col in (0..n).rev() {
                let s: f64 = (col + 1..n).map(|k| m[col * n + k] * v[k]).sum();
                v[col] = (v[col] - s) / m[col * n + col];
            }
        };
        let b: Vec<f64> = (0..n).map(|i| 1.0 + i as f64).collect();
        let mut x = vec![0.0; n];
        let outcome = gmres(|v, o| multiply(&a, v, o), inverse, &b, &mut x, &settings(n));
        assert_eq!(outcome.iterations, 1, "{outcome:?}");
        assert!(relative_residual(&a, &x, &b) < 1e-13);
    }

    #[test]
    fn a_zero_or_non_finite_right_hand_side() {
        let a = matrix(5);
        let mut x = vec![1.0; 5];
        let zero = gmres(
            |v, o| multiply(&a, v, o),
            |_| {},
            &[0.0; 5],
            &mut x,
            &settings(5),
        );
        assert_eq!(zero.iterations, 0);
        assert_eq!(x, vec![0.0; 5]);
        let b = [1.0, f64::NAN, 0.0, 0.0, 0.0];
        let bad = gmres(|v, o| multiply(&a, v, o), |_| {}, &b, &mut x, &settings(5));
        assert!(bad.relative_residual.is_infinite());
        assert!(x.iter().all(|v| v.is_nan()));
    }

    #[test]
    fn an_iteration_budget_too_small_reports_the_residual_reached() {
        let n = 60;
        let a = matrix(n);
        let b = vec![1.0; n];
        let mut x = vec![0.0; n];
        let short = GmresSettings {
            max_iterations: 2,
            ..settings(n)
        };
        let outcome = gmres(|v, o| multiply(&a, v, o), |_| {}, &b, &mut x, &short);
        assert_eq!(outcome.iterations, 2);
        let residual = relative_residual(&a, &x, &b);
        assert!(residual > 1e-3, "{residual}");
        assert!((outcome.relative_residual - residual).abs() < 1e-13);
    }
}
