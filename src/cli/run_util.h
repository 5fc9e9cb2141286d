// Pieces shared by the paths of `dso run` (run.c: fits; run_train.c: chain optimization;
// run_estim.c: state-estimator learning). CLI-private.
#ifndef DSO_CLI_RUN_UTIL_H
#define DSO_CLI_RUN_UTIL_H

#include <stddef.h>

#include "error.h"
#include "run.h"
#include "task.h"

// Monotonic wall-clock time in seconds.
double dso_cli_now(void);

// buf = dir/name.
void dso_cli_join(char* buf, size_t len, const char* dir, const char* name);

// Writes the task's model file with θ = u (layout theta: the task's, or one that extends it)
// written back to path (atomically).
dsoStatus dso_cli_write_model(const char* path, const dsoTask* task, const dsoTheta* theta,
                              const double* u, dsoError* err);

// OUTDIR/progress.png from OUTDIR/progress.csv when gnuplot is installed.
void dso_cli_plot(const char* outdir);

// OUTDIR/trajectories.png from OUTDIR/trajectories.csv (columns episode, time, then per entry
// recorded, initial, identified) when gnuplot is installed: one panel per entry, names[k] (ncol)
// the entries' names, samples of the episodes in sequence on the x axis.
void dso_cli_plot_trajectories(const char* outdir, int ncol, const char* const* names);

// Sets up st at u0 in outdir (created); with resume reads outdir/checkpoint.json into st. path
// receives the checkpoint's path. Returns an exit status (0 ok) after printing any error.
int dso_cli_start_run(dsoRunState* st, char* path, size_t len, const dsoTheta* theta,
                      const double* u0, double lambda, const char* outdir, int resume);

// Appends row r to st's progress and writes st to the checkpoint path atomically (every
// iteration of every path). Returns an exit status (0 ok) after printing any error.
int dso_cli_record(dsoRunState* st, const char* path, const dsoTheta* theta,
                   const dsoRunRecord* r);

// Prints the table of θ: initial, final (label), standard errors when se is given, and with truth
// the true values ut and the errors in percent.
void dso_cli_print_table(const dsoTheta* theta, const char* label, const double* u0,
                         const double* u, const double* ut, const double* se, int truth);

// The chain-optimization path of dso run (run_train.c).
int dso_cli_run_train(dsoTask* task, const char* task_path, const char* outdir, int resume,
                      int quiet, int max_iter);

// The state-estimator path of dso run (run_estim.c), for tasks with an "estimator" section.
int dso_cli_run_estim(dsoTask* task, const char* task_path, const char* outdir, int resume,
                      int quiet, int max_iter);

#endif  // DSO_CLI_RUN_UTIL_H
