//! The batched solver on a real GPU against the CPU solver. On a machine
//! without a CUDA driver every test here says it is skipped and why; the
//! kernel's arithmetic is still checked on such machines by `gpu_host`.
#![cfg(feature = "cuda")]

mod common;

use common::gpu::{self, Case};
use rand::Rng;
use tessera_constraints::gpu::{
    GatheredProblem, Gpu, GpuError, GpuLm, RowGather, SolveTimes, staging,
};
use tessera_constraints::{
    ExpertProblem, HessianMode, InitialGuess, LevenbergMarquardt, Sensitivity,
};
use tessera_meshes::{Grid, SparseRows};

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
    let Some(gpu) = gpu::gpu_or_skip() else {
        return;
    };
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
    let Some(gpu) = gpu::gpu_or_skip() else {
        return;
    };
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
    let Some(gpu) = gpu::gpu_or_skip() else {
        return;
    };
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
fn term_rows_gathered_on_the_gpu_solve_as_rows_built_on_the_host() {
    let Some(gpu) = gpu::gpu_or_skip() else {
        return;
    };
    let case = gpu::sorption(16);
    let solver = GpuLm::new(&gpu, &case.cuda, case.name, case.shape()).expect("kernel loads");
    let (n, samples) = (16, 2);
    let grid = Grid::uniform_tx(20, 50, 1.0).unwrap();
    let g = grid.len();
    let terms = gpu::sorption_stencils(&grid);
    // Three experts of different sizes, the same points for both samples.
    let mut rng = common::rng(21);
    let points: Vec<Vec<usize>> = [60, 90, 30]
        .iter()
        .map(|&p| (0..p).map(|_| rng.random_range(0..g)).collect())
        .collect();
    let mut rows = SparseRows::new(g);
    for &p in points.iter().flatten() {
        for op in &terms {
            rows.push_row(op.as_ref(), p, 1.0).unwrap();
        }
    }
    // What the device gathers from: the terms at every grid point, with
    // tiles whose owners do not matter to the solves.
    let mut everywhere = SparseRows::new(g);
    for p in 0..g {
        for op in &terms {
            everywhere.push_row(op.as_ref(), p, 1.0).unwrap();
        }
    }
    let owners: Vec<usize> = (0..g).map(|p| p % 3).collect();
    let tiles = solver.tiles(&owners, 3, &everywhere).expect("tiles upload");
    let flat: Vec<usize> = points.concat();
    // A basis near the case's scales: `u` close to 1 keeps R(u) smooth.
    let fields: Vec<f64> = (0..samples * g * n)
        .map(|_| rng.random_range(0.0..0.05))
        .collect();
    let mut host_rows = vec![0.0; samples * rows.len() * n];
    for (out, field) in host_rows
        .chunks_exact_mut(rows.len() * n)
        .zip(fields.chunks_exact(g * n))
    {
        rows.apply(field, n, out);
    }
    let (mut host, mut gathered) = (Vec::new(), Vec::new());
    let mut at = 0;
    for (seed, pts) in
        (0..samples).flat_map(|b| points.iter().enumerate().map(move |(k, p)| (b * 3 + k, p)))
    {
        let parts = common::sorption_parts(seed as u64, pts.len(), n, 4);
        let len = pts.len() * 4 * n;
        let problem_rows = host_rows[at..at + len].to_vec();
        at += len;
        host.push(
            ExpertProblem::new(
                parts.size,
                problem_rows,
                parts.offsets.clone(),
                parts.linear.clone(),
                parts.linear_rhs.clone(),
                parts.ridge,
            )
            .unwrap(),
        );
        gathered.push(
            GatheredProblem::new(
                parts.size,
                pts.len(),
                parts.offsets,
                parts.linear,
                parts.linear_rhs,
                parts.ridge,
                Vec::new(),
            )
            .unwrap(),
        );
    }
    // The default tolerances, whose stopping tests are decided above
    // round-off: the device fuses the gather's multiply-adds, so its rows
    // differ from the host's in the last bits, and in the round-off regime
    // (`tight_lm`) that alone can move the stop by a step (6 against 5 on an
    // H200).
    let lm = LevenbergMarquardt::default()
        .with_initial(InitialGuess::Zeros)
        .unwrap();
    let gather = RowGather::new(&flat, &fields, g, n).unwrap();
    let (from_gather, kept) = solver
        .solve_kept_gathered(&lm, &gathered.iter().collect::<Vec<_>>(), &tiles, &gather)
        .expect("GPU solve of gathered rows");
    let (uploaded, kept_host) = solver
        .solve_kept(&lm, &host.iter().collect::<Vec<_>>())
        .expect("GPU solve of uploaded rows");
    for (k, (a, b)) in from_gather.iter().zip(&uploaded).enumerate() {
        assert_eq!(a.status.reason, b.status.reason, "problem {k}: reason");
        assert_eq!(
            a.status.iterations, b.status.iterations,
            "problem {k}: iterations"
        );
        let scale = b.omega.iter().fold(1.0f64, |m, w| m.max(w.abs()));
        for (x, y) in a.omega.iter().zip(&b.omega) {
            assert!(
                (x - y).abs() <= 1e-10 * scale,
                "problem {k}: ω {x:e} vs {y:e}"
            );
        }
    }
    // The backward passes on both kept batches: the gathered rows are the
    // uploaded ones to round-off.
    let bars: Vec<Vec<f64>> = (0..host.len())
        .map(|k| common::uniform(&mut common::rng(40 + k as u64), n, 1.0))
        .collect();
    let a = solver
        .differentiate_solved(HessianMode::Exact, &kept, &slices(&bars))
        .unwrap();
    let b = solver
        .differentiate_solved(HessianMode::Exact, &kept_host, &slices(&bars))
        .unwrap();
    for (k, (a, b)) in a.into_iter().zip(b).enumerate() {
        let (a, b) = (a.unwrap(), b.unwrap());
        for (what, x, y) in [
            ("λ", &a.lambda, &b.lambda),
            ("term ω", &a.term_omega, &b.term_omega),
            ("term λ", &a.term_lambda, &b.term_lambda),
        ] {
            let scale = y.iter().fold(1e-300f64, |m, v| m.max(v.abs()));
            for (u, v) in x.iter().zip(y) {
                assert!(
                    (u - v).abs() <= 1e-8 * scale,
                    "problem {k} {what}: {u:e} vs {v:e}"
                );
            }
        }
    }
    // A gather that does not match the problems is refused before any launch:
    // one sample short, or the right count of samples of another N.
    let short = RowGather::new(&flat, &fields[..g * n], g, n).unwrap();
    let narrow = RowGather::new(&flat, &fields[..samples * g * (n / 2)], g, n / 2).unwrap();
    assert_eq!(narrow.samples(), samples);
    for bad in [short, narrow] {
        let err = solver
            .solve_kept_gathered(&lm, &gathered.iter().collect::<Vec<_>>(), &tiles, &bad)
            .unwrap_err();
        assert!(matches!(err, GpuError::Unsupported(_)), "{err}");
    }
}

#[test]
fn the_solver_says_where_its_time_went() {
    let Some(gpu) = gpu::gpu_or_skip() else {
        return;
    };
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
    // The solve's rounds: at least the first evaluation and one per
    // iteration of its longest problem; the backward pass's are two.
    let longest = solutions.iter().map(|s| s.status.iterations).max();
    assert!(times.solve.rounds > longest.unwrap_or(0), "{times:?}");
    assert_eq!(times.backward.rounds, 2);
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
    let Some(gpu) = gpu::gpu_or_skip() else {
        return;
    };
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
    let Some(gpu) = gpu::gpu_or_skip() else {
        return;
    };
    let (ds, transport) = (gpu::sorption(16), gpu::transport(16));
    let solver = GpuLm::new(&gpu, &ds.cuda, ds.name, ds.shape()).expect("kernel loads");
    let err = solver
        .solve(&LevenbergMarquardt::default(), &transport.refs())
        .unwrap_err();
    assert!(matches!(err, GpuError::Unsupported(_)), "{err}");
}

/// `len` doubles of random bits (NaN payloads, infinities and subnormals
/// among them), distinct for each `seed`.
fn random_bits(len: usize, seed: u64) -> Vec<f64> {
    let mut rng = common::rng(seed);
    (0..len).map(|_| f64::from_bits(rng.random())).collect()
}

fn same_bits(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

#[test]
fn large_copies_through_page_locked_buffers_keep_every_bit() {
    let Some(gpu) = gpu::gpu_or_skip() else {
        return;
    };
    let stream = gpu.stream();
    let per = staging::CHUNK_BYTES / 8;
    let least = staging::STAGED_MIN_BYTES / 8;
    for len in [
        1,
        least - 1,
        least,
        per - 1,
        per,
        per + 1,
        2 * per + 3,
        5 * per / 2,
    ] {
        let values = random_bits(len, len as u64);
        // Each direction against the driver's own copy of the other.
        let staged = staging::upload(stream, &values).expect("staged upload");
        assert_eq!(staged.len(), len);
        let back = stream.clone_dtoh(&staged).expect("driver's download");
        assert!(same_bits(&back, &values), "{len} doubles up");
        let plain = stream.clone_htod(&values).expect("driver's upload");
        let back = staging::download(stream, &plain.as_view()).expect("staged download");
        assert!(same_bits(&back, &values), "{len} doubles down");
        // A view that starts inside the array.
        let back = staging::download(stream, &plain.slice(len / 3..)).expect("part");
        assert!(
            same_bits(&back, &values[len / 3..]),
            "{len} doubles from {}",
            len / 3
        );
    }
    // The rates the preflight check reports, bits checked both ways.
    let rates = staging::measure(stream, 3 * staging::CHUNK_BYTES / 2).expect("rates");
    assert!(rates.exact, "{rates:?}");
    let all = [
        rates.up_staged,
        rates.up_driver,
        rates.down_staged,
        rates.down_driver,
    ];
    assert!(all.iter().all(|&r| r > 0.0 && r.is_finite()), "{rates:?}");
    println!("copy rates (GB/s): {rates:?}");
    // Another element size across chunk boundaries.
    let indices: Vec<i32> = (0..staging::CHUNK_BYTES / 2 + 5)
        .map(|i| i as i32 ^ 0x5a5a)
        .collect();
    let staged = staging::upload(stream, &indices).expect("staged upload");
    assert_eq!(
        staging::download(stream, &staged.as_view()).expect("staged download"),
        indices
    );
}

#[test]
fn copies_from_several_threads_at_once_each_keep_their_values() {
    // One thread's copy holds the context's buffers; the others', meanwhile,
    // go the driver's way: every one must come back whole.
    let Some(gpu) = gpu::gpu_or_skip() else {
        return;
    };
    let stream = gpu.stream();
    let len = 5 * staging::CHUNK_BYTES / 16;
    std::thread::scope(|scope| {
        for seed in 0..6u64 {
            scope.spawn(move || {
                for round in 0..3 {
                    let values = random_bits(len + seed as usize, 100 * seed + round);
                    let on = staging::upload(stream, &values).expect("upload");
                    let back = staging::download(stream, &on.as_view()).expect("download");
                    assert!(same_bits(&back, &values), "thread {seed}, round {round}");
                }
            });
        }
    });
}
