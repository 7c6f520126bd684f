//! Adam (Kingma & Ba, 2015) in the form of optax's `adam`, which the reference
//! code uses: bias-corrected first and second moments and `ε` added to the
//! square root of the second moment. Written here rather than taken from
//! candle-nn so that its moments can be saved in checkpoints and restored for an
//! exact resume.

use std::collections::BTreeMap;

use candle_core::{DType, Tensor, Var, WithDType};
use rayon::prelude::*;

use crate::SolverError;
use crate::backbone::storage::guarded;

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
        #[cfg(feature = "cuda")]
        self.fetch_moments()?;
        self.check(vars, grads)?;
        self.count += 1;
        let rates = Rates::new(&self.config, self.count, lr);
        for (name, var) in vars {
            let previous = self.moments.remove(name);
            let moments = match var.dtype() {
                DType::F64 => update_var::<f64>(var, grads.get(name), previous, &rates)?,
                _ => update_var::<f32>(var, grads.get(name), previous, &rates)?,
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
    /// checkpoint; the count is saved separately.
    ///
    /// Errors: moments on a GPU that cannot be read back.
    pub fn state(&self) -> Result<Vec<(String, Tensor)>, SolverError> {
        #[cfg_attr(not(feature = "cuda"), allow(unused_mut))]
        let mut moments = self.moments.clone();
        #[cfg(feature = "cuda")]
        if let Some(device) = &self.device {
            moments.extend(device.host_moments()?);
        }
        Ok(moments
            .iter()
            .flat_map(|(name, moments)| {
                [
                    (format!("{FIRST}{name}"), moments.m.clone()),
                    (format!("{SECOND}{name}"), moments.v.clone()),
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
trait AdamScalar: WithDType {
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

/// Updates `var` in place for gradient `grad` (zero if `None`) and returns its
/// new moments.
fn update_var<T: AdamScalar>(
    var: &Var,
    grad: Option<&Tensor>,
    previous: Option<Moments>,
    rates: &Rates,
) -> Result<Moments, SolverError> {
    let n = var.elem_count();
    let zeros = || Tensor::zeros(var.shape(), var.dtype(), var.device());
    let grad = match grad {
        Some(g) => g.contiguous()?,
        None => zeros()?,
    };
    let Moments { m, v } = match previous {
        Some(moments) => moments,
        None => Moments {
            m: zeros()?,
            v: zeros()?,
        },
    };
    let (mut p1, mut m1, mut v1) = (vec![T::zero(); n], vec![T::zero(); n], vec![T::zero(); n]);
    {
        let guards = [var.as_tensor(), &grad, &m, &v].map(|t| t.storage_and_layout());
        let [p0, g, m0, v0] = &guards;
        let (p0, g, m0, v0) = (guarded::<T>(p0)?, guarded(g)?, guarded(m0)?, guarded(v0)?);
        p1.par_chunks_mut(CHUNK)
            .zip(m1.par_chunks_mut(CHUNK))
            .zip(v1.par_chunks_mut(CHUNK))
            .enumerate()
            .for_each(|(k, ((p1, m1), v1))| {
                let range = k * CHUNK..k * CHUNK + p1.len();
                update_chunk(
                    rates,
                    [
                        &p0[range.clone()],
                        &g[range.clone()],
                        &m0[range.clone()],
                        &v0[range],
                    ],
                    [p1, m1, v1],
                );
            });
    }
    let shape = var.shape().clone();
    var.set(&Tensor::from_vec(p1, shape.clone(), var.device())?)?;
    Ok(Moments {
        m: Tensor::from_vec(m1, shape.clone(), var.device())?,
        v: Tensor::from_vec(v1, shape, var.device())?,
    })
}

/// Adam on one chunk: `[p, g, m, v]` in, `[p′, m′, v′]` out. Written as the
/// operations of the textbook form on tensors (`x · a + b`, then sums,
/// squares, a square root and a quotient, each rounded to `T`), in the same
/// order, so it gives the same bits as that form (the unit tests check this).
fn update_chunk<T: AdamScalar>(
    rates: &Rates,
    [p0, g, m0, v0]: [&[T]; 4],
    [p1, m1, v1]: [&mut [T]; 3],
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
    for i in 0..p0.len() {
        let m = (m0[i] * b1 + zero) + (g[i] * nb1 + zero);
        let v = (v0[i] * b2 + zero) + ((g[i] * g[i]) * nb2 + zero);
        let m_hat = m * u1 + zero;
        let denom = (v * u2 + zero).sqrt() * one + eps;
        let update = (m_hat / denom) * lr + zero;
        p1[i] = p0[i] - update;
        m1[i] = m;
        v1[i] = v;
    }
}

fn unpaired(name: &str, reason: &str) -> SolverError {
    SolverError::InvalidConfig {
        key: "optimiser state",
        value: name.to_owned(),
        reason: reason.to_owned(),
    }
}
