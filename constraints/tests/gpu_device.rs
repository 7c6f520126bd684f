//! The batched solver on a real GPU against the CPU solver. On a machine
//! without a CUDA driver every test here says it is skipped and why; the
//! kernel's arithmetic is still checked on such machines by `gpu_host`.
#![cfg(feature = "cuda")]

mod common;

use common::gpu::{self, Case};
use tessera_constraints::gpu::{Gpu, GpuError, GpuLm};
use tessera_constraints::{InitialGuess, LevenbergMarquardt};

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
