//! Plots are written as PNGs that decode to the documented sizes, with the
//! embedded font (no system fonts involved).

use tessera_solver::{ResolutionErrors, StepRecord, Validation};

use super::boxplot::BoxStats;
use super::speedup::decimal_label;
use super::{SampleFields, SpeedupCurve, plot_loss, plot_resolutions, plot_sample, plot_speedup};
use crate::error::ToolError;
use crate::test_support::temp_dir;

fn decoded_size(path: &std::path::Path) -> (u32, u32) {
    let image = image::open(path).expect("a decodable PNG");
    (image.width(), image.height())
}

fn field(dims: &[usize], f: impl Fn(usize) -> f64) -> Vec<f64> {
    (0..dims.iter().product()).map(f).collect()
}

#[test]
fn one_dimensional_sample_heat_map() {
    let dims = [6, 10];
    let truth = field(&dims, |i| (i as f64 * 0.1).sin());
    let prediction = field(&dims, |i| (i as f64 * 0.1).sin() + 0.01);
    let path = temp_dir("plot-1d").join("sample.png");
    let sample = SampleFields {
        dims: &dims,
        t_max: 500.0,
        prediction: &prediction,
        truth: &truth,
        title: "1-D test sample",
    };
    plot_sample(&path, &sample).unwrap();
    assert_eq!(decoded_size(&path), (1500, 450));
}

#[test]
fn two_dimensional_sample_snapshots() {
    let dims = [4, 6, 6];
    let truth = field(&dims, |i| (i as f64).cos());
    let path = temp_dir("plot-2d").join("sample.png");
    let sample = SampleFields {
        dims: &dims,
        t_max: 1.0,
        prediction: &truth,
        truth: &truth,
        title: "2-D test sample",
    };
    plot_sample(&path, &sample).unwrap();
    assert_eq!(decoded_size(&path), (1200, 1200));
}

#[test]
fn mismatched_fields_are_rejected() {
    let path = temp_dir("plot-bad").join("sample.png");
    let sample = SampleFields {
        dims: &[2, 3],
        t_max: 1.0,
        prediction: &[0.0; 5],
        truth: &[0.0; 6],
        title: "bad",
    };
    let err = plot_sample(&path, &sample).unwrap_err();
    assert!(matches!(err, ToolError::ShapeMismatch { .. }), "{err}");
    assert!(!path.exists());
}

fn record(step: usize, loss: f64) -> StepRecord {
    StepRecord {
        step,
        lr: 1e-3,
        loss,
        pde: loss / 2.0,
        ic: 0.0,
        bc: 0.0,
        data: 0.0,
        grad_norm: 1.0,
        lm_iterations_mean: 3.0,
        failed_solves: 0,
        solves: 4,
        seconds: step as f64,
        validation: step.is_multiple_of(5).then_some(Validation {
            rel_l2_mean: 1.0 / step as f64,
            rel_l2_std: 0.01,
            failed_solves: 0,
        }),
        stopped: None,
    }
}

#[test]
fn loss_curve() {
    let records: Vec<StepRecord> = (1..=30).map(|s| record(s, 10.0 / s as f64)).collect();
    let path = temp_dir("plot-loss").join("loss.png");
    plot_loss(&path, "loss", &records).unwrap();
    assert_eq!(decoded_size(&path), (1000, 600));
}

#[test]
fn loss_curve_without_plottable_values_is_an_error() {
    let records = vec![StepRecord {
        pde: 0.0,
        ..record(1, f64::NAN)
    }];
    let path = temp_dir("plot-empty").join("loss.png");
    let err = plot_loss(&path, "loss", &records).unwrap_err();
    assert!(matches!(err, ToolError::Plot { .. }), "{err}");
}

#[test]
fn speedup_curve() {
    let curve = |label: &str, scale: f64| SpeedupCurve {
        label: label.to_owned(),
        points: [1e2_f64, 1e3, 1e4]
            .iter()
            .map(|&p| (p, scale * p.log10()))
            .collect(),
    };
    let path = temp_dir("plot-speedup").join("speedup.png");
    let curves = [curve("training", 1.0), curve("inference", 0.5)];
    plot_speedup(&path, "speed-up", &curves).unwrap();
    assert_eq!(decoded_size(&path), (900, 600));
    let empty = [SpeedupCurve {
        label: "none".to_owned(),
        points: vec![(0.0, 1.0), (10.0, f64::NAN)],
    }];
    let err = plot_speedup(&path, "speed-up", &empty).unwrap_err();
    assert!(matches!(err, ToolError::Plot { .. }), "{err}");
}

/// The speed-up axis's labels carry no float noise (the point axis is a log
/// axis, labelled as every log axis is: see `ticks`).
#[test]
fn speedup_tick_labels() {
    let ratios = [0.0, 0.5, 1.0, 1.25, 2.000_000_1, -0.000_1];
    let labels: Vec<String> = ratios.into_iter().map(decimal_label).collect();
    assert_eq!(labels, ["0", "0.5", "1", "1.25", "2", "0"]);
}

#[test]
fn box_statistics_follow_matplotlib() {
    // numpy.percentile of 1..=8 and 100: ranks 2, 4, 6 → 3, 5, 7; the
    // whiskers reach 1.5 · 4 = 6 beyond the box: 1 and 8, 100 is a flier.
    let mut values: Vec<f64> = (1..=8).map(f64::from).collect();
    values.extend([100.0, f64::NAN]);
    let b = BoxStats::new(&values).unwrap();
    assert_eq!((b.whisker_lo, b.q1, b.median, b.q3), (1.0, 3.0, 5.0, 7.0));
    assert_eq!((b.whisker_hi, b.fliers.as_slice()), (8.0, &[100.0][..]));
    // Interpolated quartiles (ranks 1.25, 2.5, 3.75): 20.25, 37.5, 39.75;
    // the whiskers stop at the data (7, 41), not at the fences (−9, 69).
    let b = BoxStats::new(&[41.0, 7.0, 36.0, 15.0, 40.0, 39.0]).unwrap();
    assert_eq!((b.q1, b.median, b.q3), (20.25, 37.5, 39.75));
    assert_eq!((b.whisker_lo, b.whisker_hi), (7.0, 41.0));
    assert!(b.fliers.is_empty());
    assert_eq!(BoxStats::new(&[f64::NAN]), None);
}

#[test]
fn resolution_box_plot() {
    let row = |resolution, rel_l2: Vec<f64>| ResolutionErrors {
        resolution,
        mean: 0.0,
        std: 0.0,
        rel_l2,
        failed_solves: 0,
    };
    let rows = [
        row(64, vec![0.05, 0.06, 0.055, 0.2]),
        row(128, vec![0.07, 0.065]),
        row(256, vec![0.08]),
    ];
    let path = temp_dir("plot-box").join("resolutions.png");
    plot_resolutions(&path, "errors per resolution", &rows).unwrap();
    assert_eq!(decoded_size(&path), (800, 600));
    let err = plot_resolutions(&path, "none", &[row(64, vec![f64::NAN])]).unwrap_err();
    assert!(matches!(err, ToolError::Plot { .. }), "{err}");
}
