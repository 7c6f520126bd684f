//! Ground truth for 2-D Navier–Stokes in vorticity form on the periodic unit
//! square, `w_t + u·∇w = νΔw` (no forcing), by a pseudo-spectral method.
//!
//! The velocity comes from the stream function, `Δψ = −w`, `u = ψ_y`, `v = −ψ_x`.
//! In time, diffusion is Crank–Nicolson and advection is Heun's method
//! (explicit trapezoidal), as in the authors' generator (Neural-Spectral-Methods
//! `src/pde/navierstokes/generate.py`, after the FNO generator; REFERENCE-NOTES §5):
//!
//! ```text
//! w̃     = [(1 + hL/2) ŵⁿ + h N(ŵⁿ)]               / (1 − hL/2)
//! ŵⁿ⁺¹  = [(1 + hL/2) ŵⁿ + h (N(ŵⁿ) + N(w̃))/2]    / (1 − hL/2)
//! ```
//!
//! with `L = −4π²ν|k|²` and `N(ŵ) = −FFT(u·w_x + v·w_y)`, second order in `h`.
//! The nonlinear term is dealiased by the 2/3 rule (modes with
//! `|k_x| > n/3` or `|k_y| > n/3` are zeroed). Each output interval is split
//! into the fewest equal steps no longer than `dt` (the authors' code takes
//! `⌊Δt/dt⌋` steps of `dt` and one remainder step instead).
//!
//! Array layout: row-major `[x, y]` (`y` fastest) per frame, frames stacked in
//! time: `[t, x, y]`.

use std::f64::consts::PI;

use rustfft::num_complex::Complex64;
use tessera_meshes::MeshError;

use crate::ScenarioError;
use crate::diffusion_sorption::reference_solver::check_times;
use crate::navier_stokes::fft2::{Fft2, wavenumber};

/// The smallest resolution the solver takes: 4 points per axis, the
/// smallest grid on which the 2/3 rule keeps a wave (`|k| = 1`) and drops
/// one (the Nyquist mode). A scenario's validation refuses less before any
/// data are generated.
pub const MIN_RESOLUTION: usize = 4;

/// The most steps one solve may take (all output intervals together): a
/// bound on the time a request can cost, far above any sensible one (the
/// paper's setting, `t_max = 5` in steps of `1e-3`, takes 5 000; the FNO
/// generator's, 50 in steps of `1e-4`, 500 000), so that a `dt` or a time
/// span off by orders of magnitude is a typed error at once, not a run that
/// never ends.
pub const MAX_STEPS: usize = 10_000_000;

/// Steps of at most `dt` over `span`: the fewest equal ones, at least one.
/// Float, so that a span of `1e300` counts without overflow.
pub fn steps_over(span: f64, dt: f64) -> f64 {
    (span / dt).ceil().max(1.0)
}

/// The pseudo-spectral vorticity solver at one resolution.
pub struct ReferenceSolver {
    nu: f64,
    n: usize,
    dt: f64,
    fft: Fft2,
    /// `2π k_x`, `2π k_y` per mode, zero at the Nyquist index (odd derivatives).
    kx: Vec<f64>,
    ky: Vec<f64>,
    /// `4π²|k|²` per mode.
    k2: Vec<f64>,
    /// 1 where the nonlinear term is kept, 0 where 2/3-rule dealiasing drops it.
    keep: Vec<f64>,
}

impl ReferenceSolver {
    /// A solver with viscosity `nu` on an `n × n` grid, with steps of at most `dt`.
    pub fn new(nu: f64, n: usize, dt: f64) -> Result<Self, ScenarioError> {
        if !(nu.is_finite() && nu >= 0.0) {
            return Err(ScenarioError::InvalidValue {
                what: "viscosity nu",
                value: nu,
                reason: "must be finite and non-negative",
            });
        }
        if !(dt.is_finite() && dt > 0.0) {
            return Err(ScenarioError::InvalidValue {
                what: "time step dt",
                value: dt,
                reason: "must be finite and positive",
            });
        }
        if n < MIN_RESOLUTION {
            return Err(ScenarioError::Mesh(MeshError::TooSmall {
                what: "Navier-Stokes resolution",
                min: MIN_RESOLUTION,
                got: n,
            }));
        }
        let odd = |i: usize| {
            if 2 * i == n {
                0.0
            } else {
                2.0 * PI * wavenumber(i, n)
            }
        };
        let cut = n as f64 / 3.0;
        let (mut kx, mut ky, mut k2, mut keep) = (vec![], vec![], vec![], vec![]);
        for i in 0..n {
            for j in 0..n {
                let (a, b) = (wavenumber(i, n), wavenumber(j, n));
                kx.push(odd(i));
                ky.push(odd(j));
                k2.push(4.0 * PI * PI * (a * a + b * b));
                keep.push(if a.abs() <= cut && b.abs() <= cut {
                    1.0
                } else {
                    0.0
                });
            }
        }
        Ok(Self {
            nu,
            n,
            dt,
            fft: Fft2::new(n, n),
            kx,
            ky,
            k2,
            keep,
        })
    }

    /// Grid points per axis.
    pub fn resolution(&self) -> usize {
        self.n
    }

    /// Solves from `w0` (`n × n`) and returns `w` at each of `times`
    /// (`[times.len(), n, n]`); `times[0]` is the time of `w0`.
    pub fn solve(&self, w0: &[f64], times: &[f64]) -> Result<Vec<f64>, ScenarioError> {
        check_field(w0, self.n, self.n)?;
        check_times(times)?;
        let steps: f64 = times
            .windows(2)
            .map(|w| steps_over(w[1] - w[0], self.dt))
            .sum();
        if steps > MAX_STEPS as f64 {
            return Err(ScenarioError::SolverFailed {
                solver: "Navier-Stokes reference solver",
                t: times[0],
                reason: format!(
                    "{steps:e} steps of at most dt = {} to reach t = {}: more than {MAX_STEPS}",
                    self.dt,
                    times[times.len() - 1]
                ),
            });
        }
        let total = (self.n * self.n) as f64;
        let mut w_hat: Vec<Complex64> = w0.iter().map(|&w| Complex64::new(w, 0.0)).collect();
        self.fft.forward(&mut w_hat);
        let mut out = Vec::with_capacity(times.len() * w0.len());
        out.extend_from_slice(w0);
        let mut work = Workspace::new(w0.len());
        for (k, interval) in times.windows(2).enumerate() {
            let span = interval[1] - interval[0];
            let steps = steps_over(span, self.dt) as usize;
            let h = span / steps as f64;
            for _ in 0..steps {
                self.step(&mut w_hat, h, &mut work);
            }
            work.a.copy_from_slice(&w_hat);
            self.fft.inverse(&mut work.a);
            let frame = work.a.iter().map(|c| c.re / total);
            let start = out.len();
            out.extend(frame);
            if let Some((index, &value)) = out[start..]
                .iter()
                .enumerate()
                .find(|(_, v)| !v.is_finite())
            {
                return Err(ScenarioError::SolverFailed {
                    solver: "Navier-Stokes reference solver",
                    t: times[k + 1],
                    reason: format!("non-finite vorticity {value} at point {index}"),
                });
            }
        }
        Ok(out)
    }

    /// Solves from an initial condition on an `mx × my` grid (each dividing the
    /// solver's resolution): the IC is interpolated spectrally (zero-padded in
    /// Fourier space; its Nyquist modes are dropped) and the solution is
    /// subsampled back onto the `mx × my` points, `[times.len(), mx, my]`.
    pub fn solve_on_grid(
        &self,
        ic: &[f64],
        mx: usize,
        my: usize,
        times: &[f64],
    ) -> Result<Vec<f64>, ScenarioError> {
        check_field(ic, mx, my)?;
        let n = self.n;
        if mx == 0 || my == 0 || !n.is_multiple_of(mx) || !n.is_multiple_of(my) {
            return Err(ScenarioError::ShapeMismatch {
                what: format!("Navier-Stokes grid (each size must divide the resolution {n})"),
                expected: vec![n, n],
                got: vec![mx, my],
            });
        }
        let fine = if (mx, my) == (n, n) {
            ic.to_vec()
        } else {
            interpolate(ic, mx, my, n)
        };
        let solution = self.solve(&fine, times)?;
        let (sx, sy) = (n / mx, n / my);
        Ok(solution
            .chunks_exact(n * n)
            .flat_map(|frame| {
                (0..mx).flat_map(move |i| (0..my).map(move |j| frame[i * sx * n + j * sy]))
            })
            .collect())
    }

    /// One Crank–Nicolson/Heun step of size `h` in Fourier space.
    fn step(&self, w_hat: &mut [Complex64], h: f64, work: &mut Workspace) {
        self.nonlinear(w_hat, &mut work.n1, &mut work.a, &mut work.b);
        let half_l = |k2: f64| -self.nu * k2 * h / 2.0;
        for (((tilde, &w), &n1), &k2) in work
            .tilde
            .iter_mut()
            .zip(&*w_hat)
            .zip(&work.n1)
            .zip(&self.k2)
        {
            let l = half_l(k2);
            *tilde = ((1.0 + l) * w + h * n1) / (1.0 - l);
        }
        self.nonlinear(&work.tilde, &mut work.n2, &mut work.a, &mut work.b);
        for (((w, &n1), &n2), &k2) in w_hat.iter_mut().zip(&work.n1).zip(&work.n2).zip(&self.k2) {
            let l = half_l(k2);
            *w = ((1.0 + l) * *w + h * 0.5 * (n1 + n2)) / (1.0 - l);
        }
    }

    /// `out = −FFT(u·w_x + v·w_y)`, dealiased. Two real fields share each
    /// complex inverse transform (`u + i·v`, `w_x + i·w_y`), since each field's
    /// spectrum is Hermitian.
    fn nonlinear(
        &self,
        w_hat: &[Complex64],
        out: &mut [Complex64],
        velocity: &mut [Complex64],
        gradient: &mut [Complex64],
    ) {
        let i = Complex64::new(0.0, 1.0);
        for p in 0..w_hat.len() {
            let psi = if self.k2[p] > 0.0 {
                w_hat[p] / self.k2[p]
            } else {
                Complex64::default()
            };
            let (u, v) = (i * self.ky[p] * psi, -i * self.kx[p] * psi);
            let (wx, wy) = (i * self.kx[p] * w_hat[p], i * self.ky[p] * w_hat[p]);
            velocity[p] = u + i * v;
            gradient[p] = wx + i * wy;
        }
        self.fft.inverse(velocity);
        self.fft.inverse(gradient);
        let scale = 1.0 / (w_hat.len() as f64).powi(2);
        for p in 0..w_hat.len() {
            let (vel, grad) = (velocity[p], gradient[p]);
            out[p] = Complex64::new(-(vel.re * grad.re + vel.im * grad.im) * scale, 0.0);
        }
        self.fft.forward(out);
        for (o, k) in out.iter_mut().zip(&self.keep) {
            *o *= *k;
        }
    }
}

/// Scratch arrays for one trajectory.
struct Workspace {
    n1: Vec<Complex64>,
    n2: Vec<Complex64>,
    tilde: Vec<Complex64>,
    a: Vec<Complex64>,
    b: Vec<Complex64>,
}

impl Workspace {
    fn new(len: usize) -> Self {
        let zeros = || vec![Complex64::default(); len];
        Self {
            n1: zeros(),
            n2: zeros(),
            tilde: zeros(),
            a: zeros(),
            b: zeros(),
        }
    }
}

fn check_field(w: &[f64], mx: usize, my: usize) -> Result<(), ScenarioError> {
    if w.len() != mx * my {
        return Err(ScenarioError::ShapeMismatch {
            what: "Navier-Stokes initial vorticity".into(),
            expected: vec![mx, my],
            got: vec![w.len()],
        });
    }
    if let Some((index, &value)) = w.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(ScenarioError::NonFinite {
            what: "Navier-Stokes initial vorticity".into(),
            index,
            value,
        });
    }
    Ok(())
}

/// Trigonometric interpolation of an `mx × my` periodic field onto `n × n`
/// points (`mx, my ≤ n`), dropping the coarse Nyquist modes.
fn interpolate(field: &[f64], mx: usize, my: usize, n: usize) -> Vec<f64> {
    let mut coarse: Vec<Complex64> = field.iter().map(|&v| Complex64::new(v, 0.0)).collect();
    Fft2::new(mx, my).forward(&mut coarse);
    let mut fine = vec![Complex64::default(); n * n];
    let index = |k: f64| {
        if k < 0.0 {
            (k + n as f64) as usize
        } else {
            k as usize
        }
    };
    for i in 0..mx {
        for j in 0..my {
            let (a, b) = (wavenumber(i, mx), wavenumber(j, my));
            if 2.0 * a.abs() == mx as f64 || 2.0 * b.abs() == my as f64 {
                continue;
            }
            fine[index(a) * n + index(b)] = coarse[i * my + j];
        }
    }
    Fft2::new(n, n).inverse(&mut fine);
    let scale = 1.0 / (mx * my) as f64;
    fine.iter().map(|c| c.re * scale).collect()
}
