//! Heat maps of one test sample: prediction, truth and absolute error side by
//! side over `(x, t)` for 1-D PDEs; for 2-D PDEs one row per field with
//! `(x, y)` snapshots at a few times. Prediction and truth share one colour
//! scale so they compare by eye; the error has its own.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::colormap::viridis;
use super::{font, plot_error};
use crate::error::ToolError;

/// Largest number of cells drawn per axis (finer fields are strided: a plot
/// needs no more than its pixels).
const MAX_CELLS: usize = 256;
/// Snapshots per 2-D sample.
const SNAPSHOTS: usize = 3;

/// One sample to plot.
#[derive(Debug, Clone, Copy)]
pub struct SampleFields<'a> {
    /// Grid `[nt, nx, (ny)]`.
    pub dims: &'a [usize],
    /// Final time (the time axis is `linspace(0, t_max, nt)`).
    pub t_max: f64,
    /// Predicted and true trajectories, row-major over `dims`.
    pub prediction: &'a [f64],
    pub truth: &'a [f64],
    /// Plot title.
    pub title: &'a str,
}

/// A 2-D array to draw: `rows × cols` values, row `r` at vertical coordinate
/// `r · row_step`, column `c` at horizontal `c · col_step`.
struct Panel<'a> {
    values: &'a [f64],
    rows: usize,
    cols: usize,
    row_range: (f64, f64),
    col_range: (f64, f64),
    labels: (&'a str, &'a str),
    caption: String,
    scale: (f64, f64),
}

/// Writes the heat maps of `sample` to `path` (PNG). 1-D: 1500 × 450 pixels;
/// 2-D: 1200 × 1200.
pub fn plot_sample(path: &Path, sample: &SampleFields<'_>) -> Result<(), ToolError> {
    font::ensure(path)?;
    let len: usize = sample.dims.iter().product();
    if sample.dims.len() < 2 || sample.prediction.len() != len || sample.truth.len() != len {
        return Err(ToolError::ShapeMismatch {
            what: "plotted fields",
            expected: sample.dims.to_vec(),
            got: vec![sample.prediction.len(), sample.truth.len()],
        });
    }
    let error: Vec<f64> = sample
        .prediction
        .iter()
        .zip(sample.truth)
        .map(|(p, t)| (p - t).abs())
        .collect();
    let shared = range(sample.prediction.iter().chain(sample.truth));
    let error_scale = (0.0, range(error.iter()).1);
    let fields = [
        ("prediction", sample.prediction, shared),
        ("truth", sample.truth, shared),
        ("|error|", error.as_slice(), error_scale),
    ];
    let two_d = sample.dims.len() == 3;
    let size = if two_d { (1200, 1200) } else { (1500, 450) };
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
    let root = root
        .titled(sample.title, (font::FAMILY, 24))
        .map_err(|e| plot_error(path, e))?;
    if two_d {
        let (nt, nx, ny) = (sample.dims[0], sample.dims[1], sample.dims[2]);
        let frame = nx * ny;
        let areas = root.split_evenly((fields.len(), SNAPSHOTS));
        for (row, (name, values, scale)) in fields.iter().enumerate() {
            for s in 0..SNAPSHOTS {
                let k = ((s + 1) * (nt - 1)).div_ceil(SNAPSHOTS);
                let t = sample.t_max * k as f64 / (nt - 1) as f64;
                let panel = Panel {
                    values: &values[k * frame..(k + 1) * frame],
                    rows: nx,
                    cols: ny,
                    row_range: (0.0, 1.0),
                    col_range: (0.0, 1.0),
                    labels: ("y", "x"),
                    caption: format!("{name} t={t:.3} [{:.3e}, {:.3e}]", scale.0, scale.1),
                    scale: *scale,
                };
                draw(&areas[row * SNAPSHOTS + s], &panel).map_err(|e| plot_error(path, e))?;
            }
        }
    } else {
        let areas = root.split_evenly((1, fields.len()));
        for (area, (name, values, scale)) in areas.iter().zip(&fields) {
            let panel = Panel {
                values,
                rows: sample.dims[0],
                cols: sample.dims[1],
                row_range: (0.0, sample.t_max),
                col_range: (0.0, 1.0),
                labels: ("x", "t"),
                caption: format!("{name} [{:.3e}, {:.3e}]", scale.0, scale.1),
                scale: *scale,
            };
            draw(area, &panel).map_err(|e| plot_error(path, e))?;
        }
    }
    root.present().map_err(|e| plot_error(path, e))
}

/// Smallest and largest finite value.
fn range<'a>(values: impl Iterator<Item = &'a f64>) -> (f64, f64) {
    values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

type Area<'b> = DrawingArea<BitMapBackend<'b>, Shift>;

/// Draws one panel; errors are plotters'.
fn draw(
    area: &Area<'_>,
    panel: &Panel<'_>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.caption, (font::FAMILY, 16))
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(45)
        .build_cartesian_2d(
            panel.col_range.0..panel.col_range.1,
            panel.row_range.0..panel.row_range.1,
        )?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(panel.labels.0)
        .y_desc(panel.labels.1)
        .label_style((font::FAMILY, 12))
        .draw()?;
    let row_stride = panel.rows.div_ceil(MAX_CELLS);
    let col_stride = panel.cols.div_ceil(MAX_CELLS);
    let step = |range: (f64, f64), n: usize| (range.1 - range.0) / n as f64;
    let (dr, dc) = (
        step(panel.row_range, panel.rows),
        step(panel.col_range, panel.cols),
    );
    let cells = (0..panel.rows).step_by(row_stride).flat_map(|r| {
        (0..panel.cols).step_by(col_stride).map(move |c| {
            let value = panel.values[r * panel.cols + c];
            let (y0, x0) = (
                panel.row_range.0 + r as f64 * dr,
                panel.col_range.0 + c as f64 * dc,
            );
            let corner = (x0 + dc * col_stride as f64, y0 + dr * row_stride as f64);
            Rectangle::new(
                [(x0, y0), corner],
                viridis(value, panel.scale.0, panel.scale.1).filled(),
            )
        })
    });
    chart.draw_series(cells)?;
    Ok(())
}
