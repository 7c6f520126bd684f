//! The batched solver on a real GPU against the CPU solver. On a machine
//! without a CUDA driver every test here says it is skipped and why; the
//! kernel's arithmetic is still checked on such machines by `gpu_host`.
#![cfg(feature = "cuda")]

mod common;

use common::gpu::{self, Case};
use tessera_constraints::gpu::{Gpu, GpuError, GpuLm, SolveTimes};
use tessera_constraints::{HessianMode, InitialGuess, LevenbergMarquardt, Sensitivity};

/// GPU 0, or `None` with a skip notice when there is no driver.
fn gpu() -> Option<Gpu> {
    match Gpu::open(0) {
        Ok(gpu) => Some(gpu),
        Err(GpuError::NoDriver) => {
            println!("skipped: {}", GpuError::NoDriver);
            None
        }
        Err(e) => panic!("a CUDA driver is present but GPU 0 does not open: {e}"),
    }
}

/// Solves `case` on the GPU and on the CPU: same reasons and iterations, ω*
/// and residual norms to `tol`.
fn check(gpu: &Gpu, case: &Case, lm: &LevenbergMarquardt, tol: f64) {
    let solver = GpuLm::new(gpu, &case.cuda, case.name, case.shape()).expect("kernel loads");
    let got = solver.solve(lm, &case.refs()).expect("GPU solve");
    for (k, (problem, dev)) in case.problems.iter().zip(&got).enumerate() {
        let cpu = lm.solve(&case.pde, problem).expect("CPU solve");
        let what = format!("{} problem {k}", case.name);
        assert_eq!(dev.status.reason, cpu.status.reason, "{what}: reason");
        assert_eq!(
            dev.status.iterations, cpu.status.iterations,
            "{what}: iterations"
        );
        let scale = cpu.omega.iter().fold(1.0f64, |a, w| a.max(w.abs()));
        for (i, (d, c)) in dev.omega.iter().zip(&cpu.omega).enumerate() {
            assert!(
                (d - c).abs() <= tol * scale,
                "{what}: ω[{i}] {d:e} vs {c:e}"
            );
        }
        let (d, c) = (dev.status.final_residual, cpu.status.final_residual);
        assert!(
            (d - c).abs() <= tol * c.abs().max(1e-300),
            "{what}: residual {d:e} vs {c:e}"
        );
    }
}

#[test]
fn the_gpu_solves_every_case_as_the_cpu_does() {
    let Some(gpu) = gpu() else { return };
    println!("GPU 0: {}", gpu.name().unwrap_or_default());
    let lm = |init| LevenbergMarquardt::default().with_initial(init).unwrap();
    check(&gpu, &gpu::sorption(16), &lm(InitialGuess::Ones), 1e-10);
    check(&gpu, &gpu::transport(64), &lm(InitialGuess::Zeros), 1e-10);
    check(&gpu, &gpu::system(8), &lm(InitialGuess::Zeros), 1e-10);
}

fn slices(v: &[Vec<f64>]) -> Vec<&[f64]> {
    v.iter().map(Vec::as_slice).collect()
}

/// One random upstream gradient `ω̄` per problem of `case`.
fn upstream(case: &Case, seed: u64) -> Vec<Vec<f64>> {
    let mut r = common::rng(seed);
    let n = case.shape().n_basis;
    case.problems
        .iter()
        .map(|_| common::uniform(&mut r, n, 1.0))
        .collect()
}

#[test]
fn the_gpu_backward_pass_matches_the_cpu_row_gradients() {
    let Some(gpu) = gpu() else { return };
    let lm = common::tight_lm(InitialGuess::Zeros);
    for case in [gpu::sorption(16), gpu::transport(64), gpu::system(8)] {
        let solver = GpuLm::new(&gpu, &case.cuda, case.name, case.shape()).expect("kernel loads");
        let omegas: Vec<Vec<f64>> = case
            .problems
            .iter()
            .map(|p| lm.solve(&case.pde, p).expect("CPU solve").omega)
            .collect();
        let bars = upstream(&case, 3);
        for mode in [HessianMode::Exact, HessianMode::GaussNewton] {
            let got = solver
                .differentiate(mode, &case.refs(), &slices(&omegas), &slices(&bars))
                .expect("GPU backward");
            for (k, (problem, dev)) in case.problems.iter().zip(got).enumerate() {
                let dev = dev.expect("a row gradient");
                let cpu = Sensitivity::new(&case.pde, problem, &omegas[k], mode)
                    .and_then(|s| s.row_gradient(problem, &bars[k]))
                    .expect("CPU backward");
                for (what, d, c) in [
                    ("λ", &dev.lambda, &cpu.lambda),
                    ("term ω", &dev.term_omega, &cpu.term_omega),
                    ("term λ", &dev.term_lambda, &cpu.term_lambda),
                    ("linear ω", &dev.linear_omega, &cpu.linear_omega),
                ] {
                    let scale = c.iter().fold(1e-300f64, |m, x| m.max(x.abs()));
                    for (i, (a, b)) in d.iter().zip(c.iter()).enumerate() {
                        assert!(
                            (a - b).abs() <= 1e-8 * scale,
                            "{} problem {k} {mode:?} {what}[{i}]: {a:e} vs {b:e}",
                            case.name
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn a_batch_kept_on_the_gpu_differentiates_as_a_fresh_upload() {
    let Some(gpu) = gpu() else { return };
    let lm = common::tight_lm(InitialGuess::Zeros);
    for case in [gpu::sorption(16), gpu::transport(64), gpu::system(8)] {
        let solver = GpuLm::new(&gpu, &case.cuda, case.name, case.shape()).expect("kernel loads");
        let (solutions, kept) = solver.solve_kept(&lm, &case.refs()).expect("GPU solve");
        assert_eq!(kept.len(), case.problems.len());
        let plain = solver.solve(&lm, &case.refs()).expect("GPU solve");
        assert_eq!(solutions, plain, "{}: kept and plain solves", case.name);
        let omegas: Vec<Vec<f64>> = solutions.into_iter().map(|s| s.omega).collect();
        let bars = upstream(&case, 5);
        for mode in [HessianMode::Exact, HessianMode::GaussNewton] {
            // Twice: the first pass leaves its scratch in the kept batch.
            for pass in 0..2 {
                let kept_grads = solver
                    .differentiate_solved(mode, &kept, &slices(&bars))
                    .expect("GPU backward on the kept batch");
                let fresh = solver
                    .differentiate(mode, &case.refs(), &slices(&omegas), &slices(&bars))
                    .expect("GPU backward on a fresh upload");
                for (k, (a, b)) in kept_grads.into_iter().zip(fresh).enumerate() {
                    assert_eq!(
                        a.expect("a row gradient"),
                        b.expect("a row gradient"),
                        "{} problem {k} {mode:?} pass {pass}",
                        case.name
                    );
                }
            }
        }
        let err = solver
            .differentiate_solved(HessianMode::Exact, &kept, &slices(&bars[1..]))
            .unwrap_err();
        assert!(matches!(err, GpuError::Unsupported(_)), "{err}");
    }
}

#[test]
fn the_solver_says_where_its_time_went() {
    let Some(gpu) = gpu() else { return };
    let case = gpu::sorption(16);
    let solver = GpuLm::new(&gpu, &case.cuda, case.name, case.shape()).expect("kernel loads");
    let lm = common::tight_lm(InitialGuess::Zeros);
    let (solutions, kept) = solver.solve_kept(&lm, &case.refs()).expect("GPU solve");
    let bars = upstream(&case, 7);
    solver
        .differentiate_solved(HessianMode::Exact, &kept, &slices(&bars))
        .expect("backward on the kept batch");
    let times = solver.take_times();
    assert_eq!((times.solve.calls, times.backward.calls), (1, 1));
    assert!(
        times.solve.pack_s > 0.0 && times.solve.kernel_s > 0.0,
        "{times:?}"
    );
    assert_eq!(
        times.backward.pack_s, 0.0,
        "a kept batch is not packed again"
    );
    assert_eq!(
        solver.take_times(),
        SolveTimes::default(),
        "taking starts again"
    );
    let omegas: Vec<Vec<f64>> = solutions.into_iter().map(|s| s.omega).collect();
    solver
        .differentiate(
            HessianMode::Exact,
            &case.refs(),
            &slices(&omegas),
            &slices(&bars),
        )
        .expect("backward on a fresh upload");
    let fresh = solver.take_times().backward;
    assert!(fresh.calls == 1 && fresh.pack_s > 0.0, "{fresh:?}");
}

#[test]
fn the_memory_peak_counts_an_array_already_freed() {
    let Some(gpu) = gpu() else { return };
    gpu.reset_memory_peak().expect("reset");
    let len = 8 << 20; // 64 MiB of doubles
    let array = gpu.stream().alloc_zeros::<f64>(len).expect("allocation");
    drop(array);
    gpu.stream().synchronize().expect("synchronize");
    match gpu.memory_peak().expect("peak") {
        Some(bytes) => assert!(bytes >= 8 * len as u64, "peak {bytes} bytes"),
        None => println!("skipped: this GPU allocates outside memory pools"),
    }
}

#[test]
fn problems_of_another_shape_are_refused() {
    let Some(gpu) = gpu() else { return };
    let (ds, transport) = (gpu::sorption(16), gpu::transport(16));
    let solver = GpuLm::new(&gpu, &ds.cuda, ds.name, ds.shape()).expect("kernel loads");
    let err = solver
        .solve(&LevenbergMarquardt::default(), &transport.refs())
        .unwrap_err();
    assert!(matches!(err, GpuError::Unsupported(_)), "{err}");
}
