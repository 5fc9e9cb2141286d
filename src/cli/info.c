// dso info MODEL.xml: the model's elements and every parameter θ can bind, with current values.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dso_internal.h"

static const char* kHelp =
    "usage: dso info MODEL.xml\n\n"
    "Loads an MJCF model and prints its bodies, joints, actuators and sensors, then every\n"
    "parameter a task's theta can bind (physics, sensor gain/offset, noise), one per line:\n"
    "name, block, default transform and the model's current value. Noise deviations have\n"
    "no model value and need \"init\" in a task.\n";

static const char* joint_type(int t) {
  switch (t) {
    case mjJNT_FREE: return "free";
    case mjJNT_BALL: return "ball";
    case mjJNT_SLIDE: return "slide";
    default: return "hinge";
  }
}

static const char* sensor_type(int t) {
  static const char* names[] = {
      "touch", "accelerometer", "velocimeter", "gyro", "force", "torque", "magnetometer",
      "rangefinder", "jointpos", "jointvel", "tendonpos", "tendonvel", "actuatorpos",
      "actuatorvel", "actuatorfrc", "ballquat", "ballangvel", "jointlimitpos", "jointlimitvel",
      "jointlimitfrc", "tendonlimitpos", "tendonlimitvel", "tendonlimitfrc", "framepos",
      "framequat", "framexaxis", "frameyaxis", "framezaxis", "framelinvel", "frameangvel",
      "framelinacc", "frameangacc", "subtreecom", "subtreelinvel", "subtreeangmom"};
  int n = (int)(sizeof(names) / sizeof(names[0]));
  return (t >= 0 && t < n) ? names[t] : "other";
}

static const char* name_or(const mjModel* m, int obj, int id, char* buf, size_t len,
                           const char* kind) {
  const char* nm = mj_id2name(m, obj, id);
  if (nm && nm[0]) {
    return nm;
  }
  snprintf(buf, len, "%s#%d", kind, id);
  return buf;
}

int dso_cli_info(int argc, char** argv) {
  if (dso_cli_wants_help(argc, argv)) {
    fputs(kHelp, stdout);
    return DSO_EXIT_OK;
  }
  if (argc != 2) {
    fputs(kHelp, stderr);
    return DSO_EXIT_INPUT;
  }
  if (argv[1][0] == '-' && argv[1][1]) {
    fprintf(stderr, "dso info: unknown option '%s'; see dso info --help\n", argv[1]);
    return DSO_EXIT_INPUT;
  }
  dsoError err = {0};
  mjModel* m = dso_mj_load(argv[1], &err);
  if (!m) {
    return dso_cli_fail("info", &err);
  }
  char b1[64], b2[64];
  printf("model %s: nq %d, nv %d, nu %d, na %d, nsensordata %d, timestep %g s\n", argv[1], m->nq,
         m->nv, m->nu, m->na, m->nsensordata, m->opt.timestep);
  printf("\nbodies (%d)\n", m->nbody - 1);
  for (int i = 1; i < m->nbody; i++) {
    printf("  %-24s parent %-20s mass %-10.6g\n", name_or(m, mjOBJ_BODY, i, b1, sizeof(b1), "body"),
           name_or(m, mjOBJ_BODY, m->body_parentid[i], b2, sizeof(b2), "body"), m->body_mass[i]);
  }
  printf("\njoints (%d)\n", m->njnt);
  for (int i = 0; i < m->njnt; i++) {
    printf("  %-24s %-6s body %-20s qpos %d, dof %d\n",
           name_or(m, mjOBJ_JOINT, i, b1, sizeof(b1), "joint"), joint_type(m->jnt_type[i]),
           name_or(m, mjOBJ_BODY, m->jnt_bodyid[i], b2, sizeof(b2), "body"), m->jnt_qposadr[i],
           m->jnt_dofadr[i]);
  }
  printf("\nactuators (%d)\n", m->nu);
  for (int i = 0; i < m->nu; i++) {
    printf("  %-24s ctrlrange [%g, %g]%s\n", name_or(m, mjOBJ_ACTUATOR, i, b1, sizeof(b1),
           "actuator"), m->actuator_ctrlrange[2 * i], m->actuator_ctrlrange[2 * i + 1],
           m->actuator_ctrllimited[i] ? "" : " (unlimited)");
  }
  printf("\nsensors (%d)\n", m->nsensor);
  for (int i = 0; i < m->nsensor; i++) {
    printf("  %-24s %-14s dim %d, adr %d\n",
           name_or(m, mjOBJ_SENSOR, i, b1, sizeof(b1), "sensor"), sensor_type(m->sensor_type[i]),
           m->sensor_dim[i], m->sensor_adr[i]);
  }
  int n = dso_bind_list(NULL, 0, m);
  dsoBinding* all = (dsoBinding*)calloc((size_t)n + 1, sizeof(dsoBinding));
  if (!all) {
    mj_deleteModel(m);
    fprintf(stderr, "dso info: out of memory\n");
    return DSO_EXIT_FAIL;
  }
  dso_bind_list(all, n, m);
  printf("\nparameters (%d)\n  %-44s %-13s %-9s %s\n", n, "name", "block", "transform", "value");
  for (int i = 0; i < n; i++) {
    char name[256];
    dso_bind_name(name, sizeof(name), m, &all[i]);
    double v = dso_bind_get(m, &all[i]), lo, hi;
    int bounded = dso_bind_domain(&all[i], &lo, &hi);
    printf("  %-44s %-13s %-9s ", name, dso_block_name(dso_bind_block(all[i].kind)),
           bounded ? "bounded" : dso_bind_positive(all[i].kind) ? "log" : "identity");
    if (v != v) {
      printf("(init required)\n");
    } else {
      printf("%.10g\n", v);
    }
  }
  free(all);
  mj_deleteModel(m);
  return DSO_EXIT_OK;
}
