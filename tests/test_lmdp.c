// Tests of the L-MDP module (lmdp.h): Lemma 4 (eqs. 84-85), the average-cost eigenfunction,
// Z-learning (eqs. 92, 94), the L-MDP policy gradient (eq. 54) and the natural-gradient identity.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "chain/grad.h"
#include "verify/lmdp.h"
#include "core/rng.h"

enum { NS = 5 };

static void problem(double* pbar, double* r, uint64_t seed) {
  dsoRng rng;
  dso_rng_seed(&rng, seed, 0, 0);
  for (int x = 0; x < NS; x++) {
    double s = 0;
    for (int y = 0; y < NS; y++) s += (pbar[x * NS + y] = exp(dso_rng_normal(&rng)));
    for (int y = 0; y < NS; y++) pbar[x * NS + y] /= s;
    r[x] = 2 * dso_rng_uniform(&rng);
  }
}

static void test_lemma4_optimum(void** s) {
  double pbar[NS * NS], r[NS], z[NS], onehot[NS * NS], th[NS], g[NS], Jstar, J;
  problem(pbar, r, 1);
  for (int i = 0; i < NS * NS; i++) onehot[i] = i % (NS + 1) == 0;
  dsoError err = {0};
  for (int c = 0; c < 2; c++) {
    dsoLmdp m = {NS, pbar, r, NULL, NULL, c ? DSO_AVERAGE : DSO_EPISODIC, 0.8};
    assert_int_equal(dso_lmdp_solve(z, &Jstar, &m, &err), DSO_OK);
    dsoTabular* tab;
    assert_int_equal(dso_lmdp_create_chain(&tab, &m, onehot, NS, &err), DSO_OK);
    dsoTabWork* w = dso_tabular_work_create(tab);
    for (int x = 0; x < NS; x++) th[x] = -log(z[x]);
    assert_int_equal(dso_tabular_exact(&J, NULL, NULL, g, tab, w, th, &err), DSO_OK);
    assert_true(fabs(J - Jstar) < 1e-10 * fabs(Jstar));
    for (int k = 0; k < NS; k++) assert_true(fabs(g[k]) < 1e-10);
    // any other chain of the family costs more
    th[0] += 0.3;
    assert_int_equal(dso_tabular_exact(&J, NULL, NULL, NULL, tab, w, th, &err), DSO_OK);
    assert_true(J > Jstar);
    dso_tabular_work_free(w);
    dso_tabular_free(tab);
  }
}

static void test_zlearning(void** s) {
  double pbar[NS * NS], r[NS], z[NS], zl[NS];
  int term[NS] = {0, 0, 0, 0, 1};
  problem(pbar, r, 2);
  dsoLmdp m = {NS, pbar, r, term, NULL, DSO_EPISODIC, 1.0};
  dsoError err = {0};
  assert_int_equal(dso_lmdp_solve(z, NULL, &m, &err), DSO_OK);
  // greedy (eq. 94) is in-place value iteration: it reaches Z to round-off
  assert_int_equal(dso_lmdp_zlearn(zl, &m, DSO_ZLEARN_GREEDY, 100000, 0, 50, 3, &err), DSO_OK);
  for (int x = 0; x < NS; x++) assert_true(fabs(zl[x] - z[x]) < 1e-10 * z[x]);
  // the sampled flavours converge like 1/sqrt(visits): within 5% after 3e6 steps
  for (int mode = 0; mode < 3; mode += 2) {
    assert_int_equal(dso_lmdp_zlearn(zl, &m, (dsoZlearnMode)mode, 3000000, 0, 50, 3, &err), DSO_OK);
    for (int x = 0; x < NS; x++) assert_true(fabs(zl[x] - z[x]) < 0.05 * z[x]);
  }
  dsoLmdp avg = m;
  avg.setting = DSO_AVERAGE;
  avg.terminal = NULL;
  assert_int_equal(dso_lmdp_zlearn(zl, &avg, DSO_ZLEARN_BASELINE, 10, 0, 50, 3, &err), DSO_ERR_INPUT);
}

static void test_policy_gradient_and_natural_identity(void** s) {
  enum { N = 2 };
  double pbar[NS * NS], r[NS], feat[NS * N], th[N] = {0.4, -0.8}, ge[N], gp[N], F[N * N], d[N];
  double om[N], work[N * N];
  problem(pbar, r, 4);
  dsoRng rng;
  dso_rng_seed(&rng, 4, 1, 0);
  for (int i = 0; i < NS * N; i++) feat[i] = dso_rng_normal(&rng);
  dsoLmdp m = {NS, pbar, r, NULL, NULL, DSO_AVERAGE, 1.0};
  dsoError err = {0};
  dsoTabular* tab;
  assert_int_equal(dso_lmdp_create_chain(&tab, &m, feat, N, &err), DSO_OK);
  dsoTabWork* w = dso_tabular_work_create(tab);
  assert_int_equal(dso_tabular_exact(NULL, NULL, NULL, ge, tab, w, th, &err), DSO_OK);
  assert_int_equal(dso_lmdp_policy_gradient(gp, &m, tab, w, th, &err), DSO_OK);
  for (int k = 0; k < N; k++) assert_true(fabs(gp[k] - ge[k]) < 1e-12);  // eq. 54 = Theorem 2
  assert_int_equal(dso_tabular_fisher(F, tab, w, th, &err), DSO_OK);
  assert_int_equal(dso_natural_direction(d, F, ge, N, 0, work, &err), DSO_OK);
  assert_int_equal(dso_lmdp_compatible_omega(om, &m, feat, tab, w, th, &err), DSO_OK);
  for (int k = 0; k < N; k++) assert_true(fabs(d[k] - (th[k] - om[k])) < 1e-10);
  dso_tabular_work_free(w);
  dso_tabular_free(tab);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lemma4_optimum),
      cmocka_unit_test(test_zlearning),
      cmocka_unit_test(test_policy_gradient_and_natural_identity),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
