// Synthetic datasets (dso_simulate and `dso simulate`): full-horizon episodes, determinism by
// seed, clipped controls, measurements equal to the chain's sampled y, excitation, CSV round trip,
// and the verb's exit statuses.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "dso_internal.h"

// path of a file in this test's folder under the build folder (created on first use)
static void out_path(char* buf, size_t len, const char* name) {
  mkdir(DSO_BUILD_DIR "/test_simulate", 0755);
  snprintf(buf, len, "%s/test_simulate/%s", DSO_BUILD_DIR, name);
}

static dsoTask* load(const char* rel) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/%s", DSO_SOURCE_DIR, rel);
  dsoError err = {0};
  dsoTask* t = dso_task_load(path, &err);
  if (!t) {
    fprintf(stderr, "%s\n", err.msg);
  }
  assert_non_null(t);
  return t;
}

static dsoDataset* simulate(const dsoTask* t, const double* u, int N, int T, uint64_t seed,
                            double excitation, int nval) {
  dsoError err = {0};
  dsoDataset* ds = NULL;
  dsoStatus st = dso_simulate(&ds, t, u, N, T, seed, excitation, nval, &err);
  if (st) {
    fprintf(stderr, "%s\n", err.msg);
  }
  assert_int_equal(st, DSO_OK);
  assert_non_null(ds);
  return ds;
}

// 1 when both datasets hold bitwise the same episodes
static int same_data(const dsoDataset* a, const dsoDataset* b) {
  if (a->nepisode != b->nepisode || a->nq != b->nq || a->nv != b->nv || a->nu != b->nu ||
      a->nsensordata != b->nsensordata) {
    return 0;
  }
  for (int e = 0; e < a->nepisode; e++) {
    const dsoEpisode *x = &a->episode[e], *y = &b->episode[e];
    size_t T = (size_t)x->T;
    if (x->T != y->T || x->validation != y->validation ||
        memcmp(x->time, y->time, T * sizeof(double)) ||
        memcmp(x->qpos, y->qpos, T * (size_t)a->nq * sizeof(double)) ||
        memcmp(x->qvel, y->qvel, T * (size_t)a->nv * sizeof(double)) ||
        memcmp(x->ctrl, y->ctrl, T * (size_t)a->nu * sizeof(double)) ||
        memcmp(x->sensordata, y->sensordata, T * (size_t)a->nsensordata * sizeof(double))) {
      return 0;
    }
  }
  for (int g = 0; g < DSO_NDATA; g++) {
    int n[DSO_NDATA] = {a->nq, a->nv, a->nu, a->nsensordata};
    for (int i = 0; i < n[g]; i++) {
      if (a->has[g][i] != b->has[g][i]) {
        return 0;
      }
    }
  }
  return 1;
}

static void test_cartpole_episodes(void** state) {
  dsoTask* t = load("tasks/cartpole_gradcheck.json");
  const mjModel* m = t->model;
  dsoDataset* a = simulate(t, NULL, 3, 50, 7, 0, 1);
  dsoDataset* b = simulate(t, NULL, 3, 50, 7, 0, 1);
  dsoDataset* c = simulate(t, NULL, 3, 50, 8, 0, 1);
  assert_int_equal(dso_dataset_nepisode(a), 3);
  assert_int_equal(dso_dataset_nvalidation(a), 1);
  assert_int_equal(dso_dataset_nsample(a), 150);
  assert_true(same_data(a, b));
  assert_false(same_data(a, c));
  // the task runs 2 threads; 1 and 3 give the same bits
  for (int th = 1; th <= 3; th += 2) {
    t->rollout.nthread = th;
    dsoDataset* d = simulate(t, NULL, 3, 50, 7, 0, 1);
    assert_true(same_data(a, d));
    dso_dataset_free(d);
  }
  int nclip = 0;
  for (int e = 0; e < 3; e++) {
    const dsoEpisode* ep = dso_dataset_episode(a, e);
    assert_int_equal(ep->T, 50);
    assert_int_equal(ep->validation, e == 2);
    for (int k = 0; k < 50; k++) {
      assert_true(ep->time[k] == k * m->opt.timestep);
      for (int i = 0; i < m->nu; i++) {
        double u = ep->ctrl[k * m->nu + i];
        assert_true(u >= m->actuator_ctrlrange[2 * i] && u <= m->actuator_ctrlrange[2 * i + 1]);
        nclip += fabs(u) == 1;
      }
      // the chain does not sample measurements here: noise-free jointpos/jointvel sensors read
      // the recorded state (sensors slider_pos, slider_vel, hinge_pos, hinge_vel)
      const double* s = ep->sensordata + k * m->nsensordata;
      assert_true(s[0] == ep->qpos[k * m->nq + 0] && s[2] == ep->qpos[k * m->nq + 1]);
      assert_true(s[1] == ep->qvel[k * m->nv + 0] && s[3] == ep->qvel[k * m->nv + 1]);
    }
  }
  for (int g = 0; g < DSO_NDATA; g++) {
    int n[DSO_NDATA] = {m->nq, m->nv, m->nu, m->nsensordata};
    for (int i = 0; i < n[g]; i++) {
      assert_int_equal(a->has[g][i], 1);
    }
  }
  // strong excitation: controls still clipped to ctrlrange, many at the limits; the initial
  // states (drawn first from the same streams) are unchanged, the controls are not
  dsoDataset* x = simulate(t, NULL, 3, 50, 7, 3.0, 0);
  int nlimit = 0;
  for (int e = 0; e < 3; e++) {
    const dsoEpisode *ep = dso_dataset_episode(x, e), *ea = dso_dataset_episode(a, e);
    assert_memory_equal(ep->qpos, ea->qpos, sizeof(double) * (size_t)m->nq);
    assert_true(ep->ctrl[0] != ea->ctrl[0]);
    for (int k = 0; k < 50 * m->nu; k++) {
      assert_true(fabs(ep->ctrl[k]) <= 1);
      nlimit += fabs(ep->ctrl[k]) == 1;
    }
  }
  assert_true(nlimit > 30);
  printf("cartpole 3 x 50: %d controls at the limits without excitation, %d of 150 with "
         "excitation 3\n", nclip, nlimit);
  dso_dataset_free(a);
  dso_dataset_free(b);
  dso_dataset_free(c);
  dso_dataset_free(x);
  dso_task_free(t);
}

// the arm's policy reads noisy sensors: the recorded measurements are the chain's sampled y, the
// recorded controls its applied a, the recorded state its x_t
static void test_sensor_chain(void** state) {
  dsoTask* t = load("tasks/arm_sensor_policy.json");
  const mjModel* m = t->model;
  int n = t->theta->n, N = 2, T = 40;
  double* u = calloc((size_t)n, sizeof(double));
  dso_theta_init(t->theta, u);
  int j = dso_theta_find(t->theta, "physics.upper_arm.mass");
  assert_true(j >= 0);
  u[j] += 0.3;  // a "true" value away from init
  dsoDataset* ds = simulate(t, u, N, T, 11, 0, 0);
  dsoError err = {0};
  dsoMjChain* mc = dso_task_chain(t, &err);
  assert_non_null(mc);
  assert_int_equal(mc->ns, m->nsensordata);
  dsoRolloutSettings rs = t->rollout;
  rs.terminate = 0;
  rs.horizon = T;
  rs.seed = 11;
  dsoRollout* ro = NULL;
  assert_int_equal(dso_rollout_create(&ro, &mc->chain, &rs, N, &err), DSO_OK);
  assert_int_equal(dso_rollout_run(ro, u, 0, &err), DSO_OK);
  int ns = m->nsensordata;
  double noise = 0;
  for (int e = 0; e < N; e++) {
    const dsoEpisode* ep = dso_dataset_episode(ds, e);
    assert_int_equal(ep->T, T);
    for (int k = 0; k < T; k++) {
      const double* x = dso_rollout_state(ro, e, k);
      const double* xn = dso_rollout_state(ro, e, k + 1);
      assert_memory_equal(ep->sensordata + k * ns, xn + mc->off_y, sizeof(double) * (size_t)ns);
      assert_memory_equal(ep->ctrl + k * m->nu, xn + mc->off_a, sizeof(double) * (size_t)m->nu);
      assert_memory_equal(ep->qpos + k * m->nq, x, sizeof(double) * (size_t)m->nq);
      assert_memory_equal(ep->qvel + k * m->nv, x + m->nq, sizeof(double) * (size_t)m->nv);
      // sensor 0 is shoulder_pos with gain 1.05 and noise-free: y = 1.05 qpos
      assert_true(fabs(ep->sensordata[k * ns] - 1.05 * ep->qpos[k * m->nq]) < 1e-12);
      // shoulder_vel (index 2) carries noise of std 0.02
      noise = fmax(noise, fabs(ep->sensordata[k * ns + 2] - ep->qvel[k * m->nv]));
    }
  }
  assert_true(noise > 0.01 && noise < 0.2);
  dso_rollout_free(ro);
  dso_mjchain_free(mc);
  dso_dataset_free(ds);
  free(u);
  dso_task_free(t);
}

static void test_round_trip(void** state) {
  dsoTask* t = load("tasks/arm_sensor_policy.json");
  dsoDataset* ds = simulate(t, NULL, 3, 30, 5, 0.2, 2);
  char path[1024];
  out_path(path, sizeof(path), "round_trip.csv");
  dsoError err = {0};
  assert_int_equal(dso_dataset_write_csv(path, ds, t->model, &err), DSO_OK);
  dsoDataset* back = NULL;
  if (dso_dataset_read_csv(&back, t->model, path, NULL, &err)) {
    fprintf(stderr, "%s\n", err.msg);
  }
  assert_non_null(back);
  assert_int_equal(dso_dataset_nvalidation(back), 2);
  assert_true(same_data(ds, back));
  remove(path);
  dso_dataset_free(back);
  dso_dataset_free(ds);
  dso_task_free(t);
}

// a task without action-noise entries and without a policy (the pendulum): excitation alone drives
// the controls; bad arguments and a diverged episode are errors
static void test_excitation_and_errors(void** state) {
  dsoTask* t = load("tasks/pendulum_sysid.json");
  dsoDataset* z = simulate(t, NULL, 2, 200, 3, 0, 0);
  dsoDataset* x = simulate(t, NULL, 2, 200, 3, 0.2, 0);
  double s0 = 0, s2 = 0;
  for (int e = 0; e < 2; e++) {
    for (int k = 0; k < 200; k++) {
      s0 += fabs(dso_dataset_episode(z, e)->ctrl[k]);
      s2 += dso_dataset_episode(x, e)->ctrl[k] * dso_dataset_episode(x, e)->ctrl[k];
    }
  }
  double sd = sqrt(s2 / 400);
  printf("pendulum: excitation 0.2 gives control std %.3f over 400 samples\n", sd);
  assert_true(s0 == 0);
  assert_true(fabs(sd - 0.2) < 4 * 0.2 / sqrt(2 * 400.0));  // 4 standard errors
  dso_dataset_free(z);
  dso_dataset_free(x);

  dsoError err = {0};
  dsoDataset* ds = (dsoDataset*)&err;  // must be reset to NULL on failure
  assert_int_equal(dso_simulate(&ds, t, NULL, 0, 10, 1, 0, 0, &err), DSO_ERR_INPUT);
  assert_null(ds);
  assert_non_null(strstr(err.msg, "episodes"));
  dso_error_clear(&err);
  assert_int_equal(dso_simulate(&ds, t, NULL, 2, 0, 1, 0, 0, &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "horizon"));
  dso_error_clear(&err);
  assert_int_equal(dso_simulate(&ds, t, NULL, 2, 10, 1, -1, 0, &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "excitation"));
  dso_error_clear(&err);
  assert_int_equal(dso_simulate(&ds, t, NULL, 2, 10, 1, NAN, 0, &err), DSO_ERR_INPUT);
  dso_error_clear(&err);
  assert_int_equal(dso_simulate(&ds, t, NULL, 2, 10, 1, 0, 3, &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "validation"));
  dso_error_clear(&err);
  assert_null(ds);
  dso_task_free(t);

  // a cartpole with a huge gear is thrown off by its noisy controls: the error names the first
  // diverged episode and step, and no dataset is returned
  t = load("tasks/cartpole_gradcheck.json");
  int n = t->theta->n;
  double* u = calloc((size_t)n, sizeof(double));
  dso_theta_init(t->theta, u);
  assert_int_equal(dso_theta_from_json(t->theta, u, "{\"physics.force.gear[0]\": 1e4}", "test",
                                       &err), DSO_OK);
  dsoStatus st = dso_simulate(&ds, t, u, 4, 2000, 1, 1.0, 0, &err);
  printf("cartpole with gear 1e4: %s\n", err.msg);
  assert_int_equal(st, DSO_ERR_NUMERIC);
  assert_non_null(strstr(err.msg, "episode 1 diverged at step 1653 of 2000"));
  assert_null(ds);
  dso_dataset_free(ds);
  free(u);
  dso_task_free(t);
}

// simulate-then-fit with an accelerometer: every row's sensors are measured with that row's own
// control, as the fit's calibration residual (fit.h) pairs them, so at the true θ the fit's cost
// is zero; measured with the previous row's control (what the chain's policy input reads) the
// accelerometer differs by the acceleration the control change causes
static void test_accelerometer_fit_at_truth(void** state) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/tasks/pendulum_sysid.json", DSO_SOURCE_DIR);
  dsoError err = {0};
  dsoTask* t = dso_task_load_flags(path, DSO_TASK_SKIP_DATA, &err);
  assert_non_null(t);
  const mjModel* m = t->model;
  int acc = mj_name2id(m, mjOBJ_SENSOR, "imu_acc");
  assert_true(acc >= 0 && m->sensor_type[acc] == mjSENS_ACCELEROMETER);
  int n = t->theta->n, T = 400, N = 2;
  double* u = calloc((size_t)n, sizeof(double));
  dso_theta_init(t->theta, u);
  dsoDataset* ds = simulate(t, u, N, T, 17, 0.3, 0);
  dsoFitSettings fs;
  dso_fit_settings_default(&fs);
  fs.threads = 1;
  dsoFit* f = dso_fit_create(m, t->theta, ds, &fs, &err);
  if (!f) {
    fail_msg("%s", err.msg);
  }
  dsoFitReport rep;
  assert_int_equal(dso_fit_evaluate(f, u, &rep, &err), DSO_OK);
  // the scale of the calibration cost: 0.5 |y|^2 over every recorded sensor value
  int ns = m->nsensordata;
  double ysq = 0, worst = 0;
  mjData* d = mj_makeData(m);
  for (int e = 0; e < N; e++) {
    const dsoEpisode* ep = dso_dataset_episode(ds, e);
    for (int k = 0; k < T * ns; k++) {
      ysq += 0.5 * ep->sensordata[k] * ep->sensordata[k];
    }
    // the same rows measured under the previous control
    for (int k = 1; k < T; k++) {
      mju_copy(d->qpos, ep->qpos + k * m->nq, m->nq);
      mju_copy(d->qvel, ep->qvel + k * m->nv, m->nv);
      mju_copy(d->ctrl, ep->ctrl + (k - 1) * m->nu, m->nu);
      mj_forward(m, d);
      for (int i = 0; i < 3; i++) {
        int c = m->sensor_adr[acc] + i;
        worst = fmax(worst, fabs(d->sensordata[c] - ep->sensordata[k * ns + c]));
      }
    }
  }
  mj_deleteData(d);
  printf("pendulum with imu_acc, %d x %d samples, excitation 0.3: fit cost at the truth %.3g "
         "(calib %.3g, sysid %.3g) against 0.5|y|^2 = %.3g; the previous control moves imu_acc "
         "by up to %.3g m/s^2\n", N, T, rep.cost, rep.cost_calib, rep.cost_sysid, ysq, worst);
  assert_true(rep.nresidual > N * T * ns);
  assert_true(rep.cost_calib <= 1e-20 * ysq);
  assert_true(rep.cost <= 1e-20 * ysq);
  assert_true(worst > 0.1);
  dso_fit_free(f);
  dso_dataset_free(ds);
  free(u);
  dso_task_free(t);
}

// ---------------------------------------------------------------- the verb

#include "run_cli.h"

static void test_cli(void** state) {
  char csv[1024], args[4096];
  out_path(csv, sizeof(csv), "cli.csv");
  remove(csv);
  assert_int_equal(run("simulate --help"), 0);
  assert_non_null(strstr(g_out, "usage: dso simulate"));
  assert_int_equal(run("--help"), 0);
  assert_non_null(strstr(g_out, "simulate"));

  snprintf(args, sizeof(args), "simulate tasks/cartpole_gradcheck.json -o %s --episodes 2 "
           "--horizon 20 --seed 3 --validation 1 --set physics.pole.mass=0.2 "
           "--set physics.hinge.damping=0.01 --excitation 0.1", csv);
  int st = run(args);
  if (st) {
    fprintf(stderr, "%s", g_err);
  }
  assert_int_equal(st, 0);
  assert_non_null(strstr(g_out, "2 episodes (1 validation) x 20 samples = 40 samples"));
  assert_non_null(strstr(g_out, csv));
  // the file holds exactly what the library records at the same true values
  dsoTask* t = load("tasks/cartpole_gradcheck.json");
  dsoError err = {0};
  double* u = calloc((size_t)t->theta->n, sizeof(double));
  dso_theta_init(t->theta, u);
  assert_int_equal(dso_theta_from_json(t->theta, u, "{\"physics.pole.mass\": 0.2, "
                                       "\"physics.hinge.damping\": 0.01}", "test", &err), DSO_OK);
  dsoDataset* lib = simulate(t, u, 2, 20, 3, 0.1, 1);
  dsoDataset* file = NULL;
  assert_int_equal(dso_dataset_read_csv(&file, t->model, csv, NULL, &err), DSO_OK);
  assert_true(same_data(lib, file));
  dso_dataset_free(lib);
  dso_dataset_free(file);
  free(u);
  dso_task_free(t);
  remove(csv);

  // bad input: exit 2 with a message, and no file written
  const char* cases[][2] = {
      {"simulate", "missing TASK.json"},
      {"simulate tasks/cartpole_gradcheck.json", "missing -o"},
      {"simulate /nonexistent.json -o %s", "/nonexistent.json"},
      {"simulate tasks/cartpole_gradcheck.json -o %s --bogus 3", "unknown option --bogus"},
      {"simulate tasks/cartpole_gradcheck.json -o %s --episodes abc",
       "--episodes: expected an integer in [1, 1000000], got 'abc'"},
      {"simulate tasks/cartpole_gradcheck.json -o %s --episodes 0", "got '0'"},
      {"simulate tasks/cartpole_gradcheck.json -o %s --horizon 5x", "--horizon: expected an "
       "integer in [1, 10000000], got '5x'"},
      {"simulate tasks/cartpole_gradcheck.json -o %s --seed -1", "--seed: expected an integer"},
      {"simulate tasks/cartpole_gradcheck.json -o %s --excitation -0.5", "got '-0.5'"},
      {"simulate tasks/cartpole_gradcheck.json -o %s --episodes 2 --validation 3",
       "--validation 3 exceeds"},
      {"simulate tasks/cartpole_gradcheck.json -o %s --set physics.nothing.mass=1",
       "physics.nothing.mass"},
      {"simulate tasks/cartpole_gradcheck.json -o %s --set physics.pole.mass=-1",
       "physics.pole.mass"},
      {"simulate tasks/cartpole_gradcheck.json -o %s --set physics.pole.mass=heavy",
       "--set: expected a finite number, got 'heavy'"},
      {"simulate tasks/cartpole_gradcheck.json -o %s --set physics.pole.mass", "NAME=VALUE"},
      {"simulate tasks/cartpole_gradcheck.json -o %s --seed", "--seed: missing value"},
      {"simulate tasks/cartpole_gradcheck.json tasks/arm_sensor_policy.json -o %s",
       "more than one task file"},
      {"simulate tasks/cartpole_gradcheck.json -o /nonexistent/dir/data.csv", "/nonexistent/dir"},
  };
  int ncase = (int)(sizeof(cases) / sizeof(cases[0]));
  for (int i = 0; i < ncase; i++) {
    snprintf(args, sizeof(args), cases[i][0], csv);
    st = run(args);
    if (st != 2 || !strstr(g_err, cases[i][1])) {
      fprintf(stderr, "case '%s': status %d, stderr: %s", args, st, g_err);
    }
    assert_int_equal(st, 2);
    assert_non_null(strstr(g_err, cases[i][1]));
    assert_int_equal(access(csv, F_OK), -1);
  }
  // a diverged episode is a failure (exit 1) naming the episode
  snprintf(args, sizeof(args), "simulate tasks/cartpole_gradcheck.json -o %s --horizon 50 "
           "--set 'physics.force.gear[0]=1e8'", csv);
  assert_int_equal(run(args), 1);
  assert_non_null(strstr(g_err, "episode 0 diverged at step "));
  assert_int_equal(access(csv, F_OK), -1);
  printf("%d bad inputs exit 2 with their message\n", ncase);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cartpole_episodes),
      cmocka_unit_test(test_sensor_chain),
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_excitation_and_errors),
      cmocka_unit_test(test_accelerometer_fit_at_truth),
      cmocka_unit_test(test_cli),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
