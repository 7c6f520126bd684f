//! A scenario's cross-field checks ([`Scenario::validate`]): sizes positive,
//! split lengths equal to the grid's dimension, points per expert within a
//! tile, samples within the split, and so on.
//!
//! One validation names every invalid setting it finds, not only the first
//! ([`ScenarioError::ConfigInvalidSeveral`]), so that a user mends them in
//! one round rather than meeting the next only after mending the last. A
//! check that
//! compares settings runs only when those settings are valid on their own (`training.batch_size` against `data.train_samples` only when both are
//! at least 1, the model's modes against the grid only when the grid is
//! valid), so that one wrong value is named once and not again through every
//! setting measured against it. The training window's restatement of the
//! whole validation on the cut grid (`training.horizon`) runs only for a
//! scenario that is otherwise valid, for the same reason.

use std::fmt::Display;

use tessera_meshes::ops::fd::{MAX_SPACING, MIN_SPACING};

use crate::config::{MAX_SEED, Method, PdeConfig, Scenario, seed_range};
use crate::diffusion_sorption::reference_solver::MIN_CELLS;
use crate::error::InvalidSetting;
use crate::mol::domain::MIN_POINTS;
use crate::mol::{MolPde, SpatialAxis, Stencil};
use crate::navier_stokes::reference_solver::{MAX_STEPS, MIN_RESOLUTION, steps_over};
use crate::{AnyPde, ScenarioError};

/// The largest grid axis, and the most points a grid (or the method of
/// lines' refined one) may have: 2³¹ doubles are 16 GiB per field.
const MAX_AXIS: usize = 1 << 24;
const MAX_POINTS: usize = 1 << 31;
/// The most trajectories a split may hold.
pub const MAX_SAMPLES: usize = 1 << 24;
/// The widest network layer and the most basis functions.
const MAX_WIDTH: usize = 1 << 16;
/// The keys of the grid's sizes, in the order of its axes `t, x, (y)`.
const GRID_KEYS: [&str; 3] = ["grid.nt", "grid.nx", "grid.ny"];

impl Scenario {
    /// Every check, named in errors as coming from `origin` (the file, or the
    /// `--set` overrides).
    pub(crate) fn validate_as(&self, origin: &str) -> Result<(), ScenarioError> {
        let mut c = Checks::new(origin);
        self.check_name(&mut c);
        let reason = format!(
            "must be {}: TOML's integers are 64-bit signed",
            seed_range()
        );
        c.check(self.seed <= MAX_SEED, "seed", self.seed, &reason);
        let dims_known = self.check_pde(&mut c)?;
        let grid_valid = self.check_grid(&mut c, dims_known);
        self.check_data(&mut c, grid_valid);
        self.check_model(&mut c, grid_valid);
        let split_valid = self.check_constraint(&mut c, grid_valid);
        self.check_training(&mut c);
        self.check_eval(&mut c, grid_valid);
        self.check_parallel(&mut c, split_valid);
        if c.found.is_empty() {
            self.check_resolution_grids(&mut c);
        }
        if !c.found.is_empty() {
            return c.finish();
        }
        self.check_condition_values(c.origin)?;
        self.check_horizon(c)
    }

    /// A custom PDE's conditions have finite values on the scenario's grid
    /// ([`crate::custom::CustomPde::check_condition_values`]): a right-hand
    /// side that is NaN at a boundary point was found only as a blow-up of
    /// the reference solver. Only for a scenario valid otherwise, whose grid
    /// can be built.
    fn check_condition_values(&self, origin: &str) -> Result<(), ScenarioError> {
        let PdeConfig::Custom(p) = &self.pde else {
            return Ok(());
        };
        p.pde(origin)?
            .check_condition_values(&self.grid()?)
            .map_err(|e| ScenarioError::CustomPde(Box::new(e)))
    }

    /// The name, which run directories and cached data files take: letters,
    /// digits, `-`, `_` and `.`, not first, so that it names one file in its
    /// folder (never `..`, a path or a hidden file).
    fn check_name(&self, c: &mut Checks) {
        let name = &self.name;
        let allowed = |ch: char| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.');
        let valid =
            (1..=100).contains(&name.len()) && name.chars().all(allowed) && !name.starts_with('.');
        let reason = "must be 1 to 100 letters, digits, '-', '_' or '.' (not first): it names \
                      the run directory and the cached data";
        c.check(valid, "name", format!("{name:?}"), reason);
    }

    /// The PDE's constants; a custom PDE's definition is read and checked
    /// here, and a definition that does not load stops the validation (its
    /// own error names the file and line). Whether the grid's dimension is
    /// known: not when a custom PDE's domain has the wrong number of axes.
    fn check_pde(&self, c: &mut Checks) -> Result<bool, ScenarioError> {
        match &self.pde {
            PdeConfig::DiffusionSorption(p) => {
                c.positive("pde.D", p.d);
                c.range(
                    "pde.phi",
                    p.phi,
                    0.0,
                    1.0,
                    "must lie strictly between 0 and 1",
                );
                c.positive("pde.rho_s", p.rho_s);
                c.non_negative("pde.k_f", p.k_f);
                c.positive("pde.n_f", p.n_f);
            }
            PdeConfig::NavierStokes(p) => {
                c.positive("pde.nu", p.nu);
            }
            PdeConfig::Heat(p) => {
                c.positive("pde.kappa", p.kappa);
            }
            PdeConfig::Advection(p) => {
                c.finite("pde.speed", p.speed);
            }
            PdeConfig::Custom(p) => {
                let pde = p.pde(c.origin)?;
                let axes = p.domain.len() == pde.space_dims();
                let reason = format!("needs one [lo, hi] per space axis of {}", pde.name());
                if !c.check(axes, "pde.domain", format!("{:?}", p.domain), &reason) {
                    return Ok(false);
                }
                let dealias = self.data.reference.dealias;
                let spectral = pde.mol().is_ok_and(|m| m.stencil() == Stencil::Spectral);
                if !dealias.is_none() && !spectral {
                    let reason = format!(
                        "filters Fourier modes, so it needs the spectral stencil; {}'s ground \
                         truth uses finite differences",
                        pde.name()
                    );
                    c.reject("data.reference.dealias", dealias.name(), &reason);
                }
                for &[lo, hi] in &p.domain {
                    if !(lo.is_finite() && hi.is_finite() && hi > lo) {
                        c.reject(
                            "pde.domain",
                            format!("[{lo}, {hi}]"),
                            "ends must be finite with hi > lo",
                        );
                    }
                }
            }
        }
        Ok(true)
    }

    /// The grid's sizes (`grid.ny` only when the PDE's dimension is known);
    /// whether they are all valid, which the checks that measure other
    /// settings against the grid wait for.
    fn check_grid(&self, c: &mut Checks, dims_known: bool) -> bool {
        let g = &self.grid;
        let before = c.found.len();
        c.size("grid.nt", g.nt, 2, MAX_AXIS);
        c.size("grid.nx", g.nx, 2, MAX_AXIS);
        c.positive("grid.t_max", g.t_max);
        if !dims_known {
            return false;
        }
        match (self.pde.space_dims(), g.ny) {
            (2, Some(ny)) => {
                c.size("grid.ny", ny, 2, MAX_AXIS);
            }
            (2, None) => c.reject("grid.ny", "absent", "required for a 2-D PDE"),
            (_, Some(ny)) => c.reject("grid.ny", ny, DIM_MISMATCH),
            (_, None) => {}
        }
        if c.found.len() == before {
            c.points("grid", format!("{:?}", self.dims()), &self.dims(), 1);
        }
        if c.found.len() == before {
            self.check_stencil_reach(c);
            self.check_spacing(c);
        }
        c.found.len() == before
    }

    /// Each grid axis' spacing lies in `[MIN_SPACING, MAX_SPACING]` (see
    /// [`MIN_SPACING`]), the range the model's difference stencils are built
    /// in: a fourth derivative's weights go as h⁻⁴ and overflow or vanish
    /// beyond it. A spacing outside was otherwise refused only by that build,
    /// after the scenario had been accepted. The spacing is the grid's own
    /// ([`Scenario::grid`]), named by the key that sets it: `grid.t_max` for
    /// time (`t_max / (nt − 1)`), a custom PDE's `pde.domain` for space; a
    /// built-in PDE's unit interval, `grid.nx` or `grid.ny`, stays in range
    /// with at most [`MAX_AXIS`] points.
    fn check_spacing(&self, c: &mut Checks) {
        // No grid when a domain's ends are invalid, which is named already.
        let Ok(grid) = self.grid() else {
            return;
        };
        for (axis, a) in grid.axes().iter().enumerate() {
            let h = a.spacing();
            if (MIN_SPACING..=MAX_SPACING).contains(&h) {
                continue;
            }
            let (key, value) = match (axis, &self.pde) {
                (0, _) => ("grid.t_max", shown(self.grid.t_max)),
                (_, PdeConfig::Custom(p)) => ("pde.domain", format!("{:?}", p.domain)),
                _ => (GRID_KEYS[axis], self.dims()[axis].to_string()),
            };
            let reason = format!(
                "gives the {} axis a spacing of {}; finite differences need one in [{}, {}], \
                 beyond which a fourth-derivative stencil's weights (h^-4) overflow or underflow",
                a.name(),
                shown(h),
                shown(MIN_SPACING),
                shown(MAX_SPACING)
            );
            c.reject(key, value, &reason);
        }
    }

    /// Each grid axis holds the points that the PDE's difference stencils
    /// along it need: the model builds them on the grid whatever its method,
    /// and a shorter axis was otherwise refused only by that build, after
    /// the scenario had been accepted. The bound is the stencils' own
    /// ([`crate::custom::CustomPde::min_axis_points`]); a built-in PDE's
    /// stencils are read off its definition, which restates them term by
    /// term ([`AnyPde::definition`]).
    fn check_stencil_reach(&self, c: &mut Checks) {
        // No PDE when a constant is out of range, which is named already.
        let Ok(definition) =
            AnyPde::from_config(&self.pde, self.constraint.fd).and_then(|pde| pde.definition())
        else {
            return;
        };
        let least = definition.min_axis_points();
        for ((key, &n), least) in GRID_KEYS.iter().zip(&self.dims()).zip(least) {
            if let Some((min, term)) = least {
                let reason = format!(
                    "must be at least {min}: the term `{}` is a `{}` difference along this \
                     axis, whose stencil needs {min} points",
                    term.name,
                    term.stencil.name()
                );
                c.check(n >= min, key, n, &reason);
            }
        }
    }

    /// The reference solver's grid holds the points its scheme needs where
    /// ground truth is generated (a split without its file,
    /// `data.train_file` or `data.test_file`): [`MIN_POINTS`] per space axis
    /// for the method of lines of a PDE defined in TOML, [`MIN_CELLS`] for
    /// diffusion–sorption, [`MIN_RESOLUTION`] for Navier–Stokes — the bounds
    /// the solvers check themselves, which otherwise refused the grid only
    /// once data generation had started. A key already named (an invalid
    /// `data.reference.nx`) is not named again.
    fn check_reference_grid(&self, c: &mut Checks) {
        let d = &self.data;
        if d.train_file.is_some() && d.test_file.is_some() {
            return;
        }
        let dims = self.dims();
        // The reference's own size setting where given, else `grid.nx`,
        // which it defaults to.
        let own_or_grid = |set: Option<usize>, key| if set.is_some() { key } else { "grid.nx" };
        let (sizes, min, why) = match &self.pde {
            PdeConfig::Custom(_) => (
                GRID_KEYS
                    .iter()
                    .zip(&dims)
                    .skip(1)
                    .map(|(&k, &n)| (k, n))
                    .collect(),
                MIN_POINTS,
                "points per space axis for the method of lines that makes the ground truth",
            ),
            PdeConfig::DiffusionSorption(_) => {
                let key = own_or_grid(d.reference.nx, "data.reference.nx");
                (
                    vec![(key, self.reference_nx())],
                    MIN_CELLS,
                    "cells for the reference solver (data.reference.nx, by default grid.nx)",
                )
            }
            PdeConfig::NavierStokes(_) => {
                let key = own_or_grid(d.reference.resolution, "data.reference.resolution");
                (
                    vec![(key, self.reference_resolution())],
                    MIN_RESOLUTION,
                    "points per axis for the reference solver (data.reference.resolution, by \
                     default grid.nx)",
                )
            }
            // No reference solver: their data come from files.
            PdeConfig::Heat(_) | PdeConfig::Advection(_) => return,
        };
        for (key, n) in sizes {
            if !c.named(key) {
                c.check(n >= min, key, n, &format!("must be at least {min} {why}"));
            }
        }
    }

    fn check_data(&self, c: &mut Checks, grid_valid: bool) {
        let (d, r) = (&self.data, &self.data.reference);
        c.size("data.train_samples", d.train_samples, 1, MAX_SAMPLES);
        c.size("data.test_samples", d.test_samples, 1, MAX_SAMPLES);
        self.check_reference_keys(c);
        // The rest only for the keys this kind reads: one it does not read
        // is named as such, and its default is not its concern.
        let reads = |key: &str| self.pde.reference_keys().contains(&key);
        if reads("rtol") {
            c.range(
                "data.reference.rtol",
                r.rtol(),
                0.0,
                1.0,
                "must lie in (0, 1)",
            );
        }
        let refinement_valid =
            reads("refinement") && c.size("data.reference.refinement", r.refinement(), 1, MAX_AXIS);
        if !grid_valid {
            return;
        }
        if reads("dt")
            && c.range(
                "data.reference.dt",
                r.dt(),
                0.0,
                self.grid.t_max,
                "must lie in (0, t_max)",
            )
        {
            let intervals = (self.grid.nt - 1) as f64;
            let steps = intervals * steps_over(self.grid.t_max / intervals, r.dt());
            let reason = format!(
                "asks the reference solver for {} steps (t_max / dt); at most {MAX_STEPS}",
                shown(steps)
            );
            let valid = steps <= MAX_STEPS as f64;
            c.check(valid, "data.reference.dt", shown(r.dt()), &reason);
        }
        if let Some(nx) = r.nx.filter(|_| reads("nx"))
            && c.size("data.reference.nx", nx, 1, MAX_AXIS)
        {
            c.multiple_of("data.reference.nx", nx, &[self.grid.nx], "grid.nx");
        }
        if let Some(res) = r.resolution.filter(|_| reads("resolution"))
            && c.size("data.reference.resolution", res, 1, MAX_AXIS)
        {
            c.multiple_of(
                "data.reference.resolution",
                res,
                &self.dims()[1..],
                "each spatial grid size",
            );
        }
        if refinement_valid {
            let shown = r.refinement().to_string();
            if c.points(
                "data.reference.refinement",
                shown,
                &self.dims(),
                r.refinement(),
            ) {
                self.check_solver_spacing(c);
            }
        }
        self.check_reference_grid(c);
    }

    /// A `data.reference` key the user set that the PDE kind's reference
    /// solver does not read ([`PdeConfig::reference_keys`]) is refused: it
    /// would change nothing (not even the data, though it changes the cache
    /// key), silently.
    fn check_reference_keys(&self, c: &mut Checks) {
        let read = self.pde.reference_keys();
        let kind = self.pde.kind();
        for (key, value) in self.data.reference.set_keys() {
            if read.contains(&key) {
                continue;
            }
            let readers: Vec<String> = PdeConfig::REFERENCE_KEYS
                .iter()
                .filter(|(_, keys)| keys.contains(&key))
                .map(|(name, _)| format!("kind = {name:?}"))
                .collect();
            let reason = if read.is_empty() {
                format!(
                    "applies to {}; {kind} has no reference solver (its data come from \
                     data.train_file and data.test_file)",
                    readers.join(" or ")
                )
            } else {
                format!(
                    "applies to {}; {kind}'s reference solver reads only data.reference.{}",
                    readers.join(" or "),
                    read.join(", data.reference.")
                )
            };
            c.reject(&format!("data.reference.{key}"), value, &reason);
        }
    }

    /// The method of lines' solver grid, each space axis refined
    /// `data.reference.refinement`-fold, has spacings in the finite
    /// differences' range `[MIN_SPACING, MAX_SPACING]` too, where ground truth
    /// is generated (a split without its file): the output grid's check
    /// ([`Scenario::check_spacing`]) passes a grid whose refined spacing is
    /// below [`MIN_SPACING`], which the solver refused only once data
    /// generation had started. The spacing is the solver's own
    /// ([`SpatialAxis::solver_spacing`], rounding included). Spectral
    /// stencils are held to the same range, as the output grid's check holds
    /// every PDE: their multipliers `(π/h)^4` overflow a little below it
    /// (near `h = 3e-77`), and one range is simpler to state. Not when
    /// `pde.domain` is named already (the output spacing out of range, or
    /// invalid ends).
    fn check_solver_spacing(&self, c: &mut Checks) {
        let (PdeConfig::Custom(p), d) = (&self.pde, &self.data) else {
            return;
        };
        if (d.train_file.is_some() && d.test_file.is_some()) || c.named("pde.domain") {
            return;
        }
        let Ok(grid) = self.grid() else {
            return;
        };
        let refinement = d.reference.refinement();
        let dims = self.dims();
        for (k, (&[lo, hi], &points)) in p.domain.iter().zip(&dims[1..]).enumerate() {
            let axis = grid.axis(k + 1);
            let spatial = SpatialAxis { lo, hi, points };
            // `None` overflows, which the points' check has named.
            let Some(h) = spatial.solver_spacing(refinement, axis.is_periodic()) else {
                continue;
            };
            if (MIN_SPACING..=MAX_SPACING).contains(&h) {
                continue;
            }
            let reason = format!(
                "refines the {} axis of pde.domain [{}, {}] ({points} points) {refinement}-fold \
                 into the method of lines' solver grid, whose spacing of {} lies outside the \
                 range [{}, {}] its difference stencils are built in (beyond it the h^-4 \
                 weights of a fourth derivative overflow or vanish); lower \
                 data.reference.refinement or widen pde.domain",
                axis.name(),
                shown(lo),
                shown(hi),
                shown(h),
                shown(MIN_SPACING),
                shown(MAX_SPACING)
            );
            c.reject("data.reference.refinement", refinement, &reason);
        }
    }

    fn check_model(&self, c: &mut Checks, grid_valid: bool) {
        let m = &self.model;
        let dims = self.dims();
        if m.widths.len() < 2 || m.widths.contains(&0) {
            c.reject(
                "model.widths",
                format!("{:?}", m.widths),
                "needs a lifting width and at least one layer width, all positive",
            );
        }
        if let Some(&wide) = m.widths.iter().find(|&&w| w > MAX_WIDTH) {
            c.reject(
                "model.widths",
                wide,
                &format!("each must be at most {MAX_WIDTH}"),
            );
        }
        c.size("model.fc_dim", m.fc_dim, 1, MAX_WIDTH);
        c.size("model.n_basis", m.n_basis, 1, MAX_WIDTH);
        if !grid_valid {
            return;
        }
        let fits = m.modes.len() == dims.len()
            && (m.modes.iter().zip(&dims)).all(|(&modes, &n)| modes >= 1 && 2 * modes <= n);
        if !fits {
            c.reject(
                "model.modes",
                format!("{:?}", m.modes),
                &format!(
                    "needs one entry per grid axis {dims:?}, each at least 1 and at most half \
                     the axis length"
                ),
            );
        }
    }

    /// The constraint's settings; whether its split of the grid is valid.
    fn check_constraint(&self, c: &mut Checks, grid_valid: bool) -> bool {
        let k = &self.constraint;
        let dims = self.dims();
        c.non_negative("constraint.ridge", k.ridge);
        c.positive("constraint.rtol", k.rtol);
        c.positive("constraint.atol", k.atol);
        c.at_least("constraint.max_iters", k.max_iters, 1);
        if k.method == Method::Soft {
            return true;
        }
        let points_valid = c.at_least("constraint.points", k.points, 1);
        if !grid_valid {
            return false;
        }
        if k.method == Method::Moe {
            let fits = k.experts.len() == dims.len()
                && k.experts.iter().zip(&dims).all(|(&s, &n)| s >= 1 && s <= n);
            let reason = format!(
                "needs one split per grid axis {dims:?}, each between 1 and the axis length"
            );
            if !c.check(
                fits,
                "constraint.experts",
                format!("{:?}", k.experts),
                &reason,
            ) {
                return false;
            }
        }
        if !points_valid {
            return true;
        }
        let tile: usize = (self.expert_split().iter().zip(&dims))
            .map(|(&s, &n)| n / s)
            .product();
        if k.points > tile {
            c.reject(
                "constraint.points",
                k.points,
                &format!("exceeds the smallest tile's {tile} points"),
            );
        }
        true
    }

    fn check_training(&self, c: &mut Checks) {
        let (t, d) = (&self.training, &self.data);
        c.at_least("training.steps", t.steps, 1);
        let train = ("data.train_samples", d.train_samples);
        c.count_within("training.batch_size", t.batch_size, train);
        let lr_valid = c.positive("training.lr", t.lr);
        c.range(
            "training.decay",
            t.decay,
            0.0,
            1.0 + f64::EPSILON,
            "must lie in (0, 1]",
        );
        c.at_least("training.every", t.every, 1);
        if c.non_negative("training.lr_floor", t.lr_floor) && lr_valid && t.lr_floor > t.lr {
            c.reject("training.lr_floor", t.lr_floor, "exceeds training.lr");
        }
        c.range(
            "training.final_factor",
            t.final_factor,
            0.0,
            1.0 + f64::EPSILON,
            "must lie in (0, 1]",
        );
        c.non_negative("training.clip_norm", t.clip_norm);
        let w = &t.loss;
        let mut weights_valid = true;
        for (key, value) in [
            ("training.loss.pde", w.pde),
            ("training.loss.ic", w.ic),
            ("training.loss.bc", w.bc),
            ("training.loss.data", w.data),
        ] {
            weights_valid &= c.non_negative(key, value);
        }
        if weights_valid && w.pde + w.ic + w.bc + w.data == 0.0 {
            c.reject(
                "training.loss",
                "all zero",
                "at least one weight must be positive",
            );
        }
        c.at_least("training.checkpoint_every", t.checkpoint_every, 1);
        c.at_least("training.validate_every", t.validate_every, 1);
        let test = ("data.test_samples", d.test_samples);
        c.count_within("training.validate_samples", t.validate_samples, test);
    }

    /// A horizon inside `(0, t_max)` whose window holds at least two levels and
    /// leaves at least one to extrapolate to, and on whose cut grid the model
    /// (modes, experts, points) still fits. Only for a scenario valid
    /// otherwise (see the module docs).
    fn check_horizon(&self, mut c: Checks) -> Result<(), ScenarioError> {
        let Some(horizon) = self.training.horizon else {
            return Ok(());
        };
        let t_max = self.grid.t_max;
        if !c.range(
            "training.horizon",
            horizon,
            0.0,
            t_max,
            &format!("must be finite and lie in (0, t_max = {t_max})"),
        ) {
            return c.finish();
        }
        let levels = self.training_levels();
        if levels < 2 || levels >= self.grid.nt {
            c.reject(
                "training.horizon",
                horizon,
                &format!(
                    "keeps {levels} of the grid's {} time levels; need at least 2 and one past it",
                    self.grid.nt
                ),
            );
            return c.finish();
        }
        let origin = format!("{} (training window t ≤ {horizon})", c.origin);
        self.training_scenario().validate_as(&origin)
    }

    fn check_eval(&self, c: &mut Checks, grid_valid: bool) {
        let e = &self.eval;
        let test_samples = self.data.test_samples;
        let test = ("data.test_samples", test_samples);
        let samples_valid = (e.samples)
            .is_none_or(|samples| c.count_within("eval.samples", samples, test))
            && test_samples >= 1;
        if samples_valid {
            let within = e.plots <= self.eval_samples();
            c.check(
                within,
                "eval.plots",
                e.plots,
                "exceeds the evaluated samples",
            );
        }
        if !grid_valid || e.resolutions.is_empty() {
            return;
        }
        let shown = format!("{:?}", e.resolutions);
        if !matches!(self.pde, PdeConfig::NavierStokes(_)) {
            let reason = format!(
                "only Navier–Stokes (a periodic grid, whose coarse points are every k-th \
                 fine point) is evaluated at other resolutions, not {}",
                self.pde.kind()
            );
            c.reject("eval.resolutions", shown, &reason);
            return;
        }
        let reference = self.reference_resolution();
        if e.resolutions
            .iter()
            .any(|&res| res == 0 || !reference.is_multiple_of(res))
        {
            c.reject(
                "eval.resolutions",
                shown,
                &format!("each must divide the reference solver's resolution {reference}"),
            );
        }
    }

    /// Each grid of `eval.resolutions` is itself a valid grid for the model
    /// (its modes, its tiles' points): found when the scenario is read, not
    /// after training. Run on an otherwise valid scenario, so that the
    /// refined grid's checks name nothing already named.
    fn check_resolution_grids(&self, c: &mut Checks) {
        for &res in &self.eval.resolutions {
            let mut at = self.clone();
            (at.grid.nx, at.grid.ny) = (res, Some(res));
            at.eval.resolutions.clear();
            if let Err(err) = at.validate_as(c.origin) {
                let shown = format!("{:?}", self.eval.resolutions);
                let reason = format!("the grid of {res} × {res} points: {err}");
                c.reject("eval.resolutions", shown, &reason);
                return;
            }
        }
    }

    /// The checks that need no world size: positive sizes, data ranks that
    /// divide the batch, no more expert ranks than experts (once the split is
    /// valid).
    fn check_parallel(&self, c: &mut Checks, split_valid: bool) {
        let p = &self.parallel;
        let batch = self.training.batch_size;
        if let Some(data) = p.data
            && c.at_least("parallel.data", data, 1)
            && batch >= 1
            && !batch.is_multiple_of(data)
        {
            c.reject(
                "parallel.data",
                data,
                &format!("must divide training.batch_size = {batch}"),
            );
        }
        if let Some(experts) = p.experts
            && c.at_least("parallel.experts", experts, 1)
            && split_valid
        {
            let count: usize = self.expert_split().iter().product();
            if experts > count {
                c.reject(
                    "parallel.experts",
                    experts,
                    &format!("exceeds the number of experts ({count})"),
                );
            }
        }
    }
}

/// The reason given for a `grid.ny` on a PDE without a y axis.
pub(crate) const DIM_MISMATCH: &str = "only 2-D PDEs (navier-stokes) have a y axis";

/// One [`ScenarioError::ConfigInvalid`]: `key` = `value` from `origin`,
/// rejected for `reason`.
pub(crate) fn invalid(origin: &str, key: &str, value: impl Display, reason: &str) -> ScenarioError {
    ScenarioError::ConfigInvalid {
        origin: origin.to_owned(),
        key: key.to_owned(),
        value: value.to_string(),
        reason: reason.to_owned(),
    }
}

/// The rejected settings found so far. Each range check records its
/// rejection and says whether the value passed, so that a check that
/// compares settings can wait for the ones it reads.
struct Checks<'a> {
    origin: &'a str,
    found: Vec<InvalidSetting>,
}

impl<'a> Checks<'a> {
    fn new(origin: &'a str) -> Self {
        Self {
            origin,
            found: Vec::new(),
        }
    }

    /// Nothing found, the one error found, or all of them in the order
    /// found.
    fn finish(mut self) -> Result<(), ScenarioError> {
        match self.found.len() {
            0 => Ok(()),
            1 => {
                let InvalidSetting { key, value, reason } = self.found.remove(0);
                Err(invalid(self.origin, &key, value, &reason))
            }
            _ => Err(ScenarioError::ConfigInvalidSeveral {
                origin: self.origin.to_owned(),
                settings: self.found,
            }),
        }
    }

    fn reject(&mut self, key: &str, value: impl Display, reason: &str) {
        self.found.push(InvalidSetting {
            key: key.to_owned(),
            value: value.to_string(),
            reason: reason.to_owned(),
        });
    }

    /// Whether a setting of `key` has been rejected already.
    fn named(&self, key: &str) -> bool {
        self.found.iter().any(|f| f.key == key)
    }

    /// Records `reject(key, value, reason)` unless `valid`; returns `valid`.
    fn check(&mut self, valid: bool, key: &str, value: impl Display, reason: &str) -> bool {
        if !valid {
            self.reject(key, value, reason);
        }
        valid
    }

    /// A count of samples taken from a split of `size` samples (`split` names
    /// it): at least 1 and, where the split's size is valid itself, at most
    /// that.
    fn count_within(&mut self, key: &str, value: usize, (split, size): (&str, usize)) -> bool {
        let reason = format!("exceeds {split}");
        self.at_least(key, value, 1) && (size < 1 || self.check(value <= size, key, value, &reason))
    }

    fn at_least(&mut self, key: &str, value: usize, min: usize) -> bool {
        self.check(value >= min, key, value, &format!("must be at least {min}"))
    }

    /// `min ≤ value ≤ max`, for a size whose excess no machine could hold
    /// (and whose products would overflow before any allocation failed).
    fn size(&mut self, key: &str, value: usize, min: usize, max: usize) -> bool {
        self.at_least(key, value, min)
            && self.check(value <= max, key, value, &format!("must be at most {max}"))
    }

    /// The points of a grid of sizes `dims`, each space axis refined by
    /// `refinement` (the time axis as it is), within [`MAX_POINTS`]; `value`
    /// is what the error shows for `key`.
    fn points(&mut self, key: &str, value: String, dims: &[usize], refinement: usize) -> bool {
        let total = dims
            .iter()
            .enumerate()
            .try_fold(1usize, |total, (axis, &n)| {
                let n = if axis == 0 {
                    Some(n)
                } else {
                    n.checked_mul(refinement)
                };
                n.and_then(|n| total.checked_mul(n))
            });
        let reason = format!("makes a grid of more than {MAX_POINTS} points");
        let valid = total.is_some_and(|t| t <= MAX_POINTS);
        self.check(valid, key, value, &reason)
    }

    fn finite(&mut self, key: &str, value: f64) -> bool {
        self.check(value.is_finite(), key, shown(value), "must be finite")
    }

    fn positive(&mut self, key: &str, value: f64) -> bool {
        let valid = value.is_finite() && value > 0.0;
        self.check(valid, key, shown(value), "must be finite and positive")
    }

    fn non_negative(&mut self, key: &str, value: f64) -> bool {
        let valid = value.is_finite() && value >= 0.0;
        self.check(valid, key, shown(value), "must be finite and non-negative")
    }

    /// `lo < value < hi`.
    fn range(&mut self, key: &str, value: f64, lo: f64, hi: f64, reason: &str) -> bool {
        self.check(value > lo && value < hi, key, shown(value), reason)
    }

    fn multiple_of(&mut self, key: &str, value: usize, of: &[usize], what: &str) -> bool {
        let valid = value != 0 && of.iter().all(|&n| value.is_multiple_of(n));
        let reason = format!("must be a positive multiple of {what} {of:?}");
        self.check(valid, key, value, &reason)
    }
}

/// A number as an error shows it: as written for the usual magnitudes, in
/// exponent form beyond them (`1e-300`, not three hundred zeros).
fn shown(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude != 0.0 && !(1e-5..1e16).contains(&magnitude) {
        format!("{value:e}")
    } else {
        value.to_string()
    }
}
