// Cost terms r(x, a): values and gradients in the tangent space against centered differences on
// the shipped arm and cartpole, including the free-joint-safe quadratic term; bad term specs.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mujoco/cost.h"
#include "dso.h"

static mjModel* load(const char* rel) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/%s", DSO_SOURCE_DIR, rel);
  dsoError err = {0};
  mjModel* m = dso_mj_load(path, &err);
  assert_non_null(m);
  return m;
}

static double eval_at(const dsoCost* c, const mjModel* m, mjData* d, const double* x,
                      const double* a, double* gx, double* ga, double* work) {
  dso_mj_state_set(d, m, x);
  mj_forward(m, d);
  return dso_cost_eval(c, m, d, a, gx, ga, work);
}

static void check_gradient(const char* model, const char* json, double expect_at_ref) {
  mjModel* m = load(model);
  mjData* d = mj_makeData(m);
  dsoError err = {0};
  dsoCost* c = dso_cost_from_json(m, json, "t.json", "cost", &err);
  if (!c) {
    fprintf(stderr, "%s\n", err.msg);
  }
  assert_non_null(c);
  int nx = dso_mj_state_size(m), ndx = dso_mj_tangent_size(m), nu = m->nu;
  double* x = calloc((size_t)nx, sizeof(double));
  double* xp = calloc((size_t)nx, sizeof(double));
  double* gx = calloc((size_t)ndx, sizeof(double));
  double* ga = calloc((size_t)nu + 1, sizeof(double));
  double* dx = calloc((size_t)ndx, sizeof(double));
  double* work = calloc((size_t)(6 * m->nv), sizeof(double));
  double a[8] = {0.3, -0.7, 0.2, 0, 0, 0, 0, 0};
  mj_resetData(m, d);
  dso_mj_state_get(x, m, d);
  if (!isnan(expect_at_ref)) {
    assert_true(fabs(eval_at(c, m, d, x, NULL, NULL, NULL, work) - expect_at_ref) < 1e-12);
  }
  for (int i = 0; i < nx; i++) {
    x[i] += 0.3 * sin(1.7 * i + 0.4);
  }
  eval_at(c, m, d, x, a, gx, ga, work);
  double h = 1e-6;
  for (int j = 0; j < ndx; j++) {
    double f[2];
    for (int s = 0; s < 2; s++) {
      memcpy(xp, x, sizeof(double) * (size_t)nx);
      memset(dx, 0, sizeof(double) * (size_t)ndx);
      dx[j] = s ? -h : h;
      dso_mj_state_integrate(xp, m, dx, 1.0);
      f[s] = eval_at(c, m, d, xp, a, NULL, NULL, work);
    }
    double fd = (f[0] - f[1]) / (2 * h);
    assert_true(fabs(fd - gx[j]) < 1e-6 * (1 + fabs(fd)));
  }
  for (int k = 0; k < nu; k++) {
    double ap[8], am[8];
    memcpy(ap, a, sizeof(a));
    memcpy(am, a, sizeof(a));
    ap[k] += h;
    am[k] -= h;
    double fd = (eval_at(c, m, d, x, ap, NULL, NULL, work) -
                 eval_at(c, m, d, x, am, NULL, NULL, work)) / (2 * h);
    assert_true(fabs(fd - ga[k]) < 1e-6 * (1 + fabs(fd)));
  }
  free(x);
  free(xp);
  free(gx);
  free(ga);
  free(dx);
  free(work);
  dso_cost_free(c);
  mj_deleteData(d);
  mj_deleteModel(m);
}

static void test_gradients(void** state) {
  check_gradient("models/cartpole.xml",
                 "[{\"term\": \"quadratic\", \"weight\": 2, \"qpos\": {\"hinge\": 3.14159},"
                 " \"qpos_weight\": {\"hinge\": 1, \"slider\": 0.5}, \"qvel_weight\": {\"hinge\": 0.1}},"
                 " {\"term\": \"effort\", \"weight\": 0.01}]",
                 2 * 3.14159 * 3.14159);
  check_gradient("models/arm2.xml",
                 "[{\"term\": \"site_distance\", \"weight\": 3, \"site\": \"ee\","
                 " \"target\": [0.1, 0, 0.9]}, {\"term\": \"velocity\", \"joint\": \"elbow\","
                 " \"target\": 0.5, \"weight\": 0.2}]", NAN);
  check_gradient("models/cartpole.xml",
                 "[{\"term\": \"upright\", \"weight\": 1.5, \"body\": \"pole\", \"axis\": [0, 0, 1]}]",
                 NAN);
  check_gradient("models/hopper.xml",
                 "[{\"term\": \"upright\", \"body\": \"torso\"}, {\"term\": \"quadratic\","
                 " \"qpos\": {\"rootz\": 1.2}, \"qpos_weight\": {\"rootz\": 1, \"hip\": 0.3}},"
                 " {\"term\": \"effort\", \"weight\": 0.1}]", NAN);
}

static void test_bad_specs(void** state) {
  mjModel* m = load("models/cartpole.xml");
  const char* bad[][2] = {
      {"{}", "expected an array of cost terms"},
      {"[1]", "cost[0]: expected a cost term object"},
      {"[{\"weight\": 1}]", "\"term\" is required"},
      {"[{\"term\": \"quadratik\"}]", "unknown term \"quadratik\""},
      {"[{\"term\": \"effort\", \"weight\": -1}]", "cost[0].weight: expected a number >= 0"},
      {"[{\"term\": \"effort\", \"site\": \"x\"}]", "unknown key \"site\""},
      {"[{\"term\": \"quadratic\", \"qpos\": {\"nope\": 1}}]", "no joint named \"nope\""},
      {"[{\"term\": \"quadratic\", \"qpos\": [1]}]", "cost[0].qpos: expected an object"},
      {"[{\"term\": \"quadratic\", \"qpos_weight\": {\"hinge\": -1}}]", "cost[0].qpos_weight.hinge: expected a number >= 0, got -1"},
      {"[{\"term\": \"site_distance\", \"site\": \"pole_tip\", \"target\": [1, 2]}]",
       "cost[0].target: expected an array of 3 numbers"},
      {"[{\"term\": \"site_distance\", \"site\": \"nope\", \"target\": [1, 2, 3]}]",
       "no site named \"nope\""},
      {"[{\"term\": \"upright\", \"body\": \"pole\", \"axis\": [0, 0, 0]}]", "nonzero vector"},
      {"[{\"term\": \"velocity\", \"joint\": \"hinge\"}]", "\"target\" is required"},
      {"[{\"term\": \"effort\"},", "unexpected end of file"},
      {"[{\"term\": \"effort\"}}", "malformed JSON"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    dsoError err = {0};
    assert_null(dso_cost_from_json(m, bad[i][0], "task.json", "cost", &err));
    assert_int_equal(err.code, DSO_ERR_INPUT);
    if (!strstr(err.msg, bad[i][1]) || !strstr(err.msg, "task.json")) {
      fprintf(stderr, "case %zu: %s\n", i, err.msg);
    }
    assert_non_null(strstr(err.msg, bad[i][1]));
    assert_non_null(strstr(err.msg, "task.json"));
  }
  mj_deleteModel(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gradients),
      cmocka_unit_test(test_bad_specs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
