//! End-to-end checks of problem files: write a file, load it, solve it, and check
//! the weights against the objective evaluated independently of the constraint
//! layer (basis times weights on the grid, the PDE's own operators, residual and
//! rows), plus typed errors for bad files.

use std::collections::HashMap;

use safetensors::tensor::{Dtype, TensorView};
use tessera_constraints::{LevenbergMarquardt, Pde};
use tessera_experts::RowScope;
use tessera_meshes::{Tiling, sample_points};

use super::{ExternalProblem, ProblemFileError};
use crate::constraint_check::{AnyPde, GridSize, PdeKind, SyntheticProblem};

const RIDGE: f64 = 1e-4;

/// A small diffusion–sorption problem with two experts of 40 points each.
fn small_problem() -> ExternalProblem {
    let size = GridSize {
        nt: 9,
        nx: 32,
        ny: None,
    };
    let synthetic = SyntheticProblem::new(PdeKind::DiffusionSorption, size, 4, 5).unwrap();
    let split = vec![1, 2];
    let tiling = Tiling::new(synthetic.grid.shape(), &split).unwrap();
    let points = (0..tiling.n_tiles())
        .map(|k| sample_points(&tiling, k, 40, 3, 0).unwrap())
        .collect();
    ExternalProblem::new(
        PdeKind::DiffusionSorption,
        synthetic.grid,
        synthetic.basis,
        synthetic.n_basis,
        synthetic.ic,
        split,
        RowScope::Global,
        points,
    )
    .unwrap()
}

/// `‖r_k(ω)‖₂` from scratch: `u = Bω` on the whole grid, the PDE's terms applied
/// to `u`, its residual at expert `k`'s points, every initial/boundary row and
/// the ridge rows.
fn residual_norm(problem: &ExternalProblem, k: usize, omega: &[f64]) -> f64 {
    let pde = AnyPde::default_of(problem.pde());
    let grid = problem.grid();
    let u: Vec<f64> = problem
        .basis()
        .chunks_exact(problem.n_basis())
        .map(|b| b.iter().zip(omega).map(|(x, w)| x * w).sum())
        .collect();
    let z: Vec<Vec<f64>> = pde
        .terms(grid)
        .unwrap()
        .iter()
        .map(|t| t.operator.apply_to_vec(&u, 1))
        .collect();
    let mut sum = 0.0;
    let mut out = [0.0];
    for &p in &problem.points()[k] {
        let zp: Vec<f64> = z.iter().map(|zj| zj[p]).collect();
        pde.residual::<f64>(&zp, &mut out);
        sum += out[0] * out[0];
    }
    for row in pde.linear_rows(grid, problem.ic()).unwrap() {
        let value: f64 = row.coeffs.iter().map(|&(j, c)| c * z[j][row.point]).sum();
        sum += (value - row.rhs).powi(2);
    }
    sum += RIDGE * RIDGE * omega.iter().map(|w| w * w).sum::<f64>();
    sum.sqrt()
}

#[test]
fn written_file_solves_to_the_minimum_of_the_independent_objective() {
    let problem = small_problem();
    let path = std::env::temp_dir().join(format!(
        "tessera-problem-file-test-{}.safetensors",
        std::process::id()
    ));
    std::fs::write(&path, problem.to_bytes()).unwrap();
    let loaded = ExternalProblem::load(&path);
    std::fs::remove_file(&path).unwrap();
    let loaded = loaded.unwrap();
    assert_eq!(loaded, problem, "file round trip");

    let lm = LevenbergMarquardt::default()
        .with_rtol(1e-14)
        .unwrap()
        .with_atol(1e-14)
        .unwrap()
        .with_max_iterations(500)
        .unwrap();
    let solution = loaded.solve(&lm, RIDGE).unwrap();
    assert_eq!(solution.weights.len(), 2);
    for (k, omega) in solution.weights.iter().enumerate() {
        assert_eq!(solution.stop_reasons[k], "Converged");
        let norm = residual_norm(&problem, k, omega);
        let reported = solution.final_residual_norms[k];
        assert!(
            (norm - reported).abs() <= 1e-10 * norm,
            "expert {k}: reported ‖r‖ {reported:e}, independent {norm:e}"
        );
        // A minimum of f = ½‖r‖²: its central-difference gradient vanishes
        // (relative to the gradient at the initial guess ω = 1), and moving any
        // weight either way does not lower f.
        let f = |w: &[f64]| 0.5 * residual_norm(&problem, k, w).powi(2);
        let gradient = |w: &[f64]| -> Vec<f64> {
            (0..w.len())
                .map(|i| {
                    let h = 1e-6 * w[i].abs().max(1e-3);
                    let mut plus = w.to_vec();
                    let mut minus = w.to_vec();
                    plus[i] += h;
                    minus[i] -= h;
                    (f(&plus) - f(&minus)) / (2.0 * h)
                })
                .collect()
        };
        let norm2 = |g: Vec<f64>| g.iter().map(|x| x * x).sum::<f64>().sqrt();
        let start = norm2(gradient(&vec![1.0; omega.len()]));
        let at_solution = norm2(gradient(omega));
        assert!(
            at_solution <= 1e-6 * start,
            "expert {k}: ‖∇f(ω*)‖ = {at_solution:e} vs ‖∇f(1)‖ = {start:e}"
        );
        for i in 0..omega.len() {
            for delta in [-1e-3, 1e-3] {
                let mut moved = omega.clone();
                moved[i] += delta;
                assert!(
                    f(&moved) >= f(omega),
                    "expert {k}: ω_{i} {delta:+e} lowers f"
                );
            }
        }
    }
}

#[test]
fn bad_files_are_typed_errors() {
    assert!(matches!(
        ExternalProblem::from_bytes(b"not a safetensors file"),
        Err(ProblemFileError::Format { .. })
    ));
    let bytes = small_problem().to_bytes();
    assert!(matches!(
        ExternalProblem::from_bytes(&bytes[..bytes.len() / 2]),
        Err(ProblemFileError::Format { .. })
    ));
    let data = vec![0u8; 8];
    let view = TensorView::new(Dtype::F64, vec![1], &data).unwrap();
    let mut metadata = HashMap::new();
    metadata.insert("split".to_owned(), "1x2".to_owned());
    let no_pde = safetensors::tensor::serialize([("ic", view)], Some(metadata)).unwrap();
    assert!(matches!(
        ExternalProblem::from_bytes(&no_pde),
        Err(ProblemFileError::Metadata { key: "pde", .. })
    ));
}

#[test]
fn bad_points_and_values_are_typed_errors() {
    let good = small_problem();
    let with_points = |points: Vec<Vec<usize>>| {
        ExternalProblem::new(
            good.pde(),
            good.grid().clone(),
            good.basis().to_vec(),
            good.n_basis(),
            good.ic().to_vec(),
            good.split().to_vec(),
            good.row_scope(),
            points,
        )
    };
    let mut swapped = good.points().to_vec();
    swapped.swap(0, 1);
    assert!(matches!(
        with_points(swapped),
        Err(ProblemFileError::PointOutsideTile { .. })
    ));
    let mut repeated = good.points().to_vec();
    repeated[0][1] = repeated[0][0];
    assert!(matches!(
        with_points(repeated),
        Err(ProblemFileError::DuplicatePoint { .. })
    ));
    let mut basis = good.basis().to_vec();
    basis[7] = f64::NAN;
    let nan = ExternalProblem::new(
        good.pde(),
        good.grid().clone(),
        basis,
        good.n_basis(),
        good.ic().to_vec(),
        good.split().to_vec(),
        good.row_scope(),
        good.points().to_vec(),
    );
    assert!(matches!(
        nan,
        Err(ProblemFileError::NonFinite {
            tensor: "basis",
            ..
        })
    ));
}
