// The flat binding API (binding.h): NULL error records everywhere, argument checks, θ by name and
// transforms, the fit residuals against the library's fit cost (sysid windows, calibration and
// prior parts), the Jacobian against finite differences, the chain objective under common random
// numbers, and dso run one iteration at a time.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dso/task.h"
#include "config/task.h"
#include "mujoco/theta.h"
#include "test_util.h"

// |a - b| <= tol
#define assert_near(a, b, tol) assert_true(fabs((double)(a) - (double)(b)) <= (tol))

static char g_dir[2048];        // scratch folder under the build folder
static char g_task[2304];       // the arm calibration + sysid task written there
static char g_csv[2304];        // its data

// a copy of the arm model's task with physics, sensor and prior entries, reading g_csv
static int write_task(void) {
  FILE* f = fopen(g_task, "w");
  if (!f) return -1;
  fprintf(f,
          "{\"model\": \"%s/models/arm2.xml\",\n"
          " \"data\": {\"files\": \"%s\"},\n"
          " \"fit\": {\"window\": 30, \"threads\": 1},\n"
          " \"rollout\": {\"horizon\": 80, \"rollouts\": 3, \"seed\": 4},\n"
          " \"theta\": [\n"
          "  {\"name\": \"physics.upper_arm.mass\", \"init\": 1.0,\n"
          "   \"prior\": {\"mean\": 0.9, \"std\": 0.2}},\n"
          "  {\"name\": \"physics.elbow.damping\", \"init\": 0.03},\n"
          "  {\"name\": \"physics.shoulder.force\", \"init\": 0.1, \"transform\": \"identity\"},\n"
          "  {\"name\": \"physics.shoulder.armature\", \"init\": 0.005, \"fixed\": true},\n"
          "  {\"name\": \"sensor.elbow_pos.offset\", \"init\": 0.02},\n"
          "  {\"name\": \"sensor.shoulder_vel.gain\", \"init\": 1.1,\n"
          "   \"prior\": {\"mean\": 1.0, \"std\": 0.1}},\n"
          "  {\"name\": \"sensor_noise.shoulder_vel.std\", \"init\": 0.05, \"fixed\": true}\n"
          " ]}\n",
          DSO_SOURCE_DIR, g_csv);
  return fclose(f);
}

static int setup(void** state) {
  (void)state;
  if (dso_test_mkdtemp(g_dir, sizeof(g_dir), "binding") != 0) return -1;
  snprintf(g_task, sizeof(g_task), "%s/arm.json", g_dir);
  snprintf(g_csv, sizeof(g_csv), "%s/arm.csv", g_dir);
  if (write_task() != 0) return -1;
  // data at θ moved from the task's init (so that r(init) is not zero), 3 episodes x 80
  dsoError err = {0};
  dsoTask* t = dso_task_open(g_task, 1, &err);
  if (!t) {
    fprintf(stderr, "%s\n", err.msg);
    return -1;
  }
  double u[7], v[7];
  dso_task_theta_init(t, u, NULL);
  dso_task_theta_natural(t, v, u, NULL);
  v[0] = 1.2;  // upper arm mass
  v[1] = 0.04; // elbow damping
  dsoStatus st = dso_task_theta_unconstrained(t, u, v, &err);
  if (!st) st = dso_task_simulate_csv(t, g_csv, u, 3, 80, 9, 0.6, 1, &err);
  if (st) fprintf(stderr, "%s\n", err.msg);
  dso_task_free(t);
  return st ? -1 : 0;
}

static int teardown(void** state) {
  (void)state;
  dso_test_rmtree(g_dir);
  return 0;
}

// every call accepts err = NULL, NULL handles and NULL arrays fail cleanly
static void test_null_everything(void** state) {
  (void)state;
  double x[4] = {0}, c = 0;
  int i = 0;
  assert_null(dso_task_open(NULL, 0, NULL));
  assert_null(dso_task_open("/nonexistent/task.json", 0, NULL));
  assert_int_equal(dso_task_kind(NULL, NULL), -1);
  assert_int_equal(dso_task_size(NULL, 0, NULL), -1);
  assert_int_equal(dso_task_ntheta(NULL, NULL), -1);
  assert_null(dso_task_theta_name(NULL, 0, NULL));
  assert_int_equal(dso_task_theta_find(NULL, "x", NULL), -1);
  assert_int_not_equal(dso_task_theta_entry(NULL, 0, &i, &i, &i, x, x, NULL), DSO_OK);
  assert_int_not_equal(dso_task_theta_init(NULL, x, NULL), DSO_OK);
  assert_int_not_equal(dso_task_theta_natural(NULL, x, x, NULL), DSO_OK);
  assert_int_not_equal(dso_task_theta_unconstrained(NULL, x, x, NULL), DSO_OK);
  assert_int_not_equal(dso_task_prior(NULL, &c, NULL, x, NULL), DSO_OK);
  assert_int_not_equal(dso_task_simulate_csv(NULL, "x.csv", NULL, 1, 1, 1, 0, 0, NULL), DSO_OK);
  assert_null(dso_task_fit_create(NULL, NULL));
  assert_int_equal(dso_task_fit_nresidual(NULL, NULL), -1);
  assert_int_equal(dso_task_fit_nfitted(NULL, NULL), -1);
  assert_int_not_equal(dso_task_fit_fitted(NULL, &i, NULL), DSO_OK);
  assert_int_not_equal(dso_task_fit_residual(NULL, x, x, NULL), DSO_OK);
  assert_int_not_equal(dso_task_fit_jacobian(NULL, x, x, x, NULL), DSO_OK);
  assert_int_not_equal(dso_task_fit_cost(NULL, &c, NULL, x, NULL), DSO_OK);
  assert_int_not_equal(dso_task_fit_step(NULL, x, &c, &i, NULL), DSO_OK);
  assert_int_not_equal(dso_task_fit_covariance(NULL, NULL, x, x, NULL), DSO_OK);
  assert_null(dso_task_chain_cost_create(NULL, 2, 2, 1, NULL));
  assert_int_not_equal(dso_task_chain_cost_eval(NULL, &c, NULL, NULL, NULL, NULL, x, 0, NULL),
                       DSO_OK);
  assert_null(dso_task_run_create(NULL, NULL));
  assert_int_equal(dso_task_run_max_iter(NULL, NULL), -1);
  assert_int_not_equal(dso_task_run_step(NULL, x, &c, &i, NULL), DSO_OK);
  dso_task_fit_free(NULL);
  dso_task_chain_cost_free(NULL);
  dso_task_run_free(NULL);
  dso_task_free(NULL);

  dsoTask* t = dso_task_open(g_task, 0, NULL);
  assert_non_null(t);
  assert_int_equal(dso_task_ntheta(t, NULL), 7);
  assert_null(dso_task_theta_name(t, 7, NULL));
  assert_int_equal(dso_task_theta_find(t, "physics.nothing.mass", NULL), -1);
  assert_int_not_equal(dso_task_theta_init(t, NULL, NULL), DSO_OK);
  double u[7] = {0};
  u[3] = NAN;
  assert_int_equal(dso_task_theta_natural(t, x, u, NULL), DSO_ERR_INPUT);
  dso_task_free(t);
}

static void test_task_accessors(void** state) {
  (void)state;
  dsoError err = {DSO_ERR_IO, "left over from an earlier call"};
  dsoTask* t = dso_task_open(g_task, 0, &err);
  assert_non_null(t);
  assert_int_equal(err.code, DSO_OK);  // cleared on entry
  assert_int_equal(dso_task_kind(t, &err), DSO_TASK_KIND_FIT);
  assert_int_equal(dso_task_size(t, DSO_TASK_SIZE_NQ, &err), 2);
  assert_int_equal(dso_task_size(t, DSO_TASK_SIZE_NU, &err), 2);
  assert_int_equal(dso_task_size(t, DSO_TASK_SIZE_NSENSORDATA, &err), 7);
  assert_int_equal(dso_task_size(t, DSO_TASK_SIZE_NEPISODE, &err), 3);
  assert_int_equal(dso_task_size(t, DSO_TASK_SIZE_HORIZON, &err), 80);
  assert_int_equal(dso_task_size(t, DSO_TASK_NSIZE, &err), -1);
  assert_non_null(strstr(err.msg, "size 9"));
  // names in θ layout order (blocks of eq. 95)
  assert_string_equal(dso_task_theta_name(t, 0, &err), "physics.upper_arm.mass");
  assert_string_equal(dso_task_theta_name(t, 4, &err), "sensor.elbow_pos.offset");
  int k = dso_task_theta_find(t, "sensor.shoulder_vel.gain", &err);
  assert_int_equal(k, 5);
  assert_int_equal(dso_task_theta_find(t, "sensor.nothing.gain", &err), -1);
  assert_int_equal(err.code, DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "'sensor.nothing.gain'"));
  int block, transform, fixed;
  double lo, hi;
  assert_int_equal(dso_task_theta_entry(t, 2, &block, &transform, &fixed, &lo, &hi, &err), 0);
  assert_int_equal(block, DSO_BLOCK_PHYSICS);
  assert_int_equal(transform, DSO_TRANSFORM_IDENTITY);
  assert_int_equal(fixed, 0);
  assert_true(isinf(lo) && lo < 0 && isinf(hi) && hi > 0);
  // natural <-> unconstrained; a value outside the domain leaves u unchanged
  double u[7], v[7], w[7];
  assert_int_equal(dso_task_theta_init(t, u, &err), DSO_OK);
  assert_int_equal(dso_task_theta_natural(t, v, u, &err), DSO_OK);
  assert_near(v[0], 1.0, 1e-15);
  assert_near(u[0], 0.0, 1e-15);  // log transform
  v[1] = -0.5;
  memcpy(w, u, sizeof(u));
  assert_int_equal(dso_task_theta_unconstrained(t, u, v, &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "physics.elbow.damping"));
  assert_memory_equal(u, w, sizeof(u));
  // prior: (1 - 0.9)/0.2 and (1.1 - 1)/0.1, 0.5 (0.25 + 1) = 0.625
  double c = 0, g[7];
  assert_int_equal(dso_task_prior(t, &c, g, u, &err), DSO_OK);
  assert_near(c, 0.625, 1e-12);
  assert_near(g[0], 0.1 / 0.04 * 1.0, 1e-12);  // dL/dv dv/du, v = e^u = 1
  // simulate: bad arguments name what is wrong
  assert_int_equal(dso_task_simulate_csv(t, g_csv, NULL, 2, 10, 1, -1.0, 0, &err),
                   DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "excitation"));
  assert_int_equal(dso_task_simulate_csv(t, g_csv, NULL, 2, 10, 1, 0.0, 3, &err),
                   DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "validation"));
  assert_null(dso_task_chain_cost_create(t, 1, 10, 1, &err));
  assert_non_null(strstr(err.msg, "1 rollouts"));
  dso_task_free(t);
}

// 0.5 |r|² of the binding's residuals is the library's fit cost, part by part, at several θ
static void test_fit_residual_layout(void** state) {
  (void)state;
  dsoError err = {0};
  dsoTask* t = dso_task_open(g_task, 0, &err);
  assert_non_null(t);
  dsoTaskFit* f = dso_task_fit_create(t, &err);
  if (!f) fprintf(stderr, "%s\n", err.msg);
  assert_non_null(f);
  // fitted: mass, damping, force, elbow_pos offset, shoulder_vel gain (not the fixed ones)
  int nfit = dso_task_fit_nfitted(f, &err), idx[7];
  assert_int_equal(nfit, 5);
  assert_int_equal(dso_task_fit_fitted(f, idx, &err), DSO_OK);
  int want[5] = {0, 1, 2, 4, 5};
  assert_memory_equal(idx, want, sizeof(want));
  // 2 training episodes: 79 steps x (2 qpos + 2 qvel) (windows 30 + 30 + 19) each, 80 samples
  // x 7 sensor values each, 2 priors
  long nsys = 2 * 79 * 4, ncal = 2 * 80 * 7;
  int nres = dso_task_fit_nresidual(f, &err);
  assert_int_equal(nres, nsys + ncal + 2);
  double* r = calloc((size_t)nres, sizeof(double));
  double* J = calloc((size_t)nres * 7, sizeof(double));
  double* rp = calloc((size_t)nres, sizeof(double));
  double* rm = calloc((size_t)nres, sizeof(double));
  assert_true(r && J && rp && rm);
  double u[7], v[7];
  dso_task_theta_init(t, u, &err);
  for (int trial = 0; trial < 3; trial++) {
    if (trial == 1) u[0] += 0.15;     // heavier upper arm
    if (trial == 2) u[4] -= 0.03;     // elbow_pos offset
    assert_int_equal(dso_task_fit_residual(f, r, u, &err), DSO_OK);
    double parts[3], cost, s[3] = {0, 0, 0};
    assert_int_equal(dso_task_fit_cost(f, &cost, parts, u, &err), DSO_OK);
    for (long k = 0; k < nres; k++) s[k < nsys ? 0 : (k < nsys + ncal ? 1 : 2)] += r[k] * r[k];
    for (int p = 0; p < 3; p++) {
      assert_true(fabs(0.5 * s[p] - parts[p]) <= 1e-12 * fmax(parts[p], 1e-300));
    }
    assert_true(parts[0] > 1e-3 && parts[1] > 1e-6 && parts[2] > 0);
    // the prior residuals: (v - mean) / std
    dso_task_theta_natural(t, v, u, &err);
    assert_near(r[nres - 2], (v[0] - 0.9) / 0.2, 1e-12);
    assert_near(r[nres - 1], (v[5] - 1.0) / 0.1, 1e-12);
  }
  // Jacobian: held columns zero, a fitted column against central differences with another step
  // (the fit's own differences are forward ones, fit.jacobian's default: first order, 1e-4)
  assert_int_equal(dso_task_fit_jacobian(f, J, rp, u, &err), DSO_OK);
  assert_int_equal(dso_task_fit_residual(f, r, u, &err), DSO_OK);
  assert_memory_equal(r, rp, (size_t)nres * sizeof(double));
  for (long k = 0; k < nres; k++) {
    assert_true(J[k * 7 + 3] == 0 && J[k * 7 + 6] == 0);
  }
  for (int c = 0; c < 5; c++) {
    int i = want[c];
    double h = 1e-6 * (1 + fabs(u[i])), w = u[i], num = 0, den = 0;
    u[i] = w + h;
    assert_int_equal(dso_task_fit_residual(f, rp, u, &err), DSO_OK);
    u[i] = w - h;
    assert_int_equal(dso_task_fit_residual(f, rm, u, &err), DSO_OK);
    u[i] = w;
    for (long k = 0; k < nres; k++) {
      double d = (rp[k] - rm[k]) / (2 * h) - J[k * 7 + i];
      num += d * d;
      den += J[k * 7 + i] * J[k * 7 + i];
    }
    assert_true(den > 0);
    if (!(sqrt(num) <= 1e-4 * sqrt(den))) {
      fprintf(stderr, "column %d: |fd - J| / |J| = %.3g\n", i, sqrt(num / den));
      fail();
    }
  }
  // an LM step decreases the cost
  double c0, c1;
  int done = 1;
  assert_int_equal(dso_task_fit_cost(f, &c0, NULL, u, &err), DSO_OK);
  assert_int_equal(dso_task_fit_step(f, u, &c1, &done, &err), DSO_OK);
  assert_true(c1 < c0 && isfinite(c1));
  u[2] = INFINITY;
  assert_int_equal(dso_task_fit_residual(f, r, u, &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "physics.shoulder.force"));
  free(r);
  free(J);
  free(rp);
  free(rm);
  dso_task_fit_free(f);
  dso_task_free(t);
}

// dso run on the fit task: the cost decreases step by step
static void test_run_fit(void** state) {
  (void)state;
  dsoError err = {0};
  dsoTask* t = dso_task_open(g_task, 0, &err);
  dsoTaskRun* run = dso_task_run_create(t, &err);
  assert_non_null(run);
  assert_int_equal(dso_task_run_max_iter(run, &err), 50);  // the fit default
  double u[7], prev = INFINITY, cost = 0;
  int done = 0;
  dso_task_theta_init(t, u, &err);
  for (int k = 0; k < 3 && !done; k++) {
    assert_int_equal(dso_task_run_step(run, u, &cost, &done, &err), DSO_OK);
    assert_true(cost < prev);
    prev = cost;
  }
  dso_task_run_free(run);
  dso_task_free(t);
}

// the chain objective on pendulum_design: common random numbers, pathwise gradient against
// central differences of J
static void test_chain_cost(void** state) {
  (void)state;
  char path[2048];
  snprintf(path, sizeof(path), "%s/tasks/pendulum_design.json", DSO_SOURCE_DIR);
  dsoError err = {0};
  dsoTask* t = dso_task_open(path, 0, &err);
  assert_non_null(t);
  assert_int_equal(dso_task_kind(t, &err), DSO_TASK_KIND_CHAIN);
  assert_null(dso_task_fit_create(t, &err));
  assert_non_null(strstr(err.msg, "data"));
  dsoTaskChainCost* cc = dso_task_chain_cost_create(t, 4, 40, 3, &err);
  assert_non_null(cc);
  double u[6], g[6], se[6], J, Jse, Jp, Jm;
  int div = -1;
  dso_task_theta_init(t, u, &err);
  u[0] = 0.3;
  u[1] = -0.2;
  assert_int_equal(dso_task_chain_cost_eval(cc, &J, &Jse, g, se, &div, u, 0, NULL), DSO_OK);
  assert_int_equal(div, 0);
  assert_true(J > 0 && Jse > 0);
  double scale = 0, fd[6];
  for (int i = 0; i < 6; i++) {
    double h = 1e-5, w = u[i];
    u[i] = w + h;
    assert_int_equal(dso_task_chain_cost_eval(cc, &Jp, NULL, NULL, NULL, NULL, u, 0, &err), 0);
    u[i] = w - h;
    assert_int_equal(dso_task_chain_cost_eval(cc, &Jm, NULL, NULL, NULL, NULL, u, 0, &err), 0);
    u[i] = w;
    fd[i] = (Jp - Jm) / (2 * h);
    scale = fmax(scale, fabs(fd[i]));
  }
  for (int i = 0; i < 6; i++) {
    double rel = fabs(g[i] - fd[i]) / fmax(fabs(fd[i]), 1e-2 * scale);
    if (!(rel < 1e-4)) {
      fprintf(stderr, "entry %d: pathwise %.8g, fd %.8g\n", i, g[i], fd[i]);
      fail();
    }
  }
  // the same key gives the same J; another key other noise
  double J2;
  assert_int_equal(dso_task_chain_cost_eval(cc, &J2, NULL, NULL, NULL, NULL, u, 0, &err), 0);
  assert_true(J2 == J);
  assert_int_equal(dso_task_chain_cost_eval(cc, &J2, NULL, NULL, NULL, NULL, u, 1, &err), 0);
  assert_true(J2 != J);
  assert_int_equal(dso_task_chain_cost_eval(cc, &J2, NULL, NULL, NULL, NULL, u, -1, &err),
                   DSO_ERR_INPUT);
  dso_task_chain_cost_free(cc);
  // seeds: DSO_SEED_TASK is the task's rollout.seed; 0 is a seed like any other
  uint64_t own = t->rollout.seed;
  assert_true(own != 0);
  double Js[3];
  const uint64_t seeds[3] = {DSO_SEED_TASK, own, 0};
  for (int k = 0; k < 3; k++) {
    cc = dso_task_chain_cost_create(t, 4, 40, seeds[k], &err);
    assert_non_null(cc);
    assert_int_equal(dso_task_chain_cost_eval(cc, &Js[k], NULL, NULL, NULL, NULL, u, 0, &err), 0);
    dso_task_chain_cost_free(cc);
  }
  assert_true(Js[0] == Js[1]);
  assert_true(Js[2] != Js[1]);
  // one training iteration through the run handle
  dsoTaskRun* run = dso_task_run_create(t, &err);
  assert_non_null(run);
  double u0[6], cost = NAN;
  int done = 1;
  dso_task_theta_init(t, u, &err);
  memcpy(u0, u, sizeof(u));
  assert_int_equal(dso_task_run_step(run, u, &cost, &done, &err), DSO_OK);
  assert_true(isfinite(cost) && done == 0);
  assert_true(memcmp(u, u0, sizeof(u)) != 0);
  assert_true(u[5] == u0[5]);  // action noise is fixed
  dso_task_run_free(run);
  dso_task_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_null_everything),
      cmocka_unit_test(test_task_accessors),
      cmocka_unit_test(test_fit_residual_layout),
      cmocka_unit_test(test_run_fit),
      cmocka_unit_test(test_chain_cost),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
