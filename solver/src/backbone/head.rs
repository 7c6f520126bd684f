//! The FNO's projection head `out = σ(σ(a)·W₁ + b₁)·W₂ + b₂` as one fused kernel
//! (`σ = gelu`; `a` is the last Fourier layer's pre-activation).
//!
//! It runs over fixed-size row chunks so that only the hidden pre-activation
//! `z₁` (`[rows, fc_dim]`) is kept for the backward pass; everything else is
//! recomputed chunk by chunk. Parameters, read as four slices wherever they
//! lie and their gradient written packed in this order:
//! `[fc1.weight (c·f), fc1.bias (f), fc2.weight (f·n), fc2.bias (n)]`.

use std::sync::OnceLock;

use faer::Par;
use rayon::prelude::*;

use super::Real;
use super::activation::{gelu_and_slope, gelu_into, times};
use super::matmul::{dense, dense_mut, gemm};

/// Rows per chunk: large enough for efficient products, small enough to stay in
/// cache-sized buffers.
const CHUNK_ROWS: usize = 512;

/// The fused head for one forward pass.
pub(crate) struct HeadOp<T: Real> {
    c: usize,
    f: usize,
    n: usize,
    hidden: OnceLock<Vec<T>>,
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
    /// The head `c → f → n`.
    pub(crate) fn new(c: usize, f: usize, n: usize) -> Self {
        Self {
            c,
            f,
            n,
            hidden: OnceLock::new(),
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
    /// (of [`HeadOp::sizes`]).
    pub(crate) fn forward(&self, a: &[T], p: [&[T]; 4]) -> Vec<T> {
        let (c, f, n) = (self.c, self.f, self.n);
        let p = Params::from(p);
        let rows = a.len() / c;
        let mut z1 = vec![T::zero(); rows * f];
        let mut out = vec![T::zero(); rows * n];
        z1.par_chunks_mut(CHUNK_ROWS * f)
            .zip(out.par_chunks_mut(CHUNK_ROWS * n))
            .zip(a.par_chunks(CHUNK_ROWS * c))
            .for_each(|((z1, out), a)| {
                let m = a.len() / c;
                let mut x = vec![T::zero(); a.len()];
                gelu_into(a, &mut x);
                broadcast_rows(z1, p.b1);
                gemm(
                    dense_mut(z1, m, f),
                    true,
                    dense(&x, m, c),
                    dense(p.w1, c, f),
                    T::one(),
                    Par::Seq,
                );
                let mut h = vec![T::zero(); z1.len()];
                gelu_into(z1, &mut h);
                broadcast_rows(out, p.b2);
                gemm(
                    dense_mut(out, m, n),
                    true,
                    dense(&h, m, f),
                    dense(p.w2, f, n),
                    T::one(),
                    Par::Seq,
                );
            });
        let _ = self.hidden.set(z1);
        out
    }

    /// The input's gradient for the output gradient `g`; the parameters'
    /// gradient goes to `gp`, packed in their order (overwriting it).
    pub(crate) fn backward(&self, a: &[T], p: [&[T]; 4], g: &[T], gp: &mut [T]) -> Vec<T> {
        let (c, f, n) = (self.c, self.f, self.n);
        let params = Params::from(p);
        let z1 = self.hidden.get().expect("backward runs after forward");
        let rows = a.len() / c;
        let mut ga = vec![T::zero(); rows * c];
        let n_grads = gp.len();
        // Per chunk: (gW1, gb1, gW2, gb2) partial sums, added in chunk order below.
        let partials: Vec<Vec<T>> = ga
            .par_chunks_mut(CHUNK_ROWS * c)
            .zip(a.par_chunks(CHUNK_ROWS * c))
            .zip(
                z1.par_chunks(CHUNK_ROWS * f)
                    .zip(g.par_chunks(CHUNK_ROWS * n)),
            )
            .map(|((ga, a), (z1, g))| {
                let m = a.len() / c;
                let (x, x_slopes) = gelu_and_slope(a);
                let (h, h_slopes) = gelu_and_slope(z1);
                let mut grads = vec![T::zero(); n_grads];
                let (gw1, rest) = grads.split_at_mut(c * f);
                let (gb1, rest) = rest.split_at_mut(f);
                let (gw2, gb2) = rest.split_at_mut(f * n);
                // fc2: gW2 = hᵀ g, gb2 = Σ g, gh = g W2ᵀ.
                gemm(
                    dense_mut(gw2, f, n),
                    false,
                    dense(&h, m, f).transpose(),
                    dense(g, m, n),
                    T::one(),
                    Par::Seq,
                );
                add_column_sums(gb2, g);
                let mut gz1 = vec![T::zero(); m * f];
                gemm(
                    dense_mut(&mut gz1, m, f),
                    false,
                    dense(g, m, n),
                    dense(params.w2, f, n).transpose(),
                    T::one(),
                    Par::Seq,
                );
                times(&mut gz1, &h_slopes);
                // fc1: gW1 = xᵀ gz1, gb1 = Σ gz1, gx = gz1 W1ᵀ, ga = gx ⊙ σ'(a).
                gemm(
                    dense_mut(gw1, c, f),
                    false,
                    dense(&x, m, c).transpose(),
                    dense(&gz1, m, f),
                    T::one(),
                    Par::Seq,
                );
                add_column_sums(gb1, &gz1);
                gemm(
                    dense_mut(ga, m, c),
                    false,
                    dense(&gz1, m, f),
                    dense(params.w1, c, f).transpose(),
                    T::one(),
                    Par::Seq,
                );
                times(ga, &x_slopes);
                grads
            })
            .collect();
        gp.fill(T::zero());
        for part in partials {
            gp.iter_mut().zip(part).for_each(|(o, v)| *o += v);
        }
        ga
    }
}

fn broadcast_rows<T: Real>(out: &mut [T], row: &[T]) {
    out.chunks_exact_mut(row.len())
        .for_each(|r| r.copy_from_slice(row));
}

fn add_column_sums<T: Real>(acc: &mut [T], data: &[T]) {
    for row in data.chunks_exact(acc.len()) {
        acc.iter_mut().zip(row).for_each(|(a, &v)| *a += v);
    }
}
