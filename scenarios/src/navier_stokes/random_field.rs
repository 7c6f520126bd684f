//! Gaussian random fields for Navier–Stokes initial vorticity.
//!
//! The covariance is the periodic kernel of Neural-Spectral-Methods
//! (`src/dists.py`, `Gaussian.Per`, the authors' NS generator; REFERENCE-NOTES §5)
//! on the unit square,
//!
//! ```text
//! k(x, y) = exp(−2 · Σ_d (sin(π(x_d − y_d)) / 2)² / ℓ²),   ℓ = 0.8,
//! ```
//!
//! and the spatial mean of every sample is removed (vorticity on a periodic
//! domain has zero mean). On a uniform periodic grid the covariance matrix is
//! block-circulant, so it is diagonalised by the 2-D DFT: with `λ = DFT(k(·, 0))`
//! and complex white noise `ξ`, `Re(IDFT(√(λ/n) ξ))` has exactly the covariance
//! `k` at the grid points (an exact sampler, O(n log n) instead of a Cholesky
//! factorisation).
//!
//! **Reproducibility.** Sample `i` of seed `s` uses `ChaCha8Rng::seed_from_u64(s)`
//! on stream `i` (`set_stream`), so every sample is reproducible on its own and
//! independent of how samples are spread over threads. [`PeriodicGrf::draw`]
//! takes the rng instead, for callers that own the streams (the `grf` family of
//! [`crate::custom::initial`]).
//!
//! **Other grids.** [`PeriodicGrf::grid`] samples an `nx × ny` grid; `ny = 1`
//! is the 1-D field on the unit interval (the kernel's `y` factor is then
//! `exp(0) = 1`, so the same code is the 1-D kernel). A periodic domain of
//! another period is the unit one rescaled: the kernel is then a function of
//! the displacement in periods, and `ℓ` is measured in periods.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rustfft::num_complex::Complex64;

use crate::ScenarioError;
use crate::navier_stokes::fft2::Fft2;

/// The paper's length scale ℓ (PI-HC-MoE §4.2).
pub const LENGTH_SCALE: f64 = 0.8;

/// A sampler of mean-free periodic Gaussian random fields on an `nx × ny` grid
/// of the unit square (points `(i/nx, j/ny)`), row-major `[x, y]`.
pub struct PeriodicGrf {
    nx: usize,
    ny: usize,
    /// `√(λ_k / n²)` per Fourier mode.
    amplitudes: Vec<f64>,
    fft: Fft2,
}

impl PeriodicGrf {
    /// A sampler on `n × n` points with length scale `length_scale`.
    pub fn new(n: usize, length_scale: f64) -> Result<Self, ScenarioError> {
        Self::grid(n, n, length_scale)
    }

    /// A sampler on `nx × ny` points with length scale `length_scale` (`ny = 1`:
    /// the 1-D field on `nx` points).
    ///
    /// Errors: fewer than two points on `x`, none on `y`, or a length scale that
    /// is not finite and positive.
    pub fn grid(nx: usize, ny: usize, length_scale: f64) -> Result<Self, ScenarioError> {
        for (n, least) in [(nx, 2), (ny, 1)] {
            if n < least {
                return Err(ScenarioError::InvalidValue {
                    what: "random-field resolution",
                    value: n as f64,
                    reason: if least == 2 {
                        "must be at least 2 along x"
                    } else {
                        "must be at least 1 along y"
                    },
                });
            }
        }
        if !(length_scale.is_finite() && length_scale > 0.0) {
            return Err(ScenarioError::InvalidValue {
                what: "random-field length scale",
                value: length_scale,
                reason: "must be finite and positive",
            });
        }
        let fft = Fft2::new(nx, ny);
        let mut row: Vec<Complex64> = (0..nx * ny)
            .map(|p| {
                Complex64::new(
                    kernel(
                        &[(p / ny) as f64 / nx as f64, (p % ny) as f64 / ny as f64],
                        length_scale,
                    ),
                    0.0,
                )
            })
            .collect();
        fft.forward(&mut row);
        let total = (nx * ny) as f64;
        // The eigenvalues are real and non-negative up to round-off.
        let amplitudes = row.iter().map(|l| (l.re.max(0.0) / total).sqrt()).collect();
        Ok(Self {
            nx,
            ny,
            amplitudes,
            fft,
        })
    }

    /// Grid points along `x` and `y`.
    pub fn shape(&self) -> (usize, usize) {
        (self.nx, self.ny)
    }

    /// Sample `index` of the stream seeded by `seed` (see the module docs).
    pub fn sample(&self, seed: u64, index: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(index);
        self.draw(&mut rng)
    }

    /// One sample from `rng` (two normal numbers per grid point).
    pub fn draw(&self, rng: &mut impl Rng) -> Vec<f64> {
        let mut modes: Vec<Complex64> = self
            .amplitudes
            .iter()
            .map(|&a| {
                let (re, im) = normal_pair(rng);
                Complex64::new(a * re, a * im)
            })
            .collect();
        self.fft.inverse(&mut modes);
        let mean = modes.iter().map(|c| c.re).sum::<f64>() / modes.len() as f64;
        modes.iter().map(|c| c.re - mean).collect()
    }
}

/// The periodic kernel between a displacement `d` and the origin.
///
/// Defined for every finite positive `length_scale`: at zero displacement
/// the kernel is `exp(0) = 1` whatever `ℓ`, and it is taken as that, since
/// below `ℓ ≈ 1.6e-162` the square `ℓ²` underflows to 0 and the formula's
/// `0/0` is NaN — which made every eigenvalue NaN, [`PeriodicGrf::grid`]
/// clamped them to 0, and every sample was an all-zero field. At any other
/// displacement of a grid (of up to 2²⁴ points per axis, `s ≥ 8.7e-15`) the
/// exponent is then `−∞` and the kernel 0, the value `exp(−2s/ℓ²)` rounds to
/// for such an `ℓ` anyway: far below the grid spacing, the field is white
/// noise on the grid.
pub fn kernel(d: &[f64], length_scale: f64) -> f64 {
    let s: f64 = d
        .iter()
        .map(|&x| (std::f64::consts::PI * x).sin().powi(2) / 4.0)
        .sum();
    if s == 0.0 {
        return 1.0;
    }
    (-2.0 * s / (length_scale * length_scale)).exp()
}

/// Two independent standard normal numbers (Box–Muller).
fn normal_pair(rng: &mut impl Rng) -> (f64, f64) {
    // 1 − U lies in (0, 1], so the logarithm is finite.
    let radius = (-2.0 * (1.0 - rng.random::<f64>()).ln()).sqrt();
    let angle = std::f64::consts::TAU * rng.random::<f64>();
    (radius * angle.cos(), radius * angle.sin())
}
