//! Which rank of an expert-parallel group solves which expert: a placement
//! balanced by measured cost, because Levenberg–Marquardt iteration counts
//! differ between tiles (a tile with a front or a boundary layer takes several
//! times the iterations of a smooth one), so equal expert counts per rank are
//! not equal work.
//!
//! The rule is the longest-processing-time-first list schedule (Graham, "Bounds
//! on multiprocessing timing anomalies", SIAM J. Appl. Math. 17, 1969): experts
//! in decreasing cost, each to the least-loaded rank. Its makespan is within
//! `4/3 − 1/(3m)` of the optimum on `m` ranks. Equal loads go to the rank with
//! fewer experts (so experts of no measured cost still spread), then to the
//! lower rank, and equal costs to the lower expert id: every rank computes the
//! same placement from the same costs, with no message exchanged.

/// The rank (`0..ranks`) that owns each expert, for per-expert `costs` (any
/// positive scale; non-finite or negative costs count as zero).
///
/// # Panics
/// If `ranks` is zero.
#[track_caller]
pub fn balance(costs: &[f64], ranks: usize) -> Vec<usize> {
    assert!(ranks > 0, "a placement needs at least one rank");
    let cost = |k: usize| {
        let c = costs[k];
        if c.is_finite() && c > 0.0 { c } else { 0.0 }
    };
    let mut order: Vec<usize> = (0..costs.len()).collect();
    order.sort_by(|&a, &b| cost(b).total_cmp(&cost(a)).then(a.cmp(&b)));
    let mut load = vec![0.0_f64; ranks];
    let mut count = vec![0_usize; ranks];
    let mut owners = vec![0; costs.len()];
    for k in order {
        let rank = (0..ranks)
            .min_by(|&a, &b| {
                (load[a].total_cmp(&load[b]))
                    .then(count[a].cmp(&count[b]))
                    .then(a.cmp(&b))
            })
            .expect("at least one rank");
        load[rank] += cost(k);
        count[rank] += 1;
        owners[k] = rank;
    }
    owners
}

/// The largest total cost of one rank under `owners`.
pub fn makespan(costs: &[f64], owners: &[usize], ranks: usize) -> f64 {
    let mut load = vec![0.0; ranks];
    for (&c, &r) in costs.iter().zip(owners) {
        load[r] += c;
    }
    load.into_iter().fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The optimal makespan by trying every assignment (small cases only).
    fn optimum(costs: &[f64], ranks: usize) -> f64 {
        let mut owners = vec![0; costs.len()];
        let mut best = f64::INFINITY;
        loop {
            best = best.min(makespan(costs, &owners, ranks));
            let Some(i) = owners.iter().position(|&r| r + 1 < ranks) else {
                return best;
            };
            owners[i] += 1;
            owners[..i].iter_mut().for_each(|r| *r = 0);
        }
    }

    #[test]
    fn equal_costs_deal_the_experts_round_robin() {
        assert_eq!(balance(&[1.0; 5], 2), vec![0, 1, 0, 1, 0]);
        assert_eq!(balance(&[3.0; 4], 4), vec![0, 1, 2, 3]);
    }

    #[test]
    fn the_makespan_is_within_grahams_bound_of_the_optimum() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            1.0 + (state % 1000) as f64
        };
        for case in 0..200 {
            let (experts, ranks) = (2 + case % 7, 2 + case % 3);
            let costs: Vec<f64> = (0..experts).map(|_| next()).collect();
            let owners = balance(&costs, ranks);
            assert!(owners.iter().all(|&r| r < ranks));
            let (got, best) = (makespan(&costs, &owners, ranks), optimum(&costs, ranks));
            let bound = 4.0 / 3.0 - 1.0 / (3.0 * ranks as f64);
            assert!(
                got <= bound * best * (1.0 + 1e-12),
                "{costs:?}: {got} vs {best}"
            );
        }
    }

    #[test]
    fn every_rank_gets_an_expert_when_there_are_enough() {
        let owners = balance(&[100.0, 1.0, 1.0, 1.0], 3);
        assert_eq!(owners, vec![0, 1, 2, 1]);
        let owners = balance(&[f64::NAN, -1.0, 2.0], 3);
        let mut seen = owners.clone();
        seen.sort_unstable();
        assert_eq!(seen, vec![0, 1, 2]);
    }
}
