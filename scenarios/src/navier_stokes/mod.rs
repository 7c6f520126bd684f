//! Navier–Stokes in 2-D vorticity form on the periodic unit square (PI-HC-MoE §4.2).

pub mod pde;
