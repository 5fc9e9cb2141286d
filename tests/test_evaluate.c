// Evaluation of parameter values on recorded data (evaluate.h): the multiple-shooting RMS is
// exactly 0 at the true θ on noise-free simulated data and grows with the window length at a
// wrong θ; channel names; diverged windows counted; settings; values files (flat and a dso run
// result.json); and `dso evaluate` on the real free-swing pendulum recording before and after a
// quick fit.
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE  // M_PI
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>
#include <cmocka.h>

#include "dso_internal.h"
#include "apps/evaluate.h"
#include "config/json.h"
#include "run_cli.h"

#define OUT_DIR DSO_BUILD_DIR "/test_files/evaluate"

// the pendulum identification task (its model and θ layout; its data is not read)
static dsoTask* g_task;

static int setup(void** state) {
  dsoError err = {0};
  if (dso_mkdir_p(OUT_DIR, &err)) {
    return -1;
  }
  g_task = dso_task_load_flags(DSO_SOURCE_DIR "/tasks/pendulum_sysid.json", DSO_TASK_SKIP_DATA,
                               &err);
  if (!g_task) {
    fprintf(stderr, "%s\n", err.msg);
  }
  return g_task ? 0 : -1;
}

static int teardown(void** state) {
  dso_task_free(g_task);
  return 0;
}

// u at the task's initial values with the named natural values set
static void values(double* u, const char* json) {
  dsoError err = {0};
  dso_theta_init(g_task->theta, u);
  if (json) {
    assert_int_equal(dso_theta_from_json(g_task->theta, u, json, "test", &err), DSO_OK);
  }
}

// noise-free recording at θ = u: two episodes of T samples from different swings, driven by a
// sine torque; qpos, qvel, ctrl and every sensor recorded (sensors after mj_forward with the
// sample's ctrl, as dso simulate records them)
static dsoDataset* record(const double* u, int T) {
  const mjModel* m = g_task->model;
  dsoError err = {0};
  dsoDataset* ds = NULL;
  assert_int_equal(dso_dataset_create(&ds, m, &err), DSO_OK);
  dsoSim* sim = dso_sim_create(m, &err);
  assert_non_null(sim);
  dso_sim_model(sim)->opt.disableflags |= mjDSBL_WARMSTART;
  assert_int_equal(dso_sim_write(sim, g_task->theta, u, &err), DSO_OK);
  const double q0[2] = {0.8, -1.5};
  for (int n = 0; n < 2; n++) {
    int e = dso_dataset_add_episode(ds, m, T, &err);
    assert_int_equal(e, n);
    dsoEpisode* ep = &ds->episode[e];
    dso_sim_reset(sim);
    dso_sim_data(sim)->qpos[0] = q0[n];
    for (int t = 0; t < T; t++) {
      double h = m->opt.timestep;
      dso_sim_data(sim)->ctrl[0] = 0.3 * sin(2 * M_PI * 1.3 * t * h + n);
      mj_forward(dso_sim_model(sim), dso_sim_data(sim));
      ep->time[t] = t * h;
      ep->qpos[t] = dso_sim_data(sim)->qpos[0];
      ep->qvel[t] = dso_sim_data(sim)->qvel[0];
      ep->ctrl[t] = dso_sim_data(sim)->ctrl[0];
      dso_sim_measure(sim, ep->sensordata + (size_t)t * m->nsensordata);
      assert_int_equal(dso_sim_step(sim, &err), DSO_OK);
    }
  }
  dso_sim_free(sim);
  ds->dt = m->opt.timestep;
  ds->has[DSO_DATA_QPOS][0] = ds->has[DSO_DATA_QVEL][0] = ds->has[DSO_DATA_CTRL][0] = 1;
  for (int i = 0; i < m->nsensordata; i++) ds->has[DSO_DATA_SENSOR][i] = 1;
  return ds;
}

static dsoEval* evaluate(const dsoDataset* ds, const double* u, const dsoEvalSettings* s,
                         dsoEvalResult* r) {
  dsoError err = {0};
  dsoEval* ev = dso_eval_create(g_task->model, g_task->theta, ds, s, &err);
  if (!ev) {
    print_error("%s\n", err.msg);
  }
  assert_non_null(ev);
  assert_int_equal(dso_eval_run(ev, u, &err), DSO_OK);
  dso_eval_result(ev, r);
  return ev;
}

static void test_truth_and_wrong_theta(void** state) {
  int n = g_task->theta->n;
  double* truth = calloc((size_t)n, sizeof(double));
  double* wrong = calloc((size_t)n, sizeof(double));
  values(truth, NULL);
  values(wrong, "{\"physics.arm.com[2]\": -0.1, \"physics.hinge.damping\": 0.0005}");
  dsoDataset* ds = record(truth, 401);
  dsoEvalResult r;
  dsoEval* ev = evaluate(ds, truth, NULL, &r);

  // channels by name: qpos, qvel, then the 8 sensor entries
  static const char* const names[] = {
      "qpos.hinge", "qvel.hinge", "sensor.hinge_pos", "sensor.hinge_vel", "sensor.imu_acc[0]",
      "sensor.imu_acc[1]", "sensor.imu_acc[2]", "sensor.imu_gyro[0]", "sensor.imu_gyro[1]",
      "sensor.imu_gyro[2]"};
  assert_int_equal(r.nchannel, 10);
  for (int c = 0; c < 10; c++) assert_string_equal(r.channel[c], names[c]);
  assert_int_equal(r.group[4], DSO_DATA_SENSOR);
  assert_int_equal(r.index[4], 2);
  // no validation episode: both evaluated; windows of 400 steps per episode
  assert_int_equal(r.nepisode, 2);
  assert_int_equal(r.nwindow, 6);
  const long nwin[6] = {800, 80, 16, 8, 4, 2};
  for (int w = 0; w < 6; w++) {
    assert_int_equal(r.nwin[w], nwin[w]);
    assert_int_equal(r.nstep[w], 800);
    assert_int_equal(r.ndiverged[w], 0);
    // the simulation restarts from the recorded state: every error is exactly 0 at the truth
    for (int c = 0; c < 10; c++) assert_true(r.rms[w * 10 + c] == 0.0);
  }
  assert_true(r.window[5] == DSO_EVAL_WHOLE);
  assert_int_equal(r.steps, 6 * 800);

  // a wrong θ: every channel that moves in the swing plane errs after one step (the gyro's x
  // and z and the accelerometer's y stay 0), and the error grows with the window length on the
  // state channels
  assert_int_equal(dso_eval_run(ev, wrong, NULL), DSO_OK);
  dso_eval_result(ev, &r);
  for (int c = 0; c < 10; c++) {
    int in_plane = c != 5 && c != 7 && c != 9;
    if (in_plane != (r.rms[c] > 0)) print_error("%s: %g\n", r.channel[c], r.rms[c]);
    assert_true(in_plane ? r.rms[c] > 0 : r.rms[c] == 0);
  }
  for (int w = 1; w < 6; w++) {
    for (int c = 0; c < 2; c++) {
      if (!(r.rms[w * 10 + c] > r.rms[(w - 1) * 10 + c])) {
        print_error("%s: window %d: %g, before %g\n", r.channel[c], r.window[w],
                    r.rms[w * 10 + c], r.rms[(w - 1) * 10 + c]);
      }
      assert_true(r.rms[w * 10 + c] > r.rms[(w - 1) * 10 + c]);
    }
  }
  print_message("wrong theta: qpos RMS %.3g (1 step) %.3g (10) %.3g (100) %.3g (whole) rad\n",
                r.rms[0], r.rms[10], r.rms[30], r.rms[50]);
  // deterministic: a second run and a second evaluation give the same bits
  double first[60];
  memcpy(first, r.rms, sizeof(first));
  assert_int_equal(dso_eval_run(ev, wrong, NULL), DSO_OK);
  assert_memory_equal(first, r.rms, sizeof(first));
  dsoEvalResult r2;
  dsoEval* ev2 = evaluate(ds, wrong, NULL, &r2);
  assert_memory_equal(first, r2.rms, sizeof(first));
  dso_eval_free(ev2);

  // the JSON: steps, counts and RMS by channel name
  char* text = dso_eval_json(ev, NULL);
  cJSON* root = cJSON_Parse(text);
  free(text);
  assert_non_null(root);
  const cJSON* wins = cJSON_GetObjectItem(root, "windows");
  assert_int_equal(cJSON_GetArraySize(wins), 6);
  const cJSON* w0 = cJSON_GetArrayItem(wins, 0);
  assert_int_equal(cJSON_GetObjectItem(w0, "steps")->valueint, 1);
  assert_int_equal(cJSON_GetObjectItem(w0, "windows")->valueint, 800);
  assert_true(cJSON_GetObjectItem(cJSON_GetObjectItem(w0, "rms"), "qvel.hinge")->valuedouble ==
              r.rms[1]);
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(wins, 5), "steps")->valuestring,
                      "whole");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(root, "episodes")), 2);
  cJSON_Delete(root);
  // dso evaluate -o: the same text with the task, the values file and the timestep after it
  char* plain = dso_eval_json(ev, NULL);
  char* report = dso_eval_report_json(ev, "t.json", "v.json", 0.002, NULL);
  root = cJSON_Parse(report);
  assert_non_null(root);
  assert_string_equal(cJSON_GetObjectItem(root, "task")->valuestring, "t.json");
  assert_string_equal(cJSON_GetObjectItem(root, "values")->valuestring, "v.json");
  assert_true(cJSON_GetObjectItem(root, "timestep")->valuedouble == 0.002);
  cJSON_DeleteItemFromObject(root, "task");
  cJSON_DeleteItemFromObject(root, "values");
  cJSON_DeleteItemFromObject(root, "timestep");
  char* back = cJSON_Print(root);
  assert_string_equal(back, plain);
  cJSON_Delete(root);
  free(back);
  free(report);
  report = dso_eval_report_json(ev, "t.json", NULL, 0.002, NULL);
  assert_non_null(strstr(report, "\"values\":\tnull"));
  free(report);
  report = dso_eval_report_json(ev, NULL, NULL, 0, NULL);  // nothing added
  assert_string_equal(report, plain);
  free(report);
  free(plain);
  dso_eval_free(ev);

  // a validation episode restricts the evaluation to it, unless all_episodes
  ds->episode[1].validation = 1;
  dsoEvalSettings s;
  dso_eval_settings_default(&s);
  ev = evaluate(ds, wrong, &s, &r);
  assert_int_equal(r.nepisode, 1);
  assert_int_equal(r.episode[0], 1);
  assert_int_equal(r.nwin[0], 400);
  dso_eval_free(ev);
  s.all_episodes = 1;
  ev = evaluate(ds, wrong, &s, &r);
  assert_int_equal(r.nepisode, 2);
  dso_eval_free(ev);
  dso_dataset_free(ds);
  free(truth);
  free(wrong);
}

static void test_diverged_and_partial(void** state) {
  int n = g_task->theta->n;
  double* u = calloc((size_t)n, sizeof(double));
  values(u, NULL);
  dsoDataset* ds = record(u, 401);
  // a recorded velocity far beyond MuJoCo's limit at sample 100 of episode 0: the windows that
  // start there diverge (counted, left out of the RMS); windows that only score it do not
  ds->episode[0].qvel[100] = 1e12;
  dsoEvalResult r;
  dsoEval* ev = evaluate(ds, u, NULL, &r);
  const long ndiv[6] = {1, 1, 1, 1, 0, 0};
  const long nwin[6] = {799, 79, 15, 7, 4, 2};
  for (int w = 0; w < 6; w++) {
    assert_int_equal(r.ndiverged[w], ndiv[w]);
    assert_int_equal(r.nwin[w], nwin[w]);
    assert_true(isfinite(r.rms[w * r.nchannel]));
  }
  // the qpos error stays 0 where the bad sample is never a start or a target's qpos
  assert_true(r.rms[0] == 0.0);
  assert_true(r.rms[1] > 1e9);
  dso_eval_free(ev);

  // windows longer than every episode: nothing scored, NaN and null in the JSON
  dsoEvalSettings s;
  dso_eval_settings_default(&s);
  dsoError err = {0};
  assert_int_equal(dso_eval_parse_windows(&s, "1000,whole", "--windows", &err), DSO_OK);
  ev = evaluate(ds, u, &s, &r);
  assert_int_equal(r.nwin[0], 0);
  assert_int_equal(r.ndiverged[0], 0);
  assert_true(isnan(r.rms[0]));
  char* text = dso_eval_json(ev, NULL);
  assert_non_null(strstr(text, "\"qpos.hinge\":\tnull"));
  free(text);
  dso_eval_free(ev);

  // positions only: one channel; window-start velocities by backward differences of qpos (the
  // model steps with Euler, whose position update q' = q + h v' they invert exactly)
  ds->episode[0].qvel[100] = ds->episode[0].qvel[99];
  ds->has[DSO_DATA_QVEL][0] = 0;
  for (int i = 0; i < g_task->model->nsensordata; i++) ds->has[DSO_DATA_SENSOR][i] = 0;
  ev = evaluate(ds, u, NULL, &r);
  assert_int_equal(r.nchannel, 1);
  assert_string_equal(r.channel[0], "qpos.hinge");
  double qv[401], work[1];
  assert_int_equal(dso_dataset_episode_qvel(qv, work, g_task->model, ds, 0, &err), DSO_OK);
  const double* q = ds->episode[0].qpos;
  assert_true(fabs(qv[50] - (q[50] - q[49]) / 0.001) < 1e-9);
  assert_true(fabs(qv[0] - (q[1] - q[0]) / 0.001) < 1e-9);
  assert_true(fabs(qv[400] - (q[400] - q[399]) / 0.001) < 1e-9);
  // at the true θ the backward difference is the true velocity (kept in the arrays though not
  // recorded) to rounding; only an episode's first sample takes a forward difference, off by
  // h a, and a one-step window then errs by h (v^ - v) to first order
  double worst = 0, sum = 0;
  for (int e = 0; e < 2; e++) {
    assert_int_equal(dso_dataset_episode_qvel(qv, work, g_task->model, ds, e, &err), DSO_OK);
    for (int t = 0; t < 400; t++) {
      double d = 0.001 * (qv[t] - ds->episode[e].qvel[t]);
      sum += d * d;
      if (t > 0 && !(e == 0 && t == 100)) {  // sample 100's qvel was overwritten above
        worst = fmax(worst, fabs(qv[t] - ds->episode[e].qvel[t]));
      }
    }
  }
  double predicted = sqrt(sum / 800);
  print_message("positions only, true theta: velocity error %.3g rad/s after the first sample, "
                "qpos RMS %.4g (1 step, first order %.4g), %.3g (whole) rad\n", worst, r.rms[0],
                predicted, r.rms[5]);
  assert_true(worst < 1e-9);
  assert_true(fabs(r.rms[0] - predicted) < 0.02 * predicted);
  dso_eval_free(ev);
  dso_dataset_free(ds);
  free(u);
}

static void test_settings_and_errors(void** state) {
  dsoEvalSettings s;
  dso_eval_settings_default(&s);
  assert_int_equal(s.nwindow, 6);
  assert_int_equal(s.window[4], 200);
  dsoError err = {0};
  assert_int_equal(dso_eval_parse_windows(&s, "5,whole,20", "--windows", &err), DSO_OK);
  assert_int_equal(s.nwindow, 3);
  assert_true(s.window[0] == 5 && s.window[1] == DSO_EVAL_WHOLE && s.window[2] == 20);
  static const char* const bad[][2] = {
      {"1,,2", "--windows: entry 2 of \"1,,2\" is empty"},
      {"1,x", "--windows: entry 2 \"x\": expected an integer"},
      {"-3", "--windows: entry 1 \"-3\""},
      {"10,10", "--windows: window length 10 is listed twice"},
      {"", "--windows: expected a list"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    dso_error_clear(&err);
    assert_int_equal(dso_eval_parse_windows(&s, bad[i][0], "--windows", &err), DSO_ERR_INPUT);
    if (!strstr(err.msg, bad[i][1])) print_error("case %d: %s\n", (int)i, err.msg);
    assert_non_null(strstr(err.msg, bad[i][1]));
    assert_int_equal(s.nwindow, 3);
  }
  // datasets evaluate refuses: not on the model's time grid, nothing to compare with
  int n = g_task->theta->n;
  double* u = calloc((size_t)n, sizeof(double));
  values(u, NULL);
  dsoDataset* ds = record(u, 21);
  ds->dt = 0;
  dso_error_clear(&err);
  assert_null(dso_eval_create(g_task->model, g_task->theta, ds, NULL, &err));
  assert_non_null(strstr(err.msg, "sample spacing is 0 s, expected the model timestep 0.001 s"));
  ds->dt = 0.001;
  ds->has[DSO_DATA_QPOS][0] = ds->has[DSO_DATA_QVEL][0] = 0;
  for (int i = 0; i < g_task->model->nsensordata; i++) ds->has[DSO_DATA_SENSOR][i] = 0;
  dso_error_clear(&err);
  assert_null(dso_eval_create(g_task->model, g_task->theta, ds, NULL, &err));
  assert_non_null(strstr(err.msg, "records no qpos, qvel or sensor column"));
  // a non-finite u is refused, never evaluated
  ds->has[DSO_DATA_QPOS][0] = 1;
  dsoEval* ev = dso_eval_create(g_task->model, g_task->theta, ds, NULL, &err);
  assert_non_null(ev);
  u[1] = NAN;
  dso_error_clear(&err);
  assert_int_equal(dso_eval_run(ev, u, &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "physics.arm.com[2]: the value is not finite"));
  dso_eval_free(ev);
  dso_eval_free(NULL);
  dso_dataset_free(ds);
  free(u);
}

static void write_text(const char* path, const char* text) {
  dsoError err = {0};
  assert_int_equal(dso_write_file_atomic(path, text, strlen(text), &err), DSO_OK);
}

static void test_values_files(void** state) {
  const dsoTheta* th = g_task->theta;
  int n = th->n;
  double *u0 = calloc((size_t)n, sizeof(double)), *u = calloc((size_t)n, sizeof(double));
  double *got = calloc((size_t)n, sizeof(double)), *v = calloc((size_t)n, sizeof(double));
  double *vg = calloc((size_t)n, sizeof(double));
  values(u0, NULL);
  values(u, "{\"physics.arm.com[2]\": -0.1002993, \"physics.hinge.damping\": 0.00016037}");
  // a result.json as dso run writes it
  dsoError err = {0};
  const char* parts[3] = {"sysid", "calib", "prior"};
  dsoRunRecord last = {3, 1.5, {1.5, 0, 0}, 0.1, 1e-3, 100};
  double rms[2] = {0.01, 0.02};
  char* text = dso_run_result_json(th, u0, u, NULL, &last, parts, rms, 2, 0.015, &err);
  assert_non_null(text);
  write_text(OUT_DIR "/result.json", text);
  free(text);
  values(got, NULL);
  assert_int_equal(dso_values_read_file(th, got, OUT_DIR "/result.json", &err), DSO_OK);
  dso_theta_natural(th, v, u);
  dso_theta_natural(th, vg, got);
  for (int i = 0; i < n; i++) assert_true(fabs(vg[i] - v[i]) <= 1e-15 * fabs(v[i]));
  // a flat object; entries it does not name keep their value
  write_text(OUT_DIR "/flat.json", "{\"physics.hinge.frictionloss\": 0.0004}");
  values(got, NULL);
  assert_int_equal(dso_values_read_file(th, got, OUT_DIR "/flat.json", &err), DSO_OK);
  dso_theta_natural(th, vg, got);
  dso_theta_natural(th, v, u0);
  assert_true(fabs(vg[3] - 0.0004) < 1e-18 && vg[1] == v[1]);
  // an entry identified at its bound prints a rounding step outside it: taken at the bound
  write_text(OUT_DIR "/at_bound.json",
             "{\"theta\": [{\"name\": \"physics.hinge.frictionloss\", \"initial\": 0.0003, "
             "\"value\": 9.9999999999999943e-08, \"fixed\": false}]}");
  assert_int_equal(dso_values_read_file(th, got, OUT_DIR "/at_bound.json", &err), DSO_OK);
  dso_theta_natural(th, vg, got);
  assert_true(fabs(vg[3] - 1e-7) < 1e-21);

  static const char* const bad[][3] = {
      {"unknown.json", "{\"physics.arm.colour\": 1}",
       "unknown.json: \"physics.arm.colour\" is not an entry of theta"},
      {"inf.json", "{\"physics.hinge.damping\": 1e999}",
       "inf.json: \"physics.hinge.damping\": value inf is not a finite number"},
      {"bounds.json", "{\"physics.hinge.damping\": 0.5}",
       "bounds.json: physics.hinge.damping: value 0.5 is outside the bounds"},
      {"string.json", "{\"physics.hinge.damping\": \"0.1\"}",
       "string.json: \"physics.hinge.damping\" must be a number"},
      {"noval.json", "{\"theta\": [{\"name\": \"physics.hinge.damping\", \"initial\": 1}]}",
       "noval.json: theta[0]: expected {\"name\": string, \"value\": number, ...} as dso run "
       "writes, got no \"value\" number"},
      {"resinf.json", "{\"theta\": [{\"name\": \"physics.hinge.damping\", \"value\": -1e999}]}",
       "resinf.json: theta[0] (\"physics.hinge.damping\"): value -inf is not a finite number"},
      {"twice.json", "{\"theta\": [{\"name\": \"physics.hinge.damping\", \"value\": 0.001}, "
       "{\"name\": \"physics.hinge.damping\", \"value\": 0.002}]}",
       "twice.json: theta[1]: \"physics.hinge.damping\" is given twice"},
      {"array.json", "[1, 2]", "array.json: expected an object {\"name\": value, ...} or a dso "
       "run result.json, got an array"},
      {"syntax.json", "{\"a\": ", "syntax.json: line 1"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", OUT_DIR, bad[i][0]);
    write_text(path, bad[i][1]);
    values(got, NULL);
    memcpy(v, got, sizeof(double) * (size_t)n);
    dso_error_clear(&err);
    assert_int_equal(dso_values_read_file(th, got, path, &err), DSO_ERR_INPUT);
    if (!strstr(err.msg, bad[i][2])) print_error("case %d: %s\n", (int)i, err.msg);
    assert_non_null(strstr(err.msg, bad[i][2]));
    assert_memory_equal(got, v, sizeof(double) * (size_t)n);
  }
  dso_error_clear(&err);
  assert_int_equal(dso_values_read_file(th, got, OUT_DIR "/missing.json", &err), DSO_ERR_IO);
  assert_non_null(strstr(err.msg, "missing.json"));
  free(u0);
  free(u);
  free(got);
  free(v);
  free(vg);
}

// reads a JSON file written by dso evaluate -o
static cJSON* read_json(const char* path) {
  dsoError err = {0};
  char* text = dso_read_text_file(path, &err);
  assert_non_null(text);
  cJSON* root = cJSON_Parse(text);
  free(text);
  assert_non_null(root);
  return root;
}

// RMS of channel at window row w of an evaluate JSON
static double json_rms(const cJSON* root, int w, const char* channel) {
  const cJSON* row = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "windows"), w);
  const cJSON* v = cJSON_GetObjectItem(cJSON_GetObjectItem(row, "rms"), channel);
  assert_true(cJSON_IsNumber(v));
  return v->valuedouble;
}

static void test_cli_real_pendulum(void** state) {
  const char* csv = DSO_SHARED_DIR "/data/multiarm-pendulum-single/single_pendulum_freeswing.csv";
  if (access(csv, R_OK) != 0) {
    print_message("skipped: %s is not there\n", csv);
    skip();
  }
  // at the task's initial values, on the validation segments 4 and 5
  int st = run("evaluate tasks/pendulum_sysid.json -o " OUT_DIR "/initial.json");
  if (st) print_error("%s%s\n", g_out, g_err);
  assert_int_equal(st, 0);
  assert_non_null(strstr(g_out, "2 validation episodes (ids 4 5) of 6"));
  assert_non_null(strstr(g_out, "qpos.hinge"));
  assert_non_null(strstr(g_out, "diverged"));
  print_message("%s", g_out);
  // a quick fit (3 Levenberg-Marquardt iterations), then its result.json as the values
  st = run("run tasks/pendulum_sysid.json -o " OUT_DIR "/fit --max-iter 3 --quiet");
  if (st) print_error("%s%s\n", g_out, g_err);
  assert_int_equal(st, 0);
  st = run("evaluate tasks/pendulum_sysid.json --values " OUT_DIR "/fit/result.json -o " OUT_DIR
           "/fitted.json");
  if (st) print_error("%s%s\n", g_out, g_err);
  assert_int_equal(st, 0);
  print_message("%s", g_out);
  cJSON* a = read_json(OUT_DIR "/initial.json");
  cJSON* b = read_json(OUT_DIR "/fitted.json");
  const cJSON* wins = cJSON_GetObjectItem(b, "windows");
  assert_int_equal(cJSON_GetArraySize(wins), 6);
  // 2 episodes of 9167 and 9166 samples: 18331 one-step windows, 90 of 200 steps, 2 whole
  assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(wins, 0), "windows")->valueint, 18331);
  assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(wins, 4), "windows")->valueint, 90);
  assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(wins, 5), "windows")->valueint, 2);
  assert_string_equal(cJSON_GetObjectItem(b, "values")->valuestring, OUT_DIR "/fit/result.json");
  // the fit (window 200) improves the 100-step, 200-step and whole-episode errors on held-out
  // data, the whole-episode qpos error more than fivefold (measured: 0.0308 against 0.233 rad)
  for (int w = 3; w < 6; w++) {
    assert_true(json_rms(b, w, "qpos.hinge") < json_rms(a, w, "qpos.hinge"));
    assert_true(json_rms(b, w, "qvel.hinge") < json_rms(a, w, "qvel.hinge"));
  }
  assert_true(json_rms(b, 5, "qpos.hinge") < 0.2 * json_rms(a, 5, "qpos.hinge"));
  // the whole-episode qpos RMS is the open-loop validation RMS dso run reports
  cJSON* res = read_json(OUT_DIR "/fit/result.json");
  double val = cJSON_GetObjectItem(cJSON_GetObjectItem(res, "validation"), "rms")->valuedouble;
  assert_true(fabs(json_rms(b, 5, "qpos.hinge") - val) <= 1e-9 * val);
  cJSON_Delete(res);
  cJSON_Delete(a);
  cJSON_Delete(b);

  // --data reads another recording with the task's column map; --all takes every segment
  st = run("evaluate tasks/pendulum_sysid.json --data " DSO_SHARED_DIR
           "/data/multiarm-pendulum-single/single_pendulum_freeswing.csv --windows 10,whole "
           "--all --values " OUT_DIR "/fit/result.json");
  if (st) print_error("%s%s\n", g_out, g_err);
  assert_int_equal(st, 0);
  assert_non_null(strstr(g_out, "6 episodes (ids 0 1 2 3 4 5) of 6"));

  // bad input: exit 2 naming the file and field
  static const char* const bad[][2] = {
      {"evaluate tasks/pendulum_sysid.json --values " OUT_DIR "/none.json",
       "dso evaluate: " OUT_DIR "/none.json"},
      {"evaluate tasks/pendulum_sysid.json --values " OUT_DIR "/unknown.json",
       "unknown.json: \"physics.arm.colour\" is not an entry of theta"},
      {"evaluate tasks/pendulum_sysid.json --windows 1,x", "--windows: entry 2 \"x\""},
      {"evaluate tasks/pendulum_sysid.json --data " OUT_DIR "/bad.csv", "bad.csv:2:2: column "
       "\"theta1_rad\": \"x\" is not a number"},
      {"evaluate tasks/pendulum_gradcheck_missing.json", "pendulum_gradcheck_missing.json"},
      {"evaluate tasks/cartpole_gradcheck.json", "the task has no \"data\" section"},
      {"evaluate", "need TASK.json"},
      {"evaluate tasks/pendulum_sysid.json --frobnicate", "unexpected argument '--frobnicate'"},
  };
  write_text(OUT_DIR "/unknown.json", "{\"physics.arm.colour\": 1}");
  write_text(OUT_DIR "/bad.csv", "t_s,theta1_rad\n0,x\n");
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    st = run(bad[i][0]);
    if (st != 2 || !strstr(g_err, bad[i][1])) print_error("case %d: %d %s\n", (int)i, st, g_err);
    assert_int_equal(st, 2);
    assert_non_null(strstr(g_err, bad[i][1]));
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_truth_and_wrong_theta),
      cmocka_unit_test(test_diverged_and_partial),
      cmocka_unit_test(test_settings_and_errors),
      cmocka_unit_test(test_values_files),
      cmocka_unit_test(test_cli_real_pendulum),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
