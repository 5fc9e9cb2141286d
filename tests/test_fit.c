// Least-squares fits of θ (fit.h): synthetic system identification and sensor calibration with
// known truth, the real free-swing pendulum recording, settings parsing and thread determinism.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "test_util.h"

#include "dso_internal.h"
#include "apps/fit.h"
#include "config/fit_section.h"
#include "config/json.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static mjModel* load_model(const char* name) {
  char path[512];
  snprintf(path, sizeof(path), "%s/models/%s", DSO_SOURCE_DIR, name);
  dsoError err = {0};
  mjModel* m = dso_mj_load(path, &err);
  if (!m) {
    fprintf(stderr, "%s\n", err.msg);
  }
  assert_non_null(m);
  return m;
}

// θ layout from "name=init" pairs (default transforms)
static dsoTheta* layout(const mjModel* m, const char* const* names, const double* init, int n) {
  dsoThetaEntry* e = (dsoThetaEntry*)calloc((size_t)n, sizeof(dsoThetaEntry));
  dsoError err = {0};
  for (int i = 0; i < n; i++) {
    char js[256];
    snprintf(js, sizeof(js), "{\"name\": \"%s\", \"init\": %.17g}", names[i], init[i]);
    if (dso_task_parse_entry(&e[i], m, js, "test", "theta", &err) != DSO_OK) {
      fprintf(stderr, "%s\n", err.msg);
      fail();
    }
  }
  dsoTheta* th = dso_theta_create(e, n, &err);
  free(e);
  assert_non_null(th);
  return th;
}

// Records nep episodes of T samples from m with θ = truth: excitation ctrl piecewise constant
// (uniform in [-amp, amp], held for hold steps), Gaussian noise of std qnoise on qpos and on
// qvel and snoise on sensors (after gain and offset). Every qpos, qvel, ctrl and sensor is recorded.
static dsoDataset* record(const mjModel* m, const dsoTheta* th, const double* u, int nep, int T,
                          int hold, double amp, double qnoise, double snoise, uint64_t seed) {
  dsoError err = {0};
  dsoDataset* ds = NULL;
  assert_int_equal(dso_dataset_create(&ds, m, &err), DSO_OK);
  dsoSim* sim = dso_sim_create(m, &err);
  assert_non_null(sim);
  assert_int_equal(dso_sim_write(sim, th, u, &err), DSO_OK);
  dsoRng rng;
  dso_rng_seed(&rng, seed, 0, 0);
  double* y = (double*)calloc((size_t)m->nsensordata + 1, sizeof(double));
  for (int n = 0; n < nep; n++) {
    int k = dso_dataset_add_episode(ds, m, T, &err);
    assert_true(k >= 0);
    dsoEpisode* ep = &ds->episode[k];
    dso_sim_reset(sim);
    for (int i = 0; i < m->nq; i++) {
      dso_sim_data(sim)->qpos[i] = 0.5 * (2 * dso_rng_uniform(&rng) - 1);
    }
    for (int t = 0; t < T; t++) {
      if (t % hold == 0) {
        for (int i = 0; i < m->nu; i++) {
          dso_sim_data(sim)->ctrl[i] = amp * (2 * dso_rng_uniform(&rng) - 1);
        }
      }
      mj_forward(dso_sim_model(sim), dso_sim_data(sim));
      dso_sim_measure(sim, y);
      ep->time[t] = t * m->opt.timestep;
      for (int i = 0; i < m->nq; i++) {
        ep->qpos[t * m->nq + i] = dso_sim_data(sim)->qpos[i] + qnoise * dso_rng_normal(&rng);
      }
      for (int i = 0; i < m->nv; i++) {
        ep->qvel[t * m->nv + i] = dso_sim_data(sim)->qvel[i] + qnoise * dso_rng_normal(&rng);
      }
      for (int i = 0; i < m->nu; i++) {
        ep->ctrl[t * m->nu + i] = dso_sim_data(sim)->ctrl[i];
      }
      for (int i = 0; i < m->nsensordata; i++) {
        ep->sensordata[t * m->nsensordata + i] = y[i] + snoise * dso_rng_normal(&rng);
      }
      assert_int_equal(dso_sim_step(sim, &err), DSO_OK);
    }
  }
  for (int g = 0; g < DSO_NDATA; g++) {
    int len = g == DSO_DATA_QPOS ? m->nq : g == DSO_DATA_QVEL ? m->nv
              : g == DSO_DATA_CTRL ? m->nu : m->nsensordata;
    for (int i = 0; i < len; i++) {
      ds->has[g][i] = 1;
    }
  }
  ds->dt = m->opt.timestep;
  free(y);
  dso_sim_free(sim);
  return ds;
}

// runs LM until done or max_iter; returns the iterations
static int run_fit(dsoFit* f, double* u, int max_iter, dsoFitReport* rep) {
  dsoError err = {0};
  int done = 0, it = 0;
  while (!done && it < max_iter) {
    if (dso_fit_step(f, u, rep, &done, &err) != DSO_OK) {
      fprintf(stderr, "%s\n", err.msg);
      fail();
    }
    it++;
  }
  return it;
}

// ---------------------------------------------------------------------------------------------
// 1. system identification on arm2 with hidden true values, starting 30% off

static const char* const kArmNames[] = {
    "physics.upper_arm.mass",      "physics.forearm.mass",     "physics.shoulder.damping",
    "physics.elbow.damping",       "physics.shoulder.frictionloss",
    "physics.elbow.frictionloss",  "physics.shoulder.armature", "physics.elbow.armature",
    "physics.shoulder_torque.gear[0]", "physics.elbow.force"};
static const double kArmTrue[] = {1.2, 0.5, 0.08, 0.04, 0.06, 0.02, 0.006, 0.0025, 9.0, 0.3};
#define NARM 10

static void sysid_case(double qnoise, int check_se) {
  mjModel* m = load_model("arm2.xml");
  dsoTheta* truth = layout(m, kArmNames, kArmTrue, NARM);
  double ut[NARM], u[NARM], start[NARM], se[NARM], cov[NARM * NARM];
  dso_theta_init(truth, ut);
  dsoDataset* ds = record(m, truth, ut, 3, 1500, 40, 1.0, qnoise, 0, 11);
  for (int i = 0; i < NARM; i++) {
    start[i] = kArmTrue[i] * (i % 2 ? 0.7 : 1.3);
  }
  dsoTheta* th = layout(m, kArmNames, start, NARM);
  dso_theta_init(th, u);
  dsoFitSettings s;
  dso_fit_settings_default(&s);
  s.window = 50;
  s.sensors = 0;
  dsoError err = {0};
  dsoFit* f = dso_fit_create(m, th, ds, &s, &err);
  if (!f) {
    fprintf(stderr, "%s\n", err.msg);
  }
  assert_non_null(f);
  dsoFitReport r0, rep;
  assert_int_equal(dso_fit_evaluate(f, u, &r0, &err), DSO_OK);
  double t0 = now();
  int it = run_fit(f, u, 40, &rep);
  double dt = now() - t0;
  printf("arm2 sysid (qpos noise %g, window %d): cost %.6g -> %.6g in %d LM steps, %.2f s, "
         "%ld mj_step (%.0f steps/s), %d residuals\n",
         qnoise, s.window, r0.cost, rep.cost, it, dt, rep.steps, rep.steps / dt, rep.nresidual);
  int cs = dso_fit_covariance(f, u, cov, se, &err);
  if (cs != DSO_OK) {
    fprintf(stderr, "%s\n", err.msg);
  }
  assert_int_equal(cs, DSO_OK);
  double v[NARM];
  dso_theta_natural(th, v, u);
  printf("  %-32s %10s %10s %10s %8s %10s %7s\n", "entry", "true", "start", "fitted", "err %",
         "se", "z");
  for (int i = 0; i < NARM; i++) {
    double rel = (v[i] - kArmTrue[i]) / kArmTrue[i];
    double z = (v[i] - kArmTrue[i]) / se[i];
    printf("  %-32s %10.5g %10.5g %10.6g %8.4f %10.3g %7.2f\n", kArmNames[i], kArmTrue[i],
           start[i], v[i], 100 * rel, se[i], z);
    assert_true(fabs(rel) < 0.02);
    assert_true(isfinite(se[i]) && se[i] > 0);
    if (check_se) {
      assert_true(fabs(z) < 4);
    }
  }
  dso_fit_free(f);
  dso_theta_free(th);
  dso_theta_free(truth);
  dso_dataset_free(ds);
  mj_deleteModel(m);
}

static void test_sysid_exact(void** state) {
  (void)state;
  sysid_case(0, 0);
}

// with noisy records the window starts carry the noise too, so the residuals of a window are
// correlated: the default standard errors (the window jackknife, 90 windows for 10 entries) put
// the truth within 4 of them (measured: |z| <= 1.6; the classic s² (JᵀJ)⁻¹ put it 3.5-7 away)
static void test_sysid_noise(void** state) {
  (void)state;
  sysid_case(1e-4, 1);
}

// ---------------------------------------------------------------------------------------------
// 2. sensor calibration: per-channel gains and offsets of arm2's sensors, starting 30% off

static const char* const kCalNames[] = {
    "sensor.shoulder_pos.gain", "sensor.shoulder_pos.offset", "sensor.elbow_pos.gain",
    "sensor.elbow_pos.offset",  "sensor.shoulder_vel.gain",   "sensor.shoulder_vel.offset",
    "sensor.elbow_vel.gain",    "sensor.elbow_vel.offset",    "sensor.ee_pos.gain[0]",
    "sensor.ee_pos.offset[0]",  "sensor.ee_pos.gain[2]",      "sensor.ee_pos.offset[2]"};
static const double kCalTrue[] = {1.05, 0.05, 0.97, -0.03, 1.1, 0.1,
                                  0.9,  -0.2, 1.02, 0.01,  0.95, -0.02};
#define NCAL 12

static void test_calibration(void** state) {
  (void)state;
  mjModel* m = load_model("arm2.xml");
  dsoTheta* truth = layout(m, kCalNames, kCalTrue, NCAL);
  double ut[NCAL], u[NCAL], start[NCAL], se[NCAL], v[NCAL];
  dso_theta_init(truth, ut);
  const double snoise = 1e-3;
  dsoDataset* ds = record(m, truth, ut, 2, 1000, 40, 1.0, 0, snoise, 23);
  int ee = mj_name2id(m, mjOBJ_SENSOR, "ee_pos");
  ds->has[DSO_DATA_SENSOR][m->sensor_adr[ee] + 1] = 0;  // y of a planar arm: always 0
  for (int i = 0; i < NCAL; i++) {
    start[i] = kCalTrue[i] * (i % 4 < 2 ? 1.3 : 0.7);
  }
  dsoTheta* th = layout(m, kCalNames, start, NCAL);
  dso_theta_init(th, u);
  dsoFitSettings s;
  dso_fit_settings_default(&s);
  dsoError err = {0};
  dsoFit* f = dso_fit_create(m, th, ds, &s, &err);
  assert_non_null(f);
  dsoFitReport rep;
  double t0 = now();
  int it = run_fit(f, u, 30, &rep);
  printf("arm2 calibration (sensor noise %g): cost %.6g (calib %.6g) after %d LM steps, %.2f s\n",
         snoise, rep.cost, rep.cost_calib, it, now() - t0);
  assert_int_equal(dso_fit_covariance(f, u, NULL, se, &err), DSO_OK);
  dso_theta_natural(th, v, u);
  printf("  %-28s %9s %9s %11s %9s %9s %6s\n", "entry", "true", "start", "fitted", "err %",
         "se", "z");
  for (int i = 0; i < NCAL; i++) {
    double rel = (v[i] - kCalTrue[i]) / fabs(kCalTrue[i]);
    double z = (v[i] - kCalTrue[i]) / se[i];
    printf("  %-28s %9.4g %9.4g %11.7g %9.5f %9.2g %6.2f\n", kCalNames[i], kCalTrue[i], start[i],
           v[i], 100 * rel, se[i], z);
    assert_true(fabs(rel) < 0.02);
    // the model is exact here: the truth is within 4 standard errors
    assert_true(isfinite(se[i]) && se[i] > 0 && fabs(z) < 4);
  }
  dso_fit_free(f);
  dso_theta_free(th);
  dso_theta_free(truth);
  dso_dataset_free(ds);
  mj_deleteModel(m);
}

// ---------------------------------------------------------------------------------------------
// 3. the real free-swing pendulum (tasks/pendulum_sysid.json)

// LM steps on the real data: enough to settle the cost (the test budget is ~30 s in all)
static const int kRealIter = 12;

static void test_real_pendulum(void** state) {
  (void)state;
  dsoError err = {0};
  dsoTask* task = dso_task_load(DSO_SOURCE_DIR "/tasks/pendulum_sysid.json", &err);
  if (!task) {
    fprintf(stderr, "%s\n", err.msg);
  }
  assert_non_null(task);
  assert_non_null(task->data);
  dsoFitSettings s;
  dso_fit_settings_default(&s);
  if (task->fit) s = *task->fit;  // the task's "fit" section, read at load
  const dsoTheta* th = task->theta;
  dsoFit* f = dso_fit_create(task->model, th, task->data, &s, &err);
  if (!f) {
    fprintf(stderr, "%s\n", err.msg);
  }
  assert_non_null(f);
  int n = th->n, nval = dso_fit_nvalidation(f);
  double* u = (double*)calloc((size_t)n, sizeof(double));
  double* v = (double*)calloc((size_t)n, sizeof(double));
  double* se = (double*)calloc((size_t)n, sizeof(double));
  double* rms0 = (double*)calloc((size_t)nval, sizeof(double));
  double* rms1 = (double*)calloc((size_t)nval, sizeof(double));
  dso_theta_init(th, u);
  int hinge = task->model->jnt_qposadr[mj_name2id(task->model, mjOBJ_JOINT, "hinge")];
  double tot0, tot1;
  assert_int_equal(dso_fit_validation(f, u, hinge, rms0, nval, &tot0, &err), DSO_OK);
  dsoFitReport r0, rep;
  assert_int_equal(dso_fit_evaluate(f, u, &r0, &err), DSO_OK);
  double t0 = now();
  int it = 0, done = 0;
  while (!done && it < kRealIter) {
    assert_int_equal(dso_fit_step(f, u, &rep, &done, &err), DSO_OK);
    printf("  LM step %2d: cost %.8g (sysid %.8g), lambda %.3g, |J'r| %.3g\n", ++it, rep.cost,
           rep.cost_sysid, rep.lambda, rep.grad_norm);
  }
  double dt = now() - t0;
  printf("pendulum (real data, window %d, %d threads): cost %.6g -> %.6g in %d LM steps, "
         "%.2f s, %ld mj_step (%.0f steps/s), %d residuals\n",
         s.window, s.threads, r0.cost, rep.cost, it, dt, rep.steps, rep.steps / dt,
         rep.nresidual);
  assert_int_equal(dso_fit_validation(f, u, hinge, rms1, nval, &tot1, &err), DSO_OK);
  dsoStatus cs = dso_fit_covariance(f, u, NULL, se, &err);
  if (cs != DSO_OK) {
    printf("  covariance: %s\n", err.msg);
    dso_error_clear(&err);
  }
  dso_theta_natural(th, v, u);
  for (int i = 0; i < n; i++) {
    printf("  %-30s init %-10.5g fitted %-12.6g se %.3g%s\n", th->entry[i].name, th->entry[i].init,
           v[i], se[i],
           th->entry[i].fixed || th->entry[i].block > DSO_BLOCK_SENSOR ||
                   th->entry[i].block == DSO_BLOCK_SENSOR
               ? " (held)"
               : (cs != DSO_OK ? " (no covariance)" : ""));
  }
  for (int k = 0; k < nval; k++) {
    printf("  validation episode %d: RMS angle error %.4f rad at the initial θ, %.4f rad fitted\n",
           k, rms0[k], rms1[k]);
  }
  printf("  validation overall: %.4f rad -> %.4f rad\n", tot0, tot1);
  assert_true(tot1 < tot0);
  assert_true(tot1 < 0.1);
  free(u);
  free(v);
  free(se);
  free(rms0);
  free(rms1);
  dso_fit_free(f);
  dso_task_free(task);
}

// ---------------------------------------------------------------------------------------------
// 4. settings and determinism

static void expect_bad(const char* json, const char* needle) {
  dsoFitSettings s;
  dsoError err = {0};
  assert_int_not_equal(dso_fit_settings_from_json(&s, json, "task.json", &err), DSO_OK);
  if (!strstr(err.msg, needle)) {
    fprintf(stderr, "message \"%s\" lacks \"%s\"\n", err.msg, needle);
    fail();
  }
  assert_non_null(strstr(err.msg, "task.json"));
  assert_int_equal(s.window, 100);  // defaults on failure
}

static void test_settings(void** state) {
  (void)state;
  dsoFitSettings s;
  dsoError err = {0};
  assert_int_equal(dso_fit_settings_from_json(&s,
                                              "{\"window\": 20, \"max_iter\": 7, \"tol\": 0,"
                                              " \"lambda0\": 0.5, \"qpos_scale\": 0.02,"
                                              " \"qvel_scale\": 0.3, \"sensors\": false,"
                                              " \"threads\": 3}",
                                              "task.json", &err),
                   DSO_OK);
  assert_int_equal(s.window, 20);
  assert_int_equal(s.max_iter, 7);
  assert_true(s.tol == 0 && s.lambda0 == 0.5 && s.qpos_scale == 0.02 && s.qvel_scale == 0.3);
  assert_int_equal(s.sensors, 0);
  assert_int_equal(s.threads, 3);
  assert_int_equal(s.jacobian, DSO_FIT_JACOBIAN_FORWARD);
  assert_int_equal(dso_fit_settings_from_json(&s, "{\"jacobian\": \"central\"}", "task.json",
                                              &err), DSO_OK);
  assert_int_equal(s.jacobian, DSO_FIT_JACOBIAN_CENTRAL);
  assert_int_equal(dso_fit_settings_from_json(&s, NULL, "task.json", &err), DSO_OK);
  assert_int_equal(s.window, 100);
  assert_int_equal(s.jacobian, DSO_FIT_JACOBIAN_FORWARD);
  expect_bad("{\"windw\": 10}", "windw");
  expect_bad("{\"windw\": 10}", "window");  // lists the valid keys
  expect_bad("{\"window\": 0}", "fit.window");
  expect_bad("{\"window\": 2.5}", "integer");
  expect_bad("{\"threads\": 0}", "fit.threads");
  expect_bad("{\"lambda0\": -1}", "fit.lambda0");
  expect_bad("{\"qpos_scale\": 0}", "expected a number > 0");
  expect_bad("{\"tol\": \"small\"}", "fit.tol");
  expect_bad("{\"sensors\": 1}", "fit.sensors");
  expect_bad("{\"jacobian\": \"backward\"}", "fit.jacobian");
  expect_bad("{\"jacobian\": 1}", "fit.jacobian");
  expect_bad("[1, 2]", "object");
  expect_bad("{\"window\": 10", "task.json");
}

// writes text into a new task file under the build folder; its path into path (len bytes)
static void write_task(char* path, size_t len, const char* text) {
  int fd = dso_test_mkstemps(path, len, "fit_task", ".json");
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (long)strlen(text));
  close(fd);
}

// the "fit" section is read at load into typed settings (config/fit_section.h): task->fit, and
// its "inverse_dynamics" into task->invdyn, which task->fit->invdyn points at; a bad value stops
// the load with the message of the section's reader
static void test_task_sections(void** state) {
  (void)state;
  dsoError err = {0};
  dsoTask* t = dso_task_load_flags(DSO_SOURCE_DIR "/tasks/arm_sysid.json", DSO_TASK_SKIP_DATA,
                                   &err);
  assert_non_null(t);
  assert_non_null(t->fit);
  assert_int_equal(t->fit->window, 100);
  assert_int_equal(t->fit->max_iter, 30);
  assert_true(t->fit->lambda0 == 1e-3 && t->fit->qpos_scale == 0.01 && t->fit->sensors);
  assert_null(t->fit->invdyn);
  assert_null(t->invdyn);
  assert_null(t->train);
  assert_null(t->estimator);
  dso_task_free(t);
  t = dso_task_load_flags(DSO_SOURCE_DIR "/tasks/arm7_invdyn.json", DSO_TASK_SKIP_DATA, &err);
  assert_non_null(t);
  assert_int_equal(t->fit->max_iter, 20);
  assert_non_null(t->invdyn);
  assert_ptr_equal(t->fit->invdyn, t->invdyn);
  assert_true(t->invdyn->cutoff == 10 && t->invdyn->stride == 2 && t->invdyn->min_speed == 0.3);
  assert_int_equal(t->invdyn->order, 4);  // the default
  assert_int_equal(t->invdyn->nv, t->model->nv);
  assert_true(t->invdyn->torque_scale[0] == 1 && t->invdyn->torque_scale[4] == 0.25);
  dso_task_free(t);

  const char* bad[][2] = {
      {"{\"inverse_dynamics\": {\"torque_scale\": {\"joint2\": 0}}}",
       "fit.inverse_dynamics.torque_scale.joint2: expected a number > 0, got 0"},
      {"{\"window\": 0}", "fit.window: expected an integer in [1, 1e+09], got 0"},
      {"[1]", "fit: expected an object, got an array"},
  };
  for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
    char path[1024], text[1024];
    snprintf(text, sizeof(text), "{\"model\": \"%s/models/arm7.xml\", \"fit\": %s}",
             DSO_SOURCE_DIR, bad[k][0]);
    write_task(path, sizeof(path), text);
    dsoError e1 = {0}, e2 = {0};
    assert_null(dso_task_load(path, &e1));
    assert_int_equal(e1.code, DSO_ERR_INPUT);
    char expect[2048];
    snprintf(expect, sizeof(expect), "%s: %s", path, bad[k][1]);
    assert_string_equal(e1.msg, expect);
    // the text readers say the same of the section alone
    mjModel* m = load_model("arm7.xml");
    dsoFitSettings fs;
    dsoInvdynSettings is;
    dsoStatus st = dso_fit_settings_from_json(&fs, bad[k][0], path, &e2);
    if (!st) {
      st = dso_invdyn_settings_from_json(&is, NULL, m, bad[k][0], path, &e2);
      dso_invdyn_settings_free(&is);  // after any call (fit_section.h)
    }
    assert_int_equal(st, DSO_ERR_INPUT);
    assert_string_equal(e2.msg, expect);
    mj_deleteModel(m);
    remove(path);
  }
}

static void test_create_errors(void** state) {
  (void)state;
  mjModel* m = load_model("pendulum.xml");
  const char* names[] = {"physics.hinge.damping"};
  double init[] = {1e-3};
  dsoTheta* th = layout(m, names, init, 1);
  double u[1];
  dso_theta_init(th, u);
  dsoDataset* ds = record(m, th, u, 1, 50, 10, 0.5, 0, 0, 3);
  dsoFitSettings s;
  dso_fit_settings_default(&s);
  dsoError err = {0};
  s.window = 0;
  assert_null(dso_fit_create(m, th, ds, &s, &err));
  assert_non_null(strstr(err.msg, "window"));
  dso_fit_settings_default(&s);
  dso_error_clear(&err);
  ds->dt = 0.01;
  assert_null(dso_fit_create(m, th, ds, &s, &err));
  assert_non_null(strstr(err.msg, "timestep"));
  dso_error_clear(&err);
  dsoDataset* empty = NULL;
  assert_int_equal(dso_dataset_create(&empty, m, &err), DSO_OK);
  empty->dt = m->opt.timestep;
  assert_null(dso_fit_create(m, th, empty, &s, &err));
  assert_non_null(strstr(err.msg, "no episodes"));
  dso_dataset_free(empty);
  dso_dataset_free(ds);
  dso_theta_free(th);
  mj_deleteModel(m);
}

static void test_threads_bitwise(void** state) {
  (void)state;
  mjModel* m = load_model("pendulum.xml");
  const char* names[] = {"physics.hinge.damping", "physics.hinge.frictionloss",
                         "physics.hinge.armature", "physics.arm.com[2]"};
  double truth[] = {2e-3, 1e-3, 2e-5, -0.1};
  double start[] = {3e-3, 0.7e-3, 1.4e-5, -0.08};
  dsoTheta* tt = layout(m, names, truth, 4);
  dsoTheta* th = layout(m, names, start, 4);
  double ut[4], u[3][4];
  dso_theta_init(tt, ut);
  dsoDataset* ds = record(m, tt, ut, 2, 600, 50, 0.3, 1e-4, 0, 5);
  ds->episode[1].validation = 1;
  dsoFitReport rep[3];
  double lam[3];
  int threads[3] = {1, 2, 3};
  for (int k = 0; k < 3; k++) {
    dsoFitSettings s;
    dso_fit_settings_default(&s);
    s.window = 37;
    s.threads = threads[k];
    dsoError err = {0};
    dsoFit* f = dso_fit_create(m, th, ds, &s, &err);
    assert_non_null(f);
    dso_theta_init(th, u[k]);
    run_fit(f, u[k], 4, &rep[k]);
    lam[k] = dso_fit_lambda(f);
    dso_fit_free(f);
  }
  for (int k = 1; k < 3; k++) {
    assert_memory_equal(u[0], u[k], sizeof(u[0]));
    assert_memory_equal(&rep[0].cost, &rep[k].cost, sizeof(double));
    assert_memory_equal(&lam[0], &lam[k], sizeof(double));
  }
  printf("pendulum 4 LM steps with 1, 2 and 3 threads: bitwise equal, cost %.17g\n", rep[0].cost);
  dso_dataset_free(ds);
  dso_theta_free(th);
  dso_theta_free(tt);
  mj_deleteModel(m);
}

// dso_fit_simulate: the open-loop trajectory behind dso_fit_validation; at the true values it
// follows the noise-free recording, and its errors give the validation RMS per episode
static void test_simulate_episode(void** state) {
  (void)state;
  mjModel* m = load_model("pendulum.xml");
  const char* names[] = {"physics.hinge.damping", "physics.arm.com[2]"};
  double truth[] = {2e-3, -0.1};
  dsoTheta* th = layout(m, names, truth, 2);
  double ut[2], uoff[2];
  dso_theta_init(th, ut);
  dsoDataset* ds = record(m, th, ut, 3, 400, 40, 0.3, 0, 0, 7);
  ds->episode[2].validation = 1;
  dsoError err = {0};
  dsoFit* f = dso_fit_create(m, th, ds, NULL, &err);
  assert_non_null(f);
  assert_int_equal(dso_fit_nvalidation(f), 1);
  assert_int_equal(dso_fit_validation_episode(f, 0), 2);
  assert_int_equal(dso_fit_validation_episode(f, 1), -1);
  const dsoEpisode* ep = &ds->episode[2];
  double* q = calloc((size_t)ep->T * (size_t)m->nq, sizeof(double));
  assert_int_equal(dso_fit_simulate(f, ut, 2, q, &err), DSO_OK);
  double worst = 0;
  for (int t = 0; t < ep->T; t++) {
    worst = fmax(worst, fabs(q[t * m->nq] - ep->qpos[t * m->nq]));
  }
  assert_true(q[0] == ep->qpos[0]);  // row 0 is the recorded start
  assert_true(worst < 1e-9);
  // 20% off in damping: the RMS of the simulated errors is the validation RMS
  uoff[0] = ut[0] + log(1.2);
  uoff[1] = ut[1];
  assert_int_equal(dso_fit_simulate(f, uoff, 2, q, &err), DSO_OK);
  double s = 0, rms = 0, total = 0;
  for (int t = 1; t < ep->T; t++) {
    double d = q[t * m->nq] - ep->qpos[t * m->nq];
    s += d * d;
  }
  assert_int_equal(dso_fit_validation(f, uoff, 0, &rms, 1, &total, &err), DSO_OK);
  printf("simulated episode: at the true values max |error| %.3g rad; damping 20%% off: RMS "
         "%.6g rad (validation %.6g)\n", worst, sqrt(s / (ep->T - 1)), rms);
  assert_true(rms > 1e3 * worst);
  assert_true(fabs(sqrt(s / (ep->T - 1)) - rms) <= 1e-14 * rms);
  assert_int_equal(dso_fit_simulate(f, ut, 3, q, &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "episode 3 outside [0, 3)"));
  free(q);
  dso_fit_free(f);
  dso_dataset_free(ds);
  dso_theta_free(th);
  mj_deleteModel(m);
}

// ---------------------------------------------------------------------------------------------
// 5. arm_sysid (the main job's data) from 9 starts, bounds, honest standard errors, refusals

// the main job's dataset: `dso simulate tasks/arm_sysid.json --excitation 0.6 --validation 2
// --values tasks/truth/arm_sysid.json` (4 episodes of 500 samples, seed 5), made in memory
static dsoTask* arm_task(dsoDataset** ds, double* ut) {
  dsoError err = {0};
  dsoTask* task = dso_task_load_flags(DSO_SOURCE_DIR "/tasks/arm_sysid.json", DSO_TASK_SKIP_DATA,
                                      &err);
  assert_non_null(task);
  char* text = dso_read_text_file(DSO_SOURCE_DIR "/tasks/truth/arm_sysid.json", &err);
  assert_non_null(text);
  dso_theta_init(task->theta, ut);
  assert_int_equal(dso_theta_from_json(task->theta, ut, text, "truth", &err), DSO_OK);
  free(text);
  assert_int_equal(dso_simulate(ds, task, ut, 4, 500, 5, 0.6, 2, &err), DSO_OK);
  (*ds)->dt = task->model->opt.timestep;
  return task;
}

// 0.5x / 2x patterns of bench/bench_fit.c (mixed_pattern: alternating both ways, then a fair coin
// per entry from dso_rng seeded 1, 2, 3)
static void mixed_pattern(char* pat, int k, int n) {
  dsoRng rng;
  dso_rng_seed(&rng, (uint64_t)(k - 1), 0, 0);
  for (int i = 0; i < n; i++) {
    pat[i] = k == 0 ? (i % 2 ? 'H' : 'L') : k == 1 ? (i % 2 ? 'L' : 'H')
             : dso_rng_uniform(&rng) < 0.5 ? 'L' : 'H';
  }
  pat[n] = 0;
}

// mj_step calls to cost <= 1e-6 from the task's initial values before the bound-aware,
// forward-difference LM (central differences; measured with bench_fit at commit 8dde593)
static const long kArmSteps1e6Before = 110778;

static void test_arm_nine_starts(void** state) {
  (void)state;
  dsoDataset* ds = NULL;
  double ut[16], vt[16], u[16], v[16];
  dsoTask* task = arm_task(&ds, ut);
  const dsoTheta* th = task->theta;
  int n = th->n;
  assert_true(n <= 16);
  dso_theta_natural(th, vt, ut);
  dsoFitSettings s;
  dsoError err = {0};
  dso_fit_settings_default(&s);
  if (task->fit) s = *task->fit;  // the task's "fit" section, read at load
  assert_int_equal(s.jacobian, DSO_FIT_JACOBIAN_FORWARD);
  double t0 = now();
  for (int k = 0; k < 9; k++) {
    char pat[17] = "";
    if (k == 0) {
      dso_theta_init(th, u);
    } else {
      if (k >= 4) {
        mixed_pattern(pat, k - 4, n);
      }
      for (int i = 0; i < n; i++) {
        v[i] = vt[i] * (k == 1 ? 1.3 : k == 2 ? 2 : k == 3 ? 0.5 : pat[i] == 'L' ? 0.5 : 2);
      }
      assert_int_equal(dso_theta_unconstrained(th, u, v, &err), DSO_OK);
    }
    dsoFit* f = dso_fit_create(task->model, th, ds, &s, &err);
    assert_non_null(f);
    dsoFitReport rep;
    int it = 0, done = 0;
    long steps1e6 = -1;
    while (!done && it < s.max_iter) {
      assert_int_equal(dso_fit_step(f, u, &rep, &done, &err), DSO_OK);
      it++;
      if (steps1e6 < 0 && rep.cost <= 1e-6) {
        steps1e6 = rep.steps;
      }
    }
    dso_theta_natural(th, v, u);
    double worst = 0;
    for (int i = 0; i < n; i++) {
      worst = fmax(worst, fabs(v[i] - vt[i]) / fabs(vt[i]));
    }
    printf("arm_sysid start %d %-10s: cost %.3g after %d LM steps (stop %d), cost 1e-6 after "
           "%ld mj_step, worst relative error %.2e\n",
           k, pat, rep.cost, it, rep.stop, steps1e6, worst);
    assert_true(done && rep.stop == DSO_FIT_CONVERGED);
    assert_true(rep.cost <= 1e-6 && worst <= 1e-4);
    assert_int_equal(rep.nbound, 0);
    if (k == 0) {
      // issue 11: steps to 1e-6 at most 0.6x of the figure before
      assert_true(steps1e6 > 0 && steps1e6 <= 0.6 * kArmSteps1e6Before);
    }
    dso_fit_free(f);
  }
  printf("9 starts in %.1f s\n", now() - t0);
  dso_dataset_free(ds);
  dso_task_free(task);
}

// the truth on a bound: dry friction 0 in the data, fitted under the log transform (domain
// v > 0): the entry ends on its floor (1e-12 of its initial value), is reported at the bound with
// no standard error, while the other entries converge to the truth
static void test_bound_truth(void** state) {
  (void)state;
  mjModel* m = load_model("pendulum.xml");
  const char* names[] = {"physics.hinge.damping", "physics.hinge.frictionloss",
                         "physics.arm.com[2]"};
  double truth[] = {2e-3, 1e-3, -0.1};
  double start[] = {3e-3, 1e-3, -0.08};
  dsoTheta* tt = layout(m, names, truth, 3);
  dsoTheta* th = layout(m, names, start, 3);
  double ut[3], u[3], v[3], se[3];
  dso_theta_init(tt, ut);
  ut[1] = log(1e-300);  // frictionloss ~0 in the data
  dsoDataset* ds = record(m, tt, ut, 2, 600, 50, 0.3, 0, 0, 5);
  dsoFitSettings s;
  dso_fit_settings_default(&s);
  s.window = 50;
  s.sensors = 0;
  dsoError err = {0};
  dsoFit* f = dso_fit_create(m, th, ds, &s, &err);
  assert_non_null(f);
  dso_theta_init(th, u);
  dsoFitReport rep;
  int it = run_fit(f, u, 30, &rep);
  dso_theta_natural(th, v, u);
  int flags[3];
  int nb = dso_fit_at_bound(f, u, flags);
  printf("truth on the bound: cost %.3g after %d LM steps (stop %d), damping %.6g, frictionloss "
         "%.3g, com %.6g, %d at a bound\n",
         rep.cost, it, rep.stop, v[0], v[1], v[2], nb);
  assert_true(rep.stop == DSO_FIT_CONVERGED || rep.stop == DSO_FIT_STALLED_AT_BOUND);
  assert_int_equal(nb, 1);
  assert_int_equal(rep.nbound, 1);
  assert_true(flags[0] == 0 && flags[1] == -1 && flags[2] == 0);
  assert_true(v[1] > 0 && v[1] <= 2e-12 * start[1]);
  assert_true(fabs(v[0] - truth[0]) < 1e-6 * truth[0] && fabs(v[2] - truth[2]) < 1e-6);
  assert_int_equal(dso_fit_covariance(f, u, NULL, se, &err), DSO_OK);
  assert_true(isnan(se[1]) && se[0] > 0 && se[2] > 0);
  dso_fit_free(f);
  dso_dataset_free(ds);
  dso_theta_free(th);
  dso_theta_free(tt);
  mj_deleteModel(m);
}

// the stall rule: with a huge initial damping (1e9) every step lowers the cost by less than 1e-6
// of it (but more than tol), standing in for a stall; with an entry at a bound (dry friction
// started on its lower bound, none in the data) the fit stops after DSO_FIT_STALL_STEPS such
// steps and names the entry; without one it goes on
static void test_stall_at_bound(void** state) {
  (void)state;
  mjModel* m = load_model("pendulum.xml");
  dsoError err = {0};
  dsoThetaEntry e[2];
  assert_int_equal(dso_task_parse_entry(&e[0], m, "{\"name\": \"physics.hinge.damping\", "
                                        "\"init\": 0.003}", "test", "theta", &err), DSO_OK);
  assert_int_equal(dso_task_parse_entry(&e[1], m, "{\"name\": \"physics.hinge.frictionloss\", "
                                        "\"init\": 1e-4, \"bounds\": [1e-4, 0.1]}", "test",
                                        "theta", &err), DSO_OK);
  const char* tn[] = {"physics.hinge.damping", "physics.hinge.frictionloss"};
  double tv[] = {2e-3, 1e-300};
  dsoTheta* tt = layout(m, tn, tv, 2);
  double ut[2];
  dso_theta_init(tt, ut);
  dsoDataset* ds = record(m, tt, ut, 1, 400, 50, 0.3, 0, 0, 9);
  for (int with_bound = 1; with_bound >= 0; with_bound--) {
    dsoTheta* th = dso_theta_create(e, 1 + with_bound, &err);
    assert_non_null(th);
    dsoFitSettings s;
    dso_fit_settings_default(&s);
    s.lambda0 = 1e9;
    s.sensors = 0;
    dsoFit* f = dso_fit_create(m, th, ds, &s, &err);
    assert_non_null(f);
    double u[2];
    dso_theta_init(th, u);
    dsoFitReport rep;
    int it = run_fit(f, u, 6, &rep);
    int flags[2] = {0, 0};
    dso_fit_at_bound(f, u, flags);
    printf("lambda0 1e9, %s: %d LM steps, cost %.6g, stop %d, %d at a bound\n",
           with_bound ? "frictionloss on its lower bound" : "no bounded entry", it, rep.cost,
           rep.stop, rep.nbound);
    if (with_bound) {
      assert_int_equal(it, DSO_FIT_STALL_STEPS);
      assert_int_equal(rep.stop, DSO_FIT_STALLED_AT_BOUND);
      assert_int_equal(rep.nbound, 1);
      assert_int_equal(flags[1], -1);
    } else {
      assert_int_equal(it, 6);
      assert_int_equal(rep.stop, DSO_FIT_RUNNING);
    }
    dso_fit_free(f);
    dso_theta_free(th);
  }
  dso_dataset_free(ds);
  dso_theta_free(tt);
  mj_deleteModel(m);
}

// standard errors with correlated noise: the pendulum recorded with AR(1) noise (coefficient
// kPhi, stationary std kSigma) on qpos only (qvel from differences, so every window also starts
// from a noisy state: its residuals are strongly correlated), 1500 samples in 60 windows of 25,
// 40 seeds. The 95% interval v ± 1.96 se of the default standard error (the delete-one-window
// jackknife) covers the truth in >= 36 of the 40 seeds (90%) for each entry; the binomial 5%
// quantile at 95% coverage is 36. (160 seeds: jackknife 151 and 150 of 160, cluster sandwich
// 146 and 150, classic 53 and 38.) The classic s² (JᵀJ)⁻¹ must fail here (< 30), else the noise
// would not test anything
static const double kPhi = 0.95, kSigma = 2e-4;

static void test_se_coverage(void** state) {
  (void)state;
  mjModel* m = load_model("pendulum.xml");
  const char* names[] = {"physics.hinge.damping", "physics.arm.com[2]"};
  double truth[] = {2e-3, -0.1};
  double start[] = {2.4e-3, -0.09};
  dsoTheta* tt = layout(m, names, truth, 2);
  dsoTheta* th = layout(m, names, start, 2);
  double ut[2], u[2], v[2], se[3][2];
  dso_theta_init(tt, ut);
  const dsoFitSe kinds[3] = {DSO_FIT_SE_AUTO, DSO_FIT_SE_SANDWICH, DSO_FIT_SE_IID};
  const char* kind_names[3] = {"jackknife (default)", "cluster sandwich", "classic s^2 (J'J)^-1"};
  int cover[3][2] = {{0}}, nseed = 40, jack = 0;
  double zz[3][2] = {{0}};
  double t0 = now();
  for (int seed = 0; seed < nseed; seed++) {
    dsoDataset* ds = record(m, tt, ut, 1, 1500, 50, 0.3, 0, 0, 1000 + (uint64_t)seed);
    dsoRng rng;
    dso_rng_seed(&rng, 2000 + (uint64_t)seed, 0, 0);
    double e = kSigma * dso_rng_normal(&rng);
    dsoEpisode* ep = &ds->episode[0];
    for (int t = 0; t < ep->T; t++) {
      e = kPhi * e + sqrt(1 - kPhi * kPhi) * kSigma * dso_rng_normal(&rng);
      ep->qpos[t] += e;
    }
    ds->has[DSO_DATA_QVEL][0] = 0;
    dsoFitSettings s;
    dso_fit_settings_default(&s);
    s.window = 25;
    s.sensors = 0;
    s.threads = 1;  // 25-step windows: threads cost more than they give
    dsoError err = {0};
    dsoFit* f = dso_fit_create(m, th, ds, &s, &err);
    assert_non_null(f);
    dso_theta_init(th, u);
    dsoFitReport rep;
    run_fit(f, u, 20, &rep);
    jack += dso_fit_se_auto(f, u) == DSO_FIT_SE_JACKKNIFE;
    dso_theta_natural(th, v, u);
    for (int k = 0; k < 3; k++) {
      assert_int_equal(dso_fit_covariance_kind(f, u, kinds[k], NULL, se[k], &err), DSO_OK);
      for (int i = 0; i < 2; i++) {
        double z = (v[i] - truth[i]) / se[k][i];
        cover[k][i] += fabs(z) <= 1.959963984540054;
        zz[k][i] += z * z / nseed;
      }
    }
    dso_fit_free(f);
    dso_dataset_free(ds);
  }
  printf("AR(1) noise (phi %.2f, std %g) on qpos, %d seeds (%.1f s): 95%% intervals covering the "
         "truth\n", kPhi, kSigma, nseed, now() - t0);
  for (int k = 0; k < 3; k++) {
    printf("  %-22s %s %d (rms z %.2f), %s %d (rms z %.2f)\n", kind_names[k], names[0],
           cover[k][0], sqrt(zz[k][0]), names[1], cover[k][1], sqrt(zz[k][1]));
  }
  assert_int_equal(jack, nseed);  // 60 windows for 2 entries: the default is the jackknife
  for (int i = 0; i < 2; i++) {
    assert_true(cover[0][i] >= 36);
    assert_true(cover[2][i] < 30);
  }
  dso_theta_free(th);
  dso_theta_free(tt);
  mj_deleteModel(m);
}

// a non-finite cost is never a success: a prior whose residual (value - mean) / std is finite
// but whose square overflows (std 1e-150, the smallest theta accepts, 2e4 from the mean) makes
// evaluate, step and covariance refuse, and u is left as it was; smaller stds (1e-200, 1e-320:
// an infinite residual) are refused when the entry is read
static void test_nonfinite(void** state) {
  (void)state;
  mjModel* m = load_model("pendulum.xml");
  double small[2] = {1e-200, 1e-320};
  for (int k = 0; k < 2; k++) {
    dsoThetaEntry e;
    dsoError err = {0};
    char js[256];
    snprintf(js, sizeof(js),
             "{\"name\": \"physics.hinge.damping\", \"init\": 0.002, \"prior\": {\"mean\": 0.001,"
             " \"std\": %.17g}}", small[k]);
    assert_int_not_equal(dso_task_parse_entry(&e, m, js, "test", "theta", &err), DSO_OK);
    assert_non_null(strstr(err.msg, "std"));
  }
  double stds[1] = {1e-150};
  for (int k = 0; k < 1; k++) {
    dsoThetaEntry e;
    dsoError err = {0};
    char js[256];
    snprintf(js, sizeof(js),
             "{\"name\": \"physics.hinge.damping\", \"init\": 0.002, \"prior\": {\"mean\": -2e4,"
             " \"std\": %.17g}}", stds[k]);
    assert_int_equal(dso_task_parse_entry(&e, m, js, "test", "theta", &err), DSO_OK);
    dsoTheta* th = dso_theta_create(&e, 1, &err);
    assert_non_null(th);
    double u[1], u0[1];
    dso_theta_init(th, u);
    u0[0] = u[0];
    dsoDataset* ds = record(m, th, u, 1, 100, 10, 0.3, 0, 0, 3);
    dsoFit* f = dso_fit_create(m, th, ds, NULL, &err);
    assert_non_null(f);
    dsoFitReport rep;
    assert_int_equal(dso_fit_evaluate(f, u, &rep, &err), DSO_ERR_NUMERIC);
    printf("prior std %g: %s\n", stds[k], err.msg);
    assert_true(strstr(err.msg, "physics.hinge.damping") || strstr(err.msg, "cost"));
    dso_error_clear(&err);
    int done = 0;
    assert_int_equal(dso_fit_step(f, u, &rep, &done, &err), DSO_ERR_NUMERIC);
    assert_true(u[0] == u0[0]);
    dso_error_clear(&err);
    double se[1];
    assert_int_not_equal(dso_fit_covariance(f, u, NULL, se, &err), DSO_OK);
    dso_fit_free(f);
    dso_dataset_free(ds);
    dso_theta_free(th);
  }
  mj_deleteModel(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sysid_exact),
      cmocka_unit_test(test_sysid_noise),
      cmocka_unit_test(test_calibration),
      cmocka_unit_test(test_real_pendulum),
      cmocka_unit_test(test_settings),
      cmocka_unit_test(test_task_sections),
      cmocka_unit_test(test_create_errors),
      cmocka_unit_test(test_threads_bitwise),
      cmocka_unit_test(test_simulate_episode),
      cmocka_unit_test(test_arm_nine_starts),
      cmocka_unit_test(test_bound_truth),
      cmocka_unit_test(test_stall_at_bound),
      cmocka_unit_test(test_se_coverage),
      cmocka_unit_test(test_nonfinite),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
