// The PDE loss of whole fields on the device: the residual F at every grid
// point of every sample, its squared norm per segment (a sample, or one time
// level of it), and the cotangent the loss's gradient pulls back to u.
//
// The terms z = [D_1 u, …, D_d u] and the final adjoint Σ_j D_jᵀ z̄_j are
// sparse products (`tessera_gather_values` with the terms' rows at every grid
// point and with their transpose), so this file only holds what is pointwise
// or a reduction. The steps, for `total` = samples × grid points:
//
//   tessera_field_residual   z [total, D] → F [total, M], ∂F/∂z [total, M, D]
//   tessera_segment_squares  F → Σ F² over each segment of `segment_len` values
//   tessera_field_cotangent  z̄[q, j] = Σ_e (F[q, e] · scale[segment of q]) · ∂F_e/∂z_j
//
// as `FieldResidual::loss_and_gradient` on the CPU, whose per-point
// arithmetic (the residual's tape, the cotangent's order of summation) these
// follow; only the norms' sums run in another order. Needs TESSERA_D,
// TESSERA_M, TESSERA_C, TESSERA_RESIDUAL and TESSERA_THREADS (`lm.cu`'s).

// The norms' tree halves the block at every level.
static_assert((TESSERA_THREADS & (TESSERA_THREADS - 1)) == 0, "a power-of-two block");

namespace tessera_field {
constexpr int D = TESSERA_D;
constexpr int M = TESSERA_M;
constexpr int C = TESSERA_C;
}  // namespace tessera_field

// The residual and its gradient in the terms at every point q of every
// sample; `coordinates` [grid points, C] are the grid's, shared by the
// samples (not read when C = 0).
extern "C" __global__ void tessera_field_residual(long long total, long long n_grid,
    const double* z, const double* coordinates, double* values, double* grads) {
    using namespace tessera_field;
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long q = (long long)blockIdx.x * blockDim.x + threadIdx.x; q < total; q += step) {
        double hess[M * D * D];
        const double* x = C > 0 ? coordinates + (q % n_grid) * C : nullptr;
        TESSERA_RESIDUAL(z + q * D, x, values + q * M, grads + q * M * D, hess);
    }
}

// One block per segment: sums[s] = Σ values[s·segment_len + i]², each thread
// summing a strided share in order, then a tree over the block's threads,
// so the sum does not depend on anything but the block size.
extern "C" __global__ void tessera_segment_squares(long long segment_len, const double* values,
    double* sums) {
    __shared__ double partial[TESSERA_THREADS];
    const double* v = values + (long long)blockIdx.x * segment_len;
    double sum = 0.0;
    for (long long i = threadIdx.x; i < segment_len; i += blockDim.x) sum += v[i] * v[i];
    partial[threadIdx.x] = sum;
    __syncthreads();
    for (unsigned half = TESSERA_THREADS / 2; half > 0; half /= 2) {
        if (threadIdx.x < half && threadIdx.x + half < blockDim.x)
            partial[threadIdx.x] += partial[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) sums[blockIdx.x] = partial[0];
}

// z̄ at every point of every sample: each residual's cotangent F·scale (the
// scale of its segment of `segment_points` points) times its gradient,
// summed over the equations in order, as the CPU's pull-back.
extern "C" __global__ void tessera_field_cotangent(long long total, long long segment_points,
    const double* scales, const double* values, const double* grads, double* z_bar) {
    using namespace tessera_field;
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long q = (long long)blockIdx.x * blockDim.x + threadIdx.x; q < total; q += step) {
        const double scale = scales[q / segment_points];
        double sum[D];
        for (int j = 0; j < D; ++j) sum[j] = 0.0;
        for (int e = 0; e < M; ++e) {
            const double c = values[q * M + e] * scale;
            for (int j = 0; j < D; ++j) sum[j] += c * grads[(q * M + e) * D + j];
        }
        for (int j = 0; j < D; ++j) z_bar[q * D + j] = sum[j];
    }
}
