//! The PDE's terms of one sample on the full grid: `A_j = D_j S B` (one field of
//! `N` channels per term) and the affine offsets `b_j = D_j s₀`.
//!
//! They are computed once per sample on the whole grid (the operators are global:
//! a derivative at a tile's edge needs its neighbours in the next tile) and then
//! gathered at each expert's points by the router. Their gradients live in the
//! same type, and [`TermFields::pull_back`] applies the adjoints `Σ_j D_jᵀ Ā_j`.
//! The terms' operators run in parallel (in the caller's rayon pool): with a
//! batch of one, these full-grid passes would otherwise hold a single core.

use rayon::prelude::*;
use tessera_constraints::Term;

use crate::ExpertsError;

/// `d` term fields `[grid points, N]` and `d` offset fields `[grid points]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TermFields {
    n_basis: usize,
    n_points: usize,
    values: Vec<Vec<f64>>,
    offsets: Vec<Vec<f64>>,
}

impl TermFields {
    /// Term fields from their parts: `values[j]` is `[n_points, n_basis]`,
    /// `offsets[j]` is `[n_points]`.
    pub fn new(
        n_basis: usize,
        n_points: usize,
        values: Vec<Vec<f64>>,
        offsets: Vec<Vec<f64>>,
    ) -> Result<Self, ExpertsError> {
        if values.len() != offsets.len() {
            return Err(ExpertsError::ShapeMismatch {
                what: "number of offset fields",
                expected: vec![values.len()],
                got: vec![offsets.len()],
            });
        }
        for (v, b) in values.iter().zip(&offsets) {
            if v.len() != n_points * n_basis || b.len() != n_points {
                return Err(ExpertsError::ShapeMismatch {
                    what: "term field [points, N] and offset [points]",
                    expected: vec![n_points * n_basis, n_points],
                    got: vec![v.len(), b.len()],
                });
            }
        }
        Ok(Self {
            n_basis,
            n_points,
            values,
            offsets,
        })
    }

    /// All-zero fields (the accumulator of a backward pass).
    pub fn zeros(n_terms: usize, n_points: usize, n_basis: usize) -> Self {
        Self {
            n_basis,
            n_points,
            values: vec![vec![0.0; n_points * n_basis]; n_terms],
            offsets: vec![vec![0.0; n_points]; n_terms],
        }
    }

    /// `A_j = D_j · solution` for every term (`solution` is `S B`, `[points, N]`)
    /// and `b_j = D_j s₀` (zero without an offset).
    ///
    /// # Panics
    /// If `solution` or `offset` do not match the operators' shape (the caller
    /// validates user input first).
    #[track_caller]
    pub fn from_solution(
        terms: &[Term],
        solution: &[f64],
        n_basis: usize,
        offset: Option<&[f64]>,
    ) -> Self {
        let n_points = solution.len() / n_basis;
        let values = terms
            .par_iter()
            .with_max_len(1)
            .map(|t| {
                let mut out = vec![0.0; solution.len()];
                t.operator.apply(solution, n_basis, &mut out);
                out
            })
            .collect();
        let offsets = terms
            .iter()
            .map(|t| {
                let mut out = vec![0.0; n_points];
                if let Some(s0) = offset {
                    t.operator.apply(s0, 1, &mut out);
                }
                out
            })
            .collect();
        Self {
            n_basis,
            n_points,
            values,
            offsets,
        }
    }

    /// Number of basis functions `N`.
    pub fn n_basis(&self) -> usize {
        self.n_basis
    }

    /// Number of grid points.
    pub fn n_points(&self) -> usize {
        self.n_points
    }

    /// Number of terms `d`.
    pub fn n_terms(&self) -> usize {
        self.values.len()
    }

    /// Term field `j`, `[points, N]`.
    ///
    /// # Panics
    /// If `j >= n_terms()`.
    #[track_caller]
    pub fn values(&self, j: usize) -> &[f64] {
        &self.values[j]
    }

    /// Offset field `j`, `[points]`.
    ///
    /// # Panics
    /// If `j >= n_terms()`.
    #[track_caller]
    pub fn offsets(&self, j: usize) -> &[f64] {
        &self.offsets[j]
    }

    /// Mutable term and offset fields of term `j` (for scatters).
    ///
    /// # Panics
    /// If `j >= n_terms()`.
    #[track_caller]
    pub fn fields_mut(&mut self, j: usize) -> (&mut [f64], &mut [f64]) {
        (&mut self.values[j], &mut self.offsets[j])
    }

    /// `Σ_j D_jᵀ values_j`, `[points, N]`: the gradient with respect to `S B` of
    /// term-field gradients (offsets do not depend on the basis).
    ///
    /// # Panics
    /// If `terms` does not match these fields.
    #[track_caller]
    pub fn pull_back(&self, terms: &[Term]) -> Vec<f64> {
        assert_eq!(terms.len(), self.n_terms(), "one operator per term field");
        let len = self.n_points * self.n_basis;
        let pulled: Vec<Vec<f64>> = terms
            .par_iter()
            .zip(&self.values)
            .with_max_len(1)
            .map(|(t, v)| {
                let mut out = vec![0.0; len];
                t.operator.apply_adjoint(v, self.n_basis, &mut out);
                out
            })
            .collect();
        // Summed in term order after the parallel part: the same additions in
        // the same order for any number of threads.
        let mut total = vec![0.0; len];
        for field in &pulled {
            for (o, p) in total.iter_mut().zip(field) {
                *o += p;
            }
        }
        total
    }
}
