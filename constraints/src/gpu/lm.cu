// Batched Levenberg–Marquardt for Tessera's expert problems: one thread block
// per problem, every problem of a batch in flight at once, the whole iteration
// on the device (no host round trip per step).
//
// The algorithm is the CPU solver's (`tessera_constraints::lm`), step for
// step: the same damping rule, gain ratio, Cauchy stopping test, Gauss–Newton
// "settled" test and round-off regime with its Gauss–Newton and Newton
// fallbacks, so that both back ends stop after the same iterations and agree
// on ω to round-off. Only the summation order differs: the block's threads
// split the points, and the N×N products sum over points one entry per
// thread, in four interleaved running sums (`sum_over`).
//
// Compile-time sizes (defined before this file, with the PDE's residual):
//   TESSERA_N        basis functions N (≤ TESSERA_MAX_N, the static shared size)
//   TESSERA_D        terms the residual reads d
//   TESSERA_M        residual equations per point m
//   TESSERA_C        coordinates per point the residual reads (0: none)
//   TESSERA_RESIDUAL the emitted `tessera_NAME_hessian(z, x, value, grad, hess)`
//   TESSERA_THREADS  the largest block size a launch uses
//
// Layouts are those of `ExpertProblem`, concatenated over the K problems of a
// batch: term rows [ΣP, d, N], offsets [ΣP, d], coordinates [ΣP, C], linear rows
// [ΣR, N] and right-hand sides [ΣR], with problem k's points at
// point_start[k]..point_start[k+1] and its linear rows at
// linear_start[k]..linear_start[k+1]. Device code also compiles for the host
// (see the tests' shim): it uses only __syncthreads, static __shared__ arrays
// and plain loops over threadIdx.x / blockDim.x.

namespace tessera_lm {

constexpr int N = TESSERA_N;
constexpr int D = TESSERA_D;
constexpr int M = TESSERA_M;
constexpr int C = TESSERA_C;
constexpr int NN = N * N;
// Scratch per point: the Jacobian rows (m·N) or, in the Newton fallback, the
// curvature weights Σ_e F_e ∂²F_e/∂z_j∂z_l (d·d).
constexpr int SCRATCH = (M * N > D * D) ? M * N : D * D;
// Why a solve stopped, as `StopReason`'s variants in order.
constexpr double CONVERGED = 0.0, MAX_ITERATIONS = 1.0, NON_FINITE = 2.0, SINGULAR = 3.0;
// Below ROUND_OFF·f a predicted decrease is lost in the rounding of the cost.
constexpr double ROUND_OFF = 64.0 * 2.220446049250313e-16;

// One problem's inputs and its slices of the batch's scratch.
struct Problem {
    long long p, r;           // points, linear rows
    const double* rows;       // [P, D, N]
    const double* offsets;    // [P, D]
    const double* coords;     // [P, C]
    const double* linear;     // [R, N]
    const double* rhs;        // [R]
    double ridge;
    double* values[2];        // F(z) at two iterates, [P·M] each
    double* linres[2];        // Lω − c at two iterates, [R] each
    double* jac;              // [P, SCRATCH]
    double* normal[2];        // JᵀJ then Jᵀr at two iterates, [N² + N] each
    double* linear_gram;      // LᵀL, [N²]
    double* work;             // two N×N matrices to factor, [2N²]
};

// Shared scalars and the block's reduction buffer.
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

// Residuals, cost, JᵀJ and Jᵀr at ω into slot `s`: the cost ½‖r‖², NaN when a
// term z is not finite (a non-finite problem), as the CPU's evaluation.
__device__ double evaluate(const Problem& pb, Block* b, const double* w, int s) {
    int t = threadIdx.x, nt = blockDim.x;
    double bad = 0.0, part = 0.0;
    for (long long p = t; p < pb.p; p += nt) {
        double v[M], g[M * D], h[M * D * D];
        if (!residual_at(pb, p, w, v, g, h)) bad = 1.0;
        for (int e = 0; e < M; ++e) {
            pb.values[s][p * M + e] = v[e];
            part += v[e] * v[e];
            double* row = jac_row(pb, p * M + e);
            for (int i = 0; i < N; ++i) row[i] = 0.0;
            for (int j = 0; j < D; ++j) {
                double gj = g[e * D + j];
                if (gj == 0.0) continue;
                const double* a = pb.rows + (p * D + j) * N;
                for (int i = 0; i < N; ++i) row[i] += gj * a[i];
            }
        }
    }
    for (long long r = t; r < pb.r; r += nt) {
        double l = dot(pb.linear + r * N, w, N) - pb.rhs[r];
        pb.linres[s][r] = l;
        part += l * l;
    }
    __syncthreads();
    double ridge2 = pb.ridge * pb.ridge;
    double* gram = pb.normal[s];
    double* grad = gram + NN;
    // One sum over the points per thread: the upper triangle of JᵀJ, then
    // Jᵀr, numbered without the lower triangle so that no thread of the
    // block waits idle while another does two.
    constexpr int UPPER = N * (N + 1) / 2;
    for (int e = t; e < UPPER + N; e += nt) {
        if (e < UPPER) {
            int i = 0, j = e;
            while (j >= N - i) {
                j -= N - i;
                ++i;
            }
            j += i;
            double acc = sum_over(pb.p * M, [&](long long q) {
                const double* row = jac_row(pb, q);
                return row[i] * row[j];
            });
            gram[i * N + j] = acc + pb.linear_gram[i * N + j] + (i == j ? ridge2 : 0.0);
        } else {
            int i = e - UPPER;
            const double* values = pb.values[s];
            const double* linres = pb.linres[s];
            double acc = sum_over(pb.p * M, [&](long long q) { return jac_row(pb, q)[i] * values[q]; });
            acc += sum_over(pb.r, [&](long long r) { return pb.linear[r * N + i] * linres[r]; });
            grad[i] = acc + ridge2 * w[i];
        }
    }
    __syncthreads();
    for (int e = t; e < NN; e += nt) {
        int i = e / N, j = e % N;
        if (j < i) gram[e] = gram[j * N + i];
    }
    double n_bad = block_sum(b, bad);
    double cost = 0.5 * (block_sum(b, part) + ridge2 * dot(w, w, N));
    return n_bad > 0.0 ? nan("") : cost;
}

// ½‖r(ω)‖² − ½‖r(ω_new)‖² with slot `s` at ω and slot `u` at ω_new, summed as
// −½ Σ (r_new − r)(r_new + r): accurate relative to the decrease.
__device__ double decrease(const Problem& pb, Block* b, int s, int u, const double* w, const double* wn) {
    int t = threadIdx.x, nt = blockDim.x;
    double part = 0.0;
    for (long long q = t; q < pb.p * M; q += nt) {
        double a = pb.values[s][q], c = pb.values[u][q];
        part += (c - a) * (c + a);
    }
    for (long long r = t; r < pb.r; r += nt) {
        double a = pb.linres[s][r], c = pb.linres[u][r];
        part += (c - a) * (c + a);
    }
    double ridge_part = 0.0;
    for (int i = 0; i < N; ++i) ridge_part += (wn[i] - w[i]) * (wn[i] + w[i]);
    return -0.5 * (block_sum(b, part) + pb.ridge * pb.ridge * ridge_part);
}

// In-place lower Cholesky of the N×N matrix `a`, columns in parallel; false
// when a pivot is not positive (or NaN), as faer's `llt`.
__device__ bool cholesky(double* a, Block* b) {
    int t = threadIdx.x, nt = blockDim.x;
    for (int k = 0; k < N; ++k) {
        if (t == 0) {
            double pivot = a[k * N + k];
            b->out = pivot > 0.0 ? 1.0 : 0.0;
            a[k * N + k] = sqrt(pivot);
        }
        __syncthreads();
        bool ok = b->out > 0.0;
        __syncthreads();
        if (!ok) return false;
        double pivot = a[k * N + k];
        for (int i = k + 1 + t; i < N; i += nt) a[i * N + k] /= pivot;
        __syncthreads();
        int rest = N - k - 1;
        for (int e = t; e < rest * rest; e += nt) {
            int i = k + 1 + e / rest, j = k + 1 + e % rest;
            if (j <= i) a[i * N + j] -= a[i * N + k] * a[j * N + k];
        }
        __syncthreads();
    }
    return true;
}

// x = (L Lᵀ)⁻¹ rhs by thread 0 (2N² flops); every thread sees x after.
__device__ void cholesky_solve(const double* l, const double* rhs, double* x) {
    if (threadIdx.x == 0) {
        for (int i = 0; i < N; ++i) {
            double s = rhs[i];
            for (int k = 0; k < i; ++k) s -= l[i * N + k] * x[k];
            x[i] = s / l[i * N + i];
        }
        for (int i = N - 1; i >= 0; --i) {
            double s = x[i];
            for (int k = i + 1; k < N; ++k) s -= l[k * N + i] * x[k];
            x[i] = s / l[i * N + i];
        }
    }
    __syncthreads();
}

// x = a⁻¹ rhs by LU with partial pivoting, by thread 0 (the Newton fallback
// when the exact Hessian is not positive definite; the CPU uses full pivoting,
// which agrees to round-off on the systems this path meets).
__device__ void lu_solve(double* a, const double* rhs, double* x) {
    if (threadIdx.x == 0) {
        for (int i = 0; i < N; ++i) x[i] = rhs[i];
        for (int k = 0; k < N; ++k) {
            int best = k;
            for (int i = k + 1; i < N; ++i)
                if (fabs(a[i * N + k]) > fabs(a[best * N + k])) best = i;
            if (best != k) {
                for (int j = 0; j < N; ++j) {
                    double tmp = a[k * N + j];
                    a[k * N + j] = a[best * N + j];
                    a[best * N + j] = tmp;
                }
                double tmp = x[k];
                x[k] = x[best];
                x[best] = tmp;
            }
            for (int i = k + 1; i < N; ++i) {
                double f = a[i * N + k] / a[k * N + k];
                for (int j = k; j < N; ++j) a[i * N + j] -= f * a[k * N + j];
                x[i] -= f * x[k];
            }
        }
        for (int i = N - 1; i >= 0; --i) {
            double s = x[i];
            for (int j = i + 1; j < N; ++j) s -= a[i * N + j] * x[j];
            x[i] = s / a[i * N + i];
        }
    }
    __syncthreads();
}

// |Δ_i| ≤ atol + rtol·|ω_i| for every i.
__device__ inline bool step_is_small(const double* step, const double* w, double rtol, double atol) {
    for (int i = 0; i < N; ++i)
        if (!(fabs(step[i]) <= atol + rtol * fabs(w[i]))) return false;
    return true;
}

// Whether the undamped Gauss–Newton step from ω (slot s) passes the step test.
__device__ bool settled(const Problem& pb, Block* b, int s, const double* w, double* x, double rtol,
                        double atol) {
    for (int e = threadIdx.x; e < NN; e += blockDim.x) pb.work[e] = pb.normal[s][e];
    __syncthreads();
    if (!cholesky(pb.work, b)) return false;
    cholesky_solve(pb.work, pb.normal[s] + NN, x);
    bool small = step_is_small(x, w, rtol, atol);
    __syncthreads();
    return small;
}

// The exact Hessian JᵀJ + Σ_p r_p ∇²r_p at ω (slot s holds JᵀJ there) into
// `work`, symmetrised as the CPU's; false when a term is not finite.
__device__ bool exact_hessian(const Problem& pb, Block* b, int s, const double* w) {
    int t = threadIdx.x, nt = blockDim.x;
    double bad = 0.0;
    for (long long p = t; p < pb.p; p += nt) {
        double v[M], g[M * D], h[M * D * D];
        if (!residual_at(pb, p, w, v, g, h)) bad = 1.0;
        double* c = pb.jac + p * SCRATCH;
        for (int jl = 0; jl < D * D; ++jl) {
            double acc = 0.0;
            for (int e = 0; e < M; ++e) acc += v[e] * h[e * D * D + jl];
            c[jl] = acc;
        }
    }
    __syncthreads();
    for (int e = t; e < NN; e += nt) {
        int i = e / N, k = e % N;
        double acc = sum_over(pb.p, [&](long long p) {
            const double* c = pb.jac + p * SCRATCH;
            const double* a = pb.rows + p * D * N;
            double at_p = 0.0;
            for (int j = 0; j < D; ++j) {
                double cj = 0.0;
                for (int l = 0; l < D; ++l) cj += c[j * D + l] * a[l * N + k];
                at_p += a[j * N + i] * cj;
            }
            return at_p;
        });
        pb.work[e] = pb.normal[s][e] + acc;
    }
    __syncthreads();
    for (int e = t; e < NN; e += nt) {
        int i = e / N, k = e % N;
        if (k < i) {
            double m = 0.5 * (pb.work[e] + pb.work[k * N + i]);
            pb.work[e] = m;
            pb.work[k * N + i] = m;
        }
    }
    __syncthreads();
    double finite = 1.0;
    for (int e = 0; e < NN; ++e)
        if (!isfinite(pb.work[e])) finite = 0.0;
    return block_sum(b, bad) == 0.0 && finite > 0.0;
}

// x = H⁻¹ rhs for the symmetric H in `work`, as the CPU's `Sensitivity`:
// Cholesky, or LU on a copy (`work + N²`) when H is not positive definite.
__device__ void symmetric_solve(const Problem& pb, Block* b, const double* rhs, double* x) {
    for (int e = threadIdx.x; e < NN; e += blockDim.x) pb.work[NN + e] = pb.work[e];
    __syncthreads();
    if (cholesky(pb.work, b)) {
        cholesky_solve(pb.work, rhs, x);
    } else {
        lu_solve(pb.work + NN, rhs, x);
    }
}

__device__ inline double norm2(const double* g) { return dot(g, g, N); }

// Problem k of the batch: its slices of the inputs and of the scratch, and
// its LᵀL formed by the block (every thread must call this).
__device__ Problem problem_of(int k, const long long* point_start, const long long* linear_start,
                              const double* term_rows, const double* offsets, const double* coords,
                              const double* linear, const double* rhs, const double* ridge,
                              double* values, double* linres, double* jac, double* mats) {
    const long long p0 = point_start[k], r0 = linear_start[k];
    const long long total_points = point_start[gridDim.x], total_rows = linear_start[gridDim.x];
    Problem pb;
    pb.p = point_start[k + 1] - p0;
    pb.r = linear_start[k + 1] - r0;
    pb.rows = term_rows + p0 * D * N;
    pb.offsets = offsets + p0 * D;
    pb.coords = C > 0 ? coords + p0 * C : nullptr;
    pb.linear = linear + r0 * N;
    pb.rhs = rhs + r0;
    pb.ridge = ridge[k];
    for (int s = 0; s < 2; ++s) {
        pb.values[s] = values + s * total_points * M + p0 * M;
        pb.linres[s] = linres + s * total_rows + r0;
    }
    pb.jac = jac + p0 * SCRATCH;
    double* mk = mats + (long long)k * (5 * NN + 2 * N);
    pb.normal[0] = mk;
    pb.normal[1] = mk + NN + N;
    pb.linear_gram = mk + 2 * (NN + N);
    pb.work = pb.linear_gram + NN;
    for (int e = threadIdx.x; e < NN; e += blockDim.x) {
        int i = e / N, j = e % N;
        const double* linear = pb.linear;
        pb.linear_gram[e] =
            sum_over(pb.r, [&](long long r) { return linear[r * N + i] * linear[r * N + j]; });
    }
    return pb;
}

}  // namespace tessera_lm

// Solves problem blockIdx.x of the batch. `omega` [K, N] holds the initial
// weights and receives the solutions; `status` [K, 5] receives reason,
// iterations, ‖r(ω₀)‖, ‖r(ω*)‖ and ‖Jᵀr(ω*)‖ per problem. Scratch: `values`
// [2, ΣP·M], `linres` [2, ΣR], `jac` [ΣP, SCRATCH], `mats` [K, 5N² + 2N].
extern "C" __global__ void tessera_lm_solve(
    const long long* point_start, const long long* linear_start, const double* term_rows,
    const double* offsets, const double* coords, const double* linear, const double* rhs,
    const double* ridge, double rtol, double atol, double tau, int max_iterations, double* omega,
    double* status, double* values, double* linres, double* jac, double* mats) {
    using namespace tessera_lm;
    __shared__ Block block;
    __shared__ double w[N], trial[N], step[N], minus_g[N];
    Block* b = &block;
    const int k = blockIdx.x, t = threadIdx.x, nt = blockDim.x;
    const Problem pb = problem_of(k, point_start, linear_start, term_rows, offsets, coords, linear,
                                  rhs, ridge, values, linres, jac, mats);
    for (int i = t; i < N; i += nt) w[i] = omega[k * N + i];
    __syncthreads();

    int cur = 0, iterations = 0;
    double reason = NON_FINITE;
    double cost = evaluate(pb, b, w, cur);
    const double initial_residual = sqrt(2.0 * cost);
    double final_residual = initial_residual, gradient_norm = nan("");
    bool finite = isfinite(cost);
    for (int e = 0; e < NN + N && finite; ++e)
        if (!isfinite(pb.normal[cur][e])) finite = false;
    if (finite) {
        double max_diag = 0.0;
        for (int i = 0; i < N; ++i) max_diag = fmax(max_diag, pb.normal[cur][i * (N + 1)]);
        const double mu_floor = 2.220446049250313e-16 * fmax(max_diag, 2.2250738585072014e-308);
        double mu = tau * max_diag, nu = 2.0;
        reason = MAX_ITERATIONS;
        bool is_settled = settled(pb, b, cur, w, step, rtol, atol);
        while (iterations < max_iterations) {
            const double* g = pb.normal[cur] + NN;
            bool zero = true;
            for (int i = 0; i < N; ++i)
                if (g[i] != 0.0) zero = false;
            if (zero) {
                reason = CONVERGED;
                break;
            }
            ++iterations;
            for (int e = t; e < NN; e += nt) pb.work[e] = pb.normal[cur][e] + (e % (N + 1) == 0 ? mu : 0.0);
            for (int i = t; i < N; i += nt) minus_g[i] = -g[i];
            __syncthreads();
            if (!cholesky(pb.work, b)) {
                if (!isfinite(mu) || mu > 1e300) {
                    reason = SINGULAR;
                    break;
                }
                mu = fmax(mu * nu, mu_floor);
                nu *= 2.0;
                continue;
            }
            cholesky_solve(pb.work, minus_g, step);
            for (int i = t; i < N; i += nt) trial[i] = w[i] + step[i];
            __syncthreads();
            double predicted = 0.0;
            for (int i = 0; i < N; ++i) predicted += step[i] * (mu * step[i] - g[i]);
            predicted *= 0.5;
            const int nxt = 1 - cur;
            double new_cost = evaluate(pb, b, trial, nxt);
            double dec = decrease(pb, b, cur, nxt, w, trial);
            double gain = dec / predicted;
            if (isfinite(new_cost) && gain > 0.0) {
                bool small = step_is_small(step, trial, rtol, atol);
                __syncthreads();
                for (int i = t; i < N; i += nt) w[i] = trial[i];
                __syncthreads();
                cost = new_cost;
                cur = nxt;
                double c3 = 2.0 * gain - 1.0;
                mu *= fmax(1.0 - c3 * c3 * c3, 1.0 / 3.0);
                nu = 2.0;
                is_settled = settled(pb, b, cur, w, step, rtol, atol);
                if ((is_settled || small) && fabs(dec) <= atol + rtol * new_cost) {
                    reason = CONVERGED;
                    break;
                }
            } else if (is_settled) {
                reason = CONVERGED;
                break;
            } else if (predicted <= ROUND_OFF * cost) {
                // The cost cannot resolve steps this small: judge the undamped
                // Gauss–Newton step by the gradient, then Newton's, or stop.
                for (int e = t; e < NN; e += nt) pb.work[e] = pb.normal[cur][e];
                __syncthreads();
                if (!cholesky(pb.work, b)) {
                    reason = CONVERGED;
                    break;
                }
                cholesky_solve(pb.work, minus_g, step);
                for (int i = t; i < N; i += nt) trial[i] = w[i] + step[i];
                __syncthreads();
                new_cost = evaluate(pb, b, trial, nxt);
                if (!(isfinite(new_cost) && norm2(pb.normal[nxt] + NN) < norm2(pb.normal[cur] + NN))) {
                    if (!exact_hessian(pb, b, cur, w)) {
                        reason = CONVERGED;
                        break;
                    }
                    // `work` holds H.
                    symmetric_solve(pb, b, minus_g, step);
                    bool step_finite = true;
                    for (int i = 0; i < N; ++i)
                        if (!isfinite(step[i])) step_finite = false;
                    if (!step_finite) {
                        reason = CONVERGED;
                        break;
                    }
                    for (int i = t; i < N; i += nt) trial[i] = w[i] + step[i];
                    __syncthreads();
                    new_cost = evaluate(pb, b, trial, nxt);
                    if (!(isfinite(new_cost) &&
                          norm2(pb.normal[nxt] + NN) < 0.25 * norm2(pb.normal[cur] + NN))) {
                        reason = CONVERGED;
                        break;
                    }
                }
                for (int i = t; i < N; i += nt) w[i] = trial[i];
                __syncthreads();
                cur = nxt;
                cost = new_cost;
                is_settled = settled(pb, b, cur, w, step, rtol, atol);
            } else {
                mu = fmax(mu * nu, mu_floor);
                nu *= 2.0;
            }
        }
        final_residual = sqrt(2.0 * cost);
        gradient_norm = sqrt(norm2(pb.normal[cur] + NN));
    }
    __syncthreads();
    if (t == 0) {
        for (int i = 0; i < N; ++i) omega[k * N + i] = w[i];
        double* st = status + k * 5;
        st[0] = reason;
        st[1] = iterations;
        st[2] = initial_residual;
        st[3] = final_residual;
        st[4] = gradient_norm;
    }
}

// The implicit-function-theorem backward pass of problem blockIdx.x, as the
// CPU's `Sensitivity::row_gradient`: H at ω* (exact, or Gauss–Newton when
// `exact` is 0), λ = H⁻¹ω̄ (Cholesky; LU when H is not positive definite),
// then per point the coefficients of ω* and λ in the term rows' gradient,
//   Ā_j[p] = term_omega[p, j]·ω* + term_lambda[p, j]·λ,
// and per linear row L̄_i = linear_omega[i]·ω* + linear_lambda[i]·λ.
// `state` [K] receives 0 (done), 1 (non-finite data or H) or 2 (λ not finite:
// H singular in floating point). Scratch as `tessera_lm_solve`'s.
extern "C" __global__ void tessera_ift_backward(
    const long long* point_start, const long long* linear_start, const double* term_rows,
    const double* offsets, const double* coords, const double* linear, const double* rhs,
    const double* ridge, const double* omega, const double* omega_bar, int exact, double* lambda,
    double* term_omega, double* term_lambda, double* linear_omega, double* linear_lambda,
    double* state, double* values, double* linres, double* jac, double* mats) {
    using namespace tessera_lm;
    __shared__ Block block;
    __shared__ double w[N], lam[N], bar[N];
    Block* b = &block;
    const int k = blockIdx.x, t = threadIdx.x, nt = blockDim.x;
    const long long p0 = point_start[k], r0 = linear_start[k];
    const Problem pb = problem_of(k, point_start, linear_start, term_rows, offsets, coords, linear,
                                  rhs, ridge, values, linres, jac, mats);
    for (int i = t; i < N; i += nt) {
        w[i] = omega[k * N + i];
        bar[i] = omega_bar[k * N + i];
        lam[i] = 0.0; // a problem whose Hessian is not finite reports λ = 0
    }
    __syncthreads();
    double result = 0.0;
    bool finite = isfinite(evaluate(pb, b, w, 0));
    if (finite && exact) {
        finite = exact_hessian(pb, b, 0, w);
    } else if (finite) {
        for (int e = t; e < NN; e += nt) pb.work[e] = pb.normal[0][e];
        __syncthreads();
        for (int e = 0; e < NN; ++e)
            if (!isfinite(pb.work[e])) finite = false;
    }
    if (!finite) {
        result = 1.0;
    } else {
        symmetric_solve(pb, b, bar, lam);
        for (int i = 0; i < N; ++i)
            if (!isfinite(lam[i])) result = 2.0;
    }
    if (result == 0.0) {
        for (long long p = t; p < pb.p; p += nt) {
            double v[M], g[M * D], h[M * D * D], y[D];
            residual_at(pb, p, w, v, g, h);
            for (int j = 0; j < D; ++j) y[j] = dot(pb.rows + (p * D + j) * N, lam, N);
            double* a = term_omega + (p0 + p) * D;
            double* c = term_lambda + (p0 + p) * D;
            for (int j = 0; j < D; ++j) a[j] = c[j] = 0.0;
            for (int e = 0; e < M; ++e) {
                const double f = v[e], *ge = g + e * D, *he = h + e * D * D;
                double s = 0.0;
                for (int l = 0; l < D; ++l) s += ge[l] * y[l];
                for (int j = 0; j < D; ++j) {
                    double u = 0.0;
                    for (int l = 0; l < D; ++l) u += he[j * D + l] * y[l];
                    a[j] -= ge[j] * s + f * u;
                    c[j] -= f * ge[j];
                }
            }
        }
        for (long long r = t; r < pb.r; r += nt) {
            linear_omega[r0 + r] = -dot(pb.linear + r * N, lam, N);
            linear_lambda[r0 + r] = -pb.linres[0][r];
        }
    }
    __syncthreads();
    if (t == 0) {
        for (int i = 0; i < N; ++i) lambda[k * N + i] = lam[i];
        state[k] = result;
    }
}
