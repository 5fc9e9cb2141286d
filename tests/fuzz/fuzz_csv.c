// libFuzzer target: the dataset CSV reader (dataset.h, dso_dataset_read_csv).
//
// Input: two option bytes, then the CSV text.
//   byte 0  the model: even a floating box with an arm, an unnamed slide joint, a motor and
//           sensors of dimension 1 and 3 (free-joint quaternions, [k] columns); odd the shipped
//           pendulum (models/pendulum.xml)
//   byte 1  bit 0 no resampling; bits 1-2 stride - 1; bit 3 max_episodes 1; bit 4 window
//           [0.002, 0.01] s instead of [0, 1] s; bit 5 the column map of tests/data/datasets/data.json
//           (t_ms -> time x 0.001, note ignored)
// The text goes to an in-memory file (memfd; the box model to a temporary folder under the build
// folder). A load that succeeds
// must keep what dataset.h promises: episodes of at least 2 samples with strictly increasing,
// finite times, finite values, the validation flag 0 or 1, masks 0 or 1.
#define _GNU_SOURCE
#include <math.h>

#include "dso_internal.h"
#include "fuzz_util.h"

static const char* kXml =
    "<mujoco><option timestep=\"0.001\"/>"
    "<worldbody><body name=\"box\" pos=\"0 0 1\"><joint name=\"root\" type=\"free\"/>"
    "<geom type=\"box\" size=\"0.1 0.1 0.1\" mass=\"1\"/>"
    "<body name=\"arm\"><joint name=\"hinge\" type=\"hinge\" axis=\"0 1 0\"/>"
    "<geom type=\"capsule\" fromto=\"0 0 0 0 0 -0.3\" size=\"0.02\" mass=\"0.2\"/>"
    "<site name=\"tip\" pos=\"0 0 -0.3\"/></body>"
    "<body name=\"slider\"><joint type=\"slide\" axis=\"1 0 0\"/>"
    "<geom type=\"sphere\" size=\"0.05\" mass=\"0.1\"/></body></body></worldbody>"
    "<actuator><motor name=\"motor\" joint=\"hinge\" gear=\"2\"/></actuator>"
    "<sensor><jointpos name=\"angle\" joint=\"hinge\"/><accelerometer name=\"acc\" site=\"tip\"/>"
    "</sensor></mujoco>";

static mjModel* g_model[2];
static char g_csv[FUZZ_PATH_LEN];  // the in-memory file of the CSV text
static int g_csv_fd = -1;

static void init(void) {
  fuzz_tmp_dir("csv");
  char path[FUZZ_PATH_LEN];
  fuzz_tmp_path(path, sizeof(path), "box.xml");
  fuzz_write(path, kXml, strlen(kXml));
  dsoError err = {0};
  g_model[0] = dso_mj_load(path, &err);
  g_model[1] = dso_mj_load(DSO_SOURCE_DIR "/models/pendulum.xml", &err);
  if (!g_model[0] || !g_model[1]) {
    fprintf(stderr, "fuzz_csv: %s\n", err.msg);
    abort();
  }
  g_csv_fd = fuzz_memfile(g_csv, sizeof(g_csv), "input.csv");
}

static void check_values(const double* v, long n, const char* what) {
  for (long i = 0; i < n; i++) {
    FUZZ_CHECK(isfinite(v[i]), "%s[%ld] = %g", what, i, v[i]);
  }
}

static void check_dataset(const dsoDataset* ds, const mjModel* m) {
  FUZZ_CHECK(ds->nepisode >= 1, "a loaded dataset without episodes");
  FUZZ_CHECK(ds->nq == m->nq && ds->nv == m->nv && ds->nu == m->nu &&
             ds->nsensordata == m->nsensordata, "sizes differ from the model");
  int size[DSO_NDATA] = {m->nq, m->nv, m->nu, m->nsensordata};
  for (int g = 0; g < DSO_NDATA; g++) {
    for (int i = 0; i < size[g]; i++) {
      FUZZ_CHECK(ds->has[g][i] == 0 || ds->has[g][i] == 1, "mask %d[%d] = %d", g, i,
                 ds->has[g][i]);
    }
  }
  for (int e = 0; e < ds->nepisode; e++) {
    const dsoEpisode* ep = &ds->episode[e];
    FUZZ_CHECK(ep->T >= 2, "episode %d has %d samples", e, ep->T);
    FUZZ_CHECK(ep->validation == 0 || ep->validation == 1, "episode %d validation %d", e,
               ep->validation);
    check_values(ep->time, ep->T, "time");
    for (int k = 1; k < ep->T; k++) {
      FUZZ_CHECK(ep->time[k] > ep->time[k - 1], "episode %d: time[%d] = %.17g after %.17g", e, k,
                 ep->time[k], ep->time[k - 1]);
    }
    check_values(ep->qpos, (long)ep->T * m->nq, "qpos");
    check_values(ep->qvel, (long)ep->T * m->nv, "qvel");
    check_values(ep->ctrl, (long)ep->T * m->nu, "ctrl");
    check_values(ep->sensordata, (long)ep->T * m->nsensordata, "sensordata");
  }
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (!g_model[0]) {
    init();
  }
  if (size < 2) {
    return 0;
  }
  const mjModel* m = g_model[data[0] & 1];
  int opt = data[1];
  fuzz_fill(g_csv_fd, data + 2, size - 2);
  dsoDatasetSpec spec;
  dso_dataset_spec_default(&spec);
  spec.resample = !(opt & 1);
  spec.stride = 1 + ((opt >> 1) & 3);
  spec.max_episodes = (opt & 8) ? 1 : 0;
  // a bounded window keeps resampled episodes small (at most 1 s: 1000 samples of the box);
  // without one a few bytes of time values may ask for up to 1 GiB per episode, which is allowed
  // (dataset.c) but would make the fuzzer crawl
  spec.window[1] = 1;
  if (opt & 16) {
    spec.window[0] = 0.002;
    spec.window[1] = 0.01;
  }
  dsoError err = {0};
  if (opt & 32) {
    FUZZ_CHECK(!dso_dataset_spec_add_column(&spec, "t_ms", "time", 0.001, 0, &err) &&
               !dso_dataset_spec_add_column(&spec, "note", NULL, 1, 0, &err), "%s", err.msg);
  }
  dsoDataset* ds = NULL;
  dsoStatus s = dso_dataset_read_csv(&ds, m, g_csv, &spec, &err);
  if (s == DSO_OK) {
    FUZZ_CHECK(ds != NULL, "success without a dataset");
    check_dataset(ds, m);
  } else {
    FUZZ_CHECK(ds == NULL, "a dataset returned with an error");
    FUZZ_CHECK(err.code == s && err.msg[0], "status %d without a message", (int)s);
  }
  fuzz_report(err.msg);
  dso_dataset_free(ds);
  dso_dataset_spec_clear(&spec);
  return 0;
}
