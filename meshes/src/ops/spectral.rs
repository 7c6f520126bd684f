//! Spectral operators on periodic axes: `D = F⁻¹ · diag(m) · F`, a Fourier
//! multiplier `m(k)` over one or more periodic axes, for every channel at once.
//!
//! Derivatives of any order (`m = (i k_a)^p`) and mixed ones
//! (`m = (i k_x)(i k_y)`, [`FourierMultiplier::partial`]), the Laplacian
//! (`m = −|k|²`), its inverse, and any caller-given multiplier — e.g. velocity
//! from vorticity on the periodic unit square, `u = ∂_y ψ`, `v = −∂_x ψ` with
//! `Δψ = −w`, i.e. `û = i k_y ŵ / |k|²` and `v̂ = −i k_x ŵ / |k|²`:
//!
//! ```
//! use rustfft::num_complex::Complex64;
//! use tessera_meshes::{FourierMultiplier, Grid, LinearOperator};
//!
//! let grid = Grid::uniform_txy(3, 16, 16, 1.0)?;
//! let velocity = |component: usize, sign: f64| {
//!     FourierMultiplier::new(&grid, &[1, 2], move |k: &[f64]| {
//!         let k2 = k[0] * k[0] + k[1] * k[1];
//!         // The mean flow is not determined by the vorticity: map it to zero.
//!         if k2 == 0.0 { Complex64::new(0.0, 0.0) } else { Complex64::new(0.0, sign * k[component] / k2) }
//!     })
//! };
//! let (u_of_w, v_of_w) = (velocity(1, 1.0)?, velocity(0, -1.0)?);
//! let w = vec![0.0; grid.len()];
//! assert_eq!(u_of_w.apply_to_vec(&w, 1), w);
//! # let _ = v_of_w;
//! # Ok::<(), tessera_meshes::MeshError>(())
//! ```
//!
//! **Wavenumbers.** Along a periodic axis of `n` points and period `L` the mode
//! `j` has `k = 2π m / L` with `m = j` for `j ≤ (n−1)/2` and `m = j − n` above
//! (numpy's `fftfreq` order; for even `n` the Nyquist mode has `m = −n/2`).
//!
//! **Real fields stay real.** A multiplier maps real fields to real fields only if
//! `m(−k) = conj m(k)`. Every multiplier is therefore replaced by its part that
//! does, `½(m(k) + conj m(−k))` — which is exactly what `Re F⁻¹ m F` computes, and
//! leaves derivatives, Laplacians and other physical multipliers unchanged except on
//! the Nyquist modes of even-length axes. There `−k ≡ k`, so an odd multiplier such
//! as `i k` (an odd-order derivative) becomes zero: the Nyquist mode `(−1)^j` has
//! no resolvable slope, and zeroing it is what keeps the operator real and its
//! adjoint exact (the adjoint of `F⁻¹ m F` is `F⁻¹ conj(m) F`, a real operator
//! only when `m` has this symmetry). Even derivatives keep their Nyquist modes.
//!
//! **Zero mode.** The inverse Laplacian maps the zero mode (the mean over the
//! spectral axes) to zero: it returns the zero-mean solution of `Δψ = f − mean f`.
//!
//! **Channels.** Because the symmetrised multiplier maps real to real, two real
//! channels `a`, `b` are transformed together as one complex field `a + i b` and
//! separated afterwards (`D(a + i b) = Da + i Db`), halving the FFT work. FFT plans
//! are made once at construction; an application is sequential, because callers
//! already parallelise across samples and experts.

use std::f64::consts::PI;
use std::sync::Arc;

use rustfft::num_complex::Complex64;
use rustfft::{Fft, FftPlanner};

use crate::ops::{LinearOperator, check_field_lengths, check_point_rows};
use crate::{Grid, MeshError, Shape};

/// How many lines along a strided axis are gathered into one contiguous batch for
/// the FFT: enough to amortise the call, small enough to stay in cache.
const LINE_BATCH: usize = 16;

/// How many grid points [`pack`] and [`unpack`] transpose at a time.
const TRANSPOSE_BLOCK: usize = 64;

/// The forward and inverse FFT plans of one axis length.
type PlanPair = (Arc<dyn Fft<f64>>, Arc<dyn Fft<f64>>);

/// A Fourier multiplier over a set of periodic axes (see the module docs).
#[derive(Clone)]
pub struct FourierMultiplier {
    shape: Shape,
    axes: Vec<usize>,
    /// The symmetrised multiplier, times the inverse-FFT normalisation `1/Π n_a`, at
    /// every point of one block `dims[axes[0]..]` (the part of the field an FFT over
    /// the spectral axes touches), so applying it is one contiguous pass.
    block: Vec<Complex64>,
    /// `conj(block)`: the adjoint's multiplier.
    adjoint: Vec<Complex64>,
    /// Forward and inverse plans, one per spectral axis.
    plans: Vec<PlanPair>,
    scratch_len: usize,
    /// Values of the batch buffer for lines along strided axes: none when
    /// every spectral axis is the contiguous last one (a 1-D line, whose
    /// transform, called once per GMRES iteration, would otherwise clear
    /// `LINE_BATCH` lines it never reads).
    lines_len: usize,
}

impl std::fmt::Debug for FourierMultiplier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FourierMultiplier")
            .field("shape", &self.shape)
            .field("axes", &self.axes)
            .finish_non_exhaustive()
    }
}

impl FourierMultiplier {
    /// The multiplier `multiplier(k)` over the periodic `axes` of `grid` (strictly
    /// increasing). `k` holds the angular wavenumbers along `axes`, in that order;
    /// the multiplier must be finite everywhere, the zero mode included.
    ///
    /// Errors: no axes, axes out of range, not increasing or not periodic, or a
    /// non-finite multiplier value.
    pub fn new(
        grid: &Grid,
        axes: &[usize],
        multiplier: impl Fn(&[f64]) -> Complex64,
    ) -> Result<Self, MeshError> {
        check_axes(grid, axes)?;
        let shape = grid.shape().clone();
        let dims = shape.dims();
        let wavenumbers: Vec<Vec<f64>> = axes
            .iter()
            .map(|&a| wavenumbers(dims[a], grid.axis(a).length()))
            .collect();
        let modes = Shape::new(&axes.iter().map(|&a| dims[a]).collect::<Vec<_>>());
        let raw = evaluate(&modes, &wavenumbers, multiplier)?;
        let normalisation = 1.0 / modes.len() as f64;
        let symmetric: Vec<Complex64> = (0..modes.len())
            .map(|j| {
                let mirror = modes.flat(&mirror_index(&modes, j));
                0.5 * (raw[j] + raw[mirror].conj()) * normalisation
            })
            .collect();
        // Spread over the block dims[first..]: the points between spectral axes
        // (if any) repeat the multiplier.
        let first = axes[0];
        let block_shape = Shape::new(&dims[first..]);
        let block: Vec<Complex64> = (0..block_shape.len())
            .map(|p| {
                let index = block_shape.unflat(p);
                let mode: Vec<usize> = axes.iter().map(|&a| index[a - first]).collect();
                symmetric[modes.flat(&mode)]
            })
            .collect();
        let adjoint = block.iter().map(Complex64::conj).collect();
        let mut planner = FftPlanner::new();
        let plans: Vec<_> = axes
            .iter()
            .map(|&a| {
                (
                    planner.plan_fft_forward(dims[a]),
                    planner.plan_fft_inverse(dims[a]),
                )
            })
            .collect();
        let scratch_len = plans
            .iter()
            .map(|(f, i)| f.get_inplace_scratch_len().max(i.get_inplace_scratch_len()))
            .max()
            .unwrap_or(0);
        let lines_len = axes
            .iter()
            .map(|&a| match shape.around_axis(a) {
                (_, _, 1) => 0,
                (_, n, inner) => LINE_BATCH.min(inner) * n,
            })
            .max()
            .unwrap_or(0);
        Ok(Self {
            shape,
            axes: axes.to_vec(),
            block,
            adjoint,
            plans,
            scratch_len,
            lines_len,
        })
    }

    /// The `order`-th derivative along the periodic `axis`: `m = (i k)^order`
    /// (Nyquist mode zeroed for odd orders, see the module docs).
    ///
    /// Errors: as [`FourierMultiplier::new`].
    pub fn derivative(grid: &Grid, axis: usize, order: u32) -> Result<Self, MeshError> {
        Self::partial(grid, &[(axis, order)])
    }

    /// The partial derivative `Π_a ∂_a^{p_a}` for `(axis, p_a)` pairs with
    /// strictly increasing axes, e.g. `[(1, 1), (2, 1)]` for `∂x∂y`:
    /// `m = Π_a (i k_a)^{p_a}`, set to zero on the Nyquist modes of every
    /// axis with an odd order, as the product of the one-axis derivatives is:
    /// symmetrising (module docs) zeroes those modes for one odd axis, but
    /// keeps the mode at the Nyquist wavenumber of two, where
    /// `(i k_x)(i k_y)` is real, though the mode `(−1)^{i+j}` has no
    /// resolvable slope along either axis.
    ///
    /// Errors: as [`FourierMultiplier::new`], or an order too large.
    pub fn partial(grid: &Grid, orders: &[(usize, u32)]) -> Result<Self, MeshError> {
        let total: u32 = orders.iter().map(|&(_, p)| p % 4).sum();
        let i_pow = [
            Complex64::new(1.0, 0.0),
            Complex64::new(0.0, 1.0),
            Complex64::new(-1.0, 0.0),
            Complex64::new(0.0, -1.0),
        ][(total % 4) as usize];
        let exponents = orders
            .iter()
            .map(|&(_, p)| {
                i32::try_from(p).map_err(|_| MeshError::InvalidValue {
                    what: "derivative order",
                    value: f64::from(p),
                    reason: "too large",
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let axes: Vec<usize> = orders.iter().map(|&(a, _)| a).collect();
        check_axes(grid, &axes)?;
        let dims = grid.shape().dims();
        let nyquist: Vec<Option<f64>> = orders
            .iter()
            .map(|&(a, p)| {
                let n = dims[a];
                (p % 2 == 1 && n.is_multiple_of(2))
                    .then(|| wavenumbers(n, grid.axis(a).length())[n / 2])
            })
            .collect();
        Self::new(grid, &axes, |k| {
            if k.iter().zip(&nyquist).any(|(&k, &n)| Some(k) == n) {
                return Complex64::new(0.0, 0.0);
            }
            let power: f64 = k.iter().zip(&exponents).map(|(k, &p)| k.powi(p)).product();
            i_pow * power
        })
    }

    /// The Laplacian `Σ ∂²` over all periodic axes of `grid`: `m = −|k|²`.
    ///
    /// Errors: the grid has no periodic axis.
    pub fn laplacian(grid: &Grid) -> Result<Self, MeshError> {
        Self::new(grid, &periodic_axes(grid)?, |k| {
            Complex64::new(-squared_norm(k), 0.0)
        })
    }

    /// The inverse Laplacian over all periodic axes: `m = −1/|k|²`, and `0` on the
    /// zero mode, so it returns the zero-mean solution of `Δψ = f − mean f`.
    ///
    /// Errors: the grid has no periodic axis.
    pub fn inverse_laplacian(grid: &Grid) -> Result<Self, MeshError> {
        Self::new(grid, &periodic_axes(grid)?, |k| {
            let k2 = squared_norm(k);
            Complex64::new(if k2 == 0.0 { 0.0 } else { -1.0 / k2 }, 0.0)
        })
    }

    /// The spectral axes, increasing.
    pub fn axes(&self) -> &[usize] {
        &self.axes
    }

    /// `out = F⁻¹ · diag(m or conj m) · F · input`, two channels per complex FFT.
    fn run(&self, input: &[f64], channels: usize, out: &mut [f64], adjoint: bool) {
        check_field_lengths(&self.shape, input, channels, out);
        if channels == 0 {
            return;
        }
        let mut workspace = self.workspace(channels);
        let block_values = self.block.len() * channels;
        for (src, dst) in input
            .chunks_exact(block_values)
            .zip(out.chunks_exact_mut(block_values))
        {
            self.transform_block(src, channels, adjoint, &mut workspace, dst);
        }
    }

    /// The buffers one block's transform needs, for `channels` channels.
    fn workspace(&self, channels: usize) -> Workspace {
        let zero = Complex64::new(0.0, 0.0);
        Workspace {
            work: vec![zero; channels.div_ceil(2) * self.block.len()],
            lines: vec![zero; self.lines_len],
            scratch: vec![zero; self.scratch_len],
        }
    }

    /// `dst = F⁻¹ · diag(m or conj m) · F · src` for one block (the
    /// `block.len()` points an FFT over the spectral axes touches).
    fn transform_block(
        &self,
        src: &[f64],
        channels: usize,
        adjoint: bool,
        workspace: &mut Workspace,
        dst: &mut [f64],
    ) {
        let block_points = self.block.len();
        let Workspace {
            work,
            lines,
            scratch,
        } = workspace;
        pack(src, channels, block_points, work);
        for (axis, (forward, _)) in self.axes.iter().zip(&self.plans) {
            self.transform(forward.as_ref(), *axis, work, lines, scratch);
        }
        let multiplier = if adjoint { &self.adjoint } else { &self.block };
        for pair in work.chunks_exact_mut(block_points) {
            pair.iter_mut().zip(multiplier).for_each(|(w, m)| *w *= m);
        }
        for (axis, (_, inverse)) in self.axes.iter().zip(&self.plans) {
            self.transform(inverse.as_ref(), *axis, work, lines, scratch);
        }
        unpack(work, channels, block_points, dst);
    }

    /// One 1-D FFT along `axis` for every line of every channel pair in `work`
    /// (laid out `[pair, dims[axes[0]..]]`). Lines along the last axis are
    /// contiguous and transformed in place; others are gathered in batches.
    fn transform(
        &self,
        fft: &dyn Fft<f64>,
        axis: usize,
        work: &mut [Complex64],
        lines: &mut [Complex64],
        scratch: &mut [Complex64],
    ) {
        let (_, n, inner) = self.shape.around_axis(axis);
        if inner == 1 {
            fft.process_with_scratch(work, scratch);
            return;
        }
        for panel in work.chunks_exact_mut(n * inner) {
            for start in (0..inner).step_by(LINE_BATCH) {
                let batch = LINE_BATCH.min(inner - start);
                let lines = &mut lines[..batch * n];
                for i in 0..n {
                    let row = &panel[i * inner + start..][..batch];
                    for (b, &v) in row.iter().enumerate() {
                        lines[b * n + i] = v;
                    }
                }
                fft.process_with_scratch(lines, scratch);
                for i in 0..n {
                    let row = &mut panel[i * inner + start..][..batch];
                    for (b, v) in row.iter_mut().enumerate() {
                        *v = lines[b * n + i];
                    }
                }
            }
        }
    }
}

impl LinearOperator for FourierMultiplier {
    fn shape(&self) -> &Shape {
        &self.shape
    }

    #[track_caller]
    fn apply(&self, input: &[f64], channels: usize, out: &mut [f64]) {
        self.run(input, channels, out, false);
    }

    #[track_caller]
    fn apply_adjoint(&self, input: &[f64], channels: usize, out: &mut [f64]) {
        self.run(input, channels, out, true);
    }

    /// The rows at `points`, one block at a time: each block holding a
    /// requested point is transformed alone and only those rows are kept, so
    /// the memory is one block's (`dims[axes[0]..]` points), not a whole output
    /// field, and blocks without a point are skipped. Why: a mixture of
    /// experts reads the velocity of a fine evaluation grid at its sampled
    /// points only, and the whole field is `N` channels of the grid (2 GiB at
    /// 256² × 64 with 64 channels). The same arithmetic as
    /// [`LinearOperator::apply`], block for block.
    #[track_caller]
    fn apply_at(
        &self,
        input: &[f64],
        channels: usize,
        points: &[usize],
        out: &mut [f64],
        stride: usize,
    ) {
        check_point_rows(&self.shape, input, channels, points, out, stride);
        if channels == 0 || points.is_empty() {
            return;
        }
        let block_points = self.block.len();
        let block_values = block_points * channels;
        // Sorted by point, the requests come grouped by block.
        let mut order: Vec<usize> = (0..points.len()).collect();
        order.sort_unstable_by_key(|&i| points[i]);
        let mut workspace = self.workspace(channels);
        let mut values = vec![0.0; block_values];
        for group in order.chunk_by(|&a, &b| points[a] / block_points == points[b] / block_points) {
            let block = points[group[0]] / block_points;
            let src = &input[block * block_values..][..block_values];
            self.transform_block(src, channels, false, &mut workspace, &mut values);
            for &i in group {
                let q = points[i] - block * block_points;
                out[i * stride..][..channels].copy_from_slice(&values[q * channels..][..channels]);
            }
        }
    }
}

/// The buffers of one block's transform, reused from block to block: the
/// channel pairs as complex fields, a batch of gathered FFT lines, and the FFT's
/// scratch.
struct Workspace {
    work: Vec<Complex64>,
    lines: Vec<Complex64>,
    scratch: Vec<Complex64>,
}

fn check_axes(grid: &Grid, axes: &[usize]) -> Result<(), MeshError> {
    if axes.is_empty() {
        return Err(MeshError::TooSmall {
            what: "number of spectral axes",
            min: 1,
            got: 0,
        });
    }
    if axes.windows(2).any(|w| w[0] >= w[1]) {
        return Err(MeshError::UnorderedAxes {
            axes: axes.to_vec(),
        });
    }
    for &axis in axes {
        if axis >= grid.ndim() {
            return Err(MeshError::AxisOutOfRange {
                axis,
                ndim: grid.ndim(),
            });
        }
        if !grid.axis(axis).is_periodic() {
            return Err(MeshError::Periodicity {
                axis,
                reason: "spectral operators need a periodic axis",
            });
        }
    }
    Ok(())
}

fn periodic_axes(grid: &Grid) -> Result<Vec<usize>, MeshError> {
    let axes: Vec<usize> = (0..grid.ndim())
        .filter(|&a| grid.axis(a).is_periodic())
        .collect();
    if axes.is_empty() {
        return Err(MeshError::TooSmall {
            what: "number of periodic grid axes",
            min: 1,
            got: 0,
        });
    }
    Ok(axes)
}

fn squared_norm(k: &[f64]) -> f64 {
    k.iter().map(|k| k * k).sum()
}

/// Angular wavenumbers `2π m / L` of the `n` FFT modes, in FFT order.
fn wavenumbers(n: usize, period: f64) -> Vec<f64> {
    (0..n)
        .map(|j| {
            let m = if j <= (n - 1) / 2 {
                j as f64
            } else {
                j as f64 - n as f64
            };
            2.0 * PI * m / period
        })
        .collect()
}

/// The multi-index of the mode `−k` for the mode at flat index `j`.
fn mirror_index(modes: &Shape, j: usize) -> Vec<usize> {
    modes
        .unflat(j)
        .iter()
        .zip(modes.dims())
        .map(|(&i, &n)| (n - i) % n)
        .collect()
}

fn evaluate(
    modes: &Shape,
    wavenumbers: &[Vec<f64>],
    multiplier: impl Fn(&[f64]) -> Complex64,
) -> Result<Vec<Complex64>, MeshError> {
    let mut k = vec![0.0; modes.ndim()];
    (0..modes.len())
        .map(|j| {
            for (a, i) in modes.unflat(j).into_iter().enumerate() {
                k[a] = wavenumbers[a][i];
            }
            let m = multiplier(&k);
            for value in [m.re, m.im] {
                if !value.is_finite() {
                    return Err(MeshError::InvalidValue {
                        what: "Fourier multiplier",
                        value,
                        reason: "must be finite at every wave vector, the zero mode included",
                    });
                }
            }
            Ok(m)
        })
        .collect()
}

/// `work[q, p] = field[p, 2q] + i · field[p, 2q + 1]` (imaginary part zero for the
/// last, unpaired channel of an odd count). A transpose from channel-fastest to
/// channel-slowest, done in blocks of points so reads stay in cache while each
/// channel pair is written contiguously.
fn pack(field: &[f64], channels: usize, block_points: usize, work: &mut [Complex64]) {
    for start in (0..block_points).step_by(TRANSPOSE_BLOCK) {
        let end = block_points.min(start + TRANSPOSE_BLOCK);
        let points = &field[start * channels..end * channels];
        for (q, pair) in work.chunks_exact_mut(block_points).enumerate() {
            let (re, im) = (2 * q, 2 * q + 1);
            let dst = &mut pair[start..end];
            if im < channels {
                for (d, v) in dst.iter_mut().zip(points.chunks_exact(channels)) {
                    *d = Complex64::new(v[re], v[im]);
                }
            } else {
                for (d, v) in dst.iter_mut().zip(points.chunks_exact(channels)) {
                    *d = Complex64::new(v[re], 0.0);
                }
            }
        }
    }
}

/// The inverse of [`pack`].
fn unpack(work: &[Complex64], channels: usize, block_points: usize, field: &mut [f64]) {
    for start in (0..block_points).step_by(TRANSPOSE_BLOCK) {
        let end = block_points.min(start + TRANSPOSE_BLOCK);
        let points = &mut field[start * channels..end * channels];
        for (q, pair) in work.chunks_exact(block_points).enumerate() {
            let (re, im) = (2 * q, 2 * q + 1);
            let src = &pair[start..end];
            if im < channels {
                for (s, v) in src.iter().zip(points.chunks_exact_mut(channels)) {
                    v[re] = s.re;
                    v[im] = s.im;
                }
            } else {
                for (s, v) in src.iter().zip(points.chunks_exact_mut(channels)) {
                    v[re] = s.re;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wavenumbers_follow_fftfreq_order() {
        let two_pi = 2.0 * PI;
        let even: Vec<f64> = wavenumbers(4, 2.0)
            .iter()
            .map(|k| k * 2.0 / two_pi)
            .collect();
        assert_eq!(even, vec![0.0, 1.0, -2.0, -1.0]);
        let odd: Vec<f64> = wavenumbers(5, 1.0).iter().map(|k| k / two_pi).collect();
        assert_eq!(odd, vec![0.0, 1.0, 2.0, -2.0, -1.0]);
    }

    #[test]
    fn pack_and_unpack_round_trip_for_odd_and_even_channel_counts() {
        for channels in [1usize, 2, 3, 6] {
            let points = 5;
            let field: Vec<f64> = (0..points * channels)
                .map(|k| k as f64 * 1.5 - 3.0)
                .collect();
            let mut work = vec![Complex64::new(0.0, 0.0); channels.div_ceil(2) * points];
            pack(&field, channels, points, &mut work);
            let mut back = vec![f64::NAN; field.len()];
            unpack(&work, channels, points, &mut back);
            assert_eq!(back, field);
        }
    }

    #[test]
    fn bad_input_gives_typed_errors() {
        let grid = Grid::uniform_txy(3, 4, 4, 1.0).unwrap();
        let one = |_: &[f64]| Complex64::new(1.0, 0.0);
        assert!(matches!(
            FourierMultiplier::new(&grid, &[], one),
            Err(MeshError::TooSmall { .. })
        ));
        assert_eq!(
            FourierMultiplier::new(&grid, &[2, 1], one).err(),
            Some(MeshError::UnorderedAxes { axes: vec![2, 1] })
        );
        assert_eq!(
            FourierMultiplier::new(&grid, &[1, 3], one).err(),
            Some(MeshError::AxisOutOfRange { axis: 3, ndim: 3 })
        );
        assert!(matches!(
            FourierMultiplier::derivative(&grid, 0, 1),
            Err(MeshError::Periodicity { axis: 0, .. })
        ));
        let unguarded = |k: &[f64]| Complex64::new(1.0 / squared_norm(k), 0.0);
        assert!(matches!(
            FourierMultiplier::new(&grid, &[1, 2], unguarded),
            Err(MeshError::InvalidValue { .. })
        ));
        let bounded = Grid::uniform_tx(3, 4, 1.0).unwrap();
        assert!(matches!(
            FourierMultiplier::laplacian(&bounded),
            Err(MeshError::TooSmall { .. })
        ));
    }
}
