//! The problems a GPU builds from the basis, checked on the host: the sparse
//! rows of the terms at every grid point that the layer uploads
//! (`terms::residual_rows`), applied to `S B` and read at rows `p·d + j` of
//! the experts' points `p` as the gather kernel reads them, give the term
//! rows the CPU builds at those points, and the rest of each problem
//! (`SampleTerms::gathered_problem`) is the CPU problem's, so a batch packed
//! from either differs only in the rows the GPU fills in. The kernel that
//! applies the rows on the device is checked against `SparseRows::apply` in
//! the constraints crate's `gpu_host` suite.
#![cfg(feature = "cuda")]

#[path = "../../constraints/tests/common/pdes.rs"]
mod pdes;

use std::sync::Arc;

use pdes::{QuadraticTransport, SorptionLike};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tessera_constraints::gpu::{Batch, BatchProblem};
use tessera_constraints::{LevenbergMarquardt, Pde, Term};
use tessera_experts::SampleTerms;
use tessera_experts::terms::residual_rows;
use tessera_meshes::{FourierMultiplier, Grid};

/// Three experts' points: random, repeats allowed, with the grid's first and
/// last points (where one-sided stencils apply) in every list.
fn expert_points(rng: &mut ChaCha8Rng, n_grid: usize) -> Vec<Arc<Vec<usize>>> {
    (0..3)
        .map(|_| {
            let mut pts: Vec<usize> = (0..25).map(|_| rng.random_range(0..n_grid)).collect();
            pts.extend([0, n_grid - 1]);
            Arc::new(pts)
        })
        .collect()
}

/// For one sample of `pde` on `grid` with a random basis: the gathered rows
/// against the CPU's term rows, and both problems' other parts.
fn check<P: Pde>(pde: &P, grid: &Grid, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (g, n) = (grid.len(), 5);
    let basis: Vec<f64> = (0..g * n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let ic: Vec<f64> = (0..g / grid.axis(0).len())
        .map(|_| rng.random_range(0.1..1.0))
        .collect();
    let terms: Vec<Term> = pde.terms(grid).unwrap();
    let n_residual = pde.residual_terms().unwrap_or(terms.len());
    let solution = match pde.solution_map(grid).unwrap() {
        Some(s) => s.apply_to_vec(&basis, n),
        None => basis.clone(),
    };
    let offset = pde.solution_offset(grid, &ic).unwrap();
    let rows = pde.linear_rows(grid, &ic).unwrap();
    let points = expert_points(&mut rng, g);
    let sets: Vec<&[usize]> = points.iter().map(|p| p.as_slice()).collect();
    let sample = SampleTerms::new(
        &terms,
        n_residual,
        &solution,
        n,
        offset.as_deref(),
        &rows,
        &sets,
    )
    .unwrap();
    let row_ids: Vec<usize> = (0..rows.len()).step_by(2).collect();
    let ridge = 1e-4;
    let host: Vec<_> = (0..sets.len())
        .map(|k| sample.problem(k, &row_ids, 1, ridge).unwrap())
        .collect();
    let gathered: Vec<_> = (0..sets.len())
        .map(|k| {
            sample
                .gathered_problem(k, &row_ids, 1, ridge, Vec::new())
                .unwrap()
        })
        .collect();
    assert!(gathered.iter().all(|p| p.term_rows().is_empty()));

    let sparse = residual_rows(&terms[..n_residual], g)
        .unwrap()
        .expect("every term is local");
    assert_eq!(
        sparse.len(),
        g * n_residual,
        "one row per grid point and term"
    );
    let mut at_grid = vec![0.0; sparse.len() * n];
    sparse.apply(&solution, n, &mut at_grid);
    let rows_out: Vec<f64> = points
        .iter()
        .flat_map(|pts| pts.iter())
        .flat_map(|&p| &at_grid[p * n_residual * n..(p + 1) * n_residual * n])
        .copied()
        .collect();
    let expected: Vec<f64> = host.iter().flat_map(|p| p.term_rows()).copied().collect();
    assert_eq!(rows_out.len(), expected.len(), "one row per point and term");
    let scale = expected.iter().fold(1.0f64, |a, x| a.max(x.abs()));
    for (i, (got, want)) in rows_out.iter().zip(&expected).enumerate() {
        assert!(
            (got - want).abs() <= 1e-13 * scale,
            "term-row value {i}: {got} gathered, {want} on the host"
        );
    }

    let lm = LevenbergMarquardt::default();
    let mut from_host = Batch::pack(&lm, &host.iter().collect::<Vec<_>>()).unwrap();
    let from_gathered = Batch::pack(&lm, &gathered.iter().collect::<Vec<_>>()).unwrap();
    from_host.term_rows.clear();
    assert_eq!(from_host, from_gathered, "everything but the term rows");
}

#[test]
fn gathered_rows_are_the_host_problems_rows() {
    let grid = Grid::uniform_tx(6, 9, 1.0).unwrap();
    check(&SorptionLike, &grid, 1);
    let grid = Grid::uniform_txy(4, 5, 6, 1.0).unwrap();
    for with_solution_map in [false, true] {
        let pde = QuadraticTransport {
            nu: 0.01,
            with_solution_map,
        };
        check(&pde, &grid, 2);
    }
}

#[test]
fn a_non_local_term_leaves_the_rows_to_the_host() {
    let grid = Grid::uniform_txy(4, 6, 6, 1.0).unwrap();
    let spectral = Term {
        name: "laplacian".into(),
        operator: Arc::new(FourierMultiplier::laplacian(&grid).unwrap()),
    };
    let rows = residual_rows(&[spectral], grid.len()).unwrap();
    assert!(rows.is_none(), "a spectral term is not a short combination");
}
