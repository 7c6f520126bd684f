// The FNO backbone's kernels: one strided, batched, split-K matrix product
// (every layer of the FNO is a chain of these: the truncated DFTs are products
// with small cosine/sine matrices, the channel mixings are products per mode)
// and the pointwise pieces around it. Row-major, 1-D grids, in the precision
// TESSERA_REAL names (double, or float for a float32 backbone; the source is
// compiled once per precision), with every literal cast to it so that a
// float build does no double arithmetic.
//
// The optimiser's two kernels close the file: Adam in optax's form and the
// squared norms that global-norm clipping needs.
//
// Written for NVRTC, and for the host shim of the tests (static shared memory,
// barriers, loops over threadIdx.x; no warp intrinsics, no atomics), which is
// how a machine without a GPU checks this arithmetic against the CPU backbone.

#ifndef TESSERA_REAL
#define TESSERA_REAL double
#endif
typedef TESSERA_REAL real;

#define TESSERA_TILE 64
#define TESSERA_TILE_K 16
#define TESSERA_GEMM_THREADS 256
#define TESSERA_REDUCE_THREADS 256

// C_b = alpha * A_b B_b + beta * C_b for b < batch, with A_b an m x k and B_b a
// k x n matrix at arbitrary element strides (row, column, batch), so that
// transposes, sub-blocks and broadcast operands (batch stride 0) need no copy.
// Each block computes one 64 x 64 tile of one batch entry over one slice of k:
// 256 threads, each a 4 x 4 register tile, k staged through shared memory 16
// at a time. With splits > 1 the blocks of slice s write alpha * (their part)
// to partial[(b * splits + s) * m * n + i * n + j] instead of C, and
// tessera_gemm_reduce adds the slices in a fixed order (deterministic sums
// for the weight gradients, whose k is every grid point). beta == 0 never
// reads C, so uninitialised outputs are fine.
extern "C" __global__ void tessera_gemm(long long m, long long n, long long k, long long batch,
    long long splits, long long k_slice, real alpha, const real* a, long long a_rs,
    long long a_cs, long long a_bs, const real* b, long long b_rs, long long b_cs,
    long long b_bs, real beta, real* c, long long c_rs, long long c_cs, long long c_bs,
    real* partial) {
    __shared__ real as[TESSERA_TILE_K][TESSERA_TILE];
    __shared__ real bs[TESSERA_TILE_K][TESSERA_TILE];
    const long long tiles_m = (m + TESSERA_TILE - 1) / TESSERA_TILE;
    const long long tiles_n = (n + TESSERA_TILE - 1) / TESSERA_TILE;
    long long block = blockIdx.x;
    const long long tile_n = block % tiles_n;
    block /= tiles_n;
    const long long tile_m = block % tiles_m;
    block /= tiles_m;
    const long long split = block % splits;
    const long long entry = block / splits;
    const long long row0 = tile_m * TESSERA_TILE, col0 = tile_n * TESSERA_TILE;
    const long long k_begin = split * k_slice;
    const long long k_end = k_begin + k_slice < k ? k_begin + k_slice : k;
    const real* a_entry = a + entry * a_bs;
    const real* b_entry = b + entry * b_bs;
    const int t = threadIdx.x, tx = t % 16, ty = t / 16;
    real acc[4][4];
    for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) acc[i][j] = 0.0;
    for (long long k0 = k_begin; k0 < k_end; k0 += TESSERA_TILE_K) {
        // 16 x 64 elements of each operand, four per thread.
        // Neighbouring threads read neighbouring addresses where an operand
        // is contiguous along k (coalesced loads), else along the tile.
        for (int e = t; e < TESSERA_TILE_K * TESSERA_TILE; e += TESSERA_GEMM_THREADS) {
            int kk = e / TESSERA_TILE, r = e % TESSERA_TILE;
            if (a_cs == 1) kk = e % TESSERA_TILE_K, r = e / TESSERA_TILE_K;
            long long kg = k0 + kk;
            as[kk][r] = (kg < k_end && row0 + r < m) ? a_entry[(row0 + r) * a_rs + kg * a_cs] : (real)0;
            kk = e / TESSERA_TILE, r = e % TESSERA_TILE;
            if (b_rs == 1 && b_cs != 1) kk = e % TESSERA_TILE_K, r = e / TESSERA_TILE_K;
            kg = k0 + kk;
            bs[kk][r] = (kg < k_end && col0 + r < n) ? b_entry[kg * b_rs + (col0 + r) * b_cs] : (real)0;
        }
        __syncthreads();
        for (int kk = 0; kk < TESSERA_TILE_K; ++kk) {
            real av[4], bv[4];
            for (int i = 0; i < 4; ++i) av[i] = as[kk][ty + 16 * i];
            for (int j = 0; j < 4; ++j) bv[j] = bs[kk][tx + 16 * j];
            for (int i = 0; i < 4; ++i)
                for (int j = 0; j < 4; ++j) acc[i][j] += av[i] * bv[j];
        }
        __syncthreads();
    }
    for (int i = 0; i < 4; ++i) {
        const long long row = row0 + ty + 16 * i;
        if (row >= m) continue;
        for (int j = 0; j < 4; ++j) {
            const long long col = col0 + tx + 16 * j;
            if (col >= n) continue;
            if (splits > 1) {
                partial[((entry * splits + split) * m + row) * n + col] = alpha * acc[i][j];
            } else {
                real* out = c + entry * c_bs + row * c_rs + col * c_cs;
                *out = beta == (real)0 ? alpha * acc[i][j] : alpha * acc[i][j] + beta * *out;
            }
        }
    }
}

// C_b = sum over s of partial[b, s] + beta * C_b, the slices added in order:
// the second half of a split-K tessera_gemm. One thread per element of C.
extern "C" __global__ void tessera_gemm_reduce(long long m, long long n, long long batch,
    long long splits, const real* partial, real beta, real* c, long long c_rs,
    long long c_cs, long long c_bs) {
    const long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= batch * m * n) return;
    const long long entry = e / (m * n), row = (e / n) % m, col = e % n;
    real sum = 0.0;
    for (long long s = 0; s < splits; ++s) sum += partial[((entry * splits + s) * m + row) * n + col];
    real* out = c + entry * c_bs + row * c_rs + col * c_cs;
    *out = beta == (real)0 ? sum : sum + beta * *out;
}

// The tanh form of GELU (jax.nn.gelu's default), as the CPU backbone.
__device__ inline real tessera_gelu_tanh(real z) {
    return tanh((real)0.7978845608028654 * (z + (real)0.044715 * z * z * z));
}

// out[i] = gelu(z[i]).
extern "C" __global__ void tessera_gelu(long long len, const real* z, real* out) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= len) return;
    const real v = z[i];
    out[i] = (real)0.5 * v * ((real)1 + tessera_gelu_tanh(v));
}

// g[i] *= gelu'(z[i]): the backward pass through an activation.
extern "C" __global__ void tessera_gelu_backward(long long len, const real* z, real* g) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= len) return;
    const real v = z[i], th = tessera_gelu_tanh(v);
    const real half = (real)0.5, one = (real)1;
    const real slope = half * (one + th)
        + half * v * (one - th * th) * (real)0.7978845608028654 * (one + (real)(3.0 * 0.044715) * v * v);
    g[i] *= slope;
}

// out[r, c] = bias[c] for a [rows, cols] array: a linear layer's bias, before
// the product adds onto it.
extern "C" __global__ void tessera_fill_rows(long long rows, long long cols, const real* bias,
    real* out) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows * cols) return;
    out[i] = bias[i % cols];
}

// out[c] = sum over r of data[r, c] for a [rows, cols] array: a bias gradient.
// One block per column; each thread sums a fixed strided subset of the rows,
// then a tree in shared memory adds the threads' sums, always in one order.
extern "C" __global__ void tessera_column_sums(long long rows, long long cols,
    const real* data, real* out) {
    __shared__ real sums[TESSERA_REDUCE_THREADS];
    const long long col = blockIdx.x;
    const int t = threadIdx.x;
    real s = 0.0;
    for (long long r = t; r < rows; r += TESSERA_REDUCE_THREADS) s += data[r * cols + col];
    sums[t] = s;
    __syncthreads();
    for (int half = TESSERA_REDUCE_THREADS / 2; half > 0; half /= 2) {
        if (t < half) sums[t] += sums[t + half];
        __syncthreads();
    }
    if (t == 0) out[col] = sums[0];
}

// Products and sums that the compiler may not fuse into one rounding (an FMA),
// so that Adam gives the host optimiser's bits: NVRTC contracts a * b + c by
// default; the host build (ISO C++, no -mfma) never does.
#ifdef __CUDACC__
__device__ inline double tessera_mul(double a, double b) { return __dmul_rn(a, b); }
__device__ inline float tessera_mul(float a, float b) { return __fmul_rn(a, b); }
__device__ inline double tessera_add(double a, double b) { return __dadd_rn(a, b); }
__device__ inline float tessera_add(float a, float b) { return __fadd_rn(a, b); }
#else
inline real tessera_mul(real a, real b) { return a * b; }
inline real tessera_add(real a, real b) { return a + b; }
#endif

// One Adam update (Kingma & Ba 2015, in optax's form: bias-corrected moments,
// eps added to the square root) of len parameters p with gradient g and
// moments m, v, in place. The gradient is first scaled by scale (global-norm
// clipping) unless scale is 1. The operations and their order are the host
// optimiser's (solver/src/train/adam.rs), every product rounded on its own.
extern "C" __global__ void tessera_adam(long long len, real* p, const real* g, real* m,
    real* v, real scale, real beta1, real one_minus_beta1, real beta2, real one_minus_beta2,
    real unbias1, real unbias2, real eps, real lr) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= len) return;
    const real zero = (real)0;
    real gi = g[i];
    if (scale != (real)1) gi = tessera_add(tessera_mul(gi, scale), zero);
    const real mi = tessera_add(tessera_add(tessera_mul(m[i], beta1), zero),
        tessera_add(tessera_mul(gi, one_minus_beta1), zero));
    const real vi = tessera_add(tessera_add(tessera_mul(v[i], beta2), zero),
        tessera_add(tessera_mul(tessera_mul(gi, gi), one_minus_beta2), zero));
    const real m_hat = tessera_add(tessera_mul(mi, unbias1), zero);
    const real denom = tessera_add(tessera_mul(sqrt(tessera_add(tessera_mul(vi, unbias2), zero)),
        (real)1), eps);
    p[i] -= tessera_add(tessera_mul(m_hat / denom, lr), zero);
    m[i] = mi;
    v[i] = vi;
}

// out[b] = sum of x[i]^2 over block b's per_block elements of x[0..len): the
// partial sums of a squared norm, accumulated in double whatever the
// precision, each block's in one fixed order (a strided sum per thread, then
// a tree), and stored in the arrays' precision (a float32 block sum keeps
// float32's relative precision, the gradient's own); the host adds the
// blocks' sums in order.
extern "C" __global__ void tessera_squares(long long len, long long per_block, const real* x,
    real* out) {
    __shared__ double sums[TESSERA_REDUCE_THREADS];
    const long long start = (long long)blockIdx.x * per_block;
    const long long end = start + per_block < len ? start + per_block : len;
    const int t = threadIdx.x;
    double s = 0.0;
    for (long long i = start + t; i < end; i += TESSERA_REDUCE_THREADS) {
        const double xi = (double)x[i];
        s += xi * xi;
    }
    sums[t] = s;
    __syncthreads();
    for (int half = TESSERA_REDUCE_THREADS / 2; half > 0; half /= 2) {
        if (t < half) sums[t] += sums[t + half];
        __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = (real)sums[0];
}
