// Synthetic datasets with a known ground truth: the task's MuJoCo chain is run at given "true"
// parameters θ, with its policy, action noise θ_ε and sensor noise θ_ξ, and every rollout is
// recorded as an episode (the `dso simulate` verb).
//
// Row t of an episode holds, at time t * timestep from the episode's start:
//   qpos, qvel  the state x_t
//   ctrl        the control applied in the step from x_t to x_{t+1} (after clipping to ctrlrange)
//   sensor.*    the measurement of x_t with the control a_t of the same row applied (MuJoCo's
//               sensors at (x_t, a_t), as the fit's calibration residual pairs them, fit.h; an
//               accelerometer or force sensor reads the acceleration that a_t causes): the
//               noise-free gain ⊙ sensordata + offset at θ, plus, when the chain samples
//               measurements (policy on sensors, or θ with sensor entries), the noise ξ of the
//               chain's draw. The chain's own y_t (what a policy on sensors reads) measures x_t
//               under a_{t-1} (zero at t = 0), since a_t is chosen after it; a row holds the
//               chain's y_t exactly wherever the sensor value does not depend on the control
//               (positions, velocities), and differs from it only where it does.
// An episode of horizon T runs T transitions and records the T rows t = 0..T-1; the last state
// x_T is not recorded (it has no control of its own).
#ifndef DSO_SIMULATE_H
#define DSO_SIMULATE_H

#include <stdint.h>

#include "mujoco/dataset.h"
#include "dso/error.h"
#include "config/task.h"

#ifdef __cplusplus
extern "C" {
#endif

// Records nepisode episodes of horizon samples each from the task's chain at θ = u (unconstrained
// coordinates, task->theta->n; NULL: the task's initial values) into a new dataset *out whose
// masks mark qpos, qvel, ctrl and every sensor as recorded; the last nvalidation episodes (0 <=
// nvalidation <= nepisode) are flagged validation. Its sample spacing dt is the model timestep
// (one row per step), so it can be given to dso_fit_create as it is.
//
// Episode n is rollout n of one batch keyed by (seed, iteration 0, n), so the same arguments give
// a bitwise identical dataset for any thread count (task->rollout.nthread). The rollout setting is
// episodic without termination (every episode has the full horizon); the task's domain
// randomization (chain.randomize) is off, so every episode is simulated at exactly θ = u.
//
// excitation >= 0 is the std, in control units, of extra white noise added to every actuator's
// control (persistent excitation for identification): the chain is run with a copy of θ whose
// action-noise std is sqrt(σ² + excitation²) on actuators with an action_noise entry and
// excitation on the others (entries are added for them; their actuators must then be named).
// The recorded controls include this noise, as they would on a real robot.
//
// On failure *out is NULL and err is set; a rollout that diverges is a DSO_ERR_NUMERIC error that
// names the episode and the step. The batch holds nepisode x (horizon + 1) chain states in memory.
dsoStatus dso_simulate(dsoDataset** out, const dsoTask* task, const double* u, int nepisode,
                       int horizon, uint64_t seed, double excitation, int nvalidation,
                       dsoError* err);

// Kinds of excitation of dso_simulate_kind.
typedef enum dsoExcitationKind_ {
  DSO_EXCITATION_WHITE = 0,  // white noise of std excitation (dso_simulate)
  DSO_EXCITATION_MULTISINE   // a sum of sines per actuator (below)
} dsoExcitationKind;

// Sines per actuator of the multi-sine excitation and their band (Hz).
#define DSO_SIMULATE_MULTISINE_SINES 4
#define DSO_SIMULATE_MULTISINE_LO 0.1
#define DSO_SIMULATE_MULTISINE_HI 1.0

// As dso_simulate with the excitation of the given kind. DSO_EXCITATION_MULTISINE adds to every
// actuator's control (after the policy and the action noise of θ, before clipping to ctrlrange)
// excitation sqrt(2 / K) Σ_k sin(2π f_ik t + φ_ik), K = DSO_SIMULATE_MULTISINE_SINES sines of RMS
// excitation in total, t the time from the episode's start. The frequencies f_ik are
// log-spaced over [DSO_SIMULATE_MULTISINE_LO, _HI] Hz and interleaved across actuators, so that
// every actuator has its own; the phases φ_ik are uniform, drawn per episode from the seed.
// Unlike white noise, the sines keep a slow joint moving over its range (rich data for
// inverse-dynamics identification, invdyn.h). The episodes are then run step by step by this
// module with the chain's model, initial state, policy and noise model (the same distributions as
// the white kind, other random draws); deterministic for a seed.
dsoStatus dso_simulate_kind(dsoDataset** out, const dsoTask* task, const double* u, int nepisode,
                            int horizon, uint64_t seed, double excitation,
                            dsoExcitationKind kind, int nvalidation, dsoError* err);

#ifdef __cplusplus
}
#endif
#endif  // DSO_SIMULATE_H
