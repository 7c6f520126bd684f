//! Diffusion–sorption in 1-D (PDEBench; PI-HC-MoE §4.1).

pub mod pde;
