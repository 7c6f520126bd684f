//! The `[initial]` table: a family of initial conditions for the reference
//! solver, so that a definition carries its own ground-truth data set and not
//! only its residual. Two families:
//!
//! - **expression** (the default): `u0(x, (y); parameters, random parameters)`.
//!   The expression is compiled by [`tessera_constraints::expr`] like every
//!   other expression of the file (same grammar, same line:column errors); the
//!   random parameters are extra input variables, drawn once per sample in the
//!   order written.
//! - **grf**: `u0 = mean + amplitude · w`, `w` the mean-free periodic Gaussian
//!   random field the built-in Navier–Stokes scenario draws its vorticity from
//!   ([`crate::navier_stokes::random_field`], the same sampler), on 1-D or 2-D
//!   domains whose every axis is periodic. Its kernel is a function of the
//!   displacement in periods, so `length_scale` is measured in periods (on the
//!   unit square, the Navier–Stokes scenario's `ℓ = 0.8`).
//!
//! Either way a sample is a function of the rng it is handed and nothing else.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tessera_constraints::expr::{Scope, Tape};
use toml::Spanned;

use super::error::CustomPdeError;
use super::pde::{Builder, RESERVED};
use super::spec::{InitialSpec, RandomSpec};
use crate::mol::InitialFamily;
use crate::navier_stokes::PeriodicGrf;
use crate::navier_stokes::random_field::LENGTH_SCALE;

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
pub enum InitialCondition {
    /// `family = "expression"`: an expression with random parameters.
    Expression(ExpressionFamily),
    /// `family = "grf"`: a periodic Gaussian random field.
    Grf(GrfFamily),
}

impl InitialFamily for InitialCondition {
    fn sample(&self, rng: &mut ChaCha8Rng, coordinates: &[f64], dims: usize) -> Vec<f64> {
        match self {
            Self::Expression(family) => family.sample(rng, coordinates, dims),
            Self::Grf(family) => family.sample(rng, coordinates, dims),
        }
    }
}

/// The expression family: `u0` over the space coordinates and the random
/// parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpressionFamily {
    space_dims: usize,
    /// Inputs: `x, (y)`, then the random parameters.
    u0: Tape,
    random: Vec<RandomParameter>,
}

impl ExpressionFamily {
    /// The random parameters, in the order they are drawn.
    pub fn random(&self) -> &[RandomParameter] {
        &self.random
    }

    /// One draw of the random parameters (in [`ExpressionFamily::random`] order).
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

impl InitialFamily for ExpressionFamily {
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

/// The grf family: `mean + amplitude · w`, `w` a draw of [`PeriodicGrf`] with
/// length scale `length_scale` (in periods) on the grid of the coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GrfFamily {
    space_dims: usize,
    length_scale: f64,
    amplitude: f64,
    mean: f64,
}

impl GrfFamily {
    /// The kernel's length scale, in periods.
    pub fn length_scale(&self) -> f64 {
        self.length_scale
    }

    /// The factor of the unit-kernel field.
    pub fn amplitude(&self) -> f64 {
        self.amplitude
    }

    /// The spatial mean of every sample.
    pub fn mean(&self) -> f64 {
        self.mean
    }
}

impl InitialFamily for GrfFamily {
    /// One field on the grid the coordinates lay out. The sampler's kernel is
    /// diagonal in the grid's Fourier modes only on a uniform periodic tensor
    /// grid (the solver's), so coordinates that are not one, or of another
    /// dimension than the definition's, get no values, which the solver
    /// reports as a shape mismatch.
    fn sample(&self, rng: &mut ChaCha8Rng, coordinates: &[f64], dims: usize) -> Vec<f64> {
        let Some((nx, ny)) = (dims == self.space_dims)
            .then(|| tensor_grid(coordinates, dims))
            .flatten()
        else {
            return Vec::new();
        };
        // Built per draw: the grid is only known here, and an FFT of the kernel
        // costs far less than the solve the sample feeds.
        let Ok(grf) = PeriodicGrf::grid(nx, ny, self.length_scale) else {
            return Vec::new();
        };
        grf.draw(rng)
            .into_iter()
            .map(|w| self.mean + self.amplitude * w)
            .collect()
    }
}

/// The shape `(nx, ny)` of the uniform row-major tensor grid (`y` fastest; 1-D:
/// `ny = 1`) that `coordinates` (`[points, dims]`) lay out, if they do.
fn tensor_grid(coordinates: &[f64], dims: usize) -> Option<(usize, usize)> {
    let points: Vec<&[f64]> = coordinates.chunks_exact(dims).collect();
    let first = points.first()?;
    let ny = match dims {
        1 => 1,
        2 => points.iter().take_while(|p| p[0] == first[0]).count(),
        _ => return None,
    };
    let nx = points.len() / ny;
    let axis = |a: usize, n: usize, stride: usize| -> Vec<f64> {
        (0..n).map(|i| points[i * stride][a]).collect()
    };
    let xs = axis(0, nx, ny);
    let ys = if dims == 2 {
        axis(1, ny, 1)
    } else {
        Vec::new()
    };
    let tensor = nx * ny == points.len()
        && points
            .iter()
            .enumerate()
            .all(|(p, point)| point[0] == xs[p / ny] && (dims == 1 || point[1] == ys[p % ny]));
    (tensor && uniform(&xs) && (dims == 1 || uniform(&ys))).then_some((nx, ny))
}

/// Whether `v` is increasing with equal steps (to round-off).
fn uniform(v: &[f64]) -> bool {
    let Some(h) = v.get(1).map(|b| b - v[0]) else {
        return true;
    };
    h > 0.0
        && v.windows(2)
            .all(|w| ((w[1] - w[0]) - h).abs() <= 1e-9 * h.max(w[1].abs()))
}

impl Builder<'_> {
    /// Checks and compiles the `[initial]` table of a definition whose space
    /// axes are `periodic` (one flag per axis): its family, that family's keys,
    /// and no key of the other family.
    pub(super) fn initial(
        &self,
        spec: &Spanned<InitialSpec>,
        periodic: &[bool],
        taken: &dyn Fn(&str) -> bool,
        with_constants: &dyn Fn(Scope) -> Scope,
    ) -> Result<InitialCondition, CustomPdeError> {
        let table = spec.get_ref();
        let (grf, family) = match &table.family {
            None => (false, "expression"),
            Some(f) => match f.get_ref().as_str() {
                "expression" => (false, "expression"),
                "grf" => (true, "grf"),
                other => {
                    return Err(self.invalid(
                        f.span(),
                        format!("unknown initial family `{other}` (known: expression, grf)"),
                    ));
                }
            },
        };
        let span = |v: Option<&Spanned<f64>>| v.map(Spanned::span);
        let misplaced = if grf {
            let first_random = table
                .random
                .values()
                .map(Spanned::span)
                .min_by_key(|s| s.start);
            vec![
                ("u0", table.u0.as_ref().map(Spanned::span)),
                ("random", first_random),
            ]
        } else {
            vec![
                ("length_scale", span(table.length_scale.as_ref())),
                ("amplitude", span(table.amplitude.as_ref())),
                ("mean", span(table.mean.as_ref())),
            ]
        };
        if let Some((key, at)) = misplaced.into_iter().find_map(|(key, at)| Some((key, at?))) {
            return Err(self.invalid(
                at,
                format!("`{key}` is not a key of the {family} family of [initial]"),
            ));
        }
        if let (true, Some(name)) = (grf, &table.family) {
            return self
                .grf_family(table, name, periodic)
                .map(InitialCondition::Grf);
        }
        let u0 = table.u0.as_ref().ok_or_else(|| {
            self.invalid(spec.span(), "[initial] needs `u0` (or `family = \"grf\"`)")
        })?;
        self.expression_family(table, u0, periodic.len(), taken, with_constants)
            .map(InitialCondition::Expression)
    }

    /// The expression family: random parameters with valid ranges and fresh
    /// names, and `u0` over the coordinates, the parameters, `pi` and the
    /// random parameters.
    fn expression_family(
        &self,
        spec: &InitialSpec,
        u0: &Spanned<String>,
        space_dims: usize,
        taken: &dyn Fn(&str) -> bool,
        with_constants: &dyn Fn(Scope) -> Scope,
    ) -> Result<ExpressionFamily, CustomPdeError> {
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
        let tape = self.compile(u0, &scope, "initial condition")?;
        if tape.n_outputs() != 1 {
            return Err(self.invalid(
                u0.span(),
                format!(
                    "the initial condition has {} rows; write one expression (and `let`s)",
                    tape.n_outputs()
                ),
            ));
        }
        Ok(ExpressionFamily {
            space_dims,
            u0: tape,
            random,
        })
    }

    /// The grf family: every space axis periodic (the sampler's covariance is
    /// periodic, and diagonal in Fourier modes only on a periodic grid), a
    /// finite positive length scale, a finite non-negative amplitude and a
    /// finite mean.
    fn grf_family(
        &self,
        spec: &InitialSpec,
        family: &Spanned<String>,
        periodic: &[bool],
    ) -> Result<GrfFamily, CustomPdeError> {
        if let Some(axis) = periodic.iter().position(|p| !p) {
            return Err(self.invalid(
                family.span(),
                format!(
                    "the grf family needs every space axis periodic, and `{}` is bounded (set `periodic`)",
                    ["x", "y"][axis]
                ),
            ));
        }
        // (key, its value, its default, whether a value is valid, what valid is)
        type Check<'a> = (
            &'a str,
            &'a Option<Spanned<f64>>,
            f64,
            fn(f64) -> bool,
            &'a str,
        );
        let value = |(key, v, default, ok, what): Check| match v {
            None => Ok(default),
            Some(v) if ok(*v.get_ref()) => Ok(*v.get_ref()),
            Some(v) => Err(self.invalid(
                v.span(),
                format!("grf `{key}` = {} must be {what}", v.get_ref()),
            )),
        };
        Ok(GrfFamily {
            space_dims: periodic.len(),
            length_scale: value((
                "length_scale",
                &spec.length_scale,
                LENGTH_SCALE,
                |l| l.is_finite() && l > 0.0,
                "finite and positive",
            ))?,
            amplitude: value((
                "amplitude",
                &spec.amplitude,
                1.0,
                |a| a.is_finite() && a >= 0.0,
                "finite and non-negative",
            ))?,
            mean: value(("mean", &spec.mean, 0.0, f64::is_finite, "finite"))?,
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
