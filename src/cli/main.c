// dso: entry point and verb dispatch.
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "dso_internal.h"

typedef struct {
  const char* name;
  int (*run)(int argc, char** argv);
  const char* summary;
} dsoVerb;

static const dsoVerb kVerbs[] = {
  {"info", dso_cli_info, "list a model's elements and every parameter theta can bind"},
  {"check", dso_cli_check, "validate a task file and print the resolved theta layout"},
  {"run", dso_cli_run, "optimize a task: fit data, train a chain or learn an estimator"},
  {"gradcheck", dso_cli_gradcheck, "score, pathwise and finite-difference gradients per entry"},
  {"verify", dso_cli_verify, "check every DSO estimator against exact finite chains"},
  {"simulate", dso_cli_simulate, "record a synthetic dataset from a task at true theta values"},
  {"evaluate", dso_cli_evaluate, "multiple-shooting RMS per window length and channel on data"},
};
static const int kNumVerbs = (int)(sizeof(kVerbs) / sizeof(kVerbs[0]));

static void usage(FILE* out) {
  fprintf(out,
          "usage: dso VERB [ARGS...]\n"
          "       dso VERB --help\n\n"
          "dso %s: Dynamical System Optimization on MuJoCo %s\n\nverbs:\n",
          dso_version_string(), dso_mujoco_version_string());
  for (int i = 0; i < kNumVerbs; i++) {
    fprintf(out, "  %-10s %s\n", kVerbs[i].name, kVerbs[i].summary);
  }
  fprintf(out, "\nexit status: 0 ok, 1 failure, 2 bad input\n");
}

int dso_cli_exit_status(dsoStatus code) {
  switch (code) {
    case DSO_OK: return DSO_EXIT_OK;
    case DSO_ERR_INPUT:
    case DSO_ERR_IO: return DSO_EXIT_INPUT;
    default: return DSO_EXIT_FAIL;
  }
}

int dso_cli_fail(const char* verb, const dsoError* err) {
  fprintf(stderr, "dso %s: %s\n", verb, err->msg[0] ? err->msg : dso_status_string(err->code));
  return dso_cli_exit_status(err->code);
}

int dso_cli_wants_help(int argc, char** argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      return 1;
    }
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return DSO_EXIT_INPUT;
  }
  if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return DSO_EXIT_OK;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("dso %s (MuJoCo %s)\n", dso_version_string(), dso_mujoco_version_string());
    return DSO_EXIT_OK;
  }
  for (int i = 0; i < kNumVerbs; i++) {
    if (!strcmp(argv[1], kVerbs[i].name)) {
      return kVerbs[i].run(argc - 1, argv + 1);
    }
  }
  fprintf(stderr, "dso: unknown verb '%s'; valid verbs:", argv[1]);
  for (int i = 0; i < kNumVerbs; i++) {
    fprintf(stderr, " %s", kVerbs[i].name);
  }
  fprintf(stderr, "\n");
  return DSO_EXIT_INPUT;
}
