// A MuJoCo model as a DSO chain (paper eq. 96): x' = f(x, clip(μ(s, θ_μ) + ε), θ_f) with action
// noise ε ~ N(0, diag σ_ε²), σ_ε = exp(θ_ε), and policy input s either the state (with periodic
// hinge angles as sine and cosine, dso_mj_input) or the measurements y = gain ⊙ sensordata + offset + ξ, ξ ~ N(0, diag σ_ξ²) (θ_h, θ_ξ).
//
// The chain state augments the physics state with what one transition samples, so that ln P is
// the density of the sampled variables (the S-MDP mapping of section 3.2):
//   x = [qpos nq | qvel nv | act na | h nh | sd ns | y ns | a_s nu | a nu | diverged 1 | ref nr]
// h: recurrent policy units (eq. 100); sd: the raw sensordata MuJoCo computed at the previous
// state with the previous control; y: the sampled measurement; a_s: the sampled action before
// clipping; a: the applied (clipped) control. ns is 0 when the policy reads the state and θ has
// no sensor entries. A step that diverges (NaN, Inf, MuJoCo's instability warnings) leaves a
// terminal state with diverged = 1 whose cost is the divergence penalty; θ never sees the NaN.
// ref (nr = 2, only with a track cost term, cost.h) = (window index, step within the window): the
// reference sample the time-varying tracking cost L_track^{n,t} (section 5.1) compares x with. It
// is deterministic (set by the initial state, incremented by every transition), so it has no
// density (not in ln P) and no tangent (the adjoint treats it as a constant).
//
// Tracking (multiple shooting). The training episodes of settings.data are cut into windows of W
// steps (the track term's "window"; 0: whole episodes): window k covers samples s_k .. s_k + W of
// its episode (the last one of an episode may be shorter), the next starts at s_k + W. Rollout n
// takes window n mod #windows ("windows": "cycle") or one drawn uniformly from its random stream
// after the initial-state draws ("random"), starts from the window's first sample (recorded qpos
// and qvel entries; the others, and the spread init_std around it, from the chain's init), and
// step t is compared with sample s_k + t; past the window's end the track term is 0, so a rollout
// horizon of W covers a window exactly (a longer one adds steps that cost nothing). The data must
// be resampled onto the model timestep (data.resample true, stride 1).
//
// Two routes to ∇J (DESIGN.md): the score route runs the generic estimators of grad.h on this
// chain (∇θ ln P exists for θ_μ, θ_ε, θ_h, θ_ξ); the pathwise route (dso_mjchain_pathwise) holds
// the sampled noise fixed and runs an adjoint pass with A, B, ∂f/∂θ_f and the policy Jacobians.
//
// Policy costs (cost.h: effort with "action": "mean", kl, entropy, proximal) are evaluated at each
// state x from π(·|x, θ) = N(μ(s(x), h(x), θ_μ), diag σ²), the density of the action the chain
// samples when it leaves x; they need a policy on the state (DSO_INPUT_STATE) and, except the
// mean effort, action noise on every actuator. They make L depend on θ_μ and θ_ε: the score
// route then receives ∇θ L from the chain's cost (cost_grad_zero is 0), and the pathwise route
// adds ∂L/∂θ_μ (the policy's vector-Jacobian product), ∂L/∂θ_ε and the state dependence through
// μ(s(x)) and h to its adjoint.
#ifndef DSO_MJCHAIN_H
#define DSO_MJCHAIN_H

#include <mujoco/mujoco.h>

#include "chain/chain.h"
#include "mujoco/cost.h"
#include "mujoco/deriv.h"
#include "mujoco/policy.h"
#include "chain/rollout.h"
#include "mujoco/theta.h"

#ifdef __cplusplus
extern "C" {
#endif

// What the policy reads.
typedef enum dsoPolicyInput_ {
  DSO_INPUT_STATE = 0,   // s = (qpos, qvel, act)
  DSO_INPUT_SENSORS      // s = y, the noisy calibrated measurements
} dsoPolicyInput;

// Settings of a MuJoCo chain; fill with dso_mjchain_settings_default. Arrays are copied.
typedef struct dsoMjChainSettings_ {
  dsoPolicyInput input;        // default DSO_INPUT_STATE
  double divergence_penalty;   // cost of the terminal state of a diverged step (default 1000)
  const double* init_qpos;     // (nq) mean initial qpos; NULL: the model's qpos0
  const double* init_qvel;     // (nv) mean initial qvel; NULL: zero
  const double* init_std;      // (2*nv + na) std of the initial state in the tangent space; NULL: 0
  const double* randomize_std; // (ntheta) per-rollout std of θ perturbations (domain
                               // randomization) in unconstrained coordinates, physics entries only;
                               // NULL: none
  dsoDerivSettings deriv;      // finite differences of the pathwise route (dso_deriv defaults)
  int feature_horizon;         // time scale of the baseline features (default 100 steps)
  const dsoDataset* data;      // reference episodes of a track cost term (borrowed; must outlive
                               // the chain); NULL: none (an error when the cost has a track term)
  const int* periodic;         // (nperiodic) hinge joint ids whose angle the state input gives as
                               // (sin q, cos q) (dso_mj_input); NULL: none
  int nperiodic;
} dsoMjChainSettings;

// Fills s with the defaults above.
void dso_mjchain_settings_default(dsoMjChainSettings* s);

// A MuJoCo chain. The model, θ layout, policy and cost are borrowed and must outlive it.
typedef struct dsoMjChain_ {
  dsoChain chain;            // the generic chain: ops, model (this struct), nx, ntheta
  mjModel* own;              // copy of the base model with the solver warm start disabled
  const mjModel* base;       // = own: every simulator of the chain is made from it
  const dsoTheta* theta;
  const dsoPolicy* policy;   // NULL: a = noise only
  const dsoCost* cost;       // NULL: zero cost
  dsoPolicyInput input;
  int* periodic;             // (nperiodic) periodic hinge joints of the state input (dso_mj_input)
  int nperiodic;
  double divergence_penalty;
  double* init_qpos;         // (nq)
  double* init_qvel;         // (nv)
  double* init_std;          // (2*nv + na)
  double* randomize_std;     // (ntheta) or NULL
  dsoDerivSettings deriv;    // finite-difference settings of the pathwise route
  int feature_horizon;       // time scale of the baseline features
  int nq, nv, na, nu, nh, ns, nin;  // sizes; nin = policy input size
  int off_h, off_sd, off_y, off_as, off_a, off_flag;  // offsets in x
  int policy_start;          // θ_μ = θ[policy_start .. policy_start + np)
  int nbound;                // entries of θ bound to the model, sensors or noise
  int* bound;                // (nbound) their indices
  double* ref_u;             // (ntheta) reference θ_old of proximal cost terms, unconstrained;
                             // NULL when the cost has no policy terms
  double* ref_sigma;         // (nu) action noise std at ref_u (0 for actuators without noise)
  const dsoDataset* data;    // track: the reference episodes; NULL without a track term
  int off_ref;               // track: offset of (window, step) in x; -1 without a track term
  int nwin;                  // track: number of windows
  int* win;                  // track: (nwin x 3) episode, first sample, steps of each window
} dsoMjChain;

// Creates a MuJoCo chain. The policy's input size must equal nq + nv + na + nperiodic (state
// input, dso_mj_input) or nsensordata (sensor input) and its output size nu. Returns NULL with err set on failure.
dsoMjChain* dso_mjchain_create(const mjModel* base, const dsoTheta* theta,
                               const dsoPolicy* policy, const dsoCost* cost,
                               const dsoMjChainSettings* settings, dsoError* err);

// Frees a chain; NULL is a no-op.
void dso_mjchain_free(dsoMjChain* mc);

// Sets the reference θ_old (u_old: ntheta unconstrained coordinates, finite; copied) of the
// proximal cost KL(π_old(·|x) || π(·|x,θ)): π_old = N(μ(s, h, θ_old,μ), diag σ_old²) with σ_old
// the action noise at θ_old. Until it is called the reference is θ at the entries' initial
// values (dso_theta_init), i.e. the θ a run starts from. Only θ_μ and θ_ε of u_old matter. Not
// thread safe: call it between batches, never while a rollout or gradient pass uses the chain;
// a batch's stored costs are those of the reference in force when it was sampled, so set it
// before dso_rollout_run and keep it until the batch's gradient is computed. A no-op for chains
// without policy cost terms.
void dso_mjchain_set_reference(dsoMjChain* mc, const double* u_old);

// Number of features of dso_mjchain_features: 3 + 2 (nq + nv + na).
int dso_mjchain_nfeat(const dsoMjChain* mc);

// Baseline features (baseline.h's dsoFeatureFn; ctx is the chain): φ(x, t) = [1, τ, τ², s, s²]
// with τ = t / feature_horizon and s = (qpos, qvel, act) of x.
void dso_mjchain_features(double* phi, const void* ctx, const double* x, int t);

// Number of rollouts of the last batch in ro that ended in a diverged state.
int dso_mjchain_diverged(const dsoMjChain* mc, const dsoRollout* ro);

// Pathwise gradient (reparameterization) of J = mean over rollouts of Σ_t w_t L(x_t) with the
// batch's sampled noise held fixed, w_t = dso_rollout_gamma_step(ro)^t: g (ntheta) in the
// unconstrained coordinates and its standard error se (ntheta, may be NULL) from the spread of
// the per-rollout gradients. ro must hold a batch sampled from mc at ro->theta (episodic or
// time-varying setting). Runs on ro's threads; bitwise identical for any thread count.
dsoStatus dso_mjchain_pathwise(double* g, double* se, const dsoMjChain* mc, dsoRollout* ro,
                               dsoError* err);

#ifdef __cplusplus
}
#endif
#endif  // DSO_MJCHAIN_H
