// Classical state-estimation baselines: the steady-state Kalman gain of a discrete linear system
// (discrete algebraic Riccati equation by a structure-preserving doubling algorithm, LAPACKE
// solves) and an extended Kalman filter for a MuJoCo model, with A and B from mjd_transitionFD
// (dso_deriv_step) and C from finite differences of the sensors (dso_deriv_sensors).
//
// Linear system: x' = A x + w, y = C x + v, w ~ N(0, Q), v ~ N(0, R). The predictor-corrector
// x̃' = A x (+ inputs), x' = x̃' + K (y' − C x̃') has the steady-state gain K = P Cᵀ (C P Cᵀ + R)⁻¹,
// P the predicted (a priori) error covariance that solves
//   P = A P Aᵀ − A P Cᵀ (C P Cᵀ + R)⁻¹ C P Aᵀ + Q.
#ifndef DSO_KALMAN_H
#define DSO_KALMAN_H

#include <mujoco/mujoco.h>

#include "mujoco/dataset.h"
#include "mujoco/deriv.h"
#include "dso/error.h"
#include "mujoco/sim.h"
#include "mujoco/theta.h"

#ifdef __cplusplus
extern "C" {
#endif

// Solves the filtering Riccati equation above for P (n x n, row-major, symmetric positive
// semidefinite) by doubling. A (n x n), C (m x n), Q (n x n) symmetric positive semidefinite,
// R (m x m) symmetric positive definite. iters (may be NULL) receives the doubling steps used
// (each squares the horizon). Fails with DSO_ERR_INPUT on bad sizes or an R that is not positive
// definite, DSO_ERR_NUMERIC when the iteration does not converge (e.g. undetectable unstable modes).
dsoStatus dso_kalman_dare(double* P, int* iters, const double* A, const double* C, const double* Q,
                          const double* R, int n, int m, dsoError* err);

// Gain K = P Cᵀ (C P Cᵀ + R)⁻¹ (n x m, row-major) of the corrector x = x̃ + K (y − C x̃), from the
// predicted covariance P (n x n), C (m x n) and R (m x m).
dsoStatus dso_kalman_gain(double* K, const double* P, const double* C, const double* R, int n,
                          int m, dsoError* err);

// Steady-state Kalman gain K (n x m) and, when P is not NULL, the predicted covariance P (n x n):
// dso_kalman_dare followed by dso_kalman_gain.
dsoStatus dso_kalman_steady(double* K, double* P, const double* A, const double* C,
                            const double* Q, const double* R, int n, int m, dsoError* err);

// Which episodes of a dataset a pass over it uses.
typedef enum dsoEpisodeSelect_ {
  DSO_SELECT_TRAIN = 0,    // episodes with validation == 0
  DSO_SELECT_VALIDATION,   // episodes with validation == 1
  DSO_SELECT_ALL
} dsoEpisodeSelect;

// Writes the recorded state of episode ep at sample t into x (nx = nq + nv + na; act is set to 0,
// datasets do not record it).
void dso_episode_state(double* x, const mjModel* m, const dsoEpisode* ep, int t);

// 1 if episode ep belongs to select, else 0.
int dso_episode_selected(const dsoEpisode* ep, dsoEpisodeSelect select);

// Extended Kalman filter for a MuJoCo model. The state error lives in the tangent space
// (ndx = 2*nv + na); the process noise is the action noise, Q = B diag(ctrl_std²) Bᵀ + diag(q_extra),
// the measurement noise R = diag(sensor_std²) over the measurement y = dso_sim_measure.
typedef struct dsoEkf_ {
  int nx, ndx, nu, ns;   // state, tangent, control and sensor sizes
  dsoSim* sim;           // model the filter believes (owned)
  dsoTheta* own_theta;   // empty layout made when the caller gave none (owned), else NULL
  const dsoTheta* theta; // layout the model was written with (borrowed, or own_theta)
  dsoDeriv* dv;          // derivative work (owned)
  double* x;             // (nx) current estimate
  double* P;             // (ndx x ndx) current error covariance
  double* ctrl_var;      // (nu) action noise variances
  double* sensor_var;    // (ns) sensor noise variances, > 0
  double* q_extra;       // (ndx) extra diagonal process noise (default 0)
  double* A;             // (ndx x ndx) work
  double* B;             // (ndx x nu) work
  double* H;             // (ns x ndx) work
  double* S;             // (ns x ns) work
  double* K;             // (ndx x ns) work
  double* T1;            // (ndx x ndx) work
  double* T2;            // (ndx x ndx) work
  double* e;             // (ns) work: innovation
  double* yh;            // (ns) work: predicted measurement
  double* dx;            // (ndx) work
  int* idx;              // (ns) work: channels used
} dsoEkf;

// Creates an EKF for base with θ = u written into its model (theta and u may both be NULL for the
// base model as it is; theta is borrowed and must outlive the filter). ctrl_std (nu, >= 0) is the
// action noise σ, sensor_std (ns, > 0) the measurement noise σ. Returns NULL with err set.
dsoEkf* dso_ekf_create(const mjModel* base, const dsoTheta* theta, const double* u,
                       const double* ctrl_std, const double* sensor_std, dsoError* err);

// Frees the filter; NULL is a no-op.
void dso_ekf_free(dsoEkf* ekf);

// Sets the estimate to x0 (nx) and the covariance to P0 (ndx x ndx; NULL: zero).
void dso_ekf_reset(dsoEkf* ekf, const double* x0, const double* P0);

// One predict-correct step: x̃ = f(x, ctrl) with P = A P Aᵀ + Q, then the correction with the
// measurement y (ns) of the predicted state, using the channels where mask (ns, NULL: all) is
// nonzero. innov (ns, may be NULL) receives y − h(x̃) (0 on masked channels). MuJoCo computes
// h(x̃) with ctrl applied, as dso_simulate records it.
dsoStatus dso_ekf_step(dsoEkf* ekf, const double* ctrl, const double* y, const int* mask,
                       double* innov, dsoError* err);

// Runs the filter over the selected episodes of ds, each from its first recorded state with P0 = 0,
// and returns in rms the RMS over steps t >= 1 and tangent components of the error between the
// estimate and the recorded state (qpos, qvel; act is taken as 0). count (may be NULL) receives the
// number of steps scored. Sensors the dataset lacks are not used.
dsoStatus dso_ekf_state_rms(double* rms, long* count, dsoEkf* ekf, const dsoDataset* ds,
                            dsoEpisodeSelect select, dsoError* err);

#ifdef __cplusplus
}
#endif
#endif  // DSO_KALMAN_H
