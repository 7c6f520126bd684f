//! A defined PDE as the method-of-lines solver sees it ([`MolPde`]), so that
//! every 1-D or 2-D scalar definition gets ground truth from [`crate::mol`].
//!
//! The mapping is worked out when the file is loaded, where the source
//! positions are known; [`CustomPde::mol`] hands out the [`CustomMol`] view or
//! the reason it cannot, as [`CustomPdeError::Unsupported`] at the line and
//! column of the offending term, row or residual. (The constraint layer is
//! untouched: a definition MOL cannot solve, such as Navier–Stokes in vorticity
//! form, loads and trains as before.)
//!
//! | definition | method of lines |
//! |---|---|
//! | term `dt` | `u_t` (the residual's `at.u_t`); its stencil is unused: SDIRK4 integrates time |
//! | `u`, `dx`, `dxx`, `dy`, `dyy`, `laplacian` | [`Derivative`] `Value`, `Dx`, `Dxx`, `Dy`, `Dyy`, `Laplacian` |
//! | `dxy` | [`Derivative`] `Mixed(1, 1)`: the product of the central first differences (corner ghosts at a corner of two bounded sides), or `(i k_x)(i k_y)` |
//! | `dxxx`, `dxxxx`, `dyyy`, `dyyyy` (spectral only) | [`Derivative`] `Dxxx`, `Dxxxx`, `Dyyy`, `Dyyyy` |
//! | `dxxy`, `dxyy`, `dxxxy`, `dxxyy`, `dxyyy` (spectral only) | [`Derivative`] `Mixed(p, q)` |
//! | `velocity-x`, `velocity-y` | [`Derivative`] `VelocityX`, `VelocityY` (the other terms' stencil must be spectral too) |
//! | stencils `reference`, `second-order`, `periodic` | [`MolStencil::FiniteDifference`]: second-order central, with ghost nodes at bounded ends and wrapping on periodic axes |
//! | every space derivative `spectral` | [`MolStencil::Spectral`] (every axis must be periodic); spectral mixed with differences is unsupported |
//! | `periodic = [true, …]` | [`Boundary::Periodic`] (the axis takes no boundary rows) |
//! | row at `x-min`/`x-max`/`y-min`/`y-max`: `a·u + b·u_n + f(t, x) = rhs(t, x)` | [`Boundary::Robin`] `α = a`, `β = ±b` (the sign makes `u_n` the outward normal derivative), data `g = rhs − f` |
//! | such a row with `c·u_τ` too (2-D: the derivative along the side, e.g. the no-flux `k11·u_x + k12·u_y = 0`) | [`Boundary::Oblique`] `γ = c` (`b ≠ 0`) |
//! | `initial` rows | unused: the initial value comes from the family ([`CustomPde::initial_family`]) |
//!
//! The `reference` stencil (`numpy.gradient`, first order at the ends) is how
//! the paper's constraint layer differentiates; as ground truth the solver
//! always uses its own second-order scheme, which the `mol_*` tests verify.
//!
//! Unsupported, each a typed error: a residual of several rows
//! (a system) or without `dt`, a boundary row reading `u0` or a term other than
//! `u` and the first derivatives (or the derivative along the side without
//! the one across it), row coefficients that vary with `t` or the
//! coordinates, two rows on one side, rows on a periodic axis, and a bounded
//! axis the residual differentiates along without a row at each end. An axis
//! the residual does not differentiate along needs no rows: its ends are
//! homogeneous Neumann, whose ghost values no stencil reads.

use std::ops::Range;

use num_dual::DualNum;
use tessera_constraints::expr::Position;

use super::conditions::{Condition, Place};
use super::error::CustomPdeError;
use super::operators::{Operator, Stencil};
use super::pde::{Builder, CustomPde, TermDef};
use super::spec::PdeSpec;
use crate::mol::{Boundary, Derivative, MolPde, MolTerm, PointValues, Side, Stencil as MolStencil};

/// Residual inputs evaluated from a stack buffer (more use the heap).
const STACK_INPUTS: usize = 8;

/// Where residual input `j` comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Input {
    /// `u_t`.
    TimeDerivative,
    /// Term `k` of [`MolPde::terms`].
    Term(usize),
}

/// The condition on one side: the [`Boundary`], and the index of its row in
/// the definition's conditions (none: homogeneous).
#[derive(Debug, Clone, Copy, PartialEq)]
struct SideCondition {
    boundary: Boundary,
    row: Option<usize>,
}

/// The method-of-lines form of a definition, worked out at load time.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct MolForm {
    inputs: Vec<Input>,
    terms: Vec<MolTerm>,
    stencil: MolStencil,
    /// x low, x high, (y low, y high).
    sides: Vec<SideCondition>,
}

/// Why the method of lines cannot solve a definition, and where.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct NotMol {
    file: String,
    at: Position,
    message: String,
}

/// A [`CustomPde`] as a [`MolPde`] (from [`CustomPde::mol`]).
#[derive(Debug, Clone, Copy)]
pub struct CustomMol<'a> {
    pde: &'a CustomPde,
    form: &'a MolForm,
}

impl CustomPde {
    /// The definition as the method-of-lines reference solver sees it (see the
    /// [mapping](self)).
    ///
    /// Errors: [`CustomPdeError::Unsupported`] at the term, row or residual the
    /// method of lines cannot take.
    pub fn mol(&self) -> Result<CustomMol<'_>, CustomPdeError> {
        match &self.mol {
            Ok(form) => Ok(CustomMol { pde: self, form }),
            Err(e) => Err(CustomPdeError::Unsupported {
                file: e.file.clone(),
                at: e.at,
                message: e.message.clone(),
            }),
        }
    }
}

fn side_index(side: Side) -> usize {
    match side {
        Side::XLow => 0,
        Side::XHigh => 1,
        Side::YLow => 2,
        Side::YHigh => 3,
    }
}

impl MolPde for CustomMol<'_> {
    fn terms(&self) -> Vec<MolTerm> {
        self.form.terms.clone()
    }

    fn stencil(&self) -> MolStencil {
        self.form.stencil
    }

    fn residual<D: DualNum<Primitive = f64> + Copy>(&self, at: &PointValues<'_, D>, out: &mut [D]) {
        let n = self.form.inputs.len();
        let mut stack = [D::zero(); STACK_INPUTS];
        let mut heap = Vec::new();
        let z = if n <= STACK_INPUTS {
            &mut stack[..n]
        } else {
            heap.resize(n, D::zero());
            &mut heap[..]
        };
        for (zj, input) in z.iter_mut().zip(&self.form.inputs) {
            *zj = match *input {
                Input::TimeDerivative => at.u_t[0],
                Input::Term(k) => at.z[k],
            };
        }
        // `t, x, (y)` of the definition; a point of fewer space dimensions
        // gives NaN, which the solver reports as a blow-up.
        let mut coords = [at.t, f64::NAN, f64::NAN];
        for (c, &x) in coords[1..].iter_mut().zip(at.x) {
            *c = x;
        }
        let data = if self.pde.residual_coordinates {
            &coords[..self.pde.periodic_axes().len()]
        } else {
            &[]
        };
        self.pde.residual.eval_with_data(z, data, out);
    }

    /// A side the definition does not have (y of a 1-D definition on a 2-D
    /// domain) is homogeneous Neumann: the residual never differentiates there.
    fn boundary(&self, side: Side, _component: usize) -> Boundary {
        self.form
            .sides
            .get(side_index(side))
            .map_or_else(Boundary::neumann, |s| s.boundary)
    }

    /// `rhs(t, x) − f(t, x)` of the side's row. A point of another dimension
    /// than the definition's gives NaN, which the solver reports as a blow-up.
    fn boundary_value(&self, side: Side, _component: usize, t: f64, point: &[f64]) -> f64 {
        let Some(c) = self
            .form
            .sides
            .get(side_index(side))
            .and_then(|s| s.row)
            .map(|i| &self.pde.conditions[i])
        else {
            return 0.0;
        };
        if point.len() != self.pde.space_dims() {
            return f64::NAN;
        }
        // `u0` is never read (checked at load time).
        let vars: Vec<f64> = [0.0, t].iter().chain(point).copied().collect();
        let mut rhs = [0.0];
        c.rhs.eval(&vars, &mut rhs);
        let mut row_input = vec![0.0; self.pde.terms.len()];
        row_input.extend(&vars);
        let mut f0 = [0.0];
        c.row.eval(&row_input, &mut f0);
        rhs[0] - f0[0]
    }
}

/// The definition's parts the mapping reads.
pub(super) struct Parts<'a> {
    pub(super) spec: &'a PdeSpec,
    /// All terms, solver order; the first `n_residual` are the residual's inputs.
    pub(super) terms: &'a [TermDef],
    pub(super) n_residual: usize,
    pub(super) n_rows: usize,
    pub(super) periodic: &'a [bool],
    pub(super) conditions: &'a [Condition],
}

impl Builder<'_> {
    fn not_mol(&self, span: Range<usize>, message: impl Into<String>) -> NotMol {
        NotMol {
            file: self.src.name.to_owned(),
            at: self.src.at(span),
            message: message.into(),
        }
    }

    /// The method-of-lines form of a checked definition, or why there is none.
    pub(super) fn mol_form(&self, parts: &Parts<'_>) -> Result<MolForm, NotMol> {
        let residual_span = parts.spec.residual.span();
        if parts.n_rows != 1 {
            return Err(self.not_mol(
                residual_span,
                format!(
                    "the residual has {} rows; the method of lines solves scalar PDEs (one row)",
                    parts.n_rows
                ),
            ));
        }
        let (mut inputs, mut terms) = (Vec::new(), Vec::new());
        let mut stencils = Vec::new();
        for t in &parts.terms[..parts.n_residual] {
            let span = self.term_span(parts.spec, &t.name);
            let derivative = match t.operator {
                Operator::Dt => {
                    inputs.push(Input::TimeDerivative);
                    continue;
                }
                Operator::U => Derivative::Value,
                Operator::First(1) => Derivative::Dx,
                Operator::First(_) => Derivative::Dy,
                Operator::Second(1) => Derivative::Dxx,
                Operator::Second(_) => Derivative::Dyy,
                Operator::Third(1) => Derivative::Dxxx,
                Operator::Third(_) => Derivative::Dyyy,
                Operator::Fourth(1) => Derivative::Dxxxx,
                Operator::Fourth(_) => Derivative::Dyyyy,
                Operator::Laplacian => Derivative::Laplacian,
                Operator::Mixed(p, q) => Derivative::Mixed(p, q),
                Operator::Velocity(1) => Derivative::VelocityX,
                Operator::Velocity(_) => Derivative::VelocityY,
            };
            if matches!(derivative, Derivative::VelocityX | Derivative::VelocityY) {
                // Spectral whatever the term's stencil says: it has no other.
                stencils.push((true, span));
            } else if derivative != Derivative::Value {
                stencils.push((t.stencil == Stencil::Spectral, span));
            }
            inputs.push(Input::Term(terms.len()));
            terms.push(MolTerm::new(0, derivative));
        }
        if !inputs.contains(&Input::TimeDerivative) {
            return Err(self.not_mol(
                residual_span,
                "the residual has no time derivative (a `dt` term); the method of lines integrates u_t",
            ));
        }
        let spectral = stencils.first().is_some_and(|&(s, _)| s);
        if let Some((_, span)) = stencils.iter().find(|&&(s, _)| s != spectral) {
            return Err(self.not_mol(
                span.clone(),
                "the method of lines uses one stencil for all terms: spectral for every space derivative, or differences for every one",
            ));
        }
        if spectral && !parts.periodic[1..].iter().all(|&p| p) {
            return Err(self.not_mol(
                residual_span,
                "spectral stencils in the method of lines need every space axis periodic",
            ));
        }
        let mut sides = Vec::new();
        for axis in 1..parts.periodic.len() {
            for max in [false, true] {
                sides.push(self.side(parts, axis, max)?);
            }
        }
        Ok(MolForm {
            inputs,
            terms,
            stencil: if spectral {
                MolStencil::Spectral
            } else {
                MolStencil::FiniteDifference
            },
            sides,
        })
    }

    fn term_span(&self, spec: &PdeSpec, name: &str) -> Range<usize> {
        spec.terms
            .get_ref()
            .get(name)
            .map_or_else(|| spec.terms.span(), toml::Spanned::span)
    }

    /// The condition at one end (`max`) of grid axis `axis`.
    fn side(&self, parts: &Parts<'_>, axis: usize, max: bool) -> Result<SideCondition, NotMol> {
        let name = ["x", "y"][axis - 1];
        let mut rows = parts
            .conditions
            .iter()
            .enumerate()
            .filter(|(_, c)| c.place == Place::Boundary { axis, max })
            .map(|(i, _)| i);
        let at_span = |i: usize| parts.spec.conditions[i].get_ref().at.span();
        let row = rows.next();
        if parts.periodic[axis] {
            return match row {
                Some(i) => Err(self.not_mol(
                    at_span(i),
                    format!(
                        "the axis {name} is periodic: the method of lines takes no rows at its ends"
                    ),
                )),
                None => Ok(SideCondition {
                    boundary: Boundary::Periodic,
                    row: None,
                }),
            };
        }
        if let Some(second) = rows.next() {
            return Err(self.not_mol(
                at_span(second),
                "a second row at this end: the method of lines takes one condition per side",
            ));
        }
        let Some(i) = row else {
            let differentiated = parts.terms[..parts.n_residual].iter().any(|t| {
                t.operator
                    .derivative_axes(parts.periodic.len() - 1)
                    .iter()
                    .any(|&(a, _)| a == axis)
            });
            return if differentiated {
                Err(self.not_mol(
                    parts.spec.residual.span(),
                    format!(
                        "the residual differentiates along the bounded axis {name}: the method of lines needs a row at {name}-{}",
                        if max { "max" } else { "min" }
                    ),
                ))
            } else {
                Ok(SideCondition {
                    boundary: Boundary::neumann(),
                    row: None,
                })
            };
        };
        let boundary = self.robin(parts, i, axis, max)?;
        Ok(SideCondition {
            boundary,
            row: Some(i),
        })
    }

    /// `α u + β ∂u/∂n` of boundary row `i` at the end `max` of `axis`: its
    /// coefficients of `u` and of the derivative along the axis, the same at
    /// every `t` and point.
    fn robin(
        &self,
        parts: &Parts<'_>,
        i: usize,
        axis: usize,
        max: bool,
    ) -> Result<Boundary, NotMol> {
        let c = &parts.conditions[i];
        let row_span = parts.spec.conditions[i].get_ref().row.span();
        let n_terms = parts.terms.len();
        if c.reads_u0(n_terms) {
            return Err(self.not_mol(
                row_span,
                "a boundary row that reads `u0` (the initial value) has no method-of-lines form",
            ));
        }
        let space_dims = parts.periodic.len() - 1;
        // Coefficients at a few (t, x, y): they must not vary.
        let samples: Vec<Vec<f64>> = [[0.0, 0.3, -0.7], [1.7, -2.1, 0.45], [0.05, 5.5, 3.25]]
            .iter()
            .map(|&[t, x, y]| [0.0, t, x, y][..2 + space_dims].to_vec())
            .collect();
        let (coeffs, _) = c.affine(n_terms, &samples[0]);
        let varies = samples[1..].iter().any(|vars| {
            let (other, _) = c.affine(n_terms, vars);
            other
                .iter()
                .zip(&coeffs)
                .any(|(&(_, a), &(_, b))| (a - b).abs() > 1e-12 * (1.0 + b.abs()))
        });
        if varies {
            return Err(self.not_mol(
                row_span,
                "the coefficients of this row vary with t or the coordinates; the method of lines takes constant α, β in α u + β ∂u/∂n = g(t, x)",
            ));
        }
        let (mut alpha, mut derivative, mut tangential) = (0.0, 0.0, 0.0);
        for &(j, cj) in &coeffs {
            match parts.terms[j].operator {
                Operator::U => alpha += cj,
                Operator::First(a) if a == axis => derivative += cj,
                Operator::First(_) => tangential += cj,
                _ => {
                    return Err(self.not_mol(
                        row_span,
                        format!(
                            "this row reads `{}`; a method-of-lines boundary row reads only `u` and the first derivatives",
                            parts.terms[j].name,
                        ),
                    ));
                }
            }
        }
        // The outward normal points down the axis at its low end.
        let beta = if max { derivative } else { -derivative };
        if tangential == 0.0 {
            return Ok(Boundary::Robin { alpha, beta });
        }
        if beta == 0.0 {
            return Err(self.not_mol(
                row_span,
                format!(
                    "this row reads the derivative along the side but not across it; an oblique method-of-lines row needs the derivative along {}",
                    ["x", "y"][axis - 1]
                ),
            ));
        }
        Ok(Boundary::Oblique {
            alpha,
            beta,
            gamma: tangential,
        })
    }
}
