//! Data loading: restricting a finer test set onto the grid, shape and
//! coordinate checks, and the generated-data cache.

use tessera_meshes::{Axis, Grid};
use tessera_scenarios::dataset::Split;
use tessera_scenarios::{Dataset, Scenario};

use super::{RunData, Samples, cache_path};
use crate::SolverError;
use crate::tests::train_support::temp_dir;

/// A value that encodes its own grid position, so subsampling is checked exactly.
fn code(k: usize, i: usize, j: usize) -> f32 {
    (100 * k + 10 * i + j) as f32
}

/// `nt` levels on `[0, 1]` and the periodic unit square of `n × n` points.
fn square(nt: usize, n: usize) -> Grid {
    Grid::new(vec![
        Axis::linspace("t", 0.0, 1.0, nt).unwrap(),
        Axis::periodic("x", 0.0, 1.0, n).unwrap(),
        Axis::periodic("y", 0.0, 1.0, n).unwrap(),
    ])
    .unwrap()
}

/// `[0, 1]` in time (levels `t`) and `x` as `axis` makes it, `n` points.
fn line(t: usize, x: Axis) -> Grid {
    Grid::new(vec![Axis::linspace("t", 0.0, 1.0, t).unwrap(), x]).unwrap()
}

#[test]
fn a_finer_two_dimensional_set_is_subsampled_onto_the_grid() {
    let (nt, fine) = (3, 8);
    let coords: Vec<f64> = (0..fine).map(|i| i as f64 / fine as f64).collect();
    // Sample s holds its codes plus 1000·s.
    let sample = |s: usize| -> Vec<f32> {
        (0..nt)
            .flat_map(|k| {
                (0..fine).flat_map(move |i| (0..fine).map(move |j| code(k, i, j) + 1e3 * s as f32))
            })
            .collect()
    };
    let dataset = Dataset::new(
        vec![0.0, 0.5, 1.0],
        coords.clone(),
        Some(coords),
        String::new(),
        (0..3).map(sample).collect(),
    )
    .unwrap();
    let expected = |s: usize| -> Vec<f64> {
        (0..nt)
            .flat_map(|k| {
                (0..4).flat_map(move |i| {
                    (0..4).map(move |j| f64::from(code(k, 2 * i, 2 * j) + 1e3 * s as f32))
                })
            })
            .collect()
    };
    let samples = Samples::from_dataset(&dataset, &square(nt, 4), 1).unwrap();
    assert_eq!(samples.trajectories().unwrap(), [expected(0)]);
    assert_eq!(samples.initial_condition(0), &expected(0)[..16]);
    // A range of samples (the evaluation's chunks of a stored split), here
    // at the stored resolution and restricted.
    let part = Samples::from_dataset_range(&dataset, &square(nt, 4), 1..3).unwrap();
    assert_eq!(part.trajectories().unwrap(), [expected(1), expected(2)]);
    let whole = Samples::from_dataset_range(&dataset, &square(nt, fine), 2..3).unwrap();
    let stored: Vec<f64> = sample(2).into_iter().map(f64::from).collect();
    assert_eq!(whole.trajectories().unwrap(), [stored]);
}

/// On a cell-centred axis (diffusion–sorption's finite volumes) a model
/// cell is `k` stored cells: its value is their mean, the finite-volume
/// restriction, not every `k`-th centre (half a model cell off).
#[test]
fn a_finer_cell_centred_set_is_averaged_onto_the_grid() {
    let (nt, fine) = (2, 8);
    let centres = Axis::cell_centres("x", 0.0, 1.0, fine).unwrap();
    let sample: Vec<f32> = (0..nt)
        .flat_map(|k| (0..fine).map(move |i| code(k, i, 0)))
        .collect();
    let dataset = Dataset::new(
        vec![0.0, 1.0],
        centres.coords().to_vec(),
        None,
        String::new(),
        vec![sample],
    )
    .unwrap();
    let coarse = line(nt, Axis::cell_centres("x", 0.0, 1.0, 4).unwrap());
    let samples = Samples::from_dataset(&dataset, &coarse, 1).unwrap();
    let expected: Vec<f64> = (0..nt)
        .flat_map(|k| {
            (0..4).map(move |i| f64::from(code(k, 2 * i, 0) + code(k, 2 * i + 1, 0)) / 2.0)
        })
        .collect();
    assert_eq!(samples.trajectories().unwrap(), [expected]);
}

/// A set whose coordinates are not the model's is an error naming the
/// axis: other time levels, a shifted or longer domain, a finer
/// non-periodic axis (whose points do not nest), a cell-centred set on a
/// model of points.
#[test]
fn a_set_on_another_grid_is_refused_by_its_coordinates() {
    let fine = Axis::cell_centres("x", 0.0, 1.0, 8).unwrap();
    let stored = |t: Vec<f64>, x: &[f64]| {
        Dataset::new(t, x.to_vec(), None, String::new(), vec![vec![0.5; 16]]).unwrap()
    };
    let centres = |lo, hi, n| Axis::cell_centres("x", lo, hi, n).unwrap();
    let cases = [
        (
            stored(vec![0.0, 2.0], fine.coords()),
            line(2, centres(0.0, 1.0, 4)),
            "t",
        ),
        (
            stored(vec![0.0, 1.0], fine.coords()),
            line(2, centres(0.5, 1.5, 4)),
            "x",
        ),
        (
            stored(vec![0.0, 1.0], fine.coords()),
            line(2, centres(0.0, 2.0, 8)),
            "x",
        ),
        (
            stored(
                vec![0.0, 1.0],
                Axis::linspace("x", 0.0, 1.0, 8).unwrap().coords(),
            ),
            line(2, Axis::linspace("x", 0.0, 1.0, 4).unwrap()),
            "x",
        ),
        (
            stored(vec![0.0, 1.0], fine.coords()),
            line(2, Axis::periodic("x", 0.0, 1.0, 4).unwrap()),
            "x",
        ),
    ];
    for (dataset, grid, axis) in cases {
        match Samples::from_dataset(&dataset, &grid, 1) {
            Err(SolverError::DatasetGrid { axis: named, .. }) => assert_eq!(named, axis),
            other => panic!("{axis}: {other:?}"),
        }
    }
    // The model's own grid, and float32's rounding of it, are accepted.
    let rounded: Vec<f64> = fine.coords().iter().map(|&c| f64::from(c as f32)).collect();
    let grid = line(2, centres(0.0, 1.0, 8));
    assert!(Samples::from_dataset(&stored(vec![0.0, 1.0], &rounded), &grid, 1).is_ok());
}

#[test]
fn grids_that_do_not_fit_are_rejected() {
    let x: Vec<f64> = (0..6).map(|i| i as f64).collect();
    let dataset =
        Dataset::new(vec![0.0, 1.0], x, None, String::new(), vec![vec![0.5; 12]]).unwrap();
    let points = |t, n| line(t, Axis::linspace("x", 0.0, 5.0, n).unwrap());
    for (grid, count) in [(points(3, 6), 1), (points(2, 4), 1), (points(2, 6), 2)] {
        let err = Samples::from_dataset(&dataset, &grid, count).unwrap_err();
        assert!(
            matches!(err, SolverError::ShapeMismatch { .. }),
            "{grid:?}: {err}"
        );
    }
    // A range past the samples there are.
    let err = Samples::from_dataset_range(&dataset, &points(2, 6), 1..2).unwrap_err();
    assert!(matches!(err, SolverError::ShapeMismatch { .. }), "{err}");
    let err = Samples::new(vec![2, 2], vec![vec![0.0, f64::NAN, 0.0, 0.0]]).unwrap_err();
    assert!(matches!(err, SolverError::NonFinite { .. }), "{err}");
    let err = Samples::new(vec![4], vec![vec![0.0; 4]]).unwrap_err();
    assert!(matches!(err, SolverError::ShapeMismatch { .. }), "{err}");
}

/// The scenario of `sections` (name, PDE, grid, data) with a soft
/// constraint and the smallest training and evaluation settings, caching
/// its data in `cache`.
fn small(sections: &str, cache: &std::path::Path) -> Scenario {
    let text = format!(
        "{sections}
[constraint]
method = \"soft\"
[training]
batch_size = 1
validate_samples = 1
[eval]
plots = 1
"
    );
    let mut scenario = Scenario::from_str(&text, "<test>").unwrap();
    scenario.data.cache_dir = Some(cache.to_path_buf());
    scenario
}

/// A diffusion–sorption scenario on a 3 × 8 grid with 2 training and 1
/// test samples, caching its data in `cache`.
pub(crate) fn tiny(cache: &std::path::Path) -> Scenario {
    let sections = r#"
name = "tiny-data"
seed = 9
[pde]
kind = "diffusion-sorption"
[grid]
nt = 3
nx = 8
t_max = 50.0
[data]
train_samples = 2
test_samples = 1
[data.reference]
rtol = 1e-6
[model]
modes = [1, 2]
"#;
    small(sections, cache)
}

#[test]
fn generated_data_is_cached_under_a_name_that_tracks_the_settings() {
    let dir = temp_dir("cache");
    let mut scenario = tiny(&dir);
    // A data loss reads the training trajectories, so they are generated.
    scenario.set("training.loss.data=1").unwrap();
    let path = cache_path(&scenario, Split::Train, &dir);
    assert!(!path.exists());
    let generated = Samples::load(&scenario, Split::Train, true).unwrap();
    assert!(path.exists());
    assert_eq!(generated.len(), 2);
    assert_eq!(generated.dims(), &[3, 8]);
    // The second load reads the file: equal, and equal to the file's content.
    assert_eq!(
        Samples::load(&scenario, Split::Train, true).unwrap(),
        generated
    );
    let on_disk =
        Samples::from_dataset(&Dataset::read(&path).unwrap(), &scenario.grid().unwrap(), 2)
            .unwrap();
    assert_eq!(on_disk, generated);
    // Every setting the data depends on changes the name; training settings do not.
    let test_path = cache_path(&scenario, Split::Test, &dir);
    assert_ne!(test_path, path);
    let mut other = scenario.clone();
    other.set("seed=10").unwrap();
    assert_ne!(cache_path(&other, Split::Train, &dir), path);
    other = scenario.clone();
    other.set("data.reference.rtol=1e-7").unwrap();
    assert_ne!(cache_path(&other, Split::Train, &dir), path);
    scenario.set("training.lr=0.5").unwrap();
    assert_eq!(cache_path(&scenario, Split::Train, &dir), path);
}

/// A scenario's new numbers for its definition's initial-condition family
/// (`pde.initial`) draw other data, so they name another cache file.
#[test]
fn an_initial_condition_override_names_another_cache_file() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/allen-cahn-2d-small.toml");
    let mut scenario = Scenario::from_file(path).unwrap();
    let dir = std::path::Path::new("cache");
    let before = cache_path(&scenario, Split::Test, dir);
    scenario.set("pde.initial.amplitude=0.25").unwrap();
    let after = cache_path(&scenario, Split::Test, dir);
    assert_ne!(after, before);
    scenario.set("pde.initial.amplitude=0.5").unwrap();
    assert_ne!(cache_path(&scenario, Split::Test, dir), after);
}

#[test]
fn first_levels_keeps_the_leading_time_levels() {
    // Three levels of two points, each value its flat index.
    let samples = Samples::new(vec![3, 2], vec![(0..6).map(f64::from).collect()]).unwrap();
    let cut = samples.first_levels(2).unwrap();
    assert_eq!(cut.dims(), [2, 2]);
    assert_eq!(cut.trajectories().unwrap(), [vec![0.0, 1.0, 2.0, 3.0]]);
    assert_eq!(samples.first_levels(3).unwrap(), samples);
    for bad in [0, 4] {
        assert!(matches!(
            samples.first_levels(bad),
            Err(SolverError::ShapeMismatch { .. })
        ));
    }
}

#[test]
fn the_initial_rms_is_that_of_the_first_time_level_only() {
    // Two levels of two points: the first level [3, 4] has RMS √((9 + 16)/2);
    // the second level must not enter.
    let samples =
        Samples::new(vec![2, 2], vec![vec![3.0, 4.0, 100.0, -7.0], vec![-0.1; 4]]).unwrap();
    assert_eq!(samples.initial_rms(0), 12.5f64.sqrt());
    assert!((samples.initial_rms(1) - 0.1).abs() < 1e-16);
}

/// Without a data loss the training split is its initial conditions: the
/// same values as the first frames of the generated trajectories, nothing
/// cached, and whole trajectories an error rather than a truncated field.
#[test]
fn a_physics_only_training_split_is_its_initial_conditions() {
    let dir = temp_dir("initial-only");
    let scenario = tiny(&dir);
    let initial = Samples::load(&scenario, Split::Train, true).unwrap();
    assert!(!initial.holds_trajectories());
    assert!(!cache_path(&scenario, Split::Train, &dir).exists());
    let mut with_data = scenario.clone();
    with_data.set("training.loss.data=1").unwrap();
    let whole = Samples::load(&with_data, Split::Train, true).unwrap();
    assert!(whole.holds_trajectories());
    assert_eq!((initial.len(), initial.dims()), (2, &[3, 8][..]));
    for i in 0..2 {
        assert_eq!(initial.initial_condition(i), whole.initial_condition(i));
        assert_eq!(initial.initial_rms(i), whole.initial_rms(i));
    }
    assert!(matches!(
        initial.trajectories(),
        Err(SolverError::InitialConditionsOnly)
    ));
    // The training window keeps them.
    let window = initial.first_levels(2).unwrap();
    assert_eq!(window.dims(), [2, 8]);
    assert_eq!(window.initial_condition(1), whole.initial_condition(1));
    // The test split is whole trajectories either way.
    assert!(
        Samples::load(&scenario, Split::Test, true)
            .unwrap()
            .holds_trajectories()
    );
}

#[test]
fn initial_conditions_of_the_wrong_size_are_rejected() {
    let err = Samples::initial_only(vec![3, 2], vec![vec![0.0; 6]]).unwrap_err();
    assert!(matches!(err, SolverError::ShapeMismatch { .. }), "{err}");
    let err = Samples::initial_only(vec![3, 2], vec![vec![f64::INFINITY, 0.0]]).unwrap_err();
    assert!(matches!(err, SolverError::NonFinite { .. }), "{err}");
}

/// The training window of a run without a horizon is the data themselves
/// (no copy); with one, both splits are cut to the trained levels.
#[test]
fn the_training_window_copies_only_what_it_cuts() {
    let dir = temp_dir("window");
    let mut scenario = tiny(&dir);
    let data = RunData {
        train: Samples::initial_only(vec![3, 2], vec![vec![1.0, 2.0]]).unwrap(),
        test: Samples::new(vec![3, 2], vec![(0..6).map(f64::from).collect()]).unwrap(),
        stored_test: None,
    };
    let whole = data.training_window(&scenario).unwrap();
    assert!(matches!(whole, std::borrow::Cow::Borrowed(_)));
    // Levels at t = 0, 25, 50: a horizon of 30 keeps two.
    scenario.set("training.horizon=30").unwrap();
    let window = data.training_window(&scenario).unwrap();
    assert_eq!(
        window.test.trajectories().unwrap(),
        [vec![0.0, 1.0, 2.0, 3.0]]
    );
    assert_eq!(
        (window.train.dims(), window.train.initial_condition(0)),
        (&[2, 2][..], &[1.0, 2.0][..])
    );
}

/// A stored test split the cache can give back is not held through the
/// training but read again for the evaluation, equal to the one loaded; one
/// generated without a cache is held.
#[test]
fn a_stored_test_split_on_disk_is_read_again_not_held() {
    let dir = temp_dir("stored-test");
    let sections = r#"
name = "tiny-stored"
seed = 4
[pde]
kind = "navier-stokes"
[grid]
nt = 3
nx = 8
ny = 8
t_max = 0.004
[data]
train_samples = 1
test_samples = 2
[data.reference]
resolution = 16
dt = 1e-3
[model]
modes = [1, 2, 2]
"#;
    let mut scenario = small(sections, &dir);
    scenario.set("eval.resolutions=[8, 16]").unwrap();
    let data = RunData::load(&scenario, true).unwrap();
    assert!(data.stored_test.is_none());
    let read_again = data.stored_test(&scenario, true).unwrap().unwrap();
    assert_eq!((read_again.dims(), read_again.len()), (vec![3, 16, 16], 2));
    let (_, stored) = RunData::load_test(&scenario, true).unwrap();
    assert_eq!(Some(read_again.into_owned()), stored);
    // An evaluation of fewer samples than the file holds keeps only those.
    let file = Dataset::read(cache_path(&scenario, Split::Test, &dir)).unwrap();
    let (grid, first) = Samples::test_pair(&scenario, file.clone(), 1).unwrap();
    let first = first.expect("evaluated at resolutions");
    assert_eq!((grid.len(), first.len()), (1, 1));
    assert_eq!(first.trajectory(0), file.trajectory(0));

    let mut uncached = scenario.clone();
    uncached.data.cache_dir = None;
    let data = RunData::load(&uncached, true).unwrap();
    let held = data
        .stored_test
        .as_ref()
        .expect("nothing could give it back");
    // The same trajectories (the file holds its coordinates in f32).
    let stored = stored.expect("evaluated at resolutions");
    assert_eq!(
        (held.dims(), held.trajectories()),
        (stored.dims(), stored.trajectories())
    );
    assert!(matches!(
        data.stored_test(&uncached, true).unwrap(),
        Some(std::borrow::Cow::Borrowed(_))
    ));
    let mut no_resolutions = uncached;
    no_resolutions.eval.resolutions.clear();
    assert!(
        RunData::load(&no_resolutions, true)
            .unwrap()
            .stored_test
            .is_none()
    );
}

/// Ground truth generated on 16 cells and restricted onto 8 is the truth
/// the generator writes for 8 cells from the same 16-cell solve (it
/// averages the cells itself): the restriction is the finite-volume one.
#[test]
fn a_restricted_finer_set_is_the_set_generated_on_the_grid() {
    let dir = temp_dir("restriction");
    let mut coarse = tiny(&dir);
    coarse.set("data.reference.nx=16").unwrap();
    let mut fine = coarse.clone();
    fine.set("grid.nx=16").unwrap();
    let on_grid = Samples::load(&coarse, Split::Test, true).unwrap();
    Samples::load(&fine, Split::Test, true).unwrap();
    let stored = Dataset::read(cache_path(&fine, Split::Test, &dir)).unwrap();
    let restricted = Samples::from_dataset(&stored, &coarse.grid().unwrap(), 1).unwrap();
    let (a, b) = (
        &on_grid.trajectories().unwrap()[0],
        &restricted.trajectories().unwrap()[0],
    );
    let scale = a.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    assert!(scale > 0.0);
    // Both are float32 values: the generator rounds the mean, the
    // restriction averages rounded cells.
    for (x, y) in a.iter().zip(b) {
        assert!(
            (x - y).abs() <= 2.0 * f64::from(f32::EPSILON) * scale,
            "{x} vs {y}"
        );
    }
    // Every other cell instead is off by more than that.
    let every_other = Samples::from_dataset(&stored, &fine.grid().unwrap(), 1).unwrap();
    let shifted: Vec<f64> = every_other.trajectories().unwrap()[0]
        .chunks(16)
        .flat_map(|row| row.iter().step_by(2).copied().collect::<Vec<_>>())
        .collect();
    let worst = a
        .iter()
        .zip(&shifted)
        .fold(0.0_f64, |m, (x, y)| m.max((x - y).abs()));
    assert!(worst > 1e3 * f64::from(f32::EPSILON) * scale, "{worst}");
}

/// A data file with fewer samples than the split asks for is named, with the
/// key that asks: the count and the file are set in different places.
#[test]
fn a_data_file_with_too_few_samples_names_the_file_and_the_key() {
    let dir = temp_dir("short-file");
    let mut scenario = tiny(&dir);
    scenario.set("training.loss.data=1").unwrap();
    Samples::load(&scenario, Split::Train, true).unwrap();
    let file = cache_path(&scenario, Split::Train, &dir);
    let shown = file.display().to_string();
    for (split, key) in [
        (Split::Train, "data.train_samples"),
        (Split::Test, "data.test_samples"),
    ] {
        let mut short = scenario.clone();
        short
            .set_all(&[
                format!("data.train_file={shown:?}"),
                format!("data.test_file={shown:?}"),
                format!("{key}=3"),
                "training.validate_samples=1".to_owned(),
            ])
            .unwrap();
        let message = Samples::load(&short, split, true).unwrap_err().to_string();
        assert!(message.contains(&shown), "{message}");
        assert!(message.contains(&format!("{key} = 3")), "{message}");
    }
}
