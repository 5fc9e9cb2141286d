// Derivatives of one MuJoCo step x' = f(x, a, θ_f): A = ∂f/∂x and B = ∂f/∂a in the tangent space
// (mjd_transitionFD), the measurement Jacobian ∂h/∂x of the sensors, and F = ∂f/∂u_f, the step's
// derivative with respect to the physics entries of θ (unconstrained coordinates), by finite
// differences of mj_step over simulators that hold θ_f ± h (the pathwise route of DESIGN.md).
#ifndef DSO_DERIV_H
#define DSO_DERIV_H

#include "dso/error.h"
#include "mujoco/sim.h"
#include "mujoco/theta.h"

#ifdef __cplusplus
extern "C" {
#endif

// Finite-difference settings; fill with dso_deriv_settings_default.
typedef struct dsoDerivSettings_ {
  double eps_state;  // step of mjd_transitionFD in state and control (default 1e-6)
  double eps_theta;  // relative step for θ_f: h = eps_theta * max(|v|, floor of the field)
                     // (default 1e-6)
  int centered;      // 1: centered differences, 0: forward (default 1)
} dsoDerivSettings;

// Fills s with the defaults above.
void dso_deriv_settings_default(dsoDerivSettings* s);

// Work for step derivatives of one simulator: one perturbed simulator per physics entry and sign.
// Created once per thread; dso_deriv_step does not allocate.
typedef struct dsoDeriv_ {
  dsoDerivSettings set;
  int nphys;         // number of physics entries of θ (those that change f)
  int* index;        // (nphys) their indices in θ
  double* hu;        // (nphys) steps in the unconstrained coordinate
  dsoSim** plus;     // (nphys) simulators holding u + hu e_i
  dsoSim** minus;    // (nphys) simulators holding u - hu e_i (NULL entries when not centered)
  dsoSim* nominal;   // simulator holding u itself (forward differences only, else NULL)
  double* xp;        // (nx) work: next state of a perturbed simulator
  double* xm;        // (nx) work
  double* x0;        // (nx) work: nominal next state (forward differences)
  double* dx;        // (ndx) work
  double* sp;        // (nsensordata) work: sensors of a perturbed forward pass
  double* sm;        // (nsensordata) work
  double* xs;        // (nx) work: saved state
} dsoDeriv;

// Creates step-derivative work for simulators made from base with layout theta (settings may be
// NULL for the defaults). Returns NULL with err set on failure.
dsoDeriv* dso_deriv_create(const mjModel* base, const dsoTheta* theta,
                           const dsoDerivSettings* settings, dsoError* err);

// Frees the work; NULL is a no-op.
void dso_deriv_free(dsoDeriv* dv);

// Writes θ = u (theta->n) and its perturbations into the perturbed simulators. Call after θ
// changes, before dso_deriv_step.
dsoStatus dso_deriv_set_theta(dsoDeriv* dv, const dsoTheta* theta, const double* u,
                              dsoError* err);

// Derivatives of the step that sim would take from the state, controls and applied forces now in
// dso_sim_data(sim) (which is left as it was). Outputs, each may be NULL:
//   A  (ndx x ndx)        ∂x'/∂x,           ndx = 2*nv + na, row-major
//   B  (ndx x nu)         ∂x'/∂ctrl
//   H  (nsensordata x ndx) ∂sensordata/∂x at the current state
//   F  (ndx x nphys)      ∂x'/∂u of the physics entries, columns in the order of dv->index
// sim must hold the same θ as the last dso_deriv_set_theta.
dsoStatus dso_deriv_step(dsoDeriv* dv, dsoSim* sim, double* A, double* B, double* H, double* F,
                         dsoError* err);

// Derivatives of the sensors MuJoCo computes at the state and controls now in dso_sim_data(sim) (a
// forward pass; the data is left as it was), by centered differences of mj_forward. Outputs may
// be NULL:
//   Hx (nsensordata x ndx) ∂sensordata/∂x,  Hu (nsensordata x nu) ∂sensordata/∂ctrl,
//   Hf (nsensordata x nphys) ∂sensordata/∂u of the physics entries.
// sim must hold the same θ as the last dso_deriv_set_theta.
dsoStatus dso_deriv_sensors(dsoDeriv* dv, dsoSim* sim, double* Hx, double* Hu, double* Hf,
                            dsoError* err);

#ifdef __cplusplus
}
#endif
#endif  // DSO_DERIV_H
