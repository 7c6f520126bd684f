// Runs CUDA kernels on the host for tests (`tessera_constraints::gpu::HOST_SHIM`):
// each block thread is an OS thread, `__syncthreads` is a barrier across
// them, `__shared__` variables are statics (one block runs at a time), and
// `threadIdx`/`blockIdx` are thread-local. Enough for
// kernels written with static shared memory, barriers and loops over
// threadIdx.x / blockDim.x (no warp intrinsics, no atomics).
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <thread>
#include <utility>
#include <vector>

struct tessera_dim3 {
    unsigned x, y, z;
};
static thread_local tessera_dim3 threadIdx, blockIdx;
static tessera_dim3 blockDim, gridDim;
static pthread_barrier_t tessera_barrier;

#define __global__
#define __device__
#define __shared__ static
static inline void __syncthreads() { pthread_barrier_wait(&tessera_barrier); }

// kernel<<<blocks, threads>>>(args...): every block thread runs the blocks in
// turn, with a barrier between blocks so that a block's shared statics are
// not overwritten while others still read them. The blocks run last to
// first: a GPU promises no order, and a kernel whose result depends on its
// blocks running in index order (a block reading what a lower one wrote in
// the same launch) would pass on the host in index order and fail on a GPU.
template <typename... Params, typename... Args>
void tessera_launch(unsigned blocks, unsigned threads, void (*kernel)(Params...), Args... args) {
    gridDim = {blocks, 1, 1};
    blockDim = {threads, 1, 1};
    pthread_barrier_init(&tessera_barrier, nullptr, threads);
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t)
        pool.emplace_back([=] {
            threadIdx = {t, 0, 0};
            for (unsigned b = blocks; b-- > 0;) {
                blockIdx = {b, 0, 0};
                kernel(args...);
                pthread_barrier_wait(&tessera_barrier);
            }
        });
    for (auto& th : pool) th.join();
    pthread_barrier_destroy(&tessera_barrier);
}

template <typename... Params, size_t... I>
void tessera_launch_unpacked(unsigned blocks, unsigned threads, void (*kernel)(Params...),
    void** params, std::index_sequence<I...>) {
    tessera_launch(blocks, threads, kernel, *static_cast<Params*>(params[I])...);
}

// The same launch with the arguments as the driver's cuLaunchKernel takes
// them: params[i] points at the i-th argument's value.
template <typename... Params>
void tessera_launch_params(unsigned blocks, unsigned threads, void (*kernel)(Params...),
    void** params) {
    tessera_launch_unpacked(blocks, threads, kernel, params, std::index_sequence_for<Params...>{});
}
