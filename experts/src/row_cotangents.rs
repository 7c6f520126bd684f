//! The cotangents of one sample's linear rows, what the PDE maps back to the
//! initial condition ([`Pde::initial_condition_backward`]).
//!
//! A linear row `r_i = Σ_j c_ij z_j(p_i) − rhs_i` enters expert `k`'s problem
//! as the row `L_i = Σ_j c_ij A_j[p_i]` and the right-hand side
//! `c_i = rhs_i − Σ_j c_ij b_j[p_i]`. Its compact gradient ([`RowGradient`])
//! gives `L̄_i = lo_i·ω_k + ll_i·λ_k` and `c̄_i = −lo_i`, so
//!
//! ```text
//! rhs̄_i  = c̄_i                = −lo_i
//! c̄_ij   = L̄_i·A_j[p_i] − c̄_i·b_j[p_i] = lo_i·z_j(p_i) + ll_i·y_j(p_i)
//! ```
//!
//! with `z_j = A_j·ω_k + b_j` and `y_j = A_j·λ_k` at the row's point, summed
//! over the experts that hold the row. `A_j` and `b_j` are read at the rows'
//! points only, one [`LinearOperator::apply_at`] per term.
//!
//! [`Pde::initial_condition_backward`]: tessera_constraints::Pde::initial_condition_backward
//! [`RowGradient`]: tessera_constraints::RowGradient
//! [`LinearOperator::apply_at`]: tessera_meshes::LinearOperator::apply_at

use tessera_constraints::{LinearRow, LinearRowBar, Term};

use crate::pullback::ExpertRows;

/// The cotangent of every row of `rows` (one sample's linear rows), from
/// its `experts`' row gradients, its solution `S B` (`solution`, `[grid
/// points, n]`) and its offset `s₀` (`[grid points]`, if any).
///
/// # Panics
/// If a row refers to a term outside `terms`, or the experts' gradients do
/// not match their rows (they come from the problems built with them).
#[track_caller]
pub(crate) fn row_cotangents(
    terms: &[Term],
    rows: &[LinearRow],
    experts: &[ExpertRows<'_>],
    solution: &[f64],
    n: usize,
    offset: Option<&[f64]>,
) -> Vec<LinearRowBar> {
    let mut bars: Vec<LinearRowBar> = rows
        .iter()
        .map(|row| LinearRowBar {
            coeffs: vec![0.0; row.coeffs.len()],
            rhs: 0.0,
        })
        .collect();
    // The experts that hold each row, with the row's index among theirs.
    let mut holders: Vec<Vec<(&ExpertRows<'_>, usize)>> = vec![Vec::new(); rows.len()];
    for e in experts {
        for (pos, &i) in e.row_ids.iter().enumerate() {
            holders[i].push((e, pos));
        }
    }
    // Which (row, coefficient) pairs read each term, and at which point.
    for (j, term) in terms.iter().enumerate() {
        let uses: Vec<(usize, usize)> = rows
            .iter()
            .enumerate()
            .flat_map(|(i, row)| {
                row.coeffs
                    .iter()
                    .enumerate()
                    .filter(move |(_, (jj, _))| *jj == j)
                    .map(move |(m, _)| (i, m))
            })
            .collect();
        if uses.is_empty() {
            continue;
        }
        let points: Vec<usize> = uses.iter().map(|&(i, _)| rows[i].point).collect();
        // A_j at the points, [uses, n], and b_j there.
        let mut a = vec![0.0; points.len() * n];
        term.operator.apply_at(solution, n, &points, &mut a, n);
        let mut b = vec![0.0; points.len()];
        if let Some(s0) = offset {
            term.operator.apply_at(s0, 1, &points, &mut b, 1);
        }
        for (((i, m), a), b) in uses.into_iter().zip(a.chunks_exact(n)).zip(b) {
            for &(e, pos) in &holders[i] {
                let g = e.gradient;
                let z: f64 = b + a.iter().zip(&g.omega).map(|(x, w)| x * w).sum::<f64>();
                let y: f64 = a.iter().zip(&g.lambda).map(|(x, l)| x * l).sum();
                bars[i].coeffs[m] += g.linear_omega[pos] * z + g.linear_lambda[pos] * y;
            }
        }
    }
    for (bar, holders) in bars.iter_mut().zip(&holders) {
        for &(e, pos) in holders {
            bar.rhs -= e.gradient.linear_omega[pos];
        }
    }
    bars
}
