//! One Fourier layer `z = S(σ(a)) + σ(a)·W + b` as a single fused candle op.
//!
//! Fusing keeps memory flat: the graph holds only each layer's pre-activation
//! `z` (the next layer applies `σ = gelu` on the fly and differentiates it in its
//! own backward pass), plus the small kept spectrum of the layer's input. The
//! reference applies the activation after every Fourier layer, so a layer's
//! input is activated unless it comes straight from the lifting layer.
//!
//! The op's second input packs the layer's parameters
//! `[spectral.re (K·in·out), spectral.im (K·in·out), pointwise.weight (in·out),
//! pointwise.bias (out)]`; the model concatenates the named variables into it so
//! each keeps its own checkpoint key.

use std::borrow::Cow;
use std::sync::OnceLock;

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::Real;
use super::activation::{gelu_vec, times_slope};
use super::matmul::{column_sums, dense, gram, rows_times};
use super::spectral_conv::{SpectralConv, Spectrum, mix, mix_adjoint};
use super::storage::slice;

/// The fused Fourier-layer op for one forward pass (it keeps that pass's input
/// spectrum for the backward pass).
pub(crate) struct FourierLayerOp<T: Real> {
    conv: SpectralConv<T>,
    ci: usize,
    co: usize,
    activate_input: bool,
    saved: OnceLock<Spectrum<T>>,
}

impl<T: Real> FourierLayerOp<T> {
    /// The op for `ci → co` channels with the given transforms.
    pub(crate) fn new(conv: SpectralConv<T>, ci: usize, co: usize, activate_input: bool) -> Self {
        Self {
            conv,
            ci,
            co,
            activate_input,
            saved: OnceLock::new(),
        }
    }

    /// Number of packed parameters.
    pub(crate) fn n_params(&self) -> usize {
        2 * self.conv.kept_modes() * self.ci * self.co + self.ci * self.co + self.co
    }

    /// Splits the packed parameters into (spectral weights, pointwise weight, bias).
    fn unpack<'a>(&self, p: &'a [T]) -> (Spectrum<T>, &'a [T], &'a [T]) {
        let kw = self.conv.kept_modes() * self.ci * self.co;
        let spectral = Spectrum {
            re: p[..kw].to_vec(),
            im: p[kw..2 * kw].to_vec(),
        };
        let weight = &p[2 * kw..2 * kw + self.ci * self.co];
        let bias = &p[2 * kw + self.ci * self.co..];
        (spectral, weight, bias)
    }

    /// `σ(a)` (or `a` itself for the first layer).
    fn input<'a>(&self, a: &'a [T]) -> Cow<'a, [T]> {
        if self.activate_input {
            Cow::Owned(gelu_vec(a))
        } else {
            Cow::Borrowed(a)
        }
    }

    fn forward(&self, a: &[T], p: &[T]) -> Vec<T> {
        let (w, weight, bias) = self.unpack(p);
        let x = self.input(a);
        let spec = self.conv.analyse(&x, self.ci);
        let z_spec = mix(&spec, &w, self.ci, self.co);
        let rows = a.len() / self.ci;
        let mut out = vec![T::zero(); rows * self.co];
        out.par_chunks_mut(self.co)
            .for_each(|row| row.copy_from_slice(bias));
        rows_times(&mut out, true, &x, self.ci, dense(weight, self.ci, self.co));
        self.conv.synthesise(z_spec, self.co, &mut out);
        // A second forward through the same op object cannot happen (one op per call).
        let _ = self.saved.set(spec);
        out
    }

    fn backward(&self, a: &[T], p: &[T], gz: &[T]) -> (Vec<T>, Vec<T>) {
        let (w, weight, _) = self.unpack(p);
        let x = self.input(a);
        let g_bias = column_sums(gz, self.co);
        let g_weight = gram(&x, self.ci, gz, self.co);
        drop(x);
        let mut gx = vec![T::zero(); a.len()];
        rows_times(
            &mut gx,
            false,
            gz,
            self.co,
            dense(weight, self.ci, self.co).transpose(),
        );
        let spec = self.saved.get().expect("backward runs after forward");
        let g_spec = self.conv.synthesise_adjoint(gz, self.co);
        let (g_y, g_w) = mix_adjoint(spec, &w, &g_spec, self.ci, self.co);
        self.conv.analyse_adjoint(g_y, self.ci, &mut gx);
        if self.activate_input {
            times_slope(a, &mut gx);
        }
        let mut gp = g_w.re;
        gp.extend(g_w.im);
        gp.extend(g_weight);
        gp.extend(g_bias);
        (gx, gp)
    }
}

impl<T: Real> CustomOp2 for FourierLayerOp<T> {
    fn name(&self) -> &'static str {
        "fourier-layer"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = l1.dims();
        if dims.last() != Some(&self.ci)
            || dims[1..dims.len() - 1].iter().product::<usize>() != self.conv.points()
        {
            candle_core::bail!(
                "fourier layer: input {dims:?} does not match the grid or {} channels",
                self.ci
            );
        }
        let p = slice::<T>(s2, l2)?;
        if p.len() != self.n_params() {
            candle_core::bail!(
                "fourier layer: {} packed parameters, expected {}",
                p.len(),
                self.n_params()
            );
        }
        let out = self.forward(slice::<T>(s1, l1)?, p);
        let mut shape = dims.to_vec();
        *shape.last_mut().expect("rank ≥ 3") = self.co;
        Ok((T::to_cpu_storage_owned(out), Shape::from(shape)))
    }

    fn bwd(
        &self,
        arg1: &Tensor,
        arg2: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (a, p, g) = (
            arg1.contiguous()?,
            arg2.contiguous()?,
            grad_res.contiguous()?,
        );
        let (sa, la) = a.storage_and_layout();
        let (sp, lp) = p.storage_and_layout();
        let (sg, lg) = g.storage_and_layout();
        let (gx, gp) = match (&*sa, &*sp, &*sg) {
            (
                candle_core::Storage::Cpu(ca),
                candle_core::Storage::Cpu(cp),
                candle_core::Storage::Cpu(cg),
            ) => self.backward(slice(ca, la)?, slice(cp, lp)?, slice(cg, lg)?),
            _ => candle_core::bail!("fourier layer runs on the CPU only"),
        };
        let gx = Tensor::from_vec(gx, a.shape(), a.device())?;
        let gp = Tensor::from_vec(gp, p.shape(), p.device())?;
        Ok((Some(gx), Some(gp)))
    }
}
