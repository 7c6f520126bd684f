//! Ground truth for any PDE by the method of lines: space discretised by the
//! `meshes` stencils on a grid finer than the output grid, time by an
//! adaptive L-stable SDIRK method with Newton on a sparse Jacobian.
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
//! | [`domain`] | the rectangle, output grid and refinement ([`MolDomain`]) |
//! | [`system`] | the [`MolSystem`] trait (the semi-discrete ODE) |
//! | [`discretisation`] | stencils, ghost points, `u_t = −(∂F/∂u_t)⁻¹F(0, z)` |
//! | `discretisation/spectral_jacobian` | `∂f/∂u` of a spectral discretisation from its circulants |
//! | `jacobian` | the column-coloured finite-difference Jacobian |
//! | `linearisation` | `J` assembled or as an operator, kept or not, and `I − hγJ` from it |
//! | `gmres` | restarted, right-preconditioned GMRES for an operator's stage systems |
//! | [`sdirk`] | the SDIRK4 integrator, [`MolOptions`], [`MolStats`] |
//! | `stage_matrix` | `I − hγJ` factorised (sparse or dense) or solved by GMRES |
//! | [`solve`] | one trajectory on the output grid ([`MolSolution`]) |
//! | [`dataset`] | datasets from an [`InitialFamily`] |
//! | [`error`] | [`MolError`] |

pub mod dataset;
pub mod discretisation;
pub mod domain;
pub mod error;
mod gmres;
mod jacobian;
mod linearisation;
pub mod pde;
pub mod sdirk;
pub mod solve;
mod stage_matrix;
pub mod system;

pub use dataset::{InitialFamily, generate, initial_conditions};
pub use discretisation::Discretisation;
pub use domain::{MolDomain, SpatialAxis};
pub use error::MolError;
pub use pde::{Boundary, Derivative, MolPde, MolTerm, PointValues, Side, Stencil};
pub use sdirk::{MolOptions, MolStats, integrate};
pub use solve::MolSolution;
pub use system::{JacobianOperator, MolSystem};
