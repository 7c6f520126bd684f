//! The hard-constraint layer as a projection on the caller's arrays: create
//! from a scenario file, query its shape and sampled points, solve, backward,
//! the PDE residual of fields and its backward pass, free.

use std::ffi::c_char;
use std::sync::Arc;

use tessera_scenarios::Scenario;
use tessera_solver::embed::{ConstraintProjection, Forward, WorkerPool};

use crate::args::{expect_len, ic_batch, input, optional_output, output, path, write_handle};
use crate::handles::Table;
use crate::shape::TesseraShape;
use crate::solve_status::{TesseraSolveStatus, write_statuses};
use crate::status::{CallError, TesseraStatus, guard};
use crate::threads::new_pool;

/// An opaque handle to a constraint layer (never dereferenced by the library:
/// see the header's notes on handles).
pub struct TesseraConstraint {
    _opaque: [u8; 0],
}

pub(crate) struct Layer {
    pub projection: ConstraintProjection,
    pub pool: WorkerPool,
}

static LAYERS: Table<Layer> = Table::new("constraint");

/// Creates the constraint layer of the scenario file `scenario_path` (TOML:
/// its `[pde]`, `[grid]` and `[constraint]` tables) and writes a new handle to
/// `*out`. `dims` (`n_dims` values `nt, nx(, ny)`) replaces the scenario's grid
/// size; `n_dims = 0` keeps it, and `dims` is then not read (NULL, or any
/// array: Fortran cannot pass NULL for an array). Free it with
/// `tessera_constraint_free`.
///
/// # Safety
/// `scenario_path` must be NULL or NUL-terminated; `dims` NULL or `n_dims`
/// readable values; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_constraint_create(
    scenario_path: *const c_char,
    dims: *const usize,
    n_dims: usize,
    out: *mut *mut TesseraConstraint,
) -> TesseraStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let file = unsafe { path(scenario_path, "scenario_path") }?;
        if out.is_null() {
            return Err(CallError::new(TesseraStatus::NullPointer, "`out` is NULL"));
        }
        let mut scenario = Scenario::from_file(&file).map_err(|e| {
            let status = if file.exists() {
                TesseraStatus::InvalidArgument
            } else {
                TesseraStatus::Io
            };
            CallError::new(status, e.to_string())
        })?;
        if n_dims != 0 {
            // SAFETY: the caller's contract.
            let dims = unsafe { input(dims, n_dims, "dims") }?;
            expect_len("dims", n_dims, scenario.dims().len())?;
            for (axis, n) in ["nt", "nx", "ny"].iter().zip(dims) {
                scenario
                    .set(&format!("grid.{axis}={n}"))
                    .map_err(|e| CallError::new(TesseraStatus::InvalidArgument, e.to_string()))?;
            }
        }
        let projection = ConstraintProjection::from_scenario(&scenario)?;
        let key = LAYERS.insert(Layer {
            projection,
            pool: new_pool()?,
        });
        // SAFETY: `out` is non-NULL and writable by the caller's contract.
        unsafe { write_handle(out, key) };
        Ok(())
    })
}

/// Frees a constraint layer. NULL is accepted and does nothing; a handle freed
/// already returns `TESSERA_STATUS_INVALID_HANDLE`.
#[unsafe(no_mangle)]
pub extern "C" fn tessera_constraint_free(layer: *mut TesseraConstraint) -> TesseraStatus {
    guard(|| LAYERS.free(layer))
}

/// Writes the layer's shape to `*out` (`n_basis` is 0: each call chooses it).
///
/// # Safety
/// `out` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_constraint_shape(
    layer: *const TesseraConstraint,
    out: *mut TesseraShape,
) -> TesseraStatus {
    guard(|| {
        let layer = LAYERS.get(layer)?;
        // SAFETY: the caller's contract.
        let out = unsafe { output(out, 1, "out") }?;
        let p = &layer.projection;
        out[0] = TesseraShape {
            n_experts: p.n_experts(),
            points_per_expert: p.points_per_expert(),
            n_equations: p.n_equations(),
            ..TesseraShape::of_grid(p.dims())
        };
        Ok(())
    })
}

/// Writes expert `expert`'s sampled points (`n_out = shape.points_per_expert`
/// flat row-major grid indices, sorted, 0-based) to `out`. They are the same
/// for every call and every sample.
///
/// # Safety
/// `out` must be NULL or valid for `n_out` values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_constraint_points(
    layer: *const TesseraConstraint,
    expert: usize,
    out: *mut usize,
    n_out: usize,
) -> TesseraStatus {
    guard(|| {
        let layer = LAYERS.get(layer)?;
        // SAFETY: the caller's contract.
        let out = unsafe { output(out, n_out, "out") }?;
        let points = layer.projection.points(expert)?;
        expect_len("out", n_out, points.len())?;
        out.copy_from_slice(&points);
        Ok(())
    })
}

/// The inputs shared by solve and backward, checked.
struct BasisArgs<'a> {
    basis: &'a [f64],
    n_basis: usize,
    ic: &'a [f64],
    batch: usize,
}

/// # Safety
/// `basis` and `ic` NULL or valid for their lengths.
unsafe fn basis_args<'a>(
    layer: &Layer,
    basis: *const f64,
    n_basis_values: usize,
    n_basis: usize,
    ic: *const f64,
    n_ic: usize,
) -> Result<BasisArgs<'a>, CallError> {
    // SAFETY: the caller's contract.
    let basis = unsafe { input(basis, n_basis_values, "basis") }?;
    let ic = unsafe { input(ic, n_ic, "ic") }?;
    let p = &layer.projection;
    let batch = ic_batch(n_ic, p.ic_len())?;
    if n_basis == 0 {
        return Err(CallError::new(
            TesseraStatus::InvalidArgument,
            "`n_basis` must be at least 1",
        ));
    }
    expect_len("basis", n_basis_values, batch * p.field_len() * n_basis)?;
    Ok(BasisArgs {
        basis,
        n_basis,
        ic,
        batch,
    })
}

impl Layer {
    fn solve(&self, args: &BasisArgs<'_>) -> Result<Forward, CallError> {
        Ok(self
            .projection
            .solve(args.basis, args.n_basis, args.ic, &self.pool)?)
    }
}

/// Projects a basis onto the constraints: every expert solves its
/// least-squares problem (PDE rows at its sampled points, initial and boundary
/// rows, ridge) for the weights `ω_k`, and `u = Σ_k 1_{Ω_k} (B ω_k)`.
///
/// - `basis`: `n_basis_values = batch · field_len · n_basis` values,
///   `[batch][T][X](/[Y])[n_basis]`;
/// - `ic`: `n_ic = batch · ic_len` values, `[batch][X](/[Y])`;
/// - `u_out`: `n_u = batch · field_len` values, `[batch][T][X](/[Y])`;
/// - `weights_out`: `n_weights = batch · n_experts · n_basis` values
///   `[batch][K][n_basis]`, or NULL with 0;
/// - `status_out`: `n_status = batch · n_experts` records `[batch][K]`, or
///   NULL with 0.
///
/// A solve that stops without converging is reported in its status, not as a
/// failure; NaN or infinite input returns `TESSERA_STATUS_NON_FINITE`.
///
/// # Safety
/// Each pointer NULL or valid for its length; outputs must not overlap inputs.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_constraint_solve(
    layer: *const TesseraConstraint,
    basis: *const f64,
    n_basis_values: usize,
    n_basis: usize,
    ic: *const f64,
    n_ic: usize,
    u_out: *mut f64,
    n_u: usize,
    weights_out: *mut f64,
    n_weights: usize,
    status_out: *mut TesseraSolveStatus,
    n_status: usize,
) -> TesseraStatus {
    guard(|| {
        let call = SolveCall {
            layer,
            basis,
            n_basis_values,
            n_basis,
            ic,
            n_ic,
            u_out,
            n_u,
            weights_out,
            n_weights,
            status_out,
            n_status,
        };
        // SAFETY: the caller's contract.
        unsafe { call.run() }.map(drop)
    })
}

/// The arguments of a solve, as `tessera_constraint_solve` takes them (and
/// `tessera_constraint_forward`, which keeps the result).
pub(crate) struct SolveCall {
    pub layer: *const TesseraConstraint,
    pub basis: *const f64,
    pub n_basis_values: usize,
    pub n_basis: usize,
    pub ic: *const f64,
    pub n_ic: usize,
    pub u_out: *mut f64,
    pub n_u: usize,
    pub weights_out: *mut f64,
    pub n_weights: usize,
    pub status_out: *mut TesseraSolveStatus,
    pub n_status: usize,
}

/// What a solve leaves for its backward pass: the layer, the forward pass and
/// the caller's basis it was solved from.
pub(crate) struct Solved<'a> {
    pub layer: Arc<Layer>,
    pub forward: Forward,
    pub basis: &'a [f64],
}

impl SolveCall {
    /// Checks every argument, solves, and writes `u`, the weights and the
    /// statuses.
    ///
    /// # Safety
    /// Each pointer NULL or valid for its length; outputs must not overlap
    /// inputs.
    pub(crate) unsafe fn run<'a>(self) -> Result<Solved<'a>, CallError> {
        let layer = LAYERS.get(self.layer)?;
        // SAFETY (all): the caller's contract.
        let args = unsafe {
            basis_args(
                &layer,
                self.basis,
                self.n_basis_values,
                self.n_basis,
                self.ic,
                self.n_ic,
            )
        }?;
        let u_out = unsafe { output(self.u_out, self.n_u, "u_out") }?;
        let weights = unsafe { optional_output(self.weights_out, self.n_weights, "weights_out") }?;
        let statuses = unsafe { optional_output(self.status_out, self.n_status, "status_out") }?;
        let k = layer.projection.n_experts();
        expect_len("u_out", self.n_u, args.batch * layer.projection.field_len())?;
        if let Some(w) = &weights {
            expect_len("weights_out", w.len(), args.batch * k * self.n_basis)?;
        }
        if let Some(s) = &statuses {
            expect_len("status_out", s.len(), args.batch * k)?;
        }
        let forward = layer.solve(&args)?;
        u_out.copy_from_slice(&forward.u);
        if let Some(w) = weights {
            w.copy_from_slice(&forward.weights);
        }
        write_statuses(&forward.statuses, statuses);
        Ok(Solved {
            layer,
            forward,
            basis: args.basis,
        })
    }
}

/// The backward pass of `tessera_constraint_solve`: given `u_bar = ∂L/∂u`
/// (`n_u_bar = batch · field_len` values, `[batch][T][X](/[Y])`), writes
/// `∂L/∂basis` (`n_basis_bar = n_basis_values` values, laid out like `basis`)
/// to `basis_bar_out`, exactly, through the implicit function theorem at each
/// expert's solution. `basis` and `ic` are the solve's inputs: the solve is
/// repeated first (it is deterministic, so the solution is the one the
/// forward call returned), which costs one more forward solve but keeps no
/// state between calls; `tessera_constraint_forward` keeps the solve for
/// `tessera_forward_backward` instead.
///
/// # Safety
/// Each pointer NULL or valid for its length; outputs must not overlap inputs.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_constraint_backward(
    layer: *const TesseraConstraint,
    basis: *const f64,
    n_basis_values: usize,
    n_basis: usize,
    ic: *const f64,
    n_ic: usize,
    u_bar: *const f64,
    n_u_bar: usize,
    basis_bar_out: *mut f64,
    n_basis_bar: usize,
) -> TesseraStatus {
    guard(|| {
        let layer = LAYERS.get(layer)?;
        // SAFETY (all): the caller's contract.
        let args = unsafe { basis_args(&layer, basis, n_basis_values, n_basis, ic, n_ic) }?;
        let u_bar = unsafe { input(u_bar, n_u_bar, "u_bar") }?;
        let out = unsafe { output(basis_bar_out, n_basis_bar, "basis_bar_out") }?;
        expect_len("u_bar", n_u_bar, args.batch * layer.projection.field_len())?;
        expect_len("basis_bar_out", n_basis_bar, n_basis_values)?;
        let forward = layer.solve(&args)?;
        let gradient = layer
            .projection
            .backward(&forward, args.basis, u_bar, &layer.pool)?;
        out.copy_from_slice(&gradient);
        Ok(())
    })
}

/// The pointwise PDE residual `F` of fields `u` (`n_u = batch · field_len`
/// values, `[batch][T][X](/[Y])`), written to `out` (`n_out = n_u ·
/// n_equations` values, `[batch][T][X](/[Y])[m]`). Where an expert sampled a
/// point, a projected field's residual is at the solver's tolerance there.
///
/// # Safety
/// Each pointer NULL or valid for its length; `out` must not overlap `u`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_constraint_residual(
    layer: *const TesseraConstraint,
    u: *const f64,
    n_u: usize,
    out: *mut f64,
    n_out: usize,
) -> TesseraStatus {
    guard(|| {
        let layer = LAYERS.get(layer)?;
        // SAFETY (both): the caller's contract.
        let u = unsafe { input(u, n_u, "u") }?;
        let out = unsafe { output(out, n_out, "out") }?;
        expect_len("out", n_out, n_u * layer.projection.n_equations())?;
        let residual = layer.projection.residual(u, &layer.pool)?;
        out.copy_from_slice(&residual);
        Ok(())
    })
}

/// The backward pass of `tessera_constraint_residual`: given fields `u`
/// (`n_u = batch · field_len` values) and `f_bar = ∂L/∂F` (`n_f_bar = n_u ·
/// n_equations` values, laid out like the residual), writes `∂L/∂u` (`n_u_bar
/// = n_u` values) to `u_bar_out`. A physics loss of the residual (the
/// paper's `‖F‖₂`, say) thus differentiates back to `u`, and through
/// `tessera_forward_backward` to the basis.
///
/// # Safety
/// Each pointer NULL or valid for its length; `u_bar_out` must not overlap
/// the inputs.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_constraint_residual_backward(
    layer: *const TesseraConstraint,
    u: *const f64,
    n_u: usize,
    f_bar: *const f64,
    n_f_bar: usize,
    u_bar_out: *mut f64,
    n_u_bar: usize,
) -> TesseraStatus {
    guard(|| {
        let layer = LAYERS.get(layer)?;
        // SAFETY (all): the caller's contract.
        let u = unsafe { input(u, n_u, "u") }?;
        let f_bar = unsafe { input(f_bar, n_f_bar, "f_bar") }?;
        let out = unsafe { output(u_bar_out, n_u_bar, "u_bar_out") }?;
        expect_len("u_bar_out", n_u_bar, n_u)?;
        let u_bar = layer.projection.residual_backward(u, f_bar, &layer.pool)?;
        out.copy_from_slice(&u_bar);
        Ok(())
    })
}
