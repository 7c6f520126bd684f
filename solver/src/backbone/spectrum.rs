//! Truncated discrete Fourier transforms as small dense matrices.
//!
//! candle has no FFT, and the FNO keeps only a handful of modes per axis, so a
//! truncated DFT is a `[modes, n]` matrix product — cheaper than an FFT at these
//! sizes and trivially differentiable (the adjoint is the transposed product).
//!
//! Two kinds of axis, as in `rfftn`/`irfftn` of the reference FNO:
//! - the **last** spatial axis is real: [`HalfSpectrum`] keeps frequencies
//!   `0..m` of the real DFT and synthesises with `irfft`'s Hermitian weights;
//! - every **other** axis is complex: [`FullSpectrum`] keeps `m` positive and `m`
//!   negative frequencies (`0..m` and `n−m..n`), the reference's
//!   `weights1`/`weights2` blocks.
//!
//! Complex arrays are two real arrays (real part, imaginary part) of equal
//! shape, laid out `[outer, axis, inner]`.

use std::f64::consts::TAU;

use faer::Par;
use rayon::prelude::*;

use super::Real;
use super::matmul::{dense, dense_mut, gemm, view};

/// The real DFT along the last spatial axis, truncated to `modes` frequencies,
/// and its inverse on the truncated spectrum.
#[derive(Debug, Clone)]
pub struct HalfSpectrum<T> {
    n: usize,
    modes: usize,
    /// `[2·modes, n]`: rows `k < modes` hold `cos(2πkx/n)`, rows `modes + k` hold
    /// `−sin(2πkx/n)` (so `analysis · x` is `(Re X_k, Im X_k)`).
    analysis: Vec<T>,
    /// `[n, 2·modes]`: `irfft` of a spectrum that is zero beyond `modes`:
    /// `x = (1/n) Σ_k c_k (Re X_k cos − Im X_k sin)` with `c_0 = 1`, `c_{n/2} = 1`
    /// (Nyquist, even `n`) and `c_k = 2` otherwise.
    synthesis: Vec<T>,
}

impl<T: Real> HalfSpectrum<T> {
    /// The transform pair for an axis of `n` points keeping `modes` frequencies.
    ///
    /// # Panics
    /// If `modes` is zero or exceeds `n/2 + 1` (callers validate user input).
    #[track_caller]
    pub fn new(n: usize, modes: usize) -> Self {
        assert!(
            modes >= 1 && modes <= n / 2 + 1,
            "{modes} real-DFT modes on an axis of {n} points"
        );
        let mut analysis = vec![T::zero(); 2 * modes * n];
        let mut synthesis = vec![T::zero(); n * 2 * modes];
        for k in 0..modes {
            let weight = if k == 0 || 2 * k == n { 1.0 } else { 2.0 };
            for x in 0..n {
                // Reduce k·x modulo n first so the angle stays small and exact.
                let angle = TAU * ((k * x) % n) as f64 / n as f64;
                let (s, c) = angle.sin_cos();
                analysis[k * n + x] = T::from_f64(c);
                analysis[(modes + k) * n + x] = T::from_f64(-s);
                synthesis[x * 2 * modes + k] = T::from_f64(weight * c / n as f64);
                synthesis[x * 2 * modes + modes + k] = T::from_f64(-weight * s / n as f64);
            }
        }
        Self {
            n,
            modes,
            analysis,
            synthesis,
        }
    }

    /// Number of points on the axis.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Number of kept frequencies.
    pub fn modes(&self) -> usize {
        self.modes
    }

    /// The `[2·modes, n]` analysis and `[n, 2·modes]` synthesis matrices (for
    /// the GPU backbone, which runs the same products).
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) fn matrices(&self) -> (&[T], &[T]) {
        (&self.analysis, &self.synthesis)
    }

    /// `(re, im) = truncated rfft(x)` for one row `x: [n, c]`;
    /// `re, im: [modes, c]`.
    pub fn analyse(&self, x: &[T], c: usize, re: &mut [T], im: &mut [T]) {
        let (m, n) = (self.modes, self.n);
        let x = dense(x, n, c);
        gemm(
            dense_mut(re, m, c),
            false,
            dense(&self.analysis, m, n),
            x,
            T::one(),
            Par::Seq,
        );
        gemm(
            dense_mut(im, m, c),
            false,
            dense(&self.analysis[m * n..], m, n),
            x,
            T::one(),
            Par::Seq,
        );
    }

    /// `gx += analysisᵀ · (g_re, g_im)`: the adjoint of [`HalfSpectrum::analyse`].
    pub fn analyse_adjoint(&self, g_re: &[T], g_im: &[T], c: usize, gx: &mut [T]) {
        let (m, n) = (self.modes, self.n);
        let a_re = dense(&self.analysis, m, n).transpose();
        let a_im = dense(&self.analysis[m * n..], m, n).transpose();
        let mut gx = dense_mut(gx, n, c);
        gemm(
            gx.as_mut(),
            true,
            a_re,
            dense(g_re, m, c),
            T::one(),
            Par::Seq,
        );
        gemm(gx, true, a_im, dense(g_im, m, c), T::one(), Par::Seq);
    }

    /// `out (+)= irfft(re, im)` for one row; `out: [n, c]`.
    pub fn synthesise(&self, re: &[T], im: &[T], c: usize, out: &mut [T], accumulate: bool) {
        let (m, n) = (self.modes, self.n);
        let s_re = view(&self.synthesis, n, m, 2 * m);
        let s_im = view(&self.synthesis[m..], n, m, 2 * m);
        let mut out = dense_mut(out, n, c);
        gemm(
            out.as_mut(),
            accumulate,
            s_re,
            dense(re, m, c),
            T::one(),
            Par::Seq,
        );
        gemm(out, true, s_im, dense(im, m, c), T::one(), Par::Seq);
    }

    /// `(g_re, g_im) = synthesisᵀ · g`: the adjoint of [`HalfSpectrum::synthesise`].
    pub fn synthesise_adjoint(&self, g: &[T], c: usize, g_re: &mut [T], g_im: &mut [T]) {
        let (m, n) = (self.modes, self.n);
        let g = dense(g, n, c);
        let s_re = view(&self.synthesis, n, m, 2 * m).transpose();
        let s_im = view(&self.synthesis[m..], n, m, 2 * m).transpose();
        gemm(dense_mut(g_re, m, c), false, s_re, g, T::one(), Par::Seq);
        gemm(dense_mut(g_im, m, c), false, s_im, g, T::one(), Par::Seq);
    }
}

/// The complex DFT along a non-last axis, truncated to `modes` positive and
/// `modes` negative frequencies (`2·modes` kept), and its inverse.
#[derive(Debug, Clone)]
pub struct FullSpectrum<T> {
    n: usize,
    modes: usize,
    /// `[2·modes, n]`: `cos(2π f_j t / n)` for the kept frequencies `f_j`.
    cos: Vec<T>,
    /// `[2·modes, n]`: `sin(2π f_j t / n)`.
    sin: Vec<T>,
}

impl<T: Real> FullSpectrum<T> {
    /// The transform pair for an axis of `n` points keeping `modes` frequencies
    /// on each side of zero.
    ///
    /// # Panics
    /// If `modes` is zero or `2·modes > n` (the two blocks would overlap).
    #[track_caller]
    pub fn new(n: usize, modes: usize) -> Self {
        assert!(
            modes >= 1 && 2 * modes <= n,
            "{modes} complex-DFT modes per side on an axis of {n} points"
        );
        let k = 2 * modes;
        let mut cos = vec![T::zero(); k * n];
        let mut sin = vec![T::zero(); k * n];
        for j in 0..k {
            let f = if j < modes { j } else { n - k + j };
            for t in 0..n {
                let angle = TAU * ((f * t) % n) as f64 / n as f64;
                let (s, c) = angle.sin_cos();
                cos[j * n + t] = T::from_f64(c);
                sin[j * n + t] = T::from_f64(s);
            }
        }
        Self { n, modes, cos, sin }
    }

    /// Number of points on the axis.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Number of kept frequencies (`2·modes`).
    pub fn kept(&self) -> usize {
        2 * self.modes
    }

    /// The `[2·modes, n]` cosine and sine matrices (for the GPU backbone).
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) fn matrices(&self) -> (&[T], &[T]) {
        (&self.cos, &self.sin)
    }

    /// The truncated DFT `X_j = Σ_t e^{−2πi f_j t/n} x_t` along the middle axis of
    /// `(re, im): [outer, n, inner]`, returning `[outer, 2·modes, inner]`.
    /// With `scale = 1/n` this is also the adjoint of [`FullSpectrum::inverse`].
    pub fn forward(&self, re: &[T], im: &[T], inner: usize, scale: T) -> (Vec<T>, Vec<T>) {
        let (k, n) = (self.kept(), self.n);
        let (c, s) = (dense(&self.cos, k, n), dense(&self.sin, k, n));
        // Re' = C·Re + S·Im, Im' = C·Im − S·Re.
        self.per_outer(re, im, n, k, inner, |xr, xi, mut yr, mut yi| {
            gemm(yr.as_mut(), false, c, xr, scale, Par::Seq);
            gemm(yr, true, s, xi, scale, Par::Seq);
            gemm(yi.as_mut(), false, c, xi, scale, Par::Seq);
            gemm(yi, true, s, xr, -scale, Par::Seq);
        })
    }

    /// The inverse DFT `x_t = (1/n) Σ_j e^{+2πi f_j t/n} X_j` of a spectrum that is
    /// zero outside the kept frequencies: `[outer, 2·modes, inner]` →
    /// `[outer, n, inner]`. With `scale = n` (i.e. without the `1/n`) it is the
    /// adjoint of [`FullSpectrum::forward`].
    pub fn inverse(&self, re: &[T], im: &[T], inner: usize, scale: T) -> (Vec<T>, Vec<T>) {
        let (k, n) = (self.kept(), self.n);
        let alpha = scale / T::from_f64(n as f64);
        let (ct, st) = (
            dense(&self.cos, k, n).transpose(),
            dense(&self.sin, k, n).transpose(),
        );
        // Re' = (Cᵀ·Re − Sᵀ·Im)/n, Im' = (Cᵀ·Im + Sᵀ·Re)/n.
        self.per_outer(re, im, k, n, inner, |xr, xi, mut yr, mut yi| {
            gemm(yr.as_mut(), false, ct, xr, alpha, Par::Seq);
            gemm(yr, true, st, xi, -alpha, Par::Seq);
            gemm(yi.as_mut(), false, ct, xi, alpha, Par::Seq);
            gemm(yi, true, st, xr, alpha, Par::Seq);
        })
    }

    /// Runs `kernel(x_re, x_im, y_re, y_im)` on each `outer` block, mapping
    /// `[from, inner]` matrices to `[to, inner]` ones, in parallel over blocks.
    fn per_outer(
        &self,
        re: &[T],
        im: &[T],
        from: usize,
        to: usize,
        inner: usize,
        kernel: impl Fn(faer::MatRef<T>, faer::MatRef<T>, faer::MatMut<T>, faer::MatMut<T>) + Sync,
    ) -> (Vec<T>, Vec<T>) {
        let outer = re.len() / (from * inner);
        let mut out_re = vec![T::zero(); outer * to * inner];
        let mut out_im = vec![T::zero(); outer * to * inner];
        out_re
            .par_chunks_mut(to * inner)
            .zip(out_im.par_chunks_mut(to * inner))
            .zip(re.par_chunks(from * inner).zip(im.par_chunks(from * inner)))
            .for_each(|((yr, yi), (xr, xi))| {
                kernel(
                    dense(xr, from, inner),
                    dense(xi, from, inner),
                    dense_mut(yr, to, inner),
                    dense_mut(yi, to, inner),
                );
            });
        (out_re, out_im)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Naive complex DFT of a real or complex sequence, written independently of
    /// the matrices above (direct sum with `e^{−2πi k t/n}`).
    fn naive_dft(re: &[f64], im: &[f64], k: i64) -> (f64, f64) {
        let n = re.len();
        let mut acc = (0.0, 0.0);
        for t in 0..n {
            let a = -TAU * (k * t as i64) as f64 / n as f64;
            let (s, c) = a.sin_cos();
            acc.0 += re[t] * c - im[t] * s;
            acc.1 += re[t] * s + im[t] * c;
        }
        acc
    }

    fn signal(n: usize, seed: f64) -> Vec<f64> {
        (0..n)
            .map(|i| (seed * (i as f64 + 0.3)).sin() + 0.1 * i as f64)
            .collect()
    }

    #[test]
    fn half_spectrum_matches_direct_dft() {
        for &(n, m) in &[(16, 5), (17, 9), (12, 7)] {
            let x = signal(n, 1.7);
            let half = HalfSpectrum::<f64>::new(n, m);
            let (mut re, mut im) = (vec![0.0; m], vec![0.0; m]);
            half.analyse(&x, 1, &mut re, &mut im);
            for k in 0..m {
                let (r, i) = naive_dft(&x, &vec![0.0; n], k as i64);
                assert!((re[k] - r).abs() < 1e-12 * n as f64, "n={n} k={k}");
                assert!((im[k] - i).abs() < 1e-12 * n as f64, "n={n} k={k}");
            }
        }
    }

    /// Synthesis is `irfft` of the truncated spectrum: with all `n/2 + 1` modes
    /// kept it inverts the analysis exactly (even and odd `n`).
    #[test]
    fn half_spectrum_round_trip_with_all_modes() {
        for &n in &[16usize, 15] {
            let m = n / 2 + 1;
            let x = signal(n, 0.9);
            let half = HalfSpectrum::<f64>::new(n, m);
            let (mut re, mut im) = (vec![0.0; m], vec![0.0; m]);
            half.analyse(&x, 1, &mut re, &mut im);
            let mut back = vec![0.0; n];
            half.synthesise(&re, &im, 1, &mut back, false);
            for (a, b) in x.iter().zip(&back) {
                assert!((a - b).abs() < 1e-12 * n as f64);
            }
        }
    }

    #[test]
    fn full_spectrum_matches_direct_dft_and_inverts() {
        let (n, m) = (11, 3);
        let re = signal(n, 0.4);
        let im = signal(n, 2.1);
        let full = FullSpectrum::<f64>::new(n, m);
        let (yr, yi) = full.forward(&re, &im, 1, 1.0);
        let freqs: Vec<i64> = (0..m as i64).chain(-(m as i64)..0).collect();
        for (j, &f) in freqs.iter().enumerate() {
            let (r, i) = naive_dft(&re, &im, f);
            assert!((yr[j] - r).abs() < 1e-12 * n as f64);
            assert!((yi[j] - i).abs() < 1e-12 * n as f64);
        }
        // The inverse of a single kept mode is the sampled exponential / n.
        let (mut sr, mut si) = (vec![0.0; 2 * m], vec![0.0; 2 * m]);
        sr[m + 1] = 1.0; // frequency −m + 1
        si[m + 1] = 0.5;
        let (xr, xi) = full.inverse(&sr, &si, 1, 1.0);
        let f = -(m as f64) + 1.0;
        for t in 0..n {
            let a = TAU * f * t as f64 / n as f64;
            let (s, c) = a.sin_cos();
            assert!((xr[t] - (c - 0.5 * s) / n as f64).abs() < 1e-14);
            assert!((xi[t] - (s + 0.5 * c) / n as f64).abs() < 1e-14);
        }
    }

    /// `⟨F x, y⟩ = ⟨x, Fᵀ y⟩` for both transform kinds (the backward passes use
    /// the adjoints).
    #[test]
    fn adjoints_are_transposes() {
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let (n, m, c) = (10, 4, 3);
        let half = HalfSpectrum::<f64>::new(n, m);
        let x = signal(n * c, 0.7);
        let (gr, gi) = (signal(m * c, 1.3), signal(m * c, 2.9));
        let (mut re, mut im) = (vec![0.0; m * c], vec![0.0; m * c]);
        half.analyse(&x, c, &mut re, &mut im);
        let mut gx = vec![0.0; n * c];
        half.analyse_adjoint(&gr, &gi, c, &mut gx);
        assert!((dot(&re, &gr) + dot(&im, &gi) - dot(&x, &gx)).abs() < 1e-11);

        let mut y = vec![0.0; n * c];
        half.synthesise(&gr, &gi, c, &mut y, false);
        let (mut ar, mut ai) = (vec![0.0; m * c], vec![0.0; m * c]);
        half.synthesise_adjoint(&x, c, &mut ar, &mut ai);
        assert!((dot(&y, &x) - dot(&gr, &ar) - dot(&gi, &ai)).abs() < 1e-11);

        let full = FullSpectrum::<f64>::new(n, m);
        let (outer, inner) = (2, 3);
        let (xr, xi) = (
            signal(outer * n * inner, 0.2),
            signal(outer * n * inner, 0.5),
        );
        let (sr, si) = (
            signal(outer * 2 * m * inner, 1.1),
            signal(outer * 2 * m * inner, 3.3),
        );
        let (fr, fi) = full.forward(&xr, &xi, inner, 1.0);
        let (br, bi) = full.inverse(&sr, &si, inner, n as f64);
        let lhs = dot(&fr, &sr) + dot(&fi, &si);
        let rhs = dot(&xr, &br) + dot(&xi, &bi);
        assert!((lhs - rhs).abs() < 1e-10 * lhs.abs().max(1.0));
    }
}
