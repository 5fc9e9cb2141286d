// Data-driven costs of paper section 5.1 (clone.h): L_clone and L_hybrid over recorded episodes.
// - their gradients (policy, action noise, physics) agree with centered finite differences of the
//   costs on the MLP cartpole of tasks/cartpole_gradcheck.json, with data from dso_simulate
//   written to CSV and read back;
// - L_clone alone drives a linear policy to the least-squares fit of demonstrations recorded from
//   a known linear policy with Gaussian action noise, and σ to the RMS residual (the maximum
//   likelihood point of -ln p_ε); the fit lies within 4 standard errors of the true gains;
// - missing columns, sensor input and a clone weight without data are clear errors.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_util.h"

#include "mujoco/clone.h"
#include "mujoco/dataset.h"
#include "apps/simulate.h"
#include "config/task.h"
#include "mujoco/theta.h"
#include "apps/train.h"
#include "config/train_section.h"

static char g_dir[1024];

static int setup(void** state) {
  (void)state;
  return dso_test_mkdtemp(g_dir, sizeof(g_dir), "dso_test_clone");
}

static int teardown(void** state) {
  (void)state;
  return dso_test_rmtree(g_dir) == 0 ? 0 : -1;
}

static dsoTask* load(const char* path) {
  dsoError err = {0};
  dsoTask* task = dso_task_load(path, &err);
  if (!task) fprintf(stderr, "%s\n", err.msg);
  assert_non_null(task);
  return task;
}

// records nep episodes of T samples of task at u into g_dir/name and reads the file back
static dsoDataset* record(const dsoTask* task, const double* u, int nep, int T, uint64_t seed,
                          const char* name) {
  dsoError err = {0};
  dsoDataset* sim = NULL;
  dsoStatus st = dso_simulate(&sim, task, u, nep, T, seed, 0.0, 0, &err);
  if (st) fprintf(stderr, "%s\n", err.msg);
  assert_int_equal(st, DSO_OK);
  char path[400];
  snprintf(path, sizeof(path), "%s/%s", g_dir, name);
  assert_int_equal(dso_dataset_write_csv(path, sim, task->model, &err), DSO_OK);
  dso_dataset_free(sim);
  dsoDataset* ds = NULL;
  st = dso_dataset_read_csv(&ds, task->model, path, NULL, &err);
  if (st) fprintf(stderr, "%s\n", err.msg);
  assert_int_equal(st, DSO_OK);
  return ds;
}

// a fixed pseudo-random number in [-1, 1]
static double wiggle(int i) { return sin(12.9898 * (i + 1) + 78.233) * 0.5 + 0.25 * cos(3.1 * i); }

typedef dsoStatus (*CostFn)(double*, double*, dsoClone*, const double*, dsoError*);

// worst |g - fd| / max(|fd|, floor) over the free entries
static double compare_fd(dsoClone* c, CostFn fn, const dsoTheta* th, double* u, double h,
                         double floor, const char* label) {
  int n = th->n;
  double* g = calloc((size_t)n, sizeof(double));
  dsoError err = {0};
  double L = 0, Lp = 0, Lm = 0, worst = 0;
  assert_int_equal(fn(&L, g, c, u, &err), DSO_OK);
  assert_true(isfinite(L));
  int nonzero = 0;
  for (int i = 0; i < n; i++) {
    double ui = u[i];
    u[i] = ui + h;
    assert_int_equal(fn(&Lp, NULL, c, u, &err), DSO_OK);
    u[i] = ui - h;
    assert_int_equal(fn(&Lm, NULL, c, u, &err), DSO_OK);
    u[i] = ui;
    double fd = (Lp - Lm) / (2 * h);
    double rel = fabs(g[i] - fd) / fmax(fabs(fd), floor);
    if (rel > worst) worst = rel;
    if (fabs(g[i]) > 1e-9) nonzero++;
    if (getenv("DSO_TEST_VERBOSE")) {
      printf("    %s %-28s g %13.6e fd %13.6e rel %.2e\n", label, th->entry[i].name, g[i], fd,
             rel);
    }
  }
  printf("  %s: L = %.6g, %d of %d gradient entries nonzero, worst relative error vs centered "
         "differences %.2e\n", label, L, nonzero, n, worst);
  assert_true(nonzero > n / 2);
  free(g);
  return worst;
}

static void test_gradients_fd(void** state) {
  (void)state;
  char path[1024];
  snprintf(path, sizeof(path), "%s/tasks/cartpole_gradcheck.json", DSO_SOURCE_DIR);
  dsoTask* task = load(path);
  task->rollout.nthread = 1;
  int n = task->theta->n;
  double* u = calloc((size_t)n, sizeof(double));
  dso_theta_init(task->theta, u);
  dsoDataset* ds = record(task, u, 3, 40, 5, "grad.csv");
  // move θ away from where the data was recorded: policy, noise and physics all differ
  for (int i = 0; i < n; i++) u[i] += 0.05 * wiggle(i);
  dsoError err = {0};
  dsoClone* c = dso_clone_create(task->model, task->theta, task->policy, &task->chain, ds,
                                 0.98, DSO_CLONE_ACTIONS | DSO_CLONE_HYBRID, &task->chain.deriv,
                                 &err);
  if (!c) fprintf(stderr, "%s\n", err.msg);
  assert_non_null(c);
  assert_int_equal(dso_clone_nepisode(c), 3);
  assert_int_equal(dso_clone_nsample(c), 120);
  // L_clone is smooth in θ and exact: tight tolerance
  double wc = compare_fd(c, dso_clone_cost, task->theta, u, 1e-5, 1e-3, "L_clone");
  assert_true(wc < 1e-5);
  // L_hybrid uses finite-difference Jacobians of mj_step (B, ∂f/∂θ_f, steps 1e-6)
  double wh = compare_fd(c, dso_clone_hybrid, task->theta, u, 1e-5, 1e-6, "L_hybrid");
  assert_true(wh < 1e-4);
  dso_clone_free(c);
  dso_clone_free(NULL);
  dso_dataset_free(ds);
  free(u);
  dso_task_free(task);
}

// solves the 3x3 system A x = b by Gaussian elimination with partial pivoting (A, b overwritten)
static void solve3(double* x, double A[3][3], double* b) {
  for (int k = 0; k < 3; k++) {
    int p = k;
    for (int r = k + 1; r < 3; r++) {
      if (fabs(A[r][k]) > fabs(A[p][k])) p = r;
    }
    for (int j = 0; j < 3; j++) {
      double t = A[k][j];
      A[k][j] = A[p][j];
      A[p][j] = t;
    }
    double t = b[k];
    b[k] = b[p];
    b[p] = t;
    for (int r = k + 1; r < 3; r++) {
      double f = A[r][k] / A[k][k];
      for (int j = k; j < 3; j++) A[r][j] -= f * A[k][j];
      b[r] -= f * b[k];
    }
  }
  for (int k = 2; k >= 0; k--) {
    double s = b[k];
    for (int j = k + 1; j < 3; j++) s -= A[k][j] * x[j];
    x[k] = s / A[k][k];
  }
}

static void test_clone_least_squares(void** state) {
  (void)state;
  // pendulum, linear policy a = K (qpos, qvel) + k, action noise 0.1: the demonstrator
  const double Kt[3] = {-0.6, -0.08, 0.15}, sig_t = 0.1;
  char path[400];
  snprintf(path, sizeof(path), "%s/linear.json", g_dir);
  FILE* f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f,
          "{\"model\": \"%s/models/pendulum.xml\", \"policy\": {\"type\": \"linear\"},\n"
          " \"chain\": {\"input\": \"state\", \"init_qpos\": {\"hinge\": 0.5},\n"
          "   \"init_std_qpos\": {\"hinge\": 0.3}, \"init_std_qvel\": {\"hinge\": 1.0}},\n"
          " \"rollout\": {\"setting\": \"episodic\", \"gamma\": 1, \"horizon\": 200,\n"
          "   \"rollouts\": 6, \"threads\": 1, \"seed\": 3},\n"
          " \"theta\": [{\"name\": \"policy.K[0,0]\", \"init\": %.17g},\n"
          "   {\"name\": \"policy.K[0,1]\", \"init\": %.17g}, {\"name\": \"policy.k[0]\", "
          "\"init\": %.17g},\n"
          "   {\"name\": \"action_noise.torque.std\", \"init\": %.17g}]}\n",
          DSO_SOURCE_DIR, Kt[0], Kt[1], Kt[2], sig_t);
  fclose(f);
  dsoTask* task = load(path);
  int n = task->theta->n;
  assert_int_equal(n, 4);
  double u[4];
  dso_theta_init(task->theta, u);
  dsoDataset* ds = record(task, u, 6, 200, 11, "linear.csv");
  // least squares of ā on (qpos, qvel, 1); no control was clipped
  double A[3][3] = {{0}}, b[3] = {0}, ls[3];
  long N = 0;
  for (int e = 0; e < ds->nepisode; e++) {
    const dsoEpisode* ep = &ds->episode[e];
    for (int t = 0; t < ep->T; t++) {
      double z[3] = {ep->qpos[t], ep->qvel[t], 1.0}, a = ep->ctrl[t];
      assert_true(fabs(a) < 1.0);
      for (int r = 0; r < 3; r++) {
        b[r] += z[r] * a;
        for (int j = 0; j < 3; j++) A[r][j] += z[r] * z[j];
      }
      N++;
    }
  }
  double Acopy[3][3];
  memcpy(Acopy, A, sizeof(A));
  solve3(ls, A, b);
  double rss = 0;
  for (int e = 0; e < ds->nepisode; e++) {
    const dsoEpisode* ep = &ds->episode[e];
    for (int t = 0; t < ep->T; t++) {
      double r = ep->ctrl[t] - (ls[0] * ep->qpos[t] + ls[1] * ep->qvel[t] + ls[2]);
      rss += r * r;
    }
  }
  double sig_ls = sqrt(rss / N);
  // clone from zero gains and σ = 1 with Adam on the gradient of L_clone alone
  dsoError err = {0};
  dsoClone* c = dso_clone_create(task->model, task->theta, task->policy, &task->chain, ds,
                                 1.0, DSO_CLONE_ACTIONS, NULL, &err);
  assert_non_null(c);
  double g[4], m[4] = {0}, v[4] = {0}, L = 0;
  u[0] = u[1] = u[2] = 0;
  u[3] = 0;  // log σ
  double gnorm = 0;
  for (int k = 1; k <= 3000; k++) {
    assert_int_equal(dso_clone_cost(&L, g, c, u, &err), DSO_OK);
    double lr = 0.05 / (1.0 + k / 200.0);
    gnorm = 0;
    for (int i = 0; i < 4; i++) {
      gnorm += g[i] * g[i];
      m[i] = 0.9 * m[i] + 0.1 * g[i];
      v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
      u[i] -= lr * (m[i] / (1 - pow(0.9, k))) / (sqrt(v[i] / (1 - pow(0.999, k))) + 1e-12);
    }
    gnorm = sqrt(gnorm);
  }
  double sig = exp(u[3]);
  printf("  demonstrations: %ld samples; true K %.4f %.4f k %.4f sigma %.4f\n", N, Kt[0], Kt[1],
         Kt[2], sig_t);
  printf("  least squares:  K %.6f %.6f k %.6f sigma %.6f\n", ls[0], ls[1], ls[2], sig_ls);
  printf("  cloned (Adam):  K %.6f %.6f k %.6f sigma %.6f  (L_clone %.6f, |g| %.2e)\n", u[0],
         u[1], u[2], sig, L, gnorm);
  for (int i = 0; i < 3; i++) assert_true(fabs(u[i] - ls[i]) < 1e-4 * (1 + fabs(ls[i])));
  assert_true(fabs(sig - sig_ls) < 1e-4 * sig_ls);
  // the least-squares fit is within 4 standard errors of the demonstrator: se² = σ² (ZᵀZ)⁻¹_ii
  for (int i = 0; i < 3; i++) {
    double Ai[3][3], e[3] = {0}, col[3];
    memcpy(Ai, Acopy, sizeof(Ai));
    e[i] = 1;
    solve3(col, Ai, e);
    double se = sig_t * sqrt(col[i]);
    printf("  K/k[%d]: z = %.2f\n", i, (ls[i] - Kt[i]) / se);
    assert_true(fabs(ls[i] - Kt[i]) < 4 * se);
  }
  dso_clone_free(c);
  dso_dataset_free(ds);
  dso_task_free(task);
}

static void test_errors(void** state) {
  (void)state;
  char path[1024];
  snprintf(path, sizeof(path), "%s/tasks/cartpole_gradcheck.json", DSO_SOURCE_DIR);
  dsoTask* task = load(path);
  task->rollout.nthread = 1;
  dsoDataset* ds = record(task, NULL, 1, 10, 2, "err.csv");
  dsoError err = {0};
  // sensor input
  dsoMjChainSettings sensors;
  dso_mjchain_settings_default(&sensors);
  sensors.input = DSO_INPUT_SENSORS;
  assert_null(dso_clone_create(task->model, task->theta, task->policy, &sensors, ds, 1.0,
                               DSO_CLONE_ACTIONS, NULL, &err));
  assert_non_null(strstr(err.msg, "sensors"));
  // no controls recorded
  ds->has[DSO_DATA_CTRL][0] = 0;
  dsoError e2 = {0};
  assert_null(dso_clone_create(task->model, task->theta, task->policy, NULL, ds, 1.0,
                               DSO_CLONE_ACTIONS, NULL, &e2));
  assert_non_null(strstr(e2.msg, "ctrl.force"));
  // hybrid needs no actions
  dsoError e3 = {0};
  dsoClone* c = dso_clone_create(task->model, task->theta, task->policy, NULL, ds, 1.0,
                                 DSO_CLONE_HYBRID, NULL, &e3);
  assert_non_null(c);
  double L = 0;
  assert_int_equal(dso_clone_cost(&L, NULL, c, NULL, &e3), DSO_ERR_INPUT);
  dso_clone_free(c);
  // a velocity column missing
  ds->has[DSO_DATA_QVEL][1] = 0;
  dsoError e4 = {0};
  assert_null(dso_clone_create(task->model, task->theta, task->policy, NULL, ds, 1.0,
                               DSO_CLONE_HYBRID, NULL, &e4));
  assert_non_null(strstr(e4.msg, "qvel.hinge"));
  // no policy
  dsoError e5 = {0};
  assert_null(dso_clone_create(task->model, task->theta, NULL, NULL, ds, 1.0,
                               DSO_CLONE_HYBRID, NULL, &e5));
  assert_non_null(strstr(e5.msg, "policy"));
  dso_dataset_free(ds);
  // a clone weight on a task without data names the key
  dsoTrainSettings s;
  dso_train_settings_default(&s);
  s.clone = 1.0;
  dsoError e6 = {0};
  assert_null(dso_train_create(task, &s, &e6));
  assert_non_null(strstr(e6.msg, "train.clone"));
  assert_non_null(strstr(e6.msg, "data"));
  dsoError e7 = {0};
  assert_int_equal(dso_train_settings_from_json(&s, "{\"hybrid\": -1}", "t.json", &e7),
                   DSO_ERR_INPUT);
  assert_non_null(strstr(e7.msg, "train.hybrid"));
  assert_int_equal(dso_train_settings_from_json(&s, "{\"clone\": 0.5, \"hybrid\": 2}", "t.json",
                                                &e7),
                   DSO_OK);
  assert_true(s.clone == 0.5 && s.hybrid == 2);
  dso_task_free(task);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_gradients_fd),
      cmocka_unit_test(test_clone_least_squares),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
