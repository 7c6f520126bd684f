//! Synthetic constraint problems: a scenario PDE on a grid, a random smooth basis
//! and a smooth initial condition — everything the constraint layer needs, without
//! a trained backbone.

use std::f64::consts::PI;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tessera_constraints::InitialGuess;
use tessera_meshes::Grid;
use tessera_scenarios::advection::Advection;
use tessera_scenarios::heat::Heat;

use tessera_scenarios::{AnyPde, PdeKind};

use crate::error::ToolError;

/// Final time of each PDE's grid: the paper's 500 s (diffusion–sorption) and 5 s
/// (Navier–Stokes), unit time for the test problems.
fn t_max(kind: PdeKind) -> f64 {
    match kind {
        PdeKind::DiffusionSorption => 500.0,
        PdeKind::NavierStokes => 5.0,
        PdeKind::Heat | PdeKind::Advection => 1.0,
    }
}

/// The size of the random basis functions relative to the first one.
const PERTURBATION: f64 = 0.1;

/// The range of the diffusion–sorption background level (the upper half of
/// PDEBench's `(0, 0.2)`, so that solved fields stay clear of `u = 0`).
const DS_BACKGROUND: (f64, f64) = (0.1, 0.2);

/// Width of the diffusion–sorption initial front, as a fraction of the domain.
const DS_FRONT_WIDTH: f64 = 0.1;

/// The part of the diffusion–sorption domain (fractions of its length) over which
/// the basis perturbations fade out: the front region ends here.
const DS_FRONT_REGION: (f64, f64) = (0.4, 0.8);

/// Grid sizes of a synthetic problem; `ny` only for 2-D PDEs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridSize {
    /// Time levels.
    pub nt: usize,
    /// Points along `x`.
    pub nx: usize,
    /// Points along `y` (2-D PDEs).
    pub ny: Option<usize>,
}

impl GridSize {
    /// Sizes that make `tessera gradcheck` run in seconds while leaving every tile
    /// of a 4-expert split room for 2000 points: 41 × 256 for 1-D PDEs,
    /// 16 × 32 × 32 for Navier–Stokes.
    pub fn gradcheck_default(kind: PdeKind) -> Self {
        match kind.space_dims() {
            2 => Self {
                nt: 16,
                nx: 32,
                ny: Some(32),
            },
            _ => Self {
                nt: 41,
                nx: 256,
                ny: None,
            },
        }
    }

    /// The grid's point shape `[nt, nx, (ny)]`.
    pub fn dims(&self) -> Vec<usize> {
        std::iter::once(self.nt)
            .chain(std::iter::once(self.nx))
            .chain(self.ny)
            .collect()
    }
}

/// A PDE, its grid, one sample's basis and initial condition, and the reference's
/// starting weights for that PDE.
#[derive(Debug, Clone)]
pub struct SyntheticProblem {
    /// The PDE (default constants, reference operators).
    pub pde: AnyPde,
    /// The grid.
    pub grid: Grid,
    /// The basis `[grid points, N]`.
    pub basis: Vec<f64>,
    /// Number of basis functions `N`.
    pub n_basis: usize,
    /// The initial condition `[x, (y)]`.
    pub ic: Vec<f64>,
    /// Where Levenberg–Marquardt starts (the reference: ones for
    /// diffusion–sorption, zeros for Navier–Stokes).
    pub initial_guess: InitialGuess,
}

impl SyntheticProblem {
    /// The problem for `kind` on a `size` grid with `n_basis` random smooth basis
    /// functions drawn from `seed`.
    ///
    /// The first basis function is the initial condition held constant in time
    /// (the solution the data suggest); each other one is `0.1` times a product of
    /// cosines, one per axis, with a wavenumber tuple drawn without replacement (up
    /// to 3 half-waves in `t`, 7 along a bounded axis, 3 whole periods along a
    /// periodic one) and random phases, so the functions are nearly orthogonal and
    /// the least-squares problems well conditioned. The initial condition is a
    /// random smooth periodic field for Navier–Stokes, and a smooth profile between
    /// 0.4 and 1.1 for heat and advection. For diffusion–sorption it is a front
    /// entering from the left boundary value 1 into a uniform background level in
    /// `(0.1, 0.2)` (PDEBench starts from a uniform level in `(0, 0.2)`), and the
    /// perturbations fade out ahead of the front (see `perturbation_envelope`):
    /// the solved `u` then stays well above 0, where the retardation factor has
    /// its kink (its derivative jumps from `≈ −10⁶` to 0) and no gradient exists;
    /// it is positive, as the IC rows divide by it.
    ///
    /// Errors: `n_basis = 0`, an axis of fewer than 2 points, a `ny` given (or
    /// missing) against the PDE's dimension, or a grid too small.
    pub fn new(
        kind: PdeKind,
        size: GridSize,
        n_basis: usize,
        seed: u64,
    ) -> Result<Self, ToolError> {
        if n_basis == 0 {
            return Err(ToolError::InvalidSetting {
                what: "--basis",
                value: "0".to_owned(),
                reason: "at least one basis function",
            });
        }
        // Refused here by their flags; the grid would name an axis length.
        let axes = [("--nt", size.nt), ("--nx", size.nx)];
        for (what, n) in axes.into_iter().chain(size.ny.map(|ny| ("--ny", ny))) {
            if n < 2 {
                return Err(ToolError::InvalidSetting {
                    what,
                    value: n.to_string(),
                    reason: "must be at least 2 (points along a grid axis)",
                });
            }
        }
        let grid = match (kind, size.ny) {
            (PdeKind::NavierStokes, Some(ny)) => {
                Grid::uniform_txy(size.nt, size.nx, ny, t_max(kind))?
            }
            (PdeKind::DiffusionSorption, None) => Grid::uniform_tx(size.nt, size.nx, t_max(kind))?,
            (PdeKind::Heat, None) => Heat::grid(size.nt, size.nx, t_max(kind))?,
            (PdeKind::Advection, None) => Advection::grid(size.nt, size.nx, t_max(kind))?,
            (_, Some(ny)) => {
                return Err(ToolError::InvalidSetting {
                    what: "--ny",
                    value: ny.to_string(),
                    reason: "only for 2-D PDEs (navier-stokes)",
                });
            }
            (_, None) => {
                return Err(ToolError::InvalidSetting {
                    what: "--ny",
                    value: "none".to_owned(),
                    reason: "needed for 2-D PDEs (navier-stokes)",
                });
            }
        };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let ic = initial_condition(kind, &grid, &mut rng);
        let mut basis = smooth_basis(&grid, n_basis, &mut rng);
        // B_0 = the initial condition held in time; the others perturb it.
        let spatial = ic.len();
        let envelope = perturbation_envelope(kind, &grid);
        for (p, values) in basis.chunks_exact_mut(n_basis).enumerate() {
            values[0] = ic[p % spatial];
            let scale = PERTURBATION * envelope[p % spatial];
            for v in &mut values[1..] {
                *v *= scale;
            }
        }
        let initial_guess = kind.reference_initial_guess();
        Ok(Self {
            pde: AnyPde::default_of(kind),
            grid,
            basis,
            n_basis,
            ic,
            initial_guess,
        })
    }
}

/// The angle `π·k·(c − c₀)/L` per unit wavenumber along each axis at every point,
/// `[points, ndim]`: one period over a periodic axis is `k = 2`.
fn unit_angles(grid: &Grid) -> Vec<Vec<f64>> {
    grid.axes()
        .iter()
        .map(|axis| {
            let (start, length) = (axis.coords()[0], axis.length());
            axis.coords()
                .iter()
                .map(|c| PI * (c - start) / length)
                .collect()
        })
        .collect()
}

fn smooth_basis(grid: &Grid, n_basis: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let angles = unit_angles(grid);
    let nd = grid.ndim();
    // Distinct wavenumber tuples (up to 3 half-waves in t, 7 along a bounded axis,
    // 3 whole periods along a periodic one) in random order, random phases: nearly
    // orthogonal functions, so the least-squares problems are well conditioned.
    let ranges: Vec<usize> = grid
        .axes()
        .iter()
        .enumerate()
        .map(|(a, axis)| match (a, axis.is_periodic()) {
            (0, _) => 4,
            (_, true) => 4,
            _ => 8,
        })
        .collect();
    let mut tuples: Vec<Vec<f64>> = (0..ranges.iter().product::<usize>())
        .map(|mut i| {
            ranges
                .iter()
                .rev()
                .map(|&r| {
                    let k = i % r;
                    i /= r;
                    k as f64
                })
                .collect::<Vec<f64>>()
                .into_iter()
                .rev()
                .collect()
        })
        .collect();
    for i in (1..tuples.len()).rev() {
        tuples.swap(i, rng.random_range(0..=i));
    }
    let modes: Vec<Vec<(f64, f64)>> = (0..n_basis)
        .map(|n| {
            let tuple = &tuples[n % tuples.len()];
            (0..nd)
                .map(|a| {
                    let k = if grid.axis(a).is_periodic() { 2.0 } else { 1.0 } * tuple[a];
                    (k, rng.random_range(0.0..2.0 * PI))
                })
                .collect()
        })
        .collect();
    let mut basis = vec![0.0; grid.len() * n_basis];
    for (p, values) in basis.chunks_exact_mut(n_basis).enumerate() {
        let index = grid.shape().unflat(p);
        for (value, waves) in values.iter_mut().zip(&modes) {
            *value = (0..nd)
                .map(|a| (waves[a].0 * angles[a][index[a]] + waves[a].1).cos())
                .product();
        }
    }
    basis
}

/// Where the perturbations of the first basis function may act, per spatial
/// point: everywhere, except for diffusion–sorption, where they fade out (a
/// `cos²` taper) between [`DS_FRONT_REGION`]`.0` and `.1` of the domain. Ahead of
/// the front the soil stays at its background level, as in real solutions; without
/// the taper the least-squares fit bends `u` down to the right boundary row's
/// zero (the reference's cell-centre row `u − D·u_x = 0` even below it, next to
/// any positive interior value), `u` crosses zero at sampled points, and the retardation
/// factor's kink there leaves no derivative for finite differences to check.
fn perturbation_envelope(kind: PdeKind, grid: &Grid) -> Vec<f64> {
    let spatial: usize = grid.shape().dims()[1..].iter().product();
    if kind != PdeKind::DiffusionSorption {
        return vec![1.0; spatial];
    }
    let angles = &unit_angles(grid)[1];
    let last = angles[angles.len() - 1];
    let (start, end) = DS_FRONT_REGION;
    angles
        .iter()
        .map(|x| {
            let s = ((x / last - start) / (end - start)).clamp(0.0, 1.0);
            (0.5 * PI * s).cos().powi(2)
        })
        .collect()
}

fn initial_condition(kind: PdeKind, grid: &Grid, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let angles = unit_angles(grid);
    match kind {
        PdeKind::NavierStokes => {
            let (ax, ay) = (&angles[1], &angles[2]);
            let waves: Vec<(f64, f64, f64, f64)> = (0..4)
                .map(|_| {
                    let kx = 2.0 * rng.random_range(1..=3) as f64;
                    let ky = 2.0 * rng.random_range(0..=3) as f64;
                    (
                        rng.random_range(-1.0..1.0),
                        kx,
                        ky,
                        rng.random_range(0.0..2.0 * PI),
                    )
                })
                .collect();
            ax.iter()
                .flat_map(|&x| ay.iter().map(move |&y| (x, y)))
                .map(|(x, y)| {
                    waves
                        .iter()
                        .map(|(a, kx, ky, phase)| a * (kx * x + ky * y + phase).cos())
                        .sum()
                })
                .collect()
        }
        PdeKind::DiffusionSorption => {
            // A sorption front entering from the left boundary (value 1) into a
            // soil at a uniform background level, as PDEBench's data start from a
            // uniform level in (0, 0.2). The background keeps every u well above
            // the kink of max(u, 0) in the retardation factor.
            let level = rng.random_range(DS_BACKGROUND.0..DS_BACKGROUND.1);
            let last = angles[1][angles[1].len() - 1];
            angles[1]
                .iter()
                .map(|x| {
                    let s = x / last / DS_FRONT_WIDTH;
                    level + (1.0 - level) * (-s * s).exp()
                })
                .collect()
        }
        _ => {
            let (level, amplitude) = (rng.random_range(0.5..1.0), rng.random_range(0.0..0.1));
            let phase = rng.random_range(0.0..2.0 * PI);
            angles[1]
                .iter()
                .map(|x| level + amplitude * (2.0 * x + phase).sin())
                .collect()
        }
    }
}
