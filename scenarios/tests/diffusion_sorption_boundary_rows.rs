//! Oracle test of diffusion–sorption's boundary rows: evaluated on the
//! finite-volume ground truth ([`ReferenceSolver`], PDEBench's scheme), the face
//! rows (`[pde] boundary = "faces"`) are small and shrink as the truth is
//! refined, while the reference's cell-centre rows stay at `(h/2)·|u_x|`.
//!
//! Why they must: the scheme converges to a solution with `u(0) = 1` and
//! `u(1) + D·u_x(1) = 0`; the face rows state exactly these conditions up to the
//! half-cell extrapolation's `O(h²·u_xx)`, so their residual on the truth is the
//! scheme's own boundary error (its left value sits at the ghost centre
//! `−h_fv/2`, first order in the truth's cell width `h_fv`) plus that
//! extrapolation error. A cell-centre row asks `u(h/2) = 1` instead, which the
//! truth misses by `(h/2)·|u_x|` however fine it is solved.

mod pde_support;

use pde_support::{row_value, term_fields};
use tessera_constraints::Pde;
use tessera_meshes::Grid;
use tessera_meshes::ops::fd::FdScheme;
use tessera_scenarios::config::{BoundaryPlacement, DiffusionSorptionParams};
use tessera_scenarios::diffusion_sorption::ReferenceSolver;
use tessera_scenarios::diffusion_sorption::pde::DiffusionSorption;

/// The quickstart's grid: 26 time levels over `[0, 500]`, 64 cells.
const NT: usize = 26;
const NX: usize = 64;
/// A constant initial value inside PDEBench's range `[0, 0.2)`.
const U0: f64 = 0.1;

/// The largest `|row|` over the left and the right boundary rows of `placement`
/// on the field `u`.
fn boundary_residuals(placement: BoundaryPlacement, grid: &Grid, u: &[f64]) -> (f64, f64) {
    let params = DiffusionSorptionParams {
        boundary: placement,
        ..DiffusionSorptionParams::default()
    };
    let ds = DiffusionSorption::new(params, FdScheme::Reference).unwrap();
    let terms = term_fields(&ds, grid, u);
    let rows = ds.linear_rows(grid, &[U0; NX]).unwrap();
    let worst = |side: usize| {
        rows.iter()
            .filter(|r| r.point >= NX && r.point % NX == side)
            .map(|r| row_value(r, &terms).abs())
            .fold(0.0, f64::max)
    };
    (worst(0), worst(NX - 1))
}

#[test]
fn face_rows_hold_on_the_finite_volume_truth_and_cell_centre_rows_do_not() {
    let grid = Grid::uniform_tx(NT, NX, 500.0).unwrap();
    let times = grid.axis(0).coords().to_vec();
    let params = DiffusionSorptionParams::default();
    // The truth on `ratio` finer cells per grid cell, averaged onto the grid
    // (the quickstart solves on 2 per cell).
    let ratios = [1, 2, 4, 16];
    println!("truth cells | faces: left, right | cell centres: left, right");
    let measured: Vec<[f64; 4]> = ratios
        .iter()
        .map(|&ratio| {
            let u = ReferenceSolver::new(&params, NX * ratio, 1e-10)
                .unwrap()
                .solve_on_grid(&[U0; NX], &times)
                .unwrap();
            let (fl, fr) = boundary_residuals(BoundaryPlacement::Faces, &grid, &u);
            let (cl, cr) = boundary_residuals(BoundaryPlacement::CellCentres, &grid, &u);
            println!(
                "{:>11} | {fl:.3e}, {fr:.3e} | {cl:.3e}, {cr:.3e}",
                NX * ratio
            );
            [fl, fr, cl, cr]
        })
        .collect();
    let finest = measured[ratios.len() - 1];
    // On the finest truth the face rows are far below the cell-centre rows,
    // on both sides: by more than the half cell to the `h_fv/2` ghost offset
    // ratio would give on its own at equal extrapolation error (a factor
    // ≥ 4 leaves room for the O(h²) extrapolation term).
    for side in 0..2 {
        assert!(
            4.0 * finest[side] < finest[side + 2],
            "side {side}: faces {:e}, cell centres {:e}",
            finest[side],
            finest[side + 2]
        );
    }
    // Refining the truth from 4 to 16 cells per grid cell shrinks the face rows'
    // left residual (the ghost offset `h_fv/2`, by 4 where it dominates) and
    // barely moves the cell-centre rows' (`(h/2)·(1 + 1/ratio)·|u_x|`, by 0.85).
    let coarser = measured[ratios.len() - 2];
    assert!(finest[0] < 0.5 * coarser[0], "{coarser:?} → {finest:?}");
    assert!(finest[2] > 0.7 * coarser[2], "{coarser:?} → {finest:?}");
}
