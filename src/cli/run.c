// dso run TASK.json -o OUTDIR: optimize θ and write the result, progress, checkpoint, the model
// with the identified values and plots. The run is the library's (dso_run_task, dso/run.h); this
// file parses the arguments, catches SIGINT and SIGTERM, prints the run's events and maps its
// status to the exit status.
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "dso/run.h"
#include "dso/task.h"
#include "config/task.h"

static const char* kHelp =
    "usage: dso run TASK.json -o OUTDIR [--resume] [--max-iter N] [--values FILE.json]\n"
    "               [--data FILE.csv ...] [--truth FILE.json] [--quiet]\n\n"
    "With an \"estimator\" section: learns a state estimator (corrector and physics) from the\n"
    "task's data. With a \"cost\": optimizes the policy and any physics entries of the task's\n"
    "MuJoCo chain against its cost, the priors and the clone/hybrid costs on its data with Adam\n"
    "or natural-gradient steps on the pathwise or the score gradient (the \"train\" section:\n"
    "max_iter, lr, beta1, beta2, eps, seed, clone, hybrid, proximal_every, gradient, epochs,\n"
    "clip, optimizer, damping). Otherwise, with a \"data\" section:\n"
    "fits theta to the recorded data (system identification by multiple shooting, sensor\n"
    "calibration and the priors) with Levenberg-Marquardt (the \"fit\" section sets the window,\n"
    "iterations, scales).\n"
    "Prints a progress line per iteration and writes to OUTDIR:\n"
    "  result.json      theta by name: initial and identified values, standard errors and 95%\n"
    "                   confidence intervals, the final cost, the validation RMS\n"
    "  progress.csv     one row per iteration, rewritten atomically after every iteration\n"
    "  checkpoint.json  written atomically every iteration; --resume continues from it and\n"
    "                   ends bit-identical to an uninterrupted run\n"
    "  model.xml        the task's model file with the identified values written into its\n"
    "                   attributes (comments, default classes and layout kept; an <inertial>\n"
    "                   or <option> is added where needed; a constant force becomes a\n"
    "                   bias-only <general> actuator appended after the model's own; values\n"
    "                   without an MJCF attribute, such as sensor gains, are listed in a\n"
    "                   comment); checked to compile to the identified values\n"
    "  trajectories.csv fits: every validation episode (all episodes when none is marked)\n"
    "                   simulated open loop from its first sample with the recorded controls:\n"
    "                   episode, time, and per recorded qpos entry its recorded value and the\n"
    "                   simulated ones at the initial and at the identified theta\n"
    "  progress.png     learning curve (when gnuplot is installed; progress.gp is its script:\n"
    "                   `gnuplot progress.gp` in OUTDIR plots again)\n"
    "  trajectories.png fits: one panel per recorded qpos entry, recorded against simulated\n"
    "                   (when gnuplot is installed; script trajectories.gp)\n"
    "--values FILE.json starts from the file's values ({\"name\": value} or a result.json;\n"
    "entries it does not name keep the task's; give it again with --resume).\n"
    "--data FILE.csv (repeatable) reads the task's data from these recordings, with the task's\n"
    "\"data\" settings, instead of the files the task names.\n"
    "--truth FILE.json (as --values) adds the true values and the errors to the table (for\n"
    "data recorded by dso simulate).\n\n"
    "OUTDIR is locked for the run (OUTDIR/.lock): a second run on it stops at once. Temporary\n"
    "files a killed run left in OUTDIR are removed. SIGINT or SIGTERM (Ctrl-C) ends the run\n"
    "after its current iteration with checkpoint.json and progress.csv written and prints the\n"
    "command that resumes it (a second signal stops at once). A step with a non-finite cost,\n"
    "gradient or theta is refused (theta kept) and counted; the run gives up after 5 in a row,\n"
    "or at once when the cost at the initial theta is not finite; non-finite values are never\n"
    "written.\n"
    "Exit status: 0 done; 1 a runtime failure, refused steps, or interrupted (resume with\n"
    "--resume); 2 bad input or OUTDIR in use or not writable.\n";

static volatile sig_atomic_t g_interrupted;

// the first SIGINT or SIGTERM asks the run to stop after its iteration; the next one has the
// default action
static void on_signal(int sig) {
  (void)sig;
  g_interrupted = 1;
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
}

static void catch_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

// s quoted for a POSIX shell when it holds anything but [A-Za-z0-9_./=:,+@%-]
static void print_shell_word(FILE* f, const char* s) {
  int plain = s[0] != '\0';
  for (const char* p = s; *p && plain; p++) {
    plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./=:,+@%-",
                   *p) != NULL;
  }
  if (plain) {
    fputs(s, f);
    return;
  }
  fputc('\'', f);
  for (const char* p = s; *p; p++) {
    if (*p == '\'') {
      fputs("'\\''", f);
    } else {
      fputc(*p, f);
    }
  }
  fputc('\'', f);
}

// prints the run's events: warnings on stderr always, everything else on stdout unless --quiet
static void on_event(const dsoRunEvent* ev, void* user) {
  int quiet = *(const int*)user;
  switch (ev->kind) {
    case DSO_RUN_EVENT_WARNING:
      fprintf(stderr, "dso run: %s", ev->text);
      break;
    case DSO_RUN_EVENT_INTERRUPTED:
      break;  // dso_cli_run prints the command that resumes
    default:
      if (!quiet) {
        fputs(ev->text, stdout);
        if (ev->kind == DSO_RUN_EVENT_ITERATION || ev->kind == DSO_RUN_EVENT_REFUSED) {
          fflush(stdout);
        }
      }
  }
}

int dso_cli_run(int argc, char** argv) {
  if (dso_cli_wants_help(argc, argv)) {
    fputs(kHelp, stdout);
    return DSO_EXIT_OK;
  }
  const char* task_path = NULL;
  const char* outdir = NULL;
  const char* truth_path = NULL;
  const char* values_path = NULL;
  const char* data[DSO_CLI_MAX_DATA];
  int ndata = 0;
  int resume = 0, quiet = 0, max_iter = -1;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    if (!strcmp(a, "-o")) {
      outdir = dso_args_value(argc, argv, &i, "run");
      if (!outdir || !dso_args_nonempty(outdir, "an output folder", "run", a)) {
        return DSO_EXIT_INPUT;
      }
    } else if (!strcmp(a, "--truth")) {
      truth_path = dso_args_value(argc, argv, &i, "run");
      if (!truth_path || !dso_args_nonempty(truth_path, "a JSON file of true values", "run", a)) {
        return DSO_EXIT_INPUT;
      }
    } else if (!strcmp(a, "--values")) {
      values_path = dso_args_value(argc, argv, &i, "run");
      if (!values_path ||
          !dso_args_nonempty(values_path, "a JSON file of starting values", "run", a)) {
        return DSO_EXIT_INPUT;
      }
    } else if (!strcmp(a, "--data")) {
      const char* v = dso_args_value(argc, argv, &i, "run");
      if (!v || !dso_args_nonempty(v, "a recording (CSV)", "run", a)) {
        return DSO_EXIT_INPUT;
      }
      if (ndata == DSO_CLI_MAX_DATA) {
        fprintf(stderr, "dso run: more than %d --data files\n", DSO_CLI_MAX_DATA);
        return DSO_EXIT_INPUT;
      }
      data[ndata++] = v;
    } else if (!strcmp(a, "--resume")) {
      resume = 1;
    } else if (!strcmp(a, "--quiet")) {
      quiet = 1;
    } else if (!strcmp(a, "--max-iter")) {
      const char* v = dso_args_value(argc, argv, &i, "run");
      if (!v || !dso_args_int32(&max_iter, v, 0, 1000000000, "run", a)) {
        return DSO_EXIT_INPUT;
      }
    } else if (argv[i][0] == '-' || task_path) {
      fprintf(stderr, "dso run: unexpected argument '%s'\n%s", argv[i], kHelp);
      return DSO_EXIT_INPUT;
    } else {
      task_path = argv[i];
    }
  }
  if (!task_path || !outdir) {
    fprintf(stderr, "dso run: need TASK.json and -o OUTDIR\n%s", kHelp);
    return DSO_EXIT_INPUT;
  }
  dsoError err = {0};
  dsoTask* task = dso_task_load_data(task_path, 0, data, ndata, &err);
  if (!task) {
    return dso_cli_fail("run", &err);
  }
  int kind = dso_task_kind(task, NULL);
  if (truth_path && (kind == DSO_TASK_KIND_ESTIMATOR || kind == DSO_TASK_KIND_CHAIN)) {
    fprintf(stderr, "dso run: --truth applies to fits to recorded data\n");
    dso_task_free(task);
    return DSO_EXIT_INPUT;
  }
  dsoRunOptions o;
  dso_run_options_default(&o);
  o.resume = resume;
  o.max_iter = max_iter;
  o.name = task_path;
  o.values = values_path;
  o.truth = truth_path;
  o.interrupt = &g_interrupted;
  catch_signals();
  dsoRunSummary sum;
  dsoStatus s = dso_run_task(task, outdir, &o, on_event, &quiet, &sum, &err);
  int status = s ? dso_cli_fail("run", &err) : DSO_EXIT_OK;
  if (!s && sum.stop == DSO_RUN_STOP_INTERRUPTED) {
    fprintf(stderr, "dso run: interrupted after iteration %d; resume with: dso run ",
            sum.iterations);
    print_shell_word(stderr, task_path);
    fputs(" -o ", stderr);
    print_shell_word(stderr, outdir);
    if (max_iter >= 0) {
      fprintf(stderr, " --max-iter %d", max_iter);
    }
    fputs(" --resume\n", stderr);
    status = DSO_EXIT_FAIL;
  }
  dso_run_summary_clear(&sum);
  dso_task_free(task);
  return status;
}
