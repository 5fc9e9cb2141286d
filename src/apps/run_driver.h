// The drivers of dso_run_task (include/dso/run.h): one per kind of task (run_fit.c: least squares
// on recorded data, run_train.c: chain optimization, run_estim.c: state-estimator learning), each
// a set of functions over its optimizer that the one loop of run_task.c calls. The loop owns the
// folder, the lock, the checkpoint, progress.csv, resume, interrupts, refusals and the events;
// a driver evaluates, steps, saves and restores its optimizer state, and writes its final
// outputs (result.json, model.xml, ...) with the helpers below. Library-private.
#ifndef DSO_APPS_RUN_DRIVER_H
#define DSO_APPS_RUN_DRIVER_H

#include <stddef.h>

#include "dso/error.h"
#include "dso/run.h"
#include "apps/run.h"
#include "config/task.h"

#if defined(__GNUC__)
#define DSO_RUN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DSO_RUN_PRINTF(a, b)
#endif

// Growable text (zero-initialize; free with dso_run_text_free). A failed allocation sets failed
// and drops the rest.
typedef struct dsoRunText_ {
  char* s;
  size_t len, cap;
  int failed;
} dsoRunText;

void dso_run_text_printf(dsoRunText* t, const char* fmt, ...) DSO_RUN_PRINTF(2, 3);
void dso_run_text_free(dsoRunText* t);

// The loop's side of the final outputs (run_task.c).
typedef struct dsoRunCtx_ dsoRunCtx;

const char* dso_run_ctx_outdir(const dsoRunCtx* ctx);
// appends to the pending NOTE text (emitted in order before the RESULT event)
void dso_run_note(dsoRunCtx* ctx, const char* fmt, ...) DSO_RUN_PRINTF(2, 3);
// a WARNING event now (the pending NOTE text first)
void dso_run_warn(dsoRunCtx* ctx, const char* fmt, ...) DSO_RUN_PRINTF(2, 3);
// buf = outdir/name
void dso_run_join(char* buf, size_t len, const char* outdir, const char* name);
// records OUTDIR/name as written (for the summary)
void dso_run_add_file(dsoRunCtx* ctx, const char* name);
// writes text to OUTDIR/name atomically and records it
dsoStatus dso_run_write_text(dsoRunCtx* ctx, const char* name, const char* text, dsoError* err);
// OUTDIR/model.xml: the task's model file with θ = u (layout theta: the task's or one that
// extends it) written into its attributes, checked, atomically; a non-finite entry is refused
dsoStatus dso_run_write_model(dsoRunCtx* ctx, const dsoTask* task, const dsoTheta* theta,
                              const double* u, dsoError* err);
// OUTDIR/trajectories.png from OUTDIR/trajectories.csv (episode, time, then per entry recorded,
// initial, identified) by the script trajectories.gp, one panel per entry (names, ncol), when
// plots are on
void dso_run_plot_trajectories(dsoRunCtx* ctx, int ncol, const char* const* names);
// the table of θ: initial, final (label), standard errors when se is given (entries at_bound
// (may be NULL) flags show their bound instead), and with truth the true values ut and the
// errors in percent
void dso_run_table(dsoRunText* t, const dsoTheta* theta, const char* label, const double* u0,
                   const double* u, const double* ut, const double* se, const int* at_bound,
                   int truth);

// What a step reports besides its status.
enum {
  DSO_RUN_STEP_OK = 0,
  DSO_RUN_STEP_REFUSED,        // refused (θ and optimizer state kept); err says why
  DSO_RUN_STEP_REFUSED_COST    // refused for a non-finite cost (fatal on the first batch)
};

// The functions of one kind of run, a static table per driver; the loop calls them with self.
typedef struct dsoRunOps_ {
  // u0 (theta->n) = the initial θ
  void (*init)(void* self, double* u0);
  // the row of iteration 0 at u (iter, steps set by the driver); NULL: a fresh run starts with
  // its first step (the chain drivers: their step evaluates)
  dsoStatus (*evaluate)(void* self, const double* u, dsoRunRecord* r, dsoError* err);
  // one iteration from u (updated in place) after row last (NULL before any): row r of the new
  // state, *done 1 when converged, *refused a DSO_RUN_STEP_* (with a non-zero status)
  dsoStatus (*step)(void* self, double* u, const dsoRunRecord* last, dsoRunRecord* r, int* done,
                    int* refused, dsoError* err);
  // the optimizer state (lambda, and nopt values into opt when nopt > 0)
  void (*get_state)(void* self, double* lambda, double* opt);
  // restores it from a checkpoint (opt NULL when the checkpoint holds none)
  dsoStatus (*set_state)(void* self, double lambda, const double* opt, dsoError* err);
  // the START text
  void (*header)(void* self, dsoRunText* t);
  // the ITERATION text for row r
  void (*iteration)(void* self, dsoRunText* t, const dsoRunRecord* r, int done, double rate,
                    double eta);
  // the final outputs at u (u0 the initial θ, st the run's state): result.json, model.xml, ...
  // with the NOTE text; *wrote the RESULT text
  dsoStatus (*report)(void* self, dsoRunCtx* ctx, const double* u0, const dsoRunState* st,
                      dsoRunText* wrote, dsoError* err);
  // why it stopped when it was not interrupted (done: the optimizer converged)
  dsoRunStop (*stop)(void* self, int done);
  void (*destroy)(void* self);
} dsoRunOps;

// One kind of run: its state (self) and functions, and what the loop needs to know of it. The
// driver's create function fills it.
typedef struct dsoRunDriver_ {
  const dsoRunOps* ops;
  void* self;
  int kind;                   // dsoTaskKind
  const dsoTheta* theta;      // layout of u, the checkpoint and the outputs
  const char* const* parts;   // names of the three parts of a progress row
  int max_iter;               // the cap (options.max_iter or the task's)
  double lambda;              // optimizer state at the start (lambda)
  int nopt;                   // further optimizer state (Adam moments), 0 when none
  char refuse_setting[64];    // the setting named when refusals give up ("train.lr 0.01")
} dsoRunDriver;

// The drivers: fill d for task (checked to be of the driver's kind) with the options (max_iter,
// truth) and name for messages. On failure nothing is to be freed.
dsoStatus dso_run_fit_driver(dsoRunDriver* d, dsoTask* task, const dsoRunOptions* o,
                             const char* name, dsoError* err);
dsoStatus dso_run_train_driver(dsoRunDriver* d, dsoTask* task, const dsoRunOptions* o,
                               const char* name, dsoError* err);
dsoStatus dso_run_estim_driver(dsoRunDriver* d, dsoTask* task, const dsoRunOptions* o,
                               const char* name, dsoError* err);

#endif  // DSO_APPS_RUN_DRIVER_H
