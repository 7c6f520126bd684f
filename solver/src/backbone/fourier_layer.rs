//! One Fourier layer `z = S(σ(a)) + σ(a)·W + b` as a single fused kernel
//! (chained with the others by [`super::network_op`]).
//!
//! Fusing keeps memory flat: the graph holds only each layer's pre-activation
//! `z` (the next layer applies `σ = gelu` on the fly and differentiates it in its
//! own backward pass), plus the small kept spectrum of the layer's input. The
//! reference applies the activation after every Fourier layer, so a layer's
//! input is activated unless it comes straight from the lifting layer.
//!
//! Its fields (the activated input, the output, the activation's slopes and
//! the input's gradient) come from the backbone's pool of buffers
//! ([`super::pools`]), so they are only written, never first zeroed.
//!
//! The layer reads its parameters as four slices
//! `[spectral.re (K·in·out), spectral.im (K·in·out), pointwise.weight (in·out),
//! pointwise.bias (out)]`, wherever they lie (the named variables or a packed
//! vector), and writes their gradient packed in that order.

use std::sync::{Arc, OnceLock};

use rayon::prelude::*;
use tessera_meshes::buffer_pool::{BufferPool, Pooled};

use super::Real;
use super::activation::{gelu_and_slope_into, gelu_in_place, gelu_into, times};
use super::matmul::{column_sums, dense, gram, rows_times};
use super::pools::Pools;
use super::spectral_conv::{SpectralConv, Spectrum, SpectrumRef, mix, mix_adjoint};

/// The fused Fourier-layer op for one forward pass (it keeps that pass's input
/// spectrum for the backward pass).
pub(crate) struct FourierLayerOp<T: Real> {
    conv: SpectralConv<T>,
    ci: usize,
    co: usize,
    activate_input: bool,
    saved: OnceLock<Spectrum<T>>,
    /// Where the layer's fields come from (see the module doc).
    scratch: Arc<BufferPool<T>>,
}

impl<T: Real> FourierLayerOp<T> {
    /// The op for `ci → co` channels with the given transforms, its fields
    /// in buffers of `scratch`.
    pub(crate) fn new(
        conv: SpectralConv<T>,
        ci: usize,
        co: usize,
        activate_input: bool,
        scratch: &Pools,
    ) -> Self {
        Self {
            conv,
            ci,
            co,
            activate_input,
            saved: OnceLock::new(),
            scratch: Arc::clone(T::pool(scratch)),
        }
    }

    /// Sizes of the four parameters, in the order the layer reads them.
    pub(crate) fn sizes(&self) -> [usize; 4] {
        let kw = self.conv.kept_modes() * self.ci * self.co;
        [kw, kw, self.ci * self.co, self.co]
    }

    /// The layer's output for input `a` (pre-activation) and parameters `p`
    /// (of [`FourierLayerOp::sizes`]).
    pub(crate) fn forward(&self, a: &[T], p: [&[T]; 4]) -> Pooled<T> {
        let activated = self.activate_input.then(|| {
            let mut x = self.scratch.recycled(a.len());
            gelu_into(a, &mut x);
            x
        });
        let x = activated.as_deref().unwrap_or(a);
        let mut out = self.scratch.recycled(x.len() / self.ci * self.co);
        let spec = self.apply(x, p, &mut out);
        // A second forward through the same op object cannot happen (one op per call).
        let _ = self.saved.set(spec);
        out
    }

    /// [`FourierLayerOp::forward`]'s output into `out` (resized; its old
    /// values are overwritten), keeping nothing for a backward pass and
    /// activating `a` in place: an inference pass ping-pongs between two
    /// buffers instead of taking two fresh fields per layer, whose pages the
    /// kernel would fault in and zero each time (at the Navier–Stokes test
    /// resolution of 256², 2 GiB each).
    pub(crate) fn infer_into(&self, a: &mut [T], p: [&[T]; 4], out: &mut Vec<T>) {
        if self.activate_input {
            gelu_in_place(a);
        }
        out.resize(a.len() / self.ci * self.co, T::zero());
        self.apply(a, p, out);
    }

    /// `out = S(x) + x·W + b` for the activated input `x` (every entry of
    /// `out`, `[rows, co]`, overwritten); returns `x`'s spectrum.
    fn apply(&self, x: &[T], p: [&[T]; 4], out: &mut [T]) -> Spectrum<T> {
        let [re, im, weight, bias] = p;
        let w = SpectrumRef { re, im };
        let spec = self.conv.analyse(x, self.ci);
        let z_spec = mix(&spec, w, self.ci, self.co);
        out.par_chunks_mut(self.co)
            .for_each(|row| row.copy_from_slice(bias));
        rows_times(out, true, x, self.ci, dense(weight, self.ci, self.co));
        self.conv.synthesise(z_spec, self.co, out);
        spec
    }

    /// The input's gradient for the output gradient `gz`; the parameters'
    /// gradient goes to `gp` if given, packed in their order (overwriting
    /// it), so the network writes each layer's straight where it lies in its
    /// own.
    pub(crate) fn backward(
        &self,
        a: &[T],
        p: [&[T]; 4],
        gz: &[T],
        gp: Option<&mut [T]>,
    ) -> Pooled<T> {
        let [re, im, weight, _] = p;
        let w = SpectrumRef { re, im };
        let (activated, slopes) = if self.activate_input {
            let (mut x, mut slopes) = (
                self.scratch.recycled(a.len()),
                self.scratch.recycled(a.len()),
            );
            gelu_and_slope_into(a, &mut x, &mut slopes);
            (Some(x), Some(slopes))
        } else {
            (None, None)
        };
        let x = activated.as_deref().unwrap_or(a);
        let [kw, ..] = self.sizes();
        let spectral_bar = gp.map(|gp| {
            let (g_re, rest) = gp.split_at_mut(kw);
            let (g_im, rest) = rest.split_at_mut(kw);
            let (g_weight, g_bias) = rest.split_at_mut(self.ci * self.co);
            g_bias.copy_from_slice(&column_sums(gz, self.co));
            g_weight.copy_from_slice(&gram(x, self.ci, gz, self.co));
            [g_re, g_im]
        });
        drop(activated);
        // Overwritten by the product, then the spectral part added.
        let mut gx = self.scratch.recycled(a.len());
        rows_times(
            &mut gx,
            false,
            gz,
            self.co,
            dense(weight, self.ci, self.co).transpose(),
        );
        let spec = self.saved.get().expect("backward runs after forward");
        let g_spec = self.conv.synthesise_adjoint(gz, self.co);
        let g_y = mix_adjoint(spec, w, &g_spec, (self.ci, self.co), spectral_bar);
        self.conv.analyse_adjoint(g_y, self.ci, &mut gx);
        if let Some(slopes) = slopes {
            times(&mut gx, &slopes);
        }
        gx
    }
}
