//! End-to-end checks of problem files: write a file, load it, solve it, and check
//! the weights against the objective evaluated independently of the constraint
//! layer (basis times weights on the grid, the PDE's own operators, residual and
//! rows), plus typed errors for bad files.

use std::collections::{BTreeMap, HashMap};
use std::f64::consts::PI;

use safetensors::tensor::{Dtype, TensorView};
use tessera_constraints::{LevenbergMarquardt, Pde};
use tessera_meshes::{Grid, Tiling, sample_points};
use tessera_scenarios::{AnyPde, ScenarioError};

use super::{ExternalProblem, ProblemFileError};
use crate::RowScope;

const RIDGE: f64 = 1e-4;

/// The registry's reading of a file's PDE entries.
fn resolve(metadata: &BTreeMap<String, String>) -> Result<(AnyPde, Vec<bool>), ScenarioError> {
    let pde = AnyPde::from_metadata(metadata)?;
    let periodic = pde.periodic_axes();
    Ok((pde, periodic))
}

/// A small diffusion–sorption problem (non-default constants, so the metadata
/// must carry them) with two experts of 40 points each. The first basis
/// function is the initial condition held in time: a front entering from the
/// boundary value 1 into a background of 0.15, so `u` stays positive; the other
/// three are small products of cosines that fade out ahead of the front.
fn small_problem() -> ExternalProblem<AnyPde> {
    let (nt, nx, n_basis) = (9, 32, 4);
    let grid = Grid::uniform_tx(nt, nx, 500.0).unwrap();
    let x = |i: usize| i as f64 / (nx - 1) as f64;
    let ic: Vec<f64> = (0..nx)
        .map(|i| 0.15 + 0.85 * (-(x(i) / 0.1).powi(2)).exp())
        .collect();
    let mut basis = Vec::with_capacity(nt * nx * n_basis);
    for k in 0..nt {
        let t = k as f64 / (nt - 1) as f64;
        for (i, &u0) in ic.iter().enumerate() {
            let fade = (1.0 - x(i)).powi(2);
            basis.push(u0);
            for n in 1..n_basis {
                let wave = (PI * n as f64 * t).cos() * (PI * (n + 1) as f64 * x(i)).cos();
                basis.push(0.1 * fade * wave);
            }
        }
    }
    let constants = tessera_scenarios::config::DiffusionSorptionParams {
        d: 4e-4,
        ..Default::default()
    };
    let config = tessera_scenarios::config::PdeConfig::DiffusionSorption(constants);
    let pde = AnyPde::from_config(&config, Default::default()).unwrap();
    let split = vec![1, 2];
    let tiling = Tiling::new(grid.shape(), &split).unwrap();
    let points = (0..tiling.n_tiles())
        .map(|k| sample_points(&tiling, k, 40, 3, 0).unwrap())
        .collect();
    let metadata = pde.metadata().unwrap();
    ExternalProblem::new(
        pde,
        metadata,
        grid,
        basis,
        n_basis,
        ic,
        split,
        RowScope::Global,
        points,
    )
    .unwrap()
}

/// `‖r_k(ω)‖₂` from scratch: `u = Bω` on the whole grid, the PDE's terms applied
/// to `u`, its residual at expert `k`'s points, every initial/boundary row and
/// the ridge rows.
fn residual_norm(problem: &ExternalProblem<AnyPde>, k: usize, omega: &[f64]) -> f64 {
    let pde = problem.pde();
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
        pde.residual::<f64>(&zp, &[], &mut out);
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
    let loaded = ExternalProblem::load(&path, resolve);
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
        ExternalProblem::from_bytes(b"not a safetensors file", resolve),
        Err(ProblemFileError::Format { .. })
    ));
    let bytes = small_problem().to_bytes();
    assert!(matches!(
        ExternalProblem::from_bytes(&bytes[..bytes.len() / 2], resolve),
        Err(ProblemFileError::Format { .. })
    ));
    let data = vec![0u8; 8];
    let view = TensorView::new(Dtype::F64, vec![1], &data).unwrap();
    let mut metadata = HashMap::new();
    metadata.insert("split".to_owned(), "1x2".to_owned());
    let no_pde = safetensors::tensor::serialize([("ic", view)], Some(metadata)).unwrap();
    assert!(matches!(
        ExternalProblem::from_bytes(&no_pde, resolve),
        Err(ProblemFileError::Metadata { key: "pde", .. })
    ));
}

/// The PDE's constants travel in the metadata, and entries that contradict
/// each other or the PDE's valid range are rejected by the registry.
#[test]
fn pde_constants_round_trip_and_inconsistent_ones_are_rejected() {
    let problem = small_problem();
    let loaded = ExternalProblem::from_bytes(&problem.to_bytes(), resolve).unwrap();
    assert_eq!(loaded.pde(), problem.pde());
    assert_ne!(
        *loaded.pde(),
        AnyPde::default_of(loaded.pde().kind().unwrap())
    );
    let with_metadata = |edit: &dyn Fn(&mut BTreeMap<String, String>)| {
        let mut metadata = problem.pde_metadata().clone();
        edit(&mut metadata);
        let edited = ExternalProblem::new(
            problem.pde().clone(),
            metadata,
            problem.grid().clone(),
            problem.basis().to_vec(),
            problem.n_basis(),
            problem.ic().to_vec(),
            problem.split().to_vec(),
            problem.row_scope(),
            problem.points().to_vec(),
        )
        .unwrap();
        ExternalProblem::from_bytes(&edited.to_bytes(), resolve)
    };
    let other_kind = with_metadata(&|m| {
        m.insert("pde".into(), "heat".into());
    });
    assert!(
        matches!(other_kind, Err(ProblemFileError::Pde { .. })),
        "{other_kind:?}"
    );
    let negative = with_metadata(&|m| {
        let text = m["pde.constants"].replace("0.0004", "-0.0004");
        m.insert("pde.constants".into(), text);
    });
    assert!(
        matches!(negative, Err(ProblemFileError::Pde { .. })),
        "{negative:?}"
    );
    let unknown = with_metadata(&|m| {
        let text = m["pde.constants"].replace("\"phi\"", "\"psi\"");
        m.insert("pde.constants".into(), text);
    });
    assert!(
        matches!(unknown, Err(ProblemFileError::Pde { .. })),
        "{unknown:?}"
    );
}

#[test]
fn bad_points_and_values_are_typed_errors() {
    let good = small_problem();
    let with_points = |points: Vec<Vec<usize>>| {
        ExternalProblem::new(
            good.pde().clone(),
            good.pde_metadata().clone(),
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
        good.pde().clone(),
        good.pde_metadata().clone(),
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
