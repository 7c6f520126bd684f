// A mixture of experts' passes over the whole grid, on the device, for a
// batch whose term rows were gathered there from its fields F (the basis B,
// or S·B): the constrained solution u, the experts' upstream gradients ω̄,
// and the pull-back of the backward pass's row gradients to F. As the CPU's
// `ConstraintLayer` (`assemble`) and `PullBack` (`omega_bars`,
// `basis_gradient` before its Sᵀ), in the layout of `lm.cu`'s batch:
// samples b of K experts each, problem b·K + k; F [samples, grid points, N];
// ω and λ [samples·K, N]; each expert owns the points of its tile
// (`owners` [grid points]).
//
//   tessera_assemble         u[b, q] = s₀[b, q] + Σ_c F[b, q, c]·ω[b·K + owner(q), c]
//   tessera_omega_bar_parts  partial sums of ω̄[b·K + k, c] = Σ_{q ∈ tile k} ū[b, q]·F[b, q, c]
//   tessera_omega_bar_sum    ω̄ from its partial sums, in a fixed order
//   tessera_pull_back        F̄ = ∂L/∂F from ū and the row gradients
//
// Every sum runs in a fixed order (no atomics), so the results do not depend
// on the launch. Needs TESSERA_N, TESSERA_D and TESSERA_THREADS (`lm.cu`'s).

// ω̄'s partial sums give each of a block's threads one basis function of a
// group of points: fewer threads than N would leave no group at all.
static_assert(TESSERA_THREADS >= TESSERA_N, "a block holds a thread per basis function");

// u at every point q of every sample b; `offsets` (s₀, [samples, grid
// points]) is read only when `has_offsets` is non-zero.
extern "C" __global__ void tessera_assemble(long long samples, long long n_grid, int experts,
    const int* owners, const double* fields, const double* omega, const double* offsets,
    int has_offsets, double* u) {
    const int n = TESSERA_N;
    const long long total = samples * n_grid;
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
        const long long b = e / n_grid, q = e % n_grid;
        const double* f = fields + e * n;
        const double* w = omega + (b * experts + owners[q]) * n;
        double sum = 0.0;
        for (int c = 0; c < n; ++c) sum += f[c] * w[c];
        u[e] = (has_offsets ? offsets[e] : 0.0) + sum;
    }
}

// One block per (problem b·K + k, chunk): the chunk-th of `chunks` equal
// slices of tile k's points (`tile_points[tile_start[k]..tile_start[k+1]]`),
// summed into parts[(problem·chunks + chunk)·N + c]. The block's threads
// form groups of N (thread t takes c = t mod N and every groups-th point of
// the slice from its group t div N); the groups' sums are then added in
// group order. Needs blockDim.x ≥ N.
extern "C" __global__ void tessera_omega_bar_parts(long long n_grid, int experts, int chunks,
    const long long* tile_start, const int* tile_points, const double* fields,
    const double* u_bar, double* parts) {
    __shared__ double partial[TESSERA_THREADS];
    const int n = TESSERA_N;
    const long long block = blockIdx.x;
    const long long problem = block / chunks, chunk = block % chunks;
    const long long b = problem / experts, k = problem % experts;
    const long long start = tile_start[k], len = tile_start[k + 1] - start;
    const long long lo = start + len * chunk / chunks, hi = start + len * (chunk + 1) / chunks;
    const int groups = (int)blockDim.x / n;
    const int t = threadIdx.x, c = t % n, group = t / n;
    double sum = 0.0;
    if (group < groups) {
        for (long long i = lo + group; i < hi; i += groups) {
            const long long q = b * n_grid + tile_points[i];
            sum += u_bar[q] * fields[q * n + c];
        }
    }
    partial[t] = sum;
    __syncthreads();
    if (t < n) {
        double total = 0.0;
        for (int g = 0; g < groups; ++g) total += partial[g * n + t];
        parts[block * n + t] = total;
    }
}

// ω̄[problem, c] = Σ_chunk parts[(problem·chunks + chunk)·N + c], chunks in
// order, for `problems` problems.
extern "C" __global__ void tessera_omega_bar_sum(long long problems, int chunks,
    const double* parts, double* omega_bar) {
    const int n = TESSERA_N;
    const long long total = problems * n;
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
        const long long problem = e / n, c = e % n;
        double sum = 0.0;
        for (int chunk = 0; chunk < chunks; ++chunk)
            sum += parts[(problem * chunks + chunk) * n + c];
        omega_bar[e] = sum;
    }
}

// F̄[b, q, c] at every point q of every sample b: the direct path (u is
// linear in F at fixed ω*) plus the implicit one, every row gradient
// Ā = α·ω* + β·λ of its expert pulled back through its sparse row:
//
//   F̄[b, q, c] = ū[b, q]·ω[b·K + owner(q), c]
//     + Σ_{(p, j) ∈ adjoint row q} w · Σ_{s ∈ sampled(p)} (α_s,j ω + β_s,j λ)[b·K + owner(p), c]
//     + Σ_{l ∈ linear row q}       w · (α_l ω + β_l λ)[b·K + linear_expert[l], c]
//
// - the adjoint rows are the transpose of the residual's terms at every
//   grid point (rows p·D + j, term j at point p), so an entry names a point
//   and a term;
// - `sampled` lists, per grid point p, the indices s (ascending) at which p
//   appears among one sample's sampled points (the experts' points in
//   order, `points_per_sample` of them), so the term rows' coefficients are
//   α_s,j = term_omega[(b·points_per_sample + s)·D + j] (β: term_lambda), as
//   the backward kernel writes them;
// - the linear rows are the transpose of one sample's linear rows expanded
//   over the grid (row l = Σ_j c_j · row `point_l` of D_j, the experts'
//   rows in order, `linear_per_sample` of them), with coefficients
//   α_l = linear_omega[b·linear_per_sample + l] (β: linear_lambda).
extern "C" __global__ void tessera_pull_back(long long samples, long long n_grid, int experts,
    const int* owners, const double* u_bar, const long long* adjoint_start,
    const int* adjoint_columns, const double* adjoint_weights, const long long* sampled_start,
    const int* sampled, long long points_per_sample, const long long* linear_start,
    const int* linear_columns, const double* linear_weights, const int* linear_expert,
    long long linear_per_sample, const double* term_omega, const double* term_lambda,
    const double* linear_omega, const double* linear_lambda, const double* omega,
    const double* lambda, double* out) {
    const int n = TESSERA_N, d = TESSERA_D;
    const long long total = samples * n_grid * n;
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
        const long long c = e % n, point = e / n;
        const long long b = point / n_grid, q = point % n_grid;
        const long long first = b * experts;
        double sum = u_bar[point] * omega[(first + owners[q]) * n + c];
        for (long long a = adjoint_start[q]; a < adjoint_start[q + 1]; ++a) {
            const long long p = adjoint_columns[a] / d, j = adjoint_columns[a] % d;
            const long long k = (first + owners[p]) * n + c;
            for (long long i = sampled_start[p]; i < sampled_start[p + 1]; ++i) {
                const long long row = (b * points_per_sample + sampled[i]) * d + j;
                sum += adjoint_weights[a] * (term_omega[row] * omega[k] + term_lambda[row] * lambda[k]);
            }
        }
        for (long long a = linear_start[q]; a < linear_start[q + 1]; ++a) {
            const long long l = linear_columns[a];
            const long long k = (first + linear_expert[l]) * n + c;
            const long long row = b * linear_per_sample + l;
            sum += linear_weights[a] * (linear_omega[row] * omega[k] + linear_lambda[row] * lambda[k]);
        }
        out[e] = sum;
    }
}
