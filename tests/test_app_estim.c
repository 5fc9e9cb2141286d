// Application 4 (paper section 5.2, chain eq. 99): learned state estimators on a pendulum with a
// noisy angle encoder and an unmeasured disturbance torque (models/pendulum_noisy.xml,
// tasks/pendulum_estim.json), against an EKF that knows the true model and one whose model is
// wrong (the learned gain against the steady-state Kalman gain on a linear Gaussian system is in
// test_estim.c); the forward-mode Jacobian against central differences; and `dso run` on the task end to end with
// --resume bit-identity and bad "estimator" sections. Data is recorded by dso_simulate at the
// true values into memory or a fresh temporary folder.
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "run_cli.h"
#include "dso_internal.h"
#include "estim/estimfit.h"
#include "config/estimator_section.h"
#include "config/json.h"
#include "apps/simulate.h"

#define TASK DSO_SOURCE_DIR "/tasks/pendulum_estim.json"

static const char* kTruth = "{\"physics.arm.mass\": 0.1476, \"physics.hinge.damping\": 0.01}";

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// the task without its data, and episodes recorded at the true values with the disturbance
// column dropped (as the task's column map does)
static dsoTask* load_task(void) {
  dsoError err = {0};
  dsoTask* task = dso_task_load_flags(TASK, DSO_TASK_SKIP_DATA, &err);
  if (!task) {
    fprintf(stderr, "%s\n", err.msg);
  }
  assert_non_null(task);
  return task;
}

static dsoDataset* record(const dsoTask* task, int episodes, int horizon, int nval,
                          uint64_t seed, int drop) {
  dsoError err = {0};
  int n = task->theta->n;
  double* ut = calloc((size_t)n, sizeof(double));
  dso_theta_init(task->theta, ut);
  assert_int_equal(dso_theta_from_json(task->theta, ut, kTruth, "truth", &err), DSO_OK);
  dsoDataset* ds = NULL;
  assert_int_equal(dso_simulate(&ds, task, ut, episodes, horizon, seed, 0, nval, &err), DSO_OK);
  int dist = mj_name2id(task->model, mjOBJ_ACTUATOR, "disturbance");
  assert_true(dist >= 0);
  if (drop) {
    ds->has[DSO_DATA_CTRL][dist] = 0;
  }
  for (int k = 0; drop && k < ds->nepisode; k++) {
    for (int t = 0; t < ds->episode[k].T; t++) {
      ds->episode[k].ctrl[(size_t)t * task->model->nu + dist] = 0;
    }
  }
  free(ut);
  return ds;
}

// a fit with the task's layout, settings from JSON text
static dsoEstimFit* make_fit(const dsoTask* task, const dsoDataset* ds, const char* json) {
  dsoError err = {0};
  dsoEstimFitSettings s;
  assert_int_equal(dso_estimfit_settings_from_json(&s, task->model, json, "test", &err), DSO_OK);
  dsoEstimFit* f = dso_estimfit_create(task->model, task->theta, ds, &s, &err);
  dso_estimfit_settings_free(&s);
  if (!f) {
    fprintf(stderr, "%s\n", err.msg);
  }
  assert_non_null(f);
  return f;
}

// forward-mode Jacobian of the innovations against central differences, gain and mlp, with the
// physics entries
static void test_jacobian(void** state) {
  dsoTask* task = load_task();
  dsoDataset* ds = record(task, 2, 120, 0, 11, 1);
  const char* kinds[2] = {"{\"corrector\": \"gain\"}",
                          "{\"corrector\": \"mlp\", \"hidden\": [5], \"init_scale_out\": 0.1}"};
  for (int c = 0; c < 2; c++) {
    dsoEstimFit* f = make_fit(task, ds, kinds[c]);
    dsoError err = {0};
    int n = dso_estimfit_n(f), p = dso_estimfit_nfitted(f);
    long m = dso_estimfit_nres(f) + dso_estimfit_nprior(f);
    int off_c = dso_estimfit_corrector_start(f);
    const dsoCorrector* cor = dso_estimfit_corrector(f);
    const int* fitted = dso_estimfit_fitted(f);
    double* u = calloc((size_t)n, sizeof(double));
    double* r = calloc((size_t)m, sizeof(double));
    double* rp = calloc((size_t)m, sizeof(double));
    double* rm = calloc((size_t)m, sizeof(double));
    double* jac = calloc((size_t)m * p, sizeof(double));
    dso_estimfit_init(f, u, NULL);
    for (int i = off_c; i < off_c + cor->nK; i++) {
      u[i] = i == off_c ? 0.2 : 2.0;  // a working gain
    }
    assert_int_equal(dso_estimfit_residuals(f, r, jac, u, NULL, &err), DSO_OK);
    double worst = 0, scale = 0;
    for (int col = 0; col < p; col++) {
      int i = fitted[col];
      double h = 1e-6 * fmax(1.0, fabs(u[i])), keep = u[i];
      u[i] = keep + h;
      assert_int_equal(dso_estimfit_residuals(f, rp, NULL, u, NULL, &err), DSO_OK);
      u[i] = keep - h;
      assert_int_equal(dso_estimfit_residuals(f, rm, NULL, u, NULL, &err), DSO_OK);
      u[i] = keep;
      double cn = 0, dn = 0;
      for (long t = 0; t < m; t++) {
        double fd = (rp[t] - rm[t]) / (2 * h);
        cn += fd * fd;
        dn += (fd - jac[t * p + col]) * (fd - jac[t * p + col]);
      }
      worst = fmax(worst, sqrt(dn) / fmax(sqrt(cn), 1e-12));
      scale = fmax(scale, sqrt(cn));
    }
    printf("%s: %d entries, worst relative column error forward mode vs differences %.2e\n",
           dso_corrector_kind_name(cor->kind), p, worst);
    assert_true(worst < 1e-4);
    free(u);
    free(r);
    free(rp);
    free(rm);
    free(jac);
    dso_estimfit_free(f);
  }
  dso_dataset_free(ds);
  dso_task_free(task);
}

// dir/name.json: the shipped task with the model and data paths made absolute (data dir/data.csv)
// and, when estimator is not NULL, that text (JSON) as its "estimator" section
static void write_task(const char* dir, const char* name, const char* estimator) {
  dsoError err = {0};
  char* text = dso_read_text_file(TASK, &err);
  assert_non_null(text);
  cJSON* root = cJSON_Parse(text);
  free(text);
  assert_non_null(root);
  cJSON_ReplaceItemInObject(root, "model",
                            cJSON_CreateString(DSO_SOURCE_DIR "/models/pendulum_noisy.xml"));
  cJSON* data = cJSON_GetObjectItemCaseSensitive(root, "data");
  char file[512];
  snprintf(file, sizeof(file), "%s/data.csv", dir);
  cJSON_ReplaceItemInObject(data, "files", cJSON_CreateString(file));
  if (estimator) {
    cJSON* e = cJSON_Parse(estimator);
    assert_non_null(e);
    cJSON_ReplaceItemInObject(root, "estimator", e);
  }
  char* out = cJSON_Print(root);
  cJSON_Delete(root);
  char path[512];
  snprintf(path, sizeof(path), "%s/%s.json", dir, name);
  FILE* f = fopen(path, "w");
  assert_non_null(f);
  fputs(out, f);
  fclose(f);
  free(out);
}

// the accessors of the opaque fit: sizes consistent with the layout, settings resolved, and the
// damping's setter refusing what LM cannot use and steering the next step
static void test_accessors(void** state) {
  (void)state;
  dsoTask* task = load_task();
  dsoDataset* ds = record(task, 2, 60, 0, 5, 1);
  dsoEstimFit* f = make_fit(task, ds, "{\"corrector\": \"gain\", \"lambda0\": 0.02}");
  dsoError err = {0};
  const dsoTheta* th = dso_estimfit_theta(f);
  const dsoCorrector* cor = dso_estimfit_corrector(f);
  int n = dso_estimfit_n(f), off_c = dso_estimfit_corrector_start(f);
  assert_int_equal(n, th->n);
  assert_int_equal(off_c, task->theta->n);
  assert_int_equal(off_c + cor->np, n);
  assert_int_equal(cor->kind, DSO_CORRECTOR_GAIN);
  int p = dso_estimfit_nfitted(f);
  const int* fitted = dso_estimfit_fitted(f);
  assert_true(p > cor->np && p <= n);  // the corrector and some physics
  for (int c = 0; c < p; c++) {
    assert_true(fitted[c] >= 0 && fitted[c] < n && !th->entry[fitted[c]].fixed);
    assert_true(c == 0 || fitted[c] > fitted[c - 1]);
  }
  long steps = 0;
  for (int k = 0; k < ds->nepisode; k++) {
    steps += ds->episode[k].T - 1;
  }
  assert_true(dso_estimfit_nres(f) == steps * task->model->nsensordata);
  assert_true(dso_estimfit_nprior(f) >= 0);
  const dsoEstimFitSettings* set = dso_estimfit_settings(f);
  assert_true(set->lambda0 == 0.02 && set->ns == task->model->nsensordata);
  for (int i = 0; i < set->ns; i++) {
    assert_true(isfinite(set->sensor_std[i]) && set->sensor_std[i] > 0);
  }
  for (int a = 0; a < set->nu; a++) {
    assert_true(isfinite(set->process_std[a]));
  }
  assert_true(dso_estimfit_lambda(f) == 0.02);
  const double bad[4] = {0.0, -1.0, NAN, INFINITY};
  for (int k = 0; k < 4; k++) {
    memset(&err, 0, sizeof(err));
    assert_int_equal(dso_estimfit_set_lambda(f, bad[k], &err), DSO_ERR_INPUT);
    assert_non_null(strstr(err.msg, "lambda"));
    assert_true(dso_estimfit_lambda(f) == 0.02);
  }
  assert_int_equal(dso_estimfit_set_lambda(f, 0.5, &err), DSO_OK);
  assert_true(dso_estimfit_lambda(f) == 0.5);
  // one LM iteration starts from the damping set: accepted at 0.5 (then 0.05) or raised tenfold
  double* u = calloc((size_t)n, sizeof(double));
  dso_estimfit_init(f, u, NULL);
  dsoEstimFitReport rep;
  int done = 0;
  assert_int_equal(dso_estimfit_step(f, u, &rep, &done, &err), DSO_OK);
  assert_true(rep.lambda == dso_estimfit_lambda(f));
  assert_true(rep.lambda == 0.5 / 10 || rep.lambda >= 5.0);
  free(u);
  dso_estimfit_free(f);
  dso_dataset_free(ds);
  dso_task_free(task);
}

// bad "estimator" sections and a task without data: exit 2 with the key named
static void test_bad_sections(void** state) {
  char dir[2048];
  assert_int_equal(dso_test_mkdtemp(dir, sizeof(dir), "dso_test_app_estim"), 0);
  dsoTask* task = load_task();
  dsoDataset* ds = record(task, 3, 50, 1, 5, 0);
  char path[600], args[1400];
  snprintf(path, sizeof(path), "%s/data.csv", dir);
  dsoError err = {0};
  assert_int_equal(dso_dataset_write_csv(path, ds, task->model, &err), DSO_OK);
  const char* bad[][2] = {
      {"{\"corector\": \"gain\"}", "estimator: unknown key \"corector\"; valid keys: corrector"},
      {"{\"corrector\": \"ukf\"}", "estimator.corrector: unknown corrector \"ukf\"; valid: gain, mlp"},
      {"{\"corrector\": \"gain\", \"hidden\": [4]}", "estimator.hidden: applies to"},
      {"{\"corrector\": \"mlp\", \"hidden\": [0]}", "estimator.hidden[0]"},
      {"{\"max_iter\": -1}", "estimator.max_iter"},
      {"{\"lambda0\": 0}", "estimator.lambda0"},
      {"{\"sensor_std\": {\"hinge_vel\": 0.1}}", "estimator.sensor_std.hinge_vel: no sensor"},
      {"{\"sensor_std\": {\"hinge_pos\": -1}}", "estimator.sensor_std.hinge_pos: expected"},
      {"{\"process_std\": {\"motor\": 0.1}}", "estimator.process_std.motor: no actuator"},
      {"{\"compare_ekf\": 1}", "compare_ekf"},
  };
  for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
    write_task(dir, "bad", bad[k][0]);
    snprintf(args, sizeof(args), "run %s/bad.json -o %s/out", dir, dir);
    int st = run(args);
    if (st != 2 || !strstr(g_err, bad[k][1])) {
      fprintf(stderr, "case %zu: status %d: %s\n", k, st, g_err);
    }
    assert_int_equal(st, 2);
    assert_non_null(strstr(g_err, bad[k][1]));
  }
  // a task without data
  write_task(dir, "nodata", NULL);
  snprintf(path, sizeof(path), "%s/nodata.json", dir);
  char* text = dso_read_text_file(path, NULL);
  cJSON* root = cJSON_Parse(text);
  free(text);
  cJSON_DeleteItemFromObject(root, "data");
  text = cJSON_Print(root);
  cJSON_Delete(root);
  FILE* f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
  free(text);
  snprintf(args, sizeof(args), "run %s/nodata.json -o %s/out", dir, dir);
  assert_int_equal(run(args), 2);
  assert_non_null(strstr(g_err, "needs a \"data\" section"));
  dso_dataset_free(ds);
  dso_task_free(task);
  assert_int_equal(dso_test_rmtree(dir), 0);
}

// learns on layout th from u0 and returns the RMS state error on the validation episodes
static double learned_rms(const dsoTask* task, const dsoTheta* th, const double* u0,
                          const dsoDataset* ds, const char* json, int max_iter, double* mass) {
  dsoError err = {0};
  dsoEstimFitSettings s;
  assert_int_equal(dso_estimfit_settings_from_json(&s, task->model, json, "test", &err), DSO_OK);
  dsoEstimFit* f = dso_estimfit_create(task->model, th, ds, &s, &err);
  dso_estimfit_settings_free(&s);
  assert_non_null(f);
  double* u = calloc((size_t)dso_estimfit_n(f), sizeof(double));
  dso_estimfit_init(f, u, u0);
  double rms = 0;
  assert_int_equal(dso_estimfit_learn(f, u, max_iter, NULL, NULL, &err), DSO_OK);
  assert_int_equal(dso_estimfit_state_rms(&rms, NULL, f, u, DSO_SELECT_VALIDATION, &err), DSO_OK);
  const dsoTheta* th_f = dso_estimfit_theta(f);
  int im = dso_theta_find(th_f, "physics.arm.mass");
  if (mass) {
    *mass = dso_theta_entry_natural(&th_f->entry[im], u[im]);
  }
  free(u);
  dso_estimfit_free(f);
  return rms;
}

// the EKF's RMS on the validation episodes with the model at u0 on layout th
static double ekf_rms(const dsoTask* task, const dsoTheta* th, const double* u0,
                      const dsoDataset* ds) {
  dsoError err = {0};
  dsoEstimFitSettings s;
  assert_int_equal(dso_estimfit_settings_from_json(&s, task->model, NULL, "test", &err), DSO_OK);
  dsoEstimFit* g = dso_estimfit_create(task->model, th, ds, &s, &err);
  dso_estimfit_settings_free(&s);
  assert_non_null(g);
  double* u = calloc((size_t)dso_estimfit_n(g), sizeof(double));
  dso_estimfit_init(g, u, u0);
  double rms = 0;
  assert_int_equal(dso_estimfit_ekf_rms(&rms, g, u, DSO_SELECT_VALIDATION, &err), DSO_OK);
  free(u);
  dso_estimfit_free(g);
  return rms;
}

// the acceptance of application 4 with short budgets: learned gain and MLP corrector with the
// true model within 10% of the EKF that knows it; learned from the wrong model together with
// the physics, better than the EKF with the wrong model (fixed seed; a deterministic comparison
// on 1600 validation steps)
static void test_pendulum_comparison(void** state) {
  double t0 = now();
  dsoTask* task = load_task();
  dsoDataset* ds = record(task, 12, 400, 4, 1, 1);
  dsoError err = {0};
  int n = task->theta->n;
  double* u0 = calloc((size_t)n, sizeof(double));
  double* ut = calloc((size_t)n, sizeof(double));
  dso_theta_init(task->theta, u0);
  memcpy(ut, u0, sizeof(double) * (size_t)n);
  assert_int_equal(dso_theta_from_json(task->theta, ut, kTruth, "truth", &err), DSO_OK);
  dsoTheta* held = dso_estimfit_hold(task->theta, ut, &err);
  assert_non_null(held);
  double ekf_true = ekf_rms(task, held, ut, ds), ekf_wrong = ekf_rms(task, task->theta, u0, ds);
  const char* mlp = "{\"corrector\": \"mlp\", \"hidden\": [16]}";
  double gain_true = learned_rms(task, held, ut, ds, "{\"corrector\": \"gain\"}", 20, NULL);
  double mlp_true = learned_rms(task, held, ut, ds, mlp, 20, NULL);
  double m_gain = 0, m_mlp = 0;
  double gain_joint = learned_rms(task, task->theta, u0, ds, "{\"corrector\": \"gain\"}", 20,
                                  &m_gain);
  double mlp_joint = learned_rms(task, task->theta, u0, ds, mlp, 20, &m_mlp);
  printf("RMS state error on 4 validation episodes of 400 steps:\n"
         "  EKF true model %.5f, EKF wrong model %.5f\n"
         "  gain, true model %.5f (%.3f x EKF), MLP, true model %.5f (%.3f x EKF)\n"
         "  gain + physics from wrong %.5f (mass %.4f), MLP + physics from wrong %.5f (mass "
         "%.4f)\n", ekf_true, ekf_wrong, gain_true, gain_true / ekf_true, mlp_true,
         mlp_true / ekf_true, gain_joint, m_gain, mlp_joint, m_mlp);
  assert_true(gain_true < 1.10 * ekf_true);
  assert_true(mlp_true < 1.10 * ekf_true);
  assert_true(gain_joint < ekf_wrong && mlp_joint < ekf_wrong);
  assert_true(gain_joint < 1.10 * ekf_true && mlp_joint < 1.10 * ekf_true);
  assert_true(fabs(m_gain - 0.1476) < 0.05 * 0.1476 && fabs(m_mlp - 0.1476) < 0.05 * 0.1476);
  assert_true(ekf_wrong > 1.2 * ekf_true);  // the wrong model matters
  dso_theta_free(held);
  free(u0);
  free(ut);
  dso_dataset_free(ds);
  dso_task_free(task);
  printf("test time %.2f s\n", now() - t0);
}

// dso run on the task end to end: outputs, the comparison in result.json, and a run interrupted
// after 2 iterations and resumed ends bit-identical to an uninterrupted one
static void test_run_and_resume(void** state) {
  char dir[2048];
  assert_int_equal(dso_test_mkdtemp(dir, sizeof(dir), "dso_test_app_estim"), 0);
  dsoTask* task = load_task();
  dsoDataset* ds = record(task, 6, 200, 2, 3, 0);
  char path[600], args[1400];
  snprintf(path, sizeof(path), "%s/data.csv", dir);
  dsoError err = {0};
  assert_int_equal(dso_dataset_write_csv(path, ds, task->model, &err), DSO_OK);
  write_task(dir, "task", "{\"corrector\": \"mlp\", \"hidden\": [6], \"max_iter\": 5}");
  snprintf(args, sizeof(args), "run %s/task.json -o %s/full", dir, dir);
  int st = run(args);
  if (st) {
    fprintf(stderr, "%s%s", g_out, g_err);
  }
  assert_int_equal(st, 0);
  assert_non_null(strstr(g_out, "iter   1"));
  assert_non_null(strstr(g_out, "EKF, initial model"));
  const char* outs[] = {"result.json", "progress.csv", "checkpoint.json", "model.xml"};
  for (int i = 0; i < 4; i++) {
    snprintf(path, sizeof(path), "%s/full/%s", dir, outs[i]);
    char* text = dso_read_text_file(path, NULL);
    assert_non_null(text);
    if (i == 0) {
      assert_non_null(strstr(text, "\"corrector.W0[0,0]\""));
      assert_non_null(strstr(text, "\"physics.arm.mass\""));
      assert_non_null(strstr(text, "\"ekf_initial_model\""));
      assert_non_null(strstr(text, "\"ekf_learned_model\""));
    }
    free(text);
  }
  snprintf(args, sizeof(args), "run %s/task.json -o %s/part --max-iter 2 --quiet", dir, dir);
  assert_int_equal(run(args), 0);
  snprintf(args, sizeof(args), "run %s/task.json -o %s/part --resume --quiet", dir, dir);
  assert_int_equal(run(args), 0);
  snprintf(path, sizeof(path), "%s/full/checkpoint.json", dir);
  char* a = dso_read_text_file(path, NULL);
  snprintf(path, sizeof(path), "%s/part/checkpoint.json", dir);
  char* b = dso_read_text_file(path, NULL);
  assert_non_null(a);
  assert_non_null(b);
  assert_string_equal(a, b);
  free(a);
  free(b);
  dso_dataset_free(ds);
  dso_task_free(task);
  assert_int_equal(dso_test_rmtree(dir), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_jacobian),
      cmocka_unit_test(test_accessors),
      cmocka_unit_test(test_bad_sections),
      cmocka_unit_test(test_pendulum_comparison),
      cmocka_unit_test(test_run_and_resume),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
