// Writing θ into a model equals recompiling the edited XML: for every kind of physics entry, the
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
// mj_step trajectory of a model with θ written matches the trajectory of the model compiled from
// XML with the new value, to 1e-10 (issue: foundation). Also sensor gain/offset and noise fields.
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

// every value the XML template takes
typedef struct {
  double gravity[3];
  double cart_z, slide_damping, slide_frictionloss, slide_armature, slide_stiffness;
  double cart_com[3], cart_mass, cart_inertia[3], cart_size[3], cart_friction[3];
  double pole_pos[3], pole_com[3], pole_mass, pole_inertia[3];
  double hinge_damping, hinge_frictionloss, hinge_armature, hinge_stiffness;
  double ball_pos[3], ball_com[3], ball_size, ball_friction[3];
  double push_gear, servo_gain, servo_bias1, servo_bias2;
  double hinge_force;  // realized in XML as an extra unbounded motor with ctrl = 1
} Params;

static Params defaults(void) {
  Params p = {
      .gravity = {0, 0, -9.81},
      .cart_z = 0.5, .slide_damping = 0.3, .slide_frictionloss = 0.05,
      .slide_armature = 0.01, .slide_stiffness = 0.0,
      .cart_com = {0, 0, 0}, .cart_mass = 1.0, .cart_inertia = {0.02, 0.03, 0.04},
      .cart_size = {0.2, 0.1, 0.1}, .cart_friction = {0.8, 0.005, 0.0001},
      .pole_pos = {0, 0, 0.1}, .pole_com = {0, 0, 0.25}, .pole_mass = 0.3,
      .pole_inertia = {0.006, 0.007, 0.001},
      .hinge_damping = 0.02, .hinge_frictionloss = 0.01, .hinge_armature = 0.002,
      .hinge_stiffness = 0.5,
      .ball_pos = {0.6, 0, 0.1}, .ball_size = 0.07, .ball_friction = {1.0, 0.005, 0.0001},
      .push_gear = 2.0, .servo_gain = 3.0, .servo_bias1 = -3.0, .servo_bias2 = -0.1,
      .hinge_force = 0.0,
  };
  return p;
}

static char* xml_of(const Params* p) {
  static char buf[8192];
  char extra[256] = "";
  if (p->hinge_force != 0) {
    snprintf(extra, sizeof(extra),
             "<motor name=\"bias\" joint=\"hinge\" gear=\"%.17g\" ctrllimited=\"false\"/>",
             p->hinge_force);
  }
  snprintf(buf, sizeof(buf),
    "<mujoco model=\"equiv\">\n"
    "  <option timestep=\"0.002\" gravity=\"%.17g %.17g %.17g\"/>\n"
    "  <worldbody>\n"
    "    <geom name=\"floor\" type=\"plane\" size=\"5 5 0.1\" friction=\"0.1 0.001 0.0001\"/>\n"
    "    <body name=\"cart\" pos=\"0 0 %.17g\">\n"
    "      <joint name=\"slide\" type=\"slide\" axis=\"1 0 0\" damping=\"%.17g\""
    " frictionloss=\"%.17g\" armature=\"%.17g\" stiffness=\"%.17g\"/>\n"
    "      <inertial pos=\"%.17g %.17g %.17g\" mass=\"%.17g\" diaginertia=\"%.17g %.17g %.17g\"/>\n"
    "      <geom name=\"cart_geom\" type=\"box\" size=\"%.17g %.17g %.17g\""
    " friction=\"%.17g %.17g %.17g\"/>\n"
    "      <body name=\"pole\" pos=\"%.17g %.17g %.17g\">\n"
    "        <joint name=\"hinge\" type=\"hinge\" axis=\"0 1 0\" damping=\"%.17g\""
    " frictionloss=\"%.17g\" armature=\"%.17g\" stiffness=\"%.17g\"/>\n"
    "        <inertial pos=\"%.17g %.17g %.17g\" mass=\"%.17g\" diaginertia=\"%.17g %.17g %.17g\"/>\n"
    "        <geom name=\"pole_geom\" type=\"capsule\" fromto=\"0 0 0 0 0 0.5\" size=\"0.02\""
    " contype=\"0\" conaffinity=\"0\"/>\n"
    "      </body>\n"
    "    </body>\n"
    "    <body name=\"ball\" pos=\"%.17g 0 %.17g\">\n"
    "      <freejoint name=\"free\"/>\n"
    "      <inertial pos=\"%.17g %.17g %.17g\" mass=\"0.5\" diaginertia=\"0.001 0.001 0.001\"/>\n"
    "      <geom name=\"ball_geom\" type=\"sphere\" size=\"%.17g\" friction=\"%.17g %.17g %.17g\"/>\n"
    "    </body>\n"
    "  </worldbody>\n"
    "  <actuator>\n"
    "    <motor name=\"push\" joint=\"slide\" gear=\"%.17g\"/>\n"
    "    <general name=\"servo\" joint=\"hinge\" gainprm=\"%.17g\" biastype=\"affine\""
    " biasprm=\"0 %.17g %.17g\"/>\n"
    "    %s\n"
    "  </actuator>\n"
    "</mujoco>\n",
    p->gravity[0], p->gravity[1], p->gravity[2], p->cart_z, p->slide_damping,
    p->slide_frictionloss, p->slide_armature, p->slide_stiffness, p->cart_com[0], p->cart_com[1],
    p->cart_com[2], p->cart_mass, p->cart_inertia[0], p->cart_inertia[1], p->cart_inertia[2],
    p->cart_size[0], p->cart_size[1], p->cart_size[2], p->cart_friction[0], p->cart_friction[1],
    p->cart_friction[2], p->pole_pos[0], p->pole_pos[1], p->pole_pos[2], p->hinge_damping,
    p->hinge_frictionloss, p->hinge_armature, p->hinge_stiffness, p->pole_com[0], p->pole_com[1],
    p->pole_com[2], p->pole_mass, p->pole_inertia[0], p->pole_inertia[1], p->pole_inertia[2],
    p->ball_pos[0], p->ball_pos[2], p->ball_com[0], p->ball_com[1], p->ball_com[2], p->ball_size, p->ball_friction[0], p->ball_friction[1], p->ball_friction[2], p->push_gear,
    p->servo_gain, p->servo_bias1, p->servo_bias2, extra);
  return buf;
}

static mjModel* compile(const Params* p) {
  char path[2048];
  int fd = dso_test_mkstemps(path, sizeof(path), "dso_test_sim", ".xml");
  assert_true(fd >= 0);
  FILE* f = fdopen(fd, "w");
  assert_non_null(f);
  fputs(xml_of(p), f);
  fclose(f);
  dsoError err = {0};
  mjModel* m = dso_mj_load(path, &err);
  remove(path);
  if (!m) {
    fprintf(stderr, "%s\n", err.msg);
  }
  assert_non_null(m);
  return m;
}

static void controls(mjData* d, int nu, int step) {
  double t = 0.002 * step;
  d->ctrl[0] = 0.8 * sin(3 * t);
  d->ctrl[1] = 0.3 * cos(5 * t);
  if (nu > 2) {
    d->ctrl[2] = 1.0;  // the motor that realizes a constant force
  }
}

// the same start for every model: the ball slides along x so that friction matters
static void start(mjModel* m, mjData* d) {
  int ball = m->jnt_dofadr[mj_name2id(m, mjOBJ_JOINT, "free")];
  d->qvel[ball] = 1.5;
  d->qvel[ball + 1] = 0.4;
}

// one physics entry: edit the XML through edit(), write name = value into the base model
static void check_equivalence(const char* name, double value, void (*edit)(Params*, double)) {
  Params p0 = defaults(), p1 = defaults();
  edit(&p1, value);
  mjModel* base = compile(&p0);
  mjModel* ref = compile(&p1);

  dsoError err = {0};
  char json[256];
  snprintf(json, sizeof(json), "{\"name\": \"%s\", \"init\": %.17g, \"transform\": \"identity\"}",
           name, value);
  dsoThetaEntry e;
  assert_int_equal(dso_task_parse_entry(&e, base, json, "test", "entry", &err), DSO_OK);
  dsoTheta* th = dso_theta_create(&e, 1, &err);
  assert_non_null(th);
  double u[1];
  dso_theta_init(th, u);
  dsoSim* sim = dso_sim_create(base, &err);
  assert_non_null(sim);
  assert_int_equal(dso_sim_write(sim, th, u, &err), DSO_OK);
  dso_sim_reset(sim);
  start(dso_sim_model(sim), dso_sim_data(sim));

  mjData* d = mj_makeData(ref);
  mj_resetData(ref, d);
  start(ref, d);
  double maxdiff = 0, moved = 0;
  for (int step = 0; step < 400; step++) {
    controls(dso_sim_data(sim), dso_sim_model(sim)->nu, step);
    controls(d, ref->nu, step);
    assert_int_equal(dso_sim_step(sim, &err), DSO_OK);
    mj_step(ref, d);
    for (int i = 0; i < ref->nq; i++) {
      maxdiff = fmax(maxdiff, fabs(dso_sim_data(sim)->qpos[i] - d->qpos[i]));
    }
    for (int i = 0; i < ref->nv; i++) {
      maxdiff = fmax(maxdiff, fabs(dso_sim_data(sim)->qvel[i] - d->qvel[i]));
    }
  }
  // the edit must matter: the unedited model ends elsewhere
  mjData* d0 = mj_makeData(base);
  mj_resetData(base, d0);
  start(base, d0);
  for (int step = 0; step < 400; step++) {
    controls(d0, base->nu, step);
    mj_step(base, d0);
  }
  for (int i = 0; i < ref->nq; i++) {
    moved = fmax(moved, fabs(d0->qpos[i] - d->qpos[i]));
  }
  printf("  %-32s = %-10g max |diff| %.3g (edit moves the state by %.3g)\n", name, value,
         maxdiff, moved);
  assert_true(maxdiff <= 1e-10);
  assert_true(moved > 1e-6);
  mj_deleteData(d0);
  mj_deleteData(d);
  dso_sim_free(sim);
  dso_theta_free(th);
  mj_deleteModel(base);
  mj_deleteModel(ref);
}

#define EDIT(fn, stmt) static void fn(Params* p, double v) { stmt; }
EDIT(e_mass, p->pole_mass = v)
EDIT(e_cart_mass, p->cart_mass = v)
EDIT(e_com0, p->pole_com[0] = v)
EDIT(e_ball_com0, p->ball_com[0] = v)
EDIT(e_inertia1, p->pole_inertia[1] = v)
EDIT(e_pos2, p->ball_pos[2] = v)
EDIT(e_pos0, p->ball_pos[0] = v)
EDIT(e_damping, p->hinge_damping = v)
EDIT(e_slide_damping, p->slide_damping = v)
EDIT(e_frictionloss, p->slide_frictionloss = v)
EDIT(e_armature, p->hinge_armature = v)
EDIT(e_slide_armature, p->slide_armature = v)
EDIT(e_stiffness, p->hinge_stiffness = v)
EDIT(e_force, p->hinge_force = v)
EDIT(e_gear, p->push_gear = v)
EDIT(e_gain, p->servo_gain = v)
EDIT(e_bias1, p->servo_bias1 = v)
EDIT(e_bias2, p->servo_bias2 = v)
EDIT(e_ball_friction, p->ball_friction[0] = v)
EDIT(e_ball_size, p->ball_size = v)
EDIT(e_gravity2, p->gravity[2] = v)
EDIT(e_gravity0, p->gravity[0] = v)

static void test_body_fields(void** state) {
  check_equivalence("physics.pole.mass", 0.45, e_mass);
  check_equivalence("physics.cart.mass", 1.7, e_cart_mass);
  check_equivalence("physics.pole.com[0]", 0.03, e_com0);
  check_equivalence("physics.ball.com[0]", 0.02, e_ball_com0);
  check_equivalence("physics.pole.inertia[1]", 0.0068, e_inertia1);
  check_equivalence("physics.ball.pos[2]", 0.2, e_pos2);
  check_equivalence("physics.ball.pos[0]", -0.3, e_pos0);
}

static void test_joint_fields(void** state) {
  check_equivalence("physics.hinge.damping", 0.2, e_damping);
  check_equivalence("physics.slide.damping", 1.1, e_slide_damping);
  check_equivalence("physics.slide.frictionloss", 0.4, e_frictionloss);
  check_equivalence("physics.hinge.armature", 0.02, e_armature);
  check_equivalence("physics.slide.armature", 0.3, e_slide_armature);
  check_equivalence("physics.hinge.stiffness", 2.0, e_stiffness);
  check_equivalence("physics.hinge.force", 0.15, e_force);
}

static void test_actuator_fields(void** state) {
  check_equivalence("physics.push.gear[0]", 3.5, e_gear);
  check_equivalence("physics.servo.gain[0]", 5.0, e_gain);
  check_equivalence("physics.servo.bias[1]", -1.5, e_bias1);
  check_equivalence("physics.servo.bias[2]", -0.4, e_bias2);
}

static void test_geom_and_global_fields(void** state) {
  check_equivalence("physics.ball_geom.friction[0]", 0.3, e_ball_friction);
  check_equivalence("physics.ball_geom.size[0]", 0.11, e_ball_size);
  check_equivalence("physics.gravity[2]", -7.0, e_gravity2);
  check_equivalence("physics.gravity[0]", 0.8, e_gravity0);
}

// the bounding radius dso recomputes after a size change equals the compiler's
static void test_rbound_matches_compiler(void** state) {
  Params p = defaults();
  p.cart_size[0] = 0.31;
  p.ball_size = 0.09;
  mjModel* ref = compile(&p);
  Params p0 = defaults();
  mjModel* base = compile(&p0);
  dsoError err = {0};
  dsoThetaEntry e[2];
  assert_int_equal(dso_task_parse_entry(&e[0], base, "{\"name\": \"physics.cart_geom.size[0]\", "
                   "\"init\": 0.31}", "t", "e0", &err), DSO_OK);
  assert_int_equal(dso_task_parse_entry(&e[1], base, "{\"name\": \"physics.ball_geom.size[0]\", "
                   "\"init\": 0.09}", "t", "e1", &err), DSO_OK);
  dsoTheta* th = dso_theta_create(e, 2, &err);
  double u[2];
  dso_theta_init(th, u);
  dsoSim* sim = dso_sim_create(base, &err);
  assert_int_equal(dso_sim_write(sim, th, u, &err), DSO_OK);
  for (int g = 0; g < ref->ngeom; g++) {
    assert_true(fabs(dso_sim_model(sim)->geom_rbound[g] - ref->geom_rbound[g]) < 1e-12);
  }
  dso_sim_free(sim);
  dso_theta_free(th);
  mj_deleteModel(base);
  mj_deleteModel(ref);
}

// sensor and noise entries land in the simulator's measurement model
static void test_sensor_and_noise(void** state) {
  const char* xml =
      "<mujoco><worldbody><body name=\"b\"><joint name=\"j\" type=\"hinge\"/>"
      "<inertial pos=\"0 0 -0.2\" mass=\"1\" diaginertia=\"0.01 0.01 0.01\"/>"
      "<site name=\"s\"/></body></worldbody>"
      "<actuator><motor name=\"m\" joint=\"j\"/></actuator>"
      "<sensor><jointpos name=\"angle\" joint=\"j\"/><framepos name=\"p\" objtype=\"site\" "
      "objname=\"s\"/></sensor></mujoco>";
  char path[2048];
  int fd = dso_test_mkstemps(path, sizeof(path), "dso_test_sensor", ".xml");
  FILE* f = fdopen(fd, "w");
  fputs(xml, f);
  fclose(f);
  dsoError err = {0};
  mjModel* m = dso_mj_load(path, &err);
  remove(path);
  assert_non_null(m);
  const char* entries[] = {
      "{\"name\": \"sensor.angle.gain\", \"init\": 2.0}",
      "{\"name\": \"sensor.angle.offset\", \"init\": 0.5}",
      "{\"name\": \"sensor.p.offset[2]\", \"init\": -1.0}",
      "{\"name\": \"sensor_noise.p.std[1]\", \"init\": 0.01}",
      "{\"name\": \"action_noise.m.std\", \"init\": 0.2}",
  };
  dsoThetaEntry e[5];
  for (int i = 0; i < 5; i++) {
    assert_int_equal(dso_task_parse_entry(&e[i], m, entries[i], "t", "e", &err), DSO_OK);
  }
  assert_int_equal(e[3].block, DSO_BLOCK_SENSOR_NOISE);
  assert_int_equal(e[3].transform, DSO_TRANSFORM_LOG);
  dsoTheta* th = dso_theta_create(e, 5, &err);
  assert_non_null(th);
  // eq. 95 order: action noise before sensor model before sensor noise
  assert_string_equal(th->entry[0].name, "action_noise.m.std");
  assert_string_equal(th->entry[4].name, "sensor_noise.p.std[1]");
  double u[5];
  dso_theta_init(th, u);
  dsoSim* sim = dso_sim_create(m, &err);
  assert_int_equal(dso_sim_write(sim, th, u, &err), DSO_OK);
  dso_sim_data(sim)->qpos[0] = 0.3;
  mj_forward(dso_sim_model(sim), dso_sim_data(sim));
  double y[4];
  dso_sim_measure(sim, y);
  assert_true(fabs(y[0] - (2.0 * 0.3 + 0.5)) < 1e-15);
  assert_true(fabs(y[3] - (dso_sim_data(sim)->sensordata[3] - 1.0)) < 1e-15);
  assert_true(fabs(dso_sim_action_std(sim)[0] - 0.2) < 1e-15);
  assert_true(fabs(dso_sim_sensor_std(sim)[2] - 0.01) < 1e-15);
  assert_true(dso_sim_sensor_std(sim)[1] == 0);
  dso_sim_free(sim);
  dso_theta_free(th);
  mj_deleteModel(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_body_fields),
      cmocka_unit_test(test_joint_fields),
      cmocka_unit_test(test_actuator_fields),
      cmocka_unit_test(test_geom_and_global_fields),
      cmocka_unit_test(test_rbound_matches_compiler),
      cmocka_unit_test(test_sensor_and_noise),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
