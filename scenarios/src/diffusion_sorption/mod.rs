//! Diffusion–sorption in 1-D (PDEBench; PI-HC-MoE §4.1).

pub mod pde;
pub mod reference_solver;

pub use reference_solver::ReferenceSolver;
