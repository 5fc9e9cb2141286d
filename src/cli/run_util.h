// Pieces shared by the paths of `dso run` (run.c: fits; run_train.c: chain optimization;
// run_estim.c: state-estimator learning). CLI-private.
#ifndef DSO_CLI_RUN_UTIL_H
#define DSO_CLI_RUN_UTIL_H

#include <stddef.h>

#include "dso/error.h"
#include "apps/run.h"
#include "config/task.h"

// Monotonic wall-clock time in seconds.
double dso_cli_now(void);

// buf = dir/name.
void dso_cli_join(char* buf, size_t len, const char* dir, const char* name);

// Writes the task's model file with θ = u (layout theta: the task's, or one that extends it)
// written back to path (atomically).
dsoStatus dso_cli_write_model(const char* path, const dsoTask* task, const dsoTheta* theta,
                              const double* u, dsoError* err);

// Runs argv[0] (looked up in PATH) with arguments argv (NULL-terminated) in folder dir (NULL: the
// current one), with no shell, standard input, output and error on /dev/null, and waits for it.
// Returns its exit status, 127 when it could not be started (not installed), 126 when dir could
// not be entered, -1 when it was killed. Prints nothing.
int dso_cli_spawn_quiet(const char* dir, char* const argv[]);

// OUTDIR/progress.png from OUTDIR/progress.csv by the script OUTDIR/progress.gp (kept, to re-plot:
// `gnuplot progress.gp` in OUTDIR), run with gnuplot in OUTDIR when gnuplot is installed.
void dso_cli_plot(const char* outdir);

// OUTDIR/trajectories.png from OUTDIR/trajectories.csv (columns episode, time, then per entry
// recorded, initial, identified) by the script OUTDIR/trajectories.gp, as dso_cli_plot: one panel
// per entry, names[k] (ncol) the entries' names, samples of the episodes in sequence on the x axis.
void dso_cli_plot_trajectories(const char* outdir, int ncol, const char* const* names);

// Consecutive refused steps after which dso run gives up (exit status 1).
enum { DSO_CLI_MAX_REFUSED = 5 };

// What the paths of dso run share while they run: set with dso_cli_run_init, then
// dso_cli_start_run.
typedef struct dsoCliRun_ {
  const char* task_path;     // the task file as given
  const char* outdir;        // OUTDIR as given
  int max_iter;              // --max-iter, or -1 (repeated in the resume hint)
  const char* const* parts;  // the names of the three parts of the progress rows
  int lock;                  // descriptor of OUTDIR's lock, -1 when not held
  char checkpoint[4200];     // OUTDIR/checkpoint.json
  char progress[4200];       // OUTDIR/progress.csv
} dsoCliRun;

// Fills run with the task file, OUTDIR, the --max-iter given (or -1) and the names of the three
// parts of the progress rows (borrowed); no lock held yet.
void dso_cli_run_init(dsoCliRun* run, const char* task_path, const char* outdir, int max_iter,
                      const char* const* parts);

// Sets up st at u0 (layout theta) for a run in run->outdir: makes the folder, locks it (a folder
// in use by another run is an error), removes the temporary files a killed run left there, with
// resume reads its checkpoint.json into st, and catches SIGINT and SIGTERM (dso_cli_interrupted).
// Returns an exit status (0 ok) after printing any error; release with dso_cli_end_run in any case.
int dso_cli_start_run(dsoCliRun* run, dsoRunState* st, const dsoTheta* theta, const double* u0,
                      double lambda, int resume);

// Releases what dso_cli_start_run took (the folder's lock); run may be half set up.
void dso_cli_end_run(dsoCliRun* run);

// Appends row r to st's progress after checking that θ = st->u and r are finite, then writes
// progress.csv and checkpoint.json atomically (every recorded iteration of every path). Returns an
// exit status (0 ok) after printing any error: a non-finite θ or row is status 1 with a message
// naming the task file, the iteration and the entry or field.
int dso_cli_record(dsoCliRun* run, dsoRunState* st, const dsoTheta* theta,
                   const dsoRunRecord* r);

// Writes progress.csv and checkpoint.json of st atomically (after a refused step, whose counts and
// optimizer state changed). Returns an exit status after printing any error.
int dso_cli_save(dsoCliRun* run, const dsoRunState* st, const dsoTheta* theta);

// Checks, before the final outputs, that θ = u and row r (may be NULL) are finite. Returns an exit
// status (1, after a message naming the task file and the entry or field, when not).
int dso_cli_check_final(const dsoCliRun* run, const dsoTheta* theta, const double* u,
                        const dsoRunRecord* r);

// True once SIGINT or SIGTERM arrived during a run; the path then ends after its current iteration
// with dso_cli_interrupt. (A second signal has its default action.)
int dso_cli_interrupted(void);

// Prints "interrupted after iteration N; resume with: dso run TASK -o OUTDIR --resume" (TASK and
// OUTDIR quoted for a POSIX shell where needed) and returns exit status 1.
int dso_cli_interrupt(const dsoCliRun* run, const dsoRunState* st);

// Prints the table of θ: initial, final (label), standard errors when se is given (entries that
// at_bound (may be NULL) flags print their bound instead), and with truth
// the true values ut and the errors in percent.
void dso_cli_print_table(const dsoTheta* theta, const char* label, const double* u0,
                         const double* u, const double* ut, const double* se,
                         const int* at_bound, int truth);

// The chain-optimization path of dso run (run_train.c).
int dso_cli_run_train(dsoTask* task, const char* task_path, const char* outdir, int resume,
                      int quiet, int max_iter);

// The state-estimator path of dso run (run_estim.c), for tasks with an "estimator" section.
int dso_cli_run_estim(dsoTask* task, const char* task_path, const char* outdir, int resume,
                      int quiet, int max_iter);

#endif  // DSO_CLI_RUN_UTIL_H
