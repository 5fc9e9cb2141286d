// Benchmark: forward passes and vector-Jacobian products per second of an MLP policy with hidden
// layers 64 x 64, input size 20 and 6 actions (np = 5894), and of an rnn with 64 units on the same
// sizes; one thread. Prints one line per policy and operation.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "policy.h"

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

int main(void) {
  enum { NIN = 20, NU = 6 };
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
  return 0;
}
