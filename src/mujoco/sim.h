// A simulator instance: one mjModel copy and one mjData with θ written into them. Each thread owns
// its own dsoSim; the base model it was copied from is not changed.
#ifndef DSO_SIM_H
#define DSO_SIM_H

#include <mujoco/mujoco.h>

#include "dso/error.h"
#include "mujoco/theta.h"

#ifdef __cplusplus
extern "C" {
#endif

// Simulator state. All arrays are owned and sized at creation.
typedef struct dsoSim_ {
  mjModel* m;            // private copy of the base model; θ_f is written here
  mjData* d;             // simulation data
  mjData* scratch;       // work data for mj_setConst (which overwrites the state it is given)
  double* qfrc;          // (nv) constant generalized force from physics.<joint>.force entries
  double* sensor_gain;   // (nsensordata) y = sensor_gain * sensordata + sensor_offset
  double* sensor_offset; // (nsensordata)
  double* action_std;    // (nu) σ of the action noise; 0 where θ has no entry
  double* sensor_std;    // (nsensordata) σ of the sensor noise; 0 where θ has no entry
} dsoSim;

// Creates a simulator from base (copied). Returns NULL with err set on failure.
dsoSim* dso_sim_create(const mjModel* base, dsoError* err);

// Frees a simulator; NULL is a no-op.
void dso_sim_free(dsoSim* sim);

// Writes the natural values of every bound entry of θ (u in unconstrained coordinates, size
// theta->n) into the simulator, then updates the constants MuJoCo's compiler derives from them
// (mj_setConst, geom bounding radii, inertial-frame flags), so that stepping equals stepping a
// model compiled from the edited XML. Entries must have been resolved against a model with the
// same structure. The state in sim->d is kept.
dsoStatus dso_sim_write(dsoSim* sim, const dsoTheta* theta, const double* u, dsoError* err);

// Resets sim->d to the model's initial state (mj_resetData) and applies the constant forces.
void dso_sim_reset(dsoSim* sim);

// Sets sim->d to a recorded state, as a multiple-shooting window starts: time, qpos (nq), qvel (nv)
// and ctrl (nu) copied, act, warm start, applied body forces and warnings cleared, the constant
// forces applied (fit.h, evaluate.h).
void dso_sim_set_recorded(dsoSim* sim, double time, const double* qpos, const double* qvel,
                          const double* ctrl);

// mj_forward with the constant forces applied and errors trapped; see dso_mj_forward.
dsoStatus dso_sim_forward(dsoSim* sim, dsoError* err);

// One mj_step with the constant forces applied and errors trapped; see dso_mj_step.
dsoStatus dso_sim_step(dsoSim* sim, dsoError* err);

// Noise-free measurement y = sensor_gain * sensordata + sensor_offset (nsensordata), from the
// sensor values MuJoCo last computed in sim->d.
void dso_sim_measure(const dsoSim* sim, double* y);

#ifdef __cplusplus
}
#endif
#endif  // DSO_SIM_H
