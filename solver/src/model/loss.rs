//! The training losses of a batch of predicted fields `u`, with their exact
//! gradients, as the reference's `gen_compute_loss`
//! (`neptune/trainers/train_utils.py` of ASK-Berkeley/physics-NNs-hard-constraints):
//!
//! - **PDE**: `‖F(u_b)‖₂` over the full grid (the norm, not its square), mean over
//!   the batch (`PDELoss`); with [`PdeNorm::Levels`] instead `Σ_l ‖F_l(u_b)‖₂ / √L`
//!   over the `L` time levels;
//! - **IC**: `‖u(0) − u₀‖ / ‖u₀‖` over the whole batch flattened (`MSE` with
//!   `normalize=True`, which takes one norm over the batch, not a mean of norms);
//! - **BC**: per sample the norm of the PDE's boundary rows (its linear rows away
//!   from the first time level, e.g. diffusion–sorption's `u(t, 0) − 1` and
//!   `u(t, 1) + D u_x(t, 1)` at the faces), mean over the batch. The reference
//!   compares the right boundary with the ground-truth trajectory instead, which physics-only
//!   training does not have; the PDE's own boundary rows need no data;
//! - **data**: `‖u − u_true‖ / ‖u_true‖` over the whole batch (interior data
//!   loss, `data_loss_normalize=True`), only when targets are given.
//!
//! Where a norm is zero its gradient is taken as zero (a subgradient); a zero
//! normaliser (`‖u₀‖` or `‖u_true‖`) leaves that loss unnormalised.

use std::sync::Arc;

use rayon::prelude::*;
use tessera_constraints::{FieldResidual, Pde, Term};
use tessera_meshes::Grid;

use crate::SolverError;
use tessera_scenarios::AnyPde;
use tessera_scenarios::config::PdeNorm;

/// Index of each part in [`LossParts::values`].
pub const PDE: usize = 0;
/// Initial-condition loss.
pub const IC: usize = 1;
/// Boundary-condition loss.
pub const BC: usize = 2;
/// Interior data loss.
pub const DATA: usize = 3;
/// Number of loss parts.
pub const N_PARTS: usize = 4;

/// The loss parts of a batch and the gradient of each with respect to `u`.
#[derive(Debug, Clone)]
pub struct LossParts {
    /// `[pde, ic, bc, data]` (see the module docs).
    pub values: [f64; N_PARTS],
    /// `∂value_k/∂u`, each `[batch, grid points]`.
    pub gradients: [Vec<f64>; N_PARTS],
}

impl LossParts {
    /// `Σ_k w_k ∂value_k/∂u`: the vector–Jacobian product for weights `w`.
    pub fn combine(&self, weights: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.gradients[0].len()];
        for (g, &w) in self.gradients.iter().zip(weights) {
            if w != 0.0 {
                for (o, x) in out.iter_mut().zip(g) {
                    *o += w * x;
                }
            }
        }
        out
    }
}

/// One sample's unweighted losses, from [`PhysicsLoss::sample_losses`].
#[derive(Debug, Clone, PartialEq)]
pub struct SampleLosses {
    /// The PDE residual norm of each time level.
    pub pde_levels: Vec<f64>,
    /// `‖u(0) − u₀‖ / ‖u₀‖`.
    pub ic: f64,
    /// The boundary-row norm.
    pub bc: f64,
}

/// The losses of one PDE on one grid.
pub struct PhysicsLoss {
    pde: Arc<AnyPde>,
    grid: Grid,
    terms: Vec<Term>,
    residual: FieldResidual<AnyPde>,
    pde_norm: PdeNorm,
    /// The PDE part on a GPU ([`PhysicsLoss::on_gpu`]).
    #[cfg(feature = "cuda")]
    gpu: Option<tessera_constraints::gpu::GpuFieldResidual>,
}

/// `(‖v‖, v/‖v‖)`, with a zero gradient at `v = 0`.
fn norm_and_direction(v: &[f64]) -> (f64, Vec<f64>) {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
    (norm, v.iter().map(|x| x * scale).collect())
}

/// `‖pred − truth‖ / ‖truth‖` (unnormalised when `‖truth‖ = 0`) and its gradient
/// in `pred`.
fn relative_norm(pred: &[f64], truth: &[f64]) -> (f64, Vec<f64>) {
    let diff: Vec<f64> = pred.iter().zip(truth).map(|(p, t)| p - t).collect();
    let (norm, mut grad) = norm_and_direction(&diff);
    let scale = truth.iter().map(|x| x * x).sum::<f64>().sqrt();
    let scale = if scale > 0.0 { scale } else { 1.0 };
    grad.iter_mut().for_each(|g| *g /= scale);
    (norm / scale, grad)
}

impl PhysicsLoss {
    /// The losses of `pde` on `grid`.
    pub fn new(pde: Arc<AnyPde>, grid: Grid) -> Result<Self, SolverError> {
        let terms = pde.terms(&grid)?;
        let residual = FieldResidual::new(Arc::clone(&pde), &grid)?;
        Ok(Self {
            pde,
            grid,
            terms,
            residual,
            pde_norm: PdeNorm::default(),
            #[cfg(feature = "cuda")]
            gpu: None,
        })
    }

    /// These losses with their PDE part — the residual at every grid point
    /// of every sample, and its pull-back to `u` — on the GPU of `solver`
    /// (the kernels of this PDE's definition, which solve a hard-constraint
    /// layer's problems or, for the soft method, only serve the loss).
    /// Unchanged without a solver, or where a residual term is not a stencil
    /// (its rows are then not sparse). The IC, BC and data parts, norms of a
    /// few rows or of `u` itself, stay on the host.
    ///
    /// Errors: a residual the solver was not compiled for, or a driver
    /// failure.
    #[cfg(feature = "cuda")]
    pub fn on_gpu(
        mut self,
        solver: Option<&tessera_constraints::gpu::GpuLm>,
    ) -> Result<Self, SolverError> {
        let Some(solver) = solver else {
            return Ok(self);
        };
        let g = self.grid.len();
        let n_residual =
            tessera_constraints::residual_term_count(self.pde.as_ref(), self.terms.len())?;
        let terms = &self.terms[..n_residual];
        let Some(rows) = tessera_experts::terms::residual_rows(terms, g)? else {
            return Ok(self);
        };
        let coordinates = if self.pde.uses_coordinates() {
            self.grid.coordinates()
        } else {
            Vec::new()
        };
        self.gpu = Some(solver.field_residual(&rows, &coordinates)?);
        Ok(self)
    }

    /// Whether the PDE part runs on a GPU ([`PhysicsLoss::on_gpu`]).
    pub fn pde_on_gpu(&self) -> bool {
        #[cfg(feature = "cuda")]
        return self.gpu.is_some();
        #[cfg(not(feature = "cuda"))]
        false
    }

    /// These losses with the PDE part gathered by `norm`.
    pub fn with_pde_norm(self, norm: PdeNorm) -> Self {
        Self {
            pde_norm: norm,
            ..self
        }
    }

    /// Number of time levels (the grid's first axis).
    fn n_levels(&self) -> usize {
        self.grid.shape().dims()[0]
    }

    /// Every sample's PDE loss and the losses' gradients in `u` (`[batch,
    /// grid points]`): on the GPU where there is one, else sample by sample
    /// here.
    fn pde_parts(&self, u: &[f64]) -> Result<(Vec<f64>, Vec<f64>), SolverError> {
        #[cfg(feature = "cuda")]
        if let Some(gpu) = &self.gpu {
            let segments = match self.pde_norm {
                PdeNorm::Grid => 1,
                PdeNorm::Levels => self.n_levels(),
            };
            let field = gpu.loss_and_gradient(u, segments)??;
            return Ok((field.losses, field.gradient));
        }
        let per_sample: Vec<(f64, Vec<f64>)> = u
            .par_chunks(self.grid.len())
            .with_max_len(1)
            .map(|ub| self.pde_part(ub))
            .collect::<Result<_, SolverError>>()?;
        let (values, gradients): (Vec<f64>, Vec<Vec<f64>>) = per_sample.into_iter().unzip();
        Ok((values, gradients.concat()))
    }

    /// One sample's PDE loss and its gradient in `u`.
    fn pde_part(&self, u: &[f64]) -> Result<(f64, Vec<f64>), SolverError> {
        match self.pde_norm {
            PdeNorm::Grid => Ok(self.residual.norm_and_gradient(u)?),
            PdeNorm::Levels => {
                let levels = self.n_levels();
                let scale = 1.0 / (levels as f64).sqrt();
                Ok(self.residual.loss_and_gradient(u, |f| {
                    let mut value = 0.0;
                    let mut f_bar = Vec::with_capacity(f.len());
                    for level in f.chunks(f.len() / levels) {
                        let (norm, direction) = norm_and_direction(level);
                        value += norm * scale;
                        f_bar.extend(direction.into_iter().map(|d| d * scale));
                    }
                    (value, f_bar)
                })?)
            }
        }
    }

    /// Points per time level.
    fn n_space(&self) -> usize {
        self.grid.len() / self.n_levels()
    }

    /// All parts for fields `u` (`[batch, grid points]`), initial conditions `ics`
    /// (one per sample) and optional targets (one trajectory per sample).
    ///
    /// Errors: sizes that disagree, non-finite `u` or PDE failures.
    pub fn evaluate(
        &self,
        u: &[f64],
        ics: &[Vec<f64>],
        targets: Option<&[Vec<f64>]>,
    ) -> Result<LossParts, SolverError> {
        let (g, batch) = (self.grid.len(), ics.len());
        if batch == 0 || u.len() != batch * g {
            return Err(SolverError::ShapeMismatch {
                what: "fields u [batch, grid points]",
                expected: vec![batch.max(1), g],
                got: vec![u.len()],
            });
        }
        if let Some(t) = targets
            && (t.len() != batch || t.iter().any(|x| x.len() != g))
        {
            return Err(SolverError::ShapeMismatch {
                what: "targets [batch, grid points]",
                expected: vec![batch, g],
                got: vec![t.len(), t.first().map_or(0, Vec::len)],
            });
        }
        let (pde_values, mut pde_grad) = self.pde_parts(u)?;
        let bc_parts: Vec<(f64, Vec<f64>)> = u
            .par_chunks(g)
            .zip(ics)
            .with_max_len(1)
            .map(|(ub, ic)| self.boundary(ub, ic))
            .collect::<Result<_, SolverError>>()?;
        let inv = 1.0 / batch as f64;
        let pde = pde_values.iter().fold(0.0, |sum, p| sum + p * inv);
        pde_grad.iter_mut().for_each(|x| *x *= inv);
        let mut bc_grad = Vec::with_capacity(batch * g);
        let mut bc = 0.0;
        for (b, bg) in bc_parts {
            bc += b * inv;
            bc_grad.extend(bg.into_iter().map(|x| x * inv));
        }
        let (ic, ic_grad) = self.initial(u, ics);
        let (data, data_grad) = match targets {
            Some(t) => relative_norm(u, &t.concat()),
            None => (0.0, vec![0.0; u.len()]),
        };
        Ok(LossParts {
            values: [pde, ic, bc, data],
            gradients: [pde_grad, ic_grad, bc_grad, data_grad],
        })
    }

    /// One sample's unweighted losses without their gradients (what an
    /// evaluation reports): the PDE residual norm of each time level (the PDE
    /// loss `‖F(u)‖₂` is the root of their sum of squares), the IC and the BC
    /// loss. Shows where a trajectory leaves the discrete PDE unsatisfied (see
    /// [`crate::PhysicsCheck`]).
    ///
    /// Errors: `u` or `ic` of the wrong length, non-finite residuals.
    pub fn sample_losses(&self, u: &[f64], ic: &[f64]) -> Result<SampleLosses, SolverError> {
        let s = self.n_space();
        if u.len() != self.grid.len() || ic.len() != s {
            return Err(SolverError::ShapeMismatch {
                what: "one sample's field and initial condition",
                expected: vec![self.grid.len(), s],
                got: vec![u.len(), ic.len()],
            });
        }
        let f = self.residual.residual(u)?;
        let levels = self.n_levels();
        let pde_levels: Vec<f64> = f
            .chunks(f.len() / levels)
            .map(|level| level.iter().map(|x| x * x).sum::<f64>().sqrt())
            .collect();
        if pde_levels.iter().any(|n| !n.is_finite()) {
            return Err(tessera_constraints::ConstraintError::NonFinite {
                what: "PDE residual of u",
            }
            .into());
        }
        Ok(SampleLosses {
            pde_levels,
            ic: relative_norm(&u[..s], ic).0,
            bc: self.boundary(u, ic)?.0,
        })
    }

    /// The IC loss and its gradient (nonzero only on the first time level).
    fn initial(&self, u: &[f64], ics: &[Vec<f64>]) -> (f64, Vec<f64>) {
        let (g, s) = (self.grid.len(), self.n_space());
        let first: Vec<f64> = u.chunks(g).flat_map(|ub| ub[..s].to_vec()).collect();
        let (ic, grad_first) = relative_norm(&first, &ics.concat());
        let mut grad = vec![0.0; u.len()];
        for (gb, gf) in grad.chunks_mut(g).zip(grad_first.chunks(s)) {
            gb[..s].copy_from_slice(gf);
        }
        (ic, grad)
    }

    /// One sample's boundary-row norm and its gradient in `u`.
    fn boundary(&self, u: &[f64], ic: &[f64]) -> Result<(f64, Vec<f64>), SolverError> {
        let s = self.n_space();
        let rows: Vec<_> = self
            .pde
            .linear_rows(&self.grid, ic)?
            .into_iter()
            .filter(|r| r.point >= s)
            .collect();
        let g = self.grid.len();
        if rows.is_empty() {
            return Ok((0.0, vec![0.0; g]));
        }
        let used: Vec<bool> = (0..self.terms.len())
            .map(|j| rows.iter().any(|r| r.coeffs.iter().any(|&(k, _)| k == j)))
            .collect();
        let fields: Vec<Option<Vec<f64>>> = self
            .terms
            .iter()
            .zip(&used)
            .map(|(term, &used)| {
                used.then(|| {
                    let mut out = vec![0.0; g];
                    term.operator.apply(u, 1, &mut out);
                    out
                })
            })
            .collect();
        let value = |j: usize, p: usize| fields[j].as_ref().map_or(0.0, |f| f[p]);
        let residuals: Vec<f64> = rows
            .iter()
            .map(|r| {
                r.coeffs
                    .iter()
                    .map(|&(j, c)| c * value(j, r.point))
                    .sum::<f64>()
                    - r.rhs
            })
            .collect();
        let (norm, direction) = norm_and_direction(&residuals);
        let mut z_bar = vec![vec![0.0; g]; self.terms.len()];
        for (r, d) in rows.iter().zip(&direction) {
            for &(j, c) in &r.coeffs {
                z_bar[j][r.point] += c * d;
            }
        }
        let mut grad = vec![0.0; g];
        let mut pulled = vec![0.0; g];
        for ((term, zb), &used) in self.terms.iter().zip(&z_bar).zip(&used) {
            if used {
                term.operator.apply_adjoint(zb, 1, &mut pulled);
                grad.iter_mut().zip(&pulled).for_each(|(o, p)| *o += p);
            }
        }
        Ok((norm, grad))
    }
}

#[cfg(test)]
mod tests {
    use tessera_scenarios::diffusion_sorption::pde::DiffusionSorption;

    use super::*;

    /// Every part's gradient agrees with central differences of its value, on a
    /// smooth positive field (diffusion–sorption has IC and Robin boundary rows),
    /// with either PDE norm.
    #[test]
    fn gradients_match_finite_differences() {
        for norm in [PdeNorm::Grid, PdeNorm::Levels] {
            let grid = Grid::uniform_tx(5, 7, 2.0).unwrap();
            let loss = PhysicsLoss::new(
                Arc::new(AnyPde::DiffusionSorption(DiffusionSorption::default())),
                grid,
            )
            .unwrap()
            .with_pde_norm(norm);
            let mut u = [field(0), field(1)].concat();
            let ics = vec![vec![0.2; 7], vec![0.35; 7]];
            let targets = vec![field(2), field(3)];
            let parts = loss.evaluate(&u, &ics, Some(&targets)).unwrap();
            assert!(parts.values.iter().all(|v| *v > 0.0));
            for k in 0..N_PARTS {
                for i in [0, 3, 8, 20, 34, 40, 69] {
                    let h = 1e-6;
                    let mut at = |v: f64| {
                        u[i] = v;
                        loss.evaluate(&u, &ics, Some(&targets)).unwrap().values[k]
                    };
                    let orig = parts.gradients[k][i];
                    let x = field(i / 35)[i % 35];
                    let fd = (at(x + h) - at(x - h)) / (2.0 * h);
                    at(x);
                    assert!(
                        (fd - orig).abs() <= 1e-6 * fd.abs().max(1.0),
                        "{norm:?}, part {k}, u[{i}]: {orig} vs {fd}"
                    );
                }
            }
        }
    }

    /// A smooth positive 5 × 7 field, one per `b`.
    fn field(b: usize) -> Vec<f64> {
        (0..35)
            .map(|p| 0.3 + 0.1 * ((p + 3 * b) as f64 * 0.7).sin())
            .collect()
    }

    /// The level-balanced PDE loss is `Σ_l ‖F_l‖ / √L` of the per-level norms
    /// an evaluation reports, and the grid norm their root sum of squares: the
    /// two agree when every level's residual has the same size and the
    /// level-balanced one is smaller otherwise (Cauchy–Schwarz).
    #[test]
    fn the_level_norm_gathers_the_levels_residual_norms() {
        let grid = Grid::uniform_tx(5, 7, 2.0).unwrap();
        let pde = Arc::new(AnyPde::DiffusionSorption(DiffusionSorption::default()));
        let grid_loss = PhysicsLoss::new(Arc::clone(&pde), grid.clone()).unwrap();
        let level_loss = PhysicsLoss::new(pde, grid)
            .unwrap()
            .with_pde_norm(PdeNorm::Levels);
        let (u, ics) = (field(0), vec![vec![0.2; 7]]);
        let levels = grid_loss.sample_losses(&u, &ics[0]).unwrap().pde_levels;
        assert_eq!(levels.len(), 5);
        let by_grid = grid_loss.evaluate(&u, &ics, None).unwrap().values[PDE];
        let by_level = level_loss.evaluate(&u, &ics, None).unwrap().values[PDE];
        let sum: f64 = levels.iter().sum();
        let squares: f64 = levels.iter().map(|l| l * l).sum();
        assert!((by_level - sum / 5f64.sqrt()).abs() <= 1e-13 * by_level);
        assert!((by_grid - squares.sqrt()).abs() <= 1e-13 * by_grid);
        let spread = levels.iter().cloned().fold(0.0, f64::max)
            / levels.iter().cloned().fold(f64::INFINITY, f64::min);
        assert!(spread > 1.2, "levels differ: {levels:?}");
        assert!(by_level < by_grid);
    }
}
