//! Ground truth for any PDE by the method of lines: space discretised by the
//! `meshes` stencils on a grid finer than the output grid, time by an
//! adaptive L-stable SDIRK method with Newton on a sparse Jacobian, or, for
//! systems that are not stiff, by the explicit Dormand–Prince pair
//! ([`MolMethod`]).
//!
//! The seam for PDE definitions is [`MolPde`]: its terms (derivatives of its
//! components), its residual `F(u_t, z; t, x)` affine in `u_t` (generic over
//! dual numbers), and its boundary conditions. [`Discretisation`] turns it into
//! a [`MolSystem`] `du/dt = f(t, u)`; [`integrate`] advances any such system;
//! [`Discretisation::solve`] returns a trajectory on the output grid and
//! [`generate`] a [`crate::Dataset`] of them.
//!
//! | file | holds |
//! |---|---|
//! | [`pde`] | the [`MolPde`] trait, terms, stencils, boundary conditions |
//! | [`domain`] | the rectangle, output grid, refinement and dealiasing ([`MolDomain`]) |
//! | [`dealias`] | which Fourier modes a spectral discretisation keeps ([`Dealias`]) |
//! | [`system`] | the [`MolSystem`] trait (the semi-discrete ODE) |
//! | [`discretisation`] | stencils, ghost points, `u_t = −(∂F/∂u_t)⁻¹F(0, z)` |
//! | `discretisation/spectral_jacobian` | `∂f/∂u` of a spectral discretisation from its circulants |
//! | `discretisation/spectral_filter` | a field's modes outside a [`Dealias`] rule dropped |
//! | `jacobian` | the column-coloured finite-difference Jacobian |
//! | `linearisation` | `J` assembled or as an operator, kept or not, and `I − hγJ` from it |
//! | `gmres` | restarted, right-preconditioned GMRES for an operator's stage systems |
//! | [`options`] | [`MolOptions`], [`MolMethod`] |
//! | [`stats`] | [`MolStats`] of one integration, [`MolSummary`] of a dataset's |
//! | `integrator` | [`integrate`]: checks, the initial state, the method and the switch to the implicit one |
//! | `step_control` | error norm, first step, landing on output times, step growth and cuts |
//! | [`sdirk`] | the implicit SDIRK4 integrator |
//! | [`dormand_prince`] | the explicit Dormand–Prince 5(4) integrator and its stiffness test |
//! | `stage_matrix` | `I − hγJ` factorised (sparse or dense) or solved by GMRES |
//! | [`solve`] | one trajectory on the output grid ([`MolSolution`]) |
//! | [`dataset`] | datasets from an [`InitialFamily`] |
//! | [`error`] | [`MolError`] |

pub mod dataset;
pub mod dealias;
pub mod discretisation;
pub mod domain;
pub mod dormand_prince;
pub mod error;
mod gmres;
mod integrator;
mod jacobian;
mod linearisation;
pub mod options;
pub mod pde;
pub mod sdirk;
pub mod solve;
mod stage_matrix;
pub mod stats;
mod step_control;
pub mod system;

pub use dataset::{InitialFamily, generate, initial_conditions};
pub use dealias::Dealias;
pub use discretisation::Discretisation;
pub use domain::{MolDomain, SpatialAxis};
pub use error::MolError;
pub use integrator::integrate;
pub use options::{MolMethod, MolOptions};
pub use pde::{Boundary, Derivative, MolPde, MolTerm, PointValues, Side, Stencil};
pub use solve::MolSolution;
pub use stats::{MolStats, MolSummary};
pub use system::{JacobianOperator, MolSystem};
