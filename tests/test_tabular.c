// Tests of the finite-chain oracle (tabular.h): Theorems 1-3 against finite differences of the exact
// J, Bellman equations (eqs. 3, 8), the MDP families of section 2.1 and input validation.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "core/rng.h"
#include "verify/tabular.h"

static double rel_err(const double* a, const double* b, int n) {
  double d = 0, s = 0;
  for (int k = 0; k < n; k++) {
    d += (a[k] - b[k]) * (a[k] - b[k]);
    s += b[k] * b[k];
  }
  return sqrt(d / (s > 0 ? s : 1));
}

static void check_theorem(dsoSetting set, double gamma, int nterm, int nphase) {
  dsoError err = {0};
  dsoTabSetup su = {set, gamma, 5, NULL, NULL};
  dsoTabular* tab = NULL;
  assert_int_equal(dso_tabular_create_random(&tab, 6, 4, nphase, &su, nterm, 0.8, 77, &err), DSO_OK);
  dsoTabWork* w = dso_tabular_work_create(tab);
  assert_non_null(w);
  double th[4] = {0.4, -0.3, 0.2, 0.9}, g[4], gf[4], J;
  assert_int_equal(dso_tabular_exact(&J, NULL, NULL, g, tab, w, th, &err), DSO_OK);
  assert_int_equal(dso_tabular_fd_grad(gf, tab, w, th, 1e-3, &err), DSO_OK);
  assert_true(rel_err(g, gf, 4) < 1e-9);
  dso_tabular_work_free(w);
  dso_tabular_free(tab);
}

static void test_theorem1_discounted(void** s) { check_theorem(DSO_EPISODIC, 0.9, 0, 1); }
static void test_theorem1_first_exit(void** s) { check_theorem(DSO_EPISODIC, 1.0, 2, 1); }
static void test_theorem2_average(void** s) { check_theorem(DSO_AVERAGE, 1.0, 0, 1); }
static void test_theorem3_time_varying(void** s) { check_theorem(DSO_TIMEVARYING, 1.0, 0, 3); }

static void test_bellman_equations(void** s) {
  dsoError err = {0};
  double th[3] = {0.1, 0.2, -0.5};
  for (int avg = 0; avg < 2; avg++) {
    dsoTabSetup su = {avg ? DSO_AVERAGE : DSO_EPISODIC, 0.8, 0, NULL, NULL};
    dsoTabular* tab = NULL;
    assert_int_equal(dso_tabular_create_random(&tab, 5, 3, 1, &su, 0, 0.5, 3, &err), DSO_OK);
    dsoTabWork* w = dso_tabular_work_create(tab);
    double J, V[5], d[5];
    const double *P, *L;
    assert_int_equal(dso_tabular_exact(&J, V, d, NULL, tab, w, th, &err), DSO_OK);
    dso_tabular_eval(&P, NULL, &L, NULL, tab, w, th, 0);
    for (int x = 0; x < 5; x++) {
      double pv = 0;
      for (int y = 0; y < 5; y++) pv += P[x * 5 + y] * V[y];
      // eq. 3: V = L + γPV; eq. 8: J + V = L + PV
      double res = avg ? J + V[x] - L[x] - pv : V[x] - L[x] - 0.8 * pv;
      assert_true(fabs(res) < 1e-12);
      if (avg) {
        double dp = 0;
        for (int y = 0; y < 5; y++) dp += d[y] * P[y * 5 + x];
        assert_true(fabs(dp - d[x]) < 1e-14);  // eq. 6
      }
    }
    dso_tabular_work_free(w);
    dso_tabular_free(tab);
  }
}

static void test_smdp_equals_its_dmdp(void** s) {
  // section 2.2: an S-MDP and the D-MDP of eq. 26 map to the same DSO chain
  enum { NS = 4, NA = 3, N = 2 };
  dsoRng rng;
  dso_rng_seed(&rng, 9, 0, 0);
  double p[NS * NA * NS], r[NS * NA], f[NS * NA * N];
  for (int i = 0; i < NS * NA; i++) {
    double t = 0;
    for (int y = 0; y < NS; y++) t += (p[i * NS + y] = dso_rng_uniform(&rng));
    for (int y = 0; y < NS; y++) p[i * NS + y] /= t;
    r[i] = dso_rng_uniform(&rng);
  }
  for (int i = 0; i < NS * NA * N; i++) f[i] = dso_rng_normal(&rng);
  dsoError err = {0};
  dsoTabSetup su = {DSO_EPISODIC, 0.9, 0, NULL, NULL};
  dsoGmdpSpec gs = {NS, NA, N, p, r, f, 0, 0, NULL};
  dsoSmdpAsDmdp ctx = {NS, NA, p, r};
  dsoDmdpSpec ds = {NS, NA, N, f, dso_tabular_smdp_as_dmdp, &ctx};
  dsoTabular *S, *D;
  assert_int_equal(dso_tabular_create_gmdp(&S, &gs, &su, &err), DSO_OK);
  assert_int_equal(dso_tabular_create_dmdp(&D, &ds, &su, &err), DSO_OK);
  dsoTabWork* ws = dso_tabular_work_create(S);
  dsoTabWork* wd = dso_tabular_work_create(D);
  double th[N] = {0.3, -0.7}, gS[N], gD[N], gp[N], JS, JD;
  assert_int_equal(dso_tabular_exact(&JS, NULL, NULL, gS, S, ws, th, &err), DSO_OK);
  assert_int_equal(dso_tabular_exact(&JD, NULL, NULL, gD, D, wd, th, &err), DSO_OK);
  assert_true(fabs(JS - JD) < 1e-12 * fabs(JS));
  assert_true(rel_err(gD, gS, N) < 1e-12);
  assert_int_equal(dso_tabular_gmdp_policy_gradient(gp, S, ws, th, &err), DSO_OK);
  assert_true(rel_err(gp, gS, N) < 1e-12);  // eq. 49
  assert_int_equal(dso_tabular_dmdp_policy_gradient(gp, D, wd, th, &err), DSO_OK);
  assert_true(rel_err(gp, gS, N) < 1e-12);  // eq. 52
  // value iteration optimum is below every policy's J
  double Jstar;
  assert_int_equal(dso_tabular_gmdp_optimum(&Jstar, S, 1e-12, &err), DSO_OK);
  assert_true(Jstar <= JS + 1e-12);
  dso_tabular_work_free(ws);
  dso_tabular_work_free(wd);
  dso_tabular_free(S);
  dso_tabular_free(D);
}

static void test_bad_input(void** s) {
  dsoError err = {0};
  dsoTabular* tab = (dsoTabular*)&err;
  dsoTabSetup su = {DSO_EPISODIC, 1.0, 0, NULL, NULL};
  // γ = 1 without terminal states has no finite J
  assert_int_equal(dso_tabular_create_random(&tab, 4, 2, 1, &su, 0, 0.5, 1, &err), DSO_ERR_INPUT);
  assert_null(tab);
  assert_non_null(strstr(err.msg, "terminal"));
  dsoTabSetup sa = {DSO_AVERAGE, 1.0, 0, NULL, NULL};
  dso_error_clear(&err);
  assert_int_equal(dso_tabular_create_random(&tab, 4, 2, 3, &sa, 0, 0.5, 1, &err), DSO_ERR_INPUT);
  double p[2 * 1 * 2] = {0.5, 0.6, 1, 0}, r[2] = {0, 0}, f[2] = {1, 1};
  dsoGmdpSpec gs = {2, 1, 1, p, r, f, 0, 0, NULL};
  dsoTabSetup se = {DSO_EPISODIC, 0.9, 0, NULL, NULL};
  dso_error_clear(&err);
  assert_int_equal(dso_tabular_create_gmdp(&tab, &gs, &se, &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "row 0"));
  dso_tabular_free(NULL);
  dso_tabular_work_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_theorem1_discounted),  cmocka_unit_test(test_theorem1_first_exit),
      cmocka_unit_test(test_theorem2_average),     cmocka_unit_test(test_theorem3_time_varying),
      cmocka_unit_test(test_bellman_equations),    cmocka_unit_test(test_smdp_equals_its_dmdp),
      cmocka_unit_test(test_bad_input),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
