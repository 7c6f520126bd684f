//! The discrete Fourier transform of a field on a periodic grid of any rank:
//! one transform along each axis in turn (rustfft), for the spectral
//! operator's preconditioner, which needs a whole field in Fourier space
//! where `meshes`' multipliers only hand back the result of one, and for the
//! spectra of generated data ([`crate::dataset::grid_scale`]).

use std::sync::Arc;

use rustfft::num_complex::Complex64;
use rustfft::{Fft, FftPlanner};

/// The forward and inverse plans of one axis.
type PlanPair = (Arc<dyn Fft<f64>>, Arc<dyn Fft<f64>>);

/// Plans for every axis of a grid, row-major (the last axis contiguous).
pub(crate) struct TorusFft {
    dims: Vec<usize>,
    plans: Vec<PlanPair>,
}

impl TorusFft {
    pub(crate) fn new(dims: &[usize]) -> Self {
        let mut planner = FftPlanner::new();
        let plans = dims
            .iter()
            .map(|&n| (planner.plan_fft_forward(n), planner.plan_fft_inverse(n)))
            .collect();
        Self {
            dims: dims.to_vec(),
            plans,
        }
    }

    /// In place, `data` holding one value per grid point: forward,
    /// `X(k) = Σ_p x(p) e^{−2πi k·p/n}`, or inverse, the same with `+` and
    /// without the factor `1/Π n` that undoes the forward transform.
    pub(crate) fn transform(&self, data: &mut [Complex64], inverse: bool) {
        debug_assert_eq!(data.len(), self.dims.iter().product::<usize>());
        let mut line = Vec::new();
        for (a, (forward, backward)) in self.plans.iter().enumerate() {
            let plan = if inverse { backward } else { forward };
            let n = self.dims[a];
            let stride: usize = self.dims[a + 1..].iter().product();
            let outer: usize = self.dims[..a].iter().product();
            let mut scratch = vec![Complex64::default(); plan.get_inplace_scratch_len()];
            if stride == 1 {
                plan.process_with_scratch(data, &mut scratch);
                continue;
            }
            line.resize(n, Complex64::default());
            for o in 0..outer {
                for i in 0..stride {
                    let start = o * n * stride + i;
                    for (j, v) in line.iter_mut().enumerate() {
                        *v = data[start + j * stride];
                    }
                    plan.process_with_scratch(&mut line, &mut scratch);
                    for (j, v) in line.iter().enumerate() {
                        data[start + j * stride] = *v;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::f64::consts::TAU;

    use super::*;

    /// The transform against the definition summed directly, on a 3 × 5 × 4
    /// grid (odd and even lengths, a middle axis with both strides), and the
    /// inverse undoing it.
    #[test]
    fn matches_the_direct_sum_and_inverts() {
        let dims = [3, 5, 4];
        let len = 60;
        let index = |p: usize| [p / 20, (p / 4) % 5, p % 4];
        let x: Vec<Complex64> = (0..len)
            .map(|p| Complex64::new((p as f64 * 0.7).sin(), (p as f64 * 0.3).cos()))
            .collect();
        let mut fast = x.clone();
        let fft = TorusFft::new(&dims);
        fft.transform(&mut fast, false);
        let worst = (0..len)
            .map(|k| {
                let kk = index(k);
                let direct: Complex64 = (0..len)
                    .map(|p| {
                        let pp = index(p);
                        let phase: f64 = (0..3)
                            .map(|a| (kk[a] * pp[a]) as f64 / dims[a] as f64)
                            .sum();
                        x[p] * Complex64::from_polar(1.0, -TAU * phase)
                    })
                    .sum();
                (direct - fast[k]).norm()
            })
            .fold(0.0, f64::max);
        assert!(worst < 1e-12, "{worst:e}");
        fft.transform(&mut fast, true);
        let back = fast
            .iter()
            .zip(&x)
            .map(|(f, x)| (f / len as f64 - x).norm())
            .fold(0.0, f64::max);
        assert!(back < 1e-14, "{back:e}");
    }
}
