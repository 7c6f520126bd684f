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

/// A `VarBuilder` backend that creates missing variables from a seeded stream
/// (or as zeros, for a checkpoint to overwrite).
pub struct SeededVars {
    vars: VarMap,
    /// The stream new variables are drawn from; `None`: they are zeros.
    rng: Option<Mutex<ChaCha8Rng>>,
}

impl SeededVars {
    /// A `VarBuilder` whose new variables land in `vars`, drawn from `seed`.
    pub fn builder(vars: &VarMap, seed: u64, dtype: DType) -> VarBuilder<'static> {
        let rng = Some(Mutex::new(ChaCha8Rng::seed_from_u64(seed)));
        Self::backend(vars, rng, dtype)
    }

    /// A `VarBuilder` whose new variables land in `vars` as zeros, for a
    /// checkpoint to set: no draws (3 s for the 134 M parameters of the
    /// Navier–Stokes paper scale), and zeroed pages that stay untouched
    /// until the checkpoint's values are written.
    pub fn placeholders(vars: &VarMap, dtype: DType) -> VarBuilder<'static> {
        Self::backend(vars, None, dtype)
    }

    fn backend(vars: &VarMap, rng: Option<Mutex<ChaCha8Rng>>, dtype: DType) -> VarBuilder<'static> {
        let backend = Self {
            vars: vars.clone(),
            rng,
        };
        VarBuilder::from_backend(Box::new(backend), dtype, Device::Cpu)
    }

    fn draw(rng: &Mutex<ChaCha8Rng>, n: usize, init: Init) -> candle_core::Result<Vec<f64>> {
        let mut rng = rng.lock().expect("initialiser lock");
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
        let var = match &self.rng {
            Some(rng) => {
                let values = Self::draw(rng, s.elem_count(), h)?;
                Var::from_tensor(&Tensor::from_vec(values, s, dev)?.to_dtype(dtype)?)?
            }
            None => Var::zeros(s, dtype, dev)?,
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Placeholders are zeros of the requested shape and dtype, whatever
    /// the initialiser, and draw nothing: a variable already in the map is
    /// returned as it is, and a seeded builder over the same map still
    /// draws what a fresh one draws.
    #[test]
    fn placeholders_are_zeros_and_keep_existing_variables() {
        let vars = VarMap::new();
        let seeded = SeededVars::builder(&vars, 5, DType::F64);
        let kept = seeded
            .get_with_hints((2, 3), "kept", Init::Const(1.5))
            .unwrap();
        let placeholders = SeededVars::placeholders(&vars, DType::F32);
        let init = Init::Uniform { lo: 1.0, up: 2.0 };
        let zero = placeholders.get_with_hints((4, 5), "zero", init).unwrap();
        assert_eq!((zero.dims(), zero.dtype()), (&[4, 5][..], DType::F32));
        assert!(
            zero.flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
                .iter()
                .all(|&v| v == 0.0)
        );
        let again = placeholders.get_with_hints((2, 3), "kept", init).unwrap();
        let values = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        assert_eq!(values(&again), values(&kept));

        let draw = |vars: &VarMap| {
            let builder = SeededVars::builder(vars, 9, DType::F64);
            values(&builder.get_with_hints(7, "drawn", init).unwrap())
        };
        let fresh = draw(&VarMap::new());
        assert_eq!(draw(&vars), fresh);
        assert!(fresh.iter().all(|&v| (1.0..2.0).contains(&v)));
    }
}
