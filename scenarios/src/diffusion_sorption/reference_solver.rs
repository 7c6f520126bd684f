//! Ground truth for diffusion–sorption: PDEBench's finite-volume scheme,
//! integrated in time to a requested tolerance.
//!
//! **Space** (PDEBench `data_gen/src/sim_diff_sorp.py`, reproduced exactly): `n`
//! cells of width `dx = 1/n` with centres `(i + ½)·dx`, and
//!
//! ```text
//! du_i/dt = D / R(u_i) · (u_{i−1} − 2u_i + u_{i+1}) / dx²
//! R(u)    = 1 + (1−φ)/φ · ρ_s · k_f · n_f · (u + 1e-6)^(n_f − 1)
//! ```
//!
//! with ghost values `u_{−1} = 1` (the solubility, left Dirichlet) and
//! `u_n = D·(u_{n−2} − u_{n−1})/dx` (right outflow). The left ghost sits one cell
//! width from the first centre, i.e. the Dirichlet value is imposed at
//! `x = −dx/2`, so the scheme converges with order 1 in `dx` (not 2); the tests
//! measure this.
//!
//! **Guard for negative `u`.** `(u + 1e-6)^(n_f−1)` is NaN for `u < −1e-6`; the
//! paper's code clips `u` at 0. We evaluate `R` at `max(u, 0)`, which is identical
//! to PDEBench for every `u ≥ 0` (the exact solution stays in `[0, 1]`; only
//! integration error can push it below) and keeps `R` finite and continuous.
//!
//! **Time.** The semi-discrete system is stiff: its largest eigenvalue is about
//! `4·D/(R·dx²) ≈ 660` at 1024 cells, against a time span of 500, so an explicit
//! method (PDEBench uses scipy's RK45) needs ≳ 10⁵ steps, each costing six
//! right-hand sides with a `powf` per cell. We integrate instead with the
//! L-stable, stiffly accurate 5-stage SDIRK method of order 4 with an embedded
//! order-3 solution (Hairer & Wanner, *Solving ODEs II*, §IV.6, "SDIRK4",
//! γ = 1/4): each stage is a simplified Newton iteration whose matrix
//! `I − hγJ` is tridiagonal (one O(n) factorisation per step), and the error
//! estimate is filtered through `(I − hγJ)⁻¹` (Hairer–Wanner's remedy for
//! stiff error estimates). Measured at 1024 cells, seed trajectories need a few
//! hundred steps at `rtol = 1e-8` (see the crate's tests and the
//! `generate` timings in the report). The step lands exactly on every output time.

use tessera_meshes::MeshError;

use crate::ScenarioError;
use crate::config::DiffusionSorptionParams;

/// The fewest cells the solver takes: a first cell beside the Dirichlet
/// ghost, a last one beside the outflow ghost, and an interior one between
/// them. A scenario's validation refuses fewer before any data are generated.
pub const MIN_CELLS: usize = 3;

/// The left boundary value (PDEBench's `sol`, the solubility).
pub(crate) const SOLUBILITY: f64 = 1.0;
/// The offset in PDEBench's `(u + 1e-6)^(n_f − 1)`.
const EPS_U: f64 = 1e-6;
/// Newton stops when the weighted update norm is below this fraction of the
/// tolerance (Hairer–Wanner recommend 0.01–0.1).
const NEWTON_TOL: f64 = 0.03;
/// Newton iterations per stage before the step is retried with a smaller `h`.
const NEWTON_MAX_ITERS: usize = 8;
/// Steps per trajectory before giving up.
const MAX_STEPS: usize = 1_000_000;

/// SDIRK4 (Hairer–Wanner), γ = 1/4; lower-triangular `A` below the diagonal.
const GAMMA: f64 = 0.25;
const A: [[f64; 4]; 5] = [
    [0.0, 0.0, 0.0, 0.0],
    [0.5, 0.0, 0.0, 0.0],
    [17.0 / 50.0, -1.0 / 25.0, 0.0, 0.0],
    [371.0 / 1360.0, -137.0 / 2720.0, 15.0 / 544.0, 0.0],
    [25.0 / 24.0, -49.0 / 48.0, 125.0 / 16.0, -85.0 / 12.0],
];
/// `b − b̂`: the 4th-order weights (the last row of `A`, γ on the diagonal)
/// minus the embedded 3rd-order weights `(59/48, −17/96, 225/32, −85/12, 0)`.
const B_ERR: [f64; 5] = [
    25.0 / 24.0 - 59.0 / 48.0,
    -49.0 / 48.0 + 17.0 / 96.0,
    125.0 / 16.0 - 225.0 / 32.0,
    0.0,
    GAMMA,
];

/// PDEBench's diffusion–sorption scheme on `cells` cells, integrated to a
/// relative (and equal absolute) tolerance `rtol`; concentrations are O(1)
/// (scaled by the solubility), so one tolerance serves both.
#[derive(Debug, Clone)]
pub struct ReferenceSolver {
    diffusion: f64,
    sorption: f64,
    exponent: f64,
    cells: usize,
    rtol: f64,
}

impl ReferenceSolver {
    /// A solver for the given constants on `cells` cells of `(0, 1)`.
    pub fn new(
        params: &DiffusionSorptionParams,
        cells: usize,
        rtol: f64,
    ) -> Result<Self, ScenarioError> {
        let positive = |what, value: f64| {
            if value.is_finite() && value > 0.0 {
                Ok(())
            } else {
                Err(ScenarioError::InvalidValue {
                    what,
                    value,
                    reason: "must be finite and positive",
                })
            }
        };
        positive("diffusion coefficient D", params.d)?;
        positive("bulk density rho_s", params.rho_s)?;
        positive("Freundlich exponent n_f", params.n_f)?;
        positive("tolerance rtol", rtol)?;
        if !(params.phi > 0.0 && params.phi < 1.0) {
            return Err(ScenarioError::InvalidValue {
                what: "porosity phi",
                value: params.phi,
                reason: "must lie strictly between 0 and 1",
            });
        }
        if !(params.k_f.is_finite() && params.k_f >= 0.0) {
            return Err(ScenarioError::InvalidValue {
                what: "Freundlich constant k_f",
                value: params.k_f,
                reason: "must be finite and non-negative",
            });
        }
        if cells < MIN_CELLS {
            return Err(ScenarioError::Mesh(MeshError::TooSmall {
                what: "number of cells",
                min: MIN_CELLS,
                got: cells,
            }));
        }
        Ok(Self {
            diffusion: params.d,
            sorption: (1.0 - params.phi) / params.phi * params.rho_s * params.k_f * params.n_f,
            exponent: params.n_f - 1.0,
            cells,
            rtol,
        })
    }

    /// Number of cells.
    pub fn cells(&self) -> usize {
        self.cells
    }

    /// Solves from `u0` (one value per cell) and returns `u` at each of `times`
    /// (row-major `[times.len(), cells]`); `times[0]` is the time of `u0`.
    pub fn solve(&self, u0: &[f64], times: &[f64]) -> Result<Vec<f64>, ScenarioError> {
        check_input(u0, self.cells, times)?;
        let mut out = Vec::with_capacity(times.len() * self.cells);
        out.extend_from_slice(u0);
        let mut y = u0.to_vec();
        let span = times[times.len() - 1] - times[0];
        let mut stepper = Stepper::new(self);
        // A small first step: the initial data jump against the left boundary value.
        let mut h = span * 1e-6;
        let mut t = times[0];
        let mut steps = 0;
        for &t_next in &times[1..] {
            while t < t_next {
                let h_try = if t + h >= t_next - 1e-12 * span {
                    t_next - t
                } else {
                    h
                };
                steps += 1;
                if steps > MAX_STEPS {
                    return Err(self.failure(t, format!("more than {MAX_STEPS} steps")));
                }
                match stepper.step(&y, h_try) {
                    Some(err) if err <= 1.0 => {
                        std::mem::swap(&mut y, &mut stepper.stages[4]);
                        t = if h_try == t_next - t {
                            t_next
                        } else {
                            t + h_try
                        };
                        h = h_try * (0.9 * err.max(1e-10).powf(-0.25)).clamp(0.2, 5.0);
                    }
                    Some(err) => h = h_try * (0.9 * err.powf(-0.25)).clamp(0.2, 0.9),
                    None => h = h_try * 0.25,
                }
                if h.is_nan() || h <= 1e-14 * span {
                    return Err(self.failure(t, format!("step size underflow (h = {h:e})")));
                }
            }
            out.extend_from_slice(&y);
        }
        Ok(out)
    }

    /// Solves from an initial condition given on a coarser grid of `ic.len()`
    /// cells (a divisor of [`ReferenceSolver::cells`]) and returns the solution
    /// averaged back onto those cells, `[times.len(), ic.len()]`. The initial
    /// condition is prolonged piecewise constant, which preserves its cell
    /// averages (and is exact for PDEBench's constant initial conditions).
    pub fn solve_on_grid(&self, ic: &[f64], times: &[f64]) -> Result<Vec<f64>, ScenarioError> {
        let coarse = ic.len();
        if coarse == 0 || !self.cells.is_multiple_of(coarse) {
            return Err(ScenarioError::ShapeMismatch {
                what: format!(
                    "initial condition (its length must divide {} cells)",
                    self.cells
                ),
                expected: vec![self.cells],
                got: vec![coarse],
            });
        }
        let ratio = self.cells / coarse;
        let fine: Vec<f64> = ic
            .iter()
            .flat_map(|&v| std::iter::repeat_n(v, ratio))
            .collect();
        let solution = self.solve(&fine, times)?;
        Ok(solution
            .chunks_exact(ratio)
            .map(|cells| cells.iter().sum::<f64>() / ratio as f64)
            .collect())
    }

    fn failure(&self, t: f64, reason: String) -> ScenarioError {
        ScenarioError::SolverFailed {
            solver: "diffusion-sorption reference solver",
            t,
            reason,
        }
    }

    /// `D / R(u)` and its derivative in `u`, with `R` evaluated at `max(u, 0)`.
    fn mobility(&self, u: f64) -> (f64, f64) {
        let v = u.max(0.0) + EPS_U;
        let s = self.sorption * v.powf(self.exponent);
        let r = 1.0 + s;
        let dr = if u > 0.0 { self.exponent * s / v } else { 0.0 };
        (self.diffusion / r, -self.diffusion * dr / (r * r))
    }

    /// The semi-discrete right-hand side, and optionally its tridiagonal Jacobian
    /// `(sub, diag, sup)`.
    fn rhs(&self, u: &[f64], out: &mut [f64], mut jac: Option<&mut Tridiagonal>) {
        let n = self.cells;
        let dx = 1.0 / n as f64;
        let inv_dx2 = 1.0 / (dx * dx);
        let outflow = self.diffusion / dx;
        for i in 0..n {
            let left = if i == 0 { SOLUBILITY } else { u[i - 1] };
            let right = if i + 1 == n {
                outflow * (u[n - 2] - u[n - 1])
            } else {
                u[i + 1]
            };
            let lap = (left - 2.0 * u[i] + right) * inv_dx2;
            let (k, dk) = self.mobility(u[i]);
            out[i] = k * lap;
            if let Some(jac) = jac.as_deref_mut() {
                jac.diag[i] = -2.0 * k * inv_dx2 + dk * lap;
                if i > 0 {
                    jac.sub[i] = k * inv_dx2;
                }
                if i + 1 < n {
                    jac.sup[i] = k * inv_dx2;
                }
            }
        }
        if let Some(jac) = jac {
            // The right ghost depends on u_{n−2} and u_{n−1}.
            let (k, _) = self.mobility(u[n - 1]);
            jac.sub[n - 1] += k * inv_dx2 * outflow;
            jac.diag[n - 1] -= k * inv_dx2 * outflow;
        }
    }
}

fn check_input(u0: &[f64], cells: usize, times: &[f64]) -> Result<(), ScenarioError> {
    if u0.len() != cells {
        return Err(ScenarioError::ShapeMismatch {
            what: "diffusion-sorption initial condition".into(),
            expected: vec![cells],
            got: vec![u0.len()],
        });
    }
    if let Some((index, &value)) = u0.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(ScenarioError::NonFinite {
            what: "diffusion-sorption initial condition".into(),
            index,
            value,
        });
    }
    check_times(times)
}

/// Output times must be finite, at least two, and strictly increasing.
pub(crate) fn check_times(times: &[f64]) -> Result<(), ScenarioError> {
    if times.len() < 2 {
        return Err(ScenarioError::InvalidValue {
            what: "number of output times",
            value: times.len() as f64,
            reason: "must be at least 2",
        });
    }
    if let Some((index, &value)) = times.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(ScenarioError::NonFinite {
            what: "output times".into(),
            index,
            value,
        });
    }
    if let Some(w) = times.windows(2).find(|w| w[1] <= w[0]) {
        return Err(ScenarioError::InvalidValue {
            what: "output time",
            value: w[1],
            reason: "output times must be strictly increasing",
        });
    }
    Ok(())
}

/// One SDIRK4 step's workspace.
struct Stepper<'a> {
    solver: &'a ReferenceSolver,
    /// Stage values `Y_i`; after an accepted step `stages[4]` is `y_{n+1}`.
    stages: [Vec<f64>; 5],
    /// Stage derivatives `F_i = f(Y_i)`.
    slopes: [Vec<f64>; 5],
    jac: Tridiagonal,
    known: Vec<f64>,
    work: Vec<f64>,
    weights: Vec<f64>,
}

impl<'a> Stepper<'a> {
    fn new(solver: &'a ReferenceSolver) -> Self {
        let n = solver.cells;
        let zeros = || vec![0.0; n];
        Self {
            solver,
            stages: std::array::from_fn(|_| zeros()),
            slopes: std::array::from_fn(|_| zeros()),
            jac: Tridiagonal::zeros(n),
            known: zeros(),
            work: zeros(),
            weights: zeros(),
        }
    }

    /// Attempts a step of size `h` from `y`: the weighted error norm (≤ 1 means
    /// accept; the new state is then `stages[4]`), or `None` if Newton failed.
    fn step(&mut self, y: &[f64], h: f64) -> Option<f64> {
        let rtol = self.solver.rtol;
        for (w, &yi) in self.weights.iter_mut().zip(y) {
            *w = 1.0 / (rtol + rtol * yi.abs());
        }
        // The Jacobian at y, frozen for the whole step: M = I − hγJ.
        self.solver.rhs(y, &mut self.work, Some(&mut self.jac));
        let mut matrix = self.jac.clone();
        matrix.scale_and_shift(-h * GAMMA, 1.0);
        let lu = matrix.factor()?;
        for (i, row) in A.iter().enumerate() {
            // known = y + h Σ_{j<i} a_ij F_j; the guess continues the last slope.
            self.known.copy_from_slice(y);
            for (j, &a) in row.iter().enumerate().take(i) {
                axpy(h * a, &self.slopes[j], &mut self.known);
            }
            let guess = if i == 0 {
                &self.work
            } else {
                &self.slopes[i - 1]
            };
            let mut z: Vec<f64> = self
                .known
                .iter()
                .zip(guess)
                .map(|(k, g)| k + h * GAMMA * g)
                .collect();
            self.newton(&lu, h, &mut z)?;
            // F_i from the stage equation, which damps the Newton error.
            for ((f, &zi), &ki) in self.slopes[i].iter_mut().zip(&z).zip(&self.known) {
                *f = (zi - ki) / (h * GAMMA);
            }
            self.stages[i] = z;
        }
        // Filtered embedded error estimate (I − hγJ)⁻¹ · h Σ (b − b̂)_i F_i.
        self.work.fill(0.0);
        for (e, f) in B_ERR.iter().zip(&self.slopes) {
            axpy(h * e, f, &mut self.work);
        }
        lu.solve(&mut self.work);
        for ((w, &yi), &yn) in self.weights.iter_mut().zip(y).zip(&self.stages[4]) {
            *w = 1.0 / (rtol + rtol * yi.abs().max(yn.abs()));
        }
        let err = wrms(&self.work, &self.weights);
        err.is_finite().then_some(err)
    }

    /// Simplified Newton for `z − known − hγ f(z) = 0`.
    fn newton(&mut self, lu: &Tridiagonal, h: f64, z: &mut [f64]) -> Option<()> {
        let mut previous = f64::INFINITY;
        for _ in 0..NEWTON_MAX_ITERS {
            self.solver.rhs(z, &mut self.work, None);
            for ((r, &zi), &ki) in self.work.iter_mut().zip(z.iter()).zip(&self.known) {
                *r = ki + h * GAMMA * *r - zi;
            }
            lu.solve(&mut self.work);
            axpy(1.0, &self.work, z);
            let norm = wrms(&self.work, &self.weights);
            if !norm.is_finite() || norm > 0.9 * previous && norm > NEWTON_TOL {
                return None;
            }
            if norm <= NEWTON_TOL {
                return Some(());
            }
            previous = norm;
        }
        None
    }
}

fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// Weighted root-mean-square norm with inverse tolerances `w`.
fn wrms(x: &[f64], w: &[f64]) -> f64 {
    let sum: f64 = x.iter().zip(w).map(|(xi, wi)| (xi * wi).powi(2)).sum();
    (sum / x.len() as f64).sqrt()
}

/// A tridiagonal matrix (`sub[0]` and `sup[n−1]` unused); after
/// [`Tridiagonal::factor`] it holds Thomas-algorithm LU factors.
#[derive(Debug, Clone)]
struct Tridiagonal {
    sub: Vec<f64>,
    diag: Vec<f64>,
    sup: Vec<f64>,
}

impl Tridiagonal {
    fn zeros(n: usize) -> Self {
        Self {
            sub: vec![0.0; n],
            diag: vec![0.0; n],
            sup: vec![0.0; n],
        }
    }

    /// `self ← a·self + b·I`.
    fn scale_and_shift(&mut self, a: f64, b: f64) {
        for v in self.sub.iter_mut().chain(&mut self.sup) {
            *v *= a;
        }
        for d in &mut self.diag {
            *d = a * *d + b;
        }
    }

    /// LU without pivoting (the Newton matrices `I − hγJ` are close to
    /// diagonally dominant); `None` on a zero or non-finite pivot, which makes
    /// the caller retry with a smaller step.
    fn factor(mut self) -> Option<Self> {
        for i in 1..self.diag.len() {
            let pivot = self.diag[i - 1];
            if !(pivot.is_finite() && pivot != 0.0) {
                return None;
            }
            self.sub[i] /= pivot;
            self.diag[i] -= self.sub[i] * self.sup[i - 1];
        }
        let last = self.diag[self.diag.len() - 1];
        (last.is_finite() && last != 0.0).then_some(self)
    }

    /// Solves `LU x = rhs` in place.
    fn solve(&self, x: &mut [f64]) {
        let n = x.len();
        for i in 1..n {
            x[i] -= self.sub[i] * x[i - 1];
        }
        x[n - 1] /= self.diag[n - 1];
        for i in (0..n - 1).rev() {
            x[i] = (x[i] - self.sup[i] * x[i + 1]) / self.diag[i];
        }
    }
}
