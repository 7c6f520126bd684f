//! Hard physical constraints: the PDE-residual trait, one expert's least-squares
//! problem, its float64 Levenberg–Marquardt solve and the implicit-function-theorem
//! backward pass.

pub mod error;
pub mod pde;

pub use error::ConstraintError;
pub use pde::{LinearRow, Pde, Term};
