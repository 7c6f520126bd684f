//! A PDE read from a definition file, implementing the same [`Pde`] trait as
//! the built-in ones.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use num_dual::{Dual2SVec64, DualNum};
use tessera_constraints::expr::block::MAX_BLOCK_INPUTS;
use tessera_constraints::expr::{self, ExprError, Origin, Position, Scope, Tape};
use tessera_constraints::pointwise::MAX_TERMS;
use tessera_constraints::{
    ConstraintError, LinearRow, LinearRowBar, Pde, Term, check_cotangents, pointwise, sum_repeats,
};
use tessera_meshes::{CenterScale, Grid, LinearOperator};
use toml::Spanned;

use super::conditions::{Condition, Place};
use super::error::CustomPdeError;
use super::initial::InitialCondition;
use super::initial_override::InitialOverrides;
use super::mol::{MolForm, NotMol, Parts};
use super::operators::{Operator, Stencil};
use super::source::SourceFile;
use super::spec::{ConditionSpec, PdeSpec, SolutionSpec};
use crate::unknown_keys::{listed, unknown_keys};

/// Names every definition may read besides its terms and parameters.
pub(super) const RESERVED: [&str; 5] = ["u0", "t", "x", "y", "t_end"];

/// One term of a defined PDE.
#[derive(Debug, Clone, PartialEq)]
pub struct TermDef {
    /// Its name in the expressions.
    pub name: String,
    /// The operator.
    pub operator: Operator,
    /// The stencil.
    pub stencil: Stencil,
}

/// The model form `u = S(Bω) + s₀` of a defined PDE.
#[derive(Debug, Clone, PartialEq)]
struct Solution {
    /// Factor profile in `t` (inputs `t, t_end`).
    scale: Option<Tape>,
    /// Remove the spatial mean per time level.
    remove_mean: bool,
    /// Add the initial condition at every time level.
    offset_initial: bool,
}

/// A PDE defined in TOML (see the [module docs](super) for the schema).
#[derive(Debug, Clone, PartialEq)]
pub struct CustomPde {
    name: String,
    /// Periodicity of each grid axis, `t` first (never periodic).
    periodic: Vec<bool>,
    /// Terms in solver order: those the residual reads first.
    pub(super) terms: Vec<TermDef>,
    /// The definition file and its `[terms]` table's place in it, which
    /// [`CustomPde::check_term_limit`] names.
    terms_at: (String, Position),
    n_residual_terms: usize,
    /// The residual, over the residual terms followed, when
    /// `residual_coordinates`, by the point's `t, x, (y)`.
    pub(super) residual: Tape,
    /// Whether the residual reads the coordinates.
    pub(super) residual_coordinates: bool,
    pub(super) conditions: Vec<Condition>,
    solution: Option<Solution>,
    /// The `[initial]` family, if the file has one.
    initial: Option<InitialCondition>,
    /// The method-of-lines form, or why there is none (see [`CustomPde::mol`]).
    pub(super) mol: Result<MolForm, NotMol>,
}

impl CustomPde {
    /// Reads and checks the definition in the file at `path`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, CustomPdeError> {
        let path = path.as_ref();
        let text = crate::text_file::read_text(path).map_err(|source| CustomPdeError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_str(&text, &path.display().to_string())
    }

    /// Reads and checks a definition; `file` names it in errors.
    pub fn from_str(text: &str, file: &str) -> Result<Self, CustomPdeError> {
        Self::with_parameters(text, file, &BTreeMap::new())
    }

    /// Reads and checks a definition with some of its `[parameters]` given
    /// other values (a scenario's `pde.parameters`), so that one definition
    /// serves several experiments. Errors at an overridden value point at the
    /// parameter's line in the definition.
    ///
    /// Errors: those of [`CustomPde::from_str`], and an override naming no
    /// parameter of the definition.
    pub fn with_parameters(
        text: &str,
        file: &str,
        overrides: &BTreeMap<String, f64>,
    ) -> Result<Self, CustomPdeError> {
        Self::with_overrides(text, file, overrides, &InitialOverrides::default(), None)
    }

    /// [`CustomPde::with_parameters`], with the `[initial]` values `initial`
    /// replaces (a scenario's `pde.initial`), and with the file's default
    /// `stencil` replaced by `stencil` where one is given: a built-in
    /// configuration with other stencils is the same file read with other
    /// stencils (`AnyPde::definition`), not a second copy of it.
    pub(crate) fn with_overrides(
        text: &str,
        file: &str,
        overrides: &BTreeMap<String, f64>,
        initial: &InitialOverrides,
        stencil: Option<&str>,
    ) -> Result<Self, CustomPdeError> {
        let src = SourceFile { name: file, text };
        let mut spec: PdeSpec = toml::from_str(text).map_err(|e| {
            // Several unknown keys are all listed, each at its place.
            let problems = unknown_keys::<PdeSpec>(text);
            let file = file.to_owned();
            match problems.first().and_then(|p| p.position) {
                Some(at) if problems.len() > 1 => CustomPdeError::TomlSeveral {
                    file,
                    at,
                    message: listed(&problems),
                },
                _ => CustomPdeError::Toml {
                    file,
                    at: src.position(e.span().map_or(0, |s| s.start)),
                    message: e.message().trim_end().to_owned(),
                },
            }
        })?;
        let builder = Builder { src };
        for (name, &value) in overrides {
            let Some(parameter) = spec.parameters.get_mut(name) else {
                let known: Vec<&str> = spec.parameters.keys().map(String::as_str).collect();
                return Err(builder.invalid(
                    0..0,
                    format!("overridden parameter `{name}` is not defined (parameters: {known:?})"),
                ));
            };
            *parameter = Spanned::new(parameter.span(), value);
        }
        initial.apply(&builder, &mut spec.initial)?;
        if let Some(name) = stencil {
            let span = spec.stencil.as_ref().map_or(0..0, Spanned::span);
            spec.stencil = Some(Spanned::new(span, name.to_owned()));
        }
        builder.build(spec)
    }

    /// The definition's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of space axes.
    pub fn space_dims(&self) -> usize {
        self.periodic.len() - 1
    }

    /// Periodicity of each grid axis, `t` first.
    pub fn periodic_axes(&self) -> &[bool] {
        &self.periodic
    }

    /// The terms, in solver order.
    pub fn term_defs(&self) -> &[TermDef] {
        &self.terms
    }

    /// The fewest points each grid axis (`t` first) needs for the terms'
    /// difference stencils, with the first term that needs that many
    /// ([`Operator::min_points`]): [`Pde::terms`] fails on a shorter axis.
    /// `None` for an axis no difference stencil runs along.
    pub fn min_axis_points(&self) -> Vec<Option<(usize, &TermDef)>> {
        let mut least = vec![None; self.periodic.len()];
        for term in &self.terms {
            for (axis, points) in term.operator.min_points(term.stencil, self.space_dims()) {
                if least[axis].is_none_or(|(most, _)| points > most) {
                    least[axis] = Some((points, term));
                }
            }
        }
        least
    }

    /// At most [`MAX_TERMS`] terms can reach the constraint layer and the
    /// PDE loss (their dual-number dispatch): the terms the residual and the
    /// conditions read (those neither reads are dropped). A definition with
    /// more still generates data by the method of lines, so this is checked
    /// where a model is built, before its data are made, and named at the
    /// `[terms]` table.
    ///
    /// Errors: [`CustomPdeError::Invalid`] naming the terms read.
    pub fn check_term_limit(&self) -> Result<(), CustomPdeError> {
        if self.terms.len() <= MAX_TERMS {
            return Ok(());
        }
        let names = |ts: &[TermDef]| {
            let names: Vec<&str> = ts.iter().map(|t| t.name.as_str()).collect();
            names.join(", ")
        };
        let (residual, rows) = self.terms.split_at(self.n_residual_terms);
        let rows = match rows.is_empty() {
            true => String::new(),
            false => format!(
                " and {} only by the conditions ({})",
                rows.len(),
                names(rows)
            ),
        };
        let (file, at) = &self.terms_at;
        Err(CustomPdeError::Invalid {
            file: file.clone(),
            at: *at,
            message: format!(
                "{} terms are read, {} by the residual ({}){rows}; a model takes at most                  {MAX_TERMS} (the constraint layer's and the PDE loss's dual-number dispatch;                  terms that nothing reads do not count): the method of lines still generates                  data for it",
                self.terms.len(),
                residual.len(),
                names(residual),
            ),
        })
    }

    /// Checks the values of every condition that does not read `u0` at its
    /// points of `grid`: a coefficient or right-hand side that is not finite
    /// there (`log(x - 1)` at `x = 0`) is an error at the condition's row
    /// naming the point, found before the reference solver, which took it
    /// for a blow-up, or the constraint layer, which could not say which
    /// condition it was.
    pub fn check_condition_values(&self, grid: &Grid) -> Result<(), CustomPdeError> {
        for c in &self.conditions {
            if let Some((point, value)) = c.non_finite_on(grid, self.terms.len()) {
                let at: Vec<String> = ["t", "x", "y"]
                    .iter()
                    .zip(&point)
                    .map(|(axis, v)| format!("{axis} = {v}"))
                    .collect();
                return Err(CustomPdeError::Invalid {
                    file: c.file.clone(),
                    at: c.at,
                    message: format!(
                        "the condition at `{}` has a coefficient or right-hand side of {value} at \
                         {} (a point of the scenario's grid)",
                        c.place.name(),
                        at.join(", ")
                    ),
                });
            }
        }
        Ok(())
    }

    /// The compiled residual (inputs: the residual terms, then `t, x, (y)`
    /// if [`Pde::uses_coordinates`]).
    pub fn residual_tape(&self) -> &Tape {
        &self.residual
    }

    /// The family of initial conditions of the `[initial]` table, if any: an
    /// [`crate::mol::InitialFamily`] for [`crate::mol::generate`].
    pub fn initial_family(&self) -> Option<&InitialCondition> {
        self.initial.as_ref()
    }

    /// The residual as CUDA C (see [`tessera_constraints::expr::cuda`]).
    pub fn emit_cuda(&self) -> String {
        expr::cuda::emit(&self.name, &self.residual, self.n_coordinates())
    }

    /// The GPU solver's kernel shape for this PDE with `n_basis` basis
    /// functions.
    #[cfg(feature = "cuda")]
    pub fn gpu_shape(&self, n_basis: usize) -> tessera_constraints::gpu::KernelShape {
        tessera_constraints::gpu::KernelShape {
            n_basis,
            n_terms: self.n_residual_terms,
            n_equations: self.residual.n_outputs(),
            n_coordinates: self.n_coordinates(),
        }
    }

    /// The complete CUDA source of the GPU solver for this PDE with `n_basis`
    /// basis functions: the residual of [`CustomPde::emit_cuda`] and the
    /// batched Levenberg–Marquardt kernel, from this one definition.
    #[cfg(feature = "cuda")]
    pub fn gpu_source(&self, n_basis: usize) -> Result<String, tessera_constraints::gpu::GpuError> {
        tessera_constraints::gpu::kernel::lm_source(
            &self.emit_cuda(),
            &self.name,
            self.gpu_shape(n_basis),
        )
    }

    /// How many coordinate inputs the residual tape takes (0 or `1 + space dims`).
    fn n_coordinates(&self) -> usize {
        if self.residual_coordinates {
            self.periodic.len()
        } else {
            0
        }
    }

    /// Whether the block evaluator takes `d` terms and `coords` over `values`:
    /// the tape's inputs, at most [`MAX_BLOCK_INPUTS`] of them differentiated.
    /// Otherwise the per-point path runs, which reports a mismatch.
    fn block_fits(&self, d: usize, coords: &[f64], values: &[f64]) -> bool {
        let n = values.len() / self.residual.n_outputs().max(1);
        let c = coords.len().checked_div(n).unwrap_or(0);
        d <= MAX_BLOCK_INPUTS && d + c == self.residual.n_inputs()
    }

    fn check_grid(&self, grid: &Grid) -> Result<(), ConstraintError> {
        if grid.ndim() != self.periodic.len() {
            return Err(ConstraintError::ShapeMismatch {
                what: "grid axes of the defined PDE (t, then its space axes)",
                expected: vec![self.periodic.len()],
                got: vec![grid.ndim()],
            });
        }
        let periodic: Vec<usize> = (0..grid.ndim())
            .map(|a| usize::from(grid.axis(a).is_periodic()))
            .collect();
        let expected: Vec<usize> = self.periodic.iter().map(|&p| usize::from(p)).collect();
        if periodic == expected {
            Ok(())
        } else {
            Err(ConstraintError::ShapeMismatch {
                what: "periodicity of the grid's axes (1 = periodic; t, then the defined PDE's \
                       space axes)",
                expected,
                got: periodic,
            })
        }
    }

    fn check_ic(&self, grid: &Grid, ic: &[f64]) -> Result<(), ConstraintError> {
        let space: Vec<usize> = grid.shape().dims()[1..].to_vec();
        if ic.len() != space.iter().product::<usize>() {
            return Err(ConstraintError::ShapeMismatch {
                what: "initial condition of the defined PDE [x, (y)]",
                expected: space,
                got: vec![ic.len()],
            });
        }
        if ic.iter().all(|v| v.is_finite()) {
            Ok(())
        } else {
            Err(ConstraintError::NonFinite {
                what: "initial condition of the defined PDE",
            })
        }
    }
}

impl Pde for CustomPde {
    fn terms(&self, grid: &Grid) -> Result<Vec<Term>, ConstraintError> {
        self.check_grid(grid)?;
        self.terms
            .iter()
            .map(|t| {
                Ok(Term {
                    name: t.name.clone(),
                    operator: t.operator.build(grid, t.stencil)?,
                })
            })
            .collect()
    }

    fn n_equations(&self) -> usize {
        self.residual.n_outputs()
    }

    fn residual_terms(&self) -> Option<usize> {
        Some(self.n_residual_terms)
    }

    fn uses_coordinates(&self) -> bool {
        self.residual_coordinates
    }

    #[inline]
    fn residual<D: DualNum<Primitive = f64> + Copy>(&self, z: &[D], coords: &[f64], out: &mut [D]) {
        self.residual.eval_with_data(z, coords, out);
    }

    /// The tape an instruction at a time over the block (see
    /// [`tessera_constraints::expr::block`]): interpreting it point by point
    /// paid its dispatch at every point.
    fn residual_values_block(&self, d: usize, z: &[f64], coords: &[f64], values: &mut [f64]) {
        if self.block_fits(d, coords, values) {
            self.residual.eval_block(z, coords, values);
        } else {
            pointwise::values_per_point(self, d, z, coords, values);
        }
    }

    fn residual_gradients_block(
        &self,
        d: usize,
        z: &[f64],
        coords: &[f64],
        values: &mut [f64],
        grads: &mut [f64],
    ) {
        if self.block_fits(d, coords, values) {
            self.residual.eval_gradients_block(z, coords, values, grads);
        } else {
            pointwise::gradients_per_point(self, d, z, coords, values, grads);
        }
    }

    fn residual_hessians_block(
        &self,
        d: usize,
        z: &[f64],
        coords: &[f64],
        values: &mut [f64],
        grads: &mut [f64],
        hessians: &mut [f64],
    ) {
        if self.block_fits(d, coords, values) {
            self.residual
                .eval_hessians_block(z, coords, values, grads, hessians);
        } else {
            pointwise::hessians_per_point(self, d, z, coords, values, grads, hessians);
        }
    }

    fn linear_rows(&self, grid: &Grid, ic: &[f64]) -> Result<Vec<LinearRow>, ConstraintError> {
        self.check_grid(grid)?;
        self.check_ic(grid, ic)?;
        let mut rows = Vec::new();
        for condition in &self.conditions {
            condition.rows(grid, ic, self.terms.len(), &mut rows)?;
        }
        Ok(rows)
    }

    fn solution_map(
        &self,
        grid: &Grid,
    ) -> Result<Option<Arc<dyn LinearOperator>>, ConstraintError> {
        self.check_grid(grid)?;
        let Some(solution) = &self.solution else {
            return Ok(None);
        };
        let profile = match &solution.scale {
            None => None,
            Some(scale) => {
                let t = grid.axis(0).coords();
                let t_end = t[t.len() - 1];
                let mut profile = Vec::with_capacity(t.len());
                for &ti in t {
                    let mut out = [0.0];
                    scale.eval(&[ti, t_end], &mut out);
                    if !out[0].is_finite() {
                        return Err(ConstraintError::InvalidValue {
                            what: "solution scale profile",
                            value: out[0],
                            reason: "not finite at a time level",
                        });
                    }
                    profile.push(out[0]);
                }
                Some(profile)
            }
        };
        if !solution.remove_mean && profile.is_none() {
            return Ok(None);
        }
        let map = CenterScale::new(grid.shape(), 1, solution.remove_mean, profile)?;
        Ok(Some(Arc::new(map)))
    }

    fn solution_offset(
        &self,
        grid: &Grid,
        ic: &[f64],
    ) -> Result<Option<Vec<f64>>, ConstraintError> {
        self.check_grid(grid)?;
        match &self.solution {
            Some(s) if s.offset_initial => {
                self.check_ic(grid, ic)?;
                Ok(Some(ic.repeat(grid.shape().dims()[0])))
            }
            _ => Ok(None),
        }
    }

    /// Each condition's rows differentiated in `u0` through its tapes, plus
    /// the offset (the initial condition repeated over time) summed over
    /// time levels.
    fn initial_condition_backward(
        &self,
        grid: &Grid,
        ic: &[f64],
        rows: &[LinearRowBar],
        offset: Option<&[f64]>,
    ) -> Result<Vec<f64>, ConstraintError> {
        check_cotangents(self, grid, ic, rows, offset)?;
        let mut ic_bar = match offset {
            Some(offset) => sum_repeats(offset, ic.len()),
            None => vec![0.0; ic.len()],
        };
        let mut rest = rows;
        for condition in &self.conditions {
            let (bars, after) = rest.split_at(condition.n_rows(grid.shape().dims()));
            condition.backward(grid, ic, self.terms.len(), bars, &mut ic_bar);
            rest = after;
        }
        Ok(ic_bar)
    }
}

/// Checks a [`PdeSpec`] and compiles it.
pub(super) struct Builder<'a> {
    pub(super) src: SourceFile<'a>,
}

impl Builder<'_> {
    pub(super) fn invalid(
        &self,
        span: std::ops::Range<usize>,
        message: impl Into<String>,
    ) -> CustomPdeError {
        CustomPdeError::Invalid {
            file: self.src.name.to_owned(),
            at: self.src.at(span),
            message: message.into(),
        }
    }

    fn expr_error(&self, source: ExprError) -> CustomPdeError {
        CustomPdeError::Expr {
            file: self.src.name.to_owned(),
            source,
        }
    }

    pub(super) fn compile(
        &self,
        s: &Spanned<String>,
        scope: &Scope,
        what: &'static str,
    ) -> Result<Tape, CustomPdeError> {
        expr::compile(s.get_ref(), self.src.origin_of(s), scope, what)
            .map_err(|e| self.expr_error(e))
    }

    fn build(&self, spec: PdeSpec) -> Result<CustomPde, CustomPdeError> {
        let space = spec.space.get_ref();
        let expected_axes: &[&str] = if space.len() == 2 {
            &["x", "y"]
        } else {
            &["x"]
        };
        if space
            .iter()
            .map(String::as_str)
            .ne(expected_axes.iter().copied())
        {
            return Err(self.invalid(
                spec.space.span(),
                "`space` must be [\"x\"] or [\"x\", \"y\"]",
            ));
        }
        let space_dims = space.len();
        let mut periodic = vec![false];
        match &spec.periodic {
            Some(p) if p.get_ref().len() != space_dims => {
                return Err(self.invalid(
                    p.span(),
                    format!(
                        "`periodic` has {} flag(s) for {space_dims} space axis/axes",
                        p.get_ref().len()
                    ),
                ));
            }
            Some(p) => periodic.extend(p.get_ref()),
            None => periodic.extend(vec![false; space_dims]),
        }

        // Parameters: finite, and not named like a term or a reserved variable.
        let mut constants = Vec::new();
        for (name, value) in &spec.parameters {
            if !value.get_ref().is_finite() {
                return Err(self.invalid(
                    value.span(),
                    format!("parameter `{name}` = {} is not finite", value.get_ref()),
                ));
            }
            if RESERVED.contains(&name.as_str()) || spec.terms.get_ref().contains_key(name) {
                return Err(self.invalid(
                    value.span(),
                    format!("parameter `{name}` has the name of a term or of one of {RESERVED:?}"),
                ));
            }
            constants.push((name.clone(), *value.get_ref()));
        }
        let with_constants = |mut scope: Scope| {
            for (n, v) in &constants {
                scope = scope.constant(n.clone(), *v);
            }
            scope
        };

        // Terms, as written.
        let default_stencil = match &spec.stencil {
            Some(s) => self.stencil(s.get_ref(), s.span())?,
            None => Stencil::Reference,
        };
        // In the order written: TOML tables come back sorted by key.
        let mut written: Vec<_> = spec.terms.get_ref().iter().collect();
        written.sort_by_key(|(_, term)| term.span().start);
        let mut declared = Vec::new();
        for (name, term) in written {
            if RESERVED.contains(&name.as_str()) {
                return Err(
                    self.invalid(term.span(), format!("`{name}` is reserved for a variable"))
                );
            }
            let op = term.get_ref().op();
            let operator = Operator::from_name(op, space_dims).ok_or_else(|| {
                self.invalid(
                    term.span(),
                    format!(
                        "unknown operator `{op}` for {space_dims} space axis/axes (known: u, dt, dx, dxx, dxxx, dxxxx, laplacian{})",
                        if space_dims == 2 { ", dy, dyy, dyyy, dyyyy, dxy, dxxy, dxyy, dxxxy, dxxyy, dxyyy, velocity-x, velocity-y" } else { "" }
                    ),
                )
            })?;
            let stencil = match term.get_ref().stencil() {
                Some(s) => self.stencil(s, term.span())?,
                // A periodic or spectral default is for the space terms.
                None if operator == Operator::Dt
                    && matches!(default_stencil, Stencil::Periodic | Stencil::Spectral) =>
                {
                    Stencil::Reference
                }
                None => default_stencil,
            };
            let span = term.span();
            operator
                .check_stencil(stencil, &periodic)
                .map_err(|m| self.invalid(span, format!("term `{name}`: {m}")))?;
            declared.push(TermDef {
                name: name.clone(),
                operator,
                stencil,
            });
        }
        if declared.is_empty() {
            return Err(self.invalid(spec.terms.span(), "no terms declared"));
        }

        // The residual: compiled once over all terms and the coordinates to
        // learn which it reads, then over those (terms in declaration order —
        // the solver's residual terms — then `t, x, (y)` if any is read: the
        // solver gathers coordinates only for a residual that needs them).
        let coordinates = &["t", "x", "y"][..1 + space_dims];
        let residual_scope = |terms: &[TermDef], with_coordinates: bool| {
            let scope = terms
                .iter()
                .fold(Scope::new(), |s, t| s.term(t.name.clone()));
            let scope = if with_coordinates {
                coordinates.iter().fold(scope, |s, c| s.variable(*c))
            } else {
                scope
            };
            with_constants(scope)
        };
        let probe = self.compile(&spec.residual, &residual_scope(&declared, true), "residual")?;
        let residual_coordinates =
            (0..coordinates.len()).any(|k| probe.uses_input(declared.len() + k));
        let (mut terms, mut rest) = (Vec::new(), Vec::new());
        for (j, t) in declared.into_iter().enumerate() {
            if probe.uses_input(j) {
                terms.push(t);
            } else {
                rest.push(t);
            }
        }
        let n_residual_terms = terms.len();
        let residual = self.compile(
            &spec.residual,
            &residual_scope(&terms, residual_coordinates),
            "residual",
        )?;

        let variables: Vec<&str> = ["u0", "t", "x", "y"][..2 + space_dims].to_vec();
        let conditions_over = |terms: &[TermDef]| {
            spec.conditions
                .iter()
                .map(|c| self.condition(c, terms, &variables, &with_constants))
                .collect::<Result<Vec<_>, _>>()
        };
        // Of the terms the residual does not read, those no condition reads
        // either are dropped: the constraint layer evaluates every term it is
        // given and counts them all against its limit, and shipped
        // definitions declare `u` whether or not they read it.
        let all: Vec<TermDef> = terms.iter().chain(&rest).cloned().collect();
        let probe = conditions_over(&all)?;
        terms.extend(rest.into_iter().enumerate().filter_map(|(k, t)| {
            let j = n_residual_terms + k;
            probe.iter().any(|c| c.row.uses_input(j)).then_some(t)
        }));
        let conditions = conditions_over(&terms)?;
        let solution = spec
            .solution
            .as_ref()
            .map(|s| self.solution(s, &with_constants))
            .transpose()?;
        self.check_conditions(
            &spec,
            &terms[..n_residual_terms],
            &periodic,
            &conditions,
            solution.as_ref(),
        )?;
        let taken = |name: &str| {
            spec.parameters.contains_key(name) || spec.terms.get_ref().contains_key(name)
        };
        let initial = spec
            .initial
            .as_ref()
            .map(|i| self.initial(i, &periodic[1..], &taken, &with_constants))
            .transpose()?;
        let mol = self.mol_form(&Parts {
            spec: &spec,
            terms: &terms,
            n_residual: n_residual_terms,
            n_rows: residual.n_outputs(),
            periodic: &periodic,
            conditions: &conditions,
        });
        Ok(CustomPde {
            name: spec.name,
            periodic,
            terms,
            terms_at: (self.src.name.to_owned(), self.src.at(spec.terms.span())),
            n_residual_terms,
            residual,
            residual_coordinates,
            conditions,
            solution,
            initial,
            mol,
        })
    }

    fn stencil(&self, name: &str, span: std::ops::Range<usize>) -> Result<Stencil, CustomPdeError> {
        Stencil::from_name(name).ok_or_else(|| {
            self.invalid(
                span,
                format!(
                    "unknown stencil `{name}` (known: reference, second-order, periodic, spectral)"
                ),
            )
        })
    }

    fn condition(
        &self,
        c: &Spanned<ConditionSpec>,
        terms: &[TermDef],
        variables: &[&str],
        with_constants: &dyn Fn(Scope) -> Scope,
    ) -> Result<Condition, CustomPdeError> {
        let spec = c.get_ref();
        let space_dims = variables.len() - 2;
        let place = Place::from_name(spec.at.get_ref(), space_dims).ok_or_else(|| {
            self.invalid(
                spec.at.span(),
                format!(
                    "unknown place `{}` (known: initial, x-min, x-max{})",
                    spec.at.get_ref(),
                    if space_dims == 2 {
                        ", y-min, y-max"
                    } else {
                        ""
                    }
                ),
            )
        })?;
        let vars = |s: Scope| variables.iter().fold(s, |s, v| s.variable(*v));
        let row_scope = with_constants(vars(
            terms
                .iter()
                .fold(Scope::new(), |s, t| s.term(t.name.clone())),
        ));
        let row = self.compile(&spec.row, &row_scope, "condition row")?;
        let rhs_scope = with_constants(vars(Scope::new()));
        let rhs = match &spec.rhs {
            Some(text) => self.compile(text, &rhs_scope, "right-hand side")?,
            None => expr::compile("0", Origin::default(), &rhs_scope, "right-hand side")
                .map_err(|e| self.expr_error(e))?,
        };
        let condition = Condition {
            place,
            row,
            rhs,
            file: self.src.name.to_owned(),
            at: self.src.at(spec.at.span()),
        };
        self.check_row(&condition, terms.len(), variables.len(), &spec.row)?;
        if let Some(kind) = &spec.kind {
            let uses = |identity: bool| {
                terms.iter().enumerate().any(|(j, t)| {
                    condition.row.uses_input(j) && (t.operator == Operator::U) == identity
                })
            };
            let ok = match kind.get_ref().as_str() {
                "dirichlet" => !uses(false),
                "neumann" => !uses(true),
                "robin" => uses(true) && uses(false),
                "linear" => true,
                other => {
                    return Err(self.invalid(
                        kind.span(),
                        format!(
                            "unknown kind `{other}` (known: dirichlet, neumann, robin, linear)"
                        ),
                    ));
                }
            };
            if !ok {
                return Err(self.invalid(
                    spec.row.span(),
                    format!(
                        "a `{}` row must use {}",
                        kind.get_ref(),
                        match kind.get_ref().as_str() {
                            "dirichlet" => "only the term `u` (operator `u`)",
                            "neumann" => "only derivative terms",
                            _ => "`u` and a derivative term",
                        }
                    ),
                ));
            }
        }
        Ok(condition)
    }

    /// Rejects a row that is not linear in the terms (compares it with its
    /// affine model at random points, and its Hessian with zero), and one
    /// whose coefficients are all zero (`0*u`): it constrains nothing, and at
    /// a boundary the method of lines would take it for a Robin row with
    /// `α = β = 0`, refused only once data generation began. Coefficients may
    /// vary with the variables, so a second set of them is tried for that.
    fn check_row(
        &self,
        c: &Condition,
        n_terms: usize,
        n_vars: usize,
        row: &Spanned<String>,
    ) -> Result<(), CustomPdeError> {
        let vars: Vec<f64> = (0..n_vars).map(|k| 0.5 + 0.125 * k as f64).collect();
        let (coeffs, f0) = c.affine(n_terms, &vars);
        for scale in [0.75, -1.5, 2.25] {
            let mut input: Vec<f64> = (0..n_terms)
                .map(|j| scale * (1.0 + 0.3 * j as f64))
                .collect();
            let model = f0 + coeffs.iter().map(|&(j, cj)| cj * input[j]).sum::<f64>();
            input.extend_from_slice(&vars);
            let mut out = [0.0];
            c.row.eval(&input, &mut out);
            let second = {
                // One direction through every term (not the variables).
                let z: Vec<Dual2SVec64<1>> = input
                    .iter()
                    .enumerate()
                    .map(|(j, &v)| {
                        let x = Dual2SVec64::from_re(v);
                        if j < n_terms { x.derivative(0) } else { x }
                    })
                    .collect();
                let mut o = [Dual2SVec64::from_re(0.0)];
                c.row.eval(&z, &mut o);
                o[0].v2.0.map_or(0.0, |h| h[(0, 0)])
            };
            let tol = 1e-9 * (1.0 + model.abs());
            if !((out[0] - model).abs() <= tol && second.abs() <= tol) {
                return Err(self.invalid(
                    row.span(),
                    "a condition row must be linear in the terms (it is a row of the least-squares problem's linear part)",
                ));
            }
        }
        let zero = |coeffs: &[(usize, f64)]| coeffs.iter().all(|&(_, cj)| cj == 0.0);
        let other: Vec<f64> = (0..n_vars).map(|k| -1.25 + 0.75 * k as f64).collect();
        if zero(&coeffs) && zero(&c.affine(n_terms, &other).0) {
            return Err(self.invalid(
                row.span(),
                "this condition row is zero in every term, so it constrains nothing: give `u` \
                 or a derivative a non-zero coefficient",
            ));
        }
        Ok(())
    }

    fn solution(
        &self,
        s: &Spanned<SolutionSpec>,
        with_constants: &dyn Fn(Scope) -> Scope,
    ) -> Result<Solution, CustomPdeError> {
        let spec = s.get_ref();
        let scale = spec
            .scale
            .as_ref()
            .map(|text| {
                self.compile(
                    text,
                    &with_constants(Scope::new().variable("t").variable("t_end")),
                    "scale",
                )
            })
            .transpose()?;
        let offset_initial = match &spec.offset {
            None => false,
            Some(o) if o.get_ref() == "initial" => true,
            Some(o) => {
                return Err(self.invalid(
                    o.span(),
                    format!("unknown offset `{}` (known: initial)", o.get_ref()),
                ));
            }
        };
        Ok(Solution {
            scale,
            remove_mean: spec.remove_mean,
            offset_initial,
        })
    }

    /// A PDE with `∂t` needs its initial condition (a row at `initial`, or the
    /// model form's offset); a derivative along a bounded axis needs rows at its
    /// ends (both for a second derivative).
    fn check_conditions(
        &self,
        spec: &PdeSpec,
        residual_terms: &[TermDef],
        periodic: &[bool],
        conditions: &[Condition],
        solution: Option<&Solution>,
    ) -> Result<(), CustomPdeError> {
        let has = |p: Place| conditions.iter().any(|c| c.place == p);
        let mut order = vec![0; periodic.len()];
        for t in residual_terms {
            for (a, k) in t.operator.derivative_axes(periodic.len() - 1) {
                order[a] = order[a].max(k);
            }
        }
        let offset = solution.is_some_and(|s| s.offset_initial);
        if order[0] > 0 && !offset && !has(Place::Initial) {
            return Err(self.invalid(
                spec.residual.span(),
                "the residual has a time derivative but there is no `initial` condition (nor `solution.offset = \"initial\"`)",
            ));
        }
        for axis in 1..periodic.len() {
            if periodic[axis] || order[axis] == 0 {
                continue;
            }
            let name = ["x", "y"][axis - 1];
            let (lo, hi) = (
                has(Place::Boundary { axis, max: false }),
                has(Place::Boundary { axis, max: true }),
            );
            let enough = if order[axis] >= 2 { lo && hi } else { lo || hi };
            if !enough {
                return Err(self.invalid(
                    spec.residual.span(),
                    format!(
                        "the residual has a derivative of order {} along the bounded axis {name}: add rows at {name}-min{}{name}-max (or make the axis periodic)",
                        order[axis],
                        if order[axis] >= 2 { " and " } else { " or " }
                    ),
                ));
            }
        }
        Ok(())
    }
}
