//! The FNO's projection head `out = σ(σ(a)·W₁ + b₁)·W₂ + b₂` as one fused kernel
//! (`σ = gelu`; `a` is the last Fourier layer's pre-activation).
//!
//! It runs over fixed-size row chunks so that only the hidden pre-activation
//! `z₁` (`[rows, fc_dim]`) is kept for the backward pass; everything else is
//! recomputed chunk by chunk. `z₁` is the backbone's largest activation (2 GiB
//! at the Navier–Stokes paper scale, batch 4), so it lives in a buffer the
//! backbone keeps from step to step ([`Pools`]) and goes back there as
//! soon as the backward pass has read it.
//!
//! Parameters, read as four slices wherever they lie and their gradient
//! written packed in this order:
//! `[fc1.weight (c·f), fc1.bias (f), fc2.weight (f·n), fc2.bias (n)]`.

use std::sync::{Arc, Mutex};

use faer::Par;
use rayon::prelude::*;
use tessera_meshes::buffer_pool::{BufferPool, Pooled};

use super::Real;
use super::activation::{gelu_and_slope_into, gelu_into, times};
use super::matmul::{dense, dense_mut, gemm};
use super::pools::Pools;

/// Rows per chunk: large enough for efficient products, small enough to stay in
/// cache-sized buffers.
const CHUNK_ROWS: usize = 512;

/// Most row groups the backward pass sums its parameter gradient over: a
/// fixed number (never the thread count), so the sum is the same on any
/// machine, and one partial gradient per group rather than per chunk (at the
/// Navier–Stokes paper scale, batch 4, 2048 chunks' partials were 0.5 GB).
const GROUPS: usize = 64;

/// The fused head for one forward pass.
pub(crate) struct HeadOp<T: Real> {
    c: usize,
    f: usize,
    n: usize,
    /// Where `z₁` comes from and goes back to (see the module doc).
    hidden_pool: Arc<BufferPool<T>>,
    /// Where the input's gradient comes from.
    scratch: Arc<BufferPool<T>>,
    /// The forward pass's `z₁` until the backward pass has read it.
    hidden: Mutex<Option<Pooled<T>>>,
}

struct Params<'a, T> {
    w1: &'a [T],
    b1: &'a [T],
    w2: &'a [T],
    b2: &'a [T],
}

impl<'a, T> From<[&'a [T]; 4]> for Params<'a, T> {
    fn from([w1, b1, w2, b2]: [&'a [T]; 4]) -> Self {
        Self { w1, b1, w2, b2 }
    }
}

impl<T: Real> HeadOp<T> {
    /// The head `c → f → n`, its hidden activation in a buffer of `hidden`,
    /// its input's gradient in one of `scratch`.
    pub(crate) fn new(c: usize, f: usize, n: usize, hidden: &Pools, scratch: &Pools) -> Self {
        Self {
            c,
            f,
            n,
            hidden_pool: Arc::clone(T::pool(hidden)),
            scratch: Arc::clone(T::pool(scratch)),
            hidden: Mutex::new(None),
        }
    }

    /// Outputs per point.
    pub(crate) fn outputs(&self) -> usize {
        self.n
    }

    /// Sizes of the four parameters, in the order the head reads them.
    pub(crate) fn sizes(&self) -> [usize; 4] {
        [self.c * self.f, self.f, self.f * self.n, self.n]
    }

    /// The head's output for input `a` (pre-activation) and parameters `p`
    /// (of [`HeadOp::sizes`]), keeping `z₁` for the backward pass.
    pub(crate) fn forward(&self, a: &[T], p: [&[T]; 4]) -> Vec<T> {
        let (c, f, n) = (self.c, self.f, self.n);
        let p = Params::from(p);
        let rows = a.len() / c;
        // Every entry is written by the chunks (bias, then the product added).
        let mut z1 = self.hidden_pool.recycled(rows * f);
        let mut out = vec![T::zero(); rows * n];
        z1.par_chunks_mut(CHUNK_ROWS * f)
            .zip(out.par_chunks_mut(CHUNK_ROWS * n))
            .zip(a.par_chunks(CHUNK_ROWS * c))
            .for_each_init(
                || Scratch::for_forward(c, f),
                |scratch, ((z1, out), a)| self.chunk_forward(&p, a, z1, out, scratch),
            );
        *self.lock_hidden() = Some(z1);
        out
    }

    /// [`HeadOp::forward`]'s output, keeping nothing: each chunk's `z₁` lives
    /// only while the chunk is computed (at the Navier–Stokes test resolution
    /// of 256² the whole `z₁` of one sample is 8.6 GB).
    pub(crate) fn infer(&self, a: &[T], p: [&[T]; 4]) -> Vec<T> {
        let (c, f, n) = (self.c, self.f, self.n);
        let p = Params::from(p);
        let rows = a.len() / c;
        let mut out = vec![T::zero(); rows * n];
        out.par_chunks_mut(CHUNK_ROWS * n)
            .zip(a.par_chunks(CHUNK_ROWS * c))
            .for_each_init(
                || (Scratch::for_forward(c, f), field(f)),
                |(scratch, z1), (out, a)| {
                    let z1 = &mut z1[..a.len() / c * f];
                    self.chunk_forward(&p, a, z1, out, scratch);
                },
            );
        out
    }

    /// One chunk of rows: `z₁ = σ(a)·W₁ + b₁` and `out = σ(z₁)·W₂ + b₂`, every
    /// entry of both written.
    fn chunk_forward(
        &self,
        p: &Params<'_, T>,
        a: &[T],
        z1: &mut [T],
        out: &mut [T],
        scratch: &mut Scratch<T>,
    ) {
        let (c, f, n) = (self.c, self.f, self.n);
        let m = a.len() / c;
        let x = &mut scratch.x[..m * c];
        gelu_into(a, x);
        affine(z1, x, p.w1, p.b1, (m, c, f));
        let h = &mut scratch.h[..m * f];
        gelu_into(z1, h);
        affine(out, h, p.w2, p.b2, (m, f, n));
    }

    /// The input's gradient for the output gradient `g`; the parameters'
    /// gradient goes to `gp` if given, packed in their order (overwriting
    /// it).
    ///
    /// Errors: no forward pass before, or a second backward pass after it.
    pub(crate) fn backward(
        &self,
        a: &[T],
        p: [&[T]; 4],
        g: &[T],
        gp: Option<&mut [T]>,
    ) -> candle_core::Result<Pooled<T>> {
        let (c, f, n) = (self.c, self.f, self.n);
        let params = Params::from(p);
        let Some(z1) = self.lock_hidden().take() else {
            candle_core::bail!("fno head: backward needs a fresh forward pass");
        };
        let rows = a.len() / c;
        // Every entry is written by the chunks (a product, then scaled).
        let mut ga = self.scratch.recycled(rows * c);
        let n_grads = gp.as_ref().map_or(0, |gp| gp.len());
        // Per group of chunks: (gW1, gb1, gW2, gb2) summed over its chunks in
        // order, then the groups added in order below.
        let group = rows
            .div_ceil(GROUPS)
            .next_multiple_of(CHUNK_ROWS)
            .max(CHUNK_ROWS);
        let partials: Vec<Vec<T>> = ga
            .par_chunks_mut(group * c)
            .zip(a.par_chunks(group * c))
            .zip(z1.par_chunks(group * f).zip(g.par_chunks(group * n)))
            .map(|((ga, a), (z1, g))| {
                let mut grads = vec![T::zero(); n_grads];
                let mut scratch = Scratch::for_backward(c, f);
                let chunks = (ga.chunks_mut(CHUNK_ROWS * c).zip(a.chunks(CHUNK_ROWS * c)))
                    .zip(z1.chunks(CHUNK_ROWS * f).zip(g.chunks(CHUNK_ROWS * n)));
                for ((ga, a), (z1, g)) in chunks {
                    let grads = (n_grads > 0).then_some(grads.as_mut_slice());
                    self.chunk_backward(&params, [a, z1, g], ga, grads, &mut scratch);
                }
                grads
            })
            .collect();
        if let Some(gp) = gp {
            gp.fill(T::zero());
            for part in partials {
                gp.iter_mut().zip(part).for_each(|(o, v)| *o += v);
            }
        }
        Ok(ga)
    }

    /// One chunk's backward pass from its input `a`, hidden pre-activation
    /// `z1` and output gradient `g`: writes the input's gradient to `ga` and
    /// adds the parameters' to `grads` if given (packed as the parameters).
    fn chunk_backward(
        &self,
        params: &Params<'_, T>,
        [a, z1, g]: [&[T]; 3],
        ga: &mut [T],
        grads: Option<&mut [T]>,
        scratch: &mut Scratch<T>,
    ) {
        let (c, f, n) = (self.c, self.f, self.n);
        let m = a.len() / c;
        let Scratch {
            x,
            x_slopes,
            h,
            h_slopes,
            gz1,
        } = scratch;
        let (x, x_slopes) = (&mut x[..m * c], &mut x_slopes[..m * c]);
        let (h, h_slopes, gz1) = (&mut h[..m * f], &mut h_slopes[..m * f], &mut gz1[..m * f]);
        gelu_and_slope_into(a, x, x_slopes);
        gelu_and_slope_into(z1, h, h_slopes);
        let mut weights = grads.map(|grads| {
            let (gw1, rest) = grads.split_at_mut(c * f);
            let (gb1, rest) = rest.split_at_mut(f);
            let (gw2, gb2) = rest.split_at_mut(f * n);
            [gw1, gb1, gw2, gb2]
        });
        // fc2: gW2 += hᵀ g, gb2 += Σ g, gh = g W2ᵀ.
        if let Some([_, _, gw2, gb2]) = &mut weights {
            gemm(
                dense_mut(gw2, f, n),
                true,
                dense(h, m, f).transpose(),
                dense(g, m, n),
                T::one(),
                Par::Seq,
            );
            add_column_sums(gb2, g);
        }
        gemm(
            dense_mut(gz1, m, f),
            false,
            dense(g, m, n),
            dense(params.w2, f, n).transpose(),
            T::one(),
            Par::Seq,
        );
        times(gz1, h_slopes);
        // fc1: gW1 += xᵀ gz1, gb1 += Σ gz1, gx = gz1 W1ᵀ, ga = gx ⊙ σ'(a).
        if let Some([gw1, gb1, ..]) = &mut weights {
            gemm(
                dense_mut(gw1, c, f),
                true,
                dense(x, m, c).transpose(),
                dense(gz1, m, f),
                T::one(),
                Par::Seq,
            );
            add_column_sums(gb1, gz1);
        }
        gemm(
            dense_mut(ga, m, c),
            false,
            dense(gz1, m, f),
            dense(params.w1, c, f).transpose(),
            T::one(),
            Par::Seq,
        );
        times(ga, x_slopes);
    }

    fn lock_hidden(&self) -> std::sync::MutexGuard<'_, Option<Pooled<T>>> {
        // One optional buffer: a panic elsewhere cannot leave it inconsistent.
        self.hidden.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One task's buffers for a chunk's recomputed fields, sized for
/// [`CHUNK_ROWS`] and reused from chunk to chunk: every entry a chunk reads
/// it has written first, so nothing is zeroed (a fresh zeroed vector per
/// field and chunk was a `memset` of the whole hidden layer per pass).
struct Scratch<T> {
    /// `σ(a)` and `σ'(a)`, `[rows, c]`.
    x: Vec<T>,
    x_slopes: Vec<T>,
    /// `σ(z₁)` and `σ'(z₁)`, `[rows, f]`.
    h: Vec<T>,
    h_slopes: Vec<T>,
    /// The gradient of `z₁`, `[rows, f]`.
    gz1: Vec<T>,
}

impl<T: Real> Scratch<T> {
    /// The buffers of the backward pass.
    fn for_backward(c: usize, f: usize) -> Self {
        Self {
            x_slopes: field(c),
            h_slopes: field(f),
            gz1: field(f),
            ..Self::for_forward(c, f)
        }
    }

    /// Only `x` and `h`, all the forward pass uses.
    fn for_forward(c: usize, f: usize) -> Self {
        Self {
            x: field(c),
            x_slopes: Vec::new(),
            h: field(f),
            h_slopes: Vec::new(),
            gz1: Vec::new(),
        }
    }
}

/// A chunk's field of `width` values per row.
fn field<T: Real>(width: usize) -> Vec<T> {
    vec![T::zero(); CHUNK_ROWS * width]
}

/// `out = x·w + b` for `x: [m, k]`, `w: [k, n]` and the bias `b` on every row.
fn affine<T: Real>(out: &mut [T], x: &[T], w: &[T], b: &[T], (m, k, n): (usize, usize, usize)) {
    out.chunks_exact_mut(n).for_each(|r| r.copy_from_slice(b));
    gemm(
        dense_mut(out, m, n),
        true,
        dense(x, m, k),
        dense(w, k, n),
        T::one(),
        Par::Seq,
    );
}

fn add_column_sums<T: Real>(acc: &mut [T], data: &[T]) {
    for row in data.chunks_exact(acc.len()) {
        acc.iter_mut().zip(row).for_each(|(a, &v)| *a += v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo(n: usize, seed: f64, scale: f64) -> Vec<f64> {
        (0..n)
            .map(|i| scale * ((i as f64 + 1.0) * seed).sin())
            .collect()
    }

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    /// Inference equals the forward pass bit for bit over several chunks and
    /// a ragged last one, its buffers reused from chunk to chunk.
    #[test]
    fn inference_over_many_chunks_is_the_forward_pass() {
        let (c, f, n) = (3, 5, 2);
        let rows = 3 * CHUNK_ROWS + 17;
        let pools = Pools::default();
        let head = HeadOp::<f64>::new(c, f, n, &pools, &pools);
        let params: Vec<Vec<f64>> = (head.sizes().iter().enumerate())
            .map(|(i, &k)| pseudo(k, 0.4 + 0.1 * i as f64, 0.6))
            .collect();
        let p = [&params[0][..], &params[1], &params[2], &params[3]];
        let a = pseudo(rows * c, 0.91, 1.5);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&head.infer(&a, p)), bits(&head.forward(&a, p)));
    }

    /// Over enough rows for several groups of several chunks (and a ragged
    /// last chunk), the gradients of `⟨head(a; p), g⟩` match central
    /// differences along random directions in the parameters and the input.
    #[test]
    fn gradients_over_many_chunks_match_central_differences() {
        let (c, f, n) = (3, 5, 2);
        let rows = GROUPS * CHUNK_ROWS + 3 * CHUNK_ROWS + 17;
        let pools = Pools::default();
        let head = || HeadOp::<f64>::new(c, f, n, &pools, &pools);
        let sizes = head().sizes();
        let params: Vec<Vec<f64>> = (sizes.iter().enumerate())
            .map(|(i, &k)| pseudo(k, 0.3 + 0.1 * i as f64, 0.6))
            .collect();
        let a = pseudo(rows * c, 0.77, 1.5);
        let g = pseudo(rows * n, 1.31, 1.0);
        let loss = |a: &[f64], p: &[Vec<f64>]| {
            let out = head().forward(a, [&p[0], &p[1], &p[2], &p[3]]);
            dot(&out, &g)
        };
        let op = head();
        let p = [&params[0][..], &params[1], &params[2], &params[3]];
        op.forward(&a, p);
        let mut gp = vec![f64::NAN; sizes.iter().sum()];
        let ga = op.backward(&a, p, &g, Some(&mut gp)).unwrap();
        assert!(
            op.backward(&a, p, &g, Some(&mut gp)).is_err(),
            "one backward pass"
        );

        let eps = 1e-5;
        let dp: Vec<Vec<f64>> = (sizes.iter().enumerate())
            .map(|(i, &k)| pseudo(k, 2.1 + 0.2 * i as f64, 1.0))
            .collect();
        let shifted = |s: f64| -> Vec<Vec<f64>> {
            (params.iter().zip(&dp))
                .map(|(p, d)| p.iter().zip(d).map(|(x, y)| x + s * y).collect())
                .collect()
        };
        let fd = (loss(&a, &shifted(eps)) - loss(&a, &shifted(-eps))) / (2.0 * eps);
        let predicted = dot(&gp, &dp.concat());
        assert!(
            (fd - predicted).abs() <= 1e-6 * fd.abs(),
            "{fd} vs {predicted}"
        );

        let da = pseudo(a.len(), 0.53, 1.0);
        let at = |s: f64| -> Vec<f64> { a.iter().zip(&da).map(|(x, y)| x + s * y).collect() };
        let fd = (loss(&at(eps), &params) - loss(&at(-eps), &params)) / (2.0 * eps);
        let predicted = dot(&ga, &da);
        assert!(
            (fd - predicted).abs() <= 1e-6 * fd.abs(),
            "{fd} vs {predicted}"
        );
    }
}
