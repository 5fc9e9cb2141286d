// dso simulate TASK.json -o DATA.csv: a synthetic dataset from the task's chain at true values.
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "dso_internal.h"
#include "config/json.h"
#include "config/values_file.h"

static const char* kHelp =
    "usage: dso simulate TASK.json -o DATA.csv [--episodes N] [--horizon T] [--seed S]\n"
    "                    [--excitation E] [--excitation-kind white|multisine]\n"
    "                    [--validation K] [--values FILE.json]\n"
    "                    [--set NAME=VALUE ...]\n\n"
    "Runs the task's MuJoCo chain (policy, action noise, sensor model and sensor noise) at the\n"
    "true theta and records every rollout as an episode of DATA.csv (written atomically):\n"
    "time, qpos and qvel of the state x_t, the control applied at t (clipped to ctrlrange) and\n"
    "every sensor's measurement of x_t (noisy when the chain samples measurements, else the\n"
    "noise-free gain * sensordata + offset). Episodes have exactly T samples.\n\n"
    "  -o, --output FILE  the CSV to write (required)\n"
    "  --episodes N       episodes to record (default: the task's rollout.rollouts)\n"
    "  --horizon T        samples per episode (default: the task's rollout.horizon)\n"
    "  --seed S           seed of the random streams (default: the task's rollout.seed);\n"
    "                     the same seed gives the same file\n"
    "  --excitation E     std of extra white noise on every control, in control units (default 0)\n"
    "                     (the RMS of the sines with --excitation-kind multisine)\n"
    "  --excitation-kind K  white (default) or multisine: a sum of 4 sines per actuator with\n"
    "                     its own frequencies in 0.1 to 1 Hz and phases drawn from the seed,\n"
    "                     added to the control (keeps slow joints moving; inverse dynamics)\n"
    "  --validation K     flag the last K episodes as validation episodes (default 0)\n"
    "  --values FILE.json true natural values by name, {\"name\": value, ...} (before --set)\n"
    "  --set NAME=VALUE   true natural value of the theta entry NAME (repeatable; default: the\n"
    "                     entry's init); checked against the entry's bounds and domain\n\n"
    "Domain randomization in the task is off: every episode runs at the true theta.\n"
    "Exit status: 0 ok, 1 failure (a diverged episode), 2 bad input.\n";

#define DSO_MAX_SET 256

typedef struct {
  const char* task;
  const char* output;
  const char* values;  // --values FILE.json
  long episodes, horizon, validation;  // -1: the task's value (validation: 0)
  long long seed;                      // -1: the task's value
  double excitation;
  int multisine;                       // --excitation-kind multisine
  int nset;
  const char* set[DSO_MAX_SET];
} Options;

// prints "dso simulate: message" and returns 0
static int bad(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "dso simulate: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  return 0;
}

static int parse_options(Options* o, int argc, char** argv) {
  memset(o, 0, sizeof(*o));
  o->episodes = o->horizon = o->validation = -1;
  o->seed = -1;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    if (a[0] != '-' || !a[1]) {
      if (o->task) {
        return bad("more than one task file ('%s' and '%s')", o->task, a);
      }
      o->task = a;
      continue;
    }
    static const char* const kValued[] = {"-o", "--output", "--episodes", "--horizon", "--seed",
                                          "--excitation", "--validation", "--set", "--values",
                                          "--excitation-kind"};
    int known = 0;
    for (size_t k = 0; k < sizeof(kValued) / sizeof(kValued[0]); k++) {
      known |= !strcmp(a, kValued[k]);
    }
    if (!known) {
      return bad("unknown option %s; see dso simulate --help", a);
    }
    const char* v = dso_args_value(argc, argv, &i, "simulate");
    if (!v) {
      return 0;
    }
    long long x = 0;
    int ok = 1;
    if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
      ok = dso_args_nonempty(v, "the CSV file to write", "simulate", a);
      o->output = v;
    } else if (!strcmp(a, "--episodes")) {
      ok = dso_args_int(&x, v, 1, DSO_TASK_MAX_ROLLOUTS, "simulate", a);
      o->episodes = (long)x;
    } else if (!strcmp(a, "--horizon")) {
      ok = dso_args_int(&x, v, 1, DSO_TASK_MAX_HORIZON, "simulate", a);
      o->horizon = (long)x;
    } else if (!strcmp(a, "--validation")) {
      ok = dso_args_int(&x, v, 0, DSO_TASK_MAX_ROLLOUTS, "simulate", a);
      o->validation = (long)x;
    } else if (!strcmp(a, "--seed")) {
      ok = dso_args_int(&x, v, 0, DSO_ARGS_MAX_SEED, "simulate", a);
      o->seed = x;
    } else if (!strcmp(a, "--excitation")) {
      ok = dso_args_double(&o->excitation, v, 0, INFINITY, 0, "simulate", a);
    } else if (!strcmp(a, "--excitation-kind")) {
      if (!strcmp(v, "multisine")) {
        o->multisine = 1;
      } else if (strcmp(v, "white") != 0) {
        return bad("--excitation-kind: expected white or multisine, got '%s'", v);
      }
    } else if (!strcmp(a, "--values")) {
      ok = dso_args_nonempty(v, "a JSON file of true values", "simulate", a);
      o->values = v;
    } else {  // --set
      const char* eq = strchr(v, '=');
      if (!eq || eq == v) {
        return bad("--set: expected NAME=VALUE, got '%s'", v);
      }
      if (o->nset == DSO_MAX_SET) {
        return bad("--set: more than %d --set options", DSO_MAX_SET);
      }
      double value;
      if (!dso_args_double(&value, eq + 1, -INFINITY, INFINITY, 0, "simulate", "--set")) {
        return 0;
      }
      o->set[o->nset++] = v;
    }
    if (!ok) {
      return 0;
    }
  }
  if (!o->task) {
    return bad("missing TASK.json; see dso simulate --help");
  }
  if (!o->output) {
    return bad("missing -o DATA.csv (the file to write)");
  }
  if (o->episodes > 0 && o->validation > o->episodes) {
    return bad("--validation %ld exceeds --episodes %ld", o->validation, o->episodes);
  }
  return 1;
}

// applies one NAME=VALUE to u, validated as theta JSON is (unknown name, bounds, domain)
static int apply_set(dsoTheta* theta, double* u, const char* nv, dsoError* err) {
  const char* eq = strchr(nv, '=');
  char name[DSO_NAME_LEN];
  size_t len = (size_t)(eq - nv);
  double value = 0;
  if (!dso_args_double(&value, eq + 1, -INFINITY, INFINITY, 0, "simulate", "--set")) {
    return 0;
  }
  if (len >= sizeof(name) || strpbrk(nv, "\"\\") != NULL) {
    fprintf(stderr, "dso simulate: --set %s: not a theta entry name\n", nv);
    return 0;
  }
  memcpy(name, nv, len);
  name[len] = '\0';
  char json[DSO_NAME_LEN + 64];
  snprintf(json, sizeof(json), "{\"%s\": %.17g}", name, value);
  if (dso_theta_from_json(theta, u, json, "--set", err)) {
    dso_cli_fail("simulate", err);
    return 0;
  }
  return 1;
}

int dso_cli_simulate(int argc, char** argv) {
  if (dso_cli_wants_help(argc, argv)) {
    fputs(kHelp, stdout);
    return DSO_EXIT_OK;
  }
  Options o;
  if (!parse_options(&o, argc, argv)) {
    return DSO_EXIT_INPUT;
  }
  dsoError err = {0};
  dsoTask* task = dso_task_load_flags(o.task, DSO_TASK_SKIP_DATA, &err);
  if (!task) {
    return dso_cli_fail("simulate", &err);
  }
  int status = DSO_EXIT_OK;
  dsoDataset* ds = NULL;
  double* u = calloc((size_t)task->theta->n + 1, sizeof(double));
  if (!u) {
    fprintf(stderr, "dso simulate: out of memory\n");
    status = DSO_EXIT_FAIL;
    goto done;
  }
  dso_theta_init(task->theta, u);
  if (o.values) {
    if (dso_values_read_file(task->theta, u, o.values, &err)) {
      status = dso_cli_fail("simulate", &err);
      goto done;
    }
  }
  for (int i = 0; i < o.nset; i++) {
    if (!apply_set(task->theta, u, o.set[i], &err)) {
      status = DSO_EXIT_INPUT;
      goto done;
    }
  }
  int episodes = o.episodes > 0 ? (int)o.episodes : task->nrollout;
  int horizon = o.horizon > 0 ? (int)o.horizon : task->rollout.horizon;
  if (dso_task_check_batch(task, episodes, horizon, o.episodes > 0 ? "--episodes" :
                           "rollout.rollouts", o.horizon > 0 ? "--horizon" : "rollout.horizon",
                           &err)) {
    status = dso_cli_fail("simulate", &err);
    goto done;
  }
  int validation = o.validation >= 0 ? (int)o.validation : 0;
  uint64_t seed = o.seed >= 0 ? (uint64_t)o.seed : task->rollout.seed;
  if (validation > episodes) {
    fprintf(stderr, "dso simulate: --validation %d exceeds the %d episodes\n", validation,
            episodes);
    status = DSO_EXIT_INPUT;
    goto done;
  }
  dsoExcitationKind kind = o.multisine ? DSO_EXCITATION_MULTISINE : DSO_EXCITATION_WHITE;
  if (dso_simulate_kind(&ds, task, u, episodes, horizon, seed, o.excitation, kind, validation,
                        &err) ||
      dso_dataset_write_csv(o.output, ds, task->model, &err)) {
    status = dso_cli_fail("simulate", &err);
    goto done;
  }
  printf("dso simulate: %d episodes (%d validation) x %d samples = %ld samples, seed %llu, "
         "excitation %g%s -> %s\n", dso_dataset_nepisode(ds), dso_dataset_nvalidation(ds),
         horizon, dso_dataset_nsample(ds), (unsigned long long)seed, o.excitation,
         o.multisine ? " (multisine)" : "", o.output);
done:
  dso_dataset_free(ds);
  free(u);
  dso_task_free(task);
  return status;
}
