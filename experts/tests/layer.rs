//! The end-to-end layer: gradients through the full basis and through the
//! initial conditions against finite differences (all terms in the residual or
//! not, local and non-local operators, with and without a solution map, a
//! residual over the points' coordinates), problems built at the points
//! against the full-grid terms, thread-count invariance and non-finite inputs.

#[path = "../../constraints/tests/common/pdes.rs"]
mod pdes;

use std::sync::Arc;

use num_dual::DualNum;
use pdes::{QuadraticTransport, SorptionLike};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tessera_constraints::{
    ConstraintError, InitialGuess, LevenbergMarquardt, LinearRow, LinearRowBar, Pde, StopReason,
    Term,
};
use tessera_experts::{ConstraintLayer, ExpertsError, LayerConfig, RowScope, SampleTerms};
use tessera_meshes::{FdScheme, FiniteDifference, Grid, Identity, LinearOperator, Shape};

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
    let b_bar = layer.backward(&f, basis, &v).unwrap();
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

    // The same along the initial conditions, and the same basis gradient.
    let both = layer.backward_with_ic(&f, basis, &v).unwrap();
    assert_eq!(both.basis, b_bar);
    let delta = uniform(&mut r, both.ic.len(), -1.0, 1.0);
    let loss = |h: f64| {
        let moved: Vec<f64> = ics
            .concat()
            .iter()
            .zip(&delta)
            .map(|(x, d)| x + h * d)
            .collect();
        let moved: Vec<&[f64]> = moved.chunks(ics[0].len()).collect();
        dot(&v, &layer.forward(basis, n, &moved, 7).unwrap().u)
    };
    let d = |h: f64| (loss(h) - loss(-h)) / (2.0 * h);
    let fd = (4.0 * d(h / 2.0) - d(h)) / 3.0;
    let analytic = dot(&both.ic, &delta);
    let scale = analytic.abs().max(fd.abs());
    assert!(
        (analytic - fd).abs() <= 1e-6 * scale,
        "initial condition: {analytic:e} vs {fd:e} (relative {:e})",
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

/// [`SorptionLike`] declaring only its first three terms as the residual's: `u_x`
/// (term 3) then enters the Robin rows alone.
struct ResidualThree;

impl Pde for ResidualThree {
    fn terms(&self, grid: &Grid) -> Result<Vec<Term>, ConstraintError> {
        SorptionLike.terms(grid)
    }
    fn residual_terms(&self) -> Option<usize> {
        Some(3)
    }
    fn residual<T: DualNum<Primitive = f64> + Copy>(&self, z: &[T], _: &[f64], out: &mut [T]) {
        SorptionLike.residual(z, &[], out);
    }
    fn linear_rows(&self, grid: &Grid, ic: &[f64]) -> Result<Vec<LinearRow>, ConstraintError> {
        SorptionLike.linear_rows(grid, ic)
    }
    fn initial_condition_backward(
        &self,
        grid: &Grid,
        ic: &[f64],
        rows: &[LinearRowBar],
        offset: Option<&[f64]>,
    ) -> Result<Vec<f64>, ConstraintError> {
        SorptionLike.initial_condition_backward(grid, ic, rows, offset)
    }
}

/// An operator with its locality hidden: the default `apply_at` (the full
/// grid, gathered) and no rows.
#[derive(Debug)]
struct NonLocal(Arc<dyn LinearOperator>);

impl LinearOperator for NonLocal {
    fn shape(&self) -> &Shape {
        self.0.shape()
    }
    fn apply(&self, input: &[f64], channels: usize, out: &mut [f64]) {
        self.0.apply(input, channels, out);
    }
    fn apply_adjoint(&self, input: &[f64], channels: usize, out: &mut [f64]) {
        self.0.apply_adjoint(input, channels, out);
    }
}

/// `inner` with its odd-numbered terms' operators hidden in a [`NonLocal`]:
/// those terms are applied on the full grid and gathered, the others
/// evaluated at the points.
struct PartlyNonLocal<P>(P);

impl<P: Pde> Pde for PartlyNonLocal<P> {
    fn terms(&self, grid: &Grid) -> Result<Vec<Term>, ConstraintError> {
        let mut terms = self.0.terms(grid)?;
        for term in terms.iter_mut().skip(1).step_by(2) {
            term.operator = Arc::new(NonLocal(term.operator.clone()));
            assert!(!term.operator.is_local());
        }
        Ok(terms)
    }
    fn n_equations(&self) -> usize {
        self.0.n_equations()
    }
    fn residual_terms(&self) -> Option<usize> {
        self.0.residual_terms()
    }
    fn residual<T: DualNum<Primitive = f64> + Copy>(&self, z: &[T], _: &[f64], out: &mut [T]) {
        self.0.residual(z, &[], out);
    }
    fn linear_rows(&self, grid: &Grid, ic: &[f64]) -> Result<Vec<LinearRow>, ConstraintError> {
        self.0.linear_rows(grid, ic)
    }
    fn solution_map(
        &self,
        grid: &Grid,
    ) -> Result<Option<Arc<dyn LinearOperator>>, ConstraintError> {
        self.0.solution_map(grid)
    }
    fn solution_offset(
        &self,
        grid: &Grid,
        ic: &[f64],
    ) -> Result<Option<Vec<f64>>, ConstraintError> {
        self.0.solution_offset(grid, ic)
    }
    fn initial_condition_backward(
        &self,
        grid: &Grid,
        ic: &[f64],
        rows: &[LinearRowBar],
        offset: Option<&[f64]>,
    ) -> Result<Vec<f64>, ConstraintError> {
        self.0.initial_condition_backward(grid, ic, rows, offset)
    }
}

#[test]
fn layer_with_fewer_residual_terms_matches_finite_differences() {
    for scope in [RowScope::Global, RowScope::Local] {
        let (layer, basis, ic) = sorption_layer(scope);
        let layer = ConstraintLayer::new(
            Arc::new(ResidualThree),
            layer.grid().clone(),
            layer.config().clone(),
        )
        .unwrap();
        assert_eq!(layer.n_residual(), 3);
        let f = layer.forward(&basis, 4, &[&ic], 7).unwrap();
        assert_eq!(f.problem(0, 0).expect("built on the host").n_terms(), 3);
        check_layer(&layer, &basis, 4, &[&ic], 13);
    }
}

/// A 3-D layer of four experts whose PDE has non-local terms and a solution
/// map.
fn transport_layer() -> ConstraintLayer<PartlyNonLocal<QuadraticTransport>> {
    let grid = Grid::uniform_txy(4, 8, 8, 1.0).unwrap();
    let mut config = LayerConfig::new(&[1, 2, 2], 20);
    config.lm = tight().with_initial(InitialGuess::Zeros).unwrap();
    let pde = PartlyNonLocal(QuadraticTransport {
        nu: 0.1,
        with_solution_map: true,
    });
    ConstraintLayer::new(Arc::new(pde), grid, config).unwrap()
}

#[test]
fn layer_with_non_local_terms_matches_finite_differences() {
    let (layer, basis, ic) = sorption_layer(RowScope::Global);
    let grid = layer.grid().clone();
    let non_local = ConstraintLayer::new(
        Arc::new(PartlyNonLocal(ResidualThree)),
        grid,
        layer.config().clone(),
    )
    .unwrap();
    check_layer(&non_local, &basis, 4, &[&ic], 14);
    let layer = transport_layer();
    let mut r = rng(5);
    let basis = uniform(&mut r, 4 * 64 * 3, -0.5, 0.5);
    let ic = uniform(&mut r, 64, -1.0, 1.0);
    check_layer(&layer, &basis, 3, &[&ic], 15);
}

/// A layer keeps the large buffers of its forward passes (the solution map's
/// full-grid fields, the non-local terms' rows) for the next: a pass after
/// passes of more samples and more basis functions gives, bit for bit, what a
/// fresh layer gives.
#[test]
fn kept_field_buffers_do_not_change_a_forward_pass() {
    let layer = transport_layer;
    let mut r = rng(21);
    let (big, ic) = (
        uniform(&mut r, 2 * 4 * 64 * 4, -0.5, 0.5),
        uniform(&mut r, 64, -1.0, 1.0),
    );
    let small = uniform(&mut r, 4 * 64 * 3, -0.5, 0.5);
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let pass = |layer: &ConstraintLayer<_>| {
        let f = layer.forward(&small, 3, &[&ic], 3).unwrap();
        let b = layer.backward(&f, &small, &f.u).unwrap();
        (bits(&f.u), bits(&f.weights), bits(&b))
    };
    let used = layer();
    used.forward(&big, 4, &[&ic, &ic], 2).unwrap();
    used.forward(&big[..4 * 64 * 4], 4, &[&ic], 2).unwrap();
    let fresh = pass(&layer());
    assert_eq!(pass(&used), fresh);
    // Released, they are allocated afresh, to the same result.
    used.release_kept_buffers();
    assert_eq!(pass(&used), fresh);
}

/// [`ResidualThree`] plus a term over the point's coordinates:
/// `F + (t + 2x)·u² / 10 − t·x / 100`, so that the coordinates enter the values, the
/// gradient and the curvature the backward pass reads.
struct WithCoordinates;

impl WithCoordinates {
    fn extra<T: DualNum<Primitive = f64> + Copy>(z: &[T], coords: &[f64]) -> T {
        let (t, x) = (coords[0], coords[1]);
        z[0] * z[0] * ((t + 2.0 * x) / 10.0) - t * x / 100.0
    }
}

impl Pde for WithCoordinates {
    fn terms(&self, grid: &Grid) -> Result<Vec<Term>, ConstraintError> {
        ResidualThree.terms(grid)
    }
    fn residual_terms(&self) -> Option<usize> {
        ResidualThree.residual_terms()
    }
    fn uses_coordinates(&self) -> bool {
        true
    }
    fn residual<T: DualNum<Primitive = f64> + Copy>(&self, z: &[T], coords: &[f64], out: &mut [T]) {
        ResidualThree.residual(z, &[], out);
        out[0] += Self::extra(z, coords);
    }
    fn linear_rows(&self, grid: &Grid, ic: &[f64]) -> Result<Vec<LinearRow>, ConstraintError> {
        ResidualThree.linear_rows(grid, ic)
    }
    fn initial_condition_backward(
        &self,
        grid: &Grid,
        ic: &[f64],
        rows: &[LinearRowBar],
        offset: Option<&[f64]>,
    ) -> Result<Vec<f64>, ConstraintError> {
        ResidualThree.initial_condition_backward(grid, ic, rows, offset)
    }
}

#[test]
fn layer_with_a_residual_over_coordinates_matches_finite_differences() {
    for scope in [RowScope::Global, RowScope::Local] {
        let (layer, basis, ic) = sorption_layer(scope);
        let grid = layer.grid().clone();
        let layer = ConstraintLayer::new(
            Arc::new(WithCoordinates),
            grid.clone(),
            layer.config().clone(),
        )
        .unwrap();
        check_layer(&layer, &basis, 4, &[&ic], 16);

        // Each expert's PDE rows read the coordinates of its own points: the
        // rows equal the residual evaluated by hand at each point's `(t, x)`.
        let f = layer.forward(&basis, 4, &[&ic], 7).unwrap();
        let coords = grid.coordinates();
        for k in 0..layer.n_experts() {
            let problem = f.problem(0, k).expect("built on the host");
            let omega = &f.weights[k * 4..(k + 1) * 4];
            let rows = problem.residual(&WithCoordinates, omega).unwrap();
            let d = problem.n_terms();
            let mut z = vec![0.0; problem.n_points() * d];
            problem.terms_at(omega, &mut z);
            for (i, &p) in f.points(k).iter().enumerate() {
                let mut want = [0.0];
                ResidualThree.residual(&z[i * d..(i + 1) * d], &[], &mut want);
                want[0] +=
                    WithCoordinates::extra(&z[i * d..(i + 1) * d], &coords[2 * p..2 * p + 2]);
                assert!((rows[i] - want[0]).abs() <= 1e-12 * want[0].abs().max(1.0));
            }
        }
    }
}

/// A PDE that does not give its rows' derivative in the initial condition:
/// the basis gradient still comes, the initial condition's is a typed error.
#[test]
fn initial_condition_gradient_without_the_pde_s_derivative_is_a_typed_error() {
    struct Silent;
    impl Pde for Silent {
        fn terms(&self, grid: &Grid) -> Result<Vec<Term>, ConstraintError> {
            SorptionLike.terms(grid)
        }
        fn residual<T: DualNum<Primitive = f64> + Copy>(&self, z: &[T], _: &[f64], out: &mut [T]) {
            SorptionLike.residual(z, &[], out);
        }
        fn linear_rows(&self, grid: &Grid, ic: &[f64]) -> Result<Vec<LinearRow>, ConstraintError> {
            SorptionLike.linear_rows(grid, ic)
        }
    }
    let (layer, basis, ic) = sorption_layer(RowScope::Global);
    let silent = ConstraintLayer::new(
        Arc::new(Silent),
        layer.grid().clone(),
        layer.config().clone(),
    )
    .unwrap();
    let f = silent.forward(&basis, 4, &[&ic], 7).unwrap();
    assert!(silent.backward(&f, &basis, &f.u).is_ok());
    let err = silent.backward_with_ic(&f, &basis, &f.u).err().unwrap();
    assert!(
        matches!(
            err,
            ExpertsError::Constraint(ConstraintError::NoDerivative { .. })
        ),
        "{err}"
    );
}

#[test]
fn residual_terms_out_of_range_are_typed_errors() {
    struct Declares(usize);
    impl Pde for Declares {
        fn terms(&self, grid: &Grid) -> Result<Vec<Term>, ConstraintError> {
            SorptionLike.terms(grid)
        }
        fn residual_terms(&self) -> Option<usize> {
            Some(self.0)
        }
        fn residual<T: DualNum<Primitive = f64> + Copy>(&self, z: &[T], _: &[f64], out: &mut [T]) {
            out[0] = z[0];
        }
        fn linear_rows(&self, _: &Grid, _: &[f64]) -> Result<Vec<LinearRow>, ConstraintError> {
            Ok(Vec::new())
        }
    }
    let grid = Grid::uniform_tx(8, 16, 1.0).unwrap();
    for bad in [0, 5] {
        let layer = ConstraintLayer::new(
            Arc::new(Declares(bad)),
            grid.clone(),
            LayerConfig::new(&[1, 2], 10),
        );
        assert!(matches!(
            layer.err(),
            Some(ExpertsError::Constraint(
                ConstraintError::ShapeMismatch { .. }
            ))
        ));
    }
}

/// Term `j`'s full-grid field `D_j · input` row `p` (`channels` values).
fn row(field: &[f64], p: usize, channels: usize) -> &[f64] {
    &field[p * channels..(p + 1) * channels]
}

#[test]
fn problems_equal_full_grid_terms_gathered_at_the_points() {
    let grid = Grid::uniform_tx(6, 10, 1.0).unwrap();
    let shape = grid.shape();
    let op = |o: FiniteDifference| -> Arc<dyn LinearOperator> { Arc::new(o) };
    let hidden = |o: Arc<dyn LinearOperator>| -> Arc<dyn LinearOperator> { Arc::new(NonLocal(o)) };
    let operators: Vec<Arc<dyn LinearOperator>> = vec![
        Arc::new(Identity::new(shape)),
        op(FiniteDifference::first(&grid, 0, FdScheme::Reference).unwrap()),
        hidden(op(FiniteDifference::second(
            &grid,
            1,
            FdScheme::SecondOrder,
        )
        .unwrap())),
        op(FiniteDifference::first(&grid, 1, FdScheme::Reference).unwrap()),
        hidden(op(
            FiniteDifference::first(&grid, 0, FdScheme::SecondOrder).unwrap()
        )),
    ];
    let terms: Vec<Term> = operators
        .into_iter()
        .enumerate()
        .map(|(j, operator)| Term {
            name: format!("z{j}"),
            operator,
        })
        .collect();
    let (g, n, d_r) = (grid.len(), 3, 3);
    let mut r = rng(6);
    let solution = uniform(&mut r, g * n, -1.0, 1.0);
    let offset = uniform(&mut r, g, -1.0, 1.0);
    let rows = vec![
        LinearRow {
            point: 4,
            coeffs: vec![(0, 1.0), (3, -0.5)],
            rhs: 0.7,
        },
        LinearRow {
            point: 17,
            coeffs: vec![(2, 2.0), (4, 0.25)],
            rhs: -1.0,
        },
        LinearRow {
            point: 59,
            coeffs: vec![(1, 1.5)],
            rhs: 0.0,
        },
    ];
    let points = [0, 1, 4, 9, 20, 33, 47, 58, 59];
    let sets: [&[usize]; 2] = [&[5, 7], &points];
    let row_ids = [2, 0];
    for with_offset in [false, true] {
        let offset = with_offset.then_some(&offset[..]);
        let sample = SampleTerms::new(&terms, d_r, &solution, n, offset, &rows, &sets).unwrap();
        let values: Vec<Vec<f64>> = terms
            .iter()
            .map(|t| t.operator.apply_to_vec(&solution, n))
            .collect();
        let offsets: Vec<Vec<f64>> = terms
            .iter()
            .map(|t| offset.map_or(vec![0.0; g], |s0| t.operator.apply_to_vec(s0, 1)))
            .collect();
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-14 * b.abs().max(1e-300);
        // Each set's rows, the second's starting after the first's in the
        // non-local terms' gathered rows.
        for (k, points) in sets.iter().enumerate() {
            let problem = sample.problem(k, &row_ids, 1, 1e-4).unwrap();
            for (i, &p) in points.iter().enumerate() {
                for j in 0..d_r {
                    let got = &problem.term_rows()[(i * d_r + j) * n..][..n];
                    assert!(
                        got.iter()
                            .zip(row(&values[j], p, n))
                            .all(|(a, b)| close(*a, *b))
                    );
                    assert!(close(problem.offsets()[i * d_r + j], offsets[j][p]));
                }
            }
        }
        let problem = sample.problem(1, &row_ids, 1, 1e-4).unwrap();
        for (i, &id) in row_ids.iter().enumerate() {
            let lr = &rows[id];
            let mut expected = vec![0.0; n];
            let mut rhs = lr.rhs;
            for &(j, c) in &lr.coeffs {
                for (e, x) in expected.iter_mut().zip(row(&values[j], lr.point, n)) {
                    *e += c * x;
                }
                rhs -= c * offsets[j][lr.point];
            }
            let got = &problem.linear()[i * n..(i + 1) * n];
            assert!(got.iter().zip(&expected).all(|(a, b)| close(*a, *b)));
            assert!(close(problem.linear_rhs()[i], rhs));
        }
    }
    // Bad input: typed errors.
    let sample = SampleTerms::new(&terms, d_r, &solution, n, None, &rows, &sets).unwrap();
    assert!(sample.problem(2, &[], 1, 1e-4).is_err());
    assert!(sample.problem(0, &[3], 1, 1e-4).is_err());
    let new = |n_residual, solution: &[f64], offset, rows: &[LinearRow], sets: &[&[usize]]| {
        SampleTerms::new(&terms, n_residual, solution, n, offset, rows, sets).map(|_| ())
    };
    assert!(new(d_r, &solution, None, &rows, &[&[0], &[g]]).is_err());
    assert!(new(0, &solution, None, &rows, &sets).is_err());
    assert!(new(6, &solution, None, &rows, &sets).is_err());
    assert!(new(d_r, &solution[1..], None, &rows, &sets).is_err());
    assert!(new(d_r, &solution, Some(&offset[1..]), &rows, &sets).is_err());
    let bad_term = [LinearRow {
        point: 0,
        coeffs: vec![(5, 1.0)],
        rhs: 0.0,
    }];
    assert!(new(d_r, &solution, None, &bad_term, &sets).is_err());
    let bad_point = [LinearRow {
        point: g,
        coeffs: vec![(0, 1.0)],
        rhs: 0.0,
    }];
    assert!(new(d_r, &solution, None, &bad_point, &sets).is_err());
}

/// `u`, the weights and `B̄` of `layer` run in a pool of `threads` threads.
fn run_in_pool<P: Pde>(
    layer: &ConstraintLayer<P>,
    threads: usize,
    basis: &[f64],
    ics: &[&[f64]],
) -> [Vec<u64>; 3] {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let u_bar: Vec<f64> = (0..ics.len() * layer.grid().len())
        .map(|i| (i as f64 * 0.37).sin())
        .collect();
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    pool.install(|| {
        let f = layer.forward(basis, 4, ics, 5).unwrap();
        let b = layer.backward(&f, basis, &u_bar).unwrap();
        [bits(&f.u), bits(&f.weights), bits(&b)]
    })
}

#[test]
fn results_are_bitwise_identical_for_any_thread_count() {
    // A batch of two on a small grid (parallel over samples and experts).
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
    let one = run_in_pool(&layer, 1, &batch, &ics);
    for threads in [2, 3] {
        assert_eq!(one, run_in_pool(&layer, threads, &batch, &ics));
    }
    // A batch of one on a grid of several chunks of points, with sampled points
    // over more than one chunk and local and non-local terms (parallel inside
    // the sample).
    let grid = Grid::uniform_tx(40, 64, 1.0).unwrap();
    let mut config = LayerConfig::new(&[1, 2], 1200);
    config.seed = 8;
    let pde = PartlyNonLocal(ResidualThree);
    let layer = ConstraintLayer::new(Arc::new(pde), grid, config).unwrap();
    let mut r = rng(9);
    let basis = uniform(&mut r, 40 * 64 * 4, 0.2, 1.0);
    let ic = uniform(&mut r, 64, 0.05, 0.2);
    let one = run_in_pool(&layer, 1, &basis, &[&ic]);
    for threads in [2, 3] {
        assert_eq!(one, run_in_pool(&layer, threads, &basis, &[&ic]));
    }
}

#[test]
fn non_finite_inputs_are_statuses_and_typed_errors() {
    let (layer, mut basis, ic) = sorption_layer(RowScope::Local);
    basis[3] = f64::NAN; // point 0 lies in tile 0
    let f = layer.forward(&basis, 4, &[&ic], 0).unwrap();
    assert!(f.statuses.iter().any(|s| s.reason == StopReason::NonFinite));
    assert!(matches!(
        layer.backward(&f, &basis, &vec![1.0; 128]),
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
    assert!(layer.backward(&f, &basis, &u_bar).is_err());
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
    assert!(layer.backward(&f, &basis, &[0.0; 3]).is_err());
    assert!(matches!(
        layer.backward(&f, &basis[1..], &[0.0; 128]),
        Err(ExpertsError::ShapeMismatch { .. })
    ));
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
