// libFuzzer target: the MJCF write-back editor (mjcf.h, dso_mjcf_edit), which scans the XML text
// of a model and edits the attributes that θ entries change.
//
// Input: two option bytes, then the XML text.
//   byte 0  the base model the text is edited against (the θ-written values come from it):
//           pendulum, arm2, cartpole, double_pendulum, hopper (models/) or tests/data/mjcf/
//           features.xml (default classes, fullinertia, fromto, shortcuts, free body)
//   byte 1  bits 0-4 the θ layout: 0 every binding the model offers, k > 0 only the bindings of
//           kind (k - 1) % DSO_NBIND + 1 (one kind: gravity alone inserts an <option>, ...);
//           bit 5 out_dir is the build folder (relative file references are rewritten)
// dso_mjcf_edit must hold even when the text is not the file the base compiled from (the file
// may have changed since): errors are fine, crashes, leaks and a missing message are not.
#define _GNU_SOURCE
#include <math.h>

#include "dso_internal.h"
#include "fuzz_util.h"

#define NBASE 6
static const char* const kBase[NBASE] = {
  DSO_SOURCE_DIR "/models/pendulum.xml", DSO_SOURCE_DIR "/models/arm2.xml",
  DSO_SOURCE_DIR "/models/cartpole.xml", DSO_SOURCE_DIR "/models/double_pendulum.xml",
  DSO_SOURCE_DIR "/models/hopper.xml", DSO_SOURCE_DIR "/tests/data/mjcf/features.xml"};

static mjModel* g_model[NBASE];
static dsoTheta* g_theta[NBASE][DSO_NBIND];  // [base][0 every kind, k only kind k]
static double* g_u[NBASE][DSO_NBIND];

// a new value per binding (identity transform): positive kinds scaled by the same factor (so
// inertias stay valid), signed ones shifted, constant forces and noise deviations set
static double new_value(const mjModel* m, const dsoBinding* b) {
  double v = dso_bind_get(m, b);
  if (b->kind == DSO_BIND_DOF_FORCE) {
    return 0.05 * (b->target + 1);
  }
  if (!isfinite(v)) {
    return 0.1;  // noise deviations
  }
  if (dso_bind_positive(b->kind)) {
    return v > 0 ? 1.25 * v : (b->kind == DSO_BIND_GEOM_SIZE ? 0 : 0.01);
  }
  return v + 0.01 + 0.001 * b->index;
}

// the layout of base i with every binding (kind 0) or those of one kind; NULL when none
static void make_layout(int i, int kind) {
  const mjModel* m = g_model[i];
  int nb = dso_bind_list(NULL, 0, m);
  dsoBinding* list = (dsoBinding*)calloc((size_t)nb + 1, sizeof(dsoBinding));
  dsoThetaEntry* e = (dsoThetaEntry*)calloc((size_t)nb + 1, sizeof(dsoThetaEntry));
  if (!list || !e) {
    abort();
  }
  dso_bind_list(list, nb, m);
  int n = 0;
  for (int k = 0; k < nb; k++) {
    if (kind && (int)list[k].kind != kind) {
      continue;
    }
    dsoThetaEntry* t = &e[n++];
    dso_bind_name(t->name, sizeof(t->name), m, &list[k]);
    t->block = dso_bind_block(list[k].kind);
    t->transform = DSO_TRANSFORM_IDENTITY;
    t->init = new_value(m, &list[k]);
    t->lower = -INFINITY;
    t->upper = INFINITY;
    t->bind = list[k];
  }
  if (n) {
    dsoError err = {0};
    g_theta[i][kind] = dso_theta_create(e, n, &err);
    if (!g_theta[i][kind]) {
      fprintf(stderr, "fuzz_mjcf: %s: %s\n", kBase[i], err.msg);
      abort();
    }
    g_u[i][kind] = (double*)calloc((size_t)n, sizeof(double));
    if (!g_u[i][kind]) {
      abort();
    }
    dso_theta_init(g_theta[i][kind], g_u[i][kind]);
  }
  free(list);
  free(e);
}

static void free_all(void) {
  for (int i = 0; i < NBASE; i++) {
    for (int k = 0; k < DSO_NBIND; k++) {
      dso_theta_free(g_theta[i][k]);
      free(g_u[i][k]);
    }
    mj_deleteModel(g_model[i]);
  }
}

static void init(void) {
  for (int i = 0; i < NBASE; i++) {
    dsoError err = {0};
    g_model[i] = dso_mj_load(kBase[i], &err);
    if (!g_model[i]) {
      fprintf(stderr, "fuzz_mjcf: %s\n", err.msg);
      abort();
    }
    // each edit copies the base into a simulator with two mjData (dso_sim_create): with the
    // default sizes (10 MB stack, 3 MB of constraint arrays for njmax 500) their fresh pages
    // made one edit take 30-50 ms under ASan. The editor reads neither, and mj_setConst (the
    // only user here) makes no contacts and needs little stack: the seed corpus edits as before
    g_model[i]->nstack = 8192;
    g_model[i]->njmax = 8;
    g_model[i]->nconmax = 4;
    for (int k = 0; k < DSO_NBIND; k++) {
      make_layout(i, k);
    }
  }
  atexit(free_all);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (!g_model[0]) {
    init();
  }
  if (size < 2) {
    return 0;
  }
  int i = data[0] % NBASE;
  int opt = data[1];
  int kind = opt & 31;
  kind = kind ? (kind - 1) % (DSO_NBIND - 1) + 1 : 0;
  const dsoTheta* th = g_theta[i][kind];
  const double* u = g_u[i][kind];
  if (!th) {
    th = g_theta[i][0];
    u = g_u[i][0];
  }
  char* xml = fuzz_text(data + 2, size - 2);
  char* out = NULL;
  dsoError err = {0};
  dsoStatus s = dso_mjcf_edit(&out, xml, kBase[i], g_model[i], th, u,
                              (opt & 32) ? DSO_BUILD_DIR : NULL, &err);
  if (s == DSO_OK) {
    FUZZ_CHECK(out != NULL && strstr(out, "<mujoco"), "an edit without the root element");
  } else {
    FUZZ_CHECK(out == NULL, "a text returned with an error");
    FUZZ_CHECK(err.code == s && err.msg[0], "status %d without a message", (int)s);
  }
  fuzz_report(err.msg);
  free(out);
  free(xml);
  return 0;
}
