// dso evaluate TASK.json [--values FILE.json] [--data FILE.csv ...] [--windows LIST] [--all]
// [-o OUT.json]: multiple-shooting RMS per window length and recorded channel of parameter values
// on a task's recordings or on other recordings read with the task's data settings.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mujoco/dataset.h"
#include "apps/evaluate.h"
#include "core/io.h"
#include "config/task.h"

#define DSO_EVAL_MAX_DATA 256

static const char* kHelp =
    "usage: dso evaluate TASK.json [--values FILE.json] [--data FILE.csv ...]\n"
    "                    [--windows 1,10,50,100,200,whole] [--all] [-o OUT.json] [--quiet]\n\n"
    "Simulates the task's model with theta at the given values on recorded episodes by multiple\n"
    "shooting, as a fit does: each episode is cut into windows of L steps that restart from the\n"
    "recorded state (missing qpos: the model's; missing qvel: central differences of the\n"
    "recorded qpos) and run with the recorded controls. Prints the RMS error per window length\n"
    "(columns) and recorded channel (rows: every recorded qpos, qvel and sensor column, in its\n"
    "own units), the windows scored and the windows that diverged (counted, never averaged).\n"
    "Only whole windows count; \"whole\" is one open-loop window over each episode.\n\n"
    "  --values FILE  theta by name: {\"name\": value, ...} or a dso run result.json; entries\n"
    "                 it does not name keep the task's initial values (default: all initial)\n"
    "  --data FILE    evaluate on this recording instead of the task's data files (repeat for\n"
    "                 several); read with the task's data-level \"data\" settings (column\n"
    "                 map, derived columns, resampling; not the options of the task's own\n"
    "                 files); paths relative to the working folder\n"
    "  --windows LIST window lengths in steps, comma-separated; \"whole\" for whole episodes\n"
    "  --all          every episode (default: the validation episodes, all when none is marked)\n"
    "  -o OUT.json    also write the table as JSON (atomically)\n"
    "  --quiet        print nothing but errors\n\n"
    "Exit status 2 for bad input (naming the file and field), 1 when every window of a length\n"
    "diverged.\n";

static void print_table(const dsoEvalResult* r, double timestep) {
  printf("RMS error per window length (steps of %g s; windows restart from the recorded state)\n",
         timestep);
  int width = 8;
  for (int c = 0; c < r->nchannel; c++) {
    int len = (int)strlen(r->channel[c]);
    width = len > width ? len : width;
  }
  printf("%-*s", width, "channel");
  for (int w = 0; w < r->nwindow; w++) {
    if (r->window[w] == DSO_EVAL_WHOLE) {
      printf(" %11s", "whole");
    } else {
      printf(" %11d", r->window[w]);
    }
  }
  printf("\n");
  for (int c = 0; c < r->nchannel; c++) {
    printf("%-*s", width, r->channel[c]);
    for (int w = 0; w < r->nwindow; w++) {
      double v = r->rms[(size_t)w * r->nchannel + c];
      if (isfinite(v)) {
        printf(" %11.4g", v);
      } else {
        printf(" %11s", "-");
      }
    }
    printf("\n");
  }
  printf("%-*s", width, "windows");
  for (int w = 0; w < r->nwindow; w++) {
    printf(" %11ld", r->nwin[w]);
  }
  printf("\n%-*s", width, "diverged");
  for (int w = 0; w < r->nwindow; w++) {
    printf(" %11ld", r->ndiverged[w]);
  }
  printf("\n");
}

// OUT.json: the library's JSON with the task, the values file and the timestep added
static dsoStatus write_json(const char* out, const dsoEval* ev, const char* task_path,
                            const char* values, double timestep, dsoError* err) {
  char* full = dso_eval_report_json(ev, task_path, values, timestep, err);
  if (!full) {
    return err->code ? err->code : dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", out);
  }
  size_t len = strlen(full);
  full[len] = '\n';
  dsoStatus st = dso_write_file_atomic(out, full, len + 1, err);
  free(full);
  return st;
}

int dso_cli_evaluate(int argc, char** argv) {
  if (dso_cli_wants_help(argc, argv)) {
    fputs(kHelp, stdout);
    return DSO_EXIT_OK;
  }
  const char* task_path = NULL;
  const char* values = NULL;
  const char* out = NULL;
  const char* data[DSO_EVAL_MAX_DATA];
  int ndata = 0, quiet = 0;
  dsoEvalSettings es;
  dso_eval_settings_default(&es);
  dsoError err = {0};
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--values") && i + 1 < argc) {
      values = argv[++i];
    } else if (!strcmp(argv[i], "-o") && i + 1 < argc) {
      out = argv[++i];
    } else if (!strcmp(argv[i], "--data") && i + 1 < argc) {
      if (ndata == DSO_EVAL_MAX_DATA) {
        fprintf(stderr, "dso evaluate: more than %d --data files\n", DSO_EVAL_MAX_DATA);
        return DSO_EXIT_INPUT;
      }
      data[ndata++] = argv[++i];
    } else if (!strcmp(argv[i], "--windows") && i + 1 < argc) {
      if (dso_eval_parse_windows(&es, argv[++i], "--windows", &err)) {
        return dso_cli_fail("evaluate", &err);
      }
    } else if (!strcmp(argv[i], "--all")) {
      es.all_episodes = 1;
    } else if (!strcmp(argv[i], "--quiet")) {
      quiet = 1;
    } else if (argv[i][0] == '-' || task_path) {
      fprintf(stderr, "dso evaluate: unexpected argument '%s'\n%s", argv[i], kHelp);
      return DSO_EXIT_INPUT;
    } else {
      task_path = argv[i];
    }
  }
  if (!task_path) {
    fprintf(stderr, "dso evaluate: need TASK.json\n%s", kHelp);
    return DSO_EXIT_INPUT;
  }
  // the task's data settings read the task's recordings, or the --data files instead
  dsoTask* task = dso_task_load_data(task_path, 0, data, ndata, &err);
  if (!task) {
    return dso_cli_fail("evaluate", &err);
  }
  int status = DSO_EXIT_OK;
  const dsoDataset* ds = task->data;
  dsoEval* ev = NULL;
  double* u = calloc((size_t)task->theta->n + 1, sizeof(double));
  if (!u) {
    dso_error(&err, DSO_ERR_MEMORY, "out of memory");
    status = dso_cli_fail("evaluate", &err);
    dso_task_free(task);
    return status;
  }
  if (!ds) {
    fprintf(stderr, "dso evaluate: %s: the task has no \"data\" section; name recordings with "
            "--data FILE.csv\n", task_path);
    status = DSO_EXIT_INPUT;
    goto done;
  }
  dso_theta_init(task->theta, u);
  if (values && dso_values_read_file(task->theta, u, values, &err)) {
    status = dso_cli_fail("evaluate", &err);
    goto done;
  }
  ev = dso_eval_create(task->model, task->theta, ds, &es, &err);
  if (!ev || dso_eval_run(ev, u, &err)) {
    status = dso_cli_fail("evaluate", &err);
    goto done;
  }
  dsoEvalResult r;
  dso_eval_result(ev, &r);
  if (!quiet) {
    printf("dso evaluate %s: values %s; %d %sepisode%s (ids", task_path,
           values ? values : "(the task's initial values)", r.nepisode,
           es.all_episodes || dso_dataset_nvalidation(ds) == 0 ? "" : "validation ",
           r.nepisode == 1 ? "" : "s");
    for (int k = 0; k < r.nepisode; k++) {
      printf(" %ld", dso_dataset_episode(ds, r.episode[k])->id);
    }
    printf(") of %d; %ld steps\n", dso_dataset_nepisode(ds), r.steps);
    print_table(&r, task->model->opt.timestep);
  }
  if (out && write_json(out, ev, task_path, values, task->model->opt.timestep, &err)) {
    status = dso_cli_fail("evaluate", &err);
    goto done;
  }
  for (int w = 0; w < r.nwindow; w++) {
    if (r.nwin[w] == 0 && r.ndiverged[w] > 0) {
      fprintf(stderr, "dso evaluate: every window of length %d diverged (%ld windows)\n",
              r.window[w], r.ndiverged[w]);
      status = DSO_EXIT_FAIL;
      break;
    }
  }
done:
  dso_eval_free(ev);
  free(u);
  dso_task_free(task);
  return status;
}
