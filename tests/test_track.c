// The time-varying tracking cost L_track^{n,t}(x, θ) = γ^t ‖x̄_t^n − x‖² (paper section 5.1, the
// "track" term of cost.h) with multiple-shooting windows (mjchain.h):
//  - windows: rollout n starts from the recorded state of window n mod #windows of the training
//    episodes (validation episodes are skipped), step t reads sample t of the window, and the
//    term is 0 past the window's end (checked against the formula on a hand-written recording);
//  - pathwise gradient (adjoint with ∂L/∂x from the term) against centered differences of J
//    under common random numbers, pendulum with an MLP policy, action noise and a physics entry;
//  - the score route (Algorithm 1, section 3) against the pathwise route within 4 standard errors
//    (fixed seed), pendulum with a linear policy;
//  - bad input: track without data, unknown joint, unrecorded column, data not on the timestep;
//  - application (section 5.2, "if we only have example trajectories ... use the tracking cost"):
//    `dso simulate` records demonstrations of a known linear policy, `dso run` on a track task
//    whose policy starts at zero learns a policy that tracks them; the tracking cost on a common
//    evaluation batch falls by more than 10^4 and the gains come back within 1% (noise-free
//    demonstrations and a noise-free learner: the demonstrator tracks its own recording exactly,
//    so J = 0 at the demonstrator's gains and the gains are identifiable from 16 windows).
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <cmocka.h>

#include "dso_internal.h"
#include "chain/grad.h"
#include "mujoco/mjchain.h"
#include "chain/rollout.h"
#include "config/task.h"
#include "run_cli.h"
#include "config/json.h"

static char g_dir[1024];
static int g_count;

// the reference recording: 2 training episodes of 121 samples at 1 ms and a validation one
static void write_reference(const char* path, int with_qvel, double dt) {
  FILE* f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f, with_qvel ? "time,episode,validation,qpos.hinge,qvel.hinge\n"
                       : "time,episode,validation,qpos.hinge\n");
  for (int e = 0; e < 3; e++) {
    for (int k = 0; k < 121; k++) {
      double t = k * dt, w = 2 * M_PI / 0.8;
      double a = e == 2 ? 2.5 : 0.6 + 0.2 * e;
      double q = a * cos(w * t + e), v = -a * w * sin(w * t + e);
      if (with_qvel) {
        fprintf(f, "%.17g,%d,%d,%.17g,%.17g\n", t, e, e == 2, q, v);
      } else {
        fprintf(f, "%.17g,%d,%d,%.17g\n", t, e, e == 2, q);
      }
    }
  }
  fclose(f);
}

// writes a task (pendulum, given policy, theta, cost and data sections) and loads it
static dsoTask* load_task(const char* policy, const char* cost, const char* data,
                          const char* theta, dsoError* err) {
  char path[512], text[8192];
  snprintf(path, sizeof(path), "%s/task%d.json", g_dir, g_count++);
  snprintf(text, sizeof(text),
           "{\"model\": \"%s/models/pendulum.xml\", \"policy\": %s,"
           " \"chain\": {\"init_qpos\": {\"hinge\": 0.3}}, \"cost\": %s,%s%s%s"
           " \"rollout\": {\"setting\": \"episodic\", \"gamma\": 0.98, \"terminate\": false,"
           " \"horizon\": 60, \"rollouts\": 8, \"threads\": 2, \"seed\": 11}, \"theta\": %s}",
           DSO_SOURCE_DIR, policy, cost, data ? " \"data\": " : "", data ? data : "",
           data ? "," : "", theta);
  FILE* f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  return dso_task_load(path, err);
}

static char g_data[512];  // {"files": the reference CSV}

typedef struct {
  dsoTask* task;
  dsoMjChain* mc;
  double* u;
} Fixture;

static Fixture make(const char* policy, const char* cost, const char* theta) {
  Fixture f = {0};
  dsoError err = {0};
  f.task = load_task(policy, cost, g_data, theta, &err);
  f.mc = f.task ? dso_task_chain(f.task, &err) : NULL;
  if (!f.mc) fprintf(stderr, "%s\n", err.msg);
  assert_non_null(f.mc);
  f.u = calloc((size_t)f.task->theta->n + 1, sizeof(double));
  dso_theta_init(f.task->theta, f.u);
  return f;
}

static void fixture_free(Fixture* f) {
  dso_mjchain_free(f->mc);
  dso_task_free(f->task);
  free(f->u);
}

static dsoRollout* batch(const Fixture* f, int N, int T, uint64_t seed) {
  dsoRolloutSettings rs = f->task->rollout;
  dsoRollout* ro = NULL;
  dsoError err = {0};
  rs.horizon = T;
  rs.seed = seed;
  assert_int_equal(dso_rollout_create(&ro, &f->mc->chain, &rs, N, &err), DSO_OK);
  return ro;
}

static double objective(dsoRollout* ro, const double* u, double* se) {
  double J = NAN;
  dsoError err = {0};
  if (dso_rollout_run(ro, u, 0, &err)) fail_msg("%s", err.msg);
  dso_rollout_objective(&J, se, NULL, ro);
  return J;
}

static const char* kTrack =
    "[{\"term\": \"track\", \"weight\": 2, \"qpos_weight\": {\"hinge\": 1},"
    " \"qvel_weight\": {\"hinge\": 0.01}, \"window\": 50}]";

// ---------------------------------------------------------------- windows

static void test_windows(void** state) {
  (void)state;
  Fixture f = make("{\"type\": \"linear\"}", kTrack,
                   "[{\"name\": \"action_noise.torque.std\", \"init\": 0.2}]");
  const dsoMjChain* mc = f.mc;
  // 2 training episodes of 120 steps: windows of 50, 50, 20 steps each
  assert_int_equal(mc->nwin, 6);
  int expect[6][3] = {{0, 0, 50}, {0, 50, 50}, {0, 100, 20}, {1, 0, 50}, {1, 50, 50},
                      {1, 100, 20}};
  for (int k = 0; k < 6; k++) {
    for (int j = 0; j < 3; j++) assert_int_equal(mc->win[3 * k + j], expect[k][j]);
  }
  dsoRollout* ro = batch(&f, 8, 60, 3);
  objective(ro, f.u, NULL);
  const dsoDataset* ds = f.task->data;
  mjData* d = mj_makeData(f.task->model);
  double worst = 0;
  for (int n = 0; n < 8; n++) {
    const int* wk = mc->win + 3 * (n % 6);
    const dsoEpisode* ep = &ds->episode[wk[0]];
    const double* x0 = dso_rollout_state(ro, n, 0);
    // multiple shooting: the rollout starts at the window's recorded state
    assert_true(x0[0] == ep->qpos[wk[1]] && x0[1] == ep->qvel[wk[1]]);
    for (int t = 0; t <= 60; t++) {
      const double* x = dso_rollout_state(ro, n, t);
      double expect_c = 0;
      if (t <= wk[2]) {
        double eq = x[0] - ep->qpos[wk[1] + t], ev = x[1] - ep->qvel[wk[1] + t];
        expect_c = 2 * (eq * eq + 0.01 * ev * ev);
      }
      double c = mc->chain.ops->cost(NULL, NULL, mc, ro->work[0], x, f.u, t, n);
      worst = fmax(worst, fabs(c - expect_c) / (1e-12 + fabs(expect_c)));
      if (t > wk[2]) assert_true(c == 0);
    }
  }
  printf("  cost against the formula: worst relative error %.1e\n", worst);
  assert_true(worst < 1e-12);
  // "random" windows: every rollout starts at some window's first sample
  Fixture g = make("{\"type\": \"linear\"}",
                   "[{\"term\": \"track\", \"qpos_weight\": {\"hinge\": 1}, \"window\": 50,"
                   " \"windows\": \"random\"}]",
                   "[{\"name\": \"action_noise.torque.std\", \"init\": 0.2}]");
  dsoRollout* rg = batch(&g, 32, 10, 3);
  objective(rg, g.u, NULL);
  int seen[6] = {0};
  for (int n = 0; n < 32; n++) {
    const double* x0 = dso_rollout_state(rg, n, 0);
    int k = (int)x0[g.mc->off_ref];
    assert_true(k >= 0 && k < 6);
    seen[k]++;
    assert_true(x0[0] == ds->episode[g.mc->win[3 * k]].qpos[g.mc->win[3 * k + 1]]);
  }
  int distinct = 0;
  for (int k = 0; k < 6; k++) distinct += seen[k] > 0;
  assert_true(distinct >= 4);
  mj_deleteData(d);
  dso_rollout_free(rg);
  dso_rollout_free(ro);
  fixture_free(&g);
  fixture_free(&f);
}

// ---------------------------------------------------------------- gradients

// pathwise gradient against centered differences of J under common random numbers: 1e-6
// relative (entries below 1% of the largest compared to that 1%)
static void test_pathwise_vs_differences(void** state) {
  (void)state;
  Fixture f = make("{\"type\": \"mlp\", \"hidden\": [6], \"seed\": 2, \"init_scale_out\": 1}",
                   kTrack,
                   "[{\"name\": \"action_noise.torque.std\", \"init\": 0.2},"
                   " {\"name\": \"physics.hinge.damping\", \"init\": 0.002}]");
  int n = f.task->theta->n;
  dsoRollout* ro = batch(&f, 8, 60, 2);
  dsoError err = {0};
  double* g = calloc((size_t)n, sizeof(double));
  double* fd = calloc((size_t)n, sizeof(double));
  double* up = calloc((size_t)n, sizeof(double));
  objective(ro, f.u, NULL);
  assert_int_equal(dso_mjchain_diverged(f.mc, ro), 0);
  assert_int_equal(dso_mjchain_pathwise(g, NULL, f.mc, ro, &err), DSO_OK);
  double scale = 0, h = 1e-5, worst = 0;
  for (int i = 0; i < n; i++) {
    memcpy(up, f.u, sizeof(double) * (size_t)n);
    up[i] = f.u[i] + h;
    double jp = objective(ro, up, NULL);
    up[i] = f.u[i] - h;
    fd[i] = (jp - objective(ro, up, NULL)) / (2 * h);
    scale = fmax(scale, fabs(fd[i]));
  }
  for (int i = 0; i < n; i++) {
    double rel = fabs(g[i] - fd[i]) / fmax(fabs(fd[i]), 1e-2 * scale);
    if (rel > 1e-6) {
      fprintf(stderr, "  %-20s pathwise %.10g  fd %.10g  rel %.2e\n", f.task->theta->entry[i].name,
              g[i], fd[i], rel);
    }
    worst = fmax(worst, rel);
  }
  printf("  %d entries, worst relative error %.2e (tolerance 1e-6)\n", n, worst);
  assert_true(worst < 1e-6);
  assert_true(scale > 0);
  free(g);
  free(fd);
  free(up);
  dso_rollout_free(ro);
  fixture_free(&f);
}

// Algorithm 1 (score route, with a fitted baseline) against the pathwise route on the same batch:
// every θ_μ and θ_ε entry within 4 standard errors (seed 2, 4000 rollouts of 40 steps)
static void test_score_vs_pathwise(void** state) {
  (void)state;
  Fixture f = make("{\"type\": \"linear\"}", kTrack,
                   "[{\"name\": \"action_noise.torque.std\", \"init\": 0.3},"
                   " {\"name\": \"policy.K[0,0]\", \"init\": -0.5},"
                   " {\"name\": \"policy.K[0,1]\", \"init\": -0.05}]");
  int n = f.task->theta->n, N = 4000, T = 40;
  dsoRollout* ro = batch(&f, N, T, 2);
  dsoError err = {0};
  double *gs = calloc((size_t)n, sizeof(double)), *ses = calloc((size_t)n, sizeof(double));
  double *gp = calloc((size_t)n, sizeof(double)), *sep = calloc((size_t)n, sizeof(double));
  dsoGrad* gr = NULL;
  dsoBaseline* bl = NULL;
  assert_int_equal(dso_grad_create(&gr, ro, 0, dso_mjchain_nfeat(f.mc), &err), DSO_OK);
  assert_int_equal(dso_baseline_create(&bl, dso_mjchain_nfeat(f.mc), dso_mjchain_features, f.mc,
                                       NULL, ro, &err), DSO_OK);
  assert_int_equal(dso_rollout_run(ro, f.u, 1, &err), DSO_OK);
  assert_int_equal(dso_baseline_fit(bl, ro, &err), DSO_OK);
  assert_int_equal(dso_rollout_run(ro, f.u, 0, &err), DSO_OK);
  assert_int_equal(dso_grad_prepare(gr, ro, bl, &err), DSO_OK);
  assert_int_equal(dso_grad_algorithm1(gs, ses, gr, ro, &err), DSO_OK);
  assert_int_equal(dso_mjchain_pathwise(gp, sep, f.mc, ro, &err), DSO_OK);
  double worst = 0;
  int resolved = 0;
  for (int i = 0; i < n; i++) {
    double z = (gs[i] - gp[i]) / sqrt(ses[i] * ses[i] + sep[i] * sep[i]);
    printf("  %-24s score %10.5f +- %.5f  pathwise %10.5f +- %.5f  z %6.2f\n",
           f.task->theta->entry[i].name, gs[i], ses[i], gp[i], sep[i], z);
    worst = fmax(worst, fabs(z));
    resolved += fabs(gp[i]) > 4 * sep[i];
  }
  assert_true(worst < 4);
  // the comparison has power: most entries are resolved by the pathwise route
  assert_true(resolved >= n - 1);
  dso_baseline_free(bl);
  dso_grad_free(gr);
  free(gs);
  free(ses);
  free(gp);
  free(sep);
  dso_rollout_free(ro);
  fixture_free(&f);
}

// ---------------------------------------------------------------- bad input

static void expect_error(const char* cost, const char* data, const char* needle) {
  dsoError err = {0};
  dsoTask* t = load_task("{\"type\": \"linear\"}", cost, data, "[]", &err);
  dsoMjChain* mc = t ? dso_task_chain(t, &err) : NULL;
  if (mc || !strstr(err.msg, needle)) {
    fail_msg("expected an error with \"%s\", got \"%s\"", needle, err.msg);
  }
  assert_int_equal(err.code, DSO_ERR_INPUT);
  dso_task_free(t);
}

static void test_bad_input(void** state) {
  (void)state;
  char qonly[1024], coarse[1024], path[512];
  snprintf(path, sizeof(path), "%s/qpos_only.csv", g_dir);
  write_reference(path, 0, 0.001);
  snprintf(qonly, sizeof(qonly), "{\"files\": \"%s\"}", path);
  snprintf(path, sizeof(path), "%s/coarse.csv", g_dir);
  write_reference(path, 1, 0.001);
  snprintf(coarse, sizeof(coarse), "{\"files\": \"%s\", \"stride\": 2}", path);
  expect_error(kTrack, NULL, "cost[0]: the track term needs recorded");
  expect_error("[{\"term\": \"track\", \"qpos_weight\": {\"elbow\": 1}}]", g_data,
               "cost[0].qpos_weight");
  expect_error(kTrack, qonly, "cost[0].qvel_weight.hinge: the data does not record qvel.hinge");
  expect_error(kTrack, coarse, "resampled onto the model timestep");
  expect_error("[{\"term\": \"track\", \"window\": -3}]", g_data, "cost[0].window");
  expect_error("[{\"term\": \"track\", \"windows\": \"all\"}]", g_data, "cost[0].windows");
  expect_error("[{\"term\": \"track\", \"qpos_weight\": {\"hinge\": 1}},"
               " {\"term\": \"track\", \"qpos_weight\": {\"hinge\": 1}}]", g_data,
               "cost[1]: a second track term");
  expect_error("[{\"term\": \"track\", \"target\": 1}]", g_data, "cost[0]");
  // the position weight alone on a qpos-only recording is fine
  dsoError err = {0};
  dsoTask* t = load_task("{\"type\": \"linear\"}",
                         "[{\"term\": \"track\", \"qpos_weight\": {\"hinge\": 1}}]", qonly, "[]",
                         &err);
  dsoMjChain* mc = t ? dso_task_chain(t, &err) : NULL;
  if (!mc) fail_msg("%s", err.msg);
  assert_int_equal(mc->nwin, 2);  // whole training episodes
  dso_mjchain_free(mc);
  dso_task_free(t);
  // through the CLI: exit status 2 and the JSON path
  snprintf(path, sizeof(path), "%s/task%d.json", g_dir, g_count - 1);
  char args[1024];
  t = load_task("{\"type\": \"linear\"}", kTrack, qonly, "[]", &err);
  assert_null(t);
  snprintf(path, sizeof(path), "%s/task%d.json", g_dir, g_count - 1);
  snprintf(args, sizeof(args), "check %s", path);
  assert_int_equal(run(args), 2);
  assert_non_null(strstr(g_err, "cost[0].qvel_weight.hinge"));
}

// ---------------------------------------------------------------- application

// the demonstration task (csv NULL: the demonstrator, no cost) or the track task reading csv:
// pendulum, linear policy on the state, starts spread over ±0.5 rad and ±1 rad/s, no action
// noise (the learner is deterministic, so the pathwise gradient is exact); the track task starts
// every rollout at its window's recorded state (no spread) and draws windows at random; the
// fixed damping entry (the model's value) only gives dso run's model.xml writer an edit (with no
// edit at all src/mujoco/mjcf.c passes NULL to qsort, which UBSan reports)
static void write_app_task(const char* out, const char* csv) {
  char text[4096], extra[2048] = "";
  if (csv) {
    snprintf(extra, sizeof(extra),
             " \"cost\": [{\"term\": \"track\", \"qpos_weight\": {\"hinge\": 1},"
             " \"qvel_weight\": {\"hinge\": 0.01}, \"window\": 100, \"windows\": \"random\"}],"
             " \"data\": {\"files\": \"%s\"}, \"train\": {\"max_iter\": 200, \"lr\": 0.05}, \"chain\": {},",
             csv);
  } else {
    snprintf(extra, sizeof(extra), " \"chain\": {\"init_std_qpos\": {\"hinge\": 0.5},"
             " \"init_std_qvel\": {\"hinge\": 1}},");
  }
  snprintf(text, sizeof(text),
           "{\"model\": \"%s/models/pendulum.xml\", \"policy\": {\"type\": \"linear\"},"
           "%s"
           " \"rollout\": {\"setting\": \"episodic\", \"gamma\": 1, \"terminate\": false,"
           " \"horizon\": 100, \"rollouts\": 16, \"threads\": 2, \"seed\": 3},"
           " \"theta\": [{\"name\": \"physics.hinge.damping\", \"fixed\": true}]}",
           DSO_SOURCE_DIR, extra);
  FILE* f = fopen(out, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void test_app_learn_from_demonstrations(void** state) {
  (void)state;
  const char* names[3] = {"policy.K[0,0]", "policy.K[0,1]", "policy.k[0]"};
  const double truth[3] = {-1.2, -0.08, 0.3};
  char demo[512], task[512], csv[512], args[4096];
  snprintf(demo, sizeof(demo), "%s/demo.json", g_dir);
  snprintf(task, sizeof(task), "%s/track.json", g_dir);
  snprintf(csv, sizeof(csv), "%s/demos.csv", g_dir);
  write_app_task(demo, NULL);
  write_app_task(task, csv);
  // demonstrations of the known policy: 8 episodes of 1 s
  snprintf(args, sizeof(args),
           "simulate %s -o %s --episodes 8 --horizon 1001 --seed 5 --set %s=%g --set %s=%g "
           "--set %s=%g", demo, csv, names[0], truth[0], names[1], truth[1], names[2], truth[2]);
  if (run(args) != 0) fail_msg("%s", g_err);
  snprintf(args, sizeof(args), "run %s -o %s/out --quiet", task, g_dir);
  if (run(args) != 0) fail_msg("%s", g_err);
  snprintf(args, sizeof(args), "%s/out/result.json", g_dir);
  char* text = dso_read_text_file(args, NULL);
  assert_non_null(text);
  cJSON* root = cJSON_Parse(text);
  assert_non_null(root);
  // the learned θ, in the task's layout
  dsoError err = {0};
  dsoTask* t = dso_task_load(task, &err);
  if (!t) fail_msg("%s", err.msg);
  int n = t->theta->n;
  double* u0 = calloc((size_t)n, sizeof(double));
  double* u1 = calloc((size_t)n, sizeof(double));
  dso_theta_init(t->theta, u0);
  dso_theta_natural(t->theta, u1, u0);  // natural values, then back to u below
  cJSON* e;
  int found = 0;
  cJSON_ArrayForEach(e, cJSON_GetObjectItem(root, "theta")) {
    const char* name = cJSON_GetObjectItem(e, "name")->valuestring;
    double v = cJSON_GetObjectItem(e, "value")->valuedouble;
    for (int i = 0; i < n; i++) {
      if (!strcmp(t->theta->entry[i].name, name)) {
        u1[i] = v;
      }
    }
    for (int k = 0; k < 3; k++) {
      if (!strcmp(name, names[k])) {
        double rel = fabs(v - truth[k]) / fabs(truth[k]);
        printf("  %-14s demonstrator %8.4f  learned %8.4f  (%5.2f %%)\n", name, truth[k], v,
               100 * rel);
        assert_true(rel < 0.01);
        found++;
      }
    }
  }
  assert_int_equal(found, 3);
  assert_int_equal(dso_theta_unconstrained(t->theta, u1, u1, &err), DSO_OK);
  // the tracking cost on a common evaluation batch (all 80 windows, another seed)
  dsoMjChain* mc = dso_task_chain(t, &err);
  if (!mc) fail_msg("%s", err.msg);
  assert_int_equal(mc->nwin, 80);
  dsoRolloutSettings rs = t->rollout;
  rs.seed = 99;
  dsoRollout* ro = NULL;
  assert_int_equal(dso_rollout_create(&ro, &mc->chain, &rs, 80, &err), DSO_OK);
  double se0, se1;
  double J0 = objective(ro, u0, &se0), J1 = objective(ro, u1, &se1);
  printf("  tracking cost: initial %.4g +- %.2g, learned %.4g +- %.2g (factor %.0f)\n", J0, se0,
         J1, se1, J0 / J1);
  assert_true(J1 < J0 / 1e4);
  dso_rollout_free(ro);
  dso_mjchain_free(mc);
  dso_task_free(t);
  free(u0);
  free(u1);
  cJSON_Delete(root);
  free(text);
}

static int setup(void** state) {
  (void)state;
  if (dso_test_mkdtemp(g_dir, sizeof(g_dir), "dso_test_track")) return -1;
  char path[512];
  snprintf(path, sizeof(path), "%s/reference.csv", g_dir);
  write_reference(path, 1, 0.001);
  snprintf(g_data, sizeof(g_data), "{\"files\": \"%s\"}", path);
  return 0;
}

static int teardown(void** state) {
  (void)state;
  return dso_test_rmtree(g_dir) == 0 ? 0 : -1;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_windows),
      cmocka_unit_test(test_pathwise_vs_differences),
      cmocka_unit_test(test_score_vs_pathwise),
      cmocka_unit_test(test_bad_input),
      cmocka_unit_test(test_app_learn_from_demonstrations),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
