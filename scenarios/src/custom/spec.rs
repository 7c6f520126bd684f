//! The TOML schema of a PDE definition, as read (before any checking). Strings
//! that hold expressions keep their place in the file ([`toml::Spanned`]) so
//! that errors inside them point at the file's line and column.

use std::collections::BTreeMap;

use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use toml::Spanned;

/// A PDE definition file (or the body of a scenario's `[pde]` table).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PdeSpec {
    /// Free-text name (the CUDA function is named after it).
    pub(crate) name: String,
    /// The space axes: `["x"]` or `["x", "y"]`.
    pub(crate) space: Spanned<Vec<String>>,
    /// Which space axes are periodic (default: none), one flag per axis.
    #[serde(default)]
    pub(crate) periodic: Option<Spanned<Vec<bool>>>,
    /// The stencil of every term that does not choose its own.
    #[serde(default)]
    pub(crate) stencil: Option<Spanned<String>>,
    /// The residual program (see [`tessera_constraints::expr`]).
    pub(crate) residual: Spanned<String>,
    /// Named constants.
    #[serde(default)]
    pub(crate) parameters: BTreeMap<String, Spanned<f64>>,
    /// The terms (the order written is recovered from their spans).
    pub(crate) terms: Spanned<BTreeMap<String, Spanned<TermSpec>>>,
    /// Initial- and boundary-condition rows.
    #[serde(default)]
    pub(crate) conditions: Vec<Spanned<ConditionSpec>>,
    /// The solution map (model form); absent means `u = Bω`.
    #[serde(default)]
    pub(crate) solution: Option<Spanned<SolutionSpec>>,
    /// A family of initial conditions for the reference solver (optional).
    #[serde(default)]
    pub(crate) initial: Option<Spanned<InitialSpec>>,
}

/// One term: an operator name, or a table choosing its stencil too. (Read
/// inside a [`Spanned`]: errors point at the value.)
#[derive(Debug, Clone)]
pub(crate) enum TermSpec {
    /// `u_t = "dt"`
    Op(String),
    /// `u_x = { op = "dx", stencil = "spectral" }`
    Full(FullTermSpec),
}

/// A term's table. Its own type, with unknown keys denied, because serde's
/// untagged enums ignore unknown keys: `{ op = "dx", stencl = "spectral" }`
/// used to give a `dx` of the default stencil, silently.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FullTermSpec {
    op: String,
    #[serde(default)]
    stencil: Option<String>,
}

impl<'de> Deserialize<'de> for TermSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Term;
        impl<'de> Visitor<'de> for Term {
            type Value = TermSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    r#"an operator ("dx") or a table ({ op = "dx", stencil = "spectral" })"#,
                )
            }
            fn visit_str<E: serde::de::Error>(self, op: &str) -> Result<TermSpec, E> {
                Ok(TermSpec::Op(op.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<TermSpec, A::Error> {
                FullTermSpec::deserialize(MapAccessDeserializer::new(map)).map(TermSpec::Full)
            }
        }
        deserializer.deserialize_any(Term)
    }
}

impl TermSpec {
    pub(crate) fn op(&self) -> &str {
        match self {
            Self::Op(op) | Self::Full(FullTermSpec { op, .. }) => op,
        }
    }

    pub(crate) fn stencil(&self) -> Option<&str> {
        match self {
            Self::Op(_) => None,
            Self::Full(full) => full.stencil.as_deref(),
        }
    }
}

/// One family of linear rows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConditionSpec {
    /// Where: `initial` (t = 0, every space point) or a boundary `x-min`,
    /// `x-max`, `y-min`, `y-max` (every time level after the first).
    pub(crate) at: Spanned<String>,
    /// A label checked against the row: `dirichlet` (only `u`), `neumann` (only
    /// derivatives), `robin`, or `linear` (the default: anything linear).
    #[serde(default)]
    pub(crate) kind: Option<Spanned<String>>,
    /// The left-hand side, linear in the terms.
    pub(crate) row: Spanned<String>,
    /// The right-hand side (default 0), over `u0`, `t`, the space coordinates and
    /// the parameters.
    #[serde(default)]
    pub(crate) rhs: Option<Spanned<String>>,
}

/// The model form `u = S(Bω) + s₀`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SolutionSpec {
    /// A factor profile in `t` (an expression over `t`, `t_end` and the
    /// parameters) multiplying the basis.
    #[serde(default)]
    pub(crate) scale: Option<Spanned<String>>,
    /// Remove the spatial mean per time level (after scaling).
    #[serde(default)]
    pub(crate) remove_mean: bool,
    /// `"initial"`: add the initial condition at every time level.
    #[serde(default)]
    pub(crate) offset: Option<Spanned<String>>,
}

/// A family of initial conditions: an expression `u0` over the space
/// coordinates, the parameters and random parameters drawn once per sample
/// (`family = "expression"`, the default), or a periodic Gaussian random field
/// (`family = "grf"`). Every key is optional here; which keys a family needs
/// or forbids is checked with the family.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InitialSpec {
    /// `"expression"` (the default) or `"grf"`.
    #[serde(default)]
    pub(crate) family: Option<Spanned<String>>,
    /// The initial value, e.g. `"a * sin(2*pi*x) + b"` (expression family).
    #[serde(default)]
    pub(crate) u0: Option<Spanned<String>>,
    /// The random parameters (drawn in the order written; expression family).
    #[serde(default)]
    pub(crate) random: BTreeMap<String, Spanned<RandomSpec>>,
    /// The kernel's length scale, in periods (grf family).
    #[serde(default)]
    pub(crate) length_scale: Option<Spanned<f64>>,
    /// The factor of the mean-free unit-variance-kernel field (grf family).
    #[serde(default)]
    pub(crate) amplitude: Option<Spanned<f64>>,
    /// The spatial mean added to every sample (grf family).
    #[serde(default)]
    pub(crate) mean: Option<Spanned<f64>>,
}

/// The distribution of one random parameter: `{ uniform = [lo, hi] }` or
/// `{ normal = [mean, std] }` (as written; checked with the family).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum RandomSpec {
    /// Uniform on `[lo, hi]`.
    Uniform([f64; 2]),
    /// Normal with mean and standard deviation.
    Normal([f64; 2]),
}
