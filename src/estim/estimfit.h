// Learning a predictor-corrector state estimator from recorded data (paper eq. 99, estim cost of
// section 5.1), with the physics learned jointly:
//   x̃_{t+1} = f(x̂_t, ā_t, θ_f)                 prediction with the recorded control, ε = 0
//   e_{t+1} = ȳ_{t+1} − h(x̃_{t+1}, θ_h)         innovation: ȳ scored before the corrector sees it
//   x̂_{t+1} = x̃_{t+1} ⊕ g(x̃_{t+1}, e_{t+1}; θ_c)  corrector.h (gain or mlp)
// Each episode starts from its first recorded state. Residuals, cost 0.5 |r|²:
//   estim  e_{t+1,i} / σ_i for every recorded sensor value i of every step of the training episodes
//          (the −ln p_ξ of a Gaussian sensor noise up to a constant),
//   prior  (v − mean) / std for every fitted entry with a prior (L_prior), and u / weight_std for
//          every entry of an mlp corrector's network (a zero-mean prior against overfitting).
// Fitted: the non-fixed physics entries (θ_f), the non-fixed sensor gain/offset entries (θ_h) and
// every corrector entry (θ_c); any other non-fixed entry is an error (mark it fixed).
//
// The Jacobian of the residuals is taken in forward mode along the estimator's trajectory:
// S_t = ∂x̂_t/∂u (ndx x p) propagates as
//   S̃ = A S_t + F,   ∂e/∂u = −(H S̃ + ∂h/∂u),   S_{t+1} = S̃ + G_x S̃ + G_e ∂e/∂u + G_θ
// with A = ∂f/∂x and F = ∂f/∂u_f from dso_deriv_step, H and ∂h/∂u_f from dso_deriv_sensors
// (finite differences of MuJoCo), and G the corrector's exact Jacobians; ⊕ is taken as additive
// in the tangent space (exact for hinge and slide joints). One pass costs about
// 2 (ndx + nu + n_f) + 2 ndx + 2 n_f MuJoCo steps or forward passes per data step, independent of
// the number of corrector entries, where central differences need 2 p passes over the data.
// Levenberg-Marquardt then steps on u with damping λ; one call of dso_estimfit_step is one
// iteration and depends on (u, λ) only, so a run resumed from a checkpoint is bit-identical.
#ifndef DSO_ESTIMFIT_H
#define DSO_ESTIMFIT_H

#include <mujoco/mujoco.h>

#include "estim/corrector.h"
#include "mujoco/dataset.h"
#include "mujoco/deriv.h"
#include "dso/error.h"
#include "estim/kalman.h"
#include "mujoco/sim.h"
#include "mujoco/theta.h"

#ifdef __cplusplus
extern "C" {
#endif

// Settings (OSQP style): dso_estimfit_settings_default (or read a task's "estimator" section:
// config/estimator_section.h; a loaded task holds them, task.h), then change fields; free the
// arrays with dso_estimfit_settings_free.
typedef struct dsoEstimFitSettings_ {
  dsoCorrectorSettings corrector;  // kind and network (default: gain)
  int max_iter;       // LM iterations of the caller's loop (default 30)
  double lambda0;     // initial LM damping, relative to diag(JᵀJ) (default 1e-3)
  double tol;         // converged when an accepted step lowers the cost by less than tol * cost
                      // (default 1e-10)
  double weight_std;  // mlp: std of a zero-mean Gaussian prior on the network's entries, a
                      // residual u / weight_std each (L_prior against overfitting); 0: none
                      // (default 0.1)
  int compare_ekf;    // 1: the run reports an EKF on the same validation episodes (default 1)
  int ns, nu;         // sizes of the arrays below (the model's nsensordata and nu)
  double* sensor_std; // (ns) σ_i of the innovations; NaN: the θ entry sensor_noise.<sensor>.std
                      // (its value at the start), which then must exist for recorded sensors
  double* process_std;// (nu) EKF action-noise σ per actuator; NaN: the θ entry
                      // action_noise.<actuator>.std when the data does not record that control
                      // (an unmeasured disturbance), else 0 (a recorded control is known)
} dsoEstimFitSettings;

// Fills s with the defaults for model m (arrays of NaN). Fails only when out of memory.
dsoStatus dso_estimfit_settings_default(dsoEstimFitSettings* s, const mjModel* m, dsoError* err);

// Frees the arrays of s (s may be NULL).
void dso_estimfit_settings_free(dsoEstimFitSettings* s);

// Progress of a fit.
typedef struct dsoEstimFitReport_ {
  double cost;        // 0.5 |r|²: estim + prior
  double estim;       // 0.5 Σ (e/σ)² over the training episodes
  double prior;       // L_prior
  double grad_norm;   // |Jᵀ r| at the start of the iteration
  double lambda;      // damping after the iteration
  long steps;         // estimator steps (MuJoCo steps along the data) of this call
  long nres;          // innovation residuals
} dsoEstimFitReport;

// A fit (opaque; estimfit.c). Read it through the accessors below.
typedef struct dsoEstimFit_ dsoEstimFit;

// Creates a fit of an estimator for base (borrowed) on the episodes of ds (borrowed; training
// episodes: validation == 0, or all when every episode is for validation). task_theta is the
// task's layout (copied); its non-fixed entries must be physics or sensor gain/offset entries.
// settings may be NULL for the defaults. Returns NULL with err set on bad input.
dsoEstimFit* dso_estimfit_create(const mjModel* base, const dsoTheta* task_theta,
                                 const dsoDataset* ds, const dsoEstimFitSettings* settings,
                                 dsoError* err);

// Frees the fit; NULL is a no-op.
void dso_estimfit_free(dsoEstimFit* f);

// Initial u (theta->n): the task entries' init, the corrector's initializer. u0_task (the task
// layout's n values, may be NULL for their init) overrides the task entries.
void dso_estimfit_init(const dsoEstimFit* f, double* u, const double* u0_task);

// Cost at u (and its parts in rep, which may be NULL). A step that diverges is DSO_ERR_NUMERIC.
dsoStatus dso_estimfit_evaluate(dsoEstimFit* f, const double* u, dsoEstimFitReport* rep,
                                dsoError* err);

// Residuals r (nres + nprior; may be NULL) and, when jac is not NULL, their Jacobian in the
// fitted coordinates (nres + nprior x p, row-major) at u by forward mode. rep may be NULL.
dsoStatus dso_estimfit_residuals(dsoEstimFit* f, double* r, double* jac, const double* u,
                                 dsoEstimFitReport* rep, dsoError* err);

// One Levenberg-Marquardt iteration from u (updated in place when a step is accepted) with the
// fit's damping (dso_estimfit_lambda; dso_estimfit_set_lambda to resume). done is set to 1 when no damping gives descent or
// the decrease is below tol.
dsoStatus dso_estimfit_step(dsoEstimFit* f, double* u, dsoEstimFitReport* rep, int* done,
                            dsoError* err);

// Iterates dso_estimfit_step from u until it reports done or after max_iter iterations (< 0: the
// settings' max_iter). iters and rep (the last iteration's report) may be NULL.
dsoStatus dso_estimfit_learn(dsoEstimFit* f, double* u, int max_iter, int* iters,
                             dsoEstimFitReport* rep, dsoError* err);

// A copy of layout theta with every entry held ("fixed") at its natural value at u (theta->n):
// a layout for an estimator that knows those values. Free with dso_theta_free; NULL with err set.
dsoTheta* dso_estimfit_hold(const dsoTheta* theta, const double* u, dsoError* err);

// RMS over steps t >= 1 and recorded tangent components of x̂_t against the recorded state, on
// the selected episodes, at u. count (may be NULL) receives the steps.
dsoStatus dso_estimfit_state_rms(double* rms, long* count, dsoEstimFit* f, const double* u,
                                 dsoEpisodeSelect select, dsoError* err);

// The same RMS for an EKF that believes θ = u (physics and sensor entries; the corrector is
// ignored), with the settings' sensor and process noise.
dsoStatus dso_estimfit_ekf_rms(double* rms, dsoEstimFit* f, const double* u,
                               dsoEpisodeSelect select, dsoError* err);

// Accessors (f must not be NULL).
// The fit's layout: the task's entries, then the corrector's (owned by f). Its n is the size of
// every u above (dso_estimfit_n).
const dsoTheta* dso_estimfit_theta(const dsoEstimFit* f);
int dso_estimfit_n(const dsoEstimFit* f);

// Index in θ of the first corrector entry (= the task layout's n); the corrector's entries follow.
int dso_estimfit_corrector_start(const dsoEstimFit* f);

// The corrector (owned by f): kind, entries np, gain entries nK (corrector.h).
const dsoCorrector* dso_estimfit_corrector(const dsoEstimFit* f);

// The settings in use (owned by f): a copy of those given to dso_estimfit_create (or the
// defaults) with no NaN left in sensor_std and process_std (resolved from the θ entries' initial
// values as described above; 1 for an unrecorded sensor, 0 for a process σ without an entry).
const dsoEstimFitSettings* dso_estimfit_settings(const dsoEstimFit* f);

// Fitted entries p (the Jacobian's columns) and their indices in θ, (p).
int dso_estimfit_nfitted(const dsoEstimFit* f);
const int* dso_estimfit_fitted(const dsoEstimFit* f);

// Residual counts: innovation residuals over the training episodes, and prior residuals; the
// residual vector of dso_estimfit_residuals has nres + nprior rows.
long dso_estimfit_nres(const dsoEstimFit* f);
int dso_estimfit_nprior(const dsoEstimFit* f);

// The Levenberg-Marquardt damping the next dso_estimfit_step starts from (settings' lambda0 at
// creation), and its setter (to resume a run): lambda must be finite and > 0, else
// DSO_ERR_INPUT and the damping is kept.
double dso_estimfit_lambda(const dsoEstimFit* f);
dsoStatus dso_estimfit_set_lambda(dsoEstimFit* f, double lambda, dsoError* err);

#ifdef __cplusplus
}
#endif
#endif  // DSO_ESTIMFIT_H
