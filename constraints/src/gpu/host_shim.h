// Runs CUDA kernels on the host for tests (`tessera_constraints::gpu::HOST_SHIM`):
// each block thread is a fiber (its own stack, `ucontext`) on the launching
// OS thread, `__syncthreads` hands control to the next fiber of the block,
// `__shared__` variables are statics (one block runs at a time), and
// `threadIdx`/`blockIdx` are set before each fiber resumes. Enough for
// kernels written with static shared memory, barriers and loops over
// threadIdx.x / blockDim.x (no warp intrinsics, no atomics). Fibers rather
// than OS threads: a barrier is then two context switches, not a wake-up of
// every thread of the block, which on a two-core machine cost far more than
// the kernels' arithmetic. Launches must not overlap (the statics are
// shared): the callers serialise them.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <utility>
#include <vector>

struct tessera_dim3 {
    unsigned x, y, z;
};
static tessera_dim3 threadIdx, blockIdx, blockDim, gridDim;

#define __global__
#define __device__
#define __shared__ static

// One block thread: its saved context, its stack (mapped once, kept
// between launches) and whether its kernel call has returned.
struct tessera_fiber {
    ucontext_t context;
    char* stack;
    bool done;
};
static const size_t tessera_stack_bytes = 256 * 1024;
static std::vector<tessera_fiber> tessera_fibers;
static ucontext_t tessera_scheduler;
static unsigned tessera_running;
static void (*tessera_body)(void*);
static void* tessera_body_arg;

static inline void __syncthreads() {
    swapcontext(&tessera_fibers[tessera_running].context, &tessera_scheduler);
}

static void tessera_fiber_main() {
    tessera_body(tessera_body_arg);
    tessera_fibers[tessera_running].done = true;
}  // returns to the scheduler through `uc_link`

// Runs `body(arg)` as every thread of every block. The blocks run last to
// first: a GPU promises no order, and a kernel whose result depends on its
// blocks running in index order (a block reading what a lower one wrote in
// the same launch) would pass on the host in index order and fail on a GPU.
// In a block, the threads run in turn up to their next barrier; when a round
// ends with some threads returned and others at a barrier, the kernel calls
// `__syncthreads` in divergent code (undefined on a GPU): the launch aborts
// saying so.
static void tessera_run_blocks(unsigned blocks, unsigned threads, void (*body)(void*), void* arg) {
    gridDim = {blocks, 1, 1};
    blockDim = {threads, 1, 1};
    tessera_body = body;
    tessera_body_arg = arg;
    while (tessera_fibers.size() < threads) {
        // Below each stack an inaccessible page: a kernel that overflows
        // its stack faults instead of writing over its neighbour's.
        const size_t guard = 4096;
        void* region = mmap(nullptr, guard + tessera_stack_bytes, PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (region == MAP_FAILED || mprotect(region, guard, PROT_NONE) != 0) {
            fprintf(stderr, "host shim: no memory for a block thread's stack\n");
            abort();
        }
        tessera_fibers.push_back({ucontext_t{}, static_cast<char*>(region) + guard, false});
    }
    for (unsigned b = blocks; b-- > 0;) {
        blockIdx = {b, 0, 0};
        for (unsigned t = 0; t < threads; ++t) {
            tessera_fiber& f = tessera_fibers[t];
            getcontext(&f.context);
            f.context.uc_stack.ss_sp = f.stack;
            f.context.uc_stack.ss_size = tessera_stack_bytes;
            f.context.uc_link = &tessera_scheduler;
            makecontext(&f.context, tessera_fiber_main, 0);
            f.done = false;
        }
        for (;;) {
            unsigned returned = 0;
            for (unsigned t = 0; t < threads; ++t) {
                tessera_fiber& f = tessera_fibers[t];
                if (f.done) continue;
                tessera_running = t;
                threadIdx = {t, 0, 0};
                swapcontext(&tessera_scheduler, &f.context);
                returned += f.done;
            }
            if (returned == threads) break;
            if (returned > 0) {
                fprintf(stderr,
                    "host shim: in block %u, %u of %u threads returned while the others "
                    "wait at __syncthreads\n",
                    b, returned, threads);
                abort();
            }
        }
    }
}

// kernel<<<blocks, threads>>>(args...).
template <typename... Params, typename... Args>
void tessera_launch(unsigned blocks, unsigned threads, void (*kernel)(Params...), Args... args) {
    auto call = [&] { kernel(args...); };
    using Call = decltype(call);
    tessera_run_blocks(blocks, threads, [](void* c) { (*static_cast<Call*>(c))(); }, &call);
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
