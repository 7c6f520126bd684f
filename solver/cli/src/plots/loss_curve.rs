//! The training-loss curve: total and PDE loss per step on a log scale, and the
//! validation error where it was measured. Steps are whole numbers on the x
//! axis, and the log axis is labelled `1e-3`, `1e-2`, `0.1`, `1`.

use std::path::Path;

use plotters::prelude::*;

use super::ticks::log_tick_label;
use super::{font, plot_error};
use crate::error::ToolError;
use tessera_solver::StepRecord;

/// Writes the loss curve of `records` to `path` (PNG, 1000 × 600 pixels).
/// Non-positive or non-finite values are left out (they have no logarithm).
pub fn plot_loss(path: &Path, title: &str, records: &[StepRecord]) -> Result<(), ToolError> {
    font::ensure(path)?;
    let usable = |v: f64| v.is_finite() && v > 0.0;
    let series = [
        ("loss", BLUE, points(records, |r| Some(r.loss), usable)),
        ("pde", RED, points(records, |r| Some(r.pde), usable)),
        (
            "validation rel L2",
            GREEN,
            points(records, |r| r.validation.map(|v| v.rel_l2_mean), usable),
        ),
    ];
    let all = || series.iter().flat_map(|(_, _, p)| p.iter());
    let lo = all().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = all().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    if !(lo.is_finite() && hi.is_finite()) {
        return Err(plot_error(path, "no positive finite loss values to plot"));
    }
    let last = records.last().map_or(1, |r| r.step).max(1);
    let root = BitMapBackend::new(path, (1000, 600)).into_drawing_area();
    let draw = || -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (font::FAMILY, 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0..last, (lo / 1.5..hi * 1.5).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("value")
            .y_label_formatter(&|v| log_tick_label(*v))
            .label_style((font::FAMILY, 13))
            .draw()?;
        for (name, color, points) in &series {
            if points.is_empty() {
                continue;
            }
            let color = *color;
            chart
                .draw_series(LineSeries::new(points.iter().copied(), color))?
                .label(*name)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font((font::FAMILY, 13))
            .draw()?;
        Ok(root.present()?)
    };
    draw().map_err(|e| plot_error(path, e))
}

/// `(step, value)` of the records where `value` gives a usable number.
fn points(
    records: &[StepRecord],
    value: impl Fn(&StepRecord) -> Option<f64>,
    usable: impl Fn(f64) -> bool,
) -> Vec<(usize, f64)> {
    records
        .iter()
        .filter_map(|r| value(r).filter(|&v| usable(v)).map(|v| (r.step, v)))
        .collect()
}
