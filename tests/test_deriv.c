// Step derivatives: A, B and the sensor Jacobian against finite differences of dso_sim_step, and
// ∂f/∂θ_f against an analytic derivative and against differences with a much larger step.
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

#include "mujoco/deriv.h"
#include "dso_internal.h"

static const char* kXml =
    "<mujoco><option timestep=\"0.01\" integrator=\"Euler\"/>"
    "<worldbody><body name=\"arm\"><joint name=\"hinge\" type=\"hinge\" axis=\"0 1 0\""
    " damping=\"0.05\" armature=\"0.002\" frictionloss=\"0\"/>"
    "<inertial pos=\"0 0 -0.2\" mass=\"0.3\" diaginertia=\"0.002 0.002 0.0005\"/>"
    "<body name=\"tip\" pos=\"0 0 -0.3\"><joint name=\"elbow\" type=\"hinge\" axis=\"0 1 0\""
    " damping=\"0.02\"/><inertial pos=\"0 0 -0.1\" mass=\"0.2\" diaginertia=\"0.001 0.001 0.0002\"/>"
    "</body></body></worldbody>"
    "<actuator><motor name=\"m\" joint=\"hinge\" gear=\"2\"/></actuator>"
    "<sensor><jointpos name=\"q\" joint=\"hinge\"/><jointvel name=\"qd\" joint=\"elbow\"/>"
    "</sensor></mujoco>";

static mjModel* load(const char* xml) {
  char path[2048];
  int fd = dso_test_mkstemps(path, sizeof(path), "dso_test_deriv", ".xml");
  FILE* f = fdopen(fd, "w");
  fputs(xml, f);
  fclose(f);
  dsoError err = {0};
  mjModel* m = dso_mj_load(path, &err);
  remove(path);
  assert_non_null(m);
  return m;
}

static dsoTheta* layout(const mjModel* m, const char** json, int n) {
  dsoThetaEntry e[8];
  dsoError err = {0};
  for (int i = 0; i < n; i++) {
    assert_int_equal(dso_task_parse_entry(&e[i], m, json[i], "t", "e", &err), DSO_OK);
  }
  dsoTheta* th = dso_theta_create(e, n, &err);
  assert_non_null(th);
  return th;
}

static void set_state(mjData* d) {
  d->qpos[0] = 0.7;
  d->qpos[1] = -0.4;
  d->qvel[0] = 1.3;
  d->qvel[1] = -0.6;
  d->ctrl[0] = 0.25;
}

static void test_state_and_control_jacobians(void** state) {
  mjModel* m = load(kXml);
  const char* js[] = {"{\"name\": \"physics.hinge.damping\"}"};
  dsoTheta* th = layout(m, js, 1);
  double u[1];
  dso_theta_init(th, u);
  dsoError err = {0};
  dsoSim* sim = dso_sim_create(m, &err);
  dsoSim* probe = dso_sim_create(m, &err);
  dsoDeriv* dv = dso_deriv_create(m, th, NULL, &err);
  assert_non_null(dv);
  assert_int_equal(dso_sim_write(sim, th, u, &err), DSO_OK);
  assert_int_equal(dso_sim_write(probe, th, u, &err), DSO_OK);
  assert_int_equal(dso_deriv_set_theta(dv, th, u, &err), DSO_OK);
  set_state(dso_sim_data(sim));
  int ndx = 4, ns = m->nsensordata;
  double A[16], B[4], H[8], x0[4], xp[4], xm[4], dx[4];
  assert_int_equal(dso_deriv_step(dv, sim, A, B, H, NULL, &err), DSO_OK);
  // dso_sim_data(sim) is untouched
  assert_true(dso_sim_data(sim)->qpos[0] == 0.7 && dso_sim_data(sim)->ctrl[0] == 0.25);
  dso_mj_state_get(x0, m, dso_sim_data(sim));
  double h = 1e-5;
  for (int j = 0; j < ndx + 1; j++) {
    for (int sgn = 0; sgn < 2; sgn++) {
      dso_sim_reset(probe);
      set_state(dso_sim_data(probe));
      double s = sgn ? -h : h;
      if (j < ndx) {
        double e[4] = {0, 0, 0, 0};
        e[j] = s;
        double x[4];
        memcpy(x, x0, sizeof(x));
        dso_mj_state_integrate(x, m, e, 1.0);
        dso_mj_state_set(dso_sim_data(probe), m, x);
      } else {
        dso_sim_data(probe)->ctrl[0] += s;
      }
      assert_int_equal(dso_sim_step(probe, &err), DSO_OK);
      dso_mj_state_get(sgn ? xm : xp, m, dso_sim_data(probe));
    }
    dso_mj_state_diff(dx, m, xm, xp);
    for (int r = 0; r < ndx; r++) {
      double fd = dx[r] / (2 * h);
      double an = j < ndx ? A[r * ndx + j] : B[r];
      assert_true(fabs(fd - an) < 1e-6 * (1 + fabs(fd)));
    }
  }
  // sensors: jointpos of the hinge is qpos[0], jointvel of the elbow is qvel[1]
  double Hexp[8] = {1, 0, 0, 0, 0, 0, 0, 1};
  for (int i = 0; i < ns * ndx; i++) {
    assert_true(fabs(H[i] - Hexp[i]) < 1e-8);
  }
  dso_deriv_free(dv);
  dso_sim_free(sim);
  dso_sim_free(probe);
  dso_theta_free(th);
  mj_deleteModel(m);
}

// with the Euler integrator MuJoCo treats damping implicitly: (M + h D) qacc = forces, so a constant
// generalized force moves qvel' by h (M + h D)^-1 and qpos' by h^2 (M + h D)^-1
static void test_force_derivative_is_analytic(void** state) {
  mjModel* m = load(kXml);
  const char* js[] = {"{\"name\": \"physics.hinge.force\", \"init\": 0.1}",
                      "{\"name\": \"physics.elbow.force\", \"init\": -0.05}"};
  dsoTheta* th = layout(m, js, 2);
  double u[2];
  dso_theta_init(th, u);
  dsoError err = {0};
  dsoSim* sim = dso_sim_create(m, &err);
  dsoDeriv* dv = dso_deriv_create(m, th, NULL, &err);
  assert_int_equal(dv->nphys, 2);
  assert_int_equal(dso_sim_write(sim, th, u, &err), DSO_OK);
  assert_int_equal(dso_deriv_set_theta(dv, th, u, &err), DSO_OK);
  set_state(dso_sim_data(sim));
  double F[8];
  assert_int_equal(dso_deriv_step(dv, sim, NULL, NULL, NULL, F, &err), DSO_OK);
  // M + h D at the current state
  mj_forward(dso_sim_model(sim), dso_sim_data(sim));
  double M[4], Minv[4];
  mj_fullM(dso_sim_model(sim), M, dso_sim_data(sim)->qM);
  double hstep = m->opt.timestep;
  M[0] += hstep * 0.05;
  M[3] += hstep * 0.02;
  double det = M[0] * M[3] - M[1] * M[2];
  Minv[0] = M[3] / det;
  Minv[1] = -M[1] / det;
  Minv[2] = -M[2] / det;
  Minv[3] = M[0] / det;
  for (int k = 0; k < 2; k++) {
    for (int r = 0; r < 2; r++) {
      // rows: dq (tangent) then dqvel; columns: the two force entries
      double dqvel = hstep * Minv[r * 2 + k];
      assert_true(fabs(F[(2 + r) * 2 + k] - dqvel) < 1e-7 * fabs(dqvel) + 1e-12);
      assert_true(fabs(F[r * 2 + k] - hstep * dqvel) < 1e-7 * fabs(hstep * dqvel) + 1e-12);
    }
  }
  dso_deriv_free(dv);
  dso_sim_free(sim);
  dso_theta_free(th);
  mj_deleteModel(m);
}

// ∂f/∂u for log-transformed and signed entries against differences with steps 100x larger
static void test_physics_jacobian_against_large_steps(void** state) {
  mjModel* m = load(kXml);
  const char* js[] = {"{\"name\": \"physics.arm.mass\"}",
                      "{\"name\": \"physics.hinge.damping\"}",
                      "{\"name\": \"physics.hinge.armature\"}",
                      "{\"name\": \"physics.tip.com[2]\"}",
                      "{\"name\": \"physics.m.gear[0]\"}",
                      "{\"name\": \"sensor.q.gain\"}",
                      "{\"name\": \"physics.gravity[2]\"}"};
  dsoTheta* th = layout(m, js, 7);
  double u[7];
  dso_theta_init(th, u);
  dsoError err = {0};
  dsoSim* sim = dso_sim_create(m, &err);
  dsoDeriv* dv = dso_deriv_create(m, th, NULL, &err);
  assert_int_equal(dv->nphys, 6);  // the sensor gain does not change f
  dsoDerivSettings coarse;
  dso_deriv_settings_default(&coarse);
  coarse.eps_theta = 1e-4;
  dsoDeriv* dv2 = dso_deriv_create(m, th, &coarse, &err);
  coarse.centered = 0;
  coarse.eps_theta = 1e-7;
  dsoDeriv* dv3 = dso_deriv_create(m, th, &coarse, &err);
  assert_int_equal(dso_sim_write(sim, th, u, &err), DSO_OK);
  assert_int_equal(dso_deriv_set_theta(dv, th, u, &err), DSO_OK);
  assert_int_equal(dso_deriv_set_theta(dv2, th, u, &err), DSO_OK);
  assert_int_equal(dso_deriv_set_theta(dv3, th, u, &err), DSO_OK);
  set_state(dso_sim_data(sim));
  double F[4 * 6], F2[4 * 6], F3[4 * 6];
  assert_int_equal(dso_deriv_step(dv, sim, NULL, NULL, NULL, F, &err), DSO_OK);
  assert_int_equal(dso_deriv_step(dv2, sim, NULL, NULL, NULL, F2, &err), DSO_OK);
  assert_int_equal(dso_deriv_step(dv3, sim, NULL, NULL, NULL, F3, &err), DSO_OK);
  double scale = 0;
  for (int i = 0; i < 24; i++) {
    scale = fmax(scale, fabs(F[i]));
  }
  assert_true(scale > 1e-4);
  for (int i = 0; i < 24; i++) {
    assert_true(fabs(F[i] - F2[i]) < 1e-6 * scale);
    assert_true(fabs(F[i] - F3[i]) < 1e-4 * scale);
  }
  dso_deriv_free(dv);
  dso_deriv_free(dv2);
  dso_deriv_free(dv3);
  dso_sim_free(sim);
  dso_theta_free(th);
  mj_deleteModel(m);
}

// sensor Jacobians by differences of forward passes: the state part equals mjd_transitionFD's, an
// accelerometer depends on the control and on the mass, a joint sensor on neither
static void test_sensor_jacobians(void** state) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/models/pendulum.xml", DSO_SOURCE_DIR);
  dsoError err = {0};
  mjModel* m = dso_mj_load(path, &err);
  assert_non_null(m);
  const char* js[] = {"{\"name\": \"physics.arm.mass\"}",
                      "{\"name\": \"physics.hinge.force\", \"init\": 0.01}"};
  dsoTheta* th = layout(m, js, 2);
  double u[2];
  dso_theta_init(th, u);
  dsoSim* sim = dso_sim_create(m, &err);
  dsoDeriv* dv = dso_deriv_create(m, th, NULL, &err);
  assert_int_equal(dso_sim_write(sim, th, u, &err), DSO_OK);
  assert_int_equal(dso_deriv_set_theta(dv, th, u, &err), DSO_OK);
  dso_sim_data(sim)->qpos[0] = 0.6;
  dso_sim_data(sim)->qvel[0] = -1.1;
  dso_sim_data(sim)->ctrl[0] = 0.4;
  int ns = m->nsensordata, ndx = 2;
  double Hx[16], Hu[8], Hf[16], C[16];
  assert_int_equal(dso_deriv_sensors(dv, sim, Hx, Hu, Hf, &err), DSO_OK);
  assert_int_equal(dso_deriv_step(dv, sim, NULL, NULL, C, NULL, &err), DSO_OK);
  for (int i = 0; i < ns * ndx; i++) {
    assert_true(fabs(Hx[i] - C[i]) < 1e-5 * (1 + fabs(C[i])));
  }
  int acc = m->sensor_adr[mj_name2id(m, mjOBJ_SENSOR, "imu_acc")];
  int pos = m->sensor_adr[mj_name2id(m, mjOBJ_SENSOR, "hinge_pos")];
  double hu_acc = fabs(Hu[acc]) + fabs(Hu[acc + 1]) + fabs(Hu[acc + 2]);
  assert_true(hu_acc > 1e-3);
  assert_true(Hu[pos] == 0);
  assert_true(Hf[pos * 2] == 0 && Hf[pos * 2 + 1] == 0);
  // the mass column against a fresh simulator with the mass moved by 1e-4 (relative)
  double u2[2] = {u[0] + 1e-4, u[1]}, u3[2] = {u[0] - 1e-4, u[1]};
  dsoSim* sp = dso_sim_create(m, &err);
  dsoSim* sm = dso_sim_create(m, &err);
  assert_int_equal(dso_sim_write(sp, th, u2, &err), DSO_OK);
  assert_int_equal(dso_sim_write(sm, th, u3, &err), DSO_OK);
  mju_copy(dso_sim_data(sp)->qpos, dso_sim_data(sim)->qpos, 1);
  mju_copy(dso_sim_data(sp)->qvel, dso_sim_data(sim)->qvel, 1);
  mju_copy(dso_sim_data(sp)->ctrl, dso_sim_data(sim)->ctrl, 1);
  mju_copy(dso_sim_data(sm)->qpos, dso_sim_data(sim)->qpos, 1);
  mju_copy(dso_sim_data(sm)->qvel, dso_sim_data(sim)->qvel, 1);
  mju_copy(dso_sim_data(sm)->ctrl, dso_sim_data(sim)->ctrl, 1);
  mj_forward(dso_sim_model(sp), dso_sim_data(sp));
  mj_forward(dso_sim_model(sm), dso_sim_data(sm));
  for (int r = 0; r < ns; r++) {
    double fd = (dso_sim_data(sp)->sensordata[r] - dso_sim_data(sm)->sensordata[r]) / 2e-4;
    assert_true(fabs(fd - Hf[r * 2]) < 1e-5 * (1 + fabs(fd)));
  }
  dso_sim_free(sp);
  dso_sim_free(sm);
  dso_deriv_free(dv);
  dso_sim_free(sim);
  dso_theta_free(th);
  mj_deleteModel(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_state_and_control_jacobians),
      cmocka_unit_test(test_force_derivative_is_analytic),
      cmocka_unit_test(test_physics_jacobian_against_large_steps),
      cmocka_unit_test(test_sensor_jacobians),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
