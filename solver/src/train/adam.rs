//! Adam (Kingma & Ba, 2015) in the form of optax's `adam`, which the reference
//! code uses: bias-corrected first and second moments and `ε` added to the
//! square root of the second moment. Written here rather than taken from
//! candle-nn so that its moments can be saved in checkpoints and restored for an
//! exact resume.

use std::collections::BTreeMap;

use candle_core::{Tensor, Var};

use crate::SolverError;

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
/// variable's name in the model's [`candle_nn::VarMap`].
#[derive(Debug, Clone)]
pub struct Adam {
    config: AdamConfig,
    count: u64,
    moments: BTreeMap<String, Moments>,
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
        }
    }

    /// Number of updates applied so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Applies one update with learning rate `lr` to every variable in `vars`.
    /// A variable without an entry in `grads` did not influence the loss: its
    /// gradient is zero (its moments still decay, as in optax).
    pub fn step(
        &mut self,
        vars: &BTreeMap<String, Var>,
        grads: &BTreeMap<String, Tensor>,
        lr: f64,
    ) -> Result<(), SolverError> {
        let AdamConfig { beta1, beta2, eps } = self.config;
        self.count += 1;
        let t = self.count as i32;
        let (c1, c2) = (1.0 - beta1.powi(t), 1.0 - beta2.powi(t));
        for (name, var) in vars {
            let g = match grads.get(name) {
                Some(g) => g.clone(),
                None => var.as_tensor().zeros_like()?,
            };
            let previous = match self.moments.remove(name) {
                Some(moments) => moments,
                None => Moments {
                    m: g.zeros_like()?,
                    v: g.zeros_like()?,
                },
            };
            let m = (previous.m.affine(beta1, 0.0)? + g.affine(1.0 - beta1, 0.0)?)?;
            let v = (previous.v.affine(beta2, 0.0)? + g.sqr()?.affine(1.0 - beta2, 0.0)?)?;
            let m_hat = m.affine(1.0 / c1, 0.0)?;
            let denom = v.affine(1.0 / c2, 0.0)?.sqrt()?.affine(1.0, eps)?;
            let update = (m_hat / denom)?.affine(lr, 0.0)?;
            var.set(&(var.as_tensor() - update)?)?;
            self.moments.insert(name.clone(), Moments { m, v });
        }
        Ok(())
    }

    /// The moments as named tensors (`adam/m/<var>`, `adam/v/<var>`), for a
    /// checkpoint; the count is saved separately.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        self.moments
            .iter()
            .flat_map(|(name, moments)| {
                [
                    (format!("{FIRST}{name}"), moments.m.clone()),
                    (format!("{SECOND}{name}"), moments.v.clone()),
                ]
            })
            .collect()
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
        })
    }
}

fn unpaired(name: &str, reason: &str) -> SolverError {
    SolverError::InvalidConfig {
        key: "optimiser state",
        value: name.to_owned(),
        reason: reason.to_owned(),
    }
}
