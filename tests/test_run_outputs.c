// Outputs of `dso run` on a fit: trajectories.csv (recorded against simulated at the initial and
// identified θ) agrees with the validation RMS of result.json; model.xml is the task's model file
// edited in place (header comment kept, the constant force listed) and compiles to the identified
// values; trajectories.png when gnuplot is installed.
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

#include "dso_internal.h"
#include "config/json.h"
#include "mujoco/mj.h"
#include "run_cli.h"

#include <cjson/cJSON.h>

static char g_dir[1024];

static int setup(void** state) {
  (void)state;
  if (dso_test_mkdtemp(g_dir, sizeof(g_dir), "dso_test_run_outputs")) {
    return -1;
  }
  // a small arm fit: three entries 30% off and a constant drive offset, on synthetic data with
  // two validation episodes recorded at the true values
  char path[1024];
  snprintf(path, sizeof(path), "%s/task.json", g_dir);
  FILE* f = fopen(path, "w");
  if (!f) {
    return -1;
  }
  fprintf(f,
          "{\"model\": \"%s/models/arm2.xml\",\n"
          " \"data\": {\"files\": \"data.csv\"},\n"
          " \"fit\": {\"window\": 100, \"max_iter\": 8},\n"
          " \"rollout\": {\"horizon\": 300, \"rollouts\": 4, \"seed\": 3},\n"
          " \"theta\": [{\"name\": \"physics.upper_arm.mass\", \"init\": 0.7},\n"
          "   {\"name\": \"physics.elbow.damping\", \"init\": 0.021},\n"
          "   {\"name\": \"physics.elbow_torque.gear[0]\", \"init\": 2.8},\n"
          "   {\"name\": \"physics.shoulder.force\", \"init\": 0.0, \"transform\": \"identity\"}]}\n",
          DSO_SOURCE_DIR);
  fclose(f);
  char args[1024];
  snprintf(args, sizeof(args),
           "simulate %s/task.json -o %s/data.csv --episodes 4 --validation 2 --excitation 0.6 "
           "--set physics.upper_arm.mass=1 --set physics.elbow.damping=0.03 "
           "--set physics.elbow_torque.gear[0]=4 --set physics.shoulder.force=0.1",
           g_dir, g_dir);
  if (run(args) != 0) {
    fprintf(stderr, "%s%s", g_out, g_err);
    return -1;
  }
  snprintf(args, sizeof(args), "run %s/task.json -o %s/out --quiet", g_dir, g_dir);
  if (run(args) != 0) {
    fprintf(stderr, "%s%s", g_out, g_err);
    return -1;
  }
  return 0;
}

static int teardown(void** state) {
  (void)state;
  return dso_test_rmtree(g_dir) == 0 ? 0 : -1;
}

static char* read_out(const char* name) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/out/%s", g_dir, name);
  dsoError err = {0};
  char* t = dso_read_text_file(path, &err);
  if (!t) {
    fail_msg("%s", err.msg);
  }
  return t;
}

static void test_trajectories_csv(void** state) {
  (void)state;
  char* csv = read_out("trajectories.csv");
  const char* header =
      "episode,time,qpos.shoulder.recorded,qpos.shoulder.initial,qpos.shoulder.identified,"
      "qpos.elbow.recorded,qpos.elbow.initial,qpos.elbow.identified\n";
  assert_memory_equal(csv, header, strlen(header));
  // RMS of the first qpos entry, identified against recorded, over every sample after each
  // episode's first (where simulation and recording coincide), and the same at the initial θ
  double s1 = 0, s0 = 0;
  long n = 0, rows = 0, episodes = 0;
  long prev = -1;
  char* line = strchr(csv, '\n') + 1;
  while (*line) {
    double c[8];
    char* p = line;
    for (int k = 0; k < 8; k++) {
      c[k] = strtod(p, &p);
      assert_true(k == 7 ? *p == '\n' : *p == ',');
      p++;
    }
    rows++;
    if ((long)c[0] != prev) {
      prev = (long)c[0];
      episodes++;
      assert_true(c[3] == c[2] && c[4] == c[2] && c[6] == c[5] && c[7] == c[5]);
    } else {
      s1 += (c[4] - c[2]) * (c[4] - c[2]);
      s0 += (c[3] - c[2]) * (c[3] - c[2]);
      n++;
    }
    line = p;
  }
  assert_int_equal(episodes, 2);
  assert_int_equal(rows, n + 2);
  char* res = read_out("result.json");
  cJSON* root = cJSON_Parse(res);
  assert_non_null(root);
  const cJSON* val = cJSON_GetObjectItemCaseSensitive(root, "validation");
  const cJSON* rms = cJSON_GetObjectItemCaseSensitive(val, "rms");
  assert_true(cJSON_IsNumber(rms));
  double r1 = sqrt(s1 / n), r0 = sqrt(s0 / n);
  if (fabs(r1 - rms->valuedouble) > 1e-12 * rms->valuedouble) {
    fail_msg("trajectories.csv RMS %.17g, result.json %.17g", r1, rms->valuedouble);
  }
  assert_true(r0 > 10 * r1);  // the fit moved the simulation onto the recording
  cJSON_Delete(root);
  free(res);
  free(csv);
}

static void test_model_xml(void** state) {
  (void)state;
  char* xml = read_out("model.xml");
  dsoError err = {0};
  char* orig = dso_read_text_file(DSO_SOURCE_DIR "/models/arm2.xml", &err);
  assert_non_null(orig);
  // the header comment and the layout before <mujoco> are kept as they are
  const char* root = strstr(orig, "<mujoco model=\"arm2\">");
  assert_non_null(root);
  assert_memory_equal(xml, orig, (size_t)(root - orig) + strlen("<mujoco model=\"arm2\">"));
  assert_non_null(strstr(xml, "physics.shoulder.force = "));
  // it compiles to the identified values of result.json
  char path[1024];
  snprintf(path, sizeof(path), "%s/out/model.xml", g_dir);
  mjModel* m = dso_mj_load(path, &err);
  assert_non_null(m);
  char* res = read_out("result.json");
  cJSON* r = cJSON_Parse(res);
  const cJSON* th = cJSON_GetObjectItemCaseSensitive(r, "theta");
  const char* names[3] = {"physics.upper_arm.mass", "physics.elbow.damping",
                          "physics.elbow_torque.gear[0]"};
  for (int k = 0; k < 3; k++) {
    const cJSON* e = NULL;
    cJSON_ArrayForEach(e, th) {
      const cJSON* nm = cJSON_GetObjectItemCaseSensitive(e, "name");
      if (cJSON_IsString(nm) && !strcmp(nm->valuestring, names[k])) {
        break;
      }
    }
    assert_non_null(e);
    const cJSON* v = cJSON_GetObjectItemCaseSensitive(e, "value");
    assert_true(cJSON_IsNumber(v));
    dsoBinding b;
    assert_int_equal(dso_bind_resolve(&b, m, names[k], &err), DSO_OK);
    assert_true(fabs(dso_bind_get(m, &b) - v->valuedouble) <= 1e-12 * fabs(v->valuedouble));
  }
  cJSON_Delete(r);
  free(res);
  mj_deleteModel(m);
  free(orig);
  free(xml);
}

static void test_plots(void** state) {
  (void)state;
  if (access("/usr/bin/gnuplot", X_OK) != 0 && access("/usr/local/bin/gnuplot", X_OK) != 0) {
    skip();
  }
  const char* pngs[2] = {"progress.png", "trajectories.png"};
  for (int k = 0; k < 2; k++) {
    char path[1024];
    snprintf(path, sizeof(path), "%s/out/%s", g_dir, pngs[k]);
    FILE* f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char sig[8] = {0};
    assert_int_equal(fread(sig, 1, 8, f), 8);
    fclose(f);
    assert_memory_equal(sig, "\x89PNG\r\n\x1a\n", 8);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_trajectories_csv),
    cmocka_unit_test(test_model_xml),
    cmocka_unit_test(test_plots),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
