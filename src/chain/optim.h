// Optimizers of the DSO objective (section 4): SGD, Adam, the natural gradient (eq. 72 metric,
// damped solve) and Newton steps on the surrogate, i.e. DSO Chain Iteration (eq. 63): α* = argmin
// S̃(θ,α) + ½μ|α|² by damped Newton iterations with the surrogate gradient and Hessian (eqs. 68,
// 76; optional PPO-style clipping), then θ <- θ + κα*. Settings follow the OSQP pattern: fill the
// struct with dso_optim_settings_default, change fields, pass it to dso_optim_create.
#ifndef DSO_OPTIM_H
#define DSO_OPTIM_H

#include "chain/baseline.h"
#include "dso/error.h"
#include "chain/grad.h"
#include "chain/rollout.h"

#ifdef __cplusplus
extern "C" {
#endif

// Optimizer kinds.
typedef enum dsoOptKind_ {
  DSO_OPT_SGD = 0,   // θ <- θ - lr_k g
  DSO_OPT_ADAM,      // Adam on g
  DSO_OPT_NATURAL,   // θ <- θ - lr_k (F + damping I)⁻¹ g
  DSO_OPT_NEWTON     // chain iteration (eq. 63) with Newton steps on the surrogate
} dsoOptKind;

// Optimizer settings.
typedef struct dsoOptimSettings_ {
  dsoOptKind kind;    // default DSO_OPT_ADAM
  double lr;          // step size of SGD, Adam, natural gradient (default 0.1)
  double decay;       // lr_k = lr / (1 + decay k) (default 0)
  double beta1;       // Adam first-moment decay (default 0.9)
  double beta2;       // Adam second-moment decay (default 0.999)
  double eps;         // Adam denominator offset (default 1e-8)
  double damping;     // natural gradient: Tikhonov damping of F; Newton: initial LM damping
                      // (default 1e-3)
  double kappa;       // chain iteration step fraction κ in (0, 1] (default 1)
  double prox;        // chain iteration proximal weight μ (default 0.1)
  double clip;        // chain iteration PPO clipping ε (0 = none; default 0)
  int newton_iters;   // inner Newton iterations per chain iteration (default 10)
  double max_step;    // cap on the 2-norm of each step (0 = none; default 0)
} dsoOptimSettings;

// Fills s with the defaults listed above.
void dso_optim_settings_default(dsoOptimSettings* s);

// Optimizer state. Fields are read-only for callers.
typedef struct dsoOptim_ {
  dsoOptimSettings set;
  int n;
  long iter;          // steps taken
  long refused;       // steps refused for a non-finite gradient, Adam moment, step or new θ
  double *m, *v;      // Adam moments (n)
  double *g, *d, *F, *H, *work, *alpha, *trial;  // scratch
} dsoOptim;

// Creates an optimizer for n parameters; *out is NULL on failure.
dsoStatus dso_optim_create(dsoOptim** out, int n, const dsoOptimSettings* set, dsoError* err);

// Frees opt (NULL is a no-op).
void dso_optim_free(dsoOptim* opt);

// One optimization step from the batch in ro, sampled at theta (n), prepared by dso_grad_prepare:
// updates theta in place. gr needs per-rollout matrices for the natural and Newton kinds, and the
// chain second derivatives for Newton. A step with a non-finite gradient, Adam moment, step or new
// θ is refused with DSO_ERR_NUMERIC and counted (opt->refused); θ and the optimizer state (the
// moments, the step count) are then unchanged.
dsoStatus dso_optim_step(dsoOptim* opt, double* theta, dsoGrad* gr, dsoRollout* ro, dsoError* err);

// Monitor called after each iteration with the new θ; return nonzero to stop.
typedef int (*dsoOptimMonitor)(void* ctx, long iter, const double* theta, const dsoRollout* ro);

// Runs up to maxiter iterations of: sample at θ (iteration key = iteration index), prepare with the
// baseline fitted on earlier batches (bl may be NULL), step, then refit the baseline on this batch.
// Returns the number of iterations done through *iters (may be NULL).
dsoStatus dso_optim_run(long* iters, dsoOptim* opt, double* theta, dsoRollout* ro, dsoGrad* gr,
                        dsoBaseline* bl, long maxiter, dsoOptimMonitor monitor, void* ctx,
                        dsoError* err);

#ifdef __cplusplus
}
#endif
#endif  // DSO_OPTIM_H
