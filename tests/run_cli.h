// Test helper shared by the tests that run the dso program: run("ARGS") runs `dso ARGS` from the
// source folder and returns its exit status (-1 if it did not exit normally), with its standard
// output in g_out and its standard error in g_err. Include after <cmocka.h> in one test file.
#ifndef DSO_TEST_RUN_CLI_H
#define DSO_TEST_RUN_CLI_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

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
  char cmd[4096], out[128], err[128];
  snprintf(out, sizeof(out), "/tmp/dso_test_run_%d.out", (int)getpid());
  snprintf(err, sizeof(err), "/tmp/dso_test_run_%d.err", (int)getpid());
  snprintf(cmd, sizeof(cmd), "cd '%s' && '%s' %s >%s 2>%s", DSO_SOURCE_DIR, DSO_CLI, args, out,
           err);
  int st = system(cmd);
  slurp(g_out, sizeof(g_out), out);
  slurp(g_err, sizeof(g_err), err);
  remove(out);
  remove(err);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#endif  // DSO_TEST_RUN_CLI_H
