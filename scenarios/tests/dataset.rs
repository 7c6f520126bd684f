//! Dataset files: round trips through safetensors (and HDF5 with the `hdf5`
//! feature), atomic writes, typed errors on bad files, and generation followed
//! by re-validation with the reference solver.

use std::path::{Path, PathBuf};

use tessera_scenarios::dataset::{Generation, Part, Split, generate, validate_solver};
use tessera_scenarios::{Dataset, Scenario, ScenarioError};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tessera-dataset-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A small 1-D and 2-D dataset with distinct values everywhere.
fn datasets() -> Vec<Dataset> {
    let t = vec![0.0, 0.5, 1.0];
    let x: Vec<f64> = (0..4).map(|i| (i as f64 + 0.5) / 4.0).collect();
    let y: Vec<f64> = (0..2).map(|i| i as f64 / 2.0).collect();
    let one_d = (0..3)
        .map(|s| (0..12).map(|i| (s * 100 + i) as f32 * 0.25).collect())
        .collect();
    let two_d = (0..2)
        .map(|s| (0..24).map(|i| (s * 100 + i) as f32 - 7.5).collect())
        .collect();
    vec![
        Dataset::new(t.clone(), x.clone(), None, "name = \"one\"".into(), one_d).unwrap(),
        Dataset::new(t, x, Some(y), "name = \"two\"\n# ünïcode".into(), two_d).unwrap(),
    ]
}

fn round_trip(ext: &str) {
    let dir = scratch(ext);
    for (i, dataset) in datasets().into_iter().enumerate() {
        let path = dir.join(format!("d{i}.{ext}"));
        dataset.write(&path).unwrap();
        let back = Dataset::read(&path).unwrap();
        assert_eq!(back, dataset);
        assert_eq!(
            back.initial_condition(1),
            &dataset.trajectory(1)[..dataset.trajectory(1).len() / 3]
        );
    }
    // Only the targets remain: no temporary files.
    assert_eq!(entries(&dir), [format!("d0.{ext}"), format!("d1.{ext}")]);
    // Parts: what the whole file holds, cut in memory — the first samples
    // (all where the file has fewer), the first levels of each (at least
    // two, at most all).
    for (i, dataset) in datasets().into_iter().enumerate() {
        let path = dir.join(format!("d{i}.{ext}"));
        let nt = dataset.t().len();
        let frame = dataset.trajectory(0).len() / nt;
        for samples in [None, Some(0), Some(1), Some(2), Some(9)] {
            for levels in [None, Some(0), Some(1), Some(2), Some(3), Some(9)] {
                let part = Part { samples, levels };
                let (n, l) = (
                    samples.unwrap_or(usize::MAX).min(dataset.len()),
                    levels.unwrap_or(nt).clamp(2, nt),
                );
                let cut: Vec<Vec<f32>> = dataset.trajectories()[..n]
                    .iter()
                    .map(|s| s[..l * frame].to_vec())
                    .collect();
                let expected = Dataset::new(
                    dataset.t()[..l].to_vec(),
                    dataset.x().to_vec(),
                    dataset.y().map(<[f64]>::to_vec),
                    dataset.config().to_owned(),
                    cut,
                )
                .unwrap();
                assert_eq!(
                    Dataset::read_part(&path, part).unwrap(),
                    expected,
                    "{part:?}"
                );
            }
        }
    }
}

#[test]
fn safetensors_round_trip() {
    round_trip("safetensors");
}

#[cfg(feature = "hdf5")]
#[test]
fn hdf5_round_trip() {
    round_trip("h5");
}

/// The file formats of this build.
fn extensions() -> Vec<&'static str> {
    let mut exts = vec!["safetensors"];
    if cfg!(feature = "hdf5") {
        exts.push("h5");
    }
    exts
}

#[test]
fn failed_writes_leave_nothing_behind() {
    for ext in extensions() {
        let dir = scratch(&format!("failed-{ext}"));
        let dataset = &datasets()[0];
        let target = dir.join(format!("d.{ext}"));
        dataset.write(&target).unwrap();
        let before = std::fs::read(&target).unwrap();
        // A directory in the way of the rename: the write fails, the old file
        // elsewhere and the directory are untouched, and no temporary remains.
        let blocked = dir.join(format!("blocked.{ext}"));
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("keep"), b"x").unwrap();
        let err = dataset.write(&blocked).unwrap_err();
        assert!(matches!(err, ScenarioError::Io { .. }), "{err}");
        assert_eq!(
            entries(&dir),
            [format!("blocked.{ext}"), format!("d.{ext}")]
        );
        assert_eq!(entries(&blocked), ["keep"]);
        assert_eq!(std::fs::read(&target).unwrap(), before);
        let missing_dir = dir.join(format!("no/such/dir/d.{ext}"));
        let err = dataset.write(&missing_dir).unwrap_err();
        assert!(matches!(err, ScenarioError::Io { .. }), "{err}");
    }
}

/// A NaN smuggled into a valid file (by patching the bytes of a known value)
/// is caught on reading, naming the file and the sample.
#[test]
fn nan_in_a_safetensors_file_is_rejected() {
    let dir = scratch("nan-st");
    let path = dir.join("d.safetensors");
    let marker = 1234.5f32;
    let mut samples = vec![vec![0.5f32; 6], vec![0.25f32; 6]];
    samples[1][5] = marker;
    let dataset = Dataset::new(
        vec![0.0, 0.5, 1.0],
        vec![0.25, 0.75],
        None,
        String::new(),
        samples,
    )
    .unwrap();
    dataset.write(&path).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let needle = marker.to_le_bytes();
    let at = bytes.windows(4).position(|w| w == needle).unwrap();
    bytes[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
    let err = Dataset::read(&path).unwrap_err();
    assert!(
        matches!(&err, ScenarioError::NonFinite { what, index: 5, .. }
            if what.contains("d.safetensors") && what.contains("0001")),
        "{err}"
    );
    // The NaN is in sample 1's third level: parts without it read.
    for (samples, levels) in [(Some(1), None), (None, Some(2))] {
        let part = Part { samples, levels };
        let read = Dataset::read_part(&path, part).unwrap();
        assert!(read.trajectories().iter().flatten().all(|v| v.is_finite()));
    }
}

#[test]
fn bad_files_are_typed_errors() {
    let dir = scratch("bad");
    let missing = Dataset::read(dir.join("missing.safetensors"));
    assert!(
        matches!(missing, Err(ScenarioError::Io { .. })),
        "{missing:?}"
    );
    let folder = dir.join("folder.safetensors");
    std::fs::create_dir(&folder).unwrap();
    let err = Dataset::read(&folder).unwrap_err();
    assert!(
        matches!(&err, ScenarioError::Io { .. }) && err.to_string().contains("directory"),
        "{err}"
    );
    let empty = dir.join("empty.safetensors");
    std::fs::write(&empty, b"").unwrap();
    let err = Dataset::read(&empty).unwrap_err();
    assert!(matches!(err, ScenarioError::Format { .. }), "{err}");
    let garbage = dir.join("garbage.safetensors");
    std::fs::write(&garbage, b"definitely not a tensor file").unwrap();
    assert!(matches!(
        Dataset::read(&garbage),
        Err(ScenarioError::Format { .. })
    ));
    let unknown = Dataset::read(dir.join("data.npz"));
    assert!(
        matches!(unknown, Err(ScenarioError::UnsupportedFormat { .. })),
        "{unknown:?}"
    );
    #[cfg(not(feature = "hdf5"))]
    assert!(matches!(
        Dataset::read(dir.join("d.h5")),
        Err(ScenarioError::UnsupportedFormat { .. })
    ));
}

/// A safetensors file in our naming with integer data, or without the grid,
/// is a format error naming the file and the tensor.
#[test]
fn wrong_dtypes_and_missing_tensors_in_safetensors_are_rejected() {
    use safetensors::tensor::{Dtype, TensorView};
    let dir = scratch("dtype-st");
    let ints: Vec<u8> = [1i32, 2, 3, 4]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let coords: Vec<u8> = [0.25f32, 0.75]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let data = TensorView::new(Dtype::I32, vec![2, 2, 1], &ints).unwrap();
    let axis = || TensorView::new(Dtype::F32, vec![2], &coords).unwrap();
    let int_data = dir.join("ints.safetensors");
    let tensors = [
        ("0000/data", data.clone()),
        ("0000/grid/t", axis()),
        ("0000/grid/x", axis()),
    ];
    std::fs::write(&int_data, safetensors::serialize(tensors, None).unwrap()).unwrap();
    let err = Dataset::read(&int_data).unwrap_err();
    assert!(
        matches!(&err, ScenarioError::Format { path, reason }
            if path == &int_data && reason.contains("0000/data") && reason.contains("I32")),
        "{err}"
    );
    let no_grid = dir.join("no-grid.safetensors");
    let tensors = [("0000/data", data), ("0000/grid/t", axis())];
    std::fs::write(&no_grid, safetensors::serialize(tensors, None).unwrap()).unwrap();
    let err = Dataset::read(&no_grid).unwrap_err();
    assert!(
        matches!(&err, ScenarioError::Format { path, reason }
            if path == &no_grid && reason.contains("0000/grid/x")),
        "{err}"
    );
    // Samples 0000 and 0002: the gap is named, not the later sample dropped.
    let floats: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let sample = || TensorView::new(Dtype::F32, vec![2, 2, 1], &floats).unwrap();
    let gap = dir.join("gap.safetensors");
    let tensors = [
        ("0000/data", sample()),
        ("0000/grid/t", axis()),
        ("0000/grid/x", axis()),
        ("0002/data", sample()),
    ];
    std::fs::write(&gap, safetensors::serialize(tensors, None).unwrap()).unwrap();
    let err = Dataset::read(&gap).unwrap_err();
    assert!(
        matches!(&err, ScenarioError::Format { reason, .. } if reason.contains("`0001/data` is missing")),
        "{err}"
    );
}

#[test]
fn bad_contents_are_rejected() {
    let t = vec![0.0, 1.0];
    let x = vec![0.25, 0.75];
    let nan = Dataset::new(
        t.clone(),
        x.clone(),
        None,
        String::new(),
        vec![vec![0.0, 1.0, f32::NAN, 2.0]],
    );
    assert!(
        matches!(nan, Err(ScenarioError::NonFinite { index: 2, .. })),
        "{nan:?}"
    );
    let short = Dataset::new(
        t.clone(),
        x.clone(),
        None,
        String::new(),
        vec![vec![0.0; 3]],
    );
    assert!(
        matches!(short, Err(ScenarioError::ShapeMismatch { .. })),
        "{short:?}"
    );
    let inf_axis = Dataset::new(
        vec![0.0, f64::INFINITY],
        x,
        None,
        String::new(),
        vec![vec![0.0; 4]],
    );
    assert!(
        matches!(inf_axis, Err(ScenarioError::NonFinite { .. })),
        "{inf_axis:?}"
    );
}

#[cfg(feature = "hdf5")]
mod pdebench_layout {
    use hdf5::filters::Filter;
    use hdf5::types::{FloatSize, TypeDescriptor, VarLenUnicode};
    use hdf5_metno as hdf5;

    use super::*;

    const NT: usize = 5;
    const NX: usize = 8;

    fn pdebench_t() -> Vec<f32> {
        (0..NT).map(|i| 125.0 * i as f32).collect()
    }

    fn pdebench_x() -> Vec<f32> {
        (0..NX).map(|i| (i as f32 + 0.5) / NX as f32).collect()
    }

    /// Writes `samples` with the HDF5 library the way PDEBench's
    /// `gen_diff_sorp.py` does through h5py: datasets `NNNN/data`,
    /// `NNNN/grid/x`, `NNNN/grid/t` as lzf-compressed float32 (h5py picks
    /// chunks smaller than the array), and each sample's YAML config as a
    /// *root* attribute named `NNNN/config`. `grids` lists the axes to write.
    fn write_pdebench(path: &Path, samples: &[Vec<f32>], shape: &[usize], grids: &[&str]) {
        let file = hdf5::File::create(path).unwrap();
        for (s, values) in samples.iter().enumerate() {
            let name = format!("{s:04}");
            let chunk: Vec<usize> = shape.iter().map(|&n| n.div_ceil(2)).collect();
            file.new_dataset::<f32>()
                .shape(shape)
                .chunk(chunk)
                .lzf()
                .create(format!("{name}/data").as_str())
                .unwrap()
                .write_raw(values)
                .unwrap();
            for &axis in grids {
                let coords = if axis == "t" {
                    pdebench_t()
                } else {
                    pdebench_x()
                };
                file.new_dataset::<f32>()
                    .shape([coords.len()])
                    .chunk([coords.len()])
                    .lzf()
                    .create(format!("{name}/grid/{axis}").as_str())
                    .unwrap()
                    .write_raw(&coords)
                    .unwrap();
            }
            let yaml: VarLenUnicode = format!("sim:\n  D: 5.0e-4\n  seed: {s}\n").parse().unwrap();
            file.new_attr::<VarLenUnicode>()
                .create(format!("{name}/config").as_str())
                .unwrap()
                .write_scalar(&yaml)
                .unwrap();
        }
        file.close().unwrap();
    }

    fn sample(s: usize) -> Vec<f32> {
        (0..NT * NX).map(|i| (s * 1000 + i) as f32 * 1e-3).collect()
    }

    #[test]
    fn a_pdebench_diffusion_sorption_file_loads() {
        let dir = scratch("pdebench");
        let path = dir.join("1D_diff-sorp_NA_NA.h5");
        let samples: Vec<Vec<f32>> = (0..3).map(sample).collect();
        write_pdebench(&path, &samples, &[NT, NX, 1], &["x", "t"]);
        let dataset = Dataset::read(&path).unwrap();
        assert_eq!(dataset.len(), 3);
        assert_eq!(dataset.dims(), [NT, NX]);
        let widen = |v: Vec<f32>| v.into_iter().map(f64::from).collect::<Vec<_>>();
        assert_eq!(dataset.t(), widen(pdebench_t()));
        assert_eq!(dataset.x(), widen(pdebench_x()));
        assert_eq!(dataset.y(), None);
        assert_eq!(dataset.config(), "sim:\n  D: 5.0e-4\n  seed: 0\n");
        assert_eq!(dataset.trajectories(), samples);
    }

    /// Our writer's file, inspected with the HDF5 library rather than our
    /// reader: group names, float32 lzf-compressed datasets of the documented
    /// shapes, the `config` string attribute.
    #[test]
    fn written_files_have_the_pdebench_layout() {
        let dir = scratch("layout");
        for (i, dataset) in datasets().into_iter().enumerate() {
            let path = dir.join(format!("d{i}.h5"));
            dataset.write(&path).unwrap();
            let file = hdf5::File::open(&path).unwrap();
            let names: Vec<String> = (0..dataset.len()).map(|s| format!("{s:04}")).collect();
            assert_eq!(file.member_names().unwrap(), names);
            let mut shape = dataset.dims();
            shape.push(1);
            for (s, name) in names.iter().enumerate() {
                let group = file.group(name).unwrap();
                let mut arrays = vec![
                    ("data", shape.clone()),
                    ("grid/t", vec![3]),
                    ("grid/x", vec![4]),
                ];
                if dataset.y().is_some() {
                    arrays.push(("grid/y", vec![2]));
                }
                assert_eq!(group.link_exists("grid/y"), dataset.y().is_some());
                for (array, dims) in arrays {
                    let d = group.dataset(array).unwrap();
                    assert_eq!(d.shape(), dims, "{name}/{array}");
                    assert_eq!(
                        d.dtype().unwrap().to_descriptor().unwrap(),
                        TypeDescriptor::Float(FloatSize::U4)
                    );
                    assert_eq!(d.filters(), [Filter::LZF], "{name}/{array}");
                }
                let data: Vec<f32> = group.dataset("data").unwrap().read_raw().unwrap();
                assert_eq!(data, dataset.trajectory(s));
                let config: VarLenUnicode = group.attr("config").unwrap().read_scalar().unwrap();
                assert_eq!(config.as_str(), dataset.config());
            }
        }
    }

    #[test]
    fn bad_hdf5_files_are_typed_errors_naming_file_and_key() {
        let dir = scratch("bad-h5");
        let missing = dir.join("missing.h5");
        let err = Dataset::read(&missing).unwrap_err();
        assert!(matches!(err, ScenarioError::Io { .. }), "{err}");
        let garbage = dir.join("garbage.h5");
        std::fs::write(&garbage, b"not an HDF5 file").unwrap();
        let err = Dataset::read(&garbage).unwrap_err();
        assert!(matches!(err, ScenarioError::Format { .. }), "{err}");
        let empty = dir.join("empty.h5");
        hdf5::File::create(&empty).unwrap().close().unwrap();
        let err = Dataset::read(&empty).unwrap_err();
        assert!(
            matches!(&err, ScenarioError::Format { reason, .. } if reason.contains("0000")),
            "{err}"
        );

        let no_x = dir.join("no-x.h5");
        write_pdebench(&no_x, &[sample(0)], &[NT, NX, 1], &["t"]);
        let err = Dataset::read(&no_x).unwrap_err();
        assert!(
            matches!(&err, ScenarioError::Format { path, reason } if path == &no_x && reason.contains("0000/grid/x")),
            "{err}"
        );

        let no_channel = dir.join("no-channel.h5");
        write_pdebench(&no_channel, &[sample(0)], &[NT, NX], &["x", "t"]);
        let err = Dataset::read(&no_channel).unwrap_err();
        assert!(
            matches!(&err, ScenarioError::ShapeMismatch { what, .. }
                if what.contains("no-channel.h5") && what.contains("0000/data")),
            "{err}"
        );

        let nan = dir.join("nan.h5");
        let mut poisoned = sample(1);
        poisoned[13] = f32::NAN;
        write_pdebench(&nan, &[sample(0), poisoned], &[NT, NX, 1], &["x", "t"]);
        let err = Dataset::read(&nan).unwrap_err();
        assert!(
            matches!(&err, ScenarioError::NonFinite { what, index: 13, .. }
                if what.contains("nan.h5") && what.contains("0001")),
            "{err}"
        );
    }

    #[test]
    fn integer_data_is_a_typed_error() {
        let dir = scratch("ints");
        let path = dir.join("ints.h5");
        let file = hdf5::File::create(&path).unwrap();
        let group = file.create_group("0000").unwrap();
        group
            .new_dataset::<i32>()
            .shape([2, 2, 1])
            .create("data")
            .unwrap()
            .write_raw(&[1, 2, 3, 4])
            .unwrap();
        group
            .new_dataset::<f32>()
            .shape([2])
            .create("grid/t")
            .unwrap()
            .write_raw(&[0.0f32, 1.0])
            .unwrap();
        group
            .new_dataset::<f32>()
            .shape([2])
            .create("grid/x")
            .unwrap()
            .write_raw(&[0.25f32, 0.75])
            .unwrap();
        file.close().unwrap();
        let err = Dataset::read(&path).unwrap_err();
        assert!(
            matches!(&err, ScenarioError::Format { reason, .. } if reason.contains("0000/data")),
            "{err}"
        );
    }
}

const DS_TINY: &str = r#"
name = "ds-tiny"
[pde]
kind = "diffusion-sorption"
[grid]
nt = 11
nx = 32
t_max = 500.0
[data]
train_samples = 4
test_samples = 2
[data.reference]
nx = 64
rtol = 1e-8
[model]
modes = [4, 4]
[constraint]
experts = [1, 4]
points = 50
[training]
batch_size = 2
validate_samples = 2
[eval]
plots = 1
"#;

const NS_TINY: &str = r#"
name = "ns-tiny"
[pde]
kind = "navier-stokes"
nu = 1e-3
[grid]
nt = 5
nx = 16
ny = 16
t_max = 0.5
[data]
train_samples = 2
test_samples = 2
[data.reference]
resolution = 32
dt = 0.01
[model]
modes = [2, 2, 2]
[constraint]
experts = [1, 2, 2]
points = 50
[training]
batch_size = 2
validate_samples = 2
[eval]
plots = 1
resolutions = [16, 32]
"#;

fn options(samples: usize, split: Split) -> Generation {
    Generation {
        samples,
        seed: 9,
        split,
        quiet: true,
    }
}

#[test]
fn generated_diffusion_sorption_data_validates() {
    let scenario = Scenario::from_str(DS_TINY, "ds-tiny").unwrap();
    let train = generate(&scenario, &options(3, Split::Train)).unwrap();
    assert_eq!(train.dims(), [11, 32]);
    assert_eq!(
        Scenario::from_str(train.config(), "stored").unwrap(),
        scenario
    );
    // Constant initial conditions in [0, 0.2), distinct per sample, and
    // reproducible from the seed.
    let ics: Vec<f32> = (0..3).map(|i| train.initial_condition(i)[0]).collect();
    assert!(ics.iter().all(|&u| (0.0..0.2).contains(&u)), "{ics:?}");
    assert!(ics[0] != ics[1] && ics[1] != ics[2]);
    assert!(train.initial_condition(0).iter().all(|&u| u == ics[0]));
    assert_eq!(
        generate(&scenario, &options(3, Split::Train)).unwrap(),
        train
    );
    let test = generate(&scenario, &options(1, Split::Test)).unwrap();
    assert_ne!(test.initial_condition(0)[0], ics[0]);
    // Our own data re-solves to f32 rounding.
    let check = validate_solver(&scenario, &train, true).unwrap();
    assert_eq!(check.solver_resolution, 64);
    assert!(check.rel_l2_mean < 1e-6, "{check:?}");
    // A perturbed file is caught: 1 % everywhere in sample 1.
    let mut samples: Vec<Vec<f32>> = train.trajectories().to_vec();
    samples[1].iter_mut().skip(32).for_each(|v| *v *= 1.01);
    let perturbed = Dataset::new(
        train.t().to_vec(),
        train.x().to_vec(),
        None,
        String::new(),
        samples,
    )
    .unwrap();
    let check = validate_solver(&scenario, &perturbed, true).unwrap();
    assert!(
        check.rel_l2[0] < 1e-6 && (check.rel_l2[1] - 0.01).abs() < 1e-3,
        "{check:?}"
    );
}

#[test]
fn generated_navier_stokes_data_validates() {
    let scenario = Scenario::from_str(NS_TINY, "ns-tiny").unwrap();
    let train = generate(&scenario, &options(2, Split::Train)).unwrap();
    assert_eq!(train.dims(), [5, 16, 16]);
    let ic = train.initial_condition(0);
    // Mean-free at the solver resolution; the subsample's mean differs only by
    // aliased modes of wavenumber 16, which the smooth field barely has.
    let n = ic.len() as f64;
    let mean = ic.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let rms = (ic.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / n).sqrt();
    assert!(mean.abs() < 1e-3 * rms, "mean {mean}, rms {rms}");
    // Re-solving starts from the 16² initial condition interpolated to 32²,
    // which drops its Nyquist modes (k = 8); the random field's spectrum there
    // is ~1e-5 of its peak, which bounds the agreement.
    let check = validate_solver(&scenario, &train, true).unwrap();
    assert!(check.rel_l2_mean < 1e-4, "{check:?}");
    // The test split is written at the largest evaluation resolution.
    let test = generate(&scenario, &options(1, Split::Test)).unwrap();
    assert_eq!(test.dims(), [5, 32, 32]);
    let check = validate_solver(&scenario, &test, true).unwrap();
    assert!(check.rel_l2_mean < 1e-5, "{check:?}");
}

#[test]
fn scenarios_without_a_reference_solver_are_rejected() {
    // Heat has no reference solver, so none of its settings either.
    let text = DS_TINY
        .replace("kind = \"diffusion-sorption\"", "kind = \"heat\"")
        .replace("[data.reference]\nnx = 64\nrtol = 1e-8\n", "");
    let scenario = Scenario::from_str(&text, "heat").unwrap();
    let err = generate(&scenario, &options(1, Split::Train)).unwrap_err();
    assert!(matches!(err, ScenarioError::Unsupported { .. }), "{err}");
    let wrong_rank = &datasets()[1];
    let ds = Scenario::from_str(DS_TINY, "ds").unwrap();
    let err = validate_solver(&ds, wrong_rank, true).unwrap_err();
    assert!(matches!(err, ScenarioError::ShapeMismatch { .. }), "{err}");
}
