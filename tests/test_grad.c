// Tests of the estimators (grad.h, baseline.h): Algorithm 1 with and without baselines against the
// exact gradient (|z| < 4 standard errors, fixed seeds), eq. 67, clipping, the Fisher matrix, Lemma 3.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "chain/grad.h"
#include "verify/tabular.h"

typedef struct {
  dsoTabular* tab;
  dsoTabWork* w;
  dsoRollout* ro;
  dsoGrad* gr;
  dsoBaseline* bl;
  dsoOnehot oh;
} dsoFix;

static void fix_make(dsoFix* f, dsoSetting set, int horizon, int N, int bkind, int nthread) {
  dsoError err = {0};
  memset(f, 0, sizeof(*f));
  dsoTabSetup su = {set, 0.9, set == DSO_TIMEVARYING ? horizon : 0, NULL, NULL};
  assert_int_equal(dso_tabular_create_random(&f->tab, 4, 2, set == DSO_TIMEVARYING ? 2 : 1, &su,
                                             0, 0.6, 5, &err), DSO_OK);
  f->w = dso_tabular_work_create(f->tab);
  dsoChain ch;
  dso_tabular_chain(&ch, f->tab);
  dsoRolloutSettings rs;
  dso_rollout_settings_default(&rs);
  rs.setting = set;
  rs.gamma = 0.9;
  rs.horizon = horizon;
  rs.nthread = nthread;
  rs.seed = 31;
  assert_int_equal(dso_rollout_create(&f->ro, &ch, &rs, N, &err), DSO_OK);
  f->oh.ns = 4;
  f->oh.horizon = set == DSO_TIMEVARYING ? horizon : 0;
  int nfeat = (f->oh.horizon + 1) * 4;
  assert_int_equal(dso_grad_create(&f->gr, f->ro, 1, nfeat, &err), DSO_OK);
  if (bkind >= 0) {
    dsoBaselineSettings bs;
    dso_baseline_settings_default(&bs);
    bs.kind = (dsoBaselineKind)bkind;
    if (bkind == DSO_BASELINE_VALUE) bs.target = DSO_TARGET_TD;
    assert_int_equal(dso_baseline_create(&f->bl, nfeat, dso_baseline_onehot, &f->oh, &bs, f->ro,
                                         &err), DSO_OK);
  }
}

static void fix_free(dsoFix* f) {
  dso_baseline_free(f->bl);
  dso_grad_free(f->gr);
  dso_rollout_free(f->ro);
  dso_tabular_work_free(f->w);
  dso_tabular_free(f->tab);
}

static const double kTheta[2] = {0.3, -0.6};

// batch 1 at θ after fitting the baseline on batch 0 (earlier batches only)
static void fix_sample(dsoFix* f, double* g, double* se) {
  dsoError err = {0};
  if (f->bl) {
    assert_int_equal(dso_rollout_run(f->ro, kTheta, 0, &err), DSO_OK);
    assert_int_equal(dso_baseline_fit(f->bl, f->ro, &err), DSO_OK);
    // TD targets need a fitted V̂: refit once more
    assert_int_equal(dso_baseline_fit(f->bl, f->ro, &err), DSO_OK);
  }
  assert_int_equal(dso_rollout_run(f->ro, kTheta, 1, &err), DSO_OK);
  assert_int_equal(dso_grad_prepare(f->gr, f->ro, f->bl, &err), DSO_OK);
  assert_int_equal(dso_grad_algorithm1(g, se, f->gr, f->ro, &err), DSO_OK);
}

static void check_unbiased(dsoSetting set, int horizon, int N, int bkind) {
  dsoFix f;
  fix_make(&f, set, horizon, N, bkind, 2);
  double g[2], se[2], ge[2];
  dsoError err = {0};
  assert_int_equal(dso_tabular_exact(NULL, NULL, NULL, ge, f.tab, f.w, kTheta, &err), DSO_OK);
  fix_sample(&f, g, se);
  for (int k = 0; k < 2; k++) {
    assert_true(se[k] > 0);
    assert_true(fabs(g[k] - ge[k]) < 4 * se[k]);  // tolerance: 4 standard errors
  }
  fix_free(&f);
}

// dso_baseline_get_state / set_state (checkpoints): a baseline restored into a fresh object
// continues bit-identically, also when older batches are remembered (forget > 0: the normal
// equations travel in the state) and with TD targets (which read the previous ω); a non-finite
// value or a broken count is refused by index
static void test_baseline_state(void** s) {
  (void)s;
  for (int forget = 0; forget < 2; forget++) {
    dsoFix f;
    fix_make(&f, DSO_EPISODIC, 50, 200, -1, 1);
    dsoError err = {0};
    dsoBaselineSettings bs;
    dso_baseline_settings_default(&bs);
    bs.kind = DSO_BASELINE_VALUE;
    bs.target = DSO_TARGET_TD;
    bs.forget = forget ? 0.5 : 0;
    int nfeat = 4;
    dsoBaseline *a = NULL, *b = NULL;
    assert_int_equal(dso_baseline_create(&a, nfeat, dso_baseline_onehot, &f.oh, &bs, f.ro, &err),
                     DSO_OK);
    assert_int_equal(dso_baseline_create(&b, nfeat, dso_baseline_onehot, &f.oh, &bs, f.ro, &err),
                     DSO_OK);
    int ns = dso_baseline_state_size(a);
    assert_int_equal(ns, nfeat + 2 + (forget ? nfeat * nfeat + nfeat : 0));
    double st[64];
    assert_true(ns <= 64);
    for (int k = 0; k < 2; k++) {
      assert_int_equal(dso_rollout_run(f.ro, kTheta, (uint64_t)k, &err), DSO_OK);
      assert_int_equal(dso_baseline_fit(a, f.ro, &err), DSO_OK);
    }
    dso_baseline_get_state(a, st);
    assert_int_equal(dso_baseline_set_state(b, st, 0, &err), DSO_OK);
    assert_int_equal(b->fitted, 2);
    assert_int_equal(dso_rollout_run(f.ro, kTheta, 2, &err), DSO_OK);
    assert_int_equal(dso_baseline_fit(a, f.ro, &err), DSO_OK);
    assert_int_equal(dso_baseline_fit(b, f.ro, &err), DSO_OK);
    assert_memory_equal(a->omega, b->omega, (size_t)nfeat * sizeof(double));
    // refused, naming the index with the caller's offset
    st[nfeat] = 1.5;
    dsoError e1 = {0};
    assert_int_equal(dso_baseline_set_state(b, st, 10, &e1), DSO_ERR_INPUT);
    char want[32];
    snprintf(want, sizeof(want), "state[%d]", 10 + nfeat);
    assert_non_null(strstr(e1.msg, want));
    st[nfeat] = 2;
    st[ns - 1] = NAN;
    dsoError e2 = {0};
    assert_int_equal(dso_baseline_set_state(b, st, 0, &e2), DSO_ERR_INPUT);
    snprintf(want, sizeof(want), "state[%d]", ns - 1);
    assert_non_null(strstr(e2.msg, want));
    assert_int_equal(b->fitted, 3);  // unchanged by the refused states
    dso_baseline_free(a);
    dso_baseline_free(b);
    fix_free(&f);
  }
}

static void test_alg1_episodic_no_baseline(void** s) { check_unbiased(DSO_EPISODIC, 300, 20000, -1); }
static void test_alg1_episodic_state_baseline(void** s) {
  check_unbiased(DSO_EPISODIC, 300, 20000, DSO_BASELINE_STATE);
}
static void test_alg1_episodic_td_value_baseline(void** s) {
  check_unbiased(DSO_EPISODIC, 300, 20000, DSO_BASELINE_VALUE);
}
static void test_alg1_time_varying(void** s) { check_unbiased(DSO_TIMEVARYING, 5, 40000, -1); }

static void test_surrogate_matches_alg1_and_clipping(void** s) {
  dsoFix f;
  fix_make(&f, DSO_EPISODIC, 300, 2000, DSO_BASELINE_STATE, 3);
  double g[2], se[2], sg[2], v, v0, vc, zero[2] = {0, 0};
  dsoError err = {0};
  fix_sample(&f, g, se);
  // eq. 67: the gradient of S̃ at α = 0 is Algorithm 1 on the same batch
  assert_int_equal(dso_grad_surrogate(&v0, sg, NULL, f.gr, f.ro, zero, 0, &err), DSO_OK);
  for (int k = 0; k < 2; k++) assert_true(fabs(sg[k] - g[k]) <= 1e-12 * (1 + fabs(g[k])));
  // clipping is pessimistic: the clipped surrogate is never below the unclipped one
  double a[2] = {1.5, -1.0};
  assert_int_equal(dso_grad_surrogate(&v, NULL, NULL, f.gr, f.ro, a, 0, &err), DSO_OK);
  assert_int_equal(dso_grad_surrogate(&vc, NULL, NULL, f.gr, f.ro, a, 0.2, &err), DSO_OK);
  assert_true(vc >= v - 1e-12 * fabs(v));
  fix_free(&f);
}

static void test_fisher_and_lemma3(void** s) {
  dsoFix f;
  fix_make(&f, DSO_TIMEVARYING, 4, 60000, -1, 2);
  double g[2], se[2], F[4], Fse[4], Fe[4], H[4], Hse[4], He[4];
  dsoError err = {0};
  fix_sample(&f, g, se);
  assert_int_equal(dso_grad_fisher(F, Fse, f.gr, f.ro, &err), DSO_OK);
  assert_int_equal(dso_tabular_fisher(Fe, f.tab, f.w, kTheta, &err), DSO_OK);
  assert_int_equal(dso_grad_hessian_lemma3(H, Hse, f.gr, f.ro, &err), DSO_OK);
  assert_int_equal(dso_tabular_fd_hessian(He, f.tab, f.w, kTheta, 1e-3, &err), DSO_OK);
  for (int k = 0; k < 4; k++) {
    assert_true(fabs(F[k] - Fe[k]) < 4 * Fse[k]);
    assert_true(fabs(H[k] - He[k]) < 4 * Hse[k]);
  }
  // Lemma 3 is refused where it does not apply
  fix_free(&f);
  fix_make(&f, DSO_EPISODIC, 50, 10, -1, 1);
  assert_int_equal(dso_rollout_run(f.ro, kTheta, 0, &err), DSO_OK);
  assert_int_equal(dso_grad_hessian_lemma3(H, Hse, f.gr, f.ro, &err), DSO_ERR_INPUT);
  fix_free(&f);
}

static void test_natural_direction(void** s) {
  double F[4] = {2, 1, 1, 3}, g[2] = {1, -1}, d[2], work[4];
  dsoError err = {0};
  assert_int_equal(dso_natural_direction(d, F, g, 2, 0, work, &err), DSO_OK);
  assert_true(fabs(2 * d[0] + d[1] - 1) < 1e-14 && fabs(d[0] + 3 * d[1] + 1) < 1e-14);
  double bad[4] = {-1, 0, 0, -1};
  assert_int_equal(dso_natural_direction(d, bad, g, 2, 0, work, &err), DSO_ERR_NUMERIC);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_baseline_state),
      cmocka_unit_test(test_alg1_episodic_no_baseline),
      cmocka_unit_test(test_alg1_episodic_state_baseline),
      cmocka_unit_test(test_alg1_episodic_td_value_baseline),
      cmocka_unit_test(test_alg1_time_varying),
      cmocka_unit_test(test_surrogate_matches_alg1_and_clipping),
      cmocka_unit_test(test_fisher_and_lemma3),
      cmocka_unit_test(test_natural_direction),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
