//! A [`MolPde`] in space: its terms as `meshes` stencils on the solver grid,
//! its boundary conditions, and `u_t` from the pointwise residual — the
//! [`MolSystem`] the time integrator advances.
//!
//! **Boundary conditions.** Every bounded axis carries one ghost layer on each
//! side, and the stencils are the plain central ones everywhere
//! (`meshes`' [`FdScheme::SecondOrder`] on the ghost-extended axis; its
//! one-sided rows fall on the ghosts and are never read):
//! - *Dirichlet* (`β = 0`): the boundary node is not an unknown; its value is
//!   `g/α` at the current time;
//! - *Robin/Neumann* (`β ≠ 0`): the boundary node is an unknown, and the ghost
//!   value makes the central difference satisfy the condition,
//!   `u_ghost = u_inner + 2h (g − α u_b)/β` (outward normal derivative
//!   `(u_ghost − u_inner)/2h`), which keeps the scheme second order up to the
//!   boundary — one-sided boundary rows would do so too, but ghosts let every
//!   node use the same stencil and need no extra algebraic equations;
//! - *oblique* (`α u + β ∂u/∂n + γ ∂u/∂τ = g`, `β ≠ 0`): as Robin with
//!   `g − γ ∂u/∂τ`, the tangential derivative along the side's nodes
//!   (central, one-sided of second order at the side's ends, so that no other
//!   side's ghost is read);
//! - *periodic*: the axis wraps ([`FdScheme::Periodic`], or spectral).
//!
//! A node on two Dirichlet sides (a corner) takes the x side's value. The
//! mixed derivative `u_xy` (the product of the central first differences)
//! at a corner node of two Robin/Neumann sides reads the diagonal ghost
//! beyond it: the x side's rule applied along the y ghosts' row, its data
//! `g` at the ghost row's coordinate, so the diagonal ghost, like the
//! others, is the smooth extension to `O(h³)`. At a node
//! where only some components are Dirichlet, the others' `u_t` is solved with
//! the Dirichlet components' `u_t` set to 0 (exact when `∂F/∂u_t` does not
//! couple them).
//!
//! **`u_t` from the residual.** At each point the residual rows
//! `F(u_t, z) = F₀ + M u_t` are evaluated on hyper-dual numbers at `u_t = 0`:
//! this gives `F₀`, the matrix `M = ∂F/∂u_t` and the curvatures `∂²F/∂u_t²`;
//! then `u_t = −M⁻¹F₀`. A singular `M` is [`MolError::SingularTimeCoefficient`];
//! a non-zero curvature, or a residual that does not vanish at the solved `u_t`
//! (catching higher-order dependence), is [`MolError::NonlinearInTimeDerivative`].
//!
//! **Dealiasing.** With a [`crate::mol::Dealias`] rule on the domain (the
//! spectral stencil only), `u_t` is filtered to the rule's modes after the
//! pointwise solve, and with it the Jacobian (`P J`, `P` the filter) and
//! its preconditioner; [`Discretisation::solve`] filters the initial field.

mod spectral_filter;
mod spectral_jacobian;
mod spectral_operator;
pub(crate) mod torus_fft;

use std::sync::Arc;

use num_dual::HyperDual64;
use tessera_meshes::{
    Compose, FdScheme, FiniteDifference, FourierMultiplier, Grid, LinearOperator, Shape,
};

use self::spectral_filter::SpectralFilter;
use self::spectral_jacobian::Circulants;
use self::spectral_operator::SpectralOperator;
use crate::mol::domain::AxisLayout;
use crate::mol::{
    Boundary, Derivative, JacobianOperator, MolDomain, MolError, MolPde, MolSystem, PointValues,
    Side, Stencil,
};
use crate::navier_stokes::pde::velocity;

/// The basic operators computed as whole fields; the Laplacian is a sum of
/// two of them.
const BASIC: [Derivative; 16] = [
    Derivative::Dx,
    Derivative::Dxx,
    Derivative::Dxxx,
    Derivative::Dxxxx,
    Derivative::Dy,
    Derivative::Dyy,
    Derivative::Dyyy,
    Derivative::Dyyyy,
    Derivative::Mixed(1, 1),
    Derivative::Mixed(2, 1),
    Derivative::Mixed(1, 2),
    Derivative::Mixed(3, 1),
    Derivative::Mixed(2, 2),
    Derivative::Mixed(1, 3),
    Derivative::VelocityX,
    Derivative::VelocityY,
];
/// Tolerance of the affinity checks (relative to the size of the terms).
const AFFINE_TOL: f64 = 1e-8;
/// A pivot of `M` below this fraction of its largest entry counts as zero.
const PIVOT_TOL: f64 = 1e-13;

/// A 1-D spectral line of this many unknowns or more is solved by GMRES on
/// the applied Jacobian, a shorter one by a dense LU: the crossover of the
/// LU's `n³` and GMRES's iterations of `n log n` (benches/README.md, "1-D
/// spectral lines by GMRES").
const KRYLOV_FROM_UNKNOWNS: usize = 128;

/// A Dirichlet node: the flat solver point, the component, and its side.
#[derive(Debug, Clone, Copy)]
struct DirichletNode {
    point: usize,
    component: usize,
    side: Side,
    alpha: f64,
}

/// Per-evaluation buffers of the pointwise `u_t` solve.
struct Scratch {
    active: Vec<usize>,
    z: Vec<HyperDual64>,
    u_t: Vec<HyperDual64>,
    out: Vec<HyperDual64>,
    f0: Vec<f64>,
    matrix: Vec<f64>,
    a: Vec<f64>,
    w: Vec<f64>,
    plain_u_t: Vec<f64>,
    check: Vec<f64>,
}

impl Scratch {
    fn new(components: usize, terms: usize) -> Self {
        let zero = HyperDual64::from(0.0);
        Self {
            active: Vec::with_capacity(components),
            z: vec![zero; terms],
            u_t: vec![zero; components],
            out: vec![zero; components],
            f0: vec![0.0; components],
            matrix: vec![0.0; components * components],
            a: Vec::with_capacity(components * components),
            w: Vec::with_capacity(components),
            plain_u_t: vec![0.0; components],
            check: vec![0.0; components],
        }
    }
}

/// A PDE discretised on the solver grid of a domain.
pub struct Discretisation<'a, P: MolPde> {
    pde: &'a P,
    components: usize,
    terms: Vec<crate::mol::MolTerm>,
    /// Per term, where its value is read.
    sources: Vec<Source>,
    layout: Vec<AxisLayout>,
    refinement: usize,
    /// The solver grid without ghosts.
    shape: Shape,
    /// The solver grid with ghost layers on bounded axes.
    padded: Shape,
    /// One operator per entry of [`BASIC`] the terms need.
    operators: Vec<Option<Arc<dyn LinearOperator>>>,
    /// With the spectral stencil, the operators as circulants: the
    /// Jacobian is assembled from them (`spectral_jacobian.rs`).
    circulants: Option<Circulants>,
    /// The dealiasing filter of a spectral discretisation with a rule.
    filter: Option<SpectralFilter>,
    /// Per side (x low, x high, y low, y high) and component.
    boundaries: Vec<Vec<Boundary>>,
    /// `[point · components + component]` → unknown index, `None` at Dirichlet nodes.
    index: Vec<Option<usize>>,
    /// Unknown → `(point, component)`.
    unknowns: Vec<(usize, usize)>,
    dirichlet: Vec<DirichletNode>,
    /// Ghost values to fill on every evaluation.
    ghosts: Vec<Ghost>,
    /// The diagonal ghosts beyond the corners of two bounded axes, where a
    /// mixed derivative reads them (filled after `ghosts`, whose values
    /// they extend).
    corners: Vec<Corner>,
    /// Solver point → its index in the padded grid.
    padded_of: Vec<usize>,
    /// Solver points' coordinates, `[points, dims]`.
    coords: Vec<f64>,
    /// Flat solver points of the output grid, row-major.
    output_points: Vec<usize>,
}

/// A ghost value: padded indices of the ghost, its boundary node and the node
/// inside, the boundary node as a solver point, the side (`2·axis + s`), and
/// where a component's condition is [`Boundary::Oblique`], the tangential
/// derivative at the node as padded indices and weights (along the side's
/// nodes: central, one-sided at its ends, so no other side's ghost is read).
#[derive(Debug, Clone)]
struct Ghost {
    ghost: usize,
    node: usize,
    inner: usize,
    point: usize,
    side: usize,
    tangent: Vec<(usize, f64)>,
}

/// A diagonal ghost beyond a corner: padded indices of the ghost and of the
/// two y ghosts it extends along x (at the x boundary and inside), the x
/// side (0 low, 1 high), the coordinates `(x boundary, y ghost)` where the
/// x side's data is taken, and the tangential derivative there (one-sided
/// from the y ghost into the side's nodes) for an oblique x side.
#[derive(Debug, Clone)]
struct Corner {
    ghost: usize,
    node: usize,
    inner: usize,
    side: usize,
    at: [f64; 2],
    tangent: Vec<(usize, f64)>,
}

impl<P: MolPde> std::fmt::Debug for Discretisation<'_, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discretisation")
            .field("components", &self.components)
            .field("terms", &self.terms)
            .field("solver grid", &self.shape.dims())
            .field("unknowns", &self.unknowns.len())
            .finish_non_exhaustive()
    }
}

impl<'a, P: MolPde> Discretisation<'a, P> {
    /// `pde` on the solver grid of `domain`.
    ///
    /// Errors: no components, a term of a component or axis that does not
    /// exist, inconsistent periodic sides, spectral stencils on a bounded axis,
    /// a Robin condition with `α = β = 0` or non-finite coefficients.
    pub fn new(pde: &'a P, domain: &MolDomain) -> Result<Self, MolError> {
        let components = pde.components();
        if components == 0 {
            return Err(MolError::InvalidValue {
                what: "number of components",
                value: 0.0,
                reason: "must be at least 1",
            });
        }
        let dims = domain.axes().len();
        let mut boundaries = Vec::with_capacity(2 * dims);
        let mut layout = Vec::with_capacity(dims);
        for (a, axis) in domain.axes().iter().enumerate() {
            let sides = Side::of_axis(a).map(|s| {
                (0..components)
                    .map(|c| pde.boundary(s, c))
                    .collect::<Vec<_>>()
            });
            let periodic = periodicity(a, &sides)?;
            layout.push(AxisLayout::new(axis, domain.refinement(), periodic));
            boundaries.extend(sides);
        }
        let terms = pde.terms();
        let stencil = pde.stencil();
        for (index, term) in terms.iter().enumerate() {
            if term.component >= components {
                return Err(MolError::Term {
                    index,
                    reason: "names a component the PDE does not have",
                });
            }
            if matches!(
                term.derivative,
                Derivative::VelocityX | Derivative::VelocityY
            ) && (dims != 2 || stencil != Stencil::Spectral)
            {
                return Err(MolError::Term {
                    index,
                    reason: "the velocity from the vorticity needs a 2-D domain and the spectral stencil",
                });
            }
            if matches!(term.derivative, Derivative::Mixed(..)) && !BASIC.contains(&term.derivative)
            {
                return Err(MolError::Term {
                    index,
                    reason: "a mixed derivative needs orders p, q ≥ 1 with p + q ≤ 4",
                });
            }
            let (axis, order) = axis_order(term.derivative);
            if dims == 1 && axis == 1 {
                return Err(MolError::Term {
                    index,
                    reason: "a y derivative on a 1-D domain",
                });
            }
            if order > 2 && stencil != Stencil::Spectral {
                return Err(MolError::Term {
                    index,
                    reason: "third and fourth derivatives need the spectral stencil",
                });
            }
        }
        if stencil == Stencil::Spectral && layout.iter().any(|l| !l.periodic) {
            return Err(MolError::Term {
                index: 0,
                reason: "spectral stencils need every axis periodic",
            });
        }
        let shape = Shape::new(&layout.iter().map(|l| l.n).collect::<Vec<_>>());
        let padded_axes = layout
            .iter()
            .zip(["x", "y"])
            .map(|(l, name)| l.stencil_axis(name))
            .collect::<Result<Vec<_>, _>>()?;
        let grid = Grid::new(padded_axes)?;
        let padded = grid.shape().clone();
        let needs = |d: Derivative| {
            terms.iter().any(|t| {
                t.derivative == d
                    || (t.derivative == Derivative::Laplacian && matches!(d, Derivative::Dxx)
                        || t.derivative == Derivative::Laplacian
                            && dims == 2
                            && matches!(d, Derivative::Dyy))
            })
        };
        let operators = BASIC
            .iter()
            .map(|&d| {
                if !needs(d) {
                    return Ok(None);
                }
                let (axis, order) = axis_order(d);
                let difference = |axis: usize, order: usize| {
                    let scheme = if layout[axis].periodic {
                        FdScheme::Periodic
                    } else {
                        FdScheme::SecondOrder
                    };
                    if order == 1 {
                        FiniteDifference::first(&grid, axis, scheme)
                    } else {
                        FiniteDifference::second(&grid, axis, scheme)
                    }
                };
                let op: Arc<dyn LinearOperator> = match (stencil, d) {
                    // v = (∂y ψ, −∂x ψ): v̂_x = i k_y û/|k|², v̂_y = −i k_x û/|k|².
                    (_, Derivative::VelocityX) => Arc::new(velocity(&grid, 1, 1.0)?),
                    (_, Derivative::VelocityY) => Arc::new(velocity(&grid, 0, -1.0)?),
                    (Stencil::Spectral, Derivative::Mixed(p, q)) => {
                        Arc::new(FourierMultiplier::partial(&grid, &[(0, p), (1, q)])?)
                    }
                    (Stencil::Spectral, _) => {
                        Arc::new(FourierMultiplier::derivative(&grid, axis, order as u32)?)
                    }
                    // `∂x∂y`: higher orders were refused above.
                    (Stencil::FiniteDifference, Derivative::Mixed(..)) => {
                        Arc::new(Compose::new(vec![
                            Arc::new(difference(0, 1)?),
                            Arc::new(difference(1, 1)?),
                        ])?)
                    }
                    (Stencil::FiniteDifference, _) => Arc::new(difference(axis, order)?),
                };
                Ok(Some(op))
            })
            .collect::<Result<Vec<_>, MolError>>()?;

        let circulants =
            (stencil == Stencil::Spectral).then(|| Circulants::new(&operators, &padded));
        let rule = domain.dealias();
        if !rule.is_none() && stencil != Stencil::Spectral {
            return Err(MolError::DealiasingNeedsSpectral { rule: rule.name() });
        }
        let filter = SpectralFilter::new(rule, shape.dims());

        // Dirichlet nodes: the x sides first, so that they win at corners.
        let mut dirichlet = Vec::new();
        let mut is_dirichlet = vec![false; shape.len() * components];
        for (a, l) in layout.iter().enumerate() {
            if l.periodic {
                continue;
            }
            for (s, side) in Side::of_axis(a).into_iter().enumerate() {
                let coordinate = if s == 0 { 0 } else { l.n - 1 };
                for (c, boundary) in boundaries[2 * a + s].iter().enumerate() {
                    let (alpha, beta) = match *boundary {
                        Boundary::Robin { alpha, beta } => (alpha, beta),
                        Boundary::Oblique { alpha, beta, gamma } => {
                            let finite = [alpha, beta, gamma].iter().all(|v| v.is_finite());
                            if !finite || beta == 0.0 || dims != 2 {
                                return Err(MolError::Boundary {
                                    axis: a,
                                    reason: "an oblique condition needs a 2-D domain, finite coefficients and β ≠ 0",
                                });
                            }
                            continue;
                        }
                        Boundary::Periodic => continue,
                    };
                    if !(alpha.is_finite() && beta.is_finite()) || (alpha == 0.0 && beta == 0.0) {
                        return Err(MolError::Boundary {
                            axis: a,
                            reason: "Robin coefficients must be finite and not both zero",
                        });
                    }
                    if beta != 0.0 {
                        continue;
                    }
                    for point in (0..shape.len()).filter(|&p| shape.unflat(p)[a] == coordinate) {
                        if !is_dirichlet[point * components + c] {
                            is_dirichlet[point * components + c] = true;
                            dirichlet.push(DirichletNode {
                                point,
                                component: c,
                                side,
                                alpha,
                            });
                        }
                    }
                }
            }
        }
        let mut unknowns = Vec::new();
        let index = is_dirichlet
            .iter()
            .enumerate()
            .map(|(k, &fixed)| {
                (!fixed).then(|| {
                    unknowns.push((k / components, k % components));
                    unknowns.len() - 1
                })
            })
            .collect();
        let r = domain.refinement();
        let out_shape = Shape::new(&layout.iter().map(|l| l.n_out).collect::<Vec<_>>());
        let output_points = (0..out_shape.len())
            .map(|q| {
                let fine: Vec<usize> = out_shape.unflat(q).iter().map(|i| i * r).collect();
                shape.flat(&fine)
            })
            .collect();
        let padded_of: Vec<usize> = (0..shape.len())
            .map(|p| {
                let index: Vec<usize> = shape
                    .unflat(p)
                    .iter()
                    .zip(&layout)
                    .map(|(&i, l)| i + l.pad())
                    .collect();
                padded.flat(&index)
            })
            .collect();
        let coords = (0..shape.len())
            .flat_map(|p| {
                let index = shape.unflat(p);
                index
                    .into_iter()
                    .zip(&layout)
                    .map(|(i, l)| l.coord(i))
                    .collect::<Vec<_>>()
            })
            .collect();
        let strides = padded.strides();
        let mut ghosts = Vec::new();
        for (a, l) in layout.iter().enumerate() {
            if l.periodic {
                continue;
            }
            let step = strides[a];
            for s in 0..2 {
                let coordinate = if s == 0 { 0 } else { l.n - 1 };
                for point in (0..shape.len()).filter(|&p| shape.unflat(p)[a] == coordinate) {
                    let node = padded_of[point];
                    let (ghost, inner) = if s == 0 {
                        (node - step, node + step)
                    } else {
                        (node + step, node - step)
                    };
                    let oblique = boundaries[2 * a + s]
                        .iter()
                        .any(|b| matches!(b, Boundary::Oblique { .. }));
                    let tangent = if oblique {
                        // The other axis (2-D, checked above), along the
                        // side's nodes.
                        let b = 1 - a;
                        let along = &layout[b];
                        let mut index = padded.unflat(node);
                        derivative_weights(shape.unflat(point)[b], along.n, along)
                            .into_iter()
                            .map(|(j, w)| {
                                index[b] = j + along.pad();
                                (padded.flat(&index), w)
                            })
                            .collect()
                    } else {
                        Vec::new()
                    };
                    ghosts.push(Ghost {
                        ghost,
                        node,
                        inner,
                        point,
                        side: 2 * a + s,
                        tangent,
                    });
                }
            }
        }
        let mixed = terms
            .iter()
            .any(|t| matches!(t.derivative, Derivative::Mixed(..)));
        let corners = if mixed && layout.iter().all(|l| !l.periodic) {
            corners(&layout, &padded, &boundaries)
        } else {
            Vec::new()
        };
        let sources = terms
            .iter()
            .map(|t| Source::of(t.derivative, dims))
            .collect();
        Ok(Self {
            pde,
            components,
            terms,
            sources,
            layout,
            refinement: r,
            shape,
            padded,
            operators,
            circulants,
            filter,
            boundaries,
            index,
            unknowns,
            dirichlet,
            ghosts,
            corners,
            padded_of,
            coords,
            output_points,
        })
    }

    /// Number of solution components.
    pub fn components(&self) -> usize {
        self.components
    }

    /// The solver grid's point counts per axis.
    pub fn solver_dims(&self) -> &[usize] {
        self.shape.dims()
    }

    /// The output grid's coordinates per axis.
    pub fn output_axes(&self) -> Vec<Vec<f64>> {
        self.layout
            .iter()
            .map(|l| l.output_coords(self.refinement))
            .collect()
    }

    /// Coordinates of solver point `p` (flat, row-major).
    ///
    /// # Panics
    /// If `p` is not a solver point.
    #[track_caller]
    pub fn coordinates(&self, p: usize) -> &[f64] {
        let dims = self.layout.len();
        &self.coords[p * dims..(p + 1) * dims]
    }

    /// All solver points' coordinates, `[points, dims]` row-major.
    pub fn solver_coordinates(&self) -> &[f64] {
        &self.coords
    }

    /// `f(x)` (one value per component) at every solver point: an initial
    /// condition on the solver grid, `[points, components]`.
    pub fn sample(&self, f: impl Fn(&[f64]) -> Vec<f64>) -> Result<Vec<f64>, MolError> {
        let mut out = Vec::with_capacity(self.shape.len() * self.components);
        for p in 0..self.shape.len() {
            let values = f(self.coordinates(p));
            if values.len() != self.components {
                return Err(MolError::ShapeMismatch {
                    what: "initial-condition values per point",
                    expected: vec![self.components],
                    got: vec![values.len()],
                });
            }
            out.extend(values);
        }
        Ok(out)
    }

    /// The unknowns of a full solver field `[points, components]` (the
    /// Dirichlet nodes dropped).
    pub fn unknowns_of(&self, field: &[f64]) -> Result<Vec<f64>, MolError> {
        self.check_field(field)?;
        Ok(self
            .unknowns
            .iter()
            .map(|&(p, c)| field[p * self.components + c])
            .collect())
    }

    /// The output-grid field `[output points, components]` of the unknowns `u`
    /// at time `t` (Dirichlet nodes from their data), by injection.
    pub fn restrict(&self, t: f64, u: &[f64]) -> Vec<f64> {
        let mut padded = vec![0.0; self.padded.len() * self.components];
        self.fill_nodes(t, u, &mut padded);
        self.output_points
            .iter()
            .flat_map(|&p| {
                let q = self.padded_of[p] * self.components;
                padded[q..q + self.components].to_vec()
            })
            .collect()
    }

    /// A full solver field `[points, components]` restricted to the output grid.
    pub fn restrict_field(&self, field: &[f64]) -> Vec<f64> {
        self.output_points
            .iter()
            .flat_map(|&p| field[p * self.components..][..self.components].to_vec())
            .collect()
    }

    /// A full solver field `[points, components]` with the Fourier modes the
    /// domain's dealiasing rule drops removed (unchanged without a rule): the
    /// field a dealiased trajectory starts from, as those modes never get a
    /// `u_t` and would otherwise stay frozen at their initial values.
    ///
    /// Errors: a field of the wrong size.
    pub fn dealias_field(&self, field: &mut [f64]) -> Result<(), MolError> {
        self.check_field(field)?;
        if let Some(filter) = &self.filter {
            filter.apply(field, self.components);
        }
        Ok(())
    }

    /// Errors unless `field` holds one value per solver point and component.
    fn check_field(&self, field: &[f64]) -> Result<(), MolError> {
        let expected = self.shape.len() * self.components;
        if field.len() != expected {
            return Err(MolError::ShapeMismatch {
                what: "solver field",
                expected: vec![expected],
                got: vec![field.len()],
            });
        }
        Ok(())
    }

    /// Writes the unknowns and the Dirichlet values into the padded field.
    fn fill_nodes(&self, t: f64, u: &[f64], padded: &mut [f64]) {
        let m = self.components;
        for (&(p, c), &v) in self.unknowns.iter().zip(u) {
            padded[self.padded_of[p] * m + c] = v;
        }
        for node in &self.dirichlet {
            let g =
                self.pde
                    .boundary_value(node.side, node.component, t, self.coordinates(node.point));
            padded[self.padded_of[node.point] * m + node.component] = g / node.alpha;
        }
    }

    /// Writes the ghost values of every bounded axis (nodes already filled),
    /// then the diagonal ghosts beyond the corners from them.
    fn fill_ghosts(&self, t: f64, padded: &mut [f64]) {
        let m = self.components;
        for g in &self.ghosts {
            let at = self.coordinates(g.point);
            for c in 0..m {
                let near = (g.node, g.inner, &g.tangent[..]);
                padded[g.ghost * m + c] = self.ghost_value(g.side, c, t, at, near, padded);
            }
        }
        for k in &self.corners {
            for c in 0..m {
                let near = (k.node, k.inner, &k.tangent[..]);
                padded[k.ghost * m + c] = self.ghost_value(k.side, c, t, &k.at, near, padded);
            }
        }
    }

    /// The ghost of component `c` beyond side `side` (`2·axis + s`), from
    /// `padded`'s values at `near`: the boundary node, the node inside and
    /// the tangential derivative's stencil; the side's data taken at `at`.
    /// The central difference then meets a Robin or oblique condition; a
    /// Dirichlet side's ghost, which no unknown's stencil reads, extends the
    /// line through the two nodes.
    fn ghost_value(
        &self,
        side: usize,
        c: usize,
        t: f64,
        at: &[f64],
        near: (usize, usize, &[(usize, f64)]),
        padded: &[f64],
    ) -> f64 {
        let m = self.components;
        let (node, inner, tangent) = near;
        let (ub, uq) = (padded[node * m + c], padded[inner * m + c]);
        let axis = side / 2;
        let data = || {
            self.pde
                .boundary_value(Side::of_axis(axis)[side % 2], c, t, at)
        };
        let h = self.layout[axis].spacing;
        match self.boundaries[side][c] {
            Boundary::Robin { alpha, beta } if beta != 0.0 => {
                uq + 2.0 * h * (data() - alpha * ub) / beta
            }
            Boundary::Oblique { alpha, beta, gamma } => {
                let slope: f64 = tangent.iter().map(|&(q, w)| w * padded[q * m + c]).sum();
                uq + 2.0 * h * (data() - alpha * ub - gamma * slope) / beta
            }
            _ => 2.0 * ub - uq,
        }
    }

    /// `u_t` at one point from its term values `z`: writes the unknown
    /// components' `u_t` into `u_t[c]` (`[components]`; Dirichlet components
    /// are left alone).
    fn time_derivative(
        &self,
        t: f64,
        p: usize,
        z: &[f64],
        u_t: &mut [f64],
        s: &mut Scratch,
    ) -> Result<(), MolError> {
        let m = self.components;
        s.active.clear();
        s.active
            .extend((0..m).filter(|&c| self.index[p * m + c].is_some()));
        let n = s.active.len();
        let point = self.coordinates(p);
        for (zd, &v) in s.z.iter_mut().zip(z) {
            *zd = HyperDual64::from(v);
        }
        let mut finite = true;
        for i in 0..n {
            for j in i..n {
                let (k, l) = (s.active[i], s.active[j]);
                self.hyper_residual(t, point, s, false, (k, l));
                for (r, f) in s.out.iter().enumerate() {
                    finite &= f.re.is_finite() && f.eps1.is_finite() && f.eps1eps2.is_finite();
                    s.f0[r] = f.re;
                    if j == i {
                        s.matrix[r * n + i] = f.eps1;
                    }
                    let scale = 1.0 + f.eps1.abs() * f.eps2.abs();
                    if f.eps1eps2.abs() > AFFINE_TOL * scale {
                        return Err(MolError::NonlinearInTimeDerivative {
                            t,
                            point: point.to_vec(),
                            equation: r,
                        });
                    }
                }
            }
        }
        if !finite {
            for &c in &s.active {
                u_t[c] = f64::NAN;
            }
            return Ok(());
        }
        // The active rows and columns: M_aa u_t,a = −F₀,a.
        s.a.clear();
        s.w.clear();
        for &r in &s.active {
            s.a.extend_from_slice(&s.matrix[r * n..(r + 1) * n]);
            s.w.push(-s.f0[r]);
        }
        if let Err(equation) = solve_small(n, &mut s.a, &mut s.w, f64::abs) {
            return Err(MolError::SingularTimeCoefficient {
                t,
                point: point.to_vec(),
                equation: s.active[equation],
            });
        }
        // F(u_t*) must vanish if F is affine in u_t.
        s.plain_u_t.fill(0.0);
        for (&c, &v) in s.active.iter().zip(&s.w) {
            s.plain_u_t[c] = v;
        }
        let at = PointValues {
            t,
            x: point,
            u_t: &s.plain_u_t,
            z,
        };
        self.pde.residual(&at, &mut s.check);
        let off = s.active.iter().copied().find(|&r| {
            let size: f64 = (0..n).map(|j| (s.matrix[r * n + j] * s.w[j]).abs()).sum();
            s.check[r].abs() > AFFINE_TOL * (s.f0[r].abs() + size)
        });
        if let Some(equation) = off
            && !self.affine_at_solution(t, point, s)
        {
            return Err(MolError::NonlinearInTimeDerivative {
                t,
                point: point.to_vec(),
                equation,
            });
        }
        for (&r, &v) in s.active.iter().zip(&s.w) {
            u_t[r] = v;
        }
        Ok(())
    }

    /// Whether `F` has, at the solved `u_t` (`s.plain_u_t`), the slope `M`
    /// found at `u_t = 0` and no curvature there: an affine `F` whose value
    /// at the solution is not zero only by round-off. Terms far larger than
    /// `F` that cancel leave that round-off: near an equilibrium of a stiff
    /// PDE (Cahn–Hilliard's fourth derivatives against its nonlinear
    /// diffusion, hundreds each, cancelling to `F ≈ 3e-7`), so that the value
    /// alone is no test there. The derivatives' dual parts carry no such
    /// terms.
    fn affine_at_solution(&self, t: f64, point: &[f64], s: &mut Scratch) -> bool {
        let n = s.active.len();
        for i in 0..n {
            let c = s.active[i];
            self.hyper_residual(t, point, s, true, (c, c));
            for &r in &s.active {
                let (f, slope) = (s.out[r], s.matrix[r * n + i]);
                if (f.eps1 - slope).abs() > AFFINE_TOL * (1.0 + slope.abs())
                    || f.eps1eps2.abs() > AFFINE_TOL * (1.0 + slope * slope)
                {
                    return false;
                }
            }
        }
        true
    }

    /// `F` in hyper-dual numbers into `s.out`, at `u_t = u₀ + ε₁ e_k + ε₂ e_l`
    /// for `(k, l)`, `u₀` the solved `u_t` (`s.plain_u_t`) where
    /// `at_solution`, else zero; the terms are `s.z`.
    fn hyper_residual(
        &self,
        t: f64,
        point: &[f64],
        s: &mut Scratch,
        at_solution: bool,
        (k, l): (usize, usize),
    ) {
        for (slot, &v) in s.u_t.iter_mut().zip(&s.plain_u_t) {
            *slot = HyperDual64::from(if at_solution { v } else { 0.0 });
        }
        s.u_t[k].eps1 = 1.0;
        s.u_t[l].eps2 = 1.0;
        let at = PointValues {
            t,
            x: point,
            u_t: &s.u_t,
            z: &s.z,
        };
        self.pde.residual(&at, &mut s.out);
    }

    /// The padded field of the unknowns `u` at `t` (nodes and ghosts) and the
    /// derived fields of the operators in [`BASIC`] the terms need.
    fn fields(&self, t: f64, u: &[f64]) -> Fields {
        let m = self.components;
        let mut padded = vec![0.0; self.padded.len() * m];
        self.fill_nodes(t, u, &mut padded);
        self.fill_ghosts(t, &mut padded);
        let derived = self
            .operators
            .iter()
            .map(|op| op.as_ref().map(|op| op.apply_to_vec(&padded, m)))
            .collect();
        Fields { padded, derived }
    }

    /// The term values `z` at solver point `p`.
    fn term_values(&self, fields: &Fields, p: usize, z: &mut [f64]) {
        let field = |slot: usize| fields.derived[slot].as_deref().unwrap_or(&[]);
        let q = self.padded_of[p] * self.components;
        for ((zj, term), source) in z.iter_mut().zip(&self.terms).zip(&self.sources) {
            let at = q + term.component;
            *zj = match *source {
                Source::Value => fields.padded[at],
                Source::Field(slot) => field(slot)[at],
                Source::Sum(a, b) => field(a)[at] + field(b)[at],
            };
        }
    }

    /// Whether solver point `p` has an unknown (a point whose every
    /// component is Dirichlet has none).
    fn has_unknowns(&self, p: usize) -> bool {
        let m = self.components;
        (0..m).any(|c| self.index[p * m + c].is_some())
    }
}

/// Where a term's value is read, worked out once: `u` itself, one of the
/// [`BASIC`] fields, or the sum of two (the 2-D Laplacian).
#[derive(Debug, Clone, Copy)]
enum Source {
    Value,
    Field(usize),
    Sum(usize, usize),
}

impl Source {
    fn of(derivative: Derivative, dims: usize) -> Self {
        let slot = |d: Derivative| BASIC.iter().position(|&b| b == d).unwrap_or_default();
        match derivative {
            Derivative::Value => Self::Value,
            Derivative::Laplacian if dims == 2 => {
                Self::Sum(slot(Derivative::Dxx), slot(Derivative::Dyy))
            }
            Derivative::Laplacian => Self::Field(slot(Derivative::Dxx)),
            d => Self::Field(slot(d)),
        }
    }
}

/// A field and its derivatives at one evaluation.
struct Fields {
    /// `[padded points, components]`.
    padded: Vec<f64>,
    /// One field per entry of [`BASIC`], where the terms need it.
    derived: Vec<Option<Vec<f64>>>,
}

/// The four diagonal ghosts of a grid of two bounded axes (see [`Corner`]).
fn corners(layout: &[AxisLayout], padded: &Shape, boundaries: &[Vec<Boundary>]) -> Vec<Corner> {
    let (x, y) = (&layout[0], &layout[1]);
    let mut corners = Vec::with_capacity(4);
    // The x sides' conditions come first in `boundaries`.
    for (side, conditions) in boundaries[..2].iter().enumerate() {
        // Padded x indices of the ghost, the boundary node and the node inside.
        let (ghost, node, inner) = if side == 0 {
            (0, 1, 2)
        } else {
            (x.n + 1, x.n, x.n - 1)
        };
        let oblique = conditions
            .iter()
            .any(|b| matches!(b, Boundary::Oblique { .. }));
        for (row, y_ghost) in [(0, y.lo - y.spacing), (y.n + 1, y.coord(y.n))] {
            // Along the x side's padded column: its ghost row and its nodes.
            let tangent = if oblique {
                derivative_weights(row, y.n + 2, y)
                    .into_iter()
                    .map(|(j, w)| (padded.flat(&[node, j]), w))
                    .collect()
            } else {
                Vec::new()
            };
            corners.push(Corner {
                ghost: padded.flat(&[ghost, row]),
                node: padded.flat(&[node, row]),
                inner: padded.flat(&[inner, row]),
                side,
                at: [x.coord(node - 1), y_ghost],
                tangent,
            });
        }
    }
    corners
}

/// `∂/∂(axis)` at index `i` of a line of `len` points spaced as `axis`, as
/// `(index, weight)` pairs: the central difference, wrapping on a periodic
/// axis; on a bounded one, the one-sided second-order difference at the
/// line's ends, so that it reads only the line.
fn derivative_weights(i: usize, len: usize, axis: &AxisLayout) -> Vec<(usize, f64)> {
    let w = 0.5 / axis.spacing;
    if axis.periodic {
        vec![((i + len - 1) % len, -w), ((i + 1) % len, w)]
    } else if i == 0 {
        vec![(0, -3.0 * w), (1, 4.0 * w), (2, -w)]
    } else if i + 1 == len {
        vec![(i, 3.0 * w), (i - 1, -4.0 * w), (i - 2, w)]
    } else {
        vec![(i - 1, -w), (i + 1, w)]
    }
}

/// The solver axis (0 = x, 1 = y) a derivative is taken along and its
/// order (`u` and the Laplacian: axis 0, order 0 and 2; the velocity, which
/// spans both axes and is checked on its own: axis 0, order 0; a mixed
/// derivative: axis 1 and its total order, so that a 1-D domain refuses it
/// as a y derivative and differences refuse it beyond `∂x∂y`).
fn axis_order(derivative: Derivative) -> (usize, usize) {
    match derivative {
        Derivative::Value | Derivative::VelocityX | Derivative::VelocityY => (0, 0),
        Derivative::Dx => (0, 1),
        Derivative::Dxx | Derivative::Laplacian => (0, 2),
        Derivative::Dxxx => (0, 3),
        Derivative::Dxxxx => (0, 4),
        Derivative::Dy => (1, 1),
        Derivative::Mixed(p, q) => (1, (p + q) as usize),
        Derivative::Dyy => (1, 2),
        Derivative::Dyyy => (1, 3),
        Derivative::Dyyyy => (1, 4),
    }
}

/// Whether an axis is periodic: all or none of its sides' conditions say so.
fn periodicity(axis: usize, sides: &[Vec<Boundary>; 2]) -> Result<bool, MolError> {
    let periodic = sides
        .iter()
        .flatten()
        .filter(|b| **b == Boundary::Periodic)
        .count();
    match periodic {
        0 => Ok(false),
        n if n == 2 * sides[0].len() => Ok(true),
        _ => Err(MolError::Boundary {
            axis,
            reason: "periodic must hold on both sides for every component, or nowhere",
        }),
    }
}

/// Solves the dense `n × n` system `a x = b` in place (`b` becomes `x`) by
/// Gaussian elimination with partial pivoting, over the reals or the
/// complex numbers (`size` is a magnitude: `|·|`, or a complex number's
/// `|re| + |im|`, cheaper than its modulus); `Err(row)` names the row whose
/// pivot vanished (`b` is then left part-eliminated).
fn solve_small<T>(n: usize, a: &mut [T], b: &mut [T], size: impl Fn(T) -> f64) -> Result<(), usize>
where
    T: Copy + std::ops::Sub<Output = T> + std::ops::Mul<Output = T> + std::ops::Div<Output = T>,
    T: std::iter::Sum,
{
    if n == 1 {
        // Every point of a scalar PDE, every wavenumber of its
        // preconditioner: skip the pivot search.
        let pivot = size(a[0]);
        if !(pivot > 0.0 && pivot.is_finite()) {
            return Err(0);
        }
        b[0] = b[0] / a[0];
        return Ok(());
    }
    let scale = a.iter().fold(0.0_f64, |s, &v| s.max(size(v)));
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&i, &j| size(a[i * n + col]).total_cmp(&size(a[j * n + col])))
            .unwrap_or(col);
        if size(a[pivot * n + col]) <= PIVOT_TOL * scale || scale == 0.0 {
            return Err(col);
        }
        for k in 0..n {
            a.swap(col * n + k, pivot * n + k);
        }
        b.swap(col, pivot);
        for row in col + 1..n {
            let factor = a[row * n + col] / a[col * n + col];
            for k in col..n {
                a[row * n + k] = a[row * n + k] - factor * a[col * n + k];
            }
            b[row] = b[row] - factor * b[col];
        }
    }
    for col in (0..n).rev() {
        let sum: T = (col + 1..n).map(|k| a[col * n + k] * b[k]).sum();
        b[col] = (b[col] - sum) / a[col * n + col];
    }
    Ok(())
}

impl<P: MolPde> MolSystem for Discretisation<'_, P> {
    fn len(&self) -> usize {
        self.unknowns.len()
    }

    fn rhs(&self, t: f64, u: &[f64], du_dt: &mut [f64]) -> Result<(), MolError> {
        let m = self.components;
        let fields = self.fields(t, u);
        let mut z = vec![0.0; self.terms.len()];
        let mut u_t = vec![0.0; m];
        let mut scratch = Scratch::new(m, self.terms.len());
        for p in (0..self.shape.len()).filter(|&p| self.has_unknowns(p)) {
            self.term_values(&fields, p, &mut z);
            self.time_derivative(t, p, &z, &mut u_t, &mut scratch)?;
            for (c, &v) in u_t.iter().enumerate() {
                if let Some(k) = self.index[p * m + c] {
                    du_dt[k] = v;
                }
            }
        }
        // Every axis is periodic (the filter needs the spectral stencil), so
        // the unknowns are the whole field, `[points, components]`.
        if let Some(filter) = &self.filter {
            filter.apply(du_dt, m);
        }
        Ok(())
    }

    fn jacobian(
        &self,
        t: f64,
        u: &[f64],
        rows: &[Vec<usize>],
    ) -> Option<Result<Vec<Vec<f64>>, MolError>> {
        self.circulants
            .as_ref()
            .map(|circulants| self.spectral_jacobian(circulants, t, u, rows))
    }

    /// A spectral discretisation's Jacobian, applied (`spectral_operator.rs`)
    /// and solved by GMRES: on a 2-D grid its pattern fills in under an LU,
    /// and on a 1-D line of 128 unknowns or more the dense LU's
    /// `n³` outgrows GMRES's `n log n` per iteration. A shorter line keeps
    /// its dense LU ([`MolSystem::jacobian`]), exact and faster there.
    fn jacobian_operator(
        &self,
        t: f64,
        u: &[f64],
    ) -> Option<Result<Arc<dyn JacobianOperator + '_>, MolError>> {
        let long = self.layout.len() > 1 || self.unknowns.len() >= KRYLOV_FROM_UNKNOWNS;
        let circulants = self.circulants.as_ref().filter(|_| long)?;
        Some(
            SpectralOperator::new(self, circulants, t, u)
                .map(|op| Arc::new(op) as Arc<dyn JacobianOperator + '_>),
        )
    }

    fn sparsity(&self) -> Vec<Vec<usize>> {
        let m = self.components;
        let reach = if self.pde.stencil() == Stencil::Spectral {
            self.spectral_reach()
        } else {
            self.difference_reach()
        };
        self.unknowns
            .iter()
            .map(|&(p, _)| {
                let mut columns: Vec<usize> = reach[p]
                    .iter()
                    .flat_map(|&q| (0..m).filter_map(move |c| self.index[q * m + c]))
                    .collect();
                columns.sort_unstable();
                columns.dedup();
                columns
            })
            .collect()
    }
}

impl<P: MolPde> Discretisation<'_, P> {
    /// Per solver point, the points whose values a spectral `f` there reads:
    /// its row and column, or every point (the velocity from the vorticity,
    /// a mixed derivative, a dealiasing filter).
    fn spectral_reach(&self) -> Vec<Vec<usize>> {
        let global = self.filter.is_some()
            || self.terms.iter().any(|t| {
                matches!(
                    t.derivative,
                    Derivative::VelocityX | Derivative::VelocityY | Derivative::Mixed(..)
                )
            });
        let dims = self.shape.dims();
        (0..self.shape.len())
            .map(|p| {
                if global {
                    return (0..self.shape.len()).collect();
                }
                let centre = self.shape.unflat(p);
                let mut points = vec![p];
                for (a, &n) in dims.iter().enumerate() {
                    let mut index = centre.clone();
                    points.extend((0..n).map(|i| {
                        index[a] = i;
                        self.shape.flat(&index)
                    }));
                }
                points
            })
            .collect()
    }

    /// Per solver point, the points whose values a difference `f` there
    /// depends on: those its stencils read on the padded grid (the neighbours
    /// along each axis, and the diagonal ones for a mixed derivative), each
    /// ghost replaced by the points it is filled from.
    fn difference_reach(&self) -> Vec<Vec<usize>> {
        let depends = self.padded_dependencies();
        let mixed = self
            .terms
            .iter()
            .any(|t| matches!(t.derivative, Derivative::Mixed(..)));
        let dims = self.padded.dims();
        // Padded index `i` moved by `d` along axis `a` (wrapping where periodic;
        // a bounded axis has a ghost beyond each of its nodes).
        let shift = |i: usize, d: isize, a: usize| {
            let n = dims[a] as isize;
            if self.layout[a].periodic {
                (i as isize + d).rem_euclid(n) as usize
            } else {
                (i as isize + d) as usize
            }
        };
        let mut offsets: Vec<Vec<isize>> = vec![vec![0; dims.len()]];
        for a in 0..dims.len() {
            for d in [-1, 1] {
                let mut o = vec![0; dims.len()];
                o[a] = d;
                offsets.push(o);
            }
        }
        if mixed {
            offsets.extend([[-1, -1], [-1, 1], [1, -1], [1, 1]].map(|o| o.to_vec()));
        }
        (0..self.shape.len())
            .map(|p| {
                let centre = self.padded.unflat(self.padded_of[p]);
                let mut points: Vec<usize> = offsets
                    .iter()
                    .flat_map(|o| {
                        let index: Vec<usize> =
                            (0..dims.len()).map(|a| shift(centre[a], o[a], a)).collect();
                        depends[self.padded.flat(&index)].iter().copied()
                    })
                    .collect();
                points.sort_unstable();
                points.dedup();
                points
            })
            .collect()
    }

    /// Per padded point, the solver points its value depends on: a node
    /// itself, a ghost the points it is filled from (its node, the node
    /// inside and an oblique condition's tangential stencil), in the order
    /// [`Self::fill_ghosts`] fills them.
    fn padded_dependencies(&self) -> Vec<Vec<usize>> {
        let mut depends = vec![Vec::new(); self.padded.len()];
        for (p, &q) in self.padded_of.iter().enumerate() {
            depends[q].push(p);
        }
        let sources = self
            .ghosts
            .iter()
            .map(|g| (g.ghost, g.node, g.inner, &g.tangent))
            .chain(
                self.corners
                    .iter()
                    .map(|k| (k.ghost, k.node, k.inner, &k.tangent)),
            );
        for (ghost, node, inner, tangent) in sources {
            let mut points: Vec<usize> = [node, inner]
                .into_iter()
                .chain(tangent.iter().map(|&(q, _)| q))
                .flat_map(|q| depends[q].clone())
                .collect();
            points.sort_unstable();
            points.dedup();
            depends[ghost] = points;
        }
        depends
    }
}
