//! The whole FNO on a device: forward and backward passes through the same
//! layers, in the same packed parameter order, as the CPU's
//! [`crate::backbone::Fno`] (lift, Fourier layers, head, optional final
//! activation), with every array kept on the device between kernels.

use tessera_constraints::gpu::GpuError;

use super::executor::{DeviceArray, Executor};
use super::ops::{Ops, View};
use super::spectral::{Complex, Transforms, Weights, mix, mix_adjoint};
use crate::backbone::FnoConfig;

/// Where a Fourier layer's parameters sit in the packed vector:
/// `[spectral.re, spectral.im, pointwise.weight, pointwise.bias]`.
#[derive(Debug, Clone, Copy)]
struct LayerAt {
    spectral: Weights,
    weight: usize,
    bias: usize,
}

/// Offsets of every parameter in the packed vector (the CPU's order).
#[derive(Debug, Clone)]
struct Packing {
    lift_weight: usize,
    lift_bias: usize,
    layers: Vec<LayerAt>,
    /// `fc1.weight, fc1.bias, fc2.weight, fc2.bias`.
    head: [usize; 4],
    total: usize,
}

impl Packing {
    fn new(config: &FnoConfig) -> Self {
        let w = &config.widths;
        let k = config.kept_modes();
        let mut at = 0;
        let mut take = |len: usize| {
            let start = at;
            at += len;
            start
        };
        let lift_weight = take(config.in_features * w[0]);
        let lift_bias = take(w[0]);
        let layers = w
            .windows(2)
            .map(|pair| {
                let (ci, co) = (pair[0], pair[1]);
                let re = take(k * ci * co);
                let im = take(k * ci * co);
                LayerAt {
                    spectral: Weights { re, im, k, ci, co },
                    weight: take(ci * co),
                    bias: take(co),
                }
            })
            .collect();
        let (c, f, n) = (*w.last().unwrap_or(&0), config.fc_dim, config.out_dim);
        let head = [take(c * f), take(f), take(f * n), take(n)];
        Self {
            lift_weight,
            lift_bias,
            layers,
            head,
            total: at,
        }
    }
}

/// What one forward pass keeps on the device for its backward pass
/// ([`DeviceFno::backward`] consumes it, so each pass is differentiated once).
pub struct ForwardPass<B> {
    /// The network that made it ([`DeviceFno`]'s `id`).
    network: u64,
    rows: usize,
    /// Each Fourier layer's input (a pre-activation), then the head's.
    inputs: Vec<B>,
    /// Each Fourier layer's kept input spectrum.
    spectra: Vec<Complex<B>>,
    /// The head's hidden pre-activation.
    hidden: B,
    /// The output before the final activation, when there is one.
    pre_output: Option<B>,
}

/// The FNO on one executor, for one grid shape.
pub struct DeviceFno<E: Executor> {
    /// Unique per network in this process, so that a pass is differentiated
    /// by the network that made it.
    id: u64,
    exec: E,
    config: FnoConfig,
    points: usize,
    packing: Packing,
    transforms: Transforms<E::Buffer>,
}

impl<E: Executor> DeviceFno<E> {
    /// The network `config` on a grid of point shape `grid` (`[nt, nx, (ny)]`),
    /// its transform matrices uploaded to `exec`.
    ///
    /// Errors: a config or grid the CPU backbone would refuse (as its
    /// message), or a device failure.
    pub fn new(exec: E, config: &FnoConfig, grid: &[usize]) -> Result<Self, GpuError> {
        config
            .validate()
            .and_then(|()| config.check_grid(grid))
            .map_err(|e| GpuError::Unsupported(e.to_string()))?;
        let transforms = Transforms::new(&exec, grid, &config.modes)?;
        static NETWORKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Ok(Self {
            id: NETWORKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            exec,
            config: config.clone(),
            points: grid.iter().product(),
            packing: Packing::new(config),
            transforms,
        })
    }

    /// The executor.
    pub fn executor(&self) -> &E {
        &self.exec
    }

    /// Number of packed parameters (the CPU backbone's count and order).
    pub fn n_params(&self) -> usize {
        self.packing.total
    }

    /// Grid rows (`batch · points`) of a features array, checked.
    fn rows(&self, features: &E::Buffer) -> Result<usize, GpuError> {
        let per_sample = self.points * self.config.in_features;
        if features.is_empty() || features.len() % per_sample != 0 {
            return Err(GpuError::Unsupported(format!(
                "{} feature values for samples of {} points × {} features",
                features.len(),
                self.points,
                self.config.in_features
            )));
        }
        Ok(features.len() / self.config.in_features)
    }

    fn check_params(&self, params: &E::Buffer) -> Result<(), GpuError> {
        if params.len() == self.packing.total {
            Ok(())
        } else {
            Err(GpuError::Unsupported(format!(
                "{} packed parameters, expected {}",
                params.len(),
                self.packing.total
            )))
        }
    }

    /// The `N` outputs per point, `[batch, grid…, N]`, for `features:
    /// [batch, grid…, in_features]` and the packed `params`, and what the
    /// backward pass through them needs.
    #[allow(clippy::type_complexity)]
    pub fn forward(
        &self,
        features: &E::Buffer,
        params: &E::Buffer,
    ) -> Result<(E::Buffer, ForwardPass<E::Buffer>), GpuError> {
        let rows = self.rows(features)?;
        self.check_params(params)?;
        let ops = Ops::new(&self.exec);
        let (f, w) = (self.config.in_features, &self.config.widths);
        let p = &self.packing;
        let mut h = ops.rows_of((params, p.lift_bias), rows, w[0])?;
        let lift = View::dense(p.lift_weight, f, w[0]);
        ops.gemm(
            1,
            1.0,
            (features, View::dense(0, rows, f)),
            (params, lift),
            1.0,
            (&mut h, View::dense(0, rows, w[0])),
        )?;
        let mut inputs = Vec::with_capacity(p.layers.len() + 1);
        let mut spectra = Vec::with_capacity(p.layers.len());
        for (i, layer) in p.layers.iter().enumerate() {
            let (z, spectrum) = self.layer_forward(&ops, *layer, i > 0, &h, params)?;
            spectra.push(spectrum);
            inputs.push(std::mem::replace(&mut h, z));
        }
        let (mut out, hidden) = self.head_forward(&ops, &h, params)?;
        inputs.push(h);
        let pre_output = if self.config.activate_last_layer {
            let activated = ops.gelu_of(&out)?;
            Some(std::mem::replace(&mut out, activated))
        } else {
            None
        };
        let pass = ForwardPass {
            network: self.id,
            rows,
            inputs,
            spectra,
            hidden,
            pre_output,
        };
        Ok((out, pass))
    }

    /// The packed parameter gradient for the output gradient `grad_out`
    /// through `pass`, the forward pass of these `features` and `params`.
    pub fn backward(
        &self,
        pass: ForwardPass<E::Buffer>,
        features: &E::Buffer,
        params: &E::Buffer,
        grad_out: &E::Buffer,
    ) -> Result<E::Buffer, GpuError> {
        let (grads, _) = self.pass_back(pass, features, params, grad_out, false)?;
        Ok(grads)
    }

    /// [`DeviceFno::backward`] and the features' gradient `[batch, grid…,
    /// in_features]`: what differentiating a prediction in its initial
    /// condition needs (the lift's `ḡ·Wᵀ`, one more product).
    pub fn backward_with_features(
        &self,
        pass: ForwardPass<E::Buffer>,
        features: &E::Buffer,
        params: &E::Buffer,
        grad_out: &E::Buffer,
    ) -> Result<(E::Buffer, E::Buffer), GpuError> {
        let (grads, features_grad) = self.pass_back(pass, features, params, grad_out, true)?;
        Ok((grads, features_grad.expect("asked for")))
    }

    /// The backward pass: the parameter gradient, and the features' when
    /// `features_wanted`.
    fn pass_back(
        &self,
        pass: ForwardPass<E::Buffer>,
        features: &E::Buffer,
        params: &E::Buffer,
        grad_out: &E::Buffer,
        features_wanted: bool,
    ) -> Result<(E::Buffer, Option<E::Buffer>), GpuError> {
        if pass.network != self.id {
            return Err(GpuError::Unsupported(
                "a forward pass of another network".into(),
            ));
        }
        let rows = self.rows(features)?;
        self.check_params(params)?;
        if rows != pass.rows {
            return Err(GpuError::Unsupported(format!(
                "features of {rows} points for a forward pass of {}",
                pass.rows
            )));
        }
        if grad_out.len() != rows * self.config.out_dim {
            return Err(GpuError::Unsupported(format!(
                "an output gradient of {} values for {rows} points × {} outputs",
                grad_out.len(),
                self.config.out_dim
            )));
        }
        let ops = Ops::new(&self.exec);
        let mut grads = self.exec.zeros(self.packing.total)?;
        let ForwardPass {
            mut inputs,
            spectra,
            hidden,
            pre_output,
            ..
        } = pass;
        let g = match &pre_output {
            Some(pre) => {
                let mut g = self.exec.copy(grad_out)?;
                ops.gelu_backward(pre, &mut g)?;
                Some(g)
            }
            None => None,
        };
        let g = g.as_ref().unwrap_or(grad_out);
        let head_input = inputs.pop().expect("the head's input is saved");
        let mut gh = self.head_backward(&ops, &head_input, &hidden, params, g, &mut grads)?;
        drop((head_input, hidden, pre_output));
        let p = &self.packing;
        for (i, (layer, spectrum)) in p.layers.iter().zip(spectra).enumerate().rev() {
            let input = inputs.pop().expect("every layer's input is saved");
            gh = self.layer_backward(
                &ops,
                *layer,
                i > 0,
                &input,
                spectrum,
                params,
                &gh,
                &mut grads,
            )?;
        }
        let (f, w0) = (self.config.in_features, self.config.widths[0]);
        ops.gemm(
            1,
            1.0,
            (features, View::dense(0, rows, f).t()),
            (&gh, View::dense(0, rows, w0)),
            0.0,
            (&mut grads, View::dense(p.lift_weight, f, w0)),
        )?;
        ops.column_sums(&gh, w0, (&mut grads, p.lift_bias))?;
        let features_grad = if features_wanted {
            let mut gx = self.exec.zeros(features.len())?;
            ops.gemm(
                1,
                1.0,
                (&gh, View::dense(0, rows, w0)),
                (params, View::dense(p.lift_weight, f, w0).t()),
                0.0,
                (&mut gx, View::dense(0, rows, f)),
            )?;
            Some(gx)
        } else {
            None
        };
        Ok((grads, features_grad))
    }

    /// `z = S(σ(a)) + σ(a)·W + b` (`σ` only when `activate`), and the kept
    /// spectrum of the layer's input.
    fn layer_forward(
        &self,
        ops: &Ops<E>,
        at: LayerAt,
        activate: bool,
        a: &E::Buffer,
        params: &E::Buffer,
    ) -> Result<(E::Buffer, Complex<E::Buffer>), GpuError> {
        let (ci, co) = (at.spectral.ci, at.spectral.co);
        let rows = a.len() / ci;
        let activated = if activate {
            Some(ops.gelu_of(a)?)
        } else {
            None
        };
        let x = activated.as_ref().unwrap_or(a);
        let spectrum = self.transforms.analyse(ops, x, ci)?;
        let z_spectrum = mix(ops, &spectrum, params, at.spectral)?;
        let mut out = ops.rows_of((params, at.bias), rows, co)?;
        ops.gemm(
            1,
            1.0,
            (x, View::dense(0, rows, ci)),
            (params, View::dense(at.weight, ci, co)),
            1.0,
            (&mut out, View::dense(0, rows, co)),
        )?;
        self.transforms.synthesise(ops, z_spectrum, co, &mut out)?;
        Ok((out, spectrum))
    }

    /// The input gradient of one Fourier layer; its parameter gradients go
    /// into `grads` at the layer's offsets.
    #[allow(clippy::too_many_arguments)]
    fn layer_backward(
        &self,
        ops: &Ops<E>,
        at: LayerAt,
        activate: bool,
        a: &E::Buffer,
        spectrum: Complex<E::Buffer>,
        params: &E::Buffer,
        gz: &E::Buffer,
        grads: &mut E::Buffer,
    ) -> Result<E::Buffer, GpuError> {
        let (ci, co) = (at.spectral.ci, at.spectral.co);
        let rows = a.len() / ci;
        let activated = if activate {
            Some(ops.gelu_of(a)?)
        } else {
            None
        };
        let x = activated.as_ref().unwrap_or(a);
        ops.column_sums(gz, co, (&mut *grads, at.bias))?;
        let gz_view = View::dense(0, rows, co);
        ops.gemm(
            1,
            1.0,
            (x, View::dense(0, rows, ci).t()),
            (gz, gz_view),
            0.0,
            (&mut *grads, View::dense(at.weight, ci, co)),
        )?;
        drop(activated);
        let mut gx = self.exec.zeros(a.len())?;
        ops.gemm(
            1,
            1.0,
            (gz, gz_view),
            (params, View::dense(at.weight, ci, co).t()),
            0.0,
            (&mut gx, View::dense(0, rows, ci)),
        )?;
        let g_spectrum = self.transforms.synthesise_adjoint(ops, gz, co)?;
        let g_y = mix_adjoint(
            ops,
            &spectrum,
            params,
            at.spectral,
            &g_spectrum,
            grads,
            at.spectral,
        )?;
        drop((spectrum, g_spectrum));
        self.transforms.analyse_adjoint(ops, g_y, ci, &mut gx)?;
        if activate {
            ops.gelu_backward(a, &mut gx)?;
        }
        Ok(gx)
    }

    /// `out = σ(σ(a)·W₁ + b₁)·W₂ + b₂`, and the hidden pre-activation.
    fn head_forward(
        &self,
        ops: &Ops<E>,
        a: &E::Buffer,
        params: &E::Buffer,
    ) -> Result<(E::Buffer, E::Buffer), GpuError> {
        let [w1, b1, w2, b2] = self.packing.head;
        let (c, f, n) = self.head_sizes();
        let rows = a.len() / c;
        let x = ops.gelu_of(a)?;
        let mut hidden = ops.rows_of((params, b1), rows, f)?;
        ops.gemm(
            1,
            1.0,
            (&x, View::dense(0, rows, c)),
            (params, View::dense(w1, c, f)),
            1.0,
            (&mut hidden, View::dense(0, rows, f)),
        )?;
        let h = ops.gelu_of(&hidden)?;
        let mut out = ops.rows_of((params, b2), rows, n)?;
        ops.gemm(
            1,
            1.0,
            (&h, View::dense(0, rows, f)),
            (params, View::dense(w2, f, n)),
            1.0,
            (&mut out, View::dense(0, rows, n)),
        )?;
        Ok((out, hidden))
    }

    /// The head's input gradient; its parameter gradients go into `grads`.
    fn head_backward(
        &self,
        ops: &Ops<E>,
        a: &E::Buffer,
        hidden: &E::Buffer,
        params: &E::Buffer,
        g: &E::Buffer,
        grads: &mut E::Buffer,
    ) -> Result<E::Buffer, GpuError> {
        let [w1, b1, w2, b2] = self.packing.head;
        let (c, f, n) = self.head_sizes();
        let rows = a.len() / c;
        let (av, hv, gv) = (
            View::dense(0, rows, c),
            View::dense(0, rows, f),
            View::dense(0, rows, n),
        );
        ops.column_sums(g, n, (&mut *grads, b2))?;
        let h = ops.gelu_of(hidden)?;
        ops.gemm(
            1,
            1.0,
            (&h, hv.t()),
            (g, gv),
            0.0,
            (&mut *grads, View::dense(w2, f, n)),
        )?;
        drop(h);
        let mut g_hidden = self.exec.zeros(rows * f)?;
        let w2t = View::dense(w2, f, n).t();
        ops.gemm(1, 1.0, (g, gv), (params, w2t), 0.0, (&mut g_hidden, hv))?;
        ops.gelu_backward(hidden, &mut g_hidden)?;
        ops.column_sums(&g_hidden, f, (&mut *grads, b1))?;
        let x = ops.gelu_of(a)?;
        let gw1 = View::dense(w1, c, f);
        ops.gemm(
            1,
            1.0,
            (&x, av.t()),
            (&g_hidden, hv),
            0.0,
            (&mut *grads, gw1),
        )?;
        drop(x);
        let mut ga = self.exec.zeros(a.len())?;
        let w1t = View::dense(w1, c, f).t();
        ops.gemm(1, 1.0, (&g_hidden, hv), (params, w1t), 0.0, (&mut ga, av))?;
        ops.gelu_backward(a, &mut ga)?;
        Ok(ga)
    }

    /// `(c, f, n)`: the head's input, hidden and output widths.
    fn head_sizes(&self) -> (usize, usize, usize) {
        let c = *self.config.widths.last().expect("validated");
        (c, self.config.fc_dim, self.config.out_dim)
    }
}
