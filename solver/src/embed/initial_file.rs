//! Initial conditions read from a file, to predict from (`tessera predict`).
//!
//! Two kinds of file are read, told apart by their content:
//!
//! - a dataset ([`Dataset::read_part`]: `.safetensors` in Tessera's layout,
//!   or `.h5` in PDEBench's with the `hdf5` feature): each sample's first
//!   frame. Only the first two levels are read, so a split of gigabytes costs
//!   what its initial conditions do, and the time levels need not match the
//!   model's grid (a PDEBench file with 101 levels predicts on a 26-level
//!   model).
//! - a `.safetensors` file holding a tensor `ic`, `F32` or `F64`,
//!   `[batch, X, (Y)]` (a trailing channel axis of size 1, PDEBench's, is
//!   allowed): what a Python user writes with
//!   `safetensors.numpy.save_file({"ic": a}, "ics.safetensors")`.
//!
//! Either's spatial sizes must be multiples of the model grid's, so initial
//! conditions drawn at the reference solver's resolution predict on the
//! model's: a dataset's finer field is restricted by its coordinates, as
//! the evaluation restricts a finer test set (every `k`-th point of a
//! periodic axis, the means of `k` cells of a cell-centred one; coordinates
//! that are not the model's are an error); a bare tensor, which has no
//! coordinates, by taking every `k`-th point.

use std::path::Path;

use safetensors::{Dtype, SafeTensors};
use tessera_scenarios::dataset::Part;
use tessera_scenarios::{Dataset, ScenarioError};

use crate::SolverError;
use tessera_meshes::Grid;

use crate::data::{Restriction, Samples, grid_dims};

/// The tensor a file of bare initial conditions holds.
pub const IC_TENSOR: &str = "ic";

/// The first `count` (all where `None`) initial conditions in `path` (module
/// docs) on the spatial grid of `grid` (`[t, x, (y)]`), as samples that
/// hold their initial conditions only.
///
/// Errors: an unreadable file; neither kind of file; an `ic` tensor of
/// another data type or rank (a typed error naming the file); spatial sizes
/// that are not multiples of the grid's; a dataset's coordinates that are
/// not the grid's; fewer than `count` or no initial conditions; NaN or
/// infinite values.
pub fn read_initial_conditions(
    path: &Path,
    grid: &Grid,
    count: Option<usize>,
) -> Result<Samples, SolverError> {
    let dims = grid_dims(grid);
    let (have, frames, coords) = if holds_bare_tensor(path)? {
        let (have, frames) = read_bare(path)?;
        (have, frames, None)
    } else {
        // The samples asked for, each's first levels (two: a dataset's least).
        let part = Part {
            samples: count,
            levels: Some(2),
        };
        let dataset = Dataset::read_part(path, part)?;
        let frames: Vec<Vec<f64>> = (0..dataset.len())
            .map(|i| {
                dataset
                    .initial_condition(i)
                    .iter()
                    .map(|&v| v.into())
                    .collect()
            })
            .collect();
        let mut coords = vec![dataset.t().to_vec(), dataset.x().to_vec()];
        coords.extend(dataset.y().map(<[f64]>::to_vec));
        (dataset.dims()[1..].to_vec(), frames, Some(coords))
    };
    let count = count.unwrap_or(frames.len());
    if count == 0 || count > frames.len() {
        return Err(SolverError::ShapeMismatch {
            what: "number of initial conditions in the file (at least 1 and those asked for)",
            expected: vec![count.max(1)],
            got: vec![frames.len()],
        });
    }
    let mut have = have;
    if have.len() == dims.len() && have.last() == Some(&1) {
        // PDEBench's trailing channel axis.
        have.pop();
    }
    // The spatial restriction, on one time level.
    let one = [&[1], &have[..]].concat();
    let restriction = match &coords {
        Some(coords) => {
            let coords: Vec<&[f64]> = coords.iter().map(Vec::as_slice).collect();
            Restriction::onto(&one, &coords, grid, false)
        }
        None => Restriction::by_strides(&one, &dims),
    }
    .map_err(|e| match e {
        SolverError::ShapeMismatch { .. } => SolverError::ShapeMismatch {
            what: "initial conditions [x, (y)] (each size a multiple of the model grid's)",
            expected: dims[1..].to_vec(),
            got: have,
        },
        other => other,
    })?;
    let count_non_finite = frames[..count]
        .iter()
        .flatten()
        .filter(|v| !v.is_finite())
        .count();
    if count_non_finite > 0 {
        return Err(SolverError::NonFinite {
            what: "initial conditions",
            count: count_non_finite,
        });
    }
    let initial = frames[..count]
        .iter()
        .map(|frame| restriction.apply(frame))
        .collect();
    Samples::initial_only(dims, initial)
}

/// Whether `path` is a safetensors file with an [`IC_TENSOR`]: only its
/// header is read, so a large dataset is not read twice.
fn holds_bare_tensor(path: &Path) -> Result<bool, SolverError> {
    use std::io::Read;
    let io = |e| SolverError::io(path, e);
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if !extension.eq_ignore_ascii_case("safetensors") {
        return Ok(false);
    }
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut size = [0; 8];
    if file.read_exact(&mut size).is_err() {
        // Too short to be either kind: the dataset reader says why.
        return Ok(false);
    }
    // safetensors' own bound on a header (100 MB).
    let len = u64::from_le_bytes(size).min(100_000_000);
    let mut header = Vec::new();
    file.take(len).read_to_end(&mut header).map_err(io)?;
    let header: serde_json::Value = serde_json::from_slice(&header).unwrap_or_default();
    Ok(header.get(IC_TENSOR).is_some())
}

/// The spatial sizes and the frames of a file's [`IC_TENSOR`].
fn read_bare(path: &Path) -> Result<(Vec<usize>, Vec<Vec<f64>>), SolverError> {
    let bytes = std::fs::read(path).map_err(|e| SolverError::io(path, e))?;
    let safetensors = |source| SolverError::Safetensors {
        path: path.to_owned(),
        source,
    };
    let malformed = |reason| {
        SolverError::from(ScenarioError::Format {
            path: path.to_owned(),
            reason,
        })
    };
    let file = SafeTensors::deserialize(&bytes).map_err(safetensors)?;
    let tensor = file.tensor(IC_TENSOR).map_err(safetensors)?;
    let shape = tensor.shape().to_vec();
    let values: Vec<f64> = match tensor.dtype() {
        Dtype::F64 => tensor
            .data()
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect(),
        Dtype::F32 => tensor
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")).into())
            .collect(),
        other => {
            return Err(malformed(format!(
                "tensor `{IC_TENSOR}` is {other:?}, not F32 or F64"
            )));
        }
    };
    if !(2..=3).contains(&shape.len()) || shape.contains(&0) {
        let reason =
            format!("tensor `{IC_TENSOR}` has shape {shape:?}, not [batch, X] or [batch, X, Y]");
        return Err(malformed(reason));
    }
    let frame: usize = shape[1..].iter().product();
    let frames = values.chunks_exact(frame).map(<[f64]>::to_vec).collect();
    Ok((shape[1..].to_vec(), frames))
}
