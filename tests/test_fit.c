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

#include "dso.h"
#include "fit.h"

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
      sim->d->qpos[i] = 0.5 * (2 * dso_rng_uniform(&rng) - 1);
    }
    for (int t = 0; t < T; t++) {
      if (t % hold == 0) {
        for (int i = 0; i < m->nu; i++) {
          sim->d->ctrl[i] = amp * (2 * dso_rng_uniform(&rng) - 1);
        }
      }
      mj_forward(sim->m, sim->d);
      dso_sim_measure(sim, y);
      ep->time[t] = t * m->opt.timestep;
      for (int i = 0; i < m->nq; i++) {
        ep->qpos[t * m->nq + i] = sim->d->qpos[i] + qnoise * dso_rng_normal(&rng);
      }
      for (int i = 0; i < m->nv; i++) {
        ep->qvel[t * m->nv + i] = sim->d->qvel[i] + qnoise * dso_rng_normal(&rng);
      }
      for (int i = 0; i < m->nu; i++) {
        ep->ctrl[t * m->nu + i] = sim->d->ctrl[i];
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
    (void)check_se;
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

// with noisy records the window starts carry the noise too (errors in variables): the estimates
// stay within 2% but are biased by several of the nominal standard errors, which are printed
static void test_sysid_noise(void** state) {
  (void)state;
  sysid_case(1e-4, 0);
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
  assert_int_equal(dso_fit_settings_from_json(&s, task->fit, task->path, &err), DSO_OK);
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
  assert_int_equal(dso_fit_settings_from_json(&s, NULL, "task.json", &err), DSO_OK);
  assert_int_equal(s.window, 100);
  expect_bad("{\"windw\": 10}", "windw");
  expect_bad("{\"windw\": 10}", "window");  // lists the valid keys
  expect_bad("{\"window\": 0}", "fit.window");
  expect_bad("{\"window\": 2.5}", "integer");
  expect_bad("{\"threads\": 0}", "fit.threads");
  expect_bad("{\"lambda0\": -1}", "fit.lambda0");
  expect_bad("{\"qpos_scale\": 0}", "expected a number > 0");
  expect_bad("{\"tol\": \"small\"}", "fit.tol");
  expect_bad("{\"sensors\": 1}", "fit.sensors");
  expect_bad("[1, 2]", "object");
  expect_bad("{\"window\": 10", "task.json");
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sysid_exact),
      cmocka_unit_test(test_sysid_noise),
      cmocka_unit_test(test_calibration),
      cmocka_unit_test(test_real_pendulum),
      cmocka_unit_test(test_settings),
      cmocka_unit_test(test_create_errors),
      cmocka_unit_test(test_threads_bitwise),
      cmocka_unit_test(test_simulate_episode),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
