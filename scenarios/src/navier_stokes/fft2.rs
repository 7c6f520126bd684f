//! Two-dimensional complex FFTs on row-major `[x, y]` arrays (`y` fastest), the
//! transform behind the pseudo-spectral solver and the random-field sampler.

use std::sync::Arc;

use rustfft::num_complex::Complex64;
use rustfft::{Fft, FftPlanner};

/// Planned forward and inverse 2-D transforms of one size. Both are
/// unnormalised (like numpy's `fft2` without the `1/n` of `ifft2`).
pub(crate) struct Fft2 {
    nx: usize,
    ny: usize,
    forward: [Arc<dyn Fft<f64>>; 2],
    inverse: [Arc<dyn Fft<f64>>; 2],
}

impl Fft2 {
    /// Transforms of `nx × ny` arrays.
    pub(crate) fn new(nx: usize, ny: usize) -> Self {
        let mut planner = FftPlanner::new();
        Self {
            nx,
            ny,
            forward: [planner.plan_fft_forward(nx), planner.plan_fft_forward(ny)],
            inverse: [planner.plan_fft_inverse(nx), planner.plan_fft_inverse(ny)],
        }
    }

    /// In-place forward transform `Σ a·e^{−2πi(kx·x/nx + ky·y/ny)}`.
    pub(crate) fn forward(&self, data: &mut [Complex64]) {
        self.transform(data, &self.forward);
    }

    /// In-place inverse transform (sign `+`, no `1/(nx·ny)` factor).
    pub(crate) fn inverse(&self, data: &mut [Complex64]) {
        self.transform(data, &self.inverse);
    }

    fn transform(&self, data: &mut [Complex64], plans: &[Arc<dyn Fft<f64>>; 2]) {
        let (nx, ny) = (self.nx, self.ny);
        debug_assert_eq!(data.len(), nx * ny);
        // Rows (along y) are contiguous.
        plans[1].process(data);
        // Columns (along x): gather, transform, scatter.
        let mut column = vec![Complex64::default(); nx];
        for j in 0..ny {
            for (i, c) in column.iter_mut().enumerate() {
                *c = data[i * ny + j];
            }
            plans[0].process(&mut column);
            for (i, c) in column.iter().enumerate() {
                data[i * ny + j] = *c;
            }
        }
    }
}

/// The signed wavenumber of FFT index `i` on an axis of `n` points
/// (`0, 1, …, n/2, −(n/2 − 1), …, −1`; the Nyquist index maps to `+n/2`).
pub(crate) fn wavenumber(i: usize, n: usize) -> f64 {
    if i <= n / 2 {
        i as f64
    } else {
        i as f64 - n as f64
    }
}
