//! Checks and measurements of the constraint layer on synthetic problems: the
//! `tessera gradcheck` (IFT gradient vs finite differences) and
//! `tessera bench constraint` (forward / backward timings) and `tessera bench
//! scaling` (experts against a single constraint) commands' library side.
//!
//! Both run a [`ConstraintLayer`](tessera_experts::ConstraintLayer) on a
//! [`SyntheticProblem`]: a scenario's PDE on a modest grid with a random smooth
//! basis and a smooth initial condition, reproducible from a seed.

mod bench;
mod gradcheck;
mod scaling;
mod synthetic;

pub use bench::{BenchConfig, bench_constraint, bench_constraint_side_by_side};
pub use gradcheck::{GradcheckConfig, gradcheck};
pub use scaling::{DEFAULT_REPEATS, ScalingConfig, ScalingReport, bench_scaling};
pub use synthetic::{GridSize, SyntheticProblem};

use crate::error::ToolError;

/// Parses a tile split written `1x4` or `1x2x2` (tiles along `t`, `x`, `(y)`).
///
/// Errors: an empty part or one that is not a positive integer.
pub fn parse_split(text: &str) -> Result<Vec<usize>, ToolError> {
    tessera_experts::router::parse_split(text).ok_or_else(|| ToolError::InvalidSetting {
        what: "tile split",
        value: text.to_owned(),
        reason: "positive integers joined by 'x', e.g. 1x4 or 1x2x2",
    })
}
