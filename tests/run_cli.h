// Test helper shared by the tests that run the dso program: run("ARGS") runs `dso ARGS` from the
// source folder (fork/execv, no shell; ARGS is split at blanks, quotes group words) and returns
// its exit status (-1 if it did not exit normally), with its standard output in g_out and its
// standard error in g_err. Include after <cmocka.h> in one test file.
#ifndef DSO_TEST_RUN_CLI_H
#define DSO_TEST_RUN_CLI_H

#include "test_util.h"

static char g_out[1 << 20];
static char g_err[1 << 16];

static void slurp(char* buf, size_t len, const char* path) {
  FILE* f = fopen(path, "rb");
  size_t n = f ? fread(buf, 1, len - 1, f) : 0;
  buf[n] = '\0';
  if (f) {
    fclose(f);
  }
}

static int run(const char* args) {
  char out[2048], err[2048], line[8192];
  if (dso_test_mkstemp(out, sizeof(out), "run_out") ||
      dso_test_mkstemp(err, sizeof(err), "run_err")) {
    return -1;
  }
  char* argv[256];
  argv[0] = (char*)DSO_CLI;
  snprintf(line, sizeof(line), "%s", args);
  dso_test_split(line, argv + 1, 255);
  int st = dso_test_spawn(argv, DSO_SOURCE_DIR, out, err);
  slurp(g_out, sizeof(g_out), out);
  slurp(g_err, sizeof(g_err), err);
  remove(out);
  remove(err);
  return st;
}

#endif  // DSO_TEST_RUN_CLI_H
