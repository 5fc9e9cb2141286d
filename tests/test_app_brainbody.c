// Brain-body application (paper section 5.2, eq. 100): `dso run` on tasks/pendulum_brainbody.json,
// a pendulum that sees only its joint angle through a noisy encoder, controlled by a recurrent
// policy whose units augment the chain state, with the hinge damping and the motor gear optimized
// together with the network; and on its static baseline tasks/pendulum_brainbody_static.json
// (linear policy on the same sensor, same cost, design entries, budget and seeds).
// On a short budget (NITER iterations each, through the CLI, outputs in a mkdtemp folder) it checks:
// - both runs succeed without a diverged rollout, and the recurrent run's final batch J is below
//   RNN_FRACTION of its initial J (the static run's below STATIC_FRACTION of its own);
// - result.json names every entry of eq. 100 (policy.WI, WR, WO, WD, bh, ba) and the design
//   entries, the free entries moved, the design values lie within their bounds, fixed noise
//   entries kept their values;
// - the final θ of both runs, evaluated on one common batch of EVAL_ROLLOUTS rollouts (same seed
//   and iteration key), orders the policies: the recurrent J is lower than the static J by more
//   than Z_MIN standard errors of the difference (unpaired: se = sqrt(se_rnn² + se_static²)),
//   also with L_prior added (the objective both runs minimize). The static policy cannot see the
//   swing velocity, so on this budget it cannot damp the swing (bench/bench_brainbody.c measures
//   the full budget, where the static policy buys hinge damping against its prior instead).
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <cmocka.h>

#include "run_cli.h"

#include "dso_internal.h"

#define NITER 40
#define EVAL_ROLLOUTS 64
#define EVAL_SEED 424242
#define EVAL_KEY 1000000
#define RNN_FRACTION 0.02     // measured: 2.5 / 400 (0.6%) after 40 iterations
#define STATIC_FRACTION 0.05  // measured: 8.7 / 342 (2.5%)
#define Z_MIN 3.0             // measured: J 2.57 +- 0.065 against 7.64 +- 0.88 (z = 5.7)
#define NUNITS 8              // policy.units of the recurrent task

static const char* kRnnTask = "tasks/pendulum_brainbody.json";
static const char* kStaticTask = "tasks/pendulum_brainbody_static.json";
static char g_dir[2048];

static char* read_text(const char* dir, const char* sub, const char* file) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, file);
  FILE* f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char* buf = malloc((size_t)n + 1);
  size_t got = fread(buf, 1, (size_t)n, f);
  buf[got] = '\0';
  fclose(f);
  return buf;
}

// runs `dso run TASK -o g_dir/sub --max-iter NITER --quiet`
static int run_task(const char* task, const char* sub) {
  char args[1024];
  snprintf(args, sizeof(args), "run %s -o %s/%s --max-iter %d --quiet", task, g_dir, sub, NITER);
  int st = run(args);
  if (st) fprintf(stderr, "dso %s: exit %d\n%s\n", args, st, g_err);
  return st;
}

static int setup(void** state) {
  (void)state;
  if (dso_test_mkdtemp(g_dir, sizeof(g_dir), "dso_test_brainbody")) return -1;
  return run_task(kRnnTask, "rnn") || run_task(kStaticTask, "static") ? -1 : 0;
}

static int teardown(void** state) {
  (void)state;
  return dso_test_rmtree(g_dir) == 0 ? 0 : -1;
}

// index of column name in the comma-separated header line, -1 if absent
static int column(const char* header, const char* name) {
  int k = 0;
  size_t n = strlen(name);
  for (const char* p = header; p; k++) {
    if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0')) return k;
    p = strchr(p, ',');
    if (p) p++;
  }
  return -1;
}

// progress.csv of run sub: J of the first and the last iteration, number of rows, total of the
// diverged column (0 when the file has none)
static void progress(double* J0, double* J1, int* rows, double* diverged, const char* sub) {
  char* text = read_text(g_dir, sub, "progress.csv");
  assert_non_null(text);
  char* save = NULL;
  char* line = strtok_r(text, "\n", &save);
  assert_non_null(line);
  int ci = column(line, "iter"), cj = column(line, "J"), cd = column(line, "diverged");
  assert_int_equal(ci, 0);
  assert_true(cj > 0);
  *rows = 0;
  *diverged = 0;
  while ((line = strtok_r(NULL, "\n", &save))) {
    double v[32];
    int nv = 0;
    for (char *p = line, *end; nv < 32; p = end + 1) {
      v[nv++] = strtod(p, &end);
      assert_true(end != p);
      if (*end != ',') break;
    }
    assert_true(cj < nv && cd < nv);
    assert_int_equal((int)v[ci], *rows + 1);
    if (*rows == 0) *J0 = v[cj];
    *J1 = v[cj];
    if (cd >= 0) *diverged += v[cd];
    (*rows)++;
  }
  free(text);
}

static cJSON* result(const char* sub) {
  char* text = read_text(g_dir, sub, "result.json");
  assert_non_null(text);
  cJSON* r = cJSON_Parse(text);
  free(text);
  assert_non_null(r);
  return r;
}

static const cJSON* entry(const cJSON* res, const char* name) {
  const cJSON* e;
  cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(res, "theta")) {
    const cJSON* n = cJSON_GetObjectItemCaseSensitive(e, "name");
    if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0) return e;
  }
  return NULL;
}

static double field(const cJSON* e, const char* key) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(e, key);
  assert_true(cJSON_IsNumber(v));
  return v->valuedouble;
}

static void check_runs_lower_J(const char* sub, double fraction) {
  double J0 = 0, J1 = 0, diverged = 0;
  int rows = 0;
  progress(&J0, &J1, &rows, &diverged, sub);
  printf("  %-6s J: initial %.3f, after %d iterations %.3f (%.2f%%; bound %.0f%%), %g diverged\n",
         sub, J0, rows, J1, 100 * J1 / J0, 100 * fraction, diverged);
  assert_int_equal(rows, NITER);
  assert_true(diverged == 0);
  assert_true(isfinite(J0) && J0 > 0);
  assert_true(J1 < fraction * J0);
}

// both runs succeed and lower J to a small fraction of the initial J
static void test_runs_lower_J(void** state) {
  (void)state;
  check_runs_lower_J("rnn", RNN_FRACTION);
  check_runs_lower_J("static", STATIC_FRACTION);
}

// result.json of the recurrent run names the eq. 100 weights and the design entries
static void test_result_names_eq100_entries(void** state) {
  (void)state;
  cJSON* res = result("rnn");
  char name[64];
  int moved = 0, total = 0;
  for (int i = 0; i < NUNITS; i++) {
    const char* fmt[] = {"policy.WI[%d,0]", "policy.WO[0,%d]", "policy.bh[%d]"};
    for (int f = 0; f < 3; f++) {
      snprintf(name, sizeof(name), fmt[f], i);
      const cJSON* e = entry(res, name);
      assert_non_null(e);
      moved += field(e, "value") != field(e, "initial");
      total++;
    }
    for (int j = 0; j < NUNITS; j++) {
      snprintf(name, sizeof(name), "policy.WR[%d,%d]", i, j);
      const cJSON* e = entry(res, name);
      assert_non_null(e);
      moved += field(e, "value") != field(e, "initial");
      total++;
    }
  }
  const char* single[] = {"policy.WD[0,0]", "policy.ba[0]"};
  for (int k = 0; k < 2; k++) {
    const cJSON* e = entry(res, single[k]);
    assert_non_null(e);
    moved += field(e, "value") != field(e, "initial");
    total++;
  }
  // no unit beyond NUNITS, no static policy entries
  snprintf(name, sizeof(name), "policy.WI[%d,0]", NUNITS);
  assert_null(entry(res, name));
  assert_null(entry(res, "policy.K[0,0]"));
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(res, "theta")),
                   total + 4);
  printf("  rnn: %d of %d policy entries moved\n", moved, total);
  assert_int_equal(moved, total);
  // design entries: free, moved, within bounds; noise entries fixed at their values
  const char* design[] = {"physics.hinge.damping", "physics.torque.gear[0]"};
  const double lo[] = {1e-5, 0.25}, hi[] = {0.05, 1.0};
  for (int k = 0; k < 2; k++) {
    const cJSON* e = entry(res, design[k]);
    assert_non_null(e);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(e, "fixed")));
    double v = field(e, "value");
    printf("  rnn: %s %.6g -> %.6g\n", design[k], field(e, "initial"), v);
    assert_true(v != field(e, "initial"));
    assert_true(v >= lo[k] && v <= hi[k]);
  }
  const char* fixed[] = {"action_noise.torque.std", "sensor_noise.hinge_pos.std"};
  for (int k = 0; k < 2; k++) {
    const cJSON* e = entry(res, fixed[k]);
    assert_non_null(e);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "fixed")));
    assert_true(field(e, "value") == field(e, "initial"));
  }
  cJSON_Delete(res);
  // the baseline is static: its policy is K and k only
  res = result("static");
  assert_non_null(entry(res, "policy.K[0,0]"));
  assert_non_null(entry(res, "policy.k[0]"));
  assert_null(entry(res, "policy.WI[0,0]"));
  assert_non_null(entry(res, "physics.hinge.damping"));
  cJSON_Delete(res);
}

// J ± se of the common evaluation batch at the final θ of run sub (natural values from
// result.json), and L_prior there
static double evaluate(double* se, double* prior, const char* task_file, const char* sub) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/%s", DSO_SOURCE_DIR, task_file);
  dsoError err = {0};
  dsoTask* task = dso_task_load(path, &err);
  if (!task) fprintf(stderr, "%s\n", err.msg);
  assert_non_null(task);
  // the final values by name
  cJSON* res = result(sub);
  cJSON* values = cJSON_CreateObject();
  const cJSON* e;
  cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(res, "theta")) {
    cJSON_AddNumberToObject(values, cJSON_GetObjectItemCaseSensitive(e, "name")->valuestring,
                            field(e, "value"));
  }
  char* text = cJSON_PrintUnformatted(values);
  double* u = malloc((size_t)task->theta->n * sizeof(double));
  dso_theta_init(task->theta, u);
  dsoStatus st = dso_theta_from_json(task->theta, u, text, "result.json", &err);
  if (st) fprintf(stderr, "%s\n", err.msg);
  assert_int_equal(st, DSO_OK);
  free(text);
  cJSON_Delete(values);
  cJSON_Delete(res);

  dsoMjChain* mc = dso_task_chain(task, &err);
  assert_non_null(mc);
  dsoRolloutSettings rs = task->rollout;
  rs.seed = EVAL_SEED;
  dsoRollout* ro = NULL;
  assert_int_equal(dso_rollout_create(&ro, &mc->chain, &rs, EVAL_ROLLOUTS, &err), DSO_OK);
  assert_int_equal(dso_rollout_run(ro, u, EVAL_KEY, &err), DSO_OK);
  assert_int_equal(ro->ndiverged, 0);
  double J = 0;
  dso_rollout_objective(&J, se, NULL, ro);
  *prior = dso_theta_prior(task->theta, NULL, u);
  dso_rollout_free(ro);
  dso_mjchain_free(mc);
  free(u);
  dso_task_free(task);
  return J;
}

// on a common evaluation batch the recurrent policy beats the static one by more than Z_MIN
// standard errors of the difference, with and without L_prior
static void test_rnn_beats_static(void** state) {
  (void)state;
  double ser, ses, Pr, Ps;
  double Jr = evaluate(&ser, &Pr, kRnnTask, "rnn");
  double Js = evaluate(&ses, &Ps, kStaticTask, "static");
  double se = sqrt(ser * ser + ses * ses);
  double z = (Js - Jr) / se, zp = (Js + Ps - Jr - Pr) / se;
  printf("  %d iterations, %d common evaluation rollouts: rnn J = %.4f +- %.4f (L_prior %.4f), "
         "static J = %.4f +- %.4f (L_prior %.4f); z = %.2f, with L_prior %.2f (bound %.1f)\n",
         NITER, EVAL_ROLLOUTS, Jr, ser, Pr, Js, ses, Ps, z, zp, Z_MIN);
  assert_true(isfinite(Jr) && isfinite(Js) && se > 0);
  assert_true(z > Z_MIN);
  assert_true(zp > Z_MIN);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_runs_lower_J),
      cmocka_unit_test(test_result_names_eq100_entries),
      cmocka_unit_test(test_rnn_beats_static),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
