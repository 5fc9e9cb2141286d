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

// Simulator (opaque; sim.c). It owns a private copy of the base model (θ_f is written there), an
// mjData, and the θ-derived arrays read through the accessors below, all sized at creation.
typedef struct dsoSim_ dsoSim;

// Creates a simulator from base (copied). Returns NULL with err set on failure.
dsoSim* dso_sim_create(const mjModel* base, dsoError* err);

// Frees a simulator; NULL is a no-op.
void dso_sim_free(dsoSim* sim);

// Writes the natural values of every bound entry of θ (u in unconstrained coordinates, size
// theta->n) into the simulator, then updates the constants MuJoCo's compiler derives from them
// (mj_setConst, geom bounding radii, inertial-frame flags), so that stepping equals stepping a
// model compiled from the edited XML. Entries must have been resolved against a model with the
// same structure. The state in the simulator's data is kept.
dsoStatus dso_sim_write(dsoSim* sim, const dsoTheta* theta, const double* u, dsoError* err);

// Resets the data to the model's initial state (mj_resetData) and applies the constant forces.
void dso_sim_reset(dsoSim* sim);

// Sets the data to a recorded state, as a multiple-shooting window starts: time, qpos (nq), qvel
// (nv) and ctrl (nu) copied, act, warm start, applied body forces and warnings cleared, the
// constant forces applied (fit.h, evaluate.h).
void dso_sim_set_recorded(dsoSim* sim, double time, const double* qpos, const double* qvel,
                          const double* ctrl);

// mj_forward with the constant forces applied and errors trapped; see dso_mj_forward.
dsoStatus dso_sim_forward(dsoSim* sim, dsoError* err);

// One mj_step with the constant forces applied and errors trapped; see dso_mj_step.
dsoStatus dso_sim_step(dsoSim* sim, dsoError* err);

// Noise-free measurement y = sensor_gain * sensordata + sensor_offset (nsensordata), from the
// sensor values MuJoCo last computed in the data.
void dso_sim_measure(const dsoSim* sim, double* y);

// Accessors: each is one load (fetch the pointer once outside a hot loop). The model and data
// stay owned by sim; callers may change the model's options and the data's state and inputs.
// The model copy with θ_f written (mj_copyModel of the base).
mjModel* dso_sim_model(dsoSim* sim);
const mjModel* dso_sim_model_const(const dsoSim* sim);

// The simulation data.
mjData* dso_sim_data(dsoSim* sim);
const mjData* dso_sim_data_const(const dsoSim* sim);

// (nv) constant generalized force from the physics.<joint>.force entries; the forward and step
// functions above copy it into qfrc_applied.
const double* dso_sim_qfrc(const dsoSim* sim);

// (nsensordata) measurement y = sensor_gain * sensordata + sensor_offset; gain 1, offset 0 where
// θ has no entry.
const double* dso_sim_sensor_gain(const dsoSim* sim);
const double* dso_sim_sensor_offset(const dsoSim* sim);

// (nu) σ of the action noise; 0 where θ has no entry.
const double* dso_sim_action_std(const dsoSim* sim);

// (nsensordata) σ of the sensor noise; 0 where θ has no entry.
const double* dso_sim_sensor_std(const dsoSim* sim);

#ifdef __cplusplus
}
#endif
#endif  // DSO_SIM_H
