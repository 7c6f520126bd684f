//! Navier–Stokes in 2-D vorticity form on the periodic unit square (PI-HC-MoE §4.2).

mod fft2;
pub mod pde;
pub mod random_field;
pub mod reference_solver;

pub use random_field::PeriodicGrf;
pub use reference_solver::ReferenceSolver;
