// The model with θ written back as MJCF (mjcf.h): every kind of physics entry on every shipped
// model recompiles to the θ-written model; comments, default classes and every byte outside the
// edited attributes stay; bodies without <inertial>, fullinertia, fromto, shortcuts, freejoint,
// degree angles; includes and unsupported options give errors naming the element.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_util.h"

#include "dso_internal.h"
#include "config/json.h"
#include "mujoco/mj.h"
#include "mujoco/mjcf.h"

#define MJCF_DIR DSO_SOURCE_DIR "/tests/data/mjcf"

static char g_dir[1024];

// a fresh folder under the build folder, removed again at the end
static int setup(void** state) {
  (void)state;
  return dso_test_mkdtemp(g_dir, sizeof(g_dir), "test_mjcf");
}

static int teardown(void** state) {
  (void)state;
  return dso_test_rmtree(g_dir) == 0 ? 0 : -1;
}

// dso_mjcf_verify_file on text written to a file in the test's folder (the check of dso_mjcf_write)
static dsoStatus verify_text(const char* text, dsoSim* sim, dsoError* err) {
  char path[1100];
  snprintf(path, sizeof(path), "%s/verify.xml", g_dir);
  if (dso_write_file_atomic(path, text, strlen(text), err)) return err->code;
  dsoStatus s = dso_mjcf_verify_file(path, dso_sim_model(sim), dso_sim_qfrc(sim), err);
  remove(path);
  return s;
}

// a θ entry with the identity transform at natural value v
static dsoThetaEntry entry(const mjModel* m, const dsoBinding* b, double v) {
  dsoThetaEntry e;
  memset(&e, 0, sizeof(e));
  dso_bind_name(e.name, sizeof(e.name), m, b);
  e.block = dso_bind_block(b->kind);
  e.transform = DSO_TRANSFORM_IDENTITY;
  e.init = v;
  e.lower = -INFINITY;
  e.upper = INFINITY;
  e.bind = *b;
  return e;
}

// a new value for every bindable physics field of m: positive kinds scaled (the same factor per
// kind keeps inertias valid), signed ones shifted; plus a constant force on every dof
static dsoTheta* every_kind(const mjModel* m) {
  int nb = dso_bind_list(NULL, 0, m);
  dsoBinding* list = calloc((size_t)nb, sizeof(dsoBinding));
  dsoThetaEntry* e = calloc((size_t)nb, sizeof(dsoThetaEntry));
  assert_non_null(list);
  assert_non_null(e);
  dso_bind_list(list, nb, m);
  int n = 0;
  for (int i = 0; i < nb; i++) {
    dsoBindKind k = list[i].kind;
    if (dso_bind_block(k) != DSO_BLOCK_PHYSICS) {
      continue;
    }
    double v = dso_bind_get(m, &list[i]);
    if (k == DSO_BIND_DOF_FORCE) {
      v = 0.05 * (list[i].target + 1);
    } else if (dso_bind_positive(k)) {
      v = v > 0 ? 1.25 * v : (k == DSO_BIND_GEOM_SIZE ? 0 : 0.01);
    } else {
      v += 0.01 + 0.001 * list[i].index;
    }
    e[n++] = entry(m, &list[i], v);
  }
  dsoError err = {0};
  dsoTheta* th = dso_theta_create(e, n, &err);
  assert_non_null(th);
  free(list);
  free(e);
  return th;
}

static double* init_u(const dsoTheta* th) {
  double* u = calloc((size_t)th->n + 1, sizeof(double));
  assert_non_null(u);
  dso_theta_init(th, u);
  return u;
}

// edits path for th at its initial values and checks the text against the θ-written model
static char* edit_and_verify(const char* path, const mjModel* m, const dsoTheta* th) {
  double* u = init_u(th);
  char* xml = dso_read_text_file(path, NULL);
  assert_non_null(xml);
  char* out = NULL;
  dsoError err = {0};
  dsoStatus s = dso_mjcf_edit(&out, xml, path, m, th, u, NULL, &err);
  if (s) {
    fail_msg("%s: %s", path, err.msg);
  }
  dsoSim* sim = dso_sim_create(m, &err);
  assert_non_null(sim);
  assert_int_equal(dso_sim_write(sim, th, u, &err), DSO_OK);
  if (verify_text(out, sim, &err)) {
    fail_msg("%s: %s\n%s", path, err.msg, out);
  }
  dso_sim_free(sim);
  free(xml);
  free(u);
  return out;
}

static void test_every_kind_on_the_models(void** state) {
  (void)state;
  const char* models[] = {"pendulum", "arm2", "cartpole", "double_pendulum", "hopper", "drive"};
  for (int i = 0; i < 6; i++) {
    char path[512];
    snprintf(path, sizeof(path), "%s/models/%s.xml", DSO_SOURCE_DIR, models[i]);
    dsoError err = {0};
    mjModel* m = dso_mj_load(path, &err);
    assert_non_null(m);
    dsoTheta* th = every_kind(m);
    char* out = edit_and_verify(path, m, th);
    // the forces are bias-only actuators in an <actuator> section at the end, listed in its
    // comment; nothing is left without an MJCF attribute
    assert_null(strstr(out, "<!-- dso: identified values without an MJCF attribute"));
    char* sec = strstr(out, "<!-- dso: the identified constant generalized forces");
    assert_non_null(sec);
    assert_non_null(strstr(sec, ".force = 0.050000000000000003 (actuator dso_force_"));
    assert_non_null(strstr(sec, "<general name=\"dso_force_"));
    assert_null(strstr(sec, "<body"));
    assert_non_null(strstr(out, "<option timestep="));
    free(out);
    dso_theta_free(th);
    mj_deleteModel(m);
  }
}

// equal texts, else the first difference with some context
static void assert_same_text(const char* a, const char* b) {
  size_t i = 0;
  while (a[i] && a[i] == b[i]) {
    i++;
  }
  if (a[i] || b[i]) {
    size_t s = i > 40 ? i - 40 : 0;
    fail_msg("texts differ at byte %zu:\n got: %.80s\nwant: %.80s", i, a + s, b + s);
  }
}

// only the value of the edited attribute changes
static void test_bytes_outside_edits_unchanged(void** state) {
  (void)state;
  const char* path = DSO_SOURCE_DIR "/models/pendulum.xml";
  dsoError err = {0};
  mjModel* m = dso_mj_load(path, &err);
  assert_non_null(m);
  dsoBinding b[2];
  assert_int_equal(dso_bind_resolve(&b[0], m, "physics.hinge.damping", &err), DSO_OK);
  assert_int_equal(dso_bind_resolve(&b[1], m, "physics.arm.com[2]", &err), DSO_OK);
  dsoThetaEntry e[2] = {entry(m, &b[0], 1.0 / 3.0), entry(m, &b[1], -0.1)};
  dsoTheta* th = dso_theta_create(e, 2, &err);
  assert_non_null(th);
  char* out = edit_and_verify(path, m, th);
  char* xml = dso_read_text_file(path, &err);
  char expect[1 << 14];
  const char* a = strstr(xml, "damping=\"1.5e-4\"");
  const char* old = "<inertial pos=\"0 0 -0.099\" mass=\"0.1476\" diaginertia=\"7.737e-4 "
                    "7.692e-4 5.36e-6\"/>";
  const char* c = strstr(xml, old);
  assert_non_null(a);
  assert_non_null(c);
  assert_true(a < c);
  snprintf(expect, sizeof(expect),
           "%.*sdamping=\"0.33333333333333331\"%.*s<inertial pos=\"0 0 -0.10000000000000001\" "
           "mass=\"0.1476\" diaginertia=\"7.737e-4 7.692e-4 5.36e-6\"/>%s",
           (int)(a - xml), xml, (int)(c - a - 16), a + 16, c + strlen(old));
  assert_same_text(out, expect);
  free(xml);
  free(out);
  dso_theta_free(th);
  mj_deleteModel(m);
}

// θ with nothing the model holds (policy entries only): the text comes back unchanged
static void test_nothing_to_edit(void** state) {
  (void)state;
  const char* path = DSO_SOURCE_DIR "/models/pendulum.xml";
  dsoError err = {0};
  mjModel* m = dso_mj_load(path, &err);
  assert_non_null(m);
  dsoThetaEntry e;
  memset(&e, 0, sizeof(e));
  snprintf(e.name, sizeof(e.name), "policy.K[0,0]");
  e.block = DSO_BLOCK_POLICY;
  e.transform = DSO_TRANSFORM_IDENTITY;
  e.init = 0.5;
  e.lower = -INFINITY;
  e.upper = INFINITY;
  e.bind.kind = DSO_BIND_NONE;
  dsoTheta* th = dso_theta_create(&e, 1, &err);
  assert_non_null(th);
  char* out = edit_and_verify(path, m, th);
  char* xml = dso_read_text_file(path, &err);
  assert_non_null(xml);
  assert_same_text(out, xml);
  free(xml);
  free(out);
  dso_theta_free(th);
  mj_deleteModel(m);
}

static dsoThetaEntry named(const mjModel* m, const char* name, double v) {
  dsoBinding b;
  dsoError err = {0};
  if (dso_bind_resolve(&b, m, name, &err)) {
    fail_msg("%s", err.msg);
  }
  return entry(m, &b, v);
}

static void test_features(void** state) {
  (void)state;
  const char* path = MJCF_DIR "/features.xml";
  dsoError err = {0};
  mjModel* m = dso_mj_load(path, &err);
  assert_non_null(m);
  dsoThetaEntry e[] = {
    named(m, "physics.base.mass", 5.5),          // no <inertial>: one is inserted
    named(m, "physics.tip.inertia[1]", 0.0021),  // fullinertia is replaced
    named(m, "physics.tip.com[0]", 0.02),
    named(m, "physics.link_geom.size[1]", 0.2),  // fromto gives way to pos + quat
    named(m, "physics.base_geom.friction[0]", 0.9),
    named(m, "physics.pitch.damping", 0.75),     // from default class "heavy"
    named(m, "physics.pitch.stiffness", 3),
    named(m, "physics.yaw.armature", 0.02),      // from the top default
    named(m, "physics.yaw_servo.gain[0]", 40),   // position shortcut, kp from a default
    named(m, "physics.yaw_servo.bias[1]", -40),
    named(m, "physics.pitch_motor.gear[0]", 2.5),
    named(m, "physics.roll_general.bias[2]", -0.2),
    named(m, "physics.gravity[2]", -9.7),        // no <option>: one is inserted
    named(m, "physics.ball.pos[2]", 0.6),        // free body: also its initial position
    named(m, "physics.yaw.force", 0.125),
  };
  int n = (int)(sizeof(e) / sizeof(e[0]));
  dsoThetaEntry* all = calloc((size_t)n + 6, sizeof(dsoThetaEntry));
  memcpy(all, e, sizeof(e));
  for (int k = 0; k < 6; k++) {  // all dofs of the free joint alike: <joint type="free">
    char name[64];
    snprintf(name, sizeof(name), "physics.ball_free.damping[%d]", k);
    all[n + k] = named(m, name, 0.01);
  }
  dsoTheta* th = dso_theta_create(all, n + 6, &err);
  assert_non_null(th);
  char* out = edit_and_verify(path, m, th);
  char* xml = dso_read_text_file(path, &err);
  // every comment, the defaults, the custom text and the declaration are kept byte for byte
  for (const char* p = strstr(xml, "<!--"); p; p = strstr(p + 4, "<!--")) {
    const char* q = strstr(p, "-->");
    char buf[2048];
    snprintf(buf, sizeof(buf), "%.*s", (int)(q + 3 - p), p);
    assert_non_null(strstr(out, buf));
  }
  const char* keep[] = {"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n", "<custom>", "</default>"};
  for (int k = 0; k < 3; k++) {
    assert_non_null(strstr(out, keep[k]));
  }
  const char* d0 = strstr(xml, "  <default>");
  const char* d1 = strstr(xml, "  <custom>");
  char block[2048];
  snprintf(block, sizeof(block), "%.*s", (int)(d1 - d0), d0);
  assert_non_null(strstr(out, block));
  assert_non_null(strstr(out, "data=\"a &lt;tag&gt; and a > inside an attribute\""));
  assert_non_null(strstr(out, "<body name=\"base\" pos=\"0 0 1\" euler=\"0 0 30\">\n"
                              "      <inertial pos=\""));
  assert_null(strstr(out, "fullinertia="));
  assert_null(strstr(out, "fromto="));
  assert_non_null(strstr(out, "<general name=\"yaw_servo\" joint=\"yaw\" dyntype=\"none\" "
                              "gaintype=\"fixed\" biastype=\"affine\""));
  assert_non_null(strstr(out, "<joint name=\"ball_free\" type=\"free\" limited=\"false\" "
                              "damping=\"0.01\" frictionloss=\"0\" armature=\"0\" "
                              "solreffriction=\"0.02 1\" solimpfriction=\"0.90000000000000002 "
                              "0.94999999999999996 0.001 0.5 2\" stiffness=\"0\"/>"));
  assert_non_null(strstr(out, "<option gravity=\"0 0 -9.6999999999999993\"/>"));
  assert_non_null(strstr(out, "physics.yaw.force = 0.125"));
  assert_non_null(strstr(out, "range=\"-90 90\""));  // degrees untouched
  free(xml);
  free(out);
  dso_theta_free(th);
  free(all);
  mj_deleteModel(m);
}

// dso_mjcf_write: the written file loads to the identified values
static void test_write_recompiles(void** state) {
  (void)state;
  const char* path = DSO_SOURCE_DIR "/models/arm2.xml";
  dsoError err = {0};
  mjModel* m = dso_mj_load(path, &err);
  assert_non_null(m);
  dsoTheta* th = every_kind(m);
  double* u = init_u(th);
  char out[1200];
  snprintf(out, sizeof(out), "%s/model.xml", g_dir);
  if (dso_mjcf_write(out, path, m, th, u, &err)) {
    fail_msg("%s", err.msg);
  }
  mjModel* back = dso_mj_load(out, &err);
  assert_non_null(back);
  for (int i = 0; i < th->n; i++) {
    const dsoThetaEntry* e = &th->entry[i];
    if (e->bind.kind == DSO_BIND_DOF_FORCE) {
      continue;
    }
    double v = dso_bind_get(back, &e->bind);
    assert_true(fabs(v - e->init) <= 1e-12 * fmax(1, fabs(v)));
  }
  // no temporary file is left behind
  int nfile = 0;
  DIR* d = opendir(g_dir);
  assert_non_null(d);
  for (struct dirent* e; (e = readdir(d)) != NULL;) {
    nfile += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
  }
  closedir(d);
  assert_int_equal(nfile, 1);
  mj_deleteModel(back);
  free(u);
  dso_theta_free(th);
  mj_deleteModel(m);
}

static void write_text(const char* path, const char* text) {
  FILE* f = fopen(path, "wb");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

// a model with a mesh in its own folder, written to another folder: the mesh still resolves
static void test_relocated_mesh(void** state) {
  (void)state;
  char src[1200], path[1200], mesh[1200], out[1200];
  snprintf(src, sizeof(src), "%s/src", g_dir);
  snprintf(path, sizeof(path), "%s/model.xml", src);
  snprintf(mesh, sizeof(mesh), "%s/tetra.stl", src);
  snprintf(out, sizeof(out), "%s/out/model.xml", g_dir);
  dsoError err = {0};
  assert_int_equal(dso_mkdir_p(src, &err), DSO_OK);
  char od[1200];
  snprintf(od, sizeof(od), "%s/out", g_dir);
  assert_int_equal(dso_mkdir_p(od, &err), DSO_OK);
  // binary STL: 80-byte header, count, 4 facets of (normal, 3 vertices, attribute)
  float v[4][3] = {{0, 0, 0}, {0.1f, 0, 0}, {0, 0.1f, 0}, {0, 0, 0.1f}};
  int tri[4][3] = {{0, 2, 1}, {0, 1, 3}, {0, 3, 2}, {1, 2, 3}};
  FILE* f = fopen(mesh, "wb");
  assert_non_null(f);
  char header[80] = {0};
  fwrite(header, 1, 80, f);
  unsigned int cnt = 4;
  fwrite(&cnt, 4, 1, f);
  for (int t = 0; t < 4; t++) {
    float nrm[3] = {0, 0, 0};
    unsigned short attr = 0;
    fwrite(nrm, 4, 3, f);
    for (int k = 0; k < 3; k++) {
      fwrite(v[tri[t][k]], 4, 3, f);
    }
    fwrite(&attr, 2, 1, f);
  }
  fclose(f);
  write_text(path,
             "<mujoco model=\"meshy\">\n"
             "  <asset>\n    <mesh name=\"tetra\" file=\"tetra.stl\"/>\n  </asset>\n"
             "  <worldbody>\n"
             "    <body name=\"b\" pos=\"0 0 1\">\n"
             "      <joint name=\"h\" axis=\"0 1 0\"/>\n"
             "      <geom name=\"g\" type=\"mesh\" mesh=\"tetra\"/>\n"
             "    </body>\n  </worldbody>\n</mujoco>\n");
  mjModel* m = dso_mj_load(path, &err);
  if (!m) {
    fail_msg("%s", err.msg);
  }
  dsoThetaEntry e[2] = {named(m, "physics.b.mass", 2.0), named(m, "physics.h.damping", 0.3)};
  dsoTheta* th = dso_theta_create(e, 2, &err);
  double* u = init_u(th);
  if (dso_mjcf_write(out, path, m, th, u, &err)) {
    fail_msg("%s", err.msg);
  }
  char* text = dso_read_text_file(out, &err);
  assert_non_null(text);
  char want[300];
  snprintf(want, sizeof(want), "<compiler meshdir=\"%s/src/\" texturedir=\"%s/src/\"/>", g_dir,
           g_dir);
  if (!strstr(text, want)) {
    fail_msg("no '%s' in\n%s", want, text);
  }
  mjModel* back = dso_mj_load(out, &err);
  assert_non_null(back);
  assert_true(back->body_mass[1] == 2.0);
  mj_deleteModel(back);
  free(text);
  free(u);
  dso_theta_free(th);
  mj_deleteModel(m);
}

static void expect_error(const char* path, const mjModel* m, const dsoTheta* th,
                         const char* text, const char* const* parts) {
  double* u = init_u(th);
  char* xml = text ? strdup(text) : dso_read_text_file(path, NULL);
  char* out = NULL;
  dsoError err = {0};
  assert_int_not_equal(dso_mjcf_edit(&out, xml, path, m, th, u, NULL, &err), DSO_OK);
  assert_null(out);
  for (; *parts; parts++) {
    if (!strstr(err.msg, *parts)) {
      fail_msg("'%s' not in: %s", *parts, err.msg);
    }
  }
  free(xml);
  free(u);
}

static void test_errors(void** state) {
  (void)state;
  dsoError err = {0};
  // an element in an included file
  const char* inc = MJCF_DIR "/include_main.xml";
  mjModel* m = dso_mj_load(inc, &err);
  assert_non_null(m);
  dsoThetaEntry e1[2] = {named(m, "physics.outer_hinge.damping", 0.2),
                         named(m, "physics.inner_hinge.damping", 0.2)};
  dsoTheta* th = dso_theta_create(e1, 1, &err);
  double* u = init_u(th);
  char* xml = dso_read_text_file(inc, &err);
  char* out = NULL;
  assert_int_equal(dso_mjcf_edit(&out, xml, inc, m, th, u, NULL, &err), DSO_OK);  // main file
  assert_non_null(strstr(out, "<joint name=\"outer_hinge\" axis=\"0 1 0\" damping=\"0.20000000000000001\"/>"));
  free(out);
  free(xml);
  free(u);
  dso_theta_free(th);
  th = dso_theta_create(e1 + 1, 1, &err);
  const char* p1[] = {"joint 'inner_hinge'", "include_part.xml", "included", NULL};
  expect_error(inc, m, th, NULL, p1);
  dso_theta_free(th);
  mj_deleteModel(m);

  const char* feat = MJCF_DIR "/features.xml";
  m = dso_mj_load(feat, &err);
  assert_non_null(m);
  // dofs of a free joint that differ
  dsoThetaEntry e2[1] = {named(m, "physics.ball_free.damping[3]", 0.5)};
  th = dso_theta_create(e2, 1, &err);
  const char* p2[] = {"ball_free", "damping differs between its dofs", NULL};
  expect_error(feat, m, th, NULL, p2);
  // global coordinates, malformed XML with its line
  const char* p3[] = {"coordinate=\"global\"", ":2:", NULL};
  expect_error(feat, m, th, "<mujoco>\n<compiler coordinate=\"global\"/></mujoco>", p3);
  const char* p4[] = {"features.xml:3:", "malformed attribute", NULL};
  expect_error(feat, m, th, "<mujoco>\n\n<compiler angle=radian/></mujoco>", p4);
  const char* p5[] = {"features.xml:2:", "</worldbody>", NULL};
  expect_error(feat, m, th, "<mujoco>\n<body></worldbody></mujoco>", p5);
  const char* p6[] = {"unterminated comment", NULL};
  expect_error(feat, m, th, "<mujoco><!-- x </mujoco>", p6);
  dso_theta_free(th);
  // a file that is not the compiled model: the name check catches it
  dsoThetaEntry e3[1] = {named(m, "physics.base.pos[0]", 0.1)};
  th = dso_theta_create(e3, 1, &err);
  const char* p7[] = {"body 'base'", NULL};
  expect_error(feat, m, th,
               "<mujoco><worldbody><body name=\"other\"/><body name=\"x\"/></worldbody></mujoco>",
               p7);
  // the check itself: the unedited text does not compile to the θ-written model
  dsoSim* sim = dso_sim_create(m, &err);
  double* u3 = init_u(th);
  assert_int_equal(dso_sim_write(sim, th, u3, &err), DSO_OK);
  assert_int_equal(dso_mjcf_verify_file(feat, dso_sim_model(sim), dso_sim_qfrc(sim), &err),
                   DSO_ERR_INTERNAL);
  assert_non_null(strstr(err.msg, "physics.base.pos[0] = 0, expected 0.10000000000000001"));
  free(u3);
  dso_sim_free(sim);
  dso_theta_free(th);
  mj_deleteModel(m);
}

// the written model alone reproduces the θ-written simulator with its constant forces: the
// appended bias-only actuators apply what dso applies through qfrc_applied; N steps of both with
// the same controls of the model's own actuators (and any control on the appended ones) agree in
// every qpos and qvel to round-off (the forces are summed in another order): the largest
// difference is returned, *scale receives the largest |qpos|, |qvel| (at least 1)
static double reproduce(double* scale, const char* path, const dsoThetaEntry* e, int n,
                        int steps) {
  *scale = 1;
  dsoError err = {0};
  mjModel* m = dso_mj_load(path, &err);
  assert_non_null(m);
  dsoThetaEntry* all = calloc((size_t)n, sizeof(dsoThetaEntry));
  for (int i = 0; i < n; i++) {
    dsoBinding b;
    if (dso_bind_resolve(&b, m, e[i].name, &err)) {
      fail_msg("%s", err.msg);
    }
    all[i] = entry(m, &b, e[i].init);
  }
  dsoTheta* th = dso_theta_create(all, n, &err);
  assert_non_null(th);
  double* u = init_u(th);
  char out[1200];
  snprintf(out, sizeof(out), "%s/reproduce.xml", g_dir);
  if (dso_mjcf_write(out, path, m, th, u, &err)) {
    fail_msg("%s: %s", path, err.msg);
  }
  mjModel* back = dso_mj_load(out, &err);
  assert_non_null(back);
  remove(out);
  dsoSim* sim = dso_sim_create(m, &err);
  assert_non_null(sim);
  assert_int_equal(dso_sim_write(sim, th, u, &err), DSO_OK);
  dso_sim_reset(sim);
  mjData* d = mj_makeData(back);
  int nforce = 0;
  for (int i = 0; i < n; i++) {
    nforce += all[i].bind.kind == DSO_BIND_DOF_FORCE && all[i].bind.index == 0;
  }
  assert_int_equal(back->nu, m->nu + nforce);
  double worst = 0;
  for (int k = 0; k < steps; k++) {
    for (int a = 0; a < back->nu; a++) {
      double c = a < m->nu ? 0.8 * sin(0.01 * k * (a + 1) + a) : 7.0 * (a + 1);
      if (a < m->nu) {
        dso_sim_data(sim)->ctrl[a] = c;
      }
      d->ctrl[a] = c;
    }
    assert_int_equal(dso_sim_step(sim, &err), DSO_OK);
    mj_step(back, d);
    for (int i = 0; i < m->nq; i++) {
      worst = fmax(worst, fabs(dso_sim_data(sim)->qpos[i] - d->qpos[i]));
      *scale = fmax(*scale, fabs(d->qpos[i]));
    }
    for (int i = 0; i < m->nv; i++) {
      worst = fmax(worst, fabs(dso_sim_data(sim)->qvel[i] - d->qvel[i]));
      *scale = fmax(*scale, fabs(d->qvel[i]));
    }
  }
  // the forces did move the state: without them the written model drifts away
  mjData* d0 = mj_makeData(m);
  mj_resetData(back, d);
  double apart = 0;
  for (int k = 0; k < steps; k++) {
    for (int a = 0; a < m->nu; a++) {
      d0->ctrl[a] = d->ctrl[a] = 0.8 * sin(0.01 * k * (a + 1) + a);
    }
    mj_step(back, d);
    mj_step(dso_sim_model(sim), d0);
  }
  for (int i = 0; i < m->nv; i++) {
    apart = fmax(apart, fabs(d->qvel[i] - d0->qvel[i]));
  }
  assert_true(apart > 1e-3);
  mj_deleteData(d0);
  mj_deleteData(d);
  dso_sim_free(sim);
  mj_deleteModel(back);
  free(u);
  dso_theta_free(th);
  free(all);
  mj_deleteModel(m);
  return worst;
}

static dsoThetaEntry value(const char* name, double v) {
  dsoThetaEntry e;
  memset(&e, 0, sizeof(e));
  snprintf(e.name, sizeof(e.name), "%s", name);
  e.init = v;
  return e;
}

static void test_force_reproduces_dynamics(void** state) {
  (void)state;
  dsoThetaEntry arm[] = {value("physics.shoulder.force", 0.3), value("physics.elbow.force", -0.1),
                         value("physics.elbow.damping", 0.05),
                         value("physics.elbow.frictionloss", 0.02),
                         value("physics.elbow.solreffriction[0]", 0.004),
                         value("physics.elbow.solimpfriction[0]", 0.99)};
  double s1, s2;
  double w1 = reproduce(&s1, DSO_SOURCE_DIR "/models/arm2.xml", arm, 6, 3000);
  // a free joint (gear = the force per dof) and a hinge whose actuator defaults (a position kp
  // in the default class) the written <general> must override
  dsoThetaEntry feat[] = {value("physics.ball_free.force[0]", 0.5),
                          value("physics.ball_free.force[1]", -0.25),
                          value("physics.ball_free.force[2]", 2.0),
                          value("physics.ball_free.force[3]", 0.01),
                          value("physics.ball_free.force[4]", -0.02),
                          value("physics.ball_free.force[5]", 0.003),
                          value("physics.yaw.force", 0.125)};
  double w2 = reproduce(&s2, MJCF_DIR "/features.xml", feat, 7, 2000);
  printf("written model vs theta-written simulator: max |state difference| %.3g (states up to "
         "%.3g) over 3000 arm2 steps, %.3g (up to %.3g) over 2000 features.xml steps (free "
         "joint)\n", w1, s1, w2, s2);
  assert_true(w1 <= 1e-12 * s1);
  assert_true(w2 <= 1e-12 * s2);

  // the check catches a force written wrong, an unnamed joint and a name already taken
  dsoError err = {0};
  const char* path = DSO_SOURCE_DIR "/models/arm2.xml";
  mjModel* m = dso_mj_load(path, &err);
  dsoThetaEntry e1[1] = {named(m, "physics.shoulder.force", 0.3)};
  dsoTheta* th = dso_theta_create(e1, 1, &err);
  double* u = init_u(th);
  char* xml = dso_read_text_file(path, &err);
  char* out = NULL;
  assert_int_equal(dso_mjcf_edit(&out, xml, path, m, th, u, NULL, &err), DSO_OK);
  char* p = strstr(out, "biasprm=\"0.29999999999999999");
  assert_non_null(p);
  p[11] = '4';  // 0.3 -> 0.5
  dsoSim* sim = dso_sim_create(m, &err);
  assert_int_equal(dso_sim_write(sim, th, u, &err), DSO_OK);
  assert_int_equal(verify_text(out, sim, &err), DSO_ERR_INTERNAL);
  assert_non_null(strstr(err.msg, "constant force 0.5 on dof 0"));
  assert_non_null(strstr(err.msg, "expected 0.29999999999999999"));
  dso_sim_free(sim);
  free(out);
  free(xml);
  free(u);
  dso_theta_free(th);
  mj_deleteModel(m);

  char small[1200];
  snprintf(small, sizeof(small), "%s/unnamed.xml", g_dir);
  write_text(small, "<mujoco>\n  <worldbody>\n    <body name=\"b\">\n      <joint axis=\"0 1 0\"/>"
                    "\n      <geom size=\"0.1\"/>\n    </body>\n  </worldbody>\n</mujoco>\n");
  m = dso_mj_load(small, &err);
  assert_non_null(m);
  dsoThetaEntry e2[1] = {named(m, "physics.joint#0.force", 0.1)};
  th = dso_theta_create(e2, 1, &err);
  const char* p1[] = {"joint #0 has a constant force but no name", NULL};
  expect_error(small, m, th, NULL, p1);
  dso_theta_free(th);
  mj_deleteModel(m);
  write_text(small, "<mujoco>\n  <worldbody>\n    <body name=\"b\">\n      <joint name=\"h\" "
                    "axis=\"0 1 0\"/>\n      <geom size=\"0.1\"/>\n    </body>\n  </worldbody>\n"
                    "  <actuator>\n    <motor name=\"dso_force_h\" joint=\"h\"/>\n  </actuator>\n"
                    "</mujoco>\n");
  m = dso_mj_load(small, &err);
  assert_non_null(m);
  dsoThetaEntry e3[1] = {named(m, "physics.h.force", 0.1)};
  th = dso_theta_create(e3, 1, &err);
  const char* p2[] = {"already named 'dso_force_h'", NULL};
  expect_error(small, m, th, NULL, p2);
  dso_theta_free(th);
  mj_deleteModel(m);
  remove(small);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_every_kind_on_the_models),
    cmocka_unit_test(test_bytes_outside_edits_unchanged),
    cmocka_unit_test(test_nothing_to_edit),
    cmocka_unit_test(test_features),
    cmocka_unit_test(test_write_recompiles),
    cmocka_unit_test(test_relocated_mesh),
    cmocka_unit_test(test_errors),
    cmocka_unit_test(test_force_reproduces_dynamics),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
