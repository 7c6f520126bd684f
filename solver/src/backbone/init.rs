//! Reproducible parameter initialisation behind candle's `VarBuilder`.
//!
//! candle's own random initialisers draw from an unseeded generator; training
//! must be reproducible from the scenario seed (and resumable bit for bit), so
//! this backend draws every new variable from one seeded ChaCha stream, in the
//! order the model asks for them, and registers it in a [`VarMap`] under its
//! scoped name (`layers.2.spectral.re`, …).

use std::sync::Mutex;

use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A `VarBuilder` backend that creates missing variables from a seeded stream.
pub struct SeededVars {
    vars: VarMap,
    rng: Mutex<ChaCha8Rng>,
}

impl SeededVars {
    /// A `VarBuilder` whose new variables land in `vars`, drawn from `seed`.
    pub fn builder(vars: &VarMap, seed: u64, dtype: DType) -> VarBuilder<'static> {
        let backend = Self {
            vars: vars.clone(),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
        };
        VarBuilder::from_backend(Box::new(backend), dtype, Device::Cpu)
    }

    fn draw(&self, n: usize, init: Init) -> candle_core::Result<Vec<f64>> {
        let mut rng = self.rng.lock().expect("initialiser lock");
        Ok(match init {
            Init::Const(v) => vec![v; n],
            Init::Uniform { lo, up } => (0..n).map(|_| rng.random_range(lo..up)).collect(),
            Init::Randn { mean, stdev } => {
                (0..n).map(|_| mean + stdev * normal(&mut rng)).collect()
            }
            other => candle_core::bail!("initialiser {other:?} is not used by tessera"),
        })
    }
}

/// One standard normal draw (Box–Muller; `rand_distr` is not a dependency).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

impl SimpleBackend for SeededVars {
    fn get(
        &self,
        s: Shape,
        name: &str,
        h: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let mut vars = self.vars.data().lock().expect("var map lock");
        if let Some(var) = vars.get(name) {
            if var.shape() != &s {
                candle_core::bail!("variable {name}: shape {:?}, requested {s:?}", var.shape());
            }
            return Ok(var.as_tensor().clone());
        }
        let values = self.draw(s.elem_count(), h)?;
        let tensor = Tensor::from_vec(values, s, dev)?.to_dtype(dtype)?;
        let var = Var::from_tensor(&tensor)?;
        let out = var.as_tensor().clone();
        vars.insert(name.to_owned(), var);
        Ok(out)
    }

    fn get_unchecked(
        &self,
        name: &str,
        dtype: DType,
        _dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let vars = self.vars.data().lock().expect("var map lock");
        match vars.get(name) {
            Some(var) => var.as_tensor().to_dtype(dtype),
            None => candle_core::bail!("no variable {name}"),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.vars
            .data()
            .lock()
            .expect("var map lock")
            .contains_key(name)
    }
}
