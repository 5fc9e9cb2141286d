// State and action costs r(x, a) built from reusable terms (paper section 5.1, the r of the
// D-MDP and L-MDP costs): quadratic state error, site distance, upright, velocity target and
// control effort. Each term gives its value and its gradient in the tangent space of x and in a.
//
// Policy costs (section 2.1, eqs. 17-21; section 5.1 L_Dmdp, L_Lmdp) are terms of the same array
// that read the action density π(·|x, θ) = N(μ(s(x), θ_μ), diag σ²), σ = exp(θ_ε), of the
// transition that leaves state x, instead of the sampled action:
//   effort with "action": "mean"  D-MDP (eq. 18): Σ_i clip(μ_i)², the clipped policy mean in
//                                 place of the applied control ("applied", the default, is the
//                                 S-MDP cost of eq. 17: the control the chain applied)
//   kl        L-MDP (eqs. 21, 97): KL(π(·|x,θ) || p̄(·|x)) with passive dynamics p̄ = the same
//             chain (same θ_f, same sensor noise) with zero policy and action noise N(0, σ̄²):
//             Σ_i ln(σ̄_i/σ_i) + (σ_i² + μ_i²)/(2σ̄_i²) − 1/2
//   entropy   H-MDP (eq. 19), as a cost: −H[π(·|x,θ)] = −Σ_i (ln σ_i + ½ ln 2πe); depends on θ_ε
//             only, and a positive weight rewards exploration
//   proximal  R-MDP (eq. 20, section 4.3): KL(π_old(·|x) || π(·|x,θ)) with π_old the policy at a
//             reference θ_old held by the chain (dso_mjchain_set_reference):
//             Σ_i ln(σ_i/σ_old,i) + (σ_old,i² + (μ_old,i − μ_i)²)/(2σ_i²) − 1/2
// μ is the mean before clipping (the density of the sampled action a_s); the sums run over all
// actuators, and the chain requires action noise on every actuator for kl, entropy and proximal
// and a policy that reads the state (chain.input "state").
//
// When the kl term is the KL of the chains. In the augmented chain (mjchain.h) the transition
// from x samples the measurement y (same density under P and p̄) and the action a_s; everything
// else in x' (physics f(x, clip(a_s)), recurrent units, the applied control) is a deterministic
// function of (x, y, a_s). Hence KL(P(·|x,θ) || p̄(·|x)) over the augmented x' equals the KL of the
// action densities above exactly. For the physics-only next state x' = f(x, clip(a_s)) the
// action KL is an upper bound (data-processing inequality), with equality when a ↦ f(x, clip(a))
// is injective: no control limit active with positive probability and full actuation. With
// control limits the Gaussian tails collapse onto the limits, so the physics-only KL is smaller
// (tests/test_policy_costs.c computes both). p̄ must share θ_f with P: with another θ̄_f the
// physics parts of the two chains have different supports and the KL is infinite.
//
// Build a cost from typed term specs (dsoCostTermSpec, dso_cost_create). A task's "cost" is an
// array of terms, read into those specs by the config layer (config/cost_json.h), e.g.
//   [{"term": "quadratic", "weight": 1, "qpos": {"hinge": 3.14159}, "qpos_weight": {"hinge": 1},
//     "qvel_weight": {"hinge": 0.1}},
//    {"term": "site_distance", "weight": 2, "site": "tip", "target": [0, 0, 1.2]},
//    {"term": "upright", "weight": 1, "body": "pole", "axis": [0, 0, 1]},
//    {"term": "velocity", "weight": 1, "joint": "slider", "target": 0.5},
//    {"term": "effort", "weight": 0.01, "action": "applied"},
//    {"term": "kl", "weight": 0.1, "std": 0.5}          (or "std": {"actuator": σ̄, ...}, all),
//    {"term": "entropy", "weight": 0.01},
//    {"term": "proximal", "weight": 1},
//    {"term": "track", "weight": 1, "qpos_weight": {"hinge": 1}, "qvel_weight": {"hinge": 0.01},
//     "window": 200, "windows": "cycle"}]
//
// The tracking cost (section 5.1, L_track^{n,t}(x, θ) = γ^t ‖x̄_t^n − x‖², weighted per dof) is
// time-varying: its reference x̄ is a recorded episode (the task's "data", dataset.h), read by the
// MuJoCo chain (mjchain.h), which carries the index of the reference sample in its state. Training
// episodes are cut into windows of "window" samples (0, the default: whole episodes); rollout n
// starts from the recorded state of the first sample of its window (multiple shooting) and step
// t is compared with sample t of the window; past the window's end the term is 0. "windows":
// "cycle" (default) gives rollout n window n mod #windows, "random" draws the window from the
// rollout's random stream. Only recorded columns can be tracked: a weight > 0 on a dof whose
// qpos (qvel) the data lacks is an error. Hinge and slide joints; at most one track term.
#ifndef DSO_COST_H
#define DSO_COST_H

#include <mujoco/mujoco.h>

#include "mujoco/dataset.h"
#include "dso/error.h"

#ifdef __cplusplus
extern "C" {
#endif

// Kinds of cost terms.
typedef enum dsoTermKind_ {
  DSO_TERM_QUADRATIC = 0,  // sum_j wq_j (q_j - qref_j)^2 + wv_j qvel_j^2 over hinge/slide joints
  DSO_TERM_SITE_DISTANCE,  // |site_xpos - target|^2
  DSO_TERM_UPRIGHT,        // 1 - (body axis in world) . up, 0 when aligned
  DSO_TERM_VELOCITY,       // (qvel_j - target)^2 for one dof
  DSO_TERM_EFFORT,         // sum_i a_i^2 over the applied controls (or the clipped mean)
  DSO_TERM_KL,             // KL(π(·|x,θ) || p̄(·|x)), passive noise std σ̄ (L-MDP)
  DSO_TERM_ENTROPY,        // −H[π(·|x,θ)] (H-MDP)
  DSO_TERM_PROXIMAL,       // KL(π_old(·|x) || π(·|x,θ)) (R-MDP, section 4.3)
  DSO_TERM_TRACK,          // sum_j wq_j (q_j - q̄_j)^2 + wv_j (qvel_j - q̄vel_j)^2, recorded x̄
  DSO_NTERM
} dsoTermKind;

// One term. Arrays are owned by the cost.
typedef struct dsoCostTerm_ {
  dsoTermKind kind;
  double weight;     // multiplies the term
  int id;            // site (distance), body (upright) or dof (velocity); -1 otherwise
  double target[3];  // site target (world, m), body axis (upright, local frame), velocity target
  double* qref;      // (nq) quadratic: reference positions
  double* wq;        // (nv) quadratic: weights on position error per dof (0 = not penalized)
  double* wv;        // (nv) quadratic: weights on velocity per dof
  int mean;          // effort: 1 reads the clipped policy mean (D-MDP), 0 the applied control
  double* std;       // (nu) kl: passive action noise std σ̄ per actuator (> 0)
  int window;        // track: samples per window, 0: whole episodes
  int random;        // track: 1 draws each rollout's window at random, 0 cycles
} dsoCostTerm;

// A sum of terms.
typedef struct dsoCost_ {
  int nterm;
  dsoCostTerm* term;   // (nterm)
  int kinematics;      // 1 if some term reads positions of sites or bodies
  int policy;          // 1 if some term reads the action density (mean effort, kl, entropy,
                       // proximal): evaluate those with dso_cost_eval_policy
  int noise;           // 1 if some term needs σ > 0 on every actuator (kl, entropy, proximal)
  int reference;       // 1 if some term reads the reference policy (proximal)
  int track;           // index of the track term, -1 when there is none
} dsoCost;

// The action densities a policy term reads at one state: π = N(mu, diag sigma²) and the
// reference π_old = N(mu_old, diag sigma_old²). All arrays (nu) are borrowed.
typedef struct dsoCostPolicy_ {
  const double* mu;         // policy mean μ(s, θ_μ) before clipping
  const double* sigma;      // action noise std σ (> 0 where kl, entropy, proximal read it)
  const double* mu_old;     // reference mean; may be NULL without proximal terms
  const double* sigma_old;  // reference std (> 0); may be NULL without proximal terms
} dsoCostPolicy;

// One term as a caller gives it to dso_cost_create: typed values, model elements by id. Fill with
// dso_cost_term_default, then change the fields the kind reads. Arrays are borrowed (create
// copies them).
typedef struct dsoCostTermSpec_ {
  dsoTermKind kind;
  double weight;         // finite, >= 0 (default 1)
  int id;                // site_distance: site id; upright: body id; velocity: joint id (hinge or
                         // slide); unused by the other kinds (default -1)
  double target[3];      // site_distance: target position (world, m); upright: the body axis in
                         // the body's frame, nonzero (normalized by create; default (0, 0, 1));
                         // velocity: target[0], the target velocity of the joint's dof
  const double* qref;    // (nq) quadratic: reference qpos, finite; NULL: the model's qpos0
  const double* wq;      // (nv) quadratic, track: position-error weight per dof, finite and >= 0;
                         // NULL: all 0
  const double* wv;      // (nv) quadratic, track: velocity weight per dof, finite and >= 0; NULL:
                         // all 0
  int mean;              // effort: 1 reads the clipped policy mean (D-MDP), 0 the applied control
                         // (default 0)
  const double* std;     // (nu) kl: passive action noise std σ̄ per actuator, finite and > 0;
                         // required
  int window;            // track: samples per window >= 0, 0: whole episodes (default 0)
  int random;            // track: 1 draws each rollout's window at random, 0 cycles (default 0)
} dsoCostTermSpec;

// Fills t with the defaults above for a term of the given kind.
void dso_cost_term_default(dsoCostTermSpec* t, dsoTermKind kind);

// Creates the sum of nterm >= 0 terms (terms may be NULL when nterm is 0) against model m. Checks
// every value (errors name the term as "cost term i (kind)" and the field) and allows at most
// one track term. Returns NULL with err set on failure. Free with dso_cost_free. A task's "cost"
// array is read into terms by the config layer (config/cost_json.h).
dsoCost* dso_cost_create(const mjModel* m, const dsoCostTermSpec* terms, int nterm,
                         dsoError* err);

// Name of a term kind as a task writes it ("quadratic", "site_distance", ...); NULL when kind is
// out of range.
const char* dso_cost_term_name(dsoTermKind kind);

// Frees a cost; NULL is a no-op.
void dso_cost_free(dsoCost* cost);

// Evaluates r(x, a) for the state in d (qpos, qvel): every term except the policy terms (see
// dso_cost_eval_policy). When cost->kinematics is set, d must hold the kinematics of that state
// (mj_kinematics and mj_comPos, or any forward pass). a (nu) is the applied control, may be NULL
// (effort then counts zero). Gradients (may be NULL): gx (2*nv+na) in the tangent space of x,
// ga (nu). work: scratch of 6*nv doubles. Returns the cost.
double dso_cost_eval(const dsoCost* cost, const mjModel* m, const mjData* d, const double* a,
                     double* gx, double* ga, double* work);

// Evaluates the policy terms (effort with "action": "mean", kl, entropy, proximal) of one state
// from its action densities p (m gives nu and the control limits of the clipped mean). Gradients
// (each (nu), may be NULL, overwritten): gmu = ∂/∂μ, gsigma = ∂/∂σ, gmu_old = ∂/∂μ_old.
// Returns their weighted sum; 0 when the cost has no policy terms.
double dso_cost_eval_policy(const dsoCost* cost, const mjModel* m, const dsoCostPolicy* p,
                            double* gmu, double* gsigma, double* gmu_old);

// Checks that the track term (if any) can read data: data not NULL, and every dof with a
// position (velocity) weight > 0 has its qpos (qvel) recorded. Errors name file and cost[i].
dsoStatus dso_cost_track_check(const dsoCost* cost, const mjModel* m, const dsoDataset* data,
                               const char* file, dsoError* err);

// Evaluates the track term at the state in d against the reference qref (nq), vref (nv): returns
// its weighted value and adds its gradient in the tangent space of x to gx (2*nv+na, may be NULL;
// not cleared). work: scratch of nv doubles. 0 when the cost has no track term.
double dso_cost_eval_track(const dsoCost* cost, const mjModel* m, const mjData* d,
                           const double* qref, const double* vref, double* gx, double* work);

#ifdef __cplusplus
}
#endif
#endif  // DSO_COST_H
