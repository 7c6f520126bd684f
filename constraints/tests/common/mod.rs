//! Helpers shared by the constraint tests: random problems, tight solvers and
//! finite differences.
#![allow(dead_code)]

#[cfg(feature = "cuda")]
pub mod gpu;
pub mod pdes;
#[cfg(feature = "cuda")]
pub mod tiles;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tessera_constraints::{
    ExpertProblem, HessianMode, InitialGuess, LevenbergMarquardt, Pde, ProblemSize, Sensitivity,
};

/// A command for the C++ compiler the `cc` crate finds for this machine
/// (host builds of emitted CUDA C and of the GPU kernels), at `-O2`.
pub fn host_cxx() -> std::process::Command {
    let target = "x86_64-unknown-linux-gnu";
    cc::Build::new()
        .cpp(true)
        .target(target)
        .host(target)
        .opt_level(2)
        .cargo_metadata(false)
        .get_compiler()
        .to_command()
}

/// A reproducible generator.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Uniform values in `[-scale, scale]`.
pub fn uniform(rng: &mut ChaCha8Rng, n: usize, scale: f64) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-scale..scale)).collect()
}

/// The parts of a problem, so tests can perturb any of them.
#[derive(Debug, Clone)]
pub struct Parts {
    pub size: ProblemSize,
    pub term_rows: Vec<f64>,
    pub offsets: Vec<f64>,
    pub linear: Vec<f64>,
    pub linear_rhs: Vec<f64>,
    pub ridge: f64,
}

impl Parts {
    pub fn build(&self) -> ExpertProblem {
        ExpertProblem::new(
            self.size,
            self.term_rows.clone(),
            self.offsets.clone(),
            self.linear.clone(),
            self.linear_rhs.clone(),
            self.ridge,
        )
        .expect("valid parts")
    }

    /// All inputs as one flat vector (term rows, offsets, linear, rhs) and back.
    pub fn flat(&self) -> Vec<f64> {
        [
            &self.term_rows[..],
            &self.offsets,
            &self.linear,
            &self.linear_rhs,
        ]
        .concat()
    }

    pub fn with_flat(&self, flat: &[f64]) -> Self {
        let mut out = self.clone();
        let (a, rest) = flat.split_at(self.term_rows.len());
        let (b, rest) = rest.split_at(self.offsets.len());
        let (l, c) = rest.split_at(self.linear.len());
        out.term_rows = a.to_vec();
        out.offsets = b.to_vec();
        out.linear = l.to_vec();
        out.linear_rhs = c.to_vec();
        out
    }
}

/// A random sorption-shaped problem: `u` stays near 1 (positive, away from the
/// kink of `max(u, 0)`), `u_t` of order 1, `u_xx` of order 1e3 so that the
/// nonlinear diffusion matters; plus `n_linear` random linear rows.
pub fn sorption_parts(seed: u64, n_points: usize, n_basis: usize, n_linear: usize) -> Parts {
    let mut r = rng(seed);
    let d = 4;
    let scales = [0.05, 1.0, 1e3, 10.0];
    let mut term_rows = Vec::with_capacity(n_points * d * n_basis);
    let mut offsets = Vec::with_capacity(n_points * d);
    for _ in 0..n_points {
        for s in scales {
            term_rows.extend(uniform(&mut r, n_basis, s));
            offsets.push(if s == 0.05 {
                1.0
            } else {
                r.random_range(-s..s)
            });
        }
    }
    Parts {
        size: ProblemSize {
            n_basis,
            n_terms: d,
            n_equations: 1,
        },
        term_rows,
        offsets,
        linear: uniform(&mut r, n_linear * n_basis, 1.0),
        linear_rhs: uniform(&mut r, n_linear, 1.0),
        ridge: 1e-4,
    }
}

/// A random problem of the 8-term quadratic transport residual.
pub fn quadratic_parts(seed: u64, n_points: usize, n_basis: usize, n_linear: usize) -> Parts {
    let mut r = rng(seed);
    let d = 8;
    Parts {
        size: ProblemSize {
            n_basis,
            n_terms: d,
            n_equations: 1,
        },
        term_rows: uniform(&mut r, n_points * d * n_basis, 1.0),
        offsets: uniform(&mut r, n_points * d, 0.5),
        linear: uniform(&mut r, n_linear * n_basis, 1.0),
        linear_rhs: uniform(&mut r, n_linear, 1.0),
        ridge: 1e-4,
    }
}

/// Levenberg–Marquardt run to round-off, for finite-difference checks.
pub fn tight_lm(initial: InitialGuess) -> LevenbergMarquardt {
    LevenbergMarquardt::default()
        .with_rtol(1e-14)
        .unwrap()
        .with_atol(1e-15)
        .unwrap()
        .with_max_iterations(500)
        .unwrap()
        .with_initial(initial)
        .unwrap()
}

/// `ω*` of a problem, solved tightly from `start` and polished by three Newton
/// steps on `Jᵀr = 0` with the exact Hessian (Levenberg–Marquardt alone stalls
/// above round-off on strongly nonlinear, nonzero-residual problems, and the
/// finite differences need `ω*` to round-off).
pub fn solve<P: Pde>(pde: &P, parts: &Parts, start: &[f64]) -> Vec<f64> {
    let problem = parts.build();
    let mut omega = tight_lm(InitialGuess::Given(start.to_vec()))
        .solve(pde, &problem)
        .expect("shapes")
        .omega;
    for _ in 0..3 {
        let g = problem.gradient(pde, &omega).expect("shapes");
        let step =
            Sensitivity::new(pde, &problem, &omega, HessianMode::Exact).and_then(|s| s.adjoint(&g));
        match step {
            Ok(step) => omega.iter_mut().zip(&step).for_each(|(w, s)| *w -= s),
            Err(_) => break,
        }
    }
    omega
}

/// The directional derivative of `f` at `x` along `δ` by central differences
/// with one Richardson step, `(4·D(h/2) − D(h))/3` where
/// `D(h) = (f(x + hδ) − f(x − hδ))/2h`: truncation error `O(h⁴)`, so `h` can stay
/// large enough that the solver's round-off in `f` does not dominate.
pub fn central_difference(f: impl Fn(&[f64]) -> f64, x: &[f64], delta: &[f64], h: f64) -> f64 {
    let d = |h: f64| {
        let plus: Vec<f64> = x.iter().zip(delta).map(|(a, b)| a + h * b).collect();
        let minus: Vec<f64> = x.iter().zip(delta).map(|(a, b)| a - h * b).collect();
        (f(&plus) - f(&minus)) / (2.0 * h)
    };
    (4.0 * d(h / 2.0) - d(h)) / 3.0
}

/// A perturbation direction scaled like `x` (relative perturbations).
pub fn relative_direction(rng: &mut ChaCha8Rng, x: &[f64]) -> Vec<f64> {
    x.iter()
        .map(|v| rng.random_range(-1.0..1.0) * (v.abs() + 1e-3))
        .collect()
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `|a − b| ≤ tol·max(|a|, |b|)`, with a readable failure message.
#[track_caller]
pub fn assert_rel(a: f64, b: f64, tol: f64, what: &str) {
    let scale = a.abs().max(b.abs());
    assert!(
        (a - b).abs() <= tol * scale,
        "{what}: {a:e} vs {b:e} (relative error {:e}, tolerance {tol:e})",
        (a - b).abs() / scale
    );
}

/// `|a − b| ≤ tol·max(|a|, |b|, floor)`: relative error, with `floor` the scale
/// below which a value counts as zero for this comparison.
#[track_caller]
pub fn assert_close(a: f64, b: f64, tol: f64, floor: f64, what: &str) {
    let scale = a.abs().max(b.abs()).max(floor);
    assert!(
        (a - b).abs() <= tol * scale,
        "{what}: {a:e} vs {b:e} (error {:e}, scale {scale:e}, tolerance {tol:e})",
        (a - b).abs()
    );
}
