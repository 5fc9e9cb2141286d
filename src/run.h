// Outputs of an optimization run (dso run): the checkpoint that --resume continues from, the
// progress table and the result by name. Every file is written atomically (io.h).
#ifndef DSO_RUN_H
#define DSO_RUN_H

#include "error.h"
#include "theta.h"

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
// bit), lambda, done and the progress rows.
dsoStatus dso_run_checkpoint_write(const char* path, const dsoTheta* theta,
                                   const dsoRunState* st, dsoError* err);

// Reads a checkpoint written for the same θ layout into st (initialized by the caller with
// dso_run_state_init); an entry missing or a name not in θ is an error naming the file.
dsoStatus dso_run_checkpoint_read(const char* path, const dsoTheta* theta, dsoRunState* st,
                                  dsoError* err);

// Writes the progress rows as CSV (iter, cost, the three parts, grad_norm, lambda, steps) to path
// atomically, with the names of the parts in the header.
dsoStatus dso_run_progress_write(const char* path, const dsoRunState* st,
                                 const char* const part_names[3], dsoError* err);

// The result as JSON text (malloc'd): for every entry its name, initial and final natural
// values, standard error and 95% confidence interval when se (n, natural units, may be NULL) is
// given and positive, and whether it was fixed; plus the final progress row and, when nval > 0,
// the validation RMS per episode and overall.
char* dso_run_result_json(const dsoTheta* theta, const double* u0, const double* u,
                          const double* se, const dsoRunRecord* last,
                          const char* const part_names[3], const double* val_rms, int nval,
                          double val_total, dsoError* err);

#ifdef __cplusplus
}
#endif
#endif  // DSO_RUN_H
