//! The hard-constraint layer of a scenario on caller-owned arrays: a projection
//! of any basis onto fields that satisfy the PDE at the experts' sampled points
//! (with the initial and boundary rows), and its exact backward pass. No candle,
//! no backbone: a simulation code brings its own basis (a network's output, POD
//! modes, …) as `f64` slices.

use std::path::Path;
use std::sync::Arc;

use tessera_constraints::{FieldResidual, Pde};
use tessera_experts::{ConstraintLayer, Forward, LayerGradient};
use tessera_scenarios::Scenario;

use super::{WorkerPool, batch_of, check_finite};
use crate::SolverError;
use crate::model::placement::{self, SolveDevice};
use crate::model::setup;
use crate::train::batches;
use tessera_scenarios::AnyPde;

/// The constraint layer a scenario describes: its PDE, grid, tile split, points
/// per expert, ridge and Levenberg–Marquardt settings (`[constraint]`), its
/// sampled points (fixed: the evaluation stream of the scenario's seed, the
/// points `tessera eval` uses), and its `device` (on a GPU the solves run
/// there, as in a model). Read-only: several threads may use one at once.
pub struct ConstraintProjection {
    pde: Arc<AnyPde>,
    layer: Arc<ConstraintLayer<AnyPde>>,
    residual: FieldResidual<AnyPde>,
    dims: Vec<usize>,
    stream: u64,
}

impl ConstraintProjection {
    /// The layer of `scenario` (whatever its method: `soft` and `hard` give one
    /// global expert, `moe` the tiles of `constraint.experts`). With
    /// `constraint.init = "warm"` solves start from ones (there is no previous
    /// step to warm-start from).
    ///
    /// Errors: a PDE or constraint setting the libraries reject; a GPU that
    /// cannot be used (no driver, a build without the `cuda` feature).
    pub fn from_scenario(scenario: &Scenario) -> Result<Self, SolverError> {
        scenario.validate()?;
        let grid = scenario.grid()?;
        let pde = placement::solved_pde(scenario.device, setup::pde_of(scenario)?);
        let pde = Arc::new(pde);
        let device = SolveDevice::new(scenario, &pde)?;
        let config = setup::layer_config(scenario, None)?;
        let residual = FieldResidual::new(Arc::clone(&pde), &grid)?;
        let layer = device.attach(ConstraintLayer::new(Arc::clone(&pde), grid, config)?);
        Ok(Self {
            pde,
            layer,
            residual,
            dims: scenario.dims(),
            stream: batches::eval_seed(scenario.seed),
        })
    }

    /// The layer of the scenario file at `path` (TOML, as `tessera run` reads).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, SolverError> {
        Self::from_scenario(&Scenario::from_file(path)?)
    }

    /// The grid `[nt, nx, (ny)]`.
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// Values per initial condition (`nx`, or `nx·ny`).
    pub fn ic_len(&self) -> usize {
        self.dims[1..].iter().product()
    }

    /// Values per field (`nt·nx(·ny)`).
    pub fn field_len(&self) -> usize {
        self.dims.iter().product()
    }

    /// Whether the experts' solves run on a GPU.
    pub fn solves_on_gpu(&self) -> bool {
        self.layer.solves_on_gpu()
    }

    /// Number of experts `K`.
    pub fn n_experts(&self) -> usize {
        self.layer.n_experts()
    }

    /// Points each expert samples.
    pub fn points_per_expert(&self) -> usize {
        self.layer.router().points_per_expert()
    }

    /// Number of PDE equations `m` (residual values per grid point).
    pub fn n_equations(&self) -> usize {
        self.pde.n_equations()
    }

    /// Expert `k`'s sampled points as flat row-major grid indices (sorted).
    ///
    /// Errors: `k >= self.n_experts()`.
    pub fn points(&self, k: usize) -> Result<Vec<usize>, SolverError> {
        if k >= self.n_experts() {
            return Err(SolverError::ShapeMismatch {
                what: "expert index (below the number of experts)",
                expected: vec![self.n_experts()],
                got: vec![k],
            });
        }
        Ok(self.layer.router().sample(k, self.stream)?)
    }

    /// Projects `basis` (`[batch, T, X, (Y), n_basis]` row-major) for the
    /// initial conditions `ics` (`[batch, X, (Y)]`): every expert solves its
    /// least-squares problem, and [`Forward::u`] (`[batch, T, X, (Y)]`),
    /// [`Forward::weights`] (`[batch, K, n_basis]`) and [`Forward::statuses`]
    /// (`[batch, K]`) hold the result. Keep the [`Forward`] for
    /// [`ConstraintProjection::backward`].
    ///
    /// Errors: lengths that disagree, NaN or infinite values, `n_basis = 0`.
    pub fn solve(
        &self,
        basis: &[f64],
        n_basis: usize,
        ics: &[f64],
        pool: &WorkerPool,
    ) -> Result<Forward, SolverError> {
        let batch = batch_of(ics, &self.dims[1..], "initial conditions [batch, x, (y)]")?;
        if n_basis == 0 || basis.len() != batch * self.field_len() * n_basis {
            let mut expected = vec![batch];
            expected.extend(&self.dims);
            expected.push(n_basis.max(1));
            return Err(SolverError::ShapeMismatch {
                what: "basis [batch, t, x, (y), n_basis]",
                expected,
                got: vec![basis.len()],
            });
        }
        check_finite("basis", basis)?;
        check_finite("initial conditions", ics)?;
        let refs: Vec<&[f64]> = ics.chunks(self.ic_len()).collect();
        Ok(pool.install(|| self.layer.forward(basis, n_basis, &refs, self.stream))?)
    }

    /// The backward pass: `∂L/∂B` (`[batch, T, X, (Y), n_basis]`) for
    /// `u_bar = ∂L/∂u` (`[batch, T, X, (Y)]`), through the implicit function
    /// theorem at each expert's solution. `basis` must be the array `forward`
    /// was solved from (it is not copied by [`ConstraintProjection::solve`]).
    ///
    /// Errors: lengths that disagree, NaN or infinite values in `u_bar`, an
    /// expert whose solve stopped without usable weights.
    pub fn backward(
        &self,
        forward: &Forward,
        basis: &[f64],
        u_bar: &[f64],
        pool: &WorkerPool,
    ) -> Result<Vec<f64>, SolverError> {
        check_finite("u_bar", u_bar)?;
        Ok(pool.install(|| self.layer.backward(forward, basis, u_bar))?)
    }

    /// [`ConstraintProjection::backward`] that also differentiates in the
    /// initial conditions: [`LayerGradient::basis`] is `∂L/∂B` (the same
    /// values as `backward`'s) and [`LayerGradient::ic`] is `∂L/∂ics`
    /// (`[batch, X, (Y)]`), through the rows and the offset each initial
    /// condition builds ([`ConstraintLayer::backward_with_ic`]).
    ///
    /// Errors: those of [`ConstraintProjection::backward`].
    pub fn backward_with_ic(
        &self,
        forward: &Forward,
        basis: &[f64],
        u_bar: &[f64],
        pool: &WorkerPool,
    ) -> Result<LayerGradient, SolverError> {
        check_finite("u_bar", u_bar)?;
        Ok(pool.install(|| self.layer.backward_with_ic(forward, basis, u_bar))?)
    }

    /// The pointwise PDE residual `F` of fields `u` (`[batch, T, X, (Y)]`),
    /// `[batch, T, X, (Y), m]`: what the experts drive to zero at their
    /// sampled points. Computed on `pool`'s threads (the residual runs over
    /// blocks of points in parallel).
    ///
    /// Errors: a length that is not a positive multiple of the field length,
    /// NaN or infinite values.
    pub fn residual(&self, u: &[f64], pool: &WorkerPool) -> Result<Vec<f64>, SolverError> {
        batch_of(u, &self.dims, "fields [batch, t, x, (y)]")?;
        pool.install(|| {
            let mut out = Vec::with_capacity(u.len() * self.n_equations());
            for field in u.chunks(self.field_len()) {
                out.extend(self.residual.residual(field)?);
            }
            Ok(out)
        })
    }

    /// The backward pass of [`ConstraintProjection::residual`]: `ū = (∂F/∂u)ᵀ
    /// F̄` (`[batch, T, X, (Y)]`) for fields `u` and a cotangent `f_bar` laid
    /// out like their residual (`[batch, T, X, (Y), m]`). With it a physics
    /// loss of the residual (the paper's `‖F‖₂`, or any other) differentiates
    /// back to `u`, and through [`ConstraintProjection::backward`] to the
    /// basis.
    ///
    /// Errors: lengths that disagree, NaN or infinite values.
    pub fn residual_backward(
        &self,
        u: &[f64],
        f_bar: &[f64],
        pool: &WorkerPool,
    ) -> Result<Vec<f64>, SolverError> {
        batch_of(u, &self.dims, "fields [batch, t, x, (y)]")?;
        let m = self.n_equations();
        if f_bar.len() != u.len() * m {
            let mut expected = vec![u.len() / self.field_len()];
            expected.extend(&self.dims);
            expected.push(m);
            return Err(SolverError::ShapeMismatch {
                what: "residual cotangent [batch, t, x, (y), m]",
                expected,
                got: vec![f_bar.len()],
            });
        }
        check_finite("residual cotangent", f_bar)?;
        pool.install(|| {
            let mut out = Vec::with_capacity(u.len());
            let per_field = self.field_len() * m;
            for (field, cot) in u.chunks(self.field_len()).zip(f_bar.chunks(per_field)) {
                out.extend(self.residual.vjp(field, cot)?);
            }
            Ok(out)
        })
    }
}
