// Tests of the optimizers (optim.h): SGD, Adam, natural gradient and chain iteration (Newton on the
// surrogate) each reach the exact optimum within 1% on finite chains: an L-MDP (optimum by Lemma 4)
// and an S-MDP (optimum by value iteration). Fixed seeds; the iteration cap is a failure.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "verify/lmdp.h"
#include "chain/optim.h"
#include "core/rng.h"

typedef struct {
  const dsoTabular* tab;
  dsoTabWork* w;
  double Jstar, J;
} dsoMon;

static int monitor(void* c, long it, const double* th, const dsoRollout* ro) {
  dsoMon* m = (dsoMon*)c;
  dsoError err = {0};
  dso_tabular_exact(&m->J, NULL, NULL, NULL, m->tab, m->w, th, &err);
  return m->J - m->Jstar <= 0.01 * fabs(m->Jstar);
}

static void optimize(const dsoTabular* tab, double Jstar, dsoOptKind kind, double lr) {
  dsoError err = {0};
  int n = dso_tabular_ntheta(tab), ns = dso_tabular_ns(tab);
  dsoChain ch;
  dso_tabular_chain(&ch, tab);
  dsoRolloutSettings rs;
  dso_rollout_settings_default(&rs);
  rs.gamma = dso_tabular_gamma(tab);
  rs.horizon = 400;
  rs.nthread = 2;
  dsoRollout* ro;
  assert_int_equal(dso_rollout_create(&ro, &ch, &rs, 200, &err), DSO_OK);
  dsoGrad* gr;
  assert_int_equal(dso_grad_create(&gr, ro, 1, ns, &err), DSO_OK);
  dsoOnehot oh = {ns, 0};
  dsoBaseline* bl;
  assert_int_equal(dso_baseline_create(&bl, ns, dso_baseline_onehot, &oh, NULL, ro, &err), DSO_OK);
  dsoOptimSettings os;
  dso_optim_settings_default(&os);
  os.kind = kind;
  os.lr = lr;
  dsoOptim* o;
  assert_int_equal(dso_optim_create(&o, n, &os, &err), DSO_OK);
  double* th = calloc(n, sizeof(double));
  dsoMon m = {tab, dso_tabular_work_create(tab), Jstar, 0};
  monitor(&m, 0, th, ro);
  assert_true(m.J - Jstar > 0.01 * fabs(Jstar));  // the start is not already within 1%
  long iters;
  assert_int_equal(dso_optim_run(&iters, o, th, ro, gr, bl, 2000, monitor, &m, &err), DSO_OK);
  assert_true(m.J - Jstar <= 0.01 * fabs(Jstar));
  assert_true(iters < 2000);
  free(th);
  dso_tabular_work_free(m.w);
  dso_optim_free(o);
  dso_baseline_free(bl);
  dso_grad_free(gr);
  dso_rollout_free(ro);
}

static const double kLrL[4] = {0.5, 0.1, 0.3, 0.1};
static const double kLrS[4] = {2, 0.2, 1, 0.5};

static void test_lmdp_all_optimizers(void** s) {
  enum { NS = 6 };
  double pbar[NS * NS], r[NS], onehot[NS * NS], z[NS], Jstar;
  dsoRng rng;
  dso_rng_seed(&rng, 3, 0, 0);
  for (int x = 0; x < NS; x++) {
    double t = 0;
    for (int y = 0; y < NS; y++) t += (pbar[x * NS + y] = exp(dso_rng_normal(&rng)));
    for (int y = 0; y < NS; y++) pbar[x * NS + y] /= t;
    r[x] = 2 * dso_rng_uniform(&rng);
  }
  for (int i = 0; i < NS * NS; i++) onehot[i] = i % (NS + 1) == 0;
  dsoLmdp m = {NS, pbar, r, NULL, NULL, DSO_EPISODIC, 0.9};
  dsoError err = {0};
  assert_int_equal(dso_lmdp_solve(z, &Jstar, &m, &err), DSO_OK);
  dsoTabular* tab;
  assert_int_equal(dso_lmdp_create_chain(&tab, &m, onehot, NS, &err), DSO_OK);
  for (int k = 0; k < 4; k++) optimize(tab, Jstar, (dsoOptKind)k, kLrL[k]);
  dso_tabular_free(tab);
}

static void test_smdp_all_optimizers(void** s) {
  enum { NS = 6, NA = 3 };
  double p[NS * NA * NS], r[NS * NA], f[NS * NA * NS * NA] = {0}, Jstar;
  dsoRng rng;
  dso_rng_seed(&rng, 4, 0, 0);
  for (int i = 0; i < NS * NA; i++) {
    double t = 0;
    for (int y = 0; y < NS; y++) t += (p[i * NS + y] = exp(1.5 * dso_rng_normal(&rng)));
    for (int y = 0; y < NS; y++) p[i * NS + y] /= t;
    r[i] = 2 * dso_rng_uniform(&rng);
    f[i * NS * NA + i] = 1;  // tabular policy: one logit per (x, a)
  }
  dsoGmdpSpec gs = {NS, NA, NS * NA, p, r, f, 0, 0, NULL};
  dsoTabSetup su = {DSO_EPISODIC, 0.9, 0, NULL, NULL};
  dsoError err = {0};
  dsoTabular* tab;
  assert_int_equal(dso_tabular_create_gmdp(&tab, &gs, &su, &err), DSO_OK);
  assert_int_equal(dso_tabular_gmdp_optimum(&Jstar, tab, 1e-13, &err), DSO_OK);
  for (int k = 0; k < 4; k++) optimize(tab, Jstar, (dsoOptKind)k, kLrS[k]);
  dso_tabular_free(tab);
}

// A step whose new θ would not be finite is refused: DSO_ERR_NUMERIC, θ, the Adam moments and the
// step count unchanged, the refusal counted. Adam moves each component by about lr per step, so
// with lr = 1e308 the second step at the latest overflows θ.
static void test_refused_step(void** s) {
  enum { NS = 4, NA = 2 };
  double p[NS * NA * NS], r[NS * NA], f[NS * NA * NS * NA] = {0};
  dsoRng rng;
  dso_rng_seed(&rng, 5, 0, 0);
  for (int i = 0; i < NS * NA; i++) {
    double t = 0;
    for (int y = 0; y < NS; y++) t += (p[i * NS + y] = exp(dso_rng_normal(&rng)));
    for (int y = 0; y < NS; y++) p[i * NS + y] /= t;
    r[i] = 1 + dso_rng_uniform(&rng);
    f[i * NS * NA + i] = 1;
  }
  dsoGmdpSpec gs = {NS, NA, NS * NA, p, r, f, 0, 0, NULL};
  dsoTabSetup su = {DSO_EPISODIC, 0.9, 0, NULL, NULL};
  dsoError err = {0};
  dsoTabular* tab;
  assert_int_equal(dso_tabular_create_gmdp(&tab, &gs, &su, &err), DSO_OK);
  int n = dso_tabular_ntheta(tab);
  dsoChain ch;
  dso_tabular_chain(&ch, tab);
  dsoRolloutSettings rs;
  dso_rollout_settings_default(&rs);
  rs.gamma = 0.9;
  rs.horizon = 100;
  dsoRollout* ro;
  assert_int_equal(dso_rollout_create(&ro, &ch, &rs, 50, &err), DSO_OK);
  dsoGrad* gr;
  assert_int_equal(dso_grad_create(&gr, ro, 0, 0, &err), DSO_OK);
  dsoOptimSettings os;
  dso_optim_settings_default(&os);
  os.lr = 1e308;
  dsoOptim* o;
  assert_int_equal(dso_optim_create(&o, n, &os, &err), DSO_OK);
  double* th = calloc((size_t)n, sizeof(double));
  double* keep = calloc((size_t)n * 3, sizeof(double));
  int refused = 0;
  for (long it = 0; it < 3 && !refused; it++) {
    assert_int_equal(dso_rollout_run(ro, th, (uint64_t)it, &err), DSO_OK);
    assert_int_equal(dso_grad_prepare(gr, ro, NULL, &err), DSO_OK);
    memcpy(keep, th, (size_t)n * sizeof(double));
    memcpy(keep + n, o->m, (size_t)n * sizeof(double));
    memcpy(keep + 2 * n, o->v, (size_t)n * sizeof(double));
    long iter = o->iter;
    dsoError e = {0};
    dsoStatus st = dso_optim_step(o, th, gr, ro, &e);
    if (st == DSO_OK) continue;
    refused = 1;
    assert_int_equal(st, DSO_ERR_NUMERIC);
    assert_non_null(strstr(e.msg, "step refused"));
    assert_memory_equal(th, keep, (size_t)n * sizeof(double));
    assert_memory_equal(o->m, keep + n, (size_t)n * sizeof(double));
    assert_memory_equal(o->v, keep + 2 * n, (size_t)n * sizeof(double));
    assert_int_equal(o->iter, iter);
    assert_int_equal(o->refused, 1);
  }
  assert_true(refused);
  for (int k = 0; k < n; k++) assert_true(isfinite(th[k]));
  free(th);
  free(keep);
  dso_optim_free(o);
  dso_grad_free(gr);
  dso_rollout_free(ro);
  dso_tabular_free(tab);
}

static void test_bad_settings(void** s) {
  dsoOptimSettings os;
  dso_optim_settings_default(&os);
  os.kappa = 0;
  dsoOptim* o = NULL;
  dsoError err = {0};
  assert_int_equal(dso_optim_create(&o, 3, &os, &err), DSO_ERR_INPUT);
  assert_null(o);
  dso_optim_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lmdp_all_optimizers),
      cmocka_unit_test(test_smdp_all_optimizers),
      cmocka_unit_test(test_refused_step),
      cmocka_unit_test(test_bad_settings),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
