// Policy costs of section 2.1 and 5.1 (cost.h): D-MDP (eq. 18, effort at the clipped policy
// mean), L-MDP (eqs. 21, 97: KL to passive dynamics), H-MDP (eq. 19: negative entropy) and R-MDP
// (eq. 20, section 4.3: proximal KL to a reference policy) on MuJoCo chains built from task files:
//  - closed-form values and their gradients in μ, σ, μ_old against centered differences;
//  - (a) the pathwise gradient against centered differences of J and (b) the score route against
//    the pathwise route are in tests/test_mjchain.c beside the checks of every chain
//    (test_pathwise_policy_costs_*, test_score_equals_pathwise_policy_costs);
//  - (c) the closed-form KL against a Monte Carlo estimate of E[ln P(x'|x,θ) − ln p̄(x'|x)] with
//    the chain's own densities (p̄ = the same chain at zero policy and noise σ̄); and the physics-only
//    KL of the clipped action (quadrature) below the action KL when the control limit binds,
//    equal when it does not (data-processing inequality);
//  - (d) bad input names the JSON path; the reference rule of dso_mjchain_set_reference;
//  - tasks/pendulum_lmdp.json runs with `dso run` and lowers J; `dso gradcheck` passes on it.
#define _GNU_SOURCE
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dso_internal.h"
#include "mujoco/mjchain.h"
#include "chain/rollout.h"
#include "config/task.h"
#include "run_cli.h"

static char g_dir[1024];
static int g_count;

static int group_setup(void** state) {
  (void)state;
  return dso_test_mkdtemp(g_dir, sizeof(g_dir), "dso_policy_costs");
}

static int group_teardown(void** state) {
  (void)state;
  return dso_test_rmtree(g_dir) == 0 ? 0 : -1;
}

typedef struct {
  dsoTask* task;
  dsoMjChain* mc;
  double* u;  // (ntheta) θ at its initial values
} Fixture;

// writes a task file for model with the given policy, chain, cost and theta sections (JSON) and
// loads it; returns NULL with err set when the task or its chain is rejected
static dsoTask* load_task(const char* model, const char* policy, const char* chain,
                          const char* cost, const char* theta, dsoError* err) {
  char path[512], text[8192];
  snprintf(path, sizeof(path), "%s/task%d.json", g_dir, g_count++);
  snprintf(text, sizeof(text),
           "{\"model\": \"%s/models/%s\", \"policy\": %s, \"chain\": %s, \"cost\": %s,"
           " \"rollout\": {\"setting\": \"episodic\", \"gamma\": 0.98, \"terminate\": false,"
           " \"horizon\": 100, \"rollouts\": 4, \"threads\": 2, \"seed\": 11}, \"theta\": %s}",
           DSO_SOURCE_DIR, model, policy, chain, cost, theta);
  FILE* f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  return dso_task_load(path, err);
}

static Fixture make(const char* model, const char* policy, const char* chain, const char* cost,
                    const char* theta) {
  Fixture f = {0};
  dsoError err = {0};
  f.task = load_task(model, policy, chain, cost, theta, &err);
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

// a batch of N rollouts of T steps with the task's rollout settings and the given seed
static dsoRollout* batch(const Fixture* f, int N, int T, uint64_t seed) {
  dsoRolloutSettings rs = f->task->rollout;
  dsoRollout* ro = NULL;
  dsoError err = {0};
  rs.horizon = T;
  rs.seed = seed;
  assert_int_equal(dso_rollout_create(&ro, &f->mc->chain, &rs, N, &err), DSO_OK);
  return ro;
}

// J of the batch sampled at u (iteration key 0)
static double objective(dsoRollout* ro, const double* u) {
  double J = NAN;
  dsoError err = {0};
  if (dso_rollout_run(ro, u, 0, &err)) fail_msg("%s", err.msg);
  dso_rollout_objective(&J, NULL, NULL, ro);
  return J;
}

// ---------------------------------------------------------------- closed forms

static double eval_policy(const dsoCost* c, const mjModel* m, const double* mu,
                          const double* sig, const double* muo, const double* sigo, double* gmu,
                          double* gsig, double* gmuo) {
  dsoCostPolicy p = {mu, sig, muo, sigo};
  return dso_cost_eval_policy(c, m, &p, gmu, gsig, gmuo);
}

// values against the formulas of cost.h, gradients against centered differences (arm2: 2 actuators)
static void test_closed_forms(void** state) {
  (void)state;
  dsoError err = {0};
  dsoTask* t = load_task("arm2.xml", "{\"type\": \"linear\"}", "{}",
                         "[{\"term\": \"effort\", \"weight\": 0.5, \"action\": \"mean\"},"
                         " {\"term\": \"kl\", \"weight\": 2,"
                         "  \"std\": {\"shoulder_torque\": 0.8, \"elbow_torque\": 0.6}},"
                         " {\"term\": \"entropy\", \"weight\": 0.3},"
                         " {\"term\": \"proximal\", \"weight\": 1.5}]",
                         "[{\"name\": \"action_noise.shoulder_torque.std\", \"init\": 0.3},"
                         " {\"name\": \"action_noise.elbow_torque.std\", \"init\": 0.2}]", &err);
  assert_non_null(t);
  const mjModel* m = t->model;
  double mu[2] = {0.4, 1.7}, sig[2] = {0.3, 0.2}, muo[2] = {0.1, 1.2}, sigo[2] = {0.35, 0.25};
  double sb[2] = {0.8, 0.6};
  double expect = 0;
  for (int i = 0; i < 2; i++) {
    double c = fmin(fmax(mu[i], -1), 1);  // ctrlrange [-1, 1]
    double e = muo[i] - mu[i];
    expect += 0.5 * c * c;
    expect += 2 * (log(sb[i] / sig[i]) + (sig[i] * sig[i] + mu[i] * mu[i]) / (2 * sb[i] * sb[i]) -
                   0.5);
    expect -= 0.3 * (log(sig[i]) + 0.5 * log(2 * M_PI * M_E));
    expect += 1.5 * (log(sig[i] / sigo[i]) + (sigo[i] * sigo[i] + e * e) / (2 * sig[i] * sig[i]) -
                     0.5);
  }
  double g[3][2];
  double v = eval_policy(t->cost, m, mu, sig, muo, sigo, g[0], g[1], g[2]);
  assert_true(fabs(v - expect) < 1e-12 * fabs(expect));
  // the applied-control evaluation leaves the policy terms out
  mjData* d = mj_makeData(m);
  double work[64], a[2] = {0.5, 0.5};
  assert_true(dso_cost_eval(t->cost, m, d, a, NULL, NULL, work) == 0);
  mj_deleteData(d);
  double* args[3] = {mu, sig, muo};
  for (int k = 0; k < 3; k++) {
    for (int i = 0; i < 2; i++) {
      double h = 1e-6, keep = args[k][i];
      args[k][i] = keep + h;
      double vp = eval_policy(t->cost, m, mu, sig, muo, sigo, NULL, NULL, NULL);
      args[k][i] = keep - h;
      double vm = eval_policy(t->cost, m, mu, sig, muo, sigo, NULL, NULL, NULL);
      args[k][i] = keep;
      double fd = (vp - vm) / (2 * h);
      assert_true(fabs(fd - g[k][i]) < 1e-7 * (1 + fabs(fd)));
    }
  }
  // the clipped mean has no gradient where the limit binds (mu[1] = 1.7 > 1): kl and proximal only
  double expect_g = 2 * mu[1] / (sb[1] * sb[1]) - 1.5 * (muo[1] - mu[1]) / (sig[1] * sig[1]);
  assert_true(fabs(g[0][1] - expect_g) < 1e-12 * fabs(expect_g));
  dso_task_free(t);
}

// moves the proximal reference away from θ so that KL(π_old || π) and its gradient are not zero
static void shift_reference(Fixture* f) {
  double uo[512];
  assert_true(f->task->theta->n <= 512);
  for (int i = 0; i < f->task->theta->n; i++) uo[i] = f->u[i] + 0.05 * sin(1.3 * i + 0.2);
  dso_mjchain_set_reference(f->mc, uo);
}

// ---------------------------------------------------------------- (c) the KL of the chains

// Monte Carlo E[ln P(x'|x,θ) − ln p̄(x'|x)] over x' ~ P(·|x,θ), both densities from the chain's own
// logp (p̄: policy entries zero, action noise σ̄; the sensor noise is sampled and scored alike),
// against the closed form of the kl term at x: |z| < 4 (seed 5, 20000 samples)
static void test_kl_monte_carlo(void** state) {
  (void)state;
  const double sbar = 0.6;
  Fixture f = make("pendulum.xml", "{\"type\": \"mlp\", \"hidden\": [8], \"seed\": 3,"
                   " \"init_scale_out\": 2}",
                   "{\"init_qpos\": {\"hinge\": 0.7}, \"init_std_qvel\": {\"hinge\": 1}}",
                   "[{\"term\": \"kl\", \"std\": 0.6}]",
                   "[{\"name\": \"action_noise.torque.std\", \"init\": 0.35},"
                   " {\"name\": \"sensor_noise.hinge_pos.std\", \"init\": 0.01}]");
  const dsoTheta* th = f.task->theta;
  int n = th->n, nx = f.mc->chain.nx;
  double* ubar = calloc((size_t)n, sizeof(double));
  memcpy(ubar, f.u, sizeof(double) * (size_t)n);
  for (int i = 0; i < n; i++) {
    if (th->entry[i].block == DSO_BLOCK_POLICY) ubar[i] = 0;  // the mlp then outputs exactly 0
    if (th->entry[i].bind.kind == DSO_BIND_ACTION_STD) ubar[i] = log(sbar);
  }
  dsoRollout* ro = batch(&f, 1, 20, 5);
  objective(ro, f.u);
  const dsoChainOps* ops = f.mc->chain.ops;
  void* work = ro->work[0];
  const double* x = dso_rollout_state(ro, 0, 10);
  double kl = ops->cost(NULL, NULL, f.mc, work, x, f.u, 10, 0);
  double* xn = calloc((size_t)nx, sizeof(double));
  int M = 20000;
  double sum = 0, sum2 = 0;
  for (int k = 0; k < M; k++) {
    dsoRng rng;
    dso_rng_seed(&rng, 5, 1, (uint64_t)k);
    assert_int_equal(ops->sample(xn, f.mc, work, x, f.u, 10, 0, &rng), 0);
    double r = ops->logp(NULL, NULL, f.mc, work, xn, x, f.u, 10, 0) -
               ops->logp(NULL, NULL, f.mc, work, xn, x, ubar, 10, 0);
    sum += r;
    sum2 += r * r;
  }
  double mean = sum / M, se = sqrt((sum2 / M - mean * mean) / (M - 1));
  double z = (mean - kl) / se;
  printf("  KL of the chain transitions: closed form %.6f, Monte Carlo %.6f +- %.6f (z %.2f)\n",
         kl, mean, se, z);
  assert_true(kl > 0.1);
  assert_true(fabs(z) < 4);
  free(xn);
  free(ubar);
  dso_rollout_free(ro);
  fixture_free(&f);
}

static double normal_cdf(double z) { return 0.5 * erfc(-z / sqrt(2)); }

static double normal_pdf(double a, double mu, double s) {
  double z = (a - mu) / s;
  return exp(-0.5 * z * z) / (s * sqrt(2 * M_PI));
}

// KL of clip(a) under a ~ N(mu, s²) against clip(a) under N(0, sb²) for the limits [lo, hi]: the
// continuous part by Simpson's rule plus the two atoms at the limits. With one actuator and the
// pendulum's Euler step, x' = f(x, clip(a)) is an injective affine map of clip(a), so this is the
// KL of the physics-only transitions.
static double kl_clipped(double mu, double s, double sb, double lo, double hi) {
  int K = 20000;
  double dx = (hi - lo) / K, sum = 0;
  for (int k = 0; k <= K; k++) {
    double a = lo + k * dx, p = normal_pdf(a, mu, s), q = normal_pdf(a, 0, sb);
    double wgt = (k == 0 || k == K) ? 1 : (k % 2 ? 4 : 2);
    sum += wgt * (p > 0 ? p * log(p / q) : 0);
  }
  double kl = sum * dx / 3;
  double plo = normal_cdf((lo - mu) / s), qlo = normal_cdf(lo / sb);
  double phi = normal_cdf((mu - hi) / s), qhi = normal_cdf(-hi / sb);
  if (plo > 0) kl += plo * log(plo / qlo);
  if (phi > 0) kl += phi * log(phi / qhi);
  return kl;
}

static void test_kl_physics_bound(void** state) {
  (void)state;
  double mu = 0.8, s = 0.5, sb = 0.6;
  double kla = log(sb / s) + (s * s + mu * mu) / (2 * sb * sb) - 0.5;
  double clipped = kl_clipped(mu, s, sb, -1, 1), wide = kl_clipped(mu, s, sb, -50, 50);
  printf("  action KL %.6f; physics-only KL with limits [-1, 1]: %.6f, with [-50, 50]: %.9f\n",
         kla, clipped, wide);
  assert_true(clipped < kla - 0.01);
  assert_true(fabs(wide - kla) < 1e-8);
}

// ---------------------------------------------------------------- (d) bad input, reference

static void expect_error(const char* model, const char* chain, const char* cost,
                         const char* theta, const char* what) {
  dsoError err = {0};
  dsoTask* t = load_task(model, "{\"type\": \"linear\"}", chain, cost, theta, &err);
  dsoMjChain* mc = t ? dso_task_chain(t, &err) : NULL;
  assert_null(mc);
  if (!strstr(err.msg, what)) fprintf(stderr, "expected '%s' in: %s\n", what, err.msg);
  assert_non_null(strstr(err.msg, what));
  assert_int_equal(err.code, DSO_ERR_INPUT);
  dso_task_free(t);
}

static void test_bad_input(void** state) {
  (void)state;
  const char* th = "[{\"name\": \"action_noise.shoulder_torque.std\", \"init\": 0.3},"
                   " {\"name\": \"action_noise.elbow_torque.std\", \"init\": 0.3}]";
  expect_error("arm2.xml", "{}", "[{\"term\": \"effort\", \"action\": \"sampled\"}]", th,
               "cost[0].action: expected \"applied\" or \"mean\", got \"sampled\"");
  expect_error("arm2.xml", "{}", "[{\"term\": \"effort\"}, {\"term\": \"kl\", \"std\": -1}]", th,
               "cost[1].std: expected a finite number > 0, got -1");
  expect_error("arm2.xml", "{}", "[{\"term\": \"kl\", \"std\": {\"shoulder_torque\": 1,"
               " \"wrist\": 1}}]", th,
               "cost[0].std.wrist: the model has no actuator named \"wrist\"");
  expect_error("arm2.xml", "{}", "[{\"term\": \"kl\", \"std\": {\"shoulder_torque\": 0}}]", th,
               "cost[0].std.shoulder_torque: expected a finite number > 0");
  expect_error("arm2.xml", "{}", "[{\"term\": \"kl\", \"std\": {\"shoulder_torque\": 1}}]", th,
               "cost[0].std: no value for actuator \"elbow_torque\"");
  expect_error("arm2.xml", "{}", "[{\"term\": \"kl\"}]", th, "cost[0].std: expected a number");
  expect_error("arm2.xml", "{}", "[{\"term\": \"entropy\", \"std\": 1}]", th,
               "cost[0]: unknown key");
  expect_error("arm2.xml", "{}", "[{\"term\": \"entropie\"}]", th, "kl, entropy, proximal");
  // chain-level requirements
  expect_error("arm2.xml", "{}", "[{\"term\": \"proximal\"}]",
               "[{\"name\": \"action_noise.shoulder_torque.std\", \"init\": 0.3}]",
               "add a theta entry \"action_noise.elbow_torque.std\"");
  expect_error("arm2.xml", "{\"input\": \"sensors\"}",
               "[{\"term\": \"effort\", \"action\": \"mean\"}]", th, "need chain.input \"state\"");
}

// until set, the reference is θ at its initial values: the proximal cost is zero there; moving
// the reference makes it positive, and setting it back restores zero
static void test_reference_rule(void** state) {
  (void)state;
  Fixture f = make("pendulum.xml", "{\"type\": \"mlp\", \"hidden\": [8], \"seed\": 3,"
                   " \"init_scale_out\": 2}", "{\"init_qpos\": {\"hinge\": 0.7}}",
                   "[{\"term\": \"proximal\"}]",
                   "[{\"name\": \"action_noise.torque.std\", \"init\": 0.35}]");
  dsoRollout* ro = batch(&f, 2, 30, 3);
  assert_true(fabs(objective(ro, f.u)) < 1e-12);
  shift_reference(&f);
  double J = objective(ro, f.u);
  assert_true(J > 1e-3);
  dso_mjchain_set_reference(f.mc, f.u);
  assert_true(fabs(objective(ro, f.u)) < 1e-12);
  printf("  proximal J at the reference 0, with the reference moved %.6f\n", J);
  dso_rollout_free(ro);
  fixture_free(&f);
}

// ---------------------------------------------------------------- the shipped task

// J of the last iterations against the first in progress.csv (columns: iteration, cost, J, ...)
static void progress_J(const char* file, double* first, double* last) {
  FILE* fp = fopen(file, "r");
  assert_non_null(fp);
  char line[1024];
  int row = 0;
  while (fgets(line, sizeof(line), fp)) {
    if (row++ == 0) continue;  // header
    int it;
    double cost;
    assert_int_equal(sscanf(line, "%d,%lf", &it, &cost), 2);
    if (row == 2) *first = cost;
    *last = cost;
  }
  fclose(fp);
  assert_true(row > 2);
}

static void test_lmdp_task(void** state) {
  (void)state;
  char args[1024], file[1024];
  assert_int_equal(run("check tasks/pendulum_lmdp.json"), 0);
  snprintf(args, sizeof(args), "run tasks/pendulum_lmdp.json -o %s/lmdp --max-iter 30 --quiet",
           g_dir);
  int st = run(args);
  if (st) fprintf(stderr, "%s%s", g_out, g_err);
  assert_int_equal(st, 0);
  snprintf(file, sizeof(file), "%s/lmdp/progress.csv", g_dir);
  double first = 0, last = 0;
  progress_J(file, &first, &last);
  printf("  pendulum_lmdp: J %.4f at iteration 1, %.4f at iteration 30\n", first, last);
  assert_true(last < 0.5 * first);
  assert_int_equal(run("gradcheck tasks/pendulum_lmdp.json --rollouts 3 --horizon 100 "
                       "--tol 1e-5"), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_closed_forms),
      cmocka_unit_test(test_kl_monte_carlo),
      cmocka_unit_test(test_kl_physics_bound),
      cmocka_unit_test(test_bad_input),
      cmocka_unit_test(test_reference_rule),
      cmocka_unit_test(test_lmdp_task),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
