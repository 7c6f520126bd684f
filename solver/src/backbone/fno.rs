//! The Fourier neural operator backbone (FNO 2-D over `(t, x)`, FNO 3-D over
//! `(t, x, y)`), configured like the reference's `FNO2D`/`FNO3D`:
//!
//! ```text
//! features ─ lift (linear) ─ [Fourier layer: S(·) + pointwise linear, gelu] × L
//!          ─ fc1, gelu ─ fc2 ─ (gelu if activate_last_layer) ─ N basis functions
//! ```
//!
//! Parameters are created through a candle `VarBuilder`, scoped so checkpoint
//! keys follow the model tree: `lift.{weight,bias}`,
//! `layers.{i}.spectral.{re,im}` (`[K, in, out]`, one complex matrix per kept
//! mode), `layers.{i}.pointwise.{weight,bias}`, `head.fc{1,2}.{weight,bias}`.
//! Linear weights are stored `[in, out]` (so a layer is `x·W + b` on
//! channels-last rows). Initialisation follows the reference (equinox
//! defaults): linear and 1×1-convolution weights and biases uniform in
//! `±1/√in`; spectral weights normal with standard deviation
//! `1/√((in + out)/2)` for both real and imaginary parts.

use std::sync::Arc;

use candle_core::{CustomOp2, DType, Tensor};
use candle_nn::{Init, VarBuilder};

use super::Real;
use super::fourier_layer::FourierLayerOp;
use super::head::HeadOp;
use super::host_slot::HostGradientSlot;
use super::network_op::NetworkOp;
use super::pools::Pools;
use super::spectral_conv::SpectralConv;
use super::storage::Writable;
use super::timed_op::TimedBackward;
use crate::SolverError;
use crate::phases::PhaseClock;

/// Architecture of an FNO backbone.
#[derive(Debug, Clone, PartialEq)]
pub struct FnoConfig {
    /// Input features per grid point (normalised coordinates, broadcast initial
    /// condition, PDE parameters).
    pub in_features: usize,
    /// The lifting width, then one output width per Fourier layer (the
    /// reference's `layers`, e.g. `[32, 64, 64, 64, 64, 64]`: five layers).
    pub widths: Vec<usize>,
    /// Kept modes per grid axis `(t, x, (y))`, shared by all layers: per side of
    /// zero on every axis but the last, `0..m` on the last (real) axis. Its
    /// length fixes the dimension (2 → FNO 2-D, 3 → FNO 3-D).
    pub modes: Vec<usize>,
    /// Width of the hidden projection layer.
    pub fc_dim: usize,
    /// Number of outputs per point (the basis size `N`; 1 for the soft method).
    pub out_dim: usize,
    /// Whether the activation is applied to the outputs too.
    pub activate_last_layer: bool,
}

impl FnoConfig {
    /// Checks sizes that do not depend on the grid.
    pub fn validate(&self) -> Result<(), SolverError> {
        let positive = |key: &'static str, v: usize| {
            if v == 0 {
                Err(SolverError::InvalidConfig {
                    key,
                    value: v.to_string(),
                    reason: "must be positive".into(),
                })
            } else {
                Ok(())
            }
        };
        positive("model.in_features", self.in_features)?;
        positive("model.fc_dim", self.fc_dim)?;
        positive("model.n_basis", self.out_dim)?;
        if self.widths.len() < 2 || self.widths.contains(&0) {
            return Err(SolverError::InvalidConfig {
                key: "model.widths",
                value: format!("{:?}", self.widths),
                reason: "needs a lifting width and at least one Fourier layer, all positive".into(),
            });
        }
        if !(2..=3).contains(&self.modes.len()) || self.modes.contains(&0) {
            return Err(SolverError::InvalidConfig {
                key: "model.modes",
                value: format!("{:?}", self.modes),
                reason: "needs 2 (t, x) or 3 (t, x, y) positive mode counts".into(),
            });
        }
        Ok(())
    }

    /// Checks that the modes fit a grid of point shape `dims` (`[nt, nx, (ny)]`):
    /// `2·m ≤ n` on every axis but the last, `m ≤ n/2 + 1` on the last.
    pub fn check_grid(&self, dims: &[usize]) -> Result<(), SolverError> {
        if dims.len() != self.modes.len() {
            return Err(SolverError::ShapeMismatch {
                what: "grid axes vs model.modes",
                expected: vec![self.modes.len()],
                got: vec![dims.len()],
            });
        }
        let last = dims.len() - 1;
        for (a, (&n, &m)) in dims.iter().zip(&self.modes).enumerate() {
            let ok = if a == last {
                m <= n / 2 + 1
            } else {
                2 * m <= n
            };
            if !ok {
                return Err(SolverError::InvalidConfig {
                    key: "model.modes",
                    value: format!("{:?}", self.modes),
                    reason: format!("{m} modes do not fit axis {a} of {n} points"),
                });
            }
        }
        Ok(())
    }

    /// Number of kept modes `K` of each spectral weight.
    pub fn kept_modes(&self) -> usize {
        let last = self.modes.len() - 1;
        self.modes[..last].iter().map(|m| 2 * m).product::<usize>() * self.modes[last]
    }

    /// Number of trainable parameters: the lift `(F + 1)·w₀`, per Fourier
    /// layer the spectral weight's real and imaginary parts `2·K·wᵢ·wᵢ₊₁` and
    /// the pointwise `(wᵢ + 1)·wᵢ₊₁`, the head `(w_L + 1)·fc + (fc + 1)·N`.
    pub fn parameter_count(&self) -> usize {
        let k = self.kept_modes();
        let lift = (self.in_features + 1) * self.widths[0];
        let layers: usize = self
            .widths
            .windows(2)
            .map(|w| 2 * k * w[0] * w[1] + (w[0] + 1) * w[1])
            .sum();
        let last = self.widths[self.widths.len() - 1];
        lift + layers + (last + 1) * self.fc_dim + (self.fc_dim + 1) * self.out_dim
    }

    /// The widest layer's channels (a field of it is the largest the
    /// layers pass between them).
    pub fn widest(&self) -> usize {
        self.widths.iter().copied().max().unwrap_or(0)
    }

    /// Values an inference pass over `points` grid points holds at its peak
    /// ([`Fno::infer`] on the CPU): the input features next to the two
    /// fields the layers' inputs and outputs take turns in, or at the end
    /// next to the head's input and output (its hidden layer is chunked).
    pub fn inference_values(&self, points: usize) -> usize {
        let widest = self.widest();
        let last = self.widths.last().copied().unwrap_or(0);
        points * (self.in_features + (2 * widest).max(last + self.out_dim))
    }
}

/// One Fourier layer's variables.
#[derive(Debug, Clone)]
struct FourierParams {
    spectral_re: Tensor,
    spectral_im: Tensor,
    weight: Tensor,
    bias: Tensor,
}

/// The FNO backbone; its variables live in the `VarBuilder`'s store.
#[derive(Debug, Clone)]
pub struct Fno {
    config: FnoConfig,
    dtype: DType,
    /// Where the passes run when not on the CPU ([`Fno::run_on`]).
    #[cfg(feature = "cuda")]
    device: Option<Arc<dyn super::device::NetworkOnDevice>>,
    /// Where the device's backward pass leaves its gradient for a trainer
    /// that runs Adam there (with `device`).
    #[cfg(feature = "cuda")]
    slot: Option<Arc<super::device::GradientSlot>>,
    /// Where the CPU's backward pass leaves its gradient for a trainer that
    /// armed it ([`super::host_slot`]).
    host_slot: Arc<HostGradientSlot>,
    /// Where the backward passes' wall time goes ([`Fno::time_backward`]).
    phases: Option<Arc<PhaseClock>>,
    /// The head's hidden activations, kept from the forward to the backward
    /// pass and from step to step.
    hidden: Pools,
    /// The other fields of a training pass (the activations kept for the
    /// backward pass, the activated inputs, slopes and gradients), all back
    /// in their pool when the backward pass ends.
    scratch: Pools,
    lift_weight: Tensor,
    lift_bias: Tensor,
    layers: Vec<FourierParams>,
    head: [Tensor; 4],
}

fn uniform(fan_in: usize) -> Init {
    let bound = 1.0 / (fan_in as f64).sqrt();
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

impl Fno {
    /// Builds (or, with a loaded store, looks up) the variables under `vb`.
    pub fn new(config: FnoConfig, vb: VarBuilder) -> Result<Self, SolverError> {
        config.validate()?;
        let dtype = vb.dtype();
        if !matches!(dtype, DType::F32 | DType::F64) {
            return Err(SolverError::InvalidConfig {
                key: "model.dtype",
                value: format!("{dtype:?}"),
                reason: "the backbone runs in f32 or f64".into(),
            });
        }
        let w = &config.widths;
        let lift = vb.pp("lift");
        let lift_weight = lift.get_with_hints(
            (config.in_features, w[0]),
            "weight",
            uniform(config.in_features),
        )?;
        let lift_bias = lift.get_with_hints(w[0], "bias", uniform(config.in_features))?;
        let k = config.kept_modes();
        let layers = w
            .windows(2)
            .enumerate()
            .map(|(i, pair)| {
                let (ci, co) = (pair[0], pair[1]);
                let vb = vb.pp("layers").pp(i);
                let scale = 1.0 / ((ci + co) as f64 / 2.0).sqrt();
                let normal = Init::Randn {
                    mean: 0.0,
                    stdev: scale,
                };
                let spectral = vb.pp("spectral");
                let pointwise = vb.pp("pointwise");
                Ok(FourierParams {
                    spectral_re: spectral.get_with_hints((k, ci, co), "re", normal)?,
                    spectral_im: spectral.get_with_hints((k, ci, co), "im", normal)?,
                    weight: pointwise.get_with_hints((ci, co), "weight", uniform(ci))?,
                    bias: pointwise.get_with_hints(co, "bias", uniform(ci))?,
                })
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        let last = *w.last().expect("validated");
        let (fc, n) = (config.fc_dim, config.out_dim);
        let head_vb = vb.pp("head");
        let fc1 = head_vb.pp("fc1");
        let fc2 = head_vb.pp("fc2");
        let head = [
            fc1.get_with_hints((last, fc), "weight", uniform(last))?,
            fc1.get_with_hints(fc, "bias", uniform(last))?,
            fc2.get_with_hints((fc, n), "weight", uniform(fc))?,
            fc2.get_with_hints(n, "bias", uniform(fc))?,
        ];
        let mut fno = Self {
            config,
            dtype,
            #[cfg(feature = "cuda")]
            device: None,
            #[cfg(feature = "cuda")]
            slot: None,
            host_slot: Arc::new(HostGradientSlot::new(Vec::new(), dtype)?),
            phases: None,
            hidden: Pools::default(),
            scratch: Pools::default(),
            lift_weight,
            lift_bias,
            layers,
            head,
        };
        fno.host_slot = Arc::new(HostGradientSlot::new(fno.packed_ranges(), dtype)?);
        Ok(fno)
    }

    /// Runs the network's forward and backward passes on `device` (a GPU)
    /// from now on; the variables, the graph and the optimiser stay on the
    /// host. `None` goes back to the CPU.
    ///
    /// Errors: a device network in another precision than the backbone's
    /// dtype.
    #[cfg(feature = "cuda")]
    pub fn run_on(
        &mut self,
        device: Option<Arc<dyn super::device::NetworkOnDevice>>,
    ) -> Result<(), SolverError> {
        use super::device::Precision;
        let wanted = match self.dtype {
            DType::F64 => Precision::F64,
            _ => Precision::F32,
        };
        if let Some(precision) = device.as_ref().map(|d| d.precision())
            && precision != wanted
        {
            return Err(SolverError::InvalidConfig {
                key: "model.dtype",
                value: format!("{:?}", self.dtype),
                reason: format!("the device network computes in {precision:?}"),
            });
        }
        self.slot = match &device {
            Some(d) => Some(Arc::new(super::device::GradientSlot::new(
                Arc::clone(d),
                self.packed_ranges(),
                self.dtype,
            )?)),
            None => None,
        };
        self.device = device;
        Ok(())
    }

    /// Where the device's backward pass leaves the parameter gradient while
    /// a trainer has armed it (`None` on the CPU).
    #[cfg(feature = "cuda")]
    pub fn gradient_slot(&self) -> Option<Arc<super::device::GradientSlot>> {
        self.slot.clone()
    }

    /// Where the CPU's backward pass leaves the parameter gradient while a
    /// trainer has armed it; `None` while the passes run on a device (whose
    /// own slot does this there, feature `cuda`).
    pub fn host_gradient_slot(&self) -> Option<Arc<HostGradientSlot>> {
        #[cfg(feature = "cuda")]
        if self.device.is_some() {
            return None;
        }
        Some(Arc::clone(&self.host_slot))
    }

    /// The variables in [`Fno::packed_parameters`] order.
    fn parameters(&self) -> Vec<&Tensor> {
        let mut params = vec![&self.lift_weight, &self.lift_bias];
        for layer in &self.layers {
            params.extend([
                &layer.spectral_re,
                &layer.spectral_im,
                &layer.weight,
                &layer.bias,
            ]);
        }
        params.extend(&self.head);
        params
    }

    /// Each variable's tensor id and its range in the packed vector.
    fn packed_ranges(&self) -> Vec<(candle_core::TensorId, std::ops::Range<usize>)> {
        let mut at = 0;
        self.parameters()
            .into_iter()
            .map(|t| {
                at += t.elem_count();
                (t.id(), at - t.elem_count()..at)
            })
            .collect()
    }

    /// The device the passes run on, if not the CPU.
    #[cfg(feature = "cuda")]
    pub fn device(&self) -> Option<Arc<dyn super::device::NetworkOnDevice>> {
        self.device.clone()
    }

    /// Adds the wall time of every later backward pass through the network
    /// to `clock`'s [`Phase::BackboneBackward`](crate::Phase::BackboneBackward).
    pub fn time_backward(&mut self, clock: Arc<PhaseClock>) {
        self.phases = Some(clock);
    }

    /// The architecture.
    pub fn config(&self) -> &FnoConfig {
        &self.config
    }

    /// The dtype the backbone computes in.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Bytes an inference pass over `points` grid points holds at its peak
    /// ([`FnoConfig::inference_values`]).
    pub fn inference_bytes(&self, points: usize) -> usize {
        self.config.inference_values(points) * self.dtype.size_in_bytes()
    }

    /// The `N` outputs per point for `features: [batch, nt, nx, (ny), in_features]`
    /// (in the backbone's dtype), shaped `[batch, nt, nx, (ny), N]`.
    pub fn forward(&self, features: &Tensor) -> Result<Tensor, SolverError> {
        self.forward_with(features, None)
    }

    /// Frees the buffers kept between passes, the head's hidden activation,
    /// the layers' fields and the host slot's spare gradient (a later pass
    /// allocates afresh): for a network whose training is over.
    pub fn release_kept_buffers(&self) {
        self.hidden.release();
        self.scratch.release();
        self.host_slot.release();
    }

    /// The network's output for `features`, as [`Fno::forward`] computes
    /// it, without a gradient and keeping nothing for a backward pass: what
    /// evaluation and inference run. On the CPU only the current layer's
    /// input and output are held (the training pass keeps every layer's
    /// input and the head's hidden activation: for one Navier–Stokes sample
    /// at the 256² test resolution about 28 GB). On a GPU it is the forward
    /// pass, detached.
    pub fn infer(&self, features: &Tensor) -> Result<Tensor, SolverError> {
        #[cfg(feature = "cuda")]
        if self.slot.is_some() {
            return Ok(self.forward(features)?.detach());
        }
        self.check_features(features)?;
        let variables: Vec<Tensor> = self.parameters().into_iter().cloned().collect();
        Ok(match self.dtype {
            DType::F64 => self.cpu_op::<f64>(features).infer(features, &variables)?,
            _ => self.cpu_op::<f32>(features).infer(features, &variables)?,
        })
    }

    /// The network as a candle op on checked `features` (`[batch, grid…,
    /// in_features]`), with the tensor it takes as its second argument: the
    /// parameters `packed` as [`Fno::packed_parameters`] lays them out, or
    /// without them the variables packed. On a device whose gradient slot a
    /// trainer armed it is the slot's anchor either way, and the pass reads
    /// `packed`, or the variables unpacked (the device usually holds them
    /// already). On the CPU, without `packed` and while a trainer has armed
    /// the host slot, it is that slot's anchor, and the passes read the
    /// variables where they lie ([`super::host_slot`]). The
    /// op's backward pass is timed when a clock is set.
    /// Applying the op is [`Fno::forward`]; a caller may also run its passes
    /// itself, outside the graph.
    pub(crate) fn network_op(
        &self,
        features: &Tensor,
        packed: Option<&Tensor>,
    ) -> Result<(NetworkOpBox, Tensor), SolverError> {
        self.check_features(features)?;
        #[cfg(feature = "cuda")]
        if let Some(slot) = &self.slot {
            if slot.is_armed() {
                let params = match packed {
                    Some(p) => vec![p.detach()],
                    None => self.parameters().into_iter().cloned().collect(),
                };
                let op = self.device_op(features, slot).leaving_gradient_in(params);
                return Ok((self.timed(op), slot.anchor().as_tensor().clone()));
            }
            let packed = self.packed_or(packed)?.contiguous()?;
            return Ok((self.timed(self.device_op(features, slot)), packed));
        }
        let slot = &self.host_slot;
        let (held, second) = if packed.is_none() && slot.is_armed() {
            let variables = self.parameters().into_iter().cloned().collect();
            let held = (Arc::clone(slot), variables);
            (Some(held), slot.anchor().as_tensor().clone())
        } else {
            (None, self.packed_or(packed)?)
        };
        let op = match self.dtype {
            DType::F64 => self.timed_cpu_op::<f64>(features, held),
            _ => self.timed_cpu_op::<f32>(features, held),
        };
        Ok((op, second))
    }

    /// The CPU's op for checked `features` in `T`, tied to a host slot with
    /// its packed parameters if `held`, timed as [`Fno::timed`].
    fn timed_cpu_op<T: Real + Writable>(
        &self,
        features: &Tensor,
        held: Option<(Arc<HostGradientSlot>, Vec<Tensor>)>,
    ) -> NetworkOpBox {
        let op = self.cpu_op::<T>(features);
        match held {
            Some((slot, variables)) => self.timed(op.leaving_gradient_in(slot, variables)),
            None => self.timed(op),
        }
    }

    /// `packed`, or the variables packed.
    fn packed_or(&self, packed: Option<&Tensor>) -> Result<Tensor, SolverError> {
        match packed {
            Some(p) => Ok(p.clone()),
            None => self.packed_parameters(),
        }
    }

    /// Every variable flattened into one vector, in the order the network
    /// reads them: `[lift.weight, lift.bias, layer 0 (spectral.re,
    /// spectral.im, pointwise.weight, pointwise.bias), …, head.fc1.weight,
    /// head.fc1.bias, head.fc2.weight, head.fc2.bias]` (the GPU backbone's
    /// layout too).
    pub fn packed_parameters(&self) -> Result<Tensor, SolverError> {
        let params = self
            .parameters()
            .into_iter()
            .map(Tensor::flatten_all)
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Tensor::cat(&params, 0)?)
    }

    /// [`Fno::forward`] with the parameters given packed (as
    /// [`Fno::packed_parameters`] lays them out) instead of the variables:
    /// gradients flow to `packed` (on a device whose gradient slot a trainer
    /// armed, they stay in the slot instead).
    pub fn forward_packed(
        &self,
        features: &Tensor,
        packed: &Tensor,
    ) -> Result<Tensor, SolverError> {
        self.forward_with(features, Some(packed))
    }

    /// [`Fno::network_op`] applied.
    fn forward_with(
        &self,
        features: &Tensor,
        packed: Option<&Tensor>,
    ) -> Result<Tensor, SolverError> {
        let (op, params) = self.network_op(features, packed)?;
        Ok(features.contiguous()?.apply_op2_arc(&params, op)?)
    }

    /// Errors unless `features` are `[batch, grid…, in_features]` in the
    /// backbone's dtype on a grid it can transform.
    fn check_features(&self, features: &Tensor) -> Result<(), SolverError> {
        let dims = features.dims();
        let d = self.config.modes.len();
        if dims.len() != d + 2 || dims[d + 1] != self.config.in_features {
            let mut expected = vec![0; d + 2];
            expected[d + 1] = self.config.in_features;
            return Err(SolverError::ShapeMismatch {
                what: "backbone features [batch, grid…, features] (0 = any)",
                expected,
                got: dims.to_vec(),
            });
        }
        self.config.check_grid(&dims[1..=d])?;
        if features.dtype() != self.dtype {
            return Err(SolverError::InvalidConfig {
                key: "model.dtype",
                value: format!("{:?}", features.dtype()),
                reason: format!("features must be in the backbone's dtype {:?}", self.dtype),
            });
        }
        Ok(())
    }

    /// The device op for checked `features` on `slot`'s network.
    #[cfg(feature = "cuda")]
    fn device_op(
        &self,
        features: &Tensor,
        slot: &Arc<super::device::GradientSlot>,
    ) -> super::device::candle_op::DeviceNetworkOp {
        let grid = features.dims()[1..=self.config.modes.len()].to_vec();
        super::device::candle_op::DeviceNetworkOp::new(Arc::clone(slot), self.config.clone(), grid)
    }

    /// The CPU's op for checked `features`, computing in `T`.
    fn cpu_op<T: Real>(&self, features: &Tensor) -> NetworkOp<T> {
        let d = self.config.modes.len();
        let grid = &features.dims()[1..=d];
        let w = &self.config.widths;
        let layers = (0..self.layers.len())
            .map(|i| {
                let conv = SpectralConv::<T>::new(grid, &self.config.modes);
                FourierLayerOp::new(conv, w[i], w[i + 1], i > 0, &self.scratch)
            })
            .collect();
        let head = HeadOp::<T>::new(
            *w.last().expect("validated"),
            self.config.fc_dim,
            self.config.out_dim,
            &self.hidden,
            &self.scratch,
        );
        NetworkOp::new(
            self.config.in_features,
            w[0],
            layers,
            head,
            self.config.activate_last_layer,
            &self.scratch,
        )
    }

    /// `op`, its backward pass timed when a clock is set.
    fn timed<Op: CustomOp2 + Send + Sync + 'static>(&self, op: Op) -> NetworkOpBox {
        match &self.phases {
            Some(clock) => Arc::new(Box::new(TimedBackward::new(op, Arc::clone(clock)))),
            None => Arc::new(Box::new(op)),
        }
    }
}

/// The network as a candle op (the CPU's or a device's), as candle applies
/// one held behind a pointer.
pub(crate) type NetworkOpBox = Arc<Box<dyn CustomOp2 + Send + Sync>>;

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};
    use candle_nn::VarMap;

    use super::*;
    use crate::backbone::SeededVars;

    fn tiny(ndim: usize, activate_last_layer: bool) -> FnoConfig {
        FnoConfig {
            in_features: 3,
            widths: vec![4, 5, 3],
            modes: if ndim == 2 { vec![2, 3] } else { vec![1, 2, 2] },
            fc_dim: 6,
            out_dim: 2,
            activate_last_layer,
        }
    }

    fn features(shape: &[usize], dtype: DType) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n).map(|i| (0.37 * i as f64).sin()).collect();
        Tensor::from_vec(v, shape, &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap()
    }

    /// `L = Σ out ⊙ R` for a fixed pseudo-random `R`.
    fn loss(fno: &Fno, x: &Tensor) -> Tensor {
        let out = fno.forward(x).unwrap();
        let n = out.elem_count();
        let r: Vec<f64> = (0..n).map(|i| (1.3 * i as f64 + 0.2).cos()).collect();
        let r = Tensor::from_vec(r, out.shape(), &Device::Cpu)
            .unwrap()
            .to_dtype(out.dtype())
            .unwrap();
        (out * r).unwrap().sum_all().unwrap()
    }

    /// Autograd through the fused op agrees with central differences on every
    /// variable (a few entries each), in 2-D and 3-D, with and without the final
    /// activation.
    #[test]
    fn gradients_match_finite_differences() {
        for (ndim, grid, last) in [(2, vec![2, 6, 8], false), (3, vec![1, 4, 5, 6], true)] {
            let vars = VarMap::new();
            let fno =
                Fno::new(tiny(ndim, last), SeededVars::builder(&vars, 7, DType::F64)).unwrap();
            let mut shape = grid.clone();
            shape.push(3);
            let x = features(&shape, DType::F64);
            let grads = loss(&fno, &x).backward().unwrap();
            let all: Vec<(String, Var)> = vars
                .data()
                .lock()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            assert_eq!(all.len(), 2 + 4 * 2 + 4);
            for (name, var) in all {
                let g = grads
                    .get(var.as_tensor())
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f64>()
                    .unwrap();
                let mut values = var
                    .as_tensor()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f64>()
                    .unwrap();
                for idx in [0, values.len() / 2, values.len() - 1] {
                    let h = 1e-5;
                    let orig = values[idx];
                    let mut eval = |v: f64| {
                        values[idx] = v;
                        var.set(
                            &Tensor::from_vec(values.clone(), var.shape(), &Device::Cpu).unwrap(),
                        )
                        .unwrap();
                        loss(&fno, &x).to_scalar::<f64>().unwrap()
                    };
                    let fd = (eval(orig + h) - eval(orig - h)) / (2.0 * h);
                    eval(orig);
                    let err = (fd - g[idx]).abs() / fd.abs().max(g[idx].abs()).max(1e-3);
                    assert!(
                        err < 1e-6,
                        "{ndim}-D {name}[{idx}]: autograd {} vs fd {fd}",
                        g[idx]
                    );
                }
            }
        }
    }

    /// With tracked features (a variable) the op's backward pass gives their
    /// gradient too, against central differences on a few entries in 2-D and
    /// 3-D; with untracked features (training) it gives none.
    #[test]
    fn features_gradient_matches_finite_differences() {
        for (ndim, grid, last) in [(2, vec![2, 6, 8], true), (3, vec![1, 4, 5, 6], false)] {
            let vars = VarMap::new();
            let fno =
                Fno::new(tiny(ndim, last), SeededVars::builder(&vars, 5, DType::F64)).unwrap();
            let mut shape = grid.clone();
            shape.push(3);
            let x = Var::from_tensor(&features(&shape, DType::F64)).unwrap();
            let grads = loss(&fno, x.as_tensor()).backward().unwrap();
            let g = grads.get(x.as_tensor()).expect("a features gradient");
            let g = g.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let mut values = x
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap();
            for idx in [0, 1, values.len() / 2 + 2, values.len() - 1] {
                let h = 1e-5;
                let orig = values[idx];
                let mut eval = |v: f64| {
                    values[idx] = v;
                    let moved = Tensor::from_vec(values.clone(), shape.as_slice(), &Device::Cpu);
                    loss(&fno, &moved.unwrap()).to_scalar::<f64>().unwrap()
                };
                let fd = (eval(orig + h) - eval(orig - h)) / (2.0 * h);
                eval(orig);
                let err = (fd - g[idx]).abs() / fd.abs().max(g[idx].abs()).max(1e-3);
                assert!(
                    err < 1e-6,
                    "{ndim}-D x[{idx}]: autograd {} vs fd {fd}",
                    g[idx]
                );
            }
            let untracked = features(&shape, DType::F64);
            let grads = loss(&fno, &untracked).backward().unwrap();
            assert!(grads.get(&untracked).is_none());
            // With the parameters detached, the features' gradient alone,
            // the same bits.
            let packed = fno.packed_parameters().unwrap().detach();
            let out = fno.forward_packed(x.as_tensor(), &packed).unwrap();
            let r = Tensor::from_vec(
                (0..out.elem_count())
                    .map(|i| (1.3 * i as f64 + 0.2).cos())
                    .collect(),
                out.shape(),
                &Device::Cpu,
            )
            .unwrap();
            let grads = (out * r).unwrap().sum_all().unwrap().backward().unwrap();
            let alone = grads.get(x.as_tensor()).unwrap().flatten_all().unwrap();
            assert_eq!(alone.to_vec1::<f64>().unwrap(), g);
            assert!(grads.get(&packed).is_none());
        }
    }

    /// The f32 backbone computes the same function as the f64 one (same seed, so
    /// the same initial values rounded) to single precision.
    #[test]
    fn f32_matches_f64() {
        let x64 = features(&[1, 6, 8, 3], DType::F64);
        let run = |dtype| {
            let vars = VarMap::new();
            let fno = Fno::new(tiny(2, true), SeededVars::builder(&vars, 3, dtype)).unwrap();
            let x = x64.to_dtype(dtype).unwrap();
            fno.forward(&x)
                .unwrap()
                .to_dtype(DType::F64)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap()
        };
        let (a, b) = (run(DType::F64), run(DType::F32));
        let scale = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).abs() < 1e-5 * scale.max(1.0));
        }
    }

    #[test]
    fn rejects_modes_that_do_not_fit_and_wrong_features() {
        let vars = VarMap::new();
        let fno = Fno::new(tiny(2, false), SeededVars::builder(&vars, 1, DType::F64)).unwrap();
        // 2·2 > 3 points along t.
        assert!(matches!(
            fno.forward(&features(&[1, 3, 8, 3], DType::F64)),
            Err(SolverError::InvalidConfig {
                key: "model.modes",
                ..
            })
        ));
        assert!(matches!(
            fno.forward(&features(&[1, 6, 8, 4], DType::F64)),
            Err(SolverError::ShapeMismatch { .. })
        ));
        let mut bad = tiny(2, false);
        bad.widths = vec![4];
        assert!(bad.validate().is_err());
    }

    /// The passes read the parameters as one slice per variable, cut from the
    /// packed vector or taken from the variables: both give the same output,
    /// and a packed vector one value short is an error, not a misread.
    #[test]
    fn packed_parameters_are_cut_per_variable() {
        let vars = VarMap::new();
        let fno = Fno::new(tiny(3, true), SeededVars::builder(&vars, 9, DType::F64)).unwrap();
        let x = features(&[1, 4, 5, 6, 3], DType::F64);
        let values = |t: Tensor| t.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let packed = fno.packed_parameters().unwrap();
        assert_eq!(
            values(fno.forward(&x).unwrap()),
            values(fno.forward_packed(&x, &packed).unwrap())
        );
        let short = packed.narrow(0, 0, packed.elem_count() - 1).unwrap();
        let err = fno.forward_packed(&x, &short).unwrap_err().to_string();
        assert!(err.contains("packed parameters"), "{err}");
    }

    /// The fused op releases its activations during the backward pass, so a
    /// second backward pass through the same forward pass is an error, not a
    /// panic or a wrong gradient.
    #[test]
    fn second_backward_is_an_error() {
        let vars = VarMap::new();
        let fno = Fno::new(tiny(2, true), SeededVars::builder(&vars, 4, DType::F64)).unwrap();
        let l = loss(&fno, &features(&[1, 6, 8, 3], DType::F64));
        assert!(l.backward().is_ok());
        assert!(l.backward().is_err());
    }

    /// The head's hidden activation and the layers' fields live in buffers
    /// kept from pass to pass (with and without the final activation): a
    /// pass after passes on other inputs and sizes, whose values the buffers
    /// still hold, gives a fresh network's output and gradient bit for bit,
    /// and the buffers are reused, not multiplied.
    #[test]
    fn kept_buffers_do_not_change_a_pass() {
        let pass = |fno: &Fno, vars: &VarMap, x: &Tensor| {
            let out = fno.forward(x).unwrap();
            let r = features(out.dims(), DType::F64);
            let grads = (&out * r).unwrap().sum_all().unwrap().backward().unwrap();
            let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let data = vars.data().lock().unwrap();
            let mut names: Vec<_> = data.keys().cloned().collect();
            names.sort();
            let g: Vec<Vec<f64>> = names
                .iter()
                .map(|n| flat(grads.get(data[n].as_tensor()).unwrap()))
                .collect();
            (flat(&out), g)
        };
        for last in [false, true] {
            let x = features(&[1, 6, 8, 3], DType::F64);
            let fresh_vars = VarMap::new();
            let fresh = Fno::new(
                tiny(2, last),
                SeededVars::builder(&fresh_vars, 2, DType::F64),
            );
            let expected = pass(&fresh.unwrap(), &fresh_vars, &x);

            let vars = VarMap::new();
            let fno = Fno::new(tiny(2, last), SeededVars::builder(&vars, 2, DType::F64)).unwrap();
            let other = (features(&[3, 6, 8, 3], DType::F64) * -2.5).unwrap();
            pass(&fno, &vars, &other);
            drop(fno.forward(&other).unwrap());
            assert_eq!(fno.hidden.f64.free_buffers(), 1);
            let scratch = fno.scratch.free_buffers();
            assert!(scratch > 0, "the layers' fields are kept");
            assert_eq!(pass(&fno, &vars, &x), expected, "last = {last}");
            assert_eq!(pass(&fno, &vars, &x), expected, "last = {last}");
            assert_eq!(fno.hidden.f64.free_buffers(), 1);
            assert_eq!(fno.scratch.free_buffers(), scratch);
            // Released, the buffers are allocated afresh, to the same result.
            fno.release_kept_buffers();
            assert_eq!(fno.hidden.free_buffers() + fno.scratch.free_buffers(), 0);
            assert_eq!(pass(&fno, &vars, &x), expected, "last = {last}");
        }
    }

    /// Inference computes the forward pass's output bit for bit (both
    /// precisions, with and without the final activation) as a plain tensor
    /// that keeps nothing: no gradient, no hidden buffer taken.
    #[test]
    fn inference_is_the_forward_pass_keeping_nothing() {
        for (dtype, last) in [(DType::F64, false), (DType::F64, true), (DType::F32, true)] {
            let vars = VarMap::new();
            let fno = Fno::new(tiny(3, last), SeededVars::builder(&vars, 6, dtype)).unwrap();
            let x = features(&[2, 4, 5, 6, 3], dtype);
            let inferred = fno.infer(&x).unwrap();
            assert!(!inferred.track_op());
            assert_eq!(
                fno.hidden.f64.free_buffers() + fno.hidden.f32.free_buffers(),
                0
            );
            let values = |t: &Tensor| {
                let t = t.to_dtype(DType::F64).unwrap();
                t.flatten_all().unwrap().to_vec1::<f64>().unwrap()
            };
            let forward = fno.forward(&x).unwrap();
            assert_eq!(inferred.dims(), forward.dims());
            assert_eq!(values(&inferred), values(&forward), "{dtype:?}");
        }
        let vars = VarMap::new();
        let fno = Fno::new(tiny(2, false), SeededVars::builder(&vars, 1, DType::F64)).unwrap();
        assert!(matches!(
            fno.infer(&features(&[1, 6, 8, 4], DType::F64)),
            Err(SolverError::ShapeMismatch { .. })
        ));
    }

    /// Same seed → same variables; different seed → different ones.
    #[test]
    fn initialisation_is_seeded() {
        let values = |seed| {
            let vars = VarMap::new();
            Fno::new(tiny(2, false), SeededVars::builder(&vars, seed, DType::F64)).unwrap();
            let data = vars.data().lock().unwrap();
            data["layers.0.spectral.re"]
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap()
        };
        assert_eq!(values(5), values(5));
        assert_ne!(values(5), values(6));
    }

    /// The count from the architecture is the elements of the variables a
    /// built backbone creates.
    #[test]
    fn parameter_count_is_the_variables_built() {
        for (ndim, last) in [(2, false), (3, true)] {
            let config = tiny(ndim, last);
            let vars = VarMap::new();
            Fno::new(config.clone(), SeededVars::builder(&vars, 1, DType::F64)).unwrap();
            let built: usize = vars.all_vars().iter().map(|v| v.elem_count()).sum();
            assert_eq!(config.parameter_count(), built);
        }
    }
}
