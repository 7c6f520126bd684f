//! Evaluation metrics against hand-computed values, and evaluation of the
//! fixture model against its analytic truth.

mod train_support;

use tessera_solver::{SolverError, evaluate, evaluate_observed, relative_l2};
use train_support::{Linear, NT, samples};

#[test]
fn relative_l2_by_hand() {
    // ‖(0, 0, −1)‖ / ‖(1, 2, 3)‖ = 1/√14.
    let e = relative_l2(&[1.0, 2.0, 2.0], &[1.0, 2.0, 3.0]).unwrap();
    assert!((e - 1.0 / 14f64.sqrt()).abs() < 1e-15);
}

#[test]
fn bad_predictions_are_errors_not_numbers() {
    let err = relative_l2(&[f64::NAN, 1.0], &[1.0, 1.0]).unwrap_err();
    assert!(matches!(err, SolverError::NonFinite { .. }), "{err}");
    let err = relative_l2(&[1.0], &[1.0, 1.0]).unwrap_err();
    assert!(matches!(err, SolverError::ShapeMismatch { .. }), "{err}");
    let err = relative_l2(&[1.0, 1.0], &[0.0, 0.0]).unwrap_err();
    assert!(matches!(err, SolverError::InvalidConfig { .. }), "{err}");
}

#[test]
fn fixture_error_matches_its_closed_form_for_any_chunking() {
    // The fixture predicts w[k]·u0 with w = 0.3 and the truth is exp(−k/nt)·u0,
    // so every sample's relative error is ‖0.3 − e‖ / ‖e‖ over k, e_k = exp(−k/nt).
    let e: Vec<f64> = (0..NT).map(|k| (-(k as f64) / NT as f64).exp()).collect();
    let num: f64 = e.iter().map(|v| (0.3 - v).powi(2)).sum();
    let den: f64 = e.iter().map(|v| v * v).sum();
    let exact = (num / den).sqrt();
    let test = samples(0..5);
    let mut model = Linear::new();
    let whole = evaluate(&mut model, &test, 5, 5, 1).unwrap();
    let chunked = evaluate(&mut model, &test, 5, 2, 1).unwrap();
    assert_eq!(whole.rel_l2, chunked.rel_l2);
    for r in &whole.rel_l2 {
        assert!((r - exact).abs() < 1e-14, "{r} vs {exact}");
    }
    assert!(whole.std < 1e-14);
    let err = evaluate(&mut model, &test, 6, 2, 1).unwrap_err();
    assert!(matches!(err, SolverError::InvalidConfig { .. }), "{err}");
}

#[test]
fn progress_is_told_after_each_chunk() {
    let test = samples(0..5);
    let mut model = Linear::new();
    let mut reports = Vec::new();
    let observed =
        evaluate_observed(&mut model, &test, 5, 2, 1, &mut |p| reports.push(p.clone())).unwrap();
    let told: Vec<_> = reports.iter().map(|p| (p.done, p.total)).collect();
    assert_eq!(told, [(2, 5), (4, 5), (5, 5)]);
    assert!(reports.iter().all(|p| p.grid == test.dims()[1..]));
    // The first report is the mean of the first chunk's two errors, the last
    // the evaluation's own mean.
    let first = (observed.rel_l2[0] + observed.rel_l2[1]) / 2.0;
    assert!((reports[0].rel_l2_mean - first).abs() < 1e-15);
    assert_eq!(reports[2].rel_l2_mean, observed.mean);
    assert_eq!(reports[2].failed_solves, observed.failed_solves);
    // Watching changes nothing.
    assert_eq!(
        observed.rel_l2,
        evaluate(&mut model, &test, 5, 2, 1).unwrap().rel_l2
    );
}
