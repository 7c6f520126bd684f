//! The PDE loss of whole fields on the GPU: what
//! [`crate::FieldResidual::loss_and_gradient`] computes on the CPU, for every
//! sample of a batch in one pass.
//!
//! Why on the device: the loss reads the residual at every grid point of
//! every sample (at the paper's diffusion–sorption scale, 6 × 103 424 points
//! with their dual numbers), the largest pointwise pass of a training step
//! outside the solves, and it runs through the same emitted residual the
//! solver kernels call. Every term the residual reads must be local (a
//! stencil): the terms of a field and their adjoint are then sparse products
//! ([`SparseRows`] and its transpose, applied by `gather.cu`), and the rest is
//! pointwise or a per-segment reduction (`field.cu`).

use std::sync::Arc;

use cudarc::driver::{CudaFunction, CudaSlice, CudaStream, PushKernelArg};
use tessera_meshes::SparseRows;

use super::GpuError;
use super::device::{bind_for_drop, driver, launch_config, strided_blocks, upload};
use super::gather::DeviceRows;
use super::kernel::KernelShape;
use super::staging;
use crate::ConstraintError;

/// Each sample's PDE loss and the loss's gradient in the fields, from
/// [`GpuFieldResidual::loss_and_gradient`].
#[derive(Debug, Clone, PartialEq)]
pub struct FieldLoss {
    /// `ℓ_b = Σ_s ‖F_{b,s}‖ / √S` over the `S` segments of sample `b`.
    pub losses: Vec<f64>,
    /// `∂ℓ_b/∂u_b` for every sample, `[samples, grid points]`.
    pub gradient: Vec<f64>,
}

/// The residual of one PDE on one grid, its kernels loaded on a GPU with the
/// terms' rows at every grid point (from [`super::GpuLm::field_residual`]).
pub struct GpuFieldResidual {
    stream: Arc<CudaStream>,
    gather: CudaFunction,
    /// `field.cu`'s kernels, in [`super::kernel::FIELD_FUNCTIONS`]' order.
    kernels: [CudaFunction; 3],
    terms: DeviceRows,
    adjoint: DeviceRows,
    coordinates: CudaSlice<f64>,
    n_grid: usize,
    shape: KernelShape,
}

impl Drop for GpuFieldResidual {
    fn drop(&mut self) {
        bind_for_drop(&self.stream);
    }
}

impl std::fmt::Debug for GpuFieldResidual {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuFieldResidual")
            .field("n_grid", &self.n_grid)
            .field("shape", &self.shape)
            .finish()
    }
}

/// Each sample's loss and each segment's cotangent scale from the segments'
/// sums of squares (`segments` per sample, sample-major): the loss
/// `Σ_s ‖F_s‖ / √S` and the scale `1 / (‖F_s‖ √S)`, zero where a norm is
/// zero (a subgradient), as the CPU's `‖F‖` (`S = 1`) and per-level norms.
/// `None` when a sum is not finite.
pub fn segment_scales(sums: &[f64], segments: usize) -> Option<(Vec<f64>, Vec<f64>)> {
    if segments == 0 || sums.iter().any(|s| !s.is_finite()) {
        return None;
    }
    let per_segment = 1.0 / (segments as f64).sqrt();
    let norms: Vec<f64> = sums.iter().map(|s| s.sqrt()).collect();
    let losses = norms
        .chunks(segments)
        .map(|sample| {
            sample
                .iter()
                .fold(0.0, |sum, norm| sum + norm * per_segment)
        })
        .collect();
    let scales = norms
        .iter()
        .map(|&norm| {
            if norm > 0.0 {
                1.0 / norm * per_segment
            } else {
                0.0
            }
        })
        .collect();
    Some((losses, scales))
}

impl GpuFieldResidual {
    /// The residual of `shape` with the terms' rows `terms` (one per grid
    /// point and term, point-major: `[grid points, d]` rows over the grid's
    /// points) and the grid's `coordinates` (`[grid points, C]`, empty when
    /// the residual reads none), loaded with `gather` and `kernels` on
    /// `stream`'s device.
    ///
    /// Errors: rows or coordinates that do not match the shape and grid, or
    /// a driver failure.
    pub(super) fn new(
        stream: &Arc<CudaStream>,
        gather: CudaFunction,
        kernels: [CudaFunction; 3],
        shape: KernelShape,
        terms: &SparseRows,
        coordinates: &[f64],
    ) -> Result<Self, GpuError> {
        let (n_grid, d, c) = (terms.n_columns(), shape.n_terms, shape.n_coordinates);
        if n_grid == 0 || terms.len() != n_grid * d || coordinates.len() != n_grid * c {
            return Err(GpuError::Unsupported(format!(
                "a field residual of {} term rows and {} coordinates on {n_grid} grid points \
                 ({d} terms and {c} coordinates per point)",
                terms.len(),
                coordinates.len()
            )));
        }
        Ok(Self {
            stream: stream.clone(),
            gather,
            kernels,
            terms: DeviceRows::upload(stream, terms)?,
            adjoint: DeviceRows::upload(stream, &terms.transpose())?,
            coordinates: upload(stream, coordinates)?,
            n_grid,
            shape,
        })
    }

    /// Grid points per field.
    pub fn n_points(&self) -> usize {
        self.n_grid
    }

    /// Every sample's loss `Σ_s ‖F_s‖ / √S` over `segments` equal segments
    /// of its points (`1`: the norm of the whole residual; the number of
    /// time levels: the per-level norms of `PdeNorm::Levels`) and its
    /// gradient, for the fields `u` (`[samples, grid points]`).
    ///
    /// Errors: the outer result fields of the wrong length, a number of
    /// segments that does not divide the grid, or a driver failure; the inner
    /// one non-finite fields, losses or gradients, as the CPU's
    /// ([`ConstraintError::NonFinite`]).
    pub fn loss_and_gradient(
        &self,
        u: &[f64],
        segments: usize,
    ) -> Result<Result<FieldLoss, ConstraintError>, GpuError> {
        let (g, d, m) = (self.n_grid, self.shape.n_terms, self.shape.n_equations);
        if u.is_empty() || !u.len().is_multiple_of(g) || segments == 0 || g % segments != 0 {
            return Err(GpuError::Unsupported(format!(
                "a loss over {segments} segments of fields of {} values on {g} grid points",
                u.len()
            )));
        }
        if !u.iter().all(|x| x.is_finite()) {
            return Ok(Err(ConstraintError::NonFinite { what: "field u" }));
        }
        let (samples, s) = (u.len() / g, &self.stream);
        let total = samples * g;
        let fields = upload(s, u)?;
        let z = self
            .terms
            .gather(s, &self.gather, 1, samples, None, &fields)?;
        let zeros = |len: usize| {
            s.alloc_zeros::<f64>(len)
                .map_err(driver("allocating the field residual"))
        };
        let (mut values, mut grads) = (zeros(total * m)?, zeros(total * m * d)?);
        let (total_i, g_i) = (total as i64, g as i64);
        let blocks = strided_blocks(total);
        let mut launch = s.launch_builder(&self.kernels[0]);
        launch
            .arg(&total_i)
            .arg(&g_i)
            .arg(&z)
            .arg(&self.coordinates)
            .arg(&mut values)
            .arg(&mut grads);
        // SAFETY: the arguments match `tessera_field_residual`'s parameters;
        // `z` holds `total · d` doubles (the gather of `total` rows of `d`
        // terms), the coordinates `g · C`, the outputs `total · m` and
        // `total · m · d`; the grid-stride loop covers `total` points.
        unsafe { launch.launch(launch_config(blocks)?) }
            .map_err(driver("launching the field residual"))?;
        let n_segments = samples * segments;
        let mut sums = zeros(n_segments)?;
        let segment_len = (g / segments * m) as i64;
        let mut launch = s.launch_builder(&self.kernels[1]);
        launch.arg(&segment_len).arg(&values).arg(&mut sums);
        // SAFETY: `tessera_segment_squares`'s parameters; one block per
        // segment, each reading its `segment_len` values of `values`.
        unsafe { launch.launch(launch_config(n_segments)?) }
            .map_err(driver("launching the residual's norms"))?;
        let sums = staging::download(s, &sums.as_view())?;
        let Some((losses, scales)) = segment_scales(&sums, segments) else {
            return Ok(Err(ConstraintError::NonFinite {
                what: "PDE residual of u",
            }));
        };
        let scales = upload(s, &scales)?;
        let mut z_bar = zeros(total * d)?;
        let segment_points = (g / segments) as i64;
        let mut launch = s.launch_builder(&self.kernels[2]);
        launch
            .arg(&total_i)
            .arg(&segment_points)
            .arg(&scales)
            .arg(&values)
            .arg(&grads)
            .arg(&mut z_bar);
        // SAFETY: `tessera_field_cotangent`'s parameters; `scales` holds one
        // value per segment of `segment_points` points, the others are sized
        // as above.
        unsafe { launch.launch(launch_config(blocks)?) }
            .map_err(driver("launching the residual's cotangent"))?;
        let u_bar = self
            .adjoint
            .gather(s, &self.gather, 1, samples, None, &z_bar)?;
        let gradient = staging::download(s, &u_bar.as_view())?;
        if !gradient.iter().all(|x| x.is_finite()) {
            return Ok(Err(ConstraintError::NonFinite {
                what: "gradient of the PDE residual",
            }));
        }
        Ok(Ok(FieldLoss { losses, gradient }))
    }
}
