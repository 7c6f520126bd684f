//! Limited-memory BFGS for a smooth function of many unknowns: the two-loop
//! recursion (Nocedal & Wright, *Numerical Optimization*, 2nd ed., 2006,
//! Algorithm 7.4) with the scaled initial Hessian `sᵀy / yᵀy` (their eq. 7.20)
//! and a backtracking Armijo line search (Algorithm 3.1).
//!
//! [`super::floor`] minimises the training loss over whole fields with it: tens
//! of thousands of unknowns, one gradient per evaluation, no Hessian, which is
//! the case L-BFGS is for.

use serde::{Deserialize, Serialize};

/// When to stop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LbfgsOptions {
    /// Correction pairs kept.
    pub memory: usize,
    /// Most iterations.
    pub max_iterations: usize,
    /// Converged when `‖∇f‖ ≤ gtol · max(1, ‖∇f(x₀)‖)`.
    pub gtol: f64,
    /// Stalled when `f` fell by less than `ftol · |f|` over the last
    /// `stall_window` iterations.
    pub ftol: f64,
    /// See `ftol`.
    pub stall_window: usize,
}

impl Default for LbfgsOptions {
    fn default() -> Self {
        Self {
            memory: 30,
            max_iterations: 5000,
            gtol: 1e-9,
            ftol: 1e-12,
            stall_window: 100,
        }
    }
}

/// Why the minimisation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LbfgsStop {
    /// The gradient fell below `gtol`.
    Converged,
    /// `f` stopped decreasing (`ftol` over `stall_window` iterations).
    Stalled,
    /// No step along the search direction decreased `f` (round-off level).
    LineSearch,
    /// `max_iterations` ran out first.
    MaxIterations,
}

/// Where the minimisation ended.
#[derive(Debug, Clone)]
pub struct LbfgsMinimum {
    pub x: Vec<f64>,
    pub gradient_norm: f64,
    pub iterations: usize,
    pub stop: LbfgsStop,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// One correction pair `(s, y, 1 / sᵀy)`.
type Pair = (Vec<f64>, Vec<f64>, f64);

/// `H ∇f` by the two-loop recursion over `pairs` (oldest first); without
/// pairs, a step of length `first_step` along the gradient.
fn direction(gradient: &[f64], pairs: &[Pair], first_step: f64) -> Vec<f64> {
    let mut q = gradient.to_vec();
    let Some((s_last, y_last, _)) = pairs.last() else {
        let scale = first_step / dot(gradient, gradient).sqrt().max(f64::MIN_POSITIVE);
        return q.iter().map(|g| g * scale).collect();
    };
    let mut alphas = Vec::with_capacity(pairs.len());
    for (s, y, rho) in pairs.iter().rev() {
        let alpha = rho * dot(s, &q);
        q.iter_mut().zip(y).for_each(|(q, y)| *q -= alpha * y);
        alphas.push(alpha);
    }
    let gamma = dot(s_last, y_last) / dot(y_last, y_last);
    q.iter_mut().for_each(|q| *q *= gamma);
    for ((s, y, rho), alpha) in pairs.iter().zip(alphas.iter().rev()) {
        let beta = rho * dot(y, &q);
        q.iter_mut()
            .zip(s)
            .for_each(|(q, s)| *q += (alpha - beta) * s);
    }
    q
}

/// Minimises `f` (value and gradient) from `x0`. `first_step` is the length of
/// the first, steepest-descent step, in the units of `x`.
///
/// Errors: whatever `f` returns.
pub fn minimize<E>(
    mut f: impl FnMut(&[f64]) -> Result<(f64, Vec<f64>), E>,
    x0: Vec<f64>,
    first_step: f64,
    options: &LbfgsOptions,
) -> Result<LbfgsMinimum, E> {
    let mut x = x0;
    let (mut value, mut gradient) = f(&x)?;
    let g0 = dot(&gradient, &gradient).sqrt();
    let mut pairs: Vec<Pair> = Vec::with_capacity(options.memory);
    let mut history = vec![value];
    let mut stop = LbfgsStop::MaxIterations;
    let mut iterations = 0;
    while iterations < options.max_iterations {
        if dot(&gradient, &gradient).sqrt() <= options.gtol * g0.max(1.0) {
            stop = LbfgsStop::Converged;
            break;
        }
        let mut p = direction(&gradient, &pairs, first_step);
        let mut slope = -dot(&gradient, &p);
        if slope >= 0.0 {
            // Not a descent direction (curvature pairs gone stale): restart.
            pairs.clear();
            p = direction(&gradient, &pairs, first_step);
            slope = -dot(&gradient, &p);
        }
        let mut t = 1.0;
        let accepted = loop {
            let trial: Vec<f64> = x.iter().zip(&p).map(|(x, p)| x - t * p).collect();
            let (v, g) = f(&trial)?;
            if v <= value + 1e-4 * t * slope {
                break Some((trial, v, g));
            }
            t *= 0.5;
            if t < 1e-20 {
                break None;
            }
        };
        let Some((trial, v, g)) = accepted else {
            stop = LbfgsStop::LineSearch;
            break;
        };
        let s: Vec<f64> = trial.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = g.iter().zip(&gradient).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        // Keep only pairs with positive curvature, so H stays positive definite.
        if sy > f64::EPSILON * dot(&s, &s).sqrt() * dot(&y, &y).sqrt() {
            if pairs.len() == options.memory {
                pairs.remove(0);
            }
            pairs.push((s, y, 1.0 / sy));
        }
        (x, value, gradient) = (trial, v, g);
        iterations += 1;
        history.push(value);
        if let Some(&before) = history
            .len()
            .checked_sub(options.stall_window + 1)
            .map(|i| &history[i])
            && before - value <= options.ftol * value.abs()
        {
            stop = LbfgsStop::Stalled;
            break;
        }
    }
    Ok(LbfgsMinimum {
        gradient_norm: dot(&gradient, &gradient).sqrt(),
        x,
        iterations,
        stop,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rosenbrock's valley from the classic start `(−1.2, 1)`: minimum at
    /// `(1, 1)`, value 0.
    #[test]
    fn finds_the_rosenbrock_minimum() {
        let f = |x: &[f64]| -> Result<(f64, Vec<f64>), ()> {
            let (a, b) = (x[0], x[1]);
            let value = (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2);
            let grad = vec![
                -2.0 * (1.0 - a) - 400.0 * a * (b - a * a),
                200.0 * (b - a * a),
            ];
            Ok((value, grad))
        };
        let min = minimize(f, vec![-1.2, 1.0], 0.1, &LbfgsOptions::default()).unwrap();
        assert_eq!(min.stop, LbfgsStop::Converged, "{min:?}");
        assert!(
            (min.x[0] - 1.0).abs() < 1e-6 && (min.x[1] - 1.0).abs() < 1e-6,
            "{min:?}"
        );
    }

    /// An ill-conditioned quadratic `½ (x − c)ᵀA(x − c)` (A diagonal,
    /// condition 10⁴) ends at `c`, component by component: within
    /// `gtol · ‖∇f(x₀)‖ / min aᵢ` (below 10⁻⁷ here).
    #[test]
    fn solves_an_ill_conditioned_quadratic() {
        let n = 60;
        let a: Vec<f64> = (0..n)
            .map(|i| 10f64.powf(4.0 * i as f64 / (n - 1) as f64))
            .collect();
        let c: Vec<f64> = (0..n).map(|i| ((i * 7) % 11) as f64 - 5.0).collect();
        let f = |x: &[f64]| -> Result<(f64, Vec<f64>), ()> {
            let grad: Vec<f64> = (0..n).map(|i| a[i] * (x[i] - c[i])).collect();
            let value = (0..n).map(|i| 0.5 * a[i] * (x[i] - c[i]).powi(2)).sum();
            Ok((value, grad))
        };
        let options = LbfgsOptions {
            gtol: 1e-12,
            ..LbfgsOptions::default()
        };
        let min = minimize(f, vec![0.0; n], 1.0, &options).unwrap();
        assert_eq!(min.stop, LbfgsStop::Converged, "{min:?}");
        for (i, (x, c)) in min.x.iter().zip(&c).enumerate() {
            assert!((x - c).abs() <= 1e-7, "x[{i}] {x} vs {c}");
        }
    }

    /// The iteration budget and the caller's errors come back as such.
    #[test]
    fn stops_at_the_budget_and_passes_errors_on() {
        let options = LbfgsOptions {
            max_iterations: 3,
            ..LbfgsOptions::default()
        };
        let f = |x: &[f64]| -> Result<(f64, Vec<f64>), ()> { Ok((x[0].cosh(), vec![x[0].sinh()])) };
        let min = minimize(f, vec![5.0], 1e-3, &options).unwrap();
        assert_eq!((min.stop, min.iterations), (LbfgsStop::MaxIterations, 3));
        let failing = |_: &[f64]| -> Result<(f64, Vec<f64>), &str> { Err("bad") };
        assert_eq!(
            minimize(failing, vec![1.0], 1.0, &options).unwrap_err(),
            "bad"
        );
    }
}
