// dso check TASK.json: validate a task and print the resolved θ layout.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "dso_internal.h"

static const char* kHelp =
    "usage: dso check TASK.json [--data FILE.csv ...]\n\n"
    "Validates a task file (JSON syntax, keys, model, theta names, transforms, bounds,\n"
    "priors, and the settings of the fit, train and estimator sections) and prints the\n"
    "resolved theta layout: index, name, block, initial value,\n"
    "transform, bounds, prior and whether the entry is fixed. Exit status 2 and a message\n"
    "naming the file and JSON path when the task is invalid. --data (repeatable) reads the\n"
    "task's data from these recordings instead of the files it names.\n";

static void fmt_bound(char* buf, size_t len, double v) {
  if (isinf(v)) {
    snprintf(buf, len, "%s", v < 0 ? "-inf" : "inf");
  } else {
    snprintf(buf, len, "%g", v);
  }
}

int dso_cli_check(int argc, char** argv) {
  if (dso_cli_wants_help(argc, argv)) {
    fputs(kHelp, stdout);
    return DSO_EXIT_OK;
  }
  const char* task_path = NULL;
  const char* data[DSO_CLI_MAX_DATA];
  int ndata = 0;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    if (!strcmp(a, "--data")) {
      const char* v = dso_args_value(argc, argv, &i, "check");
      if (!v || !dso_args_nonempty(v, "a recording (CSV)", "check", a)) {
        return DSO_EXIT_INPUT;
      }
      if (ndata == DSO_CLI_MAX_DATA) {
        fprintf(stderr, "dso check: more than %d --data files\n", DSO_CLI_MAX_DATA);
        return DSO_EXIT_INPUT;
      }
      data[ndata++] = v;
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "dso check: unknown option '%s'; see dso check --help\n", a);
      return DSO_EXIT_INPUT;
    } else if (task_path) {
      fprintf(stderr, "dso check: unexpected argument '%s'; see dso check --help\n", a);
      return DSO_EXIT_INPUT;
    } else {
      task_path = a;
    }
  }
  if (!task_path) {
    fputs(kHelp, stderr);
    return DSO_EXIT_INPUT;
  }
  dsoError err = {0};
  dsoTask* task = dso_task_load_data(task_path, 0, data, ndata, &err);
  if (!task) {
    return dso_cli_fail("check", &err);
  }
  const dsoTheta* th = task->theta;
  printf("task %s: model %s, %d theta entries\n", task->path, task->model_path, th->n);
  if (task->description[0]) {
    printf("  %s\n", task->description);
  }
  if (task->data) {
    printf("data: %d episodes (%d for validation), %ld samples every %g s\n",
           dso_dataset_nepisode(task->data), dso_dataset_nvalidation(task->data),
           dso_dataset_nsample(task->data), task->data->dt);
  }
  printf("%5s  %-40s %-13s %12s  %-9s %-22s %-20s %s\n", "index", "name", "block", "init",
         "transform", "bounds", "prior", "fixed");
  for (int i = 0; i < th->n; i++) {
    const dsoThetaEntry* e = &th->entry[i];
    char lo[32], hi[32], bounds[72], prior[64] = "-";
    fmt_bound(lo, sizeof(lo), e->lower);
    fmt_bound(hi, sizeof(hi), e->upper);
    snprintf(bounds, sizeof(bounds), "[%s, %s]", lo, hi);
    if (e->has_prior) {
      snprintf(prior, sizeof(prior), "N(%g, %g^2)", e->prior_mean, e->prior_std);
    }
    printf("%5d  %-40s %-13s %12.6g  %-9s %-22s %-20s %s\n", i, e->name,
           dso_block_name(e->block), e->init, dso_transform_name(e->transform), bounds, prior,
           e->fixed ? "yes" : "no");
  }
  dso_task_free(task);
  return DSO_EXIT_OK;
}
