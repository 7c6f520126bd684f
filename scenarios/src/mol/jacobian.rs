//! The Jacobian `∂f/∂u` of a [`MolSystem`] by column-coloured finite
//! differences (Curtis, Powell & Reid, "On the estimation of sparse Jacobian
//! matrices", IMA J. Appl. Math. 13, 1974).
//!
//! Why finite differences and not dual numbers: the integrator only needs the
//! Jacobian inside a simplified Newton iteration, where its error changes the
//! convergence rate and never the solution; a coloured difference quotient
//! works for any [`MolSystem`] (ghost points, Dirichlet data, spectral
//! operators, a PDE defined elsewhere) from its right-hand side alone. Columns
//! that share no row get one colour and one perturbed evaluation: a 1-D
//! second-order stencil needs `3·m` evaluations for `m` components, a 2-D one
//! about `5·m`, whatever the grid size.

use crate::mol::{MolError, MolSystem};

/// The relative perturbation (`√ε` of f64).
pub(crate) const SQRT_EPS: f64 = 1.490_116_119_384_765_6e-8;

/// A sparsity pattern with a greedy column colouring.
#[derive(Debug, Clone)]
pub(crate) struct ColouredPattern {
    /// Row → sorted columns (the diagonal always included).
    rows: Vec<Vec<usize>>,
    /// Column → colour.
    colour: Vec<usize>,
    colours: usize,
}

impl ColouredPattern {
    /// The pattern of `system` with the diagonal added, coloured greedily.
    pub fn new<S: MolSystem + ?Sized>(system: &S) -> Result<Self, MolError> {
        let n = system.len();
        let mut rows = system.sparsity();
        if rows.len() != n {
            return Err(MolError::ShapeMismatch {
                what: "sparsity rows",
                expected: vec![n],
                got: vec![rows.len()],
            });
        }
        for (i, row) in rows.iter_mut().enumerate() {
            if row.iter().any(|&j| j >= n) {
                return Err(MolError::ShapeMismatch {
                    what: "sparsity column index (below the number of unknowns)",
                    expected: vec![n],
                    got: vec![row.iter().copied().max().unwrap_or_default()],
                });
            }
            row.push(i);
            row.sort_unstable();
            row.dedup();
        }
        let mut columns = vec![Vec::new(); n];
        for (i, row) in rows.iter().enumerate() {
            for &j in row {
                columns[j].push(i);
            }
        }
        let mut colour = vec![usize::MAX; n];
        let mut colours = 0;
        let mut taken = Vec::new();
        for j in 0..n {
            taken.clear();
            for &i in &columns[j] {
                taken.extend(rows[i].iter().map(|&k| colour[k]));
            }
            let c = (0..).find(|c| !taken.contains(c)).unwrap_or_default();
            colour[j] = c;
            colours = colours.max(c + 1);
        }
        Ok(Self {
            rows,
            colour,
            colours,
        })
    }

    /// Number of colours (perturbed evaluations per Jacobian).
    pub fn colours(&self) -> usize {
        self.colours
    }

    /// The pattern, row → columns.
    pub fn rows(&self) -> &[Vec<usize>] {
        &self.rows
    }

    /// `∂f/∂u` at `(t, u)` given `f0 = f(t, u)`, as values aligned with
    /// [`ColouredPattern::rows`].
    pub fn jacobian<S: MolSystem + ?Sized>(
        &self,
        system: &S,
        t: f64,
        u: &[f64],
        f0: &[f64],
    ) -> Result<Vec<Vec<f64>>, MolError> {
        // √ε relative to the entry, but never below √ε times the state's size:
        // an entry near zero perturbed by √ε·|u_j| would drown the difference
        // quotient in round-off.
        let scale = u.iter().fold(1e-10_f64, |m, v| m.max(v.abs()));
        let delta: Vec<f64> = u.iter().map(|v| SQRT_EPS * v.abs().max(scale)).collect();
        let mut values: Vec<Vec<f64>> = self.rows.iter().map(|r| vec![0.0; r.len()]).collect();
        let mut shifted = u.to_vec();
        let mut f = vec![0.0; u.len()];
        for c in 0..self.colours {
            for (j, v) in shifted.iter_mut().enumerate() {
                *v = if self.colour[j] == c {
                    u[j] + delta[j]
                } else {
                    u[j]
                };
            }
            system.rhs(t, &shifted, &mut f)?;
            for (i, row) in self.rows.iter().enumerate() {
                for (k, &j) in row.iter().enumerate() {
                    if self.colour[j] == c {
                        values[i][k] = (f[i] - f0[i]) / delta[j];
                    }
                }
            }
        }
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `f_i = u_{i−1} − 2u_i + u_{i+1} + u_i² u_{i+1}` on a ring of `n`.
    struct Ring(usize);

    impl MolSystem for Ring {
        fn len(&self) -> usize {
            self.0
        }
        fn rhs(&self, _: f64, u: &[f64], du: &mut [f64]) -> Result<(), MolError> {
            let n = self.0;
            for i in 0..n {
                let (l, r) = (u[(i + n - 1) % n], u[(i + 1) % n]);
                du[i] = l - 2.0 * u[i] + r + u[i] * u[i] * r;
            }
            Ok(())
        }
        fn sparsity(&self) -> Vec<Vec<usize>> {
            let n = self.0;
            (0..n)
                .map(|i| {
                    let mut row = vec![(i + n - 1) % n, (i + 1) % n];
                    row.sort_unstable();
                    row
                })
                .collect()
        }
    }

    #[test]
    fn coloured_differences_match_the_analytic_jacobian() {
        let n = 12;
        let ring = Ring(n);
        let pattern = ColouredPattern::new(&ring).unwrap();
        // Columns within distance 2 share a row; on a ring whose length is a
        // multiple of 3 the colours 0, 1, 2, 0, 1, 2, … are proper.
        assert_eq!(pattern.colours(), 3);
        let u: Vec<f64> = (0..n).map(|i| (i as f64 * 0.7).sin()).collect();
        let mut f0 = vec![0.0; n];
        ring.rhs(0.0, &u, &mut f0).unwrap();
        let values = pattern.jacobian(&ring, 0.0, &u, &f0).unwrap();
        for (i, (cols, vals)) in pattern.rows().iter().zip(&values).enumerate() {
            assert_eq!(cols.len(), 3);
            for (&j, &v) in cols.iter().zip(vals) {
                let r = (i + 1) % n;
                let exact = if j == i {
                    -2.0 + 2.0 * u[i] * u[r]
                } else if j == r {
                    1.0 + u[i] * u[i]
                } else {
                    1.0
                };
                assert!((v - exact).abs() < 1e-6, "({i}, {j}): {v} vs {exact}");
            }
        }
    }

    #[test]
    fn a_pattern_naming_a_missing_unknown_is_rejected() {
        struct Bad;
        impl MolSystem for Bad {
            fn len(&self) -> usize {
                2
            }
            fn rhs(&self, _: f64, _: &[f64], _: &mut [f64]) -> Result<(), MolError> {
                Ok(())
            }
            fn sparsity(&self) -> Vec<Vec<usize>> {
                vec![vec![0], vec![5]]
            }
        }
        assert!(matches!(
            ColouredPattern::new(&Bad),
            Err(MolError::ShapeMismatch { .. })
        ));
    }
}
