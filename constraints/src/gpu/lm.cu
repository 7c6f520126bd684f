// Batched Levenberg–Marquardt for Tessera's expert problems, every problem of
// a batch in flight at once and the whole iteration on the device (no host
// round trip per step). This file holds the sums over points; `lm_step.cu`
// holds the per-problem decisions.
//
// The algorithm is the CPU solver's (`tessera_constraints::lm`), step for
// step: the same damping rule, gain ratio, Cauchy stopping test, Gauss–Newton
// "settled" test and round-off regime with its Gauss–Newton and Newton
// fallbacks, so that both back ends stop after the same iterations and agree
// on ω to round-off. Only the summation order differs.
//
// Why two kernels per evaluation: one problem's sums run over some 20 000
// points, and a block per problem kept most of the GPU idle (4 problems, 4 of
// 132 SMs) while every iteration waited for its slowest problem. So each
// problem's points are cut into chunks of `chunk_points`, one block per
// chunk:
//   tessera_lm_accumulate  (one block per chunk) evaluates the residual where
//       the problem's state asks and writes the chunk's partial JᵀJ, Jᵀr,
//       cost and decrease (or its part of the exact Hessian);
//   tessera_lm_step        (one block per problem) adds its chunks' partials
//       in chunk order, makes the damping and stopping decisions, and writes
//       the next point to evaluate into the problem's state, or its result.
// The host queues (accumulate, step) rounds without reading anything back
// between them; a finished problem turns later rounds into no-ops, and the
// host reads the `pending` flags every few rounds. The backward pass is the
// same with `tessera_ift_step` and, at the end, `tessera_ift_rows`. Every sum
// has a fixed order, so results do not depend on timing, and a problem's
// results do not depend on the rest of its batch.
//
// Compile-time sizes (defined before this file, with the PDE's residual):
//   TESSERA_N        basis functions N (≤ TESSERA_MAX_N, the static shared size)
//   TESSERA_D        terms the residual reads d
//   TESSERA_M        residual equations per point m
//   TESSERA_C        coordinates per point the residual reads (0: none)
//   TESSERA_RESIDUAL the emitted `tessera_NAME_hessian(z, x, value, grad, hess)`
//   TESSERA_THREADS  the largest block size a launch uses
//   TESSERA_STATE_SCALARS  doubles of `State` (the host's count, checked here)
//
// Layouts are those of `ExpertProblem`, concatenated over the K problems of a
// batch: term rows [ΣP, d, N], offsets [ΣP, d], coordinates [ΣP, C], linear rows
// [ΣR, N] and right-hand sides [ΣR], with problem k's points at
// point_start[k]..point_start[k+1] and its linear rows at
// linear_start[k]..linear_start[k+1]. Problem k's chunks are
// chunk_start[k]..chunk_start[k+1] (at least one); its chunk j holds points
// and linear rows j·chunk_points up to (j+1)·chunk_points. Scratch: `values`
// [2, ΣP·M], `linres` [2, ΣR], `jac` [ΣP, SCRATCH], `partials`
// [chunks, PARTIAL], `state` [K, STATE], `mats` [K, 4N² + 2N]. Device code
// also compiles for the host (see the tests' shim): it uses only
// __syncthreads, static __shared__ arrays and plain loops over threadIdx.x /
// blockDim.x.

namespace tessera_lm {

constexpr int N = TESSERA_N;
constexpr int D = TESSERA_D;
constexpr int M = TESSERA_M;
constexpr int C = TESSERA_C;
constexpr int NN = N * N;
// JᵀJ's upper triangle, the entries a chunk sums (its lower one is a mirror).
constexpr int UPPER = N * (N + 1) / 2;
// Scratch per point: the Jacobian rows (m·N) or, for the exact Hessian, a
// flag per term and the curvature weights times the term rows, C_p A_p
// (d + d·N; see `hessian_chunk`).
constexpr int SCRATCH = (M * N > D + D * N) ? M * N : D + D * N;
// A chunk's partial sums: JᵀJ's upper triangle (or the Hessian's N² terms),
// Jᵀr at NN, then the scalars at NN + N: the squared residuals, the count
// of non-finite terms and the decrease against the current iterate.
constexpr int PARTIAL = NN + N + 3;
constexpr int COST = NN + N, BAD = NN + N + 1, DECREASE = NN + N + 2;
// Why a solve stopped, as `StopReason`'s variants in order.
constexpr double CONVERGED = 0.0, MAX_ITERATIONS = 1.0, NON_FINITE = 2.0, SINGULAR = 3.0;
// Below ROUND_OFF·f a predicted decrease is lost in the rounding of the cost.
constexpr double ROUND_OFF = 64.0 * 2.220446049250313e-16;

// What a problem asks of the next accumulate launch.
constexpr double NOTHING = 0.0, EVALUATE = 1.0, HESSIAN = 2.0;
// Where a step resumes once its evaluation is summed: the forward solve's
// first evaluation, its damped trial, its round-off fallbacks (Gauss–Newton
// trial, exact Hessian, Newton trial), and the backward pass's evaluation at
// ω* (exact Hessian or Gauss–Newton) and its Hessian.
constexpr double INIT = 0.0, TRIAL = 1.0, GAUSS_NEWTON = 2.0, NEWTON_HESSIAN = 3.0,
                 NEWTON = 4.0, BACKWARD_EXACT = 5.0, BACKWARD_GAUSS_NEWTON = 6.0,
                 BACKWARD_HESSIAN = 7.0;

// One problem's solver state between launches, in doubles (every field a
// number the step kernel would otherwise keep in registers across the
// iteration), followed in `state` by the weights ω, the trial ω + Δ and the
// step Δ, N each.
struct State {
    double request;     // NOTHING, EVALUATE or HESSIAN
    double resume;      // INIT ... BACKWARD_HESSIAN
    double at_trial;    // 1: evaluate at the trial, 0: at ω
    double slot;        // the slot (0 or 1) an evaluation writes
    double cur;         // the slot holding ω's evaluation
    double mu, nu, mu_floor;
    double cost;        // ½‖r(ω)‖²
    double iterations;
    double reason;
    double settled;     // 1 when the Gauss–Newton step from ω passes the step test
    double initial;     // ‖r(ω₀)‖
    double predicted;   // the trial's predicted decrease
};
static_assert(sizeof(State) == TESSERA_STATE_SCALARS * sizeof(double), "the host's state size");
constexpr int SCALARS = TESSERA_STATE_SCALARS;
constexpr int STATE = SCALARS + 3 * N;
constexpr int W = SCALARS, TRIAL_AT = SCALARS + N, STEP_AT = SCALARS + 2 * N;

// One problem's inputs, and its slices of the per-point scratch.
struct Problem {
    long long p, r;           // points, linear rows
    const double* rows;       // [P, D, N]
    const double* offsets;    // [P, D]
    const double* coords;     // [P, C]
    const double* linear;     // [R, N]
    const double* rhs;        // [R]
    double* values[2];        // F(z) at two iterates, [P·M] each
    double* linres[2];        // Lω − c at two iterates, [R] each
    double* jac;              // [P, SCRATCH]
};

// The points [p0, p1) and linear rows [r0, r1) of one chunk.
struct Range {
    long long p0, p1, r0, r1;
};

struct Block {
    double red[TESSERA_THREADS];
    double out;
};

// Σ over the block of each thread's `x`, summed in thread order by thread 0
// (deterministic); every thread gets the result.
__device__ inline double block_sum(Block* b, double x) {
    int t = threadIdx.x;
    b->red[t] = x;
    __syncthreads();
    if (t == 0) {
        double s = 0.0;
        for (int k = 0; k < (int)blockDim.x; ++k) s += b->red[k];
        b->out = s;
    }
    __syncthreads();
    double s = b->out;
    __syncthreads();
    return s;
}

// Σ_{q < n} f(q) as four running sums over interleaved q, added as
// (s0 + s1) + (s2 + s3) at the end. Why: the N×N products give one thread
// one entry and a sum over every point, and with a single running sum each
// multiply-add waits for the one before; four independent ones keep the
// pipeline busy. The order is fixed, so the result is deterministic.
template <typename F>
__device__ inline double sum_over(long long n, F f) {
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    long long q = 0;
    for (; q + 4 <= n; q += 4) {
        s0 += f(q);
        s1 += f(q + 1);
        s2 += f(q + 2);
        s3 += f(q + 3);
    }
    for (; q < n; ++q) s0 += f(q);
    return (s0 + s1) + (s2 + s3);
}

__device__ inline double dot(const double* a, const double* b, int n) {
    double s = 0.0;
    // A partial unroll: fully unrolled at N = 64 the backward kernel needed
    // more than the 255 registers a thread has, and spilled.
#pragma unroll 4
    for (int i = 0; i < n; ++i) s += a[i] * b[i];
    return s;
}


// z = A[p]·ω + b[p] at one point.
__device__ inline void terms_at(const Problem& pb, long long p, const double* w, double* z) {
    for (int j = 0; j < D; ++j) z[j] = dot(pb.rows + (p * D + j) * N, w, N) + pb.offsets[p * D + j];
}

// The residual's values, gradients and Hessians in the terms at point p
// (the emitted function, with the point's coordinates); false when a term z
// is not finite (the CPU's test of its input).
__device__ inline bool residual_at(const Problem& pb, long long p, const double* w, double* v,
                                   double* g, double* h) {
    double z[D];
    terms_at(pb, p, w, z);
    bool finite = true;
    for (int j = 0; j < D; ++j)
        if (!isfinite(z[j])) finite = false;
    const double* x = C > 0 ? pb.coords + p * C : nullptr;
    TESSERA_RESIDUAL(z, x, v, g, h);
    return finite;
}

// Jacobian row q = p·M + e (point p, equation e) in the per-point scratch.
__device__ inline double* jac_row(const Problem& pb, long long q) {
    return pb.jac + (q / M) * SCRATCH + (q % M) * N;
}

// The problem that chunk c belongs to: the last k with chunk_start[k] ≤ c.
__device__ inline int problem_of_chunk(const long long* chunk_start, int problems, long long c) {
    int lo = 0, hi = problems - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (chunk_start[mid] <= c) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

// (i, j), i ≤ j, of entry e of an N×N upper triangle numbered row by row.
__device__ inline void upper_entry(int e, int* i, int* j) {
    int row = 0, col = e;
    while (col >= N - row) {
        col -= N - row;
        ++row;
    }
    *i = row;
    *j = col + row;
}

// Problem k of a batch of `problems`: its slices of the inputs and of the
// per-point scratch.
__device__ Problem problem_at(int k, int problems, const long long* point_start,
                              const long long* linear_start, const double* term_rows,
                              const double* offsets, const double* coords, const double* linear,
                              const double* rhs, double* values, double* linres, double* jac) {
    const long long p0 = point_start[k], r0 = linear_start[k];
    const long long total_points = point_start[problems], total_rows = linear_start[problems];
    Problem pb;
    pb.p = point_start[k + 1] - p0;
    pb.r = linear_start[k + 1] - r0;
    pb.rows = term_rows + p0 * D * N;
    pb.offsets = offsets + p0 * D;
    pb.coords = C > 0 ? coords + p0 * C : nullptr;
    pb.linear = linear + r0 * N;
    pb.rhs = rhs + r0;
    for (int s = 0; s < 2; ++s) {
        pb.values[s] = values + s * total_points * M + p0 * M;
        pb.linres[s] = linres + s * total_rows + r0;
    }
    pb.jac = jac + p0 * SCRATCH;
    return pb;
}

// Chunk c's points and linear rows within problem k.
__device__ inline Range range_of(const Problem& pb, const long long* chunk_start, int k,
                                 long long c, long long chunk_points) {
    const long long first = (c - chunk_start[k]) * chunk_points;
    Range g;
    g.p0 = first < pb.p ? first : pb.p;
    g.p1 = first + chunk_points < pb.p ? first + chunk_points : pb.p;
    g.r0 = first < pb.r ? first : pb.r;
    g.r1 = first + chunk_points < pb.r ? first + chunk_points : pb.r;
    return g;
}

// The chunk's residuals at x into slot s, and its partial sums into `out`:
// JᵀJ's upper triangle, Jᵀr, Σr², the non-finite count and Σ(r_s − r_cur)
// (r_s + r_cur) (−2× the decrease from slot `cur`'s iterate).
__device__ void evaluate_chunk(const Problem& pb, const Range& g, Block* b, const double* x,
                               int s, int cur, double* out) {
    int t = threadIdx.x, nt = blockDim.x;
    double bad = 0.0, part = 0.0, dec = 0.0;
    for (long long p = g.p0 + t; p < g.p1; p += nt) {
        double v[M], gr[M * D], h[M * D * D];
        if (!residual_at(pb, p, x, v, gr, h)) bad = 1.0;
        for (int e = 0; e < M; ++e) {
            const double old = pb.values[cur][p * M + e];
            pb.values[s][p * M + e] = v[e];
            part += v[e] * v[e];
            dec += (v[e] - old) * (v[e] + old);
            double* row = jac_row(pb, p * M + e);
            for (int i = 0; i < N; ++i) row[i] = 0.0;
            for (int j = 0; j < D; ++j) {
                double gj = gr[e * D + j];
                if (gj == 0.0) continue;
                const double* a = pb.rows + (p * D + j) * N;
                for (int i = 0; i < N; ++i) row[i] += gj * a[i];
            }
        }
    }
    for (long long r = g.r0 + t; r < g.r1; r += nt) {
        const double l = dot(pb.linear + r * N, x, N) - pb.rhs[r], old = pb.linres[cur][r];
        pb.linres[s][r] = l;
        part += l * l;
        dec += (l - old) * (l + old);
    }
    __syncthreads();
    // One sum over the chunk's rows per thread: the upper triangle of JᵀJ,
    // then Jᵀr, numbered without the lower triangle so that no thread of the
    // block waits idle while another does two.
    const long long q0 = g.p0 * M, nq = (g.p1 - g.p0) * M, nr = g.r1 - g.r0;
    const double* values = pb.values[s];
    const double* linres = pb.linres[s];
    const double* linear = pb.linear;
    for (int e = t; e < UPPER + N; e += nt) {
        if (e < UPPER) {
            int i, j;
            upper_entry(e, &i, &j);
            out[e] = sum_over(nq, [&](long long q) {
                         const double* row = jac_row(pb, q0 + q);
                         return row[i] * row[j];
                     }) +
                     sum_over(nr, [&](long long r) {
                         const double* l = linear + (g.r0 + r) * N;
                         return l[i] * l[j];
                     });
        } else {
            int i = e - UPPER;
            out[NN + i] = sum_over(nq, [&](long long q) { return jac_row(pb, q0 + q)[i] * values[q0 + q]; }) +
                          sum_over(nr, [&](long long r) {
                              return linear[(g.r0 + r) * N + i] * linres[g.r0 + r];
                          });
        }
    }
    const double n_bad = block_sum(b, bad), cost = block_sum(b, part), change = block_sum(b, dec);
    if (t == 0) {
        out[COST] = cost;
        out[BAD] = n_bad;
        out[DECREASE] = change;
    }
}

// The chunk's part of the exact Hessian's second-order term at ω,
// Σ_p A_pᵀ C_p A_p over its points with the curvature weights
// C_p = Σ_e F_e ∂²F_e/∂z_j∂z_l (d × d), into out[0..N²], and its
// non-finite count into out[BAD]. Each point's thread first writes C_p A_p
// (d rows of N) to the point's scratch, after a flag per row that says
// whether row j of C_p has a non-zero; then one thread per entry (i, k) sums
// Σ_j A_p[j, i]·(C_p A_p)[j, k] over the flagged rows. Why: forming
// C_p A_p once per point costs d²·N where forming it inside each entry's
// sum cost N²·d², and C_p is sparse for most residuals (only products of
// terms have second derivatives: Navier–Stokes' C_p has four non-zero rows
// of six, one entry each), so at N = 64 a point costs about a tenth of the
// multiply-adds. The sums are the same products added in the same order,
// zeros left out.
__device__ void hessian_chunk(const Problem& pb, const Range& g, Block* b, const double* w,
                              double* out) {
    int t = threadIdx.x, nt = blockDim.x;
    double bad = 0.0;
    for (long long p = g.p0 + t; p < g.p1; p += nt) {
        double v[M], gr[M * D], h[M * D * D];
        if (!residual_at(pb, p, w, v, gr, h)) bad = 1.0;
        const double* a = pb.rows + p * D * N;
        double* flags = pb.jac + p * SCRATCH;
        double* ca = flags + D;
        for (int j = 0; j < D; ++j) {
            double c[D];
            bool any = false;
            for (int l = 0; l < D; ++l) {
                double acc = 0.0;
                for (int e = 0; e < M; ++e) acc += v[e] * h[e * D * D + j * D + l];
                c[l] = acc;
                // NaN counts as a non-zero: it must reach the sums.
                if (!(acc == 0.0)) any = true;
            }
            flags[j] = any ? 1.0 : 0.0;
            if (!any) continue;
            for (int k = 0; k < N; ++k) {
                double cj = 0.0;
                for (int l = 0; l < D; ++l)
                    if (!(c[l] == 0.0)) cj += c[l] * a[l * N + k];
                ca[j * N + k] = cj;
            }
        }
    }
    __syncthreads();
    for (int e = t; e < NN; e += nt) {
        int i = e / N, k = e % N;
        out[e] = sum_over(g.p1 - g.p0, [&](long long q) {
            const long long p = g.p0 + q;
            const double* flags = pb.jac + p * SCRATCH;
            const double* ca = flags + D;
            const double* a = pb.rows + p * D * N;
            double at_p = 0.0;
            for (int j = 0; j < D; ++j)
                if (flags[j] != 0.0) at_p += a[j * N + i] * ca[j * N + k];
            return at_p;
        });
    }
    const double n_bad = block_sum(b, bad);
    if (t == 0) out[BAD] = n_bad;
}

}  // namespace tessera_lm

// Chunk blockIdx.x of a batch of `problems`: what its problem's state asks
// (an evaluation at ω or the trial, or the exact Hessian's term at ω) into
// the chunk's row of `partials`; nothing for a problem that asks nothing.
extern "C" __global__ void tessera_lm_accumulate(
    const long long* point_start, const long long* linear_start, const double* term_rows,
    const double* offsets, const double* coords, const double* linear, const double* rhs,
    int problems, const long long* chunk_start, long long chunk_points, const double* state,
    double* values, double* linres, double* jac, double* partials) {
    using namespace tessera_lm;
    __shared__ Block block;
    __shared__ double x[N];
    const long long c = blockIdx.x;
    const int k = problem_of_chunk(chunk_start, problems, c);
    const double* st = state + (long long)k * STATE;
    const State s = *reinterpret_cast<const State*>(st);
    if (s.request == NOTHING) return;
    const Problem pb = problem_at(k, problems, point_start, linear_start, term_rows, offsets,
                                  coords, linear, rhs, values, linres, jac);
    const Range g = range_of(pb, chunk_start, k, c, chunk_points);
    const double* from = st + (s.request == EVALUATE && s.at_trial != 0.0 ? TRIAL_AT : W);
    for (int i = threadIdx.x; i < N; i += blockDim.x) x[i] = from[i];
    __syncthreads();
    double* out = partials + c * PARTIAL;
    if (s.request == EVALUATE) {
        evaluate_chunk(pb, g, &block, x, (int)s.slot, (int)s.cur, out);
    } else {
        hessian_chunk(pb, g, &block, x, out);
    }
}

// The backward pass's per-point outputs of chunk blockIdx.x, as the CPU's
// `Sensitivity::row_gradient`: with λ from `tessera_ift_step`, the
// coefficients of ω* and λ in the term rows' gradient,
//   Ā_j[p] = term_omega[p, j]·ω* + term_lambda[p, j]·λ,
// and per linear row L̄_i = linear_omega[i]·ω* + linear_lambda[i]·λ; nothing
// for a problem whose `result` is not 0 (done).
extern "C" __global__ void tessera_ift_rows(
    const long long* point_start, const long long* linear_start, const double* term_rows,
    const double* offsets, const double* coords, const double* linear, const double* rhs,
    int problems, const long long* chunk_start, long long chunk_points, const double* omega,
    const double* lambda, const double* result, double* values, double* linres, double* jac,
    double* term_omega, double* term_lambda, double* linear_omega, double* linear_lambda) {
    using namespace tessera_lm;
    __shared__ double w[N], lam[N];
    const long long c = blockIdx.x;
    const int k = problem_of_chunk(chunk_start, problems, c);
    if (result[k] != 0.0) return;
    const int t = threadIdx.x, nt = blockDim.x;
    const Problem pb = problem_at(k, problems, point_start, linear_start, term_rows, offsets,
                                  coords, linear, rhs, values, linres, jac);
    const Range g = range_of(pb, chunk_start, k, c, chunk_points);
    const long long p0 = point_start[k], r0 = linear_start[k];
    for (int i = t; i < N; i += nt) {
        w[i] = omega[k * N + i];
        lam[i] = lambda[k * N + i];
    }
    __syncthreads();
    for (long long p = g.p0 + t; p < g.p1; p += nt) {
        double v[M], gr[M * D], h[M * D * D], y[D];
        residual_at(pb, p, w, v, gr, h);
        for (int j = 0; j < D; ++j) y[j] = dot(pb.rows + (p * D + j) * N, lam, N);
        double* a = term_omega + (p0 + p) * D;
        double* cl = term_lambda + (p0 + p) * D;
        for (int j = 0; j < D; ++j) a[j] = cl[j] = 0.0;
        for (int e = 0; e < M; ++e) {
            const double f = v[e], *ge = gr + e * D, *he = h + e * D * D;
            double s = 0.0;
            for (int l = 0; l < D; ++l) s += ge[l] * y[l];
            for (int j = 0; j < D; ++j) {
                double u = 0.0;
                for (int l = 0; l < D; ++l) u += he[j * D + l] * y[l];
                a[j] -= ge[j] * s + f * u;
                cl[j] -= f * ge[j];
            }
        }
    }
    for (long long r = g.r0 + t; r < g.r1; r += nt) {
        linear_omega[r0 + r] = -dot(pb.linear + r * N, lam, N);
        linear_lambda[r0 + r] = -pb.linres[0][r];
    }
}
