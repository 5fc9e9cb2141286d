// libFuzzer target: the task file parser (task.h, dso_task_load), which also runs the policy,
// cost and data-spec parsers and loads the model and the data files the task names.
//
// Input: the JSON text of a task file. It is written to tasks/input.json in a temporary folder
// under the build folder, beside tasks/datasets (a link to tests/data/datasets, small CSV files)
// and next to models/ (copies of the shipped models with small MuJoCo sizes), so that "../models/pendulum.xml" and
// "datasets/single.csv" resolve as in the shipped tasks. A load that succeeds must give a model,
// a θ layout whose initial unconstrained values are finite, and settings in range.
#define _GNU_SOURCE
#include <dirent.h>
#include <math.h>

#include "dso_internal.h"
#include "fuzz_util.h"

static char g_task[FUZZ_PATH_LEN];

// copies the shipped model name into the temporary models/ with small MuJoCo sizes: the compiler
// makes an mjData for mj_setConst, and with the default sizes (10 MB stack, 3 MB of constraint
// arrays) its fresh pages took two thirds of each load under ASan; the task parser reads neither
static void copy_model(const char* name) {
  char src[FUZZ_PATH_LEN], rel[FUZZ_PATH_LEN], dst[FUZZ_PATH_LEN];
  snprintf(src, sizeof(src), "%s/models/%s", DSO_SOURCE_DIR, name);
  FILE* f = fopen(src, "rb");
  char* text = (char*)calloc(1 << 20, 1);
  if (!f || !text) {
    abort();
  }
  size_t n = fread(text, 1, (1 << 20) - 1, f);
  fclose(f);
  char* root = strstr(text, "<mujoco");
  char* end = root ? strchr(root, '>') : NULL;
  if (!end) {
    abort();
  }
  static const char kSize[] = "<size njmax=\"8\" nconmax=\"4\" nstack=\"8192\"/>";
  snprintf(rel, sizeof(rel), "models/%s", name);
  fuzz_tmp_path(dst, sizeof(dst), rel);
  int fd = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0666);
  size_t head = (size_t)(end + 1 - text);
  if (fd < 0 || write(fd, text, head) != (ssize_t)head ||
      write(fd, kSize, sizeof(kSize) - 1) != (ssize_t)(sizeof(kSize) - 1) ||
      write(fd, end + 1, n - head) != (ssize_t)(n - head) || close(fd) != 0) {
    abort();
  }
  free(text);
}

static void init(void) {
  fuzz_tmp_dir("task");
  char path[FUZZ_PATH_LEN];
  fuzz_tmp_path(path, sizeof(path), "models");
  if (mkdir(path, 0777) != 0) {
    abort();
  }
  DIR* d = opendir(DSO_SOURCE_DIR "/models");
  struct dirent* e;
  while (d && (e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (len > 4 && !strcmp(e->d_name + len - 4, ".xml")) {
      copy_model(e->d_name);
    }
  }
  if (!d) {
    abort();
  }
  closedir(d);
  fuzz_tmp_path(path, sizeof(path), "tasks");
  if (mkdir(path, 0777) != 0) {
    abort();
  }
  fuzz_tmp_path(path, sizeof(path), "tasks/datasets");
  if (symlink(DSO_SOURCE_DIR "/tests/data/datasets", path) != 0) {
    abort();
  }
  fuzz_tmp_path(g_task, sizeof(g_task), "tasks/input.json");
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (!g_task[0]) {
    init();
  }
  fuzz_write(g_task, data, size);
  dsoError err = {0};
  dsoTask* t = dso_task_load(g_task, &err);
  fuzz_report(err.msg);
  if (!t) {
    FUZZ_CHECK(err.code != DSO_OK && err.msg[0], "a failed load without a message");
    return 0;
  }
  FUZZ_CHECK(err.code == DSO_OK, "a task returned with error %s", err.msg);
  FUZZ_CHECK(t->model && t->theta && t->model_path && t->description, "parts missing");
  FUZZ_CHECK(t->nrollout >= 1, "rollouts %d", t->nrollout);
  double* u = (double*)calloc((size_t)t->theta->n + 1, sizeof(double));
  FUZZ_CHECK(u != NULL, "out of memory");
  dso_theta_init(t->theta, u);
  for (int i = 0; i < t->theta->n; i++) {
    FUZZ_CHECK(isfinite(u[i]), "theta %s: initial u = %g", t->theta->entry[i].name, u[i]);
  }
  free(u);
  dso_task_free(t);
  return 0;
}
