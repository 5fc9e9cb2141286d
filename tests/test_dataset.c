// Datasets: CSV round trip, partial columns and masks, several episodes and files, resampling,
// the data spec from JSON, every validation error with its file:line:column, and the real
// single-pendulum recording.
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>
#include <cmocka.h>

#include "test_util.h"

#include "config/dataset_json.h"
#include "mujoco/dataset.h"
#include "dso_internal.h"
#include "core/io.h"

// a floating box (free joint root: nq 7, nv 6), an arm on hinge "hinge", an unnamed slide joint,
// motor "motor", sensors "angle" (1) and "acc" (3); timestep 1 ms
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

static char g_dir[1024];
static mjModel* g_model;

static int setup(void** state) {
  if (dso_test_mkdtemp(g_dir, sizeof(g_dir), "dso_test_dataset")) {
    return -1;
  }
  char path[1024];
  snprintf(path, sizeof(path), "%s/model.xml", g_dir);
  dsoError err = {0};
  if (dso_write_file_atomic(path, kXml, strlen(kXml), &err)) {
    return -1;
  }
  g_model = dso_mj_load(path, &err);
  remove(path);
  return g_model ? 0 : -1;
}

static int teardown(void** state) {
  mj_deleteModel(g_model);
  return dso_test_rmtree(g_dir);
}

// writes text (len bytes; strlen when len < 0) to g_dir/name and returns the path in buf
static const char* write_tmp(char* buf, size_t n, const char* name, const char* text, long len) {
  snprintf(buf, n, "%s/%s", g_dir, name);
  dsoError err = {0};
  size_t size = len < 0 ? strlen(text) : (size_t)len;
  assert_int_equal(dso_write_file_atomic(buf, text, size, &err), DSO_OK);
  return buf;
}

// reads CSV text written to g_dir/name with spec (NULL: defaults); the file is removed again
static dsoStatus read_text(dsoDataset** ds, const char* name, const char* text,
                           const dsoDatasetSpec* spec, dsoError* err) {
  char path[1024];
  write_tmp(path, sizeof(path), name, text, -1);
  dsoStatus st = dso_dataset_read_csv(ds, g_model, path, spec, err);
  remove(path);
  return st;
}

// deterministic values in [-1, 1)
static double lcg(unsigned* s) {
  *s = *s * 1664525u + 1013904223u;
  return (double)(*s >> 8) / (double)(1u << 23) - 1.0;
}

// an in-memory dataset with every named entry recorded; times on the model grid or irregular
static dsoDataset* make_dataset(int grid) {
  dsoError err = {0};
  dsoDataset* ds = NULL;
  assert_int_equal(dso_dataset_create(&ds, g_model, &err), DSO_OK);
  int lengths[3] = {40, 2, 25};
  unsigned seed = 7;
  for (int n = 0; n < 3; n++) {
    int i = dso_dataset_add_episode(ds, g_model, lengths[n], &err);
    assert_int_equal(i, n);
    dsoEpisode* ep = &ds->episode[i];
    ep->validation = n == 1;
    double t0 = 0.25 * n - 0.1;
    for (int k = 0; k < ep->T; k++) {
      ep->time[k] = grid ? t0 + k * g_model->opt.timestep : t0 + 0.01 * k + 0.003 * sin(k);
      for (int j = 0; j < g_model->nq; j++) ep->qpos[k * g_model->nq + j] = lcg(&seed);
      for (int j = 0; j < g_model->nv; j++) ep->qvel[k * g_model->nv + j] = 1e3 * lcg(&seed);
      for (int j = 0; j < g_model->nu; j++) ep->ctrl[k * g_model->nu + j] = lcg(&seed);
      for (int j = 0; j < g_model->nsensordata; j++) {
        ep->sensordata[k * g_model->nsensordata + j] = 1e-7 * lcg(&seed);
      }
      // the slide joint is not recorded: what reading gives for it
      ep->qpos[k * g_model->nq + 8] = g_model->qpos0[8];
      ep->qvel[k * g_model->nv + 7] = 0;
    }
  }
  // all but the unnamed slide joint (qpos 7, qvel 6 are the hinge; 8 and 7 the slide)
  for (int j = 0; j < 8; j++) ds->has[DSO_DATA_QPOS][j] = 1;
  for (int j = 0; j < 7; j++) ds->has[DSO_DATA_QVEL][j] = 1;
  ds->has[DSO_DATA_CTRL][0] = 1;
  for (int j = 0; j < 4; j++) ds->has[DSO_DATA_SENSOR][j] = 1;
  return ds;
}

static void assert_same_arrays(const dsoDataset* a, const dsoDataset* b) {
  assert_int_equal(a->nepisode, b->nepisode);
  for (int n = 0; n < a->nepisode; n++) {
    const dsoEpisode *x = &a->episode[n], *y = &b->episode[n];
    assert_int_equal(x->T, y->T);
    assert_int_equal(x->validation, y->validation);
    assert_int_equal(y->id, n);
    assert_memory_equal(x->time, y->time, sizeof(double) * x->T);
    assert_memory_equal(x->qpos, y->qpos, sizeof(double) * x->T * g_model->nq);
    assert_memory_equal(x->qvel, y->qvel, sizeof(double) * x->T * g_model->nv);
    assert_memory_equal(x->ctrl, y->ctrl, sizeof(double) * x->T * g_model->nu);
    assert_memory_equal(x->sensordata, y->sensordata,
                        sizeof(double) * x->T * g_model->nsensordata);
  }
  for (int g = 0; g < DSO_NDATA; g++) {
    int size = g == DSO_DATA_QPOS ? a->nq : g == DSO_DATA_QVEL ? a->nv
             : g == DSO_DATA_CTRL ? a->nu : a->nsensordata;
    assert_memory_equal(a->has[g], b->has[g], sizeof(int) * size);
  }
}

static void test_column_names(void** state) {
  char buf[64];
  assert_int_equal(dso_dataset_column_name(buf, sizeof(buf), g_model, DSO_DATA_QPOS, 3), 12);
  assert_string_equal(buf, "qpos.root[3]");
  dso_dataset_column_name(buf, sizeof(buf), g_model, DSO_DATA_QPOS, 7);
  assert_string_equal(buf, "qpos.hinge");
  dso_dataset_column_name(buf, sizeof(buf), g_model, DSO_DATA_QVEL, 6);
  assert_string_equal(buf, "qvel.hinge");
  dso_dataset_column_name(buf, sizeof(buf), g_model, DSO_DATA_CTRL, 0);
  assert_string_equal(buf, "ctrl.motor");
  dso_dataset_column_name(buf, sizeof(buf), g_model, DSO_DATA_SENSOR, 3);
  assert_string_equal(buf, "sensor.acc[2]");
  assert_int_equal(dso_dataset_column_name(buf, sizeof(buf), g_model, DSO_DATA_QPOS, 8), -1);
  assert_string_equal(buf, "qpos #8");
  assert_int_equal(dso_dataset_column_name(buf, sizeof(buf), g_model, DSO_DATA_CTRL, 5), -1);
}

static void test_round_trip(void** state) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/round.csv", g_dir);
  dsoError err = {0};
  dsoDatasetSpec spec;
  dso_dataset_spec_default(&spec);
  for (int grid = 0; grid < 2; grid++) {
    dsoDataset* ds = make_dataset(grid);
    assert_int_equal(dso_dataset_write_csv(path, ds, g_model, &err), DSO_OK);
    // irregular times read back as they are; grid times also survive resampling unchanged
    spec.resample = grid;
    dsoDataset* back = NULL;
    assert_int_equal(dso_dataset_read_csv(&back, g_model, path, &spec, &err), DSO_OK);
    assert_same_arrays(ds, back);
    assert_int_equal(dso_dataset_nvalidation(back), 1);
    assert_int_equal(dso_dataset_nsample(back), 67);
    assert_true(back->dt == (grid ? 0.001 : 0));
    assert_int_equal(back->episode[2].line, 2 + 40 + 2);
    assert_int_equal(back->episode[2].file, 0);
    // writing what was read gives the same bytes
    char path2[1200];
    snprintf(path2, sizeof(path2), "%s/round2.csv", g_dir);
    assert_int_equal(dso_dataset_write_csv(path2, back, g_model, &err), DSO_OK);
    char* a = NULL;
    char* b = NULL;
    size_t na = 0, nb = 0;
    FILE* f = fopen(path, "rb");
    assert_int_equal(getdelim(&a, &na, '\0', f) > 0, 1);
    fclose(f);
    f = fopen(path2, "rb");
    assert_int_equal(getdelim(&b, &nb, '\0', f) > 0, 1);
    fclose(f);
    assert_string_equal(a, b);
    assert_true(!strncmp(a, "time,episode,validation,qpos.root[0],", 37));
    assert_non_null(strstr(a, ",qpos.root[6],qpos.hinge,qvel.root[0],"));
    assert_non_null(strstr(a, ",qvel.hinge,ctrl.motor,sensor.angle,sensor.acc[0],"));
    assert_non_null(strstr(a, "sensor.acc[2]\n"));
    free(a);
    free(b);
    remove(path2);
    dso_dataset_free(back);
    dso_dataset_free(ds);
  }
  remove(path);
  dso_dataset_spec_clear(&spec);
}

static void test_writer_errors(void** state) {
  char path[1024];
  dsoError err = {0};
  dsoDataset* ds = make_dataset(1);
  // the unnamed slide joint cannot be named in a header
  ds->has[DSO_DATA_QPOS][8] = 1;
  snprintf(path, sizeof(path), "%s/unnamed.csv", g_dir);
  assert_int_equal(dso_dataset_write_csv(path, ds, g_model, &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "qpos #8"));
  assert_non_null(strstr(err.msg, "joint has no name"));
  assert_int_equal(access(path, F_OK), -1);
  ds->has[DSO_DATA_QPOS][8] = 0;
  // a folder that does not exist: nothing is written
  dso_error_clear(&err);
  snprintf(path, sizeof(path), "%s/nowhere/out.csv", g_dir);
  assert_int_equal(dso_dataset_write_csv(path, ds, g_model, &err), DSO_ERR_IO);
  assert_non_null(strstr(err.msg, "nowhere/out.csv"));
  // another model
  mjModel* other = mj_copyModel(NULL, g_model);
  other->nu = 0;
  dso_error_clear(&err);
  snprintf(path, sizeof(path), "%s/other.csv", g_dir);
  assert_int_equal(dso_dataset_write_csv(path, ds, other, &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "nu 1"));
  assert_int_equal(dso_dataset_add_episode(ds, other, 3, &err), -1);
  other->nu = 1;
  mj_deleteModel(other);
  assert_int_equal(dso_dataset_add_episode(ds, g_model, 0, NULL), -1);
  dso_dataset_free(ds);
  dso_dataset_free(NULL);
}

static void test_partial_columns(void** state) {
  dsoError err = {0};
  dsoDataset* ds = NULL;
  // positions of the hinge only, with blanks around fields and CRLF line ends
  const char* text = "time , qpos.hinge\r\n0, 0.5\r\n 0.001 ,0.25 \r\n0.002,0\r\n";
  assert_int_equal(read_text(&ds, "partial.csv", text, NULL, &err), DSO_OK);
  assert_int_equal(ds->nepisode, 1);
  const dsoEpisode* ep = dso_dataset_episode(ds, 0);
  assert_int_equal(ep->T, 3);
  assert_null(dso_dataset_episode(ds, 1));
  assert_null(dso_dataset_episode(ds, -1));
  for (int j = 0; j < g_model->nq; j++) {
    assert_int_equal(ds->has[DSO_DATA_QPOS][j], j == 7);
  }
  for (int j = 0; j < g_model->nv; j++) assert_int_equal(ds->has[DSO_DATA_QVEL][j], 0);
  assert_int_equal(ds->has[DSO_DATA_CTRL][0], 0);
  for (int j = 0; j < g_model->nsensordata; j++) {
    assert_int_equal(ds->has[DSO_DATA_SENSOR][j], 0);
  }
  for (int k = 0; k < 3; k++) {
    const double* q = ep->qpos + k * g_model->nq;
    assert_true(q[7] == 0.5 - 0.25 * k);
    // what the file lacks holds qpos0 (the box at z = 1, unit quaternion) and zeros
    assert_true(q[2] == 1 && q[3] == 1 && q[4] == 0 && q[8] == 0);
    assert_true(ep->qvel[k * g_model->nv + 6] == 0 && ep->ctrl[k] == 0);
  }
  assert_int_equal(ep->validation, 0);
  assert_int_equal(ep->line, 2);
  dso_dataset_free(ds);
  // the writer keeps the mask: only time, episode, validation and the hinge angle
  char path[1024];
  snprintf(path, sizeof(path), "%s/partial_out.csv", g_dir);
  assert_int_equal(read_text(&ds, "partial.csv", text, NULL, &err), DSO_OK);
  assert_int_equal(dso_dataset_write_csv(path, ds, g_model, &err), DSO_OK);
  FILE* f = fopen(path, "rb");
  char head[128];
  assert_non_null(fgets(head, sizeof(head), f));
  fclose(f);
  remove(path);
  assert_string_equal(head, "time,episode,validation,qpos.hinge\n");
  dso_dataset_free(ds);
}

static void test_quaternions_after_interpolation(void** state) {
  dsoError err = {0};
  dsoDataset* ds = NULL;
  // the root rotates by 90 degrees about z in 2 ms; halfway the mean of the ends is renormalized
  const char* text =
      "time,qpos.root[3],qpos.root[4],qpos.root[5],qpos.root[6]\n"
      "0,1,0,0,0\n0.002,0.70710678118654757,0,0,0.70710678118654757\n";
  assert_int_equal(read_text(&ds, "quat.csv", text, NULL, &err), DSO_OK);
  const double* q = ds->episode[0].qpos + g_model->nq + 3;
  double norm = sqrt(q[0] * q[0] + q[3] * q[3]);
  assert_true(fabs(norm - 1) < 1e-15);
  assert_true(fabs(q[3] / q[0] - tan(M_PI / 8)) < 1e-15);
  assert_true(ds->episode[0].qpos[3] == 1);
  dso_dataset_free(ds);
}

static void test_episodes_and_files(void** state) {
  dsoError err = {0};
  char text[4096];
  // data.json names two fixture files relative to its folder
  const char* dir = DSO_SOURCE_DIR "/tests/data/datasets";
  FILE* f = fopen(DSO_SOURCE_DIR "/tests/data/datasets/data.json", "rb");
  assert_non_null(f);
  text[fread(text, 1, sizeof(text) - 1, f)] = '\0';
  fclose(f);
  dsoDatasetSpec spec;
  assert_int_equal(dso_dataset_spec_parse(&spec, text, dir, "data.json", &err), DSO_OK);
  assert_int_equal(spec.nfile, 2);
  assert_string_equal(spec.file[1], DSO_SOURCE_DIR "/tests/data/datasets/single.csv");
  dsoDataset* ds = NULL;
  assert_int_equal(dso_dataset_load(&ds, g_model, &spec, &err), DSO_OK);
  assert_int_equal(dso_dataset_nepisode(ds), 4);
  assert_int_equal(dso_dataset_nvalidation(ds), 1);
  // 4 ms, 6 ms, 5 ms and 20 ms at 1 ms
  int T[4] = {5, 7, 6, 21};
  long id[4] = {3, 4, 8, 3};
  int file[4] = {0, 0, 0, 1};
  int line[4] = {2, 6, 10, 2};
  for (int n = 0; n < 4; n++) {
    const dsoEpisode* ep = dso_dataset_episode(ds, n);
    assert_int_equal(ep->T, T[n]);
    assert_int_equal(ep->id, id[n]);
    assert_int_equal(ep->file, file[n]);
    assert_int_equal(ep->line, line[n]);
    assert_int_equal(ep->validation, n == 1);
  }
  assert_int_equal(dso_dataset_nsample(ds), 39);
  assert_int_equal(ds->nfile, 2);
  // linear signals resample exactly: qpos = t, 1 - (t - 0.01), 2 + 100 t, -1 + 0.5 t
  for (int k = 0; k < 7; k++) {
    const dsoEpisode* ep = &ds->episode[1];
    assert_true(fabs(ep->time[k] - (0.010 + 0.001 * k)) < 1e-15);
    assert_true(fabs(ep->qpos[k * g_model->nq + 7] - (1 - 0.001 * k)) < 1e-14);
    assert_true(ep->qvel[k * g_model->nv + 6] == -1);
  }
  const dsoEpisode* last = &ds->episode[3];
  for (int k = 0; k < 21; k++) {
    assert_true(fabs(last->qpos[k * g_model->nq + 7] - (-1 + 0.5 * last->time[k])) < 1e-14);
    assert_true(last->ctrl[k] == 0 && last->qvel[k * g_model->nv + 6] == 0.5);
  }
  assert_true(fabs(last->time[20] - 0.02) < 1e-15);
  assert_true(ds->episode[0].ctrl[4] == 0.5);
  assert_int_equal(ds->has[DSO_DATA_CTRL][0], 1);
  dso_dataset_free(ds);
  // max_episodes stops early: the second file is not read
  spec.max_episodes = 2;
  assert_int_equal(dso_dataset_load(&ds, g_model, &spec, &err), DSO_OK);
  assert_int_equal(ds->nepisode, 2);
  dso_dataset_free(ds);
  // a window from 1 ms to 4.5 ms after each episode's start, without resampling
  spec.resample = 0;
  spec.window[0] = 0.001;
  spec.window[1] = 0.0045;
  spec.max_bytes = 1 << 20;
  assert_int_equal(dso_dataset_load(&ds, g_model, &spec, &err), DSO_OK);
  assert_true(ds->dt == 0);
  assert_int_equal(ds->episode[0].T, 2);
  assert_true(ds->episode[0].time[0] == 0.002 && ds->episode[0].qpos[7] == 0.002);
  assert_int_equal(ds->episode[1].T, 2);
  assert_true(ds->episode[1].time[1] == 0.014 && ds->episode[1].qpos[g_model->nq + 7] == 0.996);
  dso_dataset_free(ds);
  // the 2-sample episode 8 (0 and 5 ms) keeps nothing
  spec.max_episodes = 0;
  assert_int_equal(dso_dataset_load(&ds, g_model, &spec, &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "episodes.csv:10: episode 8 keeps 0 samples inside the window"));
  dso_dataset_spec_clear(&spec);
  dso_dataset_spec_clear(NULL);
}

static void test_resampling_linear(void** state) {
  dsoError err = {0};
  // irregular times from 0.0003 s; a degree column scaled to radians and offset
  char text[8192];
  int len = snprintf(text, sizeof(text), "t,deg,time_unused\n");
  const double first = 0.0003;
  double t = first, last = first;
  unsigned seed = 3;
  for (int i = 0; i < 120; i++) {
    len += snprintf(text + len, sizeof(text) - len, "%.17g,%.17g,x\n", t, 10 + 400 * t);
    last = t;
    t += 0.0004 + 0.0012 * (0.5 + 0.5 * lcg(&seed));
  }
  dsoDatasetSpec spec;
  dso_dataset_spec_default(&spec);
  double rad = M_PI / 180;
  assert_int_equal(dso_dataset_spec_add_column(&spec, "t", "time", 1, 0, &err), DSO_OK);
  assert_int_equal(dso_dataset_spec_add_column(&spec, "deg", "qpos.hinge", rad, -1, &err), DSO_OK);
  assert_int_equal(dso_dataset_spec_add_column(&spec, "time_unused", NULL, 1, 0, &err), DSO_OK);
  for (int stride = 1; stride <= 7; stride += 6) {
    spec.stride = stride;
    dsoDataset* ds = NULL;
    assert_int_equal(read_text(&ds, "linear.csv", text, &spec, &err), DSO_OK);
    const dsoEpisode* ep = &ds->episode[0];
    double h = 0.001 * stride;
    assert_int_equal(ep->T, (int)floor((last - first) / h + 1e-6) + 1);
    assert_true(ds->dt == h);
    for (int k = 0; k < ep->T; k++) {
      assert_true(ep->time[k] == first + k * h);
      double expect = (10 + 400 * ep->time[k]) * rad - 1;
      assert_true(fabs(ep->qpos[k * g_model->nq + 7] - expect) < 1e-13);
    }
    assert_true(ep->time[ep->T - 1] <= last && ep->time[ep->T - 1] > last - h);
    dso_dataset_free(ds);
  }
  dso_dataset_spec_clear(&spec);
}

typedef struct {
  const char* text;
  const char* where;  // expected right after the file name
  const char* what;   // expected elsewhere in the message
} dsoBadCsv;

static void test_bad_files(void** state) {
  static const dsoBadCsv cases[] = {
      {"", ": file is empty", ""},
      {"\n  \n", ":3: no header", "only blank lines"},
      {"0,1\n0.1,2\n", ":1: no header", "expected column names"},
      {"time,qpos.hinge,qpos.hinge\n0,1,1\n", ":1:3: duplicate column \"qpos.hinge\"",
       "also column 2"},
      {"time,foo\n0,1\n", ":1:2: unknown column \"foo\"",
       "valid names: time, episode, validation, qpos.root[0..6], qpos.hinge, qvel.root[0..5]"},
      {"time,qpos.elbow\n", ":1:2: column \"qpos.elbow\": the model has no joint \"elbow\"",
       "joints: root, hinge"},
      {"time,qvel.root\n", ":1:2: column \"qvel.root\"", "name them qvel.root[0] .. qvel.root[5]"},
      {"time,sensor.acc[3]\n", ":1:2: column \"sensor.acc[3]\": index 3 is out of range",
       "3 sensor entries"},
      {"time,ctrl.motorr\n", ":1:2:", "actuators: motor"},
      {"time,,qpos.hinge\n", ":1:2: empty column name", ""},
      {"qpos.hinge,qvel.hinge\n1,2\n", ":1: no \"time\" column", "\"t_s\": \"time\""},
      {"time,qpos.hinge\n\n", ":1: no data rows", ""},
      {"time,qpos.hinge\n0,1\n0.1\n", ":3: wrong number of fields: 1, expected 2", ""},
      {"time,qpos.hinge\n0,1\n0.1,2,3\n", ":3: wrong number of fields: 3, expected 2", ""},
      {"time,qpos.hinge\n0,1\n0.1,abc\n", ":3:2: column \"qpos.hinge\": \"abc\" is not a number",
       ""},
      {"time,qpos.hinge\n0,1\n0.1,1.5x\n", ":3:2: column \"qpos.hinge\": \"1.5x\" is not a number",
       ""},
      {"time,qpos.hinge\n0,1\n0.1, \n", ":3:2: column \"qpos.hinge\": empty cell", ""},
      {"time,qpos.hinge\n0,nan\n0.1,1\n", ":2:2: column \"qpos.hinge\": nan is not a finite", ""},
      {"time,qpos.hinge\n0,1\n-inf,1\n", ":3:1: column \"time\": -inf is not a finite", ""},
      {"time,qpos.hinge\n0,1\n0.1,1\n0.1,2\n",
       ":4: time 0.1 is not after 0.1 on line 3",
       "must increase strictly inside an episode"},
      {"time,qpos.hinge\n0,1\n0.2,1\n0.1,2\n", ":4: time 0.1 is not after 0.2 on line 3",
       ""},
      {"time,episode,qpos.hinge\n0,0,1\n0.1,0,1\n0.2,1,1\n0,2,1\n0.1,2,1\n",
       ":4: episode 1 has 1 sample", "at least 2"},
      {"time\n0\n", ":2: episode 0 has 1 sample", ""},
      {"time,episode,qpos.hinge\n0,0.5,1\n", ":2:2: column \"episode\": episode 0.5 is not an "
       "integer", ""},
      {"time,validation,qpos.hinge\n0,2,1\n", ":2:2: column \"validation\": validation must be 0 "
       "or 1, got 2", ""},
      {"time,validation\n0,0\n0.1,1\n", ":3: validation changes from 0 to 1 inside an episode "
       "(it starts on line 2)", ""},
      {"time,qpos.hinge\n0,1\n0.0001,1\n", ":2: episode 0 spans 0.0001 s, less than one sample "
       "spacing", ""},
  };
  int n = (int)(sizeof(cases) / sizeof(cases[0]));
  assert_true(n >= 12);
  for (int i = 0; i < n; i++) {
    char name[32], expect[512];
    snprintf(name, sizeof(name), "bad%02d.csv", i);
    snprintf(expect, sizeof(expect), "%s%s", name, cases[i].where);
    dsoError err = {0};
    dsoDataset* ds = (dsoDataset*)&err;  // must come back NULL
    dsoStatus st = read_text(&ds, name, cases[i].text, NULL, &err);
    if (st == DSO_OK || !strstr(err.msg, expect) || !strstr(err.msg, cases[i].what)) {
      print_error("case %d: status %d, message: %s\nexpected: %s ... %s\n", i, (int)st, err.msg,
                  expect, cases[i].what);
    }
    assert_int_equal(st, DSO_ERR_INPUT);
    assert_null(ds);
    assert_non_null(strstr(err.msg, expect));
    assert_non_null(strstr(err.msg, cases[i].what));
  }
}

static void test_bad_files_more(void** state) {
  dsoError err = {0};
  dsoDataset* ds = NULL;
  char path[1024], path2[1024];
  // missing file
  snprintf(path, sizeof(path), "%s/missing.csv", g_dir);
  assert_int_equal(dso_dataset_read_csv(&ds, g_model, path, NULL, &err), DSO_ERR_IO);
  assert_non_null(strstr(err.msg, "missing.csv: cannot open file"));
  // larger than the limit
  dsoDatasetSpec spec;
  dso_dataset_spec_default(&spec);
  spec.max_bytes = 16;
  dso_error_clear(&err);
  assert_int_equal(read_text(&ds, "big.csv", "time,qpos.hinge\n0,1\n0.1,2\n", &spec, &err),
                   DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "big.csv: file is 26 bytes, more than the 16 allowed"));
  // a NUL byte
  dso_error_clear(&err);
  write_tmp(path, sizeof(path), "nul.csv", "time\n0\0\n", 8);
  assert_int_equal(dso_dataset_read_csv(&ds, g_model, path, NULL, &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "nul.csv: binary file"));
  remove(path);
  dso_dataset_spec_clear(&spec);
  // column map errors found when reading
  struct {
    const char *csv, *to, *text, *expect;
  } maps[] = {
      {"t", "qpos.nope", "t,time\n0,0\n",
       "map0.csv:1:1: column \"t\" is mapped to \"qpos.nope\": column \"qpos.nope\": the model has "
       "no joint \"nope\""},
      {"t", "time", "time,t\n0,0\n",
       "map1.csv:1:2: duplicate column: \"t\" gives time, which column 1 (\"time\") already gives"},
      {"t_s", "time", "time,qpos.hinge\n0,0\n0.001,1\n", "the column map names \"t_s\", which no file "
       "has as a column (files: "},
  };
  for (int i = 0; i < 3; i++) {
    char name[32];
    snprintf(name, sizeof(name), "map%d.csv", i);
    dso_dataset_spec_default(&spec);
    assert_int_equal(dso_dataset_spec_add_column(&spec, maps[i].csv, maps[i].to, 1, 0, &err),
                     DSO_OK);
    dso_error_clear(&err);
    assert_int_equal(read_text(&ds, name, maps[i].text, &spec, &err), DSO_ERR_INPUT);
    if (!strstr(err.msg, maps[i].expect)) {
      print_error("map case %d: %s\n", i, err.msg);
    }
    assert_non_null(strstr(err.msg, maps[i].expect));
    dso_dataset_spec_clear(&spec);
  }
  // files that give different entries
  dso_dataset_spec_default(&spec);
  write_tmp(path, sizeof(path), "a.csv", "time,qpos.hinge\n0,0\n0.001,1\n", -1);
  write_tmp(path2, sizeof(path2), "b.csv", "\ntime,qvel.hinge\n0,0\n1,1\n", -1);
  assert_int_equal(dso_dataset_spec_add_file(&spec, NULL, path, &err), DSO_OK);
  assert_int_equal(dso_dataset_spec_add_file(&spec, "", path2, &err), DSO_OK);
  dso_error_clear(&err);
  assert_int_equal(dso_dataset_load(&ds, g_model, &spec, &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "b.csv:2: has no column qpos.hinge, which "));
  assert_non_null(strstr(err.msg, "a.csv has; every file of a dataset must give the same"));
  remove(path);
  remove(path2);
  // bad settings
  spec.stride = 0;
  dso_error_clear(&err);
  assert_int_equal(dso_dataset_load(&ds, g_model, &spec, &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "stride 0"));
  dso_dataset_spec_clear(&spec);
  dso_error_clear(&err);
  assert_int_equal(dso_dataset_load(&ds, g_model, &spec, &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "no files"));
  assert_null(ds);
}

// a model with many joints: the list of valid names is cut short and points to dso info
static void test_long_name_list(void** state) {
  char xml[8192], path[1200];
  int len = snprintf(xml, sizeof(xml), "<mujoco><worldbody>");
  for (int i = 0; i < 40; i++) {
    len += snprintf(xml + len, sizeof(xml) - len,
                    "<body name=\"b%d\"><joint name=\"a_rather_long_joint_name_%02d\"/>"
                    "<geom size=\"0.1\"/></body>", i, i);
  }
  snprintf(xml + len, sizeof(xml) - len, "</worldbody></mujoco>");
  dsoError err = {0};
  mjModel* m = dso_mj_load(write_tmp(path, sizeof(path), "many.xml", xml, -1), &err);
  remove(path);
  assert_non_null(m);
  write_tmp(path, sizeof(path), "many.csv", "time,qpos.nope\n0,0\n1,1\n", -1);
  dsoDataset* ds = NULL;
  assert_int_equal(dso_dataset_read_csv(&ds, m, path, NULL, &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "many.csv:1:2: column \"qpos.nope\": the model has no joint"));
  assert_non_null(strstr(err.msg, "joints: a_rather_long_joint_name_00, "));
  assert_non_null(strstr(err.msg, "more (see dso info MODEL)"));
  assert_non_null(strstr(err.msg, "e.g. to \"ignore\")"));  // the end of the message is kept
  dso_error_clear(&err);
  write_tmp(path, sizeof(path), "many.csv", "time,what\n0,0\n1,1\n", -1);
  assert_int_equal(dso_dataset_read_csv(&ds, m, path, NULL, &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "valid names: time, episode, validation, qpos.a_rather_long"));
  assert_non_null(strstr(err.msg, "more (see dso info MODEL)"));
  remove(path);
  mj_deleteModel(m);
}

static void test_spec(void** state) {
  dsoError err = {0};
  dsoDatasetSpec spec;
  dso_dataset_spec_default(&spec);
  assert_int_equal(spec.resample, 1);
  assert_int_equal(spec.stride, 1);
  assert_true(spec.window[0] == 0 && isinf(spec.window[1]));
  assert_int_equal(dso_dataset_spec_add_file(&spec, "/x/y", "a.csv", &err), DSO_OK);
  assert_int_equal(dso_dataset_spec_add_file(&spec, "/x/y/", "b.csv", &err), DSO_OK);
  assert_int_equal(dso_dataset_spec_add_file(&spec, "/x/y", "/abs.csv", &err), DSO_OK);
  assert_int_equal(dso_dataset_spec_add_file(&spec, NULL, "rel/c.csv", &err), DSO_OK);
  assert_string_equal(spec.file[0], "/x/y/a.csv");
  assert_string_equal(spec.file[1], "/x/y/b.csv");
  assert_string_equal(spec.file[2], "/abs.csv");
  assert_string_equal(spec.file[3], "rel/c.csv");
  assert_int_equal(dso_dataset_spec_add_column(&spec, "a", "time", 1, 0, &err), DSO_OK);
  assert_int_equal(dso_dataset_spec_add_column(&spec, "a", "time", 1, 0, &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "\"a\" is mapped twice"));
  dso_dataset_spec_clear(&spec);
  assert_int_equal(spec.nfile, 0);

  // a full "data" object inside a task
  const char* task =
      "{\"model\": \"m.xml\", \"data\": {\"files\": \"rec.csv\", \"stride\": 4, "
      "\"resample\": false, \"max_episodes\": 3, \"window\": [0.5, null], "
      "\"columns\": {\"a\": \"qpos.hinge\", \"b\": \"ignore\", "
      "\"c\": {\"to\": \"qvel.hinge\", \"scale\": 2, \"offset\": -1}, "
      "\"d\": {\"to\": \"ignore\"}}}}";
  cJSON* root = cJSON_Parse(task);
  dso_error_clear(&err);
  dsoCfg ct = dso_cfg_ctx("tasks/t.json", "data", &err);
  assert_int_equal(dso_cfg_read_dataset(&spec, cJSON_GetObjectItem(root, "data"), "tasks", &ct),
                   DSO_OK);
  cJSON_Delete(root);
  assert_int_equal(spec.nfile, 1);
  assert_string_equal(spec.file[0], "tasks/rec.csv");
  assert_int_equal(spec.stride, 4);
  assert_int_equal(spec.resample, 0);
  assert_int_equal(spec.max_episodes, 3);
  assert_true(spec.window[0] == 0.5 && isinf(spec.window[1]));
  assert_int_equal(spec.ncolumn, 4);
  assert_string_equal(spec.column[0].to, "qpos.hinge");
  assert_null(spec.column[1].to);
  assert_true(spec.column[2].scale == 2 && spec.column[2].offset == -1);
  assert_null(spec.column[3].to);
  dso_dataset_spec_clear(&spec);

  static const char* const bad[][2] = {
      {"{\"files\": \"a.csv\", \"resampel\": true}", "t.json: data: unknown key \"resampel\""},
      {"{\"columns\": {}}", "t.json: data.files: expected a file name or a non-empty array"},
      {"{\"files\": []}", "t.json: data.files: expected a file name or a non-empty array"},
      {"{\"files\": [\"a.csv\", 3]}", "t.json: data.files[1]: expected a file name, got a number"},
      {"{\"files\": \"a.csv\", \"columns\": [1]}", "t.json: data.columns: expected an object"},
      {"{\"files\": \"a.csv\", \"columns\": {\"x\": 3}}",
       "t.json: data.columns.x: expected a dataset column name"},
      {"{\"files\": \"a.csv\", \"columns\": {\"x\": {\"to\": \"time\", \"scal\": 2}}}",
       "t.json: data.columns.x: unknown key \"scal\""},
      {"{\"files\": \"a.csv\", \"columns\": {\"x\": {\"scale\": 2}}}",
       "t.json: data.columns.x: \"to\" is required"},
      {"{\"files\": \"a.csv\", \"columns\": {\"x\": {\"to\": \"time\", \"scale\": 0}}}",
       "t.json: data.columns.x.scale: must not be 0"},
      {"{\"files\": \"a.csv\", \"columns\": {\"x\": \"\"}}", "t.json: data.columns.x: empty"},
      {"{\"files\": \"a.csv\", \"stride\": 0}", "t.json: data.stride: expected an integer >= 1"},
      {"{\"files\": \"a.csv\", \"stride\": 1.5}", "t.json: data.stride: expected an integer"},
      {"{\"files\": \"a.csv\", \"max_episodes\": -1}", "t.json: data.max_episodes: expected an "
       "integer >= 0"},
      {"{\"files\": \"a.csv\", \"resample\": 1}", "t.json: data.resample: expected true or false"},
      {"{\"files\": \"a.csv\", \"window\": [1]}", "t.json: data.window: expected [start, end]"},
      {"{\"files\": \"a.csv\", \"window\": [2, 1]}", "t.json: data.window: expected 0 <= start < "
       "end, got [2, 1]"},
      {"[1]", "t.json: data: expected an object, got an array"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    root = cJSON_Parse(bad[i][0]);
    assert_non_null(root);
    dso_error_clear(&err);
    dsoCfg cb = dso_cfg_ctx("t.json", "data", &err);
    dsoStatus st = dso_cfg_read_dataset(&spec, root, "", &cb);
    cJSON_Delete(root);
    if (st != DSO_ERR_INPUT || !strstr(err.msg, bad[i][1])) {
      print_error("json case %d: %s\n", (int)i, err.msg);
    }
    assert_int_equal(st, DSO_ERR_INPUT);
    assert_non_null(strstr(err.msg, bad[i][1]));
    assert_int_equal(spec.nfile, 0);
    assert_int_equal(spec.ncolumn, 0);
  }
  dso_error_clear(&err);
  assert_int_equal(dso_dataset_spec_parse(&spec, "{\"files\": ", "", "t.json", &err),
                   DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "t.json: line 1, column"));
}

static double seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static void test_real_recording(void** state) {
  const char* dir = DSO_SHARED_DIR "/data/multiarm-pendulum-single";
  char probe[512];
  snprintf(probe, sizeof(probe), "%s/single_pendulum_freeswing.csv", dir);
  if (access(probe, R_OK) != 0) {
    print_message("skipped: %s is not there\n", probe);
    skip();
  }
  dsoError err = {0};
  mjModel* m = dso_mj_load(DSO_SOURCE_DIR "/models/pendulum.xml", &err);
  assert_non_null(m);
  const char* data =
      "{\"files\": \"single_pendulum_freeswing.csv\", \"columns\": {"
      "\"t_s\": \"time\", \"segment\": \"episode\", \"is_validation\": \"validation\", "
      "\"theta1_rad\": {\"to\": \"qpos.hinge\", \"offset\": -3.141592653589793}, "
      "\"dtheta1_rad_s\": \"qvel.hinge\"}}";
  dsoDatasetSpec spec;
  assert_int_equal(dso_dataset_spec_parse(&spec, data, dir, "task.json", &err), DSO_OK);
  dsoDataset* ds = NULL;
  double t0 = seconds();
  dsoStatus st = dso_dataset_load(&ds, m, &spec, &err);
  double elapsed = seconds() - t0;
  if (st) {
    print_error("%s\n", err.msg);
  }
  assert_int_equal(st, DSO_OK);
  // speed is the benchmark's business; the figure is printed for the record
  print_message("read and resampled 55001 rows in %.3f s\n", elapsed);
  assert_int_equal(dso_dataset_nepisode(ds), 6);
  assert_int_equal(dso_dataset_nvalidation(ds), 2);
  assert_true(ds->dt == 0.001);
  assert_int_equal(ds->has[DSO_DATA_QPOS][0], 1);
  assert_int_equal(ds->has[DSO_DATA_QVEL][0], 1);
  assert_int_equal(ds->has[DSO_DATA_CTRL][0], 0);
  for (int i = 0; i < m->nsensordata; i++) assert_int_equal(ds->has[DSO_DATA_SENSOR][i], 0);
  long total = 0;
  for (int n = 0; n < 6; n++) {
    const dsoEpisode* ep = dso_dataset_episode(ds, n);
    assert_int_equal(ep->id, n);
    assert_int_equal(ep->validation, n >= 4);
    // 9167 rows at 1 kHz (the last segment 9166), i.e. about 9.167 s
    assert_int_equal(ep->T, n == 5 ? 9166 : 9167);
    double span = ep->time[ep->T - 1] - ep->time[0] + 0.001;
    assert_true(fabs(span - 9.167) < 0.0015);
    assert_true(fabs(ep->time[1] - ep->time[0] - 0.001) < 1e-12);
    total += ep->T;
  }
  assert_int_equal(dso_dataset_nsample(ds), 55001);
  assert_int_equal(total, 55001);
  // first row: t 0, theta1 1.5231637, rate 1.8482541; hanging straight down is qpos 0
  const dsoEpisode* ep = &ds->episode[0];
  assert_true(fabs(ep->qpos[0] - (1.5231637 - M_PI)) < 1e-12);
  assert_true(fabs(ep->qvel[0] - 1.8482541) < 1e-12);
  assert_true(fabs(ds->episode[4].time[0] - 36.668) < 1e-9);
  assert_int_equal(ds->episode[4].line, 2 + 4 * 9167);
  // the swing stays around the hanging position
  double lo = 1e9, hi = -1e9;
  for (int k = 0; k < ep->T; k++) {
    lo = fmin(lo, ep->qpos[k]);
    hi = fmax(hi, ep->qpos[k]);
  }
  assert_true(lo > -2 && lo < -1 && hi > 1 && hi < 2);
  dso_dataset_free(ds);
  dso_dataset_spec_clear(&spec);
  mj_deleteModel(m);
}

// ---------------------------------------------------------------------------------------------
// files as objects, derived columns, resampling at other rates, decimation (issue 11)

// path of name inside DSO_BUILD_DIR/test_files/dataset (created)
static const char* build_file(char* buf, size_t n, const char* name, const char* text) {
  dsoError err = {0};
  assert_int_equal(dso_mkdir_p(DSO_BUILD_DIR "/test_files/dataset", &err), DSO_OK);
  snprintf(buf, n, "%s/test_files/dataset/%s", DSO_BUILD_DIR, name);
  if (text) {
    assert_int_equal(dso_write_file_atomic(buf, text, strlen(text), &err), DSO_OK);
  }
  return buf;
}

// loads the "data" object json (files relative to the build folder of build_file)
static dsoStatus load_json(dsoDataset** ds, const char* json, dsoError* err) {
  char dir[512];
  build_file(dir, sizeof(dir), "", NULL);
  dsoDatasetSpec spec;
  dso_dataset_spec_default(&spec);
  cJSON* root = cJSON_Parse(json);
  assert_non_null(root);
  dsoCfg c = dso_cfg_ctx("t.json", "data", err);
  dsoStatus st = dso_cfg_read_dataset(&spec, root, dir, &c);
  cJSON_Delete(root);
  if (!st) {
    st = dso_dataset_load(ds, g_model, &spec, err);
  }
  dso_dataset_spec_clear(&spec);
  return st;
}

static void test_validation_files(void** state) {
  char p[512];
  build_file(p, sizeof(p), "train.csv",
             "time,episode,validation,qpos.hinge\n0,1,0,0\n0.002,1,0,1\n0,2,1,0\n0.002,2,1,1\n");
  build_file(p, sizeof(p), "held.csv", "time,episode,qpos.hinge\n0,5,0\n0.002,5,1\n0,6,0\n"
             "0.002,6,1\n");
  dsoError err = {0};
  dsoDataset* ds = NULL;
  // the held-out file's episodes become validation episodes; the training file's validation
  // column is overridden by "validation": false, and kept when the entry is a plain string
  assert_int_equal(load_json(&ds, "{\"files\": [\"train.csv\", {\"path\": \"held.csv\", "
                             "\"validation\": true}]}", &err), DSO_OK);
  assert_int_equal(dso_dataset_nepisode(ds), 4);
  int expect[4] = {0, 1, 1, 1};
  for (int n = 0; n < 4; n++) assert_int_equal(ds->episode[n].validation, expect[n]);
  assert_int_equal(ds->episode[3].file, 1);
  dso_dataset_free(ds);
  assert_int_equal(load_json(&ds, "{\"files\": [{\"path\": \"train.csv\", \"validation\": false},"
                             " \"held.csv\"]}", &err), DSO_OK);
  assert_int_equal(dso_dataset_nvalidation(ds), 0);
  dso_dataset_free(ds);
  // one object instead of a list
  assert_int_equal(load_json(&ds, "{\"files\": {\"path\": \"held.csv\", \"validation\": true}}",
                             &err), DSO_OK);
  assert_int_equal(dso_dataset_nvalidation(ds), 2);
  dso_dataset_free(ds);
  // a per-file column map: only held.csv names its angle "deg"
  build_file(p, sizeof(p), "deg.csv", "time,deg\n0,0\n0.002,90\n");
  assert_int_equal(load_json(&ds, "{\"files\": [\"held.csv\", {\"path\": \"deg.csv\", "
                             "\"columns\": {\"deg\": {\"to\": \"qpos.hinge\", \"scale\": "
                             "0.017453292519943295}}}]}", &err), DSO_OK);
  assert_int_equal(dso_dataset_nepisode(ds), 3);
  assert_true(fabs(ds->episode[2].qpos[2 * g_model->nq + 7] - M_PI / 2) < 1e-15);
  assert_true(fabs(ds->episode[2].qpos[1 * g_model->nq + 7] - M_PI / 4) < 1e-15);
  dso_dataset_free(ds);
  static const char* const bad[][2] = {
      {"{\"files\": [{\"validation\": true}]}", "t.json: data.files[0]: \"path\" is required"},
      {"{\"files\": [{\"path\": \"held.csv\", \"valid\": true}]}",
       "t.json: data.files[0]: unknown key \"valid\""},
      {"{\"files\": [{\"path\": \"held.csv\", \"validation\": 1}]}",
       "t.json: data.files[0].validation: expected true or false"},
      {"{\"files\": {\"path\": \"\"}}", "t.json: data.files.path: expected a file name"},
      {"{\"files\": [\"held.csv\", {\"path\": \"deg.csv\", \"columns\": {\"nope\": \"ignore\", "
       "\"deg\": \"qpos.hinge\"}}]}",
       "deg.csv:1: the file's own column map names \"nope\""},
      {"{\"files\": [\"held.csv\", {\"path\": \"held.csv\", \"columns\": {\"qpos.hinge\": "
       "\"time\"}}]}", "held.csv:1:3: duplicate column: \"qpos.hinge\" gives time"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    dso_error_clear(&err);
    ds = NULL;
    dsoStatus st = load_json(&ds, bad[i][0], &err);
    if (st != DSO_ERR_INPUT || !strstr(err.msg, bad[i][1])) {
      print_error("case %d: %s\n", (int)i, err.msg);
    }
    assert_int_equal(st, DSO_ERR_INPUT);
    assert_non_null(strstr(err.msg, bad[i][1]));
    assert_null(ds);
  }
}

static void test_derived_columns(void** state) {
  char p[512];
  build_file(p, sizeof(p), "two.csv",
             "t,theta1,theta2,'odd-name',enc\n"
             "0,3.0,3.5,1,1000\n0.001,3.1,3.4,2,2000\n0.002,3.2,3.3,3,-500\n");
  dsoError err = {0};
  dsoDataset* ds = NULL;
  // theta2 - theta1 as the hinge angle, a scaled encoder as the hinge rate, a constant ctrl and
  // a quoted name in the angle sensor; theta1 also feeds the slide (it has no name: by index)
  const char* json =
      "{\"files\": \"two.csv\", \"columns\": {\"t\": \"time\", \"'odd-name'\": \"ignore\"}, "
      "\"derived\": {\"qpos.hinge\": \"theta2 - theta1\", \"qvel.hinge\": \"0.001*enc + 0.1\", "
      "\"ctrl.motor\": \"-2.5e-1 * 2\", \"sensor.angle\": \"theta1 / 2 - -theta2*2 + 3\"}}";
  // the quoted header name is "'odd-name'" with its quotes: no derived column uses it here
  assert_int_equal(load_json(&ds, json, &err), DSO_OK);
  const dsoEpisode* ep = &ds->episode[0];
  const double th1[3] = {3.0, 3.1, 3.2}, th2[3] = {3.5, 3.4, 3.3}, enc[3] = {1000, 2000, -500};
  for (int k = 0; k < 3; k++) {
    assert_true(ep->qpos[k * g_model->nq + 7] == th2[k] - th1[k]);
    assert_true(fabs(ep->qvel[k * g_model->nv + 6] - (0.001 * enc[k] + 0.1)) < 1e-15);
    assert_true(ep->ctrl[k] == -0.5);
    assert_true(fabs(ep->sensordata[k * g_model->nsensordata] -
                     (th1[k] / 2 + 2 * th2[k] + 3)) < 1e-14);
  }
  assert_int_equal(ds->has[DSO_DATA_QPOS][7], 1);
  assert_int_equal(ds->has[DSO_DATA_QPOS][0], 0);
  assert_int_equal(ds->has[DSO_DATA_SENSOR][0], 1);
  assert_int_equal(ds->has[DSO_DATA_SENSOR][1], 0);
  dso_dataset_free(ds);
  // a per-file expression replaces the data-level one for the same target
  assert_int_equal(load_json(&ds, "{\"files\": {\"path\": \"two.csv\", \"derived\": "
                             "{\"qpos.hinge\": \"theta1\"}}, \"columns\": {\"t\": \"time\", "
                             "\"'odd-name'\": \"ignore\", \"enc\": \"ignore\"}, \"derived\": "
                             "{\"qpos.hinge\": \"theta2 - theta1\"}}", &err), DSO_OK);
  assert_true(ds->episode[0].qpos[2 * g_model->nq + 7] == 3.2);
  dso_dataset_free(ds);

  // parse errors: file, JSON path and 1-based position
  static const char* const bad_expr[][2] = {
      {"", "data.derived.qpos.hinge: derived column \"qpos.hinge\" = \"\": empty expression"},
      {"theta1 theta2", "position 8: expected '+', '-', '*', '/' or the end"},
      {"theta1 * theta2", "position 10: a second column name in one term"},
      {"2 / theta1", "position 5: a column name after '/'"},
      {"theta1 / 0", "position 10: division by zero"},
      {"theta1 - ", "position 10: expected a column name or a number, got the end"},
      {"theta1 + (theta2)", "position 10: expected a column name or a number, got '('"},
      {"1e999 * theta1", "position 1: number out of range"},
      {"1e300 * theta1 * 1e10", "position 22: coefficient out of range"},
      {"'theta1", "position 1: unterminated quoted name"},
      {"0x10 * theta1", "position 2: expected '+', '-', '*', '/' or the end"},
      {"theta1 ** 2", "position 9: expected a column name or a number, got '*'"},
  };
  for (size_t i = 0; i < sizeof(bad_expr) / sizeof(bad_expr[0]); i++) {
    char text[512];
    snprintf(text, sizeof(text), "{\"files\": \"two.csv\", \"derived\": {\"qpos.hinge\": \"%s\"}}",
             bad_expr[i][0]);
    dso_error_clear(&err);
    dsoStatus st = load_json(&ds, text, &err);
    if (st != DSO_ERR_INPUT || !strstr(err.msg, bad_expr[i][1]) ||
        !strstr(err.msg, "t.json: data.derived.qpos.hinge: ")) {
      print_error("expression case %d: %s\n", (int)i, err.msg);
    }
    assert_int_equal(st, DSO_ERR_INPUT);
    assert_non_null(strstr(err.msg, "t.json: data.derived.qpos.hinge: "));
    assert_non_null(strstr(err.msg, bad_expr[i][1]));
  }
  // errors when the file is read
#define IGNORE_ALL "\"columns\": {\"t\": \"time\", \"'odd-name'\": \"ignore\", \"theta1\": " \
  "\"ignore\", \"theta2\": \"ignore\", \"enc\": \"ignore\"}"
  static const char* const bad_load[][2] = {
      {"{\"files\": \"two.csv\", " IGNORE_ALL ", \"derived\": {\"qpos.hinge\": "
       "\"theta3 - theta1\"}}", "two.csv:1: derived column \"qpos.hinge\" = \"theta3 - theta1\": "
       "the header has no column \"theta3\""},
      {"{\"files\": \"two.csv\", \"columns\": {\"t\": \"time\", \"theta1\": \"qpos.hinge\", "
       "\"'odd-name'\": \"ignore\", \"enc\": \"ignore\"}, \"derived\": {\"qpos.hinge\": "
       "\"theta2\"}}", "two.csv:1: derived column \"qpos.hinge\" duplicates column 2 "
       "(\"theta1\")"},
      {"{\"files\": \"two.csv\", " IGNORE_ALL ", \"derived\": {\"time\": \"theta1\"}}",
       "two.csv:1: derived column \"time\": only qpos, qvel, ctrl and sensor"},
      {"{\"files\": \"two.csv\", " IGNORE_ALL ", \"derived\": {\"qpos.elbow\": \"theta1\"}}",
       "two.csv:1: derived column: column \"qpos.elbow\": the model has no joint \"elbow\""},
      {"{\"files\": \"two.csv\", " IGNORE_ALL ", \"derived\": {\"qpos.hinge\": "
       "\"1e308 * enc\"}}", "two.csv:2: derived column \"qpos.hinge\" = \"1e308 * enc\" is not "
       "finite"},
      {"{\"files\": \"two.csv\", " IGNORE_ALL ", \"derived\": {\"qpos.hinge\": 3}}",
       "t.json: data.derived.qpos.hinge: expected an expression"},
      {"{\"files\": \"two.csv\", " IGNORE_ALL ", \"derived\": [1]}",
       "t.json: data.derived: expected an object"},
      // an unmapped column that no derived column uses is still an error
      {"{\"files\": \"two.csv\", \"columns\": {\"t\": \"time\", \"'odd-name'\": \"ignore\"}, "
       "\"derived\": {\"qpos.hinge\": \"theta2 - theta1\"}}",
       "two.csv:1:5: unknown column \"enc\""},
  };
#undef IGNORE_ALL

  for (size_t i = 0; i < sizeof(bad_load) / sizeof(bad_load[0]); i++) {
    dso_error_clear(&err);
    ds = NULL;
    dsoStatus st = load_json(&ds, bad_load[i][0], &err);
    if (st != DSO_ERR_INPUT || !strstr(err.msg, bad_load[i][1])) {
      print_error("load case %d: %s\n", (int)i, err.msg);
    }
    assert_int_equal(st, DSO_ERR_INPUT);
    assert_non_null(strstr(err.msg, bad_load[i][1]));
    assert_null(ds);
  }
  // the API: a second entry for the same target, a file index out of range
  dsoDatasetSpec spec;
  dso_dataset_spec_default(&spec);
  dso_error_clear(&err);
  assert_int_equal(dso_dataset_spec_add_derived(&spec, -1, "qpos.hinge", "a - b", &err), DSO_OK);
  assert_int_equal(spec.derived[0].nterm, 2);
  assert_true(spec.derived[0].coef[1] == -1 && spec.derived[0].constant == 0);
  assert_int_equal(dso_dataset_spec_add_derived(&spec, -1, "qpos.hinge", "a", &err),
                   DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "derived column \"qpos.hinge\" is given twice"));
  dso_error_clear(&err);
  assert_int_equal(dso_dataset_spec_add_derived(&spec, 0, "qpos.hinge", "a", &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "file index 0 is out of range"));
  // repeated names merge: a - 2 a + 3 = 3 - a
  dso_error_clear(&err);
  assert_int_equal(dso_dataset_spec_add_derived(&spec, -1, "qvel.hinge", "a - 2*a + 1.5*2", &err),
                   DSO_OK);
  assert_int_equal(spec.derived[1].nterm, 1);
  assert_true(spec.derived[1].coef[0] == -1 && spec.derived[1].constant == 3);
  dso_dataset_spec_clear(&spec);
  assert_int_equal(spec.nderived, 0);
}

// CSV text of s(t) = a + b t + c cos(2 pi f t) sampled every dt from 0 to t_end (inclusive)
static void signal_csv(char* text, size_t len, double dt, double t_end, double f) {
  size_t n = (size_t)snprintf(text, len, "time,qpos.hinge,qvel.hinge\n");
  int K = (int)floor(t_end / dt + 0.5);
  for (int k = 0; k <= K; k++) {
    double t = k * dt;
    n += (size_t)snprintf(text + n, len - n, "%.17g,%.17g,%.17g\n", t,
                          0.3 + 2 * t + 0.5 * cos(2 * M_PI * f * t), sin(2 * M_PI * 7 * t));
  }
}

static void test_resampling_rates(void** state) {
  dsoError err = {0};
  static char text[1 << 18];
  char p[512];
  dsoDataset* ds = NULL;
  const double h = g_model->opt.timestep;  // 1 ms
  // 0.5x rate (every 2 ms): linear interpolation onto the 1 ms grid, exact at the samples, and
  // within the interpolation bound (dt^2 / 8) max|s''| between them
  signal_csv(text, sizeof(text), 2 * h, 0.2, 5);
  build_file(p, sizeof(p), "slow.csv", text);
  assert_int_equal(load_json(&ds, "{\"files\": \"slow.csv\"}", &err), DSO_OK);
  const dsoEpisode* ep = &ds->episode[0];
  assert_int_equal(ep->T, 201);
  assert_int_equal(ep->decimate, 1);
  double bound = (4 * h * h / 8) * 0.5 * pow(2 * M_PI * 5, 2);
  double worst = 0;
  for (int k = 0; k < ep->T; k++) {
    double t = k * h;
    double exact = 0.3 + 2 * t + 0.5 * cos(2 * M_PI * 5 * t);
    double e = fabs(ep->qpos[k * g_model->nq + 7] - exact);
    if (k % 2 == 0) {
      assert_true(e < 1e-14);
    }
    worst = fmax(worst, e);
  }
  assert_true(worst <= bound * (1 + 1e-9) && worst > 0.5 * bound);
  dso_dataset_free(ds);

  // 2x rate (every 0.5 ms) with a component exactly at the grid rate (1 kHz): picking every
  // second sample aliases it into an offset of +0.5; the automatic k = 2 triangle (1/4, 1/2,
  // 1/4) removes it and passes the linear part exactly
  signal_csv(text, sizeof(text), 0.5 * h, 0.1, 1000);
  build_file(p, sizeof(p), "fast.csv", text);
  assert_int_equal(load_json(&ds, "{\"files\": \"fast.csv\", \"decimate\": 1}", &err), DSO_OK);
  ep = &ds->episode[0];
  assert_int_equal(ep->T, 101);
  assert_int_equal(ep->decimate, 1);
  for (int k = 0; k < ep->T; k++) {
    assert_true(fabs(ep->qpos[k * g_model->nq + 7] - (0.3 + 2 * k * h + 0.5)) < 1e-12);
  }
  dso_dataset_free(ds);
  assert_int_equal(load_json(&ds, "{\"files\": \"fast.csv\"}", &err), DSO_OK);
  ep = &ds->episode[0];
  assert_int_equal(ep->T, 101);
  assert_int_equal(ep->decimate, 2);
  for (int k = 1; k < ep->T - 1; k++) {
    assert_true(fabs(ep->qpos[k * g_model->nq + 7] - (0.3 + 2 * k * h)) < 1e-12);
    // the 7 Hz sine passes with the kernel's gain ((1/2) sin(w) / sin(w/2))^2 = cos^2(w/2)
    double w = 2 * M_PI * 7 * 0.5 * h;
    double gain = cos(w / 2) * cos(w / 2);
    assert_true(fabs(ep->qvel[k * g_model->nv + 6] - gain * sin(2 * M_PI * 7 * k * h)) < 1e-12);
  }
  // the ends keep the raw sample (the half-width shrinks to 0)
  assert_true(fabs(ep->qpos[7] - 0.8) < 1e-15);
  dso_dataset_free(ds);
  // stride 2 on the 2x recording: k = 4, the grid spacing over the sample spacing
  assert_int_equal(load_json(&ds, "{\"files\": \"fast.csv\", \"stride\": 2}", &err), DSO_OK);
  assert_int_equal(ds->episode[0].decimate, 4);
  assert_int_equal(ds->episode[0].T, 51);
  dso_dataset_free(ds);
}

static void test_decimation(void** state) {
  dsoError err = {0};
  static char text[1 << 16];
  char p[512];
  dsoDataset* ds = NULL;
  // 3 kHz samples of a linear signal plus a 1 kHz cosine, without resampling, decimate 3: every
  // 3rd filtered sample; the kernel (1 2 3 2 1)/9 has zeros at 1 and 2 kHz, so the cosine goes
  signal_csv(text, sizeof(text), 0.001 / 3, 0.03, 1000);
  build_file(p, sizeof(p), "three.csv", text);
  assert_int_equal(load_json(&ds, "{\"files\": \"three.csv\", \"resample\": \"none\", "
                             "\"decimate\": 3}", &err), DSO_OK);
  const dsoEpisode* ep = &ds->episode[0];
  assert_int_equal(ep->decimate, 3);
  assert_int_equal(ep->T, 31);
  assert_true(ds->dt == 0);
  for (int k = 0; k < ep->T; k++) {
    assert_true(fabs(ep->time[k] - k * 0.001) < 1e-15);
    double expect = 0.3 + 2 * ep->time[k] + (k == 0 || k == ep->T - 1 ? 0.5 : 0);
    assert_true(fabs(ep->qpos[k * g_model->nq + 7] - expect) < 1e-12);
  }
  dso_dataset_free(ds);
  // the same with "resample": "linear" and automatic width
  assert_int_equal(load_json(&ds, "{\"files\": \"three.csv\", \"resample\": \"linear\"}", &err),
                   DSO_OK);
  assert_int_equal(ds->episode[0].decimate, 3);
  assert_true(ds->dt == 0.001);
  for (int k = 1; k < ds->episode[0].T - 1; k++) {
    assert_true(fabs(ds->episode[0].qpos[k * g_model->nq + 7] - (0.3 + 0.002 * k)) < 1e-12);
  }
  dso_dataset_free(ds);
  static const char* const bad[][2] = {
      {"{\"files\": \"three.csv\", \"decimate\": 0}", "t.json: data.decimate: expected \"auto\" "
       "or an integer filter width >= 1"},
      {"{\"files\": \"three.csv\", \"decimate\": 2.5}", "t.json: data.decimate: expected"},
      {"{\"files\": \"three.csv\", \"decimate\": \"on\"}", "t.json: data.decimate: expected"},
      {"{\"files\": \"three.csv\", \"resample\": \"cubic\"}", "t.json: data.resample: expected "
       "true or false (or \"linear\", \"none\"), got a string \"cubic\""},
      {"{\"files\": \"three.csv\", \"resample\": \"none\", \"decimate\": 100}",
       "three.csv:2: episode 0 has 91 samples: with stride 1 and decimate 100 it would keep 1"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    dso_error_clear(&err);
    dsoStatus st = load_json(&ds, bad[i][0], &err);
    if (st != DSO_ERR_INPUT || !strstr(err.msg, bad[i][1])) {
      print_error("case %d: %s\n", (int)i, err.msg);
    }
    assert_int_equal(st, DSO_ERR_INPUT);
    assert_non_null(strstr(err.msg, bad[i][1]));
  }
}

// issue 12: a time column whose step is not near the model timestep (1 ms here) is refused
// naming the file, the column and both steps: milliseconds (1000 x) with the hint to scale by
// 0.001, microseconds; the same file mapped with scale 0.001 reads; steps up to 500 timesteps
// (a slow recording resampled) are accepted. A folder or a FIFO given as the data file is
// refused at once (SIGALRM ends the program if a read blocks). Files under DSO_BUILD_DIR.
static void test_time_units_and_file_kinds(void** state) {
  char dir[1024], path[1100];
  snprintf(dir, sizeof(dir), "%s/test_dataset_time", DSO_BUILD_DIR);
  dsoError err = {0};
  assert_int_equal(dso_mkdir_p(dir, &err), DSO_OK);
  snprintf(path, sizeof(path), "%s/t_ms.csv", dir);
  const char* ms = "t_ms,qpos.hinge\n0,0\n1,0.1\n2,0.2\n3,0.3\n5,0.5\n";
  assert_int_equal(dso_write_file_atomic(path, ms, strlen(ms), &err), DSO_OK);
  dsoDatasetSpec spec;
  dso_dataset_spec_default(&spec);
  assert_int_equal(dso_dataset_spec_add_column(&spec, "t_ms", "time", 1, 0, &err), DSO_OK);
  dsoDataset* ds = NULL;
  assert_int_equal(dso_dataset_read_csv(&ds, g_model, path, &spec, &err), DSO_ERR_INPUT);
  assert_null(ds);
  assert_non_null(strstr(err.msg, "t_ms.csv: column \"t_ms\" (time): consecutive samples are "
                                  "1 apart (median step), 1000 x the model timestep 0.001 s"));
  assert_non_null(strstr(err.msg, "is the time column in milliseconds? dso reads seconds: map it "
                                  "with {\"to\": \"time\", \"scale\": 0.001}"));
  dso_dataset_spec_clear(&spec);
  // mapped to seconds it reads: 6 ms resampled every 1 ms
  dso_dataset_spec_default(&spec);
  assert_int_equal(dso_dataset_spec_add_column(&spec, "t_ms", "time", 0.001, 0, &err), DSO_OK);
  dso_error_clear(&err);
  assert_int_equal(dso_dataset_read_csv(&ds, g_model, path, &spec, &err), DSO_OK);
  assert_int_equal(dso_dataset_episode(ds, 0)->T, 6);
  dso_dataset_free(ds);
  ds = NULL;
  dso_dataset_spec_clear(&spec);
  // microseconds, and the limit itself: 0.5 s steps (500 timesteps) read, 0.6 s do not
  struct {
    const char* text;
    dsoStatus code;
    const char* msg;
  } cases[] = {
      {"time,qpos.hinge\n0,0\n1000,1\n2000,2\n", DSO_ERR_INPUT,
       "1e+06 x the model timestep 0.001 s, more than the 500 x accepted; is the time column in "
       "microseconds?"},
      {"time,qpos.hinge\n0,0\n0.5,1\n1,2\n", DSO_OK, ""},
      {"time,qpos.hinge\n0,0\n0.6,1\n1.2,2\n", DSO_ERR_INPUT,
       "0.6 apart (median step), 600 x the model timestep"},
      // the median: one long gap between otherwise 1 ms samples is fine
      {"time,qpos.hinge\n0,0\n0.001,1\n0.002,2\n5,3\n5.001,4\n", DSO_OK, ""},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    assert_int_equal(dso_write_file_atomic(path, cases[i].text, strlen(cases[i].text), &err),
                     DSO_OK);
    dso_error_clear(&err);
    dsoStatus st = dso_dataset_read_csv(&ds, g_model, path, NULL, &err);
    if (st != cases[i].code || !strstr(err.msg, cases[i].msg)) {
      fail_msg("case %zu: status %d, message \"%s\"", i, (int)st, err.msg);
    }
    dso_dataset_free(ds);
    ds = NULL;
  }
  remove(path);
  // a folder and a FIFO as the data file
  char fifo[1100];
  snprintf(fifo, sizeof(fifo), "%s/fifo.csv", dir);
  remove(fifo);
  assert_int_equal(mkfifo(fifo, 0600), 0);
  alarm(20);
  const char* paths[2] = {dir, fifo};
  const char* kinds[2] = {"not a regular file (a directory); expected a CSV file",
                          "not a regular file (a FIFO); expected a CSV file"};
  for (int i = 0; i < 2; i++) {
    dso_error_clear(&err);
    assert_int_equal(dso_dataset_read_csv(&ds, g_model, paths[i], NULL, &err), DSO_ERR_INPUT);
    assert_non_null(strstr(err.msg, paths[i]));
    assert_non_null(strstr(err.msg, kinds[i]));
    assert_null(strstr(err.msg, "9223372036854775807"));
  }
  alarm(0);
  remove(fifo);
  dso_test_rmtree(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_column_names),
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_writer_errors),
      cmocka_unit_test(test_partial_columns),
      cmocka_unit_test(test_quaternions_after_interpolation),
      cmocka_unit_test(test_episodes_and_files),
      cmocka_unit_test(test_resampling_linear),
      cmocka_unit_test(test_bad_files),
      cmocka_unit_test(test_bad_files_more),
      cmocka_unit_test(test_long_name_list),
      cmocka_unit_test(test_spec),
      cmocka_unit_test(test_real_recording),
      cmocka_unit_test(test_validation_files),
      cmocka_unit_test(test_derived_columns),
      cmocka_unit_test(test_resampling_rates),
      cmocka_unit_test(test_decimation),
      cmocka_unit_test(test_time_units_and_file_kinds),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
