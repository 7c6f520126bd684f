//! A trained model at another spatial resolution: the paper trains its
//! Navier–Stokes model at 64³ and tests it at 64², 128² and 256², each on its
//! own grid.
//!
//! The backbone carries over unchanged: its spectral layers keep a fixed set
//! of modes whatever the grid (the forward transform is unnormalised and the
//! inverse divides by the point count, so a band-limited field means the same
//! spectrum on any grid that resolves it), and the lifting, the pointwise
//! paths and the head act per point. Its input features are the finer grid's
//! (each coordinate normalised by its axis's last point, as the reference's
//! `x / x_max`, so a coarse point's feature moves by `O(1/n)` on refinement).
//! Everything that depends on the grid is built anew for it: the experts'
//! tiles, the derivative operators and the losses.
//!
//! Each expert samples the same number of points, `constraint.points`, on the
//! finer grid as in training, not the same fraction of its (larger) tile. The
//! paper's setting is a count per expert (20 000 in its Navier–Stokes
//! experiment), not a fraction of the grid, and the count is what fixes the
//! expert's problem: `points` PDE rows for `n_basis` unknowns, a problem as
//! over-determined and as costly as the one solved in training. A fixed
//! fraction would multiply the rows (and the Jacobian's memory) by 16 from 64²
//! to 256² without adding unknowns.

use super::{Model, NewVars, setup};
use crate::SolverError;
use crate::trainable::Trainable;
use tessera_scenarios::Scenario;
use tessera_scenarios::config::PdeConfig;

impl Model {
    /// The same model (variables and warm-start state) on `scenario`'s grid
    /// refined or coarsened to `resolution × resolution` points in space, with
    /// the same time levels: `scenario_at_resolution`. At the model's own
    /// resolution its predictions are those of `self`, bit for bit.
    ///
    /// The two models share their variables: what changes one's (training,
    /// [`Trainable::vars`]) changes the other's.
    ///
    /// Errors ([`SolverError::Resolution`]): the model is a training-window
    /// model ([`Model::for_training`] with a horizon; evaluate the whole-grid
    /// model), the scenario is not Navier–Stokes, or the modes or the experts'
    /// points do not fit the grid.
    pub fn at_resolution(&self, resolution: usize) -> Result<Self, SolverError> {
        let bad = |reason: String| SolverError::Resolution { resolution, reason };
        if self.features.points() != self.grid_points() {
            return Err(bad(
                "the model covers a training window only; resample the whole grid's model".into(),
            ));
        }
        let scenario = scenario_at_resolution(&self.scenario, resolution)?;
        setup::fno_config(&scenario)
            .check_grid(&scenario.dims())
            .map_err(|e| bad(e.to_string()))?;
        // The variables are shared, not copied (at the Navier–Stokes paper
        // scale they are 1.1 GB): both models come from one architecture, so
        // every variable the new one asks for is one of ours.
        let count = self.vars.all_vars().len();
        let vars = self.vars.clone();
        let mut model = Self::assemble(
            &scenario,
            &scenario,
            (*self.pde).clone(),
            vars,
            NewVars::Drawn,
        )?;
        if model.vars.all_vars().len() != count {
            return Err(bad(
                "the rebuilt model has variables the trained one lacks".into()
            ));
        }
        model.restore_extra_state(&self.extra_state())?;
        #[cfg(feature = "cuda")]
        model.fno.run_on(self.fno.device())?;
        Ok(model)
    }
}

/// `scenario` with `resolution` points on each spatial axis, and its batch
/// (the chunk predictions run in) cut so that a chunk holds no more grid
/// points than a training batch did (at least one sample): the memory a
/// training step was sized for. Nothing else changes.
///
/// Errors ([`SolverError::Resolution`]) for a scenario other than
/// Navier–Stokes (its periodic grid is the one whose coarse points are exactly
/// every `k`-th fine point) and for a grid the scenario's checks reject (e.g.
/// more points per expert than a tile holds).
pub fn scenario_at_resolution(
    scenario: &Scenario,
    resolution: usize,
) -> Result<Scenario, SolverError> {
    let bad = |reason: String| SolverError::Resolution { resolution, reason };
    if !matches!(scenario.pde, PdeConfig::NavierStokes(_)) {
        return Err(bad(format!(
            "only Navier–Stokes (a periodic grid) is evaluated at other resolutions, not {}",
            scenario.pde.kind()
        )));
    }
    let mut refined = scenario.clone();
    refined.grid.nx = resolution;
    refined.grid.ny = Some(resolution);
    refined.validate().map_err(|e| bad(e.to_string()))?;
    // Validated: every axis has points.
    let points = |s: &Scenario| s.dims().iter().product::<usize>();
    let batch = scenario.training.batch_size * points(scenario) / points(&refined);
    refined.training.batch_size = batch.clamp(1, scenario.training.batch_size);
    Ok(refined)
}
