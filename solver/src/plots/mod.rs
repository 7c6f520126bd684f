//! PNG plots with a pure-Rust stack (plotters' bitmap backend and its ab_glyph
//! text renderer with an embedded font), so plotting needs no system library:
//! heat maps of prediction, truth and absolute error for test samples, and the
//! training-loss curve.

mod colormap;
mod font;
mod heatmap;
mod loss_curve;

pub use heatmap::{SampleFields, plot_sample};
pub use loss_curve::plot_loss;

use std::path::Path;

use crate::SolverError;

/// A [`SolverError::Plot`] for `path`.
fn plot_error(path: &Path, reason: impl std::fmt::Display) -> SolverError {
    SolverError::Plot {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}
