// dso run on a task with an "estimator" section: learning a predictor-corrector state estimator
// (paper eq. 99) from recorded data.
#include <stdio.h>

#include "cli.h"
#include "run_util.h"

int dso_cli_run_estim(dsoTask* task, const char* task_path, const char* outdir, int resume,
                      int quiet, int max_iter) {
  (void)task;
  (void)outdir;
  (void)resume;
  (void)quiet;
  (void)max_iter;
  fprintf(stderr, "dso run: %s: estimator tasks are not supported yet\n", task_path);
  return DSO_EXIT_INPUT;
}
