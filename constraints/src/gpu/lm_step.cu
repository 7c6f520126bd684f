// The per-problem half of the batched solver (see `lm.cu`): the partial sums
// of a problem's chunks added in chunk order, then the Levenberg–Marquardt
// decisions on the N×N system, one thread block per problem. Needs `lm.cu`.

namespace tessera_lm {

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

__device__ inline double norm2(const double* g) { return dot(g, g, N); }

// A problem's N×N matrices: JᵀJ then Jᵀr at two iterates ([N² + N] each),
// and two matrices to factor ([2N²]).
struct Mats {
    double* normal[2];
    double* work;
};

__device__ inline Mats mats_of(double* mats, int k) {
    double* mk = mats + (long long)k * (4 * NN + 2 * N);
    Mats m;
    m.normal[0] = mk;
    m.normal[1] = mk + NN + N;
    m.work = mk + 2 * (NN + N);
    return m;
}

// Σ over the chunks c0..c1 of `partials` column e, in chunk order.
__device__ inline double chunk_sum(const double* partials, long long c0, long long c1, int e) {
    double s = 0.0;
    for (long long c = c0; c < c1; ++c) s += partials[c * PARTIAL + e];
    return s;
}

// An evaluation at x from its chunks' partials: JᵀJ + ρ²I and Jᵀr + ρ²x into
// `normal`, and the cost ½(‖r‖² + ρ²‖x‖²), NaN when a term was not finite.
// Every thread gets the cost.
__device__ double gather_evaluation(const double* partials, long long c0, long long c1,
                                    double ridge2, const double* x, double* normal) {
    for (int e = threadIdx.x; e < UPPER + N; e += blockDim.x) {
        if (e < UPPER) {
            int i, j;
            upper_entry(e, &i, &j);
            double v = chunk_sum(partials, c0, c1, e) + (i == j ? ridge2 : 0.0);
            normal[i * N + j] = v;
            normal[j * N + i] = v;
        } else {
            int i = e - UPPER;
            normal[NN + i] = chunk_sum(partials, c0, c1, NN + i) + ridge2 * x[i];
        }
    }
    __syncthreads();
    const double bad = chunk_sum(partials, c0, c1, BAD);
    const double cost = 0.5 * (chunk_sum(partials, c0, c1, COST) + ridge2 * dot(x, x, N));
    return bad > 0.0 ? nan("") : cost;
}

// The exact Hessian JᵀJ + Σ_p r_p ∇²r_p at ω from `gram` (JᵀJ there) and the
// chunks' partials into `work`, symmetrised as the CPU's; false when a term
// or an entry is not finite.
__device__ bool gather_hessian(const double* partials, long long c0, long long c1,
                               const double* gram, double* work) {
    int t = threadIdx.x, nt = blockDim.x;
    for (int e = t; e < NN; e += nt) work[e] = gram[e] + chunk_sum(partials, c0, c1, e);
    __syncthreads();
    for (int e = t; e < NN; e += nt) {
        int i = e / N, k = e % N;
        if (k < i) {
            double m = 0.5 * (work[e] + work[k * N + i]);
            work[e] = m;
            work[k * N + i] = m;
        }
    }
    __syncthreads();
    bool finite = chunk_sum(partials, c0, c1, BAD) == 0.0;
    for (int e = 0; e < NN; ++e)
        if (!isfinite(work[e])) finite = false;
    return finite;
}

// Whether the undamped Gauss–Newton step from ω (its evaluation in `normal`)
// passes the step test; the step is left in x.
__device__ bool settled(const Mats& m, Block* b, const double* normal, const double* w, double* x,
                        double rtol, double atol) {
    for (int e = threadIdx.x; e < NN; e += blockDim.x) m.work[e] = normal[e];
    __syncthreads();
    if (!cholesky(m.work, b)) return false;
    cholesky_solve(m.work, normal + NN, x);
    bool small = step_is_small(x, w, rtol, atol);
    __syncthreads();
    return small;
}

// x = H⁻¹ rhs for the symmetric H in `work`, as the CPU's `Sensitivity`:
// Cholesky, or LU on a copy (`work + N²`) when H is not positive definite.
__device__ void symmetric_solve(const Mats& m, Block* b, const double* rhs, double* x) {
    for (int e = threadIdx.x; e < NN; e += blockDim.x) m.work[NN + e] = m.work[e];
    __syncthreads();
    if (cholesky(m.work, b)) {
        cholesky_solve(m.work, rhs, x);
    } else {
        lu_solve(m.work + NN, rhs, x);
    }
}

// Asks the next round for an evaluation at the trial into the free slot,
// to resume at `resume`.
__device__ inline void ask_trial(State& s, double resume) {
    s.request = EVALUATE;
    s.at_trial = 1.0;
    s.slot = 1.0 - s.cur;
    s.resume = resume;
}

__device__ inline void finish(State& s, double reason) {
    s.request = NOTHING;
    s.reason = reason;
}

// The iteration from the top of the CPU's loop at ω: damped steps until one
// can be tried (asked of the next round), or the solve ends.
__device__ void iterate(State& s, const Mats& m, Block* b, const double* w, double* trial,
                        double* step, double* minus_g, int max_iterations) {
    const int t = threadIdx.x, nt = blockDim.x;
    const double* normal = m.normal[(int)s.cur];
    const double* g = normal + NN;
    while (s.iterations < max_iterations) {
        bool zero = true;
        for (int i = 0; i < N; ++i)
            if (g[i] != 0.0) zero = false;
        if (zero) {
            finish(s, CONVERGED);
            return;
        }
        s.iterations += 1.0;
        for (int e = t; e < NN; e += nt) m.work[e] = normal[e] + (e % (N + 1) == 0 ? s.mu : 0.0);
        for (int i = t; i < N; i += nt) minus_g[i] = -g[i];
        __syncthreads();
        if (!cholesky(m.work, b)) {
            if (!isfinite(s.mu) || s.mu > 1e300) {
                finish(s, SINGULAR);
                return;
            }
            s.mu = fmax(s.mu * s.nu, s.mu_floor);
            s.nu *= 2.0;
            continue;
        }
        cholesky_solve(m.work, minus_g, step);
        for (int i = t; i < N; i += nt) trial[i] = w[i] + step[i];
        __syncthreads();
        double predicted = 0.0;
        for (int i = 0; i < N; ++i) predicted += step[i] * (s.mu * step[i] - g[i]);
        s.predicted = 0.5 * predicted;
        ask_trial(s, TRIAL);
        return;
    }
    finish(s, s.reason);
}

// ω ← trial (evaluated in the free slot) with its cost; the Gauss–Newton
// step from there is judged (into `step`).
__device__ void accept(State& s, const Mats& m, Block* b, double* w, const double* trial,
                       double* step, double cost, double rtol, double atol) {
    for (int i = threadIdx.x; i < N; i += blockDim.x) w[i] = trial[i];
    __syncthreads();
    s.cur = 1.0 - s.cur;
    s.cost = cost;
    s.settled = settled(m, b, m.normal[(int)s.cur], w, step, rtol, atol) ? 1.0 : 0.0;
}

// The state's vectors (ω, trial, step) to or from shared memory.
__device__ inline void copy_vectors(double* to_w, double* to_trial, double* to_step,
                                    const double* w, const double* trial, const double* step) {
    for (int i = threadIdx.x; i < N; i += blockDim.x) {
        to_w[i] = w[i];
        to_trial[i] = trial[i];
        to_step[i] = step[i];
    }
}

}  // namespace tessera_lm

// One round's decisions for problem blockIdx.x of the forward solve. With
// `start` set, it only reads the initial weights from `omega` [K, N] and asks
// for their evaluation. Otherwise it takes the evaluation the last
// accumulate launch summed and moves the CPU's iteration on to its next
// evaluation; when the problem is done it writes ω* into `omega` and
// reason, iterations, ‖r(ω₀)‖, ‖r(ω*)‖ and ‖Jᵀr(ω*)‖ into `status` [K, 5].
// `pending` [K] is 1 while the problem still asks for evaluations.
//
// Every thread of the block keeps its own copy of the `State` and repeats
// the same decisions on the same numbers (sums over chunks each thread adds
// in the same order, the shared Cholesky flag, global memory read after a
// barrier), so all threads take the same branches around the barriers. A
// quantity one thread computes alone must reach the others through shared
// memory before it decides a branch.
extern "C" __global__ void tessera_lm_step(
    const double* ridge, const long long* chunk_start, double rtol, double atol, double tau,
    int max_iterations, int start, double* omega, double* status, double* state, double* mats,
    const double* partials, double* pending) {
    using namespace tessera_lm;
    __shared__ Block block;
    __shared__ double w[N], trial[N], step[N], minus_g[N];
    Block* b = &block;
    const int k = blockIdx.x, t = threadIdx.x;
    double* st = state + (long long)k * STATE;
    if (start) {
        for (int i = t; i < N; i += blockDim.x) st[W + i] = omega[k * N + i];
        if (t == 0) {
            State s = {};
            s.request = EVALUATE;
            s.resume = INIT;
            *reinterpret_cast<State*>(st) = s;
            pending[k] = 1.0;
        }
        return;
    }
    State s = *reinterpret_cast<const State*>(st);
    if (s.request == NOTHING) return;
    copy_vectors(w, trial, step, st + W, st + TRIAL_AT, st + STEP_AT);
    __syncthreads();
    const Mats m = mats_of(mats, k);
    const long long c0 = chunk_start[k], c1 = chunk_start[k + 1];
    const double ridge2 = ridge[k] * ridge[k];
    const int nxt = (int)s.slot;
    double new_cost = 0.0;
    bool hessian_ok = false;
    if (s.request == EVALUATE) {
        new_cost = gather_evaluation(partials, c0, c1, ridge2, s.at_trial != 0.0 ? trial : w, m.normal[nxt]);
    } else {
        hessian_ok = gather_hessian(partials, c0, c1, m.normal[(int)s.cur], m.work);
    }
    const double* g = m.normal[(int)s.cur] + NN;
    bool go_on = false;  // back to the top of the loop
    if (s.resume == INIT) {
        s.cost = new_cost;
        s.initial = sqrt(2.0 * new_cost);
        bool finite = isfinite(new_cost);
        for (int e = 0; e < NN + N && finite; ++e)
            if (!isfinite(m.normal[0][e])) finite = false;
        if (!finite) {
            finish(s, NON_FINITE);
        } else {
            double max_diag = 0.0;
            for (int i = 0; i < N; ++i) max_diag = fmax(max_diag, m.normal[0][i * (N + 1)]);
            s.mu_floor = 2.220446049250313e-16 * fmax(max_diag, 2.2250738585072014e-308);
            s.mu = tau * max_diag;
            s.nu = 2.0;
            s.reason = MAX_ITERATIONS;
            s.settled = settled(m, b, m.normal[0], w, step, rtol, atol) ? 1.0 : 0.0;
            go_on = true;
        }
    } else if (s.resume == TRIAL) {
        double ridge_part = 0.0;
        for (int i = 0; i < N; ++i) ridge_part += (trial[i] - w[i]) * (trial[i] + w[i]);
        const double dec = -0.5 * (chunk_sum(partials, c0, c1, DECREASE) + ridge2 * ridge_part);
        const double gain = dec / s.predicted;
        if (isfinite(new_cost) && gain > 0.0) {
            const bool small = step_is_small(step, trial, rtol, atol);
            __syncthreads();
            accept(s, m, b, w, trial, step, new_cost, rtol, atol);
            const double c3 = 2.0 * gain - 1.0;
            s.mu *= fmax(1.0 - c3 * c3 * c3, 1.0 / 3.0);
            s.nu = 2.0;
            if ((s.settled != 0.0 || small) && fabs(dec) <= atol + rtol * new_cost) {
                finish(s, CONVERGED);
            } else {
                go_on = true;
            }
        } else if (s.settled != 0.0) {
            finish(s, CONVERGED);
        } else if (s.predicted <= ROUND_OFF * s.cost) {
            // The cost cannot resolve steps this small: judge the undamped
            // Gauss–Newton step by the gradient, then Newton's, or stop.
            for (int e = t; e < NN; e += blockDim.x) m.work[e] = m.normal[(int)s.cur][e];
            for (int i = t; i < N; i += blockDim.x) minus_g[i] = -g[i];
            __syncthreads();
            if (!cholesky(m.work, b)) {
                finish(s, CONVERGED);
            } else {
                cholesky_solve(m.work, minus_g, step);
                for (int i = t; i < N; i += blockDim.x) trial[i] = w[i] + step[i];
                __syncthreads();
                ask_trial(s, GAUSS_NEWTON);
            }
        } else {
            s.mu = fmax(s.mu * s.nu, s.mu_floor);
            s.nu *= 2.0;
            go_on = true;
        }
    } else if (s.resume == GAUSS_NEWTON) {
        if (isfinite(new_cost) && norm2(m.normal[nxt] + NN) < norm2(g)) {
            accept(s, m, b, w, trial, step, new_cost, rtol, atol);
            go_on = true;
        } else {
            s.request = HESSIAN;
            s.resume = NEWTON_HESSIAN;
        }
    } else if (s.resume == NEWTON_HESSIAN) {
        // `work` holds H.
        for (int i = t; i < N; i += blockDim.x) minus_g[i] = -g[i];
        __syncthreads();
        bool step_finite = hessian_ok;
        if (hessian_ok) {
            symmetric_solve(m, b, minus_g, step);
            for (int i = 0; i < N; ++i)
                if (!isfinite(step[i])) step_finite = false;
        }
        if (!step_finite) {
            finish(s, CONVERGED);
        } else {
            for (int i = t; i < N; i += blockDim.x) trial[i] = w[i] + step[i];
            __syncthreads();
            ask_trial(s, NEWTON);
        }
    } else {  // NEWTON
        if (isfinite(new_cost) && norm2(m.normal[nxt] + NN) < 0.25 * norm2(g)) {
            accept(s, m, b, w, trial, step, new_cost, rtol, atol);
            go_on = true;
        } else {
            finish(s, CONVERGED);
        }
    }
    if (go_on) iterate(s, m, b, w, trial, step, minus_g, max_iterations);
    __syncthreads();
    copy_vectors(st + W, st + TRIAL_AT, st + STEP_AT, w, trial, step);
    if (t == 0) {
        *reinterpret_cast<State*>(st) = s;
        pending[k] = s.request == NOTHING ? 0.0 : 1.0;
        if (s.request == NOTHING) {
            const bool finite = s.reason != NON_FINITE;
            for (int i = 0; i < N; ++i) omega[k * N + i] = w[i];
            double* out = status + k * 5;
            out[0] = s.reason;
            out[1] = s.iterations;
            out[2] = s.initial;
            out[3] = finite ? sqrt(2.0 * s.cost) : s.initial;
            out[4] = finite ? sqrt(norm2(m.normal[(int)s.cur] + NN)) : nan("");
        }
    }
}

// One round of the implicit-function-theorem backward pass for problem
// blockIdx.x, as the CPU's `Sensitivity`: with `start` 1 (exact Hessian) or
// 2 (Gauss–Newton) it reads ω* from `omega` and asks for its evaluation;
// then H at ω* (asking for the exact Hessian's term when `start` was 1) and
// λ = H⁻¹ω̄ (Cholesky; LU when H is not positive definite) into `lambda`
// [K, N]. `result` [K] receives 0 (done), 1 (non-finite data or H) or 2 (λ
// not finite: H singular in floating point). Two rounds after the start
// every problem is done.
extern "C" __global__ void tessera_ift_step(
    const double* ridge, const long long* chunk_start, int start, const double* omega,
    const double* omega_bar, double* lambda, double* result, double* state, double* mats,
    const double* partials) {
    using namespace tessera_lm;
    __shared__ Block block;
    __shared__ double w[N], lam[N], bar[N];
    Block* b = &block;
    const int k = blockIdx.x, t = threadIdx.x, nt = blockDim.x;
    double* st = state + (long long)k * STATE;
    if (start) {
        for (int i = t; i < N; i += nt) st[W + i] = omega[k * N + i];
        if (t == 0) {
            State s = {};
            s.request = EVALUATE;
            s.resume = start == 1 ? BACKWARD_EXACT : BACKWARD_GAUSS_NEWTON;
            *reinterpret_cast<State*>(st) = s;
        }
        return;
    }
    State s = *reinterpret_cast<const State*>(st);
    if (s.request == NOTHING) return;
    for (int i = t; i < N; i += nt) {
        w[i] = st[W + i];
        bar[i] = omega_bar[k * N + i];
        lam[i] = 0.0;  // a problem whose Hessian is not finite reports λ = 0
    }
    __syncthreads();
    const Mats m = mats_of(mats, k);
    const long long c0 = chunk_start[k], c1 = chunk_start[k + 1];
    bool finite;
    if (s.request == HESSIAN) {
        finite = gather_hessian(partials, c0, c1, m.normal[0], m.work);
    } else {
        finite = isfinite(gather_evaluation(partials, c0, c1, ridge[k] * ridge[k], w, m.normal[0]));
        if (finite && s.resume == BACKWARD_EXACT) {
            __syncthreads();
            if (t == 0) {
                s.request = HESSIAN;
                s.resume = BACKWARD_HESSIAN;
                *reinterpret_cast<State*>(st) = s;
            }
            return;
        }
        for (int e = t; e < NN; e += nt) m.work[e] = m.normal[0][e];
        __syncthreads();
        for (int e = 0; e < NN; ++e)
            if (!isfinite(m.work[e])) finite = false;
    }
    double code = 1.0;
    if (finite) {
        symmetric_solve(m, b, bar, lam);
        code = 0.0;
        for (int i = 0; i < N; ++i)
            if (!isfinite(lam[i])) code = 2.0;
    }
    __syncthreads();
    for (int i = t; i < N; i += nt) lambda[k * N + i] = lam[i];
    if (t == 0) {
        s.request = NOTHING;
        *reinterpret_cast<State*>(st) = s;
        result[k] = code;
    }
}
