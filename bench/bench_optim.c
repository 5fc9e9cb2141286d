// Benchmark: iterations and sampled transitions each optimizer (SGD, Adam, natural gradient, chain
// iteration with Newton steps on the surrogate) needs to bring J within 1% of the exact optimum on
// finite chains: an L-MDP (optimum by Lemma 4, eq. 85) and an S-MDP (optimum by value iteration).
// Prints one line per optimizer and problem; exit status 1 if one does not get there.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "dso_internal.h"
#include "verify/lmdp.h"
#include "verify/tabular.h"
#include "verify/verify.h"

typedef struct {
  const dsoTabular* tab;
  dsoTabWork* w;
  double Jstar, J;
  long samples;
} dsoMon;

static int monitor(void* c, long it, const double* th, const dsoRollout* ro) {
  dsoMon* m = (dsoMon*)c;
  dsoError err = {0};
  m->samples += ro->nsamples;
  dso_tabular_exact(&m->J, NULL, NULL, NULL, m->tab, m->w, th, &err);
  return m->J - m->Jstar <= 0.01 * fabs(m->Jstar);
}

static int bench(const char* problem, const dsoTabular* tab, double Jstar, dsoOptKind kind,
                 double lr) {
  static const char* kNames[4] = {"sgd", "adam", "natural", "newton"};
  dsoError err = {0};
  int n = dso_tabular_ntheta(tab), ns = dso_tabular_ns(tab);
  dsoChain ch;
  dso_tabular_chain(&ch, tab);
  dsoRolloutSettings rs;
  dso_rollout_settings_default(&rs);
  rs.gamma = dso_tabular_gamma(tab);
  rs.horizon = 400;
  rs.nthread = 2;
  dsoRollout* ro = NULL;
  dsoGrad* gr = NULL;
  dsoBaseline* bl = NULL;
  dsoOptim* o = NULL;
  dsoOnehot oh = {ns, 0};
  dsoOptimSettings os;
  dso_optim_settings_default(&os);
  os.kind = kind;
  os.lr = lr;
  double* th = calloc(n, sizeof(double));
  dsoMon m = {tab, dso_tabular_work_create(tab), Jstar, 0, 0};
  long iters = 0;
  dsoStatus st = dso_rollout_create(&ro, &ch, &rs, 200, &err);
  if (!st) st = dso_grad_create(&gr, ro, 1, ns, &err);
  if (!st) st = dso_baseline_create(&bl, ns, dso_baseline_onehot, &oh, NULL, ro, &err);
  if (!st) st = dso_optim_create(&o, n, &os, &err);
  clock_t c0 = clock();
  if (!st) st = dso_optim_run(&iters, o, th, ro, gr, bl, 5000, monitor, &m, &err);
  double secs = (double)(clock() - c0) / CLOCKS_PER_SEC;
  int ok = !st && m.J - Jstar <= 0.01 * fabs(Jstar);
  printf("%-6s %-8s lr=%-4g iterations=%5ld samples=%9ld  J=%.5f  J*=%.5f  gap=%.3f%%  %.2fs  %s\n",
         problem, kNames[kind], lr, iters, m.samples, m.J, Jstar, 100 * (m.J - Jstar) / fabs(Jstar),
         secs, ok ? "ok" : (st ? err.msg : "not reached"));
  free(th);
  dso_tabular_work_free(m.w);
  dso_optim_free(o);
  dso_baseline_free(bl);
  dso_grad_free(gr);
  dso_rollout_free(ro);
  return ok;
}

int main(void) {
  int ok = 1;
  dsoError err = {0};
  dsoRng rng;
  enum { NS = 6, NA = 3 };
  printf("batch: 200 rollouts per iteration, gamma = 0.9 (termination), baseline b(x_t), 2 threads\n");
  // L-MDP with tabular energy (eq. 89, one-hot features): the optimum is in the family (Lemma 4)
  double pbar[NS * NS], r[NS], onehot[NS * NS], z[NS], Jstar;
  dso_rng_seed(&rng, 3, 0, 0);
  for (int x = 0; x < NS; x++) {
    double t = 0;
    for (int y = 0; y < NS; y++) t += (pbar[x * NS + y] = exp(dso_rng_normal(&rng)));
    for (int y = 0; y < NS; y++) pbar[x * NS + y] /= t;
    r[x] = 2 * dso_rng_uniform(&rng);
  }
  for (int i = 0; i < NS * NS; i++) onehot[i] = i % (NS + 1) == 0;
  dsoLmdp m = {NS, pbar, r, NULL, NULL, DSO_EPISODIC, 0.9};
  dsoTabular* tab = NULL;
  if (dso_lmdp_solve(z, &Jstar, &m, &err) || dso_lmdp_create_chain(&tab, &m, onehot, NS, &err)) {
    fprintf(stderr, "bench_optim: %s\n", err.msg);
    return 1;
  }
  const double lrL[4] = {0.5, 0.1, 0.3, 0.1}, lrS[4] = {2, 0.2, 1, 0.5};
  for (int k = 0; k < 4; k++) ok &= bench("L-MDP", tab, Jstar, (dsoOptKind)k, lrL[k]);
  dso_tabular_free(tab);
  // S-MDP with a tabular softmax policy: the optimum is deterministic (value iteration)
  double p[NS * NA * NS], rr[NS * NA], *f = calloc(NS * NA * NS * NA, sizeof(double));
  dso_rng_seed(&rng, 4, 0, 0);
  for (int i = 0; i < NS * NA; i++) {
    double t = 0;
    for (int y = 0; y < NS; y++) t += (p[i * NS + y] = exp(1.5 * dso_rng_normal(&rng)));
    for (int y = 0; y < NS; y++) p[i * NS + y] /= t;
    rr[i] = 2 * dso_rng_uniform(&rng);
    f[i * NS * NA + i] = 1;
  }
  dsoGmdpSpec gs = {NS, NA, NS * NA, p, rr, f, 0, 0, NULL};
  dsoTabSetup su = {DSO_EPISODIC, 0.9, 0, NULL, NULL};
  if (dso_tabular_create_gmdp(&tab, &gs, &su, &err) ||
      dso_tabular_gmdp_optimum(&Jstar, tab, 1e-13, &err)) {
    fprintf(stderr, "bench_optim: %s\n", err.msg);
    free(f);
    return 1;
  }
  for (int k = 0; k < 4; k++) ok &= bench("S-MDP", tab, Jstar, (dsoOptKind)k, lrS[k]);
  dso_tabular_free(tab);
  free(f);
  return ok ? 0 : 1;
}
