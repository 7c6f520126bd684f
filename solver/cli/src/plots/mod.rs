//! PNG plots with a pure-Rust stack (plotters' bitmap backend and its ab_glyph
//! text renderer with an embedded font), so plotting needs no system library:
//! heat maps of prediction, truth and absolute error for test samples, and the
//! training-loss curve, and both for a run directory (with the box plot of the
//! errors per resolution when it was evaluated at several); the speed-up curve
//! of `tessera bench scaling`.

mod boxplot;
mod colormap;
mod font;
mod heatmap;
mod loss_curve;
mod run_plots;
mod speedup;
mod ticks;

pub use boxplot::plot_resolutions;
pub use heatmap::{SampleFields, plot_sample};
pub use loss_curve::plot_loss;
pub use run_plots::plot_run;
pub use speedup::{SpeedupCurve, plot_speedup};

use std::path::Path;

use crate::error::ToolError;

/// The extension of the files plots write: the bitmap backend picks the
/// encoder by it, and these plots are PNGs.
pub const PLOT_EXTENSION: &str = "png";

/// A [`ToolError::Plot`] for `path`.
fn plot_error(
    path: &Path,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> ToolError {
    ToolError::Plot {
        path: path.to_owned(),
        source: source.into(),
    }
}

#[cfg(test)]
mod tests;
