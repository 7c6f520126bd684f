//! The spectral convolution's transforms on the device: the same truncated
//! DFT matrices as the CPU's [`crate::backbone::spectrum`], uploaded once, and
//! the same sequence of products ([`crate::backbone::spectral_conv`] documents
//! the layouts), each one batched over the grid lines it applies to.

use tessera_constraints::gpu::GpuError;

use super::executor::{DeviceArray, Executor};
use super::ops::{Ops, View};
use crate::backbone::spectrum::{FullSpectrum, HalfSpectrum};

/// A complex array as two real arrays of one layout.
pub(crate) struct Complex<B> {
    pub(crate) re: B,
    pub(crate) im: B,
}

/// One complex (non-last) axis: its length, kept frequencies and `[k, n]`
/// cosine and sine matrices.
struct FullAxis<B> {
    n: usize,
    k: usize,
    cos: B,
    sin: B,
}

/// The transforms of one grid shape.
pub(crate) struct Transforms<B> {
    full: Vec<FullAxis<B>>,
    n: usize,
    m: usize,
    /// `[2m, n]`: the real DFT's cosine rows, then its (negated) sine rows.
    analysis: B,
    /// `[n, 2m]`: `irfft` of the kept frequencies.
    synthesis: B,
}

/// Which way a complex axis is transformed.
#[derive(Clone, Copy, PartialEq)]
enum Direction {
    /// `[from = n] → [to = k]`: `y = α(C x + S x̄)`-style analysis.
    Forward,
    /// `[k] → [n]`: the transposed matrices, the opposite sign.
    Inverse,
}

impl<B: DeviceArray> Transforms<B> {
    /// Uploads the matrices for a grid of point shape `dims` keeping `modes`
    /// (as [`crate::backbone::spectral_conv::SpectralConv::new`]; the caller
    /// has validated them against the grid).
    pub(crate) fn new<E: Executor<Buffer = B>>(
        exec: &E,
        dims: &[usize],
        modes: &[usize],
    ) -> Result<Self, GpuError> {
        let d = dims.len();
        let full = (0..d - 1)
            .map(|a| {
                let axis = FullSpectrum::<f64>::new(dims[a], modes[a]);
                let (cos, sin) = axis.matrices();
                Ok(FullAxis {
                    n: dims[a],
                    k: axis.kept(),
                    cos: exec.upload(cos)?,
                    sin: exec.upload(sin)?,
                })
            })
            .collect::<Result<_, GpuError>>()?;
        let half = HalfSpectrum::<f64>::new(dims[d - 1], modes[d - 1]);
        let (analysis, synthesis) = half.matrices();
        Ok(Self {
            full,
            n: dims[d - 1],
            m: modes[d - 1],
            analysis: exec.upload(analysis)?,
            synthesis: exec.upload(synthesis)?,
        })
    }

    /// Number of kept modes `K`.
    pub(crate) fn kept_modes(&self) -> usize {
        self.full.iter().map(|a| a.k).product::<usize>() * self.m
    }

    /// The truncated transform along one complex axis of `x: [outer, from,
    /// inner]`, scaled by `alpha`.
    fn along<E: Executor<Buffer = B>>(
        &self,
        ops: &Ops<E>,
        axis: &FullAxis<B>,
        x: &Complex<B>,
        inner: usize,
        direction: Direction,
        alpha: f64,
    ) -> Result<Complex<B>, GpuError> {
        let (from, to, sign) = match direction {
            Direction::Forward => (axis.n, axis.k, 1.0),
            Direction::Inverse => (axis.k, axis.n, -1.0),
        };
        let matrix = match direction {
            Direction::Forward => View::dense(0, axis.k, axis.n),
            Direction::Inverse => View::dense(0, axis.k, axis.n).t(),
        }
        .shared();
        let outer = x.re.len() / (from * inner);
        let (xv, yv) = (View::dense(0, from, inner), View::dense(0, to, inner));
        let exec = ops.exec();
        let mut y = Complex {
            re: exec.zeros(outer * to * inner)?,
            im: exec.zeros(outer * to * inner)?,
        };
        // Forward: Re = α(C·Re + S·Im), Im = α(C·Im − S·Re); inverse: the
        // transposes, with the sine terms' signs swapped.
        let (c, s) = ((&axis.cos, matrix), (&axis.sin, matrix));
        ops.gemm(outer, alpha, c, (&x.re, xv), 0.0, (&mut y.re, yv))?;
        ops.gemm(outer, sign * alpha, s, (&x.im, xv), 1.0, (&mut y.re, yv))?;
        ops.gemm(outer, alpha, c, (&x.im, xv), 0.0, (&mut y.im, yv))?;
        ops.gemm(outer, -sign * alpha, s, (&x.re, xv), 1.0, (&mut y.im, yv))?;
        Ok(y)
    }

    /// The `[batch, K, c]` kept spectrum of `x: [batch, dims…, c]`.
    pub(crate) fn analyse<E: Executor<Buffer = B>>(
        &self,
        ops: &Ops<E>,
        x: &B,
        c: usize,
    ) -> Result<Complex<B>, GpuError> {
        let (n, m) = (self.n, self.m);
        let lines = x.len() / (n * c);
        let exec = ops.exec();
        let mut spec = Complex {
            re: exec.zeros(lines * m * c)?,
            im: exec.zeros(lines * m * c)?,
        };
        let (xv, yv) = (View::dense(0, n, c), View::dense(0, m, c));
        let rows = |offset| (&self.analysis, View::dense(offset, m, n).shared());
        ops.gemm(lines, 1.0, rows(0), (x, xv), 0.0, (&mut spec.re, yv))?;
        ops.gemm(lines, 1.0, rows(m * n), (x, xv), 0.0, (&mut spec.im, yv))?;
        let mut inner = m * c;
        for axis in self.full.iter().rev() {
            spec = self.along(ops, axis, &spec, inner, Direction::Forward, 1.0)?;
            inner *= axis.k;
        }
        Ok(spec)
    }

    /// `out += irfftn(spec)` for `spec: [batch, K, c]`, `out: [batch, dims…, c]`.
    pub(crate) fn synthesise<E: Executor<Buffer = B>>(
        &self,
        ops: &Ops<E>,
        spec: Complex<B>,
        c: usize,
        out: &mut B,
    ) -> Result<(), GpuError> {
        let mut spec = spec;
        let mut inner = self.kept_modes() * c;
        for axis in &self.full {
            inner /= axis.k;
            let alpha = 1.0 / axis.n as f64;
            spec = self.along(ops, axis, &spec, inner, Direction::Inverse, alpha)?;
        }
        self.half_lines(ops, &spec, c, out, false)
    }

    /// The adjoint of [`Transforms::synthesise`]: the `[batch, K, c]` spectrum
    /// of `g: [batch, dims…, c]`.
    pub(crate) fn synthesise_adjoint<E: Executor<Buffer = B>>(
        &self,
        ops: &Ops<E>,
        g: &B,
        c: usize,
    ) -> Result<Complex<B>, GpuError> {
        let (n, m) = (self.n, self.m);
        let lines = g.len() / (n * c);
        let exec = ops.exec();
        let mut spec = Complex {
            re: exec.zeros(lines * m * c)?,
            im: exec.zeros(lines * m * c)?,
        };
        let (gv, yv) = (View::dense(0, n, c), View::dense(0, m, c));
        let cols = |offset| {
            let s = View::dense(offset, n, m).row_stride(2 * m).t().shared();
            (&self.synthesis, s)
        };
        ops.gemm(lines, 1.0, cols(0), (g, gv), 0.0, (&mut spec.re, yv))?;
        ops.gemm(lines, 1.0, cols(m), (g, gv), 0.0, (&mut spec.im, yv))?;
        let mut inner = m * c;
        for axis in self.full.iter().rev() {
            let alpha = 1.0 / axis.n as f64;
            spec = self.along(ops, axis, &spec, inner, Direction::Forward, alpha)?;
            inner *= axis.k;
        }
        Ok(spec)
    }

    /// The adjoint of [`Transforms::analyse`]: `gx += analyseᵀ(g)`.
    pub(crate) fn analyse_adjoint<E: Executor<Buffer = B>>(
        &self,
        ops: &Ops<E>,
        g: Complex<B>,
        c: usize,
        gx: &mut B,
    ) -> Result<(), GpuError> {
        let mut spec = g;
        let mut inner = self.kept_modes() * c;
        for axis in &self.full {
            inner /= axis.k;
            spec = self.along(ops, axis, &spec, inner, Direction::Inverse, 1.0)?;
        }
        self.half_lines(ops, &spec, c, gx, true)
    }

    /// `out += M·(re, im)` along the last axis, line by line, with `M` the
    /// synthesis matrix, or (`transposed_analysis`) the analysis matrix's
    /// transpose.
    fn half_lines<E: Executor<Buffer = B>>(
        &self,
        ops: &Ops<E>,
        spec: &Complex<B>,
        c: usize,
        out: &mut B,
        transposed_analysis: bool,
    ) -> Result<(), GpuError> {
        let (n, m) = (self.n, self.m);
        let lines = out.len() / (n * c);
        let (sv, ov) = (View::dense(0, m, c), View::dense(0, n, c));
        let matrix = |part: usize| {
            if transposed_analysis {
                (&self.analysis, View::dense(part * m * n, m, n).t().shared())
            } else {
                let s = View::dense(part * m, n, m).row_stride(2 * m).shared();
                (&self.synthesis, s)
            }
        };
        ops.gemm(lines, 1.0, matrix(0), (&spec.re, sv), 1.0, (&mut *out, ov))?;
        ops.gemm(lines, 1.0, matrix(1), (&spec.im, sv), 1.0, (out, ov))
    }
}

/// Where one layer's spectral weights `[K, ci, co]` sit in a buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Weights {
    pub(crate) re: usize,
    pub(crate) im: usize,
    pub(crate) k: usize,
    pub(crate) ci: usize,
    pub(crate) co: usize,
}

impl Weights {
    /// Mode κ's `ci × co` matrix of the part at `offset`, one per mode.
    fn matrix(&self, offset: usize) -> View {
        View::dense(offset, self.ci, self.co)
    }

    /// Mode κ's `batch × c` block of a `[batch, K, c]` spectrum, one per mode.
    fn spectrum(&self, batch: usize, c: usize) -> View {
        View::dense(0, batch, c)
            .row_stride(self.k * c)
            .batch_stride(c)
    }
}

/// The complex channel mixing `Z_κ = Y_κ W_κ` for `y: [batch, K, ci]`.
pub(crate) fn mix<E: Executor>(
    ops: &Ops<E>,
    y: &Complex<E::Buffer>,
    params: &E::Buffer,
    w: Weights,
) -> Result<Complex<E::Buffer>, GpuError> {
    let batch = y.re.len() / (w.k * w.ci);
    let (yv, zv) = (w.spectrum(batch, w.ci), w.spectrum(batch, w.co));
    let (wr, wi) = ((params, w.matrix(w.re)), (params, w.matrix(w.im)));
    let exec = ops.exec();
    let mut z = Complex {
        re: exec.zeros(batch * w.k * w.co)?,
        im: exec.zeros(batch * w.k * w.co)?,
    };
    // Re Z = Yr Wr − Yi Wi, Im Z = Yr Wi + Yi Wr.
    ops.gemm(w.k, 1.0, (&y.re, yv), wr, 0.0, (&mut z.re, zv))?;
    ops.gemm(w.k, -1.0, (&y.im, yv), wi, 1.0, (&mut z.re, zv))?;
    ops.gemm(w.k, 1.0, (&y.re, yv), wi, 0.0, (&mut z.im, zv))?;
    ops.gemm(w.k, 1.0, (&y.im, yv), wr, 1.0, (&mut z.im, zv))?;
    Ok(z)
}

/// The adjoint of [`mix`]: returns `∂L/∂Y` and writes `∂L/∂W` into `grads`
/// at `gw`'s offsets.
pub(crate) fn mix_adjoint<E: Executor>(
    ops: &Ops<E>,
    y: &Complex<E::Buffer>,
    params: &E::Buffer,
    w: Weights,
    gz: &Complex<E::Buffer>,
    grads: &mut E::Buffer,
    gw: Weights,
) -> Result<Complex<E::Buffer>, GpuError> {
    let batch = y.re.len() / (w.k * w.ci);
    let (yv, zv) = (w.spectrum(batch, w.ci), w.spectrum(batch, w.co));
    let (wr, wi) = ((params, w.matrix(w.re).t()), (params, w.matrix(w.im).t()));
    let exec = ops.exec();
    let mut gy = Complex {
        re: exec.zeros(batch * w.k * w.ci)?,
        im: exec.zeros(batch * w.k * w.ci)?,
    };
    // ∂Yr = Gr Wrᵀ + Gi Wiᵀ, ∂Yi = Gi Wrᵀ − Gr Wiᵀ.
    ops.gemm(w.k, 1.0, (&gz.re, zv), wr, 0.0, (&mut gy.re, yv))?;
    ops.gemm(w.k, 1.0, (&gz.im, zv), wi, 1.0, (&mut gy.re, yv))?;
    ops.gemm(w.k, 1.0, (&gz.im, zv), wr, 0.0, (&mut gy.im, yv))?;
    ops.gemm(w.k, -1.0, (&gz.re, zv), wi, 1.0, (&mut gy.im, yv))?;
    // ∂Wr = Yrᵀ Gr + Yiᵀ Gi, ∂Wi = Yrᵀ Gi − Yiᵀ Gr.
    let (yr, yi) = ((&y.re, yv.t()), (&y.im, yv.t()));
    let (dwr, dwi) = (gw.matrix(gw.re), gw.matrix(gw.im));
    ops.gemm(w.k, 1.0, yr, (&gz.re, zv), 0.0, (&mut *grads, dwr))?;
    ops.gemm(w.k, 1.0, yi, (&gz.im, zv), 1.0, (&mut *grads, dwr))?;
    ops.gemm(w.k, 1.0, yr, (&gz.im, zv), 0.0, (&mut *grads, dwi))?;
    ops.gemm(w.k, -1.0, yi, (&gz.re, zv), 1.0, (&mut *grads, dwi))?;
    Ok(gy)
}
