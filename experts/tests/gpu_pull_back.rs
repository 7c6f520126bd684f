//! The layer's passes over the grid on a GPU (`GpuLm::assemble`,
//! `GpuLm::pull_back`), checked on the host: the arrays the layer hands the
//! device for a forward pass (`device_pull_back_rows`, its tiles and the
//! residual's terms at every grid point) and the row gradients of its
//! problems, run through `tiles.cu` compiled for the host, give the CPU
//! layer's `u` and `B̄` — for a PDE whose linear rows read a term outside
//! the residual, and for one with a solution map and offsets. On a machine
//! with a GPU, the layer with its solves there gives the CPU layer's `u`,
//! `B̄` and gradient in the initial conditions (skipped, saying why, without
//! a CUDA driver).
#![cfg(feature = "cuda")]

#[path = "../../constraints/tests/common/mod.rs"]
mod common;

use std::sync::Arc;

use common::gpu::{TapePde, gpu_or_skip, sorption};
use common::pdes::{QuadraticTransport, SorptionLike};
use common::tiles::{Launch, TilesCase, assert_close};
use num_dual::DualNum;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tessera_constraints::gpu::{GpuLm, Tiles};
use tessera_constraints::{
    ConstraintError, HessianMode, InitialGuess, LevenbergMarquardt, LinearRow, LinearRowBar, Pde,
    Sensitivity, Term,
};
use tessera_experts::terms::residual_rows;
use tessera_experts::{ConstraintLayer, LayerConfig, RowScope};
use tessera_meshes::Grid;

/// Diffusion–sorption's terms and linear rows (the Robin condition's rows
/// read `u_x`), with the residual of `residual` over the first `n_residual`
/// terms.
struct Sorption<R> {
    residual: R,
    n_residual: usize,
}

impl<R: Pde> Pde for Sorption<R> {
    fn terms(&self, grid: &Grid) -> Result<Vec<Term>, ConstraintError> {
        SorptionLike.terms(grid)
    }
    fn residual_terms(&self) -> Option<usize> {
        Some(self.n_residual)
    }
    fn linear_rows(&self, grid: &Grid, ic: &[f64]) -> Result<Vec<LinearRow>, ConstraintError> {
        SorptionLike.linear_rows(grid, ic)
    }
    fn n_equations(&self) -> usize {
        1
    }
    fn residual<D: DualNum<Primitive = f64> + Copy>(&self, z: &[D], x: &[f64], out: &mut [D]) {
        self.residual.residual(z, x, out);
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

fn values(rng: &mut ChaCha8Rng, len: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..len).map(|_| rng.random_range(lo..hi)).collect()
}

/// The CPU layer's forward and backward pass against the kernels run on
/// what the GPU layer would upload for the same forward pass, each expert
/// given the linear rows `scope` says.
fn check<P: Pde>(pde: P, grid: Grid, split: &[usize], ic_len: usize, scope: RowScope, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let pde = Arc::new(pde);
    let mut config = LayerConfig::new(split, 9);
    config.row_scope = scope;
    config.lm = LevenbergMarquardt::default()
        .with_initial(InitialGuess::Ones)
        .unwrap();
    config.hessian = HessianMode::Exact;
    let layer = ConstraintLayer::new(Arc::clone(&pde), grid.clone(), config).unwrap();
    let (g, n, samples, k) = (grid.len(), 4, 2, layer.n_experts());
    let basis = values(&mut rng, samples * g * n, -0.5, 0.5);
    let ics: Vec<Vec<f64>> = (0..samples)
        .map(|_| values(&mut rng, ic_len, 0.2, 0.8))
        .collect();
    let ic_refs: Vec<&[f64]> = ics.iter().map(Vec::as_slice).collect();
    let forward = layer.forward(&basis, n, &ic_refs, 3).unwrap();
    let u_bar = values(&mut rng, samples * g, -1.0, 1.0);
    let basis_bar = layer.backward(&forward, &basis, &u_bar).unwrap();

    // What the device holds: the fields S·B, the offsets, ω* (the forward
    // pass's weights), and per problem ω̄ (by its definition here), λ and
    // the row gradients' coefficients (the CPU's IFT).
    let map = pde.solution_map(&grid).unwrap();
    let fields: Vec<f64> = basis
        .chunks_exact(g * n)
        .flat_map(|b| map.as_ref().map_or(b.to_vec(), |s| s.apply_to_vec(b, n)))
        .collect();
    let offsets: Option<Vec<f64>> = ics
        .iter()
        .map(|ic| pde.solution_offset(&grid, ic).unwrap())
        .collect::<Option<Vec<_>>>()
        .map(|o| o.concat());
    let owners = layer.router().owners();
    let mut omega_bar = vec![0.0; samples * k * n];
    for (q, &owner) in owners.iter().enumerate() {
        for b in 0..samples {
            for c in 0..n {
                omega_bar[(b * k + owner) * n + c] +=
                    u_bar[b * g + q] * fields[(b * g + q) * n + c];
            }
        }
    }
    let (mut lambda, mut term_omega, mut term_lambda) = (vec![], vec![], vec![]);
    let (mut linear_omega, mut linear_lambda) = (vec![], vec![]);
    for b in 0..samples {
        for e in 0..k {
            let problem = forward.problem(b, e).expect("built on the host");
            let at = b * k + e;
            let omega = &forward.weights[at * n..(at + 1) * n];
            let gradient = Sensitivity::new(pde.as_ref(), problem, omega, HessianMode::Exact)
                .unwrap()
                .row_gradient(problem, &omega_bar[at * n..(at + 1) * n])
                .unwrap();
            lambda.extend(gradient.lambda);
            term_omega.extend(gradient.term_omega);
            term_lambda.extend(gradient.term_lambda);
            linear_omega.extend(gradient.linear_omega);
            linear_lambda.extend(gradient.linear_lambda);
        }
    }
    let tiles = Tiles::new(owners, k).unwrap();
    let adjoint = residual_rows(&layer.terms()[..layer.n_residual()], g)
        .unwrap()
        .expect("local residual terms")
        .transpose();
    let rows = layer
        .device_pull_back_rows(&forward)
        .unwrap()
        .expect("local linear rows, the same in every sample");
    let case = TilesCase {
        n,
        d: layer.n_residual(),
        samples,
        tiles: &tiles,
        adjoint: &adjoint,
        rows: &rows,
        fields: &fields,
        omega: &forward.weights,
        lambda: &lambda,
        offsets: offsets.as_deref(),
        u_bar: &u_bar,
        term_omega: &term_omega,
        term_lambda: &term_lambda,
        linear_omega: &linear_omega,
        linear_lambda: &linear_lambda,
    };
    let launch = Launch {
        blocks: 3,
        threads: 16,
        chunks: 5,
        part_threads: 64,
    };
    let got = case.run(launch, &format!("layer-{seed}"));
    assert_close("u", &got.u, &forward.u, 1e-12);
    assert_close("ω̄", &got.omega_bar, &omega_bar, 1e-12);
    // The layer applies Sᵀ to the device's F̄ on the host.
    let got_bar: Vec<f64> = got
        .f_bar
        .chunks_exact(g * n)
        .flat_map(|f| {
            map.as_ref()
                .map_or(f.to_vec(), |s| s.apply_adjoint_to_vec(f, n))
        })
        .collect();
    assert_close("B̄", &got_bar, &basis_bar, 1e-10);
}

#[test]
fn linear_rows_pull_back_as_on_the_cpu_whether_their_terms_are_residual_ones_or_not() {
    // The Robin condition's rows read u_x: a residual term of the first
    // PDE, only a linear-row term of the second.
    let grid = || Grid::uniform_tx(6, 10, 1.0).unwrap();
    check(SorptionLike, grid(), &[2, 2], 10, RowScope::Global, 1);
    let outside = || Sorption {
        residual: SorptionLike,
        n_residual: 3,
    };
    check(outside(), grid(), &[1, 3], 10, RowScope::Global, 3);
    // Each expert with only the rows in its tile: lists of different
    // lengths, IC rows for some experts and boundary rows for all.
    check(outside(), grid(), &[2, 2], 10, RowScope::Local, 4);
}

#[test]
fn a_solution_map_and_offsets_assemble_and_pull_back_as_on_the_cpu() {
    let pde = QuadraticTransport {
        nu: 0.01,
        with_solution_map: true,
    };
    let grid = Grid::uniform_txy(4, 5, 6, 1.0).unwrap();
    check(pde, grid, &[1, 1, 2], 30, RowScope::Global, 2);
}

#[test]
fn the_layer_on_a_gpu_assembles_and_pulls_back_as_on_the_cpu() {
    let Some(gpu) = gpu_or_skip() else {
        return;
    };
    let case = sorption(6);
    let shape = case.shape();
    let pde = Arc::new(Sorption::<TapePde> {
        residual: case.pde,
        n_residual: 4,
    });
    let grid = Grid::uniform_tx(21, 32, 1.0).unwrap();
    let mut config = LayerConfig::new(&[1, 4], 60);
    config.lm = LevenbergMarquardt::default()
        .with_initial(InitialGuess::Ones)
        .unwrap();
    let cpu = ConstraintLayer::new(Arc::clone(&pde), grid.clone(), config.clone()).unwrap();
    let solver = GpuLm::new(&gpu, &case.cuda, case.name, shape).unwrap();
    let on_gpu = ConstraintLayer::new(pde, grid.clone(), config)
        .unwrap()
        .with_gpu(Arc::new(solver));
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let (g, n, samples) = (grid.len(), 6, 3);
    let basis = values(&mut rng, samples * g * n, -0.5, 0.5);
    let ics: Vec<Vec<f64>> = (0..samples)
        .map(|_| values(&mut rng, 32, 0.2, 0.8))
        .collect();
    let ic_refs: Vec<&[f64]> = ics.iter().map(Vec::as_slice).collect();
    let expected = cpu.forward(&basis, n, &ic_refs, 5).unwrap();
    let got = on_gpu.forward(&basis, n, &ic_refs, 5).unwrap();
    assert!(
        got.problem(0, 0).is_none(),
        "the problems were gathered on the GPU"
    );
    let reasons =
        |f: &tessera_experts::Forward| f.statuses.iter().map(|s| s.reason).collect::<Vec<_>>();
    assert_eq!(reasons(&got), reasons(&expected));
    assert_close("u", &got.u, &expected.u, 1e-10);
    let u_bar = values(&mut rng, samples * g, -1.0, 1.0);
    let expected_bar = cpu.backward(&expected, &basis, &u_bar).unwrap();
    let got_bar = on_gpu.backward(&got, &basis, &u_bar).unwrap();
    assert_close("B̄", &got_bar, &expected_bar, 1e-8);
    let times = on_gpu.gpu_solver().unwrap().take_times();
    assert_eq!(times.backward.calls, 1, "one backward call, on the GPU");
    // The gradient in the initial conditions: the adjoint solves on the GPU,
    // the pull-back on the host.
    let expected_ic = cpu.backward_with_ic(&expected, &basis, &u_bar).unwrap();
    let got_ic = on_gpu.backward_with_ic(&got, &basis, &u_bar).unwrap();
    assert_close("B̄ with the ic's", &got_ic.basis, &expected_ic.basis, 1e-8);
    assert_close("ic̄", &got_ic.ic, &expected_ic.ic, 1e-8);
}
