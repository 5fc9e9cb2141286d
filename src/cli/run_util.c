// Pieces shared by the paths of dso run: output folder and checkpoint start-up, the model
// written back, plots and the table of values.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "dso.h"
#include "json.h"
#include "mjcf.h"
#include "run.h"
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
  return dso_mjcf_write(path, task->model_path, task->model, theta, u, err);
}

void dso_cli_plot(const char* outdir) {
  if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
    return;
  }
  char cmd[8400];
  snprintf(cmd, sizeof(cmd),
           "gnuplot -e \"set terminal png size 800,500; set output '%s/progress.png'; "
           "set datafile separator ','; set logscale y; set xlabel 'iteration'; "
           "set ylabel 'cost'; plot '%s/progress.csv' using 1:2 skip 1 with linespoints "
           "title 'J'\" 2>/dev/null",
           outdir, outdir);
  if (system(cmd) != 0) {
    fprintf(stderr, "dso run: gnuplot failed; progress.png not written\n");
  }
}

void dso_cli_plot_trajectories(const char* outdir, int ncol, const char* const* names) {
  if (ncol < 1 || system("command -v gnuplot >/dev/null 2>&1") != 0) {
    return;
  }
  FILE* gp = popen("gnuplot 2>/dev/null", "w");
  if (!gp) {
    return;
  }
  fprintf(gp, "set terminal png size 900,%d\nset output '%s/trajectories.png'\n"
          "set datafile separator ','\nset multiplot layout %d,1\n"
          "set xlabel 'sample (validation episodes in sequence)'\n"
          // brk(e, y): y, or undefined (which breaks the line) where the episode id e changes,
          // so that one episode's last sample is not joined to the next one's first
          "p = -1\nbrk(e, y) = (e != p ? (p = e, 1/0) : y)\n", 120 + 260 * ncol, outdir, ncol);
  for (int k = 0; k < ncol; k++) {
    int c = 3 + 3 * k;
    fprintf(gp, "set title '%s'\nplot '%s/trajectories.csv' using 0:(brk($1,$%d)) skip 1 "
            "with lines lw 4 lc rgb '#a0a0a0' title 'recorded', '' using 0:(brk($1,$%d)) skip 1 "
            "with lines lc rgb '#d95f02' title 'initial theta', '' using 0:(brk($1,$%d)) skip 1 "
            "with lines dt 2 lw 2 lc rgb '#1b4f9c' title 'identified theta'\n", names[k],
            outdir, c, c + 1, c + 2);
  }
  fprintf(gp, "unset multiplot\n");
  if (pclose(gp) != 0) {
    fprintf(stderr, "dso run: gnuplot failed; trajectories.png not written\n");
  }
}

// sets up st at u0 in OUTDIR (created); with resume reads OUTDIR/checkpoint.json into st.
// path receives the checkpoint's path. Returns an exit status (0 ok) after printing any error.
int dso_cli_start_run(dsoRunState* st, char* path, size_t len, const dsoTheta* theta,
                     const double* u0, double lambda, const char* outdir, int resume) {
  dsoError err = {0};
  if (dso_run_state_init(st, theta, u0, lambda, &err) || dso_mkdir_p(outdir, &err)) {
    return dso_cli_fail("run", &err);
  }
  dso_cli_join(path, len, outdir, "checkpoint.json");
  if (!resume) {
    return DSO_EXIT_OK;
  }
  if (access(path, R_OK) != 0) {
    fprintf(stderr, "dso run: --resume: %s does not exist\n", path);
    return DSO_EXIT_INPUT;
  }
  if (dso_run_checkpoint_read(path, theta, st, &err)) {
    return dso_cli_fail("run", &err);
  }
  return DSO_EXIT_OK;
}

void dso_cli_print_table(const dsoTheta* theta, const char* label, const double* u0,
                        const double* u, const double* ut, const double* se, int truth) {
  int n = theta->n;
  printf("\n%-34s %s%14s %14s %12s%s\n", "entry", truth ? "          true" : "", "initial",
         label, "+- se", truth ? "    error %" : "");
  for (int i = 0; i < n; i++) {
    const dsoThetaEntry* e = &theta->entry[i];
    if (e->block == DSO_BLOCK_POLICY && !truth && n > 24) {
      continue;  // long policy blocks are in result.json
    }
    char sebuf[32] = "-";
    if (se && se[i] > 0) {
      snprintf(sebuf, sizeof(sebuf), "%.3g", se[i]);
    }
    double vt = dso_theta_entry_natural(e, ut[i]), vf = dso_theta_entry_natural(e, u[i]);
    printf("%-34s ", e->name);
    if (truth) {
      printf("%14.6g ", vt);
    }
    printf("%14.6g %14.6g %12s", dso_theta_entry_natural(e, u0[i]), vf, sebuf);
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

int dso_cli_record(dsoRunState* st, const char* path, const dsoTheta* theta,
                   const dsoRunRecord* r) {
  dsoError err = {0};
  if (dso_run_state_record(st, r, &err) || dso_run_checkpoint_write(path, theta, st, &err)) {
    return dso_cli_fail("run", &err);
  }
  return DSO_EXIT_OK;
}
