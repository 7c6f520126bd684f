//! Checks and measurements of the constraint layer on synthetic problems: the
//! `tessera gradcheck` (IFT gradient vs finite differences) and
//! `tessera bench constraint` (forward / backward timings) commands' library side.
//!
//! Both run a [`ConstraintLayer`](tessera_experts::ConstraintLayer) on a
//! [`SyntheticProblem`]: a scenario's PDE on a modest grid with a random smooth
//! basis and a smooth initial condition, reproducible from a seed.

mod any_pde;
mod bench;
mod error;
mod gradcheck;
mod synthetic;

pub use any_pde::{AnyPde, PdeKind, parse_split};
pub use bench::{BenchConfig, BenchReport, bench_constraint, bench_constraint_side_by_side};
pub use error::CheckError;
pub use gradcheck::{DirectionalCheck, GradcheckConfig, GradcheckReport, gradcheck};
pub use synthetic::{GridSize, SyntheticProblem};
