//! The speed-up curve of `tessera bench scaling`: speed-up against the number
//! of sampled points, on a log axis, one curve per PDE and step (the paper's
//! Fig. 4 / 6), with the line of no speed-up.

use std::path::Path;

use plotters::prelude::*;

use super::ticks::log_tick_label;
use super::{font, plot_error};
use crate::error::ToolError;

/// One curve: `(sampled points, speed-up)` pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeedupCurve {
    /// The legend's entry.
    pub label: String,
    /// The measurements, in order of points.
    pub points: Vec<(f64, f64)>,
}

/// Curve colours, in order (more curves reuse them): blue and cyan, red and
/// orange, so that two curves of one PDE read as a pair.
const PALETTE: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(23, 190, 207),
    RGBColor(214, 39, 40),
    RGBColor(255, 127, 14),
];

/// The y axis ends this far above the largest speed-up: the legend (upper
/// left) then sits above the curves.
const HEADROOM: f64 = 1.5;

/// Writes the curves to `path` (PNG, 900 × 600 pixels). Points that are not
/// positive and finite are left out (no logarithm, no speed-up).
pub fn plot_speedup(path: &Path, title: &str, curves: &[SpeedupCurve]) -> Result<(), ToolError> {
    font::ensure(path)?;
    let usable = |&(p, s): &(f64, f64)| p.is_finite() && p > 0.0 && s.is_finite() && s > 0.0;
    let curves: Vec<(&str, Vec<(f64, f64)>)> = curves
        .iter()
        .map(|c| {
            let points = c.points.iter().copied().filter(usable).collect();
            (c.label.as_str(), points)
        })
        .collect();
    let all = || curves.iter().flat_map(|(_, p)| p.iter());
    let lo = all().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let hi = all().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let top = all().map(|p| p.1).fold(1.0, f64::max);
    if !(lo.is_finite() && hi.is_finite()) {
        return Err(plot_error(path, "no positive finite speed-ups to plot"));
    }
    let root = BitMapBackend::new(path, (900, 600)).into_drawing_area();
    let draw = || -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        root.fill(&WHITE)?;
        let (x_lo, x_hi) = (lo / 1.5, hi * 1.5);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (font::FAMILY, 22))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d((x_lo..x_hi).log_scale(), 0.0..top * HEADROOM)?;
        chart
            .configure_mesh()
            .x_desc("sampled points (total over all experts)")
            .y_desc("speed-up of the experts over one constraint")
            .x_label_formatter(&|x| log_tick_label(*x))
            .y_label_formatter(&|y| decimal_label(*y))
            .label_style((font::FAMILY, 14))
            .axis_desc_style((font::FAMILY, 15))
            .draw()?;
        chart
            .draw_series(LineSeries::new([(x_lo, 1.0), (x_hi, 1.0)], BLACK.mix(0.4)))?
            .label("no speed-up")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.4)));
        for (i, (label, points)) in curves.iter().enumerate() {
            if points.is_empty() {
                continue;
            }
            let color = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(
                    LineSeries::new(points.iter().copied(), color.stroke_width(3)).point_size(4),
                )?
                .label(*label)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], color.stroke_width(3))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font((font::FAMILY, 14))
            .draw()?;
        Ok(root.present()?)
    };
    draw().map_err(|e| plot_error(path, e))
}

/// A ratio as a label: at most two decimals, no trailing zeros (`0.5`, `1`, `1.25`).
pub(super) fn decimal_label(value: f64) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    match text {
        "-0" => "0".to_owned(),
        _ => text.to_owned(),
    }
}
