//! Property test: for random small problems, the IFT gradient's directional
//! derivative matches central finite differences.

mod common;

use common::pdes::{QuadraticTransport, SorptionLike};
use common::{central_difference, dot, relative_direction, rng, solve};
use proptest::prelude::*;
use tessera_constraints::{HessianMode, Pde, Sensitivity};

fn directional_error<P: Pde>(pde: &P, parts: &common::Parts, seed: u64) -> (f64, f64, f64) {
    let n = parts.size.n_basis;
    let omega = solve(pde, parts, &vec![1.0; n]);
    let mut r = rng(seed);
    let v = common::uniform(&mut r, n, 1.0);
    let problem = parts.build();
    let g = Sensitivity::new(pde, &problem, &omega, HessianMode::Exact)
        .unwrap()
        .gradient(&problem, &v)
        .unwrap();
    let analytic = [&g.term_rows[..], &g.offsets, &g.linear, &g.linear_rhs].concat();
    let x = parts.flat();
    let delta = relative_direction(&mut r, &x);
    let loss = |y: &[f64]| dot(&v, &solve(pde, &parts.with_flat(y), &omega));
    let scale = (dot(&analytic, &analytic) * dot(&delta, &delta)).sqrt();
    (
        dot(&analytic, &delta),
        central_difference(loss, &x, &delta, 1e-5),
        scale,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn random_problems_match_finite_differences(
        seed in 0u64..10_000,
        points in 3usize..12,
        basis in 2usize..5,
        linear in 0usize..4,
        quadratic in any::<bool>(),
    ) {
        // At least as many residual rows as unknowns, as in every expert of the
        // layer. With fewer, only the ridge ρ holds ω*: it lies on a valley
        // whose floor has curvature ρ² = 1e-8, Levenberg–Marquardt crawls along
        // it, and finite differences lose about ε/ρ² of their accuracy.
        prop_assume!(points + linear >= basis);
        let (a, fd, scale) = if quadratic {
            let pde = QuadraticTransport { nu: 0.05, with_solution_map: false };
            directional_error(&pde, &common::quadratic_parts(seed, points, basis, linear), seed)
        } else {
            directional_error(&SorptionLike, &common::sorption_parts(seed, points, basis, linear), seed)
        };
        prop_assert!((a - fd).abs() <= 1e-6 * a.abs().max(fd.abs()).max(1e-2 * scale), "{a:e} vs {fd:e}");
    }
}
