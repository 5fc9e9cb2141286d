// Cost terms r(x, a): values and gradients in the tangent space against centered differences on
// the shipped arm and cartpole, including the free-joint-safe quadratic term; bad term specs;
// the typed construction (dso_cost_create) against the same cost read from JSON.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/cost_json.h"
#include "mujoco/cost.h"
#include "dso_internal.h"

static mjModel* load(const char* rel) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/%s", DSO_SOURCE_DIR, rel);
  dsoError err = {0};
  mjModel* m = dso_mj_load(path, &err);
  assert_non_null(m);
  return m;
}

static double eval_at(const dsoCost* c, const mjModel* m, mjData* d, const double* x,
                      const double* a, double* gx, double* ga, double* work) {
  dso_mj_state_set(d, m, x);
  mj_forward(m, d);
  return dso_cost_eval(c, m, d, a, gx, ga, work);
}

static void check_gradient(const char* model, const char* json, double expect_at_ref) {
  mjModel* m = load(model);
  mjData* d = mj_makeData(m);
  dsoError err = {0};
  dsoCost* c = dso_cost_from_json(m, json, "t.json", "cost", &err);
  if (!c) {
    fprintf(stderr, "%s\n", err.msg);
  }
  assert_non_null(c);
  int nx = dso_mj_state_size(m), ndx = dso_mj_tangent_size(m), nu = m->nu;
  double* x = calloc((size_t)nx, sizeof(double));
  double* xp = calloc((size_t)nx, sizeof(double));
  double* gx = calloc((size_t)ndx, sizeof(double));
  double* ga = calloc((size_t)nu + 1, sizeof(double));
  double* dx = calloc((size_t)ndx, sizeof(double));
  double* work = calloc((size_t)(6 * m->nv), sizeof(double));
  double a[8] = {0.3, -0.7, 0.2, 0, 0, 0, 0, 0};
  mj_resetData(m, d);
  dso_mj_state_get(x, m, d);
  if (!isnan(expect_at_ref)) {
    assert_true(fabs(eval_at(c, m, d, x, NULL, NULL, NULL, work) - expect_at_ref) < 1e-12);
  }
  for (int i = 0; i < nx; i++) {
    x[i] += 0.3 * sin(1.7 * i + 0.4);
  }
  eval_at(c, m, d, x, a, gx, ga, work);
  double h = 1e-6;
  for (int j = 0; j < ndx; j++) {
    double f[2];
    for (int s = 0; s < 2; s++) {
      memcpy(xp, x, sizeof(double) * (size_t)nx);
      memset(dx, 0, sizeof(double) * (size_t)ndx);
      dx[j] = s ? -h : h;
      dso_mj_state_integrate(xp, m, dx, 1.0);
      f[s] = eval_at(c, m, d, xp, a, NULL, NULL, work);
    }
    double fd = (f[0] - f[1]) / (2 * h);
    assert_true(fabs(fd - gx[j]) < 1e-6 * (1 + fabs(fd)));
  }
  for (int k = 0; k < nu; k++) {
    double ap[8], am[8];
    memcpy(ap, a, sizeof(a));
    memcpy(am, a, sizeof(a));
    ap[k] += h;
    am[k] -= h;
    double fd = (eval_at(c, m, d, x, ap, NULL, NULL, work) -
                 eval_at(c, m, d, x, am, NULL, NULL, work)) / (2 * h);
    assert_true(fabs(fd - ga[k]) < 1e-6 * (1 + fabs(fd)));
  }
  free(x);
  free(xp);
  free(gx);
  free(ga);
  free(dx);
  free(work);
  dso_cost_free(c);
  mj_deleteData(d);
  mj_deleteModel(m);
}

static void test_gradients(void** state) {
  check_gradient("models/cartpole.xml",
                 "[{\"term\": \"quadratic\", \"weight\": 2, \"qpos\": {\"hinge\": 3.14159},"
                 " \"qpos_weight\": {\"hinge\": 1, \"slider\": 0.5}, \"qvel_weight\": {\"hinge\": 0.1}},"
                 " {\"term\": \"effort\", \"weight\": 0.01}]",
                 2 * 3.14159 * 3.14159);
  check_gradient("models/arm2.xml",
                 "[{\"term\": \"site_distance\", \"weight\": 3, \"site\": \"ee\","
                 " \"target\": [0.1, 0, 0.9]}, {\"term\": \"velocity\", \"joint\": \"elbow\","
                 " \"target\": 0.5, \"weight\": 0.2}]", NAN);
  check_gradient("models/cartpole.xml",
                 "[{\"term\": \"upright\", \"weight\": 1.5, \"body\": \"pole\", \"axis\": [0, 0, 1]}]",
                 NAN);
  check_gradient("models/hopper.xml",
                 "[{\"term\": \"upright\", \"body\": \"torso\"}, {\"term\": \"quadratic\","
                 " \"qpos\": {\"rootz\": 1.2}, \"qpos_weight\": {\"rootz\": 1, \"hip\": 0.3}},"
                 " {\"term\": \"effort\", \"weight\": 0.1}]", NAN);
}

static void test_bad_specs(void** state) {
  mjModel* m = load("models/cartpole.xml");
  const char* bad[][2] = {
      {"{}", "expected an array of cost terms"},
      {"[1]", "cost[0]: expected a cost term object"},
      {"[{\"weight\": 1}]", "\"term\" is required"},
      {"[{\"term\": \"quadratik\"}]", "unknown term \"quadratik\""},
      {"[{\"term\": \"effort\", \"weight\": -1}]", "cost[0].weight: expected a number >= 0"},
      {"[{\"term\": \"effort\", \"site\": \"x\"}]", "unknown key \"site\""},
      {"[{\"term\": \"quadratic\", \"qpos\": {\"nope\": 1}}]", "no joint named \"nope\""},
      {"[{\"term\": \"quadratic\", \"qpos\": [1]}]", "cost[0].qpos: expected an object"},
      {"[{\"term\": \"quadratic\", \"qpos_weight\": {\"hinge\": -1}}]", "cost[0].qpos_weight.hinge: expected a number >= 0, got -1"},
      {"[{\"term\": \"site_distance\", \"site\": \"pole_tip\", \"target\": [1, 2]}]",
       "cost[0].target: expected an array of 3 numbers"},
      {"[{\"term\": \"site_distance\", \"site\": \"nope\", \"target\": [1, 2, 3]}]",
       "no site named \"nope\""},
      {"[{\"term\": \"upright\", \"body\": \"pole\", \"axis\": [0, 0, 0]}]", "nonzero vector"},
      {"[{\"term\": \"velocity\", \"joint\": \"hinge\"}]", "\"target\" is required"},
      {"[{\"term\": \"effort\"},", "unexpected end of file"},
      {"[{\"term\": \"effort\"}}", "malformed JSON"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    dsoError err = {0};
    assert_null(dso_cost_from_json(m, bad[i][0], "task.json", "cost", &err));
    assert_int_equal(err.code, DSO_ERR_INPUT);
    if (!strstr(err.msg, bad[i][1]) || !strstr(err.msg, "task.json")) {
      fprintf(stderr, "case %zu: %s\n", i, err.msg);
    }
    assert_non_null(strstr(err.msg, bad[i][1]));
    assert_non_null(strstr(err.msg, "task.json"));
  }
  mj_deleteModel(m);
}

// dso_cost_create from typed specs (no JSON) gives the cost the config layer reads from the
// equivalent "cost" array: the same value and gradients bit for bit at a random state, and the
// same policy-term values; typed values out of range are refused naming the term
static void test_typed_create(void** state) {
  mjModel* m = load("models/cartpole.xml");
  mjData* d = mj_makeData(m);
  dsoError err = {0};
  const char* json =
      "[{\"term\": \"quadratic\", \"weight\": 2, \"qpos\": {\"hinge\": 3.14159},"
      "  \"qpos_weight\": {\"hinge\": 1, \"slider\": 0.5}, \"qvel_weight\": {\"hinge\": 0.1}},"
      " {\"term\": \"site_distance\", \"weight\": 3, \"site\": \"pole_tip\","
      "  \"target\": [0.1, 0, 0.9]},"
      " {\"term\": \"upright\", \"weight\": 1.5, \"body\": \"pole\", \"axis\": [0, 0.6, 0.8]},"
      " {\"term\": \"velocity\", \"joint\": \"slider\", \"target\": 0.5, \"weight\": 0.2},"
      " {\"term\": \"effort\", \"weight\": 0.01},"
      " {\"term\": \"effort\", \"weight\": 0.02, \"action\": \"mean\"},"
      " {\"term\": \"kl\", \"weight\": 0.1, \"std\": 0.5},"
      " {\"term\": \"entropy\", \"weight\": 0.01},"
      " {\"term\": \"proximal\", \"weight\": 0.3},"
      " {\"term\": \"track\", \"weight\": 0.7, \"qpos_weight\": {\"hinge\": 1},"
      "  \"window\": 20, \"windows\": \"random\"}]";
  dsoCost* cj = dso_cost_from_json(m, json, "t.json", "cost", &err);
  if (!cj) {
    fail_msg("%s", err.msg);
  }

  int hinge = mj_name2id(m, mjOBJ_JOINT, "hinge"), slider = mj_name2id(m, mjOBJ_JOINT, "slider");
  double qref[8], wq[8] = {0}, wv[8] = {0}, wtrack[8] = {0}, std[4] = {0.5};
  memcpy(qref, m->qpos0, sizeof(double) * (size_t)m->nq);
  qref[m->jnt_qposadr[hinge]] = 3.14159;
  wq[m->jnt_dofadr[hinge]] = 1;
  wq[m->jnt_dofadr[slider]] = 0.5;
  wv[m->jnt_dofadr[hinge]] = 0.1;
  wtrack[m->jnt_dofadr[hinge]] = 1;
  dsoCostTermSpec t[10];
  dso_cost_term_default(&t[0], DSO_TERM_QUADRATIC);
  t[0].weight = 2;
  t[0].qref = qref;
  t[0].wq = wq;
  t[0].wv = wv;
  dso_cost_term_default(&t[1], DSO_TERM_SITE_DISTANCE);
  t[1].weight = 3;
  t[1].id = mj_name2id(m, mjOBJ_SITE, "pole_tip");
  t[1].target[0] = 0.1;
  t[1].target[2] = 0.9;
  dso_cost_term_default(&t[2], DSO_TERM_UPRIGHT);
  t[2].weight = 1.5;
  t[2].id = mj_name2id(m, mjOBJ_BODY, "pole");
  t[2].target[0] = 0;
  t[2].target[1] = 0.6;
  t[2].target[2] = 0.8;
  dso_cost_term_default(&t[3], DSO_TERM_VELOCITY);
  t[3].weight = 0.2;
  t[3].id = slider;
  t[3].target[0] = 0.5;
  dso_cost_term_default(&t[4], DSO_TERM_EFFORT);
  t[4].weight = 0.01;
  dso_cost_term_default(&t[5], DSO_TERM_EFFORT);
  t[5].weight = 0.02;
  t[5].mean = 1;
  dso_cost_term_default(&t[6], DSO_TERM_KL);
  t[6].weight = 0.1;
  t[6].std = std;
  dso_cost_term_default(&t[7], DSO_TERM_ENTROPY);
  t[7].weight = 0.01;
  dso_cost_term_default(&t[8], DSO_TERM_PROXIMAL);
  t[8].weight = 0.3;
  dso_cost_term_default(&t[9], DSO_TERM_TRACK);
  t[9].weight = 0.7;
  t[9].wq = wtrack;
  t[9].window = 20;
  t[9].random = 1;
  dsoCost* ct = dso_cost_create(m, t, 10, &err);
  if (!ct) {
    fail_msg("%s", err.msg);
  }
  assert_int_equal(ct->nterm, 10);
  assert_int_equal(ct->track, 9);
  assert_int_equal(ct->term[9].window, 20);
  assert_int_equal(ct->term[9].random, 1);
  assert_int_equal(ct->kinematics, cj->kinematics);
  assert_int_equal(ct->policy, cj->policy);
  assert_int_equal(ct->noise, cj->noise);
  assert_int_equal(ct->reference, cj->reference);
  assert_int_equal(ct->track, cj->track);

  // value and gradients at a random state
  int nx = dso_mj_state_size(m), ndx = dso_mj_tangent_size(m), nu = m->nu;
  double x[16], gx[2][16], ga[2][4], work[64], a[4] = {0.3};
  mj_resetData(m, d);
  dso_mj_state_get(x, m, d);
  for (int i = 0; i < nx; i++) {
    x[i] += 0.3 * sin(1.7 * i + 0.4);
  }
  double v[2];
  const dsoCost* both[2] = {cj, ct};
  for (int k = 0; k < 2; k++) {
    v[k] = eval_at(both[k], m, d, x, a, gx[k], ga[k], work);
  }
  assert_true(v[0] > 0 && v[0] == v[1]);
  assert_memory_equal(gx[0], gx[1], sizeof(double) * (size_t)ndx);
  assert_memory_equal(ga[0], ga[1], sizeof(double) * (size_t)nu);
  double mu[1] = {0.4}, sigma[1] = {0.3}, mu_old[1] = {0.1}, sigma_old[1] = {0.2};
  dsoCostPolicy p = {mu, sigma, mu_old, sigma_old};
  double gmu[2][1], gs[2][1], gmo[2][1];
  for (int k = 0; k < 2; k++) {
    v[k] = dso_cost_eval_policy(both[k], m, &p, gmu[k], gs[k], gmo[k]);
  }
  assert_true(v[0] != 0 && v[0] == v[1]);
  assert_true(gmu[0][0] == gmu[1][0] && gs[0][0] == gs[1][0] && gmo[0][0] == gmo[1][0]);
  double qr[8] = {0}, vr[8] = {0};
  for (int k = 0; k < 2; k++) {
    v[k] = dso_cost_eval_track(both[k], m, d, qr, vr, NULL, work);
  }
  assert_true(v[0] > 0 && v[0] == v[1]);
  dso_cost_free(cj);
  dso_cost_free(ct);

  // an empty cost is allowed (the task decides whether it may be empty)
  dsoCost* empty = dso_cost_create(m, NULL, 0, &err);
  assert_non_null(empty);
  assert_int_equal(empty->nterm, 0);
  assert_int_equal(empty->track, -1);
  dso_cost_free(empty);

  // typed values out of range
  double bad_std[4] = {0};
  double neg[8] = {0, -1};
  struct {
    dsoTermKind kind;
    int field;
    const char* what;
  } bad[] = {
      {DSO_TERM_EFFORT, 0, "cost term 0 (effort): weight -1, expected a finite number >= 0"},
      {DSO_TERM_SITE_DISTANCE, 1, "cost term 0 (site_distance): site id 99"},
      {DSO_TERM_UPRIGHT, 2, "cost term 0 (upright): axis: expected a nonzero vector"},
      {DSO_TERM_VELOCITY, 3, "cost term 0 (velocity): joint id -1"},
      {DSO_TERM_KL, 4, "cost term 0 (kl): std: the passive noise std of every actuator"},
      {DSO_TERM_KL, 5, "cost term 0 (kl): std[0] = 0, expected a finite number > 0"},
      {DSO_TERM_QUADRATIC, 6, "cost term 0 (quadratic): wq[1] = -1, expected a finite number >= 0"},
      {DSO_TERM_TRACK, 7, "cost term 0 (track): window -3"},
      {DSO_TERM_QUADRATIC, 8, "cost term 0 (quadratic): qref[0] = nan"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    dsoCostTermSpec b;
    dso_cost_term_default(&b, bad[i].kind);
    double nanq[8] = {NAN};
    switch (bad[i].field) {
      case 0: b.weight = -1; break;
      case 1: b.id = 99; break;
      case 2: b.id = 1; b.target[2] = 0; break;
      case 3: break;
      case 4: break;
      case 5: b.std = bad_std; break;
      case 6: b.wq = neg; break;
      case 7: b.window = -3; break;
      case 8: b.qref = nanq; break;
    }
    dsoError e = {0};
    assert_null(dso_cost_create(m, &b, 1, &e));
    assert_int_equal(e.code, DSO_ERR_INPUT);
    if (!strstr(e.msg, bad[i].what)) {
      fail_msg("case %zu: \"%s\" lacks \"%s\"", i, e.msg, bad[i].what);
    }
  }
  // a second track term
  dsoCostTermSpec two[2];
  dso_cost_term_default(&two[0], DSO_TERM_TRACK);
  dso_cost_term_default(&two[1], DSO_TERM_TRACK);
  dsoError e = {0};
  assert_null(dso_cost_create(m, two, 2, &e));
  assert_non_null(strstr(e.msg, "cost term 1 (track): a second track term"));
  mj_deleteData(d);
  mj_deleteModel(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gradients),
      cmocka_unit_test(test_bad_specs),
      cmocka_unit_test(test_typed_create),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
