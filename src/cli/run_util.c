// Pieces shared by the paths of dso run: output folder and checkpoint start-up, the model
// written back, plots and the table of values.
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "dso_internal.h"
#include "config/json.h"
#include "mujoco/mjcf.h"
#include "apps/run.h"
#include "run_util.h"

double dso_cli_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

void dso_cli_join(char* buf, size_t len, const char* dir, const char* name) {
  snprintf(buf, len, "%s/%s", dir, name);
}

// model.xml: the task's model file with the attributes θ binds edited in place (mjcf.h), checked
// to compile to the θ-written model, written atomically
dsoStatus dso_cli_write_model(const char* path, const dsoTask* task, const dsoTheta* theta,
                              const double* u,
                             dsoError* err) {
  for (int i = 0; i < theta->n; i++) {
    if (!isfinite(dso_theta_entry_natural(&theta->entry[i], u[i]))) {
      return dso_error(err, DSO_ERR_NUMERIC, "%s: theta entry %s is not finite; not written",
                       path, theta->entry[i].name);
    }
  }
  return dso_mjcf_write(path, task->model_path, task->model, theta, u, err);
}

int dso_cli_spawn_quiet(const char* dir, char* const argv[]) {
  pid_t pid = fork();
  if (pid < 0) {
    return 127;
  }
  if (pid == 0) {
    // the child: only async-signal-safe calls until exec
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
      dup2(null, STDIN_FILENO);
      dup2(null, STDOUT_FILENO);
      dup2(null, STDERR_FILENO);
    }
    if (dir && chdir(dir) != 0) {
      _exit(126);
    }
    execvp(argv[0], argv);
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return -1;
    }
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// s as a gnuplot single-quoted string: a quote doubled, control characters as '?' (gnuplot does
// no substitution inside single quotes, not even of backquotes)
static void gp_quoted(FILE* f, const char* s) {
  fputc('\'', f);
  for (; *s; s++) {
    if (*s == '\'') {
      fputs("''", f);
    } else {
      fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
    }
  }
  fputc('\'', f);
}

// runs OUTDIR/script with gnuplot in OUTDIR (the script names its files relative to it); silent
// when gnuplot is not installed, one line when it fails
static void run_gnuplot(const char* outdir, const char* script, const char* png) {
  char* argv[3] = {"gnuplot", (char*)script, NULL};
  int st = dso_cli_spawn_quiet(outdir, argv);
  if (st != 0 && st != 127) {
    fprintf(stderr, "dso run: gnuplot %s failed (status %d); %s not written\n", script, st, png);
  }
}

// opens OUTDIR/name for a gnuplot script; NULL (after one line on stderr) on failure
static FILE* open_script(const char* outdir, const char* name) {
  char path[4200];
  dso_cli_join(path, sizeof(path), outdir, name);
  FILE* f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, "dso run: %s: cannot write the plot script: %s\n", path, strerror(errno));
  }
  return f;
}

static int close_script(FILE* f, const char* outdir, const char* name) {
  if (fclose(f) != 0) {
    fprintf(stderr, "dso run: %s/%s: cannot write the plot script\n", outdir, name);
    return -1;
  }
  return 0;
}

void dso_cli_plot(const char* outdir) {
  FILE* f = open_script(outdir, "progress.gp");
  if (!f) {
    return;
  }
  fputs("# learning curve of dso run; re-plot with: gnuplot progress.gp (in this folder)\n"
        "set terminal png size 800,500 noenhanced\nset output 'progress.png'\n"
        "set datafile separator ','\nset logscale y\nset xlabel 'iteration'\n"
        "set ylabel 'cost'\n"
        "plot 'progress.csv' using 1:2 skip 1 with linespoints title 'J'\n", f);
  if (close_script(f, outdir, "progress.gp") == 0) {
    run_gnuplot(outdir, "progress.gp", "progress.png");
  }
}

void dso_cli_plot_trajectories(const char* outdir, int ncol, const char* const* names) {
  if (ncol < 1) {
    return;
  }
  FILE* f = open_script(outdir, "trajectories.gp");
  if (!f) {
    return;
  }
  fprintf(f, "# recorded against simulated qpos of dso run; re-plot with: gnuplot trajectories.gp "
          "(in this folder)\n"
          "set terminal png size 900,%d noenhanced\nset output 'trajectories.png'\n"
          "set datafile separator ','\nset multiplot layout %d,1\n"
          "set xlabel 'sample (validation episodes in sequence)'\n"
          // brk(e, y): y, or undefined (which breaks the line) where the episode id e changes,
          // so that one episode's last sample is not joined to the next one's first
          "p = -1\nbrk(e, y) = (e != p ? (p = e, 1/0) : y)\n", 120 + 260 * ncol, ncol);
  for (int k = 0; k < ncol; k++) {
    int c = 3 + 3 * k;
    fputs("set title ", f);
    gp_quoted(f, names[k]);
    fprintf(f, "\nplot 'trajectories.csv' using 0:(brk($1,$%d)) skip 1 "
            "with lines lw 4 lc rgb '#a0a0a0' title 'recorded', '' using 0:(brk($1,$%d)) skip 1 "
            "with lines lc rgb '#d95f02' title 'initial theta', '' using 0:(brk($1,$%d)) skip 1 "
            "with lines dt 2 lw 2 lc rgb '#1b4f9c' title 'identified theta'\n", c, c + 1, c + 2);
  }
  fputs("unset multiplot\n", f);
  if (close_script(f, outdir, "trajectories.gp") == 0) {
    run_gnuplot(outdir, "trajectories.gp", "trajectories.png");
  }
}

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

int dso_cli_interrupted(void) { return g_interrupted != 0; }

// the output files of dso run whose atomic writes may leave temporary files behind
static const char* const kOutputs[] = {"result.json",      "progress.csv", "checkpoint.json",
                                       "model.xml",        "trajectories.csv"};

void dso_cli_run_init(dsoCliRun* run, const char* task_path, const char* outdir, int max_iter,
                      const char* const* parts) {
  memset(run, 0, sizeof(*run));
  run->task_path = task_path;
  run->outdir = outdir;
  run->max_iter = max_iter;
  run->parts = parts;
  run->lock = -1;
  dso_cli_join(run->checkpoint, sizeof(run->checkpoint), outdir, "checkpoint.json");
  dso_cli_join(run->progress, sizeof(run->progress), outdir, "progress.csv");
}

int dso_cli_start_run(dsoCliRun* run, dsoRunState* st, const dsoTheta* theta, const double* u0,
                      double lambda, int resume) {
  dsoError err = {0};
  int removed = 0;
  if (dso_run_state_init(st, theta, u0, lambda, &err) || dso_mkdir_p(run->outdir, &err) ||
      dso_run_lock_acquire(&run->lock, run->outdir, &err) ||
      dso_run_clean_temp(&removed, run->outdir, kOutputs,
                         (int)(sizeof(kOutputs) / sizeof(kOutputs[0])), &err)) {
    return dso_cli_fail("run", &err);
  }
  if (removed > 0) {
    fprintf(stderr, "dso run: removed %d temporary file%s an interrupted run left in %s\n",
            removed, removed > 1 ? "s" : "", run->outdir);
  }
  if (resume) {
    if (access(run->checkpoint, R_OK) != 0) {
      fprintf(stderr, "dso run: --resume: %s does not exist\n", run->checkpoint);
      return DSO_EXIT_INPUT;
    }
    if (dso_run_checkpoint_read(run->checkpoint, theta, st, &err)) {
      return dso_cli_fail("run", &err);
    }
  }
  catch_signals();
  return DSO_EXIT_OK;
}

void dso_cli_end_run(dsoCliRun* run) {
  dso_run_lock_release(run->lock);
  run->lock = -1;
}

int dso_cli_save(dsoCliRun* run, const dsoRunState* st, const dsoTheta* theta) {
  dsoError err = {0};
  if (dso_run_progress_write(run->progress, st, run->parts, &err) ||
      dso_run_checkpoint_write(run->checkpoint, theta, st, &err)) {
    return dso_cli_fail("run", &err);
  }
  return DSO_EXIT_OK;
}

int dso_cli_record(dsoCliRun* run, dsoRunState* st, const dsoTheta* theta,
                   const dsoRunRecord* r) {
  dsoError err = {0};
  if (dso_run_check_finite(theta, st->u, r, run->parts, &err)) {
    if (st->nrecord == 0) {
      fprintf(stderr, "dso run: %s: %s at the initial theta; nothing written\n", run->task_path,
              err.msg);
    } else {
      fprintf(stderr, "dso run: %s: iteration %d: %s; not recorded: progress.csv and "
              "checkpoint.json hold iteration %d\n", run->task_path, r->iter, err.msg,
              st->record[st->nrecord - 1].iter);
    }
    return DSO_EXIT_FAIL;
  }
  if (dso_run_state_record(st, r, &err)) {
    return dso_cli_fail("run", &err);
  }
  return dso_cli_save(run, st, theta);
}

int dso_cli_check_final(const dsoCliRun* run, const dsoTheta* theta, const double* u,
                        const dsoRunRecord* r) {
  dsoError err = {0};
  if (dso_run_check_finite(theta, u, r, run->parts, &err)) {
    fprintf(stderr, "dso run: %s: %s; result.json and model.xml not written\n", run->task_path,
            err.msg);
    return DSO_EXIT_FAIL;
  }
  return DSO_EXIT_OK;
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

int dso_cli_interrupt(const dsoCliRun* run, const dsoRunState* st) {
  int iter = st->nrecord ? st->record[st->nrecord - 1].iter : 0;
  fprintf(stderr, "dso run: interrupted after iteration %d; resume with: dso run ", iter);
  print_shell_word(stderr, run->task_path);
  fputs(" -o ", stderr);
  print_shell_word(stderr, run->outdir);
  if (run->max_iter >= 0) {
    fprintf(stderr, " --max-iter %d", run->max_iter);
  }
  fputs(" --resume\n", stderr);
  return DSO_EXIT_FAIL;
}

void dso_cli_print_table(const dsoTheta* theta, const char* label, const double* u0,
                         const double* u, const double* ut, const double* se,
                         const int* at_bound, int truth) {
  int n = theta->n;
  printf("\n%-34s %s%14s %14s %18s%s\n", "entry", truth ? "          true" : "", "initial",
         label, "+- se", truth ? "    error %" : "");
  for (int i = 0; i < n; i++) {
    const dsoThetaEntry* e = &theta->entry[i];
    if (e->block == DSO_BLOCK_POLICY && !truth && n > 24) {
      continue;  // long policy blocks are in result.json
    }
    char sebuf[32] = "-";
    if (at_bound && at_bound[i]) {
      snprintf(sebuf, sizeof(sebuf), "(at %s bound)", at_bound[i] < 0 ? "lower" : "upper");
    } else if (se && se[i] > 0 && isfinite(se[i])) {
      snprintf(sebuf, sizeof(sebuf), "%.3g", se[i]);
    }
    double vt = dso_theta_entry_natural(e, ut[i]), vf = dso_theta_entry_natural(e, u[i]);
    printf("%-34s ", e->name);
    if (truth) {
      printf("%14.6g ", vt);
    }
    printf("%14.6g %14.6g %18s", dso_theta_entry_natural(e, u0[i]), vf, sebuf);
    if (truth) {
      if (vt != 0) {
        printf("  %10.3g", 100 * (vf - vt) / fabs(vt));
      } else {
        printf("  %10s", "-");
      }
    }
    printf("%s\n", e->fixed ? "  (fixed)" : "");
  }
}
