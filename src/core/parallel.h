// The one thread runner of libdso: a blocked parallel for over items, used by rollouts (one item a
// rollout) and by the least-squares fits (one item a thread's share of windows). Results do not
// depend on the thread count as long as fn writes only item-indexed outputs and per-thread work.
//
// BLAS threads: OpenBLAS starts its own thread pool for large enough products; inside dso's
// workers that oversubscribes the cores (two dso threads each asking OpenBLAS for nproc threads
// made a 128x128 MLP rollout several times slower, bench_policy). While a parallel region with
// more than one thread runs, OpenBLAS is set to one thread and restored afterwards. The OpenBLAS
// thread count is process-wide: two parallel regions started at once from different user threads
// may restore it in either order (the count is then still valid, only perhaps not the caller's).
#ifndef DSO_PARALLEL_H
#define DSO_PARALLEL_H

#ifdef __cplusplus
extern "C" {
#endif

// Most threads one parallel region runs on.
#define DSO_PARALLEL_MAX_THREADS 1024

// The body of a parallel for: item in [0, nitem), thread in [0, nthread) the worker running it.
typedef void (*dsoParallelFn)(void* ctx, int item, int thread);

// Runs fn(ctx, i, t) for every i in [0, nitem): thread t runs the consecutive block
// [nitem*t/nt, nitem*(t+1)/nt) in order, nt = min(nthread, nitem) clamped to
// [1, DSO_PARALLEL_MAX_THREADS]; the calling thread is thread 0. A thread that cannot be started
// has its block run by the caller (same results). Returns when every item is done.
void dso_parallel_for(int nthread, int nitem, dsoParallelFn fn, void* ctx);

// The OpenBLAS thread count now (1 when OpenBLAS is not the BLAS in use).
int dso_parallel_blas_threads(void);

#ifdef __cplusplus
}
#endif

#endif  // DSO_PARALLEL_H
