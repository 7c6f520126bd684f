//! The rectangle a PDE is solved on, the output grid, and the finer solver grid.
//!
//! **Layout.** A bounded axis `[lo, hi]` with `n` output points holds
//! `linspace(lo, hi, n)` (both ends are grid points, so Dirichlet data sits
//! exactly on a node); a periodic axis holds `lo + i·L/n`, `i < n`
//! ([`tessera_meshes::Axis::periodic`]). Whether an axis is periodic is the
//! PDE's statement ([`crate::mol::Boundary::Periodic`]).
//!
//! **Refinement and restriction.** The solver grid refines every axis by the
//! integer factor `r`: `(n − 1)·r + 1` points on a bounded axis, `n·r` on a
//! periodic one, so every output point is a solver point and the output is the
//! solver field *injected* there (point values, not cell averages: the schemes
//! are point-value finite differences, whose error at a node is `O(h²)` with
//! no averaging needed).
//!
//! **Dealiasing.** A spectral discretisation may drop the Fourier modes of
//! the solver grid that products alias into ([`Dealias`]); the domain
//! carries the rule because, like the refinement, it says which field the
//! solver grid holds.

use tessera_meshes::MeshError;

use crate::mol::{Dealias, MolError};

/// The fewest output points a spatial axis takes: a bounded axis keeps an
/// interior node, and with it an unknown, between its two boundary nodes,
/// and a periodic axis's central differences need two neighbours other than
/// the point itself. A scenario's validation refuses a grid below it before
/// any data are generated.
pub const MIN_POINTS: usize = 3;

/// One spatial axis of the domain: its interval and its number of output points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpatialAxis {
    /// Lower end.
    pub lo: f64,
    /// Upper end (the period's end on a periodic axis).
    pub hi: f64,
    /// Output points.
    pub points: usize,
}

/// A 1-D or 2-D rectangle with its output grid and the solver's refinement.
#[derive(Debug, Clone, PartialEq)]
pub struct MolDomain {
    axes: Vec<SpatialAxis>,
    refinement: usize,
    dealias: Dealias,
}

impl MolDomain {
    /// A domain from its axes (`[x]` or `[x, y]`) and the refinement factor of
    /// the solver grid.
    ///
    /// Errors: not one or two axes, an empty or non-finite interval, fewer than
    /// [`MIN_POINTS`] output points, or a refinement of 0.
    pub fn new(axes: Vec<SpatialAxis>, refinement: usize) -> Result<Self, MolError> {
        if !(1..=2).contains(&axes.len()) {
            return Err(MolError::ShapeMismatch {
                what: "spatial axes (1 or 2)",
                expected: vec![1, 2],
                got: vec![axes.len()],
            });
        }
        for axis in &axes {
            if !(axis.lo.is_finite() && axis.hi.is_finite() && axis.hi > axis.lo) {
                return Err(MolError::InvalidValue {
                    what: "spatial interval length hi − lo",
                    value: axis.hi - axis.lo,
                    reason: "ends must be finite with hi > lo",
                });
            }
            if axis.points < MIN_POINTS {
                return Err(MolError::Mesh(MeshError::TooSmall {
                    what: "output points per spatial axis",
                    min: MIN_POINTS,
                    got: axis.points,
                }));
            }
        }
        if refinement == 0 {
            return Err(MolError::InvalidValue {
                what: "refinement factor",
                value: 0.0,
                reason: "must be at least 1",
            });
        }
        Ok(Self {
            axes,
            refinement,
            dealias: Dealias::None,
        })
    }

    /// The same domain with spectral derivatives dealiased by `rule` (a
    /// [`crate::mol::Discretisation`] of a PDE without the spectral stencil
    /// refuses any rule but [`Dealias::None`]).
    pub fn dealiased(mut self, rule: Dealias) -> Self {
        self.dealias = rule;
        self
    }

    /// A 1-D domain `[lo, hi]` with `points` output points.
    ///
    /// Errors: as [`MolDomain::new`].
    pub fn interval(lo: f64, hi: f64, points: usize, refinement: usize) -> Result<Self, MolError> {
        Self::new(vec![SpatialAxis { lo, hi, points }], refinement)
    }

    /// The axes.
    pub fn axes(&self) -> &[SpatialAxis] {
        &self.axes
    }

    /// The refinement factor.
    pub fn refinement(&self) -> usize {
        self.refinement
    }

    /// The dealiasing rule of spectral derivatives.
    pub fn dealias(&self) -> Dealias {
        self.dealias
    }
}

/// One axis as laid out on the solver grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AxisLayout {
    pub lo: f64,
    pub hi: f64,
    /// Solver points.
    pub n: usize,
    /// Output points.
    pub n_out: usize,
    pub spacing: f64,
    pub periodic: bool,
}

impl AxisLayout {
    pub fn new(axis: &SpatialAxis, refinement: usize, periodic: bool) -> Self {
        let (n, spacing) = if periodic {
            let n = axis.points * refinement;
            (n, (axis.hi - axis.lo) / n as f64)
        } else {
            let n = (axis.points - 1) * refinement + 1;
            (n, (axis.hi - axis.lo) / (n - 1) as f64)
        };
        Self {
            lo: axis.lo,
            hi: axis.hi,
            n,
            n_out: axis.points,
            spacing,
            periodic,
        }
    }

    /// Ghost points on each side (none on a periodic axis).
    pub fn pad(&self) -> usize {
        usize::from(!self.periodic)
    }

    /// Coordinate of solver point `i`.
    pub fn coord(&self, i: usize) -> f64 {
        self.lo + self.spacing * i as f64
    }

    /// Output coordinates.
    pub fn output_coords(&self, refinement: usize) -> Vec<f64> {
        (0..self.n_out)
            .map(|i| self.coord(i * refinement))
            .collect()
    }
}
