//! The SDIRK stage matrix `I − hγJ`, factorised once per step attempt, or
//! applied through a Jacobian operator and solved by GMRES.
//!
//! Why three forms: a difference stencil couples a handful of neighbours,
//! so `J` is sparse and faer's sparse LU (its symbolic analysis done once per
//! integration) is the right tool; a spectral operator couples every point
//! of a line, so a 1-D spectral system's `J` is full, and there a sparse LU
//! spends its time assembling and transposing index structures around a
//! dense factorisation (a 128-point Korteweg–de Vries trajectory spent most
//! of its time there). A pattern with at least a quarter of its entries set
//! is factorised densely, sequentially: the systems are small and the
//! datasets' samples already run in parallel. A system that applies its
//! Jacobian as an operator ([`MolSystem::jacobian_operator`]: a 2-D spectral
//! discretisation, whose LU fills in, or a long 1-D spectral line) has its
//! stage systems solved by GMRES with the operator's preconditioner, to a
//! relative residual of
//! `GMRES_TOLERANCE` = 1e-10, so that the Newton iterations and the error
//! estimate see what a factorisation would give them.
//!
//! The sparse matrix's column structure is built once from the pattern, with
//! each pattern entry's place in it, so a step only writes values. A
//! numerically singular matrix is not an error here: its solves come out
//! non-finite, which fails the step's Newton iteration, and the integrator
//! cuts the step (a smaller `h` moves `I − hγJ` towards `I`); so is a GMRES
//! solve that ends above `GMRES_ACCEPT` = 1e-6.
//!
//! [`MolSystem::jacobian_operator`]: crate::mol::MolSystem::jacobian_operator

use std::sync::Arc;

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::lu::partial_pivoting::{factor, solve};
use faer::linalg::solvers::Solve;
use faer::perm::PermRef;
use faer::sparse::linalg::solvers::{Lu, SymbolicLu};
use faer::sparse::{SparseColMatRef, SymbolicSparseColMat};
use faer::{Mat, MatMut, Par};

use crate::mol::gmres::{GmresSettings, gmres};
use crate::mol::{JacobianOperator, MolError};

/// The densest pattern (as a fraction of `n²`) still factorised as sparse.
const DENSE_FROM: f64 = 0.25;
/// GMRES stops at this relative residual.
const GMRES_TOLERANCE: f64 = 1e-10;
/// A GMRES solve that stopped above this relative residual (out of
/// iterations, or stalled in round-off) counts as failed.
const GMRES_ACCEPT: f64 = 1e-6;
/// GMRES: Krylov vectors per cycle and iterations per solve.
const GMRES_RESTART: usize = 30;
const GMRES_MAX_ITERATIONS: usize = 150;

/// What stays fixed between factorisations: the pattern and how it is stored.
pub(crate) struct StageFactoriser {
    rows: Vec<Vec<usize>>,
    storage: Storage,
}

enum Storage {
    Dense,
    Sparse {
        structure: SymbolicSparseColMat<usize>,
        /// Row `i`'s `k`-th pattern entry's place among the column-major values.
        places: Vec<Vec<usize>>,
        symbolic: SymbolicLu<usize>,
    },
}

/// `I − hγJ` factorised, or applied.
pub(crate) enum StageMatrix<'s> {
    Dense {
        /// `L` below the diagonal (unit diagonal implied), `U` on and above.
        lu: Mat<f64>,
        forward: Vec<usize>,
        inverse: Vec<usize>,
    },
    Sparse(Box<Lu<usize, f64>>),
    Krylov {
        jacobian: Arc<dyn JacobianOperator + 's>,
        hg: f64,
    },
}

impl StageFactoriser {
    /// The storage for a pattern (row → sorted columns, diagonal included);
    /// `t` names the integration's start in an error.
    pub fn new(rows: &[Vec<usize>], t: f64) -> Result<Self, MolError> {
        let n = rows.len();
        let entries: usize = rows.iter().map(Vec::len).sum();
        let storage = if entries as f64 >= DENSE_FROM * (n * n) as f64 {
            Storage::Dense
        } else {
            let mut columns = vec![Vec::new(); n];
            for (i, row) in rows.iter().enumerate() {
                for (k, &j) in row.iter().enumerate() {
                    columns[j].push((i, k));
                }
            }
            let mut col_ptr = Vec::with_capacity(n + 1);
            let mut row_idx = Vec::with_capacity(entries);
            let mut places: Vec<Vec<usize>> = rows.iter().map(|r| vec![0; r.len()]).collect();
            col_ptr.push(0);
            for column in &columns {
                // Rows were visited in order, so each column's rows are sorted.
                for &(i, k) in column {
                    places[i][k] = row_idx.len();
                    row_idx.push(i);
                }
                col_ptr.push(row_idx.len());
            }
            let structure = SymbolicSparseColMat::new_checked(n, n, col_ptr, None, row_idx);
            let symbolic =
                SymbolicLu::try_new(structure.as_ref()).map_err(|e| MolError::LinearSolve {
                    t,
                    reason: format!("symbolic analysis: {e:?}"),
                })?;
            Storage::Sparse {
                structure,
                places,
                symbolic,
            }
        };
        Ok(Self {
            rows: rows.to_vec(),
            storage,
        })
    }

    /// `I − hγJ` factorised, `jacobian` aligned with the pattern's rows; `t`
    /// names the state in an error.
    pub fn factorise(
        &self,
        hg: f64,
        jacobian: &[Vec<f64>],
        t: f64,
    ) -> Result<StageMatrix<'static>, MolError> {
        let failed = |reason: String| MolError::LinearSolve { t, reason };
        let n = self.rows.len();
        let entry = |i: usize, j: usize, v: f64| f64::from(i == j) - hg * v;
        match &self.storage {
            Storage::Dense => {
                let mut lu = Mat::<f64>::identity(n, n);
                for (i, (cols, vals)) in self.rows.iter().zip(jacobian).enumerate() {
                    for (&j, &v) in cols.iter().zip(vals) {
                        lu[(i, j)] = entry(i, j, v);
                    }
                }
                let mut forward = vec![0; n];
                let mut inverse = vec![0; n];
                let scratch =
                    factor::lu_in_place_scratch::<usize, f64>(n, n, Par::Seq, Default::default());
                factor::lu_in_place(
                    lu.as_mut(),
                    &mut forward,
                    &mut inverse,
                    Par::Seq,
                    MemStack::new(&mut MemBuffer::new(scratch)),
                    Default::default(),
                );
                Ok(StageMatrix::Dense {
                    lu,
                    forward,
                    inverse,
                })
            }
            Storage::Sparse {
                structure,
                places,
                symbolic,
            } => {
                let mut values = vec![0.0; structure.row_idx().len()];
                for (i, ((cols, vals), places)) in
                    self.rows.iter().zip(jacobian).zip(places).enumerate()
                {
                    for ((&j, &v), &p) in cols.iter().zip(vals).zip(places) {
                        values[p] = entry(i, j, v);
                    }
                }
                let matrix = SparseColMatRef::new(structure.as_ref(), &values);
                Lu::try_new_with_symbolic(symbolic.clone(), matrix)
                    .map(|lu| StageMatrix::Sparse(Box::new(lu)))
                    .map_err(|e| failed(format!("{e:?}")))
            }
        }
    }
}

impl StageMatrix<'_> {
    /// Overwrites the column `rhs` with `(I − hγJ)⁻¹ rhs` and returns the
    /// GMRES iterations spent (0 for a factorisation).
    pub fn solve_in_place(&self, mut rhs: MatMut<'_, f64>) -> usize {
        match self {
            Self::Dense {
                lu,
                forward,
                inverse,
            } => {
                let n = lu.nrows();
                // SAFETY: `lu_in_place` wrote `forward` and `inverse` as a
                // permutation of 0..n and its inverse.
                let perm = unsafe { PermRef::new_unchecked(forward, inverse, n) };
                let scratch = solve::solve_in_place_scratch::<usize, f64>(n, 1, Par::Seq);
                solve::solve_in_place(
                    lu.as_ref(),
                    lu.as_ref(),
                    perm,
                    rhs,
                    Par::Seq,
                    MemStack::new(&mut MemBuffer::new(scratch)),
                );
                0
            }
            Self::Sparse(lu) => {
                lu.solve_in_place(rhs);
                0
            }
            Self::Krylov { jacobian, hg } => {
                let b: Vec<f64> = (0..rhs.nrows()).map(|i| rhs[(i, 0)]).collect();
                let mut x = vec![0.0; b.len()];
                let settings = GmresSettings {
                    tolerance: GMRES_TOLERANCE,
                    restart: GMRES_RESTART,
                    max_iterations: GMRES_MAX_ITERATIONS,
                };
                let stage = |v: &[f64], out: &mut [f64]| {
                    jacobian.apply(v, out);
                    for (o, vi) in out.iter_mut().zip(v) {
                        *o = vi - hg * *o;
                    }
                };
                let outcome = gmres(
                    stage,
                    |v| jacobian.precondition(*hg, v),
                    &b,
                    &mut x,
                    &settings,
                );
                let accepted = outcome.relative_residual <= GMRES_ACCEPT;
                for (i, v) in x.into_iter().enumerate() {
                    rhs[(i, 0)] = if accepted { v } else { f64::NAN };
                }
                outcome.iterations
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A diagonally dominant `J`-pattern of bandwidth `b` on `n` unknowns.
    fn banded(n: usize, b: usize) -> (Vec<Vec<usize>>, Vec<Vec<f64>>) {
        let rows: Vec<Vec<usize>> = (0..n)
            .map(|i| (i.saturating_sub(b)..(i + b + 1).min(n)).collect())
            .collect();
        let values = rows
            .iter()
            .enumerate()
            .map(|(i, cols)| {
                cols.iter()
                    .map(|&j| ((i * 7 + j * 3) % 11) as f64 / 11.0 - 0.5)
                    .collect()
            })
            .collect();
        (rows, values)
    }

    /// Solves `(I − hγJ) x = r` and returns the residual's largest entry,
    /// formed from the pattern (independently of either factorisation).
    fn residual_after_solve(n: usize, b: usize) -> (f64, bool) {
        let (rows, jacobian) = banded(n, b);
        let hg = 0.3;
        let factoriser = StageFactoriser::new(&rows, 0.0).unwrap();
        let dense = matches!(factoriser.storage, Storage::Dense);
        let matrix = factoriser.factorise(hg, &jacobian, 0.0).unwrap();
        let r: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).cos()).collect();
        let mut x = Mat::<f64>::from_fn(n, 1, |i, _| r[i]);
        matrix.solve_in_place(x.as_mut());
        let worst = rows
            .iter()
            .zip(&jacobian)
            .enumerate()
            .map(|(i, (cols, vals))| {
                let ax: f64 = cols
                    .iter()
                    .zip(vals)
                    .map(|(&j, &v)| (f64::from(i == j) - hg * v) * x[(j, 0)])
                    .sum();
                (ax - r[i]).abs()
            })
            .fold(0.0, f64::max);
        (worst, dense)
    }

    #[test]
    fn a_full_pattern_is_solved_densely() {
        let (residual, dense) = residual_after_solve(40, 40);
        assert!(dense);
        assert!(residual < 1e-13, "residual {residual}");
    }

    #[test]
    fn a_banded_pattern_is_solved_sparsely() {
        let (residual, dense) = residual_after_solve(200, 2);
        assert!(!dense);
        assert!(residual < 1e-13, "residual {residual}");
    }

    /// `J = diag(d)`, applied; its preconditioner is the identity, or the
    /// stage matrix's exact inverse.
    struct Diagonal {
        d: Vec<f64>,
        exact: bool,
    }

    impl JacobianOperator for Diagonal {
        fn apply(&self, x: &[f64], out: &mut [f64]) {
            for ((o, x), d) in out.iter_mut().zip(x).zip(&self.d) {
                *o = d * x;
            }
        }

        fn precondition(&self, hg: f64, x: &mut [f64]) {
            if self.exact {
                for (x, d) in x.iter_mut().zip(&self.d) {
                    *x /= 1.0 - hg * d;
                }
            }
        }
    }

    fn krylov_solve(d: Vec<f64>, exact: bool, hg: f64, rhs: &[f64]) -> (Vec<f64>, usize) {
        let matrix = StageMatrix::Krylov {
            jacobian: Arc::new(Diagonal { d, exact }),
            hg,
        };
        let mut x = Mat::<f64>::from_fn(rhs.len(), 1, |i, _| rhs[i]);
        let iterations = matrix.solve_in_place(x.as_mut());
        ((0..rhs.len()).map(|i| x[(i, 0)]).collect(), iterations)
    }

    #[test]
    fn an_operator_solves_by_gmres_with_or_without_its_preconditioner() {
        let n = 50;
        let d: Vec<f64> = (0..n).map(|i| -(i as f64) * 0.7 - 0.1).collect();
        let rhs: Vec<f64> = (0..n).map(|i| (i as f64 * 0.4).sin()).collect();
        let hg = 0.3;
        for exact in [true, false] {
            let (x, iterations) = krylov_solve(d.clone(), exact, hg, &rhs);
            let worst = (0..n)
                .map(|i| (x[i] * (1.0 - hg * d[i]) - rhs[i]).abs())
                .fold(0.0, f64::max);
            assert!(worst < 1e-9, "exact {exact}: {worst:e}");
            // The exact inverse: one iteration; the identity: several.
            assert_eq!(iterations == 1, exact, "{iterations}");
        }
    }

    #[test]
    fn an_operator_whose_stage_matrix_is_singular_solves_to_non_finite_values() {
        // J = I/(hγ): I − hγJ = 0, GMRES breaks down at once; the step is
        // then cut as for a singular factorisation.
        let hg = 0.5;
        let (x, _) = krylov_solve(vec![2.0; 4], false, hg, &[1.0, 2.0, 3.0, 4.0]);
        assert!(x.iter().all(|v| v.is_nan()), "{x:?}");
    }

    #[test]
    fn a_singular_dense_matrix_solves_to_non_finite_values() {
        // J = I/(hγ) makes I − hγJ zero: the Newton iteration sees the
        // non-finite update and the step is cut.
        let n = 3;
        let rows: Vec<Vec<usize>> = (0..n).map(|_| (0..n).collect()).collect();
        let jacobian: Vec<Vec<f64>> = (0..n)
            .map(|i| (0..n).map(|j| if i == j { 2.0 } else { 0.0 }).collect())
            .collect();
        let factoriser = StageFactoriser::new(&rows, 0.0).unwrap();
        assert!(matches!(factoriser.storage, Storage::Dense));
        let matrix = factoriser.factorise(0.5, &jacobian, 0.0).unwrap();
        let mut x = Mat::<f64>::from_fn(n, 1, |i, _| 1.0 + i as f64);
        matrix.solve_in_place(x.as_mut());
        assert!((0..n).any(|i| !x[(i, 0)].is_finite()), "{x:?}");
    }
}
