//! Adam (Kingma & Ba, 2015) in the form of optax's `adam`, which the reference
//! code uses: bias-corrected first and second moments and `ε` added to the
//! square root of the second moment. Written here rather than taken from
//! candle-nn so that its moments can be saved in checkpoints and restored for an
//! exact resume.

use std::collections::BTreeMap;

use candle_core::{DType, Tensor, Var, WithDType};
use rayon::prelude::*;

use crate::SolverError;
use crate::backbone::storage::{Writable, guarded, with_values_mut};

#[cfg(feature = "cuda")]
pub(crate) mod device;

/// Adam's constants (defaults: optax's, as in the reference code).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to `√v̂` to avoid dividing by zero.
    pub eps: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// First and second moments of one variable.
#[derive(Debug, Clone)]
struct Moments {
    m: Tensor,
    v: Tensor,
}

/// The optimiser state: the update count and per-variable moments, keyed by the
/// variable's name in the model's [`candle_nn::VarMap`]. The moments live on
/// the host, or (feature `cuda`) on the GPU of a backbone that runs there,
/// from its first update there ([`Adam::state`] fetches them).
#[derive(Debug)]
pub struct Adam {
    config: AdamConfig,
    count: u64,
    moments: BTreeMap<String, Moments>,
    #[cfg(feature = "cuda")]
    device: Option<device::OnDevice>,
}

/// Prefixes of the moment tensors' names in [`Adam::state`].
const FIRST: &str = "adam/m/";
const SECOND: &str = "adam/v/";

impl Adam {
    /// A fresh optimiser (no updates yet).
    pub fn new(config: AdamConfig) -> Self {
        Self {
            config,
            count: 0,
            moments: BTreeMap::new(),
            #[cfg(feature = "cuda")]
            device: None,
        }
    }

    /// Number of updates applied so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Applies one update with learning rate `lr` to every variable in `vars`.
    /// A variable without an entry in `grads` did not influence the loss: its
    /// gradient is zero (its moments still decay, as in optax).
    ///
    /// Each variable is updated in one pass over its values, in parallel
    /// chunks, in the variable's dtype: at the paper's
    /// 4.75 M parameters a chain of whole-tensor operations (one allocation
    /// and one sweep each) made the optimiser a sixth of a CPU step. Moments
    /// on a GPU come back to the host first.
    pub fn step(
        &mut self,
        vars: &BTreeMap<String, Var>,
        grads: &BTreeMap<String, Tensor>,
        lr: f64,
    ) -> Result<(), SolverError> {
        self.step_clipped(vars, grads, lr, None)
    }

    /// [`Adam::step`] with every gradient multiplied by `clip` first, if
    /// given, as `g · clip + 0` in the variable's dtype (candle's `affine`,
    /// the tensor form of clipping by global norm), without a scaled copy of
    /// the gradients. The variables and their moments are updated in place.
    pub fn step_clipped(
        &mut self,
        vars: &BTreeMap<String, Var>,
        grads: &BTreeMap<String, Tensor>,
        lr: f64,
        clip: Option<f64>,
    ) -> Result<(), SolverError> {
        #[cfg(feature = "cuda")]
        self.fetch_moments()?;
        self.check(vars, grads)?;
        self.count += 1;
        let rates = Rates::new(&self.config, self.count, lr);
        for (name, var) in vars {
            let previous = self.moments.remove(name);
            let moments = match var.dtype() {
                DType::F64 => update_var::<f64>(var, grads.get(name), previous, &rates, clip)?,
                _ => update_var::<f32>(var, grads.get(name), previous, &rates, clip)?,
            };
            self.moments.insert(name.clone(), moments);
        }
        Ok(())
    }

    /// Checks, before anything changes, that every variable is f32 or f64
    /// and that its gradient and moments have its number of values, so that
    /// a bad step leaves the variables and the optimiser as they were.
    fn check(
        &self,
        vars: &BTreeMap<String, Var>,
        grads: &BTreeMap<String, Tensor>,
    ) -> Result<(), SolverError> {
        for (name, var) in vars {
            if !matches!(var.dtype(), DType::F32 | DType::F64) {
                return Err(SolverError::InvalidConfig {
                    key: "model.dtype",
                    value: format!("{:?}", var.dtype()),
                    reason: format!("Adam updates f32 and f64 variables ({name})"),
                });
            }
            let n = var.elem_count();
            let moments = self.moments.get(name);
            let sizes = [
                ("Adam gradient (the variable's size)", grads.get(name)),
                (
                    "Adam first moment (the variable's size)",
                    moments.map(|m| &m.m),
                ),
                (
                    "Adam second moment (the variable's size)",
                    moments.map(|m| &m.v),
                ),
            ];
            for (what, tensor) in sizes {
                let Some(t) = tensor else { continue };
                if t.elem_count() != n {
                    return Err(SolverError::ShapeMismatch {
                        what,
                        expected: vec![n],
                        got: vec![t.elem_count()],
                    });
                }
                if t.dtype() != var.dtype() {
                    return Err(SolverError::InvalidConfig {
                        key: "optimiser state",
                        value: name.clone(),
                        reason: format!("{what}: {:?} for a {:?} variable", t.dtype(), var.dtype()),
                    });
                }
            }
        }
        Ok(())
    }

    /// The moments as named tensors (`adam/m/<var>`, `adam/v/<var>`), for a
    /// checkpoint; the count is saved separately. Copies, which later steps
    /// leave as they are: the optimiser updates its own in place.
    ///
    /// Errors: moments on a GPU that cannot be read back.
    pub fn state(&self) -> Result<Vec<(String, Tensor)>, SolverError> {
        self.lent_state()?
            .into_iter()
            .map(|(name, tensor)| Ok((name, tensor.copy()?)))
            .collect()
    }

    /// [`Adam::state`] without the copies: on the host the tensors share the
    /// optimiser's storage, so they hold its moments only while it is
    /// borrowed (no step between), which is all a checkpoint written at
    /// once needs. The copies would be twice the parameters more at the
    /// run's peak (2 GB at the Navier–Stokes paper scale). Moments on a GPU
    /// are copied to the host.
    ///
    /// Errors: moments on a GPU that cannot be read back.
    pub(crate) fn lent_state(&self) -> Result<Vec<(String, Tensor)>, SolverError> {
        #[cfg_attr(not(feature = "cuda"), allow(unused_mut))]
        let mut moments = self.moments.clone();
        #[cfg(feature = "cuda")]
        if let Some(device) = &self.device {
            moments.extend(device.host_moments()?);
        }
        Ok(moments
            .into_iter()
            .flat_map(|(name, Moments { m, v })| {
                [
                    (format!("{FIRST}{name}"), m),
                    (format!("{SECOND}{name}"), v),
                ]
            })
            .collect())
    }

    /// An optimiser continuing from `count` updates with the moments that
    /// [`Adam::state`] returned. Every first moment needs its second one and
    /// vice versa; names outside the two prefixes are an error.
    pub fn restore(
        config: AdamConfig,
        count: u64,
        state: impl IntoIterator<Item = (String, Tensor)>,
    ) -> Result<Self, SolverError> {
        let mut first = BTreeMap::new();
        let mut second = BTreeMap::new();
        for (key, tensor) in state {
            if let Some(name) = key.strip_prefix(FIRST) {
                first.insert(name.to_owned(), tensor);
            } else if let Some(name) = key.strip_prefix(SECOND) {
                second.insert(name.to_owned(), tensor);
            } else {
                return Err(unpaired(&key, "is not an Adam moment"));
            }
        }
        let mut moments = BTreeMap::new();
        for (name, m) in first {
            let v = second
                .remove(&name)
                .ok_or_else(|| unpaired(&name, "has a first moment but no second"))?;
            if m.shape() != v.shape() {
                return Err(unpaired(&name, "has moments of different shapes"));
            }
            moments.insert(name, Moments { m, v });
        }
        if let Some(name) = second.keys().next() {
            return Err(unpaired(name, "has a second moment but no first"));
        }
        Ok(Self {
            config,
            count,
            moments,
            #[cfg(feature = "cuda")]
            device: None,
        })
    }
}

/// One step's constants, as the scalar arguments of the operations the update
/// is written in (`x · a + b` with `a`, `b` rounded to the variable's dtype).
struct Rates {
    beta1: f64,
    one_minus_beta1: f64,
    beta2: f64,
    one_minus_beta2: f64,
    /// `1 / (1 − β₁ᵗ)`.
    unbias1: f64,
    /// `1 / (1 − β₂ᵗ)`.
    unbias2: f64,
    eps: f64,
    lr: f64,
}

impl Rates {
    fn new(config: &AdamConfig, count: u64, lr: f64) -> Self {
        let AdamConfig { beta1, beta2, eps } = *config;
        let t = count as i32;
        Self {
            beta1,
            one_minus_beta1: 1.0 - beta1,
            beta2,
            one_minus_beta2: 1.0 - beta2,
            unbias1: 1.0 / (1.0 - beta1.powi(t)),
            unbias2: 1.0 / (1.0 - beta2.powi(t)),
            eps,
            lr,
        }
    }
}

/// A scalar Adam updates in: candle's arithmetic plus a square root.
trait AdamScalar: WithDType + Writable {
    fn sqrt(self) -> Self;
}

impl AdamScalar for f32 {
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
}

impl AdamScalar for f64 {
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
}

/// Values per parallel task: large enough to amortise a task, small enough to
/// spread a layer's weights over the cores. The update is elementwise, so the
/// chunking never changes a bit.
const CHUNK: usize = 1 << 14;

/// Updates `var` and its moments in place for gradient `grad` (zero if
/// `None`, scaled by `clip` if given) and returns the moments (new zeros
/// for a variable without any yet).
fn update_var<T: AdamScalar>(
    var: &Var,
    grad: Option<&Tensor>,
    previous: Option<Moments>,
    rates: &Rates,
    clip: Option<f64>,
) -> Result<Moments, SolverError> {
    let zeros = || Tensor::zeros(var.shape(), var.dtype(), var.device());
    let grad = match grad {
        Some(g) => g.contiguous()?,
        None => zeros()?,
    };
    let moments = match previous {
        Some(moments) => moments,
        None => Moments {
            m: zeros()?,
            v: zeros()?,
        },
    };
    let held = grad.storage_and_layout();
    let g = guarded::<T>(&held)?;
    with_values_mut(var.as_tensor(), |p: &mut [T]| {
        with_values_mut(&moments.m, |m: &mut [T]| {
            with_values_mut(&moments.v, |v: &mut [T]| match clip {
                Some(scale) => {
                    let (s, zero) = (T::from_f64(scale), T::from_f64(0.0));
                    update_all(rates, g, [p, m, v], |g| g * s + zero)
                }
                None => update_all(rates, g, [p, m, v], |g| g),
            })
        })
    })????;
    Ok(moments)
}

/// [`update_chunk`] over every value, in parallel chunks.
fn update_all<T: AdamScalar>(
    rates: &Rates,
    g: &[T],
    [p, m, v]: [&mut [T]; 3],
    grad: impl Fn(T) -> T + Sync,
) -> candle_core::Result<()> {
    if [p.len(), m.len(), v.len()] != [g.len(); 3] {
        candle_core::bail!("Adam: parameters, gradient and moments differ in size");
    }
    p.par_chunks_mut(CHUNK)
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .zip(g.par_chunks(CHUNK))
        .for_each(|(((p, m), v), g)| update_chunk(rates, g, [p, m, v], &grad));
    Ok(())
}

/// Adam on one chunk, in place: `[p, m, v]` become `[p′, m′, v′]` for the
/// gradient `grad(g)`. Written as the operations of the textbook form on
/// tensors (`x · a + b`, then sums, squares, a square root and a quotient,
/// each rounded to `T`), in the same order, so it gives the same bits as that
/// form (the unit tests check this).
fn update_chunk<T: AdamScalar>(
    rates: &Rates,
    g: &[T],
    [p, m, v]: [&mut [T]; 3],
    grad: impl Fn(T) -> T,
) {
    let c = |x: f64| T::from_f64(x);
    let (b1, nb1, b2, nb2) = (
        c(rates.beta1),
        c(rates.one_minus_beta1),
        c(rates.beta2),
        c(rates.one_minus_beta2),
    );
    let (u1, u2, eps, lr, zero, one) = (
        c(rates.unbias1),
        c(rates.unbias2),
        c(rates.eps),
        c(rates.lr),
        c(0.0),
        c(1.0),
    );
    for i in 0..p.len() {
        let g = grad(g[i]);
        let m1 = (m[i] * b1 + zero) + (g * nb1 + zero);
        let v1 = (v[i] * b2 + zero) + ((g * g) * nb2 + zero);
        let m_hat = m1 * u1 + zero;
        let denom = (v1 * u2 + zero).sqrt() * one + eps;
        let update = (m_hat / denom) * lr + zero;
        p[i] -= update;
        m[i] = m1;
        v[i] = v1;
    }
}

fn unpaired(name: &str, reason: &str) -> SolverError {
    SolverError::InvalidConfig {
        key: "optimiser state",
        value: name.to_owned(),
        reason: reason.to_owned(),
    }
}
