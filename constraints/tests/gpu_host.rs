//! The GPU solver's kernels (`lm.cu`, `lm_step.cu`) compiled for the host
//! through a shim that runs each block's threads as fibers between
//! barriers, against the CPU solver on the same problems: the same stop
//! reasons and iteration counts, and ω*, the residual norms and the gradient
//! norms to round-off.
#![cfg(feature = "cuda")]

mod common;

use common::gpu::{self, Case, bytes_f64, bytes_i64, compile_and_run};
use rand::Rng;
use tessera_constraints::gpu::kernel::{self, Batch};
use tessera_constraints::gpu::{GpuError, RowGather};
use tessera_constraints::{
    ExpertProblem, HessianMode, InitialGuess, LevenbergMarquardt, LmSolution, Sensitivity,
    StopReason,
};
use tessera_meshes::{Grid, SparseRows};

/// Reads a batch written by [`write_batch`], solves it (or runs the backward
/// pass) with the kernels in rounds as `GpuLm` queues them, and writes the
/// results.
const DRIVER: &str = r#"
int main(int argc, char** argv) {
    if (argc != 3) return 2;
    FILE* f = fopen(argv[1], "rb");
    auto head = take<int64_t>(f, 14);
    int64_t k = head[0], p = head[1], r = head[2], threads = head[3], max_it = head[4];
    int64_t mode = head[11], chunks = head[12], chunk_points = head[13];
    auto settings = take<double>(f, 3);
    auto point_start = take<long long>(f, k + 1);
    auto linear_start = take<long long>(f, k + 1);
    auto chunk_start = take<long long>(f, k + 1);
    auto rows = take<double>(f, p * TESSERA_D * TESSERA_N);
    auto offsets = take<double>(f, p * TESSERA_D);
    auto coords = take<double>(f, p * TESSERA_C);
    auto linear = take<double>(f, r * TESSERA_N);
    auto rhs = take<double>(f, r);
    auto ridge = take<double>(f, k);
    auto omega = take<double>(f, k * TESSERA_N);
    // Not zeroed (the device zeroes them once, but a kept batch's backward
    // pass finds them as its forward solve left them): NaN wherever a kernel
    // would read what no kernel wrote.
    std::vector<double> values(head[5] + 1, NAN), linres(head[6] + 1, NAN), jac(head[7] + 1, NAN),
        mats(head[8] + 1, NAN), partials(head[9] + 1, NAN), state(head[10] + 1, NAN);
    auto accumulate = [&] {
        tessera_launch((unsigned)chunks, (unsigned)threads, tessera_lm_accumulate, point_start.data(),
            linear_start.data(), rows.data(), offsets.data(), coords.data(), linear.data(), rhs.data(),
            (int)k, chunk_start.data(), (long long)chunk_points, state.data(), values.data(),
            linres.data(), jac.data(), partials.data());
    };
    FILE* o = fopen(argv[2], "wb");
    if (mode > 0) {  // the backward pass: 1 exact Hessian, 2 Gauss-Newton
        auto omega_bar = take<double>(f, k * TESSERA_N);
        fclose(f);
        std::vector<double> lambda(k * TESSERA_N), a(p * TESSERA_D + 1), c(p * TESSERA_D + 1), lo(r + 1), ll(r + 1), result(k);
        auto step = [&](int start) {
            tessera_launch((unsigned)k, (unsigned)threads, tessera_ift_step, ridge.data(), chunk_start.data(),
                start, omega.data(), omega_bar.data(), lambda.data(), result.data(), state.data(),
                mats.data(), partials.data());
        };
        step((int)mode);
        for (int round = 0; round < 2; ++round) {
            accumulate();
            step(0);
        }
        tessera_launch((unsigned)chunks, (unsigned)threads, tessera_ift_rows, point_start.data(),
            linear_start.data(), rows.data(), offsets.data(), coords.data(), linear.data(), rhs.data(),
            (int)k, chunk_start.data(), (long long)chunk_points, omega.data(), lambda.data(),
            result.data(), values.data(), linres.data(), jac.data(), a.data(), c.data(), lo.data(),
            ll.data());
        fwrite(lambda.data(), sizeof(double), k * TESSERA_N, o);
        fwrite(a.data(), sizeof(double), p * TESSERA_D, o);
        fwrite(c.data(), sizeof(double), p * TESSERA_D, o);
        fwrite(lo.data(), sizeof(double), r, o);
        fwrite(ll.data(), sizeof(double), r, o);
        fwrite(result.data(), sizeof(double), k, o);
        fclose(o);
        return 0;
    }
    fclose(f);
    std::vector<double> status(k * 5), pending(k);
    auto step = [&](int start) {
        tessera_launch((unsigned)k, (unsigned)threads, tessera_lm_step, ridge.data(), chunk_start.data(),
            settings[0], settings[1], settings[2], (int)max_it, start, omega.data(), status.data(),
            state.data(), mats.data(), partials.data(), pending.data());
    };
    step(1);
    for (int64_t round = 0;; ++round) {
        bool left = false;
        for (double x : pending) left = left || x != 0.0;
        if (!left) break;
        if (round > 4 * max_it + 1) {
            fprintf(stderr, "still iterating after %lld rounds\n", (long long)round);
            return 3;
        }
        accumulate();
        step(0);
    }
    fwrite(omega.data(), sizeof(double), k * TESSERA_N, o);
    fwrite(status.data(), sizeof(double), k * 5, o);
    fclose(o);
    return 0;
}
"#;

/// The batch and settings in the driver's input format, with chunks of
/// `chunk_points` points.
fn write_batch(
    batch: &Batch,
    lm: &LevenbergMarquardt,
    threads: usize,
    chunk_points: usize,
    mode: i64,
) -> Vec<u8> {
    let [values, linres, jac, mats, partials, state] = batch.scratch_lengths(chunk_points);
    let chunk_start = batch.chunk_start(chunk_points);
    let head = [
        batch.len() as i64,
        batch.total_points() as i64,
        batch.total_linear_rows() as i64,
        threads as i64,
        lm.max_iterations() as i64,
        values as i64,
        linres as i64,
        jac as i64,
        mats as i64,
        partials as i64,
        state as i64,
        mode,
        *chunk_start.last().unwrap(),
        chunk_points as i64,
    ];
    let mut out = bytes_i64(&head);
    out.extend(bytes_f64(&[lm.rtol(), lm.atol(), lm.initial_damping()]));
    out.extend(bytes_i64(&batch.point_start));
    out.extend(bytes_i64(&batch.linear_start));
    out.extend(bytes_i64(&chunk_start));
    for part in [
        &batch.term_rows,
        &batch.offsets,
        &batch.coordinates,
        &batch.linear,
        &batch.linear_rhs,
        &batch.ridge,
        &batch.omega,
    ] {
        out.extend(bytes_f64(part));
    }
    out
}

/// Compiles the kernels for `case` on the host and runs the driver on `input`
/// (a batch from [`write_batch`], plus ω̄ for the backward pass); returns the
/// doubles it wrote.
fn host_run(case: &Case, input: &[u8], tag: &str) -> Vec<f64> {
    let source = kernel::lm_source(&case.cuda, case.name, case.shape()).expect("source");
    compile_and_run(&source, DRIVER, input, tag)
}

/// Points per chunk in most tests: small, so that every problem is cut into
/// many chunks, the last one short.
const CHUNK: usize = 13;

/// Solves `case`'s batch with the host-compiled kernels, `threads` threads
/// per block and [`CHUNK`] points per chunk.
fn host_solve(case: &Case, lm: &LevenbergMarquardt, threads: usize, tag: &str) -> Vec<LmSolution> {
    host_solve_in(case, lm, threads, CHUNK, tag)
}

/// [`host_solve`] with chunks of `chunk_points`.
fn host_solve_in(
    case: &Case,
    lm: &LevenbergMarquardt,
    threads: usize,
    chunk_points: usize,
    tag: &str,
) -> Vec<LmSolution> {
    let batch = Batch::pack(lm, &case.refs()).expect("batch");
    let raw = host_run(
        case,
        &write_batch(&batch, lm, threads, chunk_points, 0),
        tag,
    );
    let (omega, status) = raw.split_at(batch.len() * batch.shape.n_basis);
    kernel::solutions(omega, status, batch.shape.n_basis).expect("statuses")
}

/// The kernel's solutions against the CPU solver's, problem by problem.
///
/// `iterations` is how far the iteration counts may differ: 0 wherever the
/// stopping tests are decided above round-off; in the round-off regime a test
/// compares numbers of the size of the summation-order differences, and the
/// two back ends may stop a step apart at the same ω* (to `tol`).
fn compare(case: &Case, lm: &LevenbergMarquardt, threads: usize, tol: f64, iterations: usize) {
    compare_in(case, lm, (threads, CHUNK), tol, iterations);
}

/// [`compare`] with `threads` per block and chunks of `chunk_points`.
fn compare_in(
    case: &Case,
    lm: &LevenbergMarquardt,
    (threads, chunk_points): (usize, usize),
    tol: f64,
    iterations: usize,
) {
    let tag = format!("{}-{threads}-{chunk_points}", case.name);
    let got = host_solve_in(case, lm, threads, chunk_points, &tag);
    for (k, (problem, host)) in case.problems.iter().zip(&got).enumerate() {
        let cpu = lm.solve(&case.pde, problem).expect("cpu solve");
        let what = format!("{} problem {k} ({threads} threads)", case.name);
        assert_eq!(host.status.reason, cpu.status.reason, "{what}: stop reason");
        assert!(
            host.status.iterations.abs_diff(cpu.status.iterations) <= iterations,
            "{what}: {} iterations against {}",
            host.status.iterations,
            cpu.status.iterations
        );
        let scale = cpu.omega.iter().fold(1.0f64, |a, w| a.max(w.abs()));
        for (i, (h, c)) in host.omega.iter().zip(&cpu.omega).enumerate() {
            assert!(
                (h - c).abs() <= tol * scale,
                "{what}: ω[{i}] {h:e} vs {c:e}"
            );
        }
        // NaN where the CPU reports NaN (a non-finite problem), else relative.
        let rel = |a: f64, b: f64| {
            (a.is_nan() && b.is_nan()) || (a - b).abs() <= tol * a.abs().max(b.abs()).max(1e-300)
        };
        assert!(
            rel(host.status.initial_residual, cpu.status.initial_residual),
            "{what}: initial residual"
        );
        assert!(
            rel(host.status.final_residual, cpu.status.final_residual),
            "{what}: final residual {:e} vs {:e}",
            host.status.final_residual,
            cpu.status.final_residual
        );
        // ‖Jᵀr‖ at the solution is round-off of the gradient's terms: compare
        // it on the scale of the initial residual times the Jacobian's.
        let g_scale = cpu.status.initial_residual.max(1.0) * 1e-6;
        let (hg, cg) = (host.status.gradient_norm, cpu.status.gradient_norm);
        assert!(
            (hg.is_nan() && cg.is_nan()) || (hg - cg).abs() <= g_scale,
            "{what}: gradient norm {:e} vs {:e}",
            host.status.gradient_norm,
            cpu.status.gradient_norm
        );
    }
}

fn reference_lm(initial: InitialGuess) -> LevenbergMarquardt {
    LevenbergMarquardt::default().with_initial(initial).unwrap()
}

#[test]
fn sorption_matches_the_cpu_solver() {
    let case = gpu::sorption(16);
    compare(&case, &reference_lm(InitialGuess::Ones), 8, 1e-10, 0);
    // The GPU's chunks: one or two per problem here.
    let lm = reference_lm(InitialGuess::Ones);
    compare_in(&case, &lm, (8, kernel::CHUNK_POINTS), 1e-10, 0);
    // A problem with more linear rows than points: its chunks past the last
    // point hold linear rows only.
    let mut case = case;
    case.problems[3] = common::sorption_parts(5, 4, 16, 30).build();
    compare(&case, &lm, 8, 1e-10, 0);
}

#[test]
fn sorption_matches_with_threads_fewer_than_the_basis_and_not_a_power_of_two() {
    let case = gpu::sorption(12);
    compare(&case, &reference_lm(InitialGuess::Ones), 3, 1e-10, 0);
}

#[test]
fn a_problem_solves_to_the_same_bits_alone_or_in_a_batch() {
    // Each problem's sums run over its own chunks in a fixed order, so its
    // neighbours in a batch (and their chunks) cannot change its result.
    let case = gpu::sorption(12);
    let lm = reference_lm(InitialGuess::Ones);
    let batch = host_solve(&case, &lm, 8, "batch");
    let mut alone = gpu::sorption(12);
    alone.problems = vec![alone.problems.swap_remove(2)];
    let single = host_solve(&alone, &lm, 8, "alone");
    assert_eq!(single.len(), 1);
    assert_eq!(single[0].omega, batch[2].omega);
    assert_eq!(single[0].status, batch[2].status);
}

#[test]
fn transport_matches_the_cpu_solver() {
    let case = gpu::transport(16);
    compare(&case, &reference_lm(InitialGuess::Zeros), 8, 1e-10, 0);
}

#[test]
fn a_system_with_coordinates_matches_the_cpu_solver() {
    let case = gpu::system(8);
    compare(&case, &reference_lm(InitialGuess::Zeros), 5, 1e-10, 0);
}

#[test]
fn tight_tolerances_reach_the_round_off_regime_as_on_the_cpu() {
    // rtol = atol = 1e-14 exercises the round-off branch (Gauss–Newton and
    // Newton fallbacks) on the nonzero-residual sorption problems.
    let lm = common::tight_lm(InitialGuess::Ones);
    compare(&gpu::sorption(8), &lm, 4, 1e-9, 2);
    compare(
        &gpu::system(6),
        &common::tight_lm(InitialGuess::Zeros),
        4,
        1e-9,
        2,
    );
    // In that regime only round-off decides when the step stops helping:
    // with `curved`'s large residual the GPU's order of summation (chunks of
    // points, four interleaved running sums in each) may stop up to three
    // steps away from the CPU's blocked products, at the same ω* to 1e-9.
    compare(
        &gpu::curved(6),
        &common::tight_lm(InitialGuess::Zeros),
        4,
        1e-9,
        3,
    );
}

#[test]
fn a_large_constant_residual_sends_rejected_steps_to_newton_as_on_the_cpu() {
    // A residual of 1e8 that no ω changes lifts the cost to 5e15, so every
    // rejected step's predicted decrease lies below the round-off threshold
    // 64ε·f ≈ 71 and the step goes to the fallbacks while ω is still far
    // from ω* (the decrease, summed as Σ(r' − r)(r' + r), stays exact). On
    // `curved` from ω = 0 the first steps overshoot; the Gauss–Newton step
    // raises ‖Jᵀr‖ tenfold and Newton's step lowers it by 1e-2 to 1e-10 (on
    // the CPU, from 3 to 4 such steps per problem): every decision is taken
    // far from its threshold, so the two back ends must take the same steps.
    // ω agrees to 1e-7 only: the solves stop (step test) a Newton step short
    // of round-off, where summation order shows: the CPU solver itself moves
    // ω by up to 4.5e-9 when a problem's points are reversed.
    let lm = reference_lm(InitialGuess::Zeros);
    let case = gpu::curved(6).with_constant_residual(1e8);
    compare(&case, &lm, 4, 1e-7, 0);
    compare_in(&case, &lm, (8, kernel::CHUNK_POINTS), 1e-7, 0);
}

#[test]
fn iteration_limits_and_non_finite_problems_report_as_on_the_cpu() {
    let lm = reference_lm(InitialGuess::Ones)
        .with_max_iterations(1)
        .unwrap();
    let mut case = gpu::sorption(8);
    compare(&case, &lm, 4, 1e-10, 0);
    assert!(
        host_solve(&case, &lm, 4, "limit")
            .iter()
            .any(|s| s.status.reason == StopReason::MaxIterations),
        "some problem needs more than one iteration"
    );
    // A NaN in one problem's term rows: that problem reports NonFinite, the
    // others solve as before.
    let mut parts = common::sorption_parts(5, 50, 8, 2);
    parts.term_rows[17] = f64::NAN;
    case.problems[1] = parts.build();
    let lm = reference_lm(InitialGuess::Ones);
    compare(&case, &lm, 4, 1e-10, 0);
    let got = host_solve(&case, &lm, 4, "nan");
    assert_eq!(got[1].status.reason, StopReason::NonFinite);
    assert!(got[0].status.converged() && got[2].status.converged());
}

#[test]
fn kernel_sources_and_batches_are_checked() {
    use tessera_constraints::gpu::{GpuError, KernelShape, MAX_BASIS};
    let case = gpu::sorption(8);
    let shape = case.shape();
    // The residual must define the function the kernel calls.
    let err = kernel::lm_source(&case.cuda, "another-name", shape).unwrap_err();
    assert!(matches!(err, GpuError::Unsupported(_)), "{err}");
    let too_big = KernelShape {
        n_basis: MAX_BASIS + 1,
        ..shape
    };
    assert!(kernel::lm_source(&case.cuda, case.name, too_big).is_err());
    // A batch is one shape: a problem of another basis size is refused.
    let lm = LevenbergMarquardt::default();
    let other = common::sorption_parts(9, 20, 6, 1).build();
    let mut problems = case.refs();
    problems.push(&other);
    assert!(matches!(
        Batch::pack(&lm, &problems),
        Err(GpuError::Unsupported(_))
    ));
    assert!(Batch::pack::<ExpertProblem>(&lm, &[]).is_err());
    check_packing(&case);
    check_packing(&gpu::system(8));
}

#[test]
fn chunks_cover_every_point_and_linear_row() {
    // sorption's problems: 200, 150, 320 and 40 points; 6, 0, 12 and 3
    // linear rows. In chunks of 13: ⌈200/13⌉ = 16, ⌈150/13⌉ = 12,
    // ⌈320/13⌉ = 25, ⌈40/13⌉ = 4.
    let case = gpu::sorption(8);
    let batch = Batch::pack(&LevenbergMarquardt::default(), &case.refs()).unwrap();
    assert_eq!(batch.chunk_start(13), vec![0, 16, 28, 53, 57]);
    // One chunk per problem when a chunk holds more than any problem; one
    // point per chunk, and as many chunks as the larger of points and rows.
    assert_eq!(batch.chunk_start(1000), vec![0, 1, 2, 3, 4]);
    assert_eq!(batch.chunk_start(1), vec![0, 200, 350, 670, 710]);
    let [.., partials, state] = batch.scratch_lengths(13);
    assert_eq!(partials, 57 * (8 * 8 + 8 + 3));
    assert_eq!(state, 4 * (kernel::STATE_SCALARS + 3 * 8));
    let few_points = common::sorption_parts(5, 4, 8, 30).build();
    let batch = Batch::pack(&LevenbergMarquardt::default(), &[&few_points]).unwrap();
    assert_eq!(
        batch.chunk_start(13),
        vec![0, 3],
        "30 linear rows in 3 chunks"
    );
}

/// Packing keeps every problem's arrays of `case` at its offsets, and together
/// they fill the batch's arrays.
fn check_packing(case: &Case) {
    let (lm, shape) = (LevenbergMarquardt::default(), case.shape());
    let batch = Batch::pack(&lm, &case.refs()).unwrap();
    let (n, d) = (shape.n_basis, shape.n_terms);
    let mut packed = [0usize; 5];
    for (k, problem) in case.problems.iter().enumerate() {
        let (first, p) = (batch.point_start[k] as usize, problem.n_points());
        let (row, r) = (batch.linear_start[k] as usize, problem.n_linear());
        let c = shape.n_coordinates;
        let pieces: [(&[f64], &[f64]); 5] = [
            (
                &batch.term_rows[first * d * n..][..p * d * n],
                problem.term_rows(),
            ),
            (&batch.offsets[first * d..][..p * d], problem.offsets()),
            (
                &batch.coordinates[first * c..][..p * c],
                problem.coordinates(0, p),
            ),
            (&batch.linear[row * n..][..r * n], problem.linear()),
            (&batch.linear_rhs[row..][..r], problem.linear_rhs()),
        ];
        for (i, (got, want)) in pieces.into_iter().enumerate() {
            assert_eq!(got, want, "problem {k}, array {i}");
            packed[i] += want.len();
        }
        assert_eq!(batch.ridge[k], problem.ridge());
    }
    let lengths = [
        batch.term_rows.len(),
        batch.offsets.len(),
        batch.coordinates.len(),
        batch.linear.len(),
        batch.linear_rhs.len(),
    ];
    assert_eq!(packed, lengths);
    assert_eq!(batch.omega, vec![1.0; batch.len() * n]);
}

/// The backward kernel's row gradients against the CPU's
/// `Sensitivity::row_gradient` at the CPU's ω* and a random ω̄, for every
/// problem of `case`: λ and every coefficient to `tol` relative to each
/// array's largest entry.
fn compare_backward(case: &Case, mode: HessianMode, tol: f64) {
    let lm = common::tight_lm(InitialGuess::Zeros);
    let mut batch = Batch::pack(&lm, &case.refs()).expect("batch");
    let n = batch.shape.n_basis;
    let mut r = common::rng(7);
    let omega_bar = common::uniform(&mut r, batch.len() * n, 1.0);
    let mut cpu = Vec::new();
    for (k, problem) in case.problems.iter().enumerate() {
        let omega = lm.solve(&case.pde, problem).expect("cpu solve").omega;
        batch.omega[k * n..(k + 1) * n].copy_from_slice(&omega);
        let sensitivity = Sensitivity::new(&case.pde, problem, &omega, mode).expect("sensitivity");
        cpu.push(
            sensitivity
                .row_gradient(problem, &omega_bar[k * n..(k + 1) * n])
                .expect("row gradient"),
        );
    }
    let code = if mode == HessianMode::Exact { 1 } else { 2 };
    let mut input = write_batch(&batch, &lm, 4, CHUNK, code);
    input.extend(bytes_f64(&omega_bar));
    let raw = host_run(case, &input, &format!("{}-backward", case.name));
    let (d, k) = (batch.shape.n_terms, batch.len());
    let (p, rows) = (batch.total_points(), batch.total_linear_rows());
    let (lambda, rest) = raw.split_at(k * n);
    let (a, rest) = rest.split_at(p * d);
    let (c, rest) = rest.split_at(p * d);
    let (lo, rest) = rest.split_at(rows);
    let (ll, result) = rest.split_at(rows);
    let close = |got: &[f64], want: &[f64], what: &str| {
        assert_eq!(got.len(), want.len(), "{what}: length");
        let scale = want.iter().fold(1e-300f64, |m, x| m.max(x.abs()));
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= tol * scale,
                "{what}[{i}]: {g:e} vs {w:e} (scale {scale:e})"
            );
        }
    };
    for (k, want) in cpu.iter().enumerate() {
        let what = |part: &str| format!("{} problem {k} ({mode:?}): {part}", case.name);
        assert_eq!(result[k], 0.0, "{}", what("result"));
        let (pts, lin) = (
            batch.point_start[k] as usize..batch.point_start[k + 1] as usize,
            batch.linear_start[k] as usize..batch.linear_start[k + 1] as usize,
        );
        close(&lambda[k * n..(k + 1) * n], &want.lambda, &what("λ"));
        close(
            &a[pts.start * d..pts.end * d],
            &want.term_omega,
            &what("term ω coefficients"),
        );
        close(
            &c[pts.start * d..pts.end * d],
            &want.term_lambda,
            &what("term λ coefficients"),
        );
        close(
            &lo[lin.clone()],
            &want.linear_omega,
            &what("linear ω coefficients"),
        );
        close(
            &ll[lin],
            &want.linear_lambda,
            &what("linear λ coefficients"),
        );
    }
}

#[test]
fn the_backward_kernel_matches_the_cpu_row_gradients() {
    for case in [
        gpu::sorption(8),
        gpu::transport(8),
        gpu::system(6),
        gpu::curved(6),
    ] {
        compare_backward(&case, HessianMode::Exact, 1e-8);
        compare_backward(&case, HessianMode::GaussNewton, 1e-8);
    }
}

/// Reads a gather (sizes, the terms at every grid point, the points, the
/// fields) written by [`write_gather`], runs `tessera_gather_rows` and
/// writes the rows it built.
const GATHER_DRIVER: &str = r#"
int main(int argc, char** argv) {
    if (argc != 3) return 2;
    FILE* f = fopen(argv[1], "rb");
    // samples, points, terms, grid rows, nnz, field length, blocks, threads
    int64_t head[8];
    if (fread(head, 8, 8, f) != 8) return 2;
    int64_t samples = head[0], count = head[1], terms = head[2], grid_rows = head[3];
    int64_t nnz = head[4], field_len = head[5], rows = count * terms;
    std::vector<long long> starts(grid_rows + 1);
    std::vector<int> columns(nnz + 1), points(count + 1);
    std::vector<double> weights(nnz + 1), fields(samples * field_len), out(samples * rows * TESSERA_N);
    if (fread(starts.data(), 8, grid_rows + 1, f) != (size_t)(grid_rows + 1)
        || fread(columns.data(), 4, nnz, f) != (size_t)nnz
        || fread(weights.data(), 8, nnz, f) != (size_t)nnz
        || fread(points.data(), 4, count, f) != (size_t)count
        || fread(fields.data(), 8, fields.size(), f) != fields.size()) {
        fprintf(stderr, "short read\n");
        return 2;
    }
    fclose(f);
    tessera_launch((unsigned)head[6], (unsigned)head[7], tessera_gather_rows, (long long)samples,
        (long long)rows, (const int*)points.data(), (long long)terms,
        (const long long*)starts.data(), (const int*)columns.data(),
        (const double*)weights.data(), (const double*)fields.data(), (long long)field_len, out.data());
    FILE* o = fopen(argv[2], "wb");
    fwrite(out.data(), 8, out.size(), o);
    fclose(o);
    return 0;
}
"#;

/// The gather at `gather`'s points from `terms` (`d` rows per grid point,
/// point-major) in the driver's input format, launched as `blocks` blocks
/// of `threads` threads.
fn write_gather(
    terms: &SparseRows,
    d: usize,
    gather: &RowGather<'_>,
    n: usize,
    (blocks, threads): (usize, usize),
) -> Vec<u8> {
    let head = [
        gather.samples() as i64,
        gather.points().len() as i64,
        d as i64,
        terms.len() as i64,
        terms.nnz() as i64,
        (gather.n_grid() * n) as i64,
        blocks as i64,
        threads as i64,
    ];
    let starts: Vec<i64> = terms.row_start().iter().map(|&s| s as i64).collect();
    let mut out = bytes_i64(&head);
    out.extend(bytes_i64(&starts));
    out.extend(bytes_i32(terms.columns()));
    out.extend(bytes_f64(terms.weights()));
    out.extend(bytes_i32(gather.points()));
    out.extend(bytes_f64(gather.fields()));
    out
}

/// Little-endian bytes of indices as the kernels' 32-bit integers.
fn bytes_i32(indices: &[usize]) -> Vec<u8> {
    indices
        .iter()
        .flat_map(|&i| (i as i32).to_le_bytes())
        .collect()
}

#[test]
fn the_gather_kernel_builds_the_term_rows_at_the_points_for_every_sample() {
    let grid = Grid::uniform_tx(5, 7, 1.0).unwrap();
    let g = grid.len();
    let operators = gpu::sorption_stencils(&grid);
    let d = operators.len();
    // The terms at every grid point, point-major, as a layer uploads them.
    let mut terms = SparseRows::new(g);
    for p in 0..g {
        for op in &operators {
            terms.push_row(op.as_ref(), p, 1.0).unwrap();
        }
    }
    // Points in no order, with repeats and the grid's first and last (where
    // one-sided stencils apply).
    let mut rng = common::rng(11);
    let points: Vec<usize> = (0..40)
        .map(|i| match i {
            0 => g - 1,
            1 => 0,
            _ => rng.random_range(0..g),
        })
        .collect();
    let (n, samples) = (3, 2);
    let fields = common::uniform(&mut rng, samples * g * n, 1.0);
    let gather = RowGather::new(&points, &fields, g, n).unwrap();
    assert_eq!(gather.samples(), samples);
    // The oracle: the rows built on the host at each point in turn, applied
    // by `SparseRows::apply`.
    let mut at_points = SparseRows::new(g);
    for &p in &points {
        for op in &operators {
            at_points.push_row(op.as_ref(), p, 1.0).unwrap();
        }
    }
    let mut expected = vec![0.0; samples * at_points.len() * n];
    for (out, field) in expected
        .chunks_exact_mut(at_points.len() * n)
        .zip(fields.chunks_exact(g * n))
    {
        at_points.apply(field, n, out);
    }
    let kernels = format!("#define TESSERA_N {n}\n{}", kernel::GATHER_SOURCE);
    let total = expected.len();
    // One thread for everything, a grid-stride loop over few small blocks,
    // and one value per thread.
    for launch in [(1, 1), (3, 7), (total.div_ceil(32), 32)] {
        let input = write_gather(&terms, d, &gather, n, launch);
        let got = compile_and_run(
            &kernels,
            GATHER_DRIVER,
            &input,
            &format!("gather-{}x{}", launch.0, launch.1),
        );
        // The kernel sums each row in stored order, as `SparseRows::apply`.
        assert_eq!(got, expected, "{launch:?} (blocks, threads)");
    }
}

#[test]
fn a_gather_checks_its_fields_and_points_against_its_grid() {
    let g = 12;
    for bad in [0, 11, 12 * 2 + 1] {
        let fields = vec![1.0; bad];
        assert!(
            matches!(
                RowGather::new(&[5], &fields, g, 2),
                Err(GpuError::Unsupported(_))
            ),
            "{bad} values for 12 points × N = 2"
        );
    }
    let fields = [0.5; 48];
    assert!(matches!(
        RowGather::new(&[3, 12], &fields, g, 2),
        Err(GpuError::Unsupported(_))
    ));
    let gather = RowGather::new(&[11, 0, 11], &fields, g, 2).unwrap();
    assert_eq!((gather.samples(), gather.n_grid()), (2, g));
}

/// A kernel whose thread 0 of each block writes the block's index at the
/// next free place, and a driver that launches it over `blocks` blocks.
const ORDER_PROGRAM: (&str, &str) = (
    r#"
__global__ void record_order(double* order, int* next) {
    if (threadIdx.x == 0) order[(*next)++] = blockIdx.x;
    __syncthreads();
}
"#,
    r#"
int main(int argc, char** argv) {
    if (argc != 3) return 2;
    FILE* f = fopen(argv[1], "rb");
    auto blocks = take<int64_t>(f, 1);
    fclose(f);
    std::vector<double> order(blocks[0]);
    int next = 0;
    tessera_launch((unsigned)blocks[0], 3u, record_order, order.data(), &next);
    FILE* o = fopen(argv[2], "wb");
    fwrite(order.data(), 8, order.size(), o);
    fclose(o);
    return 0;
}
"#,
);

#[test]
fn the_shim_runs_blocks_out_of_index_order() {
    // A GPU runs a launch's blocks in no set order, so every kernel must
    // give the same result in any; the shim runs them last to first, so that
    // a kernel relying on index order (a block reading what a lower block
    // wrote in the same launch) fails the host tests instead of only a GPU.
    let (kernel, driver) = ORDER_PROGRAM;
    let order = compile_and_run(kernel, driver, &bytes_i64(&[5]), "order");
    assert_eq!(order, [4.0, 3.0, 2.0, 1.0, 0.0]);
}

/// A kernel that passes values between a block's threads through shared
/// memory: each thread writes its slot, and after a barrier reads the next
/// thread's; the next round (after a second barrier) adds what the thread
/// before it wrote. Without working barriers a thread reads a slot before
/// its owner wrote it.
const BARRIER_PROGRAM: (&str, &str) = (
    r#"
__global__ void pass_round(double* out) {
    __shared__ double slot[5];
    unsigned t = threadIdx.x, n = blockDim.x;
    slot[t] = 10.0 * blockIdx.x + t + 1;
    __syncthreads();
    double next = slot[(t + 1) % n];
    __syncthreads();
    slot[t] = next;
    __syncthreads();
    out[blockIdx.x * n + t] = next + slot[(t + n - 1) % n];
}
"#,
    r#"
int main(int argc, char** argv) {
    if (argc != 3) return 2;
    std::vector<double> out(2 * 5);
    tessera_launch(2u, 5u, pass_round, out.data());
    FILE* o = fopen(argv[2], "wb");
    fwrite(out.data(), 8, out.size(), o);
    fclose(o);
    return 0;
}
"#,
);

#[test]
fn the_shim_s_barriers_order_a_block_s_threads() {
    let (kernel, driver) = BARRIER_PROGRAM;
    let got = compile_and_run(kernel, driver, &[], "barrier");
    // Thread t of block b first holds v(t) = 10b + t + 1, then reads
    // v(t + 1); the thread before it read v(t), so the sum is
    // v(t + 1) + v(t) (indices modulo the 5 threads).
    let v = |b: usize, t: usize| (10 * b + t % 5 + 1) as f64;
    let expected: Vec<f64> = (0..2)
        .flat_map(|b| (0..5).map(move |t| v(b, t + 1) + v(b, t)))
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn a_barrier_some_threads_skip_aborts_the_host_launch() {
    // `__syncthreads` in code that not every thread of the block reaches is
    // undefined on a GPU (it may hang); the shim stops and says so rather
    // than pairing the barrier with a thread's return.
    let kernel = r#"
__global__ void early_return(double* out) {
    if (threadIdx.x == 0) return;
    __syncthreads();
    out[threadIdx.x] = 1.0;
}
"#;
    let driver = r#"
int main() {
    std::vector<double> out(4);
    tessera_launch(1u, 4u, early_return, out.data());
    return 0;
}
"#;
    let err = gpu::try_compile_and_run(kernel, driver, &[], "divergent").unwrap_err();
    assert!(
        err.contains("1 of 4 threads returned while the others wait at __syncthreads"),
        "{err}"
    );
}
