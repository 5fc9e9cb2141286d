// Benchmark: forward passes and vector-Jacobian products per second of an MLP policy with hidden
// layers 64 x 64, input size 20 and 6 actions (np = 5894), and of an rnn with 64 units on the same
// sizes; one thread. Prints one line per policy and operation. Then the BLAS-oversubscription
// check: forward passes of a 128 x 128 MLP on two worker threads, once on raw POSIX threads with
// OpenBLAS left at its own thread count and once through dso_parallel_for, which holds OpenBLAS to
// one thread inside the region; prints both rates and their ratio.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/parallel.h"
#include "mujoco/policy.h"

static double now(void) {
  struct timespec ts;
  timespec_get(&ts, TIME_UTC);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// runs op until at least 0.5 s have passed; returns calls per second
static double rate(int op, const dsoPolicy* p, dsoPolicyWork* w, const double* s, double* h,
                   const double* th, double* a, double* g, const double* lam) {
  long n = 0, batch = 1000;
  double t0 = now(), t = t0;
  while (t - t0 < 0.5) {
    for (long i = 0; i < batch; i++) {
      if (op == 0) {
        dso_policy_forward(a, NULL, p, w, s, h, th);
      } else {
        dso_policy_vjp(NULL, NULL, g, p, w, s, h, th, lam, h);
      }
    }
    n += batch;
    t = now();
  }
  return (double)n / (t - t0);
}

enum { NIN = 20, NU = 6, NWORK = 2, NCALL = 20000 };

// one worker's share of the oversubscription check: NCALL forward passes on its own work
typedef struct {
  const dsoPolicy* p;
  dsoPolicyWork* w[NWORK];
  const double* th;
} dsoBenchShared;

static void forward_block(void* ctx, int item, int thread) {
  dsoBenchShared* b = (dsoBenchShared*)ctx;
  double s[NIN], a[NU];
  for (int j = 0; j < NIN; j++) s[j] = 0.01 * (j + item);
  for (int i = 0; i < NCALL; i++) {
    s[i % NIN] += 1e-6;
    dso_policy_forward(a, NULL, b->p, b->w[thread], s, NULL, b->th);
  }
}

typedef struct {
  dsoBenchShared* b;
  int thread;
} dsoBenchRaw;

static void* raw_main(void* arg) {
  dsoBenchRaw* r = (dsoBenchRaw*)arg;
  forward_block(r->b, r->thread, r->thread);
  return NULL;
}

// forward passes per second of the 128 x 128 MLP on NWORK threads, raw (OpenBLAS as it is) or
// through dso_parallel_for
static int oversubscription(void) {
  dsoPolicySettings set;
  dso_policy_settings_default(&set);
  set.kind = DSO_POLICY_MLP;
  set.nhidden = 2;
  set.hidden[0] = set.hidden[1] = 128;
  dsoError err = {0};
  dsoPolicy* p = dso_policy_create(&set, NIN, NU, &err);
  if (!p) {
    fprintf(stderr, "bench_policy: %s\n", err.msg);
    return 1;
  }
  dsoBenchShared b = {p, {NULL, NULL}, NULL};
  double* th = calloc((size_t)dso_policy_np(p), sizeof(double));
  int ok = th != NULL;
  for (int t = 0; t < NWORK; t++) {
    b.w[t] = dso_policy_work_create(p, &err);
    ok = ok && b.w[t];
  }
  if (!ok) {
    fprintf(stderr, "bench_policy: out of memory\n");
    return 1;
  }
  dso_policy_init(th, p);
  b.th = th;
  int blas = dso_parallel_blas_threads();
  double t0 = now();
  pthread_t tid[NWORK];
  dsoBenchRaw raw[NWORK];
  for (int t = 0; t < NWORK; t++) {
    raw[t].b = &b;
    raw[t].thread = t;
    pthread_create(&tid[t], NULL, raw_main, &raw[t]);
  }
  for (int t = 0; t < NWORK; t++) {
    pthread_join(tid[t], NULL);
  }
  double t1 = now();
  dso_parallel_for(NWORK, NWORK, forward_block, &b);
  double t2 = now();
  double r0 = NWORK * NCALL / (t1 - t0), r1 = NWORK * NCALL / (t2 - t1);
  printf("mlp hidden=128x128 on %d threads (OpenBLAS threads outside: %d): raw threads %.0f/s, "
         "dso_parallel_for (OpenBLAS 1 thread inside) %.0f/s, ratio %.2f\n", NWORK, blas, r0, r1,
         r1 / r0);
  for (int t = 0; t < NWORK; t++) {
    dso_policy_work_free(b.w[t]);
  }
  free(th);
  dso_policy_free(p);
  return 0;
}

int main(void) {
  dsoPolicySettings set[2];
  dso_policy_settings_default(&set[0]);
  set[0].kind = DSO_POLICY_MLP;
  set[0].nhidden = 2;
  set[0].hidden[0] = set[0].hidden[1] = 64;
  dso_policy_settings_default(&set[1]);
  set[1].kind = DSO_POLICY_RNN;
  set[1].units = 64;
  for (int k = 0; k < 2; k++) {
    dsoError err = {0};
    dsoPolicy* p = dso_policy_create(&set[k], NIN, NU, &err);
    dsoPolicyWork* w = p ? dso_policy_work_create(p, &err) : NULL;
    if (!w) {
      fprintf(stderr, "bench_policy: %s\n", err.msg);
      dso_policy_free(p);
      return 1;
    }
    int np = dso_policy_np(p);
    double* th = calloc((size_t)np, sizeof(double));
    double* g = calloc((size_t)np, sizeof(double));
    double s[NIN], a[NU], lam[NU], h[64];
    for (int j = 0; j < NIN; j++) s[j] = 0.1 * (j % 7) - 0.3;
    for (int i = 0; i < NU; i++) lam[i] = 1.0 - 0.3 * i;
    for (int i = 0; i < 64; i++) h[i] = 0.01 * (i % 9);
    dso_policy_init(th, p);
    double f = rate(0, p, w, s, h, th, a, g, lam);
    double v = rate(1, p, w, s, h, th, a, g, lam);
    printf("%-4s nin=%d nu=%d %s np=%d: forward %.0f/s (%.2f us), vjp %.0f/s (%.2f us)\n",
           dso_policy_kind_name(set[k].kind), NIN, NU, k ? "units=64" : "hidden=64x64", np, f,
           1e6 / f, v, 1e6 / v);
    free(th);
    free(g);
    dso_policy_work_free(w);
    dso_policy_free(p);
  }
  return oversubscription();
}
