// Data-driven least-squares fits of θ (paper section 5.1): system identification by multiple
// shooting (L_sysid over windows of W steps, each restarted from the recorded state), sensor
// calibration (L_calib: recorded sensors against gain ⊙ sensordata(x̄) + offset at the recorded
// state x̄), and the Gaussian prior (L_prior), all as residuals r(u) with cost 0.5 |r|^2;
// Levenberg-Marquardt on u with the parameter covariance s² (JᵀJ)⁻¹.
//
// Residuals, in this order:
//   sysid   for every training episode, windows start at samples 0, W, 2W, ... from the recorded
//           (qpos, qvel) (qpos entries the dataset lacks: the model's qpos0; qvel lacking: central
//           difference of the recorded qpos when qpos is recorded, else 0) and run with the recorded
//           ctrl (lacking: 0); after each step j, (simulated - recorded) / qpos_scale for every
//           recorded qpos entry and / qvel_scale for every recorded qvel entry of sample start + j.
//   calib   (settings.sensors and a recorded sensor column) for every training sample, with the
//           state and ctrl set to the recorded ones and mj_forward:
//           (recorded - (gain ⊙ sensordata + offset)) / std per recorded sensor column, std the
//           θ sensor-noise deviation of that column when θ has one, else 1.
//   prior   (v - mean) / std for every fitted entry with a prior.
// Fitted entries are the non-fixed physics entries and the non-fixed sensor gain/offset entries of
// recorded sensor columns when settings.sensors is set; all others (policy, noise, sensors of
// unrecorded columns) are held at their value in u. A window that diverges (MuJoCo error or a
// non-finite state) gives residual DSO_FIT_DIVERGED for each of its remaining entries and is
// counted; NaN never reaches u.
#ifndef DSO_FIT_H
#define DSO_FIT_H

#include <mujoco/mujoco.h>

#include "dataset.h"
#include "error.h"
#include "theta.h"

#ifdef __cplusplus
extern "C" {
#endif

// Residual given to every remaining step of a diverged window (finite, large).
#define DSO_FIT_DIVERGED 1e3

// Fit settings (OSQP style): fill with dso_fit_settings_default or _from_json, then change fields.
typedef struct dsoFitSettings_ {
  int window;          // steps per shooting window W (default 100)
  int max_iter;        // LM iterations (default 50); for the caller's loop, dso_fit_step ignores it
  double tol;          // stop when the relative cost decrease of an accepted step is below tol
                       // (default 1e-10) or the step is tiny
  double lambda0;      // initial LM damping (default 1e-3)
  double qpos_scale;   // residual = (simulated - recorded) / scale per qpos entry (default 0.01,
                       // i.e. 1 cm / 0.01 rad)
  double qvel_scale;   // same for qvel (default 0.1); an entry absent from the dataset (mask)
                       // gives no residual
  int sensors;         // 1: also fit recorded sensor columns (calibration) (default 1; it has an
                       // effect only when the dataset has sensor columns)
  int threads;         // windows in parallel, bitwise identical for any count (default 2)
} dsoFitSettings;

// Fills s with the defaults listed above.
void dso_fit_settings_default(dsoFitSettings* s);

// Reads a task's "fit" object (JSON text) {"window": .., "max_iter": .., "tol": .., "lambda0": ..,
// "qpos_scale": .., "qvel_scale": .., "sensors": true, "threads": ..} into s, which is first set
// to the defaults. json_text may be NULL (defaults). Unknown keys are errors listing the valid
// keys; errors name file and the JSON path "fit.x". On failure s holds the defaults.
dsoStatus dso_fit_settings_from_json(dsoFitSettings* s, const char* json_text, const char* file,
                                     dsoError* err);

// A fit (opaque): model copies per thread, the windows, the residual and Jacobian storage.
typedef struct dsoFit_ dsoFit;

// Creates a fit of the entries of theta described above to the non-validation episodes of data
// (validation episodes are kept for dso_fit_validation; with no validation episode all episodes
// are fitted). m, theta and data are borrowed and must outlive the fit; s may be NULL for the
// defaults. data must be sampled at the model timestep (data->dt == m->opt.timestep). Returns NULL
// with err on failure (no episodes, window < 1, wrong sizes or dt, nothing to fit, ...).
dsoFit* dso_fit_create(const mjModel* m, const dsoTheta* theta, const dsoDataset* data,
                       const dsoFitSettings* s, dsoError* err);

// Frees a fit; NULL is a no-op.
void dso_fit_free(dsoFit* f);

// Progress of a fit.
typedef struct dsoFitReport_ {
  int iter;            // accepted iterations so far
  double cost;         // 0.5 |r|^2 at u (all residuals incl. prior)
  double cost_sysid, cost_calib, cost_prior;  // the parts
  double grad_norm;    // |J^T r| over fitted entries, at the last Jacobian (0 before the first)
  double lambda;       // damping for the next step
  long steps;          // mj_step calls so far (for steps/s)
  int nresidual;       // residuals (sysid + calib + prior)
  int nfitted;         // fitted entries
  long diverged;       // windows that diverged, over all evaluations so far
} dsoFitReport;

// Evaluates the cost at u (theta->n, unconstrained) without moving; fills rep (may be NULL).
dsoStatus dso_fit_evaluate(dsoFit* f, const double* u, dsoFitReport* rep, dsoError* err);

// One Levenberg-Marquardt iteration from u (theta->n, unconstrained coordinates): J by central
// finite differences of the residuals in u, then damped Gauss-Newton steps
// (JᵀJ + λ diag(JᵀJ)) δ = -Jᵀr with λ growing tenfold until the cost decreases (then λ shrinks
// tenfold) or gives up. On acceptance u is updated in place and projected onto the entries'
// bounds. *done is set to 1 when converged (relative decrease below tol, tiny step or gradient)
// or when no decrease is possible, else 0. rep (may be NULL) describes the new u. Deterministic:
// the same u and λ give bitwise the same result for any thread count.
dsoStatus dso_fit_step(dsoFit* f, double* u, dsoFitReport* rep, int* done, dsoError* err);

// Damping λ used by the next step (to save in a checkpoint).
double dso_fit_lambda(const dsoFit* f);

// Sets the damping λ of the next step (to restore a checkpoint); non-positive values are ignored.
void dso_fit_set_lambda(dsoFit* f, double lambda);

// Covariance of the fitted entries at u: cov (theta->n x theta->n, row-major, unconstrained
// coordinates, zero rows and columns for held entries) = s² (JᵀJ)⁻¹ with s² = 2 cost / (m - p),
// m residuals and p fitted entries, and se (theta->n) the standard errors of the natural values
// (delta method through the transform; 0 for held entries). Either output may be NULL. Returns
// DSO_ERR_NUMERIC naming the unidentifiable entries when JᵀJ is singular, DSO_ERR_INPUT when
// m <= p.
dsoStatus dso_fit_covariance(dsoFit* f, const double* u, double* cov, double* se, dsoError* err);

// Number of episodes dso_fit_validation reports on: the validation episodes, or all episodes when
// the dataset has none.
int dso_fit_nvalidation(const dsoFit* f);

// Validation: simulates every validation episode (all episodes when there is none) from its first
// sample with the recorded controls, open loop, and writes the RMS error of qpos entry qpos_index
// per episode into rms (nrms >= dso_fit_nvalidation, may be NULL) and the RMS over all their
// samples into *total (may be NULL). A diverged episode is an error (DSO_ERR_NUMERIC).
dsoStatus dso_fit_validation(dsoFit* f, const double* u, int qpos_index, double* rms, int nrms,
                             double* total, dsoError* err);

// Episode (index into the dataset) of validation episode v, 0 <= v < dso_fit_nvalidation, in the
// order dso_fit_validation reports them; -1 outside that range.
int dso_fit_validation_episode(const dsoFit* f, int v);

// Open-loop simulated trajectory of episode (index into the dataset, any episode) with θ = u
// (theta->n, unconstrained), by the machinery of dso_fit_validation: started from the episode's
// first recorded sample and driven by the recorded controls. qpos (T x nq, row-major, T the
// episode's samples; may be NULL) receives the simulated positions, row 0 the recorded start. A
// diverged step is DSO_ERR_NUMERIC naming the episode and sample.
dsoStatus dso_fit_simulate(dsoFit* f, const double* u, int episode, double* qpos,
                           dsoError* err);

#ifdef __cplusplus
}
#endif
#endif  // DSO_FIT_H
