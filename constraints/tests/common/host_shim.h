// Runs CUDA kernels on the host for tests: each block's threads are OS threads,
// `__syncthreads` is a barrier across them, `__shared__` variables are statics
// (one block runs at a time), and `threadIdx` is thread-local. Enough for
// kernels written with static shared memory, barriers and loops over
// threadIdx.x / blockDim.x (no warp intrinsics, no atomics).
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <thread>
#include <vector>

struct tessera_dim3 {
    unsigned x, y, z;
};
static thread_local tessera_dim3 threadIdx;
static tessera_dim3 blockIdx, blockDim, gridDim;
static pthread_barrier_t tessera_barrier;

#define __global__
#define __device__
#define __shared__ static
static inline void __syncthreads() { pthread_barrier_wait(&tessera_barrier); }

// kernel<<<blocks, threads>>>(args...), blocks one after another.
template <typename... Params, typename... Args>
void tessera_launch(unsigned blocks, unsigned threads, void (*kernel)(Params...), Args... args) {
    gridDim = {blocks, 1, 1};
    blockDim = {threads, 1, 1};
    pthread_barrier_init(&tessera_barrier, nullptr, threads);
    for (unsigned b = 0; b < blocks; ++b) {
        blockIdx = {b, 0, 0};
        std::vector<std::thread> pool;
        for (unsigned t = 0; t < threads; ++t)
            pool.emplace_back([=] {
                threadIdx = {t, 0, 0};
                kernel(args...);
            });
        for (auto& th : pool) th.join();
    }
    pthread_barrier_destroy(&tessera_barrier);
}
