//! Externally defined constraint problems: one safetensors file holds everything
//! a mixture of constraint experts needs for one sample, so that another code (or
//! the reference JAX implementation) can hand Tessera a problem and compare
//! answers (`tessera constraint solve --problem FILE`).
//!
//! | tensor | dtype | shape | meaning |
//! |---|---|---|---|
//! | `basis` | F64 | `[T, X, (Y), N]` | the basis `B` (before the PDE's solution map) |
//! | `grid` | F64 | `[T, X, (Y), d]` | physical coordinates `(t, x, (y))` of every point; the FD operators use their spacing |
//! | `ic` | F64 | `[X, (Y)]` | the initial condition |
//! | `sample_idx` | I64 | `[K, P]` | expert `k`'s sampled points, flat indices into `T × X (× Y)`, inside its tile |
//!
//! Metadata: `split` (`1x4`, `1x2x2`, …; `K` is its product), `ic_bc_rows`
//! (`global`: every expert gets every initial/boundary row, as the reference;
//! `local`: only the rows in its tile), and the PDE's own entries, whose keys
//! start with `pde` (its name and constants: the scenarios crate's registry
//! writes `pde`, `pde.constants`, `pde.fd`). This crate does not know PDEs by
//! name: the caller of [`ExternalProblem::from_bytes`] turns the `pde` entries
//! into a PDE (and the grid axes' periodicity) and rejects inconsistent ones.
//!
//! Solving goes through the [`ConstraintLayer`]'s own forward pass at the file's
//! points ([`ConstraintLayer::forward_at`]), so a file is solved exactly as the
//! layer solves the same sample during training.
//!
//! The grid must be a uniform tensor-product grid: along each axis the coordinate
//! depends only on that axis's index and is equally spaced to within `1e-6` of the
//! axis's span (float32 coordinates pass; a genuinely non-uniform grid does not).
//! Periodic axes (which depend on the PDE) have period `n·h`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::Serialize;
use tessera_constraints::{ConstraintError, LevenbergMarquardt, Pde};
use tessera_meshes::{Axis, Grid, MeshError, Shape};

use crate::router::{Router, RowScope, parse_split};
use crate::{ConstraintLayer, ExpertsError, LayerConfig};

/// The start of every metadata key that belongs to the PDE.
pub const PDE_KEY_PREFIX: &str = "pde";

/// Relative tolerance (to the axis span) of the uniform-grid check.
const UNIFORM_TOLERANCE: f64 = 1e-6;

/// Errors from reading, validating or solving a problem file.
#[derive(Debug, thiserror::Error)]
pub enum ProblemFileError {
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a safetensors file.
    #[error("problem file: {source}")]
    Format {
        /// What the safetensors reader said.
        #[source]
        source: safetensors::SafeTensorError,
    },
    /// A tensor the format requires is missing.
    #[error("problem file: no tensor `{tensor}`")]
    MissingTensor {
        /// The tensor.
        tensor: &'static str,
    },
    /// The `pde` metadata entries name no PDE the caller knows, or are
    /// inconsistent (constants of another PDE, out of range, …).
    #[error("problem file: the `pde` metadata describe no usable PDE: {source}")]
    Pde {
        /// The caller's reason.
        #[source]
        source: Box<dyn Error + Send + Sync>,
    },
    /// A metadata entry is missing or has an unknown value.
    #[error("problem file metadata `{key}` = {value:?}: {reason}")]
    Metadata {
        /// The key.
        key: &'static str,
        /// The value found (empty when missing).
        value: String,
        /// What is accepted.
        reason: &'static str,
    },
    /// A tensor has the wrong element type.
    #[error("tensor `{tensor}` has dtype {got}, expected {expected}")]
    Dtype {
        /// The tensor.
        tensor: &'static str,
        /// The dtype required.
        expected: &'static str,
        /// The dtype found.
        got: String,
    },
    /// A tensor has the wrong shape.
    #[error("tensor `{tensor}` has shape {got:?}, expected {expected}")]
    Shape {
        /// The tensor.
        tensor: &'static str,
        /// The shape required, in words.
        expected: String,
        /// The shape found.
        got: Vec<usize>,
    },
    /// A tensor holds NaN or an infinity.
    #[error("tensor `{tensor}` holds the non-finite value {value} at flat index {index}")]
    NonFinite {
        /// The tensor.
        tensor: &'static str,
        /// Flat index of the first offending entry.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A sampled point index is negative or beyond the grid.
    #[error("sample_idx[{expert}] holds {index}, outside 0..{len}")]
    PointOutOfRange {
        /// The expert (row of `sample_idx`).
        expert: usize,
        /// The offending index.
        index: i64,
        /// Number of grid points.
        len: usize,
    },
    /// A sampled point lies outside its expert's tile.
    #[error("sample_idx[{expert}] holds point {point}, which lies in tile {tile}")]
    PointOutsideTile {
        /// The expert.
        expert: usize,
        /// The point.
        point: usize,
        /// The tile it lies in.
        tile: usize,
    },
    /// An expert samples the same point twice.
    #[error("sample_idx[{expert}] holds point {point} twice")]
    DuplicatePoint {
        /// The expert.
        expert: usize,
        /// The point.
        point: usize,
    },
    /// The grid is not a uniform tensor-product grid.
    #[error("grid axis {axis} is not uniform at index {index}: {reason}")]
    NonUniformGrid {
        /// The axis (0 = t).
        axis: usize,
        /// The multi-index or axis index where the check failed (flattened).
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The PDE rejects the problem (e.g. a zero initial value for diffusion–sorption).
    #[error(transparent)]
    Constraint(#[from] ConstraintError),
    /// The expert layer rejects the problem.
    #[error(transparent)]
    Experts(#[from] ExpertsError),
    /// The grid or split is invalid.
    #[error(transparent)]
    Mesh(#[from] MeshError),
}

/// One sample's constraint problem as a file describes it (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalProblem<P> {
    pde: Arc<P>,
    /// The PDE's metadata entries (keys start with [`PDE_KEY_PREFIX`]).
    pde_metadata: BTreeMap<String, String>,
    grid: Grid,
    basis: Vec<f64>,
    n_basis: usize,
    ic: Vec<f64>,
    split: Vec<usize>,
    row_scope: RowScope,
    points: Vec<Vec<usize>>,
}

/// The experts' answers to an [`ExternalProblem`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExternalSolution {
    /// `ω_k*`, `[K][N]`.
    pub weights: Vec<Vec<f64>>,
    /// LM iterations per expert.
    pub iterations: Vec<usize>,
    /// `‖r_k(ω_k*)‖₂` per expert: PDE rows, initial/boundary rows and ridge rows.
    pub final_residual_norms: Vec<f64>,
    /// Why each expert's solve stopped (`Converged`, `MaxIterations`, …).
    pub stop_reasons: Vec<String>,
}

impl<P: Pde> ExternalProblem<P> {
    /// A problem from its parts, validated as a file would be.
    ///
    /// `pde_metadata` describes `pde` in the file (every key starts with
    /// [`PDE_KEY_PREFIX`]), `basis` is `[grid points, n_basis]`, `ic` one value
    /// per spatial point, `points[k]` expert `k`'s sampled points.
    ///
    /// Errors: every check of [`ExternalProblem::from_bytes`] that applies, and
    /// a PDE metadata key without the prefix.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pde: P,
        pde_metadata: BTreeMap<String, String>,
        grid: Grid,
        basis: Vec<f64>,
        n_basis: usize,
        ic: Vec<f64>,
        split: Vec<usize>,
        row_scope: RowScope,
        points: Vec<Vec<usize>>,
    ) -> Result<Self, ProblemFileError> {
        if let Some(key) = pde_metadata.keys().find(|k| !k.starts_with(PDE_KEY_PREFIX)) {
            return Err(ProblemFileError::Metadata {
                key: "pde",
                value: key.clone(),
                reason: "the PDE's metadata keys start with `pde`",
            });
        }
        let problem = Self {
            pde: Arc::new(pde),
            pde_metadata,
            grid,
            basis,
            n_basis,
            ic,
            split,
            row_scope,
            points,
        };
        problem.validate()?;
        Ok(problem)
    }

    /// Reads and validates a problem file (`resolve` as for
    /// [`ExternalProblem::from_bytes`]).
    ///
    /// Errors: as [`ExternalProblem::from_bytes`], or the file cannot be read.
    pub fn load<E>(
        path: &Path,
        resolve: impl FnOnce(&BTreeMap<String, String>) -> Result<(P, Vec<bool>), E>,
    ) -> Result<Self, ProblemFileError>
    where
        E: Error + Send + Sync + 'static,
    {
        let bytes = std::fs::read(path).map_err(|source| ProblemFileError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_bytes(&bytes, resolve)
    }

    /// Parses and validates the bytes of a problem file. `resolve` receives the
    /// PDE's metadata entries (the keys starting with [`PDE_KEY_PREFIX`]) and
    /// returns the PDE with the periodicity of each grid axis `(t, x, (y))`, or
    /// its reason to reject them.
    ///
    /// Errors: not safetensors, missing tensors or metadata, PDE entries that
    /// `resolve` rejects, unknown metadata values, wrong dtypes or shapes,
    /// non-finite values, a non-uniform grid, sampled points out of range,
    /// outside their tile or repeated, a bad split.
    pub fn from_bytes<E>(
        bytes: &[u8],
        resolve: impl FnOnce(&BTreeMap<String, String>) -> Result<(P, Vec<bool>), E>,
    ) -> Result<Self, ProblemFileError>
    where
        E: Error + Send + Sync + 'static,
    {
        let format = |source| ProblemFileError::Format { source };
        let tensors = SafeTensors::deserialize(bytes).map_err(format)?;
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(format)?;
        let metadata = header.metadata().clone().unwrap_or_default();
        let meta = |key: &'static str| -> Result<String, ProblemFileError> {
            metadata
                .get(key)
                .cloned()
                .ok_or_else(|| ProblemFileError::Metadata {
                    key,
                    value: String::new(),
                    reason: "missing",
                })
        };
        let pde_metadata: BTreeMap<String, String> = metadata
            .iter()
            .filter(|(k, _)| k.starts_with(PDE_KEY_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if pde_metadata.is_empty() {
            return Err(ProblemFileError::Metadata {
                key: "pde",
                value: String::new(),
                reason: "missing",
            });
        }
        let (pde, periodic) = resolve(&pde_metadata).map_err(|e| ProblemFileError::Pde {
            source: Box::new(e),
        })?;
        let split_text = meta("split")?;
        let split = parse_split(&split_text).ok_or_else(|| ProblemFileError::Metadata {
            key: "split",
            value: split_text.clone(),
            reason: "positive integers joined by 'x', one per grid axis (e.g. 1x4)",
        })?;
        let scope_text = meta("ic_bc_rows")?;
        let row_scope = match scope_text.as_str() {
            "global" => RowScope::Global,
            "local" => RowScope::Local,
            _ => {
                return Err(ProblemFileError::Metadata {
                    key: "ic_bc_rows",
                    value: scope_text,
                    reason: "global or local",
                });
            }
        };

        let ndim = periodic.len();
        let (grid_dims, coordinates) = read_f64(&tensors, "grid")?;
        if grid_dims.len() != ndim + 1 || grid_dims[ndim] != ndim || grid_dims.contains(&0) {
            return Err(ProblemFileError::Shape {
                tensor: "grid",
                expected: format!(
                    "[T, X{}, {ndim}] for the file's PDE",
                    if ndim == 3 { ", Y" } else { "" },
                ),
                got: grid_dims,
            });
        }
        check_finite("grid", &coordinates)?;
        let grid = uniform_grid(&periodic, &grid_dims[..ndim], &coordinates)?;

        let (basis_dims, basis) = read_f64(&tensors, "basis")?;
        let n_basis = *basis_dims.last().unwrap_or(&0);
        if basis_dims.len() != ndim + 1 || basis_dims[..ndim] != grid_dims[..ndim] || n_basis == 0 {
            return Err(ProblemFileError::Shape {
                tensor: "basis",
                expected: format!("{:?} followed by N ≥ 1", &grid_dims[..ndim]),
                got: basis_dims,
            });
        }
        let (ic_dims, ic) = read_f64(&tensors, "ic")?;
        if ic_dims != grid_dims[1..ndim] {
            return Err(ProblemFileError::Shape {
                tensor: "ic",
                expected: format!("{:?}", &grid_dims[1..ndim]),
                got: ic_dims,
            });
        }
        let (idx_dims, indices) = read_i64(&tensors, "sample_idx")?;
        let k: usize = split.iter().product();
        if idx_dims.len() != 2 || idx_dims[0] != k || idx_dims[1] == 0 {
            return Err(ProblemFileError::Shape {
                tensor: "sample_idx",
                expected: format!("[K = {k} (split {split_text}), P ≥ 1]"),
                got: idx_dims,
            });
        }
        let points = indices
            .chunks_exact(idx_dims[1])
            .enumerate()
            .map(|(expert, row)| {
                row.iter()
                    .map(|&index| {
                        usize::try_from(index)
                            .ok()
                            .filter(|&p| p < grid.len())
                            .ok_or(ProblemFileError::PointOutOfRange {
                                expert,
                                index,
                                len: grid.len(),
                            })
                    })
                    .collect::<Result<Vec<usize>, _>>()
            })
            .collect::<Result<_, _>>()?;
        Self::new(
            pde,
            pde_metadata,
            grid,
            basis,
            n_basis,
            ic,
            split,
            row_scope,
            points,
        )
    }

    /// The bytes of this problem's file (see the module docs for the layout).
    pub fn to_bytes(&self) -> Vec<u8> {
        let dims = self.grid.shape().dims();
        let basis_dims: Vec<usize> = dims.iter().copied().chain([self.n_basis]).collect();
        let grid_dims: Vec<usize> = dims.iter().copied().chain([dims.len()]).collect();
        let p = self.points[0].len();
        let indices: Vec<i64> = self
            .points
            .iter()
            .flatten()
            .map(|&i| i64::try_from(i).expect("grid indices fit in i64"))
            .collect();
        let tensors = [
            ("basis", Dtype::F64, basis_dims, le_bytes_f64(&self.basis)),
            (
                "grid",
                Dtype::F64,
                grid_dims,
                le_bytes_f64(&self.grid.coordinates()),
            ),
            ("ic", Dtype::F64, dims[1..].to_vec(), le_bytes_f64(&self.ic)),
            (
                "sample_idx",
                Dtype::I64,
                vec![self.points.len(), p],
                indices.iter().flat_map(|i| i.to_le_bytes()).collect(),
            ),
        ];
        let mut metadata: HashMap<String, String> = self.pde_metadata.clone().into_iter().collect();
        metadata.extend([
            (
                "split".to_owned(),
                self.split
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join("x"),
            ),
            (
                "ic_bc_rows".to_owned(),
                match self.row_scope {
                    RowScope::Global => "global",
                    RowScope::Local => "local",
                }
                .to_owned(),
            ),
        ]);
        write_safetensors(&tensors, metadata)
    }

    /// The PDE.
    pub fn pde(&self) -> &P {
        &self.pde
    }

    /// The PDE's metadata entries.
    pub fn pde_metadata(&self) -> &BTreeMap<String, String> {
        &self.pde_metadata
    }

    /// The grid.
    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    /// The basis `[grid points, N]`.
    pub fn basis(&self) -> &[f64] {
        &self.basis
    }

    /// Number of basis functions `N`.
    pub fn n_basis(&self) -> usize {
        self.n_basis
    }

    /// The initial condition.
    pub fn ic(&self) -> &[f64] {
        &self.ic
    }

    /// The tile split.
    pub fn split(&self) -> &[usize] {
        &self.split
    }

    /// Which linear rows each expert gets.
    pub fn row_scope(&self) -> RowScope {
        self.row_scope
    }

    /// Every expert's sampled points.
    pub fn points(&self) -> &[Vec<usize>] {
        &self.points
    }

    /// Solves every expert's problem with `lm` and ridge weight `ridge` through
    /// the constraint layer's forward pass at the file's points. The experts
    /// solve in parallel in the caller's rayon pool.
    ///
    /// Errors: the PDE rejects the grid or the initial condition, or an invalid
    /// ridge.
    pub fn solve(
        &self,
        lm: &LevenbergMarquardt,
        ridge: f64,
    ) -> Result<ExternalSolution, ProblemFileError> {
        let config = LayerConfig {
            row_scope: self.row_scope,
            lm: lm.clone(),
            ridge,
            ..LayerConfig::new(&self.split, self.points[0].len())
        };
        let layer = ConstraintLayer::new(Arc::clone(&self.pde), self.grid.clone(), config)?;
        let forward =
            layer.forward_at(&self.basis, self.n_basis, &[&self.ic], self.points.clone())?;
        Ok(ExternalSolution {
            weights: forward
                .weights
                .chunks_exact(self.n_basis)
                .map(<[f64]>::to_vec)
                .collect(),
            iterations: forward.statuses.iter().map(|s| s.iterations).collect(),
            final_residual_norms: forward.statuses.iter().map(|s| s.final_residual).collect(),
            stop_reasons: forward
                .statuses
                .iter()
                .map(|s| format!("{:?}", s.reason))
                .collect(),
        })
    }

    /// The router of this problem's split and row scope (its own sampling is unused:
    /// the file gives the points).
    fn router(&self) -> Result<Router, ProblemFileError> {
        let smallest = self.points.iter().map(Vec::len).min().unwrap_or(0);
        Ok(Router::new(
            self.grid.shape(),
            &self.split,
            smallest.max(1),
            0,
            self.row_scope,
        )?)
    }

    fn validate(&self) -> Result<(), ProblemFileError> {
        let (g, n) = (self.grid.len(), self.n_basis);
        if n == 0 || self.basis.len() != g * n {
            return Err(ProblemFileError::Shape {
                tensor: "basis",
                expected: format!("{g} points × N ≥ 1"),
                got: vec![self.basis.len()],
            });
        }
        check_finite("basis", &self.basis)?;
        if self.ic.len() != g / self.grid.shape().dims()[0] {
            return Err(ProblemFileError::Shape {
                tensor: "ic",
                expected: format!("{:?}", &self.grid.shape().dims()[1..]),
                got: vec![self.ic.len()],
            });
        }
        check_finite("ic", &self.ic)?;
        let router = self.router()?;
        let tiling = router.tiling();
        let p = self.points.first().map_or(0, Vec::len);
        if self.points.len() != tiling.n_tiles()
            || p == 0
            || self.points.iter().any(|r| r.len() != p)
        {
            return Err(ProblemFileError::Shape {
                tensor: "sample_idx",
                expected: format!("[K = {}, P ≥ 1], equal rows", tiling.n_tiles()),
                got: self.points.iter().map(Vec::len).collect(),
            });
        }
        for (expert, row) in self.points.iter().enumerate() {
            let mut seen = HashSet::with_capacity(row.len());
            for &point in row {
                if point >= g {
                    return Err(ProblemFileError::PointOutOfRange {
                        expert,
                        index: i64::try_from(point).unwrap_or(i64::MAX),
                        len: g,
                    });
                }
                let tile = tiling.tile_of(point);
                if tile != expert {
                    return Err(ProblemFileError::PointOutsideTile {
                        expert,
                        point,
                        tile,
                    });
                }
                if !seen.insert(point) {
                    return Err(ProblemFileError::DuplicatePoint { expert, point });
                }
            }
        }
        Ok(())
    }
}

/// A tensor's shape and values, little-endian `f64`.
fn read_f64(
    tensors: &SafeTensors<'_>,
    name: &'static str,
) -> Result<(Vec<usize>, Vec<f64>), ProblemFileError> {
    let view = tensor(tensors, name, Dtype::F64)?;
    let values = view
        .data()
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8-byte chunks")))
        .collect();
    Ok((view.shape().to_vec(), values))
}

/// A tensor's shape and values, little-endian `i64`.
fn read_i64(
    tensors: &SafeTensors<'_>,
    name: &'static str,
) -> Result<(Vec<usize>, Vec<i64>), ProblemFileError> {
    let view = tensor(tensors, name, Dtype::I64)?;
    let values = view
        .data()
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().expect("8-byte chunks")))
        .collect();
    Ok((view.shape().to_vec(), values))
}

fn tensor<'a>(
    tensors: &SafeTensors<'a>,
    name: &'static str,
    dtype: Dtype,
) -> Result<TensorView<'a>, ProblemFileError> {
    let view = tensors
        .tensor(name)
        .map_err(|_| ProblemFileError::MissingTensor { tensor: name })?;
    if view.dtype() != dtype {
        return Err(ProblemFileError::Dtype {
            tensor: name,
            expected: if dtype == Dtype::F64 { "F64" } else { "I64" },
            got: format!("{:?}", view.dtype()),
        });
    }
    Ok(view)
}

fn check_finite(tensor: &'static str, values: &[f64]) -> Result<(), ProblemFileError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(ProblemFileError::NonFinite {
            tensor,
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

/// The grid whose coordinates `[points, ndim]` the file gives, after checking that
/// they form a uniform tensor-product grid.
fn uniform_grid(
    periodic_axes: &[bool],
    dims: &[usize],
    coordinates: &[f64],
) -> Result<Grid, ProblemFileError> {
    let shape = Shape::new(dims);
    let ndim = dims.len();
    let strides = shape.strides();
    let names = ["t", "x", "y"];
    let mut axes = Vec::with_capacity(ndim);
    for (a, &periodic) in periodic_axes.iter().enumerate() {
        let n = dims[a];
        let coords: Vec<f64> = (0..n)
            .map(|i| coordinates[i * strides[a] * ndim + a])
            .collect();
        let span = coords[n - 1] - coords[0];
        if n < 2 || span <= 0.0 {
            return Err(ProblemFileError::NonUniformGrid {
                axis: a,
                index: 0,
                reason: "needs at least two increasing coordinates",
            });
        }
        let h = span / (n - 1) as f64;
        let tolerance = UNIFORM_TOLERANCE * span;
        if let Some(i) =
            (0..n).position(|i| (coords[i] - (coords[0] + h * i as f64)).abs() > tolerance)
        {
            return Err(ProblemFileError::NonUniformGrid {
                axis: a,
                index: i,
                reason: "unequal spacing",
            });
        }
        // Tensor product: the coordinate along `a` depends only on index `a`.
        if let Some(p) = (0..shape.len()).position(|p| {
            (coordinates[p * ndim + a] - coords[shape.unflat(p)[a]]).abs() > tolerance
        }) {
            return Err(ProblemFileError::NonUniformGrid {
                axis: a,
                index: p,
                reason: "the coordinate varies along another axis",
            });
        }
        let axis = if periodic {
            Axis::periodic(names[a], coords[0], coords[0] + h * n as f64, n)?
        } else {
            Axis::linspace(names[a], coords[0], coords[n - 1], n)?
        };
        axes.push(axis);
    }
    Ok(Grid::new(axes)?)
}

fn le_bytes_f64(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Serialises `(name, dtype, shape, little-endian bytes)` tensors with metadata.
///
/// # Panics
/// If a tensor's byte count does not match its dtype and shape (a programmer error
/// of the caller, which builds them from typed data).
#[track_caller]
fn write_safetensors(
    tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)],
    metadata: HashMap<String, String>,
) -> Vec<u8> {
    let views = tensors.iter().map(|(name, dtype, shape, bytes)| {
        let view =
            TensorView::new(*dtype, shape.clone(), bytes).expect("bytes match dtype and shape");
        (name.to_string(), view)
    });
    safetensors::serialize(views, Some(metadata)).expect("in-memory serialisation")
}

#[cfg(test)]
mod tests;
