// MuJoCo chains (paper eq. 96): the score of the sampled variables against differences of ln P;
// pathwise gradients against centered differences of J under common random numbers, per entry of
// θ_μ, θ_ε, θ_f and θ_h; score against pathwise within 4 standard errors (fixed seed); bitwise
// identical results for 1 and 2 threads; divergence ends a rollout with a penalty; the policy
// costs (D-, L-, H-, R-MDP) in the pathwise route.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dso_internal.h"
#include "config/cost_json.h"
#include "chain/grad.h"
#include "mujoco/mjchain.h"
#include "mujoco/policy.h"
#include "chain/rollout.h"

typedef struct {
  mjModel* m;
  dsoPolicy* policy;
  dsoCost* cost;
  dsoTheta* theta;
  dsoMjChain* mc;
  double* u;
} Fixture;

static void fixture_free(Fixture* f) {
  dso_mjchain_free(f->mc);
  dso_theta_free(f->theta);
  dso_cost_free(f->cost);
  dso_policy_free(f->policy);
  mj_deleteModel(f->m);
  free(f->u);
}

// model, policy kind, policy input, a periodic hinge joint (NULL: none), cost JSON, extra θ
// entries (JSON objects)
static Fixture make_periodic(const char* model, dsoPolicyKind kind, dsoPolicyInput input,
                             const char* periodic, const char* cost, const char** entries,
                             int nentries, double init_scale) {
  Fixture f;
  memset(&f, 0, sizeof(f));
  char path[1024];
  snprintf(path, sizeof(path), "%s/models/%s", DSO_SOURCE_DIR, model);
  dsoError err = {0};
  f.m = dso_mj_load(path, &err);
  assert_non_null(f.m);
  int jp = periodic ? mj_name2id(f.m, mjOBJ_JOINT, periodic) : -1;
  int njp = periodic ? 1 : 0;
  int nin = input == DSO_INPUT_STATE ? dso_mj_input_size(f.m, njp) : f.m->nsensordata;
  dsoPolicySettings ps;
  dso_policy_settings_default(&ps);
  ps.kind = kind;
  ps.nhidden = 1;
  ps.hidden[0] = 8;
  ps.units = 4;
  ps.seed = 3;
  ps.init_scale_out = init_scale;
  f.policy = dso_policy_create(&ps, nin, f.m->nu, &err);
  assert_non_null(f.policy);
  int np = dso_policy_np(f.policy);
  dsoThetaEntry* e = calloc((size_t)(np + nentries), sizeof(dsoThetaEntry));
  dso_policy_entries(e, np, f.policy);
  // a nonzero linear gain so that the policy matters
  for (int i = 0; i < np; i++) {
    if (kind == DSO_POLICY_LINEAR) {
      e[i].init = (-0.3 + 0.1 * (i % 3)) * init_scale;
    }
  }
  for (int i = 0; i < nentries; i++) {
    if (dso_task_parse_entry(&e[np + i], f.m, entries[i], "test", "entry", &err)) {
      fprintf(stderr, "%s\n", err.msg);
    }
    assert_int_equal(err.code, DSO_OK);
  }
  f.theta = dso_theta_create(e, np + nentries, &err);
  free(e);
  assert_non_null(f.theta);
  f.cost = dso_cost_from_json(f.m, cost, "test", "cost", &err);
  assert_non_null(f.cost);
  dsoMjChainSettings cs;
  dso_mjchain_settings_default(&cs);
  cs.input = input;
  cs.periodic = &jp;
  cs.nperiodic = njp;
  double std[64] = {0};
  for (int i = 0; i < 2 * f.m->nv; i++) {
    std[i] = 0.2;
  }
  cs.init_std = std;
  f.mc = dso_mjchain_create(f.m, f.theta, f.policy, f.cost, &cs, &err);
  if (!f.mc) {
    fprintf(stderr, "%s\n", err.msg);
  }
  assert_non_null(f.mc);
  f.u = calloc((size_t)f.theta->n, sizeof(double));
  dso_theta_init(f.theta, f.u);
  return f;
}

static Fixture make(const char* model, dsoPolicyKind kind, dsoPolicyInput input,
                    const char* cost, const char** entries, int nentries, double init_scale) {
  return make_periodic(model, kind, input, NULL, cost, entries, nentries, init_scale);
}

static dsoRollout* batch(const Fixture* f, int N, int T, int threads) {
  dsoRolloutSettings rs;
  dso_rollout_settings_default(&rs);
  rs.setting = DSO_EPISODIC;
  rs.terminate = 0;
  rs.gamma = 0.98;
  rs.horizon = T;
  rs.nthread = threads;
  rs.seed = 11;
  dsoRollout* ro = NULL;
  dsoError err = {0};
  assert_int_equal(dso_rollout_create(&ro, &f->mc->chain, &rs, N, &err), DSO_OK);
  return ro;
}

static double objective(dsoRollout* ro, const double* u) {
  dsoError err = {0};
  assert_int_equal(dso_rollout_run(ro, u, 0, &err), DSO_OK);
  double J;
  dso_rollout_objective(&J, NULL, NULL, ro);
  return J;
}

// pathwise gradient against centered differences of J with the same random numbers
static void check_pathwise_h(Fixture* f, int N, int T, double tol, double h) {
  dsoRollout* ro = batch(f, N, T, 2);
  dsoError err = {0};
  int n = f->theta->n;
  double* g = calloc((size_t)n, sizeof(double));
  double* fd = calloc((size_t)n, sizeof(double));
  double* up = calloc((size_t)n, sizeof(double));
  objective(ro, f->u);
  assert_int_equal(dso_mjchain_diverged(f->mc, ro), 0);
  assert_int_equal(dso_mjchain_pathwise(g, NULL, f->mc, ro, &err), DSO_OK);
  double scale = 0;
  for (int i = 0; i < n; i++) {
    memcpy(up, f->u, sizeof(double) * (size_t)n);
    up[i] = f->u[i] + h;
    double jp = objective(ro, up);
    up[i] = f->u[i] - h;
    double jm = objective(ro, up);
    fd[i] = (jp - jm) / (2 * h);
    scale = fmax(scale, fabs(fd[i]));
  }
  int bad = 0;
  double worst = 0;
  for (int i = 0; i < n; i++) {
    if (f->theta->entry[i].fixed) {
      continue;  // held constant: not optimized, not compared
    }
    // relative error per entry; entries below 1% of the largest are compared to that 1%
    double rel = fabs(g[i] - fd[i]) / fmax(fabs(fd[i]), 1e-2 * scale);
    worst = fmax(worst, rel);
    if (rel > tol) {
      fprintf(stderr, "  %-28s pathwise %.9g  fd %.9g  rel %.2e\n", f->theta->entry[i].name,
              g[i], fd[i], rel);
      bad++;
    }
  }
  printf("  %d entries, worst relative error %.2e (tolerance %.0e)\n", n, worst, tol);
  assert_int_equal(bad, 0);
  free(g);
  free(fd);
  free(up);
  dso_rollout_free(ro);
}

static void check_pathwise(Fixture* f, int N, int T, double tol) {
  check_pathwise_h(f, N, T, tol, 1e-5);
}

static const char* kPendulumCost =
    "[{\"term\": \"quadratic\", \"qpos\": {\"hinge\": 0.5}, \"qpos_weight\": {\"hinge\": 1},"
    " \"qvel_weight\": {\"hinge\": 0.1}}, {\"term\": \"effort\", \"weight\": 0.1}]";

static void test_pathwise_pendulum_linear(void** state) {
  const char* e[] = {"{\"name\": \"action_noise.torque.std\", \"init\": 0.2}",
                     "{\"name\": \"physics.arm.mass\"}",
                     "{\"name\": \"physics.arm.com[2]\"}",
                     "{\"name\": \"physics.hinge.damping\"}",
                     "{\"name\": \"physics.hinge.armature\"}",
                     "{\"name\": \"physics.torque.gear[0]\"}",
                     "{\"name\": \"physics.gravity[2]\"}"};
  Fixture f = make("pendulum.xml", DSO_POLICY_LINEAR, DSO_INPUT_STATE, kPendulumCost, e, 7, 1.0);
  check_pathwise(&f, 4, 200, 1e-4);
  fixture_free(&f);
}

static void test_pathwise_cartpole_mlp(void** state) {
  const char* e[] = {"{\"name\": \"action_noise.force.std\", \"init\": 0.3}",
                     "{\"name\": \"physics.pole.mass\"}",
                     "{\"name\": \"physics.cart.mass\"}",
                     "{\"name\": \"physics.pole.com[2]\"}",
                     "{\"name\": \"physics.pole.inertia[1]\"}",
                     "{\"name\": \"physics.hinge.damping\"}",
                     "{\"name\": \"physics.slider.damping\"}",
                     "{\"name\": \"physics.force.gear[0]\"}",
                     "{\"name\": \"physics.hinge.force\", \"init\": 0.01}"};
  Fixture f = make("cartpole.xml", DSO_POLICY_MLP, DSO_INPUT_STATE,
                   "[{\"term\": \"upright\", \"body\": \"pole\"}, {\"term\": \"quadratic\","
                   " \"qpos_weight\": {\"slider\": 0.5}, \"qvel_weight\": {\"slider\": 0.1}},"
                   " {\"term\": \"effort\", \"weight\": 0.05}]", e, 9, 0.5);
  check_pathwise(&f, 4, 150, 1e-4);
  fixture_free(&f);
}

// the policy reads the pole angle as (sin q, cos q) (dso_mj_input): the input Jacobian enters
// the adjoint pass through the transition and through the D-MDP effort on the policy mean
static void test_pathwise_cartpole_periodic(void** state) {
  (void)state;
  const char* e[] = {"{\"name\": \"action_noise.force.std\", \"init\": 0.2}",
                     "{\"name\": \"physics.pole.mass\"}",
                     "{\"name\": \"physics.hinge.damping\"}"};
  Fixture f = make_periodic("cartpole.xml", DSO_POLICY_MLP, DSO_INPUT_STATE, "hinge",
                            "[{\"term\": \"upright\", \"body\": \"pole\"},"
                            " {\"term\": \"effort\", \"weight\": 0.05, \"action\": \"mean\"}]",
                            e, 3, 0.5);
  assert_int_equal(dso_policy_nin(f.policy), f.m->nq + f.m->nv + 1);
  check_pathwise(&f, 4, 150, 1e-4);
  fixture_free(&f);
}

// the policy reads the calibrated, noisy sensors: θ_h and θ_ξ enter through the measurement
static void test_pathwise_arm_sensors(void** state) {
  const char* e[] = {"{\"name\": \"action_noise.shoulder_torque.std\", \"init\": 0.1}",
                     "{\"name\": \"action_noise.elbow_torque.std\", \"init\": 0.1}",
                     "{\"name\": \"sensor.shoulder_pos.gain\", \"init\": 1.1}",
                     "{\"name\": \"sensor.elbow_pos.offset\", \"init\": 0.05}",
                     "{\"name\": \"sensor.ee_pos.gain[2]\", \"init\": 0.9}",
                     "{\"name\": \"sensor_noise.shoulder_vel.std\", \"init\": 0.02}",
                     "{\"name\": \"sensor_noise.ee_pos.std[0]\", \"init\": 0.01}",
                     "{\"name\": \"physics.upper_arm.mass\"}",
                     "{\"name\": \"physics.forearm.pos[0]\"}",
                     "{\"name\": \"physics.elbow.damping\"}",
                     "{\"name\": \"physics.shoulder.armature\"}",
                     "{\"name\": \"physics.elbow.frictionloss\"}"};
  Fixture f = make("arm2.xml", DSO_POLICY_MLP, DSO_INPUT_SENSORS,
                   "[{\"term\": \"site_distance\", \"site\": \"ee\", \"target\": [0.3, 0, 0.8]},"
                   " {\"term\": \"effort\", \"weight\": 0.01}]", e, 12, 0.5);
  check_pathwise(&f, 3, 100, 1e-4);
  fixture_free(&f);
}

static void test_pathwise_arm_state(void** state) {
  const char* e[] = {"{\"name\": \"action_noise.shoulder_torque.std\", \"init\": 0.1}",
                     "{\"name\": \"physics.forearm.pos[0]\"}",
                     "{\"name\": \"physics.elbow.damping\"}",
                     "{\"name\": \"physics.forearm.mass\"}"};
  Fixture f = make("arm2.xml", DSO_POLICY_MLP, DSO_INPUT_STATE,
                   "[{\"term\": \"site_distance\", \"site\": \"ee\", \"target\": [0.3, 0, 0.8]},"
                   " {\"term\": \"effort\", \"weight\": 0.01}]", e, 4, 0.5);
  check_pathwise(&f, 3, 100, 1e-4);
  fixture_free(&f);
}

// brain-body recurrent policy (eq. 100) on the double pendulum
static void test_pathwise_rnn(void** state) {
  const char* e[] = {"{\"name\": \"action_noise.elbow_torque.std\", \"init\": 0.2}",
                     "{\"name\": \"physics.lower.mass\"}",
                     "{\"name\": \"physics.shoulder.damping\"}"};
  Fixture f = make("double_pendulum.xml", DSO_POLICY_RNN, DSO_INPUT_STATE,
                   "[{\"term\": \"quadratic\", \"qpos\": {\"shoulder\": 0.3},"
                   " \"qpos_weight\": {\"shoulder\": 1, \"elbow\": 1}}, {\"term\": \"effort\","
                   " \"weight\": 0.1}]", e, 3, 0.5);
  check_pathwise(&f, 3, 150, 1e-4);
  fixture_free(&f);
}

// contacts: the hopper's gradient is checked at a looser tolerance, and the figure printed
static void test_pathwise_hopper_contacts(void** state) {
  const char* e[] = {"{\"name\": \"action_noise.hip_torque.std\", \"init\": 0.1}",
                     "{\"name\": \"physics.torso.mass\"}",
                     "{\"name\": \"physics.knee.damping\"}",
                     "{\"name\": \"physics.foot_geom.friction[0]\"}"};
  Fixture f = make("hopper.xml", DSO_POLICY_LINEAR, DSO_INPUT_STATE,
                   "[{\"term\": \"upright\", \"body\": \"torso\"}, {\"term\": \"velocity\","
                   " \"joint\": \"rootx\", \"target\": 1.0}, {\"term\": \"effort\","
                   " \"weight\": 0.01}]", e, 4, 0.1);
  check_pathwise(&f, 2, 100, 1e-2);
  fixture_free(&f);
}

// domain randomization: every rollout runs its own perturbed physics (P^n), and the pathwise
// gradient still matches differences of J with the same random numbers
static void test_domain_randomization(void** state) {
  const char* e[] = {"{\"name\": \"action_noise.force.std\", \"init\": 0.3}",
                     "{\"name\": \"physics.pole.mass\"}",
                     "{\"name\": \"physics.hinge.damping\"}"};
  Fixture f = make("cartpole.xml", DSO_POLICY_LINEAR, DSO_INPUT_STATE,
                   "[{\"term\": \"upright\", \"body\": \"pole\"}]", e, 3, 0.3);
  int n = f.theta->n;
  double* rs = calloc((size_t)n, sizeof(double));
  rs[dso_theta_find(f.theta, "physics.pole.mass")] = 0.3;
  rs[dso_theta_find(f.theta, "physics.hinge.damping")] = 0.5;
  dsoMjChainSettings cs;
  dso_mjchain_settings_default(&cs);
  double std[4] = {0.2, 0.2, 0.2, 0.2};
  cs.init_std = std;
  cs.randomize_std = rs;
  dsoError err = {0};
  dsoMjChain* plain = f.mc;
  f.mc = dso_mjchain_create(f.m, f.theta, f.policy, f.cost, &cs, &err);
  assert_non_null(f.mc);
  // the same random numbers without randomization give another J
  dsoRollout* a = batch(&f, 6, 80, 2);
  double Jr = objective(a, f.u);
  Fixture g = f;
  g.mc = plain;
  dsoRollout* b = batch(&g, 6, 80, 2);
  double Jp = objective(b, f.u);
  assert_true(fabs(Jr - Jp) > 1e-6 * fabs(Jp));
  dso_rollout_free(a);
  dso_rollout_free(b);
  dso_mjchain_free(plain);
  check_pathwise(&f, 6, 80, 1e-4);
  // only physics entries may be randomized
  rs[0] = 0.1;
  assert_null(dso_mjchain_create(f.m, f.theta, f.policy, f.cost, &cs, &err));
  assert_non_null(strstr(err.msg, "only physics entries can be randomized"));
  free(rs);
  fixture_free(&f);
}

// policy costs (cost.h; paper eqs. 18-21): the pathwise route adds ∂L/∂θ_μ (policy VJP), ∂L/∂θ_ε
// and the state dependence through μ(s(x)) and h; each term alone beside a state cost, then all
// together (alone: pendulum only), with the proximal reference moved away from θ, to 1e-6 relative
static const char* kPolicyTerms[] = {
    "{\"term\": \"effort\", \"weight\": 0.3, \"action\": \"mean\"}",
    "{\"term\": \"kl\", \"weight\": 0.05, \"std\": 0.7}",
    "{\"term\": \"entropy\", \"weight\": 0.02}",
    "{\"term\": \"proximal\", \"weight\": 0.2}",
};

static void check_policy_terms(const char* model, dsoPolicyKind kind, const char* state_cost,
                               const char** e, int ne, double scale, int N, int T, int alone) {
  for (int k = alone ? 0 : 4; k <= 4; k++) {
    char cost[2048];
    if (k < 4) {
      snprintf(cost, sizeof(cost), "[%s, %s]", state_cost, kPolicyTerms[k]);
    } else {
      snprintf(cost, sizeof(cost), "[%s, %s, %s, %s, %s]", state_cost, kPolicyTerms[0],
               kPolicyTerms[1], kPolicyTerms[2], kPolicyTerms[3]);
    }
    Fixture f = make(model, kind, DSO_INPUT_STATE, cost, e, ne, scale);
    double* uo = calloc((size_t)f.theta->n, sizeof(double));
    for (int i = 0; i < f.theta->n; i++) {
      uo[i] = f.u[i] + 0.05 * sin(1.3 * i + 0.2);
    }
    dso_mjchain_set_reference(f.mc, uo);
    printf("  %s, %s:\n", model, k < 4 ? kPolicyTerms[k] : "all terms");
    check_pathwise(&f, N, T, 1e-6);
    free(uo);
    fixture_free(&f);
  }
}

static void test_pathwise_policy_costs_pendulum(void** state) {
  const char* e[] = {"{\"name\": \"action_noise.torque.std\", \"init\": 0.3}",
                     "{\"name\": \"physics.arm.mass\"}", "{\"name\": \"physics.hinge.damping\"}",
                     ("{\"name\": \"physics.hinge.frictionloss\", \"init\": 0,"
                      " \"transform\": \"identity\", \"fixed\": true}")};
  // no dry friction: near rest its stick-slip switch makes J non-smooth in θ
  check_policy_terms("pendulum.xml", DSO_POLICY_MLP, "{\"term\": \"quadratic\", \"qpos\":"
                     " {\"hinge\": 1}, \"qpos_weight\": {\"hinge\": 1}, \"qvel_weight\":"
                     " {\"hinge\": 0.01}}", e, 4, 2.0, 4, 150, 1);
}

static void test_pathwise_policy_costs_cartpole(void** state) {
  const char* e[] = {"{\"name\": \"action_noise.force.std\", \"init\": 0.3}",
                     "{\"name\": \"physics.pole.mass\"}"};
  check_policy_terms("cartpole.xml", DSO_POLICY_MLP, "{\"term\": \"upright\", \"body\": \"pole\"}",
                     e, 2, 0.5, 4, 100, 0);
}

// recurrent policy (eq. 100): the policy terms reach back through h
static void test_pathwise_policy_costs_rnn(void** state) {
  const char* e[] = {"{\"name\": \"action_noise.elbow_torque.std\", \"init\": 0.2}",
                     "{\"name\": \"physics.lower.mass\"}"};
  check_policy_terms("double_pendulum.xml", DSO_POLICY_RNN, "{\"term\": \"quadratic\","
                     " \"qpos\": {\"shoulder\": 0.3}, \"qpos_weight\": {\"shoulder\": 1,"
                     " \"elbow\": 1}}", e, 2, 0.5, 3, 100, 0);
}

// the score of the sampled variables: ∇θ ln P against centered differences of ln P
static void test_score_function(void** state) {
  const char* e[] = {"{\"name\": \"action_noise.shoulder_torque.std\", \"init\": 0.3}",
                     "{\"name\": \"action_noise.elbow_torque.std\", \"init\": 0.2}",
                     "{\"name\": \"sensor.shoulder_pos.gain\", \"init\": 1.1}",
                     "{\"name\": \"sensor.elbow_vel.offset\", \"init\": 0.05}",
                     "{\"name\": \"sensor_noise.shoulder_pos.std\", \"init\": 0.02}",
                     "{\"name\": \"sensor_noise.elbow_vel.std\", \"init\": 0.05}",
                     "{\"name\": \"physics.forearm.mass\"}"};
  Fixture f = make("arm2.xml", DSO_POLICY_MLP, DSO_INPUT_SENSORS, "[]", e, 7, 0.5);
  dsoRollout* ro = batch(&f, 2, 20, 1);
  objective(ro, f.u);
  const dsoChainOps* ops = f.mc->chain.ops;
  void* work = ro->work[0];
  int n = f.theta->n;
  double* g = calloc((size_t)n, sizeof(double));
  double* up = calloc((size_t)n, sizeof(double));
  for (int t = 0; t < 20; t += 7) {
    const double* x = dso_rollout_state(ro, 1, t);
    const double* xn = dso_rollout_state(ro, 1, t + 1);
    double lp = ops->logp(g, NULL, f.mc, work, xn, x, f.u, t, 1);
    assert_true(fabs(lp - ro->logp[ro->maxlen + t]) < 1e-9 * (1 + fabs(lp)));
    for (int i = 0; i < n; i++) {
      double h = 1e-6;
      memcpy(up, f.u, sizeof(double) * (size_t)n);
      up[i] += h;
      double lpp = ops->logp(NULL, NULL, f.mc, work, xn, x, up, t, 1);
      up[i] -= 2 * h;
      double lpm = ops->logp(NULL, NULL, f.mc, work, xn, x, up, t, 1);
      double fd = (lpp - lpm) / (2 * h);
      assert_true(fabs(fd - g[i]) < 1e-5 * (1 + fabs(fd)));
    }
    // physics moves the support of P: no score
    assert_true(g[dso_theta_find(f.theta, "physics.forearm.mass")] == 0);
  }
  free(g);
  free(up);
  dso_rollout_free(ro);
  fixture_free(&f);
}

// score (Algorithm 1; with a state baseline fitted on an earlier batch when baseline is set) and
// pathwise estimates of ∇J over the entries of θ that have a score (not physics) on N rollouts
// of T steps; returns the largest |z|, z from the two standard errors
static double score_vs_pathwise(Fixture* f, int N, int T, int baseline) {
  dsoRollout* ro = batch(f, N, T, 2);
  dsoError err = {0};
  int n = f->theta->n;
  double *gs = calloc((size_t)n, sizeof(double)), *ses = calloc((size_t)n, sizeof(double));
  double *gp = calloc((size_t)n, sizeof(double)), *sep = calloc((size_t)n, sizeof(double));
  dsoGrad* gr = NULL;
  dsoBaseline* bl = NULL;
  assert_int_equal(dso_grad_create(&gr, ro, 0, dso_mjchain_nfeat(f->mc), &err), DSO_OK);
  if (baseline) {
    assert_int_equal(dso_baseline_create(&bl, dso_mjchain_nfeat(f->mc), dso_mjchain_features,
                                         f->mc, NULL, ro, &err), DSO_OK);
    assert_int_equal(dso_rollout_run(ro, f->u, 1, &err), DSO_OK);
    assert_int_equal(dso_baseline_fit(bl, ro, &err), DSO_OK);
  }
  assert_int_equal(dso_rollout_run(ro, f->u, 0, &err), DSO_OK);
  assert_int_equal(dso_grad_prepare(gr, ro, bl, &err), DSO_OK);
  assert_int_equal(dso_grad_algorithm1(gs, ses, gr, ro, &err), DSO_OK);
  assert_int_equal(dso_mjchain_pathwise(gp, sep, f->mc, ro, &err), DSO_OK);
  double worst = 0;
  for (int i = 0; i < n; i++) {
    if (f->theta->entry[i].block == DSO_BLOCK_PHYSICS || f->theta->entry[i].fixed) {
      continue;
    }
    double z = (gs[i] - gp[i]) / sqrt(ses[i] * ses[i] + sep[i] * sep[i]);
    printf("  %-24s score %10.5f +- %.5f  pathwise %10.5f +- %.5f  z %6.2f\n",
           f->theta->entry[i].name, gs[i], ses[i], gp[i], sep[i], z);
    worst = fmax(worst, fabs(z));
  }
  dso_baseline_free(bl);
  dso_grad_free(gr);
  free(gs);
  free(ses);
  free(gp);
  free(sep);
  dso_rollout_free(ro);
  return worst;
}

// the same ∇J of θ_μ: cartpole, 10^4 rollouts, |z| < 4
static void test_score_equals_pathwise(void** state) {
  const char* e[] = {"{\"name\": \"action_noise.force.std\", \"init\": 0.5, \"fixed\": true}"};
  Fixture f = make("cartpole.xml", DSO_POLICY_LINEAR, DSO_INPUT_STATE,
                   "[{\"term\": \"quadratic\", \"qpos_weight\": {\"slider\": 1, \"hinge\": 1},"
                   " \"qvel_weight\": {\"slider\": 0.1, \"hinge\": 0.1}},"
                   " {\"term\": \"effort\", \"weight\": 0.1}]", e, 1, 0.3);
  assert_true(score_vs_pathwise(&f, 10000, 40, 0) < 4);
  fixture_free(&f);
}

// with the policy costs (paper eqs. 18-21) L depends on θ_μ and θ_ε: Algorithm 1 receives ∇θ L
// from the chain's cost (eq. 12 with a θ-dependent L); θ_μ and θ_ε, 4000 rollouts, state
// baseline, |z| < 4. The check can fail: without ∇θ L the same batch gives |z| > 4.
static void test_score_equals_pathwise_policy_costs(void** state) {
  const char* e[] = {"{\"name\": \"action_noise.force.std\", \"init\": 0.4}"};
  Fixture f = make("cartpole.xml", DSO_POLICY_LINEAR, DSO_INPUT_STATE,
                   "[{\"term\": \"quadratic\", \"qpos_weight\": {\"hinge\": 0.1}},"
                   " {\"term\": \"effort\", \"weight\": 1, \"action\": \"mean\"},"
                   " {\"term\": \"kl\", \"weight\": 1, \"std\": 0.7},"
                   " {\"term\": \"entropy\", \"weight\": 0.5},"
                   " {\"term\": \"proximal\", \"weight\": 2}]", e, 1, 1.0);
  double* uo = calloc((size_t)f.theta->n, sizeof(double));
  for (int i = 0; i < f.theta->n; i++) {
    uo[i] = f.u[i] + 0.05 * cos(0.7 * i);
  }
  dso_mjchain_set_reference(f.mc, uo);
  assert_true(score_vs_pathwise(&f, 4000, 20, 1) < 4);
  f.mc->chain.cost_grad_zero = 1;  // what the score route saw before the policy costs
  double without = score_vs_pathwise(&f, 4000, 20, 1);
  printf("  without the cost gradient: largest |z| %.1f\n", without);
  assert_true(without > 4);
  free(uo);
  fixture_free(&f);
}

// bitwise identical batches and gradients for 1 and 2 threads
static void test_threads_bitwise(void** state) {
  const char* e[] = {"{\"name\": \"action_noise.force.std\", \"init\": 0.3}",
                     "{\"name\": \"physics.pole.mass\"}"};
  Fixture f = make("cartpole.xml", DSO_POLICY_MLP, DSO_INPUT_STATE,
                   "[{\"term\": \"upright\", \"body\": \"pole\"}]", e, 2, 0.5);
  int n = f.theta->n;
  double* out[2][2];
  for (int k = 0; k < 2; k++) {
    dsoRollout* ro = batch(&f, 7, 30, k + 1);
    dsoError err = {0};
    dsoGrad* gr = NULL;
    out[k][0] = calloc((size_t)n, sizeof(double));
    out[k][1] = calloc((size_t)n, sizeof(double));
    assert_int_equal(dso_grad_create(&gr, ro, 0, 0, &err), DSO_OK);
    assert_int_equal(dso_rollout_run(ro, f.u, 3, &err), DSO_OK);
    assert_int_equal(dso_grad_prepare(gr, ro, NULL, &err), DSO_OK);
    assert_int_equal(dso_grad_algorithm1(out[k][0], NULL, gr, ro, &err), DSO_OK);
    assert_int_equal(dso_mjchain_pathwise(out[k][1], NULL, f.mc, ro, &err), DSO_OK);
    dso_grad_free(gr);
    dso_rollout_free(ro);
  }
  assert_memory_equal(out[0][0], out[1][0], sizeof(double) * (size_t)n);
  assert_memory_equal(out[0][1], out[1][1], sizeof(double) * (size_t)n);
  for (int k = 0; k < 2; k++) {
    free(out[k][0]);
    free(out[k][1]);
  }
  fixture_free(&f);
}

// a step that blows up ends the rollout in a terminal state that costs the penalty
static void test_divergence_is_terminal(void** state) {
  const char* e[] = {"{\"name\": \"physics.hinge.force\", \"init\": 1e30}"};
  Fixture f = make("cartpole.xml", DSO_POLICY_LINEAR, DSO_INPUT_STATE, "[]", e, 1, 1.0);
  dsoRollout* ro = batch(&f, 4, 50, 2);
  dsoError err = {0};
  assert_int_equal(dso_rollout_run(ro, f.u, 0, &err), DSO_OK);
  assert_int_equal(dso_mjchain_diverged(f.mc, ro), 4);
  for (int r = 0; r < 4; r++) {
    assert_int_equal(ro->end[r], DSO_END_TERMINAL);
    assert_true(ro->len[r] < 50);
    const double* last = dso_rollout_state(ro, r, ro->len[r]);
    for (int i = 0; i < f.mc->chain.nx; i++) {
      assert_true(isfinite(last[i]));
    }
  }
  double J;
  dso_rollout_objective(&J, NULL, NULL, ro);
  assert_true(J > 100 && isfinite(J));
  double* g = calloc((size_t)f.theta->n, sizeof(double));
  assert_int_equal(dso_mjchain_pathwise(g, NULL, f.mc, ro, &err), DSO_OK);
  for (int i = 0; i < f.theta->n; i++) {
    assert_true(isfinite(g[i]));
  }
  free(g);
  dso_rollout_free(ro);
  fixture_free(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pathwise_pendulum_linear),
      cmocka_unit_test(test_pathwise_cartpole_mlp),
      cmocka_unit_test(test_pathwise_cartpole_periodic),
      cmocka_unit_test(test_pathwise_arm_sensors),
      cmocka_unit_test(test_pathwise_arm_state),
      cmocka_unit_test(test_pathwise_rnn),
      cmocka_unit_test(test_pathwise_hopper_contacts),
      cmocka_unit_test(test_domain_randomization),
      cmocka_unit_test(test_pathwise_policy_costs_pendulum),
      cmocka_unit_test(test_pathwise_policy_costs_cartpole),
      cmocka_unit_test(test_pathwise_policy_costs_rnn),
      cmocka_unit_test(test_score_function),
      cmocka_unit_test(test_score_equals_pathwise),
      cmocka_unit_test(test_score_equals_pathwise_policy_costs),
      cmocka_unit_test(test_threads_bitwise),
      cmocka_unit_test(test_divergence_is_terminal),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
