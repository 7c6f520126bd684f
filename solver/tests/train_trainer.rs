//! The trainer on the fixture model: the loss goes down, checkpoints round-trip,
//! and a run interrupted after a checkpoint and resumed equals an uninterrupted
//! one exactly.

mod train_support;

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tessera_solver::{
    Adam, AdamConfig, Checkpoint, RunDir, SolverError, StepRecord, StopReason, Totals,
    TrainOptions, TrainOutcome, Trainable, Trainer,
};
use train_support::{Linear, damage_a_variable, run_data, scenario, temp_dir};

fn options(resume: bool) -> TrainOptions {
    TrainOptions {
        resume,
        ..TrainOptions::default()
    }
}

fn train_to_end(model: &mut Linear, steps: usize, dir: &std::path::Path, resume: bool) -> Totals {
    let scenario = scenario(steps, "");
    let data = run_data();
    let run = RunDir::new(dir);
    match Trainer::new(model, &scenario, &data, &run)
        .train(options(resume), |_, _| ControlFlow::Continue(()))
        .expect("training")
    {
        TrainOutcome::Finished(totals) => totals,
        other => panic!("unexpected {other:?}"),
    }
}

/// Records without their wall-clock seconds, which legitimately differ.
fn without_seconds(records: Vec<StepRecord>) -> Vec<StepRecord> {
    records
        .into_iter()
        .map(|r| StepRecord { seconds: 0.0, ..r })
        .collect()
}

#[test]
fn loss_and_validation_error_decrease() {
    let dir = temp_dir("decrease");
    let mut model = Linear::new();
    train_to_end(&mut model, 40, &dir, false);
    let records = RunDir::new(&dir).read_metrics().unwrap();
    assert_eq!(records.len(), 40);
    let (first, last) = (&records[0], &records[39]);
    assert!(
        last.loss < first.loss / 20.0,
        "{} -> {}",
        first.loss,
        last.loss
    );
    let validations: Vec<f64> = records
        .iter()
        .filter_map(|r| r.validation.map(|v| v.rel_l2_mean))
        .collect();
    // Validation every 4 steps: 10 of them, the last on the last step.
    assert_eq!(validations.len(), 10);
    assert!(validations[9] < validations[0] / 5.0, "{validations:?}");
    // The learned weights approach the truth exp(-k/nt).
    for (k, w) in model.weights().iter().enumerate() {
        let exact = (-(k as f64) / train_support::NT as f64).exp();
        assert!((w - exact).abs() < 0.05, "w[{k}] = {w}, exact {exact}");
    }
}

#[test]
fn failed_solves_are_counted() {
    let dir = temp_dir("failed");
    let mut model = Linear::new();
    let totals = train_to_end(&mut model, 10, &dir, false);
    let records = RunDir::new(&dir).read_metrics().unwrap();
    let failed: usize = records.iter().map(|r| r.failed_solves).sum();
    assert_eq!(totals.failed_solves, failed);
    assert!(
        failed > 0 && failed < 10,
        "the fixture fails on even seeds: {failed}"
    );
    assert_eq!(totals.solves, 10 * 3);
}

#[test]
fn resume_after_interruption_equals_uninterrupted_run() {
    let steps = 12;
    let straight = temp_dir("straight");
    let mut reference = Linear::new();
    let reference_totals = train_to_end(&mut reference, steps, &straight, false);

    // Interrupted after step 7: the last checkpoint is at step 5, and the
    // metrics file already has lines 6 and 7 that the resume must replace.
    let interrupted = temp_dir("interrupted");
    let scenario = scenario(steps, "");
    let data = run_data();
    let run = RunDir::new(&interrupted);
    let mut first = Linear::new();
    let outcome = Trainer::new(&mut first, &scenario, &data, &run)
        .train(options(false), |r, _| {
            if r.step == 7 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert!(matches!(outcome, TrainOutcome::Stopped(t) if t.step == 7));
    assert_eq!(run.read_metrics().unwrap().len(), 7);

    let mut resumed = Linear::new();
    let totals = train_to_end(&mut resumed, steps, &interrupted, true);
    assert_eq!(
        resumed.weights(),
        reference.weights(),
        "bit-identical weights"
    );
    assert_eq!(resumed.calls(), reference.calls(), "extra state restored");
    assert_eq!(totals.step, reference_totals.step);
    assert_eq!(totals.failed_solves, reference_totals.failed_solves);
    assert_eq!(totals.solves, reference_totals.solves);
    let a = without_seconds(RunDir::new(&straight).read_metrics().unwrap());
    let b = without_seconds(run.read_metrics().unwrap());
    assert_eq!(a.len(), steps);
    assert_eq!(a, b);
}

/// `train`, stopping after step `stop` when given, in `dir` with `extra`
/// training settings; the totals where it ended.
fn train_in(dir: &std::path::Path, extra: &str, stop: Option<usize>, resume: bool) -> Totals {
    let scenario = scenario(14, extra);
    let data = run_data();
    let mut model = Linear::new();
    let outcome = Trainer::new(&mut model, &scenario, &data, &RunDir::new(dir))
        .train(options(resume), |r, _| match stop {
            Some(step) if r.step == step => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        })
        .unwrap();
    outcome.totals()
}

/// The checkpoint before the latest is kept beside it: a run stopped after
/// step 12 (checkpoints at steps 5 and 10) whose latest checkpoint was then
/// damaged resumes from step 5 and ends as an uninterrupted run does, bit
/// for bit, metrics included. With `keep_previous_checkpoint = false` there
/// is no second file, and the damage is the resume's error.
#[test]
fn a_resume_falls_back_to_the_previous_checkpoint_when_the_latest_is_damaged() {
    let straight = temp_dir("fallback-straight");
    train_in(&straight, "", None, false);
    let dir = temp_dir("fallback");
    let run = RunDir::new(&dir);
    assert_eq!(train_in(&dir, "", Some(12), false).step, 12);
    let step_at = |path: std::path::PathBuf| Checkpoint::load(&path).unwrap().totals.step;
    assert_eq!(step_at(run.checkpoint()), 10);
    assert_eq!(step_at(run.previous_checkpoint()), 5);
    damage_a_variable(&run.checkpoint());
    let point = Checkpoint::resume_point(&run.checkpoint(), &run.previous_checkpoint()).unwrap();
    let reason = point
        .passed_over
        .expect("the latest was passed over")
        .to_string();
    assert!(reason.contains("damaged"), "{reason}");
    assert_eq!(
        (point.path, point.checkpoint.totals.step),
        (run.previous_checkpoint(), 5)
    );

    assert_eq!(train_in(&dir, "", None, true).step, 14);
    let straight = RunDir::new(&straight);
    let load = |run: &RunDir| Checkpoint::load(&run.checkpoint()).unwrap();
    let (mut a, mut b) = (Linear::new(), Linear::new());
    load(&straight)
        .restore_model(&mut a, &straight.checkpoint())
        .unwrap();
    load(&run).restore_model(&mut b, &run.checkpoint()).unwrap();
    assert_eq!(a.weights(), b.weights(), "bit-identical weights");
    assert_eq!(
        without_seconds(straight.read_metrics().unwrap()),
        without_seconds(run.read_metrics().unwrap())
    );
    assert_eq!(step_at(run.previous_checkpoint()), 10);

    let alone = temp_dir("fallback-off");
    let off = "keep_previous_checkpoint = false";
    train_in(&alone, off, Some(12), false);
    let run = RunDir::new(&alone);
    assert!(!run.previous_checkpoint().exists());
    damage_a_variable(&run.checkpoint());
    let scenario = scenario(14, off);
    let err = Trainer::new(&mut Linear::new(), &scenario, &run_data(), &run)
        .train(options(true), |_, _| ControlFlow::Continue(()))
        .unwrap_err();
    assert!(matches!(err, SolverError::Checkpoint { .. }), "{err}");
    assert!(err.to_string().contains("damaged"), "{err}");
}

/// A run stopped early — by a deadline already passed (after the first
/// step), or by its stop flag set after step 7 (a signal, in the CLI) —
/// stops at a checkpoint of the step it stopped after, between the periodic
/// ones (every 5), and resumes exactly: the same weights and history as an
/// uninterrupted run, the stop marked on the step it happened.
#[test]
fn a_run_stopped_by_a_deadline_or_a_signal_resumes_exactly() {
    let steps = 12;
    let straight = temp_dir("deadline-straight");
    let mut reference = Linear::new();
    train_to_end(&mut reference, steps, &straight, false);
    let reference_records = without_seconds(RunDir::new(&straight).read_metrics().unwrap());

    let flag = Arc::new(AtomicBool::new(false));
    let cases = [
        (
            "deadline",
            TrainOptions {
                deadline: Some(std::time::Instant::now()),
                ..options(false)
            },
            1,
            StopReason::TimeLimit,
        ),
        (
            "signal",
            TrainOptions {
                stop: Some(Arc::clone(&flag)),
                ..options(false)
            },
            8,
            StopReason::Interrupted,
        ),
    ];
    for (name, options, at, reason) in cases {
        let stopped = temp_dir(&format!("{name}-stopped"));
        let scenario = scenario(steps, "");
        let data = run_data();
        let run = RunDir::new(&stopped);
        let outcome = Trainer::new(&mut Linear::new(), &scenario, &data, &run)
            .train(options, |r, _| {
                if r.step == 7 {
                    flag.store(true, Ordering::SeqCst);
                }
                ControlFlow::Continue(())
            })
            .unwrap();
        let expected = match reason {
            StopReason::TimeLimit => TrainOutcome::TimeUp(outcome.totals()),
            StopReason::Interrupted => TrainOutcome::Interrupted(outcome.totals()),
        };
        assert_eq!((outcome, outcome.totals().step), (expected, at), "{name}");
        assert_eq!(Checkpoint::load(&run.checkpoint()).unwrap().totals.step, at);
        let records = run.read_metrics().unwrap();
        assert_eq!(records.len(), at);
        assert_eq!(records[at - 1].stopped, Some(reason));

        let mut resumed = Linear::new();
        train_to_end(&mut resumed, steps, &stopped, true);
        assert_eq!(
            resumed.weights(),
            reference.weights(),
            "{name}: bit-identical weights"
        );
        let mut b = without_seconds(run.read_metrics().unwrap());
        assert_eq!(b[at - 1].stopped.take(), Some(reason));
        assert_eq!(reference_records, b, "{name}");
    }
}

#[test]
fn checkpoint_round_trip_restores_variables_moments_and_extra_state() {
    let dir = temp_dir("checkpoint");
    let mut model = Linear::new();
    let totals = train_to_end(&mut model, 6, &dir, false);
    let path = RunDir::new(&dir).checkpoint();
    let checkpoint = Checkpoint::load(&path).unwrap();
    assert_eq!(checkpoint.totals, totals);

    let mut fresh = Linear::new();
    assert_ne!(fresh.weights(), model.weights());
    checkpoint.restore_model(&mut fresh, &path).unwrap();
    assert_eq!(fresh.weights(), model.weights());
    assert_eq!(fresh.calls(), model.calls());

    // The restored optimiser continues like the saved one: saving it again from
    // the restored state gives the same moments.
    let adam = checkpoint.adam(AdamConfig::default()).unwrap();
    assert_eq!(adam.count(), 6);
    let again = temp_dir("checkpoint-again").join("c.safetensors");
    Checkpoint::save(&again, None, &fresh, &adam, totals, 2).unwrap();
    let reloaded = Checkpoint::load(&again).unwrap();
    assert_eq!(
        checkpoint.ranks(),
        1,
        "a single-process run records one rank"
    );
    assert_eq!(reloaded.ranks(), 2);
    let moments = |a: &Adam| -> Vec<(String, Vec<f64>)> {
        a.state()
            .unwrap()
            .into_iter()
            .map(|(n, t)| (n, t.flatten_all().unwrap().to_vec1().unwrap()))
            .collect()
    };
    assert_eq!(
        moments(&reloaded.adam(AdamConfig::default()).unwrap()),
        moments(&adam)
    );
    assert!(!moments(&adam).is_empty());

    // The model's part alone restores the same model; it has no optimiser,
    // and the metadata alone gives the ranks.
    let model_part = Checkpoint::load_model(&path).unwrap();
    assert_eq!(model_part.totals, totals);
    let mut fresh = Linear::new();
    model_part.restore_model(&mut fresh, &path).unwrap();
    assert_eq!(fresh.weights(), model.weights());
    assert_eq!(fresh.calls(), model.calls());
    let err = model_part.adam(AdamConfig::default()).unwrap_err();
    assert!(matches!(err, SolverError::Checkpoint { .. }), "{err}");
    assert_eq!(Checkpoint::ranks_at(&path).unwrap(), 1);
    assert_eq!(Checkpoint::ranks_at(&again).unwrap(), 2);
}

#[test]
fn checkpoint_of_another_model_is_rejected() {
    let dir = temp_dir("mismatch");
    let mut model = Linear::new();
    train_to_end(&mut model, 5, &dir, false);
    let path = RunDir::new(&dir).checkpoint();
    let checkpoint = Checkpoint::load(&path).unwrap();
    let mut other = Linear::new();
    other
        .vars()
        .get(
            3,
            "extra_bias",
            candle_nn::Init::Const(0.0),
            candle_core::DType::F64,
            &candle_core::Device::Cpu,
        )
        .unwrap();
    let err = checkpoint.restore_model(&mut other, &path).unwrap_err();
    assert!(matches!(err, SolverError::Checkpoint { .. }), "{err}");

    // The same names, one of another shape: no variable is set (whichever
    // the map visits first).
    let with_extra = |len: usize, value: f64| {
        let model = Linear::new();
        let init = candle_nn::Init::Const(value);
        let (f64, cpu) = (candle_core::DType::F64, candle_core::Device::Cpu);
        model.vars().get(len, "extra", init, f64, &cpu).unwrap();
        model
    };
    let saved = with_extra(3, 1.0);
    saved.vars().data().lock().unwrap()["w"]
        .set(
            &candle_core::Tensor::new(&[0.9f64; train_support::NT], &candle_core::Device::Cpu)
                .unwrap(),
        )
        .unwrap();
    let file = dir.join("extra.safetensors");
    let adam = Adam::new(AdamConfig::default());
    Checkpoint::save(&file, None, &saved, &adam, Totals::default(), 1).unwrap();
    let mut other = with_extra(4, 0.0);
    let before = other.weights();
    let err = Checkpoint::load(&file)
        .unwrap()
        .restore_model(&mut other, &file)
        .unwrap_err();
    assert!(err.to_string().contains("`extra`"), "{err}");
    assert_eq!(other.weights(), before, "a refused checkpoint sets nothing");
}

#[test]
fn a_truncated_or_foreign_file_is_a_checkpoint_error() {
    let dir = temp_dir("garbage");
    let path = dir.join("checkpoint.safetensors");
    std::fs::write(&path, b"not a checkpoint").unwrap();
    let empty = dir.join("empty.safetensors");
    std::fs::write(&empty, b"").unwrap();
    let missing = dir.join("missing.safetensors");
    for file in [&path, &empty] {
        for err in [
            Checkpoint::load(file).unwrap_err(),
            Checkpoint::load_model(file).unwrap_err(),
            Checkpoint::ranks_at(file).unwrap_err(),
        ] {
            assert!(matches!(err, SolverError::Safetensors { .. }), "{err}");
        }
    }
    let err = Checkpoint::load(&missing).unwrap_err();
    assert!(matches!(err, SolverError::Io { .. }), "{err}");
    let err = Checkpoint::load_model(&missing).unwrap_err();
    assert!(matches!(err, SolverError::Io { .. }), "{err}");
}

/// Each tensor's bytes are checksummed: one flipped bit in a variable makes
/// both loads an error naming that tensor; one in an Adam moment is caught
/// by the resume's load, which reads the moments, and not by the model's,
/// which does not. A file without checksums (written before them) loads.
#[test]
fn a_damaged_tensor_is_an_error_naming_it() {
    let dir = temp_dir("damaged");
    let mut model = Linear::new();
    train_to_end(&mut model, 5, &dir, false);
    let path = RunDir::new(&dir).checkpoint();
    let bytes = std::fs::read(&path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    // Where a tensor's bytes start in the file, and its name.
    let first = |prefix: &str| -> (usize, String) {
        let (name, view) = (file.iter())
            .find(|(name, _)| name.starts_with(prefix))
            .unwrap();
        let offset = view.data().as_ptr() as usize - bytes.as_ptr() as usize;
        (offset, name.to_owned())
    };
    let flipped = |(offset, _): &(usize, String), name: &str| {
        let mut damaged = bytes.clone();
        damaged[offset + 3] ^= 0x10;
        let out = dir.join(name);
        std::fs::write(&out, damaged).unwrap();
        out
    };
    let var = first("var/");
    let in_var = flipped(&var, "var.safetensors");
    for err in [
        Checkpoint::load(&in_var).unwrap_err(),
        Checkpoint::load_model(&in_var).unwrap_err(),
    ] {
        assert!(matches!(err, SolverError::Checkpoint { .. }), "{err}");
        assert!(err.to_string().contains(&format!("`{}`", var.1)), "{err}");
    }
    let moment = first("adam/");
    let in_moment = flipped(&moment, "adam.safetensors");
    Checkpoint::load_model(&in_moment).unwrap();
    let err = Checkpoint::load(&in_moment).unwrap_err();
    assert!(
        err.to_string().contains(&format!("`{}`", moment.1)),
        "{err}"
    );

    // The same tensors and metadata without the checksums.
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let metadata: std::collections::HashMap<String, String> = (header.metadata().clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|(key, _)| !key.starts_with("crc32/"))
        .collect();
    let unchecked = dir.join("unchecked.safetensors");
    safetensors::serialize_to_file(file.tensors(), Some(metadata), &unchecked).unwrap();
    let checkpoint = Checkpoint::load(&unchecked).unwrap();
    let mut fresh = Linear::new();
    checkpoint.restore_model(&mut fresh, &unchecked).unwrap();
    assert_eq!(fresh.weights(), model.weights());
}
