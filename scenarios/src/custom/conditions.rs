//! Initial- and boundary-condition rows of a defined PDE: where they sit on the
//! grid and how one row's coefficients are read off its compiled expression.

use num_dual::{Dual64, DualNum};
use tessera_constraints::expr::{Position, Tape};
use tessera_constraints::{ConstraintError, LinearRow, LinearRowBar};
use tessera_meshes::Grid;

/// Where a family of rows sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// `t = 0`, every space point.
    Initial,
    /// The first (`max = false`) or last point of a bounded space axis (1 = x,
    /// 2 = y), at every time level after the first.
    Boundary { axis: usize, max: bool },
}

impl Place {
    /// The place named `name` for `space_dims` space axes.
    pub fn from_name(name: &str, space_dims: usize) -> Option<Self> {
        let place = match name {
            "initial" => Self::Initial,
            "x-min" => Self::Boundary {
                axis: 1,
                max: false,
            },
            "x-max" => Self::Boundary { axis: 1, max: true },
            "y-min" => Self::Boundary {
                axis: 2,
                max: false,
            },
            "y-max" => Self::Boundary { axis: 2, max: true },
            _ => return None,
        };
        match place {
            Self::Boundary { axis, .. } if axis > space_dims => None,
            p => Some(p),
        }
    }

    /// The name a definition's `at` gives the place.
    pub fn name(self) -> &'static str {
        match self {
            Self::Initial => "initial",
            Self::Boundary {
                axis: 1,
                max: false,
            } => "x-min",
            Self::Boundary { axis: 1, max: true } => "x-max",
            Self::Boundary { max: false, .. } => "y-min",
            Self::Boundary { max: true, .. } => "y-max",
        }
    }

    /// The grid indices of the rows, in row-major order.
    fn points(self, dims: &[usize]) -> Vec<Vec<usize>> {
        let ranges: Vec<std::ops::Range<usize>> = dims
            .iter()
            .enumerate()
            .map(|(axis, &n)| match self {
                Self::Initial if axis == 0 => 0..1,
                Self::Initial => 0..n,
                Self::Boundary { .. } if axis == 0 => 1..n,
                Self::Boundary { axis: a, max } if a == axis => {
                    if max {
                        n - 1..n
                    } else {
                        0..1
                    }
                }
                Self::Boundary { .. } => 0..n,
            })
            .collect();
        let mut points = vec![Vec::new()];
        for range in ranges {
            points = points
                .into_iter()
                .flat_map(|p| {
                    range.clone().map(move |i| {
                        let mut q = p.clone();
                        q.push(i);
                        q
                    })
                })
                .collect();
        }
        points
    }
}

/// One compiled family of rows: `row(z; u0, t, x, y) = rhs(u0, t, x, y)` with
/// `row` linear in the terms `z`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// Where the rows sit.
    pub place: Place,
    /// Inputs: every term (solver order), then `u0, t, x, (y)`.
    pub row: Tape,
    /// Inputs: `u0, t, x, (y)`.
    pub rhs: Tape,
    /// The definition file, and where the condition's `at` is in it: what
    /// an error about the condition's values names.
    pub file: String,
    /// See `file`.
    pub at: Position,
}

impl Condition {
    /// The coefficients `c_j` and the constant `f₀` of the affine row
    /// `row(z) = f₀ + Σ c_j z_j` with the variables `vars`, read off by
    /// evaluating at `z = 0` and `z = e_j` (exact for a row linear in `z`).
    /// Generic over the number type, so that dual-number `vars` give the
    /// derivatives of the coefficients in them.
    pub fn affine<D: DualNum<Primitive = f64> + Copy>(
        &self,
        n_terms: usize,
        vars: &[D],
    ) -> (Vec<(usize, D)>, D) {
        let mut input = vec![D::zero(); n_terms];
        input.extend_from_slice(vars);
        let mut out = [D::zero()];
        self.row.eval(&input, &mut out);
        let f0 = out[0];
        let coeffs = (0..n_terms)
            .filter(|&j| self.row.uses_input(j))
            .map(|j| {
                input[j] = D::one();
                self.row.eval(&input, &mut out);
                input[j] = D::zero();
                (j, out[0] - f0)
            })
            .collect();
        (coeffs, f0)
    }

    /// The rows on `grid` for the initial condition `ic` (`[x, (y)]`), appended
    /// to `rows`.
    pub fn rows(
        &self,
        grid: &Grid,
        ic: &[f64],
        n_terms: usize,
        rows: &mut Vec<LinearRow>,
    ) -> Result<(), ConstraintError> {
        for (point, vars) in self.inputs(grid, ic) {
            let (coeffs, rhs) = self.row_at(n_terms, &vars.values);
            if let Some(value) = first_non_finite(&coeffs, rhs) {
                return Err(ConstraintError::InvalidValue {
                    what: "condition row (coefficient or right-hand side)",
                    value,
                    reason: "not finite at a grid point: check the initial condition and the parameters",
                });
            }
            rows.push(LinearRow { point, coeffs, rhs });
        }
        Ok(())
    }

    /// The row's coefficients and right-hand side `rhs − f₀` at the
    /// variables `vars` (`u0, t, x, (y)`).
    fn row_at(&self, n_terms: usize, vars: &[f64]) -> (Vec<(usize, f64)>, f64) {
        let (coeffs, f0) = self.affine(n_terms, vars);
        let mut rhs = [0.0];
        self.rhs.eval(vars, &mut rhs);
        (coeffs, rhs[0] - f0)
    }

    /// Whether the row or its right-hand side reads `u0` (the first
    /// variable, after the `n_terms` terms in the row).
    pub fn reads_u0(&self, n_terms: usize) -> bool {
        self.row.uses_input(n_terms) || self.rhs.uses_input(0)
    }

    /// The first row on `grid` whose coefficient or right-hand side is not
    /// finite: its point `t, x, (y)` and the value. Only for a condition
    /// that does not read `u0` (`None` otherwise): its values do not depend
    /// on the data, so a scenario can be checked before any is made.
    pub fn non_finite_on(&self, grid: &Grid, n_terms: usize) -> Option<(Vec<f64>, f64)> {
        if self.reads_u0(n_terms) {
            return None;
        }
        let space: usize = grid.shape().dims()[1..].iter().product();
        let ic = vec![0.0; space];
        self.inputs(grid, &ic).find_map(|(_, vars)| {
            let (coeffs, rhs) = self.row_at(n_terms, &vars.values);
            first_non_finite(&coeffs, rhs).map(|value| (vars.values[1..].to_vec(), value))
        })
    }

    /// The backward pass of [`Condition::rows`] in `u0`: adds to `ic_bar`
    /// (laid out like `ic`) the cotangent that `bars` (this condition's rows'
    /// cotangents, in [`Condition::rows`] order) carry through each row's
    /// coefficients and right-hand side, differentiated in `u0` with dual
    /// numbers through the same tapes.
    pub fn backward(
        &self,
        grid: &Grid,
        ic: &[f64],
        n_terms: usize,
        bars: &[LinearRowBar],
        ic_bar: &mut [f64],
    ) {
        for ((_, vars), bar) in self.inputs(grid, ic).zip(bars) {
            // u0 is the first variable: seed its derivative.
            let mut duals: Vec<Dual64> = vars.values.iter().map(|&v| Dual64::from(v)).collect();
            duals[0].eps = 1.0;
            let (coeffs, f0) = self.affine(n_terms, &duals);
            let mut rhs = [Dual64::from(0.0)];
            self.rhs.eval(&duals, &mut rhs);
            let d_rhs = (rhs[0] - f0).eps;
            let d_coeffs: f64 = coeffs
                .iter()
                .zip(&bar.coeffs)
                .map(|((_, c), b)| c.eps * b)
                .sum();
            ic_bar[vars.ic_index] += bar.rhs * d_rhs + d_coeffs;
        }
    }

    /// How many rows the condition has on a grid of `dims`.
    pub fn n_rows(&self, dims: &[usize]) -> usize {
        self.place.points(dims).len()
    }

    /// Each row's grid point and the variables its tapes read.
    fn inputs<'a>(
        &self,
        grid: &'a Grid,
        ic: &'a [f64],
    ) -> impl Iterator<Item = (usize, RowVars)> + 'a {
        let shape = grid.shape();
        let dims = shape.dims();
        let space: usize = dims[1..].iter().product();
        self.place.points(dims).into_iter().map(move |index| {
            let space_flat = index[1..]
                .iter()
                .zip(&dims[1..])
                .fold(0, |acc, (&i, &n)| acc * n + i);
            let ic_index = space_flat % space.max(1);
            let mut values = vec![ic[ic_index]];
            values.extend(
                index
                    .iter()
                    .enumerate()
                    .map(|(axis, &i)| grid.axis(axis).coords()[i]),
            );
            (shape.flat(&index), RowVars { values, ic_index })
        })
    }
}

/// The variables `u0, t, x, (y)` of one row and which value of the initial
/// condition its `u0` is.
struct RowVars {
    values: Vec<f64>,
    ic_index: usize,
}

/// The first of a row's coefficients and right-hand side that is not finite.
fn first_non_finite(coeffs: &[(usize, f64)], rhs: f64) -> Option<f64> {
    coeffs
        .iter()
        .map(|&(_, c)| c)
        .chain([rhs])
        .find(|v| !v.is_finite())
}
