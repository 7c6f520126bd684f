//! The whole FNO forward pass as one candle op: lift, Fourier layers, head and
//! the optional final activation, with a hand-chained backward pass.
//!
//! candle's autograd keeps a gradient for every node of the graph and builds
//! each as `zeros + contribution`: at paper scale every Fourier layer's output
//! is `[101·1024, 64]` f64 (53 MB), so per layer that is two fresh 53 MB
//! buffers, a memset and a full-size addition. Chaining the layers inside one op
//! leaves a single graph node (the basis) and keeps only what the backward pass
//! needs: each layer's input (its pre-activation) and the head's hidden
//! pre-activation — the same activations the per-layer graph stored.
//!
//! Parameters, in packing order: `[lift.weight (F·w₀), lift.bias (w₀), layer
//! 0, …, layer L−1, head]`, each layer and the head as their own ops describe.
//! The passes read them as one slice per variable, cut from the packed vector
//! the op takes as its second argument or, tied to an armed host slot, the
//! variables themselves (no gigabyte-sized copy per step at the Navier–Stokes
//! scale); the gradient is always written packed.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, StorageRef, Tensor};
use rayon::prelude::*;
use tessera_meshes::buffer_pool::{BufferPool, Pooled};

use super::Real;
use super::activation::{gelu_in_place, gelu_vec, times_slope};
use super::fourier_layer::FourierLayerOp;
use super::head::HeadOp;
use super::host_slot::HostGradientSlot;
use super::matmul::{column_sums, dense, gram, rows_times};
use super::pools::Pools;
use super::storage::{Writable, guarded, slice};

/// One forward pass of the network (it keeps that pass's activations for the
/// backward pass).
pub(crate) struct NetworkOp<T: Real> {
    in_features: usize,
    lift_width: usize,
    layers: Vec<FourierLayerOp<T>>,
    head: HeadOp<T>,
    activate_last_layer: bool,
    /// The input of every Fourier layer, then the head's input (and its
    /// output, before the final activation).
    saved: Mutex<Vec<Pooled<T>>>,
    /// Where the lift's output comes from ([`super::pools`]).
    scratch: Arc<BufferPool<T>>,
    /// Tied to an armed slot's anchor: the slot, and the variables (in
    /// packing order) the passes read in place of the op's second argument.
    held: Option<(Arc<HostGradientSlot>, Vec<Tensor>)>,
}

/// The network's parameters as the passes read them: one slice per
/// variable, wherever each lies.
struct Params<'a, T> {
    lift: [&'a [T]; 2],
    layers: Vec<[&'a [T]; 4]>,
    head: [&'a [T]; 4],
}

impl<T: Real> NetworkOp<T> {
    /// The network `in_features → lift_width → layers → head`.
    pub(crate) fn new(
        in_features: usize,
        lift_width: usize,
        layers: Vec<FourierLayerOp<T>>,
        head: HeadOp<T>,
        activate_last_layer: bool,
        scratch: &Pools,
    ) -> Self {
        Self {
            in_features,
            lift_width,
            layers,
            head,
            activate_last_layer,
            saved: Mutex::new(Vec::new()),
            scratch: Arc::clone(T::pool(scratch)),
            held: None,
        }
    }

    /// The op reading its parameters from `variables` (in packing order,
    /// each contiguous) with its second argument `slot`'s anchor: its backward
    /// pass leaves the parameter gradient in the slot. The variables must not
    /// change between the passes (the trainer updates them after the step's
    /// backward passes; the slot refuses a backward pass after its step).
    pub(crate) fn leaving_gradient_in(
        mut self,
        slot: Arc<HostGradientSlot>,
        variables: Vec<Tensor>,
    ) -> Self {
        self.held = Some((slot, variables));
        self
    }

    /// The held variables' storages, read-locked (none when not held).
    fn held_guards(&self) -> Vec<(StorageRef<'_>, &Layout)> {
        let variables = self.held.iter().flat_map(|(_, v)| v);
        variables.map(Tensor::storage_and_layout).collect()
    }

    /// Sizes of the variables, in packing order.
    fn sizes(&self) -> Vec<usize> {
        let (f, w0) = (self.in_features, self.lift_width);
        let mut sizes = vec![f * w0, w0];
        sizes.extend(self.layers.iter().flat_map(FourierLayerOp::sizes));
        sizes.extend(self.head.sizes());
        sizes
    }

    fn lift_params(&self) -> usize {
        (self.in_features + 1) * self.lift_width
    }

    /// Number of packed parameters.
    pub(crate) fn n_params(&self) -> usize {
        self.sizes().iter().sum()
    }

    /// The packed parameters `packed`, one slice per variable.
    ///
    /// Errors: `packed` of another length.
    fn cut<'a>(&self, packed: &'a [T]) -> candle_core::Result<Vec<&'a [T]>> {
        if packed.len() != self.n_params() {
            candle_core::bail!(
                "fno: {} packed parameters, expected {}",
                packed.len(),
                self.n_params()
            );
        }
        let mut rest = packed;
        Ok(self
            .sizes()
            .into_iter()
            .map(|n| {
                let (mine, tail) = rest.split_at(n);
                rest = tail;
                mine
            })
            .collect())
    }

    /// One slice per variable grouped by the part of the network reading it.
    ///
    /// Errors: a slice of another size, or another number of them.
    fn params<'a>(&self, pieces: &[&'a [T]]) -> candle_core::Result<Params<'a, T>> {
        let sizes = self.sizes();
        if pieces.len() != sizes.len() {
            candle_core::bail!("fno: {} parameters, expected {}", pieces.len(), sizes.len());
        }
        for (i, (piece, &n)) in pieces.iter().zip(&sizes).enumerate() {
            if piece.len() != n {
                candle_core::bail!(
                    "fno: parameter {i} has {} values, expected {n}",
                    piece.len()
                );
            }
        }
        let four = |p: &[&'a [T]]| -> [&'a [T]; 4] { [p[0], p[1], p[2], p[3]] };
        let (lift, rest) = pieces.split_at(2);
        let (layers, head) = rest.split_at(4 * self.layers.len());
        Ok(Params {
            lift: [lift[0], lift[1]],
            layers: layers.chunks_exact(4).map(four).collect(),
            head: four(head),
        })
    }

    /// The network's output for `x`; with `keep`, each layer's input and the
    /// head's hidden activation are kept for the backward pass, else each
    /// activation is released as soon as the next layer has read it (what
    /// inference needs: at the Navier–Stokes test resolution of 256² one
    /// sample's activation is 2.1 GB, and a kept pass holds nine of them).
    fn run(&self, x: &[T], p: &Params<'_, T>, keep: bool) -> Vec<T> {
        let rows = x.len() / self.in_features;
        if !keep {
            return self.run_keeping_nothing(x, p, rows);
        }
        let mut h = self.scratch.recycled(rows * self.lift_width);
        self.lift(x, p.lift, &mut h);
        let mut saved = Vec::with_capacity(self.layers.len() + 2);
        for (layer, &params) in self.layers.iter().zip(&p.layers) {
            let z = layer.forward(&h, params);
            saved.push(std::mem::replace(&mut h, z));
        }
        let mut out = self.head.forward(&h, p.head);
        saved.push(h);
        if self.activate_last_layer {
            let activated = gelu_vec(&out);
            saved.push(std::mem::replace(&mut out, activated).into());
        }
        if let Ok(mut guard) = self.saved.lock() {
            *guard = saved;
        }
        out
    }

    /// [`NetworkOp::run`] without keeping anything: two buffers take turns
    /// as the layers' input and output.
    fn run_keeping_nothing(&self, x: &[T], p: &Params<'_, T>, rows: usize) -> Vec<T> {
        let mut h = vec![T::zero(); rows * self.lift_width];
        self.lift(x, p.lift, &mut h);
        let mut spare = Vec::new();
        for (layer, &params) in self.layers.iter().zip(&p.layers) {
            layer.infer_into(&mut h, params, &mut spare);
            std::mem::swap(&mut h, &mut spare);
        }
        drop(spare);
        let mut out = self.head.infer(&h, p.head);
        if self.activate_last_layer {
            gelu_in_place(&mut out);
        }
        out
    }

    /// The lifting layer `h = x·W + b` into `h` (`[rows, w₀]`, every entry
    /// overwritten).
    fn lift(&self, x: &[T], [weight, bias]: [&[T]; 2], h: &mut [T]) {
        let (f, w0) = (self.in_features, self.lift_width);
        h.par_chunks_mut(w0)
            .for_each(|row| row.copy_from_slice(bias));
        rows_times(h, true, x, f, dense(weight, f, w0));
    }

    /// Errors unless `dims` end in the network's input features.
    fn check_input(&self, dims: &[usize]) -> candle_core::Result<()> {
        if dims.last() != Some(&self.in_features) {
            candle_core::bail!(
                "fno: input {dims:?} does not have {} features",
                self.in_features
            );
        }
        Ok(())
    }

    /// The output's shape for an input of shape `dims`.
    fn output_shape(&self, dims: &[usize]) -> Shape {
        let mut shape = dims.to_vec();
        *shape.last_mut().expect("rank ≥ 1") = self.head.outputs();
        Shape::from(shape)
    }

    /// The network's output for `features`, reading the parameters where
    /// `variables` (in packing order) lie and keeping nothing for a backward
    /// pass: the result is a plain tensor, with no gradient to the variables.
    pub(crate) fn infer(
        &self,
        features: &Tensor,
        variables: &[Tensor],
    ) -> candle_core::Result<Tensor> {
        self.check_input(features.dims())?;
        let x = features.contiguous()?;
        let x_guard = x.storage_and_layout();
        let guards: Vec<_> = variables.iter().map(Tensor::storage_and_layout).collect();
        let pieces = values(&guards)?;
        let out = self.run(guarded::<T>(&x_guard)?, &self.params(&pieces)?, false);
        Tensor::from_vec(out, self.output_shape(features.dims()), features.device())
    }

    /// `(lift, per-layer, head)` parts of the packed parameter gradient `gp`.
    fn split_mut<'a>(&self, gp: &'a mut [T]) -> (&'a mut [T], Vec<&'a mut [T]>, &'a mut [T]) {
        let (lift, mut rest) = gp.split_at_mut(self.lift_params());
        let layers = self
            .layers
            .iter()
            .map(|l| {
                let n = l.sizes().iter().sum();
                let (mine, tail) = std::mem::take(&mut rest).split_at_mut(n);
                rest = tail;
                mine
            })
            .collect();
        (lift, layers, rest)
    }

    /// Writes the parameter gradient into `gp` if given (overwriting it:
    /// each part is written where it lies, so no gigabyte-sized vector is
    /// assembled and copied at the Navier–Stokes scale) and, if asked for,
    /// returns the features' gradient. Each saved activation is released as
    /// soon as its layer is done (lowering the peak), so a second backward
    /// pass through the same forward pass is an error.
    fn backward(
        &self,
        x: &[T],
        p: &Params<'_, T>,
        g: &[T],
        gp: Option<&mut [T]>,
        features_gradient: bool,
    ) -> candle_core::Result<Option<Vec<T>>> {
        let (g_lift, g_layers, g_head): (_, Vec<Option<&mut [T]>>, _) = match gp {
            Some(gp) => {
                let (lift, layers, head) = self.split_mut(gp);
                (
                    Some(lift),
                    layers.into_iter().map(Some).collect(),
                    Some(head),
                )
            }
            None => (None, self.layers.iter().map(|_| None).collect(), None),
        };
        let mut saved = match self.saved.lock() {
            Ok(mut guard) => std::mem::take(&mut *guard),
            Err(_) => candle_core::bail!("fno: activation store poisoned"),
        };
        let expected = self.layers.len() + 1 + usize::from(self.activate_last_layer);
        if saved.len() != expected {
            candle_core::bail!(
                "fno: backward needs a fresh forward pass (run backward once per loss)"
            );
        }
        let mut g = Cow::Borrowed(g);
        if self.activate_last_layer {
            let out = saved.pop().expect("length checked");
            times_slope(&out, g.to_mut());
        }
        let head_input = saved.pop().expect("length checked");
        let mut gh = self.head.backward(&head_input, p.head, &g, g_head)?;
        drop(head_input);
        for ((layer, &params), g_params) in self.layers.iter().zip(&p.layers).zip(g_layers).rev() {
            let input = saved.pop().expect("length checked");
            gh = layer.backward(&input, params, &gh, g_params);
        }
        let (f, w0) = (self.in_features, self.lift_width);
        if let Some(g_lift) = g_lift {
            let (g_weight, g_bias) = g_lift.split_at_mut(f * w0);
            g_weight.copy_from_slice(&gram(x, f, &gh, w0));
            g_bias.copy_from_slice(&column_sums(&gh, w0));
        }
        Ok(features_gradient.then(|| {
            // The lift is `x·W + b`: the features' gradient is `ḡ·Wᵀ`.
            let mut gx = vec![T::zero(); x.len()];
            rows_times(&mut gx, false, &gh, w0, dense(p.lift[0], f, w0).transpose());
            gx
        }))
    }
}

/// The values behind each of `guards`, in order.
fn values<'a, T: Real>(
    guards: &'a [(StorageRef<'_>, &Layout)],
) -> candle_core::Result<Vec<&'a [T]>> {
    guards.iter().map(guarded::<T>).collect()
}

impl<T: Real + Writable> CustomOp2 for NetworkOp<T> {
    fn name(&self) -> &'static str {
        "fno"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.check_input(l1.dims())?;
        let held = self.held_guards();
        let pieces = match &self.held {
            Some(_) => values(&held)?,
            None => self.cut(slice::<T>(s2, l2)?)?,
        };
        let out = self.run(slice::<T>(s1, l1)?, &self.params(&pieces)?, true);
        Ok((T::to_cpu_storage_owned(out), self.output_shape(l1.dims())))
    }

    /// Gradients for what is tracked (a variable, or computed from one): the
    /// parameters in training, where the features are data; the features
    /// when a model is differentiated in its initial conditions, where the
    /// parameters are given detached. What is not tracked is not computed.
    /// Tied to a slot's anchor, the anchor gets zero and the parameters'
    /// gradient goes to the slot.
    fn bwd(
        &self,
        arg1: &Tensor,
        arg2: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (x, g) = (arg1.contiguous()?, grad_res.contiguous()?);
        let features_wanted = arg1.track_op();
        let features_bar = |gx: Option<Vec<T>>| {
            gx.map(|gx| Tensor::from_vec(gx, arg1.shape(), arg1.device()))
                .transpose()
        };
        if let Some((slot, _)) = &self.held {
            let (x, g, held) = (
                x.storage_and_layout(),
                g.storage_and_layout(),
                self.held_guards(),
            );
            let (x, g, pieces) = (guarded(&x)?, guarded(&g)?, values(&held)?);
            let p = self.params(&pieces)?;
            let mut gx = None;
            slot.fill(|gp| {
                gx = self.backward(x, &p, g, Some(gp), features_wanted)?;
                Ok(())
            })?;
            return Ok((features_bar(gx)?, Some(arg2.zeros_like()?)));
        }
        let p = arg2.contiguous()?;
        let (gx, gp) = {
            let (x, p, g) = (
                x.storage_and_layout(),
                p.storage_and_layout(),
                g.storage_and_layout(),
            );
            let pieces = self.cut(guarded(&p)?)?;
            let mut gp = arg2.track_op().then(|| vec![T::zero(); self.n_params()]);
            let params = self.params(&pieces)?;
            let (x, g) = (guarded(&x)?, guarded(&g)?);
            let gx = self.backward(x, &params, g, gp.as_deref_mut(), features_wanted)?;
            (gx, gp)
        };
        let params_bar = gp.map(|gp| Tensor::from_vec(gp, p.shape(), p.device()));
        Ok((features_bar(gx)?, params_bar.transpose()?))
    }
}
