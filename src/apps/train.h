// Optimization of θ for a MuJoCo chain task (mechanism design and policy optimization, issue 5
// applications 3 and 5). One iteration k: sample a batch at θ with iteration key k
// (dso_rollout_run), take the gradient of J by one of the two routes of DESIGN.md (the pathwise
// gradient, dso_mjchain_pathwise, or the score route: Algorithm 1 with a state baseline fitted on
// the earlier batches only, eq. 59, grad.h / baseline.h) plus the direct
// gradients of the data-driven costs w_clone L_clone + w_hybrid L_hybrid over the task's data
// (clone.h; data-augmented policy optimization, paper section 5.2) and of the Gaussian prior
// L_prior (dso_theta_prior), all plain functions of θ; zero the fixed entries, take an Adam step
// (or a natural-gradient step, section 4.4) in the unconstrained coordinates u and project onto
// the entries' bounds; on the score route, optionally take further steps on the clipped surrogate
// of eq. 66 over the same batch (epochs). Iteration k depends only on the task, the settings, u
// and the trainer state, so runs are reproducible and bitwise identical for any number of
// threads.
//
// Settings follow the OSQP pattern: fill with dso_train_settings_default, change fields (or take a
// loaded task's "train" section, task->train, read by config/train_section.h), pass to
// dso_train_create:
//   "train": {"max_iter": 50, "lr": 0.05, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "seed": 0,
//             "clone": 1.0, "hybrid": 0.0, "proximal_every": 0, "gradient": "pathwise",
//             "epochs": 1, "clip": 0.2, "optimizer": "adam", "damping": 0.01}
// The objective is J + clone L_clone + hybrid L_hybrid + L_prior; a positive clone or hybrid
// weight needs the task's "data" section (task->data) with what clone.h lists.
#ifndef DSO_TRAIN_H
#define DSO_TRAIN_H

#include <stdint.h>

#include "dso/error.h"
#include "config/task.h"

#ifdef __cplusplus
extern "C" {
#endif

// Route of the gradient of J.
typedef enum dsoTrainGradient_ {
  DSO_TRAIN_PATHWISE = 0,  // reparameterization through the dynamics: every block of θ
  DSO_TRAIN_SCORE          // likelihood ratio (Algorithm 1, eqs. 32, 35) on the action and sensor
                           // densities with a state baseline V̂(x_t, t) (linear in
                           // dso_mjchain_features, Monte Carlo targets, fitted on the batches
                           // before the current one): θ_μ, θ_ε, θ_h and θ_ξ only, so every physics
                           // and corrector entry must be fixed
} dsoTrainGradient;

// Step rule.
typedef enum dsoTrainOptimizer_ {
  DSO_TRAIN_ADAM = 0,  // Adam in the unconstrained coordinates
  DSO_TRAIN_NATURAL    // natural gradient (section 4.4): u -= lr (F + λI)⁻¹ g over the free
                       // entries, F the Fisher matrix of eq. 72 estimated on the batch at its own
                       // θ, λ = damping × mean of F's diagonal; score route only
} dsoTrainOptimizer;

// Training settings.
typedef struct dsoTrainSettings_ {
  int max_iter;    // iterations a driver should run, >= 0 (default 100); dso_train_step itself
                   // does not stop
  double lr;       // Adam step size in unconstrained coordinates, > 0 (default 0.05)
  double beta1;    // Adam first-moment decay in [0, 1) (default 0.9)
  double beta2;    // Adam second-moment decay in [0, 1) (default 0.999)
  double eps;      // Adam denominator offset, > 0 (default 1e-8)
  uint64_t seed;   // master seed of the rollout streams; 0 = the task's rollout seed (default 0)
  double clone;    // weight of L_clone (behavioral cloning on the task's data), finite >= 0
                   // (default 0: off)
  double hybrid;   // weight of L_hybrid (states only: policy and physics), finite >= 0
                   // (default 0: off)
  int proximal_every; // R-MDP (section 4.3): every this many iterations the reference θ_old of
                      // the cost's proximal terms becomes the θ the next batch is drawn at
                      // (dso_mjchain_set_reference); 0 (default): never, θ_old stays the
                      // initial θ
  dsoTrainGradient gradient;  // route of ∇J: "pathwise" (default) or "score"
  int epochs;       // Adam steps per batch in [1, 1000] (default 1); more than one needs the score
                    // route: step 1 takes Algorithm 1 at the batch's θ (eq. 67: the surrogate's
                    // gradient at α = 0), each later one the gradient of the surrogate S̃(θ, α)
                    // of eq. 66 at α = θ - θ_batch with clipped ratios (Proximal Chain
                    // Optimization, section 4.3; PPO-style)
  double clip;      // ratio clipping ε in [0, 1) of those later steps (default 0.2; 0: none)
  dsoTrainOptimizer optimizer;  // "adam" (default) or "natural" (needs "gradient": "score")
  double damping;   // natural: Tikhonov term relative to the mean diagonal of F, > 0 (default 0.01)
} dsoTrainSettings;

// Fills s with the defaults listed above.
void dso_train_settings_default(dsoTrainSettings* s);

// Checks the values of s: ranges as listed above, epochs > 1 and the natural optimizer only on
// the score route. Errors name file (NULL: "train") and the key ("train.lr").
dsoStatus dso_train_settings_check(const dsoTrainSettings* s, const char* file, dsoError* err);

// A trainer: the task's chain, a rollout batch and the Adam state. Opaque.
typedef struct dsoTrain_ dsoTrain;

// Creates a trainer for task (borrowed; must outlive the trainer) with settings set (NULL:
// defaults). Uses the task's chain, rollout settings (threads, horizon, ...) and nrollout, and
// for positive clone / hybrid weights the task's data, discounted with the rollout's γ. Returns
// NULL with err set on failure (a weight without data or with data that lacks what the cost
// needs names the file and the key train.clone / train.hybrid; the score route with a free
// physics or corrector entry names the entry; the pathwise route with the average-cost setting
// names rollout.setting).
dsoTrain* dso_train_create(const dsoTask* task, const dsoTrainSettings* set, dsoError* err);

// Frees a trainer; NULL is a no-op.
void dso_train_free(dsoTrain* tr);

// Why dso_train_step refused a step (dsoTrainReport.refused).
typedef enum dsoTrainRefusal_ {
  DSO_TRAIN_REFUSED_COST = 1,  // at the batch's θ: J, a data-driven cost, L_prior or the gradient
                               // is not finite, or every rollout of the batch diverged
  DSO_TRAIN_REFUSED_STEP       // the step would make θ or the Adam moments non-finite (e.g. a
                               // step size of 1e308)
} dsoTrainRefusal;

// Report of one iteration. J, Jse, the data-driven costs, prior and grad_norm are measured at the
// θ the batch was sampled at (before the step).
typedef struct dsoTrainReport_ {
  int iter;          // iteration key k of the batch (0, 1, 2, ...)
  double J;          // sample objective of the batch (dso_rollout_objective)
  double Jse;        // its standard error
  double clone;      // L_clone at θ, unweighted (0 when its weight is 0)
  double hybrid;     // L_hybrid at θ, unweighted (0 when its weight is 0)
  double data;       // the weighted data-driven part: w_clone L_clone + w_hybrid L_hybrid
  double prior;      // L_prior at θ
  double grad_norm;  // 2-norm of ∇(J + data + L_prior) over the free entries, unconstrained
                     // coordinates
  long steps;        // transitions sampled in this iteration
  int diverged;      // rollouts of the batch that ended in a diverged state (a step that
                     // diverged: NaN, Inf or MuJoCo's instability warnings; mjchain.h)
  int refused;       // 0, or what refused the step (dsoTrainRefusal)
} dsoTrainReport;

// One iteration at u (ntheta, unconstrained coordinates of the task's θ), updated in place; rep
// (may be NULL) receives the report. Fixed entries of u are never changed. Does not allocate.
// Deterministic: depends only on u, the iteration count and the Adam state. A non-finite θ is
// DSO_ERR_INPUT. A step is refused with DSO_ERR_NUMERIC when the cost or the gradient at u is not
// finite, every rollout diverged, or the new θ or Adam moments would not be finite (rep->refused
// says which): u and the trainer state stay as they were except that the iteration count advances
// (the next call draws a new batch) and the refused steps are counted (dso_train_refused). On any
// other failure u and the state are unchanged. rep is filled as far as it was measured.
dsoStatus dso_train_step(dsoTrain* tr, double* u, dsoTrainReport* rep, dsoError* err);

// Steps dso_train_step refused so far on this trainer (not part of the trainer state).
int dso_train_refused(const dsoTrain* tr);

// Number of iterations done so far (the iteration key of the next batch).
int dso_train_iter(const dsoTrain* tr);

// Number of doubles of the trainer state (Adam moments, the proximal reference θ_old, step count,
// iteration count; with the score route also the baseline: its weights, the number of batches it
// was fitted on and Ĵ): 3 ntheta + 2, plus nfeat + 2 for the score route.
int dso_train_state_size(const dsoTrain* tr);

// Writes the trainer state into state (dso_train_state_size doubles), for checkpoints.
void dso_train_get_state(const dsoTrain* tr, double* state);

// Restores a state written by dso_train_get_state (dso_train_state_size doubles). Non-finite
// moments, negative second moments and negative or non-integer counts are DSO_ERR_INPUT; the
// trainer is unchanged on error.
dsoStatus dso_train_set_state(dsoTrain* tr, const double* state, dsoError* err);

#ifdef __cplusplus
}
#endif
#endif  // DSO_TRAIN_H
