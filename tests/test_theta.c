// The packed vector θ: transforms and their derivatives, priors, block order (paper eq. 95),
// JSON by name, and the checks on entries.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dso_internal.h"

static dsoThetaEntry entry(const char* name, dsoBlock block, dsoTransform t, double init,
                           double lo, double hi) {
  dsoThetaEntry e;
  memset(&e, 0, sizeof(e));
  snprintf(e.name, sizeof(e.name), "%s", name);
  e.block = block;
  e.transform = t;
  e.init = init;
  e.lower = lo;
  e.upper = hi;
  return e;
}

static dsoTheta* make(dsoError* err) {
  dsoThetaEntry e[5] = {
      entry("sensor.a.gain", DSO_BLOCK_SENSOR, DSO_TRANSFORM_IDENTITY, 1.2, -INFINITY, INFINITY),
      entry("physics.b.mass", DSO_BLOCK_PHYSICS, DSO_TRANSFORM_LOG, 0.3, 0.01, 10),
      entry("physics.c.com[0]", DSO_BLOCK_PHYSICS, DSO_TRANSFORM_BOUNDED, 0.05, -0.1, 0.2),
      entry("policy.k", DSO_BLOCK_POLICY, DSO_TRANSFORM_IDENTITY, -2.0, -INFINITY, INFINITY),
      entry("action_noise.m.std", DSO_BLOCK_ACTION_NOISE, DSO_TRANSFORM_LOG, 0.1, 0, INFINITY),
  };
  e[1].has_prior = 1;
  e[1].prior_mean = 0.25;
  e[1].prior_std = 0.05;
  e[2].has_prior = 1;
  e[2].prior_mean = 0.0;
  e[2].prior_std = 0.1;
  return dso_theta_create(e, 5, err);
}

static void test_block_order(void** state) {
  dsoError err = {0};
  dsoTheta* th = make(&err);
  assert_non_null(th);
  // eq. 95: policy, physics, action noise, sensor, sensor noise, corrector; stable within blocks
  assert_string_equal(th->entry[0].name, "policy.k");
  assert_string_equal(th->entry[1].name, "physics.b.mass");
  assert_string_equal(th->entry[2].name, "physics.c.com[0]");
  assert_string_equal(th->entry[3].name, "action_noise.m.std");
  assert_string_equal(th->entry[4].name, "sensor.a.gain");
  assert_int_equal(th->block_start[DSO_BLOCK_PHYSICS], 1);
  assert_int_equal(th->block_start[DSO_BLOCK_ACTION_NOISE], 3);
  assert_int_equal(th->block_start[DSO_NBLOCK], 5);
  assert_int_equal(dso_theta_find(th, "sensor.a.gain"), 4);
  assert_int_equal(dso_theta_find(th, "nope"), -1);
  dso_theta_free(th);
  dso_theta_free(NULL);
}

static void test_transforms(void** state) {
  dsoError err = {0};
  dsoTheta* th = make(&err);
  double u[5], v[5], u2[5], J[5];
  dso_theta_init(th, u);
  dso_theta_natural(th, v, u);
  for (int i = 0; i < 5; i++) {
    assert_true(fabs(v[i] - th->entry[i].init) < 1e-14);
  }
  assert_true(fabs(u[1] - log(0.3)) < 1e-15);
  assert_int_equal(dso_theta_unconstrained(th, u2, v, &err), DSO_OK);
  for (int i = 0; i < 5; i++) {
    assert_true(fabs(u2[i] - u[i]) < 1e-12);
  }
  // dv/du against centered differences
  dso_theta_jacobian(th, J, u);
  for (int i = 0; i < 5; i++) {
    double h = 1e-6, up[5], um[5], vp[5], vm[5];
    memcpy(up, u, sizeof(u));
    memcpy(um, u, sizeof(u));
    up[i] += h;
    um[i] -= h;
    dso_theta_natural(th, vp, up);
    dso_theta_natural(th, vm, um);
    assert_true(fabs((vp[i] - vm[i]) / (2 * h) - J[i]) < 1e-8);
  }
  // the bounded transform never leaves its interval
  u[2] = 800;
  dso_theta_natural(th, v, u);
  assert_true(v[2] <= 0.2 && v[2] > 0.19);
  u[2] = -800;
  dso_theta_natural(th, v, u);
  assert_true(v[2] >= -0.1 && v[2] < -0.09);
  dso_theta_free(th);
}

static void test_prior_gradient(void** state) {
  dsoError err = {0};
  dsoTheta* th = make(&err);
  double u[5], g[5];
  dso_theta_init(th, u);
  double c = dso_theta_prior(th, g, u);
  double expect = 0.5 * pow((0.3 - 0.25) / 0.05, 2) + 0.5 * pow(0.05 / 0.1, 2);
  assert_true(fabs(c - expect) < 1e-12);
  for (int i = 0; i < 5; i++) {
    double h = 1e-6, up[5], um[5];
    memcpy(up, u, sizeof(u));
    memcpy(um, u, sizeof(u));
    up[i] += h;
    um[i] -= h;
    double fd = (dso_theta_prior(th, NULL, up) - dso_theta_prior(th, NULL, um)) / (2 * h);
    assert_true(fabs(fd - g[i]) < 1e-7);
  }
  assert_true(g[0] == 0 && g[3] == 0 && g[4] == 0);
  dso_theta_free(th);
}

static void test_json_roundtrip(void** state) {
  dsoError err = {0};
  dsoTheta* th = make(&err);
  double u[5], u2[5], v[5];
  dso_theta_init(th, u);
  u[1] = log(0.7);
  char* text = dso_theta_to_json(th, u, &err);
  assert_non_null(text);
  assert_non_null(strstr(text, "\"physics.b.mass\""));
  dso_theta_init(th, u2);
  assert_int_equal(dso_theta_from_json(th, u2, text, "mem", &err), DSO_OK);
  for (int i = 0; i < 5; i++) {
    assert_true(fabs(u2[i] - u[i]) < 1e-12);
  }
  free(text);
  // partial updates keep the other entries; bad values leave u untouched and name the entry
  assert_int_equal(dso_theta_from_json(th, u2, "{\"policy.k\": 3.5}", "mem", &err), DSO_OK);
  dso_theta_natural(th, v, u2);
  assert_true(v[0] == 3.5 && fabs(v[1] - 0.7) < 1e-12);
  double before[5];
  memcpy(before, u2, sizeof(before));
  const char* bad[][2] = {
      {"{\"policy.q\": 1}", "\"policy.q\" is not an entry"},
      {"{\"policy.k\": \"x\"}", "must be a number"},
      {"{\"physics.b.mass\": -1}", "physics.b.mass"},
      {"{\"physics.b.mass\": 20}", "outside the bounds"},
      {"{\"physics.c.com[0]\": 0.2}", "strictly inside"},
      {"[1, 2]", "expected a JSON object"},
      {"{", "expected a JSON object"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    dso_error_clear(&err);
    assert_int_equal(dso_theta_from_json(th, u2, bad[i][0], "file.json", &err), DSO_ERR_INPUT);
    assert_non_null(strstr(err.msg, bad[i][1]));
    assert_non_null(strstr(err.msg, "file.json"));
    assert_memory_equal(before, u2, sizeof(before));
  }
  dso_theta_free(th);
}

static void test_invalid_layouts(void** state) {
  dsoError err = {0};
  dsoThetaEntry e[2] = {
      entry("a", DSO_BLOCK_POLICY, DSO_TRANSFORM_IDENTITY, 0, -INFINITY, INFINITY),
      entry("a", DSO_BLOCK_PHYSICS, DSO_TRANSFORM_IDENTITY, 0, -INFINITY, INFINITY),
  };
  assert_null(dso_theta_create(e, 2, &err));
  assert_non_null(strstr(err.msg, "appears twice"));
  struct {
    dsoThetaEntry e;
    const char* msg;
  } cases[] = {
      {entry("x", DSO_BLOCK_POLICY, DSO_TRANSFORM_LOG, -1, -INFINITY, INFINITY), "> 0"},
      {entry("x", DSO_BLOCK_POLICY, DSO_TRANSFORM_LOG, 0, -INFINITY, INFINITY), "> 0"},
      {entry("x", DSO_BLOCK_POLICY, DSO_TRANSFORM_IDENTITY, NAN, -INFINITY, INFINITY), "finite"},
      {entry("x", DSO_BLOCK_POLICY, DSO_TRANSFORM_IDENTITY, 5, 0, 1), "outside the bounds"},
      {entry("x", DSO_BLOCK_POLICY, DSO_TRANSFORM_IDENTITY, 0, 1, 0), "lower < upper"},
      {entry("x", DSO_BLOCK_POLICY, DSO_TRANSFORM_BOUNDED, 0, -INFINITY, 1), "finite bounds"},
      {entry("x", DSO_BLOCK_POLICY, DSO_TRANSFORM_BOUNDED, 1, 0, 1), "strictly inside"},
      {entry("", DSO_BLOCK_POLICY, DSO_TRANSFORM_IDENTITY, 0, -INFINITY, INFINITY), "empty"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    dso_error_clear(&err);
    assert_null(dso_theta_create(&cases[i].e, 1, &err));
    assert_int_equal(err.code, DSO_ERR_INPUT);
    if (!strstr(err.msg, cases[i].msg)) {
      fprintf(stderr, "case %zu: %s\n", i, err.msg);
    }
    assert_non_null(strstr(err.msg, cases[i].msg));
  }
  dsoThetaEntry p = entry("x", DSO_BLOCK_POLICY, DSO_TRANSFORM_IDENTITY, 0, -INFINITY, INFINITY);
  p.has_prior = 1;
  p.prior_std = 0;
  dso_error_clear(&err);
  assert_null(dso_theta_create(&p, 1, &err));
  assert_non_null(strstr(err.msg, "std > 0"));
  // an empty θ is valid
  dsoTheta* empty = dso_theta_create(NULL, 0, &err);
  assert_non_null(empty);
  assert_int_equal(empty->n, 0);
  dso_theta_free(empty);
}

// issue 12: the physical range of bound entries, tiny prior deviations and bounded widths that
// overflow are refused at creation; dso_theta_from_json refuses names cut short by \u0000
static void test_physical_ranges(void** state) {
  dsoError err = {0};
  dsoThetaEntry mass = entry("physics.b.mass", DSO_BLOCK_PHYSICS, DSO_TRANSFORM_LOG, 1e-300,
                             0, INFINITY);
  mass.bind.kind = DSO_BIND_BODY_MASS;
  assert_null(dso_theta_create(&mass, 1, &err));
  assert_int_equal(err.code, DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "physics.b.mass: initial value 1e-300 kg is below 1e-12 kg"));
  // the smallest mass allowed is accepted, values from JSON below it are refused by name
  mass.init = DSO_THETA_MIN_MASS;
  dso_error_clear(&err);
  dsoTheta* th = dso_theta_create(&mass, 1, &err);
  assert_non_null(th);
  double u = 0, before;
  dso_theta_init(th, &u);
  before = u;
  assert_int_equal(dso_theta_from_json(th, &u, "{\"physics.b.mass\": 1e-13}", "v.json", &err),
                   DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "v.json: physics.b.mass: value 1e-13 kg is below 1e-12 kg"));
  assert_true(u == before);
  // a name that \u0000 would cut to an existing one is refused, naming line, column and key
  dso_error_clear(&err);
  assert_int_equal(dso_theta_from_json(th, &u, "{\"physics.b.mass\\u0000x\": 2}", "v.json", &err),
                   DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "v.json: line 1, column 17: the key \"physics.b.mass\\u0000x\" "
                                  "holds \\u0000"));
  assert_true(u == before);
  dso_theta_free(th);
  // a quantity that cannot be negative, under the identity transform
  dsoThetaEntry damping = entry("physics.j.damping", DSO_BLOCK_PHYSICS, DSO_TRANSFORM_IDENTITY,
                                -0.5, -INFINITY, INFINITY);
  damping.bind.kind = DSO_BIND_DOF_DAMPING;
  dso_error_clear(&err);
  assert_null(dso_theta_create(&damping, 1, &err));
  assert_non_null(strstr(err.msg, "physics.j.damping: initial value -0.5 must be >= 0"));
  // prior std: 1e-200 squared underflows to 0; 1e-150 is the smallest accepted
  dsoThetaEntry p = entry("x", DSO_BLOCK_POLICY, DSO_TRANSFORM_IDENTITY, 0, -INFINITY, INFINITY);
  p.has_prior = 1;
  p.prior_std = 1e-200;
  dso_error_clear(&err);
  assert_null(dso_theta_create(&p, 1, &err));
  assert_non_null(strstr(err.msg, "x: prior std 1e-200 is below 1e-150"));
  p.prior_std = DSO_THETA_MIN_PRIOR_STD;
  th = dso_theta_create(&p, 1, &err);
  assert_non_null(th);
  double g = 0;
  u = 1e-150;
  assert_true(isfinite(dso_theta_prior(th, &g, &u)) && isfinite(g));
  dso_theta_free(th);
  // the bounded transform over bounds whose width overflows
  dsoThetaEntry b = entry("y", DSO_BLOCK_POLICY, DSO_TRANSFORM_BOUNDED, 0, -1e308, 1e308);
  dso_error_clear(&err);
  assert_null(dso_theta_create(&b, 1, &err));
  assert_non_null(strstr(err.msg, "the bounded transform needs a finite width"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_block_order),
      cmocka_unit_test(test_transforms),
      cmocka_unit_test(test_prior_gradient),
      cmocka_unit_test(test_json_roundtrip),
      cmocka_unit_test(test_invalid_layouts),
      cmocka_unit_test(test_physical_ranges),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
