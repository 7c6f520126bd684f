//! The PDE's terms of one sample, evaluated only where the experts read them:
//! `A_j = D_j S B` and the offsets `b_j = D_j s₀` at each expert's sampled points
//! (the problem's term rows), and at the linear rows' points.
//!
//! Why not on the full grid: an expert's problem needs its `P` points only, and
//! building `d` full-grid fields of `N` channels and then copying rows out of them
//! moved far more memory than the rows themselves. A local operator (a stencil,
//! see [`LinearOperator::is_local`]) is evaluated at the points directly, straight
//! into the problem's interleaved `[P, d_r, N]` buffer. A non-local one (spectral)
//! is evaluated once per sample at every expert's points together, by its own
//! [`LinearOperator::apply_at`] (a spectral operator keeps one block of the
//! field at a time), and each expert's rows are copied from there: no term
//! becomes a full-grid field of `N` channels.
//!
//! Only the first `d_r` terms ([`tessera_constraints::Pde::residual_terms`]) enter
//! the pointwise residual and are stored per point; the later ones only enter
//! linear rows. The linear rows are the same for every expert of a sample (each
//! gets all of them or the ones in its tile), so they are evaluated once per sample.

use std::ops::Deref;
use std::sync::Arc;

use rayon::prelude::*;
#[cfg(feature = "cuda")]
use tessera_constraints::gpu::GatheredProblem;
use tessera_constraints::{ConstraintError, ExpertProblem, LinearRow, ProblemSize, Term};
use tessera_meshes::LinearOperator;
use tessera_meshes::buffer_pool::{BufferPool, Pooled};

use crate::{ExpertsError, POINTS_PER_TASK};

/// A sample's field: read where it lies, or computed into a pool's buffer.
#[derive(Debug)]
pub(crate) enum Field<'a> {
    Borrowed(&'a [f64]),
    Pooled(Pooled<f64>),
}

impl Deref for Field<'_> {
    type Target = [f64];

    fn deref(&self) -> &[f64] {
        match self {
            Field::Borrowed(values) => values,
            Field::Pooled(field) => field,
        }
    }
}

/// Where one term's values at the sample's points come from.
enum Source<'a> {
    /// A local operator and its input, evaluated at the points themselves.
    Local {
        operator: &'a dyn LinearOperator,
        input: &'a [f64],
    },
    /// A non-local operator's rows at every point of the sample's
    /// [`PointSets`], in their order, `[points, channels]`: computed once.
    Gathered(Pooled<f64>),
}

impl<'a> Source<'a> {
    /// `operator · input` as a source: evaluated lazily when local, at all of
    /// `points` now otherwise (in a buffer of `pool`, if given).
    fn new(
        operator: &'a dyn LinearOperator,
        input: &'a [f64],
        channels: usize,
        points: &PointSets,
        pool: Option<&Arc<BufferPool<f64>>>,
    ) -> Self {
        if operator.is_local() {
            return Source::Local { operator, input };
        }
        let len = points.all.len() * channels;
        // `apply_at` writes every row at a stride of `channels`: no zeroing.
        let mut rows = match pool {
            Some(pool) => pool.recycled(len),
            None => Pooled::fresh(len),
        };
        operator.apply_at(input, channels, &points.all, &mut rows, channels);
        Source::Gathered(rows)
    }

    /// The values at `points` into `out[i * stride ..]` (as
    /// [`LinearOperator::apply_at`]); `points` lie at `first..` of the
    /// sample's point sets.
    fn write(
        &self,
        channels: usize,
        points: &[usize],
        first: usize,
        out: &mut [f64],
        stride: usize,
    ) {
        match self {
            Source::Local { operator, input } => {
                operator.apply_at(input, channels, points, out, stride);
            }
            Source::Gathered(rows) => {
                let rows = rows[first * channels..].chunks_exact(channels);
                for (dst, row) in out.chunks_mut(stride).zip(rows.take(points.len())) {
                    dst[..channels].copy_from_slice(row);
                }
            }
        }
    }
}

/// The points a sample's terms are read at: each expert's sampled points, then
/// the points of the sample's linear rows, concatenated.
struct PointSets {
    all: Vec<usize>,
    /// Where each set starts in `all`, and `all.len()` last.
    starts: Vec<usize>,
}

impl PointSets {
    /// The experts' `sets` and the rows' points as the last set.
    fn new(sets: &[&[usize]], rows: &[LinearRow]) -> Self {
        let mut all = Vec::with_capacity(sets.iter().map(|s| s.len()).sum::<usize>() + rows.len());
        let mut starts = vec![0];
        for set in sets {
            all.extend_from_slice(set);
            starts.push(all.len());
        }
        all.extend(rows.iter().map(|r| r.point));
        starts.push(all.len());
        Self { all, starts }
    }

    /// Number of sets, the rows' included.
    fn len(&self) -> usize {
        self.starts.len() - 1
    }

    /// Set `k`'s points and where they start in `all`.
    fn set(&self, k: usize) -> (&[usize], usize) {
        let (start, end) = (self.starts[k], self.starts[k + 1]);
        (&self.all[start..end], start)
    }
}

/// One term's sources: its values `A_j` (`N` channels) and, with an offset, `b_j`.
struct TermSources<'a> {
    values: Source<'a>,
    offsets: Option<Source<'a>>,
}

/// One sample's terms, ready to build each expert's problem at its points.
pub struct SampleTerms<'a> {
    n_basis: usize,
    /// The experts' point sets, then the linear rows' points.
    points: PointSets,
    /// The first `d_r` terms' sources (what the term rows hold).
    residual: Vec<TermSources<'a>>,
    /// Every linear row of the sample: `L = Σ_j c_j A_j[point]`, `[R, N]`.
    linear: Vec<f64>,
    /// `c = rhs − Σ_j c_j b_j[point]`, `[R]`.
    linear_rhs: Vec<f64>,
}

impl<'a> SampleTerms<'a> {
    /// The terms of one sample whose solution is `solution = S B` (`[grid points,
    /// N]`, `N = n_basis`) with offset `s₀ = offset` (`[grid points]`, or `None`),
    /// of which the first `n_residual` enter the residual, for the problems of
    /// the experts' point sets `points` (flat grid indices; expert `k`'s problem
    /// is [`SampleTerms::problem`]`(k, …)`), and the sample's linear `rows`
    /// evaluated at once. Non-local terms are evaluated at every set's points
    /// here, in parallel over terms.
    ///
    /// Errors: `n_residual` outside `1..=terms.len()`, a `solution` or `offset`
    /// that does not fit the terms' grid, a point outside the grid, rows
    /// referring to missing points or terms.
    pub fn new(
        terms: &'a [Term],
        n_residual: usize,
        solution: &'a [f64],
        n_basis: usize,
        offset: Option<&'a [f64]>,
        rows: &[LinearRow],
        points: &[&[usize]],
    ) -> Result<Self, ExpertsError> {
        Self::with_pool(
            terms, n_residual, solution, n_basis, offset, rows, points, None,
        )
    }

    /// [`SampleTerms::new`] with the non-local terms' rows in buffers of
    /// `pool` (if given), handed back when the terms are dropped.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn with_pool(
        terms: &'a [Term],
        n_residual: usize,
        solution: &'a [f64],
        n_basis: usize,
        offset: Option<&'a [f64]>,
        rows: &[LinearRow],
        points: &[&[usize]],
        pool: Option<&Arc<BufferPool<f64>>>,
    ) -> Result<Self, ExpertsError> {
        let d = terms.len();
        if !(1..=d).contains(&n_residual) {
            return Err(ExpertsError::ShapeMismatch {
                what: "residual terms (1..=number of terms)",
                expected: vec![d],
                got: vec![n_residual],
            });
        }
        let n_points = terms[0].operator.shape().len();
        if n_basis == 0 || solution.len() != n_points * n_basis {
            return Err(ExpertsError::ShapeMismatch {
                what: "solution S B [grid points, N ≥ 1]",
                expected: vec![n_points, n_basis.max(1)],
                got: vec![solution.len()],
            });
        }
        if let Some(s0) = offset.filter(|s0| s0.len() != n_points) {
            return Err(ExpertsError::ShapeMismatch {
                what: "solution offset [grid points]",
                expected: vec![n_points],
                got: vec![s0.len()],
            });
        }
        check_rows(rows, n_points, d)?;
        let points = PointSets::new(points, rows);
        if let Some(&bad) = points.all.iter().find(|&&p| p >= n_points) {
            return Err(index_error("sampled point", bad, n_points));
        }
        let in_rows = |j: usize| rows.iter().any(|r| r.coeffs.iter().any(|&(t, _)| t == j));
        // Every term the residual or a row reads; the rest are never evaluated.
        let sources: Vec<Option<TermSources<'a>>> = terms
            .par_iter()
            .enumerate()
            .with_max_len(1)
            .map(|(j, term)| {
                (j < n_residual || in_rows(j)).then(|| {
                    let operator = term.operator.as_ref();
                    TermSources {
                        values: Source::new(operator, solution, n_basis, &points, pool),
                        offsets: offset.map(|s0| Source::new(operator, s0, 1, &points, pool)),
                    }
                })
            })
            .collect();
        let (row_points, first) = points.set(points.len() - 1);
        let (linear, linear_rhs) = evaluate_rows(&sources, rows, row_points, first, n_basis);
        let residual = sources
            .into_iter()
            .take(n_residual)
            .map(|s| s.expect("residual terms are always evaluated"))
            .collect();
        Ok(Self {
            n_basis,
            points,
            residual,
            linear,
            linear_rhs,
        })
    }

    /// Number of residual terms `d_r` (the problems' `n_terms`).
    pub fn n_residual(&self) -> usize {
        self.residual.len()
    }

    /// The problem of expert `k` (its point set of [`SampleTerms::new`]) with
    /// the linear rows `row_ids` (indices into the sample's rows): term rows
    /// `[P, d_r, N]`, offsets `[P, d_r]`, the chosen linear rows. The term rows
    /// are written in parallel over fixed chunks of points.
    ///
    /// Errors: an expert or row index out of range, and problem-shape errors.
    pub fn problem(
        &self,
        k: usize,
        row_ids: &[usize],
        n_equations: usize,
        ridge: f64,
    ) -> Result<ExpertProblem, ExpertsError> {
        let (points, first) = self.expert_points(k, row_ids)?;
        let (d, n) = (self.n_residual(), self.n_basis);
        let mut term_rows = vec![0.0; points.len() * d * n];
        term_rows
            .par_chunks_mut(POINTS_PER_TASK * d * n)
            .zip(points.par_chunks(POINTS_PER_TASK))
            .enumerate()
            .for_each(|(c, (rows, pts))| {
                let first = first + c * POINTS_PER_TASK;
                for (j, term) in self.residual.iter().enumerate() {
                    term.values.write(n, pts, first, &mut rows[j * n..], d * n);
                }
            });
        let (linear, linear_rhs) = self.linear_rows(row_ids);
        Ok(ExpertProblem::new(
            self.size(n_equations),
            term_rows,
            self.offsets_at(points, first),
            linear,
            linear_rhs,
            ridge,
        )?)
    }

    /// [`SampleTerms::problem`] without the term rows, which the GPU gathers
    /// from the basis ([`residual_rows`]); `coordinates` are the points'
    /// `[P, ndim]`, empty when the residual reads none.
    ///
    /// Errors: as [`SampleTerms::problem`].
    #[cfg(feature = "cuda")]
    pub fn gathered_problem(
        &self,
        k: usize,
        row_ids: &[usize],
        n_equations: usize,
        ridge: f64,
        coordinates: Vec<f64>,
    ) -> Result<GatheredProblem, ExpertsError> {
        let (points, first) = self.expert_points(k, row_ids)?;
        let (linear, linear_rhs) = self.linear_rows(row_ids);
        Ok(GatheredProblem::new(
            self.size(n_equations),
            points.len(),
            self.offsets_at(points, first),
            linear,
            linear_rhs,
            ridge,
            coordinates,
        )?)
    }

    fn size(&self, n_equations: usize) -> ProblemSize {
        ProblemSize {
            n_basis: self.n_basis,
            n_terms: self.n_residual(),
            n_equations,
        }
    }

    /// Expert `k`'s points and where they start in the point sets, once
    /// `row_ids` are checked too.
    ///
    /// Errors: an expert or linear-row index out of range.
    fn expert_points(
        &self,
        k: usize,
        row_ids: &[usize],
    ) -> Result<(&[usize], usize), ExpertsError> {
        let experts = self.points.len() - 1;
        if k >= experts {
            return Err(index_error("expert", k, experts));
        }
        if let Some(&bad) = row_ids.iter().find(|&&i| i >= self.linear_rhs.len()) {
            return Err(index_error("linear row", bad, self.linear_rhs.len()));
        }
        Ok(self.points.set(k))
    }

    /// The offsets `b_j` at `points` (at `first..` of the point sets),
    /// `[P, d_r]` (zeros without `s₀`).
    fn offsets_at(&self, points: &[usize], first: usize) -> Vec<f64> {
        let d = self.n_residual();
        let mut offsets = vec![0.0; points.len() * d];
        offsets
            .par_chunks_mut(POINTS_PER_TASK * d)
            .zip(points.par_chunks(POINTS_PER_TASK))
            .enumerate()
            .for_each(|(c, (offs, pts))| {
                let first = first + c * POINTS_PER_TASK;
                for (j, term) in self.residual.iter().enumerate() {
                    if let Some(b) = &term.offsets {
                        b.write(1, pts, first, &mut offs[j..], d);
                    }
                }
            });
        offsets
    }

    /// The linear rows `row_ids` and their right-hand sides.
    fn linear_rows(&self, row_ids: &[usize]) -> (Vec<f64>, Vec<f64>) {
        let n = self.n_basis;
        let linear = row_ids
            .iter()
            .flat_map(|&i| &self.linear[i * n..(i + 1) * n])
            .copied()
            .collect();
        let linear_rhs = row_ids.iter().map(|&i| self.linear_rhs[i]).collect();
        (linear, linear_rhs)
    }
}

/// The rows of `terms` at every one of the grid's `n_grid` points as sparse
/// combinations of its points, point-major: row `p·d + j` is term `j`'s
/// operator at point `p`. Fixed for a layer, a GPU keeps them and reads the
/// rows at the experts' sampled points from them to build each sample's
/// term rows from its basis ([`tessera_constraints::gpu::RowGather`]), and
/// the PDE loss of whole fields applies them as they are. `None` when a term
/// is not local: its rows are not short combinations.
///
/// Errors: terms on another grid.
#[cfg(feature = "cuda")]
pub fn residual_rows(
    terms: &[Term],
    n_grid: usize,
) -> Result<Option<tessera_meshes::SparseRows>, ExpertsError> {
    use tessera_meshes::SparseRows;
    if !terms.iter().all(|t| t.operator.is_local()) {
        return Ok(None);
    }
    let starts: Vec<usize> = (0..n_grid).step_by(POINTS_PER_TASK).collect();
    let parts = starts
        .par_iter()
        .map(|&start| {
            let mut rows = SparseRows::new(n_grid);
            for p in start..(start + POINTS_PER_TASK).min(n_grid) {
                for term in terms {
                    rows.push_row(term.operator.as_ref(), p, 1.0)?;
                }
            }
            Ok(rows)
        })
        .collect::<Result<Vec<_>, tessera_meshes::MeshError>>()?;
    let mut all = SparseRows::new(n_grid);
    for part in &parts {
        all.append(part)?;
    }
    Ok(Some(all))
}

/// `L = Σ_j c_j A_j[point]` (`[R, N]`) and `c = rhs − Σ_j c_j b_j[point]` (`[R]`)
/// for every row, the terms summed in each row's coefficient order. Each term a
/// row uses is evaluated once, at all row `points` (at `first..` of the point
/// sets).
fn evaluate_rows(
    sources: &[Option<TermSources<'_>>],
    rows: &[LinearRow],
    points: &[usize],
    first: usize,
    n: usize,
) -> (Vec<f64>, Vec<f64>) {
    // Per term: its values [R, N] and offsets [R] at the row points.
    let at_rows: Vec<Option<(Vec<f64>, Vec<f64>)>> = sources
        .par_iter()
        .with_max_len(1)
        .map(|source| {
            source.as_ref().filter(|_| !rows.is_empty()).map(|s| {
                let mut values = vec![0.0; points.len() * n];
                let mut offsets = vec![0.0; points.len()];
                s.values.write(n, points, first, &mut values, n);
                if let Some(b) = &s.offsets {
                    b.write(1, points, first, &mut offsets, 1);
                }
                (values, offsets)
            })
        })
        .collect();
    let mut linear = vec![0.0; rows.len() * n];
    let mut linear_rhs = Vec::with_capacity(rows.len());
    for (i, (row, out)) in rows.iter().zip(linear.chunks_exact_mut(n)).enumerate() {
        let mut c = row.rhs;
        for &(j, coeff) in &row.coeffs {
            let (values, offsets) = at_rows[j]
                .as_ref()
                .expect("every term a row uses is evaluated");
            for (o, x) in out.iter_mut().zip(&values[i * n..(i + 1) * n]) {
                *o += coeff * x;
            }
            c -= coeff * offsets[i];
        }
        linear_rhs.push(c);
    }
    (linear, linear_rhs)
}

/// Checks that every row refers to an existing point and term.
///
/// Errors: [`ConstraintError::IndexOutOfRange`] for the first bad point or term.
fn check_rows(rows: &[LinearRow], n_points: usize, n_terms: usize) -> Result<(), ExpertsError> {
    for row in rows {
        if row.point >= n_points {
            return Err(index_error("linear-row point", row.point, n_points));
        }
        if let Some(&(j, _)) = row.coeffs.iter().find(|(j, _)| *j >= n_terms) {
            return Err(index_error("linear-row term", j, n_terms));
        }
    }
    Ok(())
}

fn index_error(what: &'static str, index: usize, len: usize) -> ExpertsError {
    ConstraintError::IndexOutOfRange { what, index, len }.into()
}
