// Blocked parallel for over POSIX threads, with OpenBLAS held to one thread inside the region.
#include "core/parallel.h"

#include <pthread.h>

// OpenBLAS's thread controls (cblas.h of OpenBLAS declares them; declared here so that the
// module does not depend on which cblas.h the include path finds first)
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

typedef struct {
  dsoParallelFn fn;
  void* ctx;
  int thread;
  int begin, end;
} dsoParallelBlock;

static void* block_main(void* arg) {
  dsoParallelBlock* b = (dsoParallelBlock*)arg;
  for (int i = b->begin; i < b->end; i++) {
    b->fn(b->ctx, i, b->thread);
  }
  return NULL;
}

int dso_parallel_blas_threads(void) {
  return openblas_get_num_threads();
}

void dso_parallel_for(int nthread, int nitem, dsoParallelFn fn, void* ctx) {
  int nt = nthread < nitem ? nthread : nitem;
  if (nt > DSO_PARALLEL_MAX_THREADS) {
    nt = DSO_PARALLEL_MAX_THREADS;
  }
  if (nt <= 1) {
    for (int i = 0; i < nitem; i++) {
      fn(ctx, i, 0);
    }
    return;
  }
  int blas = openblas_get_num_threads();
  if (blas > 1) {
    openblas_set_num_threads(1);
  }
  // the descriptors live on the stack (at most DSO_PARALLEL_MAX_THREADS)
  dsoParallelBlock b[DSO_PARALLEL_MAX_THREADS];
  pthread_t tid[DSO_PARALLEL_MAX_THREADS];
  int started[DSO_PARALLEL_MAX_THREADS];
  for (int t = 0; t < nt; t++) {
    b[t].fn = fn;
    b[t].ctx = ctx;
    b[t].thread = t;
    b[t].begin = (int)((long)nitem * t / nt);
    b[t].end = (int)((long)nitem * (t + 1) / nt);
  }
  for (int t = 1; t < nt; t++) {
    started[t] = pthread_create(&tid[t], NULL, block_main, &b[t]) == 0;
    if (!started[t]) {
      block_main(&b[t]);  // no thread available: the caller runs the block, results are the same
    }
  }
  block_main(&b[0]);
  for (int t = 1; t < nt; t++) {
    if (started[t]) {
      pthread_join(tid[t], NULL);
    }
  }
  if (blas > 1) {
    openblas_set_num_threads(blas);
  }
}
