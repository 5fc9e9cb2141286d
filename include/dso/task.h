// A flat C API for language bindings (the Python package in src/python/ uses it through ctypes):
// only plain types cross it (opaque pointers, int, double*, const char*, uint64_t), and every
// call takes a dsoError* that may be NULL. err (when given) is cleared on entry, so each call
// reports its own status; a call that fails returns a non-zero dsoStatus (or NULL, or -1 where
// noted) and fills err with a message naming the task, entry or index at fault.
//
// Handles built on a task borrow it: free them before the task.
//   dsoTaskFit        the task's data-driven least-squares fit (fit.h): residuals r(u), their
//                     Jacobian, the cost 0.5 |r|², Levenberg-Marquardt steps, the covariance
//   dsoTaskChainCost  the chain objective J(u) of a MuJoCo chain task and its pathwise gradient
//                     (mjchain.h) on a fixed batch size and seed: common random numbers across u
//   dsoTaskRun        the optimization `dso run` performs, one iteration per call: LM for fit
//                     tasks, the trainer (train.h) for chain tasks
// Arrays are flat doubles in θ layout order (dso_task_theta_name) unless noted; u are the
// unconstrained coordinates, v the natural values (theta.h).
#ifndef DSO_TASK_H
#define DSO_TASK_H

#include <stdint.h>

#include "dso/error.h"
#include "dso/export.h"

#ifdef __cplusplus
extern "C" {
#endif

// A loaded task file (opaque here; its definition is internal to dso).
typedef struct dsoTask_ dsoTask;

// The seed argument that stands for the task's own rollout.seed (task seeds are JSON integers
// below 2^53, so this value is never one of them).
#define DSO_SEED_TASK UINT64_MAX

// What `dso run` does with a task (the order the CLI decides it in).
typedef enum dsoTaskKind_ {
  DSO_TASK_KIND_NONE = 0,   // nothing to optimize (no estimator, cost or data section)
  DSO_TASK_KIND_FIT,        // a "data" section without a cost: least-squares fit (fit.h)
  DSO_TASK_KIND_CHAIN,      // a "cost" section: chain optimization (train.h)
  DSO_TASK_KIND_ESTIMATOR   // an "estimator" section: state-estimator learning (estimators/)
} dsoTaskKind;

// Sizes a task reports through dso_task_size.
typedef enum dsoTaskSize_ {
  DSO_TASK_SIZE_NTHETA = 0,     // entries of θ
  DSO_TASK_SIZE_NQ,             // model sizes
  DSO_TASK_SIZE_NV,
  DSO_TASK_SIZE_NA,
  DSO_TASK_SIZE_NU,
  DSO_TASK_SIZE_NSENSORDATA,
  DSO_TASK_SIZE_NROLLOUT,       // rollouts per batch (rollout.rollouts)
  DSO_TASK_SIZE_HORIZON,        // rollout.horizon
  DSO_TASK_SIZE_NEPISODE,       // episodes of the loaded data (0 without data)
  DSO_TASK_NSIZE
} dsoTaskSize;

// Loads a task file (docs/task-format.md); skip_data = 1 reads no data file (to simulate the
// data a task will read). Returns NULL with err set on failure. Free with dso_task_free.
DSO_API dsoTask* dso_task_open(const char* path, int skip_data, dsoError* err);

// Frees a task; NULL is a no-op. Free the handles built on a task (fit, chain cost, run) first.
DSO_API void dso_task_free(dsoTask* task);

// Kind of task (dsoTaskKind), or -1 with err set when task is NULL.
DSO_API int dso_task_kind(const dsoTask* task, dsoError* err);

// One size of the task (dsoTaskSize), or -1 with err set (NULL task, unknown which).
DSO_API int dso_task_size(const dsoTask* task, int which, dsoError* err);

// Number of θ entries, or -1 with err set when task is NULL.
DSO_API int dso_task_ntheta(const dsoTask* task, dsoError* err);

// Name of θ entry i (0 <= i < ntheta; owned by the task), or NULL with err naming the range.
DSO_API const char* dso_task_theta_name(const dsoTask* task, int i, dsoError* err);

// Index of the θ entry called name, or -1 with err (DSO_ERR_INPUT) naming it when there is none.
DSO_API int dso_task_theta_find(const dsoTask* task, const char* name, dsoError* err);

// Description of θ entry i; every output may be NULL: block (dsoBlock), transform (dsoTransform),
// fixed (0/1), lower and upper bounds on the natural value (-INFINITY / INFINITY when absent).
DSO_API dsoStatus dso_task_theta_entry(const dsoTask* task, int i, int* block, int* transform,
                                       int* fixed, double* lower, double* upper, dsoError* err);

// u (ntheta) = the unconstrained coordinates of the entries' initial values.
DSO_API dsoStatus dso_task_theta_init(const dsoTask* task, double* u, dsoError* err);

// v (ntheta) = natural values at u (ntheta); a non-finite u is an error naming the entry.
DSO_API dsoStatus dso_task_theta_natural(const dsoTask* task, double* v, const double* u,
                                         dsoError* err);

// u (ntheta) = unconstrained coordinates of the natural values v (ntheta); a value outside the
// bounds or the transform's domain is an error naming the entry, and u is then unchanged.
DSO_API dsoStatus dso_task_theta_unconstrained(const dsoTask* task, double* u, const double* v,
                                               dsoError* err);

// Gaussian prior cost L_prior (theta.h) at u into *cost and its gradient in u into grad (ntheta,
// may be NULL).
DSO_API dsoStatus dso_task_prior(const dsoTask* task, double* cost, double* grad, const double* u,
                                 dsoError* err);

// Records nepisode episodes of horizon samples from the task's chain at θ = u (NULL: the initial
// values) with seed, extra control noise of std excitation and the last nvalidation episodes
// flagged validation (dso_simulate), and writes them as CSV to path (atomically). nepisode,
// horizon <= 0 take the task's rollout.rollouts and rollout.horizon; seed DSO_SEED_TASK the
// task's rollout.seed (any other value, 0 included, is the seed itself).
// Sizes one batch could not hold (more than 4 GB of states and costs) are DSO_ERR_INPUT.
DSO_API dsoStatus dso_task_simulate_csv(const dsoTask* task, const char* path, const double* u,
                                        int nepisode, int horizon, uint64_t seed, double excitation,
                                        int nvalidation, dsoError* err);

// ---------------------------------------------------------------------------------------------
// least-squares fit of a task with data

// A fit of the task's θ to its data (opaque).
typedef struct dsoTaskFit_ dsoTaskFit;

// Creates the fit `dso run` performs on task (its "fit" settings, fit.h). The task must have
// data; it is borrowed and must outlive the fit. Returns NULL with err set on failure.
DSO_API dsoTaskFit* dso_task_fit_create(const dsoTask* task, dsoError* err);

// Frees a fit; NULL is a no-op.
DSO_API void dso_task_fit_free(dsoTaskFit* fit);

// Number of residuals (sysid, then calib, then prior, in the order of fit.h), or -1 with err set.
DSO_API int dso_task_fit_nresidual(const dsoTaskFit* fit, dsoError* err);

// Number of fitted entries, or -1 with err set.
DSO_API int dso_task_fit_nfitted(const dsoTaskFit* fit, dsoError* err);

// Indices into θ of the fitted entries, ascending (nfitted ints).
DSO_API dsoStatus dso_task_fit_fitted(const dsoTaskFit* fit, int* index, dsoError* err);

// Residuals r (nresidual) at u (ntheta), as fit.h defines them (dso_fit_residual; multiple
// shooting or, with fit.inverse_dynamics, torque residuals): 0.5 |r|² equals the cost of
// dso_fit_evaluate. A diverged window gives DSO_FIT_DIVERGED entries (finite).
DSO_API dsoStatus dso_task_fit_residual(dsoTaskFit* fit, double* r, const double* u, dsoError* err);

// Jacobian J (nresidual x ntheta, row-major) d r / d u at u by the finite differences
// dso_fit_step uses (dso_fit_jacobian: fit.jacobian, forward by default, "central" in the task's
// fit section for second order); columns of entries that are not fitted are 0. r (nresidual,
// may be NULL) receives the residuals at u.
DSO_API dsoStatus dso_task_fit_jacobian(dsoTaskFit* fit, double* J, double* r, const double* u,
                                        dsoError* err);

// Cost 0.5 |r|² at u (dso_fit_evaluate) into *cost (may be NULL) and its parts into parts (3:
// sysid, calib, prior; may be NULL).
DSO_API dsoStatus dso_task_fit_cost(dsoTaskFit* fit, double* cost, double* parts, const double* u,
                                    dsoError* err);

// One Levenberg-Marquardt iteration from u (ntheta, updated in place; dso_fit_step): *cost (may
// be NULL) receives the cost at the new u, *done (may be NULL) 1 when converged.
DSO_API dsoStatus dso_task_fit_step(dsoTaskFit* fit, double* u, double* cost, int* done,
                                    dsoError* err);

// Covariance cov (ntheta x ntheta, row-major, may be NULL) and natural standard errors se
// (ntheta, may be NULL) of the fitted entries at u (dso_fit_covariance).
DSO_API dsoStatus dso_task_fit_covariance(dsoTaskFit* fit, double* cov, double* se, const double* u,
                                          dsoError* err);

// ---------------------------------------------------------------------------------------------
// chain objective and its pathwise gradient

// The chain objective of a task with a cost, on one batch size and seed (opaque).
typedef struct dsoTaskChainCost_ dsoTaskChainCost;

// Creates the task's MuJoCo chain and a batch of nrollout rollouts (<= 0: the task's) of horizon
// transitions (<= 0: the task's) keyed by seed (DSO_SEED_TASK: the task's rollout.seed), with
// the task's rollout setting (episodic or time-varying; the pathwise route does not take the
// average-cost setting). The task is borrowed and must outlive the handle. Returns NULL with err
// set (also for fewer than 2 rollouts, or sizes one batch could not hold: more than 4 GB).
DSO_API dsoTaskChainCost* dso_task_chain_cost_create(const dsoTask* task, int nrollout, int horizon,
                                                     uint64_t seed, dsoError* err);

// Frees the handle; NULL is a no-op.
DSO_API void dso_task_chain_cost_free(dsoTaskChainCost* cc);

// Samples the batch at u (ntheta) with iteration key `iteration` (the same key gives the same
// noise at every u: common random numbers) and returns the sample objective J (mean over
// rollouts of the discounted cost sum, dso_rollout_objective) in *J and its standard error in
// *Jse, and, when grad is not NULL, the pathwise gradient dJ/du (ntheta, dso_mjchain_pathwise)
// and its standard error grad_se (ntheta, may be NULL). The prior is not included
// (dso_task_prior). *J, *Jse and *diverged (rollouts that diverged) may be NULL. A non-finite J
// or gradient is DSO_ERR_NUMERIC.
DSO_API dsoStatus dso_task_chain_cost_eval(dsoTaskChainCost* cc, double* J, double* Jse,
                                           double* grad, double* grad_se, int* diverged,
                                           const double* u, int iteration, dsoError* err);

// ---------------------------------------------------------------------------------------------
// dso run, one iteration at a time

// An optimization run of a fit or chain task (opaque).
typedef struct dsoTaskRun_ dsoTaskRun;

// Creates the optimizer `dso run` uses for task: Levenberg-Marquardt (fit tasks, the "fit"
// settings) or the trainer (chain tasks, the "train" settings). Estimator tasks and tasks with
// nothing to optimize are DSO_ERR_INPUT. The task is borrowed and must outlive the run.
DSO_API dsoTaskRun* dso_task_run_create(const dsoTask* task, dsoError* err);

// Frees a run; NULL is a no-op.
DSO_API void dso_task_run_free(dsoTaskRun* run);

// Iterations the task's settings ask for (fit.max_iter or train.max_iter), or -1 with err set.
DSO_API int dso_task_run_max_iter(const dsoTaskRun* run, dsoError* err);

// One iteration from u (ntheta, updated in place). *cost (may be NULL): for fits the cost
// 0.5 |r|² at the new u; for chains the objective J + data-driven costs + L_prior measured on
// the batch at the u the step started from (train.h). *done (may be NULL): 1 when a fit has
// converged; always 0 for chains.
DSO_API dsoStatus dso_task_run_step(dsoTaskRun* run, double* u, double* cost, int* done,
                                    dsoError* err);

#ifdef __cplusplus
}
#endif
#endif  // DSO_TASK_H
