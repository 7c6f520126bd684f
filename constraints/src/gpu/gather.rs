//! Expert problems whose term rows the GPU builds from the basis it is
//! given, instead of receiving them.
//!
//! Why: at the paper's diffusion–sorption scale (batch 6, 4 experts of
//! 20 000 points, 3 terms, N = 16) the term rows are 184 MB, more than twice
//! the basis they are read from (79 MB), and building them on the host costs
//! a pass over all of it. Where every term the residual reads is a local
//! operator (a stencil), a term row is a short sparse combination of basis
//! rows. Those combinations for every term at every grid point
//! ([`SparseRows`], a few doubles per row instead of `N`) go to the device
//! once per layer ([`super::DeviceTiles`]); a call sends the experts'
//! sampled points with the fields they read ([`RowGather`]), and `gather.cu`
//! writes the rows at those points straight into the batch's device array.

use std::sync::Arc;

use cudarc::driver::{CudaFunction, CudaSlice, CudaStream, PushKernelArg};
use tessera_meshes::SparseRows;

use super::GpuError;
use super::device::{driver, launch_config, strided_blocks, upload};
use super::kernel::BatchProblem;
use crate::problem::{check_coordinates, check_parts, check_size};
use crate::{ConstraintError, ProblemSize};

/// An expert problem without its term rows: everything an
/// [`crate::ExpertProblem`] holds but `A_j[p]`, which a [`RowGather`] builds
/// on the GPU. Only [`super::GpuLm::solve_kept_gathered`] takes it, so a
/// problem whose rows live on a device cannot reach a CPU solver.
#[derive(Debug, Clone, PartialEq)]
pub struct GatheredProblem {
    size: ProblemSize,
    n_points: usize,
    offsets: Vec<f64>,
    linear: Vec<f64>,
    linear_rhs: Vec<f64>,
    ridge: f64,
    coordinates: Vec<f64>,
}

impl GatheredProblem {
    /// A problem of `n_points` points whose term rows will be gathered, with
    /// offsets `[P, d]`, linear rows `[R, N]` and their right-hand sides, the
    /// ridge, and the points' coordinates `[P, ndim]` (empty when the residual
    /// reads none).
    ///
    /// Errors: as [`crate::ExpertProblem::new`] and
    /// [`crate::ExpertProblem::with_coordinates`].
    pub fn new(
        size: ProblemSize,
        n_points: usize,
        offsets: Vec<f64>,
        linear: Vec<f64>,
        linear_rhs: Vec<f64>,
        ridge: f64,
        coordinates: Vec<f64>,
    ) -> Result<Self, ConstraintError> {
        check_size(size)?;
        check_parts(size, n_points, &offsets, &linear, &linear_rhs, ridge)?;
        if !coordinates.is_empty() {
            check_coordinates(n_points, &coordinates)?;
        }
        Ok(Self {
            size,
            n_points,
            offsets,
            linear,
            linear_rhs,
            ridge,
            coordinates,
        })
    }
}

impl BatchProblem for GatheredProblem {
    const HAS_TERM_ROWS: bool = false;
    fn size(&self) -> ProblemSize {
        self.size
    }
    fn n_points(&self) -> usize {
        self.n_points
    }
    fn n_linear(&self) -> usize {
        self.linear_rhs.len()
    }
    fn term_rows(&self) -> &[f64] {
        &[]
    }
    fn offsets(&self) -> &[f64] {
        &self.offsets
    }
    fn point_coordinates(&self) -> &[f64] {
        &self.coordinates
    }
    fn linear(&self) -> &[f64] {
        &self.linear
    }
    fn linear_rhs(&self) -> &[f64] {
        &self.linear_rhs
    }
    fn ridge(&self) -> f64 {
        self.ridge
    }
}

/// How the GPU builds a batch's term rows: the experts' sampled points of
/// one sample (`points`, in the batch's order: expert, then point), at
/// which the residual's terms at every grid point (uploaded once per layer
/// with its tiles, [`super::DeviceTiles`]) are applied to each sample's
/// field (`fields`, `[samples, grid points, N]`: the basis, or `S B` where
/// the PDE maps it).
///
/// Why the points and not the rows: the experts' points change every step,
/// and building their rows on the host (one per point and term, 240 000
/// at the paper's diffusion–sorption scale) cost every call a large share
/// of the layer's host time, and their upload many times the points'; the
/// terms at every grid point are fixed for a layer, so a call sends one
/// index per point.
#[derive(Debug, Clone, Copy)]
pub struct RowGather<'a> {
    points: &'a [usize],
    fields: &'a [f64],
    n_grid: usize,
    n_basis: usize,
    samples: usize,
}

impl<'a> RowGather<'a> {
    /// The gather at `points` of a grid of `n_grid` points from `fields`,
    /// `N = n_basis` values per grid point.
    ///
    /// Errors: `fields` not `[samples ≥ 1, n_grid, N]`, a point outside
    /// the grid, or a grid too large for the kernel's 32-bit point indices.
    pub fn new(
        points: &'a [usize],
        fields: &'a [f64],
        n_grid: usize,
        n_basis: usize,
    ) -> Result<Self, GpuError> {
        let field_len = n_grid * n_basis;
        if field_len == 0 || fields.is_empty() || !fields.len().is_multiple_of(field_len) {
            return Err(GpuError::Unsupported(format!(
                "fields of {} values for a grid of {n_grid} points with N = {n_basis}",
                fields.len()
            )));
        }
        if i32::try_from(n_grid).is_err() {
            return Err(GpuError::Unsupported(format!(
                "a gather on a grid of {n_grid} points (the kernel indexes them with 32 bits)"
            )));
        }
        if let Some(&bad) = points.iter().find(|&&p| p >= n_grid) {
            return Err(GpuError::Unsupported(format!(
                "a gather at point {bad} of a grid of {n_grid}"
            )));
        }
        Ok(Self {
            points,
            fields,
            n_grid,
            n_basis,
            samples: fields.len() / field_len,
        })
    }

    /// The sampled points of one sample, all experts.
    pub fn points(&self) -> &[usize] {
        self.points
    }

    /// The fields, `[samples, grid points, N]`.
    pub fn fields(&self) -> &[f64] {
        self.fields
    }

    /// Number of grid points per field.
    pub fn n_grid(&self) -> usize {
        self.n_grid
    }

    /// Values per grid point, `N`.
    pub fn n_basis(&self) -> usize {
        self.n_basis
    }

    /// Number of samples.
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// The points as the kernel reads them.
    pub(super) fn device_points(&self) -> Vec<i32> {
        // `new` checked that every point is below `n_grid`, which fits.
        self.points.iter().map(|&p| p as i32).collect()
    }
}

/// `Ok` if the gather kernels' 32-bit column indices reach every column of
/// `rows`.
pub(super) fn check_columns(rows: &SparseRows) -> Result<(), GpuError> {
    match i32::try_from(rows.n_columns()) {
        Ok(_) => Ok(()),
        Err(_) => Err(GpuError::Unsupported(format!(
            "rows over {} columns (the gather indexes them with 32 bits)",
            rows.n_columns()
        ))),
    }
}

/// The CSR arrays of `rows` as the kernels read them (its columns checked by
/// [`check_columns`]).
fn device_indices(rows: &SparseRows) -> (Vec<i64>, Vec<i32>) {
    let starts = rows.row_start().iter().map(|&s| s as i64).collect();
    let columns = rows.columns().iter().map(|&c| c as i32).collect();
    (starts, columns)
}

/// The points a gather reads its rows at: `count` points on the device,
/// each with `terms` rows (`tessera_gather_rows`).
#[derive(Clone, Copy)]
pub(super) struct AtPoints<'a> {
    pub(super) points: &'a CudaSlice<i32>,
    pub(super) count: usize,
    pub(super) terms: usize,
}

/// Sparse rows copied to the device, for the gather kernels.
pub(super) struct DeviceRows {
    pub(super) starts: CudaSlice<i64>,
    pub(super) columns: CudaSlice<i32>,
    pub(super) weights: CudaSlice<f64>,
    len: usize,
    n_columns: usize,
}

impl DeviceRows {
    /// `rows` on `stream`'s device.
    ///
    /// Errors: more columns than 32-bit indices reach, or a driver failure.
    pub(super) fn upload(stream: &Arc<CudaStream>, rows: &SparseRows) -> Result<Self, GpuError> {
        check_columns(rows)?;
        let (starts, columns) = device_indices(rows);
        Ok(Self {
            starts: upload(stream, &starts)?,
            columns: upload(stream, &columns)?,
            weights: upload(stream, rows.weights())?,
            len: rows.len(),
            n_columns: rows.n_columns(),
        })
    }

    /// The rows applied to each of the `samples` fields `[samples, columns,
    /// n]` in `fields`: `[samples, rows, n]`, by `function`, a gather
    /// kernel compiled for `n` values per column (`gather.cu`). With `at`
    /// the rows are those of its `terms` per point at its points instead
    /// (`[samples, count · terms, n]`, `tessera_gather_rows`): these rows
    /// must then be `terms` per grid point, point-major.
    ///
    /// Errors: the driver's.
    pub(super) fn gather(
        &self,
        stream: &Arc<CudaStream>,
        function: &CudaFunction,
        n: usize,
        samples: usize,
        at: Option<AtPoints<'_>>,
        fields: &CudaSlice<f64>,
    ) -> Result<CudaSlice<f64>, GpuError> {
        let rows = at.map_or(self.len, |a| a.count * a.terms);
        let total = samples * rows * n;
        let mut out = stream
            .alloc_zeros::<f64>(total.max(1))
            .map_err(driver("allocating a gather's output"))?;
        let (samples, rows) = (samples as i64, rows as i64);
        let terms = at.map(|a| a.terms as i64);
        let field_len = (self.n_columns * n) as i64;
        let blocks = strided_blocks(total);
        let mut launch = stream.launch_builder(function);
        launch.arg(&samples).arg(&rows);
        if let (Some(a), Some(terms)) = (at, &terms) {
            launch.arg(a.points).arg(terms);
        }
        launch
            .arg(&self.starts)
            .arg(&self.columns)
            .arg(&self.weights)
            .arg(fields)
            .arg(&field_len)
            .arg(&mut out);
        // SAFETY: the arguments match the gather kernels' parameters in order
        // and type (`points` and `terms` only `tessera_gather_rows`'s, which
        // the callers pass with `at`); `starts` has one entry more than these
        // rows and the column and weight arrays the `nnz` they index, every
        // column is below `n_columns` (`SparseRows` checks them); the kernel
        // reads row `r < rows` itself, or with `at` row `p·terms + j` for its
        // `count` points `p`, which are below the grid's points, and these
        // rows are `terms` per grid point (the callers check both); the callers' `fields` hold `samples` fields of
        // `n_columns · n` doubles and `out` holds `samples · rows · n`; the
        // kernel's grid-stride loop covers them with any number of blocks.
        unsafe { launch.launch(launch_config(blocks)?) }.map_err(driver("launching a gather"))?;
        Ok(out)
    }
}
