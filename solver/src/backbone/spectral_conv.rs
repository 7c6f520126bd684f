//! The FNO's spectral convolution `S(x) = irfftn(W ⊙ rfftn(x)|_kept)` on a
//! channels-last field `[batch, s_0, …, s_{d−1}, channels]`, as truncated-DFT
//! matrix products (see [`super::spectrum`]) and a complex channel mixing per
//! kept mode.
//!
//! Transform order: the real DFT along the last axis row by row, then the
//! complex DFT along each earlier axis (last to first). The kept spectrum is
//! `[batch, k_0, …, k_{d−2}, m_{d−1}, channels]` with `k_a = 2·m_a`; the mode
//! index `κ` flattens `(k_0, …, m_{d−1})` row-major, and the weights are
//! `W_κ ∈ ℂ^{in × out}` stored as two real arrays `[K, in, out]`.

use faer::Par;
use rayon::prelude::*;

use super::Real;
use super::matmul::{gemm, view, view_mut};
use super::spectrum::{FullSpectrum, HalfSpectrum};

/// A complex field stored as real and imaginary parts of equal layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Spectrum<T> {
    /// Real parts.
    pub re: Vec<T>,
    /// Imaginary parts.
    pub im: Vec<T>,
}

/// A complex field borrowed as real and imaginary parts: a layer's spectral
/// weights read where they lie in the packed parameters (a Navier–Stokes
/// layer's are 134 MB, copied twice per step before).
#[derive(Debug, Clone, Copy)]
pub struct SpectrumRef<'a, T> {
    /// Real parts.
    pub re: &'a [T],
    /// Imaginary parts.
    pub im: &'a [T],
}

#[cfg(test)]
impl<T> Spectrum<T> {
    /// The field borrowed.
    pub fn view(&self) -> SpectrumRef<'_, T> {
        SpectrumRef {
            re: &self.re,
            im: &self.im,
        }
    }
}

/// The transforms of one spectral convolution on one grid shape.
#[derive(Debug, Clone)]
pub struct SpectralConv<T> {
    dims: Vec<usize>,
    /// One transform per non-last axis.
    full: Vec<FullSpectrum<T>>,
    /// The last axis.
    half: HalfSpectrum<T>,
}

impl<T: Real> SpectralConv<T> {
    /// The transforms for a grid of point shape `dims` keeping `modes[a]`
    /// frequencies on axis `a` (per side on non-last axes).
    ///
    /// # Panics
    /// If `dims` and `modes` differ in length, or a mode count is out of range
    /// for its axis (see [`FullSpectrum::new`], [`HalfSpectrum::new`]); the
    /// backbone validates user configs before building these.
    #[track_caller]
    pub fn new(dims: &[usize], modes: &[usize]) -> Self {
        assert_eq!(dims.len(), modes.len(), "one mode count per axis");
        let d = dims.len();
        let full = (0..d - 1)
            .map(|a| FullSpectrum::new(dims[a], modes[a]))
            .collect();
        let half = HalfSpectrum::new(dims[d - 1], modes[d - 1]);
        Self {
            dims: dims.to_vec(),
            full,
            half,
        }
    }

    /// Number of kept modes `K` (the leading dimension of the weights).
    pub fn kept_modes(&self) -> usize {
        self.full.iter().map(FullSpectrum::kept).product::<usize>() * self.half.modes()
    }

    /// Points per sample.
    #[cfg(test)]
    pub fn points(&self) -> usize {
        self.dims.iter().product()
    }

    /// The kept spectrum of `x: [batch, dims…, c]`, laid out `[batch, K, c]`.
    pub fn analyse(&self, x: &[T], c: usize) -> Spectrum<T> {
        let (n, m) = (self.half.len(), self.half.modes());
        let rows = x.len() / (n * c);
        let mut re = vec![T::zero(); rows * m * c];
        let mut im = vec![T::zero(); rows * m * c];
        re.par_chunks_mut(m * c)
            .zip(im.par_chunks_mut(m * c))
            .zip(x.par_chunks(n * c))
            .for_each(|((r, i), x)| self.half.analyse(x, c, r, i));
        let mut spec = Spectrum { re, im };
        let mut inner = m * c;
        for (a, full) in self.full.iter().enumerate().rev() {
            let (r, i) = full.forward(&spec.re, &spec.im, inner, T::one());
            spec = Spectrum { re: r, im: i };
            inner *= full.kept();
            debug_assert_eq!(self.dims[a], full.len());
        }
        spec
    }

    /// The adjoint of [`SpectralConv::analyse`]: `gx += analyseᵀ(g)` for
    /// `gx: [batch, dims…, c]`.
    pub fn analyse_adjoint(&self, g: Spectrum<T>, c: usize, gx: &mut [T]) {
        let (n, m) = (self.half.len(), self.half.modes());
        let mut spec = g;
        // Undo the complex axes first to last, each expanding kept → n.
        let mut inner = self.kept_modes() * c;
        for full in &self.full {
            inner /= full.kept();
            let (r, i) = full.inverse(&spec.re, &spec.im, inner, T::from_f64(full.len() as f64));
            spec = Spectrum { re: r, im: i };
        }
        gx.par_chunks_mut(n * c)
            .zip(spec.re.par_chunks(m * c).zip(spec.im.par_chunks(m * c)))
            .for_each(|(gx, (r, i))| self.half.analyse_adjoint(r, i, c, gx));
    }

    /// `out += irfftn(spec)` with `spec: [batch, K, c]` and
    /// `out: [batch, dims…, c]` (the inverse of the truncated transform).
    pub fn synthesise(&self, spec: Spectrum<T>, c: usize, out: &mut [T]) {
        let (n, m) = (self.half.len(), self.half.modes());
        let mut spec = spec;
        let mut inner = self.kept_modes() * c;
        for full in &self.full {
            inner /= full.kept();
            let (r, i) = full.inverse(&spec.re, &spec.im, inner, T::one());
            spec = Spectrum { re: r, im: i };
        }
        out.par_chunks_mut(n * c)
            .zip(spec.re.par_chunks(m * c).zip(spec.im.par_chunks(m * c)))
            .for_each(|(o, (r, i))| self.half.synthesise(r, i, c, o, true));
    }

    /// The adjoint of [`SpectralConv::synthesise`]: the `[batch, K, c]` spectrum
    /// `synthesiseᵀ(g)` of `g: [batch, dims…, c]`.
    pub fn synthesise_adjoint(&self, g: &[T], c: usize) -> Spectrum<T> {
        let (n, m) = (self.half.len(), self.half.modes());
        let rows = g.len() / (n * c);
        let mut re = vec![T::zero(); rows * m * c];
        let mut im = vec![T::zero(); rows * m * c];
        re.par_chunks_mut(m * c)
            .zip(im.par_chunks_mut(m * c))
            .zip(g.par_chunks(n * c))
            .for_each(|((r, i), g)| self.half.synthesise_adjoint(g, c, r, i));
        let mut spec = Spectrum { re, im };
        let mut inner = m * c;
        for full in self.full.iter().rev() {
            let scale = T::one() / T::from_f64(full.len() as f64);
            let (r, i) = full.forward(&spec.re, &spec.im, inner, scale);
            spec = Spectrum { re: r, im: i };
            inner *= full.kept();
        }
        spec
    }
}

/// The complex channel mixing `Z_κ = Y_κ W_κ` per kept mode, for
/// `y: [batch, K, ci]` and weights `[K, ci, co]` (real and imaginary parts).
pub fn mix<T: Real>(y: &Spectrum<T>, w: SpectrumRef<'_, T>, ci: usize, co: usize) -> Spectrum<T> {
    let k = w.re.len() / (ci * co);
    let batch = y.re.len() / (k * ci);
    let mut z = Spectrum {
        re: vec![T::zero(); batch * k * co],
        im: vec![T::zero(); batch * k * co],
    };
    for kappa in 0..k {
        let yr = view(&y.re[kappa * ci..], batch, ci, k * ci);
        let yi = view(&y.im[kappa * ci..], batch, ci, k * ci);
        let wr = view(&w.re[kappa * ci * co..], ci, co, co);
        let wi = view(&w.im[kappa * ci * co..], ci, co, co);
        let one = T::one();
        // Re Z = Yr Wr − Yi Wi, Im Z = Yr Wi + Yi Wr.
        let mut zr = view_mut(&mut z.re[kappa * co..], batch, co, k * co);
        gemm(zr.as_mut(), false, yr, wr, one, Par::Seq);
        gemm(zr, true, yi, wi, -one, Par::Seq);
        let mut zi = view_mut(&mut z.im[kappa * co..], batch, co, k * co);
        gemm(zi.as_mut(), false, yr, wi, one, Par::Seq);
        gemm(zi, true, yi, wr, one, Par::Seq);
    }
    z
}

/// The adjoint of [`mix`]: given `gz = ∂L/∂Z`, returns `∂L/∂Y` and, if `gw`
/// is given, writes `∂L/∂W` into it (overwriting it; laid out as the
/// weights), in parallel over the kept modes (each mode's block of `gw` is
/// its own).
pub fn mix_adjoint<T: Real>(
    y: &Spectrum<T>,
    w: SpectrumRef<'_, T>,
    gz: &Spectrum<T>,
    (ci, co): (usize, usize),
    gw: Option<[&mut [T]; 2]>,
) -> Spectrum<T> {
    let k = w.re.len() / (ci * co);
    let batch = y.re.len() / (k * ci);
    let mut gy = Spectrum {
        re: vec![T::zero(); batch * k * ci],
        im: vec![T::zero(); batch * k * ci],
    };
    let one = T::one();
    for kappa in 0..k {
        let wr = view(&w.re[kappa * ci * co..], ci, co, co);
        let wi = view(&w.im[kappa * ci * co..], ci, co, co);
        let gr = view(&gz.re[kappa * co..], batch, co, k * co);
        let gi = view(&gz.im[kappa * co..], batch, co, k * co);
        // ∂Yr = Gr Wrᵀ + Gi Wiᵀ, ∂Yi = −Gr Wiᵀ + Gi Wrᵀ.
        let mut dyr = view_mut(&mut gy.re[kappa * ci..], batch, ci, k * ci);
        gemm(dyr.as_mut(), false, gr, wr.transpose(), one, Par::Seq);
        gemm(dyr, true, gi, wi.transpose(), one, Par::Seq);
        let mut dyi = view_mut(&mut gy.im[kappa * ci..], batch, ci, k * ci);
        gemm(dyi.as_mut(), false, gi, wr.transpose(), one, Par::Seq);
        gemm(dyi, true, gr, wi.transpose(), -one, Par::Seq);
    }
    let Some([gw_re, gw_im]) = gw else {
        return gy;
    };
    gw_re
        .par_chunks_mut(ci * co)
        .zip(gw_im.par_chunks_mut(ci * co))
        .enumerate()
        .for_each(|(kappa, (dwr, dwi))| {
            let yr = view(&y.re[kappa * ci..], batch, ci, k * ci);
            let yi = view(&y.im[kappa * ci..], batch, ci, k * ci);
            let gr = view(&gz.re[kappa * co..], batch, co, k * co);
            let gi = view(&gz.im[kappa * co..], batch, co, k * co);
            // ∂Wr = Yrᵀ Gr + Yiᵀ Gi, ∂Wi = Yrᵀ Gi − Yiᵀ Gr.
            let mut dwr = view_mut(dwr, ci, co, co);
            gemm(dwr.as_mut(), false, yr.transpose(), gr, one, Par::Seq);
            gemm(dwr, true, yi.transpose(), gi, one, Par::Seq);
            let mut dwi = view_mut(dwi, ci, co, co);
            gemm(dwi.as_mut(), false, yr.transpose(), gi, one, Par::Seq);
            gemm(dwi, true, yi.transpose(), gr, -one, Par::Seq);
        });
    gy
}

#[cfg(test)]
mod tests {
    use std::f64::consts::TAU;

    use super::*;

    fn pseudo(n: usize, seed: f64) -> Vec<f64> {
        (0..n)
            .map(|i| ((i as f64 + 1.0) * seed).sin() + 0.3 * ((i as f64) * seed * 0.37).cos())
            .collect()
    }

    /// Kept frequencies of axis `a`: `0..m` and `−m..0` on non-last axes, `0..m`
    /// on the last one — in the order of the mode index.
    fn kept(dims: &[usize], modes: &[usize], a: usize) -> Vec<i64> {
        let m = modes[a] as i64;
        if a + 1 == dims.len() {
            (0..m).collect()
        } else {
            (0..m).chain(-m..0).collect()
        }
    }

    fn multi_indices(dims: &[usize]) -> Vec<Vec<usize>> {
        let total: usize = dims.iter().product();
        (0..total)
            .map(|mut f| {
                let mut idx = vec![0; dims.len()];
                for a in (0..dims.len()).rev() {
                    idx[a] = f % dims[a];
                    f /= dims[a];
                }
                idx
            })
            .collect()
    }

    /// The spectral convolution computed the slow way: a direct d-dimensional
    /// DFT at each kept frequency, complex mixing, and the `irfftn` sum
    /// `y = (1/Π n) Σ_κ c_κ Re(Z_κ e^{+iφ})` with the real-axis weight `c` (1 for
    /// the zero and Nyquist frequencies, 2 otherwise).
    fn direct(
        dims: &[usize],
        modes: &[usize],
        x: &[f64],
        w: &Spectrum<f64>,
        ci: usize,
        co: usize,
    ) -> Vec<f64> {
        let points = multi_indices(dims);
        let freq_axes: Vec<Vec<i64>> = (0..dims.len()).map(|a| kept(dims, modes, a)).collect();
        let freq_dims: Vec<usize> = freq_axes.iter().map(Vec::len).collect();
        let freqs = multi_indices(&freq_dims);
        let batch = x.len() / (points.len() * ci);
        let total: f64 = dims.iter().product::<usize>() as f64;
        let last = dims.len() - 1;
        let mut y = vec![0.0; batch * points.len() * co];
        for b in 0..batch {
            for (kappa, fidx) in freqs.iter().enumerate() {
                let f: Vec<i64> = fidx
                    .iter()
                    .enumerate()
                    .map(|(a, &j)| freq_axes[a][j])
                    .collect();
                let phase = |p: &[usize]| -> f64 {
                    (0..dims.len())
                        .map(|a| TAU * (f[a] * p[a] as i64) as f64 / dims[a] as f64)
                        .sum()
                };
                // X_i = Σ_p x_i(p) e^{−iφ(p)}
                let mut xs = vec![(0.0, 0.0); ci];
                for (pi, p) in points.iter().enumerate() {
                    let (s, c) = phase(p).sin_cos();
                    for i in 0..ci {
                        let v = x[(b * points.len() + pi) * ci + i];
                        xs[i].0 += v * c;
                        xs[i].1 -= v * s;
                    }
                }
                let n_last = dims[last] as i64;
                let weight = if f[last] == 0 || 2 * f[last] == n_last {
                    1.0
                } else {
                    2.0
                };
                for o in 0..co {
                    let (mut zr, mut zi) = (0.0, 0.0);
                    for (i, &(xr, xi)) in xs.iter().enumerate() {
                        let wr = w.re[(kappa * ci + i) * co + o];
                        let wi = w.im[(kappa * ci + i) * co + o];
                        zr += xr * wr - xi * wi;
                        zi += xr * wi + xi * wr;
                    }
                    for (pi, p) in points.iter().enumerate() {
                        let (s, c) = phase(p).sin_cos();
                        y[(b * points.len() + pi) * co + o] += weight * (zr * c - zi * s) / total;
                    }
                }
            }
        }
        y
    }

    fn check_against_direct(dims: &[usize], modes: &[usize], batch: usize, ci: usize, co: usize) {
        let conv = SpectralConv::<f64>::new(dims, modes);
        let k = conv.kept_modes();
        let x = pseudo(batch * conv.points() * ci, 0.77);
        let w = Spectrum {
            re: pseudo(k * ci * co, 1.31),
            im: pseudo(k * ci * co, 0.53),
        };
        let mut y = vec![0.0; batch * conv.points() * co];
        conv.synthesise(mix(&conv.analyse(&x, ci), w.view(), ci, co), co, &mut y);
        let expected = direct(dims, modes, &x, &w, ci, co);
        let scale = expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let n = conv.points() as f64;
        for (a, b) in y.iter().zip(&expected) {
            assert!(
                (a - b).abs() <= 1e-13 * n * scale,
                "{a} vs {b} (dims {dims:?})"
            );
        }
    }

    /// Why a trained FNO runs on a finer grid: the forward transform sums
    /// over the points and the inverse divides by their count, so a field
    /// band-limited below the spatial modes has the same kept spectrum (up to
    /// that count) on either grid, and the layer's output on the finer grid,
    /// taken at the coarse points, is the coarse output.
    #[test]
    fn refinement_keeps_the_output_of_band_limited_fields() {
        let (ci, co, modes) = (2, 3, [2, 3, 3]);
        // Frequencies |k| ≤ 3 in x and y: resolved on 8 points (Nyquist 4).
        let field = |t: usize, x: f64, y: f64, c: usize| {
            let (t, c) = (t as f64, c as f64);
            (TAU * (x + 2.0 * y) + 0.3 * t + c).cos()
                + (0.5 + 0.1 * c) * (TAU * (3.0 * x - y) - 0.7 * t).sin()
                + 0.2 * t * (TAU * 3.0 * y + c).cos()
        };
        let sample = |dims: &[usize]| -> Vec<f64> {
            multi_indices(dims)
                .iter()
                .flat_map(|p| {
                    let (x, y) = (p[1] as f64 / dims[1] as f64, p[2] as f64 / dims[2] as f64);
                    (0..ci).map(move |c| field(p[0], x, y, c))
                })
                .collect()
        };
        let output = |dims: &[usize]| -> Vec<f64> {
            let conv = SpectralConv::<f64>::new(dims, &modes);
            let k = conv.kept_modes();
            let w = Spectrum {
                re: pseudo(k * ci * co, 1.31),
                im: pseudo(k * ci * co, 0.53),
            };
            let mut y = vec![0.0; conv.points() * co];
            conv.synthesise(
                mix(&conv.analyse(&sample(dims), ci), w.view(), ci, co),
                co,
                &mut y,
            );
            y
        };
        let (coarse, fine) = ([4, 8, 8], [4, 16, 24]);
        let (yc, yf) = (output(&coarse), output(&fine));
        let scale = yc.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(scale > 0.1, "the test field reaches the kept modes");
        for (pi, p) in multi_indices(&coarse).iter().enumerate() {
            let q = (p[0] * fine[1] + 2 * p[1]) * fine[2] + 3 * p[2];
            for o in 0..co {
                let (a, b) = (yc[pi * co + o], yf[q * co + o]);
                assert!((a - b).abs() <= 1e-12 * scale, "{p:?}/{o}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn spectral_conv_2d_matches_direct_dft() {
        check_against_direct(&[7, 10], &[2, 3], 2, 3, 2);
        // All real-axis modes incl. Nyquist, odd and even lengths.
        check_against_direct(&[6, 8], &[3, 5], 1, 2, 2);
    }

    #[test]
    fn spectral_conv_3d_matches_direct_dft() {
        check_against_direct(&[5, 6, 7], &[2, 2, 3], 2, 2, 3);
    }

    /// ⟨S x, g⟩ = ⟨x, Sᵀ g⟩ through analysis, mixing and synthesis, and the weight
    /// gradient of ⟨S x, g⟩ equals the directional derivative along a weight
    /// perturbation (S is linear in W, so the difference quotient is exact up to
    /// rounding).
    #[test]
    fn adjoint_and_weight_gradient() {
        let dims = [6, 8, 5];
        let modes = [2, 3, 2];
        let (batch, ci, co) = (2, 3, 2);
        let conv = SpectralConv::<f64>::new(&dims, &modes);
        let k = conv.kept_modes();
        let x = pseudo(batch * conv.points() * ci, 0.41);
        let g = pseudo(batch * conv.points() * co, 0.93);
        let w = Spectrum {
            re: pseudo(k * ci * co, 1.7),
            im: pseudo(k * ci * co, 0.29),
        };
        let apply = |w: &Spectrum<f64>| {
            let mut y = vec![0.0; batch * conv.points() * co];
            conv.synthesise(mix(&conv.analyse(&x, ci), w.view(), ci, co), co, &mut y);
            y
        };
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f64>();
        let y = apply(&w);
        let gz = conv.synthesise_adjoint(&g, co);
        let spec_x = conv.analyse(&x, ci);
        // A buffer that held other values: the adjoint overwrites it.
        let mut gw = Spectrum {
            re: vec![f64::NAN; k * ci * co],
            im: vec![7.0; k * ci * co],
        };
        let gy = mix_adjoint(
            &spec_x,
            w.view(),
            &gz,
            (ci, co),
            Some([&mut gw.re, &mut gw.im]),
        );
        let mut gx = vec![0.0; x.len()];
        conv.analyse_adjoint(gy, ci, &mut gx);
        let lhs = dot(&y, &g);
        assert!((lhs - dot(&x, &gx)).abs() <= 1e-11 * lhs.abs().max(1.0));

        let dw = Spectrum {
            re: pseudo(k * ci * co, 2.3),
            im: pseudo(k * ci * co, 0.71),
        };
        let w2 = Spectrum {
            re: w.re.iter().zip(&dw.re).map(|(a, b)| a + b).collect(),
            im: w.im.iter().zip(&dw.im).map(|(a, b)| a + b).collect(),
        };
        let directional = dot(&apply(&w2), &g) - lhs;
        let predicted = dot(&gw.re, &dw.re) + dot(&gw.im, &dw.im);
        assert!((directional - predicted).abs() <= 1e-10 * predicted.abs().max(1.0));
    }
}
