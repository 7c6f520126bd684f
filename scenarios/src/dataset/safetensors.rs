//! The dataset in a `.safetensors` file, named like PDEBench's HDF5 groups:
//! tensors `NNNN/data` (float32 `[nt, nx, (ny), 1]`), `NNNN/grid/t`,
//! `NNNN/grid/x`, (`NNNN/grid/y`) (float32) and metadata `NNNN/config`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use safetensors::{Dtype, SafeTensors, View};

use super::{Dataset, Part, sample_name};
use crate::ScenarioError;

/// A float32 tensor converted to little-endian bytes only when written, so
/// that the file is streamed rather than assembled in memory.
struct F32Tensor<'a> {
    shape: Vec<usize>,
    values: Values<'a>,
}

enum Values<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
}

impl View for F32Tensor<'_> {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        let bytes: Vec<u8> = match self.values {
            Values::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Values::F64(v) => v.iter().flat_map(|&x| (x as f32).to_le_bytes()).collect(),
        };
        Cow::Owned(bytes)
    }

    fn data_len(&self) -> usize {
        4 * match self.values {
            Values::F32(v) => v.len(),
            Values::F64(v) => v.len(),
        }
    }
}

pub(super) fn write(dataset: &Dataset, path: &Path) -> Result<(), ScenarioError> {
    let mut data_shape = dataset.dims();
    data_shape.push(1);
    let mut tensors = Vec::new();
    let mut metadata = HashMap::new();
    let axes = [
        ("t", Some(dataset.t())),
        ("x", Some(dataset.x())),
        ("y", dataset.y()),
    ];
    for (i, sample) in dataset.trajectories().iter().enumerate() {
        let name = sample_name(i);
        tensors.push((
            format!("{name}/data"),
            F32Tensor {
                shape: data_shape.clone(),
                values: Values::F32(sample),
            },
        ));
        for (axis, coords) in axes {
            if let Some(coords) = coords {
                tensors.push((
                    format!("{name}/grid/{axis}"),
                    F32Tensor {
                        shape: vec![coords.len()],
                        values: Values::F64(coords),
                    },
                ));
            }
        }
        metadata.insert(format!("{name}/config"), dataset.config().to_owned());
    }
    safetensors::serialize_to_file(tensors, Some(metadata), path)
        .map_err(|e| ScenarioError::format(path, format!("writing safetensors: {e}")))
}

pub(super) fn read(path: &Path, part: Part) -> Result<Dataset, ScenarioError> {
    let file = std::fs::File::open(path).map_err(|e| ScenarioError::io(path, e))?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        // (Mapping a directory would fail with "No such device".)
        let e = std::io::Error::from(std::io::ErrorKind::IsADirectory);
        return Err(ScenarioError::io(path, e));
    }
    // SAFETY: datasets are replaced by a rename, never written in place
    // (`Dataset::write`), so the mapped file does not change while the map
    // lives (only a file truncated by hand meanwhile would fault). Mapped,
    // not read: only the pages of the tensors read are loaded.
    let bytes = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| ScenarioError::io(path, e))?;
    let bad = |reason: String| ScenarioError::format(path, reason);
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let (_, header) =
        SafeTensors::read_metadata(&bytes).map_err(|e| bad(format!("bad header: {e}")))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let count = (0..)
        .take_while(|&i| file.tensor(&format!("{}/data", sample_name(i))).is_ok())
        .count();
    if count == 0 {
        return Err(bad("no sample tensors (expected `0000/data`)".into()));
    }
    // Samples are numbered from 0 without gaps: one past a gap would
    // otherwise be left out without a word.
    let numbered = file
        .names()
        .into_iter()
        .filter(|n| {
            n.strip_suffix("/data")
                .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
        })
        .count();
    if numbered != count {
        return Err(bad(format!(
            "{numbered} sample tensors, but `{}/data` is missing (samples are numbered from \
             0000 without gaps)",
            sample_name(count)
        )));
    }
    let first = sample_name(0);
    let mut t = read_vector(&file, &format!("{first}/grid/t"), path)?;
    let x = read_vector(&file, &format!("{first}/grid/x"), path)?;
    let y_name = format!("{first}/grid/y");
    let y = match file.tensor(&y_name) {
        Ok(_) => Some(read_vector(&file, &y_name, path)?),
        Err(_) => None,
    };
    let mut expected = vec![t.len(), x.len()];
    expected.extend(y.as_ref().map(Vec::len));
    expected.push(1);
    let config = metadata
        .get(&format!("{first}/config"))
        .cloned()
        .unwrap_or_default();
    // Row-major `[nt, …]`: the leading levels are the leading bytes.
    let levels = part.levels_of(t.len());
    let level_values: usize = expected[1..].iter().product();
    let samples = (0..part.samples_of(count))
        .map(|i| {
            let name = format!("{}/data", sample_name(i));
            let view = file
                .tensor(&name)
                .map_err(|e| bad(format!("{name}: {e}")))?;
            if view.shape() != expected.as_slice() {
                return Err(ScenarioError::ShapeMismatch {
                    what: name,
                    expected: expected.clone(),
                    got: view.shape().to_vec(),
                });
            }
            let data = view.data();
            let read = (levels * level_values * view.dtype().bitsize()).div_ceil(8);
            let values = decode(view.dtype(), &data[..read.min(data.len())], &name, path)?;
            Ok(values.into_iter().map(|v| v as f32).collect())
        })
        .collect::<Result<Vec<_>, _>>()?;
    t.truncate(levels);
    Dataset::new(t, x, y, config, samples)
}

fn read_vector(file: &SafeTensors<'_>, name: &str, path: &Path) -> Result<Vec<f64>, ScenarioError> {
    let view = file
        .tensor(name)
        .map_err(|_| ScenarioError::format(path, format!("missing tensor `{name}`")))?;
    if view.shape().len() != 1 {
        return Err(ScenarioError::ShapeMismatch {
            what: name.to_owned(),
            expected: vec![view.shape().iter().product()],
            got: view.shape().to_vec(),
        });
    }
    decode(view.dtype(), view.data(), name, path)
}

/// float32 or float64 little-endian bytes to `f64` values.
fn decode(dtype: Dtype, bytes: &[u8], name: &str, path: &Path) -> Result<Vec<f64>, ScenarioError> {
    match dtype {
        Dtype::F32 => Ok(bytes
            .chunks_exact(4)
            .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            .collect()),
        Dtype::F64 => Ok(bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("chunks of 8 bytes")))
            .collect()),
        other => Err(ScenarioError::format(
            path,
            format!("tensor `{name}` has dtype {other:?}, expected F32 or F64"),
        )),
    }
}
