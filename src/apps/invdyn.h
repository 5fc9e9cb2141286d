// Inverse-dynamics identification: a torque-residual block for the least-squares fit (fit.h).
//
// From recorded joint positions q̄ and controls ū (the applied torques), the zero-phase low-pass
// filter of filter.h gives q, q̇ = dq/dt and q̈ = d²q/dt² (central differences of the filtered
// q) at every sample, and MuJoCo's inverse dynamics (mj_inverse) gives the generalized force the
// model needs for that motion. The controls go through the same filter (filter_ctrl), as is
// usual in robot identification: torque content above the cutoff has no counterpart in the
// filtered accelerations. The residual of sample t and dof i is
//   r = (qfrc_actuator(ū_t, q_t; θ) + qfrc_applied(θ) - qfrc_inverse(q_t, q̇_t, q̈_t; θ))_i
//       / torque_scale_i,
// the recorded drive torque (the controls through the actuators' gear and gain in θ, clamped to
// ctrlrange as in simulation, plus the constant physics.<joint>.force entries of θ) minus the one
// the model predicts. It is linear in the standard inertial parameters (masses, first moments,
// inertias), in damping and armature: the classical identification of a robot arm from joint
// torques, here for any θ_f entry (paper section 5.1, a data-driven cost of θ_f; cost 0.5 |r|²).
//
// What mj_inverse computes (MuJoCo 2.2.2): qfrc_inverse = M(q) q̈ + c(q, q̇) - qfrc_passive -
// qfrc_constraint, with armature in M, damping and stiffness in qfrc_passive, and constraint
// forces (joint limits, frictionloss, contacts) from the analytical inverse of MuJoCo's soft
// constraints at the given q̈. For a dof with frictionloss F this is a smoothed Coulomb friction:
// the force is -clamp((q̈ + b q̇) / R, -F, F), b = 2 / (dmax timeconst) of the dof's solref and
// solimp (105 /s by default) and R the constraint's regularizer, i.e. ±F except within a narrow
// band around q̇ + q̈ / b = 0. It equals the forward dynamics exactly: a state, control and the q̈
// that mj_forward computes give back the control's qfrc_actuator to round-off (1e-13 N m on
// models/arm7.xml with every frictionloss active, tests/test_invdyn.c).
//
// Samples: every stride-th sample of each training episode (the non-validation episodes; all
// episodes when none is flagged), leaving out skip samples at each end, where the filtered
// accelerations are biased (filter.h). Residual order: episode, sample, dof (nv per sample). The
// residual of a dof slower than min_speed at a sample is held at 0 (with a zero Jacobian row).
//
// Jacobian in u (the unconstrained coordinates of theta.h): analytic for damping
// (∂r_i/∂d_i = -q̇_i / scale_i) and constant forces (1 / scale_i), times dv/du; central
// differences in u (step 1e-4 (1 + |u|)) through a private model copy (sim.h: θ written, mj_setConst
// where needed) for every other fitted entry. Fitted entries: the non-fixed physics entries of θ;
// every other column is zero.
#ifndef DSO_INVDYN_H
#define DSO_INVDYN_H

#include <mujoco/mujoco.h>

#include "mujoco/dataset.h"
#include "dso/error.h"
#include "mujoco/theta.h"

#ifdef __cplusplus
extern "C" {
#endif

// Residual given to a dof whose inverse dynamics is not finite (finite, large); such samples are
// counted (dsoInvdynInfo.bad).
#define DSO_INVDYN_BAD 1e3

// Most threads a dsoInvdyn runs.
#define DSO_INVDYN_MAX_THREADS 256

// Settings (OSQP style): dso_invdyn_settings_default (or read a task's "fit": {"inverse_dynamics":
// {...}}: config/fit_section.h; a loaded task holds them, task.h), then change fields; free the
// array with dso_invdyn_settings_free.
typedef struct dsoInvdynSettings_ {
  double cutoff;        // Hz, cutoff of the zero-phase Butterworth low-pass on q (default 10);
                        // 0: no filtering (derivatives of the recorded q as they are)
  int order;            // Butterworth order of each pass, 1..8 (default 4)
  int filter_ctrl;      // 1: the recorded controls go through the same filter as q, so that
                        // the measured and the predicted torque cover the same band (default 1)
  int ctrl_hold;        // 1: the control of sample t is held until sample t + 1 (zero-order
                        // hold, the convention of dso's datasets, simulate.h), so the torque
                        // that the central differences around sample t see is that of the mean
                        // of the controls of samples t - 1 and t (default 1); 0: the control of
                        // sample t acts at sample t
  int skip;             // samples left out at each end of every episode; -1: two periods of the
                        // cutoff (2 / (cutoff dt) samples; 1 without filtering) (default -1)
  int stride;           // use every stride-th sample (default 1)
  double min_speed;     // rad/s or m/s: the residual of a dof whose filtered speed |q̇_i| is below
                        // min_speed is 0 (left out) at that sample: near a velocity reversal the
                        // friction force jumps by 2 frictionloss within milliseconds, which the
                        // filtered accelerations cannot follow (default 0: keep all)
  int threads;          // samples in parallel, bitwise identical for any count (default 2)
  int nv;               // size of torque_scale (the model's nv)
  double* torque_scale; // (nv) residual = torque error / torque_scale per dof, N m or N, > 0
                        // (default 1)
} dsoInvdynSettings;

// Fills s with the defaults for model m (torque_scale allocated, all 1). Fails only when out of
// memory.
dsoStatus dso_invdyn_settings_default(dsoInvdynSettings* s, const mjModel* m, dsoError* err);

// Frees the array of s and sets it to NULL (s may be NULL).
void dso_invdyn_settings_free(dsoInvdynSettings* s);

// The residual block (opaque): filtered kinematics per episode, the sample list, per-thread
// model copies.
typedef struct dsoInvdyn_ dsoInvdyn;

// Creates the block for the entries of theta on the training episodes of data. m, theta and data
// are borrowed and must outlive the block; s may be NULL for the defaults (it is copied). The
// model must have only hinge and slide joints and no actuator activations (na = 0); the dataset
// must be made for m, record every qpos entry and have a uniform sample spacing (data->dt > 0,
// i.e. resampled; it need not equal the timestep); lacking ctrl columns count as 0. Every training
// episode needs at least 4 and at least 2 skip + 1 samples. Returns NULL with err naming what is
// wrong.
dsoInvdyn* dso_invdyn_create(const mjModel* m, const dsoTheta* theta, const dsoDataset* data,
                             const dsoInvdynSettings* s, dsoError* err);

// Frees the block; NULL is a no-op.
void dso_invdyn_free(dsoInvdyn* inv);

// Number of residuals (samples used x nv).
int dso_invdyn_nresidual(const dsoInvdyn* inv);

// 1 when entry i of theta is fitted (its Jacobian column may be non-zero), else 0.
int dso_invdyn_fitted(const dsoInvdyn* inv, int i);

// Counters and sizes.
typedef struct dsoInvdynInfo_ {
  int nresidual;   // residuals
  int nsample;     // samples used
  int nepisode;    // training episodes used
  int nfitted;     // fitted entries
  int skip;        // samples left out at each end (the resolved setting)
  long calls;      // inverse-dynamics evaluations so far (for evaluations/s)
  long bad;        // dof residuals set to DSO_INVDYN_BAD so far
} dsoInvdynInfo;

// Fills info.
void dso_invdyn_info(const dsoInvdyn* inv, dsoInvdynInfo* info);

// Residuals r (nres) at u (theta->n, unconstrained) and, when J is not NULL, the Jacobian
// J (nres x theta->n, row-major) dr/du as described above (zero columns for entries that are not
// fitted). A non-finite u is DSO_ERR_NUMERIC naming the entry; a MuJoCo error is DSO_ERR_MUJOCO
// naming the episode and sample. Deterministic: bitwise the same for any thread count.
dsoStatus dso_invdyn_residual(dsoInvdyn* inv, const double* u, double* r, double* J,
                              dsoError* err);

// Dataset episode of the i-th sample used (0 <= i < nsample) and its sample index in *t (may be
// NULL); -1 outside that range.
int dso_invdyn_sample(const dsoInvdyn* inv, int i, int* t);

// Filtered kinematics of dataset episode e (a training episode): *q, *qd, *qdd (each T x nv,
// row-major, T the episode's samples; any may be NULL) point into the block. Returns DSO_ERR_INPUT
// when e is not a training episode.
dsoStatus dso_invdyn_kinematics(const dsoInvdyn* inv, int e, const double** q, const double** qd,
                                const double** qdd, dsoError* err);

// Replaces the kinematics of training episode e by the caller's q, qd, qdd (each T x nv,
// row-major, T the episode's samples): positions, velocities and accelerations from another
// estimator or from a simulation that knows them. Non-finite values are DSO_ERR_NUMERIC.
dsoStatus dso_invdyn_set_kinematics(dsoInvdyn* inv, int e, const double* q, const double* qd,
                                    const double* qdd, dsoError* err);

#ifdef __cplusplus
}
#endif
#endif  // DSO_INVDYN_H
