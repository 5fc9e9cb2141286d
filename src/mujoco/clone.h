// Data-driven costs on a MuJoCo chain's policy and physics (paper section 5.1): behavioral
// cloning and the hybrid of system identification and cloning, over a recorded dataset
// D = {x̄_t^n, ā_t^n} of N training episodes (validation episodes are left out):
//
//   L_clone(θ)  = -(1/N) Σ_{n,t} γ^t ln p_ε(ā_t^n - μ(x̄_t^n, θ_μ), θ_ε)
//               =  (1/N) Σ_{n,t} γ^t Σ_i [ ½ ((ā_ti - μ_i) / σ_i)² + ln σ_i + ½ ln 2π ]
//   L_hybrid(θ) =  (1/N) Σ_{n,t} γ^t ‖x̄_{t+1}^n ⊖ f(x̄_t^n, μ(x̄_t^n, θ_μ), θ_f)‖²
//
// p_ε is the chain's Gaussian action noise N(0, diag σ²): σ_i is the natural value of the θ entry
// action_noise.<actuator i>.std when θ has one (its gradient is then part of ∇L_clone), else 1
// (a plain least-squares fit of the actions). μ is the unclipped policy output; ā is the recorded
// control (as applied). L_hybrid needs no actions ("used when only states are recorded"): f is one
// mj_step of the model holding θ_f from the recorded state with ctrl = μ(x̄_t) (MuJoCo clamps it
// to ctrlrange), ⊖ the tangent-space difference (mj_differentiatePos), and the sum runs over
// t = 0..T-2 of each episode. Neither cost depends on the chain's state: both are plain functions
// of θ whose gradients are direct (no rollouts), to be added to the chain objective's gradient
// (train.h). ∇θ_μ uses the policy's vector-Jacobian products; ∇θ_f of L_hybrid uses F = ∂f/∂u_f
// and B = ∂f/∂ctrl of dso_deriv_step (finite differences of mj_step, deriv.h), so it is exact up
// to the finite-difference error of those Jacobians.
//
// Supported: a static policy (linear or mlp) reading the state s = (qpos, qvel) of a model without
// activation states (periodic hinge angles as sin and cos, as the chain gives them: dso_mj_input); every qpos and qvel entry recorded, and for L_clone every ctrl; for L_hybrid
// the dataset resampled onto the model timestep (dt = timestep). Anything else is an error that
// says what is missing. Sums run in dataset order on one thread: results are deterministic.
#ifndef DSO_CLONE_H
#define DSO_CLONE_H

#include <mujoco/mujoco.h>

#include "mujoco/dataset.h"
#include "mujoco/deriv.h"
#include "dso/error.h"
#include "mujoco/mjchain.h"
#include "mujoco/policy.h"
#include "mujoco/theta.h"

#ifdef __cplusplus
extern "C" {
#endif

// Which costs a dsoClone evaluates (flags of dso_clone_create).
enum {
  DSO_CLONE_ACTIONS = 1,  // L_clone: needs the recorded controls
  DSO_CLONE_HYBRID = 2    // L_hybrid: needs consecutive states at the model timestep
};

// Evaluator of the data-driven costs (opaque). Holds its own simulator and derivative work.
typedef struct dsoClone_ dsoClone;

// Creates an evaluator for the costs named by which (DSO_CLONE_ACTIONS | DSO_CLONE_HYBRID) over
// the training episodes of data, for the chain made of base, theta, policy and the chain settings
// (their input and periodic joints; NULL: defaults; base, theta, policy and data are borrowed and
// must outlive the evaluator, the settings are copied). gamma in (0, 1] discounts the step index t
// within each episode. deriv (NULL: defaults) sets the finite differences of L_hybrid. Returns
// NULL with err saying what the data, policy or model lacks.
dsoClone* dso_clone_create(const mjModel* base, const dsoTheta* theta, const dsoPolicy* policy,
                           const dsoMjChainSettings* chain, const dsoDataset* data,
                           double gamma, int which, const dsoDerivSettings* deriv,
                           dsoError* err);

// Frees an evaluator; NULL is a no-op.
void dso_clone_free(dsoClone* c);

// Number of training episodes N (the 1/N of both costs).
int dso_clone_nepisode(const dsoClone* c);

// Number of (state, action) pairs L_clone sums over.
long dso_clone_nsample(const dsoClone* c);

// L_clone at u (theta->n, unconstrained coordinates) into *L; its gradient in u into g (theta->n,
// overwritten; may be NULL). Nonzero only in θ_μ and the action-noise entries. Requires
// DSO_CLONE_ACTIONS. Does not allocate.
dsoStatus dso_clone_cost(double* L, double* g, dsoClone* c, const double* u, dsoError* err);

// L_hybrid at u into *L; its gradient in u into g (theta->n, overwritten; may be NULL). Nonzero
// only in θ_μ and the physics entries. Requires DSO_CLONE_HYBRID. A step that diverges is a
// DSO_ERR_NUMERIC error naming the episode and the step. Does not allocate.
dsoStatus dso_clone_hybrid(double* L, double* g, dsoClone* c, const double* u, dsoError* err);

#ifdef __cplusplus
}
#endif
#endif  // DSO_CLONE_H
