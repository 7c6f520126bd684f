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

use tessera_meshes::{Axis, MeshError};

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

impl SpatialAxis {
    /// The spacing of this axis on the solver grid refined by `refinement`,
    /// exactly as the method of lines builds its difference stencils with
    /// it (the spacing of the axis it lays out with a ghost point beyond each
    /// bounded end); `periodic` as the PDE's boundary conditions make the
    /// axis. `None` when the refined axis's points overflow `usize`.
    ///
    /// Public so that a scenario's validation measures the solver grid
    /// against the stencils' range ([`tessera_meshes::ops::fd::MIN_SPACING`])
    /// with the solver's own arithmetic, before any data are generated: the
    /// refined spacing is finer than the output grid's, so an output grid in
    /// range may still have a solver grid out of it.
    pub fn solver_spacing(&self, refinement: usize, periodic: bool) -> Option<f64> {
        self.points.checked_mul(refinement)?;
        Some(AxisLayout::new(self, refinement, periodic).stencil_spacing())
    }
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

    /// The axis the difference stencils are built on: the solver points, and
    /// on a bounded axis one ghost point beyond each end (whose values the
    /// boundary conditions set), named `name`.
    pub fn stencil_axis(&self, name: &str) -> Result<Axis, MeshError> {
        let (start, end, points) = self.stencil_extent();
        if self.periodic {
            Axis::periodic(name, start, end, points)
        } else {
            Axis::linspace(name, start, end, points)
        }
    }

    /// The spacing of [`AxisLayout::stencil_axis`] without laying out its
    /// points (a validation may measure a solver grid of 2³¹ points): the
    /// difference of its first two coordinates, `(start + h) − start`, with
    /// `h` as the mesh computes it. On a bounded axis it may differ from
    /// [`AxisLayout::spacing`] in the last place, which at a bound of the
    /// stencils' range decides whether they build; the tests compare the two
    /// ways of computing it.
    pub fn stencil_spacing(&self) -> f64 {
        let (start, end, points) = self.stencil_extent();
        let intervals = if self.periodic { points } else { points - 1 };
        let h = (end - start) / intervals as f64;
        (start + h) - start
    }

    /// `(start, end, points)` of [`AxisLayout::stencil_axis`].
    fn stencil_extent(&self) -> (f64, f64, usize) {
        if self.periodic {
            (self.lo, self.hi, self.n)
        } else {
            (self.lo - self.spacing, self.hi + self.spacing, self.n + 2)
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

#[cfg(test)]
mod tests {
    use tessera_meshes::ops::fd::{MAX_SPACING, MIN_SPACING};

    use super::*;

    /// The spacing computed without laying out the axis is the laid-out
    /// axis's own, bit for bit, on bounded and periodic axes, at offsets
    /// and lengths whose rounding differs, the stencils' bounds included.
    #[test]
    fn the_stencil_spacing_is_the_laid_out_axis_spacing() {
        let mut differs = 0;
        for periodic in [false, true] {
            for (lo, hi) in [
                (0.0, 1.0),
                (-1.0, 1.0),
                (0.3, 7.1),
                (1e3, 1e3 + 0.1),
                (0.0, 63.0 * MIN_SPACING),
                (0.0, 63.0 * MAX_SPACING),
                (-2.0 * MIN_SPACING, 5e-73),
            ] {
                for (points, refinement) in [(3, 1), (7, 3), (64, 4), (33, 5)] {
                    let axis = SpatialAxis { lo, hi, points };
                    let layout = AxisLayout::new(&axis, refinement, periodic);
                    let laid_out = layout.stencil_axis("x").unwrap().spacing();
                    let at = format!("[{lo:e}, {hi:e}], {points} × {refinement}, {periodic}");
                    assert_eq!(
                        layout.stencil_spacing().to_bits(),
                        laid_out.to_bits(),
                        "{at}"
                    );
                    assert_eq!(axis.solver_spacing(refinement, periodic), Some(laid_out));
                    differs += usize::from(laid_out != layout.spacing);
                }
            }
        }
        // The ghost points' rounding shows, so the comparison is not vacuous.
        assert!(
            differs > 0,
            "no case where the ghosted axis rounds differently"
        );
    }

    /// A refinement whose solver grid overflows `usize` has no spacing.
    #[test]
    fn an_overflowing_refinement_has_no_solver_spacing() {
        let axis = SpatialAxis {
            lo: 0.0,
            hi: 1.0,
            points: 64,
        };
        assert_eq!(axis.solver_spacing(usize::MAX / 2, true), None);
        assert_eq!(axis.solver_spacing(4, true), Some(1.0 / 256.0));
    }
}
