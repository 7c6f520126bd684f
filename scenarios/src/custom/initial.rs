//! The `[initial]` table: a family of initial conditions for the reference
//! solver, `u0(x, (y); parameters, random parameters)`, so that a definition
//! carries its own ground-truth data set and not only its residual.
//!
//! The expression is compiled by [`tessera_constraints::expr`] like every other
//! expression of the file (same grammar, same line:column errors); the random
//! parameters are extra input variables, drawn once per sample in the order
//! written, so a sample is a function of the rng it is handed and nothing else.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tessera_constraints::expr::{Scope, Tape};
use toml::Spanned;

use super::error::CustomPdeError;
use super::pde::{Builder, RESERVED};
use super::spec::{InitialSpec, RandomSpec};
use crate::mol::InitialFamily;

/// The distribution of a random parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Distribution {
    /// Uniform on `[lo, hi)`.
    Uniform {
        /// Lower end.
        lo: f64,
        /// Upper end (`lo` when equal: a fixed value).
        hi: f64,
    },
    /// Normal (Gaussian).
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation (0: always the mean).
        std: f64,
    },
}

impl Distribution {
    /// One draw.
    pub fn draw(&self, rng: &mut impl Rng) -> f64 {
        match *self {
            Self::Uniform { lo, hi } => lo + (hi - lo) * rng.random::<f64>(),
            Self::Normal { mean, std } => mean + std * standard_normal(rng),
        }
    }
}

/// A standard normal number (Box–Muller; `1 − U` lies in `(0, 1]`, so the
/// logarithm is finite).
fn standard_normal(rng: &mut impl Rng) -> f64 {
    let radius = (-2.0 * (1.0 - rng.random::<f64>()).ln()).sqrt();
    radius * (std::f64::consts::TAU * rng.random::<f64>()).cos()
}

/// One random parameter of the initial condition.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomParameter {
    /// Its name in `u0`.
    pub name: String,
    /// What it is drawn from.
    pub distribution: Distribution,
}

/// A compiled `[initial]` table: a [`InitialFamily`] for [`crate::mol::generate`].
#[derive(Debug, Clone, PartialEq)]
pub struct InitialCondition {
    space_dims: usize,
    /// Inputs: `x, (y)`, then the random parameters.
    u0: Tape,
    random: Vec<RandomParameter>,
}

impl InitialCondition {
    /// The random parameters, in the order they are drawn.
    pub fn random(&self) -> &[RandomParameter] {
        &self.random
    }

    /// One draw of the random parameters (in [`InitialCondition::random`] order).
    pub fn draw(&self, rng: &mut impl Rng) -> Vec<f64> {
        self.random
            .iter()
            .map(|p| p.distribution.draw(rng))
            .collect()
    }

    /// `u0` at the space point `point` (`[x, (y)]`) for the drawn parameters
    /// `draw`; `None` if either has the wrong length.
    pub fn value(&self, point: &[f64], draw: &[f64]) -> Option<f64> {
        if point.len() != self.space_dims || draw.len() != self.random.len() {
            return None;
        }
        let inputs: Vec<f64> = point.iter().chain(draw).copied().collect();
        let mut out = [0.0];
        self.u0.eval(&inputs, &mut out);
        Some(out[0])
    }
}

impl InitialFamily for InitialCondition {
    /// One draw of the parameters, then `u0` at every point. A domain of another
    /// dimension than the definition's gets no values, which the solver reports
    /// as a shape mismatch.
    fn sample(&self, rng: &mut ChaCha8Rng, coordinates: &[f64], dims: usize) -> Vec<f64> {
        if dims != self.space_dims {
            return Vec::new();
        }
        let draw = self.draw(rng);
        coordinates
            .chunks_exact(dims)
            .filter_map(|point| self.value(point, &draw))
            .collect()
    }
}

impl Builder<'_> {
    /// Checks and compiles the `[initial]` table: random parameters with valid
    /// ranges and fresh names, and `u0` over the coordinates, the parameters,
    /// `pi` and the random parameters.
    pub(super) fn initial(
        &self,
        spec: &InitialSpec,
        space_dims: usize,
        taken: &dyn Fn(&str) -> bool,
        with_constants: &dyn Fn(Scope) -> Scope,
    ) -> Result<InitialCondition, CustomPdeError> {
        let mut written: Vec<(&String, &Spanned<RandomSpec>)> = spec.random.iter().collect();
        written.sort_by_key(|(_, d)| d.span().start);
        let random = written
            .into_iter()
            .map(|(name, d)| {
                if taken(name) || RESERVED.contains(&name.as_str()) || name == "pi" {
                    return Err(self.invalid(
                        d.span(),
                        format!(
                            "random parameter `{name}` has the name of a term, a parameter, `pi` or one of {RESERVED:?}"
                        ),
                    ));
                }
                let distribution = distribution(*d.get_ref())
                    .map_err(|m| self.invalid(d.span(), format!("random parameter `{name}`: {m}")))?;
                Ok(RandomParameter {
                    name: name.clone(),
                    distribution,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut scope = ["x", "y"][..space_dims]
            .iter()
            .fold(Scope::new(), |s, v| s.variable(*v));
        scope = random.iter().fold(scope, |s, p| s.variable(p.name.clone()));
        // A parameter named `pi` is looked up first and wins.
        scope = with_constants(scope).constant("pi", std::f64::consts::PI);
        let u0 = self.compile(&spec.u0, &scope, "initial condition")?;
        if u0.n_outputs() != 1 {
            return Err(self.invalid(
                spec.u0.span(),
                format!(
                    "the initial condition has {} rows; write one expression (and `let`s)",
                    u0.n_outputs()
                ),
            ));
        }
        Ok(InitialCondition {
            space_dims,
            u0,
            random,
        })
    }
}

/// A distribution with finite numbers and a valid range, or why not.
fn distribution(d: RandomSpec) -> Result<Distribution, String> {
    let (RandomSpec::Uniform([a, b]) | RandomSpec::Normal([a, b])) = d;
    if !(a.is_finite() && b.is_finite()) {
        return Err(format!("[{a}, {b}] is not finite"));
    }
    match d {
        RandomSpec::Uniform(_) if a > b => Err(format!("uniform range [{a}, {b}] has lo > hi")),
        RandomSpec::Uniform(_) => Ok(Distribution::Uniform { lo: a, hi: b }),
        RandomSpec::Normal(_) if b < 0.0 => Err(format!(
            "normal [{a}, {b}] has a negative standard deviation"
        )),
        RandomSpec::Normal(_) => Ok(Distribution::Normal { mean: a, std: b }),
    }
}
