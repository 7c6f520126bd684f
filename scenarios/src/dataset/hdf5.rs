//! The dataset in an HDF5 file in PDEBench's layout (`1D_diff-sorp_NA_NA.h5`):
//! one group per sample, `0000`, `0001`, …, each holding `data` (float32
//! `[nt, nx, (ny), 1]`), `grid/t`, `grid/x` (`grid/y`) and a string attribute
//! `config`; datasets are lzf-compressed (one chunk each), as h5py writes them.
//!
//! PDEBench's generator (`data_gen/gen_diff_sorp.py`) actually puts each
//! sample's config on the *root* group, as an attribute literally named
//! `NNNN/config` (h5py allows `/` in attribute names). We write the per-group
//! attribute the issue specifies and read either, so real PDEBench files keep
//! their config text. The grid is read from the first sample: PDEBench (and we)
//! write the same grid into every group.

use std::path::Path;
use std::str::FromStr;

use hdf5::types::{TypeDescriptor, VarLenAscii, VarLenUnicode};
use hdf5::{Hyperslab, SliceOrIndex};
use hdf5_metno as hdf5;
use ndarray::IxDyn;

use super::{Dataset, Part, sample_name};
use crate::ScenarioError;

fn h5_error(path: &Path, what: &str, e: hdf5::Error) -> ScenarioError {
    ScenarioError::format(path, format!("{what}: {e}"))
}

pub(super) fn write(dataset: &Dataset, path: &Path) -> Result<(), ScenarioError> {
    let err = |what: String| move |e| h5_error(path, &what, e);
    let file = hdf5::File::create(path).map_err(err("creating HDF5 file".into()))?;
    let mut shape = dataset.dims();
    shape.push(1);
    let config = VarLenUnicode::from_str(dataset.config())
        .map_err(|e| ScenarioError::format(path, format!("config attribute: {e}")))?;
    for (i, sample) in dataset.trajectories().iter().enumerate() {
        let name = sample_name(i);
        let group = file.create_group(&name).map_err(err(name.clone()))?;
        write_array(&group, "data", &shape, sample, path)?;
        let grid = group.create_group("grid").map_err(err(name.clone()))?;
        for (axis, coords) in [
            ("t", Some(dataset.t())),
            ("x", Some(dataset.x())),
            ("y", dataset.y()),
        ] {
            if let Some(coords) = coords {
                let values: Vec<f32> = coords.iter().map(|&c| c as f32).collect();
                write_array(&grid, axis, &[coords.len()], &values, path)?;
            }
        }
        group
            .new_attr::<VarLenUnicode>()
            .create("config")
            .and_then(|a| a.write_scalar(&config))
            .map_err(err(format!("{name}/config")))?;
    }
    file.close().map_err(err("closing HDF5 file".into()))
}

fn write_array(
    group: &hdf5::Group,
    name: &str,
    shape: &[usize],
    values: &[f32],
    path: &Path,
) -> Result<(), ScenarioError> {
    group
        .new_dataset::<f32>()
        .shape(shape)
        .chunk(shape)
        .lzf()
        .create(name)
        .and_then(|d| d.write_raw(values))
        .map_err(|e| h5_error(path, name, e))
}

pub(super) fn read(path: &Path, part: Part) -> Result<Dataset, ScenarioError> {
    let err = |what: String| move |e| h5_error(path, &what, e);
    // A missing or unreadable file is an I/O error, not a format error.
    std::fs::File::open(path).map_err(|e| ScenarioError::io(path, e))?;
    let file = hdf5::File::open(path).map_err(err("opening HDF5 file".into()))?;
    let mut names: Vec<(u64, String)> = file
        .member_names()
        .map_err(err("listing groups".into()))?
        .into_iter()
        .filter_map(|n| n.parse::<u64>().ok().map(|i| (i, n)))
        .collect();
    names.sort();
    let Some((_, first)) = names.first() else {
        return Err(ScenarioError::format(
            path,
            "no sample groups (expected `0000`, …)",
        ));
    };
    let group = file.group(first).map_err(err(first.clone()))?;
    let mut t = read_floats(&group, first, "t", path)?;
    let x = read_floats(&group, first, "x", path)?;
    let y = if group.link_exists("grid/y") {
        Some(read_floats(&group, first, "y", path)?)
    } else {
        None
    };
    let config = read_config(&file, first, path)?;
    let mut expected = vec![t.len(), x.len()];
    expected.extend(y.as_ref().map(Vec::len));
    expected.push(1);
    let levels = part.levels_of(t.len());
    // The leading levels, every point of each: a hyperslab of the full rank.
    let mut leading = vec![SliceOrIndex::from(0..levels)];
    leading.resize(expected.len(), SliceOrIndex::from(..));
    let leading = Hyperslab::from(leading);
    let samples = names[..part.samples_of(names.len())]
        .iter()
        .map(|(_, name)| {
            let group = file.group(name).map_err(err(name.clone()))?;
            let data = group.dataset("data").map_err(err(format!("{name}/data")))?;
            if data.shape() != expected {
                return Err(ScenarioError::ShapeMismatch {
                    what: format!("{name}/data"),
                    expected: expected.clone(),
                    got: data.shape(),
                });
            }
            check_float(&data, &format!("{name}/data"), path)?;
            let read = if levels == t.len() {
                data.read_raw::<f32>()
            } else {
                data.read_slice::<f32, _, IxDyn>(leading.clone())
                    .map(|a| a.iter().copied().collect())
            };
            read.map_err(err(format!("{name}/data")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    t.truncate(levels);
    Dataset::new(t, x, y, config, samples)
}

fn check_float(data: &hdf5::Dataset, name: &str, path: &Path) -> Result<(), ScenarioError> {
    let dtype = data
        .dtype()
        .and_then(|d| d.to_descriptor())
        .map_err(|e| h5_error(path, name, e))?;
    match dtype {
        TypeDescriptor::Float(_) => Ok(()),
        other => Err(ScenarioError::format(
            path,
            format!("`{name}` has type {other:?}, expected a float"),
        )),
    }
}

/// The coordinates `grid/<axis>` of sample group `sample`, as a 1-D float array.
fn read_floats(
    group: &hdf5::Group,
    sample: &str,
    axis: &str,
    path: &Path,
) -> Result<Vec<f64>, ScenarioError> {
    let name = format!("{sample}/grid/{axis}");
    let data = group
        .dataset(&format!("grid/{axis}"))
        .map_err(|_| ScenarioError::format(path, format!("missing dataset `{name}`")))?;
    if data.ndim() != 1 {
        return Err(ScenarioError::ShapeMismatch {
            what: name,
            expected: vec![data.size()],
            got: data.shape(),
        });
    }
    check_float(&data, &name, path)?;
    data.read_raw::<f64>().map_err(|e| h5_error(path, &name, e))
}

/// Sample `sample`'s config text: its group's `config` attribute, else
/// PDEBench's root attribute `<sample>/config`, else empty (the config is
/// informational; the data is usable without it).
fn read_config(file: &hdf5::File, sample: &str, path: &Path) -> Result<String, ScenarioError> {
    let group = file.group(sample).map_err(|e| h5_error(path, sample, e))?;
    let root_name = format!("{sample}/config");
    for (location, name) in [(&*group, "config"), (&**file, root_name.as_str())] {
        let names = location
            .attr_names()
            .map_err(|e| h5_error(path, "listing attributes", e))?;
        if names.iter().any(|n| n == name) {
            let attr = location
                .attr(name)
                .map_err(|e| h5_error(path, "config attribute", e))?;
            return read_string(&attr, path);
        }
    }
    Ok(String::new())
}

/// A scalar string attribute: h5py writes Python strings as variable-length
/// UTF-8; variable-length ASCII is accepted too.
fn read_string(attr: &hdf5::Attribute, path: &Path) -> Result<String, ScenarioError> {
    if let Ok(s) = attr.read_scalar::<VarLenUnicode>() {
        return Ok(s.as_str().to_owned());
    }
    attr.read_scalar::<VarLenAscii>()
        .map(|s| s.as_str().to_owned())
        .map_err(|e| h5_error(path, &format!("attribute `{}`", attr.name()), e))
}
