//! What a PDE provides to the method-of-lines solver: its spatial terms, its
//! pointwise residual `F(u_t, z; t, x) = 0` (affine in `u_t`), and its boundary
//! conditions.
//!
//! This is the seam between a PDE definition (hand-written, or compiled from a
//! scenario file) and the reference solver: implement [`MolPde`] and
//! [`crate::mol::solve`] and [`crate::mol::generate`] give ground truth for it.

use num_dual::DualNum;

/// A spatial derivative of one solution component. The time derivative is not a
/// term: the residual receives `u_t` separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Derivative {
    /// `u` itself.
    Value,
    /// `∂u/∂x`.
    Dx,
    /// `∂²u/∂x²`.
    Dxx,
    /// `∂u/∂y` (2-D domains).
    Dy,
    /// `∂²u/∂y²` (2-D domains).
    Dyy,
    /// `∂³u/∂x³` and `∂⁴u/∂x⁴` (spectral stencil only).
    Dxxx,
    Dxxxx,
    /// `∂³u/∂y³` and `∂⁴u/∂y⁴` (2-D domains, spectral stencil only).
    Dyyy,
    Dyyyy,
    /// `Δu`: `u_xx` in 1-D, `u_xx + u_yy` in 2-D.
    Laplacian,
    /// The mixed derivative `∂x^p ∂y^q u` as `(p, q)`, `p, q ≥ 1` (2-D
    /// domains): `∂x∂y` as the product of the central first differences or
    /// of the Fourier derivatives; higher orders (`p + q ≤ 4`, spectral
    /// stencil only) as the multiplier `(i k_x)^p (i k_y)^q`.
    Mixed(u32, u32),
    /// The Navier–Stokes velocity from the vorticity `u`, `v = (∂y ψ, −∂x ψ)`
    /// with `−Δψ = u` (ψ of zero mean): its x and y components (2-D, spectral
    /// stencil only). Not a derivative, but a linear operator of `u` that is
    /// circulant on the periodic grid, as the spectral derivatives are.
    VelocityX,
    VelocityY,
}

/// One term `z_j` of the residual: a derivative of one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MolTerm {
    /// Which solution component (0 for a scalar PDE).
    pub component: usize,
    /// Which derivative.
    pub derivative: Derivative,
}

impl MolTerm {
    /// The term `derivative` of component `component`.
    pub fn new(component: usize, derivative: Derivative) -> Self {
        Self {
            component,
            derivative,
        }
    }
}

/// How derivatives are discretised on the solver grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stencil {
    /// Second-order central differences ([`tessera_meshes::FdScheme::SecondOrder`]
    /// inside and at ghost-extended ends, [`tessera_meshes::FdScheme::Periodic`]
    /// on periodic axes).
    #[default]
    FiniteDifference,
    /// Fourier multipliers ([`tessera_meshes::FourierMultiplier`]); every axis
    /// must be periodic.
    Spectral,
}

/// A side of the rectangular domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// `x = x_min`.
    XLow,
    /// `x = x_max`.
    XHigh,
    /// `y = y_min`.
    YLow,
    /// `y = y_max`.
    YHigh,
}

impl Side {
    /// The sides of spatial axis `axis` (0 = x, 1 = y), low first.
    pub fn of_axis(axis: usize) -> [Side; 2] {
        if axis == 0 {
            [Side::XLow, Side::XHigh]
        } else {
            [Side::YLow, Side::YHigh]
        }
    }
}

/// A boundary condition of one component on one side.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Boundary {
    /// The axis wraps around (both of its sides, every component).
    Periodic,
    /// `α u + β ∂u/∂n = g(t, x)` with `∂/∂n` the outward normal derivative and
    /// `g` from [`MolPde::boundary_value`]: Dirichlet is `β = 0`, Neumann `α = 0`.
    Robin {
        /// Coefficient of `u`.
        alpha: f64,
        /// Coefficient of the outward normal derivative.
        beta: f64,
    },
    /// `α u + β ∂u/∂n + γ ∂u/∂τ = g(t, x)` on a 2-D domain, `∂/∂τ` along the
    /// other axis (towards its larger coordinate), `β ≠ 0`: an oblique
    /// derivative, such as anisotropic diffusion's no-flux condition
    /// `n·K∇u = 0` (`K₁₁ u_x + K₁₂ u_y = 0` on an x side).
    Oblique {
        /// Coefficient of `u`.
        alpha: f64,
        /// Coefficient of the outward normal derivative.
        beta: f64,
        /// Coefficient of the tangential derivative.
        gamma: f64,
    },
}

impl Boundary {
    /// `u = g`.
    pub fn dirichlet() -> Self {
        Self::Robin {
            alpha: 1.0,
            beta: 0.0,
        }
    }

    /// `∂u/∂n = g`.
    pub fn neumann() -> Self {
        Self::Robin {
            alpha: 0.0,
            beta: 1.0,
        }
    }
}

/// What the residual sees at one point.
#[derive(Debug, Clone, Copy)]
pub struct PointValues<'a, D> {
    /// Time.
    pub t: f64,
    /// Spatial coordinates `[x, (y)]`.
    pub x: &'a [f64],
    /// `∂u/∂t`, one value per component.
    pub u_t: &'a [D],
    /// The terms, in [`MolPde::terms`] order.
    pub z: &'a [D],
}

/// A PDE `F(u_t, z; t, x) = 0`, one row per component, as the method of lines
/// needs it.
///
/// The residual must be affine in `u_t` with an invertible `∂F/∂u_t` (it may
/// depend on `u` and the terms, e.g. a retardation factor `R(u)·u_t`); the
/// solver computes `u_t = −(∂F/∂u_t)⁻¹ F(0, z)` from dual numbers and returns a
/// typed error where that is not so.
pub trait MolPde: Sync {
    /// Number of solution components (and of residual rows per point).
    fn components(&self) -> usize {
        1
    }

    /// The terms the residual receives, in order.
    fn terms(&self) -> Vec<MolTerm>;

    /// How the terms are discretised.
    fn stencil(&self) -> Stencil {
        Stencil::FiniteDifference
    }

    /// The residual rows at one point, from the values there (`at.u_t` one
    /// per component, `at.z` one per term of [`MolPde::terms`]); `out`
    /// receives [`MolPde::components`] rows. Generic over the number type
    /// (like [`tessera_constraints::Pde::residual`]) so that `∂F/∂u_t` comes
    /// from the same definition.
    fn residual<D: DualNum<Primitive = f64> + Copy>(&self, at: &PointValues<'_, D>, out: &mut [D]);

    /// The condition of `component` on `side`.
    fn boundary(&self, side: Side, component: usize) -> Boundary;

    /// The right-hand side `g(t, x)` of a [`Boundary::Robin`] or
    /// [`Boundary::Oblique`] condition at the
    /// boundary point `point`.
    fn boundary_value(&self, side: Side, component: usize, t: f64, point: &[f64]) -> f64 {
        let _ = (side, component, t, point);
        0.0
    }
}
