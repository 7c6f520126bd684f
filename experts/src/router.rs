//! The router: a tensor-product tile split of the grid, `P` points sampled per
//! expert, and the gather of each expert's rows from the full-grid terms (with
//! its exact adjoint, the scatter of the rows' gradients back).
//!
//! **Linear rows.** [`RowScope::Global`] (the default) gives every expert all the
//! initial/boundary-condition rows of the sample, as the reference does (each
//! expert gets the global IC and both BC tensors): every expert's `ω_k` then
//! fits the IC and BC on the whole domain in a least-squares sense, which keeps the
//! experts' solutions consistent with the data even on tiles that never touch the
//! boundary. [`RowScope::Local`] keeps only the rows whose point lies in the
//! expert's tile: cheaper, and each expert answers only for its own boundary.

use tessera_constraints::{ExpertProblem, LinearRow, ProblemGradient, ProblemSize};
use tessera_meshes::{Shape, Tiling, sample_points};

use crate::{ExpertsError, TermFields};

/// Which linear rows an expert receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RowScope {
    /// All rows of the sample, for every expert (the reference's choice).
    #[default]
    Global,
    /// Only the rows whose point lies in the expert's tile.
    Local,
}

/// The tile split and the sampling rule of a mixture of experts.
#[derive(Debug, Clone, PartialEq)]
pub struct Router {
    tiling: Tiling,
    points_per_expert: usize,
    seed: u64,
    row_scope: RowScope,
}

impl Router {
    /// A router splitting `shape` by `split` (`[s_t, s_x, (s_y)]`), sampling
    /// `points_per_expert` points per tile from `seed`.
    ///
    /// Errors: a bad split (from the mesh layer), zero points, or more points
    /// than the smallest tile holds.
    pub fn new(
        shape: &Shape,
        split: &[usize],
        points_per_expert: usize,
        seed: u64,
        row_scope: RowScope,
    ) -> Result<Self, ExpertsError> {
        let tiling = Tiling::new(shape, split)?;
        if points_per_expert == 0 {
            return Err(ExpertsError::TooSmall {
                what: "points per expert",
                min: 1,
                got: 0,
            });
        }
        if let Some(k) =
            (0..tiling.n_tiles()).find(|&k| tiling.tile_points(k).len() < points_per_expert)
        {
            return Err(tessera_meshes::MeshError::TooManySamples {
                tile: k,
                requested: points_per_expert,
                available: tiling.tile_points(k).len(),
            }
            .into());
        }
        Ok(Self {
            tiling,
            points_per_expert,
            seed,
            row_scope,
        })
    }

    /// The tile partition.
    pub fn tiling(&self) -> &Tiling {
        &self.tiling
    }

    /// Number of experts `K`.
    pub fn n_experts(&self) -> usize {
        self.tiling.n_tiles()
    }

    /// Points per expert `P`.
    pub fn points_per_expert(&self) -> usize {
        self.points_per_expert
    }

    /// The linear-row scope.
    pub fn row_scope(&self) -> RowScope {
        self.row_scope
    }

    /// Expert `k`'s sampled points for `stream` (sorted flat grid indices; the
    /// same `(seed, stream, k)` always gives the same points).
    pub fn sample(&self, expert: usize, stream: u64) -> Result<Vec<usize>, ExpertsError> {
        Ok(sample_points(
            &self.tiling,
            expert,
            self.points_per_expert,
            self.seed,
            stream,
        )?)
    }

    /// Indices (into `rows`) of the linear rows expert `k` receives.
    pub fn rows_for(&self, expert: usize, rows: &[LinearRow]) -> Vec<usize> {
        match self.row_scope {
            RowScope::Global => (0..rows.len()).collect(),
            RowScope::Local => (0..rows.len())
                .filter(|&i| self.tiling.tile_of(rows[i].point) == expert)
                .collect(),
        }
    }
}

/// Checks that every row refers to an existing point and term.
pub fn check_rows(rows: &[LinearRow], n_points: usize, n_terms: usize) -> Result<(), ExpertsError> {
    for row in rows {
        if row.point >= n_points {
            return Err(tessera_constraints::ConstraintError::IndexOutOfRange {
                what: "linear-row point",
                index: row.point,
                len: n_points,
            }
            .into());
        }
        if let Some(&(j, _)) = row.coeffs.iter().find(|(j, _)| *j >= n_terms) {
            return Err(tessera_constraints::ConstraintError::IndexOutOfRange {
                what: "linear-row term",
                index: j,
                len: n_terms,
            }
            .into());
        }
    }
    Ok(())
}

/// One expert's problem gathered from the full-grid `terms` at `points`, with
/// the linear rows `rows` (`Σ_j c_j z_j(point) − rhs`, so `L = Σ_j c_j A_j[point]`
/// and `c = rhs − Σ_j c_j b_j[point]`).
///
/// Errors: rows referring to missing points or terms (see [`check_rows`]) and
/// problem-shape errors.
pub fn gather(
    terms: &TermFields,
    points: &[usize],
    rows: &[&LinearRow],
    n_equations: usize,
    ridge: f64,
) -> Result<ExpertProblem, ExpertsError> {
    let (d, n) = (terms.n_terms(), terms.n_basis());
    if let Some(&bad) = points.iter().find(|&&p| p >= terms.n_points()) {
        return Err(tessera_constraints::ConstraintError::IndexOutOfRange {
            what: "sampled point",
            index: bad,
            len: terms.n_points(),
        }
        .into());
    }
    for row in rows {
        check_rows(std::slice::from_ref(*row), terms.n_points(), d)?;
    }
    let mut term_rows = vec![0.0; points.len() * d * n];
    let mut offsets = vec![0.0; points.len() * d];
    for ((&p, out), b) in points
        .iter()
        .zip(term_rows.chunks_exact_mut(d * n))
        .zip(offsets.chunks_exact_mut(d))
    {
        for (j, (o, bj)) in out.chunks_exact_mut(n).zip(b.iter_mut()).enumerate() {
            o.copy_from_slice(&terms.values(j)[p * n..(p + 1) * n]);
            *bj = terms.offsets(j)[p];
        }
    }
    let mut linear = vec![0.0; rows.len() * n];
    let mut linear_rhs = vec![0.0; rows.len()];
    for ((row, out), c) in rows
        .iter()
        .zip(linear.chunks_exact_mut(n))
        .zip(&mut linear_rhs)
    {
        *c = row.rhs;
        for &(j, coeff) in &row.coeffs {
            let a = &terms.values(j)[row.point * n..(row.point + 1) * n];
            for (o, x) in out.iter_mut().zip(a) {
                *o += coeff * x;
            }
            *c -= coeff * terms.offsets(j)[row.point];
        }
    }
    let size = ProblemSize {
        n_basis: n,
        n_terms: d,
        n_equations,
    };
    Ok(ExpertProblem::new(
        size, term_rows, offsets, linear, linear_rhs, ridge,
    )?)
}

/// The adjoint of [`gather`]: adds one expert's problem gradient into the
/// full-grid term-field gradients (`into`), for the same `points` and `rows`.
///
/// # Panics
/// If the gradient's layout does not match `points`, `rows` and `into` (it must
/// come from the problem [`gather`] built with them).
#[track_caller]
pub fn scatter(
    gradient: &ProblemGradient,
    points: &[usize],
    rows: &[&LinearRow],
    into: &mut TermFields,
) {
    let (d, n) = (into.n_terms(), into.n_basis());
    assert_eq!(
        gradient.term_rows.len(),
        points.len() * d * n,
        "term-row gradient layout"
    );
    assert_eq!(
        gradient.linear_rhs.len(),
        rows.len(),
        "linear-row gradient layout"
    );
    for j in 0..d {
        let (values, offsets) = into.fields_mut(j);
        for ((&p, g), b) in points
            .iter()
            .zip(gradient.term_rows.chunks_exact(d * n))
            .zip(gradient.offsets.chunks_exact(d))
        {
            for (v, x) in values[p * n..(p + 1) * n]
                .iter_mut()
                .zip(&g[j * n..(j + 1) * n])
            {
                *v += x;
            }
            offsets[p] += b[j];
        }
        for ((row, l_bar), &c_bar) in rows
            .iter()
            .zip(gradient.linear.chunks_exact(n))
            .zip(&gradient.linear_rhs)
        {
            for &(_, coeff) in row.coeffs.iter().filter(|(jj, _)| *jj == j) {
                for (v, x) in values[row.point * n..(row.point + 1) * n]
                    .iter_mut()
                    .zip(l_bar)
                {
                    *v += coeff * x;
                }
                offsets[row.point] -= coeff * c_bar;
            }
        }
    }
}
