// MuJoCo binding: loading errors, trapped fatal errors, divergence detection, state vectors and
// tangent-space differences on free and ball joints.
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_util.h"

#include "dso_internal.h"

static mjModel* load_string(const char* xml, dsoError* err) {
  char path[2048];
  int fd = dso_test_mkstemps(path, sizeof(path), "dso_test_mj", ".xml");
  assert_true(fd >= 0);
  FILE* f = fdopen(fd, "w");
  fputs(xml, f);
  fclose(f);
  mjModel* m = dso_mj_load(path, err);
  remove(path);
  return m;
}

static const char* kFreeBall =
    "<mujoco><option timestep=\"0.002\"/><worldbody><geom type=\"plane\" size=\"2 2 .1\"/>"
    "<body name=\"box\" pos=\"0 0 0.5\"><freejoint name=\"root\"/>"
    "<geom type=\"box\" size=\".1 .1 .1\" mass=\"1\"/>"
    "<body name=\"arm\" pos=\"0.2 0 0\"><joint name=\"ball\" type=\"ball\"/>"
    "<geom type=\"capsule\" fromto=\"0 0 0 .3 0 0\" size=\".03\" mass=\".2\"/></body></body>"
    "</worldbody><actuator><motor joint=\"ball\" gear=\"0 1 0\"/></actuator></mujoco>";

static void test_load_errors(void** state) {
  dsoError err = {0};
  assert_null(dso_mj_load("/nonexistent/model.xml", &err));
  assert_int_equal(err.code, DSO_ERR_IO);
  assert_non_null(strstr(err.msg, "/nonexistent/model.xml"));

  dso_error_clear(&err);
  assert_null(load_string("<mujoco><worldbody><body><geom type=\"sphere\"/></mujoco>", &err));
  assert_int_equal(err.code, DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "not a valid MJCF model"));

  dso_error_clear(&err);
  assert_null(dso_mj_load("", &err));
  assert_int_equal(err.code, DSO_ERR_INPUT);
}

// MuJoCo's fatal errors come back as errors instead of ending the process
typedef struct {
  const mjModel* m;
} BadArgs;

static void bad_call(void* p) {
  BadArgs* a = (BadArgs*)p;
  mjData* d = mj_makeData(a->m);
  mj_deleteData(d);
  mju_error_i("deliberate failure %d", 7);
}

static void ok_call(void* p) {
  *(int*)p = 42;
}

static void test_trap(void** state) {
  dsoError err = {0};
  mjModel* m = load_string(kFreeBall, &err);
  assert_non_null(m);
  BadArgs a = {m};
  assert_int_equal(dso_mj_trap(bad_call, &a, &err), DSO_ERR_MUJOCO);
  assert_non_null(strstr(err.msg, "deliberate failure 7"));
  // traps are reusable and nest
  int v = 0;
  dso_error_clear(&err);
  assert_int_equal(dso_mj_trap(ok_call, &v, &err), DSO_OK);
  assert_int_equal(v, 42);
  assert_int_equal(dso_mj_trap(bad_call, &a, &err), DSO_ERR_MUJOCO);
  // warnings are counted per thread, with the last message kept
  long before = dso_mj_warning_count();
  mju_warning_i("deliberate warning %d", 3);
  assert_int_equal(dso_mj_warning_count(), before + 1);
  char last[128];
  dso_mj_last_warning(last, sizeof(last));
  assert_non_null(strstr(last, "deliberate warning 3"));
  mj_deleteModel(m);
}

static void test_divergence(void** state) {
  dsoError err = {0};
  mjModel* m = load_string(kFreeBall, &err);
  assert_non_null(m);
  mjData* d = mj_makeData(m);
  assert_int_equal(dso_mj_step(m, d, &err), DSO_OK);
  d->qvel[0] = NAN;
  assert_int_equal(dso_mj_step(m, d, &err), DSO_ERR_NUMERIC);
  assert_non_null(strstr(err.msg, "diverged"));
  // an enormous push diverges too, and is reported, never silently reset
  dso_error_clear(&err);
  mj_resetData(m, d);
  d->qvel[3] = 1e300;
  dsoStatus s = DSO_OK;
  for (int i = 0; i < 20 && s == DSO_OK; i++) {
    s = dso_mj_step(m, d, &err);
  }
  assert_int_equal(s, DSO_ERR_NUMERIC);
  // and again on the same data: MuJoCo's reset leaves its warning counter at 1 each time
  for (int k = 0; k < 3; k++) {
    dso_error_clear(&err);
    d->qvel[0] = NAN;
    assert_int_equal(dso_mj_step(m, d, &err), DSO_ERR_NUMERIC);
  }
  mj_deleteData(d);
  mj_deleteModel(m);
}

static void test_state_roundtrip_and_tangent(void** state) {
  dsoError err = {0};
  mjModel* m = load_string(kFreeBall, &err);
  assert_non_null(m);
  assert_int_equal(dso_mj_state_size(m), m->nq + m->nv + m->na);
  assert_int_equal(dso_mj_tangent_size(m), 2 * m->nv + m->na);
  mjData* d = mj_makeData(m);
  for (int i = 0; i < 50; i++) {
    d->ctrl[0] = 0.3;
    assert_int_equal(dso_mj_step(m, d, &err), DSO_OK);
  }
  int nx = dso_mj_state_size(m), ndx = dso_mj_tangent_size(m);
  double* x0 = calloc((size_t)nx, sizeof(double));
  double* x1 = calloc((size_t)nx, sizeof(double));
  double* x2 = calloc((size_t)nx, sizeof(double));
  double* dx = calloc((size_t)ndx, sizeof(double));
  double* dx2 = calloc((size_t)ndx, sizeof(double));
  dso_mj_state_get(x0, m, d);
  for (int i = 0; i < 50; i++) {
    assert_int_equal(dso_mj_step(m, d, &err), DSO_OK);
  }
  dso_mj_state_get(x1, m, d);
  // x0 + (x1 - x0) = x1 on the manifold (quaternions included)
  dso_mj_state_diff(dx, m, x0, x1);
  memcpy(x2, x0, sizeof(double) * (size_t)nx);
  dso_mj_state_integrate(x2, m, dx, 1.0);
  for (int i = 0; i < nx; i++) {
    assert_true(fabs(x2[i] - x1[i]) < 1e-12);
  }
  // the difference of a state with itself is zero, and differences are antisymmetric
  dso_mj_state_diff(dx2, m, x1, x1);
  for (int i = 0; i < ndx; i++) {
    assert_true(fabs(dx2[i]) < 1e-15);
  }
  dso_mj_state_diff(dx2, m, x1, x0);
  for (int i = 0; i < ndx; i++) {
    assert_true(fabs(dx2[i] + dx[i]) < 1e-9);
  }
  // a small rotation of the ball joint shows up as an angular velocity of the right size
  memcpy(x2, x1, sizeof(double) * (size_t)nx);
  double w[3] = {0, 0, 1e-3};
  int qadr = m->jnt_qposadr[1];
  double q[4];
  memcpy(q, x2 + qadr, sizeof(q));
  mju_quatIntegrate(q, w, 1.0);
  memcpy(x2 + qadr, q, sizeof(q));
  dso_mj_state_diff(dx2, m, x1, x2);
  int vadr = m->jnt_dofadr[1];
  assert_true(fabs(dx2[vadr + 2] - 1e-3) < 1e-12);
  assert_true(fabs(dx2[vadr]) < 1e-12 && fabs(dx2[vadr + 1]) < 1e-12);
  // state_set writes back what state_get read
  dso_mj_state_set(d, m, x0);
  dso_mj_state_get(x2, m, d);
  assert_memory_equal(x2, x0, sizeof(double) * (size_t)nx);
  free(x0);
  free(x1);
  free(x2);
  free(dx);
  free(dx2);
  mj_deleteData(d);
  mj_deleteModel(m);
}

// the policy's state input with a periodic hinge (dso_mj_input): sin q in place, cos q appended,
// 2π-periodic, and its Jacobian in the tangent space equal to central differences through
// dso_mj_state_integrate (free and ball quaternions included)
static const char* kFreeBallHinge =
    "<mujoco><worldbody><body name=\"box\" pos=\"0 0 0.5\"><freejoint name=\"root\"/>"
    "<geom type=\"box\" size=\".1 .1 .1\" mass=\"1\"/>"
    "<body name=\"arm\" pos=\"0.2 0 0\"><joint name=\"ball\" type=\"ball\"/>"
    "<geom type=\"capsule\" fromto=\"0 0 0 .3 0 0\" size=\".03\" mass=\".2\"/>"
    "<body name=\"tip\" pos=\"0.3 0 0\"><joint name=\"hinge\" axis=\"0 1 0\"/>"
    "<joint name=\"slide\" type=\"slide\" axis=\"1 0 0\"/>"
    "<geom type=\"sphere\" size=\".05\" mass=\".1\"/></body></body></body></worldbody>"
    "</mujoco>";

static void test_periodic_input(void** state) {
  dsoError err = {0};
  mjModel* m = load_string(kFreeBallHinge, &err);
  assert_non_null(m);
  int hinge = mj_name2id(m, mjOBJ_JOINT, "hinge"), slide = mj_name2id(m, mjOBJ_JOINT, "slide");
  int per[1] = {hinge};
  int nx = dso_mj_state_size(m), ndx = dso_mj_tangent_size(m);
  int nin = dso_mj_input_size(m, 1);
  assert_int_equal(nin, nx + 1);
  double x[64], xp[64], s[64], sp[64], sm[64], dx[64], J[64 * 64];
  mjData* d = mj_makeData(m);
  mj_resetData(m, d);
  for (int i = 0; i < m->nv; i++) d->qvel[i] = 0.3 * (i + 1) - 1.0;
  mj_integratePos(m, d->qpos, d->qvel, 1.0);  // a generic pose, quaternions away from identity
  d->qpos[m->jnt_qposadr[hinge]] = 2.5;
  dso_mj_state_get(x, m, d);
  dso_mj_input(s, m, per, 1, x);
  int qa = m->jnt_qposadr[hinge];
  assert_true(fabs(s[qa] - sin(2.5)) < 1e-15 && fabs(s[nx] - cos(2.5)) < 1e-15);
  for (int i = 0; i < nx; i++) {
    if (i != qa) assert_true(s[i] == x[i]);
  }
  // periodic: q and q + 2π give the same input
  memcpy(xp, x, sizeof(double) * (size_t)nx);
  xp[qa] += 2 * M_PI;
  dso_mj_input(sp, m, per, 1, xp);
  for (int i = 0; i < nin; i++) assert_true(fabs(sp[i] - s[i]) < 1e-14);
  // the Jacobian against central differences along each tangent direction
  dso_mj_input_jacobian(J, m, per, 1, x);
  const double h = 1e-6;
  double worst = 0;
  for (int c = 0; c < ndx; c++) {
    memset(dx, 0, sizeof(double) * (size_t)ndx);
    dx[c] = 1;
    memcpy(xp, x, sizeof(double) * (size_t)nx);
    dso_mj_state_integrate(xp, m, dx, h);
    dso_mj_input(sp, m, per, 1, xp);
    memcpy(xp, x, sizeof(double) * (size_t)nx);
    dso_mj_state_integrate(xp, m, dx, -h);
    dso_mj_input(sm, m, per, 1, xp);
    for (int r = 0; r < nin; r++) {
      double fd = (sp[r] - sm[r]) / (2 * h);
      worst = fmax(worst, fabs(fd - J[r * ndx + c]));
    }
  }
  assert_true(worst < 1e-8);
  // no periodic joint: s = x, J = the plain state Jacobian
  dso_mj_input(s, m, NULL, 0, x);
  assert_memory_equal(s, x, sizeof(double) * (size_t)nx);
  // the checks: a slide joint, a repeat, an id out of range
  int bad1[1] = {slide}, bad2[2] = {hinge, hinge}, bad3[1] = {99};
  assert_int_equal(dso_mj_input_check(m, per, 1, "periodic", &err), DSO_OK);
  assert_int_equal(dso_mj_input_check(m, bad1, 1, "periodic", &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "\"slide\" is not a hinge"));
  err = (dsoError){0};
  assert_int_equal(dso_mj_input_check(m, bad2, 2, "periodic", &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "listed twice"));
  err = (dsoError){0};
  assert_int_equal(dso_mj_input_check(m, bad3, 1, "periodic", &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "out of range"));
  mj_deleteData(d);
  mj_deleteModel(m);
}

static void test_shipped_and_sample_models_load(void** state) {
  // the five shipped models and Debian's humanoid sample (libmujoco-samples)
  const char* models[] = {"pendulum.xml", "cartpole.xml", "double_pendulum.xml", "arm2.xml",
                          "hopper.xml", "/usr/share/mujoco/model/humanoid/humanoid.xml"};
  for (int i = 0; i < 6; i++) {
    char path[1024];
    if (models[i][0] == '/') {
      snprintf(path, sizeof(path), "%s", models[i]);
    } else {
      snprintf(path, sizeof(path), "%s/models/%s", DSO_SOURCE_DIR, models[i]);
    }
    dsoError err = {0};
    mjModel* m = dso_mj_load(path, &err);
    if (!m) {
      fprintf(stderr, "%s\n", err.msg);
    }
    assert_non_null(m);
    // every shipped model is stable for 2 s under zero control
    mjData* d = mj_makeData(m);
    int steps = (int)(2.0 / m->opt.timestep);
    for (int k = 0; k < steps; k++) {
      assert_int_equal(dso_mj_step(m, d, &err), DSO_OK);
    }
    // and every parameter it offers has a name that resolves back to itself
    int n = dso_bind_list(NULL, 0, m);
    dsoBinding* all = calloc((size_t)n, sizeof(dsoBinding));
    dso_bind_list(all, n, m);
    for (int k = 0; k < n; k++) {
      char name[256];
      dsoBinding b;
      dso_bind_name(name, sizeof(name), m, &all[k]);
      assert_int_equal(dso_bind_resolve(&b, m, name, &err), DSO_OK);
      assert_int_equal(b.kind, all[k].kind);
      assert_int_equal(b.id, all[k].id);
      assert_int_equal(b.index, all[k].index);
      assert_int_equal(b.target, all[k].target);
    }
    free(all);
    mj_deleteData(d);
    mj_deleteModel(m);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_load_errors),
      cmocka_unit_test(test_trap),
      cmocka_unit_test(test_divergence),
      cmocka_unit_test(test_state_roundtrip_and_tangent),
      cmocka_unit_test(test_periodic_input),
      cmocka_unit_test(test_shipped_and_sample_models_load),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
