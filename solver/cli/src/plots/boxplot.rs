//! The test errors per evaluation resolution as box plots, one box per
//! resolution, drawn the way the paper draws its Navier–Stokes results
//! (matplotlib's `boxplot` defaults): the box spans the quartiles with a line
//! at the median, the whiskers reach the most extreme samples within 1.5
//! inter-quartile ranges of the box, and samples beyond are drawn as circles.

use std::path::Path;

use plotters::prelude::*;
use tessera_solver::ResolutionErrors;

use super::{font, plot_error};
use crate::error::ToolError;

/// The five numbers of one box and the samples outside its whiskers.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxStats {
    /// Lower whisker, lower quartile, median, upper quartile, upper whisker.
    pub whisker_lo: f64,
    pub q1: f64,
    pub median: f64,
    pub q3: f64,
    pub whisker_hi: f64,
    /// Samples beyond the whiskers.
    pub fliers: Vec<f64>,
}

impl BoxStats {
    /// The statistics of `values` (finite values only; `None` if there are
    /// none): quartiles by linear interpolation between order statistics (as
    /// `numpy.percentile`), whiskers at the most extreme values within
    /// `1.5·(q3 − q1)` of the box.
    pub fn new(values: &[f64]) -> Option<Self> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let percentile = |p: f64| {
            let rank = p * (sorted.len() - 1) as f64;
            let (below, frac) = (rank.floor() as usize, rank.fract());
            let above = (below + 1).min(sorted.len() - 1);
            sorted[below] + frac * (sorted[above] - sorted[below])
        };
        let (q1, median, q3) = (percentile(0.25), percentile(0.5), percentile(0.75));
        let reach = 1.5 * (q3 - q1);
        let inside = |v: &&f64| (q1 - reach..=q3 + reach).contains(*v);
        // The quartiles lie within the range, so some value is inside.
        let whisker_lo = sorted.iter().find(inside).copied().unwrap_or(q1);
        let whisker_hi = sorted.iter().rev().find(inside).copied().unwrap_or(q3);
        let fliers = sorted
            .iter()
            .copied()
            .filter(|v| *v < whisker_lo || *v > whisker_hi)
            .collect();
        Some(Self {
            whisker_lo,
            q1,
            median,
            q3,
            whisker_hi,
            fliers,
        })
    }
}

/// Box width in units of the distance between two boxes.
const BOX_WIDTH: f64 = 0.5;

/// Writes one box of the per-sample errors per resolution to `path` (PNG,
/// 800 × 600 pixels), boxes in the order given, labelled `n²`.
///
/// Errors: no resolution has a finite error, or the plot cannot be written.
pub fn plot_resolutions(
    path: &Path,
    title: &str,
    resolutions: &[ResolutionErrors],
) -> Result<(), ToolError> {
    font::ensure(path)?;
    let boxes: Vec<(usize, BoxStats)> = resolutions
        .iter()
        .filter_map(|r| BoxStats::new(&r.rel_l2).map(|b| (r.resolution, b)))
        .collect();
    let lo = boxes
        .iter()
        .flat_map(|(_, b)| b.fliers.iter().chain([&b.whisker_lo]))
        .copied()
        .fold(f64::INFINITY, f64::min);
    let hi = boxes
        .iter()
        .flat_map(|(_, b)| b.fliers.iter().chain([&b.whisker_hi]))
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    if !(lo.is_finite() && hi.is_finite()) {
        return Err(plot_error(path, "no finite errors to plot"));
    }
    // A margin of a tenth of the spread (or of the value, when all agree).
    let pad = 0.1 * (hi - lo).max(hi.abs().max(f64::MIN_POSITIVE));
    let labels: Vec<String> = boxes.iter().map(|(r, _)| format!("{r}²")).collect();
    let root = BitMapBackend::new(path, (800, 600)).into_drawing_area();
    let draw = || -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (font::FAMILY, 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(-0.5..boxes.len() as f64 - 0.5, lo - pad..hi + pad)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(boxes.len())
            .x_label_formatter(&|x| {
                let i = x.round();
                let on_box = (x - i).abs() < 1e-9 && i >= 0.0;
                let label = on_box.then(|| labels.get(i as usize)).flatten();
                label.cloned().unwrap_or_default()
            })
            .x_desc("resolution")
            .y_desc("relative L2 error")
            .label_style((font::FAMILY, 13))
            .draw()?;
        let blue = RGBColor(31, 119, 180);
        let orange = RGBColor(255, 127, 14);
        for (i, (_, b)) in boxes.iter().enumerate() {
            let x = i as f64;
            let (left, right) = (x - BOX_WIDTH / 2.0, x + BOX_WIDTH / 2.0);
            let (cap_l, cap_r) = (x - BOX_WIDTH / 4.0, x + BOX_WIDTH / 4.0);
            chart.draw_series([Rectangle::new(
                [(left, b.q1), (right, b.q3)],
                blue.stroke_width(2),
            )])?;
            let lines = [
                ([(left, b.median), (right, b.median)], orange),
                ([(x, b.q3), (x, b.whisker_hi)], blue),
                ([(x, b.q1), (x, b.whisker_lo)], blue),
                ([(cap_l, b.whisker_hi), (cap_r, b.whisker_hi)], blue),
                ([(cap_l, b.whisker_lo), (cap_r, b.whisker_lo)], blue),
            ];
            chart.draw_series(
                lines
                    .into_iter()
                    .map(|(ends, color)| PathElement::new(ends, color.stroke_width(2))),
            )?;
            chart.draw_series(
                b.fliers
                    .iter()
                    .map(|&v| Circle::new((x, v), 4, BLACK.stroke_width(1))),
            )?;
        }
        Ok(root.present()?)
    };
    draw().map_err(|e| plot_error(path, e))
}
