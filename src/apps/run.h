// Outputs of an optimization run (dso run): the checkpoint that --resume continues from, the
// progress table and the result by name. Every file is written atomically (io.h), and none of
// them ever holds a non-finite θ, cost, gradient norm or step size: the writers refuse such a
// state with DSO_ERR_NUMERIC. The output folder of a run is locked for the run
// (dso_run_lock_acquire), and temporary files a killed run left are removed (dso_run_clean_temp).
#ifndef DSO_APPS_RUN_H
#define DSO_APPS_RUN_H

#include "dso/error.h"
#include "mujoco/theta.h"

#ifdef __cplusplus
extern "C" {
#endif

// One row of progress: the state after an iteration.
typedef struct dsoRunRecord_ {
  int iter;            // accepted iterations
  double cost;         // objective
  double term[3];      // its parts (fits: sysid, calib, prior)
  double grad_norm;    // norm of the gradient
  double lambda;       // damping or step size in force
  long steps;          // simulator steps so far
} dsoRunRecord;

// State of a run that a checkpoint holds; arrays owned (free with dso_run_state_clear).
typedef struct dsoRunState_ {
  int n;               // size of θ
  double* u;           // (n) θ in unconstrained coordinates
  double lambda;       // optimizer state
  int done;            // 1 when the optimizer has converged
  int nrecord;         // progress rows
  int cap;
  dsoRunRecord* record;  // (nrecord)
  int nopt;            // size of opt
  double* opt;         // (nopt) further optimizer state (Adam moments), or NULL
  int refused;         // steps refused so far for a non-finite cost, gradient or θ
} dsoRunState;

// Sets the further optimizer state of st to the nopt values of opt (copied).
dsoStatus dso_run_state_set_opt(dsoRunState* st, const double* opt, int nopt, dsoError* err);

// Initializes st for theta at u (copied), with no progress rows.
dsoStatus dso_run_state_init(dsoRunState* st, const dsoTheta* theta, const double* u,
                             double lambda, dsoError* err);

// Frees the arrays of st (st may be zeroed or NULL).
void dso_run_state_clear(dsoRunState* st);

// Appends a progress row.
dsoStatus dso_run_state_record(dsoRunState* st, const dsoRunRecord* rec, dsoError* err);

// Writes st as JSON to path atomically: θ by name in unconstrained coordinates (exact to the
// bit), lambda, done, the refused steps, the optimizer state and the progress rows. A non-finite
// θ entry, lambda, optimizer value, or cost, gradient norm or lambda of a row is DSO_ERR_NUMERIC
// naming path and the field; the file is then left as it was. (A row's parts may be NaN, as a
// measure that is not available; they are written as null and read back as NaN.)
dsoStatus dso_run_checkpoint_write(const char* path, const dsoTheta* theta,
                                   const dsoRunState* st, dsoError* err);

// Reads a checkpoint written for the same θ layout into st (initialized by the caller with
// dso_run_state_init); an entry missing or a name not in θ is an error naming the file.
dsoStatus dso_run_checkpoint_read(const char* path, const dsoTheta* theta, dsoRunState* st,
                                  dsoError* err);

// Writes the progress rows as CSV (iter, cost, the three parts, grad_norm, lambda, steps) to path
// atomically, with the names of the parts in the header. A row with a non-finite cost, gradient
// norm or lambda is DSO_ERR_NUMERIC naming path and the row; the file is then left as it was.
dsoStatus dso_run_progress_write(const char* path, const dsoRunState* st,
                                 const char* const part_names[3], dsoError* err);

// The result as JSON text (malloc'd): for every entry its name, initial and final natural
// values, standard error and 95% confidence interval when se (n, natural units, may be NULL) is
// given and positive, and whether it was fixed; plus the final progress row and, when nval > 0,
// the validation RMS per episode and overall. A non-finite initial or final value, or a
// non-finite cost, gradient norm or lambda of last, is DSO_ERR_NUMERIC naming the entry or field
// (NULL returned).
char* dso_run_result_json(const dsoTheta* theta, const double* u0, const double* u,
                          const double* se, const dsoRunRecord* last,
                          const char* const part_names[3], const double* val_rms, int nval,
                          double val_total, dsoError* err);

// Facts of a least-squares fit that its result.json adds to dso_run_result_json's.
typedef struct dsoRunFitFacts_ {
  const double* se_iid;     // (n) classic standard errors s²(JᵀJ)⁻¹, NaN or <= 0 where none;
                            // may be NULL
  const int* at_bound;      // (n) -1 at the lower bound, +1 at the upper, 0 free; may be NULL
  const char* se_kind;      // how "se" was estimated ("jackknife", "iid", ...); may be NULL
  int nwindow;              // shooting windows the estimate clusters over
  const char* stop;         // why the fit stopped ("converged", "max_iter", ...); may be NULL
  const char* eval_initial; // evaluation at the initial θ as JSON text (dso_eval_json); may be NULL
  const char* eval_final;   // the same at the final θ; may be NULL
} dsoRunFitFacts;

// Adds the facts of a fit to base (a dso_run_result_json text over theta) and returns the new
// text (malloc'd; base is not freed): per entry "se_iid" and "at_bound" (an entry at a bound
// keeps no "se" or "ci95": it is not a free estimate), and at the top level "se_kind",
// "windows", "nbound", "stop" and "evaluation": {"initial": .., "identified": ..}. NULL with
// err on failure (malformed evaluation text, out of memory).
char* dso_run_result_add_fit(const char* base, const dsoTheta* theta, const dsoRunFitFacts* f,
                             dsoError* err);

// Adds "refused_steps" (chain runs) to base, a dso_run_result_json text; returns the new text
// (malloc'd; base is not freed) or NULL with err (base NULL or not JSON, out of memory).
char* dso_run_result_add_train(const char* base, int refused, dsoError* err);

// What an estimator run adds to result.json under "estimator".
typedef struct dsoRunEstimFacts_ {
  const char* corrector;          // corrector kind ("linear", "mlp", ...)
  int corrector_entries;          // θ_c entries
  int fitted_entries;             // entries fitted (θ_c and free physics entries)
  double innovations;             // innovation residuals in the fit
  const char* scored_on;          // "validation episodes" or "all episodes"
  int nfig;                       // state-error figures
  const double* fig;              // (nfig) RMS state errors; non-finite ones are written null
  const char* const* fig_name;    // (nfig) their names
} dsoRunEstimFacts;

// Adds f under "estimator" to base, a dso_run_result_json text; as dso_run_result_add_train.
char* dso_run_result_add_estimator(const char* base, const dsoRunEstimFacts* f, dsoError* err);

// Checks that θ = u (theta->n, unconstrained coordinates) and row r (may be NULL) can be written:
// every entry of u and its natural value, r's cost, gradient norm and lambda finite. Otherwise
// DSO_ERR_NUMERIC with a message naming the first entry or field at fault; a non-finite cost names
// its non-finite parts (part_names, may be NULL) and, when a Gaussian prior is at fault, the entry
// whose prior term is not finite at u (value, mean and std).
dsoStatus dso_run_check_finite(const dsoTheta* theta, const double* u, const dsoRunRecord* r,
                               const char* const part_names[3], dsoError* err);

// Index of the first entry whose prior term 0.5 ((v - mean) / std)^2 or its gradient is not
// finite at u (theta->n), or -1.
int dso_run_bad_prior(const dsoTheta* theta, const double* u);

// Takes an exclusive lock on the output folder of a run for as long as it runs, without waiting:
// folder/.lock (created; it holds the pid of the run that holds the lock) is locked with flock and
// *fd receives its descriptor (close-on-exec), released by dso_run_lock_release or when the
// process ends in any way. A folder locked by another process is DSO_ERR_IO with the message
// "FOLDER is in use by another dso run (pid N)"; a lock file that cannot be made is DSO_ERR_IO
// naming it. *fd is -1 on error.
dsoStatus dso_run_lock_acquire(int* fd, const char* folder, dsoError* err);

// Releases a lock taken by dso_run_lock_acquire (the lock file stays; fd < 0 is a no-op).
void dso_run_lock_release(int fd);

// Removes the temporary files that atomic writes (io.h) of the destinations names[k] (nnames file
// names without folder) left in folder when a process was killed while writing them; no other
// file is touched. Call it with the folder locked (dso_run_lock_acquire): no other run then writes
// there. removed (may be NULL) receives the number of files removed. A folder that cannot be read
// or a file that cannot be removed is DSO_ERR_IO naming it.
dsoStatus dso_run_clean_temp(int* removed, const char* folder, const char* const* names,
                             int nnames, dsoError* err);

#ifdef __cplusplus
}
#endif
#endif  // DSO_APPS_RUN_H
