// Running a task: the optimization `dso run` performs, as one library call. dso_run_task picks
// what to do from the task's sections (dso_task_kind: an "estimator" learns a state estimator, a
// "cost" optimizes the chain, otherwise a "data" section is fitted by least squares), runs it in
// an output folder and reports its progress through a callback:
//
//   dsoRunOptions o;
//   dso_run_options_default(&o);
//   o.max_iter = 20;
//   dsoRunSummary s;
//   dsoError err = {0};
//   if (dso_run_task(task, "out", &o, my_progress, NULL, &s, &err)) { ... err.msg ... }
//   dso_run_summary_clear(&s);
//
// Files written in OUTDIR (each atomically: a reader never sees half a file):
//   checkpoint.json  after every recorded iteration (and every refused step); options.resume
//                    continues from it and ends bit-identical to an uninterrupted run
//   progress.csv     one row per iteration (iter, cost, three parts, grad_norm, lambda, steps)
//   result.json      θ by name: initial and final values (fits: standard errors, confidence
//                    intervals, validation and evaluation figures; chains: refused steps;
//                    estimators: the state-error comparison)
//   model.xml        the task's model file with the final values written in (estimators: only
//                    when they fit physics entries)
//   trajectories.csv fits: validation episodes simulated at the initial and final θ
//   progress.gp/.png, trajectories.gp/.png  plots, when options.plots and gnuplot is installed
//                    (run by fork/exec, no shell)
// OUTDIR is made when missing and locked for the run (OUTDIR/.lock): a folder another run holds
// is DSO_ERR_IO "OUTDIR is in use by another dso run (pid N)". Temporary files a killed run left
// there are removed (a WARNING event says how many).
//
// Nothing is printed: every line `dso run` prints is the text of an event.
#ifndef DSO_RUN_H
#define DSO_RUN_H

#include <signal.h>

#include "dso/error.h"
#include "dso/export.h"
#include "dso/task.h"

#ifdef __cplusplus
extern "C" {
#endif

// Consecutive refused steps after which a run gives up (DSO_ERR_NUMERIC).
#define DSO_RUN_MAX_REFUSED 5

// Settings of a run; fill with dso_run_options_default, then change what you need.
typedef struct dsoRunOptions_ {
  int resume;           // 1: continue from OUTDIR/checkpoint.json (DSO_ERR_INPUT when missing)
  int max_iter;         // iterations in all (resumed ones included); -1: the task's setting
  int plots;            // 1 (default): write the gnuplot scripts and run gnuplot when installed
  const char* name;     // the task as named in messages; NULL: the task's file path
  const char* values;   // JSON file of starting values ({"name": value} or a result.json) that
                        // replace the task's initial values (entries it does not name keep
                        // theirs; the task is changed); NULL: none
  const char* truth;    // fits only: JSON file of true values ({"name": value} or a
                        // result.json) for the table of the final NOTE (data recorded by dso
                        // simulate); NULL: none
  volatile sig_atomic_t* interrupt;  // when non-NULL and non-zero between iterations (a signal
                        // handler or the progress callback may set it), the run stops after the
                        // current iteration with checkpoint.json and progress.csv current
} dsoRunOptions;

// o = resume 0, max_iter -1, plots 1, name, values, truth and interrupt NULL.
DSO_API void dso_run_options_default(dsoRunOptions* o);

// Kinds of progress events.
typedef enum dsoRunEventKind_ {
  DSO_RUN_EVENT_START = 0,   // set up (folder locked, checkpoint read, iteration 0 recorded)
  DSO_RUN_EVENT_ITERATION,   // an iteration recorded (progress.csv and checkpoint.json written)
  DSO_RUN_EVENT_REFUSED,     // a step refused for a non-finite cost, gradient or θ (θ kept)
  DSO_RUN_EVENT_NOTE,        // information (the final tables, figures that could not be made)
  DSO_RUN_EVENT_WARNING,     // something went wrong that does not stop the run
  DSO_RUN_EVENT_INTERRUPTED, // options.interrupt seen: the run stops, resumable
  DSO_RUN_EVENT_RESULT       // the final outputs are written
} dsoRunEventKind;

// One progress event. Pointers are valid during the callback only.
typedef struct dsoRunEvent_ {
  dsoRunEventKind kind;
  int task_kind;             // dsoTaskKind of the run
  int iteration;             // START: the last recorded iteration (0, or the checkpoint's);
                             // ITERATION, INTERRUPTED, RESULT: the last recorded one;
                             // REFUSED: the one that was attempted
  int max_iter;              // iterations the run goes up to
  double cost;               // ITERATION, START, RESULT: the cost of the last row (NAN if none)
  double term[3];            // its three parts, named part[k] (may be NAN: not available)
  const char* part[3];       // names of the parts ("sysid", "calib", "prior", ...)
  double grad_norm;          // gradient norm of the last row
  double lambda;             // damping or step size in force
  long steps;                // simulator steps so far
  int done;                  // ITERATION: 1 when the optimizer has converged
  double steps_per_s;        // ITERATION: simulator steps per second in this process
  double eta;                // ITERATION: estimated seconds to max_iter
  int refused_in_row;        // REFUSED: refused steps in a row, this one included
  int refused;               // refused steps in all (resumed runs included)
  const char* text;          // what `dso run` prints for the event: lines ending in '\n' (for
                             // WARNING without the "dso run: " prefix); never NULL
} dsoRunEvent;

// Receives every event in order; user is dso_run_task's.
typedef void (*dsoRunProgressFn)(const dsoRunEvent* ev, void* user);

// Why a run ended.
typedef enum dsoRunStop_ {
  DSO_RUN_STOP_NONE = 0,          // not started or failed before the first step
  DSO_RUN_STOP_MAX_ITER,          // the iteration cap
  DSO_RUN_STOP_CONVERGED,         // the optimizer converged
  DSO_RUN_STOP_STALLED_AT_BOUND,  // fits: progress stalled with an entry at a bound
  DSO_RUN_STOP_NO_DECREASE,       // fits: no step decreased the cost
  DSO_RUN_STOP_INTERRUPTED,       // options.interrupt: resume with options.resume
  DSO_RUN_STOP_REFUSED,           // DSO_RUN_MAX_REFUSED steps in a row refused (or the first)
  DSO_RUN_STOP_FAILED             // an error (see err)
} dsoRunStop;

// Short name of a stop reason ("max_iter", "converged", ...).
DSO_API const char* dso_run_stop_name(dsoRunStop stop);

// What a run did; arrays owned, free with dso_run_summary_clear.
typedef struct dsoRunSummary_ {
  int task_kind;        // dsoTaskKind run (DSO_TASK_KIND_NONE when it did not start)
  dsoRunStop stop;      // why it ended
  int first_iteration;  // iteration it started from (0, or the checkpoint's with resume)
  int iterations;       // last recorded iteration (resumed ones included)
  double cost;          // cost of the last recorded row (NAN when none)
  int refused;          // steps refused (resumed runs included)
  int ntheta;           // size of theta: the task's θ (estimators: extended by the corrector)
  double* theta;        // (ntheta) final θ, unconstrained coordinates (NULL when not started)
  double* value;        // (ntheta) the same as natural values
  int nfile;            // files written in OUTDIR
  char** file;          // (nfile) their paths ("OUTDIR/result.json", ...)
} dsoRunSummary;

// Frees the arrays of s and zeroes it (s may be NULL or zeroed).
DSO_API void dso_run_summary_clear(dsoRunSummary* s);

// Runs task into the folder outdir. options NULL: the defaults. progress (may be NULL) receives
// the events with user. summary (may be NULL) is overwritten (zeroed first; clear a previous one
// before reusing it) and filled also on failure. err (may be NULL) is cleared on entry.
//
// Returns DSO_OK when the run ended by its cap or convergence (result.json written) or by
// options.interrupt (summary->stop DSO_RUN_STOP_INTERRUPTED, an INTERRUPTED event, no
// result.json). Failures: DSO_ERR_INPUT bad arguments (NULL task or outdir, nothing to optimize,
// resume without a checkpoint or with one of another task, a values or truth file that does not
// fit), DSO_ERR_IO a folder that cannot be made, locked or written (a folder in use by another
// run included), DSO_ERR_NUMERIC a non-finite cost, gradient or θ at the initial values or after
// a step (never recorded: progress.csv and checkpoint.json keep the last finite iteration), the
// first batch refused, or DSO_RUN_MAX_REFUSED steps refused in a row; other codes from the
// optimizers. Messages name the task (options.name).
DSO_API dsoStatus dso_run_task(dsoTask* task, const char* outdir, const dsoRunOptions* options,
                               dsoRunProgressFn progress, void* user, dsoRunSummary* summary,
                               dsoError* err);

#ifdef __cplusplus
}
#endif
#endif  // DSO_RUN_H
