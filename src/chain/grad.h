// DSO gradient, surrogate, Fisher and Hessian estimators from a batch of rollouts (section 4).
//   Algorithm 1 (eqs. 32, 35, 59) with or without a baseline;
//   the surrogate S̃(θ,α) of eq. 66 with its gradient (eq. 68) and Hessian (eq. 76), optionally
//   with PPO-style clipping of the ratios P̂ (Proximal Chain Optimization);
//   the Fisher matrix of eq. 72; the unbiased time-varying Hessian of Lemma 3 (eq. 80, whose last
//   term is ∇²ℒ, not 𝒦∇²ℒ); the damped natural-gradient solve.
// Episodic rollouts with discounting as termination use unit weights and γ_s = 1 in the sums (the
// rollout itself realizes the discount); with terminate = 0 the weights are γ^t. Average-cost
// rollouts use the transitions t in [burn_in, horizon - window), the windowed differential return
// R_{t+1} = Σ_{k=t+1}^{t+H} (L_k - Ĵ) and the scale 1/M. Per-rollout results are reduced in
// rollout order, so every estimate is bitwise independent of the thread count.
#ifndef DSO_GRAD_H
#define DSO_GRAD_H

#include "chain/baseline.h"
#include "dso/error.h"
#include "chain/rollout.h"

#ifdef __cplusplus
extern "C" {
#endif

// Estimator workspace for batches of one rollout object. Fields are read-only for callers.
typedef struct dsoGrad_ {
  int n, nrollout, maxlen, nthread;
  int matrices;        // 1 if per-rollout matrices (Fisher, Hessians) were allocated
  double* R;           // (N x (maxlen+1)) returns R_t of the prepared batch
  double* bhat;        // (N x maxlen) baseline b_t of transition t
  double* per;         // (N x n) per-rollout gradients (G_0^n of Algorithm 1)
  double* perval;      // (N) per-rollout surrogate values
  double* perm;        // (N x n x n) per-rollout matrices, NULL unless matrices
  double* scratch;     // (nthread x (6n + sq + nfeat + nx)) per-thread scratch
  int scratch_stride;
  int sq;              // 3n² with per-rollout matrices (Hessian terms), else 0
  double jhat;         // Ĵ used in the prepared batch (average setting)
  double variance;     // trace of the covariance of the per-rollout gradients (last Algorithm 1)
} dsoGrad;

// Creates a workspace for ro; matrices = 1 allocates per-rollout n x n storage (needed by Fisher
// and Hessian estimates); nfeat_max bounds the baseline features used with it. *out is NULL on
// failure.
dsoStatus dso_grad_create(dsoGrad** out, const dsoRollout* ro, int matrices, int nfeat_max,
                          dsoError* err);

// Frees gr (NULL is a no-op).
void dso_grad_free(dsoGrad* gr);

// Computes the returns R_t and the baseline terms b_t of the batch in ro (bl may be NULL: no
// baseline; bl must have been fitted on earlier batches only). Call once per batch before the
// estimators below.
dsoStatus dso_grad_prepare(dsoGrad* gr, dsoRollout* ro, const dsoBaseline* bl, dsoError* err);

// Algorithm 1: g (n) = mean of the per-rollout gradients G_0^n; se (n, may be NULL) their standard
// errors. Also sets gr->variance.
dsoStatus dso_grad_algorithm1(double* g, double* se, dsoGrad* gr, dsoRollout* ro, dsoError* err);

// Sample surrogate S̃(θ, α) of eq. 66 at perturbation alpha (n) around the sampling θ; grad (n) and
// hess (n x n) receive eqs. 68 and 76 (either may be NULL; hess needs chain->has_hessian). clip > 0
// applies PPO-style clipping: each ratio term becomes max(P̂ R̂, clip(P̂, 1-clip, 1+clip) R̂),
// whose derivative is zero where the clipped branch is active. Returns S̃ through *value.
dsoStatus dso_grad_surrogate(double* value, double* grad, double* hess, dsoGrad* gr, dsoRollout* ro,
                             const double* alpha, double clip, dsoError* err);

// Fisher matrix of eq. 72: F (n x n) and the standard errors of its entries se (n x n, may be
// NULL). Termination rollouts divide by γ (a transition out of x_t is observed with probability γ).
// Needs matrices.
dsoStatus dso_grad_fisher(double* F, double* se, dsoGrad* gr, dsoRollout* ro, dsoError* err);

// Unbiased Hessian of Lemma 3 (time-varying setting; also valid for first-exit rollouts with
// terminate = 0 and γ = 1): H (n x n) and entry standard errors se (may be NULL). Needs matrices
// and chain->has_hessian.
dsoStatus dso_grad_hessian_lemma3(double* H, double* se, dsoGrad* gr, dsoRollout* ro,
                                  dsoError* err);

// Damped natural-gradient direction: solves (F + damping·I) d = g (F: n x n symmetric positive
// semidefinite, g: n) with LAPACKE_dposv. scratch needs n*n doubles.
dsoStatus dso_natural_direction(double* d, const double* F, const double* g, int n, double damping,
                                double* scratch, dsoError* err);

// Mean (m) and standard error (m, may be NULL) of N rows of m values (N x m), in row order.
void dso_mean_se(double* mean, double* se, const double* rows, int N, int m);

#ifdef __cplusplus
}
#endif
#endif  // DSO_GRAD_H
