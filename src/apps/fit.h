// Data-driven least-squares fits of θ (paper section 5.1): system identification by multiple
// shooting (L_sysid over windows of W steps, each restarted from the recorded state), sensor
// calibration (L_calib: recorded sensors against gain ⊙ sensordata(x̄) + offset at the recorded
// state x̄), and the Gaussian prior (L_prior), all as residuals r(u) with cost 0.5 |r|^2;
// bound-aware Levenberg-Marquardt in the natural values, and standard errors either classic,
// s² (JᵀJ)⁻¹, or robust to residuals correlated within a shooting window (cluster sandwich and
// delete-one-window jackknife over the windows).
//
// Bounds. The steps move the natural values v inside closed effective bounds: an entry's own
// bounds, and for an open end of its transform's domain (0 under the log transform, both ends of
// the logistic one) a floor DSO_FIT_FLOOR of the initial value (log) or of the range (logistic)
// inside it, so that u stays finite. An entry on such a bound "is at a bound": a step whose
// gradient pushes it outwards holds it there (the other entries are solved for without it), and
// its standard error is not reported as if it were free.
//
// Inverse dynamics. With settings.invdyn set (a task's "fit": {"inverse_dynamics": {...}}), the
// dynamics residuals are the torque residuals of invdyn.h instead of multiple shooting: no
// shooting windows are made and the "sysid" slice, cost_sysid included, holds the torque
// residuals (progress labels call it "invdyn"); calibration and prior are unchanged. Their
// robust standard errors take the samples of one episode within 0.2 s (all dofs of them) as one
// cluster, so that the errors the zero-phase filter spreads over neighbouring samples stay
// within a cluster. Validation and trajectories still simulate open loop.
//
// Residuals, in this order:
//   sysid   (or the torque residuals of invdyn.h, see above)
//           for every training episode, windows start at samples 0, W, 2W, ... from the recorded
//           (qpos, qvel) (qpos entries the dataset lacks: the model's qpos0; qvel lacking: the
//           backward difference (q_t - q_t-1) / dt of the recorded qpos under the Euler and
//           implicit integrators, exact for their update q_t+1 = q_t + dt v_t+1 (forward at the
//           first sample), the central difference under RK4; 0 without qpos) and run with the
//           recorded ctrl (lacking: 0); after each step j, (simulated - recorded) / qpos_scale
//           for every recorded qpos entry and / qvel_scale for every recorded qvel entry of
//           sample start + j.
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

#include "mujoco/dataset.h"
#include "dso/error.h"
#include "apps/invdyn.h"
#include "mujoco/theta.h"

#ifdef __cplusplus
extern "C" {
#endif

// Residual given to every remaining step of a diverged window (finite, large).
#define DSO_FIT_DIVERGED 1e3

// An open end of a natural domain (0 under the log transform, both ends of the logistic one) is
// approached no closer than this fraction of the initial value (log) or of the range (logistic);
// there the entry is at its bound.
#define DSO_FIT_FLOOR 1e-12

// Finite differences for the Jacobian (dsoFitSettings.jacobian).
#define DSO_FIT_JACOBIAN_FORWARD 0  // one residual evaluation per fitted entry
#define DSO_FIT_JACOBIAN_CENTRAL 1  // two, half the truncation error

// Most threads a fit runs (dsoFitSettings.threads).
#define DSO_FIT_MAX_THREADS 256

// Fit settings (OSQP style): fill with dso_fit_settings_default (or read a task's "fit" section:
// config/fit_section.h; a loaded task holds them, task.h), then change fields.
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
  int jacobian;        // DSO_FIT_JACOBIAN_FORWARD (default) or _CENTRAL; JSON "forward" /
                       // "central"
  const dsoInvdynSettings* invdyn;  // inverse-dynamics settings (borrowed until dso_fit_create
                       // returns, which copies them): the dynamics residuals are the torque
                       // residuals of invdyn.h; NULL (default): multiple shooting
} dsoFitSettings;

// Fills s with the defaults listed above.
void dso_fit_settings_default(dsoFitSettings* s);

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

// Why dso_fit_step set *done (dsoFitReport.stop).
typedef enum dsoFitStop_ {
  DSO_FIT_RUNNING = 0,        // not done
  DSO_FIT_CONVERGED,          // relative decrease below tol, a tiny step, or no free gradient
  DSO_FIT_STALLED_AT_BOUND,   // DSO_FIT_STALL_STEPS accepted steps in a row each lowered the cost
                              // by less than 1e-6 of it with an entry at a bound
                              // (dso_fit_at_bound names them)
  DSO_FIT_NO_DECREASE         // no damping gave a lower cost
} dsoFitStop;

// Accepted steps in a row that each lower the cost by less than 1e-6 of it, with an entry at a
// bound, after which dso_fit_step stops (DSO_FIT_STALLED_AT_BOUND).
#define DSO_FIT_STALL_STEPS 3

// Progress of a fit.
typedef struct dsoFitReport_ {
  int iter;            // accepted iterations so far
  double cost;         // 0.5 |r|^2 at u (all residuals incl. prior)
  double cost_sysid, cost_calib, cost_prior;  // the parts (cost_sysid: the torque residuals
                                              // under settings.invdyn)
  double grad_norm;    // |J^T r| over fitted entries, at the last Jacobian (0 before the first)
  double lambda;       // damping for the next step
  long steps;          // mj_step calls so far (inverse-dynamics evaluations under
                       // settings.invdyn) (for steps/s), except those of recomputing the
                       // residuals at the u a step starts from (evaluated before, by the last
                       // step, dso_fit_evaluate or the run a checkpoint resumes)
  int nresidual;       // residuals (sysid or invdyn + calib + prior)
  int nfitted;         // fitted entries
  long diverged;       // windows that diverged, over all evaluations so far
  int nbound;          // fitted entries at a bound at u (see dso_fit_at_bound)
  int stop;            // dsoFitStop of the last dso_fit_step (DSO_FIT_RUNNING otherwise)
} dsoFitReport;

// Evaluates the cost at u (theta->n, unconstrained) without moving; fills rep (may be NULL).
// A non-finite residual or cost (e.g. a prior whose std underflows) is DSO_ERR_NUMERIC naming
// the entry, never a report.
dsoStatus dso_fit_evaluate(dsoFit* f, const double* u, dsoFitReport* rep, dsoError* err);

// One Levenberg-Marquardt iteration from u (theta->n, unconstrained coordinates), in the natural
// values v of the fitted entries: J = ∂r/∂v by forward or central finite differences
// (settings.jacobian; one-sided inwards at a bound), then damped Gauss-Newton steps
// (JᵀJ + λ diag(JᵀJ)) δ = -Jᵀr (Marquardt's scaling) over the entries not held at a bound (see
// the top of this file), every entry that a step would carry past its bound being moved onto it
// and the others solved for again. λ grows tenfold until the cost decreases (then it shrinks
// tenfold) or gives up above 1e16. On acceptance u is updated in place.
// *done is set to 1 with rep->stop saying why (dsoFitStop), else 0. rep (may be NULL) describes
// the new u. A non-finite cost or Jacobian at u is DSO_ERR_NUMERIC (a trial point with a
// non-finite cost is rejected); u never receives a non-finite value. Deterministic: the same u
// and λ give bitwise the same result for any thread count.
dsoStatus dso_fit_step(dsoFit* f, double* u, dsoFitReport* rep, int* done, dsoError* err);

// Number of residuals (dynamics + calib + prior, the order at the top of this file).
int dso_fit_nresidual(const dsoFit* f);

// Residuals r (dso_fit_nresidual) at u (theta->n, unconstrained). A non-finite u or cost is
// DSO_ERR_NUMERIC naming the entry or the cost.
dsoStatus dso_fit_residual(dsoFit* f, double* r, const double* u, dsoError* err);

// Jacobian J (dso_fit_nresidual x theta->n, row-major) d r / d u at u by the finite differences
// of dso_fit_step (settings.jacobian; one-sided inwards at a bound), zero columns for entries
// that are not fitted, and the residuals at u into r (may be NULL). Reused while u is the same.
// A non-finite residual or Jacobian is DSO_ERR_NUMERIC.
dsoStatus dso_fit_jacobian(dsoFit* f, double* J, double* r, const double* u, dsoError* err);

// Damping λ used by the next step (to save in a checkpoint).
double dso_fit_lambda(const dsoFit* f);

// Sets the damping λ of the next step (to restore a checkpoint); a value that is not finite and
// > 0 is DSO_ERR_INPUT and leaves λ unchanged.
dsoStatus dso_fit_set_lambda(dsoFit* f, double lambda, dsoError* err);

// Fitted entries at a bound at u (theta->n): flags (theta->n, may be NULL) receives -1 / +1 for
// an entry on its lower / upper effective bound (see the top of this file), 0 for the others
// (held entries included). Returns their count.
int dso_fit_at_bound(const dsoFit* f, const double* u, int* flags);

// Kinds of standard errors. The clusters c of the last two are the shooting windows and
// calibration blocks (the residuals within one may be correlated in any way; different ones are
// taken as independent) and each prior residual; G clusters, s_c = J_cᵀ r_c, A = JᵀJ,
// A_c = J_cᵀ J_c.
typedef enum dsoFitSe_ {
  DSO_FIT_SE_AUTO = 0,   // the jackknife with at least 2 windows per free entry, else iid
  DSO_FIT_SE_IID,        // s² A⁻¹: independent residuals of equal variance
  DSO_FIT_SE_SANDWICH,   // cluster sandwich A⁻¹ (Σ_c s_c s_cᵀ) A⁻¹ G / (G - 1)
  DSO_FIT_SE_JACKKNIFE   // delete-one-window jackknife Σ_c (A - A_c)⁻¹ s_c s_cᵀ (A - A_c)⁻¹
                         // (G - 1) / G (the sandwich with each window's leverage taken out;
                         // A⁻¹ s_c for a window without which A - A_c is singular). On 160
                         // seeds of AR(1) noise (tests/test_fit.c) its 95% intervals covered
                         // 94% (sandwich 91-94%, iid 24-33%)
} dsoFitSe;

// Clusters of the robust kinds from data: the shooting windows (or inverse-dynamics clusters of
// 0.2 s) and calibration blocks.
int dso_fit_nwindows(const dsoFit* f);

// The kind DSO_FIT_SE_AUTO resolves to at u: DSO_FIT_SE_JACKKNIFE when dso_fit_nwindows is at
// least twice the free fitted entries (not at a bound), else DSO_FIT_SE_IID.
dsoFitSe dso_fit_se_auto(const dsoFit* f, const double* u);

// Covariance of the fitted entries at u of the given kind, over the entries not at a bound
// (the others held): cov (theta->n x theta->n, row-major, unconstrained coordinates, zero rows
// and columns for held entries and entries at a bound) and se (theta->n) the standard errors of
// the natural values (0 for held entries, NaN for entries at a bound: no standard error as if
// they were free). The iid kind is s² (JᵀJ)⁻¹ with s² = 2 cost / (m - p), m residuals and p free
// entries. Either output may be NULL. The Jacobian is that of dso_fit_step's setting, reused
// between calls at the same u. Returns DSO_ERR_NUMERIC naming the unidentifiable entries when
// JᵀJ is singular, DSO_ERR_INPUT when m <= p or a robust kind has fewer than 2 clusters.
dsoStatus dso_fit_covariance_kind(dsoFit* f, const double* u, dsoFitSe kind, double* cov,
                                  double* se, dsoError* err);

// dso_fit_covariance_kind with DSO_FIT_SE_AUTO.
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
