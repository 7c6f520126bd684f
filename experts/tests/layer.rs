//! The end-to-end layer: gradients through the full basis against finite
//! differences, the gather/scatter adjoint, thread-count invariance and
//! non-finite inputs.

#[path = "../../constraints/tests/common/pdes.rs"]
mod pdes;

use std::sync::Arc;

use pdes::{QuadraticTransport, SorptionLike};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tessera_constraints::{
    InitialGuess, LevenbergMarquardt, LinearRow, Pde, ProblemGradient, StopReason,
};
use tessera_experts::router::{gather, scatter};
use tessera_experts::{ConstraintLayer, ExpertsError, LayerConfig, RowScope, TermFields};
use tessera_meshes::Grid;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn uniform(r: &mut ChaCha8Rng, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n).map(|_| r.random_range(lo..hi)).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn tight() -> LevenbergMarquardt {
    LevenbergMarquardt::default()
        .with_rtol(1e-14)
        .unwrap()
        .with_atol(1e-15)
        .unwrap()
        .with_max_iterations(500)
        .unwrap()
        .with_initial(InitialGuess::Ones)
        .unwrap()
}

/// Directional derivative of `L(B) = ⟨v, u(B)⟩` along `δB` (central differences
/// with one Richardson step) against `⟨B̄, δB⟩`.
fn check_layer<P: Pde>(
    layer: &ConstraintLayer<P>,
    basis: &[f64],
    n: usize,
    ics: &[&[f64]],
    seed: u64,
) {
    let mut r = rng(seed);
    let f = layer.forward(basis, n, ics, 7).unwrap();
    assert!(f.all_converged(), "{:?}", f.statuses);
    let v = uniform(&mut r, f.u.len(), -1.0, 1.0);
    let b_bar = layer.backward(&f, &v).unwrap();
    let delta = uniform(&mut r, basis.len(), -1.0, 1.0);
    let loss = |h: f64| {
        let moved: Vec<f64> = basis.iter().zip(&delta).map(|(b, d)| b + h * d).collect();
        dot(&v, &layer.forward(&moved, n, ics, 7).unwrap().u)
    };
    let d = |h: f64| (loss(h) - loss(-h)) / (2.0 * h);
    let h = 1e-4;
    let fd = (4.0 * d(h / 2.0) - d(h)) / 3.0;
    let analytic = dot(&b_bar, &delta);
    let scale = analytic.abs().max(fd.abs());
    assert!(
        (analytic - fd).abs() <= 1e-6 * scale,
        "{analytic:e} vs {fd:e} (relative {:e})",
        (analytic - fd).abs() / scale
    );
}

fn sorption_layer(scope: RowScope) -> (ConstraintLayer<SorptionLike>, Vec<f64>, Vec<f64>) {
    let grid = Grid::uniform_tx(8, 16, 1.0).unwrap();
    let mut config = LayerConfig::new(&[1, 2], 40);
    config.lm = tight();
    config.row_scope = scope;
    config.seed = 3;
    let layer = ConstraintLayer::new(Arc::new(SorptionLike), grid, config).unwrap();
    let mut r = rng(1);
    let basis = uniform(&mut r, 8 * 16 * 4, 0.2, 1.0);
    let ic = uniform(&mut r, 16, 0.05, 0.2);
    (layer, basis, ic)
}

#[test]
fn sorption_layer_gradient_matches_finite_differences() {
    for scope in [RowScope::Global, RowScope::Local] {
        let (layer, basis, ic) = sorption_layer(scope);
        check_layer(&layer, &basis, 4, &[&ic], 11);
    }
}

#[test]
fn quadratic_layer_with_solution_map_matches_finite_differences() {
    for with_solution_map in [false, true] {
        let grid = Grid::uniform_txy(4, 8, 8, 1.0).unwrap();
        let mut config = LayerConfig::new(&[1, 2, 2], 20);
        config.lm = tight().with_initial(InitialGuess::Zeros).unwrap();
        let pde = QuadraticTransport {
            nu: 0.1,
            with_solution_map,
        };
        let layer = ConstraintLayer::new(Arc::new(pde), grid, config).unwrap();
        let mut r = rng(2);
        let basis = uniform(&mut r, 2 * 4 * 64 * 3, -0.5, 0.5);
        let ics = [
            uniform(&mut r, 64, -1.0, 1.0),
            uniform(&mut r, 64, -1.0, 1.0),
        ];
        check_layer(&layer, &basis, 3, &[&ics[0], &ics[1]], 12);
    }
}

#[test]
fn gather_and_scatter_are_adjoint() {
    let (d, g, n) = (4, 30, 3);
    let mut r = rng(4);
    let fields = TermFields::new(
        n,
        g,
        (0..d).map(|_| uniform(&mut r, g * n, -1.0, 1.0)).collect(),
        (0..d).map(|_| uniform(&mut r, g, -1.0, 1.0)).collect(),
    )
    .unwrap();
    let zero = TermFields::zeros(d, g, n);
    let points = [1, 4, 4, 9, 20, 29];
    let rows = [
        LinearRow {
            point: 4,
            coeffs: vec![(0, 1.0), (3, -0.5)],
            rhs: 0.7,
        },
        LinearRow {
            point: 17,
            coeffs: vec![(2, 2.0)],
            rhs: -1.0,
        },
    ];
    let refs: Vec<&LinearRow> = rows.iter().collect();
    let a = gather(&fields, &points, &refs, 1, 1e-4).unwrap();
    let a0 = gather(&zero, &points, &refs, 1, 1e-4).unwrap();
    let grad = ProblemGradient {
        term_rows: uniform(&mut r, points.len() * d * n, -1.0, 1.0),
        offsets: uniform(&mut r, points.len() * d, -1.0, 1.0),
        linear: uniform(&mut r, rows.len() * n, -1.0, 1.0),
        linear_rhs: uniform(&mut r, rows.len(), -1.0, 1.0),
    };
    // ⟨G, gather(T) − gather(0)⟩ (gather is affine through the rows' rhs).
    let lhs = dot(&grad.term_rows, a.term_rows())
        + dot(&grad.offsets, a.offsets())
        + dot(&grad.linear, a.linear())
        + dot(&grad.linear_rhs, a.linear_rhs())
        - dot(&grad.linear_rhs, a0.linear_rhs());
    let mut back = TermFields::zeros(d, g, n);
    scatter(&grad, &points, &refs, &mut back);
    let rhs: f64 = (0..d)
        .map(|j| dot(back.values(j), fields.values(j)) + dot(back.offsets(j), fields.offsets(j)))
        .sum();
    assert!(
        (lhs - rhs).abs() <= 1e-13 * lhs.abs().max(1.0),
        "{lhs} vs {rhs}"
    );
}

#[test]
fn results_are_bitwise_identical_for_any_thread_count() {
    let (layer, basis, ic) = sorption_layer(RowScope::Global);
    let mut config = layer.config().clone();
    config.lm = LevenbergMarquardt::default();
    let layer = ConstraintLayer::new(Arc::new(SorptionLike), layer.grid().clone(), config).unwrap();
    let batch: Vec<f64> = [
        basis.clone(),
        basis.iter().map(|b| b * 0.9 + 0.05).collect(),
    ]
    .concat();
    let ics = [&ic[..], &ic[..]];
    let u_bar: Vec<f64> = (0..2 * 128).map(|i| (i as f64 * 0.37).sin()).collect();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let f = layer.forward(&batch, 4, &ics, 5).unwrap();
            let b = layer.backward(&f, &u_bar).unwrap();
            (f.u.clone(), f.weights.clone(), b)
        })
    };
    let one = run(1);
    for threads in [2, 3] {
        let other = run(threads);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&one.0), bits(&other.0));
        assert_eq!(bits(&one.1), bits(&other.1));
        assert_eq!(bits(&one.2), bits(&other.2));
    }
}

#[test]
fn non_finite_inputs_are_statuses_and_typed_errors() {
    let (layer, mut basis, ic) = sorption_layer(RowScope::Local);
    basis[3] = f64::NAN; // point 0 lies in tile 0
    let f = layer.forward(&basis, 4, &[&ic], 0).unwrap();
    assert!(f.statuses.iter().any(|s| s.reason == StopReason::NonFinite));
    assert!(matches!(
        layer.backward(&f, &vec![1.0; 128]),
        Err(ExpertsError::ExpertFailed { .. })
    ));
    let (layer, basis, mut ic) = sorption_layer(RowScope::Global);
    ic[2] = f64::INFINITY;
    let f = layer.forward(&basis, 4, &[&ic], 0).unwrap();
    assert!(f.statuses.iter().all(|s| s.reason == StopReason::NonFinite));
    let (layer, basis, ic) = sorption_layer(RowScope::Global);
    let f = layer.forward(&basis, 4, &[&ic], 0).unwrap();
    let mut u_bar = vec![0.0; 128];
    u_bar[5] = f64::NAN;
    assert!(layer.backward(&f, &u_bar).is_err());
}

#[test]
fn bad_shapes_are_typed_errors() {
    let (layer, basis, ic) = sorption_layer(RowScope::Global);
    assert!(matches!(
        layer.forward(&basis[1..], 4, &[&ic], 0),
        Err(ExpertsError::ShapeMismatch { .. })
    ));
    assert!(layer.forward(&basis, 4, &[&ic[1..]], 0).is_err());
    let f = layer.forward(&basis, 4, &[&ic], 0).unwrap();
    assert!(layer.backward(&f, &[0.0; 3]).is_err());
    let grid = Grid::uniform_tx(8, 16, 1.0).unwrap();
    // Tiles of 8×8 = 64 points cannot give 65 samples.
    assert!(
        ConstraintLayer::new(Arc::new(SorptionLike), grid, LayerConfig::new(&[1, 2], 65)).is_err()
    );
}

#[test]
fn sampling_is_reproducible_and_stays_in_the_tile() {
    let (layer, _, _) = sorption_layer(RowScope::Global);
    let router = layer.router();
    for k in 0..router.n_experts() {
        let a = router.sample(k, 9).unwrap();
        assert_eq!(a, router.sample(k, 9).unwrap());
        assert_ne!(a, router.sample(k, 10).unwrap());
        assert!(a.iter().all(|&p| router.tiling().tile_of(p) == k));
        assert!(a.windows(2).all(|w| w[0] < w[1]));
    }
}
