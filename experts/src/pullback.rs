//! The backward pass of one sample from the experts' compact row gradients to the
//! basis: `B̄ = ∂L/∂B`, and before it the upstream `ω̄_k = ∂L/∂ω_k*`.
//!
//! **Rank-2 pull-back.** Every row gradient of expert `k` is a combination of its
//! `ω_k*` and `λ_k` ([`RowGradient`]): `Ā_j[p] = α_j[p]·ω_k + β_j[p]·λ_k`. Every
//! operator acts on channels alike, so `D_jᵀ(α ⊗ ω) = (D_jᵀ α) ⊗ ω`: instead of
//! scattering `N`-channel gradients and pulling back `N` channels per term, the
//! scalar coefficients are scattered into one field of `2K` channels per term
//! (channel `2k` ← expert `k`'s `ω` coefficients, `2k+1` ← its `λ` ones; a linear
//! row with coefficient `c_j` on term `j` adds `c_j` times its coefficients at its
//! point), each term's `D_jᵀ` is applied once with `2K` channels, the results are
//! summed in term order, the direct path `u = S B ω_k` on tile `k` adds `ū` to
//! channel `2k`, `Sᵀ` (when the PDE has a solution map) is applied with `2K`
//! channels, and finally `B̄[q] = Σ_k T[q, 2k]·ω_k + T[q, 2k+1]·λ_k`.
//!
//! Full-grid passes run in parallel over fixed chunks of points and the terms in
//! parallel with each other; every sum runs in a fixed order, so the result is
//! bit-identical for any number of threads.

use rayon::prelude::*;
use tessera_constraints::{LinearRow, RowGradient, Term};
use tessera_meshes::LinearOperator;

use crate::POINTS_PER_TASK;

/// What the pull-back needs of one expert.
pub(crate) struct ExpertRows<'a> {
    /// Its sampled points.
    pub points: &'a [usize],
    /// Its linear rows (indices into the sample's rows).
    pub row_ids: &'a [usize],
    /// Its compact problem gradient.
    pub gradient: &'a RowGradient,
}

/// The layer's fixed parts the pull-back reads.
pub(crate) struct PullBack<'a> {
    /// All terms `D_j` (linear rows may use any of them).
    pub terms: &'a [Term],
    /// How many come first and enter the term rows (`d_r`).
    pub n_residual: usize,
    /// The expert owning each grid point.
    pub owners: &'a [usize],
    /// Number of experts `K`.
    pub n_experts: usize,
    /// `S`, if the PDE has one.
    pub solution_map: Option<&'a dyn LinearOperator>,
}

impl PullBack<'_> {
    /// `ω̄_k = Bᵀ Sᵀ(1_{Ω_k} ū)` for every expert `k`, `[K, N]`, for one sample's
    /// `basis` (`[grid points, N]`) and `u_bar` (`[grid points]`).
    pub fn omega_bars(&self, basis: &[f64], n: usize, u_bar: &[f64]) -> Vec<f64> {
        let k = self.n_experts;
        // V[q, k] = ū[q] on tile k, 0 elsewhere.
        let mut v = vec![0.0; u_bar.len() * k];
        v.par_chunks_mut(POINTS_PER_TASK * k)
            .zip(self.owners.par_chunks(POINTS_PER_TASK))
            .zip(u_bar.par_chunks(POINTS_PER_TASK))
            .for_each(|((v, owners), u)| {
                for ((vq, &owner), &uq) in v.chunks_exact_mut(k).zip(owners).zip(u) {
                    vq[owner] = uq;
                }
            });
        if let Some(s) = self.solution_map {
            v = s.apply_adjoint_to_vec(&v, k);
        }
        // Σ_q V[q, k]·B[q]: one partial sum per chunk of points, added in chunk order.
        let partials: Vec<Vec<f64>> = basis
            .par_chunks(POINTS_PER_TASK * n)
            .zip(v.par_chunks(POINTS_PER_TASK * k))
            .map(|(b, v)| {
                let mut sums = vec![0.0; k * n];
                for (bq, vq) in b.chunks_exact(n).zip(v.chunks_exact(k)) {
                    for (sum, &w) in sums.chunks_exact_mut(n).zip(vq) {
                        // Without S only the owner's weight is non-zero.
                        if w != 0.0 {
                            sum.iter_mut().zip(bq).for_each(|(s, x)| *s += w * x);
                        }
                    }
                }
                sums
            })
            .collect();
        let mut total = vec![0.0; k * n];
        for partial in &partials {
            total.iter_mut().zip(partial).for_each(|(t, p)| *t += p);
        }
        total
    }

    /// `B̄` of one sample into `out` (`[grid points, N]`, overwritten) from its
    /// linear `rows`, its experts' row gradients and `u_bar` (`[grid points]`),
    /// and, if asked, the cotangent of its offset `s₀` into `offset_bar`
    /// (`[grid points]`, overwritten): `u` and every `b_j = D_j s₀` read `s₀`
    /// as they read `S B ω_k`, so it is `Σ_k T[q, 2k]` before `Sᵀ`.
    ///
    /// # Panics
    /// If the experts' gradients do not match their points and rows (they come
    /// from the problems built with them).
    #[track_caller]
    pub fn basis_gradient(
        &self,
        rows: &[LinearRow],
        experts: &[ExpertRows<'_>],
        u_bar: &[f64],
        out: &mut [f64],
        offset_bar: Option<&mut [f64]>,
    ) {
        let n = out.len() / u_bar.len();
        let c = 2 * self.n_experts;
        let pulled: Vec<Vec<f64>> = self
            .terms
            .par_iter()
            .enumerate()
            .with_max_len(1)
            .filter_map(|(j, term)| {
                let field = self.scatter(j, rows, experts, u_bar.len())?;
                Some(term.operator.apply_adjoint_to_vec(&field, c))
            })
            .collect();
        let mut pulled = pulled.into_iter();
        let mut t = pulled.next().unwrap_or_else(|| vec![0.0; u_bar.len() * c]);
        let rest: Vec<Vec<f64>> = pulled.collect();
        // Σ_j D_jᵀ F_j in term order, then the direct path ū on channel 2k.
        t.par_chunks_mut(POINTS_PER_TASK * c)
            .zip(self.owners.par_chunks(POINTS_PER_TASK))
            .zip(u_bar.par_chunks(POINTS_PER_TASK))
            .enumerate()
            .for_each(|(chunk, ((t, owners), u))| {
                let start = chunk * POINTS_PER_TASK * c;
                for field in &rest {
                    let part = &field[start..start + t.len()];
                    t.iter_mut().zip(part).for_each(|(t, x)| *t += x);
                }
                for ((tq, &owner), &uq) in t.chunks_exact_mut(c).zip(owners).zip(u) {
                    tq[2 * owner] += uq;
                }
            });
        if let Some(s0_bar) = offset_bar {
            s0_bar
                .par_chunks_mut(POINTS_PER_TASK)
                .zip(t.par_chunks(POINTS_PER_TASK * c))
                .for_each(|(o, t)| {
                    for (oq, tq) in o.iter_mut().zip(t.chunks_exact(c)) {
                        *oq = tq.iter().step_by(2).sum();
                    }
                });
        }
        if let Some(s) = self.solution_map {
            t = s.apply_adjoint_to_vec(&t, c);
        }
        // B̄[q] = Σ_k T[q, 2k]·ω_k + T[q, 2k+1]·λ_k.
        out.par_chunks_mut(POINTS_PER_TASK * n)
            .zip(t.par_chunks(POINTS_PER_TASK * c))
            .for_each(|(out, t)| {
                for (oq, tq) in out.chunks_exact_mut(n).zip(t.chunks_exact(c)) {
                    oq.fill(0.0);
                    for (e, coeffs) in experts.iter().zip(tq.chunks_exact(2)) {
                        let (a, b) = (coeffs[0], coeffs[1]);
                        // Without S most points carry only their own expert's
                        // coefficients: skip the other experts' zeros.
                        if a == 0.0 && b == 0.0 {
                            continue;
                        }
                        let (omega, lambda) = (&e.gradient.omega, &e.gradient.lambda);
                        for ((o, w), l) in oq.iter_mut().zip(omega).zip(lambda) {
                            *o += a * w + b * l;
                        }
                    }
                }
            });
    }

    /// Term `j`'s row-gradient coefficients scattered onto the grid, `[grid
    /// points, 2K]`, or `None` when no expert's rows touch the term.
    fn scatter(
        &self,
        j: usize,
        rows: &[LinearRow],
        experts: &[ExpertRows<'_>],
        n_points: usize,
    ) -> Option<Vec<f64>> {
        let (c, d) = (2 * self.n_experts, self.n_residual);
        let mut field: Option<Vec<f64>> = None;
        for (k, e) in experts.iter().enumerate() {
            let g = e.gradient;
            assert_eq!(g.term_omega.len(), e.points.len() * d, "term-row gradient");
            assert_eq!(g.linear_omega.len(), e.row_ids.len(), "linear-row gradient");
            if j < d && !e.points.is_empty() {
                let f = field.get_or_insert_with(|| vec![0.0; n_points * c]);
                for (i, &p) in e.points.iter().enumerate() {
                    f[p * c + 2 * k] += g.term_omega[i * d + j];
                    f[p * c + 2 * k + 1] += g.term_lambda[i * d + j];
                }
            }
            for (i, &r) in e.row_ids.iter().enumerate() {
                let row = &rows[r];
                for &(_, coeff) in row.coeffs.iter().filter(|&&(jj, _)| jj == j) {
                    let f = field.get_or_insert_with(|| vec![0.0; n_points * c]);
                    f[row.point * c + 2 * k] += coeff * g.linear_omega[i];
                    f[row.point * c + 2 * k + 1] += coeff * g.linear_lambda[i];
                }
            }
        }
        field
    }
}
