//! PDEs defined in TOML: the schema, its checks, and a [`CustomPde`] that
//! implements [`tessera_constraints::Pde`] like the built-in PDEs do. The
//! residual is compiled by [`tessera_constraints::expr`]; every error names the
//! file, the line and the column.
//!
//! ```toml
//! name = "diffusion-sorption"
//! space = ["x"]                 # or ["x", "y"]
//! periodic = [false]            # per space axis (default: bounded)
//! stencil = "reference"         # default stencil of every term
//! residual = '''
//! let R = 1 + (1 - phi)/phi * rho_s * k_f * n_f * (max(u, 0) + 1e-6)^(n_f - 1)
//! u_t - D * u_xx / R
//! '''
//!
//! [parameters]
//! D = 5e-4
//! phi = 0.29
//! rho_s = 2880.0
//! k_f = 3.5e-4
//! n_f = 0.874
//!
//! [terms]                       # name = operator, or { op = …, stencil = … }
//! u = "u"
//! u_t = "dt"
//! u_xx = "dxx"
//! u_x = "dx"
//!
//! [[conditions]]                # one row per point: row = rhs
//! at = "initial"                # t = 0, every space point
//! row = "u / u0"                # linear in the terms; u0 = initial value there
//! rhs = "1"
//!
//! [[conditions]]
//! at = "x-min"                  # x = x_0, every t after the first
//! kind = "dirichlet"
//! row = "u"
//! rhs = "1"
//!
//! [[conditions]]
//! at = "x-max"
//! kind = "robin"
//! row = "u - D * u_x"
//! ```
//!
//! - **Terms** (solver order: those the residual reads first, in the order
//!   written, then those only the conditions read; those neither reads are
//!   dropped, since the constraint layer counts every term it is given
//!   against its limit of [`tessera_constraints::pointwise::MAX_TERMS`]):
//!   operators and stencils in [`operators`].
//! - **Residual**: the program of [`tessera_constraints::expr`]; one row per
//!   statement that is not a `let` (several make a system). It reads terms,
//!   parameters and the point's coordinates `t`, `x`, (`y`) — a source
//!   `f(t, x)`, a coefficient that varies in space — which are data, never
//!   differentiated; the solver gathers them only for a residual that reads
//!   them ([`tessera_constraints::Pde::uses_coordinates`]).
//! - **Conditions**: `at` is `initial` or `x-min`, `x-max`, `y-min`, `y-max`;
//!   `row` must be linear in the terms and may read `u0` (the initial value at
//!   the row's space point), `t`, `x`, `y` and the parameters; so may `rhs`
//!   (default 0). `kind` (optional) checks the row's form: `dirichlet` (only
//!   `u`), `neumann` (only derivatives), `robin` (both), `linear`. Periodic axes
//!   need no rows: set `periodic`.
//! - **Solution map** (model form; optional):
//!   `[solution] scale = "0.005 * t / t_end"`, `remove_mean = true`,
//!   `offset = "initial"` is the Navier–Stokes form `u = mean-free(scale·Bω) + u0`.
//! - **Initial family** (optional; ground truth for the reference solver, see
//!   [`initial`]):
//!
//!   ```toml
//!   [initial]
//!   u0 = "a * sin(2 * pi * x) + b"   # over x, (y), the parameters, `pi`, the random parameters
//!   [initial.random]                 # drawn once per sample, in the order written
//!   a = { uniform = [0.5, 1.5] }     # lo ≤ hi
//!   b = { normal = [0.0, 0.1] }      # mean, std ≥ 0
//!   ```
//!
//!   or the Navier–Stokes scenario's periodic Gaussian random field (every
//!   space axis periodic):
//!
//!   ```toml
//!   [initial]
//!   family = "grf"                   # default "expression" (the table above)
//!   length_scale = 0.8               # in periods, > 0 (default 0.8)
//!   amplitude = 1.0                  # ≥ 0 (default 1)
//!   mean = 0.0                       # (default 0)
//!   ```
//!
//!   [`CustomPde::initial_family`] returns it as an [`InitialCondition`], a
//!   [`crate::mol::InitialFamily`] deterministic in the rng it is handed.
//!
//! **Ground truth.** [`CustomPde::mol`] gives the definition as a
//! [`crate::mol::MolPde`] ([`CustomMol`]) for [`crate::mol::generate`]: `dt` is
//! the solver's `u_t`; `u`, `dx`, `dxx`, `dy`, `dyy`, `dxy`, `laplacian` and
//! the third and fourth derivatives (mixed ones included) are its
//! derivatives; the `reference`, `second-order` and `periodic` stencils
//! become its second-order differences and all-`spectral` its Fourier
//! stencil; periodic axes wrap; a
//! boundary row `a·u + b·u_n + f(t, x) = rhs(t, x)` becomes
//! `α u + β ∂u/∂n = g` (Dirichlet, Neumann, Robin; with `c·u_τ`, the
//! derivative along the side, an oblique condition); `initial` rows are unused
//! (the family gives `u0`); the velocity terms become its spectral velocity
//! from the vorticity. What it cannot take (a system, a boundary row reading
//! `u0` or with coefficients varying in `t` or `x`) is a
//! [`CustomPdeError::Unsupported`] at its line and column; the table is in
//! [`mol`].
//!
//! Checks at load time, each reported at its line and column: the TOML schema;
//! the expressions (see [`tessera_constraints::expr`]); unknown operators,
//! stencils, places and kinds; a stencil on an axis it does not fit; a
//! `periodic` list of the wrong length; a parameter that is NaN or infinite or
//! named like a term; a condition row that is not linear, or zero in every
//! term; a residual with `∂t`
//! but no initial condition; a derivative along a bounded axis without rows at
//! its ends; in `[initial]`, an unknown family or a key of the other family, a
//! random parameter with a NaN or infinite bound, `lo > hi`, a negative
//! standard deviation, or the name of a term, parameter, variable or `pi`, and
//! a `grf` family on a bounded axis, with a length scale that is not finite and
//! positive, an amplitude that is not finite and non-negative, or a mean that
//! is not finite. A scenario's new numbers for the `[initial]` family
//! ([`InitialOverrides`]) meet the same checks, and a key the family does
//! not have is an error at the table.

mod conditions;
pub mod error;
pub mod initial;
mod initial_override;
pub mod mol;
pub mod operators;
mod pde;
mod seams;
mod source;
mod spec;

pub use conditions::Place;
pub use error::CustomPdeError;
pub use initial::{Distribution, ExpressionFamily, GrfFamily, InitialCondition, RandomParameter};
pub use initial_override::InitialOverrides;
pub use mol::CustomMol;
pub use operators::{Operator, Stencil};
pub use pde::{CustomPde, TermDef};
pub use seams::Seam;
pub use spec::RandomSpec;
